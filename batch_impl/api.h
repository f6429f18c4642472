/* batch.h - run batch work on every core of one machine. Pure C11, libc only.

   Do this:
       #define BATCH_IMPLEMENTATION
       #include "batch.h"
   in *one* C file (compiled as C11) before you include this file in any other.
   Other files just #include "batch.h".

   TABLE OF CONTENTS
       COMPILE-TIME OPTIONS
       RESULT CODES
       THE POOL          workers, priorities, submit, counters, parallel-for, shutdown
       PROGRESS          snapshots, the progress callback and its events, a progress bar
       JOB GRAPHS        tasks, edges, groups, validation, runs as jobs, failure policies
       BATCH SIZING      complexity classes, the keyed registry, remembered cost per item
       BATCHED MAPS      items in batches: thresholds, batch retries, streaming, folds
       THREAD SAFETY AND CALLBACKS
       OWNERSHIP
       LICENSE           MIT, at the end of this file

   COMPILE-TIME OPTIONS (define before including the implementation)
       BATCH_STATIC            every function is static: two copies may live in one program
       BATCH_USE_PTHREADS      use the pthreads backend instead of C11 <threads.h> (automatic on
                               macOS and wherever __STDC_NO_THREADS__ is defined; the
                               ThreadSanitizer build uses it)
       BATCH_NO_THREADS        no threads at all: <threads.h> is never included and every pool
                               runs its tasks inline on the thread that waits for them
       BATCH_USE_WIN32         Win32 threads, SRW locks and condition variables (automatic on
                               Windows; BATCH_USE_PTHREADS and BATCH_NO_THREADS override it)
       BATCH_MALLOC(sz,ctx) BATCH_REALLOC(p,sz,ctx) BATCH_FREE(p,ctx)
                               your allocator; define all three or none. ctx is the
                               alloc_ctx of the desc (NULL for stb_ds containers)
       BATCH_ASSERT(c)         internal assertions (default: assert)
       BATCH_DEFAULT_THREADS   worker count when the CPU count is unknown (default 4)
       BATCH_MAX_WORKERS       upper bound of batch_pool_desc.workers (default 256)
       BATCH_NO_STB_DS_IMPLEMENTATION
                               you compile stb_ds.h's implementation yourself elsewhere
       The implementation needs clock_gettime(CLOCK_MONOTONIC). Under a strict -std=c11 it is
       visible only if BATCH_IMPLEMENTATION is defined before the first #include of the file
       (batch.h then defines _POSIX_C_SOURCE) or you compile with -D_POSIX_C_SOURCE=200809L.
       On Windows it uses QueryPerformanceCounter and includes <windows.h> (WIN32_LEAN_AND_MEAN,
       NOMINMAX) in the implementation file only.

   A 20-LINE EXAMPLE (examples/hello_pool.c)
       static void square(batch_pool* pool, void* user) { int* v = user; *v *= *v; (void)pool; }
       int main(void) {
           batch_pool* pool; int v[100]; batch_counter done;
           if (batch_pool_create(&pool, &(batch_pool_desc){0}) != BATCH_OK) return 1;
           batch_counter_init(&done, pool);
           for (int i = 0; i < 100; i++) {
               v[i] = i;
               batch_pool_submit(pool, &(batch_work){ .fn = square, .user_data = &v[i],
                                                      .counter = &done });
           }
           batch_counter_wait(&done);          // sleeps, or helps if called from a worker
           batch_pool_destroy(pool);
       }
*/
#ifndef BATCH_H_INCLUDED
#define BATCH_H_INCLUDED

/* The version of this file: BATCH_VERSION_NUM is major * 10000 + minor * 100 + patch. */
#define BATCH_VERSION_MAJOR 0
#define BATCH_VERSION_MINOR 3
#define BATCH_VERSION_PATCH 0
#define BATCH_VERSION_STRING "0.3.0"
#define BATCH_VERSION_NUM (BATCH_VERSION_MAJOR * 10000 + BATCH_VERSION_MINOR * 100 + BATCH_VERSION_PATCH)

/* Under a strict -std=c11 glibc hides POSIX (clock_gettime, sysconf). If this is the first
   include of the implementation file, ask for POSIX; in gnu modes nothing is changed. */
#if defined(BATCH_IMPLEMENTATION) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && \
    !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#  define _POSIX_C_SOURCE 200809L
#endif
/* mingw-w64: the implementation prints %zu and %llu, which msvcrt's printf family does not know;
   mingw's own C99 one (__USE_MINGW_ANSI_STDIO) is asked for the same way. (With the UCRT, or
   MSVC, the C library's own printf is C99 already.) */
#if defined(BATCH_IMPLEMENTATION) && defined(__MINGW32__) && !defined(__USE_MINGW_ANSI_STDIO)
#  define __USE_MINGW_ANSI_STDIO 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef BATCH_API
#  if defined(BATCH_STATIC) && (defined(__GNUC__) || defined(__clang__))
#    define BATCH_API static __attribute__((unused))
#  elif defined(BATCH_STATIC)
#    define BATCH_API static
#  else
#    define BATCH_API extern
#  endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
   RESULT CODES
   Every function that can fail returns a batch_result: BATCH_OK (0), BATCH_PARTIAL (1: finished,
   failures stayed under the threshold) or a negative error. The enum and batch_result_string()
   are generated from this one list. */
#define BATCH_RESULTS(X) \
    X(BATCH_OK,             0, "success") \
    X(BATCH_PARTIAL,        1, "finished with some failures") \
    X(BATCH_ERR_INVALID,   -1, "invalid argument") \
    X(BATCH_ERR_NOMEM,     -2, "out of memory") \
    X(BATCH_ERR_CYCLE,     -3, "task graph has a cycle") \
    X(BATCH_ERR_BUSY,      -4, "object is in use") \
    X(BATCH_ERR_CANCELLED, -5, "cancelled") \
    X(BATCH_ERR_TIMEOUT,   -6, "timed out") \
    X(BATCH_ERR_THRESHOLD, -7, "error threshold exceeded") \
    X(BATCH_ERR_SHUTDOWN,  -8, "pool is shutting down") \
    X(BATCH_ERR_THREAD,    -9, "could not create a thread") \
    X(BATCH_ERR_FAILED,   -10, "job failed") \
    X(BATCH_ERR_NOT_FOUND,-11, "no such task") \
    X(BATCH_ERR_IO,       -12, "I/O error") \
    X(BATCH_ERR_CORRUPT,  -13, "journal is corrupt") \
    X(BATCH_ERR_MISMATCH, -14, "journal belongs to another job") \
    X(BATCH_ERR_MPI,      -15, "MPI error") \
    X(BATCH_ERR_EMPTY,    -16, "nothing to claim")

#define BATCH__RESULT_ENUM(name, value, text) name = (value),
typedef enum batch_result { BATCH_RESULTS(BATCH__RESULT_ENUM) BATCH_RESULT_FORCE32_ = 0x7fffffff } batch_result;
#undef BATCH__RESULT_ENUM

/* A static, never-NULL English description of r ("unknown result" for values not in the list). */
BATCH_API const char* batch_result_string(batch_result r);

/* Monotonic clock in nanoseconds (arbitrary epoch). Any thread. */
BATCH_API uint64_t batch_now_ns(void);

/* Number of online CPUs, or BATCH_DEFAULT_THREADS when the platform cannot tell. */
BATCH_API int batch_cpu_count(void);

/* ---------------------------------------------------------------------------------------------
   THE POOL
   A fixed set of worker threads. Each worker owns a work-stealing deque; work submitted from
   outside the pool goes to one FIFO injection queue per priority. Idle workers steal, spin for
   spin_us, then sleep; no submission is ever left with every worker asleep. */
typedef struct batch_pool batch_pool;

/* workers = BATCH_WORKERS_INLINE: no threads; tasks run on whichever thread waits for them
   (batch_counter_wait, batch_pool_parallel_for, batch_pool_wait_idle, batch_pool_destroy), in
   priority then FIFO order. Deterministic: for tests, debugging and single-core targets. */
#define BATCH_WORKERS_INLINE (-1)
/* batch_pool_desc.spin_us: the default, and "never spin" */
#ifndef BATCH_SPIN_US_DEFAULT
#  define BATCH_SPIN_US_DEFAULT 2000
#endif
#define BATCH_SPIN_NONE (-1)

typedef struct batch_pool_desc {
    int workers;        /* 0: one per CPU (batch_cpu_count()); BATCH_WORKERS_INLINE: no threads;
                           otherwise 1..BATCH_MAX_WORKERS */
    int deque_capacity; /* initial slots of each worker's deque (grows on demand); 0: 256;
                           a power of two in [16, 2^24] */
    int spin_us;        /* how long an idle worker keeps looking for work before it sleeps, in
                           microseconds (spinning with the CPU's pause instruction, then
                           yielding): a pool used again within it starts on every core at once.
                           0: BATCH_SPIN_US_DEFAULT; BATCH_SPIN_NONE: sleep at once (shared or
                           battery-powered machines); otherwise 1..1000000 */
    void* alloc_ctx;    /* passed to BATCH_MALLOC/BATCH_REALLOC/BATCH_FREE */
} batch_pool_desc;

/* Creates a pool and starts its workers. On success *out_pool is set and BATCH_OK returned. On
   failure *out_pool is NULL, every started worker has been joined and nothing leaks:
   BATCH_ERR_INVALID (NULL pointers, out-of-range fields), BATCH_ERR_NOMEM, BATCH_ERR_THREAD. */
BATCH_API batch_result batch_pool_create(batch_pool** out_pool, const batch_pool_desc* desc);

