/* job.c - the job layer: what graph runs and maps share. The job header that batch_job_*
   dispatch on (graphs and maps plug in through batch__job_ops), the task context (batch_ctx:
   batch_ctx_fail, batch_ctx_should_stop, the accessors), why a job stops, one retry rule for tasks and
   batches, and progress reporting (snapshots, smoothed ETA, the throttled callback, events, the
   bar). */
#ifndef BATCH__JOB_C
#define BATCH__JOB_C
#ifndef BATCH_SINGLE_FILE
#  include "pool.c"
#endif

/* ---- records for reports ------------------------------------------------------------------
   What the reports (report.c) read of a finished job, through its ops: the job's facts, and one
   record per graph task (its last attempt) or per kept map batch. The graph and the map make
   them from their own state when a report asks; the run itself never builds them, but for the
   attempts before a retry (the trace draws each attempt): a graph with task times and a map
   with keep_batches note each such attempt when its retry starts. */
typedef enum batch__job_kind { BATCH__KIND_GRAPH, BATCH__KIND_MAP } batch__job_kind;

typedef struct batch__job_facts {
    batch__job_kind kind;
    const char* name;             /* the graph's name; NULL: none (a map has none) */
    batch_job_summary summary;    /* as batch_job_wait gives it */
    uint64_t launch_ns;           /* the job's launch (batch_now_ns clock) */
    size_t nrecords;              /* graph: one per task; map: one per kept batch */
    bool keeps_records;           /* graph: always; map: desc.keep_batches was set */
    bool timeline;                /* the records have times to draw (graph: task times were on;
                                     map: a batch was kept) */
    int workers;                  /* the pool's workers: a timeline's lanes before the one for other
                                     threads (a map: at least 1; over processes: all of them) */
    batch_map_summary map;        /* maps only; zero for a graph */
} batch__job_facts;

typedef struct batch__record {
    size_t index;                 /* graph: the task's index (its id is index + 1); map: the batch's */
    const char* name;             /* graph: the task's name; NULL: none (batches have none) */
    int status;                   /* graph: a batch_task_status; map: a batch_batch_status */
    const char* status_string;
    int attempts, retries;        /* of the task or batch (retries: attempts beyond the first) */
    int error;                    /* graph: the task's error code; map: 0 */
    const char* message;          /* graph: the task's message; NULL: none (batches have none) */
    int worker;                   /* the worker it ran on; -1: another thread */
    uint64_t start_ns, end_ns;    /* the last attempt, on the batch_now_ns clock; 0: no time */
    size_t first, count, succeeded, failed;   /* map: the batch's items; 0 for a task */
    int attempt;                  /* the attempt this record shows (1-based): attempts, or an
                                     earlier one's number (ops.earlier) */
    uint64_t next_ns;             /* an earlier attempt: when the next one started; else 0 */
} batch__record;

typedef struct batch__job_ops {
    batch_result (*wait)(batch_job* job, batch_job_summary* summary);
    batch_result (*cancel)(batch_job* job);
    void (*free)(batch_job* job);
    /* the counts of a snapshot: total, processed ... cancelled, retried, running, busy */
    void (*counts)(batch_job* job, batch_progress* out, uint64_t* busy_ns);
    /* true when the calling thread is inside code of this job (batch__job_self_call) */
    bool (*self_call)(batch_job* job);
    /* where batch_ctx_fail writes the message of a context that has none of its own (ctx->msg NULL):
       a buffer of BATCH_MESSAGE_MAX bytes, or NULL (out of memory: the code is kept) */
    char* (*message_buffer)(batch_ctx* ctx);
    /* records for reports, read at report time only: the facts (BATCH_ERR_BUSY until the job
       was waited for), then record i for i < facts.nrecords */
    batch_result (*facts)(batch_job* job, batch__job_facts* out);
    void (*record)(batch_job* job, size_t i, batch__record* out);
    /* the attempts before the last of each retried task or kept batch, in no particular order,
       each as a record of its own (status failed, start/end its own, next_ns): the first with
       cursor NULL, the next with the cursor the call returned; NULL when there is none (then
       out is not written). Out of memory during the run drops an attempt from this list. */
    const void* (*earlier)(batch_job* job, const void* cursor, batch__record* out);
} batch__job_ops;

