/* test_journal.c - durable jobs: resume after SIGKILL at random moments (maps ordered and
   unordered, graphs), exactly-once folds, the re-run bound, torn and corrupt journals (every
   cut and every bit flip of the last record, every header byte, foreign and garbage files),
   injected EIO / ENOSPC / short writes at every journal I/O call, rerun_failed, bad input. */
#if defined(_WIN32)
#  include <aclapi.h>
#else
#include <sys/mman.h>
#include <sys/stat.h>
#endif

/* ---- helpers ------------------------------------------------------------------------------ */
typedef struct jdir { char dir[MAX_TEST_PATH]; char path[MAX_TEST_PATH + 64]; } jdir;

#if defined(_WIN32)
static void jdir_make(jdir* d, const char* name) {   /* no mkdtemp: the pid and a counter */
    static int seq;
    char leaf[64];
    snprintf(leaf, sizeof leaf, "batch-jnl.%ld.%d", (long)getpid(), ++seq);
    test_tmp_path(d->dir, sizeof d->dir, leaf);
    CHECK(CreateDirectoryA(d->dir, NULL));
    snprintf(d->path, sizeof d->path, "%s/%s", d->dir, name);
}
#else
static void jdir_make(jdir* d, const char* name) {
    snprintf(d->dir, sizeof d->dir, "/tmp/batch-jnl.XXXXXX");
    CHECK(mkdtemp(d->dir) != NULL);
    snprintf(d->path, sizeof d->path, "%s/%s", d->dir, name);
}
#endif
static void jdir_remove(jdir* d) {
    unlink(d->path);
    CHECK_EQ(rmdir(d->dir), 0);
}

/* The whole file (malloc'd; *n its size), or NULL when there is none. */
static unsigned char* jfile_read(const char* path, size_t* n) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char* b = (unsigned char*)malloc(sz > 0 ? (size_t)sz : 1);
    CHECK(b && fread(b, 1, (size_t)sz, f) == (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}
static void jfile_write(const char* path, const unsigned char* b, size_t n) {
    FILE* f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(b, 1, n, f) == n);
    fclose(f);
}

#if defined(_WIN32)
/* Windows has no fork: a child is this program again (--jchild, journal_child_main), and the
   memory it shares with the parent is a pagefile-backed section whose handle it inherits. */
typedef struct jshared { void* p; HANDLE h; } jshared;
static jshared jshared_maps[4];
static void* shared_alloc(size_t n) {
    SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, TRUE };   /* inheritable */
    HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE, (DWORD)((uint64_t)n >> 32), (DWORD)n, NULL);
    CHECK(h != NULL);
    void* p = MapViewOfFile(h, FILE_MAP_ALL_ACCESS, 0, 0, n);
    CHECK(p != NULL);
    for (int i = 0; i < 4; i++) if (!jshared_maps[i].p) { jshared_maps[i].p = p; jshared_maps[i].h = h; return p; }
    CHECK(0);
    return NULL;
}
static unsigned long long shared_handle(void* p) {   /* for the child's command line */
    for (int i = 0; i < 4; i++) if (jshared_maps[i].p == p) return (unsigned long long)(uintptr_t)jshared_maps[i].h;
    CHECK(0);
    return 0;
}
static void shared_free(void* p, size_t n) {
    (void)n;
    for (int i = 0; i < 4; i++) if (jshared_maps[i].p == p) {
        UnmapViewOfFile(p);
        CloseHandle(jshared_maps[i].h);
        jshared_maps[i].p = NULL;
    }
}
#else
/* Memory shared with forked children (a mapped temporary file: MAP_ANONYMOUS is not POSIX). */
static void* shared_alloc(size_t n) {
    FILE* f = tmpfile();
    CHECK(f != NULL);
    CHECK_EQ(ftruncate(fileno(f), (off_t)n), 0);
    void* p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fileno(f), 0);
    CHECK(p != MAP_FAILED);
    fclose(f);   /* the mapping keeps the file */
    return p;
}
static void shared_free(void* p, size_t n) { munmap(p, n); }
#endif

static void spin_us(unsigned us) {
    uint64_t end = batch_now_ns() + (uint64_t)us * 1000u;
    while (batch_now_ns() < end) { }
}

#if defined(_WIN32)
/* Kills the child after kill_after_us (0: lets it finish) and reaps it: 1 when it finished on its
   own (exit 0), 0 when TerminateProcess got it first. The delay counts from `started`, which the
   child sets when its pool is up: starting a process and its threads takes longer on Windows
   (and much longer under wine) than the delays here, where fork is a fraction of them. */
enum { JKILLED = 137 };
static int kill_and_reap(HANDLE proc, HANDLE started, unsigned kill_after_us) {
    CHECK(proc != NULL);
    if (kill_after_us) {
        HANDLE both[2] = { started, proc };
        if (WaitForMultipleObjects(2, both, FALSE, 60000) == WAIT_OBJECT_0) {
            test_sleep_ns((uint64_t)kill_after_us * 1000u);
            TerminateProcess(proc, JKILLED);   /* fails harmlessly when it already ended */
        }
    }
    DWORD code = 1;
    CHECK(WaitForSingleObject(proc, INFINITE) == WAIT_OBJECT_0);
    CHECK(GetExitCodeProcess(proc, &code));
    CloseHandle(proc);
    CloseHandle(started);
    if (code == 0) return 1;
    CHECK_EQ(code, JKILLED);
    return 0;
}
static HANDLE jchild_event(void) {
    SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, TRUE };   /* inheritable */
    HANDLE e = CreateEventW(&sa, TRUE, FALSE, NULL);
    CHECK(e != NULL);
    return e;
}
static void* jchild_map(const char* handle, size_t n) {
    void* p = MapViewOfFile((HANDLE)(uintptr_t)strtoull(handle, NULL, 0), FILE_MAP_ALL_ACCESS, 0, 0, n);
    if (!p) _exit(4);
    return p;
}
static HANDLE jchild_started;   /* the child's: set when its pool is up */
static void jchild_pool_up(void) { if (jchild_started) SetEvent(jchild_started); }
#else
static void jchild_pool_up(void) {}   /* fork is quick: the delay counts from it */
/* Kills child pid after kill_after_us (0: lets it finish) and reaps it: 1 when it finished on
   its own (exit 0), 0 when the SIGKILL got it first. */
static int kill_and_reap(pid_t pid, unsigned kill_after_us) {
    if (kill_after_us) {
        struct timespec ts = { 0, (long)kill_after_us * 1000 };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status)) { CHECK_EQ(WEXITSTATUS(status), 0); return 1; }
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    return 0;
}
#endif

/* A map whose items count their executions (in memory shared with the parent when forked). */
enum { JM_N = 2000, JM_BS = 10 };
typedef struct jmap {
    _Atomic uint32_t exec[JM_N];
    unsigned spin;
    int ordered;
} jmap;

static int jm_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    jmap* m = (jmap*)u;
    atomic_fetch_add_explicit(&m->exec[it->index], 1, memory_order_relaxed);
    if (m->spin) spin_us(m->spin);
    if (m->ordered) { mat2 x = mat_of(it->index * 2654435761u); memcpy(res, &x, sizeof x); }
    else *(uint64_t*)res = it->index * 3 + 1;
    if (it->index % 13 == 7) return batch_ctx_fail(ctx, 9, "item %zu", it->index);   /* partial batches */
    return 0;
}
static void jm_sum_fold(void* a, const batch_item* it, const void* r, void* u) { (void)it; (void)u; *(uint64_t*)a += *(const uint64_t*)r; }

