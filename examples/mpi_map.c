/* mpi_map.c - one batched map over every MPI rank (batch_mpi_map), checked against the same map
   run in one process.

   Build and run (make mpi-test does both, for 1..4 ranks x 1..2 workers):
       mpicc -std=c11 -O2 -I. -I/usr/include/stb examples/mpi_map.c -o build/examples/mpi_map
       mpirun --oversubscribe -np 3 build/examples/mpi_map [--workers W] [--test] [--slow-rank R]

   Without --test: a map of 100000 items (some fail, some batches fail once and are retried)
   folded into a sum, and its summary printed by rank 0 with every rank's share.
   --test: several maps (unordered sum, ordered 2x2 matrix product, thresholds, retries, an
   adaptive map) each compared on every rank with the one-process answer: the same bytes and
   counts; the last line is "N passed, N failed" (rank 0).
   --slow-rank R: rank R sleeps 200 us per item; the job still ends in balanced time, because
   rank 0 hands batches to whoever asks (the share of each rank is printed). */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#define BATCH_MPI
#define BATCH_IMPLEMENTATION
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int g_rank, g_size, g_slow_rank = -1;

typedef struct mat2 { uint32_t a, b, c, d; } mat2;
static void mat_mul(mat2* x, const mat2* y) {   /* x = x * y, mod 2^32: not commutative */
    mat2 r = { x->a * y->a + x->b * y->c, x->a * y->b + x->b * y->d, x->c * y->a + x->d * y->c, x->c * y->b + x->d * y->d };
    *x = r;
}
static mat2 mat_of(uint64_t i) { uint32_t y = (uint32_t)(i * 2654435761u); mat2 m = { y | 1, y >> 3, y >> 7, (y >> 11) | 1 }; return m; }

/* item i fails for good when i % 97 == 5; batch b fails its first attempt when b % 7 == 3 */
static int item(batch_ctx* ctx, const batch_item* it, void* res, void* user) {
    int ordered = user != NULL;
    if (g_slow_rank == -2 || g_rank == g_slow_rank) { struct timespec ts = { 0, 200000 }; nanosleep(&ts, NULL); }
    if (ordered) { mat2 m = mat_of(it->index); memcpy(res, &m, sizeof m); }
    else *(uint64_t*)res = it->index * it->index + 1;
    if (it->index % 97 == 5) return batch_ctx_fail(ctx, 7, "item %zu is bad", it->index);
    if (batch_ctx_batch_index(ctx) % 7 == 3 && batch_ctx_attempt(ctx) == 0) return batch_ctx_fail(ctx, 8, "first attempt");
    return 0;
}
/* the same items a run at a time (items_fn): failures reported, successes folded here */
static int items(batch_ctx* ctx, const batch_item_range* r, void* user) {
    size_t rs = user ? sizeof(mat2) : sizeof(uint64_t);
    for (size_t i = 0; i < r->count; i++) {
        batch_item it = { r->first_index + i, NULL };
        unsigned char* res = r->results + i * rs;
        int rc = item(ctx, &it, res, user);
        if (rc) batch_ctx_fail_item(ctx, it.index, rc, "item %zu failed", it.index);
        else if (user) mat_mul((mat2*)r->acc, (const mat2*)res);
        else *(uint64_t*)r->acc += *(const uint64_t*)res;
    }
    return 0;
}
static void sum_init(void* acc, void* u) { (void)u; *(uint64_t*)acc = 0; }
static void sum_fold(void* acc, const batch_item* it, const void* r, void* u) { (void)it; (void)u; *(uint64_t*)acc += *(const uint64_t*)r; }
static void sum_combine(void* acc, const void* o, void* u) { (void)u; *(uint64_t*)acc += *(const uint64_t*)o; }
static void mat_init(void* acc, void* u) { (void)u; mat2 id = { 1, 0, 0, 1 }; memcpy(acc, &id, sizeof id); }
static void mat_fold(void* acc, const batch_item* it, const void* r, void* u) { (void)it; (void)u; mat_mul((mat2*)acc, (const mat2*)r); }
static void mat_combine(void* acc, const void* o, void* u) { (void)u; mat_mul((mat2*)acc, (const mat2*)o); }

