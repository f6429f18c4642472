/* batchrun - run many shell commands as one batch on batch.h (scenario E's shell processors),
   with GNU parallel's everyday command line.

   Every command is a task of one job graph: the task runs `/bin/sh -c COMMAND` in its own process
   group (child.c) and blocks until it ends, so the graph's concurrency limit is -j, its retries with
   exponential backoff are --retries/--retry-delay, a failed command's dependents are SKIPPED, and
   --halt cancels the job from the task whose result crosses the threshold. Independent commands are
   roots; job-file dependencies become edges.

   Parts: main.c (options, input, the graph, exit status), args.c (GNU parallel's argument sources
   and replacement strings), child.c (running one command, grouped output), opts.c (option values).

   Input: a command and its arguments (`batchrun echo {} ::: a b`, or lines of stdin as arguments),
   commands one a line (stdin or -f FILE), or a job file (-J FILE) of lines
       name: dep1 dep2 ... : command
       name: command                      (no dependencies, command without ':')
       name: : command                    (no dependencies, command may contain ':')

   Exit status (GNU parallel's): 0 when all succeeded, else the number of failed commands (at most
   101); with --halt as GNU parallel documents it; 255 for any other error (usage, bad job file,
   a resource that could not be had, a write that failed); 128 + N when stopped by signal N. */
#define _POSIX_C_SOURCE 200809L
#define BATCH_IMPLEMENTATION
#include "batch.h"
#include "args.h"
#include "child.h"
#include "opts.h"
#include "queue_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

/* ---- data -------------------------------------------------------------------------------------- */
struct app;

typedef struct cmd {
    char* text;               /* the shell command (slot 1 for {%}) */
    char* name;               /* job-file name, else NULL */
    char* deps;               /* job-file dependency list (unparsed), else NULL */
    int line;                 /* line in the input file */
    size_t seq;               /* 1, 2, ... in input order */
    batch_task task;
    struct app* app;
    /* written by the task (one attempt at a time), read after the job */
    struct timespec first_wall;   /* wall clock at the first attempt's start */
    uint64_t first_ns, end_ns;    /* monotonic: first attempt's start, last attempt's end */
    uint64_t out_bytes;
    int attempts, exit_code, signo, timed_out;
    int logged;               /* its joblog line is written */
    int emitted;              /* its output went to the sink (or was skipped) */
} cmd;

typedef struct app {
    br_opts o;
    /* state */
    cmd* cmds;
    size_t ncmds, cap;
    br_args* args;            /* argument sources, when a command or ::: was given */
    int slot_dependent;       /* the command uses {%}: expanded again with the real slot */
    batch_graph* graph;
    br_output* out;
    FILE* joblog;
    atomic_int joblog_errno;  /* the first failed joblog write */
    atomic_int setup_errno;   /* a command could not be started for want of a resource */
    atomic_int results_errno; /* a --results file could not be written */
    char** env_base;          /* environ without our BATCHRUN_* variables */
    size_t nenv;
    batch_job* _Atomic job;
    atomic_int failed_final, succeeded_final, done_final;   /* after their retries */
    atomic_int halted;        /* 1: --halt fired */
    atomic_int halt_exit;     /* the exit code of the command that fired fail=1 */
    pthread_mutex_t delay_lock;   /* --delay: the next start time */
    uint64_t next_start;
} app;

static int run_command(batch_ctx* ctx, void* user);

static atomic_int g_signal;          /* SIGINT/SIGTERM/SIGHUP received: stop everything */
static br_output* volatile g_out;    /* the sink the signal handler stops (br_stop is async-signal-safe) */

static void on_signal(int sig) {
    int expected = 0;
    atomic_compare_exchange_strong(&g_signal, &expected, sig);
    if (g_out) br_stop(g_out);
}

/* ---- small helpers ------------------------------------------------------------------------------ */
static void* xrealloc(void* p, size_t n) {
    void* q = realloc(p, n ? n : 1);
    if (!q) { fputs("batchrun: out of memory\n", stderr); exit(BR_EXIT_OTHER); }
    return q;
}

