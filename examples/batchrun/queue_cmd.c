/* queue_cmd.c - batchrun queue PATH SUBCOMMAND ...: shell commands in a durable batch.h queue
   (batch_queue_*, see "DURABLE QUEUES" in batch.h). A job's payload is its command's text.

   serve runs batch_queue_serve on a pool of -j workers. Each job's command runs through child.c
   with a sink of its own (br_stop on it stops that command alone); its captured output is written
   whole through one shared sink, so the outputs of jobs never mix. br_cmd_run blocks, and
   batch_ctx_should_stop may only be asked from the job's own call, so the command runs on a
   helper thread while the job's call waits for it and asks should_stop every 20 ms.
   SIGINT, SIGTERM and SIGHUP are blocked in every thread and taken by a thread of their own
   (sigtimedwait), which cancels the serve: running commands are stopped and their jobs given
   back to the queue. */
#define _POSIX_C_SOURCE 200809L
#include "queue_cmd.h"
#include "batch.h"
#include "child.h"
#include "opts.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char** environ;

#define Q_PAGE 1000                 /* list: infos asked for at once */
#define Q_PUSH_CHUNK 4096           /* add from stdin: commands pushed with one write */
#define Q_CMD_COLUMN 60             /* list: characters of the command shown */
#define Q_NAME_COLUMN 24            /* list: characters of the name shown */
#define Q_WATCH_NS 20000000L        /* serve: how often a job asks batch_ctx_should_stop */

static const char* const Q_USAGE[] = {
    "usage: batchrun queue PATH SUBCOMMAND [options] [arguments]",
    "A durable queue of shell commands in the file PATH (created when missing), shared by any",
    "number of batchrun processes. A killed serve's jobs run again once their leases run out,",
    "if they have a retry left (a lost lease counts as a failed attempt).",
    "",
    "  add [--priority N] [--retries N] [--name S] [--quiet] [--] [CMD...]",
    "        push CMD (its words joined by spaces, run with sh -c); without CMD, one command a",
    "        line from stdin (blank and '#' lines skipped); prints the ids pushed, one a line",
    "  serve [-j N] [--drain] [--lease SEC] [--max-jobs N] [--timeout SEC] [--retry-delay MS]",
    "        run the queued commands, N at once (default: the CPU count), output grouped per job;",
    "        --drain: stop when nothing is queued or running (in any serve); a command exiting",
    "        non-zero fails its job (retried as it was pushed); SIGINT/SIGTERM/SIGHUP stop the",
    "        commands and give their jobs back; exit 0 when every command it ran succeeded, 1",
    "        when some failed",
    "  list [--status queued|running|done|failed|cancelled|all] [--offset N] [--limit M]",
    "        jobs in id order (default: all statuses, the first 100; --limit 0: no limit)",
    "  show ID        one job, with its whole command (exit 1: no such job)",
    "  cancel ID      cancel a queued or running job (its serve stops the command when it next",
    "                 renews the lease: within a third of it); exit 1: no such job, or finished",
    "  stats          jobs per status, the file's size",
    "  compact [--drop-finished]   rewrite the file, one record per job (without finished ones)",
    "",
    "options of every subcommand (before or after it; for add, before CMD):",
    "  --json                       JSON on stdout (show, stats, compact: an object; list: an",
    "                               array; add: an array of ids)",
    "  --durability process|machine|buffered   (default process: written through at once)",
    "Exit status 255: a usage error or a queue error (after a 'batchrun: queue:' line).",
    NULL
};

/* ---- options ----------------------------------------------------------------------------------- */
enum { Q_ADD = 1, Q_SERVE = 2, Q_LIST = 4, Q_SHOW = 8, Q_CANCEL = 16, Q_STATS = 32, Q_COMPACT = 64, Q_ALL = 127 };

static const struct { const char* name; unsigned sub; } Q_SUBS[] = {
    { "add", Q_ADD }, { "serve", Q_SERVE }, { "list", Q_LIST }, { "show", Q_SHOW },
    { "cancel", Q_CANCEL }, { "stats", Q_STATS }, { "compact", Q_COMPACT },
};

typedef struct qopt_def {
    const char* name;
    int valued;
    unsigned subs;    /* the subcommands that take it */
} qopt_def;

static const qopt_def Q_OPTS[] = {
    { "--json", 0, Q_ALL }, { "--durability", 1, Q_ALL }, { "--quiet", 0, Q_ADD | Q_SERVE | Q_CANCEL | Q_COMPACT },
    { "--priority", 1, Q_ADD }, { "--retries", 1, Q_ADD }, { "--name", 1, Q_ADD },
    { "-j", 1, Q_SERVE }, { "--jobs", 1, Q_SERVE }, { "--drain", 0, Q_SERVE }, { "--lease", 1, Q_SERVE },
    { "--max-jobs", 1, Q_SERVE }, { "--timeout", 1, Q_SERVE }, { "--retry-delay", 1, Q_SERVE },
    { "--status", 1, Q_LIST }, { "--offset", 1, Q_LIST }, { "--limit", 1, Q_LIST },
    { "--drop-finished", 0, Q_COMPACT },
};
#define Q_NOPTS (sizeof Q_OPTS / sizeof Q_OPTS[0])

typedef struct qopts {
    const char* path;
    unsigned sub;             /* Q_* */
    const char* sub_name;
    int json, quiet;
    batch_durability durability;
    int priority, retries;    /* add */
    const char* name;
    int jobs, drain;          /* serve */
    uint64_t lease_ns, timeout_ns, retry_delay_ns, max_jobs;
    int status;               /* list: a batch_queue_status, -1 all */
    uint64_t offset, limit;
    int drop_finished;        /* compact */
    uint64_t id;              /* show, cancel */
    char** cmd;               /* add: the command's words */
    int ncmd;
} qopts;

