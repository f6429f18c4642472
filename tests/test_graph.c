/* test_graph.c - job graphs: building, validation and named cycles, random-DAG ordering and
   exactly-once, failure propagation, FAIL_FAST, retries and backoff, concurrency limits,
   cancellation, deadlines, nested graphs, long chains, data flow, re-runs, allocation failure,
   and scenario A (the feature pipeline). */

static batch_graph* make_graph(void) {
    batch_graph* g = NULL;
    CHECK_OK(batch_graph_create(&g, NULL));
    return g;
}

static batch_task add_task(batch_graph* g, batch_task_fn fn, void* user, const char* name) {
    batch_task t = { 0, 0 };
    CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = fn, .user_data = user, .name = name }, &t));
    CHECK(t.id != 0);
    return t;
}

static int task_ok(batch_ctx* ctx, void* u) { (void)ctx; (void)u; return 0; }

/* ---- build and validate --------------------------------------------------------------------- */
static void test_graph_build_bad_input(void) {
    batch_graph* g = make_graph();
    batch_graph* h = make_graph();
    batch_task a = add_task(g, task_ok, NULL, "a"), b = add_task(g, task_ok, NULL, "b");
    batch_task x = add_task(h, task_ok, NULL, "x");
    batch_task zero = { 0, a.tag }, past = { 99, a.tag };
    CHECK_EQ(batch_graph_create(NULL, NULL), BATCH_ERR_INVALID);
    CHECK_EQ(batch_graph_add(NULL, &(batch_task_desc){0}, &a), BATCH_ERR_INVALID);
    CHECK_EQ(batch_graph_add(g, NULL, &a), BATCH_ERR_INVALID);
    CHECK_EQ(batch_graph_add(g, &(batch_task_desc){0}, NULL), BATCH_ERR_INVALID);
    CHECK_EQ(batch_graph_add(g, &(batch_task_desc){ .max_retries = -1 }, &x), BATCH_ERR_INVALID);
    CHECK_EQ(batch_graph_add(g, &(batch_task_desc){ .max_retries = 1001 }, &x), BATCH_ERR_INVALID);
    CHECK_EQ(batch_graph_add(g, &(batch_task_desc){ .priority = BATCH_PRIORITY_COUNT_ }, &x), BATCH_ERR_INVALID);
    CHECK_EQ(batch_task_precede(g, a, a), BATCH_ERR_CYCLE);        /* self-edge */
    CHECK_EQ(batch_task_precede(g, a, x), BATCH_ERR_INVALID);      /* other graph */
    CHECK_EQ(batch_task_precede(g, zero, a), BATCH_ERR_INVALID);
    CHECK_EQ(batch_task_precede(g, a, past), BATCH_ERR_INVALID);
    CHECK_EQ(batch_task_precede(NULL, a, b), BATCH_ERR_INVALID);
    batch_task list[2] = { b, x };
    CHECK_EQ(batch_task_precede_n(g, &a, 1, list, 2), BATCH_ERR_INVALID);  /* all or nothing */
    CHECK_EQ(batch_task_precede_n(g, &a, 1, NULL, 2), BATCH_ERR_INVALID);
    CHECK_EQ(batch_graph_join(g, list, 2, NULL, 0, NULL), BATCH_ERR_INVALID);
    CHECK_EQ(batch_graph_size(g), 2);                               /* nothing was added */
    CHECK_OK(batch_graph_validate(g, NULL, 0));
    CHECK_OK(batch_task_precede(g, a, b));
    CHECK_OK(batch_task_precede(g, a, b));                          /* duplicate: counts once */
    CHECK_OK(batch_graph_validate(g, NULL, 0));
    batch_task f;
    CHECK_OK(batch_graph_find(g, "b", &f));
    CHECK(f.id == b.id && f.tag == b.tag);
    CHECK_EQ(batch_graph_find(g, "nope", &f), BATCH_ERR_NOT_FOUND);
    CHECK_EQ(batch_graph_find(g, NULL, &f), BATCH_ERR_INVALID);
    CHECK_OK(batch_graph_destroy(NULL));
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_graph_destroy(h));
}

/* One way to write edges (issue 15): batch_task_precede_n adds every from -> to pair; an empty
   side adds nothing; a task on both sides is a cycle and changes nothing. */
static int task_count_inputs(batch_ctx* ctx, void* u) { *(size_t*)u = batch_ctx_input_count(ctx); return 0; }
static void test_graph_edges_many_to_many(void) {
    batch_graph* g = make_graph();
    size_t in[6] = { 9, 9, 9, 9, 9, 9 };
    batch_task t[6];
    for (int i = 0; i < 6; i++) t[i] = add_task(g, task_count_inputs, &in[i], NULL);
    CHECK_OK(batch_task_precede_n(g, NULL, 0, t, 3));                 /* empty sides: no edges */
    CHECK_OK(batch_task_precede_n(g, t, 3, NULL, 0));
    CHECK_EQ(batch_task_precede_n(NULL, NULL, 0, NULL, 0), BATCH_ERR_INVALID);
    CHECK_EQ(batch_task_precede_n(g, t, 2, t + 1, 2), BATCH_ERR_CYCLE);  /* t[1] on both sides */
    CHECK_OK(batch_task_precede_n(g, t, 2, t + 2, 3));                /* 2 x 3 edges */
    CHECK_OK(batch_task_precede_n(g, t + 2, 3, &t[5], 1));            /* fan-in: t[5] after 3 more */
    batch_task bar;
    CHECK_OK(batch_graph_join(g, NULL, 0, t, 1, &bar));                /* a barrier before t[0] */
    CHECK_EQ(batch_graph_size(g), 7);
    batch_pool* p = make_pool(2);
    CHECK_OK(batch_graph_run(p, g, NULL, NULL));
    CHECK_EQ(in[0], 1);   /* the barrier */
    CHECK_EQ(in[1], 0);
    for (int i = 2; i < 5; i++) CHECK_EQ(in[i], 2);
    CHECK_EQ(in[5], 3);
    CHECK_OK(batch_pool_destroy(p));
    CHECK_OK(batch_graph_destroy(g));
}

