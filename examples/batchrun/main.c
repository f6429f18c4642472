/* batchrun.c - run many shell commands as one batch on batch.h (scenario E's shell processors).

   Every command is a task of one job graph: the task starts `/bin/sh -c COMMAND` in its own
   process group (posix_spawn with POSIX_SPAWN_SETPGROUP) and waits for it, so the graph's
   concurrency limit is -j, its retries with exponential backoff are --retries/--retry-delay, a
   failed command's dependents are SKIPPED, and --halt cancels the job from the task whose failure
   crosses the threshold. Independent commands are roots; job-file dependencies become edges.

   Input: one command a line (stdin or -f FILE), or a job file (-J FILE) of lines
       name: dep1 dep2 ... : command
       name: command                      (no dependencies, command without ':')
       name: : command                    (no dependencies, command may contain ':')
   Blank lines and lines starting with '#' are ignored.

   Usage: batchrun [options] < commands     (batchrun -h lists the options)
   Exit status: the number of failed commands (at most 101), 0 when all succeeded, 2 for usage
   errors and bad job files, 128 + N when stopped by signal N. */
#define _POSIX_C_SOURCE 200809L
#define BATCH_IMPLEMENTATION
#include "batch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

#define EXIT_USAGE 2
#define MAX_EXIT_FAILED 101
#define KILL_GRACE_NS 1000000000ull      /* SIGTERM, then SIGKILL this much later */

static const char* const USAGE[] = {
    "usage: batchrun [options] [< commands]",
    "Runs shell commands (/bin/sh -c, each in its own process group) as one batch.h job graph.",
    "",
    "input (one of):",
    "  (default)            commands from stdin, one a line",
    "  -f FILE              commands from FILE, one a line ('-': stdin)",
    "  -J FILE              a job file: 'name: dep1 dep2 ... : command' a line; 'name: command'",
    "                       when there are no deps (write 'name: : command' if the command",
    "                       contains ':'); names use letters, digits and _ . + -",
    "  Blank lines and lines starting with '#' are ignored.",
    "",
    "options:",
    "  -j, --jobs N         at most N commands at once, 1..256 (default: CPU count)",
    "  --retries N          run a failed command up to N more times (default 0)",
    "  --retry-delay MS     wait MS ms before the first retry, doubling after each (default 1000)",
    "  --timeout SEC        per attempt: SIGTERM to the process group after SEC seconds,",
    "                       SIGKILL 1 s later; the attempt fails",
    "  --halt N | PCT%      once more than N commands (PCT% of all commands) have failed, start no",
    "                       new ones (running ones finish; the rest is CANCELLED)",
    "  --ok-codes C1,C2     exit codes that also count as success (0 always does), e.g. 5",
    "  --results DIR        stdout/stderr of each command to DIR/<seq or name>.out / .err (last",
    "                       attempt); without it both are passed through (lines may interleave)",
    "  --joblog FILE        a header, then one line per finished command: seq, start (epoch s),",
    "                       duration (s, first start to last end), exit code, signal, attempts,",
    "                       command; tab-separated",
    "  --report-json FILE   batch.h's JSON report of the run ('-': stdout)",
    "  --report-text FILE   batch.h's text report of the run ('-': stdout)",
    "  --journal FILE       record each finished command in FILE (batch.h's journal, written",
    "                       through at once), so that a killed or interrupted run can resume;",
    "                       refuses an existing FILE unless --resume is given",
    "  --resume             with --journal: commands FILE records as finished (succeeded, or",
    "                       failed after their retries) are not run again; the rest runs;",
    "                       --joblog then adds to its file",
    "  --resume-failed      like --resume, and the commands that failed run again",
    "  --progress           a progress bar on stderr",
    "  -h, --help           this text",
    "",
    "Commands get stdin from /dev/null and BATCHRUN_SEQ, BATCHRUN_NAME (job files) and",
    "BATCHRUN_ATTEMPT (1, 2, ...) in their environment. Dependents of a failed command are",
    "skipped. Exit status: failed commands (at most 101), 0 when all succeeded, 2 for usage",
    "errors or bad job files, 128+N after signal N (SIGINT/SIGTERM/SIGHUP stop the commands).",
    NULL
};

/* ---- data -------------------------------------------------------------------------------------- */
struct app;

typedef struct cmd {
    char* text;               /* the shell command */
    char* name;               /* job-file name, else NULL */
    char* deps;               /* job-file dependency list (unparsed), else NULL */
    int line;                 /* line in the input file */
    size_t seq;               /* 1, 2, ... in input order */
    batch_task task;
    struct app* app;
    /* written by the task (one attempt at a time), read after the job */
    struct timespec first_wall;   /* wall clock at the first attempt's start */
    uint64_t first_ns, end_ns;    /* monotonic: first attempt's start, last attempt's end */
    int attempts, exit_code, signo;
    int logged;               /* its joblog line is written */
} cmd;