static void q_say(const char* fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* "batchrun: queue: MESSAGE" on stderr, in one piece. */
static void q_say(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    flockfile(stderr);
    fputs("batchrun: queue: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    funlockfile(stderr);
    va_end(ap);
}

static int q_usage_error(const char* what, const char* arg) {
    q_say("%s%s (batchrun queue -h for help)", what, arg);
    return BR_EXIT_OTHER;
}

static int q_u64(const char* s, uint64_t lo, uint64_t hi, uint64_t* out) {
    char* end;
    if (!*s || *s == '-' || *s == '+' || *s == ' ') return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = (uint64_t)v;
    return 1;
}

static int q_int(const char* s, long lo, long hi, int* out) {
    char* end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

/* Seconds (a number, optionally with s, m or h) within [lo, hi], as nanoseconds. */
static int q_seconds(const char* s, double lo, double hi, uint64_t* ns) {
    char* end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s) return 0;
    if (*end == 's') end++;
    else if (*end == 'm') { v *= 60; end++; }
    else if (*end == 'h') { v *= 3600; end++; }
    if (*end || !(v >= lo && v <= hi)) return 0;
    *ns = (uint64_t)(v * 1e9);
    return 1;
}

static int q_status_value(const char* s, int* out) {
    if (!strcmp(s, "all")) { *out = -1; return 1; }
    for (int k = 0; k < BATCH_QUEUE_STATUS_COUNT_; k++)
        if (!strcmp(s, batch_queue_status_string((batch_queue_status)k))) { *out = k; return 1; }
    return 0;
}

/* Sets the value of option k. Returns -1, or the exit status after a message. */
static int q_apply(qopts* o, size_t k, const char* v) {
    const char* n = Q_OPTS[k].name;
    uint64_t u;
    int ok = 1;
    if (!strcmp(n, "--json")) o->json = 1;
    else if (!strcmp(n, "--quiet")) o->quiet = 1;
    else if (!strcmp(n, "--drain")) o->drain = 1;
    else if (!strcmp(n, "--drop-finished")) o->drop_finished = 1;
    else if (!strcmp(n, "--durability")) {
        if (!strcmp(v, "process")) o->durability = BATCH_DURABLE_PROCESS;
        else if (!strcmp(v, "machine")) o->durability = BATCH_DURABLE_MACHINE;
        else if (!strcmp(v, "buffered")) o->durability = BATCH_DURABLE_BUFFERED;
        else ok = 0;
    } else if (!strcmp(n, "--priority")) ok = q_int(v, INT_MIN, INT_MAX, &o->priority);
    else if (!strcmp(n, "--retries")) ok = q_int(v, 0, 1000, &o->retries);
    else if (!strcmp(n, "--name")) { o->name = v; ok = strlen(v) < BATCH_QUEUE_NAME_MAX; }
    else if (!strcmp(n, "-j") || !strcmp(n, "--jobs")) ok = q_int(v, 1, BR_MAX_JOBS, &o->jobs);
    else if (!strcmp(n, "--lease")) ok = q_seconds(v, 0.01, 1e7, &o->lease_ns);
    else if (!strcmp(n, "--timeout")) ok = q_seconds(v, 0.001, 1e7, &o->timeout_ns);
    else if (!strcmp(n, "--retry-delay")) { ok = q_u64(v, 1, 3600000, &u); o->retry_delay_ns = u * 1000000u; }
    else if (!strcmp(n, "--max-jobs")) ok = q_u64(v, 1, UINT64_MAX, &o->max_jobs);
    else if (!strcmp(n, "--status")) ok = q_status_value(v, &o->status);
    else if (!strcmp(n, "--offset")) ok = q_u64(v, 0, UINT64_MAX, &o->offset);
    else if (!strcmp(n, "--limit")) ok = q_u64(v, 0, UINT64_MAX, &o->limit);
    if (ok) return -1;
    q_say("%s: bad value '%s' (batchrun queue -h for help)", n, v);
    return BR_EXIT_OTHER;
}

/* One option at argv[*i] ("--opt", "--opt=value", "--opt value", "-jN", "-j N"): applies it and
   sets its bit in *given. Returns -1, or the exit status. */
static int q_option(qopts* o, int argc, char** argv, int* i, uint32_t* given) {
    const char* arg = argv[*i];
    const char* val = NULL;
    size_t n = strlen(arg);
    if (arg[1] == '-' && strchr(arg, '=')) {
        n = (size_t)(strchr(arg, '=') - arg);
        val = arg + n + 1;
    } else if (arg[1] == 'j' && arg[2]) {
        n = 2;
        val = arg + 2;
    }
    for (size_t k = 0; k < Q_NOPTS; k++) {
        if (strlen(Q_OPTS[k].name) != n || strncmp(Q_OPTS[k].name, arg, n)) continue;
        if (!Q_OPTS[k].valued && val) return q_usage_error("this option takes no value: ", arg);
        if (Q_OPTS[k].valued && !val) {
            if (*i + 1 >= argc) return q_usage_error("a value is missing after ", arg);
            val = argv[++*i];
        }
        *given |= 1u << k;
        return q_apply(o, k, val);
    }
    return q_usage_error("unknown option ", arg);
}

/* A word that is not an option: the subcommand, a job id or add's command. Returns 1 when the
   rest of argv is add's command, 0 to go on, or -(exit status). */
static int q_word(qopts* o, int argc, char** argv, int i, int* have_id) {
    if (!o->sub) {
        for (size_t k = 0; k < sizeof Q_SUBS / sizeof Q_SUBS[0]; k++)
            if (!strcmp(argv[i], Q_SUBS[k].name)) { o->sub = Q_SUBS[k].sub; o->sub_name = Q_SUBS[k].name; }
        if (!o->sub) return -q_usage_error("unknown subcommand ", argv[i]);
        return 0;
    }
    if (o->sub == Q_ADD) {
        o->cmd = argv + i;
        o->ncmd = argc - i;
        return 1;
    }
    if ((o->sub == Q_SHOW || o->sub == Q_CANCEL) && !*have_id) {
        if (!q_u64(argv[i], 1, UINT64_MAX, &o->id)) return -q_usage_error("a job id is a number >= 1, not ", argv[i]);
        *have_id = 1;
        return 0;
    }
    return -q_usage_error("unexpected argument ", argv[i]);
}

static int q_help(void) {
    for (int k = 0; Q_USAGE[k]; k++) printf("%s\n", Q_USAGE[k]);
    return 0;
}

/* Parses argv (argv[1] is PATH). Returns -1 when the subcommand runs, else the exit status. */
static int q_parse(qopts* o, int argc, char** argv) {
    memset(o, 0, sizeof *o);
    o->status = -1;
    o->limit = 100;
    o->jobs = batch_cpu_count();
    if (o->jobs > BR_MAX_JOBS) o->jobs = BR_MAX_JOBS;
    if (o->jobs < 1) o->jobs = 1;
    if (argc < 2 || !argv[1][0]) return q_usage_error("a queue file is missing", "");
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return q_help();
    if (argv[1][0] == '-') return q_usage_error("the queue file comes first, not the option ", argv[1]);
    o->path = argv[1];
    uint32_t given = 0;
    int have_id = 0;
    for (int i = 2; i < argc; i++) {
        const char* arg = argv[i];
        if (!strcmp(arg, "--") && o->sub == Q_ADD) {
            o->cmd = argv + i + 1;
            o->ncmd = argc - i - 1;
            break;
        }
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) return q_help();
        if (arg[0] == '-' && arg[1] && strcmp(arg, "--")) {
            int rc = q_option(o, argc, argv, &i, &given);
            if (rc >= 0) return rc;
            continue;
        }
        int w = q_word(o, argc, argv, i, &have_id);
        if (w < 0) return -w;
        if (w) break;
    }
    if (!o->sub) return q_usage_error("a subcommand is missing: add, serve, list, show, cancel, stats or compact", "");
    if ((o->sub == Q_SHOW || o->sub == Q_CANCEL) && !have_id) return q_usage_error("a job id is missing after ", o->sub_name);
    for (size_t k = 0; k < Q_NOPTS; k++)
        if ((given >> k & 1u) && !(Q_OPTS[k].subs & o->sub)) {
            q_say("%s is not an option of %s (batchrun queue -h for help)", Q_OPTS[k].name, o->sub_name);
            return BR_EXIT_OTHER;
        }
    return -1;
}

/* ---- output helpers ---------------------------------------------------------------------------- */
/* The length of the valid UTF-8 sequence at p (1..4), 0 when it is not one. */
static size_t q_utf8(const unsigned char* p, size_t n) {
    unsigned c = p[0], min;
    size_t len;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* A JSON string of s[0..n): quotes, backslashes and control characters escaped; a byte that is
   not valid UTF-8 becomes U+FFFD. */
static void q_json_str(FILE* f, const char* s, size_t n) {
    const unsigned char* p = (const unsigned char*)s;
    putc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t len = q_utf8(p + i, n - i);
        if (c == '"' || c == '\\') fprintf(f, "\\%c", (char)c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\u%04x", c);
        else if (len) fwrite(p + i, 1, len, f);
        else fputs("\\ufffd", f);
        i += len ? len : 1;
    }
    putc('"', f);
}

/* s[0..n) for a column: at most max characters (max >= 4; a longer one is cut, with "..."),
   control characters as spaces, bytes that are not UTF-8 as '?'. dst holds 4 * max + 1 bytes. */
static void q_clip(char* dst, const char* s, size_t n, size_t max) {
    const unsigned char* p = (const unsigned char*)s;
    size_t total = 0, o = 0;
    for (size_t i = 0; i < n; total++) {
        size_t len = q_utf8(p + i, n - i);
        i += len ? len : 1;
    }
    size_t keep = total > max ? max - 3 : total;
    for (size_t i = 0, chars = 0; chars < keep; chars++) {
        size_t len = q_utf8(p + i, n - i);
        if (!len) dst[o++] = '?';
        else if (p[i] < 0x20 || p[i] == 0x7f) dst[o++] = ' ';
        else { memcpy(dst + o, p + i, len); o += len; }
        i += len ? len : 1;
    }
    if (keep < total) { memcpy(dst + o, "...", 3); o += 3; }
    dst[o] = 0;
}

/* Characters (not bytes) of a clipped string. */
static int q_width(const char* s) {
    int w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void q_pad(FILE* f, const char* s, int width) {
    fputs(s, f);
    for (int w = q_width(s); w < width; w++) putc(' ', f);
}

/* Wall-clock nanoseconds as 2026-12-04T16:45:53.123Z; "-" for 0. */
static const char* q_time(char* buf, size_t n, uint64_t ns) {
    if (!ns) return "-";
    time_t t = (time_t)(ns / 1000000000u);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm)) return "?";
    size_t used = strlen(buf);
    snprintf(buf + used, n - used, ".%03uZ", (unsigned)(ns / 1000000u % 1000u));
    return buf;
}

static int q_lib_error(const qopts* o, const char* what, batch_result r) {
    q_say("%s: %s: %s", o->path, what, batch_result_string(r));
    return BR_EXIT_OTHER;
}

/* ---- open -------------------------------------------------------------------------------------- */
static int q_open(const qopts* o, batch_queue** q) {
    batch_queue_desc d = { .path = o->path, .durability = o->durability, .lease_ns = o->lease_ns,
                           .retry_base_ns = o->retry_delay_ns };
    errno = 0;
    batch_result r = batch_queue_open(q, &d);
    if (r == BATCH_OK) return 1;
    int e = errno;
    if (r == BATCH_ERR_CORRUPT) q_say("%s is not a queue, or it is damaged", o->path);
    else if (r == BATCH_ERR_MISMATCH) q_say("%s is the journal of a job, not a queue", o->path);
    else if (r == BATCH_ERR_IO && e) q_say("cannot open %s: %s", o->path, strerror(e));
    else q_say("cannot open %s: %s", o->path, batch_result_string(r));
    return 0;
}

/* ---- add --------------------------------------------------------------------------------------- */
/* Prints the ids first .. first + n - 1 (JSON: array elements after *count others). */
static void q_print_ids(const qopts* o, uint64_t first, size_t n, size_t* count) {
    for (size_t i = 0; i < n && !o->quiet; i++, (*count)++) {
        if (o->json) printf("%s%llu", *count ? "," : "", (unsigned long long)(first + i));
        else printf("%llu\n", (unsigned long long)(first + i));
    }
}

/* The words of add's command joined by spaces (caller frees), NULL when it is too long. */
static char* q_join(char** words, int n, size_t* len) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += strlen(words[i]) + 1;
    char* s = (char*)malloc(total ? total : 1);
    if (!s) return NULL;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(words[i]);
        if (i) s[at++] = ' ';
        memcpy(s + at, words[i], k);
        at += k;
    }
    s[at] = 0;
    *len = at;
    return s;
}

