/* test_progress.c - progress snapshots, the callback's events and throttling, callbacks that
   never overlap, cancel from a callback, the smoothed ETA, the progress bar. */

typedef struct prog_log {
    _Atomic int inside;          /* a callback is running */
    _Atomic int overlap;
    int events[BATCH_EVENT_COUNT_];
    double last_percent;
    int percent_went_back;
    uint64_t last_processed;
    batch_progress final;
    int end_events;
    int ended_last;              /* no event after the job's end */
    _Atomic(batch_job*) cancel_job;   /* cancel from inside the callback once processed >= cancel_at */
    uint64_t cancel_at;
} prog_log;

static void prog_cb(batch_event ev, const batch_progress* p, const batch_event_info* info, void* u) {
    prog_log* l = (prog_log*)u;
    CHECK(info != NULL && info->job != NULL);
    if (atomic_fetch_add(&l->inside, 1) != 0) atomic_store(&l->overlap, 1);
    CHECK((unsigned)ev < BATCH_EVENT_COUNT_);
    if (l->end_events) l->ended_last = 0;
    l->events[ev]++;
    if (p->percent >= 0) {
        if (p->percent + 1e-9 < l->last_percent) l->percent_went_back = 1;
        l->last_percent = p->percent;
    }
    CHECK(p->processed >= l->last_processed);
    l->last_processed = p->processed;
    CHECK(p->succeeded + p->failed + p->skipped + p->cancelled == p->processed);
    CHECK(p->total == 0 || p->processed <= p->total);
    CHECK(p->efficiency >= 0 && p->efficiency <= 1);
    if (ev == BATCH_EVENT_JOB_COMPLETED || ev == BATCH_EVENT_JOB_CANCELLED) { l->final = *p; l->end_events++; l->ended_last = 1; }
    batch_job* cj = atomic_load(&l->cancel_job);
    if (cj && p->processed >= l->cancel_at) CHECK_OK(batch_job_cancel(cj));
    atomic_fetch_sub(&l->inside, 1);
}

static int spin_task(batch_ctx* ctx, void* u) {
    (void)ctx;
    int fail = u != NULL;
    uint64_t t0 = batch_now_ns();
    while (batch_now_ns() - t0 < 200000u) {}
    return fail ? 5 : 0;
}

static void test_progress_graph_events(void) {
    batch_pool* p = make_pool(3);
    batch_graph* g = make_graph();
    batch_task layer[3][10];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 10; i++) layer[k][i] = add_task(g, spin_task, (k == 1 && i < 2) ? (void*)1 : NULL, NULL);
    batch_task b1, b2;
    CHECK_OK(batch_graph_join(g, layer[0], 10, layer[1], 10, &b1));
    CHECK_OK(batch_graph_join(g, layer[1], 10, layer[2], 10, &b2));   /* skipped: layer 1 has failures */
    prog_log l;
    memset(&l, 0, sizeof l);
    batch_job_summary s;
    CHECK_EQ(batch_graph_run(p, g, &(batch_run_desc){ .progress = { .fn = prog_cb, .user_data = &l, .interval_ms = 1,
                                                       .events = BATCH_EVENTS_DEFAULT | BATCH_EVENT_BIT(BATCH_EVENT_TASK_COMPLETED) } }, &s),
             BATCH_PARTIAL);
    CHECK_EQ(atomic_load(&l.overlap), 0);
    CHECK_EQ(l.events[BATCH_EVENT_TASK_FAILED], 2);
    CHECK_EQ(l.events[BATCH_EVENT_TASK_COMPLETED], 18);
    CHECK_EQ(l.events[BATCH_EVENT_GROUP_COMPLETED], 1);       /* b1; b2 is skipped */
    CHECK_EQ(l.end_events, 1);
    CHECK(l.ended_last);
    CHECK(l.events[BATCH_EVENT_PROGRESS] >= 1);               /* ~6 ms of work, 1 ms ticks */
    CHECK(!l.percent_went_back);
    CHECK_EQ(l.final.processed, s.total);
    CHECK(l.final.percent == 100.0);
    CHECK(l.final.eta_s == 0);
    CHECK_EQ(l.final.skipped, 11);
    /* a snapshot after the end agrees */
    batch_job* job;
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    batch_progress snap;
    CHECK_OK(batch_job_progress(job, &snap));
    CHECK(snap.running <= 3);
    CHECK_EQ(snap.total, s.total);
    CHECK_EQ(batch_job_wait(job, NULL), BATCH_PARTIAL);
    CHECK_OK(batch_job_progress(job, &snap));
    CHECK_EQ(snap.processed, snap.total);
    CHECK_EQ(batch_job_progress(NULL, &snap), BATCH_ERR_INVALID);
    CHECK_EQ(batch_job_progress(job, NULL), BATCH_ERR_INVALID);
    CHECK_OK(batch_job_destroy(job));
    CHECK_EQ(batch_graph_run(p, g, &(batch_run_desc){ .progress = { .events = 1u << 20 } }, NULL), BATCH_ERR_INVALID);
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

