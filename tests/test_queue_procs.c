/* test_queue_procs.c - the durable queue shared by processes: pushers and servers at once,
   kill -9 of servers and pushers, torn and corrupt files, paging a big queue. */
#if defined(_WIN32)
/* No fork and no kill -9 on Windows: every test here is POSIX only. */
static void test_queue_proc_push_serve(void) { test_skip("queue_proc_push_serve (fork, kill)"); }
static void test_queue_proc_kill_server(void) { test_skip("queue_proc_kill_server (fork, kill)"); }
static void test_queue_proc_kill_pusher(void) { test_skip("queue_proc_kill_pusher (fork, kill)"); }
static void test_queue_proc_torn_file(void) { test_skip("queue_proc_torn_file (fork, kill)"); }
static void test_queue_proc_cancel(void) { test_skip("queue_proc_cancel (fork, kill)"); }
static void test_queue_proc_list_pages(void) { test_skip("queue_proc_list_pages (fork, kill)"); }
static void test_queue_proc_compact_concurrent(void) { test_skip("queue_proc_compact_concurrent (fork, kill)"); }
static void test_queue_proc_lease_renew(void) { test_skip("queue_proc_lease_renew (fork, kill)"); }
static void test_queue_proc_inherited_handle(void) { test_skip("queue_proc_inherited_handle (fork)"); }
#else
#include <dirent.h>
#include <time.h>

/* ---- helpers (qp_: test_queue.c has its own) ------------------------------------------------ */
#define QP_MS 1000000ull
/* Leases stretched a little on slow builds (sanitizers, valgrind: BATCH_TEST_SCALE), where a
   renewal every lease / 3 must still come in time. */
static uint64_t qp_k(void) { return test_scale > 1 ? (uint64_t)(test_scale < 3 ? test_scale : 3) : 1; }

typedef struct qp_dir { char dir[MAX_TEST_PATH]; char path[MAX_TEST_PATH + 64]; } qp_dir;

static void qp_dir_make(qp_dir* d) {
    snprintf(d->dir, sizeof d->dir, "/tmp/batch-qp.XXXXXX");
    CHECK(mkdtemp(d->dir) != NULL);
    snprintf(d->path, sizeof d->path, "%s/jobs.queue", d->dir);
}
static void qp_dir_file(const qp_dir* d, char* out, size_t n, const char* leaf) {
    snprintf(out, n, "%s/%s", d->dir, leaf);
}
/* Removes the directory and whatever the queue left in it. */
static void qp_dir_remove(qp_dir* d) {
    DIR* dd = opendir(d->dir);
    CHECK(dd != NULL);
    struct dirent* e;
    while ((e = readdir(dd)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[MAX_TEST_PATH + 300];
        snprintf(p, sizeof p, "%s/%s", d->dir, e->d_name);
        unlink(p);
    }
    closedir(dd);
    CHECK_EQ(rmdir(d->dir), 0);
}

static uint64_t qp_wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t qp_file_size(const char* path) {
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

static batch_queue_desc qp_desc(const char* path, uint64_t lease_ns) {
    batch_queue_desc d;
    memset(&d, 0, sizeof d);
    d.path = path;
    d.lease_ns = lease_ns;
    d.retry_base_ns = 1 * QP_MS;
    d.retry_max_ns = 4 * QP_MS;
    return d;
}
static batch_queue* qp_open_dur(const char* path, uint64_t lease_ns, batch_durability dur) {
    batch_queue* q = NULL;
    batch_queue_desc d = qp_desc(path, lease_ns);
    d.durability = dur;
    d.sync_every = 4;
    CHECK_OK(batch_queue_open(&q, &d));
    CHECK(q != NULL);
    return q;
}
static batch_queue* qp_open(const char* path, uint64_t lease_ns) { return qp_open_dur(path, lease_ns, BATCH_DURABLE_PROCESS); }
static batch_queue_push_desc qp_job(const void* payload, size_t size, int priority, int max_retries) {
    batch_queue_push_desc j;
    memset(&j, 0, sizeof j);
    j.payload = payload;
    j.size = size;
    j.priority = priority;
    j.max_retries = max_retries;
    return j;
}
static uint64_t qp_push_u64(batch_queue* q, uint64_t v, int priority) {
    batch_queue_push_desc j = qp_job(&v, sizeof v, priority, 3);
    uint64_t id = 0;
    CHECK_OK(batch_queue_push(q, &j, &id));
    CHECK(id != 0);
    return id;
}
static uint64_t qp_payload_u64(const batch_queue_job* job) {
    uint64_t v;
    CHECK_EQ(job->info.size, sizeof v);
    CHECK(job->payload != NULL);
    memcpy(&v, job->payload, sizeof v);
    return v;
}
static batch_queue_stats qp_stats(batch_queue* q) {
    batch_queue_stats s;
    memset(&s, 0xa5, sizeof s);
    CHECK_OK(batch_queue_stats_get(q, &s));
    return s;
}
static batch_queue_info qp_info(batch_queue* q, uint64_t id) {
    batch_queue_job j;
    CHECK_OK(batch_queue_get(q, id, &j));
    batch_queue_info i = j.info;
    batch_queue_job_free(q, &j);
    return i;
}

/* Every job of `status` (-1: all) in id order, read by pages of `limit` (malloc'd; *n: how many).
   Checks the pages: increasing ids, the asked status, full pages but the last. */
static batch_queue_info* qp_list_all(batch_queue* q, int status, size_t limit, size_t* n) {
    size_t cap = 0, got = 0;
    batch_queue_info* all = NULL;
    for (;;) {
        if (got + limit > cap) {
            cap = (got + limit) * 2;
            all = (batch_queue_info*)realloc(all, cap * sizeof *all);
            CHECK(all != NULL);
        }
        size_t k = (size_t)-1;
        CHECK_OK(batch_queue_list(q, status, got, all + got, limit, &k));
        CHECK(k <= limit);
        for (size_t i = got; i < got + k; i++) {
            CHECK(all[i].id != 0);
            if (i) CHECK(all[i].id > all[i - 1].id);
            if (status >= 0) CHECK_EQ(all[i].status, status);
        }
        got += k;
        if (k < limit) break;
    }
    *n = got;
    return all;
}

/* A child ends with _exit: under LeakSanitizer, its leaks are looked for by hand (as main.c does
   for each test's process). */
#if defined(__SANITIZE_ADDRESS__)
#  define QP_LSAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define QP_LSAN 1
#  endif
#endif
#if defined(QP_LSAN)
void __lsan_do_leak_check(void);
#endif
typedef void (*qp_child_fn)(void* arg);
static pid_t qp_fork(qp_child_fn fn, void* arg) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        fn(arg);
        fflush(stdout);
        fflush(stderr);
#if defined(QP_LSAN)
        __lsan_do_leak_check();
#endif
        _exit(0);
    }
    return pid;
}
/* Waits for a child that must end by itself with exit 0 (a CHECK that failed in it exits 1). */
static void qp_reap(pid_t pid, const char* what) {
    uint64_t deadline = batch_now_ns() + (uint64_t)120000 * QP_MS;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) break;
        CHECK_EQ(r, 0);
        if (batch_now_ns() > deadline) {
            fprintf(stderr, "  %s (pid %d) hung: killed\n", what, (int)pid);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            CHECK(!"a child process hung");
        }
        test_sleep_ns(1 * QP_MS);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "  %s (pid %d): %s %d\n", what, (int)pid, WIFSIGNALED(st) ? "killed by signal" : "exit code",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        CHECK(!"a child process failed");
    }
}
/* Waits until *step reaches value, failing when the child ends first (a CHECK failed in it). */
static void qp_wait_step(pid_t pid, _Atomic int* step, int value, const char* what) {
    uint64_t deadline = batch_now_ns() + (uint64_t)120000 * QP_MS;
    while (atomic_load(step) < value) {
        int st = 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "  %s (pid %d) ended early: %s %d\n", what, (int)pid, WIFSIGNALED(st) ? "signal" : "exit",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            CHECK(!"a child process ended early");
        }
        CHECK(batch_now_ns() < deadline);
        test_sleep_ns(1 * QP_MS);
    }
}
/* SIGKILL and reap: 1 when the child had ended by itself (exit 0) before the signal. */
static int qp_kill_reap(pid_t pid, const char* what) {
    kill(pid, SIGKILL);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (WIFSIGNALED(st)) { CHECK_EQ(WTERMSIG(st), SIGKILL); return 0; }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "  %s (pid %d) failed before it was killed (exit %d)\n", what, (int)pid, WEXITSTATUS(st));
        CHECK(!"a child process failed");
    }
    return 1;
}

/* Serves q on a pool of its own: with `until` (a shared counter), until it reaches until_value,
   then batch_job_cancel; else until drained (desc->drain). The summary in *sum; returns the wait's
   result. Without threads serve is BATCH_ERR_THREAD: then the same loop by hand (no renewals). */
static batch_result qp_serve(batch_queue* q, const batch_queue_serve_desc* sd, _Atomic int* until, int until_value,
                             batch_job_summary* sum) {
    memset(sum, 0, sizeof *sum);
#if defined(BATCH_NO_THREADS)
    {
        batch_pool* pool = NULL;
        batch_pool_desc pd;
        memset(&pd, 0, sizeof pd);
        pd.workers = BATCH_WORKERS_INLINE;
        CHECK_OK(batch_pool_create(&pool, &pd));
        batch_job* job = NULL;
        CHECK_EQ(batch_queue_serve(pool, q, sd, &job), BATCH_ERR_THREAD);
        CHECK_OK(batch_pool_destroy(pool));
    }
    for (;;) {
        int stop_now = until && atomic_load(until) >= until_value;
        batch_queue_job job;
        batch_result r = batch_queue_claim(q, &job);
        if (r == BATCH_ERR_EMPTY) {
            if (stop_now) break;
            if (!until && sd->drain) {
                batch_queue_stats s = qp_stats(q);
                if (!s.count[BATCH_QUEUE_QUEUED] && !s.expired) break;
            }
            test_sleep_ns(1 * QP_MS);
            continue;
        }
        CHECK_OK(r);
        int code = sd->fn(NULL, &job, sd->user_data);
        r = code ? batch_queue_fail(q, job.info.id, code, 0, "failed") : batch_queue_complete(q, job.info.id);
        if (r == BATCH_ERR_CANCELLED) sum->cancelled++;
        else {
            CHECK_OK(r);
            if (code) sum->failed++;
            else sum->completed++;
        }
        batch_queue_job_free(q, &job);
    }
    return BATCH_OK;
#else
    batch_pool* pool = NULL;
    batch_pool_desc pd;
    memset(&pd, 0, sizeof pd);
    pd.workers = 2;
    pd.spin_us = BATCH_SPIN_NONE;
    CHECK_OK(batch_pool_create(&pool, &pd));
    batch_job* job = NULL;
    CHECK_OK(batch_queue_serve(pool, q, sd, &job));
    CHECK(job != NULL);
    if (until) {   /* meanwhile this thread uses the handle the serve uses */
        batch_queue_info few[5];
        size_t k = 0;
        while (atomic_load(until) < until_value) {
            batch_queue_stats st = qp_stats(q);
            CHECK(st.total < st.next_id);
            CHECK_OK(batch_queue_list(q, BATCH_QUEUE_RUNNING, 0, few, 5, &k));
            test_sleep_ns(1 * QP_MS);
        }
        CHECK_OK(batch_job_cancel(job));
    }
    batch_result r = batch_job_wait(job, sum);
    CHECK_OK(batch_job_destroy(job));
    CHECK_OK(batch_pool_destroy(pool));
    return r;
#endif
}
static batch_queue_serve_desc qp_serve_desc(batch_queue_fn fn, void* user, int concurrency, int drain) {
    batch_queue_serve_desc sd;
    memset(&sd, 0, sizeof sd);
    sd.fn = fn;
    sd.user_data = user;
    sd.concurrency = concurrency;
    sd.drain = drain;
    sd.poll_ns = 2 * QP_MS;
    return sd;
}

/* ---- 1. pushers and servers at once --------------------------------------------------------- */
enum { QP1_PUSHERS = 4, QP1_SERVERS = 3 };
typedef struct qp1_shared {
    _Atomic int pushers_done;
    _Atomic long long completed[QP1_SERVERS];   /* jobs each server completed */
    _Atomic long long serve_failed;
} qp1_shared;
typedef struct qp1_ctx {
    const char* path;
    int who;
    uint32_t per;          /* jobs per pusher */
    uint32_t n;            /* all jobs */
    qp1_shared* sh;
    _Atomic int* ran;      /* [n]: times the work of payload u ran */
    uint64_t* id_of;       /* [n]: the id push returned for payload u */
} qp1_ctx;

static void qp1_pusher(void* arg) {
    qp1_ctx* c = (qp1_ctx*)arg;
    /* racing the others to create the file; one with fdatasync */
    batch_queue* q = qp_open_dur(c->path, 2000 * QP_MS, c->who == 3 ? BATCH_DURABLE_MACHINE : BATCH_DURABLE_PROCESS);
    uint64_t rng = test_seed ^ (0x51ull << 40) ^ (uint64_t)c->who;
    uint32_t k = 0;
    char name[32];
    while (k < c->per) {
        uint64_t r = test_rand(&rng);
        if (r % 3 == 0) {
            uint32_t u = (uint32_t)c->who * c->per + k;
            batch_queue_push_desc j = qp_job(&u, sizeof u, (int)(r >> 8) % 3, 2);
            snprintf(name, sizeof name, "p%u", (unsigned)u);
            if (r & 0x10000) j.name = name;
            uint64_t id = 0;
            CHECK_OK(batch_queue_push(q, &j, &id));
            CHECK(id != 0);
            c->id_of[u] = id;
            k++;
        } else {
            uint32_t vals[16];
            batch_queue_push_desc js[16];
            uint32_t n = 1 + (uint32_t)((r >> 16) % 16);
            if (n > c->per - k) n = c->per - k;
            for (uint32_t i = 0; i < n; i++) {
                vals[i] = (uint32_t)c->who * c->per + k + i;
                js[i] = qp_job(&vals[i], sizeof vals[i], (int)((r >> 24) + i) % 3, 2);
            }
            uint64_t first = 0;
            CHECK_OK(batch_queue_push_many(q, js, n, &first));
            CHECK(first != 0);
            for (uint32_t i = 0; i < n; i++) c->id_of[vals[i]] = first + i;
            k += n;
        }
        if (r & 0x100000) test_sleep_ns(50000);
    }
    CHECK_OK(batch_queue_close(q));
    atomic_fetch_add(&c->sh->pushers_done, 1);
}

static int qp1_work(batch_ctx* ctx, const batch_queue_job* job, void* user) {
    (void)ctx;
    qp1_ctx* c = (qp1_ctx*)user;
    uint32_t u;
    CHECK_EQ(job->info.size, sizeof u);
    memcpy(&u, job->payload, sizeof u);
    CHECK(u < c->n);
    atomic_fetch_add(&c->ran[u], 1);
    return 0;
}