static batch_map_desc jm_desc(jmap* m, size_t n, const char* path) {
    batch_map_desc d;
    memset(&d, 0, sizeof d);
    d.count = n;
    d.item_fn = jm_item;
    d.user_data = m;
    d.batch_size = JM_BS;
    d.error_threshold = 0.2;
    d.ordered = m->ordered;
    if (m->ordered) {
        d.result_size = d.acc_size = sizeof(mat2);
        d.init_fn = mat_init; d.fold_fn = mat_fold; d.combine_fn = mat_combine;
    } else {
        d.result_size = d.acc_size = sizeof(uint64_t);
        d.init_fn = sum_init; d.fold_fn = jm_sum_fold; d.combine_fn = sum_combine;   /* test_map.c's */
    }
    d.journal.path = path;
    return d;
}

/* The uninterrupted answer, by a serial loop. */
static void jm_expected(const jmap* m, size_t n, void* acc) {
    if (m->ordered) {
        mat2 a;
        mat_init(&a, NULL);
        for (size_t i = 0; i < n; i++) if (i % 13 != 7) { mat2 x = mat_of(i * 2654435761u); mat_mul(&a, &x); }
        memcpy(acc, &a, sizeof a);
    } else {
        uint64_t s = 0;
        for (size_t i = 0; i < n; i++) if (i % 13 != 7) s += i * 3 + 1;
        memcpy(acc, &s, sizeof s);
    }
}
static uint64_t jm_failed(size_t n) { uint64_t f = 0; for (size_t i = 0; i < n; i++) f += i % 13 == 7; return f; }

static uint64_t jm_total_exec(jmap* m, size_t n) {
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) t += atomic_load(&m->exec[i]);
    return t;
}

