/* report.c - JSON, text and HTML reports and the Chrome trace of a finished job (graph run or
   map). Integers only (microseconds, counts, per mille; the trace's microseconds are integers of
   nanoseconds written with 3 decimals), strings escaped: the output does not depend on the locale. */
#ifndef BATCH__REPORT_C
#define BATCH__REPORT_C
#ifndef BATCH_SINGLE_FILE
#  include "job.c"
#endif

/* The characters of s as they go between the quotes of a JSON string. */
BATCH__PRIVATE void batch__json_chars(FILE* out, const char* s) {
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
}
BATCH__PRIVATE void batch__json_string(FILE* out, const char* s) {
    if (!s) { fputs("null", out); return; }
    fputc('"', out);
    batch__json_chars(out, s);
    fputc('"', out);
}

BATCH__PRIVATE unsigned long long batch__us(uint64_t ns) { return (unsigned long long)(ns / 1000u); }
BATCH__PRIVATE unsigned long long batch__permille(uint64_t part, uint64_t whole) {
    return whole ? (unsigned long long)((part * 1000u + whole / 2) / whole) : 1000ull;
}

/* The finished job's facts (job.c, "records for reports"): BATCH_ERR_INVALID (NULL) or
   BATCH_ERR_BUSY (not waited for yet). The reports read the job through these and its records
   only. */
BATCH__PRIVATE batch_result batch__report_facts(batch_job* job, FILE* out, batch__job_facts* f) {
    if (!job || !out) return BATCH_ERR_INVALID;
    return batch__head(job)->ops->facts(job, f);
}
BATCH__PRIVATE void batch__report_record(batch_job* job, size_t i, batch__record* r) { batch__head(job)->ops->record(job, i, r); }

/* A record's time in microseconds since the launch; 0 when it has none. */
BATCH__PRIVATE unsigned long long batch__record_us(const batch__job_facts* f, uint64_t t) {
    return t ? batch__us(t - f->launch_ns) : 0ull;
}
/* A time since the launch (0 before it), in nanoseconds. */
BATCH__PRIVATE uint64_t batch__trace_rel(const batch__job_facts* f, uint64_t t) { return t > f->launch_ns ? t - f->launch_ns : 0; }
/* A task's name, or "#id" when it has none (truncated to n - 1 characters). */
BATCH__PRIVATE void batch__record_label(const batch__record* r, char* buf, size_t n) {
    if (r->name) snprintf(buf, n, "%s", r->name);
    else snprintf(buf, n, "#%u", (unsigned)(r->index + 1));
}

/* JSON: the kind, status and counts every job has. */
BATCH__PRIVATE void batch__json_summary(FILE* out, const batch__job_facts* f) {
    const batch_job_summary* s = &f->summary;
    fprintf(out, "{\n  \"kind\": \"%s\",\n  \"status\": \"%s\",\n  \"result\": ", f->kind == BATCH__KIND_GRAPH ? "graph" : "map",
            batch_job_status_string(s->status));
    batch__json_string(out, batch_result_string(s->result));
    fprintf(out, ",\n  \"result_code\": %d,\n", (int)s->result);
    fprintf(out, "  \"total\": %llu,\n  \"completed\": %llu,\n  \"failed\": %llu,\n  \"skipped\": %llu,\n  \"cancelled\": %llu,\n"
                 "  \"retries\": %llu,\n  \"success_rate_permille\": %llu,\n  \"wall_us\": %llu,\n  \"busy_us\": %llu,\n"
                 "  \"peak_concurrency\": %llu",
            (unsigned long long)s->total, (unsigned long long)s->completed, (unsigned long long)s->failed,
            (unsigned long long)s->skipped, (unsigned long long)s->cancelled, (unsigned long long)s->retries,
            batch__permille(s->completed, s->completed + s->failed + s->skipped), batch__us(s->wall_ns), batch__us(s->busy_ns),
            (unsigned long long)s->peak_concurrency);
}

/* JSON: a graph's name and every task. */
BATCH__PRIVATE void batch__json_tasks(FILE* out, batch_job* job, const batch__job_facts* f) {
    fputs(",\n  \"graph\": ", out);
    batch__json_string(out, f->name);
    fputs(",\n  \"tasks\": [", out);
    for (size_t i = 0; i < f->nrecords; i++) {
        batch__record r;
        batch__report_record(job, i, &r);
        fprintf(out, "%s\n    {\"id\": %zu, \"name\": ", i ? "," : "", r.index + 1);
        batch__json_string(out, r.name);
        fprintf(out, ", \"status\": \"%s\", \"attempts\": %d, \"error\": %d, \"message\": ", r.status_string, r.attempts, r.error);
        batch__json_string(out, r.message);
        fprintf(out, ", \"worker\": %d, \"start_us\": %llu, \"end_us\": %llu}", r.worker, batch__record_us(f, r.start_ns),
                batch__record_us(f, r.end_ns));
    }
    fputs(f->nrecords ? "\n  ]" : "]", out);
}

/* JSON: a map's batch counts, and the kept batches when it keeps them. */
BATCH__PRIVATE void batch__json_batches(FILE* out, batch_job* job, const batch__job_facts* f) {
    const batch_map_summary* m = &f->map;
    fprintf(out, ",\n  \"batches\": %llu,\n  \"batches_succeeded\": %llu,\n  \"batches_partial\": %llu,\n"
                 "  \"batches_failed\": %llu,\n  \"unprocessed\": %llu,\n  \"efficiency_permille\": %llu,\n"
                 "  \"final_batch_size\": %zu",
            (unsigned long long)m->batches, (unsigned long long)m->batches_succeeded, (unsigned long long)m->batches_partial,
            (unsigned long long)m->batches_failed, (unsigned long long)m->unprocessed,
            batch__permille(m->busy_ns, m->wall_ns * (uint64_t)f->workers), m->final_batch_size);
    if (!f->keeps_records) return;
    fputs(",\n  \"batches_kept\": [", out);
    for (size_t i = 0; i < f->nrecords; i++) {
        batch__record r;
        batch__report_record(job, i, &r);
        fprintf(out, "%s\n    {\"index\": %zu, \"first\": %zu, \"count\": %zu, \"status\": \"%s\", \"succeeded\": %zu, "
                     "\"failed\": %zu, \"retries\": %d, \"worker\": %d, \"start_us\": %llu, \"end_us\": %llu}",
                i ? "," : "", r.index, r.first, r.count, r.status_string, r.succeeded, r.failed, r.retries, r.worker,
                batch__record_us(f, r.start_ns), batch__record_us(f, r.end_ns));
    }
    fputs(f->nrecords ? "\n  ]" : "]", out);
}

