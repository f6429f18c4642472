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

/* ---- a job's own code waits for it (issue 15): BATCH_ERR_BUSY at once, not a hang ---------- */
typedef struct self_wait {
    batch_job* _Atomic job;   /* the map's job, for callbacks that are not given it */
    _Atomic int calls, wrong; /* self-calls made, and those that did not return BATCH_ERR_BUSY */
    int map, iterate;
    batch_pool* pool;
    batch_graph* other;       /* run from a task: waiting for another job must keep working */
    _Atomic int other_ok;
    int pulls;                /* pull_fn: items produced (under the map's lock) */
    int end_ok;               /* JOB_COMPLETED: the job is over, wait returns its result */
} self_wait;
static void self_wait_rec(self_wait* s, batch_result r) {
    atomic_fetch_add(&s->calls, 1);
    if (r != BATCH_ERR_BUSY) atomic_fetch_add(&s->wrong, 1);
}
/* every call a job's own code might make to wait for it or free it */
static void self_wait_try(self_wait* s, batch_job* job) {
    if (!job) return;
    batch_job_summary js;
    self_wait_rec(s, batch_job_wait(job, &js));
    self_wait_rec(s, batch_job_destroy(job));
    if (s->map) { batch_map_summary ms; self_wait_rec(s, batch_map_wait(job, &ms, NULL)); }
    if (s->iterate) {
        const batch_batch* b = (const batch_batch*)&js;
        self_wait_rec(s, batch_map_next(job, &b));
        CHECK(b == NULL);
    }
}
static int self_wait_task(batch_ctx* ctx, void* u) {
    self_wait* s = (self_wait*)u;
    self_wait_try(s, batch_ctx_job(ctx));
    if (batch_ctx_task(ctx).id == 1) {
        batch_job_summary js;
        if (batch_graph_run(s->pool, s->other, NULL, &js) == BATCH_OK && js.completed == 3) atomic_fetch_add(&s->other_ok, 1);
    }
    return 0;
}
static void self_wait_progress(batch_event ev, const batch_progress* p, const batch_event_info* info, void* u) {
    (void)p;
    self_wait* s = (self_wait*)u;
    if (ev != BATCH_EVENT_JOB_COMPLETED && ev != BATCH_EVENT_JOB_CANCELLED) { self_wait_try(s, info->job); return; }
    /* the job is over (this runs inside its wait): waiting returns its result, a report can be
       written, but freeing it under the callback is still refused */
    batch_job_summary js;
    char json[8192];
    if (batch_job_wait(info->job, &js) == BATCH_OK && js.result == BATCH_OK &&
        report_into(json, sizeof json, batch_job_report_json, info->job) == BATCH_OK &&
        batch_job_destroy(info->job) == BATCH_ERR_BUSY)
        s->end_ok++;
}
static int self_wait_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)res;
    self_wait* s = (self_wait*)u;
    while (!atomic_load(&s->job)) test_sleep_ns(1000000u);   /* the launcher stores it */
    self_wait_try(s, batch_ctx_job(ctx));
    if (it->index == 0) {
        batch_map_summary ms;
        if (batch_map_run(s->pool, &(batch_map_desc){ .count = 7, .item_fn = ok_item_count_only, .batch_size = 2 }, &ms, NULL) == BATCH_OK &&
            ms.succeeded == 7)
            atomic_fetch_add(&s->other_ok, 1);
    }
    return 0;
}
static void self_wait_on_batch(const batch_batch* b, void* u) { (void)b; self_wait_try((self_wait*)u, atomic_load(&((self_wait*)u)->job)); }
static int self_wait_pull(void* u, void** out) {
    self_wait* s = (self_wait*)u;
    self_wait_try(s, atomic_load(&s->job));
    *out = NULL;
    return s->pulls < 40 ? (s->pulls++, 1) : 0;
}
static void self_wait_check(self_wait* s, int min_calls) {
    CHECK(atomic_load(&s->calls) >= min_calls);
    CHECK_EQ(atomic_load(&s->wrong), 0);
    CHECK_EQ(atomic_load(&s->other_ok), 1);
    CHECK_EQ(s->end_ok, 1);
}
static void test_regress_self_wait(void) {
    const int kinds[3] = { 1, 2, BATCH_WORKERS_INLINE };
    for (int k = 0; k < 3; k++) {
        batch_pool* p = make_pool(kinds[k]);
        /* a graph: its tasks and its progress callback (TASK_COMPLETED, on the running thread) */
        self_wait s;
        memset(&s, 0, sizeof s);
        s.pool = p;
        s.other = make_graph();
        for (int i = 0; i < 3; i++) add_task(s.other, task_ok, NULL, NULL);
        batch_graph* g = make_graph();
        batch_task t[5];
        for (int i = 0; i < 5; i++) t[i] = add_task(g, self_wait_task, &s, NULL);
        CHECK_OK(batch_task_precede_n(g, &t[0], 1, t + 1, 3));
        CHECK_OK(batch_task_precede(g, t[2], t[4]));
        batch_job* job;
        CHECK_OK(batch_graph_launch(p, g, &(batch_run_desc){ .progress = { .fn = self_wait_progress, .user_data = &s,
                                                             .events = BATCH_EVENT_BIT(BATCH_EVENT_TASK_COMPLETED) |
                                                                       BATCH_EVENT_BIT(BATCH_EVENT_JOB_COMPLETED) } }, &job));
        batch_job_summary js;
        CHECK_OK(batch_job_wait(job, &js));
        CHECK_EQ(js.completed, 5);
        CHECK_OK(batch_job_destroy(job));
        self_wait_check(&s, 5 * 2 * 2);
        CHECK_OK(batch_graph_destroy(g));
        CHECK_OK(batch_graph_destroy(s.other));
        /* a counted map: items, on_batch, progress (BATCH_COMPLETED) */
        memset(&s, 0, sizeof s);
        s.pool = p;
        s.map = 1;
        CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 20, .item_fn = self_wait_item, .user_data = &s, .batch_size = 3,
                                                        .on_batch = self_wait_on_batch,
                                                        .progress = { .fn = self_wait_progress, .user_data = &s } }, &job));
        atomic_store(&s.job, job);
        batch_map_summary ms;
        CHECK_OK(batch_map_wait(job, &ms, NULL));
        CHECK_EQ(ms.succeeded, 20);
        CHECK_OK(batch_job_destroy(job));
        self_wait_check(&s, (20 + 7 + 7) * 3);
        /* a pulled map delivered to the iterator: items, pull_fn, progress */
        memset(&s, 0, sizeof s);
        s.pool = p;
        s.map = s.iterate = 1;
        CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .pull_fn = self_wait_pull, .item_fn = self_wait_item, .user_data = &s,
                                                        .batch_size = 3, .iterate = 1,
                                                        .progress = { .fn = self_wait_progress, .user_data = &s } }, &job));
        atomic_store(&s.job, job);
        size_t seen = 0;
        for (const batch_batch* b; batch_map_next(job, &b) == BATCH_OK && b;) seen += b->count;
        CHECK_EQ(seen, 40);
        CHECK_OK(batch_map_wait(job, &ms, NULL));
        CHECK_EQ(ms.succeeded, 40);
        CHECK_OK(batch_job_destroy(job));
        self_wait_check(&s, 40 * 4);
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- the deadline passes while the only task (or last batch) runs, and it stops (issue 15):
   the job had not finished by its deadline, so it ends CANCELLED with BATCH_ERR_TIMEOUT even
   though every task returned 0; a job that finished before its deadline is COMPLETED however
   late it is waited for. Graph and map alike, on 1 and 2 workers and inline. */