#if defined(_WIN32)
/* The journal's 0600: a protected DACL with one ACE, all access for the process's user. */
static void jcheck_private(const char* path) {
    static int said;
    if (test_is_wine()) {   /* wine accepts a DACL at creation but does not keep it */
        if (!said++) test_skip("the journal's owner-only DACL is not checked under wine, which does not keep file DACLs");
        return;
    }
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    CHECK_EQ(GetNamedSecurityInfoA(path, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl, NULL, &sd), ERROR_SUCCESS);
    CHECK(dacl != NULL);
    CHECK_EQ(dacl->AceCount, 1);
    ACCESS_ALLOWED_ACE* ace = NULL;
    CHECK(GetAce(dacl, 0, (void**)&ace));
    CHECK_EQ(ace->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
    HANDLE tok;
    unsigned char buf[256];
    DWORD n = 0;
    CHECK(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
    CHECK(GetTokenInformation(tok, TokenUser, buf, sizeof buf, &n));
    CHECK(EqualSid((PSID)&ace->SidStart, ((TOKEN_USER*)(void*)buf)->User.Sid));
    CloseHandle(tok);
    LocalFree(sd);
}
#endif

/* ---- resume without a crash: a finished journal runs nothing --------------------------- */
static void test_journal_map_rerun_finished(void) {
    jdir dir;
    jdir_make(&dir, "map.jnl");
    for (int ordered = 0; ordered < 2; ordered++) {
        for (int w = 0; w < 2; w++) {
            jmap* m = (jmap*)calloc(1, sizeof *m);
            m->ordered = ordered;
            batch_pool* p = make_pool(w ? 2 : BATCH_WORKERS_INLINE);
            batch_map_desc d = jm_desc(m, 500, dir.path);
            unsigned char want[16], got[16], again[16];
            jm_expected(m, 500, want);
            batch_map_summary s1, s2;
            CHECK_EQ(batch_map_run(p, &d, &s1, got), BATCH_PARTIAL);
            CHECK(memcmp(got, want, d.acc_size) == 0);
            CHECK_EQ(s1.items, 500);
            CHECK_EQ(s1.resumed_batches, 0);
            CHECK_EQ(jm_total_exec(m, 500), 500);
#if defined(_WIN32)
            jcheck_private(dir.path);
#else
            struct stat st;
            CHECK_EQ(stat(dir.path, &st), 0);
            CHECK_EQ(st.st_mode & 0777, 0600);
#endif
            /* again: everything comes from the journal */
            CHECK_EQ(batch_map_run(p, &d, &s2, again), BATCH_PARTIAL);
            CHECK(memcmp(again, want, d.acc_size) == 0);
            CHECK_EQ(jm_total_exec(m, 500), 500);
            CHECK_EQ(s2.items, 500);
            CHECK_EQ(s2.failed, s1.failed);
            CHECK_EQ(s2.batches, s1.batches);
            CHECK_EQ(s2.batches_partial, s1.batches_partial);
            CHECK_EQ(s2.resumed_batches, s1.batches);
            CHECK_EQ(s2.resumed_items, 500);
            /* rerun_failed: the partial batches run again, the fold still counts each item once */
            d.journal.rerun_failed = 1;
            CHECK_EQ(batch_map_run(p, &d, &s2, again), BATCH_PARTIAL);
            CHECK(memcmp(again, want, d.acc_size) == 0);
            CHECK_EQ(s2.items, 500);
            /* unordered: the partial batches again; ordered: everything from the first partial
               batch on (batch 0 here: item 7 fails), since later batches fold after it */
            CHECK_EQ(jm_total_exec(m, 500), ordered ? 1000 : 500 + s1.batches_partial * JM_BS);
            /* and the journal holds each batch once again: a plain resume runs nothing */
            d.journal.rerun_failed = 0;
            uint64_t before = jm_total_exec(m, 500);
            CHECK_EQ(batch_map_run(p, &d, &s2, again), BATCH_PARTIAL);
            CHECK(memcmp(again, want, d.acc_size) == 0);
            CHECK_EQ(jm_total_exec(m, 500), before);
            CHECK_EQ(s2.resumed_batches, s1.batches);
            CHECK_OK(batch_pool_destroy(p));
            unlink(dir.path);
            free(m);
        }
    }
    jdir_remove(&dir);
}

/* ---- SIGKILL at random moments, then resume until done ----------------------------------- */
/* Runs the map in a child; returns 1 when it finished (its results in *out), 0 when killed. */
typedef struct jm_out { int done; batch_result r; batch_map_summary s; unsigned char acc[16]; } jm_out;

/* The child's work: its exit status. */
static int jm_child_body(jmap* m, jm_out* out, const char* path, int workers, batch_durability dur) {
    batch_pool* p = NULL;
    if (batch_pool_create(&p, &(batch_pool_desc){ .workers = workers }) != BATCH_OK) return 3;
    jchild_pool_up();
    batch_map_desc d = jm_desc(m, JM_N, path);
    d.max_in_flight = 4;
    d.journal.durability = dur;
    out->r = batch_map_run(p, &d, &out->s, out->acc);
    batch_pool_destroy(p);
    out->done = 1;
    return 0;
}
#if defined(_WIN32)
static int jm_child_run(jmap* m, jm_out* out, const char* path, int workers, batch_durability dur, unsigned kill_after_us) {
    fflush(stdout); fflush(stderr);
    HANDLE started = jchild_event();
    char args[MAX_TEST_PATH + 160];
    snprintf(args, sizeof args, "--jchild map %llu %llu %llu %d %d \"%s\"", shared_handle(m), shared_handle(out),
             (unsigned long long)(uintptr_t)started, workers, (int)dur, path);
    return kill_and_reap((HANDLE)test_spawn_self(args), started, kill_after_us);
}
#else
static int jm_child_run(jmap* m, jm_out* out, const char* path, int workers, batch_durability dur, unsigned kill_after_us) {
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(jm_child_body(m, out, path, workers, dur));
    return kill_and_reap(pid, kill_after_us);
}
#endif

static void journal_map_crash(int ordered, batch_durability dur, int rounds) {
    jdir dir;
    jdir_make(&dir, "crash.jnl");
    jmap* m = (jmap*)shared_alloc(sizeof(jmap));
    jm_out* out = (jm_out*)shared_alloc(sizeof(jm_out));
    uint64_t rng = test_seed ^ (uint64_t)(ordered * 31 + (int)dur);
    unsigned char want[16];
    long total_kills = 0;
    for (int round = 0; round < rounds; round++) {
        memset(m, 0, sizeof *m);
        memset(out, 0, sizeof *out);
        m->ordered = ordered;
        m->spin = 20;   /* about 2000 x 20 us / 2 workers = 20 ms a whole run */
        jm_expected(m, JM_N, want);
        unlink(dir.path);
        int kills = 0;
        while (!jm_child_run(m, out, dir.path, 1 + (int)(test_rand(&rng) % 2), dur,
                             kills < 40 ? 500 + (unsigned)(test_rand(&rng) % 6000) : 0))
            kills++;
        total_kills += kills;
        CHECK(out->done);
        CHECK_EQ(out->r, BATCH_PARTIAL);
        CHECK(memcmp(out->acc, want, ordered ? sizeof(mat2) : sizeof(uint64_t)) == 0);   /* folded exactly once */
        CHECK_EQ(out->s.items, JM_N);
        CHECK_EQ(out->s.failed, jm_failed(JM_N));
        CHECK_EQ(out->s.succeeded, JM_N - jm_failed(JM_N));
        CHECK_EQ(out->s.batches, JM_N / JM_BS);
        uint64_t extra = 0;
        for (size_t i = 0; i < JM_N; i++) {
            uint32_t e = atomic_load(&m->exec[i]);
            CHECK(e >= 1);
            extra += e - 1;
        }
        /* a kill loses at most the batches in flight (4 slots x 10 items) that were not yet
           journaled; a buffered journal may lose more, so it is only held to correctness */
        if (dur != BATCH_DURABLE_BUFFERED) CHECK(extra <= (uint64_t)kills * 4 * JM_BS);
    }
    if (getenv("JDEBUG")) fprintf(stderr, "map kills %ld\n", total_kills);
    if (rounds >= 5) CHECK(total_kills > 0);
    shared_free(m, sizeof *m);
    shared_free(out, sizeof *out);
    jdir_remove(&dir);
}

static void test_journal_map_crash_unordered(void) { journal_map_crash(0, BATCH_DURABLE_PROCESS, (int)scaled(12)); }
static void test_journal_map_crash_ordered(void) { journal_map_crash(1, BATCH_DURABLE_PROCESS, (int)scaled(12)); }
static void test_journal_map_crash_buffered(void) {
    journal_map_crash(1, BATCH_DURABLE_BUFFERED, (int)scaled(4));
    journal_map_crash(0, BATCH_DURABLE_MACHINE, 1);
}

/* ---- graphs: SIGKILL, resume; precedence across processes -------------------------------- */
enum { JG_N = 200 };
typedef struct jgraph {
    _Atomic uint32_t exec[JG_N];
    _Alignas(8) _Atomic uint64_t clock;
    uint64_t start[JG_N], end[JG_N];   /* of each task's last execution */
    int npred[JG_N], pred[JG_N][3];
    int done;
    batch_job_summary s;
    batch_result r;
} jgraph;
typedef struct jg_task { jgraph* G; int i; } jg_task;

static int jg_fn(batch_ctx* ctx, void* u) {
    (void)ctx;
    jg_task* t = (jg_task*)u;
    jgraph* G = t->G;
    G->start[t->i] = atomic_fetch_add(&G->clock, 1) + 1;
    atomic_fetch_add(&G->exec[t->i], 1);
    spin_us(100);   /* 200 tasks: about 10 ms a whole run on 2 workers */
    G->end[t->i] = atomic_fetch_add(&G->clock, 1) + 1;
    return t->i % 17 == 3 ? 4 : 0;   /* fails: its dependents are SKIPPED */
}

static batch_graph* jg_build(jgraph* G, jg_task* tasks) {
    batch_graph* g = make_graph();
    batch_task h[JG_N];
    for (int i = 0; i < JG_N; i++) {
        tasks[i].G = G;
        tasks[i].i = i;
        h[i] = add_task(g, jg_fn, &tasks[i], NULL);
        for (int k = 0; k < G->npred[i]; k++) CHECK_OK(batch_task_precede(g, h[G->pred[i][k]], h[i]));
    }
    return g;
}

/* The child's work: its exit status. */
static int jg_child_body(jgraph* G, const char* path, int workers) {
    static jg_task tasks[JG_N];
    batch_pool* p = NULL;
    if (batch_pool_create(&p, &(batch_pool_desc){ .workers = workers }) != BATCH_OK) return 3;
    jchild_pool_up();
    batch_graph* g = jg_build(G, tasks);
    batch_run_desc rd;
    memset(&rd, 0, sizeof rd);
    rd.journal.path = path;
    G->r = batch_graph_run(p, g, &rd, &G->s);
    batch_graph_destroy(g);
    batch_pool_destroy(p);
    G->done = 1;
    return 0;
}
#if defined(_WIN32)
static int jg_child_run(jgraph* G, const char* path, int workers, unsigned kill_after_us) {
    fflush(stdout); fflush(stderr);
    HANDLE started = jchild_event();
    char args[MAX_TEST_PATH + 160];
    snprintf(args, sizeof args, "--jchild graph %llu %llu %d \"%s\"", shared_handle(G),
             (unsigned long long)(uintptr_t)started, workers, path);
    return kill_and_reap((HANDLE)test_spawn_self(args), started, kill_after_us);
}

/* The child side: --jchild map M OUT STARTED WORKERS DURABILITY PATH, or
   --jchild graph G STARTED WORKERS PATH (handles inherited from the parent). */
static int journal_child_main(int argc, char** argv) {
    if (argc == 9 && !strcmp(argv[2], "map")) {
        jmap* m = (jmap*)jchild_map(argv[3], sizeof(jmap));
        jm_out* out = (jm_out*)jchild_map(argv[4], sizeof(jm_out));
        jchild_started = (HANDLE)(uintptr_t)strtoull(argv[5], NULL, 0);
        _exit(jm_child_body(m, out, argv[8], atoi(argv[6]), (batch_durability)atoi(argv[7])));
    }
    if (argc == 7 && !strcmp(argv[2], "graph")) {
        jgraph* G = (jgraph*)jchild_map(argv[3], sizeof(jgraph));
        jchild_started = (HANDLE)(uintptr_t)strtoull(argv[4], NULL, 0);
        _exit(jg_child_body(G, argv[6], atoi(argv[5])));
    }
    fprintf(stderr, "bad --jchild arguments\n");
    return 2;
}
#else
static int jg_child_run(jgraph* G, const char* path, int workers, unsigned kill_after_us) {
    fflush(stdout); fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(jg_child_body(G, path, workers));
    return kill_and_reap(pid, kill_after_us);
}
#endif

static void test_journal_graph_crash(void) {
    jdir dir;
    jdir_make(&dir, "graph.jnl");
    jgraph* G = (jgraph*)shared_alloc(sizeof(jgraph));
    uint64_t rng = test_seed ^ 0x6a;
    int rounds = (int)scaled(12);
    long total_kills = 0;
    for (int round = 0; round < rounds; round++) {
        memset(G, 0, sizeof *G);
        for (int i = 0; i < JG_N; i++) {   /* a random DAG: up to 3 earlier predecessors */
            int k = i ? (int)(test_rand(&rng) % 4) : 0;
            for (int e = 0; e < k; e++) G->pred[i][G->npred[i]++] = (int)(test_rand(&rng) % (uint64_t)i);
        }
        unlink(dir.path);
        int kills = 0;
        while (!jg_child_run(G, dir.path, 2, kills < 40 ? 200 + (unsigned)(test_rand(&rng) % 2500) : 0)) kills++;
        total_kills += kills;
        CHECK(G->done);
        /* the uninterrupted outcome, computed here: failed tasks and their transitive dependents */
        int bad[JG_N];
        uint64_t want_failed = 0, want_skipped = 0;
        for (int i = 0; i < JG_N; i++) {
            bad[i] = 0;
            for (int k = 0; k < G->npred[i]; k++) if (bad[G->pred[i][k]]) bad[i] = 2;
            if (!bad[i] && i % 17 == 3) bad[i] = 1;
            want_failed += bad[i] == 1;
            want_skipped += bad[i] == 2;
        }
        CHECK_EQ(G->s.failed, want_failed);
        CHECK_EQ(G->s.skipped, want_skipped);
        CHECK_EQ(G->s.completed, JG_N - want_failed - want_skipped);
        CHECK_EQ(G->r, BATCH_PARTIAL);
        uint64_t extra = 0;
        for (int i = 0; i < JG_N; i++) {
            uint32_t e = atomic_load(&G->exec[i]);
            if (bad[i] == 2) { CHECK_EQ(e, 0); continue; }
            CHECK(e >= 1);
            extra += e - 1;
            /* the last execution of a task began after the last execution of each predecessor */
            for (int k = 0; k < G->npred[i]; k++) CHECK(G->start[i] > G->end[G->pred[i][k]]);
        }
        CHECK(extra <= (uint64_t)kills * 2);   /* at most the running tasks (2 workers) per kill */
    }
    if (getenv("JDEBUG")) fprintf(stderr, "graph kills %ld\n", total_kills);
    if (rounds >= 4) CHECK(total_kills > 0);
    shared_free(G, sizeof *G);
    jdir_remove(&dir);
}

/* ---- graphs without a crash: resume, FAILED kept or re-run, cancel then resume ------------ */
typedef struct jg2 { _Atomic int runs[8]; int fail_mask; } jg2;
typedef struct jg2_task { jg2* s; int i; } jg2_task;
static int jg2_fn(batch_ctx* ctx, void* u) {
    jg2_task* t = (jg2_task*)u;
    atomic_fetch_add(&t->s->runs[t->i], 1);
    if (t->s->fail_mask & (1 << t->i)) return 5;
    if (t->i == 2 && batch_ctx_should_stop(ctx)) return 6;
    return 0;
}

static void test_journal_graph_resume(void) {
    jdir dir;
    jdir_make(&dir, "g2.jnl");
    jg2 st;
    memset(&st, 0, sizeof st);
    jg2_task tk[8];
    batch_graph* g = make_graph();
    batch_task h[8];
    for (int i = 0; i < 8; i++) { tk[i].s = &st; tk[i].i = i; h[i] = add_task(g, jg2_fn, &tk[i], NULL); }
    /* 0 -> 1 -> 2 -> 3, 4 -> 5, 6, 7 after 3 and 5 */
    CHECK_OK(batch_task_precede(g, h[0], h[1]));
    CHECK_OK(batch_task_precede(g, h[1], h[2]));
    CHECK_OK(batch_task_precede(g, h[2], h[3]));
    CHECK_OK(batch_task_precede(g, h[4], h[5]));
    CHECK_OK(batch_task_precede(g, h[3], h[7]));
    CHECK_OK(batch_task_precede(g, h[5], h[7]));
    batch_pool* p = make_pool(2);
    batch_run_desc rd;
    memset(&rd, 0, sizeof rd);
    rd.journal.path = dir.path;
    batch_job_summary s;
    st.fail_mask = 1 << 4;   /* 4 fails: 5 and 7 are skipped */
    CHECK_EQ(batch_graph_run(p, g, &rd, &s), BATCH_PARTIAL);
    CHECK_EQ(s.completed, 5); CHECK_EQ(s.failed, 1); CHECK_EQ(s.skipped, 2); CHECK_EQ(s.resumed, 0);
    /* again: nothing runs, the same outcome */
    CHECK_EQ(batch_graph_run(p, g, &rd, &s), BATCH_PARTIAL);
    CHECK_EQ(s.completed, 5); CHECK_EQ(s.failed, 1); CHECK_EQ(s.skipped, 2); CHECK_EQ(s.resumed, 6);
    for (int i = 0; i < 8; i++) CHECK_EQ(atomic_load(&st.runs[i]), (i == 5 || i == 7) ? 0 : 1);
    batch_task_info info;
    CHECK_OK(batch_graph_task_info(g, h[4], &info));
    CHECK_EQ(info.status, BATCH_TASK_FAILED);
    CHECK_EQ(info.error, 5);
    /* rerun_failed, and 4 now succeeds: 4, 5, 7 run */
    st.fail_mask = 0;
    rd.journal.rerun_failed = 1;
    CHECK_OK(batch_graph_run(p, g, &rd, &s));
    CHECK_EQ(s.completed, 8); CHECK_EQ(s.resumed, 5);
    for (int i = 0; i < 8; i++) CHECK_EQ(atomic_load(&st.runs[i]), i == 4 ? 2 : 1);
    /* without a journal the graph runs whole, with no marks left over */
    CHECK_OK(batch_graph_run(p, g, NULL, &s));
    CHECK_EQ(s.resumed, 0);
    for (int i = 0; i < 8; i++) CHECK_EQ(atomic_load(&st.runs[i]), i == 4 ? 3 : 2);
    /* FAIL_FAST in the journal: a resumed failure cancels again */
    unlink(dir.path);
    memset(&st, 0, sizeof st);
    st.fail_mask = 1 << 0;
    rd.journal.rerun_failed = 0;
    rd.policy = BATCH_POLICY_FAIL_FAST;
    rd.max_concurrency = 1;
    CHECK_EQ(batch_graph_run(p, g, &rd, &s), BATCH_ERR_FAILED);
    uint64_t completed = s.completed;
    CHECK_EQ(batch_graph_run(p, g, &rd, &s), BATCH_ERR_FAILED);
    CHECK_EQ(s.failed, 1);
    CHECK(s.completed >= completed);   /* another root may start before the resumed failure stops the run */
    CHECK_EQ(atomic_load(&st.runs[0]), 1);
    /* a graph changed since the journal was written is another job */
    batch_task extra = add_task(g, task_ok, NULL, "extra");
    (void)extra;
    CHECK_EQ(batch_graph_run(p, g, &rd, &s), BATCH_ERR_MISMATCH);
    CHECK_EQ(atomic_load(&st.runs[0]), 1);
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
    jdir_remove(&dir);
}

/* ---- torn and corrupt journals -------------------------------------------------------------- */
/* Runs the ordered 200-item map against the journal at path; *ran = items executed. */
static batch_result jm_try(const char* path, uint64_t* ran, unsigned char* acc) {
    jmap* m = (jmap*)calloc(1, sizeof *m);
    m->ordered = 1;
    batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
    batch_map_desc d = jm_desc(m, 200, path);
    batch_map_summary s;
    batch_result r = batch_map_run(p, &d, &s, acc);
    *ran = jm_total_exec(m, 200);
    if (r == BATCH_PARTIAL) CHECK_EQ(s.items, 200);
    CHECK_OK(batch_pool_destroy(p));
    free(m);
    return r;
}

/* Runs the ordered 200-item map against a fresh journal at path: want gets the expected
   accumulator, got the run's; returns the whole journal (20 records, malloc'd; *n its size). */
static unsigned char* jm_full_journal(const char* path, unsigned char* want, unsigned char* got, size_t* n) {
    jmap ref;
    memset(&ref, 0, sizeof ref);
    ref.ordered = 1;
    jm_expected(&ref, 200, want);
    uint64_t ran;
    CHECK_EQ(jm_try(path, &ran, got), BATCH_PARTIAL);
    CHECK_EQ(ran, 200);
    unsigned char* full = jfile_read(path, n);
    CHECK(full != NULL);
    CHECK_EQ(*n, 32 + 20 * (8 + 48 + sizeof(mat2)));
    return full;
}

static void test_journal_corrupt(void) {
    jdir dir;
    jdir_make(&dir, "c.jnl");
    unsigned char want[16], got[16];
    uint64_t ran;
    size_t n = 0, rec = 8 + 48 + sizeof(mat2);
    unsigned char* full = jm_full_journal(dir.path, want, got, &n);
    size_t last = n - rec;
    /* a cut at every byte of the last record: it is cut off and its batch runs again */
    for (size_t cut = last; cut < n; cut++) {
        jfile_write(dir.path, full, cut);
        CHECK_EQ(jm_try(dir.path, &ran, got), BATCH_PARTIAL);
        CHECK_EQ(ran, JM_BS);
        CHECK(memcmp(got, want, sizeof(mat2)) == 0);
        size_t n2 = 0;
        unsigned char* again = jfile_read(dir.path, &n2);
        CHECK(n2 == n && memcmp(again, full, n) == 0);   /* and the journal is whole again */
        free(again);
    }
    /* every bit flip in the last record: cut off (CRC, or a length past the end) or refused
       (a length no record has); never a wrong result */
    for (size_t at = last; at < n; at++) {
        for (int bit = 0; bit < 8; bit++) {
            full[at] ^= (unsigned char)(1u << bit);
            jfile_write(dir.path, full, n);
            batch_result r = jm_try(dir.path, &ran, got);
            if (r == BATCH_ERR_CORRUPT) {
                CHECK(at < last + 4);   /* only the length field can make a record impossible */
                CHECK_EQ(ran, 0);
            } else {
                CHECK_EQ(r, BATCH_PARTIAL);
                CHECK_EQ(ran, JM_BS);
                CHECK(memcmp(got, want, sizeof(mat2)) == 0);
            }
            full[at] ^= (unsigned char)(1u << bit);
        }
    }
    /* every header byte: refused, nothing runs, the file is left alone */
    for (size_t at = 0; at < 32; at++) {
        full[at] ^= 0x10;
        jfile_write(dir.path, full, n);
        batch_result r = jm_try(dir.path, &ran, got);
        CHECK(r == BATCH_ERR_CORRUPT || r == BATCH_ERR_MISMATCH);
        CHECK_EQ(ran, 0);
        size_t n2 = 0;
        unsigned char* after = jfile_read(dir.path, &n2);
        CHECK(n2 == n && memcmp(after, full, n) == 0);
        free(after);
        full[at] ^= 0x10;
    }
    /* a CRC-valid record that does not fit the job (an item range past the end) */
    {
        unsigned char* bad = (unsigned char*)malloc(n);
        memcpy(bad, full, n);
        unsigned char* payload = bad + last + 8;
        payload[16] = 0xff;   /* first item */
        uint32_t crc = batch__crc32c(payload, 48 + sizeof(mat2));
        for (int i = 0; i < 4; i++) bad[last + 4 + i] = (unsigned char)(crc >> (8 * i));
        jfile_write(dir.path, bad, n);
        CHECK_EQ(jm_try(dir.path, &ran, got), BATCH_ERR_CORRUPT);
        CHECK_EQ(ran, 0);
        free(bad);
    }
    /* a torn header (a crash right after creation) is a new journal */
    jfile_write(dir.path, full, 5);
    CHECK_EQ(jm_try(dir.path, &ran, got), BATCH_PARTIAL);
    CHECK_EQ(ran, 200);
    /* another job's journal (another count), and a file that is no journal at all */
    jfile_write(dir.path, full, n);
    {
        jmap* m = (jmap*)calloc(1, sizeof *m);
        m->ordered = 1;
        batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
        batch_map_desc d = jm_desc(m, 201, dir.path);
        CHECK_EQ(batch_map_run(p, &d, NULL, got), BATCH_ERR_MISMATCH);
        d.count = 200;
        d.journal.fingerprint = 77;   /* the user's own fingerprint differs from the derived one */
        CHECK_EQ(batch_map_run(p, &d, NULL, got), BATCH_ERR_MISMATCH);
        CHECK_EQ(jm_total_exec(m, 200), 0);
        CHECK_OK(batch_pool_destroy(p));
        free(m);
    }
    const char text[] = "#!/bin/sh\necho this is somebody's file, not a journal\n";
    jfile_write(dir.path, (const unsigned char*)text, sizeof text - 1);
    CHECK_EQ(jm_try(dir.path, &ran, got), BATCH_ERR_CORRUPT);
    CHECK_EQ(ran, 0);
    size_t n3 = 0;
    unsigned char* kept = jfile_read(dir.path, &n3);
    CHECK(n3 == sizeof text - 1 && memcmp(kept, text, n3) == 0);
    free(kept);
    free(full);
    jdir_remove(&dir);
}

/* ---- I/O faults at every call ---------------------------------------------------------------- */
enum { JF_OPEN, JF_READ, JF_WRITE, JF_SYNC, JF_TRUNC, JF_SIZE, JF_OPS };
typedef struct jfault {
    int op;                /* which call fails */
    long at;               /* the at-th call of it (1-based); 0: none */
    int err;               /* EIO, ENOSPC, or 0: a short write (half) */
    long calls[JF_OPS];
    int fired;
} jfault;
static jfault* jf_cur;
/* The default I/O, to wrap: POSIX, or Win32 on Windows. */
static const batch_journal_io* jio(void) { return batch_journal_posix_io() ? batch_journal_posix_io() : batch_journal_win32_io(); }

static int jf_hit(int op) {
    jfault* f = jf_cur;
    long k = ++f->calls[op];
    if (f->op == op && k == f->at) { f->fired = 1; return 1; }
    return 0;
}
static int jf_open(void* u, const char* path, intptr_t* h) {
    if (jf_hit(JF_OPEN)) return jf_cur->err ? jf_cur->err : EIO;
    return jio()->open(u, path, h);
}
static int jf_read(void* u, intptr_t h, void* b, size_t n, uint64_t off, size_t* done) {
    if (jf_hit(JF_READ)) return jf_cur->err ? jf_cur->err : EIO;
    return jio()->read(u, h, b, n, off, done);
}
static int jf_write(void* u, intptr_t h, const void* b, size_t n, uint64_t off, size_t* done) {
    if (jf_hit(JF_WRITE)) {
        if (jf_cur->err) return jf_cur->err;
        n = n > 1 ? n / 2 : n;   /* a short write: the rest must follow */
    }
    return jio()->write(u, h, b, n, off, done);
}
static int jf_sync(void* u, intptr_t h) { return jf_hit(JF_SYNC) ? (jf_cur->err ? jf_cur->err : EIO) : jio()->sync(u, h); }
static int jf_trunc(void* u, intptr_t h, uint64_t sz) {
    return jf_hit(JF_TRUNC) ? (jf_cur->err ? jf_cur->err : EIO) : jio()->truncate(u, h, sz);
}
static int jf_size(void* u, intptr_t h, uint64_t* sz) { return jf_hit(JF_SIZE) ? (jf_cur->err ? jf_cur->err : EIO) : jio()->size(u, h, sz); }
static void jf_close(void* u, intptr_t h) { jio()->close(u, h); }
static const batch_journal_io jf_io = { jf_open, jf_read, jf_write, jf_sync, jf_trunc, jf_size, jf_close, NULL };

static void test_journal_io_faults(void) {
    jdir dir;
    jdir_make(&dir, "f.jnl");
    static const int errs[] = { EIO, ENOSPC, 0 };
    unsigned char want[16], got[16];
    jmap ref;
    memset(&ref, 0, sizeof ref);
    jm_expected(&ref, 200, want);
    long cases = 0;
    for (int resume = 0; resume < 2; resume++)   /* on a fresh journal, and on one half done */
    for (int op = 0; op < JF_OPS; op++)
    for (int e = 0; e < 3; e++) {
        if (e == 2 && op != JF_WRITE) continue;   /* short: writes only */
        for (long at = 1;; at++) {
            unlink(dir.path);
            jmap* m = (jmap*)calloc(1, sizeof *m);
            batch_pool* p = make_pool(at % 2 ? 2 : BATCH_WORKERS_INLINE);
            batch_map_desc d = jm_desc(m, 200, dir.path);
            d.journal.durability = BATCH_DURABLE_MACHINE;   /* syncs too */
            d.journal.sync_every = 3;
            if (resume) {   /* a journal with 10 of the 20 batches, as a crash leaves it */
                batch_map_desc h = jm_desc(m, 200, dir.path);
                CHECK_EQ(batch_map_run(p, &h, NULL, got), BATCH_PARTIAL);
                size_t n = 0;
                unsigned char* b = jfile_read(dir.path, &n);
                jfile_write(dir.path, b, 32 + 10 * (8 + 48 + 8));
                free(b);
                memset(m->exec, 0, sizeof m->exec);
            }
            jfault f;
            memset(&f, 0, sizeof f);
            f.op = op; f.at = at; f.err = errs[e];
            jf_cur = &f;
            d.journal.io = &jf_io;
            batch_map_summary s;
            batch_result r = batch_map_run(p, &d, &s, got);
            cases++;
            if (!f.fired) {
                CHECK_EQ(r, BATCH_PARTIAL);
                CHECK(memcmp(got, want, 8) == 0);
            } else if (e == 2) {
                CHECK_EQ(r, BATCH_PARTIAL);   /* a short write is finished by the next one */
                CHECK(memcmp(got, want, 8) == 0);
            } else {
                CHECK_EQ(r, BATCH_ERR_IO);
            }
            /* whatever happened, the journal resumes to the right answer */
            d.journal.io = NULL;
            batch_result r2 = batch_map_run(p, &d, &s, got);
            CHECK_EQ(r2, BATCH_PARTIAL);
            CHECK(memcmp(got, want, 8) == 0);
            CHECK_EQ(s.items, 200);
            if (!resume) for (size_t i = 0; i < 200; i++) CHECK(atomic_load(&m->exec[i]) >= 1);
            CHECK_OK(batch_pool_destroy(p));
            free(m);
            if (!f.fired) break;
        }
    }
    CHECK(cases > 40);
    jdir_remove(&dir);
}

/* ---- pull sources and adaptive sizing: resume by item ranges ------------------------------------ */
typedef struct jpull { size_t next, n; } jpull;
static int jpull_next(void* u, void** out) {
    jpull* p = (jpull*)((jmap*)u + 1);
    if (p->next >= p->n) return 0;
    *out = (void*)(uintptr_t)(++p->next);   /* item i carries i + 1 */
    return 1;
}
static int jpull_item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)ctx;
    jmap* m = (jmap*)u;
    if ((uintptr_t)it->ptr != it->index + 1) return 99;   /* the source and the index agree */
    atomic_fetch_add_explicit(&m->exec[it->index], 1, memory_order_relaxed);
    *(uint64_t*)res = it->index * 3 + 1;
    return it->index % 13 == 7 ? 9 : 0;
}