static char* xstrdup(const char* s) {
    size_t n = strlen(s);
    char* d = (char*)xrealloc(NULL, n + 1);
    memcpy(d, s, n + 1);
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

/* A message on stderr while commands run: the progress bar's line is cleared first. */
static void say(const app* a, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    flockfile(stderr);
    if (a->o.progress) batch_progress_bar_clear();
    fputs("batchrun: ", stderr);
    vfprintf(stderr, fmt, ap);
    funlockfile(stderr);
    va_end(ap);
}

static void sleep_ns(uint64_t ns) {
    struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !atomic_load(&g_signal)) {}
}

/* Opens a report or log for writing ('-': stdout). NULL with errno set on failure. */
static FILE* open_out_mode(const char* path, const char* mode) {
    if (!strcmp(path, "-") || !strcmp(path, "/dev/stdout")) return stdout;
    if (!strcmp(path, "/dev/stderr")) return stderr;
    FILE* f = fopen(path, mode);
    if (f) fcntl(fileno(f), F_SETFD, FD_CLOEXEC);   /* not inherited by the commands */
    return f;
}

/* Flushes and closes; returns 0 or the errno of a write that failed (the data is lost). */
static int close_out(FILE* f) {
    if (!f) return 0;
    int bad = ferror(f);
    errno = 0;
    if (fflush(f) != 0) bad = 1;
    int e = errno;
    if (f != stdout && f != stderr && fclose(f) != 0) { bad = 1; if (!e) e = errno; }
    return bad ? (e ? e : EIO) : 0;
}

/* mkdir -p */
static int make_dirs(const char* path) {
    char* p = xstrdup(path);
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
static cmd* add_cmd(app* a, char* text, int line) {
    if (a->ncmds == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->cmds = (cmd*)xrealloc(a->cmds, a->cap * sizeof(cmd));
    }
    cmd* c = &a->cmds[a->ncmds++];
    memset(c, 0, sizeof *c);
    c->text = text;
    c->line = line;
    c->seq = a->ncmds;
    c->app = a;
    return c;
}

/* Opens an input file ('-': stdin); a directory is refused with EISDIR. */
static FILE* open_in(const char* path) {
    if (!strcmp(path, "-")) return stdin;
    FILE* f = fopen(path, "r");
    struct stat st;
    if (f && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        errno = EISDIR;
        return NULL;
    }
    return f;
}

/* Plain commands, one a line; blank lines and '#' comments are skipped. A NUL byte cannot be
   passed to a shell: the line is cut there, with a warning. */
static int read_commands(app* a, FILE* in, const char* fname) {
    char* buf = NULL;
    size_t cap = 0;
    int line = 0;
    ssize_t n;
    while ((n = getline(&buf, &cap, in)) >= 0) {
        line++;
        if ((size_t)n != strlen(buf))
            fprintf(stderr, "batchrun: Warning: %s:%d: a NUL character; the command ends there\n", fname, line);
        char* s = trim(buf);
        if (!*s || *s == '#') continue;
        add_cmd(a, xstrdup(s), line);
    }
    free(buf);
    if (ferror(in)) { fprintf(stderr, "batchrun: %s: %s\n", fname, strerror(errno)); return 0; }
    return 1;
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
        cmd* c = add_cmd(a, xstrdup(command), line);
        c->name = xstrdup(name);
        c->deps = deps && *deps ? xstrdup(deps) : NULL;
    }
    free(buf);
    if (ferror(in)) { fprintf(stderr, "batchrun: %s: %s\n", fname, strerror(errno)); errors++; }
    return errors == 0;
}

/* The commands of a command line with arguments (GNU parallel's way): stdin lines are the
   arguments when no ::: or :::: source was given. */