/* Stops accepting work from threads that are not its workers (their submits then return
   BATCH_ERR_SHUTDOWN), runs every task already accepted to completion - queued tasks, tasks those
   tasks submit, and delayed tasks, which are released at once - then joins the workers.
   The pool's memory stays valid, so threads still racing to submit get BATCH_ERR_SHUTDOWN
   instead of a crash. Idempotent. Must not be called from a task of this pool (BATCH_ERR_BUSY). */
BATCH_API batch_result batch_pool_shutdown(batch_pool* pool);

/* batch_pool_shutdown, then frees the pool. NULL: no-op, BATCH_OK. From a task of this pool it
   does nothing and returns BATCH_ERR_BUSY. No other thread may use the pool once this is called. */
BATCH_API batch_result batch_pool_destroy(batch_pool* pool);

/* Worker threads of the pool (0 for an inline pool). */
BATCH_API int batch_pool_workers(const batch_pool* pool);

/* Index in [0, workers) of the calling thread if it is a worker of `pool`, else -1. */
BATCH_API int batch_pool_worker_index(const batch_pool* pool);

typedef enum batch_priority {
    BATCH_PRIORITY_DEFAULT = 0,   /* = NORMAL */
    BATCH_PRIORITY_CRITICAL,
    BATCH_PRIORITY_HIGH,
    BATCH_PRIORITY_NORMAL,
    BATCH_PRIORITY_LOW,
    BATCH_PRIORITY_BACKGROUND,
    BATCH_PRIORITY_COUNT_
} batch_priority;

/* A latch: a count of unfinished tasks that a thread can wait on. It lives in your memory (stack
   is fine), is bound to one pool by batch_counter_init, and must outlive the tasks it counts.
   Fields are private. */
#if defined(__cplusplus)
#  define BATCH__ALIGN8 alignas(8)
#else
#  define BATCH__ALIGN8 _Alignas(8)
#endif
typedef struct batch_counter {
    BATCH__ALIGN8 uint64_t state_;   /* count << 2 | two waiter flags; accessed atomically (8-aligned:
                                        i386 aligns a plain uint64_t to 4, a 64-bit atomic to 8) */
    batch_pool* pool_;
} batch_counter;

/* Sets the count to 0 and binds the counter to pool. BATCH_ERR_INVALID on NULL. Not thread-safe
   with other operations on the same counter. */
BATCH_API batch_result batch_counter_init(batch_counter* c, batch_pool* pool);
/* Adds n (> 0) to the count. Any thread. */
BATCH_API batch_result batch_counter_add(batch_counter* c, uint64_t n);
/* Subtracts one; the thread that takes it to zero wakes its waiters. Any thread. It is an error
   (BATCH_ERR_INVALID, count unchanged) to go below zero. */
BATCH_API batch_result batch_counter_done(batch_counter* c);
/* Current count (a snapshot). */
BATCH_API uint64_t batch_counter_value(const batch_counter* c);
/* Blocks until the count is zero. A worker of the counter's pool does not block: it runs other
   tasks meanwhile, so a task that waits for tasks it submitted cannot deadlock, even with one
   worker. On an inline pool the caller runs the queued tasks. A thread that is not a worker
   sleeps. */
BATCH_API batch_result batch_counter_wait(batch_counter* c);
/* As batch_counter_wait but gives up after timeout_ns (monotonic): BATCH_ERR_TIMEOUT. */
BATCH_API batch_result batch_counter_wait_timeout(batch_counter* c, uint64_t timeout_ns);

typedef void (*batch_work_fn)(batch_pool* pool, void* user_data);

/* One unit of work for batch_pool_submit. Zero-initialise and set fn. */
typedef struct batch_work {
    batch_work_fn fn;       /* required */
    void* user_data;        /* borrowed; passed to fn */
    batch_counter* counter; /* optional: incremented at submit, decremented after fn returns;
                               must be bound to the same pool */
    batch_priority priority;/* 0: NORMAL */
    uint64_t delay_ns;      /* 0: ready now; else runs no earlier than now + delay_ns
                               (no worker sleeps on it); at most 2^62 */
} batch_work;

/* Queues fn(pool, user_data). Any thread, including tasks of the pool. A NORMAL task submitted by a
   worker goes to its own deque (LIFO for it, stolen FIFO by others); other work goes to the
   priority's injection queue (FIFO); idle workers take CRITICAL before HIGH before ... BACKGROUND,
   and take CRITICAL and HIGH work before their own deque.
   BATCH_ERR_INVALID (NULL pool/work/fn, bad priority or delay, counter of another pool),
   BATCH_ERR_SHUTDOWN (a non-worker submitting after shutdown began), BATCH_ERR_NOMEM.
   On error nothing is queued and the counter is unchanged. */
BATCH_API batch_result batch_pool_submit(batch_pool* pool, const batch_work* work);

/* fn(pool, begin, end, user_data) over [0, n) in chunks of `chunk` items (0: n / (8 x threads),
   at least 1). Chunks are claimed with one atomic operation each, by every worker and by the
   caller, which returns when the whole range is done (a worker caller helps meanwhile). */
typedef void (*batch_range_fn)(batch_pool* pool, size_t begin, size_t end, void* user_data);
BATCH_API batch_result batch_pool_parallel_for(batch_pool* pool, size_t n, size_t chunk,
                                               batch_range_fn fn, void* user_data);

/* Blocks until every task accepted so far (and those they submit) has finished. Not from a task
   of this pool (BATCH_ERR_BUSY). */
BATCH_API batch_result batch_pool_wait_idle(batch_pool* pool);

typedef struct batch_pool_stats {
    int workers;
    uint64_t executed;      /* tasks run (all workers and inline runners) */
    uint64_t submitted;     /* tasks accepted */
    uint64_t steals;        /* tasks taken from another worker's deque */
    uint64_t sleeps;        /* times a worker went to sleep */
} batch_pool_stats;
/* A snapshot of the counters (not atomic across fields). Any thread. */
BATCH_API batch_result batch_pool_get_stats(const batch_pool* pool, batch_pool_stats* out);
/* Tasks executed by worker i (0 <= i < workers): per-worker statistics. */
BATCH_API uint64_t batch_pool_worker_executed(const batch_pool* pool, int i);



/* ---------------------------------------------------------------------------------------------
   PROGRESS
   Every job (graph run or map) can report progress: a snapshot at any time
   (batch_job_progress), and a callback invoked at most every progress_interval_ms by whichever
   thread crosses the interval (a finishing task, or the thread blocked in batch_job_wait /
   batch_map_wait, which wakes once an interval to tick while tasks run long), plus on events. Callbacks of one job never run concurrently (a
   per-job lock), run on worker threads (JOB_COMPLETED / JOB_CANCELLED on the thread that waits
   for the job, inside batch_job_wait / batch_map_wait), must be quick, and may call
   batch_job_cancel and batch_job_progress of their job but not wait for or destroy it (that
   returns BATCH_ERR_BUSY). */
typedef struct batch_job batch_job;    /* a graph run or a map (see JOB GRAPHS, BATCHED MAPS) */

typedef enum batch_event {
    BATCH_EVENT_PROGRESS = 0,     /* the periodic tick */
    BATCH_EVENT_TASK_COMPLETED,   /* graph task (not in the default mask: one call per task) */
    BATCH_EVENT_TASK_FAILED,      /* graph task, after its retries */
    BATCH_EVENT_BATCH_COMPLETED,  /* map batch delivered */
    BATCH_EVENT_GROUP_COMPLETED,  /* graph barrier (a task without a function) completed */
    BATCH_EVENT_JOB_COMPLETED,    /* the job ended (any status but cancelled) */
    BATCH_EVENT_JOB_CANCELLED,    /* the job ended cancelled (cancel or deadline) */
    BATCH_EVENT_COUNT_
} batch_event;
#define BATCH_EVENT_BIT(e) (1u << (e))
#define BATCH_EVENTS_DEFAULT (BATCH_EVENT_BIT(BATCH_EVENT_PROGRESS) | BATCH_EVENT_BIT(BATCH_EVENT_TASK_FAILED) | \
    BATCH_EVENT_BIT(BATCH_EVENT_BATCH_COMPLETED) | BATCH_EVENT_BIT(BATCH_EVENT_GROUP_COMPLETED) | \
    BATCH_EVENT_BIT(BATCH_EVENT_JOB_COMPLETED) | BATCH_EVENT_BIT(BATCH_EVENT_JOB_CANCELLED))

typedef struct batch_progress {
    uint64_t total;               /* tasks or items; 0 when unknown (pull sources) */
    uint64_t processed;           /* finished work: succeeded + failed + skipped (+ cancelled) */
    uint64_t succeeded, failed, skipped, cancelled, retried;
    uint64_t running, peak_running;   /* tasks or batches running now / most seen by snapshots */
    double percent;               /* processed / total x 100; -1 when total is unknown */
    double items_per_s;           /* processed / elapsed */
    double eta_s;                 /* smoothed remaining seconds; -1 when unknown */
    double elapsed_s;
    double efficiency;            /* busy time / (elapsed x threads), 0..1 */
} batch_progress;

typedef struct batch_event_info {
    batch_job* job;               /* the job (e.g. to cancel it from the callback) */
    const char* name;             /* graph task name (or NULL) */
    uint32_t task_id;             /* graph task id, 0 otherwise */
    size_t batch_index;           /* map batch */
    int error;                    /* the failure code, 0 otherwise */
} batch_event_info;

typedef void (*batch_progress_fn)(batch_event event, const batch_progress* progress,
                                  const batch_event_info* info, void* user_data);