static int q_add_one(batch_queue* q, const qopts* o, size_t* count) {
    size_t len;
    char* text = q_join(o->cmd, o->ncmd, &len);
    if (!text) { q_say("out of memory"); return BR_EXIT_OTHER; }
    if (len > BATCH_QUEUE_PAYLOAD_MAX) {
        free(text);
        q_say("the command is longer than %u bytes", BATCH_QUEUE_PAYLOAD_MAX);
        return BR_EXIT_OTHER;
    }
    batch_queue_push_desc d = { .payload = text, .size = len, .priority = o->priority, .max_retries = o->retries,
                                .name = o->name };
    uint64_t id;
    batch_result r = batch_queue_push(q, &d, &id);
    free(text);
    if (r != BATCH_OK) return q_lib_error(o, "cannot push", r);
    q_print_ids(o, id, 1, count);
    return 0;
}

/* Pushes lines[0..n) with one write and frees them. */
static int q_push_chunk(batch_queue* q, const qopts* o, char** lines, batch_queue_push_desc* d, size_t n, size_t* count) {
    uint64_t first = 0;
    batch_result r = n ? batch_queue_push_many(q, d, n, &first) : BATCH_OK;
    for (size_t i = 0; i < n; i++) free(lines[i]);
    if (r != BATCH_OK) return q_lib_error(o, "cannot push", r);
    q_print_ids(o, first, n, count);
    return 0;
}

