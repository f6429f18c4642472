/* workflows.c - scenario D: a batch of workflow graphs.

   Each job is a small compiled graph with its own input, built and validated once:

       parse -> { analyse, enrich } -> merge

   parse reads the numbers of the input, analyse sums them, enrich computes a digest of the
   input text, merge combines both into the job's output (data flows through batch_ctx_set_output /
   batch_ctx_output_of). Every task may be retried 3 times (1 ms, 2 ms, 4 ms). Some jobs are
   special: in every 6th job enrich is flaky (fails twice, then succeeds on retry); every 16th
   input is malformed (parse fails after its retries, the rest is skipped, the job fails); in
   job 30 enrich hangs and the job's timeout (200 ms here, 5 minutes in production) cancels it.

   A batch is an outer graph with one task per job; each outer task runs its job with
   batch_graph_run. The outer run's max_concurrency (10) is the batch's concurrency limit: a job
   holds a slot while it runs, and a worker waiting for its job helps run other tasks instead of
   blocking. An atomic count of running jobs checks that the limit is never exceeded.

   Job priority is 0..255, 255 the most urgent, mapped onto the pool's five levels:
       224..255 CRITICAL   160..223 HIGH   96..159 NORMAL   32..95 LOW   0..31 BACKGROUND
   It is the priority of the job's outer task and of its inner run. Jobs that wait for a slot
   queue in the order they were dequeued, which the pool does by priority.

   Runs: the batch of 50 jobs (limit 10); one job alone; 5 jobs with limit 3; an empty batch.
   Tasks stand in for I/O with a few ms of sleep, so the pool has 12 threads on any machine.
   Exit status 0 only if every check passes. */
#define _POSIX_C_SOURCE 200809L   /* nanosleep under -std=c11 */
#define BATCH_IMPLEMENTATION
#include "batch.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WORKERS 12
#define JOBS 50
#define LIMIT 10
#define MAX_RETRIES 3
#define JOB_TIMEOUT_NS 200000000ull   /* 200 ms */
#define SLOW_JOB 30
#define MAX_NUMBERS 16

static void sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {}
}

static batch_priority priority_level(int p) {
    if (p >= 224) return BATCH_PRIORITY_CRITICAL;
    if (p >= 160) return BATCH_PRIORITY_HIGH;
    if (p >= 96) return BATCH_PRIORITY_NORMAL;
    if (p >= 32) return BATCH_PRIORITY_LOW;
    return BATCH_PRIORITY_BACKGROUND;
}
static const char* const LEVEL[] = { "default", "CRIT", "HIGH", "NORM", "LOW", "BACK" };

static int failures;
static void check(int ok, const char* what) {
    if (!ok) { failures++; printf("CHECK FAILED: %s\n", what); }
}

/* What one batch run shares with its jobs. */
typedef struct workflow workflow;
typedef struct batch_state {
    workflow* jobs;             /* outer task id k runs jobs[k - 1] */
    atomic_int running, peak, started, failed_events;
} batch_state;

struct workflow {
    int id, priority;
    char input[96];
    int flaky, slow;
    batch_graph* g;
    batch_task parse, analyse, enrich, merge;
    batch_state* batch;
    /* data flowing through the graph */
    long numbers[MAX_NUMBERS];
    int count;
    long sum, max;
    unsigned digest;
    char output[96];
    /* the result */
    batch_job_summary summary;
    batch_result result;
    char error[BATCH_MESSAGE_MAX];
    int start_rank;
};

/* ---- the tasks of a workflow ----------------------------------------------------------------- */
static int parse(batch_ctx* ctx, void* user) {
    workflow* w = (workflow*)user;
    sleep_ms(2);   /* reading the input */
    w->count = 0;
    const char* s = w->input;
    for (int pos = 1; *s; pos++) {
        while (*s == ' ') s++;
        if (!*s) break;
        char* end;
        long v = strtol(s, &end, 10);
        if (end == s || (*end && *end != ' ')) {
            int len = 0;
            while (s[len] && s[len] != ' ') len++;
            return batch_ctx_fail(ctx, 22, "bad token '%.*s' at position %d", len, s, pos);
        }
        if (w->count == MAX_NUMBERS) return batch_ctx_fail(ctx, 7, "more than %d numbers", MAX_NUMBERS);
        w->numbers[w->count++] = v;
        s = end;
    }
    batch_ctx_set_output(ctx, w->numbers);
    return 0;
}

static int analyse(batch_ctx* ctx, void* user) {
    workflow* w = (workflow*)user;
    const long* v = (const long*)batch_ctx_output_of(ctx, w->parse);
    sleep_ms(3);
    w->sum = 0;
    w->max = w->count ? v[0] : 0;
    for (int i = 0; i < w->count; i++) {
        w->sum += v[i];
        if (v[i] > w->max) w->max = v[i];
    }
    batch_ctx_set_output(ctx, &w->sum);
    return 0;
}

