/* test_map.c - batched maps: the threshold table, batch retries and exactly-once folds, ordered
   folds that are bit-identical for any worker count, backpressure of pull sources, the sizing
   registry, adaptive sizing logic, iterator mode, halt, cancel, bounded memory, bad input,
   and scenario B (entities). */

#include "map_check.h"   /* random maps and their checks, shared with stress.c */

/* ---- helpers ---------------------------------------------------------------------------- */
typedef struct map_rec {
    _Atomic int batches;
    int status[256];          /* per batch index */
    int retries[256];
    size_t sizes[256];
    _Atomic long folded;      /* items folded, through on_batch's acc */
} map_rec;

static void rec_on_batch(const batch_batch* b, void* u) {
    map_rec* r = (map_rec*)u;
    atomic_fetch_add(&r->batches, 1);
    if (b->batch_index < 256) {
        r->status[b->batch_index] = (int)b->status;
        r->retries[b->batch_index] = b->retries_used;
        r->sizes[b->batch_index] = b->count;
    }
    CHECK_EQ(b->succeeded + b->failed, b->count);
    CHECK_EQ(b->nerrors, b->failed);
    for (size_t k = 0; k < b->nerrors; k++) {
        CHECK(b->errors[k].index >= b->first_index && b->errors[k].index < b->first_index + b->count);
        CHECK(b->codes[b->errors[k].index - b->first_index] == b->errors[k].code);
    }
}

#define rec_on_batch_cb rec_on_batch
static int ok_item_count_only(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)ctx; (void)u;
    if (res) *(uint64_t*)res = it->index * 3;
    return 0;
}

/* fails item i when (i % 10) < fails_per_10[batch] */
typedef struct thr_ctx { map_rec rec; int fails[16]; } thr_ctx;
static int thr_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)res;
    thr_ctx* t = (thr_ctx*)u;
    size_t b = batch_ctx_batch_index(ctx);
    if ((int)(it->index % 10) < t->fails[b]) return batch_ctx_fail(ctx, 42, "item %zu of batch %zu", it->index, b);
    return 0;
}
static void thr_on_batch(const batch_batch* b, void* u) { rec_on_batch(b, &((thr_ctx*)u)->rec); }

static void test_map_threshold_table(void) {
    batch_pool* p = make_pool(2);
    /* batches of 10 with 0, 1, 5, 6, 7, 10 failures */
    thr_ctx t;
    memset(&t, 0, sizeof t);
    int fails[6] = { 0, 1, 5, 6, 7, 10 };
    memcpy(t.fails, fails, sizeof fails);
    struct { double thr; int want[6]; } rows[] = {
        { 0.6, { BATCH_BATCH_SUCCESS, BATCH_BATCH_PARTIAL_SUCCESS, BATCH_BATCH_PARTIAL_SUCCESS, BATCH_BATCH_PARTIAL_SUCCESS, BATCH_BATCH_FAILED, BATCH_BATCH_FAILED } },
        { 0.0, { BATCH_BATCH_SUCCESS, BATCH_BATCH_FAILED, BATCH_BATCH_FAILED, BATCH_BATCH_FAILED, BATCH_BATCH_FAILED, BATCH_BATCH_FAILED } },
        { 1.0, { BATCH_BATCH_SUCCESS, BATCH_BATCH_PARTIAL_SUCCESS, BATCH_BATCH_PARTIAL_SUCCESS, BATCH_BATCH_PARTIAL_SUCCESS, BATCH_BATCH_PARTIAL_SUCCESS, BATCH_BATCH_PARTIAL_SUCCESS } },
        { 0.5, { BATCH_BATCH_SUCCESS, BATCH_BATCH_PARTIAL_SUCCESS, BATCH_BATCH_PARTIAL_SUCCESS, BATCH_BATCH_FAILED, BATCH_BATCH_FAILED, BATCH_BATCH_FAILED } },
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        memset(&t.rec, 0, sizeof t.rec);
        batch_map_summary s;
        batch_result res = batch_map_run(p, &(batch_map_desc){ .count = 60, .item_fn = thr_item, .user_data = &t, .batch_size = 10,
                                                                .error_threshold = rows[r].thr, .on_batch = thr_on_batch }, &s, NULL);
        CHECK_EQ(atomic_load(&t.rec.batches), 6);
        for (int b = 0; b < 6; b++) CHECK_EQ(t.rec.status[b], rows[r].want[b]);
        CHECK_EQ(s.batches, 6);
        CHECK_EQ(s.items, 60);
        bool any_failed = false;
        int failed = 0;   /* every item of a FAILED batch counts as failed: nothing of it is folded */
        for (int b = 0; b < 6; b++) {
            any_failed |= rows[r].want[b] == BATCH_BATCH_FAILED;
            failed += rows[r].want[b] == BATCH_BATCH_FAILED ? 10 : fails[b];
        }
        CHECK_EQ(s.failed, failed);
        CHECK_EQ(s.succeeded, 60 - failed);
        CHECK_EQ(res, any_failed ? BATCH_ERR_FAILED : BATCH_PARTIAL);
        CHECK_EQ(s.status, BATCH_JOB_PARTIAL_FAILURE);
    }
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- retries and exactly-once folds -------------------------------------------------------- */
typedef struct retry_map { _Atomic int attempts[64]; int flaky_batch, flaky_times, dead_batch; map_rec rec; } retry_map;
static int retry_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    retry_map* r = (retry_map*)u;
    size_t b = batch_ctx_batch_index(ctx);
    if (it->index % 10 == 0 && b < 64) atomic_fetch_add(&r->attempts[b], 1);
    *(uint64_t*)res = it->index * 3;
    if ((int)b == r->dead_batch) return 9;
    if ((int)b == r->flaky_batch && batch_ctx_attempt(ctx) < r->flaky_times) return 8;
    return 0;
}
static void sum_init(void* acc, void* u) { (void)u; *(uint64_t*)acc = 0; }
static void sum_fold(void* acc, const batch_item* it, const void* res, void* u) {
    (void)u;
    CHECK_EQ(*(const uint64_t*)res, it->index * 3);
    *(uint64_t*)acc += it->index;
}
static void sum_combine(void* acc, const void* other, void* u) { (void)u; *(uint64_t*)acc += *(const uint64_t*)other; }
static void retry_on_batch(const batch_batch* b, void* u) { rec_on_batch(b, &((retry_map*)u)->rec); }

