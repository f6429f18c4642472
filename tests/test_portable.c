/* test_portable.c - what must not depend on the platform. The journal's bytes: a graph job and a
   map job (inline pool, so the order of records is fixed) write journals that are compared byte
   for byte with files written on x86-64 and checked in (tests/journals/), and those files then
   resume here: on s390x (big-endian, qemu-user) that is a journal from a little-endian machine.
   A map whose accumulator is in the machine's byte order refuses a journal of the other order.
   BATCH_TEST_WRITE_JOURNALS=1 rewrites the checked-in files instead of comparing. The files are
   found at tests/journals/ from the top of the tree, or from build/<dir>/ (make coverage). */

/* Files are read and written with test_journal.c's jfile_read and jfile_write. */
static void pt_tmp(char* path, size_t n, const char* name) {
    char file[64];
    snprintf(file, sizeof file, "batch-portable-%llu-%s", (unsigned long long)test_seed, name);
    test_tmp_path(path, n, file);
    remove(path);
}
/* The checked-in journal `name`: its path, from the top of the tree or from one or two levels
   below it (the last one tried when none is found). */
static void pt_ref(char* path, size_t n, const char* name) {
    static const char* const up[] = { "", "../", "../../" };
    for (int i = 0; i < 3; i++) {
        snprintf(path, n, "%stests/journals/%s", up[i], name);
        FILE* f = fopen(path, "rb");
        if (f) { fclose(f); return; }
    }
}
/* The journal just written at path against the checked-in one (or, when asked, rewrites it);
   then the checked-in bytes are copied to path, ready to resume. */
static void pt_compare(const char* path, const char* name) {
    char ref[MAX_TEST_PATH];
    pt_ref(ref, sizeof ref, name);
    size_t n = 0, m = 0;
    unsigned char* mine = jfile_read(path, &n);
    CHECK(mine != NULL && n > 32);
    const char* w = getenv("BATCH_TEST_WRITE_JOURNALS");
    if (w && *w == '1') jfile_write(ref, mine, n);
    unsigned char* theirs = jfile_read(ref, &m);
    if (!theirs) test_fail_at(__FILE__, __LINE__, ref, "missing: run the suite from the top of the tree");
    CHECK_EQ(n, m);
    for (size_t i = 0; i < n; i++)
        if (mine[i] != theirs[i]) {
            char d[96];
            snprintf(d, sizeof d, "byte %zu: 0x%02x here, 0x%02x in %s", i, mine[i], theirs[i], name);
            test_fail_at(__FILE__, __LINE__, "the journal's bytes", d);
        }
    jfile_write(path, theirs, m);
    free(mine);
    free(theirs);
}

/* ---- a graph: 5 chains of 8 tasks, each task also before the one 8 further; p13 fails (its
   dependents are skipped); the 20th task to run cancels the first run, so the journal holds part of the graph ---- */
enum { PT_TASKS = 40 };
typedef struct pt_graph { int runs[PT_TASKS]; int cancel, nrun; } pt_graph;
typedef struct pt_task { pt_graph* s; int i; } pt_task;
static int pt_task_fn(batch_ctx* ctx, void* u) {
    pt_task* t = (pt_task*)u;
    t->s->runs[t->i]++;
    if (t->i == 13) return batch_ctx_fail(ctx, -7, "task %d", t->i);   /* a negative code: a sign in the record */
    if (++t->s->nrun == 20 && t->s->cancel) CHECK_OK(batch_job_cancel(batch_ctx_job(ctx)));
    return 0;
}
static batch_graph* pt_make_graph(pt_task* tk, pt_graph* s) {
    batch_graph* g = NULL;
    batch_task h[PT_TASKS];
    CHECK_OK(batch_graph_create(&g, NULL));
    for (int i = 0; i < PT_TASKS; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        tk[i].s = s; tk[i].i = i;
        CHECK_OK(batch_graph_add(g, &(batch_task_desc){ .fn = pt_task_fn, .user_data = &tk[i], .name = name }, &h[i]));
    }
    for (int i = 0; i < PT_TASKS; i++) {
        if (i % 8 != 7) CHECK_OK(batch_task_precede(g, h[i], h[i + 1]));
        if (i + 8 < PT_TASKS) CHECK_OK(batch_task_precede(g, h[i], h[i + 8]));
    }
    return g;
}
static void test_portable_journal_graph(void) {
    char path[MAX_TEST_PATH];
    pt_tmp(path, sizeof path, "graph.jnl");
    pt_graph s;
    pt_task tk[PT_TASKS];
    memset(&s, 0, sizeof s);
    batch_graph* g = pt_make_graph(tk, &s);
    batch_pool* p = NULL;
    CHECK_OK(batch_pool_create(&p, &(batch_pool_desc){ .workers = BATCH_WORKERS_INLINE }));
    batch_run_desc rd;
    memset(&rd, 0, sizeof rd);
    rd.journal.path = path;
    batch_job_summary s1, s2;
    s.cancel = 1;
    CHECK_EQ(batch_graph_run(p, g, &rd, &s1), BATCH_ERR_CANCELLED);
    CHECK(s1.completed > 0 && s1.cancelled > 0);
    pt_compare(path, "graph.jnl");
    /* resume from the checked-in journal: what it holds does not run again */
    int before[PT_TASKS];
    memcpy(before, s.runs, sizeof before);
    s.cancel = 0;
    CHECK_EQ(batch_graph_run(p, g, &rd, &s2), BATCH_PARTIAL);
    CHECK_EQ(s2.resumed, s1.completed + s1.failed);
    CHECK_EQ(s2.failed, 1);
    CHECK_EQ(s2.completed + s2.skipped + s2.failed, PT_TASKS);
    for (int i = 0; i < PT_TASKS; i++) CHECK(s.runs[i] - before[i] <= 1);
    int ran = 0;
    for (int i = 0; i < PT_TASKS; i++) ran += s.runs[i] - before[i];
    CHECK_EQ((uint64_t)ran + s2.resumed + s2.skipped, PT_TASKS);
    batch_task t13 = { 0, 0 };
    CHECK_OK(batch_graph_find(g, "p13", &t13));
    batch_task_info info;
    CHECK_OK(batch_graph_task_info(g, t13, &info));
    CHECK_EQ(info.status, BATCH_TASK_FAILED);
    CHECK_EQ(info.error, -7);
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
    remove(path);
}

