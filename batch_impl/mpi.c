/* mpi.c - batched maps across MPI ranks (BATCH_MPI only; see "MAPS ACROSS PROCESSES").

   Every rank runs an executor (map.c's seam: batches whose ranges are pushed to it, on the rank's
   own pool, with the threshold and whole-batch retry rules). Rank 0 also runs the source (the
   map's own input cutting, sizing, ordered delivery, fold, journal and halt, but no items) and
   hands its ranges to the ranks that asked for work, its own executor included. This file only
   moves ranges and outcomes between the two through the seam's functions ("the map's seam for
   mpi.c" in map.c). All MPI calls happen on the calling thread of each rank.

   Messages (on a duplicate of the user's communicator, so they never meet the user's):
     REQ    rank -> 0   int32: room for k more batches (k > 0), or -1: done, nothing follows
     WORK   0 -> rank   u64[3]: batch index, first item, count; count 0: stop (index 1: cancel)
     RESULT rank -> 0   u64[6] index, status (0xff: not run), succeeded, failed, retries,
                        exec_ns; then the batch's accumulator (acc_size bytes)
   Messages from one rank arrive in the order sent (MPI's non-overtaking rule, one receive
   pattern for all tags), so its DONE comes after all its results. */
#ifndef BATCH__MPI_C
#define BATCH__MPI_C
#ifndef BATCH_SINGLE_FILE
#  include "map.c"
#endif
#if defined(BATCH_MPI)

enum { BATCH__TAG_REQ = 7301, BATCH__TAG_WORK, BATCH__TAG_RESULT };
enum { BATCH__RESULT_WORDS = 6, BATCH__HELLO_WORDS = 10, BATCH__STATS_WORDS = 7 };
enum { BATCH__RANK_WORKING, BATCH__RANK_STOPPED, BATCH__RANK_DONE };   /* as rank 0 sees each rank */
#define BATCH__UNRUN 0xffu
_Static_assert(BATCH__STATS_WORDS <= BATCH__HELLO_WORDS, "batch__mpi.rows holds the hellos, then the stats");
/* A loop with nothing to do naps, 50 us at first, twice as long each time nothing happened, up
   to 1 ms, then looks again. It does not ask to be woken per finished batch: a wake-up takes a
   core a worker needs. A rank asks for work before it runs out (its room is max_in_flight
   batches) and adaptive batches aim at 1 ms here (target_batch_ns 0), so the latency of a
   message hides behind the batches queued. */
#define BATCH__MPI_NAP_MIN_NS 50000u
#define BATCH__MPI_NAP_MAX_NS 1000000u

typedef struct batch__mpi {
    MPI_Comm comm;
    int rank, size;
    batch_result err;             /* BATCH_ERR_MPI after the first failed call */
    void* alloc_ctx;
    size_t acc_size;
    unsigned char* buf;           /* one RESULT message, then the final accumulator */
    batch_pool* pool;             /* this rank's pool */
    batch_job* exec;              /* this rank's executor */
    batch_job* src;               /* rank 0: the source */
    batch__range* dropped;        /* ranges the executor took back (k of them at most) */
    int k;                        /* this rank's room: executor slots */
    int total_k, total_threads;   /* every rank's */
    uint64_t* rows;               /* every rank's hello, later its stats */
    /* rank 0 */
    int* want;                    /* batches each rank asked for and did not get yet */
    int* state;                   /* BATCH__RANK_* of each rank */
    int next_rank;                /* the rank whose turn comes first */
    bool exec_stopped;            /* rank 0's executor gets no more ranges */
} batch__mpi;

BATCH__PRIVATE bool batch__mpi_ok(batch__mpi* c, int rc) {
    if (rc != MPI_SUCCESS && c->err == BATCH_OK) c->err = BATCH_ERR_MPI;
    return rc == MPI_SUCCESS && c->err == BATCH_OK;
}

/* Sleeps *nap ns and doubles it up to the cap; activity resets it. */
BATCH__PRIVATE void batch__mpi_nap(bool any, long* nap) {
    if (any) { *nap = BATCH__MPI_NAP_MIN_NS; return; }
    struct timespec ts = { 0, *nap };
    nanosleep(&ts, NULL);
    if (*nap < (long)BATCH__MPI_NAP_MAX_NS) *nap *= 2;
}

