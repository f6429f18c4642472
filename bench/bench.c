/* bench.c - the batch.h benchmark harness.

   Runs every workload on batch.h and on the systems it is compared with: a serial loop
   (`serial`), OpenMP (`openmp`, and for maps `openmp-static`, `openmp-dyn1`, `openmp-dyn1024`,
   `openmp-guided`) and, in the build/bench/bench_tbb binary (compiled with -DBENCH_TBB, see
   bench_tbb.cpp), oneTBB (`tbb`). Graph runs use batch.h twice: `batch` (the default, task times
   recorded) and `batch-notimes` (batch_run_desc.no_task_times = 1).

   The systems are interleaved: each repetition runs every system once, round-robin, starting one
   system further each repetition, so machine noise hits all of them alike. After one untimed
   warm-up per system, `reps` samples are taken per system; the table and the CSV give median, min
   and max. A sample is one run of the workload. Before every sample the harness sleeps
   --settle-us (20 ms): long enough for the previous system's spinning threads (libgomp spins for
   several ms after a region) to go to sleep instead of taking CPU from the next system. Tasks and
   loops are then called the way a program calls a pool: one untimed call, then --pause-us (1 ms)
   idle, then the timed call; a fib sample is the mean of 10 such calls (5 with --quick), as one
   takes only a few ms.

   Workloads, by section (names and units are what the CSV carries):
     tasks and loops  spawn, fib, parfor_*                                   ns/task, ms, ns/item
                      wake_latency, wake_latency_parked: ns from a submit (OpenMP: entering
                      a parallel region) until all T threads run, after --pause-us idle, or
                      after 50 ms (every runtime's threads asleep); the mean of n wake-ups
     graphs           chain, chain_build, chain_1e5/1e6/1e7, wavefront,
                      wavefront_build, fanout                                ns_per_task
                      *_build: create + add + edges + validate + run timed (destroy is not);
                      the others build the graph once, untimed, and time batch_graph_run only.
     graph build      graph_build (ns per task + edge), graph_memory_task, graph_memory_edge
                      (bytes: live bytes batch.h holds, from a counting BATCH_MALLOC)
     maps             map_trivial (ns_per_item), map_range_trivial (ns_per_item: i * i summed,
                      a run of items per items_fn call), map_skew_<profile>_<regime> (efficiency
                      = T_serial / (threads x T): higher is better)
     map memory       map_memory_1e5, map_memory_1e8 (1e7 with --quick): peak RSS (VmHWM, kib)
                      of a streaming fold from a pull source, each sample in a fresh process
                      (this binary re-executed with --map-memory-child N)

   Thread accounting (T = --threads, default the CPU count):
     parfor_*, spawn, wake_latency*
                batch_pool_parallel_for runs on its workers and on the calling thread, spawn's
                calling thread is busy submitting, and wake_latency's takes part: the pool has T-1
                workers (at least 1), T threads in all, like OpenMP's team of T and a oneTBB
                arena of T slots.
     fib, graphs, maps
                the calling thread only submits (or launches) and sleeps in the wait, so the pool
                has T workers. OpenMP: a team of T, one of which produces (`single`) and then helps
                at the taskwait/barrier; maps: `parallel for` on a team of T. oneTBB: an arena of
                T slots, the caller takes one and helps at wait().

   Usage: bench [--quick] [--threads T] [--reps R] [--only W[,W...]] [--systems S[,S...]]
                [--settle-us U] [--pause-us U] [--spin-us U] [--csv FILE]
   --only takes workload names, or a prefix of a family: map_skew, graph_memory, map_memory.   */
#define _POSIX_C_SOURCE 200809L   /* before any header: fork, execv, pipe, waitpid, nanosleep */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

/* ---- the counting allocator ---------------------------------------------------------------------
   Every block batch.h allocates (stb_ds containers included) carries a 16-byte header with its
   requested size, so that bench_live is the number of bytes batch.h holds at any moment. One
   relaxed atomic add per allocation (pool task slabs are allocated rarely, so the timed
   workloads do not notice). The peak is tracked only while bench_peak_on is set. */
static void* bench_malloc(size_t sz);
static void* bench_realloc(void* p, size_t sz);
static void bench_free(void* p);
#define BATCH_MALLOC(sz, ctx) ((void)(ctx), bench_malloc(sz))
#define BATCH_REALLOC(p, sz, ctx) ((void)(ctx), bench_realloc((p), (sz)))
#define BATCH_FREE(p, ctx) ((void)(ctx), bench_free(p))

#define BATCH_IMPLEMENTATION
#include "batch.h"
#include "workloads.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_ALLOC_HDR 16   /* keeps malloc's 16-byte alignment */
static _Atomic long long bench_live, bench_peak;
static _Atomic int bench_peak_on;

static void bench_note(long long delta) {
    long long now = atomic_fetch_add_explicit(&bench_live, delta, memory_order_relaxed) + delta;
    if (delta > 0 && atomic_load_explicit(&bench_peak_on, memory_order_relaxed)) {
        long long p = atomic_load_explicit(&bench_peak, memory_order_relaxed);
        while (now > p && !atomic_compare_exchange_weak_explicit(&bench_peak, &p, now, memory_order_relaxed,
                                                                 memory_order_relaxed)) {}
    }
}

static void* bench_malloc(size_t sz) {
    unsigned char* b = (unsigned char*)malloc(sz + BENCH_ALLOC_HDR);
    if (!b) return NULL;
    memcpy(b, &sz, sizeof sz);
    bench_note((long long)sz);
    return b + BENCH_ALLOC_HDR;
}

/* Counted as "new block, then old block freed": a moving realloc holds both for a moment. */
static void* bench_realloc(void* p, size_t sz) {
    if (!p) return bench_malloc(sz);
    unsigned char* b = (unsigned char*)p - BENCH_ALLOC_HDR;
    size_t old;
    memcpy(&old, b, sizeof old);
    unsigned char* nb = (unsigned char*)realloc(b, sz + BENCH_ALLOC_HDR);
    if (!nb) return NULL;
    memcpy(nb, &sz, sizeof sz);
    bench_note((long long)sz);
    bench_note(-(long long)old);
    return nb + BENCH_ALLOC_HDR;
}

static void bench_free(void* p) {
    if (!p) return;
    unsigned char* b = (unsigned char*)p - BENCH_ALLOC_HDR;
    size_t sz;
    memcpy(&sz, b, sizeof sz);
    bench_note(-(long long)sz);
    free(b);
}

/* ---- systems ------------------------------------------------------------------------------------ */
typedef enum sys_id {
    SYS_SERIAL, SYS_OPENMP, SYS_OMP_STATIC, SYS_OMP_DYN1, SYS_OMP_DYN1024, SYS_OMP_GUIDED, SYS_TBB,
    SYS_BATCH, SYS_BATCH_NT, SYS_JBUF, SYS_JPROC, SYS_JSYNC64, SYS_JSYNC, SYS_COUNT
} sys_id;
static const char* const sys_names[SYS_COUNT] = {
    "serial", "openmp", "openmp-static", "openmp-dyn1", "openmp-dyn1024", "openmp-guided", "tbb", "batch", "batch-notimes",
    "journal-buffered", "journal-process", "journal-machine64", "journal-machine"
};
/* The journal systems: batch with a journal at each durability level (machine64: an fdatasync
   every 64 records, machine: after every record). */
#define JNL_SYS (B(SYS_JBUF) | B(SYS_JPROC) | B(SYS_JSYNC64) | B(SYS_JSYNC))
static bool sys_journal(sys_id s) { return s >= SYS_JBUF && s <= SYS_JSYNC; }
#define B(s) (1u << (s))
#define SYS_OMP_MAPS (B(SYS_OMP_STATIC) | B(SYS_OMP_DYN1) | B(SYS_OMP_DYN1024) | B(SYS_OMP_GUIDED))

#ifdef BENCH_TBB
#  define BENCH_HAVE_TBB 1
#else
#  define BENCH_HAVE_TBB 0
#endif

/* ---- workloads ---------------------------------------------------------------------------------- */
typedef enum section { SEC_TASKS, SEC_GRAPHS, SEC_BUILD, SEC_MAPS, SEC_MEMORY, SEC_JOURNAL, SEC_COUNT } section;

typedef enum wl_kind {
    WL_SPAWN, WL_FIB, WL_PARFOR, WL_WAKE, WL_WAKE_PARKED,
    WL_CHAIN, WL_CHAIN_BUILD, WL_CHAIN_REBUILD, WL_WAVE, WL_WAVE_BUILD, WL_FANOUT,
    WL_GRAPH_BUILD, WL_GMEM_TASK, WL_GMEM_EDGE,
    WL_MAP_TRIVIAL, WL_MAP_SKEW, WL_MAP_MEMORY, WL_MAP_RANGE
} wl_kind;

typedef enum skew_profile { PROF_UNIFORM, PROF_RAMPUP, PROF_RAMPDN, PROF_PARETO } skew_profile;

typedef struct workload {
    const char* name;
    wl_kind kind;
    section sec;
    const char* unit;
    unsigned systems;           /* B(sys) of the systems that run it */
    size_t n_full, n_quick;     /* problem size (wavefront: the side); 0: not run in that mode */
    bench_split split;          /* parfor only */
    size_t chunk;               /* parfor with BENCH_SPLIT_CHUNK */
    skew_profile profile;       /* map_skew only */
    double mean_us;             /* map_skew only: mean item cost */
} workload;

#define TASK_SYS (B(SYS_SERIAL) | B(SYS_OPENMP) | B(SYS_TBB) | B(SYS_BATCH))
#define GRAPH_SYS (B(SYS_SERIAL) | B(SYS_OPENMP) | B(SYS_TBB) | B(SYS_BATCH) | B(SYS_BATCH_NT))
#define BUILD_SYS (B(SYS_SERIAL) | B(SYS_OPENMP) | B(SYS_BATCH) | B(SYS_BATCH_NT))
#define SCALE_SYS (B(SYS_SERIAL) | B(SYS_BATCH) | B(SYS_BATCH_NT))
#define SKEW_SYS (B(SYS_SERIAL) | SYS_OMP_MAPS | B(SYS_BATCH))
#define SKEW(prof, pname, reg, n, nq, us) \
    { "map_skew_" pname "_" reg, WL_MAP_SKEW, SEC_MAPS, "efficiency", SKEW_SYS, n, nq, BENCH_SPLIT_CHUNK, 0, prof, us }