/* Why a job stops early: the first reason wins (a compare-and-swap from NONE), except that a
   failed journal write outranks the others. */
enum { BATCH__STOP_NONE = 0, BATCH__STOP_CANCEL, BATCH__STOP_FAIL_FAST, BATCH__STOP_DEADLINE, BATCH__STOP_LAUNCH,
       BATCH__STOP_IO, BATCH__STOP_HALT, BATCH__STOP_NOMEM };

/* The context of a running graph task or map item (what the task function gets). */
struct batch_ctx {
    batch_pool* pool;
    batch_job* owner;             /* the job this task or item belongs to */
    void* task;                   /* graph tasks: the task's node (graph.c); NULL for map items */
    size_t batch_index;           /* map items */
    void* run;                    /* a map's items_fn: the run it processes (map.c's
                                     batch__run); NULL otherwise */
    char* msg;                    /* where batch_ctx_fail writes; NULL: the job's message_buffer */
    int msg_set;                  /* BATCH__MSG_SET | BATCH__MSG_PERMANENT */
    const _Atomic int* stop;      /* non-zero: batch_ctx_should_stop */
    uint64_t deadline_ns;
    int worker;
    int attempt;
};

typedef struct batch__progress {
    batch_progress_fn fn;
    void* user;
    uint64_t interval_ns;
    unsigned events;
    int threads;
    uint64_t launch_ns;
    BATCH__AL8 _Atomic uint64_t next_ns;     /* the next periodic tick */
    batch__spin lock;             /* callbacks of a job never overlap; guards the fields below */
    double eta_prev;
    uint64_t eta_at, peak_running;
} batch__progress;

/* The first member of every job. */
typedef struct batch__job_head {
    const batch__job_ops* ops;
    batch__progress prog;
} batch__job_head;

BATCH__PRIVATE batch__job_head* batch__head(batch_job* job) { return (batch__job_head*)(void*)job; }

/* What this thread is inside of, so that a callback may call back into its own job:
   the progress callback of a job (its progress lock is held), or a map callback that runs under
   the map's lock (on_batch, pull_fn, init/combine). */
static BATCH__THREAD_LOCAL batch_job* batch__tls_progress_cb;
static BATCH__THREAD_LOCAL batch_job* batch__tls_map_locked;

/* The jobs whose items or tasks run on this thread's stack, innermost first: a frame is pushed
   once per map batch attempt, and once per graph run call on a thread that is not a worker of
   the job's pool (inline pools; a graph task on a worker shows on that worker's stats line,
   at no cost per task). A wait for one of these jobs from this thread could never end: the
   job cannot finish before the code that waits returns. */
typedef struct batch__job_frame { batch_job* job; struct batch__job_frame* prev; } batch__job_frame;
static BATCH__THREAD_LOCAL batch__job_frame* batch__tls_frames;
BATCH__PRIVATE void batch__frame_push(batch__job_frame* f, batch_job* job) {
    f->job = job;
    f->prev = batch__tls_frames;
    batch__tls_frames = f;
}
BATCH__PRIVATE void batch__frame_pop(const batch__job_frame* f) { batch__tls_frames = f->prev; }

/* Is this thread inside the job's own code: one of its tasks or items (at any depth of nested
   waits), its progress callback, on_batch or pull_fn? Then waiting for it, or destroying it,
   is refused with BATCH_ERR_BUSY, as the pool refuses its own shutdown from a task. */
BATCH__PRIVATE bool batch__job_self_call(batch_job* job) {
    if (batch__tls_progress_cb == job || batch__tls_map_locked == job) return true;
    for (const batch__job_frame* f = batch__tls_frames; f; f = f->prev)
        if (f->job == job) return true;
    return false;
}

BATCH_API const char* batch_job_status_string(batch_job_status s) {
    static const char* const names[] = { "running", "completed", "partial_failure", "failed", "cancelled" };
    return ((unsigned)s < sizeof names / sizeof names[0]) ? names[s] : "unknown";
}

/* ---- the job lifecycle: one entry point per operation, dispatched on the job's ops ---------- */
BATCH_API batch_result batch_job_wait(batch_job* job, batch_job_summary* summary) {
    if (!job) return BATCH_ERR_INVALID;
    return batch__head(job)->ops->wait(job, summary);
}

