/* test_queue.c - the durable queue in one process: every call, bad input, priorities, leases,
   retries, cancel, release, list pages, compaction followed by another handle, BUFFERED ends,
   torn tails, two handles on many threads, the serve job (drain, failures, cancel of a running
   job, reports). The multi-process tests are in test_queue_procs.c. */

typedef struct qtest { jdir d; batch_queue* q; } qtest;

/* ms milliseconds of a lease or a sleep, stretched for slow builds (sanitizers, valgrind), where
   a renewal every lease / 3 must still come in time. */
static uint64_t qms(uint64_t ms) {
    uint64_t k = test_scale > 1 ? (uint64_t)(test_scale < 20 ? test_scale : 20) : 1;
    return ms * 1000000u * k;
}

static batch_queue_desc qdesc(const char* path, uint64_t lease_ns) {
    batch_queue_desc d;
    memset(&d, 0, sizeof d);
    d.path = path;
    d.lease_ns = lease_ns;
    d.retry_base_ns = 1000000;   /* 1 ms */
    d.retry_max_ns = 4000000;
    return d;
}
static void qopen(qtest* t, uint64_t lease_ns) {
    jdir_make(&t->d, "q");
    batch_queue_desc d = qdesc(t->d.path, lease_ns);
    CHECK_OK(batch_queue_open(&t->q, &d));
}
static void qclose(qtest* t) {
    CHECK_OK(batch_queue_close(t->q));
    jdir_remove(&t->d);
}
static uint64_t qpush(batch_queue* q, const char* payload, int prio, int retries, const char* name) {
    batch_queue_push_desc p;
    memset(&p, 0, sizeof p);
    p.payload = payload;
    p.size = payload ? strlen(payload) : 0;
    p.priority = prio;
    p.max_retries = retries;
    p.name = name;
    uint64_t id = 0;
    CHECK_OK(batch_queue_push(q, &p, &id));
    return id;
}
static batch_queue_status qstatus(batch_queue* q, uint64_t id) {
    batch_queue_job j;
    CHECK_OK(batch_queue_get(q, id, &j));
    batch_queue_status s = j.info.status;
    batch_queue_job_free(q, &j);
    return s;
}
static uint64_t qclaim_id(batch_queue* q) {
    batch_queue_job j;
    batch_result r = batch_queue_claim(q, &j);
    if (r == BATCH_ERR_EMPTY) return 0;
    CHECK_OK(r);
    uint64_t id = j.info.id;
    batch_queue_job_free(q, &j);
    return id;
}

static void test_queue_basic(void) {
    qtest t;
    qopen(&t, 0);
    uint64_t a = qpush(t.q, "echo a", 0, 0, "first");
    uint64_t b = qpush(t.q, "echo b", 5, 0, NULL);
    uint64_t c = qpush(t.q, "echo c", 0, 0, "third");
    uint64_t d = qpush(t.q, NULL, 5, 0, NULL);
    CHECK_EQ(a, 1); CHECK_EQ(b, 2); CHECK_EQ(c, 3); CHECK_EQ(d, 4);
    batch_queue_job j;
    CHECK_OK(batch_queue_claim(t.q, &j));            /* priority 5 first, then FIFO */
    CHECK_EQ(j.info.id, b);
    CHECK_EQ(j.info.status, BATCH_QUEUE_RUNNING);
    CHECK_EQ(j.info.attempts, 1);
    CHECK_EQ(j.info.size, 6);
    CHECK(j.payload && memcmp(j.payload, "echo b", 6) == 0);
    CHECK(j.info.lease_until_ns > j.info.pushed_ns);
    CHECK_OK(batch_queue_complete(t.q, b));
    batch_queue_job_free(t.q, &j);
    CHECK(j.payload == NULL && j.info.id == 0);
    CHECK_EQ(qclaim_id(t.q), d);
    CHECK_EQ(qclaim_id(t.q), a);
    CHECK_OK(batch_queue_complete(t.q, a));
    CHECK_EQ(batch_queue_complete(t.q, a), BATCH_ERR_INVALID);   /* done already */
    batch_queue_stats st;
    CHECK_OK(batch_queue_stats_get(t.q, &st));
    CHECK_EQ(st.count[BATCH_QUEUE_QUEUED], 1);
    CHECK_EQ(st.count[BATCH_QUEUE_RUNNING], 1);
    CHECK_EQ(st.count[BATCH_QUEUE_DONE], 2);
    CHECK_EQ(st.total, 4);
    CHECK_EQ(st.next_id, 5);
    CHECK(st.file_bytes > 32);
    CHECK_OK(batch_queue_get(t.q, c, &j));
    CHECK(strcmp(j.info.name, "third") == 0 && j.info.status == BATCH_QUEUE_QUEUED);
    CHECK(memcmp(j.payload, "echo c", 6) == 0);
    batch_queue_job_free(t.q, &j);
    CHECK_EQ(batch_queue_get(t.q, 99, &j), BATCH_ERR_NOT_FOUND);
    /* a second handle, then a reopen, see the same */
    batch_queue* q2;
    batch_queue_desc dd = qdesc(t.d.path, 0);
    CHECK_OK(batch_queue_open(&q2, &dd));
    CHECK_EQ(qstatus(q2, a), BATCH_QUEUE_DONE);
    CHECK_EQ(qstatus(q2, d), BATCH_QUEUE_RUNNING);
    CHECK_EQ(batch_queue_complete(q2, d), BATCH_ERR_INVALID);    /* q2 does not hold it */
    CHECK_EQ(qclaim_id(q2), c);
    CHECK_EQ(qclaim_id(q2), 0);
    CHECK_OK(batch_queue_close(q2));
    CHECK_OK(batch_queue_close(t.q));
    CHECK_OK(batch_queue_open(&t.q, &dd));
    CHECK_EQ(qstatus(t.q, c), BATCH_QUEUE_RUNNING);
    CHECK_EQ(qpush(t.q, "x", 0, 0, NULL), 5);
    qclose(&t);
}

