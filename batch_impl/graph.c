/* graph.c - job graphs: build (task blocks, an edge list, an stb_ds name map), validate
   (bucketed, de-duplicated edges in CSR form, Kahn's algorithm, a named cycle on failure),
   and run as a job on the pool:
   in-degree counters, the first ready successor runs in place (iteratively: a chain of any
   length uses constant stack), failure policies, retries through the delayed queue,
   cooperative cancellation and deadlines, a concurrency limit, data flow between tasks. */
#ifndef BATCH__GRAPH_C
#define BATCH__GRAPH_C
#ifndef BATCH_SINGLE_FILE
#  include "journal.c"
#endif

enum { BATCH__POISON_SKIP = 1, BATCH__POISON_CANCEL = 2 };
#define BATCH__NO_NODE UINT32_MAX
enum { BATCH__NF_JITTER = 1,      /* retries with jitter */
       BATCH__NF_SLOT = 2 };      /* resumed from the park queue with a concurrency slot */
/* What a node in a ran list stands for: a whole task, or the first or the last task of a run
   of tasks that one worker ran back to back (each starting at the previous one's end). */
enum { BATCH__SEG_TASK = 0, BATCH__SEG_FIRST = 1, BATCH__SEG_LAST = 2 };
#define BATCH__LEVEL_RUN 0xff    /* a task without its own priority takes the run's */

typedef struct batch__gnode {
    batch_task_fn fn;
    void* user;
    char* name;
    uint32_t retry_base_us, retry_max_us;   /* microseconds keep a task at two cache lines */
    struct batch__job* job;
    char* msg;
    _Atomic(void*) output;
    uint64_t t_start, t_end;      /* ticks (batch__ticks); g->tb makes them ns */
    uint64_t retry_due;           /* a retry waits until then (0: not waiting) */
    uint32_t epoch;               /* the run this node's per-run fields belong to */
    _Atomic uint32_t pending;     /* predecessors not finished in this run */
    uint32_t next_local;          /* park queue / local overflow list link */
    int32_t error;
    uint16_t max_retries;
    uint16_t attempts;
    int16_t worker;
    uint8_t level;
    uint8_t flags;                /* BATCH__NF_* */
    uint8_t seg;                  /* in a ran list: BATCH__SEG_* (batch__ran_link) */
    uint8_t journaled;            /* this run: the outcome the journal recorded (not run again) */
    _Atomic uint8_t status;
    _Atomic uint8_t poison;       /* BATCH__POISON_*: set by predecessors before they release */
    uint32_t idx;                 /* this node's index (in the struct's tail padding: 112 bytes) */
} batch__gnode;

typedef struct batch__name_entry { char* key; uint32_t value; } batch__name_entry;

struct batch_graph {
    void* alloc_ctx;
    char* name;
    uint32_t tag;
    batch__gnode** blocks;        /* the tasks, BATCH__NODE_BLOCK to a block (see batch__node) */
    uint32_t nnodes, nblocks, blocks_cap, block0_cap;
    uint64_t* edges;              /* from << 32 | to: edges added since the last finalize */
    size_t nedges, edges_cap;
    batch__name_entry* names;     /* stb_ds string map (keys are the nodes' own name copies) */
    bool dirty;                   /* edges or nodes changed since the last finalize */
    bool has_cycle;
    bool backward;                /* an edge from a task to one added before it: cycles possible */
    uint32_t* succ_off;           /* CSR, n + 1 offsets */
    uint32_t* succ;
    uint32_t* pred_off;
    uint32_t* pred;
    uint32_t* roots;
    size_t nroots, csr_n;
    uint32_t* spare[4];           /* after batch_graph_clear: the old CSR arrays, for the next one */
    size_t spare_n, spare_e;      /* their room: offsets for spare_n tasks, spare_e edges */
    char cycle_msg[256];
    _Atomic int busy;             /* a job exists that was not waited for */
    _Atomic int has_strings;      /* a task name or message was allocated: else no pass frees them */
    uint32_t epoch;               /* runs so far */
    batch__timebase tb;           /* the last waited run's ticks to ns */
};

/* The task store: blocks of BATCH__NODE_BLOCK nodes that never move once full (28 MiB each,
   on huge pages where the platform has them: see batch__huge_hint). Block 0 grows by doubling
   up to BATCH__NODE_SMALL nodes, so a small graph stays small, then jumps to a full block.
   A single array grown by realloc pays for the copies, and mremap splits huge pages into 4 KiB
   ones whose every first touch is a page fault. A block is its own mapping, and only the 2
   MiB-aligned windows inside it get huge pages: 14 of them in 28 MiB lose at most one, where
   smaller blocks lose a larger share of the graph to 4 KiB pages (bench/README.md: chain_1e7). */
#define BATCH__NODE_BITS 18u
#define BATCH__NODE_BLOCK ((uint32_t)1 << BATCH__NODE_BITS)
#define BATCH__NODE_SMALL ((uint32_t)1 << 14)
BATCH__INLINE batch__gnode* batch__node(const batch_graph* g, uint32_t i) {
    return &g->blocks[i >> BATCH__NODE_BITS][i & (BATCH__NODE_BLOCK - 1)];
}
/* Room for one more node: false when out of memory (nothing changed). */
BATCH__PRIVATE bool batch__node_reserve(batch_graph* g) {
    uint64_t cap = g->nblocks > 1 ? (uint64_t)g->nblocks * BATCH__NODE_BLOCK : g->block0_cap;
    if (g->nnodes < cap) return true;
    void* ctx = g->alloc_ctx;
    if (g->nblocks == 1 && g->block0_cap < BATCH__NODE_BLOCK) {
        uint32_t ncap = g->block0_cap < BATCH__NODE_SMALL ? g->block0_cap * 2 : BATCH__NODE_BLOCK;
        batch__gnode* b = (batch__gnode*)batch__grow_block(g->blocks[0], g->nnodes, ncap, sizeof(batch__gnode), ctx);
        if (!b) return false;
        g->blocks[0] = b;
        g->block0_cap = ncap;
        return true;
    }
    if (g->nblocks == g->blocks_cap) {
        uint32_t ncap = g->blocks_cap ? 2 * g->blocks_cap : 4;
        batch__gnode** bl = (batch__gnode**)BATCH_REALLOC(g->blocks, (size_t)ncap * sizeof(batch__gnode*), ctx);
        if (!bl) return false;
        g->blocks = bl;
        g->blocks_cap = ncap;
    }
    uint32_t n = g->nblocks ? BATCH__NODE_BLOCK : 16;
    batch__gnode* b = (batch__gnode*)BATCH__BIG_MALLOC((size_t)n * sizeof(batch__gnode), ctx);
    if (!b) return false;
    g->blocks[g->nblocks++] = b;
    if (n < BATCH__NODE_BLOCK) g->block0_cap = n;
    return true;
}
BATCH__PRIVATE void batch__node_free_all(batch_graph* g) {
    for (uint32_t i = 0; i < g->nblocks; i++) BATCH_FREE(g->blocks[i], g->alloc_ctx);
    if (g->blocks) BATCH_FREE(g->blocks, g->alloc_ctx);
    g->blocks = NULL;
    g->nnodes = g->nblocks = g->blocks_cap = g->block0_cap = 0;
}
/* Room for n more edges: false when out of memory (nothing changed). A large array grows by
   copying into fresh memory, not by realloc, for the same reason as the task blocks. */
BATCH__PRIVATE bool batch__edge_reserve(batch_graph* g, size_t n) {
    if (g->nedges + n <= g->edges_cap) return true;
    if (n > SIZE_MAX / 16 - g->nedges) return false;
    size_t ncap = g->edges_cap < 64 ? 64 : 2 * g->edges_cap;
    if (ncap < g->nedges + n) ncap = g->nedges + n;
    uint64_t* e = (uint64_t*)batch__grow_block(g->edges, g->nedges, ncap, sizeof(uint64_t), g->alloc_ctx);
    if (!e) return false;
    g->edges = e;
    g->edges_cap = ncap;
    return true;
}
BATCH__PRIVATE void batch__edge_free_all(batch_graph* g) {
    if (g->edges) BATCH_FREE(g->edges, g->alloc_ctx);
    g->edges = NULL;
    g->nedges = g->edges_cap = 0;
}

/* One line per worker (and one shared line for other threads): written without contention. */
typedef struct batch__job_stats {
    BATCH__ALIGNED _Atomic uint64_t completed;
    BATCH__AL8 _Atomic uint64_t failed, skipped, cancelled, retried, busy, running;   /* busy: ticks */
    BATCH__AL8 _Atomic uint64_t last_end;    /* the latest end (ticks) of a task run here (task times on) */
    _Atomic uint32_t ran;         /* task times on: the tasks that ran and settled here, latest
                                     first, linked through next_local (free once settled) */
    _Atomic int nested;           /* a worker line: tasks of this job ran inside one of its tasks
                                     (a wait that helped), or a task that ran elsewhere settled
                                     here: its tasks may overlap in time */
    /* a worker line: the open run of back-to-back tasks (batch__ran_link); the worker's only */
    uint32_t seg_first, seg_last;
    uint64_t seg_end;
    bool seg_open;
} batch__job_stats;

/* An attempt of a task that a retry followed (task times on), kept for the reports (the trace):
   pushed on its job's list by the thread that runs the retry, freed with the job. */
typedef struct batch__gtry {
    struct batch__gtry* next;
    uint64_t t_start, t_end, t_next;   /* ticks: the attempt, and its retry's start */
    uint32_t idx;
    int32_t error;
    int worker, attempt;
    char msg[];                   /* its message; "" when it had none */
} batch__gtry;

/* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding): stop is on its own cache line */
typedef struct batch__job {
    batch__job_head head;         /* first: operations and progress */
    batch_pool* pool;
    batch_graph* g;
    void* raw;
    batch_counter latch;          /* tasks not finished */
    BATCH__ALIGNED _Atomic int stop;
    _Atomic int cut;              /* a stop cut a retry short */
    uint32_t epoch;
    uint64_t launch_ns, deadline_ns;
    uint64_t launch_tick;         /* launch_ns on the task clock */
    batch_failure_policy policy;
    int max_conc;
    uint8_t level;
    bool times;
    bool tsc;                     /* task times in TSC ticks (else ticks are ns) */
    batch_result launch_error;
    /* concurrency limit */
    batch__mutex park_lock;
    int running;
    uint32_t park_head[BATCH__LEVELS], park_tail[BATCH__LEVELS];   /* parked tasks, FIFO per priority */
    /* results, filled by the first wait */
    bool done;
    batch_job_summary summary;
    batch__journal* jn;           /* NULL: no journal */
    bool rerun_failed;
    uint64_t nresumed;
    int nstats;
    batch__job_stats* stats;      /* nstats lines: workers, then the shared one */
    _Atomic(batch__gtry*) tries;  /* the attempts before a retry, latest first */
} batch__job;


/* ---- strings ------------------------------------------------------------------------------ */
BATCH_API const char* batch_task_status_string(batch_task_status s) {
    static const char* const names[] = { "pending", "queued", "running", "completed", "failed", "skipped", "cancelled" };
    return ((unsigned)s < sizeof names / sizeof names[0]) ? names[s] : "unknown";
}

/* A task's status after a run (or a racy read during one, for DOT and reports). */
BATCH__PRIVATE batch_task_status batch__node_status(const batch__gnode* x) {
    return (batch_task_status)atomic_load_explicit(&((batch__gnode*)(uintptr_t)x)->status, memory_order_relaxed);
}

/* ---- build --------------------------------------------------------------------------------- */
/* A tag that differs between graphs alive at once (addresses differ) and, very likely, from a
   destroyed graph whose address was reused or from this graph before a clear. */
BATCH__PRIVATE uint32_t batch__graph_new_tag(const batch_graph* g) {
    uint64_t h = (uint64_t)(uintptr_t)g * 0x9E3779B97F4A7C15ull ^ batch_now_ns() ^ ((uint64_t)g->tag << 17);
    uint32_t t = (uint32_t)(h >> 32) ^ (uint32_t)h;
    return t == g->tag ? t + 1 : t;
}

BATCH_API batch_result batch_graph_create(batch_graph** out, const batch_graph_desc* desc) {
    if (!out) return BATCH_ERR_INVALID;
    *out = NULL;
    batch_graph_desc d;
    memset(&d, 0, sizeof d);
    if (desc) d = *desc;
    batch_graph* g = (batch_graph*)BATCH_MALLOC(sizeof *g, d.alloc_ctx);
    if (!g) return BATCH_ERR_NOMEM;
    memset(g, 0, sizeof *g);
    g->alloc_ctx = d.alloc_ctx;
    /* a tag that differs between graphs alive at once (addresses differ) and, very likely,
       from a destroyed graph whose address was reused */
    g->tag = batch__graph_new_tag(g);
    if (d.name && !(g->name = batch__strdup(d.name, d.alloc_ctx))) { BATCH_FREE(g, d.alloc_ctx); return BATCH_ERR_NOMEM; }
    *out = g;
    return BATCH_OK;
}