static const workload workloads[] = {
    { "spawn",         WL_SPAWN,  SEC_TASKS, "ns/task", TASK_SYS, 1000000, 500000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "fib",           WL_FIB,    SEC_TASKS, "ms",      TASK_SYS, BENCH_FIB_N, BENCH_FIB_N, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "parfor_c1",     WL_PARFOR, SEC_TASKS, "ns/item", TASK_SYS, 10000000, 4000000, BENCH_SPLIT_CHUNK, 1, 0, 0 },
    { "parfor_c64",    WL_PARFOR, SEC_TASKS, "ns/item", TASK_SYS, 10000000, 4000000, BENCH_SPLIT_CHUNK, 64, 0, 0 },
    { "parfor_c1024",  WL_PARFOR, SEC_TASKS, "ns/item", TASK_SYS, 10000000, 4000000, BENCH_SPLIT_CHUNK, 1024, 0, 0 },
    { "parfor_static", WL_PARFOR, SEC_TASKS, "ns/item", TASK_SYS, 10000000, 4000000, BENCH_SPLIT_STATIC, 0, 0, 0 },
    { "parfor_guided", WL_PARFOR, SEC_TASKS, "ns/item", TASK_SYS, 10000000, 4000000, BENCH_SPLIT_GUIDED, 0, 0, 0 },
    /* n: wake-ups averaged per sample; _parked: after BENCH_PARKED_US idle instead of --pause-us */
    { "wake_latency",        WL_WAKE,        SEC_TASKS, "ns", B(SYS_OPENMP) | B(SYS_BATCH), 20, 10, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "wake_latency_parked", WL_WAKE_PARKED, SEC_TASKS, "ns", B(SYS_OPENMP) | B(SYS_BATCH), 10, 5, BENCH_SPLIT_CHUNK, 0, 0, 0 },

    { "chain",           WL_CHAIN,       SEC_GRAPHS, "ns_per_task", GRAPH_SYS, 1000000, 200000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "chain_build",     WL_CHAIN_BUILD, SEC_GRAPHS, "ns_per_task", BUILD_SYS, 1000000, 200000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    /* batch_graph_clear, then the same build in the memory the graph kept: no page faults */
    { "chain_rebuild",   WL_CHAIN_REBUILD, SEC_GRAPHS, "ns_per_task", B(SYS_BATCH) | B(SYS_BATCH_NT), 1000000, 200000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "chain_1e5",       WL_CHAIN,       SEC_GRAPHS, "ns_per_task", SCALE_SYS, 100000, 100000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "chain_1e6",       WL_CHAIN,       SEC_GRAPHS, "ns_per_task", SCALE_SYS, 1000000, 1000000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "chain_1e7",       WL_CHAIN,       SEC_GRAPHS, "ns_per_task", SCALE_SYS, 10000000, 0, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "wavefront",       WL_WAVE,        SEC_GRAPHS, "ns_per_task", GRAPH_SYS, 1000, 300, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "wavefront_build", WL_WAVE_BUILD,  SEC_GRAPHS, "ns_per_task", BUILD_SYS, 1000, 300, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "fanout",          WL_FANOUT,      SEC_GRAPHS, "ns_per_task", GRAPH_SYS, 1000000, 200000, BENCH_SPLIT_CHUNK, 0, 0, 0 },

    { "graph_build",       WL_GRAPH_BUILD, SEC_BUILD, "ns_per_task_edge", B(SYS_BATCH), 1000000, 200000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "graph_memory_task", WL_GMEM_TASK,   SEC_BUILD, "bytes", B(SYS_BATCH), 1000000, 1000000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "graph_memory_edge", WL_GMEM_EDGE,   SEC_BUILD, "bytes", B(SYS_BATCH), 1000000, 1000000, BENCH_SPLIT_CHUNK, 0, 0, 0 },

    { "map_trivial", WL_MAP_TRIVIAL, SEC_MAPS, "ns_per_item", B(SYS_SERIAL) | B(SYS_OMP_STATIC) | B(SYS_BATCH),
      10000000, 4000000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "map_range_trivial", WL_MAP_RANGE, SEC_MAPS, "ns_per_item", B(SYS_SERIAL) | B(SYS_OPENMP) | B(SYS_BATCH),
      100000000, 10000000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    SKEW(PROF_UNIFORM, "uniform", "n100k", 100000, 10000, 3.3),
    SKEW(PROF_RAMPUP,  "rampup",  "n100k", 100000, 10000, 3.3),
    SKEW(PROF_RAMPDN,  "rampdn",  "n100k", 100000, 10000, 3.3),
    SKEW(PROF_PARETO,  "pareto",  "n100k", 100000, 10000, 3.3),
    SKEW(PROF_UNIFORM, "uniform", "n2k",   2000,   200,   165.0),
    SKEW(PROF_RAMPUP,  "rampup",  "n2k",   2000,   200,   165.0),
    SKEW(PROF_RAMPDN,  "rampdn",  "n2k",   2000,   200,   165.0),
    SKEW(PROF_PARETO,  "pareto",  "n2k",   2000,   200,   165.0),

    { "map_memory_1e5", WL_MAP_MEMORY, SEC_MEMORY, "kib", B(SYS_BATCH), 100000, 100000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "map_memory_1e8", WL_MAP_MEMORY, SEC_MEMORY, "kib", B(SYS_BATCH), 100000000, 0, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "map_memory_1e7", WL_MAP_MEMORY, SEC_MEMORY, "kib", B(SYS_BATCH), 0, 10000000, BENCH_SPLIT_CHUNK, 0, 0, 0 },

    /* the journal's cost: map_trivial (one record per batch) and chain (one per task; small n,
       since journal-machine pays an fdatasync, ~0.4 ms here, per task) */
    { "journal_map_trivial", WL_MAP_TRIVIAL, SEC_JOURNAL, "ns_per_item", B(SYS_BATCH) | JNL_SYS, 10000000, 2000000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
    { "journal_chain",       WL_CHAIN,       SEC_JOURNAL, "ns_per_task", B(SYS_BATCH_NT) | JNL_SYS, 2000, 1000, BENCH_SPLIT_CHUNK, 0, 0, 0 },
};
#define WL_COUNT ((int)(sizeof workloads / sizeof workloads[0]))

#define DAG_BUILD_DEGREE 3   /* graph_build: up to 3 distinct random predecessors per node */
#define DAG_MEMORY_DEGREE 2  /* graph_memory: 2 per node (2n - 3 edges) */

/* ---- the run's state ------------------------------------------------------------------------ */
typedef struct bench_state {
    int threads;                /* T */
    int reps;
    bool quick;
    unsigned pause_us;          /* tasks and loops: idle time before each timed call */
    unsigned settle_us;         /* idle time before each sample (lets other runtimes' spinning
                                   threads go to sleep so they do not steal the next system's CPU) */
    int spin_us;                /* batch_pool_desc.spin_us of the pools; 0: the library default */
    bool sys_on[SYS_COUNT];
    bool wl_on[WL_COUNT];
    const char* csv_path;
    const char* argv0;
    size_t child_n;             /* --map-memory-child N: this process is one map_memory sample */

    batch_pool* pool_task;      /* spawn, fib, graphs, maps: T workers */
    batch_pool* pool_pfor;      /* parfor: T-1 workers (>= 1) + the caller */
    bench_slot* slots;          /* batch parfor: [0] the caller, [1 + i] worker i */
    int nslots;
    bench_slot* gslots;         /* graph task counts: [0] serial / non-workers, [1 + k] thread k */
    int ngslots;

    uint64_t parfor_ref;        /* the serial sum, computed once */
    long fib_ref;
    int fib_calls;              /* back-to-back fib(30) calls per sample (a sample is ~3 ms) */

    /* the current workload's data (prepare_workload / release_workload) */
    size_t n;                   /* its problem size */
    batch_graph* graph;         /* run-only graph workloads: built once */
    batch_task* handles;
    size_t handles_cap;
    uint32_t* grid;             /* wavefront: (side + 1)^2 */
    size_t wave_side, wave_stride;
    uint32_t* dag_pred;         /* random DAGs: dag_deg predecessors of node i at [i * dag_deg] */
    uint8_t* dag_npred;
    int dag_deg;
    size_t dag_edges;
    uint32_t* costs;            /* map_skew: rounds per item */
    uint64_t map_ref;           /* map_trivial, map_skew: the expected fold */
    bool tbb_graph;             /* a oneTBB graph was built for this workload */

    double rounds_per_us;       /* bench_spin calibration */
    /* what the footer reports */
    size_t gmem_n;              /* graph_memory: measured for this size (0: not yet) */
    double gmem_task, gmem_edge;
    long long gmem_full_bytes, gmem_peak_bytes, gmem_run_peak_bytes;
    size_t gmem_edges;
    size_t map_batches[WL_COUNT];   /* batches of the last batch_map_run */
    long child_base_kib[WL_COUNT];
} bench_state;

static bench_state S;

_Noreturn static void die(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

#define BATCH_CHECK(call)                                                                   \
    do {                                                                                    \
        batch_result r_ = (call);                                                           \
        if (r_ != BATCH_OK) die("%s failed: %s", #call, batch_result_string(r_));           \
    } while (0)

static void* xmalloc(size_t sz) {
    void* p = malloc(sz ? sz : 1);
    if (!p) die("out of memory (%zu bytes)", sz);
    return p;
}

/* Volatile sinks: results are stored here so no system's work can be optimized away. */
static volatile uint64_t sink_u64;
static volatile long sink_long;

static void check_parfor(const char* sys, const workload* w, uint64_t got) {
    sink_u64 = got;
    if (got != S.parfor_ref)
        die("%s %s: wrong sum %llu, the serial sum is %llu", w->name, sys, (unsigned long long)got,
            (unsigned long long)S.parfor_ref);
}

static void check_fib(const char* sys, long got) {
    sink_long = got;
    if (got != S.fib_ref) die("fib %s: fib(%d) = %ld, expected %ld", sys, BENCH_FIB_N, got, S.fib_ref);
}

static size_t workload_n(const workload* w) { return S.quick ? w->n_quick : w->n_full; }

/* The n column: wavefront rows give the cells (the side squared), the others their size. */
static size_t workload_n_shown(const workload* w) {
    size_t n = workload_n(w);
    return (w->kind == WL_WAVE || w->kind == WL_WAVE_BUILD) ? n * n : n;
}

/* Tasks of a graph workload of size n. */
static size_t graph_tasks(const workload* w, size_t n) {
    switch (w->kind) {
    case WL_WAVE: case WL_WAVE_BUILD: return n * n;
    case WL_FANOUT: return n + 2;
    default: return n;
    }
}

/* ---- serial ----------------------------------------------------------------------------------- */
static uint64_t serial_spawn(size_t n) {
    uint64_t t0 = batch_now_ns();
    for (size_t i = 0; i < n; i++) bench_empty_fp(NULL);
    return batch_now_ns() - t0;
}

static uint64_t serial_fib(int n) {
    uint64_t t0 = batch_now_ns();
    long r = bench_fib_serial(n);
    uint64_t t = batch_now_ns() - t0;
    check_fib("serial", r);
    return t;
}

static uint64_t serial_parfor(const workload* w, size_t n) {
    uint64_t t0 = batch_now_ns();
    uint64_t r = bench_sum_range(0, n);
    uint64_t t = batch_now_ns() - t0;
    check_parfor("serial", w, r);
    return t;
}

/* ---- OpenMP ----------------------------------------------------------------------------------- */
static uint64_t omp_spawn(size_t n, int threads) {
    uint64_t t0 = batch_now_ns();
#pragma omp parallel num_threads(threads)
#pragma omp single
    {
        for (size_t i = 0; i < n; i++) {
#pragma omp task
            bench_empty_fp(NULL);
        }
#pragma omp taskwait
    }
    return batch_now_ns() - t0;
}

/* wake_latency: every one of `threads` threads records when it starts, then waits (10 ms at
   most) until all have started, so they run at once on different cores. The sample is the last
   start, from the submit (or the parallel region's entry). */
typedef struct wake_probe { _Atomic int started; int threads; _Atomic uint64_t last; } wake_probe;
static void wake_arrive(wake_probe* w) {
    uint64_t now = batch_now_ns();
    uint64_t prev = atomic_load(&w->last);
    while (prev < now && !atomic_compare_exchange_weak(&w->last, &prev, now)) {}
    atomic_fetch_add(&w->started, 1);
    while (atomic_load(&w->started) < w->threads && batch_now_ns() - now < 10000000u) {}
}
static uint64_t omp_wake(int threads) {
    wake_probe w = { 0, threads, 0 };
    uint64_t t0 = batch_now_ns();
#pragma omp parallel num_threads(threads)
    wake_arrive(&w);
    return atomic_load(&w.last) - t0;
}

static long omp_fib_rec(int n) {
    if (n < BENCH_FIB_CUTOFF) return bench_fib_serial(n);
    long x = 0, y;
#pragma omp task shared(x)
    x = omp_fib_rec(n - 1);
    y = omp_fib_rec(n - 2);
#pragma omp taskwait
    return x + y;
}

static uint64_t omp_fib(int n, int threads) {
    long r = 0;
    uint64_t t0 = batch_now_ns();
#pragma omp parallel num_threads(threads)
#pragma omp single
    r = omp_fib_rec(n);
    uint64_t t = batch_now_ns() - t0;
    check_fib("openmp", r);
    return t;
}

static uint64_t omp_parfor(const workload* w, size_t n, int threads) {
    uint64_t sum = 0;
    int chunk = (int)w->chunk;
    uint64_t t0 = batch_now_ns();
    switch (w->split) {
    case BENCH_SPLIT_CHUNK:
#pragma omp parallel for num_threads(threads) schedule(dynamic, chunk) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) sum += bench_fmix64((uint64_t)i);
        break;
    case BENCH_SPLIT_STATIC:
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) sum += bench_fmix64((uint64_t)i);
        break;
    case BENCH_SPLIT_GUIDED:
#pragma omp parallel for num_threads(threads) schedule(guided) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) sum += bench_fmix64((uint64_t)i);
        break;
    }
    uint64_t t = batch_now_ns() - t0;
    check_parfor("openmp", w, sum);
    return t;
}

/* ---- batch.h ---------------------------------------------------------------------------------- */
static void batch_empty_task(batch_pool* pool, void* user) {
    (void)pool;
    bench_empty_fp(user);
}

static void batch_wake_task(batch_pool* pool, void* user) {
    (void)pool;
    wake_arrive((wake_probe*)user);
}
/* The parfor pool: T-1 workers and this thread, T threads like OpenMP's team. */
static uint64_t batch_wake(void) {
    batch_pool* pool = S.pool_pfor;
    int threads = batch_pool_workers(pool) + 1;
    wake_probe w = { 0, threads, 0 };
    batch_counter c;
    BATCH_CHECK(batch_counter_init(&c, pool));
    uint64_t t0 = batch_now_ns();
    for (int i = 1; i < threads; i++)
        BATCH_CHECK(batch_pool_submit(pool, &(batch_work){ .fn = batch_wake_task, .user_data = &w, .counter = &c }));
    wake_arrive(&w);
    BATCH_CHECK(batch_counter_wait(&c));
    return atomic_load(&w.last) - t0;
}

/* The parfor pool too: this thread produces, so T-1 workers run the tasks (T threads in all). */
static uint64_t batch_spawn(size_t n) {
    batch_pool* pool = S.pool_pfor;
    batch_counter done;
    BATCH_CHECK(batch_counter_init(&done, pool));
    const batch_work work = { .fn = batch_empty_task, .counter = &done };
    uint64_t t0 = batch_now_ns();
    for (size_t i = 0; i < n; i++) BATCH_CHECK(batch_pool_submit(pool, &work));
    BATCH_CHECK(batch_counter_wait(&done));
    return batch_now_ns() - t0;
}

typedef struct fib_job { int n; long result; } fib_job;

/* One child is submitted, the other computed inline, then the stack counter is waited on (the
   worker helps meanwhile). */
static void batch_fib_task(batch_pool* pool, void* user) {
    fib_job* job = (fib_job*)user;
    if (job->n < BENCH_FIB_CUTOFF) { job->result = bench_fib_serial(job->n); return; }
    fib_job a = { job->n - 1, 0 }, b = { job->n - 2, 0 };
    batch_counter c;
    BATCH_CHECK(batch_counter_init(&c, pool));
    BATCH_CHECK(batch_pool_submit(pool, &(batch_work){ .fn = batch_fib_task, .user_data = &a, .counter = &c }));
    batch_fib_task(pool, &b);
    BATCH_CHECK(batch_counter_wait(&c));
    job->result = a.result + b.result;
}

static uint64_t batch_fib(int n) {
    batch_pool* pool = S.pool_task;
    fib_job root = { n, 0 };
    batch_counter done;
    BATCH_CHECK(batch_counter_init(&done, pool));
    uint64_t t0 = batch_now_ns();
    BATCH_CHECK(batch_pool_submit(pool, &(batch_work){ .fn = batch_fib_task, .user_data = &root, .counter = &done }));
    BATCH_CHECK(batch_counter_wait(&done));
    uint64_t t = batch_now_ns() - t0;
    check_fib("batch", root.result);
    return t;
}

/* One chunk: a local sum, added once into the running thread's slot. */
static void batch_parfor_range(batch_pool* pool, size_t begin, size_t end, void* user) {
    bench_slot* slots = (bench_slot*)user;
    uint64_t s = bench_sum_range(begin, end);
    slots[batch_pool_worker_index(pool) + 1].v += s;
}

static uint64_t batch_parfor(const workload* w, size_t n) {
    batch_pool* pool = S.pool_pfor;
    size_t threads = (size_t)batch_pool_workers(pool) + 1;
    size_t chunk = 0;   /* BENCH_SPLIT_GUIDED: the library's default */
    if (w->split == BENCH_SPLIT_CHUNK) chunk = w->chunk;
    else if (w->split == BENCH_SPLIT_STATIC) chunk = (n + threads - 1) / threads;
    for (int i = 0; i < S.nslots; i++) S.slots[i].v = 0;
    uint64_t t0 = batch_now_ns();
    BATCH_CHECK(batch_pool_parallel_for(pool, n, chunk, batch_parfor_range, S.slots));
    uint64_t sum = bench_slots_sum(S.slots, S.nslots);
    uint64_t t = batch_now_ns() - t0;
    check_parfor("batch", w, sum);
    return t;
}

/* ---- graphs: the task functions and the builders ---------------------------------------------- */
static int gtask_count(batch_ctx* ctx, void* user) {
    (void)user;
    bench_graph_task(&S.gslots[batch_ctx_worker(ctx) + 1]);
    return 0;
}

static int gtask_wave(batch_ctx* ctx, void* user) {
    (void)ctx;
    bench_wave_cell((uint32_t*)user, S.wave_stride);
    return 0;
}

static void handles_reserve(size_t n) {
    if (n <= S.handles_cap) return;
    free(S.handles);
    S.handles = (batch_task*)xmalloc(n * sizeof *S.handles);
    S.handles_cap = n;
}

/* n tasks, each before the next, added to g. */
static batch_graph* fill_chain(batch_graph* g, size_t n) {
    batch_task prev = { 0, 0 };
    for (size_t i = 0; i < n; i++) {
        batch_task t;
        BATCH_CHECK(batch_graph_add(g, &(batch_task_desc){ .fn = gtask_count }, &t));
        if (i) BATCH_CHECK(batch_task_precede(g, prev, t));
        prev = t;
    }
    BATCH_CHECK(batch_graph_validate(g, NULL, 0));
    return g;
}
static batch_graph* build_chain(size_t n) {
    batch_graph* g;
    BATCH_CHECK(batch_graph_create(&g, NULL));
    return fill_chain(g, n);
}

/* One task per interior cell of S.grid, after its upper and left neighbours. */
static batch_graph* build_wave(size_t side) {
    batch_graph* g;
    BATCH_CHECK(batch_graph_create(&g, NULL));
    size_t st = S.wave_stride;
    batch_task* h = S.handles;
    for (size_t i = 1; i <= side; i++) {
        for (size_t j = 1; j <= side; j++) {
            batch_task t, pred[2];
            size_t k = 0;
            BATCH_CHECK(batch_graph_add(g, &(batch_task_desc){ .fn = gtask_wave, .user_data = &S.grid[i * st + j] }, &t));
            h[(i - 1) * side + (j - 1)] = t;
            if (i > 1) pred[k++] = h[(i - 2) * side + (j - 1)];
            if (j > 1) pred[k++] = h[(i - 1) * side + (j - 2)];
            if (k) BATCH_CHECK(batch_task_precede_n(g, pred, k, &t, 1));
        }
    }
    BATCH_CHECK(batch_graph_validate(g, NULL, 0));
    return g;
}

/* A root, n successors of it, and a join after all of them. */
static batch_graph* build_fanout(size_t n) {
    batch_graph* g;
    batch_task root, join;
    BATCH_CHECK(batch_graph_create(&g, NULL));
    BATCH_CHECK(batch_graph_add(g, &(batch_task_desc){ .fn = gtask_count }, &root));
    for (size_t i = 0; i < n; i++) BATCH_CHECK(batch_graph_add(g, &(batch_task_desc){ .fn = gtask_count }, &S.handles[i]));
    BATCH_CHECK(batch_task_precede_n(g, &root, 1, S.handles, n));
    BATCH_CHECK(batch_graph_add(g, &(batch_task_desc){ .fn = gtask_count }, &join));
    BATCH_CHECK(batch_task_precede_n(g, S.handles, n, &join, 1));
    BATCH_CHECK(batch_graph_validate(g, NULL, 0));
    return g;
}

/* The random DAG of S.dag_*: node i after its first min(npred, max_preds) predecessors (all of
   lower index). */
static batch_graph* build_dag(size_t n, int max_preds) {
    batch_graph* g;
    BATCH_CHECK(batch_graph_create(&g, NULL));
    batch_task* h = S.handles;
    int deg = S.dag_deg;
    for (size_t i = 0; i < n; i++) {
        BATCH_CHECK(batch_graph_add(g, &(batch_task_desc){ .fn = gtask_count }, &h[i]));
        int k = S.dag_npred[i] < max_preds ? S.dag_npred[i] : max_preds;
        if (!k) continue;
        batch_task pred[8];
        for (int e = 0; e < k; e++) pred[e] = h[S.dag_pred[i * (size_t)deg + (size_t)e]];
        BATCH_CHECK(batch_task_precede_n(g, pred, (size_t)k, &h[i], 1));
    }
    BATCH_CHECK(batch_graph_validate(g, NULL, 0));
    return g;
}

/* Node i gets min(i, deg) distinct predecessors drawn uniformly from [0, i) (seeded). */
static void dag_generate(size_t n, int deg, uint64_t seed) {
    free(S.dag_pred);
    free(S.dag_npred);
    S.dag_pred = (uint32_t*)xmalloc(n * (size_t)deg * sizeof(uint32_t));
    S.dag_npred = (uint8_t*)xmalloc(n);
    S.dag_deg = deg;
    S.dag_edges = 0;
    for (size_t i = 0; i < n; i++) {
        int k = i < (size_t)deg ? (int)i : deg;
        uint32_t* p = &S.dag_pred[i * (size_t)deg];
        for (int e = 0; e < k; e++) {
            for (;;) {
                uint32_t c = (uint32_t)(bench_splitmix64(&seed) % i);
                bool dup = false;
                for (int f = 0; f < e; f++) dup |= p[f] == c;
                if (!dup) { p[e] = c; break; }
            }
        }
        S.dag_npred[i] = (uint8_t)k;
        S.dag_edges += (size_t)k;
    }
}

static void gslots_reset(void) {
    for (int i = 0; i < S.ngslots; i++) S.gslots[i].v = 0;
}

static void check_count(const workload* w, sys_id s, uint64_t expect) {
    uint64_t got = bench_slots_sum(S.gslots, S.ngslots);
    sink_u64 = got;
    if (got != expect)
        die("%s %s: %llu tasks ran, expected %llu", w->name, sys_names[s], (unsigned long long)got,
            (unsigned long long)expect);
}

static void wave_clear(void) {
    size_t st = S.wave_stride;
    memset(S.grid, 0, st * st * sizeof *S.grid);
}

/* Every cell (i, j) must be i + j - 1; the corner (side, side) 2 side - 1. */
static void wave_check(const workload* w, sys_id s) {
    size_t st = S.wave_stride, side = S.wave_side;
    uint32_t corner = S.grid[side * st + side];
    if (corner != 2 * side - 1)
        die("%s %s: corner value %u, expected %zu", w->name, sys_names[s], corner, 2 * side - 1);
    for (size_t i = 1; i <= side; i++)
        for (size_t j = 1; j <= side; j++)
            if (S.grid[i * st + j] != i + j - 1)
                die("%s %s: cell (%zu, %zu) = %u, expected %zu", w->name, sys_names[s], i, j, S.grid[i * st + j], i + j - 1);
}

/* The journal of system s (a fresh file each sample: a finished journal would skip the work). */
#define BENCH_JOURNAL_PATH "build/bench.journal"
static batch_journal_desc bench_journal(sys_id s) {
    batch_journal_desc j;
    memset(&j, 0, sizeof j);
    if (!sys_journal(s)) return j;
    unlink(BENCH_JOURNAL_PATH);
    j.path = BENCH_JOURNAL_PATH;
    j.durability = s == SYS_JBUF ? BATCH_DURABLE_BUFFERED : s == SYS_JPROC ? BATCH_DURABLE_PROCESS : BATCH_DURABLE_MACHINE;
    j.sync_every = s == SYS_JSYNC64 ? 64 : 1;
    return j;
}

/* Runs g on the task pool (default run desc, or no task times) and checks the summary. */
static uint64_t batch_graph_time(const workload* w, sys_id s, batch_graph* g, uint64_t t0, size_t ntasks) {
    batch_job_summary sum;
    batch_run_desc rd = { .no_task_times = s == SYS_BATCH_NT || sys_journal(s) };
    rd.journal = bench_journal(s);
    if (sys_journal(s)) t0 = batch_now_ns();   /* after the unlink */
    batch_result r = batch_graph_run(S.pool_task, g, &rd, &sum);
    uint64_t t = batch_now_ns() - t0;
    if (r != BATCH_OK || sum.completed != ntasks)
        die("%s %s: batch_graph_run: %s, %llu of %zu tasks completed", w->name, sys_names[s], batch_result_string(r),
            (unsigned long long)sum.completed, ntasks);
    return t;
}

/* ---- graphs: one sample per system ------------------------------------------------------------- */
static uint64_t serial_chain(size_t n) {
    uint64_t t0 = batch_now_ns();
    for (size_t i = 0; i < n; i++) bench_graph_task(&S.gslots[0]);
    return batch_now_ns() - t0;
}

static uint64_t serial_wave(size_t side) {
    size_t st = S.wave_stride;
    uint32_t* grid = S.grid;
    uint64_t t0 = batch_now_ns();
    for (size_t i = 1; i <= side; i++)
        for (size_t j = 1; j <= side; j++) bench_wave_cell(&grid[i * st + j], st);
    return batch_now_ns() - t0;
}

/* n tasks, each `depend(inout: dep)`: a chain. */
static uint64_t omp_chain(size_t n, int threads) {
    char dep = 0;
    bench_slot* slots = S.gslots;
    uint64_t t0 = batch_now_ns();
#pragma omp parallel num_threads(threads)
#pragma omp single
    {
        for (size_t i = 0; i < n; i++) {
#pragma omp task depend(inout : dep)
            bench_graph_task(&slots[omp_get_thread_num() + 1]);
        }
    }
    uint64_t t = batch_now_ns() - t0;
    sink_u64 = (uint64_t)dep;
    return t;
}

static uint64_t omp_fanout(size_t n, int threads) {
    char dep = 0;
    bench_slot* slots = S.gslots;
    uint64_t t0 = batch_now_ns();
#pragma omp parallel num_threads(threads)
#pragma omp single
    {
#pragma omp task depend(out : dep)
        bench_graph_task(&slots[omp_get_thread_num() + 1]);
        for (size_t i = 0; i < n; i++) {
#pragma omp task depend(in : dep)
            bench_graph_task(&slots[omp_get_thread_num() + 1]);
        }
#pragma omp task depend(inout : dep)
        bench_graph_task(&slots[omp_get_thread_num() + 1]);
    }
    uint64_t t = batch_now_ns() - t0;
    sink_u64 = (uint64_t)dep;
    return t;
}

/* One task per cell: in on the upper and left cells, out on its own. */
static uint64_t omp_wave(size_t side, int threads) {
    size_t st = S.wave_stride;
    uint32_t* grid = S.grid;
    uint64_t t0 = batch_now_ns();
#pragma omp parallel num_threads(threads)
#pragma omp single
    {
        for (size_t i = 1; i <= side; i++) {
            for (size_t j = 1; j <= side; j++) {
                uint32_t* cell = &grid[i * st + j];
                uint32_t* up = cell - st;
                uint32_t* left = cell - 1;
                (void)up;   /* GCC 12 does not count a use in a depend clause */
                (void)left;
#pragma omp task depend(in : up[0], left[0]) depend(out : cell[0])
                bench_wave_cell(cell, st);
            }
        }
    }
    return batch_now_ns() - t0;
}

static double run_graph(const workload* w, sys_id s) {
    size_t n = S.n, tasks = graph_tasks(w, n);
    bool wave = w->kind == WL_WAVE || w->kind == WL_WAVE_BUILD;
    bool build = w->kind == WL_CHAIN_BUILD || w->kind == WL_WAVE_BUILD;
    uint64_t ns = 0;
    if (wave) wave_clear();
    else gslots_reset();
    switch (s) {
    case SYS_SERIAL:
        if (wave) ns = serial_wave(n);
        else if (w->kind == WL_FANOUT) ns = serial_chain(n + 2);
        else ns = serial_chain(n);
        break;
    case SYS_OPENMP:
        if (wave) ns = omp_wave(n, S.threads);
        else if (w->kind == WL_FANOUT) ns = omp_fanout(n, S.threads);
        else ns = omp_chain(n, S.threads);
        break;
#ifdef BENCH_TBB
    case SYS_TBB: {
        uint64_t t0 = batch_now_ns();
        if (wave) bench_tbb_wave_run();
        else if (w->kind == WL_FANOUT) bench_tbb_fanout_run();
        else bench_tbb_chain_run();
        ns = batch_now_ns() - t0;
        break;
    }
#endif
    case SYS_BATCH:
    case SYS_BATCH_NT:
    case SYS_JBUF: case SYS_JPROC: case SYS_JSYNC64: case SYS_JSYNC:
        if (w->kind == WL_CHAIN_REBUILD) {
            uint64_t t0 = batch_now_ns();
            BATCH_CHECK(batch_graph_clear(S.graph));
            ns = batch_graph_time(w, s, fill_chain(S.graph, n), t0, tasks);
        } else if (build) {
            uint64_t t0 = batch_now_ns();
            batch_graph* g = wave ? build_wave(n) : build_chain(n);
            ns = batch_graph_time(w, s, g, t0, tasks);
            BATCH_CHECK(batch_graph_destroy(g));
        } else {
            ns = batch_graph_time(w, s, S.graph, batch_now_ns(), tasks);
        }
        break;
    default: die("%s: no system %s", w->name, sys_names[s]);
    }
    if (wave) wave_check(w, s);
    else check_count(w, s, tasks);
    return (double)ns / (double)tasks;
}

/* graph_build: ns per (task + edge) to create, add, connect and validate the random DAG. */
static double run_graph_build(const workload* w) {
    size_t n = S.n;
    uint64_t t0 = batch_now_ns();
    batch_graph* g = build_dag(n, DAG_BUILD_DEGREE);
    uint64_t t = batch_now_ns() - t0;
    if (batch_graph_size(g) != n) die("%s: %zu tasks, expected %zu", w->name, batch_graph_size(g), n);
    BATCH_CHECK(batch_graph_destroy(g));
    return (double)t / (double)(n + S.dag_edges);
}

/* Live bytes batch.h holds for the validated random DAG with up to max_preds predecessors per
   node; *peak: the most it held while building and validating. */
static long long graph_bytes(const workload* w, size_t n, int max_preds, long long* peak) {
    long long base = atomic_load(&bench_live);
    atomic_store(&bench_peak, base);
    atomic_store(&bench_peak_on, 1);
    batch_graph* g = build_dag(n, max_preds);
    long long held = atomic_load(&bench_live) - base;
    atomic_store(&bench_peak_on, 0);
    if (peak) *peak = atomic_load(&bench_peak) - base;
    if (max_preds == DAG_MEMORY_DEGREE) {
        /* one run with task times (the default): what it allocates for a moment */
        long long before = atomic_load(&bench_live);
        atomic_store(&bench_peak, before);
        atomic_store(&bench_peak_on, 1);
        gslots_reset();
        BATCH_CHECK(batch_graph_run(S.pool_task, g, NULL, NULL));
        atomic_store(&bench_peak_on, 0);
        S.gmem_run_peak_bytes = atomic_load(&bench_peak) - before;
        check_count(w, SYS_BATCH, n);
        base += atomic_load(&bench_live) - before;   /* the pool keeps the task slabs it grew */
    }
    BATCH_CHECK(batch_graph_destroy(g));
    if (atomic_load(&bench_live) != base)
        die("graph_memory: %lld bytes still held after batch_graph_destroy", atomic_load(&bench_live) - base);
    return held;
}

/* Bytes per task and per edge from two graphs of n tasks and one root each: every node but the
   first after 1 random predecessor (n - 1 edges), and after 2 (2n - 3 edges). The difference
   gives the bytes per edge, the rest of the first graph the bytes per task (a graph without
   edges would have n roots, and the root list would count as task memory). */
static double run_graph_memory(const workload* w) {
    size_t n = S.n;
    if (S.gmem_n == n) return w->kind == WL_GMEM_TASK ? S.gmem_task : S.gmem_edge;   /* deterministic */
    size_t e1 = n - 1, e2 = S.dag_edges;
    long long peak;
    long long b1 = graph_bytes(w, n, 1, NULL);
    long long b2 = graph_bytes(w, n, DAG_MEMORY_DEGREE, &peak);
    double per_edge = (double)(b2 - b1) / (double)(e2 - e1);
    double per_task = ((double)b1 - per_edge * (double)e1) / (double)n;
    S.gmem_full_bytes = b2;
    S.gmem_peak_bytes = peak;
    S.gmem_edges = e2;
    S.gmem_n = n;
    S.gmem_task = per_task;
    S.gmem_edge = per_edge;
    return w->kind == WL_GMEM_TASK ? per_task : per_edge;
}

/* ---- maps ------------------------------------------------------------------------------------- */
/* One copy of each item function and of the fold: batch_map_run calls them, and so do the serial
   and OpenMP loops (through the same pointers, with ctx = NULL), so every system runs the same
   per-item code and the difference is the runtime's. */
static int map_fmix_item(batch_ctx* ctx, const batch_item* it, void* result, void* user) {
    (void)ctx;
    (void)user;
    *(uint64_t*)result = bench_fmix64((uint64_t)it->index);
    return 0;
}

static int map_skew_item(batch_ctx* ctx, const batch_item* it, void* result, void* user) {
    (void)ctx;
    const uint32_t* cost = (const uint32_t*)user;
    *(uint64_t*)result = bench_spin((uint64_t)it->index, cost[it->index]);
    return 0;
}

static void map_sum_init(void* acc, void* user) {
    (void)user;
    *(uint64_t*)acc = 0;
}

static void map_sum_fold(void* acc, const batch_item* it, const void* result, void* user) {
    (void)it;
    (void)user;
    *(uint64_t*)acc += *(const uint64_t*)result;
}

static void map_sum_combine(void* acc, const void* other, void* user) {
    (void)user;
    *(uint64_t*)acc += *(const uint64_t*)other;
}

/* Read through volatile pointers, so the loops cannot inline them (batch.h cannot either). */
static batch_item_fn volatile map_fmix_fp = map_fmix_item;
static batch_item_fn volatile map_skew_fp = map_skew_item;
static batch_fold_fn volatile map_fold_fp = map_sum_fold;

static inline void map_body(batch_item_fn f, batch_fold_fn fold, void* user, size_t i, uint64_t* acc) {
    batch_item it = { i, NULL };
    uint64_t r;
    f(NULL, &it, &r, user);
    fold(acc, &it, &r, user);
}

static uint64_t serial_map(batch_item_fn f, void* user, size_t n, uint64_t* out) {
    batch_fold_fn fold = map_fold_fp;
    uint64_t acc = 0;
    uint64_t t0 = batch_now_ns();
    for (size_t i = 0; i < n; i++) map_body(f, fold, user, i, &acc);
    uint64_t t = batch_now_ns() - t0;
    *out = acc;
    return t;
}

static uint64_t omp_map(sys_id s, batch_item_fn f, void* user, size_t n, int threads, uint64_t* out) {
    batch_fold_fn fold = map_fold_fp;
    uint64_t sum = 0;
    uint64_t t0 = batch_now_ns();
    switch (s) {
    case SYS_OMP_STATIC:
#pragma omp parallel for num_threads(threads) schedule(static) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) map_body(f, fold, user, i, &sum);
        break;
    case SYS_OMP_DYN1:
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) map_body(f, fold, user, i, &sum);
        break;
    case SYS_OMP_DYN1024:
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1024) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) map_body(f, fold, user, i, &sum);
        break;
    case SYS_OMP_GUIDED:
#pragma omp parallel for num_threads(threads) schedule(guided) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) map_body(f, fold, user, i, &sum);
        break;
    default: die("omp_map: no system %s", sys_names[s]);
    }
    uint64_t t = batch_now_ns() - t0;
    *out = sum;
    return t;
}

/* Runs d on the task pool, checks every item succeeded: its time in ns, the fold in *out. */
static uint64_t batch_map_timed(int wi, const batch_map_desc* d, size_t n, uint64_t* out) {
    batch_map_summary sm;
    uint64_t acc = 0;
    uint64_t t0 = batch_now_ns();
    batch_result r = batch_map_run(S.pool_task, d, &sm, &acc);
    uint64_t t = batch_now_ns() - t0;
    if (r != BATCH_OK || sm.items != n || sm.succeeded != n)
        die("%s batch: batch_map_run: %s, %llu of %zu items", workloads[wi].name, batch_result_string(r),
            (unsigned long long)sm.succeeded, n);
    S.map_batches[wi] = (size_t)sm.batches;
    *out = acc;
    return t;
}

/* batch_map_run with the defaults: adaptive batch sizes, unordered fold. */
static uint64_t batch_map(int wi, sys_id s, batch_item_fn f, void* user, size_t n, uint64_t* out) {
    batch_map_desc d = { .count = n, .item_fn = f, .user_data = user, .result_size = sizeof(uint64_t),
                         .acc_size = sizeof(uint64_t), .init_fn = map_sum_init, .fold_fn = map_sum_fold,
                         .combine_fn = map_sum_combine };
    d.journal = bench_journal(s);
    return batch_map_timed(wi, &d, n, out);
}

/* map_trivial returns ns per item; map_skew returns ns (turned into efficiency afterwards). */
static double run_map(int wi, sys_id s) {
    const workload* w = &workloads[wi];
    size_t n = S.n;
    bool skew = w->kind == WL_MAP_SKEW;
    batch_item_fn f = skew ? map_skew_fp : map_fmix_fp;
    void* user = skew ? (void*)S.costs : NULL;
    uint64_t got = 0, ns;
    switch (s) {
    case SYS_SERIAL: ns = serial_map(f, user, n, &got); break;
    case SYS_BATCH: case SYS_JBUF: case SYS_JPROC: case SYS_JSYNC64: case SYS_JSYNC:
        ns = batch_map(wi, s, skew ? map_skew_item : map_fmix_item, user, n, &got);
        break;
    default: ns = omp_map(s, f, user, n, S.threads, &got); break;
    }
    sink_u64 = got;
    if (got != S.map_ref)
        die("%s %s: fold %llu, expected %llu", w->name, sys_names[s], (unsigned long long)got,
            (unsigned long long)S.map_ref);
    return skew ? (double)ns : (double)ns / (double)n;
}

/* ---- map_range_trivial: i * i summed, the plain loop everywhere ---------------------------------
   serial: the loop; openmp: `parallel for reduction(+)` over it; batch: a map whose items_fn runs
   the same loop over its run and folds into the batch's accumulator. Items cost a fraction of a
   nanosecond, so the batch row sets max_batch as a user would (the default cap, 16384 items,
   would be ~2 us of work per batch hand-off): adaptive sizing then aims at 200 us batches. */
#define MAP_RANGE_MAX_BATCH ((size_t)1 << 22)

static inline uint64_t range_sq_sum(size_t first, size_t end) {
    uint64_t s = 0;
    for (size_t i = first; i < end; i++) s += (uint64_t)i * (uint64_t)i;
    return s;
}

static int range_sq_items(batch_ctx* ctx, const batch_item_range* r, void* user) {
    (void)ctx;
    (void)user;
    *(uint64_t*)r->acc += range_sq_sum(r->first_index, r->first_index + r->count);
    return 0;
}

static uint64_t omp_range_sq(size_t n, int threads, uint64_t* out) {
    uint64_t sum = 0;
    uint64_t t0 = batch_now_ns();
#pragma omp parallel for num_threads(threads) reduction(+ : sum)
    for (size_t i = 0; i < n; i++) sum += (uint64_t)i * (uint64_t)i;
    uint64_t t = batch_now_ns() - t0;
    *out = sum;
    return t;
}

static uint64_t batch_range_sq(int wi, size_t n, uint64_t* out) {
    batch_map_desc d = { .count = n, .items_fn = range_sq_items, .max_batch = MAP_RANGE_MAX_BATCH,
                         .acc_size = sizeof(uint64_t), .init_fn = map_sum_init, .combine_fn = map_sum_combine };
    return batch_map_timed(wi, &d, n, out);
}

/* ns per item. */
static double run_map_range(int wi, sys_id s) {
    size_t n = S.n;
    uint64_t got = 0, ns;
    switch (s) {
    case SYS_SERIAL: {
        uint64_t t0 = batch_now_ns();
        got = range_sq_sum(0, n);
        ns = batch_now_ns() - t0;
        break;
    }
    case SYS_OPENMP: ns = omp_range_sq(n, S.threads, &got); break;
    case SYS_BATCH: ns = batch_range_sq(wi, n, &got); break;
    default: die("map_range_trivial: no system %s", sys_names[s]);
    }
    sink_u64 = got;
    if (got != S.map_ref)
        die("%s %s: fold %llu, expected %llu", workloads[wi].name, sys_names[s], (unsigned long long)got,
            (unsigned long long)S.map_ref);
    return (double)ns / (double)n;
}

/* Per-item rounds for a profile, scaled so that the mean is mean_us. */
static void skew_costs(const workload* w, size_t n) {
    free(S.costs);
    S.costs = (uint32_t*)xmalloc(n * sizeof *S.costs);
    double* wt = (double*)xmalloc(n * sizeof *wt);
    bench_skew_costs(S.costs, wt, n, (int)w->profile, w->mean_us, S.rounds_per_us);
    free(wt);
}

/* ---- map_memory: one sample in a fresh process ------------------------------------------------ */
typedef struct pull_state { size_t next, n; } pull_state;

static int pull_consecutive(void* user, void** out) {
    pull_state* ps = (pull_state*)user;
    if (ps->next >= ps->n) return 0;
    *out = (void*)(uintptr_t)(++ps->next);   /* 1, 2, 3, ... */
    return 1;
}

/* Item i must carry the integer i + 1. */
static int map_pulled_item(batch_ctx* ctx, const batch_item* it, void* result, void* user) {
    (void)ctx;
    (void)user;
    uint64_t v = (uint64_t)(uintptr_t)it->ptr;
    if (v != (uint64_t)it->index + 1) return 1;
    *(uint64_t*)result = bench_fmix64(v);
    return 0;
}

/* kib from a "Name:   123 kB" line of /proc/self/status; -1 if missing. */
static long status_kib(const char* name) {
    FILE* f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t len = strlen(name);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, len) && line[len] == ':') { v = strtol(line + len + 1, NULL, 10); break; }
    fclose(f);
    return v;
}

