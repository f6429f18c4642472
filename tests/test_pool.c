/* test_pool.c - the worker pool: exactly-once execution, fork-join, nested waits, priorities,
   delayed tasks, parallel-for, shutdown, churn, inline mode, bad input, allocation failures. */

static batch_pool* make_pool(int workers) {
    batch_pool* p = NULL;
    CHECK_OK(batch_pool_create(&p, &(batch_pool_desc){ .workers = workers }));
    CHECK(p != NULL);
    return p;
}

/* ---- exactly once ------------------------------------------------------------------------ */
typedef struct once_ctx { _Atomic unsigned char* hits; } once_ctx;
typedef struct once_item { once_ctx* ctx; size_t i; } once_item;

static void once_fn(batch_pool* p, void* u) {
    (void)p;
    once_item* it = (once_item*)u;
    atomic_fetch_add_explicit(&it->ctx->hits[it->i], 1, memory_order_relaxed);
}

static void check_all_once(_Atomic unsigned char* hits, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (atomic_load(&hits[i]) != 1) { fprintf(stderr, "task %zu ran %d times\n", i, atomic_load(&hits[i])); CHECK(0); }
}

static void run_million(int workers) {
    size_t n = (size_t)scaled(1000000);
    once_ctx ctx;
    ctx.hits = (_Atomic unsigned char*)calloc(n, 1);
    once_item* items = (once_item*)malloc(n * sizeof *items);
    CHECK(ctx.hits && items);
    batch_pool* p = make_pool(workers);
    batch_counter c;
    CHECK_OK(batch_counter_init(&c, p));
    for (size_t i = 0; i < n; i++) {
        items[i].ctx = &ctx;
        items[i].i = i;
        CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = once_fn, .user_data = &items[i], .counter = &c }));
    }
    CHECK_OK(batch_counter_wait(&c));
    CHECK_EQ(batch_counter_value(&c), 0);
    check_all_once(ctx.hits, n);
    batch_pool_stats st;
    CHECK_OK(batch_pool_wait_idle(p));   /* a task counts as executed just after its counter */
    CHECK_OK(batch_pool_get_stats(p, &st));
    CHECK_EQ(st.executed, n);
    CHECK_EQ(st.submitted, n);
    uint64_t per = 0;
    for (int i = 0; i < batch_pool_workers(p); i++) per += batch_pool_worker_executed(p, i);
    CHECK(per == n || batch_pool_workers(p) == 0);
    CHECK_OK(batch_pool_destroy(p));
    free(items);
    free((void*)ctx.hits);
}

static void test_pool_million_external(void) {
    run_million(2);
    run_million(4);
}

/* tasks submitted from inside tasks: a spawn tree with fan-out 8 */
typedef struct tree_ctx { _Atomic unsigned char* hits; size_t n; batch_counter* c; } tree_ctx;
typedef struct tree_node { tree_ctx* ctx; size_t i; } tree_node;
static void tree_fn(batch_pool* p, void* u) {
    tree_node* nd = (tree_node*)u;
    tree_ctx* ctx = nd->ctx;
    atomic_fetch_add_explicit(&ctx->hits[nd->i], 1, memory_order_relaxed);
    for (size_t k = 1; k <= 8; k++) {
        size_t child = nd->i * 8 + k;
        if (child >= ctx->n) break;
        tree_node* base = nd - nd->i;
        CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = tree_fn, .user_data = &base[child], .counter = ctx->c }));
    }
}

static void test_pool_spawn_tree(void) {
    int sizes[] = { 1, 2, 3, 8 };
    for (int s = 0; s < 4; s++) {
        size_t n = (size_t)scaled(1000000);
        tree_ctx ctx;
        ctx.hits = (_Atomic unsigned char*)calloc(n, 1);
        ctx.n = n;
        tree_node* nodes = (tree_node*)malloc(n * sizeof *nodes);
        for (size_t i = 0; i < n; i++) { nodes[i].ctx = &ctx; nodes[i].i = i; }
        batch_pool* p = make_pool(sizes[s]);
        batch_counter c;
        batch_counter_init(&c, p);
        ctx.c = &c;
        CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = tree_fn, .user_data = &nodes[0], .counter = &c }));
        CHECK_OK(batch_counter_wait(&c));
        check_all_once(ctx.hits, n);
        CHECK_OK(batch_pool_destroy(p));
        free(nodes);
        free((void*)ctx.hits);
    }
}