/* Between two rounds of a rank's loop: an inline pool (no workers) runs the batches queued on
   it here, as nobody else would; then the nap. */
BATCH__PRIVATE void batch__mpi_pause(batch__mpi* c, bool any, long* nap) {
    if (batch_pool_workers(c->pool) == 0) (void)batch_pool_wait_idle(c->pool);
    batch__mpi_nap(any, nap);
}

/* Sends one finished (or never run) batch to rank 0; on rank 0 the source takes it directly. */
BATCH__PRIVATE void batch__mpi_send_result(batch__mpi* c, const batch__outcome* o) {
    if (c->rank == 0) {
        if (!batch__map_source_return(c->src, o)) c->err = BATCH_ERR_MPI;   /* cannot happen: a protocol error */
        return;
    }
    uint64_t w[BATCH__RESULT_WORDS] = { o->index, o->status == BATCH__NOT_RUN ? BATCH__UNRUN : (uint64_t)o->status,
                                        o->succeeded, o->failed, (uint64_t)o->retries, o->exec_ns };
    memcpy(c->buf, w, sizeof w);
    if (c->acc_size) {
        if (o->acc) memcpy(c->buf + sizeof w, o->acc, c->acc_size);
        else memset(c->buf + sizeof w, 0, c->acc_size);
    }
    batch__mpi_ok(c, MPI_Send(c->buf, (int)(sizeof w + c->acc_size), MPI_BYTE, 0, BATCH__TAG_RESULT, c->comm));
}

/* Completes a non-blocking collective while napping: a blocking one would spin a core in
   Open MPI while the other ranks still finish their batches. */
BATCH__PRIVATE int batch__mpi_wait(MPI_Request* req) {
    long nap = BATCH__MPI_NAP_MIN_NS;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        batch__mpi_nap(false, &nap);
    }
}
BATCH__PRIVATE int batch__mpi_allgather(const void* in, void* out, int words, MPI_Comm comm) {
    MPI_Request req;
    int rc = MPI_Iallgather(in, words, MPI_UINT64_T, out, words, MPI_UINT64_T, comm, &req);
    return rc == MPI_SUCCESS ? batch__mpi_wait(&req) : rc;
}
BATCH__PRIVATE int batch__mpi_allreduce_int(const int* in, int* out, MPI_Op op, MPI_Comm comm) {
    MPI_Request req;
    int rc = MPI_Iallreduce(in, out, 1, MPI_INT, op, comm, &req);
    return rc == MPI_SUCCESS ? batch__mpi_wait(&req) : rc;
}
BATCH__PRIVATE int batch__mpi_bcast(void* buf, int bytes, MPI_Comm comm) {
    MPI_Request req;
    int rc = MPI_Ibcast(buf, bytes, MPI_BYTE, 0, comm, &req);
    return rc == MPI_SUCCESS ? batch__mpi_wait(&req) : rc;
}

/* Forwards what this rank's executor finished. True when it did anything. */
BATCH__PRIVATE bool batch__mpi_drain(batch__mpi* c) {
    bool any = false;
    batch__outcome o;
    while (c->err == BATCH_OK && batch__map_executor_take(c->exec, &o)) {
        batch__mpi_send_result(c, &o);
        any = true;
    }
    return any;
}

/* No more ranges for this rank's executor. At the end of the input the ranges it has queued
   still run; on a cancel they go back as not run and running items see the stop. */
BATCH__PRIVATE void batch__mpi_stop_exec(batch__mpi* c, bool cancel) {
    size_t n = batch__map_executor_stop(c->exec, cancel, c->dropped, (size_t)c->k);
    for (size_t i = 0; i < n; i++) {
        batch__outcome o = { .index = c->dropped[i].index, .status = BATCH__NOT_RUN };
        batch__mpi_send_result(c, &o);
    }
}