BATCH__PRIVATE void batch__graph_free_spare(batch_graph* g) {
    for (int i = 0; i < 4; i++) {
        if (g->spare[i]) BATCH_FREE(g->spare[i], g->alloc_ctx);
        g->spare[i] = NULL;
    }
    g->spare_n = g->spare_e = 0;
}

BATCH__PRIVATE void batch__graph_free_csr(batch_graph* g) {
    void* ctx = g->alloc_ctx;
    if (g->succ_off) BATCH_FREE(g->succ_off, ctx);
    if (g->succ) BATCH_FREE(g->succ, ctx);
    if (g->pred_off) BATCH_FREE(g->pred_off, ctx);
    if (g->pred) BATCH_FREE(g->pred, ctx);
    if (g->roots) BATCH_FREE(g->roots, ctx);
    g->succ_off = g->succ = g->pred_off = g->pred = g->roots = NULL;
    g->nroots = g->csr_n = 0;
}

/* Frees what the tasks own (names, messages) and the name map; the arrays stay. */
BATCH__PRIVATE void batch__graph_free_task_strings(batch_graph* g) {
    /* relaxed: the graph is not running (busy was checked), its last run was waited for */
    if (atomic_exchange_explicit(&g->has_strings, 0, memory_order_relaxed)) {
        for (uint32_t i = 0; i < g->nnodes; i++) {
            batch__gnode* x = batch__node(g, i);
            if (x->name) BATCH_FREE(x->name, g->alloc_ctx);
            if (x->msg) BATCH_FREE(x->msg, g->alloc_ctx);
        }
    }
    stbds_shfree(g->names);
    g->names = NULL;
}

BATCH_API batch_result batch_graph_destroy(batch_graph* g) {
    if (!g) return BATCH_OK;
    if (atomic_load(&g->busy)) return BATCH_ERR_BUSY;
    void* ctx = g->alloc_ctx;
    batch__graph_free_task_strings(g);
    batch__node_free_all(g);
    batch__edge_free_all(g);
    batch__graph_free_csr(g);
    batch__graph_free_spare(g);
    if (g->name) BATCH_FREE(g->name, ctx);
    BATCH_FREE(g, ctx);
    return BATCH_OK;
}

BATCH_API batch_result batch_graph_clear(batch_graph* g) {
    if (!g) return BATCH_ERR_INVALID;
    if (atomic_load(&g->busy)) return BATCH_ERR_BUSY;
    batch__graph_free_task_strings(g);
    g->nnodes = 0;                /* capacity kept: the next graph is built in this memory */
    g->nedges = 0;
    if (g->succ_off) {                /* the CSR arrays wait for the next validation */
        batch__graph_free_spare(g);
        g->spare[0] = g->succ_off; g->spare[1] = g->pred_off; g->spare[2] = g->succ; g->spare[3] = g->pred;
        g->spare_n = g->csr_n;
        g->spare_e = g->succ_off[g->csr_n];
        g->succ_off = g->pred_off = g->succ = g->pred = NULL;
    }
    batch__graph_free_csr(g);
    g->dirty = true;
    g->has_cycle = false;
    g->backward = false;
    g->cycle_msg[0] = 0;
    g->tag = batch__graph_new_tag(g);   /* handles of the old tasks are refused */
    return BATCH_OK;
}

BATCH_API size_t batch_graph_size(const batch_graph* g) { return g ? (size_t)g->nnodes : 0; }

/* The node index of a handle of g, or -1. */
BATCH__PRIVATE int64_t batch__task_index(const batch_graph* g, batch_task t) {
    if (!g || t.tag != g->tag || t.id == 0 || t.id > g->nnodes) return -1;
    return (int64_t)t.id - 1;
}

BATCH__PRIVATE batch_result batch__check_task_desc(const batch_task_desc* d) {
    if (!d) return BATCH_ERR_INVALID;
    if (BATCH__ENUM_BAD(d->priority, BATCH_PRIORITY_COUNT_)) return BATCH_ERR_INVALID;
    if (d->max_retries < 0 || d->max_retries > 1000) return BATCH_ERR_INVALID;
    if (d->retry_base_ns > (uint64_t)UINT32_MAX * 1000u - 999u || d->retry_max_ns > (uint64_t)UINT32_MAX * 1000u - 999u)
        return BATCH_ERR_INVALID;   /* about 71 minutes */
    return BATCH_OK;
}

/* stb_ds operations, each run under the allocation guard (batch__ds_guarded, internal.h):
   BATCH_ERR_NOMEM leaves the container as it was. */
typedef struct batch__ds_op { batch_graph* g; char* name; uint32_t idx; } batch__ds_op;
BATCH__PRIVATE void batch__ds_put_name(void* a) {
    batch__ds_op* o = (batch__ds_op*)a;
    /* the first name wins; shgeti on an empty map allocates it (valid, empty) */
    if (stbds_shgeti(o->g->names, o->name) < 0) stbds_shput(o->g->names, o->name, o->idx);
}

BATCH_API batch_result batch_graph_add(batch_graph* g, const batch_task_desc* d, batch_task* out) {
    if (!g || !out) return BATCH_ERR_INVALID;
    batch_result r = batch__check_task_desc(d);
    if (r != BATCH_OK) return r;
    if (atomic_load(&g->busy)) return BATCH_ERR_BUSY;
    if (g->nnodes >= UINT32_MAX - 2) return BATCH_ERR_NOMEM;
    char* name = NULL;
    if (d->name && !(name = batch__strdup(d->name, g->alloc_ctx))) return BATCH_ERR_NOMEM;
    if (!batch__node_reserve(g)) { if (name) BATCH_FREE(name, g->alloc_ctx); return BATCH_ERR_NOMEM; }
    uint32_t idx = g->nnodes;
    batch__gnode* x = batch__node(g, idx);   /* filled in place: no copy */
    memset(x, 0, sizeof *x);
    x->fn = d->fn;
    x->user = d->user_data;
    x->name = name;
    x->idx = idx;
    uint64_t base = d->retry_base_ns ? d->retry_base_ns : 1000000u, max = d->retry_max_ns ? d->retry_max_ns : 60ull * 1000000000u;
    x->retry_base_us = (uint32_t)((base + 999) / 1000);   /* validated: < 2^32 us */
    x->retry_max_us = (uint32_t)((max + 999) / 1000);
    x->max_retries = (uint16_t)d->max_retries;
    x->level = d->priority == BATCH_PRIORITY_DEFAULT ? BATCH__LEVEL_RUN : (uint8_t)(d->priority - 1);
    x->flags = d->retry_jitter != 0 ? BATCH__NF_JITTER : 0;
    x->worker = -1;
    batch__ds_op op = { g, name, idx };
    if (name && batch__ds_guarded(batch__ds_put_name, &op) != BATCH_OK) {
        BATCH_FREE(name, g->alloc_ctx);
        return BATCH_ERR_NOMEM;
    }
    g->nnodes = idx + 1;
    if (name) atomic_store_explicit(&g->has_strings, 1, memory_order_relaxed);
    g->dirty = true;
    out->id = idx + 1;
    out->tag = g->tag;
    return BATCH_OK;
}

/* Counts edges [at, at + n) of g->edges into their targets' pending counts (the build keeps
   pending = in-degree, so that validation need not touch the nodes; finalize takes duplicates
   back out), or takes them out again (sign < 0: an undo). */
BATCH__PRIVATE void batch__count_edges_signed(batch_graph* g, size_t at, size_t n, int sign) {
    for (size_t i = at; i < at + n; i++) {
        uint64_t e = g->edges[i];
        _Atomic uint32_t* p = &batch__node(g, (uint32_t)e)->pending;
        /* relaxed load + store: the graph is not running (busy was checked), one thread builds */
        atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + (uint32_t)sign, memory_order_relaxed);
        if ((e >> 32) > (uint32_t)e) g->backward = true;
    }
    g->dirty = true;
}
BATCH__PRIVATE void batch__count_edges(batch_graph* g, size_t at, size_t n) { batch__count_edges_signed(g, at, n, 1); }

/* Appends an edge from every task of from[0..nfrom) to every task of to[0..nto) (nfrom * nto
   edges; none when a side is empty) after checking them all: all or nothing. */
BATCH__PRIVATE batch_result batch__add_edges(batch_graph* g, const batch_task* from, size_t nfrom,
                                             const batch_task* to, size_t nto) {
    if (!g || (nfrom && !from) || (nto && !to)) return BATCH_ERR_INVALID;
    if (nfrom == 1 && nto == 1) {   /* the common case, without the loops */
        int64_t a = batch__task_index(g, *from), b = batch__task_index(g, *to);
        if (a < 0 || b < 0) return BATCH_ERR_INVALID;
        if (a == b) return BATCH_ERR_CYCLE;
        if (atomic_load(&g->busy)) return BATCH_ERR_BUSY;
        if (!batch__edge_reserve(g, 1)) return BATCH_ERR_NOMEM;
        size_t len = g->nedges++;
        g->edges[len] = (uint64_t)a << 32 | (uint64_t)b;
        batch__count_edges(g, len, 1);
        return BATCH_OK;
    }
    for (size_t i = 0; i < nfrom; i++) if (batch__task_index(g, from[i]) < 0) return BATCH_ERR_INVALID;
    for (size_t j = 0; j < nto; j++) if (batch__task_index(g, to[j]) < 0) return BATCH_ERR_INVALID;
    if (nfrom == 0 || nto == 0) return BATCH_OK;
    if (batch__exceeds(nfrom, ((uint64_t)1 << 40) / nto) || nfrom > SIZE_MAX / nto) return BATCH_ERR_INVALID;
    size_t n = nfrom * nto;   /* at most 2^40 and SIZE_MAX: checked above */
    for (size_t i = 0; i < nfrom; i++)   /* valid handles of one graph: the same id is the same task */
        for (size_t j = 0; j < nto; j++) if (from[i].id == to[j].id) return BATCH_ERR_CYCLE;
    if (atomic_load(&g->busy)) return BATCH_ERR_BUSY;
    if (!batch__edge_reserve(g, n)) return BATCH_ERR_NOMEM;
    size_t len = g->nedges;
    for (size_t i = 0; i < nfrom; i++) {
        uint64_t a = (uint64_t)batch__task_index(g, from[i]);
        for (size_t j = 0; j < nto; j++) g->edges[g->nedges++] = a << 32 | (uint64_t)batch__task_index(g, to[j]);
    }
    batch__count_edges(g, len, n);
    return BATCH_OK;
}

BATCH_API batch_result batch_task_precede(batch_graph* g, batch_task a, batch_task b) { return batch__add_edges(g, &a, 1, &b, 1); }
BATCH_API batch_result batch_task_precede_n(batch_graph* g, const batch_task* from, size_t nfrom,
                                            const batch_task* to, size_t nto) {
    return batch__add_edges(g, from, nfrom, to, nto);
}

BATCH_API batch_result batch_graph_join(batch_graph* g, const batch_task* before, size_t n,
                                        const batch_task* after, size_t m, batch_task* out_barrier) {
    if (!g || (n && !before) || (m && !after)) return BATCH_ERR_INVALID;
    for (size_t i = 0; i < n; i++) if (batch__task_index(g, before[i]) < 0) return BATCH_ERR_INVALID;
    for (size_t i = 0; i < m; i++) if (batch__task_index(g, after[i]) < 0) return BATCH_ERR_INVALID;
    batch_task bar;
    batch_result r = batch_graph_add(g, &(batch_task_desc){ .fn = NULL }, &bar);
    if (r != BATCH_OK) return r;
    size_t len = g->nedges;
    r = batch__add_edges(g, before, n, &bar, 1);
    if (r == BATCH_OK && m) r = batch__add_edges(g, &bar, 1, after, m);
    if (r != BATCH_OK) {   /* undo: the barrier is the last node and owns no name */
        batch__count_edges_signed(g, len, g->nedges - len, -1);
        g->nedges = len;
        g->nnodes = bar.id - 1;
        return r;
    }
    if (out_barrier) *out_barrier = bar;
    return BATCH_OK;
}

BATCH_API batch_result batch_graph_find(batch_graph* g, const char* name, batch_task* out) {
    if (!g || !name || !out) return BATCH_ERR_INVALID;
    if (!g->names) return BATCH_ERR_NOT_FOUND;
    ptrdiff_t i = stbds_shgeti(g->names, name);
    if (i < 0) return BATCH_ERR_NOT_FOUND;
    out->id = g->names[i].value + 1;
    out->tag = g->tag;
    return BATCH_OK;
}

/* ---- validate: CSR, Kahn, a named cycle ------------------------------------------------- */

BATCH__PRIVATE void batch__node_label(const batch_graph* g, uint32_t i, char* buf, size_t n) {
    if (batch__node(g, i)->name) snprintf(buf, n, "%s", batch__node(g, i)->name);
    else snprintf(buf, n, "#%u", (unsigned)(i + 1));
}

/* Names one cycle among the nodes Kahn could not remove (indeg[i] > 0). Each of them has a
   predecessor among them, so walking predecessors must come back to a node already on the
   walk: from there the walk, read backwards, is a cycle. path has room for n nodes. */