/* ---- fork-join -------------------------------------------------------------------------- */
typedef struct fib_arg { int n; long result; } fib_arg;
static void fib_task(batch_pool* p, void* u) {
    fib_arg* a = (fib_arg*)u;
    if (a->n < 2) { a->result = a->n; return; }
    fib_arg x = { a->n - 1, 0 }, y = { a->n - 2, 0 };
    batch_counter c;
    batch_counter_init(&c, p);
    CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = fib_task, .user_data = &x, .counter = &c }));
    fib_task(p, &y);
    CHECK_OK(batch_counter_wait(&c));   /* a worker helps here: never deadlocks */
    a->result = x.result + y.result;
}

static long fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

static long fib_on(batch_pool* p, int n) {
    fib_arg a = { n, 0 };
    batch_counter c;
    batch_counter_init(&c, p);
    CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = fib_task, .user_data = &a, .counter = &c }));
    CHECK_OK(batch_counter_wait(&c));
    return a.result;
}

static void test_pool_fib(void) {
    int n = test_scale > 1 ? 20 : 25;
    long want = fib_serial(n);
    int sizes[] = { 1, 2, 4, 16, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 5; s++) {
        batch_pool* p = make_pool(sizes[s]);
        CHECK_EQ(fib_on(p, n), want);
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* a task that submits children and waits for them, with one worker */
static void child_inc(batch_pool* p, void* u) { (void)p; atomic_fetch_add((_Atomic int*)u, 1); }
static void parent_waits(batch_pool* p, void* u) {
    _Atomic int* hits = (_Atomic int*)u;
    batch_counter c;
    batch_counter_init(&c, p);
    for (int i = 0; i < 100; i++)
        CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = child_inc, .user_data = hits, .counter = &c,
                                                      .priority = (batch_priority)(1 + i % 5) }));
    CHECK_OK(batch_counter_wait(&c));
    CHECK_EQ(atomic_load(hits), 100);
    CHECK(batch_pool_worker_index(p) == 0 || batch_pool_workers(p) == 0);
}

static void test_pool_nested_wait_one_worker(void) {
    for (int mode = 0; mode < 2; mode++) {
        batch_pool* p = make_pool(mode ? BATCH_WORKERS_INLINE : 1);
        _Atomic int hits = 0;
        batch_counter c;
        batch_counter_init(&c, p);
        CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = parent_waits, .user_data = &hits, .counter = &c }));
        CHECK_OK(batch_counter_wait(&c));
        CHECK_EQ(atomic_load(&hits), 100);
        CHECK_EQ(batch_pool_worker_index(p), -1);
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- priorities ------------------------------------------------------------------------ */
typedef struct prio_log { _Atomic int next; int order[256]; _Atomic int gate, started; } prio_log;
typedef struct prio_item { prio_log* log; int tag; } prio_item;
static void prio_record(batch_pool* p, void* u) {
    (void)p;
    prio_item* it = (prio_item*)u;
    int k = atomic_fetch_add(&it->log->next, 1);
    it->log->order[k] = it->tag;
}
static void prio_gate(batch_pool* p, void* u) {
    (void)p;
    prio_log* log = (prio_log*)u;
    atomic_store(&log->started, 1);
    while (!atomic_load(&log->gate)) batch__yield();
}

static void test_pool_priorities(void) {
    for (int mode = 0; mode < 2; mode++) {
        /* one worker held busy (or an inline pool): queued work then runs by priority, FIFO within one */
        batch_pool* p = make_pool(mode ? BATCH_WORKERS_INLINE : 1);
        prio_log log;
        memset(&log, 0, sizeof log);
        batch_counter c;
        batch_counter_init(&c, p);
        if (batch_pool_workers(p) > 0) {
            CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = prio_gate, .user_data = &log, .counter = &c }));
            while (!atomic_load(&log.started)) batch__yield();
        }
        prio_item items[200];
        uint64_t rng = test_seed;
        for (int i = 0; i < 200; i++) {
            int level = (int)(test_rand(&rng) % 5);           /* 0 CRITICAL .. 4 BACKGROUND */
            items[i].log = &log;
            items[i].tag = level * 1000 + i;                  /* sorts by level, then FIFO */
            CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = prio_record, .user_data = &items[i], .counter = &c,
                                                          .priority = (batch_priority)(level + 1) }));
        }
        atomic_store(&log.gate, 1);
        CHECK_OK(batch_counter_wait(&c));
        CHECK_EQ(atomic_load(&log.next), 200);
        for (int i = 1; i < 200; i++)
            if (log.order[i - 1] > log.order[i]) { fprintf(stderr, "order[%d]=%d before order[%d]=%d\n", i - 1, log.order[i - 1], i, log.order[i]); CHECK(0); }
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- delayed tasks --------------------------------------------------------------------- */
typedef struct delay_item { uint64_t not_before; uint64_t ran_at; _Atomic int runs; } delay_item;
static void delay_fn(batch_pool* p, void* u) {
    (void)p;
    delay_item* d = (delay_item*)u;
    d->ran_at = batch_now_ns();
    atomic_fetch_add(&d->runs, 1);
}
typedef struct delay_spawner { delay_item* items; int n; uint64_t seed; batch_counter* c; } delay_spawner;
static void delay_spawn_fn(batch_pool* p, void* u) {
    delay_spawner* s = (delay_spawner*)u;
    for (int i = 0; i < s->n; i++) {
        uint64_t d = (test_rand(&s->seed) % 40) * 1000000u;  /* 0..39 ms */
        s->items[i].not_before = batch_now_ns() + d;
        CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = delay_fn, .user_data = &s->items[i], .counter = s->c,
                                                      .delay_ns = d, .priority = (batch_priority)(i % 6) }));
    }
}