static void test_map_retries_fold_once(void) {
    int sizes[] = { 1, 3, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 3; s++) {
        batch_pool* p = make_pool(sizes[s]);
        retry_map r;
        memset(&r, 0, sizeof r);
        r.flaky_batch = 3; r.flaky_times = 2; r.dead_batch = 5;
        uint64_t acc = 0;
        batch_map_summary sum;
        batch_result res = batch_map_run(p, &(batch_map_desc){ .count = 100, .item_fn = retry_item, .user_data = &r, .result_size = 8,
            .batch_size = 10, .error_threshold = 0.3, .max_retries = 2, .retry_base_ns = 100000,
            .acc_size = 8, .init_fn = sum_init, .fold_fn = sum_fold, .combine_fn = sum_combine, .on_batch = retry_on_batch }, &sum, &acc);
        CHECK_EQ(res, BATCH_ERR_FAILED);
        CHECK_EQ(atomic_load(&r.attempts[3]), 3);        /* failed twice, then succeeded */
        CHECK_EQ(r.rec.retries[3], 2);
        CHECK_EQ(r.rec.status[3], BATCH_BATCH_SUCCESS);
        CHECK_EQ(atomic_load(&r.attempts[5]), 3);        /* 1 + max_retries, then FAILED */
        CHECK_EQ(r.rec.status[5], BATCH_BATCH_FAILED);
        CHECK_EQ(atomic_load(&r.attempts[0]), 1);
        /* every successful item folded exactly once; the dead batch folds nothing */
        uint64_t want = 0;
        for (uint64_t i = 0; i < 100; i++) if (i / 10 != 5) want += i;
        CHECK_EQ(acc, want);
        CHECK_EQ(sum.retries, 4);
        CHECK_EQ(sum.succeeded, 90);
        CHECK_EQ(sum.failed, 10);
        CHECK_EQ(sum.batches_failed, 1);
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- ordered folds -------------------------------------------------------------------------- */
/* mat2 and its non-commutative fold come from map_check.h (shared with stress.c) */
static int mat_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)ctx; (void)u;
    uint32_t x = (uint32_t)(it->index * 2654435761u);
    mat2 m = { x | 1, x >> 3, x >> 7, (x >> 11) | 1 };
    memcpy(res, &m, sizeof m);
    return (it->index % 17 == 5) ? 1 : 0;   /* some failures, under the threshold */
}

static mat2 ordered_fold(int workers, size_t n, int pull, size_t batch_size);
typedef struct pull_state { size_t next, n; _Atomic long live_items; long max_live; size_t bsize; } pull_state;
static int pull_counter(void* u, void** out) {
    pull_state* ps = (pull_state*)u;
    if (ps->next >= ps->n) return 0;
    *out = (void*)(uintptr_t)(ps->next++ + 1);
    return 1;
}

static mat2 ordered_fold(int workers, size_t n, int pull, size_t batch_size) {
    batch_pool* p = make_pool(workers);
    mat2 acc;
    pull_state ps = { 0, n, 0, 0, 0 };
    batch_map_summary s;
    batch_result r = batch_map_run(p, &(batch_map_desc){ .count = pull ? 0 : n, .pull_fn = pull ? pull_counter : NULL,
        .item_fn = mat_item, .user_data = &ps, .result_size = sizeof(mat2), .batch_size = batch_size, .error_threshold = 0.2,
        .ordered = 1, .acc_size = sizeof(mat2), .init_fn = mat_init, .fold_fn = mat_fold, .combine_fn = mat_combine }, &s, &acc);
    CHECK_EQ(r, BATCH_PARTIAL);
    CHECK_EQ(s.items, n);
    CHECK_OK(batch_pool_destroy(p));
    return acc;
}

static void test_map_ordered_fold_identical(void) {
    size_t n = 5000;
    /* the serial answer */
    mat2 want;
    mat_init(&want, NULL);
    for (size_t i = 0; i < n; i++) {
        if (i % 17 == 5) continue;
        batch_item it = { i, NULL };
        mat2 m;
        mat_item(NULL, &it, &m, NULL);
        mat_mul(&want, &m);
    }
    int workers[] = { 1, 2, 3, 4, 7, 8, 16, BATCH_WORKERS_INLINE };
    for (int pull = 0; pull < 2; pull++)
        for (int w = 0; w < 8; w++)
            for (size_t bs = 0; bs <= 37; bs += 37) {   /* default (n/64) and 37 */
                mat2 got = ordered_fold(workers[w], n, pull, bs);
                CHECK(memcmp(&got, &want, sizeof got) == 0);
            }
}

static void test_map_unordered_sum(void) {
    uint64_t rng = test_seed;
    for (int round = 0; round < scaled(40); round++) {
        int w = (int)(test_rand(&rng) % 9);
        batch_pool* p = make_pool(w ? w : BATCH_WORKERS_INLINE);
        size_t n = (size_t)(test_rand(&rng) % 200000);
        retry_map r;
        memset(&r, 0, sizeof r);
        r.flaky_batch = r.dead_batch = -1;
        uint64_t acc = 0;
        batch_map_summary s;
        CHECK_OK(batch_map_run(p, &(batch_map_desc){ .count = n, .item_fn = retry_item, .user_data = &r, .result_size = 8,
            .acc_size = 8, .init_fn = sum_init, .fold_fn = sum_fold, .combine_fn = sum_combine,
            .max_in_flight = 1 + (int)(test_rand(&rng) % 8), .max_concurrent_batches = (int)(test_rand(&rng) % 3) }, &s, &acc));
        CHECK_EQ(acc, (uint64_t)n * (n ? n - 1 : 0) / 2);
        CHECK_EQ(s.items, n);
        CHECK_EQ(s.succeeded, n);
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* random maps against the serial model (map_check.h; stress.c runs many more) */
static void test_map_random(void) {
    uint64_t rng = test_seed ^ 0x3A9;
    batch_pool* inl = make_pool(BATCH_WORKERS_INLINE);
    for (int round = 0; round < scaled(60); round++) {
        int w = (int)(test_rand(&rng) % 9);
        batch_pool* p = make_pool(w ? w : BATCH_WORKERS_INLINE);
        mc_run(p, inl, &rng, 5000);
        CHECK_OK(batch_pool_destroy(p));
    }
    CHECK_OK(batch_pool_destroy(inl));
}

/* ---- backpressure and memory ------------------------------------------------------------- */
static int pull_tracked(void* u, void** out) {
    pull_state* ps = (pull_state*)u;
    if (ps->next >= ps->n) return 0;
    *out = (void*)(uintptr_t)(++ps->next);
    long live = atomic_fetch_add(&ps->live_items, 1) + 1;
    if (live > ps->max_live) ps->max_live = live;
    return 1;
}
static int ok_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)ctx; (void)u;
    CHECK(it->ptr == (void*)(uintptr_t)(it->index + 1));
    if (res) *(uint64_t*)res = it->index * 3;
    return 0;
}
static void tracked_on_batch(const batch_batch* b, void* u) {
    pull_state* ps = (pull_state*)u;
    atomic_fetch_sub(&ps->live_items, (long)b->count);
    CHECK(b->items != NULL);
}

