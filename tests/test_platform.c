/* test_platform.c - result strings, the monotonic clock, the CPU count, timed waits. */

static void test_result_strings(void) {
    CHECK(!strcmp(batch_result_string(BATCH_OK), "success"));
    CHECK(!strcmp(batch_result_string(BATCH_ERR_NOMEM), "out of memory"));
    CHECK(!strcmp(batch_result_string((batch_result)12345), "unknown result"));
    /* every code in the list has its own, non-empty text */
#define X(name, value, text) CHECK(strlen(batch_result_string(name)) > 0); CHECK_EQ((int)name, value);
    BATCH_RESULTS(X)
#undef X
}

static void test_clock_monotonic(void) {
    uint64_t prev = batch_now_ns();
    for (int i = 0; i < 100000; i++) {
        uint64_t t = batch_now_ns();
        CHECK(t >= prev);
        prev = t;
    }
    CHECK(batch_cpu_count() >= 1);
    CHECK(batch_cpu_count() <= BATCH_MAX_WORKERS);
}

#if defined(_WIN32)
/* QueryPerformanceCounter ticks to ns without overflow: counter * 1e9 would wrap after half an
   hour of uptime at 10 MHz, 5 minutes at the 3 GHz some machines report. */
static void test_qpc_ns(void) {
    CHECK_EQ(batch__qpc_ns(0, 10000000u), 0);
    CHECK_EQ(batch__qpc_ns(10000000u, 10000000u), 1000000000u);
    CHECK_EQ(batch__qpc_ns(12345678u, 10000000u), 1234567800u);
    uint64_t day = 86400u * 10000000ull;   /* a day of uptime at 10 MHz */
    CHECK(batch__qpc_ns(day + 1, 10000000u) == 86400u * 1000000000ull + 100u);
    uint64_t year3g = 365ull * 86400u * 3000000000ull + 2999999999ull;   /* a year at 3 GHz */
    CHECK(batch__qpc_ns(year3g, 3000000000u) == 365ull * 86400u * 1000000000ull + 999999999ull);
    CHECK(batch__qpc_ns(INT64_MAX, 10000000u) == (uint64_t)INT64_MAX / 10000000u * 1000000000u + 477580700u);
}
#  define PLATFORM_WIN32_TESTS { "qpc_ns", test_qpc_ns },
#else
#  define PLATFORM_WIN32_TESTS
#endif

/* The task clock: ticks to ns on the line through two pairs, clamped into the run, and the
   short-run fallback to the pool's creation. */
static void test_task_clock(void) {
    batch__clockpair origin = { 1000, 5000 }, launch = { 3000, 6000 }, end = { 5003000, 2506000 };
    batch__timebase tb = batch__timebase_make(true, origin, launch, end);   /* 2.5 ms run: its own pair */
    CHECK(tb.scale == 0.5);
    CHECK_EQ(batch__timebase_ns(&tb, 0), 0);            /* no time stays no time */
    CHECK_EQ(batch__timebase_ns(&tb, 3000), 6000);
    CHECK_EQ(batch__timebase_ns(&tb, 1003000), 506000);
    CHECK_EQ(batch__timebase_ns(&tb, 2000), 6000);      /* before the launch: the launch */
    CHECK_EQ(batch__timebase_ns(&tb, 9000000), 2506000); /* after the end: the end */
    CHECK_EQ(batch__timebase_span(&tb, 4000), 2000);
    batch__clockpair end2 = { 403000, 206000 };         /* 0.2 ms: the scale from the origin */
    tb = batch__timebase_make(true, origin, launch, end2);
    CHECK(tb.scale > 0.4999 && tb.scale < 0.5001);
    batch__clockpair stuck = { 3000, 6000 };            /* nothing moved: every time is the launch */
    tb = batch__timebase_make(true, launch, launch, stuck);
    CHECK_EQ(batch__timebase_ns(&tb, 3500), 6000);
    tb = batch__timebase_make(false, origin, launch, end);   /* no TSC: ticks are ns */
    CHECK_EQ(batch__timebase_ns(&tb, 123456789), 123456789);
    CHECK_EQ(batch__timebase_span(&tb, 77), 77);
    /* the real clocks: a pair is one instant, ticks do not go back on one thread, and 20 ms of
       sleep are 20 ms on the line through two real pairs */
    bool tsc = batch__tsc_invariant();
    batch__clockpair a = batch__clockpair_now(tsc);
    uint64_t t0 = batch__ticks(tsc), prev = t0;
    for (int i = 0; i < 1000; i++) { uint64_t t = batch__ticks(tsc); CHECK(t >= prev); prev = t; }
    test_sleep_ns(20000000);
    uint64_t t1 = batch__ticks(tsc);
    batch__clockpair b = batch__clockpair_now(tsc);
    tb = batch__timebase_make(tsc, a, a, b);
    uint64_t d = batch__timebase_ns(&tb, t1) - batch__timebase_ns(&tb, t0);
    CHECK(d >= 19900000u && d <= b.ns - a.ns);
}

