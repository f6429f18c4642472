/* pool.c - workers, injection queues per priority, sleep/wake without lost wake-ups (an
   eventcount), a delayed queue, counters with help-while-waiting, parallel-for, shutdown.
   Nothing here knows about graphs or maps: both are built from pool tasks and counters.

   Quiescence. Each worker counts the tasks it submitted and the tasks it executed in its own
   cache line (single writer); submissions from other threads and inline executions are counted
   with atomic adds. The pool is idle when sum(executed), read first, equals sum(submitted), read after:
   the counters only grow, and a task is counted as submitted before it can run and as executed
   only after everything it submitted was counted, so equality means nothing was in flight.
   No shared counter is touched per task. */
#ifndef BATCH__POOL_C
#define BATCH__POOL_C
#ifndef BATCH_SINGLE_FILE
#  include "deque.c"
#endif

#define BATCH__LEVELS 5                 /* CRITICAL .. BACKGROUND */
#define BATCH__LEVEL_NORMAL 2
#define BATCH__HIGH_LEVELS_MASK 3u      /* CRITICAL | HIGH: looked at before the own deque */
#define BATCH__MAG 128                  /* tasks per free-list chunk moved between threads */
#define BATCH__INJECT_GRAB_MAX 64       /* most tasks a worker moves from injection to its deque */
#define BATCH__ALLOC_AHEAD 4            /* free tasks prefetched ahead of their allocation */
#define BATCH__RING_HOLD_NS 8000u       /* see batch__find_work */
#define BATCH__PAY_AFTER_NS 3000u       /* see batch__find_work_spin */
#define BATCH__EC_WAITER_BITS 16
#define BATCH__EC_WAITER_MASK ((1ull << BATCH__EC_WAITER_BITS) - 1)
#define BATCH__EC_EPOCH_ONE (1ull << BATCH__EC_WAITER_BITS)
/* batch_counter state: count << 2 | WORKER_WAITING | THREAD_WAITING */
#define BATCH__CNT_THREAD_WAITING 1ull
#define BATCH__CNT_WORKER_WAITING 2ull
#define BATCH__CNT_ONE 4ull

/* A pool task: one cache line, from per-worker free lists. */
typedef struct batch__task {
    batch_work_fn fn;
    void* user;
    batch_counter* counter;
    struct batch__task* next;        /* links tasks put back, and an inline pool's stack */
    _Atomic(struct batch__task*) qnext;  /* injection queue link (multi-producer) */
    uint64_t due;                    /* delayed tasks: monotonic ns; with has_arg: the argument */
    uint8_t level;
    bool has_arg;                    /* an internal task fn(p, user, due) (batch__submit_arg) */
} batch__task;
/* The internal tasks that carry a 64-bit argument; stored in batch__task.fn cast through
   void (*)(void) and called through their own type again (batch__call). */
typedef void (*batch__arg_fn)(batch_pool* p, void* user, uint64_t arg);
typedef union batch__task_slot { batch__task t; BATCH__ALIGNED char pad[BATCH__CACHE_LINE]; } batch__task_slot;
_Static_assert(sizeof(batch__task_slot) == BATCH__CACHE_LINE, "a pool task is one cache line");

/* Free tasks move between threads in magazines: arrays of BATCH__MAG task pointers, so that a
   thread refilling its cache reads pointers, not a linked list whose every link is a cache miss
   on a line another core wrote last. Each slab of BATCH__MAG tasks brings one magazine, so one
   is always free when a cache overflows: a full magazine holds BATCH__MAG tasks no cache holds,
   and an overflowing cache holds 2 * BATCH__MAG. */
typedef struct batch__mag { struct batch__mag* next; batch__task* t[BATCH__MAG]; } batch__mag;
typedef struct batch__slab { struct batch__slab* next; void* raw; batch__mag mag; } batch__slab;
/* A thread's free tasks: a stack, most recently freed (cache-hot) on top. */
typedef struct batch__task_cache { int n; batch__task* t[2 * BATCH__MAG]; } batch__task_cache;

/* One injection queue: Vyukov's intrusive multi-producer single-consumer queue. Producers
   exchange the tail and then link the previous tail to their node; the (locked) consumer walks
   from head. A stub node keeps the queue non-empty. */
typedef struct batch__inj_queue {
    BATCH__ALIGNED _Atomic(batch__task*) tail;
    BATCH__ALIGNED batch__task* head;
    batch__task_slot stub;
} batch__inj_queue;

typedef struct batch__worker {
    batch__deque dq;
    BATCH__ALIGNED batch_pool* pool;
    int index;
    uint64_t rng;
    batch__task_cache cache;
    batch_counter* owed_counter;    /* see batch__worker_pay */
    uint64_t owed;
    uint64_t seq;                   /* tasks this worker began executing */
    uint64_t ring_hold;             /* until then (ns) searches skip a short outsiders' ring (batch__find_work) */
    uint64_t clock_ns, clock_seq;   /* see batch__clock_take */
    /* single writer (this worker), read by stats and quiescence checks */
    BATCH__AL8 _Atomic uint64_t submitted, executed, steals, sleeps;
    batch__thread thread;
} batch__worker;

/* The padding is the point: hot fields written by different threads sit on separate lines. */
/* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding) */
struct batch_pool {
    void* alloc_ctx;
    void* raw_self;                      /* what BATCH_MALLOC returned (the pool is over-aligned) */
    void* raw_workers;
    batch__worker* workers;
    int nworkers;
    uint64_t spin_ns;                    /* idle search before sleeping (batch__spin_more) */
    uint64_t relax_ns;                   /* the first part of it, with pause instead of yield */
    bool inline_mode;
    bool tsc;                            /* graph task times in TSC ticks (platform.c, task clock) */
    bool prefetchw;                      /* batch__has_prefetchw */
    batch__clockpair origin;             /* both clocks at creation, for batch__timebase_make */

    /* injection queues: producers push without a lock; consumers pop under inj_lock */
    batch__inj_queue inj[BATCH__LEVELS];
    BATCH__ALIGNED _Atomic unsigned inj_mask;  /* bit l: level l may be non-empty */
    BATCH__ALIGNED batch__spin inj_lock;
    batch__task* front[BATCH__LEVELS];   /* under inj_lock: tasks put back, taken first */
    batch__task* inline_stack;           /* under inj_lock; inline pools: NORMAL tasks that tasks submit (LIFO) */
    _Atomic int inline_ready;            /* inline_stack is not empty (a hint read without the lock) */
    /* the free-task cache of threads that are not workers */
    BATCH__ALIGNED batch__spin ext_lock;
    batch__task_cache ext_free;
    /* the outsiders' queue (batch__ring_push): written under ext_lock, read under inj_lock */
    _Atomic(batch__task**) ring;
    size_t ring_cap;                     /* changed under both locks */
    BATCH__AL8 _Atomic size_t ring_tail; /* producers' side */
    size_t ring_head_seen;               /* producers' side: a recent ring_head */
    BATCH__AL8 _Atomic uint64_t ring_submitted;  /* producers' side: tasks pushed (quiescence) */
    BATCH__ALIGNED _Atomic size_t ring_head;   /* consumers' side */
    BATCH__ALIGNED _Atomic uint64_t ext_submitted;   /* submissions by threads that are not workers */
    BATCH__AL8 _Atomic uint64_t ext_executed;       /* tasks run by inline runners */

    /* magazines of free tasks, empty magazines, and the slabs both come from */
    BATCH__ALIGNED batch__mutex spare_lock;
    batch__mag* spare;
    batch__mag* empty_mags;
    batch__slab* slabs;

    /* eventcount: waiters in the low bits, epoch above */
    BATCH__ALIGNED _Atomic uint64_t ec_state;
    batch__mutex ec_lock;
    batch__cond ec_cond;

    /* delayed tasks: a binary min-heap on due */
    BATCH__ALIGNED batch__mutex delay_lock;
    batch__task** heap;
    size_t heap_len, heap_cap;
    BATCH__AL8 _Atomic uint64_t delay_next;         /* earliest due, UINT64_MAX when empty */

    /* waiting threads and the life cycle */
    BATCH__ALIGNED batch__mutex done_lock;
    batch__cond done_cond;
    batch__mutex life_lock;
    _Atomic int shutdown;                /* non-workers may no longer submit; delays are ignored */
    _Atomic int stop;                    /* workers exit */
    _Atomic int ext_active;              /* non-workers inside batch_pool_submit */
    _Atomic int idle_waiters;            /* threads waiting for quiescence */
    _Atomic int wakers;                  /* non-workers between a counter decrement and its wake-up */
    bool joined;
};

static BATCH__THREAD_LOCAL batch__worker* batch__tls_worker;   /* the worker this thread is */
static BATCH__THREAD_LOCAL batch_pool* batch__tls_inline;      /* inline pool this thread runs */

BATCH__PRIVATE bool batch__ring_ready(batch_pool* p);
BATCH__PRIVATE batch__worker* batch__self(const batch_pool* p) {
    batch__worker* w = batch__tls_worker;
    return (w && w->pool == p) ? w : NULL;
}

/* A clock read handed from the end of one task to the start of the next on the same worker, so
   that back-to-back tasks cost one read: valid only for the very next task this worker
   executes (seq) and only if that came out of the worker's own deque at once. A search, a
   sleep, urgent injected work, or tasks run nested inside the task that handed it (a wait
   that helped) clear it. 0: read the clock. Worker-private, no atomics. */