static void test_map_pull_backpressure(void) {
    int sizes[] = { 1, 4, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 3; s++) {
        batch_pool* p = make_pool(sizes[s]);
        pull_state ps = { 0, 10007, 0, 0, 5 };
        batch_map_summary sum;
        CHECK_OK(batch_map_run(p, &(batch_map_desc){ .pull_fn = pull_tracked, .item_fn = ok_item, .user_data = &ps,
                                                      .batch_size = 5, .max_in_flight = 2, .on_batch = tracked_on_batch }, &sum, NULL));
        CHECK(ps.max_live <= 2 * 5);   /* never more than 2 batches of 5 alive */
        CHECK_EQ(sum.items, 10007);
        CHECK(sum.peak_concurrent_batches <= 2);
        CHECK_OK(batch_pool_destroy(p));
    }
}

static long long mem_peak;
static void mem_on_batch(const batch_batch* b, void* u) {
    (void)b; (void)u;
    long long live = atomic_load(&test_live_bytes);
    if (live > mem_peak) mem_peak = live;
}
static void test_map_memory_bounded(void) {
    long long base = atomic_load(&test_live_bytes);
    batch_pool* p = make_pool(2);
    size_t ns[2] = { 10000, (size_t)scaled(2000000) };
    long long peaks[2];
    for (int k = 0; k < 2; k++) {
        pull_state ps = { 0, ns[k], 0, 0, 0 };
        mem_peak = base;
        uint64_t acc = 0;
        CHECK_OK(batch_map_run(p, &(batch_map_desc){ .pull_fn = pull_counter, .item_fn = ok_item, .user_data = &ps, .result_size = 8,
            .acc_size = 8, .init_fn = sum_init, .fold_fn = sum_fold, .combine_fn = sum_combine, .on_batch = mem_on_batch, .batch_size = 256 }, NULL, &acc));
        CHECK_EQ(acc, (uint64_t)ns[k] * (ns[k] - 1) / 2);
        peaks[k] = mem_peak - base;
    }
    /* 200x the input, the same memory (slots are reused): growth stays under a few KiB */
    CHECK(peaks[1] - peaks[0] < 64 * 1024);
    CHECK_OK(batch_pool_destroy(p));   /* the pool keeps its task slabs until then */
    CHECK_EQ(atomic_load(&test_live_bytes), base);
}

/* ---- sizing ---------------------------------------------------------------------------------- */
static void test_map_sizing_registry(void) {
    batch_sizing* reg;
    CHECK_OK(batch_sizing_create(&reg, &(batch_sizing_desc){ .class_size = { 10 }, .min_size = 2, .max_size = 100 }));
    CHECK_EQ(batch_sizing_class_size(reg, BATCH_COMPLEXITY_SIMPLE), 50);
    CHECK_EQ(batch_sizing_class_size(reg, BATCH_COMPLEXITY_MODERATE), 20);
    CHECK_EQ(batch_sizing_class_size(reg, BATCH_COMPLEXITY_COMPLEX), 10);
    CHECK_EQ(batch_sizing_class_size(reg, BATCH_COMPLEXITY_VERY_COMPLEX), 5);
    CHECK_EQ(batch_sizing_class_size(reg, BATCH_COMPLEXITY_COUNT_), 0);
    const char* moderate[] = { "D1-Q1", "D1-Q2", "D2-Q1" };
    const char* complex_[] = { "D2-Q3", "D3-Q1", "D4-Q2" };
    const char* very[] = { "D2-Q2", "D3-Q2", "D3-Q3", "D3-Q4", "D3-Q5", "D4-Q1", "D5-Q2" };
    for (int i = 0; i < 3; i++) CHECK_OK(batch_sizing_set(reg, moderate[i], BATCH_COMPLEXITY_MODERATE));
    for (int i = 0; i < 3; i++) CHECK_OK(batch_sizing_set(reg, complex_[i], BATCH_COMPLEXITY_COMPLEX));
    for (int i = 0; i < 7; i++) CHECK_OK(batch_sizing_set(reg, very[i], BATCH_COMPLEXITY_VERY_COMPLEX));
    CHECK_EQ(batch_sizing_size(reg, "D1-Q2"), 20);
    CHECK_EQ(batch_sizing_size(reg, "D4-Q2"), 10);
    CHECK_EQ(batch_sizing_size(reg, "D3-Q4"), 5);
    CHECK_EQ(batch_sizing_size(reg, "D9-Q9"), 10);            /* unknown: the default */
    CHECK_EQ(batch_sizing_class(reg, "D9-Q9"), BATCH_COMPLEXITY_DEFAULT);
    CHECK_EQ(batch_sizing_set(reg, NULL, BATCH_COMPLEXITY_SIMPLE), BATCH_ERR_INVALID);
    CHECK_EQ(batch_sizing_set(reg, "x", BATCH_COMPLEXITY_COUNT_), BATCH_ERR_INVALID);
    batch_sizing* bad = (batch_sizing*)1;
    CHECK_EQ(batch_sizing_create(&bad, &(batch_sizing_desc){ .min_size = 10, .max_size = 5 }), BATCH_ERR_INVALID);
    CHECK(bad == NULL);
    /* clamping */
    batch_sizing* tight;
    CHECK_OK(batch_sizing_create(&tight, &(batch_sizing_desc){ .min_size = 8, .max_size = 30 }));
    CHECK_EQ(batch_sizing_class_size(tight, BATCH_COMPLEXITY_SIMPLE), 30);
    CHECK_EQ(batch_sizing_class_size(tight, BATCH_COMPLEXITY_VERY_COMPLEX), 8);
    CHECK_OK(batch_sizing_destroy(tight));
    /* a map with a key uses the class size */
    batch_pool* p = make_pool(2);
    map_rec rec;
    memset(&rec, 0, sizeof rec);
    CHECK_OK(batch_map_run(p, &(batch_map_desc){ .count = 47, .item_fn = ok_item_count_only, .user_data = &rec,
                                                  .sizing = reg, .key = "D3-Q2", .on_batch = rec_on_batch_cb }, NULL, NULL));
    CHECK_EQ(atomic_load(&rec.batches), 10);   /* 9 x 5 + 2 */
    CHECK_EQ(rec.sizes[0], 5);
    /* remembered cost: an adaptive map under a new key records it */
    CHECK_EQ(batch_sizing_cost(reg, "adaptive-key"), 0);
    CHECK_OK(batch_map_run(p, &(batch_map_desc){ .count = 5000, .item_fn = ok_item_count_only, .user_data = &rec,
                                                  .sizing = reg, .key = "adaptive-key" }, NULL, NULL));
    CHECK(batch_sizing_cost(reg, "adaptive-key") > 0);
    CHECK_OK(batch_sizing_record_cost(reg, "k2", 1000));
    CHECK_OK(batch_sizing_record_cost(reg, "k2", 3000));
    CHECK_EQ(batch_sizing_cost(reg, "k2"), 2000);
    CHECK_OK(batch_pool_destroy(p));
    CHECK_OK(batch_sizing_destroy(reg));
    CHECK_OK(batch_sizing_destroy(NULL));   /* every destroy: NULL is a no-op, BATCH_OK */
}

