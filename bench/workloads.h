/* workloads.h - the kernels of the batch.h benchmark, one copy of each, shared by every system
   (serial, OpenMP and batch.h in bench.c; oneTBB in bench_tbb.cpp). Compiles as C11 and C++. */
#ifndef BENCH_WORKLOADS_H
#define BENCH_WORKLOADS_H

#include <stddef.h>
#include <stdint.h>
#include <math.h>

#if defined(__GNUC__) || defined(__clang__)
#  define BENCH_NOINLINE __attribute__((noinline))
#  define BENCH_UNUSED __attribute__((unused))
#else
#  define BENCH_NOINLINE
#  define BENCH_UNUSED
#endif

/* ---- spawn: an empty task ---------------------------------------------------------------------
   Every system runs one indirect call per task through this volatile pointer (batch.h calls its
   task function through a pointer as well), so no system can have its task body optimized away. */
static inline void bench_empty(void* user) { (void)user; }
static void (*volatile bench_empty_fp)(void*) BENCH_UNUSED = bench_empty;

/* ---- fib: recursive fork-join ------------------------------------------------------------------ */
#define BENCH_FIB_N 30
#define BENCH_FIB_CUTOFF 16     /* n < BENCH_FIB_CUTOFF is computed serially, by every system */

static BENCH_UNUSED BENCH_NOINLINE long bench_fib_serial(int n) {
    return n < 2 ? n : bench_fib_serial(n - 1) + bench_fib_serial(n - 2);
}

/* The expected value, computed iteratively: checks every system's result. */
static inline long bench_fib_expected(int n) {
    long a = 0, b = 1;
    for (int i = 0; i < n; i++) { long t = a + b; a = b; b = t; }
    return a;
}

/* ---- parfor: sum of fmix64(i) over [0, n) ------------------------------------------------------ */
/* The murmur3 64-bit finalizer: a few multiplies and shifts, not vectorizable without 64-bit
   vector multiplies, so the item cost is the same in every system's loop. */
static inline uint64_t bench_fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

/* One chunk: accumulates locally; the caller adds the result into its total once per chunk. */
static inline uint64_t bench_sum_range(size_t begin, size_t end) {
    uint64_t s = 0;
    for (size_t i = begin; i < end; i++) s += bench_fmix64((uint64_t)i);
    return s;
}

/* Per-thread totals, far enough apart (128 bytes: two cache lines, against the adjacent-line
   prefetcher) that threads adding into their own slot never share a line. */
typedef struct bench_slot {
    uint64_t v;
    char pad[128 - sizeof(uint64_t)];
} bench_slot;

static inline uint64_t bench_slots_sum(const bench_slot* slots, int count) {
    uint64_t s = 0;
    for (int i = 0; i < count; i++) s += slots[i].v;
    return s;
}

/* How a parfor workload splits [0, n). */
typedef enum bench_split {
    BENCH_SPLIT_CHUNK = 0,  /* fixed chunks of `chunk` items, handed out dynamically */
    BENCH_SPLIT_STATIC = 1, /* one contiguous block per thread */
    BENCH_SPLIT_GUIDED = 2  /* the system's own adaptive default */
} bench_split;

/* ---- graphs: chain, fanout, wavefront --------------------------------------------------------
   A graph task (chain, fanout) is the spawn workload's empty call plus one count in the running
   thread's own slot (slot 0: the serial loop or a thread that is not a worker; 1 + k: worker or
   OpenMP thread k), so that every system's run is checked to have run each task exactly once
   without a shared atomic counter. */
static inline void bench_graph_task(bench_slot* slot) {
    bench_empty_fp(NULL);
    slot->v++;
}

/* Wavefront: an (R + 1) x (C + 1) grid (row stride C + 1) whose row 0 and column 0 stay 0; cell
   (i, j), 1 <= i <= R, 1 <= j <= C, depends on (i - 1, j) and (i, j - 1) and becomes
   max(up, left) + 1, so cell (i, j) ends as i + j - 1 and the corner (R, C) as R + C - 1. Not
   inlined: every system pays one call per cell. */
static BENCH_UNUSED BENCH_NOINLINE void bench_wave_cell(uint32_t* cell, size_t stride) {
    uint32_t up = *(cell - stride), left = *(cell - 1);
    *cell = (up > left ? up : left) + 1;
}

