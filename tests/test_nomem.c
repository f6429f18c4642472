/* test_nomem.c - allocation-failure branches that the per-area alloc tests do not reach (found
   with make coverage): the delayed queue's heap growth, naming a cycle, a launch that runs out
   of task memory half-way through its roots, a task's failure message, reading reports back.
   Each loop fails allocation N once, N = 1, 2, ... past the last allocation of the call; every
   branch is checked to have been taken, and nothing may leak. Inline pools: the allocation order
   is fixed. */

static void delayed_noop(batch_pool* p, void* u) { (void)p; atomic_fetch_add((_Atomic int*)u, 1); }

/* batch_pool_submit with a delay: the heap of delayed tasks grows (64, 128, ...); when that
   fails the submit returns NOMEM, queues nothing and leaves the counter as it was. */
static void test_nomem_delayed_heap(void) {
    long long live0 = atomic_load(&test_live_bytes);
    int nomem_seen = 0;
    long total = 1;
    for (long n = 0; n <= total; n++) {   /* n = 0: a dry run that counts the allocations */
        batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
        batch_counter c;
        CHECK_OK(batch_counter_init(&c, p));
        _Atomic int ran = 0;
        int accepted = 0;
        test_alloc_reset(n ? TEST_FAIL_ONCE : TEST_FAIL_NEVER, n);
        for (int i = 0; i < 150; i++) {
            batch_result r = batch_pool_submit(p, &(batch_work){ .fn = delayed_noop, .user_data = &ran, .counter = &c,
                                                                 .delay_ns = 1000 + (uint64_t)i });
            CHECK(r == BATCH_OK || r == BATCH_ERR_NOMEM);
            if (r == BATCH_OK) accepted++;
            else { nomem_seen++; CHECK_EQ(batch_counter_value(&c), (uint64_t)accepted); }
        }
        if (!n) total = atomic_load(&test_alloc_count);
        test_alloc_reset(TEST_FAIL_NEVER, -1);
        CHECK_OK(batch_counter_wait(&c));
        CHECK_EQ(atomic_load(&ran), accepted);
        CHECK_OK(batch_pool_destroy(p));
        CHECK_EQ(atomic_load(&test_live_bytes), live0);
    }
    CHECK(nomem_seen > 0);
}

/* A cycle is named with a scratch array; out of memory the message says so (or the graph
   build itself reports NOMEM). */
static batch_graph* cyclic_graph(void) {
    batch_graph* g = make_graph();
    batch_task t[6];
    char name[16];
    for (int i = 0; i < 6; i++) { snprintf(name, sizeof name, "c%d", i); t[i] = add_task(g, task_ok, NULL, name); }
    for (int i = 0; i + 1 < 6; i++) CHECK_OK(batch_task_precede(g, t[i], t[i + 1]));
    CHECK_OK(batch_task_precede(g, t[5], t[2]));
    return g;
}
static void test_nomem_cycle_message(void) {
    long long live0 = atomic_load(&test_live_bytes);
    batch_graph* g = cyclic_graph();
    char msg[256];
    test_alloc_reset(TEST_FAIL_NEVER, -1);
    CHECK_EQ(batch_graph_validate(g, msg, sizeof msg), BATCH_ERR_CYCLE);
    long total = atomic_load(&test_alloc_count);
    CHECK_OK(batch_graph_destroy(g));
    CHECK(total > 0);
    int unnamed = 0;
    for (long n = 1; n <= total; n++) {
        g = cyclic_graph();
        test_alloc_reset(TEST_FAIL_ONCE, n);
        batch_result r = batch_graph_validate(g, msg, sizeof msg);
        test_alloc_reset(TEST_FAIL_NEVER, -1);
        CHECK(r == BATCH_ERR_CYCLE || r == BATCH_ERR_NOMEM);
        if (r == BATCH_ERR_CYCLE) {
            CHECK(strncmp(msg, "cycle", 5) == 0);
            if (strstr(msg, "no memory")) unnamed++;
            else CHECK(strstr(msg, "c2") && strstr(msg, "c5"));
        }
        /* and again with memory: the cycle is named */
        CHECK_EQ(batch_graph_validate(g, msg, sizeof msg), BATCH_ERR_CYCLE);
        CHECK_OK(batch_graph_destroy(g));
        CHECK_EQ(atomic_load(&test_live_bytes), live0);
    }
    CHECK(unnamed > 0);
}