static void qp1_server(void* arg) {
    qp1_ctx* c = (qp1_ctx*)arg;
    batch_queue* q = qp_open_dur(c->path, 2000 * QP_MS, c->who == 1 ? BATCH_DURABLE_BUFFERED : BATCH_DURABLE_PROCESS);
    long long done = 0;
    if (c->who < 2) {
        /* serve while the pushers push, cancel when they are done, then drain what is left */
        batch_queue_serve_desc sd = qp_serve_desc(qp1_work, c, 3, 0);
        batch_job_summary s1, s2;
        qp_serve(q, &sd, &c->sh->pushers_done, QP1_PUSHERS, &s1);
        sd.drain = 1;
        CHECK_OK(qp_serve(q, &sd, NULL, 0, &s2));
        done = (long long)(s1.completed + s2.completed);
        atomic_fetch_add(&c->sh->serve_failed, (long long)(s1.failed + s2.failed));
    } else {
        /* by hand: claim, work, complete */
        for (;;) {
            int pushed = atomic_load(&c->sh->pushers_done) == QP1_PUSHERS;
            batch_queue_job job;
            batch_result r = batch_queue_claim(q, &job);
            if (r == BATCH_ERR_EMPTY) {
                CHECK(job.payload == NULL && job.info.id == 0);
                if (pushed) break;
                test_sleep_ns(200000);
                continue;
            }
            CHECK_OK(r);
            CHECK_EQ(job.info.status, BATCH_QUEUE_RUNNING);
            CHECK_EQ(job.info.attempts, 1);
            CHECK(job.info.lease_until_ns > qp_wall_ns());
            CHECK_EQ(qp1_work(NULL, &job, c), 0);
            CHECK_OK(batch_queue_complete(q, job.info.id));
            batch_queue_job_free(q, &job);
            CHECK(job.payload == NULL);
            done++;
        }
    }
    CHECK_OK(batch_queue_close(q));
    atomic_store(&c->sh->completed[c->who], done);
}

/* Creation race: processes open a queue nobody created, at once, and push one job each. */
typedef struct qp1_race { const char* path; _Atomic int* go; int who; } qp1_race;
static void qp1_racer(void* arg) {
    qp1_race* r = (qp1_race*)arg;
    while (!atomic_load(r->go)) { }
    batch_queue* q = qp_open(r->path, 2000 * QP_MS);
    CHECK(qp_push_u64(q, (uint64_t)r->who, 0) != 0);
    CHECK_OK(batch_queue_close(q));
}
static void qp1_creation_race(const qp_dir* d) {
    enum { RACERS = 6 };
    _Atomic int* go = (_Atomic int*)shared_alloc(sizeof *go);
    char path[MAX_TEST_PATH + 64];
    qp_dir_file(d, path, sizeof path, "race.queue");
    long rounds = scaled(20);
    for (long round = 0; round < rounds; round++) {
        unlink(path);
        atomic_store(go, 0);
        pid_t pids[RACERS];
        qp1_race r = { path, go, 0 };
        for (int i = 0; i < RACERS; i++) { r.who = i; pids[i] = qp_fork(qp1_racer, &r); }
        test_sleep_ns(2 * QP_MS);
        atomic_store(go, 1);
        for (int i = 0; i < RACERS; i++) qp_reap(pids[i], "racer");
        batch_queue* q = qp_open(path, 2000 * QP_MS);
        batch_queue_stats s = qp_stats(q);
        if (s.total != RACERS) fprintf(stderr, "  creation race %ld: %llu jobs, not %d\n", round, (unsigned long long)s.total, RACERS);
        CHECK_EQ(s.total, RACERS);
        CHECK_EQ(s.next_id, RACERS + 1);
        unsigned seen = 0;
        for (uint64_t id = 1; id <= RACERS; id++) {
            batch_queue_job j;
            CHECK_OK(batch_queue_get(q, id, &j));
            uint64_t who = qp_payload_u64(&j);
            CHECK(who < RACERS && !(seen & (1u << who)));
            seen |= 1u << who;
            batch_queue_job_free(q, &j);
        }
        CHECK_OK(batch_queue_close(q));
    }
    unlink(path);
    shared_free(go, sizeof *go);
}

static void test_queue_proc_push_serve(void) {
    qp_dir d;
    qp_dir_make(&d);
    qp1_creation_race(&d);
    uint32_t per = (uint32_t)scaled(500), n = QP1_PUSHERS * per;
    qp1_shared* sh = (qp1_shared*)shared_alloc(sizeof *sh);
    _Atomic int* ran = (_Atomic int*)shared_alloc(n * sizeof *ran);
    uint64_t* id_of = (uint64_t*)shared_alloc(n * sizeof *id_of);
    qp1_ctx c = { d.path, 0, per, n, sh, ran, id_of };
    pid_t pids[QP1_PUSHERS + QP1_SERVERS];
    /* servers first: they open the file the pushers create (nobody created it beforehand) */
    for (int i = 0; i < QP1_SERVERS; i++) { c.who = i; pids[QP1_PUSHERS + i] = qp_fork(qp1_server, &c); }
    for (int i = 0; i < QP1_PUSHERS; i++) { c.who = i; pids[i] = qp_fork(qp1_pusher, &c); }
    for (int i = 0; i < QP1_PUSHERS + QP1_SERVERS; i++) qp_reap(pids[i], i < QP1_PUSHERS ? "pusher" : "server");

    long long completed = 0;
    for (int i = 0; i < QP1_SERVERS; i++) completed += atomic_load(&sh->completed[i]);
    CHECK_EQ(completed, n);
    CHECK_EQ(atomic_load(&sh->serve_failed), 0);
    for (uint32_t u = 0; u < n; u++) {
        if (atomic_load(&ran[u]) != 1) fprintf(stderr, "  payload %u (id %llu) ran %d times\n", (unsigned)u,
                                               (unsigned long long)id_of[u], atomic_load(&ran[u]));
        CHECK_EQ(atomic_load(&ran[u]), 1);
    }
    batch_queue* q = qp_open(d.path, 2000 * QP_MS);
    batch_queue_stats s = qp_stats(q);
    CHECK_EQ(s.total, n);
    CHECK_EQ(s.count[BATCH_QUEUE_DONE], n);
    CHECK_EQ(s.count[BATCH_QUEUE_QUEUED] + s.count[BATCH_QUEUE_RUNNING] + s.count[BATCH_QUEUE_FAILED] +
             s.count[BATCH_QUEUE_CANCELLED], 0);
    CHECK_EQ(s.next_id, (uint64_t)n + 1);
    CHECK_EQ(s.delayed + s.expired, 0);
    CHECK(s.file_bytes == qp_file_size(d.path));
    size_t k = 0;
    batch_queue_info* all = qp_list_all(q, -1, 500, &k);
    CHECK_EQ(k, n);
    for (size_t i = 0; i < k; i++) {
        CHECK_EQ(all[i].id, i + 1);   /* ids 1..n, none lost, none twice */
        CHECK_EQ(all[i].status, BATCH_QUEUE_DONE);
        CHECK_EQ(all[i].attempts, 1);
        CHECK_EQ(all[i].error, 0);
        CHECK_EQ(all[i].size, 4);
        CHECK(all[i].finished_ns >= all[i].pushed_ns && all[i].pushed_ns != 0);
        CHECK_EQ(all[i].lease_until_ns, 0);
        CHECK_EQ(all[i].not_before_ns, 0);
    }
    free(all);
    /* each push's id holds its payload */
    for (uint32_t u = 0; u < n; u++) {
        batch_queue_job j;
        CHECK_OK(batch_queue_get(q, id_of[u], &j));
        uint32_t v;
        CHECK_EQ(j.info.size, sizeof v);
        memcpy(&v, j.payload, sizeof v);
        CHECK_EQ(v, u);
        if (j.info.name[0]) { char want[32]; snprintf(want, sizeof want, "p%u", (unsigned)u); CHECK(!strcmp(j.info.name, want)); }
        batch_queue_job_free(q, &j);
    }
    CHECK_OK(batch_queue_close(q));
    shared_free(id_of, n * sizeof *id_of);
    shared_free(ran, n * sizeof *ran);
    shared_free(sh, sizeof *sh);
    qp_dir_remove(&d);
}

/* ---- 2. a server killed at a random instant ------------------------------------------------- */
enum { QP2_JOBS = 3, QP2_RUNNERS = 4 };
#define QP2_LEASE (150 * QP_MS * qp_k())
#define QP2_WORK (12 * QP_MS * qp_k())
typedef struct qp2_shared {
    _Atomic int ran[QP2_JOBS];
    _Atomic long long second_completed;
} qp2_shared;
/* mode 0: claim/complete by hand; 1: batch_queue_serve; 2: serve with BUFFERED durability (a
   kill loses its completes: those jobs run again) */
typedef struct qp2_ctx { const char* path; qp2_shared* sh; int mode; uint64_t wait_until; } qp2_ctx;
typedef struct qp2_tally { int before, running, after, lost_complete; } qp2_tally;

static int qp2_work(batch_ctx* ctx, const batch_queue_job* job, void* user) {
    (void)ctx;
    qp2_ctx* c = (qp2_ctx*)user;
    uint64_t j = qp_payload_u64(job);
    CHECK(j < QP2_JOBS);
    atomic_fetch_add(&c->sh->ran[j], 1);
    test_sleep_ns(QP2_WORK);
    return 0;
}
static void qp2_server(void* arg) {
    qp2_ctx* c = (qp2_ctx*)arg;
    batch_queue* q = qp_open_dur(c->path, QP2_LEASE, c->mode == 2 ? BATCH_DURABLE_BUFFERED : BATCH_DURABLE_PROCESS);
    if (c->mode == 0) {
        batch_queue_job job;
        batch_result r;
        while ((r = batch_queue_claim(q, &job)) == BATCH_OK) {
            CHECK_EQ(qp2_work(NULL, &job, c), 0);
            CHECK_OK(batch_queue_complete(q, job.info.id));
            batch_queue_job_free(q, &job);
        }
        CHECK_EQ(r, BATCH_ERR_EMPTY);
    } else {
        batch_queue_serve_desc sd = qp_serve_desc(qp2_work, c, 1, 1);
        batch_job_summary s;
        CHECK_OK(qp_serve(q, &sd, NULL, 0, &s));
    }
    CHECK_OK(batch_queue_close(q));
}
/* The second server: once the dead one's leases ran out, drains the queue. */
static void qp2_second(void* arg) {
    qp2_ctx* c = (qp2_ctx*)arg;
    while (qp_wall_ns() <= c->wait_until) test_sleep_ns(1 * QP_MS);
    batch_queue* q = qp_open(c->path, QP2_LEASE);
    batch_queue_serve_desc sd = qp_serve_desc(qp2_work, c, 2, 1);
    batch_job_summary s;
    CHECK_OK(qp_serve(q, &sd, NULL, 0, &s));
    CHECK_EQ(s.failed, 0);
    atomic_store(&c->sh->second_completed, (long long)s.completed);
    CHECK_OK(batch_queue_close(q));
}