BATCH_API batch_result batch_job_report_json(batch_job* job, FILE* out) {
    batch__job_facts f;
    batch_result r = batch__report_facts(job, out, &f);
    if (r != BATCH_OK) return r;
    batch__json_summary(out, &f);
    if (f.kind == BATCH__KIND_GRAPH) batch__json_tasks(out, job, &f);
    else batch__json_batches(out, job, &f);
    fputs("\n}\n", out);
    return (fflush(out) != 0 || ferror(out)) ? BATCH_ERR_IO : BATCH_OK;   /* the whole report reached the file */
}

/* Text: the tasks that did not complete, under a header when there is one. */
BATCH__PRIVATE void batch__text_tasks(FILE* out, batch_job* job, const batch__job_facts* f) {
    bool header = false;
    for (size_t i = 0; i < f->nrecords; i++) {
        batch__record r;
        batch__report_record(job, i, &r);
        if (r.status == BATCH_TASK_COMPLETED) continue;
        if (!header) { fprintf(out, "  %-24s %-10s %8s %6s  %s\n", "task", "status", "attempts", "error", "message"); header = true; }
        char label[64];
        batch__record_label(&r, label, sizeof label);
        fprintf(out, "  %-24s %-10s %8d %6d  %s\n", label, r.status_string, r.attempts, r.error, r.message ? r.message : "");
    }
}

BATCH_API batch_result batch_job_report_text(batch_job* job, FILE* out) {
    batch__job_facts f;
    batch_result r = batch__report_facts(job, out, &f);
    if (r != BATCH_OK) return r;
    const batch_job_summary* s = &f.summary;
    bool graph = f.kind == BATCH__KIND_GRAPH;
    unsigned long long rate = batch__permille(s->completed, s->completed + s->failed + s->skipped);
    fprintf(out, "%s job: %s (%s)\n", graph ? "graph" : "map", batch_job_status_string(s->status), batch_result_string(s->result));
    fprintf(out, "  %-12s %12s\n", graph ? "tasks" : "items", "count");
    fprintf(out, "  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n",
            "total", (unsigned long long)s->total, "completed", (unsigned long long)s->completed, "failed",
            (unsigned long long)s->failed, "skipped", (unsigned long long)s->skipped, graph ? "cancelled" : "unprocessed",
            (unsigned long long)s->cancelled, "retries", (unsigned long long)s->retries);
    fprintf(out, "  success rate %llu.%llu%%  wall %llu.%03llu ms  busy %llu.%03llu ms  peak %llu\n", rate / 10, rate % 10,
            batch__us(s->wall_ns) / 1000, batch__us(s->wall_ns) % 1000, batch__us(s->busy_ns) / 1000,
            batch__us(s->busy_ns) % 1000, (unsigned long long)s->peak_concurrency);
    if (graph) {
        batch__text_tasks(out, job, &f);
    } else {
        const batch_map_summary* m = &f.map;
        fprintf(out, "  batches %llu: %llu success, %llu partial, %llu failed; final batch size %zu\n",
                (unsigned long long)m->batches, (unsigned long long)m->batches_succeeded,
                (unsigned long long)m->batches_partial, (unsigned long long)m->batches_failed, m->final_batch_size);
    }
    return (fflush(out) != 0 || ferror(out)) ? BATCH_ERR_IO : BATCH_OK;   /* the whole report reached the file */
}

/* ---- HTML: one self-contained file (inline CSS and a few lines of script, nothing fetched) -- */
BATCH__PRIVATE void batch__html_text(FILE* out, const char* s) {
    for (; s && *s; s++) {
        switch (*s) {
            case '<': fputs("&lt;", out); break;
            case '>': fputs("&gt;", out); break;
            case '&': fputs("&amp;", out); break;
            case '"': fputs("&quot;", out); break;
            default: fputc(*s, out);
        }
    }
}
/* The job's name: the graph's, else "graph" or "map"; escaped. */
BATCH__PRIVATE void batch__html_name(FILE* out, const batch__job_facts* f) {
    batch__html_text(out, f->name ? f->name : f->kind == BATCH__KIND_GRAPH ? "graph" : "map");
}
/* A non-negative coordinate with one decimal, without the locale's decimal point. */
BATCH__PRIVATE void batch__html_num(FILE* out, double x) {
    unsigned long long t = x > 0 ? (unsigned long long)(x * 10.0 + 0.5) : 0ull;
    fprintf(out, "%llu.%llu", t / 10, t % 10);
}
/* A record's name: the task's (or "#id"), or "batch N (items a-b)". */
BATCH__PRIVATE void batch__html_label(FILE* out, const batch__job_facts* f, const batch__record* r) {
    if (f->kind == BATCH__KIND_MAP) { fprintf(out, "batch %zu (items %zu-%zu)", r->index, r->first, r->first + r->count - 1); return; }
    char label[64];
    batch__record_label(r, label, sizeof label);
    batch__html_text(out, label);
}