static void test_graph_cycles_named(void) {
    char msg[256];
    /* length 2 */
    batch_graph* g = make_graph();
    batch_task a = add_task(g, task_ok, NULL, "a"), b = add_task(g, task_ok, NULL, "b");
    CHECK_OK(batch_task_precede(g, a, b));
    CHECK_OK(batch_task_precede(g, b, a));
    CHECK_EQ(batch_graph_validate(g, msg, sizeof msg), BATCH_ERR_CYCLE);
    CHECK(strstr(msg, "a") && strstr(msg, "b") && strstr(msg, "->"));
    batch_pool* p = make_pool(1);
    batch_job* job = (batch_job*)1;
    CHECK_EQ(batch_graph_launch(p, g, NULL, &job), BATCH_ERR_CYCLE);
    CHECK(job == NULL);
    CHECK_OK(batch_graph_destroy(g));
    /* length N inside a bigger acyclic graph, unnamed tasks show as #id */
    for (int len = 3; len <= 30; len += 27) {
        g = make_graph();
        batch_task t[60];
        char name[16];
        for (int i = 0; i < 60; i++) { snprintf(name, sizeof name, "n%d", i); t[i] = add_task(g, task_ok, NULL, i == 12 ? NULL : name); }
        for (int i = 0; i + 1 < 60; i++) CHECK_OK(batch_task_precede(g, t[i], t[i + 1]));   /* a chain */
        CHECK_OK(batch_graph_validate(g, msg, sizeof msg));
        CHECK_OK(batch_task_precede(g, t[10 + len - 1], t[10]));                          /* closes a cycle */
        CHECK_EQ(batch_graph_validate(g, msg, sizeof msg), BATCH_ERR_CYCLE);
        /* the message names exactly the tasks 10 .. 10+len-1, as a closed walk */
        int named = 0;
        for (int i = 0; i < 60; i++) {
            if (i == 12) snprintf(name, sizeof name, " #13 ");
            else snprintf(name, sizeof name, " n%d ", i);
            char padded[300];
            snprintf(padded, sizeof padded, "%s ", msg + 6);   /* after "cycle:" */
            if (strstr(padded, name)) {
                CHECK(i >= 10 && i < 10 + len);
                named++;
            }
        }
        CHECK_EQ(named, len);
        CHECK_OK(batch_graph_destroy(g));
    }
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- random DAGs (the generator and the checks live in dag_check.h, shared with stress.c) -- */
#include "dag_check.h"

static void rd_run(uint64_t* rng, int workers, rd_opts o) {
    batch_pool* p = make_pool(workers);
    rd_run_on(p, rng, o);
    CHECK_OK(batch_pool_destroy(p));
}

static void test_graph_random_dags(void) {
    uint64_t rng = test_seed;
    int rounds = (int)scaled(600);
    for (int i = 0; i < rounds; i++) {
        int workers = (int)(test_rand(&rng) % 17);   /* 0 -> inline */
        rd_opts o = { (int)(test_rand(&rng) % 20), (int)(test_rand(&rng) % 50), 0, 0, 0, 0, 0, 0 };
        if (i % 3 == 0) o.hubs = 1 + (int)(test_rand(&rng) % 3);   /* wide tasks: ranges, held releases */
        rd_run(&rng, workers ? workers : BATCH_WORKERS_INLINE, o);
    }
}

/* Random DAGs with wide tasks while about half of the queueings from workers fail: every
   refused task must still run (the overflow lists, ranges kept local, held releases paid into
   overflow, an in-place run instead of a hand-back). */
static void test_graph_submit_failures(void) {
    uint64_t rng = test_seed ^ 0x5b;
    int rounds = (int)scaled(800);
    for (int i = 0; i < rounds; i++) {
        int workers = 1 + (int)(test_rand(&rng) % 4);
        rd_opts o = { (int)(test_rand(&rng) % 10), 20, (int)(test_rand(&rng) % 3), 0, 0, 0, 0, 2 + (int)(test_rand(&rng) % 3) };
        batch_pool* p = make_pool(workers);
        atomic_store(&test_fail_graph_submit_on, 1);
        rd_run_on(p, &rng, o);
        atomic_store(&test_fail_graph_submit_on, 0);
        CHECK_OK(batch_pool_destroy(p));
    }
}

static void test_graph_fail_fast_and_limits(void) {
    uint64_t rng = test_seed ^ 0x55;
    int rounds = (int)scaled(300);
    for (int i = 0; i < rounds; i++) {
        int workers = 1 + (int)(test_rand(&rng) % 8);
        rd_opts o = { 10, 20, (int)(test_rand(&rng) % 4), (int)(test_rand(&rng) & 1), 0, 0, 0, (int)(test_rand(&rng) % 3) };
        rd_run(&rng, (i % 5 == 0) ? BATCH_WORKERS_INLINE : workers, o);
    }
}

static void test_graph_cancel_random(void) {
    uint64_t rng = test_seed ^ 0xCA;
    int rounds = (int)scaled(300);
    for (int i = 0; i < rounds; i++) {
        int workers = 1 + (int)(test_rand(&rng) % 16);
        rd_opts o = { 5, 20, (int)(test_rand(&rng) % 3), 0, 1, 0, 0, (int)(test_rand(&rng) % 3) };
        rd_run(&rng, workers, o);
    }
}

/* ---- retries ----------------------------------------------------------------------------------- */
typedef struct retry_log { int fails; int n; uint64_t at[16]; } retry_log;
static int retry_task(batch_ctx* ctx, void* u) {
    retry_log* l = (retry_log*)u;
    l->at[l->n++] = batch_now_ns();
    return batch_ctx_attempt(ctx) < l->fails ? 3 : 0;
}

static void test_graph_retries_backoff(void) {
    int sizes[] = { 2, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 2; s++) {
        batch_pool* p = make_pool(sizes[s]);
        batch_graph* g = make_graph();
        retry_log ok = { 3, 0, {0} }, bad = { 100, 0, {0} };
        uint64_t base = 2000000;   /* 2 ms */
        batch_task a, b, c;
        CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = retry_task, .user_data = &ok, .name = "ok", .max_retries = 5,
                                                         .retry_base_ns = base, .retry_max_ns = 6000000 }, &a));
        CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = retry_task, .user_data = &bad, .name = "bad", .max_retries = 2,
                                                         .retry_base_ns = base }, &b));
        c = add_task(g, task_ok, NULL, "after_bad");
        CHECK_OK(batch_task_precede(g, b, c));
        batch_job_summary sum;
        CHECK_EQ(batch_graph_run(p, g, NULL, &sum), BATCH_PARTIAL);
        CHECK_EQ(ok.n, 4);           /* 3 failures, then success */
        CHECK_EQ(bad.n, 3);          /* 1 + max_retries */
        CHECK_EQ(sum.retries, 3 + 2);
        /* delays: base, 2 base, then capped at 6 ms; never early, non-decreasing */
        uint64_t want[3] = { base, 2 * base, 6000000 };
        for (int i = 1; i < ok.n; i++) {
            uint64_t d = ok.at[i] - ok.at[i - 1];
            CHECK(d >= want[i - 1]);
        }
        batch_task_info info;
        CHECK_OK(batch_graph_task_info(g, a, &info));
        CHECK_EQ(info.status, BATCH_TASK_COMPLETED);
        CHECK_EQ(info.attempts, 4);
        CHECK_OK(batch_graph_task_info(g, b, &info));
        CHECK_EQ(info.status, BATCH_TASK_FAILED);
        CHECK_EQ(info.error, 3);
        CHECK_OK(batch_graph_task_info(g, c, &info));
        CHECK_EQ(info.status, BATCH_TASK_SKIPPED);
        CHECK_OK(batch_graph_destroy(g));
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- deadline --------------------------------------------------------------------------------- */
static int slow_task(batch_ctx* ctx, void* u) {
    (void)u;
    uint64_t t0 = batch_now_ns();
    while (batch_now_ns() - t0 < 2000000u && !batch_ctx_should_stop(ctx)) batch__yield();
    return 0;
}
static void test_graph_deadline(void) {
    batch_pool* p = make_pool(2);
    batch_graph* g = make_graph();
    batch_task prev = add_task(g, slow_task, NULL, NULL);
    for (int i = 0; i < 200; i++) { batch_task t = add_task(g, slow_task, NULL, NULL); CHECK_OK(batch_task_precede(g, prev, t)); prev = t; }
    batch_job_summary s;
    uint64_t t0 = batch_now_ns();
    CHECK_EQ(batch_graph_run(p, g, &(batch_run_desc){ .timeout_ns = 20000000u }, &s), BATCH_ERR_TIMEOUT);
    CHECK(batch_now_ns() - t0 < 2000000000u);
    CHECK_EQ(s.status, BATCH_JOB_CANCELLED);
    CHECK(s.cancelled > 0);
    CHECK(s.completed < 201);
    CHECK_EQ(s.completed + s.cancelled, 201);
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- nested graphs, long chains, re-runs --------------------------------------------------- */
typedef struct nested_arg { batch_graph* inner; _Atomic int inner_runs; } nested_arg;
static int inner_task(batch_ctx* ctx, void* u) { (void)ctx; atomic_fetch_add((_Atomic int*)u, 1); return 0; }
static int outer_task(batch_ctx* ctx, void* u) {
    nested_arg* a = (nested_arg*)u;
    batch_job_summary s;
    CHECK_OK(batch_graph_run(batch_ctx_pool(ctx), a->inner, NULL, &s));   /* waits, helping */
    CHECK_EQ(s.completed, 50);
    return 0;
}
static void test_graph_nested_one_worker(void) {
    int sizes[] = { 1, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 2; s++) {
        batch_pool* p = make_pool(sizes[s]);
        nested_arg a;
        a.inner = make_graph();
        atomic_init(&a.inner_runs, 0);
        batch_task root = add_task(a.inner, inner_task, &a.inner_runs, NULL);
        for (int i = 0; i < 49; i++) CHECK_OK(batch_task_precede(a.inner, root, add_task(a.inner, inner_task, &a.inner_runs, NULL)));
        batch_graph* outer = make_graph();
        add_task(outer, outer_task, &a, "outer");
        CHECK_OK(batch_graph_run(p, outer, NULL, NULL));
        CHECK_EQ(atomic_load(&a.inner_runs), 50);
        CHECK_OK(batch_graph_destroy(outer));
        CHECK_OK(batch_graph_destroy(a.inner));
        CHECK_OK(batch_pool_destroy(p));
    }
}

static int count_task(batch_ctx* ctx, void* u) { (void)ctx; atomic_fetch_add_explicit((_Atomic long*)u, 1, memory_order_relaxed); return 0; }

static void test_graph_long_chain_and_rerun(void) {
    long n = scaled(1000000);
    _Atomic long count = 0;
    batch_graph* g = make_graph();
    batch_task prev = add_task(g, count_task, &count, "first");
    for (long i = 1; i < n; i++) { batch_task t = add_task(g, count_task, &count, NULL); CHECK_OK(batch_task_precede(g, prev, t)); prev = t; }
    int sizes[] = { 2, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 2; s++) {
        batch_pool* p = make_pool(sizes[s]);
        for (int run = 0; run < 2; run++) {   /* the same graph runs again, fresh state */
            atomic_store(&count, 0);
            batch_job_summary sum;
            CHECK_OK(batch_graph_run(p, g, &(batch_run_desc){ .no_task_times = run }, &sum));
            CHECK_EQ(atomic_load(&count), n);
            CHECK_EQ(sum.completed, (uint64_t)n);
            if (!run) CHECK(sum.peak_concurrency == 1);
        }
        CHECK_OK(batch_pool_destroy(p));
    }
    /* change between runs: add a task and run again */
    batch_task extra = add_task(g, count_task, &count, "extra");
    CHECK_OK(batch_task_precede(g, prev, extra));
    batch_pool* p = make_pool(1);
    atomic_store(&count, 0);
    CHECK_OK(batch_graph_run(p, g, NULL, NULL));
    CHECK_EQ(atomic_load(&count), n + 1);
    CHECK_OK(batch_pool_destroy(p));
    CHECK_OK(batch_graph_destroy(g));
}

/* peak_concurrency against a brute force over the tasks' recorded times: three roots meet (so
   the peak is at least 3 on 3 workers), 3000 short tasks follow, and one task runs again after a 100 ms
   backoff, long after the burst (the burst's events then crowd a few time buckets). */
static int meet_task(batch_ctx* ctx, void* u) {
    (void)ctx;
    _Atomic int* met = (_Atomic int*)u;
    atomic_fetch_add(met, 1);
#if defined(BATCH_NO_THREADS)
    uint64_t until = 0;   /* one thread: the tasks run one after another */
#else
    uint64_t until = batch_now_ns() + 5000000000u;   /* a stuck meeting fails the test, not hangs it */
#endif
    while (atomic_load(met) < 3 && batch_now_ns() < until) test_sleep_ns(100000);
    return 0;
}
static int fail_first_attempt(batch_ctx* ctx, void* u) { (void)u; return batch_ctx_attempt(ctx) == 0 ? 1 : 0; }

static void test_graph_peak_concurrency(void) {
    batch_graph* g = make_graph();
    _Atomic int met = 0;
    _Atomic long count = 0;
    batch_task roots[3], join;
    for (int i = 0; i < 3; i++) roots[i] = add_task(g, meet_task, &met, NULL);
    CHECK_OK(batch_graph_join(g, roots, 3, NULL, 0, &join));
    for (int i = 0; i < 3000; i++) { batch_task t = add_task(g, count_task, &count, NULL); CHECK_OK(batch_task_precede(g, join, t)); }
    batch_task late;
    CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = fail_first_attempt, .max_retries = 1, .retry_base_ns = 100000000u }, &late));
    CHECK_OK(batch_task_precede(g, join, late));
    batch_pool* p = make_pool(3);
    batch_job_summary sum;
    uint64_t before = batch_now_ns();
    CHECK_OK(batch_graph_run(p, g, NULL, &sum));
    uint64_t after = batch_now_ns();
    CHECK_EQ(atomic_load(&met), 3);
    CHECK_EQ(sum.completed, (uint64_t)batch_graph_size(g));
    /* brute force: the most intervals [start, end) that contain some task's start */
    size_t n = batch_graph_size(g);
    uint64_t* st = (uint64_t*)malloc(n * sizeof(uint64_t));
    uint64_t* en = (uint64_t*)malloc(n * sizeof(uint64_t));
    CHECK(st && en);
    int* wk = (int*)malloc(n * sizeof(int));
    CHECK(wk != NULL);
    size_t m = 0;
    for (uint32_t id = 1; id <= n; id++) {
        batch_task_info info;
        CHECK_OK(batch_graph_task_info(g, (batch_task){ id, roots[0].tag }, &info));
        if (info.attempts && info.start_ns) { st[m] = info.start_ns; en[m] = info.end_ns; wk[m] = info.worker; m++; }
    }
    /* the times are sane: inside the run, and on one worker one task after another (a start
       handed over from the previous task's end must not reach back past a search or a sleep,
       such as the late task's 100 ms backoff) */
    for (size_t i = 0; i < m; i++) {
        CHECK(before <= st[i] && st[i] <= en[i] && en[i] <= after);
        if (wk[i] < 0) continue;
        for (size_t j = 0; j < m; j++)
            if (j != i && wk[j] == wk[i]) CHECK(en[j] <= st[i] || en[i] <= st[j]);
    }
    free(wk);
    /* the late task's retry started no earlier than its backoff allows after the join */
    batch_task_info li, ji;
    CHECK_OK(batch_graph_task_info(g, late, &li));
    CHECK_OK(batch_graph_task_info(g, join, &ji));
    CHECK_EQ(li.attempts, 2);
    CHECK(li.start_ns >= ji.end_ns + 100000000u);
    uint64_t peak = 0;
    for (size_t i = 0; i < m; i++) {
        uint64_t c = 0;
        for (size_t j = 0; j < m; j++) c += st[j] <= st[i] && st[i] < en[j];
        if (c > peak) peak = c;
    }
    CHECK_EQ(sum.peak_concurrency, peak);