/* ---- rank 0 --------------------------------------------------------------------------------- */
/* A RESULT message from rank src, probed as st: the batch's outcome goes to the source. */
BATCH__PRIVATE void batch__mpi_recv_result(batch__mpi* c, int src, MPI_Status* st) {
    int bytes = 0;
    MPI_Get_count(st, MPI_BYTE, &bytes);
    if (bytes != (int)(BATCH__RESULT_WORDS * sizeof(uint64_t) + c->acc_size)) { c->err = BATCH_ERR_MPI; return; }
    if (!batch__mpi_ok(c, MPI_Recv(c->buf, bytes, MPI_BYTE, src, BATCH__TAG_RESULT, c->comm, MPI_STATUS_IGNORE))) return;
    uint64_t w[BATCH__RESULT_WORDS];
    memcpy(w, c->buf, sizeof w);
    batch__outcome o = { .index = (size_t)w[0], .status = w[1] == BATCH__UNRUN ? BATCH__NOT_RUN : (int)w[1],
                         .succeeded = (size_t)w[2], .failed = (size_t)w[3], .retries = (int)w[4], .exec_ns = w[5],
                         .acc = c->acc_size ? c->buf + sizeof w : NULL };
    if (!batch__map_source_return(c->src, &o)) c->err = BATCH_ERR_MPI;
}

/* Takes the messages the other ranks sent: requests for work, DONE, results. True when any came. */
BATCH__PRIVATE bool batch__mpi_receive(batch__mpi* c) {
    bool any = false;
    while (c->err == BATCH_OK) {
        int flag = 0;
        MPI_Status st;
        if (!batch__mpi_ok(c, MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c->comm, &flag, &st)) || !flag) break;
        any = true;
        int src = st.MPI_SOURCE;
        if (st.MPI_TAG == BATCH__TAG_REQ) {
            int k = 0;
            if (!batch__mpi_ok(c, MPI_Recv(&k, 1, MPI_INT, src, BATCH__TAG_REQ, c->comm, MPI_STATUS_IGNORE))) break;
            if (k < 0) c->state[src] = BATCH__RANK_DONE;
            else if (c->state[src] == BATCH__RANK_WORKING) c->want[src] += k;
        } else if (st.MPI_TAG == BATCH__TAG_RESULT) {
            batch__mpi_recv_result(c, src, &st);
        } else {
            c->err = BATCH_ERR_MPI;   /* nobody sends anything else on this communicator */
        }
    }
    return any;
}

/* Who gets the next range: the ranks that asked (their turn costs a message) in turn, then
   rank 0's executor while it has room; -1: nobody now. */
BATCH__PRIVATE int batch__mpi_pick_rank(batch__mpi* c) {
    for (int k = 0; k < c->size - 1; k++) {
        int r = 1 + (c->next_rank - 1 + k) % (c->size - 1);
        if (c->want[r] > 0 && c->state[r] == BATCH__RANK_WORKING) return r;
    }
    return !c->exec_stopped && batch__map_executor_room(c->exec) > 0 ? 0 : -1;
}

/* Hands out the ranges the source cut, in batch order. True when it did anything. */
BATCH__PRIVATE bool batch__mpi_hand_out(batch__mpi* c) {
    bool any = false;
    batch__range rg;
    int to;
    while (c->err == BATCH_OK && (to = batch__mpi_pick_rank(c)) >= 0 && batch__map_source_take(c->src, &rg)) {
        any = true;
        if (to == 0) {
            if (!batch__map_executor_push(c->exec, &rg)) c->err = BATCH_ERR_MPI;
            continue;
        }
        c->next_rank = to + 1 > c->size - 1 ? 1 : to + 1;
        uint64_t w[3] = { rg.index, rg.first, rg.count };
        if (batch__mpi_ok(c, MPI_Send(w, 3, MPI_UINT64_T, to, BATCH__TAG_WORK, c->comm))) c->want[to]--;
    }
    return any;
}

/* The end of the input (or a stop): once what was cut is handed out, every rank gets one STOP
   (a cancel also drops what was never handed out). True once every rank is done and every
   batch is back. */
BATCH__PRIVATE bool batch__mpi_wind_down(batch__mpi* c) {
    int end = batch__map_source_end(c->src);
    if (end == BATCH__SOURCE_OPEN) {
        if (c->exec_stopped) c->err = BATCH_ERR_MPI;   /* cannot happen: the executor stops only at the end */
        return false;
    }
    bool cancel = end == BATCH__SOURCE_CANCELLED;
    for (int r = 1; r < c->size && c->err == BATCH_OK; r++) {
        if (c->state[r] != BATCH__RANK_WORKING) continue;
        uint64_t w[3] = { cancel ? 1u : 0u, 0, 0 };
        if (batch__mpi_ok(c, MPI_Send(w, 3, MPI_UINT64_T, r, BATCH__TAG_WORK, c->comm))) c->state[r] = BATCH__RANK_STOPPED;
    }
    if (!c->exec_stopped) {
        batch__mpi_stop_exec(c, cancel);
        c->exec_stopped = true;
    }
    for (int r = 1; r < c->size; r++) if (c->state[r] != BATCH__RANK_DONE) return false;
    if (!batch__map_idle(c->exec) || !batch__map_idle(c->src)) return false;
    batch__mpi_drain(c);
    return true;
}