BATCH__PRIVATE void batch__describe_cycle(batch_graph* g, const uint32_t* indeg, uint32_t* path, uint32_t* onpath) {
    uint32_t n = (uint32_t)g->nnodes, cur = 0, len = 0;
    while (cur < n && indeg[cur] == 0) cur++;
    for (uint32_t i = 0; i < n; i++) onpath[i] = 0;
    while (!onpath[cur]) {
        path[len++] = cur;
        onpath[cur] = len;              /* position + 1 */
        for (uint32_t k = g->pred_off[cur]; k < g->pred_off[cur + 1]; k++)
            if (indeg[g->pred[k]] > 0) { cur = g->pred[k]; break; }
    }
    /* path[j] = cur ... path[len-1]; edges run path[k+1] -> path[k] and cur -> path[len-1] */
    uint32_t j = onpath[cur] - 1;
    char* m = g->cycle_msg;
    size_t cap = sizeof g->cycle_msg, used = (size_t)snprintf(m, cap, "cycle:");
    char label[64];
    batch__node_label(g, cur, label, sizeof label);
    used += (size_t)snprintf(m + used, cap - used, " %s", label);
    for (uint32_t k = len; k-- > j;) {
        if (used >= cap) break;
        batch__node_label(g, k == j ? cur : path[k], label, sizeof label);
        used += (size_t)snprintf(m + used, cap - used, " -> %s", label);
    }
}

/* The four arrays of a graph's CSR form (successor and predecessor lists with their offsets). */
typedef struct batch__csr { uint32_t *succ_off, *pred_off, *succ, *pred; } batch__csr;

/* CSR arrays for n tasks and e edges: a cleared graph's spare ones when they are big enough,
   else new ones. False (nothing held) when out of memory. */
BATCH__PRIVATE bool batch__csr_alloc(batch_graph* g, batch__csr* c, size_t n, size_t e, bool fresh) {
    void* ctx = g->alloc_ctx;
    if (g->spare[0] && fresh && n <= g->spare_n && e <= g->spare_e) {
        c->succ_off = g->spare[0]; c->pred_off = g->spare[1]; c->succ = g->spare[2]; c->pred = g->spare[3];
        for (int i = 0; i < 4; i++) g->spare[i] = NULL;
        g->spare_n = g->spare_e = 0;
        return true;
    }
    batch__graph_free_spare(g);
    c->succ_off = (uint32_t*)BATCH__BIG_MALLOC((n + 1) * sizeof(uint32_t), ctx);
    c->pred_off = (uint32_t*)BATCH__BIG_MALLOC((n + 1) * sizeof(uint32_t), ctx);
    c->succ = (uint32_t*)BATCH__BIG_MALLOC((e ? e : 1) * sizeof(uint32_t), ctx);
    c->pred = (uint32_t*)BATCH__BIG_MALLOC((e ? e : 1) * sizeof(uint32_t), ctx);
    if (c->succ_off && c->pred_off && c->succ && c->pred) return true;
    if (c->succ_off) BATCH_FREE(c->succ_off, ctx);
    if (c->pred_off) BATCH_FREE(c->pred_off, ctx);
    if (c->succ) BATCH_FREE(c->succ, ctx);
    if (c->pred) BATCH_FREE(c->pred, ctx);
    return false;
}

/* Successor lists: the previous CSR's (old_n tasks) then the edges added since, bucketed by
   source in one counting pass, each list de-duplicated in place (work[t] = 1 + the last source
   that listed t: a duplicate, counted at add, is taken off its target's pending count). Returns
   the number of edges kept. work: n scratch words. */
BATCH__PRIVATE uint32_t batch__csr_successors(batch_graph* g, const batch__csr* c, size_t n, size_t old_n, uint32_t* work) {
    uint32_t *succ_off = c->succ_off, *succ = c->succ;
    const uint64_t* ed = g->edges;
    size_t ne = g->nedges;
    memset(succ_off, 0, (n + 1) * sizeof(uint32_t));
    for (size_t x = 0; x < old_n; x++) succ_off[x + 1] = g->succ_off[x + 1] - g->succ_off[x];
    for (size_t i = 0; i < ne; i++) succ_off[(ed[i] >> 32) + 1]++;
    for (size_t x = 0; x < n; x++) succ_off[x + 1] += succ_off[x];
    for (size_t x = 0; x < n; x++) work[x] = succ_off[x];
    for (size_t x = 0; x < old_n; x++) {
        uint32_t len = g->succ_off[x + 1] - g->succ_off[x];
        if (len) memcpy(succ + work[x], g->succ + g->succ_off[x], len * sizeof(uint32_t));
        work[x] += len;
    }
    for (size_t i = 0; i < ne; i++) succ[work[ed[i] >> 32]++] = (uint32_t)ed[i];
    memset(work, 0, (n ? n : 1) * sizeof(uint32_t));
    uint32_t w = 0, begin = 0;
    for (size_t x = 0; x < n; x++) {
        uint32_t end = succ_off[x + 1];
        succ_off[x] = w;
        for (uint32_t k = begin; k < end; k++) {
            uint32_t t = succ[k];
            if (work[t] != (uint32_t)x + 1) { work[t] = (uint32_t)x + 1; succ[w++] = t; }
            else atomic_store_explicit(&batch__node(g, t)->pending, atomic_load_explicit(&batch__node(g, t)->pending, memory_order_relaxed) - 1,
                                       memory_order_relaxed);
        }
        begin = end;
    }
    succ_off[n] = w;
    return w;
}

/* Predecessor lists from the successor lists: count per target, offsets, scatter in source
   order (so each list is sorted by source). */
BATCH__PRIVATE void batch__csr_predecessors(const batch__csr* c, size_t n, uint32_t e, uint32_t* work) {
    memset(c->pred_off, 0, (n + 1) * sizeof(uint32_t));
    for (size_t k = 0; k < e; k++) c->pred_off[c->succ[k] + 1]++;
    for (size_t x = 0; x < n; x++) c->pred_off[x + 1] += c->pred_off[x];
    for (size_t x = 0; x < n; x++) work[x] = c->pred_off[x];
    for (size_t x = 0; x < n; x++)
        for (uint32_t k = c->succ_off[x]; k < c->succ_off[x + 1]; k++) c->pred[work[c->succ[k]]++] = (uint32_t)x;
}

/* The roots (tasks without predecessors, in index order) at the head of queue; their number. */
BATCH__PRIVATE size_t batch__graph_roots(const batch_graph* g, uint32_t* queue) {
    size_t nroots = 0;
    for (size_t i = 0; i < g->csr_n; i++) if (g->pred_off[i + 1] == g->pred_off[i]) queue[nroots++] = (uint32_t)i;
    return nroots;
}

/* Kahn's algorithm from the roots: a cycle leaves tasks it could not remove, and is then named
   in g->cycle_msg. queue holds the roots on entry and again on return; work: n scratch words. */
BATCH__PRIVATE void batch__graph_check_cycle(batch_graph* g, uint32_t* queue, size_t nroots, uint32_t* work) {
    size_t n = g->csr_n, head = 0, tail = nroots;
    uint32_t* indeg = work;
    for (size_t i = 0; i < n; i++) indeg[i] = g->pred_off[i + 1] - g->pred_off[i];
    while (head < tail) {
        uint32_t x = queue[head++];
        for (uint32_t k = g->succ_off[x]; k < g->succ_off[x + 1]; k++)
            if (--indeg[g->succ[k]] == 0) queue[tail++] = g->succ[k];
    }
    g->has_cycle = tail < n;
    if (!g->has_cycle) return;
    uint32_t* onpath = (uint32_t*)BATCH_MALLOC(n * sizeof(uint32_t), g->alloc_ctx);
    if (onpath) { batch__describe_cycle(g, indeg, queue, onpath); BATCH_FREE(onpath, g->alloc_ctx); }
    else snprintf(g->cycle_msg, sizeof g->cycle_msg, "cycle (no memory to name it)");
    batch__graph_roots(g, queue);   /* the walk overwrote the queue */
}

/* Builds the CSR form and checks for cycles; a no-op when nothing changed. O(N + E), and no O(E)
   scratch beyond the CSR itself. */
BATCH__PRIVATE batch_result batch__graph_finalize(batch_graph* g) {
    if (!g->dirty && g->succ_off) return g->has_cycle ? BATCH_ERR_CYCLE : BATCH_OK;
    void* ctx = g->alloc_ctx;
    size_t n = (size_t)g->nnodes;
    size_t old_n = g->succ_off ? g->csr_n : 0;
    size_t e = (old_n ? g->succ_off[old_n] : 0) + g->nedges;
    if (e >= UINT32_MAX) return BATCH_ERR_NOMEM;   /* offsets are 32-bit */
    batch__csr c;
    if (!batch__csr_alloc(g, &c, n, e, !old_n)) return BATCH_ERR_NOMEM;
    uint32_t* work = (uint32_t*)BATCH__BIG_MALLOC((n ? n : 1) * sizeof(uint32_t), ctx);   /* cursors, marks, in-degrees */
    uint32_t* queue = (uint32_t*)BATCH__BIG_MALLOC((n ? n : 1) * sizeof(uint32_t), ctx);
    if (!work || !queue) {
        BATCH_FREE(c.succ_off, ctx); BATCH_FREE(c.pred_off, ctx); BATCH_FREE(c.succ, ctx); BATCH_FREE(c.pred, ctx);
        if (work) BATCH_FREE(work, ctx);
        if (queue) BATCH_FREE(queue, ctx);
        return BATCH_ERR_NOMEM;
    }
    uint32_t kept = batch__csr_successors(g, &c, n, old_n, work);
    batch__csr_predecessors(&c, n, kept, work);
    batch__graph_free_csr(g);
    batch__edge_free_all(g);      /* every edge now lives in the CSR */
    g->succ_off = c.succ_off; g->succ = c.succ; g->pred_off = c.pred_off; g->pred = c.pred;
    g->csr_n = n;
    size_t nroots = batch__graph_roots(g, queue);
    g->has_cycle = false;
    g->cycle_msg[0] = 0;
    /* with every edge forward, index order is a topological order: nothing to check */
    if (g->backward) batch__graph_check_cycle(g, queue, nroots, work);
    BATCH_FREE(work, ctx);
    /* keep the roots: shrink the queue to them */
    uint32_t* roots = (uint32_t*)BATCH_REALLOC(queue, (nroots ? nroots : 1) * sizeof(uint32_t), ctx);
    g->roots = roots ? roots : queue;
    g->nroots = nroots;
    g->dirty = false;
    return g->has_cycle ? BATCH_ERR_CYCLE : BATCH_OK;
}

BATCH_API batch_result batch_graph_validate(batch_graph* g, char* msg, size_t msg_size) {
    if (!g || (msg_size && !msg)) return BATCH_ERR_INVALID;
    if (atomic_load(&g->busy)) return BATCH_ERR_BUSY;
    batch_result r = batch__graph_finalize(g);
    if (msg && msg_size) snprintf(msg, msg_size, "%s", r == BATCH_ERR_CYCLE ? g->cycle_msg : "");
    return r;
}

/* ---- run ------------------------------------------------------------------------------------- */
BATCH__PRIVATE batch__job_stats* batch__job_slot(batch__job* job, int worker, bool* shared) {
    *shared = worker < 0 || worker >= job->nstats - 1;
    return &job->stats[*shared ? job->nstats - 1 : worker];
}
/* Adds v to a stats counter: a plain store on the worker's own line, an RMW on the shared one. */
BATCH__PRIVATE void batch__stat_add(_Atomic uint64_t* c, uint64_t v, bool shared) {
    if (shared) atomic_fetch_add_explicit(c, v, memory_order_relaxed);
    else atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}
/* *c = max(*c, v); relaxed like the counters: read after the job's latch is released */
BATCH__PRIVATE void batch__stat_max(_Atomic uint64_t* c, uint64_t v, bool shared) {
    uint64_t cur = atomic_load_explicit(c, memory_order_relaxed);
    if (!shared) { if (v > cur) atomic_store_explicit(c, v, memory_order_relaxed); return; }
    while (v > cur && !atomic_compare_exchange_weak_explicit(c, &cur, v, memory_order_relaxed, memory_order_relaxed)) {}
}

BATCH__PRIVATE void batch__gnode_task(batch_pool* p, void* user);

/* Queues node n on the pool; false if that is impossible (memory, or shutdown for a
   non-worker), and the caller then processes it itself. */
/* Test hook: a build can define BATCH__FAIL_GRAPH_SUBMIT() to make queueing a task from a
   worker fail as if out of memory (the overflow paths then run what the pool refused). */
#ifndef BATCH__FAIL_GRAPH_SUBMIT
#  define BATCH__FAIL_GRAPH_SUBMIT() 0
#endif
BATCH__PRIVATE bool batch__gnode_submit(batch__job* job, batch__gnode* n, uint64_t delay_ns) {
    if (BATCH__FAIL_GRAPH_SUBMIT() && batch__self(job->pool)) return false;
    uint8_t level = n->level == BATCH__LEVEL_RUN ? job->level : n->level;
    /* the latch counts the job's pool tasks in flight: a task submits the tasks it makes ready
       (or hands a concurrency slot on) before it ends, so the count reaches zero only when
       every task has settled; workers pay these decrements once per run of the job's tasks */
    return batch_pool_submit(job->pool, &(batch_work){ .fn = batch__gnode_task, .user_data = n, .counter = &job->latch,
                                                       .priority = (batch_priority)(level + 1),
                                                       .delay_ns = delay_ns }) == BATCH_OK;
}

