/* dag_check.h - random job graphs and the invariants every run must keep. Shared by the suite
   (test_graph.c) and the seeded stress program (stress.c). The includer provides test.h
   (CHECK, test_rand) and batch.h.

   rd_run builds a random DAG (edges only from lower to higher index), runs it on the given pool
   and checks:
   - no attempt starts before every predecessor finished (done flags read at the start, and
     atomic stamps compared afterwards: a predecessor's end < the task's first start);
   - each task runs at most once per attempt: attempts are numbered 0, 1, ... in sequence and
     never overlap (an `active` flag per task);
   - completed + failed + skipped + cancelled == total, and each count matches the per-task
     statuses; retries add up;
   - a task that ran had all its predecessors completed; a SKIPPED task never ran and has a
     FAILED or SKIPPED predecessor; a task after a FAILED or SKIPPED one did not run;
   - under CONTINUE without cancel, every status is exactly determined: SKIPPED is exactly the
     transitive dependents of the failed tasks (and a re-run gives the same outcome);
   - the concurrency limit is never exceeded; nothing runs after wait returned. */
#ifndef BATCH_DAG_CHECK_H
#define BATCH_DAG_CHECK_H
#include <stdatomic.h>

typedef struct rd_node {
    _Atomic int runs;           /* attempts that started */
    _Atomic int active;         /* attempts running now (must stay <= 1) */
    _Atomic int done;           /* final attempt finished */
    _Alignas(8) _Atomic uint64_t first_start, end;   /* stamps from rd_graph.clock (0: never) */
    int fail_attempts;          /* fail this many attempts first */
    int retries;
    struct rd_graph* G;
    int idx;
} rd_node;
typedef struct rd_graph {
    int n;
    rd_node* nodes;
    int* pred_off; int* preds; /* reference adjacency */
    _Alignas(8) _Atomic uint64_t clock;    /* stamps: start and end of every attempt */
    _Atomic int order_violation;
    _Atomic int overlap;       /* two attempts of one task at once */
    _Atomic int running, peak;
    _Atomic int after_wait;    /* set once wait returned: nothing may run after */
    _Atomic int ran_after;
} rd_graph;

static int rd_task(batch_ctx* ctx, void* u) {
    rd_node* nd = (rd_node*)u;
    rd_graph* G = nd->G;
    if (atomic_load(&G->after_wait)) atomic_store(&G->ran_after, 1);
    if (atomic_fetch_add(&nd->active, 1) != 0) atomic_store(&G->overlap, 1);
    uint64_t stamp = atomic_fetch_add(&G->clock, 1) + 1;
    int r = atomic_fetch_add(&G->running, 1) + 1;
    int pk = atomic_load(&G->peak);
    while (r > pk && !atomic_compare_exchange_weak(&G->peak, &pk, r)) {}
    for (int k = G->pred_off[nd->idx]; k < G->pred_off[nd->idx + 1]; k++)
        if (!atomic_load(&G->nodes[G->preds[k]].done)) atomic_store(&G->order_violation, 1);
    int attempt = atomic_fetch_add(&nd->runs, 1);
    CHECK_EQ(attempt, batch_ctx_attempt(ctx));
    if (attempt == 0) atomic_store(&nd->first_start, stamp);
    int fail = attempt < nd->fail_attempts;
    atomic_fetch_sub(&G->running, 1);
    if (!fail) {
        atomic_store(&nd->end, atomic_fetch_add(&G->clock, 1) + 1);
        atomic_store(&nd->done, 1);
    }
    atomic_fetch_sub(&nd->active, 1);
    if (fail) return batch_ctx_fail(ctx, 7, "node %d attempt %d", nd->idx, attempt);
    return 0;
}

typedef struct rd_opts {
    int fail_pct;       /* tasks that fail their first 1..4 attempts */
    int retry_pct;      /* tasks with 1..3 retries */
    int max_conc;       /* 0: no limit */
    int fail_fast;
    int cancel;         /* cancel after a random spin of up to cancel_max_ns (0: 200 us) */
    int max_nodes;      /* 0: 200 */
    uint64_t cancel_max_ns;
    int hubs;           /* this many wide tasks (to about half the later tasks) and as many
                           tasks with many predecessors (from about half the earlier ones) */
} rd_opts;

static void rd_reset_runs(rd_graph* G) {
    atomic_store(&G->after_wait, 0);
    for (int i = 0; i < G->n; i++) {
        rd_node* nd = &G->nodes[i];
        atomic_store(&nd->runs, 0); atomic_store(&nd->done, 0);
        atomic_store(&nd->first_start, 0); atomic_store(&nd->end, 0);
    }
}

