/* deque_relacy.cpp - batch_impl/deque.c (the Chase-Lev deque after Le et al. 2013) checked under
   the C11 memory model by Relacy Race Detector (Debian's relacy-dev; `make relacy`).

   spin (the .pml models beside this file) explores interleavings only; Relacy also lets every
   rl::atomic load read any store the C11 rules allow (stale values included), honours each
   memory_order and fence, and reports a data race on an rl::var accessed by two threads without
   happens-before. This is a line-by-line transcription of deque.c's push, grow, pop and steal
   with exactly the orders and fences deque.c uses; each is tagged with the deque.c line it
   mirrors ("deque.c:NN"). The item pointed to by a slot carries an rl::var payload: the owner
   writes it before push, whoever takes the item reads and rewrites it, so publication through
   push's release of bottom and steal's acquire is checked as a data race, and two takers of one
   item are caught both as a race and by the exactly-once count. The ring's capacity is an rl::var
   too: a thief that reaches a grown ring without happens-before races with grow's write.

   Test: one owner pushes N_ITEMS items (the ring starts at 2 slots, so push grows it and reuses
   slots thieves freed) interleaved with pops, then pops until empty; N_THIEVES thieves steal a
   few times each. Afterwards every item must have been taken exactly once.

   BUGGY (-DBUGGY or -DBUGGY=1..5) weakens one order the algorithm depends on; Relacy must fail:
     1: pop's seq_cst fence becomes acq_rel (deque.c:106): pop and a steal both take one item;
     2: steal's seq_cst fence becomes acq_rel (deque.c:130): the same double take from the thief;
     3: steal's acquire load of bottom becomes relaxed (deque.c:132): the item is read unpublished;
     4: push's release store of bottom becomes relaxed (deque.c:94): likewise, from the owner side;
     5: steal's acquire load of the ring becomes relaxed (deque.c:135): a grown ring is read
        without happens-before.
   Built as part of eventcount_relacy.cpp (DEQUE_RELACY_PART) it is the deque only, never buggy. */
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <relacy/relacy.hpp>

#if defined(DEQUE_RELACY_PART) || !defined(BUGGY)
#  define DQ_BUG 0
#else
#  define DQ_BUG BUGGY
#endif
#if DQ_BUG == 0
#  define DQ_BUG_WHAT ""
#elif DQ_BUG == 1
#  define DQ_BUG_WHAT " (BUGGY=1: pop's seq_cst fence is acq_rel)"
#elif DQ_BUG == 2
#  define DQ_BUG_WHAT " (BUGGY=2: steal's seq_cst fence is acq_rel)"
#elif DQ_BUG == 3
#  define DQ_BUG_WHAT " (BUGGY=3: steal loads bottom relaxed)"
#elif DQ_BUG == 4
#  define DQ_BUG_WHAT " (BUGGY=4: push stores bottom relaxed)"
#elif DQ_BUG == 5
#  define DQ_BUG_WHAT " (BUGGY=5: steal loads the ring relaxed)"
#else
#  error "BUGGY is 1..5"
#endif
#if DQ_BUG == 1
#  define DQ_POP_FENCE memory_order_acq_rel
#else
#  define DQ_POP_FENCE memory_order_seq_cst
#endif
#if DQ_BUG == 2
#  define DQ_STEAL_FENCE memory_order_acq_rel
#else
#  define DQ_STEAL_FENCE memory_order_seq_cst
#endif
#if DQ_BUG == 3
#  define DQ_STEAL_BOTTOM memory_order_relaxed
#else
#  define DQ_STEAL_BOTTOM memory_order_acquire
#endif
#if DQ_BUG == 4
#  define DQ_PUSH_BOTTOM memory_order_relaxed
#else
#  define DQ_PUSH_BOTTOM memory_order_release
#endif
#if DQ_BUG == 5
#  define DQ_STEAL_RING memory_order_relaxed
#else
#  define DQ_STEAL_RING memory_order_acquire
#endif

/* relacy.hpp turns memory_order_X into "mo_X, $" (the order plus the source position). */
using rl::mo_relaxed; using rl::mo_acquire; using rl::mo_release;
using rl::mo_acq_rel; using rl::mo_seq_cst;