BATCH__PRIVATE uint64_t batch__clock_take(batch__worker* w) {
    if (!w) return 0;
    uint64_t ns = w->clock_seq == w->seq ? w->clock_ns : 0;
    w->clock_ns = 0;
    return ns;
}
BATCH__PRIVATE void batch__clock_put(batch__worker* w, uint64_t ns) {
    if (!w) return;
    w->clock_ns = ns;
    w->clock_seq = w->seq + 1;
}

/* ---- the pool's interface for the job layer ---------------------------------------------------
   What graph.c, map.c and mpi.c may use of the pool beyond its public API: these functions and
   the task clock hand-off above (batch__clock_take/put), the worker lookup (batch__self), the
   internal submissions (batch__submit_bulk, batch__submit_arg, batch__push_own) and counters.
   Nothing above the pool reads its fields. */
BATCH__PRIVATE void* batch__pool_alloc_ctx(const batch_pool* p) { return p ? p->alloc_ctx : NULL; }
BATCH__PRIVATE bool batch__pool_shutting_down(batch_pool* p) { return atomic_load(&p->shutdown) != 0; }
/* A new job launched from this thread would be refused: the pool shuts down and this thread is
   neither one of its workers nor running it inline (those finish what they started). */
BATCH__PRIVATE bool batch__pool_refuses_jobs(batch_pool* p) {
    return !batch__self(p) && batch__tls_inline != p && batch__pool_shutting_down(p);
}
/* Whether tasks of the priority levels in mask (bit l: level l) wait in the injection queues. */
BATCH__PRIVATE bool batch__pool_queued(batch_pool* p, unsigned mask) {
    /* a hint; the ring only when NORMAL is asked about (a graph's run loop asks for the urgent
       levels between two tasks) */
    if (atomic_load_explicit(&p->inj_mask, memory_order_relaxed) & mask) return true;
    return (mask & (1u << BATCH__LEVEL_NORMAL)) && batch__ring_ready(p);
}
/* The task clock of the pool: TSC ticks or ns (platform.c), and its (tick, ns) pair from creation. */
BATCH__PRIVATE bool batch__pool_tsc(const batch_pool* p) { return p->tsc; }
BATCH__PRIVATE batch__clockpair batch__pool_origin(const batch_pool* p) { return p->origin; }
/* The tasks a worker began executing (grows when it runs nested tasks), and whether its own
   deque is empty now (owner only). */
BATCH__PRIVATE uint64_t batch__worker_seq(const batch__worker* w) { return w->seq; }
BATCH__PRIVATE bool batch__worker_deque_empty(batch__worker* w) { return batch__deque_size(&w->dq) <= 0; }

/* Owner-only increment of a counter that others read. */
BATCH__PRIVATE void batch__bump(_Atomic uint64_t* c) {
    /* release: quiescence checks acquire these counts (see the file comment) */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_release);
}

/* ---- free tasks ------------------------------------------------------------------------ */

/* Fills an empty cache with BATCH__MAG tasks: a spare magazine, or a new slab. false: out of
   memory. */
BATCH__PRIVATE bool batch__refill(batch_pool* p, batch__task_cache* c) {
    bool ok = true;
    batch__mutex_lock(&p->spare_lock);
    batch__mag* m = p->spare;
    if (m) {
        p->spare = m->next;
        memcpy(c->t, m->t, sizeof m->t);
        m->next = p->empty_mags;
        p->empty_mags = m;
    } else {
        size_t sz = sizeof(batch__slab) + BATCH__CACHE_LINE + BATCH__MAG * sizeof(batch__task_slot);
        void* raw = BATCH_MALLOC(sz, p->alloc_ctx);
        if (raw) {
            batch__slab* s = (batch__slab*)raw;
            s->raw = raw;
            s->next = p->slabs;
            p->slabs = s;
            s->mag.next = p->empty_mags;
            p->empty_mags = &s->mag;
            batch__task_slot* slots = (batch__task_slot*)batch__align_up(s + 1);
            for (int i = 0; i < BATCH__MAG; i++) c->t[i] = &slots[i].t;
        }
        ok = raw != NULL;
    }
    batch__mutex_unlock(&p->spare_lock);
    if (ok) c->n = BATCH__MAG;
    return ok;
}

/* w == NULL: the non-worker cache, which the caller must guard with ext_lock. */
BATCH__PRIVATE batch__task* batch__task_alloc(batch_pool* p, batch__worker* w) {
    batch__task_cache* c = w ? &w->cache : &p->ext_free;
    if (!c->n && !batch__refill(p, c)) return NULL;
    batch__task* t = c->t[--c->n];
    /* the line of a task allocated a few calls from now: another core may hold it (it ran
       there), and fetching it now keeps the fence of a later submit from waiting for it */
    if (c->n >= BATCH__ALLOC_AHEAD) batch__prefetch_write(c->t[c->n - BATCH__ALLOC_AHEAD], p->prefetchw);
    t->has_arg = false;
    return t;
}

BATCH__PRIVATE void batch__task_free(batch_pool* p, batch__worker* w, batch__task* t) {
    batch__task_cache* c = w ? &w->cache : &p->ext_free;
    if (c->n == 2 * BATCH__MAG) {
        /* the coldest half goes back, so that a producer/consumer pair does not grow memory
           forever; a free magazine exists (see batch__mag) */
        batch__mutex_lock(&p->spare_lock);
        batch__mag* m = p->empty_mags;
        if (!m) {   /* cannot happen; were it to, t would only not be reused (its slab frees it) */
            batch__mutex_unlock(&p->spare_lock);
            return;
        }
        p->empty_mags = m->next;
        memcpy(m->t, c->t, sizeof m->t);
        m->next = p->spare;
        p->spare = m;
        batch__mutex_unlock(&p->spare_lock);
        memmove(c->t, c->t + BATCH__MAG, BATCH__MAG * sizeof(batch__task*));
        c->n = BATCH__MAG;
    }
    c->t[c->n++] = t;
}

/* ---- eventcount: sleep without lost wake-ups --------------------------------------------- */
/* A sleeper announces itself (prepare), re-checks for work, then sleeps only if no notify
   happened since it announced. A notifier publishes work, then looks for announced sleepers.
   The seq_cst RMW + fence on the sleeper side and the fence on the notifier side make this a
   Dekker pair: either the sleeper's re-check sees the work, or the notifier sees the sleeper. */
BATCH__PRIVATE uint64_t batch__ec_prepare(batch_pool* p) {
    uint64_t s = atomic_fetch_add_explicit(&p->ec_state, 1, memory_order_seq_cst);
    BATCH__FENCE_SEQ_CST();
    return s >> BATCH__EC_WAITER_BITS;
}

BATCH__PRIVATE void batch__ec_cancel(batch_pool* p) {
    /* relaxed: the waiter count only tells notifiers whether to take the lock */
    atomic_fetch_sub_explicit(&p->ec_state, 1, memory_order_relaxed);
}

BATCH__PRIVATE void batch__ec_commit(batch_pool* p, uint64_t key, uint64_t deadline) {
    batch__mutex_lock(&p->ec_lock);
    while ((atomic_load_explicit(&p->ec_state, memory_order_relaxed) >> BATCH__EC_WAITER_BITS) ==
           (key & (UINT64_MAX >> BATCH__EC_WAITER_BITS))) {
        if (deadline != UINT64_MAX && batch_now_ns() >= deadline) break;
        batch__cond_wait_slice(&p->ec_cond, &p->ec_lock, deadline);
    }
    batch__mutex_unlock(&p->ec_lock);
    atomic_fetch_sub_explicit(&p->ec_state, 1, memory_order_relaxed);
}

/* The notifier's side after its fence (batch__ec_notify, or a caller that fenced already). */
BATCH__PRIVATE void batch__ec_notify_fenced(batch_pool* p, bool all) {
    uint64_t s = atomic_load_explicit(&p->ec_state, memory_order_relaxed);
    if ((s & BATCH__EC_WAITER_MASK) == 0) return;
    batch__mutex_lock(&p->ec_lock);
    /* relaxed: ordered by ec_lock, which every sleeper holds while it compares epochs */
    atomic_fetch_add_explicit(&p->ec_state, BATCH__EC_EPOCH_ONE, memory_order_relaxed);
    if (all) batch__cond_broadcast(&p->ec_cond);
    else batch__cond_signal(&p->ec_cond);
    batch__mutex_unlock(&p->ec_lock);
}
BATCH__PRIVATE void batch__ec_notify(batch_pool* p, bool all) {
    BATCH__FENCE_SEQ_CST();   /* publish the work before reading waiters */
    batch__ec_notify_fenced(p, all);
}

/* ---- injection queues -------------------------------------------------------------------- */
BATCH__PRIVATE void batch__inj_init(batch__inj_queue* q) {
    atomic_init(&q->stub.t.qnext, NULL);
    atomic_init(&q->tail, &q->stub.t);
    q->head = &q->stub.t;
}

