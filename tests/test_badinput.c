/* test_badinput.c - the bad-input table: one row per misuse, each with the exact code it must
   get; work queued before the table runs must still complete, and a graph refused a change
   must be unchanged. */

typedef struct bad_env {
    batch_pool* pool;
    batch_pool* other_pool;
    batch_graph* g;
    batch_graph* other;
    batch_task a, b, c, x;
    batch_counter counter;
    batch_job* running;          /* a job of g that is still running (held by a gate) */
} bad_env;
static bad_env E;

typedef struct bad_row { const char* what; batch_result (*call)(void); batch_result want; } bad_row;

static int bad_gate_task(batch_ctx* ctx, void* u) {
    (void)ctx;
    while (!atomic_load((_Atomic int*)u)) batch__yield();
    return 0;
}
static void bad_noop(batch_pool* p, void* u) { (void)p; (void)u; }
static int bad_item(batch_ctx* ctx, const batch_item* it, void* r, void* u) { (void)ctx; (void)it; (void)r; (void)u; return 0; }

#define BAD_ROW(name, expr) static batch_result name(void) { return (expr); }
BAD_ROW(r_pool_null_out, batch_pool_create(NULL, &(batch_pool_desc){0}))
BAD_ROW(r_pool_null_desc, batch_pool_create(&(batch_pool*){0}, NULL))
BAD_ROW(r_pool_neg_workers, batch_pool_create(&(batch_pool*){0}, &(batch_pool_desc){ .workers = -7 }))
BAD_ROW(r_submit_null_pool, batch_pool_submit(NULL, &(batch_work){ .fn = bad_noop }))
BAD_ROW(r_submit_null_fn, batch_pool_submit(E.pool, &(batch_work){ .fn = NULL }))
BAD_ROW(r_submit_delay_cap, batch_pool_submit(E.pool, &(batch_work){ .fn = bad_noop, .delay_ns = ((uint64_t)1 << 62) + 1 }))
BAD_ROW(r_submit_foreign_counter, batch_pool_submit(E.other_pool, &(batch_work){ .fn = bad_noop, .counter = &E.counter }))
BAD_ROW(r_counter_below_zero, batch_counter_done(&(batch_counter){ 0, E.pool }))
BAD_ROW(r_parfor_null_fn, batch_pool_parallel_for(E.pool, 10, 1, NULL, NULL))
BAD_ROW(r_graph_add_null_out, batch_graph_add(E.g, &(batch_task_desc){ .fn = task_ok }, NULL))
BAD_ROW(r_graph_retries_cap, batch_graph_add(E.g, &(batch_task_desc){ .fn = task_ok, .max_retries = 1001 }, &(batch_task){0}))
BAD_ROW(r_graph_backoff_cap, batch_graph_add(E.g, &(batch_task_desc){ .fn = task_ok, .retry_base_ns = UINT64_MAX }, &(batch_task){0}))
BAD_ROW(r_graph_self_edge, batch_task_precede(E.g, E.a, E.a))
BAD_ROW(r_graph_cross_edge, batch_task_precede(E.g, E.a, E.x))
BAD_ROW(r_graph_zero_handle, batch_task_precede(E.g, (batch_task){ 0, E.a.tag }, E.b))
BAD_ROW(r_graph_change_running, batch_graph_add(E.g, &(batch_task_desc){ .fn = task_ok }, &(batch_task){0}))
BAD_ROW(r_graph_edge_running, batch_task_precede(E.g, E.b, E.c))
BAD_ROW(r_graph_run_twice, batch_graph_launch(E.pool, E.g, NULL, &(batch_job*){0}))
BAD_ROW(r_graph_destroy_running, batch_graph_destroy(E.g))
BAD_ROW(r_run_bad_policy, batch_graph_run(E.pool, E.other, &(batch_run_desc){ .policy = (batch_failure_policy)9 }, NULL))
BAD_ROW(r_map_no_item_fn, batch_map_run(E.pool, &(batch_map_desc){ .count = 10 }, NULL, NULL))
BAD_ROW(r_map_overflow, batch_map_run(E.pool, &(batch_map_desc){ .count = SIZE_MAX / 3, .item_fn = bad_item, .result_size = 4 }, NULL, NULL))
BAD_ROW(r_map_threshold_nan, batch_map_run(E.pool, &(batch_map_desc){ .count = 10, .item_fn = bad_item, .error_threshold = 0.0 / 0.0 }, NULL, NULL))
BAD_ROW(r_map_threshold_high, batch_map_run(E.pool, &(batch_map_desc){ .count = 10, .item_fn = bad_item, .error_threshold = 1.01 }, NULL, NULL))
BAD_ROW(r_map_min_gt_max, batch_map_run(E.pool, &(batch_map_desc){ .count = 10, .item_fn = bad_item, .min_batch = 9, .max_batch = 3 }, NULL, NULL))
BAD_ROW(r_map_neg_in_flight, batch_map_run(E.pool, &(batch_map_desc){ .count = 10, .item_fn = bad_item, .max_in_flight = -1 }, NULL, NULL))
BAD_ROW(r_map_retries_cap, batch_map_run(E.pool, &(batch_map_desc){ .count = 10, .item_fn = bad_item, .max_retries = 1001 }, NULL, NULL))
BAD_ROW(r_map_acc_no_fold, batch_map_run(E.pool, &(batch_map_desc){ .count = 10, .item_fn = bad_item, .acc_size = 8 }, NULL, NULL))
BAD_ROW(r_sizing_null_key, batch_sizing_set(NULL, "k", BATCH_COMPLEXITY_SIMPLE))
BAD_ROW(r_report_null, batch_job_report_json(NULL, stdout))
BAD_ROW(r_report_running, batch_job_report_text(E.running, stdout))
BAD_ROW(r_progress_null_out, batch_job_progress(E.running, NULL))
BAD_ROW(r_compare_garbage, batch_report_compare("{", "}", stdout))
#undef BAD_ROW