static void test_queue_fail_retry(void) {
    qtest t;
    qopen(&t, 0);
    uint64_t id = qpush(t.q, "job", 0, 2, NULL);
    CHECK_EQ(qclaim_id(t.q), id);
    CHECK_OK(batch_queue_fail(t.q, id, 7, 0, "first try"));
    batch_queue_job j;
    CHECK_OK(batch_queue_get(t.q, id, &j));
    CHECK_EQ(j.info.status, BATCH_QUEUE_QUEUED);
    CHECK_EQ(j.info.error, 7);
    CHECK(strcmp(j.info.message, "first try") == 0);
    CHECK(j.info.not_before_ns > 0);
    batch_queue_job_free(t.q, &j);
    test_sleep_ns(10000000);   /* past the 1-4 ms delay */
    CHECK_EQ(qclaim_id(t.q), id);
    CHECK_OK(batch_queue_fail(t.q, id, 8, 0, NULL));
    test_sleep_ns(10000000);
    CHECK_EQ(qclaim_id(t.q), id);
    CHECK_OK(batch_queue_fail(t.q, id, 9, 0, "last"));   /* retries spent: FAILED */
    CHECK_OK(batch_queue_get(t.q, id, &j));
    CHECK_EQ(j.info.status, BATCH_QUEUE_FAILED);
    CHECK_EQ(j.info.attempts, 3);
    CHECK_EQ(j.info.error, 9);
    CHECK(strcmp(j.info.message, "last") == 0);
    CHECK(j.info.finished_ns > 0);
    batch_queue_job_free(t.q, &j);
    /* permanent: no retry; a long delay keeps a job from being claimed */
    uint64_t p = qpush(t.q, "perm", 0, 5, NULL);
    CHECK_EQ(qclaim_id(t.q), p);
    CHECK_OK(batch_queue_fail(t.q, p, 3, 1, "no"));
    CHECK_EQ(qstatus(t.q, p), BATCH_QUEUE_FAILED);
    CHECK_EQ(batch_queue_fail(t.q, p, 0, 0, NULL), BATCH_ERR_INVALID);   /* code 0 */
    qclose(&t);
    jdir_make(&t.d, "q");
    batch_queue_desc d = qdesc(t.d.path, 0);
    d.retry_base_ns = 60000000000ull;
    CHECK_OK(batch_queue_open(&t.q, &d));
    id = qpush(t.q, "slow", 0, 1, NULL);
    CHECK_EQ(qclaim_id(t.q), id);
    CHECK_OK(batch_queue_fail(t.q, id, 1, 0, NULL));
    CHECK_EQ(qclaim_id(t.q), 0);
    batch_queue_stats st;
    CHECK_OK(batch_queue_stats_get(t.q, &st));
    CHECK_EQ(st.delayed, 1);
    qclose(&t);
}

static void test_queue_lease(void) {
    qtest t;
    qopen(&t, qms(100));   /* renewed every tenth of it: a loaded machine may be late */
    batch_queue* b;
    batch_queue_desc d = qdesc(t.d.path, qms(100));
    CHECK_OK(batch_queue_open(&b, &d));
    uint64_t id = qpush(t.q, "x", 0, 1, NULL);
    uint64_t once = qpush(t.q, "y", -1, 0, NULL);
    CHECK_EQ(qclaim_id(t.q), id);
    CHECK_EQ(qclaim_id(t.q), once);
    CHECK_EQ(qclaim_id(b), 0);
    for (int i = 0; i < 4; i++) {   /* renewals keep it */
        test_sleep_ns(qms(10));
        CHECK_OK(batch_queue_renew(t.q, id));
    }
    CHECK_EQ(qclaim_id(b), 0);
    test_sleep_ns(qms(150));         /* both leases run out */
    CHECK_EQ(qclaim_id(b), id);      /* `once` had no retry left: FAILED */
    CHECK_EQ(qstatus(b, once), BATCH_QUEUE_FAILED);
    batch_queue_job j;
    CHECK_OK(batch_queue_get(b, id, &j));
    CHECK_EQ(j.info.attempts, 2);
    CHECK_EQ(j.info.error, BATCH_ERR_TIMEOUT);
    batch_queue_job_free(b, &j);
    CHECK_EQ(batch_queue_renew(t.q, id), BATCH_ERR_TIMEOUT);      /* lost to b */
    CHECK_EQ(batch_queue_complete(t.q, id), BATCH_ERR_TIMEOUT);
    CHECK_EQ(batch_queue_complete(t.q, id), BATCH_ERR_INVALID);   /* told once; no longer held */
    CHECK_EQ(batch_queue_complete(t.q, once), BATCH_ERR_TIMEOUT);
    CHECK_OK(batch_queue_complete(b, id));
    CHECK_EQ(qstatus(t.q, id), BATCH_QUEUE_DONE);
    CHECK_OK(batch_queue_close(b));
    qclose(&t);
}

/* Thousands of ended leases in one handle (its lease heap is pruned), then leases that run out
   are still found. */
