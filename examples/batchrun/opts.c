/* opts.c - batchrun's command line: its own options and GNU parallel's everyday ones, with GNU
   parallel's meaning. Options come first; the first word that is not an option (or ":::", "::::",
   or what follows "--") starts the command and its argument sources. */
#define _POSIX_C_SOURCE 200809L
#include "opts.h"
#include "batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char* const USAGE[] = {
    "usage: batchrun [options] [command [args] [::: arguments | :::: files]...] [< input]",
    "       batchrun queue PATH add|serve|list|show|cancel|stats|compact ...   (batchrun queue -h)",
    "Runs shell commands (/bin/sh -c, each in its own process group) as one batch.h job graph,",
    "with GNU parallel's everyday command line; or keeps them in a durable queue (batchrun queue).",
    "",
    "input (one of):",
    "  command ::: a b ...  the command once per argument (several ::: give every combination;",
    "                       :::: FILE takes the arguments from FILE's lines); without ::: the lines",
    "                       of stdin are the arguments. Replacement strings: {} {.} {/} {//} {/.}",
    "                       {#} (sequence) {%} (slot) {n} {n.} {n/} {n//} {n/.} (source n); a",
    "                       command without one gets ' {}' appended; arguments are shell-quoted",
    "  ::: cmd1 cmd2 ...    the arguments are the commands",
    "  (no command)         commands from stdin, one a line (blank and '#' lines are skipped)",
    "  -f FILE              commands from FILE, one a line ('-': stdin)",
    "  -J FILE              a job file: 'name: dep1 dep2 ... : command' a line; 'name: command'",
    "                       when there are no deps (write 'name: : command' if the command",
    "                       contains ':'); names use letters, digits and _ . + -",
    "",
    "options:",
    "  -j, -P, --jobs N     at most N commands at once: N, N% of the CPUs, +N / -N added to the CPU",
    "                       count, 0 as many as possible (at most 256; default: the CPU count)",
    "  -k, --keep-order     output in input order (the commands still run in parallel)",
    "  --group              each command's output whole when it ends (the default; stdout, then",
    "                       stderr)",
    "  --line-buffer, --lb  whole lines as they come (with -k: like --group)",
    "  -u, --ungroup        the commands write straight to stdout/stderr (lines may mix)",
    "  --tag                prefix each output line with the arguments and a TAB",
    "  --dry-run            print the commands, run nothing",
    "  --link               pair the ::: sources by position instead of every combination",
    "  --halt WHEN,WHY=N    stop when N (or N%) commands have failed (fail), succeeded (success) or",
    "                       finished (done): WHEN 'soon' lets running commands end, 'now' kills",
    "                       them; also 0 (never), 1 (soon,fail=1), 2 (now,fail=1), -1, -2, N%",
    "  --delay SEC          start commands at least SEC seconds apart",
    "  --retries N          run a failed command up to N more times (default 0)",
    "  --retry-delay MS     wait MS ms before the first retry, doubling after each (default 1000)",
    "  --timeout SEC        per attempt: SIGTERM to the process group after SEC seconds,",
    "                       SIGKILL 1 s later; the attempt fails",
    "  --ok-codes C1,C2     exit codes that also count as success (0 always does), e.g. 5",
    "  --results DIR        stdout/stderr of each command to DIR/<seq or name>.out / .err (last",
    "                       attempt) instead of batchrun's stdout/stderr",
    "  --joblog FILE        GNU parallel's joblog: Seq Host Starttime JobRuntime Send Receive",
    "                       Exitval Signal Command, a line per finished command ('+FILE' appends)",
    "  --report-json FILE   batch.h's JSON report of the run ('-': stdout, needs --results)",
    "  --report-text FILE   batch.h's text report of the run ('-': stdout, needs --results)",
    "  --trace FILE         the run as Chrome trace event JSON (opens in ui.perfetto.dev and",
    "                       chrome://tracing): a line per worker, a bar per attempt, retry waits",
    "  --journal FILE       record each finished command in FILE (batch.h's journal, written",
    "                       through at once), so that a killed or interrupted run can resume;",
    "                       refuses an existing FILE unless --resume is given",
    "  --resume             with --journal: commands FILE records as finished (succeeded, or",
    "                       failed after their retries) are not run again; the rest runs;",
    "                       --joblog then adds to its file",
    "  --resume-failed      like --resume, and the commands that failed run again",
    "  --progress, --bar, --eta   a progress bar with the ETA on stderr",
    "  --version            the version",
    "  -h, --help           this text",
    "",
    "Commands get stdin from /dev/null and BATCHRUN_SEQ, BATCHRUN_NAME (job files) and",
    "BATCHRUN_ATTEMPT (1, 2, ...) in their environment. Dependents of a failed command are",
    "skipped. Exit status: 0 when all succeeded, else the failed commands (at most 101; with",
    "--halt as GNU parallel has it), 255 for other errors (usage, a resource, a write that",
    "failed), 128+N after signal N (SIGINT/SIGTERM/SIGHUP stop the commands).",
    NULL
};