static unsigned fnv1a(const char* s) {
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int enrich(batch_ctx* ctx, void* user) {
    workflow* w = (workflow*)user;
    if (w->slow) {   /* a call that never answers: give up when the job's deadline passes */
        uint64_t t0 = batch_now_ns();
        while (!batch_ctx_should_stop(ctx)) sleep_ms(5);
        return batch_ctx_fail(ctx, 110, "enrichment service did not answer (%.0f ms, stopped at the job deadline)",
                          (double)(batch_now_ns() - t0) / 1e6);
    }
    sleep_ms(4);
    if (w->flaky && batch_ctx_attempt(ctx) < 2)
        return batch_ctx_fail(ctx, 503, "enrichment service unavailable (attempt %d)", batch_ctx_attempt(ctx) + 1);
    w->digest = fnv1a(w->input);
    batch_ctx_set_output(ctx, &w->digest);
    return 0;
}

static int merge(batch_ctx* ctx, void* user) {
    workflow* w = (workflow*)user;
    const long* sum = (const long*)batch_ctx_output_of(ctx, w->analyse);
    const unsigned* digest = (const unsigned*)batch_ctx_output_of(ctx, w->enrich);
    sleep_ms(1);
    snprintf(w->output, sizeof w->output, "n=%d sum=%ld max=%ld digest=%08x", w->count, *sum, w->max, *digest);
    batch_ctx_set_output(ctx, w->output);
    return 0;
}

static int workflow_create(workflow* w, int id) {
    memset(w, 0, sizeof *w);
    w->id = id;
    w->priority = (id * 53 + 17) % 256;
    w->flaky = id % 6 == 1;
    w->slow = id == SLOW_JOB;
    int n = 3 + id % 5, len = 0;
    for (int k = 0; k < n; k++) {
        if (id % 16 == 7 && k == 2) len += snprintf(w->input + len, sizeof w->input - (size_t)len, "x%d ", id);
        else len += snprintf(w->input + len, sizeof w->input - (size_t)len, "%d ", (id * 37 + k * 11) % 100);
    }
    char name[32];
    snprintf(name, sizeof name, "workflow-%02d", id);
    if (batch_graph_create(&w->g, &(batch_graph_desc){ .name = name }) != BATCH_OK) return 0;
    batch_task_desc d = { .user_data = w, .max_retries = MAX_RETRIES, .retry_base_ns = 1000000 };
    d.fn = parse;   d.name = "parse";   batch_graph_add(w->g, &d, &w->parse);
    d.fn = analyse; d.name = "analyse"; batch_graph_add(w->g, &d, &w->analyse);
    d.fn = enrich;  d.name = "enrich";  batch_graph_add(w->g, &d, &w->enrich);
    d.fn = merge;   d.name = "merge";   batch_graph_add(w->g, &d, &w->merge);
    batch_task_precede_n(w->g, &w->parse, 1, (batch_task[]){ w->analyse, w->enrich }, 2);
    batch_task_precede_n(w->g, (batch_task[]){ w->analyse, w->enrich }, 2, &w->merge, 1);
    return batch_graph_validate(w->g, NULL, 0) == BATCH_OK;   /* compiled: sorted, checked */
}

/* ---- the batch ------------------------------------------------------------------------------- */
/* One outer task: runs job w to its end, nested in the outer run. */
static int run_workflow(batch_ctx* ctx, void* user) {
    workflow* w = (workflow*)user;
    batch_state* b = w->batch;
    w->start_rank = atomic_fetch_add(&b->started, 1);
    int now = atomic_fetch_add(&b->running, 1) + 1;
    int peak = atomic_load(&b->peak);
    while (now > peak && !atomic_compare_exchange_weak(&b->peak, &peak, now)) {}

    w->output[0] = w->error[0] = 0;
    w->result = batch_graph_run(batch_ctx_pool(ctx), w->g, &(batch_run_desc){
        .timeout_ns = JOB_TIMEOUT_NS, .priority = priority_level(w->priority) }, &w->summary);
    atomic_fetch_sub(&b->running, 1);

    const batch_task tasks[] = { w->parse, w->analyse, w->enrich, w->merge };
    for (int i = 0; i < 4 && !w->error[0]; i++) {   /* the first task that failed says why */
        batch_task_info info;
        batch_graph_task_info(w->g, tasks[i], &info);
        if (info.status == BATCH_TASK_FAILED)
            snprintf(w->error, sizeof w->error, "%s: %s", info.name, info.message ? info.message : "failed");
    }
    if (w->result == BATCH_OK) return 0;
    if (!w->error[0]) snprintf(w->error, sizeof w->error, "%s", batch_result_string(w->result));
    return batch_ctx_fail(ctx, (int)w->result, "%s", w->error);
}

static void on_batch_event(batch_event ev, const batch_progress* p, const batch_event_info* info, void* user) {
    batch_state* b = (batch_state*)user;
    switch (ev) {
        case BATCH_EVENT_PROGRESS:
            printf("  progress %llu/%llu jobs (%.0f%%), %d running, %llu failed, eta %.2f s\n",
                   (unsigned long long)p->processed, (unsigned long long)p->total, p->percent,
                   atomic_load(&b->running), (unsigned long long)p->failed, p->eta_s);
            break;
        case BATCH_EVENT_TASK_FAILED:
            atomic_fetch_add(&b->failed_events, 1);
            /* the event carries the code, not the message: the job kept its error */
            printf("  %s %s: %s\n", info->name, info->error == BATCH_ERR_TIMEOUT ? "timed out" : "failed",
                   b->jobs[info->task_id - 1].error);
            break;
        case BATCH_EVENT_JOB_COMPLETED:
            printf("  batch done: %llu/%llu jobs succeeded in %.3f s\n", (unsigned long long)p->succeeded,
                   (unsigned long long)p->total, p->elapsed_s);
            break;
        default:
            break;
    }
}

typedef struct batch_stats {
    int total, completed, failed, timed_out, peak;
    uint64_t lib_peak, retries;
    double avg_ms, wall_ms;
    batch_result result;
} batch_stats;

static const char* job_status(const workflow* w) {
    if (w->result == BATCH_ERR_TIMEOUT) return "timeout";
    return batch_job_status_string(w->summary.status);
}

/* Runs jobs[0..n) as one batch with at most `limit` jobs at once. */
static batch_stats run_batch(batch_pool* pool, workflow* jobs, int n, int limit, int table) {
    batch_stats st;
    memset(&st, 0, sizeof st);
    batch_state b;
    memset(&b, 0, sizeof b);
    b.jobs = jobs;
    batch_graph* outer;
    if (batch_graph_create(&outer, &(batch_graph_desc){ .name = "batch" }) != BATCH_OK) { st.result = BATCH_ERR_NOMEM; return st; }
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "job-%02d", jobs[i].id);
        jobs[i].batch = &b;
        batch_task t;
        batch_graph_add(outer, &(batch_task_desc){ .fn = run_workflow, .user_data = &jobs[i], .name = name,
                                                    .priority = priority_level(jobs[i].priority) }, &t);
    }
    uint64_t t0 = batch_now_ns();
    batch_job_summary s;
    st.result = batch_graph_run(pool, outer, &(batch_run_desc){ .max_concurrency = limit,
        .progress = { .fn = on_batch_event, .user_data = &b, .interval_ms = 50 } }, &s);
    st.wall_ms = (double)(batch_now_ns() - t0) / 1e6;
    batch_graph_destroy(outer);

    if (table && n) printf("  %-3s %3s %-4s %-9s %4s %4s %7s  %s\n", "id", "pri", "lvl", "status", "rtry", "slot", "ms", "output / error");
    double sum_ms = 0;
    for (int i = 0; i < n; i++) {
        const workflow* w = &jobs[i];
        double ms = (double)w->summary.wall_ns / 1e6;
        sum_ms += ms;
        st.retries += w->summary.retries;
        if (w->result == BATCH_OK) st.completed++;
        else if (w->result == BATCH_ERR_TIMEOUT) st.timed_out++;
        else st.failed++;
        if (table)
            printf("  %-3d %3d %-4s %-9s %4llu %4d %7.2f  %s\n", w->id, w->priority, LEVEL[priority_level(w->priority)],
                   job_status(w), (unsigned long long)w->summary.retries, w->start_rank, ms,
                   w->result == BATCH_OK ? w->output : w->error);
    }
    st.total = n;
    st.avg_ms = n ? sum_ms / n : 0;
    st.peak = atomic_load(&b.peak);
    st.lib_peak = s.peak_concurrency;
    printf("  stats: total %d, completed %d, failed %d, timed out %d, retries %llu, avg duration %.2f ms, "
           "peak concurrency %d (outer run: %llu, limit %d), wall %.1f ms, %s\n",
           st.total, st.completed, st.failed, st.timed_out, (unsigned long long)st.retries, st.avg_ms, st.peak,
           (unsigned long long)st.lib_peak, limit, st.wall_ms, batch_result_string(st.result));
    check((uint64_t)st.completed == s.completed && (uint64_t)(st.failed + st.timed_out) == s.failed &&
          s.total == (uint64_t)n && atomic_load(&b.failed_events) == st.failed + st.timed_out,
          "per-job results match the outer run's summary and its failure events");
    return st;
}