/* One command a line from stdin, trimmed; blank lines and '#' comments skipped. */
static int q_add_stdin(batch_queue* q, const qopts* o, size_t* count) {
    char** lines = (char**)malloc(Q_PUSH_CHUNK * sizeof *lines);
    batch_queue_push_desc* d = (batch_queue_push_desc*)malloc(Q_PUSH_CHUNK * sizeof *d);
    char* buf = NULL;
    size_t cap = 0, n = 0;
    ssize_t got;
    int rc = lines && d ? 0 : (q_say("out of memory"), BR_EXIT_OTHER);
    while (!rc && (got = getline(&buf, &cap, stdin)) >= 0) {
        char* s = buf;
        size_t len = strlen(s);   /* a NUL byte ends the command */
        while (len && strchr(" \t\r\n\v\f", s[len - 1])) s[--len] = 0;
        while (*s && strchr(" \t\r\n\v\f", *s)) { s++; len--; }
        if (!*s || *s == '#') continue;
        if (len > BATCH_QUEUE_PAYLOAD_MAX || !(lines[n] = (char*)malloc(len + 1))) {
            q_say(len > BATCH_QUEUE_PAYLOAD_MAX ? "a command is too long" : "out of memory");
            rc = BR_EXIT_OTHER;
            break;
        }
        memcpy(lines[n], s, len + 1);
        d[n] = (batch_queue_push_desc){ .payload = lines[n], .size = len, .priority = o->priority,
                                        .max_retries = o->retries, .name = o->name };
        if (++n == Q_PUSH_CHUNK) { rc = q_push_chunk(q, o, lines, d, n, count); n = 0; }
    }
    if (!rc && ferror(stdin)) { q_say("cannot read stdin: %s", strerror(errno)); rc = BR_EXIT_OTHER; }
    if (!rc) rc = q_push_chunk(q, o, lines, d, n, count);
    else for (size_t i = 0; i < n; i++) free(lines[i]);
    free(buf);
    free(lines);
    free(d);
    return rc;
}

static int q_add(batch_queue* q, const qopts* o) {
    size_t count = 0;
    if (o->json && !o->quiet) putchar('[');
    int rc = o->ncmd ? q_add_one(q, o, &count) : q_add_stdin(q, o, &count);
    if (o->json && !o->quiet) puts("]");
    return rc;
}

/* ---- list, show -------------------------------------------------------------------------------- */
/* A job as a JSON object; payload NULL: "command" is null (the job is gone). */
static void q_json_job(const batch_queue_info* in, const char* payload, size_t size) {
    printf("{\"id\":%llu,\"status\":\"%s\",\"priority\":%d,\"max_retries\":%d,\"attempts\":%d,\"error\":%d,",
           (unsigned long long)in->id, batch_queue_status_string(in->status), in->priority, in->max_retries,
           in->attempts, in->error);
    fputs("\"message\":", stdout);
    q_json_str(stdout, in->message, strlen(in->message));
    fputs(",\"name\":", stdout);
    q_json_str(stdout, in->name, strlen(in->name));
    printf(",\"pushed_ns\":%llu,\"not_before_ns\":%llu,\"lease_until_ns\":%llu,\"finished_ns\":%llu,\"size\":%llu,",
           (unsigned long long)in->pushed_ns, (unsigned long long)in->not_before_ns,
           (unsigned long long)in->lease_until_ns, (unsigned long long)in->finished_ns, (unsigned long long)in->size);
    fputs("\"command\":", stdout);
    if (payload || !size) q_json_str(stdout, payload ? payload : "", size);
    else fputs("null", stdout);
    putchar('}');
}