void br_opts_usage(FILE* out) {
    for (int i = 0; USAGE[i]; i++) fprintf(out, "%s\n", USAGE[i]);
}

static int usage_error(const char* fmt, const char* arg) {
    fputs("batchrun: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (batchrun -h for help)\n", stderr);
    return BR_EXIT_OTHER;
}

static int parse_long(const char* s, long lo, long hi, long* out) {
    char* end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* A number, optionally followed by `suffix` (e.g. '%'); *had tells whether it was. */
static int parse_double_suffix(const char* s, double lo, double hi, char suffix, int* had, double* out) {
    char* end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s) return 0;
    *had = suffix && *end == suffix;
    if (*had) end++;
    if (*end || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}

/* Seconds with an optional unit: 2.5, 2.5s, 3m, 1h, 1d (GNU parallel's forms). */
static int parse_seconds(const char* s, double lo, double hi, double* out) {
    char* end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s) return 0;
    double unit = 1;
    if (*end == 's') end++;
    else if (*end == 'm') { unit = 60; end++; }
    else if (*end == 'h') { unit = 3600; end++; }
    else if (*end == 'd') { unit = 86400; end++; }
    v *= unit;
    if (*end || !(v >= lo && v <= hi)) return 0;
    *out = v;
    return 1;
}

/* -j N | 0 | N% | +N | -N */
static int parse_jobs(const char* val, int* jobs) {
    long cpus = batch_cpu_count(), l;
    double d;
    int pct;
    long n;
    if (val[0] == '+' || val[0] == '-') {
        if (!parse_long(val + 1, 0, 100000, &l)) return 0;
        n = val[0] == '+' ? cpus + l : cpus - l;
    } else if (parse_double_suffix(val, 0, 100000, '%', &pct, &d) && pct) {
        n = (long)(d * (double)cpus / 100.0);
    } else if (parse_long(val, 0, 100000, &l)) {
        n = l ? l : BR_MAX_JOBS;
    } else {
        return 0;
    }
    if (n < 1) n = 1;
    if (n > BR_MAX_JOBS) {
        fprintf(stderr, "batchrun: Warning: -j %s: at most %d commands run at once\n", val, BR_MAX_JOBS);
        n = BR_MAX_JOBS;
    }
    *jobs = (int)n;
    return 1;
}

/* --halt: never, 0, 1, 2, -1, -2, N%, or WHEN,WHY=X[%] */
static int parse_halt(const char* val, br_halt* h) {
    static const char* const legacy[] = { "0", "1", "2", "-1", "-2", "never" };
    static const br_halt legacy_h[] = { { BR_HALT_NONE, 0, 0, 0 }, { BR_HALT_FAIL, 0, 0, 1 }, { BR_HALT_FAIL, 1, 0, 1 },
                                        { BR_HALT_SUCCESS, 0, 0, 1 }, { BR_HALT_SUCCESS, 1, 0, 1 }, { BR_HALT_NONE, 0, 0, 0 } };
    for (int i = 0; i < 6; i++) if (!strcmp(val, legacy[i])) { *h = legacy_h[i]; return 1; }
    double d;
    int pct;
    if (parse_double_suffix(val, 0, 100, '%', &pct, &d) && pct) { *h = (br_halt){ BR_HALT_FAIL, 0, 1, d }; return 1; }
    const char* comma = strchr(val, ',');
    if (!comma) return 0;
    size_t wn = (size_t)(comma - val);
    if (wn == 3 && !strncmp(val, "now", 3)) h->now = 1;
    else if (wn == 4 && !strncmp(val, "soon", 4)) h->now = 0;
    else return 0;
    const char* why = comma + 1;
    const char* eq = strchr(why, '=');
    if (!eq) return 0;
    size_t yn = (size_t)(eq - why);
    if (yn == 4 && !strncmp(why, "fail", 4)) h->kind = BR_HALT_FAIL;
    else if (yn == 7 && !strncmp(why, "success", 7)) h->kind = BR_HALT_SUCCESS;
    else if (yn == 4 && !strncmp(why, "done", 4)) h->kind = BR_HALT_DONE;
    else return 0;
    if (!parse_double_suffix(eq + 1, 0, 1e9, '%', &pct, &d) || (pct && d > 100) || (!pct && d < 1)) return 0;
    h->percent = pct;
    h->value = d;
    return 1;
}

