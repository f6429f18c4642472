/* main.c - the test runner. Usage: run [-s SEED] [-t SECONDS] [--no-fork] [--list] [NAME...]
   Every test runs in a forked child under a watchdog: a test that hangs is reported with the
   stacks of all its threads (gdb) and killed. The last line is "N passed, N failed". */
#define _POSIX_C_SOURCE 200809L   /* the runner forks and waits; tests use fmemopen */
#define BATCH_STATIC
#define BATCH_IMPLEMENTATION
#include <stdatomic.h>
#include <stddef.h>
/* The test allocator (test_alloc.c): counts live bytes and can fail allocation number N. */
void* test_malloc(size_t sz, void* ctx);
void* test_realloc(void* p, size_t sz, void* ctx);
void test_free(void* p, void* ctx);
#define BATCH_MALLOC(sz, ctx) test_malloc((sz), (ctx))
#define BATCH_REALLOC(p, sz, ctx) test_realloc((p), (sz), (ctx))
#define BATCH_FREE(p, ctx) test_free((p), (ctx))
/* Thread creation failure at the k-th creation (0-based); -1: never. */
extern _Atomic int test_fail_thread_at;
int test_thread_create_fails(void);
#define BATCH__FAIL_THREAD_CREATE() test_thread_create_fails()
/* Mutex / condition variable initialization failure at the k-th one (0-based); -1: never. */
extern _Atomic int test_fail_sync_at;
int test_sync_init_fails(void);
#define BATCH__FAIL_SYNC_INIT() test_sync_init_fails()
/* While set: about half of the graph's queueings from workers fail (as if out of memory). */
extern _Atomic int test_fail_graph_submit_on;
int test_graph_submit_fails(void);
#define BATCH__FAIL_GRAPH_SUBMIT() test_graph_submit_fails()
#include "../batch.h"
#include "test.h"
#include "test_alloc.c"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

uint64_t test_seed;
int test_scale = 1;

void test_fail_at(const char* file, int line, const char* expr, const char* detail) {
    fprintf(stderr, "  %s:%d: CHECK(%s) failed%s%s (seed %llu)\n", file, line, expr,
            detail ? ": " : "", detail ? detail : "", (unsigned long long)test_seed);
    fflush(stderr);
    _exit(1);
}

#include "test_platform.c"
#include "test_deque.c"
#include "test_pool.c"
#include "test_graph.c"
#include "test_map.c"
#include "test_progress.c"
#include "test_report.c"
#include "test_regress.c"
#include "test_badinput.c"
#include "test_nomem.c"
#include "test_journal.c"
#include "test_portable.c"

static const test_case all_tests[] = {
    PLATFORM_TESTS
    DEQUE_TESTS
    POOL_TESTS
    GRAPH_TESTS
    MAP_TESTS
    PROGRESS_TESTS
    REPORT_TESTS
    REGRESS_TESTS
    BADINPUT_TESTS
    NOMEM_TESTS
    JOURNAL_TESTS
    PORTABLE_TESTS
};

static double now_ms(void) { return (double)batch_now_ns() / 1e6; }

static void dump_stacks(pid_t pid) {
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "command -v gdb >/dev/null && gdb -batch -p %d -ex 'thread apply all bt' 2>/dev/null | grep -E '^(#|Thread)' | head -n 200 >&2",
             (int)pid);
    if (system(cmd) != 0) fprintf(stderr, "  (no stacks: gdb missing or failed)\n");
}

/* A forked test ends with _exit, which skips LeakSanitizer's exit-time check: run it by hand
   (a leak then fails the test with LSan's exit code). */
#if defined(__SANITIZE_ADDRESS__)
#  define TEST_LSAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define TEST_LSAN 1
#  endif
#endif
#if defined(TEST_LSAN)
void __lsan_do_leak_check(void);
#  define TEST_LEAK_CHECK() __lsan_do_leak_check()
#else
#  define TEST_LEAK_CHECK() ((void)0)
#endif

/* 0 pass, 1 fail. */
static int run_one(const test_case* t, int timeout_s, int fork_it) {
    if (!fork_it) { t->fn(); return 0; }
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 1; }
    if (pid == 0) { t->fn(); fflush(stdout); TEST_LEAK_CHECK(); _exit(0); }
    double deadline = now_ms() + timeout_s * 1000.0;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0) { perror("waitpid"); return 1; }
        if (now_ms() > deadline) {
            fprintf(stderr, "  TIMEOUT after %d s: thread stacks follow (seed %llu)\n", timeout_s,
                    (unsigned long long)test_seed);
            dump_stacks(pid);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return 1;
        }
        { struct timespec ts = { 0, 2000000 }; nanosleep(&ts, NULL); }
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "  killed by signal %d (seed %llu)\n", WTERMSIG(status), (unsigned long long)test_seed);
        return 1;
    }
    return WEXITSTATUS(status) != 0;
}

int main(int argc, char** argv) {
    int timeout_s = 300, fork_it = 1, list = 0;
    const char* names[64];
    int nnames = 0;
    test_seed = (uint64_t)batch_now_ns() ^ ((uint64_t)getpid() << 32);
    const char* sc = getenv("BATCH_TEST_SCALE");
    if (sc && atoi(sc) > 0) test_scale = atoi(sc);
    const char* to = getenv("BATCH_TEST_TIMEOUT");
    if (to && atoi(to) > 0) timeout_s = atoi(to);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc) test_seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) timeout_s = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-fork")) fork_it = 0;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else if (nnames < 64) names[nnames++] = argv[i];
    }
    int n = (int)(sizeof all_tests / sizeof all_tests[0]);
    if (list) { for (int i = 0; i < n; i++) puts(all_tests[i].name); return 0; }
    printf("seed %llu (replay: %s -s %llu NAME)\n", (unsigned long long)test_seed, argv[0],
           (unsigned long long)test_seed);
    int passed = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        const test_case* t = &all_tests[i];
        if (nnames) {
            int hit = 0;
            for (int k = 0; k < nnames; k++) hit |= strcmp(names[k], t->name) == 0;
            if (!hit) continue;
        }
        double t0 = now_ms();
        int f = run_one(t, timeout_s, fork_it);
        printf("%s %-40s %8.1f ms\n", f ? "FAIL" : "ok  ", t->name, now_ms() - t0);
        fflush(stdout);
        if (f) failed++; else passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