/* With a concurrency limit: take a slot, or park n until a running task hands its slot over.
   Parked tasks wait in one FIFO per priority level; a freed slot goes to the oldest task of the
   most urgent level. Returns false when parked. */
BATCH__PRIVATE bool batch__slot_acquire(batch__job* job, batch__gnode* n) {
    batch_graph* g = job->g;
    batch__mutex_lock(&job->park_lock);
    bool ok = job->running < job->max_conc;
    if (ok) job->running++;
    else {
        int l = n->level == BATCH__LEVEL_RUN ? job->level : n->level;
        n->next_local = BATCH__NO_NODE;
        if (job->park_tail[l] == BATCH__NO_NODE) job->park_head[l] = n->idx;
        else batch__node(g, job->park_tail[l])->next_local = n->idx;
        job->park_tail[l] = n->idx;
    }
    batch__mutex_unlock(&job->park_lock);
    return ok;
}

/* Gives the slot to the next parked node (returned, to be queued) or frees it. */
BATCH__PRIVATE batch__gnode* batch__slot_release(batch__job* job) {
    batch_graph* g = job->g;
    batch__gnode* next = NULL;
    batch__mutex_lock(&job->park_lock);
    for (int l = 0; l < BATCH__LEVELS; l++) {
        if (job->park_head[l] == BATCH__NO_NODE) continue;
        next = batch__node(g, job->park_head[l]);
        job->park_head[l] = next->next_local;
        if (job->park_head[l] == BATCH__NO_NODE) job->park_tail[l] = BATCH__NO_NODE;
        next->flags |= BATCH__NF_SLOT;
        break;
    }
    if (!next) job->running--;
    batch__mutex_unlock(&job->park_lock);
    return next;
}

/* Queues the ready successors collected by a worker in one go; what the pool cannot take goes
   to the caller's overflow list. */
#define BATCH__RELEASE_BULK 64
BATCH__PRIVATE void batch__gnode_flush(batch__job* job, batch__worker* self, void** ready, size_t* n, uint32_t* overflow) {
    size_t k = BATCH__FAIL_GRAPH_SUBMIT() ? 0 : batch__submit_bulk(job->pool, self, batch__gnode_task, ready, *n, &job->latch);
    for (size_t i = k; i < *n; i++) {
        batch__gnode* s = (batch__gnode*)ready[i];
        s->next_local = *overflow;
        *overflow = s->idx;
    }
    *n = 0;
}

/* ---- wide tasks ----------------------------------------------------------------------------
   A task with many successors (fan-out) does not queue each ready successor as a pool task:
   that costs a task, a push and a steal each, and two workers then fight over one deque's ends
   (bench/README.md: fanout). Its successor edges become a
   range [b, e) of g->succ that the releasing worker walks itself, running each successor that
   becomes ready in place. The range is split in halves that go on the worker's own deque, where
   other workers steal them: a few halves at once when the range is made (so that every worker
   can start), then lazily (Tzannes et al., lazy binary splitting), one half whenever the walker
   finds its own deque empty, that is when thieves took what it had. Steals then take
   ever-smaller halves, O(log n) of them instead of n.
   A task with many predecessors (fan-in) has the releases from one worker's consecutive
   predecessors held and paid in one RMW (batch__gnode_run: hold), instead of n RMWs on one
   contended counter. A release is held only while the next task that worker runs is itself a
   predecessor of the same task: the task cannot be ready before that one ends anyway, so a
   held release never delays it. */
#define BATCH__RANGE_MIN 16u   /* successors from which a release goes through a range */
#define BATCH__HOLD_MIN 16u    /* predecessors from which releases are held */
BATCH__PRIVATE void batch__grange_task(batch_pool* p, void* user, uint64_t arg);

BATCH__PRIVATE bool batch__push_range(batch__job* job, batch__worker* self, uint32_t b, uint32_t e) {
    if (BATCH__FAIL_GRAPH_SUBMIT()) return false;
    return batch__submit_arg(job->pool, self, batch__grange_task, job, (uint64_t)b << 32 | e, &job->latch);
}
/* Queues the second half of the range [b, *e) (at least 2 successors); keeps the first. */
BATCH__PRIVATE bool batch__range_split(batch__job* job, batch__worker* self, uint32_t b, uint32_t* e) {
    uint32_t mid = b + (*e - b + 1) / 2;
    if (!batch__push_range(job, self, mid, *e)) return false;
    *e = mid;
    return true;
}

/* The injected levels a walk or an in-place chain gives way to: CRITICAL and HIGH, those more
   urgent than the job itself only (a HIGH job's own queued tasks do not interrupt it). */
BATCH__PRIVATE unsigned batch__urgent_mask(const batch__job* job) {
    return BATCH__HIGH_LEVELS_MASK & ((1u << job->level) - 1u);
}

/* Pays a held release: *held RMWs in one. Returns the task if that made it ready. */
BATCH__PRIVATE batch__gnode* batch__hold_pay(batch__job* job, uint32_t hold, uint32_t* held) {
    batch__gnode* j = batch__node(job->g, hold);
    uint32_t k = *held;
    *held = 0;
    /* acq_rel: the release of every held predecessor's writes, and the acquire of the others' */
    if (atomic_fetch_sub_explicit(&j->pending, k, memory_order_acq_rel) != k) return NULL;
    j->job = job;
    return j;
}
/* Pays a held release and queues the task if that made it ready (or lists it in *overflow). */
BATCH__PRIVATE void batch__hold_flush(batch__job* job, uint32_t hold, uint32_t* held, uint32_t* overflow) {
    batch__gnode* r = batch__hold_pay(job, hold, held);
    if (r && !batch__gnode_submit(job, r, 0)) {
        r->next_local = *overflow;
        *overflow = r->idx;
    }
}

/* The next successor of the range [*rb, *re) that its release makes ready, splitting first if
   the worker's deque is empty; NULL when the range is used up, or when urgent (CRITICAL, HIGH)
   work waits in the pool: the rest of the range then goes on the deque and the worker returns
   to the pool, which takes urgent work first. A ready successor whose own priority differs from
   the job's goes through the pool's queue for its level. *skipped counts successors released
   but not ready (their RMWs take time no task should be charged with); before the first of
   those, a held release is paid (the walk is then no longer one predecessor after another). */
BATCH__PRIVATE batch__gnode* batch__range_next(batch__job* job, batch__worker* self, uint32_t* rb, uint32_t* re,
                                               unsigned* skipped, uint32_t hold, uint32_t* held, uint32_t* overflow) {
    batch_graph* g = job->g;
    while (*rb < *re) {
        if (self && batch__pool_queued(job->pool, batch__urgent_mask(job)) &&
            batch__push_range(job, self, *rb, *re)) {
            *rb = *re;
            return NULL;
        }
        if (self && *re - *rb >= 2 && batch__worker_deque_empty(self)) (void)batch__range_split(job, self, *rb, re);
        uint32_t k1 = g->succ[(*rb)++];
        batch__gnode* s = batch__node(g, k1);
        /* acq_rel and the sole-predecessor case: as in the release loop of batch__gnode_run */
        if (g->pred_off[k1 + 1] - g->pred_off[k1] == 1 || atomic_fetch_sub_explicit(&s->pending, 1, memory_order_acq_rel) == 1) {
            s->job = job;
            uint8_t lv = s->level == BATCH__LEVEL_RUN ? job->level : s->level;
            if (lv == job->level || !batch__gnode_submit(job, s, 0)) return s;
        } else {
            if (*held) batch__hold_flush(job, hold, held, overflow);
            (*skipped)++;
        }
    }
    return NULL;
}

/* Does n precede the task with index j? (Looks at a few successors only: false is safe.) */
BATCH__PRIVATE bool batch__gnode_precedes(const batch_graph* g, const batch__gnode* n, uint32_t j) {
    uint32_t b = g->succ_off[n->idx], e = g->succ_off[n->idx + 1];
    if (e - b > 8) return false;
    for (; b < e; b++) if (g->succ[b] == j) return true;
    return false;
}

/* Progress events of a settled node, and the periodic tick (with the task's end time, or a
   clock read every 64 nodes when task times are off). */
BATCH__PRIVATE void batch__gnode_events(batch__job* job, batch__gnode* n, batch_task_status outcome, uint64_t now,
                                        unsigned* ticks) {
    batch_event ev = BATCH_EVENT_COUNT_;
    if (outcome == BATCH_TASK_FAILED) ev = BATCH_EVENT_TASK_FAILED;
    else if (outcome == BATCH_TASK_COMPLETED) ev = n->fn ? BATCH_EVENT_TASK_COMPLETED : BATCH_EVENT_GROUP_COMPLETED;
    if (ev != BATCH_EVENT_COUNT_ && (job->head.prog.events & BATCH_EVENT_BIT(ev))) {
        batch_event_info info = { NULL, n->name, n->idx + 1, 0, n->error };
        batch__progress_emit((batch_job*)job, ev, &info);
    }
    if (!now) {
        if ((++*ticks & 63) != 0) return;
        now = batch_now_ns();
    }
    batch__progress_tick((batch_job*)job, now);
}

/* ---- journal ------------------------------------------------------------------------------ */
/* A task record: type 2, status, attempts (u16), task index (u32), error code (i32). */
#define BATCH__JTASK_LEN 12u

/* Appends the outcome of n (before its successors are released: the journal's order is a
   topological order, so a resumed successor never lacks its predecessor). */
BATCH__PRIVATE bool batch__graph_journal_task(batch__job* job, const batch__gnode* n, batch_task_status outcome) {
    unsigned char rec[BATCH__JTASK_LEN];
    rec[0] = BATCH__JKIND_GRAPH;
    rec[1] = (unsigned char)outcome;
    rec[2] = (unsigned char)n->attempts;
    rec[3] = (unsigned char)(n->attempts >> 8);
    batch__put32(rec + 4, n->idx);
    batch__put32(rec + 8, (uint32_t)n->error);
    return batch__journal_append(job->jn, rec, sizeof rec) == BATCH_OK;
}

/* Replays one task record into the job's run (see batch__journal_open). */
BATCH__PRIVATE batch_result batch__graph_replay(void* arg, const unsigned char* p, size_t len) {
    batch__job* job = (batch__job*)arg;
    batch_graph* g = job->g;
    if (len != BATCH__JTASK_LEN || p[0] != BATCH__JKIND_GRAPH) return BATCH_ERR_CORRUPT;
    uint32_t idx = batch__get32(p + 4);
    if (idx >= (uint32_t)g->nnodes || (p[1] != BATCH_TASK_COMPLETED && p[1] != BATCH_TASK_FAILED))
        return BATCH_ERR_CORRUPT;
    batch__gnode* n = batch__node(g, idx);
    if (p[1] == BATCH_TASK_FAILED && job->rerun_failed) { n->journaled = 0; return BATCH_OK; }
    /* this run's fields, set now: the run's first visit then leaves them (same epoch) */
    n->epoch = job->epoch;
    n->journaled = p[1];
    n->attempts = (uint16_t)(p[2] | p[3] << 8);
    n->error = (int32_t)batch__get32(p + 8);
    n->worker = -1;
    n->t_start = n->t_end = 0;
    n->retry_due = 0;
    atomic_store_explicit(&n->output, NULL, memory_order_relaxed);
    if (n->msg) n->msg[0] = 0;
    return BATCH_OK;
}

/* The graph's shape: tasks, names, edges. */
BATCH__PRIVATE uint64_t batch__graph_fingerprint(const batch_graph* g) {
    uint32_t n = g->nnodes;
    uint64_t h = batch__fp_mix(BATCH__JKIND_GRAPH, n);
    for (uint32_t i = 0; i < n; i++) {
        h = batch__fp_str(h, batch__node(g, i)->name);
        for (uint32_t k = g->succ_off[i]; k < g->succ_off[i + 1]; k++) h = batch__fp_mix(h, g->succ[k]);
    }
    return h ? h : 1;
}

/* After a journaled run (or a failed open): no task keeps a journal mark. */
BATCH__PRIVATE void batch__graph_clear_marks(batch_graph* g) {
    for (uint32_t i = 0; i < g->nnodes; i++) batch__node(g, i)->journaled = 0;
}

/* The ran lists (batch__job_stats.ran), for the peak concurrency at wait. A worker's tasks that
   ran back to back (each starting at the previous one's end: the clock hand-off) are one busy
   run, and only its first and last task are listed (BATCH__SEG_FIRST, _LAST): the walk at wait
   then touches two nodes per run, not one per task. The shared line (threads that are not
   workers) lists every task. */