typedef struct qrow {
    const batch_queue_info* info;
    char name[4 * Q_NAME_COLUMN + 1];
    char cmd[4 * Q_CMD_COLUMN + 1];
} qrow;

/* One page of the listing as aligned text (the header before the first page). */
static void q_text_page(const qrow* rows, size_t n, int header) {
    int wid = 2, wprio = 4, wname = 4;
    char num[32];
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(num, sizeof num, "%llu", (unsigned long long)rows[i].info->id);
        if (w > wid) wid = w;
        w = snprintf(num, sizeof num, "%d", rows[i].info->priority);
        if (w > wprio) wprio = w;
        if (q_width(rows[i].name) > wname) wname = q_width(rows[i].name);
    }
    if (header) printf("%-*s  %-9s  %*s  %8s  %-*s  %s\n", wid, "ID", "STATUS", wprio, "PRIO", "ATTEMPTS", wname, "NAME",
                       "COMMAND");
    for (size_t i = 0; i < n; i++) {
        const batch_queue_info* in = rows[i].info;
        printf("%*llu  %-9s  %*d  %8d  ", wid, (unsigned long long)in->id, batch_queue_status_string(in->status), wprio,
               in->priority, in->attempts);
        q_pad(stdout, rows[i].name, wname);
        printf("  %s\n", rows[i].cmd);
    }
}

/* Prints one page of infos (with each job's command, fetched). Returns 0 or the exit status. */
static int q_list_page(batch_queue* q, const qopts* o, const batch_queue_info* infos, size_t n, qrow* rows, size_t* shown) {
    for (size_t i = 0; i < n; i++) {
        batch_queue_job job;
        batch_result r = batch_queue_get(q, infos[i].id, &job);
        if (r != BATCH_OK && r != BATCH_ERR_NOT_FOUND) return q_lib_error(o, "cannot read a job", r);
        const char* payload = r == BATCH_OK ? (const char*)job.payload : NULL;   /* NULL: gone meanwhile */
        size_t size = r == BATCH_OK ? job.info.size : infos[i].size;
        if (o->json) {
            fputs(*shown + i ? ",\n" : "\n", stdout);
            q_json_job(&infos[i], payload, size);
        } else {
            rows[i].info = &infos[i];
            q_clip(rows[i].name, infos[i].name[0] ? infos[i].name : "-", infos[i].name[0] ? strlen(infos[i].name) : 1,
                   Q_NAME_COLUMN);
            const char* c = r == BATCH_OK ? (payload ? payload : "") : "?";
            q_clip(rows[i].cmd, c, r == BATCH_OK ? size : 1, Q_CMD_COLUMN);
        }
        if (r == BATCH_OK) batch_queue_job_free(q, &job);
    }
    if (!o->json) q_text_page(rows, n, *shown == 0);
    *shown += n;
    return 0;
}

static int q_list(batch_queue* q, const qopts* o) {
    size_t page = o->limit && o->limit < Q_PAGE ? (size_t)o->limit : Q_PAGE, shown = 0, n = 0;
    batch_queue_info* infos = (batch_queue_info*)malloc(page * sizeof *infos);
    qrow* rows = (qrow*)malloc(page * sizeof *rows);
    if (!infos || !rows) {
        free(infos);
        free(rows);
        q_say("out of memory");
        return BR_EXIT_OTHER;
    }
    uint64_t left = o->limit ? o->limit : UINT64_MAX;
    int rc = 0;
    if (o->json) putchar('[');
    while (left && !rc) {
        size_t want = left < page ? (size_t)left : page;
        batch_result r = batch_queue_list(q, o->status, o->offset + shown, infos, want, &n);
        if (r != BATCH_OK) { rc = q_lib_error(o, "cannot list", r); break; }
        rc = q_list_page(q, o, infos, n, rows, &shown);
        left -= n;
        if (n < want) break;
    }
    if (o->json) puts(shown ? "\n]" : "]");
    free(infos);
    free(rows);
    return rc;
}

static int q_show(batch_queue* q, const qopts* o) {
    batch_queue_job job;
    batch_result r = batch_queue_get(q, o->id, &job);
    if (r == BATCH_ERR_NOT_FOUND) {
        q_say("%s: no job %llu", o->path, (unsigned long long)o->id);
        return 1;
    }
    if (r != BATCH_OK) return q_lib_error(o, "cannot read the job", r);
    const batch_queue_info* in = &job.info;
    if (o->json) {
        q_json_job(in, job.payload ? (const char*)job.payload : "", in->size);
        putchar('\n');
    } else {
        char t[4][64];
        printf("id          %llu\nstatus      %s\npriority    %d\nretries     %d\nattempts    %d\nerror       %d\n",
               (unsigned long long)in->id, batch_queue_status_string(in->status), in->priority, in->max_retries,
               in->attempts, in->error);
        printf("message     %s\nname        %s\npushed      %s\nnot before  %s\nlease until %s\nfinished    %s\n",
               in->message[0] ? in->message : in->error == BATCH_ERR_TIMEOUT ? "the lease ran out (its serve died or hung)" : "-",
               in->name[0] ? in->name : "-", q_time(t[0], 64, in->pushed_ns),
               q_time(t[1], 64, in->not_before_ns), q_time(t[2], 64, in->lease_until_ns),
               q_time(t[3], 64, in->finished_ns));
        printf("size        %llu\ncommand     ", (unsigned long long)in->size);
        if (in->size) fwrite(job.payload, 1, in->size, stdout);
        putchar('\n');
    }
    batch_queue_job_free(q, &job);
    return 0;
}