static int map_spin(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)ctx; (void)res; (void)u;
    uint64_t t0 = batch_now_ns();
    while (batch_now_ns() - t0 < 20000u) {}
    return it->index % 50 == 3;
}
/* map_spin once the gate (user data) opens: the job cannot end before the test is ready */
static int map_spin_gated(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    while (!atomic_load((_Atomic int*)u)) batch__yield();
    return map_spin(ctx, it, res, NULL);
}

static void test_progress_map_events_and_cancel(void) {
    batch_pool* p = make_pool(2);
    prog_log l;
    memset(&l, 0, sizeof l);
    batch_map_summary s;
    CHECK_EQ(batch_map_run(p, &(batch_map_desc){ .count = 1000, .item_fn = map_spin, .batch_size = 25, .error_threshold = 0.5,
                                                  .progress = { .fn = prog_cb, .user_data = &l, .interval_ms = 1 } }, &s, NULL),
             BATCH_PARTIAL);
    CHECK_EQ(atomic_load(&l.overlap), 0);
    CHECK_EQ(l.events[BATCH_EVENT_BATCH_COMPLETED], 40);
    CHECK_EQ(l.end_events, 1);
    CHECK(l.ended_last);
    CHECK(!l.percent_went_back);
    CHECK_EQ(l.final.processed, 1000);
    CHECK_EQ(l.final.failed, 20);
    /* cancel from inside the callback: no deadlock, the job ends cancelled */
    memset(&l, 0, sizeof l);
    batch_job* job;
    _Atomic int gate = 0;
    l.cancel_at = 200;
    CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 100000, .item_fn = map_spin_gated, .user_data = &gate,
                                                    .batch_size = 25, .error_threshold = 1,
                                                    .progress = { .fn = prog_cb, .user_data = &l } }, &job));
    atomic_store(&l.cancel_job, job);
    atomic_store(&gate, 1);
    CHECK_EQ(batch_map_wait(job, &s, NULL), BATCH_ERR_CANCELLED);
    CHECK_EQ(l.events[BATCH_EVENT_JOB_CANCELLED], 1);
    CHECK(s.unprocessed > 0);
    CHECK_OK(batch_job_destroy(job));
    /* a pull source: the total is unknown until the input ends */
    memset(&l, 0, sizeof l);
    pull_state ps = { 0, 300, 0, 0, 0 };
    CHECK_OK(batch_map_run(p, &(batch_map_desc){ .pull_fn = pull_counter, .item_fn = ok_item_count_only, .user_data = &ps, .batch_size = 7,
                                                  .progress = { .fn = prog_cb, .user_data = &l } }, &s, NULL));
    CHECK_EQ(l.final.total, 300);
    CHECK_OK(batch_pool_destroy(p));
}

/* The bar's line fits every width (so a narrow terminal never wraps and scrolls), drops the
   least useful fields first and keeps percent, counts and ETA as long as it can. */
static void test_progress_bar_fits_width(void) {
    batch_progress p;
    memset(&p, 0, sizeof p);
    p.total = 123456789; p.processed = 23456789; p.succeeded = 23456000; p.failed = 789; p.percent = 19.0;
    p.items_per_s = 123456.7; p.eta_s = 3725; p.elapsed_s = 190;
    char line[1024];
    for (int cols = 1; cols <= 300; cols++) {
        size_t n = batch__progress_line(line, sizeof line, &p, cols);
        CHECK_EQ(n, strlen(line));
        CHECK(cols == 1 ? n == 0 : n < (size_t)cols);
        if (cols >= 40) CHECK(strstr(line, "eta 1:02:05") && strstr(line, "19.0%") && strstr(line, "23456789/123456789"));
        if (cols >= 140) CHECK(line[0] == '[' && strstr(line, "elapsed 03:10") && strstr(line, "fail 789"));
    }
    CHECK_EQ(batch__progress_line(line, sizeof line, &p, 60), strlen(line));
    CHECK(!strstr(line, "elapsed"));   /* 60 columns: the least useful field went first */
    p.total = 0; p.percent = -1;
    CHECK(batch__progress_line(line, sizeof line, &p, 80) > 0 && strstr(line, "23456789 done") && !strchr(line, '['));
    CHECK_EQ(batch__progress_line(line, 8, &p, 300), strlen(line));   /* a short buffer is not overrun */
}

