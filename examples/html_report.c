/* html_report.c - a run that writes the HTML timeline: a layered graph of tasks of uneven
   length (some fail, their dependents are skipped) on every core, then report.html (one lane
   per worker, a bar per task coloured by status; hover a bar for its name and times) and the
   same run as JSON in report.json.

   Usage: html_report [out.html]   (default: report.html in the current directory) */
#define BATCH_IMPLEMENTATION
#include "batch.h"
#include <stdio.h>

/* Busy work for `us` microseconds; task ids divisible by 17 fail. */
static int work(batch_ctx* ctx, void* user) {
    uintptr_t id = (uintptr_t)user;
    uint64_t us = 200 + (id * 7919) % 1800, t0 = batch_now_ns();
    while (batch_now_ns() - t0 < us * 1000u) {}
    if (id % 17 == 0) return batch_ctx_fail(ctx, 17, "task %u: simulated failure", (unsigned)id);
    return 0;
}

int main(int argc, char** argv) {
    const char* path = argc > 1 ? argv[1] : "report.html";
    batch_pool* pool;
    batch_graph* g;
    if (batch_pool_create(&pool, &(batch_pool_desc){0}) != BATCH_OK) return 1;
    batch_graph_create(&g, &(batch_graph_desc){ .name = "timeline demo" });
    enum { LAYERS = 6, WIDTH = 12 };
    batch_task t[LAYERS][WIDTH];
    for (int l = 0; l < LAYERS; l++)
        for (int i = 0; i < WIDTH; i++) {
            char name[32];
            snprintf(name, sizeof name, "L%d-%02d", l, i);
            batch_graph_add(g, &(batch_task_desc){ .fn = work, .user_data = (void*)(uintptr_t)(l * WIDTH + i + 1), .name = name }, &t[l][i]);
            if (l) {   /* each task depends on two of the previous layer */
                batch_task_precede(g, t[l - 1][i], t[l][i]);
                batch_task_precede(g, t[l - 1][(i + 5) % WIDTH], t[l][i]);
            }
        }
    batch_job* job;
    if (batch_graph_launch(pool, g, NULL, &job) != BATCH_OK) return 1;
    batch_job_summary s;
    batch_job_wait(job, &s);
    FILE* f = fopen(path, "w");
    if (!f || batch_job_report_html(job, f) != BATCH_OK) { perror(path); return 1; }
    fclose(f);
    f = fopen("report.json", "w");
    if (f) { batch_job_report_json(job, f); fclose(f); }
    printf("%s: %llu tasks, %llu completed, %llu failed, %llu skipped, wall %.1f ms, peak %llu\n", path,
           (unsigned long long)s.total, (unsigned long long)s.completed, (unsigned long long)s.failed,
           (unsigned long long)s.skipped, (double)s.wall_ns / 1e6, (unsigned long long)s.peak_concurrency);
    batch_job_destroy(job);
    batch_graph_destroy(g);
    batch_pool_destroy(pool);
    return s.total == LAYERS * WIDTH && s.completed + s.failed + s.skipped == s.total ? 0 : 1;
}