/* The child: pool, baseline RSS, reset the high-water mark, one streaming fold, the peak. Prints
   "peak_kib base_kib batches". */
static int map_memory_child(size_t n) {
    batch_pool* pool;
    BATCH_CHECK(batch_pool_create(&pool, &(batch_pool_desc){ .workers = S.threads, .spin_us = S.spin_us }));
    long base = status_kib("VmRSS");
    FILE* f = fopen("/proc/self/clear_refs", "w");   /* "5": reset VmHWM to the current RSS */
    if (f) { fputs("5", f); fclose(f); }
    pull_state ps = { 0, n };
    batch_map_desc d = { .pull_fn = pull_consecutive, .item_fn = map_pulled_item, .user_data = &ps,
                         .result_size = sizeof(uint64_t), .acc_size = sizeof(uint64_t), .init_fn = map_sum_init,
                         .fold_fn = map_sum_fold, .combine_fn = map_sum_combine };
    batch_map_summary sm;
    uint64_t acc = 0;
    batch_result r = batch_map_run(pool, &d, &sm, &acc);
    long peak = status_kib("VmHWM");
    if (r != BATCH_OK || sm.items != n || sm.succeeded != n)
        die("map_memory child: %s, %llu of %zu items", batch_result_string(r), (unsigned long long)sm.succeeded, n);
    uint64_t ref = bench_sum_range(1, n + 1);
    if (acc != ref) die("map_memory child: fold %llu, expected %llu", (unsigned long long)acc, (unsigned long long)ref);
    BATCH_CHECK(batch_pool_destroy(pool));
    printf("%ld %ld %llu\n", peak, base, (unsigned long long)sm.batches);
    return 0;
}