#if !defined(BATCH_NO_THREADS)
    CHECK(sum.peak_concurrency >= 3);   /* a waiting caller may help: a fourth runner */
#endif
    free(st);
    free(en);
    CHECK_OK(batch_pool_destroy(p));
    CHECK_OK(batch_graph_destroy(g));
}

/* The peak computations themselves, on made-up times (tests share the implementation's
   translation unit), against a brute force: the sort (uniform spreads, a burst with one outlier
   long after it - crowded buckets -, equal times, zero-length tasks, tasks that never ran) and
   the per-slot lists (tasks one after another in each of 3 slots: exact; overlapping tasks in
   a slot: refused, or exact). */
static uint64_t brute_peak(const uint64_t* st, const uint64_t* en, int n) {
    uint64_t want = 0;
    bool any = false;
    for (int i = 0; i < n; i++) {
        if (!st[i]) continue;
        any = true;
        if (en[i] <= st[i]) continue;   /* zero-length: no instant */
        uint64_t c = 0;
        for (int j = 0; j < n; j++) c += st[j] && en[j] > st[j] && st[j] <= st[i] && st[i] < en[j];
        if (c > want) want = c;
    }
    return want ? want : any;
}

static void test_graph_peak_algorithm(void) {
    uint64_t seed = test_seed | 1;
    enum { N = 1500, SLOTS = 3 };
    batch_graph* g = make_graph();
    for (int i = 0; i < N; i++) add_task(g, task_ok, NULL, NULL);
    static uint64_t st[N], en[N];
    static batch__job_stats stats[SLOTS];
    bool lists_used = false;
    for (int round = 0; round < 60; round++) {
        int shape = round % 7;
        batch__job job;
        memset(&job, 0, sizeof job);
        job.g = g;
        job.launch_ns = job.launch_tick = 1000;
        job.stats = stats;
        job.nstats = SLOTS;
        uint64_t clock[SLOTS] = { 0, 0, 0 };
        for (int k = 0; k < SLOTS; k++) { atomic_store(&stats[k].ran, BATCH__NO_NODE); atomic_store(&stats[k].nested, 0); stats[k].seg_open = false; }
        for (uint32_t i = 0; i < N; i++) {
            batch__gnode* x = batch__node(g, i);
            uint64_t a, len;
            int slot = shape == 6 ? 0 : (int)(batch__rand(&seed) % SLOTS);   /* 6: one worker ran all */
            if (shape <= 3) atomic_store(&stats[slot].nested, 1);   /* a worker's tasks overlap only when nested */
            if (shape == 0) { a = batch__rand(&seed) % 1000000; len = 1 + batch__rand(&seed) % 5000; }
            else if (shape == 1) { a = batch__rand(&seed) % 2000; len = 1 + batch__rand(&seed) % 300; }
            else if (shape == 2) { a = 500; len = 1 + (i % 3); }
            else if (shape == 3) { a = batch__rand(&seed) % 100000; len = batch__rand(&seed) % 4000; }
            else {   /* one after another in each slot, sometimes touching, sometimes zero-length */
                clock[slot] += batch__rand(&seed) % 3 == 0 ? 0 : batch__rand(&seed) % 50;
                a = clock[slot];
                len = batch__rand(&seed) % 7 == 0 ? 0 : 1 + batch__rand(&seed) % 40;
                clock[slot] += len;
            }
            if (shape == 1 && i == N - 1) a = 4000000000u;   /* the outlier */
            bool ran = shape != 3 || i % 5 != 0;
            x->attempts = ran ? 1 : 0;
            x->t_start = ran ? job.launch_tick + a : 0;
            x->t_end = ran ? job.launch_tick + a + len : 0;
            st[i] = x->t_start;
            en[i] = x->t_end;
            if (ran && shape >= 4) {   /* what a settle does: runs of touching tasks are their ends */
                batch__ran_link(g, &stats[slot], slot == SLOTS - 1, false, x);
            } else if (ran) {          /* latest first, every task */
                x->seg = BATCH__SEG_TASK;
                x->next_local = atomic_load(&stats[slot].ran);
                atomic_store(&stats[slot].ran, i);
            }
        }
        for (int k = 0; k + 1 < SLOTS; k++) batch__ran_close(g, &stats[k]);   /* what the wait does */
        uint64_t want = brute_peak(st, en, N);
        CHECK_EQ(batch__peak_sorted(&job, NULL), want);
        uint64_t peak = 0;
        bool any = false;
        bool ok = batch__peak_from_lists(&job, &peak, &any);
        if (shape >= 4) { CHECK(ok); lists_used = true; }
        if (shape == 6) CHECK_EQ(want, 1);   /* and batch__peak_concurrency takes the shortcut */
        if (ok) CHECK_EQ(peak ? peak : any, want);
        CHECK_EQ(batch__peak_concurrency(&job, NULL), want);
    }
    CHECK(lists_used);
    CHECK_OK(batch_graph_destroy(g));
}

