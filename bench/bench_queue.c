/* bench_queue.c - batch.h's durable queue against a queue kept in SQLite.

   Throughput: jobs per second for push + claim + complete of empty jobs (size 0, priority
   i % 4), measured by the wall clock of the whole run: every process opens its handle, waits at
   a barrier (a pipe the parent closes), does its share and closes its handle; the time runs from
   the barrier's release to the last child's exit (waitpid). Two patterns:
     pcc   each job: push, claim, complete (a producer that is its own consumer: the queue stays
           shallow, at most one queued job per process)
     fill  push the whole share, then claim + complete as many (the queue gets deep)
   Each sample starts from a fresh file created by the parent before the fork; afterwards the
   parent checks that every job is DONE (batch: batch_queue_stats_get; SQLite: count(*)).

   Systems (interleaved: each repetition runs every system once, starting one further each time):
     batch-buffered / batch-process / batch-machine   batch_queue at BATCH_DURABLE_*
                                                      (MACHINE with sync_every = 1)
     sqlite-off / sqlite-normal / sqlite-full         one table in WAL mode at synchronous OFF,
                                                      NORMAL, FULL
   SQLite queue: jobs(id INTEGER PRIMARY KEY, status, priority, payload BLOB, lease_until,
   attempts), an index on (status, priority DESC, id); push = INSERT (autocommit); claim =
   BEGIN IMMEDIATE, SELECT the best queued row, UPDATE it to running (lease 30 s, attempts + 1),
   COMMIT; complete = UPDATE status (autocommit). Statements are prepared once per connection;
   busy_timeout 10 s. Which SQLite level is whose counterpart:
     - sqlite-off for BUFFERED and PROCESS. In WAL mode a commit write()s its frames to the -wal
       file before it returns, so with synchronous=OFF a killed process loses no committed
       transaction, which is PROCESS's promise; a power loss may lose or corrupt the database.
     - sqlite-normal (shown for reference): the same, plus an fsync of the WAL at each
       checkpoint: a power loss keeps the database consistent but may roll back the transactions
       since the last sync. Between PROCESS and MACHINE.
     - sqlite-full for MACHINE: an fsync of the WAL at every commit, like MACHINE's fdatasync per
       record with sync_every = 1.
   The SQLite claim is narrower than batch_queue_claim: it does not look for RUNNING jobs whose
   lease ran out, nor for retry delays (the brief's schema has no such column).

   Listing: a queue of --list-n (10^6) jobs pushed with batch_queue_push_many in chunks of 10^4
   (BUFFERED handle), the first 10% claimed and completed; then batch_queue_list of one page
   (limit 50) at offsets 0, middle and end, for every status and for QUEUED and DONE alone (the
   median of --list-reps calls, ms); the open of that queue from a cold page cache (the file's
   pages dropped with posix_fadvise DONTNEED after an fsync) and from a warm one; the file size.
   A list row's median is of --list-reps calls (21), or of fewer (at least 3) once 1 s is spent.
   Also: the bytes batch.h holds for the open handle (a counting BATCH_MALLOC), and
   batch_queue_compact (keeping, then dropping the finished jobs) with the size and open after it.
   SQLite's "open" is sqlite3_open_v2 + pragmas + the prepared statements + the claim's SELECT
   from a cold page cache: SQLite reads pages on demand, it has no index to rebuild.
   The same for the SQLite table (SELECT ... ORDER BY id LIMIT 50 OFFSET k) as a reference.

   Usage: bench_queue [--quick] [--reps R] [--n N] [--n-sync N] [--list-n N] [--list-reps R]
                      [--procs P[,P...]] [--patterns pcc,fill] [--systems S[,S...]] [--no-list]
                      [--dir DIR] [--sync-dir DIR] [--csv FILE]
   --quick (or BENCH_QUICK=1 in the environment): a few seconds.                            */
#define _POSIX_C_SOURCE 200809L   /* fork, pipe, waitpid, posix_fadvise, clock_gettime */
#include <stddef.h>
#include <stdlib.h>

/* A counting allocator: when a queue's alloc_ctx points to a mem_count, the bytes batch.h holds
   for it (live) and their peak are kept there. Each block carries a 16-byte header with its size. */
typedef struct mem_count { size_t live, peak; } mem_count;
static void* cnt_malloc(size_t sz, void* ctx);
static void* cnt_realloc(void* p, size_t sz, void* ctx);
static void cnt_free(void* p, void* ctx);
#define BATCH_MALLOC(sz, ctx) cnt_malloc((sz), (ctx))
#define BATCH_REALLOC(p, sz, ctx) cnt_realloc((p), (sz), (ctx))
#define BATCH_FREE(p, ctx) cnt_free((p), (ctx))

#define BATCH_IMPLEMENTATION
#include "batch.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TMPFS_MAGIC_ 0x01021994L  /* statfs f_type of tmpfs (linux/magic.h) */
#define MAX_PROCS 16
#define MAX_REPS 64
#define PAGE 50