BATCH_API batch_result batch_job_cancel(batch_job* job) {
    if (!job) return BATCH_ERR_INVALID;
    return batch__head(job)->ops->cancel(job);
}

BATCH_API batch_result batch_job_destroy(batch_job* job) {
    if (!job) return BATCH_OK;
    const batch__job_ops* ops = batch__head(job)->ops;
    if (ops->self_call(job)) return BATCH_ERR_BUSY;   /* from its own code: nothing is freed */
    ops->wait(job, NULL);
    ops->free(job);
    return BATCH_OK;
}

/* ---- retries: one rule for graph tasks and map batches ------------------------------------
   Retry k (k = 0, 1, ...) comes due base * 2^k after now, capped at max; with jitter, at a
   random point of the upper half of that delay (*rng: the caller's generator, seeded from seed
   on first use). Never past the job's deadline (0: none): a retry due then is settled instead
   of run. At least 1 ns after now. */
BATCH__PRIVATE uint64_t batch__retry_due(uint64_t base_ns, uint64_t max_ns, bool jitter, int k, uint64_t now,
                                         uint64_t deadline_ns, uint64_t* rng, uint64_t seed) {
    uint64_t d = base_ns;
    for (int i = 0; i < k && d < max_ns; i++) d *= 2;
    if (d > max_ns) d = max_ns;
    if (jitter) {
        if (!*rng) *rng = (seed ^ now) | 1;
        d = d / 2 + batch__rand(rng) % (d / 2 + 1);
    }
    uint64_t due = now + (d ? d : 1);
    if (deadline_ns && due > deadline_ns) due = deadline_ns > now ? deadline_ns : now + 1;
    return due;
}

/* A retry that is not yet due waits in the pool's delayed queue in slices of at most this much,
   so that a cancel or a deadline does not wait for a long backoff. */
#define BATCH__RETRY_POLL_NS 50000000u
BATCH__PRIVATE uint64_t batch__retry_slice(uint64_t due, uint64_t now) {
    uint64_t d = due - now;
    return d < BATCH__RETRY_POLL_NS ? d : BATCH__RETRY_POLL_NS;
}

/* ---- inside a task or item ------------------------------------------------------------------ */
BATCH__PRIVATE void batch__vfail(batch_ctx* ctx, const char* fmt, va_list ap) {
    char* dst = ctx->msg;
    if (!dst && ctx->owner) {
        const batch__job_ops* ops = batch__head(ctx->owner)->ops;
        dst = ops->message_buffer ? ops->message_buffer(ctx) : NULL;
    }
    if (dst) {
        vsnprintf(dst, BATCH_MESSAGE_MAX, fmt, ap);
        ctx->msg_set |= BATCH__MSG_SET;
    }
}

BATCH_API int batch_ctx_fail(batch_ctx* ctx, int code, const char* fmt, ...) {
    if (!ctx || !fmt) return code;
    va_list ap;
    va_start(ap, fmt);
    batch__vfail(ctx, fmt, ap);
    va_end(ap);
    return code;
}

BATCH_API int batch_ctx_fail_permanent(batch_ctx* ctx, int code, const char* fmt, ...) {
    if (!ctx) return code;
    ctx->msg_set |= BATCH__MSG_PERMANENT;
    if (!fmt) return code;
    va_list ap;
    va_start(ap, fmt);
    batch__vfail(ctx, fmt, ap);
    va_end(ap);
    return code;
}

BATCH_API int batch_ctx_should_stop(const batch_ctx* ctx) {
    if (!ctx) return 0;
    if (ctx->stop && atomic_load_explicit(ctx->stop, memory_order_relaxed)) return 1;
    return ctx->deadline_ns && batch_now_ns() >= ctx->deadline_ns;
}

BATCH_API int batch_ctx_attempt(const batch_ctx* ctx) { return ctx ? ctx->attempt : 0; }
BATCH_API int batch_ctx_worker(const batch_ctx* ctx) { return ctx ? ctx->worker : -1; }
BATCH_API batch_pool* batch_ctx_pool(const batch_ctx* ctx) { return ctx ? ctx->pool : NULL; }
BATCH_API batch_job* batch_ctx_job(const batch_ctx* ctx) { return ctx ? ctx->owner : NULL; }
BATCH_API size_t batch_ctx_batch_index(const batch_ctx* ctx) { return ctx ? ctx->batch_index : 0; }