static void test_map_adaptive_logic(void) {
    /* white box: the size follows target / cost, clamped, and keeps 4 batches per thread ahead */
    batch__mjob m;
    memset(&m, 0, sizeof m);
    m.adaptive = true;
    m.min_b = 1; m.max_b = 4096; m.threads = 2; m.target_ns = 200000; m.size = 16;
    m.d.count = 1000000;
    CHECK_EQ(batch__map_next_size(&m), 16);          /* nothing measured yet */
    m.ema_ns = 1000 * 16;                            /* 1 us per item */
    CHECK_EQ(batch__map_next_size(&m), 200);
    m.ema_ns = 10 * 16;                              /* 10 ns: 20000, clamped */
    CHECK_EQ(batch__map_next_size(&m), 4096);
    m.next_item = m.d.count - 800;                   /* near the end: 800 / (4 x 2) */
    m.ema_ns = 1000 * 16;
    CHECK_EQ(batch__map_next_size(&m), 100);
    m.next_item = m.d.count - 3;
    CHECK_EQ(batch__map_next_size(&m), 1);
    /* and a real run converges near target / cost: the final size is within 4x of it */
    batch_pool* p = make_pool(2);
    batch_map_summary s;
    CHECK_OK(batch_map_run(p, &(batch_map_desc){ .count = (size_t)scaled(400000), .item_fn = ok_item_count_only, .user_data = NULL,
                                                  .target_batch_ns = 50000 }, &s, NULL));
    CHECK(s.final_batch_size >= 1);
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- iterator, halt, cancel, timeout -------------------------------------------------------- */
static void test_map_iterator(void) {
    int sizes[] = { 1, 3, BATCH_WORKERS_INLINE };
    for (int s = 0; s < 3; s++) {
        for (int ordered = 0; ordered < 2; ordered++) {
            batch_pool* p = make_pool(sizes[s]);
            batch_job* job;
            pull_state ps = { 0, 1000, 0, 0, 0 };
            CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .pull_fn = pull_counter, .item_fn = ok_item, .user_data = &ps, .result_size = 8,
                                                            .batch_size = 7, .max_in_flight = 3, .iterate = 1, .ordered = ordered }, &job));
            const batch_batch* b;
            size_t items = 0, expect_index = 0;
            for (;;) {
                CHECK_OK(batch_map_next(job, &b));
                if (!b) break;
                if (ordered) CHECK_EQ(b->batch_index, expect_index++);
                for (size_t i = 0; i < b->count; i++) CHECK_EQ(((const uint64_t*)(const void*)b->results)[i], b->items[i].index * 3);
                items += b->count;
            }
            CHECK_EQ(items, 1000);
            CHECK_OK(batch_map_next(job, &b));   /* still over */
            CHECK(b == NULL);
            batch_map_summary sum;
            CHECK_OK(batch_map_wait(job, &sum, NULL));
            CHECK_EQ(sum.items, 1000);
            CHECK_OK(batch_job_destroy(job));
            /* a consumer that stops early: wait releases the rest, the map still completes */
            CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 1000, .item_fn = ok_item_count_only, .batch_size = 7,
                                                            .max_in_flight = 2, .iterate = 1, .ordered = ordered }, &job));
            CHECK_OK(batch_map_next(job, &b));
            CHECK(b != NULL);
            CHECK_OK(batch_map_wait(job, &sum, NULL));
            CHECK_EQ(sum.items, 1000);
            CHECK_OK(batch_job_destroy(job));
            CHECK_OK(batch_pool_destroy(p));
        }
    }
}

static int half_fail(batch_ctx* ctx, const batch_item* it, void* res, void* u) { (void)ctx; (void)res; (void)u; return (int)(it->index & 1); }
static int slowish(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)it; (void)res; (void)u;
    uint64_t t0 = batch_now_ns();
    while (batch_now_ns() - t0 < 20000u && !batch_ctx_should_stop(ctx)) {}
    return 0;
}

static batch_job* _Atomic cancel_from_item;
/* Item 1000 cancels its own map (waiting first for the job pointer the launcher stores). */
static int cancelling_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    if (it->index == 1000) {
        batch_job* job;
        while (!(job = atomic_load(&cancel_from_item))) batch__yield();
        CHECK_OK(batch_job_cancel(job));
    }
    return slowish(ctx, it, res, u);
}

