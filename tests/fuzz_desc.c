/* fuzz_desc.c - libFuzzer target: desc validation. Random bytes fill a pool desc, a map desc
   and a run desc field by field (counts, sizes, thresholds including NaN and infinities,
   retries, limits, flags); every call must return one of its documented codes, never crash,
   hang or leak, and a map that starts must process exactly its items.
   Build: make fuzz (clang -fsanitize=fuzzer,address,undefined). */
#define _POSIX_C_SOURCE 200809L
#define BATCH_STATIC
#define BATCH_IMPLEMENTATION
#include "../batch.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void die(const char* why) { fprintf(stderr, "fuzz_desc: %s\n", why); abort(); }

typedef struct reader { const uint8_t* d; size_t n, i; } reader;
static uint64_t rd(reader* r, int bytes) {
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++) v = v << 8 | (r->i < r->n ? r->d[r->i++] : 0);
    return v;
}
static double rd_ratio(reader* r) {
    switch (rd(r, 1) % 8) {
        case 0: return 0.0 / 0.0;
        case 1: return 1.0 / 0.0;
        case 2: return -0.25;
        case 3: return 1.0 + 1e-9;
        default: return (double)rd(r, 1) / 255.0;
    }
}

static int item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)ctx; (void)u;
    if (res) memset(res, 0xab, 1);
    return (int)(it->index % 5 == 1);
}
static void init(void* acc, void* u) { (void)u; *(uint64_t*)acc = 0; }
static void fold(void* acc, const batch_item* it, const void* res, void* u) { (void)res; (void)u; *(uint64_t*)acc += it->index + 1; }
static void combine(void* acc, const void* o, void* u) { (void)u; *(uint64_t*)acc += *(const uint64_t*)o; }
typedef struct src { size_t next, n; } src;
static int pull(void* u, void** out) { src* s = (src*)u; if (s->next >= s->n) return 0; *out = (void*)(uintptr_t)++s->next; return 1; }

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    reader r = { data, size, 0 };
    batch_pool* pool = NULL;
    batch_pool_desc pd = { .workers = (int)(int8_t)rd(&r, 1) % 5, .deque_capacity = (int)rd(&r, 2) - 100,
                           .spin_us = (int)(int16_t)rd(&r, 2) };
    batch_result pr = batch_pool_create(&pool, &pd);
    if (pr != BATCH_OK) {
        if (pr != BATCH_ERR_INVALID || pool) die("pool create: unexpected result");
        if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = BATCH_WORKERS_INLINE }) != BATCH_OK) die("inline pool");
    }
    src s = { 0, (size_t)rd(&r, 1) * 7 };
    int use_pull = rd(&r, 1) & 1, with_fold = rd(&r, 1) & 1;
    batch_map_desc md = {
        .count = (size_t)rd(&r, 2) % 3000,
        .pull_fn = use_pull ? pull : NULL,
        .item_fn = rd(&r, 1) % 16 ? item : NULL,
        .user_data = &s,
        .result_size = (size_t)rd(&r, 1) % 3 == 0 ? (size_t)rd(&r, 4) : (size_t)rd(&r, 1) % 24,
        .batch_size = (size_t)rd(&r, 2) % 300,
        .complexity = (batch_complexity)(rd(&r, 1) % 7),
        .min_batch = (size_t)rd(&r, 1) % 40,
        .max_batch = (size_t)rd(&r, 1) % 40,
        .error_threshold = rd_ratio(&r),
        .max_retries = (int)(int8_t)rd(&r, 1),
        .retry_base_ns = rd(&r, 1) * 1000,
        .halt_error_ratio = rd_ratio(&r),
        .max_in_flight = (int)(int8_t)rd(&r, 1),
        .max_concurrent_batches = (int)(int8_t)rd(&r, 1),
        .priority = (batch_priority)(rd(&r, 1) % 8),
        .ordered = rd(&r, 1) & 1,
        .keep_batches = rd(&r, 1) & 1,
        .acc_size = with_fold ? 8 : (size_t)rd(&r, 1) % 2 * 8,
        .init_fn = with_fold ? init : NULL, .fold_fn = with_fold ? fold : NULL, .combine_fn = with_fold ? combine : NULL,
    };
    /* a map that runs gets results of at most 16 MiB: each slot in flight may hold one, and a
       few GiB per slot took ASan past the 20 s timeout (poisoning, not the map: 7 ms without
       it); the huge sizes stay for the N x result_size overflow below, refused up front */
    if (md.result_size > ((size_t)16 << 20)) md.result_size %= (size_t)16 << 20;
    if (md.retry_base_ns > 20000) md.retry_base_ns = 20000;   /* keep runs short: */
    md.retry_max_ns = 100000;                                  /* backoff capped at 0.1 ms */
    if (md.max_retries > 3 && md.max_retries <= 1000) md.max_retries = 3;   /* out-of-range values stay */
    if (!use_pull && rd(&r, 1) % 8 == 0) {   /* an N x result_size that overflows: refused */
        md.count = (size_t)-1 / 2;
        if (md.result_size < 4) md.result_size = 4;
        md.result_size |= (size_t)rd(&r, 4) << 8;   /* huge sizes too */
    }
    batch_map_summary sum;
    uint64_t acc = 0;
    batch_result mr = batch_map_run(pool, &md, &sum, with_fold ? &acc : NULL);
    switch ((int)mr) {
        case BATCH_ERR_INVALID: break;
        case BATCH_OK: case BATCH_PARTIAL: case BATCH_ERR_FAILED: {
            size_t n = use_pull ? s.n : md.count;
            if (sum.items + sum.unprocessed != n && !(use_pull && sum.status == BATCH_JOB_FAILED)) die("items do not add up");
            if (sum.succeeded + sum.failed != sum.items) die("item counts");
            break;
        }
        default: die("map: unexpected result");
    }
    batch_run_desc rdsc = { .policy = (batch_failure_policy)(rd(&r, 1) % 3), .max_concurrency = (int)(int8_t)rd(&r, 1),
                            .priority = (batch_priority)(rd(&r, 1) % 8), .timeout_ns = rd(&r, 1) & 1 ? 0 : UINT64_MAX,
                            .progress = { .events = (unsigned)rd(&r, 2), .interval_ms = (unsigned)rd(&r, 4) } };
    batch_graph* g;
    if (batch_graph_create(&g, NULL) != BATCH_OK) die("graph");
    batch_result gr = batch_graph_run(pool, g, &rdsc, NULL);
    if (gr != BATCH_OK && gr != BATCH_ERR_INVALID) die("graph run: unexpected result");
    batch_graph_destroy(g);
    batch_pool_destroy(pool);
    return 0;
}