static int read_arg_commands(app* a, int argc, char** argv) {
    char err[512];
    unsigned flags = BR_ARGS_EMPTY_OK | (a->o.link ? BR_ARGS_LINK : 0u);   /* `::: *.none`: no commands, as in parallel */
    if (br_args_parse_ex(&a->args, argc, argv, flags, stderr, err, sizeof err) != 0) {
        fprintf(stderr, "batchrun: %s\n", err);
        return 0;
    }
    if (!br_args_sources(a->args) &&
        br_args_read_lines(a->args, stdin, "<stdin>", stderr, err, sizeof err) != 0) {
        fprintf(stderr, "batchrun: %s\n", err);
        return 0;
    }
    size_t n = br_args_count(a->args);
    for (size_t i = 0; i < n; i++) {
        char* text = br_args_command(a->args, i, 1);
        if (!text) { fputs("batchrun: out of memory\n", stderr); return 0; }
        add_cmd(a, text, (int)(i < (size_t)0x7fffffff ? i + 1 : 0));
    }
    if (n) {   /* {%} makes the command depend on its slot */
        char* two = br_args_command(a->args, 0, 2);
        a->slot_dependent = two && strcmp(two, a->cmds[0].text) != 0;
        free(two);
    }
    return 1;
}

/* Reads the commands from the source the options name. Returns 1, or 0 after a message. */
static int read_input(app* a, int argc, char** argv, const char** shown) {
    if (!a->o.job_file && !a->o.cmd_file && argc > 0) { *shown = "<arguments>"; return read_arg_commands(a, argc, argv); }
    const char* fname = a->o.job_file ? a->o.job_file : a->o.cmd_file ? a->o.cmd_file : "-";
    *shown = strcmp(fname, "-") ? fname : "<stdin>";
    FILE* in = open_in(fname);
    if (!in) {
        fprintf(stderr, "batchrun: cannot open %s: %s\n", fname, strerror(errno));
        return 0;
    }
    int ok = a->o.job_file ? read_job_file(a, in, *shown) : read_commands(a, in, *shown);
    if (in != stdin) fclose(in);
    return ok;
}

/* ---- the graph ------------------------------------------------------------------------------------ */
/* Adds the edges of one job-file line's dependency list. Returns the number of errors, -1 on a
   library failure (after a message). */
static int add_deps(app* a, cmd* c, const char* fname) {
    int errors = 0;
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
                return -1;
            }
        }
        *e = save;
        s = e;
    }
    return errors;
}

/* Names the line of the first job of a cycle the validation found ("cycle: a -> b -> a"). */
static void report_cycle(app* a, const char* msg, const char* fname) {
    int line = 0;
    const char* p = strncmp(msg, "cycle: ", 7) ? msg : msg + 7;
    const char* end = strstr(p, " -> ");
    if (end) {
        size_t n = (size_t)(end - p);
        char* first = (char*)xrealloc(NULL, n + 1);
        memcpy(first, p, n);
        first[n] = 0;
        batch_task t;
        if (batch_graph_find(a->graph, first, &t) == BATCH_OK) line = a->cmds[t.id - 1].line;
        free(first);
    }
    fprintf(stderr, "%s:%d: %s\n", fname, line, msg);
}

static int build_graph(app* a, const char* fname) {
    batch_result r = batch_graph_create(&a->graph, &(batch_graph_desc){ .name = "batchrun" });
    if (r != BATCH_OK) { fprintf(stderr, "batchrun: %s\n", batch_result_string(r)); return 0; }
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
                              .max_retries = a->o.retries, .retry_base_ns = a->o.retry_delay_ns };
        r = batch_graph_add(a->graph, &d, &c->task);
        if (r != BATCH_OK) { fprintf(stderr, "batchrun: %s\n", batch_result_string(r)); return 0; }
    }
    /* dependencies may name jobs defined further down */
    for (size_t i = 0; i < a->ncmds; i++) {
        if (!a->cmds[i].deps) continue;
        int e = add_deps(a, &a->cmds[i], fname);
        if (e < 0) return 0;
        errors += e;
    }
    if (errors) return 0;
    char msg[512];
    if (batch_graph_validate(a->graph, msg, sizeof msg) == BATCH_ERR_CYCLE) {
        report_cycle(a, msg, fname);
        return 0;
    }
    return 1;
}