static void test_map_halt_cancel_timeout(void) {
    batch_pool* p = make_pool(2);
    batch_map_summary s;
    /* halt: half the items fail, the ratio passes 0.2 after the first batches */
    CHECK_EQ(batch_map_run(p, &(batch_map_desc){ .count = 100000, .item_fn = half_fail, .batch_size = 10, .error_threshold = 1.0,
                                                  .halt_error_ratio = 0.2, .max_in_flight = 2 }, &s, NULL), BATCH_ERR_FAILED);
    CHECK_EQ(s.status, BATCH_JOB_FAILED);
    CHECK(s.unprocessed > 0);
    CHECK_EQ(s.items + s.unprocessed, 100000);
    /* cancel, from an item half-way through (deterministic even under valgrind, where a
       cancel timed by the clock could land after the end) */
    batch_job* job;
    atomic_store(&cancel_from_item, NULL);
    CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 200000, .item_fn = cancelling_item, .batch_size = 10 }, &job));
    atomic_store(&cancel_from_item, job);
    CHECK_EQ(batch_map_wait(job, &s, NULL), BATCH_ERR_CANCELLED);
    CHECK_OK(batch_job_cancel(job));   /* again, after the end: changes nothing */
    CHECK_EQ(s.status, BATCH_JOB_CANCELLED);
    CHECK_EQ(s.items + s.unprocessed, 200000);
    batch_job_summary js;
    CHECK_EQ(batch_job_wait(job, &js), BATCH_ERR_CANCELLED);
    CHECK_EQ(js.completed + js.failed + js.cancelled, 200000);
    CHECK_OK(batch_job_destroy(job));
    /* timeout */
    CHECK_EQ(batch_map_run(p, &(batch_map_desc){ .count = 200000, .item_fn = slowish, .batch_size = 10, .timeout_ns = 5000000u }, &s, NULL),
             BATCH_ERR_TIMEOUT);
    CHECK(s.unprocessed > 0);
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- bad input ---------------------------------------------------------------------------- */
static void test_map_bad_input(void) {
    batch_pool* p = make_pool(1);
    batch_job* job = (batch_job*)1;
    double nan = 0.0 / 0.0;
    batch_map_desc bad[] = {
        { .count = 10 },                                                                      /* no item_fn */
        { .count = SIZE_MAX / 2, .item_fn = ok_item_count_only, .result_size = 16 },          /* N x result_size overflow */
        { .count = 10, .item_fn = ok_item_count_only, .min_batch = 10, .max_batch = 5 },
        { .count = 10, .item_fn = ok_item_count_only, .error_threshold = -0.1 },
        { .count = 10, .item_fn = ok_item_count_only, .error_threshold = 1.5 },
        { .count = 10, .item_fn = ok_item_count_only, .error_threshold = nan },
        { .count = 10, .item_fn = ok_item_count_only, .halt_error_ratio = nan },
        { .count = 10, .item_fn = ok_item_count_only, .acc_size = 8 },                        /* acc without fold */
        { .count = 10, .item_fn = ok_item_count_only, .fold_fn = sum_fold },                  /* fold without acc */
        { .count = 10, .item_fn = ok_item_count_only, .max_retries = -1 },
        { .count = 10, .item_fn = ok_item_count_only, .max_retries = 5000 },
        { .count = 10, .item_fn = ok_item_count_only, .max_in_flight = -1 },
        { .count = 10, .item_fn = ok_item_count_only, .max_concurrent_batches = -3 },
        { .count = 10, .item_fn = ok_item_count_only, .iterate = 1, .on_batch = rec_on_batch_cb },
        { .count = 10, .item_fn = ok_item_count_only, .priority = BATCH_PRIORITY_COUNT_ },
        { .count = 10, .item_fn = ok_item_count_only, .complexity = BATCH_COMPLEXITY_COUNT_ },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        job = (batch_job*)1;
        CHECK_EQ(batch_map_launch(p, &bad[i], &job), BATCH_ERR_INVALID);
        CHECK(job == NULL);
    }
    CHECK_EQ(batch_map_launch(NULL, &bad[2], &job), BATCH_ERR_INVALID);
    CHECK_EQ(batch_map_launch(p, NULL, &job), BATCH_ERR_INVALID);
    CHECK_EQ(batch_map_launch(p, &bad[2], NULL), BATCH_ERR_INVALID);
    const batch_batch* b;
    CHECK_EQ(batch_map_next(NULL, &b), BATCH_ERR_INVALID);
    CHECK_EQ(batch_map_wait(NULL, NULL, NULL), BATCH_ERR_INVALID);
    /* a graph job is not a map */
    batch_graph* g = make_graph();
    add_task(g, task_ok, NULL, NULL);
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    CHECK_EQ(batch_map_next(job, &b), BATCH_ERR_INVALID);
    batch_map_summary ms;
    memset(&ms, 0x5a, sizeof ms);
    CHECK_EQ(batch_map_wait(job, &ms, NULL), BATCH_ERR_INVALID);   /* and changes nothing */
    CHECK_EQ(ms.status, 0x5a5a5a5a);
    CHECK_OK(batch_job_wait(job, NULL));                            /* the job itself is fine */
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));
    /* an empty map completes at once */
    batch_map_summary s;
    CHECK_OK(batch_map_run(p, &(batch_map_desc){ .count = 0, .item_fn = ok_item_count_only }, &s, NULL));
    CHECK_EQ(s.items, 0);
    CHECK_EQ(s.batches, 0);
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- scenario B: entities ---------------------------------------------------------------- */
typedef struct entity_score { double total; long count; } entity_score;
static int entity_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)u;
    /* entity i scores i % 7; every 9th entity is malformed */
    if (it->index % 9 == 4) return batch_ctx_fail(ctx, 22, "entity %zu: missing field", it->index);
    *(double*)res = (double)(it->index % 7);
    return 0;
}
static void score_init(void* acc, void* u) { (void)u; memset(acc, 0, sizeof(entity_score)); }
static void score_fold(void* acc, const batch_item* it, const void* res, void* u) {
    (void)it; (void)u;
    entity_score* a = (entity_score*)acc;
    a->total += *(const double*)res;
    a->count++;
}
static void score_combine(void* acc, const void* o, void* u) {
    (void)u;
    entity_score* a = (entity_score*)acc;
    const entity_score* b = (const entity_score*)o;
    a->total += b->total;
    a->count += b->count;
}

static void test_map_scenario_b(void) {
    batch_pool* p = make_pool(4);
    map_rec rec;
    memset(&rec, 0, sizeof rec);
    entity_score acc;
    batch_map_summary s;
    batch_result r = batch_map_run(p, &(batch_map_desc){ .count = 100, .item_fn = entity_item, .user_data = &rec, .result_size = sizeof(double),
        .batch_size = 10, .error_threshold = 0.3, .max_retries = 2, .retry_base_ns = 100000, .max_concurrent_batches = 4,
        .acc_size = sizeof acc, .init_fn = score_init, .fold_fn = score_fold, .combine_fn = score_combine,
        .on_batch = rec_on_batch_cb }, &s, &acc);
    CHECK_EQ(r, BATCH_PARTIAL);
    CHECK_EQ(s.batches, 10);
    CHECK_EQ(s.failed, 11);            /* indices 4, 13, ..., 94 */
    CHECK_EQ(s.succeeded, 89);
    CHECK_EQ(acc.count, 89);
    double want = 0;
    for (int i = 0; i < 100; i++) if (i % 9 != 4) want += i % 7;
    CHECK(acc.total == want);
    CHECK(s.peak_concurrent_batches <= 4);
    CHECK_OK(batch_pool_destroy(p));
}