/* HTML: the head, the job's name, and a table of the counts every job has. */
BATCH__PRIVATE void batch__html_summary(FILE* out, const batch__job_facts* f) {
    const batch_job_summary* s = &f->summary;
    bool graph = f->kind == BATCH__KIND_GRAPH;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", out);
    batch__html_name(out, f);
    fputs("</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#eee}table.why td{text-align:left}"
          "svg text{font-size:11px;font-family:sans-serif}svg rect,svg line{vector-effect:non-scaling-stroke}"
          "svg rect{stroke:#555;stroke-width:.3}div.tl{overflow-x:auto;width:100%}"
          ".completed,.success{fill:#6c6;background:#6c6}.failed{fill:#e55;background:#e55}.skipped{fill:#bbb;background:#bbb}"
          ".cancelled{fill:#f93;background:#f93}.partial_success{fill:#fd6;background:#fd6}table.why tr{background:none}"
          "</style></head><body>\n<h1>", out);
    batch__html_name(out, f);
    unsigned long long rate = batch__permille(s->completed, s->completed + s->failed + s->skipped);
    fprintf(out, "</h1>\n<p>%s job: <b>%s</b> (%s), success rate %llu.%llu%%, wall %llu.%03llu ms, peak concurrency %llu</p>\n"
                 "<table><tr>", graph ? "graph" : "map", batch_job_status_string(s->status), batch_result_string(s->result),
            rate / 10, rate % 10, batch__us(s->wall_ns) / 1000, batch__us(s->wall_ns) % 1000,
            (unsigned long long)s->peak_concurrency);
    const char* heads[] = { "total", "completed", "failed", "skipped", graph ? "cancelled" : "unprocessed", "retries",
                            "wall ms", "busy ms", "peak" };
    uint64_t vals[] = { s->total, s->completed, s->failed, s->skipped, s->cancelled, s->retries, batch__us(s->wall_ns),
                        batch__us(s->busy_ns), s->peak_concurrency };   /* wall and busy: us, shown as ms */
    for (int i = 0; i < 9; i++) fprintf(out, "<th>%s</th>", heads[i]);
    fputs("</tr><tr>", out);
    for (int i = 0; i < 9; i++)
        if (i == 6 || i == 7) fprintf(out, "<td>%llu.%03llu</td>", (unsigned long long)vals[i] / 1000, (unsigned long long)vals[i] % 1000);
        else fprintf(out, "<td>%llu</td>", (unsigned long long)vals[i]);
    fputs("</tr></table>\n", out);
    if (!graph)
        fprintf(out, "<p>batches %llu: %llu success, %llu partial, %llu failed; final batch size %zu</p>\n",
                (unsigned long long)f->map.batches, (unsigned long long)f->map.batches_succeeded,
                (unsigned long long)f->map.batches_partial, (unsigned long long)f->map.batches_failed, f->map.final_batch_size);
}

/* HTML: what did not succeed, a row per record: failed, then skipped, then cancelled tasks (a
   map's kept batches: failed, then partial); the first BATCH__HTML_ROWS rows, then a count. */
#define BATCH__HTML_ROWS 1000
BATCH__PRIVATE void batch__html_failures(FILE* out, batch_job* job, const batch__job_facts* f) {
    bool graph = f->kind == BATCH__KIND_GRAPH;
    const int order[3] = { graph ? BATCH_TASK_FAILED : BATCH_BATCH_FAILED, graph ? BATCH_TASK_SKIPPED : BATCH_BATCH_PARTIAL_SUCCESS,
                           graph ? BATCH_TASK_CANCELLED : -1 };
    size_t rows = 0;
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < f->nrecords; i++) {
            batch__record r;
            batch__report_record(job, i, &r);
            if (r.status != order[k]) continue;
            if (!rows++)
                fprintf(out, "<h2>Not %s</h2>\n<table class=\"why\"><tr><th>%s</th><th>status</th><th>error</th><th>message</th>"
                             "<th>attempts</th></tr>\n", graph ? "completed" : "successful", graph ? "task" : "batch");
            if (rows > BATCH__HTML_ROWS) continue;
            fprintf(out, "<tr class=\"%s\"><td>", r.status_string);
            batch__html_label(out, f, &r);
            fprintf(out, "</td><td>%s</td><td>", r.status_string);
            if (graph && (r.error || r.status == BATCH_TASK_FAILED)) fprintf(out, "%d", r.error);
            fputs("</td><td>", out);
            if (graph) batch__html_text(out, r.message);
            else fprintf(out, "%zu ok, %zu failed", r.succeeded, r.failed);
            fputs("</td><td>", out);
            if (r.attempts) fprintf(out, "%d", r.attempts);
            fputs("</td></tr>\n", out);
        }
    }
    if (rows) fputs("</table>\n", out);
    if (rows > BATCH__HTML_ROWS) fprintf(out, "<p class=\"more\">and %zu more</p>\n", rows - BATCH__HTML_ROWS);
}

/* The SVG timeline: one lane per worker, one for other threads, then one for skipped and one
   for cancelled tasks when there are any (they did not run: a thin marker at the time they
   were settled when the record has one, else at the lane's end). BATCH__SVG_WIDTH units are the
   run's wall time; the SVG is as wide as the window, times the zoom. */
#define BATCH__SVG_WIDTH 1000.0
#define BATCH__SVG_LANE 22
#define BATCH__SVG_LEFT 80
typedef struct batch__html_bar { double x0, x1; int lane, status; size_t rec; } batch__html_bar;
typedef struct batch__html_tl {
    int lanes, skip_lane, cancel_lane, failed;   /* lane -1: none; failed: the status that never merges */
    double scale;                                 /* units per ns */
} batch__html_tl;

BATCH__PRIVATE int batch__html_bar_cmp(const void* a, const void* b) {
    const batch__html_bar* x = (const batch__html_bar*)a;
    const batch__html_bar* y = (const batch__html_bar*)b;
    if (x->lane != y->lane) return x->lane < y->lane ? -1 : 1;
    if (x->x0 != y->x0) return x->x0 < y->x0 ? -1 : 1;
    return (x->rec > y->rec) - (x->rec < y->rec);
}