BATCH__PRIVATE bool batch__progress_desc_ok(const batch_progress_desc* d) {
    return d->events < (1u << BATCH_EVENT_COUNT_) && d->interval_ms <= 86400000u;
}

BATCH__PRIVATE void batch__progress_init(batch__progress* pr, const batch_progress_desc* d, int threads, uint64_t launch_ns) {
    memset(pr, 0, sizeof *pr);
    pr->fn = d->fn;
    pr->user = d->user_data;
    pr->interval_ns = (uint64_t)(d->interval_ms ? d->interval_ms : 500) * 1000000u;
    pr->events = d->events ? d->events : BATCH_EVENTS_DEFAULT;
    pr->threads = threads > 0 ? threads : 1;
    pr->launch_ns = launch_ns;
    pr->eta_prev = -1;
    atomic_init(&pr->next_ns, launch_ns + pr->interval_ns);
    batch__spin_init(&pr->lock);
}

/* Fills a snapshot. With `state` (pr->lock held) it smooths the ETA and tracks the peak;
   without (the lock is someone else's) the ETA is the raw estimate. */
BATCH__PRIVATE void batch__progress_fill(batch_job* job, batch_progress* out, bool state) {
    batch__job_head* h = batch__head(job);
    batch__progress* pr = &h->prog;
    uint64_t busy = 0, now = batch_now_ns();
    memset(out, 0, sizeof *out);
    h->ops->counts(job, out, &busy);
    if (state && out->running > pr->peak_running) pr->peak_running = out->running;
    out->peak_running = state ? pr->peak_running : out->running;
    double elapsed = (double)(now - pr->launch_ns) / 1e9;
    out->elapsed_s = elapsed;
    out->items_per_s = elapsed > 0 ? (double)out->processed / elapsed : 0;
    out->efficiency = elapsed > 0 ? (double)busy / 1e9 / (elapsed * pr->threads) : 0;
    if (out->efficiency > 1) out->efficiency = 1;
    out->percent = -1;
    out->eta_s = -1;
    if (out->total) {
        double f = (double)out->processed / (double)out->total;
        out->percent = 100.0 * f;
        if (out->processed && out->processed < out->total) {
            /* the raw estimate from the average rate, blended with the previous estimate (moved
               on by the time since) in proportion to the fraction done: early on, when the
               rate says little, the estimate moves slowly; it does not jump (GNU parallel) */
            double raw = (double)(out->total - out->processed) * elapsed / (double)out->processed;
            double eta = raw;
            if (state && pr->eta_prev >= 0) {
                double moved = pr->eta_prev - (double)(now - pr->eta_at) / 1e9;
                if (moved < 0) moved = 0;
                eta = f * raw + (1 - f) * moved;
            }
            if (state) { pr->eta_prev = eta; pr->eta_at = now; }
            out->eta_s = eta;
        } else if (out->processed >= out->total) {
            out->eta_s = 0;
        }
    }
}

BATCH_API batch_result batch_job_progress(batch_job* job, batch_progress* out) {
    if (!job || !out) return BATCH_ERR_INVALID;
    batch__progress* pr = &batch__head(job)->prog;
    if (batch__tls_progress_cb == job) {            /* from its own progress callback */
        batch__progress_fill(job, out, true);
    } else if (batch__tls_map_locked == job) {      /* from on_batch: never wait for pr->lock */
        bool got = batch__spin_trylock(&pr->lock);
        batch__progress_fill(job, out, got);
        if (got) batch__spin_unlock(&pr->lock);
    } else {
        batch__spin_lock(&pr->lock);
        batch__progress_fill(job, out, true);
        batch__spin_unlock(&pr->lock);
    }
    return BATCH_OK;
}

/* Calls the progress callback for event ev, if the job wants it. */
BATCH__PRIVATE void batch__progress_emit(batch_job* job, batch_event event, const batch_event_info* info) {
    batch__progress* pr = &batch__head(job)->prog;
    if (!pr->fn || !(pr->events & BATCH_EVENT_BIT(event))) return;
    batch_event_info ev;
    if (info) ev = *info;
    else memset(&ev, 0, sizeof ev);
    ev.job = job;
    batch_progress snap;
    batch__spin_lock(&pr->lock);
    batch__progress_fill(job, &snap, true);
    batch_job* saved = batch__tls_progress_cb;
    batch__tls_progress_cb = job;
    pr->fn(event, &snap, &ev, pr->user);
    batch__tls_progress_cb = saved;
    batch__spin_unlock(&pr->lock);
}