BATCH__PRIVATE void batch__ran_push(_Atomic uint32_t* head, batch__gnode* n, bool shared) {
    uint32_t h = atomic_load_explicit(head, memory_order_relaxed);
    if (!shared) { n->next_local = h; atomic_store_explicit(head, n->idx, memory_order_relaxed); }
    else do n->next_local = h;   /* relaxed: read after the job's latch, like the counters */
        while (!atomic_compare_exchange_weak_explicit(head, &h, n->idx, memory_order_relaxed, memory_order_relaxed));
}
/* Ends the open run of a worker line: its last task goes on the list after its first. A run
   that holds no time stays its first task (zero-length tasks hold no instant). */
BATCH__PRIVATE void batch__ran_close(batch_graph* g, batch__job_stats* st) {
    if (!st->seg_open) return;
    st->seg_open = false;
    if (st->seg_last == st->seg_first) return;
    batch__gnode* f = batch__node(g, st->seg_first);
    if (st->seg_end <= f->t_start) return;
    batch__gnode* l = batch__node(g, st->seg_last);
    f->seg = BATCH__SEG_FIRST;
    l->seg = BATCH__SEG_LAST;
    batch__ran_push(&st->ran, l, false);
}
/* foreign: n's last attempt ran on another worker (a retry cut short by a stop settles where the
   retry's queue entry ran), so this line's tasks no longer follow one another. */
BATCH__PRIVATE void batch__ran_link(batch_graph* g, batch__job_stats* st, bool shared, bool foreign, batch__gnode* n) {
    if (!shared && !foreign && st->seg_open && n->t_start == st->seg_end) {   /* the run goes on */
        st->seg_last = n->idx;
        st->seg_end = n->t_end;
        return;
    }
    n->seg = BATCH__SEG_TASK;
    if (!shared) {
        batch__ran_close(g, st);
        if (foreign) {   /* relaxed: read after the job's latch */
            atomic_store_explicit(&st->nested, 1, memory_order_relaxed);
            batch__ran_push(&st->ran, n, false);
            return;
        }
        st->seg_open = true;
        st->seg_first = st->seg_last = n->idx;
        st->seg_end = n->t_end;
    }
    batch__ran_push(&st->ran, n, shared);
}

/* A task of a job with a deadline has just ended: if that was at or past the deadline, the job
   did not finish in time and ends TIMEOUT, even if this was its last task and it returned 0. */
BATCH__PRIVATE void batch__graph_ended_late(batch__job* job) {
    if (batch_now_ns() < job->deadline_ns) return;
    int expected = BATCH__STOP_NONE;
    atomic_compare_exchange_strong(&job->stop, &expected, BATCH__STOP_DEADLINE);
}

/* ---- the run loop ----------------------------------------------------------------------------
   batch__gnode_run runs (or settles) node n, then every successor it makes ready: the first in
   place, the rest through the pool (a wide task's through a range: see "wide tasks"); iterative,
   so any chain uses constant stack. n may be NULL to walk the successor range [rb, re) only.
   Each round is four steps: take the next node, attempt it (or learn that it is cancelled,
   skipped, journaled, parked or waiting for a retry), settle its outcome, release its
   successors. The steps share the walk's state below; they are inlined into the loop. */
typedef struct batch__walk_env {
    batch__job* job;
    batch_graph* g;
    batch__worker* self;            /* NULL: not a worker of the job's pool */
    batch__job_stats* st;           /* this thread's stats line, `shared` if others write it too */
    int worker;
    bool shared, times, pooled;
    bool last_ran;                  /* the node just settled ran its function (not settled unrun) */
    /* the previous task's end is this one's start (one clock read): the previous task on this
       worker when the pool went straight from it to this one (batch__clock_take), then each
       task this loop runs in place */
    uint64_t last_end;
} batch__walk_env;
/* The state the walk hands to the functions it calls (their addresses are taken): kept apart
   from the environment above, which then stays in registers. */
typedef struct batch__walk {
    uint32_t overflow;              /* ready nodes the pool could not take */
    uint32_t rb, re;                /* the successor range being walked */
    uint32_t hold, held;            /* held releases of task `hold` */
    unsigned skipped, ticks;
    size_t nready;
    void* ready[BATCH__RELEASE_BULK];
} batch__walk;

/* What the attempt step leaves to the loop. */
enum { BATCH__WALK_SETTLE, BATCH__WALK_AWAY, BATCH__WALK_AGAIN };

/* Take: the next node when the last one released none in place: a node the pool could not take,
   the range, a paid hold. NULL: the walk is over. */
BATCH__INLINE batch__gnode* batch__walk_take(batch__walk_env* e, batch__walk* w) {
    for (;;) {
        batch__gnode* n = NULL;
        if (w->overflow != BATCH__NO_NODE) {
            n = batch__node(e->g, w->overflow);
            w->overflow = n->next_local;
            e->last_end = 0;
        } else if (w->rb < w->re) {
            n = batch__range_next(e->job, e->self, &w->rb, &w->re, &w->skipped, w->hold, &w->held, &w->overflow);
            if (w->skipped) { w->skipped = 0; e->last_end = 0; }
            if (!n && w->overflow != BATCH__NO_NODE) continue;   /* a paid hold readied a task the pool could not take */
        }
        if (!n && w->held) n = batch__hold_pay(e->job, w->hold, &w->held);
        return n;
    }
}

/* Before an attempt: held releases of a task n is not a predecessor of are paid first, and the
   run's first visit of n resets what the last run left. */
BATCH__INLINE void batch__walk_enter(batch__walk_env* e, batch__walk* w, batch__gnode* n) {
    batch__job* job = e->job;
    if (w->held && !batch__gnode_precedes(e->g, n, w->hold)) batch__hold_flush(job, w->hold, &w->held, &w->overflow);
    e->last_ran = false;
    if (n->epoch != job->epoch) {   /* the run reaches this task for the first time */
        n->epoch = job->epoch;
        n->job = job;
        n->attempts = 0;
        n->error = 0;
        n->worker = -1;
        n->t_start = n->t_end = 0;
        n->retry_due = 0;
        atomic_store_explicit(&n->output, NULL, memory_order_relaxed);
        if (n->msg) n->msg[0] = 0;
    }
}

/* Gives back a concurrency slot: the task it resumes goes to the pool (or the overflow list). */
BATCH__INLINE void batch__walk_slot_release(batch__walk_env* e, batch__walk* w) {
    batch__gnode* resumed = batch__slot_release(e->job);
    if (resumed && !batch__gnode_submit(e->job, resumed, 0)) {
        resumed->next_local = w->overflow;
        w->overflow = resumed->idx;
    }
}

/* A retry of n starts at tick `next`: its last attempt goes on the job's list for the reports
   (out of memory: it does not). */
BATCH__PRIVATE void batch__graph_note_try(batch__job* job, const batch__gnode* n, uint64_t next) {
    const char* m = (n->msg && n->msg[0]) ? n->msg : "";
    size_t len = strlen(m);
    batch__gtry* t = (batch__gtry*)BATCH_MALLOC(sizeof *t + len + 1, job->g->alloc_ctx);
    if (!t) return;
    t->t_start = n->t_start;
    t->t_end = n->t_end;
    t->t_next = next;
    t->idx = n->idx;
    t->error = n->error;
    t->worker = n->worker;
    t->attempt = n->attempts;
    memcpy(t->msg, m, len + 1);
    t->next = atomic_load_explicit(&job->tries, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&job->tries, &t->next, t, memory_order_release, memory_order_relaxed)) {}
}

/* Runs the task's function once: times, stats, the slot given back. Returns its code. */
BATCH__INLINE int batch__walk_call(batch__walk_env* e, batch__walk* w, batch__gnode* n, bool* slot, int* msg_set) {
    batch__job* job = e->job;
    atomic_store_explicit(&n->status, BATCH_TASK_RUNNING, memory_order_relaxed);
    uint64_t start = e->times ? (e->last_end ? e->last_end : batch__ticks(job->tsc)) : 0;
    if (start && start < job->launch_tick) start = job->launch_tick;   /* never before the run (reports subtract) */
    if (n->attempts) {   /* a retry that runs: error and message will be its own */
        batch__stat_add(&e->st->retried, 1, e->shared);
        if (start && n->t_start) batch__graph_note_try(job, n, start);   /* the attempt before, for the reports */
        n->error = 0;
        if (n->msg) n->msg[0] = 0;
    }
    batch_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.pool = job->pool;
    ctx.task = n;
    ctx.worker = e->worker;
    ctx.attempt = n->attempts;
    ctx.stop = &job->stop;
    ctx.deadline_ns = job->deadline_ns;
    ctx.owner = (batch_job*)job;
    batch__stat_add(&e->st->running, 1, e->shared);
    uint64_t seq0 = e->self ? batch__worker_seq(e->self) : 0;
    int rc = n->fn ? n->fn(&ctx, n->user) : 0;
    /* relaxed: read after the job's latch, like the counters */
    if (e->self && batch__worker_seq(e->self) != seq0) atomic_store_explicit(&e->st->nested, 1, memory_order_relaxed);
    batch__stat_add(&e->st->running, UINT64_MAX, e->shared);   /* - 1 */
    uint64_t end = e->times ? batch__ticks(job->tsc) : 0;
    if (end < start) end = start;   /* TSCs of two cores out of step, the thread moved */
    e->last_end = end;
    e->last_ran = true;
    n->t_start = start;
    n->t_end = end;
    n->attempts++;
    n->worker = (int16_t)e->worker;
    if (e->times) {
        batch__stat_add(&e->st->busy, end - start, e->shared);
        batch__stat_max(&e->st->last_end, end, e->shared);
    }
    if (*slot) { *slot = false; batch__walk_slot_release(e, w); }
    *msg_set = ctx.msg_set;
    return rc;
}

/* Attempt: decides n's outcome, running its function if it may run. BATCH__WALK_SETTLE with
   *outcome; BATCH__WALK_AWAY when n left the walk (queued for its retry, parked for a slot);
   BATCH__WALK_AGAIN when it failed and waits for a retry (the next round queues the wait). */
BATCH__INLINE int batch__walk_attempt(batch__walk_env* e, batch__walk* w, batch__gnode* n, batch_task_status* outcome) {
    batch__job* job = e->job;
    if (n->journaled) {   /* done in an earlier process: settled as the journal says */
        *outcome = (batch_task_status)n->journaled;
        if (*outcome == BATCH_TASK_FAILED && job->policy == BATCH_POLICY_FAIL_FAST) {
            int expected = BATCH__STOP_NONE;
            atomic_compare_exchange_strong(&job->stop, &expected, BATCH__STOP_FAIL_FAST);
        }
        return BATCH__WALK_SETTLE;
    }
    bool slot = false, journal_it = false;
    if (n->flags & BATCH__NF_SLOT) { n->flags &= (uint8_t)~BATCH__NF_SLOT; slot = true; }
    /* relaxed: ordered after the predecessors' writes by the acq_rel release of pending */
    uint8_t poison = atomic_load_explicit(&n->poison, memory_order_relaxed);
    int stop = atomic_load_explicit(&job->stop, memory_order_relaxed);
    if (!stop && job->deadline_ns && batch_now_ns() >= job->deadline_ns) {
        int expected = BATCH__STOP_NONE;
        atomic_compare_exchange_strong(&job->stop, &expected, BATCH__STOP_DEADLINE);
        stop = 1;
    }
    if (n->retry_due) {   /* the wait goes to the pool's delayed queue, in slices */
        uint64_t now = batch_now_ns();
        if (!stop && now < n->retry_due && batch__gnode_submit(job, n, batch__retry_slice(n->retry_due, now))) {
            e->last_end = 0;
            return BATCH__WALK_AWAY;
        }
        n->retry_due = 0;   /* due, stopped, or the delayed queue is out of memory: now */
    }
    if (stop || (poison & BATCH__POISON_CANCEL)) {
        /* a task that failed and was waiting for a retry stays FAILED */
        *outcome = n->attempts ? BATCH_TASK_FAILED : BATCH_TASK_CANCELLED;
        if (n->attempts && stop) atomic_store_explicit(&job->cut, 1, memory_order_relaxed);
    } else if (poison & BATCH__POISON_SKIP) {
        *outcome = BATCH_TASK_SKIPPED;
    } else {
        if (job->max_conc && !slot) {
            if (!batch__slot_acquire(job, n)) { e->last_end = 0; return BATCH__WALK_AWAY; }   /* parked */
            slot = true;
        }
        int msg_set = 0;
        int rc = batch__walk_call(e, w, n, &slot, &msg_set);
        if (rc != 0) {
            n->error = rc;
            if (n->attempts <= n->max_retries && !(msg_set & BATCH__MSG_PERMANENT) &&
                !atomic_load_explicit(&job->stop, memory_order_relaxed)) {
                atomic_store_explicit(&n->status, BATCH_TASK_QUEUED, memory_order_relaxed);
                uint64_t rng = 0;   /* jitter: seeded from the task and the clock */
                n->retry_due = batch__retry_due((uint64_t)n->retry_base_us * 1000u, (uint64_t)n->retry_max_us * 1000u,
                                                (n->flags & BATCH__NF_JITTER) != 0, n->attempts - 1, batch_now_ns(),
                                                job->deadline_ns, &rng, (uint64_t)(uintptr_t)n);
                return BATCH__WALK_AGAIN;
            }
            *outcome = BATCH_TASK_FAILED;
            journal_it = true;   /* retries exhausted: final (a stop that cuts retries is not) */
            if (job->policy == BATCH_POLICY_FAIL_FAST) {
                int expected = BATCH__STOP_NONE;
                atomic_compare_exchange_strong(&job->stop, &expected, BATCH__STOP_FAIL_FAST);
            }
        } else {
            *outcome = BATCH_TASK_COMPLETED;
            journal_it = true;
        }
    }
    if (journal_it && job->jn && !batch__graph_journal_task(job, n, *outcome)) {
        int expected = BATCH__STOP_NONE;   /* the journal cannot follow: stop the job */
        atomic_compare_exchange_strong(&job->stop, &expected, BATCH__STOP_IO);
    }
    if (BATCH__UNLIKELY(job->deadline_ns != 0) && e->last_ran) batch__graph_ended_late(job);
    if (slot) batch__walk_slot_release(e, w);   /* settled without running, holding a handed-over slot */
    return BATCH__WALK_SETTLE;
}