/* The bars of the records that have one, sorted by lane and start; their number. */
BATCH__PRIVATE size_t batch__html_collect(batch_job* job, const batch__job_facts* f, const batch__html_tl* tl, batch__html_bar* bars) {
    size_t n = 0;
    for (size_t i = 0; i < f->nrecords; i++) {
        batch__record r;
        batch__report_record(job, i, &r);
        batch__html_bar* b = &bars[n];
        b->rec = i;
        b->status = r.status;
        int marker = f->kind != BATCH__KIND_GRAPH ? -1 : r.status == BATCH_TASK_SKIPPED ? tl->skip_lane
                   : r.status == BATCH_TASK_CANCELLED ? tl->cancel_lane : -1;
        if (marker >= 0) {
            double t = r.end_ns ? (double)batch__trace_rel(f, r.end_ns) * tl->scale : BATCH__SVG_WIDTH;
            b->lane = marker;
            b->x0 = t > 2 ? (t < BATCH__SVG_WIDTH ? t - 1 : BATCH__SVG_WIDTH - 2) : 0;
            b->x1 = b->x0 + 2;
        } else {
            if (!r.start_ns || (f->kind == BATCH__KIND_GRAPH && !r.attempts)) continue;
            b->lane = (r.worker >= 0 && r.worker < f->workers) ? r.worker : f->workers;
            b->x0 = (double)batch__trace_rel(f, r.start_ns) * tl->scale;
            b->x1 = (double)batch__trace_rel(f, r.end_ns) * tl->scale;
            if (b->x0 > BATCH__SVG_WIDTH) b->x0 = BATCH__SVG_WIDTH;
            if (b->x1 > BATCH__SVG_WIDTH) b->x1 = BATCH__SVG_WIDTH;
            if (b->x1 < b->x0) b->x1 = b->x0;
        }
        n++;
    }
    qsort(bars, n, sizeof *bars, batch__html_bar_cmp);
    return n;
}

/* One record's hover text. */
BATCH__PRIVATE void batch__html_bar_title(FILE* out, const batch__job_facts* f, const batch__record* r) {
    batch__html_label(out, f, r);
    fprintf(out, ": %s", r->status_string);
    if (r->start_ns)
        fprintf(out, ", %llu-%llu us", batch__us(batch__trace_rel(f, r->start_ns)), batch__us(batch__trace_rel(f, r->end_ns)));
    else fputs(", not run (drawn at the end)", out);
    if (f->kind == BATCH__KIND_MAP) fprintf(out, ", %zu ok, %zu failed, retries %d", r->succeeded, r->failed, r->retries);
    else if (r->attempts) fprintf(out, ", attempts %d", r->attempts);
    if (r->error) fprintf(out, ", error %d", r->error);
    if (r->message) { fputs(", ", out); batch__html_text(out, r->message); }
}

/* One rect for bars[first..last] (count of them, same lane and status), at least min_w wide. */
BATCH__PRIVATE void batch__html_rect(FILE* out, batch_job* job, const batch__job_facts* f, const batch__html_bar* first,
                                     const batch__html_bar* last, double x1, size_t count, double min_w) {
    batch__record r;
    batch__report_record(job, first->rec, &r);
    double x0 = first->x0, w = x1 - x0 < min_w ? min_w : x1 - x0;
    if (x0 + w > BATCH__SVG_WIDTH) x0 = BATCH__SVG_WIDTH - w > 0 ? BATCH__SVG_WIDTH - w : 0;
    fprintf(out, "<rect class=\"%s\" x=\"", r.status_string);
    batch__html_num(out, BATCH__SVG_LEFT + x0);
    fprintf(out, "\" y=\"%d\" width=\"", first->lane * BATCH__SVG_LANE + 3);
    batch__html_num(out, w);
    fprintf(out, "\" height=\"%d\"><title>", BATCH__SVG_LANE - 6);
    if (count == 1) {
        batch__html_bar_title(out, f, &r);
    } else {
        fprintf(out, "%zu %s %s, ", count, f->kind == BATCH__KIND_GRAPH ? "tasks" : "batches", r.status_string);
        batch__html_label(out, f, &r);
        fputs(" ... ", out);
        batch__report_record(job, last->rec, &r);
        batch__html_label(out, f, &r);
    }
    fputs("</title></rect>\n", out);
}

/* The bars: runs of touching same-status bars on a lane (gap under 1 unit) as one rect, then
   every failed one on its own, on top, at least 3 units wide. */
BATCH__PRIVATE void batch__html_bars(FILE* out, batch_job* job, const batch__job_facts* f, const batch__html_tl* tl,
                                     const batch__html_bar* bars, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (bars[i].status == tl->failed) { i++; continue; }
        size_t last = i, count = 1, j = i + 1;
        double x1 = bars[i].x1 > bars[i].x0 + 1 ? bars[i].x1 : bars[i].x0 + 1;
        for (; j < n && bars[j].lane == bars[i].lane; j++) {
            if (bars[j].status == tl->failed) continue;
            if (bars[j].status != bars[i].status || bars[j].x0 - x1 >= 1) break;
            double e = bars[j].x1 > bars[j].x0 + 1 ? bars[j].x1 : bars[j].x0 + 1;
            if (e > x1) x1 = e;
            last = j;
            count++;
        }
        batch__html_rect(out, job, f, &bars[i], &bars[last], x1, count, 1);
        i = j;
    }
    for (i = 0; i < n; i++)
        if (bars[i].status == tl->failed) batch__html_rect(out, job, f, &bars[i], &bars[i], bars[i].x1, 1, 3);
}

/* The time axis: ticks at multiples of a step of the 1-2-5 series, 5 to 10 of them, labelled in
   the unit (s, ms, us, ns) of the wall time. */