static void test_queue_lease_prune(void) {
    qtest t;
    qopen(&t, qms(400));   /* the held ones must last through the loop */
    enum { N = 4600, RUN = 300 };
    static batch_queue_push_desc jobs[N];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++) jobs[i].max_retries = 1;   /* a lost lease is a retry */
    CHECK_OK(batch_queue_push_many(t.q, jobs, N, NULL));
    for (int i = 0; i < RUN; i++) CHECK_EQ(qclaim_id(t.q), (uint64_t)i + 1);   /* held through the prunes */
    uint64_t renewed = batch_now_ns();
    for (int i = RUN; i < N; i++) {
        uint64_t id = qclaim_id(t.q);
        CHECK_EQ(id, (uint64_t)i + 1);
        CHECK_OK(batch_queue_complete(t.q, id));
        if (batch_now_ns() - renewed > qms(100)) {   /* slow machines (wine): keep the held ones */
            for (uint64_t h = 1; h <= RUN; h++) CHECK_OK(batch_queue_renew(t.q, h));
            renewed = batch_now_ns();
        }
    }
    CHECK_EQ(qclaim_id(t.q), 0);
    test_sleep_ns(qms(450));
    batch_queue* b;
    batch_queue_desc d = qdesc(t.d.path, qms(400));
    CHECK_OK(batch_queue_open(&b, &d));
    for (int i = 0; i < RUN; i++) CHECK(qclaim_id(t.q) <= RUN);   /* the same handle finds them */
    CHECK_EQ(qclaim_id(b), 0);
    CHECK_OK(batch_queue_close(b));
    qclose(&t);
}

static void test_queue_cancel_release(void) {
    qtest t;
    qopen(&t, 0);
    uint64_t a = qpush(t.q, "a", 0, 0, NULL), b = qpush(t.q, "b", 0, 0, NULL), c = qpush(t.q, "c", 0, 3, NULL);
    CHECK_OK(batch_queue_cancel(t.q, a));
    CHECK_EQ(qstatus(t.q, a), BATCH_QUEUE_CANCELLED);
    CHECK_EQ(batch_queue_cancel(t.q, a), BATCH_ERR_INVALID);
    CHECK_EQ(batch_queue_cancel(t.q, 77), BATCH_ERR_NOT_FOUND);
    CHECK_EQ(qclaim_id(t.q), b);
    CHECK_OK(batch_queue_cancel(t.q, b));                          /* running */
    CHECK_EQ(batch_queue_renew(t.q, b), BATCH_ERR_CANCELLED);
    CHECK_EQ(batch_queue_complete(t.q, b), BATCH_ERR_CANCELLED);
    CHECK_EQ(qstatus(t.q, b), BATCH_QUEUE_CANCELLED);
    CHECK_EQ(qclaim_id(t.q), c);
    CHECK_OK(batch_queue_release(t.q, c));
    batch_queue_job j;
    CHECK_OK(batch_queue_get(t.q, c, &j));
    CHECK_EQ(j.info.status, BATCH_QUEUE_QUEUED);
    CHECK_EQ(j.info.attempts, 0);
    batch_queue_job_free(t.q, &j);
    CHECK_EQ(qclaim_id(t.q), c);
    CHECK_OK(batch_queue_complete(t.q, c));
    CHECK_EQ(batch_queue_cancel(t.q, c), BATCH_ERR_INVALID);       /* done */
    CHECK_EQ(qclaim_id(t.q), 0);
    qclose(&t);
}

/* Every job of status `want` (-1: all) listed page by page: each once, in id order. */
static uint64_t qlist_all(batch_queue* q, int want, size_t page, const uint8_t* expect, uint64_t n) {
    batch_queue_info* buf = (batch_queue_info*)malloc(sizeof *buf * page);
    CHECK(buf != NULL);
    uint64_t seen = 0, last = 0;
    for (uint64_t off = 0;; off += page) {
        size_t got = 0;
        CHECK_OK(batch_queue_list(q, want, off, buf, page, &got));
        for (size_t i = 0; i < got; i++) {
            CHECK(buf[i].id > last && buf[i].id <= n);
            last = buf[i].id;
            CHECK(want < 0 || (int)buf[i].status == want);
            CHECK_EQ(buf[i].status, expect[buf[i].id]);
            seen++;
        }
        if (got < page) break;
    }
    free(buf);
    return seen;
}

static void test_queue_list_pages(void) {
    qtest t;
    qopen(&t, 0);
    enum { N = 1000 };
    static batch_queue_push_desc jobs[N];
    static uint8_t expect[N + 1];
    char name[32];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++) jobs[i].priority = 0;
    uint64_t first = 0;
    CHECK_OK(batch_queue_push_many(t.q, jobs, N, &first));
    CHECK_EQ(first, 1);
    snprintf(name, sizeof name, "named");
    for (uint64_t id = 1; id <= N; id++) expect[id] = BATCH_QUEUE_QUEUED;
    for (int i = 0; i < 300; i++) {   /* claims in id order (one priority) */
        uint64_t id = qclaim_id(t.q);
        CHECK_EQ(id, (uint64_t)i + 1);
        if (i % 3 == 0) { CHECK_OK(batch_queue_complete(t.q, id)); expect[id] = BATCH_QUEUE_DONE; }
        else if (i % 3 == 1) { CHECK_OK(batch_queue_fail(t.q, id, 2, 1, name)); expect[id] = BATCH_QUEUE_FAILED; }
        else expect[id] = BATCH_QUEUE_RUNNING;
    }
    for (uint64_t id = 500; id < 600; id++) { CHECK_OK(batch_queue_cancel(t.q, id)); expect[id] = BATCH_QUEUE_CANCELLED; }
    batch_queue_stats st;
    CHECK_OK(batch_queue_stats_get(t.q, &st));
    for (int s = 0; s < BATCH_QUEUE_STATUS_COUNT_; s++) {
        CHECK_EQ(qlist_all(t.q, s, 37, expect, N), st.count[s]);
        CHECK_EQ(qlist_all(t.q, s, 1000, expect, N), st.count[s]);
    }
    CHECK_EQ(st.count[BATCH_QUEUE_DONE], 100);
    CHECK_EQ(st.count[BATCH_QUEUE_CANCELLED], 100);
    CHECK_EQ(qlist_all(t.q, -1, 64, expect, N), N);
    size_t got = 1;
    batch_queue_info one;
    CHECK_OK(batch_queue_list(t.q, -1, N, &one, 1, &got));   /* past the end */
    CHECK_EQ(got, 0);
    qclose(&t);
}

