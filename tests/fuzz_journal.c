/* fuzz_journal.c - libFuzzer target: the journal reader. The first byte picks the job (an
   unordered map, an ordered map, a graph; rerun_failed or not), the rest is the journal file,
   served from memory through the I/O hooks. Opening must never crash, hang or leak; a journal
   that is accepted must give a run in which no item or task runs twice and nothing journaled
   runs again, the counts must add up, and a second run on the journal the first one left must
   run nothing at all.
   Build: make fuzz (clang -fsanitize=fuzzer,address,undefined). Seeds: tests/corpus/fuzz_journal
   (valid journals of each job, written by this file built with -DFUZZ_JOURNAL_SEEDS). */
#define _POSIX_C_SOURCE 200809L
#define BATCH_STATIC
#define BATCH_IMPLEMENTATION
#include "../batch.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void die(const char* why) { fprintf(stderr, "fuzz_journal: %s\n", why); abort(); }

/* ---- a file in memory ---- */
typedef struct memfile { unsigned char* b; size_t n, cap; } memfile;
static int m_open(void* u, const char* path, intptr_t* h) { (void)u; (void)path; *h = 1; return 0; }
static int m_read(void* u, intptr_t h, void* buf, size_t n, uint64_t off, size_t* done) {
    memfile* f = (memfile*)u;
    (void)h;
    size_t k = off >= f->n ? 0 : (f->n - (size_t)off < n ? f->n - (size_t)off : n);
    if (k) memcpy(buf, f->b + off, k);
    *done = k;
    return 0;
}
static int m_write(void* u, intptr_t h, const void* buf, size_t n, uint64_t off, size_t* done) {
    memfile* f = (memfile*)u;
    (void)h;
    if (off + n > f->cap) {
        size_t c = f->cap ? f->cap : 256;
        while (c < off + n) c *= 2;
        unsigned char* b = (unsigned char*)realloc(f->b, c);
        if (!b) return ENOSPC;
        f->b = b;
        f->cap = c;
    }
    if (off > f->n) memset(f->b + f->n, 0, (size_t)off - f->n);
    memcpy(f->b + off, buf, n);
    if (off + n > f->n) f->n = (size_t)off + n;
    *done = n;
    return 0;
}
static int m_sync(void* u, intptr_t h) { (void)u; (void)h; return 0; }
static int m_truncate(void* u, intptr_t h, uint64_t size) {
    memfile* f = (memfile*)u;
    (void)h;
    if (size > f->n) return EINVAL;
    f->n = (size_t)size;
    return 0;
}
static int m_size(void* u, intptr_t h, uint64_t* size) { (void)h; *size = ((memfile*)u)->n; return 0; }
static void m_close(void* u, intptr_t h) { (void)u; (void)h; }

/* ---- the jobs ---- */
enum { N = 60, BS = 10, TASKS = 20 };
static unsigned char ran[N];

static int item(batch_ctx* ctx, const batch_item* it, void* res, void* u) {
    (void)ctx; (void)u;
    if (ran[it->index]++) die("an item ran twice");
    *(uint64_t*)res = it->index + 1;
    return it->index % 9 == 4;
}
static void init(void* acc, void* u) { (void)u; *(uint64_t*)acc = 0; }
static void fold(void* acc, const batch_item* it, const void* res, void* u) { (void)it; (void)u; *(uint64_t*)acc += *(const uint64_t*)res; }
static void combine(void* acc, const void* o, void* u) { (void)u; *(uint64_t*)acc += *(const uint64_t*)o; }

static int task(batch_ctx* ctx, void* u) {
    (void)ctx;
    size_t i = (size_t)(uintptr_t)u;
    if (ran[i]++) die("a task ran twice");
    return i % 7 == 3;
}

/* Runs job kind (0 unordered map, 1 ordered map, 2 graph) on the journal in f; *nran = items or
   tasks that ran. */