BATCH__PRIVATE void batch__html_axis(FILE* out, const batch__html_tl* tl, uint64_t wall) {
    uint64_t step = 1, unit = 1;
    static const unsigned mult[3] = { 2, 5, 10 };   /* 1 -> 2 -> 5 -> 10 */
    for (uint64_t base = 1; wall / step > 9; ) {
        for (int k = 0; k < 3 && wall / step > 9; k++) step = base * mult[k];
        base *= 10;
    }
    const char* name = "ns";
    if (wall >= 1000000000u) { unit = 1000000000u; name = "s"; }
    else if (wall >= 1000000u) { unit = 1000000u; name = "ms"; }
    else if (wall >= 1000u) { unit = 1000u; name = "us"; }
    uint64_t q = unit;
    int digits = 0;
    while (q > 1 && step % q) { q /= 10; digits++; }
    int bottom = tl->lanes * BATCH__SVG_LANE;
    for (uint64_t v = 0; v <= wall; v += step) {
        double x = BATCH__SVG_LEFT + (double)v * tl->scale;
        fputs("<line class=\"tick\" x1=\"", out);
        batch__html_num(out, x);
        fputs("\" x2=\"", out);
        batch__html_num(out, x);
        fprintf(out, "\" y1=\"0\" y2=\"%d\" stroke=\"#ccc\"/><text class=\"tick\" text-anchor=\"middle\" x=\"", bottom + 4);
        batch__html_num(out, x);
        fprintf(out, "\" y=\"%d\">%llu", bottom + 16, (unsigned long long)(v / unit));
        if (digits) fprintf(out, ".%0*llu", digits, (unsigned long long)(v % unit / q));
        fprintf(out, " %s</text>\n", name);
    }
}

/* The zoom: a range input widens the SVG inside its scrolling div; the script keeps the text
   from stretching with it (the SVG scales x only). */
BATCH__PRIVATE void batch__html_zoom(FILE* out) {
    fputs("<script>(function(){var s=document.getElementById('tl'),z=document.getElementById('zoom'),"
          "v=document.getElementById('zv');\nfunction fit(){s.setAttribute('width',z.value*100+'%');v.textContent=z.value+'x';"
          "var b=s.viewBox.baseVal,r=s.getBoundingClientRect();if(!r.width)return;var k=(r.height/b.height)/(r.width/b.width);\n"
          "s.querySelectorAll('text').forEach(function(t){var x=parseFloat(t.getAttribute('x'));"
          "t.setAttribute('transform','translate('+x+' 0) scale('+k+' 1) translate('+(-x)+' 0)');});}\n"
          "z.addEventListener('input',fit);window.addEventListener('resize',fit);fit();})();</script>\n", out);
}

/* HTML: the timeline of the bars (n of them), its lanes, axis, legend and zoom. */
BATCH__PRIVATE void batch__html_timeline(FILE* out, batch_job* job, const batch__job_facts* f, batch__html_bar* bars) {
    bool graph = f->kind == BATCH__KIND_GRAPH;
    batch__html_tl tl;
    tl.lanes = f->workers + 1;
    tl.skip_lane = graph && f->summary.skipped ? tl.lanes++ : -1;
    tl.cancel_lane = graph && f->summary.cancelled ? tl.lanes++ : -1;
    tl.failed = graph ? BATCH_TASK_FAILED : BATCH_BATCH_FAILED;
    tl.scale = BATCH__SVG_WIDTH / (double)f->summary.wall_ns;
    size_t n = batch__html_collect(job, f, &tl, bars);
    int height = tl.lanes * BATCH__SVG_LANE + 24;
    fprintf(out, "<h2>Timeline</h2>\n<p>zoom <input type=\"range\" id=\"zoom\" min=\"1\" max=\"50\" value=\"1\"> <span id=\"zv\">1x</span>"
                 "</p>\n<div class=\"tl\"><svg id=\"tl\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                 "preserveAspectRatio=\"none\" width=\"100%%\" height=\"%d\">\n",
            BATCH__SVG_LEFT + (int)BATCH__SVG_WIDTH + 10, height, height);
    for (int l = 0; l < tl.lanes; l++) {
        const char* what = l == tl.skip_lane ? "skipped" : l == tl.cancel_lane ? "cancelled" : l == f->workers ? "other" : NULL;
        fprintf(out, "<text x=\"4\" y=\"%d\">", l * BATCH__SVG_LANE + 15);
        if (what) fputs(what, out);
        else fprintf(out, "worker %d", l);
        fprintf(out, "</text><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#eee\"/>\n", BATCH__SVG_LEFT,
                (l + 1) * BATCH__SVG_LANE, BATCH__SVG_LEFT + (int)BATCH__SVG_WIDTH, (l + 1) * BATCH__SVG_LANE);
    }
    batch__html_axis(out, &tl, f->summary.wall_ns);
    batch__html_bars(out, job, f, &tl, bars, n);
    fputs("</svg></div>\n<p>", out);
    static const char* const task_keys[] = { "completed", "failed", "skipped", "cancelled" };
    static const char* const batch_keys[] = { "success", "partial_success", "failed" };
    for (int k = 0; k < (graph ? 4 : 3); k++)
        fprintf(out, "<span class=\"%s\" style=\"padding:0 6px;margin-right:6px\">%s</span>", graph ? task_keys[k] : batch_keys[k],
                graph ? task_keys[k] : batch_keys[k]);
    fputs("<br>Touching bars of one status on a lane are drawn as one (hover: how many); failed ones always on their own, "
          "on top. Skipped and cancelled tasks did not run: a mark on their lane at the time they were settled, else at "
          "its end.</p>\n", out);
    batch__html_zoom(out);
}

BATCH_API batch_result batch_job_report_html(batch_job* job, FILE* out) {
    batch__job_facts f;
    batch_result r = batch__report_facts(job, out, &f);
    if (r != BATCH_OK) return r;
    batch__html_bar* bars = NULL;
    bool timeline = f.timeline && f.summary.wall_ns && f.nrecords;
    if (timeline && !(bars = (batch__html_bar*)BATCH_MALLOC(f.nrecords * sizeof *bars, NULL))) return BATCH_ERR_NOMEM;
    batch__html_summary(out, &f);
    if (bars) {
        batch__html_timeline(out, job, &f, bars);
        BATCH_FREE(bars, NULL);
    }
    batch__html_failures(out, job, &f);
    fputs("</body></html>\n", out);
    return (fflush(out) != 0 || ferror(out)) ? BATCH_ERR_IO : BATCH_OK;   /* the whole report reached the file */
}