static void test_queue_compact(void) {
    qtest t;
    qopen(&t, 0);
    batch_queue* other;
    batch_queue_desc d = qdesc(t.d.path, 0);
    CHECK_OK(batch_queue_open(&other, &d));
    for (int i = 0; i < 50; i++) qpush(t.q, "payload of a job", i % 3, 2, i % 2 ? "odd" : NULL);
    for (int i = 0; i < 20; i++) {
        uint64_t id = qclaim_id(t.q);
        if (i < 10) CHECK_OK(batch_queue_complete(t.q, id));
        else if (i < 15) CHECK_OK(batch_queue_fail(t.q, id, 4, 0, "again"));
    }
    batch_queue_stats before, after;
    CHECK_OK(batch_queue_stats_get(t.q, &before));
    static batch_queue_info l1[64], l2[64];
    size_t n1 = 0, n2 = 0;
    CHECK_OK(batch_queue_list(t.q, -1, 0, l1, 64, &n1));
    batch_result cr = batch_queue_compact(t.q, 0);
#if defined(_WIN32)
    if (cr == BATCH_ERR_BUSY && test_is_wine()) {   /* wine has no POSIX-semantics rename */
        test_skip("compaction while the file is open needs a POSIX-semantics rename");
        CHECK_OK(batch_queue_stats_get(other, &after));
        CHECK_EQ(after.file_bytes, before.file_bytes);   /* nothing changed */
        CHECK_OK(batch_queue_close(other));
        qclose(&t);
        return;
    }
#endif
    CHECK_OK(cr);
    CHECK_OK(batch_queue_stats_get(other, &after));             /* the other handle follows */
    CHECK(after.file_bytes < before.file_bytes);
    CHECK_EQ(after.total, before.total);
    CHECK_OK(batch_queue_list(other, -1, 0, l2, 64, &n2));
    CHECK_EQ(n1, n2);
    for (size_t i = 0; i < n1; i++) {
        CHECK_EQ(l1[i].id, l2[i].id);
        CHECK_EQ(l1[i].status, l2[i].status);
        CHECK_EQ(l1[i].attempts, l2[i].attempts);
        CHECK_EQ(l1[i].error, l2[i].error);
        CHECK(strcmp(l1[i].name, l2[i].name) == 0 && strcmp(l1[i].message, l2[i].message) == 0);
    }
    /* the running jobs stay held by t.q, across the compaction */
    uint64_t running = 0, done = 0;
    for (size_t i = 0; i < n1; i++) if (l1[i].status == BATCH_QUEUE_RUNNING) running = l1[i].id;
    for (size_t i = 0; i < n1; i++) if (l1[i].status == BATCH_QUEUE_DONE) done = l1[i].id;
    CHECK(running != 0 && done != 0);
    CHECK_OK(batch_queue_renew(t.q, running));
    CHECK_OK(batch_queue_compact(other, 1));                    /* drop the finished */
    CHECK_OK(batch_queue_stats_get(t.q, &after));
    CHECK_EQ(after.count[BATCH_QUEUE_DONE], 0);
    CHECK_EQ(after.total, before.total - before.count[BATCH_QUEUE_DONE] - before.count[BATCH_QUEUE_FAILED]);
    CHECK_EQ(after.next_id, 51);
    batch_queue_job j;
    CHECK_EQ(batch_queue_get(t.q, done, &j), BATCH_ERR_NOT_FOUND);
    CHECK_OK(batch_queue_complete(t.q, running));
    CHECK_EQ(qpush(other, "new", 0, 0, NULL), 51);                /* ids are not reused */
    CHECK_OK(batch_queue_compact(t.q, 1));
    CHECK_OK(batch_queue_close(other));
    CHECK_OK(batch_queue_close(t.q));
    CHECK_OK(batch_queue_open(&t.q, &d));
    CHECK_EQ(qpush(t.q, "newer", 0, 0, NULL), 52);
    qclose(&t);
}