/* Any thread, no lock. */
BATCH__PRIVATE void batch__inj_push(batch_pool* p, batch__task* t) {
    int l = t->level;
    batch__inj_queue* q = &p->inj[l];
    atomic_store_explicit(&t->qnext, NULL, memory_order_relaxed);
    /* seq_cst: a Dekker pair with the consumer that clears the mask bit and then re-reads the
       tail (batch__inj_pop_level); acq_rel would not order this exchange before the mask load */
    batch__task* prev = atomic_exchange_explicit(&q->tail, t, memory_order_seq_cst);
    /* release: the consumer that acquires this link sees the task's fields */
    atomic_store_explicit(&prev->qnext, t, memory_order_release);
    if (!(atomic_load_explicit(&p->inj_mask, memory_order_seq_cst) & (1u << l)))
        atomic_fetch_or_explicit(&p->inj_mask, 1u << l, memory_order_seq_cst);
}

/* inj_lock held. NULL when the queue is empty or a push is half-way (its producer notifies
   after it completes, so nothing is lost). */
BATCH__PRIVATE batch__task* batch__inj_mpsc_pop(batch__inj_queue* q) {
    batch__task* stub = &q->stub.t;
    batch__task* head = q->head;
    batch__task* next = atomic_load_explicit(&head->qnext, memory_order_acquire);
    if (head == stub) {
        if (!next) return NULL;
        q->head = head = next;
        next = atomic_load_explicit(&head->qnext, memory_order_acquire);
    }
    if (next) { q->head = next; return head; }
    if (atomic_load_explicit(&q->tail, memory_order_acquire) != head) return NULL;
    /* head is the last node: queue the stub behind it, so that head can leave */
    atomic_store_explicit(&stub->qnext, NULL, memory_order_relaxed);
    batch__task* prev = atomic_exchange_explicit(&q->tail, stub, memory_order_acq_rel);
    atomic_store_explicit(&prev->qnext, stub, memory_order_release);
    next = atomic_load_explicit(&head->qnext, memory_order_acquire);
    if (next) { q->head = next; return head; }
    return NULL;
}

BATCH__PRIVATE bool batch__inj_empty(batch__inj_queue* q) {
    return q->head == &q->stub.t && atomic_load_explicit(&q->tail, memory_order_seq_cst) == &q->stub.t;
}

/* ---- the outsiders' queue ------------------------------------------------------------------
   NORMAL tasks that threads other than workers submit without a delay - a program feeding its
   pool - go to a growable ring of task pointers. Producers are serialized by ext_lock (which
   they take anyway for a free task) and consumers by inj_lock, so the ring is single-producer
   single-consumer between the two locks and neither side waits for the other; only growth
   takes both. A worker moves up to BATCH__INJECT_GRAB_MAX tasks per lock round trip and
   prefetches them: the linked injection queue would make it chase one cache miss per task.
   FIFO, like the linked queues. It has no bit in inj_mask: a consumer sees work in it by
   comparing its two ends (batch__inj_pending), so a producer touches no line a consumer writes
   on every task, and a consumer that drained it clears nothing the producer must set again. */

/* ext_lock held; takes inj_lock. false: out of memory, nothing changed. */
BATCH__PRIVATE bool batch__ring_grow(batch_pool* p) {
    size_t ncap = p->ring_cap ? p->ring_cap * 2 : 256;
    if (ncap < p->ring_cap || batch__exceeds(ncap, SIZE_MAX / sizeof(batch__task*))) return false;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the ring holds task pointers */
    batch__task** nr = (batch__task**)BATCH_MALLOC(ncap * sizeof *nr, p->alloc_ctx);
    if (!nr) return false;
    batch__spin_lock(&p->inj_lock);
    batch__task** old = atomic_load_explicit(&p->ring, memory_order_relaxed);
    size_t head = atomic_load_explicit(&p->ring_head, memory_order_relaxed);
    size_t count = atomic_load_explicit(&p->ring_tail, memory_order_relaxed) - head;
    for (size_t i = 0; i < count; i++) nr[i] = old[(head + i) & (p->ring_cap - 1)];
    atomic_store_explicit(&p->ring, nr, memory_order_relaxed);   /* both locks are held */
    p->ring_cap = ncap;
    atomic_store_explicit(&p->ring_head, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ring_tail, count, memory_order_relaxed);
    p->ring_head_seen = 0;
    batch__spin_unlock(&p->inj_lock);
    if (old) BATCH_FREE(old, p->alloc_ctx);
    return true;
}

/* ext_lock held. Queues t (published by the release store of ring_tail). false: the ring could
   not grow, nothing changed. */
BATCH__PRIVATE bool batch__ring_push(batch_pool* p, batch__task* t) {
    size_t tail = atomic_load_explicit(&p->ring_tail, memory_order_relaxed);
    if (tail - p->ring_head_seen == p->ring_cap) {
        /* acquire: the consumer read those slots before it moved ring_head past them */
        p->ring_head_seen = atomic_load_explicit(&p->ring_head, memory_order_acquire);
        if (tail - p->ring_head_seen == p->ring_cap) {
            if (!batch__ring_grow(p)) return false;
            tail = atomic_load_explicit(&p->ring_tail, memory_order_relaxed);
        }
    }
    atomic_load_explicit(&p->ring, memory_order_relaxed)[tail & (p->ring_cap - 1)] = t;
    /* release: a consumer that acquires the new tail sees the slot and the task's fields */
    atomic_store_explicit(&p->ring_tail, tail + 1, memory_order_release);
    return true;
}

/* inj_lock held. Takes up to max tasks, oldest first, into out; returns how many. */
BATCH__PRIVATE int batch__ring_take(batch_pool* p, batch__task** out, int max) {
    size_t head = atomic_load_explicit(&p->ring_head, memory_order_relaxed);
    /* acquire: pairs with the release store of ring_tail (batch__ring_push), which published
       the slots and the tasks' fields */
    size_t count = atomic_load_explicit(&p->ring_tail, memory_order_acquire) - head;
    if (!count) return 0;
    int n = count < (size_t)max ? (int)count : max;
    batch__task** ring = atomic_load_explicit(&p->ring, memory_order_relaxed);
    for (int i = 0; i < n; i++) out[i] = ring[(head + (size_t)i) & (p->ring_cap - 1)];
    /* release: the producer may reuse the slots once it sees this */
    atomic_store_explicit(&p->ring_head, head + (size_t)n, memory_order_release);
    return n;
}

/* Any thread: whether the ring holds tasks (a hint, exact under inj_lock). */
BATCH__PRIVATE bool batch__ring_ready(batch_pool* p) {
    /* seq_cst: a sleeper's re-check after its fence (batch__ec_prepare) must see a tail that the
       producer published before the fence of its notify (batch__after_inject) */
    return atomic_load_explicit(&p->ring_tail, memory_order_seq_cst) != atomic_load_explicit(&p->ring_head, memory_order_relaxed);
}

/* The levels that may have injected work: inj_mask, and NORMAL while the ring holds tasks. */
BATCH__PRIVATE unsigned batch__inj_pending(batch_pool* p) {
    unsigned m = atomic_load_explicit(&p->inj_mask, memory_order_relaxed);
    return batch__ring_ready(p) ? m | (1u << BATCH__LEVEL_NORMAL) : m;
}

/* ---- taking injected work ------------------------------------------------------------------ */
/* inj_lock held. One task of level l, or NULL; clears the level's mask bit when it is empty. */
BATCH__PRIVATE batch__task* batch__inj_pop_level(batch_pool* p, int l) {
    batch__task* t = p->front[l];
    if (t) { p->front[l] = t->next; return t; }
    if (l == BATCH__LEVEL_NORMAL && batch__ring_take(p, &t, 1)) return t;
    batch__inj_queue* q = &p->inj[l];
    if ((t = batch__inj_mpsc_pop(q))) return t;
    if (batch__inj_empty(q)) {
        atomic_fetch_and_explicit(&p->inj_mask, ~(1u << l), memory_order_seq_cst);
        /* a push may have slipped in before the bit was cleared: see batch__inj_push */
        if (!batch__inj_empty(q)) atomic_fetch_or_explicit(&p->inj_mask, 1u << l, memory_order_seq_cst);
    }
    return NULL;
}

/* inj_lock held. The oldest task of the highest non-empty level in `levels`. */
BATCH__PRIVATE batch__task* batch__inj_pop(batch_pool* p, unsigned levels) {
    unsigned mask = batch__inj_pending(p) & levels;
    for (int l = 0; l < BATCH__LEVELS; l++) {
        if (!(levels & (1u << l)) || (!(mask & (1u << l)) && !p->front[l])) continue;
        batch__task* t = batch__inj_pop_level(p, l);
        if (t) return t;
    }
    return NULL;
}

/* A worker takes the oldest task of the highest level; from NORMAL and below it also moves up
   to BATCH__INJECT_GRAB_MAX more of that level into its own deque, where other workers can
   steal them: one lock round trip serves many tasks when submissions come in bursts. They are
   pushed newest first, so that the owner, popping LIFO, still runs them oldest first. */