typedef struct app {
    /* options */
    int jobs, retries;
    uint64_t retry_delay_ns, timeout_ns;
    int halt_kind;            /* 0 none, 1 count, 2 percent */
    double halt_value;
    unsigned char ok_code[256];
    const char* results_dir;
    const char* joblog_path;
    const char* report_json_path;
    const char* report_text_path;
    const char* cmd_file;
    const char* job_file;
    int progress;
    const char* journal_path;
    int resume;               /* 0 no, 1 --resume, 2 --resume-failed */
    /* state */
    cmd* cmds;
    size_t ncmds, cap;
    batch_graph* graph;
    FILE* joblog;
    char** env_base;          /* environ without our BATCHRUN_* variables */
    size_t nenv;
    batch_job* _Atomic job;
    atomic_int failed_final;  /* commands failed after their retries */
    atomic_int halted;
} app;

static int run_command(batch_ctx* ctx, void* user);

static atomic_int g_signal;   /* SIGINT/SIGTERM/SIGHUP received: stop everything */

static void on_signal(int sig) {
    int expected = 0;
    atomic_compare_exchange_strong(&g_signal, &expected, sig);
}

/* ---- small helpers ------------------------------------------------------------------------------ */
static void* xrealloc(void* p, size_t n) {
    void* q = realloc(p, n ? n : 1);
    if (!q) { fputs("batchrun: out of memory\n", stderr); exit(EXIT_FAILURE); }
    return q;
}

