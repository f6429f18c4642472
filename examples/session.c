/* session.c - scenario C: a parallel agent session on a learning canvas.

   A session has an id, a canvas path and groups; each group is one agent type and a list of
   nodes. A session must be "pending" to start, becomes "running" and ends "completed",
   "partial_failure", "failed" or "cancelled". All nodes are tasks of one graph run:

   - at most 12 nodes run at once (batch_run_desc.max_concurrency). Agent nodes wait on a model,
     not on the CPU (a sleep stands in for the call), so the pool has 16 threads on any machine
     and the concurrency limit, not the core count, is what bounds the session;
   - nodes are independent and the policy is CONTINUE, so one node's failure never interrupts the
     others; the failed node keeps error_message (batch_ctx_fail) and error_type (from its code);
   - each group ends in a barrier task (no function): when every node of the group completed,
     the library reports GROUP_COMPLETED. A failed node SKIPS its group's barrier (dependents of
     a failure are skipped), so for such a group this program reports group_completed itself
     once the last node settled;
   - progress events from the run's progress callback: progress_update (every 50 ms here, 500 ms
     in production), task_completed, task_failed, group_completed, session_completed, cancelled.
     The periodic tick is taken by a thread that settles a task, so nodes much longer than the
     interval get their progress_update when one of them ends, not on the clock;
   - after each successful node a "memory write" is submitted to the pool, fire-and-forget: at
     BACKGROUND priority, counted by its own counter that nobody waits on before the session
     has finished. One write in five fails; failures are logged and counted and change nothing.

   The session runs twice: once to the end with one failing node (partial_failure); then a fresh
   session that is cancelled half-way (batch_job_cancel from the progress callback, as a cancel
   request would): running nodes finish, the nodes that never started are reported CANCELLED,
   with the number completed before the cancel. Exit status 0 only if every check passes. */
#define _POSIX_C_SOURCE 200809L   /* nanosleep under -std=c11 */
#define BATCH_IMPLEMENTATION
#include "batch.h"
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define WORKERS 16          /* threads: nodes sleep, so more threads than cores */
#define MAX_CONCURRENT 12   /* nodes of one session running at once */
#define PROGRESS_MS 50      /* progress_update interval (500 ms in production) */
#define MAX_NODES 64
#define MAX_GROUPS 8

static void sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {}   /* resumes after a signal */
}

/* error codes of a node and their error_type */
enum { ERR_TIMEOUT = 1, ERR_VALIDATION = 2, ERR_TOOL = 3 };
static const char* error_type(int code) {
    switch (code) {
        case 0: return "";
        case ERR_TIMEOUT: return "AgentTimeout";
        case ERR_VALIDATION: return "ValidationError";
        case ERR_TOOL: return "ToolError";
        default: return "UnknownError";
    }
}

typedef enum { S_PENDING, S_RUNNING, S_COMPLETED, S_PARTIAL_FAILURE, S_FAILED, S_CANCELLED } session_status;
static const char* const STATUS[] = { "pending", "running", "completed", "partial_failure", "failed", "cancelled" };

typedef struct group_def { const char* id; const char* agent; const char* prefix; int nodes; } group_def;
static const group_def GROUPS[] = {
    { "g-research", "researcher", "r", 10 },
    { "g-summary", "summariser", "s", 10 },
    { "g-quiz", "quiz_maker", "q", 8 },
    { "g-links", "linker", "l", 8 },
};
#define NGROUPS ((int)(sizeof GROUPS / sizeof GROUPS[0]))

/* The fire-and-forget side effects of one session. Lives until after the pool is destroyed. */
typedef struct memory_store {
    batch_counter pending;      /* writes not finished; the session never waits on it */
    atomic_int submitted, ok, failed;
    atomic_size_t bytes;
} memory_store;

struct session;
typedef struct node {
    char id[16];
    int index, group, work_ms, fails;
    struct session* s;
    batch_task task;
    /* results */
    char path[160];
    size_t size;
    char content[4096];         /* what the agent wrote */
} node;

typedef struct group_state {
    batch_task barrier;
    int size;
    int settled, failed;        /* touched by the progress callback only (calls never overlap) */
} group_state;