BATCH__PRIVATE batch__task* batch__inj_take(batch_pool* p, batch__worker* w, unsigned levels) {
    batch__task* grab[BATCH__INJECT_GRAB_MAX];
    int n = 0, moved = 0;
    batch__spin_lock(&p->inj_lock);
    batch__task* t = batch__inj_pop(p, levels);
    if (t && t->level >= BATCH__LEVEL_NORMAL) {
        int l = t->level;
        if (l == BATCH__LEVEL_NORMAL && !p->front[l]) {
            n = batch__ring_take(p, grab, BATCH__INJECT_GRAB_MAX);
            if (n < BATCH__INJECT_GRAB_MAX) w->ring_hold = batch_now_ns() + BATCH__RING_HOLD_NS;
        }
        while (n < BATCH__INJECT_GRAB_MAX && (grab[n] = batch__inj_pop_level(p, l))) n++;
        for (int k = 0; k < n; k++) BATCH__PREFETCH(grab[k]);   /* fetched in parallel, run soon */
        int i = n - 1;
        for (; i >= 0; i--)
            if (!batch__deque_push(&w->dq, grab[i])) break;
        moved = n - 1 - i;
        /* a deque that cannot grow: the rest goes back to the front, in order */
        for (; i >= 0; i--) { grab[i]->next = p->front[l]; p->front[l] = grab[i]; }
        if (p->front[l]) atomic_fetch_or_explicit(&p->inj_mask, 1u << l, memory_order_seq_cst);
    }
    batch__spin_unlock(&p->inj_lock);
    if (moved) batch__ec_notify(p, false);
    return t;
}

/* ---- delayed queue --------------------------------------------------------------------- */
BATCH__PRIVATE void batch__heap_up(batch__task** h, size_t i) {
    batch__task* x = h[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h[parent]->due <= x->due) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = x;
}

BATCH__PRIVATE batch__task* batch__heap_pop(batch__task** h, size_t* len) {
    batch__task* top = h[0];
    batch__task* x = h[--*len];
    size_t i = 0, n = *len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1]->due < h[c]->due) c++;
        if (x->due <= h[c]->due) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = x;
    return top;
}

/* Moves every delayed task due at `now` (all of them when now == UINT64_MAX) to the injection
   queues. Returns how many moved. */
BATCH__PRIVATE int batch__release_due(batch_pool* p, uint64_t now) {
    batch__task* list = NULL;
    int n = 0;
    batch__mutex_lock(&p->delay_lock);
    while (p->heap_len && p->heap[0]->due <= now) {
        batch__task* t = batch__heap_pop(p->heap, &p->heap_len);
        t->next = list;
        list = t;
        n++;
    }
    /* relaxed: a hint; the heap itself is read under delay_lock */
    atomic_store_explicit(&p->delay_next, p->heap_len ? p->heap[0]->due : UINT64_MAX, memory_order_relaxed);
    batch__mutex_unlock(&p->delay_lock);
    if (!n) return 0;
    while (list) { batch__task* t = list; list = t->next; batch__inj_push(p, t); }
    batch__ec_notify(p, n > 1);
    /* an inline runner or a quiescence waiter may sleep on done_cond */
    batch__mutex_lock(&p->done_lock);
    batch__cond_broadcast(&p->done_cond);
    batch__mutex_unlock(&p->done_lock);
    return n;
}
/* Releases the delayed tasks that are due now; returns how many moved. */
BATCH__PRIVATE int batch__release_if_due(batch_pool* p) {
    uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
    if (due == UINT64_MAX) return 0;
    uint64_t now = batch_now_ns();
    return due <= now ? batch__release_due(p, now) : 0;
}

/* ---- counters ---------------------------------------------------------------------------- */
BATCH__PRIVATE uint64_t batch__counter_load(const batch_counter* c) {
    /* acquire: a waiter that sees zero sees everything the counted tasks did (the decrements
       are RMWs, so they form one release sequence) */
    return atomic_load_explicit(BATCH__ATOMIC_U64(&c->state_), memory_order_acquire) / BATCH__CNT_ONE;
}

BATCH__PRIVATE void batch__counter_wake(batch_pool* p, uint64_t flags) {
    if (flags & BATCH__CNT_WORKER_WAITING) batch__ec_notify(p, true);
    if (flags & BATCH__CNT_THREAD_WAITING) {
        batch__mutex_lock(&p->done_lock);
        batch__cond_broadcast(&p->done_cond);
        batch__mutex_unlock(&p->done_lock);
    }
}

/* The count is known to be >= 1. Does not touch *c after the decrement: the waiter may return
   and free it at once, so the pool is read first. */
/* Subtracts n (the count is known to be >= n). Once the count is zero the waiter may return,
   free the counter and even destroy the pool: the pool is read first, and a thread that is not
   a worker (workers are joined before the pool is freed) registers as a waker, so that
   batch_pool_destroy does not free the pool under its wake-up. */
BATCH__PRIVATE void batch__counter_subn(batch_counter* c, uint64_t n) {
    batch_pool* p = c->pool_;
    bool outsider = !batch__self(p);
    if (outsider) atomic_fetch_add_explicit(&p->wakers, 1, memory_order_seq_cst);
    /* seq_cst: pairs with the waiter's flag RMW and the eventcount fence (see batch__ec_*) */
    uint64_t old = atomic_fetch_sub_explicit(BATCH__ATOMIC_U64(&c->state_), n * BATCH__CNT_ONE, memory_order_seq_cst);
    if (old / BATCH__CNT_ONE == n && (old & (BATCH__CNT_ONE - 1)))
        batch__counter_wake(p, old);
    if (outsider) atomic_fetch_sub_explicit(&p->wakers, 1, memory_order_release);
}
BATCH__PRIVATE void batch__counter_sub1(batch_counter* c) { batch__counter_subn(c, 1); }

/* A worker defers the decrements of consecutive tasks with the same counter and pays them in
   one RMW: many small tasks of one job then do not bounce the counter's cache line between
   workers. The debt is paid before the worker runs a task of another counter, before it looks
   for work elsewhere or sleeps, and before it waits; those tasks count as executed only then,
   so a quiescent pool owes nothing and no counter is touched after its waiter returned. */
BATCH__PRIVATE void batch__worker_pay(batch__worker* w) {
    if (!w->owed_counter) return;
    batch_counter* c = w->owed_counter;
    uint64_t n = w->owed;
    w->owed_counter = NULL;
    w->owed = 0;
    batch__counter_subn(c, n);
    /* release: quiescence checks acquire executed (see the file comment) */
    atomic_store_explicit(&w->executed, atomic_load_explicit(&w->executed, memory_order_relaxed) + n, memory_order_release);
}

/* ---- running tasks ----------------------------------------------------------------------- */
BATCH__INLINE void batch__call(batch_pool* p, batch_work_fn fn, void* user, bool has_arg, uint64_t arg) {
    if (has_arg) ((batch__arg_fn)(void (*)(void))fn)(p, user, arg);
    else fn(p, user);
}
BATCH__PRIVATE void batch__execute(batch_pool* p, batch__worker* w, batch__task* t) {
    batch_work_fn fn = t->fn;
    void* user = t->user;
    batch_counter* c = t->counter;
    bool has_arg = t->has_arg;
    uint64_t arg = t->due;
    if (!w) {
        batch__call(p, fn, user, has_arg, arg);
        if (c) batch__counter_sub1(c);
        atomic_fetch_add_explicit(&p->ext_executed, 1, memory_order_release);
        return;
    }
    batch__task_free(p, w, t);   /* hot in cache for the tasks fn submits */
    if (w->owed_counter != c) batch__worker_pay(w);
    uint64_t mine = ++w->seq;
    batch__call(p, fn, user, has_arg, arg);
    if (w->seq != mine) w->clock_ns = 0;   /* tasks ran nested (it helped while waiting): no hand-off */
    if (c) {
        w->owed_counter = c;
        w->owed++;
    } else {
        batch__bump(&w->executed);
    }
}

BATCH__PRIVATE batch__task* batch__steal_any(batch_pool* p, batch__worker* w) {
    int n = p->nworkers;
    if (n < 2) return NULL;
    int start = (int)(batch__rand(&w->rng) % (uint64_t)n);
    for (int i = 0; i < n; i++) {
        int v = start + i;
        if (v >= n) v -= n;
        if (v == w->index) continue;
        void* x;
        for (int tries = 0; tries < 4; tries++) {
            batch__steal_result r = batch__deque_steal(&p->workers[v].dq, &x);
            if (r == BATCH__STEAL_OK) { batch__bump(&w->steals); return (batch__task*)x; }
            if (r == BATCH__STEAL_EMPTY) break;
        }
    }
    return NULL;
}

/* One search, in priority order: urgent injected work, the own deque, injected work, due
   delayed work, other workers' deques. */
BATCH__PRIVATE batch__task* batch__find_work(batch_pool* p, batch__worker* w) {
    unsigned mask = atomic_load_explicit(&p->inj_mask, memory_order_relaxed);
    batch__task* t;
    if ((mask & BATCH__HIGH_LEVELS_MASK) && (t = batch__inj_take(p, w, BATCH__HIGH_LEVELS_MASK))) { w->clock_ns = 0; return t; }
    if ((t = (batch__task*)batch__deque_pop(&w->dq))) return t;
    /* the debt stays while the worker looks elsewhere: what it finds is often more of the same
       job (batch__execute pays first if not); an idle worker pays soon (batch__find_work_spin) */
    w->clock_ns = 0;        /* the search takes time no task should be charged with */
    /* A worker that just drained the outsiders' ring waits BATCH__RING_HOLD_NS before it looks
       there again: a producer filling it meanwhile is not slowed by a consumer that takes its
       tasks one by one, each take pulling the lines it writes (batch__ring_push) away from it. */
    unsigned pending = atomic_load_explicit(&p->inj_mask, memory_order_relaxed);
    if (w->ring_hold && batch_now_ns() >= w->ring_hold) w->ring_hold = 0;
    if (!w->ring_hold && batch__ring_ready(p)) pending |= 1u << BATCH__LEVEL_NORMAL;
    if (pending && (t = batch__inj_take(p, w, ~0u))) return t;
    if (batch__release_if_due(p) && (t = batch__inj_take(p, w, ~0u))) return t;
    return batch__steal_any(p, w);
}