static int parse_ok_codes(const char* val, unsigned char* ok_code) {
    size_t n = strlen(val);
    char* copy = (char*)malloc(n + 1);
    if (!copy) return 0;
    memcpy(copy, val, n + 1);
    int good = n > 0;
    for (char* tok = strtok(copy, ","); tok && good; tok = strtok(NULL, ",")) {
        long l;
        while (*tok == ' ') tok++;
        if (!parse_long(tok, 0, 255, &l)) good = 0;
        else ok_code[l] = 1;
    }
    free(copy);
    return good;
}

/* Flags without a value. Returns 1 if arg was one. */
static int parse_flag(br_opts* o, const char* arg) {
    if (!strcmp(arg, "--progress") || !strcmp(arg, "--bar") || !strcmp(arg, "--eta")) o->progress = 1;
    else if (!strcmp(arg, "--resume")) o->resume = o->resume ? o->resume : 1;
    else if (!strcmp(arg, "--resume-failed")) o->resume = 2;
    else if (!strcmp(arg, "-k") || !strcmp(arg, "--keep-order")) o->keep_order = 1;
    else if (!strcmp(arg, "--tag")) o->tag = 1;
    else if (!strcmp(arg, "--dry-run")) o->dry_run = 1;
    else if (!strcmp(arg, "--link") || !strcmp(arg, "--xapply")) o->link = 1;
    else if (!strcmp(arg, "--group")) o->out_mode = BR_OUT_GROUP;
    else if (!strcmp(arg, "--line-buffer") || !strcmp(arg, "--lb")) o->out_mode = BR_OUT_LINE;
    else if (!strcmp(arg, "-u") || !strcmp(arg, "--ungroup")) o->out_mode = BR_OUT_UNGROUP;
    else return 0;
    return 1;
}

/* An option with a value. Returns -1 when parsed, else the exit status. */
static int parse_valued(br_opts* o, const char* opt, const char* val) {
    long l;
    double d;
    if (!strcmp(opt, "-j") || !strcmp(opt, "--jobs") || !strcmp(opt, "-P") || !strcmp(opt, "--max-procs")) {
        if (!parse_jobs(val, &o->jobs)) return usage_error("-j wants N, N%%, +N, -N or 0, not '%s'", val);
    } else if (!strcmp(opt, "-f")) {
        o->cmd_file = val;
    } else if (!strcmp(opt, "-J")) {
        o->job_file = val;
    } else if (!strcmp(opt, "--retries")) {
        if (!parse_long(val, 0, 1000, &l)) return usage_error("--retries wants 0..1000, not '%s'", val);
        o->retries = (int)l;
    } else if (!strcmp(opt, "--retry-delay")) {
        if (!parse_long(val, 0, 3600000, &l)) return usage_error("--retry-delay wants milliseconds, not '%s'", val);
        o->retry_delay_ns = (uint64_t)l * 1000000u;
    } else if (!strcmp(opt, "--timeout")) {
        if (!parse_seconds(val, 0.001, 1e6, &d)) return usage_error("--timeout wants seconds > 0, not '%s'", val);
        o->timeout_ns = (uint64_t)(d * 1e9);
    } else if (!strcmp(opt, "--delay")) {
        if (!parse_seconds(val, 0, 1e6, &d)) return usage_error("--delay wants seconds, not '%s'", val);
        o->delay_ns = (uint64_t)(d * 1e9);
    } else if (!strcmp(opt, "--halt") || !strcmp(opt, "--halt-on-error")) {
        memset(&o->halt, 0, sizeof o->halt);
        if (!parse_halt(val, &o->halt)) return usage_error("--halt wants now|soon,fail|success|done=N|PCT%%, not '%s'", val);
    } else if (!strcmp(opt, "--ok-codes")) {
        if (!parse_ok_codes(val, o->ok_code)) return usage_error("--ok-codes wants exit codes 0..255 like 0,5, not '%s'", val);
    } else if (!strcmp(opt, "--results")) {
        o->results_dir = val;
    } else if (!strcmp(opt, "--joblog") || !strcmp(opt, "--jl")) {
        o->joblog_append = val[0] == '+';
        o->joblog_path = val + (val[0] == '+');
    } else if (!strcmp(opt, "--report-json")) {
        o->report_json_path = val;
    } else if (!strcmp(opt, "--report-text")) {
        o->report_text_path = val;
    } else if (!strcmp(opt, "--trace")) {
        o->trace_path = val;
    } else if (!strcmp(opt, "--journal")) {
        o->journal_path = val;
    } else {
        return usage_error("unknown option %s", opt);
    }
    return -1;
}