/* ---- running one command ---------------------------------------------------------------------------- */
/* One GNU parallel joblog line: Seq Host Starttime JobRuntime Send Receive Exitval Signal Command. */
static void joblog_write(app* a, cmd* c) {
    if (!a->joblog || c->logged) return;
    c->logged = 1;
    uint64_t dur = c->end_ns > c->first_ns ? c->end_ns - c->first_ns : 0;
    int exitval = c->timed_out ? -1 : c->signo ? 0 : c->exit_code;
    flockfile(a->joblog);
    fprintf(a->joblog, "%zu\t:\t%lld.%03ld\t%10.3f\t0\t%llu\t%d\t%d\t", c->seq, (long long)c->first_wall.tv_sec,
            c->first_wall.tv_nsec / 1000000, (double)dur / 1e9, (unsigned long long)c->out_bytes, exitval, c->signo);
    for (const char* s = c->text; *s; s++) {
        if (*s == '\t') fputs("\\t", a->joblog);
        else if (*s == '\n') fputs("\\n", a->joblog);
        else putc(*s, a->joblog);
    }
    putc('\n', a->joblog);
    int bad = fflush(a->joblog) != 0 || ferror(a->joblog);
    int e = errno ? errno : EIO;
    funlockfile(a->joblog);
    int expected = 0;
    if (bad && atomic_compare_exchange_strong(&a->joblog_errno, &expected, e))
        say(a, "cannot write the joblog %s: %s\n", a->o.joblog_path, strerror(e));
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

/* The path of a command's --results file: DIR/<seq or name>.<ext>. */
static void result_path(const app* a, const cmd* c, const char* ext, char* path, size_t n) {
    if (c->name) snprintf(path, n, "%s/%s.%s", a->o.results_dir, c->name, ext);
    else snprintf(path, n, "%s/%zu.%s", a->o.results_dir, c->seq, ext);
}

/* --results: the captured output of the command's last attempt goes to its two files. A file
   that cannot be written is said (path and cause) and makes the exit status 255. */
static void save_results(app* a, const cmd* c, br_capture* cap) {
    char path[2][4096];
    int fd[2] = { -1, -1 }, err = 0, bad = 0;
    for (int i = 0; i < 2 && !err; i++) {
        result_path(a, c, i ? "err" : "out", path[i], sizeof path[i]);
        fd[i] = open(path[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd[i] < 0) { err = errno; bad = i; }
    }
    if (!err) {
        err = br_capture_save(cap, fd[0], fd[1]);
        cap = NULL;
    }
    br_output_discard(cap);
    for (int i = 0; i < 2; i++)
        if (fd[i] >= 0 && close(fd[i]) != 0 && !err) { err = errno; bad = i; }
    if (!err) return;
    atomic_store(&a->results_errno, err);
    say(a, "cannot write %s: %s\n", path[bad], strerror(err));
}

/* --delay: commands start at least this far apart. */
static void wait_delay(app* a) {
    if (!a->o.delay_ns) return;
    pthread_mutex_lock(&a->delay_lock);
    uint64_t now = batch_now_ns(), at = a->next_start > now ? a->next_start : now;
    a->next_start = at + a->o.delay_ns;
    pthread_mutex_unlock(&a->delay_lock);
    if (at > now) sleep_ns(at - now);
}

/* --halt: after a command's final result. `now` also kills the commands that run. */
static void maybe_halt(app* a, const cmd* c, int failed_now) {
    const br_halt* h = &a->o.halt;
    if (!h->kind) return;
    int failed = atomic_load(&a->failed_final), ok = atomic_load(&a->succeeded_final);
    int count = h->kind == BR_HALT_FAIL ? failed : h->kind == BR_HALT_SUCCESS ? ok : failed + ok;
    if (h->kind == BR_HALT_FAIL && !failed_now) return;
    if (h->kind == BR_HALT_SUCCESS && failed_now) return;
    int over = h->percent ? (double)count * 100.0 >= h->value * (double)(failed + ok) && count > 0
                          : (double)count >= h->value;
    if (!over) return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&a->halted, &expected, 1)) return;
    atomic_store(&a->halt_exit, c->exit_code > 0 ? c->exit_code : 1);
    say(a, "halting (%s): this command %s: %s\n", h->now ? "now" : "soon",
            failed_now ? "failed" : "finished", c->text);
    if (h->now) br_stop(a->out);
    batch_job* job = atomic_load(&a->job);
    if (job) batch_job_cancel(job);   /* else main cancels right after launch */
}