BATCH__PRIVATE void batch__mpi_coordinate(batch__mpi* c) {
    c->want = (int*)BATCH_MALLOC((size_t)c->size * 2 * sizeof(int), c->alloc_ctx);
    if (!c->want) { c->err = BATCH_ERR_NOMEM; return; }
    c->state = c->want + c->size;
    for (int r = 0; r < c->size; r++) { c->want[r] = 0; c->state[r] = r == 0 ? BATCH__RANK_DONE : BATCH__RANK_WORKING; }
    c->next_rank = 1;
    long nap = BATCH__MPI_NAP_MIN_NS;
    while (c->err == BATCH_OK) {
        bool any = batch__mpi_receive(c);
        if (batch__mpi_drain(c)) any = true;   /* rank 0's own batches */
        if (batch__mpi_hand_out(c)) any = true;
        if (batch__mpi_wind_down(c)) break;
        batch__mpi_pause(c, any, &nap);
    }
    BATCH_FREE(c->want, c->alloc_ctx);
    c->want = c->state = NULL;
}

/* ---- every other rank ------------------------------------------------------------------------ */
BATCH__PRIVATE void batch__mpi_work(batch__mpi* c) {
    int asked = 0;
    long nap = BATCH__MPI_NAP_MIN_NS;
    bool stopped = false;
    while (c->err == BATCH_OK) {
        bool any = batch__mpi_drain(c);
        if (!stopped) {
            int room = batch__map_executor_room(c->exec) - asked;
            if (room > 0) {
                if (!batch__mpi_ok(c, MPI_Send(&room, 1, MPI_INT, 0, BATCH__TAG_REQ, c->comm))) break;
                asked += room;
                any = true;
            }
        }
        for (;;) {
            int flag = 0;
            if (!batch__mpi_ok(c, MPI_Iprobe(0, BATCH__TAG_WORK, c->comm, &flag, MPI_STATUS_IGNORE)) || !flag) break;
            uint64_t w[3];
            if (!batch__mpi_ok(c, MPI_Recv(w, 3, MPI_UINT64_T, 0, BATCH__TAG_WORK, c->comm, MPI_STATUS_IGNORE))) break;
            any = true;
            if (w[2] == 0) {   /* STOP: nothing more comes; a cancel also takes back what did not start */
                stopped = true;
                batch__mpi_stop_exec(c, w[0] != 0);
            } else {
                asked--;
                batch__range rg = { (size_t)w[0], (size_t)w[1], (size_t)w[2] };
                if (!batch__map_executor_push(c->exec, &rg)) c->err = BATCH_ERR_MPI;
            }
        }
        if (stopped && batch__map_idle(c->exec)) {
            batch__mpi_drain(c);
            int done = -1;
            batch__mpi_ok(c, MPI_Send(&done, 1, MPI_INT, 0, BATCH__TAG_REQ, c->comm));
            break;
        }
        batch__mpi_pause(c, any, &nap);
    }
}

/* ---- the call -------------------------------------------------------------------------------- */
/* Every rank checks its own desc, then all agree on the map's shape (or all refuse); fills
   c->k, c->total_k, c->total_threads and allocates c->rows. */