/* ---- checks ---------------------------------------------------------------------------------- */

/* The output job w must produce, computed here without the graph; "" if its input is bad. */
static void expected_output(const workflow* w, char* out, size_t size) {
    long sum = 0, max = 0;
    int n = 0;
    char buf[96];
    snprintf(buf, sizeof buf, "%s", w->input);
    out[0] = 0;
    for (char* tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        if (tok[0] < '0' || tok[0] > '9') return;
        long v = atol(tok);
        if (!n || v > max) max = v;
        sum += v;
        n++;
    }
    snprintf(out, size, "n=%d sum=%ld max=%ld digest=%08x", n, sum, max, fnv1a(w->input));
}

static void check_job(const workflow* w) {
    char want[96];
    expected_output(w, want, sizeof want);
    if (w->slow) {
        check(w->result == BATCH_ERR_TIMEOUT && w->summary.status == BATCH_JOB_CANCELLED && w->summary.wall_ns >= JOB_TIMEOUT_NS,
              "the hanging job times out");
    } else if (!want[0]) {
        batch_task_info info;
        batch_graph_task_info(w->g, w->parse, &info);
        check(w->result == BATCH_ERR_FAILED && w->summary.skipped == 3 && info.attempts == 1 + MAX_RETRIES &&
              strstr(w->error, "bad token"), "a malformed input fails after its retries, the rest is skipped");
    } else {
        check(w->result == BATCH_OK && !strcmp(w->output, want), "job output");
        check(w->summary.retries == (uint64_t)(w->flaky ? 2 : 0), "a flaky task succeeds on its third attempt");
    }
}