static void test_graph_busy_while_running(void) {
    batch_pool* p = make_pool(1);
    batch_graph* g = make_graph();
    batch_task a = add_task(g, slow_task, NULL, "a");
    batch_job* job;
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    batch_task b;
    batch_job* job2 = (batch_job*)1;
    CHECK_EQ(batch_graph_launch(p, g, NULL, &job2), BATCH_ERR_BUSY);
    CHECK(job2 == NULL);
    CHECK_EQ(batch_graph_add(g, &(batch_task_desc){ .fn = task_ok }, &b), BATCH_ERR_BUSY);
    CHECK_EQ(batch_graph_destroy(g), BATCH_ERR_BUSY);
    batch_task_info info;
    CHECK_EQ(batch_graph_task_info(g, a, &info), BATCH_ERR_BUSY);
    CHECK_OK(batch_job_wait(job, NULL));
    CHECK_OK(batch_job_wait(job, NULL));           /* again: the same answer */
    CHECK_OK(batch_job_cancel(job));               /* after completion: nothing changes */
    batch_job_summary s;
    CHECK_OK(batch_job_wait(job, &s));
    CHECK_EQ(s.status, BATCH_JOB_COMPLETED);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_job_destroy(NULL));
    CHECK_EQ(batch_job_cancel(NULL), BATCH_ERR_INVALID);
    CHECK_EQ(batch_job_wait(NULL, NULL), BATCH_ERR_INVALID);
    CHECK_OK(batch_graph_run(p, g, NULL, NULL));  /* free again */
    CHECK_EQ(batch_graph_run(p, g, &(batch_run_desc){ .max_concurrency = -1 }, NULL), BATCH_ERR_INVALID);
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- scenario A: the feature pipeline with data flow ------------------------------------ */
enum { F_TEST, F_COVERAGE, F_FLAKY, F_INTENT, F_IMPACT, F_AGGREGATE, F_MIGRATION, F_VALIDATION, F_COUNT };
static const char* const feature_names[F_COUNT] = { "TEST_EXECUTION", "COVERAGE_COLLECTION", "FLAKY_DETECTION", "INTENT_EXTRACTION",
                                                    "IMPACT_ANALYSIS", "RESULT_AGGREGATION", "MIGRATION", "VALIDATION" };
typedef struct feature { int kind; long value; _Atomic int* seq; int order; } feature;
static int feature_task(batch_ctx* ctx, void* u) {
    feature* f = (feature*)u;
    f->order = atomic_fetch_add(f->seq, 1);
    f->value = 100 + f->kind;
    long sum = 0;
    for (size_t i = 0; i < batch_ctx_input_count(ctx); i++) {
        long* in = (long*)batch_ctx_input(ctx, i);
        if (in) sum += *in;   /* barriers (groups) publish nothing */
    }
    if (f->kind == F_AGGREGATE) CHECK_EQ(sum, (100 + F_TEST) + (100 + F_COVERAGE) + (100 + F_FLAKY));
    if (f->kind == F_IMPACT) CHECK_EQ(sum, 100 + F_INTENT);
    if (f->kind == F_VALIDATION) CHECK_EQ(sum, 100 + F_MIGRATION);
    batch_ctx_set_output(ctx, &f->value);
    return 0;
}

