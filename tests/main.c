/* main.c - the test runner. Usage: run [-s SEED] [-t SECONDS] [--no-fork] [--list] [-x PREFIX] [NAME...]
   Every test runs in a forked child under a watchdog: a test that hangs is reported with the
   stacks of all its threads (gdb) and killed. The last line is "N passed, N failed".
   Windows has no fork: each test runs in this program started again with a hidden
   `--child NAME` argument (--no-fork runs them in the runner's process, as elsewhere). */
#define _POSIX_C_SOURCE 200809L   /* the runner forks and waits; tests use fmemopen */
/* 64-bit file offsets on 32-bit targets: the journal and queue files are tested as users with
   large files build them, and readdir works under qemu-user (a 64-bit host's ext4 hashes
   overflow the 32-bit d_off otherwise) */
#define _FILE_OFFSET_BITS 64
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

#if defined(_WIN32)
#  include <fcntl.h>
#else
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#endif

uint64_t test_seed;
int test_scale = 1;

void test_fail_at(const char* file, int line, const char* expr, const char* detail) {
    fprintf(stderr, "  %s:%d: CHECK(%s) failed%s%s (seed %llu)\n", file, line, expr,
            detail ? ": " : "", detail ? detail : "", (unsigned long long)test_seed);
    fflush(stderr);
    _exit(1);
}

/* ---- the OS, for the tests (test.h) --------------------------------------------------------- */
void test_skip(const char* what) { printf("  skipped on Windows: %s\n", what); fflush(stdout); }

#if defined(_WIN32)
void test_sleep_ns(uint64_t ns) { Sleep((DWORD)((ns + 999999u) / 1000000u)); }