/* ---- a map: 1000 items in ordered batches of 10, a fold into an accumulator kept little-endian
   by the user (portable; the fingerprint is the user's), items i % 97 == 5 fail, item 537
   cancels the first run ---- */
enum { PT_ITEMS = 1000 };
typedef struct pt_map { int runs[PT_ITEMS]; int cancel; } pt_map;
static uint64_t pt_le_get(const unsigned char* b) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | b[i]; return v; }
static void pt_le_put(unsigned char* b, uint64_t v) { for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i)); }
static int pt_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    pt_map* m = (pt_map*)u;
    m->runs[it->index]++;
    if (it->index == 537 && m->cancel) CHECK_OK(batch_job_cancel(batch_ctx_job(ctx)));
    if (it->index % 97 == 5) return batch_ctx_fail(ctx, -(int)it->index, NULL);
    *(uint64_t*)res = (uint64_t)it->index * it->index;
    return 0;
}
static void pt_le_init(void* acc, void* u) { (void)u; pt_le_put((unsigned char*)acc, 0); }
static void pt_le_fold(void* acc, const batch_item* it, const void* res, void* u) {
    (void)it; (void)u;
    pt_le_put((unsigned char*)acc, pt_le_get((unsigned char*)acc) + *(const uint64_t*)res);
}
static void pt_le_combine(void* acc, const void* o, void* u) {
    (void)u;
    pt_le_put((unsigned char*)acc, pt_le_get((unsigned char*)acc) + pt_le_get((const unsigned char*)o));
}
static void pt_n_init(void* acc, void* u) { (void)u; *(uint64_t*)acc = 0; }
static void pt_n_fold(void* acc, const batch_item* it, const void* res, void* u) { (void)it; (void)u; *(uint64_t*)acc += *(const uint64_t*)res; }
static void pt_n_combine(void* acc, const void* o, void* u) { (void)u; *(uint64_t*)acc += *(const uint64_t*)o; }

static batch_map_desc pt_map_desc(pt_map* m, const char* path, int native) {
    batch_map_desc d;
    memset(&d, 0, sizeof d);
    d.count = PT_ITEMS; d.item_fn = pt_item; d.user_data = m; d.result_size = sizeof(uint64_t);
    d.batch_size = 10; d.ordered = 1; d.error_threshold = 0.2;
    d.acc_size = 8;
    d.init_fn = native ? pt_n_init : pt_le_init;
    d.fold_fn = native ? pt_n_fold : pt_le_fold;
    d.combine_fn = native ? pt_n_combine : pt_le_combine;
    d.journal.path = path;
    if (!native) d.journal.fingerprint = 0x5EED0F00Du;   /* the accumulator is portable: the user says so */
    return d;
}
static uint64_t pt_map_want(void) {
    uint64_t want = 0;
    for (uint64_t i = 0; i < PT_ITEMS; i++) if (i % 97 != 5) want += i * i;
    return want;
}
/* First run (cancelled) on a fresh journal, compared with tests/journals/name; returns the
   summary of the resume from the checked-in file, whose result is *r. */