/* A launch queues its roots as pool tasks; when task memory runs out half-way the job is
   stopped: the roots not queued are CANCELLED, and so are the queued ones that had not started
   yet (on an inline pool: all of them), the job reports NOMEM and the counts add up. */
static void test_nomem_launch_half_way(void) {
    long long live0 = atomic_load(&test_live_bytes);
    enum { ROOTS = 300 };   /* several slabs of pool tasks */
    int half_way = 0;
    long total = 1;
    for (long n = 0; n <= total; n++) {   /* n = 0: a dry run that counts the allocations */
        batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
        batch_graph* g = make_graph();
        _Atomic long count = 0;
        for (int i = 0; i < ROOTS; i++) add_task(g, count_task, &count, NULL);
        CHECK_OK(batch_graph_validate(g, NULL, 0));
        test_alloc_reset(n ? TEST_FAIL_ONCE : TEST_FAIL_NEVER, n);
        batch_job* job = NULL;
        batch_result r = batch_graph_launch(p, g, NULL, &job);
        CHECK(r == BATCH_OK || r == BATCH_ERR_NOMEM);
        if (r == BATCH_OK) {
            batch_job_summary s;
            batch_result w = batch_job_wait(job, &s);
            if (!n) total = atomic_load(&test_alloc_count);
            test_alloc_reset(TEST_FAIL_NEVER, -1);
            CHECK_EQ(s.completed + s.cancelled, (uint64_t)ROOTS);
            CHECK_EQ(atomic_load(&count), (long)s.completed);
            if (s.cancelled) {
                half_way++;
                CHECK_EQ(w, BATCH_ERR_NOMEM);
                CHECK_EQ(s.status, BATCH_JOB_FAILED);
            } else {
                CHECK_OK(w);
            }
            CHECK_OK(batch_job_destroy(job));
        } else {
            test_alloc_reset(TEST_FAIL_NEVER, -1);
            CHECK(job == NULL);
            CHECK_EQ(atomic_load(&count), 0);
        }
        /* the graph runs again, whole */
        atomic_store(&count, 0);
        batch_job_summary s2;
        CHECK_OK(batch_graph_run(p, g, NULL, &s2));
        CHECK_EQ(s2.completed, (uint64_t)ROOTS);
        CHECK_EQ(atomic_load(&count), ROOTS);
        CHECK_OK(batch_graph_destroy(g));
        CHECK_OK(batch_pool_destroy(p));
        CHECK_EQ(atomic_load(&test_live_bytes), live0);
    }
    CHECK(half_way > 0);
}

/* batch_ctx_fail copies its message into memory of the task; out of memory the code is kept and
   the message is lost. */
static int fail_with_message(batch_ctx* ctx, void* u) { (void)u; return batch_ctx_fail(ctx, 5, "message %d", 42); }
/* Builds the graph with all the memory it wants, then runs it failing allocation n (0: none);
   *count receives the allocations of the run. */