static void test_queue_buffered(void) {
    qtest t;
    jdir_make(&t.d, "q");
    batch_queue_desc d = qdesc(t.d.path, 0);
    d.durability = BATCH_DURABLE_BUFFERED;
    CHECK_OK(batch_queue_open(&t.q, &d));
    batch_queue* other;
    batch_queue_desc od = qdesc(t.d.path, 0);
    CHECK_OK(batch_queue_open(&other, &od));
    uint64_t a = qpush(t.q, "a", 0, 0, NULL), b = qpush(t.q, "b", 0, 0, NULL);
    CHECK_EQ(qclaim_id(t.q), a);
    CHECK_OK(batch_queue_complete(t.q, a));
    CHECK_EQ(batch_queue_complete(t.q, a), BATCH_ERR_INVALID);    /* ended already (buffered) */
    CHECK_EQ(qstatus(other, a), BATCH_QUEUE_RUNNING);             /* not written yet */
    CHECK_EQ(qclaim_id(t.q), b);                                  /* a claim writes it */
    CHECK_EQ(qstatus(other, a), BATCH_QUEUE_DONE);
    CHECK_OK(batch_queue_complete(t.q, b));
    CHECK_OK(batch_queue_close(t.q));                              /* close writes it */
    CHECK_EQ(qstatus(other, b), BATCH_QUEUE_DONE);
    CHECK_OK(batch_queue_close(other));
    jdir_remove(&t.d);
    /* MACHINE: the same calls, with a sync per record */
    jdir_make(&t.d, "q");
    d = qdesc(t.d.path, 0);
    d.durability = BATCH_DURABLE_MACHINE;
    CHECK_OK(batch_queue_open(&t.q, &d));
    a = qpush(t.q, "a", 0, 0, NULL);
    CHECK_EQ(qclaim_id(t.q), a);
    CHECK_OK(batch_queue_complete(t.q, a));
    CHECK_OK(batch_queue_flush(t.q));
    qclose(&t);
}

static void test_queue_torn(void) {
    qtest t;
    qopen(&t, 0);
    uint64_t a = qpush(t.q, "a", 0, 0, NULL);
    CHECK_EQ(qclaim_id(t.q), a);
    batch_queue_stats st;
    CHECK_OK(batch_queue_stats_get(t.q, &st));
    uint64_t good = st.file_bytes;
    CHECK_OK(batch_queue_complete(t.q, a));
    CHECK_OK(batch_queue_close(t.q));
    size_t n;
    unsigned char* whole = jfile_read(t.d.path, &n);
    CHECK(whole && n > good);
    batch_queue_desc d = qdesc(t.d.path, 0);
    for (size_t cut = (size_t)good; cut < n; cut++) {   /* every cut of the last record: RUNNING */
        jfile_write(t.d.path, whole, cut);
        CHECK_OK(batch_queue_open(&t.q, &d));
        CHECK_EQ(qstatus(t.q, a), BATCH_QUEUE_RUNNING);
        CHECK_OK(batch_queue_stats_get(t.q, &st));
        CHECK_EQ(st.file_bytes, good);
        CHECK_OK(batch_queue_close(t.q));
    }
    whole[n - 3] ^= 0x10;                                  /* a flipped bit: the record is not trusted */
    jfile_write(t.d.path, whole, n);
    CHECK_OK(batch_queue_open(&t.q, &d));
    CHECK_EQ(qstatus(t.q, a), BATCH_QUEUE_RUNNING);
    CHECK_OK(batch_queue_close(t.q));
    whole[9] ^= 1;                                         /* the header's version */
    jfile_write(t.d.path, whole, n);
    CHECK_EQ(batch_queue_open(&t.q, &d), BATCH_ERR_CORRUPT);
    CHECK(t.q == NULL);
    jfile_write(t.d.path, (const unsigned char*)"not a queue at all, just some text here.", 40);
    CHECK_EQ(batch_queue_open(&t.q, &d), BATCH_ERR_CORRUPT);
    free(whole);
    jdir_remove(&t.d);
}

