/* bench.c - the batch.h benchmark harness.

   Runs every workload on batch.h (`batch`), a serial loop (`serial`), OpenMP (`openmp`) and,
   in the build/bench/bench_tbb binary (compiled with -DBENCH_TBB, see bench_tbb.cpp), oneTBB
   (`tbb`). The systems are interleaved: each repetition runs every system once, round-robin,
   starting one system further each repetition, so machine noise hits all of them alike. After
   one untimed warm-up per system, `reps` samples are taken per system; the table and the CSV give
   median, min and max. A sample is one run of the workload, except fib: the mean of 10 back-to-back
   fib(30) calls (5 with --quick), as one call takes only a few ms. Before every sample the harness
   sleeps --settle-us (20 ms): long enough for the previous system's spinning threads (libgomp spins
   for several ms after a region) to go to sleep instead of taking CPU from the next system.

   Thread accounting (T = --threads, default the CPU count):
     parfor_*   batch_pool_parallel_for runs on its workers and on the calling thread, so the
                pool has T-1 workers (at least 1): T threads, like OpenMP's team of T and a oneTBB
                arena of T slots.
     spawn/fib  the calling thread only submits and sleeps in batch_counter_wait, so the pool has
                T workers. OpenMP: a team of T, one of which produces (`single`) and then helps at
                the taskwait. oneTBB: an arena of T slots, the caller takes one and helps at wait().

   Usage: bench [--quick] [--threads T] [--reps R] [--only W[,W...]] [--systems S[,S...]]
                [--settle-us U] [--spin-rounds R] [--csv FILE]                                  */
#define BATCH_IMPLEMENTATION
#include "batch.h"   /* first: under -std=c11 it asks for POSIX (nanosleep, clock_gettime) */
#include "workloads.h"

#include <omp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- systems and workloads ------------------------------------------------------------------ */
typedef enum sys_id { SYS_SERIAL, SYS_OPENMP, SYS_TBB, SYS_BATCH, SYS_COUNT } sys_id;
static const char* const sys_names[SYS_COUNT] = { "serial", "openmp", "tbb", "batch" };

#ifdef BENCH_TBB
#  define BENCH_HAVE_TBB 1
#else
#  define BENCH_HAVE_TBB 0
#endif

typedef enum wl_kind { WL_SPAWN, WL_FIB, WL_PARFOR } wl_kind;

typedef struct workload {
    const char* name;
    wl_kind kind;
    bench_split split;  /* parfor only */
    size_t chunk;       /* parfor with BENCH_SPLIT_CHUNK */
    const char* unit;
} workload;

static const workload workloads[] = {
    { "spawn",         WL_SPAWN,  BENCH_SPLIT_CHUNK,  0,    "ns/task" },
    { "fib",           WL_FIB,    BENCH_SPLIT_CHUNK,  0,    "ms" },
    { "parfor_c1",     WL_PARFOR, BENCH_SPLIT_CHUNK,  1,    "ns/item" },
    { "parfor_c64",    WL_PARFOR, BENCH_SPLIT_CHUNK,  64,   "ns/item" },
    { "parfor_c1024",  WL_PARFOR, BENCH_SPLIT_CHUNK,  1024, "ns/item" },
    { "parfor_static", WL_PARFOR, BENCH_SPLIT_STATIC, 0,    "ns/item" },
    { "parfor_guided", WL_PARFOR, BENCH_SPLIT_GUIDED, 0,    "ns/item" },
};
#define WL_COUNT ((int)(sizeof workloads / sizeof workloads[0]))