typedef struct session {
    char id[32], canvas[128];
    session_status status;
    node nodes[MAX_NODES];
    int nnodes;
    group_state groups[MAX_GROUPS];
    node* by_task[MAX_NODES + MAX_GROUPS + 1];      /* graph task id -> node (NULL: a barrier) */
    int group_by_task[MAX_NODES + MAX_GROUPS + 1];  /* graph task id -> group of a barrier */
    batch_graph* graph;
    _Atomic(batch_job*) job;    /* set once launch returned; the callback may need it before */
    atomic_int cancel_wanted;
    memory_store* memory;
    int cancel_at;              /* cancel once this many nodes completed; 0: never */
    atomic_int running, peak;   /* nodes running now / most at once (measured by the nodes) */
    atomic_int completed, failed;
    atomic_int completed_before_cancel, failed_before_cancel, progress_updates, groups_reported;
    batch_job_summary summary;
} session;

/* ---- the side effect ------------------------------------------------------------------------- */
static void memory_write(batch_pool* pool, void* user) {
    (void)pool;
    node* n = (node*)user;
    memory_store* m = n->s->memory;
    sleep_ms(5 + (n->index % 3) * 5);   /* an embedding and a store call */
    if (n->index % 5 == 4) {
        atomic_fetch_add(&m->failed, 1);
        printf("    [memory] write for %s failed: vector store rejected the embedding (logged, ignored)\n", n->id);
        return;
    }
    atomic_fetch_add(&m->ok, 1);
    atomic_fetch_add(&m->bytes, n->size);
}

/* ---- a node ---------------------------------------------------------------------------------- */
/* The agent "thinks" for work_ms, then writes a small markdown document. It does not poll
   batch_ctx_should_stop: a node that has started finishes even if the session is cancelled. */
static int run_node(batch_ctx* ctx, void* user) {
    node* n = (node*)user;
    session* s = n->s;
    int now = atomic_fetch_add(&s->running, 1) + 1;
    int peak = atomic_load(&s->peak);
    while (now > peak && !atomic_compare_exchange_weak(&s->peak, &peak, now)) {}

    sleep_ms(n->work_ms);
    int rc = 0;
    if (n->fails) {
        rc = batch_ctx_fail(ctx, ERR_VALIDATION, "%s: the quiz has 0 questions (agent returned an empty list)", n->id);
    } else {
        const group_def* g = &GROUPS[n->group];
        size_t cap = sizeof n->content, len = 0;
        int w = snprintf(n->content, cap, "# %s output for %s\n\n", g->agent, n->id);
        if (w > 0) len = (size_t)w;
        int lines = 10 + (n->index * 7) % 40;
        for (int k = 0; k < lines && len < cap; k++) {
            w = snprintf(n->content + len, cap - len, "- point %d of %s: topic %d\n", k + 1, n->id, (n->index * 31 + k) % 97);
            if (w < 0) break;
            len += (size_t)w;
        }
        n->size = len < cap ? len : cap - 1;
        snprintf(n->path, sizeof n->path, "out/%s/%s/%s.md", s->id, g->id, n->id);
        /* fire and forget: the node neither waits for the write nor sees its outcome */
        memory_store* m = s->memory;
        atomic_fetch_add(&m->submitted, 1);
        if (batch_pool_submit(batch_ctx_pool(ctx), &(batch_work){ .fn = memory_write, .user_data = n,
                                  .counter = &m->pending, .priority = BATCH_PRIORITY_BACKGROUND }) != BATCH_OK) {
            atomic_fetch_add(&m->failed, 1);
            printf("    [memory] write for %s could not be queued (logged, ignored)\n", n->id);
        }
    }
    atomic_fetch_sub(&s->running, 1);
    return rc;
}

/* ---- progress events ------------------------------------------------------------------------- */
static void request_cancel(session* s) {
    atomic_store(&s->cancel_wanted, 1);
    batch_job* job = atomic_load(&s->job);
    if (job) batch_job_cancel(job);   /* else the launcher cancels as soon as it has the job */
}

/* A node settled: count it in its group; a group with a failure has its barrier skipped, so
   its group_completed comes from here. */
static void node_settled(session* s, const node* n, int failed) {
    group_state* g = &s->groups[n->group];
    g->settled++;
    g->failed += failed;
    if (g->settled == g->size && g->failed) {
        atomic_fetch_add(&s->groups_reported, 1);
        printf("  group_completed  %-10s %d/%d completed, %d failed\n", GROUPS[n->group].id,
               g->size - g->failed, g->size, g->failed);
    }
}