/* ---- cancel, stats, compact -------------------------------------------------------------------- */
static int q_cancel(batch_queue* q, const qopts* o) {
    batch_result r = batch_queue_cancel(q, o->id);
    unsigned long long id = (unsigned long long)o->id;
    if (r == BATCH_ERR_NOT_FOUND) {
        q_say("%s: no job %llu", o->path, id);
        return 1;
    }
    if (r == BATCH_ERR_INVALID) {
        batch_queue_job job;
        const char* st = "finished";
        if (batch_queue_get(q, o->id, &job) == BATCH_OK) {
            st = batch_queue_status_string(job.info.status);
            batch_queue_job_free(q, &job);
        }
        q_say("%s: job %llu is already %s", o->path, id, st);
        return 1;
    }
    if (r != BATCH_OK) return q_lib_error(o, "cannot cancel", r);
    if (o->quiet) return 0;
    if (o->json) printf("{\"id\":%llu,\"status\":\"cancelled\"}\n", id);
    else printf("cancelled %llu\n", id);
    return 0;
}

static int q_stats(batch_queue* q, const qopts* o) {
    batch_queue_stats s;
    batch_result r = batch_queue_stats_get(q, &s);
    if (r != BATCH_OK) return q_lib_error(o, "cannot read the stats", r);
    if (o->json) {
        putchar('{');
        for (int k = 0; k < BATCH_QUEUE_STATUS_COUNT_; k++)
            printf("\"%s\":%llu,", batch_queue_status_string((batch_queue_status)k), (unsigned long long)s.count[k]);
        printf("\"total\":%llu,\"delayed\":%llu,\"expired\":%llu,\"file_bytes\":%llu,\"next_id\":%llu}\n",
               (unsigned long long)s.total, (unsigned long long)s.delayed, (unsigned long long)s.expired,
               (unsigned long long)s.file_bytes, (unsigned long long)s.next_id);
        return 0;
    }
    for (int k = 0; k < BATCH_QUEUE_STATUS_COUNT_; k++) {
        printf("%-10s %llu", batch_queue_status_string((batch_queue_status)k), (unsigned long long)s.count[k]);
        if (k == BATCH_QUEUE_QUEUED && s.delayed) printf(" (%llu waiting for a retry)", (unsigned long long)s.delayed);
        if (k == BATCH_QUEUE_RUNNING && s.expired) printf(" (%llu with an expired lease)", (unsigned long long)s.expired);
        putchar('\n');
    }
    printf("%-10s %llu\n%-10s %llu\n%-10s %llu\n", "total", (unsigned long long)s.total, "next id",
           (unsigned long long)s.next_id, "bytes", (unsigned long long)s.file_bytes);
    return 0;
}

static int q_compact(batch_queue* q, const qopts* o) {
    batch_queue_stats before, after;
    batch_result r = batch_queue_stats_get(q, &before);
    if (r == BATCH_OK) r = batch_queue_compact(q, o->drop_finished);
    if (r != BATCH_OK) return q_lib_error(o, "cannot compact", r);
    r = batch_queue_stats_get(q, &after);
    if (r != BATCH_OK) return q_lib_error(o, "cannot read the stats", r);
    if (o->quiet) return 0;
    if (o->json)
        printf("{\"bytes_before\":%llu,\"bytes_after\":%llu,\"jobs\":%llu}\n", (unsigned long long)before.file_bytes,
               (unsigned long long)after.file_bytes, (unsigned long long)after.total);
    else
        printf("compacted %s: %llu -> %llu bytes, %llu jobs\n", o->path, (unsigned long long)before.file_bytes,
               (unsigned long long)after.file_bytes, (unsigned long long)after.total);
    return 0;
}

/* ---- serve ------------------------------------------------------------------------------------- */
typedef struct qserve {
    br_output* out;           /* every job's captured output is written through this one */
    char** env_base;          /* environ without the BATCHRUN_* variables set per job */
    size_t nenv;
    const char* path;
    uint64_t timeout_ns;
    int quiet;
    atomic_int signalled;     /* the signal that stopped the serve, 0 */
    atomic_int setup_errno;   /* a command could not be started for want of a resource */
} qserve;

/* One command on its helper thread. */
typedef struct qrun {
    br_output* sink;          /* this command's own: br_stop stops it alone */
    br_cmd_spec spec;
    br_cmd_result res;
    br_capture* cap;
    int err, done;
    pthread_mutex_t lock;
    pthread_cond_t cv;
} qrun;

