/* test_report.c - JSON reports parse back (a small strict JSON checker) and carry the right
   counts and escaped strings; text reports name what did not complete. */

/* A strict JSON syntax checker: returns the position after one value, or NULL. Numbers are
   integers, unless json_fractions is set (the trace writes microseconds with decimals). */
static bool json_fractions;
static const char* json_ws(const char* p) { while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++; return p; }
static const char* json_value(const char* p, int depth);
static const char* json_string(const char* p) {
    if (*p++ != '"') return NULL;
    while (*p != '"') {
        if ((unsigned char)*p < 0x20) return NULL;   /* raw control characters are not allowed */
        if (*p == '\\') {
            p++;
            if (*p == 'u') { for (int i = 1; i <= 4; i++) if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) return NULL; p += 5; continue; }
            if (!strchr("\"\\/bfnrt", *p) || !*p) return NULL;
        }
        p++;
    }
    return p + 1;
}
static const char* json_value(const char* p, int depth) {
    p = json_ws(p);
    if (depth > 32) return NULL;
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        bool obj = *p == '{';
        p = json_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (obj) { p = json_string(json_ws(p)); if (!p) return NULL; p = json_ws(p); if (*p++ != ':') return NULL; }
            p = json_value(p, depth + 1);
            if (!p) return NULL;
            p = json_ws(p);
            if (*p == ',') { p++; continue; }
            if (*p == close) return p + 1;
            return NULL;
        }
    }
    if (*p == '"') return json_string(p);
    if (!strncmp(p, "null", 4) || !strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    if (*p == '-' || (*p >= '0' && *p <= '9')) {
        if (*p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
        if (*p == '.' && json_fractions) {
            p++;
            if (!(*p >= '0' && *p <= '9')) return NULL;
            while (*p >= '0' && *p <= '9') p++;
        }
        if (*p == '.' || *p == 'e' || *p == 'E') return NULL;   /* reports write integers only */
        return p;
    }
    return NULL;
}
static void check_json(const char* text) {
    const char* end = json_value(text, 0);
    if (!end || *json_ws(end)) { fprintf(stderr, "bad JSON:\n%s\n", text); CHECK(0); }
}

/* Writes a report of job into buf (a NUL-terminated string) and checks the call's result. */
static batch_result report_into(char* buf, size_t n, batch_result (*report)(batch_job*, FILE*), batch_job* job) {
    FILE* f = test_memfile(buf, n);
    CHECK(f != NULL);
    batch_result r = report(job, f);
    test_memfile_close(f, buf, n);
    return r;
}

static int fail_quote(batch_ctx* ctx, void* u) { (void)u; return batch_ctx_fail(ctx, 9, "bad \"input\"\n\tline\x01"); }

/* A stream that refuses every write: a file (path, to remove afterwards) opened for reading only. */
static FILE* refusing_stream(const char* name, char* path, size_t n) {
    test_tmp_path(path, n, name);
    FILE* made = fopen(path, "w");
    CHECK(made != NULL);
    fclose(made);
    return fopen(path, "r");
}

/* A finished job's report refuses NULL arguments, and a stream that refuses writes is an IO error. */
static void check_report_bad_input(batch_job* job, batch_result (*report)(batch_job*, FILE*), const char* file) {
    CHECK_EQ(report(NULL, stdout), BATCH_ERR_INVALID);
    CHECK_EQ(report(job, NULL), BATCH_ERR_INVALID);
    char path[MAX_TEST_PATH];
    FILE* ro = refusing_stream(file, path, sizeof path);
    CHECK(ro != NULL);
    CHECK_EQ(report(job, ro), BATCH_ERR_IO);
    fclose(ro);
    remove(path);
}

static void test_report_json_text(void) {
    batch_pool* p = make_pool(2);
    batch_graph* g;
    CHECK_OK(batch_graph_create(&g, &(batch_graph_desc){ .name = "rep\"ort" }));
    batch_task a = add_task(g, task_ok, NULL, "first");
    batch_task b = add_task(g, fail_quote, NULL, "se\"cond\\");
    batch_task c = add_task(g, task_ok, NULL, NULL);
    CHECK_OK(batch_task_precede(g, a, b));
    CHECK_OK(batch_task_precede(g, b, c));
    batch_job* job;
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    static char buf[16384];
    batch_job_wait(job, NULL);
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_json, job));
    check_json(buf);
    CHECK(strstr(buf, "\"status\": \"partial_failure\""));
    CHECK(strstr(buf, "\"total\": 3"));
    CHECK(strstr(buf, "\"skipped\": 1"));
    CHECK(strstr(buf, "\"name\": \"se\\\"cond\\\\\""));
    CHECK(strstr(buf, "bad \\\"input\\\"\\n\\tline\\u0001"));
    CHECK(strstr(buf, "\"graph\": \"rep\\\"ort\""));
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_text, job));
    CHECK(strstr(buf, "partial_failure") && strstr(buf, "se\"cond") && strstr(buf, "skipped"));
    CHECK(!strstr(buf, "first"));   /* completed tasks are not listed */
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_html, job));
    CHECK(strstr(buf, "<!DOCTYPE html>") && strstr(buf, "<svg") && strstr(buf, "</html>"));
    CHECK(strstr(buf, "se&quot;cond\\"));   /* escaped in the failure table */
    CHECK(!strstr(buf, "<script src"));   /* inline only */
    CHECK(strstr(buf, "<rect"));
    CHECK_EQ(batch_job_report_json(NULL, stdout), BATCH_ERR_INVALID);
    CHECK_EQ(batch_job_report_json(job, NULL), BATCH_ERR_INVALID);