/* ---- trace: Chrome trace event JSON (Perfetto UI, chrome://tracing) ----------------------- */
/* Every attempt of a task or kept batch is a complete event ("X") on its worker's thread line
   (tid: the worker; tid `workers`: any other thread); a retried attempt's wait for its retry is
   one on a "retry waits" line (tid workers + 1 + lane). Waits overlap, and the format wants the
   events of one thread nested, so they are laid out on as many lanes as it takes: by start, each
   on the first lane free by then. */
typedef struct batch__trace_wait { uint64_t t0, t1; size_t k; } batch__trace_wait;

BATCH__PRIVATE int batch__trace_wait_cmp(const void* a, const void* b) {
    const batch__trace_wait* x = (const batch__trace_wait*)a;
    const batch__trace_wait* y = (const batch__trace_wait*)b;
    return x->t0 < y->t0 ? -1 : x->t0 > y->t0 ? 1 : (x->k > y->k) - (x->k < y->k);
}

/* Microseconds with 3 decimals. */
BATCH__PRIVATE void batch__trace_us(FILE* out, uint64_t ns) {
    fprintf(out, "%llu.%03llu", (unsigned long long)(ns / 1000u), (unsigned long long)(ns % 1000u));
}

/* The lanes of the retry waits (lane[k] for earlier attempt k, -1: no wait) and their number:
   BATCH_ERR_NOMEM when the room for them cannot be had. *lanes_out is NULL when there is no
   wait. */
BATCH__PRIVATE batch_result batch__trace_lanes(batch_job* job, const batch__job_facts* f, int** lanes_out, int* nlanes) {
    const batch__job_ops* ops = batch__head(job)->ops;
    batch__record r;
    size_t n = 0, nw = 0;
    *lanes_out = NULL;
    *nlanes = 0;
    for (const void* c = ops->earlier(job, NULL, &r); c; c = ops->earlier(job, c, &r)) n++;
    if (!n) return BATCH_OK;
    batch__trace_wait* w = (batch__trace_wait*)BATCH_MALLOC(n * sizeof *w, NULL);
    int* lane = (int*)BATCH_MALLOC(n * sizeof *lane, NULL);
    uint64_t* lane_end = (uint64_t*)BATCH_MALLOC(n * sizeof *lane_end, NULL);
    if (!w || !lane || !lane_end) {
        if (w) BATCH_FREE(w, NULL);
        if (lane) BATCH_FREE(lane, NULL);
        if (lane_end) BATCH_FREE(lane_end, NULL);
        return BATCH_ERR_NOMEM;
    }
    size_t k = 0;
    for (const void* c = ops->earlier(job, NULL, &r); c && k < n; c = ops->earlier(job, c, &r), k++) {
        lane[k] = -1;
        if (!r.start_ns || !r.next_ns) continue;
        uint64_t t0 = batch__trace_rel(f, r.end_ns), t1 = batch__trace_rel(f, r.next_ns);
        w[nw].t0 = t0;
        w[nw].t1 = t1 > t0 ? t1 : t0;
        w[nw++].k = k;
    }
    qsort(w, nw, sizeof *w, batch__trace_wait_cmp);
    int used = 0;
    for (size_t i = 0; i < nw; i++) {
        int l = 0;
        while (l < used && lane_end[l] > w[i].t0) l++;
        if (l == used) used++;
        lane_end[l] = w[i].t1;
        lane[w[i].k] = l;
    }
    BATCH_FREE(w, NULL);
    BATCH_FREE(lane_end, NULL);
    *lanes_out = lane;
    *nlanes = used;
    return BATCH_OK;
}

/* The metadata: the process's name, and a name for every thread line. */
BATCH__PRIVATE void batch__trace_meta(FILE* out, const batch__job_facts* f, int nlanes) {
    fputs("{\"traceEvents\": [\n{\"ph\": \"M\", \"pid\": 1, \"tid\": 0, \"name\": \"process_name\", \"args\": {\"name\": ", out);
    batch__json_string(out, f->kind == BATCH__KIND_MAP ? "map" : f->name ? f->name : "graph");
    fputs("}}", out);
    for (int t = 0; t <= f->workers + nlanes; t++) {
        fprintf(out, ",\n{\"ph\": \"M\", \"pid\": 1, \"tid\": %d, \"name\": \"thread_name\", \"args\": {\"name\": \"", t);
        if (t < f->workers) fprintf(out, "worker %d", t);
        else if (t == f->workers) fputs("other threads", out);
        else if (t == f->workers + 1) fputs("retry waits", out);
        else fprintf(out, "retry waits %d", t - f->workers);
        fprintf(out, "\"}},\n{\"ph\": \"M\", \"pid\": 1, \"tid\": %d, \"name\": \"thread_sort_index\", \"args\": {\"sort_index\": %d}}", t, t);
    }
}

/* The start of a complete event: its kind, category, name (the task's, "#id" without one, or
   "batch N", then suffix), thread line and times (the end no earlier than the start). */
BATCH__PRIVATE void batch__trace_begin(FILE* out, const batch__job_facts* f, const batch__record* r, const char* cat,
                                       const char* suffix, int tid, uint64_t t0, uint64_t t1) {
    fprintf(out, ",\n{\"ph\": \"X\", \"cat\": \"%s\", \"name\": \"", cat);
    if (f->kind == BATCH__KIND_MAP) fprintf(out, "batch %zu", r->index);
    else if (r->name) batch__json_chars(out, r->name);
    else fprintf(out, "#%zu", r->index + 1);
    batch__json_chars(out, suffix);
    fprintf(out, "\", \"pid\": 1, \"tid\": %d, \"ts\": ", tid);
    batch__trace_us(out, t0);
    fputs(", \"dur\": ", out);
    batch__trace_us(out, t1 > t0 ? t1 - t0 : 0);
}