/* A map item's permanent failure stops its FAILED batch's retries; an item cancels its map. */
static int perm_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)u;
    *(uint64_t*)res = it->index * 3;
    if (it->index == 15) return batch_ctx_fail_permanent(ctx, 4, NULL);   /* batch 1 of 10 */
    if (it->index / 10 == 1 || it->index / 10 == 3) return 5;         /* batches 1 and 3 FAILED */
    return 0;
}
static int cancel_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)u;
    *(uint64_t*)res = it->index * 3;
    if (it->index == 50) CHECK_OK(batch_job_cancel(batch_ctx_job(ctx)));
    /* the graph data-flow calls are no-ops in a map item (it has no graph) */
    batch_ctx_set_output(ctx, res);
    CHECK(batch_ctx_input_count(ctx) == 0 && batch_ctx_input(ctx, 0) == NULL);
    CHECK(batch_ctx_output_of(ctx, (batch_task){ 1, 1 }) == NULL);
    return 0;
}
static void test_map_permanent_and_own_job(void) {
    for (int w = 0; w < 2; w++) {
        batch_pool* p = make_pool(w ? 2 : BATCH_WORKERS_INLINE);
        map_rec rec;
        memset(&rec, 0, sizeof rec);
        batch_map_summary s;
        batch_map_desc d = { .count = 50, .item_fn = perm_item, .user_data = &rec, .result_size = 8, .batch_size = 10,
                             .error_threshold = 0.5, .max_retries = 3, .retry_base_ns = 1000, .on_batch = rec_on_batch };
        CHECK_EQ(batch_map_run(p, &d, &s, NULL), BATCH_ERR_FAILED);
        CHECK_EQ(rec.retries[1], 0);   /* permanent: not retried */
        CHECK_EQ(rec.retries[3], 3);   /* the other FAILED batch used its retries */
        CHECK_EQ(s.batches_failed, 2);
        CHECK_EQ(s.retries, 3);
        /* an item cancels the map it belongs to (batches of 10, one at a time) */
        batch_map_desc c = { .count = 1000, .item_fn = cancel_item, .result_size = 8, .batch_size = 10, .max_in_flight = 1 };
        CHECK_EQ(batch_map_run(p, &c, &s, NULL), BATCH_ERR_CANCELLED);
        CHECK(s.unprocessed > 0 && s.items + s.unprocessed == 1000);
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- a FAILED batch counts all its items as failed (issue 15) -------------------------------
   Nothing of a FAILED batch is folded, so none of its items counts as succeeded: in the
   summary, the success rate, the halt ratio, batch_job_wait's counts and progress alike. The
   delivered batch itself still shows its last attempt (9 succeeded, 1 failed). */
typedef struct fb_map { _Atomic int attempts; _Atomic int views_ok; int fail_all_batches; } fb_map;
static int fb_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)ctx; (void)res;
    fb_map* f = (fb_map*)u;
    if (it->index == 0) atomic_fetch_add(&f->attempts, 1);
    return (it->index % 10 == 0 && (f->fail_all_batches || it->index == 0)) ? 5 : 0;
}
static void fb_count_fold(void* acc, const batch_item* it, const void* res, void* u) { (void)it; (void)res; (void)u; ++*(uint64_t*)acc; }
static void fb_on_batch(const batch_batch* b, void* u) {
    if (b->status == BATCH_BATCH_FAILED && b->succeeded == 9 && b->failed == 1 && b->acc == NULL)
        atomic_fetch_add(&((fb_map*)u)->views_ok, 1);
}
static void fb_check_counts(batch_job* job, const batch_map_summary* s, uint64_t folded, uint64_t items) {
    CHECK_EQ(folded, 0);
    CHECK_EQ(s->succeeded, 0);
    CHECK_EQ(s->failed, items);
    CHECK_EQ(s->items, items);
    CHECK(s->success_rate == 0.0);
    batch_job_summary js;
    CHECK_EQ(batch_job_wait(job, &js), s->result);
    CHECK_EQ(js.completed, 0);
    CHECK_EQ(js.failed, items);
    batch_progress pr;
    CHECK_OK(batch_job_progress(job, &pr));
    CHECK_EQ(pr.succeeded, 0);
    CHECK_EQ(pr.failed, items);
}
static void test_map_failed_batch_counts(void) {
    const int kinds[3] = { 1, 2, BATCH_WORKERS_INLINE };
    for (int k = 0; k < 3; k++) {
        batch_pool* p = make_pool(kinds[k]);
        /* 3 batches of 10, one failing item each, threshold 0: all FAILED after their retry */
        fb_map f = { 0, 0, 1 };
        batch_map_desc d = { .count = 30, .item_fn = fb_item, .user_data = &f, .batch_size = 10, .max_retries = 1,
                             .retry_base_ns = 1000, .acc_size = 8, .init_fn = sum_init, .fold_fn = fb_count_fold,
                             .combine_fn = sum_combine, .on_batch = fb_on_batch };
        batch_job* job;
        uint64_t folded = 99;
        batch_map_summary s;
        CHECK_OK(batch_map_launch(p, &d, &job));
        CHECK_EQ(batch_map_wait(job, &s, &folded), BATCH_ERR_FAILED);
        CHECK_EQ(s.status, BATCH_JOB_FAILED);
        CHECK_EQ(s.batches_failed, 3);
        CHECK_EQ(s.retries, 3);
        CHECK_EQ(atomic_load(&f.views_ok), 3);
        fb_check_counts(job, &s, folded, 30);
        CHECK_OK(batch_job_destroy(job));
        /* the halt ratio counts them too: batch 0 FAILED (1 failing item of 10) is 10 failed of 10 */
        fb_map h = { 0, 0, 0 };
        d.user_data = &h;
        d.on_batch = NULL;
        d.max_retries = 0;
        d.ordered = 1;
        d.max_in_flight = 1;
        d.halt_error_ratio = 0.5;
        CHECK_OK(batch_map_launch(p, &d, &job));
        CHECK_EQ(batch_map_wait(job, &s, &folded), BATCH_ERR_FAILED);
        CHECK_EQ(s.unprocessed, 20);
        fb_check_counts(job, &s, folded, 10);
        CHECK_OK(batch_job_destroy(job));
        CHECK_OK(batch_pool_destroy(p));
    }
    /* a cancel, or the deadline, settles a FAILED batch waiting for its retry: the same (needs
       workers: the batch runs while this thread waits to cancel) */
    for (int timeout = 0; timeout < 2; timeout++) {
        batch_pool* p = make_pool(2);
        if (batch_pool_workers(p) == 0) { CHECK_OK(batch_pool_destroy(p)); break; }
        fb_map f = { 0, 0, 1 };
        batch_map_desc d = { .count = 10, .item_fn = fb_item, .user_data = &f, .batch_size = 10, .max_retries = 3,
                             .retry_base_ns = 2000000000u, .timeout_ns = timeout ? 100000000u : 0, .acc_size = 8,
                             .init_fn = sum_init, .fold_fn = fb_count_fold, .combine_fn = sum_combine };
        batch_job* job;
        uint64_t folded = 99;
        batch_map_summary s;
        CHECK_OK(batch_map_launch(p, &d, &job));
        while (atomic_load(&f.attempts) == 0) test_sleep_ns(1000000u);
        test_sleep_ns(10000000u);
        if (!timeout) CHECK_OK(batch_job_cancel(job));
        CHECK_EQ(batch_map_wait(job, &s, &folded), timeout ? BATCH_ERR_TIMEOUT : BATCH_ERR_CANCELLED);
        CHECK_EQ(s.batches_failed, 1);
        CHECK_EQ(s.retries, 0);
        fb_check_counts(job, &s, folded, 10);
        CHECK_OK(batch_job_destroy(job));
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- what api.h says of a stop (issue 15): summary.items counts the items that ran, not the
   input; an item that stops on batch_ctx_should_stop and returns a code counts as failed, is not
   folded and is not retried. Item 25 cancels its map (batches of 10, one at a time). */
static int stop_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)res; (void)u;
    if (batch_ctx_should_stop(ctx)) return batch_ctx_fail(ctx, 99, "stopped at %zu", it->index);
    if (it->index == 25) CHECK_OK(batch_job_cancel(batch_ctx_job(ctx)));
    return 0;
}
static void test_map_stop_semantics(void) {
    const int kinds[3] = { 1, 2, BATCH_WORKERS_INLINE };
    for (int k = 0; k < 3; k++) {
        batch_pool* p = make_pool(kinds[k]);
        uint64_t folded = 0;
        batch_map_summary s;
        CHECK_EQ(batch_map_run(p, &(batch_map_desc){ .count = 100, .item_fn = stop_item, .batch_size = 10, .max_in_flight = 1,
                                                     .max_retries = 3, .retry_base_ns = 1000, .acc_size = 8, .init_fn = sum_init,
                                                     .fold_fn = fb_count_fold, .combine_fn = sum_combine }, &s, &folded),
                 BATCH_ERR_CANCELLED);
        CHECK_EQ(s.items, 30);          /* batches 0-2 ran; 3-9 never started */
        CHECK_EQ(s.unprocessed, 70);
        CHECK_EQ(s.batches, 3);
        CHECK_EQ(s.batches_failed, 1);  /* batch 2: items 26-29 stopped with a code */
        CHECK_EQ(s.retries, 0);         /* no retry after a stop */
        CHECK_EQ(s.succeeded, 20);
        CHECK_EQ(s.failed, 10);
        CHECK_EQ(folded, 20);
        CHECK_EQ(s.status, BATCH_JOB_CANCELLED);
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* Map batch retries with jitter: a retried batch waits a random point of [base / 2, base]. */
typedef struct jit_ctx { _Alignas(8) _Atomic uint64_t first_ns, second_ns; } jit_ctx;
static int jit_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)it; (void)res;
    jit_ctx* j = (jit_ctx*)u;
    uint64_t now = batch_now_ns();
    if (batch_ctx_attempt(ctx) == 0) { uint64_t z = 0; atomic_compare_exchange_strong(&j->first_ns, &z, now); return 3; }
    uint64_t z = 0;
    atomic_compare_exchange_strong(&j->second_ns, &z, now);
    return 0;
}
static void test_map_retry_jitter(void) {
    for (int w = 0; w <= 2; w++) {
        batch_pool* p = make_pool(w == 0 ? BATCH_WORKERS_INLINE : w);
        jit_ctx j;
        atomic_init(&j.first_ns, 0);
        atomic_init(&j.second_ns, 0);
        batch_map_summary s;
        CHECK_OK(batch_map_run(p, &(batch_map_desc){ .count = 1, .item_fn = jit_item, .user_data = &j, .batch_size = 1,
                                                      .max_retries = 1, .retry_base_ns = 40000000u, .retry_jitter = 1 }, &s, NULL));
        CHECK_EQ(s.retries, 1);
        CHECK_EQ(s.succeeded, 1);
        CHECK(atomic_load(&j.second_ns) - atomic_load(&j.first_ns) >= 20000000u);   /* at least half the base */
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- the seam mpi.c drives (map.c), wired in one process --------------------------------- */
/* Order-sensitive fold: a polynomial hash of the results in item order; (h, p) pairs combine
   associatively, not commutatively. */
static int seam_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)u;
    *(uint64_t*)res = it->index * 2654435761u + 1;
    if (it->index % 53 == 7) return batch_ctx_fail(ctx, 3, "bad %zu", it->index);
    if (batch_ctx_batch_index(ctx) % 5 == 2 && batch_ctx_attempt(ctx) == 0) return batch_ctx_fail(ctx, 4, "first attempt");
    return 0;
}
static void seam_init(void* acc, void* u) { (void)u; uint64_t* a = (uint64_t*)acc; a[0] = 0; a[1] = 1; }
static void seam_fold(void* acc, const batch_item* it, const void* r, void* u) {
    (void)it; (void)u;
    uint64_t* a = (uint64_t*)acc;
    a[0] = a[0] * 1000003u + *(const uint64_t*)r;
    a[1] *= 1000003u;
}
static void seam_combine(void* acc, const void* o, void* u) {
    (void)u;
    uint64_t* a = (uint64_t*)acc;
    const uint64_t* b = (const uint64_t*)o;
    a[0] = a[0] * b[1] + b[0];
    a[1] *= b[1];
}