static batch_map_summary pt_map_rounds(int native, const char* name, batch_result* r, unsigned char acc[8]) {
    char path[MAX_TEST_PATH];
    pt_tmp(path, sizeof path, name);
    pt_map* m = (pt_map*)calloc(1, sizeof *m);
    CHECK(m != NULL);
    batch_pool* p = NULL;
    CHECK_OK(batch_pool_create(&p, &(batch_pool_desc){ .workers = BATCH_WORKERS_INLINE }));
    batch_map_desc d = pt_map_desc(m, path, native);
    batch_map_summary s1, s2;
    m->cancel = 1;
    CHECK_EQ(batch_map_run(p, &d, &s1, NULL), BATCH_ERR_CANCELLED);
    CHECK(s1.batches > 0 && s1.unprocessed > 0);
    if (!native || !batch__big_endian()) pt_compare(path, name);   /* the BE native file differs, rightly */
    else {
        char ref[MAX_TEST_PATH];
        pt_ref(ref, sizeof ref, name);
        size_t n = 0;
        unsigned char* b = jfile_read(ref, &n);
        CHECK(b != NULL);
        jfile_write(path, b, n);
        free(b);
    }
    memset(m->runs, 0, sizeof m->runs);
    m->cancel = 0;
    *r = batch_map_run(p, &d, &s2, acc);
    if (*r == BATCH_PARTIAL) {
        int ran = 0;
        for (int i = 0; i < PT_ITEMS; i++) { CHECK(m->runs[i] <= 1); ran += m->runs[i]; }
        CHECK(s2.resumed_batches > 0);
        CHECK_EQ((uint64_t)ran + s2.resumed_items, PT_ITEMS);
    }
    CHECK_OK(batch_pool_destroy(p));
    free(m);
    remove(path);
    return s2;
}
static void test_portable_journal_map(void) {
    batch_result r;
    unsigned char acc[8];
    batch_map_summary s = pt_map_rounds(0, "map.jnl", &r, acc);
    CHECK_EQ(r, BATCH_PARTIAL);
    CHECK_EQ(s.items, PT_ITEMS);
    CHECK_EQ(pt_le_get(acc), pt_map_want());
}
/* The same map with an accumulator in the machine's byte order and the derived fingerprint:
   the checked-in journal (from a little-endian machine) resumes on little-endian machines and is
   another job's on big-endian ones. */
static void test_portable_journal_native_acc(void) {
    batch_result r;
    uint64_t acc = 0;
    unsigned char b[8];
    batch_map_summary s = pt_map_rounds(1, "map_native_le.jnl", &r, b);
    if (batch__big_endian()) { CHECK_EQ(r, BATCH_ERR_MISMATCH); return; }
    memcpy(&acc, b, 8);
    CHECK_EQ(r, BATCH_PARTIAL);
    CHECK_EQ(s.items, PT_ITEMS);
    CHECK_EQ(acc, pt_map_want());
}

/* A batch's status from its failure ratio is the same on every target: 6 failures in 10 at a
   threshold of 0.6 are PARTIAL_SUCCESS, also on i386, whose x87 would compare 6.0 / 10 in 80 bits
   (0.6000000000000000000216 > the double 0.59999999999999997780). */
static int pt_six_in_ten(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)ctx; (void)res; (void)u;
    return it->index % 10 < 6 ? 1 : 0;
}
static void test_portable_threshold_ratio(void) {
    batch_pool* p = NULL;
    CHECK_OK(batch_pool_create(&p, &(batch_pool_desc){ .workers = BATCH_WORKERS_INLINE }));
    batch_map_summary s;
    CHECK_EQ(batch_map_run(p, &(batch_map_desc){ .count = 100, .item_fn = pt_six_in_ten, .batch_size = 10,
                                                  .error_threshold = 0.6 }, &s, NULL), BATCH_PARTIAL);
    CHECK_EQ(s.batches_partial, 10);
    CHECK_EQ(s.batches_failed, 0);
    volatile double just_below = 0.6 - 1e-12;
    CHECK_EQ(batch_map_run(p, &(batch_map_desc){ .count = 100, .item_fn = pt_six_in_ten, .batch_size = 10,
                                                  .error_threshold = just_below }, &s, NULL), BATCH_ERR_FAILED);
    CHECK_EQ(s.batches_failed, 10);
    CHECK_OK(batch_pool_destroy(p));
}

#define PORTABLE_TESTS \
    { "portable_journal_graph", test_portable_journal_graph }, \
    { "portable_journal_map", test_portable_journal_map }, \
    { "portable_journal_native_acc", test_portable_journal_native_acc }, \
    { "portable_threshold_ratio", test_portable_threshold_ratio },