/* The exit code an attempt counts as: 0 success, else the failure's code; fills msg. */
static int attempt_code(const app* a, const br_cmd_result* res, char* msg, size_t n) {
    if (res->stopped && !res->exit_code && !res->signo) { snprintf(msg, n, "stopped"); return 128 + SIGTERM; }
    if (res->timed_out) { snprintf(msg, n, "timed out after %.3g s", (double)a->o.timeout_ns / 1e9); return 124; }
    if (res->signo) { snprintf(msg, n, "killed by signal %d", res->signo); return 128 + res->signo; }
    if (res->exit_code >= 0 && res->exit_code < 256 && a->o.ok_code[res->exit_code]) return 0;
    snprintf(msg, n, "exit %d", res->exit_code);
    return res->exit_code > 0 ? res->exit_code : 1;
}

/* Runs one attempt with its slot and environment. Returns 0 or an errno. */
static int attempt_run(app* a, cmd* c, batch_ctx* ctx, br_cmd_result* res, br_capture** cap) {
    int slot = batch_ctx_worker(ctx) + 1;
    char* text = c->text;
    if (a->slot_dependent && slot > 0) {
        char* t = br_args_command(a->args, c->seq - 1, slot);
        if (t) { free(c->text); text = c->text = t; }
    }
    char seq_buf[64], att_buf[64], *name_buf;
    char** env = command_env(a, c, batch_ctx_attempt(ctx), seq_buf, sizeof seq_buf, att_buf, sizeof att_buf, &name_buf);
    char* tag = a->o.tag && a->args && !a->o.results_dir ? br_args_tag(a->args, c->seq - 1) : NULL;
    const char* shown_tag = a->o.tag && !a->o.results_dir ? (tag ? tag : text) : NULL;
    br_cmd_spec spec = { .command = text, .env = env, .seq = c->seq, .tag = shown_tag,
                         .out_fd = -1, .err_fd = -1, .timeout_ns = a->o.timeout_ns };
    int err = br_cmd_run(a->out, &spec, res, cap);
    free(tag);
    free(env);
    free(name_buf);
    return err;
}

/* The graph task: one attempt of one command. */
static int run_command(batch_ctx* ctx, void* user) {
    cmd* c = (cmd*)user;
    app* a = c->app;
    int attempt = batch_ctx_attempt(ctx);
    if (attempt == 0) {
        wait_delay(a);
        clock_gettime(CLOCK_REALTIME, &c->first_wall);
        c->first_ns = batch_now_ns();
    }
    c->attempts = attempt + 1;
    br_cmd_result res;
    memset(&res, 0, sizeof res);
    br_capture* cap = NULL;
    char msg[160] = "";
    int code, err = atomic_load(&g_signal) ? EINTR : attempt_run(a, c, ctx, &res, &cap);
    if (err) {
        if (err == EMFILE || err == ENFILE || err == ENOMEM || err == EAGAIN) atomic_store(&a->setup_errno, err);
        snprintf(msg, sizeof msg, "%s: %s", err == EINTR ? "not started" : "cannot start", strerror(err));
        res.exit_code = code = err == EINTR ? 128 + atomic_load(&g_signal) : 127;
    } else {
        code = attempt_code(a, &res, msg, sizeof msg);
    }
    if (res.stopped || atomic_load(&g_signal)) {   /* a signal or --halt now: start nothing more */
        batch_job* job = atomic_load(&a->job);
        if (job) batch_job_cancel(job);   /* else main cancels right after launch */
    }
    c->exit_code = res.exit_code;
    c->signo = res.signo;
    c->timed_out = res.timed_out;
    c->out_bytes = res.out_bytes + res.err_bytes;
    c->end_ns = batch_now_ns();
    const char* label = c->name ? c->name : c->text;
    if (code && attempt < a->o.retries && !batch_ctx_should_stop(ctx) && !atomic_load(&g_signal)) {
        if (cap) br_output_discard(cap);   /* only the last attempt's output is shown, as in GNU parallel */
        say(a, "[%zu] %s: %s; retry %d of %d\n", c->seq, label, msg, attempt + 1, a->o.retries);
        return batch_ctx_fail(ctx, code, "%s", msg);
    }
    if (a->o.results_dir) {
        save_results(a, c, cap);
        br_output_skip(a->out, c->seq);
    } else {
        br_output_emit(a->out, c->seq, cap);   /* NULL: nothing captured, the same as a skip */
    }
    c->emitted = 1;
    joblog_write(a, c);
    atomic_fetch_add(&a->done_final, 1);
    if (!code) {
        atomic_fetch_add(&a->succeeded_final, 1);
        maybe_halt(a, c, 0);
        return 0;
    }
    const char* retried = c->attempts > 1 ? " (after all retries)" : "";
    say(a, "[%zu] %s: FAILED: %s%s\n", c->seq, label, msg, retried);
    atomic_fetch_add(&a->failed_final, 1);
    maybe_halt(a, c, 1);
    return batch_ctx_fail(ctx, code, "%s%s", msg, retried);
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

/* ---- setup and finish ------------------------------------------------------------------------------ */
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
    br_args_destroy(a->args);
    batch_graph_destroy(a->graph);
}