/* ---- helpers ---------------------------------------------------------------------------------- */
#define CNT_HDR 16u
static void cnt_add(void* ctx, size_t add, size_t sub) {
    mem_count* m = (mem_count*)ctx;
    if (!m) return;
    m->live = m->live + add - sub;
    if (m->live > m->peak) m->peak = m->live;
}
static void* cnt_malloc(size_t sz, void* ctx) {
    unsigned char* b = (unsigned char*)malloc(sz + CNT_HDR);
    if (!b) return NULL;
    memcpy(b, &sz, sizeof sz);
    cnt_add(ctx, sz, 0);
    return b + CNT_HDR;
}
static void* cnt_realloc(void* p, size_t sz, void* ctx) {
    if (!p) return cnt_malloc(sz, ctx);
    unsigned char* b = (unsigned char*)p - CNT_HDR;
    size_t old;
    memcpy(&old, b, sizeof old);
    unsigned char* nb = (unsigned char*)realloc(b, sz + CNT_HDR);
    if (!nb) return NULL;
    memcpy(nb, &sz, sizeof sz);
    cnt_add(ctx, sz, old);
    return nb + CNT_HDR;
}
static void cnt_free(void* p, void* ctx) {
    if (!p) return;
    unsigned char* b = (unsigned char*)p - CNT_HDR;
    size_t old;
    memcpy(&old, b, sizeof old);
    cnt_add(ctx, 0, old);
    free(b);
}

static void die(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_queue: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    _exit(2);   /* also from a forked child: no atexit handlers, no stdio flush of the parent's buffers */
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

typedef struct stats {
    double median, min, max;
    int n;
} stats;

static stats stats_of(const double* v, int n) {
    double s[MAX_REPS];
    stats st = { 0, 0, 0, n };
    if (n <= 0) return st;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    st.min = s[0];
    st.max = s[n - 1];
    st.median = (n & 1) ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    return st;
}

static void unlink_all(const char* path) {
    char buf[4096];
    unlink(path);
    snprintf(buf, sizeof buf, "%s-wal", path);
    unlink(buf);
    snprintf(buf, sizeof buf, "%s-shm", path);
    unlink(buf);
    snprintf(buf, sizeof buf, "%s-journal", path);
    unlink(buf);
}

static int is_tmpfs(const char* dir) {
    struct statfs sf;
    if (statfs(dir, &sf) != 0) die("statfs %s: %s", dir, strerror(errno));
    return (long)sf.f_type == TMPFS_MAGIC_;
}

/* ---- systems ---------------------------------------------------------------------------------- */
typedef enum sys_id {
    SYS_BQ_BUFFERED,
    SYS_BQ_PROCESS,
    SYS_SQL_OFF,
    SYS_SQL_NORMAL,
    SYS_BQ_MACHINE,
    SYS_SQL_FULL,
    SYS_COUNT
} sys_id;
static const char* const sys_names[SYS_COUNT] = {
    "batch-buffered", "batch-process", "sqlite-off", "sqlite-normal", "batch-machine", "sqlite-full",
};
static const char* const sys_labels[SYS_COUNT] = {
    "batch.h BUFFERED", "batch.h PROCESS", "SQLite WAL synchronous=OFF", "SQLite WAL synchronous=NORMAL",
    "batch.h MACHINE (sync_every 1)", "SQLite WAL synchronous=FULL",
};
static int sys_is_sqlite(sys_id s) { return s == SYS_SQL_OFF || s == SYS_SQL_NORMAL || s == SYS_SQL_FULL; }
static int sys_is_sync(sys_id s) { return s == SYS_BQ_MACHINE || s == SYS_SQL_FULL; }

static batch_durability sys_durability(sys_id s) {
    switch (s) {
    case SYS_BQ_BUFFERED: return BATCH_DURABLE_BUFFERED;
    case SYS_BQ_MACHINE: return BATCH_DURABLE_MACHINE;
    default: return BATCH_DURABLE_PROCESS;
    }
}

/* One process's connection to a queue of either kind. */
typedef struct conn {
    sys_id sys;
    batch_queue* q;
    sqlite3* db;
    sqlite3_stmt *ins, *begin, *sel, *claim, *commit, *done, *rollback;
} conn;

static void sql_exec(sqlite3* db, const char* sql) {
    char* err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) die("sqlite: %s: %s", sql, err ? err : "?");
}

static sqlite3_stmt* sql_prep(sqlite3* db, const char* sql) {
    sqlite3_stmt* st = NULL;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        die("sqlite prepare: %s: %s", sql, sqlite3_errmsg(db));
    return st;
}

/* Steps a statement that returns no row, then resets it. */
static void sql_run(sqlite3* db, sqlite3_stmt* st) {
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) die("sqlite step: %s (%d)", sqlite3_errmsg(db), rc);
    sqlite3_reset(st);
}