/* The periodic tick: the one thread whose CAS moves the deadline on calls back. */
BATCH__PRIVATE void batch__progress_tick(batch_job* job, uint64_t now) {
    batch__progress* pr = &batch__head(job)->prog;
    if (!pr->fn) return;
    uint64_t next = atomic_load_explicit(&pr->next_ns, memory_order_relaxed);
    if (now < next) return;
    /* relaxed: only who calls back is decided here; the lock orders the callbacks */
    if (!atomic_compare_exchange_strong_explicit(&pr->next_ns, &next, now + pr->interval_ns,
                                                 memory_order_relaxed, memory_order_relaxed))
        return;
    batch__progress_emit(job, BATCH_EVENT_PROGRESS, NULL);
}

/* Waits for a job's latch; with a progress callback, wakes once an interval to tick, so that
   long tasks still get their periodic progress. */
BATCH__PRIVATE batch_result batch__job_wait_latch(batch_job* job, batch_counter* latch) {
    batch__progress* pr = &batch__head(job)->prog;
    if (!pr->fn) return batch_counter_wait(latch);
    for (;;) {
        batch_result r = batch_counter_wait_timeout(latch, pr->interval_ns);
        if (r != BATCH_ERR_TIMEOUT) return r;
        batch__progress_tick(job, batch_now_ns());
    }
}

BATCH_API const char* batch_event_string(batch_event e) {
    static const char* const names[] = { "progress", "task_completed", "task_failed", "batch_completed",
                                         "group_completed", "job_completed", "job_cancelled" };
    return ((unsigned)e < BATCH_EVENT_COUNT_) ? names[e] : "unknown";
}

/* ---- the progress bar ------------------------------------------------------------------------ */
BATCH__PRIVATE bool batch__stderr_is_tty(void) {
#if defined(__unix__) || defined(__APPLE__)
    const char* term = getenv("TERM");   /* NOLINT(concurrency-mt-unsafe): read-only; nothing here sets it */
    return isatty(2) && !(term && !strcmp(term, "dumb"));
#else
    return false;
#endif
}

/* The width of the terminal on stderr, read at every redraw (so a resized window is followed
   without a SIGWINCH handler); COLUMNS, then 80, where it cannot be asked. */
BATCH__PRIVATE int batch__term_width(void) {
    int cols = 0;
#if (defined(__unix__) || defined(__APPLE__)) && defined(TIOCGWINSZ)
    struct winsize ws;
    if (ioctl(2, TIOCGWINSZ, &ws) == 0) cols = ws.ws_col;
#endif
    if (cols <= 0) {
        const char* c = getenv("COLUMNS");   /* NOLINT(concurrency-mt-unsafe): read-only */
        cols = c ? atoi(c) : 0;
    }
    return cols > 0 ? (cols < 1000 ? cols : 1000) : 80;
}