static void test_journal_map_ranges(void) {
    jdir dir;
    jdir_make(&dir, "r.jnl");
    enum { N = 1500 };
    unsigned char want[8];
    jmap ref;
    memset(&ref, 0, sizeof ref);
    jm_expected(&ref, N, want);
    for (int mode = 0; mode < 2; mode++) {   /* 0: pull source, batches of 10; 1: count, adaptive sizes */
        for (int keep = 0; keep <= 40; keep += 8) {   /* records left in the journal */
            struct { jmap m; jpull p; } *u = calloc(1, sizeof *u);
            batch_pool* p = make_pool(2);
            batch_map_desc d = jm_desc(&u->m, N, dir.path);
            if (mode == 0) { d.count = 0; d.pull_fn = jpull_next; d.item_fn = jpull_item; }
            else { d.batch_size = 0; d.max_batch = 64; d.error_threshold = 1.0; }   /* sizes vary: no batch FAILED */
            u->p.n = N;
            unlink(dir.path);
            unsigned char got[8];
            batch_map_summary s;
            CHECK_EQ(batch_map_run(p, &d, &s, got), BATCH_PARTIAL);
            CHECK(memcmp(got, want, 8) == 0);
            size_t n = 0;
            unsigned char* b = jfile_read(dir.path, &n);
            size_t rec = 8 + 48 + 8, nrec = (n - 32) / rec;
            CHECK((size_t)keep <= nrec);
            jfile_write(dir.path, b, 32 + (size_t)keep * rec);   /* a crash after `keep` records */
            free(b);
            memset(u->m.exec, 0, sizeof u->m.exec);
            u->p.next = 0;
            CHECK_EQ(batch_map_run(p, &d, &s, got), BATCH_PARTIAL);
            CHECK(memcmp(got, want, 8) == 0);
            CHECK_EQ(s.items, N);
            CHECK_EQ(s.resumed_batches, keep);
            CHECK_EQ(jm_total_exec(&u->m, N), N - s.resumed_items);   /* the rest ran, each once */
            for (size_t i = 0; i < N; i++) CHECK(atomic_load(&u->m.exec[i]) <= 1);
            CHECK_OK(batch_pool_destroy(p));
            free(u);
        }
    }
    jdir_remove(&dir);
}

