/* map.c - batched maps: items in batches on the pool, per-batch SUCCESS / PARTIAL_SUCCESS /
   FAILED by failure ratio, whole-batch retries through the delayed queue, delivery in
   completion or batch order to a callback or an iterator, streaming fold, backpressure, halt,
   adaptive sizing.

   A map owns max_in_flight slots. A slot holds one batch from dispatch until it is delivered
   (or, for the iterator, until the consumer moves on): memory is O(slots x batch size). The
   job lock guards the input cursor, the slots' states, delivery and the job's accumulator;
   running a batch's items and folding them into the batch's own accumulator happen outside it.
   The latch counts live slots plus one "dispatch token" held until no batch will start again. */
#ifndef BATCH__MAP_C
#define BATCH__MAP_C
#ifndef BATCH_SINGLE_FILE
#  include "journal.c"
#  include "sizing.c"
#endif

/* The default max_batch. Items that cost nanoseconds hit this cap long before the adaptive
   target (200 us), and then the per-batch hand-off is what a smaller cap costs (bench/README.md:
   map_trivial, "max_batch"). The cap rises from 4096 to 16384 only while a slot's per-item
   memory (pulled items, and the codes and results that on_batch or the iterator show, or that
   an items_fn writes) stays within BATCH__SLOT_BYTES: heavy slots keep 4096. */
#define BATCH__DEFAULT_MAX_BATCH 16384u
#define BATCH__SLOT_BYTES ((size_t)256 << 10)

enum { BATCH__SLOT_FREE, BATCH__SLOT_RUNNING, BATCH__SLOT_FINISHED, BATCH__SLOT_QUEUED, BATCH__SLOT_HELD };
BATCH__PRIVATE void batch__mslot_task(batch_pool* p, void* user);

typedef struct batch__mslot {
    struct batch__mjob* job;
    int state;
    size_t batch_index, first, count, cap;
    batch_item* items;            /* pull sources only */
    int* codes;
    unsigned char* results;
    batch_item_error* errors;
    char* msgs;                   /* errcap x BATCH_MESSAGE_MAX */
    size_t nerrors, errcap;
    void* acc;
    size_t succeeded, failed;
    batch_batch_status status;
    uint64_t exec_ns, retry_due;  /* retry_due: a retry waits until then (0: not waiting) */
    uint64_t start_ns;            /* of the last attempt */
    int retries_used, worker;
    bool unrun;                   /* source: handed out, never run (BATCH__NOT_RUN) */
    bool permanent;               /* an item failed with batch_ctx_fail_permanent: no batch retry */
    struct batch__mslot* next;    /* free list, iterator queue, submit list */
    batch_batch view;
} batch__mslot;

/* ---- the map's seam for mpi.c ---------------------------------------------------------------
   A map spread over processes is two kinds of map job, driven through these functions only:
   - a source (rank 0) cuts the input, sizes, delivers in order, folds, journals and halts as
     any map, but runs no item: it hands out the ranges of its batches and takes back their
     outcomes;
   - an executor (every rank) runs batches whose ranges are pushed to it, on its own pool, with
     the threshold and whole-batch retry rules, and gives back their outcomes.
   Any thread; each takes the job lock inside. The jobs are batch_job handles: mpi.c sees no
   field of a map job. Besides these, mpi.c checks a desc with batch__map_check and waits,
   cancels and destroys the jobs with the public calls. */
typedef struct batch__range { size_t index, first, count; } batch__range;
typedef struct batch__outcome {   /* a batch's last attempt, as the source counts and folds it */
    size_t index, succeeded, failed;
    int status;                   /* a batch_batch_status, or BATCH__NOT_RUN */
    int retries;
    uint64_t exec_ns;
    const void* acc;              /* acc_size bytes; NULL when FAILED or not run */
} batch__outcome;
enum { BATCH__NOT_RUN = -1 };     /* handed out, never run: its items count as unprocessed */
enum { BATCH__SOURCE_OPEN, BATCH__SOURCE_DONE, BATCH__SOURCE_CANCELLED };
/* Launches a source; threads: the workers of every process (for sizing). */
BATCH__PRIVATE batch_result batch__map_source_launch(batch_pool* pool, const batch_map_desc* desc, int threads, batch_job** out);
/* The next range cut and not handed out yet, in batch order; false when there is none now. */
BATCH__PRIVATE bool batch__map_source_take(batch_job* src, batch__range* out);
/* A handed-out batch's outcome: delivered, folded and journaled as if it had run here. False
   when no batch with that index is out (a protocol error). */
BATCH__PRIVATE bool batch__map_source_return(batch_job* src, const batch__outcome* o);
/* OPEN while a batch may still be cut or waits to be handed out; then DONE (the input ended, or
   a halt), or CANCELLED (a cancel, the deadline, I/O or memory: the ranges not handed out were
   dropped, their items unprocessed). */
BATCH__PRIVATE int batch__map_source_end(batch_job* src);
/* Cancels the source and drops every batch not returned yet, handed out or not. */
BATCH__PRIVATE void batch__map_source_abandon(batch_job* src);
/* Launches an executor of desc's batch rules (none of the job-wide parts) for up to
   max_in_flight ranges at a time. */
BATCH__PRIVATE batch_result batch__map_executor_launch(batch_pool* pool, const batch_map_desc* desc, int max_in_flight, batch_job** out);
/* How many more ranges the executor can take now. */
BATCH__PRIVATE int batch__map_executor_room(batch_job* ex);
/* Queues a range; it starts when a slot is free. False when there is no room. */
BATCH__PRIVATE bool batch__map_executor_push(batch_job* ex, const batch__range* r);
/* The next finished batch's outcome; false when none is ready now. o->acc stays valid until
   the next call. */
BATCH__PRIVATE bool batch__map_executor_take(batch_job* ex, batch__outcome* o);
/* No more ranges: the queued ones still run; with cancel they are taken back instead (at most
   cap, into out; their number is returned) and the job stops. */
BATCH__PRIVATE size_t batch__map_executor_stop(batch_job* ex, bool cancel, batch__range* out, size_t cap);
/* Source or executor: no batch will start again and every batch is back (waiting ends at once). */
BATCH__PRIVATE bool batch__map_idle(batch_job* job);

/* The state of the two modes above (NULL in a plain map). */
enum { BATCH__EXT_EXECUTOR = 1, BATCH__EXT_SOURCE };
typedef struct batch__map_ext {
    int mode;
    int threads;                  /* source: the workers of every process (sizing) */
    struct batch__mslot* dhead;   /* source: cut, not handed out yet, in batch order */
    struct batch__mslot** dtail;
    bool closed;                  /* executor: no range will be pushed again */
    size_t rhead, rcount;         /* executor: the ring of pushed ranges, nslots long */
    batch__range ranges[];
} batch__map_ext;

/* A delivered batch, kept for the reports when desc.keep_batches is set; or an attempt of a
   batch that a retry followed (then retries: the retries before it). */
typedef struct batch__batch_rec {
    size_t index, first, count, succeeded, failed;
    uint64_t start_ns, end_ns;    /* since launch */
    uint64_t next_ns;             /* an attempt a retry followed: the retry's start, since launch */
    int status, retries, worker;
} batch__batch_rec;

typedef struct batch__mjob {
    batch__job_head head;         /* first: operations and progress */
    batch_pool* pool;
    void* alloc_ctx;
    batch_map_desc d;
    char* key;
    batch__mutex lock;
    /* input and sizing */
    size_t next_item, next_batch;
    bool input_done, token_released;
    bool adaptive;
    size_t size, min_b, max_b;
    uint64_t target_ns, ema_ns;   /* ema: ns per item x 16 (fixed point) */
    int threads;
    /* slots */
    int nslots, running;
    batch__mslot* slots;
    batch__mslot* free_slots;
    size_t next_deliver;
    batch__mslot* iq_head;
    batch__mslot* iq_tail;
    batch__mslot* held;
    bool consumer_waiting, draining;
    batch_counter avail;
    void* acc;
    /* results (under lock) */
    batch_map_summary s;
    uint64_t conc_now;
    /* life */
    batch_counter latch;
    int dec_pending;              /* latch decrements owed, applied after the lock is released */
    _Atomic int stop;
    _Atomic int cut;              /* a stop cut a batch's retries short */
    void* slot_accs;              /* the slots' accumulators, a cache line apart (no false sharing) */
    batch__batch_rec* recs;       /* keep_batches: one per delivered batch, under the lock */
    size_t nrecs, caprecs;
    batch__batch_rec* tries;      /* keep_batches: one per attempt a retry followed, under the lock */
    size_t ntries, captries;
    batch__map_ext* ext;          /* NULL: a plain map (see batch__map_ext) */
    batch__journal* jn;           /* NULL: no journal */
    unsigned char* jrec;          /* one batch record */
    batch_result io_error;        /* why the journal failed (BATCH__STOP_IO) */
    size_t* done_ranges;          /* unordered resume: sorted, coalesced [first, end) pairs */
    size_t ndone, capdone, done_at;
    uint64_t launch_ns, deadline_ns;
    bool done;
    bool rerun_failed, replay_stopped;
} batch__mjob;

BATCH_API const char* batch_batch_status_string(batch_batch_status s) {
    static const char* const names[] = { "success", "partial_success", "failed" };
    return ((unsigned)s < 3) ? names[s] : "unknown";
}


/* ---- slots ------------------------------------------------------------------------------- */
/* Makes room for n items; job lock held. */
/* Whether delivered batches show their items (codes and results): only to on_batch and the
   iterator. A fold-only map needs one result slot per batch, reused item after item, and no
   per-item codes: its batches stay small in cache whatever their size. */
BATCH__PRIVATE bool batch__map_shows_items(const batch__mjob* m) { return m->d.on_batch || m->d.iterate; }
/* Whether a slot holds a code and a result per item: when they are shown, and for an items_fn,
   which writes every result of its run and whose codes track the items it reported. */