static void test_pool_delayed(void) {
    int sizes[] = { 1, 3, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 3; s++) {
        batch_pool* p = make_pool(sizes[s]);
        enum { N = 200 };
        static delay_item items[2 * N];
        memset(items, 0, sizeof items);
        batch_counter c;
        batch_counter_init(&c, p);
        uint64_t rng = test_seed + (uint64_t)s;
        /* from outside */
        for (int i = 0; i < N; i++) {
            uint64_t d = (test_rand(&rng) % 40) * 1000000u;
            items[i].not_before = batch_now_ns() + d;
            CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = delay_fn, .user_data = &items[i], .counter = &c, .delay_ns = d }));
        }
        /* from a worker */
        delay_spawner sp = { items + N, N, rng, &c };
        CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = delay_spawn_fn, .user_data = &sp, .counter = &c }));
        CHECK_OK(batch_counter_wait(&c));
        for (int i = 0; i < 2 * N; i++) {
            CHECK_EQ(atomic_load(&items[i].runs), 1);
            CHECK(items[i].ran_at >= items[i].not_before);   /* never early */
        }
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- parallel-for ------------------------------------------------------------------------ */
typedef struct pfor_ctx { _Atomic unsigned char* hits; _Alignas(8) _Atomic uint64_t sum; } pfor_ctx;
static void pfor_body(batch_pool* p, size_t b, size_t e, void* u) {
    (void)p;
    pfor_ctx* c = (pfor_ctx*)u;
    uint64_t s = 0;
    for (size_t i = b; i < e; i++) { atomic_fetch_add_explicit(&c->hits[i], 1, memory_order_relaxed); s += i; }
    atomic_fetch_add(&c->sum, s);
}

static void check_pfor(batch_pool* p, size_t n, size_t chunk) {
    pfor_ctx c;
    c.hits = (_Atomic unsigned char*)calloc(n ? n : 1, 1);
    atomic_init(&c.sum, 0);
    CHECK_OK(batch_pool_parallel_for(p, n, chunk, pfor_body, &c));
    check_all_once(c.hits, n);
    CHECK_EQ(atomic_load(&c.sum), n ? (uint64_t)n * (n - 1) / 2 : 0);
    free((void*)c.hits);
}

static void pfor_nested(batch_pool* p, size_t b, size_t e, void* u) {
    (void)u;
    for (size_t i = b; i < e; i++) check_pfor(p, 1000 + i, 7);
}