/* ---- bad input ---------------------------------------------------------------------------------- */
#if defined(_WIN32)
/* A symbolic link as the journal is refused (FILE_FLAG_OPEN_REPARSE_POINT, then the reparse
   point check), and the file it points to is left alone. Making a link needs a privilege or
   developer mode on Windows, and wine only pretends to make one: then there is nothing to test. */
static void jcheck_link_refused(jmap* m, batch_pool* p, const char* dir, const char* link) {
    char target[MAX_TEST_PATH + 64];
    snprintf(target, sizeof target, "%s/target", dir);
    const unsigned char text[] = "not a journal";
    jfile_write(target, text, sizeof text - 1);
    DWORD attr = CreateSymbolicLinkA(link, target, 0x2 /* SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE */)
                     ? GetFileAttributesA(link) : INVALID_FILE_ATTRIBUTES;
    if (attr == INVALID_FILE_ATTRIBUTES || !(attr & FILE_ATTRIBUTE_REPARSE_POINT)) {
        test_skip("the symbolic link check: no link could be made here (privilege, or wine's stub)");
    } else {
        batch_map_desc d = jm_desc(m, 100, link);
        CHECK_EQ(batch_map_run(p, &d, NULL, NULL), BATCH_ERR_IO);                /* O_NOFOLLOW */
        size_t n = 0;
        unsigned char* kept = jfile_read(target, &n);
        CHECK(kept && n == sizeof text - 1 && memcmp(kept, text, n) == 0);
        free(kept);
    }
    DeleteFileA(link);   /* or what wine's stub left: nothing, or an empty file */
    CHECK(DeleteFileA(target));
}
#endif

