/* map_check.h - random batched maps and the invariants every run must keep. Shared by the suite
   (test_map.c) and the seeded stress program (stress.c). The includer provides test.h (CHECK,
   test_rand) and batch.h.

   Item i's result is mc_value(i); whether it fails is a pure function of (map seed, i, batch
   attempt), so the outcome of every batch is known in advance. mc_run checks:
   - per delivered batch: count/failed/succeeded/codes/results/errors agree with the items, and
     the status is exactly SUCCESS (0 failed), PARTIAL_SUCCESS (failed / size <= threshold) or
     FAILED, for the attempt that was delivered; a FAILED batch was retried exactly max_retries
     times (unless cancelled), any other batch stopped at its first non-FAILED attempt;
   - with a fixed batch size: the layout (batch k = items k*bs ..), and then every count of the
     summary and the result code are exactly the serial model's;
   - the fold: each successful item of a non-FAILED batch folded exactly once - an unordered
     sum equals the serial answer (and the sum over the delivered batches); an ordered fold
     with a non-commutative combiner (2x2 matrix products mod 2^32) is bit-identical to the
     serial answer and to the inline pool's run of the same desc;
   - the same map written with items_fn (a run of items per call, mc_items; half of mc_run's
     maps, by their seed) keeps all of the above;
   - max_concurrent_batches is never exceeded (items of one batch run one after another, so
     items running at once <= batches running at once); items + unprocessed == count. */
#ifndef BATCH_MAP_CHECK_H
#define BATCH_MAP_CHECK_H
#include <stdatomic.h>

/* ---- a non-commutative accumulator: 2x2 matrices mod 2^32 ---------------------------------- */
typedef struct mat2 { uint32_t a, b, c, d; } mat2;
static void mat_mul(mat2* acc, const mat2* o) {   /* acc = acc x o, mod 2^32: not commutative */
    mat2 r = { acc->a * o->a + acc->b * o->c, acc->a * o->b + acc->b * o->d, acc->c * o->a + acc->d * o->c, acc->c * o->b + acc->d * o->d };
    *acc = r;
}
static void mat_init(void* acc, void* u) { (void)u; mat2 id = { 1, 0, 0, 1 }; memcpy(acc, &id, sizeof id); }
static void mat_fold(void* acc, const batch_item* it, const void* res, void* u) { (void)it; (void)u; mat_mul((mat2*)acc, (const mat2*)res); }
static void mat_combine(void* acc, const void* o, void* u) { (void)u; mat_mul((mat2*)acc, (const mat2*)o); }
static mat2 mat_of(uint64_t x) { uint32_t y = (uint32_t)x; mat2 m = { y | 1, y >> 3, y >> 7, (y >> 11) | 1 }; return m; }

/* ---- the random map -------------------------------------------------------------------------- */
typedef struct mc_map {
    uint64_t seed;
    size_t n, bs;              /* bs 0: adaptive (layout not known in advance) */
    int fail_permille;         /* items failing on a given attempt */
    int dead_permille;         /* items failing on every attempt */
    double thr;
    int max_retries;
    int ordered, use_pull, use_on_batch, fold_kind;   /* fold_kind 0 none, 1 sum, 2 matrix */
    int use_range;             /* items_fn (mc_items) instead of item_fn (mc_item) */
    void (*record)(void* rec, const batch_batch* b);   /* optional: sees every delivered batch */
    void* rec;
    int max_conc;
    size_t next_pull;
    _Atomic int active, peak;  /* items running at once */
    /* what the delivered batches say (on_batch runs one at a time) */
    uint64_t ob_batches, ob_items, ob_failed, ob_retries, ob_batches_failed, ob_batches_partial;
    uint64_t ob_sum;           /* sum fold over the delivered non-FAILED batches */
    size_t ob_next_index;      /* ordered: the next batch index */
    int cancelled;
} mc_map;

static int verbose_maps;   /* print each map's parameters (stress -v) */
static uint64_t mc_hash(uint64_t a, uint64_t b, uint64_t c) {
    uint64_t s = a ^ (b * 0x9E3779B97F4A7C15ull) ^ (c * 0xC2B2AE3D27D4EB4Full);
    return test_rand(&s);
}
static uint64_t mc_value(const mc_map* m, size_t i) { return mc_hash(m->seed, i, 0x5151); }
static int mc_fails(const mc_map* m, size_t i, int attempt) {
    if ((int)(mc_hash(m->seed, i, 0xDEAD) % 1000) < m->dead_permille) return 1;
    return (int)(mc_hash(m->seed, i, 1000 + (uint64_t)attempt) % 1000) < m->fail_permille;
}
/* The documented rule: failed / size against the threshold (exactly: 1 failure in 49 with a
   threshold of 1.0 / 49 is PARTIAL_SUCCESS; the stress program found batch.h rounding the other
   way once, by comparing failed <= threshold x size). The ratio is a double: on i386 the
   volatile store rounds the x87's 80-bit quotient, as batch.h does. */