/* ---- the run's state ------------------------------------------------------------------------ */
typedef struct bench_state {
    int threads;                /* T */
    int reps;
    bool quick;
    size_t spawn_n, parfor_n;
    int fib_n;
    int fib_calls;              /* back-to-back fib(fib_n) calls per sample (a sample is ~3 ms) */
    unsigned settle_us;         /* idle time before each sample (lets other runtimes' spinning
                                   threads go to sleep so they do not steal the next system's CPU) */
    int spin_rounds;            /* batch_pool_desc.spin_rounds of both pools; 0: the library default */
    bool sys_on[SYS_COUNT];
    bool wl_on[WL_COUNT];
    const char* csv_path;

    batch_pool* pool_task;      /* spawn, fib: T workers */
    batch_pool* pool_pfor;      /* parfor: T-1 workers (>= 1) + the caller */
    bench_slot* slots;          /* batch parfor: [0] the caller, [1 + i] worker i */
    int nslots;

    uint64_t parfor_ref;        /* the serial sum, computed once */
    long fib_ref;
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
    if (got != S.fib_ref) die("fib %s: fib(%d) = %ld, expected %ld", sys, S.fib_n, got, S.fib_ref);
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

static uint64_t batch_spawn(size_t n) {
    batch_pool* pool = S.pool_task;
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

/* ---- one sample ------------------------------------------------------------------------------- */
static size_t workload_n(const workload* w) {
    switch (w->kind) {
    case WL_SPAWN: return S.spawn_n;
    case WL_FIB: return (size_t)S.fib_n;
    case WL_PARFOR: return S.parfor_n;
    }
    return 0;
}

static int system_threads(sys_id s) { return s == SYS_SERIAL ? 1 : S.threads; }

/* Runs w once on system s and returns the time in w's unit. */
static double run_once(const workload* w, sys_id s) {
    uint64_t ns = 0;
    switch (w->kind) {
    case WL_SPAWN:
        switch (s) {
        case SYS_SERIAL: ns = serial_spawn(S.spawn_n); break;
        case SYS_OPENMP: ns = omp_spawn(S.spawn_n, S.threads); break;
#ifdef BENCH_TBB
        case SYS_TBB: ns = tbb_spawn(S.spawn_n); break;
#endif
        case SYS_BATCH: ns = batch_spawn(S.spawn_n); break;
        default: die("no system %d", (int)s);
        }
        return (double)ns / (double)S.spawn_n;
    case WL_FIB:
        for (int i = 0; i < S.fib_calls; i++) {
            switch (s) {
            case SYS_SERIAL: ns += serial_fib(S.fib_n); break;
            case SYS_OPENMP: ns += omp_fib(S.fib_n, S.threads); break;
#ifdef BENCH_TBB
            case SYS_TBB: ns += tbb_fib(S.fib_n); break;
#endif
            case SYS_BATCH: ns += batch_fib(S.fib_n); break;
            default: die("no system %d", (int)s);
            }
        }
        return (double)ns / 1e6 / S.fib_calls;
    case WL_PARFOR:
        switch (s) {
        case SYS_SERIAL: ns = serial_parfor(w, S.parfor_n); break;
        case SYS_OPENMP: ns = omp_parfor(w, S.parfor_n, S.threads); break;
#ifdef BENCH_TBB
        case SYS_TBB: ns = tbb_parfor(w, S.parfor_n); break;
#endif
        case SYS_BATCH: ns = batch_parfor(w, S.parfor_n); break;
        default: die("no system %d", (int)s);
        }
        return (double)ns / (double)S.parfor_n;
    }
    return 0;
}

static void settle(void) {
    if (!S.settle_us) return;
    struct timespec ts = { (time_t)(S.settle_us / 1000000u), (long)(S.settle_us % 1000000u) * 1000L };
    while (nanosleep(&ts, &ts) != 0) {}
}

/* ---- statistics and output -------------------------------------------------------------------- */
typedef struct stats { double median, min, max; } stats;

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static stats summarize(double* v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    stats st;
    st.min = v[0];
    st.max = v[n - 1];
    st.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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

#define COL_W 17

static void print_header(void) {
    printf("%-14s %-8s %9s", "workload", "unit", "n");
    for (int s = 0; s < SYS_COUNT; s++)
        if (S.sys_on[s]) printf(" %*s", COL_W, sys_names[s]);
    if (S.sys_on[SYS_BATCH]) {
        if (S.sys_on[SYS_OPENMP]) printf(" %13s", "batch/openmp");
        if (S.sys_on[SYS_SERIAL]) printf(" %13s", "batch/serial");
        if (S.sys_on[SYS_TBB]) printf(" %10s", "batch/tbb");
    }
    printf("\n");
}

static void print_row(const workload* w, const stats* st) {
    char buf[64];
    printf("%-14s %-8s %9zu", w->name, w->unit, workload_n(w));
    for (int s = 0; s < SYS_COUNT; s++) {
        if (!S.sys_on[s]) continue;
        fmt_num(buf, sizeof buf, st[s].median);
        printf(" %*s", COL_W, buf);
    }
    if (S.sys_on[SYS_BATCH]) {
        double b = st[SYS_BATCH].median;
        if (S.sys_on[SYS_OPENMP]) printf(" %12.2fx", b / st[SYS_OPENMP].median);
        if (S.sys_on[SYS_SERIAL]) printf(" %12.2fx", b / st[SYS_SERIAL].median);
        if (S.sys_on[SYS_TBB]) printf(" %9.2fx", b / st[SYS_TBB].median);
    }
    printf("\n%-14s %-8s %9s", "", "min..max", "");
    for (int s = 0; s < SYS_COUNT; s++) {
        if (!S.sys_on[s]) continue;
        fmt_range(buf, sizeof buf, st[s]);
        printf(" %*s", COL_W, buf);
    }
    printf("\n");
    fflush(stdout);
}

static void csv_row(FILE* f, const workload* w, sys_id s, stats st) {
    fprintf(f, "%s,%s,%d,%zu,%s,%.6g,%.6g,%.6g\n", w->name, sys_names[s], system_threads(s), workload_n(w),
            w->unit, st.median, st.min, st.max);
    fflush(f);
}

/* ---- command line ----------------------------------------------------------------------------- */
static void usage(FILE* f) {
    fprintf(f,
            "usage: bench [options]\n"
            "  --quick          smaller problems, 5 repetitions (the whole run well under a minute)\n"
            "  --threads T      threads per parallel system (default: CPU count, %d here)\n"
            "  --reps R         timed repetitions per system (default 7; 5 with --quick)\n"
            "  --only LIST      comma-separated workloads:",
            batch_cpu_count());
    for (int i = 0; i < WL_COUNT; i++) fprintf(f, " %s", workloads[i].name);
    fprintf(f,
            "\n  --systems LIST   comma-separated systems: serial openmp%s batch (default: all)\n"
            "  --settle-us U    idle microseconds before each sample (default 20000; 0: none)\n"
            "  --spin-rounds R  batch_pool_desc.spin_rounds of the batch pools (default 0: the library's)\n"
            "  --csv FILE       write workload,system,threads,n,unit,median,min,max\n",
            BENCH_HAVE_TBB ? " tbb" : "");
}

static const char* need_arg(int argc, char** argv, int* i) {
    if (*i + 1 >= argc) { usage(stderr); die("%s needs a value", argv[*i]); }
    return argv[++*i];
}

static long parse_long(const char* opt, const char* s, long lo, long hi) {
    char* end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) die("%s: '%s' is not an integer in [%ld, %ld]", opt, s, lo, hi);
    return v;
}

/* Marks on[i] for every comma-separated name of list found in names[0..count). */
static void parse_list(const char* opt, const char* list, const char* const* names, int count, bool* on,
                       const bool* allowed) {
    for (int i = 0; i < count; i++) on[i] = false;
    const char* p = list;
    while (*p) {
        const char* e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        for (int i = 0; i < count; i++)
            if (strlen(names[i]) == len && strncmp(names[i], p, len) == 0 && (!allowed || allowed[i])) found = i;
        if (found < 0) { usage(stderr); die("%s: unknown name '%.*s'", opt, (int)len, p); }
        on[found] = true;
        p += len;
        if (*p == ',') p++;
    }
}

static void parse_args(int argc, char** argv) {
    int reps = 0;
    S.threads = batch_cpu_count();
    S.settle_us = 20000;
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
            S.threads = (int)parse_long(a, need_arg(argc, argv, &i), 1, BATCH_MAX_WORKERS);
        else if (!strcmp(a, "--reps")) reps = (int)parse_long(a, need_arg(argc, argv, &i), 1, 1000);
        else if (!strcmp(a, "--only")) parse_list(a, need_arg(argc, argv, &i), wl_names, WL_COUNT, S.wl_on, NULL);
        else if (!strcmp(a, "--systems"))
            parse_list(a, need_arg(argc, argv, &i), sys_names, SYS_COUNT, S.sys_on, sys_allowed);
        else if (!strcmp(a, "--spin-rounds"))
            S.spin_rounds = (int)parse_long(a, need_arg(argc, argv, &i), 0, 4096);
        else if (!strcmp(a, "--settle-us"))
            S.settle_us = (unsigned)parse_long(a, need_arg(argc, argv, &i), 0, 10000000);
        else if (!strcmp(a, "--csv")) S.csv_path = need_arg(argc, argv, &i);
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); exit(0); }
        else { usage(stderr); die("unknown option '%s'", a); }
    }
    S.reps = reps ? reps : S.quick ? 5 : 7;
    if (S.reps < 5) fprintf(stderr, "bench: warning: %d repetitions; medians want at least 5\n", S.reps);
    S.spawn_n = S.quick ? 500000 : 1000000;
    S.parfor_n = S.quick ? 4000000 : 10000000;
    S.fib_n = BENCH_FIB_N;
    S.fib_calls = S.quick ? 5 : 10;
}