static void on_event(batch_event ev, const batch_progress* p, const batch_event_info* info, void* user) {
    session* s = (session*)user;
    node* n = info->task_id && info->task_id <= (uint32_t)(s->nnodes + NGROUPS) ? s->by_task[info->task_id] : NULL;
    int done = atomic_load(&s->completed), failed = atomic_load(&s->failed);
    switch (ev) {
        case BATCH_EVENT_PROGRESS:
            atomic_fetch_add(&s->progress_updates, 1);
            printf("  progress_update  %5.1f%%  %d/%d completed, %d failed, %d running  (%.3f s)\n",
                   100.0 * done / s->nnodes, done, s->nnodes, failed, atomic_load(&s->running), p->elapsed_s);
            break;
        case BATCH_EVENT_TASK_COMPLETED:
            if (!n) break;
            done = atomic_fetch_add(&s->completed, 1) + 1;
            printf("  task_completed   %-5s %-11s %4zu bytes\n", n->id, GROUPS[n->group].agent, n->size);
            node_settled(s, n, 0);
            if (s->cancel_at && done == s->cancel_at) {
                atomic_store(&s->completed_before_cancel, done);
                atomic_store(&s->failed_before_cancel, failed);
                printf("  -- cancel requested after %d/%d nodes completed\n", done, s->nnodes);
                request_cancel(s);
            }
            break;
        case BATCH_EVENT_TASK_FAILED:
            if (!n) break;
            atomic_fetch_add(&s->failed, 1);
            printf("  task_failed      %-5s %-11s %s (code %d)\n", n->id, GROUPS[n->group].agent, error_type(info->error), info->error);
            node_settled(s, n, 1);
            break;
        case BATCH_EVENT_GROUP_COMPLETED: {
            int g = s->group_by_task[info->task_id];
            atomic_fetch_add(&s->groups_reported, 1);
            printf("  group_completed  %-10s %d/%d completed\n", GROUPS[g].id, s->groups[g].size, s->groups[g].size);
            break;
        }
        case BATCH_EVENT_JOB_COMPLETED:
            printf("  session_completed  %d completed, %d failed\n", done, failed);
            break;
        case BATCH_EVENT_JOB_CANCELLED:
            printf("  cancelled  %d completed, %d failed, %d never started\n", done, failed, s->nnodes - done - failed);
            break;
        default:
            break;
    }
}

/* ---- the session ----------------------------------------------------------------------------- */
static int session_create(session* s, const char* id, const char* canvas, memory_store* memory, int fail_node) {
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->canvas, sizeof s->canvas, "%s", canvas);
    s->memory = memory;
    s->status = S_PENDING;
    if (batch_graph_create(&s->graph, &(batch_graph_desc){ .name = id }) != BATCH_OK) return 0;
    for (int g = 0; g < NGROUPS; g++) {
        for (int k = 0; k < GROUPS[g].nodes; k++) {
            node* n = &s->nodes[s->nnodes];
            snprintf(n->id, sizeof n->id, "%s-%02d", GROUPS[g].prefix, k + 1);
            n->index = s->nnodes;
            n->group = g;
            n->work_ms = 30 + (n->index * 17) % 41;   /* 30..70 ms */
            n->fails = n->index == fail_node;
            n->s = s;
            if (batch_graph_add(s->graph, &(batch_task_desc){ .fn = run_node, .user_data = n, .name = n->id },
                                &n->task) != BATCH_OK) return 0;
            s->by_task[n->task.id] = n;
            s->nnodes++;
        }
    }
    /* one barrier per group, after every node of the group */
    for (int g = 0, first = 0; g < NGROUPS; first += GROUPS[g].nodes, g++) {
        batch_task members[MAX_NODES];
        for (int k = 0; k < GROUPS[g].nodes; k++) members[k] = s->nodes[first + k].task;
        char name[48];
        snprintf(name, sizeof name, "group:%s", GROUPS[g].id);
        if (batch_graph_add(s->graph, &(batch_task_desc){ .fn = NULL, .name = name }, &s->groups[g].barrier) != BATCH_OK ||
            batch_task_precede_n(s->graph, members, (size_t)GROUPS[g].nodes, &s->groups[g].barrier, 1) != BATCH_OK)
            return 0;
        s->groups[g].size = GROUPS[g].nodes;
        s->group_by_task[s->groups[g].barrier.id] = g;
    }
    return batch_graph_validate(s->graph, NULL, 0) == BATCH_OK;
}