static void test_journal_bad_input(void) {
    jdir dir;
    jdir_make(&dir, "b.jnl");
    batch_pool* p = make_pool(BATCH_WORKERS_INLINE);
    jmap* m = (jmap*)calloc(1, sizeof *m);
    batch_map_desc d = jm_desc(m, 100, "");
    CHECK_EQ(batch_map_run(p, &d, NULL, NULL), BATCH_ERR_INVALID);              /* empty path */
    d = jm_desc(m, 100, dir.path);
    d.journal.durability = (batch_durability)7;
    CHECK_EQ(batch_map_run(p, &d, NULL, NULL), BATCH_ERR_INVALID);
    d = jm_desc(m, 100, dir.path);
    d.journal.sync_every = -1;
    CHECK_EQ(batch_map_run(p, &d, NULL, NULL), BATCH_ERR_INVALID);
    batch_journal_io half = *jio();
    half.sync = NULL;
    d = jm_desc(m, 100, dir.path);
    d.journal.io = &half;
    CHECK_EQ(batch_map_run(p, &d, NULL, NULL), BATCH_ERR_INVALID);               /* incomplete hooks */
    d = jm_desc(m, 100, NULL);
    d.journal.rerun_failed = 1;
    CHECK_EQ(batch_map_run(p, &d, NULL, NULL), BATCH_ERR_INVALID);               /* options, no path */
    d = jm_desc(m, 100, dir.dir);
    CHECK_EQ(batch_map_run(p, &d, NULL, NULL), BATCH_ERR_IO);                    /* a directory */
    char link[MAX_TEST_PATH + 64];
    snprintf(link, sizeof link, "%s/link", dir.dir);
#if defined(_WIN32)
    jcheck_link_refused(m, p, dir.dir, link);
#else
    CHECK_EQ(symlink("/etc/hostname", link), 0);
    d = jm_desc(m, 100, link);
    CHECK_EQ(batch_map_run(p, &d, NULL, NULL), BATCH_ERR_IO);                    /* O_NOFOLLOW */
    unlink(link);
#endif
    CHECK_EQ(jm_total_exec(m, 100), 0);
    batch_graph* g = make_graph();
    add_task(g, task_ok, NULL, NULL);
    batch_run_desc rd;
    memset(&rd, 0, sizeof rd);
    rd.journal.path = "";
    batch_job* job = (batch_job*)1;
    CHECK_EQ(batch_graph_launch(p, g, &rd, &job), BATCH_ERR_INVALID);
    CHECK(job == NULL);
    rd.journal.path = dir.dir;
    CHECK_EQ(batch_graph_launch(p, g, &rd, &job), BATCH_ERR_IO);
    rd.journal.path = dir.path;
    CHECK_OK(batch_graph_run(p, g, &rd, NULL));   /* the graph is usable after the refusals */
    CHECK_OK(batch_graph_destroy(g));
    CHECK_OK(batch_pool_destroy(p));
    free(m);
    jdir_remove(&dir);
}