static batch_batch_status mc_status(size_t failed, size_t size, double thr) {
    if (failed == 0) return BATCH_BATCH_SUCCESS;
    volatile double ratio = (double)failed / (double)size;
    return ratio <= thr ? BATCH_BATCH_PARTIAL_SUCCESS : BATCH_BATCH_FAILED;
}

static int mc_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    mc_map* m = (mc_map*)u;
    int a = atomic_fetch_add(&m->active, 1) + 1;
    int pk = atomic_load(&m->peak);
    while (a > pk && !atomic_compare_exchange_weak(&m->peak, &pk, a)) {}
    if (m->use_pull) CHECK(it->ptr == (void*)(uintptr_t)(it->index + 1));
    uint64_t v = mc_value(m, it->index);
    if (m->fold_kind == 2) { mat2 x = mat_of(v); memcpy(res, &x, sizeof x); }
    else memcpy(res, &v, sizeof v);
    int fail = mc_fails(m, it->index, batch_ctx_attempt(ctx));
    atomic_fetch_sub(&m->active, 1);
    if (fail) return batch_ctx_fail(ctx, 3 + (int)(it->index % 5), "item %zu", it->index);
    return 0;
}
static int mc_pull(void* u, void** out) {
    mc_map* m = (mc_map*)u;
    if (m->next_pull >= m->n) return 0;
    *out = (void*)(uintptr_t)(++m->next_pull);
    return 1;
}
static void mc_sum_fold(void* acc, const batch_item* it, const void* res, void* u) {
    uint64_t v;
    memcpy(&v, res, sizeof v);
    CHECK_EQ(v, mc_value((const mc_map*)u, it->index));
    *(uint64_t*)acc += v;
}
static void mc_sum_init(void* acc, void* u) { (void)u; *(uint64_t*)acc = 0; }
static void mc_sum_combine(void* acc, const void* o, void* u) { (void)u; *(uint64_t*)acc += *(const uint64_t*)o; }

/* mc_item over a run: the same results and failures, the fold done here (successes only). */
static int mc_items(batch_ctx* ctx, const batch_item_range* r, void* u) {
    mc_map* m = (mc_map*)u;
    size_t rs = m->fold_kind == 2 ? sizeof(mat2) : sizeof(uint64_t);
    CHECK(r->results != NULL);
    CHECK((r->acc != NULL) == (m->fold_kind != 0));
    CHECK((r->items != NULL) == (m->use_pull != 0));
    for (size_t i = 0; i < r->count; i++) {
        batch_item it = r->items ? r->items[i] : (batch_item){ r->first_index + i, NULL };
        CHECK_EQ(it.index, r->first_index + i);
        void* res = r->results + i * rs;
        batch_ctx_fail(ctx, 1, "not this message");   /* reported items keep their own */
        int rc = mc_item(ctx, &it, res, u);
        if (rc) { CHECK_OK(batch_ctx_fail_item(ctx, it.index, rc, "item %zu", it.index)); continue; }
        if (m->fold_kind == 1) mc_sum_fold(r->acc, &it, res, u);
        else if (m->fold_kind == 2) mat_mul((mat2*)r->acc, (const mat2*)res);
    }
    return 0;
}

