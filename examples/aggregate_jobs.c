/* aggregate_jobs.c - scenario A's aggregation: five jobs (each a graph of feature tasks) run on
   one pool, at most 2 jobs at once; their results are aggregated (total tasks, average success
   rate), each job's text and JSON reports are saved to a directory, and the last job is run
   twice - a baseline, then a "current" run in which one feature regressed - and the two JSON
   reports are compared.

   Usage: aggregate_jobs [DIR]   (default: build/reports, created if missing) */
#define _POSIX_C_SOURCE 200809L
#define BATCH_IMPLEMENTATION
#include "batch.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct feature { int job, index; int broken; } feature;

/* A feature's work: a little arithmetic; a broken one fails. */
static int run_feature(batch_ctx* ctx, void* user) {
    feature* f = (feature*)user;
    volatile long sink = 0;
    for (long i = 0; i < 20000L * (f->index + 1); i++) sink += i % 7;
    if (f->broken) return batch_ctx_fail(ctx, 3, "job %d feature %d: regression", f->job, f->index);
    return 0;
}

enum { JOBS = 5, FEATURES = 8 };

/* Builds job j: FEATURES tasks, the last depends on all others (an aggregation step). */
static batch_graph* build_job(int j, feature* f) {
    batch_graph* g;
    char name[32];
    snprintf(name, sizeof name, "job-%d", j);
    if (batch_graph_create(&g, &(batch_graph_desc){ .name = name }) != BATCH_OK) return NULL;
    batch_task t[FEATURES];
    for (int i = 0; i < FEATURES; i++) {
        snprintf(name, sizeof name, "job%d-feature%d", j, i);
        batch_graph_add(g, &(batch_task_desc){ .fn = run_feature, .user_data = &f[i], .name = name }, &t[i]);
    }
    batch_task_precede_n(g, t, FEATURES - 1, &t[FEATURES - 1], 1);
    return g;
}

/* Reads a whole file into a NUL-terminated buffer (caller frees). */
static char* slurp(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char* s = n >= 0 ? (char*)malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) == (size_t)n) s[n] = 0;
    else { free(s); s = NULL; }
    fclose(f);
    return s;
}

static int save_reports(batch_job* job, const char* dir, const char* stem) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", dir, stem);
    FILE* f = fopen(path, "w");
    if (!f || batch_job_report_json(job, f) != BATCH_OK) return -1;
    fclose(f);
    snprintf(path, sizeof path, "%s/%s.txt", dir, stem);
    f = fopen(path, "w");
    if (!f || batch_job_report_text(job, f) != BATCH_OK) return -1;
    fclose(f);
    return 0;
}

int main(int argc, char** argv) {
    const char* dir = argc > 1 ? argv[1] : "build/reports";
    mkdir("build", 0755);
    mkdir(dir, 0755);
    batch_pool* pool;
    if (batch_pool_create(&pool, &(batch_pool_desc){0}) != BATCH_OK) return 1;

    static feature f[JOBS][FEATURES];
    batch_graph* g[JOBS];
    batch_job* job[JOBS];
    for (int j = 0; j < JOBS; j++) {
        for (int i = 0; i < FEATURES; i++) f[j][i] = (feature){ j, i, j == 3 && i == 2 };   /* job 3 has one failure */
        g[j] = build_job(j, f[j]);
    }
    /* at most 2 jobs at once (max_parallel_jobs = 2): launch two, then one more as each ends */
    uint64_t total = 0, completed = 0;
    double rate_sum = 0;
    int next = 0;
    for (int j = 0; j < JOBS; j++) {
        while (next < JOBS && next < j + 2) batch_graph_launch(pool, g[next], NULL, &job[next]), next++;
        batch_job_summary s;
        batch_job_wait(job[j], &s);
        char stem[32];
        snprintf(stem, sizeof stem, "job-%d", j);
        if (save_reports(job[j], dir, stem) != 0) { perror(dir); return 1; }
        printf("job-%d: %s, %llu/%llu completed, %.1f ms\n", j, batch_job_status_string(s.status),
               (unsigned long long)s.completed, (unsigned long long)s.total, (double)s.wall_ns / 1e6);
        total += s.total;
        completed += s.completed;
        rate_sum += (double)s.completed / (double)s.total;
        batch_job_destroy(job[j]);
    }
    printf("aggregate: %d jobs, %llu tasks, %llu completed, average success rate %.1f%%\n", JOBS,
           (unsigned long long)total, (unsigned long long)completed, 100.0 * rate_sum / JOBS);

    /* baseline vs current: job 4 again, now with a regression in feature 5 */
    f[4][5].broken = 1;
    batch_job* cur;
    batch_graph_launch(pool, g[4], NULL, &cur);
    batch_job_wait(cur, NULL);
    save_reports(cur, dir, "job-4-current");
    batch_job_destroy(cur);
    char bpath[512], cpath[512];
    snprintf(bpath, sizeof bpath, "%s/job-4.json", dir);
    snprintf(cpath, sizeof cpath, "%s/job-4-current.json", dir);
    char* base = slurp(bpath);
    char* now = slurp(cpath);
    printf("compare %s with %s:\n", bpath, cpath);
    batch_result r = batch_report_compare(base, now, stdout);
    free(base);
    free(now);
    for (int j = 0; j < JOBS; j++) batch_graph_destroy(g[j]);
    batch_pool_destroy(pool);
    printf("reports in %s/\n", dir);
    return (r == BATCH_OK && total == JOBS * FEATURES && completed == total - 2) ? 0 : 1;
}