static void test_graph_scenario_a(void) {
    for (int mode = 0; mode < 2; mode++) {   /* 0: pipeline by dependencies, 1: three groups */
        batch_pool* p = make_pool(4);
        batch_graph* g = make_graph();
        _Atomic int seq = 0;
        feature f[F_COUNT];
        batch_task t[F_COUNT];
        for (int i = 0; i < F_COUNT; i++) {
            f[i].kind = i; f[i].value = 0; f[i].seq = &seq; f[i].order = -1;
            t[i] = add_task(g, feature_task, &f[i], feature_names[i]);
        }
        batch_task agg_in[3] = { t[F_TEST], t[F_COVERAGE], t[F_FLAKY] };
        CHECK_OK(batch_task_precede_n(g, agg_in, 3, &t[F_AGGREGATE], 1));
        CHECK_OK(batch_task_precede(g, t[F_INTENT], t[F_IMPACT]));
        CHECK_OK(batch_task_precede(g, t[F_MIGRATION], t[F_VALIDATION]));
        if (mode == 1) {
            batch_task g1[2] = { t[F_TEST], t[F_COVERAGE] };
            batch_task g2[3] = { t[F_FLAKY], t[F_INTENT], t[F_IMPACT] };
            batch_task g3[2] = { t[F_AGGREGATE], t[F_VALIDATION] };
            batch_task b1, b2;
            CHECK_OK(batch_graph_join(g, g1, 2, g2, 3, &b1));
            CHECK_OK(batch_graph_join(g, g2, 3, g3, 2, &b2));
            CHECK_EQ(batch_graph_size(g), F_COUNT + 2);
        }
        batch_job_summary s;
        CHECK_OK(batch_graph_run(p, g, &(batch_run_desc){ .max_concurrency = 4 }, &s));
        CHECK_EQ(s.completed, s.total);
        CHECK(s.peak_concurrency <= 4);
        if (mode == 1) {   /* groups in sequence */
            for (int a = 0; a < F_COUNT; a++) for (int b = 0; b < F_COUNT; b++) {
                int ga = (a == F_TEST || a == F_COVERAGE) ? 0 : (a == F_AGGREGATE || a == F_VALIDATION) ? 2 : (a == F_MIGRATION ? -1 : 1);
                int gb = (b == F_TEST || b == F_COVERAGE) ? 0 : (b == F_AGGREGATE || b == F_VALIDATION) ? 2 : (b == F_MIGRATION ? -1 : 1);
                if (ga >= 0 && gb >= 0 && ga < gb) CHECK(f[a].order < f[b].order);
            }
        }
        CHECK(f[F_AGGREGATE].order > f[F_FLAKY].order && f[F_IMPACT].order > f[F_INTENT].order);
        /* DOT names every feature and shows the status */
        char buf[8192];
        FILE* mem = test_memfile(buf, sizeof buf);
        CHECK(mem != NULL);
        CHECK_OK(batch_graph_dump_dot(g, mem));
        test_memfile_close(mem, buf, sizeof buf);
        for (int i = 0; i < F_COUNT; i++) CHECK(strstr(buf, feature_names[i]) != NULL);
        CHECK(strstr(buf, "completed") != NULL && strstr(buf, "->") != NULL);
        CHECK_OK(batch_graph_destroy(g));
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- allocation failure ---------------------------------------------------------------------- */
/* Builds a 40-task chain (some named), validates it and runs it; returns the first error. */
static batch_result graph_alloc_sequence(batch_pool* p, batch_graph** out, int* added) {
    batch_graph* g = NULL;
    *added = 0;
    batch_result r = batch_graph_create(&g, &(batch_graph_desc){ .name = "alloc" });
    batch_task t[40];
    for (int i = 0; r == BATCH_OK && i < 40; i++) {
        char name[8];
        snprintf(name, sizeof name, "t%d", i);
        r = batch_graph_add(g, &(batch_task_desc){ .fn = task_ok, .name = (i % 3) ? name : NULL }, &t[i]);
        if (r == BATCH_OK) ++*added;
        if (r == BATCH_OK && i) r = batch_task_precede(g, t[i - 1], t[i]);
    }
    if (r == BATCH_OK) r = batch_graph_validate(g, NULL, 0);
    if (r == BATCH_OK) r = batch_graph_run(p, g, NULL, NULL);
    *out = g;
    return r;
}

static void test_graph_alloc_failure(void) {
    long long live0 = atomic_load(&test_live_bytes);
    batch_pool* p = make_pool(BATCH_WORKERS_INLINE);   /* inline: the allocation order is fixed */
    batch_graph* g;
    int added;
    test_alloc_reset(TEST_FAIL_NEVER, -1);
    CHECK_OK(graph_alloc_sequence(p, &g, &added));
    long total = atomic_load(&test_alloc_count);
    CHECK_OK(batch_graph_destroy(g));
    CHECK(total > 5);
    for (long n = 1; n <= total; n++) {
        long long live = atomic_load(&test_live_bytes);
        test_alloc_reset(TEST_FAIL_ONCE, n);
        batch_result r = graph_alloc_sequence(p, &g, &added);
        test_alloc_reset(TEST_FAIL_NEVER, -1);
        CHECK(r == BATCH_OK || r == BATCH_ERR_NOMEM);
        if (g) {
            /* whatever failed, the graph is consistent: it has what was added, and runs */
            CHECK_EQ(batch_graph_size(g), (size_t)added);
            batch_task f;
            if (added > 2) CHECK_OK(batch_graph_find(g, "t2", &f));
            batch_job_summary s;
            CHECK_OK(batch_graph_run(p, g, NULL, &s));
            CHECK_EQ(s.completed, (uint64_t)added);
            CHECK_OK(batch_graph_destroy(g));
        }
        CHECK_EQ(atomic_load(&test_live_bytes), live);
    }
    CHECK_OK(batch_pool_destroy(p));
    CHECK_EQ(atomic_load(&test_live_bytes), live0);
}

/* Regression (the clock hand-off between back-to-back tasks): a pool task runs graph B and
   waits, so the worker runs B's task nested and that task's end is handed on; the outer task
   then works 20 ms, launches graph C, whose root lands in the same worker's deque, and works
   20 ms more. C's task must not start before C's launch, and its (empty) run must not be
   charged either 20 ms. */
#if !defined(BATCH_NO_THREADS)
typedef struct handoff_state { batch_graph *b, *c; batch_job* jc; uint64_t before_launch; } handoff_state;
static void handoff_outer(batch_pool* p, void* u) {
    handoff_state* hs = (handoff_state*)u;
    batch_job_summary s;
    CHECK_OK(batch_graph_run(p, hs->b, NULL, &s));
    test_sleep_ns(20000000);
    hs->before_launch = batch_now_ns();
    CHECK_OK(batch_graph_launch(p, hs->c, NULL, &hs->jc));
    test_sleep_ns(20000000);   /* C's root waits in this worker's deque */
}
#endif
static void test_graph_clock_handoff_nested(void) {
#if !defined(BATCH_NO_THREADS)
    handoff_state hs;
    memset(&hs, 0, sizeof hs);
    hs.b = make_graph();
    hs.c = make_graph();
    add_task(hs.b, task_ok, NULL, NULL);
    batch_task tc = add_task(hs.c, task_ok, NULL, NULL);
    batch_pool* p = make_pool(1);
    batch_counter c;
    batch_counter_init(&c, p);
    CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = handoff_outer, .user_data = &hs, .counter = &c }));
    batch_counter_wait(&c);
    batch_job_summary s;
    CHECK_OK(batch_job_wait(hs.jc, &s));
    batch_task_info info;
    CHECK_OK(batch_graph_task_info(hs.c, tc, &info));
    CHECK(info.start_ns >= hs.before_launch);
    CHECK(s.busy_ns < 20000000u);   /* the bug charges at least one 20 ms sleep */
    CHECK_OK(batch_job_destroy(hs.jc));
    CHECK_OK(batch_pool_destroy(p));
    CHECK_OK(batch_graph_destroy(hs.b));
    CHECK_OK(batch_graph_destroy(hs.c));
#endif
}

/* Tasks parked by max_concurrency get the freed slot by priority, oldest first within a level.
   Four roots (NORMAL, LOW, LOW, HIGH) share one slot: the first to run holds it until the
   job's park lists (read through the implementation, which tests share) hold the other three;
   then the most urgent parked task runs next. */
#if !defined(BATCH_NO_THREADS)
typedef struct park_state { _Atomic int order[4], next; batch_task ids[4]; } park_state;
static int park_count(batch__job* j) {
    int n = 0;
    batch__mutex_lock(&j->park_lock);
    for (int l = 0; l < BATCH__LEVELS; l++)
        for (uint32_t i = j->park_head[l]; i != BATCH__NO_NODE; i = batch__node(j->g, i)->next_local) n++;
    batch__mutex_unlock(&j->park_lock);
    return n;
}
static int park_task(batch_ctx* ctx, void* u) {
    park_state* ps = (park_state*)u;
    batch_task me = batch_ctx_task(ctx);
    int pos = atomic_fetch_add(&ps->next, 1);
    for (int k = 0; k < 4; k++) if (ps->ids[k].id == me.id) atomic_store(&ps->order[k], pos);
    if (pos == 0) {   /* the holder */
        batch__job* j = (batch__job*)batch_ctx_job(ctx);
        uint64_t until = batch_now_ns() + 10000000000u;   /* a test that cannot park fails, not hangs */
        while (park_count(j) < 3 && batch_now_ns() < until) test_sleep_ns(100000);
        CHECK_EQ(park_count(j), 3);
    }
    return 0;
}
#endif
static void test_graph_park_priority(void) {
#if !defined(BATCH_NO_THREADS)
    for (int round = 0; round < 4; round++) {
        batch_graph* g = make_graph();
        park_state ps;
        memset(&ps, 0, sizeof ps);
        batch_priority pr[4] = { BATCH_PRIORITY_NORMAL, BATCH_PRIORITY_LOW, BATCH_PRIORITY_LOW, BATCH_PRIORITY_HIGH };
        for (int k = 0; k < 4; k++)
            CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = park_task, .user_data = &ps, .priority = pr[k] }, &ps.ids[k]));
        batch_pool* p = make_pool(2);
        batch_job_summary s;
        CHECK_OK(batch_graph_run(p, g, &(batch_run_desc){ .max_concurrency = 1 }, &s));
        CHECK_EQ(s.completed, (uint64_t)4);
        CHECK_EQ(s.peak_concurrency, (uint64_t)1);
        int holder = -1;
        for (int k = 0; k < 4; k++) if (atomic_load(&ps.order[k]) == 0) holder = k;
        CHECK(holder >= 0);
        /* the most urgent of the other three runs next: HIGH, or NORMAL when HIGH held the slot */
        CHECK_EQ(atomic_load(&ps.order[holder == 3 ? 0 : 3]), 1);
        if (holder != 0 && holder != 3) CHECK_EQ(atomic_load(&ps.order[0]), 2);   /* then NORMAL before the LOW left */
        CHECK_OK(batch_pool_destroy(p));
        CHECK_OK(batch_graph_destroy(g));
    }