static batch_map_desc make_desc(size_t n, int ordered, size_t batch_size, double threshold, int retries) {
    batch_map_desc d;
    memset(&d, 0, sizeof d);
    d.count = n;
    d.item_fn = item;
    d.user_data = ordered ? (void*)1 : NULL;
    d.batch_size = batch_size;
    d.error_threshold = threshold;
    d.max_retries = retries;
    d.retry_base_ns = 100000;
    d.ordered = ordered;
    d.result_size = d.acc_size = ordered ? sizeof(mat2) : sizeof(uint64_t);
    d.init_fn = ordered ? mat_init : sum_init;
    d.fold_fn = ordered ? mat_fold : sum_fold;
    d.combine_fn = ordered ? mat_combine : sum_combine;
    return d;
}

static int passed, failed;
static void check(int ok, const char* what) {
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);   /* every rank must agree */
    if (g_rank == 0) printf("%s %s\n", all ? "ok  " : "FAIL", what);
    if (all) passed++; else failed++;
}

/* The map on all ranks vs the same map in this process alone (inline pool). */
static void compare(batch_pool* pool, const char* name, batch_map_desc d) {
    batch_pool* one;
    batch_pool_create(&one, &(batch_pool_desc){ .workers = BATCH_WORKERS_INLINE });
    unsigned char want[16] = { 0 }, got[16] = { 0 };
    batch_map_summary ws, gs;
    batch_result wr = batch_map_run(one, &d, &ws, want);
    batch_pool_destroy(one);
    batch_mpi_rank_stats* per = (batch_mpi_rank_stats*)calloc((size_t)g_size, sizeof *per);
    batch_result gr = batch_mpi_map(MPI_COMM_WORLD, pool, &d, &gs, got, per);
    uint64_t share = 0;
    for (int i = 0; i < g_size; i++) share += per[i].items;
    char what[256];
    snprintf(what, sizeof what, "%s: result %s, %llu items (%llu failed), %llu batches (%llu FAILED), retries %llu", name,
             batch_result_string(gr), (unsigned long long)gs.items, (unsigned long long)gs.failed,
             (unsigned long long)gs.batches, (unsigned long long)gs.batches_failed, (unsigned long long)gs.retries);
    int ok = gr == wr && memcmp(got, want, d.acc_size) == 0 && gs.items == ws.items && gs.succeeded == ws.succeeded &&
             gs.failed == ws.failed && gs.batches == ws.batches && gs.batches_failed == ws.batches_failed &&
             gs.batches_partial == ws.batches_partial && gs.retries == ws.retries && gs.unprocessed == ws.unprocessed &&
             share == gs.items;
    if (!ok && g_rank == 0)
        fprintf(stderr, "  %s: one process says %s, %llu items, %llu failed, %llu batches, %llu retries\n", name,
                batch_result_string(wr), (unsigned long long)ws.items, (unsigned long long)ws.failed,
                (unsigned long long)ws.batches, (unsigned long long)ws.retries);
    check(ok, what);
    free(per);
}