/* An attempt's event, and the wait for its retry when it has one (lane >= 0). */
BATCH__PRIVATE void batch__trace_attempt(FILE* out, const batch__job_facts* f, const batch__record* r, int lane) {
    if (!r->start_ns) return;   /* not run, or no times */
    bool graph = f->kind == BATCH__KIND_GRAPH;
    int tid = (r->worker >= 0 && r->worker < f->workers) ? r->worker : f->workers;
    uint64_t t0 = batch__trace_rel(f, r->start_ns), t1 = batch__trace_rel(f, r->end_ns);
    batch__trace_begin(out, f, r, graph ? "task" : "batch", "", tid, t0, t1);
    fprintf(out, ", \"args\": {\"status\": \"%s\", \"attempt\": %d", r->status_string, r->attempt);
    if (graph && (r->error || r->status == BATCH_TASK_FAILED)) {
        fprintf(out, ", \"error\": %d, \"message\": ", r->error);
        batch__json_string(out, r->message);
    } else if (!graph) {
        fprintf(out, ", \"first\": %zu, \"count\": %zu, \"succeeded\": %zu, \"failed\": %zu", r->first, r->count,
                r->succeeded, r->failed);
    }
    fputs("}}", out);
    if (lane < 0 || !r->next_ns) return;
    batch__trace_begin(out, f, r, "retry-wait", " (retry wait)", f->workers + 1 + lane, t1, batch__trace_rel(f, r->next_ns));
    fprintf(out, ", \"args\": {\"after_attempt\": %d}}", r->attempt);
}

BATCH_API batch_result batch_job_report_trace(batch_job* job, FILE* out) {
    batch__job_facts f;
    batch_result res = batch__report_facts(job, out, &f);
    if (res != BATCH_OK) return res;
    int* lanes;
    int nlanes;
    if ((res = batch__trace_lanes(job, &f, &lanes, &nlanes)) != BATCH_OK) return res;   /* nothing written */
    batch__trace_meta(out, &f, nlanes);
    const batch__job_ops* ops = batch__head(job)->ops;
    batch__record r;
    for (size_t i = 0; i < f.nrecords; i++) {   /* the last attempts */
        ops->record(job, i, &r);
        batch__trace_attempt(out, &f, &r, -1);
    }
    size_t k = 0;   /* the earlier ones, in the order batch__trace_lanes saw them */
    for (const void* c = ops->earlier(job, NULL, &r); c && lanes; c = ops->earlier(job, c, &r), k++)
        batch__trace_attempt(out, &f, &r, lanes[k]);
    if (lanes) BATCH_FREE(lanes, NULL);
    fputs("\n],\n\"displayTimeUnit\": \"ms\"}\n", out);
    return (fflush(out) != 0 || ferror(out)) ? BATCH_ERR_IO : BATCH_OK;   /* the whole report reached the file */
}

/* ---- reading reports back (batch_report_compare) ----------------------------------------- */
/* A small reader for the reports above: a strict JSON walker that keeps the top-level numbers
   and strings it knows and each task's id, name and status. Strings are unescaped into a
   bounded buffer. */
#define BATCH__RPT_MAX_TASKS 100000
typedef struct batch__rpt_task { long long id; char name[64]; char status[16]; } batch__rpt_task;
typedef struct batch__rpt {
    char status[32], kind[8];
    long long total, completed, failed, skipped, cancelled, retries, rate, wall_us;
    batch__rpt_task* tasks;
    size_t ntasks, cap;
    void* ctx;
    bool nomem;                   /* reading failed for want of memory, not for the text */
} batch__rpt;

BATCH__PRIVATE const char* batch__js_ws(const char* p) { while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++; return p; }

/* Reads a string into buf (truncated to n - 1); returns the position after it, or NULL. */
BATCH__PRIVATE const char* batch__js_str(const char* p, char* buf, size_t n) {
    size_t k = 0;
    if (*p++ != '"') return NULL;
    while (*p != '"') {
        char c = *p;
        if (!c || (unsigned char)c < 0x20) return NULL;
        if (c == '\\') {
            c = *++p;
            if (c == 'n') c = '\n';
            else if (c == 't') c = '\t';
            else if (c == 'r') c = '\r';
            else if (c == 'u') {
                for (int i = 1; i <= 4; i++) if (!isxdigit((unsigned char)p[i])) return NULL;
                c = '?';
                p += 4;
            } else if (c != '"' && c != '\\' && c != '/') return NULL;
        }
        if (buf && k + 1 < n) buf[k++] = c;
        p++;
    }
    if (buf && n) buf[k] = 0;
    return p + 1;
}

BATCH__PRIVATE const char* batch__js_skip(const char* p, int depth);
BATCH__PRIVATE const char* batch__js_num(const char* p, long long* v) {
    char* end;
    errno = 0;
    long long x = strtoll(p, &end, 10);
    if (end == p || errno) return NULL;
    if (*end == '.' || *end == 'e' || *end == 'E') return NULL;   /* reports hold integers */
    if (v) *v = x;
    return end;
}
BATCH__PRIVATE const char* batch__js_skip(const char* p, int depth) {
    p = batch__js_ws(p);
    if (depth > 16) return NULL;
    if (*p == '"') return batch__js_str(p, NULL, 0);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        bool obj = *p == '{';
        p = batch__js_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (obj) {
                if (!(p = batch__js_str(batch__js_ws(p), NULL, 0))) return NULL;
                p = batch__js_ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = batch__js_skip(p, depth + 1))) return NULL;
            p = batch__js_ws(p);
            if (*p == ',') { p++; continue; }
            return *p == close ? p + 1 : NULL;
        }
    }
    if (!strncmp(p, "null", 4) || !strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    return batch__js_num(p, NULL);
}