/* The progress settings of a run desc or a map desc (zero: no callback). */
typedef struct batch_progress_desc {
    batch_progress_fn fn;
    void* user_data;
    unsigned interval_ms;         /* 0: 500 */
    unsigned events;              /* BATCH_EVENT_BIT mask; 0: BATCH_EVENTS_DEFAULT */
} batch_progress_desc;

/* A ready callback: one line on stderr (bar, percent, counts, rate, ETA), redrawn in place at
   most ~10 times a second when stderr is a terminal (and TERM is not "dumb"), else a plain line
   at most every 5 s; a final newline when the job ends. On a terminal the line fits its width,
   read at every redraw: fields that do not fit are dropped (ETA, percent and counts last).
   user_data: NULL or a zeroed batch_progress_bar_state owned by the caller (throttling; one per
   job). Use it with .progress = { .fn = batch_progress_bar, .interval_ms = 100 }.
   batch_progress_bar_clear erases the bar's line (on a terminal): call it before you print to
   stderr while a bar is shown; the next redraw puts the bar back below your text. */
typedef struct batch_progress_bar_state { uint64_t last_ns; int mode; } batch_progress_bar_state;
BATCH_API void batch_progress_bar(batch_event event, const batch_progress* progress,
                                  const batch_event_info* info, void* user_data);
BATCH_API void batch_progress_bar_clear(void);
BATCH_API const char* batch_event_string(batch_event e);

/* ---------------------------------------------------------------------------------------------
   JOB GRAPHS
   A graph is a DAG of tasks built once and run any number of times (one run at a time). A run
   is a job on a pool: tasks whose predecessors all finished run in parallel; a failed task's
   dependents are SKIPPED (policy CONTINUE) or everything not started is CANCELLED (FAIL_FAST);
   a failing task is retried after base * 2^attempt through the pool's delayed queue.
   Thread safety (graphs have no lock of their own; different graphs are independent):
   - Building is single-threaded per graph: batch_graph_add, batch_task_precede(_n),
     batch_graph_join, batch_graph_clear, batch_graph_validate, batch_graph_dump_dot,
     batch_graph_find (it uses the name table's lookup scratch) and batch_graph_destroy must not
     run concurrently with each other, nor with batch_graph_launch / batch_graph_run, on the
     same graph. Any thread may build, one at a time (hand the graph over with your own
     synchronisation, as for any object).
   - batch_graph_launch may race another launch of the same graph: one wins, the others get
     BATCH_ERR_BUSY.
   - While a job of the graph exists and was not waited for, the graph is the job's: add, the
     edge functions, join, clear, validate, dump_dot, task_info, launch and destroy return
     BATCH_ERR_BUSY and change nothing, from any thread (its own tasks included). batch_graph_size
     may be called from any thread; batch_graph_find from one thread at a time (tasks that
     look names up must serialise it, or find their handles before the launch).
   - Once batch_job_wait (or batch_job_destroy) has returned, the graph belongs to the thread
     that waited again: it may read batch_graph_task_info, change the graph or run it again.
   - A task's batch_ctx is the task's own: batch_ctx_* calls only from that task, during its
     call. batch_job_cancel and batch_job_progress may be called from any thread (see PROGRESS
     and batch_job_wait for the job's own code). */
typedef struct batch_graph batch_graph;
typedef struct batch_ctx batch_ctx;     /* the running task's context; valid during the call */

/* A task handle: an index into its graph (graphs move their arrays as they grow, so no pointer
   is handed out). id 0 is never a valid task. tag identifies the graph. */
typedef struct batch_task { uint32_t id; uint32_t tag; } batch_task;

/* Returns 0 on success or an error code (any non-zero int; see batch_ctx_fail for a message). */
typedef int (*batch_task_fn)(batch_ctx* ctx, void* user_data);

typedef enum batch_task_status {
    BATCH_TASK_PENDING = 0,   /* not run (yet) */
    BATCH_TASK_QUEUED,        /* ready, or waiting for a retry */
    BATCH_TASK_RUNNING,
    BATCH_TASK_COMPLETED,
    BATCH_TASK_FAILED,        /* failed after its retries */
    BATCH_TASK_SKIPPED,       /* a predecessor failed or was skipped (policy CONTINUE) */
    BATCH_TASK_CANCELLED      /* never started: cancel, deadline or FAIL_FAST */
} batch_task_status;
BATCH_API const char* batch_task_status_string(batch_task_status s);

typedef struct batch_task_desc {
    batch_task_fn fn;         /* NULL: a no-op node (a barrier) */
    void* user_data;          /* borrowed */
    const char* name;         /* optional, copied; unique names can be found with batch_graph_find */
    batch_priority priority;  /* 0: the run's priority */
    int max_retries;          /* extra attempts after a failure; 0..1000 */
    uint64_t retry_base_ns;   /* delay before retry k (k = 0, 1, ...) is base * 2^k; 0: 1 ms;
                                 kept in microseconds (rounded up), at most ~71 minutes */
    uint64_t retry_max_ns;    /* cap of that delay; 0: 60 s; same limit */
    int retry_jitter;         /* non-zero: each delay is scaled by a random factor in [0.5, 1] */
} batch_task_desc;

typedef struct batch_graph_desc {
    const char* name;         /* optional, copied (DOT output) */
    void* alloc_ctx;
} batch_graph_desc;

/* desc may be NULL (defaults). BATCH_ERR_INVALID, BATCH_ERR_NOMEM. */
BATCH_API batch_result batch_graph_create(batch_graph** out_graph, const batch_graph_desc* desc);
/* Frees the graph. NULL: no-op, BATCH_OK. BATCH_ERR_BUSY (nothing freed) while a job of the
   graph is not yet destroyed or waited for. */
BATCH_API batch_result batch_graph_destroy(batch_graph* g);
/* Removes every task and edge but keeps the memory: the next graph built in it costs no new
   pages (building a big graph fresh is mostly first-touch page faults). Handles of the old
   tasks are refused afterwards. BATCH_ERR_BUSY while a job runs. */
BATCH_API batch_result batch_graph_clear(batch_graph* g);

/* Adds a task; *out_task receives its handle. BATCH_ERR_INVALID (bad desc field, NULL pointer),
   BATCH_ERR_BUSY (the graph is running), BATCH_ERR_NOMEM. On error the graph is unchanged. */
BATCH_API batch_result batch_graph_add(batch_graph* g, const batch_task_desc* desc, batch_task* out_task);
/* Number of tasks. */
BATCH_API size_t batch_graph_size(const batch_graph* g);

/* EDGES: one function per meaning, always written in run order (earlier task first).
   a runs before b. A self-edge is BATCH_ERR_CYCLE; a handle of another graph (or 0, or out of
   range) BATCH_ERR_INVALID; a duplicate edge is accepted and counts once. Longer cycles are found
   by batch_graph_validate (and by every run). On error the graph is unchanged. */
BATCH_API batch_result batch_task_precede(batch_graph* g, batch_task a, batch_task b);
/* Every task of from[0..nfrom) runs before every task of to[0..nto): nfrom x nto edges, each as
   batch_task_precede adds it. One task to many (nfrom 1: fan-out), many to one (nto 1: fan-in),
   or many to many (every pair). A side of 0 adds nothing (its array may then be NULL). All or
   nothing: BATCH_ERR_INVALID (a bad handle, a NULL array with a count, more than 2^40 edges),
   BATCH_ERR_CYCLE (a task on both sides), BATCH_ERR_BUSY, BATCH_ERR_NOMEM. */
BATCH_API batch_result batch_task_precede_n(batch_graph* g, const batch_task* from, size_t nfrom,
                                            const batch_task* to, size_t nto);
/* Groups in sequence through a barrier: adds a no-op task after every task of before[0..n) and
   before every task of after[0..m), and returns it in *out_barrier (may be NULL). The order is
   that of batch_task_precede_n(g, before, n, after, m), but with n + m edges instead of n x m,
   and one task more: the barrier is a task of the graph (it counts in batch_graph_size and in a
   run's totals, and raises BATCH_EVENT_GROUP_COMPLETED when it completes). All or nothing. */
BATCH_API batch_result batch_graph_join(batch_graph* g, const batch_task* before, size_t n,
                                        const batch_task* after, size_t m, batch_task* out_barrier);
/* The task with this name (the first added, if several share it): BATCH_ERR_NOT_FOUND. */
BATCH_API batch_result batch_graph_find(batch_graph* g, const char* name, batch_task* out_task);

/* Checks the graph: BATCH_OK, or BATCH_ERR_CYCLE with the tasks of one cycle named in msg (e.g.
   "cycle: a -> b -> c -> a"; names, or #id for unnamed tasks). msg may be NULL. */
BATCH_API batch_result batch_graph_validate(batch_graph* g, char* msg, size_t msg_size);

/* Graphviz DOT of the graph, each task coloured by its status after the last run. BATCH_ERR_IO
   when `out` reports a write error. */
BATCH_API batch_result batch_graph_dump_dot(const batch_graph* g, FILE* out);