static char* xstrndup(const char* s, size_t n) {
    char* d = (char*)xrealloc(NULL, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

/* Trims s in place; returns the first non-blank character. */
static char* trim(char* s) {
    while (is_space(*s)) s++;
    size_t n = strlen(s);
    while (n && is_space(s[n - 1])) s[--n] = 0;
    return s;
}

static int name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '+' || c == '-';
}

static int valid_name(const char* s, size_t n) {
    if (!n || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
    for (size_t i = 0; i < n; i++) if (!name_char(s[i])) return 0;
    return 1;
}

static int parse_long(const char* s, long lo, long hi, long* out) {
    char* end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_double(const char* s, double lo, double hi, double* out) {
    char* end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}

static void sleep_ns(uint64_t ns) {
    struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
    nanosleep(&ts, NULL);
}

static FILE* open_out_mode(const char* path, const char* mode) {
    if (!strcmp(path, "-") || !strcmp(path, "/dev/stdout")) return stdout;
    if (!strcmp(path, "/dev/stderr")) return stderr;
    FILE* f = fopen(path, mode);
    if (f) fcntl(fileno(f), F_SETFD, FD_CLOEXEC);   /* not inherited by the commands */
    return f;
}

static FILE* open_out(const char* path) { return open_out_mode(path, "w"); }

static void close_out(FILE* f) {
    if (f && f != stdout && f != stderr) fclose(f);
    else if (f) fflush(f);
}

/* mkdir -p */
static int make_dirs(const char* path) {
    char* p = xstrndup(path, strlen(path));
    int ok = 1;
    for (char* s = p + 1;; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) ok = 0;
            *s = c;
            if (!c || !ok) break;
        }
    }
    struct stat st;
    if (ok && (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) ok = 0;
    free(p);
    return ok;
}

/* ---- input --------------------------------------------------------------------------------------- */
static cmd* add_cmd(app* a, const char* text, int line) {
    if (a->ncmds == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->cmds = (cmd*)xrealloc(a->cmds, a->cap * sizeof(cmd));
    }
    cmd* c = &a->cmds[a->ncmds++];
    memset(c, 0, sizeof *c);
    c->text = xstrndup(text, strlen(text));
    c->line = line;
    c->seq = a->ncmds;
    c->app = a;
    return c;
}

static FILE* open_in(const char* path) {
    if (!strcmp(path, "-")) return stdin;
    return fopen(path, "r");
}

/* Plain commands, one a line. */
static int read_commands(app* a, FILE* in) {
    char* buf = NULL;
    size_t cap = 0;
    int line = 0;
    while (getline(&buf, &cap, in) >= 0) {
        line++;
        char* s = trim(buf);
        if (!*s || *s == '#') continue;
        add_cmd(a, s, line);
    }
    free(buf);
    return ferror(in) ? 0 : 1;
}

/* A job file: 'name: deps : command' lines. Prints every error as FILE:LINE: message. */
static int read_job_file(app* a, FILE* in, const char* fname) {
    char* buf = NULL;
    size_t cap = 0;
    int line = 0, errors = 0;
    while (getline(&buf, &cap, in) >= 0) {
        line++;
        char* s = trim(buf);
        if (!*s || *s == '#') continue;
        char* colon = strchr(s, ':');
        if (!colon) {
            fprintf(stderr, "%s:%d: expected 'name: [deps :] command'\n", fname, line);
            errors++;
            continue;
        }
        *colon = 0;
        char* name = trim(s);
        char* rest = colon + 1;
        if (!valid_name(name, strlen(name))) {
            fprintf(stderr, "%s:%d: bad job name '%s' (letters, digits and _ . + - only)\n", fname, line, name);
            errors++;
            continue;
        }
        char* deps = NULL;
        char* colon2 = strchr(rest, ':');
        if (colon2) {
            *colon2 = 0;
            deps = trim(rest);
            rest = colon2 + 1;
        }
        char* command = trim(rest);
        if (!*command) {
            fprintf(stderr, "%s:%d: empty command for job '%s'\n", fname, line, name);
            errors++;
            continue;
        }
        cmd* c = add_cmd(a, command, line);
        c->name = xstrndup(name, strlen(name));
        c->deps = deps && *deps ? xstrndup(deps, strlen(deps)) : NULL;
    }
    free(buf);
    if (ferror(in)) { fprintf(stderr, "batchrun: %s: read error\n", fname); errors++; }
    return errors == 0;
}

/* ---- the graph ------------------------------------------------------------------------------------ */
static int build_graph(app* a, const char* fname) {
    if (batch_graph_create(&a->graph, &(batch_graph_desc){ .name = "batchrun" }) != BATCH_OK) return 0;
    int errors = 0;
    for (size_t i = 0; i < a->ncmds; i++) {
        cmd* c = &a->cmds[i];
        batch_task dup;
        if (c->name && batch_graph_find(a->graph, c->name, &dup) == BATCH_OK) {
            fprintf(stderr, "%s:%d: duplicate job name '%s' (first on line %d)\n", fname, c->line, c->name,
                    a->cmds[dup.id - 1].line);
            errors++;
        }
        batch_task_desc d = { .fn = run_command, .user_data = c, .name = c->name ? c->name : c->text,
                              .max_retries = a->retries, .retry_base_ns = a->retry_delay_ns };
        batch_result r = batch_graph_add(a->graph, &d, &c->task);
        if (r != BATCH_OK) { fprintf(stderr, "batchrun: %s\n", batch_result_string(r)); return 0; }
    }
    /* dependencies may name jobs defined further down */
    for (size_t i = 0; i < a->ncmds; i++) {
        cmd* c = &a->cmds[i];
        if (!c->deps) continue;
        for (char* s = c->deps; *s;) {
            while (is_space(*s)) s++;
            if (!*s) break;
            char* e = s;
            while (*e && !is_space(*e)) e++;
            char save = *e;
            *e = 0;
            batch_task dep;
            if (!valid_name(s, strlen(s))) {
                fprintf(stderr, "%s:%d: bad dependency name '%s' (a command that contains ':' needs "
                                "'name: : command')\n", fname, c->line, s);
                errors++;
            } else if (batch_graph_find(a->graph, s, &dep) != BATCH_OK || !a->cmds[dep.id - 1].name) {
                fprintf(stderr, "%s:%d: job '%s' depends on unknown job '%s'\n", fname, c->line, c->name, s);
                errors++;
            } else {
                batch_result r = batch_task_precede(a->graph, dep, c->task);
                if (r == BATCH_ERR_CYCLE) {
                    fprintf(stderr, "%s:%d: job '%s' depends on itself (cycle: %s -> %s)\n", fname, c->line, c->name,
                            c->name, c->name);
                    errors++;
                } else if (r != BATCH_OK) {
                    fprintf(stderr, "batchrun: %s\n", batch_result_string(r));
                    return 0;
                }
            }
            *e = save;
            s = e;
        }
    }
    if (errors) return 0;
    char msg[512];
    if (batch_graph_validate(a->graph, msg, sizeof msg) == BATCH_ERR_CYCLE) {
        /* "cycle: a -> b -> a": name the line of the first job of the cycle */
        int line = 0;
        const char* p = strncmp(msg, "cycle: ", 7) ? msg : msg + 7;
        const char* end = strstr(p, " -> ");
        if (end) {
            char* first = xstrndup(p, (size_t)(end - p));
            batch_task t;
            if (batch_graph_find(a->graph, first, &t) == BATCH_OK) line = a->cmds[t.id - 1].line;
            free(first);
        }
        fprintf(stderr, "%s:%d: %s\n", fname, line, msg);
        return 0;
    }
    return 1;
}

/* ---- running one command ---------------------------------------------------------------------------- */
static void joblog_write(app* a, cmd* c) {
    if (!a->joblog || c->logged) return;
    c->logged = 1;
    uint64_t dur = c->end_ns > c->first_ns ? c->end_ns - c->first_ns : 0;
    flockfile(a->joblog);
    fprintf(a->joblog, "%zu\t%lld.%03ld\t%llu.%03llu\t%d\t%d\t%d\t", c->seq, (long long)c->first_wall.tv_sec,
            c->first_wall.tv_nsec / 1000000, (unsigned long long)(dur / 1000000000u),
            (unsigned long long)(dur / 1000000u % 1000u), c->exit_code, c->signo, c->attempts);
    for (const char* s = c->text; *s; s++) {
        if (*s == '\t') fputs("\\t", a->joblog);
        else putc(*s, a->joblog);
    }
    putc('\n', a->joblog);
    fflush(a->joblog);
    funlockfile(a->joblog);
}

/* The environment of one command: environ plus BATCHRUN_SEQ/NAME/ATTEMPT (caller frees). */
static char** command_env(const app* a, const cmd* c, int attempt, char* seq_buf, size_t seq_n, char* att_buf,
                          size_t att_n, char** name_buf) {
    char** env = (char**)xrealloc(NULL, (a->nenv + 4) * sizeof(char*));
    memcpy(env, a->env_base, a->nenv * sizeof(char*));
    size_t n = a->nenv;
    snprintf(seq_buf, seq_n, "BATCHRUN_SEQ=%zu", c->seq);
    snprintf(att_buf, att_n, "BATCHRUN_ATTEMPT=%d", attempt + 1);
    env[n++] = seq_buf;
    env[n++] = att_buf;
    *name_buf = NULL;
    if (c->name) {
        size_t len = strlen(c->name) + sizeof "BATCHRUN_NAME=";
        *name_buf = (char*)xrealloc(NULL, len);
        snprintf(*name_buf, len, "BATCHRUN_NAME=%s", c->name);
        env[n++] = *name_buf;
    }
    env[n] = NULL;
    return env;
}

/* Opens DIR/<seq or name>.<ext> for the command's output (close-on-exec), or -1. */
static int open_result(const app* a, const cmd* c, const char* ext) {
    char path[4096];
    if (c->name) snprintf(path, sizeof path, "%s/%s.%s", a->results_dir, c->name, ext);
    else snprintf(path, sizeof path, "%s/%zu.%s", a->results_dir, c->seq, ext);
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

/* Starts /bin/sh -c text in a new process group. Returns 0 or an errno value. */
static int spawn_command(const app* a, const cmd* c, int attempt, int out_fd, int err_fd, pid_t* pid) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none;
    char seq_buf[64], att_buf[64], *name_buf;
    char** env = command_env(a, c, attempt, seq_buf, sizeof seq_buf, att_buf, sizeof att_buf, &name_buf);
    char sh[] = "sh", dash_c[] = "-c";
    char* argv[] = { sh, dash_c, c->text, NULL };
    int err = posix_spawn_file_actions_init(&fa);
    if (err) { free(env); free(name_buf); return err; }
    err = posix_spawnattr_init(&at);
    if (err) { posix_spawn_file_actions_destroy(&fa); free(env); free(name_buf); return err; }
    sigemptyset(&none);
    err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!err && out_fd >= 0) err = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (!err && err_fd >= 0) err = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    if (!err) err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
    if (!err) err = posix_spawnattr_setpgroup(&at, 0);
    if (!err) err = posix_spawnattr_setsigmask(&at, &none);
    if (!err) err = posix_spawn(pid, "/bin/sh", &fa, &at, argv, env);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    free(name_buf);
    return err;
}

/* Waits for the child, polling (WNOHANG, naps of 0.1 .. 10 ms). On --timeout or a stop signal the
   process group gets SIGTERM, then SIGKILL after KILL_GRACE_NS. *why: 0, 1 timeout, 2 signal. */
static int wait_command(const app* a, pid_t pid, int* status, int* why) {
    uint64_t start = batch_now_ns(), term_at = 0, nap = 100000;
    int killed = 0;
    *why = 0;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return -1;
        uint64_t now = batch_now_ns();
        if (!term_at) {
            if (a->timeout_ns && now - start >= a->timeout_ns) *why = 1;
            else if (atomic_load(&g_signal)) *why = 2;
            if (*why) {
                kill(-pid, SIGTERM);
                term_at = now;
                nap = 1000000;
            }
        } else if (!killed && now - term_at >= KILL_GRACE_NS) {
            kill(-pid, SIGKILL);
            killed = 1;
        }
        sleep_ns(nap);
        if (nap < 10000000) nap *= 2;
    }
    if (*why) kill(-pid, SIGKILL);   /* what is left of the group */
    return 0;
}

