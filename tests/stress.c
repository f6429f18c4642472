/* stress.c - seeded stress of job graphs and batched maps (issue 6). Each iteration derives its
   own seed from the master seed, makes a pool of 1..W workers (or an inline pool) and runs 1..3
   random jobs on it: random DAGs of up to 256 tasks (random edges, ~10% failing tasks, retries
   with small backoffs, FAIL_FAST or CONTINUE, a concurrency limit, cancellation at a random
   instant) and random maps (random size, batch size, threshold, retries, ordered/unordered
   folds, failures, pull sources, cancellation). The checks are those of dag_check.h and
   map_check.h (shared with the suite). The first failure prints
       FAILED: replay with build/stress --seed <iteration seed>
   and exits 1; a hung iteration (watchdog, BATCH_STRESS_WATCHDOG seconds, default 300) too.

   usage: stress [--seed S] [--iterations N] [--minutes M] [--master-seed S] [--workers-max W] [-v]
     --seed S          replay exactly one iteration, the one with seed S
     --iterations N    run N iterations (default 200; with --minutes, at most N)
     --minutes M       run until M minutes are up (fractions allowed)
     --master-seed S   derive the iteration seeds from S (default: time and pid)
     --workers-max W   pools of 1..W workers (default 16), plus inline pools
     -v                one line per iteration */
#define _POSIX_C_SOURCE 200809L
#define BATCH_IMPLEMENTATION
#include "../batch.h"
#include "test.h"
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

uint64_t test_seed;
int test_scale = 1;
static uint64_t iter_seed;     /* the seed of the iteration being run */
static int verbose;
static const char* self = "build/stress";

static void print_replay(void) {
    fprintf(stderr, "FAILED: replay with %s --seed %llu\n", self, (unsigned long long)iter_seed);
    fflush(stderr);
}

void test_fail_at(const char* file, int line, const char* expr, const char* detail) {
    fflush(stdout);
    fprintf(stderr, "%s:%d: CHECK(%s) failed%s%s\n", file, line, expr, detail ? ": " : "", detail ? detail : "");
    print_replay();
    _exit(1);
}

static batch_pool* make_pool(int workers) {
    batch_pool* p = NULL;
    CHECK_OK(batch_pool_create(&p, &(batch_pool_desc){ .workers = workers }));
    CHECK(p != NULL);
    return p;
}

#include "dag_check.h"
#include "map_check.h"

/* ---- watchdog: a hang is a failure too (async-signal-safe output only) ------------------------ */
static char replay_line[160];
static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "TIMEOUT: the iteration hangs\n";
    if (write(2, msg, sizeof msg - 1) < 0) {}
    if (write(2, replay_line, strlen(replay_line)) < 0) {}
    _exit(2);
}

/* A sanitizer report (halt_on_error, -fno-sanitize-recover) ends the process in the runtime:
   its death callback prints the replay line. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#  define STRESS_SANITIZER 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#    define STRESS_SANITIZER 1
#  endif
#endif
#ifdef STRESS_SANITIZER
void __sanitizer_set_death_callback(void (*callback)(void));
static void on_sanitizer_death(void) { if (write(2, replay_line, strlen(replay_line)) < 0) {} }
#endif

/* ---- one iteration ------------------------------------------------------------------------------ */
typedef struct iter_stats { long graphs, maps; } iter_stats;