#if defined(_WIN32)
    char rdonly[MAX_TEST_PATH];
    FILE* full = refusing_stream("batch-report-rdonly.txt", rdonly, sizeof rdonly);   /* no /dev/full */
#else
    FILE* full = fopen("/dev/full", "w");   /* every write fails (ENOSPC): the report says so */
#endif
    if (full) {
        CHECK_EQ(batch_job_report_json(job, full), BATCH_ERR_IO);
        clearerr(full);
        CHECK_EQ(batch_job_report_text(job, full), BATCH_ERR_IO);
        clearerr(full);
        CHECK_EQ(batch_job_report_html(job, full), BATCH_ERR_IO);
        clearerr(full);
        CHECK_EQ(batch_graph_dump_dot(g, full), BATCH_ERR_IO);
        fclose(full);
    }
#if defined(_WIN32)
    CHECK(full != NULL);
    remove(rdonly);
#endif
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));

    /* a map: busy before the end, then a report */
    CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 1000, .item_fn = half_fail, .batch_size = 10, .error_threshold = 0.5 }, &job));
    batch_result early = report_into(buf, sizeof buf, batch_job_report_json, job);
    CHECK(early == BATCH_ERR_BUSY || early == BATCH_OK);   /* it may already be over */
    CHECK_EQ(batch_map_wait(job, NULL, NULL), BATCH_PARTIAL);
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_json, job));
    check_json(buf);
    CHECK(strstr(buf, "\"kind\": \"map\"") && strstr(buf, "\"batches\": 100") && strstr(buf, "\"failed\": 500"));
    CHECK(strstr(buf, "\"success_rate_permille\": 500"));
    CHECK(!strstr(buf, "batches_kept"));
    CHECK_OK(batch_job_destroy(job));
    /* keep_batches: one record per batch in the JSON, and a timeline in the HTML */
    CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 100, .item_fn = half_fail, .batch_size = 10, .error_threshold = 0.2,
                                                    .keep_batches = 1 }, &job));
    CHECK_EQ(batch_map_wait(job, NULL, NULL), BATCH_ERR_FAILED);
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_json, job));
    check_json(buf);
    int kept = 0;
    for (const char* q = buf; (q = strstr(q, "{\"index\":")); q++) kept++;
    CHECK_EQ(kept, 10);
    CHECK(strstr(buf, "\"status\": \"failed\""));
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_html, job));
    int rects = 0;
    for (const char* q = buf; (q = strstr(q, "<rect")); q++) rects++;
    CHECK_EQ(rects, 10);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_pool_destroy(p));
}

static int maybe_fail(batch_ctx* ctx, void* u) { return *(int*)u ? batch_ctx_fail(ctx, 4, "now failing") : 0; }