static void qp2_trial(const char* path, qp2_shared* sh, int t, uint64_t* rng, qp2_tally* tally) {
    unlink(path);
    memset((void*)sh, 0, sizeof *sh);
    batch_queue* q = qp_open(path, QP2_LEASE);
    int retries = t % 6 < 3 ? 2 : 0;   /* 0: a lost lease is the job's only attempt: FAILED */
    for (uint64_t j = 0; j < QP2_JOBS; j++) {
        batch_queue_push_desc pd = qp_job(&j, sizeof j, 0, retries);
        uint64_t id = 0;
        CHECK_OK(batch_queue_push(q, &pd, &id));
        CHECK_EQ(id, j + 1);
    }
    CHECK_OK(batch_queue_close(q));
    qp2_ctx c = { path, sh, t % 3, 0 };
    unsigned delay_us = (unsigned)(test_rand(rng) % (QP2_JOBS * QP2_WORK / 1000 + 15000));
    pid_t pid = qp_fork(qp2_server, &c);
    test_sleep_ns((uint64_t)delay_us * 1000u);
    int ended = qp_kill_reap(pid, "server");
    int ran_before[QP2_JOBS];
    for (int j = 0; j < QP2_JOBS; j++) ran_before[j] = atomic_load(&sh->ran[j]);

    /* what the dead server left */
    q = qp_open(path, QP2_LEASE);
    batch_queue_info left[QP2_JOBS];
    uint64_t lease_end = 0;
    int not_done = 0, running = 0, done = 0;
    for (int j = 0; j < QP2_JOBS; j++) {
        left[j] = qp_info(q, (uint64_t)j + 1);
        if (left[j].status == BATCH_QUEUE_RUNNING) {
            running++;
            CHECK(left[j].lease_until_ns != 0 && left[j].lease_until_ns <= qp_wall_ns() + QP2_LEASE);
            if (left[j].lease_until_ns > lease_end) lease_end = left[j].lease_until_ns;
        } else {
            CHECK(left[j].status == BATCH_QUEUE_QUEUED || left[j].status == BATCH_QUEUE_DONE);
        }
        if (left[j].status != BATCH_QUEUE_DONE) not_done++;
        else done++;
    }
    CHECK(running <= 1);   /* concurrency 1 (buffered: a claim writes the complete before it) */
    if (ended) CHECK_EQ(done, QP2_JOBS);
    CHECK_OK(batch_queue_close(q));
    if (running) tally->running++;
    else if (done == QP2_JOBS) tally->after++;
    else tally->before++;

    c.wait_until = lease_end;
    pid = qp_fork(qp2_second, &c);
    qp_reap(pid, "second server");
    int lost = retries == 0 ? running : 0;   /* FAILED, not run again */
    CHECK_EQ(atomic_load(&sh->second_completed), not_done - lost);

    q = qp_open(path, QP2_LEASE);
    batch_queue_stats s = qp_stats(q);
    CHECK_EQ(s.total, QP2_JOBS);
    CHECK_EQ(s.count[BATCH_QUEUE_DONE], QP2_JOBS - lost);
    CHECK_EQ(s.count[BATCH_QUEUE_FAILED], lost);
    CHECK_EQ(s.next_id, QP2_JOBS + 1);
    for (int j = 0; j < QP2_JOBS; j++) {
        batch_queue_info f = qp_info(q, (uint64_t)j + 1);
        int ran = atomic_load(&sh->ran[j]);
        if (left[j].status == BATCH_QUEUE_RUNNING && retries == 0) {   /* no retry left: FAILED */
            if (f.status != BATCH_QUEUE_FAILED || f.attempts != 1 || f.error != BATCH_ERR_TIMEOUT || ran != ran_before[j])
                fprintf(stderr, "  trial %d, job %d without retries lost its lease: %s, attempts %d, error %d, ran %d -> %d\n",
                        t, j + 1, batch_queue_status_string(f.status), f.attempts, f.error, ran_before[j], ran);
            CHECK_EQ(f.status, BATCH_QUEUE_FAILED);
            CHECK_EQ(f.attempts, 1);
            CHECK_EQ(f.error, BATCH_ERR_TIMEOUT);
            CHECK(f.finished_ns >= left[j].lease_until_ns);
            CHECK_EQ(ran, ran_before[j]);
            continue;
        }
        CHECK_EQ(f.status, BATCH_QUEUE_DONE);
        if (left[j].status == BATCH_QUEUE_DONE) {   /* finished before the kill: not again */
            CHECK_EQ(f.attempts, 1);
            CHECK_EQ(f.error, 0);
            CHECK_EQ(ran, 1);
            CHECK_EQ(f.finished_ns, left[j].finished_ns);
        } else if (left[j].status == BATCH_QUEUE_QUEUED) {   /* never claimed: runs once */
            CHECK_EQ(left[j].attempts, 0);
            CHECK_EQ(ran_before[j], 0);
            CHECK_EQ(f.attempts, 1);
            CHECK_EQ(f.error, 0);
            CHECK_EQ(ran, 1);
        } else {   /* held by the dead server: its lease ran out, the attempt counts as failed */
            if (f.attempts != left[j].attempts + 1 || f.error != BATCH_ERR_TIMEOUT || ran != ran_before[j] + 1)
                fprintf(stderr, "  trial %d (%s, killed after %u us), job %d: attempts %d -> %d, error %d, ran %d -> %d\n",
                        t, c.mode == 0 ? "claim/complete" : c.mode == 1 ? "serve" : "serve, buffered", delay_us, j + 1, left[j].attempts, f.attempts, f.error,
                        ran_before[j], ran);
            CHECK_EQ(left[j].attempts, 1);
            CHECK(ran_before[j] <= 1);
            if (c.mode == 2 && ran_before[j] == 1) tally->lost_complete++;
            CHECK_EQ(f.attempts, left[j].attempts + 1);
            CHECK_EQ(f.error, BATCH_ERR_TIMEOUT);
            CHECK_EQ(ran, ran_before[j] + 1);   /* the work ran again: at least once in all */
        }
    }
    CHECK_OK(batch_queue_close(q));
}
typedef struct qp2_runner_arg { const qp_dir* d; int who; } qp2_runner_arg;
static void qp2_runner(void* arg) {
    const qp2_runner_arg* a = (const qp2_runner_arg*)arg;
    char path[MAX_TEST_PATH + 64];
    char leaf[32];
    snprintf(leaf, sizeof leaf, "q%d", a->who);
    qp_dir_file(a->d, path, sizeof path, leaf);
    uint64_t rng = test_seed ^ ((uint64_t)a->who << 48) ^ 0x2222;
    qp2_shared* sh = (qp2_shared*)shared_alloc(sizeof *sh);
    qp2_tally tally = { 0, 0, 0, 0 };
    long trials = (scaled(32) + QP2_RUNNERS - 1) / QP2_RUNNERS;
    for (int t = 0; t < trials; t++) qp2_trial(path, sh, t, &rng, &tally);
    printf("  runner %d: %ld trials: killed before a claim %d, while running %d (a buffered complete lost %d), after all %d\n",
           a->who, trials, tally.before, tally.running, tally.lost_complete, tally.after);
    shared_free(sh, sizeof *sh);
}
/* A failure's retry delay, written by one process, holds for the claims of another. */
#define QP2_RETRY (80 * QP_MS)
static void qp2_failer(void* arg) {
    const char* path = (const char*)arg;
    batch_queue* q = NULL;
    batch_queue_desc d = qp_desc(path, QP2_LEASE);
    d.retry_base_ns = QP2_RETRY;
    d.retry_max_ns = 10 * QP2_RETRY;
    CHECK_OK(batch_queue_open(&q, &d));
    batch_queue_job j;
    CHECK_OK(batch_queue_claim(q, &j));
    CHECK_OK(batch_queue_fail(q, j.info.id, 5, 0, "five"));
    batch_queue_job_free(q, &j);
    CHECK_OK(batch_queue_close(q));
}
static void qp2_retry_delay(const qp_dir* d) {
    char path[MAX_TEST_PATH + 64];
    qp_dir_file(d, path, sizeof path, "retry.queue");
    batch_queue* q = qp_open(path, QP2_LEASE);   /* its own retry_base is 1 ms: the failer's counts */
    batch_queue_push_desc pd = qp_job("r", 1, 0, 1);
    uint64_t id = 0;
    CHECK_OK(batch_queue_push(q, &pd, &id));
    uint64_t failed_after = qp_wall_ns();
    qp_reap(qp_fork(qp2_failer, path), "failer");
    batch_queue_info i = qp_info(q, id);
    CHECK_EQ(i.status, BATCH_QUEUE_QUEUED);
    CHECK_EQ(i.attempts, 1);
    CHECK_EQ(i.error, 5);
    CHECK(!strcmp(i.message, "five"));
    CHECK(i.not_before_ns >= failed_after + QP2_RETRY / 2);   /* base * 2^0, jitter or not */
    CHECK(i.not_before_ns <= qp_wall_ns() + QP2_RETRY);
    batch_queue_stats st = qp_stats(q);
    if (qp_wall_ns() < i.not_before_ns) CHECK_EQ(st.delayed, 1);   /* (a slow build may be past it) */
    batch_queue_job j;
    batch_result r;
    while ((r = batch_queue_claim(q, &j)) == BATCH_ERR_EMPTY) test_sleep_ns(2 * QP_MS);
    CHECK_OK(r);
    CHECK(qp_wall_ns() >= i.not_before_ns);   /* not before its time */
    CHECK_EQ(j.info.attempts, 2);
    CHECK_EQ(j.info.error, 5);
    batch_queue_job_free(q, &j);
    CHECK_OK(batch_queue_fail(q, id, 6, 0, "six"));   /* its one retry spent: FAILED */
    i = qp_info(q, id);
    CHECK_EQ(i.status, BATCH_QUEUE_FAILED);
    CHECK_EQ(i.error, 6);
    CHECK(!strcmp(i.message, "six"));
    CHECK_EQ(i.attempts, 2);
    CHECK_OK(batch_queue_close(q));
    unlink(path);
}

/* A holder whose lease ran out ends its job late: fine while no claim took it; a job without
   retries that a claim found expired is FAILED, and the late complete says TIMEOUT. */
typedef struct qp2_late { const char* path; _Atomic int* step; _Atomic int* code; } qp2_late;
static void qp2_late_holder(void* arg) {
    qp2_late* l = (qp2_late*)arg;
    batch_queue* q = qp_open(l->path, 30 * QP_MS);
    batch_queue_job j;
    CHECK_OK(batch_queue_claim(q, &j));
    uint64_t until = j.info.lease_until_ns, id = j.info.id;
    batch_queue_job_free(q, &j);
    while (qp_wall_ns() <= until + 10 * QP_MS) test_sleep_ns(1 * QP_MS);
    atomic_store(l->step, 1);   /* expired; the parent may claim (or not) */
    while (atomic_load(l->step) != 2) test_sleep_ns(1 * QP_MS);
    atomic_store(l->code, (int)batch_queue_complete(q, id));
    CHECK_OK(batch_queue_close(q));
}
static void qp2_late_ends(const qp_dir* d) {
    char path[MAX_TEST_PATH + 64];
    qp_dir_file(d, path, sizeof path, "late.queue");
    _Atomic int* sh = (_Atomic int*)shared_alloc(2 * sizeof *sh);
    qp2_late l = { path, &sh[0], &sh[1] };
    for (int retries = 0; retries < 2; retries++) {
        unlink(path);
        atomic_store(&sh[0], 0);
        batch_queue* q = qp_open(path, 30 * QP_MS);
        batch_queue_push_desc pd = qp_job("late", 4, 0, retries);
        uint64_t id = 0;
        CHECK_OK(batch_queue_push(q, &pd, &id));
        pid_t pid = qp_fork(qp2_late_holder, &l);
        while (atomic_load(&sh[0]) != 1) test_sleep_ns(1 * QP_MS);
        CHECK_EQ(qp_stats(q).expired, 1);
        batch_queue_job j;
        if (retries) {   /* nobody claims: the late complete holds */
            atomic_store(&sh[0], 2);
            qp_reap(pid, "late holder");
            CHECK_OK(atomic_load(&sh[1]));
            batch_queue_info i = qp_info(q, id);
            CHECK_EQ(i.status, BATCH_QUEUE_DONE);
            CHECK_EQ(i.attempts, 1);
            CHECK_EQ(i.error, 0);
        } else {   /* a claim finds it expired with no retry left: FAILED, nothing to claim */
            CHECK_EQ(batch_queue_claim(q, &j), BATCH_ERR_EMPTY);
            batch_queue_info i = qp_info(q, id);
            CHECK_EQ(i.status, BATCH_QUEUE_FAILED);
            CHECK_EQ(i.error, BATCH_ERR_TIMEOUT);
            atomic_store(&sh[0], 2);
            qp_reap(pid, "late holder");
            CHECK_EQ(atomic_load(&sh[1]), BATCH_ERR_TIMEOUT);
            i = qp_info(q, id);
            CHECK_EQ(i.status, BATCH_QUEUE_FAILED);   /* the late complete changed nothing */
            CHECK_EQ(i.attempts, 1);
        }
        CHECK_OK(batch_queue_close(q));
    }
    unlink(path);
    shared_free(sh, 2 * sizeof *sh);
}

static void test_queue_proc_kill_server(void) {
    qp_dir d;
    qp_dir_make(&d);
    qp2_retry_delay(&d);
    qp2_late_ends(&d);
    pid_t pids[QP2_RUNNERS];
    qp2_runner_arg a = { &d, 0 };
    for (int i = 0; i < QP2_RUNNERS; i++) { a.who = i; pids[i] = qp_fork(qp2_runner, &a); }
    for (int i = 0; i < QP2_RUNNERS; i++) qp_reap(pids[i], "trial runner");
    qp_dir_remove(&d);
}

/* ---- 3. a pusher killed at a random instant ------------------------------------------------- */
/* A payload: the trial, who pushed it (0 the killed pusher, 1 the one that lives on), its
   sequence number among that pusher's jobs in the trial, then filler derived from them. */
typedef struct qp3_head { uint32_t trial, who, seq, size; } qp3_head;
typedef struct qp3_shared {
    _Atomic unsigned long long reported[2];   /* the last id each pusher saw push return */
    _Atomic unsigned long long pushed[2];     /* how many jobs each pusher saw pushed */
    _Atomic int started;
    _Atomic int in_push;                      /* big pushes started */
} qp3_shared;
typedef struct qp3_ctx { const char* path; qp3_shared* sh; uint32_t trial, who; int big; } qp3_ctx;

static size_t qp3_fill(unsigned char* buf, uint32_t trial, uint32_t who, uint32_t seq, size_t size) {
    qp3_head h = { trial, who, seq, (uint32_t)size };
    size_t first = size < 4096 ? size : 4096;
    for (size_t i = 0; i < first; i++) buf[i] = (unsigned char)(seq * 31u + (uint32_t)i * 7u + trial);
    for (size_t at = 4096; at < size; at += 4096)   /* the filler repeats every 256 bytes */
        memcpy(buf + at, buf, size - at < 4096 ? size - at : 4096);
    memcpy(buf, &h, sizeof h);
    return size;
}
static void qp3_check(const batch_queue_job* j, uint32_t trial, uint32_t who, uint32_t seq) {
    qp3_head h;
    CHECK(j->info.size >= sizeof h);
    memcpy(&h, j->payload, sizeof h);
    if (h.trial != trial || h.who != who || h.seq != seq)
        fprintf(stderr, "  id %llu: payload of trial %u pusher %u job %u, expected trial %u pusher %u job %u\n",
                (unsigned long long)j->info.id, h.trial, h.who, h.seq, trial, who, seq);
    CHECK_EQ(h.trial, trial);
    CHECK_EQ(h.who, who);
    CHECK_EQ(h.seq, seq);
    CHECK_EQ(h.size, j->info.size);
    const unsigned char* b = (const unsigned char*)j->payload;
    for (size_t i = sizeof h; i < j->info.size; i++) CHECK_EQ(b[i], (unsigned char)(seq * 31u + (uint32_t)i * 7u + trial));
}

/* Pushes until killed (who 0) or `quota` jobs (who 1), one push or a push_many at a time. */
static void qp3_pusher(void* arg) {
    qp3_ctx* c = (qp3_ctx*)arg;
    batch_queue* q = qp_open(c->path, 1000 * QP_MS);
    uint64_t rng = test_seed ^ ((uint64_t)c->trial << 20) ^ c->who ^ 0x3333;
    enum { MAXN = 48 };
    unsigned char* bufs = (unsigned char*)malloc((size_t)MAXN * 4096);
    CHECK(bufs != NULL);
    batch_queue_push_desc js[MAXN];
    uint32_t seq = 0, quota = c->who ? 300 : 1u << 30;
    uint64_t last = 0;
    atomic_store(&c->sh->started, 1);
    if (c->big) {   /* payloads of megabytes: writes long enough for a kill to land in one */
        size_t cap = 2u << 20;
        unsigned char* big = (unsigned char*)malloc(cap);
        CHECK(big != NULL);
        for (;;) {
            uint64_t r = test_rand(&rng);
            size_t size = (1u << 20) + (size_t)(r % (1u << 20));
            qp3_fill(big, c->trial, c->who, seq, size);
            batch_queue_push_desc j = qp_job(big, size, 0, 0);
            uint64_t id = 0;
            atomic_fetch_add(&c->sh->in_push, 1);
            CHECK_OK(batch_queue_push(q, &j, &id));
            CHECK(id > last);
            last = id;
            seq++;
            atomic_store(&c->sh->reported[c->who], (unsigned long long)last);
            atomic_store(&c->sh->pushed[c->who], (unsigned long long)seq);
        }
    }
    while (seq < quota) {
        uint64_t r = test_rand(&rng);
        uint32_t n = r % 2 ? 1 : 1 + (uint32_t)((r >> 8) % 12);
        size_t size = 16 + (size_t)((r >> 16) % 48);
        if (c->who == 0 && (r >> 32) % 16 == 0) { n = MAXN; size = 4096; }   /* a long write a kill may tear */
        if (n > quota - seq) n = quota - seq;
        for (uint32_t i = 0; i < n; i++) {
            qp3_fill(bufs + (size_t)i * 4096, c->trial, c->who, seq + i, size);
            js[i] = qp_job(bufs + (size_t)i * 4096, size, 0, 0);
        }
        uint64_t first = 0;
        if (n == 1) CHECK_OK(batch_queue_push(q, &js[0], &first));
        else CHECK_OK(batch_queue_push_many(q, js, n, &first));
        CHECK(first > last);   /* ids only grow */
        last = first + n - 1;
        seq += n;
        atomic_store(&c->sh->reported[c->who], (unsigned long long)last);   /* after push returned */
        atomic_store(&c->sh->pushed[c->who], (unsigned long long)seq);
        test_sleep_ns(20000 + (r >> 40) % 200000);
    }
    free(bufs);
    CHECK_OK(batch_queue_close(q));
}

