/* test_map_range.c - maps whose items go a run at a time through items_fn (batch_items_fn):
   the same summary, fold and delivered batches as the same map written with item_fn (random
   failures, thresholds, retries, ordered and unordered, pull source and counted input); a
   non-zero return fails the items not reported; batch_ctx_fail_item's rules; fresh accumulators
   for retries; permanent failures; journal resume (across item_fn and items_fn); adaptive
   sizing's cost per item; bad input. Uses map_check.h (via test_map.c) and test_map.c's sum_*. */

/* ---- the twin: one random map run with item_fn and with items_fn ---------------------------- */
typedef struct twin_batch {
    size_t index, first, count, succeeded, failed, nerrors;
    int status, retries;
    int* codes;
    batch_item_error* errors;     /* messages copied into msgs */
    char* msgs;
    unsigned char* results;
    unsigned char acc[sizeof(mat2)];
    int has_acc;
} twin_batch;
typedef struct twin_rec { twin_batch* b; size_t n, cap, rs, acc_size; } twin_rec;

static void twin_record(void* u, const batch_batch* b) {
    twin_rec* r = (twin_rec*)u;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->b = (twin_batch*)realloc(r->b, r->cap * sizeof *r->b);
        CHECK(r->b != NULL);
    }
    twin_batch* t = &r->b[r->n++];
    memset(t, 0, sizeof *t);
    t->index = b->batch_index; t->first = b->first_index; t->count = b->count;
    t->succeeded = b->succeeded; t->failed = b->failed; t->nerrors = b->nerrors;
    t->status = (int)b->status; t->retries = b->retries_used;
    t->codes = (int*)malloc(b->count * sizeof(int));
    t->results = (unsigned char*)malloc(b->count * r->rs);
    t->errors = (batch_item_error*)malloc((b->nerrors + 1) * sizeof *t->errors);
    t->msgs = (char*)calloc(b->nerrors + 1, BATCH_MESSAGE_MAX);
    CHECK(t->codes && t->results && t->errors && t->msgs);
    memcpy(t->codes, b->codes, b->count * sizeof(int));
    for (size_t i = 0; i < b->count; i++)   /* a failed item's result is whatever it left */
        if (!b->codes[i]) memcpy(t->results + i * r->rs, b->results + i * r->rs, r->rs);
        else memset(t->results + i * r->rs, 0, r->rs);
    for (size_t k = 0; k < b->nerrors; k++) {
        t->errors[k] = b->errors[k];
        if (b->errors[k].message) snprintf(t->msgs + k * BATCH_MESSAGE_MAX, BATCH_MESSAGE_MAX, "%s", b->errors[k].message);
        t->errors[k].message = NULL;
    }
    t->has_acc = b->acc != NULL;
    if (b->acc) memcpy(t->acc, b->acc, r->acc_size);
}
static int twin_cmp(const void* a, const void* b) {
    size_t x = ((const twin_batch*)a)->index, y = ((const twin_batch*)b)->index;
    return x < y ? -1 : x > y;
}
static void twin_free(twin_rec* r) {
    for (size_t i = 0; i < r->n; i++) { free(r->b[i].codes); free(r->b[i].results); free(r->b[i].errors); free(r->b[i].msgs); }
    free(r->b);
    memset(r, 0, sizeof *r);
}
static void twin_compare(twin_rec* x, twin_rec* y) {
    CHECK_EQ(x->n, y->n);
    qsort(x->b, x->n, sizeof *x->b, twin_cmp);   /* unordered maps deliver in completion order */
    qsort(y->b, y->n, sizeof *y->b, twin_cmp);
    for (size_t i = 0; i < x->n; i++) {
        const twin_batch *a = &x->b[i], *b = &y->b[i];
        CHECK_EQ(a->index, b->index); CHECK_EQ(a->first, b->first); CHECK_EQ(a->count, b->count);
        CHECK_EQ(a->status, b->status); CHECK_EQ(a->retries, b->retries);
        CHECK_EQ(a->succeeded, b->succeeded); CHECK_EQ(a->failed, b->failed); CHECK_EQ(a->nerrors, b->nerrors);
        CHECK(memcmp(a->codes, b->codes, a->count * sizeof(int)) == 0);
        CHECK(memcmp(a->results, b->results, a->count * x->rs) == 0);
        for (size_t k = 0; k < a->nerrors; k++) {
            CHECK_EQ(a->errors[k].index, b->errors[k].index);
            CHECK_EQ(a->errors[k].code, b->errors[k].code);
            CHECK(strcmp(a->msgs + k * BATCH_MESSAGE_MAX, b->msgs + k * BATCH_MESSAGE_MAX) == 0);
        }
        CHECK_EQ(a->has_acc, b->has_acc);
        if (a->has_acc) CHECK(memcmp(a->acc, b->acc, x->acc_size) == 0);
    }
}