/* fmemopen's stand-in: a temporary file (deleted when closed) read back into buf at close. */
FILE* test_memfile(char* buf, size_t n) {
    (void)buf; (void)n;
    WCHAR dir[MAX_PATH + 1], name[MAX_PATH + 1];
    if (!GetTempPathW(MAX_PATH + 1, dir) || !GetTempFileNameW(dir, L"bat", 0, name)) return NULL;
    HANDLE h = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                           FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, NULL);
    if (h == INVALID_HANDLE_VALUE) return NULL;
    int fd = _open_osfhandle((intptr_t)h, _O_RDWR | _O_BINARY);
    if (fd < 0) { CloseHandle(h); return NULL; }
    FILE* f = _fdopen(fd, "w+b");
    if (!f) _close(fd);
    return f;
}
void test_memfile_close(FILE* f, char* buf, size_t n) {
    rewind(f);
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = 0;
    fclose(f);
}
void test_tmp_path(char* out, size_t n, const char* name) {
    char dir[MAX_PATH + 1];
    DWORD k = GetTempPathA(sizeof dir, dir);
    if (!k || k > MAX_PATH) snprintf(dir, sizeof dir, ".\\");
    snprintf(out, n, "%s%s", dir, name);
}
int test_is_wine(void) {
    HMODULE nt = GetModuleHandleA("ntdll.dll");
    return nt && GetProcAddress(nt, "wine_get_version") != NULL;
}
void* test_spawn_self(const char* args) {
    WCHAR exe[32768];
    DWORD k = GetModuleFileNameW(NULL, exe, 32768);
    if (!k || k >= 32768) return NULL;
    int alen = MultiByteToWideChar(CP_ACP, 0, args, -1, NULL, 0);   /* paths from GetTempPathA */
    if (alen <= 0) return NULL;
    WCHAR* cmd = (WCHAR*)malloc(((size_t)k + (size_t)alen + 3) * sizeof(WCHAR));
    if (!cmd) return NULL;
    size_t at = 0;
    cmd[at++] = L'"';
    memcpy(cmd + at, exe, (size_t)k * sizeof(WCHAR));
    at += k;
    cmd[at++] = L'"';
    cmd[at++] = L' ';
    MultiByteToWideChar(CP_ACP, 0, args, -1, cmd + at, alen);   /* with its NUL */
    /* the runner's stdout and stderr, so the child's output goes where the runner's goes */
    STARTUPINFOW si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    HANDLE std[3] = { si.hStdInput, si.hStdOutput, si.hStdError };
    for (int i = 0; i < 3; i++)
        if (std[i] && std[i] != INVALID_HANDLE_VALUE) SetHandleInformation(std[i], HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
    PROCESS_INFORMATION pi;
    /* wine's CreateProcess fails now and then under load (seen once in CI): a few tries, then the
       error is reported */
    BOOL ok = FALSE;
    DWORD err = 0;
    for (int attempt = 0; attempt < 5 && !ok; attempt++) {
        if (attempt) test_sleep_ns((uint64_t)100000000u << attempt);
        ok = CreateProcessW(exe, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
        if (!ok) {
            err = GetLastError();
            fprintf(stderr, "  CreateProcess failed (try %d): error %lu\n", attempt + 1, (unsigned long)err);
        }
    }
    free(cmd);
    if (!ok) { SetLastError(err); return NULL; }
    CloseHandle(pi.hThread);
    return pi.hProcess;
}
#else
void test_sleep_ns(uint64_t ns) {
    struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
    nanosleep(&ts, NULL);
}
FILE* test_memfile(char* buf, size_t n) { return fmemopen(buf, n, "w"); }
void test_memfile_close(FILE* f, char* buf, size_t n) { (void)buf; (void)n; fclose(f); }
void test_tmp_path(char* out, size_t n, const char* name) { snprintf(out, n, "/tmp/%s", name); }
#endif

#include "test_platform.c"
#include "test_deque.c"
#include "test_pool.c"
#include "test_graph.c"
#include "test_map.c"
#include "test_map_range.c"
#include "test_progress.c"
#include "test_report.c"
#include "test_regress.c"
#include "test_badinput.c"
#include "test_nomem.c"
#include "test_journal.c"
#include "test_portable.c"
#include "test_queue.c"
#include "test_queue_procs.c"

static const test_case all_tests[] = {
    PLATFORM_TESTS
    DEQUE_TESTS
    POOL_TESTS
    GRAPH_TESTS
    MAP_TESTS
    MAP_RANGE_TESTS
    PROGRESS_TESTS
    REPORT_TESTS
    REGRESS_TESTS
    BADINPUT_TESTS
    NOMEM_TESTS
    JOURNAL_TESTS
    PORTABLE_TESTS
    QUEUE_TESTS
    QUEUE_PROC_TESTS
};

static double now_ms(void) { return (double)batch_now_ns() / 1e6; }

#if !defined(_WIN32)
static void dump_stacks(pid_t pid) {
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "command -v gdb >/dev/null && gdb -batch -p %d -ex 'thread apply all bt' 2>/dev/null | grep -E '^(#|Thread)' | head -n 200 >&2",
             (int)pid);
    if (system(cmd) != 0) fprintf(stderr, "  (no stacks: gdb missing or failed)\n");
}
#endif

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
#if defined(_WIN32)
/* The test in a child process (this program, --child NAME) under the watchdog: WaitForSingleObject
   with the timeout, TerminateProcess when it passes. No stacks: there is no gdb to attach. */
static int run_one(const test_case* t, int timeout_s, int fork_it) {
    if (!fork_it) { t->fn(); return 0; }
    fflush(stdout); fflush(stderr);
    char args[256];
    snprintf(args, sizeof args, "--child %s -s %llu", t->name, (unsigned long long)test_seed);
    HANDLE h = (HANDLE)test_spawn_self(args);
    if (!h) { fprintf(stderr, "  CreateProcess failed: error %lu\n", (unsigned long)GetLastError()); return 1; }
    DWORD code = 1;
    if (WaitForSingleObject(h, (DWORD)timeout_s * 1000u) == WAIT_TIMEOUT) {
        fprintf(stderr, "  TIMEOUT after %d s, killed (no thread stacks on Windows) (seed %llu)\n", timeout_s,
                (unsigned long long)test_seed);
        TerminateProcess(h, 1);
        WaitForSingleObject(h, INFINITE);
        CloseHandle(h);
        return 1;
    }
    GetExitCodeProcess(h, &code);
    CloseHandle(h);
    if (code >= 0xC0000000u) {   /* an NTSTATUS: the process died of an exception */
        fprintf(stderr, "  crashed: exception 0x%08lx (seed %llu)\n", (unsigned long)code, (unsigned long long)test_seed);
        return 1;
    }
    return code != 0;
}

/* --child NAME [-s SEED]: runs one test in this process (the runner started it). */
static int run_child(int argc, char** argv, const test_case* all, int n) {
    for (int i = 3; i + 1 < argc; i++) if (!strcmp(argv[i], "-s")) test_seed = strtoull(argv[i + 1], NULL, 0);
    for (int i = 0; i < n; i++) {
        if (strcmp(all[i].name, argv[2]) != 0) continue;
        all[i].fn();
        fflush(stdout); fflush(stderr);
        _exit(0);   /* as the forked child: no exit-time work in a process whose test is over */
    }
    fprintf(stderr, "no test %s\n", argv[2]);
    return 2;
}
#else
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
#endif

int main(int argc, char** argv) {
    int timeout_s = 300, fork_it = 1, list = 0;
    const char* names[64];
    const char* skip[16];   /* -x PREFIX: leave out the tests whose names start with it */
    int nskip = 0;
    int nnames = 0;
#if defined(_WIN32)
    test_seed = (uint64_t)batch_now_ns() ^ ((uint64_t)GetCurrentProcessId() << 32);
#else
    test_seed = (uint64_t)batch_now_ns() ^ ((uint64_t)getpid() << 32);
#endif
    const char* sc = getenv("BATCH_TEST_SCALE");
    if (sc && atoi(sc) > 0) test_scale = atoi(sc);
    const char* to = getenv("BATCH_TEST_TIMEOUT");
    if (to && atoi(to) > 0) timeout_s = atoi(to);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc) test_seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) timeout_s = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-fork")) fork_it = 0;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else if (!strcmp(argv[i], "-x") && i + 1 < argc) { if (nskip < 16) skip[nskip++] = argv[i + 1]; i++; }
        else if (nnames < 64) names[nnames++] = argv[i];
    }
    int n = (int)(sizeof all_tests / sizeof all_tests[0]);
#if defined(_WIN32)
    if (argc >= 3 && !strcmp(argv[1], "--child")) return run_child(argc, argv, all_tests, n);
    if (argc >= 2 && !strcmp(argv[1], "--jchild")) return journal_child_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "--qchild")) return queue_child_main(argc, argv);
#endif
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
        int skipped = 0;
        for (int k = 0; k < nskip; k++) skipped |= strncmp(skip[k], t->name, strlen(skip[k])) == 0;
        if (skipped) continue;
        double t0 = now_ms();
        int f = run_one(t, timeout_s, fork_it);
        printf("%s %-40s %8.1f ms\n", f ? "FAIL" : "ok  ", t->name, now_ms() - t0);
        fflush(stdout);
        if (f) failed++; else passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