/* Settle: the outcome is n's status and counted. */
BATCH__INLINE void batch__walk_settle(batch__walk_env* e, batch__gnode* n, batch_task_status outcome) {
    atomic_store_explicit(&n->status, (uint8_t)outcome, memory_order_relaxed);
    if (e->times && n->attempts && n->t_start)   /* for the peak concurrency, at wait */
        batch__ran_link(e->g, e->st, e->shared, n->worker != e->worker, n);
    switch (outcome) {
        case BATCH_TASK_COMPLETED: batch__stat_add(&e->st->completed, 1, e->shared); break;
        case BATCH_TASK_FAILED: batch__stat_add(&e->st->failed, 1, e->shared); break;
        case BATCH_TASK_SKIPPED: batch__stat_add(&e->st->skipped, 1, e->shared); break;
        default: batch__stat_add(&e->st->cancelled, 1, e->shared); break;
    }
}

/* Release, for one successor s (index k1) of a settled node: its failure mark, its count of
   pending predecessors; when it becomes ready, the first goes to *first (run in place), the
   others to the pool. */
BATCH__INLINE void batch__walk_release_one(batch__walk_env* e, batch__walk* w, uint32_t k1, uint8_t prop, batch__gnode** first) {
    batch__job* job = e->job;
    batch_graph* g = e->g;
    batch__gnode* s = batch__node(g, k1);
    /* relaxed: published by the acq_rel decrement below */
    if (prop) atomic_fetch_or_explicit(&s->poison, prop, memory_order_relaxed);
    /* acq_rel: the last predecessor to finish sees every predecessor's writes (acquire) and
       publishes its own to the successor it releases (release). A sole predecessor needs no
       RMW (nothing to order against), and leaving pending at 1 leaves it ready for the next run. */
    uint32_t np = g->pred_off[k1 + 1] - g->pred_off[k1];
    bool now_ready;
    if (np == 1) now_ready = true;
    else if (!prop && np >= BATCH__HOLD_MIN && (!w->held || w->hold == k1)) { w->hold = k1; w->held++; now_ready = false; }
    else now_ready = atomic_fetch_sub_explicit(&s->pending, 1, memory_order_acq_rel) == 1;
    if (!now_ready) return;
    s->job = job;   /* only the last predecessor writes it; the queue publishes it */
    if (!*first) *first = s;
    else if (e->self && (s->level == BATCH__LEVEL_RUN ? job->level : s->level) == BATCH__LEVEL_NORMAL) {
        w->ready[w->nready++] = s;   /* queued in bulk: one counter RMW, one wake-up */
        if (w->nready == BATCH__RELEASE_BULK) batch__gnode_flush(job, e->self, w->ready, &w->nready, &w->overflow);
    } else if (!batch__gnode_submit(job, s, 0)) {
        s->next_local = w->overflow;
        w->overflow = s->idx;
    }
}

/* Release: n's successors (a wide task's as a range), its progress events; returns the node to
   run next in place, or NULL. */
BATCH__INLINE batch__gnode* batch__walk_release(batch__walk_env* e, batch__walk* w, batch__gnode* n, batch_task_status outcome) {
    batch__job* job = e->job;
    batch_graph* g = e->g;
    uint8_t prop = outcome == BATCH_TASK_COMPLETED ? 0
                 : outcome == BATCH_TASK_CANCELLED ? BATCH__POISON_CANCEL : BATCH__POISON_SKIP;
    uint32_t idx = n->idx;
    /* settled: every predecessor is done with these, so they are reset for the next run
       (published to it by the latch: its launch comes after a wait) */
    atomic_store_explicit(&n->poison, 0, memory_order_relaxed);
    atomic_store_explicit(&n->pending, g->pred_off[idx + 1] - g->pred_off[idx], memory_order_relaxed);
    batch__gnode* first = NULL;
    uint32_t b = g->succ_off[idx], end = g->succ_off[idx + 1];
    bool ranged = false;
    /* ranges at the normal level only: halves are NORMAL deque tasks */
    if (!prop && e->self && end - b >= BATCH__RANGE_MIN && job->level == BATCH__LEVEL_NORMAL) {
        if (w->rb >= w->re) {   /* walked here; a half for every other worker at once */
            w->rb = b;
            w->re = end;
            for (int k = 1; k < batch_pool_workers(job->pool) && w->re - w->rb >= 2; k *= 2)
                if (!batch__range_split(job, e->self, w->rb, &w->re)) break;
            ranged = true;
        } else {
            ranged = batch__push_range(job, e->self, b, end);
        }
    }
    for (uint32_t k = ranged ? end : b; k < end; k++) batch__walk_release_one(e, w, g->succ[k], prop, &first);
    if (w->nready) batch__gnode_flush(job, e->self, w->ready, &w->nready, &w->overflow);
    if (job->head.prog.fn && !n->journaled)
        batch__gnode_events(job, n, outcome, e->last_end && job->tsc ? batch_now_ns() : e->last_end, &w->ticks);
    /* urgent (CRITICAL, HIGH) work waits in the pool: the successor goes to the queue of its
       level and this worker back to the pool, which takes urgent work first */
    if (first && e->pooled && batch__pool_queued(job->pool, batch__urgent_mask(job)) &&
        batch__gnode_submit(job, first, 0))
        first = NULL;
    return first;
}

BATCH__PRIVATE void batch__gnode_run(batch__job* job, batch__gnode* n, uint32_t rb, uint32_t re, bool pooled) {
    batch__walk_env e;
    e.job = job;
    e.g = job->g;
    e.worker = batch_pool_worker_index(job->pool);
    bool shared;   /* a local: the environment's address is never taken outside the loop's steps */
    e.st = batch__job_slot(job, e.worker, &shared);
    e.shared = shared;
    e.self = batch__self(job->pool);
    e.times = job->times;
    e.pooled = pooled;
    e.last_ran = false;
    e.last_end = e.times && pooled ? batch__clock_take(e.self) : 0;
    batch__walk w;
    w.overflow = BATCH__NO_NODE;
    w.rb = rb;
    w.re = re;
    w.hold = BATCH__NO_NODE;
    w.held = 0;
    w.skipped = w.ticks = 0;
    w.nready = 0;
    for (;;) {
        if (!n && !(n = batch__walk_take(&e, &w))) break;
        batch__walk_enter(&e, &w, n);
        batch_task_status outcome = BATCH_TASK_PENDING;
        int step = batch__walk_attempt(&e, &w, n, &outcome);
        if (step == BATCH__WALK_AWAY) { n = NULL; continue; }
        if (step == BATCH__WALK_AGAIN) continue;   /* the next round queues the retry's wait */
        batch__walk_settle(&e, n, outcome);
        n = batch__walk_release(&e, &w, n, outcome);
    }
    /* hand the last end on only if this call's last node ran and nothing slow came after its
       clock read (a progress callback, a journal write) */
    if (e.times && pooled && e.last_end && e.last_ran && !job->head.prog.fn && !job->jn) batch__clock_put(e.self, e.last_end);
}

/* batch__gnode_run, and on a thread that is not one of the pool's workers (an inline pool, the
   launch) inside a frame of the job: a wait for the job from one of its tasks is then refused.
   (On a worker, the job's stats line shows its running tasks.) Kept out of batch__gnode_run,
   whose loop state should stay in registers. */
BATCH__PRIVATE void batch__gnode_run_framed(batch__job* job, batch__gnode* n, uint32_t rb, uint32_t re, bool pooled) {
    if (batch__self(job->pool)) { batch__gnode_run(job, n, rb, re, pooled); return; }
    batch__job_frame frame;
    batch__frame_push(&frame, (batch_job*)job);
    batch__gnode_run(job, n, rb, re, pooled);
    batch__frame_pop(&frame);
}

BATCH__PRIVATE void batch__gnode_task(batch_pool* p, void* user) {
    (void)p;
    batch__gnode* n = (batch__gnode*)user;
    batch__gnode_run_framed(n->job, n, 0, 0, true);
}

/* A half of a wide task's successor range (batch__push_range): arg = b << 32 | e. */
BATCH__PRIVATE void batch__grange_task(batch_pool* p, void* user, uint64_t arg) {
    (void)p;
    batch__gnode_run_framed((batch__job*)user, NULL, (uint32_t)(arg >> 32), (uint32_t)arg, true);
}

BATCH__PRIVATE void batch__job_free(batch__job* job) {
    void* ctx = job->g->alloc_ctx;
    batch__mutex_destroy(&job->park_lock);
    for (batch__gtry* t = atomic_load(&job->tries); t;) {
        batch__gtry* next = t->next;
        BATCH_FREE(t, ctx);
        t = next;
    }
    BATCH_FREE(job->raw, ctx);
}

static const batch__job_ops batch__graph_job_ops;   /* defined below */

BATCH_API batch_result batch_graph_launch(batch_pool* pool, batch_graph* g, const batch_run_desc* desc, batch_job** out) {
    if (!out) return BATCH_ERR_INVALID;
    *out = NULL;
    if (!pool || !g) return BATCH_ERR_INVALID;
    batch_run_desc d;
    memset(&d, 0, sizeof d);
    if (desc) d = *desc;
    if ((unsigned)d.policy > BATCH_POLICY_FAIL_FAST || d.max_concurrency < 0 ||
        BATCH__ENUM_BAD(d.priority, BATCH_PRIORITY_COUNT_) || d.timeout_ns > ((uint64_t)1 << 62) ||
        !batch__progress_desc_ok(&d.progress) || !batch__journal_desc_ok(&d.journal))
        return BATCH_ERR_INVALID;
    if (batch__pool_refuses_jobs(pool)) return BATCH_ERR_SHUTDOWN;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g->busy, &expected, 1)) return BATCH_ERR_BUSY;
    batch_result r = batch__graph_finalize(g);
    if (r != BATCH_OK) { atomic_store(&g->busy, 0); return r; }
    int nstats = batch_pool_workers(pool) + 1;
    size_t sz = sizeof(batch__job) + BATCH__CACHE_LINE + (size_t)nstats * sizeof(batch__job_stats) + BATCH__CACHE_LINE;
    void* raw = BATCH_MALLOC(sz, g->alloc_ctx);
    if (!raw) { atomic_store(&g->busy, 0); return BATCH_ERR_NOMEM; }
    memset(raw, 0, sz);
    batch__job* job = (batch__job*)batch__align_up(raw);
    job->raw = raw;
    job->head.ops = &batch__graph_job_ops;
    job->stats = (batch__job_stats*)batch__align_up(job + 1);
    for (int i = 0; i < nstats; i++) atomic_init(&job->stats[i].ran, BATCH__NO_NODE);
    atomic_init(&job->tries, NULL);
    job->nstats = nstats;
    if (!batch__mutex_init(&job->park_lock)) { BATCH_FREE(raw, g->alloc_ctx); atomic_store(&g->busy, 0); return BATCH_ERR_NOMEM; }
    job->pool = pool;
    job->g = g;
    job->policy = d.policy;
    job->max_conc = d.max_concurrency;
    job->level = (uint8_t)(d.priority == BATCH_PRIORITY_DEFAULT ? BATCH__LEVEL_NORMAL : (int)d.priority - 1);
    job->times = !d.no_task_times;
    for (int l = 0; l < BATCH__LEVELS; l++) job->park_head[l] = job->park_tail[l] = BATCH__NO_NODE;
    job->tsc = job->times && batch__pool_tsc(pool);
    {
        batch__clockpair at = batch__clockpair_now(job->tsc);
        job->launch_ns = at.ns;
        job->launch_tick = at.tick;
    }
    job->deadline_ns = d.timeout_ns ? job->launch_ns + d.timeout_ns : 0;
    batch__progress_init(&job->head.prog, &d.progress, batch_pool_workers(pool), job->launch_ns);
    batch_counter_init(&job->latch, pool);
    /* no pass over the tasks: each task resets its per-run fields when the run first reaches it
       (epoch) and leaves its counters ready for the next run when it settles */
    job->epoch = ++g->epoch;
    if (d.journal.path) {
        job->rerun_failed = d.journal.rerun_failed != 0;
        uint64_t fp = d.journal.fingerprint ? d.journal.fingerprint : batch__graph_fingerprint(g);
        r = batch__journal_open(&job->jn, &d.journal, BATCH__JKIND_GRAPH, fp, 0, BATCH__JTASK_LEN,
                                batch__graph_replay, job, g->alloc_ctx);
        if (r != BATCH_OK) {
            batch__graph_clear_marks(g);
            batch__mutex_destroy(&job->park_lock);
            BATCH_FREE(raw, g->alloc_ctx);
            atomic_store(&g->busy, 0);
            return r;
        }
        for (uint32_t i = 0; i < g->nnodes; i++) job->nresumed += batch__node(g, i)->journaled != 0;
    }
    batch_counter_add(&job->latch, 1);   /* the launch's own count, until the roots are queued */
    for (size_t i = 0; i < g->nroots; i++) {
        batch__gnode* x = batch__node(g, g->roots[i]);
        x->job = job;
        atomic_store_explicit(&x->status, BATCH_TASK_QUEUED, memory_order_relaxed);
        if (!batch__gnode_submit(job, x, 0)) {
            /* out of task memory half-way: the job stops. The roots not queued are settled here
               as CANCELLED, the queued ones see the stop and end CANCELLED unless they already
               started; the job reports the error */
            int e = BATCH__STOP_NONE;
            atomic_compare_exchange_strong(&job->stop, &e, BATCH__STOP_LAUNCH);
            job->launch_error = batch__pool_shutting_down(pool) ? BATCH_ERR_SHUTDOWN : BATCH_ERR_NOMEM;
            for (size_t k = i; k < g->nroots; k++) batch__gnode_run_framed(job, batch__node(g, g->roots[k]), 0, 0, false);
            break;
        }
    }
    *out = (batch_job*)job;
    batch__counter_sub1(&job->latch);   /* last touch: the job may be over at once */
    return BATCH_OK;
}