static void test_queue_bad_input(void) {
    qtest t;
    qopen(&t, 0);
    batch_queue* q = NULL;
    batch_queue_desc d = qdesc(t.d.path, 0);
    CHECK_EQ(batch_queue_open(NULL, &d), BATCH_ERR_INVALID);
    CHECK_EQ(batch_queue_open(&q, NULL), BATCH_ERR_INVALID);
    d.path = "";
    CHECK_EQ(batch_queue_open(&q, &d), BATCH_ERR_INVALID);
    d = qdesc(t.d.path, 0);
    d.durability = (batch_durability)9;
    CHECK_EQ(batch_queue_open(&q, &d), BATCH_ERR_INVALID);
    d = qdesc(t.d.path, 0);
    d.sync_every = -1;
    CHECK_EQ(batch_queue_open(&q, &d), BATCH_ERR_INVALID);
    CHECK(q == NULL);
    batch_queue_push_desc p;
    memset(&p, 0, sizeof p);
    uint64_t id = 42;
    p.size = 3;   /* no payload */
    CHECK_EQ(batch_queue_push(t.q, &p, &id), BATCH_ERR_INVALID);
    p.size = 0;
    p.max_retries = 1001;
    CHECK_EQ(batch_queue_push(t.q, &p, &id), BATCH_ERR_INVALID);
    p.max_retries = -1;
    CHECK_EQ(batch_queue_push(t.q, &p, &id), BATCH_ERR_INVALID);
    p.max_retries = 0;
    char longname[BATCH_QUEUE_NAME_MAX + 1];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    p.name = longname;
    CHECK_EQ(batch_queue_push(t.q, &p, &id), BATCH_ERR_INVALID);
    p.name = NULL;
    p.payload = "x";
    p.size = (size_t)BATCH_QUEUE_PAYLOAD_MAX + 1;
    CHECK_EQ(batch_queue_push(t.q, &p, &id), BATCH_ERR_INVALID);
    CHECK_EQ(id, 42);
    CHECK_EQ(batch_queue_push(NULL, &p, &id), BATCH_ERR_INVALID);
    CHECK_EQ(batch_queue_push_many(t.q, &p, 0, &id), BATCH_ERR_INVALID);
    batch_queue_stats st;
    CHECK_OK(batch_queue_stats_get(t.q, &st));
    CHECK_EQ(st.total, 0);                                  /* nothing was pushed */
    batch_queue_job j;
    CHECK_EQ(batch_queue_claim(t.q, &j), BATCH_ERR_EMPTY);
    CHECK_EQ(batch_queue_claim(NULL, &j), BATCH_ERR_INVALID);
    CHECK_EQ(batch_queue_claim(t.q, NULL), BATCH_ERR_INVALID);
    CHECK_EQ(batch_queue_complete(t.q, 0), BATCH_ERR_INVALID);
    CHECK_EQ(batch_queue_complete(t.q, 5), BATCH_ERR_NOT_FOUND);
    CHECK_EQ(batch_queue_complete(NULL, 1), BATCH_ERR_INVALID);
    CHECK_EQ(batch_queue_renew(t.q, 5), BATCH_ERR_NOT_FOUND);
    CHECK_EQ(batch_queue_get(t.q, 0, &j), BATCH_ERR_INVALID);
    size_t n = 9;
    batch_queue_info info;
    CHECK_EQ(batch_queue_list(t.q, 7, 0, &info, 1, &n), BATCH_ERR_INVALID);
    CHECK_EQ(n, 0);
    CHECK_EQ(batch_queue_list(t.q, -2, 0, &info, 1, &n), BATCH_ERR_INVALID);
    CHECK_EQ(batch_queue_list(t.q, 0, 0, NULL, 1, &n), BATCH_ERR_INVALID);
    CHECK_EQ(batch_queue_stats_get(NULL, &st), BATCH_ERR_INVALID);
    CHECK_EQ(batch_queue_compact(NULL, 0), BATCH_ERR_INVALID);
    CHECK_EQ(batch_queue_flush(NULL), BATCH_ERR_INVALID);
    CHECK_OK(batch_queue_close(NULL));
    batch_queue_job_free(t.q, NULL);
    CHECK(strcmp(batch_queue_status_string(BATCH_QUEUE_DONE), "done") == 0);
    CHECK(strcmp(batch_queue_status_string((batch_queue_status)9), "unknown") == 0);
    CHECK(strcmp(batch_result_string(BATCH_ERR_EMPTY), "nothing to claim") == 0);
    batch_job* job = NULL;
    batch_queue_serve_desc sd;
    memset(&sd, 0, sizeof sd);
    batch_pool* pool;
    batch_pool_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.workers = 1;
    CHECK_OK(batch_pool_create(&pool, &pd));
    CHECK_EQ(batch_queue_serve(pool, t.q, &sd, &job), BATCH_ERR_INVALID);   /* no fn */
    CHECK(job == NULL);
    CHECK_OK(batch_pool_destroy(pool));
    qclose(&t);
}

/* Two handles of one process, four threads each: every job completed once. */
#if !defined(BATCH_NO_THREADS)
typedef struct qthr { batch_queue* q; _Atomic int* done; } qthr;
static int qthr_main(void* arg) {
    qthr* a = (qthr*)arg;
    batch_queue_job j;
    for (;;) {
        batch_result r = batch_queue_claim(a->q, &j);
        if (r == BATCH_ERR_EMPTY) return 0;
        CHECK_OK(r);
        atomic_fetch_add(&a->done[j.info.id], 1);
        CHECK_OK(batch_queue_complete(a->q, j.info.id));
        batch_queue_job_free(a->q, &j);
    }
}
#endif
static void test_queue_threads(void) {
#if defined(BATCH_NO_THREADS)
    printf("  skipped without threads\n");
#else
    qtest t;
    qopen(&t, 0);
    enum { N = 2000 };
    static batch_queue_push_desc jobs[N];
    memset(jobs, 0, sizeof jobs);
    CHECK_OK(batch_queue_push_many(t.q, jobs, N, NULL));
    batch_queue* q2;
    batch_queue_desc d = qdesc(t.d.path, 0);
    CHECK_OK(batch_queue_open(&q2, &d));
    static _Atomic int done[N + 1];
    for (int i = 0; i <= N; i++) atomic_init(&done[i], 0);
    batch__thread th[8];
    qthr args[8];
    for (int i = 0; i < 8; i++) {
        args[i].q = i % 2 ? q2 : t.q;
        args[i].done = done;
        CHECK(batch__thread_create(&th[i], qthr_main, &args[i]));
    }
    for (int i = 0; i < 8; i++) batch__thread_join(th[i]);
    for (int i = 1; i <= N; i++) CHECK_EQ(atomic_load(&done[i]), 1);
    batch_queue_stats st;
    CHECK_OK(batch_queue_stats_get(q2, &st));
    CHECK_EQ(st.count[BATCH_QUEUE_DONE], N);
    CHECK_OK(batch_queue_close(q2));
    qclose(&t);
#endif
}