BATCH__PRIVATE const char* batch__rpt_task_read(const char* p, batch__rpt* r) {
    if (r->ntasks == r->cap) {
        if (r->cap >= BATCH__RPT_MAX_TASKS) return NULL;
        size_t ncap = r->cap ? r->cap * 2 : 64;
        batch__rpt_task* t = (batch__rpt_task*)BATCH_REALLOC(r->tasks, ncap * sizeof *t, r->ctx);
        if (!t) { r->nomem = true; return NULL; }
        r->tasks = t;
        r->cap = ncap;
    }
    batch__rpt_task* t = &r->tasks[r->ntasks];
    memset(t, 0, sizeof *t);
    p = batch__js_ws(p);
    if (*p++ != '{') return NULL;
    for (;;) {
        char key[32];
        if (!(p = batch__js_str(batch__js_ws(p), key, sizeof key))) return NULL;
        p = batch__js_ws(p);
        if (*p++ != ':') return NULL;
        p = batch__js_ws(p);
        if (!strcmp(key, "id")) p = batch__js_num(p, &t->id);
        else if (!strcmp(key, "name") && *p == '"') p = batch__js_str(p, t->name, sizeof t->name);
        else if (!strcmp(key, "status")) p = batch__js_str(p, t->status, sizeof t->status);
        else p = batch__js_skip(p, 2);
        if (!p) return NULL;
        p = batch__js_ws(p);
        if (*p == ',') { p++; continue; }
        if (*p++ != '}') return NULL;
        r->ntasks++;
        return p;
    }
}

/* Reads a whole report; false when it is not one. */
BATCH__PRIVATE bool batch__rpt_read(const char* p, batch__rpt* r) {
    p = batch__js_ws(p);
    if (*p++ != '{') return false;
    bool has_status = false;
    for (;;) {
        char key[40];
        if (!(p = batch__js_str(batch__js_ws(p), key, sizeof key))) return false;
        p = batch__js_ws(p);
        if (*p++ != ':') return false;
        p = batch__js_ws(p);
        long long* num = !strcmp(key, "total") ? &r->total : !strcmp(key, "completed") ? &r->completed
                       : !strcmp(key, "failed") ? &r->failed : !strcmp(key, "skipped") ? &r->skipped
                       : !strcmp(key, "cancelled") ? &r->cancelled : !strcmp(key, "retries") ? &r->retries
                       : !strcmp(key, "success_rate_permille") ? &r->rate : !strcmp(key, "wall_us") ? &r->wall_us : NULL;
        if (num) p = batch__js_num(p, num);
        else if (!strcmp(key, "status")) { p = batch__js_str(p, r->status, sizeof r->status); has_status = p != NULL; }
        else if (!strcmp(key, "kind")) p = batch__js_str(p, r->kind, sizeof r->kind);
        else if (!strcmp(key, "tasks") && *p == '[') {
            p = batch__js_ws(p + 1);
            if (*p == ']') p++;
            else for (;;) {
                if (!(p = batch__rpt_task_read(p, r))) return false;
                p = batch__js_ws(p);
                if (*p == ',') { p++; continue; }
                if (*p++ != ']') return false;
                break;
            }
        } else p = batch__js_skip(p, 1);
        if (!p) return false;
        p = batch__js_ws(p);
        if (*p == ',') { p++; continue; }
        if (*p++ != '}') return false;
        return has_status && *batch__js_ws(p) == 0;
    }
}

/* A signed count of tenths as "[-]x.y". */
BATCH__PRIVATE const char* batch__tenths(char* buf, size_t n, long long v) {
    unsigned long long a = (unsigned long long)(v < 0 ? -v : v);
    snprintf(buf, n, "%s%llu.%llu", v < 0 ? "-" : "+", a / 10, a % 10);
    return buf;
}

BATCH_API batch_result batch_report_compare(const char* baseline, const char* current, FILE* out) {
    if (!baseline || !current || !out) return BATCH_ERR_INVALID;
    batch__rpt a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    batch_result r = BATCH_ERR_INVALID;
    if (!batch__rpt_read(baseline, &a) || !batch__rpt_read(current, &b)) {
        if (a.nomem || b.nomem) r = BATCH_ERR_NOMEM;
    } else {
        r = BATCH_OK;
        fprintf(out, "status: %s -> %s\n", a.status, b.status);
        char t1[32], t2[32], t3[32];
        fprintf(out, "success rate: %s%% -> %s%% (%s points)\n", batch__tenths(t1, sizeof t1, a.rate) + 1,
                batch__tenths(t2, sizeof t2, b.rate) + 1, batch__tenths(t3, sizeof t3, b.rate - a.rate));
        long long pct = a.wall_us ? (b.wall_us - a.wall_us) * 1000 / a.wall_us : 0;
        fprintf(out, "duration: %lld us -> %lld us (%s%%)\n", a.wall_us, b.wall_us, batch__tenths(t1, sizeof t1, pct));
        fprintf(out, "completed %lld -> %lld, failed %lld -> %lld, skipped %lld -> %lld, cancelled %lld -> %lld, retries %lld -> %lld\n",
                a.completed, b.completed, a.failed, b.failed, a.skipped, b.skipped, a.cancelled, b.cancelled, a.retries, b.retries);
        size_t changed = 0;
        for (size_t i = 0; i < b.ntasks; i++) {
            const batch__rpt_task* y = &b.tasks[i];
            const batch__rpt_task* x = NULL;
            for (size_t k = 0; k < a.ntasks && !x; k++)   /* by name when both have one, else by id */
                if (y->name[0] ? !strcmp(a.tasks[k].name, y->name) : (!a.tasks[k].name[0] && a.tasks[k].id == y->id)) x = &a.tasks[k];
            if (x && !strcmp(x->status, y->status)) continue;
            if (!changed++) fputs("tasks whose status changed:\n", out);
            if (y->name[0]) fprintf(out, "  %s: %s -> %s\n", y->name, x ? x->status : "(new)", y->status);
            else fprintf(out, "  #%lld: %s -> %s\n", y->id, x ? x->status : "(new)", y->status);
        }
        if (!changed && b.ntasks) fputs("no task changed status\n", out);
        if (fflush(out) != 0 || ferror(out)) r = BATCH_ERR_IO;
    }
    if (a.tasks) BATCH_FREE(a.tasks, a.ctx);
    if (b.tasks) BATCH_FREE(b.tasks, b.ctx);
    return r;
}

#endif /* BATCH__REPORT_C */