/* An idle thread's bounded spin: call batch__spin_more after each fruitless search; it waits a
   little (pause instructions first, then yielding the CPU to other runnable threads) and returns
   false once the pool's budget since the first call is spent. The clock is read once per
   round, which costs far less than the round. */
typedef struct batch__spin_state { uint64_t start; } batch__spin_state;
BATCH__PRIVATE bool batch__spin_more(const batch_pool* p, batch__spin_state* s) {
    if (!p->spin_ns) return false;
    uint64_t now = batch_now_ns();
    if (!s->start) s->start = now;
    uint64_t spent = now - s->start;
    if (spent >= p->spin_ns) return false;
    if (spent < p->relax_ns) { for (int k = 0; k < 32; k++) batch__cpu_relax(); }
    else batch__yield();
    return true;
}

/* An idle worker pays its debt (batch__worker_pay) once it has searched in vain for
   BATCH__PAY_AFTER_NS: a producer feeding the pool does not get the counter's line pulled away
   after every few tasks, and a thread waiting on that counter waits at most that much longer. */
BATCH__PRIVATE batch__task* batch__find_work_spin(batch_pool* p, batch__worker* w) {
    batch__spin_state s = { 0 };
    do {
        batch__task* t = batch__find_work(p, w);
        if (t) return t;
        if (w->owed_counter && (!p->spin_ns || (s.start && batch_now_ns() - s.start >= BATCH__PAY_AFTER_NS)))
            batch__worker_pay(w);
    } while (batch__spin_more(p, &s));
    batch__worker_pay(w);
    return NULL;
}

BATCH__PRIVATE void batch__wake_idle_waiters(batch_pool* p) {
    if (atomic_load_explicit(&p->idle_waiters, memory_order_seq_cst) > 0) {
        batch__mutex_lock(&p->done_lock);
        batch__cond_broadcast(&p->done_cond);
        batch__mutex_unlock(&p->done_lock);
    }
}

BATCH__PRIVATE int batch__worker_main(void* arg) {
    batch__worker* w = (batch__worker*)arg;
    batch_pool* p = w->pool;
    batch__tls_worker = w;
    for (;;) {
        batch__task* t = batch__find_work_spin(p, w);
        if (t) { batch__execute(p, w, t); continue; }
        w->ring_hold = 0;   /* the re-check after prepare must see every queue */
        uint64_t key = batch__ec_prepare(p);
        if ((t = batch__find_work(p, w))) { batch__ec_cancel(p); batch__execute(p, w, t); continue; }
        if (atomic_load_explicit(&p->stop, memory_order_seq_cst)) { batch__ec_cancel(p); break; }
        batch__wake_idle_waiters(p);
        batch__bump(&w->sleeps);
        batch__ec_commit(p, key, atomic_load_explicit(&p->delay_next, memory_order_relaxed));
    }
    batch__tls_worker = NULL;
    return 0;
}

/* ---- inline execution -------------------------------------------------------------------- */
/* Runs one ready task of an inline pool on the calling thread. false: none is ready. */
BATCH__PRIVATE bool batch__inline_run_one(batch_pool* p) {
    batch__release_if_due(p);
    /* the order of a one-worker pool: urgent injected work, then the work tasks submitted
       (newest first, like a worker's own deque: nested waits stay shallow), then the rest */
    batch__spin_lock(&p->inj_lock);
    batch__task* t = batch__inj_pop(p, BATCH__HIGH_LEVELS_MASK);
    if (!t && (t = p->inline_stack)) {
        p->inline_stack = t->next;
        if (!p->inline_stack) atomic_store_explicit(&p->inline_ready, 0, memory_order_relaxed);
    }
    if (!t) t = batch__inj_pop(p, ~0u);
    batch__spin_unlock(&p->inj_lock);
    if (!t) return false;
    batch__task copy = *t;
    batch__spin_lock(&p->ext_lock);
    batch__task_free(p, NULL, t);
    batch__spin_unlock(&p->ext_lock);
    batch_pool* saved = batch__tls_inline;
    batch__tls_inline = p;
    batch__execute(p, NULL, &copy);
    batch__tls_inline = saved;
    batch__wake_idle_waiters(p);
    return true;
}

/* ---- quiescence ------------------------------------------------------------------------- */
BATCH__PRIVATE uint64_t batch__sum_executed(const batch_pool* p) {
    uint64_t e = atomic_load_explicit(&p->ext_executed, memory_order_acquire);
    for (int i = 0; i < p->nworkers; i++) e += atomic_load_explicit(&p->workers[i].executed, memory_order_acquire);
    return e;
}
BATCH__PRIVATE uint64_t batch__sum_submitted(const batch_pool* p) {
    uint64_t s = atomic_load_explicit(&p->ext_submitted, memory_order_acquire) +
                 atomic_load_explicit(&p->ring_submitted, memory_order_acquire);
    for (int i = 0; i < p->nworkers; i++) s += atomic_load_explicit(&p->workers[i].submitted, memory_order_acquire);
    return s;
}
BATCH__PRIVATE bool batch__quiescent(const batch_pool* p) {
    uint64_t e = batch__sum_executed(p);   /* executed first: see the file comment */
    return e == batch__sum_submitted(p);
}

/* Blocks the calling non-worker thread until the pool is quiescent. With `flush_delays` the
   delayed tasks are released at once (shutdown). */
BATCH__PRIVATE void batch__wait_quiescent(batch_pool* p, bool flush_delays) {
    /* seq_cst RMW + fence: a Dekker pair with a worker's fence in ec_prepare before it reads
       idle_waiters (batch__wake_idle_waiters), and with an inline runner's wake-up */
    atomic_fetch_add_explicit(&p->idle_waiters, 1, memory_order_seq_cst);
    BATCH__FENCE_SEQ_CST();
    for (;;) {
        /* the waiter releases due tasks itself: while every worker is busy, waiting for one
           of them to do it would turn the timed wait below into a busy loop */
        if (flush_delays) batch__release_due(p, UINT64_MAX);
        else batch__release_if_due(p);
        if (p->inline_mode && batch__inline_run_one(p)) continue;
        batch__mutex_lock(&p->done_lock);
        bool q = batch__quiescent(p);
        uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
        /* sliced (100 ms) even without delays: a safety net on weakly ordered machines; the
           wake-ups above are what normally end the wait */
        uint64_t limit = batch_now_ns() + (flush_delays ? 10000000u : BATCH__WAIT_SLICE_NS);
        if (!q) batch__cond_wait_slice(&p->done_cond, &p->done_lock, due < limit ? due : limit);
        batch__mutex_unlock(&p->done_lock);
        if (q) break;
    }
    atomic_fetch_sub_explicit(&p->idle_waiters, 1, memory_order_relaxed);
}

/* ---- create / destroy ---------------------------------------------------------------------- */
/* The pool's locks and condition variables, in one order for init and destroy. Returns true
   when all 7 were made; on failure the ones made are destroyed again. */
BATCH__PRIVATE void batch__pool_sync_destroy(batch_pool* p, int made) {
    switch (made) {
        case 7: batch__mutex_destroy(&p->life_lock); /* fall through */
        case 6: batch__cond_destroy(&p->done_cond); /* fall through */
        case 5: batch__mutex_destroy(&p->done_lock); /* fall through */
        case 4: batch__mutex_destroy(&p->delay_lock); /* fall through */
        case 3: batch__cond_destroy(&p->ec_cond); /* fall through */
        case 2: batch__mutex_destroy(&p->ec_lock); /* fall through */
        case 1: batch__mutex_destroy(&p->spare_lock); /* fall through */
        default: break;
    }
}
BATCH__PRIVATE bool batch__pool_sync_init(batch_pool* p) {
    int made = 0;
    batch__spin_init(&p->inj_lock);
    batch__spin_init(&p->ext_lock);
    for (int l = 0; l < BATCH__LEVELS; l++) batch__inj_init(&p->inj[l]);
    if (batch__mutex_init(&p->spare_lock) && ++made &&
        batch__mutex_init(&p->ec_lock) && ++made && batch__cond_init(&p->ec_cond) && ++made &&
        batch__mutex_init(&p->delay_lock) && ++made && batch__mutex_init(&p->done_lock) && ++made &&
        batch__cond_init(&p->done_cond) && ++made && batch__mutex_init(&p->life_lock) && ++made)
        return true;
    batch__pool_sync_destroy(p, made);
    return false;
}

BATCH__PRIVATE void batch__pool_free(batch_pool* p) {
    void* ctx = p->alloc_ctx;
    for (int i = 0; i < p->nworkers; i++)
        if (atomic_load_explicit(&p->workers[i].dq.ring, memory_order_relaxed)) batch__deque_destroy(&p->workers[i].dq);
    while (p->slabs) { batch__slab* s = p->slabs; p->slabs = s->next; BATCH_FREE(s->raw, ctx); }
    if (p->heap) BATCH_FREE(p->heap, ctx);
    batch__task** ring = atomic_load_explicit(&p->ring, memory_order_relaxed);
    if (ring) BATCH_FREE(ring, ctx);
    if (p->raw_workers) BATCH_FREE(p->raw_workers, ctx);
    batch__pool_sync_destroy(p, 7);
    BATCH_FREE(p->raw_self, ctx);
}

