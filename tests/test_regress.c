/* test_regress.c - regressions for bugs a review found: each test hung, crashed or gave the
   wrong result before its fix. */

/* a progress callback that asks for a snapshot of its own job */
static void snap_in_cb(batch_event ev, const batch_progress* p, const batch_event_info* info, void* u) {
    (void)ev; (void)p; (void)info;
    batch_job* job = *(batch_job* _Atomic*)u;
    batch_progress q;
    if (job) CHECK_OK(batch_job_progress(job, &q));
}
static int fail_once_task(batch_ctx* ctx, void* u) { (void)u; return batch_ctx_attempt(ctx) == 0 ? 3 : 0; }

static void test_regress_progress_reentry(void) {
    batch_pool* p = make_pool(2);
    batch_graph* g = make_graph();
    for (int i = 0; i < 20; i++) CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = i % 5 ? task_ok : fail_quote, .max_retries = 0 }, &(batch_task){0}));
    batch_job* _Atomic holder = NULL;
    batch_job* job;
    CHECK_OK(batch_graph_launch(p, g, &(batch_run_desc){ .progress = { .fn = snap_in_cb, .user_data = &holder, .interval_ms = 1 } }, &job));
    atomic_store(&holder, job);
    CHECK_EQ(batch_job_wait(job, NULL), BATCH_PARTIAL);   /* JOB_COMPLETED calls back on this thread */
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

/* on_batch and pull_fn run under the map's lock: cancel and progress from them must not deadlock */
typedef struct cb_reentry { batch_job* _Atomic job; _Atomic int batches; } cb_reentry;
static void reentry_on_batch(const batch_batch* b, void* u) {
    (void)b;
    cb_reentry* r = (cb_reentry*)u;
    batch_job* job = atomic_load(&r->job);
    if (!job) return;
    batch_progress q;
    CHECK_OK(batch_job_progress(job, &q));
    if (atomic_fetch_add(&r->batches, 1) == 5) CHECK_OK(batch_job_cancel(job));
}
static void test_regress_on_batch_reentry(void) {
    batch_pool* p = make_pool(2);
    cb_reentry r;
    atomic_init(&r.job, NULL);
    atomic_init(&r.batches, 0);
    batch_job* job;
    /* progress callbacks run too, so the progress lock and the map lock are both in play */
    CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 200000, .item_fn = slowish, .user_data = &r, .batch_size = 10,
                                                    .on_batch = reentry_on_batch,
                                                    .progress = { .fn = snap_in_cb, .user_data = &r.job, .interval_ms = 1 } }, &job));
    atomic_store(&r.job, job);
    batch_map_summary s;
    CHECK_EQ(batch_map_wait(job, &s, NULL), BATCH_ERR_CANCELLED);
    CHECK(s.unprocessed > 0);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_pool_destroy(p));
}

/* map retries honour the deadline (and the job ends TIMEOUT, soon) */
static int always_fail(batch_ctx* ctx, const batch_item* it, void* res, void* u) { (void)ctx; (void)it; (void)res; (void)u; return 1; }
static void test_regress_map_retry_deadline(void) {
    batch_pool* p = make_pool(2);
    batch_map_summary s;
    uint64_t t0 = batch_now_ns();
    CHECK_EQ(batch_map_run(p, &(batch_map_desc){ .count = 10, .item_fn = always_fail, .batch_size = 10, .max_retries = 3,
                                                  .retry_base_ns = 200000000u, .timeout_ns = 100000000u }, &s, NULL), BATCH_ERR_TIMEOUT);
    CHECK(batch_now_ns() - t0 < 1000000000u);
    CHECK(s.retries <= 1);
    CHECK_OK(batch_pool_destroy(p));
}