static void twin_run(batch_pool* p, uint64_t* rng) {
    mc_map* m = (mc_map*)calloc(1, sizeof *m);
    CHECK(m != NULL);
    m->seed = test_rand(rng);
    m->n = (size_t)(test_rand(rng) % 3000);
    m->bs = 1 + (size_t)(test_rand(rng) % 80);   /* fixed: the same layout in both runs */
    m->fail_permille = (int)(test_rand(rng) % 4) == 0 ? 0 : (int)(test_rand(rng) % 300);
    m->dead_permille = (int)(test_rand(rng) % 3) == 0 ? (int)(test_rand(rng) % 50) : 0;
    m->thr = (double)(test_rand(rng) % 5) / 4.0;
    m->max_retries = (int)(test_rand(rng) % 4);
    m->ordered = (int)(test_rand(rng) & 1);
    m->use_pull = (int)(test_rand(rng) % 3 == 0);
    m->use_on_batch = (int)(test_rand(rng) % 4 != 0);
    m->fold_kind = (int)(test_rand(rng) % 3);
    if (m->fold_kind == 2) m->ordered = 1;
    m->max_conc = (int)(test_rand(rng) % 4 == 0 ? 1 + test_rand(rng) % 3 : 0);
    int in_flight = (int)(test_rand(rng) % 9);
    size_t rs = m->fold_kind == 2 ? sizeof(mat2) : sizeof(uint64_t);
    twin_rec rec[2];
    mc_result res[2];
    for (int k = 0; k < 2; k++) {
        memset(&rec[k], 0, sizeof rec[k]);
        rec[k].rs = rs;
        rec[k].acc_size = m->fold_kind == 2 ? sizeof(mat2) : sizeof(uint64_t);
        m->use_range = k;
        m->record = twin_record;
        m->rec = &rec[k];
        res[k] = mc_launch(p, m, in_flight, 2000, 0, 0);
    }
    const batch_map_summary *a = &res[0].s, *b = &res[1].s;
    CHECK_EQ(res[0].r, res[1].r);
    CHECK_EQ(a->status, b->status); CHECK_EQ(a->result, b->result);
    CHECK_EQ(a->batches, b->batches); CHECK_EQ(a->batches_succeeded, b->batches_succeeded);
    CHECK_EQ(a->batches_partial, b->batches_partial); CHECK_EQ(a->batches_failed, b->batches_failed);
    CHECK_EQ(a->items, b->items); CHECK_EQ(a->succeeded, b->succeeded); CHECK_EQ(a->failed, b->failed);
    CHECK_EQ(a->unprocessed, b->unprocessed); CHECK_EQ(a->retries, b->retries);
    CHECK_EQ(a->final_batch_size, b->final_batch_size);
    CHECK_EQ(res[0].sum, res[1].sum);
    CHECK(memcmp(&res[0].prod, &res[1].prod, sizeof(mat2)) == 0);
    mc_expect e = mc_model(m);   /* and both are the serial model's */
    CHECK_EQ(b->batches, e.batches); CHECK_EQ(b->succeeded, e.succeeded); CHECK_EQ(b->failed, e.failed);
    CHECK_EQ(b->retries, e.retries);
    if (m->fold_kind == 1) CHECK_EQ(res[1].sum, e.sum);
    if (m->fold_kind == 2) CHECK(memcmp(&res[1].prod, &e.prod, sizeof(mat2)) == 0);
    if (m->use_on_batch) {
        CHECK_EQ(rec[1].n, b->batches);
        twin_compare(&rec[0], &rec[1]);
    }
    twin_free(&rec[0]);
    twin_free(&rec[1]);
    free(m);
}