/* ---- main ------------------------------------------------------------------------------------- */
int main(int argc, char** argv) {
    parse_args(argc, argv);

    int pfor_workers = S.threads - 1 < 1 ? 1 : S.threads - 1;
    BATCH_CHECK(batch_pool_create(&S.pool_task,
                                  &(batch_pool_desc){ .workers = S.threads, .spin_rounds = S.spin_rounds }));
    BATCH_CHECK(batch_pool_create(&S.pool_pfor,
                                  &(batch_pool_desc){ .workers = pfor_workers, .spin_rounds = S.spin_rounds }));
    S.nslots = pfor_workers + 1;
    S.slots = (bench_slot*)calloc((size_t)S.nslots, sizeof *S.slots);
    if (!S.slots) die("out of memory");
    omp_set_dynamic(0);
#ifdef BENCH_TBB
    if (S.sys_on[SYS_TBB] && !bench_tbb_init(S.threads)) die("could not create the oneTBB arena");
#endif
    S.parfor_ref = bench_sum_range(0, S.parfor_n);
    S.fib_ref = bench_fib_expected(S.fib_n);

    int active[SYS_COUNT], nactive = 0;
    for (int s = 0; s < SYS_COUNT; s++)
        if (S.sys_on[s]) active[nactive++] = s;

    FILE* csv = NULL;
    if (S.csv_path) {
        csv = fopen(S.csv_path, "w");
        if (!csv) die("cannot write %s", S.csv_path);
        fprintf(csv, "workload,system,threads,n,unit,median,min,max\n");
    }

    printf("batch.h bench: T=%d threads (%d CPUs), %d timed reps per system after 1 warm-up, interleaved "
           "round-robin%s, %u us settle before each sample\n",
           S.threads, batch_cpu_count(), S.reps, S.quick ? ", --quick" : "", S.settle_us);
    if (S.spin_rounds) printf("batch pools: spin_rounds = %d\n", S.spin_rounds);
    printf("threads: parfor_*   batch = caller + %d worker%s = %d; openmp = team of %d%s\n", pfor_workers,
           pfor_workers == 1 ? "" : "s", pfor_workers + 1, S.threads,
           BENCH_HAVE_TBB ? "; tbb = arena of T slots (caller is one)" : "");
    printf("         spawn, fib batch = %d workers (+ the caller, which only submits and sleeps); openmp = team "
           "of %d (one produces, then helps)%s\n",
           S.threads, S.threads, BENCH_HAVE_TBB ? "; tbb = arena of T slots (caller produces, then helps)" : "");
    printf("         fib: ms per fib(%d) (serial cutoff n < %d), a sample is the mean of %d back-to-back calls; "
           "parfor sums fmix64(i)\n",
           S.fib_n, BENCH_FIB_CUTOFF, S.fib_calls);
    printf("         every unit is a time: lower is better, ratios < 1 mean batch is faster\n\n");
    print_header();

    double* samples = (double*)malloc(sizeof(double) * (size_t)SYS_COUNT * (size_t)S.reps);
    if (!samples) die("out of memory");
    for (int wi = 0; wi < WL_COUNT; wi++) {
        if (!S.wl_on[wi]) continue;
        const workload* w = &workloads[wi];
        for (int k = 0; k < nactive; k++) { settle(); (void)run_once(w, (sys_id)active[k]); }
        for (int r = 0; r < S.reps; r++) {
            for (int k = 0; k < nactive; k++) {
                int s = active[(r + k) % nactive];
                settle();
                samples[s * S.reps + r] = run_once(w, (sys_id)s);
            }
        }
        stats st[SYS_COUNT];
        memset(st, 0, sizeof st);
        for (int k = 0; k < nactive; k++) {
            int s = active[k];
            st[s] = summarize(&samples[s * S.reps], S.reps);
            if (csv) csv_row(csv, w, (sys_id)s, st[s]);
        }
        print_row(w, st);
    }
    free(samples);
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
    return 0;
}