#if defined(_WIN32)
/* Paths are UTF-8: a journal named "δοκιμή-é.jnl" gets that UTF-16 name, resumes under it, and
   bytes that are no UTF-8 are refused before anything is made. */
static void test_journal_utf8_path(void) {
    jdir dir;
    jdir_make(&dir, "\xce\xb4\xce\xbf\xce\xba\xce\xb9\xce\xbc\xce\xae-\xc3\xa9.jnl");
    for (const char* c = dir.dir; *c; c++)
        if ((unsigned char)*c >= 0x80) { test_skip("a UTF-8 journal name: the temporary directory's own name is not ASCII"); CHECK_EQ(rmdir(dir.dir), 0); return; }
    jmap* m = (jmap*)calloc(1, sizeof *m);
    batch_pool* p = make_pool(2);
    batch_map_desc d = jm_desc(m, 200, dir.path);
    unsigned char want[8], got[8];
    jm_expected(m, 200, want);
    CHECK_EQ(batch_map_run(p, &d, NULL, got), BATCH_PARTIAL);
    CHECK(memcmp(got, want, 8) == 0);
    CHECK_EQ(batch_map_run(p, &d, NULL, got), BATCH_PARTIAL);   /* resumed: nothing runs again */
    CHECK(memcmp(got, want, 8) == 0);
    CHECK_EQ(jm_total_exec(m, 200), 200);
    WCHAR w[MAX_TEST_PATH + 64];
    CHECK(MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, dir.path, -1, w, MAX_TEST_PATH + 64) > 0);
    CHECK(GetFileAttributesW(w) != INVALID_FILE_ATTRIBUTES);
    char bad[MAX_TEST_PATH + 64];
    snprintf(bad, sizeof bad, "%s/bad-\xff.jnl", dir.dir);
    d = jm_desc(m, 200, bad);
    CHECK_EQ(batch_map_run(p, &d, NULL, got), BATCH_ERR_IO);   /* EILSEQ */
    CHECK_EQ(jm_total_exec(m, 200), 200);
    CHECK(DeleteFileW(w));
    CHECK_EQ(rmdir(dir.dir), 0);   /* empty: the bad name made nothing */
    CHECK_OK(batch_pool_destroy(p));
    free(m);
}
#  define JOURNAL_WIN32_TESTS { "journal_utf8_path", test_journal_utf8_path },
#else
#  define JOURNAL_WIN32_TESTS
#endif