#endif
}

/* The task store's growth paths under allocation failure: block 0 doubling, its jump to a full
   block, new blocks and the block table, and the edge list grown by copying. Each allocation of
   a large build fails once in turn: the add or edge that needed it returns BATCH_ERR_NOMEM, the
   graph keeps everything else, runs, and frees every byte. */
static void test_graph_alloc_failure_big(void) {
    long n = scaled(1100000);   /* past four blocks: the block table grows too */
    long long live_start = atomic_load(&test_live_bytes), live0 = 0;
    batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
    _Atomic long count = 0;
    long total = -1;
    for (long k = 0; k <= total || total < 0; k++) {
        test_alloc_reset(k ? TEST_FAIL_ONCE : TEST_FAIL_NEVER, k ? k : -1);
        batch_graph* g = NULL;
        batch_result r = batch_graph_create(&g, NULL);
        long added = 0, failures = 0;
        if (r == BATCH_OK) {
            batch_task prev = { 0, 0 };
            for (long i = 0; i < n; i++) {
                batch_task t;
                r = batch_graph_add(g, &(batch_task_desc){ .fn = count_task, .user_data = &count }, &t);
                if (r != BATCH_OK) { CHECK_EQ(r, BATCH_ERR_NOMEM); failures++; continue; }
                added++;
                if (prev.id && (r = batch_task_precede(g, prev, t)) != BATCH_OK) { CHECK_EQ(r, BATCH_ERR_NOMEM); failures++; }
                prev = t;
            }
        } else {
            CHECK_EQ(r, BATCH_ERR_NOMEM);
            failures++;
        }
        if (!k) total = atomic_load(&test_alloc_count);
        test_alloc_reset(TEST_FAIL_NEVER, -1);
        CHECK(failures <= 1);
        if (g) {
            CHECK_EQ(batch_graph_size(g), (size_t)added);
            atomic_store(&count, 0);
            batch_job_summary s;
            CHECK_OK(batch_graph_run(p, g, &(batch_run_desc){ .no_task_times = 1 }, &s));
            CHECK_EQ(s.completed, (uint64_t)added);
            CHECK_EQ(atomic_load(&count), added);
            CHECK_OK(batch_graph_destroy(g));
        }
        if (!k) live0 = atomic_load(&test_live_bytes);   /* the pool keeps the task memory it grew */
        CHECK_EQ(atomic_load(&test_live_bytes), live0);
    }
    CHECK(total > 10);
    CHECK_OK(batch_pool_destroy(p));
    CHECK_EQ(atomic_load(&test_live_bytes), live_start);
}

/* batch_ctx_fail_permanent: no retry whatever max_retries says; batch_ctx_job: a task cancels its
   own job. */
static int perm_task(batch_ctx* ctx, void* u) {
    atomic_fetch_add((_Atomic int*)u, 1);
    return batch_ctx_fail_permanent(ctx, 9, "gone for good (attempt %d)", batch_ctx_attempt(ctx));
}
static int cancel_own_job(batch_ctx* ctx, void* u) {
    (void)u;
    CHECK(batch_ctx_job(ctx) != NULL);
    CHECK_OK(batch_job_cancel(batch_ctx_job(ctx)));
    return 0;
}
static void test_graph_permanent_and_own_job(void) {
    for (int w = 0; w < 2; w++) {
        batch_pool* p = make_pool(w ? 2 : BATCH_WORKERS_INLINE);
        batch_graph* g = make_graph();
        _Atomic int runs = 0;
        batch_task t;
        CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = perm_task, .user_data = &runs, .max_retries = 5, .retry_base_ns = 1000 }, &t));
        batch_task after = add_task(g, task_ok, NULL, "after");
        CHECK_OK(batch_task_precede(g, t, after));
        batch_job_summary s;
        CHECK_EQ(batch_graph_run(p, g, NULL, &s), BATCH_ERR_FAILED);
        CHECK_EQ(atomic_load(&runs), 1);
        CHECK_EQ(s.failed, 1);
        CHECK_EQ(s.skipped, 1);
        CHECK_EQ(s.retries, 0);
        batch_task_info info;
        CHECK_OK(batch_graph_task_info(g, t, &info));
        CHECK_EQ(info.attempts, 1);
        CHECK(info.message && strstr(info.message, "gone for good (attempt 0)"));
        CHECK_OK(batch_graph_destroy(g));
        /* a task cancels its own job: what has not started is CANCELLED */
        g = make_graph();
        batch_task a = add_task(g, cancel_own_job, NULL, "a");
        batch_task b = add_task(g, task_ok, NULL, "b");
        CHECK_OK(batch_task_precede(g, a, b));
        CHECK_EQ(batch_graph_run(p, g, NULL, &s), BATCH_ERR_CANCELLED);
        CHECK_EQ(s.completed, 1);
        CHECK_EQ(s.cancelled, 1);
        CHECK_OK(batch_graph_destroy(g));
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* batch_graph_clear: an empty graph in the same memory; old handles refused; refused while a
   job runs; the next build (bigger or smaller) validates and runs as if new. */