/* ---- deterministic random numbers (random DAGs, Pareto costs) ------------------------------- */
static inline uint64_t bench_splitmix64(uint64_t* state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ---- maps with skewed item costs --------------------------------------------------------------
   An item of cost r runs r dependent rounds of fmix64 (latency-bound: the same speed in every
   system's loop). bench.c calibrates rounds per microsecond once at startup. */
static inline uint64_t bench_spin(uint64_t x, uint32_t rounds) {
    for (uint32_t r = 0; r < rounds; r++) x = bench_fmix64(x + r);
    return x;
}

/* Rounds of bench_spin per microsecond: the fastest of 7 timed runs of ~2 ms (now: a ns clock). */
static BENCH_UNUSED double bench_calibrate_spin(uint64_t (*now)(void)) {
    static volatile uint64_t sink;
    uint32_t rounds = 1u << 18;
    double best = 0;
    for (int k = 0; k < 7; k++) {
        uint64_t t0 = now();
        sink = bench_spin((uint64_t)k, rounds);
        uint64_t t = now() - t0;
        double r = (double)rounds * 1000.0 / (double)(t ? t : 1);
        if (r > best) best = r;
    }
    (void)sink;
    return best;
}

/* The skew profiles: item i's cost in rounds, for a mean of mean_us microseconds. 0 uniform,
   1 ramp up, 2 ramp down, 3 Pareto (alpha 1.5, seeded by n). wt: n doubles of scratch. */
static BENCH_UNUSED void bench_skew_costs(uint32_t* costs, double* wt, size_t n, int profile, double mean_us,
                                          double rounds_per_us) {
    uint64_t seed = 0x5eed0000u + (uint64_t)n;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double x = ((double)i + 0.5) / (double)n;
        switch (profile) {
        case 0: wt[i] = 1.0; break;
        case 1: wt[i] = x; break;
        case 2: wt[i] = 1.0 - x; break;
        default: {   /* x_m / U^(1/alpha), alpha = 1.5, U in (0, 1] */
            double u = (double)((bench_splitmix64(&seed) >> 11) + 1) * (1.0 / 9007199254740992.0);
            wt[i] = 1.0 / pow(u, 1.0 / 1.5);
            break;
        }
        }
        total += wt[i];
    }
    double scale = mean_us * rounds_per_us * (double)n / total;
    for (size_t i = 0; i < n; i++) {
        double r = wt[i] * scale;
        costs[i] = r < 1 ? 1u : r > 4e9 ? 4000000000u : (uint32_t)(r + 0.5);
    }
}

/* ---- oneTBB side (bench_tbb.cpp), linked only into build/bench/bench_tbb -------------------- */
#ifdef __cplusplus
extern "C" {
#endif
/* Creates an arena of `threads` slots (the calling thread takes one). 0 on failure. */
int bench_tbb_init(int threads);
void bench_tbb_fini(void);
/* n empty tasks from one task_group, then wait. */
void bench_tbb_spawn(size_t n);
/* fib(n) with task_group fork-join and the BENCH_FIB_CUTOFF serial cutoff. */
long bench_tbb_fib(int n);
/* sum of fmix64(i) over [0, n): parallel_for with per-thread totals. */
uint64_t bench_tbb_parfor(size_t n, size_t chunk, int split);
/* Flow graphs of continue_nodes, built once (outside the timed region) and run any number of
   times: a chain of n nodes; one node, n successors, one join; a rows x cols wavefront over grid
   ((rows + 1) x (cols + 1), see bench_wave_cell). Tasks count into slots[1 + arena slot]. Each
   build replaces the previous graph of its kind; 0 on failure. */
int bench_tbb_chain_build(size_t n, bench_slot* slots);
void bench_tbb_chain_run(void);
int bench_tbb_fanout_build(size_t n, bench_slot* slots);
void bench_tbb_fanout_run(void);
int bench_tbb_wave_build(size_t rows, size_t cols, uint32_t* grid);
void bench_tbb_wave_run(void);
void bench_tbb_graphs_free(void);
#ifdef __cplusplus
}
#endif

#endif /* BENCH_WORKLOADS_H */