BATCH__PRIVATE void batch__fmt_seconds(char* buf, size_t n, double s) {
    if (s < 0) { snprintf(buf, n, "--:--"); return; }
    unsigned long t = (unsigned long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%02lu:%02lu", t / 60, t % 60);
}

enum { BATCH__BAR_FIELDS = 7, BATCH__BAR_MAX = 30, BATCH__BAR_MIN = 8, BATCH__BAR_SLOT = -1 };
/* The fields of a progress line in display order: percent, counts, ok, fail, rate, elapsed, ETA. */
BATCH__PRIVATE void batch__bar_fields(const batch_progress* p, char f[BATCH__BAR_FIELDS][48]) {
    char t[32];
    for (int i = 0; i < BATCH__BAR_FIELDS; i++) f[i][0] = 0;
    if (p->total) {
        snprintf(f[0], 48, "%5.1f%%", p->percent);
        snprintf(f[1], 48, "%llu/%llu", (unsigned long long)p->processed, (unsigned long long)p->total);
        batch__fmt_seconds(t, sizeof t, p->eta_s);
        snprintf(f[6], 48, "eta %s", t);
    } else {
        snprintf(f[1], 48, "%llu done", (unsigned long long)p->processed);
    }
    snprintf(f[2], 48, "ok %llu", (unsigned long long)p->succeeded);
    snprintf(f[3], 48, "fail %llu", (unsigned long long)p->failed);
    snprintf(f[4], 48, "%.0f/s", p->items_per_s);
    batch__fmt_seconds(t, sizeof t, p->elapsed_s);
    snprintf(f[5], 48, "elapsed %s", t);
}

/* Formats the progress line to fit `cols` columns (shorter than cols, so the cursor never wraps).
   Fields are kept in this order while they fit: percent, ETA, counts, fail, rate, a bar of at
   least BATCH__BAR_MIN, ok, elapsed; the bar then grows into what is left. Returns the length. */
BATCH__PRIVATE size_t batch__progress_line(char* out, size_t n, const batch_progress* p, int cols) {
    static const int keep[BATCH__BAR_FIELDS + 1] = { 0, 6, 1, 3, 4, BATCH__BAR_SLOT, 2, 5 };
    char f[BATCH__BAR_FIELDS][48];
    batch__bar_fields(p, f);
    size_t room = cols > 1 ? (size_t)cols - 1 : 0, used = 0, bar = 0;
    bool on[BATCH__BAR_FIELDS] = { false };
    for (int k = 0; k < BATCH__BAR_FIELDS + 1; k++) {
        size_t len = keep[k] == BATCH__BAR_SLOT ? (p->total ? BATCH__BAR_MIN + 2 : 0) : strlen(f[keep[k]]);
        size_t need = len + (used ? 1 : 0);
        if (!len || used + need > room) continue;
        if (keep[k] == BATCH__BAR_SLOT) bar = BATCH__BAR_MIN;
        else on[keep[k]] = true;
        used += need;
    }
    if (bar) bar = room - used + BATCH__BAR_MIN < BATCH__BAR_MAX ? room - used + BATCH__BAR_MIN : BATCH__BAR_MAX;
    if (n == 0) return 0;
    size_t len = 0;
    out[0] = 0;
    if (bar && bar + 3 < n) {   /* "[" bar "]" */
        size_t filled = p->percent < 0 ? 0 : (size_t)(p->percent / 100.0 * (double)bar + 0.5);
        out[len++] = '[';
        for (size_t i = 0; i < bar; i++) out[len++] = i < filled ? '#' : '.';
        out[len++] = ']';
        out[len] = 0;
    }
    for (int i = 0; i < BATCH__BAR_FIELDS; i++) {
        if (!on[i]) continue;
        int w = snprintf(out + len, n - len, "%s%s", len ? " " : "", f[i]);
        if (w < 0 || (size_t)w >= n - len) { out[len] = 0; break; }   /* the buffer is full */
        len += (size_t)w;
    }
    return len;
}

BATCH_API void batch_progress_bar(batch_event ev, const batch_progress* p, const batch_event_info* info, void* user) {
    (void)info;
    if (!p) return;
    batch_progress_bar_state* st = (batch_progress_bar_state*)user;
    bool end = ev == BATCH_EVENT_JOB_COMPLETED || ev == BATCH_EVENT_JOB_CANCELLED;
    if (!end && ev != BATCH_EVENT_PROGRESS) return;
    bool tty = batch__stderr_is_tty();
    uint64_t now = batch_now_ns();
    if (st && !end) {
        uint64_t min_gap = tty ? 100000000u : 5000000000u;   /* ~10 redraws/s, or a line per 5 s */
        if (st->last_ns && now - st->last_ns < min_gap) return;
        st->last_ns = now;
    }
    char line[1024];
    batch__progress_line(line, sizeof line, p, tty ? batch__term_width() : 120);
    if (tty) fprintf(stderr, "\r%s\033[K%s", line, end ? "\n" : "");
    else fprintf(stderr, "%s%s\n", line, end ? (ev == BATCH_EVENT_JOB_CANCELLED ? " (cancelled)" : " (done)") : "");
    fflush(stderr);
}

BATCH_API void batch_progress_bar_clear(void) {
    if (batch__stderr_is_tty()) fputs("\r\033[K", stderr);
}

#endif /* BATCH__JOB_C */
