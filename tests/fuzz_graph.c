/* fuzz_graph.c - libFuzzer target: graph building, validation and runs driven by random bytes,
   checked against a reference model.

   Each input is a little program of operations on two graphs (so that foreign handles occur):
   add a task (named or not), add an edge between two handles (valid, self, out of range, zero,
   or from the other graph), validate, run on an inline pool. The reference keeps the accepted
   edges; validate must report a cycle exactly when a DFS finds one, and the cycle it names must
   be a real cycle; a run must run every task once, after its predecessors; a rejected call must
   leave the graph as it was.
   Build: make fuzz (clang -fsanitize=fuzzer,address,undefined). */
#define _POSIX_C_SOURCE 200809L
#define BATCH_STATIC
#define BATCH_IMPLEMENTATION
#include "../batch.h"
#include <stdlib.h>
#include <string.h>

#define MAXT 48
#define MAXE 256

typedef struct model {
    batch_graph* g;
    batch_task t[MAXT];
    int n;
    int ea[MAXE], eb[MAXE], ne;
    int ran[MAXT];
    int order[MAXT], nrun;
} model;

static model M[2];

static void die(const char* why) { fprintf(stderr, "fuzz_graph: %s\n", why); abort(); }

/* DFS cycle check on the reference edges. */
static int color[MAXT];
static int dfs(const model* m, int v) {
    color[v] = 1;
    for (int k = 0; k < m->ne; k++) {
        if (m->ea[k] != v) continue;
        int w = m->eb[k];
        if (color[w] == 1) return 1;
        if (color[w] == 0 && dfs(m, w)) return 1;
    }
    color[v] = 2;
    return 0;
}
static int has_cycle(const model* m) {
    memset(color, 0, sizeof color);
    for (int v = 0; v < m->n; v++) if (color[v] == 0 && dfs(m, v)) return 1;
    return 0;
}
static int has_edge(const model* m, int a, int b) {
    for (int k = 0; k < m->ne; k++) if (m->ea[k] == a && m->eb[k] == b) return 1;
    return 0;
}

/* Tasks are named "t<i>"; unnamed ones appear as "#<i+1>" in messages. */
static int parse_label(const char* s, int* idx, const char** end) {
    char* e;
    if (s[0] == 't') { long v = strtol(s + 1, &e, 10); if (e == s + 1) return 0; *idx = (int)v; *end = e; return 1; }
    if (s[0] == '#') { long v = strtol(s + 1, &e, 10); if (e == s + 1) return 0; *idx = (int)v - 1; *end = e; return 1; }
    return 0;
}
static void check_cycle_msg(const model* m, const char* msg) {
    if (strncmp(msg, "cycle: ", 7) != 0) die("cycle message format");
    const char* p = msg + 7;
    int first, prev, cur, steps = 0;
    if (!parse_label(p, &first, &p)) die("cycle message: first label");
    prev = first;
    while (!strncmp(p, " -> ", 4)) {
        if (!parse_label(p + 4, &cur, &p)) return;   /* cut by the message size: nothing more to check */
        if (prev < 0 || prev >= m->n || cur < 0 || cur >= m->n || !has_edge(m, prev, cur)) die("named cycle has a non-edge");
        prev = cur;
        steps++;
    }
    if (*p == 0 && (prev != first || steps < 2)) die("named cycle does not close");
}