static workflow jobs[JOBS];

int main(void) {
    batch_pool* pool;
    if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = WORKERS }) != BATCH_OK) return 1;
    for (int i = 0; i < JOBS; i++)
        if (!workflow_create(&jobs[i], i)) return 1;

    printf("batch of %d workflow jobs, at most %d at once, %d retries, timeout %llu ms per job\n", JOBS, LIMIT,
           MAX_RETRIES, JOB_TIMEOUT_NS / 1000000);
    batch_stats all = run_batch(pool, jobs, JOBS, LIMIT, 1);
    int want_failed = 0, want_completed = 0;
    for (int i = 0; i < JOBS; i++) {
        check_job(&jobs[i]);
        char want[96];
        expected_output(&jobs[i], want, sizeof want);
        if (!jobs[i].slow) { want_failed += !want[0]; want_completed += !!want[0]; }
    }
    check(all.total == JOBS && all.completed == want_completed && all.failed == want_failed && all.timed_out == 1 &&
          all.completed + all.failed + all.timed_out == all.total, "batch statistics add up");
    check(all.result == BATCH_PARTIAL, "the batch is a partial success");
    check(all.peak <= LIMIT && all.lib_peak <= LIMIT, "never more than 10 jobs at once");
    /* slot order by level: jobs wait for a slot in the order the pool dequeued them (priority) */
    printf("  slot order, mean rank by level:");
    for (int l = BATCH_PRIORITY_CRITICAL; l <= BATCH_PRIORITY_BACKGROUND; l++) {
        double sum = 0;
        int n = 0;
        for (int i = 0; i < JOBS; i++)
            if (priority_level(jobs[i].priority) == (batch_priority)l) { sum += jobs[i].start_rank; n++; }
        if (n) printf(" %s %.1f (%d jobs)", LEVEL[l], sum / n, n);
    }
    printf("\n\n");

    printf("one job alone\n");
    batch_stats one = run_batch(pool, &jobs[2], 1, LIMIT, 1);
    check_job(&jobs[2]);
    check(one.total == 1 && one.completed == 1 && one.peak == 1 && one.result == BATCH_OK, "one job alone");

    printf("\n5 jobs, at most 3 at once\n");
    batch_stats five = run_batch(pool, &jobs[10], 5, 3, 1);
    for (int i = 10; i < 15; i++) check_job(&jobs[i]);
    check(five.total == 5 && five.completed == 5 && five.peak <= 3 && five.lib_peak <= 3, "5 jobs with limit 3");

    printf("\nan empty batch\n");
    uint64_t t0 = batch_now_ns();
    batch_stats none = run_batch(pool, NULL, 0, LIMIT, 1);
    double empty_ms = (double)(batch_now_ns() - t0) / 1e6;
    check(none.result == BATCH_OK && none.total == 0 && none.completed == 0 && none.failed == 0 && none.peak == 0 &&
          none.avg_ms == 0 && empty_ms < 1000, "an empty batch returns at once with empty stats");

    for (int i = 0; i < JOBS; i++) batch_graph_destroy(jobs[i].g);
    batch_pool_destroy(pool);
    printf("\n%s\n", failures ? "SOME CHECKS FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