static int until_stop_task(batch_ctx* ctx, void* u) {
    (void)u;
    while (!batch_ctx_should_stop(ctx)) test_sleep_ns(1000000u);
    return 0;
}
static int until_stop_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)it; (void)res; (void)u;
    return until_stop_task(ctx, NULL);
}
static void test_regress_deadline_while_running(void) {
    const int kinds[3] = { 1, 2, BATCH_WORKERS_INLINE };
    const uint64_t timeout = 50000000u;
    for (int k = 0; k < 3; k++) {
        batch_pool* p = make_pool(kinds[k]);
        for (int times = 0; times < 2; times++) {
            batch_graph* g = make_graph();
            batch_task t = add_task(g, until_stop_task, NULL, NULL);
            batch_job_summary s;
            batch_run_desc rd = { .timeout_ns = timeout, .no_task_times = !times };
            CHECK_EQ(batch_graph_run(p, g, &rd, &s), BATCH_ERR_TIMEOUT);
            CHECK_EQ(s.status, BATCH_JOB_CANCELLED);
            CHECK_EQ(s.result, BATCH_ERR_TIMEOUT);
            CHECK_EQ(s.completed, 1);   /* the task itself completed: it returned 0 */
            batch_task_info info;
            CHECK_OK(batch_graph_task_info(g, t, &info));
            CHECK_EQ(info.status, BATCH_TASK_COMPLETED);
            /* finished in time, waited for after the deadline: completed */
            CHECK_OK(batch_graph_clear(g));
            add_task(g, task_ok, NULL, NULL);
            batch_job* job;
            rd.timeout_ns = 20000000u;
            CHECK_OK(batch_graph_launch(p, g, &rd, &job));
            if (batch_pool_workers(p) > 0) test_sleep_ns(40000000u);   /* inline: runs in the wait */
            CHECK_OK(batch_job_wait(job, &s));
            CHECK_EQ(s.status, BATCH_JOB_COMPLETED);
            CHECK_OK(batch_job_destroy(job));
            CHECK_OK(batch_graph_destroy(g));
        }
        /* a map: one batch whose items stop on batch_ctx_should_stop and return 0 */
        batch_map_summary ms;
        CHECK_EQ(batch_map_run(p, &(batch_map_desc){ .count = 4, .item_fn = until_stop_item, .batch_size = 4, .timeout_ns = timeout },
                               &ms, NULL), BATCH_ERR_TIMEOUT);
        CHECK_EQ(ms.status, BATCH_JOB_CANCELLED);
        CHECK_EQ(ms.result, BATCH_ERR_TIMEOUT);
        CHECK_EQ(ms.succeeded, 4);
        CHECK_EQ(ms.unprocessed, 0);
        batch_job* job;
        CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 4, .item_fn = ok_item_count_only, .batch_size = 4,
                                                        .timeout_ns = 20000000u }, &job));
        if (batch_pool_workers(p) > 0) test_sleep_ns(40000000u);   /* inline: runs in the wait */
        CHECK_OK(batch_map_wait(job, &ms, NULL));
        CHECK_EQ(ms.status, BATCH_JOB_COMPLETED);
        CHECK_OK(batch_job_destroy(job));
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- a task's info describes its last attempt (issue 15): one that completed after failed
   attempts shows error 0 and no message, in batch_graph_task_info and in the reports ---------- */