static int fuzz_task(batch_ctx* ctx, void* user) {
    model* m = (model*)user;
    int i = (int)batch_ctx_task(ctx).id - 1;
    for (int k = 0; k < m->ne; k++) if (m->eb[k] == i && !m->ran[m->ea[k]]) die("task ran before a predecessor");
    m->ran[i]++;   /* attempts: a failing task may be retried */
    return (i % 7 == 3) ? 1 : 0;   /* some fail: their dependents are skipped, not run */
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    batch_pool* pool;
    if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = BATCH_WORKERS_INLINE }) != BATCH_OK) die("pool");
    memset(M, 0, sizeof M);
    for (int k = 0; k < 2; k++) if (batch_graph_create(&M[k].g, NULL) != BATCH_OK) die("create");
    size_t i = 0;
    while (i + 3 <= size) {
        uint8_t op = data[i], x = data[i + 1], y = data[i + 2];
        i += 3;
        model* m = &M[op & 1];
        model* other = &M[!(op & 1)];
        if (op == 0xfe) {   /* clear: an empty graph; the old handles must be refused */
            batch_task old = m->n ? m->t[0] : (batch_task){ 1, 1 };
            if (batch_graph_clear(m->g) != BATCH_OK || batch_graph_size(m->g) != 0) die("clear");
            if (m->n && batch_task_precede(m->g, old, old) != BATCH_ERR_INVALID) die("a handle from before the clear accepted");
            m->n = 0;
            m->ne = 0;
            continue;
        }
        switch ((op >> 1) % 5) {
            case 0: {   /* add a task */
                if (m->n >= MAXT) break;
                char name[16];
                snprintf(name, sizeof name, "t%d", m->n);
                batch_task t;
                if (batch_graph_add(m->g, &(batch_task_desc){ .fn = fuzz_task, .user_data = m, .name = (x & 1) ? name : NULL,
                                                              .max_retries = y & 1 }, &t) != BATCH_OK) die("add");
                m->t[m->n++] = t;
                break;
            }
            case 1:
            case 2: {   /* an edge; sometimes a bad handle */
                if (m->ne >= MAXE) break;
                batch_task a = { 0, 0 }, b = { 0, 0 };
                int ia = m->n ? x % (m->n + 2) : 0, ib = m->n ? y % (m->n + 2) : 0;
                int bad = ia >= m->n || ib >= m->n;
                if (ia < m->n) a = m->t[ia];
                else if (other->n) a = other->t[x % other->n];
                if (ib < m->n) b = m->t[ib];
                else b.id = (uint32_t)(m->n + 5), b.tag = m->n ? m->t[0].tag : 0;
                size_t before = batch_graph_size(m->g);
                batch_result r = batch_task_precede(m->g, a, b);
                if (batch_graph_size(m->g) != before) die("precede changed the task count");
                if (bad) { if (r != BATCH_ERR_INVALID) die("bad handle accepted"); break; }
                if (ia == ib) { if (r != BATCH_ERR_CYCLE) die("self-edge accepted"); break; }
                if (r != BATCH_OK) die("valid edge refused");
                m->ea[m->ne] = ia;
                m->eb[m->ne] = ib;
                m->ne++;
                break;
            }
            case 3: {   /* validate */
                char msg[256];
                batch_result r = batch_graph_validate(m->g, msg, sizeof msg);
                int cyc = has_cycle(m);
                if ((r == BATCH_ERR_CYCLE) != cyc || (!cyc && r != BATCH_OK)) die("validate disagrees with the DFS");
                if (cyc) check_cycle_msg(m, msg);
                break;
            }
            case 4: {   /* run (inline): every task once, after its predecessors, or refused for a cycle */
                memset(m->ran, 0, sizeof m->ran);
                batch_job_summary s;
                batch_result r = batch_graph_run(pool, m->g, NULL, &s);
                if (has_cycle(m)) { if (r != BATCH_ERR_CYCLE) die("ran a cyclic graph"); break; }
                if (s.total != (uint64_t)m->n) die("summary total");
                if (s.completed + s.failed + s.skipped + s.cancelled != s.total) die("counts do not add up");
                for (int k = 0; k < m->n; k++) {
                    batch_task_info info;
                    if (batch_graph_task_info(m->g, m->t[k], &info) != BATCH_OK) die("task info");
                    if ((info.status == BATCH_TASK_SKIPPED) == (m->ran[k] != 0)) die("skipped task ran, or ran task skipped");
                }
                break;
            }
        }
    }
    for (int k = 0; k < 2; k++) if (batch_graph_destroy(M[k].g) != BATCH_OK) die("destroy");
    batch_pool_destroy(pool);
    return 0;
}