BATCH__PRIVATE void batch__join_workers(batch_pool* p, int started) {
    atomic_store_explicit(&p->stop, 1, memory_order_seq_cst);
    batch__ec_notify(p, true);
    for (int i = 0; i < started; i++) batch__thread_join(p->workers[i].thread);
}

BATCH_API batch_result batch_pool_create(batch_pool** out_pool, const batch_pool_desc* desc) {
    if (!out_pool) return BATCH_ERR_INVALID;
    *out_pool = NULL;
    if (!desc) return BATCH_ERR_INVALID;
    if (desc->workers < BATCH_WORKERS_INLINE || desc->workers > BATCH_MAX_WORKERS) return BATCH_ERR_INVALID;
    int cap = desc->deque_capacity ? desc->deque_capacity : 256;
    if (cap < 16 || cap > (1 << 24) || (cap & (cap - 1))) return BATCH_ERR_INVALID;
    if (desc->spin_us < BATCH_SPIN_NONE || desc->spin_us > 1000000) return BATCH_ERR_INVALID;

    int n = desc->workers == 0 ? batch_cpu_count() : desc->workers;
    bool inline_mode = desc->workers == BATCH_WORKERS_INLINE;
#if defined(BATCH_NO_THREADS)
    inline_mode = true;
#endif
    if (inline_mode) n = 0;

    void* ctx = desc->alloc_ctx;
    void* raw = BATCH_MALLOC(sizeof(batch_pool) + BATCH__CACHE_LINE, ctx);
    if (!raw) return BATCH_ERR_NOMEM;
    batch_pool* p = (batch_pool*)batch__align_up(raw);
    memset(p, 0, sizeof *p);
    p->raw_self = raw;
    p->alloc_ctx = ctx;
    int spin_us = desc->spin_us == 0 ? BATCH_SPIN_US_DEFAULT : desc->spin_us == BATCH_SPIN_NONE ? 0 : desc->spin_us;
    p->spin_ns = (uint64_t)spin_us * 1000u;
    p->relax_ns = p->spin_ns / 8 < 50000u ? p->spin_ns / 8 : 50000u;
    p->inline_mode = inline_mode;
    p->tsc = batch__tsc_invariant();
    p->prefetchw = batch__has_prefetchw();
    p->origin = batch__clockpair_now(p->tsc);
    atomic_init(&p->delay_next, UINT64_MAX);
    if (!batch__pool_sync_init(p)) { BATCH_FREE(raw, ctx); return BATCH_ERR_NOMEM; }

    if (n > 0) {
        size_t sz = (size_t)n * sizeof(batch__worker) + BATCH__CACHE_LINE;
        p->raw_workers = BATCH_MALLOC(sz, ctx);
        if (!p->raw_workers) { batch__pool_free(p); return BATCH_ERR_NOMEM; }
        memset(p->raw_workers, 0, sz);
        p->workers = (batch__worker*)batch__align_up(p->raw_workers);
        p->nworkers = n;
        for (int i = 0; i < n; i++) {
            batch__worker* w = &p->workers[i];
            w->pool = p;
            w->index = i;
            w->rng = (uint64_t)0x9E3779B97F4A7C15u * (uint64_t)(unsigned)(i + 1) ^ (uint64_t)(uintptr_t)p;
            if (!w->rng) w->rng = 1;
            if (!batch__deque_init(&w->dq, cap, ctx)) { batch__pool_free(p); return BATCH_ERR_NOMEM; }
        }
        for (int i = 0; i < n; i++) {
            if (!batch__thread_create(&p->workers[i].thread, batch__worker_main, &p->workers[i])) {
                batch__join_workers(p, i);
                batch__pool_free(p);
                return BATCH_ERR_THREAD;
            }
        }
    }
    *out_pool = p;
    return BATCH_OK;
}

BATCH_API batch_result batch_pool_shutdown(batch_pool* p) {
    if (!p) return BATCH_ERR_INVALID;
    if (batch__self(p) || batch__tls_inline == p) return BATCH_ERR_BUSY;
    batch__mutex_lock(&p->life_lock);
    if (!p->joined) {
        atomic_store_explicit(&p->shutdown, 1, memory_order_seq_cst);
        /* seq_cst, with the submitter's seq_cst increment of ext_active then load of shutdown:
           once this loop ends, no non-worker can enqueue any more; batch__submit_outsider checks
           the flag under ext_lock, so one round trip of the lock waits for the one inside */
        while (atomic_load_explicit(&p->ext_active, memory_order_seq_cst) != 0) batch__yield();
        batch__spin_lock(&p->ext_lock);
        batch__spin_unlock(&p->ext_lock);
        batch__wait_quiescent(p, true);
        batch__join_workers(p, p->nworkers);
        p->joined = true;
    }
    batch__mutex_unlock(&p->life_lock);
    return BATCH_OK;
}

BATCH_API batch_result batch_pool_destroy(batch_pool* p) {
    if (!p) return BATCH_OK;
    batch_result r = batch_pool_shutdown(p);
    if (r != BATCH_OK) return r;
    /* acquire: pairs with the release decrement of a waker that has finished with the pool */
    while (atomic_load_explicit(&p->wakers, memory_order_acquire) != 0) batch__yield();
    batch__pool_free(p);
    return BATCH_OK;
}

BATCH_API batch_result batch_pool_wait_idle(batch_pool* p) {
    if (!p) return BATCH_ERR_INVALID;
    if (batch__self(p) || batch__tls_inline == p) return BATCH_ERR_BUSY;
    batch__wait_quiescent(p, false);
    return BATCH_OK;
}

BATCH_API int batch_pool_workers(const batch_pool* p) { return p ? p->nworkers : 0; }

BATCH_API int batch_pool_worker_index(const batch_pool* p) {
    batch__worker* w = p ? batch__self(p) : NULL;
    return w ? w->index : -1;
}

BATCH_API batch_result batch_pool_get_stats(const batch_pool* p, batch_pool_stats* out) {
    if (!p || !out) return BATCH_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->workers = p->nworkers;
    out->executed = batch__sum_executed(p);
    out->submitted = batch__sum_submitted(p);
    for (int i = 0; i < p->nworkers; i++) {
        out->steals += atomic_load_explicit(&p->workers[i].steals, memory_order_relaxed);
        out->sleeps += atomic_load_explicit(&p->workers[i].sleeps, memory_order_relaxed);
    }
    return BATCH_OK;
}

BATCH_API uint64_t batch_pool_worker_executed(const batch_pool* p, int i) {
    if (!p || i < 0 || i >= p->nworkers) return 0;
    return atomic_load_explicit(&p->workers[i].executed, memory_order_relaxed);
}

/* ---- submit ---------------------------------------------------------------------------------- */
/* After queueing on the injection queues: wake a worker, or an inline runner. */
BATCH__PRIVATE void batch__wake_inline(batch_pool* p) {
    batch__mutex_lock(&p->done_lock);
    batch__cond_broadcast(&p->done_cond);
    batch__mutex_unlock(&p->done_lock);
}
BATCH__PRIVATE void batch__after_inject(batch_pool* p) {
    batch__ec_notify(p, false);
    if (p->inline_mode) batch__wake_inline(p);
}

/* Queues an initialised task (counter already incremented). Cannot fail except for delayed
   tasks (heap growth): then returns false and nothing was queued. */
BATCH__PRIVATE bool batch__enqueue(batch_pool* p, batch__worker* w, batch__task* t, uint64_t delay_ns) {
    if (delay_ns && !atomic_load_explicit(&p->shutdown, memory_order_relaxed)) {
        t->due = batch_now_ns() + delay_ns;
        batch__mutex_lock(&p->delay_lock);
        if (p->heap_len == p->heap_cap) {
            size_t ncap = p->heap_cap ? p->heap_cap * 2 : 64;
            /* NOLINTNEXTLINE(bugprone-sizeof-expression): the heap holds task pointers */
            batch__task** nh = (batch__task**)BATCH_REALLOC(p->heap, ncap * sizeof *nh, p->alloc_ctx);
            if (!nh) { batch__mutex_unlock(&p->delay_lock); return false; }
            p->heap = nh;
            p->heap_cap = ncap;
        }
        if (w) batch__bump(&w->submitted);
        else atomic_fetch_add_explicit(&p->ext_submitted, 1, memory_order_release);
        p->heap[p->heap_len++] = t;
        batch__heap_up(p->heap, p->heap_len - 1);
        bool first = p->heap[0] == t;
        if (first) atomic_store_explicit(&p->delay_next, t->due, memory_order_relaxed);
        batch__mutex_unlock(&p->delay_lock);
        /* sleepers re-arm their timers to the new earliest deadline */
        if (first) {
            batch__ec_notify(p, true);
            batch__mutex_lock(&p->done_lock);
            batch__cond_broadcast(&p->done_cond);
            batch__mutex_unlock(&p->done_lock);
        }
        return true;
    }
    if (w) {
        batch__bump(&w->submitted);
        if (t->level == BATCH__LEVEL_NORMAL && batch__deque_push(&w->dq, t)) {
            batch__ec_notify(p, false);
            return true;
        }
        /* other priorities, or a deque that cannot grow: the injection queue needs no memory */
    } else {
        /* an RMW: delayed submissions count here too, under delay_lock */
        atomic_fetch_add_explicit(&p->ext_submitted, 1, memory_order_release);
        if (batch__tls_inline == p && t->level == BATCH__LEVEL_NORMAL) {
            /* a task of an inline pool submits: LIFO, like a worker's deque (inline_run_one) */
            batch__spin_lock(&p->inj_lock);
            t->next = p->inline_stack;
            p->inline_stack = t;
            atomic_store_explicit(&p->inline_ready, 1, memory_order_relaxed);
            batch__spin_unlock(&p->inj_lock);
            /* another thread may be waiting on this inline pool for exactly this task */
            batch__mutex_lock(&p->done_lock);
            batch__cond_broadcast(&p->done_cond);
            batch__mutex_unlock(&p->done_lock);
            return true;
        }
    }
    batch__inj_push(p, t);
    batch__after_inject(p);
    return true;
}