/* a cancel does not wait for a graph task's long retry backoff; the task stays FAILED */
static void test_regress_cancel_during_backoff(void) {
    batch_pool* p = make_pool(2);
    batch_graph* g = make_graph();
    batch_task a;
    CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = fail_once_task, .max_retries = 3, .retry_base_ns = 2000000000u }, &a));
    batch_task b = add_task(g, task_ok, NULL, NULL);
    CHECK_OK(batch_task_precede(g, a, b));
    batch_job* job;
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    test_sleep_ns(20000000);
    uint64_t t0 = batch_now_ns();
    CHECK_OK(batch_job_cancel(job));
    batch_job_summary s;
    CHECK_EQ(batch_job_wait(job, &s), BATCH_ERR_CANCELLED);
    CHECK(batch_now_ns() - t0 < 1000000000u);
    batch_task_info info;
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_task_info(g, a, &info));
    if (batch_pool_workers(p) > 0) {   /* an inline pool ran nothing before the cancel */
        CHECK_EQ(info.status, BATCH_TASK_FAILED);
        CHECK_EQ(info.attempts, 1);
    }
    CHECK_OK(batch_graph_task_info(g, b, &info));
    CHECK_EQ(info.status, BATCH_TASK_CANCELLED);
    CHECK_EQ(s.failed + s.cancelled + s.completed + s.skipped, 2);
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

#if !defined(BATCH_NO_THREADS)
/* inline pool: a second thread waiting for idleness, or for a task another thread's task
   submits, is woken */
typedef struct inline_race { batch_pool* p; batch_counter* c; _Atomic int done; } inline_race;
static int idle_waiter_main(void* u) {
    inline_race* r = (inline_race*)u;
    CHECK_OK(batch_pool_wait_idle(r->p));
    atomic_store(&r->done, 1);
    return 0;
}
static void slow_inline(batch_pool* p, void* u) { (void)p; (void)u; test_sleep_ns(20000000); }
static void submit_for_other(batch_pool* p, void* u) {
    inline_race* r = (inline_race*)u;
    CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = slow_inline, .counter = r->c }));
}
static int counter_waiter_main(void* u) {
    inline_race* r = (inline_race*)u;
    CHECK_OK(batch_counter_wait(r->c));
    atomic_store(&r->done, 1);
    return 0;
}
static void test_regress_inline_waiters(void) {
    batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
    inline_race r = { p, NULL, 0 };
    batch_counter c;
    batch_counter_init(&c, p);
    CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = slow_inline, .counter = &c }));
    batch__thread th;
    CHECK(batch__thread_create(&th, idle_waiter_main, &r));
    test_sleep_ns(5000000);
    CHECK_OK(batch_counter_wait(&c));        /* this thread runs the task; the other waits for idle */
    batch__thread_join(th);
    CHECK(atomic_load(&r.done));
    /* a task run here submits a task counted by a counter another thread waits on */
    batch_counter other, mine;
    batch_counter_init(&other, p);
    batch_counter_init(&mine, p);
    r.c = &other;
    atomic_store(&r.done, 0);
    batch_counter_add(&other, 1);            /* held until the task below has submitted */
    CHECK(batch__thread_create(&th, counter_waiter_main, &r));
    CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = submit_for_other, .user_data = &r, .counter = &mine }));
    CHECK_OK(batch_counter_wait(&mine));
    CHECK_OK(batch_counter_done(&other));
    batch__thread_join(th);                  /* the waiter ran (or saw) the submitted task */
    CHECK(atomic_load(&r.done));
    CHECK_OK(batch_pool_destroy(p));
}

/* a thread that is not a worker takes a counter to zero while the waiter destroys the pool */
typedef struct doner { batch_counter* c; } doner;
static int doner_main(void* u) { CHECK_OK(batch_counter_done(((doner*)u)->c)); return 0; }
static void test_regress_done_then_destroy(void) {
    for (int i = 0; i < scaled(300); i++) {
        batch_pool* p = make_pool(1);
        batch_counter c;
        batch_counter_init(&c, p);
        batch_counter_add(&c, 1);
        doner d = { &c };
        batch__thread th;
        CHECK(batch__thread_create(&th, doner_main, &d));
        CHECK_OK(batch_counter_wait(&c));
        CHECK_OK(batch_pool_destroy(p));     /* must not free the pool under the doner's wake-up */
        batch__thread_join(th);
    }
}
#define REGRESS_THREAD_TESTS \
    { "regress_inline_waiters", test_regress_inline_waiters }, \
    { "regress_done_then_destroy", test_regress_done_then_destroy },
#else
#define REGRESS_THREAD_TESTS
#endif

#define REGRESS_TESTS \
    { "regress_progress_reentry", test_regress_progress_reentry }, \
    { "regress_on_batch_reentry", test_regress_on_batch_reentry }, \
    { "regress_map_retry_deadline", test_regress_map_retry_deadline }, \
    { "regress_cancel_during_backoff", test_regress_cancel_during_backoff }, \
    REGRESS_THREAD_TESTS