static void* q_run_thread(void* arg) {
    qrun* r = (qrun*)arg;
    int err = br_cmd_run(r->sink, &r->spec, &r->res, &r->cap);
    pthread_mutex_lock(&r->lock);
    r->err = err;
    r->done = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Runs r's command on a helper thread and waits for it; every Q_WATCH_NS it asks
   batch_ctx_should_stop (which only the job's own call may ask) and stops the command when the
   job was cancelled or the serve is stopping. Returns 0 or an errno. */
static int q_run_watched(batch_ctx* ctx, qrun* r) {
    pthread_condattr_t ca;
    int err = pthread_condattr_init(&ca);
    if (err) return err;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    err = pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (err) return err;
    if ((err = pthread_mutex_init(&r->lock, NULL)) != 0) { pthread_cond_destroy(&r->cv); return err; }
    pthread_t t;
    err = pthread_create(&t, NULL, q_run_thread, r);
    if (!err) {
        int stopped = 0;
        pthread_mutex_lock(&r->lock);
        while (!r->done) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += Q_WATCH_NS;
            if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
            pthread_cond_timedwait(&r->cv, &r->lock, &ts);
            if (!r->done && !stopped && batch_ctx_should_stop(ctx)) { stopped = 1; br_stop(r->sink); }
        }
        pthread_mutex_unlock(&r->lock);
        pthread_join(t, NULL);
        err = r->err;
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cv);
    return err;
}

/* The environment of a job's command: environ, BATCHRUN_QUEUE, BATCHRUN_QUEUE_ID,
   BATCHRUN_ATTEMPT and (when named) BATCHRUN_NAME. vars: 4 buffers the caller frees. */
static char** q_env(const qserve* s, const batch_queue_info* in, char* vars[4]) {
    char** env = (char**)malloc((s->nenv + 5) * sizeof *env);
    size_t n = s->nenv, plen = strlen(s->path), nlen = strlen(in->name);
    vars[0] = (char*)malloc(plen + sizeof "BATCHRUN_QUEUE=");
    vars[1] = (char*)malloc(64);
    vars[2] = (char*)malloc(64);
    vars[3] = nlen ? (char*)malloc(nlen + sizeof "BATCHRUN_NAME=") : NULL;
    if (!env || !vars[0] || !vars[1] || !vars[2] || (nlen && !vars[3])) { free(env); return NULL; }
    memcpy(env, s->env_base, s->nenv * sizeof *env);
    snprintf(vars[0], plen + sizeof "BATCHRUN_QUEUE=", "BATCHRUN_QUEUE=%s", s->path);
    snprintf(vars[1], 64, "BATCHRUN_QUEUE_ID=%llu", (unsigned long long)in->id);
    snprintf(vars[2], 64, "BATCHRUN_ATTEMPT=%d", in->attempts);
    if (nlen) snprintf(vars[3], nlen + sizeof "BATCHRUN_NAME=", "BATCHRUN_NAME=%s", in->name);
    for (int k = 0; k < 4; k++) if (vars[k]) env[n++] = vars[k];
    env[n] = NULL;
    return env;
}

/* The code a command's end counts as (0: success) and its message. */
static int q_code(const qserve* s, const br_cmd_result* res, char* msg, size_t n) {
    if (res->exit_code == 0 && !res->signo && !res->timed_out) return 0;
    if (res->timed_out) { snprintf(msg, n, "timed out after %.3g s", (double)s->timeout_ns / 1e9); return 124; }
    if (res->stopped) { snprintf(msg, n, "stopped"); return 128 + SIGTERM; }
    if (res->signo) { snprintf(msg, n, "killed by signal %d", res->signo); return 128 + res->signo; }
    snprintf(msg, n, "exit %d", res->exit_code);
    return res->exit_code > 0 ? res->exit_code : 1;
}

/* Runs one job's command (the payload, cut at a NUL byte). */
static int q_job(batch_ctx* ctx, const batch_queue_job* job, void* user) {
    qserve* s = (qserve*)user;
    const batch_queue_info* in = &job->info;
    char* vars[4] = { NULL, NULL, NULL, NULL };
    char* text = (char*)malloc(in->size + 1);
    char** env = text ? q_env(s, in, vars) : NULL;
    qrun r;
    memset(&r, 0, sizeof r);
    int err = env ? 0 : ENOMEM;
    if (!err) {
        if (in->size) memcpy(text, job->payload, in->size);
        text[in->size] = 0;
        r.spec = (br_cmd_spec){ .command = text, .env = env, .seq = 1, .out_fd = -1, .err_fd = -1,
                                .timeout_ns = s->timeout_ns };
        err = br_output_create(&r.sink, 1, 2, BR_OUT_GROUP, 0, BR_OUTPUT_MEM_BOUND);
    }
    if (!err) err = q_run_watched(ctx, &r);
    if (r.cap) br_output_emit(s->out, 1, r.cap);   /* whole, never mixed with another job's */
    if (r.sink) br_output_destroy(r.sink);         /* it wrote nothing: no error to see */
    free(text);
    free(env);
    for (int k = 0; k < 4; k++) free(vars[k]);
    char msg[160] = "";
    int code;
    if (err) {
        if (err == EMFILE || err == ENFILE || err == ENOMEM || err == EAGAIN) atomic_store(&s->setup_errno, err);
        snprintf(msg, sizeof msg, "cannot start: %s", strerror(err));
        code = 127;
    } else {
        code = q_code(s, &r.res, msg, sizeof msg);
    }
    if (!code) return 0;
    const char* nm = in->name[0] ? in->name : NULL;
    if (atomic_load(&s->signalled) && r.res.stopped) {
        if (!s->quiet) q_say("job %llu%s%s: stopped, given back to the queue", (unsigned long long)in->id, nm ? " " : "", nm ? nm : "");
    } else if (r.res.stopped) {
        if (!s->quiet) q_say("job %llu%s%s: cancelled, its command stopped", (unsigned long long)in->id, nm ? " " : "", nm ? nm : "");
    } else if (!s->quiet) {
        q_say("job %llu%s%s: %s (attempt %d of %d)", (unsigned long long)in->id, nm ? " " : "", nm ? nm : "", msg,
              in->attempts, in->max_retries + 1);
    }
    return batch_ctx_fail(ctx, code, "%s", msg);
}

typedef struct qsig {
    sigset_t set;
    batch_job* job;
    qserve* serve;
    atomic_int done;
} qsig;

/* Takes SIGINT, SIGTERM and SIGHUP (blocked everywhere) and cancels the serve. */
static void* q_sig_thread(void* arg) {
    qsig* w = (qsig*)arg;
    while (!atomic_load(&w->done)) {
        struct timespec ts = { 0, 100000000L };
        int sig = sigtimedwait(&w->set, NULL, &ts);
        if (sig <= 0) continue;
        int zero = 0;
        atomic_compare_exchange_strong(&w->serve->signalled, &zero, sig);
        batch_job_cancel(w->job);
    }
    return NULL;
}

/* Blocks the stop signals in this thread (and so in every thread started after), except those
   that are ignored: they stay ignored. */
static void q_block_signals(sigset_t* set) {
    const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    sigemptyset(set);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaddset(set, sigs[i]);
    }
    pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* environ without the variables a job's command gets from the serve. */
static int q_base_env(qserve* s) {
    size_t n = 0;
    while (environ && environ[n]) n++;
    s->env_base = (char**)malloc((n + 1) * sizeof(char*));
    if (!s->env_base) return 0;
    static const char* const ours[] = { "BATCHRUN_QUEUE=", "BATCHRUN_QUEUE_ID=", "BATCHRUN_ATTEMPT=", "BATCHRUN_NAME=",
                                        "BATCHRUN_SEQ=" };
    for (size_t i = 0; i < n; i++) {
        int skip = 0;
        for (size_t k = 0; k < sizeof ours / sizeof ours[0]; k++) skip |= !strncmp(environ[i], ours[k], strlen(ours[k]));
        if (!skip) s->env_base[s->nenv++] = environ[i];
    }
    return 1;
}

/* The exit status after the serve (summary on stderr unless quiet). */
static int q_serve_status(const qopts* o, qserve* s, batch_result wr, const batch_job_summary* sum, int lost) {
    int sig = atomic_load(&s->signalled), se = atomic_load(&s->setup_errno);
    int bad = lost || se || (wr != BATCH_OK && wr != BATCH_PARTIAL && wr != BATCH_ERR_FAILED && wr != BATCH_ERR_CANCELLED);
    if (se) q_say("some commands could not be started: %s", strerror(se));
    if (bad && !lost && !se) q_say("%s: the serve ended with an error: %s", o->path, batch_result_string(wr));
    if (o->json && !o->quiet)
        fprintf(stderr, "{\"done\":%llu,\"failed\":%llu,\"cancelled\":%llu,\"seconds\":%.3f,\"signal\":%d}\n",
                (unsigned long long)sum->completed, (unsigned long long)sum->failed,
                (unsigned long long)sum->cancelled, (double)sum->wall_ns / 1e9, sig);
    else if (!o->quiet)
        q_say("%s: %llu done, %llu failed attempts, %llu cancelled or given back, %.2f s%s", o->path,
              (unsigned long long)sum->completed, (unsigned long long)sum->failed, (unsigned long long)sum->cancelled,
              (double)sum->wall_ns / 1e9, sig ? " (interrupted)" : "");
    if (bad) return BR_EXIT_OTHER;
    return sum->failed ? 1 : 0;
}

/* Launches the serve and waits for it, a signal thread cancelling it on SIGINT/SIGTERM/SIGHUP. */
static int q_serve_run(const qopts* o, qserve* s, batch_pool* pool, batch_queue* q, const sigset_t* set) {
    batch_queue_serve_desc d = { .fn = q_job, .user_data = s, .concurrency = o->jobs, .drain = o->drain,
                                 .max_jobs = o->max_jobs };
    batch_job* job;
    batch_result r = batch_queue_serve(pool, q, &d, &job);
    if (r != BATCH_OK) return q_lib_error(o, "cannot serve", r);
    static qsig w;   /* the signal thread's; one serve per process */
    w.set = *set;
    w.job = job;
    w.serve = s;
    atomic_store(&w.done, 0);
    pthread_t t;
    int have_thread = pthread_create(&t, NULL, q_sig_thread, &w) == 0;
    if (!have_thread) q_say("no signal thread: SIGINT and SIGTERM will wait for the serve's end");
    batch_job_summary sum;
    batch_result wr = batch_job_wait(job, &sum);
    atomic_store(&w.done, 1);
    if (have_thread) pthread_join(t, NULL);
    batch_job_destroy(job);
    int lost = br_output_destroy(s->out);
    s->out = NULL;
    if (lost) q_say("cannot write the commands' output: %s", strerror(lost));
    return q_serve_status(o, s, wr, &sum, lost);
}

static int q_serve(const qopts* o) {
    static qserve s;   /* zeroed; the job function's */
    s.path = o->path;
    s.timeout_ns = o->timeout_ns;
    s.quiet = o->quiet;
    sigset_t set;
    q_block_signals(&set);
    batch_queue* q;
    if (!q_open(o, &q)) return BR_EXIT_OTHER;
    batch_pool* pool = NULL;
    int rc = BR_EXIT_OTHER;
    batch_result r = batch_pool_create(&pool, &(batch_pool_desc){ .workers = o->jobs, .spin_us = BATCH_SPIN_NONE });
    int err = r == BATCH_OK ? br_output_create(&s.out, 1, 2, BR_OUT_GROUP, 0, BR_OUTPUT_MEM_BOUND) : 0;
    if (r != BATCH_OK) q_say("cannot create %d worker threads: %s", o->jobs, batch_result_string(r));
    else if (err || !q_base_env(&s)) q_say("cannot start: %s", strerror(err ? err : ENOMEM));
    else {
        fflush(stdout);   /* the commands write to the same descriptors */
        fflush(stderr);
        rc = q_serve_run(o, &s, pool, q, &set);
    }
    if (s.out) br_output_destroy(s.out);
    batch_pool_destroy(pool);
    r = batch_queue_close(q);
    if (r != BATCH_OK) { q_say("%s: cannot close: %s", o->path, batch_result_string(r)); rc = BR_EXIT_OTHER; }
    free(s.env_base);
    return rc;
}

/* ---- main -------------------------------------------------------------------------------------- */
int br_queue_main(int argc, char** argv) {
    qopts o;
    int rc = q_parse(&o, argc, argv);
    if (rc >= 0) return rc;
    if (o.sub == Q_SERVE) return q_serve(&o);
    batch_queue* q;
    if (!q_open(&o, &q)) return BR_EXIT_OTHER;
    switch (o.sub) {
    case Q_ADD: rc = q_add(q, &o); break;
    case Q_LIST: rc = q_list(q, &o); break;
    case Q_SHOW: rc = q_show(q, &o); break;
    case Q_CANCEL: rc = q_cancel(q, &o); break;
    case Q_STATS: rc = q_stats(q, &o); break;
    default: rc = q_compact(q, &o); break;
    }
    batch_result r = batch_queue_close(q);
    if (r != BATCH_OK) { q_say("%s: cannot close: %s", o.path, batch_result_string(r)); rc = BR_EXIT_OTHER; }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        q_say("cannot write the output: %s", strerror(errno ? errno : EIO));
        rc = BR_EXIT_OTHER;
    }
    return rc;
}