static void test_queue_proc_kill_pusher(void) {
    qp_dir d;
    qp_dir_make(&d);
    qp3_shared* sh = (qp3_shared*)shared_alloc(sizeof *sh);
    uint64_t rng = test_seed ^ 0x3030;
    long trials = scaled(16);
    uint64_t next = 1, marker_runs = 0;
    int torn = 0, in_push = 0;
    for (uint32_t t = 0; t < (uint32_t)trials; t++) {
        memset((void*)sh, 0, sizeof *sh);
        int big = t % 2 == 0;
        qp3_ctx ca = { d.path, sh, t, 0, big }, cb = { d.path, sh, t, 1, 0 };
        pid_t a = qp_fork(qp3_pusher, &ca);
        pid_t b = t % 3 ? qp_fork(qp3_pusher, &cb) : -1;   /* in 2 trials of 3: one that lives on (and
                                                                 meets the dead one's torn tail) */
        while (!atomic_load(&sh->started)) test_sleep_ns(100000);
        if (big) {   /* during the first or second big push */
            int k = 1 + (int)(test_rand(&rng) % 2);
            while (atomic_load(&sh->in_push) < k) test_sleep_ns(20000);
            test_sleep_ns((test_rand(&rng) % 12000) * 1000u);
        } else {
            test_sleep_ns((test_rand(&rng) % 30000) * 1000u);
        }
        CHECK_EQ(qp_kill_reap(a, "pusher"), 0);
        if (b > 0) qp_reap(b, "pusher that lives on");
        unsigned long long reported = atomic_load(&sh->reported[0]), pushed = atomic_load(&sh->pushed[0]);
        if (big && (unsigned long long)atomic_load(&sh->in_push) > pushed) in_push++;
        if (b > 0 && atomic_load(&sh->reported[1]) > reported) reported = atomic_load(&sh->reported[1]);

        uint64_t killed_size = qp_file_size(d.path);
        batch_queue* q = qp_open(d.path, 1000 * QP_MS);   /* opens: a torn tail is cut off */
        batch_queue_stats s = qp_stats(q);
        CHECK(s.file_bytes <= killed_size);
        if (s.file_bytes < killed_size) torn++;
        CHECK_EQ(s.next_id, s.total + 1);   /* ids from 1, none missing */
        CHECK(s.next_id > reported);        /* every reported push is there */
        CHECK(s.next_id >= next);
        /* this trial's jobs, in id order: each pusher's in its own order, none missing; the killed
           one's at least those it saw pushed */
        uint32_t seen[2] = { 0, 0 };
        for (uint64_t id = next; id < s.next_id; id++) {
            batch_queue_job j;
            CHECK_OK(batch_queue_get(q, id, &j));
            CHECK_EQ(j.info.id, id);
            CHECK_EQ(j.info.status, BATCH_QUEUE_QUEUED);
            qp3_head h;
            CHECK(j.info.size >= sizeof h);
            memcpy(&h, j.payload, sizeof h);
            CHECK(h.who < 2);
            qp3_check(&j, t, h.who, seen[h.who]++);
            batch_queue_job_free(q, &j);
        }
        CHECK(seen[0] >= pushed);
        if (b > 0) CHECK_EQ(seen[1], 300);
        else CHECK_EQ(seen[1], 0);
        /* pushing and serving go on: a marker job with a higher priority is the next claim */
        uint64_t mid = qp_push_u64(q, 0xfeed0000u + t, 5);
        CHECK_EQ(mid, s.next_id);
        batch_queue_job j;
        CHECK_OK(batch_queue_claim(q, &j));
        CHECK_EQ(j.info.id, mid);
        CHECK_EQ(qp_payload_u64(&j), 0xfeed0000u + t);
        CHECK_OK(batch_queue_complete(q, mid));
        batch_queue_job_free(q, &j);
        if (s.next_id > next) {   /* and the oldest QUEUED job */
            batch_queue_info oldest;
            size_t k = 0;
            CHECK_OK(batch_queue_list(q, BATCH_QUEUE_QUEUED, 0, &oldest, 1, &k));
            CHECK_EQ(k, 1);
            CHECK_OK(batch_queue_claim(q, &j));
            CHECK_EQ(j.info.id, oldest.id);
            CHECK_OK(batch_queue_complete(q, j.info.id));
            batch_queue_job_free(q, &j);
            marker_runs++;
        }
        next = mid + 1;
        CHECK_OK(batch_queue_close(q));
    }
    printf("  %ld pushers killed, %d in a push of megabytes, %d torn tails left for the next open\n", trials, in_push, torn);
    /* the whole file once more, with a fresh handle */
    batch_queue* q = qp_open(d.path, 1000 * QP_MS);
    batch_queue_stats s = qp_stats(q);
    CHECK_EQ(s.next_id, next);
    CHECK_EQ(s.total, next - 1);
    CHECK_EQ(s.count[BATCH_QUEUE_DONE], (uint64_t)trials + marker_runs);
    size_t n = 0;
    batch_queue_info* all = qp_list_all(q, -1, 1000, &n);
    CHECK_EQ(n, next - 1);
    for (size_t i = 0; i < n; i++) CHECK_EQ(all[i].id, i + 1);
    free(all);
    CHECK_OK(batch_queue_close(q));
    shared_free(sh, sizeof *sh);
    qp_dir_remove(&d);
}

/* ---- 4. torn and corrupt files -------------------------------------------------------------- */
#define QP4_HOUR (3600000ull * QP_MS)
enum { QP4_OPS = 18 };
typedef struct qp4_snap { batch_queue_stats st; batch_queue_info* jobs; size_t n; uint64_t size; } qp4_snap;

static batch_queue* qp4_open(const char* path) {
    batch_queue* q = NULL;
    batch_queue_desc d = qp_desc(path, QP4_HOUR);
    d.retry_base_ns = QP4_HOUR;   /* a failed attempt waits: the state does not change with time */
    d.retry_max_ns = 2 * QP4_HOUR;
    CHECK_OK(batch_queue_open(&q, &d));
    return q;
}
static batch_result qp4_try_open(const char* path) {
    batch_queue* q = NULL;
    batch_queue_desc d = qp_desc(path, QP4_HOUR);
    batch_result r = batch_queue_open(&q, &d);
    if (r == BATCH_OK) CHECK_OK(batch_queue_close(q));
    else CHECK(q == NULL);
    return r;
}
static void qp4_take(batch_queue* q, const char* path, qp4_snap* s) {
    s->st = qp_stats(q);
    s->jobs = qp_list_all(q, -1, 7, &s->n);
    s->size = qp_file_size(path);
    CHECK_EQ(s->st.file_bytes, s->size);
}
static void qp4_same_info(const batch_queue_info* a, const batch_queue_info* b) {
    CHECK_EQ(a->id, b->id);
    CHECK_EQ(a->status, b->status);
    CHECK_EQ(a->priority, b->priority);
    CHECK_EQ(a->max_retries, b->max_retries);
    CHECK_EQ(a->attempts, b->attempts);
    CHECK_EQ(a->error, b->error);
    CHECK_EQ(a->pushed_ns, b->pushed_ns);
    CHECK_EQ(a->not_before_ns, b->not_before_ns);
    CHECK_EQ(a->lease_until_ns, b->lease_until_ns);
    CHECK_EQ(a->finished_ns, b->finished_ns);
    CHECK_EQ(a->size, b->size);
    CHECK(!strcmp(a->name, b->name));
    CHECK(!strcmp(a->message, b->message));
}
/* q shows exactly the state of snapshot s (the file cut to its size). */
static void qp4_expect(batch_queue* q, const qp4_snap* s, const char* what, uint64_t at) {
    batch_queue_stats st = qp_stats(q);
    size_t n = 0;
    batch_queue_info* jobs = qp_list_all(q, -1, 7, &n);
    int same = st.total == s->st.total && st.next_id == s->st.next_id && n == s->n && st.file_bytes == s->size;
    for (int k = 0; k < BATCH_QUEUE_STATUS_COUNT_; k++) same = same && st.count[k] == s->st.count[k];
    if (!same)
        fprintf(stderr, "  %s at %llu: total %llu next_id %llu file_bytes %llu, expected %llu %llu %llu\n", what,
                (unsigned long long)at, (unsigned long long)st.total, (unsigned long long)st.next_id,
                (unsigned long long)st.file_bytes, (unsigned long long)s->st.total,
                (unsigned long long)s->st.next_id, (unsigned long long)s->size);
    CHECK_EQ(st.total, s->st.total);
    CHECK_EQ(st.next_id, s->st.next_id);
    for (int k = 0; k < BATCH_QUEUE_STATUS_COUNT_; k++) CHECK_EQ(st.count[k], s->st.count[k]);
    CHECK_EQ(st.delayed, s->st.delayed);
    CHECK_EQ(st.file_bytes, s->size);   /* the tail was cut off */
    CHECK_EQ(n, s->n);
    for (size_t i = 0; i < n; i++) qp4_same_info(&jobs[i], &s->jobs[i]);
    free(jobs);
}
/* Opens the file as it is now: the state of s; then a push lands after the valid prefix (the
   torn tail does not hide it from the next open). */
static void qp4_expect_file(const char* path, const qp4_snap* s, const char* what, uint64_t at) {
    batch_queue* q = qp4_open(path);
    qp4_expect(q, s, what, at);
    uint64_t v = 0x5eed0000u + at;
    uint64_t id = qp_push_u64(q, v, 0);
    CHECK_EQ(id, s->st.next_id);
    CHECK_OK(batch_queue_close(q));
    q = qp4_open(path);
    batch_queue_stats st = qp_stats(q);
    CHECK_EQ(st.total, s->st.total + 1);
    CHECK_EQ(st.next_id, s->st.next_id + 1);
    batch_queue_job j;
    CHECK_OK(batch_queue_get(q, id, &j));
    CHECK_EQ(qp_payload_u64(&j), v);
    CHECK_EQ(j.info.status, BATCH_QUEUE_QUEUED);
    batch_queue_job_free(q, &j);
    CHECK_OK(batch_queue_close(q));
}
static uint64_t qp4_claim(batch_queue* q) {
    batch_queue_job j;
    CHECK_OK(batch_queue_claim(q, &j));
    uint64_t id = j.info.id;
    batch_queue_job_free(q, &j);
    return id;
}
/* The history: every kind of record, a snapshot after each operation (s[0]: the new file). */
static void qp4_history(const char* path, qp4_snap* s) {
    unlink(path);
    batch_queue* q = qp4_open(path);
    qp4_take(q, path, &s[0]);
    static const char big[300] = "echo";
    batch_queue_push_desc a = qp_job("alpha", 5, 0, 2), m[3] = { qp_job("bravo", 5, 1, 2), qp_job("charlie", 7, 0, 0),
                                                                 qp_job("delta", 5, 2, 1) },
                          e = qp_job(big, sizeof big, 0, 0), f = qp_job(NULL, 0, 3, 0);
    a.name = "a";
    m[0].name = "b";
    f.name = "f";
    uint64_t id = 0;
    int k = 1;
    CHECK_OK(batch_queue_push(q, &a, &id));                     CHECK_EQ(id, 1);  qp4_take(q, path, &s[k++]);
    CHECK_OK(batch_queue_push_many(q, m, 3, &id));              CHECK_EQ(id, 2);  qp4_take(q, path, &s[k++]);
    CHECK_EQ(qp4_claim(q), 4);                                                    qp4_take(q, path, &s[k++]);
    CHECK_EQ(qp4_claim(q), 2);                                                    qp4_take(q, path, &s[k++]);
    CHECK_OK(batch_queue_complete(q, 4));                                         qp4_take(q, path, &s[k++]);
    CHECK_OK(batch_queue_fail(q, 2, 7, 0, "seven"));                              qp4_take(q, path, &s[k++]);
    CHECK_OK(batch_queue_cancel(q, 3));                                           qp4_take(q, path, &s[k++]);
    CHECK_OK(batch_queue_push(q, &e, &id));                     CHECK_EQ(id, 5);  qp4_take(q, path, &s[k++]);
    CHECK_EQ(qp4_claim(q), 1);                                                    qp4_take(q, path, &s[k++]);
    CHECK_OK(batch_queue_renew(q, 1));                                            qp4_take(q, path, &s[k++]);
    CHECK_OK(batch_queue_release(q, 1));                                          qp4_take(q, path, &s[k++]);
    CHECK_EQ(qp4_claim(q), 1);                                                    qp4_take(q, path, &s[k++]);
    CHECK_OK(batch_queue_fail(q, 1, 9, 1, "nine"));                               qp4_take(q, path, &s[k++]);
    CHECK_OK(batch_queue_push(q, &f, &id));                     CHECK_EQ(id, 6);  qp4_take(q, path, &s[k++]);
    CHECK_EQ(qp4_claim(q), 6);                                                    qp4_take(q, path, &s[k++]);
    CHECK_OK(batch_queue_cancel(q, 6));                                           qp4_take(q, path, &s[k++]);
    CHECK_EQ(qp4_claim(q), 5);                                                    qp4_take(q, path, &s[k++]);
    CHECK_OK(batch_queue_complete(q, 5));                                         qp4_take(q, path, &s[k++]);
    CHECK_EQ(k, QP4_OPS + 1);
    CHECK_OK(batch_queue_close(q));
    /* what the history must show */
    const qp4_snap* z = &s[QP4_OPS];
    CHECK_EQ(z->n, 6);
    CHECK_EQ(z->jobs[0].status, BATCH_QUEUE_FAILED);
    CHECK_EQ(z->jobs[0].attempts, 1);   /* the release gave one back */
    CHECK_EQ(z->jobs[0].error, 9);
    CHECK(!strcmp(z->jobs[0].message, "nine"));
    CHECK_EQ(z->jobs[1].status, BATCH_QUEUE_QUEUED);
    CHECK(z->jobs[1].not_before_ns > qp_wall_ns() + QP4_HOUR / 4);
    CHECK_EQ(z->jobs[1].error, 7);
    CHECK_EQ(z->jobs[2].status, BATCH_QUEUE_CANCELLED);
    CHECK_EQ(z->jobs[3].status, BATCH_QUEUE_DONE);
    CHECK_EQ(z->jobs[4].status, BATCH_QUEUE_DONE);
    CHECK_EQ(z->jobs[5].status, BATCH_QUEUE_CANCELLED);
    CHECK_EQ(z->st.delayed, 1);
    for (k = 1; k <= QP4_OPS; k++) {   /* every operation wrote something, open/list/stats nothing */
        if (k != 10) CHECK(s[k].size > s[k - 1].size);
        else CHECK(s[k].size >= s[k - 1].size);
    }
}
static void qp4_snaps_free(qp4_snap* s) { for (int k = 0; k <= QP4_OPS; k++) free(s[k].jobs); }

/* The record boundaries of a file in the journal's format (header `h` bytes, then u32 length,
   u32 CRC, payload): how many; ends[] gets each record's end. */