BATCH__PRIVATE bool batch__map_keeps_items(const batch__mjob* m) { return batch__map_shows_items(m) || m->d.items_fn; }

/* Replaces *p by a block of `bytes` (the old contents are not kept: a slot's arrays are refilled
   for every batch, and copying them would touch pages nobody reads). false: out of memory, *p
   unchanged. */
BATCH__PRIVATE bool batch__slot_regrow(void** p, size_t bytes, void* ctx) {
    void* q = BATCH_MALLOC(bytes, ctx);
    if (!q) return false;
    if (*p) BATCH_FREE(*p, ctx);
    *p = q;
    return true;
}

/* Room for n items in the slot's arrays. They grow at least twofold, so adaptive sizes that
   creep up do not reallocate on every batch. */
BATCH__PRIVATE bool batch__slot_reserve(batch__mjob* m, batch__mslot* sl, size_t n) {
    if (n <= sl->cap) return true;
    size_t grown = sl->cap * 2 < m->max_b ? sl->cap * 2 : m->max_b;
    if (n < grown) n = grown;
    void* ctx = m->alloc_ctx;
    size_t rs = m->d.result_size;
    bool shows = batch__map_keeps_items(m);
    /* a 32-bit size_t cannot hold every array of a batch near 2^30 items: out of memory */
    if (n > SIZE_MAX / sizeof(batch_item) || n > SIZE_MAX / sizeof(int) || (rs && n > SIZE_MAX / rs)) return false;
    if (shows && !batch__slot_regrow((void**)&sl->codes, n * sizeof(int), ctx)) return false;
    if (rs && (shows || (!sl->results && rs > 256)) &&   /* see batch__mslot_attempt */
        !batch__slot_regrow((void**)&sl->results, (shows ? n : 1) * rs, ctx))
        return false;
    if (m->d.pull_fn && !batch__slot_regrow((void**)&sl->items, n * sizeof(batch_item), ctx)) return false;
    sl->cap = n;
    return true;
}

/* Records a failed item's message; on a worker, without the lock. Out of memory: the code is
   kept and the message is lost. */
BATCH__PRIVATE void batch__slot_error(batch__mjob* m, batch__mslot* sl, size_t index, int code, const char* msg) {
    if (sl->nerrors == sl->errcap) {
        size_t ncap = sl->errcap ? sl->errcap * 2 : 8;
        batch_item_error* e = (batch_item_error*)BATCH_REALLOC(sl->errors, ncap * sizeof *e, m->alloc_ctx);
        if (!e) return;
        sl->errors = e;
        char* ms = (char*)BATCH_REALLOC(sl->msgs, ncap * BATCH_MESSAGE_MAX, m->alloc_ctx);
        if (!ms) return;
        sl->msgs = ms;
        sl->errcap = ncap;
    }
    size_t k = sl->nerrors++;
    sl->errors[k].index = index;
    sl->errors[k].code = code;
    sl->errors[k].message = NULL;
    if (msg) {
        memcpy(sl->msgs + k * BATCH_MESSAGE_MAX, msg, BATCH_MESSAGE_MAX);
        sl->errors[k].message = (const char*)(uintptr_t)(k + 1);   /* resolved at delivery: msgs may move */
    }
}

/* ---- sizing ------------------------------------------------------------------------------ */
BATCH__PRIVATE size_t batch__map_next_size(batch__mjob* m) {
    size_t size = m->size;
    if (m->adaptive && m->ema_ns) {
        uint64_t per = m->ema_ns / 16 ? m->ema_ns / 16 : 1;
        size = batch__sat_size(m->target_ns / per);
    }
    m->s.final_batch_size = batch__clamp(size, m->min_b, m->max_b);   /* before the taper below */
    if (m->adaptive && !m->d.pull_fn) {
        /* keep at least 4 batches per thread ahead of the end of the input */
        size_t rest = m->d.count - m->next_item;
        size_t cap = rest / (4 * (size_t)m->threads);
        if (size > cap) size = cap;
    }
    return batch__clamp(size, m->min_b, m->max_b);
}

/* True, and the job marked, when a cancel, halt or the deadline forbids another attempt. */
BATCH__PRIVATE bool batch__map_stopped(batch__mjob* m, uint64_t now) {
    if (atomic_load_explicit(&m->stop, memory_order_relaxed)) return true;
    if (m->deadline_ns && now >= m->deadline_ns) {
        int e = 0;
        atomic_compare_exchange_strong(&m->stop, &e, BATCH__STOP_DEADLINE);
        return true;
    }
    return false;
}

/* Job lock held (or launching): counts a finished batch; the halt ratio may stop the job.
   succeeded / failed are the last attempt's; every item of a FAILED batch counts as failed,
   as nothing of it is folded (a delivered batch, or one replayed from the journal). */
BATCH__PRIVATE void batch__map_count(batch__mjob* m, batch_batch_status st, size_t succeeded, size_t failed) {
    m->s.batches++;
    if (st == BATCH_BATCH_SUCCESS) m->s.batches_succeeded++;
    else if (st == BATCH_BATCH_PARTIAL_SUCCESS) m->s.batches_partial++;
    else { m->s.batches_failed++; failed += succeeded; succeeded = 0; }
    m->s.succeeded += succeeded;
    m->s.failed += failed;
    if (m->d.halt_error_ratio > 0 && m->s.failed &&
        batch__ratio(m->s.failed, m->s.succeeded + m->s.failed) > m->d.halt_error_ratio) {
        int e = 0;
        atomic_compare_exchange_strong(&m->stop, &e, BATCH__STOP_HALT);
    }
}

/* ---- journal ------------------------------------------------------------------------------ */
/* A batch record: type 2, status, 2 bytes zero, retries (u32), batch index, first item, count,
   succeeded, failed (u64 each), then the batch's accumulator (acc_size bytes). */
#define BATCH__JBATCH_LEN 48u

/* Appends a delivered batch; job lock held (m->jrec is the record's buffer, made at launch: no
   allocation here). BATCH_OK, or why the journal failed (the job stops). */
BATCH__PRIVATE batch_result batch__map_journal_batch(batch__mjob* m, const batch__mslot* sl) {
    size_t len = BATCH__JBATCH_LEN + m->d.acc_size;
    unsigned char* rec = m->jrec;
    memset(rec, 0, BATCH__JBATCH_LEN);
    rec[0] = BATCH__JKIND_MAP;
    rec[1] = (unsigned char)sl->status;
    batch__put32(rec + 4, (uint32_t)sl->retries_used);
    batch__put64(rec + 8, sl->batch_index);
    batch__put64(rec + 16, sl->first);
    batch__put64(rec + 24, sl->count);
    batch__put64(rec + 32, sl->succeeded);
    batch__put64(rec + 40, sl->failed);
    if (m->d.acc_size) memcpy(rec + BATCH__JBATCH_LEN, sl->acc, m->d.acc_size);
    return batch__journal_append(m->jn, rec, len);
}

/* Replays one batch record at launch (see batch__journal_open): counts it, folds its
   accumulator in and marks its items done. */
BATCH__PRIVATE batch_result batch__map_replay(void* arg, const unsigned char* p, size_t len) {
    batch__mjob* m = (batch__mjob*)arg;
    const batch_map_desc* d = &m->d;
    if (len != BATCH__JBATCH_LEN + d->acc_size || p[0] != BATCH__JKIND_MAP || p[1] > BATCH_BATCH_FAILED) return BATCH_ERR_CORRUPT;
    uint64_t index = batch__get64(p + 8), first = batch__get64(p + 16), count = batch__get64(p + 24);
    uint64_t succeeded = batch__get64(p + 32), failed = batch__get64(p + 40);
    uint32_t retries = batch__get32(p + 4);
    if (count == 0 || count > ((uint64_t)1 << 40) || succeeded > count || succeeded + failed != count ||
        !batch__fits_size(count) || !batch__fits_size(first) || first > SIZE_MAX - count ||
        (!d->pull_fn && first + count > d->count) || index >= SIZE_MAX / 2 || retries > 1000)
        return BATCH_ERR_CORRUPT;
    if (m->replay_stopped) return BATCH__JDROP;   /* ordered: after a batch that runs again */
    if (d->ordered && (index != m->next_batch || first != m->next_item)) return BATCH_ERR_CORRUPT;   /* in order, no gap */
    if (failed && m->rerun_failed) {
        if (d->ordered) m->replay_stopped = true;   /* later batches fold after it: they run again too */
        return BATCH__JDROP;
    }
    if (!d->ordered) {
        if (m->ndone == m->capdone) {
            size_t ncap = m->capdone ? m->capdone * 2 : 16;
            size_t* r = (size_t*)BATCH_REALLOC(m->done_ranges, ncap * 2 * sizeof(size_t), m->alloc_ctx);
            if (!r) return BATCH_ERR_NOMEM;
            m->done_ranges = r;
            m->capdone = ncap;
        }
        m->done_ranges[2 * m->ndone] = (size_t)first;
        m->done_ranges[2 * m->ndone + 1] = (size_t)(first + count);
        m->ndone++;
        if (index >= m->next_batch) m->next_batch = (size_t)index + 1;
    } else {
        m->next_batch++;
        m->next_deliver++;
        m->next_item += (size_t)count;
        if (!d->pull_fn && m->next_item >= d->count) m->input_done = true;
    }
    batch__map_count(m, (batch_batch_status)p[1], (size_t)succeeded, (size_t)failed);
    m->s.retries += retries;
    m->s.resumed_batches++;
    m->s.resumed_items += count;
    if (d->acc_size && p[1] != BATCH_BATCH_FAILED) d->combine_fn(m->acc, p + BATCH__JBATCH_LEN, d->user_data);
    return BATCH_OK;
}