static batch_result fail_message_run(batch_pool* p, long n, long* count, int* lost, int* kept) {
    batch_graph* g = make_graph();
    batch_task t = add_task(g, fail_with_message, NULL, "f");
    batch_task after = add_task(g, task_ok, NULL, "after");
    CHECK_OK(batch_task_precede(g, t, after));
    CHECK_OK(batch_graph_validate(g, NULL, 0));
    test_alloc_reset(n ? TEST_FAIL_ONCE : TEST_FAIL_NEVER, n);
    batch_job_summary s;
    batch_result r = batch_graph_run(p, g, NULL, &s);
    *count = atomic_load(&test_alloc_count);
    test_alloc_reset(TEST_FAIL_NEVER, -1);
    CHECK(r == BATCH_ERR_FAILED || r == BATCH_ERR_NOMEM);
    if (r == BATCH_ERR_FAILED) {
        batch_task_info info;
        CHECK_OK(batch_graph_task_info(g, t, &info));
        CHECK_EQ(info.status, BATCH_TASK_FAILED);
        CHECK_EQ(info.error, 5);
        if (info.message) { CHECK(strcmp(info.message, "message 42") == 0); ++*kept; }
        else ++*lost;
        CHECK_OK(batch_graph_task_info(g, after, &info));
        CHECK_EQ(info.status, BATCH_TASK_SKIPPED);
    }
    CHECK_OK(batch_graph_destroy(g));
    return r;
}
static void test_nomem_fail_message(void) {
    batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
    int lost = 0, kept = 0;
    long total = 0, count;
    CHECK_EQ(fail_message_run(p, 0, &total, &lost, &kept), BATCH_ERR_FAILED);   /* the pool makes its task slab */
    long long live0 = atomic_load(&test_live_bytes);
    CHECK_EQ(fail_message_run(p, 0, &total, &lost, &kept), BATCH_ERR_FAILED);
    CHECK_EQ(atomic_load(&test_live_bytes), live0);
    for (long n = 1; n <= total; n++) {
        fail_message_run(p, n, &count, &lost, &kept);
        CHECK_EQ(atomic_load(&test_live_bytes), live0);
    }
    CHECK(lost > 0 && kept > 0);
    CHECK_OK(batch_pool_destroy(p));
}

/* Reading reports back: the task array grows (64, 128, ...); out of memory the answer is
   BATCH_ERR_NOMEM (not INVALID: the text is fine) and nothing leaks. */
static void test_nomem_report_compare(void) {
    batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
    batch_graph* g = make_graph();
    for (int i = 0; i < 150; i++) add_task(g, task_ok, NULL, NULL);
    static char json[64 * 1024];
    batch_job* job;
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    CHECK_OK(batch_job_wait(job, NULL));
    FILE* f = test_memfile(json, sizeof json);
    CHECK(f != NULL);
    CHECK_OK(batch_job_report_json(job, f));
    test_memfile_close(f, json, sizeof json);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
    long long live0 = atomic_load(&test_live_bytes);
    FILE* null = fopen(TEST_DEVNULL, "w");
    CHECK(null != NULL);
    test_alloc_reset(TEST_FAIL_NEVER, -1);
    CHECK_OK(batch_report_compare(json, json, null));
    long total = atomic_load(&test_alloc_count);
    CHECK(total >= 4);   /* two reports, 64 then 128 then 256 tasks each */
    int refused = 0;
    for (long n = 1; n <= total; n++) {
        test_alloc_reset(TEST_FAIL_ONCE, n);
        batch_result r = batch_report_compare(json, json, null);
        test_alloc_reset(TEST_FAIL_NEVER, -1);
        CHECK_EQ(r, BATCH_ERR_NOMEM);
        refused++;
        CHECK_EQ(atomic_load(&test_live_bytes), live0);
    }
    CHECK_EQ(refused, total);
    CHECK_OK(batch_report_compare(json, json, null));
    fclose(null);
}

/* Out of task memory while a run releases successors, re-queues a retry or hands a concurrency
   slot on, a graph task runs on the thread that released it (the overflow list): with one failed
   allocation, or every allocation failing from N on, the run still completes every task exactly
   once (or, when the launch itself ran out, reports NOMEM with the counts adding up). */