static void test_pool_parallel_for(void) {
    int sizes[] = { 1, 2, 5, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 4; s++) {
        batch_pool* p = make_pool(sizes[s]);
        size_t ns[] = { 0, 1, 2, 63, 64, 65, 1000, 100003 };
        size_t chunks[] = { 0, 1, 3, 64, 1024, 1000000 };
        for (int i = 0; i < 8; i++)
            for (int k = 0; k < 6; k++) check_pfor(p, ns[i], chunks[k]);
        /* parallel-for inside parallel-for, on workers */
        CHECK_OK(batch_pool_parallel_for(p, 16, 1, pfor_nested, NULL));
        CHECK_EQ(batch_pool_parallel_for(p, SIZE_MAX - 1, SIZE_MAX / 2, pfor_body, NULL), BATCH_ERR_INVALID);
        CHECK_EQ(batch_pool_parallel_for(NULL, 10, 1, pfor_body, NULL), BATCH_ERR_INVALID);
        CHECK_EQ(batch_pool_parallel_for(p, 10, 1, NULL, NULL), BATCH_ERR_INVALID);
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- counters --------------------------------------------------------------------------- */
static void test_pool_counter_api(void) {
    batch_pool* p = make_pool(2);
    batch_counter c;
    CHECK_EQ(batch_counter_init(NULL, p), BATCH_ERR_INVALID);
    CHECK_EQ(batch_counter_init(&c, NULL), BATCH_ERR_INVALID);
    CHECK_OK(batch_counter_init(&c, p));
    CHECK_EQ(batch_counter_done(&c), BATCH_ERR_INVALID);      /* below zero: refused */
    CHECK_EQ(batch_counter_value(&c), 0);
    CHECK_EQ(batch_counter_add(&c, 0), BATCH_ERR_INVALID);
    CHECK_OK(batch_counter_add(&c, 2));
    CHECK_EQ(batch_counter_value(&c), 2);
    CHECK_EQ(batch_counter_wait_timeout(&c, 5000000u), BATCH_ERR_TIMEOUT);
    CHECK_OK(batch_counter_done(&c));
    CHECK_OK(batch_counter_done(&c));
    CHECK_OK(batch_counter_wait(&c));
    CHECK_OK(batch_counter_wait_timeout(&c, 0));
    CHECK_EQ(batch_counter_wait(NULL), BATCH_ERR_INVALID);
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- bad input ------------------------------------------------------------------------- */
static void noop(batch_pool* p, void* u) { (void)p; (void)u; }

static void test_pool_bad_input(void) {
    batch_pool* p = (batch_pool*)1;
    CHECK_EQ(batch_pool_create(NULL, &(batch_pool_desc){0}), BATCH_ERR_INVALID);
    CHECK_EQ(batch_pool_create(&p, NULL), BATCH_ERR_INVALID);
    CHECK(p == NULL);
    batch_pool_desc bad[] = {
        { .workers = -2 }, { .workers = BATCH_MAX_WORKERS + 1 }, { .deque_capacity = 15 },
        { .deque_capacity = 17 }, { .deque_capacity = 8 }, { .deque_capacity = 1 << 25 },
        { .spin_us = -2 }, { .spin_us = 1000001 }, { .spin_us = -1000 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p = (batch_pool*)1;
        CHECK_EQ(batch_pool_create(&p, &bad[i]), BATCH_ERR_INVALID);
        CHECK(p == NULL);
    }
    CHECK_OK(batch_pool_destroy(NULL));
    CHECK_EQ(batch_pool_shutdown(NULL), BATCH_ERR_INVALID);
    CHECK_EQ(batch_pool_wait_idle(NULL), BATCH_ERR_INVALID);
    CHECK_EQ(batch_pool_get_stats(NULL, NULL), BATCH_ERR_INVALID);
    CHECK_EQ(batch_pool_workers(NULL), 0);
    CHECK_EQ(batch_pool_worker_index(NULL), -1);

    p = make_pool(2);
    batch_pool* other = make_pool(1);
    _Atomic int hits = 0;
    batch_counter c, foreign;
    batch_counter_init(&c, p);
    batch_counter_init(&foreign, other);
    /* earlier work, which bad calls must not lose */
    for (int i = 0; i < 100; i++)
        CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = child_inc, .user_data = &hits, .counter = &c, .delay_ns = (uint64_t)(i % 3) * 1000000u }));
    CHECK_EQ(batch_pool_submit(NULL, &(batch_work){ .fn = noop }), BATCH_ERR_INVALID);
    CHECK_EQ(batch_pool_submit(p, NULL), BATCH_ERR_INVALID);
    CHECK_EQ(batch_pool_submit(p, &(batch_work){ .fn = NULL, .counter = &c }), BATCH_ERR_INVALID);
    CHECK_EQ(batch_pool_submit(p, &(batch_work){ .fn = noop, .priority = BATCH_PRIORITY_COUNT_, .counter = &c }), BATCH_ERR_INVALID);
    CHECK_EQ(batch_pool_submit(p, &(batch_work){ .fn = noop, .priority = (batch_priority)-1, .counter = &c }), BATCH_ERR_INVALID);
    CHECK_EQ(batch_pool_submit(p, &(batch_work){ .fn = noop, .delay_ns = UINT64_MAX, .counter = &c }), BATCH_ERR_INVALID);
    CHECK_EQ(batch_pool_submit(p, &(batch_work){ .fn = noop, .counter = &foreign }), BATCH_ERR_INVALID);
    CHECK_EQ(batch_counter_value(&foreign), 0);
    CHECK_OK(batch_counter_wait(&c));
    CHECK_EQ(atomic_load(&hits), 100);
    CHECK_OK(batch_pool_destroy(other));
    CHECK_OK(batch_pool_shutdown(p));
    CHECK_OK(batch_pool_shutdown(p));   /* idempotent */
    CHECK_EQ(batch_pool_submit(p, &(batch_work){ .fn = noop }), BATCH_ERR_SHUTDOWN);
    CHECK_OK(batch_pool_destroy(p));
}

/* destroy/shutdown called from a task of the same pool: refused, nothing lost */
typedef struct self_destroy { batch_pool* p; _Atomic int r1, r2, r3; } self_destroy;
static void self_destroy_fn(batch_pool* p, void* u) {
    self_destroy* s = (self_destroy*)u;
    atomic_store(&s->r1, batch_pool_destroy(p));
    atomic_store(&s->r2, batch_pool_shutdown(p));
    atomic_store(&s->r3, batch_pool_wait_idle(p));
}
static void test_pool_destroy_from_task(void) {
    for (int mode = 0; mode < 2; mode++) {
        batch_pool* p = make_pool(mode ? BATCH_WORKERS_INLINE : 2);
        self_destroy s = { p, 0, 0, 0 };
        batch_counter c;
        batch_counter_init(&c, p);
        CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = self_destroy_fn, .user_data = &s, .counter = &c }));
        CHECK_OK(batch_counter_wait(&c));
        CHECK_EQ(atomic_load(&s.r1), BATCH_ERR_BUSY);
        CHECK_EQ(atomic_load(&s.r2), BATCH_ERR_BUSY);
        CHECK_EQ(atomic_load(&s.r3), BATCH_ERR_BUSY);
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- shutdown semantics ------------------------------------------------------------------ */
/* queued work - including delayed tasks and tasks submitted during the drain - all runs */
typedef struct drain_ctx { _Atomic int runs; int depth; } drain_ctx;
static void drain_fn(batch_pool* p, void* u) {
    drain_ctx* d = (drain_ctx*)u;
    atomic_fetch_add(&d->runs, 1);
    (void)d->depth;
    (void)p;
}
static void drain_spawner(batch_pool* p, void* u) {
    drain_ctx* d = (drain_ctx*)u;
    atomic_fetch_add(&d->runs, 1);
    for (int i = 0; i < 10; i++)
        CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = drain_fn, .user_data = d, .delay_ns = 3600ull * 1000000000u }));
}