/* ---- serve ----------------------------------------------------------------------------------- */
typedef struct qserve_t { _Atomic int runs[512]; int fail_every; } qserve_t;
static int qserve_fn(batch_ctx* ctx, const batch_queue_job* job, void* user) {
    qserve_t* s = (qserve_t*)user;
    int n = atomic_fetch_add(&s->runs[job->info.id], 1);
    if (s->fail_every && job->info.id % (uint64_t)s->fail_every == 0 && n == 0)
        return batch_ctx_fail(ctx, 5, "job %llu fails once", (unsigned long long)job->info.id);
    if (s->fail_every && job->info.id == 7) return batch_ctx_fail_permanent(ctx, 6, "never");
    return 0;
}
static void test_queue_serve(void) {
#if defined(BATCH_NO_THREADS)
    (void)qserve_fn;
    printf("  skipped without threads: the serve runs a thread of its own\n");
#else
    qtest t;
    qopen(&t, 0);
    enum { N = 300 };
    static batch_queue_push_desc jobs[N];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < N; i++) { jobs[i].max_retries = 2; jobs[i].payload = "p"; jobs[i].size = 1; }
    CHECK_OK(batch_queue_push_many(t.q, jobs, N, NULL));
    static qserve_t st;
    memset(&st, 0, sizeof st);
    st.fail_every = 10;
    batch_pool* pool;
    batch_pool_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.workers = 2;
    CHECK_OK(batch_pool_create(&pool, &pd));
    batch_queue_serve_desc sd;
    memset(&sd, 0, sizeof sd);
    sd.fn = qserve_fn;
    sd.user_data = &st;
    sd.drain = 1;
    sd.concurrency = 3;
    sd.keep_records = 1;
    batch_job* job;
    CHECK_OK(batch_queue_serve(pool, t.q, &sd, &job));
    batch_job_summary sum;
    CHECK_EQ(batch_job_wait(job, &sum), BATCH_PARTIAL);
    CHECK_EQ(sum.completed, N - 1);
    CHECK_EQ(sum.failed, 30 + 1);         /* ids 10, 20 ... fail once; 7 fails for good */
    CHECK_EQ(sum.retries, 30);
    CHECK(sum.peak_concurrency >= 1 && sum.peak_concurrency <= 3);
    for (int id = 1; id <= N; id++) CHECK_EQ(atomic_load(&st.runs[id]), id % 10 == 0 ? 2 : 1);
    batch_queue_stats qs;
    CHECK_OK(batch_queue_stats_get(t.q, &qs));
    CHECK_EQ(qs.count[BATCH_QUEUE_DONE], N - 1);
    CHECK_EQ(qs.count[BATCH_QUEUE_FAILED], 1);
    batch_queue_job j;
    CHECK_OK(batch_queue_get(t.q, 7, &j));
    CHECK(strcmp(j.info.message, "never") == 0 && j.info.error == 6);
    batch_queue_job_free(t.q, &j);
    char buf[1 << 16];
    FILE* f = test_memfile(buf, sizeof buf);
    CHECK_OK(batch_job_report_json(job, f));
    test_memfile_close(f, buf, sizeof buf);
    CHECK(strstr(buf, "\"never\"") != NULL);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_pool_destroy(pool));
    qclose(&t);
#endif
}

/* A running job cancelled from another handle sees batch_ctx_should_stop; the serve goes on
   until batch_job_cancel, and gives back the job that then stops. */
typedef struct qstop_t { _Atomic int started, finished; } qstop_t;
static int qstop_fn(batch_ctx* ctx, const batch_queue_job* job, void* user) {
    qstop_t* s = (qstop_t*)user;
    atomic_fetch_add(&s->started, 1);
    uint64_t t0 = batch_now_ns();
    while (!batch_ctx_should_stop(ctx)) {
        test_sleep_ns(1000000);
        CHECK(batch_now_ns() - t0 < 20000000000ull);
    }
    (void)job;
    atomic_fetch_add(&s->finished, 1);
    return batch_ctx_fail(ctx, 3, "stopped");
}
static void test_queue_serve_cancel(void) {
#if defined(BATCH_NO_THREADS)
    (void)qstop_fn;
    printf("  skipped without threads: the serve runs a thread of its own\n");
#else
    qtest t;
    qopen(&t, qms(60));    /* renewed every 20 ms */
    uint64_t a = qpush(t.q, "a", 1, 0, NULL), b = qpush(t.q, "b", 0, 0, NULL);
    static qstop_t st;
    atomic_init(&st.started, 0);
    atomic_init(&st.finished, 0);
    batch_pool* pool;
    batch_pool_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.workers = 2;
    CHECK_OK(batch_pool_create(&pool, &pd));
    batch_queue_serve_desc sd;
    memset(&sd, 0, sizeof sd);
    sd.fn = qstop_fn;
    sd.user_data = &st;
    sd.poll_ns = 5000000;
    batch_job* job;
    CHECK_OK(batch_queue_serve(pool, t.q, &sd, &job));
    while (atomic_load(&st.started) < 2) test_sleep_ns(1000000);
    test_sleep_ns(qms(150));    /* longer than the lease: renewals hold it */
    CHECK_EQ(qstatus(t.q, a), BATCH_QUEUE_RUNNING);
    batch_queue* other;
    batch_queue_desc d = qdesc(t.d.path, qms(60));
    CHECK_OK(batch_queue_open(&other, &d));
    CHECK_EQ(qclaim_id(other), 0);
    CHECK_OK(batch_queue_cancel(other, a));
    while (atomic_load(&st.finished) < 1) test_sleep_ns(1000000);
    CHECK_EQ(qstatus(other, a), BATCH_QUEUE_CANCELLED);
    CHECK_EQ(qstatus(other, b), BATCH_QUEUE_RUNNING);
    CHECK_OK(batch_job_cancel(job));
    batch_job_summary sum;
    CHECK_EQ(batch_job_wait(job, &sum), BATCH_ERR_CANCELLED);
    CHECK_EQ(sum.cancelled, 2);
    CHECK_EQ(sum.failed, 0);
    batch_queue_job j;
    CHECK_OK(batch_queue_get(other, b, &j));                 /* given back, its attempt not counted */
    CHECK_EQ(j.info.status, BATCH_QUEUE_QUEUED);
    CHECK_EQ(j.info.attempts, 0);
    batch_queue_job_free(other, &j);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_pool_destroy(pool));
    CHECK_OK(batch_queue_close(other));
    qclose(&t);