static void run_iteration(uint64_t seed, int workers_max, iter_stats* st) {
    iter_seed = seed;
    snprintf(replay_line, sizeof replay_line, "FAILED: replay with %s --seed %llu\n", self, (unsigned long long)seed);
    uint64_t rng = seed;
    int w = (int)(test_rand(&rng) % (uint64_t)(workers_max + 1));   /* 0: inline */
    batch_pool* p = make_pool(w ? w : BATCH_WORKERS_INLINE);
    batch_pool* inl = make_pool(BATCH_WORKERS_INLINE);
    int jobs = 1 + (int)(test_rand(&rng) % 3);
    if (verbose) printf("seed %llu: %d workers, %d jobs:", (unsigned long long)seed, w, jobs);
    for (int j = 0; j < jobs; j++) {
        if (test_rand(&rng) & 1) {
            rd_opts o;
            memset(&o, 0, sizeof o);
            o.fail_pct = (int)(test_rand(&rng) % 21);          /* ~10% on average */
            o.retry_pct = (int)(test_rand(&rng) % 60);
            o.max_conc = test_rand(&rng) % 3 == 0 ? 1 + (int)(test_rand(&rng) % 6) : 0;
            o.fail_fast = (int)(test_rand(&rng) & 1);
            o.cancel = test_rand(&rng) % 4 == 0;
            o.max_nodes = 256;
            o.hubs = test_rand(&rng) % 3 == 0 ? 1 + (int)(test_rand(&rng) % 3) : 0;
            o.cancel_max_ns = 1 + test_rand(&rng) % (1u << (test_rand(&rng) % 21));   /* up to ~2 ms */
            if (verbose) printf(" graph(fail %d%%, %s%s, conc %d)", o.fail_pct, o.fail_fast ? "fail-fast" : "continue",
                                o.cancel ? ", cancel" : "", o.max_conc);
            rd_run_on(p, &rng, o);
            st->graphs++;
        } else {
            if (verbose) printf(" map");
            mc_run(p, inl, &rng, 20000);
            st->maps++;
        }
    }
    if (verbose) { printf("\n"); fflush(stdout); }
    CHECK_OK(batch_pool_destroy(inl));
    CHECK_OK(batch_pool_destroy(p));
}

int main(int argc, char** argv) {
    uint64_t master = (uint64_t)batch_now_ns() ^ ((uint64_t)getpid() << 32);
    uint64_t replay = 0;
    int have_replay = 0, workers_max = 16;
    long iterations = -1;
    double minutes = 0;
    self = argv[0];
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seed") && v) { replay = strtoull(v, NULL, 0); have_replay = 1; i++; }
        else if (!strcmp(a, "--master-seed") && v) { master = strtoull(v, NULL, 0); i++; }
        else if (!strcmp(a, "--iterations") && v) { iterations = strtol(v, NULL, 0); i++; }
        else if (!strcmp(a, "--minutes") && v) { minutes = strtod(v, NULL); i++; }
        else if (!strcmp(a, "--workers-max") && v) { workers_max = atoi(v); i++; }
        else if (!strcmp(a, "-v")) verbose = verbose_maps = 1;
        else {
            fprintf(stderr, "usage: %s [--seed S] [--iterations N] [--minutes M] [--master-seed S] [--workers-max W] [-v]\n", argv[0]);
            return 2;
        }
    }
    if (workers_max < 1) workers_max = 1;
    if (workers_max > 64) workers_max = 64;
    const char* wd = getenv("BATCH_STRESS_WATCHDOG");
    unsigned watchdog = wd && atoi(wd) > 0 ? (unsigned)atoi(wd) : 300;
    signal(SIGALRM, on_alarm);
#ifdef STRESS_SANITIZER
    __sanitizer_set_death_callback(on_sanitizer_death);
#endif
    iter_stats st = { 0, 0 };
    uint64_t t0 = batch_now_ns();
    if (have_replay) {
        alarm(watchdog);
        run_iteration(replay, workers_max, &st);
        printf("seed %llu: passed (%ld graphs, %ld maps)\n", (unsigned long long)replay, st.graphs, st.maps);
        return 0;
    }
    if (iterations < 0) iterations = minutes > 0 ? -1 : 200;
    uint64_t deadline = minutes > 0 ? t0 + (uint64_t)(minutes * 60e9) : 0;
    printf("stress: master seed %llu, workers 1..%d and inline, %s\n", (unsigned long long)master, workers_max,
           minutes > 0 ? "timed" : "counted");
    fflush(stdout);
    uint64_t ms = master;
    long i = 0;
    for (; iterations < 0 || i < iterations; i++) {
        if (deadline && batch_now_ns() >= deadline) break;
        uint64_t seed = test_rand(&ms);
        alarm(watchdog);
        run_iteration(seed, workers_max, &st);
    }
    alarm(0);
    double secs = (double)(batch_now_ns() - t0) / 1e9;
    printf("stress: %ld iterations passed (%ld graphs, %ld maps) in %.1f s, %.1f iterations/s\n", i, st.graphs, st.maps,
           secs, secs > 0 ? (double)i / secs : 0.0);
    return 0;
}