static void test_pool_shutdown_drains(void) {
    int sizes[] = { 1, 4, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 3; s++) {
        batch_pool* p = make_pool(sizes[s]);
        drain_ctx d = { 0, 0 };
        for (int i = 0; i < 1000; i++)
            CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = (i % 100) ? drain_fn : drain_spawner, .user_data = &d,
                                                          .priority = (batch_priority)(i % 6),
                                                          .delay_ns = (i % 7 == 0) ? 3600ull * 1000000000u : 0 }));
        uint64_t t0 = batch_now_ns();
        CHECK_OK(batch_pool_destroy(p));   /* hour-long delays are released at once */
        CHECK(batch_now_ns() - t0 < 60ull * 1000000000u);
        CHECK_EQ(atomic_load(&d.runs), 1000 + 10 * 10);
    }
}

static void test_pool_wait_idle(void) {
    int sizes[] = { 2, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 2; s++) {
        batch_pool* p = make_pool(sizes[s]);
        drain_ctx d = { 0, 0 };
        for (int i = 0; i < 5000; i++)
            CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = drain_fn, .user_data = &d, .delay_ns = (i % 50 == 0) ? 2000000u : 0 }));
        CHECK_OK(batch_pool_wait_idle(p));
        CHECK_EQ(atomic_load(&d.runs), 5000);
        CHECK_OK(batch_pool_wait_idle(p));
        CHECK_OK(batch_pool_destroy(p));
    }
}

#if !defined(BATCH_NO_THREADS)
/* A delayed task falls due while the only worker is busy: the thread in batch_pool_wait_idle
   releases it to the queues itself (before the fix it looped on an expired deadline, a busy
   wait that kept serialised threads - valgrind - from ever running). The busy task waits until
   it sees the released task queued. */
typedef struct due_ctx { drain_ctx* delayed; _Atomic int saw_release; } due_ctx;
/* Released: queued, or already run, or moved to this worker's own deque along with this task
   (a worker that starts late finds both queued and takes them in one grab). */