static sqlite3* sql_open(const char* path, sys_id s) {
    sqlite3* db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        die("sqlite open %s: %s", path, db ? sqlite3_errmsg(db) : "?");
    sqlite3_busy_timeout(db, 10000);
    sql_exec(db, "PRAGMA journal_mode=WAL");
    sql_exec(db, s == SYS_SQL_FULL ? "PRAGMA synchronous=FULL"
                 : s == SYS_SQL_NORMAL ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=OFF");
    return db;
}

static void sql_create(const char* path) {
    sqlite3* db = sql_open(path, SYS_SQL_OFF);
    sql_exec(db, "CREATE TABLE jobs(id INTEGER PRIMARY KEY, status INTEGER NOT NULL, priority INTEGER NOT NULL,"
                 " payload BLOB, lease_until INTEGER NOT NULL, attempts INTEGER NOT NULL)");
    sql_exec(db, "CREATE INDEX jobs_claim ON jobs(status, priority DESC, id)");
    sqlite3_close(db);
}

static batch_queue* bq_open_counted(const char* path, batch_durability d, mem_count* mem) {
    batch_queue_desc qd;
    memset(&qd, 0, sizeof qd);
    qd.path = path;
    qd.durability = d;
    qd.sync_every = 1;
    qd.alloc_ctx = mem;
    batch_queue* q = NULL;
    batch_result r = batch_queue_open(&q, &qd);
    if (r != BATCH_OK) die("batch_queue_open %s: %s", path, batch_result_string(r));
    return q;
}
static batch_queue* bq_open(const char* path, batch_durability d) { return bq_open_counted(path, d, NULL); }

static void conn_open(conn* c, sys_id s, const char* path) {
    memset(c, 0, sizeof *c);
    c->sys = s;
    if (!sys_is_sqlite(s)) {
        c->q = bq_open(path, sys_durability(s));
        return;
    }
    c->db = sql_open(path, s);
    c->ins = sql_prep(c->db, "INSERT INTO jobs(status, priority, payload, lease_until, attempts) VALUES (0, ?1, ?2, 0, 0)");
    c->begin = sql_prep(c->db, "BEGIN IMMEDIATE");
    c->sel = sql_prep(c->db, "SELECT id, payload FROM jobs WHERE status = 0 ORDER BY priority DESC, id LIMIT 1");
    c->claim = sql_prep(c->db, "UPDATE jobs SET status = 1, lease_until = ?1, attempts = attempts + 1 WHERE id = ?2");
    c->commit = sql_prep(c->db, "COMMIT");
    c->rollback = sql_prep(c->db, "ROLLBACK");
    c->done = sql_prep(c->db, "UPDATE jobs SET status = 2, lease_until = 0 WHERE id = ?1");
}

static void conn_close(conn* c) {
    if (c->q) {
        batch_result r = batch_queue_close(c->q);
        if (r != BATCH_OK) die("batch_queue_close: %s", batch_result_string(r));
        return;
    }
    sqlite3_stmt* all[] = { c->ins, c->begin, c->sel, c->claim, c->commit, c->rollback, c->done };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) sqlite3_finalize(all[i]);
    if (sqlite3_close(c->db) != SQLITE_OK) die("sqlite close: %s", sqlite3_errmsg(c->db));
}

static void conn_push(conn* c, int priority) {
    if (c->q) {
        batch_queue_push_desc pd;
        memset(&pd, 0, sizeof pd);
        pd.priority = priority;
        batch_result r = batch_queue_push(c->q, &pd, NULL);
        if (r != BATCH_OK) die("batch_queue_push: %s", batch_result_string(r));
        return;
    }
    sqlite3_bind_int(c->ins, 1, priority);
    sqlite3_bind_zeroblob(c->ins, 2, 0);
    sql_run(c->db, c->ins);
}

/* The claimed job's id, 0 when none is queued. The payload is read (and dropped) by both. */
static uint64_t conn_claim(conn* c) {
    if (c->q) {
        batch_queue_job job;
        batch_result r = batch_queue_claim(c->q, &job);
        if (r == BATCH_ERR_EMPTY) return 0;
        if (r != BATCH_OK) die("batch_queue_claim: %s", batch_result_string(r));
        uint64_t id = job.info.id;
        batch_queue_job_free(c->q, &job);
        return id;
    }
    sql_run(c->db, c->begin);
    int rc = sqlite3_step(c->sel);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(c->sel);
        sql_run(c->db, c->rollback);
        return 0;
    }
    if (rc != SQLITE_ROW) die("sqlite select: %s (%d)", sqlite3_errmsg(c->db), rc);
    uint64_t id = (uint64_t)sqlite3_column_int64(c->sel, 0);
    volatile const void* payload = sqlite3_column_blob(c->sel, 1);
    (void)payload;
    sqlite3_reset(c->sel);
    sqlite3_bind_int64(c->claim, 1, (sqlite3_int64)(wall_ns() + 30000000000u));
    sqlite3_bind_int64(c->claim, 2, (sqlite3_int64)id);
    sql_run(c->db, c->claim);
    sql_run(c->db, c->commit);
    return id;
}

static void conn_complete(conn* c, uint64_t id) {
    if (c->q) {
        batch_result r = batch_queue_complete(c->q, id);
        if (r != BATCH_OK) die("batch_queue_complete %llu: %s", (unsigned long long)id, batch_result_string(r));
        return;
    }
    sqlite3_bind_int64(c->done, 1, (sqlite3_int64)id);
    sql_run(c->db, c->done);
}

/* ---- throughput samples ----------------------------------------------------------------------- */
typedef enum pattern { PAT_PCC, PAT_FILL, PAT_COUNT } pattern;
static const char* const pat_names[PAT_COUNT] = { "pcc", "fill" };
static const char* const pat_labels[PAT_COUNT] = {
    "push, claim, complete per job (shallow queue)", "push the share, then claim + complete it (deep queue)",
};

static long g_empty_claims;   /* claims that found nothing and were retried (summed over children) */

static uint64_t claim_retrying(conn* c, long* empties) {
    for (;;) {
        uint64_t id = conn_claim(c);
        if (id) return id;
        ++*empties;
        sched_yield();
    }
}