namespace dq {

enum { MAX_CAP = 16 };  /* the model never grows past this (asserted) */

struct ring {                        /* deque.c:18 batch__ring */
    rl::var<int64_t> mask;           /* capacity - 1 (plain in deque.c: published with the ring) */
    ring* retired;
    rl::atomic<void*> slot[MAX_CAP]; /* _Atomic(void*) slot[] */
};

struct deque {                       /* deque.c:24 batch__deque */
    rl::atomic<int64_t> top;
    rl::atomic<int64_t> bottom;
    rl::atomic<ring*> ring_;
    int64_t top_seen;                /* owner only */
};

enum steal_result { STEAL_EMPTY, STEAL_LOST, STEAL_OK };

/* The one departure from deque.c: its ring_new leaves the slots uninitialised (malloc). A thief
   whose top is older than the top grow copied from can load a never-written slot of the new ring
   (deque.c:136); its CAS on top must then fail, as top has moved past that index, and the value
   is dropped. Relacy reports any load of an uninitialised rl::atomic, so the model writes POISON
   into every new slot instead and asserts that POISON is never returned by a successful steal or
   pop (take() asserts it). -DUNINIT_SLOTS keeps deque.c's behaviour: run with "0 b2" (every
   schedule with up to 2 preemptions), Relacy then reports that read as ACCESS TO UNINITIALIZED
   VARIABLE (iteration 1918397 with relacy-dev 0.0+git20191025). */
static void* const POISON = reinterpret_cast<void*>(static_cast<uintptr_t>(0xdead));

inline ring* ring_new(int64_t cap) {                         /* deque.c:34 */
    RL_ASSERT(cap <= MAX_CAP);
    ring* r = new ring;
    r->mask($) = cap - 1;
    r->retired = NULL;
#ifndef UNINIT_SLOTS
    for (int64_t i = 0; i < cap; i++) r->slot[i].store(POISON, memory_order_relaxed);
#endif
    return r;
}

inline void deque_init(deque* d, int64_t capacity) {          /* deque.c:43 */
    ring* r = ring_new(capacity);
    d->top.store(0, memory_order_relaxed);                   /* atomic_init */
    d->bottom.store(0, memory_order_relaxed);
    d->ring_.store(r, memory_order_relaxed);
    d->top_seen = 0;
}

inline void deque_destroy(deque* d) {                         /* deque.c:55 */
    ring* r = d->ring_.load(memory_order_relaxed);
    while (r) { ring* next = r->retired; delete r; r = next; }
    d->ring_.store(NULL, memory_order_relaxed);
}

inline ring* deque_grow(deque* d, ring* old, int64_t t, int64_t b) {   /* deque.c:62 */
    int64_t old_mask = old->mask($);
    ring* r = ring_new((old_mask + 1) * 2);
    int64_t new_mask = r->mask($);
    for (int64_t i = t; i < b; i++) {
        void* x = old->slot[i & old_mask].load(memory_order_relaxed);   /* deque.c:68 */
        r->slot[i & new_mask].store(x, memory_order_relaxed);           /* deque.c:69 */
    }
    r->retired = old;
    d->ring_.store(r, memory_order_release);                            /* deque.c:73 */
    return r;
}

inline bool deque_push(deque* d, void* x) {                    /* deque.c:78 */
    int64_t b = d->bottom.load(memory_order_relaxed);                   /* deque.c:79 */
    ring* r = d->ring_.load(memory_order_relaxed);                      /* deque.c:80 */
    if (b - d->top_seen > r->mask($)) {                                 /* deque.c:83 */
        int64_t t = d->top.load(memory_order_acquire);                  /* deque.c:85 */
        d->top_seen = t;
        if (b - t > r->mask($)) {
            r = deque_grow(d, r, t, b);
            if (!r) return false;
        }
    }
    r->slot[b & r->mask($)].store(x, memory_order_relaxed);             /* deque.c:92 */
    d->bottom.store(b + 1, DQ_PUSH_BOTTOM);                             /* deque.c:94 release */
    return true;
}

inline void* deque_pop(deque* d) {                              /* deque.c:99 */
    int64_t b = d->bottom.load(memory_order_relaxed) - 1;               /* deque.c:100 */
    ring* r = d->ring_.load(memory_order_relaxed);                      /* deque.c:101 */
    d->bottom.store(b, memory_order_relaxed);                           /* deque.c:105 */
    rl::atomic_thread_fence(DQ_POP_FENCE);                              /* deque.c:106 seq_cst */
    int64_t t = d->top.load(memory_order_relaxed);                      /* deque.c:107 */
    void* x = NULL;
    if (t <= b) {
        x = r->slot[b & r->mask($)].load(memory_order_relaxed);         /* deque.c:110 */
        if (t == b) {
            if (!d->top.compare_exchange_strong(t, t + 1, memory_order_seq_cst,
                                                memory_order_relaxed))  /* deque.c:113 */
                x = NULL;
            d->bottom.store(b + 1, memory_order_release);               /* deque.c:118 */
        }
    } else {
        d->bottom.store(b + 1, memory_order_release);                   /* deque.c:121 */
    }
    return x;
}

inline steal_result deque_steal(deque* d, void** out) {        /* deque.c:127 */
    int64_t t = d->top.load(memory_order_acquire);                      /* deque.c:129 */
    rl::atomic_thread_fence(DQ_STEAL_FENCE);                            /* deque.c:130 seq_cst */
    int64_t b = d->bottom.load(DQ_STEAL_BOTTOM);                        /* deque.c:132 acquire */
    if (t >= b) return STEAL_EMPTY;
    ring* r = d->ring_.load(DQ_STEAL_RING);                             /* deque.c:135 acquire */
    void* x = r->slot[t & r->mask($)].load(memory_order_relaxed);       /* deque.c:136 */
    if (!d->top.compare_exchange_strong(t, t + 1, memory_order_seq_cst,
                                        memory_order_relaxed))          /* deque.c:137 */
        return STEAL_LOST;
    *out = x;
    return STEAL_OK;
}

/* The models' command line: [ITERATIONS [bK | f]] - the random scheduler for ITERATIONS
   executions (200000), or every schedule with at most K preemptions, or all of them. */
inline void parse_params(int argc, char** argv, rl::test_params* p) {
    p->iteration_count = argc > 1 ? std::strtoull(argv[1], NULL, 10) : 200000;
    if (argc > 2 && argv[2][0] == 'b') {
        p->search_type = rl::sched_bound;
        p->context_bound = (unsigned)std::atoi(argv[2] + 1);
    }
    if (argc > 2 && argv[2][0] == 'f') p->search_type = rl::sched_full;
}

} /* namespace dq */