static size_t qp4_records(const unsigned char* b, size_t n, size_t h, uint64_t* ends, size_t max) {
    size_t off = h, k = 0;
    while (off + 8 <= n && k < max) {
        uint32_t len = (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 | (uint32_t)b[off + 2] << 16 | (uint32_t)b[off + 3] << 24;
        off += 8 + (size_t)len;
        ends[k++] = off;
    }
    CHECK_EQ(off, n);   /* the queue file is in the journal's format */
    return k;
}

static int qp4_item(batch_ctx* ctx, const batch_item* item, void* result, void* user) {
    (void)ctx; (void)item; (void)result; (void)user;
    return 0;
}
static int qp4_task(batch_ctx* ctx, void* user) { (void)ctx; (void)user; return 0; }

/* A live handle meets the torn tail a dead process left (junk appended behind its back): its
   next push lands where the next open finds it. */
static void qp4_live_torn(const char* path, const unsigned char* junk, size_t n) {
    unlink(path);
    batch_queue* q = qp4_open(path);
    uint64_t x = qp_push_u64(q, 111, 0);
    FILE* f = fopen(path, "ab");
    CHECK(f != NULL);
    CHECK_EQ(fwrite(junk, 1, n, f), n);
    fclose(f);
    uint64_t y = qp_push_u64(q, 222, 0);
    CHECK_EQ(y, x + 1);
    batch_queue_job j;
    CHECK_OK(batch_queue_claim(q, &j));
    CHECK_EQ(j.info.id, x);
    CHECK_OK(batch_queue_complete(q, x));
    batch_queue_job_free(q, &j);
    CHECK_OK(batch_queue_close(q));
    q = qp4_open(path);
    batch_queue_stats s = qp_stats(q);
    if (s.total != 2) fprintf(stderr, "  after %zu junk bytes behind a live handle: %llu jobs, not 2\n", n, (unsigned long long)s.total);
    CHECK_EQ(s.total, 2);
    CHECK_EQ(s.count[BATCH_QUEUE_DONE], 1);
    CHECK_EQ(s.count[BATCH_QUEUE_QUEUED], 1);
    CHECK_EQ(s.next_id, 3);
    CHECK_OK(batch_queue_get(q, y, &j));
    CHECK_EQ(qp_payload_u64(&j), 222);
    batch_queue_job_free(q, &j);
    CHECK_OK(batch_queue_close(q));
}

/* Compaction keeps every field of every job, as a handle opened before it (in another process)
   and a fresh one see it; dropping the finished ones keeps the rest and the ids. */
typedef struct qp4_cctx { const char* path; const qp4_snap* s; _Atomic int* step; int drop; } qp4_cctx;
static void qp4_expect_kept(batch_queue* q, const qp4_snap* s, int drop) {
    size_t n = 0;
    batch_queue_info* jobs = qp_list_all(q, -1, 3, &n);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (drop && s->jobs[i].status > BATCH_QUEUE_RUNNING) {
            batch_queue_job j;
            CHECK_EQ(batch_queue_get(q, s->jobs[i].id, &j), BATCH_ERR_NOT_FOUND);
            continue;
        }
        CHECK(k < n);
        qp4_same_info(&jobs[k++], &s->jobs[i]);
    }
    CHECK_EQ(k, n);
    free(jobs);
    batch_queue_stats st = qp_stats(q);
    CHECK_EQ(st.next_id, s->st.next_id);
    CHECK_EQ(st.delayed, s->st.delayed);
    for (int i = 0; i <= BATCH_QUEUE_RUNNING; i++) CHECK_EQ(st.count[i], s->st.count[i]);
    for (int i = BATCH_QUEUE_RUNNING + 1; i < BATCH_QUEUE_STATUS_COUNT_; i++) CHECK_EQ(st.count[i], drop ? 0 : s->st.count[i]);
}
static void qp4_watcher(void* arg) {   /* opened before the compaction, looks after it */
    qp4_cctx* c = (qp4_cctx*)arg;
    batch_queue* q = qp4_open(c->path);
    qp4_expect_kept(q, c->s, 0);
    atomic_store(c->step, 1);
    while (atomic_load(c->step) != 2) test_sleep_ns(1 * QP_MS);
    qp4_expect_kept(q, c->s, c->drop);
    CHECK_OK(batch_queue_close(q));
}
static void qp4_compacted(const qp_dir* d, const qp4_snap* s) {
    /* the history again, with names and messages of the longest lengths on top */
    qp4_snap h[QP4_OPS + 1];
    qp4_history(d->path, h);
    batch_queue* q = qp4_open(d->path);
    char name[BATCH_QUEUE_NAME_MAX], msg[BATCH_MESSAGE_MAX + 40];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    memset(msg, 'm', sizeof msg - 1);
    msg[sizeof msg - 1] = 0;   /* longer than a message: cut to BATCH_MESSAGE_MAX - 1 */
    batch_queue_push_desc pd = qp_job("payload", 7, -3, 5);
    pd.name = name;
    uint64_t id = 0;
    CHECK_OK(batch_queue_push(q, &pd, &id));
    CHECK_EQ(id, 7);
    batch_queue_job j;
    CHECK_OK(batch_queue_claim(q, &j));
    CHECK_EQ(j.info.id, 7);
    CHECK(!strcmp(j.info.name, name));
    batch_queue_job_free(q, &j);
    CHECK_OK(batch_queue_fail(q, 7, -77, 0, msg));
    qp4_snap z;
    qp4_take(q, d->path, &z);
    CHECK_EQ(z.n, 7);
    CHECK_EQ(strlen(z.jobs[6].message), BATCH_MESSAGE_MAX - 1);
    CHECK_EQ(z.jobs[6].error, -77);
    CHECK_OK(batch_queue_close(q));
    (void)s;
    _Atomic int* step = (_Atomic int*)shared_alloc(sizeof *step);
    for (int drop = 0; drop < 2; drop++) {   /* keeping all, then dropping the finished */
        atomic_store(step, 0);
        qp4_cctx c = { d->path, &z, step, drop };
        pid_t pid = qp_fork(qp4_watcher, &c);
        qp_wait_step(pid, step, 1, "watcher of a compaction");
        q = qp4_open(d->path);
        CHECK_OK(batch_queue_compact(q, drop));
        qp4_expect_kept(q, &z, drop);
        CHECK_OK(batch_queue_close(q));
        atomic_store(step, 2);
        qp_reap(pid, "watcher of a compaction");
        q = qp4_open(d->path);   /* a fresh handle */
        qp4_expect_kept(q, &z, drop);
        CHECK_OK(batch_queue_close(q));
    }
    q = qp4_open(d->path);
    CHECK_EQ(qp_push_u64(q, 1, 0), 8);   /* the ids go on after the dropped ones */
    CHECK_OK(batch_queue_close(q));
    shared_free(step, sizeof *step);
    free(z.jobs);
    qp4_snaps_free(h);
}

static void test_queue_proc_torn_file(void) {
    qp_dir d;
    qp_dir_make(&d);
    qp4_snap s[QP4_OPS + 1];
    qp4_history(d.path, s);
    size_t n = 0;
    unsigned char* full = jfile_read(d.path, &n);
    CHECK(full != NULL);
    CHECK_EQ(n, s[QP4_OPS].size);
    size_t h = (size_t)s[0].size;
    CHECK(h > 0);   /* a new queue has its header */
    uint64_t ends[64];
    size_t nrec = qp4_records(full, n, h, ends, 64);
    CHECK(nrec >= QP4_OPS);
    /* each operation's records; ops_of[] the op of each record */
    int op_of[64];
    for (size_t r = 0; r < nrec; r++) {
        int k = 1;
        while (k < QP4_OPS && s[k].size < ends[r]) k++;
        op_of[r] = k;
    }
    /* every cut of the last operations' records: the state before the cut record */
    int cuts = 0, inners = 0, flips_cut = 0, flips_corrupt = 0;
    for (uint64_t cut = s[7].size; cut < n; cut++) {
        cuts++;
        int k = 0;
        while (k < QP4_OPS && s[k + 1].size <= cut) k++;
        int inner = 0;   /* a cut after a record inside an operation of several */
        for (size_t r = 0; r < nrec; r++) inner |= ends[r] <= cut && ends[r] > s[k].size && ends[r] < s[k + 1].size;
        jfile_write(d.path, full, (size_t)cut);
        if (inner) { CHECK_OK(qp4_try_open(d.path)); inners++; continue; }
        qp4_expect_file(d.path, &s[k], "cut", cut);
    }
    /* zeros after the last record (a power loss's torn append): the whole history */
    {
        unsigned char* z = (unsigned char*)calloc(n + 100, 1);
        memcpy(z, full, n);
        for (size_t extra = 1; extra <= 100; extra += 33) {
            jfile_write(d.path, z, n + extra);
            qp4_expect_file(d.path, &s[QP4_OPS], "zeros", extra);
        }
        free(z);
    }
    /* every bit flip in the last two records: cut off with what follows, or (only a flip of a
       length field) refused as corrupt with the file left alone */
    for (size_t at = (size_t)ends[nrec - 3]; at < n; at++) {
        size_t r = nrec - 2;
        if (at >= ends[nrec - 2]) r = nrec - 1;
        size_t rec_start = (size_t)ends[r - 1];
        int k = op_of[r] - 1;   /* the state before the flipped record's operation */
        for (int bit = 0; bit < 8; bit++) {
            full[at] ^= (unsigned char)(1u << bit);
            jfile_write(d.path, full, n);
            batch_result res = qp4_try_open(d.path);
            if (res == BATCH_ERR_CORRUPT) {
                flips_corrupt++;
                if (at >= rec_start + 4) fprintf(stderr, "  a flip of bit %d at %zu (record at %zu) is CORRUPT\n", bit, at, rec_start);
                CHECK(at < rec_start + 4);
                size_t n2 = 0;
                unsigned char* after = jfile_read(d.path, &n2);
                CHECK(n2 == n && memcmp(after, full, n) == 0);
                free(after);
            } else {
                CHECK_OK(res);
                flips_cut++;
                jfile_write(d.path, full, n);
                qp4_expect_file(d.path, &s[k], "bit flip", at * 8 + (size_t)bit);
            }
            full[at] ^= (unsigned char)(1u << bit);
        }
    }
    printf("  %zu records (header %zu bytes, file %zu): %d cuts (%d inside an operation of several records), "
           "%d bit flips cut off, %d refused\n", nrec, h, n, cuts, inners, flips_cut, flips_corrupt);
    /* every header byte: CORRUPT, the file left alone */
    for (size_t at = 0; at < h; at++) {
        full[at] ^= 0x10;
        jfile_write(d.path, full, n);
        batch_result res = qp4_try_open(d.path);
        if (res != BATCH_ERR_CORRUPT) fprintf(stderr, "  header byte %zu flipped: %s\n", at, batch_result_string(res));
        CHECK_EQ(res, BATCH_ERR_CORRUPT);
        size_t n2 = 0;
        unsigned char* after = jfile_read(d.path, &n2);
        CHECK(n2 == n && memcmp(after, full, n) == 0);
        free(after);
        full[at] ^= 0x10;
    }
    /* a header cut short (a crash right after creation) and an empty file: a new queue */
    for (size_t cut = 0; cut < h; cut++) {
        jfile_write(d.path, full, cut);
        qp4_expect_file(d.path, &s[0], "torn header", cut);
    }
    /* files that are no queue: CORRUPT, left alone */
    {
        static const char* texts[] = { "hello", "this is not a queue, just some text that is long enough\n" };
        for (int i = 0; i < 2; i++) {
            size_t len = strlen(texts[i]);
            jfile_write(d.path, (const unsigned char*)texts[i], len);
            CHECK_EQ(qp4_try_open(d.path), BATCH_ERR_CORRUPT);
            size_t n2 = 0;
            unsigned char* after = jfile_read(d.path, &n2);
            CHECK(n2 == len && memcmp(after, texts[i], len) == 0);
            free(after);
        }
        unsigned char junk[4096];
        uint64_t rng = test_seed ^ 0x4444;
        for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)test_rand(&rng);
        jfile_write(d.path, junk, sizeof junk);
        CHECK_EQ(qp4_try_open(d.path), BATCH_ERR_CORRUPT);
    }
    /* a map's and a graph's journal: MISMATCH, left alone; and a queue is no map journal */
    {
        char jpath[MAX_TEST_PATH + 64];
        qp_dir_file(&d, jpath, sizeof jpath, "map.jnl");
        batch_pool* pool = NULL;
        batch_pool_desc pd;
        memset(&pd, 0, sizeof pd);
        pd.workers = BATCH_WORKERS_INLINE;
        CHECK_OK(batch_pool_create(&pool, &pd));
        batch_map_desc md;
        memset(&md, 0, sizeof md);
        md.count = 10;
        md.item_fn = qp4_item;
        md.batch_size = 5;
        md.journal.path = jpath;
        CHECK_OK(batch_map_run(pool, &md, NULL, NULL));
        size_t jn = 0;
        unsigned char* jb = jfile_read(jpath, &jn);
        CHECK(jb != NULL && jn > 32);
        CHECK_EQ(qp4_try_open(jpath), BATCH_ERR_MISMATCH);
        size_t n2 = 0;
        unsigned char* after = jfile_read(jpath, &n2);
        CHECK(n2 == jn && memcmp(after, jb, jn) == 0);
        free(after);
        free(jb);
        unlink(jpath);
        batch_graph* g = NULL;
        batch_graph_desc gd;
        memset(&gd, 0, sizeof gd);
        CHECK_OK(batch_graph_create(&g, &gd));
        batch_task_desc td;
        memset(&td, 0, sizeof td);
        td.fn = qp4_task;
        batch_task task;
        CHECK_OK(batch_graph_add(g, &td, &task));
        batch_run_desc rd;
        memset(&rd, 0, sizeof rd);
        rd.journal.path = jpath;
        CHECK_OK(batch_graph_run(pool, g, &rd, NULL));
        CHECK_EQ(qp4_try_open(jpath), BATCH_ERR_MISMATCH);
        CHECK_OK(batch_graph_destroy(g));
        unlink(jpath);
        /* the queue's file given to a map as its journal */
        jfile_write(d.path, full, n);
        md.journal.path = d.path;
        batch_result mr = batch_map_run(pool, &md, NULL, NULL);
        CHECK(mr == BATCH_ERR_MISMATCH || mr == BATCH_ERR_CORRUPT);
        size_t n3 = 0;
        unsigned char* after3 = jfile_read(d.path, &n3);
        CHECK(n3 == n && memcmp(after3, full, n) == 0);
        free(after3);
        CHECK_OK(batch_pool_destroy(pool));
    }
    /* torn tails behind a live handle: a record cut short, zeros, a record with a bad CRC */
    {
        unsigned char junk[64];
        memset(junk, 0, sizeof junk);
        junk[0] = 100;   /* length 100, 30 bytes there */
        junk[4] = 0x12;
        memset(junk + 8, 0x77, 30);
        qp4_live_torn(d.path, junk, 38);
        memset(junk, 0, sizeof junk);
        qp4_live_torn(d.path, junk, 40);
        junk[0] = 20;
        junk[4] = 0x55;
        memset(junk + 8, 0x66, 20);
        qp4_live_torn(d.path, junk, 28);
        qp4_live_torn(d.path, junk, 5);   /* a record header cut short */
    }
    qp4_compacted(&d, s);
    /* records that no torn append leaves, in the middle of the file, as for a
       journal ("a record length of 0 followed by any non-zero byte, an oversized record ... is
       BATCH_ERR_CORRUPT"): refused, the file left alone - not cut there with all that follows */
    int cut_instead = 0;
    for (int kind = 0; kind < 2; kind++) {
        unsigned char* bad = (unsigned char*)malloc(n);
        memcpy(bad, full, n);
        size_t at = (size_t)ends[2];   /* the 4th record: 16 records and most of the history follow */
        if (kind == 0) bad[at + 3] |= 0x80;      /* a length over 2 GiB: over any record's */
        else memset(bad + at, 0, 8);             /* length 0 (and CRC 0), non-zero bytes follow */
        jfile_write(d.path, bad, n);
        batch_result res = qp4_try_open(d.path);
        size_t n2 = 0;
        unsigned char* after = jfile_read(d.path, &n2);
        if (res != BATCH_ERR_CORRUPT) {
            printf("  %s in record 4 of %zu: %s, the file cut from %zu to %zu bytes\n",
                   kind ? "a zero frame" : "an oversized length", nrec, batch_result_string(res), n, n2);
            cut_instead++;
        } else {
            CHECK(n2 == n && memcmp(after, bad, n) == 0);
        }
        free(after);
        free(bad);
    }
    fflush(stdout);
    free(full);
    qp4_snaps_free(s);
    qp_dir_remove(&d);
    CHECK_EQ(cut_instead, 0);
}