static int run_tests(batch_pool* pool) {
    compare(pool, "unordered sum, batches of 50", make_desc(20000, 0, 50, 0.05, 2));
    compare(pool, "ordered matrix product, batches of 37", make_desc(20000, 1, 37, 0.05, 2));
    compare(pool, "ordered, default sizes (n / 64)", make_desc(30000, 1, 0, 0.05, 1));
    compare(pool, "no retries: FAILED batches fold nothing", make_desc(5000, 1, 20, 0.0, 0));
    compare(pool, "threshold 0: every failure fails its batch", make_desc(5000, 0, 10, 0.0, 3));
    compare(pool, "one item", make_desc(1, 1, 10, 0.5, 1));
    for (int ordered = 0; ordered < 2; ordered++) {   /* the same maps through items_fn */
        batch_map_desc d = make_desc(20000, ordered, ordered ? 37 : 50, 0.05, 2);
        d.item_fn = NULL;
        d.items_fn = items;
        d.fold_fn = NULL;
        compare(pool, ordered ? "items_fn, ordered matrix product" : "items_fn, unordered sum", d);
    }
    compare(pool, "no items", make_desc(0, 0, 10, 0.5, 1));
    {   /* adaptive sizes depend on timing: only the fold and the counts must match */
        batch_map_desc d = make_desc(50000, 0, 0, 0.5, 2);
        d.min_batch = 3;   /* at most 1 bad item in 3: no batch FAILED for good; first attempts that fail whole are retried */
        unsigned char got[8];
        batch_map_summary s;
        batch_result r = batch_mpi_map(MPI_COMM_WORLD, pool, &d, &s, got, NULL);
        uint64_t want = 0, nfail = 0;
        for (uint64_t i = 0; i < 50000; i++) { if (i % 97 == 5) nfail++; else want += i * i + 1; }
        int ok = r == BATCH_PARTIAL && memcmp(got, &want, 8) == 0 && s.items == 50000 && s.failed == nfail;
        if (!ok && g_rank == 0)
            fprintf(stderr, "  adaptive: %s, %llu items, %llu failed (want %llu), %llu batches %llu FAILED, final size %zu\n",
                    batch_result_string(r), (unsigned long long)s.items, (unsigned long long)s.failed,
                    (unsigned long long)nfail, (unsigned long long)s.batches, (unsigned long long)s.batches_failed, s.final_batch_size);
        check(ok, "adaptive sizes: the sum and the counts");
    }
    {   /* bad input is refused on every rank, and nothing runs */
        batch_map_desc d = make_desc(100, 0, 10, 0.5, 1);
        d.on_batch = (batch_on_batch_fn)(void (*)(void))item;   /* any non-NULL: refused before use */
        batch_result r = batch_mpi_map(MPI_COMM_WORLD, pool, &d, NULL, NULL, NULL);
        d = make_desc(g_rank == 0 ? 100 : 101, 0, 10, 0.5, 1);   /* ranks that disagree */
        batch_result r2 = batch_mpi_map(MPI_COMM_WORLD, pool, &d, NULL, NULL, NULL);
        check(r == BATCH_ERR_INVALID && (g_size == 1 || r2 == BATCH_ERR_INVALID), "bad input: on_batch, ranks that disagree");
    }
    {   /* a timeout stops every rank; the counts still add up */
        batch_map_desc d = make_desc(200000, 0, 10, 0.5, 0);
        d.timeout_ns = 20000000;
        g_slow_rank = -2;   /* everybody slow */
        batch_map_summary s;
        batch_result r = batch_mpi_map(MPI_COMM_WORLD, pool, &d, &s, NULL, NULL);
        g_slow_rank = -1;
        check(r == BATCH_ERR_TIMEOUT && s.items + s.unprocessed == 200000 && s.items < 200000, "timeout: every rank stops");
    }
    {   /* the halt ratio stops every rank: what ran is counted, the rest is unprocessed */
        batch_map_desc d = make_desc(200000, 0, 10, 0.5, 0);
        d.halt_error_ratio = 0.001;   /* 1 item in 97 fails: passed after the first failures */
        batch_map_summary s;
        batch_result r = batch_mpi_map(MPI_COMM_WORLD, pool, &d, &s, NULL, NULL);
        check(r == BATCH_ERR_FAILED && s.status == BATCH_JOB_FAILED && s.items + s.unprocessed == 200000 && s.items < 200000,
              "halt: every rank stops starting batches");
    }
    {   /* a journal on rank 0: a finished job run again runs nothing and gives the same bytes */
        char path[96];
        snprintf(path, sizeof path, "/tmp/batch-mpi-test-%d.jnl", (int)getppid());   /* mpirun's pid: the same on every rank */
        if (g_rank == 0) remove(path);
        batch_map_desc d = make_desc(20000, 1, 37, 0.05, 2);
        d.journal.path = path;
        unsigned char a[16], b[16];
        batch_map_summary s1, s2;
        batch_mpi_rank_stats* per = (batch_mpi_rank_stats*)calloc((size_t)g_size, sizeof *per);
        batch_result r1 = batch_mpi_map(MPI_COMM_WORLD, pool, &d, &s1, a, NULL);
        batch_result r2 = batch_mpi_map(MPI_COMM_WORLD, pool, &d, &s2, b, per);
        uint64_t ran = 0;
        for (int i = 0; i < g_size; i++) ran += per[i].items;
        check(r1 == BATCH_PARTIAL && r2 == r1 && memcmp(a, b, sizeof(mat2)) == 0 && ran == 0 &&
              s2.resumed_batches == s1.batches && s2.items == s1.items, "journal on rank 0: a resume runs nothing");
        if (g_rank == 0) remove(path);
        free(per);
    }
    if (g_size >= 2) {   /* rank 1 200x slower per item: it gets less than an equal share, the sum is right */
        batch_map_desc d = make_desc(20000, 0, 50, 0.05, 2);
        batch_mpi_rank_stats* per = (batch_mpi_rank_stats*)calloc((size_t)g_size, sizeof *per);
        uint64_t got = 0, want = 0;
        batch_map_summary s;
        g_slow_rank = 1;
        batch_result r = batch_mpi_map(MPI_COMM_WORLD, pool, &d, &s, &got, per);
        g_slow_rank = -1;
        batch_pool* one;
        batch_pool_create(&one, &(batch_pool_desc){ .workers = BATCH_WORKERS_INLINE });
        batch_map_run(one, &d, NULL, &want);
        batch_pool_destroy(one);
        char what[160];
        snprintf(what, sizeof what, "a slow rank: it ran %llu of %llu batches", (unsigned long long)per[1].batches,
                 (unsigned long long)s.batches);
        check(r == BATCH_PARTIAL && got == want && per[1].batches * (uint64_t)g_size < s.batches, what);
        free(per);
    }
    if (g_rank == 0) printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}