static void test_report_compare(void) {
    batch_pool* p = make_pool(2);
    batch_graph* g = make_graph();
    int flag = 0;
    batch_task a = add_task(g, maybe_fail, &flag, "stable");
    batch_task b = add_task(g, maybe_fail, &flag, "breaks");
    batch_task c = add_task(g, task_ok, NULL, "after");
    (void)a;
    CHECK_OK(batch_task_precede(g, b, c));
    static char base[8192], cur[8192], diff[4096];
    for (int run = 0; run < 2; run++) {
        batch_job* job;
        CHECK_OK(batch_graph_launch(p, g, NULL, &job));
        batch_job_wait(job, NULL);
        CHECK_OK(report_into(run ? cur : base, sizeof base, batch_job_report_json, job));
        CHECK_OK(batch_job_destroy(job));
        flag = 1;   /* the second run: every maybe_fail task fails */
    }
    FILE* f = test_memfile(diff, sizeof diff);
    CHECK_OK(batch_report_compare(base, cur, f));
    test_memfile_close(f, diff, sizeof diff);
    CHECK(strstr(diff, "status: completed -> failed"));
    CHECK(strstr(diff, "success rate: 100.0% -> 0.0% (-100.0 points)"));
    CHECK(strstr(diff, "breaks: completed -> failed"));
    CHECK(strstr(diff, "stable: completed -> failed"));
    CHECK(strstr(diff, "after: completed -> skipped"));
    f = test_memfile(diff, sizeof diff);
    CHECK_OK(batch_report_compare(base, base, f));
    test_memfile_close(f, diff, sizeof diff);
    CHECK(strstr(diff, "no task changed status"));
    CHECK_EQ(batch_report_compare(base, "{\"status\": 1.5}", stdout), BATCH_ERR_INVALID);
    CHECK_EQ(batch_report_compare("not json", cur, stdout), BATCH_ERR_INVALID);
    CHECK_EQ(batch_report_compare(base, "{\"kind\": \"graph\"", stdout), BATCH_ERR_INVALID);
    CHECK_EQ(batch_report_compare(NULL, cur, stdout), BATCH_ERR_INVALID);
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

/* The records interface the reports read (job.c, "records for reports"), read directly. */
static int rec_flaky(batch_ctx* ctx, void* u) { (void)u; return batch_ctx_attempt(ctx) < 1 ? batch_ctx_fail(ctx, 6, "try again") : 0; }
static int rec_gate(batch_ctx* ctx, void* u) {
    (void)ctx;
    while (!atomic_load((_Atomic int*)u)) test_sleep_ns(100000);
    return 0;
}

static void test_report_records(void) {
    batch_pool* p = make_pool(2);
    batch_graph* g;
    CHECK_OK(batch_graph_create(&g, &(batch_graph_desc){ .name = "records" }));
    _Atomic int gate_open = 0;
    batch_task a = add_task(g, rec_gate, (void*)&gate_open, "gate");
    batch_task b = add_task(g, fail_quote, NULL, "fails");
    batch_task c = add_task(g, task_ok, NULL, NULL);
    batch_task d;
    CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = rec_flaky, .name = "flaky", .max_retries = 2, .retry_base_ns = 1000 }, &d));
    CHECK_OK(batch_task_precede(g, a, b));
    CHECK_OK(batch_task_precede(g, b, c));
    batch_job* job;
    uint64_t before = batch_now_ns();
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    const batch__job_ops* ops = batch__head(job)->ops;
    batch__job_facts f;
    CHECK_EQ(ops->facts(job, &f), BATCH_ERR_BUSY);   /* not waited for yet */
    atomic_store(&gate_open, 1);
    CHECK_EQ(batch_job_wait(job, NULL), BATCH_PARTIAL);
    CHECK_OK(ops->facts(job, &f));
    CHECK_EQ(f.kind, BATCH__KIND_GRAPH);
    CHECK(f.name && !strcmp(f.name, "records"));
    CHECK_EQ(f.nrecords, 4);
    CHECK(f.keeps_records && f.timeline);
    CHECK(f.launch_ns >= before && f.workers == batch_pool_workers(p));
    CHECK_EQ(f.summary.total, 4);
    CHECK_EQ(f.summary.completed, 2);
    CHECK_EQ(f.summary.failed, 1);
    CHECK_EQ(f.summary.skipped, 1);
    CHECK_EQ(f.summary.retries, 1);
    static const int want[] = { BATCH_TASK_COMPLETED, BATCH_TASK_FAILED, BATCH_TASK_SKIPPED, BATCH_TASK_COMPLETED };
    for (size_t i = 0; i < 4; i++) {
        batch__record r;
        ops->record(job, i, &r);
        CHECK_EQ(r.index, i);
        CHECK_EQ(r.status, want[i]);
        CHECK(!strcmp(r.status_string, batch_task_status_string((batch_task_status)want[i])));
        CHECK_EQ(r.count, 0);
        if (want[i] == BATCH_TASK_SKIPPED) {
            CHECK(!r.name && !r.message);
            CHECK_EQ(r.attempts, 0);
            CHECK(r.start_ns == 0 && r.end_ns == 0);
            continue;
        }
        CHECK(r.start_ns >= f.launch_ns && r.end_ns >= r.start_ns);
        CHECK(r.worker >= -1 && r.worker < f.workers);
        CHECK_EQ(r.attempts, i == 3 ? 2 : 1);
        CHECK_EQ(r.retries, r.attempts - 1);
        if (i == 1) {
            CHECK(!strcmp(r.name, "fails"));
            CHECK_EQ(r.error, 9);
            CHECK(r.message && !strncmp(r.message, "bad \"input\"", 11));
        } else {
            CHECK(!r.message);
            CHECK_EQ(r.error, 0);
        }
        CHECK_EQ(r.attempt, r.attempts);
        CHECK_EQ(r.next_ns, 0);
    }
    {
        /* the attempts before a retry: flaky's first */
        batch__record e, last;
        const void* cur = ops->earlier(job, NULL, &e);
        CHECK(cur != NULL);
        ops->record(job, 3, &last);
        CHECK_EQ(e.index, 3);
        CHECK_EQ(e.attempt, 1);
        CHECK_EQ(e.status, BATCH_TASK_FAILED);
        CHECK(e.error == 6 && e.message && !strcmp(e.message, "try again"));
        CHECK(e.start_ns >= f.launch_ns && e.end_ns >= e.start_ns && e.next_ns >= e.end_ns && e.next_ns <= last.start_ns);
        CHECK(ops->earlier(job, cur, &e) == NULL);
    }
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));

    /* a map keeps one record per batch, only with keep_batches */
    for (int keep = 0; keep < 2; keep++) {
        CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 100, .item_fn = half_fail, .batch_size = 10, .error_threshold = 0.2,
                                                        .keep_batches = keep }, &job));
        CHECK_EQ(batch_map_wait(job, NULL, NULL), BATCH_ERR_FAILED);
        ops = batch__head(job)->ops;
        CHECK_OK(ops->facts(job, &f));
        CHECK_EQ(f.kind, BATCH__KIND_MAP);
        CHECK(!f.name);
        CHECK_EQ(f.map.batches, 10);
        CHECK_EQ(f.map.batches_failed, 10);
        CHECK_EQ(f.summary.failed, 100);
        CHECK_EQ(f.keeps_records, keep);
        CHECK_EQ(f.timeline, keep);
        CHECK_EQ(f.nrecords, keep ? 10 : 0);
        unsigned seen = 0;
        for (size_t i = 0; i < f.nrecords; i++) {
            batch__record r;
            ops->record(job, i, &r);
            CHECK(r.index < 10 && !(seen & (1u << r.index)));
            seen |= 1u << r.index;
            CHECK_EQ(r.first, r.index * 10);
            CHECK_EQ(r.count, 10);
            CHECK_EQ(r.succeeded + r.failed, 10);
            CHECK_EQ(r.status, BATCH_BATCH_FAILED);
            CHECK(!strcmp(r.status_string, "failed"));
            CHECK(!r.name && !r.message);
            CHECK_EQ(r.retries, 0);
            CHECK_EQ(r.attempts, 1);
            CHECK(r.start_ns >= f.launch_ns && r.end_ns >= r.start_ns);
        }
        CHECK_EQ(seen, keep ? 0x3ffu : 0u);
        CHECK_OK(batch_job_destroy(job));
    }
    CHECK_OK(batch_pool_destroy(p));
}

