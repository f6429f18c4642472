/* mpi.c - batched maps across MPI ranks (BATCH_MPI only; see "MAPS ACROSS PROCESSES").

   Every rank runs an executor (map.c's executor mode: batches whose ranges are pushed to it, on
   the rank's own pool, with the threshold and whole-batch retry rules). Rank 0 also runs the
   coordinator (map.c's coordinator mode: the map's own input cutting, sizing, ordered delivery,
   fold, journal and halt, but no items) and hands its batches to the ranks that asked for
   work, its own executor included. All MPI calls happen on the calling thread of each rank.

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
enum { BATCH__RESULT_WORDS = 6, BATCH__HELLO_WORDS = 10 };
#define BATCH__UNRUN 0xffu
/* A loop with nothing to do naps, 50 us at first, twice as long each time nothing happened, up
   to 1 ms, then looks again. It does not ask to be woken per finished batch: a wake-up costs
   ~20 us of a core on a VM, on the core a worker needs. A rank asks for work before it runs out
   (its room is max_in_flight batches) and adaptive batches aim at 1 ms here (target_batch_ns
   0), so the latency of a message hides behind the batches queued. */
#define BATCH__MPI_NAP_MIN_NS 50000u
#define BATCH__MPI_NAP_MAX_NS 1000000u

