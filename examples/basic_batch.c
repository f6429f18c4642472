/* basic_batch.c - scenario A at its simplest: a job of 10 independent tasks, each with a name
   and a feature type, run SEQUENTIAL (inline, one at a time, on this thread) or PARALLEL (a
   pool, at most 4 at once), then "Completed: x/y" with the per-task results and the results
   grouped by feature type.

   Usage: basic_batch [sequential|parallel]   (default: both) */
#define BATCH_IMPLEMENTATION
#include "batch.h"
#include <stdio.h>
#include <string.h>

enum { TEST_EXECUTION, COVERAGE_COLLECTION, VALIDATION, FEATURE_TYPES };
static const char* const FEATURE[FEATURE_TYPES] = { "TEST_EXECUTION", "COVERAGE_COLLECTION", "VALIDATION" };

typedef struct job_task {
    char name[32];
    int feature;
    int input;
    long output;
} job_task;

/* Real, small work (about a millisecond): the sum of the first `input` squares, checked against
   the closed form; task-05 "validates" a broken fixture (a multiple of 7) and fails. */
static int run_task(batch_ctx* ctx, void* user) {
    job_task* t = (job_task*)user;
    long sum = 0;
    for (long i = 1; i <= t->input; i++) sum += i * i;
    long want = (long)t->input * (t->input + 1) * (2L * t->input + 1) / 6;
    if (sum != want) return batch_ctx_fail(ctx, 1, "%s: arithmetic is broken", t->name);
    if (t->feature == VALIDATION && t->input % 7 == 0) return batch_ctx_fail(ctx, 2, "%s: fixture %d is invalid", t->name, t->input);
    t->output = sum;
    return 0;
}

static int run_job(const char* mode, int workers) {
    batch_pool* pool;
    batch_graph* g;
    if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = workers }) != BATCH_OK) return 1;
    batch_graph_create(&g, &(batch_graph_desc){ .name = "basic" });
    job_task tasks[10];
    batch_task handle[10];
    for (int i = 0; i < 10; i++) {
        snprintf(tasks[i].name, sizeof tasks[i].name, "task-%02d", i);
        tasks[i].feature = i % FEATURE_TYPES;
        tasks[i].input = 100000 * (i + 1);
        if (i == 5) tasks[i].input += 7 - tasks[i].input % 7;   /* task-05 gets a bad fixture */
        tasks[i].output = 0;
        batch_graph_add(g, &(batch_task_desc){ .fn = run_task, .user_data = &tasks[i], .name = tasks[i].name }, &handle[i]);
    }
    batch_job_summary s;
    batch_graph_run(pool, g, &(batch_run_desc){ .max_concurrency = 4 }, &s);

    printf("[%s] Completed: %llu/%llu (failed %llu) in %.3f ms, success rate %.0f%%\n", mode,
           (unsigned long long)s.completed, (unsigned long long)s.total, (unsigned long long)s.failed,
           (double)s.wall_ns / 1e6, 100.0 * (double)s.completed / (double)s.total);
    int per_type[FEATURE_TYPES][2] = { { 0, 0 } };
    for (int i = 0; i < 10; i++) {
        batch_task_info info;
        batch_graph_task_info(g, handle[i], &info);
        printf("  %-8s %-20s %-9s worker %2d  %ld%s%s\n", info.name, FEATURE[tasks[i].feature],
               batch_task_status_string(info.status), info.worker, tasks[i].output, info.message ? "  " : "",
               info.message ? info.message : "");
        per_type[tasks[i].feature][info.status == BATCH_TASK_COMPLETED]++;
    }
    for (int f = 0; f < FEATURE_TYPES; f++)
        printf("  by feature: %-20s %d completed, %d failed\n", FEATURE[f], per_type[f][1], per_type[f][0]);
    batch_graph_destroy(g);
    batch_pool_destroy(pool);
    return s.completed == 9 && s.failed == 1 ? 0 : 1;
}

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "both";
    int rc = 0;
    if (strcmp(mode, "parallel")) rc |= run_job("sequential", BATCH_WORKERS_INLINE);
    if (strcmp(mode, "sequential")) rc |= run_job("parallel", 0);
    return rc;
}