/* ---- the trace (batch_job_report_trace) ------------------------------------------------------- */
/* One event of a trace, read back: its fields (strings as written, escaped), times in ns. */
typedef struct trace_ev {
    char ph[4], cat[16], name[96], status[24], message[160], thread[32];
    int tid, attempt, error;
    bool has_error;
    uint64_t ts, dur;
} trace_ev;

/* The value of key in the object at obj (top level only), or NULL. */
static const char* json_get(const char* obj, const char* key) {
    const char* p = json_ws(obj);
    if (*p++ != '{') return NULL;
    size_t n = strlen(key);
    for (;;) {
        p = json_ws(p);
        const char* k = p;
        if (!(p = json_string(p))) return NULL;
        bool hit = (size_t)(p - k) == n + 2 && !strncmp(k + 1, key, n);
        p = json_ws(p);
        if (*p++ != ':') return NULL;
        p = json_ws(p);
        if (hit) return p;
        if (!(p = json_value(p, 1))) return NULL;
        p = json_ws(p);
        if (*p++ != ',') return NULL;
    }
}
/* A string value's text as written (without the quotes), truncated to n - 1. */
static bool json_get_str(const char* obj, const char* key, char* buf, size_t n) {
    const char* v = json_get(obj, key);
    const char* end = v && *v == '"' ? json_string(v) : NULL;
    if (!end) return false;
    size_t len = (size_t)(end - v) - 2;
    if (len >= n) len = n - 1;
    memcpy(buf, v + 1, len);
    buf[len] = 0;
    return true;
}
/* "123.456" microseconds as 123456 ns (exactly 3 decimals). */
static bool json_get_ns(const char* obj, const char* key, uint64_t* ns) {
    const char* v = json_get(obj, key);
    if (!v) return false;
    char* end;
    unsigned long long us = strtoull(v, &end, 10);
    if (end == v || end[0] != '.' || !isdigit((unsigned char)end[1]) || !isdigit((unsigned char)end[2]) ||
        !isdigit((unsigned char)end[3]) || isdigit((unsigned char)end[4]))
        return false;
    *ns = us * 1000u + (unsigned long long)((end[1] - '0') * 100 + (end[2] - '0') * 10 + (end[3] - '0'));
    return true;
}