static double run_map_memory(int wi) {
    size_t n = S.n;
    char nbuf[32], tbuf[16], sbuf[16];
    snprintf(nbuf, sizeof nbuf, "%zu", n);
    snprintf(tbuf, sizeof tbuf, "%d", S.threads);
    snprintf(sbuf, sizeof sbuf, "%d", S.spin_us);
    char* args[] = { (char*)S.argv0, "--map-memory-child", nbuf, "--threads", tbuf, "--spin-us", sbuf, NULL };
    int fd[2];
    if (pipe(fd) != 0) die("pipe failed");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execv("/proc/self/exe", args);
        _exit(127);
    }
    close(fd[1]);
    char buf[256];
    size_t len = 0;
    ssize_t k;
    while (len + 1 < sizeof buf && (k = read(fd[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)k;
    buf[len] = 0;
    close(fd[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("%s: the child process failed", workloads[wi].name);
    long peak, base;
    unsigned long long batches;
    if (sscanf(buf, "%ld %ld %llu", &peak, &base, &batches) != 3 || peak <= 0)
        die("%s: the child printed '%s'", workloads[wi].name, buf);
    S.child_base_kib[wi] = base;
    S.map_batches[wi] = (size_t)batches;
    return (double)peak;
}

/* ---- oneTBB (bench_tbb.cpp) ------------------------------------------------------------------- */
#ifdef BENCH_TBB
static uint64_t tbb_spawn(size_t n) {
    uint64_t t0 = batch_now_ns();
    bench_tbb_spawn(n);
    return batch_now_ns() - t0;
}

static uint64_t tbb_fib(int n) {
    uint64_t t0 = batch_now_ns();
    long r = bench_tbb_fib(n);
    uint64_t t = batch_now_ns() - t0;
    check_fib("tbb", r);
    return t;
}

static uint64_t tbb_parfor(const workload* w, size_t n) {
    uint64_t t0 = batch_now_ns();
    uint64_t r = bench_tbb_parfor(n, w->chunk, (int)w->split);
    uint64_t t = batch_now_ns() - t0;
    check_parfor("tbb", w, r);
    return t;
}
#endif

/* ---- per-workload setup ----------------------------------------------------------------------- */
static bool wl_runs(const workload* w, sys_id s) { return S.sys_on[s] && (w->systems & B(s)); }

static void prepare_workload(int wi) {
    const workload* w = &workloads[wi];
    size_t n = workload_n(w);
    S.n = n;
    bool batch_on = wl_runs(w, SYS_BATCH) || wl_runs(w, SYS_BATCH_NT) || (w->systems & JNL_SYS);
    switch (w->kind) {
    case WL_CHAIN:
    case WL_CHAIN_REBUILD:
        if (batch_on) S.graph = build_chain(n);
        break;
    case WL_FANOUT:
        handles_reserve(n);
        if (batch_on) S.graph = build_fanout(n);
        break;
    case WL_WAVE:
    case WL_WAVE_BUILD:
        S.wave_side = n;
        S.wave_stride = n + 1;
        free(S.grid);
        S.grid = (uint32_t*)xmalloc(S.wave_stride * S.wave_stride * sizeof *S.grid);
        wave_clear();
        handles_reserve(n * n);
        if (w->kind == WL_WAVE && batch_on) S.graph = build_wave(n);
        break;
    case WL_GRAPH_BUILD:
        dag_generate(n, DAG_BUILD_DEGREE, 0xda6b01u);
        handles_reserve(n);
        break;
    case WL_GMEM_TASK:
    case WL_GMEM_EDGE:
        dag_generate(n, DAG_MEMORY_DEGREE, 0xda6b02u);
        handles_reserve(n);
        break;
    case WL_MAP_TRIVIAL:
        S.map_ref = bench_sum_range(0, n);
        break;
    case WL_MAP_RANGE:
        S.map_ref = range_sq_sum(0, n);
        break;
    case WL_MAP_SKEW: {
        skew_costs(w, n);
        uint64_t ref;
        (void)serial_map(map_skew_fp, S.costs, n, &ref);   /* the expected fold (and a warm-up) */
        S.map_ref = ref;
        break;
    }
    default: break;
    }
#ifdef BENCH_TBB
    if (wl_runs(w, SYS_TBB)) {
        int ok = 1;
        if (w->kind == WL_CHAIN) ok = bench_tbb_chain_build(n, S.gslots);
        else if (w->kind == WL_FANOUT) ok = bench_tbb_fanout_build(n, S.gslots);
        else if (w->kind == WL_WAVE) ok = bench_tbb_wave_build(n, n, S.grid);
        if (!ok) die("%s: could not build the oneTBB graph", w->name);
        S.tbb_graph = w->kind == WL_CHAIN || w->kind == WL_FANOUT || w->kind == WL_WAVE;
    }
#endif
}

static void release_workload(void) {
    if (S.graph) BATCH_CHECK(batch_graph_destroy(S.graph));
    S.graph = NULL;
#ifdef BENCH_TBB
    if (S.tbb_graph) bench_tbb_graphs_free();
#endif
    S.tbb_graph = false;
    free(S.grid);
    S.grid = NULL;
    free(S.costs);
    S.costs = NULL;
    free(S.dag_pred);
    free(S.dag_npred);
    S.dag_pred = NULL;
    S.dag_npred = NULL;
}

/* ---- one sample ------------------------------------------------------------------------------- */
static bool wl_is_efficiency(const workload* w) { return w->kind == WL_MAP_SKEW; }

static int system_threads(const workload* w, sys_id s) {
    if (s == SYS_SERIAL) return 1;
    if (w->sec == SEC_BUILD) return 1;   /* built on the calling thread */
    return S.threads;
}

/* wake_latency_parked: idle long enough for every runtime's threads to be asleep (batch.h spins
   BATCH_SPIN_US_DEFAULT, 2 ms; libgomp about 10 ms here) */
#define BENCH_PARKED_US 50000u

/* One call of a task-and-loop workload on system s: its time in ns. */
static uint64_t task_call(const workload* w, sys_id s) {
    switch (w->kind) {
    case WL_SPAWN:
        switch (s) {
        case SYS_SERIAL: return serial_spawn(S.n);
        case SYS_OPENMP: return omp_spawn(S.n, S.threads);
#ifdef BENCH_TBB
        case SYS_TBB: return tbb_spawn(S.n);
#endif
        case SYS_BATCH: return batch_spawn(S.n);
        default: break;
        }
        break;
    case WL_FIB:
        switch (s) {
        case SYS_SERIAL: return serial_fib(BENCH_FIB_N);
        case SYS_OPENMP: return omp_fib(BENCH_FIB_N, S.threads);
#ifdef BENCH_TBB
        case SYS_TBB: return tbb_fib(BENCH_FIB_N);
#endif
        case SYS_BATCH: return batch_fib(BENCH_FIB_N);
        default: break;
        }
        break;
    case WL_WAKE: case WL_WAKE_PARKED:
        switch (s) {
        case SYS_OPENMP: return omp_wake(S.threads);
        case SYS_BATCH: return batch_wake();
        default: break;
        }
        break;
    case WL_PARFOR:
        switch (s) {
        case SYS_SERIAL: return serial_parfor(w, S.n);
        case SYS_OPENMP: return omp_parfor(w, S.n, S.threads);
#ifdef BENCH_TBB
        case SYS_TBB: return tbb_parfor(w, S.n);
#endif
        case SYS_BATCH: return batch_parfor(w, S.n);
        default: break;
        }
        break;
    default: break;
    }
    die("%s: no system %d", w->name, (int)s);
}

static void nap_us(unsigned us) {
    struct timespec ts = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L };
    while (nanosleep(&ts, &ts) != 0) {}
}

/* Tasks and loops: the way a program calls a pool, each timed call starts on a runtime that ran
   the same work --pause-us before and has been idle since (one untimed call first). fib: the
   mean of S.fib_calls such calls. */
static double run_task_row(const workload* w, sys_id s) {
    bool wake = w->kind == WL_WAKE || w->kind == WL_WAKE_PARKED;
    int calls = w->kind == WL_FIB ? S.fib_calls : wake ? (int)S.n : 1;
    unsigned pause = w->kind == WL_WAKE_PARKED ? BENCH_PARKED_US : S.pause_us;
    uint64_t ns = 0;
    (void)task_call(w, s);
    for (int i = 0; i < calls; i++) {
        nap_us(pause);
        ns += task_call(w, s);
    }
    if (w->kind == WL_FIB) return (double)ns / 1e6 / calls;
    if (wake) return (double)ns / calls;
    return (double)ns / (double)S.n;
}

/* Runs workload wi once on system s: the value in its unit (map_skew: ns). */
static double run_once(int wi, sys_id s) {
    const workload* w = &workloads[wi];
    switch (w->kind) {
    case WL_SPAWN: case WL_FIB: case WL_PARFOR: case WL_WAKE: case WL_WAKE_PARKED:
        return run_task_row(w, s);
    case WL_CHAIN: case WL_CHAIN_BUILD: case WL_CHAIN_REBUILD: case WL_WAVE: case WL_WAVE_BUILD: case WL_FANOUT:
        return run_graph(w, s);
    case WL_GRAPH_BUILD: return run_graph_build(w);
    case WL_GMEM_TASK: case WL_GMEM_EDGE: return run_graph_memory(w);
    case WL_MAP_TRIVIAL: case WL_MAP_SKEW: return run_map(wi, s);
    case WL_MAP_MEMORY: return run_map_memory(wi);
    case WL_MAP_RANGE: return run_map_range(wi, s);
    }
    return 0;
}

static void settle(void) {
    if (S.settle_us) nap_us(S.settle_us);
}

/* ---- statistics and output -------------------------------------------------------------------- */
typedef struct stats { double median, min, max; bool valid; } stats;

static stats results[WL_COUNT][SYS_COUNT];

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static double median_of(double* v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static stats summarize(double* v, int n) {
    stats st;
    st.median = median_of(v, n);
    st.min = v[0];
    st.max = v[n - 1];
    st.valid = true;
    return st;
}

/* About four significant digits in a short field. */
static void fmt_num(char* buf, size_t size, double v) {
    const char* f = v >= 1000 ? "%.0f" : v >= 100 ? "%.1f" : v >= 10 ? "%.2f" : v >= 1 ? "%.3f" : "%.4f";
    snprintf(buf, size, f, v);
}

static void fmt_range(char* buf, size_t size, stats st) {
    char a[24], b[24];
    fmt_num(a, sizeof a, st.min);
    fmt_num(b, sizeof b, st.max);
    snprintf(buf, size, "%s..%s", a, b);
}

#define COL_W 15

/* Ratio columns: num / den of the medians; den SYS_COUNT means the best OpenMP schedule,
   SYS_NOJNL the workload's run without a journal (batch, or batch-notimes). */
#define SYS_NOJNL ((sys_id)(SYS_COUNT + 1))
typedef struct ratio_spec { sys_id num, den; const char* label; } ratio_spec;
static const ratio_spec sec_ratios[SEC_COUNT][4] = {
    [SEC_TASKS] = { { SYS_BATCH, SYS_OPENMP, "batch/openmp" }, { SYS_BATCH, SYS_SERIAL, "batch/serial" },
                    { SYS_BATCH, SYS_TBB, "batch/tbb" } },
    [SEC_GRAPHS] = { { SYS_BATCH, SYS_OPENMP, "batch/omp" }, { SYS_BATCH_NT, SYS_OPENMP, "notimes/omp" },
                     { SYS_BATCH, SYS_BATCH_NT, "batch/notimes" }, { SYS_BATCH_NT, SYS_TBB, "notimes/tbb" } },
    [SEC_MAPS] = { { SYS_BATCH, SYS_OMP_STATIC, "batch/static" }, { SYS_BATCH, SYS_COUNT, "batch/best-omp" },
                   { SYS_BATCH, SYS_OPENMP, "batch/openmp" } },
    [SEC_JOURNAL] = { { SYS_JBUF, SYS_NOJNL, "buffered/none" }, { SYS_JPROC, SYS_NOJNL, "process/none" },
                      { SYS_JSYNC64, SYS_NOJNL, "machine64/none" }, { SYS_JSYNC, SYS_NOJNL, "machine/none" } },
};
static const char* const sec_titles[SEC_COUNT] = {
    "TASKS AND LOOPS: every unit is a time, lower is better; ratios < 1: batch is faster",
    "GRAPHS: ns per task, lower is better; ratios < 1: batch is faster (notimes = batch-notimes)",
    "GRAPH BUILD AND MEMORY (batch.h only, on the calling thread)",
    "MAPS: ns_per_item lower is better (ratios < 1: batch faster); efficiency = T_serial / (threads x T), "
    "higher is better (ratios > 1: batch better)",
    "MAP MEMORY: peak RSS (VmHWM) of a fresh process running one streaming fold from a pull source",
    "JOURNAL: cost of a journal at each durability level, as a ratio to the same run without one",
};

static unsigned sec_systems(section sec) {
    unsigned m = 0;
    for (int i = 0; i < WL_COUNT; i++)
        if (workloads[i].sec == sec && S.wl_on[i]) m |= workloads[i].systems;
    for (int s = 0; s < SYS_COUNT; s++)
        if (!S.sys_on[s]) m &= ~B(s);
    return m;
}

static bool ratio_shown(section sec, const ratio_spec* r) {
    unsigned m = sec_systems(sec);
    if (!r->label || !(m & B(r->num))) return false;
    if (r->den == SYS_COUNT) return (m & SYS_OMP_MAPS) != 0;
    if (r->den == SYS_NOJNL) return (m & (B(SYS_BATCH) | B(SYS_BATCH_NT))) != 0;
    return (m & B(r->den)) != 0;
}

static void print_header(section sec) {
    printf("\n%s\n", sec_titles[sec]);
    printf("%-26s %-12s %9s", "workload", "unit", "n");
    unsigned m = sec_systems(sec);
    for (int s = 0; s < SYS_COUNT; s++)
        if (m & B(s)) printf(" %*s", COL_W, sys_names[s]);
    for (int k = 0; k < 4; k++) {
        const ratio_spec* r = &sec_ratios[sec][k];
        if (ratio_shown(sec, r)) printf(" %14s", r->label);
    }
    printf("\n");
}

/* The best OpenMP schedule of a map row: the lowest time, or the highest efficiency. */
static double best_omp(int wi) {
    double best = 0;
    bool eff = wl_is_efficiency(&workloads[wi]), any = false;
    for (int s = SYS_OMP_STATIC; s <= SYS_OMP_GUIDED; s++) {
        if (!results[wi][s].valid) continue;
        double v = results[wi][s].median;
        if (!any || (eff ? v > best : v < best)) best = v;
        any = true;
    }
    return any ? best : 0;
}

static void print_row(int wi) {
    const workload* w = &workloads[wi];
    section sec = w->sec;
    unsigned m = sec_systems(sec);
    char buf[64];
    printf("%-26s %-12s %9zu", w->name, w->unit, w->kind == WL_GMEM_EDGE ? S.gmem_edges : workload_n_shown(w));
    for (int s = 0; s < SYS_COUNT; s++) {
        if (!(m & B(s))) continue;
        if (results[wi][s].valid) fmt_num(buf, sizeof buf, results[wi][s].median);
        else snprintf(buf, sizeof buf, "-");
        printf(" %*s", COL_W, buf);
    }
    for (int k = 0; k < 4; k++) {
        const ratio_spec* r = &sec_ratios[sec][k];
        if (!ratio_shown(sec, r)) continue;
        sys_id d = r->den;
        if (d == SYS_NOJNL) d = results[wi][SYS_BATCH].valid ? SYS_BATCH : SYS_BATCH_NT;
        double den = d == SYS_COUNT ? best_omp(wi) : results[wi][d].valid ? results[wi][d].median : 0;
        if (results[wi][r->num].valid && den > 0) printf(" %13.2fx", results[wi][r->num].median / den);
        else printf(" %14s", "-");
    }
    printf("\n%-26s %-12s %9s", "", "min..max", "");
    for (int s = 0; s < SYS_COUNT; s++) {
        if (!(m & B(s))) continue;
        if (results[wi][s].valid) fmt_range(buf, sizeof buf, results[wi][s]);
        else snprintf(buf, sizeof buf, "-");
        printf(" %*s", COL_W, buf);
    }
    printf("\n");
    if ((w->kind == WL_MAP_TRIVIAL || w->kind == WL_MAP_RANGE) && results[wi][SYS_SERIAL].valid) {
        /* parallel efficiency T_serial / (threads x T) of the medians */
        printf("%-26s %-12s %9s", "", "efficiency", "");
        for (int s = 0; s < SYS_COUNT; s++) {
            if (!(m & B(s))) continue;
            if (results[wi][s].valid)
                fmt_num(buf, sizeof buf, results[wi][SYS_SERIAL].median / ((double)system_threads(w, (sys_id)s) * results[wi][s].median));
            else snprintf(buf, sizeof buf, "-");
            printf(" %*s", COL_W, buf);
        }
        printf("\n");
    }
    fflush(stdout);
}

static void csv_row(FILE* f, int wi, sys_id s) {
    const workload* w = &workloads[wi];
    stats st = results[wi][s];
    size_t n = w->kind == WL_GMEM_EDGE ? S.gmem_edges : workload_n_shown(w);
    fprintf(f, "%s,%s,%d,%zu,%s,%.6g,%.6g,%.6g\n", w->name, sys_names[s], system_threads(w, s), n, w->unit,
            st.median, st.min, st.max);
    fflush(f);
}

static int wl_index(const char* name) {
    for (int i = 0; i < WL_COUNT; i++)
        if (!strcmp(workloads[i].name, name)) return i;
    return -1;
}

static double med(const char* name, sys_id s) {
    int i = wl_index(name);
    return (i >= 0 && results[i][s].valid) ? results[i][s].median : 0;
}

/* Ratios and checks that span rows. */
static void print_footer(void) {
    double a, b, c;
    printf("\nNOTES\n");
    /* fanout vs spawn */
    if ((a = med("fanout", SYS_BATCH)) > 0 && (b = med("spawn", SYS_BATCH)) > 0) {
        c = med("fanout", SYS_BATCH_NT);
        printf("  fanout / spawn (batch ns per task): %.2fx (batch), %.2fx (batch-notimes); fanout %.1f ns, spawn %.1f ns\n",
               a / b, c > 0 ? c / b : 0, a, b);
    }
    /* chain scale */
    const char* scale[] = { "chain_1e5", "chain_1e6", "chain_1e7" };
    for (int k = 0; k < 2; k++) {
        sys_id s = k ? SYS_BATCH_NT : SYS_BATCH;
        double lo = 0, hi = 0;
        int cnt = 0;
        char line[256];
        size_t used = 0;
        for (int i = 0; i < 3; i++) {
            double v = med(scale[i], s);
            if (v <= 0) continue;
            if (!cnt || v < lo) lo = v;
            if (!cnt || v > hi) hi = v;
            cnt++;
            used += (size_t)snprintf(line + used, sizeof line - used, " %s %.1f", scale[i] + 6, v);
        }
        if (cnt >= 2) printf("  chain scale (%s ns/task):%s; max/min %.2f\n", sys_names[s], line, hi / lo);
    }
    /* build cost per task, from the *_build rows minus the run-only rows */
    if ((a = med("chain_build", SYS_BATCH_NT)) > 0 && (b = med("chain", SYS_BATCH_NT)) > 0 &&
        workloads[wl_index("chain_build")].n_full == workloads[wl_index("chain")].n_full)
        printf("  chain: build + validate adds %.1f ns per task (batch-notimes, chain_build - chain)\n", a - b);
    if ((a = med("chain_rebuild", SYS_BATCH_NT)) > 0 && (b = med("chain", SYS_BATCH_NT)) > 0 &&
        workloads[wl_index("chain_rebuild")].n_full == workloads[wl_index("chain")].n_full)
        printf("  chain: clear + build + validate in kept memory adds %.1f ns per task (batch-notimes, chain_rebuild - chain)\n", a - b);
    if ((a = med("wavefront_build", SYS_BATCH_NT)) > 0 && (b = med("wavefront", SYS_BATCH_NT)) > 0)
        printf("  wavefront: build + validate adds %.1f ns per task (batch-notimes, wavefront_build - wavefront)\n", a - b);
    /* graph build and memory */
    if ((a = med("graph_build", SYS_BATCH)) > 0)
        printf("  graph_build: %.1f ns per (task + edge), ~%d random predecessors per node\n", a, DAG_BUILD_DEGREE);
    if ((a = med("graph_memory_task", SYS_BATCH)) > 0) {
        b = med("graph_memory_edge", SYS_BATCH);
        size_t n = workload_n(&workloads[wl_index("graph_memory_task")]);
        double budget = 128.0 * (double)n + 16.0 * (double)S.gmem_edges;
        printf("  graph_memory: %.1f B/task (goal <= 128: %s), %.2f B/edge (goal <= 16: %s)\n", a,
               a <= 128 ? "met" : "MISSED", b, b > 0 && b <= 16 ? "met" : b > 0 ? "MISSED" : "-");
        printf("    the %zu-task, %zu-edge graph holds %.1f MiB = %.0f%% of 128 B/task + 16 B/edge; peak while "
               "building and validating %.1f MiB (%.1f B/task); a run with task times allocates %.1f B/task more "
               "for a moment\n",
               n, S.gmem_edges, (double)S.gmem_full_bytes / 1048576.0, 100.0 * (double)S.gmem_full_bytes / budget,
               (double)S.gmem_peak_bytes / 1048576.0, (double)S.gmem_peak_bytes / (double)n,
               (double)S.gmem_run_peak_bytes / (double)n);
    }
    /* map_trivial efficiency */
    if ((a = med("map_trivial", SYS_SERIAL)) > 0) {
        int wi = wl_index("map_trivial");
        printf("  map_trivial parallel efficiency T_serial / (%d x T):", S.threads);
        if ((b = med("map_trivial", SYS_BATCH)) > 0)
            printf(" batch %.2f (%zu batches of %.0f items on average)", a / (S.threads * b), S.map_batches[wi],
                   (double)workload_n(&workloads[wi]) / (double)(S.map_batches[wi] ? S.map_batches[wi] : 1));
        if ((c = med("map_trivial", SYS_OMP_STATIC)) > 0) printf(", openmp-static %.2f", a / (S.threads * c));
        printf("\n");
    }
    /* map_range_trivial: the goal is batch within 1.15x of OpenMP, efficiency >= 0.85 */
    if ((a = med("map_range_trivial", SYS_SERIAL)) > 0 && (b = med("map_range_trivial", SYS_BATCH)) > 0) {
        int wi = wl_index("map_range_trivial");
        printf("  map_range_trivial: batch efficiency %.2f (goal >= 0.85), %zu batches of %.0f items", a / (S.threads * b),
               S.map_batches[wi], (double)workload_n(&workloads[wi]) / (double)(S.map_batches[wi] ? S.map_batches[wi] : 1));
        if ((c = med("map_range_trivial", SYS_OPENMP)) > 0)
            printf("; openmp efficiency %.2f, batch/openmp %.2f (goal <= 1.15)", a / (S.threads * c), b / c);
        printf("\n");
    }
    /* batch sizes chosen by the adaptive maps */
    bool any = false;
    for (int i = 0; i < WL_COUNT; i++) {
        if (workloads[i].kind != WL_MAP_SKEW || !results[i][SYS_BATCH].valid) continue;
        if (!any) printf("  map_skew adaptive sizing (batch, last sample): batches / average items per batch:");
        printf("%s %s %zu/%.1f", any ? "," : "", workloads[i].name + 9, S.map_batches[i],
               (double)workload_n(&workloads[i]) / (double)(S.map_batches[i] ? S.map_batches[i] : 1));
        any = true;
    }
    if (any) printf("\n");
    /* map memory */
    int lo_i = wl_index("map_memory_1e5"), hi_i = wl_index(S.quick ? "map_memory_1e7" : "map_memory_1e8");
    if (results[lo_i][SYS_BATCH].valid && results[hi_i][SYS_BATCH].valid) {
        double d = results[hi_i][SYS_BATCH].median - results[lo_i][SYS_BATCH].median;
        printf("  map_memory: peak RSS %s - 1e5 = %.0f KiB (goal < 1024: %s); process RSS before the map %ld KiB; "
               "%zu and %zu batches\n",
               workloads[hi_i].name + 11, d, d < 1024 ? "met" : "MISSED", S.child_base_kib[hi_i], S.map_batches[lo_i],
               S.map_batches[hi_i]);
    }
}

/* How noisy the run was: the spread max/min of every timed row. */
static void print_noise(void) {
    double spreads[WL_COUNT * SYS_COUNT];
    int n = 0;
    double worst = 0;
    int worst_w = -1, worst_s = -1;
    for (int i = 0; i < WL_COUNT; i++) {
        if (workloads[i].sec == SEC_MEMORY || workloads[i].kind == WL_GMEM_TASK || workloads[i].kind == WL_GMEM_EDGE) continue;
        for (int s = 0; s < SYS_COUNT; s++) {
            const stats* st = &results[i][s];
            if (!st->valid || st->min <= 0) continue;
            double sp = st->max / st->min;
            spreads[n++] = sp;
            if (sp > worst) { worst = sp; worst_w = i; worst_s = s; }
        }
    }
    if (!n) return;
    double m = median_of(spreads, n);
    printf("  noise: max/min of the samples per timed row: median %.2f, worst %.2f (%s %s)\n", m, worst,
           workloads[worst_w].name, sys_names[worst_s]);
}

static void print_loadavg(const char* when) {
    FILE* f = fopen("/proc/loadavg", "r");
    char buf[128];
    if (f && fgets(buf, sizeof buf, f)) printf("load average %s: %s", when, buf);
    if (f) fclose(f);
}

/* ---- command line ----------------------------------------------------------------------------- */
static void usage(FILE* f) {
    fprintf(f,
            "usage: bench [options]\n"
            "  --quick          smaller problems, 5 repetitions (the whole run under a minute)\n"
            "  --threads T      threads per parallel system (default: CPU count, %d here)\n"
            "  --reps R         timed repetitions per system (default 7; 5 with --quick)\n"
            "  --only LIST      comma-separated workloads; a name that is no workload's selects the family\n"
            "                   that starts with name_ (parfor, map_skew, graph_memory, map_memory):",
            batch_cpu_count());
    size_t col = 100;
    for (int i = 0; i < WL_COUNT; i++) {
        size_t len = strlen(workloads[i].name) + 1;
        if (col + len > 100) { fprintf(f, "\n                  "); col = 18; }
        fprintf(f, " %s", workloads[i].name);
        col += len;
    }
    fprintf(f, "\n  --systems LIST   comma-separated systems (default: all):");
    for (int s = 0; s < SYS_COUNT; s++)
        if (s != SYS_TBB || BENCH_HAVE_TBB) fprintf(f, " %s", sys_names[s]);
    fprintf(f,
            "\n  --settle-us U    idle microseconds before each sample (default 20000; 0: none)\n"
            "  --pause-us U     tasks and loops: idle microseconds before each timed call, after an untimed\n"
            "                   one (default 1000)\n"
            "  --spin-us U      batch_pool_desc.spin_us of the batch pools (default 0: the library's; -1: none)\n"
            "  --csv FILE       write workload,system,threads,n,unit,median,min,max\n");
}

static const char* need_arg(int argc, char** argv, int* i) {
    if (*i + 1 >= argc) { usage(stderr); die("%s needs a value", argv[*i]); }
    return argv[++*i];
}

static long long parse_ll(const char* opt, const char* s, long long lo, long long hi) {
    char* end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) die("%s: '%s' is not an integer in [%lld, %lld]", opt, s, lo, hi);
    return v;
}

/* Each comma-separated name selects the system or workload of that name; for workloads, a name
   that is no workload's selects every workload that starts with name + '_'. */
static void parse_list(const char* opt, const char* list, const char* const* names, int count, bool* on,
                       const bool* allowed, bool prefixes) {
    for (int i = 0; i < count; i++) on[i] = false;
    const char* p = list;
    while (*p) {
        const char* e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < count; i++)
            if (strlen(names[i]) == len && strncmp(names[i], p, len) == 0 && (!allowed || allowed[i])) { on[i] = true; found++; }
        if (!found && prefixes)
            for (int i = 0; i < count; i++)
                if (strlen(names[i]) > len && strncmp(names[i], p, len) == 0 && names[i][len] == '_') { on[i] = true; found++; }
        if (!found) { usage(stderr); die("%s: unknown name '%.*s'", opt, (int)len, p); }
        p += len;
        if (*p == ',') p++;
    }
}

static void parse_args(int argc, char** argv) {
    int reps = 0;
    S.argv0 = argv[0];
    S.threads = batch_cpu_count();
    S.settle_us = 20000;
    S.pause_us = 1000;
    for (int s = 0; s < SYS_COUNT; s++) S.sys_on[s] = s != SYS_TBB || BENCH_HAVE_TBB;
    for (int i = 0; i < WL_COUNT; i++) S.wl_on[i] = true;
    const char* wl_names[WL_COUNT];
    for (int i = 0; i < WL_COUNT; i++) wl_names[i] = workloads[i].name;
    bool sys_allowed[SYS_COUNT];
    for (int s = 0; s < SYS_COUNT; s++) sys_allowed[s] = s != SYS_TBB || BENCH_HAVE_TBB;

    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        if (!strcmp(a, "--quick")) S.quick = true;
        else if (!strcmp(a, "--threads"))
            S.threads = (int)parse_ll(a, need_arg(argc, argv, &i), 1, BATCH_MAX_WORKERS);
        else if (!strcmp(a, "--reps")) reps = (int)parse_ll(a, need_arg(argc, argv, &i), 1, 1000);
        else if (!strcmp(a, "--only"))
            parse_list(a, need_arg(argc, argv, &i), wl_names, WL_COUNT, S.wl_on, NULL, true);
        else if (!strcmp(a, "--systems"))
            parse_list(a, need_arg(argc, argv, &i), sys_names, SYS_COUNT, S.sys_on, sys_allowed, false);
        else if (!strcmp(a, "--spin-us"))
            S.spin_us = (int)parse_ll(a, need_arg(argc, argv, &i), -1, 1000000);
        else if (!strcmp(a, "--pause-us"))
            S.pause_us = (unsigned)parse_ll(a, need_arg(argc, argv, &i), 0, 10000000);
        else if (!strcmp(a, "--settle-us"))
            S.settle_us = (unsigned)parse_ll(a, need_arg(argc, argv, &i), 0, 10000000);
        else if (!strcmp(a, "--csv")) S.csv_path = need_arg(argc, argv, &i);
        else if (!strcmp(a, "--map-memory-child"))
            S.child_n = (size_t)parse_ll(a, need_arg(argc, argv, &i), 1, 1000000000000LL);
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); exit(0); }
        else { usage(stderr); die("unknown option '%s'", a); }
    }
    S.reps = reps ? reps : S.quick ? 5 : 7;
    if (S.reps < 5) fprintf(stderr, "bench: warning: %d repetitions; medians want at least 5\n", S.reps);
    S.fib_calls = S.quick ? 5 : 10;
}