int main(int argc, char** argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    int workers = 2, test = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--workers") && i + 1 < argc) workers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--test")) test = 1;
        else if (!strcmp(argv[i], "--slow-rank") && i + 1 < argc) g_slow_rank = atoi(argv[++i]);
    }
    batch_pool* pool;
    if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = workers }) != BATCH_OK) MPI_Abort(MPI_COMM_WORLD, 1);
    int rc = 0;
    if (test) {
        rc = run_tests(pool);
    } else {
        size_t n = g_slow_rank >= 0 ? 20000 : 100000;
        batch_map_desc d = make_desc(n, 0, 50, 0.05, 2);
        uint64_t acc = 0;
        batch_map_summary s;
        batch_mpi_rank_stats* per = (batch_mpi_rank_stats*)calloc((size_t)g_size, sizeof *per);
        batch_result r = batch_mpi_map(MPI_COMM_WORLD, pool, &d, &s, &acc, per);
        if (g_rank == 0) {
            printf("%d ranks x %d workers: %s, sum %llu\n", g_size, workers, batch_result_string(r), (unsigned long long)acc);
            printf("  %llu items: %llu succeeded, %llu failed; %llu batches (%llu partial, %llu failed), %llu retries\n",
                   (unsigned long long)s.items, (unsigned long long)s.succeeded, (unsigned long long)s.failed,
                   (unsigned long long)s.batches, (unsigned long long)s.batches_partial, (unsigned long long)s.batches_failed,
                   (unsigned long long)s.retries);
            printf("  wall %.1f ms, parallel efficiency %.2f\n", (double)s.wall_ns / 1e6, s.parallel_efficiency);
            for (int i = 0; i < g_size; i++)
                printf("  rank %d%s: %llu batches, %llu items, busy %.1f ms\n", i, i == g_slow_rank ? " (slow)" : "",
                       (unsigned long long)per[i].batches, (unsigned long long)per[i].items, (double)per[i].busy_ns / 1e6);
        }
        free(per);
        rc = r != BATCH_PARTIAL;
    }
    batch_pool_destroy(pool);
    MPI_Finalize();
    return rc;
}