static bool released(batch_pool* p, due_ctx* d) {
    return batch__pool_queued(p, ~0u) || atomic_load(&d->delayed->runs) || !batch__worker_deque_empty(batch__self(p));
}
static void wait_for_release(batch_pool* p, void* u) {
    due_ctx* d = (due_ctx*)u;
    uint64_t until = batch_now_ns() + 20ull * 1000000000u;
    while (!released(p, d) && batch_now_ns() < until) test_sleep_ns(1000000);
    atomic_store(&d->saw_release, released(p, d));
}
static void test_pool_wait_idle_releases_due(void) {
    batch_pool* p = make_pool(1);
    drain_ctx dr = { 0, 0 };
    due_ctx d = { &dr, 0 };
    CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = wait_for_release, .user_data = &d }));
    CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = drain_fn, .user_data = &dr, .delay_ns = 1000000u }));
    CHECK_OK(batch_pool_wait_idle(p));
    CHECK_EQ(atomic_load(&d.saw_release), 1);
    CHECK_EQ(atomic_load(&dr.runs), 1);
    CHECK_OK(batch_pool_destroy(p));
}

/* shutdown racing a submitting thread: every accepted task runs, then submits get SHUTDOWN */
typedef struct racer { batch_pool* p; _Atomic long accepted; _Atomic int refused; drain_ctx d; } racer;
static int racer_main(void* u) {
    racer* r = (racer*)u;
    for (;;) {
        /* a bounded backlog: where threads are serialised (valgrind) the racers would otherwise
           queue millions of tasks before the shutdown comes */
        if (atomic_load(&r->accepted) - atomic_load(&r->d.runs) > 1000) { batch__yield(); continue; }
        batch_result res = batch_pool_submit(r->p, &(batch_work){ .fn = drain_fn, .user_data = &r->d });
        if (res == BATCH_ERR_SHUTDOWN) { atomic_store(&r->refused, 1); break; }
        CHECK_OK(res);
        atomic_fetch_add(&r->accepted, 1);
    }
    return 0;
}

static void test_pool_shutdown_races_submit(void) {
    uint64_t rng = test_seed;
    for (int round = 0; round < scaled(50); round++) {
        racer r;
        memset(&r, 0, sizeof r);
        r.p = make_pool(1 + (int)(test_rand(&rng) % 4));
        batch__thread th[3];
        for (int k = 0; k < 3; k++) CHECK(batch__thread_create(&th[k], racer_main, &r));
        uint64_t wait = test_rand(&rng) % 2000000u;
        uint64_t t0 = batch_now_ns();
        while (batch_now_ns() - t0 < wait) batch__yield();
        CHECK_OK(batch_pool_shutdown(r.p));
        for (int k = 0; k < 3; k++) batch__thread_join(th[k]);
        CHECK(atomic_load(&r.refused));
        CHECK_EQ(atomic_load(&r.d.runs), atomic_load(&r.accepted));
        CHECK_OK(batch_pool_destroy(r.p));
    }
}

/* a worker waiting on a counter that another thread finishes wakes up */
typedef struct ext_done { batch_counter* c; _Atomic int waited; } ext_done;
static void wait_in_task(batch_pool* p, void* u) {
    (void)p;
    ext_done* e = (ext_done*)u;
    CHECK_OK(batch_counter_wait(e->c));
    atomic_store(&e->waited, 1);
}
static void test_pool_counter_cross_thread(void) {
    for (int round = 0; round < scaled(200); round++) {
        batch_pool* p = make_pool(2);
        batch_counter gate, c;
        batch_counter_init(&gate, p);
        batch_counter_init(&c, p);
        batch_counter_add(&gate, 1);
        ext_done e = { &gate, 0 };
        CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = wait_in_task, .user_data = &e, .counter = &c }));
        if (round & 1) { uint64_t t0 = batch_now_ns(); while (batch_now_ns() - t0 < 200000u) batch__yield(); }
        CHECK_OK(batch_counter_done(&gate));
        CHECK_OK(batch_counter_wait(&c));
        CHECK_EQ(atomic_load(&e.waited), 1);
        CHECK_OK(batch_pool_destroy(p));
    }
}

static void test_pool_thread_create_failure(void) {
    for (int k = 0; k < 4; k++) {
        atomic_store(&test_thread_creates, 0);
        atomic_store(&test_fail_thread_at, k);
        long long live = atomic_load(&test_live_bytes);
        batch_pool* p = (batch_pool*)1;
        CHECK_EQ(batch_pool_create(&p, &(batch_pool_desc){ .workers = 4 }), BATCH_ERR_THREAD);
        CHECK(p == NULL);
        CHECK_EQ(atomic_load(&test_live_bytes), live);   /* the k started workers were joined, all freed */
    }
    atomic_store(&test_fail_thread_at, -1);
}
/* ---- the spin budget ---------------------------------------------------------------------- */
static void spin_noop(batch_pool* p, void* u) { (void)p; (void)u; }
/* Runs a burst of tasks; returns the sleeps counted before it was submitted. */
static uint64_t spin_burst(batch_pool* p) {
    batch_pool_stats st;
    CHECK_OK(batch_pool_get_stats(p, &st));
    batch_counter c;
    CHECK_OK(batch_counter_init(&c, p));
    for (int i = 0; i < 64; i++) CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = spin_noop, .counter = &c }));
    CHECK_OK(batch_counter_wait(&c));
    CHECK_OK(batch_pool_wait_idle(p));
    return st.sleeps;
}
/* BATCH_SPIN_NONE: a worker woken by a burst goes to sleep again after it. A budget of 1 s: 100 ms
   after a burst no worker has gone to sleep (the budget is wall time: a descheduled worker does not overstay). */