/* Runs a pending session to its end. Returns 0 if it was not pending (nothing happens). */
static int session_run(session* s, batch_pool* pool) {
    if (s->status != S_PENDING) return 0;
    printf("session %s (%s): %d nodes in %d groups, pending -> running\n", s->id, s->canvas, s->nnodes, NGROUPS);
    s->status = S_RUNNING;
    batch_job* job;
    batch_result r = batch_graph_launch(pool, s->graph, &(batch_run_desc){
        .policy = BATCH_POLICY_CONTINUE, .max_concurrency = MAX_CONCURRENT,
        .progress = { .fn = on_event, .user_data = s, .interval_ms = PROGRESS_MS,
                      .events = BATCH_EVENTS_DEFAULT | BATCH_EVENT_BIT(BATCH_EVENT_TASK_COMPLETED) } }, &job);
    if (r != BATCH_OK) {
        printf("launch failed: %s\n", batch_result_string(r));
        s->status = S_FAILED;
        return 1;
    }
    atomic_store(&s->job, job);
    if (atomic_load(&s->cancel_wanted)) batch_job_cancel(job);   /* asked before we had the job */
    batch_job_wait(job, &s->summary);
    atomic_store(&s->job, NULL);
    batch_job_destroy(job);

    int completed = 0, failed = 0;
    for (int i = 0; i < s->nnodes; i++) {
        batch_task_info info;
        batch_graph_task_info(s->graph, s->nodes[i].task, &info);
        completed += info.status == BATCH_TASK_COMPLETED;
        failed += info.status == BATCH_TASK_FAILED;
    }
    if (s->summary.status == BATCH_JOB_CANCELLED) s->status = S_CANCELLED;
    else if (!failed) s->status = S_COMPLETED;
    else if (!completed) s->status = S_FAILED;
    else s->status = S_PARTIAL_FAILURE;
    printf("session %s: running -> %s\n", s->id, STATUS[s->status]);
    return 1;
}

typedef struct metrics {
    int completed, failed, cancelled, ran;
    double total_s, node_sum_s, avg_s, efficiency, utilisation;
} metrics;

/* Per-node results (printed when `table`) and the session metrics. */
static metrics session_results(const session* s, int table) {
    metrics m;
    memset(&m, 0, sizeof m);
    if (table) printf("  %-5s %-11s %-10s %5s %6s  %s\n", "node", "agent", "status", "ms", "bytes", "output path / error");
    for (int i = 0; i < s->nnodes; i++) {
        const node* n = &s->nodes[i];
        batch_task_info info;
        batch_graph_task_info(s->graph, n->task, &info);
        double ms = info.attempts ? (double)(info.end_ns - info.start_ns) / 1e6 : 0;
        if (info.attempts) { m.ran++; m.node_sum_s += ms / 1e3; }
        m.completed += info.status == BATCH_TASK_COMPLETED;
        m.failed += info.status == BATCH_TASK_FAILED;
        m.cancelled += info.status == BATCH_TASK_CANCELLED;
        if (!table) continue;
        if (info.status == BATCH_TASK_COMPLETED)
            printf("  %-5s %-11s %-10s %5.0f %6zu  %s\n", n->id, GROUPS[n->group].agent, "completed", ms, n->size, n->path);
        else
            printf("  %-5s %-11s %-10s %5.0f %6s  %s%s%s\n", n->id, GROUPS[n->group].agent,
                   batch_task_status_string(info.status), ms, "-", error_type(info.error), info.message ? ": " : "",
                   info.message ? info.message : "");
    }
    m.total_s = (double)s->summary.wall_ns / 1e9;
    m.avg_s = m.ran ? m.node_sum_s / m.ran : 0;
    m.efficiency = m.total_s > 0 ? m.node_sum_s / m.total_s : 0;
    m.utilisation = m.efficiency / MAX_CONCURRENT;
    printf("  total_duration_seconds %.3f, average_duration_per_node %.3f s, peak_concurrent %d "
           "(library: %llu, barriers included)\n", m.total_s, m.avg_s, atomic_load(&s->peak),
           (unsigned long long)s->summary.peak_concurrency);
    printf("  parallel_efficiency %.2f (sequential estimate %.3f s = sum of node run times, / actual %.3f s); "
           "that is %.0f%% of the %d slots\n", m.efficiency, m.node_sum_s, m.total_s, 100.0 * m.utilisation, MAX_CONCURRENT);
    return m;
}

static int failures;
static void check(int ok, const char* what) {
    if (!ok) { failures++; printf("CHECK FAILED: %s\n", what); }
}

/* Expected failing memory writes: one per completed node whose index % 5 == 4. */
static int expected_memory_failures(const session* s) {
    int n = 0;
    for (int i = 0; i < s->nnodes; i++) {
        batch_task_info info;
        batch_graph_task_info(s->graph, s->nodes[i].task, &info);
        n += info.status == BATCH_TASK_COMPLETED && s->nodes[i].index % 5 == 4;
    }
    return n;
}

/* After the session has ended: how many writes were still running, then wait for them (only to
   print their final tally; batch_pool_destroy would finish them anyway). */