static void mc_on_batch(const batch_batch* b, void* u) {
    mc_map* m = (mc_map*)u;
    size_t rs = m->fold_kind == 2 ? sizeof(mat2) : sizeof(uint64_t);
    CHECK(b->count > 0);
    CHECK_EQ(b->succeeded + b->failed, b->count);
    if (m->ordered) { CHECK_EQ(b->batch_index, m->ob_next_index); m->ob_next_index++; }
    if (m->bs) {
        CHECK_EQ(b->first_index, b->batch_index * m->bs);
        CHECK_EQ(b->count, m->n - b->first_index < m->bs ? m->n - b->first_index : m->bs);
    }
    CHECK(b->first_index + b->count <= m->n);
    CHECK(b->retries_used >= 0 && b->retries_used <= m->max_retries);
    size_t failed = 0;
    uint64_t sum = 0;
    /* the attempt whose outcome was delivered: the last one that ran (a retry cut short by a
       cancel while it waited is not counted) */
    int att = b->retries_used;
    for (size_t i = 0; i < b->count; i++) {
        size_t idx = b->first_index + i;
        if (m->use_pull) { CHECK_EQ(b->items[i].index, idx); CHECK(b->items[i].ptr == (void*)(uintptr_t)(idx + 1)); }
        int f = mc_fails(m, idx, att);
        CHECK_EQ(b->codes[i] != 0, f);
        if (f) { failed++; CHECK_EQ(b->codes[i], 3 + (int)(idx % 5)); continue; }
        uint64_t v = mc_value(m, idx);
        if (m->fold_kind == 2) { mat2 x = mat_of(v); CHECK(memcmp(b->results + i * rs, &x, sizeof x) == 0); }
        else CHECK(memcmp(b->results + i * rs, &v, sizeof v) == 0);
        sum += v;
    }
    CHECK_EQ(b->failed, failed);
    CHECK(b->nerrors == failed);   /* plenty of memory here: no error record is dropped */
    for (size_t k = 0; k < b->nerrors; k++) {
        CHECK(b->errors[k].index >= b->first_index && b->errors[k].index < b->first_index + b->count);
        CHECK_EQ(b->errors[k].code, b->codes[b->errors[k].index - b->first_index]);
        CHECK(b->errors[k].message != NULL);
    }
    CHECK_EQ((int)b->status, (int)mc_status(failed, b->count, m->thr));
    /* retried exactly while FAILED and retries were left (a cancel may cut retries short) */
    if (b->status != BATCH_BATCH_FAILED) {
        for (int a = 0; a < att; a++) {
            size_t fa = 0;
            for (size_t i = 0; i < b->count; i++) fa += (size_t)mc_fails(m, b->first_index + i, a);
            CHECK_EQ((int)mc_status(fa, b->count, m->thr), BATCH_BATCH_FAILED);
        }
    } else if (!m->cancelled) {
        CHECK_EQ(b->retries_used, m->max_retries);
    }
    m->ob_batches++;
    m->ob_items += b->count;
    m->ob_failed += b->status == BATCH_BATCH_FAILED ? b->count : failed;   /* a FAILED batch's items all count as failed */
    m->ob_retries += (uint64_t)b->retries_used;
    if (b->status == BATCH_BATCH_FAILED) m->ob_batches_failed++;
    else m->ob_sum += sum;
    if (b->status == BATCH_BATCH_PARTIAL_SUCCESS) m->ob_batches_partial++;
    if (m->fold_kind == 1 && b->status != BATCH_BATCH_FAILED) CHECK_EQ(*(const uint64_t*)b->acc, sum);   /* this batch's own fold */
    if (m->record) m->record(m->rec, b);
}

/* The serial model of a map with a fixed batch size. */
typedef struct mc_expect {
    uint64_t batches, ok, partial, failed_batches, items, succeeded, failed, retries, sum;
    mat2 prod;
} mc_expect;
static mc_expect mc_model(const mc_map* m) {
    mc_expect e;
    memset(&e, 0, sizeof e);
    mat_init(&e.prod, NULL);
    for (size_t first = 0; first < m->n; first += m->bs) {
        size_t cnt = m->n - first < m->bs ? m->n - first : m->bs;
        int a = 0;
        size_t f;
        batch_batch_status st;
        for (;; a++) {
            f = 0;
            for (size_t i = 0; i < cnt; i++) f += (size_t)mc_fails(m, first + i, a);
            st = mc_status(f, cnt, m->thr);
            if (st != BATCH_BATCH_FAILED || a == m->max_retries) break;
        }
        e.batches++;
        e.items += cnt;
        e.retries += (uint64_t)a;
        if (st == BATCH_BATCH_FAILED) { e.failed_batches++; e.failed += cnt; continue; }   /* nothing of it folded */
        e.failed += f;
        e.succeeded += cnt - f;
        if (st == BATCH_BATCH_SUCCESS) e.ok++;
        else e.partial++;
        for (size_t i = 0; i < cnt; i++) {
            if (mc_fails(m, first + i, a)) continue;
            uint64_t v = mc_value(m, first + i);
            e.sum += v;
            mat2 x = mat_of(v);
            mat_mul(&e.prod, &x);
        }
    }
    return e;
}