/* The environment without our BATCHRUN_* variables. */
static void base_env(app* a) {
    size_t nenv = 0;
    while (environ && environ[nenv]) nenv++;
    a->env_base = (char**)xrealloc(NULL, (nenv + 1) * sizeof(char*));
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "BATCHRUN_SEQ=", 13) && strncmp(environ[i], "BATCHRUN_NAME=", 14) &&
            strncmp(environ[i], "BATCHRUN_ATTEMPT=", 17))
            a->env_base[a->nenv++] = environ[i];
}

/* Opens the joblog and the reports. Returns 1, or 0 after a message. */
static int open_outputs(app* a, FILE* rep[3]) {
    if (a->o.results_dir && !make_dirs(a->o.results_dir)) {
        fprintf(stderr, "batchrun: cannot create directory %s: %s\n", a->o.results_dir, strerror(errno));
        return 0;
    }
    /* a resumed run, or '+FILE' (GNU parallel), adds to the joblog of the runs before it */
    const char* jl = a->o.joblog_path;
    if (jl && !(a->joblog = open_out_mode(jl, a->o.resume || a->o.joblog_append ? "a" : "w"))) {
        fprintf(stderr, "batchrun: cannot write %s: %s\n", jl, strerror(errno));
        return 0;
    }
    const char* paths[3] = { a->o.report_json_path, a->o.report_text_path, a->o.trace_path };
    for (int i = 0; i < 3; i++) {
        if (paths[i] && !(rep[i] = open_out_mode(paths[i], "w"))) {
            fprintf(stderr, "batchrun: cannot write %s: %s\n", paths[i], strerror(errno));
            return 0;
        }
    }
    if (a->joblog) {
        if (ftell(a->joblog) <= 0) fputs("Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n", a->joblog);
        if (fflush(a->joblog) != 0) {
            fprintf(stderr, "batchrun: cannot write the joblog %s: %s\n", jl, strerror(errno));
            return 0;
        }
    }
    return 1;
}

/* Writes a report and closes it; a failure is reported and counted. */
static int finish_report(FILE* f, const char* path, batch_result (*write)(batch_job*, FILE*), batch_job* job) {
    if (!f) return 0;
    batch_result r = write(job, f);
    int e = close_out(f);
    if (r == BATCH_OK && !e) return 0;
    fprintf(stderr, "batchrun: cannot write %s: %s\n", path, e ? strerror(e) : batch_result_string(r));
    return 1;
}

/* The exit status, GNU parallel's rules: with --halt fail=1 the failing command's code, with a
   percentage the percentage of commands that failed, else the failed count up to 101. */
static int exit_status(const app* a, const batch_job_summary* s, int lost_writes) {
    int sig = atomic_load(&g_signal);
    if (sig) return 128 + sig;
    if (lost_writes || s->result == BATCH_ERR_IO || atomic_load(&a->setup_errno) || atomic_load(&a->results_errno))
        return BR_EXIT_OTHER;
    const br_halt* h = &a->o.halt;
    if (atomic_load(&a->halted) && h->kind == BR_HALT_SUCCESS) return 0;
    if (atomic_load(&a->halted) && h->kind == BR_HALT_FAIL) {
        if (!h->percent && h->value == 1) return atomic_load(&a->halt_exit);
        if (h->percent && a->ncmds) return (int)((s->failed * 100 + a->ncmds - 1) / a->ncmds);
    }
    return s->failed > BR_MAX_EXIT_FAILED ? BR_MAX_EXIT_FAILED : (int)s->failed;
}