/* ---- main ------------------------------------------------------------------------------------- */
int main(int argc, char** argv) {
    parse_args(argc, argv);
    if (S.child_n) return map_memory_child(S.child_n);

    int pfor_workers = S.threads - 1 < 1 ? 1 : S.threads - 1;
    BATCH_CHECK(batch_pool_create(&S.pool_task,
                                  &(batch_pool_desc){ .workers = S.threads, .spin_us = S.spin_us }));
    BATCH_CHECK(batch_pool_create(&S.pool_pfor,
                                  &(batch_pool_desc){ .workers = pfor_workers, .spin_us = S.spin_us }));
    S.nslots = pfor_workers + 1;
    S.slots = (bench_slot*)calloc((size_t)S.nslots, sizeof *S.slots);
    S.ngslots = S.threads + 2;
    S.gslots = (bench_slot*)calloc((size_t)S.ngslots, sizeof *S.gslots);
    if (!S.slots || !S.gslots) die("out of memory");
    omp_set_dynamic(0);
#ifdef BENCH_TBB
    if (S.sys_on[SYS_TBB] && !bench_tbb_init(S.threads)) die("could not create the oneTBB arena");
#endif
    S.parfor_ref = bench_sum_range(0, S.quick ? 4000000 : 10000000);
    S.fib_ref = bench_fib_expected(BENCH_FIB_N);

    FILE* csv = NULL;
    if (S.csv_path) {
        csv = fopen(S.csv_path, "w");
        if (!csv) die("cannot write %s", S.csv_path);
        fprintf(csv, "workload,system,threads,n,unit,median,min,max\n");
    }

    uint64_t run_t0 = batch_now_ns();
    printf("batch.h bench: T=%d threads (%d CPUs), %d timed reps per system after 1 warm-up, interleaved "
           "round-robin%s, %u us settle before each sample\n",
           S.threads, batch_cpu_count(), S.reps, S.quick ? ", --quick" : "", S.settle_us);
    print_loadavg("at start");
    if (S.spin_us) printf("batch pools: spin_us = %d\n", S.spin_us);
    printf("threads: parfor_*   batch = caller + %d worker%s = %d; openmp = team of %d%s\n", pfor_workers,
           pfor_workers == 1 ? "" : "s", pfor_workers + 1, S.threads,
           BENCH_HAVE_TBB ? "; tbb = arena of T slots (caller is one)" : "");
    printf("         spawn, fib, graphs, maps: batch = %d workers (+ the caller, which only submits/launches and "
           "sleeps); openmp = team of %d (one produces, then helps)%s\n",
           S.threads, S.threads, BENCH_HAVE_TBB ? "; tbb = arena of T slots (caller produces, then helps)" : "");
    printf("         fib: ms per fib(%d) (serial cutoff n < %d), a sample is the mean of %d back-to-back calls; "
           "parfor sums fmix64(i)\n",
           BENCH_FIB_N, BENCH_FIB_CUTOFF, S.fib_calls);
    bool any_skew = false;
    for (int i = 0; i < WL_COUNT; i++) any_skew |= S.wl_on[i] && workloads[i].kind == WL_MAP_SKEW;
    if (any_skew) {
        S.rounds_per_us = bench_calibrate_spin(batch_now_ns);
        printf("         map_skew: %.1f rounds of fmix64 per us (calibrated); item i costs cost[i] rounds\n",
               S.rounds_per_us);
    }

    double* samples = (double*)xmalloc(sizeof(double) * (size_t)SYS_COUNT * (size_t)S.reps);
    int last_sec = -1;
    for (int wi = 0; wi < WL_COUNT; wi++) {
        if (!S.wl_on[wi]) continue;
        const workload* w = &workloads[wi];
        if (!workload_n(w)) continue;   /* not in this mode (chain_1e7 and map_memory_1e8 in --quick) */
        int active[SYS_COUNT], nactive = 0;
        for (int s = 0; s < SYS_COUNT; s++)
            if (wl_runs(w, (sys_id)s) || (s == SYS_SERIAL && wl_is_efficiency(w))) active[nactive++] = s;
        if (!nactive) continue;
        if ((int)w->sec != last_sec) { print_header(w->sec); last_sec = (int)w->sec; }

        prepare_workload(wi);
        /* graph_memory counts bytes: deterministic, so one sample without warm-up */
        bool once = w->kind == WL_GMEM_TASK || w->kind == WL_GMEM_EDGE;
        int reps = once ? 1 : S.reps;
        for (int k = 0; k < nactive && !once; k++) { settle(); (void)run_once(wi, (sys_id)active[k]); }
        for (int r = 0; r < reps; r++) {
            for (int k = 0; k < nactive; k++) {
                int s = active[(r + k) % nactive];
                settle();
                samples[s * S.reps + r] = run_once(wi, (sys_id)s);
            }
        }
        if (wl_is_efficiency(w)) {
            /* efficiency of each sample against the median serial time */
            double tmp[1000];
            memcpy(tmp, &samples[SYS_SERIAL * S.reps], sizeof(double) * (size_t)S.reps);
            double serial_ns = median_of(tmp, S.reps);
            for (int k = 0; k < nactive; k++) {
                int s = active[k];
                for (int r = 0; r < S.reps; r++)
                    samples[s * S.reps + r] = serial_ns / ((double)system_threads(w, (sys_id)s) * samples[s * S.reps + r]);
            }
        }
        for (int k = 0; k < nactive; k++) {
            int s = active[k];
            results[wi][s] = summarize(&samples[s * S.reps], reps);
            if (csv) csv_row(csv, wi, (sys_id)s);
        }
        release_workload();
        print_row(wi);
    }
    free(samples);
    print_footer();
    print_noise();
    print_loadavg("at end");
    printf("  wall time: %.1f s\n", (double)(batch_now_ns() - run_t0) / 1e9);
    if (csv) {
        fclose(csv);
        printf("\nwrote %s\n", S.csv_path);
    }

#ifdef BENCH_TBB
    if (S.sys_on[SYS_TBB]) bench_tbb_fini();
#endif
    BATCH_CHECK(batch_pool_destroy(S.pool_task));
    BATCH_CHECK(batch_pool_destroy(S.pool_pfor));
    free(S.slots);
    free(S.gslots);
    free(S.handles);
    return 0;
}