typedef struct mc_result { batch_result r; batch_map_summary s; uint64_t sum; mat2 prod; } mc_result;

static mc_result mc_launch(batch_pool* p, mc_map* m, int max_in_flight, uint64_t retry_base, int cancel, uint64_t cancel_ns) {
    mc_result out;
    memset(&out, 0, sizeof out);
    m->next_pull = 0;
    m->ob_batches = m->ob_items = m->ob_failed = m->ob_retries = m->ob_batches_failed = m->ob_batches_partial = 0;
    m->ob_sum = 0;
    m->ob_next_index = 0;
    m->cancelled = cancel;
    atomic_store(&m->peak, 0);
    batch_map_desc d = {
        .count = m->use_pull ? 0 : m->n, .pull_fn = m->use_pull ? mc_pull : NULL,
        .item_fn = m->use_range ? NULL : mc_item, .items_fn = m->use_range ? mc_items : NULL, .user_data = m,
        .result_size = m->fold_kind == 2 ? sizeof(mat2) : sizeof(uint64_t),
        .batch_size = m->bs, .error_threshold = m->thr, .max_retries = m->max_retries,
        .retry_base_ns = retry_base, .retry_max_ns = 4 * retry_base,
        .max_in_flight = max_in_flight, .max_concurrent_batches = m->max_conc,
        .ordered = m->ordered, .on_batch = m->use_on_batch ? mc_on_batch : NULL,
    };
    void* acc = NULL;
    if (m->fold_kind == 1) {
        d.acc_size = sizeof(uint64_t); d.init_fn = mc_sum_init; d.fold_fn = m->use_range ? NULL : mc_sum_fold; d.combine_fn = mc_sum_combine;
        acc = &out.sum;
    } else if (m->fold_kind == 2) {
        d.acc_size = sizeof(mat2); d.init_fn = mat_init; d.fold_fn = m->use_range ? NULL : mat_fold; d.combine_fn = mat_combine;
        acc = &out.prod;
    }
    batch_job* job;
    CHECK_OK(batch_map_launch(p, &d, &job));
    if (cancel) {
        uint64_t t0 = batch_now_ns();
        while (batch_now_ns() - t0 < cancel_ns) {}
        CHECK_OK(batch_job_cancel(job));
    }
    out.r = batch_map_wait(job, &out.s, acc);
    CHECK_OK(batch_job_destroy(job));
    if (m->max_conc) {
        CHECK(atomic_load(&m->peak) <= m->max_conc);
        CHECK(out.s.peak_concurrent_batches <= (uint64_t)m->max_conc);
    }
    if (verbose_maps) printf("[r %d items %llu unprocessed %llu batches %llu failed %llu]", (int)out.r, (unsigned long long)out.s.items,
                             (unsigned long long)out.s.unprocessed, (unsigned long long)out.s.batches, (unsigned long long)out.s.batches_failed);
    /* a pull source's length is unknown: what was never pulled is not counted as unprocessed */
    CHECK_EQ(out.s.items + out.s.unprocessed, m->use_pull ? m->next_pull : m->n);
    if (!cancel) CHECK_EQ(out.s.items, m->n);
    CHECK_EQ(out.s.succeeded + out.s.failed, out.s.items);
    CHECK_EQ(out.s.batches_succeeded + out.s.batches_partial + out.s.batches_failed, out.s.batches);
    if (m->use_on_batch) {
        CHECK_EQ(m->ob_batches, out.s.batches);
        CHECK_EQ(m->ob_items, out.s.items);
        CHECK_EQ(m->ob_failed, out.s.failed);
        CHECK_EQ(m->ob_retries, out.s.retries);
        CHECK_EQ(m->ob_batches_failed, out.s.batches_failed);
        CHECK_EQ(m->ob_batches_partial, out.s.batches_partial);
        if (m->fold_kind == 1) CHECK_EQ(out.sum, m->ob_sum);
    }
    if (cancel) CHECK(out.r == BATCH_ERR_CANCELLED || out.r == BATCH_OK || out.r == BATCH_PARTIAL || out.r == BATCH_ERR_FAILED);
    return out;
}