BATCH__PRIVATE int batch__range_cmp(const void* a, const void* b) {
    size_t x = *(const size_t*)a, y = *(const size_t*)b;
    return x < y ? -1 : x > y;
}

/* Unordered resume: sorts the done ranges and merges neighbours; an overlap is corrupt. */
BATCH__PRIVATE batch_result batch__map_sort_ranges(batch__mjob* m) {
    if (m->ndone < 2) return BATCH_OK;
    qsort(m->done_ranges, m->ndone, 2 * sizeof(size_t), batch__range_cmp);
    size_t w = 0;
    for (size_t i = 1; i < m->ndone; i++) {
        size_t* last = &m->done_ranges[2 * w];
        size_t* cur = &m->done_ranges[2 * i];
        if (cur[0] < last[1]) return BATCH_ERR_CORRUPT;
        if (cur[0] == last[1]) last[1] = cur[1];
        else { w++; m->done_ranges[2 * w] = cur[0]; m->done_ranges[2 * w + 1] = cur[1]; }
    }
    m->ndone = w + 1;
    return BATCH_OK;
}

/* The map's shape: what makes its batches and accumulators mean the same thing. */
BATCH__PRIVATE uint64_t batch__map_fingerprint(const batch__mjob* m) {
    const batch_map_desc* d = &m->d;
    uint64_t h = batch__fp_mix(BATCH__JKIND_MAP, d->pull_fn ? UINT64_MAX : d->count);
    h = batch__fp_mix(h, d->result_size);
    h = batch__fp_mix(h, d->acc_size);
    h = batch__fp_mix(h, d->ordered != 0);
    if (d->ordered) h = batch__fp_mix(batch__fp_mix(batch__fp_mix(h, m->size), m->min_b), m->max_b);   /* the batch boundaries */
    /* an accumulator's bytes are the fold's own, in this machine's byte order: a big-endian
       machine's journal is another job's (little-endian fingerprints stay what they were) */
    if (d->acc_size && batch__big_endian()) h = batch__fp_mix(h, 0xBEu);
    return h ? h : 1;
}

/* Job lock held: moves the input cursor past items the journal has as done (a pull source's are
   pulled and dropped). Returns the number of items before the next done range (SIZE_MAX: none). */
BATCH__PRIVATE size_t batch__map_skip_done(batch__mjob* m) {
    while (m->done_at < m->ndone) {
        size_t first = m->done_ranges[2 * m->done_at], end = m->done_ranges[2 * m->done_at + 1];
        if (m->next_item < first) return first - m->next_item;
        if (m->d.pull_fn) {
            batch_job* saved = batch__tls_map_locked;
            batch__tls_map_locked = (batch_job*)m;
            while (m->next_item < end) {
                void* ignored = NULL;
                if (!m->d.pull_fn(m->d.user_data, &ignored)) { m->input_done = true; break; }
                m->next_item++;
            }
            batch__tls_map_locked = saved;
            if (m->input_done) return SIZE_MAX;
        }
        m->next_item = end;
        m->done_at++;
        if (!m->d.pull_fn && m->next_item >= m->d.count) m->input_done = true;
    }
    return SIZE_MAX;
}

/* ---- dispatch ---------------------------------------------------------------------------- */
BATCH__PRIVATE void batch__map_wake_consumer(batch__mjob* m) {
    if (m->consumer_waiting) {
        m->consumer_waiting = false;
        batch_counter_done(&m->avail);
    }
}

BATCH__PRIVATE void batch__map_release_token(batch__mjob* m) {
    if (!m->token_released) {
        m->token_released = true;
        batch__map_wake_consumer(m);   /* the end may now be near: let it look */
        m->dec_pending++;
    }
}

/* Job lock held: room in sl for a batch of n items. Out of memory, the batch waits for one in
   flight to finish; with nothing in flight there is nothing to wait for and the map stops. */
BATCH__PRIVATE bool batch__map_reserve(batch__mjob* m, batch__mslot* sl, size_t n) {
    if (batch__slot_reserve(m, sl, n)) return true;
    if (m->running == 0 && !m->iq_head && !m->held) {
        atomic_store_explicit(&m->stop, BATCH__STOP_NOMEM, memory_order_relaxed);
        batch__map_release_token(m);
    }
    return false;
}

/* Job lock held: cuts the next batch of the map's own input into sl (its index, first item and
   count), at most room items (a batch stops where the journal's done items begin). False when
   there is none now: out of memory, or the input ended (input_done). */
BATCH__PRIVATE bool batch__map_cut(batch__mjob* m, batch__mslot* sl, size_t room) {
    size_t size = batch__map_next_size(m);
    if (!m->d.pull_fn && size > m->d.count - m->next_item) size = m->d.count - m->next_item;
    if (size > room) size = room;
    if (!batch__map_reserve(m, sl, size)) return false;
    size_t n = 0;
    if (m->d.pull_fn) {
        batch_job* saved = batch__tls_map_locked;
        batch__tls_map_locked = (batch_job*)m;
        while (n < size) {
            void* p = NULL;
            if (!m->d.pull_fn(m->d.user_data, &p)) { m->input_done = true; break; }
            sl->items[n].index = m->next_item + n;
            sl->items[n].ptr = p;
            n++;
        }
        batch__tls_map_locked = saved;
    } else {
        n = size;
        if (m->next_item + n >= m->d.count) m->input_done = true;
    }
    if (n == 0) { m->input_done = true; return false; }
    sl->batch_index = m->next_batch++;
    sl->first = m->next_item;
    sl->count = n;
    m->next_item += n;
    return true;
}

/* Job lock held: an executor's next batch is the oldest range pushed to it. False when none is
   queued (input_done once none will come) or out of memory. */
BATCH__PRIVATE bool batch__map_cut_pushed(batch__mjob* m, batch__mslot* sl) {
    batch__map_ext* x = m->ext;
    if (!x->rcount) {
        if (x->closed) m->input_done = true;
        return false;
    }
    if (!batch__map_reserve(m, sl, x->ranges[x->rhead].count)) return false;
    const batch__range* rg = &x->ranges[x->rhead];
    sl->batch_index = rg->index;
    sl->first = rg->first;
    sl->count = rg->count;
    x->rhead = (x->rhead + 1) % (size_t)m->nslots;
    x->rcount--;
    return true;
}

/* Job lock held. Fills free slots with new batches while input, room and the concurrency limit
   allow; returns them linked, to be queued once the lock is released (a source keeps them to
   hand out). */
BATCH__PRIVATE batch__mslot* batch__map_pump(batch__mjob* m) {
    batch__mslot* out = NULL;
    batch__mslot** tail = &out;
    if (!m->token_released && m->deadline_ns) (void)batch__map_stopped(m, batch_now_ns());
    bool pushed = m->ext && m->ext->mode == BATCH__EXT_EXECUTOR;
    while (!m->token_released) {
        size_t room = (m->ndone && !m->input_done) ? batch__map_skip_done(m) : SIZE_MAX;
        if (atomic_load_explicit(&m->stop, memory_order_relaxed) || m->input_done) { batch__map_release_token(m); break; }
        if (!m->free_slots) break;
        if (m->d.max_concurrent_batches && m->running >= m->d.max_concurrent_batches) break;
        batch__mslot* sl = m->free_slots;
        if (!(pushed ? batch__map_cut_pushed(m, sl) : batch__map_cut(m, sl, room))) {
            if (m->input_done) continue;   /* the token goes at the top of the loop */
            break;                         /* nothing to cut now, or no memory until a batch finishes */
        }
        m->free_slots = sl->next;
        sl->next = NULL;
        sl->state = BATCH__SLOT_RUNNING;
        sl->retries_used = 0;
        m->running++;
        if (++m->conc_now > m->s.peak_concurrent_batches) m->s.peak_concurrent_batches = m->conc_now;
        batch_counter_add(&m->latch, 1);
        *tail = sl;
        tail = &sl->next;
    }
    if (out && m->ext && m->ext->mode == BATCH__EXT_SOURCE) {   /* for another process to run */
        *m->ext->dtail = out;
        m->ext->dtail = tail;
        return NULL;
    }
    return out;
}

/* Queues the slots `list` (no lock held). A slot the pool cannot take runs here. */
BATCH__PRIVATE void batch__map_submit(batch__mjob* m, batch__mslot* list) {
    while (list) {
        batch__mslot* sl = list;
        list = sl->next;
        sl->next = NULL;
        if (batch_pool_submit(m->pool, &(batch_work){ .fn = batch__mslot_task, .user_data = sl, .priority = m->d.priority }) != BATCH_OK)
            batch__mslot_task(m->pool, sl);
    }
}

/* Releases the job lock, queues `list`, reports progress (ev: a finished batch, or NULL), then
   pays the latch decrements owed. The last decrement may let a waiter free the job, so it is
   the last thing this thread does with it. */
BATCH__PRIVATE void batch__map_unlock_ev(batch__mjob* m, batch__mslot* list, const batch_event_info* ev) {
    bool report = ev && m->head.prog.fn;
    if (report) {   /* hold the job alive while reporting: one more count, paid below */
        batch_counter_add(&m->latch, 1);
        m->dec_pending++;
    }
    int dec = m->dec_pending;
    m->dec_pending = 0;
    batch__mutex_unlock(&m->lock);
    batch__map_submit(m, list);
    if (report) {
        batch__progress_emit((batch_job*)m, BATCH_EVENT_BATCH_COMPLETED, ev);
        batch__progress_tick((batch_job*)m, batch_now_ns());
    }
    while (dec-- > 0) batch__counter_sub1(&m->latch);
}
BATCH__PRIVATE void batch__map_unlock(batch__mjob* m, batch__mslot* list) { batch__map_unlock_ev(m, list, NULL); }