/* ---------------------------------------------------------------------------------------------
   DURABLE JOBS: THE JOURNAL
   A job (graph run or map) given a journal path appends one record per finished task (graph:
   index, status, attempts, error code) or per delivered batch (map: index, item range, status,
   counts, retries and the batch's accumulator) to an append-only file: a 32-byte header (magic,
   version, kind, fingerprint, accumulator size), then records each with a length and a CRC32C.
   Launched again with the same journal, the job skips what the journal records as done, folds
   the journaled accumulators back in (an ordered fold gives the same bytes as an uninterrupted
   run) and runs the rest. Re-running a finished job with its journal runs nothing and returns
   the same result; delete the file to start afresh.
   Opening: a torn or corrupt tail (a record cut short, a CRC mismatch, or zero bytes to the
   end of the file, as a power loss leaves when the file grew but its last appends never
   reached the disk) is cut off and what follows the valid prefix is not trusted (SQLite's WAL
   rule); a bad header or version, a record length of 0 followed by any non-zero byte, an
   oversized record or a CRC-valid record that does not fit the job is BATCH_ERR_CORRUPT, a
   journal of another job (fingerprint, kind or accumulator size) BATCH_ERR_MISMATCH: then the
   launch fails and nothing runs. A write that fails during the run stops the job (no new task
   or batch starts; the result is BATCH_ERR_IO) and the journal stays valid up to the failure.
   The file is opened O_CLOEXEC | O_NOFOLLOW, created with mode 0600. On Windows the default
   I/O is Win32 with the same rules: a UTF-8 path, a handle child processes do not inherit, a
   reparse point (symlink, junction) as the last component refused, a new file's DACL granting
   only the current user, FlushFileBuffers for MACHINE durability. Elsewhere define
   BATCH_NO_JOURNAL, or pass io hooks.
   Resumed graph tasks do not run again, so their outputs (batch_ctx_input) are NULL in the new
   process: keep data that must survive in your own storage. A pull source is read again from
   its start on resume: it must yield the same items; those already done are pulled and skipped.
   Journaled batches and tasks are not delivered again to on_batch, the iterator or progress. */
typedef enum batch_durability {
    BATCH_DURABLE_PROCESS = 0,   /* each record reaches the OS at once: survives a killed
                                    process, not a power loss (default) */
    BATCH_DURABLE_MACHINE,       /* and fdatasync every sync_every records (and the directory
                                    when the journal is created): survives a power loss up to
                                    the last sync; costs a disk flush per sync */
    BATCH_DURABLE_BUFFERED       /* records kept in a 64 KiB buffer, written when it fills and
                                    at the end: cheapest; a kill loses the buffered records,
                                    whose work then runs again */
} batch_durability;

/* File I/O hooks (tests inject EIO, ENOSPC, short writes). Each returns 0 or an errno value;
   read and write may move fewer bytes than asked (*done). batch_journal_posix_io() is the
   default, for wrapping (batch_journal_win32_io() on Windows). */
typedef struct batch_journal_io {
    int (*open)(void* user, const char* path, intptr_t* out_handle);   /* read/write, create 0600 */
    int (*read)(void* user, intptr_t h, void* buf, size_t n, uint64_t offset, size_t* done);
    int (*write)(void* user, intptr_t h, const void* buf, size_t n, uint64_t offset, size_t* done);
    int (*sync)(void* user, intptr_t h);
    int (*truncate)(void* user, intptr_t h, uint64_t size);
    int (*size)(void* user, intptr_t h, uint64_t* size);
    void (*close)(void* user, intptr_t h);
    void* user;
} batch_journal_io;
BATCH_API const batch_journal_io* batch_journal_posix_io(void);
/* The Win32 I/O (CreateFileW, ReadFile/WriteFile at OVERLAPPED offsets, FlushFileBuffers,
   SetFileInformationByHandle), the default on Windows; the handle is the HANDLE. NULL off
   Windows and with BATCH_NO_JOURNAL, as batch_journal_posix_io() is NULL on Windows. */
BATCH_API const batch_journal_io* batch_journal_win32_io(void);

typedef struct batch_journal_desc {
    const char* path;            /* NULL: no journal */
    uint64_t fingerprint;        /* identifies the job; 0: derived from its shape (graph: tasks,
                                    names and edges; map: count, sizes, sizing, ordering). The
                                    shape cannot see your functions or data: when the work
                                    changes but not its shape, change the fingerprint */
    batch_durability durability;
    int sync_every;              /* BATCH_DURABLE_MACHINE: records per fdatasync; 0: 1 */
    int rerun_failed;            /* non-zero: on resume, FAILED tasks and batches with failed
                                    items run again instead of keeping their outcome */
    const batch_journal_io* io;  /* NULL: POSIX (Win32 on Windows) */
} batch_journal_desc;

typedef enum batch_failure_policy {
    BATCH_POLICY_CONTINUE = 0,   /* dependents of a failure are SKIPPED; the rest runs */
    BATCH_POLICY_FAIL_FAST       /* the first failure (after retries) cancels what has not started */
} batch_failure_policy;

typedef enum batch_job_status {
    BATCH_JOB_RUNNING = 0,
    BATCH_JOB_COMPLETED,         /* every task completed */
    BATCH_JOB_PARTIAL_FAILURE,   /* some failed or were skipped, some completed (CONTINUE) */
    BATCH_JOB_FAILED,            /* FAIL_FAST after a failure, or nothing completed */
    BATCH_JOB_CANCELLED          /* batch_job_cancel (work was left undone), or the job had
                                    not finished by its deadline (BATCH_ERR_TIMEOUT) */
} batch_job_status;
BATCH_API const char* batch_job_status_string(batch_job_status s);

typedef struct batch_run_desc {
    batch_failure_policy policy;
    int max_concurrency;      /* at most this many tasks of the job run at once; 0: no limit */
    uint64_t timeout_ns;      /* deadline = launch + timeout: what has not started is CANCELLED
                                 and running tasks see batch_ctx_should_stop; 0: none. A job that
                                 has not finished by its deadline - a task of it ends at or
                                 after it, or would start after it - ends CANCELLED and its wait
                                 returns BATCH_ERR_TIMEOUT, even if every task that ran returned
                                 0 (a task that stopped early still counts as COMPLETED if it
                                 returned 0). A job whose last task ended before the deadline
                                 is not affected, however late it is waited for. */
    batch_priority priority;  /* for tasks whose own priority is 0; 0: NORMAL */
    int no_task_times;        /* non-zero: do not read the clock per task (fastest); start/end
                                 times, busy time and peak concurrency are then 0 */
    batch_progress_desc progress;
    batch_journal_desc journal;   /* optional: resume after a crash (see DURABLE JOBS) */
} batch_run_desc;

typedef struct batch_job_summary {
    batch_job_status status;
    batch_result result;      /* what batch_job_wait returned */
    uint64_t total, completed, failed, skipped, cancelled;   /* completed+failed+skipped+cancelled == total */
    uint64_t retries;         /* attempts beyond the first, over all tasks */
    uint64_t wall_ns;         /* launch to the last task's end */
    uint64_t busy_ns;         /* sum of task run times (all attempts) */
    uint64_t peak_concurrency;/* most tasks running at once (from the last attempts' times) */
    uint64_t resumed;         /* tasks whose outcome came from the journal (not run again) */
} batch_job_summary;

/* Starts a run of g on pool and returns at once. desc may be NULL. Validates first
   (BATCH_ERR_CYCLE). BATCH_ERR_BUSY: g has a job that was not yet waited for or destroyed. */
BATCH_API batch_result batch_graph_launch(batch_pool* pool, batch_graph* g, const batch_run_desc* desc,
                                          batch_job** out_job);
/* Waits for the job (a worker helps meanwhile); one thread at a time may wait for a job.
   BATCH_OK (all completed), BATCH_PARTIAL,
   BATCH_ERR_FAILED, BATCH_ERR_CANCELLED, BATCH_ERR_TIMEOUT (the job had not finished by its
   deadline: see batch_run_desc.timeout_ns, batch_map_desc.timeout_ns). Fills *summary
   if non-NULL. May be called again; returns the same. Called from the job's own code - one of
   its tasks or map items (also from a wait for another job nested in one), its progress
   callback, on_batch or pull_fn - it returns BATCH_ERR_BUSY at once and fills nothing: such a
   wait could never end (once the job is over, in its JOB_COMPLETED / JOB_CANCELLED callback,
   it returns the result). Waiting for another job from a task is fine (the worker helps). */
BATCH_API batch_result batch_job_wait(batch_job* job, batch_job_summary* summary);
/* Cooperative: tasks not started become CANCELLED; running ones see batch_ctx_should_stop; a task
   waiting for a retry is settled FAILED within 50 ms. Any thread (progress callbacks, on_batch
   and pull_fn included), any time before destroy; idempotent; after completion it changes
   nothing. */
BATCH_API batch_result batch_job_cancel(batch_job* job);
/* Waits if needed, then frees the job; the graph can then run again or be changed. NULL: no-op,
   BATCH_OK. From the job's own code (as for batch_job_wait) it frees nothing: BATCH_ERR_BUSY. */
BATCH_API batch_result batch_job_destroy(batch_job* job);
/* A progress snapshot of a running or finished job (graph or map). Any thread, until destroy. */
BATCH_API batch_result batch_job_progress(batch_job* job, batch_progress* out);
/* Launch + wait + destroy. When the launch fails, *summary is zero but for status FAILED and
   result (the launch's code). */
BATCH_API batch_result batch_graph_run(batch_pool* pool, batch_graph* g, const batch_run_desc* desc,
                                       batch_job_summary* summary);

/* After a run (once its job was waited for): the task's outcome. Strings are borrowed from the
   graph until its next run or destroy. */
typedef struct batch_task_info {
    const char* name;         /* NULL if unnamed */
    batch_task_status status;
    int attempts;             /* 0 if never started */
    int error;                /* what the last attempt returned: 0 when it completed (also after
                                 failed attempts that were retried) */
    const char* message;      /* the last attempt's batch_ctx_fail message, or NULL (a task that
                                 completed has none) */
    uint64_t start_ns, end_ns;/* of the last attempt (batch_now_ns clock), 0 if not run; read
                                 as TSC ticks where the TSC is invariant and converted when the
                                 run is waited for (BATCH_NO_TSC: clock_gettime per task) */
    int worker;               /* worker index of the last attempt; -1: not a worker thread */
    void* output;             /* what the task published with batch_ctx_set_output */
} batch_task_info;
BATCH_API batch_result batch_graph_task_info(const batch_graph* g, batch_task t, batch_task_info* out);

