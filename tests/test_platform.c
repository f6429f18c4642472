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

#define PLATFORM_TESTS \
    { "result_strings", test_result_strings }, \
    { "clock_monotonic", test_clock_monotonic }, \
    PLATFORM_THREAD_TESTS