static void test_graph_clear_rebuild(void) {
    batch_pool* p = make_pool(2);
    batch_graph* g = make_graph();
    _Atomic long count = 0;
    batch_task first = { 0, 0 };
    for (int round = 0; round < 6; round++) {
        int n = (round % 3 + 1) * 500;   /* 500, 1000, 1500: shrinks and grows */
        batch_task prev = { 0, 0 };
        for (int i = 0; i < n; i++) {
            char name[32];
            snprintf(name, sizeof name, "r%d-t%d", round, i);
            batch_task t = add_task(g, count_task, &count, i % 100 == 0 ? name : NULL);
            if (i) CHECK_OK(batch_task_precede(g, prev, t));
            else if (round) CHECK_EQ(batch_task_precede(g, first, t), BATCH_ERR_INVALID);   /* a handle from before the clear */
            if (!i) first = t;
            prev = t;
        }
        if (round == 4) {   /* a cycle in this round: named, then the clear forgets it */
            CHECK_OK(batch_task_precede(g, prev, first));
            char msg[256];
            CHECK_EQ(batch_graph_validate(g, msg, sizeof msg), BATCH_ERR_CYCLE);
            CHECK_OK(batch_graph_clear(g));
            CHECK_EQ(batch_graph_size(g), 0);
            CHECK_OK(batch_graph_validate(g, NULL, 0));
            continue;
        }
        atomic_store(&count, 0);
        batch_job* job;
        CHECK_OK(batch_graph_launch(p, g, NULL, &job));
        CHECK_EQ(batch_graph_clear(g), BATCH_ERR_BUSY);
        batch_job_summary s;
        CHECK_OK(batch_job_wait(job, &s));
        CHECK_OK(batch_job_destroy(job));
        CHECK_EQ(s.completed, (uint64_t)n);
        CHECK_EQ(atomic_load(&count), n);
        batch_task found;
        char want[32];
        snprintf(want, sizeof want, "r%d-t100", round);
        CHECK_OK(batch_graph_find(g, want, &found));
        CHECK_OK(batch_graph_clear(g));
        CHECK_EQ(batch_graph_find(g, want, &found), BATCH_ERR_NOT_FOUND);
    }
    CHECK_EQ(batch_graph_clear(NULL), BATCH_ERR_INVALID);
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

/* A wide fan-out and fan-in (ranges, lazy splits, held releases) on every pool size: each
   middle task once, the join after all of them, failures and cancels counted, the concurrency
   limit kept, and the same again on a re-run. */
typedef struct wide_state {
    _Atomic int* cells;
    _Atomic long ran, running, peak;
    _Atomic int root_done, join_saw, after_wait, ran_after;
    long n;
    int fail_every;   /* a middle task i fails if i % fail_every == 1 (0: none) */
    int root_fails;
} wide_state;
typedef struct wide_cell { wide_state* w; long i; } wide_cell;
static int wide_root(batch_ctx* ctx, void* u) {
    wide_state* w = (wide_state*)u;
    (void)ctx;
    if (w->root_fails) return 5;
    atomic_store(&w->root_done, 1);
    return 0;
}
static int wide_mid(batch_ctx* ctx, void* u) {
    wide_cell* c = (wide_cell*)u;
    wide_state* w = c->w;
    (void)ctx;
    if (atomic_load(&w->after_wait)) atomic_store(&w->ran_after, 1);
    long r = atomic_fetch_add(&w->running, 1) + 1, pk = atomic_load(&w->peak);
    while (r > pk && !atomic_compare_exchange_weak(&w->peak, &pk, r)) {}
    CHECK(atomic_load(&w->root_done));
    atomic_fetch_add(&w->cells[c->i], 1);
    atomic_fetch_add(&w->ran, 1);
    atomic_fetch_sub(&w->running, 1);
    return w->fail_every && c->i % w->fail_every == 1 ? 6 : 0;
}
static int wide_join(batch_ctx* ctx, void* u) {
    wide_state* w = (wide_state*)u;
    (void)ctx;
    atomic_store(&w->join_saw, (int)(atomic_load(&w->ran) == w->n) + 1);
    return 0;
}
static void test_graph_wide(void) {
    long n = (long)scaled(40000) + 40;
    wide_state w;
    memset(&w, 0, sizeof w);
    w.n = n;
    w.cells = (_Atomic int*)calloc((size_t)n, sizeof(_Atomic int));
    wide_cell* cells = (wide_cell*)malloc((size_t)n * sizeof *cells);
    batch_task* mid = (batch_task*)malloc((size_t)n * sizeof *mid);
    CHECK(w.cells && cells && mid);
    batch_graph* g = make_graph();
    batch_task root = add_task(g, wide_root, &w, NULL);
    for (long i = 0; i < n; i++) {
        cells[i] = (wide_cell){ &w, i };
        /* a few with their own priority: they leave the range through the pool's queues */
        batch_priority pr = i % 997 == 3 ? BATCH_PRIORITY_HIGH : i % 991 == 5 ? BATCH_PRIORITY_LOW : BATCH_PRIORITY_DEFAULT;
        CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = wide_mid, .user_data = &cells[i], .priority = pr }, &mid[i]));
    }
    CHECK_OK(batch_task_precede_n(g, &root, 1, mid, (size_t)n));
    batch_task join = add_task(g, wide_join, &w, NULL);
    CHECK_OK(batch_task_precede_n(g, mid, (size_t)n, &join, 1));
    int sizes[] = { 1, 2, 3, 8, BATCH_WORKERS_INLINE };
    uint64_t rng = test_seed ^ 0x71de;
    for (int si = 0; si < 5; si++) {
        batch_pool* p = make_pool(sizes[si]);
        for (int mode = 0; mode < 6; mode++) {   /* plain (twice), some fail, root fails, limited + cancelled, HIGH run */
            for (long i = 0; i < n; i++) atomic_store(&w.cells[i], 0);
            atomic_store(&w.ran, 0); atomic_store(&w.peak, 0); atomic_store(&w.root_done, 0);
            atomic_store(&w.join_saw, 0); atomic_store(&w.after_wait, 0);
            w.fail_every = mode == 2 ? 1000 : 0;
            w.root_fails = mode == 3;
            batch_run_desc d = { .max_concurrency = mode == 4 ? 3 : 0, .priority = mode == 5 ? BATCH_PRIORITY_HIGH : BATCH_PRIORITY_DEFAULT };
            batch_job* job;
            CHECK_OK(batch_graph_launch(p, g, &d, &job));
            if (mode == 4) {
                uint64_t spin = test_rand(&rng) % 3000000, t0 = batch_now_ns();
                while (batch_now_ns() - t0 < spin) {}
                CHECK_OK(batch_job_cancel(job));
            }
            batch_job_summary s;
            batch_result r = batch_job_wait(job, &s);
            atomic_store(&w.after_wait, 1);
            CHECK_EQ(s.total, (uint64_t)n + 2);
            CHECK_EQ(s.completed + s.failed + s.skipped + s.cancelled, s.total);
            long ran = 0;
            for (long i = 0; i < n; i++) { int c = atomic_load(&w.cells[i]); CHECK(c == 0 || c == 1); ran += c; }
            CHECK_EQ(ran, atomic_load(&w.ran));
            batch_task_info ji;
            CHECK_OK(batch_graph_task_info(g, join, &ji));
            if (mode <= 1 || mode == 5) {
                CHECK_OK(r);
                CHECK_EQ(ran, n);
                CHECK_EQ(s.completed, (uint64_t)n + 2);
                CHECK_EQ(atomic_load(&w.join_saw), 2);   /* the join saw every middle task done */
            } else if (mode == 2) {
                uint64_t fails = (uint64_t)((n - 2) / 1000 + 1);
                CHECK_EQ(r, BATCH_PARTIAL);
                CHECK_EQ(ran, n);
                CHECK_EQ(s.failed, fails);
                CHECK_EQ(s.skipped, 1);
                CHECK_EQ((int)ji.status, BATCH_TASK_SKIPPED);
            } else if (mode == 3) {
                CHECK_EQ(ran, 0);
                CHECK_EQ(s.failed, 1);
                CHECK_EQ(s.skipped, (uint64_t)n + 1);
            } else {
                CHECK(atomic_load(&w.peak) <= 3);
                if (s.cancelled == 0) CHECK_EQ(ran, n);
                else CHECK((int)ji.status == BATCH_TASK_CANCELLED);
            }
            CHECK_OK(batch_job_destroy(job));
            CHECK_EQ(atomic_load(&w.ran_after), 0);
        }
        CHECK_OK(batch_pool_destroy(p));
    }
    CHECK_OK(batch_graph_destroy(g));
    free(mid);
    free(cells);
    free((void*)w.cells);
}

/* Held releases never delay their task: one worker walks a wide task's successors, 20
   predecessors of J with X (not one of them) among them; it must pay J's held releases before X, so
   that the other worker, freed by X's start, runs J while X still sleeps. Holding them through
   X would start J only after X ends. */
#if !defined(BATCH_NO_THREADS)
typedef struct hold_state { _Atomic int x_started; } hold_state;
static int hold_block(batch_ctx* ctx, void* u) {
    hold_state* h = (hold_state*)u;
    (void)ctx;
    uint64_t until = batch_now_ns() + 3000000000u;
    while (!atomic_load(&h->x_started) && batch_now_ns() < until) test_sleep_ns(100000);
    return 0;
}
static int hold_x(batch_ctx* ctx, void* u) {
    hold_state* h = (hold_state*)u;
    (void)ctx;
    atomic_store(&h->x_started, 1);
    test_sleep_ns(300000000);
    return 0;
}
#endif
static void test_graph_hold_no_delay(void) {
#if !defined(BATCH_NO_THREADS)
    hold_state h;
    atomic_init(&h.x_started, 0);
    batch_graph* g = make_graph();
    batch_task r = add_task(g, task_ok, NULL, "r"), j = add_task(g, task_ok, NULL, "j");
    add_task(g, hold_block, &h, "block");
    batch_task p[20], x = { 0, 0 };
    for (int i = 0; i < 20; i++) {
        if (i == 10) {   /* in the middle: the walker's own half holds P1..P10 then X */
            x = add_task(g, hold_x, &h, "x");
            CHECK_OK(batch_task_precede(g, r, x));
        }
        p[i] = add_task(g, task_ok, NULL, NULL);
        CHECK_OK(batch_task_precede(g, r, p[i]));
        CHECK_OK(batch_task_precede(g, p[i], j));
    }
    batch_pool* pool = make_pool(2);
    CHECK_OK(batch_graph_run(pool, g, NULL, NULL));
    batch_task_info ji, xi;
    CHECK_OK(batch_graph_task_info(g, j, &ji));
    CHECK_OK(batch_graph_task_info(g, x, &xi));
    CHECK_EQ((int)ji.status, BATCH_TASK_COMPLETED);
    CHECK(ji.end_ns <= xi.end_ns);   /* J ran while X slept */
    CHECK_OK(batch_pool_destroy(pool));
    CHECK_OK(batch_graph_destroy(g));
#endif
}