static void maybe_halt(app* a, int failed) {
    if (!a->halt_kind) return;
    int over = a->halt_kind == 1 ? failed > (int)a->halt_value
                                 : (double)failed * 100.0 > a->halt_value * (double)a->ncmds;
    if (!over) return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&a->halted, &expected, 1)) return;
    fprintf(stderr, "batchrun: halting: %d command%s failed; no new commands start\n", failed, failed == 1 ? "" : "s");
    batch_job* job = atomic_load(&a->job);
    if (job) batch_job_cancel(job);   /* else main cancels right after launch */
}

/* After SIGINT/SIGTERM/SIGHUP: no new commands (running ones are being killed by their tasks). */
static void stop_all(app* a) {
    batch_job* job = atomic_load(&a->job);
    if (job) batch_job_cancel(job);   /* else main cancels right after launch */
}

/* The graph task: one attempt of one command. */
static int run_command(batch_ctx* ctx, void* user) {
    cmd* c = (cmd*)user;
    app* a = c->app;
    int attempt = batch_ctx_attempt(ctx);
    if (attempt == 0) {
        clock_gettime(CLOCK_REALTIME, &c->first_wall);
        c->first_ns = batch_now_ns();
    }
    c->attempts = attempt + 1;
    c->exit_code = -1;
    c->signo = 0;
    char msg[160], pre[64];   /* the message is pre + msg + post */
    const char* post = "";
    int code = 0, why = 0;
    int out_fd = -1, err_fd = -1;
    msg[0] = pre[0] = 0;
    if (atomic_load(&g_signal)) {   /* stopping: start nothing (the job is being cancelled) */
        why = 2;
        code = 128 + atomic_load(&g_signal);
        snprintf(msg, sizeof msg, "not started: stopped by signal %d", atomic_load(&g_signal));
    } else if (a->results_dir) {
        out_fd = open_result(a, c, "out");
        err_fd = out_fd >= 0 ? open_result(a, c, "err") : -1;
        if (err_fd < 0) {
            snprintf(msg, sizeof msg, "cannot create its result files in %s: %s", a->results_dir, strerror(errno));
            code = 126;
        }
    }
    if (!code) {
        pid_t pid;
        int status = 0;
        int err = spawn_command(a, c, attempt, out_fd, err_fd, &pid);
        if (err) {
            snprintf(msg, sizeof msg, "cannot start /bin/sh: %s", strerror(err));
            code = 127;
        } else if (wait_command(a, pid, &status, &why) != 0) {
            snprintf(msg, sizeof msg, "waitpid: %s", strerror(errno));
            code = 127;
        } else if (WIFEXITED(status)) {
            c->exit_code = WEXITSTATUS(status);
            code = a->ok_code[c->exit_code] ? 0 : c->exit_code;
            if (code) snprintf(msg, sizeof msg, "exit %d", code);
        } else if (WIFSIGNALED(status)) {
            c->signo = WTERMSIG(status);
            code = 128 + c->signo;
            snprintf(msg, sizeof msg, "killed by signal %d", c->signo);
        } else {
            code = 127;
            snprintf(msg, sizeof msg, "unexpected wait status %d", status);
        }
        if (why && !code) {   /* it exited by itself (status OK) after SIGTERM: still a failed attempt */
            code = why == 1 ? 124 : 128 + atomic_load(&g_signal);
            snprintf(msg, sizeof msg, "exit %d", c->exit_code);
        }
        if (why == 1) {
            snprintf(pre, sizeof pre, "timed out after %.3g s (", (double)a->timeout_ns / 1e9);
            post = ")";
        } else if (why == 2) {
            snprintf(pre, sizeof pre, "stopped by signal %d (", atomic_load(&g_signal));
            post = ")";
        }
    }
    if (why == 2) stop_all(a);
    if (out_fd >= 0) close(out_fd);
    if (err_fd >= 0) close(err_fd);
    c->end_ns = batch_now_ns();
    if (!code) {
        joblog_write(a, c);
        return 0;
    }
    const char* label = c->name ? c->name : c->text;
    if (attempt < a->retries && !batch_ctx_should_stop(ctx)) {
        uint64_t delay = a->retry_delay_ns ? a->retry_delay_ns : 1000000u;
        for (int k = 0; k < attempt && delay < 60000000000ull; k++) delay *= 2;
        if (delay > 60000000000ull) delay = 60000000000ull;
        fprintf(stderr, "batchrun: [%zu] %s: %s%s%s; retry %d of %d in %llu ms\n", c->seq, label, pre, msg, post,
                attempt + 1, a->retries, (unsigned long long)(delay / 1000000u));
        return batch_ctx_fail(ctx, code, "%s%s%s", pre, msg, post);
    }
    /* final failure */
    joblog_write(a, c);
    const char* retried = c->attempts > 1 ? " (after all retries)" : "";
    fprintf(stderr, "batchrun: [%zu] %s: FAILED: %s%s%s%s\n", c->seq, label, pre, msg, post, retried);
    maybe_halt(a, atomic_fetch_add(&a->failed_final, 1) + 1);
    return batch_ctx_fail(ctx, code, "%s%s%s%s", pre, msg, post, retried);
}