/* Parses a trace: checks its syntax and shape, reads its events (one per line) into ev. */
static int trace_read(const char* text, trace_ev* ev, int cap) {
    json_fractions = true;   /* for the rest of the test */
    check_json(text);
    CHECK(!strncmp(text, "{\"traceEvents\": [\n", 18));
    char unit[8];
    CHECK(json_get_str(text, "displayTimeUnit", unit, sizeof unit) && !strcmp(unit, "ms"));
    int n = 0;
    for (const char* line = strchr(text, '\n') + 1; *line == '{'; line = strchr(line, '\n') + 1) {
        CHECK(n < cap);
        trace_ev* e = &ev[n++];
        memset(e, 0, sizeof *e);
        const char* v = json_get(line, "pid");
        CHECK(v && !strncmp(v, "1,", 2));
        CHECK(json_get_str(line, "ph", e->ph, sizeof e->ph));
        CHECK(json_get_str(line, "name", e->name, sizeof e->name));
        CHECK((v = json_get(line, "tid")) != NULL);
        e->tid = atoi(v);
        const char* args = json_get(line, "args");
        CHECK(args && *args == '{');
        if (!strcmp(e->ph, "M")) {
            if (!json_get_str(args, "name", e->thread, sizeof e->thread)) CHECK(json_get(args, "sort_index"));
            continue;
        }
        CHECK(!strcmp(e->ph, "X"));
        CHECK(json_get_str(line, "cat", e->cat, sizeof e->cat));
        CHECK(json_get_ns(line, "ts", &e->ts) && json_get_ns(line, "dur", &e->dur));
        if (!strcmp(e->cat, "retry-wait")) continue;
        CHECK(json_get_str(args, "status", e->status, sizeof e->status));
        CHECK((v = json_get(args, "attempt")) != NULL);
        e->attempt = atoi(v);
        if ((v = json_get(args, "error")) != NULL) {
            e->has_error = true;
            e->error = atoi(v);
            CHECK((v = json_get(args, "message")) != NULL);
            if (*v == '"') CHECK(json_get_str(args, "message", e->message, sizeof e->message));
        }
    }
    return n;
}
static const trace_ev* trace_find(const trace_ev* ev, int n, const char* ph, const char* name, int attempt) {
    for (int i = 0; i < n; i++)
        if (!strcmp(ev[i].ph, ph) && !strcmp(ev[i].name, name) && (attempt < 0 || ev[i].attempt == attempt)) return &ev[i];
    return NULL;
}
static int trace_count(const trace_ev* ev, int n, const char* ph, const char* cat) {
    int k = 0;
    for (int i = 0; i < n; i++) k += !strcmp(ev[i].ph, ph) && (!cat || !strcmp(ev[i].cat, cat));
    return k;
}
/* The tid of the "other threads" line: the number of worker lines the report drew (a map on
   an inline pool draws one). */
static int trace_workers(const trace_ev* ev, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(ev[i].ph, "M") && !strcmp(ev[i].name, "thread_name") && !strcmp(ev[i].thread, "other threads")) return ev[i].tid;
    CHECK(0);
    return -1;
}
/* Every complete event inside the job's wall time, on a thread line that has a name. */
static void trace_check_lines(const trace_ev* ev, int n, uint64_t wall_ns, int workers) {
    for (int i = 0; i < n; i++) {
        if (strcmp(ev[i].ph, "X")) continue;
        CHECK(ev[i].ts + ev[i].dur <= wall_ns);
        if (!strcmp(ev[i].cat, "retry-wait")) CHECK(ev[i].tid > workers);
        else CHECK(ev[i].tid >= 0 && ev[i].tid <= workers);
        bool named = false;
        for (int k = 0; k < n; k++) named |= !strcmp(ev[k].ph, "M") && ev[k].tid == ev[i].tid && !strcmp(ev[k].name, "thread_name");
        CHECK(named);
    }
}

static int trace_flaky(batch_ctx* ctx, void* u) { (void)u; return batch_ctx_attempt(ctx) < 1 ? batch_ctx_fail(ctx, 6, "try again") : 0; }
#define TRACE_MSG "bad \"q\" \\ back\nline \xc3\xa9"
static int trace_fails(batch_ctx* ctx, void* u) { (void)u; return batch_ctx_fail(ctx, 7, TRACE_MSG); }

