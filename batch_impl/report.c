/* report.c - JSON and text reports of a finished job (graph run or map). Integers only
   (microseconds, counts, per mille), strings escaped: the output does not depend on the locale. */
#ifndef BATCH__REPORT_C
#define BATCH__REPORT_C
#ifndef BATCH_SINGLE_FILE
#  include "map.c"
#endif

BATCH__PRIVATE void batch__json_string(FILE* out, const char* s) {
    if (!s) { fputs("null", out); return; }
    fputc('"', out);
    for (const unsigned char* c = (const unsigned char*)s; *c; c++) {
        switch (*c) {
            case '"': fputs("\\\"", out); break;
            case '\\': fputs("\\\\", out); break;
            case '\n': fputs("\\n", out); break;
            case '\r': fputs("\\r", out); break;
            case '\t': fputs("\\t", out); break;
            default:
                if (*c < 0x20) fprintf(out, "\\u%04x", *c);
                else fputc(*c, out);
        }
    }
    fputc('"', out);
}

BATCH__PRIVATE unsigned long long batch__us(uint64_t ns) { return (unsigned long long)(ns / 1000u); }
BATCH__PRIVATE unsigned long long batch__permille(uint64_t part, uint64_t whole) {
    return whole ? (unsigned long long)((part * 1000u + whole / 2) / whole) : 1000ull;
}

/* The finished job's summary in graph terms, or BATCH_ERR_BUSY. */
BATCH__PRIVATE batch_result batch__report_summary(batch_job* job, batch_job_summary* s, batch__job** graph_job,
                                                  batch__mjob** map_job) {
    batch__job_head* h = batch__head(job);
    *graph_job = NULL;
    *map_job = NULL;
    if (h->ops == &batch__graph_job_ops) {
        batch__job* g = (batch__job*)job;
        if (!g->done) return BATCH_ERR_BUSY;
        *graph_job = g;
        *s = g->summary;
    } else {
        batch__mjob* m = (batch__mjob*)job;
        if (!m->done) return BATCH_ERR_BUSY;
        *map_job = m;
        batch__map_job_wait(job, s);   /* done: only copies */
    }
    return BATCH_OK;
}

BATCH_API batch_result batch_job_report_json(batch_job* job, FILE* out) {
    if (!job || !out) return BATCH_ERR_INVALID;
    batch_job_summary s;
    batch__job* gj;
    batch__mjob* mj;
    batch_result r = batch__report_summary(job, &s, &gj, &mj);
    if (r != BATCH_OK) return r;
    fprintf(out, "{\n  \"kind\": \"%s\",\n  \"status\": \"%s\",\n  \"result\": ", gj ? "graph" : "map",
            batch_job_status_string(s.status));
    batch__json_string(out, batch_result_string(s.result));
    fprintf(out, ",\n  \"result_code\": %d,\n", (int)s.result);
    fprintf(out, "  \"total\": %llu,\n  \"completed\": %llu,\n  \"failed\": %llu,\n  \"skipped\": %llu,\n  \"cancelled\": %llu,\n"
                 "  \"retries\": %llu,\n  \"success_rate_permille\": %llu,\n  \"wall_us\": %llu,\n  \"busy_us\": %llu,\n"
                 "  \"peak_concurrency\": %llu",
            (unsigned long long)s.total, (unsigned long long)s.completed, (unsigned long long)s.failed,
            (unsigned long long)s.skipped, (unsigned long long)s.cancelled, (unsigned long long)s.retries,
            batch__permille(s.completed, s.completed + s.failed + s.skipped), batch__us(s.wall_ns), batch__us(s.busy_ns),
            (unsigned long long)s.peak_concurrency);
    if (gj) {
        batch_graph* g = gj->g;
        fputs(",\n  \"graph\": ", out);
        batch__json_string(out, g->name);
        fputs(",\n  \"tasks\": [", out);
        size_t n = (size_t)stbds_arrlen(g->nodes);
        for (size_t i = 0; i < n; i++) {
            const batch__gnode* x = &g->nodes[i];
            unsigned st = atomic_load_explicit(&((batch__gnode*)(uintptr_t)x)->status, memory_order_relaxed);
            fprintf(out, "%s\n    {\"id\": %zu, \"name\": ", i ? "," : "", i + 1);
            batch__json_string(out, x->name);
            fprintf(out, ", \"status\": \"%s\", \"attempts\": %d, \"error\": %d, \"message\": ",
                    batch_task_status_string((batch_task_status)st), x->attempts, (int)x->error);
            batch__json_string(out, (x->msg && x->msg[0]) ? x->msg : NULL);
            fprintf(out, ", \"worker\": %d, \"start_us\": %llu, \"end_us\": %llu}", x->worker,
                    x->start_ns ? batch__us(x->start_ns - gj->launch_ns) : 0ull,
                    x->end_ns ? batch__us(x->end_ns - gj->launch_ns) : 0ull);
        }
        fputs(n ? "\n  ]" : "]", out);
    } else {
        const batch_map_summary* m = &mj->s;
        fprintf(out, ",\n  \"batches\": %llu,\n  \"batches_succeeded\": %llu,\n  \"batches_partial\": %llu,\n"
                     "  \"batches_failed\": %llu,\n  \"unprocessed\": %llu,\n  \"efficiency_permille\": %llu,\n"
                     "  \"final_batch_size\": %zu",
                (unsigned long long)m->batches, (unsigned long long)m->batches_succeeded, (unsigned long long)m->batches_partial,
                (unsigned long long)m->batches_failed, (unsigned long long)m->unprocessed,
                batch__permille(m->busy_ns, m->wall_ns * (uint64_t)mj->threads), m->final_batch_size);
    }
    fputs("\n}\n", out);
    return ferror(out) ? BATCH_ERR_INVALID : BATCH_OK;
}