/* ---- 5. cancel from another process ---------------------------------------------------------- */
#define QP5_LEASE (150 * QP_MS * qp_k())
typedef struct qp5_shared {
    _Atomic int ran[4];            /* by payload */
    _Atomic int started, saw_stop, returned;
    _Atomic unsigned long long started_ns, stopped_ns;   /* wall clock */
    _Atomic long long completed, failed, cancelled;
    _Atomic int renew_code, renew2_code, end_code, end2_code;
} qp5_shared;
typedef struct qp5_ctx { const char* path; qp5_shared* sh; int end_kind; } qp5_ctx;

static int qp5_work(batch_ctx* ctx, const batch_queue_job* job, void* user) {
    qp5_ctx* c = (qp5_ctx*)user;
    uint64_t v = qp_payload_u64(job);
    CHECK(v < 4);
    atomic_fetch_add(&c->sh->ran[v], 1);
    if (v != 2) return 0;
    /* the long one: runs until told to stop (at most 40 leases) */
    atomic_store(&c->sh->started_ns, (unsigned long long)qp_wall_ns());
    atomic_store(&c->sh->started, 1);
    uint64_t end = batch_now_ns() + 40 * QP5_LEASE;
    while (!batch_ctx_should_stop(ctx) && batch_now_ns() < end) test_sleep_ns(1 * QP_MS);
    atomic_store(&c->sh->stopped_ns, (unsigned long long)qp_wall_ns());
    atomic_store(&c->sh->saw_stop, batch_ctx_should_stop(ctx) ? 1 : 0);
    return 0;   /* "finished": a cancelled job's outcome must not be written anyway */
}
static void qp5_cancel_first(void* arg) {
    qp5_ctx* c = (qp5_ctx*)arg;
    batch_queue* q = qp_open(c->path, QP5_LEASE);
    CHECK_OK(batch_queue_cancel(q, 1));
    CHECK_EQ(batch_queue_cancel(q, 1), BATCH_ERR_INVALID);    /* already CANCELLED */
    CHECK_EQ(batch_queue_cancel(q, 99), BATCH_ERR_NOT_FOUND);
    CHECK_OK(batch_queue_close(q));
}
static void qp5_server(void* arg) {
    qp5_ctx* c = (qp5_ctx*)arg;
    batch_queue* q = qp_open(c->path, QP5_LEASE);
    batch_queue_serve_desc sd = qp_serve_desc(qp5_work, c, 1, 1);
    batch_job_summary s;
    qp_serve(q, &sd, NULL, 0, &s);
    atomic_store(&c->sh->completed, (long long)s.completed);
    atomic_store(&c->sh->failed, (long long)s.failed);
    atomic_store(&c->sh->cancelled, (long long)s.cancelled);
    CHECK_OK(batch_queue_close(q));
}
/* Holds a claim by hand, renewing it, until a renew says why not; then ends it (end_kind 0
   complete, 1 fail, 2 release: the end says CANCELLED too) and tries once more (the handle no
   longer holds it: INVALID). */
static batch_result qp5_end(batch_queue* q, uint64_t id, int kind) {
    return kind == 0 ? batch_queue_complete(q, id) : kind == 1 ? batch_queue_fail(q, id, 3, 0, "x") : batch_queue_release(q, id);
}
static void qp5_holder(void* arg) {
    qp5_ctx* c = (qp5_ctx*)arg;
    batch_queue* q = qp_open(c->path, QP5_LEASE);
    batch_queue_job j;
    CHECK_OK(batch_queue_claim(q, &j));
    uint64_t id = j.info.id;
    batch_queue_job_free(q, &j);
    atomic_store(&c->sh->started, 1);
    batch_result r;
    uint64_t end = batch_now_ns() + 40 * QP5_LEASE;
    while ((r = batch_queue_renew(q, id)) == BATCH_OK && batch_now_ns() < end) test_sleep_ns(QP5_LEASE / 8);
    atomic_store(&c->sh->renew_code, (int)r);
    atomic_store(&c->sh->renew2_code, (int)batch_queue_renew(q, id));   /* a renew does not give it up */
    atomic_store(&c->sh->end_code, (int)qp5_end(q, id, c->end_kind));
    atomic_store(&c->sh->end2_code, (int)qp5_end(q, id, (c->end_kind + 1) % 3));
    CHECK_OK(batch_queue_close(q));
}

static void test_queue_proc_cancel(void) {
    qp_dir d;
    qp_dir_make(&d);
    qp5_shared* sh = (qp5_shared*)shared_alloc(sizeof *sh);
    qp5_ctx c = { d.path, sh, 0 };
    pid_t pid;
    /* a QUEUED job cancelled by another process never runs */
    batch_queue* q = qp_open(d.path, QP5_LEASE);
    CHECK_EQ(qp_push_u64(q, 0, 0), 1);
    CHECK_EQ(qp_push_u64(q, 1, 0), 2);
    qp_reap(qp_fork(qp5_cancel_first, &c), "canceller");
    batch_queue_info i1 = qp_info(q, 1);
    CHECK_EQ(i1.status, BATCH_QUEUE_CANCELLED);
    CHECK(i1.finished_ns != 0);
    qp_reap(qp_fork(qp5_server, &c), "server");
    CHECK_EQ(atomic_load(&sh->ran[0]), 0);
    CHECK_EQ(atomic_load(&sh->ran[1]), 1);
    CHECK_EQ(atomic_load(&sh->completed), 1);
    i1 = qp_info(q, 1);
    CHECK_EQ(i1.status, BATCH_QUEUE_CANCELLED);
    CHECK_EQ(i1.attempts, 0);
    CHECK_EQ(qp_info(q, 2).status, BATCH_QUEUE_DONE);

    /* a RUNNING job under batch_queue_serve in another process: its function sees
       batch_ctx_should_stop within a few leases, and its return 0 is not written (without
       threads there is no serve, and nothing to tell the function) */
#if !defined(BATCH_NO_THREADS)
    memset((void*)sh, 0, sizeof *sh);
    CHECK_EQ(qp_push_u64(q, 2, 0), 3);
    pid = qp_fork(qp5_server, &c);
    while (!atomic_load(&sh->started)) test_sleep_ns(1 * QP_MS);
    test_sleep_ns(QP5_LEASE / 2);
    CHECK_EQ(qp_info(q, 3).status, BATCH_QUEUE_RUNNING);
    uint64_t cancelled_at = qp_wall_ns();
    CHECK_OK(batch_queue_cancel(q, 3));
    qp_reap(pid, "server of the cancelled job");
    uint64_t stopped = atomic_load(&sh->stopped_ns);
    printf("  the running job saw the cancel after %.1f ms (lease %.0f ms)\n", (double)(stopped - cancelled_at) / 1e6,
           (double)QP5_LEASE / 1e6);
    CHECK_EQ(atomic_load(&sh->saw_stop), 1);
    CHECK(stopped < cancelled_at + 3 * QP5_LEASE);
    CHECK_EQ(atomic_load(&sh->cancelled), 1);
    CHECK_EQ(atomic_load(&sh->completed), 0);
    CHECK_EQ(atomic_load(&sh->ran[2]), 1);
    batch_queue_info i3 = qp_info(q, 3);
    CHECK_EQ(i3.status, BATCH_QUEUE_CANCELLED);   /* not DONE */
    CHECK_EQ(i3.attempts, 1);
    CHECK(i3.finished_ns >= cancelled_at - 5 * QP_MS && i3.finished_ns <= stopped + 5 * QP_MS);
    CHECK_EQ(i3.lease_until_ns, 0);
    CHECK_EQ(batch_queue_cancel(q, 3), BATCH_ERR_INVALID);
#else
    CHECK_EQ(qp_push_u64(q, 9, 0), 3);
    CHECK_OK(batch_queue_cancel(q, 3));
#endif

    /* a claim held by hand in another process: the renew after the cancel says CANCELLED (and
       again), so does the end that follows (complete, fail or release), which gives the job up
       (another end: INVALID); nothing is written after the cancel */
    for (int kind = 0; kind < 3; kind++) {
        memset((void*)sh, 0, sizeof *sh);
        c.end_kind = kind;
        uint64_t id = qp_push_u64(q, 3, 0);
        CHECK_EQ(id, (uint64_t)4 + (uint64_t)kind);
        pid = qp_fork(qp5_holder, &c);
        while (!atomic_load(&sh->started)) test_sleep_ns(1 * QP_MS);
        CHECK_EQ(qp_info(q, id).status, BATCH_QUEUE_RUNNING);
        CHECK_OK(batch_queue_cancel(q, id));
        uint64_t size = qp_stats(q).file_bytes;
        qp_reap(pid, "holder");
        CHECK_EQ(atomic_load(&sh->renew_code), BATCH_ERR_CANCELLED);
        CHECK_EQ(atomic_load(&sh->renew2_code), BATCH_ERR_CANCELLED);
        CHECK_EQ(atomic_load(&sh->end_code), BATCH_ERR_CANCELLED);
        CHECK_EQ(atomic_load(&sh->end2_code), BATCH_ERR_INVALID);
        CHECK_EQ(qp_stats(q).file_bytes, size);   /* the holder wrote nothing after the cancel */
        batch_queue_info ii = qp_info(q, id);
        CHECK_EQ(ii.status, BATCH_QUEUE_CANCELLED);
        CHECK_EQ(ii.attempts, 1);
    }
    batch_queue_stats st = qp_stats(q);
    CHECK_EQ(st.count[BATCH_QUEUE_CANCELLED], 5);
    CHECK_EQ(st.count[BATCH_QUEUE_DONE], 1);
    CHECK_EQ(st.total, 6);
    /* nothing is left to claim */
    batch_queue_job j;
    CHECK_EQ(batch_queue_claim(q, &j), BATCH_ERR_EMPTY);
    CHECK_OK(batch_queue_close(q));
    shared_free(sh, sizeof *sh);
    qp_dir_remove(&d);
}

/* ---- 6. paging a big queue, from two processes ----------------------------------------------- */
typedef struct qp6_ctx { const char* path; const unsigned char* want; uint64_t n; uint64_t count[BATCH_QUEUE_STATUS_COUNT_]; } qp6_ctx;

static uint64_t qp6_hash(uint64_t x) { uint64_t s = x * 0x9E3779B97F4A7C15ull; return test_rand(&s); }

/* Pages through every status and -1 with two page sizes: every id once, in order, with the
   status the test gave it; the counts of batch_queue_stats_get. */
static void qp6_check_lists(batch_queue* q, const qp6_ctx* c) {
    batch_queue_stats s = qp_stats(q);
    CHECK_EQ(s.total, c->n);
    CHECK_EQ(s.next_id, c->n + 1);
    for (int k = 0; k < BATCH_QUEUE_STATUS_COUNT_; k++) CHECK_EQ(s.count[k], c->count[k]);
    static const size_t limits[2] = { 1000, 37 };
    batch_queue_info* page = (batch_queue_info*)malloc(1000 * sizeof *page);
    CHECK(page != NULL);
    for (int li = 0; li < 2; li++) {
        for (int status = -1; status < BATCH_QUEUE_STATUS_COUNT_; status++) {
            uint64_t seen = 0, last = 0;
            for (;;) {
                size_t k = (size_t)-1;
                CHECK_OK(batch_queue_list(q, status, seen, page, limits[li], &k));
                CHECK(k <= limits[li]);
                for (size_t i = 0; i < k; i++) {
                    CHECK(page[i].id > last && page[i].id <= c->n);   /* increasing: each once */
                    last = page[i].id;
                    CHECK_EQ(page[i].status, c->want[page[i].id]);
                    if (status >= 0) CHECK_EQ(page[i].status, status);
                    else CHECK_EQ(page[i].id, seen + i + 1);
                    CHECK_EQ(page[i].size, 8);
                }
                seen += k;
                if (k < limits[li]) break;
            }
            CHECK_EQ(seen, status < 0 ? c->n : c->count[status]);
        }
    }
    free(page);
    /* past the end, and a page of one at an odd offset */
    batch_queue_info one;
    size_t k = 7;
    CHECK_OK(batch_queue_list(q, -1, c->n, &one, 1, &k));
    CHECK_EQ(k, 0);
    CHECK_OK(batch_queue_list(q, -1, c->n / 3, &one, 1, &k));
    CHECK_EQ(k, 1);
    CHECK_EQ(one.id, c->n / 3 + 1);
}
static void qp6_child(void* arg) {
    const qp6_ctx* c = (const qp6_ctx*)arg;
    batch_queue* q = qp_open(c->path, QP4_HOUR);
    qp6_check_lists(q, c);
    CHECK_OK(batch_queue_close(q));
}