static void test_report_trace(void) {
    static char buf[65536];
    static trace_ev ev[64];
    batch_pool* p = make_pool(2);
    int workers = batch_pool_workers(p);
    CHECK(workers == 2 || workers == 0);   /* 0: BATCH_NO_THREADS */
    batch_graph* g;
    CHECK_OK(batch_graph_create(&g, &(batch_graph_desc){ .name = "tr\"ace" }));
    batch_task flaky, fails;
    CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = trace_flaky, .name = "flaky", .max_retries = 2,
                                                    .retry_base_ns = 2000000 }, &flaky));
    CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = trace_fails, .name = "fa\"ils" }, &fails));
    batch_task after = add_task(g, task_ok, NULL, "after");
    add_task(g, task_ok, NULL, NULL);
    CHECK_OK(batch_task_precede(g, fails, after));
    batch_job* job;
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    batch_job_summary sum;
    CHECK_EQ(batch_job_wait(job, &sum), BATCH_PARTIAL);
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_trace, job));
    int n = trace_read(buf, ev, 64);
    /* metadata: the process, a line per worker, the other threads, the retry waits */
    const trace_ev* m = trace_find(ev, n, "M", "process_name", -1);
    CHECK(m && !strcmp(m->thread, "tr\\\"ace"));
    for (int w = 0; w <= workers + 1; w++) {
        char want[32];
        if (w < workers) snprintf(want, sizeof want, "worker %d", w);
        else snprintf(want, sizeof want, w == workers ? "other threads" : "retry waits");
        bool found = false;
        for (int i = 0; i < n; i++) found |= !strcmp(ev[i].name, "thread_name") && ev[i].tid == w && !strcmp(ev[i].thread, want);
        CHECK(found);
    }
    /* one complete event per attempt: flaky twice, fails and the unnamed task once, none for the skipped one */
    CHECK_EQ(trace_count(ev, n, "X", "task"), 4);
    CHECK_EQ(trace_count(ev, n, "X", "retry-wait"), 1);
    CHECK(!trace_find(ev, n, "X", "after", -1));
    const trace_ev* f1 = trace_find(ev, n, "X", "flaky", 1);
    const trace_ev* f2 = trace_find(ev, n, "X", "flaky", 2);
    CHECK(f1 && f2);
    CHECK(!strcmp(f1->status, "failed") && f1->has_error && f1->error == 6 && !strcmp(f1->message, "try again"));
    CHECK(!strcmp(f2->status, "completed") && !f2->has_error);
    const trace_ev* wait = trace_find(ev, n, "X", "flaky (retry wait)", -1);
    CHECK(wait && !strcmp(wait->cat, "retry-wait") && wait->tid == workers + 1);
    CHECK(wait->ts >= f1->ts + f1->dur);            /* after the first attempt's end */
    CHECK(wait->ts + wait->dur <= f2->ts);          /* and up to the second's start */
    CHECK(wait->dur >= 1000000);                    /* the 2 ms backoff shows (jitter off: at least half of it) */
    const trace_ev* fl = trace_find(ev, n, "X", "fa\\\"ils", 1);
    CHECK(fl && !strcmp(fl->status, "failed") && fl->has_error && fl->error == 7);
    CHECK(!strcmp(fl->message, "bad \\\"q\\\" \\\\ back\\nline \xc3\xa9"));   /* escaped as the JSON report does */
    CHECK(trace_find(ev, n, "X", "#4", 1));         /* a task without a name */
    trace_check_lines(ev, n, sum.wall_ns, workers);
    /* the JSON report escapes the message the same way */
    static char json[16384];
    CHECK_OK(report_into(json, sizeof json, batch_job_report_json, job));
    CHECK(strstr(json, "\"message\": \"bad \\\"q\\\" \\\\ back\\nline \xc3\xa9\""));

    /* bad input: NULL, a job not waited for, a stream that refuses writes */
    check_report_bad_input(job, batch_job_report_trace, "batch-trace-rdonly.txt");
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_graph_create(&g, NULL));
    _Atomic int gate_open = 0;
    add_task(g, rec_gate, (void*)&gate_open, "gate");
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    CHECK_EQ(batch_job_report_trace(job, stdout), BATCH_ERR_BUSY);   /* what the other reports say */
    CHECK_EQ(batch_job_report_json(job, stdout), BATCH_ERR_BUSY);
    atomic_store(&gate_open, 1);
    CHECK_OK(batch_job_wait(job, &sum));
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_trace, job));
    n = trace_read(buf, ev, 64);
    m = trace_find(ev, n, "M", "process_name", -1);
    CHECK(m && !strcmp(m->thread, "graph"));   /* a graph without a name */
    CHECK_EQ(trace_count(ev, n, "X", "task"), 1);
    CHECK_EQ(trace_count(ev, n, "X", "retry-wait"), 0);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

/* A map: every batch attempt is an event, the retried batch's wait too. */
static int trace_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)res; (void)u;
    return it->index < 10 && batch_ctx_attempt(ctx) == 0;   /* batch 0 fails whole once */
}

static void test_report_trace_map(void) {
    static char buf[65536];
    static trace_ev ev[64];
    batch_pool* p = make_pool(2);
    batch_job* job;
    CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 100, .item_fn = trace_item, .batch_size = 10, .max_retries = 1,
                                                    .retry_base_ns = 1000000, .keep_batches = 1 }, &job));
    batch_map_summary ms;
    CHECK_OK(batch_map_wait(job, &ms, NULL));
    CHECK_EQ(ms.batches, 10);
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_trace, job));
    int n = trace_read(buf, ev, 64);
    const trace_ev* m = trace_find(ev, n, "M", "process_name", -1);
    CHECK(m && !strcmp(m->thread, "map"));
    CHECK_EQ(trace_count(ev, n, "X", "batch"), 11);
    CHECK_EQ(trace_count(ev, n, "X", "retry-wait"), 1);
    for (int b = 0; b < 10; b++) {
        char name[32];
        snprintf(name, sizeof name, "batch %d", b);
        const trace_ev* e = trace_find(ev, n, "X", name, b ? 1 : 2);
        CHECK(e && !strcmp(e->status, "success"));
    }
    const trace_ev* b1 = trace_find(ev, n, "X", "batch 0", 1);
    const trace_ev* b2 = trace_find(ev, n, "X", "batch 0", 2);
    const trace_ev* wait = trace_find(ev, n, "X", "batch 0 (retry wait)", -1);
    CHECK(b1 && b2 && wait && !strcmp(b1->status, "failed"));
    CHECK(wait->ts >= b1->ts + b1->dur && wait->ts + wait->dur <= b2->ts);
    batch_job_summary sum;
    CHECK_OK(batch_job_wait(job, &sum));
    trace_check_lines(ev, n, sum.wall_ns, trace_workers(ev, n));
    CHECK_OK(batch_job_destroy(job));
    /* without keep_batches: the metadata only */
    CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 100, .item_fn = trace_item, .batch_size = 10, .max_retries = 1 }, &job));
    CHECK_OK(batch_map_wait(job, NULL, NULL));
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_trace, job));
    n = trace_read(buf, ev, 64);
    CHECK_EQ(trace_count(ev, n, "X", NULL), 0);
    CHECK(trace_find(ev, n, "M", "process_name", -1));
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_pool_destroy(p));
}