/* ---- delivery ---------------------------------------------------------------------------- */
/* Job lock held. The slot becomes free again and leaves the latch. */
BATCH__PRIVATE void batch__slot_free(batch__mjob* m, batch__mslot* sl) {
    sl->state = BATCH__SLOT_FREE;
    sl->next = m->free_slots;
    m->free_slots = sl;
    m->dec_pending++;
}

/* Job lock held: appends the slot's last attempt to a list of records (next: the start of the
   retry that follows it, 0 for a delivered batch). Out of memory: it is not kept (the map goes on). */
BATCH__PRIVATE void batch__map_keep(batch__mjob* m, batch__batch_rec** list, size_t* n, size_t* cap, const batch__mslot* sl,
                                    uint64_t next) {
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        batch__batch_rec* r = (batch__batch_rec*)BATCH_REALLOC(*list, ncap * sizeof *r, m->alloc_ctx);
        if (!r) return;
        *list = r;
        *cap = ncap;
    }
    batch__batch_rec* r = &(*list)[(*n)++];
    r->index = sl->batch_index; r->first = sl->first; r->count = sl->count;
    r->succeeded = sl->succeeded; r->failed = sl->failed;
    r->start_ns = sl->start_ns - m->launch_ns; r->end_ns = r->start_ns + sl->exec_ns;
    r->next_ns = next ? next - m->launch_ns : 0;
    r->status = (int)sl->status; r->retries = sl->retries_used; r->worker = sl->worker;
}

/* Job lock held: combine, count, call on_batch, then free the slot or queue it for next(). */
BATCH__PRIVATE void batch__map_deliver(batch__mjob* m, batch__mslot* sl) {
    if (sl->unrun) {   /* nothing to deliver: its items were never processed */
        sl->unrun = false;
        m->s.unprocessed += sl->count;
        atomic_store_explicit(&m->cut, 1, memory_order_relaxed);
        batch__slot_free(m, sl);
        return;
    }
    batch_batch* v = &sl->view;
    v->batch_index = sl->batch_index;
    v->first_index = sl->first;
    v->count = sl->count;
    v->status = sl->status;
    v->succeeded = sl->succeeded;
    v->failed = sl->failed;
    v->items = sl->items;
    v->codes = sl->codes;
    v->results = sl->results;
    for (size_t k = 0; k < sl->nerrors; k++)
        if (sl->errors[k].message) sl->errors[k].message = sl->msgs + ((size_t)(uintptr_t)sl->errors[k].message - 1) * BATCH_MESSAGE_MAX;
    v->errors = sl->errors;
    v->nerrors = sl->nerrors;
    v->acc = (m->d.acc_size && sl->status != BATCH_BATCH_FAILED) ? sl->acc : NULL;
    v->exec_ns = sl->exec_ns;
    v->retries_used = sl->retries_used;
    v->worker = sl->worker;
    batch_job* saved = batch__tls_map_locked;
    batch__tls_map_locked = (batch_job*)m;
    if (v->acc && !(m->ext && m->ext->mode == BATCH__EXT_EXECUTOR)) m->d.combine_fn(m->acc, sl->acc, m->d.user_data);   /* an executor's batches fold in the source */
    batch__map_count(m, sl->status, sl->succeeded, sl->failed);
    if (m->d.on_batch) m->d.on_batch(v, m->d.user_data);
    batch__tls_map_locked = saved;
    /* journaled once delivered: a kill before this runs the batch again (on_batch sees it twice,
       the fold of the resumed job has it once) */
    batch_result jr = m->jn ? batch__map_journal_batch(m, sl) : BATCH_OK;
    if (jr != BATCH_OK) {
        if (m->io_error == BATCH_OK) m->io_error = jr;
        atomic_store(&m->stop, BATCH__STOP_IO);   /* the journal's failure outranks a halt or cancel */
    }
    if (m->d.keep_batches) batch__map_keep(m, &m->recs, &m->nrecs, &m->caprecs, sl, 0);
    if (m->d.iterate && !m->draining) {
        sl->state = BATCH__SLOT_QUEUED;
        sl->next = NULL;
        if (m->iq_tail) m->iq_tail->next = sl; else m->iq_head = sl;
        m->iq_tail = sl;
        batch__map_wake_consumer(m);
    } else {
        batch__slot_free(m, sl);
    }
}

/* Job lock held: a batch finished its last attempt. */
BATCH__PRIVATE void batch__map_finished(batch__mjob* m, batch__mslot* sl) {
    m->running--;
    m->conc_now--;
    sl->state = BATCH__SLOT_FINISHED;
    if (m->adaptive && sl->count && !sl->unrun) {
        uint64_t x = sl->exec_ns * 16 / sl->count;
        m->ema_ns = m->ema_ns ? (m->ema_ns * 3 + x) / 4 : x;
    }
    if (!m->d.ordered) { batch__map_deliver(m, sl); return; }
    for (bool more = true; more;) {   /* deliver every batch now next in order */
        more = false;
        for (int i = 0; i < m->nslots; i++) {
            batch__mslot* x = &m->slots[i];
            if (x->state == BATCH__SLOT_FINISHED && x->batch_index == m->next_deliver) {
                m->next_deliver++;
                batch__map_deliver(m, x);
                more = true;
            }
        }
    }
}

/* ---- running a batch --------------------------------------------------------------------- */
/* Queues slot sl again after delay_ns (the delayed queue; no worker sleeps). */
BATCH__PRIVATE bool batch__mslot_requeue(batch_pool* p, batch__mslot* sl, uint64_t delay_ns) {
    return batch_pool_submit(p, &(batch_work){ .fn = batch__mslot_task, .user_data = sl, .priority = sl->job->d.priority,
                                                .delay_ns = delay_ns ? delay_ns : 1 }) == BATCH_OK;
}

typedef struct batch__item_loop_args {
    batch__mjob* m;
    batch__mslot* sl;
    batch_ctx* ctx;
    batch_item_fn item_fn;
    batch_fold_fn fold_fn;
    const batch_item* items;
    void* user;
    void* acc;
    int* codes;
    unsigned char* res;
    char* msg;
    size_t first, count, rs, rstride;
} batch__item_loop_args;

/* Runs a batch's items, folds the successful ones; returns how many failed. Always inlined, so
   each call site with constant flags is a specialized loop. */
BATCH__INLINE size_t batch__item_loop(const batch__item_loop_args* a, bool has_items, bool has_codes, bool has_fold) {
    const batch__item_loop_args A = *a;
    size_t failed = 0;
    for (size_t i = 0; i < A.count; i++) {
        batch_item it;
        if (has_items) it = A.items[i];
        else { it.index = A.first + i; it.ptr = NULL; }
        A.ctx->msg_set = 0;
        void* r = A.rs ? A.res + (has_codes ? i * A.rstride : 0) : NULL;   /* no codes: one reused slot */
        int rc = A.item_fn(A.ctx, &it, r, A.user);
        if (has_codes) A.codes[i] = rc;
        if (BATCH__LIKELY(rc == 0)) {
            if (has_fold) A.fold_fn(A.acc, &it, r, A.user);
        } else {
            failed++;
            if (A.ctx->msg_set & BATCH__MSG_PERMANENT) A.sl->permanent = true;
            batch__slot_error(A.m, A.sl, it.index, rc, (A.ctx->msg_set & BATCH__MSG_SET) ? A.msg : NULL);
        }
    }
    return failed;
}

/* The run an items_fn processes (batch_ctx.run): what batch_ctx_fail_item needs. */
typedef struct batch__run {
    batch__mjob* m;
    batch__mslot* sl;
    size_t first, count, failed;
    bool marked;                  /* sl->codes holds this call's codes (zeroed at its first report) */
} batch__run;

BATCH_API batch_result batch_ctx_fail_item(batch_ctx* ctx, size_t index, int code, const char* fmt, ...) {
    batch__run* run = ctx ? (batch__run*)ctx->run : NULL;
    if (!run || code == 0 || index < run->first || index - run->first >= run->count) return BATCH_ERR_INVALID;
    size_t i = index - run->first;
    int* codes = run->sl->codes;
    if (!run->marked) {   /* successes leave no trace: the codes are cleared only once one fails */
        memset(codes, 0, run->count * sizeof *codes);
        run->marked = true;
    } else if (codes[i]) {
        return BATCH_ERR_INVALID;   /* reported already */
    }
    codes[i] = code;
    run->failed++;
    char msg[BATCH_MESSAGE_MAX];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    batch__slot_error(run->m, run->sl, index, code, fmt ? msg : NULL);
    return BATCH_OK;
}

BATCH__PRIVATE int batch__error_cmp(const void* a, const void* b) {
    size_t x = ((const batch_item_error*)a)->index, y = ((const batch_item_error*)b)->index;
    return x < y ? -1 : x > y;
}

/* Runs one attempt's items through items_fn in one call; returns how many failed. Leaves codes,
   errors (in index order) and the permanent flag as the item loop would. */
BATCH__PRIVATE size_t batch__run_items(batch__mjob* m, batch__mslot* sl, batch_ctx* ctx, const char* msg) {
    const batch_map_desc* d = &m->d;
    batch__run run = { m, sl, sl->first, sl->count, 0, false };
    batch_item_range r = { sl->first, sl->count, d->pull_fn ? sl->items : NULL, d->result_size ? sl->results : NULL,
                           d->acc_size ? sl->acc : NULL };
    int* codes = sl->codes;
    ctx->run = &run;
    ctx->msg_set = 0;
    int rc = d->items_fn(ctx, &r, d->user_data);
    ctx->run = NULL;
    if (rc != 0) {   /* every item not reported fails with rc */
        const char* text = (ctx->msg_set & BATCH__MSG_SET) ? msg : NULL;
        for (size_t i = 0; i < run.count; i++) {
            if (run.marked && codes[i]) continue;
            codes[i] = rc;
            batch__slot_error(m, sl, run.first + i, rc, text);
        }
        run.failed = run.count;
    } else if (!run.marked && batch__map_shows_items(m)) {
        memset(codes, 0, run.count * sizeof *codes);
    }
    if (run.failed && (ctx->msg_set & BATCH__MSG_PERMANENT)) sl->permanent = true;
    bool sorted = true;
    for (size_t k = 1; k < sl->nerrors && sorted; k++) sorted = sl->errors[k - 1].index < sl->errors[k].index;
    if (!sorted) qsort(sl->errors, sl->nerrors, sizeof *sl->errors, batch__error_cmp);   /* messages go by entry */
    return run.failed;
}