static void test_pool_spin_budget(void) {
    batch_pool* p;
    CHECK_OK(batch_pool_create(&p, &(batch_pool_desc){ .workers = 2, .spin_us = BATCH_SPIN_NONE }));
    for (int round = 0; round < 3; round++) {
        uint64_t before = spin_burst(p);
        batch_pool_stats st = { 0 };
        for (int i = 0; i < 5000; i++) {   /* up to 5 s: the workers sleep at their next search */
            CHECK_OK(batch_pool_get_stats(p, &st));
            if (st.sleeps > before) break;
            test_sleep_ns(1000000);
        }
        CHECK(st.sleeps > before);
    }
    CHECK_OK(batch_pool_destroy(p));
    CHECK_OK(batch_pool_create(&p, &(batch_pool_desc){ .workers = 2, .spin_us = 1000000 }));
    uint64_t t0 = batch_now_ns();
    uint64_t before = spin_burst(p);
    test_sleep_ns(100000000);
    batch_pool_stats st;
    CHECK_OK(batch_pool_get_stats(p, &st));
    if (batch_now_ns() - t0 < 900000000u) CHECK_EQ(st.sleeps, before);   /* else this thread was held up */
    CHECK_OK(batch_pool_destroy(p));
}

/* Sleep and wake-up racing, over and over: workers that never spin park after every task, so
   each submit meets a worker going to sleep. A lost wake-up hangs the test (the runner's
   timeout). Tasks also hand on to tasks (a worker's notify), and waits run on workers too. */
typedef struct wake_race { batch_counter* c; int hops; } wake_race;
static void wake_race_fn(batch_pool* p, void* u) {
    wake_race* r = (wake_race*)u;
    if (r->hops-- > 0) CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = wake_race_fn, .user_data = r, .counter = r->c }));
}
static void wake_race_waiter(batch_pool* p, void* u) {
    batch_counter c;
    CHECK_OK(batch_counter_init(&c, p));
    wake_race r = { &c, 2 };
    CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = wake_race_fn, .user_data = &r, .counter = &c }));
    CHECK_OK(batch_counter_wait(&c));
    (void)u;
}
static void test_pool_wake_race(void) {
    for (int workers = 1; workers <= 3; workers++) {
        batch_pool* p;
        CHECK_OK(batch_pool_create(&p, &(batch_pool_desc){ .workers = workers, .spin_us = BATCH_SPIN_NONE }));
        for (int i = 0; i < scaled(3000); i++) {
            batch_counter c;
            CHECK_OK(batch_counter_init(&c, p));
            wake_race r = { &c, i % 3 };
            CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = (i & 4) ? wake_race_waiter : wake_race_fn, .user_data = &r,
                                                          .counter = &c }));
            CHECK_OK(batch_counter_wait(&c));
        }
        CHECK_OK(batch_pool_destroy(p));
    }
}

#define POOL_THREAD_TESTS \
    { "pool_spin_budget", test_pool_spin_budget }, \
    { "pool_wake_race", test_pool_wake_race }, \
    { "pool_wait_idle_releases_due", test_pool_wait_idle_releases_due }, \
    { "pool_shutdown_races_submit", test_pool_shutdown_races_submit }, \
    { "pool_counter_cross_thread", test_pool_counter_cross_thread }, \
    { "pool_thread_create_failure", test_pool_thread_create_failure },
#else
#define POOL_THREAD_TESTS
#endif

/* ---- churn ------------------------------------------------------------------------------- */
static void test_pool_churn(void) {
    uint64_t rng = test_seed;
    long long live = atomic_load(&test_live_bytes);
    for (int i = 0; i < scaled(1000); i++) {
        int w = (int)(test_rand(&rng) % 9) - 1;    /* -1 (inline) .. 7 */
        batch_pool* p = make_pool(w == 0 ? 1 : w);
        drain_ctx d = { 0, 0 };
        int n = (int)(test_rand(&rng) % 50);
        for (int k = 0; k < n; k++) CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = drain_fn, .user_data = &d }));
        if (test_rand(&rng) & 1) CHECK_OK(batch_pool_wait_idle(p));
        CHECK_OK(batch_pool_destroy(p));
        CHECK_EQ(atomic_load(&d.runs), n);
    }
    CHECK_EQ(atomic_load(&test_live_bytes), live);
}