BATCH_API batch_result batch_job_report_text(batch_job* job, FILE* out) {
    if (!job || !out) return BATCH_ERR_INVALID;
    batch_job_summary s;
    batch__job* gj;
    batch__mjob* mj;
    batch_result r = batch__report_summary(job, &s, &gj, &mj);
    if (r != BATCH_OK) return r;
    unsigned long long rate = batch__permille(s.completed, s.completed + s.failed + s.skipped);
    fprintf(out, "%s job: %s (%s)\n", gj ? "graph" : "map", batch_job_status_string(s.status), batch_result_string(s.result));
    fprintf(out, "  %-12s %12s\n", gj ? "tasks" : "items", "count");
    fprintf(out, "  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n",
            "total", (unsigned long long)s.total, "completed", (unsigned long long)s.completed, "failed",
            (unsigned long long)s.failed, "skipped", (unsigned long long)s.skipped, gj ? "cancelled" : "unprocessed",
            (unsigned long long)s.cancelled, "retries", (unsigned long long)s.retries);
    fprintf(out, "  success rate %llu.%llu%%  wall %llu.%03llu ms  busy %llu.%03llu ms  peak %llu\n", rate / 10, rate % 10,
            batch__us(s.wall_ns) / 1000, batch__us(s.wall_ns) % 1000, batch__us(s.busy_ns) / 1000,
            batch__us(s.busy_ns) % 1000, (unsigned long long)s.peak_concurrency);
    if (gj) {
        batch_graph* g = gj->g;
        size_t n = (size_t)stbds_arrlen(g->nodes);
        bool header = false;
        for (size_t i = 0; i < n; i++) {
            const batch__gnode* x = &g->nodes[i];
            unsigned st = atomic_load_explicit(&((batch__gnode*)(uintptr_t)x)->status, memory_order_relaxed);
            if (st == BATCH_TASK_COMPLETED) continue;
            if (!header) { fprintf(out, "  %-24s %-10s %8s %6s  %s\n", "task", "status", "attempts", "error", "message"); header = true; }
            char label[64];
            batch__node_label(g, (uint32_t)i, label, sizeof label);
            fprintf(out, "  %-24s %-10s %8d %6d  %s\n", label, batch_task_status_string((batch_task_status)st), x->attempts,
                    (int)x->error, (x->msg && x->msg[0]) ? x->msg : "");
        }
    } else {
        const batch_map_summary* m = &mj->s;
        fprintf(out, "  batches %llu: %llu success, %llu partial, %llu failed; final batch size %zu\n",
                (unsigned long long)m->batches, (unsigned long long)m->batches_succeeded,
                (unsigned long long)m->batches_partial, (unsigned long long)m->batches_failed, m->final_batch_size);
    }
    return ferror(out) ? BATCH_ERR_INVALID : BATCH_OK;
}

#endif /* BATCH__REPORT_C */