/* Internal: a worker of p queues n NORMAL-priority tasks fn(p, users[i]) counted by c, with one
   counter RMW and one wake-up for all of them (a task that releases many successors). Returns
   how many were queued from the front of users (fewer only when out of task memory). */
/* Queues task t (fields set) at NORMAL level on worker w's own deque, or on the injection queue
   if the deque cannot grow. */
BATCH__PRIVATE void batch__push_own(batch_pool* p, batch__worker* w, batch__task* t) {
    t->level = BATCH__LEVEL_NORMAL;
    batch__bump(&w->submitted);
    if (!batch__deque_push(&w->dq, t)) batch__inj_push(p, t);
}

BATCH__PRIVATE size_t batch__submit_bulk(batch_pool* p, batch__worker* w, batch_work_fn fn, void* const* users, size_t n,
                                         batch_counter* c) {
    size_t k = 0;
    if (c && n)   /* relaxed: as in batch_pool_submit; the pushes below publish the tasks */
        atomic_fetch_add_explicit(BATCH__ATOMIC_U64(&c->state_), n * BATCH__CNT_ONE, memory_order_relaxed);
    for (; k < n; k++) {
        batch__task* t = batch__task_alloc(p, w);
        if (!t) break;
        t->fn = fn;
        t->user = users[k];
        t->counter = c;
        batch__push_own(p, w, t);
    }
    if (c && k < n)   /* give back the count of what was not queued; no task of those ran */
        atomic_fetch_sub_explicit(BATCH__ATOMIC_U64(&c->state_), (n - k) * BATCH__CNT_ONE, memory_order_relaxed);
    if (k) batch__ec_notify(p, k > 1);
    return k;
}

/* Internal: a worker of p queues fn(p, user, arg) on its own deque, counted by c. false: out of
   memory, nothing queued. */
BATCH__PRIVATE bool batch__submit_arg(batch_pool* p, batch__worker* w, batch__arg_fn fn, void* user, uint64_t arg,
                                      batch_counter* c) {
    batch__task* t = batch__task_alloc(p, w);
    if (!t) return false;
    if (c)   /* relaxed: as in batch_pool_submit; the push publishes the task */
        atomic_fetch_add_explicit(BATCH__ATOMIC_U64(&c->state_), BATCH__CNT_ONE, memory_order_relaxed);
    t->fn = (batch_work_fn)(void (*)(void))fn;
    t->user = user;
    t->counter = c;
    t->has_arg = true;
    t->due = arg;
    batch__push_own(p, w, t);
    batch__ec_notify(p, false);
    return true;
}

/* The common case of a program feeding its pool: a thread that is neither a worker nor running
   the pool inline submits a NORMAL task without a delay. One lock, ext_lock, covers the shutdown
   check, the free task, the count and the ring (batch_pool_shutdown takes it once after it sets
   the flag, so no submission slips past it), instead of the general path's ext_active. */
BATCH__PRIVATE batch_result batch__submit_outsider(batch_pool* p, const batch_work* work) {
    batch_counter* c = work->counter;
    batch__spin_lock(&p->ext_lock);
    if (atomic_load_explicit(&p->shutdown, memory_order_relaxed)) {   /* ordered by ext_lock */
        batch__spin_unlock(&p->ext_lock);
        return BATCH_ERR_SHUTDOWN;
    }
    batch__task* t = batch__task_alloc(p, NULL);
    if (t) {
        /* counted before the push publishes the task (relaxed: the push is a release), and
           before the task's fields are written: a locked add waits for earlier stores */
        if (c) atomic_fetch_add_explicit(BATCH__ATOMIC_U64(&c->state_), BATCH__CNT_ONE, memory_order_relaxed);
        /* one writer (ext_lock); release: quiescence checks acquire it */
        uint64_t n = atomic_load_explicit(&p->ring_submitted, memory_order_relaxed);
        atomic_store_explicit(&p->ring_submitted, n + 1, memory_order_release);
        t->fn = work->fn;
        t->user = work->user_data;
        t->counter = c;
        t->level = BATCH__LEVEL_NORMAL;
        if (!batch__ring_push(p, t)) {
            /* back to where they were; nothing ran, so nobody can be at zero */
            if (c) atomic_fetch_sub_explicit(BATCH__ATOMIC_U64(&c->state_), BATCH__CNT_ONE, memory_order_relaxed);
            atomic_store_explicit(&p->ring_submitted, n, memory_order_relaxed);
            batch__task_free(p, NULL, t);
            t = NULL;
        }
    }
    batch__spin_unlock(&p->ext_lock);
    if (!t) return BATCH_ERR_NOMEM;
    batch__after_inject(p);
    return BATCH_OK;
}

BATCH_API batch_result batch_pool_submit(batch_pool* p, const batch_work* work) {
    if (!p || !work || !work->fn) return BATCH_ERR_INVALID;
    if (BATCH__ENUM_BAD(work->priority, BATCH_PRIORITY_COUNT_)) return BATCH_ERR_INVALID;
    if (work->delay_ns > ((uint64_t)1 << 62)) return BATCH_ERR_INVALID;
    if (work->counter && work->counter->pool_ != p) return BATCH_ERR_INVALID;
    batch__worker* w = batch__self(p);
    bool outsider = !w && batch__tls_inline != p;
    if (outsider && !work->delay_ns &&
        (work->priority == BATCH_PRIORITY_DEFAULT || work->priority == BATCH_PRIORITY_NORMAL))
        return batch__submit_outsider(p, work);
    if (outsider) {
        /* seq_cst: see batch_pool_shutdown */
        atomic_fetch_add_explicit(&p->ext_active, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&p->shutdown, memory_order_seq_cst)) {
            atomic_fetch_sub_explicit(&p->ext_active, 1, memory_order_seq_cst);
            return BATCH_ERR_SHUTDOWN;
        }
    }
    batch_result r = BATCH_OK;
    batch__task* t;
    if (w) {
        t = batch__task_alloc(p, w);
    } else {
        batch__spin_lock(&p->ext_lock);
        t = batch__task_alloc(p, NULL);
        batch__spin_unlock(&p->ext_lock);
    }
    if (!t) {
        r = BATCH_ERR_NOMEM;
    } else {
        t->fn = work->fn;
        t->user = work->user_data;
        t->counter = work->counter;
        t->level = (uint8_t)(work->priority == BATCH_PRIORITY_DEFAULT ? BATCH__LEVEL_NORMAL : (int)work->priority - 1);
        if (t->counter)  /* relaxed: the task is published after this (release), and sub is RMW */
            atomic_fetch_add_explicit(BATCH__ATOMIC_U64(&t->counter->state_), BATCH__CNT_ONE, memory_order_relaxed);
        if (!batch__enqueue(p, w, t, work->delay_ns)) {
            if (t->counter)  /* back to where it was; no task ran, so nobody can be at zero */
                atomic_fetch_sub_explicit(BATCH__ATOMIC_U64(&t->counter->state_), BATCH__CNT_ONE, memory_order_relaxed);
            if (w) batch__task_free(p, w, t);
            else { batch__spin_lock(&p->ext_lock); batch__task_free(p, NULL, t); batch__spin_unlock(&p->ext_lock); }
            r = BATCH_ERR_NOMEM;
        }
    }
    if (outsider) atomic_fetch_sub_explicit(&p->ext_active, 1, memory_order_seq_cst);
    return r;
}

/* ---- counters (API) ----------------------------------------------------------------------- */
BATCH_API batch_result batch_counter_init(batch_counter* c, batch_pool* pool) {
    if (!c || !pool) return BATCH_ERR_INVALID;
    atomic_store_explicit(BATCH__ATOMIC_U64(&c->state_), 0, memory_order_relaxed);
    c->pool_ = pool;
    return BATCH_OK;
}

BATCH_API batch_result batch_counter_add(batch_counter* c, uint64_t n) {
    if (!c || !c->pool_ || n == 0 || n > (UINT64_MAX >> 3)) return BATCH_ERR_INVALID;
    atomic_fetch_add_explicit(BATCH__ATOMIC_U64(&c->state_), n * BATCH__CNT_ONE, memory_order_relaxed);
    return BATCH_OK;
}