/* ---- inline mode gives the same results as threads --------------------------------------- */
static void test_pool_inline_matches_threads(void) {
    batch_pool* a = make_pool(BATCH_WORKERS_INLINE);
    batch_pool* b = make_pool(3);
    CHECK_EQ(batch_pool_workers(a), 0);
    CHECK_EQ(fib_on(a, 18), fib_on(b, 18));
    check_pfor(a, 12345, 17);
    check_pfor(b, 12345, 17);
    /* inline order is deterministic: two runs record the same sequence */
    int orders[2][100];
    for (int run = 0; run < 2; run++) {
        prio_log log;
        memset(&log, 0, sizeof log);
        prio_item items[100];
        batch_counter c;
        batch_counter_init(&c, a);
        for (int i = 0; i < 100; i++) {
            items[i].log = &log;
            items[i].tag = i;
            CHECK_OK(batch_pool_submit(a, &(batch_work){ .fn = prio_record, .user_data = &items[i], .counter = &c,
                                                          .priority = (batch_priority)(i % 6) }));
        }
        CHECK_EQ(batch_counter_value(&c), 100);   /* nothing runs until someone waits */
        CHECK_OK(batch_counter_wait(&c));
        memcpy(orders[run], log.order, sizeof orders[run]);
    }
    CHECK(memcmp(orders[0], orders[1], sizeof orders[0]) == 0);
    CHECK_OK(batch_pool_destroy(a));
    CHECK_OK(batch_pool_destroy(b));
}

/* ---- allocation failure ------------------------------------------------------------------ */
static void test_pool_alloc_failure(void) {
    int sizes[] = { 1, 3, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 3; s++) {
        long long live = atomic_load(&test_live_bytes);
        for (long n = 1;; n++) {
            test_alloc_reset(TEST_FAIL_ONCE, n);
            batch_pool* p = (batch_pool*)1;
            batch_result r = batch_pool_create(&p, &(batch_pool_desc){ .workers = sizes[s] });
            test_alloc_reset(TEST_FAIL_NEVER, -1);
            if (r == BATCH_OK) {
                /* the pool works, including task memory that fails and then succeeds */
                _Atomic int hits = 0;
                batch_counter c;
                batch_counter_init(&c, p);
                test_alloc_reset(TEST_FAIL_FROM, 1);
                batch_result r2 = batch_pool_submit(p, &(batch_work){ .fn = child_inc, .user_data = &hits, .counter = &c });
                CHECK(r2 == BATCH_ERR_NOMEM);
                CHECK_EQ(batch_counter_value(&c), 0);
                test_alloc_reset(TEST_FAIL_NEVER, -1);
                CHECK_OK(batch_pool_submit(p, &(batch_work){ .fn = child_inc, .user_data = &hits, .counter = &c }));
                CHECK_OK(batch_counter_wait(&c));
                CHECK_EQ(atomic_load(&hits), 1);
                CHECK_OK(batch_pool_destroy(p));
                CHECK(n > 1);
                break;
            }
            CHECK_EQ(r, BATCH_ERR_NOMEM);
            CHECK(p == NULL);
            CHECK_EQ(atomic_load(&test_live_bytes), live);
        }
        CHECK_EQ(atomic_load(&test_live_bytes), live);
    }
}

#define POOL_TESTS \
    { "pool_bad_input", test_pool_bad_input }, \
    { "pool_counter_api", test_pool_counter_api }, \
    { "pool_million_external", test_pool_million_external }, \
    { "pool_spawn_tree", test_pool_spawn_tree }, \
    { "pool_fib", test_pool_fib }, \
    { "pool_nested_wait_one_worker", test_pool_nested_wait_one_worker }, \
    { "pool_priorities", test_pool_priorities }, \
    { "pool_delayed", test_pool_delayed }, \
    { "pool_parallel_for", test_pool_parallel_for }, \
    { "pool_destroy_from_task", test_pool_destroy_from_task }, \
    { "pool_shutdown_drains", test_pool_shutdown_drains }, \
    { "pool_wait_idle", test_pool_wait_idle }, \
    { "pool_churn", test_pool_churn }, \
    { "pool_inline_matches_threads", test_pool_inline_matches_threads }, \
    { "pool_alloc_failure", test_pool_alloc_failure }, \
    POOL_THREAD_TESTS