static void test_queue_proc_list_pages(void) {
    qp_dir d;
    qp_dir_make(&d);
    uint64_t n = (uint64_t)scaled(100000);
    unsigned char* want = (unsigned char*)calloc(n + 1, 1);
    CHECK(want != NULL);
    qp6_ctx c;
    memset(&c, 0, sizeof c);
    c.path = d.path;
    c.want = want;
    c.n = n;
    batch_queue* q = qp_open(d.path, QP4_HOUR);
    uint64_t t0 = batch_now_ns();
    enum { CHUNK = 1000 };
    batch_queue_push_desc* js = (batch_queue_push_desc*)malloc(CHUNK * sizeof *js);
    uint64_t* vals = (uint64_t*)malloc(CHUNK * sizeof *vals);
    CHECK(js && vals);
    for (uint64_t first = 1; first <= n; first += CHUNK) {
        size_t m = n - first + 1 < CHUNK ? (size_t)(n - first + 1) : CHUNK;
        for (size_t i = 0; i < m; i++) {
            vals[i] = first + i;
            js[i] = qp_job(&vals[i], sizeof vals[i], (int)(qp6_hash(first + i) % 3), 0);
        }
        uint64_t id = 0;
        CHECK_OK(batch_queue_push_many(q, js, m, &id));
        CHECK_EQ(id, first);
    }
    free(js);
    free(vals);
    uint64_t t1 = batch_now_ns();
    /* claims (highest priority, then lowest id) ended in every way, then cancels of QUEUED ones */
    uint64_t claims = n * 45 / 100;   /* all of priority 2, some of priority 1 */
    int last_prio = 1 << 30;
    uint64_t last_id = 0;
    for (uint64_t i = 0; i < claims; i++) {
        batch_queue_job j;
        CHECK_OK(batch_queue_claim(q, &j));
        uint64_t id = j.info.id;
        CHECK_EQ(qp_payload_u64(&j), id);
        CHECK_EQ(j.info.priority, (int)(qp6_hash(id) % 3));
        CHECK(j.info.priority < last_prio || (j.info.priority == last_prio && id > last_id));   /* claim order */
        last_prio = j.info.priority;
        last_id = id;
        CHECK_EQ(want[id], BATCH_QUEUE_QUEUED);
        batch_queue_job_free(q, &j);
        switch (qp6_hash(id ^ 0xabc) % 4) {
        case 0: CHECK_OK(batch_queue_complete(q, id)); want[id] = BATCH_QUEUE_DONE; break;
        case 1: CHECK_OK(batch_queue_fail(q, id, 5, 1, "permanent")); want[id] = BATCH_QUEUE_FAILED; break;
        case 2: CHECK_OK(batch_queue_cancel(q, id)); want[id] = BATCH_QUEUE_CANCELLED; break;
        default: want[id] = BATCH_QUEUE_RUNNING; break;
        }
    }
    for (uint64_t id = 1; id <= n; id++)
        if (want[id] == BATCH_QUEUE_QUEUED && qp6_hash(id ^ 0xdef) % 10 == 0) {
            CHECK_OK(batch_queue_cancel(q, id));
            want[id] = BATCH_QUEUE_CANCELLED;
        }
    uint64_t t2 = batch_now_ns();
    for (uint64_t id = 1; id <= n; id++) c.count[want[id]]++;
    for (int k = 0; k < BATCH_QUEUE_STATUS_COUNT_; k++) CHECK(c.count[k] > 0);
    /* this handle, a child's handle at the same time, and a fresh handle here */
    pid_t pid = qp_fork(qp6_child, &c);
    qp6_check_lists(q, &c);
    qp_reap(pid, "lister");
    uint64_t t3 = batch_now_ns();
    CHECK_OK(batch_queue_close(q));
    q = qp_open(d.path, QP4_HOUR);
    uint64_t t4 = batch_now_ns();
    qp6_check_lists(q, &c);
    CHECK_OK(batch_queue_close(q));
    printf("  %llu jobs: push_many %.0f ms, %llu claims and cancels %.0f ms, lists (twice at once) %.0f ms, "
           "open %.0f ms\n", (unsigned long long)n, (double)(t1 - t0) / 1e6, (unsigned long long)claims,
           (double)(t2 - t1) / 1e6, (double)(t3 - t2) / 1e6, (double)(t4 - t3) / 1e6);
    free(want);
    qp_dir_remove(&d);
}

/* ---- 7. compaction while others push, claim and complete -------------------------------------- */
enum { QP7_PUSHERS = 2, QP7_WORKERS = 2 };
typedef struct qp7_shared {
    _Atomic int pushers_done, workers_done;
    _Atomic long long compactions, completed;
    _Atomic int compacting;
} qp7_shared;
typedef struct qp7_ctx {
    const char* path;
    int who;
    uint64_t per;
    qp7_shared* sh;
    uint64_t* ids;          /* [QP7_PUSHERS * per]: the id of pusher p's job k at p * per + k */
    _Atomic int* ran;       /* [QP7_PUSHERS * per + 1] by id */
    _Atomic int* done;      /* complete returned OK, by id */
} qp7_ctx;

static void qp7_pusher(void* arg) {
    qp7_ctx* c = (qp7_ctx*)arg;
    batch_queue* q = qp_open(c->path, 2000 * QP_MS);
    uint64_t rng = test_seed ^ 0x7777 ^ ((uint64_t)c->who << 32);
    uint64_t k = 0, last = 0;
    while (k < c->per) {
        uint64_t r = test_rand(&rng);
        uint64_t n = r % 2 ? 1 : 1 + (r >> 8) % 8, vals[8];
        if (n > c->per - k) n = c->per - k;
        batch_queue_push_desc js[8];
        for (uint64_t i = 0; i < n; i++) {
            vals[i] = (uint64_t)c->who * c->per + k + i;
            js[i] = qp_job(&vals[i], sizeof vals[i], 0, 0);
        }
        uint64_t first = 0;
        CHECK_OK(batch_queue_push_many(q, js, (size_t)n, &first));
        CHECK(first > last);
        last = first + n - 1;
        for (uint64_t i = 0; i < n; i++) c->ids[vals[i]] = first + i;
        k += n;
        test_sleep_ns(100000 + (r >> 32) % 300000);
    }
    CHECK_OK(batch_queue_close(q));
    atomic_fetch_add(&c->sh->pushers_done, 1);
}
static int qp7_work(batch_ctx* ctx, const batch_queue_job* job, void* user) {
    (void)ctx;
    qp7_ctx* c = (qp7_ctx*)user;
    uint64_t v = qp_payload_u64(job);
    CHECK(v < QP7_PUSHERS * c->per);
    CHECK(job->info.id >= 1 && job->info.id <= QP7_PUSHERS * c->per);
    atomic_fetch_add(&c->ran[job->info.id], 1);
    return 0;
}
static void qp7_worker(void* arg) {
    qp7_ctx* c = (qp7_ctx*)arg;
    /* the one by hand is BUFFERED: its completes wait in the handle across compactions */
    batch_queue* q = qp_open_dur(c->path, 2000 * QP_MS, c->who ? BATCH_DURABLE_BUFFERED : BATCH_DURABLE_PROCESS);
    long long completed = 0;
    if (c->who == 0) {   /* batch_queue_serve, renewing across compactions */
        batch_queue_serve_desc sd = qp_serve_desc(qp7_work, c, 2, 0);
        batch_job_summary s1, s2;
        qp_serve(q, &sd, &c->sh->pushers_done, QP7_PUSHERS, &s1);
        sd.drain = 1;
        CHECK_OK(qp_serve(q, &sd, NULL, 0, &s2));
        CHECK_EQ(s1.failed + s2.failed, 0);
        completed = (long long)(s1.completed + s2.completed);
    } else {
        for (;;) {
            int pushed = atomic_load(&c->sh->pushers_done) == QP7_PUSHERS;
            batch_queue_job j;
            batch_result r = batch_queue_claim(q, &j);
            if (r == BATCH_ERR_EMPTY) {
                if (pushed) break;
                test_sleep_ns(200000);
                continue;
            }
            CHECK_OK(r);
            CHECK_EQ(qp7_work(NULL, &j, c), 0);
            r = batch_queue_complete(q, j.info.id);
            if (r != BATCH_OK) fprintf(stderr, "  complete of job %llu: %s\n", (unsigned long long)j.info.id, batch_result_string(r));
            CHECK_OK(r);
            atomic_fetch_add(&c->done[j.info.id], 1);
            batch_queue_job_free(q, &j);
            completed++;
        }
    }
    atomic_fetch_add(&c->sh->completed, completed);
    CHECK_OK(batch_queue_close(q));
    atomic_fetch_add(&c->sh->workers_done, 1);
}
static void qp7_compactor(void* arg) {
    qp7_ctx* c = (qp7_ctx*)arg;
    batch_queue* q = qp_open(c->path, 2000 * QP_MS);
    uint64_t last_next = 1, i = 0;
    while (atomic_load(&c->sh->workers_done) < QP7_WORKERS) {
        if (c->who) atomic_store(&c->sh->compacting, 1);   /* the parent may kill it from now on */
        int drop = i++ % 3 != 0;
        batch_result r = batch_queue_compact(q, drop);
        if (r != BATCH_OK) fprintf(stderr, "  compact(%d) number %llu: %s\n", drop, (unsigned long long)i, batch_result_string(r));
        CHECK_OK(r);
        atomic_fetch_add(&c->sh->compactions, 1);
        batch_queue_stats s = qp_stats(q);
        CHECK(s.next_id >= last_next);   /* ids never go back */
        CHECK(s.total < s.next_id);
        last_next = s.next_id;
        /* right after a compaction that dropped: what is left is unfinished, or finished since */
        test_sleep_ns(2 * QP_MS);
    }
    CHECK_OK(batch_queue_close(q));
}

static void test_queue_proc_compact_concurrent(void) {
    qp_dir d;
    qp_dir_make(&d);
    uint64_t per = (uint64_t)scaled(1000), n = QP7_PUSHERS * per;
    qp7_shared* sh = (qp7_shared*)shared_alloc(sizeof *sh);
    uint64_t* ids = (uint64_t*)shared_alloc(n * sizeof *ids);
    _Atomic int* ran = (_Atomic int*)shared_alloc((n + 1) * sizeof *ran);
    _Atomic int* done = (_Atomic int*)shared_alloc((n + 1) * sizeof *done);
    qp7_ctx c = { d.path, 0, per, sh, ids, ran, done };
    batch_queue* q = qp_open(d.path, 2000 * QP_MS);
    CHECK_OK(batch_queue_close(q));
    pid_t pids[QP7_PUSHERS + QP7_WORKERS + 1];
    int np = 0;
    for (int i = 0; i < QP7_WORKERS; i++) { c.who = i; pids[np++] = qp_fork(qp7_worker, &c); }
    c.who = 0;
    pids[np++] = qp_fork(qp7_compactor, &c);   /* compacts until the workers are done */
    for (int i = 0; i < QP7_PUSHERS; i++) { c.who = i; pids[np++] = qp_fork(qp7_pusher, &c); }
    /* and another compactor, killed at a random instant, again and again */
    uint64_t rng = test_seed ^ 0x7070;
    int kills = 0;
    while (atomic_load(&sh->workers_done) < QP7_WORKERS) {
        atomic_store(&sh->compacting, 0);
        c.who = 1;
        pid_t k = qp_fork(qp7_compactor, &c);
        while (!atomic_load(&sh->compacting) && atomic_load(&sh->workers_done) < QP7_WORKERS) test_sleep_ns(100000);
        test_sleep_ns((test_rand(&rng) % 4000) * 1000u);
        kills += qp_kill_reap(k, "compactor killed") == 0;
    }
    for (int i = 0; i < np; i++) qp_reap(pids[i], i < QP7_WORKERS ? "worker" : i == QP7_WORKERS ? "compactor" : "pusher");
    printf("  %llu jobs, %lld compactions meanwhile, a compactor killed %d times\n", (unsigned long long)n,
           atomic_load(&sh->compactions), kills);
    CHECK(atomic_load(&sh->compactions) >= 2);
    CHECK_EQ(atomic_load(&sh->completed), (long long)n);
    /* ids: distinct, 1..n (none reused) */
    unsigned char* seen = (unsigned char*)calloc(n + 1, 1);
    for (uint64_t i = 0; i < n; i++) {
        CHECK(ids[i] >= 1 && ids[i] <= n);
        CHECK_EQ(seen[ids[i]], 0);
        seen[ids[i]] = 1;
    }
    free(seen);
    for (uint64_t id = 1; id <= n; id++) {
        if (atomic_load(&ran[id]) != 1) fprintf(stderr, "  job %llu ran %d times\n", (unsigned long long)id, atomic_load(&ran[id]));
        CHECK_EQ(atomic_load(&ran[id]), 1);
    }
    q = qp_open(d.path, 2000 * QP_MS);
    batch_queue_stats s = qp_stats(q);
    CHECK_EQ(s.next_id, n + 1);
    CHECK_EQ(s.count[BATCH_QUEUE_QUEUED] + s.count[BATCH_QUEUE_RUNNING] + s.count[BATCH_QUEUE_FAILED] +
             s.count[BATCH_QUEUE_CANCELLED], 0);
    CHECK_EQ(s.total, s.count[BATCH_QUEUE_DONE]);
    size_t k = 0;
    batch_queue_info* left = qp_list_all(q, -1, 1000, &k);
    CHECK_EQ(k, s.total);
    for (size_t i = 0; i < k; i++) {
        CHECK_EQ(left[i].status, BATCH_QUEUE_DONE);
        CHECK_EQ(left[i].attempts, 1);
    }
    free(left);
    /* a last compaction drops them all; the ids go on */
    uint64_t before = s.file_bytes;
    CHECK_OK(batch_queue_compact(q, 1));
    s = qp_stats(q);
    CHECK_EQ(s.total, 0);
    CHECK_EQ(s.next_id, n + 1);
    CHECK(s.file_bytes <= before);
    CHECK_EQ(s.file_bytes, qp_file_size(d.path));
    batch_queue_info one;
    CHECK_OK(batch_queue_list(q, -1, 0, &one, 1, &k));
    CHECK_EQ(k, 0);
    batch_queue_job j;
    CHECK_EQ(batch_queue_get(q, 1, &j), BATCH_ERR_NOT_FOUND);
    CHECK_EQ(batch_queue_cancel(q, n), BATCH_ERR_NOT_FOUND);
    CHECK_OK(batch_queue_close(q));
    {   /* the last compaction replaced what killed ones left: the queue alone */
        DIR* dd = opendir(d.dir);
        CHECK(dd != NULL);
        struct dirent* e;
        int files = 0;
        while ((e = readdir(dd)) != NULL)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                files++;
                if (strcmp(e->d_name, "jobs.queue")) printf("  left in the directory: %s\n", e->d_name);
            }
        closedir(dd);
        CHECK_EQ(files, 1);
    }
    q = qp_open(d.path, 2000 * QP_MS);   /* a fresh handle reads the compacted file */
    CHECK_EQ(qp_stats(q).next_id, n + 1);
    CHECK_EQ(qp_push_u64(q, 42, 0), n + 1);
    CHECK_OK(batch_queue_close(q));
    shared_free(done, (n + 1) * sizeof *done);
    shared_free(ran, (n + 1) * sizeof *ran);
    shared_free(ids, n * sizeof *ids);
    shared_free(sh, sizeof *sh);
    qp_dir_remove(&d);
}

/* ---- 8. a lease renewed while its job runs long ---------------------------------------------- */
#if !defined(BATCH_NO_THREADS)   /* renewals need batch_queue_serve, which needs threads */
#define QP8_LEASE (150 * QP_MS * qp_k())
enum { QP8_LONG = 3 };   /* long jobs A serves (two workers: the third waits for one, claimed and renewed) */
typedef struct qp8_shared {
    _Atomic int started, finished, stolen, ran, saw_stop, drain_a_finished, long_returned;
    _Atomic long long drain_ns, drain_end_wall;
    _Atomic long long a_completed, b_completed;
} qp8_shared;
typedef struct qp8_ctx { const char* path; qp8_shared* sh; } qp8_ctx;