static void memory_report(session* s) {
    memory_store* m = s->memory;
    printf("  memory writes when the session ended: %d submitted, %llu still pending (not waited for)\n",
           atomic_load(&m->submitted), (unsigned long long)batch_counter_value(&m->pending));
    batch_counter_wait(&m->pending);
    printf("  memory writes finally: %d ok (%zu bytes), %d failed - logged, session stays %s\n",
           atomic_load(&m->ok), atomic_load(&m->bytes), atomic_load(&m->failed), STATUS[s->status]);
    check(atomic_load(&m->ok) + atomic_load(&m->failed) == atomic_load(&m->submitted), "every memory write finished");
    check(atomic_load(&m->failed) == expected_memory_failures(s), "memory write failures counted");
}

static session first, second;   /* large (node outputs): static */

int main(void) {
    batch_pool* pool;
    if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = WORKERS }) != BATCH_OK) return 1;
    memory_store mem1, mem2;
    memset(&mem1, 0, sizeof mem1);
    memset(&mem2, 0, sizeof mem2);
    batch_counter_init(&mem1.pending, pool);
    batch_counter_init(&mem2.pending, pool);

    /* 1. to the end: q-04 (node 23) fails; everything else completes */
    const int fail_node = 23;
    if (!session_create(&first, "sess-1", "canvases/biology-101.canvas", &mem1, fail_node)) return 1;
    session_run(&first, pool);
    metrics m1 = session_results(&first, 1);
    memory_report(&first);
    const node* bad = &first.nodes[fail_node];
    batch_task_info bi;
    batch_graph_task_info(first.graph, bad->task, &bi);
    printf("  failed node %s: error_type %s, error_message \"%s\"\n", bad->id, error_type(bi.error),
           bi.message ? bi.message : "");
    check(first.status == S_PARTIAL_FAILURE, "session 1 ends partial_failure");
    check(m1.completed == first.nnodes - 1 && m1.failed == 1 && m1.cancelled == 0, "session 1: all but one node completed");
    check(bi.status == BATCH_TASK_FAILED && bi.error == ERR_VALIDATION && bi.message && strstr(bi.message, bad->id),
          "the failed node keeps error_type and error_message");
    check(atomic_load(&first.groups_reported) == NGROUPS, "a group_completed per group");
    check(atomic_load(&first.peak) <= MAX_CONCURRENT && first.summary.peak_concurrency <= MAX_CONCURRENT,
          "at most 12 nodes at once");
    for (int i = 0; i < first.nnodes; i++)
        if (i != fail_node) check(first.nodes[i].size > 0 && first.nodes[i].path[0], "every completed node has an output");
    check(!session_run(&first, pool), "a session that is not pending does not start");
    printf("  restart of %s refused: it is %s, not pending\n\n", first.id, STATUS[first.status]);

    /* 2. the same session layout, cancelled once half of the nodes completed */
    if (!session_create(&second, "sess-2", "canvases/biology-101.canvas", &mem2, fail_node)) return 1;
    second.cancel_at = second.nnodes / 2;
    session_run(&second, pool);
    metrics m2 = session_results(&second, 0);
    int before = atomic_load(&second.completed_before_cancel), failed_before = atomic_load(&second.failed_before_cancel);
    printf("  completed before the cancel: %d (%d failed); running then, finished after: %d completed, %d failed; "
           "never run (CANCELLED): %d\n", before, failed_before, m2.completed - before, m2.failed - failed_before,
           m2.cancelled);
    printf("  never run:");
    for (int i = 0; i < second.nnodes; i++) {
        batch_task_info info;
        batch_graph_task_info(second.graph, second.nodes[i].task, &info);
        if (info.status == BATCH_TASK_CANCELLED) printf(" %s", second.nodes[i].id);
        check(info.status != BATCH_TASK_CANCELLED || info.attempts == 0, "a cancelled node never started");
    }
    printf("\n");
    memory_report(&second);
    check(second.status == S_CANCELLED, "session 2 ends cancelled");
    check(before == second.nnodes / 2 && m2.completed >= before, "completed count before the cancel");
    check(m2.cancelled > 0, "nodes not started at the cancel never run");
    check(m2.completed + m2.failed + m2.cancelled == second.nnodes, "node counts add up");
    check(atomic_load(&second.peak) <= MAX_CONCURRENT, "at most 12 nodes at once (cancelled run)");

    batch_graph_destroy(first.graph);
    batch_graph_destroy(second.graph);
    batch_pool_destroy(pool);   /* drains anything still queued; the memory stores outlive it */
    printf("%s\n", failures ? "SOME CHECKS FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