/* Runs one attempt of a batch's items; fills codes, results, errors, counts, status. */
BATCH__PRIVATE void batch__mslot_attempt(batch_pool* p, batch__mslot* sl) {
    batch__mjob* m = sl->job;
    const batch_map_desc* d = &m->d;
    char msg[BATCH_MESSAGE_MAX];
    batch_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.pool = p;
    ctx.batch_index = sl->batch_index;
    ctx.msg = msg;
    ctx.worker = batch_pool_worker_index(p);
    ctx.attempt = sl->retries_used;
    ctx.stop = &m->stop;
    ctx.deadline_ns = m->deadline_ns;
    sl->nerrors = 0;
    sl->permanent = false;
    sl->worker = ctx.worker;
    ctx.owner = (batch_job*)m;
    /* one pass: each successful item is folded at once into the batch's fresh accumulator,
       which is private to this attempt and thrown away if the batch ends FAILED */
    const size_t rs = d->result_size, count = sl->count, first = sl->first;
    const batch_item_fn item_fn = d->item_fn;
    const batch_fold_fn fold_fn = (d->acc_size && item_fn) ? d->fold_fn : NULL;
    const batch_item* items = d->pull_fn ? sl->items : NULL;
    void* const user = d->user_data;
    void* const acc = sl->acc;
    int* const codes = batch__map_shows_items(m) ? sl->codes : NULL;
    const size_t rstride = codes ? rs : 0;   /* a fold-only map reuses one result slot */
    /* that slot lives on this thread's stack when it is small: a heap slot could share a cache
       line with another worker's, and every item writes it */
    union { max_align_t align; unsigned char bytes[256]; } local;
    unsigned char* res = (!codes && rs <= sizeof local.bytes) ? local.bytes : sl->results;
    if (d->acc_size) d->init_fn(acc, user);
    uint64_t t0 = batch_now_ns();
    sl->start_ns = t0;
    batch__item_loop_args a = { m, sl, &ctx, item_fn, fold_fn, items, user, acc, codes, res, msg, first, count, rs, rstride };
    batch__job_frame frame;   /* a wait for this map from one of its items is refused */
    batch__frame_push(&frame, (batch_job*)m);
    /* the common case (items are indices, fold only) gets a loop of its own: the flags are
       constants there, so the compiler drops their branches and keeps the loop in registers */
    size_t failed = !item_fn ? batch__run_items(m, sl, &ctx, msg)
                  : (!items && !codes && fold_fn && rs) ? batch__item_loop(&a, false, false, true)
                                                        : batch__item_loop(&a, items != NULL, codes != NULL, fold_fn != NULL);
    batch__frame_pop(&frame);
    sl->failed = failed;
    sl->succeeded = count - failed;
    sl->exec_ns = batch_now_ns() - t0;
    if (sl->failed == 0) sl->status = BATCH_BATCH_SUCCESS;
    /* the ratio itself, as documented (failed <= thr x count rounds the other way for, e.g.,
       1 failure in 49 items with a threshold of 1.0 / 49) */
    else if (batch__ratio(sl->failed, sl->count) <= d->error_threshold) sl->status = BATCH_BATCH_PARTIAL_SUCCESS;
    else sl->status = BATCH_BATCH_FAILED;
}

/* A batch's last attempt is over: count its time (and retries run elsewhere), deliver, refill. */
BATCH__PRIVATE void batch__mslot_done(batch__mjob* m, batch__mslot* sl, uint64_t busy_ns, uint64_t retries) {
    batch_event_info ev = { NULL, NULL, 0, sl->batch_index, sl->nerrors ? sl->errors[0].code : 0 };
    batch__mutex_lock(&m->lock);
    /* ended at or past the deadline: the map did not finish in time (TIMEOUT), even if this
       was its last batch and every item returned 0 */
    if (m->deadline_ns) (void)batch__map_stopped(m, batch_now_ns());
    m->s.busy_ns += busy_ns;
    m->s.retries += retries;
    batch__map_finished(m, sl);
    batch__map_unlock_ev(m, batch__map_pump(m), &ev);
}

BATCH__PRIVATE void batch__mslot_task(batch_pool* p, void* user) {
    batch__mslot* sl = (batch__mslot*)user;
    batch__mjob* m = sl->job;
    const batch_map_desc* d = &m->d;
    bool counted = false;   /* the last attempt's exec_ns is in busy_ns already */
    uint64_t rng = 0;       /* seeded when a jittered retry first needs it */
    for (;;) {
        if (sl->retry_due) {
            /* a retry waits in slices of at most BATCH__RETRY_POLL_NS, so that a cancel or the
               deadline is not held up by a long backoff */
            uint64_t now = batch_now_ns();
            if (batch__map_stopped(m, now)) {
                sl->retry_due = 0;
                atomic_store_explicit(&m->cut, 1, memory_order_relaxed);
                counted = true;
                break;   /* delivered as it is: FAILED, its last attempt's errors; the retry never ran */
            }
            if (now < sl->retry_due) {
                if (batch__mslot_requeue(p, sl, batch__retry_slice(sl->retry_due, now))) return;
            }
            sl->retry_due = 0;   /* due, or the delayed queue is out of memory: run now */
            batch__mutex_lock(&m->lock);
            if (m->d.keep_batches) batch__map_keep(m, &m->tries, &m->ntries, &m->captries, sl, now);   /* for the trace */
            sl->retries_used++;  /* a retry counts when it runs */
            m->s.retries++;
            batch__mutex_unlock(&m->lock);
        }
        batch__mslot_attempt(p, sl);
        if (sl->status != BATCH_BATCH_FAILED || sl->retries_used >= d->max_retries || sl->permanent) break;
        uint64_t now = batch_now_ns();
        if (batch__map_stopped(m, now)) { atomic_store_explicit(&m->cut, 1, memory_order_relaxed); break; }
        /* the whole batch again after base * 2^k (k: retries so far); it keeps its slot */
        batch__mutex_lock(&m->lock);
        m->s.busy_ns += sl->exec_ns;
        batch__mutex_unlock(&m->lock);
        sl->retry_due = batch__retry_due(d->retry_base_ns, d->retry_max_ns, d->retry_jitter != 0, sl->retries_used, now,
                                         m->deadline_ns, &rng, (uint64_t)(uintptr_t)sl ^ sl->batch_index);
    }
    batch__mslot_done(m, sl, counted ? 0 : sl->exec_ns, 0);
}

/* ---- launch --------------------------------------------------------------------------------- */
BATCH__PRIVATE void batch__map_free_buffers(batch__mjob* m) {
    void* ctx = m->alloc_ctx;
    if (m->slots) {
        for (int i = 0; i < m->nslots; i++) {
            batch__mslot* sl = &m->slots[i];
            if (sl->items) BATCH_FREE(sl->items, ctx);
            if (sl->codes) BATCH_FREE(sl->codes, ctx);
            if (sl->results) BATCH_FREE(sl->results, ctx);
            if (sl->errors) BATCH_FREE(sl->errors, ctx);
            if (sl->msgs) BATCH_FREE(sl->msgs, ctx);
        }
        BATCH_FREE(m->slots, ctx);
    }
    if (m->acc) BATCH_FREE(m->acc, ctx);
    if (m->slot_accs) BATCH_FREE(m->slot_accs, ctx);
    if (m->key) BATCH_FREE(m->key, ctx);
    if (m->recs) BATCH_FREE(m->recs, ctx);
    if (m->tries) BATCH_FREE(m->tries, ctx);
    if (m->done_ranges) BATCH_FREE(m->done_ranges, ctx);
    if (m->jrec) BATCH_FREE(m->jrec, ctx);
    if (m->jn) batch__journal_free(m->jn);   /* not closed by a finish: a failed launch */
}

BATCH__PRIVATE void batch__map_job_free(batch_job* pub) {
    batch__mjob* m = (batch__mjob*)pub;
    batch__map_free_buffers(m);
    batch__mutex_destroy(&m->lock);
    if (m->ext) BATCH_FREE(m->ext, m->alloc_ctx);   /* a source's or an executor's state (the seam) */
    BATCH_FREE(m, m->alloc_ctx);
}