BATCH__PRIVATE batch_result batch__mpi_agree(batch__mpi* c, batch_pool* pool, const batch_map_desc* desc) {
    batch_result r = (!pool || !desc) ? BATCH_ERR_INVALID : batch__map_check(desc);
    if (r == BATCH_OK && (desc->pull_fn || desc->on_batch || desc->iterate)) r = BATCH_ERR_INVALID;
    int threads = pool ? (batch_pool_workers(pool) ? batch_pool_workers(pool) : 1) : 1;
    c->k = (r == BATCH_OK && desc->max_in_flight) ? desc->max_in_flight : 4 * threads;
    uint64_t hello[BATCH__HELLO_WORDS] = { (uint64_t)(r == BATCH_OK) };
    if (r == BATCH_OK) {
        uint64_t h[BATCH__HELLO_WORDS] = { 1, desc->count, desc->result_size, desc->acc_size, (uint64_t)(desc->ordered != 0),
                                           desc->batch_size, (uint64_t)desc->complexity, (uint64_t)desc->max_retries,
                                           (uint64_t)c->k, (uint64_t)threads };
        memcpy(hello, h, sizeof h);
    }
    c->rows = (uint64_t*)BATCH_MALLOC((size_t)c->size * BATCH__HELLO_WORDS * sizeof(uint64_t), c->alloc_ctx);
    int agree = c->rows != NULL;   /* out of memory anywhere: everybody stops */
    int agreed = 0;
    if (batch__mpi_allreduce_int(&agree, &agreed, MPI_LAND, c->comm) != MPI_SUCCESS) return BATCH_ERR_MPI;
    if (!agreed) return BATCH_ERR_NOMEM;
    if (batch__mpi_allgather(hello, c->rows, BATCH__HELLO_WORDS, c->comm) != MPI_SUCCESS) return BATCH_ERR_MPI;
    const uint64_t* all = c->rows;
    for (int i = 0; i < c->size; i++) {
        const uint64_t* x = all + (size_t)i * BATCH__HELLO_WORDS;
        if (!x[0]) { r = r == BATCH_OK ? BATCH_ERR_INVALID : r; continue; }
        for (int f = 1; f <= 7; f++) if (x[f] != all[f] && all[0]) r = r == BATCH_OK ? BATCH_ERR_INVALID : r;
        c->total_k += (int)x[8];
        c->total_threads += (int)x[9];
    }
    return r;
}

/* Launches this rank's executor and, on rank 0, the source: everybody starts, or nobody. The
   first failure's code travels from rank 0 when it is the source's (a journal that does not
   fit), else it is NOMEM. */
BATCH__PRIVATE batch_result batch__mpi_start(batch__mpi* c, batch_pool* pool, const batch_map_desc* desc) {
    batch_result r = BATCH_OK;
    c->pool = pool;
    c->acc_size = desc->acc_size;
    c->buf = (unsigned char*)BATCH_MALLOC(BATCH__RESULT_WORDS * sizeof(uint64_t) + 2 * c->acc_size, c->alloc_ctx);
    c->dropped = (batch__range*)BATCH_MALLOC((size_t)c->k * sizeof(batch__range), c->alloc_ctx);
    bool ok = c->buf && c->dropped && batch__map_executor_launch(pool, desc, c->k, &c->exec) == BATCH_OK;
    if (ok && c->rank == 0) {
        batch_map_desc sd = *desc;
        sd.max_in_flight = c->total_k;
        if (!sd.target_batch_ns) sd.target_batch_ns = 1000000u;   /* see BATCH__MPI_NAP_MIN_NS */
        r = batch__map_source_launch(pool, &sd, c->total_threads, &c->src);   /* the journal may refuse */
        ok = r == BATCH_OK;
    }
    int code = ok ? 0 : (c->rank == 0 && r != BATCH_OK ? (int)r : (int)BATCH_ERR_NOMEM), worst = 0;
    if (batch__mpi_allreduce_int(&code, &worst, MPI_MIN, c->comm) != MPI_SUCCESS) worst = BATCH_ERR_MPI;
    if (worst == 0) return BATCH_OK;
    if (c->exec) { batch__map_executor_stop(c->exec, false, NULL, 0); batch_job_destroy(c->exec); c->exec = NULL; }
    if (c->src) { batch_job_cancel(c->src); batch_job_destroy(c->src); c->src = NULL; }
    return (batch_result)worst;
}

/* Waits for this rank's share and rank 0's summary, then gives every rank the whole: the
   summary with everybody's busy time and retries, the accumulator, each rank's stats. */