static batch_result run(int kind, int rerun, memfile* f, size_t* nran) {
    batch_journal_io io = { m_open, m_read, m_write, m_sync, m_truncate, m_size, m_close, f };
    batch_journal_desc jd;
    memset(&jd, 0, sizeof jd);
    jd.path = "memory";
    jd.io = &io;
    jd.rerun_failed = rerun;
    batch_pool* pool = NULL;
    if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = BATCH_WORKERS_INLINE }) != BATCH_OK) die("pool");
    memset(ran, 0, sizeof ran);
    batch_result r;
    if (kind < 2) {
        batch_map_desc d;
        memset(&d, 0, sizeof d);
        d.count = N; d.item_fn = item; d.batch_size = BS; d.error_threshold = 0.15;
        d.result_size = d.acc_size = sizeof(uint64_t);
        d.init_fn = init; d.fold_fn = fold; d.combine_fn = combine;
        d.ordered = kind;
        d.journal = jd;
        batch_map_summary s;
        uint64_t acc = 0;
        r = batch_map_run(pool, &d, &s, &acc);
        if (r == BATCH_OK || r == BATCH_PARTIAL || r == BATCH_ERR_FAILED) {
            size_t k = 0;
            for (size_t i = 0; i < N; i++) k += ran[i];
            if (s.items != N || s.succeeded + s.failed != N) die("map counts");
            if (s.items - s.resumed_items != k) die("map: ran + resumed != items");
        }
    } else {
        batch_graph* g = NULL;
        if (batch_graph_create(&g, NULL) != BATCH_OK) die("graph");
        batch_task t[TASKS];
        for (size_t i = 0; i < TASKS; i++) {
            if (batch_graph_add(g, &(batch_task_desc){ .fn = task, .user_data = (void*)(uintptr_t)i }, &t[i]) != BATCH_OK) die("add");
            if (i >= 3 && batch_task_precede(g, t[i / 3], t[i]) != BATCH_OK) die("edge");
        }
        batch_run_desc rd;
        memset(&rd, 0, sizeof rd);
        rd.journal = jd;
        batch_job_summary s;
        r = batch_graph_run(pool, g, &rd, &s);
        if (r == BATCH_OK || r == BATCH_PARTIAL || r == BATCH_ERR_FAILED) {
            size_t k = 0;
            for (size_t i = 0; i < TASKS; i++) k += ran[i];
            if (s.completed + s.failed + s.skipped + s.cancelled != TASKS) die("graph counts");
            if (k > TASKS - s.resumed) die("graph: a resumed task ran");
        }
        batch_graph_destroy(g);
    }
    batch_pool_destroy(pool);
    *nran = 0;
    for (size_t i = 0; i < N; i++) *nran += ran[i];
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    int kind = data[0] % 3, rerun = (data[0] / 3) % 2;
    memfile f = { NULL, 0, 0 };
    if (size > 1) {
        f.b = (unsigned char*)malloc(size - 1);
        if (!f.b) return 0;
        memcpy(f.b, data + 1, size - 1);
        f.n = f.cap = size - 1;
    }
    size_t nran = 0;
    batch_result r = run(kind, rerun, &f, &nran);
    if (r == BATCH_OK || r == BATCH_PARTIAL || r == BATCH_ERR_FAILED) {
        /* the journal the run left is whole: a resume runs nothing */
        batch_result r2 = run(kind, 0, &f, &nran);
        if (r2 != r && !(rerun && (r2 == BATCH_PARTIAL || r2 == BATCH_ERR_FAILED))) die("a resume changed the result");
        if (nran) die("a resume of a finished journal ran work");
    } else if (r != BATCH_ERR_CORRUPT && r != BATCH_ERR_MISMATCH) {
        die("unexpected result");
    }
    free(f.b);
    return 0;
}

#if defined(FUZZ_JOURNAL_SEEDS)
/* Writes seeds: for each job, the journal of a whole run and of one cut half-way. */
int main(int argc, char** argv) {
    if (argc < 2) return 2;
    for (int kind = 0; kind < 3; kind++) {
        memfile f = { NULL, 0, 0 };
        size_t nran;
        if (run(kind, 0, &f, &nran) == BATCH_ERR_CORRUPT) return 1;
        for (int half = 0; half < 2; half++) {
            char path[512];
            snprintf(path, sizeof path, "%s/seed_%d_%s", argv[1], kind, half ? "half" : "whole");
            FILE* out = fopen(path, "wb");
            if (!out) return 1;
            unsigned char k = (unsigned char)kind;
            fwrite(&k, 1, 1, out);
            fwrite(f.b, 1, half ? 32 + (f.n - 32) / 2 : f.n, out);
            fclose(out);
        }
        free(f.b);
    }
    return 0;
}
#endif