static void print_summary(const app* a, const batch_job_summary* s) {
    int sig = atomic_load(&g_signal);
    char resumed_note[64] = "";
    if (s->resumed) snprintf(resumed_note, sizeof resumed_note, " (%llu from the journal)", (unsigned long long)s->resumed);
    if (s->result == BATCH_ERR_IO) fprintf(stderr, "batchrun: the journal %s could not be written: stopped\n", a->o.journal_path);
    int se = atomic_load(&a->setup_errno);
    if (se) fprintf(stderr, "batchrun: some commands could not be started: %s\n", strerror(se));
    fprintf(stderr, "batchrun: %llu command%s: %llu succeeded, %llu failed, %llu skipped, %llu cancelled, %llu retr%s, "
                    "%.2f s%s%s%s\n",
            (unsigned long long)s->total, s->total == 1 ? "" : "s", (unsigned long long)s->completed,
            (unsigned long long)s->failed, (unsigned long long)s->skipped, (unsigned long long)s->cancelled,
            (unsigned long long)s->retries, s->retries == 1 ? "y" : "ies", (double)s->wall_ns / 1e9,
            atomic_load(&a->halted) ? " (halted)" : "", sig ? " (interrupted)" : "", resumed_note);
}

/* Launches the graph; returns the job or NULL after a message (*status set). */
static batch_job* launch(app* a, batch_pool* pool, batch_progress_bar_state* bar, int* status) {
    batch_run_desc run = { .max_concurrency = a->o.jobs };
    if (a->o.journal_path) {
        struct stat st;
        if (!a->o.resume && lstat(a->o.journal_path, &st) == 0 && st.st_size > 0) {
            fprintf(stderr, "batchrun: %s exists: pass --resume to continue that run, or remove it\n", a->o.journal_path);
            *status = BR_EXIT_OTHER;
            return NULL;
        }
        run.journal.path = a->o.journal_path;
        run.journal.fingerprint = commands_fingerprint(a);   /* same commands, same order */
        run.journal.rerun_failed = a->o.resume == 2;
    }
    if (a->o.progress) run.progress = (batch_progress_desc){ .fn = batch_progress_bar, .user_data = bar, .interval_ms = 100 };
    batch_job* job;
    batch_result r = batch_graph_launch(pool, a->graph, &run, &job);
    if (r == BATCH_OK) return job;
    if (r == BATCH_ERR_MISMATCH) fprintf(stderr, "batchrun: %s is the journal of other commands\n", a->o.journal_path);
    else if (r == BATCH_ERR_CORRUPT) fprintf(stderr, "batchrun: %s is not a batchrun journal\n", a->o.journal_path);
    else if (r == BATCH_ERR_IO && a->o.journal_path)
        fprintf(stderr, "batchrun: cannot use the journal %s: %s\n", a->o.journal_path, strerror(errno));
    else fprintf(stderr, "batchrun: cannot start: %s\n", batch_result_string(r));
    *status = BR_EXIT_OTHER;
    return NULL;
}