/* ---- inside a running task or item --------------------------------------------------------
   Every function that takes the batch_ctx* a graph task (batch_task_fn) or a map item
   (batch_item_fn, batch_items_fn) receives is named batch_ctx_* and is declared here. Call them
   only from that task or item, during its call, with its own ctx (NULL is accepted: a no-op / 0 / NULL). The
   data-flow calls (set_output, input_count, input, output_of) are for graph tasks; in a map
   item they do nothing and return 0 or NULL. */
/* Records code and a printf-style message (copied, at most BATCH_MESSAGE_MAX - 1 bytes) and
   returns code, so that a task can `return batch_ctx_fail(ctx, 3, "bad %s", x);`. */
#define BATCH_MESSAGE_MAX 256
BATCH_API int batch_ctx_fail(batch_ctx* ctx, int code, const char* fmt, ...)
#if defined(__MINGW32__) && defined(__GNUC__) && !defined(__clang__)
    __attribute__((format(gnu_printf, 3, 4)))   /* formatted as C99, not as msvcrt (see the top) */
#elif defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* batch_ctx_fail, and no retry: a graph task fails for good at once (whatever max_retries says); a
   map item makes its batch, if the batch ends FAILED, skip its remaining retries. fmt may be NULL. */
BATCH_API int batch_ctx_fail_permanent(batch_ctx* ctx, int code, const char* fmt, ...)
#if defined(__MINGW32__) && defined(__GNUC__) && !defined(__clang__)
    __attribute__((format(gnu_printf, 3, 4)))   /* formatted as C99, not as msvcrt (see the top) */
#elif defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Inside a map's items_fn (see batch_items_fn): item `index` of the run failed with `code` (non-zero)
   and a printf-style message (fmt may be NULL: none). The item counts as failed exactly as if an
   item_fn had returned code; it is not folded (the function must not fold it). Returns BATCH_OK,
   or BATCH_ERR_INVALID and records nothing: ctx NULL or not an items_fn's, index outside the run,
   code 0, or the item already reported in this call. */
BATCH_API batch_result batch_ctx_fail_item(batch_ctx* ctx, size_t index, int code, const char* fmt, ...)
#if defined(__MINGW32__) && defined(__GNUC__) && !defined(__clang__)
    __attribute__((format(gnu_printf, 4, 5)))   /* formatted as C99, not as msvcrt (see the top) */
#elif defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* True once the job is cancelled, failed fast or past its deadline: return early. What to
   return then: 0 only if the task or item finished its work (it counts as COMPLETED /
   succeeded and a map folds its result); otherwise a non-zero code, e.g.
   batch_ctx_fail(ctx, code, "stopped"): it counts as failed, and no retry follows a stop. The job
   ends CANCELLED with BATCH_ERR_TIMEOUT when its deadline passed before it finished, CANCELLED
   with BATCH_ERR_CANCELLED when a cancel left work that never ran (a cancel that left nothing
   undone changes nothing: the job ends as its outcomes say), FAILED after FAIL_FAST. */
BATCH_API int batch_ctx_should_stop(const batch_ctx* ctx);
/* Publishes a pointer that successors read with batch_ctx_input (data flow). Borrowed. */
BATCH_API void batch_ctx_set_output(batch_ctx* ctx, void* output);
/* Number of predecessors, and the output published by predecessor i (in edge order of the
   sorted predecessor ids; NULL if it published none). */
BATCH_API size_t batch_ctx_input_count(const batch_ctx* ctx);
BATCH_API void* batch_ctx_input(const batch_ctx* ctx, size_t i);
/* The output of any task that is a (transitive) predecessor: NULL otherwise or if none. */
BATCH_API void* batch_ctx_output_of(const batch_ctx* ctx, batch_task t);
BATCH_API batch_task batch_ctx_task(const batch_ctx* ctx);
BATCH_API int batch_ctx_attempt(const batch_ctx* ctx);      /* 0 for the first attempt */
BATCH_API int batch_ctx_worker(const batch_ctx* ctx);       /* -1: not a worker thread */
BATCH_API batch_pool* batch_ctx_pool(const batch_ctx* ctx);
/* The job of this task or map item (e.g. to batch_job_cancel it from inside); borrowed. */
BATCH_API batch_job* batch_ctx_job(const batch_ctx* ctx);
/* Inside a map item function: the index of its batch (0 in a graph task). */
BATCH_API size_t batch_ctx_batch_index(const batch_ctx* ctx);


/* ---------------------------------------------------------------------------------------------
   BATCH SIZING
   Complexity classes give batch sizes (SIMPLE 50, MODERATE 20, COMPLEX 10, VERY_COMPLEX 5 by
   default). A registry maps keys ("D3-Q2") to classes and remembers the measured cost per item
   of the maps that ran with that key, so the next adaptive map starts at the right size.
   A registry is not thread-safe: use it from one thread at a time (maps read it at launch and
   update it in batch_map_wait, on the waiting thread). */
typedef enum batch_complexity {
    BATCH_COMPLEXITY_DEFAULT = 0,   /* unknown: the registry's default size */
    BATCH_COMPLEXITY_SIMPLE,
    BATCH_COMPLEXITY_MODERATE,
    BATCH_COMPLEXITY_COMPLEX,
    BATCH_COMPLEXITY_VERY_COMPLEX,
    BATCH_COMPLEXITY_COUNT_
} batch_complexity;

typedef struct batch_sizing batch_sizing;
typedef struct batch_sizing_desc {
    size_t class_size[BATCH_COMPLEXITY_COUNT_];  /* [SIMPLE..VERY_COMPLEX]; 0: 50, 20, 10, 5;
                                                    [0] is the default size, 0: 10 */
    size_t min_size, max_size;                   /* clamp; 0: 1 and 1 << 20 */
    void* alloc_ctx;
} batch_sizing_desc;
BATCH_API batch_result batch_sizing_create(batch_sizing** out, const batch_sizing_desc* desc);
/* Frees the registry and its keys. NULL: no-op, BATCH_OK. No map may be using it. */
BATCH_API batch_result batch_sizing_destroy(batch_sizing* s);
/* Sets the class of key (copied). BATCH_ERR_INVALID, BATCH_ERR_NOMEM (registry unchanged). */
BATCH_API batch_result batch_sizing_set(batch_sizing* s, const char* key, batch_complexity c);
/* The class of key, BATCH_COMPLEXITY_DEFAULT if unknown (or s/key NULL). */
BATCH_API batch_complexity batch_sizing_class(const batch_sizing* s, const char* key);
/* The batch size for key: its class's size, or the default size; clamped to [min, max]. */
BATCH_API size_t batch_sizing_size(const batch_sizing* s, const char* key);
/* The size of a class in this registry (0 for an invalid class). */
BATCH_API size_t batch_sizing_class_size(const batch_sizing* s, batch_complexity c);
/* Measured cost per item remembered for key, in ns (0: none yet); and recording one (an
   exponential moving average with the previous value). */
BATCH_API uint64_t batch_sizing_cost(const batch_sizing* s, const char* key);
BATCH_API batch_result batch_sizing_record_cost(batch_sizing* s, const char* key, uint64_t ns_per_item);

/* ---------------------------------------------------------------------------------------------
   BATCHED MAPS
   Items go through item_fn (or a run at a time through items_fn) in batches on the pool. Each finished batch is SUCCESS (no failed
   item), PARTIAL_SUCCESS (failed / size <= error_threshold) or FAILED (above it); a FAILED batch
   is retried whole after retry_base * 2^k, up to max_retries. Finished batches are delivered in
   completion order (or batch order when `ordered`), to on_batch or to batch_map_next, and their
   accumulators are combined into the job's: each successful item is folded exactly once. At
   most max_in_flight batches exist at once (running, finished but not delivered, or delivered to
   batch_map_next and not yet released), so memory does not grow with the input. */
typedef struct batch_item {
    size_t index;       /* position in the input, from 0 */
    void* ptr;          /* what the pull source produced; NULL for counted input */
} batch_item;

/* Process one item: write result_size bytes to `result` (if result_size > 0), return 0 or an
   error code (batch_ctx_fail(ctx, ...) adds a message). Runs on a worker. An item that gives up
   early because batch_ctx_should_stop turned true should return a non-zero code (one of yours,
   e.g. with batch_ctx_fail(ctx, code, "stopped")) unless its result is complete: 0 means success,
   so its result is folded and it counts as succeeded. A stopped map retries no batch, so such
   a failure is final (see batch_ctx_should_stop for the job's end). */
typedef int (*batch_item_fn)(batch_ctx* ctx, const batch_item* item, void* result, void* user_data);
/* A contiguous run of one batch attempt's items, for an items_fn. */
typedef struct batch_item_range {
    size_t first_index, count;    /* items first_index .. first_index + count - 1 */
    const batch_item* items;      /* count items (pull sources); NULL for counted input */
    unsigned char* results;       /* count * result_size bytes, item first_index + i's at
                                     i * result_size; NULL when result_size is 0 */
    void* acc;                    /* this attempt's fresh accumulator (init_fn has run; NULL
                                     without acc_size): fold the successful items into it */
} batch_item_range;
/* Process a run of items in one call (instead of item_fn once per item): a plain loop the
   compiler can inline and vectorize, folding into r->acc itself. Report each failed item with
   batch_ctx_fail_item (it must not be folded), then return 0, or a non-zero code that fails every
   item of the run not reported (batch_ctx_fail before returning gives them a message). The
   batch's codes, errors, counts, status, retries and delivery are then exactly as if an item_fn
   had returned those codes: a FAILED attempt's accumulator is thrown away and a retry gets a
   fresh one. batch_ctx_fail_permanent makes a failed batch skip its retries. A long run should
   look at batch_ctx_should_stop now and then (and then fail what it did not do). Runs on a
   worker; today a run is a whole batch attempt. */