static int fail_then_ok(batch_ctx* ctx, void* u) {
    (void)u;
    return batch_ctx_attempt(ctx) < 2 ? batch_ctx_fail(ctx, 7, "attempt %d failed", batch_ctx_attempt(ctx)) : 0;
}
static int fail_msg_then_code(batch_ctx* ctx, void* u) {   /* a message first, then a bare code */
    (void)u;
    return batch_ctx_attempt(ctx) == 0 ? batch_ctx_fail(ctx, 7, "first attempt") : 8;
}
static void test_regress_task_info_after_retry(void) {
    const int kinds[3] = { 1, 2, BATCH_WORKERS_INLINE };
    for (int k = 0; k < 3; k++) {
        batch_pool* p = make_pool(kinds[k]);
        batch_graph* g = make_graph();
        batch_task a, b;
        CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = fail_then_ok, .name = "flaky", .max_retries = 3, .retry_base_ns = 1000 }, &a));
        CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = fail_msg_then_code, .name = "dead", .max_retries = 1, .retry_base_ns = 1000 }, &b));
        batch_job* job;
        CHECK_OK(batch_graph_launch(p, g, NULL, &job));
        batch_job_summary s;
        CHECK_EQ(batch_job_wait(job, &s), BATCH_PARTIAL);
        CHECK_EQ(s.retries, 3);
        char json[4096], text[4096];
        CHECK_OK(report_into(json, sizeof json, batch_job_report_json, job));
        CHECK_OK(report_into(text, sizeof text, batch_job_report_text, job));
        CHECK_OK(batch_job_destroy(job));
        batch_task_info info;
        CHECK_OK(batch_graph_task_info(g, a, &info));
        CHECK_EQ(info.status, BATCH_TASK_COMPLETED);
        CHECK_EQ(info.attempts, 3);
        CHECK_EQ(info.error, 0);
        CHECK(info.message == NULL);
        CHECK_OK(batch_graph_task_info(g, b, &info));
        CHECK_EQ(info.status, BATCH_TASK_FAILED);
        CHECK_EQ(info.attempts, 2);
        CHECK_EQ(info.error, 8);
        CHECK(info.message == NULL);   /* not the first attempt's */
        check_json(json);
        CHECK(strstr(json, "\"name\": \"flaky\", \"status\": \"completed\", \"attempts\": 3, \"error\": 0, \"message\": null") != NULL);
        CHECK(strstr(json, "\"name\": \"dead\", \"status\": \"failed\", \"attempts\": 2, \"error\": 8, \"message\": null") != NULL);
        CHECK(strstr(json, "attempt ") == NULL && strstr(json, "first attempt") == NULL);
        CHECK(strstr(text, "flaky") == NULL);   /* the text lists the tasks that did not complete */
        CHECK(strstr(text, "dead") != NULL && strstr(text, "first attempt") == NULL);
        CHECK_OK(batch_graph_destroy(g));
        CHECK_OK(batch_pool_destroy(p));
    }
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
    { "regress_self_wait", test_regress_self_wait }, \
    { "regress_deadline_while_running", test_regress_deadline_while_running }, \
    { "regress_task_info_after_retry", test_regress_task_info_after_retry }, \
    REGRESS_THREAD_TESTS
