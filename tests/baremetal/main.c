/* main.c - batch.h on bare metal: a Cortex-M4 (qemu-system-arm -M mps2-an386) with newlib, no OS,
   no threads. BATCH_NO_THREADS runs every pool inline; the clock is SysTick (startup.c) through
   BATCH_CLOCK_NS. Checks a map with a fold (unordered and ordered), item failures under a
   threshold, a graph with data flow, a retry after a backoff, a skipped dependent, and a deadline.
   Prints "N passed, N failed" over semihosting; exits non-zero on a failure. */
#include <stdint.h>
#include <stdio.h>
uint64_t bm_clock_ns(void);
#define BATCH_NO_THREADS
#define BATCH_CLOCK_NS() bm_clock_ns()
#define BATCH_IMPLEMENTATION
#include "../../batch.h"

static int passed, failed;
#define EXPECT(c) do { if (c) passed++; else { failed++; printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); } } while (0)

/* ---- map: sum of squares of the items not divisible by 97 (those fail) ---- */
static int sq_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)u;
    if (it->index % 97 == 0) return batch_ctx_fail(ctx, 7, "item %u", (unsigned)it->index);
    *(uint64_t*)res = (uint64_t)it->index * it->index;
    return 0;
}
static void sum_init(void* acc, void* u) { (void)u; *(uint64_t*)acc = 0; }
static void sum_fold(void* acc, const batch_item* it, const void* res, void* u) { (void)it; (void)u; *(uint64_t*)acc += *(const uint64_t*)res; }
static void sum_combine(void* acc, const void* o, void* u) { (void)u; *(uint64_t*)acc += *(const uint64_t*)o; }

static void test_map_sum(batch_pool* pool) {
    const size_t n = 5000;
    uint64_t want = 0, got = 0, nfail = 0;
    for (uint64_t i = 0; i < n; i++) { if (i % 97) want += i * i; else nfail++; }
    batch_map_summary s;
    batch_result r = batch_map_run(pool, &(batch_map_desc){ .count = n, .item_fn = sq_item, .result_size = sizeof(uint64_t),
                                                             .complexity = BATCH_COMPLEXITY_SIMPLE, .error_threshold = 0.05,
                                                             .acc_size = sizeof(uint64_t), .init_fn = sum_init,
                                                             .fold_fn = sum_fold, .combine_fn = sum_combine }, &s, &got);
    EXPECT(r == BATCH_PARTIAL);
    EXPECT(got == want);
    EXPECT(s.succeeded == n - nfail && s.failed == nfail);
    EXPECT(s.batches == (n + 49) / 50 && s.batches_failed == 0);
}

/* ---- ordered fold: a non-commutative combine (a polynomial hash) gives the serial answer ---- */
static int id_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) { (void)ctx; (void)u; *(uint32_t*)res = (uint32_t)it->index; return 0; }
static void h_init(void* acc, void* u) { (void)u; ((uint32_t*)acc)[0] = 0; ((uint32_t*)acc)[1] = 1; }
static void h_fold(void* acc, const batch_item* it, const void* res, void* u) {
    (void)it; (void)u;
    uint32_t* a = (uint32_t*)acc;
    a[0] = a[0] * 31u + *(const uint32_t*)res;   /* hash, and 31^length to append another hash */
    a[1] *= 31u;
}
static void h_combine(void* acc, const void* o, void* u) {
    (void)u;
    uint32_t* a = (uint32_t*)acc;
    const uint32_t* b = (const uint32_t*)o;
    a[0] = a[0] * b[1] + b[0];
    a[1] *= b[1];
}
static void test_map_ordered(batch_pool* pool) {
    uint32_t want = 0, got[2] = { 0, 0 };
    for (uint32_t i = 0; i < 3000; i++) want = want * 31u + i;
    batch_result r = batch_map_run(pool, &(batch_map_desc){ .count = 3000, .item_fn = id_item, .result_size = sizeof(uint32_t),
                                                             .batch_size = 64, .ordered = 1, .acc_size = sizeof got,
                                                             .init_fn = h_init, .fold_fn = h_fold, .combine_fn = h_combine }, NULL, got);
    EXPECT(r == BATCH_OK);
    EXPECT(got[0] == want);
}

/* ---- graph: a diamond with data flow, a task that fails once then succeeds, a dependent of a
   task that always fails ---- */