/* What batch_mpi_map does on one rank: the source's ranges go to an executor, the outcomes
   back; cancel_after > 0 cancels the source after that many outcomes. */
static batch_result seam_run(batch_pool* p, const batch_map_desc* d, int cancel_after, batch_map_summary* s, uint64_t* acc) {
    enum { K = 3 };
    batch_job* ex = NULL;
    batch_job* src = NULL;
    CHECK_OK(batch__map_executor_launch(p, d, K, &ex));
    CHECK_OK(batch__map_source_launch(p, d, batch_pool_workers(p), &src));
    if (!ex || !src) return BATCH_ERR_INVALID;
    bool stopped = false;
    int returned = 0;
    for (;;) {
        batch__outcome o;
        batch__range rg, dropped[K];
        while (batch__map_executor_take(ex, &o)) {
            CHECK(batch__map_source_return(src, &o));
            if (++returned == cancel_after) batch_job_cancel(src);
        }
        while (!stopped && batch__map_executor_room(ex) > 0 && batch__map_source_take(src, &rg))
            CHECK(batch__map_executor_push(ex, &rg));
        int end = batch__map_source_end(src);
        if (end != BATCH__SOURCE_OPEN && !stopped) {
            size_t n = batch__map_executor_stop(ex, end == BATCH__SOURCE_CANCELLED, dropped, K);
            for (size_t i = 0; i < n; i++) {
                batch__outcome u = { .index = dropped[i].index, .status = BATCH__NOT_RUN };
                CHECK(batch__map_source_return(src, &u));
            }
            stopped = true;
        }
        if (stopped && batch__map_idle(ex) && batch__map_idle(src)) break;
        batch_pool_wait_idle(p);   /* the batches pushed run (an inline pool runs them here) */
    }
    CHECK(!batch__map_source_return(src, &(batch__outcome){ .index = 0 }));   /* nothing is out */
    batch_result r = batch_map_wait(src, s, acc);
    batch_map_summary es;
    batch_map_wait(ex, &es, NULL);
    CHECK_EQ(es.items, s->items);   /* every item the source counts ran in the executor */
    batch_job_destroy(ex);
    batch_job_destroy(src);
    return r;
}