typedef int (*batch_items_fn)(batch_ctx* ctx, const batch_item_range* r, void* user_data);
/* Produce the next item in *out and return 1, or return 0 at the end. Called under the job's
   lock, from one thread at a time, never ahead of the max_in_flight window. */
typedef int (*batch_pull_fn)(void* user_data, void** out);
typedef void (*batch_init_fn)(void* acc, void* user_data);
typedef void (*batch_fold_fn)(void* acc, const batch_item* item, const void* result, void* user_data);
typedef void (*batch_combine_fn)(void* acc, const void* other, void* user_data);

typedef enum batch_batch_status {
    BATCH_BATCH_SUCCESS = 0,
    BATCH_BATCH_PARTIAL_SUCCESS,
    BATCH_BATCH_FAILED
} batch_batch_status;
BATCH_API const char* batch_batch_status_string(batch_batch_status s);

typedef struct batch_item_error { size_t index; int code; const char* message; } batch_item_error;

/* A finished batch, as delivered. Everything it points to is borrowed until the callback returns
   (on_batch) or until the next batch_map_next / batch_map_wait (iterator). */
typedef struct batch_batch {
    size_t batch_index;           /* 0, 1, 2 ... in input order */
    size_t first_index, count;    /* items first_index .. first_index + count - 1 */
    batch_batch_status status;
    size_t succeeded, failed;     /* of the last attempt's items (a FAILED batch's all count as
                                     failed in the job's summary: none of them is folded) */
    const batch_item* items;      /* count items (pull sources); NULL for counted input, where
                                     item i has index first_index + i */
    const int* codes;             /* count codes: 0 = success */
    const unsigned char* results; /* count * result_size bytes: item i's result at i * result_size */
    const batch_item_error* errors;  /* the failed items with their messages (out of memory,
                                        entries may be missing: codes[] is complete) */
    size_t nerrors;
    const void* acc;              /* this batch's accumulator (NULL without a fold) */
    uint64_t exec_ns;             /* last attempt's run time */
    int retries_used;
    int worker;                   /* of the last attempt, -1: not a worker */
} batch_batch;
typedef void (*batch_on_batch_fn)(const batch_batch* b, void* user_data);

typedef struct batch_map_desc {
    /* input: count items (item.ptr NULL), or a pull source when pull_fn is set */
    size_t count;
    batch_pull_fn pull_fn;
    /* work */
    batch_item_fn item_fn;        /* one item per call; or: */
    batch_items_fn items_fn;      /* a run of items per call (exactly one of the two) */
    void* user_data;              /* passed to every callback; borrowed */
    size_t result_size;           /* bytes of each item's result slot; 0: none */
    /* sizing: batch_size, else complexity, else key in sizing, else adaptive */
    size_t batch_size;
    batch_complexity complexity;
    batch_sizing* sizing;         /* optional registry (class table, remembered cost) */
    const char* key;              /* looked up in sizing; copied */
    size_t min_batch, max_batch;  /* clamp; 0: 1 and 4096-16384 (see README), or the registry's */
    uint64_t target_batch_ns;     /* adaptive: run time a batch aims at; 0: 200 us */
    /* thresholds and retries */
    double error_threshold;       /* [0, 1]: FAILED when failed / size > this; 0: any failure */
    int max_retries;              /* of a FAILED batch; 0..1000 */
    uint64_t retry_base_ns;       /* 0: 1 ms */
    uint64_t retry_max_ns;        /* 0: 60 s */
    int retry_jitter;             /* non-zero: each delay is scaled by a random factor in [0.5, 1] */
    double halt_error_ratio;      /* (0, 1]: stop starting batches once failed items / finished
                                     items > this (counted as in the summary: a FAILED batch's
                                     items all failed); 0: never halt */
    /* flow */
    int max_in_flight;            /* batches alive at once; 0: 4 x threads */
    int max_concurrent_batches;   /* batches running at once; 0: no limit beyond max_in_flight */
    batch_priority priority;
    uint64_t timeout_ns;          /* 0: none. Deadline = launch + timeout: no batch or retry
                                     starts after it and running items see batch_ctx_should_stop.
                                     A map that has not finished by then (a batch ends at or
                                     after it, or waits for a retry, or input is left) ends
                                     CANCELLED with BATCH_ERR_TIMEOUT, even if every item
                                     returned 0; one whose last batch ended before it is not
                                     affected, however late it is waited for */
    /* results */
    batch_on_batch_fn on_batch;   /* called for each finished batch, one at a time, on a worker */
    int iterate;                  /* non-zero: finished batches wait for batch_map_next */
    int ordered;                  /* deliver and combine in batch order (deterministic folds;
                                     batch sizes then never depend on timing) */
    int keep_batches;             /* non-zero: keep a small record of every batch for the reports
                                     (JSON "batches_kept", the HTML timeline): O(batches) memory */
    batch_journal_desc journal;   /* optional: resume after a crash (see DURABLE JOBS) */
    size_t acc_size;              /* accumulator bytes; 0: no fold */
    batch_init_fn init_fn;        /* required with acc_size: sets a fresh accumulator */
    batch_fold_fn fold_fn;        /* required with acc_size and item_fn; NULL with items_fn
                                     (which folds into batch_item_range.acc itself) */
    batch_combine_fn combine_fn;  /* required with acc_size */
    batch_progress_desc progress;
} batch_map_desc;

typedef struct batch_map_summary {
    batch_job_status status;
    batch_result result;
    uint64_t batches, batches_succeeded, batches_partial, batches_failed;
    uint64_t items, succeeded, failed, unprocessed;
    /* items: the items that ran (succeeded + failed, those resumed from the journal included),
       not the input count: a halt, cancel or deadline leaves the rest unprocessed (never run).
       Counted input: items + unprocessed == count; a pull source: == the items pulled (what
       was never pulled is not counted). */
    /* succeeded: the items folded, the successful items of batches that did not end FAILED;
       failed: the failed items of those batches and every item of a FAILED batch (also one
       that a cancel or the deadline settled while it waited for a retry) */
    uint64_t retries;             /* batch retries */
    double success_rate;          /* succeeded / (succeeded + failed); 1 when nothing ran */
    uint64_t wall_ns, busy_ns;
    double parallel_efficiency;   /* busy / (wall x threads) */
    uint64_t peak_concurrent_batches;
    size_t final_batch_size;      /* the size the last dispatch aimed at (adaptive: what it
                                     converged to, before the taper at the end of the input) */
    uint64_t resumed_batches, resumed_items;   /* taken from the journal (counted above too) */
} batch_map_summary;

/* A map is a batch_job like a graph run: batch_job_wait, _cancel, _progress, _destroy and the
   reports take either kind. batch_map_next and batch_map_wait are for map jobs only: given a
   graph run's job they return BATCH_ERR_INVALID and change nothing (a run-time check: one
   handle type keeps the common calls free of conversions; see README, "Changes", 0.2.0). */
/* Starts a map; validates desc first (nothing starts on error): BATCH_ERR_INVALID for neither or
   both of item_fn and items_fn, count * result_size overflow, min > max, a threshold outside
   [0, 1] or NaN, acc_size without its functions (init, fold, combine; with items_fn init and
   combine, and fold_fn NULL), functions without acc_size, both on_batch and iterate, negative
   limits. */
BATCH_API batch_result batch_map_launch(batch_pool* pool, const batch_map_desc* desc, batch_job** out_job);
/* Iterator mode: the next finished batch in *out (borrowed until the next call), or *out = NULL
   when the map is over. Blocks; a worker helps meanwhile. BATCH_ERR_INVALID if the job does not
   iterate; BATCH_ERR_BUSY (*out NULL) from the map's own code, as for batch_job_wait. */
BATCH_API batch_result batch_map_next(batch_job* job, const batch_batch** out);
/* Waits for the end (in iterator mode, undelivered batches are released unread), copies the
   final accumulator to acc_out (acc_size bytes, may be NULL) and fills *summary. Returns
   BATCH_OK, BATCH_PARTIAL (some items failed, no batch FAILED), BATCH_ERR_FAILED (a batch FAILED
   or the halt ratio was passed), BATCH_ERR_CANCELLED, BATCH_ERR_TIMEOUT; BATCH_ERR_BUSY from the
   map's own code (items, on_batch, pull_fn, progress), as for batch_job_wait. batch_job_wait also
   works on map jobs (completed = items that succeeded, cancelled = unprocessed). */
BATCH_API batch_result batch_map_wait(batch_job* job, batch_map_summary* summary, void* acc_out);
/* Launch + wait + destroy. When the launch fails, *summary is zero but for status FAILED and
   result (the launch's code); acc_out is not written. */
BATCH_API batch_result batch_map_run(batch_pool* pool, const batch_map_desc* desc, batch_map_summary* summary,
                                     void* acc_out);