/* One random map on p (and, for ordered folds, the same desc on inline_pool). */
static void mc_run(batch_pool* p, batch_pool* inline_pool, uint64_t* rng, size_t max_n) {
    mc_map* m = (mc_map*)calloc(1, sizeof *m);
    m->seed = test_rand(rng);
    m->use_range = (int)(mc_hash(m->seed, 0, 0x7A9E) & 1);   /* from the seed: the rng stream is unchanged */
    m->n = (size_t)(test_rand(rng) % (test_rand(rng) % 8 == 0 ? max_n + 1 : (max_n / 16) + 1));
    m->bs = test_rand(rng) % 6 == 0 ? 0 : 1 + (size_t)(test_rand(rng) % 64);
    m->fail_permille = (int)(test_rand(rng) % 4) == 0 ? 0 : (int)(test_rand(rng) % 300);
    m->dead_permille = (int)(test_rand(rng) % 4) == 0 ? (int)(test_rand(rng) % 50) : 0;
    switch (test_rand(rng) % 5) {
        case 0: m->thr = 0.0; break;
        case 1: m->thr = 1.0; break;
        case 2: {   /* exactly on a boundary: j / bs */
            size_t den = m->bs ? m->bs : 1 + (size_t)(test_rand(rng) % 64);
            m->thr = (double)(test_rand(rng) % (den + 1)) / (double)den;
            break;
        }
        default: m->thr = (double)(test_rand(rng) % 1001) / 1000.0; break;
    }
    m->max_retries = (int)(test_rand(rng) % 4);
    m->ordered = (int)(test_rand(rng) & 1);
    m->use_pull = (int)(test_rand(rng) % 3 == 0);
    m->use_on_batch = (int)(test_rand(rng) % 3 != 0);
    m->fold_kind = (int)(test_rand(rng) % 3);
    if (m->fold_kind == 2) m->ordered = 1;   /* a non-commutative fold needs batch order */
    m->max_conc = (int)(test_rand(rng) % 4 == 0 ? 1 + test_rand(rng) % 4 : 0);
    int in_flight = (int)(test_rand(rng) % 9);
    uint64_t retry_base = 1000 + test_rand(rng) % 20000;
    int cancel = test_rand(rng) % 8 == 0;
    uint64_t cancel_ns = test_rand(rng) % (1u << (test_rand(rng) % 20));

    if (verbose_maps)
        printf("[range %d n %zu bs %zu fail %d dead %d thr %.17g retries %d ordered %d pull %d on_batch %d fold %d conc %d in_flight %d cancel %d %lluns]",
               m->use_range, m->n, m->bs, m->fail_permille, m->dead_permille, m->thr, m->max_retries, m->ordered, m->use_pull, m->use_on_batch,
               m->fold_kind, m->max_conc, in_flight, cancel, (unsigned long long)cancel_ns);
    mc_result got = mc_launch(p, m, in_flight, retry_base, cancel, cancel_ns);
    if (!cancel && m->bs) {
        mc_expect e = mc_model(m);
        CHECK_EQ(got.s.batches, e.batches);
        CHECK_EQ(got.s.batches_succeeded, e.ok);
        CHECK_EQ(got.s.batches_partial, e.partial);
        CHECK_EQ(got.s.batches_failed, e.failed_batches);
        CHECK_EQ(got.s.items, e.items);
        CHECK_EQ(got.s.succeeded, e.succeeded);
        CHECK_EQ(got.s.failed, e.failed);
        CHECK_EQ(got.s.retries, e.retries);
        CHECK_EQ(got.s.unprocessed, 0);
        CHECK_EQ(got.r, e.failed_batches ? BATCH_ERR_FAILED : e.failed ? BATCH_PARTIAL : BATCH_OK);
        if (m->fold_kind == 1) CHECK_EQ(got.sum, e.sum);
        if (m->fold_kind == 2) CHECK(memcmp(&got.prod, &e.prod, sizeof(mat2)) == 0);
    }
    if (!cancel && m->fold_kind == 2 && inline_pool && (m->bs || (!m->fail_permille && !m->dead_permille))) {
        /* the inline pool's run of the same desc: bit-identical. (An adaptive size may depend on
           the thread count, and with it which items share a FAILED batch: then only without
           failures.) */
        mc_result ref = mc_launch(inline_pool, m, in_flight, retry_base, 0, 0);
        CHECK(memcmp(&got.prod, &ref.prod, sizeof(mat2)) == 0);
        CHECK_EQ(got.r, ref.r);
        CHECK_EQ(got.s.batches, ref.s.batches);
        CHECK_EQ(got.s.failed, ref.s.failed);
    }
    if (!cancel && !m->bs && m->use_on_batch && m->fold_kind == 1) CHECK_EQ(got.sum, m->ob_sum);
    free(m);
}
#endif
