/* batchrun_child_test.c - tests of examples/batchrun/child.c (standalone driver).

   cc -std=c11 -O2 -Iexamples/batchrun -pthread tests/batchrun_child_test.c examples/batchrun/child.c
   ./a.out             runs the checks; the last line is "N passed, N failed" (exit 1 on failure)
   ./a.out --bench N   N x `true`, then N x `sleep 0.01`, through 2 threads; prints the wall times
   Build with -DBR_NO_PIDFD to test the SIGCHLD fallback. */
#define _GNU_SOURCE
#include "child.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static int g_pass, g_fail;   /* the tests run one at a time; only the main thread counts */

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (cond) {                                                               \
            g_pass++;                                                             \
        } else {                                                                  \
            g_fail++;                                                             \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                \
            printf(__VA_ARGS__);                                                  \
            printf("\n");                                                         \
        }                                                                         \
    } while (0)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(double s) {
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

static br_cmd_spec spec_of(const char* command, size_t seq) {
    br_cmd_spec s;
    memset(&s, 0, sizeof s);
    s.command = command;
    s.env = environ;
    s.seq = seq;
    s.out_fd = s.err_fd = -1;
    return s;
}

/* An unlinked temporary file to collect a sink's output. */
static int tmp_file(void) {
    char path[] = "/tmp/brtest.XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) unlink(path);
    return fd;
}

/* The whole content of fd (from offset 0), NUL-terminated; caller frees. */
static char* slurp(int fd, size_t* len) {
    struct stat st;
    if (fstat(fd, &st) != 0) return NULL;
    char* b = (char*)malloc((size_t)st.st_size + 1);
    ssize_t n = b ? pread(fd, b, (size_t)st.st_size, 0) : -1;
    if (n < 0) n = 0;
    if (b) b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

/* Runs one command on o and emits its output; returns br_cmd_run's result. */
static int run_emit(br_output* o, const br_cmd_spec* s, br_cmd_result* res) {
    br_capture* cap = NULL;
    int err = br_cmd_run(o, s, res, &cap);
    if (!err) br_output_emit(o, s->seq, cap);
    return err;
}

/* ---- tests -------------------------------------------------------------------------------------- */
static void test_exit_codes(void) {
    br_output* o;
    int out = tmp_file();
    CHECK(br_output_create(&o, out, out, BR_OUT_GROUP, 0, 1 << 20) == 0, "create");
    struct { const char* cmd; int code, sig; } cases[] = {
        { "exit 0", 0, 0 }, { "exit 3", 3, 0 }, { "kill -9 $$", -1, 9 }, { "kill -TERM $$", -1, SIGTERM },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        br_cmd_spec s = spec_of(cases[k].cmd, k + 1);
        br_cmd_result r;
        int err = run_emit(o, &s, &r);
        CHECK(err == 0 && r.exit_code == cases[k].code && r.signo == cases[k].sig, "%s: err %d exit %d signo %d",
              cases[k].cmd, err, r.exit_code, r.signo);
        CHECK(!r.timed_out && !r.stopped && r.out_bytes == 0, "%s: flags", cases[k].cmd);
    }
    CHECK(br_output_destroy(o) == 0, "destroy");
    close(out);
}

typedef struct worker {
    br_output* o;
    br_cmd_spec spec;
    br_cmd_result res;
    int err;
    double secs;
    pthread_t th;
} worker;

static void* worker_main(void* arg) {
    worker* w = (worker*)arg;
    double t = now_s();
    w->err = run_emit(w->o, &w->spec, &w->res);
    w->secs = now_s() - t;
    return NULL;
}

/* Counts the places where consecutive lines change their first character: 3 for 4 whole blocks. */
static int block_changes(const char* text, int* lines) {
    int changes = 0;
    char prev = 0;
    *lines = 0;
    for (const char* p = text; *p; p = strchr(p, '\n') + 1) {
        if (prev && *p != prev) changes++;
        prev = *p;
        ++*lines;
        if (!strchr(p, '\n')) break;
    }
    return changes;
}

static void test_grouping(br_out_mode mode) {
    br_output* o;
    int out = tmp_file();
    CHECK(br_output_create(&o, out, out, mode, 0, 1 << 20) == 0, "create");
    worker w[4];
    char cmds[4][160];
    for (int k = 0; k < 4; k++) {
        snprintf(cmds[k], sizeof cmds[k], "for i in 1 2 3 4 5; do echo %c$i; sleep 0.02; done", 'A' + k);
        w[k].o = o;
        w[k].spec = spec_of(cmds[k], (size_t)k + 1);
        pthread_create(&w[k].th, NULL, worker_main, &w[k]);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(w[k].th, NULL);
        CHECK(w[k].err == 0 && w[k].res.exit_code == 0 && w[k].res.out_bytes == 15, "worker %d: err %d bytes %llu",
              k, w[k].err, (unsigned long long)w[k].res.out_bytes);
    }
    CHECK(br_output_destroy(o) == 0, "destroy");
    char* text = slurp(out, NULL);
    int lines, changes = block_changes(text, &lines);
    if (mode == BR_OUT_GROUP) CHECK(lines == 20 && changes == 3, "group: %d lines, %d changes:\n%s", lines, changes, text);
    else CHECK(lines == 20 && changes > 3, "line mode interleaves: %d lines, %d changes", lines, changes);
    free(text);
    close(out);
}

static void test_keep_order(void) {
    br_output* o;
    int out = tmp_file();
    CHECK(br_output_create(&o, out, out, BR_OUT_GROUP, 1, 1 << 20) == 0, "create");
    const char* cmds[3] = { "sleep 0.3; echo one", "sleep 0.1; echo two", "echo three" };
    worker w[3];
    for (int k = 0; k < 3; k++) {
        w[k].o = o;
        w[k].spec = spec_of(cmds[k], (size_t)k + 1);
        pthread_create(&w[k].th, NULL, worker_main, &w[k]);
    }
    for (int k = 0; k < 3; k++) pthread_join(w[k].th, NULL);
    char* text = slurp(out, NULL);
    CHECK(strcmp(text, "one\ntwo\nthree\n") == 0, "order: [%s]", text);
    free(text);
    CHECK(br_output_destroy(o) == 0, "destroy");
    close(out);
}

static void test_skip(void) {
    br_output* o;
    int out = tmp_file();
    CHECK(br_output_create(&o, out, out, BR_OUT_LINE, 1, 1 << 20) == 0, "create (-k --line-buffer)");
    br_cmd_result r;
    br_cmd_spec s3 = spec_of("echo 3", 3), s2 = spec_of("echo 2", 2);
    run_emit(o, &s3, &r);
    run_emit(o, &s2, &r);
    char* text = slurp(out, NULL);
    CHECK(strcmp(text, "") == 0, "held until seq 1: [%s]", text);
    free(text);
    br_output_skip(o, 1);
    text = slurp(out, NULL);
    CHECK(strcmp(text, "2\n3\n") == 0, "skip 1 lets 2 and 3 out: [%s]", text);
    free(text);
    br_output_skip(o, 5);   /* held until destroy; 4 never comes */
    br_cmd_spec s6 = spec_of("echo 6", 6);
    run_emit(o, &s6, &r);
    CHECK(br_output_destroy(o) == 0, "destroy");
    text = slurp(out, NULL);
    CHECK(strcmp(text, "2\n3\n6\n") == 0, "destroy flushes what waits: [%s]", text);
    free(text);
    close(out);
}

static void test_tag(br_out_mode mode) {
    br_output* o;
    int out = tmp_file();
    CHECK(br_output_create(&o, out, out, mode, 0, 1 << 20) == 0, "create");
    br_cmd_spec s = spec_of("printf 'a\\nb'; printf 'e1\\ne2' >&2", 1);
    s.tag = "x";
    br_cmd_result r;
    CHECK(run_emit(o, &s, &r) == 0 && r.out_bytes == 3 && r.err_bytes == 5, "run: %llu %llu",
          (unsigned long long)r.out_bytes, (unsigned long long)r.err_bytes);
    s = spec_of("printf ''", 2);
    s.tag = "y";
    run_emit(o, &s, &r);
    CHECK(br_output_destroy(o) == 0, "destroy");
    char* text = slurp(out, NULL);
    /* parallel 20221122 --tag: x\ta\nx\tbx\te1\nx\te2; with --line-buffer also x\ta\nx\te1\nx\tbx\te2 (lines as
       they come, the last lines without a newline at the end) */
    int ok = strcmp(text, "x\ta\nx\tbx\te1\nx\te2") == 0;
    if (mode == BR_OUT_LINE) ok = ok || strcmp(text, "x\ta\nx\te1\nx\tbx\te2") == 0;
    CHECK(ok, "mode %d: [%s]", (int)mode, text);
    free(text);
    close(out);
}

static void test_ungroup_and_files(void) {
    br_output* o;
    int out = tmp_file(), res_out = tmp_file(), res_err = tmp_file();
    CHECK(br_output_create(&o, out, out, BR_OUT_UNGROUP, 0, 1 << 20) == 0, "create");
    br_cmd_spec s = spec_of("echo direct; echo err >&2", 1);
    br_cmd_result r;
    CHECK(run_emit(o, &s, &r) == 0 && r.exit_code == 0, "ungroup run");
    char* text = slurp(out, NULL);
    CHECK(strcmp(text, "direct\nerr\n") == 0, "ungroup: [%s]", text);
    free(text);
    s = spec_of("echo to-file; echo e >&2", 2);
    s.out_fd = res_out;
    s.err_fd = res_err;
    CHECK(run_emit(o, &s, &r) == 0 && r.out_bytes == 8 && r.err_bytes == 2, "results files: %llu %llu",
          (unsigned long long)r.out_bytes, (unsigned long long)r.err_bytes);
    CHECK(br_output_destroy(o) == 0, "destroy");
    close(out);
    close(res_out);
    close(res_err);
}

/* Is an unlinked batchrun.* spill file open in this process? */
static int spill_file_open(void) {
#ifdef __linux__
    DIR* d = opendir("/proc/self/fd");
    struct dirent* e;
    int found = 0;
    while (d && (e = readdir(d))) {
        char link[300], target[512];
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = 0;
            if (strstr(target, "batchrun.") && strstr(target, "(deleted)")) found = 1;
        }
    }
    if (d) closedir(d);
    return found;
#else
    return 1;
#endif
}

static void test_big_output(void) {
    br_output* o;
    int out = tmp_file();
    CHECK(br_output_create(&o, out, out, BR_OUT_GROUP, 0, 1 << 20) == 0, "create");
    br_cmd_spec s = spec_of("head -c 100000000 /dev/zero; echo tail >&2", 1);
    br_cmd_result r;
    br_capture* cap = NULL;
    double t = now_s();
    CHECK(br_cmd_run(o, &s, &r, &cap) == 0 && r.out_bytes == 100000000 && r.err_bytes == 5, "run: %llu bytes",
          (unsigned long long)r.out_bytes);
    CHECK(cap && spill_file_open(), "the output is in a spill file");
    br_output_emit(o, 1, cap);
    CHECK(br_output_destroy(o) == 0, "destroy");
    struct stat st;
    fstat(out, &st);
    CHECK(st.st_size == 100000005, "written: %lld", (long long)st.st_size);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    CHECK(ru.ru_maxrss < 64 * 1024, "peak RSS %ld KiB", ru.ru_maxrss);
    printf("  100 MB through a spill file: %.2f s, peak RSS %ld KiB\n", now_s() - t, ru.ru_maxrss);
    close(out);
}

static void test_timeout(void) {
    br_output* o;
    int out = tmp_file();
    CHECK(br_output_create(&o, out, out, BR_OUT_GROUP, 0, 1 << 20) == 0, "create");
    br_cmd_spec s = spec_of("sleep 10", 1);
    s.timeout_ns = 300000000;
    br_cmd_result r;
    double t = now_s();
    CHECK(run_emit(o, &s, &r) == 0, "run");
    t = now_s() - t;
    CHECK(r.timed_out && r.signo == SIGTERM && r.exit_code == -1 && t < 1.5 && t >= 0.29, "timeout: %.3f s, signo %d", t,
          r.signo);
    s = spec_of("trap '' TERM; sleep 10", 2);   /* ignores SIGTERM: SIGKILL 1 s later */
    s.timeout_ns = 200000000;
    t = now_s();
    CHECK(run_emit(o, &s, &r) == 0, "run");
    t = now_s() - t;
    CHECK(r.timed_out && r.signo == SIGKILL && t < 1.7 && t >= 1.19, "grace kill: %.3f s, signo %d", t, r.signo);
    CHECK(br_output_destroy(o) == 0, "destroy");
    close(out);
}

static void test_stop(void) {
    br_output* o;
    int out = tmp_file();
    CHECK(br_output_create(&o, out, out, BR_OUT_GROUP, 0, 1 << 20) == 0, "create");
    worker w = { .o = o, .spec = spec_of("sleep 10", 1) };
    pthread_create(&w.th, NULL, worker_main, &w);
    nap(0.2);
    br_stop(o);
    pthread_join(w.th, NULL);
    CHECK(w.err == 0 && w.res.stopped && w.res.signo == SIGTERM && w.secs < 0.5, "stop: %.3f s, stopped %d, signo %d",
          w.secs, w.res.stopped, w.res.signo);
    br_cmd_spec s = spec_of("echo should-not-run", 2);
    br_cmd_result r;
    double t = now_s();
    CHECK(run_emit(o, &s, &r) == 0 && r.stopped && r.exit_code == -1 && now_s() - t < 0.01, "after stop: nothing starts");
    br_stop(o);   /* twice is fine */
    CHECK(br_output_destroy(o) == 0, "destroy");
    char* text = slurp(out, NULL);
    CHECK(strcmp(text, "") == 0, "nothing ran: [%s]", text);
    free(text);
    close(out);
}

static void test_background_grandchild(void) {
    br_output* o;
    int out = tmp_file();
    CHECK(br_output_create(&o, out, out, BR_OUT_GROUP, 0, 1 << 20) == 0, "create");
    br_cmd_spec s = spec_of("sleep 5 & echo hi", 1);
    br_cmd_result r;
    double t = now_s();
    CHECK(run_emit(o, &s, &r) == 0 && r.exit_code == 0, "run");
    t = now_s() - t;
    CHECK(t < 1.0, "a background grandchild holding the pipe: %.3f s", t);
    CHECK(br_output_destroy(o) == 0, "destroy");
    char* text = slurp(out, NULL);
    CHECK(strcmp(text, "hi\n") == 0, "output: [%s]", text);
    free(text);
    close(out);
}

static void test_write_errors(void) {
    int p[2];
    if (pipe(p) != 0) return;
    close(p[0]);
    br_output* o;
    CHECK(br_output_create(&o, p[1], p[1], BR_OUT_GROUP, 0, 1 << 20) == 0, "create");
    br_cmd_spec s = spec_of("echo lost", 1);
    br_cmd_result r;
    CHECK(run_emit(o, &s, &r) == 0, "run");
    CHECK(br_output_error(o) == EPIPE, "getter: %d", br_output_error(o));
    CHECK(br_output_destroy(o) == EPIPE, "closed pipe gives EPIPE (and no SIGPIPE: we are alive)");
    close(p[1]);
    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (full < 0) return;
    CHECK(br_output_create(&o, full, full, BR_OUT_GROUP, 0, 1 << 20) == 0, "create");
    s = spec_of("echo lost", 1);
    run_emit(o, &s, &r);
    CHECK(br_output_destroy(o) == ENOSPC, "/dev/full gives ENOSPC");
    close(full);
}

static void test_emfile(void) {
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    br_output* o;
    int out = tmp_file();
    CHECK(br_output_create(&o, out, out, BR_OUT_GROUP, 0, 1 << 20) == 0, "create");
    low = old;
    low.rlim_cur = 64;
    setrlimit(RLIMIT_NOFILE, &low);
    int fds[64], n = 0;
    while (n < 64 && (fds[n] = dup(0)) >= 0) n++;
    br_cmd_spec s = spec_of("echo never", 1);
    br_cmd_result r;
    br_capture* cap = NULL;
    int err = br_cmd_run(o, &s, &r, &cap);
    CHECK(err == EMFILE && cap == NULL, "out of fds: %d (%s)", err, strerror(err));
    while (n > 0) close(fds[--n]);
    setrlimit(RLIMIT_NOFILE, &old);
    CHECK(run_emit(o, &s, &r) == 0 && r.exit_code == 0, "works again");
    CHECK(br_output_destroy(o) == 0, "destroy");
    close(out);
}

/* ---- --bench ------------------------------------------------------------------------------------ */
typedef struct bench {
    br_output* o;
    const char* cmd;
    size_t n;
    atomic_size_t next;
    atomic_int errors;
} bench;

static void* bench_main(void* arg) {
    bench* b = (bench*)arg;
    for (;;) {
        size_t seq = atomic_fetch_add(&b->next, 1) + 1;
        if (seq > b->n) break;
        br_cmd_spec s = spec_of(b->cmd, seq);
        br_cmd_result r;
        if (run_emit(b->o, &s, &r) != 0 || r.exit_code != 0) atomic_fetch_add(&b->errors, 1);
    }
    return NULL;
}

static int run_bench(size_t n) {
    const char* cmds[2] = { "true", "sleep 0.01" };
    for (int c = 0; c < 2; c++) {
        bench b = { .cmd = cmds[c], .n = n };
        atomic_init(&b.next, 0);
        atomic_init(&b.errors, 0);
        if (br_output_create(&b.o, 1, 2, BR_OUT_GROUP, 0, 1 << 20) != 0) return 1;
        pthread_t th[2];
        double t = now_s();
        for (int k = 0; k < 2; k++) pthread_create(&th[k], NULL, bench_main, &b);
        for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
        t = now_s() - t;
        br_output_destroy(b.o);
        printf("%zu x %s, 2 threads: %.3f s (%d errors)\n", n, cmds[c], t, atomic_load(&b.errors));
    }
    return 0;
}

int main(int argc, char** argv) {
    if (argc == 3 && strcmp(argv[1], "--bench") == 0) return run_bench((size_t)strtoul(argv[2], NULL, 10));
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_exit_codes();
    test_grouping(BR_OUT_GROUP);
    test_grouping(BR_OUT_LINE);
    test_keep_order();
    test_skip();
    test_tag(BR_OUT_GROUP);
    test_tag(BR_OUT_LINE);
    test_ungroup_and_files();
    test_big_output();
    test_timeout();
    test_stop();
    test_background_grandchild();
    test_write_errors();
    test_emfile();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