BATCH__PRIVATE batch_result batch__map_check(const batch_map_desc* d) {
    if (!d->item_fn == !d->items_fn) return BATCH_ERR_INVALID;   /* exactly one */
    if (d->result_size && !d->pull_fn && d->count > SIZE_MAX / d->result_size) return BATCH_ERR_INVALID;
    if (d->result_size > ((size_t)1 << 30)) return BATCH_ERR_INVALID;
    if (d->min_batch && d->max_batch && d->min_batch > d->max_batch) return BATCH_ERR_INVALID;
    if (d->batch_size > ((size_t)1 << 30) || d->max_batch > ((size_t)1 << 30)) return BATCH_ERR_INVALID;
    if (!(d->error_threshold >= 0.0 && d->error_threshold <= 1.0)) return BATCH_ERR_INVALID;   /* NaN too */
    if (!(d->halt_error_ratio >= 0.0 && d->halt_error_ratio <= 1.0)) return BATCH_ERR_INVALID;
    if (d->max_retries < 0 || d->max_retries > 1000) return BATCH_ERR_INVALID;
    if (d->retry_base_ns > ((uint64_t)1 << 50) || d->retry_max_ns > ((uint64_t)1 << 50)) return BATCH_ERR_INVALID;
    if (d->max_in_flight < 0 || d->max_in_flight > 65536 || d->max_concurrent_batches < 0) return BATCH_ERR_INVALID;
    if (BATCH__ENUM_BAD(d->priority, BATCH_PRIORITY_COUNT_)) return BATCH_ERR_INVALID;
    if (BATCH__ENUM_BAD(d->complexity, BATCH_COMPLEXITY_COUNT_)) return BATCH_ERR_INVALID;
    if (d->timeout_ns > ((uint64_t)1 << 62) || d->target_batch_ns > ((uint64_t)1 << 40)) return BATCH_ERR_INVALID;
    bool any_fold = d->init_fn || d->fold_fn || d->combine_fn;
    if (d->acc_size && !(d->init_fn && d->combine_fn && !d->fold_fn == !d->item_fn)) return BATCH_ERR_INVALID;   /* items_fn folds itself */
    if (!d->acc_size && any_fold) return BATCH_ERR_INVALID;
    if (d->acc_size > ((size_t)1 << 30)) return BATCH_ERR_INVALID;
    if (d->on_batch && d->iterate) return BATCH_ERR_INVALID;
    if (!batch__progress_desc_ok(&d->progress) || !batch__journal_desc_ok(&d->journal)) return BATCH_ERR_INVALID;
    return BATCH_OK;
}

static const batch__job_ops batch__map_job_ops;   /* defined below */

BATCH__PRIVATE batch_result batch__map_launch_ext(batch_pool* pool, const batch_map_desc* desc, batch__map_ext* ext, batch_job** out) {
    if (!out) return BATCH_ERR_INVALID;
    *out = NULL;
    if (!pool || !desc) return BATCH_ERR_INVALID;
    batch_result r = batch__map_check(desc);
    if (r != BATCH_OK) return r;
    if (batch__pool_refuses_jobs(pool)) return BATCH_ERR_SHUTDOWN;
    void* ctx = batch__pool_alloc_ctx(pool);
    batch__mjob* m = (batch__mjob*)BATCH_MALLOC(sizeof *m, ctx);
    if (!m) return BATCH_ERR_NOMEM;
    memset(m, 0, sizeof *m);
    m->head.ops = &batch__map_job_ops;
    m->pool = pool;
    m->alloc_ctx = ctx;
    m->d = *desc;
    batch_map_desc* d = &m->d;
    if (!batch__mutex_init(&m->lock)) { BATCH_FREE(m, ctx); return BATCH_ERR_NOMEM; }
    m->threads = batch_pool_workers(pool) ? batch_pool_workers(pool) : 1;
    m->ext = ext;
    if (ext && ext->threads) m->threads = ext->threads;
    if (!d->retry_base_ns) d->retry_base_ns = 1000000u;
    if (!d->retry_max_ns) d->retry_max_ns = 60ull * 1000000000u;
    if (!d->max_in_flight) d->max_in_flight = 4 * m->threads;
    m->nslots = d->max_in_flight;
    /* sizing: explicit, complexity, key, else adaptive (ordered maps never size by timing) */
    m->min_b = d->min_batch ? d->min_batch : (d->sizing ? d->sizing->min_size : 1);
    if (d->max_batch) m->max_b = d->max_batch;
    else if (d->sizing) m->max_b = d->sizing->max_size;
    else {
        size_t per_item = (d->pull_fn ? sizeof(batch_item) : 0) +
                          ((d->on_batch || d->iterate || d->items_fn) ? sizeof(int) + d->result_size : 0);
        m->max_b = per_item ? BATCH__SLOT_BYTES / per_item : BATCH__DEFAULT_MAX_BATCH;
        if (m->max_b > BATCH__DEFAULT_MAX_BATCH) m->max_b = BATCH__DEFAULT_MAX_BATCH;
        if (m->max_b < 4096) m->max_b = 4096;
    }
    if (m->min_b > m->max_b) m->min_b = m->max_b;
    m->target_ns = d->target_batch_ns ? d->target_batch_ns : 200000u;
    uint64_t remembered = (d->sizing && d->key) ? batch_sizing_cost(d->sizing, d->key) : 0;
    if (d->batch_size) m->size = d->batch_size;
    else if (d->complexity) m->size = batch_sizing_class_size(d->sizing, d->complexity);
    else if (d->sizing && d->key && batch_sizing_class(d->sizing, d->key) != BATCH_COMPLEXITY_DEFAULT)
        m->size = batch_sizing_size(d->sizing, d->key);
    else if (remembered) { m->size = batch__sat_size(m->target_ns / remembered); m->adaptive = !d->ordered; m->ema_ns = remembered * 16; }
    else if (d->ordered) m->size = d->pull_fn ? 64 : d->count / 64;
    else { m->size = 16; m->adaptive = true; }
    if (m->size > m->max_b) m->size = m->max_b;
    if (m->size < m->min_b) m->size = m->min_b;
    m->key = d->key ? batch__strdup(d->key, ctx) : NULL;
    d->key = m->key;
    m->slots = (batch__mslot*)BATCH_MALLOC((size_t)m->nslots * sizeof(batch__mslot), ctx);
    m->acc = d->acc_size ? BATCH_MALLOC(d->acc_size, ctx) : NULL;
    bool ok = m->slots && (!desc->key || m->key) && (!d->acc_size || m->acc);
    if (m->slots) memset(m->slots, 0, (size_t)m->nslots * sizeof(batch__mslot));
    /* each slot's accumulator on its own cache lines: workers fold into them item by item */
    size_t stride = (d->acc_size + BATCH__CACHE_LINE - 1) / BATCH__CACHE_LINE * BATCH__CACHE_LINE;
    if (ok && d->acc_size)
        ok = stride <= (SIZE_MAX - BATCH__CACHE_LINE) / (size_t)m->nslots &&
             (m->slot_accs = BATCH_MALLOC(stride * (size_t)m->nslots + BATCH__CACHE_LINE, ctx)) != NULL;
    for (int i = 0; ok && i < m->nslots; i++) {
        batch__mslot* sl = &m->slots[i];
        sl->job = m;
        if (d->acc_size) sl->acc = (char*)batch__align_up(m->slot_accs) + stride * (size_t)i;
        sl->next = (i + 1 < m->nslots) ? &m->slots[i + 1] : NULL;
    }
    if (!ok) { batch__map_free_buffers(m); batch__mutex_destroy(&m->lock); BATCH_FREE(m, ctx); return BATCH_ERR_NOMEM; }
    m->free_slots = m->slots;
    if (d->acc_size) d->init_fn(m->acc, d->user_data);
    batch_counter_init(&m->latch, pool);
    batch_counter_init(&m->avail, pool);
    batch_counter_add(&m->latch, 1);   /* the dispatch token */
    m->launch_ns = batch_now_ns();
    m->deadline_ns = d->timeout_ns ? m->launch_ns + d->timeout_ns : 0;
    batch__progress_init(&m->head.prog, &d->progress, m->threads, m->launch_ns);
    if (!d->pull_fn && d->count == 0) m->input_done = true;
    if (d->journal.path) {
        m->rerun_failed = d->journal.rerun_failed != 0;
        uint64_t fp = d->journal.fingerprint ? d->journal.fingerprint : batch__map_fingerprint(m);
        m->jrec = (unsigned char*)BATCH_MALLOC(BATCH__JBATCH_LEN + d->acc_size, ctx);
        r = m->jrec ? batch__journal_open(&m->jn, &d->journal, BATCH__JKIND_MAP, fp, (uint32_t)d->acc_size,
                                          BATCH__JBATCH_LEN + d->acc_size, batch__map_replay, m, ctx)
                    : BATCH_ERR_NOMEM;
        if (r == BATCH_OK && (r = batch__map_sort_ranges(m)) != BATCH_OK) { batch__journal_free(m->jn); m->jn = NULL; }
        if (r != BATCH_OK) { batch__map_free_buffers(m); batch__mutex_destroy(&m->lock); BATCH_FREE(m, ctx); return r; }
        d->journal.path = NULL;   /* borrowed: not kept */
        d->journal.io = NULL;
    }
    *out = (batch_job*)m;
    batch__mutex_lock(&m->lock);
    batch__map_unlock(m, batch__map_pump(m));
    return BATCH_OK;
}

BATCH_API batch_result batch_map_launch(batch_pool* pool, const batch_map_desc* desc, batch_job** out) {
    return batch__map_launch_ext(pool, desc, NULL, out);
}

/* ---- consuming --------------------------------------------------------------------------- */
/* batch_map_next; block = false: *out stays NULL when no batch is ready now. */
BATCH__PRIVATE void batch__map_next(batch__mjob* m, const batch_batch** out, bool block) {
    batch__mslot* list = NULL;
    batch__mutex_lock(&m->lock);
    if (m->held) {
        batch__slot_free(m, m->held);
        m->held = NULL;
        list = batch__map_pump(m);
    }
    for (;;) {
        if (m->iq_head) {
            batch__mslot* sl = m->iq_head;
            m->iq_head = sl->next;
            if (!m->iq_head) m->iq_tail = NULL;
            sl->state = BATCH__SLOT_HELD;
            m->held = sl;
            *out = &sl->view;
            break;
        }
        if (m->token_released && m->running == 0) {
            bool all_free = true;   /* ordered: finished batches may still wait for an earlier one */
            for (int i = 0; i < m->nslots; i++) if (m->slots[i].state != BATCH__SLOT_FREE) all_free = false;
            if (all_free) break;
        }
        if (!block) break;
        m->consumer_waiting = true;
        batch_counter_add(&m->avail, 1);
        batch__map_unlock(m, list);   /* the job outlives this call: the consumer destroys it */
        list = NULL;
        batch_counter_wait(&m->avail);
        batch__mutex_lock(&m->lock);
    }
    batch__map_unlock(m, list);
}