/* Runs the commands; returns the exit status. */
static int run_all(app* a, FILE* rep[3]) {
    int workers = a->o.jobs;
    if ((size_t)workers > a->ncmds) workers = a->ncmds ? (int)a->ncmds : 1;
    batch_pool* pool;
    batch_result r = batch_pool_create(&pool, &(batch_pool_desc){ .workers = workers, .spin_us = BATCH_SPIN_NONE });
    if (r != BATCH_OK) {
        fprintf(stderr, "batchrun: cannot create %d worker threads: %s\n", workers,
                r == BATCH_ERR_THREAD ? strerror(EAGAIN) : batch_result_string(r));
        return BR_EXIT_OTHER;
    }
    install_signals();
    batch_progress_bar_state bar = { 0, 0 };
    int status = 0;
    batch_job* job = launch(a, pool, &bar, &status);
    if (!job) { batch_pool_destroy(pool); return status; }
    atomic_store(&a->job, job);
    if (atomic_load(&a->halted) || atomic_load(&g_signal)) batch_job_cancel(job);   /* a task got there first */
    batch_job_summary s;
    batch_job_wait(job, &s);   /* with --progress it also draws the bar while commands run */
    for (size_t i = 0; i < a->ncmds; i++) {
        cmd* c = &a->cmds[i];
        if (c->attempts && !c->logged) joblog_write(a, c);   /* a retry that was cancelled */
        if (!c->emitted) br_output_skip(a->out, c->seq);   /* -k: later output is not held back */
    }
    int lost = finish_report(rep[0], a->o.report_json_path, batch_job_report_json, job);
    lost += finish_report(rep[1], a->o.report_text_path, batch_job_report_text, job);
    lost += finish_report(rep[2], a->o.trace_path, batch_job_report_trace, job);
    batch_job_destroy(job);
    batch_pool_destroy(pool);
    g_out = NULL;   /* only this thread is left: a handler from now on runs here and sees NULL */
    int e = br_output_destroy(a->out);
    a->out = NULL;
    if (e) { fprintf(stderr, "batchrun: cannot write the commands' output: %s\n", strerror(e)); lost++; }
    if (a->joblog && (e = close_out(a->joblog)) != 0 && !atomic_load(&a->joblog_errno))
        fprintf(stderr, "batchrun: cannot write the joblog %s: %s\n", a->o.joblog_path, strerror(e));
    if (a->joblog && (e || atomic_load(&a->joblog_errno))) lost++;
    a->joblog = NULL;
    print_summary(a, &s);
    return exit_status(a, &s, lost);
}

/* --dry-run: the commands, one a line, not run. */
static int dry_run(const app* a) {
    for (size_t i = 0; i < a->ncmds; i++) {
        char* t = a->slot_dependent ? br_args_command(a->args, i, (int)(i % (size_t)a->o.jobs) + 1) : NULL;
        printf("%s\n", t ? t : a->cmds[i].text);
        free(t);
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : BR_EXIT_OTHER;
}

/* ---- main ---------------------------------------------------------------------------------------- */
int main(int argc, char** argv) {
    static app a;   /* zeroed */
    int first_arg = 0;
    if (argc > 1 && !strcmp(argv[1], "queue")) return br_queue_main(argc - 1, argv + 1);
    int rc = br_opts_parse(&a.o, argc, argv, &first_arg);
    if (rc >= 0) return rc;
    if (argc == 1 && isatty(0)) {   /* nothing to read: say how to use it */
        br_opts_usage(stderr);
        return 0;
    }
    const char* shown = "<stdin>";
    if (!read_input(&a, argc - first_arg, argv + first_arg, &shown) || !build_graph(&a, shown)) {
        if (a.o.job_file) fprintf(stderr, "batchrun: %s rejected: nothing was run\n", shown);
        free_app(&a);
        return BR_EXIT_OTHER;
    }
    if (a.o.dry_run) { rc = dry_run(&a); free_app(&a); return rc; }
    FILE* rep[3] = { NULL, NULL, NULL };   /* JSON report, text report, trace */
    if (!open_outputs(&a, rep)) {
        close_out(a.joblog);
        for (int i = 0; i < 3; i++) close_out(rep[i]);
        free_app(&a);
        return BR_EXIT_OTHER;
    }
    base_env(&a);
    fflush(stdout);   /* the commands write to the same descriptors */
    fflush(stderr);
    /* with --results every command's output is captured whole, for its files */
    br_out_mode mode = a.o.results_dir ? BR_OUT_GROUP : a.o.out_mode;
    int err = br_output_create(&a.out, 1, 2, mode, a.o.keep_order, BR_OUTPUT_MEM_BOUND);
    if (err || (err = pthread_mutex_init(&a.delay_lock, NULL)) != 0) {
        fprintf(stderr, "batchrun: cannot start: %s\n", strerror(err ? err : ENOMEM));
        free_app(&a);
        return BR_EXIT_OTHER;
    }
    g_out = a.out;
    rc = run_all(&a, rep);
    pthread_mutex_destroy(&a.delay_lock);
    free_app(&a);
    return rc;
}