typedef struct ov_task { _Atomic int runs; int fail_first; _Atomic int* order; int seq; } ov_task;
static int ov_fn(batch_ctx* ctx, void* u) {
    ov_task* t = (ov_task*)u;
    atomic_fetch_add(&t->runs, 1);
    t->seq = atomic_fetch_add(t->order, 1);
    return (t->fail_first && batch_ctx_attempt(ctx) == 0) ? 3 : 0;
}
static void test_nomem_graph_overflow(void) {
    enum { FAN = 300 };
    long long live0 = atomic_load(&test_live_bytes);
    ov_task* tk = (ov_task*)calloc(FAN + 2, sizeof *tk);
    int completed_runs = 0, nomem_runs = 0;
    /* ONCE / FROM x no limit / max_concurrency 2, on an inline pool; then FROM on one worker,
       which releases successors in bulk from its deque, and on two workers sharing one
       concurrency slot, which hand it to parked tasks (the allocation order varies a little
       there: FROM fails them all past N whatever the order) */
    for (int variant = 0; variant < 9; variant++) {
        int mode = variant & 1 || variant >= 4 ? TEST_FAIL_FROM : TEST_FAIL_ONCE;
        int conc = variant >= 5 ? 1 : variant & 2 ? 2 : 0;   /* 5..8: two workers contend for one slot */
        int workers = variant >= 5 ? 2 : variant == 4 ? 1 : BATCH_WORKERS_INLINE;
        long total = 1;
        for (long n = 0; n <= total; n++) {   /* n = 0: a dry run that counts the allocations */
            batch_pool* p = make_pool(workers);
            batch_graph* g = make_graph();
            _Atomic int order = 0;
            batch_task t[FAN + 2];
            for (int i = 0; i < FAN + 2; i++) {
                atomic_store(&tk[i].runs, 0);
                tk[i].fail_first = i > 0 && i <= FAN && i % 7 == 0;
                tk[i].order = &order;
                tk[i].seq = -1;
                CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = ov_fn, .user_data = &tk[i], .max_retries = 1,
                                                                 .retry_base_ns = 1000, .retry_max_ns = 2000 }, &t[i]));
            }
            CHECK_OK(batch_task_precede_n(g, &t[0], 1, t + 1, FAN));
            CHECK_OK(batch_task_precede_n(g, t + 1, FAN, &t[FAN + 1], 1));
            CHECK_OK(batch_graph_validate(g, NULL, 0));
            test_alloc_reset(n ? mode : TEST_FAIL_NEVER, n);
            batch_job_summary s;
            memset(&s, 0, sizeof s);
            batch_result r = batch_graph_run(p, g, &(batch_run_desc){ .max_concurrency = conc }, &s);
            if (!n) total = atomic_load(&test_alloc_count);
            test_alloc_reset(TEST_FAIL_NEVER, -1);
            CHECK_EQ(s.completed + s.failed + s.skipped + s.cancelled, (uint64_t)(r == BATCH_ERR_NOMEM && s.total == 0 ? 0 : FAN + 2));
            if (r == BATCH_OK) {
                completed_runs++;
                CHECK_EQ(s.completed, (uint64_t)FAN + 2);
                for (int i = 0; i < FAN + 2; i++) CHECK_EQ(atomic_load(&tk[i].runs), tk[i].fail_first ? 2 : 1);
                for (int i = 1; i <= FAN; i++) CHECK(tk[0].seq < tk[i].seq && tk[i].seq < tk[FAN + 1].seq);
            } else {
                CHECK_EQ(r, BATCH_ERR_NOMEM);
                nomem_runs++;
                for (int i = 0; i < FAN + 2; i++) CHECK(atomic_load(&tk[i].runs) <= (tk[i].fail_first ? 2 : 1));
            }
            CHECK_OK(batch_graph_destroy(g));
            CHECK_OK(batch_pool_destroy(p));
            CHECK_EQ(atomic_load(&test_live_bytes), live0);
        }
    }
    CHECK(completed_runs > 0 && nomem_runs > 0);
    free(tk);
}

/* Edges added in bulk (precede_n, succeed_n, join) reserve room first: out of memory the graph
   is unchanged (all or nothing) and still runs. */
