/* bench_mpi.c - batch_mpi_map on this machine: map_skew (the 8 cases of bench.c) across the ranks
   of one mpirun, and the coordination cost per batch. `make bench-mpi` runs it for 1, 2 and 4
   ranks x 1 worker and appends to bench/results_mpi.csv.

   map_skew: efficiency = T_serial / (threads x T), threads = ranks x workers, T the median of
   REPS runs of batch_mpi_map with default (adaptive) sizing; T_serial the median of serial loops
   on rank 0. On a 2-core machine 4 ranks are oversubscribed: efficiency against 4 threads then
   cannot pass 0.5, and the CSV says so (column cores).
   coordination: N batches of one empty item; us per batch = (T_mpi - T_local) / N, T_local the
   same map by batch_map_run on rank 0's pool alone.

   CSV: workload,system,ranks,workers,cores,n,unit,median,min,max */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#define BATCH_MPI
#define BATCH_IMPLEMENTATION
#include "batch.h"
#include "workloads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPS 5

static int g_rank, g_size;

static int skew_item(batch_ctx* ctx, const batch_item* it, void* res, void* user) {
    (void)ctx;
    *(uint64_t*)res = bench_spin((uint64_t)it->index, ((const uint32_t*)user)[it->index]);
    return 0;
}
static int empty_item(batch_ctx* ctx, const batch_item* it, void* res, void* user) {
    (void)ctx; (void)user;
    *(uint64_t*)res = it->index;
    return 0;
}
static void sum_init(void* acc, void* u) { (void)u; *(uint64_t*)acc = 0; }
static void sum_fold(void* acc, const batch_item* it, const void* r, void* u) { (void)it; (void)u; *(uint64_t*)acc += *(const uint64_t*)r; }
static void sum_combine(void* acc, const void* o, void* u) { (void)u; *(uint64_t*)acc += *(const uint64_t*)o; }

static int cmp_d(const void* a, const void* b) { double x = *(const double*)a, y = *(const double*)b; return x < y ? -1 : x > y; }
typedef struct stat3 { double med, min, max; } stat3;
static stat3 stats(double* v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    stat3 s = { v[n / 2], v[0], v[n - 1] };
    return s;
}

static batch_map_desc sum_desc(size_t n, batch_item_fn f, void* user) {
    batch_map_desc d;
    memset(&d, 0, sizeof d);
    d.count = n;
    d.item_fn = f;
    d.user_data = user;
    d.result_size = d.acc_size = sizeof(uint64_t);
    d.init_fn = sum_init; d.fold_fn = sum_fold; d.combine_fn = sum_combine;
    return d;
}

static void row(FILE* csv, const char* wl, const char* sys, int workers, int cores, size_t n, const char* unit, stat3 s) {
    if (g_rank != 0) return;
    printf("%-26s %-12s ranks %d x %d workers  %-12s median %10.4f  (%.4f..%.4f)\n", wl, sys, g_size, workers, unit, s.med, s.min, s.max);
    if (csv) fprintf(csv, "%s,%s,%d,%d,%d,%zu,%s,%g,%g,%g\n", wl, sys, g_size, workers, cores, n, unit, s.med, s.min, s.max);
}