static void test_map_range_twin(void) {
    uint64_t rng = test_seed ^ 0x5A17;
    for (int round = 0; round < scaled(40); round++) {
        int w = (int)(test_rand(&rng) % 5);
        batch_pool* p = make_pool(w ? w : BATCH_WORKERS_INLINE);
        twin_run(p, &rng);
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- the return code, batch_ctx_fail_item's rules, errors in index order ------------------- */
static int rc_items(batch_ctx* ctx, const batch_item_range* r, void* u) {
    (void)u;
    size_t f = r->first_index, n = r->count;
    CHECK_EQ(n, 10);
    CHECK_EQ(*(uint64_t*)r->acc, 0);   /* fresh */
    /* refused, nothing recorded */
    CHECK_EQ(batch_ctx_fail_item(NULL, f, 3, "x"), BATCH_ERR_INVALID);
    CHECK_EQ(batch_ctx_fail_item(ctx, f + n, 3, "x"), BATCH_ERR_INVALID);
    if (f) CHECK_EQ(batch_ctx_fail_item(ctx, f - 1, 3, "x"), BATCH_ERR_INVALID);
    CHECK_EQ(batch_ctx_fail_item(ctx, f + 3, 0, "x"), BATCH_ERR_INVALID);
    /* out of index order: errors[] still comes in index order */
    CHECK_OK(batch_ctx_fail_item(ctx, f + 7, 7, "late %zu", f + 7));
    CHECK_OK(batch_ctx_fail_item(ctx, f + 3, 8, NULL));
    CHECK_EQ(batch_ctx_fail_item(ctx, f + 3, 9, "again"), BATCH_ERR_INVALID);   /* reported already */
    for (size_t i = 0; i < n; i++) {
        *(uint64_t*)(r->results + i * 8) = (f + i) * 3;
        if (i != 3 && i != 7) *(uint64_t*)r->acc += f + i;
    }
    if (r->first_index / 10 % 2) return batch_ctx_fail(ctx, 5, "rest of %zu", r->first_index / 10);
    return 0;
}
static void rc_on_batch(const batch_batch* b, void* u) {
    (void)u;
    size_t f = b->first_index;
    bool odd = b->batch_index % 2;
    CHECK_EQ(b->failed, odd ? 10 : 2);
    CHECK_EQ(b->succeeded, odd ? 0 : 8);
    CHECK_EQ(b->nerrors, b->failed);
    for (size_t i = 0; i < 10; i++) CHECK_EQ(b->codes[i], i == 3 ? 8 : i == 7 ? 7 : odd ? 5 : 0);
    for (size_t k = 0; k < b->nerrors; k++) {
        const batch_item_error* e = &b->errors[k];
        if (k) CHECK(b->errors[k - 1].index < e->index);
        CHECK_EQ(e->code, b->codes[e->index - f]);
        char want[64];
        if (e->index == f + 3) { CHECK(e->message == NULL); continue; }
        if (e->index == f + 7) snprintf(want, sizeof want, "late %zu", f + 7);
        else snprintf(want, sizeof want, "rest of %zu", b->batch_index);
        CHECK(e->message && strcmp(e->message, want) == 0);
    }
    CHECK_EQ(b->status, odd ? BATCH_BATCH_FAILED : BATCH_BATCH_PARTIAL_SUCCESS);
    if (!odd) {
        uint64_t want = 0;
        for (size_t i = 0; i < 10; i++) if (i != 3 && i != 7) want += f + i;
        CHECK_EQ(*(const uint64_t*)b->acc, want);
        for (size_t i = 0; i < 10; i++) if (!b->codes[i]) CHECK_EQ(*(const uint64_t*)(b->results + i * 8), (f + i) * 3);
    } else {
        CHECK(b->acc == NULL);
    }
}
static int fail_item_from_item_fn(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)res; (void)u;
    CHECK_EQ(batch_ctx_fail_item(ctx, it->index, 3, "not here"), BATCH_ERR_INVALID);   /* an item_fn's ctx */
    return 0;
}
static void test_map_range_return_code(void) {
    batch_pool* p = make_pool(2);
    for (int ordered = 0; ordered < 2; ordered++) {
        batch_map_summary s;
        uint64_t acc = 0;
        CHECK_EQ(batch_map_run(p, &(batch_map_desc){ .count = 60, .items_fn = rc_items, .result_size = 8, .batch_size = 10,
                                                     .error_threshold = 0.5, .ordered = ordered, .on_batch = rc_on_batch,
                                                     .acc_size = 8, .init_fn = sum_init, .combine_fn = sum_combine }, &s, &acc),
                 BATCH_ERR_FAILED);
        CHECK_EQ(s.batches, 6); CHECK_EQ(s.batches_failed, 3); CHECK_EQ(s.batches_partial, 3);
        CHECK_EQ(s.failed, 3 * 10 + 3 * 2); CHECK_EQ(s.succeeded, 3 * 8);
        uint64_t want = 0;   /* the even batches' successes only */
        for (size_t i = 0; i < 60; i++) if ((i / 10) % 2 == 0 && i % 10 != 3 && i % 10 != 7) want += i;
        CHECK_EQ(acc, want);
    }
    batch_map_summary s;
    CHECK_OK(batch_map_run(p, &(batch_map_desc){ .count = 20, .item_fn = fail_item_from_item_fn }, &s, NULL));
    CHECK_EQ(s.succeeded, 20);
    CHECK_OK(batch_map_run(p, &(batch_map_desc){ .count = 0, .items_fn = rc_items }, &s, NULL));   /* no item: no call */
    CHECK_EQ(s.batches, 0);
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- retries: a fresh accumulator per attempt; a permanent failure skips them ------------------ */
typedef struct retry_range { _Atomic int attempts[8]; } retry_range;
static int retry_items(batch_ctx* ctx, const batch_item_range* r, void* u) {
    retry_range* t = (retry_range*)u;
    size_t b = batch_ctx_batch_index(ctx);
    atomic_fetch_add(&t->attempts[b], 1);
    CHECK_EQ(*(uint64_t*)r->acc, 0);   /* init_fn ran for this attempt */
    for (size_t i = 0; i < r->count; i++) *(uint64_t*)r->acc += r->first_index + i;
    if (b == 1 && batch_ctx_attempt(ctx) < 2) return 4;   /* folded, then failed: the fold is thrown away */
    if (b == 2) return batch_ctx_fail_permanent(ctx, 6, "never");
    if (b == 3 && batch_ctx_attempt(ctx) == 0) {   /* 6 of 10 reported: above 0.5, FAILED, retried */
        for (size_t i = 0; i < 6; i++) CHECK_OK(batch_ctx_fail_item(ctx, r->first_index + i, 2, NULL));
    }
    return 0;
}
static void retry_range_on_batch(const batch_batch* b, void* u) {
    (void)u;
    static const int want_retries[5] = { 0, 2, 0, 1, 0 };
    CHECK_EQ(b->retries_used, want_retries[b->batch_index]);
    CHECK_EQ(b->status, b->batch_index == 2 ? BATCH_BATCH_FAILED : BATCH_BATCH_SUCCESS);
}
static void test_map_range_retries(void) {
    int sizes[] = { 1, 3, BATCH_WORKERS_INLINE };
    for (int k = 0; k < 3; k++) {
        batch_pool* p = make_pool(sizes[k]);
        retry_range t;
        memset(&t, 0, sizeof t);
        uint64_t acc = 0;
        batch_map_summary s;
        CHECK_EQ(batch_map_run(p, &(batch_map_desc){ .count = 50, .items_fn = retry_items, .user_data = &t, .batch_size = 10,
                                                     .error_threshold = 0.5, .max_retries = 3, .retry_base_ns = 10000,
                                                     .on_batch = retry_range_on_batch,
                                                     .acc_size = 8, .init_fn = sum_init, .combine_fn = sum_combine }, &s, &acc),
                 BATCH_ERR_FAILED);
        CHECK_EQ(atomic_load(&t.attempts[0]), 1);
        CHECK_EQ(atomic_load(&t.attempts[1]), 3);
        CHECK_EQ(atomic_load(&t.attempts[2]), 1);   /* permanent: no retry */
        CHECK_EQ(atomic_load(&t.attempts[3]), 2);
        CHECK_EQ(s.retries, 3);
        CHECK_EQ(s.failed, 10);
        CHECK_EQ(s.succeeded, 40);
        uint64_t want = 0;   /* every item once but batch 2's */
        for (size_t i = 0; i < 50; i++) if (i / 10 != 2) want += i;
        CHECK_EQ(acc, want);
        CHECK_OK(batch_pool_destroy(p));
    }
}

/* ---- journal: a cancelled run resumes without redoing finished batches ------------------------ */
typedef struct jr_map { _Atomic int runs[200]; int cancel_at; } jr_map;
static int jr_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    jr_map* j = (jr_map*)u;
    atomic_fetch_add(&j->runs[it->index], 1);
    *(uint64_t*)res = it->index * it->index;
    if (it->index % 10 == 9 && (int)batch_ctx_batch_index(ctx) == j->cancel_at) CHECK_OK(batch_job_cancel(batch_ctx_job(ctx)));
    return it->index % 17 == 5 ? batch_ctx_fail(ctx, 3, "item %zu", it->index) : 0;
}
static void jr_fold(void* acc, const batch_item* it, const void* res, void* u) { (void)it; (void)u; *(uint64_t*)acc += *(const uint64_t*)res; }
static int jr_items(batch_ctx* ctx, const batch_item_range* r, void* u) {
    for (size_t i = 0; i < r->count; i++) {
        batch_item it = { r->first_index + i, NULL };
        void* res = r->results + i * 8;
        int rc = jr_item(ctx, &it, res, u);
        if (rc) CHECK_OK(batch_ctx_fail_item(ctx, it.index, rc, "item %zu", it.index));
        else *(uint64_t*)r->acc += *(const uint64_t*)res;
    }
    return 0;
}
static void test_map_range_journal(void) {
    char name[64], path[MAX_TEST_PATH];
    snprintf(name, sizeof name, "batch-range-%ld.jnl", (long)getpid());
    test_tmp_path(path, sizeof path, name);
    uint64_t want = 0;
    for (size_t i = 0; i < 200; i++) if (i % 17 != 5) want += (uint64_t)i * i;
    batch_pool* p = make_pool(1);
    for (int mode = 0; mode < 4; mode++) {   /* bit 0: ordered; bit 1: the first run uses item_fn */
        unlink(path);
        jr_map* j = (jr_map*)calloc(1, sizeof *j);
        CHECK(j != NULL);
        bool first_item = mode & 2;
        batch_map_desc d = { .count = 200, .items_fn = jr_items, .user_data = j, .result_size = 8, .batch_size = 10,
                             .error_threshold = 1.0, .ordered = mode & 1, .max_in_flight = 1,
                             .acc_size = 8, .init_fn = sum_init, .combine_fn = sum_combine, .journal = { .path = path } };
        batch_map_desc d1 = d;
        if (first_item) { d1.items_fn = NULL; d1.item_fn = jr_item; d1.fold_fn = jr_fold; }
        j->cancel_at = 6;   /* batches 0..6 finish, nothing after starts (one slot) */
        batch_map_summary s;
        uint64_t acc = 0;
        CHECK_EQ(batch_map_run(p, &d1, &s, &acc), BATCH_ERR_CANCELLED);
        CHECK_EQ(s.items, 70);
        CHECK_EQ(s.unprocessed, 130);
        j->cancel_at = -1;
        CHECK_EQ(batch_map_run(p, &d, &s, &acc), BATCH_PARTIAL);
        CHECK_EQ(acc, want);
        CHECK_EQ(s.resumed_batches, 7);
        CHECK_EQ(s.resumed_items, 70);
        CHECK_EQ(s.items, 200);
        CHECK_EQ(s.batches, 20);
        for (size_t i = 0; i < 200; i++) CHECK_EQ(atomic_load(&j->runs[i]), 1);   /* nothing done twice */
        free(j);
    }
    unlink(path);
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- adaptive sizing learns the cost per item from a run's time ------------------------------ */
static int slow_items(batch_ctx* ctx, const batch_item_range* r, void* u) {
    (void)ctx; (void)u;
    uint64_t end = batch_now_ns() + 2000u * r->count;   /* at least 2 us per item */
    while (batch_now_ns() < end) {}
    return 0;
}
static void test_map_range_adaptive(void) {
    batch_pool* p = make_pool(2);
    batch_sizing* sz;
    CHECK_OK(batch_sizing_create(&sz, &(batch_sizing_desc){ 0 }));
    batch_map_summary s;
    CHECK_OK(batch_map_run(p, &(batch_map_desc){ .count = 3000, .items_fn = slow_items, .sizing = sz, .key = "slow" }, &s, NULL));
    CHECK_EQ(s.items, 3000);
    CHECK(batch_sizing_cost(sz, "slow") >= 2000);   /* busy time / items: at least the 2 us spent */
    CHECK(s.final_batch_size <= 200000 / 2000);      /* target 200 us / (>= 2 us per item) */
    CHECK_OK(batch_sizing_destroy(sz));
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- bad input -------------------------------------------------------------------------------- */
static int noop_items(batch_ctx* ctx, const batch_item_range* r, void* u) { (void)ctx; (void)r; (void)u; return 0; }
static void test_map_range_bad_input(void) {
    batch_pool* p = make_pool(1);
    long long live = atomic_load(&test_live_bytes);
    batch_map_desc bad[] = {
        { .count = 10 },                                                                   /* neither */
        { .count = 10, .item_fn = ok_item_count_only, .items_fn = noop_items },             /* both */
        { .count = 10, .items_fn = noop_items, .acc_size = 8, .init_fn = sum_init, .fold_fn = sum_fold, .combine_fn = sum_combine },
        { .count = 10, .items_fn = noop_items, .acc_size = 8, .init_fn = sum_init },        /* no combine */
        { .count = 10, .items_fn = noop_items, .acc_size = 8, .combine_fn = sum_combine },  /* no init */
        { .count = 10, .items_fn = noop_items, .fold_fn = sum_fold },                       /* a fold without acc */
        { .count = 10, .items_fn = noop_items, .init_fn = sum_init, .combine_fn = sum_combine },   /* no acc_size */
        { .count = SIZE_MAX / 2, .items_fn = noop_items, .result_size = 16 },               /* overflow */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        batch_job* job = (batch_job*)1;
        CHECK_EQ(batch_map_launch(p, &bad[i], &job), BATCH_ERR_INVALID);
        CHECK(job == NULL);
        batch_map_summary s;
        CHECK_EQ(batch_map_run(p, &bad[i], &s, NULL), BATCH_ERR_INVALID);
        CHECK_EQ(s.result, BATCH_ERR_INVALID);
    }
    CHECK_EQ(atomic_load(&test_live_bytes), live);   /* nothing kept */
    CHECK_EQ(batch_ctx_fail_item(NULL, 0, 1, NULL), BATCH_ERR_INVALID);
    uint64_t acc = 1;
    CHECK_OK(batch_map_run(p, &(batch_map_desc){ .count = 10, .items_fn = noop_items, .acc_size = 8, .init_fn = sum_init,
                                                  .combine_fn = sum_combine }, NULL, &acc));
    CHECK_EQ(acc, 0);
    CHECK_OK(batch_pool_destroy(p));
}

#define MAP_RANGE_TESTS \
    { "map_range_twin", test_map_range_twin }, \
    { "map_range_return_code", test_map_range_return_code }, \
    { "map_range_retries", test_map_range_retries }, \
    { "map_range_journal", test_map_range_journal }, \
    { "map_range_adaptive", test_map_range_adaptive }, \
    { "map_range_bad_input", test_map_range_bad_input },