/* ---------------------------------------------------------------------------------------------
   REPORTS of a finished job (after batch_job_wait / batch_map_wait; BATCH_ERR_BUSY before).
   JSON: status, counts, timings in integer microseconds (never locale-dependent floats; rates
   in per mille), and for a graph one record per task (name, status, attempts, error, message,
   worker, start/end relative to the launch), for a map with keep_batches one per batch;
   strings are escaped. Text: a summary table fit for
   a terminal, with the tasks that did not complete. BATCH_ERR_INVALID on NULL, BATCH_ERR_IO when
   `out` reports a write error (ferror). */
BATCH_API batch_result batch_job_report_json(batch_job* job, FILE* out);
/* The job as a Chrome trace (trace event JSON: Perfetto UI and chrome://tracing open it):
   {"traceEvents": [...], "displayTimeUnit": "ms"}. One complete event ("ph": "X") per attempt
   of a task (graph runs with task times) or of a kept batch (maps with keep_batches), with "ts"
   and "dur" in microseconds since the launch (3 decimals), "pid" 1, "tid" the worker index (the
   worker count: any other thread, as in an inline pool), "cat" "task" or "batch", "name" the
   task's name ("#id" without one) or "batch N", and "args": status (as in the JSON report),
   attempt, and for a failed task attempt its error code and message. A retried attempt's wait
   for its retry is an event of its own ("cat": "retry-wait", name "<task> (retry wait)") on a
   "retry waits" thread line past the others (more lines when waits overlap). Metadata name the
   process (the graph's name, "graph" or "map") and each thread line. Strings are escaped as in
   the JSON report. BATCH_ERR_INVALID on NULL, BATCH_ERR_BUSY before the job was waited for,
   BATCH_ERR_NOMEM (nothing written) when the retry waits cannot be laid out, BATCH_ERR_IO when
   `out` reports a write error. */
BATCH_API batch_result batch_job_report_trace(batch_job* job, FILE* out);
BATCH_API batch_result batch_job_report_text(batch_job* job, FILE* out);
/* One self-contained HTML file (inline CSS and a few lines of inline script, nothing fetched):
   the job's name (the graph's, else "graph" or "map") as title and heading, the summary; for a
   graph run with task times or a map with keep_batches an inline SVG timeline as wide as the
   window, with a zoom slider: one lane per worker and one for other threads, a bar per task or
   batch coloured by status (hover: name, status, times, error), touching bars of one status on a
   lane drawn as one rect (its hover says how many), failed ones each on their own, on top, at
   least 3 units of 1000 wide; skipped and cancelled tasks as marks on lanes of their own at the
   end (they have no time); an axis of 5-10 ticks. Then a table of the failed, skipped and
   cancelled tasks (a map's failed and partial kept batches) with error code, message and
   attempts: the first 1000, then "and N more". BATCH_ERR_INVALID on NULL, BATCH_ERR_BUSY before
   the job was waited for, BATCH_ERR_NOMEM (nothing written) when the timeline's room cannot be
   had, BATCH_ERR_IO when `out` reports a write error. */
BATCH_API batch_result batch_job_report_html(batch_job* job, FILE* out);
/* Compares two JSON reports (the text of baseline and current, NUL-terminated, as written by
   batch_job_report_json) and writes the differences as text: status, success rate, duration and
   count deltas, and the tasks (matched by name, else by id) whose status changed. Returns
   BATCH_OK, BATCH_ERR_INVALID when either text is not such a report, BATCH_ERR_NOMEM, or
   BATCH_ERR_IO when `out` reports a write error. */
BATCH_API batch_result batch_report_compare(const char* baseline_json, const char* current_json, FILE* out);

/* ---------------------------------------------------------------------------------------------
   DURABLE QUEUES: jobs submitted now, run later, shared by processes, surviving crashes
   A queue is one file: an append-only log in the journal's format (header, then records each
   with a length and a CRC32C; a torn or corrupt tail is cut off, as for a journal). Any number
   of processes and threads open the same path; each operation takes the file's lock (flock on
   POSIX, held per open file; LockFileEx on Windows), reads what others appended since its last
   look, then appends its own records. The file is the only state: there is no daemon.
   A job is an opaque payload of bytes with a priority, a retry budget and an optional name. It
   is QUEUED, then RUNNING once claimed (highest priority first, FIFO within one), then DONE,
   FAILED or CANCELLED. A claim is a lease: the claimer renews it while the job runs
   (batch_queue_serve does); a lease that runs out (the worker was killed, or hung) gives the
   job back to the queue at once (the lease was its wait), its attempt counted as failed
   (error BATCH_ERR_TIMEOUT; FAILED if that was its last retry), and the claim of another
   worker then fails the old holder's complete (BATCH_ERR_TIMEOUT). A failed attempt
   (batch_queue_fail) is retried after retry_base * 2^k (capped at retry_max) until
   max_retries retries are spent, then it is FAILED.
   No job is lost and none completes twice; a job's *work* runs more than once when its worker
   dies (or loses its lease) before completing it: make it idempotent.
   Durability: PROCESS (default): each operation's records reach the OS before it returns: a
   killed process loses nothing. MACHINE: and fdatasync every sync_every pushes, ends and
   cancels: survives a power loss (a claim or renewal it takes only makes that job run again,
   as a killed worker does). BUFFERED: completes, failures and releases wait in the handle until its next
   operation that writes (a claim, a push, batch_queue_flush, close); a killed process loses
   them and those jobs run again once their leases run out. Pushes, claims and cancels are
   written at once at every level. Times are wall-clock nanoseconds since 1970 (leases are
   shared by processes); ids start at 1 and are never reused.
   The file grows with every record: batch_queue_compact rewrites it with one record per job
   (and without finished ones when asked). Needs the journal's file I/O: with BATCH_NO_JOURNAL
   (bare metal) batch_queue_open returns BATCH_ERR_IO. */
typedef struct batch_queue batch_queue;

typedef enum batch_queue_status {
    BATCH_QUEUE_QUEUED = 0,   /* waiting to be claimed (or for a retry's delay) */
    BATCH_QUEUE_RUNNING,      /* claimed; its lease not yet given back */
    BATCH_QUEUE_DONE,
    BATCH_QUEUE_FAILED,       /* its last attempt failed with no retry left, or permanently */
    BATCH_QUEUE_CANCELLED,
    BATCH_QUEUE_STATUS_COUNT_
} batch_queue_status;
/* "queued", "running", "done", "failed", "cancelled"; "unknown" otherwise. */
BATCH_API const char* batch_queue_status_string(batch_queue_status s);

#define BATCH_QUEUE_NAME_MAX 256      /* a job's name: at most this - 1 bytes */
#define BATCH_QUEUE_PAYLOAD_MAX (16u << 20)   /* a job's payload: at most 16 MiB */

typedef struct batch_queue_desc {
    const char* path;             /* required; created (mode 0600) when missing */
    batch_durability durability;
    int sync_every;               /* MACHINE: pushes, ends and cancels per fdatasync; 0: 1 */
    uint64_t lease_ns;            /* how long a claim holds without a renewal; 0: 30 s */
    uint64_t retry_base_ns;       /* a failed attempt's retry k waits base * 2^k; 0: 1 s */
    uint64_t retry_max_ns;        /* cap of that wait; 0: 10 min */
    int retry_jitter;             /* non-zero: each wait is scaled by a random factor in [0.5, 1] */
    void* alloc_ctx;              /* passed to BATCH_MALLOC/BATCH_REALLOC/BATCH_FREE */
} batch_queue_desc;

typedef struct batch_queue_push_desc {
    const void* payload;          /* size bytes, copied; may be NULL when size is 0 */
    size_t size;                  /* at most BATCH_QUEUE_PAYLOAD_MAX */
    int priority;                 /* higher first; any int */
    int max_retries;              /* 0..1000: retries after a failed attempt */
    const char* name;             /* optional; at most BATCH_QUEUE_NAME_MAX - 1 bytes */
} batch_queue_push_desc;

/* A job as the queue knows it. */
typedef struct batch_queue_info {
    uint64_t id;
    batch_queue_status status;
    int priority, max_retries;
    int attempts;                 /* claims so far (a release gives one back) */
    int error;                    /* the last failed attempt's code (a lost lease: BATCH_ERR_TIMEOUT);
                                     0: none */
    uint64_t pushed_ns;           /* wall clock */
    uint64_t not_before_ns;       /* QUEUED: not claimed before this (a retry's delay); else 0 */
    uint64_t lease_until_ns;      /* RUNNING: the lease's end; else 0 */
    uint64_t finished_ns;         /* DONE, FAILED, CANCELLED: when; else 0 */
    size_t size;                  /* of the payload */
    char name[BATCH_QUEUE_NAME_MAX];        /* "" when none */
    char message[BATCH_MESSAGE_MAX];        /* the last failed attempt's message; "" when none */
} batch_queue_info;

/* A claimed (or fetched) job: its info and a copy of its payload, which batch_queue_job_free
   releases. */
typedef struct batch_queue_job {
    batch_queue_info info;
    void* payload;                /* info.size bytes (NULL when 0) */
} batch_queue_job;

typedef struct batch_queue_stats {
    uint64_t count[BATCH_QUEUE_STATUS_COUNT_];   /* jobs per status */
    uint64_t total;               /* all jobs in the file (dropped ones are not counted) */
    uint64_t delayed;             /* QUEUED jobs waiting for a retry's delay */
    uint64_t expired;             /* RUNNING jobs whose lease has run out (a claim recovers them) */
    uint64_t file_bytes;          /* the file's size; compact makes it smaller */
    uint64_t next_id;             /* the id the next push gets */
} batch_queue_stats;