BATCH__PRIVATE batch_result batch__mpi_gather(batch__mpi* c, batch_map_summary* summary, void* acc_out, batch_mpi_rank_stats* per_rank,
                                              bool* filled) {
    batch_map_summary es, cs;
    memset(&es, 0, sizeof es);
    memset(&cs, 0, sizeof cs);
    unsigned char* acc = c->buf + BATCH__RESULT_WORDS * sizeof(uint64_t) + c->acc_size;
    batch_result er = batch_map_wait(c->exec, &es, NULL);
    uint64_t mine[BATCH__STATS_WORDS] = { es.batches, es.items, es.succeeded, es.failed, es.retries, es.busy_ns,
                                          (uint64_t)(er == BATCH_ERR_NOMEM) };
    batch_result r = c->src ? batch_map_wait(c->src, &cs, acc) : BATCH_OK;
    if (c->err != BATCH_OK) return c->err;
    if (batch__mpi_allgather(mine, c->rows, BATCH__STATS_WORDS, c->comm) != MPI_SUCCESS ||   /* rows: reused */
        batch__mpi_bcast(&cs, (int)sizeof cs, c->comm) != MPI_SUCCESS ||
        (c->acc_size && batch__mpi_bcast(acc, (int)c->acc_size, c->comm) != MPI_SUCCESS))
        return BATCH_ERR_MPI;
    uint64_t busy = 0, retries = 0;
    bool nomem = false;
    for (int i = 0; i < c->size; i++) {
        const uint64_t* x = c->rows + (size_t)i * BATCH__STATS_WORDS;
        if (per_rank) {
            batch_mpi_rank_stats* p = &per_rank[i];
            p->batches = x[0]; p->items = x[1]; p->succeeded = x[2]; p->failed = x[3]; p->retries = x[4]; p->busy_ns = x[5];
        }
        busy += x[5];
        retries += x[4];
        nomem = nomem || x[6];
    }
    cs.busy_ns = busy;
    cs.retries = retries;
    cs.parallel_efficiency = cs.wall_ns ? (double)busy / ((double)cs.wall_ns * c->total_threads) : 0.0;
    r = nomem && cs.result != BATCH_ERR_IO ? BATCH_ERR_NOMEM : cs.result;
    cs.result = r;
    if (summary) { *summary = cs; *filled = true; }
    if (acc_out && c->acc_size) memcpy(acc_out, acc, c->acc_size);
    return r;
}

BATCH_API batch_result batch_mpi_map(MPI_Comm comm, batch_pool* pool, const batch_map_desc* desc,
                                     batch_map_summary* summary, void* acc_out, batch_mpi_rank_stats* per_rank) {
    if (comm == MPI_COMM_NULL) return BATCH_ERR_INVALID;
    batch__mpi c;
    memset(&c, 0, sizeof c);
    if (MPI_Comm_dup(comm, &c.comm) != MPI_SUCCESS) return BATCH_ERR_MPI;
    MPI_Comm_set_errhandler(c.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c.comm, &c.rank);
    MPI_Comm_size(c.comm, &c.size);
    c.alloc_ctx = batch__pool_alloc_ctx(pool);
    bool filled = false;
    batch_result r = batch__mpi_agree(&c, pool, desc);
    if (r == BATCH_OK) r = batch__mpi_start(&c, pool, desc);
    if (r == BATCH_OK) {
        if (c.rank == 0) batch__mpi_coordinate(&c);
        else batch__mpi_work(&c);
        if (c.err != BATCH_OK) {   /* stop what runs here, then leave: MPI may not be usable */
            batch__map_executor_stop(c.exec, true, c.dropped, (size_t)c.k);
            if (c.src) batch__map_source_abandon(c.src);   /* the batches out will not come back */
        }
        r = batch__mpi_gather(&c, summary, acc_out, per_rank, &filled);
        batch_job_destroy(c.exec);
        if (c.src) batch_job_destroy(c.src);
    }
    if (c.buf) BATCH_FREE(c.buf, c.alloc_ctx);
    if (c.dropped) BATCH_FREE(c.dropped, c.alloc_ctx);
    if (c.rows) BATCH_FREE(c.rows, c.alloc_ctx);
    MPI_Comm_free(&c.comm);
    if (summary && !filled) {   /* refused or broken: a defined summary all the same */
        memset(summary, 0, sizeof *summary);
        summary->status = BATCH_JOB_FAILED;
        summary->result = r;
    }
    return r;
}

#endif /* BATCH_MPI */
#endif /* BATCH__MPI_C */