#ifndef DEQUE_RELACY_PART

enum { N_THIEVES = 2, N_ITEMS = 5, STEAL_TRIES = 3, INITIAL_CAP = 2 };

struct item { rl::var<int> payload; };

struct deque_test : rl::test_suite<deque_test, 1 + N_THIEVES> {
    dq::deque d;
    item items[N_ITEMS];
    int taken[1 + N_THIEVES][N_ITEMS];   /* each row written by its own thread only */

    void before() {
        dq::deque_init(&d, INITIAL_CAP);
        for (int k = 0; k <= N_THIEVES; k++)
            for (int i = 0; i < N_ITEMS; i++) taken[k][i] = 0;
    }

    void take(unsigned me, void* x) {
        RL_ASSERT(x != dq::POISON);            /* a never-written slot was read and kept */
        item* it = static_cast<item*>(x);
        int i = static_cast<int>(it - items);
        RL_ASSERT(i >= 0 && i < N_ITEMS);
        RL_ASSERT(it->payload($) == i + 1);   /* published by push, not yet taken by anyone */
        it->payload($) = -1;                   /* a second taker races with this write */
        taken[me][i]++;
    }

    void push(int i) {
        items[i].payload($) = i + 1;           /* the task's contents, published by push */
        RL_ASSERT(dq::deque_push(&d, &items[i]));
    }

    void thread(unsigned me) {
        if (me == 0) {                         /* the owner */
            push(0); push(1); push(2);
            if (void* x = dq::deque_pop(&d)) take(me, x);
            push(3); push(4);
            if (void* x = dq::deque_pop(&d)) take(me, x);
            while (void* x = dq::deque_pop(&d)) take(me, x);
        } else {                               /* a thief */
            for (int k = 0; k < STEAL_TRIES; k++) {
                void* x = NULL;
                if (dq::deque_steal(&d, &x) == dq::STEAL_OK) take(me, x);
            }
        }
    }

    void after() {
        for (int i = 0; i < N_ITEMS; i++) {
            int n = 0;
            for (int k = 0; k <= N_THIEVES; k++) n += taken[k][i];
            RL_ASSERT(n == 1);                 /* exactly once: none lost, none taken twice */
        }
        dq::deque_destroy(&d);
    }
};

/* deque_relacy [ITERATIONS [bK | f]]: the random scheduler for ITERATIONS executions (200000),
   or every schedule with at most K preemptions (bK; ITERATIONS is then ignored), or all (f). */
int main(int argc, char** argv) {
    rl::test_params p;
    dq::parse_params(argc, argv, &p);
    std::ostringstream progress;
    p.progress_stream = &progress;
    bool ok = rl::simulate<deque_test>(p);
    std::printf("deque_relacy%s: %s after %llu of %llu iterations (%s)\n",
                DQ_BUG_WHAT, ok ? "no violation" : "VIOLATION",
                (unsigned long long)p.stop_iteration,
                (unsigned long long)p.iteration_count, rl::format(p.search_type));
    return ok ? 0 : 1;
}

#endif /* DEQUE_RELACY_PART */