/* Runs each row and checks its exact code, naming the row that disagrees. */
static void run_bad_rows(const bad_row* rows, size_t n) {
    for (size_t i = 0; i < n; i++) {
        batch_result r = rows[i].call();
        if (r != rows[i].want) fprintf(stderr, "row '%s': got %d (%s), want %d\n", rows[i].what, (int)r,
                                       batch_result_string(r), (int)rows[i].want);
        CHECK_EQ(r, rows[i].want);
    }
}

static void test_bad_input_table(void) {
    memset(&E, 0, sizeof E);
    E.pool = make_pool(2);
    E.other_pool = make_pool(1);
    batch_counter_init(&E.counter, E.pool);
    /* work queued before the table: it must complete whatever the bad calls do */
    _Atomic int earlier = 0;
    batch_counter done;
    batch_counter_init(&done, E.pool);
    for (int i = 0; i < 200; i++)
        CHECK_OK(batch_pool_submit(E.pool, &(batch_work){ .fn = child_inc, .user_data = &earlier, .counter = &done,
                                                           .delay_ns = (uint64_t)(i % 4) * 1000000u }));
    E.g = make_graph();
    E.other = make_graph();
    E.a = add_task(E.g, task_ok, NULL, "a");
    E.b = add_task(E.g, task_ok, NULL, "b");
    E.x = add_task(E.other, task_ok, NULL, "x");
    _Atomic int gate = 0;
    E.c = add_task(E.g, bad_gate_task, &gate, "gate");
    CHECK_OK(batch_task_precede(E.g, E.a, E.c));
    /* the graph's state before the rows that must leave it unchanged */
    size_t size_before = batch_graph_size(E.g);
    bad_row rows[] = {
        { "pool: NULL out", r_pool_null_out, BATCH_ERR_INVALID },
        { "pool: NULL desc", r_pool_null_desc, BATCH_ERR_INVALID },
        { "pool: workers < -1", r_pool_neg_workers, BATCH_ERR_INVALID },
        { "submit: NULL pool", r_submit_null_pool, BATCH_ERR_INVALID },
        { "submit: NULL fn", r_submit_null_fn, BATCH_ERR_INVALID },
        { "submit: delay past its cap", r_submit_delay_cap, BATCH_ERR_INVALID },
        { "submit: counter of another pool", r_submit_foreign_counter, BATCH_ERR_INVALID },
        { "counter: below zero", r_counter_below_zero, BATCH_ERR_INVALID },
        { "parallel_for: NULL fn", r_parfor_null_fn, BATCH_ERR_INVALID },
        { "graph: NULL out-pointer", r_graph_add_null_out, BATCH_ERR_INVALID },
        { "graph: retries past their cap", r_graph_retries_cap, BATCH_ERR_INVALID },
        { "graph: backoff past its cap", r_graph_backoff_cap, BATCH_ERR_INVALID },
        { "graph: self-edge", r_graph_self_edge, BATCH_ERR_CYCLE },
        { "graph: edge across graphs", r_graph_cross_edge, BATCH_ERR_INVALID },
        { "graph: handle 0", r_graph_zero_handle, BATCH_ERR_INVALID },
        { "run: bad policy", r_run_bad_policy, BATCH_ERR_INVALID },
        { "map: no item_fn", r_map_no_item_fn, BATCH_ERR_INVALID },
        { "map: N x result_size overflows", r_map_overflow, BATCH_ERR_INVALID },
        { "map: threshold NaN", r_map_threshold_nan, BATCH_ERR_INVALID },
        { "map: threshold > 1", r_map_threshold_high, BATCH_ERR_INVALID },
        { "map: min > max", r_map_min_gt_max, BATCH_ERR_INVALID },
        { "map: negative in-flight", r_map_neg_in_flight, BATCH_ERR_INVALID },
        { "map: retries past their cap", r_map_retries_cap, BATCH_ERR_INVALID },
        { "map: acc_size without fold", r_map_acc_no_fold, BATCH_ERR_INVALID },
        { "sizing: NULL registry", r_sizing_null_key, BATCH_ERR_INVALID },
        { "report: NULL job", r_report_null, BATCH_ERR_INVALID },
        { "compare: not reports", r_compare_garbage, BATCH_ERR_INVALID },
    };
    run_bad_rows(rows, sizeof rows / sizeof rows[0]);
    CHECK_EQ(batch_graph_size(E.g), size_before);   /* the refused changes left it as it was */
    /* rows against a running graph */
    CHECK_OK(batch_graph_launch(E.pool, E.g, NULL, &E.running));
    bad_row busy_rows[] = {
        { "graph: change while running", r_graph_change_running, BATCH_ERR_BUSY },
        { "graph: edge while running", r_graph_edge_running, BATCH_ERR_BUSY },
        { "graph: run twice at once", r_graph_run_twice, BATCH_ERR_BUSY },
        { "graph: destroy while running", r_graph_destroy_running, BATCH_ERR_BUSY },
        { "report: job still running", r_report_running, BATCH_ERR_BUSY },
        { "progress: NULL out", r_progress_null_out, BATCH_ERR_INVALID },
    };
    run_bad_rows(busy_rows, sizeof busy_rows / sizeof busy_rows[0]);
    atomic_store(&gate, 1);
    CHECK_OK(batch_job_wait(E.running, NULL));
    CHECK_OK(batch_job_cancel(E.running));   /* after completion: idempotent, nothing changes */
    batch_job_summary s;
    CHECK_OK(batch_job_wait(E.running, &s));
    CHECK_EQ(s.completed, 3);
    CHECK_OK(batch_job_destroy(E.running));
    CHECK_EQ(batch_graph_size(E.g), size_before);
    /* the earlier work all ran */
    CHECK_OK(batch_counter_wait(&done));
    CHECK_EQ(atomic_load(&earlier), 200);
    CHECK_OK(batch_pool_shutdown(E.pool));
    CHECK_OK(batch_pool_shutdown(E.pool));   /* shutdown twice: idempotent */
    CHECK_EQ(batch_pool_submit(E.pool, &(batch_work){ .fn = bad_noop }), BATCH_ERR_SHUTDOWN);
    CHECK_OK(batch_graph_destroy(E.g));
    CHECK_OK(batch_graph_destroy(E.other));
    CHECK_OK(batch_pool_destroy(E.pool));
    CHECK_OK(batch_pool_destroy(E.other_pool));
}

#define BADINPUT_TESTS \
    { "bad_input_table", test_bad_input_table },