static void test_nomem_bulk_edges(void) {
    long long live0 = atomic_load(&test_live_bytes);
    batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
    batch_graph* w = make_graph();
    add_task(w, task_ok, NULL, NULL);
    CHECK_OK(batch_graph_run(p, w, NULL, NULL));
    CHECK_OK(batch_graph_destroy(w));
    long long live1 = atomic_load(&test_live_bytes);   /* the pool keeps its task slab */
    int refused = 0;
    for (int op = 0; op < 3; op++) {
        for (long n = 1; n <= 8; n++) {
            batch_graph* g = make_graph();
            batch_task t[80];
            for (int i = 0; i < 80; i++) t[i] = add_task(g, task_ok, NULL, NULL);
            size_t size0 = batch_graph_size(g);
            test_alloc_reset(TEST_FAIL_ONCE, n);
            batch_result r = op == 0 ? batch_task_precede_n(g, &t[0], 1, t + 1, 79)
                           : op == 1 ? batch_task_precede_n(g, t, 79, &t[79], 1)
                           : batch_graph_join(g, t, 40, t + 40, 40, NULL);
            test_alloc_reset(TEST_FAIL_NEVER, -1);
            CHECK(r == BATCH_OK || r == BATCH_ERR_NOMEM);
            if (r == BATCH_ERR_NOMEM) { refused++; CHECK_EQ(batch_graph_size(g), size0); }
            else CHECK_EQ(batch_graph_size(g), size0 + (op == 2));
            batch_job_summary s;
            CHECK_OK(batch_graph_run(p, g, NULL, &s));
            CHECK_EQ(s.completed, batch_graph_size(g));
            CHECK_OK(batch_graph_destroy(g));
            CHECK_EQ(atomic_load(&test_live_bytes), live1);
        }
    }
    CHECK(refused > 0);
    CHECK_OK(batch_pool_destroy(p));
    CHECK_EQ(atomic_load(&test_live_bytes), live0);
}

/* The journal (durable jobs): its buffer, replay bitmap, per-batch records and done ranges. A
   graph run and maps (unordered and ordered with an accumulator, and without) are run fresh and resumed from
   a finished journal, failing allocation N once: each answer is OK or NOMEM, nothing leaks, and
   a run with memory afterwards, on the same journal, gives the whole job's answer. */
static int jn_task(batch_ctx* ctx, void* u) { (void)ctx; atomic_fetch_add((_Atomic int*)u, 1); return 0; }
static int jn_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)ctx; (void)u;
    *(uint64_t*)res = it->index * 7;
    return it->index % 17 == 3;   /* some failures, under the threshold */
}
static void jn_fold(void* acc, const batch_item* it, const void* res, void* u) { (void)it; (void)u; *(uint64_t*)acc += *(const uint64_t*)res; }
/* Runs the job failing allocation n (0: none; the graph is built with all the memory it wants);
   *count receives the run's allocations. */