static void test_map_seam(void) {
    batch_pool* p = make_pool(2);
    batch_map_desc d = { .count = 3000, .item_fn = seam_item, .batch_size = 40, .ordered = 1, .error_threshold = 0.1,
                         .max_retries = 1, .retry_base_ns = 1000, .result_size = 8, .acc_size = 16,
                         .init_fn = seam_init, .fold_fn = seam_fold, .combine_fn = seam_combine };
    batch_map_summary want, got;
    uint64_t acc_want[2], acc_got[2];
    batch_result r1 = batch_map_run(p, &d, &want, acc_want);
    batch_result r2 = seam_run(p, &d, 0, &got, acc_got);
    CHECK_EQ(r1, BATCH_PARTIAL);
    CHECK_EQ(r2, r1);
    CHECK_EQ(got.batches, want.batches);
    CHECK_EQ(got.succeeded, want.succeeded);
    CHECK_EQ(got.failed, want.failed);
    CHECK_EQ(got.retries, want.retries);
    CHECK(memcmp(acc_got, acc_want, sizeof acc_got) == 0);   /* the same bytes, in the same order */
    /* a cancel: what was never handed out, or handed out and not started, is unprocessed */
    d.ordered = 0;
    r2 = seam_run(p, &d, 5, &got, acc_got);
    CHECK_EQ(r2, BATCH_ERR_CANCELLED);
    CHECK(got.unprocessed > 0);
    CHECK_EQ(got.items + got.unprocessed, 3000);
    CHECK_OK(batch_pool_destroy(p));
}

#define MAP_TESTS \
    { "map_retry_jitter", test_map_retry_jitter }, \
    { "map_stop_semantics", test_map_stop_semantics }, \
    { "map_failed_batch_counts", test_map_failed_batch_counts }, \
    { "map_permanent_and_own_job", test_map_permanent_and_own_job }, \
    { "map_threshold_table", test_map_threshold_table }, \
    { "map_retries_fold_once", test_map_retries_fold_once }, \
    { "map_ordered_fold_identical", test_map_ordered_fold_identical }, \
    { "map_unordered_sum", test_map_unordered_sum }, \
    { "map_random", test_map_random }, \
    { "map_pull_backpressure", test_map_pull_backpressure }, \
    { "map_memory_bounded", test_map_memory_bounded }, \
    { "map_sizing_registry", test_map_sizing_registry }, \
    { "map_adaptive_logic", test_map_adaptive_logic }, \
    { "map_iterator", test_map_iterator }, \
    { "map_halt_cancel_timeout", test_map_halt_cancel_timeout }, \
    { "map_bad_input", test_map_bad_input }, \
    { "map_scenario_b", test_map_scenario_b }, \
    { "map_alloc_failure", test_map_alloc_failure }, \
    { "map_seam", test_map_seam },

/* ---- allocation failure: every allocation of a map run, and of the registry ---------------- */
static int thr_item_any(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)u;
    *(uint64_t*)res = it->index * 3;
    if (it->index % 11 == 5) return batch_ctx_fail(ctx, 6, "item %zu", it->index);   /* messages allocate */
    return 0;
}
static void sum_fold_any(void* acc, const batch_item* it, const void* res, void* u) { (void)res; (void)u; *(uint64_t*)acc += it->index; }
/* out of memory, a batch's error list may miss entries (codes[] stays complete) */
static void lenient_on_batch(const batch_batch* b, void* u) {
    (void)u;
    CHECK(b->nerrors <= b->failed);
    size_t failed = 0;
    for (size_t i = 0; i < b->count; i++) failed += b->codes[i] != 0;
    CHECK_EQ(failed, b->failed);
}
static int big_result_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)ctx; (void)u;
    memset(res, (int)(it->index & 0xff), 300);
    return 0;
}
static batch_result map_alloc_sequence(batch_pool* p) {
    batch_sizing* reg = NULL;
    batch_result r = batch_sizing_create(&reg, NULL);
    if (r == BATCH_OK) r = batch_sizing_set(reg, "key-a", BATCH_COMPLEXITY_COMPLEX);
    if (r == BATCH_OK) r = batch_sizing_set(reg, "key-b", BATCH_COMPLEXITY_SIMPLE);
    if (r == BATCH_OK) {
        map_rec rec;
        memset(&rec, 0, sizeof rec);
        uint64_t acc = 0;
        batch_map_summary s;
        r = batch_map_run(p, &(batch_map_desc){ .count = 300, .item_fn = thr_item_any, .user_data = &rec, .result_size = 8,
                                                .sizing = reg, .key = "key-a", .error_threshold = 1.0, .keep_batches = 1,
                                                .acc_size = 8, .init_fn = sum_init, .fold_fn = sum_fold_any, .combine_fn = sum_combine,
                                                .on_batch = lenient_on_batch }, &s, &acc);
        if (r == BATCH_OK || r == BATCH_PARTIAL) {
            /* whatever failed inside (messages, kept records), the fold is exact */
            CHECK_EQ(s.items + s.unprocessed, 300);
            r = BATCH_OK;
        }
    }
    if (r == BATCH_OK) {   /* a pull source: item records per slot, shown to on_batch */
        pull_state ps = { 0, 120, 0, 0, 0 };
        r = batch_map_run(p, &(batch_map_desc){ .pull_fn = pull_counter, .item_fn = ok_item, .user_data = &ps, .result_size = 8,
                                                .batch_size = 16, .on_batch = lenient_on_batch }, NULL, NULL);
    }
    if (r == BATCH_OK) {   /* fold only, with results too big for the on-stack slot: one heap slot */
        uint64_t acc = 0;
        r = batch_map_run(p, &(batch_map_desc){ .count = 100, .item_fn = big_result_item, .result_size = 300, .batch_size = 10,
                                                .acc_size = 8, .init_fn = sum_init, .fold_fn = sum_fold_any, .combine_fn = sum_combine },
                          NULL, &acc);
        if (r == BATCH_OK) CHECK_EQ(acc, 99 * 100 / 2);
    }
    batch_sizing_destroy(reg);
    return r;
}

static void test_map_alloc_failure(void) {
    batch_pool* p = make_pool(BATCH_WORKERS_INLINE);   /* inline: the allocation order is fixed */
    test_alloc_reset(TEST_FAIL_NEVER, -1);
    CHECK_OK(map_alloc_sequence(p));
    long total = atomic_load(&test_alloc_count);
    long long live0 = atomic_load(&test_live_bytes);   /* after: the pool keeps its task slab */
    CHECK(total > 5);
    for (long n = 1; n <= total; n++) {
        test_alloc_reset(TEST_FAIL_ONCE, n);
        batch_result r = map_alloc_sequence(p);
        test_alloc_reset(TEST_FAIL_NEVER, -1);
        CHECK(r == BATCH_OK || r == BATCH_ERR_NOMEM);
        if (atomic_load(&test_live_bytes) != live0) fprintf(stderr, "leak at allocation %ld of %ld\n", n, total);
        CHECK_EQ(atomic_load(&test_live_bytes), live0);   /* nothing leaked */
    }
    CHECK_OK(map_alloc_sequence(p));   /* and it works again */
    CHECK_OK(batch_pool_destroy(p));
}