/* The peak from the per-slot lists of tasks that ran (batch__job_stats.ran), without memory
   or a sort. A worker runs its tasks one after another, so its list, latest first, is a
   sequence of events in decreasing time (a run of back-to-back tasks gives its first task's
   start and its last task's end: batch__ran_link); merging the lists (a heap of slots) gives every
   event in decreasing time, swept backwards: an end enters a task, a start leaves it. Keys are
   time << 1 | is_start, so at equal times a start comes first, and tasks that only touch do
   not overlap. A list that is not in order (a task waited inside another and helped, or
   threads shared the slot) makes this return false: the caller then sorts. Zero-length tasks
   hold no instant and are passed over (*any_ran still says a task ran). */
typedef struct batch__peak_stream { uint64_t key; uint32_t node; bool at_start; } batch__peak_stream;
BATCH__PRIVATE bool batch__peak_advance(const batch_graph* g, batch__peak_stream* s, bool* any_ran) {
    uint64_t prev = s->key;
    if (s->at_start) {   /* the next event is this node's start */
        s->key = batch__node(g, s->node)->t_start << 1 | 1;
        s->at_start = false;
    } else {
        if (s->key != UINT64_MAX) s->node = batch__node(g, s->node)->next_local;
        while (s->node != BATCH__NO_NODE) {
            const batch__gnode* x = batch__node(g, s->node);
            *any_ran = true;
            if (x->seg != BATCH__SEG_TASK || x->t_end > x->t_start) break;
            s->node = x->next_local;
        }
        if (s->node == BATCH__NO_NODE) { s->key = 0; return true; }   /* 0: exhausted */
        const batch__gnode* x = batch__node(g, s->node);
        if (x->seg == BATCH__SEG_FIRST) {   /* a run's first task: the run's start */
            s->key = x->t_start << 1 | 1;
            s->at_start = false;
        } else {                            /* a task, or a run's last task: the end */
            s->key = x->t_end << 1;
            s->at_start = x->seg == BATCH__SEG_TASK;
        }
    }
    return s->key <= prev;
}
BATCH__PRIVATE void batch__peak_sift(batch__peak_stream* h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].key > h[m].key) m = l;
        if (r < n && h[r].key > h[m].key) m = r;
        if (m == i) return;
        batch__peak_stream t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}
BATCH__PRIVATE bool batch__peak_from_lists(const batch__job* job, uint64_t* peak_out, bool* any_ran) {
    batch__peak_stream h[BATCH_MAX_WORKERS + 1];
    size_t n = 0;
    for (int i = 0; i < job->nstats; i++) {
        batch__peak_stream s = { UINT64_MAX, atomic_load_explicit(&job->stats[i].ran, memory_order_relaxed), false };
        if (!batch__peak_advance(job->g, &s, any_ran)) return false;
        if (s.key) h[n++] = s;
    }
    for (size_t i = n; i-- > 0;) batch__peak_sift(h, n, i);
    uint64_t cur = 0, peak = 0;
    while (n) {
        if (h[0].key & 1) cur--;
        else if (++cur > peak) peak = cur;
        if (!batch__peak_advance(job->g, &h[0], any_ran)) return false;
        if (!h[0].key) h[0] = h[--n];
        batch__peak_sift(h, n, 0);
    }
    *peak_out = peak;
    return true;
}

BATCH__PRIVATE int batch__cmp_u64(const void* a, const void* b) {
    uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
    return (x > y) - (x < y);
}

/* Most tasks running at once, from the recorded [start, end) of each task's last attempt: from
   the per-slot lists when they are in order (no memory, no sort), else sorted. A run in which
   only zero-length tasks ran reports 1. 0 when out of memory. */
BATCH__PRIVATE uint64_t batch__peak_sorted(const batch__job* job, void* ctx);
BATCH__PRIVATE uint64_t batch__peak_concurrency(const batch__job* job, void* ctx) {
    uint64_t peak = 0;
    bool any_ran = false;
    /* one worker ran every task, one after another (nothing nested): 1, without a walk */
    int lists = 0, last = -1;
    for (int i = 0; i < job->nstats; i++)
        if (atomic_load_explicit(&job->stats[i].ran, memory_order_relaxed) != BATCH__NO_NODE) { lists++; last = i; }
    if (lists == 0) return 0;
    if (lists == 1 && last < job->nstats - 1 && !atomic_load_explicit(&job->stats[last].nested, memory_order_relaxed)) return 1;
    if (batch__peak_from_lists(job, &peak, &any_ran)) return peak ? peak : any_ran;
    return batch__peak_sorted(job, ctx);
}

/* The peak from every task's times, sorted, for lists out of order. Events (time since launch
   << 1 | is_start: an end sorts before a start at the same time) are bucketed by time into as
   many buckets as events (one counting pass, one scatter), then each bucket, a few events on
   average, is insertion-sorted (a crowded one, as when most tasks ran in a burst and one long
   after, by qsort): linear in the task count for an even spread of times, O(n log n) at
   worst. */
BATCH__PRIVATE uint64_t batch__peak_sorted(const batch__job* job, void* ctx) {
    const batch_graph* g = job->g;
    uint64_t peak = 0;
    bool any_ran = false;
    size_t n = g->nnodes, m = 0;
    uint64_t* ev = (uint64_t*)BATCH__BIG_MALLOC((4 * n + 2) * sizeof(uint64_t), ctx);
    if (!ev) return 0;
    uint64_t* out = ev + 2 * n + 1;
    uint64_t maxv = 0;
    for (size_t i = 0; i < n; i++) {
        const batch__gnode* x = batch__node(g, (uint32_t)i);
        if (!x->attempts || !x->t_start) continue;
        any_ran = true;
        if (x->t_end <= x->t_start) continue;   /* holds no instant */
        uint64_t a = (x->t_start - job->launch_tick) << 1 | 1, b = (x->t_end - job->launch_tick) << 1;
        ev[m++] = a;
        ev[m++] = b;
        if (a > maxv) maxv = a;
    }
    /* buckets: m of them, bucket(v) = v * m / (maxv + 1) without overflow (v <= maxv) */
    size_t nb = m ? m : 1;
    size_t* cnt = (size_t*)BATCH__BIG_MALLOC((nb + 1) * sizeof(size_t), ctx);
    if (!cnt) { BATCH_FREE(ev, ctx); return 0; }
    memset(cnt, 0, (nb + 1) * sizeof(size_t));
    double scale = (double)nb / ((double)maxv + 1.0);
#define BATCH__BUCKET(v) ((size_t)((double)(v) * scale) < nb ? (size_t)((double)(v) * scale) : nb - 1)
    for (size_t i = 0; i < m; i++) cnt[BATCH__BUCKET(ev[i]) + 1]++;
    for (size_t k = 0; k < nb; k++) cnt[k + 1] += cnt[k];
    for (size_t i = 0; i < m; i++) out[cnt[BATCH__BUCKET(ev[i])]++] = ev[i];
#undef BATCH__BUCKET
    /* the scatter left cnt[k] at the end of bucket k; buckets are in order: sort each */
    uint64_t cur = 0;
    size_t begin = 0;
    for (size_t k = 0; k < nb; k++) {
        size_t end = cnt[k];
        if (end - begin > 32) qsort(out + begin, end - begin, sizeof(uint64_t), batch__cmp_u64);   /* a crowded bucket */
        else for (size_t i = begin + 1; i < end; i++) {
            uint64_t v = out[i];
            size_t j = i;
            while (j > begin && out[j - 1] > v) { out[j] = out[j - 1]; j--; }
            out[j] = v;
        }
        for (size_t i = begin; i < end; i++) {
            if (out[i] & 1) { if (++cur > peak) peak = cur; }
            else if (cur) cur--;
        }
        begin = end;
    }
    BATCH_FREE(cnt, ctx);
    BATCH_FREE(ev, ctx);
    return peak ? peak : any_ran;
}

/* A task of the job on this thread's stack: on a worker, its stats line counts the tasks of the
   job running there (only this thread writes it); elsewhere, the thread's frames. */
BATCH__PRIVATE bool batch__graph_self_call(batch_job* pub) {
    batch__job* job = (batch__job*)pub;
    batch__worker* w = batch__self(job->pool);
    if (w && w->index < job->nstats - 1 && atomic_load_explicit(&job->stats[w->index].running, memory_order_relaxed))
        return true;
    return batch__job_self_call(pub);
}

BATCH__PRIVATE batch_result batch__graph_job_wait(batch_job* pub, batch_job_summary* summary) {
    batch__job* job = (batch__job*)pub;
    if (!job->done && batch__graph_self_call(pub)) return BATCH_ERR_BUSY;   /* it could never end */
    if (!job->done) {
        batch_result wr = batch__job_wait_latch(pub, &job->latch);
        if (wr != BATCH_OK) return wr;
        batch_job_summary* s = &job->summary;
        batch_graph* g = job->g;
        s->total = (uint64_t)g->nnodes;
        uint64_t last_end = job->launch_tick, busy = 0;
        for (int i = 0; i < job->nstats; i++) {
            batch__job_stats* st = &job->stats[i];
            s->completed += atomic_load(&st->completed);
            s->failed += atomic_load(&st->failed);
            s->skipped += atomic_load(&st->skipped);
            s->cancelled += atomic_load(&st->cancelled);
            s->retries += atomic_load(&st->retried);
            busy += atomic_load(&st->busy);
            uint64_t e = atomic_load(&st->last_end);
            if (e > last_end) last_end = e;
        }
        batch__clockpair launch = { job->launch_tick, job->launch_ns };
        g->tb = batch__timebase_make(job->tsc, batch__pool_origin(job->pool), launch, batch__clockpair_now(job->tsc));
        s->busy_ns = batch__timebase_span(&g->tb, busy);
        s->wall_ns = (job->times ? batch__timebase_ns(&g->tb, last_end) : batch_now_ns()) - job->launch_ns;
        for (int i = 0; i + 1 < job->nstats; i++) batch__ran_close(g, &job->stats[i]);
        s->peak_concurrency = job->times ? batch__peak_concurrency(job, g->alloc_ctx) : 0;
        s->resumed = job->nresumed;
        int stop = atomic_load(&job->stop);
        if (job->jn) {
            if (batch__journal_close(job->jn) != BATCH_OK) stop = BATCH__STOP_IO;
            job->jn = NULL;
            batch__graph_clear_marks(g);
        }
        if (stop == BATCH__STOP_IO) {
            s->status = BATCH_JOB_FAILED;
            s->result = BATCH_ERR_IO;
        } else if (stop == BATCH__STOP_DEADLINE) {   /* it had not finished by the deadline */
            s->status = BATCH_JOB_CANCELLED;
            s->result = BATCH_ERR_TIMEOUT;
        } else if (s->cancelled || (atomic_load(&job->cut) && stop != BATCH__STOP_FAIL_FAST)) {
            if (stop == BATCH__STOP_FAIL_FAST) { s->status = BATCH_JOB_FAILED; s->result = BATCH_ERR_FAILED; }
            else if (stop == BATCH__STOP_LAUNCH) { s->status = BATCH_JOB_FAILED; s->result = job->launch_error; }
            else { s->status = BATCH_JOB_CANCELLED; s->result = BATCH_ERR_CANCELLED; }
        } else if (s->failed || s->skipped) {
            if (job->policy == BATCH_POLICY_FAIL_FAST || s->completed == 0) { s->status = BATCH_JOB_FAILED; s->result = BATCH_ERR_FAILED; }
            else { s->status = BATCH_JOB_PARTIAL_FAILURE; s->result = BATCH_PARTIAL; }
        } else {
            s->status = BATCH_JOB_COMPLETED;
            s->result = BATCH_OK;
        }
        job->done = true;
        batch__progress_emit(pub, s->status == BATCH_JOB_CANCELLED ? BATCH_EVENT_JOB_CANCELLED : BATCH_EVENT_JOB_COMPLETED, NULL);
        atomic_store(&g->busy, 0);   /* the graph may run again or change */
    }
    if (summary) *summary = job->summary;
    return job->summary.result;
}