static int qp8_long(batch_ctx* ctx, const batch_queue_job* job, void* user) {
    qp8_ctx* c = (qp8_ctx*)user;
    CHECK_EQ(qp_payload_u64(job), 8);
    atomic_fetch_add(&c->sh->ran, 1);
    atomic_store(&c->sh->started, 1);
    uint64_t end = batch_now_ns() + 5 * QP8_LEASE;
    while (batch_now_ns() < end && !batch_ctx_should_stop(ctx)) test_sleep_ns(2 * QP_MS);
    CHECK(!batch_ctx_should_stop(ctx));
    atomic_store(&c->sh->long_returned, 1);
    return 0;
}
/* The job of a server that will be stopped (SIGSTOP) past its lease: runs until told to stop. */
static int qp8_stalled(batch_ctx* ctx, const batch_queue_job* job, void* user) {
    qp8_ctx* c = (qp8_ctx*)user;
    CHECK_EQ(qp_payload_u64(job), 9);
    atomic_fetch_add(&c->sh->ran, 1);
    atomic_store(&c->sh->started, 1);
    uint64_t end = batch_now_ns() + 30 * QP8_LEASE;
    while (batch_now_ns() < end && !batch_ctx_should_stop(ctx)) test_sleep_ns(2 * QP_MS);
    atomic_store(&c->sh->saw_stop, batch_ctx_should_stop(ctx) ? 1 : 0);
    return 0;   /* finished, says the function: the job is another's now, this is not written */
}
static void qp8_server_stalled(void* arg) {
    qp8_ctx* c = (qp8_ctx*)arg;
    batch_queue* q = qp_open(c->path, QP8_LEASE);
    batch_queue_serve_desc sd = qp_serve_desc(qp8_stalled, c, 1, 1);
    batch_job_summary s;
    qp_serve(q, &sd, NULL, 0, &s);
    atomic_store(&c->sh->a_completed, (long long)s.completed);
    CHECK_OK(batch_queue_close(q));
}
static void qp8_probe(void* arg) {   /* one operation: the file's lock is free */
    qp8_ctx* c = (qp8_ctx*)arg;
    batch_queue* q = qp_open(c->path, QP8_LEASE);
    (void)qp_stats(q);
    CHECK_OK(batch_queue_close(q));
}
/* Stops pid where it does not hold the queue's lock (a probe gets through): 1, or 0 after 20 tries. */
static int qp8_stop_unlocked(pid_t pid, qp8_ctx* c) {
    for (int tries = 0; tries < 20; tries++) {
        kill(pid, SIGSTOP);
        pid_t probe = qp_fork(qp8_probe, c);
        uint64_t until = batch_now_ns() + 500 * QP_MS;
        int st = 0;
        pid_t r;
        while ((r = waitpid(probe, &st, WNOHANG)) == 0 && batch_now_ns() < until) test_sleep_ns(1 * QP_MS);
        if (r == probe) {
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
            return 1;
        }
        kill(pid, SIGCONT);   /* stopped with the lock held: everyone waits for it (try again) */
        qp_reap(probe, "probe");
        test_sleep_ns(7 * QP_MS);
    }
    return 0;
}
static int qp8_thief(batch_ctx* ctx, const batch_queue_job* job, void* user) {
    (void)ctx;
    qp8_ctx* c = (qp8_ctx*)user;
    fprintf(stderr, "  the second server took job %llu (attempts %d)\n", (unsigned long long)job->info.id, job->info.attempts);
    atomic_fetch_add(&c->sh->stolen, 1);
    atomic_fetch_add(&c->sh->ran, 1);
    return 0;
}
static void qp8_server_a(void* arg) {
    qp8_ctx* c = (qp8_ctx*)arg;
    batch_queue* q = qp_open(c->path, QP8_LEASE);
    batch_queue_serve_desc sd = qp_serve_desc(qp8_long, c, QP8_LONG, 1);
    batch_job_summary s;
    CHECK_OK(qp_serve(q, &sd, NULL, 0, &s));
    atomic_store(&c->sh->a_completed, (long long)s.completed);
    CHECK_OK(batch_queue_close(q));
    atomic_store(&c->sh->finished, 1);
}
/* A draining server started while A's job runs: it claims nothing, and stops once that job is
   DONE (api.h: with drain, "until no job of the queue is QUEUED (delays included) or RUNNING"). */
static void qp8_server_drain(void* arg) {
    qp8_ctx* c = (qp8_ctx*)arg;
    batch_queue* q = qp_open(c->path, QP8_LEASE);
    batch_queue_serve_desc sd = qp_serve_desc(qp8_thief, c, 1, 1);
    batch_job_summary s;
    uint64_t t0 = batch_now_ns();
    CHECK_OK(qp_serve(q, &sd, NULL, 0, &s));
    atomic_store(&c->sh->drain_ns, (long long)(batch_now_ns() - t0));
    atomic_store(&c->sh->drain_end_wall, (long long)qp_wall_ns());
    atomic_store(&c->sh->drain_a_finished, atomic_load(&c->sh->long_returned));
    CHECK_EQ(s.completed, 0);
    CHECK_OK(batch_queue_close(q));
}
static void qp8_server_b(void* arg) {
    qp8_ctx* c = (qp8_ctx*)arg;
    while (!atomic_load(&c->sh->started)) test_sleep_ns(1 * QP_MS);
    batch_queue* q = qp_open(c->path, QP8_LEASE);
    batch_queue_serve_desc sd = qp_serve_desc(qp8_thief, c, 2, 0);
    batch_job_summary s;
    qp_serve(q, &sd, &c->sh->finished, 1, &s);   /* looks for work until A is done */
    atomic_store(&c->sh->b_completed, (long long)s.completed);
    CHECK_OK(batch_queue_close(q));
}

static void test_queue_proc_lease_renew(void) {
    qp_dir d;
    qp_dir_make(&d);
    qp8_shared* sh = (qp8_shared*)shared_alloc(sizeof *sh);
    qp8_ctx c = { d.path, sh };
    batch_queue* q = qp_open(d.path, QP8_LEASE);
    for (uint64_t k = 1; k <= QP8_LONG; k++) CHECK_EQ(qp_push_u64(q, 8, 0), k);
    pid_t a = qp_fork(qp8_server_a, &c);
    pid_t b = qp_fork(qp8_server_b, &c);
    while (!atomic_load(&sh->started)) test_sleep_ns(1 * QP_MS);
    pid_t dr = qp_fork(qp8_server_drain, &c);
    /* meanwhile here: the leases never run out and keep moving; a claim finds nothing */
    uint64_t last_lease[QP8_LONG] = { 0 };
    int moves = 0, looks = 0;
    while (!atomic_load(&sh->finished)) {
        int running = 0;
        for (int k = 0; k < QP8_LONG; k++) {
            batch_queue_info i = qp_info(q, (uint64_t)k + 1);
            uint64_t now = qp_wall_ns();
            if (i.status != BATCH_QUEUE_RUNNING) continue;
            running++;
            if (i.lease_until_ns <= now) fprintf(stderr, "  job %d: the lease ran out %.1f ms ago\n", k + 1, (double)(now - i.lease_until_ns) / 1e6);
            CHECK(i.lease_until_ns > now);
            CHECK(i.lease_until_ns <= now + QP8_LEASE + 50 * QP_MS);
            CHECK_EQ(i.attempts, 1);
            if (i.lease_until_ns > last_lease[k]) { moves += k == 0 && last_lease[k] != 0; last_lease[k] = i.lease_until_ns; }
        }
        if (!running) break;
        looks++;
        batch_queue_job j;
        CHECK_EQ(batch_queue_claim(q, &j), BATCH_ERR_EMPTY);
        test_sleep_ns(10 * QP_MS);
    }
    qp_reap(a, "server A");
    qp_reap(b, "server B");
    qp_reap(dr, "draining server");
    printf("  a draining server with nothing to claim (A's jobs running) stopped after %.0f ms, %s A's jobs ended\n",
           (double)atomic_load(&sh->drain_ns) / 1e6, atomic_load(&sh->drain_a_finished) ? "after" : "before");
    CHECK_EQ(atomic_load(&sh->drain_a_finished), 1);   /* it waited for another's RUNNING job */
    printf("  %d looks at the running jobs, the first one's lease moved %d times\n", looks, moves);
    CHECK(moves >= 4);   /* it ran 5 leases */
    CHECK_EQ(atomic_load(&sh->stolen), 0);
    CHECK_EQ(atomic_load(&sh->ran), QP8_LONG);
    CHECK_EQ(atomic_load(&sh->a_completed), QP8_LONG);
    CHECK_EQ(atomic_load(&sh->b_completed), 0);
    batch_queue_info i;
    uint64_t last_done = 0;
    for (int k = 0; k < QP8_LONG; k++) {
        i = qp_info(q, (uint64_t)k + 1);
        CHECK_EQ(i.status, BATCH_QUEUE_DONE);
        CHECK_EQ(i.attempts, 1);
        CHECK_EQ(i.error, 0);
        if (i.finished_ns > last_done) last_done = i.finished_ns;
    }
    /* ... and stopped soon after they were DONE */
    CHECK((uint64_t)atomic_load(&sh->drain_end_wall) >= last_done);
    CHECK((uint64_t)atomic_load(&sh->drain_end_wall) < last_done + 2 * QP8_LEASE);

    /* a server stopped (SIGSTOP) past its lease: the job goes to another claim; continued, the
       server's renewal finds it lost, its function sees batch_ctx_should_stop and its return 0
       is not written (the job completes once, by the other) */
    memset((void*)sh, 0, sizeof *sh);
    const uint64_t sid = QP8_LONG + 1;
    CHECK_EQ(qp_push_u64(q, 9, 0), sid);
    pid_t st = qp_fork(qp8_server_stalled, &c);
    while (!atomic_load(&sh->started)) test_sleep_ns(1 * QP_MS);
    CHECK(qp8_stop_unlocked(st, &c));
    uint64_t lease_end = qp_info(q, sid).lease_until_ns;
    while (qp_wall_ns() <= lease_end + 5 * QP_MS) test_sleep_ns(2 * QP_MS);
    CHECK_EQ(qp_stats(q).expired, 1);
    batch_queue_job j;
    CHECK_OK(batch_queue_claim(q, &j));   /* recovers the expired lease */
    CHECK_EQ(j.info.id, sid);
    CHECK_EQ(j.info.attempts, 2);
    CHECK_EQ(j.info.error, BATCH_ERR_TIMEOUT);
    batch_queue_job_free(q, &j);
    CHECK_OK(batch_queue_complete(q, sid));
    batch_queue_info done2 = qp_info(q, sid);
    kill(st, SIGCONT);
    qp_reap(st, "stopped server");
    CHECK_EQ(atomic_load(&sh->saw_stop), 1);
    CHECK_EQ(atomic_load(&sh->a_completed), 0);
    CHECK_EQ(atomic_load(&sh->ran), 1);   /* its own run; the second claim's was here, by hand */
    i = qp_info(q, sid);
    CHECK_EQ(i.status, BATCH_QUEUE_DONE);
    CHECK_EQ(i.attempts, 2);
    CHECK_EQ(i.error, BATCH_ERR_TIMEOUT);
    CHECK_EQ(i.finished_ns, done2.finished_ns);
    CHECK_OK(batch_queue_close(q));
    shared_free(sh, sizeof *sh);
    qp_dir_remove(&d);
}
#else
static void test_queue_proc_lease_renew(void) { printf("  no threads: no batch_queue_serve, no renewals\n"); }
#endif

/* ---- 9. a handle a child inherits over fork -------------------------------------------------- */
/* api.h does not say a handle may not cross fork(); its lock (an OFD fcntl lock on Linux, flock
   elsewhere) then belongs to both processes at once. Whatever the answer - it works, or the
   child's operations are refused - a push that returned BATCH_OK must be in the file, with an id
   of its own. */
typedef struct qp9_ctx { batch_queue* q; uint64_t* ids; int per; _Atomic int* go; } qp9_ctx;
static int qp9_push_all(batch_queue* q, uint64_t* ids, int per, int from) {
    int ok = 0;
    batch_result last_err = BATCH_OK;
    for (int i = 0; i < per; i++) {
        uint64_t v = (uint64_t)(from + i), id = 0;
        batch_queue_push_desc pd = qp_job(&v, sizeof v, 0, 0);
        batch_result r = batch_queue_push(q, &pd, &id);
        ids[from + i] = r == BATCH_OK ? id : 0;
        ok += r == BATCH_OK;
        if (r != BATCH_OK && r != last_err) {
            printf("  a push (%s) returned %s\n", from ? "child" : "parent", batch_result_string(r));
            last_err = r;
        }
    }
    fflush(stdout);
    return ok;
}
static void qp9_child(void* arg) {
    qp9_ctx* c = (qp9_ctx*)arg;
    while (!atomic_load(c->go)) { }
    (void)qp9_push_all(c->q, c->ids, c->per, c->per);   /* the parent's handle, inherited */
    (void)batch_queue_close(c->q);                          /* the child's copy */
}
static void test_queue_proc_inherited_handle(void) {
    qp_dir d;
    qp_dir_make(&d);
    int per = (int)scaled(5000);
    uint64_t* ids = (uint64_t*)shared_alloc(2 * (size_t)per * sizeof *ids);
    _Atomic int* go = (_Atomic int*)shared_alloc(sizeof *go);
    batch_queue* q = qp_open(d.path, 2000 * QP_MS);
    qp9_ctx c = { q, ids, per, go };
    pid_t pid = qp_fork(qp9_child, &c);
    atomic_store(go, 1);
    (void)qp9_push_all(q, ids, per, 0);
    qp_reap(pid, "child with the inherited handle");
    CHECK_OK(batch_queue_close(q));
    int ok = 0;
    unsigned char* seen = (unsigned char*)calloc(4 * (size_t)per + 2, 1);
    int dup = 0;
    for (int i = 0; i < 2 * per; i++) {
        if (!ids[i]) continue;
        ok++;
        if (ids[i] < 4 * (uint64_t)per + 2) { dup += seen[ids[i]]; seen[ids[i]] = 1; }
    }
    free(seen);
    q = qp_open(d.path, 2000 * QP_MS);
    batch_queue_stats s = qp_stats(q);
    int missing = 0;
    for (int i = 0; i < 2 * per; i++) {
        if (!ids[i]) continue;
        batch_queue_job j;
        batch_result r = batch_queue_get(q, ids[i], &j);
        if (r != BATCH_OK || j.info.size != 8 || memcmp(j.payload, &(uint64_t){ (uint64_t)i }, 8) != 0) missing++;
        batch_queue_job_free(q, &j);
    }
    CHECK_OK(batch_queue_close(q));
    printf("  %d pushes said OK (of %d), %d ids given twice, %llu jobs in the file, %d pushed payloads not under their id\n",
           ok, 2 * per, dup, (unsigned long long)s.total, missing);
    fflush(stdout);
    shared_free(go, sizeof *go);
    shared_free(ids, 2 * (size_t)per * sizeof *ids);
    qp_dir_remove(&d);
    CHECK_EQ(dup, 0);
    CHECK_EQ(missing, 0);
    CHECK_EQ(s.total, (uint64_t)ok);
}
#endif /* !_WIN32 */

#define QUEUE_PROC_TESTS \
    { "queue_proc_push_serve", test_queue_proc_push_serve }, \
    { "queue_proc_kill_server", test_queue_proc_kill_server }, \
    { "queue_proc_kill_pusher", test_queue_proc_kill_pusher }, \
    { "queue_proc_torn_file", test_queue_proc_torn_file }, \
    { "queue_proc_cancel", test_queue_proc_cancel }, \
    { "queue_proc_list_pages", test_queue_proc_list_pages }, \
    { "queue_proc_compact_concurrent", test_queue_proc_compact_concurrent }, \
    { "queue_proc_lease_renew", test_queue_proc_lease_renew }, \
    { "queue_proc_inherited_handle", test_queue_proc_inherited_handle },