/* The checks that hold for every run, whatever the policy and however it was cancelled. */
static void rd_check_order(rd_graph* G, batch_graph* g, const batch_task* t) {
    CHECK_EQ(atomic_load(&G->order_violation), 0);
    CHECK_EQ(atomic_load(&G->overlap), 0);
    for (int i = 0; i < G->n; i++) {
        batch_task_info info;
        CHECK_OK(batch_graph_task_info(g, t[i], &info));
        uint64_t first = atomic_load(&G->nodes[i].first_start);
        int ran = info.status == BATCH_TASK_COMPLETED || info.status == BATCH_TASK_FAILED;
        int bad_pred = 0;
        for (int k = G->pred_off[i]; k < G->pred_off[i + 1]; k++) {
            int p = G->preds[k];
            batch_task_info pi;
            CHECK_OK(batch_graph_task_info(g, t[p], &pi));
            if (first) {   /* it started: after the predecessor's end */
                uint64_t pe = atomic_load(&G->nodes[p].end);
                CHECK(pe != 0 && pe < first);
            }
            if (ran) CHECK_EQ((int)pi.status, BATCH_TASK_COMPLETED);
            if (pi.status == BATCH_TASK_FAILED || pi.status == BATCH_TASK_SKIPPED) bad_pred = 1;
        }
        if (info.status == BATCH_TASK_SKIPPED) CHECK(bad_pred);
        if (bad_pred) CHECK(info.status == BATCH_TASK_SKIPPED || info.status == BATCH_TASK_CANCELLED);
    }
}