BATCH__PRIVATE batch_result batch__graph_job_cancel(batch_job* pub) {
    batch__job* job = (batch__job*)pub;
    int expected = BATCH__STOP_NONE;
    atomic_compare_exchange_strong(&job->stop, &expected, BATCH__STOP_CANCEL);
    return BATCH_OK;
}

BATCH__PRIVATE void batch__graph_job_free(batch_job* pub) { batch__job_free((batch__job*)pub); }

BATCH__PRIVATE void batch__graph_job_counts(batch_job* pub, batch_progress* out, uint64_t* busy) {
    batch__job* job = (batch__job*)pub;
    out->total = (uint64_t)job->g->nnodes;
    uint64_t ticks = 0;
    for (int i = 0; i < job->nstats; i++) {
        batch__job_stats* st = &job->stats[i];
        out->succeeded += atomic_load_explicit(&st->completed, memory_order_relaxed);
        out->failed += atomic_load_explicit(&st->failed, memory_order_relaxed);
        out->skipped += atomic_load_explicit(&st->skipped, memory_order_relaxed);
        out->cancelled += atomic_load_explicit(&st->cancelled, memory_order_relaxed);
        out->retried += atomic_load_explicit(&st->retried, memory_order_relaxed);
        out->running += atomic_load_explicit(&st->running, memory_order_relaxed);
        ticks += atomic_load_explicit(&st->busy, memory_order_relaxed);
    }
    /* during the run: the scale from a pair read now (a snapshot needs no better) */
    batch__clockpair launch = { job->launch_tick, job->launch_ns }, now = { batch__ticks(job->tsc), batch_now_ns() };
    batch__timebase tb = batch__timebase_make(job->tsc, batch__pool_origin(job->pool), launch, now);
    *busy += batch__timebase_span(&tb, ticks);
    out->processed = out->succeeded + out->failed + out->skipped + out->cancelled;
}

BATCH__PRIVATE char* batch__graph_message_buffer(batch_ctx* ctx);   /* below, with data flow */
BATCH__PRIVATE batch_result batch__graph_job_facts(batch_job* pub, batch__job_facts* out);   /* records for reports */
BATCH__PRIVATE void batch__graph_job_record(batch_job* pub, size_t i, batch__record* out);
BATCH__PRIVATE const void* batch__graph_job_earlier(batch_job* pub, const void* cursor, batch__record* out);
static const batch__job_ops batch__graph_job_ops = { batch__graph_job_wait, batch__graph_job_cancel, batch__graph_job_free,
                                                     batch__graph_job_counts, batch__graph_self_call,
                                                     batch__graph_message_buffer, batch__graph_job_facts,
                                                     batch__graph_job_record, batch__graph_job_earlier };

BATCH_API batch_result batch_graph_run(batch_pool* pool, batch_graph* g, const batch_run_desc* desc, batch_job_summary* summary) {
    batch_job* job;
    batch_result r = batch_graph_launch(pool, g, desc, &job);
    if (r != BATCH_OK) {   /* nothing ran: a defined summary all the same */
        if (summary) { memset(summary, 0, sizeof *summary); summary->status = BATCH_JOB_FAILED; summary->result = r; }
        return r;
    }
    r = batch_job_wait(job, summary);
    batch_job_destroy(job);
    return r;
}

BATCH_API batch_result batch_graph_task_info(const batch_graph* g, batch_task t, batch_task_info* out) {
    int64_t i = batch__task_index(g, t);
    if (i < 0 || !out) return BATCH_ERR_INVALID;
    if (atomic_load(&((batch_graph*)(uintptr_t)g)->busy)) return BATCH_ERR_BUSY;
    const batch__gnode* x = batch__node(g, (uint32_t)i);   /* batch__task_index: [0, nnodes) */
    out->name = x->name;
    out->status = batch__node_status(x);
    out->attempts = x->attempts;
    out->error = x->error;
    out->message = (x->msg && x->msg[0]) ? x->msg : NULL;
    out->start_ns = batch__timebase_ns(&g->tb, x->t_start);
    out->end_ns = batch__timebase_ns(&g->tb, x->t_end);
    out->worker = x->worker;
    out->output = atomic_load_explicit(&((batch__gnode*)(uintptr_t)x)->output, memory_order_relaxed);
    return BATCH_OK;
}

/* ---- inside a task: data flow (the rest of batch_ctx is job.c's) --------------------------- */
/* The task a context runs, and its job. */
#define BATCH__CTX_NODE(ctx) ((batch__gnode*)(ctx)->task)
#define BATCH__CTX_JOB(ctx) ((batch__job*)(void*)(ctx)->owner)

/* batch__job_ops.message_buffer: a task's message lives with the task, made on its first failure */
BATCH__PRIVATE char* batch__graph_message_buffer(batch_ctx* ctx) {
    batch__gnode* n = BATCH__CTX_NODE(ctx);
    if (!n) return NULL;
    batch_graph* g = BATCH__CTX_JOB(ctx)->g;
    if (!n->msg && (n->msg = (char*)BATCH_MALLOC(BATCH_MESSAGE_MAX, g->alloc_ctx)) != NULL)
        atomic_store_explicit(&g->has_strings, 1, memory_order_relaxed);   /* read after the run */
    return n->msg;
}

BATCH_API void batch_ctx_set_output(batch_ctx* ctx, void* output) {
    /* release: a successor that acquires it sees what it points to (it is also ordered by the
       release of the successor, which happens after this) */
    if (ctx && BATCH__CTX_NODE(ctx)) atomic_store_explicit(&BATCH__CTX_NODE(ctx)->output, output, memory_order_release);
}

BATCH_API size_t batch_ctx_input_count(const batch_ctx* ctx) {
    if (!ctx || !BATCH__CTX_NODE(ctx)) return 0;
    const batch_graph* g = BATCH__CTX_JOB(ctx)->g;
    uint32_t i = BATCH__CTX_NODE(ctx)->idx;
    return g->pred_off[i + 1] - g->pred_off[i];
}

BATCH_API void* batch_ctx_input(const batch_ctx* ctx, size_t k) {
    if (!ctx || !BATCH__CTX_NODE(ctx)) return NULL;
    const batch_graph* g = BATCH__CTX_JOB(ctx)->g;
    uint32_t i = BATCH__CTX_NODE(ctx)->idx;
    if (k >= (size_t)(g->pred_off[i + 1] - g->pred_off[i])) return NULL;
    return atomic_load_explicit(&batch__node(g, g->pred[g->pred_off[i] + k])->output, memory_order_acquire);
}

BATCH_API void* batch_ctx_output_of(const batch_ctx* ctx, batch_task t) {
    if (!ctx || !BATCH__CTX_NODE(ctx)) return NULL;   /* a map item has no graph */
    int64_t i = batch__task_index(BATCH__CTX_JOB(ctx)->g, t);
    return i < 0 ? NULL : atomic_load_explicit(&batch__node(BATCH__CTX_JOB(ctx)->g, (uint32_t)i)->output, memory_order_acquire);
}

BATCH_API batch_task batch_ctx_task(const batch_ctx* ctx) {
    batch_task t = { 0, 0 };
    if (ctx && BATCH__CTX_NODE(ctx)) { t.id = BATCH__CTX_NODE(ctx)->idx + 1; t.tag = BATCH__CTX_JOB(ctx)->g->tag; }
    return t;
}

/* ---- DOT ------------------------------------------------------------------------------------ */
BATCH__PRIVATE void batch__dot_string(FILE* out, const char* s) {
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', out);
        if (*s == '\n') { fputs("\\n", out); continue; }
        fputc(*s, out);
    }
    fputc('"', out);
}

BATCH_API batch_result batch_graph_dump_dot(const batch_graph* cg, FILE* out) {
    if (!cg || !out) return BATCH_ERR_INVALID;
    batch_graph* g = (batch_graph*)(uintptr_t)cg;
    if (atomic_load(&g->busy)) return BATCH_ERR_BUSY;
    batch_result r = batch__graph_finalize(g);
    if (r != BATCH_OK && r != BATCH_ERR_CYCLE) return r;
    static const char* const colour[] = { "white", "lightblue", "yellow", "palegreen", "salmon", "lightgrey", "orange" };
    fputs("digraph ", out);
    batch__dot_string(out, g->name ? g->name : "batch");
    fputs(" {\n  node [shape=box style=filled];\n", out);
    uint32_t n = g->nnodes;
    for (uint32_t i = 0; i < n; i++) {
        char label[300];
        unsigned st = batch__node_status(batch__node(g, i));
        if (batch__node(g, i)->name) snprintf(label, sizeof label, "%s\n%s", batch__node(g, i)->name, batch_task_status_string((batch_task_status)st));
        else snprintf(label, sizeof label, "#%lu\n%s", (unsigned long)i + 1, batch_task_status_string((batch_task_status)st));
        fprintf(out, "  t%lu [label=", (unsigned long)i + 1);
        batch__dot_string(out, label);
        fprintf(out, " fillcolor=%s];\n", colour[st < 7 ? st : 0]);
    }
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = g->succ_off[i]; k < g->succ_off[i + 1]; k++)
            fprintf(out, "  t%zu -> t%u;\n", i + 1, (unsigned)g->succ[k] + 1);
    fputs("}\n", out);
    return (fflush(out) != 0 || ferror(out)) ? BATCH_ERR_IO : BATCH_OK;   /* the whole report reached the file */
}

/* ---- records for reports ------------------------------------------------------------------ */
/* The run's facts once it was waited for: its summary, one record per task. */
BATCH__PRIVATE batch_result batch__graph_job_facts(batch_job* pub, batch__job_facts* out) {
    const batch__job* job = (const batch__job*)pub;
    if (!job->done) return BATCH_ERR_BUSY;
    memset(out, 0, sizeof *out);
    out->kind = BATCH__KIND_GRAPH;
    out->name = job->g->name;
    out->summary = job->summary;
    out->launch_ns = job->launch_ns;
    out->nrecords = (size_t)job->g->nnodes;
    out->keeps_records = true;
    out->timeline = job->times;
    out->workers = job->nstats - 1;
    return BATCH_OK;
}

/* Task i's last attempt, its ticks in ns (the timebase of the run's wait). */
BATCH__PRIVATE void batch__graph_job_record(batch_job* pub, size_t i, batch__record* out) {
    const batch_graph* g = ((const batch__job*)pub)->g;
    const batch__gnode* x = batch__node(g, (uint32_t)i);   /* i < facts.nrecords: [0, nnodes) */
    memset(out, 0, sizeof *out);
    out->index = i;
    out->name = x->name;
    out->status = (int)batch__node_status(x);
    out->status_string = batch_task_status_string((batch_task_status)out->status);
    out->attempts = x->attempts;
    out->retries = x->attempts ? x->attempts - 1 : 0;
    out->error = (int)x->error;
    out->message = (x->msg && x->msg[0]) ? x->msg : NULL;
    out->worker = x->worker;
    out->start_ns = batch__timebase_ns(&g->tb, x->t_start);
    out->end_ns = batch__timebase_ns(&g->tb, x->t_end);
    out->attempt = x->attempts;
}

/* The attempts a retry followed, latest noted first (the cursor: the last one returned). */
BATCH__PRIVATE const void* batch__graph_job_earlier(batch_job* pub, const void* cursor, batch__record* out) {
    batch__job* job = (batch__job*)pub;
    const batch__gtry* t = cursor ? ((const batch__gtry*)cursor)->next : atomic_load_explicit(&job->tries, memory_order_acquire);
    if (!t) return NULL;
    const batch_graph* g = job->g;
    const batch__gnode* x = batch__node(g, t->idx);   /* a task of this graph */
    memset(out, 0, sizeof *out);
    out->index = t->idx;
    out->name = x->name;
    out->status = BATCH_TASK_FAILED;
    out->status_string = batch_task_status_string(BATCH_TASK_FAILED);
    out->attempts = x->attempts;
    out->retries = x->attempts ? x->attempts - 1 : 0;
    out->attempt = t->attempt;
    out->error = (int)t->error;
    out->message = t->msg[0] ? t->msg : NULL;
    out->worker = t->worker;
    out->start_ns = batch__timebase_ns(&g->tb, t->t_start);
    out->end_ns = batch__timebase_ns(&g->tb, t->t_end);
    out->next_ns = batch__timebase_ns(&g->tb, t->t_next);
    return t;
}

#endif /* BATCH__GRAPH_C */