#if !defined(BATCH_NO_THREADS)
static void test_timed_wait_slices(void) {
    /* a timed wait returns no earlier than its monotonic deadline, and within a slice of it */
    batch__mutex m;
    batch__cond c;
    CHECK(batch__mutex_init(&m));
    CHECK(batch__cond_init(&c));
    uint64_t t0 = batch_now_ns(), deadline = t0 + 30000000u;
    batch__mutex_lock(&m);
    while (batch_now_ns() < deadline) batch__cond_wait_slice(&c, &m, deadline);
    batch__mutex_unlock(&m);
    uint64_t t1 = batch_now_ns();
    CHECK(t1 >= deadline);
    CHECK(t1 - t0 < 2000000000u);
    batch__cond_destroy(&c);
    batch__mutex_destroy(&m);
}
#define PLATFORM_THREAD_TESTS { "timed_wait_slices", test_timed_wait_slices },
#else
#define PLATFORM_THREAD_TESTS
#endif

/* job.c's one retry rule (graph tasks and map batches): base * 2^k capped at max, jitter in
   the upper half of that delay, never past the deadline, at least 1 ns away. */
static void test_retry_due(void) {
    uint64_t rng = 0;
    const uint64_t now = 1000000000u, ms = 1000000u;
    CHECK_EQ(batch__retry_due(ms, 60000 * ms, false, 0, now, 0, &rng, 1), now + ms);
    CHECK_EQ(batch__retry_due(ms, 60000 * ms, false, 3, now, 0, &rng, 1), now + 8 * ms);
    CHECK_EQ(batch__retry_due(ms, 5 * ms, false, 10, now, 0, &rng, 1), now + 5 * ms);   /* capped */
    CHECK_EQ(batch__retry_due(ms, 5 * ms, false, 1000, now, 0, &rng, 1), now + 5 * ms); /* no overflow */
    CHECK_EQ(batch__retry_due(ms, 60000 * ms, false, 4, now, now + 3 * ms, &rng, 1), now + 3 * ms);   /* deadline */
    CHECK_EQ(batch__retry_due(ms, 60000 * ms, false, 0, now, now, &rng, 1), now + 1);   /* deadline now: settle soon */
    CHECK_EQ(batch__retry_due(0, 0, false, 0, now, 0, &rng, 1), now + 1);
    CHECK_EQ(rng, 0);   /* no jitter: the generator is untouched */
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t d = batch__retry_due(16 * ms, 60000 * ms, true, 2, now, 0, &rng, 7) - now;   /* 64 ms: [32, 64] */
        CHECK(d >= 32 * ms && d <= 64 * ms);
        if (d < lo) lo = d;
        if (d > hi) hi = d;
    }
    CHECK(rng != 0);
    CHECK(lo < 36 * ms && hi > 60 * ms);   /* spread over the range */
    CHECK_EQ(batch__retry_slice(now + 10 * ms, now), 10 * ms);
    CHECK_EQ(batch__retry_slice(now + 10000 * ms, now), BATCH__RETRY_POLL_NS);
}

/* One source of truth: the string, the parts and the number agree (batch.pc reads the string). */
static void test_version_macros(void) {
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", BATCH_VERSION_MAJOR, BATCH_VERSION_MINOR, BATCH_VERSION_PATCH);
    CHECK(!strcmp(v, BATCH_VERSION_STRING));
    CHECK_EQ(BATCH_VERSION_NUM, BATCH_VERSION_MAJOR * 10000 + BATCH_VERSION_MINOR * 100 + BATCH_VERSION_PATCH);
    CHECK(BATCH_VERSION_NUM >= 200);
}

#define PLATFORM_TESTS \
    { "version_macros", test_version_macros }, \
    { "retry_due", test_retry_due }, \
    { "result_strings", test_result_strings }, \
    { "clock_monotonic", test_clock_monotonic }, \
    { "task_clock", test_task_clock }, \
    PLATFORM_WIN32_TESTS \
    PLATFORM_THREAD_TESTS