static int g_src(batch_ctx* ctx, void* u) { static int v; v = (int)(intptr_t)u; batch_ctx_set_output(ctx, &v); return 0; }
static int g_mul(batch_ctx* ctx, void* u) {
    static int v[2];
    int k = (int)(intptr_t)u;
    v[k] = *(int*)batch_ctx_input(ctx, 0) * (k + 2);
    batch_ctx_set_output(ctx, &v[k]);
    return 0;
}
static int g_sum(batch_ctx* ctx, void* u) {
    *(int*)u = *(int*)batch_ctx_input(ctx, 0) + *(int*)batch_ctx_input(ctx, 1);
    return 0;
}
static int g_flaky(batch_ctx* ctx, void* u) { (void)u; return batch_ctx_attempt(ctx) == 0 ? batch_ctx_fail(ctx, 5, "first try") : 0; }
static int g_bad(batch_ctx* ctx, void* u) { (void)u; return batch_ctx_fail(ctx, 9, "always"); }
static int g_never(batch_ctx* ctx, void* u) { (void)ctx; (*(int*)u)++; return 0; }

static void test_graph(batch_pool* pool) {
    batch_graph* g;
    int sum = 0, never = 0;
    EXPECT(batch_graph_create(&g, NULL) == BATCH_OK);
    batch_task src, m0, m1, join, flaky, bad, dep;
    batch_graph_add(g, &(batch_task_desc){ .fn = g_src, .user_data = (void*)(intptr_t)10, .name = "src" }, &src);
    batch_graph_add(g, &(batch_task_desc){ .fn = g_mul, .user_data = (void*)(intptr_t)0 }, &m0);
    batch_graph_add(g, &(batch_task_desc){ .fn = g_mul, .user_data = (void*)(intptr_t)1 }, &m1);
    batch_graph_add(g, &(batch_task_desc){ .fn = g_sum, .user_data = &sum }, &join);
    batch_graph_add(g, &(batch_task_desc){ .fn = g_flaky, .max_retries = 2, .retry_base_ns = 2000000 }, &flaky);
    batch_graph_add(g, &(batch_task_desc){ .fn = g_bad }, &bad);
    batch_graph_add(g, &(batch_task_desc){ .fn = g_never, .user_data = &never }, &dep);
    batch_task_precede(g, src, m0);
    batch_task_precede(g, src, m1);
    batch_task_precede(g, m0, join);
    batch_task_precede(g, m1, join);
    batch_task_precede(g, bad, dep);
    batch_job_summary s;
    uint64_t t0 = batch_now_ns();
    batch_result r = batch_graph_run(pool, g, NULL, &s);
    uint64_t took = batch_now_ns() - t0;
    EXPECT(r == BATCH_PARTIAL);
    EXPECT(sum == 10 * 2 + 10 * 3);
    EXPECT(never == 0);
    EXPECT(s.completed == 5 && s.failed == 1 && s.skipped == 1 && s.retries == 1);
    EXPECT(took >= 2000000);   /* the retry waited for its backoff on the SysTick clock */
    batch_task_info info;
    EXPECT(batch_graph_task_info(g, flaky, &info) == BATCH_OK && info.status == BATCH_TASK_COMPLETED && info.attempts == 2);
    EXPECT(batch_graph_destroy(g) == BATCH_OK);
}

/* ---- a deadline on the SysTick clock: the map stops starting batches ---- */
static int slow_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)it; (void)res; (void)u;
    uint64_t until = batch_now_ns() + 100000;   /* 100 us of "work" */
    while (batch_now_ns() < until && !batch_ctx_should_stop(ctx)) {}
    return 0;
}
static void test_deadline(batch_pool* pool) {
    batch_map_summary s;
    batch_result r = batch_map_run(pool, &(batch_map_desc){ .count = 100000, .item_fn = slow_item, .batch_size = 10,
                                                             .timeout_ns = 20000000 }, &s, NULL);
    EXPECT(r == BATCH_ERR_TIMEOUT);
    EXPECT(s.unprocessed > 0 && s.items + s.unprocessed == 100000);
}

int main(void) {
    batch_pool* pool;
    printf("batch.h on bare metal (BATCH_NO_THREADS, SysTick clock)\n");
    if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = BATCH_WORKERS_INLINE }) != BATCH_OK) return 1;
    test_map_sum(pool);
    test_map_ordered(pool);
    test_graph(pool);
    test_deadline(pool);
    EXPECT(batch_pool_destroy(pool) == BATCH_OK);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
