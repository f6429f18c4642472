/* test_report.c - JSON reports parse back (a small strict JSON checker) and carry the right
   counts and escaped strings; text reports name what did not complete. */

/* A strict JSON syntax checker: returns the position after one value, or NULL. */
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
    CHECK(strstr(buf, "se&quot;cond\\"));   /* escaped in the bar titles */
    CHECK(!strstr(buf, "<script"));
    CHECK(strstr(buf, "<rect"));
    CHECK_EQ(batch_job_report_json(NULL, stdout), BATCH_ERR_INVALID);
    CHECK_EQ(batch_job_report_json(job, NULL), BATCH_ERR_INVALID);
#if defined(_WIN32)
    /* no /dev/full: a stream opened for reading only, where every write fails as well */
    char rdonly[MAX_TEST_PATH];
    test_tmp_path(rdonly, sizeof rdonly, "batch-report-rdonly.txt");
    FILE* made = fopen(rdonly, "w");
    CHECK(made != NULL);
    fclose(made);
    FILE* full = fopen(rdonly, "r");
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

#define REPORT_TESTS \
    { "report_json_text", test_report_json_text }, \
    { "report_compare", test_report_compare }, \
    { "report_records", test_report_records },
