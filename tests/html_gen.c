/* html_gen.c - writes the HTML reports tests/html_check.sh renders in a browser: small.html (a
   graph whose name needs escaping, with failed and skipped tasks), big.html (10^4 tasks, about
   100 failed, their dependents skipped) and map.html (a map with kept batches, some failed).
   Prints one line per file: "FILE ROWS FAILED TITLE", the failure-table rows and failed bars the
   report should hold and the title as the browser shows it.

   Usage: html_gen OUTDIR */
#define BATCH_IMPLEMENTATION
#include "batch.h"
#include <stdio.h>
#include <string.h>

static int spin_task(batch_ctx* ctx, void* user) {
    uintptr_t id = (uintptr_t)user;
    uint64_t t0 = batch_now_ns();
    while (batch_now_ns() - t0 < 2000u + (id * 7919u) % 8000u) {}
    if (id % 97 == 0) return batch_ctx_fail(ctx, 97, "task %u: <simulated> failure & \"more\"", (unsigned)id);
    return 0;
}
static int ok_task(batch_ctx* ctx, void* user) { (void)ctx; (void)user; return 0; }
static int bad_task(batch_ctx* ctx, void* user) { return batch_ctx_fail(ctx, (int)(uintptr_t)user, "<b>bad</b> & \"input\""); }

static int write_report(batch_job* job, const char* dir, const char* file) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE* f = fopen(path, "w");
    if (!f) { perror(path); return 1; }
    batch_result r = batch_job_report_html(job, f);
    if (fclose(f) != 0 || r != BATCH_OK) { fprintf(stderr, "%s: %s\n", path, batch_result_string(r)); return 1; }
    return 0;
}

static batch_task add(batch_graph* g, batch_task_fn fn, uintptr_t user, const char* name) {
    batch_task t;
    memset(&t, 0, sizeof t);
    batch_graph_add(g, &(batch_task_desc){ .fn = fn, .user_data = (void*)user, .name = name }, &t);
    return t;
}

/* Two failed tasks, each with a skipped dependent, and two that complete. */
static int small_graph(batch_pool* pool, const char* dir) {
    batch_graph* g;
    batch_job* job;
    if (batch_graph_create(&g, &(batch_graph_desc){ .name = "html <check> & \"quotes\"" }) != BATCH_OK) return 1;
    batch_task a = add(g, ok_task, 0, "load");
    batch_task b = add(g, bad_task, 7, "parse <x>");
    batch_task c = add(g, ok_task, 0, "after parse");
    batch_task d = add(g, bad_task, 8, "check");
    batch_task e = add(g, ok_task, 0, "after check");
    add(g, ok_task, 0, "alone");
    batch_task_precede(g, a, b);
    batch_task_precede(g, b, c);
    batch_task_precede(g, d, e);
    if (batch_graph_launch(pool, g, NULL, &job) != BATCH_OK) return 1;
    batch_job_summary s;
    batch_job_wait(job, &s);
    int rc = write_report(job, dir, "small.html");
    printf("small.html %llu %llu html &lt;check&gt; &amp; \"quotes\"\n", (unsigned long long)(s.failed + s.skipped),
           (unsigned long long)s.failed);
    batch_job_destroy(job);
    batch_graph_destroy(g);
    return rc;
}

/* 10^4 tasks: ids divisible by 97 fail; task i >= 5000 depends on task i - 5000. */
static int big_graph(batch_pool* pool, const char* dir) {
    enum { N = 10000 };
    static batch_task t[N];
    batch_graph* g;
    batch_job* job;
    if (batch_graph_create(&g, &(batch_graph_desc){ .name = "10k tasks" }) != BATCH_OK) return 1;
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%05d", i);
        t[i] = add(g, spin_task, (uintptr_t)i, name);
        if (i >= N / 2) batch_task_precede(g, t[i - N / 2], t[i]);
    }
    if (batch_graph_launch(pool, g, NULL, &job) != BATCH_OK) return 1;
    batch_job_summary s;
    batch_job_wait(job, &s);
    int rc = write_report(job, dir, "big.html");
    unsigned long long rows = s.failed + s.skipped + s.cancelled;
    printf("big.html %llu %llu 10k tasks\n", rows < 1000 ? rows : 1000, (unsigned long long)s.failed);
    batch_job_destroy(job);
    batch_graph_destroy(g);
    return rc;
}

static int half_bad(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)res; (void)u;
    size_t k = it->index % 100;
    return (k >= 60 || (k >= 55 && (k & 1))) ? batch_ctx_fail(ctx, 1, "bad item") : 0;
}

/* A map of 40 batches of 10 items, kept; batches 6..9 of every 10 fail, batch 5 partly. */
static int map_job(batch_pool* pool, const char* dir) {
    batch_job* job;
    if (batch_map_launch(pool, &(batch_map_desc){ .count = 400, .item_fn = half_bad, .batch_size = 10, .error_threshold = 0.9,
                                                  .keep_batches = 1 }, &job) != BATCH_OK) return 1;
    batch_map_summary m;
    batch_map_wait(job, &m, NULL);
    int rc = write_report(job, dir, "map.html");
    printf("map.html %llu %llu map\n", (unsigned long long)(m.batches_failed + m.batches_partial),
           (unsigned long long)m.batches_failed);
    batch_job_destroy(job);
    return rc;
}

int main(int argc, char** argv) {
    if (argc != 2) { fprintf(stderr, "usage: html_gen OUTDIR\n"); return 2; }
    batch_pool* pool;
    if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = 4 }) != BATCH_OK) return 1;
    int rc = small_graph(pool, argv[1]) || big_graph(pool, argv[1]) || map_job(pool, argv[1]);
    batch_pool_destroy(pool);
    return rc;
}