/* ---- a journaled FAILED batch replays as it was counted: all its items failed (issue 15) ---- */
static void test_journal_map_failed_counts(void) {
    jdir dir;
    jdir_make(&dir, "failed.jnl");
    for (int ordered = 0; ordered < 2; ordered++) {
        batch_pool* p = make_pool(2);
        fb_map f = { 0, 0, 1 };   /* test_map.c's: 3 batches of 10, all FAILED */
        batch_map_desc d = { .count = 30, .item_fn = fb_item, .user_data = &f, .batch_size = 10, .ordered = ordered,
                             .acc_size = 8, .init_fn = sum_init, .fold_fn = fb_count_fold, .combine_fn = sum_combine,
                             .journal = { .path = dir.path } };
        for (int run = 0; run < 2; run++) {   /* run 1 from the journal: nothing runs again */
            batch_job* job;
            uint64_t folded = 99;
            batch_map_summary s;
            CHECK_OK(batch_map_launch(p, &d, &job));
            CHECK_EQ(batch_map_wait(job, &s, &folded), BATCH_ERR_FAILED);
            CHECK_EQ(s.batches_failed, 3);
            CHECK_EQ(s.resumed_batches, run ? 3 : 0);
            fb_check_counts(job, &s, folded, 30);
            CHECK_OK(batch_job_destroy(job));
            CHECK_EQ(atomic_load(&f.attempts), 1);
        }
        CHECK_EQ(unlink(dir.path), 0);
        CHECK_OK(batch_pool_destroy(p));
    }
    CHECK_EQ(rmdir(dir.dir), 0);
}

/* ---- a zero-filled tail (issue 15): what a power loss leaves when the file grew but the data
   of its last appends never reached the disk. It is a torn append: cut off, and the job
   resumes. Only zeros to the end qualify: a zero length followed by anything else is
   CORRUPT, and the file is left alone. Graph and map journals. --------------------------------- */
static unsigned char* jz_with_tail(const unsigned char* full, size_t n, size_t zeros, int junk) {
    unsigned char* b = (unsigned char*)calloc(1, n + zeros + 1);
    CHECK(b != NULL);
    memcpy(b, full, n);
    if (junk) b[n + zeros] = 0x01;
    return b;
}
static void jz_check_file(const char* path, const unsigned char* want, size_t n) {
    size_t n2 = 0;
    unsigned char* got = jfile_read(path, &n2);
    CHECK(got != NULL);
    CHECK_EQ(n2, n);
    CHECK(memcmp(got, want, n) == 0);
    free(got);
}
static int jz_chain_fn(batch_ctx* ctx, void* u) { (void)ctx; atomic_fetch_add((_Atomic int*)u, 1); return 0; }
static batch_result jz_graph_try(const char* path, int* ran) {
    _Atomic int runs = 0;
    batch_graph* g = make_graph();
    batch_task prev = { 0, 0 };
    for (int i = 0; i < 8; i++) {   /* a chain: journaled in order on any pool */
        batch_task t = add_task(g, jz_chain_fn, (void*)&runs, NULL);
        if (i) CHECK_OK(batch_task_precede(g, prev, t));
        prev = t;
    }
    batch_pool* p = make_pool(2);
    batch_run_desc rd;
    memset(&rd, 0, sizeof rd);
    rd.journal.path = path;
    batch_job_summary s;
    batch_result r = batch_graph_run(p, g, &rd, &s);
    if (r == BATCH_OK) CHECK_EQ(s.completed, 8);
    *ran = atomic_load(&runs);
    CHECK_OK(batch_pool_destroy(p));
    CHECK_OK(batch_graph_destroy(g));
    return r;
}
static void test_journal_zero_tail(void) {
    jdir dir;
    jdir_make(&dir, "z.jnl");
    static const size_t tails[] = { 8, 9, 63, 5000 };   /* 5000: more than the journal's buffer */
    /* the map: 20 records of an ordered 200-item map */
    unsigned char want[16], got[16];
    uint64_t ran;
    size_t n = 0, rec = 8 + 48 + sizeof(mat2);
    unsigned char* full = jm_full_journal(dir.path, want, got, &n);
    /* the last 3 appends zeroed in place: their batches run again, the journal is whole again */
    unsigned char* lost = (unsigned char*)malloc(n);
    memcpy(lost, full, n);
    memset(lost + n - 3 * rec, 0, 3 * rec);
    jfile_write(dir.path, lost, n);
    CHECK_EQ(jm_try(dir.path, &ran, got), BATCH_PARTIAL);
    CHECK_EQ(ran, 3 * JM_BS);
    CHECK(memcmp(got, want, sizeof(mat2)) == 0);
    jz_check_file(dir.path, full, n);
    free(lost);
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        for (int junk = 0; junk < 2; junk++) {
            unsigned char* b = jz_with_tail(full, n, tails[i], junk);
            jfile_write(dir.path, b, n + tails[i] + (size_t)junk);
            batch_result r = jm_try(dir.path, &ran, got);
            CHECK_EQ(ran, 0);
            if (junk) {   /* a zero length, then a non-zero byte: refused, the file untouched */
                CHECK_EQ(r, BATCH_ERR_CORRUPT);
                jz_check_file(dir.path, b, n + tails[i] + 1);
            } else {      /* zeros to the end: cut off, everything resumed */
                CHECK_EQ(r, BATCH_PARTIAL);
                CHECK(memcmp(got, want, sizeof(mat2)) == 0);
                jz_check_file(dir.path, full, n);
            }
            free(b);
        }
    }
    free(full);
    unlink(dir.path);
    /* the graph: 8 records of a chain */
    int runs;
    CHECK_OK(jz_graph_try(dir.path, &runs));
    CHECK_EQ(runs, 8);
    full = jfile_read(dir.path, &n);
    rec = 8 + 12;
    CHECK_EQ(n, 32 + 8 * rec);
    lost = (unsigned char*)malloc(n);
    memcpy(lost, full, n);
    memset(lost + n - 2 * rec, 0, 2 * rec);
    jfile_write(dir.path, lost, n);
    CHECK_OK(jz_graph_try(dir.path, &runs));
    CHECK_EQ(runs, 2);
    jz_check_file(dir.path, full, n);
    free(lost);
    for (size_t i = 0; i < sizeof tails / sizeof tails[0]; i++) {
        for (int junk = 0; junk < 2; junk++) {
            unsigned char* b = jz_with_tail(full, n, tails[i], junk);
            jfile_write(dir.path, b, n + tails[i] + (size_t)junk);
            batch_result r = jz_graph_try(dir.path, &runs);
            CHECK_EQ(runs, 0);
            if (junk) { CHECK_EQ(r, BATCH_ERR_CORRUPT); jz_check_file(dir.path, b, n + tails[i] + 1); }
            else { CHECK_OK(r); jz_check_file(dir.path, full, n); }
            free(b);
        }
    }
    free(full);
    jdir_remove(&dir);
}

#define JOURNAL_TESTS \
    { "journal_zero_tail", test_journal_zero_tail }, \
    { "journal_map_failed_counts", test_journal_map_failed_counts }, \
    { "journal_map_rerun_finished", test_journal_map_rerun_finished }, \
    { "journal_map_crash_unordered", test_journal_map_crash_unordered }, \
    { "journal_map_crash_ordered", test_journal_map_crash_ordered }, \
    { "journal_map_crash_buffered", test_journal_map_crash_buffered }, \
    { "journal_graph_crash", test_journal_graph_crash }, \
    { "journal_graph_resume", test_journal_graph_resume }, \
    { "journal_corrupt", test_journal_corrupt }, \
    { "journal_map_ranges", test_journal_map_ranges }, \
    { "journal_io_faults", test_journal_io_faults }, \
    { "journal_bad_input", test_journal_bad_input }, \
    JOURNAL_WIN32_TESTS