/* A retry cut short by the deadline settles FAILED on the worker that took the retry's queue
   entry, with the times of an attempt that may have run on the other worker: the peak must
   still be the brute-force one (that line's tasks no longer follow one another). */
static int sleep300_task(batch_ctx* ctx, void* user) {
    (void)ctx; (void)user;
    test_sleep_ns(300000000);
    return 0;
}
static int task_fail9(batch_ctx* ctx, void* user) { (void)ctx; (void)user; return 9; }
static void test_graph_peak_retry_elsewhere(void) {
    batch_graph* g = make_graph();
    batch_task t[2];
    t[0] = add_task(g, sleep300_task, NULL, NULL);
    CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = task_fail9, .max_retries = 1, .retry_base_ns = 1000000000u }, &t[1]));
    batch_pool* p = make_pool(2);
    for (int round = 0; round < 3; round++) {
        batch_job_summary sum;
        (void)batch_graph_run(p, g, &(batch_run_desc){ .timeout_ns = 500000000u }, &sum);
        batch_task_info a, b;
        CHECK_OK(batch_graph_task_info(g, t[0], &a));
        CHECK_OK(batch_graph_task_info(g, t[1], &b));
        CHECK_EQ((int)b.status, BATCH_TASK_FAILED);
        CHECK_EQ(b.attempts, 1);
        uint64_t want = (a.end_ns > a.start_ns) || (b.end_ns > b.start_ns) ? 1 : 0;
        if (a.start_ns < b.end_ns && b.start_ns < a.end_ns && a.end_ns > a.start_ns && b.end_ns > b.start_ns) want = 2;
        if (!want) want = 1;   /* a task ran: at least 1 */
        CHECK_EQ(sum.peak_concurrency, want);
    }
    CHECK_OK(batch_pool_destroy(p));
    CHECK_OK(batch_graph_destroy(g));
}

/* Urgent work submitted while a worker walks a wide task's successors, or runs a chain in
   place, runs next, not after the walk: the walker leaves the rest on its deque when CRITICAL or
   HIGH work is queued. */
typedef struct urgent_state { batch_pool* pool; _Atomic long ran; _Atomic long seen; } urgent_state;
static void urgent_work(batch_pool* p, void* u) {
    (void)p;
    urgent_state* us = (urgent_state*)u;
    atomic_store(&us->seen, atomic_load(&us->ran));
}
static int urgent_mid(batch_ctx* ctx, void* u) {
    urgent_state* us = (urgent_state*)u;
    (void)ctx;
    if (atomic_fetch_add(&us->ran, 1) == 100)
        CHECK_OK(batch_pool_submit(us->pool, &(batch_work){ .fn = urgent_work, .user_data = us, .priority = BATCH_PRIORITY_CRITICAL }));
    return 0;
}
static void test_graph_wide_urgent(void) {
    for (int shape = 0; shape < 4; shape++) {   /* a wide task's successors; a chain run in place; on one worker, inline */
        urgent_state us;
        us.pool = make_pool(shape < 2 ? 1 : BATCH_WORKERS_INLINE);
        atomic_init(&us.ran, 0);
        atomic_init(&us.seen, -1);
        batch_graph* g = make_graph();
        batch_task prev = add_task(g, task_ok, NULL, NULL);
        for (int i = 0; i < 20000; i++) {
            batch_task t = add_task(g, urgent_mid, &us, NULL);
            CHECK_OK(batch_task_precede(g, prev, t));
            if (shape & 1) prev = t;
        }
        CHECK_OK(batch_graph_run(us.pool, g, NULL, NULL));
        CHECK_OK(batch_pool_wait_idle(us.pool));
        long seen = atomic_load(&us.seen);
        CHECK(seen >= 101 && seen <= 110);   /* the walk stopped right after the task that submitted */
        CHECK_EQ(atomic_load(&us.ran), 20000);
        CHECK_OK(batch_pool_destroy(us.pool));
        CHECK_OK(batch_graph_destroy(g));
    }
}

/* Task times in ns whichever clock the tasks read: a 20 ms task measures 20 ms, its successor
   starts after it ends, and everything lies inside the run. */
static int sleep20_task(batch_ctx* ctx, void* user) {
    (void)ctx; (void)user;
    test_sleep_ns(20000000);
    return 0;
}
static void test_graph_task_times(void) {
    batch_graph* g = make_graph();
    batch_task a = add_task(g, sleep20_task, NULL, NULL), b = add_task(g, task_ok, NULL, NULL);
    CHECK_OK(batch_task_precede(g, a, b));
    batch_pool* p = make_pool(2);
    for (int round = 0; round < 2; round++) {   /* the second run is the first long-lived pool */
        batch_job_summary sum;
        uint64_t before = batch_now_ns();
        CHECK_OK(batch_graph_run(p, g, NULL, &sum));
        uint64_t after = batch_now_ns();
        batch_task_info ia, ib;
        CHECK_OK(batch_graph_task_info(g, a, &ia));
        CHECK_OK(batch_graph_task_info(g, b, &ib));
        CHECK(before <= ia.start_ns && ia.end_ns - ia.start_ns >= 19900000u);
        CHECK(ia.end_ns <= ib.start_ns && ib.start_ns <= ib.end_ns && ib.end_ns <= after);
        CHECK(sum.busy_ns >= 19900000u && sum.busy_ns <= sum.wall_ns + 1000000u);
        CHECK(sum.wall_ns >= ib.end_ns - ia.start_ns && sum.wall_ns <= after - before);
        CHECK_EQ(sum.peak_concurrency, 1);
    }
    CHECK_OK(batch_pool_destroy(p));
    CHECK_OK(batch_graph_destroy(g));
}

#define GRAPH_TESTS \
    { "graph_submit_failures", test_graph_submit_failures }, \
    { "graph_wide_urgent", test_graph_wide_urgent }, \
    { "graph_peak_retry_elsewhere", test_graph_peak_retry_elsewhere }, \
    { "graph_hold_no_delay", test_graph_hold_no_delay }, \
    { "graph_wide", test_graph_wide }, \
    { "graph_task_times", test_graph_task_times }, \
    { "graph_clear_rebuild", test_graph_clear_rebuild }, \
    { "graph_peak_concurrency", test_graph_peak_concurrency }, \
    { "graph_peak_algorithm", test_graph_peak_algorithm }, \
    { "graph_alloc_failure_big", test_graph_alloc_failure_big }, \
    { "graph_park_priority", test_graph_park_priority }, \
    { "graph_clock_handoff_nested", test_graph_clock_handoff_nested }, \
    { "graph_permanent_and_own_job", test_graph_permanent_and_own_job }, \
    { "graph_build_bad_input", test_graph_build_bad_input }, \
    { "graph_edges_many_to_many", test_graph_edges_many_to_many }, \
    { "graph_cycles_named", test_graph_cycles_named }, \
    { "graph_random_dags", test_graph_random_dags }, \
    { "graph_fail_fast_and_limits", test_graph_fail_fast_and_limits }, \
    { "graph_cancel_random", test_graph_cancel_random }, \
    { "graph_retries_backoff", test_graph_retries_backoff }, \
    { "graph_deadline", test_graph_deadline }, \
    { "graph_nested_one_worker", test_graph_nested_one_worker }, \
    { "graph_long_chain_and_rerun", test_graph_long_chain_and_rerun }, \
    { "graph_busy_while_running", test_graph_busy_while_running }, \
    { "graph_scenario_a", test_graph_scenario_a }, \
    { "graph_alloc_failure", test_graph_alloc_failure },