/* An inline pool: tasks run on the waiting thread, the line past the workers. */
static void test_report_trace_inline(void) {
    static char buf[16384];
    static trace_ev ev[32];
    batch_pool* p;
    CHECK_OK(batch_pool_create(&p, &(batch_pool_desc){ .workers = BATCH_WORKERS_INLINE }));
    int workers = batch_pool_workers(p);
    batch_graph* g = make_graph();
    batch_task a;
    CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = trace_flaky, .name = "a", .max_retries = 1, .retry_base_ns = 500000 }, &a));
    batch_task b = add_task(g, task_ok, NULL, "b");
    CHECK_OK(batch_task_precede(g, a, b));
    batch_job* job;
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    batch_job_summary sum;
    CHECK_OK(batch_job_wait(job, &sum));
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_trace, job));
    int n = trace_read(buf, ev, 32);
    CHECK_EQ(trace_count(ev, n, "X", "task"), 3);
    for (int i = 0; i < n; i++)
        if (!strcmp(ev[i].ph, "X") && !strcmp(ev[i].cat, "task")) CHECK_EQ(ev[i].tid, workers);
    const trace_ev* wait = trace_find(ev, n, "X", "a (retry wait)", -1);
    CHECK(wait && wait->tid == workers + 1);
    trace_check_lines(ev, n, sum.wall_ns, workers);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

/* HTML: how often what occurs in text. */
static int html_count(const char* text, const char* what) {
    int n = 0;
    for (const char* q = text; (q = strstr(q, what)); q += strlen(what)) n++;
    return n;
}
static int html_fail(batch_ctx* ctx, void* u) { return batch_ctx_fail(ctx, (int)(intptr_t)u, "<b>bad</b> & \"x\""); }

/* The name in <title> and <h1>, escaped; the failure table lists failed, then skipped tasks;
   bad input. */
static void test_report_html(void) {
    batch_pool* p = make_pool(2);
    batch_graph* g;
    CHECK_OK(batch_graph_create(&g, &(batch_graph_desc){ .name = "nightly <build> & \"test\"" }));
    batch_task a = add_task(g, task_ok, NULL, "fetch");
    batch_task b = add_task(g, html_fail, (void*)(intptr_t)11, "com<pile>");
    batch_task c = add_task(g, task_ok, NULL, "link");
    CHECK_OK(batch_task_precede(g, a, b));
    CHECK_OK(batch_task_precede(g, b, c));
    batch_job* job;
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    batch_job_wait(job, NULL);
    static char buf[65536];
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_html, job));
    CHECK(strstr(buf, "<title>nightly &lt;build&gt; &amp; &quot;test&quot;</title>"));
    CHECK(strstr(buf, "<h1>nightly &lt;build&gt; &amp; &quot;test&quot;</h1>"));
    CHECK(strstr(buf, "partial_failure") && strstr(buf, "success rate 33.3%"));
    const char* f = strstr(buf, "<tr class=\"failed\"><td>com&lt;pile&gt;</td><td>failed</td><td>11</td>"
                                "<td>&lt;b&gt;bad&lt;/b&gt; &amp; &quot;x&quot;</td><td>1</td></tr>");
    const char* k = strstr(buf, "<tr class=\"skipped\"><td>link</td><td>skipped</td>");
    CHECK(f && k && f < k);
    CHECK_EQ(html_count(buf, "<tr class="), 2);   /* completed tasks are not listed */
    CHECK_EQ(html_count(buf, "<rect class=\"failed\""), 1);
    CHECK_EQ(html_count(buf, "<rect class=\"skipped\""), 1);   /* a mark on the skipped lane */
    CHECK(strstr(buf, ">skipped</text>") && strstr(buf, "viewBox=") && strstr(buf, "width=\"100%\""));
    CHECK(strstr(buf, "id=\"zoom\"") && !strstr(buf, "<script src"));
    int ticks = html_count(buf, "<text class=\"tick\"");
    CHECK(ticks >= 5 && ticks <= 10);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));

    /* bad input: NULL, a stream that refuses writes; no name: the kind */
    CHECK_OK(batch_graph_create(&g, NULL));
    add_task(g, task_ok, NULL, NULL);
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    batch_job_wait(job, NULL);
    check_report_bad_input(job, batch_job_report_html, "batch-report-html-ro.html");
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_html, job));
    CHECK(strstr(buf, "<title>graph</title>") && strstr(buf, "<h1>graph</h1>"));
    CHECK(!strstr(buf, "<tr class="));   /* nothing failed: no table */
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