static batch_result jn_run(batch_pool* p, int kind, const char* path, uint64_t* acc, _Atomic int* ran, long n, long* count) {
    batch_graph* g = NULL;
    batch_result r;
    if (kind == 0) {
        g = make_graph();
        batch_task t[20];
        for (int i = 0; i < 20; i++) {
            CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = jn_task, .user_data = ran }, &t[i]));
            if (i) CHECK_OK(batch_task_precede(g, t[i / 2], t[i]));
        }
    }
    test_alloc_reset(n ? TEST_FAIL_ONCE : TEST_FAIL_NEVER, n);
    if (kind == 0) {
        r = batch_graph_run(p, g, &(batch_run_desc){ .journal = { .path = path } }, NULL);
    } else {
        *acc = 0;
        batch_map_desc d = { .count = 200, .item_fn = jn_item, .result_size = 8, .batch_size = 10, .error_threshold = 0.5,
                             .ordered = kind == 2, .journal = { .path = path } };
        if (kind != 3) { d.acc_size = 8; d.init_fn = sum_init; d.fold_fn = jn_fold; d.combine_fn = sum_combine; }
        r = batch_map_run(p, &d, NULL, kind != 3 ? acc : NULL);
    }
    if (count) *count = atomic_load(&test_alloc_count);
    test_alloc_reset(TEST_FAIL_NEVER, -1);
    if (g) CHECK_OK(batch_graph_destroy(g));
    return r;
}
static void test_nomem_journal(void) {
    char path[MAX_TEST_PATH], name[64];
    snprintf(name, sizeof name, "batch-nomem-%ld.jnl", (long)getpid());
    test_tmp_path(path, sizeof path, name);
    batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
    uint64_t acc, want = 0;
    _Atomic int ran = 0;
    for (uint64_t i = 0; i < 200; i++) if (i % 17 != 3) want += i * 7;
    unlink(path);
    CHECK_OK(jn_run(p, 0, path, &acc, &ran, 0, NULL));   /* the pool makes its task slab */
    unlink(path);
    long long live0 = atomic_load(&test_live_bytes);
    int refused = 0;
    for (int kind = 0; kind < 4; kind++) {   /* graph, unordered map, ordered map, map without fold */
        batch_result full = kind ? BATCH_PARTIAL : BATCH_OK;
        for (int resume = 0; resume < 2; resume++) {
            long total = 1;
            for (long n = 0; n <= total; n++) {   /* n = 0: a dry run that counts the allocations */
                unlink(path);
                if (resume) CHECK_EQ(jn_run(p, kind, path, &acc, &ran, 0, NULL), full);   /* a finished journal */
                long count;
                batch_result r = jn_run(p, kind, path, &acc, &ran, n, &count);
                if (!n) total = count;
                if (r != full && r != BATCH_ERR_NOMEM)
                    fprintf(stderr, "  kind %d resume %d: allocation %ld of %ld failed: %s\n", kind, resume, n, total, batch_result_string(r));
                CHECK(r == full || r == BATCH_ERR_NOMEM);   /* a journal never allocates while the job runs */
                if (r != full) refused++;
                else if (kind == 1 || kind == 2) CHECK_EQ(acc, want);
                CHECK_EQ(atomic_load(&test_live_bytes), live0);
                /* with memory, the same journal: the whole job's answer */
                CHECK_EQ(jn_run(p, kind, path, &acc, &ran, 0, NULL), full);
                if (kind == 1 || kind == 2) CHECK_EQ(acc, want);
                CHECK_EQ(atomic_load(&test_live_bytes), live0);
            }
        }
    }
    unlink(path);
    CHECK(refused > 0);
    CHECK_OK(batch_pool_destroy(p));
}

/* A mutex or condition variable that cannot be made: every call that makes one (pool create,
   graph launch, map launch, a journal) returns BATCH_ERR_NOMEM, frees what it made, and the
   same call then succeeds. */
static void test_nomem_sync_init(void) {
    long long live0 = atomic_load(&test_live_bytes);
    int refused = 0;
    for (int k = 0;; k++) {   /* pool create makes several: fail each in turn */
        atomic_store(&test_sync_inits, 0);
        atomic_store(&test_fail_sync_at, k);
        batch_pool* p = (batch_pool*)1;
        batch_result r = batch_pool_create(&p, &(batch_pool_desc){ .workers = 2 });
        atomic_store(&test_fail_sync_at, -1);
        if (r == BATCH_OK) { CHECK_OK(batch_pool_destroy(p)); break; }
        CHECK_EQ(r, BATCH_ERR_NOMEM);
        CHECK(p == NULL);
        CHECK_EQ(atomic_load(&test_live_bytes), live0);
        refused++;
    }
    CHECK(refused >= 5);
    batch_pool* p = make_pool(2);
    batch_graph* g = make_graph();
    add_task(g, task_ok, NULL, NULL);
    char path[MAX_TEST_PATH], name[64];
    snprintf(name, sizeof name, "batch-sync-%ld.jnl", (long)getpid());
    test_tmp_path(path, sizeof path, name);
    for (int journal = 0; journal < 2; journal++) {
        for (int k = 0; k < 2; k++) {   /* the job's lock, then (with a journal) the journal's */
            unlink(path);
            batch_run_desc rd;
            memset(&rd, 0, sizeof rd);
            if (journal) rd.journal.path = path;
            atomic_store(&test_sync_inits, 0);
            atomic_store(&test_fail_sync_at, k);
            batch_job* job = (batch_job*)1;
            batch_result r = batch_graph_launch(p, g, &rd, &job);
            atomic_store(&test_fail_sync_at, -1);
            if (k == 1 && !journal) { CHECK_OK(r); CHECK_OK(batch_job_destroy(job)); continue; }
            CHECK_EQ(r, BATCH_ERR_NOMEM);
            CHECK(job == NULL);
            CHECK_OK(batch_graph_run(p, g, &rd, NULL));   /* the graph is not left busy */
        }
        for (int k = 0; k < 2; k++) {
            unlink(path);
            batch_map_desc d = { .count = 100, .item_fn = thr_item_any, .result_size = 8, .batch_size = 10, .error_threshold = 0.5 };
            if (journal) d.journal.path = path;
            atomic_store(&test_sync_inits, 0);
            atomic_store(&test_fail_sync_at, k);
            batch_result r = batch_map_run(p, &d, NULL, NULL);
            atomic_store(&test_fail_sync_at, -1);
            if (k == 1 && !journal) { CHECK_EQ(r, BATCH_PARTIAL); continue; }
            CHECK_EQ(r, BATCH_ERR_NOMEM);
            CHECK_EQ(batch_map_run(p, &d, NULL, NULL), BATCH_PARTIAL);
        }
    }
    unlink(path);
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
    CHECK_EQ(atomic_load(&test_live_bytes), live0);
}