static void child_work(sys_id s, const char* path, pattern pat, int share, int first, int ready_fd, int go_fd,
                       int report_fd) {
    conn c;
    conn_open(&c, s, path);
    char b = 'r';
    if (write(ready_fd, &b, 1) != 1) die("child: ready pipe");
    while (read(go_fd, &b, 1) < 0 && errno == EINTR) {}
    long empties = 0;
    if (pat == PAT_PCC) {
        for (int i = 0; i < share; i++) {
            conn_push(&c, (first + i) % 4);
            conn_complete(&c, claim_retrying(&c, &empties));
        }
    } else {
        for (int i = 0; i < share; i++) conn_push(&c, (first + i) % 4);
        for (int i = 0; i < share; i++) conn_complete(&c, claim_retrying(&c, &empties));
    }
    conn_close(&c);
    if (write(report_fd, &empties, sizeof empties) != (ssize_t)sizeof empties) die("child: report pipe");
}

static void prepare_file(sys_id s, const char* path) {
    unlink_all(path);
    if (sys_is_sqlite(s)) sql_create(path);
    else batch_queue_close(bq_open(path, BATCH_DURABLE_PROCESS));
}

static void verify(sys_id s, const char* path, int n) {
    if (sys_is_sqlite(s)) {
        sqlite3* db = sql_open(path, SYS_SQL_OFF);
        sqlite3_stmt* st = sql_prep(db, "SELECT count(*), sum(status = 2), sum(attempts) FROM jobs");
        if (sqlite3_step(st) != SQLITE_ROW) die("sqlite verify: %s", sqlite3_errmsg(db));
        long long total = sqlite3_column_int64(st, 0), done = sqlite3_column_int64(st, 1),
                  attempts = sqlite3_column_int64(st, 2);
        sqlite3_finalize(st);
        sqlite3_close(db);
        if (total != n || done != n || attempts != n)
            die("%s: %lld jobs, %lld done, %lld attempts; expected %d", sys_names[s], total, done, attempts, n);
        return;
    }
    batch_queue* q = bq_open(path, BATCH_DURABLE_PROCESS);
    batch_queue_stats st;
    batch_result r = batch_queue_stats_get(q, &st);
    if (r != BATCH_OK) die("batch_queue_stats_get: %s", batch_result_string(r));
    batch_queue_close(q);
    if (st.total != (uint64_t)n || st.count[BATCH_QUEUE_DONE] != (uint64_t)n)
        die("%s: %llu jobs, %llu done; expected %d", sys_names[s], (unsigned long long)st.total,
            (unsigned long long)st.count[BATCH_QUEUE_DONE], n);
}