/* Splits "--opt=value" / "-j4"; returns 1 when arg takes a value (*val set if attached). */
static int split_option(const char* arg, char* opt, size_t optn, const char** val) {
    static const char* const valued[] = { "-j", "--jobs", "-P", "--max-procs", "-f", "-J", "--retries", "--retry-delay",
                                          "--timeout", "--delay", "--halt", "--halt-on-error", "--ok-codes", "--results",
                                          "--joblog", "--jl", "--report-json", "--report-text", "--trace", "--journal", NULL };
    *val = NULL;
    size_t n = strlen(arg);
    if (arg[1] == '-') {
        const char* eq = strchr(arg, '=');
        if (eq) { n = (size_t)(eq - arg); *val = eq + 1; }
    } else if (n > 2 && strchr("jPfJ", arg[1])) {
        n = 2;
        *val = arg + 2;
    }
    if (n >= optn) n = optn - 1;
    memcpy(opt, arg, n);
    opt[n] = 0;
    for (int k = 0; valued[k]; k++) if (!strcmp(valued[k], opt)) return 1;
    return 0;
}

static void set_defaults(br_opts* o) {
    memset(o, 0, sizeof *o);
    o->jobs = batch_cpu_count();
    if (o->jobs > BR_MAX_JOBS) o->jobs = BR_MAX_JOBS;
    if (o->jobs < 1) o->jobs = 1;
    o->retry_delay_ns = 1000000000u;
    o->ok_code[0] = 1;
    o->out_mode = BR_OUT_GROUP;
}

/* The combinations that make no sense. */
static int check_opts(const br_opts* o, int has_args) {
    if (o->cmd_file && o->job_file) return usage_error("%s", "-f and -J exclude each other");
    if ((o->cmd_file || o->job_file) && has_args) return usage_error("%s", "-f and -J take no command or ::: arguments");
    if (o->resume && !o->journal_path) return usage_error("%s", "--resume needs --journal FILE");
    const char* r[3] = { o->report_json_path, o->report_text_path, o->trace_path };
    for (int i = 0; i < 3; i++)
        if (r[i] && (!strcmp(r[i], "-") || !strcmp(r[i], "/dev/stdout")) && !o->results_dir && !o->dry_run)
            return usage_error("%s", "a report on stdout would mix with the commands' output: give --results DIR "
                                     "or a report file");
    return -1;
}

int br_opts_parse(br_opts* o, int argc, char** argv, int* first_arg) {
    set_defaults(o);
    int i = 1;
    for (; i < argc; i++) {
        const char* arg = argv[i];
        if (!strcmp(arg, "--")) { i++; break; }
        if (arg[0] != '-' || !arg[1]) break;   /* the command starts (":::" and "-" too) */
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) { br_opts_usage(stdout); return 0; }
        if (!strcmp(arg, "--version")) {
            printf("batchrun (batch.h) %s\n", BATCH_VERSION_STRING);
            return 0;
        }
        if (parse_flag(o, arg)) continue;
        char opt[64];
        const char* val;
        if (!split_option(arg, opt, sizeof opt, &val)) return usage_error("unknown option %s", arg);
        if (!val) {
            if (i + 1 >= argc) return usage_error("%s needs a value", opt);
            val = argv[++i];
        }
        int rc = parse_valued(o, opt, val);
        if (rc >= 0) return rc;
    }
    *first_arg = i;
    return check_opts(o, i < argc);
}