/* The journal's fingerprint: the commands, their names and dependencies, in order (FNV-1a). */
static uint64_t commands_fingerprint(const app* a) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < a->ncmds; i++) {
        const char* parts[3] = { a->cmds[i].text, a->cmds[i].name, a->cmds[i].deps };
        for (int k = 0; k < 3; k++) {
            for (const char* p = parts[k] ? parts[k] : ""; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
            h = (h ^ 0xff) * 0x100000001b3ull;   /* field separator */
        }
    }
    return h ? h : 1;
}

/* ---- options ------------------------------------------------------------------------------------ */
static void usage(FILE* out) {
    for (int i = 0; USAGE[i]; i++) fprintf(out, "%s\n", USAGE[i]);
}

static int usage_error(const char* fmt, const char* arg) {
    fputs("batchrun: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (batchrun -h for help)\n", stderr);
    return EXIT_USAGE;
}

/* Returns -1 when parsed, else the exit status. */
static int parse_args(app* a, int argc, char** argv) {
    for (int i = 1; i < argc; i++) {
        const char* arg = argv[i];
        const char* val = NULL;
        char opt[64];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) { usage(stdout); return 0; }
        if (!strcmp(arg, "--progress")) { a->progress = 1; continue; }
        if (!strcmp(arg, "--resume")) { a->resume = a->resume ? a->resume : 1; continue; }
        if (!strcmp(arg, "--resume-failed")) { a->resume = 2; continue; }
        if (arg[0] == '-' && arg[1] == '-') {
            const char* eq = strchr(arg, '=');
            size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
            if (n >= sizeof opt) return usage_error("unknown option %s", arg);
            memcpy(opt, arg, n);
            opt[n] = 0;
            if (eq) val = eq + 1;
        } else if (arg[0] == '-' && (arg[1] == 'j' || arg[1] == 'f' || arg[1] == 'J')) {
            opt[0] = '-'; opt[1] = arg[1]; opt[2] = 0;
            if (arg[2]) val = arg + 2;
        } else {
            return usage_error("unexpected argument '%s'", arg);
        }
        static const char* const known[] = { "-j", "--jobs", "-f", "-J", "--retries", "--retry-delay", "--timeout",
                                             "--halt", "--ok-codes", "--results", "--joblog", "--report-json",
                                             "--report-text", "--journal", NULL };
        int k = 0;
        while (known[k] && strcmp(known[k], opt)) k++;
        if (!known[k]) return usage_error("unknown option %s", opt);
        if (!val) {
            if (i + 1 >= argc) return usage_error("%s needs a value", opt);
            val = argv[++i];
        }
        long l;
        double d;
        if (!strcmp(opt, "-j") || !strcmp(opt, "--jobs")) {
            if (!parse_long(val, 1, BATCH_MAX_WORKERS, &l)) return usage_error("-j wants 1..256, not '%s'", val);
            a->jobs = (int)l;
        } else if (!strcmp(opt, "-f")) {
            a->cmd_file = val;
        } else if (!strcmp(opt, "-J")) {
            a->job_file = val;
        } else if (!strcmp(opt, "--retries")) {
            if (!parse_long(val, 0, 1000, &l)) return usage_error("--retries wants 0..1000, not '%s'", val);
            a->retries = (int)l;
        } else if (!strcmp(opt, "--retry-delay")) {
            if (!parse_long(val, 0, 3600000, &l)) return usage_error("--retry-delay wants milliseconds, not '%s'", val);
            a->retry_delay_ns = (uint64_t)l * 1000000u;
        } else if (!strcmp(opt, "--timeout")) {
            if (!parse_double(val, 0.001, 1e6, &d)) return usage_error("--timeout wants seconds > 0, not '%s'", val);
            a->timeout_ns = (uint64_t)(d * 1e9);
        } else if (!strcmp(opt, "--halt")) {
            size_t n = strlen(val);
            if (n > 1 && val[n - 1] == '%') {
                char num[64];
                if (n >= sizeof num) return usage_error("--halt wants N or PCT%%, not '%s'", val);
                memcpy(num, val, n - 1);
                num[n - 1] = 0;
                if (!parse_double(num, 0, 100, &d)) return usage_error("--halt wants N or PCT%% (0..100), not '%s'", val);
                a->halt_kind = 2;
                a->halt_value = d;
            } else {
                if (!parse_long(val, 0, 1000000000, &l)) return usage_error("--halt wants N or PCT%%, not '%s'", val);
                a->halt_kind = 1;
                a->halt_value = (double)l;
            }
        } else if (!strcmp(opt, "--ok-codes")) {
            char* copy = xstrndup(val, strlen(val));
            int bad = 0;
            for (char* tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
                if (!parse_long(trim(tok), 0, 255, &l)) { bad = 1; break; }
                a->ok_code[l] = 1;
            }
            free(copy);
            if (bad || !*val) return usage_error("--ok-codes wants exit codes 0..255 like 0,5, not '%s'", val);
        } else if (!strcmp(opt, "--results")) {
            a->results_dir = val;
        } else if (!strcmp(opt, "--joblog")) {
            a->joblog_path = val;
        } else if (!strcmp(opt, "--report-json")) {
            a->report_json_path = val;
        } else if (!strcmp(opt, "--report-text")) {
            a->report_text_path = val;
        } else if (!strcmp(opt, "--journal")) {
            a->journal_path = val;
        }
    }
    if (a->cmd_file && a->job_file) return usage_error("%s", "-f and -J exclude each other");
    if (a->resume && !a->journal_path) return usage_error("%s", "--resume needs --journal FILE");
    return -1;
}