/* One sample: jobs per second over `procs` processes. */
static double run_sample(sys_id s, const char* path, pattern pat, int procs, int n) {
    prepare_file(s, path);
    int ready[2], go[2], rep[2];
    if (pipe(ready) || pipe(go) || pipe(rep)) die("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pids[MAX_PROCS];
    int first = 0;
    for (int p = 0; p < procs; p++) {
        int share = n / procs + (p < n % procs);
        pid_t pid = fork();
        if (pid < 0) die("fork: %s", strerror(errno));
        if (pid == 0) {
            close(ready[0]);
            close(go[1]);
            close(rep[0]);
            child_work(s, path, pat, share, first, ready[1], go[0], rep[1]);
            _exit(0);
        }
        pids[p] = pid;
        first += share;
    }
    close(ready[1]);
    close(go[0]);
    close(rep[1]);
    for (int got = 0; got < procs;) {
        char b[MAX_PROCS];
        ssize_t k = read(ready[0], b, (size_t)(procs - got));
        if (k <= 0) die("a child died before the barrier");
        got += (int)k;
    }
    double t0 = now_s();
    close(go[1]);   /* every child's read returns 0: go */
    int failed = 0;
    for (int p = 0; p < procs; p++) {
        int status;
        if (waitpid(pids[p], &status, 0) < 0) die("waitpid: %s", strerror(errno));
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
    double t1 = now_s();
    long e;
    while (read(rep[0], &e, sizeof e) == (ssize_t)sizeof e) g_empty_claims += e;
    close(ready[0]);
    close(rep[0]);
    if (failed) die("%s %s procs=%d: a child failed", sys_names[s], pat_names[pat], procs);
    verify(s, path, n);
    return n / (t1 - t0);
}

/* ---- listing ---------------------------------------------------------------------------------- */
typedef struct row {
    char workload[64];
    const char* system;
    int procs;
    long long n;
    const char* unit;
    stats st;
} row;
static row g_rows[256];
static int g_nrows;

static void add_row(const char* workload, const char* system, int procs, long long n, const char* unit, stats st) {
    if (g_nrows == (int)(sizeof g_rows / sizeof g_rows[0])) die("too many rows");
    row* r = &g_rows[g_nrows++];
    snprintf(r->workload, sizeof r->workload, "%s", workload);
    r->system = system;
    r->procs = procs;
    r->n = n;
    r->unit = unit;
    r->st = st;
}

static stats one(double v) {
    stats st = { v, v, v, 1 };
    return st;
}

static void drop_cache(const char* path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) die("open %s: %s", path, strerror(errno));
    fsync(fd);   /* dirty pages are not dropped */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

static long long file_size(const char* path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

static batch_queue_info g_page[PAGE];

static void list_batch(const char* path, long long n, int reps) {
    long long done = n / 10;
    printf("\nLISTING: batch_queue_list, one page of %d, queue of %lld jobs (%lld done), %s\n", PAGE, n, done, path);
    fflush(stdout);
    unlink_all(path);
    batch_queue* q = bq_open(path, BATCH_DURABLE_BUFFERED);
    enum { CHUNK = 10000 };
    static batch_queue_push_desc jobs[CHUNK];
    double t0 = now_s();
    for (long long i = 0; i < n; i += CHUNK) {
        size_t k = (size_t)(n - i < CHUNK ? n - i : CHUNK);
        for (size_t j = 0; j < k; j++) {
            memset(&jobs[j], 0, sizeof jobs[j]);
            jobs[j].priority = (int)((i + (long long)j) % 4);
        }
        batch_result r = batch_queue_push_many(q, jobs, k, NULL);
        if (r != BATCH_OK) die("batch_queue_push_many: %s", batch_result_string(r));
    }
    double t1 = now_s();
    for (long long i = 0; i < done; i++) {
        batch_queue_job job;
        batch_result r = batch_queue_claim(q, &job);
        if (r != BATCH_OK) die("batch_queue_claim (setup): %s", batch_result_string(r));
        uint64_t id = job.info.id;
        batch_queue_job_free(q, &job);
        if ((r = batch_queue_complete(q, id)) != BATCH_OK) die("batch_queue_complete (setup): %s", batch_result_string(r));
    }
    double t2 = now_s();
    batch_queue_close(q);
    double t3 = now_s();
    printf("  push_many (chunks of %d): %.1f ns/job; claim + complete of %lld jobs at depth %lld (BUFFERED): "
           "%.0f jobs/s; close %.1f ms\n", CHUNK, (t1 - t0) * 1e9 / (double)n, done, n, (double)done / (t2 - t1),
           (t3 - t2) * 1e3);
    add_row("setup_push_many", "batch-buffered", 1, n, "ns/job", one((t1 - t0) * 1e9 / (double)n));
    add_row("setup_claim_complete_deep", "batch-buffered", 1, done, "jobs/s", one((double)done / (t2 - t1)));

    double cold[MAX_REPS], warm[MAX_REPS];
    int open_reps = reps < 9 ? reps : 9;
    for (int r = 0; r < open_reps; r++) {
        drop_cache(path);
        double a = now_s();
        batch_queue* q2 = bq_open(path, BATCH_DURABLE_PROCESS);
        double b = now_s();
        batch_queue_close(q2);
        double c = now_s();
        q2 = bq_open(path, BATCH_DURABLE_PROCESS);
        double d = now_s();
        batch_queue_close(q2);
        cold[r] = (b - a) * 1e3;
        warm[r] = (d - c) * 1e3;
    }
    stats sc = stats_of(cold, open_reps), sw = stats_of(warm, open_reps);
    mem_count mem = { 0, 0 };
    q = bq_open_counted(path, BATCH_DURABLE_PROCESS, &mem);
    size_t mem_open = mem.live, mem_peak = mem.peak;
    batch_queue_stats qs;
    batch_result r = batch_queue_stats_get(q, &qs);
    if (r != BATCH_OK) die("batch_queue_stats_get: %s", batch_result_string(r));
    if (qs.total != (uint64_t)n || qs.count[BATCH_QUEUE_DONE] != (uint64_t)done)
        die("list queue: %llu jobs, %llu done", (unsigned long long)qs.total, (unsigned long long)qs.count[BATCH_QUEUE_DONE]);
    printf("  batch_queue_open: cold page cache %.1f ms (min %.1f, max %.1f), warm %.1f ms; file %lld bytes (%.1f per job)\n",
           sc.median, sc.min, sc.max, sw.median, file_size(path), (double)file_size(path) / (double)n);
    add_row("open_cold", "batch", 1, n, "ms", sc);
    add_row("open_warm", "batch", 1, n, "ms", sw);
    add_row("file_bytes", "batch", 1, n, "bytes", one((double)file_size(path)));
    printf("  memory of the open handle (batch.h's allocations): %.1f MiB (%.1f bytes per job), peak during the open %.1f MiB\n",
           (double)mem_open / 1048576.0, (double)mem_open / (double)n, (double)mem_peak / 1048576.0);
    add_row("handle_bytes", "batch", 1, n, "bytes", one((double)mem_open));
    add_row("handle_peak_bytes", "batch", 1, n, "bytes", one((double)mem_peak));

    struct { const char* name; int status; long long count; } sets[] = {
        { "all", -1, n }, { "queued", BATCH_QUEUE_QUEUED, n - done }, { "done", BATCH_QUEUE_DONE, done },
    };
    printf("  %-8s %14s %14s %14s   (ms per call, median of up to %d: 3 once 1 s is spent; max)\n", "status", "offset 0", "middle", "end", reps);
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
        long long offs[3] = { 0, sets[k].count / 2, sets[k].count - PAGE };
        const char* where[3] = { "off0", "mid", "end" };
        char line[256];
        int used = snprintf(line, sizeof line, "  %-8s", sets[k].name);
        for (int o = 0; o < 3; o++) {
            double v[MAX_REPS], spent = 0;
            int taken = 0;
            for (int i = 0; i < reps && (i < 3 || spent < 1.0); i++, taken++) {
                size_t got = 0;
                double a = now_s();
                r = batch_queue_list(q, sets[k].status, (uint64_t)offs[o], g_page, PAGE, &got);
                double b = now_s();
                if (r != BATCH_OK) die("batch_queue_list: %s", batch_result_string(r));
                if (got != PAGE) die("batch_queue_list %s at %lld: %zu infos", sets[k].name, offs[o], got);
                if (sets[k].status >= 0 && g_page[0].status != (batch_queue_status)sets[k].status)
                    die("batch_queue_list %s: status %d", sets[k].name, (int)g_page[0].status);
                v[i] = (b - a) * 1e3;
                spent += b - a;
            }
            stats st = stats_of(v, taken);
            char name[64];
            snprintf(name, sizeof name, "list_%s_%s", sets[k].name, where[o]);
            add_row(name, "batch", 1, n, "ms", st);
            used += snprintf(line + used, sizeof line - (size_t)used, " %7.3f (%5.2f)", st.median, st.max);
        }
        printf("%s\n", line);
    }
    /* compaction: one record per job, then without the finished ones */
    for (int drop = 0; drop <= 1; drop++) {
        double a = now_s();
        r = batch_queue_compact(q, drop);
        double b = now_s();
        if (r != BATCH_OK) die("batch_queue_compact: %s", batch_result_string(r));
        batch_queue_close(q);
        drop_cache(path);
        double c = now_s();
        q = bq_open(path, BATCH_DURABLE_PROCESS);
        double d = now_s();
        printf("  batch_queue_compact(drop_finished %d): %.1f ms; file %lld bytes (%.1f per job); then a cold open %.1f ms\n",
               drop, (b - a) * 1e3, file_size(path), (double)file_size(path) / (double)n, (d - c) * 1e3);
        add_row(drop ? "compact_drop" : "compact", "batch", 1, n, "ms", one((b - a) * 1e3));
        add_row(drop ? "compact_drop_file_bytes" : "compact_file_bytes", "batch", 1, n, "bytes", one((double)file_size(path)));
        add_row(drop ? "compact_drop_open_cold" : "compact_open_cold", "batch", 1, n, "ms", one((d - c) * 1e3));
    }
    batch_queue_close(q);
    fflush(stdout);
}

/* The same listing over the SQLite table (a reference, not the goal). */
static void list_sqlite(const char* path, long long n, int reps) {
    long long done = n / 10;
    printf("\nLISTING: SQLite, SELECT ... ORDER BY id LIMIT %d OFFSET k, %lld rows (%lld done), %s\n", PAGE, n, done, path);
    fflush(stdout);
    unlink_all(path);
    sql_create(path);
    sqlite3* db = sql_open(path, SYS_SQL_OFF);
    sqlite3_stmt* ins = sql_prep(db, "INSERT INTO jobs(status, priority, payload, lease_until, attempts) VALUES (?1, ?2, ?3, 0, ?4)");
    double t0 = now_s();
    sql_exec(db, "BEGIN");
    /* the same end state as the batch queue's: of the first 4 * done ids, those with priority 3 are done */
    for (long long i = 0; i < n; i++) {
        int prio = (int)(i % 4), is_done = prio == 3 && i < 4 * done;
        sqlite3_bind_int(ins, 1, is_done ? 2 : 0);
        sqlite3_bind_int(ins, 2, prio);
        sqlite3_bind_zeroblob(ins, 3, 0);
        sqlite3_bind_int(ins, 4, is_done);
        sql_run(db, ins);
        if (i % 10000 == 9999) {
            sql_exec(db, "COMMIT");
            sql_exec(db, "BEGIN");
        }
    }
    sql_exec(db, "COMMIT");
    double t1 = now_s();
    sqlite3_finalize(ins);
    sqlite3_close(db);
    printf("  INSERT in transactions of 10000: %.1f ns/row; database %lld bytes (%.1f per row)\n",
           (t1 - t0) * 1e9 / (double)n, file_size(path), (double)file_size(path) / (double)n);
    add_row("setup_insert_tx", "sqlite-off", 1, n, "ns/job", one((t1 - t0) * 1e9 / (double)n));
    add_row("file_bytes", "sqlite", 1, n, "bytes", one((double)file_size(path)));

    double cold[MAX_REPS];
    int open_reps = reps < 9 ? reps : 9;
    for (int r = 0; r < open_reps; r++) {
        char wal[4200];
        snprintf(wal, sizeof wal, "%s-wal", path);
        drop_cache(path);
        if (file_size(wal) > 0) drop_cache(wal);
        double a = now_s();
        conn c;
        conn_open(&c, SYS_SQL_OFF, path);
        if (sqlite3_step(c.sel) != SQLITE_ROW) die("sqlite: no queued row");
        sqlite3_reset(c.sel);
        double b = now_s();
        conn_close(&c);
        cold[r] = (b - a) * 1e3;
    }
    stats sc = stats_of(cold, open_reps);
    printf("  open + prepare + the claim's SELECT, cold page cache: %.2f ms (min %.2f, max %.2f)\n", sc.median, sc.min, sc.max);
    add_row("open_cold", "sqlite", 1, n, "ms", sc);

    db = sql_open(path, SYS_SQL_OFF);
    sqlite3_stmt* all = sql_prep(db, "SELECT id, status, priority, attempts, lease_until, length(payload) FROM jobs "
                                     "ORDER BY id LIMIT ?1 OFFSET ?2");
    sqlite3_stmt* by = sql_prep(db, "SELECT id, status, priority, attempts, lease_until, length(payload) FROM jobs "
                                    "WHERE status = ?3 ORDER BY id LIMIT ?1 OFFSET ?2");
    struct { const char* name; int status; long long count; } sets[] = { { "all", -1, n }, { "queued", 0, n - done }, { "done", 2, done } };
    printf("  %-8s %14s %14s %14s   (ms per query, median of up to %d: 3 once 1 s is spent; max)\n", "status", "offset 0", "middle", "end", reps);
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++) {
        long long offs[3] = { 0, sets[k].count / 2, sets[k].count - PAGE };
        const char* where[3] = { "off0", "mid", "end" };
        char line[256];
        int used = snprintf(line, sizeof line, "  %-8s", sets[k].name);
        sqlite3_stmt* st = sets[k].status < 0 ? all : by;
        for (int o = 0; o < 3; o++) {
            double v[MAX_REPS], spent = 0;
            int taken = 0;
            for (int i = 0; i < reps && (i < 3 || spent < 1.0); i++, taken++) {
                double a = now_s();
                sqlite3_bind_int(st, 1, PAGE);
                sqlite3_bind_int64(st, 2, offs[o]);
                if (sets[k].status >= 0) sqlite3_bind_int(st, 3, sets[k].status);
                int got = 0, rc;
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) got++;
                sqlite3_reset(st);
                double b = now_s();
                if (rc != SQLITE_DONE || got != PAGE) die("sqlite list %s: %d rows (%s)", sets[k].name, got, sqlite3_errmsg(db));
                v[i] = (b - a) * 1e3;
                spent += b - a;
            }
            stats s2 = stats_of(v, taken);
            char name[64];
            snprintf(name, sizeof name, "list_%s_%s", sets[k].name, where[o]);
            add_row(name, "sqlite", 1, n, "ms", s2);
            used += snprintf(line + used, sizeof line - (size_t)used, " %7.3f (%5.2f)", s2.median, s2.max);
        }
        printf("%s\n", line);
    }
    sqlite3_finalize(all);
    sqlite3_finalize(by);
    sqlite3_close(db);
    unlink_all(path);
    fflush(stdout);
}