/* Builds a random DAG, runs it on p with the options, checks everything above. */
static void rd_run_on(batch_pool* p, uint64_t* rng, rd_opts o) {
    int n = 1 + (int)(test_rand(rng) % (uint64_t)(o.max_nodes > 0 ? o.max_nodes : 200));
    rd_graph G;
    memset(&G, 0, sizeof G);
    G.n = n;
    G.nodes = (rd_node*)calloc((size_t)n, sizeof(rd_node));
    batch_graph* g = NULL;
    CHECK_OK(batch_graph_create(&g, NULL));
    batch_task* t = (batch_task*)malloc((size_t)n * sizeof *t);
    for (int i = 0; i < n; i++) {
        rd_node* nd = &G.nodes[i];
        nd->G = &G;
        nd->idx = i;
        nd->retries = (int)(test_rand(rng) % 100) < o.retry_pct ? 1 + (int)(test_rand(rng) % 3) : 0;
        nd->fail_attempts = (int)(test_rand(rng) % 100) < o.fail_pct ? 1 + (int)(test_rand(rng) % 4) : 0;
        CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = rd_task, .user_data = nd, .max_retries = nd->retries,
                                                         .retry_base_ns = 1000, .retry_max_ns = 50000,
                                                         .priority = (batch_priority)(test_rand(rng) % 6) }, &t[i]));
    }
    /* edges only from lower to higher index: acyclic */
    int m = n > 1 ? (int)(test_rand(rng) % (size_t)(3 * n)) : 0;
    size_t cap = (size_t)m + 1 + (n > 1 ? 2 * (size_t)o.hubs * (size_t)n : 0);
    int* ea = (int*)malloc(cap * sizeof(int));
    int* eb = (int*)malloc(cap * sizeof(int));
    for (int k = 0; k < m; k++) {
        int a = (int)(test_rand(rng) % (uint64_t)(n - 1));
        int b = a + 1 + (int)(test_rand(rng) % (uint64_t)(n - a - 1));
        ea[k] = a; eb[k] = b;
        CHECK_OK(batch_task_precede(g, t[a], t[b]));
    }
    for (int h = 0; n > 1 && h < o.hubs; h++) {
        int a = (int)(test_rand(rng) % (uint64_t)(n / 4 + 1));   /* early: many tasks after it */
        for (int b = a + 1; b < n; b++)
            if (test_rand(rng) & 1) { ea[m] = a; eb[m] = b; m++; CHECK_OK(batch_task_precede(g, t[a], t[b])); }
        int b = n - 1 - (int)(test_rand(rng) % (uint64_t)(n / 4 + 1));   /* late: many before it */
        for (a = 0; a < b; a++)
            if (test_rand(rng) & 1) { ea[m] = a; eb[m] = b; m++; CHECK_OK(batch_task_precede(g, t[a], t[b])); }
    }
    /* reference predecessor lists (duplicates harmless) */
    G.pred_off = (int*)calloc((size_t)n + 1, sizeof(int));
    G.preds = (int*)malloc(((size_t)m + 1) * sizeof(int));
    for (int k = 0; k < m; k++) G.pred_off[eb[k] + 1]++;
    for (int i = 0; i < n; i++) G.pred_off[i + 1] += G.pred_off[i];
    int* fill = (int*)malloc(((size_t)n + 1) * sizeof(int));
    memcpy(fill, G.pred_off, (size_t)n * sizeof(int));
    for (int k = 0; k < m; k++) G.preds[fill[eb[k]]++] = ea[k];
    free(fill);

    batch_job* job;
    CHECK_OK(batch_graph_launch(p, g, &(batch_run_desc){ .policy = o.fail_fast ? BATCH_POLICY_FAIL_FAST : BATCH_POLICY_CONTINUE,
                                                         .max_concurrency = o.max_conc }, &job));
    if (o.cancel) {
        uint64_t spin = test_rand(rng) % (o.cancel_max_ns ? o.cancel_max_ns : 200000);
        uint64_t t0 = batch_now_ns();
        while (batch_now_ns() - t0 < spin) {}
        CHECK_OK(batch_job_cancel(job));
    }
    batch_job_summary s;
    batch_result r = batch_job_wait(job, &s);
    atomic_store(&G.after_wait, 1);
    rd_check_order(&G, g, t);
    CHECK_EQ(s.total, (uint64_t)n);
    CHECK_EQ(s.completed + s.failed + s.skipped + s.cancelled, s.total);
    if (o.max_conc) CHECK(atomic_load(&G.peak) <= o.max_conc);
    /* expected outcome per node, computed in topological (index) order */
    int* want = (int*)malloc((size_t)n * sizeof(int));
    uint64_t c_completed = 0, c_failed = 0, c_skipped = 0, c_cancelled = 0, c_retries = 0;
    for (int i = 0; i < n; i++) {
        batch_task_info info;
        CHECK_OK(batch_graph_task_info(g, t[i], &info));
        rd_node* nd = &G.nodes[i];
        int runs = atomic_load(&nd->runs);
        CHECK_EQ(runs, info.attempts);
        if (info.attempts) c_retries += (uint64_t)info.attempts - 1;
        switch (info.status) {
            case BATCH_TASK_COMPLETED: c_completed++; CHECK(atomic_load(&nd->done)); CHECK_EQ(runs, nd->fail_attempts + 1); break;
            case BATCH_TASK_FAILED: c_failed++; CHECK_EQ(info.error, 7); CHECK(info.message != NULL);
                CHECK(runs >= 1 && runs <= nd->retries + 1);
                if (!o.fail_fast && !o.cancel) CHECK_EQ(runs, nd->retries + 1);
                break;
            case BATCH_TASK_SKIPPED: c_skipped++; CHECK_EQ(runs, 0); break;
            case BATCH_TASK_CANCELLED: c_cancelled++; break;
            default: CHECK(0);
        }
        if (!o.fail_fast && !o.cancel) {
            /* CONTINUE without cancel: exactly determined */
            int w = nd->fail_attempts > nd->retries ? BATCH_TASK_FAILED : BATCH_TASK_COMPLETED;
            for (int k = G.pred_off[i]; k < G.pred_off[i + 1]; k++)
                if (want[G.preds[k]] != BATCH_TASK_COMPLETED) w = BATCH_TASK_SKIPPED;
            want[i] = w;
            CHECK_EQ((int)info.status, w);
        }
        if (info.status == BATCH_TASK_CANCELLED) CHECK(runs == 0 || nd->fail_attempts > 0);
    }
    CHECK_EQ(c_completed, s.completed);
    CHECK_EQ(c_failed, s.failed);
    CHECK_EQ(c_skipped, s.skipped);
    CHECK_EQ(c_cancelled, s.cancelled);
    CHECK_EQ(c_retries, s.retries);
    if (o.fail_fast && s.failed) {
        if (o.cancel) CHECK(r == BATCH_ERR_FAILED || r == BATCH_ERR_CANCELLED);   /* whichever came first */
        else CHECK_EQ(r, BATCH_ERR_FAILED);
    }
    if (!o.cancel && !o.fail_fast) {
        if (s.failed || s.skipped) CHECK(r == BATCH_PARTIAL || (r == BATCH_ERR_FAILED && s.completed == 0));
        else CHECK_OK(r);
    }
    CHECK_OK(batch_job_destroy(job));
    CHECK_EQ(atomic_load(&G.ran_after), 0);
    if (!o.fail_fast && !o.cancel) {
        /* the same graph again: fresh state, the same (deterministic) outcome */
        rd_reset_runs(&G);
        batch_job_summary s2;
        CHECK_EQ(batch_graph_run(p, g, &(batch_run_desc){ .max_concurrency = o.max_conc, .no_task_times = 1 }, &s2), r);
        CHECK_EQ(s2.completed, s.completed);
        CHECK_EQ(s2.failed, s.failed);
        CHECK_EQ(s2.skipped, s.skipped);
        rd_check_order(&G, g, t);
        for (int i = 0; i < n; i++) {
            batch_task_info info;
            CHECK_OK(batch_graph_task_info(g, t[i], &info));
            CHECK_EQ((int)info.status, want[i]);
            CHECK_EQ(info.attempts, atomic_load(&G.nodes[i].runs));
        }
    }
    CHECK_OK(batch_graph_destroy(g));
    free(want); free(ea); free(eb); free(G.pred_off); free(G.preds); free(t); free(G.nodes);
}
#endif