BATCH_API batch_result batch_counter_done(batch_counter* c) {
    if (!c || !c->pool_) return BATCH_ERR_INVALID;
    batch_pool* p = c->pool_;   /* read first: once the count is zero the waiter may free c */
    bool outsider = !batch__self(p);
    if (outsider) atomic_fetch_add_explicit(&p->wakers, 1, memory_order_seq_cst);   /* see batch__counter_subn */
    uint64_t s = atomic_load_explicit(BATCH__ATOMIC_U64(&c->state_), memory_order_relaxed);
    batch_result r = BATCH_OK;
    do {
        if (s < BATCH__CNT_ONE) { r = BATCH_ERR_INVALID; break; }
        /* seq_cst: as in batch__counter_subn */
    } while (!atomic_compare_exchange_weak_explicit(BATCH__ATOMIC_U64(&c->state_), &s, s - BATCH__CNT_ONE,
                                                    memory_order_seq_cst, memory_order_relaxed));
    if (r == BATCH_OK && s / BATCH__CNT_ONE == 1 && (s & (BATCH__CNT_ONE - 1))) batch__counter_wake(p, s);
    if (outsider) atomic_fetch_sub_explicit(&p->wakers, 1, memory_order_release);
    return r;
}

BATCH_API uint64_t batch_counter_value(const batch_counter* c) { return c ? batch__counter_load(c) : 0; }

BATCH__PRIVATE batch_result batch__counter_wait(batch_counter* c, uint64_t deadline) {
    if (!c || !c->pool_) return BATCH_ERR_INVALID;
    batch_pool* p = c->pool_;
    _Atomic uint64_t* st = BATCH__ATOMIC_U64(&c->state_);
    batch__worker* w = batch__self(p);
    if (w) {
        /* a worker helps: it runs any task until the count is zero */
        batch__spin_state spin = { 0 };
        for (;;) {
            batch__worker_pay(w);   /* we may owe this very counter */
            if (batch__counter_load(c) == 0) break;
            batch__task* t = batch__find_work(p, w);
            if (t) { batch__execute(p, w, t); spin.start = 0; continue; }
            if (deadline != UINT64_MAX && batch_now_ns() >= deadline) return BATCH_ERR_TIMEOUT;
            if (batch__spin_more(p, &spin)) continue;
            atomic_fetch_or_explicit(st, BATCH__CNT_WORKER_WAITING, memory_order_seq_cst);
            w->ring_hold = 0;   /* the re-check after prepare must see every queue */
            uint64_t key = batch__ec_prepare(p);
            if (batch__counter_load(c) == 0) { batch__ec_cancel(p); break; }
            if ((t = batch__find_work(p, w))) { batch__ec_cancel(p); batch__execute(p, w, t); spin.start = 0; continue; }
            uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
            batch__ec_commit(p, key, due < deadline ? due : deadline);
            spin.start = 0;
        }
        return BATCH_OK;
    }
    if (p->inline_mode) {
        while (batch__counter_load(c) != 0) {
            if (batch__inline_run_one(p)) continue;
            if (deadline != UINT64_MAX && batch_now_ns() >= deadline) return BATCH_ERR_TIMEOUT;
            /* nothing ready: a delayed task, or another thread must finish the count */
            atomic_fetch_or_explicit(st, BATCH__CNT_THREAD_WAITING, memory_order_seq_cst);
            batch__mutex_lock(&p->done_lock);
            uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
            bool ready = batch__inj_pending(p) != 0 ||
                         atomic_load_explicit(&p->inline_ready, memory_order_relaxed) != 0;
            if (batch__counter_load(c) != 0 && !ready)
                batch__cond_wait_slice(&p->done_cond, &p->done_lock, due < deadline ? due : deadline);
            batch__mutex_unlock(&p->done_lock);
        }
        return BATCH_OK;
    }
    /* any other thread sleeps */
    atomic_fetch_or_explicit(st, BATCH__CNT_THREAD_WAITING, memory_order_seq_cst);
    batch_result r = BATCH_OK;
    batch__mutex_lock(&p->done_lock);
    while (batch__counter_load(c) != 0) {
        if (deadline != UINT64_MAX && batch_now_ns() >= deadline) { r = BATCH_ERR_TIMEOUT; break; }
        batch__cond_wait_slice(&p->done_cond, &p->done_lock, deadline);
    }
    batch__mutex_unlock(&p->done_lock);
    return r;
}

/* A waiter leaves: clear the waiter flags if the count is still zero, so that later zero
   crossings of a reused counter do not broadcast for nobody. */
BATCH__PRIVATE batch_result batch__counter_wait_clear(batch_counter* c, uint64_t deadline) {
    batch_result r = batch__counter_wait(c, deadline);
    if (r == BATCH_OK) {
        uint64_t s = atomic_load_explicit(BATCH__ATOMIC_U64(&c->state_), memory_order_relaxed);
        if (s && s < BATCH__CNT_ONE)
            atomic_compare_exchange_strong_explicit(BATCH__ATOMIC_U64(&c->state_), &s, 0, memory_order_relaxed,
                                                    memory_order_relaxed);
    }
    return r;
}

BATCH_API batch_result batch_counter_wait(batch_counter* c) { return batch__counter_wait_clear(c, UINT64_MAX); }

BATCH_API batch_result batch_counter_wait_timeout(batch_counter* c, uint64_t timeout_ns) {
    uint64_t now = batch_now_ns();
    uint64_t deadline = timeout_ns >= UINT64_MAX - now ? UINT64_MAX - 1 : now + timeout_ns;
    return batch__counter_wait_clear(c, deadline);
}

/* ---- parallel-for ---------------------------------------------------------------------------- */
/* The range is split into up to BATCH__PFOR_SEGS segments of whole chunks, one cursor each on
   its own line. A claimer starts on its own segment (a ticket) and moves on to the next when it
   is used up, so claimers share a cursor only near the end: with one cursor for all, every
   chunk's fetch-add moved its line between cores. Chunks are the same as with one cursor. */
#define BATCH__PFOR_SEGS 8
typedef struct batch__pfor_seg { BATCH__ALIGNED _Atomic size_t next; size_t end; } batch__pfor_seg;
typedef struct batch__pfor {
    batch__pfor_seg seg[BATCH__PFOR_SEGS];
    BATCH__ALIGNED _Atomic unsigned ticket;
    unsigned nseg;
    size_t chunk;
    batch_range_fn fn;
    void* user;
} batch__pfor;

BATCH__PRIVATE void batch__pfor_claim(batch_pool* p, batch__pfor* f) {
    /* relaxed: where a claimer starts does not matter for correctness */
    unsigned home = atomic_fetch_add_explicit(&f->ticket, 1, memory_order_relaxed) % f->nseg;
    for (unsigned k = 0; k < f->nseg; k++) {
        batch__pfor_seg* s = &f->seg[(home + k) % f->nseg];
        for (;;) {
            /* relaxed: chunks are independent; the counter publishes their results to the caller */
            size_t b = atomic_fetch_add_explicit(&s->next, f->chunk, memory_order_relaxed);
            if (b >= s->end) break;
            size_t e = s->end - b < f->chunk ? s->end : b + f->chunk;
            f->fn(p, b, e, f->user);
        }
    }
}

BATCH__PRIVATE void batch__pfor_helper(batch_pool* p, void* user) { batch__pfor_claim(p, (batch__pfor*)user); }

/* Splits chunks over f's segments as evenly as whole chunks allow; the last ends at n. */
BATCH__PRIVATE void batch__pfor_split(batch__pfor* f, size_t n, size_t chunks, unsigned nseg) {
    f->nseg = nseg;
    size_t per = chunks / nseg, extra = chunks % nseg, first = 0;
    for (unsigned k = 0; k < nseg; k++) {
        atomic_init(&f->seg[k].next, first * f->chunk);
        first += per + (k < extra ? 1 : 0);
        f->seg[k].end = k + 1 == nseg ? n : first * f->chunk;
    }
}

BATCH_API batch_result batch_pool_parallel_for(batch_pool* p, size_t n, size_t chunk, batch_range_fn fn, void* user) {
    if (!p || !fn) return BATCH_ERR_INVALID;
    if (n == 0) return BATCH_OK;
    int threads = p->nworkers + 1;
    if (chunk == 0) chunk = n / (8 * (size_t)threads);
    if (chunk == 0) chunk = 1;
    if (chunk > n) chunk = n;
    size_t chunks = (n - 1) / chunk + 1;
    batch__worker* w = batch__self(p);
    size_t helpers = (size_t)(p->nworkers - (w ? 1 : 0));
    if (helpers > chunks - 1) helpers = chunks - 1;
    /* every claimer overshoots a segment's end (at most n) by at most one chunk: no cursor wraps */
    if (chunk > (SIZE_MAX - n) / (helpers + 1)) return BATCH_ERR_INVALID;
    batch__pfor f;
    f.chunk = chunk;
    f.fn = fn;
    f.user = user;
    atomic_init(&f.ticket, 0);
    batch__pfor_split(&f, n, chunks, helpers + 1 < BATCH__PFOR_SEGS ? (unsigned)helpers + 1 : BATCH__PFOR_SEGS);
    batch_counter c;
    batch_counter_init(&c, p);
    for (size_t i = 0; i < helpers; i++) {
        /* a helper that cannot be queued is not needed for correctness: the caller claims too */
        if (batch_pool_submit(p, &(batch_work){ .fn = batch__pfor_helper, .user_data = &f, .counter = &c }) != BATCH_OK)
            break;
    }
    batch__pfor_claim(p, &f);
    return batch_counter_wait(&c);
}

#endif /* BATCH__POOL_C */