typedef struct batch__mpi {
    MPI_Comm comm;
    int rank, size;
    batch_result err;             /* BATCH_ERR_MPI after the first failed call */
    size_t acc_size;
    unsigned char* buf;           /* one RESULT message */
    batch__mjob* exec;            /* this rank's executor */
    batch__map_ext exec_ext;
    batch__range* dropped;        /* ranges an executor took back (K of them at most) */
    int k;                        /* this rank's room: executor slots */
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

/* Sends one finished (or, status BATCH__UNRUN, never run) batch to rank 0; on rank 0 the
   coordinator takes it directly. */
BATCH__PRIVATE void batch__mpi_send_result(batch__mpi* c, batch__mjob* coord, uint64_t index, unsigned status, uint64_t succeeded,
                                           uint64_t failed, uint64_t retries, uint64_t exec_ns, const void* acc) {
    if (c->rank == 0) {
        batch__mslot* sl = batch__map_find_running(coord, (size_t)index);
        if (!sl) { c->err = BATCH_ERR_MPI; return; }   /* cannot happen: a protocol error */
        if (status == BATCH__UNRUN) batch__map_unrun(coord, sl);
        else batch__map_complete(coord, sl, (batch_batch_status)status, (size_t)succeeded, (size_t)failed, (int)retries, exec_ns, acc);
        return;
    }
    uint64_t w[BATCH__RESULT_WORDS] = { index, status, succeeded, failed, retries, exec_ns };
    memcpy(c->buf, w, sizeof w);
    if (c->acc_size) {
        if (acc) memcpy(c->buf + sizeof w, acc, c->acc_size);
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
BATCH__PRIVATE bool batch__mpi_drain(batch__mpi* c, batch__mjob* coord) {
    bool any = false;
    const batch_batch* b;
    while (c->err == BATCH_OK && (b = batch__map_take(c->exec)) != NULL) {
        batch__mpi_send_result(c, coord, b->batch_index, (unsigned)b->status, b->succeeded, b->failed,
                               (uint64_t)b->retries_used, b->exec_ns, b->acc);
        any = true;
    }
    return any;
}

/* No more ranges for this rank's executor. At the end of the input the ranges it has queued
   still run; on a cancel they go back as not run and running items see the stop. */
BATCH__PRIVATE void batch__mpi_stop_exec(batch__mpi* c, batch__mjob* coord, bool cancel) {
    if (!cancel) { batch__map_close_input(c->exec); return; }
    size_t n = batch__map_drop_ranges(c->exec, c->dropped, (size_t)c->k, true);
    for (size_t i = 0; i < n; i++) batch__mpi_send_result(c, coord, c->dropped[i].index, BATCH__UNRUN, 0, 0, 0, 0, NULL);
}

/* ---- rank 0 --------------------------------------------------------------------------------- */
BATCH__PRIVATE void batch__mpi_coordinate(batch__mpi* c, batch__mjob* coord) {
    int* want = (int*)BATCH_MALLOC((size_t)c->size * 2 * sizeof(int), coord->alloc_ctx);
    if (!want) { c->err = BATCH_ERR_NOMEM; return; }
    int* state = want + c->size;   /* 0 working, 1 sent STOP, 2 DONE received */
    for (int r = 0; r < c->size; r++) { want[r] = 0; state[r] = r == 0 ? 2 : 0; }
    batch__mslot* queue = NULL;    /* dispatched, not handed out yet (batch order) */
    batch__mslot** qtail = &queue;
    int next_rank = 1;
    long nap = BATCH__MPI_NAP_MIN_NS;
    bool exec_stopped = false;
    unsigned char* msg = c->buf;
    while (c->err == BATCH_OK) {
        bool any = false;
        /* messages from the other ranks */
        for (;;) {
            int flag = 0;
            MPI_Status st;
            if (!batch__mpi_ok(c, MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c->comm, &flag, &st)) || !flag) break;
            any = true;
            int src = st.MPI_SOURCE;
            if (st.MPI_TAG == BATCH__TAG_REQ) {
                int k = 0;
                if (!batch__mpi_ok(c, MPI_Recv(&k, 1, MPI_INT, src, BATCH__TAG_REQ, c->comm, MPI_STATUS_IGNORE))) break;
                if (k < 0) state[src] = 2;
                else if (state[src] == 0) want[src] += k;
            } else if (st.MPI_TAG == BATCH__TAG_RESULT) {
                int bytes = 0;
                MPI_Get_count(&st, MPI_BYTE, &bytes);
                if (bytes != (int)(BATCH__RESULT_WORDS * sizeof(uint64_t) + c->acc_size)) { c->err = BATCH_ERR_MPI; break; }
                if (!batch__mpi_ok(c, MPI_Recv(msg, bytes, MPI_BYTE, src, BATCH__TAG_RESULT, c->comm, MPI_STATUS_IGNORE))) break;
                uint64_t w[BATCH__RESULT_WORDS];
                memcpy(w, msg, sizeof w);
                batch__mslot* sl = batch__map_find_running(coord, (size_t)w[0]);
                if (!sl) { c->err = BATCH_ERR_MPI; break; }
                if (w[1] == BATCH__UNRUN) batch__map_unrun(coord, sl);
                else batch__map_complete(coord, sl, (batch_batch_status)w[1], (size_t)w[2], (size_t)w[3], (int)w[4], w[5],
                                         c->acc_size ? msg + sizeof w : NULL);
            } else {
                c->err = BATCH_ERR_MPI;   /* nobody sends anything else on this communicator */
            }
        }
        /* rank 0's own batches */
        if (batch__mpi_drain(c, coord)) any = true;
        /* hand out what the coordinator dispatched: to rank 0's executor while it has room,
           else to the ranks that asked, in turn */
        batch__mslot* fresh = batch__map_take_dispatched(coord);
        if (fresh) {
            *qtail = fresh;
            while (*qtail) qtail = &(*qtail)->next;
            any = true;
        }
        while (queue && c->err == BATCH_OK) {
            batch__mslot* sl = queue;
            int to = -1;   /* the ranks that asked first (their turn costs a message), in turn; then rank 0 */
            for (int k = 0; to < 0 && k < c->size - 1; k++) {
                int r = 1 + (next_rank - 1 + k) % (c->size - 1);
                if (want[r] > 0 && state[r] == 0) { to = r; next_rank = r + 1 > c->size - 1 ? 1 : r + 1; }
            }
            if (to < 0 && !exec_stopped && batch__map_room(c->exec) > 0) to = 0;
            if (to < 0) break;
            queue = sl->next;
            if (!queue) qtail = &queue;
            sl->next = NULL;
            if (to == 0) {
                if (!batch__map_push_range(c->exec, sl->batch_index, sl->first, sl->count)) { c->err = BATCH_ERR_MPI; break; }
            } else {
                uint64_t w[3] = { sl->batch_index, sl->first, sl->count };
                if (!batch__mpi_ok(c, MPI_Send(w, 3, MPI_UINT64_T, to, BATCH__TAG_WORK, c->comm))) break;
                want[to]--;
            }
            any = true;
        }
        /* the end of the input (or a stop): once what was cut is handed out, every rank gets
           one STOP. A cancel also takes back what was never handed out (not run). */
        if (batch__map_dispatch_over(coord)) {
            int stop = atomic_load(&coord->stop);
            bool cancel = stop == BATCH__STOP_CANCEL || stop == BATCH__STOP_DEADLINE || stop == BATCH__STOP_IO ||
                          stop == BATCH__STOP_NOMEM;
            while (cancel && queue) {
                batch__mslot* sl = queue;
                queue = sl->next;
                sl->next = NULL;
                batch__map_unrun(coord, sl);
            }
            if (!queue) qtail = &queue;
            for (int r = 1; r < c->size && c->err == BATCH_OK && !queue; r++) {
                if (state[r] != 0) continue;
                uint64_t w[3] = { cancel ? 1u : 0u, 0, 0 };
                if (batch__mpi_ok(c, MPI_Send(w, 3, MPI_UINT64_T, r, BATCH__TAG_WORK, c->comm))) state[r] = 1;
            }
            if (!exec_stopped && !queue) {
                batch__mpi_stop_exec(c, coord, cancel);
                exec_stopped = true;
            }
            bool all_done = !queue;
            for (int r = 1; r < c->size; r++) all_done = all_done && state[r] == 2;
            if (all_done && batch__map_idle(c->exec) && batch__map_idle(coord)) {
                batch__mpi_drain(c, coord);
                break;
            }
        } else if (exec_stopped) {
            c->err = BATCH_ERR_MPI;   /* cannot happen: the executor stops only at the end */
        }
        batch__mpi_nap(any, &nap);
    }
    BATCH_FREE(want, coord->alloc_ctx);
}

/* ---- every other rank ------------------------------------------------------------------------ */
BATCH__PRIVATE void batch__mpi_work(batch__mpi* c) {
    int asked = 0;
    long nap = BATCH__MPI_NAP_MIN_NS;
    bool stopped = false;
    while (c->err == BATCH_OK) {
        bool any = batch__mpi_drain(c, NULL);
        if (!stopped) {
            int room = batch__map_room(c->exec) - asked;
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
                batch__mpi_stop_exec(c, NULL, w[0] != 0);
            } else {
                asked--;
                if (!batch__map_push_range(c->exec, (size_t)w[0], (size_t)w[1], (size_t)w[2])) c->err = BATCH_ERR_MPI;
            }
        }
        if (stopped && batch__map_idle(c->exec)) {
            batch__mpi_drain(c, NULL);
            int done = -1;
            batch__mpi_ok(c, MPI_Send(&done, 1, MPI_INT, 0, BATCH__TAG_REQ, c->comm));
            break;
        }
        batch__mpi_nap(any, &nap);
    }
}

/* ---- the call -------------------------------------------------------------------------------- */
BATCH_API batch_result batch_mpi_map(MPI_Comm comm, batch_pool* pool, const batch_map_desc* desc,
                                     batch_map_summary* summary, void* acc_out, batch_mpi_rank_stats* per_rank) {
    if (comm == MPI_COMM_NULL) return BATCH_ERR_INVALID;
    batch__mpi c;
    memset(&c, 0, sizeof c);
    bool filled = false;
    if (MPI_Comm_dup(comm, &c.comm) != MPI_SUCCESS) return BATCH_ERR_MPI;
    MPI_Comm_set_errhandler(c.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c.comm, &c.rank);
    MPI_Comm_size(c.comm, &c.size);
    /* every rank checks its own desc, then all agree (or all refuse) */
    batch_result r = (!pool || !desc) ? BATCH_ERR_INVALID : batch__map_check(desc);
    if (r == BATCH_OK && (desc->pull_fn || desc->on_batch || desc->iterate)) r = BATCH_ERR_INVALID;
    int threads = pool ? (batch_pool_workers(pool) ? batch_pool_workers(pool) : 1) : 1;
    c.k = (r == BATCH_OK && desc->max_in_flight) ? desc->max_in_flight : 4 * threads;
    uint64_t hello[BATCH__HELLO_WORDS] = { (uint64_t)(r == BATCH_OK) };
    if (r == BATCH_OK) {
        uint64_t h[BATCH__HELLO_WORDS] = { 1, desc->count, desc->result_size, desc->acc_size, (uint64_t)(desc->ordered != 0),
                                           desc->batch_size, (uint64_t)desc->complexity, (uint64_t)desc->max_retries,
                                           (uint64_t)c.k, (uint64_t)threads };
        memcpy(hello, h, sizeof h);
    }
    uint64_t* all = (uint64_t*)BATCH_MALLOC((size_t)c.size * (BATCH__HELLO_WORDS + 7) * sizeof(uint64_t), pool ? pool->alloc_ctx : NULL);
    int agree = all != NULL;   /* out of memory anywhere: everybody stops */
    int agreed = 0;
    if (batch__mpi_allreduce_int(&agree, &agreed, MPI_LAND, c.comm) != MPI_SUCCESS) { r = BATCH_ERR_MPI; goto out_comm; }
    if (!agreed) { r = BATCH_ERR_NOMEM; goto out_comm; }
    if (batch__mpi_allgather(hello, all, BATCH__HELLO_WORDS, c.comm) != MPI_SUCCESS) {
        r = BATCH_ERR_MPI;
        goto out_comm;
    }
    int total_k = 0, total_threads = 0;
    for (int i = 0; i < c.size; i++) {
        const uint64_t* x = all + (size_t)i * BATCH__HELLO_WORDS;
        if (!x[0]) { r = r == BATCH_OK ? BATCH_ERR_INVALID : r; continue; }
        for (int f = 1; f <= 7; f++) if (x[f] != all[f] && all[0]) r = r == BATCH_OK ? BATCH_ERR_INVALID : r;
        total_k += (int)x[8];
        total_threads += (int)x[9];
    }
    if (r != BATCH_OK) goto out_comm;
    void* ctx = pool->alloc_ctx;
    c.acc_size = desc->acc_size;
    c.buf = (unsigned char*)BATCH_MALLOC(BATCH__RESULT_WORDS * sizeof(uint64_t) + 2 * c.acc_size, ctx);
    unsigned char* acc = c.buf ? c.buf + BATCH__RESULT_WORDS * sizeof(uint64_t) + c.acc_size : NULL;   /* the final one */
    c.dropped = (batch__range*)BATCH_MALLOC((size_t)c.k * sizeof(batch__range), ctx);
    c.exec_ext.ranges = (batch__range*)BATCH_MALLOC((size_t)c.k * sizeof(batch__range), ctx);
    c.exec_ext.mode = BATCH__EXT_EXECUTOR;
    /* the executor: this rank's pool, the batch rules, none of the job-wide parts */
    batch_map_desc ed = *desc;
    ed.iterate = 1;
    ed.ordered = 0;
    ed.keep_batches = 0;
    ed.halt_error_ratio = 0;
    ed.timeout_ns = 0;
    ed.max_concurrent_batches = 0;
    ed.max_in_flight = c.k;
    ed.sizing = NULL;
    ed.key = NULL;
    memset(&ed.progress, 0, sizeof ed.progress);
    memset(&ed.journal, 0, sizeof ed.journal);
    batch_job* exec = NULL;
    batch_job* coord = NULL;
    batch__map_ext coord_ext;
    memset(&coord_ext, 0, sizeof coord_ext);
    coord_ext.mode = BATCH__EXT_COORDINATOR;
    coord_ext.threads = total_threads;
    coord_ext.dtail = &coord_ext.dhead;
    int ok = c.buf && c.dropped && c.exec_ext.ranges;
    if (ok) ok = batch__map_launch_ext(pool, &ed, &c.exec_ext, &exec) == BATCH_OK;
    if (ok && c.rank == 0) {
        batch_map_desc cd = *desc;
        cd.max_in_flight = total_k;
        if (!cd.target_batch_ns) cd.target_batch_ns = 1000000u;   /* see BATCH__MPI_NAP_MIN_NS */
        r = batch__map_launch_ext(pool, &cd, &coord_ext, &coord);   /* the journal may refuse */
        ok = r == BATCH_OK;
    }
    /* everybody starts, or nobody: the first failure's code travels from rank 0 when it is the
       coordinator's (a journal that does not fit), else it is NOMEM */
    int code = ok ? 0 : (c.rank == 0 && r != BATCH_OK ? (int)r : (int)BATCH_ERR_NOMEM), worst = 0;
    if (batch__mpi_allreduce_int(&code, &worst, MPI_MIN, c.comm) != MPI_SUCCESS) worst = BATCH_ERR_MPI;
    if (worst != 0) {
        if (exec) { batch__map_close_input((batch__mjob*)exec); batch_job_destroy(exec); }
        if (coord) { batch_job_cancel(coord); batch_job_destroy(coord); }
        r = (batch_result)worst;
        goto out_bufs;
    }
    c.exec = (batch__mjob*)exec;
    if (c.rank == 0) batch__mpi_coordinate(&c, (batch__mjob*)coord);
    else batch__mpi_work(&c);
    if (c.err != BATCH_OK) {   /* stop what runs here, then leave: MPI may not be usable */
        batch__map_drop_ranges(c.exec, c.dropped, (size_t)c.k, true);
        if (coord) batch_job_cancel(coord);
    }
    /* this rank's share, then everybody's */
    batch_map_summary es, cs;
    memset(&es, 0, sizeof es);
    memset(&cs, 0, sizeof cs);
    batch_result er = batch_map_wait(exec, &es, NULL);
    uint64_t mine[7] = { es.batches, es.items, es.succeeded, es.failed, es.retries, es.busy_ns,
                         (uint64_t)(er == BATCH_ERR_NOMEM) };
    if (coord) {
        if (c.err != BATCH_OK) {   /* the dispatched batches will not come back: free their slots */
            batch__mjob* m = (batch__mjob*)coord;
            for (batch__mslot* sl = batch__map_take_dispatched(m); sl;) { batch__mslot* nx = sl->next; sl->next = NULL; batch__map_unrun(m, sl); sl = nx; }
            for (int i = 0; i < m->nslots; i++) if (m->slots[i].state == BATCH__SLOT_RUNNING) batch__map_unrun(m, &m->slots[i]);
        }
        r = batch_map_wait(coord, &cs, acc);
    }
    if (c.err != BATCH_OK) {
        r = c.err;
    } else {
        uint64_t* rows = all;   /* reused: size x 7 words */
        if (batch__mpi_allgather(mine, rows, 7, c.comm) != MPI_SUCCESS ||
            batch__mpi_bcast(&cs, (int)sizeof cs, c.comm) != MPI_SUCCESS ||
            (c.acc_size && batch__mpi_bcast(acc, (int)c.acc_size, c.comm) != MPI_SUCCESS)) {
            r = BATCH_ERR_MPI;
        } else {
            uint64_t busy = 0, retries = 0;
            bool nomem = false;
            for (int i = 0; i < c.size; i++) {
                const uint64_t* x = rows + (size_t)i * 7;
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
            cs.parallel_efficiency = cs.wall_ns ? (double)busy / ((double)cs.wall_ns * total_threads) : 0.0;
            r = nomem && cs.result != BATCH_ERR_IO ? BATCH_ERR_NOMEM : cs.result;
            cs.result = r;
            if (summary) { *summary = cs; filled = true; }
            if (acc_out && c.acc_size) memcpy(acc_out, acc, c.acc_size);
        }
    }
    batch_job_destroy(exec);
    if (coord) batch_job_destroy(coord);
out_bufs:
    if (c.buf) BATCH_FREE(c.buf, ctx);
    if (c.dropped) BATCH_FREE(c.dropped, ctx);
    if (c.exec_ext.ranges) BATCH_FREE(c.exec_ext.ranges, ctx);
out_comm:
    if (all) BATCH_FREE(all, pool ? pool->alloc_ctx : NULL);
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
