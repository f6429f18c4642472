/* feature_pipeline.c - scenario A: a test-analysis job as a graph of features.

   TEST_EXECUTION, COVERAGE_COLLECTION and FLAKY_DETECTION feed RESULT_AGGREGATION;
   INTENT_EXTRACTION feeds IMPACT_ANALYSIS; MIGRATION feeds VALIDATION. The job also runs as three
   parallel groups in sequence. Each feature does a little real work over a fake test suite and
   publishes its result; consumers read their producers' outputs (data flow). The flaky detector
   fails its first two attempts and succeeds on the third (retries with exponential backoff).

   Usage: feature_pipeline [groups] */
#define BATCH_IMPLEMENTATION
#include "batch.h"
#include <stdio.h>
#include <string.h>

enum { TEST_EXECUTION, COVERAGE_COLLECTION, FLAKY_DETECTION, INTENT_EXTRACTION, IMPACT_ANALYSIS,
       RESULT_AGGREGATION, MIGRATION, VALIDATION, FEATURES };
static const char* const NAMES[FEATURES] = {
    "TEST_EXECUTION", "COVERAGE_COLLECTION", "FLAKY_DETECTION", "INTENT_EXTRACTION",
    "IMPACT_ANALYSIS", "RESULT_AGGREGATION", "MIGRATION", "VALIDATION" };

#define TESTS 2000

typedef struct feature {
    int kind;
    long result;         /* what this feature publishes */
} feature;

/* A deterministic stand-in for "run test i": passes unless i is a multiple of 97. */
static int test_passes(int i) { return i % 97 != 0; }

static int run_feature(batch_ctx* ctx, void* user) {
    feature* f = (feature*)user;
    long acc = 0;
    switch (f->kind) {
        case TEST_EXECUTION:        /* count passing tests */
            for (int i = 0; i < TESTS; i++) acc += test_passes(i);
            break;
        case COVERAGE_COLLECTION:   /* covered lines: 7 per test */
            for (int i = 0; i < TESTS; i++) acc += 7;
            break;
        case FLAKY_DETECTION:       /* an unreliable detector: the first two attempts time out */
            if (batch_ctx_attempt(ctx) < 2)
                return batch_ctx_fail(ctx, 110, "detector timed out (attempt %d)", batch_ctx_attempt(ctx) + 1);
            for (int i = 0; i < TESTS; i++) acc += (i % 211 == 0);
            break;
        case INTENT_EXTRACTION:     /* intents: one per 50 tests */
            acc = TESTS / 50;
            break;
        case MIGRATION:             /* migrated records */
            acc = 1234;
            break;
        default: {                  /* consumers: combine what the producers published */
            for (size_t i = 0; i < batch_ctx_input_count(ctx); i++) {
                const long* in = (const long*)batch_ctx_input(ctx, i);
                if (in) acc += *in;   /* group barriers publish nothing */
            }
            break;
        }
    }
    f->result = acc;
    batch_ctx_set_output(ctx, &f->result);
    return 0;
}

int main(int argc, char** argv) {
    int groups = argc > 1 && !strcmp(argv[1], "groups");
    batch_pool* pool;
    batch_graph* g;
    if (batch_pool_create(&pool, &(batch_pool_desc){0}) != BATCH_OK) return 1;
    if (batch_graph_create(&g, &(batch_graph_desc){ .name = "features" }) != BATCH_OK) return 1;

    feature f[FEATURES];
    batch_task t[FEATURES];
    for (int i = 0; i < FEATURES; i++) {
        f[i].kind = i;
        f[i].result = 0;
        batch_graph_add(g, &(batch_task_desc){ .fn = run_feature, .user_data = &f[i], .name = NAMES[i],
                                                .max_retries = 3, .retry_base_ns = 10000000 /* 10 ms */ },
                        &t[i]);
    }
    batch_task producers[3] = { t[TEST_EXECUTION], t[COVERAGE_COLLECTION], t[FLAKY_DETECTION] };
    batch_task_precede_n(g, producers, 3, &t[RESULT_AGGREGATION], 1);
    batch_task_precede(g, t[INTENT_EXTRACTION], t[IMPACT_ANALYSIS]);
    batch_task_precede(g, t[MIGRATION], t[VALIDATION]);
    if (groups) {   /* [TEST, COVERAGE] -> [FLAKY, INTENT, IMPACT] -> [AGGREGATION, VALIDATION] */
        batch_task g1[] = { t[TEST_EXECUTION], t[COVERAGE_COLLECTION] };
        batch_task g2[] = { t[FLAKY_DETECTION], t[INTENT_EXTRACTION], t[IMPACT_ANALYSIS] };
        batch_task g3[] = { t[RESULT_AGGREGATION], t[VALIDATION] };
        batch_graph_join(g, g1, 2, g2, 3, NULL);
        batch_graph_join(g, g2, 3, g3, 2, NULL);
    }
    char msg[256];
    if (batch_graph_validate(g, msg, sizeof msg) != BATCH_OK) { fprintf(stderr, "%s\n", msg); return 1; }

    /* run it as a job: a progress bar on stderr while it runs, a report when it is done */
    batch_progress_bar_state bar = { 0, 0 };
    batch_job* job;
    if (batch_graph_launch(pool, g, &(batch_run_desc){ .max_concurrency = 4,
            .progress = { .fn = batch_progress_bar, .user_data = &bar, .interval_ms = 100 } }, &job) != BATCH_OK) return 1;
    batch_job_summary s;
    batch_result r = batch_job_wait(job, &s);
    batch_job_report_text(job, stdout);
    batch_job_destroy(job);

    printf("%-20s %-10s %8s %10s  %s\n", "feature", "status", "attempts", "ms", "result / last error");
    for (int i = 0; i < FEATURES; i++) {
        batch_task_info info;
        batch_graph_task_info(g, t[i], &info);
        printf("%-20s %-10s %8d %10.3f  %ld%s%s%s\n", info.name, batch_task_status_string(info.status), info.attempts,
               (double)(info.end_ns - info.start_ns) / 1e6, f[i].result,
               info.message ? "  (last error: " : "", info.message ? info.message : "", info.message ? ")" : "");
    }
    printf("Completed: %llu/%llu  (%s, %s)  retries %llu  wall %.1f ms  peak concurrency %llu\n",
           (unsigned long long)s.completed, (unsigned long long)s.total, batch_job_status_string(s.status),
           batch_result_string(r), (unsigned long long)s.retries, (double)s.wall_ns / 1e6,
           (unsigned long long)s.peak_concurrency);
    printf("aggregated: %ld (passing %ld + covered lines %ld + flaky %ld)\n", f[RESULT_AGGREGATION].result,
           f[TEST_EXECUTION].result, f[COVERAGE_COLLECTION].result, f[FLAKY_DETECTION].result);

    batch_graph_destroy(g);
    batch_pool_destroy(pool);
    return r == BATCH_OK && f[RESULT_AGGREGATION].result ==
           f[TEST_EXECUTION].result + f[COVERAGE_COLLECTION].result + f[FLAKY_DETECTION].result ? 0 : 1;
}