static void install_signals(void) {
    const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;   /* stays ignored */
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(sigs[i], &sa, NULL);
    }
}

static void free_app(app* a) {
    for (size_t i = 0; i < a->ncmds; i++) {
        free(a->cmds[i].text);
        free(a->cmds[i].name);
        free(a->cmds[i].deps);
    }
    free(a->cmds);
    free(a->env_base);
    batch_graph_destroy(a->graph);
}

/* ---- main ---------------------------------------------------------------------------------------- */
int main(int argc, char** argv) {
    static app a;   /* zeroed */
    a.jobs = batch_cpu_count();
    if (a.jobs > BATCH_MAX_WORKERS) a.jobs = BATCH_MAX_WORKERS;
    a.retry_delay_ns = 1000000000u;
    a.ok_code[0] = 1;
    int rc = parse_args(&a, argc, argv);
    if (rc >= 0) return rc;
    if (argc == 1 && isatty(0)) {   /* nothing to read: say how to use it */
        usage(stderr);
        return 0;
    }

    /* input */
    const char* fname = a.job_file ? a.job_file : a.cmd_file ? a.cmd_file : "-";
    const char* shown = strcmp(fname, "-") ? fname : "<stdin>";
    FILE* in = open_in(fname);
    if (!in) {
        fprintf(stderr, "batchrun: cannot open %s: %s\n", fname, strerror(errno));
        return EXIT_USAGE;
    }
    int ok = a.job_file ? read_job_file(&a, in, shown) : read_commands(&a, in);
    if (in != stdin) fclose(in);
    if (!ok || !build_graph(&a, shown)) {
        if (a.job_file) fprintf(stderr, "batchrun: %s rejected: nothing was run\n", shown);
        free_app(&a);
        return EXIT_USAGE;
    }
    /* outputs */
    if (a.results_dir && !make_dirs(a.results_dir)) {
        fprintf(stderr, "batchrun: cannot create directory %s: %s\n", a.results_dir, strerror(errno));
        free_app(&a);
        return EXIT_USAGE;
    }
    FILE* report_json = NULL;
    FILE* report_text = NULL;
    /* a resumed run adds to the joblog of the runs before it */
    if (a.joblog_path && !(a.joblog = open_out_mode(a.joblog_path, a.resume ? "a" : "w"))) {
        fprintf(stderr, "batchrun: cannot write %s: %s\n", a.joblog_path, strerror(errno));
        free_app(&a);
        return EXIT_USAGE;
    }
    const char* bad_out = NULL;
    if (a.report_json_path && !(report_json = open_out(a.report_json_path))) bad_out = a.report_json_path;
    else if (a.report_text_path && !(report_text = open_out(a.report_text_path))) bad_out = a.report_text_path;
    if (bad_out) {
        fprintf(stderr, "batchrun: cannot write %s: %s\n", bad_out, strerror(errno));
        close_out(a.joblog);
        close_out(report_json);
        free_app(&a);
        return EXIT_USAGE;
    }
    if (a.joblog) {
        if (ftell(a.joblog) <= 0) fputs("seq\tstart\tduration\texit\tsignal\tattempts\tcommand\n", a.joblog);
        fflush(a.joblog);
    }
    size_t nenv = 0;
    while (environ && environ[nenv]) nenv++;
    a.env_base = (char**)xrealloc(NULL, (nenv + 1) * sizeof(char*));
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "BATCHRUN_SEQ=", 13) && strncmp(environ[i], "BATCHRUN_NAME=", 14) &&
            strncmp(environ[i], "BATCHRUN_ATTEMPT=", 17))
            a.env_base[a.nenv++] = environ[i];
    fflush(stdout);   /* the commands write to the same descriptors */
    fflush(stderr);

    /* run: one worker per concurrent command (each task blocks while its command runs) */
    int workers = a.jobs;
    if ((size_t)workers > a.ncmds) workers = a.ncmds ? (int)a.ncmds : 1;
    batch_pool* pool;
    batch_result r = batch_pool_create(&pool, &(batch_pool_desc){ .workers = workers });
    if (r != BATCH_OK) {
        fprintf(stderr, "batchrun: cannot create the pool: %s\n", batch_result_string(r));
        return EXIT_FAILURE;
    }
    install_signals();
    batch_job* job;
    batch_progress_bar_state bar = { 0, 0 };
    batch_run_desc run = { .max_concurrency = a.jobs };
    if (a.journal_path) {
        struct stat st;
        if (!a.resume && lstat(a.journal_path, &st) == 0 && st.st_size > 0) {
            fprintf(stderr, "batchrun: %s exists: pass --resume to continue that run, or remove it\n", a.journal_path);
            batch_pool_destroy(pool);
            free_app(&a);
            return EXIT_USAGE;
        }
        run.journal.path = a.journal_path;
        run.journal.fingerprint = commands_fingerprint(&a);   /* same commands, same order */
        run.journal.rerun_failed = a.resume == 2;
    }
    if (a.progress) run.progress = (batch_progress_desc){ .fn = batch_progress_bar, .user_data = &bar, .interval_ms = 100 };
    r = batch_graph_launch(pool, a.graph, &run, &job);
    if (r != BATCH_OK) {
        if (r == BATCH_ERR_MISMATCH) fprintf(stderr, "batchrun: %s is the journal of other commands\n", a.journal_path);
        else if (r == BATCH_ERR_CORRUPT) fprintf(stderr, "batchrun: %s is not a batchrun journal\n", a.journal_path);
        else fprintf(stderr, "batchrun: cannot start: %s\n", batch_result_string(r));
        batch_pool_destroy(pool);
        free_app(&a);
        return (r == BATCH_ERR_MISMATCH || r == BATCH_ERR_CORRUPT) ? EXIT_USAGE : EXIT_FAILURE;
    }
    atomic_store(&a.job, job);
    if (atomic_load(&a.halted) || atomic_load(&g_signal)) batch_job_cancel(job);   /* a task got there first */
    batch_job_summary s;
    batch_job_wait(job, &s);   /* with --progress it also draws the bar while commands run */
    /* commands whose retry was cancelled never wrote their line */
    for (size_t i = 0; i < a.ncmds; i++)
        if (a.cmds[i].attempts && !a.cmds[i].logged) joblog_write(&a, &a.cmds[i]);
    if (report_json && batch_job_report_json(job, report_json) != BATCH_OK)
        fprintf(stderr, "batchrun: cannot write the JSON report\n");
    if (report_text && batch_job_report_text(job, report_text) != BATCH_OK)
        fprintf(stderr, "batchrun: cannot write the text report\n");
    batch_job_destroy(job);
    batch_pool_destroy(pool);
    close_out(report_json);
    close_out(report_text);
    close_out(a.joblog);

    int sig = atomic_load(&g_signal);
    char resumed_note[64] = "";
    if (s.resumed) snprintf(resumed_note, sizeof resumed_note, " (%llu from the journal)", (unsigned long long)s.resumed);
    if (s.result == BATCH_ERR_IO) fprintf(stderr, "batchrun: the journal %s could not be written: stopped\n", a.journal_path);
    fprintf(stderr, "batchrun: %llu command%s: %llu succeeded, %llu failed, %llu skipped, %llu cancelled, %llu retr%s, "
                    "%.2f s%s%s%s\n",
            (unsigned long long)s.total, s.total == 1 ? "" : "s", (unsigned long long)s.completed,
            (unsigned long long)s.failed, (unsigned long long)s.skipped, (unsigned long long)s.cancelled,
            (unsigned long long)s.retries, s.retries == 1 ? "y" : "ies", (double)s.wall_ns / 1e9,
            atomic_load(&a.halted) ? " (halted)" : "", sig ? " (interrupted)" : "", resumed_note);
    free_app(&a);
    if (sig) return 128 + sig;
    return s.failed > MAX_EXIT_FAILED ? MAX_EXIT_FAILED : (int)s.failed;
}