/* 10^4 tasks, about 100 of them failed: under 2 MB, a rect per failed task, 5-10 ticks. */
static int html_maybe_fail(batch_ctx* ctx, void* u) {
    intptr_t id = (intptr_t)u;
    return id % 97 == 0 ? batch_ctx_fail(ctx, 97, "task %d failed", (int)id) : 0;
}
static void test_report_html_10k(void) {
    enum { N = 10000 };
    batch_pool* p = make_pool(4);
    batch_graph* g;
    CHECK_OK(batch_graph_create(&g, &(batch_graph_desc){ .name = "big" }));
    static batch_task t[N];
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%05d", i);
        t[i] = add_task(g, html_maybe_fail, (void*)(intptr_t)i, name);
        if (i >= N / 2) CHECK_OK(batch_task_precede(g, t[i - N / 2], t[i]));
    }
    batch_job* job;
    batch_job_summary s;
    CHECK_OK(batch_graph_launch(p, g, NULL, &job));
    batch_job_wait(job, &s);
    CHECK_EQ(s.failed, 104u);   /* ids divisible by 97; the second half's never depend on a failed one */
    CHECK_EQ(s.skipped, 52u);
    size_t n = 2u << 20;
    char* buf = (char*)malloc(n);
    CHECK(buf != NULL);
    CHECK_OK(report_into(buf, n, batch_job_report_html, job));
    size_t len = strlen(buf);
    CHECK(len > 1000 && len < n - 1);   /* under 2 MB: the buffer did not fill */
    CHECK(strstr(buf, "</html>"));
    CHECK_EQ(html_count(buf, "<rect class=\"failed\""), 104);
    CHECK_EQ(html_count(buf, "<tr class=\"failed\""), 104);
    CHECK_EQ(html_count(buf, "<tr class=\"skipped\""), 52);
    CHECK(html_count(buf, "<rect class=\"skipped\"") >= 1);
    int ticks = html_count(buf, "<text class=\"tick\"");
    CHECK(ticks >= 5 && ticks <= 10);
    for (int i = 0; i < N; i += 97) {   /* each failed task has a rect of its own */
        char want[64];
        snprintf(want, sizeof want, "<title>t%05d: failed,", i);
        CHECK(strstr(buf, want) != NULL);
    }
    free(buf);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
}

/* A map with kept batches: "map" as the name, failed then partial batches in the table. */
static int html_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)res; (void)u;
    size_t k = it->index % 100;
    return (k >= 60 || (k >= 55 && (k & 1))) ? batch_ctx_fail(ctx, 1, "bad item") : 0;
}
static void test_report_html_map(void) {
    batch_pool* p = make_pool(2);
    batch_job* job;
    CHECK_OK(batch_map_launch(p, &(batch_map_desc){ .count = 400, .item_fn = html_item, .batch_size = 10, .error_threshold = 0.9,
                                                    .keep_batches = 1 }, &job));
    batch_map_summary m;
    batch_map_wait(job, &m, NULL);
    CHECK_EQ(m.batches_failed, 16u);
    CHECK_EQ(m.batches_partial, 4u);
    static char buf[65536];
    CHECK_OK(report_into(buf, sizeof buf, batch_job_report_html, job));
    CHECK(strstr(buf, "<title>map</title>") && strstr(buf, "<h1>map</h1>"));
    CHECK_EQ(html_count(buf, "<tr class=\"failed\""), 16);
    CHECK_EQ(html_count(buf, "<tr class=\"partial_success\""), 4);
    CHECK(strstr(buf, "<tr class=\"failed\"") < strstr(buf, "<tr class=\"partial_success\""));
    CHECK(strstr(buf, "<td>batch 6 (items 60-69)</td>"));
    CHECK_EQ(html_count(buf, "<rect class=\"failed\""), 16);
    CHECK(html_count(buf, "<text class=\"tick\"") >= 5);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_pool_destroy(p));
}

#define REPORT_TESTS \
    { "report_html", test_report_html }, \
    { "report_html_10k", test_report_html_10k }, \
    { "report_html_map", test_report_html_map }, \
    { "report_json_text", test_report_json_text }, \
    { "report_compare", test_report_compare }, \
    { "report_records", test_report_records }, \
    { "report_trace", test_report_trace }, \
    { "report_trace_map", test_report_trace_map }, \
    { "report_trace_inline", test_report_trace_inline },