/* Opens (creates) the queue at desc->path and reads it. BATCH_ERR_INVALID (bad desc),
   BATCH_ERR_CORRUPT (not a queue, a bad header, a record that does not fit), BATCH_ERR_MISMATCH
   (a journal of a job, not a queue), BATCH_ERR_IO, BATCH_ERR_NOMEM. A handle may be used by any
   number of threads at once; a process may open the same queue more than once. */
BATCH_API batch_result batch_queue_open(batch_queue** out, const batch_queue_desc* desc);
/* Writes what is buffered, then closes: the first failure's code. NULL: BATCH_OK. Jobs this
   handle holds stay RUNNING until their leases run out: release them first. */
BATCH_API batch_result batch_queue_close(batch_queue* q);
/* Appends one job (*out_id, may be NULL: its id), or n jobs with one write per MiB (their ids
   are *out_first_id ... + n - 1). BATCH_ERR_INVALID (nothing pushed) for a bad desc;
   BATCH_ERR_IO (a failed write: the jobs of that write are not pushed, earlier MiBs are). */
BATCH_API batch_result batch_queue_push(batch_queue* q, const batch_queue_push_desc* job, uint64_t* out_id);
BATCH_API batch_result batch_queue_push_many(batch_queue* q, const batch_queue_push_desc* jobs, size_t n,
                                             uint64_t* out_first_id);
/* Claims the next job (highest priority, then lowest id, among QUEUED jobs whose delay is over
   and RUNNING jobs whose lease ran out) for this handle: RUNNING with a lease of lease_ns from
   now; *out gets its info and payload (batch_queue_job_free it). BATCH_ERR_EMPTY when there is
   none now (*out zeroed). */
BATCH_API batch_result batch_queue_claim(batch_queue* q, batch_queue_job* out);
/* Frees a job's payload and zeroes it. NULL: no-op. */
BATCH_API void batch_queue_job_free(batch_queue* q, batch_queue_job* job);
/* Ends a job this handle claimed: complete (DONE), fail (code non-zero, message may be NULL:
   QUEUED again after the retry delay, or FAILED when its retries are spent or `permanent`),
   release (QUEUED again at once; the attempt is not counted), renew (the lease runs lease_ns
   from now). BATCH_ERR_NOT_FOUND (no such id), BATCH_ERR_CANCELLED (cancelled meanwhile: the
   worker should stop), BATCH_ERR_TIMEOUT (its lease ran out and the job went back to the
   queue, or to another claim), BATCH_ERR_INVALID (this handle never held it, or ended it:
   after an end that returned CANCELLED or TIMEOUT it is no longer held), BATCH_ERR_IO. A
   BUFFERED end is checked against what this handle last read; it is checked again when written,
   and dropped if the job was cancelled or lost meanwhile. */
BATCH_API batch_result batch_queue_complete(batch_queue* q, uint64_t id);
BATCH_API batch_result batch_queue_fail(batch_queue* q, uint64_t id, int code, int permanent, const char* message);
BATCH_API batch_result batch_queue_release(batch_queue* q, uint64_t id);
BATCH_API batch_result batch_queue_renew(batch_queue* q, uint64_t id);
/* Cancels a QUEUED or RUNNING job (a running one's worker learns it at its next renew or end,
   and batch_queue_serve's job function then sees batch_ctx_should_stop). BATCH_ERR_NOT_FOUND,
   BATCH_ERR_INVALID when it is already DONE, FAILED or CANCELLED. */
BATCH_API batch_result batch_queue_cancel(batch_queue* q, uint64_t id);
/* A job's info and payload (batch_queue_job_free it). BATCH_ERR_NOT_FOUND. */
BATCH_API batch_result batch_queue_get(batch_queue* q, uint64_t id, batch_queue_job* out);
/* The jobs of one status (every status when status is -1), in id order,
   skipping the first `offset` of them: up to `limit` infos in out[], *n how many. */
BATCH_API batch_result batch_queue_list(batch_queue* q, int status, uint64_t offset, batch_queue_info* out,
                                        size_t limit, size_t* n);
BATCH_API batch_result batch_queue_stats_get(batch_queue* q, batch_queue_stats* out);
/* Rewrites the file with one record per job; drop_finished non-zero leaves out DONE, FAILED and
   CANCELLED jobs (their ids are not reused). Safe while other processes use the queue: they
   follow the new file at their next operation. A crash midway leaves the old file whole. On
   Windows the new file replaces the old one with a POSIX-semantics rename (Windows 10 1709+,
   NTFS); where that is missing (older systems, wine) and a handle holds the file open (this
   one does), BATCH_ERR_BUSY and nothing changes. */
BATCH_API batch_result batch_queue_compact(batch_queue* q, int drop_finished);
/* Writes buffered records (BUFFERED) and syncs (MACHINE). */
BATCH_API batch_result batch_queue_flush(batch_queue* q);

/* Serving: claims jobs and runs them on the pool, at most `concurrency` at once, renewing their
   leases meanwhile, until batch_job_cancel (running jobs see batch_ctx_should_stop; the serve
   gives back those that then fail, attempts not counted) or, with `drain`, until no job of the
   queue is QUEUED (delays included) or RUNNING (a job another worker runs may fail and come
   back, or its worker may die and its lease run out). The job function returns 0 (DONE) or a
   code (batch_ctx_fail adds a message; batch_ctx_fail_permanent skips the retries); a job
   cancelled while it runs sees batch_ctx_should_stop and its outcome is not written. The serve
   is a batch_job: batch_job_wait (completed = jobs done, failed = attempts failed, cancelled =
   jobs cancelled or given back), progress and the reports (one record per job run) work as for
   any job (the reports show each run as a task named after its job). It runs a thread of its
   own (BATCH_ERR_THREAD without threads); on a pool without workers the jobs run one at a time
   on that thread, and a job longer than the lease loses it. The queue must stay open until the
   job is destroyed. */
typedef int (*batch_queue_fn)(batch_ctx* ctx, const batch_queue_job* job, void* user_data);
typedef struct batch_queue_serve_desc {
    batch_queue_fn fn;            /* required */
    void* user_data;
    int concurrency;              /* jobs running at once; 0: the pool's workers (1 inline) */
    int drain;                    /* non-zero: stop when no job is QUEUED or RUNNING (see above) */
    uint64_t poll_ns;             /* an idle serve looks for new jobs this often; 0: 50 ms */
    uint64_t max_jobs;            /* stop after claiming this many; 0: no limit */
    int keep_records;             /* keep a record of each run for the reports: O(jobs) memory */
    batch_progress_desc progress;
} batch_queue_serve_desc;
BATCH_API batch_result batch_queue_serve(batch_pool* pool, batch_queue* q, const batch_queue_serve_desc* desc,
                                         batch_job** out_job);

/* ---------------------------------------------------------------------------------------------
   MAPS ACROSS PROCESSES: MPI (define BATCH_MPI and include <mpi.h> before batch.h)
   batch_mpi_map runs one map over every rank of comm, each rank on its own pool, with the
   semantics of batch_map_run: rank 0 cuts the input into batches (the same sizing: explicit,
   class, key or adaptive from the cost every rank measures) and hands them out as ranks ask for
   them; a rank asks only when it has room (max_in_flight, 0: 4 x its workers), so fast ranks
   get more. Each batch runs whole on one rank with the threshold and retry rules; its
   accumulator travels to rank 0, which delivers, folds (ordered: in batch order, the same
   bytes as a one-process run for any number of ranks and workers), journals and halts exactly
   as batch_map_run. Every rank returns the same result, final accumulator and merged summary
   (busy time and retries summed over ranks); per_rank (NULL, or comm-size entries) gets each
   rank's share.
   Collective: every rank calls it with an equivalent desc (count, result_size, acc_size,
   ordered and batch sizing the same; functions and user_data are each rank's own). Items are
   indices: pull sources, on_batch and the iterator are BATCH_ERR_INVALID (on every rank).
   progress, timeout_ns and the journal are rank 0's: a cancel from its progress callback or
   the deadline stops every rank (running batches see batch_ctx_should_stop). MPI calls happen on
   the calling thread only (MPI_THREAD_FUNNELED is enough); batch.h talks on a duplicate of comm.
   A failing MPI call ends the map with BATCH_ERR_MPI; MPI itself does not survive a dead rank
   (the job aborts): rerun it with the same journal on rank 0 to resume. */
#if defined(BATCH_MPI)
typedef struct batch_mpi_rank_stats {
    uint64_t batches, items, succeeded, failed, retries, busy_ns;
} batch_mpi_rank_stats;
BATCH_API batch_result batch_mpi_map(MPI_Comm comm, batch_pool* pool, const batch_map_desc* desc,
                                     batch_map_summary* summary, void* acc_out, batch_mpi_rank_stats* per_rank);
#endif

/* ---------------------------------------------------------------------------------------------
   THREAD SAFETY AND CALLBACKS
   - Every batch_pool_* function may be called from any thread at any time while the pool exists,
     except batch_pool_destroy/shutdown/wait_idle, which must not be called from a task of the
     same pool (they return BATCH_ERR_BUSY).
   - A batch_work_fn runs on a worker (or, for inline pools, on the waiting thread). It may submit,
     wait on counters and run parallel-for on any pool. It must not free its counter or the pool.
   - Tasks cannot be preempted: a task that never returns holds its worker forever.
   - Help-while-waiting runs other tasks on the waiting thread's stack: deeply nested waits use
     stack in proportion to their nesting.

   OWNERSHIP
   - Descs are read during the call only. user_data is borrowed and must outlive the task.
   - batch_counter memory is yours; it must outlive every task counted by it.
*/

#ifdef __cplusplus
}
#endif
#endif /* BATCH_H_INCLUDED */