BATCH_API batch_result batch_map_next(batch_job* pub, const batch_batch** out) {
    if (!out) return BATCH_ERR_INVALID;
    *out = NULL;
    batch__mjob* m = (batch__mjob*)pub;
    if (!m || m->head.ops != &batch__map_job_ops || !m->d.iterate) return BATCH_ERR_INVALID;
    if (batch__job_self_call(pub)) return BATCH_ERR_BUSY;   /* from the map's own code: it could never end */
    batch__map_next(m, out, true);
    return BATCH_OK;
}

/* Waits for the end and fills m->s once. */
BATCH__PRIVATE batch_result batch__map_finish(batch__mjob* m) {
    if (m->done) return m->s.result;
    if (m->d.iterate) {
        /* release what the consumer did not read; later batches are freed on delivery */
        batch__mslot* list;
        batch__mutex_lock(&m->lock);
        m->draining = true;
        if (m->held) { batch__slot_free(m, m->held); m->held = NULL; }
        while (m->iq_head) { batch__mslot* sl = m->iq_head; m->iq_head = sl->next; batch__slot_free(m, sl); }
        m->iq_tail = NULL;
        list = batch__map_pump(m);
        batch__map_unlock(m, list);
    }
    batch__job_wait_latch((batch_job*)m, &m->latch);
    if (m->jn) {
        batch_result cr = batch__journal_close(m->jn);
        if (cr != BATCH_OK) {
            if (m->io_error == BATCH_OK) m->io_error = cr;
            atomic_store(&m->stop, BATCH__STOP_IO);
        }
        m->jn = NULL;
    }
    batch_map_summary* s = &m->s;
    s->wall_ns = batch_now_ns() - m->launch_ns;
    s->items = s->succeeded + s->failed;
    if (!m->d.pull_fn) s->unprocessed += m->d.count - m->next_item;   /* += : batches handed out, never run (mpi.c) */
    s->success_rate = s->items ? (double)s->succeeded / (double)s->items : 1.0;
    s->parallel_efficiency = s->wall_ns ? (double)s->busy_ns / ((double)s->wall_ns * m->threads) : 0.0;
    int stop = atomic_load(&m->stop);
    bool cut = s->unprocessed || (m->d.pull_fn && !m->input_done) || atomic_load(&m->cut);
    if (stop == BATCH__STOP_CANCEL && cut) {
        s->status = BATCH_JOB_CANCELLED; s->result = BATCH_ERR_CANCELLED;
    } else if (stop == BATCH__STOP_DEADLINE) {   /* it had not finished by the deadline */
        s->status = BATCH_JOB_CANCELLED; s->result = BATCH_ERR_TIMEOUT;
    } else if (stop == BATCH__STOP_HALT) {
        s->status = BATCH_JOB_FAILED; s->result = BATCH_ERR_FAILED;
    } else if (stop == BATCH__STOP_NOMEM) {
        s->status = BATCH_JOB_FAILED; s->result = BATCH_ERR_NOMEM;
    } else if (stop == BATCH__STOP_IO) {
        s->status = BATCH_JOB_FAILED; s->result = m->io_error;
    } else if (s->failed) {
        s->status = s->succeeded ? BATCH_JOB_PARTIAL_FAILURE : BATCH_JOB_FAILED;
        s->result = s->batches_failed ? BATCH_ERR_FAILED : BATCH_PARTIAL;
    } else {
        s->status = BATCH_JOB_COMPLETED; s->result = BATCH_OK;
    }
    /* remember the cost per item for the next map with this key (on this, the waiting thread) */
    if (m->d.sizing && m->key && s->items && s->busy_ns)
        batch_sizing_record_cost(m->d.sizing, m->key, s->busy_ns / s->items + 1);
    m->done = true;
    batch__progress_emit((batch_job*)m, s->status == BATCH_JOB_CANCELLED ? BATCH_EVENT_JOB_CANCELLED : BATCH_EVENT_JOB_COMPLETED, NULL);
    return s->result;
}

BATCH_API batch_result batch_map_wait(batch_job* pub, batch_map_summary* summary, void* acc_out) {
    batch__mjob* m = (batch__mjob*)pub;
    if (!m || m->head.ops != &batch__map_job_ops) return BATCH_ERR_INVALID;
    if (!m->done && batch__job_self_call(pub)) return BATCH_ERR_BUSY;   /* from the map's own code: it could never end */
    batch_result r = batch__map_finish(m);
    if (summary) *summary = m->s;
    if (acc_out && m->d.acc_size) memcpy(acc_out, m->acc, m->d.acc_size);
    return r;
}

BATCH_API batch_result batch_map_run(batch_pool* pool, const batch_map_desc* desc, batch_map_summary* summary, void* acc_out) {
    batch_job* job;
    batch_result r = batch_map_launch(pool, desc, &job);
    if (r != BATCH_OK) {   /* nothing ran: a defined summary all the same (acc_out untouched) */
        if (summary) { memset(summary, 0, sizeof *summary); summary->status = BATCH_JOB_FAILED; summary->result = r; }
        return r;
    }
    r = batch_map_wait(job, summary, acc_out);
    batch_job_destroy(job);
    return r;
}

/* ---- the seam for mpi.c (declared at the top) ------------------------------------------------ */
/* Launches a map in one of the seam's modes; ext (its state) belongs to the job once launched. */
BATCH__PRIVATE batch_result batch__map_launch_mode(batch_pool* pool, const batch_map_desc* desc, batch__map_ext* ext, batch_job** out) {
    if (!ext) { if (out) *out = NULL; return BATCH_ERR_NOMEM; }
    batch_result r = batch__map_launch_ext(pool, desc, ext, out);
    if (r != BATCH_OK) BATCH_FREE(ext, batch__pool_alloc_ctx(pool));
    return r;
}

BATCH__PRIVATE batch_result batch__map_source_launch(batch_pool* pool, const batch_map_desc* desc, int threads, batch_job** out) {
    batch__map_ext* x = (batch__map_ext*)BATCH_MALLOC(sizeof *x, batch__pool_alloc_ctx(pool));
    if (x) {
        memset(x, 0, sizeof *x);
        x->mode = BATCH__EXT_SOURCE;
        x->threads = threads;
        x->dtail = &x->dhead;
    }
    return batch__map_launch_mode(pool, desc, x, out);
}

BATCH__PRIVATE bool batch__map_source_take(batch_job* src, batch__range* out) {
    batch__mjob* m = (batch__mjob*)src;
    batch__map_ext* x = m->ext;
    batch__mutex_lock(&m->lock);
    batch__mslot* sl = x->dhead;
    if (sl) {
        x->dhead = sl->next;
        if (!x->dhead) x->dtail = &x->dhead;
        sl->next = NULL;
        out->index = sl->batch_index;
        out->first = sl->first;
        out->count = sl->count;
    }
    batch__mutex_unlock(&m->lock);
    return sl != NULL;
}

/* Job lock held: a batch of the source that will never run is finished undelivered (in order,
   when ordered: later batches may wait for it); its items count as unprocessed. */
BATCH__PRIVATE void batch__map_source_drop(batch__mjob* m, batch__mslot* sl) {
    sl->unrun = true;
    batch__map_finished(m, sl);
}

BATCH__PRIVATE bool batch__map_source_return(batch_job* src, const batch__outcome* o) {
    batch__mjob* m = (batch__mjob*)src;
    batch__mslot* sl = NULL;
    batch__mutex_lock(&m->lock);
    for (int i = 0; i < m->nslots && !sl; i++)
        if (m->slots[i].state == BATCH__SLOT_RUNNING && m->slots[i].batch_index == o->index) sl = &m->slots[i];
    if (!sl) { batch__mutex_unlock(&m->lock); return false; }
    if (o->status == BATCH__NOT_RUN) {
        batch__map_source_drop(m, sl);
        batch__map_unlock(m, batch__map_pump(m));
        return true;
    }
    batch__mutex_unlock(&m->lock);
    sl->status = (batch_batch_status)o->status;
    sl->succeeded = o->succeeded;
    sl->failed = o->failed;
    sl->retries_used = o->retries;
    sl->exec_ns = o->exec_ns;
    sl->start_ns = batch_now_ns() - o->exec_ns;
    sl->nerrors = 0;
    sl->worker = -1;
    if (m->d.acc_size && o->acc) memcpy(sl->acc, o->acc, m->d.acc_size);
    batch__mslot_done(m, sl, o->exec_ns, (uint64_t)o->retries);
    return true;
}

BATCH__PRIVATE int batch__map_source_end(batch_job* src) {
    batch__mjob* m = (batch__mjob*)src;
    batch__map_ext* x = m->ext;
    batch__mutex_lock(&m->lock);
    int stop = atomic_load(&m->stop), end = BATCH__SOURCE_OPEN;
    if (m->token_released) {
        bool cancel = stop == BATCH__STOP_CANCEL || stop == BATCH__STOP_DEADLINE || stop == BATCH__STOP_IO ||
                      stop == BATCH__STOP_NOMEM;   /* a halt, as the end of the input, lets cut batches run */
        if (cancel) {
            while (x->dhead) {
                batch__mslot* sl = x->dhead;
                x->dhead = sl->next;
                sl->next = NULL;
                batch__map_source_drop(m, sl);
            }
            x->dtail = &x->dhead;
            end = BATCH__SOURCE_CANCELLED;
        } else if (!x->dhead) {
            end = BATCH__SOURCE_DONE;
        }
    }
    batch__map_unlock(m, NULL);   /* pays for the slots dropped; no batch is cut any more */
    return end;
}