/* ---- main ------------------------------------------------------------------------------------- */
static int parse_list(const char* s, int* out, int max) {
    int k = 0;
    while (*s && k < max) {
        char* end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || v > MAX_PROCS) die("bad number list: %s", s);
        out[k++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') die("bad number list");
    }
    return k;
}

static const char* need(int argc, char** argv, int* i) {
    if (*i + 1 >= argc) die("%s needs an argument", argv[*i]);
    return argv[++*i];
}

int main(int argc, char** argv) {
    int quick = getenv("BENCH_QUICK") && *getenv("BENCH_QUICK") && strcmp(getenv("BENCH_QUICK"), "0");
    int reps = 0, n = 0, n_sync = 0, list_reps = 0, no_list = 0;
    long long list_n = 0;
    int procs[8] = { 1, 4 }, nprocs = 2;
    int use_pat[PAT_COUNT] = { 1, 1 };
    int use_sys[SYS_COUNT] = { 1, 1, 1, 1, 1, 1 };
    const char *dir = "/tmp", *sync_dir = NULL, *csv_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        if (!strcmp(a, "--quick")) quick = 1;
        else if (!strcmp(a, "--reps")) reps = atoi(need(argc, argv, &i));
        else if (!strcmp(a, "--n")) n = atoi(need(argc, argv, &i));
        else if (!strcmp(a, "--n-sync")) n_sync = atoi(need(argc, argv, &i));
        else if (!strcmp(a, "--list-n")) list_n = atoll(need(argc, argv, &i));
        else if (!strcmp(a, "--list-reps")) list_reps = atoi(need(argc, argv, &i));
        else if (!strcmp(a, "--no-list")) no_list = 1;
        else if (!strcmp(a, "--procs")) nprocs = parse_list(need(argc, argv, &i), procs, 8);
        else if (!strcmp(a, "--patterns") || !strcmp(a, "--systems")) {
            int is_pat = !strcmp(a, "--patterns");
            const char* v = need(argc, argv, &i);
            int cnt = is_pat ? PAT_COUNT : SYS_COUNT;
            const char* const* names = is_pat ? pat_names : sys_names;
            int* use = is_pat ? use_pat : use_sys;
            for (int k = 0; k < cnt; k++) {
                const char* p = strstr(v, names[k]);
                size_t len = strlen(names[k]);
                use[k] = p && (p == v || p[-1] == ',') && (p[len] == 0 || p[len] == ',');
            }
        } else if (!strcmp(a, "--dir")) dir = need(argc, argv, &i);
        else if (!strcmp(a, "--sync-dir")) sync_dir = need(argc, argv, &i);
        else if (!strcmp(a, "--csv")) csv_path = need(argc, argv, &i);
        else {
            fprintf(stderr, "usage: bench_queue [--quick] [--reps R] [--n N] [--n-sync N] [--list-n N] [--list-reps R]\n"
                            "       [--procs P[,P...]] [--patterns pcc,fill] [--systems S[,S...]] [--no-list]\n"
                            "       [--dir DIR] [--sync-dir DIR] [--csv FILE]\n");
            return 2;
        }
    }
    if (!reps) reps = quick ? 3 : 5;
    if (!n) n = quick ? 400 : 20000;
    if (!n_sync) n_sync = quick ? 20 : 500;
    if (!list_n) list_n = quick ? 50000 : 1000000;
    if (!list_reps) list_reps = quick ? 5 : 21;
    if (reps > MAX_REPS || list_reps > MAX_REPS) die("at most %d repetitions", MAX_REPS);
    for (int k = 0; k < nprocs; k++)
        if (n % procs[k] || n_sync % procs[k]) die("--n and --n-sync must be multiples of every process count");

    int dir_tmpfs = is_tmpfs(dir);
    if (!sync_dir) sync_dir = dir_tmpfs ? "/var/tmp" : dir;
    int sync_tmpfs = is_tmpfs(sync_dir);
    printf("bench_queue: batch.h %s, SQLite %s; %ld CPUs online; reps %d; %d jobs per sample (MACHINE/FULL: %d)\n",
           BATCH_VERSION_STRING, sqlite3_libversion(), sysconf(_SC_NPROCESSORS_ONLN), reps, n, n_sync);
    printf("files: %s (%s); MACHINE and FULL: %s (%s)%s\n", dir, dir_tmpfs ? "tmpfs" : "not tmpfs", sync_dir,
           sync_tmpfs ? "tmpfs" : "not tmpfs", sync_tmpfs ? " -- fsync is free there, those rows mean nothing" : "");
    fflush(stdout);

    char path[4096];
    double samples[PAT_COUNT][8][SYS_COUNT][MAX_REPS];
    int nsamp[PAT_COUNT][8][SYS_COUNT];
    memset(nsamp, 0, sizeof nsamp);
    double t_start = now_s();
    for (int pat = 0; pat < PAT_COUNT; pat++) {
        if (!use_pat[pat]) continue;
        for (int k = 0; k < nprocs; k++) {
            printf("%s, %d process%s:", pat_names[pat], procs[k], procs[k] > 1 ? "es" : "");
            fflush(stdout);
            for (int r = 0; r < reps; r++) {
                for (int j = 0; j < SYS_COUNT; j++) {
                    sys_id s = (sys_id)((j + r) % SYS_COUNT);
                    if (!use_sys[s]) continue;
                    snprintf(path, sizeof path, "%s/bench_queue.%d.%s", sys_is_sync(s) ? sync_dir : dir, (int)getpid(),
                             sys_names[s]);
                    double v = run_sample(s, path, (pattern)pat, procs[k], sys_is_sync(s) ? n_sync : n);
                    samples[pat][k][s][nsamp[pat][k][s]++] = v;
                    unlink_all(path);
                }
                printf(" %d", r + 1);
                fflush(stdout);
            }
            printf("\n");
        }
    }
    double t_tp = now_s();

    /* the throughput table */
    printf("\nTHROUGHPUT: jobs/s, median of %d (min-max); wall time of all processes from the barrier\n", reps);
    for (int pat = 0; pat < PAT_COUNT; pat++) {
        if (!use_pat[pat]) continue;
        printf("\n%s: %s\n", pat_names[pat], pat_labels[pat]);
        printf("  %-32s", "system");
        for (int k = 0; k < nprocs; k++) printf("   %d proc%s %-17s", procs[k], procs[k] > 1 ? "s" : " ", "");
        printf("\n");
        for (int s = 0; s < SYS_COUNT; s++) {
            if (!use_sys[s]) continue;
            printf("  %-32s", sys_labels[s]);
            for (int k = 0; k < nprocs; k++) {
                stats st = stats_of(samples[pat][k][s], nsamp[pat][k][s]);
                char w[64];
                snprintf(w, sizeof w, "%.0f (%.0f-%.0f)", st.median, st.min, st.max);
                printf("   %-25s", w);
                char name[64];
                snprintf(name, sizeof name, "%s", pat_names[pat]);
                add_row(name, sys_names[s], procs[k], sys_is_sync((sys_id)s) ? n_sync : n, "jobs/s", st);
            }
            printf("\n");
        }
        struct { sys_id a, b; const char* label; } ratios[] = {
            { SYS_BQ_BUFFERED, SYS_SQL_OFF, "BUFFERED / sqlite OFF" },
            { SYS_BQ_PROCESS, SYS_SQL_OFF, "PROCESS / sqlite OFF" },
            { SYS_BQ_MACHINE, SYS_SQL_FULL, "MACHINE / sqlite FULL" },
        };
        for (size_t i = 0; i < sizeof ratios / sizeof ratios[0]; i++) {
            if (!use_sys[ratios[i].a] || !use_sys[ratios[i].b]) continue;
            printf("  %-32s", ratios[i].label);
            for (int k = 0; k < nprocs; k++) {
                double x = stats_of(samples[pat][k][ratios[i].a], nsamp[pat][k][ratios[i].a]).median,
                       y = stats_of(samples[pat][k][ratios[i].b], nsamp[pat][k][ratios[i].b]).median;
                char w[64];
                snprintf(w, sizeof w, "%.2fx", y > 0 ? x / y : 0);
                printf("   %-25s", w);
            }
            printf("\n");
        }
    }
    if (g_empty_claims) printf("\n(claims that found the queue empty and were retried: %ld)\n", g_empty_claims);
    fflush(stdout);

    if (!no_list) {
        snprintf(path, sizeof path, "%s/bench_queue.%d.list.sqlite", dir, (int)getpid());
        list_sqlite(path, list_n, list_reps);
        snprintf(path, sizeof path, "%s/bench_queue.%d.list", dir, (int)getpid());
        list_batch(path, list_n, list_reps);
        unlink_all(path);
    }
    printf("\ntime: throughput %.1f s, listing %.1f s\n", t_tp - t_start, now_s() - t_tp);

    if (csv_path) {
        FILE* f = fopen(csv_path, "w");
        if (!f) die("cannot write %s", csv_path);
        fprintf(f, "workload,system,procs,n,unit,median,min,max\n");
        for (int i = 0; i < g_nrows; i++)
            fprintf(f, "%s,%s,%d,%lld,%s,%.6g,%.6g,%.6g\n", g_rows[i].workload, g_rows[i].system, g_rows[i].procs,
                    g_rows[i].n, g_rows[i].unit, g_rows[i].st.median, g_rows[i].st.min, g_rows[i].st.max);
        fclose(f);
        printf("wrote %s\n", csv_path);
    }
    return 0;
}