static void test_progress_eta_and_bar(void) {
    /* the bar writes plain lines when stderr is not a terminal (the runner's stderr may be one:
       either way it must not crash and must end the line) */
    batch_progress p;
    memset(&p, 0, sizeof p);
    p.total = 100; p.processed = 40; p.succeeded = 38; p.failed = 2; p.percent = 40; p.items_per_s = 12.5; p.eta_s = 4.8; p.elapsed_s = 3.2;
    batch_progress_bar_state st = { 0, 0 };
    fflush(stderr);
#if defined(_WIN32)
    int saved = _dup(2), devnull = _open(TEST_DEVNULL, _O_WRONLY);
    CHECK(saved >= 0 && devnull >= 0);
    _dup2(devnull, 2);
#else
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY);   /* keep the runner's output clean */
    CHECK(saved >= 0 && devnull >= 0);
    dup2(devnull, 2);
#endif
    batch_progress_bar(BATCH_EVENT_PROGRESS, &p, NULL, &st);
    batch_progress_bar(BATCH_EVENT_PROGRESS, &p, NULL, &st);   /* throttled */
    p.total = 0; p.percent = -1; p.eta_s = -1;
    batch_progress_bar(BATCH_EVENT_JOB_COMPLETED, &p, NULL, NULL);
    batch_progress_bar(BATCH_EVENT_PROGRESS, NULL, NULL, NULL);
    fflush(stderr);
#if defined(_WIN32)
    _dup2(saved, 2);
    _close(saved);
    _close(devnull);
#else
    dup2(saved, 2);
    close(saved);
    close(devnull);
#endif
    CHECK(!strcmp(batch_event_string(BATCH_EVENT_GROUP_COMPLETED), "group_completed"));
    CHECK(!strcmp(batch_event_string(BATCH_EVENT_COUNT_), "unknown"));
    /* ETA: unknown before anything finished, never negative, 0 at the end, and it moves
       smoothly on a steady workload: consecutive estimates of a linear job stay close */
    batch_pool* pool = make_pool(1);
    batch_job* job;
    CHECK_OK(batch_map_launch(pool, &(batch_map_desc){ .count = 400, .item_fn = map_spin, .batch_size = 4, .error_threshold = 1 }, &job));
    double prev = -1;
    int jumps = 0, samples = 0;
    while (batch_pool_workers(pool) > 0) {   /* an inline pool runs nothing until we wait */
        batch_progress q;
        CHECK_OK(batch_job_progress(job, &q));
        if (q.processed == 0) CHECK(q.eta_s < 0);
        else CHECK(q.eta_s >= 0);
        if (q.processed >= q.total) break;
        if (prev > 0 && q.eta_s > 0 && q.eta_s > 3 * prev + 0.05) jumps++;
        if (q.eta_s > 0) { prev = q.eta_s; samples++; }
        test_sleep_ns(500000);
    }
    CHECK(jumps <= samples / 4 + 1);
    CHECK_EQ(batch_map_wait(job, NULL, NULL), BATCH_PARTIAL);
    batch_progress q;
    CHECK_OK(batch_job_progress(job, &q));
    CHECK(q.eta_s == 0 && q.percent == 100.0);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_pool_destroy(pool));
}

static int long_task(batch_ctx* ctx, void* u) {
    (void)ctx; (void)u;
    test_sleep_ns(150000000);
    return 0;
}
/* long tasks still get periodic ticks: the waiting thread ticks while it waits */
static void test_progress_ticks_while_waiting(void) {
    batch_pool* p = make_pool(2);
    batch_graph* g = make_graph();
    add_task(g, long_task, NULL, NULL);
    add_task(g, long_task, NULL, NULL);
    prog_log l;
    memset(&l, 0, sizeof l);
    CHECK_OK(batch_graph_run(p, g, &(batch_run_desc){ .progress = { .fn = prog_cb, .user_data = &l, .interval_ms = 20 } }, NULL));
    if (batch_pool_workers(p) > 0)   /* an inline pool runs the tasks on the waiting thread */
        CHECK(l.events[BATCH_EVENT_PROGRESS] >= 3);   /* ~150 ms at 20 ms ticks; only 2 tasks finish */
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

#define PROGRESS_TESTS \
    { "progress_ticks_while_waiting", test_progress_ticks_while_waiting }, \
    { "progress_graph_events", test_progress_graph_events }, \
    { "progress_map_events_and_cancel", test_progress_map_events_and_cancel }, \
    { "progress_eta_and_bar", test_progress_eta_and_bar }, \
    { "progress_bar_fits_width", test_progress_bar_fits_width },