#endif
}

/* ---- processes, on every platform (Windows: this program again, --qchild) -------------------- */
/* A child: pushes n jobs, then claims and completes until the queue is empty, writing each id it
   completed to PATH.k. 0 on success. */
static int queue_child_work(const char* path, int k, int n) {
    batch_queue* q;
    batch_queue_desc d = qdesc(path, 10000000000ull);
    if (batch_queue_open(&q, &d) != BATCH_OK) return 2;
    for (int i = 0; i < n; i++) {
        batch_queue_push_desc p;
        memset(&p, 0, sizeof p);
        int v = k * 100000 + i;
        p.payload = &v;
        p.size = sizeof v;
        if (batch_queue_push(q, &p, NULL) != BATCH_OK) return 3;
    }
    char out[MAX_TEST_PATH + 80];
    snprintf(out, sizeof out, "%s.%d", path, k);
    FILE* f = fopen(out, "w");
    if (!f) return 4;
    batch_queue_job j;
    batch_result r;
    while ((r = batch_queue_claim(q, &j)) == BATCH_OK) {
        fprintf(f, "%llu\n", (unsigned long long)j.info.id);
        if (batch_queue_complete(q, j.info.id) != BATCH_OK) return 5;
        batch_queue_job_free(q, &j);
    }
    fclose(f);
    return r == BATCH_ERR_EMPTY && batch_queue_close(q) == BATCH_OK ? 0 : 6;
}
#if defined(_WIN32)
static int queue_child_main(int argc, char** argv) {   /* --qchild PATH K N */
    return argc == 5 ? queue_child_work(argv[2], atoi(argv[3]), atoi(argv[4])) : 9;
}
#endif

/* Three processes push and serve one queue at once, then this one drains what is left: every
   job completed once, by one process, and each id given once. */
static void test_queue_processes(void) {
    enum { P = 3 };
    int n = (int)scaled(400);
    qtest t;
    qopen(&t, 0);
#if defined(_WIN32)
    HANDLE kids[P];
    for (int k = 0; k < P; k++) {
        char args[MAX_TEST_PATH + 64];
        snprintf(args, sizeof args, "--qchild \"%s\" %d %d", t.d.path, k + 1, n);
        kids[k] = (HANDLE)test_spawn_self(args);
        CHECK(kids[k] != NULL);
    }
    for (int k = 0; k < P; k++) {
        DWORD code = 1;
        CHECK(WaitForSingleObject(kids[k], 120000) == WAIT_OBJECT_0);
        GetExitCodeProcess(kids[k], &code);
        CloseHandle(kids[k]);
        CHECK_EQ(code, 0);
    }
#else
    pid_t kids[P];
    for (int k = 0; k < P; k++) {
        fflush(stdout);
        kids[k] = fork();
        CHECK(kids[k] >= 0);
        if (kids[k] == 0) _exit(queue_child_work(t.d.path, k + 1, n));
    }
    for (int k = 0; k < P; k++) {
        int st = 0;
        CHECK_EQ(waitpid(kids[k], &st, 0), kids[k]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
#endif
    int total = P * n;
    unsigned char* seen = (unsigned char*)calloc((size_t)total + 1, 1);
    CHECK(seen != NULL);
    uint64_t id;
    while ((id = qclaim_id(t.q)) != 0) {   /* what the children left */
        CHECK(id <= (uint64_t)total && !seen[id]);
        seen[id] = 1;
        CHECK_OK(batch_queue_complete(t.q, id));
    }
    for (int k = 1; k <= P; k++) {
        char out[MAX_TEST_PATH + 80];
        snprintf(out, sizeof out, "%s.%d", t.d.path, k);
        FILE* f = fopen(out, "r");
        CHECK(f != NULL);
        unsigned long long v;
        while (fscanf(f, "%llu", &v) == 1) {
            CHECK(v >= 1 && v <= (unsigned long long)total && !seen[v]);   /* completed once */
            seen[v] = 1;
        }
        fclose(f);
        CHECK_EQ(unlink(out), 0);
    }
    for (int i = 1; i <= total; i++) CHECK(seen[i]);
    free(seen);
    batch_queue_stats st;
    CHECK_OK(batch_queue_stats_get(t.q, &st));
    CHECK_EQ(st.total, total);
    CHECK_EQ(st.count[BATCH_QUEUE_DONE], total);
    CHECK_EQ(st.next_id, (uint64_t)total + 1);
    qclose(&t);
}

#define QUEUE_TESTS \
    { "queue_basic", test_queue_basic }, \
    { "queue_fail_retry", test_queue_fail_retry }, \
    { "queue_lease", test_queue_lease }, \
    { "queue_lease_prune", test_queue_lease_prune }, \
    { "queue_cancel_release", test_queue_cancel_release }, \
    { "queue_list_pages", test_queue_list_pages }, \
    { "queue_compact", test_queue_compact }, \
    { "queue_buffered", test_queue_buffered }, \
    { "queue_torn", test_queue_torn }, \
    { "queue_bad_input", test_queue_bad_input }, \
    { "queue_threads", test_queue_threads }, \
    { "queue_serve", test_queue_serve }, \
    { "queue_serve_cancel", test_queue_serve_cancel }, \
    { "queue_processes", test_queue_processes },