/* The trace and HTML reports allocate (the trace's retry-wait lanes, the HTML's bars) before
   they write: out of memory they return NOMEM with nothing written, and nothing leaks. A graph
   with a retried task, a failed one, a skipped one, on an inline pool. */
static void nomem_report_each(batch_job* job, batch_result (*report)(batch_job*, FILE*), const char* file) {
    char path[MAX_TEST_PATH];
    test_tmp_path(path, sizeof path, file);
    test_alloc_reset(TEST_FAIL_NEVER, -1);
    FILE* f = fopen(path, "w+");
    CHECK(f != NULL);
    CHECK_OK(report(job, f));
    long total = atomic_load(&test_alloc_count);
    CHECK(total > 0);   /* the branch below is reached */
    int nomem_seen = 0;
    for (long n = 1; n <= total; n++) {
        long long live = atomic_load(&test_live_bytes);
        rewind(f);
        test_alloc_reset(TEST_FAIL_ONCE, n);
        batch_result r = report(job, f);
        test_alloc_reset(TEST_FAIL_NEVER, -1);
        CHECK(r == BATCH_OK || r == BATCH_ERR_NOMEM);
        if (r == BATCH_ERR_NOMEM) { nomem_seen++; CHECK_EQ(ftell(f), 0L); }
        CHECK_EQ(atomic_load(&test_live_bytes), live);
    }
    CHECK(nomem_seen > 0);
    fclose(f);
    remove(path);
}
static void test_nomem_reports(void) {
    batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
    batch_graph* g = make_graph();
    batch_task flaky, fails;
    CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = trace_flaky, .name = "flaky", .max_retries = 1,
                                                    .retry_base_ns = 100000 }, &flaky));
    CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = trace_fails, .name = "fails" }, &fails));
    CHECK_OK(batch_task_precede(g, fails, add_task(g, task_ok, NULL, "skipped")));
    for (int i = 0; i < 5; i++) add_task(g, task_ok, NULL, NULL);
    batch_job* job;
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    CHECK_EQ(batch_job_wait(job, NULL), BATCH_PARTIAL);
    nomem_report_each(job, batch_job_report_trace, "batch-nomem-trace.json");
    nomem_report_each(job, batch_job_report_html, "batch-nomem-report.html");
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

#define NOMEM_TESTS \
    { "nomem_reports", test_nomem_reports }, \
    { "nomem_sync_init", test_nomem_sync_init }, \
    { "nomem_delayed_heap", test_nomem_delayed_heap }, \
    { "nomem_cycle_message", test_nomem_cycle_message }, \
    { "nomem_launch_half_way", test_nomem_launch_half_way }, \
    { "nomem_fail_message", test_nomem_fail_message }, \
    { "nomem_report_compare", test_nomem_report_compare }, \
    { "nomem_graph_overflow", test_nomem_graph_overflow }, \
    { "nomem_bulk_edges", test_nomem_bulk_edges }, \
    { "nomem_journal", test_nomem_journal },