int main(int argc, char** argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    int workers = 1;
    const char* csv_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--workers") && i + 1 < argc) workers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv_path = argv[++i];
    }
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    FILE* csv = NULL;
    if (g_rank == 0 && csv_path) {
        csv = fopen(csv_path, "a");
        if (csv && ftell(csv) == 0) fputs("workload,system,ranks,workers,cores,n,unit,median,min,max\n", csv);
    }
    batch_pool* pool;
    if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = workers }) != BATCH_OK) MPI_Abort(MPI_COMM_WORLD, 1);
    double rounds_per_us = g_rank == 0 ? bench_calibrate_spin(batch_now_ns) : 0;
    MPI_Bcast(&rounds_per_us, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);   /* the same costs everywhere */
    if (g_rank == 0)
        printf("batch_mpi_map: %d ranks x %d workers = %d threads on %d cores%s\n", g_size, workers, g_size * workers, cores,
               g_size * workers > cores ? " (oversubscribed)" : "");

    static const char* const prof[] = { "uniform", "rampup", "rampdn", "pareto" };
    static const struct { const char* name; size_t n; double us; } reg[] = { { "n100k", 100000, 3.3 }, { "n2k", 2000, 165.0 } };
    for (int g = 0; g < 2; g++) {
        for (int p = 0; p < 4; p++) {
            size_t n = reg[g].n;
            uint32_t* costs = (uint32_t*)malloc(n * sizeof *costs);
            double* wt = (double*)malloc(n * sizeof *wt);
            bench_skew_costs(costs, wt, n, p, reg[g].us, rounds_per_us);
            free(wt);
            double ts[REPS], tm[REPS];
            uint64_t want = 0;
            for (int r = 0; r < REPS; r++) {   /* serial on rank 0; the others wait at the barrier */
                if (g_rank == 0) {
                    uint64_t t0 = batch_now_ns(), s = 0;
                    for (size_t i = 0; i < n; i++) s += bench_spin(i, costs[i]);
                    ts[r] = (double)(batch_now_ns() - t0);
                    want = s;
                }
                MPI_Barrier(MPI_COMM_WORLD);
                batch_map_desc d = sum_desc(n, skew_item, costs);
                uint64_t got = 0;
                uint64_t t0 = batch_now_ns();
                batch_result rc = batch_mpi_map(MPI_COMM_WORLD, pool, &d, NULL, &got, NULL);
                tm[r] = (double)(batch_now_ns() - t0);
                if (rc != BATCH_OK || (g_rank == 0 && got != want)) {
                    fprintf(stderr, "rank %d: map_skew %s %s: %s, sum %llu (want %llu)\n", g_rank, prof[p], reg[g].name,
                            batch_result_string(rc), (unsigned long long)got, (unsigned long long)want);
                    MPI_Abort(MPI_COMM_WORLD, 1);
                }
            }
            double eff[REPS];
            stat3 st = g_rank == 0 ? stats(ts, REPS) : (stat3){ 0, 0, 0 };
            for (int r = 0; r < REPS; r++) eff[r] = st.med / ((double)(g_size * workers) * tm[r]);
            char wl[64];
            snprintf(wl, sizeof wl, "map_skew_%s_%s", prof[p], reg[g].name);
            row(csv, wl, "batch-mpi", workers, cores, n, "efficiency", stats(eff, REPS));
            free(costs);
        }
    }

    /* coordination: batches of one empty item, over MPI vs on rank 0 alone */
    {
        size_t n = 20000;
        double tl[REPS], tm[REPS], per[REPS];
        for (int r = 0; r < REPS; r++) {
            batch_map_desc d = sum_desc(n, empty_item, NULL);
            d.batch_size = 1;
            if (g_rank == 0) {
                uint64_t t0 = batch_now_ns();
                batch_map_run(pool, &d, NULL, NULL);
                tl[r] = (double)(batch_now_ns() - t0);
            }
            MPI_Barrier(MPI_COMM_WORLD);
            uint64_t t0 = batch_now_ns();
            batch_mpi_map(MPI_COMM_WORLD, pool, &d, NULL, NULL, NULL);
            tm[r] = (double)(batch_now_ns() - t0);
        }
        stat3 local = g_rank == 0 ? stats(tl, REPS) : (stat3){ 0, 0, 0 };
        for (int r = 0; r < REPS; r++) per[r] = tm[r] / (double)n / 1000.0;
        stat3 mpi = stats(per, REPS);
        row(csv, "mpi_batch_us", "batch-mpi", workers, cores, n, "us_per_batch", mpi);
        stat3 over = { mpi.med - local.med / (double)n / 1000.0, mpi.min - local.med / (double)n / 1000.0,
                       mpi.max - local.med / (double)n / 1000.0 };
        row(csv, "mpi_coordination_us", "batch-mpi", workers, cores, n, "us_per_batch", over);
        stat3 loc = { local.med / (double)n / 1000.0, local.min / (double)n / 1000.0, local.max / (double)n / 1000.0 };
        row(csv, "local_batch_us", "batch", workers, cores, n, "us_per_batch", loc);
    }
    if (csv) fclose(csv);
    batch_pool_destroy(pool);
    MPI_Finalize();
    return 0;
}