BATCH__PRIVATE void batch__map_source_abandon(batch_job* src) {
    batch__mjob* m = (batch__mjob*)src;
    int e = 0;
    atomic_compare_exchange_strong(&m->stop, &e, BATCH__STOP_CANCEL);
    batch__mutex_lock(&m->lock);
    m->ext->dhead = NULL;   /* the slots listed there are RUNNING too: dropped below */
    m->ext->dtail = &m->ext->dhead;
    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].state == BATCH__SLOT_RUNNING) batch__map_source_drop(m, &m->slots[i]);
    batch__map_unlock(m, batch__map_pump(m));
}

BATCH__PRIVATE batch_result batch__map_executor_launch(batch_pool* pool, const batch_map_desc* desc, int max_in_flight, batch_job** out) {
    batch_map_desc ed = *desc;   /* the batch rules; sizing, order, halt, time, journal are the source's */
    ed.iterate = 1;
    ed.ordered = 0;
    ed.keep_batches = 0;
    ed.halt_error_ratio = 0;
    ed.timeout_ns = 0;
    ed.max_concurrent_batches = 0;
    ed.max_in_flight = max_in_flight;
    ed.sizing = NULL;
    ed.key = NULL;
    memset(&ed.progress, 0, sizeof ed.progress);
    memset(&ed.journal, 0, sizeof ed.journal);
    size_t n = max_in_flight > 0 ? (size_t)max_in_flight : 0;
    batch__map_ext* x = (batch__map_ext*)BATCH_MALLOC(sizeof *x + n * sizeof(batch__range), batch__pool_alloc_ctx(pool));
    if (x) {
        memset(x, 0, sizeof *x);
        x->mode = BATCH__EXT_EXECUTOR;
    }
    return batch__map_launch_mode(pool, &ed, x, out);
}

BATCH__PRIVATE int batch__map_executor_room(batch_job* ex) {
    batch__mjob* m = (batch__mjob*)ex;
    batch__mutex_lock(&m->lock);
    int n = 0;
    for (batch__mslot* x = m->free_slots; x; x = x->next) n++;
    n -= (int)m->ext->rcount;   /* free slots are promised to the ranges queued */
    batch__mutex_unlock(&m->lock);
    return n;
}

BATCH__PRIVATE bool batch__map_executor_push(batch_job* ex, const batch__range* r) {
    batch__mjob* m = (batch__mjob*)ex;
    batch__map_ext* x = m->ext;
    batch__mutex_lock(&m->lock);
    if (x->rcount == (size_t)m->nslots || x->closed) { batch__mutex_unlock(&m->lock); return false; }
    x->ranges[(x->rhead + x->rcount++) % (size_t)m->nslots] = *r;
    batch__map_unlock(m, batch__map_pump(m));
    return true;
}

BATCH__PRIVATE bool batch__map_executor_take(batch_job* ex, batch__outcome* o) {
    const batch_batch* b = NULL;
    batch__map_next((batch__mjob*)ex, &b, false);   /* an executor is an iterator map */
    if (!b) return false;
    o->index = b->batch_index;
    o->succeeded = b->succeeded;
    o->failed = b->failed;
    o->status = (int)b->status;
    o->retries = b->retries_used;
    o->exec_ns = b->exec_ns;
    o->acc = b->acc;
    return true;
}

BATCH__PRIVATE size_t batch__map_executor_stop(batch_job* ex, bool cancel, batch__range* out, size_t cap) {
    batch__mjob* m = (batch__mjob*)ex;
    batch__map_ext* x = m->ext;
    batch__mutex_lock(&m->lock);
    size_t n = 0;
    while (cancel && x->rcount && n < cap) {
        out[n++] = x->ranges[x->rhead];
        x->rhead = (x->rhead + 1) % (size_t)m->nslots;
        x->rcount--;
    }
    x->closed = true;
    if (cancel) {   /* nothing new starts; running items see batch_ctx_should_stop */
        int e = 0;
        atomic_compare_exchange_strong(&m->stop, &e, BATCH__STOP_CANCEL);
    }
    batch__map_unlock(m, batch__map_pump(m));
    return n;
}

BATCH__PRIVATE bool batch__map_idle(batch_job* job) {
    batch__mjob* m = (batch__mjob*)job;
    batch__mutex_lock(&m->lock);
    bool idle = m->token_released && !m->held && !m->iq_head;
    for (int i = 0; idle && i < m->nslots; i++) idle = m->slots[i].state == BATCH__SLOT_FREE;
    batch__mutex_unlock(&m->lock);
    return idle;
}

BATCH__PRIVATE batch_result batch__map_job_wait(batch_job* pub, batch_job_summary* out) {
    batch__mjob* m = (batch__mjob*)pub;
    if (!m->done && batch__job_self_call(pub)) return BATCH_ERR_BUSY;   /* from the map's own code: it could never end */
    batch_result r = batch__map_finish(m);
    if (out) {
        memset(out, 0, sizeof *out);
        out->status = m->s.status;
        out->result = m->s.result;
        out->completed = m->s.succeeded;
        out->failed = m->s.failed;
        out->cancelled = m->s.unprocessed;
        out->total = out->completed + out->failed + out->cancelled;
        out->retries = m->s.retries;
        out->wall_ns = m->s.wall_ns;
        out->busy_ns = m->s.busy_ns;
        out->peak_concurrency = m->s.peak_concurrent_batches;
    }
    return r;
}

BATCH__PRIVATE batch_result batch__map_job_cancel(batch_job* pub) {
    batch__mjob* m = (batch__mjob*)pub;
    int e = 0;
    atomic_compare_exchange_strong(&m->stop, &e, BATCH__STOP_CANCEL);
    /* from on_batch or pull_fn (the lock is ours): the pump that follows the callback stops */
    if (batch__tls_map_locked == pub) return BATCH_OK;
    /* wake a consumer so that it sees the end once the running batches are delivered */
    batch__mutex_lock(&m->lock);
    batch__map_unlock(m, batch__map_pump(m));
    return BATCH_OK;
}

BATCH__PRIVATE void batch__map_job_counts(batch_job* pub, batch_progress* out, uint64_t* busy) {
    batch__mjob* m = (batch__mjob*)pub;
    bool held = batch__tls_map_locked == pub;   /* from on_batch: this thread holds the lock */
    if (!held) batch__mutex_lock(&m->lock);
    out->total = m->d.pull_fn ? (m->input_done ? m->next_item : 0) : m->d.count;
    out->succeeded = m->s.succeeded;
    out->failed = m->s.failed;
    out->retried = m->s.retries;
    out->running = m->conc_now;
    out->cancelled = m->done ? m->s.unprocessed : 0;
    out->processed = out->succeeded + out->failed + out->cancelled;
    *busy = m->s.busy_ns;
    if (!held) batch__mutex_unlock(&m->lock);
}

BATCH__PRIVATE batch_result batch__map_job_facts(batch_job* pub, batch__job_facts* out);   /* records for reports */
BATCH__PRIVATE void batch__map_job_record(batch_job* pub, size_t i, batch__record* out);
BATCH__PRIVATE const void* batch__map_job_earlier(batch_job* pub, const void* cursor, batch__record* out);
static const batch__job_ops batch__map_job_ops = { batch__map_job_wait, batch__map_job_cancel, batch__map_job_free,
                                                   batch__map_job_counts, batch__job_self_call,
                                                   NULL /* an item's context has its own message buffer */,
                                                   batch__map_job_facts, batch__map_job_record, batch__map_job_earlier };

/* ---- records for reports ------------------------------------------------------------------ */
/* The map's facts once it was waited for: its summaries, one record per kept batch. */
BATCH__PRIVATE batch_result batch__map_job_facts(batch_job* pub, batch__job_facts* out) {
    batch__mjob* m = (batch__mjob*)pub;
    if (!m->done) return BATCH_ERR_BUSY;
    memset(out, 0, sizeof *out);
    out->kind = BATCH__KIND_MAP;
    batch__map_job_wait(pub, &out->summary);   /* done: only copies */
    out->launch_ns = m->launch_ns;
    out->nrecords = m->nrecs;
    out->keeps_records = m->d.keep_batches != 0;
    out->timeline = m->nrecs != 0;
    out->workers = m->threads;
    out->map = m->s;
    return BATCH_OK;
}

/* A kept record as a report's record (its times are kept since the launch). */
BATCH__PRIVATE void batch__map_rec_out(const batch__mjob* m, const batch__batch_rec* b, batch__record* out) {
    memset(out, 0, sizeof *out);
    out->index = b->index;
    out->status = b->status;
    out->status_string = batch_batch_status_string((batch_batch_status)b->status);
    out->attempts = b->retries + 1;
    out->retries = b->retries;
    out->worker = b->worker;
    out->start_ns = m->launch_ns + b->start_ns;
    out->end_ns = m->launch_ns + b->end_ns;
    out->first = b->first;
    out->count = b->count;
    out->succeeded = b->succeeded;
    out->failed = b->failed;
    out->attempt = b->retries + 1;
    out->next_ns = b->next_ns ? m->launch_ns + b->next_ns : 0;
}

/* Kept batch i. */
BATCH__PRIVATE void batch__map_job_record(batch_job* pub, size_t i, batch__record* out) {
    const batch__mjob* m = (const batch__mjob*)pub;
    batch__map_rec_out(m, &m->recs[i], out);   /* i < facts.nrecords */
}

/* The attempts a retry followed, in the order their retries started (the cursor: the last one
   returned). attempts and retries are the attempt's own: the batch's are in its kept record. */
BATCH__PRIVATE const void* batch__map_job_earlier(batch_job* pub, const void* cursor, batch__record* out) {
    const batch__mjob* m = (const batch__mjob*)pub;
    const batch__batch_rec* b = cursor ? (const batch__batch_rec*)cursor + 1 : m->tries;
    if (!b || b >= m->tries + m->ntries) return NULL;
    batch__map_rec_out(m, b, out);
    return b;
}

#endif /* BATCH__MAP_C */
