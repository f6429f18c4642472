/* SPDX-License-Identifier: MIT */
/* batch.h - GENERATED from batch_impl/ by 'make batch.h': edit the parts there, not this file. */
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

/* ======================================================================================== */
/* IMPLEMENTATION                                                                           */
/* ======================================================================================== */
#if defined(BATCH_IMPLEMENTATION) && !defined(BATCH_IMPLEMENTATION_INCLUDED)
#define BATCH_IMPLEMENTATION_INCLUDED
#define BATCH_SINGLE_FILE
/* ---- begin batch_impl/internal.h ---- */
/* internal.h - the implementation prologue: configuration, includes, stb_ds wiring, helpers.
   In batch.h this follows the public API inside the BATCH_IMPLEMENTATION guard. */
#ifndef BATCH__INTERNAL_H
#define BATCH__INTERNAL_H
#ifndef BATCH_SINGLE_FILE
#  include "api.h"
#endif

#if defined(__cplusplus)
#  error "compile the batch.h implementation as C11, not C++ (the API part is C++-compatible)"
#endif
#if !defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L
#  error "the batch.h implementation needs C11"
#endif
/* MSVC keeps defining __STDC_NO_ATOMICS__ under /experimental:c11atomics (its atomics are
   lock-free only); its <stdatomic.h> says so itself when the flag is missing. */
#if defined(__STDC_NO_ATOMICS__) && !defined(_MSC_VER)
#  error "batch.h needs C11 <stdatomic.h>"
#endif
#if defined(__MINGW32__) && !defined(_UCRT) && defined(__USE_MINGW_ANSI_STDIO) && !__USE_MINGW_ANSI_STDIO
#  error "batch.h on mingw-w64 with msvcrt needs C99 printf: include batch.h first in the implementation file, or compile with -D__USE_MINGW_ANSI_STDIO=1"
#endif

/* Windows: the Win32 threads backend (BATCH_USE_WIN32) unless BATCH_USE_PTHREADS or
   BATCH_NO_THREADS asks for another one. Chosen before the C11 test below, which would otherwise
   pick pthreads where the C library has no <threads.h> (__STDC_NO_THREADS__). */
#if defined(BATCH_USE_WIN32) && (defined(BATCH_NO_THREADS) || defined(BATCH_USE_PTHREADS))
#  undef BATCH_USE_WIN32
#elif defined(_WIN32) && !defined(BATCH_NO_THREADS) && !defined(BATCH_USE_PTHREADS) && !defined(BATCH_USE_WIN32)
#  define BATCH_USE_WIN32
#endif
#if defined(BATCH_USE_WIN32) && !defined(_WIN32)
#  error "BATCH_USE_WIN32 is the Windows backend: it needs _WIN32"
#endif

/* Threads backend: C11 <threads.h>, pthreads, Win32, or none. */
#if defined(BATCH_NO_THREADS)
#  undef BATCH_USE_PTHREADS
#elif !defined(BATCH_USE_PTHREADS) && !defined(BATCH_USE_WIN32) && (defined(__APPLE__) || defined(__STDC_NO_THREADS__))
#  define BATCH_USE_PTHREADS
#endif

#if (defined(BATCH_MALLOC) + defined(BATCH_REALLOC) + defined(BATCH_FREE)) % 3
#  error "define all of BATCH_MALLOC, BATCH_REALLOC and BATCH_FREE, or none"
#endif

#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <limits.h>
#include <time.h>
#include <ctype.h>
#include <errno.h>
#if defined(BATCH_USE_PTHREADS)
#  include <pthread.h>
#  include <sched.h>
#elif defined(BATCH_USE_WIN32)
#  include <process.h>   /* _beginthreadex; <windows.h> follows below */
#elif !defined(BATCH_NO_THREADS)
#  include <threads.h>
#endif
#if defined(_WIN32)
/* Windows (any backend): the clock, the CPU count and the journal's file I/O are Win32 calls.
   <windows.h> is included here, in the implementation only, as lean as it goes; the two macros
   are removed again when we defined them, so later includes of the user's see their own. */
#  if !defined(WIN32_LEAN_AND_MEAN)
#    define WIN32_LEAN_AND_MEAN
#    define BATCH__DEFINED_LEAN
#  endif
#  if !defined(NOMINMAX)
#    define NOMINMAX
#    define BATCH__DEFINED_NOMINMAX
#  endif
#  include <windows.h>
#  if defined(BATCH__DEFINED_LEAN)
#    undef WIN32_LEAN_AND_MEAN
#    undef BATCH__DEFINED_LEAN
#  endif
#  if defined(BATCH__DEFINED_NOMINMAX)
#    undef NOMINMAX
#    undef BATCH__DEFINED_NOMINMAX
#  endif
#  if defined(_WIN32_WINNT) && _WIN32_WINNT < 0x0601
#    error "batch.h on Windows needs Windows 7 APIs (_WIN32_WINNT >= 0x0601): GetActiveProcessorCount, SetFileInformationByHandle"
#  endif
#endif
#if defined(__unix__) || defined(__APPLE__)
#  include <unistd.h>
#  include <sys/ioctl.h>   /* TIOCGWINSZ: the progress bar fits the terminal */
#endif
/* x86-64 with GNU C: CPUID, rdtsc and PREFETCHW are reachable. Task times come from the TSC
   where it is invariant (platform.c, "task clock"). */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#  define BATCH__X86_64_GNU 1
#  include <cpuid.h>
#  if !defined(BATCH_NO_TSC)
#    define BATCH__HAVE_TSC 1
#  endif
#endif

/* A hosted system (an OS with processes and, usually, threads) or bare metal. */
#if defined(__unix__) || defined(__APPLE__) || defined(_WIN32)
#  define BATCH__HOSTED 1
#endif
/* Thread-local state. Without threads on bare metal there is one thread of execution, and
   _Thread_local would need the toolchain's TLS support (__aeabi_read_tp on ARM): a plain static
   does. A hosted BATCH_NO_THREADS build keeps it thread-local: its user may run inline pools on
   threads of their own. */
#if defined(BATCH_NO_THREADS) && !defined(BATCH__HOSTED)
#  define BATCH__THREAD_LOCAL
#else
#  define BATCH__THREAD_LOCAL _Thread_local
#endif

#ifndef BATCH_MALLOC
#  define BATCH_MALLOC(sz, ctx)     ((void)(ctx), malloc(sz))
#  define BATCH_REALLOC(p, sz, ctx) ((void)(ctx), realloc((p), (sz)))
#  define BATCH_FREE(p, ctx)        ((void)(ctx), free(p))
#endif
#ifndef BATCH_ASSERT
#  include <assert.h>
#  define BATCH_ASSERT(c) assert(c)
#endif
#ifndef BATCH_DEFAULT_THREADS
#  define BATCH_DEFAULT_THREADS 4
#endif
#ifndef BATCH_MAX_WORKERS
#  define BATCH_MAX_WORKERS 256
#endif

/* Large arrays (a graph's tasks and edges, 100+ MiB for 10^6 tasks) are asked to live on
   transparent huge pages: on a virtual machine a first-touch 4 KiB page fault costs
   microseconds, enough to make building a large graph far slower than running it
   (bench/README.md: chain_build); a 2 MiB page is one fault. The hint covers the 2 MiB-aligned windows inside a block of at
   least BATCH__HUGE_MIN bytes, never a page of memory the block does not own (glibc may carve
   a large block out of its heap, next to other allocations). Blocks so advised are not grown
   with realloc (batch__grow_block copies): advice on part of a mapping splits it, and an
   mremap across the split would fail and copy. Linux only; BATCH_NO_HUGE_PAGES turns it off.
   <sys/mman.h> shows madvise and MADV_HUGEPAGE only with _DEFAULT_SOURCE, which a strict
   -std=c11 build does not have: the declaration below is the libc's own, and 14 is
   MADV_HUGEPAGE on every Linux architecture but parisc. */
#if defined(__linux__) && !defined(BATCH_NO_HUGE_PAGES)
#  include <sys/mman.h>
#  if !defined(MADV_HUGEPAGE) && !defined(__hppa__)
#    define MADV_HUGEPAGE 14
extern int madvise(void* addr, size_t len, int advice);
#  endif
#endif
#define BATCH__HUGE_MIN ((size_t)4 << 20)
#if defined(__GNUC__) || defined(__clang__)
__attribute__((unused))
#endif
static void batch__huge_hint(void* p, size_t sz) {
#if defined(__linux__) && !defined(BATCH_NO_HUGE_PAGES) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (!p || sz < BATCH__HUGE_MIN) return;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), b = ((uintptr_t)p + sz) & ~(huge - 1);
    if (b > a) (void)madvise((void*)a, (size_t)(b - a), MADV_HUGEPAGE);   /* advice: failure is harmless */
#else
    (void)p; (void)sz;
#endif
}
/* BATCH_MALLOC, then the hint. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((unused))
#endif
static void* batch__big_malloc(size_t sz, void* ctx) {
    void* p = BATCH_MALLOC(sz, ctx);
    batch__huge_hint(p, sz);
    return p;
}
#define BATCH__BIG_MALLOC(sz, ctx) batch__big_malloc((sz), (ctx))
/* Grows a block of old_n to new_n items of elem bytes: realloc while small, else a copy into
   fresh hinted memory (a realloc would move huge pages with mremap and split them). NULL when
   out of memory (the old block is kept). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((unused))
#endif
static void* batch__grow_block(void* p, size_t old_n, size_t new_n, size_t elem, void* ctx) {
    size_t sz = new_n * elem;
    if (sz < BATCH__HUGE_MIN) return BATCH_REALLOC(p, sz, ctx);
    void* q = BATCH__BIG_MALLOC(sz, ctx);
    if (!q) return NULL;
    if (old_n) memcpy(q, p, old_n * elem);
    if (p) BATCH_FREE(p, ctx);
    return q;
}

/* stb_ds: BATCH_STB_DS_PATH if defined, else "stb_ds.h" if it is on the include path, else
   Debian's <stb/stb_ds.h> (libstb-dev). Its implementation has no once-guard, so a user who
   compiles it elsewhere opts out with BATCH_NO_STB_DS_IMPLEMENTATION. */
#if defined(INCLUDE_STB_DS_H) && !defined(BATCH_NO_STB_DS_IMPLEMENTATION)
#  error "stb_ds.h was included before the batch.h implementation: define BATCH_NO_STB_DS_IMPLEMENTATION and compile STB_DS_IMPLEMENTATION yourself"
#endif
/* stb_ds dereferences the result of a failed realloc. Its allocations go through
   batch__ds_realloc, which on failure longjmps back to the batch.h function that opened a guard
   (BATCH__DS_TRY); that function returns BATCH_ERR_NOMEM. stb_ds calls realloc before it changes
   a container, so the container is left as it was. Only the thread's own guard is used. */
#include <setjmp.h>
typedef struct batch__ds_guard { jmp_buf env; } batch__ds_guard;
static BATCH__THREAD_LOCAL batch__ds_guard* batch__ds_active;
#if defined(__GNUC__) || defined(__clang__)
__attribute__((unused))
#endif
static void* batch__ds_realloc(void* p, size_t sz) {
    void* r = BATCH_REALLOC(p, sz, NULL);
    batch__huge_hint(r, sz);
    batch__ds_guard* g = batch__ds_active;
    if (!r && sz) {
        if (g) longjmp(g->env, 1);
        fputs("batch.h: out of memory in stb_ds outside a guard\n", stderr);
        abort();
    }
    return r;
}
/* Runs op(arg), which may grow stb_ds containers, under a guard: BATCH_ERR_NOMEM if an
   allocation failed (op was cut short before it changed anything), else BATCH_OK. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((unused))
#endif
static int batch__ds_guarded(void (*op)(void* arg), void* arg) {
    batch__ds_guard gd;
    batch__ds_guard* saved = batch__ds_active;
    if (setjmp(gd.env)) { batch__ds_active = saved; return -2; /* BATCH_ERR_NOMEM */ }
    batch__ds_active = &gd;
    op(arg);
    batch__ds_active = saved;
    return 0;
}
#ifndef BATCH_NO_STB_DS_IMPLEMENTATION
#  define STBDS_REALLOC(c, p, sz) ((void)(c), batch__ds_realloc((p), (sz)))
#  define STBDS_FREE(c, p)        BATCH_FREE((p), (c))
#  define STB_DS_IMPLEMENTATION
#endif
#if defined(BATCH_STATIC) && !defined(BATCH_NO_STB_DS_IMPLEMENTATION) && !defined(INCLUDE_STB_DS_H)
/* BATCH_STATIC: stb_ds gets internal linkage too, so that two static copies link together.
   An `extern` declaration after a `static` one keeps the internal linkage (C11 6.2.2p4). */
struct stbds_string_arena;
static void stbds_rand_seed(size_t seed);
static size_t stbds_hash_bytes(void* p, size_t len, size_t seed);
static size_t stbds_hash_string(char* str, size_t seed);
static char* stbds_stralloc(struct stbds_string_arena* a, char* str);
static void stbds_strreset(struct stbds_string_arena* a);
static void* stbds_arrgrowf(void* a, size_t elemsize, size_t addlen, size_t min_cap);
static void stbds_arrfreef(void* a);
static void stbds_hmfree_func(void* p, size_t elemsize);
static void* stbds_hmget_key(void* a, size_t elemsize, void* key, size_t keysize, int mode);
static void* stbds_hmget_key_ts(void* a, size_t elemsize, void* key, size_t keysize, ptrdiff_t* temp, int mode);
static void* stbds_hmput_default(void* a, size_t elemsize);
static void* stbds_hmput_key(void* a, size_t elemsize, void* key, size_t keysize, int mode);
static void* stbds_hmdel_key(void* a, size_t elemsize, void* key, size_t keysize, size_t keyoffset, int mode);
static void* stbds_shmode_func(size_t elemsize, int mode);
#endif
#ifndef INCLUDE_STB_DS_H
#  if defined(__GNUC__)
#    pragma GCC diagnostic push
#    pragma GCC diagnostic ignored "-Wsign-conversion"
#    pragma GCC diagnostic ignored "-Wconversion"
#    pragma GCC diagnostic ignored "-Wmissing-prototypes"
#    pragma GCC diagnostic ignored "-Wunused-function"
#  endif
#  if defined(BATCH_STB_DS_PATH)
#    include BATCH_STB_DS_PATH
#  elif defined(__has_include)
#    if __has_include("stb_ds.h")
#      include "stb_ds.h"
#    elif __has_include(<stb/stb_ds.h>)
#      include <stb/stb_ds.h>
#    elif __has_include(<stb_ds.h>)
#      include <stb_ds.h>
#    else
#      error "batch.h needs stb_ds.h: install it (Debian/Ubuntu: apt install libstb-dev), put stb_ds.h beside batch.h, or define BATCH_STB_DS_PATH to its path in quotes"
#    endif
#  else
#    include <stb/stb_ds.h>
#  endif
#  if defined(__GNUC__)
#    pragma GCC diagnostic pop
#  endif
#endif

/* batch_ctx.msg_set: a message was written; the failure is permanent (no retry). */
enum { BATCH__MSG_SET = 1, BATCH__MSG_PERMANENT = 2 };

/* Internal linkage for everything that is not API. `unused` keeps each part compilable alone. */
#if defined(__GNUC__) || defined(__clang__)
#  define BATCH__PRIVATE static __attribute__((unused))
#  define BATCH__INLINE  static inline __attribute__((always_inline, unused))
#  define BATCH__LIKELY(x)   __builtin_expect(!!(x), 1)
#  define BATCH__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define BATCH__PRIVATE static
#  define BATCH__INLINE  static inline
#  define BATCH__LIKELY(x)   (x)
#  define BATCH__UNLIKELY(x) (x)
#endif

/* A copy of s from BATCH_MALLOC (ctx: the alloc_ctx), or NULL. */
BATCH__PRIVATE char* batch__strdup(const char* s, void* ctx) {
    size_t n = strlen(s) + 1;
    char* r = (char*)BATCH_MALLOC(n, ctx);
    if (r) memcpy(r, s, n);
    return r;
}

/* n > lim for a 64-bit limit whatever the width of size_t (written inline, the compare is
   always false where size_t has 32 bits, and -Wtype-limits says so). */
BATCH__INLINE bool batch__exceeds(size_t n, uint64_t lim) { return (uint64_t)n > lim; }
/* Whether a 64-bit value is a size_t here, and the value saturated to size_t (32-bit targets). */
BATCH__INLINE bool batch__fits_size(uint64_t v) { return (uint64_t)(size_t)v == v; }
BATCH__INLINE size_t batch__sat_size(uint64_t v) { return batch__fits_size(v) ? (size_t)v : SIZE_MAX; }

/* An enum value outside [0, count): one unsigned compare catches negative values too, and stays
   meaningful where enums are unsigned (arm-none-eabi's short enums). */
#define BATCH__ENUM_BAD(v, count) ((unsigned)(v) >= (unsigned)(count))

/* a / b as a double, rounded to double: i386's x87 keeps a quotient in 80 bits, where
   6.0 / 10 > 0.6, and only a store to memory rounds it under every -fexcess-precision. Thresholds
   compare this ratio, so that a batch gets the same status on every target. */
BATCH__PRIVATE double batch__ratio(uint64_t a, uint64_t b) {
    volatile double r = (double)a / (double)b;
    return r;
}

/* ThreadSanitizer does not model atomic_thread_fence (gcc refuses it under -fsanitize=thread).
   Our fences only order a store before a load (Dekker); in TSan builds a seq_cst RMW on a
   dummy gives the same hardware ordering, so the build under test still cannot lose wake-ups. */
#if defined(__SANITIZE_THREAD__)
#  define BATCH__TSAN 1
#elif defined(__has_feature)
#  if __has_feature(thread_sanitizer)
#    define BATCH__TSAN 1
#  endif
#endif
#if defined(BATCH__TSAN)
static _Atomic int batch__tsan_fence_dummy;
#  define BATCH__FENCE_SEQ_CST() ((void)atomic_fetch_add_explicit(&batch__tsan_fence_dummy, 0, memory_order_seq_cst))
#else
#  define BATCH__FENCE_SEQ_CST() atomic_thread_fence(memory_order_seq_cst)
#endif

/* Hints to fetch the cache line at p soon, to read it or to write it (no-ops where the compiler
   has no builtin). */
#if defined(__GNUC__) || defined(__clang__)
#  define BATCH__PREFETCH(p) __builtin_prefetch((const void*)(p))
#  define BATCH__PREFETCH_W(p) __builtin_prefetch((const void*)(p), 1)
#else
#  define BATCH__PREFETCH(p) ((void)(p))
#  define BATCH__PREFETCH_W(p) ((void)(p))
#endif

/* 64-bit atomic fields are declared 8-aligned: i386 aligns them to 8 since gcc 11 (to 4 before),
   and gcc notes the ABI change at every struct that leaves it implicit. */
#define BATCH__AL8 _Alignas(8)
#define BATCH__CACHE_LINE 64
#define BATCH__ALIGNED _Alignas(BATCH__CACHE_LINE)

#if !defined(BATCH_NO_THREADS)
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "batch.h with threads needs lock-free 64-bit atomics (BATCH_NO_THREADS does not)");
#endif
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "batch.h needs lock-free pointer atomics");
/* An 8-byte atomic needs at most 8-byte alignment on every ABI (asking _Alignof of it makes gcc
   print an ABI note on i386), so the size is what is checked. */
_Static_assert(sizeof(_Atomic uint64_t) == sizeof(uint64_t),
               "batch_counter stores an _Atomic uint64_t in an 8-aligned uint64_t field");

/* The public batch_counter keeps its atomic state in a plain uint64_t (the API must compile as
   C++); the field is _Alignas(8), and the static assert above makes the reinterpretation sound on every supported target. */
#define BATCH__ATOMIC_U64(p) ((_Atomic uint64_t*)(void*)(p))

#endif /* BATCH__INTERNAL_H */
/* ---- end batch_impl/internal.h ---- */
/* ---- begin batch_impl/platform.c ---- */
/* platform.c - threads, mutexes, condition variables, monotonic clock, CPU count, result strings.
   Four backends behind batch__-prefixed names: C11 <threads.h> (default), pthreads
   (BATCH_USE_PTHREADS), Win32 (BATCH_USE_WIN32, automatic on Windows) and none
   (BATCH_NO_THREADS: locks are no-ops, no thread is ever made). On Windows the clock and the CPU
   count come from Win32 whatever the backend. */
#ifndef BATCH__PLATFORM_C
#define BATCH__PLATFORM_C
#ifndef BATCH_SINGLE_FILE
#  include "internal.h"
#endif

/* ---- result strings --------------------------------------------------------------------- */
BATCH_API const char* batch_result_string(batch_result r) {
    switch ((int)r) {
#define BATCH__RESULT_CASE(name, value, text) case value: return text;
        BATCH_RESULTS(BATCH__RESULT_CASE)
#undef BATCH__RESULT_CASE
        default: return "unknown result";
    }
}

/* ---- clock ------------------------------------------------------------------------------
   BATCH_CLOCK_NS(): the user's monotonic clock in nanoseconds (bare metal: a cycle counter or a
   timer). Otherwise QueryPerformanceCounter on Windows, CLOCK_MONOTONIC elsewhere. */
#if defined(BATCH_CLOCK_NS)
BATCH_API uint64_t batch_now_ns(void) { return (uint64_t)(BATCH_CLOCK_NS()); }
#elif defined(_WIN32)
/* QueryPerformanceCounter: monotonic, and its frequency is fixed at boot, so it is read once
   (a race only stores the same value twice). counter * 1e9 would overflow 64 bits after about
   half an hour of uptime at a 10 MHz counter: whole seconds and the remainder are scaled apart
   (the remainder is below the frequency, so remainder * 1e9 fits). */
static _Atomic int64_t batch__qpc_freq;
BATCH__PRIVATE uint64_t batch__qpc_ns(uint64_t t, uint64_t f) { return t / f * 1000000000u + t % f * 1000000000u / f; }
BATCH_API uint64_t batch_now_ns(void) {
    int64_t f = atomic_load_explicit(&batch__qpc_freq, memory_order_relaxed);   /* relaxed: a constant */
    LARGE_INTEGER c;
    if (!f) {
        LARGE_INTEGER q;
        QueryPerformanceFrequency(&q);   /* never fails since Windows XP */
        f = q.QuadPart > 0 ? q.QuadPart : 1;
        atomic_store_explicit(&batch__qpc_freq, f, memory_order_relaxed);
    }
    QueryPerformanceCounter(&c);
    return batch__qpc_ns((uint64_t)c.QuadPart, (uint64_t)f);
}
#else /* POSIX */
#  if !defined(CLOCK_MONOTONIC)
#    error "batch.h: clock_gettime(CLOCK_MONOTONIC) is not visible. Define BATCH_IMPLEMENTATION before the first #include of this file, or compile with -D_POSIX_C_SOURCE=200809L (or -std=gnu11); without POSIX (bare metal), define BATCH_CLOCK_NS()"
#  endif
BATCH_API uint64_t batch_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#endif

/* ---- task clock ------------------------------------------------------------------------------
   Graph tasks stamp their start and end in ticks: one read per task (batch__clock_take hands the
   end of one task to the start of the next). Where the CPU says its TSC is invariant (constant
   rate in every power state: CPUID 0x80000007 EDX bit 8) a tick is a raw rdtsc, cheaper than
   clock_gettime under a hypervisor's clock source (bench/README.md: task times); the times become
   CLOCK_MONOTONIC nanoseconds when a run ends, on the line through two (tick, ns) pairs
   (batch__timebase). Elsewhere, and with BATCH_NO_TSC, a tick is batch_now_ns(). rdtsc is not
   ordered with the loads around it; a few cycles of skew are far below what a task takes. */
/* Bit `bit` of ECX (ecx) or EDX of CPUID extended leaf `leaf`; false without CPUID. */
BATCH__PRIVATE bool batch__cpuid_ext_bit(unsigned leaf, bool ecx, unsigned bit) {
#if defined(BATCH__X86_64_GNU)
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < leaf) return false;
    if (!__get_cpuid(leaf, &a, &b, &c, &d)) return false;
    return ((ecx ? c : d) >> bit) & 1u;
#else
    (void)leaf; (void)ecx; (void)bit;
    return false;
#endif
}
BATCH__PRIVATE bool batch__tsc_invariant(void) {
#if defined(BATCH__HAVE_TSC)
    return batch__cpuid_ext_bit(0x80000007u, false, 8);
#else
    return false;
#endif
}
/* Whether the CPU has PREFETCHW (CPUID 0x80000001 ECX bit 8: every AMD64 CPU, Intel since
   Broadwell), which fetches a line for writing; the portable write hint compiles to a read
   prefetch unless the target names the feature, and a line another core holds then still needs
   a second round trip when it is written. */
BATCH__PRIVATE bool batch__has_prefetchw(void) { return batch__cpuid_ext_bit(0x80000001u, true, 8); }
/* A prefetch of p's line for writing: PREFETCHW when `w` (batch__has_prefetchw), else a hint. */
BATCH__INLINE void batch__prefetch_write(const void* p, bool w) {
#if defined(BATCH__X86_64_GNU)
    if (w) { __asm__ volatile("prefetchw %0" : : "m"(*(const char*)p)); return; }
#endif
    (void)w;
    BATCH__PREFETCH_W(p);
}

BATCH__INLINE uint64_t batch__ticks(bool tsc) {
#if defined(BATCH__HAVE_TSC)
    if (tsc) return (uint64_t)__builtin_ia32_rdtsc();
#endif
    (void)tsc;
    return batch_now_ns();
}

/* The same instant on both clocks: the middle of the tightest of a few tick brackets around a
   clock_gettime (a preemption inside one bracket would skew it). */
typedef struct batch__clockpair { uint64_t tick, ns; } batch__clockpair;
BATCH__PRIVATE batch__clockpair batch__clockpair_now(bool tsc) {
    batch__clockpair p = { 0, 0 };
    if (!tsc) { p.tick = p.ns = batch_now_ns(); return p; }
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 4; i++) {
        uint64_t t0 = batch__ticks(true), ns = batch_now_ns(), t1 = batch__ticks(true);
        if (t1 - t0 < best) { best = t1 - t0; p.tick = t0 + (t1 - t0) / 2; p.ns = ns; }
    }
    return p;
}

/* Ticks to ns for one run: ns = at.ns + (tick - at.tick) * scale, at = the launch, clamped into
   [launch, end]: every task time lies there, and the clamp keeps that exact against the few ns
   a pair can be off. The scale comes from the run's own launch and end when they are at least
   1 ms apart (clock slewing during the run is then followed), else from the pool's creation
   to the run's end. Without a TSC ticks are ns. */
typedef struct batch__timebase { batch__clockpair at; uint64_t end_ns; double scale; bool tsc; } batch__timebase;
BATCH__PRIVATE batch__timebase batch__timebase_make(bool tsc, batch__clockpair origin, batch__clockpair launch,
                                                    batch__clockpair end) {
    batch__timebase tb = { launch, end.ns, 1.0, tsc };
    if (!tsc) return tb;
    const batch__clockpair* from = (end.ns - launch.ns >= 1000000u || origin.ns >= launch.ns) ? &launch : &origin;
    tb.scale = end.tick > from->tick && end.ns > from->ns ? (double)(end.ns - from->ns) / (double)(end.tick - from->tick) : 0.0;
    return tb;
}
BATCH__PRIVATE uint64_t batch__timebase_ns(const batch__timebase* tb, uint64_t tick) {
    if (!tb->tsc || !tick) return tick;   /* 0: no time */
    if (tick <= tb->at.tick) return tb->at.ns;
    double d = (double)(tick - tb->at.tick) * tb->scale;
    return d < (double)(tb->end_ns - tb->at.ns) ? tb->at.ns + (uint64_t)d : tb->end_ns;
}
/* A span of ticks in ns. */
BATCH__PRIVATE uint64_t batch__timebase_span(const batch__timebase* tb, uint64_t ticks) {
    if (!tb->tsc) return ticks;
    double d = (double)ticks * tb->scale;
    return d < 1.8e19 ? (uint64_t)d : UINT64_MAX;
}

BATCH_API int batch_cpu_count(void) {
#if defined(_WIN32)
    /* every processor group: GetSystemInfo would stop at the caller's group of 64 */
    DWORD w = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    if (w >= 1) return w > BATCH_MAX_WORKERS ? BATCH_MAX_WORKERS : (int)w;
#elif defined(_SC_NPROCESSORS_ONLN)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n >= 1) return n > BATCH_MAX_WORKERS ? BATCH_MAX_WORKERS : (int)n;
#endif
    return BATCH_DEFAULT_THREADS;
}

/* A pause hint for spin loops. */
BATCH__PRIVATE void batch__cpu_relax(void) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
    __asm__ __volatile__("yield");
#elif defined(_WIN32)
    YieldProcessor();   /* MSVC: _mm_pause on x86, yield on ARM64 */
#endif
}

/* Timed waits are cut into slices of at most this much wall time; between slices the monotonic
   clock decides. A wall-clock step can then neither hang a wait nor end it early. */
#define BATCH__WAIT_SLICE_NS 100000000u

/* Test hooks: a build can define BATCH__FAIL_THREAD_CREATE() to make thread creation fail, and
   BATCH__FAIL_SYNC_INIT() to make a mutex or condition variable initialization fail. */
#ifndef BATCH__FAIL_SYNC_INIT
#  define BATCH__FAIL_SYNC_INIT() 0
#endif
#ifndef BATCH__FAIL_THREAD_CREATE
#  define BATCH__FAIL_THREAD_CREATE() 0
#endif

typedef int (*batch__thread_fn)(void* arg);

#if defined(BATCH_NO_THREADS)
/* ---- no threads: every lock is a no-op ------------------------------------------------- */
typedef struct batch__mutex { int unused; } batch__mutex;
typedef struct batch__cond { int unused; } batch__cond;
typedef struct batch__thread { int unused; } batch__thread;
BATCH__PRIVATE bool batch__mutex_init(batch__mutex* m) { (void)m; return !BATCH__FAIL_SYNC_INIT(); }
BATCH__PRIVATE void batch__mutex_destroy(batch__mutex* m) { (void)m; }
BATCH__PRIVATE void batch__mutex_lock(batch__mutex* m) { (void)m; }
BATCH__PRIVATE void batch__mutex_unlock(batch__mutex* m) { (void)m; }
BATCH__PRIVATE bool batch__cond_init(batch__cond* c) { (void)c; return !BATCH__FAIL_SYNC_INIT(); }
BATCH__PRIVATE void batch__cond_destroy(batch__cond* c) { (void)c; }
BATCH__PRIVATE void batch__cond_signal(batch__cond* c) { (void)c; }
BATCH__PRIVATE void batch__cond_broadcast(batch__cond* c) { (void)c; }
BATCH__PRIVATE void batch__yield(void) {}
BATCH__PRIVATE bool batch__thread_create(batch__thread* t, batch__thread_fn fn, void* arg) {
    (void)t; (void)fn; (void)arg; return false;
}
BATCH__PRIVATE void batch__thread_join(batch__thread t) { (void)t; }
/* Nothing else can change the state we wait for, so sleeping is only useful for timed waits.
   Without POSIX (bare metal) this returns at once and the caller's loop polls the clock. */
BATCH__PRIVATE void batch__cond_wait_slice(batch__cond* c, batch__mutex* m, uint64_t deadline) {
    (void)c; (void)m;
    uint64_t now = batch_now_ns();
    if (deadline != UINT64_MAX && deadline > now) {
        uint64_t d = deadline - now;
        if (d > BATCH__WAIT_SLICE_NS) d = BATCH__WAIT_SLICE_NS;
#  if defined(_WIN32)
        Sleep((DWORD)((d + 999999u) / 1000000u));   /* ms, rounded up: never a busy loop */
#  elif defined(__unix__) || defined(__APPLE__)
        struct timespec ts = { (time_t)(d / 1000000000u), (long)(d % 1000000000u) };
        nanosleep(&ts, NULL);
#  else
        (void)d;
#  endif
    }
}

#elif defined(BATCH_USE_PTHREADS)
/* ---- pthreads ------------------------------------------------------------------------------ */
typedef pthread_mutex_t batch__mutex;
typedef pthread_cond_t batch__cond;
typedef pthread_t batch__thread;
BATCH__PRIVATE bool batch__mutex_init(batch__mutex* m) { return !BATCH__FAIL_SYNC_INIT() && pthread_mutex_init(m, NULL) == 0; }
BATCH__PRIVATE void batch__mutex_destroy(batch__mutex* m) { pthread_mutex_destroy(m); }
BATCH__PRIVATE void batch__mutex_lock(batch__mutex* m) { pthread_mutex_lock(m); }
BATCH__PRIVATE void batch__mutex_unlock(batch__mutex* m) { pthread_mutex_unlock(m); }
BATCH__PRIVATE bool batch__cond_init(batch__cond* c) { return !BATCH__FAIL_SYNC_INIT() && pthread_cond_init(c, NULL) == 0; }
BATCH__PRIVATE void batch__cond_destroy(batch__cond* c) { pthread_cond_destroy(c); }
BATCH__PRIVATE void batch__cond_signal(batch__cond* c) { pthread_cond_signal(c); }
BATCH__PRIVATE void batch__cond_broadcast(batch__cond* c) { pthread_cond_broadcast(c); }
BATCH__PRIVATE void batch__yield(void) { sched_yield(); }
typedef struct batch__pthread_tramp { batch__thread_fn fn; void* arg; } batch__pthread_tramp;
static void* batch__pthread_start(void* p) {
    batch__pthread_tramp t = *(batch__pthread_tramp*)p;
    free(p);  /* plain malloc: thread start-up is not an allocation the user accounts */
    t.fn(t.arg);
    return NULL;
}
BATCH__PRIVATE bool batch__thread_create(batch__thread* t, batch__thread_fn fn, void* arg) {
    if (BATCH__FAIL_THREAD_CREATE()) return false;
    batch__pthread_tramp* tr = (batch__pthread_tramp*)malloc(sizeof *tr);
    if (!tr) return false;
    tr->fn = fn; tr->arg = arg;
    if (pthread_create(t, NULL, batch__pthread_start, tr) != 0) { free(tr); return false; }
    return true;
}
BATCH__PRIVATE void batch__thread_join(batch__thread t) { pthread_join(t, NULL); }
BATCH__PRIVATE void batch__cond_timedwait_wall(batch__cond* c, batch__mutex* m, const struct timespec* ts) {
    pthread_cond_timedwait(c, m, ts);
}
BATCH__PRIVATE void batch__cond_wait_forever(batch__cond* c, batch__mutex* m) { pthread_cond_wait(c, m); }

#elif defined(BATCH_USE_WIN32)
/* ---- Win32: slim reader/writer locks (exclusive only), condition variables, CRT threads --------
   An SRWLOCK and a CONDITION_VARIABLE need neither resources nor a destroy call, and cannot
   fail to initialize. Threads are made with _beginthreadex (not CreateThread) so that the C
   runtime sets up its per-thread state for them. */
typedef SRWLOCK batch__mutex;
typedef CONDITION_VARIABLE batch__cond;
typedef HANDLE batch__thread;
BATCH__PRIVATE bool batch__mutex_init(batch__mutex* m) { InitializeSRWLock(m); return !BATCH__FAIL_SYNC_INIT(); }
BATCH__PRIVATE void batch__mutex_destroy(batch__mutex* m) { (void)m; }
BATCH__PRIVATE void batch__mutex_lock(batch__mutex* m) { AcquireSRWLockExclusive(m); }
BATCH__PRIVATE void batch__mutex_unlock(batch__mutex* m) { ReleaseSRWLockExclusive(m); }
BATCH__PRIVATE bool batch__cond_init(batch__cond* c) { InitializeConditionVariable(c); return !BATCH__FAIL_SYNC_INIT(); }
BATCH__PRIVATE void batch__cond_destroy(batch__cond* c) { (void)c; }
BATCH__PRIVATE void batch__cond_signal(batch__cond* c) { WakeConditionVariable(c); }
BATCH__PRIVATE void batch__cond_broadcast(batch__cond* c) { WakeAllConditionVariable(c); }
BATCH__PRIVATE void batch__yield(void) { (void)SwitchToThread(); }
typedef struct batch__win32_tramp { batch__thread_fn fn; void* arg; } batch__win32_tramp;
static unsigned __stdcall batch__win32_start(void* p) {
    batch__win32_tramp t = *(batch__win32_tramp*)p;
    free(p);  /* plain malloc: thread start-up is not an allocation the user accounts */
    t.fn(t.arg);
    return 0;
}
BATCH__PRIVATE bool batch__thread_create(batch__thread* t, batch__thread_fn fn, void* arg) {
    if (BATCH__FAIL_THREAD_CREATE()) return false;
    batch__win32_tramp* tr = (batch__win32_tramp*)malloc(sizeof *tr);
    if (!tr) return false;
    tr->fn = fn; tr->arg = arg;
    uintptr_t h = _beginthreadex(NULL, 0, batch__win32_start, tr, 0, NULL);
    if (!h) { free(tr); return false; }
    *t = (HANDLE)h;
    return true;
}
BATCH__PRIVATE void batch__thread_join(batch__thread t) {
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}
/* As below for the other backends, but SleepConditionVariableSRW takes a relative timeout in
   ms, so no wall clock is involved at all: the slice is measured on the monotonic clock and
   rounded up to a whole ms (rounding down would turn the last ms into a busy loop). */
BATCH__PRIVATE void batch__cond_wait_slice(batch__cond* c, batch__mutex* m, uint64_t deadline) {
    if (deadline == UINT64_MAX) { SleepConditionVariableSRW(c, m, INFINITE, 0); return; }
    uint64_t now = batch_now_ns();
    if (deadline <= now) return;
    uint64_t d = deadline - now;
    if (d > BATCH__WAIT_SLICE_NS) d = BATCH__WAIT_SLICE_NS;
    SleepConditionVariableSRW(c, m, (DWORD)((d + 999999u) / 1000000u), 0);   /* FALSE on timeout: callers re-check */
}

#else
/* ---- C11 <threads.h> ---------------------------------------------------------------------- */
typedef mtx_t batch__mutex;
typedef cnd_t batch__cond;
typedef thrd_t batch__thread;
BATCH__PRIVATE bool batch__mutex_init(batch__mutex* m) { return !BATCH__FAIL_SYNC_INIT() && mtx_init(m, mtx_plain) == thrd_success; }
BATCH__PRIVATE void batch__mutex_destroy(batch__mutex* m) { mtx_destroy(m); }
BATCH__PRIVATE void batch__mutex_lock(batch__mutex* m) { mtx_lock(m); }
BATCH__PRIVATE void batch__mutex_unlock(batch__mutex* m) { mtx_unlock(m); }
BATCH__PRIVATE bool batch__cond_init(batch__cond* c) { return !BATCH__FAIL_SYNC_INIT() && cnd_init(c) == thrd_success; }
BATCH__PRIVATE void batch__cond_destroy(batch__cond* c) { cnd_destroy(c); }
BATCH__PRIVATE void batch__cond_signal(batch__cond* c) { cnd_signal(c); }
BATCH__PRIVATE void batch__cond_broadcast(batch__cond* c) { cnd_broadcast(c); }
BATCH__PRIVATE void batch__yield(void) { thrd_yield(); }
BATCH__PRIVATE bool batch__thread_create(batch__thread* t, batch__thread_fn fn, void* arg) {
    if (BATCH__FAIL_THREAD_CREATE()) return false;
    return thrd_create(t, fn, arg) == thrd_success;
}
BATCH__PRIVATE void batch__thread_join(batch__thread t) { thrd_join(t, NULL); }
BATCH__PRIVATE void batch__cond_timedwait_wall(batch__cond* c, batch__mutex* m, const struct timespec* ts) {
    cnd_timedwait(c, m, ts);
}
BATCH__PRIVATE void batch__cond_wait_forever(batch__cond* c, batch__mutex* m) { cnd_wait(c, m); }
#endif

#if !defined(BATCH_NO_THREADS) && !defined(BATCH_USE_WIN32)
/* Waits on c (m held) until signalled, a spurious wake-up, or the monotonic `deadline` (UINT64_MAX:
   no deadline). One slice at most: callers loop and re-check their condition, which they must
   do anyway because of spurious wake-ups. */
BATCH__PRIVATE void batch__cond_wait_slice(batch__cond* c, batch__mutex* m, uint64_t deadline) {
    if (deadline == UINT64_MAX) { batch__cond_wait_forever(c, m); return; }
    uint64_t now = batch_now_ns();
    if (deadline <= now) return;
    uint64_t d = deadline - now;
    if (d > BATCH__WAIT_SLICE_NS) d = BATCH__WAIT_SLICE_NS;
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);   /* the condition variables take wall-clock deadlines */
    uint64_t ns = (uint64_t)ts.tv_nsec + d % 1000000000u;
    ts.tv_sec += (time_t)(d / 1000000000u + ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    batch__cond_timedwait_wall(c, m, &ts);
}
#endif

/* A spin lock for short critical sections on hot paths (the injection queues): a sleeping
   mutex turns every collision into two futex calls. Test-and-test-and-set; after a while of
   spinning it yields, so that a preempted holder (oversubscription) can run. */
typedef struct batch__spin { _Atomic int locked; } batch__spin;
BATCH__PRIVATE void batch__spin_init(batch__spin* l) { atomic_init(&l->locked, 0); }
BATCH__PRIVATE void batch__spin_lock(batch__spin* l) {
    /* acquire: the critical section sees what the previous holder wrote */
    while (atomic_exchange_explicit(&l->locked, 1, memory_order_acquire)) {
        int n = 0;
        while (atomic_load_explicit(&l->locked, memory_order_relaxed)) {
            if (++n < 64) batch__cpu_relax();
            else { batch__yield(); n = 0; }
        }
    }
}
BATCH__PRIVATE bool batch__spin_trylock(batch__spin* l) {
    return !atomic_load_explicit(&l->locked, memory_order_relaxed) &&
           !atomic_exchange_explicit(&l->locked, 1, memory_order_acquire);
}
BATCH__PRIVATE void batch__spin_unlock(batch__spin* l) {
    atomic_store_explicit(&l->locked, 0, memory_order_release);   /* publishes the section */
}

/* ---- 64-bit atomics without a lock-free instruction (BATCH_NO_THREADS on e.g. Cortex-M) -------
   The compiler turns such atomics into calls to __atomic_*_8, which libatomic implements on hosted
   systems; a bare-metal toolchain has none. These weak definitions make the library link: on an
   M-profile ARM they mask interrupts around each operation (so they stay atomic against interrupt
   handlers that use them too); elsewhere they are plain operations, atomic only with respect to a
   single thread of execution. A runtime of your own (an RTOS's) wins over them, being strong;
   BATCH_NO_ATOMIC64_RUNTIME leaves them out. */
#if defined(BATCH_NO_THREADS) && ATOMIC_LLONG_LOCK_FREE != 2 && !defined(BATCH_NO_ATOMIC64_RUNTIME) && \
    (defined(__GNUC__) || defined(__clang__))
#  if defined(__ARM_ARCH_PROFILE) && __ARM_ARCH_PROFILE == 'M'
#    define BATCH__A64_BEGIN() uint32_t batch__irq; \
         __asm__ __volatile__("mrs %0, primask\n\tcpsid i" : "=r"(batch__irq) :: "memory")
#    define BATCH__A64_END() __asm__ __volatile__("msr primask, %0" :: "r"(batch__irq) : "memory")
#  else
#    define BATCH__A64_BEGIN() __asm__ __volatile__("" ::: "memory")
#    define BATCH__A64_END() __asm__ __volatile__("" ::: "memory")
#  endif
typedef unsigned long long batch__u64;
#  define BATCH__A64_RMW(name, op) \
    __attribute__((weak)) batch__u64 name(volatile void* p, batch__u64 v, int mo); \
    __attribute__((weak)) batch__u64 name(volatile void* p, batch__u64 v, int mo) { \
        (void)mo; BATCH__A64_BEGIN(); \
        volatile batch__u64* q = (volatile batch__u64*)p; batch__u64 old = *q; *q = op; \
        BATCH__A64_END(); return old; }
BATCH__A64_RMW(__atomic_exchange_8, v)
BATCH__A64_RMW(__atomic_fetch_add_8, old + v)
BATCH__A64_RMW(__atomic_fetch_sub_8, old - v)
BATCH__A64_RMW(__atomic_fetch_and_8, old & v)
BATCH__A64_RMW(__atomic_fetch_or_8, old | v)
BATCH__A64_RMW(__atomic_fetch_xor_8, old ^ v)
__attribute__((weak)) batch__u64 __atomic_load_8(const volatile void* p, int mo);
__attribute__((weak)) batch__u64 __atomic_load_8(const volatile void* p, int mo) {
    (void)mo; BATCH__A64_BEGIN();
    batch__u64 v = *(const volatile batch__u64*)p;
    BATCH__A64_END(); return v;
}
__attribute__((weak)) void __atomic_store_8(volatile void* p, batch__u64 v, int mo);
__attribute__((weak)) void __atomic_store_8(volatile void* p, batch__u64 v, int mo) {
    (void)mo; BATCH__A64_BEGIN();
    *(volatile batch__u64*)p = v;
    BATCH__A64_END();
}
__attribute__((weak)) bool __atomic_compare_exchange_8(volatile void* p, void* expected, batch__u64 desired,
                                                       bool weak, int success, int failure);
__attribute__((weak)) bool __atomic_compare_exchange_8(volatile void* p, void* expected, batch__u64 desired,
                                                       bool weak, int success, int failure) {
    (void)weak; (void)success; (void)failure; BATCH__A64_BEGIN();
    volatile batch__u64* q = (volatile batch__u64*)p;
    batch__u64 cur = *q, want;
    memcpy(&want, expected, sizeof want);
    bool ok = cur == want;
    if (ok) *q = desired;
    else memcpy(expected, &cur, sizeof cur);
    BATCH__A64_END(); return ok;
}
#endif

/* Rounds p up to a cache line: over-aligned objects come from BATCH_MALLOC(size + line). */
BATCH__PRIVATE void* batch__align_up(void* p) {
    uintptr_t a = ((uintptr_t)p + BATCH__CACHE_LINE - 1) & ~(uintptr_t)(BATCH__CACHE_LINE - 1);
    return (void*)a;
}

/* Per-thread PRNG (xorshift64*), for victim selection and jitter. Never returns 0 state. */
BATCH__PRIVATE uint64_t batch__rand(uint64_t* s) {
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

#endif /* BATCH__PLATFORM_C */
/* ---- end batch_impl/platform.c ---- */
/* ---- begin batch_impl/deque.c ---- */
/* deque.c - the per-worker work-stealing deque: Chase & Lev (2005) in C11 atomics after Le, Pop,
   Cohen & Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak Memory Models" (2013),
   with the fixes their model checking found:
   - signed 64-bit indices: bottom - 1 on an empty deque must not wrap;
   - a thief loads the ring after bottom, with acquire, so it never reads a stale ring that push
     has already replaced;
   - a thief reads the item before its CAS on top and uses it only if the CAS succeeds;
   - replaced rings are freed only when the deque is destroyed (quiescence), never while a thief
     may still be reading one.
   The owner pushes and pops at the bottom (LIFO); thieves steal at the top (FIFO).
   The items are opaque pointers; a NULL item is never stored. */
#ifndef BATCH__DEQUE_C
#define BATCH__DEQUE_C
#ifndef BATCH_SINGLE_FILE
#  include "platform.c"
#endif

typedef struct batch__ring {
    int64_t mask;                   /* capacity - 1; capacity is a power of two */
    struct batch__ring* retired;    /* older rings, kept until the deque is destroyed */
    _Atomic(void*) slot[];
} batch__ring;

typedef struct batch__deque {
    BATCH__ALIGNED _Atomic int64_t top;     /* next item to steal; only ever incremented (CAS) */
    BATCH__ALIGNED _Atomic int64_t bottom;  /* next free slot; written by the owner only */
    _Atomic(batch__ring*) ring;
    int64_t top_seen;                       /* owner only: a top it read (top only grows) */
    void* alloc_ctx;
} batch__deque;

typedef enum { BATCH__STEAL_EMPTY, BATCH__STEAL_LOST, BATCH__STEAL_OK } batch__steal_result;

BATCH__PRIVATE batch__ring* batch__ring_new(int64_t cap, void* alloc_ctx) {
    batch__ring* r = (batch__ring*)BATCH_MALLOC(sizeof(batch__ring) + (size_t)cap * sizeof(_Atomic(void*)), alloc_ctx);
    if (!r) return NULL;
    r->mask = cap - 1;
    r->retired = NULL;
    /* every slot holds a value: after a grow, a thief that read an old top may load a slot the
       copy skipped, before its CAS fails (found by make relacy); C11 reads no indeterminate atomic */
    for (int64_t i = 0; i < cap; i++) atomic_init(&r->slot[i], NULL);
    return r;
}

/* capacity: a power of two >= 2. Returns false when out of memory. */
BATCH__PRIVATE bool batch__deque_init(batch__deque* d, int64_t capacity, void* alloc_ctx) {
    batch__ring* r = batch__ring_new(capacity, alloc_ctx);
    if (!r) return false;
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    atomic_init(&d->ring, r);
    d->top_seen = 0;
    d->alloc_ctx = alloc_ctx;
    return true;
}

/* Only at quiescence: no owner or thief may be using the deque. */
BATCH__PRIVATE void batch__deque_destroy(batch__deque* d) {
    batch__ring* r = atomic_load_explicit(&d->ring, memory_order_relaxed);
    while (r) { batch__ring* next = r->retired; BATCH_FREE(r, d->alloc_ctx); r = next; }
    atomic_store_explicit(&d->ring, NULL, memory_order_relaxed);
}

/* Owner only. Doubles the ring, copying the live items [t, b). */
BATCH__PRIVATE batch__ring* batch__deque_grow(batch__deque* d, batch__ring* old, int64_t t, int64_t b) {
    if (old->mask + 1 >= ((int64_t)1 << 40)) return NULL;
    batch__ring* r = batch__ring_new((old->mask + 1) * 2, d->alloc_ctx);
    if (!r) return NULL;
    for (int64_t i = t; i < b; i++) {
        /* relaxed: these slots were written by this (owner) thread */
        void* x = atomic_load_explicit(&old->slot[i & old->mask], memory_order_relaxed);
        atomic_store_explicit(&r->slot[i & r->mask], x, memory_order_relaxed);
    }
    r->retired = old;
    /* release: a thief that acquires the new ring sees its copied slots */
    atomic_store_explicit(&d->ring, r, memory_order_release);
    return r;
}

/* Owner only. Returns false (item not pushed) when the ring is full and cannot grow. */
BATCH__PRIVATE bool batch__deque_push(batch__deque* d, void* x) {
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);  /* own variable */
    batch__ring* r = atomic_load_explicit(&d->ring, memory_order_relaxed);  /* own variable */
    /* top is read only when the ring looks full by an older top: top only grows, so the older
       value errs on the full side, and the owner's pushes stop pulling the line thieves CAS */
    if (b - d->top_seen > r->mask) {
        /* acquire: pairs with a thief's successful CAS on top, so the slot it read is free to reuse */
        int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
        d->top_seen = t;
        if (b - t > r->mask) {
            r = batch__deque_grow(d, r, t, b);
            if (!r) return false;
        }
    }
    atomic_store_explicit(&r->slot[b & r->mask], x, memory_order_relaxed);
    /* release: publishes the slot, and the item it points to, to thieves that acquire bottom */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    return true;
}

/* Owner only. NULL when empty (or when a thief won the last item). */
BATCH__PRIVATE void* batch__deque_pop(batch__deque* d) {
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
    batch__ring* r = atomic_load_explicit(&d->ring, memory_order_relaxed);
    /* relaxed store, then a seq_cst fence: our claim on slot b must be visible before we read
       top, and a thief's fence orders its top read before its bottom read (Dekker). Neither
       fence publishes data, so ThreadSanitizer's blindness to fences cannot hide a race here. */
    atomic_store_explicit(&d->bottom, b, memory_order_relaxed);
    BATCH__FENCE_SEQ_CST();
    int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
    void* x = NULL;
    if (t <= b) {
        x = atomic_load_explicit(&r->slot[b & r->mask], memory_order_relaxed);
        if (t == b) {
            /* the last item: race the thieves for it on top */
            if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                         memory_order_relaxed))
                x = NULL;
            /* release (not relaxed): keeps the release sequence of bottom intact for tools
               that model only the C++20 rules; free on x86 and cheap elsewhere */
            atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
        }
    } else {
        atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    }
    return x;
}

/* Any thread. OK with *out set, EMPTY, or LOST (a race with another thief or the owner: retry). */
BATCH__PRIVATE batch__steal_result batch__deque_steal(batch__deque* d, void** out) {
    /* acquire: a thief that sees top advanced also sees the slot reads that preceded the CAS */
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    BATCH__FENCE_SEQ_CST();  /* top read before bottom read: see pop */
    /* acquire: pairs with push's release store of bottom: the slot and the item are visible */
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_acquire);
    if (t >= b) return BATCH__STEAL_EMPTY;
    /* acquire: a ring installed by grow before the push we saw is seen with its contents */
    batch__ring* r = atomic_load_explicit(&d->ring, memory_order_acquire);
    void* x = atomic_load_explicit(&r->slot[t & r->mask], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return BATCH__STEAL_LOST;
    *out = x;
    return BATCH__STEAL_OK;
}

/* A racy size estimate, for heuristics only. */
BATCH__PRIVATE int64_t batch__deque_size(batch__deque* d) {
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
    return b > t ? b - t : 0;
}

#endif /* BATCH__DEQUE_C */
/* ---- end batch_impl/deque.c ---- */
/* ---- begin batch_impl/pool.c ---- */
/* pool.c - workers, injection queues per priority, sleep/wake without lost wake-ups (an
   eventcount), a delayed queue, counters with help-while-waiting, parallel-for, shutdown.
   Nothing here knows about graphs or maps: both are built from pool tasks and counters.

   Quiescence. Each worker counts the tasks it submitted and the tasks it executed in its own
   cache line (single writer); submissions from other threads and inline executions are counted
   with atomic adds. The pool is idle when sum(executed), read first, equals sum(submitted), read after:
   the counters only grow, and a task is counted as submitted before it can run and as executed
   only after everything it submitted was counted, so equality means nothing was in flight.
   No shared counter is touched per task. */
#ifndef BATCH__POOL_C
#define BATCH__POOL_C
#ifndef BATCH_SINGLE_FILE
#  include "deque.c"
#endif

#define BATCH__LEVELS 5                 /* CRITICAL .. BACKGROUND */
#define BATCH__LEVEL_NORMAL 2
#define BATCH__HIGH_LEVELS_MASK 3u      /* CRITICAL | HIGH: looked at before the own deque */
#define BATCH__MAG 128                  /* tasks per free-list chunk moved between threads */
#define BATCH__INJECT_GRAB_MAX 64       /* most tasks a worker moves from injection to its deque */
#define BATCH__ALLOC_AHEAD 4            /* free tasks prefetched ahead of their allocation */
#define BATCH__RING_HOLD_NS 8000u       /* see batch__find_work */
#define BATCH__PAY_AFTER_NS 3000u       /* see batch__find_work_spin */
#define BATCH__EC_WAITER_BITS 16
#define BATCH__EC_WAITER_MASK ((1ull << BATCH__EC_WAITER_BITS) - 1)
#define BATCH__EC_EPOCH_ONE (1ull << BATCH__EC_WAITER_BITS)
/* batch_counter state: count << 2 | WORKER_WAITING | THREAD_WAITING */
#define BATCH__CNT_THREAD_WAITING 1ull
#define BATCH__CNT_WORKER_WAITING 2ull
#define BATCH__CNT_ONE 4ull

/* A pool task: one cache line, from per-worker free lists. */
typedef struct batch__task {
    batch_work_fn fn;
    void* user;
    batch_counter* counter;
    struct batch__task* next;        /* links tasks put back, and an inline pool's stack */
    _Atomic(struct batch__task*) qnext;  /* injection queue link (multi-producer) */
    uint64_t due;                    /* delayed tasks: monotonic ns; with has_arg: the argument */
    uint8_t level;
    bool has_arg;                    /* an internal task fn(p, user, due) (batch__submit_arg) */
} batch__task;
/* The internal tasks that carry a 64-bit argument; stored in batch__task.fn cast through
   void (*)(void) and called through their own type again (batch__call). */
typedef void (*batch__arg_fn)(batch_pool* p, void* user, uint64_t arg);
typedef union batch__task_slot { batch__task t; BATCH__ALIGNED char pad[BATCH__CACHE_LINE]; } batch__task_slot;
_Static_assert(sizeof(batch__task_slot) == BATCH__CACHE_LINE, "a pool task is one cache line");

/* Free tasks move between threads in magazines: arrays of BATCH__MAG task pointers, so that a
   thread refilling its cache reads pointers, not a linked list whose every link is a cache miss
   on a line another core wrote last. Each slab of BATCH__MAG tasks brings one magazine, so one
   is always free when a cache overflows: a full magazine holds BATCH__MAG tasks no cache holds,
   and an overflowing cache holds 2 * BATCH__MAG. */
typedef struct batch__mag { struct batch__mag* next; batch__task* t[BATCH__MAG]; } batch__mag;
typedef struct batch__slab { struct batch__slab* next; void* raw; batch__mag mag; } batch__slab;
/* A thread's free tasks: a stack, most recently freed (cache-hot) on top. */
typedef struct batch__task_cache { int n; batch__task* t[2 * BATCH__MAG]; } batch__task_cache;

/* One injection queue: Vyukov's intrusive multi-producer single-consumer queue. Producers
   exchange the tail and then link the previous tail to their node; the (locked) consumer walks
   from head. A stub node keeps the queue non-empty. */
typedef struct batch__inj_queue {
    BATCH__ALIGNED _Atomic(batch__task*) tail;
    BATCH__ALIGNED batch__task* head;
    batch__task_slot stub;
} batch__inj_queue;

typedef struct batch__worker {
    batch__deque dq;
    BATCH__ALIGNED batch_pool* pool;
    int index;
    uint64_t rng;
    batch__task_cache cache;
    batch_counter* owed_counter;    /* see batch__worker_pay */
    uint64_t owed;
    uint64_t seq;                   /* tasks this worker began executing */
    uint64_t ring_hold;             /* until then (ns) searches skip a short outsiders' ring (batch__find_work) */
    uint64_t clock_ns, clock_seq;   /* see batch__clock_take */
    /* single writer (this worker), read by stats and quiescence checks */
    BATCH__AL8 _Atomic uint64_t submitted, executed, steals, sleeps;
    batch__thread thread;
} batch__worker;

/* The padding is the point: hot fields written by different threads sit on separate lines. */
/* NOLINTNEXTLINE(clang-analyzer-optin.performance.Padding) */
struct batch_pool {
    void* alloc_ctx;
    void* raw_self;                      /* what BATCH_MALLOC returned (the pool is over-aligned) */
    void* raw_workers;
    batch__worker* workers;
    int nworkers;
    uint64_t spin_ns;                    /* idle search before sleeping (batch__spin_more) */
    uint64_t relax_ns;                   /* the first part of it, with pause instead of yield */
    bool inline_mode;
    bool tsc;                            /* graph task times in TSC ticks (platform.c, task clock) */
    bool prefetchw;                      /* batch__has_prefetchw */
    batch__clockpair origin;             /* both clocks at creation, for batch__timebase_make */

    /* injection queues: producers push without a lock; consumers pop under inj_lock */
    batch__inj_queue inj[BATCH__LEVELS];
    BATCH__ALIGNED _Atomic unsigned inj_mask;  /* bit l: level l may be non-empty */
    BATCH__ALIGNED batch__spin inj_lock;
    batch__task* front[BATCH__LEVELS];   /* under inj_lock: tasks put back, taken first */
    batch__task* inline_stack;           /* under inj_lock; inline pools: NORMAL tasks that tasks submit (LIFO) */
    _Atomic int inline_ready;            /* inline_stack is not empty (a hint read without the lock) */
    /* the free-task cache of threads that are not workers */
    BATCH__ALIGNED batch__spin ext_lock;
    batch__task_cache ext_free;
    /* the outsiders' queue (batch__ring_push): written under ext_lock, read under inj_lock */
    _Atomic(batch__task**) ring;
    size_t ring_cap;                     /* changed under both locks */
    BATCH__AL8 _Atomic size_t ring_tail; /* producers' side */
    size_t ring_head_seen;               /* producers' side: a recent ring_head */
    BATCH__AL8 _Atomic uint64_t ring_submitted;  /* producers' side: tasks pushed (quiescence) */
    BATCH__ALIGNED _Atomic size_t ring_head;   /* consumers' side */
    BATCH__ALIGNED _Atomic uint64_t ext_submitted;   /* submissions by threads that are not workers */
    BATCH__AL8 _Atomic uint64_t ext_executed;       /* tasks run by inline runners */

    /* magazines of free tasks, empty magazines, and the slabs both come from */
    BATCH__ALIGNED batch__mutex spare_lock;
    batch__mag* spare;
    batch__mag* empty_mags;
    batch__slab* slabs;

    /* eventcount: waiters in the low bits, epoch above */
    BATCH__ALIGNED _Atomic uint64_t ec_state;
    batch__mutex ec_lock;
    batch__cond ec_cond;

    /* delayed tasks: a binary min-heap on due */
    BATCH__ALIGNED batch__mutex delay_lock;
    batch__task** heap;
    size_t heap_len, heap_cap;
    BATCH__AL8 _Atomic uint64_t delay_next;         /* earliest due, UINT64_MAX when empty */

    /* waiting threads and the life cycle */
    BATCH__ALIGNED batch__mutex done_lock;
    batch__cond done_cond;
    batch__mutex life_lock;
    _Atomic int shutdown;                /* non-workers may no longer submit; delays are ignored */
    _Atomic int stop;                    /* workers exit */
    _Atomic int ext_active;              /* non-workers inside batch_pool_submit */
    _Atomic int idle_waiters;            /* threads waiting for quiescence */
    _Atomic int wakers;                  /* non-workers between a counter decrement and its wake-up */
    bool joined;
};

static BATCH__THREAD_LOCAL batch__worker* batch__tls_worker;   /* the worker this thread is */
static BATCH__THREAD_LOCAL batch_pool* batch__tls_inline;      /* inline pool this thread runs */

BATCH__PRIVATE bool batch__ring_ready(batch_pool* p);
BATCH__PRIVATE batch__worker* batch__self(const batch_pool* p) {
    batch__worker* w = batch__tls_worker;
    return (w && w->pool == p) ? w : NULL;
}

/* A clock read handed from the end of one task to the start of the next on the same worker, so
   that back-to-back tasks cost one read: valid only for the very next task this worker
   executes (seq) and only if that came out of the worker's own deque at once. A search, a
   sleep, urgent injected work, or tasks run nested inside the task that handed it (a wait
   that helped) clear it. 0: read the clock. Worker-private, no atomics. */
BATCH__PRIVATE uint64_t batch__clock_take(batch__worker* w) {
    if (!w) return 0;
    uint64_t ns = w->clock_seq == w->seq ? w->clock_ns : 0;
    w->clock_ns = 0;
    return ns;
}
BATCH__PRIVATE void batch__clock_put(batch__worker* w, uint64_t ns) {
    if (!w) return;
    w->clock_ns = ns;
    w->clock_seq = w->seq + 1;
}

/* ---- the pool's interface for the job layer ---------------------------------------------------
   What graph.c, map.c and mpi.c may use of the pool beyond its public API: these functions and
   the task clock hand-off above (batch__clock_take/put), the worker lookup (batch__self), the
   internal submissions (batch__submit_bulk, batch__submit_arg, batch__push_own) and counters.
   Nothing above the pool reads its fields. */
BATCH__PRIVATE void* batch__pool_alloc_ctx(const batch_pool* p) { return p ? p->alloc_ctx : NULL; }
BATCH__PRIVATE bool batch__pool_shutting_down(batch_pool* p) { return atomic_load(&p->shutdown) != 0; }
/* A new job launched from this thread would be refused: the pool shuts down and this thread is
   neither one of its workers nor running it inline (those finish what they started). */
BATCH__PRIVATE bool batch__pool_refuses_jobs(batch_pool* p) {
    return !batch__self(p) && batch__tls_inline != p && batch__pool_shutting_down(p);
}
/* Whether tasks of the priority levels in mask (bit l: level l) wait in the injection queues. */
BATCH__PRIVATE bool batch__pool_queued(batch_pool* p, unsigned mask) {
    /* a hint; the ring only when NORMAL is asked about (a graph's run loop asks for the urgent
       levels between two tasks) */
    if (atomic_load_explicit(&p->inj_mask, memory_order_relaxed) & mask) return true;
    return (mask & (1u << BATCH__LEVEL_NORMAL)) && batch__ring_ready(p);
}
/* The task clock of the pool: TSC ticks or ns (platform.c), and its (tick, ns) pair from creation. */
BATCH__PRIVATE bool batch__pool_tsc(const batch_pool* p) { return p->tsc; }
BATCH__PRIVATE batch__clockpair batch__pool_origin(const batch_pool* p) { return p->origin; }
/* The tasks a worker began executing (grows when it runs nested tasks), and whether its own
   deque is empty now (owner only). */
BATCH__PRIVATE uint64_t batch__worker_seq(const batch__worker* w) { return w->seq; }
BATCH__PRIVATE bool batch__worker_deque_empty(batch__worker* w) { return batch__deque_size(&w->dq) <= 0; }

/* Owner-only increment of a counter that others read. */
BATCH__PRIVATE void batch__bump(_Atomic uint64_t* c) {
    /* release: quiescence checks acquire these counts (see the file comment) */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_release);
}

/* ---- free tasks ------------------------------------------------------------------------ */

/* Fills an empty cache with BATCH__MAG tasks: a spare magazine, or a new slab. false: out of
   memory. */
BATCH__PRIVATE bool batch__refill(batch_pool* p, batch__task_cache* c) {
    bool ok = true;
    batch__mutex_lock(&p->spare_lock);
    batch__mag* m = p->spare;
    if (m) {
        p->spare = m->next;
        memcpy(c->t, m->t, sizeof m->t);
        m->next = p->empty_mags;
        p->empty_mags = m;
    } else {
        size_t sz = sizeof(batch__slab) + BATCH__CACHE_LINE + BATCH__MAG * sizeof(batch__task_slot);
        void* raw = BATCH_MALLOC(sz, p->alloc_ctx);
        if (raw) {
            batch__slab* s = (batch__slab*)raw;
            s->raw = raw;
            s->next = p->slabs;
            p->slabs = s;
            s->mag.next = p->empty_mags;
            p->empty_mags = &s->mag;
            batch__task_slot* slots = (batch__task_slot*)batch__align_up(s + 1);
            for (int i = 0; i < BATCH__MAG; i++) c->t[i] = &slots[i].t;
        }
        ok = raw != NULL;
    }
    batch__mutex_unlock(&p->spare_lock);
    if (ok) c->n = BATCH__MAG;
    return ok;
}

/* w == NULL: the non-worker cache, which the caller must guard with ext_lock. */
BATCH__PRIVATE batch__task* batch__task_alloc(batch_pool* p, batch__worker* w) {
    batch__task_cache* c = w ? &w->cache : &p->ext_free;
    if (!c->n && !batch__refill(p, c)) return NULL;
    batch__task* t = c->t[--c->n];
    /* the line of a task allocated a few calls from now: another core may hold it (it ran
       there), and fetching it now keeps the fence of a later submit from waiting for it */
    if (c->n >= BATCH__ALLOC_AHEAD) batch__prefetch_write(c->t[c->n - BATCH__ALLOC_AHEAD], p->prefetchw);
    t->has_arg = false;
    return t;
}

BATCH__PRIVATE void batch__task_free(batch_pool* p, batch__worker* w, batch__task* t) {
    batch__task_cache* c = w ? &w->cache : &p->ext_free;
    if (c->n == 2 * BATCH__MAG) {
        /* the coldest half goes back, so that a producer/consumer pair does not grow memory
           forever; a free magazine exists (see batch__mag) */
        batch__mutex_lock(&p->spare_lock);
        batch__mag* m = p->empty_mags;
        if (!m) {   /* cannot happen; were it to, t would only not be reused (its slab frees it) */
            batch__mutex_unlock(&p->spare_lock);
            return;
        }
        p->empty_mags = m->next;
        memcpy(m->t, c->t, sizeof m->t);
        m->next = p->spare;
        p->spare = m;
        batch__mutex_unlock(&p->spare_lock);
        memmove(c->t, c->t + BATCH__MAG, BATCH__MAG * sizeof(batch__task*));
        c->n = BATCH__MAG;
    }
    c->t[c->n++] = t;
}

/* ---- eventcount: sleep without lost wake-ups --------------------------------------------- */
/* A sleeper announces itself (prepare), re-checks for work, then sleeps only if no notify
   happened since it announced. A notifier publishes work, then looks for announced sleepers.
   The seq_cst RMW + fence on the sleeper side and the fence on the notifier side make this a
   Dekker pair: either the sleeper's re-check sees the work, or the notifier sees the sleeper. */
BATCH__PRIVATE uint64_t batch__ec_prepare(batch_pool* p) {
    uint64_t s = atomic_fetch_add_explicit(&p->ec_state, 1, memory_order_seq_cst);
    BATCH__FENCE_SEQ_CST();
    return s >> BATCH__EC_WAITER_BITS;
}

BATCH__PRIVATE void batch__ec_cancel(batch_pool* p) {
    /* relaxed: the waiter count only tells notifiers whether to take the lock */
    atomic_fetch_sub_explicit(&p->ec_state, 1, memory_order_relaxed);
}

BATCH__PRIVATE void batch__ec_commit(batch_pool* p, uint64_t key, uint64_t deadline) {
    batch__mutex_lock(&p->ec_lock);
    while ((atomic_load_explicit(&p->ec_state, memory_order_relaxed) >> BATCH__EC_WAITER_BITS) ==
           (key & (UINT64_MAX >> BATCH__EC_WAITER_BITS))) {
        if (deadline != UINT64_MAX && batch_now_ns() >= deadline) break;
        batch__cond_wait_slice(&p->ec_cond, &p->ec_lock, deadline);
    }
    batch__mutex_unlock(&p->ec_lock);
    atomic_fetch_sub_explicit(&p->ec_state, 1, memory_order_relaxed);
}

/* The notifier's side after its fence (batch__ec_notify, or a caller that fenced already). */
BATCH__PRIVATE void batch__ec_notify_fenced(batch_pool* p, bool all) {
    uint64_t s = atomic_load_explicit(&p->ec_state, memory_order_relaxed);
    if ((s & BATCH__EC_WAITER_MASK) == 0) return;
    batch__mutex_lock(&p->ec_lock);
    /* relaxed: ordered by ec_lock, which every sleeper holds while it compares epochs */
    atomic_fetch_add_explicit(&p->ec_state, BATCH__EC_EPOCH_ONE, memory_order_relaxed);
    if (all) batch__cond_broadcast(&p->ec_cond);
    else batch__cond_signal(&p->ec_cond);
    batch__mutex_unlock(&p->ec_lock);
}
BATCH__PRIVATE void batch__ec_notify(batch_pool* p, bool all) {
    BATCH__FENCE_SEQ_CST();   /* publish the work before reading waiters */
    batch__ec_notify_fenced(p, all);
}

/* ---- injection queues -------------------------------------------------------------------- */
BATCH__PRIVATE void batch__inj_init(batch__inj_queue* q) {
    atomic_init(&q->stub.t.qnext, NULL);
    atomic_init(&q->tail, &q->stub.t);
    q->head = &q->stub.t;
}

/* Any thread, no lock. */
BATCH__PRIVATE void batch__inj_push(batch_pool* p, batch__task* t) {
    int l = t->level;
    batch__inj_queue* q = &p->inj[l];
    atomic_store_explicit(&t->qnext, NULL, memory_order_relaxed);
    /* seq_cst: a Dekker pair with the consumer that clears the mask bit and then re-reads the
       tail (batch__inj_pop_level); acq_rel would not order this exchange before the mask load */
    batch__task* prev = atomic_exchange_explicit(&q->tail, t, memory_order_seq_cst);
    /* release: the consumer that acquires this link sees the task's fields */
    atomic_store_explicit(&prev->qnext, t, memory_order_release);
    if (!(atomic_load_explicit(&p->inj_mask, memory_order_seq_cst) & (1u << l)))
        atomic_fetch_or_explicit(&p->inj_mask, 1u << l, memory_order_seq_cst);
}

/* inj_lock held. NULL when the queue is empty or a push is half-way (its producer notifies
   after it completes, so nothing is lost). */
BATCH__PRIVATE batch__task* batch__inj_mpsc_pop(batch__inj_queue* q) {
    batch__task* stub = &q->stub.t;
    batch__task* head = q->head;
    batch__task* next = atomic_load_explicit(&head->qnext, memory_order_acquire);
    if (head == stub) {
        if (!next) return NULL;
        q->head = head = next;
        next = atomic_load_explicit(&head->qnext, memory_order_acquire);
    }
    if (next) { q->head = next; return head; }
    if (atomic_load_explicit(&q->tail, memory_order_acquire) != head) return NULL;
    /* head is the last node: queue the stub behind it, so that head can leave */
    atomic_store_explicit(&stub->qnext, NULL, memory_order_relaxed);
    batch__task* prev = atomic_exchange_explicit(&q->tail, stub, memory_order_acq_rel);
    atomic_store_explicit(&prev->qnext, stub, memory_order_release);
    next = atomic_load_explicit(&head->qnext, memory_order_acquire);
    if (next) { q->head = next; return head; }
    return NULL;
}

BATCH__PRIVATE bool batch__inj_empty(batch__inj_queue* q) {
    return q->head == &q->stub.t && atomic_load_explicit(&q->tail, memory_order_seq_cst) == &q->stub.t;
}

/* ---- the outsiders' queue ------------------------------------------------------------------
   NORMAL tasks that threads other than workers submit without a delay - a program feeding its
   pool - go to a growable ring of task pointers. Producers are serialized by ext_lock (which
   they take anyway for a free task) and consumers by inj_lock, so the ring is single-producer
   single-consumer between the two locks and neither side waits for the other; only growth
   takes both. A worker moves up to BATCH__INJECT_GRAB_MAX tasks per lock round trip and
   prefetches them: the linked injection queue would make it chase one cache miss per task.
   FIFO, like the linked queues. It has no bit in inj_mask: a consumer sees work in it by
   comparing its two ends (batch__inj_pending), so a producer touches no line a consumer writes
   on every task, and a consumer that drained it clears nothing the producer must set again. */

/* ext_lock held; takes inj_lock. false: out of memory, nothing changed. */
BATCH__PRIVATE bool batch__ring_grow(batch_pool* p) {
    size_t ncap = p->ring_cap ? p->ring_cap * 2 : 256;
    if (ncap < p->ring_cap || batch__exceeds(ncap, SIZE_MAX / sizeof(batch__task*))) return false;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): the ring holds task pointers */
    batch__task** nr = (batch__task**)BATCH_MALLOC(ncap * sizeof *nr, p->alloc_ctx);
    if (!nr) return false;
    batch__spin_lock(&p->inj_lock);
    batch__task** old = atomic_load_explicit(&p->ring, memory_order_relaxed);
    size_t head = atomic_load_explicit(&p->ring_head, memory_order_relaxed);
    size_t count = atomic_load_explicit(&p->ring_tail, memory_order_relaxed) - head;
    for (size_t i = 0; i < count; i++) nr[i] = old[(head + i) & (p->ring_cap - 1)];
    atomic_store_explicit(&p->ring, nr, memory_order_relaxed);   /* both locks are held */
    p->ring_cap = ncap;
    atomic_store_explicit(&p->ring_head, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ring_tail, count, memory_order_relaxed);
    p->ring_head_seen = 0;
    batch__spin_unlock(&p->inj_lock);
    if (old) BATCH_FREE(old, p->alloc_ctx);
    return true;
}

/* ext_lock held. Queues t (published by the release store of ring_tail). false: the ring could
   not grow, nothing changed. */
BATCH__PRIVATE bool batch__ring_push(batch_pool* p, batch__task* t) {
    size_t tail = atomic_load_explicit(&p->ring_tail, memory_order_relaxed);
    if (tail - p->ring_head_seen == p->ring_cap) {
        /* acquire: the consumer read those slots before it moved ring_head past them */
        p->ring_head_seen = atomic_load_explicit(&p->ring_head, memory_order_acquire);
        if (tail - p->ring_head_seen == p->ring_cap) {
            if (!batch__ring_grow(p)) return false;
            tail = atomic_load_explicit(&p->ring_tail, memory_order_relaxed);
        }
    }
    atomic_load_explicit(&p->ring, memory_order_relaxed)[tail & (p->ring_cap - 1)] = t;
    /* release: a consumer that acquires the new tail sees the slot and the task's fields */
    atomic_store_explicit(&p->ring_tail, tail + 1, memory_order_release);
    return true;
}

/* inj_lock held. Takes up to max tasks, oldest first, into out; returns how many. */
BATCH__PRIVATE int batch__ring_take(batch_pool* p, batch__task** out, int max) {
    size_t head = atomic_load_explicit(&p->ring_head, memory_order_relaxed);
    /* acquire: pairs with the release store of ring_tail (batch__ring_push), which published
       the slots and the tasks' fields */
    size_t count = atomic_load_explicit(&p->ring_tail, memory_order_acquire) - head;
    if (!count) return 0;
    int n = count < (size_t)max ? (int)count : max;
    batch__task** ring = atomic_load_explicit(&p->ring, memory_order_relaxed);
    for (int i = 0; i < n; i++) out[i] = ring[(head + (size_t)i) & (p->ring_cap - 1)];
    /* release: the producer may reuse the slots once it sees this */
    atomic_store_explicit(&p->ring_head, head + (size_t)n, memory_order_release);
    return n;
}

/* Any thread: whether the ring holds tasks (a hint, exact under inj_lock). */
BATCH__PRIVATE bool batch__ring_ready(batch_pool* p) {
    /* seq_cst: a sleeper's re-check after its fence (batch__ec_prepare) must see a tail that the
       producer published before the fence of its notify (batch__after_inject) */
    return atomic_load_explicit(&p->ring_tail, memory_order_seq_cst) != atomic_load_explicit(&p->ring_head, memory_order_relaxed);
}

/* The levels that may have injected work: inj_mask, and NORMAL while the ring holds tasks. */
BATCH__PRIVATE unsigned batch__inj_pending(batch_pool* p) {
    unsigned m = atomic_load_explicit(&p->inj_mask, memory_order_relaxed);
    return batch__ring_ready(p) ? m | (1u << BATCH__LEVEL_NORMAL) : m;
}

/* ---- taking injected work ------------------------------------------------------------------ */
/* inj_lock held. One task of level l, or NULL; clears the level's mask bit when it is empty. */
BATCH__PRIVATE batch__task* batch__inj_pop_level(batch_pool* p, int l) {
    batch__task* t = p->front[l];
    if (t) { p->front[l] = t->next; return t; }
    if (l == BATCH__LEVEL_NORMAL && batch__ring_take(p, &t, 1)) return t;
    batch__inj_queue* q = &p->inj[l];
    if ((t = batch__inj_mpsc_pop(q))) return t;
    if (batch__inj_empty(q)) {
        atomic_fetch_and_explicit(&p->inj_mask, ~(1u << l), memory_order_seq_cst);
        /* a push may have slipped in before the bit was cleared: see batch__inj_push */
        if (!batch__inj_empty(q)) atomic_fetch_or_explicit(&p->inj_mask, 1u << l, memory_order_seq_cst);
    }
    return NULL;
}

/* inj_lock held. The oldest task of the highest non-empty level in `levels`. */
BATCH__PRIVATE batch__task* batch__inj_pop(batch_pool* p, unsigned levels) {
    unsigned mask = batch__inj_pending(p) & levels;
    for (int l = 0; l < BATCH__LEVELS; l++) {
        if (!(levels & (1u << l)) || (!(mask & (1u << l)) && !p->front[l])) continue;
        batch__task* t = batch__inj_pop_level(p, l);
        if (t) return t;
    }
    return NULL;
}

/* A worker takes the oldest task of the highest level; from NORMAL and below it also moves up
   to BATCH__INJECT_GRAB_MAX more of that level into its own deque, where other workers can
   steal them: one lock round trip serves many tasks when submissions come in bursts. They are
   pushed newest first, so that the owner, popping LIFO, still runs them oldest first. */
BATCH__PRIVATE batch__task* batch__inj_take(batch_pool* p, batch__worker* w, unsigned levels) {
    batch__task* grab[BATCH__INJECT_GRAB_MAX];
    int n = 0, moved = 0;
    batch__spin_lock(&p->inj_lock);
    batch__task* t = batch__inj_pop(p, levels);
    if (t && t->level >= BATCH__LEVEL_NORMAL) {
        int l = t->level;
        if (l == BATCH__LEVEL_NORMAL && !p->front[l]) {
            n = batch__ring_take(p, grab, BATCH__INJECT_GRAB_MAX);
            if (n < BATCH__INJECT_GRAB_MAX) w->ring_hold = batch_now_ns() + BATCH__RING_HOLD_NS;
        }
        while (n < BATCH__INJECT_GRAB_MAX && (grab[n] = batch__inj_pop_level(p, l))) n++;
        for (int k = 0; k < n; k++) BATCH__PREFETCH(grab[k]);   /* fetched in parallel, run soon */
        int i = n - 1;
        for (; i >= 0; i--)
            if (!batch__deque_push(&w->dq, grab[i])) break;
        moved = n - 1 - i;
        /* a deque that cannot grow: the rest goes back to the front, in order */
        for (; i >= 0; i--) { grab[i]->next = p->front[l]; p->front[l] = grab[i]; }
        if (p->front[l]) atomic_fetch_or_explicit(&p->inj_mask, 1u << l, memory_order_seq_cst);
    }
    batch__spin_unlock(&p->inj_lock);
    if (moved) batch__ec_notify(p, false);
    return t;
}

/* ---- delayed queue --------------------------------------------------------------------- */
BATCH__PRIVATE void batch__heap_up(batch__task** h, size_t i) {
    batch__task* x = h[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h[parent]->due <= x->due) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = x;
}

BATCH__PRIVATE batch__task* batch__heap_pop(batch__task** h, size_t* len) {
    batch__task* top = h[0];
    batch__task* x = h[--*len];
    size_t i = 0, n = *len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1]->due < h[c]->due) c++;
        if (x->due <= h[c]->due) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = x;
    return top;
}

/* Moves every delayed task due at `now` (all of them when now == UINT64_MAX) to the injection
   queues. Returns how many moved. */
BATCH__PRIVATE int batch__release_due(batch_pool* p, uint64_t now) {
    batch__task* list = NULL;
    int n = 0;
    batch__mutex_lock(&p->delay_lock);
    while (p->heap_len && p->heap[0]->due <= now) {
        batch__task* t = batch__heap_pop(p->heap, &p->heap_len);
        t->next = list;
        list = t;
        n++;
    }
    /* relaxed: a hint; the heap itself is read under delay_lock */
    atomic_store_explicit(&p->delay_next, p->heap_len ? p->heap[0]->due : UINT64_MAX, memory_order_relaxed);
    batch__mutex_unlock(&p->delay_lock);
    if (!n) return 0;
    while (list) { batch__task* t = list; list = t->next; batch__inj_push(p, t); }
    batch__ec_notify(p, n > 1);
    /* an inline runner or a quiescence waiter may sleep on done_cond */
    batch__mutex_lock(&p->done_lock);
    batch__cond_broadcast(&p->done_cond);
    batch__mutex_unlock(&p->done_lock);
    return n;
}
/* Releases the delayed tasks that are due now; returns how many moved. */
BATCH__PRIVATE int batch__release_if_due(batch_pool* p) {
    uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
    if (due == UINT64_MAX) return 0;
    uint64_t now = batch_now_ns();
    return due <= now ? batch__release_due(p, now) : 0;
}

/* ---- counters ---------------------------------------------------------------------------- */
BATCH__PRIVATE uint64_t batch__counter_load(const batch_counter* c) {
    /* acquire: a waiter that sees zero sees everything the counted tasks did (the decrements
       are RMWs, so they form one release sequence) */
    return atomic_load_explicit(BATCH__ATOMIC_U64(&c->state_), memory_order_acquire) / BATCH__CNT_ONE;
}

BATCH__PRIVATE void batch__counter_wake(batch_pool* p, uint64_t flags) {
    if (flags & BATCH__CNT_WORKER_WAITING) batch__ec_notify(p, true);
    if (flags & BATCH__CNT_THREAD_WAITING) {
        batch__mutex_lock(&p->done_lock);
        batch__cond_broadcast(&p->done_cond);
        batch__mutex_unlock(&p->done_lock);
    }
}

/* The count is known to be >= 1. Does not touch *c after the decrement: the waiter may return
   and free it at once, so the pool is read first. */
/* Subtracts n (the count is known to be >= n). Once the count is zero the waiter may return,
   free the counter and even destroy the pool: the pool is read first, and a thread that is not
   a worker (workers are joined before the pool is freed) registers as a waker, so that
   batch_pool_destroy does not free the pool under its wake-up. */
BATCH__PRIVATE void batch__counter_subn(batch_counter* c, uint64_t n) {
    batch_pool* p = c->pool_;
    bool outsider = !batch__self(p);
    if (outsider) atomic_fetch_add_explicit(&p->wakers, 1, memory_order_seq_cst);
    /* seq_cst: pairs with the waiter's flag RMW and the eventcount fence (see batch__ec_*) */
    uint64_t old = atomic_fetch_sub_explicit(BATCH__ATOMIC_U64(&c->state_), n * BATCH__CNT_ONE, memory_order_seq_cst);
    if (old / BATCH__CNT_ONE == n && (old & (BATCH__CNT_ONE - 1)))
        batch__counter_wake(p, old);
    if (outsider) atomic_fetch_sub_explicit(&p->wakers, 1, memory_order_release);
}
BATCH__PRIVATE void batch__counter_sub1(batch_counter* c) { batch__counter_subn(c, 1); }

/* A worker defers the decrements of consecutive tasks with the same counter and pays them in
   one RMW: many small tasks of one job then do not bounce the counter's cache line between
   workers. The debt is paid before the worker runs a task of another counter, before it looks
   for work elsewhere or sleeps, and before it waits; those tasks count as executed only then,
   so a quiescent pool owes nothing and no counter is touched after its waiter returned. */
BATCH__PRIVATE void batch__worker_pay(batch__worker* w) {
    if (!w->owed_counter) return;
    batch_counter* c = w->owed_counter;
    uint64_t n = w->owed;
    w->owed_counter = NULL;
    w->owed = 0;
    batch__counter_subn(c, n);
    /* release: quiescence checks acquire executed (see the file comment) */
    atomic_store_explicit(&w->executed, atomic_load_explicit(&w->executed, memory_order_relaxed) + n, memory_order_release);
}

/* ---- running tasks ----------------------------------------------------------------------- */
BATCH__INLINE void batch__call(batch_pool* p, batch_work_fn fn, void* user, bool has_arg, uint64_t arg) {
    if (has_arg) ((batch__arg_fn)(void (*)(void))fn)(p, user, arg);
    else fn(p, user);
}
BATCH__PRIVATE void batch__execute(batch_pool* p, batch__worker* w, batch__task* t) {
    batch_work_fn fn = t->fn;
    void* user = t->user;
    batch_counter* c = t->counter;
    bool has_arg = t->has_arg;
    uint64_t arg = t->due;
    if (!w) {
        batch__call(p, fn, user, has_arg, arg);
        if (c) batch__counter_sub1(c);
        atomic_fetch_add_explicit(&p->ext_executed, 1, memory_order_release);
        return;
    }
    batch__task_free(p, w, t);   /* hot in cache for the tasks fn submits */
    if (w->owed_counter != c) batch__worker_pay(w);
    uint64_t mine = ++w->seq;
    batch__call(p, fn, user, has_arg, arg);
    if (w->seq != mine) w->clock_ns = 0;   /* tasks ran nested (it helped while waiting): no hand-off */
    if (c) {
        w->owed_counter = c;
        w->owed++;
    } else {
        batch__bump(&w->executed);
    }
}

BATCH__PRIVATE batch__task* batch__steal_any(batch_pool* p, batch__worker* w) {
    int n = p->nworkers;
    if (n < 2) return NULL;
    int start = (int)(batch__rand(&w->rng) % (uint64_t)n);
    for (int i = 0; i < n; i++) {
        int v = start + i;
        if (v >= n) v -= n;
        if (v == w->index) continue;
        void* x;
        for (int tries = 0; tries < 4; tries++) {
            batch__steal_result r = batch__deque_steal(&p->workers[v].dq, &x);
            if (r == BATCH__STEAL_OK) { batch__bump(&w->steals); return (batch__task*)x; }
            if (r == BATCH__STEAL_EMPTY) break;
        }
    }
    return NULL;
}

/* One search, in priority order: urgent injected work, the own deque, injected work, due
   delayed work, other workers' deques. */
BATCH__PRIVATE batch__task* batch__find_work(batch_pool* p, batch__worker* w) {
    unsigned mask = atomic_load_explicit(&p->inj_mask, memory_order_relaxed);
    batch__task* t;
    if ((mask & BATCH__HIGH_LEVELS_MASK) && (t = batch__inj_take(p, w, BATCH__HIGH_LEVELS_MASK))) { w->clock_ns = 0; return t; }
    if ((t = (batch__task*)batch__deque_pop(&w->dq))) return t;
    /* the debt stays while the worker looks elsewhere: what it finds is often more of the same
       job (batch__execute pays first if not); an idle worker pays soon (batch__find_work_spin) */
    w->clock_ns = 0;        /* the search takes time no task should be charged with */
    /* A worker that just drained the outsiders' ring waits BATCH__RING_HOLD_NS before it looks
       there again: a producer filling it meanwhile is not slowed by a consumer that takes its
       tasks one by one, each take pulling the lines it writes (batch__ring_push) away from it. */
    unsigned pending = atomic_load_explicit(&p->inj_mask, memory_order_relaxed);
    if (w->ring_hold && batch_now_ns() >= w->ring_hold) w->ring_hold = 0;
    if (!w->ring_hold && batch__ring_ready(p)) pending |= 1u << BATCH__LEVEL_NORMAL;
    if (pending && (t = batch__inj_take(p, w, ~0u))) return t;
    if (batch__release_if_due(p) && (t = batch__inj_take(p, w, ~0u))) return t;
    return batch__steal_any(p, w);
}

/* An idle thread's bounded spin: call batch__spin_more after each fruitless search; it waits a
   little (pause instructions first, then yielding the CPU to other runnable threads) and returns
   false once the pool's budget since the first call is spent. The clock is read once per
   round, which costs far less than the round. */
typedef struct batch__spin_state { uint64_t start; } batch__spin_state;
BATCH__PRIVATE bool batch__spin_more(const batch_pool* p, batch__spin_state* s) {
    if (!p->spin_ns) return false;
    uint64_t now = batch_now_ns();
    if (!s->start) s->start = now;
    uint64_t spent = now - s->start;
    if (spent >= p->spin_ns) return false;
    if (spent < p->relax_ns) { for (int k = 0; k < 32; k++) batch__cpu_relax(); }
    else batch__yield();
    return true;
}

/* An idle worker pays its debt (batch__worker_pay) once it has searched in vain for
   BATCH__PAY_AFTER_NS: a producer feeding the pool does not get the counter's line pulled away
   after every few tasks, and a thread waiting on that counter waits at most that much longer. */
BATCH__PRIVATE batch__task* batch__find_work_spin(batch_pool* p, batch__worker* w) {
    batch__spin_state s = { 0 };
    do {
        batch__task* t = batch__find_work(p, w);
        if (t) return t;
        if (w->owed_counter && (!p->spin_ns || (s.start && batch_now_ns() - s.start >= BATCH__PAY_AFTER_NS)))
            batch__worker_pay(w);
    } while (batch__spin_more(p, &s));
    batch__worker_pay(w);
    return NULL;
}

BATCH__PRIVATE void batch__wake_idle_waiters(batch_pool* p) {
    if (atomic_load_explicit(&p->idle_waiters, memory_order_seq_cst) > 0) {
        batch__mutex_lock(&p->done_lock);
        batch__cond_broadcast(&p->done_cond);
        batch__mutex_unlock(&p->done_lock);
    }
}

BATCH__PRIVATE int batch__worker_main(void* arg) {
    batch__worker* w = (batch__worker*)arg;
    batch_pool* p = w->pool;
    batch__tls_worker = w;
    for (;;) {
        batch__task* t = batch__find_work_spin(p, w);
        if (t) { batch__execute(p, w, t); continue; }
        w->ring_hold = 0;   /* the re-check after prepare must see every queue */
        uint64_t key = batch__ec_prepare(p);
        if ((t = batch__find_work(p, w))) { batch__ec_cancel(p); batch__execute(p, w, t); continue; }
        if (atomic_load_explicit(&p->stop, memory_order_seq_cst)) { batch__ec_cancel(p); break; }
        batch__wake_idle_waiters(p);
        batch__bump(&w->sleeps);
        batch__ec_commit(p, key, atomic_load_explicit(&p->delay_next, memory_order_relaxed));
    }
    batch__tls_worker = NULL;
    return 0;
}

/* ---- inline execution -------------------------------------------------------------------- */
/* Runs one ready task of an inline pool on the calling thread. false: none is ready. */
BATCH__PRIVATE bool batch__inline_run_one(batch_pool* p) {
    batch__release_if_due(p);
    /* the order of a one-worker pool: urgent injected work, then the work tasks submitted
       (newest first, like a worker's own deque: nested waits stay shallow), then the rest */
    batch__spin_lock(&p->inj_lock);
    batch__task* t = batch__inj_pop(p, BATCH__HIGH_LEVELS_MASK);
    if (!t && (t = p->inline_stack)) {
        p->inline_stack = t->next;
        if (!p->inline_stack) atomic_store_explicit(&p->inline_ready, 0, memory_order_relaxed);
    }
    if (!t) t = batch__inj_pop(p, ~0u);
    batch__spin_unlock(&p->inj_lock);
    if (!t) return false;
    batch__task copy = *t;
    batch__spin_lock(&p->ext_lock);
    batch__task_free(p, NULL, t);
    batch__spin_unlock(&p->ext_lock);
    batch_pool* saved = batch__tls_inline;
    batch__tls_inline = p;
    batch__execute(p, NULL, &copy);
    batch__tls_inline = saved;
    batch__wake_idle_waiters(p);
    return true;
}

/* ---- quiescence ------------------------------------------------------------------------- */
BATCH__PRIVATE uint64_t batch__sum_executed(const batch_pool* p) {
    uint64_t e = atomic_load_explicit(&p->ext_executed, memory_order_acquire);
    for (int i = 0; i < p->nworkers; i++) e += atomic_load_explicit(&p->workers[i].executed, memory_order_acquire);
    return e;
}
BATCH__PRIVATE uint64_t batch__sum_submitted(const batch_pool* p) {
    uint64_t s = atomic_load_explicit(&p->ext_submitted, memory_order_acquire) +
                 atomic_load_explicit(&p->ring_submitted, memory_order_acquire);
    for (int i = 0; i < p->nworkers; i++) s += atomic_load_explicit(&p->workers[i].submitted, memory_order_acquire);
    return s;
}
BATCH__PRIVATE bool batch__quiescent(const batch_pool* p) {
    uint64_t e = batch__sum_executed(p);   /* executed first: see the file comment */
    return e == batch__sum_submitted(p);
}

/* Blocks the calling non-worker thread until the pool is quiescent. With `flush_delays` the
   delayed tasks are released at once (shutdown). */
BATCH__PRIVATE void batch__wait_quiescent(batch_pool* p, bool flush_delays) {
    /* seq_cst RMW + fence: a Dekker pair with a worker's fence in ec_prepare before it reads
       idle_waiters (batch__wake_idle_waiters), and with an inline runner's wake-up */
    atomic_fetch_add_explicit(&p->idle_waiters, 1, memory_order_seq_cst);
    BATCH__FENCE_SEQ_CST();
    for (;;) {
        /* the waiter releases due tasks itself: while every worker is busy, waiting for one
           of them to do it would turn the timed wait below into a busy loop */
        if (flush_delays) batch__release_due(p, UINT64_MAX);
        else batch__release_if_due(p);
        if (p->inline_mode && batch__inline_run_one(p)) continue;
        batch__mutex_lock(&p->done_lock);
        bool q = batch__quiescent(p);
        uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
        /* sliced (100 ms) even without delays: a safety net on weakly ordered machines; the
           wake-ups above are what normally end the wait */
        uint64_t limit = batch_now_ns() + (flush_delays ? 10000000u : BATCH__WAIT_SLICE_NS);
        if (!q) batch__cond_wait_slice(&p->done_cond, &p->done_lock, due < limit ? due : limit);
        batch__mutex_unlock(&p->done_lock);
        if (q) break;
    }
    atomic_fetch_sub_explicit(&p->idle_waiters, 1, memory_order_relaxed);
}

/* ---- create / destroy ---------------------------------------------------------------------- */
/* The pool's locks and condition variables, in one order for init and destroy. Returns true
   when all 7 were made; on failure the ones made are destroyed again. */
BATCH__PRIVATE void batch__pool_sync_destroy(batch_pool* p, int made) {
    switch (made) {
        case 7: batch__mutex_destroy(&p->life_lock); /* fall through */
        case 6: batch__cond_destroy(&p->done_cond); /* fall through */
        case 5: batch__mutex_destroy(&p->done_lock); /* fall through */
        case 4: batch__mutex_destroy(&p->delay_lock); /* fall through */
        case 3: batch__cond_destroy(&p->ec_cond); /* fall through */
        case 2: batch__mutex_destroy(&p->ec_lock); /* fall through */
        case 1: batch__mutex_destroy(&p->spare_lock); /* fall through */
        default: break;
    }
}
BATCH__PRIVATE bool batch__pool_sync_init(batch_pool* p) {
    int made = 0;
    batch__spin_init(&p->inj_lock);
    batch__spin_init(&p->ext_lock);
    for (int l = 0; l < BATCH__LEVELS; l++) batch__inj_init(&p->inj[l]);
    if (batch__mutex_init(&p->spare_lock) && ++made &&
        batch__mutex_init(&p->ec_lock) && ++made && batch__cond_init(&p->ec_cond) && ++made &&
        batch__mutex_init(&p->delay_lock) && ++made && batch__mutex_init(&p->done_lock) && ++made &&
        batch__cond_init(&p->done_cond) && ++made && batch__mutex_init(&p->life_lock) && ++made)
        return true;
    batch__pool_sync_destroy(p, made);
    return false;
}

BATCH__PRIVATE void batch__pool_free(batch_pool* p) {
    void* ctx = p->alloc_ctx;
    for (int i = 0; i < p->nworkers; i++)
        if (atomic_load_explicit(&p->workers[i].dq.ring, memory_order_relaxed)) batch__deque_destroy(&p->workers[i].dq);
    while (p->slabs) { batch__slab* s = p->slabs; p->slabs = s->next; BATCH_FREE(s->raw, ctx); }
    if (p->heap) BATCH_FREE(p->heap, ctx);
    batch__task** ring = atomic_load_explicit(&p->ring, memory_order_relaxed);
    if (ring) BATCH_FREE(ring, ctx);
    if (p->raw_workers) BATCH_FREE(p->raw_workers, ctx);
    batch__pool_sync_destroy(p, 7);
    BATCH_FREE(p->raw_self, ctx);
}

BATCH__PRIVATE void batch__join_workers(batch_pool* p, int started) {
    atomic_store_explicit(&p->stop, 1, memory_order_seq_cst);
    batch__ec_notify(p, true);
    for (int i = 0; i < started; i++) batch__thread_join(p->workers[i].thread);
}

BATCH_API batch_result batch_pool_create(batch_pool** out_pool, const batch_pool_desc* desc) {
    if (!out_pool) return BATCH_ERR_INVALID;
    *out_pool = NULL;
    if (!desc) return BATCH_ERR_INVALID;
    if (desc->workers < BATCH_WORKERS_INLINE || desc->workers > BATCH_MAX_WORKERS) return BATCH_ERR_INVALID;
    int cap = desc->deque_capacity ? desc->deque_capacity : 256;
    if (cap < 16 || cap > (1 << 24) || (cap & (cap - 1))) return BATCH_ERR_INVALID;
    if (desc->spin_us < BATCH_SPIN_NONE || desc->spin_us > 1000000) return BATCH_ERR_INVALID;

    int n = desc->workers == 0 ? batch_cpu_count() : desc->workers;
    bool inline_mode = desc->workers == BATCH_WORKERS_INLINE;
#if defined(BATCH_NO_THREADS)
    inline_mode = true;
#endif
    if (inline_mode) n = 0;

    void* ctx = desc->alloc_ctx;
    void* raw = BATCH_MALLOC(sizeof(batch_pool) + BATCH__CACHE_LINE, ctx);
    if (!raw) return BATCH_ERR_NOMEM;
    batch_pool* p = (batch_pool*)batch__align_up(raw);
    memset(p, 0, sizeof *p);
    p->raw_self = raw;
    p->alloc_ctx = ctx;
    int spin_us = desc->spin_us == 0 ? BATCH_SPIN_US_DEFAULT : desc->spin_us == BATCH_SPIN_NONE ? 0 : desc->spin_us;
    p->spin_ns = (uint64_t)spin_us * 1000u;
    p->relax_ns = p->spin_ns / 8 < 50000u ? p->spin_ns / 8 : 50000u;
    p->inline_mode = inline_mode;
    p->tsc = batch__tsc_invariant();
    p->prefetchw = batch__has_prefetchw();
    p->origin = batch__clockpair_now(p->tsc);
    atomic_init(&p->delay_next, UINT64_MAX);
    if (!batch__pool_sync_init(p)) { BATCH_FREE(raw, ctx); return BATCH_ERR_NOMEM; }

    if (n > 0) {
        size_t sz = (size_t)n * sizeof(batch__worker) + BATCH__CACHE_LINE;
        p->raw_workers = BATCH_MALLOC(sz, ctx);
        if (!p->raw_workers) { batch__pool_free(p); return BATCH_ERR_NOMEM; }
        memset(p->raw_workers, 0, sz);
        p->workers = (batch__worker*)batch__align_up(p->raw_workers);
        p->nworkers = n;
        for (int i = 0; i < n; i++) {
            batch__worker* w = &p->workers[i];
            w->pool = p;
            w->index = i;
            w->rng = (uint64_t)0x9E3779B97F4A7C15u * (uint64_t)(unsigned)(i + 1) ^ (uint64_t)(uintptr_t)p;
            if (!w->rng) w->rng = 1;
            if (!batch__deque_init(&w->dq, cap, ctx)) { batch__pool_free(p); return BATCH_ERR_NOMEM; }
        }
        for (int i = 0; i < n; i++) {
            if (!batch__thread_create(&p->workers[i].thread, batch__worker_main, &p->workers[i])) {
                batch__join_workers(p, i);
                batch__pool_free(p);
                return BATCH_ERR_THREAD;
            }
        }
    }
    *out_pool = p;
    return BATCH_OK;
}

BATCH_API batch_result batch_pool_shutdown(batch_pool* p) {
    if (!p) return BATCH_ERR_INVALID;
    if (batch__self(p) || batch__tls_inline == p) return BATCH_ERR_BUSY;
    batch__mutex_lock(&p->life_lock);
    if (!p->joined) {
        atomic_store_explicit(&p->shutdown, 1, memory_order_seq_cst);
        /* seq_cst, with the submitter's seq_cst increment of ext_active then load of shutdown:
           once this loop ends, no non-worker can enqueue any more; batch__submit_outsider checks
           the flag under ext_lock, so one round trip of the lock waits for the one inside */
        while (atomic_load_explicit(&p->ext_active, memory_order_seq_cst) != 0) batch__yield();
        batch__spin_lock(&p->ext_lock);
        batch__spin_unlock(&p->ext_lock);
        batch__wait_quiescent(p, true);
        batch__join_workers(p, p->nworkers);
        p->joined = true;
    }
    batch__mutex_unlock(&p->life_lock);
    return BATCH_OK;
}

BATCH_API batch_result batch_pool_destroy(batch_pool* p) {
    if (!p) return BATCH_OK;
    batch_result r = batch_pool_shutdown(p);
    if (r != BATCH_OK) return r;
    /* acquire: pairs with the release decrement of a waker that has finished with the pool */
    while (atomic_load_explicit(&p->wakers, memory_order_acquire) != 0) batch__yield();
    batch__pool_free(p);
    return BATCH_OK;
}

BATCH_API batch_result batch_pool_wait_idle(batch_pool* p) {
    if (!p) return BATCH_ERR_INVALID;
    if (batch__self(p) || batch__tls_inline == p) return BATCH_ERR_BUSY;
    batch__wait_quiescent(p, false);
    return BATCH_OK;
}

BATCH_API int batch_pool_workers(const batch_pool* p) { return p ? p->nworkers : 0; }

BATCH_API int batch_pool_worker_index(const batch_pool* p) {
    batch__worker* w = p ? batch__self(p) : NULL;
    return w ? w->index : -1;
}

BATCH_API batch_result batch_pool_get_stats(const batch_pool* p, batch_pool_stats* out) {
    if (!p || !out) return BATCH_ERR_INVALID;
    memset(out, 0, sizeof *out);
    out->workers = p->nworkers;
    out->executed = batch__sum_executed(p);
    out->submitted = batch__sum_submitted(p);
    for (int i = 0; i < p->nworkers; i++) {
        out->steals += atomic_load_explicit(&p->workers[i].steals, memory_order_relaxed);
        out->sleeps += atomic_load_explicit(&p->workers[i].sleeps, memory_order_relaxed);
    }
    return BATCH_OK;
}

BATCH_API uint64_t batch_pool_worker_executed(const batch_pool* p, int i) {
    if (!p || i < 0 || i >= p->nworkers) return 0;
    return atomic_load_explicit(&p->workers[i].executed, memory_order_relaxed);
}

/* ---- submit ---------------------------------------------------------------------------------- */
/* After queueing on the injection queues: wake a worker, or an inline runner. */
BATCH__PRIVATE void batch__wake_inline(batch_pool* p) {
    batch__mutex_lock(&p->done_lock);
    batch__cond_broadcast(&p->done_cond);
    batch__mutex_unlock(&p->done_lock);
}
BATCH__PRIVATE void batch__after_inject(batch_pool* p) {
    batch__ec_notify(p, false);
    if (p->inline_mode) batch__wake_inline(p);
}

/* Queues an initialised task (counter already incremented). Cannot fail except for delayed
   tasks (heap growth): then returns false and nothing was queued. */
BATCH__PRIVATE bool batch__enqueue(batch_pool* p, batch__worker* w, batch__task* t, uint64_t delay_ns) {
    if (delay_ns && !atomic_load_explicit(&p->shutdown, memory_order_relaxed)) {
        t->due = batch_now_ns() + delay_ns;
        batch__mutex_lock(&p->delay_lock);
        if (p->heap_len == p->heap_cap) {
            size_t ncap = p->heap_cap ? p->heap_cap * 2 : 64;
            /* NOLINTNEXTLINE(bugprone-sizeof-expression): the heap holds task pointers */
            batch__task** nh = (batch__task**)BATCH_REALLOC(p->heap, ncap * sizeof *nh, p->alloc_ctx);
            if (!nh) { batch__mutex_unlock(&p->delay_lock); return false; }
            p->heap = nh;
            p->heap_cap = ncap;
        }
        if (w) batch__bump(&w->submitted);
        else atomic_fetch_add_explicit(&p->ext_submitted, 1, memory_order_release);
        p->heap[p->heap_len++] = t;
        batch__heap_up(p->heap, p->heap_len - 1);
        bool first = p->heap[0] == t;
        if (first) atomic_store_explicit(&p->delay_next, t->due, memory_order_relaxed);
        batch__mutex_unlock(&p->delay_lock);
        /* sleepers re-arm their timers to the new earliest deadline */
        if (first) {
            batch__ec_notify(p, true);
            batch__mutex_lock(&p->done_lock);
            batch__cond_broadcast(&p->done_cond);
            batch__mutex_unlock(&p->done_lock);
        }
        return true;
    }
    if (w) {
        batch__bump(&w->submitted);
        if (t->level == BATCH__LEVEL_NORMAL && batch__deque_push(&w->dq, t)) {
            batch__ec_notify(p, false);
            return true;
        }
        /* other priorities, or a deque that cannot grow: the injection queue needs no memory */
    } else {
        /* an RMW: delayed submissions count here too, under delay_lock */
        atomic_fetch_add_explicit(&p->ext_submitted, 1, memory_order_release);
        if (batch__tls_inline == p && t->level == BATCH__LEVEL_NORMAL) {
            /* a task of an inline pool submits: LIFO, like a worker's deque (inline_run_one) */
            batch__spin_lock(&p->inj_lock);
            t->next = p->inline_stack;
            p->inline_stack = t;
            atomic_store_explicit(&p->inline_ready, 1, memory_order_relaxed);
            batch__spin_unlock(&p->inj_lock);
            /* another thread may be waiting on this inline pool for exactly this task */
            batch__mutex_lock(&p->done_lock);
            batch__cond_broadcast(&p->done_cond);
            batch__mutex_unlock(&p->done_lock);
            return true;
        }
    }
    batch__inj_push(p, t);
    batch__after_inject(p);
    return true;
}

/* Internal: a worker of p queues n NORMAL-priority tasks fn(p, users[i]) counted by c, with one
   counter RMW and one wake-up for all of them (a task that releases many successors). Returns
   how many were queued from the front of users (fewer only when out of task memory). */
/* Queues task t (fields set) at NORMAL level on worker w's own deque, or on the injection queue
   if the deque cannot grow. */
BATCH__PRIVATE void batch__push_own(batch_pool* p, batch__worker* w, batch__task* t) {
    t->level = BATCH__LEVEL_NORMAL;
    batch__bump(&w->submitted);
    if (!batch__deque_push(&w->dq, t)) batch__inj_push(p, t);
}

BATCH__PRIVATE size_t batch__submit_bulk(batch_pool* p, batch__worker* w, batch_work_fn fn, void* const* users, size_t n,
                                         batch_counter* c) {
    size_t k = 0;
    if (c && n)   /* relaxed: as in batch_pool_submit; the pushes below publish the tasks */
        atomic_fetch_add_explicit(BATCH__ATOMIC_U64(&c->state_), n * BATCH__CNT_ONE, memory_order_relaxed);
    for (; k < n; k++) {
        batch__task* t = batch__task_alloc(p, w);
        if (!t) break;
        t->fn = fn;
        t->user = users[k];
        t->counter = c;
        batch__push_own(p, w, t);
    }
    if (c && k < n)   /* give back the count of what was not queued; no task of those ran */
        atomic_fetch_sub_explicit(BATCH__ATOMIC_U64(&c->state_), (n - k) * BATCH__CNT_ONE, memory_order_relaxed);
    if (k) batch__ec_notify(p, k > 1);
    return k;
}

/* Internal: a worker of p queues fn(p, user, arg) on its own deque, counted by c. false: out of
   memory, nothing queued. */
BATCH__PRIVATE bool batch__submit_arg(batch_pool* p, batch__worker* w, batch__arg_fn fn, void* user, uint64_t arg,
                                      batch_counter* c) {
    batch__task* t = batch__task_alloc(p, w);
    if (!t) return false;
    if (c)   /* relaxed: as in batch_pool_submit; the push publishes the task */
        atomic_fetch_add_explicit(BATCH__ATOMIC_U64(&c->state_), BATCH__CNT_ONE, memory_order_relaxed);
    t->fn = (batch_work_fn)(void (*)(void))fn;
    t->user = user;
    t->counter = c;
    t->has_arg = true;
    t->due = arg;
    batch__push_own(p, w, t);
    batch__ec_notify(p, false);
    return true;
}

/* The common case of a program feeding its pool: a thread that is neither a worker nor running
   the pool inline submits a NORMAL task without a delay. One lock, ext_lock, covers the shutdown
   check, the free task, the count and the ring (batch_pool_shutdown takes it once after it sets
   the flag, so no submission slips past it), instead of the general path's ext_active. */
BATCH__PRIVATE batch_result batch__submit_outsider(batch_pool* p, const batch_work* work) {
    batch_counter* c = work->counter;
    batch__spin_lock(&p->ext_lock);
    if (atomic_load_explicit(&p->shutdown, memory_order_relaxed)) {   /* ordered by ext_lock */
        batch__spin_unlock(&p->ext_lock);
        return BATCH_ERR_SHUTDOWN;
    }
    batch__task* t = batch__task_alloc(p, NULL);
    if (t) {
        /* counted before the push publishes the task (relaxed: the push is a release), and
           before the task's fields are written: a locked add waits for earlier stores */
        if (c) atomic_fetch_add_explicit(BATCH__ATOMIC_U64(&c->state_), BATCH__CNT_ONE, memory_order_relaxed);
        /* one writer (ext_lock); release: quiescence checks acquire it */
        uint64_t n = atomic_load_explicit(&p->ring_submitted, memory_order_relaxed);
        atomic_store_explicit(&p->ring_submitted, n + 1, memory_order_release);
        t->fn = work->fn;
        t->user = work->user_data;
        t->counter = c;
        t->level = BATCH__LEVEL_NORMAL;
        if (!batch__ring_push(p, t)) {
            /* back to where they were; nothing ran, so nobody can be at zero */
            if (c) atomic_fetch_sub_explicit(BATCH__ATOMIC_U64(&c->state_), BATCH__CNT_ONE, memory_order_relaxed);
            atomic_store_explicit(&p->ring_submitted, n, memory_order_relaxed);
            batch__task_free(p, NULL, t);
            t = NULL;
        }
    }
    batch__spin_unlock(&p->ext_lock);
    if (!t) return BATCH_ERR_NOMEM;
    batch__after_inject(p);
    return BATCH_OK;
}

BATCH_API batch_result batch_pool_submit(batch_pool* p, const batch_work* work) {
    if (!p || !work || !work->fn) return BATCH_ERR_INVALID;
    if (BATCH__ENUM_BAD(work->priority, BATCH_PRIORITY_COUNT_)) return BATCH_ERR_INVALID;
    if (work->delay_ns > ((uint64_t)1 << 62)) return BATCH_ERR_INVALID;
    if (work->counter && work->counter->pool_ != p) return BATCH_ERR_INVALID;
    batch__worker* w = batch__self(p);
    bool outsider = !w && batch__tls_inline != p;
    if (outsider && !work->delay_ns &&
        (work->priority == BATCH_PRIORITY_DEFAULT || work->priority == BATCH_PRIORITY_NORMAL))
        return batch__submit_outsider(p, work);
    if (outsider) {
        /* seq_cst: see batch_pool_shutdown */
        atomic_fetch_add_explicit(&p->ext_active, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&p->shutdown, memory_order_seq_cst)) {
            atomic_fetch_sub_explicit(&p->ext_active, 1, memory_order_seq_cst);
            return BATCH_ERR_SHUTDOWN;
        }
    }
    batch_result r = BATCH_OK;
    batch__task* t;
    if (w) {
        t = batch__task_alloc(p, w);
    } else {
        batch__spin_lock(&p->ext_lock);
        t = batch__task_alloc(p, NULL);
        batch__spin_unlock(&p->ext_lock);
    }
    if (!t) {
        r = BATCH_ERR_NOMEM;
    } else {
        t->fn = work->fn;
        t->user = work->user_data;
        t->counter = work->counter;
        t->level = (uint8_t)(work->priority == BATCH_PRIORITY_DEFAULT ? BATCH__LEVEL_NORMAL : (int)work->priority - 1);
        if (t->counter)  /* relaxed: the task is published after this (release), and sub is RMW */
            atomic_fetch_add_explicit(BATCH__ATOMIC_U64(&t->counter->state_), BATCH__CNT_ONE, memory_order_relaxed);
        if (!batch__enqueue(p, w, t, work->delay_ns)) {
            if (t->counter)  /* back to where it was; no task ran, so nobody can be at zero */
                atomic_fetch_sub_explicit(BATCH__ATOMIC_U64(&t->counter->state_), BATCH__CNT_ONE, memory_order_relaxed);
            if (w) batch__task_free(p, w, t);
            else { batch__spin_lock(&p->ext_lock); batch__task_free(p, NULL, t); batch__spin_unlock(&p->ext_lock); }
            r = BATCH_ERR_NOMEM;
        }
    }
    if (outsider) atomic_fetch_sub_explicit(&p->ext_active, 1, memory_order_seq_cst);
    return r;
}

/* ---- counters (API) ----------------------------------------------------------------------- */
BATCH_API batch_result batch_counter_init(batch_counter* c, batch_pool* pool) {
    if (!c || !pool) return BATCH_ERR_INVALID;
    atomic_store_explicit(BATCH__ATOMIC_U64(&c->state_), 0, memory_order_relaxed);
    c->pool_ = pool;
    return BATCH_OK;
}

BATCH_API batch_result batch_counter_add(batch_counter* c, uint64_t n) {
    if (!c || !c->pool_ || n == 0 || n > (UINT64_MAX >> 3)) return BATCH_ERR_INVALID;
    atomic_fetch_add_explicit(BATCH__ATOMIC_U64(&c->state_), n * BATCH__CNT_ONE, memory_order_relaxed);
    return BATCH_OK;
}

BATCH_API batch_result batch_counter_done(batch_counter* c) {
    if (!c || !c->pool_) return BATCH_ERR_INVALID;
    batch_pool* p = c->pool_;   /* read first: once the count is zero the waiter may free c */
    bool outsider = !batch__self(p);
    if (outsider) atomic_fetch_add_explicit(&p->wakers, 1, memory_order_seq_cst);   /* see batch__counter_subn */
    uint64_t s = atomic_load_explicit(BATCH__ATOMIC_U64(&c->state_), memory_order_relaxed);
    batch_result r = BATCH_OK;
    do {
        if (s < BATCH__CNT_ONE) { r = BATCH_ERR_INVALID; break; }
        /* seq_cst: as in batch__counter_subn */
    } while (!atomic_compare_exchange_weak_explicit(BATCH__ATOMIC_U64(&c->state_), &s, s - BATCH__CNT_ONE,
                                                    memory_order_seq_cst, memory_order_relaxed));
    if (r == BATCH_OK && s / BATCH__CNT_ONE == 1 && (s & (BATCH__CNT_ONE - 1))) batch__counter_wake(p, s);
    if (outsider) atomic_fetch_sub_explicit(&p->wakers, 1, memory_order_release);
    return r;
}

BATCH_API uint64_t batch_counter_value(const batch_counter* c) { return c ? batch__counter_load(c) : 0; }

BATCH__PRIVATE batch_result batch__counter_wait(batch_counter* c, uint64_t deadline) {
    if (!c || !c->pool_) return BATCH_ERR_INVALID;
    batch_pool* p = c->pool_;
    _Atomic uint64_t* st = BATCH__ATOMIC_U64(&c->state_);
    batch__worker* w = batch__self(p);
    if (w) {
        /* a worker helps: it runs any task until the count is zero */
        batch__spin_state spin = { 0 };
        for (;;) {
            batch__worker_pay(w);   /* we may owe this very counter */
            if (batch__counter_load(c) == 0) break;
            batch__task* t = batch__find_work(p, w);
            if (t) { batch__execute(p, w, t); spin.start = 0; continue; }
            if (deadline != UINT64_MAX && batch_now_ns() >= deadline) return BATCH_ERR_TIMEOUT;
            if (batch__spin_more(p, &spin)) continue;
            atomic_fetch_or_explicit(st, BATCH__CNT_WORKER_WAITING, memory_order_seq_cst);
            w->ring_hold = 0;   /* the re-check after prepare must see every queue */
            uint64_t key = batch__ec_prepare(p);
            if (batch__counter_load(c) == 0) { batch__ec_cancel(p); break; }
            if ((t = batch__find_work(p, w))) { batch__ec_cancel(p); batch__execute(p, w, t); spin.start = 0; continue; }
            uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
            batch__ec_commit(p, key, due < deadline ? due : deadline);
            spin.start = 0;
        }
        return BATCH_OK;
    }
    if (p->inline_mode) {
        while (batch__counter_load(c) != 0) {
            if (batch__inline_run_one(p)) continue;
            if (deadline != UINT64_MAX && batch_now_ns() >= deadline) return BATCH_ERR_TIMEOUT;
            /* nothing ready: a delayed task, or another thread must finish the count */
            atomic_fetch_or_explicit(st, BATCH__CNT_THREAD_WAITING, memory_order_seq_cst);
            batch__mutex_lock(&p->done_lock);
            uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
            bool ready = batch__inj_pending(p) != 0 ||
                         atomic_load_explicit(&p->inline_ready, memory_order_relaxed) != 0;
            if (batch__counter_load(c) != 0 && !ready)
                batch__cond_wait_slice(&p->done_cond, &p->done_lock, due < deadline ? due : deadline);
            batch__mutex_unlock(&p->done_lock);
        }
        return BATCH_OK;
    }
    /* any other thread sleeps */
    atomic_fetch_or_explicit(st, BATCH__CNT_THREAD_WAITING, memory_order_seq_cst);
    batch_result r = BATCH_OK;
    batch__mutex_lock(&p->done_lock);
    while (batch__counter_load(c) != 0) {
        if (deadline != UINT64_MAX && batch_now_ns() >= deadline) { r = BATCH_ERR_TIMEOUT; break; }
        batch__cond_wait_slice(&p->done_cond, &p->done_lock, deadline);
    }
    batch__mutex_unlock(&p->done_lock);
    return r;
}

/* A waiter leaves: clear the waiter flags if the count is still zero, so that later zero
   crossings of a reused counter do not broadcast for nobody. */
BATCH__PRIVATE batch_result batch__counter_wait_clear(batch_counter* c, uint64_t deadline) {
    batch_result r = batch__counter_wait(c, deadline);
    if (r == BATCH_OK) {
        uint64_t s = atomic_load_explicit(BATCH__ATOMIC_U64(&c->state_), memory_order_relaxed);
        if (s && s < BATCH__CNT_ONE)
            atomic_compare_exchange_strong_explicit(BATCH__ATOMIC_U64(&c->state_), &s, 0, memory_order_relaxed,
                                                    memory_order_relaxed);
    }
    return r;
}

BATCH_API batch_result batch_counter_wait(batch_counter* c) { return batch__counter_wait_clear(c, UINT64_MAX); }

BATCH_API batch_result batch_counter_wait_timeout(batch_counter* c, uint64_t timeout_ns) {
    uint64_t now = batch_now_ns();
    uint64_t deadline = timeout_ns >= UINT64_MAX - now ? UINT64_MAX - 1 : now + timeout_ns;
    return batch__counter_wait_clear(c, deadline);
}

/* ---- parallel-for ---------------------------------------------------------------------------- */
/* The range is split into up to BATCH__PFOR_SEGS segments of whole chunks, one cursor each on
   its own line. A claimer starts on its own segment (a ticket) and moves on to the next when it
   is used up, so claimers share a cursor only near the end: with one cursor for all, every
   chunk's fetch-add moved its line between cores. Chunks are the same as with one cursor. */
#define BATCH__PFOR_SEGS 8
typedef struct batch__pfor_seg { BATCH__ALIGNED _Atomic size_t next; size_t end; } batch__pfor_seg;
typedef struct batch__pfor {
    batch__pfor_seg seg[BATCH__PFOR_SEGS];
    BATCH__ALIGNED _Atomic unsigned ticket;
    unsigned nseg;
    size_t chunk;
    batch_range_fn fn;
    void* user;
} batch__pfor;

BATCH__PRIVATE void batch__pfor_claim(batch_pool* p, batch__pfor* f) {
    /* relaxed: where a claimer starts does not matter for correctness */
    unsigned home = atomic_fetch_add_explicit(&f->ticket, 1, memory_order_relaxed) % f->nseg;
    for (unsigned k = 0; k < f->nseg; k++) {
        batch__pfor_seg* s = &f->seg[(home + k) % f->nseg];
        for (;;) {
            /* relaxed: chunks are independent; the counter publishes their results to the caller */
            size_t b = atomic_fetch_add_explicit(&s->next, f->chunk, memory_order_relaxed);
            if (b >= s->end) break;
            size_t e = s->end - b < f->chunk ? s->end : b + f->chunk;
            f->fn(p, b, e, f->user);
        }
    }
}

BATCH__PRIVATE void batch__pfor_helper(batch_pool* p, void* user) { batch__pfor_claim(p, (batch__pfor*)user); }

/* Splits chunks over f's segments as evenly as whole chunks allow; the last ends at n. */
BATCH__PRIVATE void batch__pfor_split(batch__pfor* f, size_t n, size_t chunks, unsigned nseg) {
    f->nseg = nseg;
    size_t per = chunks / nseg, extra = chunks % nseg, first = 0;
    for (unsigned k = 0; k < nseg; k++) {
        atomic_init(&f->seg[k].next, first * f->chunk);
        first += per + (k < extra ? 1 : 0);
        f->seg[k].end = k + 1 == nseg ? n : first * f->chunk;
    }
}

BATCH_API batch_result batch_pool_parallel_for(batch_pool* p, size_t n, size_t chunk, batch_range_fn fn, void* user) {
    if (!p || !fn) return BATCH_ERR_INVALID;
    if (n == 0) return BATCH_OK;
    int threads = p->nworkers + 1;
    if (chunk == 0) chunk = n / (8 * (size_t)threads);
    if (chunk == 0) chunk = 1;
    if (chunk > n) chunk = n;
    size_t chunks = (n - 1) / chunk + 1;
    batch__worker* w = batch__self(p);
    size_t helpers = (size_t)(p->nworkers - (w ? 1 : 0));
    if (helpers > chunks - 1) helpers = chunks - 1;
    /* every claimer overshoots a segment's end (at most n) by at most one chunk: no cursor wraps */
    if (chunk > (SIZE_MAX - n) / (helpers + 1)) return BATCH_ERR_INVALID;
    batch__pfor f;
    f.chunk = chunk;
    f.fn = fn;
    f.user = user;
    atomic_init(&f.ticket, 0);
    batch__pfor_split(&f, n, chunks, helpers + 1 < BATCH__PFOR_SEGS ? (unsigned)helpers + 1 : BATCH__PFOR_SEGS);
    batch_counter c;
    batch_counter_init(&c, p);
    for (size_t i = 0; i < helpers; i++) {
        /* a helper that cannot be queued is not needed for correctness: the caller claims too */
        if (batch_pool_submit(p, &(batch_work){ .fn = batch__pfor_helper, .user_data = &f, .counter = &c }) != BATCH_OK)
            break;
    }
    batch__pfor_claim(p, &f);
    return batch_counter_wait(&c);
}

#endif /* BATCH__POOL_C */
/* ---- end batch_impl/pool.c ---- */
/* ---- begin batch_impl/job.c ---- */
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
/* ---- end batch_impl/job.c ---- */
/* ---- begin batch_impl/journal.c ---- */
/* journal.c - durable jobs: an append-only journal of finished tasks and delivered batches.

   File: a 32-byte header (magic "BATCHJNL", version, kind, fingerprint, accumulator size, CRC32C
   of the header), then records: u32 payload length, u32 CRC32C of the payload, the payload. All
   integers little-endian. Records are appended under the journal's lock; on open the valid
   prefix is replayed into the job and anything after it (a record cut short by a crash, one
   whose CRC does not match, or zeros to the end of the file) is truncated. See "DURABLE JOBS" in the API part for the contract. */
#ifndef BATCH__JOURNAL_C
#define BATCH__JOURNAL_C
#ifndef BATCH_SINGLE_FILE
#  include "job.c"
#endif

#if !defined(BATCH_NO_JOURNAL) && (defined(__unix__) || defined(__APPLE__))
#  define BATCH__POSIX_IO 1
#  include <fcntl.h>
#  include <sys/file.h>   /* flock: the queue's lock */
#  include <sys/stat.h>
#endif
#if !defined(BATCH_NO_JOURNAL) && defined(_WIN32)
#  define BATCH__WIN32_IO 1
#  if defined(_MSC_VER)
#    pragma comment(lib, "advapi32.lib")   /* the private DACL (batch__wio_private_sd) */
#  endif
#endif

/* ---- CRC32C (Castagnoli, reflected 0x82F63B78), one table lookup per byte ------------------ */
static const uint32_t batch__crc32c_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu, 0x26a1e7e8u, 0xd4ca64ebu,
    0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu, 0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u, 0x5e133c24u,
    0x105ec76fu, 0xe235446cu, 0xf165b798u, 0x030e349bu, 0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u,
    0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu, 0xbc267848u, 0x4e4dfb4bu,
    0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u, 0x33ed7d2au, 0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u,
    0xaa64d611u, 0x580f5512u, 0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau,
    0x30e349b1u, 0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu, 0x1642ae59u, 0xe4292d5au,
    0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au, 0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u,
    0x417b1dbcu, 0xb3109ebfu, 0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u, 0x67dafa54u, 0x95b17957u,
    0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu, 0xed03a29bu, 0x1f682198u,
    0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u, 0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u,
    0xdbfc821cu, 0x2997011fu, 0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u,
    0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu, 0x4767748au, 0xb50cf789u,
    0xeb1fcbadu, 0x197448aeu, 0x0a24bb5au, 0xf84f3859u, 0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u,
    0x7198540du, 0x83f3d70eu, 0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu, 0xdde0eb2au, 0x2f8b6829u,
    0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu, 0x456cac67u, 0xb7072f64u, 0xa457dc90u, 0x563c5f93u,
    0x082f63b7u, 0xfa44e0b4u, 0xe9141340u, 0x1b7f9043u, 0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu,
    0x92a8fc17u, 0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu, 0xb4091bffu, 0x466298fcu,
    0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu, 0x0b21572cu, 0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u,
    0xa24bb5a6u, 0x502036a5u, 0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u, 0x0e330a81u, 0xfc588982u,
    0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du, 0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u,
    0x38cc2a06u, 0xcaa7a905u, 0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu,
    0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u, 0xe52cc12cu, 0x1747422fu,
    0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu, 0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u,
    0xd3d3e1abu, 0x21b862a8u, 0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u,
    0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u, 0x7fab5e8cu, 0x8dc0dd8fu,
    0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu, 0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u, 0x37faccf1u,
    0x69e9f0d5u, 0x9b8273d6u, 0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au, 0xc69f7b69u, 0xd5cf889du, 0x27a40b9eu,
    0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu, 0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

BATCH__PRIVATE uint32_t batch__crc32c_soft(uint32_t c, const unsigned char* p, size_t n) {
    for (size_t i = 0; i < n; i++) c = batch__crc32c_table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return c;
}
#if defined(BATCH__X86_64_GNU)
/* SSE4.2's CRC32 instruction computes this very CRC, 8 bytes at a time: about 10x the table
   (a queue's cold open reads every record). Chosen at run time by CPUID. */
__attribute__((target("sse4.2"))) static uint32_t batch__crc32c_hw(uint32_t c, const unsigned char* p, size_t n) {
    uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
    }
    c = (uint32_t)c64;
    for (; n; n--, p++) c = __builtin_ia32_crc32qi(c, *p);
    return c;
}
static _Atomic int batch__crc_hw;   /* 0: not looked yet, 1: SSE4.2, 2: none (relaxed: idempotent) */
BATCH__PRIVATE uint32_t batch__crc32c(const void* data, size_t n) {
    int hw = atomic_load_explicit(&batch__crc_hw, memory_order_relaxed);
    if (!hw) {
        unsigned a, b, c, d;
        hw = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 20)) ? 1 : 2;
        atomic_store_explicit(&batch__crc_hw, hw, memory_order_relaxed);
    }
    const unsigned char* p = (const unsigned char*)data;
    return (hw == 1 ? batch__crc32c_hw(0xffffffffu, p, n) : batch__crc32c_soft(0xffffffffu, p, n)) ^ 0xffffffffu;
}
#else
BATCH__PRIVATE uint32_t batch__crc32c(const void* data, size_t n) {
    return batch__crc32c_soft(0xffffffffu, (const unsigned char*)data, n) ^ 0xffffffffu;
}
#endif

/* ---- little-endian fields ------------------------------------------------------------------ */
BATCH__PRIVATE void batch__put32(unsigned char* p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
BATCH__PRIVATE void batch__put64(unsigned char* p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
BATCH__PRIVATE uint32_t batch__get32(const unsigned char* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
BATCH__PRIVATE uint64_t batch__get64(const unsigned char* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

BATCH__PRIVATE bool batch__big_endian(void) {
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 0;
}

/* Fingerprints: a running 64-bit hash of the job's shape. */
BATCH__PRIVATE uint64_t batch__fp_mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}
BATCH__PRIVATE uint64_t batch__fp_str(uint64_t h, const char* s) {
    if (!s) return batch__fp_mix(h, 0x5A5Au);
    for (; *s; s++) h = batch__fp_mix(h, (unsigned char)*s);
    return batch__fp_mix(h, 0xA5A5u);
}

/* ---- the default I/O: POSIX --------------------------------------------------------------- */
#if defined(BATCH__POSIX_IO)
BATCH__PRIVATE int batch__pio_open(void* user, const char* path, intptr_t* out) {
    (void)user;
    int fd;
    do fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno ? errno : EIO;
    *out = fd;
    return 0;
}
/* An offset off_t cannot hold (a 32-bit off_t, without _FILE_OFFSET_BITS=64) is refused, not
   wrapped. */
#define BATCH__OFF_OK(off) (sizeof(off_t) >= 8 || (off) <= 0x7fffffffu)
BATCH__PRIVATE int batch__pio_read(void* user, intptr_t h, void* buf, size_t n, uint64_t off, size_t* done) {
    (void)user;
    if (!BATCH__OFF_OK(off + n)) return EFBIG;
    ssize_t r;
    do r = pread((int)h, buf, n, (off_t)off);
    while (r < 0 && errno == EINTR);
    if (r < 0) return errno ? errno : EIO;
    *done = (size_t)r;
    return 0;
}
BATCH__PRIVATE int batch__pio_write(void* user, intptr_t h, const void* buf, size_t n, uint64_t off, size_t* done) {
    (void)user;
    if (!BATCH__OFF_OK(off + n)) return EFBIG;
    ssize_t r;
    do r = pwrite((int)h, buf, n, (off_t)off);
    while (r < 0 && errno == EINTR);
    if (r < 0) return errno ? errno : EIO;
    *done = (size_t)r;
    return 0;
}
BATCH__PRIVATE int batch__pio_sync(void* user, intptr_t h) {
    (void)user;
#  if defined(__APPLE__)
    return fsync((int)h) ? errno : 0;
#  else
    return fdatasync((int)h) ? errno : 0;
#  endif
}
BATCH__PRIVATE int batch__pio_truncate(void* user, intptr_t h, uint64_t size) {
    (void)user;
    if (!BATCH__OFF_OK(size)) return EFBIG;
    return ftruncate((int)h, (off_t)size) ? errno : 0;
}
BATCH__PRIVATE int batch__pio_size(void* user, intptr_t h, uint64_t* size) {
    (void)user;
    struct stat st;
    if (fstat((int)h, &st)) return errno;
    if (!S_ISREG(st.st_mode)) return EINVAL;   /* a journal is a regular file */
    *size = (uint64_t)st.st_size;
    return 0;
}
BATCH__PRIVATE void batch__pio_close(void* user, intptr_t h) {
    (void)user;
    close((int)h);
}
/* fsync of the directory that holds path (its entry for a new file). 0 or an errno. */
BATCH__PRIVATE int batch__sync_dir(const char* path) {
    const char* slash = strrchr(path, '/');
    char dir[4096];
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof dir) return ENAMETOOLONG;
    if (slash) { memcpy(dir, path, n ? n : 1); dir[n ? n : 1] = 0; }   /* "/x" -> "/" */
    else { dir[0] = '.'; dir[1] = 0; }
    int fd;
    do fd = open(dir, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno ? errno : EIO;
    int e = fsync(fd) ? errno : 0;
    close(fd);
    return e == EINVAL ? 0 : e;   /* some file systems cannot sync a directory: nothing to do */
}

/* The queue's cross-process lock on an open file: flock, held per open file description (Linux,
   the BSDs, macOS): two handles of one process exclude each other, and closing another
   descriptor of the file does not drop it. (Linux's OFD fcntl locks have the same semantics,
   but valgrind does not treat F_OFD_SETLKW as blocking and hangs threads that wait on one.)
   Blocking; 0 or an errno. */
BATCH__PRIVATE int batch__file_lock(intptr_t h, bool exclusive) {
    int r;
    do r = flock((int)h, exclusive ? LOCK_EX : LOCK_SH);
    while (r < 0 && errno == EINTR);
    return r < 0 ? (errno ? errno : EIO) : 0;
}
BATCH__PRIVATE void batch__file_unlock(intptr_t h) { (void)flock((int)h, LOCK_UN); }
/* Atomically replaces `to` with `from`. 0 or an errno. */
BATCH__PRIVATE int batch__file_rename(const char* from, const char* to) { return rename(from, to) ? errno : 0; }
BATCH__PRIVATE void batch__file_remove(const char* path) { (void)unlink(path); }
/* The size of an open file, and whether it was removed from its directory (replaced by a
   rename, or deleted), with one call. 0 or an errno. */
BATCH__PRIVATE int batch__file_stat(intptr_t h, uint64_t* size, bool* gone) {
    struct stat st;
    if (fstat((int)h, &st)) return errno;
    *size = (uint64_t)st.st_size;
    *gone = st.st_nlink == 0;
    return 0;
}
/* Wall-clock nanoseconds since 1970 (leases are compared across processes). */
BATCH__PRIVATE uint64_t batch__wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const batch_journal_io batch__posix_io = {
    batch__pio_open, batch__pio_read, batch__pio_write, batch__pio_sync,
    batch__pio_truncate, batch__pio_size, batch__pio_close, NULL
};
BATCH_API const batch_journal_io* batch_journal_posix_io(void) { return &batch__posix_io; }
#else
BATCH_API const batch_journal_io* batch_journal_posix_io(void) { return NULL; }
/* No directory to sync: custom hooks sync what they choose, and on Windows there is no such
   call. A directory opens only with backup semantics and FlushFileBuffers is not defined on it;
   NTFS records a file's creation in its metadata log, which the FlushFileBuffers of the file
   itself (a MACHINE journal's first sync) commits. */
BATCH__PRIVATE int batch__sync_dir(const char* path) { (void)path; return 0; }
#endif

/* ---- the default I/O on Windows: Win32 --------------------------------------------------------
   The same rules as the POSIX I/O: WriteFile goes straight to the OS (no user-space buffer: a
   PROCESS record survives the process being killed), FlushFileBuffers for MACHINE durability,
   positional reads and writes (OVERLAPPED offsets on a synchronous handle), the last path
   component is never followed (FILE_FLAG_OPEN_REPARSE_POINT, then a reparse point is refused:
   O_NOFOLLOW), the handle is not inherited by child processes (O_CLOEXEC) and a new file gets
   a DACL for the current user only (0600). Paths are UTF-8. */
#if defined(BATCH__WIN32_IO)
/* A Win32 error as the errno value the journal expects (EIO for the unexpected ones). */
BATCH__PRIVATE int batch__win32_errno(DWORD e) {
    switch (e) {
        case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND: case ERROR_INVALID_DRIVE:
        case ERROR_BAD_NETPATH: case ERROR_BAD_NET_NAME:
            return ENOENT;
        case ERROR_ACCESS_DENIED: case ERROR_SHARING_VIOLATION: case ERROR_LOCK_VIOLATION:
        case ERROR_PRIVILEGE_NOT_HELD:
            return EACCES;
        case ERROR_WRITE_PROTECT: return EROFS;
        case ERROR_DISK_FULL: case ERROR_HANDLE_DISK_FULL: return ENOSPC;
        case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: return ENOMEM;
        case ERROR_FILENAME_EXCED_RANGE: case ERROR_BUFFER_OVERFLOW: return ENAMETOOLONG;
        case ERROR_INVALID_NAME: case ERROR_INVALID_PARAMETER: case ERROR_BAD_PATHNAME: return EINVAL;
        case ERROR_DIRECTORY: return ENOTDIR;
        case ERROR_TOO_MANY_OPEN_FILES: return EMFILE;
        case ERROR_NO_UNICODE_TRANSLATION: return EILSEQ;
        case ERROR_CANT_RESOLVE_FILENAME: return ELOOP;
        default: return EIO;
    }
}

/* The UTF-8 path as UTF-16 (plain malloc, like thread start-up: not an allocation the user
   accounts), or NULL with *err set. */
BATCH__PRIVATE WCHAR* batch__wio_wpath(const char* path, int* err) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
    if (n <= 0) { *err = batch__win32_errno(GetLastError()); return NULL; }
    WCHAR* w = (WCHAR*)malloc((size_t)n * sizeof *w);
    if (!w) { *err = ENOMEM; return NULL; }
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, w, n) != n) {
        *err = batch__win32_errno(GetLastError());
        free(w);
        return NULL;
    }
    return w;
}

/* A security descriptor whose DACL grants the process's user all access and nobody else
   anything, protected from the ACEs the directory would pass on: mode 0600. *mem holds the
   user's SID and the ACL (free it after CreateFileW). 0 or an errno. */
BATCH__PRIVATE int batch__wio_private_sd(SECURITY_DESCRIPTOR* sd, void** mem) {
    HANDLE tok;
    DWORD n = 0;
    *mem = NULL;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) return batch__win32_errno(GetLastError());
    if (!GetTokenInformation(tok, TokenUser, NULL, 0, &n) && GetLastError() != ERROR_INSUFFICIENT_BUFFER) {
        DWORD e = GetLastError();
        CloseHandle(tok);
        return batch__win32_errno(e);
    }
    size_t at = ((size_t)n + 7) & ~(size_t)7, acl_max = sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE) + SECURITY_MAX_SID_SIZE;
    unsigned char* m = (unsigned char*)malloc(at + acl_max);
    if (!m) { CloseHandle(tok); return ENOMEM; }
    TOKEN_USER* tu = (TOKEN_USER*)(void*)m;
    ACL* acl = (ACL*)(void*)(m + at);
    BOOL ok = GetTokenInformation(tok, TokenUser, tu, n, &n) &&
              InitializeAcl(acl, (DWORD)(sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE) + GetLengthSid(tu->User.Sid)), ACL_REVISION) &&
              AddAccessAllowedAce(acl, ACL_REVISION, FILE_ALL_ACCESS, tu->User.Sid) &&
              InitializeSecurityDescriptor(sd, SECURITY_DESCRIPTOR_REVISION) &&
              SetSecurityDescriptorDacl(sd, TRUE, acl, FALSE) &&
              SetSecurityDescriptorControl(sd, SE_DACL_PROTECTED, SE_DACL_PROTECTED);
    DWORD e = ok ? 0 : GetLastError();
    CloseHandle(tok);
    if (!ok) { free(m); return batch__win32_errno(e); }
    *mem = m;
    return 0;
}

BATCH__PRIVATE int batch__wio_open(void* user, const char* path, intptr_t* out) {
    (void)user;
    int e = 0;
    WCHAR* w = batch__wio_wpath(path, &e);
    if (!w) return e;
    SECURITY_DESCRIPTOR sd;
    void* mem = NULL;
    if ((e = batch__wio_private_sd(&sd, &mem)) != 0) { free(w); return e; }
    SECURITY_ATTRIBUTES sa = { sizeof sa, &sd, FALSE };   /* FALSE: not inherited (O_CLOEXEC) */
    /* every share mode, as a POSIX file has: others may read it, and rename or delete it */
    HANDLE h = CreateFileW(w, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           &sa, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    e = h == INVALID_HANDLE_VALUE ? batch__win32_errno(GetLastError()) : 0;
    free(mem);
    free(w);
    if (e) return e;
    BY_HANDLE_FILE_INFORMATION fi;
    if (!GetFileInformationByHandle(h, &fi)) e = batch__win32_errno(GetLastError());
    else if (fi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) e = ELOOP;   /* a link: refused, O_NOFOLLOW's error */
    if (e) { CloseHandle(h); return e; }
    *out = (intptr_t)h;
    return 0;
}
/* ReadFile and WriteFile move at most a DWORD: callers loop over short counts anyway. */
#define BATCH__WIO_MAX ((size_t)1 << 30)
BATCH__PRIVATE int batch__wio_read(void* user, intptr_t h, void* buf, size_t n, uint64_t off, size_t* done) {
    (void)user;
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    DWORD got = 0;
    if (!ReadFile((HANDLE)h, buf, (DWORD)(n < BATCH__WIO_MAX ? n : BATCH__WIO_MAX), &got, &ov)) {
        DWORD e = GetLastError();
        if (e != ERROR_HANDLE_EOF) return batch__win32_errno(e);
        got = 0;   /* at or past the end: 0 bytes, as pread */
    }
    *done = got;
    return 0;
}
BATCH__PRIVATE int batch__wio_write(void* user, intptr_t h, const void* buf, size_t n, uint64_t off, size_t* done) {
    (void)user;
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    DWORD put = 0;
    if (!WriteFile((HANDLE)h, buf, (DWORD)(n < BATCH__WIO_MAX ? n : BATCH__WIO_MAX), &put, &ov)) return batch__win32_errno(GetLastError());
    *done = put;
    return 0;
}
BATCH__PRIVATE int batch__wio_sync(void* user, intptr_t h) {
    (void)user;
    return FlushFileBuffers((HANDLE)h) ? 0 : batch__win32_errno(GetLastError());
}
BATCH__PRIVATE int batch__wio_truncate(void* user, intptr_t h, uint64_t size) {
    (void)user;
    FILE_END_OF_FILE_INFO eof;
    eof.EndOfFile.QuadPart = (LONGLONG)size;
    return SetFileInformationByHandle((HANDLE)h, FileEndOfFileInfo, &eof, sizeof eof) ? 0 : batch__win32_errno(GetLastError());
}
BATCH__PRIVATE int batch__wio_size(void* user, intptr_t h, uint64_t* size) {
    (void)user;
    BY_HANDLE_FILE_INFORMATION fi;
    LARGE_INTEGER sz;
    if (GetFileType((HANDLE)h) != FILE_TYPE_DISK) return EINVAL;   /* a journal is a regular file */
    if (!GetFileInformationByHandle((HANDLE)h, &fi)) return batch__win32_errno(GetLastError());
    if (fi.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE | FILE_ATTRIBUTE_REPARSE_POINT)) return EINVAL;
    if (!GetFileSizeEx((HANDLE)h, &sz)) return batch__win32_errno(GetLastError());
    *size = (uint64_t)sz.QuadPart;
    return 0;
}
BATCH__PRIVATE void batch__wio_close(void* user, intptr_t h) {
    (void)user;
    CloseHandle((HANDLE)h);
}

/* LockFileEx on one byte far past any data: Windows locks are mandatory for the range they
   cover, and the records must stay readable by a shared holder and writable by the exclusive one. */
#define BATCH__WLOCK_OFFSET 0x7FFFFFFF00000000ull
BATCH__PRIVATE int batch__file_lock(intptr_t h, bool exclusive) {
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)(BATCH__WLOCK_OFFSET & 0xFFFFFFFFu);
    ov.OffsetHigh = (DWORD)(BATCH__WLOCK_OFFSET >> 32);
    if (!LockFileEx((HANDLE)h, exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0, 0, 1, 0, &ov))
        return batch__win32_errno(GetLastError());
    return 0;
}
BATCH__PRIVATE void batch__file_unlock(intptr_t h) {
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)(BATCH__WLOCK_OFFSET & 0xFFFFFFFFu);
    ov.OffsetHigh = (DWORD)(BATCH__WLOCK_OFFSET >> 32);
    (void)UnlockFileEx((HANDLE)h, 0, 1, 0, &ov);
}
/* Replaces `to` (which other handles may hold open) with `from`: a rename with POSIX semantics
   (Windows 10 1709+ on NTFS), else MoveFileEx, which fails while `to` is open: EBUSY. */
BATCH__PRIVATE int batch__file_rename(const char* from, const char* to) {
    int e = 0;
    WCHAR* wf = batch__wio_wpath(from, &e);
    if (!wf) return e;
    WCHAR* wt = batch__wio_wpath(to, &e);
    if (!wt) { free(wf); return e; }
    size_t tl = wcslen(wt) * sizeof(WCHAR);
    FILE_RENAME_INFO* ri = (FILE_RENAME_INFO*)calloc(1, sizeof *ri + tl);
    HANDLE h = ri ? CreateFileW(wf, DELETE | SYNCHRONIZE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                                OPEN_EXISTING, FILE_FLAG_OPEN_REPARSE_POINT, NULL) : INVALID_HANDLE_VALUE;
    BOOL ok = FALSE;
    if (h != INVALID_HANDLE_VALUE) {
        DWORD flags = 0x1 | 0x2;   /* FILE_RENAME_FLAG_REPLACE_IF_EXISTS | FILE_RENAME_FLAG_POSIX_SEMANTICS */
        memcpy(ri, &flags, sizeof flags);   /* the union's Flags (ReplaceIfExists in older headers) */
        ri->FileNameLength = (DWORD)tl;
        memcpy(ri->FileName, wt, tl);
        ok = SetFileInformationByHandle(h, (FILE_INFO_BY_HANDLE_CLASS)22 /* FileRenameInfoEx */, ri, (DWORD)(sizeof *ri + tl));
        CloseHandle(h);
    }
    free(ri);
    if (!ok && !MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
        DWORD w = GetLastError();
        e = (w == ERROR_ACCESS_DENIED || w == ERROR_SHARING_VIOLATION) ? EBUSY : batch__win32_errno(w);
    }
    free(wf);
    free(wt);
    return e;
}
BATCH__PRIVATE void batch__file_remove(const char* path) {
    int e = 0;
    WCHAR* w = batch__wio_wpath(path, &e);
    if (w) { (void)DeleteFileW(w); free(w); }
}
BATCH__PRIVATE int batch__file_stat(intptr_t h, uint64_t* size, bool* gone) {
    BY_HANDLE_FILE_INFORMATION fi;
    if (!GetFileInformationByHandle((HANDLE)h, &fi)) return batch__win32_errno(GetLastError());
    *size = ((uint64_t)fi.nFileSizeHigh << 32) | fi.nFileSizeLow;
    *gone = fi.nNumberOfLinks == 0;
    return 0;
}
BATCH__PRIVATE uint64_t batch__wall_ns(void) {
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);   /* 100 ns units since 1601 */
    uint64_t t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    return (t - 116444736000000000ull) * 100u;
}

static const batch_journal_io batch__win32_io = {
    batch__wio_open, batch__wio_read, batch__wio_write, batch__wio_sync,
    batch__wio_truncate, batch__wio_size, batch__wio_close, NULL
};
BATCH_API const batch_journal_io* batch_journal_win32_io(void) { return &batch__win32_io; }
#else
BATCH_API const batch_journal_io* batch_journal_win32_io(void) { return NULL; }
#endif
#if !defined(BATCH__POSIX_IO) && !defined(BATCH__WIN32_IO)
/* No file I/O (BATCH_NO_JOURNAL, bare metal): queues do not open. */
BATCH__PRIVATE int batch__file_lock(intptr_t h, bool exclusive) { (void)h; (void)exclusive; return ENOSYS; }
BATCH__PRIVATE void batch__file_unlock(intptr_t h) { (void)h; }
BATCH__PRIVATE int batch__file_rename(const char* from, const char* to) { (void)from; (void)to; return ENOSYS; }
BATCH__PRIVATE int batch__file_stat(intptr_t h, uint64_t* size, bool* gone) { (void)h; (void)size; (void)gone; return ENOSYS; }
BATCH__PRIVATE void batch__file_remove(const char* path) { (void)path; }
BATCH__PRIVATE uint64_t batch__wall_ns(void) { return batch_now_ns(); }
#endif

/* The I/O of a journal without hooks: POSIX, or Win32 on Windows; NULL with BATCH_NO_JOURNAL. */
BATCH__PRIVATE const batch_journal_io* batch__journal_default_io(void) {
    const batch_journal_io* io = batch_journal_posix_io();
    return io ? io : batch_journal_win32_io();
}

/* ---- the journal -------------------------------------------------------------------------- */
enum { BATCH__JKIND_GRAPH = 1, BATCH__JKIND_MAP = 2, BATCH__JKIND_QUEUE = 3 };
#define BATCH__JVERSION 1u
#define BATCH__JHEADER 32u
#define BATCH__JREC 8u                 /* length + CRC before each payload */
#define BATCH__JBUFFERED ((size_t)64 * 1024)

typedef struct batch__journal {
    batch_journal_io io;
    intptr_t h;
    void* alloc_ctx;
    batch__mutex lock;
    uint64_t end;                 /* where the next record goes */
    unsigned char* buf;           /* records not yet written */
    size_t used, cap;
    batch_durability dur;
    int sync_every, unsynced;
    int err;                      /* the first failed call's errno; no write after it */
    size_t max_payload;
} batch__journal;

/* Called for each valid record on open: BATCH_OK (applied), BATCH__JDROP (not applied: its work
   runs again, so the record is removed from the journal before the run appends a new one), or
   BATCH_ERR_CORRUPT when it does not fit the job (nothing is then run from the journal). */
#define BATCH__JDROP ((batch_result)2)
typedef batch_result (*batch__jreplay_fn)(void* arg, const unsigned char* payload, size_t len);

BATCH__PRIVATE bool batch__journal_desc_ok(const batch_journal_desc* d) {
    if (!d->path) return !d->io && !d->fingerprint && !d->durability && !d->sync_every && !d->rerun_failed;
    if (!d->path[0] || BATCH__ENUM_BAD(d->durability, BATCH_DURABLE_BUFFERED + 1)) return false;
    if (d->sync_every < 0) return false;
    const batch_journal_io* io = d->io ? d->io : batch__journal_default_io();
    return io && io->open && io->read && io->write && io->sync && io->truncate && io->size && io->close;
}

/* Reads exactly n bytes at off: 0, or an errno (EIO for a file shorter than expected). */
BATCH__PRIVATE int batch__jread(batch__journal* j, void* buf, size_t n, uint64_t off) {
    unsigned char* p = (unsigned char*)buf;
    while (n) {
        size_t got = 0;
        int e = j->io.read(j->io.user, j->h, p, n, off, &got);
        if (e) return e;
        if (got == 0 || got > n) return EIO;
        p += got; n -= got; off += got;
    }
    return 0;
}

/* Writes the buffer at the end of the file; lock held. A failure is kept in j->err: the file
   then ends in a torn record at worst, which the next open cuts off. */
BATCH__PRIVATE int batch__jflush(batch__journal* j) {
    size_t at = 0;
    while (!j->err && at < j->used) {
        size_t put = 0;
        int e = j->io.write(j->io.user, j->h, j->buf + at, j->used - at, j->end, &put);
        if (!e && (put == 0 || put > j->used - at)) e = EIO;
        if (e) { j->err = e; break; }
        at += put;
        j->end += put;
    }
    j->used = 0;
    return j->err;
}

BATCH__PRIVATE int batch__jsync(batch__journal* j) {
    if (!j->err && j->unsynced) {
        int e = j->io.sync(j->io.user, j->h);
        if (e) j->err = e;
        j->unsynced = 0;
    }
    return j->err;
}

BATCH__PRIVATE bool batch__jreserve(batch__journal* j, size_t n) {
    if (n <= j->cap) return true;
    size_t c = j->cap ? j->cap : 256;
    while (c < n) c *= 2;
    unsigned char* b = (unsigned char*)BATCH_REALLOC(j->buf, c, j->alloc_ctx);
    if (!b) return false;
    j->buf = b;
    j->cap = c;
    return true;
}

BATCH__PRIVATE void batch__journal_free(batch__journal* j) {
    if (!j) return;
    if (j->h >= 0) j->io.close(j->io.user, j->h);
    if (j->buf) BATCH_FREE(j->buf, j->alloc_ctx);
    batch__mutex_destroy(&j->lock);
    BATCH_FREE(j, j->alloc_ctx);
}

BATCH__PRIVATE batch_result batch__errno_result(int e) { return e == ENOMEM ? BATCH_ERR_NOMEM : BATCH_ERR_IO; }

/* Removes the dropped records: reads the kept ones into memory, cuts the file after the header
   and writes them back. A crash in between loses journaled progress (the work runs again), never
   correctness: the file is always a valid prefix of non-overlapping records. */
BATCH__PRIVATE batch_result batch__journal_compact(batch__journal* j, const unsigned char* dropped, size_t nrec, uint64_t kept) {
    if (kept > SIZE_MAX / 2) return BATCH_ERR_NOMEM;
    unsigned char* keep = (unsigned char*)BATCH_MALLOC(kept ? (size_t)kept : 1, j->alloc_ctx);
    if (!keep) return BATCH_ERR_NOMEM;
    uint64_t off = BATCH__JHEADER;
    size_t at = 0;
    int e = 0;
    for (size_t i = 0; i < nrec && !e; i++) {
        unsigned char h[BATCH__JREC];
        if ((e = batch__jread(j, h, BATCH__JREC, off)) != 0) break;
        uint32_t len = batch__get32(h);
        if (!(dropped[i / 8] & (1u << (i % 8)))) {
            memcpy(keep + at, h, BATCH__JREC);
            e = batch__jread(j, keep + at + BATCH__JREC, len, off + BATCH__JREC);
            at += BATCH__JREC + len;
        }
        off += BATCH__JREC + len;
    }
    if (!e) e = j->io.truncate(j->io.user, j->h, BATCH__JHEADER);
    if (!e) {
        j->end = BATCH__JHEADER;
        size_t cap = j->cap;   /* write from `keep` through the buffer's flush path */
        unsigned char* buf = j->buf;
        j->buf = keep; j->used = at; j->cap = (size_t)kept;
        j->unsynced = 1;
        batch__jflush(j);
        if (j->dur == BATCH_DURABLE_MACHINE) batch__jsync(j);
        j->buf = buf; j->cap = cap; j->used = 0;
        e = j->err;
    }
    BATCH_FREE(keep, j->alloc_ctx);
    return e ? batch__errno_result(e) : BATCH_OK;
}

/* Is [off, size) all zero bytes? 0 if so, -1 if not, else an errno. A power loss during an
   append can leave the file longer than what reached the disk, the rest reading as zeros (the
   file system extended the file before the data was written): a torn append, cut off like any
   other. A zero length followed by anything else was never written by a journal. */
BATCH__PRIVATE int batch__jzero_tail(batch__journal* j, uint64_t off, uint64_t size) {
    while (off < size) {
        size_t n = size - off < (uint64_t)j->cap ? (size_t)(size - off) : j->cap;
        int e = batch__jread(j, j->buf, n, off);
        if (e) return e;
        for (size_t i = 0; i < n; i++) if (j->buf[i]) return -1;
        off += n;
    }
    return 0;
}

/* A journal file shorter than a header: new, or a header cut short by a crash (then what is
   there is a prefix of ours). Writes the header `want`. */
BATCH__PRIVATE batch_result batch__journal_start(batch__journal* j, const batch_journal_desc* d, const unsigned char* want,
                                                 uint64_t size) {
    unsigned char hdr[BATCH__JHEADER];
    int e;
    if (size && ((e = batch__jread(j, hdr, (size_t)size, 0)) != 0)) return batch__errno_result(e);
    if (size && memcmp(hdr, want, (size_t)size) != 0)   /* not ours, or another job's */
        return memcmp(hdr, want, size < 8 ? (size_t)size : 8) == 0 ? BATCH_ERR_MISMATCH : BATCH_ERR_CORRUPT;
    memcpy(j->buf, want, BATCH__JHEADER);
    j->used = BATCH__JHEADER;
    j->end = 0;
    if (size && (e = j->io.truncate(j->io.user, j->h, 0)) != 0) return batch__errno_result(e);
    j->unsynced = 1;
    if (batch__jflush(j) || (j->dur == BATCH_DURABLE_MACHINE && batch__jsync(j))) return batch__errno_result(j->err);
    /* MACHINE: the new file's name must survive a power loss too (POSIX I/O only; see batch__sync_dir) */
    if (j->dur == BATCH_DURABLE_MACHINE && !d->io && (e = batch__sync_dir(d->path)) != 0) return batch__errno_result(e);
    return BATCH_OK;
}

/* The header of an existing journal against `want`: BATCH_ERR_CORRUPT (not a journal, another
   version, a bad CRC), BATCH_ERR_MISMATCH (another job's), BATCH_ERR_IO. */
BATCH__PRIVATE batch_result batch__journal_header(batch__journal* j, const unsigned char* want) {
    unsigned char hdr[BATCH__JHEADER];
    int e = batch__jread(j, hdr, BATCH__JHEADER, 0);
    if (e) return batch__errno_result(e);
    if (memcmp(hdr, want, 8) != 0 || batch__get32(hdr + 8) != BATCH__JVERSION || batch__get32(hdr + 28) != batch__crc32c(hdr, 28))
        return BATCH_ERR_CORRUPT;
    return memcmp(hdr, want, BATCH__JHEADER) != 0 ? BATCH_ERR_MISMATCH : BATCH_OK;
}

/* The records after a valid header: replays the valid prefix through replay(arg), cuts what
   follows it (a torn or untrusted tail), and removes the records replay dropped. */
BATCH__PRIVATE batch_result batch__journal_replay(batch__journal* j, uint64_t size, batch__jreplay_fn replay, void* arg) {
    batch_result r = BATCH_OK;
    unsigned char* dropped = NULL;   /* one bit per record replayed: not applied */
    uint64_t off = BATCH__JHEADER, kept_bytes = 0;
    size_t nrec = 0, capbits = 0;
    bool any_drop = false;
    int e;
    while (off < size) {
        if (size - off < BATCH__JREC) break;   /* torn */
        if ((e = batch__jread(j, j->buf, BATCH__JREC, off)) != 0) { r = batch__errno_result(e); goto out; }
        uint32_t len = batch__get32(j->buf), crc = batch__get32(j->buf + 4);
        if (len == 0 && crc == 0) {   /* zeros to the end: a torn append (cut); else corrupt */
            if ((e = batch__jzero_tail(j, off + BATCH__JREC, size)) != 0) { r = e < 0 ? BATCH_ERR_CORRUPT : batch__errno_result(e); goto out; }
            break;
        }
        if (len == 0 || len > j->max_payload) { r = BATCH_ERR_CORRUPT; goto out; }   /* never written so */
        if (size - off - BATCH__JREC < len) break;                                     /* torn */
        if ((e = batch__jread(j, j->buf, len, off + BATCH__JREC)) != 0) { r = batch__errno_result(e); goto out; }
        if (batch__crc32c(j->buf, len) != crc) break;                                  /* not trusted, nor what follows */
        r = replay(arg, j->buf, len);
        if (r != BATCH_OK && r != BATCH__JDROP) goto out;
        if (nrec / 8 >= capbits) {
            size_t nc = capbits ? capbits * 2 : 64;
            unsigned char* b = (unsigned char*)BATCH_REALLOC(dropped, nc, j->alloc_ctx);
            if (!b) { r = BATCH_ERR_NOMEM; goto out; }
            memset(b + capbits, 0, nc - capbits);
            dropped = b;
            capbits = nc;
        }
        if (r == BATCH__JDROP) { dropped[nrec / 8] |= (unsigned char)(1u << (nrec % 8)); any_drop = true; }
        else kept_bytes += BATCH__JREC + len;
        r = BATCH_OK;
        nrec++;
        off += BATCH__JREC + len;
    }
    if (off < size && (e = j->io.truncate(j->io.user, j->h, off)) != 0) { r = batch__errno_result(e); goto out; }
    j->end = off;
    if (any_drop) r = batch__journal_compact(j, dropped, nrec, kept_bytes);
out:
    if (dropped) BATCH_FREE(dropped, j->alloc_ctx);
    return r;
}

/* The header a journal of this kind, fingerprint and accumulator size starts with. */
BATCH__PRIVATE void batch__journal_want(unsigned char want[BATCH__JHEADER], uint32_t kind, uint64_t fp, uint32_t acc_size) {
    static const unsigned char magic[8] = { 'B', 'A', 'T', 'C', 'H', 'J', 'N', 'L' };
    memcpy(want, magic, sizeof magic);
    batch__put32(want + 8, BATCH__JVERSION);
    batch__put32(want + 12, kind);
    batch__put64(want + 16, fp);
    batch__put32(want + 24, acc_size);
    batch__put32(want + 28, batch__crc32c(want, 28));
}

/* A journal object with its file open (not read) and a buffer of `buffer` bytes; *size gets
   the file's size. On any error nothing is left open. */
BATCH__PRIVATE batch_result batch__journal_new(batch__journal** out, const batch_journal_desc* d, size_t max_payload,
                                               size_t buffer, uint64_t* size, void* alloc_ctx) {
    *out = NULL;
    batch__journal* j = (batch__journal*)BATCH_MALLOC(sizeof *j, alloc_ctx);
    if (!j) return BATCH_ERR_NOMEM;
    memset(j, 0, sizeof *j);
    j->alloc_ctx = alloc_ctx;
    j->io = *(d->io ? d->io : batch__journal_default_io());
    j->h = -1;
    j->dur = d->durability;
    j->sync_every = d->sync_every ? d->sync_every : 1;
    j->max_payload = max_payload;
    if (!batch__mutex_init(&j->lock)) { BATCH_FREE(j, alloc_ctx); return BATCH_ERR_NOMEM; }
    intptr_t h = -1;
    int e = j->io.open(j->io.user, d->path, &h);
    if (e) { batch__journal_free(j); return batch__errno_result(e); }
    j->h = h;
    batch_result r = BATCH_OK;
    if ((e = j->io.size(j->io.user, j->h, size)) != 0) r = batch__errno_result(e);
    else if (!batch__jreserve(j, buffer)) r = BATCH_ERR_NOMEM;
    if (r != BATCH_OK) { batch__journal_free(j); return r; }
    *out = j;
    return BATCH_OK;
}

/* Opens (or creates) the journal of a job and replays its valid records through replay(arg).
   max_payload bounds a record (larger: corrupt). On any error nothing is left open. */
BATCH__PRIVATE batch_result batch__journal_open(batch__journal** out, const batch_journal_desc* d, uint32_t kind,
                                                uint64_t fp, uint32_t acc_size, size_t max_payload,
                                                batch__jreplay_fn replay, void* arg, void* alloc_ctx) {
    unsigned char want[BATCH__JHEADER];
    batch__journal_want(want, kind, fp, acc_size);
    uint64_t size = 0;
    batch__journal* j;
    /* the buffer, as big as appends will ever need (a buffered journal's 64 KiB and a record):
       no allocation while the job runs */
    size_t buffer = BATCH__JREC + max_payload + (d->durability == BATCH_DURABLE_BUFFERED ? BATCH__JBUFFERED : 0);
    batch_result r = batch__journal_new(&j, d, max_payload, buffer, &size, alloc_ctx);
    if (r != BATCH_OK) return r;
    if (size < BATCH__JHEADER) r = batch__journal_start(j, d, want, size);
    else if ((r = batch__journal_header(j, want)) == BATCH_OK) r = batch__journal_replay(j, size, replay, arg);
    if (r != BATCH_OK) { batch__journal_free(j); return r; }
    *out = j;
    return BATCH_OK;
}

/* Appends one record of at most max_payload bytes (any thread; no allocation: the buffer was
   made at open). After a failed write every append fails: BATCH_ERR_IO (the job stops). */
BATCH__PRIVATE batch_result batch__journal_append(batch__journal* j, const unsigned char* payload, size_t len) {
    batch__mutex_lock(&j->lock);
    batch_result r = BATCH_OK;
    if (j->err) r = batch__errno_result(j->err);
    else if (len > j->max_payload || !batch__jreserve(j, j->used + BATCH__JREC + len)) { j->err = ENOMEM; r = BATCH_ERR_NOMEM; }
    else {
        unsigned char* p = j->buf + j->used;
        batch__put32(p, (uint32_t)len);
        batch__put32(p + 4, batch__crc32c(payload, len));
        memcpy(p + BATCH__JREC, payload, len);
        j->used += BATCH__JREC + len;
        j->unsynced++;
        if (j->dur != BATCH_DURABLE_BUFFERED || j->used >= BATCH__JBUFFERED) batch__jflush(j);
        if (j->dur == BATCH_DURABLE_MACHINE && j->unsynced >= j->sync_every) batch__jsync(j);
        if (j->err) r = batch__errno_result(j->err);
    }
    batch__mutex_unlock(&j->lock);
    return r;
}

/* Writes what is buffered, syncs (MACHINE), closes and frees: the first failure's code. */
BATCH__PRIVATE batch_result batch__journal_close(batch__journal* j) {
    if (!j) return BATCH_OK;
    batch__jflush(j);
    if (j->dur == BATCH_DURABLE_MACHINE) batch__jsync(j);
    batch_result r = j->err ? batch__errno_result(j->err) : BATCH_OK;
    batch__journal_free(j);
    return r;
}

#endif /* BATCH__JOURNAL_C */
/* ---- end batch_impl/journal.c ---- */
/* ---- begin batch_impl/sizing.c ---- */
/* sizing.c - complexity classes and the keyed sizing registry (an stb_ds string map, created
   and changed only on the calling thread, under the stb_ds allocation guard). */
#ifndef BATCH__SIZING_C
#define BATCH__SIZING_C
#ifndef BATCH_SINGLE_FILE
#  include "internal.h"
#endif

typedef struct batch__sizing_value { batch_complexity cls; uint64_t cost_ns; } batch__sizing_value;
typedef struct batch__sizing_entry { char* key; batch__sizing_value value; } batch__sizing_entry;

struct batch_sizing {
    void* alloc_ctx;
    size_t size[BATCH_COMPLEXITY_COUNT_];   /* [0] default */
    size_t min_size, max_size;
    batch__sizing_entry* map;
};

static const size_t batch__default_class_size[BATCH_COMPLEXITY_COUNT_] = { 10, 50, 20, 10, 5 };

/* stb_ds operations, run under the allocation guard (batch__ds_guarded, internal.h). */
typedef struct batch__sizing_op { batch_sizing* s; char* key; batch__sizing_value v; } batch__sizing_op;
BATCH__PRIVATE void batch__ds_sizing_put(void* a) { batch__sizing_op* o = (batch__sizing_op*)a; stbds_shput(o->s->map, o->key, o->v); }
/* allocates the empty map, so that later gets never allocate */
BATCH__PRIVATE void batch__ds_sizing_make(void* a) { batch__sizing_op* o = (batch__sizing_op*)a; (void)stbds_shgeti(o->s->map, ""); }

BATCH_API batch_result batch_sizing_create(batch_sizing** out, const batch_sizing_desc* desc) {
    if (!out) return BATCH_ERR_INVALID;
    *out = NULL;
    batch_sizing_desc d;
    memset(&d, 0, sizeof d);
    if (desc) d = *desc;
    size_t mn = d.min_size ? d.min_size : 1, mx = d.max_size ? d.max_size : ((size_t)1 << 20);
    if (mn > mx) return BATCH_ERR_INVALID;
    batch_sizing* s = (batch_sizing*)BATCH_MALLOC(sizeof *s, d.alloc_ctx);
    if (!s) return BATCH_ERR_NOMEM;
    memset(s, 0, sizeof *s);
    s->alloc_ctx = d.alloc_ctx;
    for (int i = 0; i < BATCH_COMPLEXITY_COUNT_; i++) s->size[i] = d.class_size[i] ? d.class_size[i] : batch__default_class_size[i];
    s->min_size = mn;
    s->max_size = mx;
    batch__sizing_op op = { s, NULL, { BATCH_COMPLEXITY_DEFAULT, 0 } };
    if (batch__ds_guarded(batch__ds_sizing_make, &op) != BATCH_OK) { BATCH_FREE(s, d.alloc_ctx); return BATCH_ERR_NOMEM; }
    *out = s;
    return BATCH_OK;
}

BATCH_API batch_result batch_sizing_destroy(batch_sizing* s) {
    if (!s) return BATCH_OK;
    for (ptrdiff_t i = 0; i < stbds_shlen(s->map); i++) BATCH_FREE(s->map[i].key, s->alloc_ctx);
    stbds_shfree(s->map);
    BATCH_FREE(s, s->alloc_ctx);
    return BATCH_OK;
}

BATCH__PRIVATE ptrdiff_t batch__sizing_find(const batch_sizing* s, const char* key) {
    batch__sizing_entry* m = s->map;   /* the map exists: shgeti does not allocate */
    return stbds_shgeti(m, (char*)(uintptr_t)key);
}

/* Inserts or updates key; `v` gets the entry's current value (or zeros) first when update is set. */
BATCH__PRIVATE batch_result batch__sizing_store(batch_sizing* s, const char* key, batch__sizing_value v) {
    ptrdiff_t i = batch__sizing_find(s, key);
    if (i >= 0) { s->map[i].value = v; return BATCH_OK; }
    char* copy = batch__strdup(key, s->alloc_ctx);
    if (!copy) return BATCH_ERR_NOMEM;
    batch__sizing_op op = { s, copy, v };
    if (batch__ds_guarded(batch__ds_sizing_put, &op) != BATCH_OK) { BATCH_FREE(copy, s->alloc_ctx); return BATCH_ERR_NOMEM; }
    return BATCH_OK;
}

BATCH_API batch_result batch_sizing_set(batch_sizing* s, const char* key, batch_complexity c) {
    if (!s || !key || BATCH__ENUM_BAD(c, BATCH_COMPLEXITY_COUNT_)) return BATCH_ERR_INVALID;
    ptrdiff_t i = batch__sizing_find(s, key);
    batch__sizing_value v = { c, i >= 0 ? s->map[i].value.cost_ns : 0 };
    return batch__sizing_store(s, key, v);
}

BATCH_API batch_complexity batch_sizing_class(const batch_sizing* s, const char* key) {
    if (!s || !key) return BATCH_COMPLEXITY_DEFAULT;
    ptrdiff_t i = batch__sizing_find(s, key);
    return i >= 0 ? s->map[i].value.cls : BATCH_COMPLEXITY_DEFAULT;
}

BATCH__PRIVATE size_t batch__clamp(size_t v, size_t lo, size_t hi) { return v < lo ? lo : v > hi ? hi : v; }

BATCH_API size_t batch_sizing_class_size(const batch_sizing* s, batch_complexity c) {
    if (BATCH__ENUM_BAD(c, BATCH_COMPLEXITY_COUNT_)) return 0;
    return s ? batch__clamp(s->size[c], s->min_size, s->max_size) : batch__default_class_size[c];
}

BATCH_API size_t batch_sizing_size(const batch_sizing* s, const char* key) {
    return batch_sizing_class_size(s, batch_sizing_class(s, key));
}

BATCH_API uint64_t batch_sizing_cost(const batch_sizing* s, const char* key) {
    if (!s || !key) return 0;
    ptrdiff_t i = batch__sizing_find(s, key);
    return i >= 0 ? s->map[i].value.cost_ns : 0;
}

BATCH_API batch_result batch_sizing_record_cost(batch_sizing* s, const char* key, uint64_t ns) {
    if (!s || !key || ns == 0) return BATCH_ERR_INVALID;
    ptrdiff_t i = batch__sizing_find(s, key);
    batch__sizing_value v = { BATCH_COMPLEXITY_DEFAULT, ns };
    if (i >= 0) {
        v = s->map[i].value;
        v.cost_ns = v.cost_ns ? (v.cost_ns + ns + 1) / 2 : ns;   /* EMA, weight 1/2 */
    }
    return batch__sizing_store(s, key, v);
}

#endif /* BATCH__SIZING_C */
/* ---- end batch_impl/sizing.c ---- */
/* ---- begin batch_impl/graph.c ---- */
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
/* ---- end batch_impl/graph.c ---- */
/* ---- begin batch_impl/map.c ---- */
/* map.c - batched maps: items in batches on the pool, per-batch SUCCESS / PARTIAL_SUCCESS /
   FAILED by failure ratio, whole-batch retries through the delayed queue, delivery in
   completion or batch order to a callback or an iterator, streaming fold, backpressure, halt,
   adaptive sizing.

   A map owns max_in_flight slots. A slot holds one batch from dispatch until it is delivered
   (or, for the iterator, until the consumer moves on): memory is O(slots x batch size). The
   job lock guards the input cursor, the slots' states, delivery and the job's accumulator;
   running a batch's items and folding them into the batch's own accumulator happen outside it.
   The latch counts live slots plus one "dispatch token" held until no batch will start again. */
#ifndef BATCH__MAP_C
#define BATCH__MAP_C
#ifndef BATCH_SINGLE_FILE
#  include "journal.c"
#  include "sizing.c"
#endif

/* The default max_batch. Items that cost nanoseconds hit this cap long before the adaptive
   target (200 us), and then the per-batch hand-off is what a smaller cap costs (bench/README.md:
   map_trivial, "max_batch"). The cap rises from 4096 to 16384 only while a slot's per-item
   memory (pulled items, and the codes and results that on_batch or the iterator show, or that
   an items_fn writes) stays within BATCH__SLOT_BYTES: heavy slots keep 4096. */
#define BATCH__DEFAULT_MAX_BATCH 16384u
#define BATCH__SLOT_BYTES ((size_t)256 << 10)

enum { BATCH__SLOT_FREE, BATCH__SLOT_RUNNING, BATCH__SLOT_FINISHED, BATCH__SLOT_QUEUED, BATCH__SLOT_HELD };
BATCH__PRIVATE void batch__mslot_task(batch_pool* p, void* user);

typedef struct batch__mslot {
    struct batch__mjob* job;
    int state;
    size_t batch_index, first, count, cap;
    batch_item* items;            /* pull sources only */
    int* codes;
    unsigned char* results;
    batch_item_error* errors;
    char* msgs;                   /* errcap x BATCH_MESSAGE_MAX */
    size_t nerrors, errcap;
    void* acc;
    size_t succeeded, failed;
    batch_batch_status status;
    uint64_t exec_ns, retry_due;  /* retry_due: a retry waits until then (0: not waiting) */
    uint64_t start_ns;            /* of the last attempt */
    int retries_used, worker;
    bool unrun;                   /* source: handed out, never run (BATCH__NOT_RUN) */
    bool permanent;               /* an item failed with batch_ctx_fail_permanent: no batch retry */
    struct batch__mslot* next;    /* free list, iterator queue, submit list */
    batch_batch view;
} batch__mslot;

/* ---- the map's seam for mpi.c ---------------------------------------------------------------
   A map spread over processes is two kinds of map job, driven through these functions only:
   - a source (rank 0) cuts the input, sizes, delivers in order, folds, journals and halts as
     any map, but runs no item: it hands out the ranges of its batches and takes back their
     outcomes;
   - an executor (every rank) runs batches whose ranges are pushed to it, on its own pool, with
     the threshold and whole-batch retry rules, and gives back their outcomes.
   Any thread; each takes the job lock inside. The jobs are batch_job handles: mpi.c sees no
   field of a map job. Besides these, mpi.c checks a desc with batch__map_check and waits,
   cancels and destroys the jobs with the public calls. */
typedef struct batch__range { size_t index, first, count; } batch__range;
typedef struct batch__outcome {   /* a batch's last attempt, as the source counts and folds it */
    size_t index, succeeded, failed;
    int status;                   /* a batch_batch_status, or BATCH__NOT_RUN */
    int retries;
    uint64_t exec_ns;
    const void* acc;              /* acc_size bytes; NULL when FAILED or not run */
} batch__outcome;
enum { BATCH__NOT_RUN = -1 };     /* handed out, never run: its items count as unprocessed */
enum { BATCH__SOURCE_OPEN, BATCH__SOURCE_DONE, BATCH__SOURCE_CANCELLED };
/* Launches a source; threads: the workers of every process (for sizing). */
BATCH__PRIVATE batch_result batch__map_source_launch(batch_pool* pool, const batch_map_desc* desc, int threads, batch_job** out);
/* The next range cut and not handed out yet, in batch order; false when there is none now. */
BATCH__PRIVATE bool batch__map_source_take(batch_job* src, batch__range* out);
/* A handed-out batch's outcome: delivered, folded and journaled as if it had run here. False
   when no batch with that index is out (a protocol error). */
BATCH__PRIVATE bool batch__map_source_return(batch_job* src, const batch__outcome* o);
/* OPEN while a batch may still be cut or waits to be handed out; then DONE (the input ended, or
   a halt), or CANCELLED (a cancel, the deadline, I/O or memory: the ranges not handed out were
   dropped, their items unprocessed). */
BATCH__PRIVATE int batch__map_source_end(batch_job* src);
/* Cancels the source and drops every batch not returned yet, handed out or not. */
BATCH__PRIVATE void batch__map_source_abandon(batch_job* src);
/* Launches an executor of desc's batch rules (none of the job-wide parts) for up to
   max_in_flight ranges at a time. */
BATCH__PRIVATE batch_result batch__map_executor_launch(batch_pool* pool, const batch_map_desc* desc, int max_in_flight, batch_job** out);
/* How many more ranges the executor can take now. */
BATCH__PRIVATE int batch__map_executor_room(batch_job* ex);
/* Queues a range; it starts when a slot is free. False when there is no room. */
BATCH__PRIVATE bool batch__map_executor_push(batch_job* ex, const batch__range* r);
/* The next finished batch's outcome; false when none is ready now. o->acc stays valid until
   the next call. */
BATCH__PRIVATE bool batch__map_executor_take(batch_job* ex, batch__outcome* o);
/* No more ranges: the queued ones still run; with cancel they are taken back instead (at most
   cap, into out; their number is returned) and the job stops. */
BATCH__PRIVATE size_t batch__map_executor_stop(batch_job* ex, bool cancel, batch__range* out, size_t cap);
/* Source or executor: no batch will start again and every batch is back (waiting ends at once). */
BATCH__PRIVATE bool batch__map_idle(batch_job* job);

/* The state of the two modes above (NULL in a plain map). */
enum { BATCH__EXT_EXECUTOR = 1, BATCH__EXT_SOURCE };
typedef struct batch__map_ext {
    int mode;
    int threads;                  /* source: the workers of every process (sizing) */
    struct batch__mslot* dhead;   /* source: cut, not handed out yet, in batch order */
    struct batch__mslot** dtail;
    bool closed;                  /* executor: no range will be pushed again */
    size_t rhead, rcount;         /* executor: the ring of pushed ranges, nslots long */
    batch__range ranges[];
} batch__map_ext;

/* A delivered batch, kept for the reports when desc.keep_batches is set; or an attempt of a
   batch that a retry followed (then retries: the retries before it). */
typedef struct batch__batch_rec {
    size_t index, first, count, succeeded, failed;
    uint64_t start_ns, end_ns;    /* since launch */
    uint64_t next_ns;             /* an attempt a retry followed: the retry's start, since launch */
    int status, retries, worker;
} batch__batch_rec;

typedef struct batch__mjob {
    batch__job_head head;         /* first: operations and progress */
    batch_pool* pool;
    void* alloc_ctx;
    batch_map_desc d;
    char* key;
    batch__mutex lock;
    /* input and sizing */
    size_t next_item, next_batch;
    bool input_done, token_released;
    bool adaptive;
    size_t size, min_b, max_b;
    uint64_t target_ns, ema_ns;   /* ema: ns per item x 16 (fixed point) */
    int threads;
    /* slots */
    int nslots, running;
    batch__mslot* slots;
    batch__mslot* free_slots;
    size_t next_deliver;
    batch__mslot* iq_head;
    batch__mslot* iq_tail;
    batch__mslot* held;
    bool consumer_waiting, draining;
    batch_counter avail;
    void* acc;
    /* results (under lock) */
    batch_map_summary s;
    uint64_t conc_now;
    /* life */
    batch_counter latch;
    int dec_pending;              /* latch decrements owed, applied after the lock is released */
    _Atomic int stop;
    _Atomic int cut;              /* a stop cut a batch's retries short */
    void* slot_accs;              /* the slots' accumulators, a cache line apart (no false sharing) */
    batch__batch_rec* recs;       /* keep_batches: one per delivered batch, under the lock */
    size_t nrecs, caprecs;
    batch__batch_rec* tries;      /* keep_batches: one per attempt a retry followed, under the lock */
    size_t ntries, captries;
    batch__map_ext* ext;          /* NULL: a plain map (see batch__map_ext) */
    batch__journal* jn;           /* NULL: no journal */
    unsigned char* jrec;          /* one batch record */
    batch_result io_error;        /* why the journal failed (BATCH__STOP_IO) */
    size_t* done_ranges;          /* unordered resume: sorted, coalesced [first, end) pairs */
    size_t ndone, capdone, done_at;
    uint64_t launch_ns, deadline_ns;
    bool done;
    bool rerun_failed, replay_stopped;
} batch__mjob;

BATCH_API const char* batch_batch_status_string(batch_batch_status s) {
    static const char* const names[] = { "success", "partial_success", "failed" };
    return ((unsigned)s < 3) ? names[s] : "unknown";
}


/* ---- slots ------------------------------------------------------------------------------- */
/* Makes room for n items; job lock held. */
/* Whether delivered batches show their items (codes and results): only to on_batch and the
   iterator. A fold-only map needs one result slot per batch, reused item after item, and no
   per-item codes: its batches stay small in cache whatever their size. */
BATCH__PRIVATE bool batch__map_shows_items(const batch__mjob* m) { return m->d.on_batch || m->d.iterate; }
/* Whether a slot holds a code and a result per item: when they are shown, and for an items_fn,
   which writes every result of its run and whose codes track the items it reported. */
BATCH__PRIVATE bool batch__map_keeps_items(const batch__mjob* m) { return batch__map_shows_items(m) || m->d.items_fn; }

/* Replaces *p by a block of `bytes` (the old contents are not kept: a slot's arrays are refilled
   for every batch, and copying them would touch pages nobody reads). false: out of memory, *p
   unchanged. */
BATCH__PRIVATE bool batch__slot_regrow(void** p, size_t bytes, void* ctx) {
    void* q = BATCH_MALLOC(bytes, ctx);
    if (!q) return false;
    if (*p) BATCH_FREE(*p, ctx);
    *p = q;
    return true;
}

/* Room for n items in the slot's arrays. They grow at least twofold, so adaptive sizes that
   creep up do not reallocate on every batch. */
BATCH__PRIVATE bool batch__slot_reserve(batch__mjob* m, batch__mslot* sl, size_t n) {
    if (n <= sl->cap) return true;
    size_t grown = sl->cap * 2 < m->max_b ? sl->cap * 2 : m->max_b;
    if (n < grown) n = grown;
    void* ctx = m->alloc_ctx;
    size_t rs = m->d.result_size;
    bool shows = batch__map_keeps_items(m);
    /* a 32-bit size_t cannot hold every array of a batch near 2^30 items: out of memory */
    if (n > SIZE_MAX / sizeof(batch_item) || n > SIZE_MAX / sizeof(int) || (rs && n > SIZE_MAX / rs)) return false;
    if (shows && !batch__slot_regrow((void**)&sl->codes, n * sizeof(int), ctx)) return false;
    if (rs && (shows || (!sl->results && rs > 256)) &&   /* see batch__mslot_attempt */
        !batch__slot_regrow((void**)&sl->results, (shows ? n : 1) * rs, ctx))
        return false;
    if (m->d.pull_fn && !batch__slot_regrow((void**)&sl->items, n * sizeof(batch_item), ctx)) return false;
    sl->cap = n;
    return true;
}

/* Records a failed item's message; on a worker, without the lock. Out of memory: the code is
   kept and the message is lost. */
BATCH__PRIVATE void batch__slot_error(batch__mjob* m, batch__mslot* sl, size_t index, int code, const char* msg) {
    if (sl->nerrors == sl->errcap) {
        size_t ncap = sl->errcap ? sl->errcap * 2 : 8;
        batch_item_error* e = (batch_item_error*)BATCH_REALLOC(sl->errors, ncap * sizeof *e, m->alloc_ctx);
        if (!e) return;
        sl->errors = e;
        char* ms = (char*)BATCH_REALLOC(sl->msgs, ncap * BATCH_MESSAGE_MAX, m->alloc_ctx);
        if (!ms) return;
        sl->msgs = ms;
        sl->errcap = ncap;
    }
    size_t k = sl->nerrors++;
    sl->errors[k].index = index;
    sl->errors[k].code = code;
    sl->errors[k].message = NULL;
    if (msg) {
        memcpy(sl->msgs + k * BATCH_MESSAGE_MAX, msg, BATCH_MESSAGE_MAX);
        sl->errors[k].message = (const char*)(uintptr_t)(k + 1);   /* resolved at delivery: msgs may move */
    }
}

/* ---- sizing ------------------------------------------------------------------------------ */
BATCH__PRIVATE size_t batch__map_next_size(batch__mjob* m) {
    size_t size = m->size;
    if (m->adaptive && m->ema_ns) {
        uint64_t per = m->ema_ns / 16 ? m->ema_ns / 16 : 1;
        size = batch__sat_size(m->target_ns / per);
    }
    m->s.final_batch_size = batch__clamp(size, m->min_b, m->max_b);   /* before the taper below */
    if (m->adaptive && !m->d.pull_fn) {
        /* keep at least 4 batches per thread ahead of the end of the input */
        size_t rest = m->d.count - m->next_item;
        size_t cap = rest / (4 * (size_t)m->threads);
        if (size > cap) size = cap;
    }
    return batch__clamp(size, m->min_b, m->max_b);
}

/* True, and the job marked, when a cancel, halt or the deadline forbids another attempt. */
BATCH__PRIVATE bool batch__map_stopped(batch__mjob* m, uint64_t now) {
    if (atomic_load_explicit(&m->stop, memory_order_relaxed)) return true;
    if (m->deadline_ns && now >= m->deadline_ns) {
        int e = 0;
        atomic_compare_exchange_strong(&m->stop, &e, BATCH__STOP_DEADLINE);
        return true;
    }
    return false;
}

/* Job lock held (or launching): counts a finished batch; the halt ratio may stop the job.
   succeeded / failed are the last attempt's; every item of a FAILED batch counts as failed,
   as nothing of it is folded (a delivered batch, or one replayed from the journal). */
BATCH__PRIVATE void batch__map_count(batch__mjob* m, batch_batch_status st, size_t succeeded, size_t failed) {
    m->s.batches++;
    if (st == BATCH_BATCH_SUCCESS) m->s.batches_succeeded++;
    else if (st == BATCH_BATCH_PARTIAL_SUCCESS) m->s.batches_partial++;
    else { m->s.batches_failed++; failed += succeeded; succeeded = 0; }
    m->s.succeeded += succeeded;
    m->s.failed += failed;
    if (m->d.halt_error_ratio > 0 && m->s.failed &&
        batch__ratio(m->s.failed, m->s.succeeded + m->s.failed) > m->d.halt_error_ratio) {
        int e = 0;
        atomic_compare_exchange_strong(&m->stop, &e, BATCH__STOP_HALT);
    }
}

/* ---- journal ------------------------------------------------------------------------------ */
/* A batch record: type 2, status, 2 bytes zero, retries (u32), batch index, first item, count,
   succeeded, failed (u64 each), then the batch's accumulator (acc_size bytes). */
#define BATCH__JBATCH_LEN 48u

/* Appends a delivered batch; job lock held (m->jrec is the record's buffer, made at launch: no
   allocation here). BATCH_OK, or why the journal failed (the job stops). */
BATCH__PRIVATE batch_result batch__map_journal_batch(batch__mjob* m, const batch__mslot* sl) {
    size_t len = BATCH__JBATCH_LEN + m->d.acc_size;
    unsigned char* rec = m->jrec;
    memset(rec, 0, BATCH__JBATCH_LEN);
    rec[0] = BATCH__JKIND_MAP;
    rec[1] = (unsigned char)sl->status;
    batch__put32(rec + 4, (uint32_t)sl->retries_used);
    batch__put64(rec + 8, sl->batch_index);
    batch__put64(rec + 16, sl->first);
    batch__put64(rec + 24, sl->count);
    batch__put64(rec + 32, sl->succeeded);
    batch__put64(rec + 40, sl->failed);
    if (m->d.acc_size) memcpy(rec + BATCH__JBATCH_LEN, sl->acc, m->d.acc_size);
    return batch__journal_append(m->jn, rec, len);
}

/* Replays one batch record at launch (see batch__journal_open): counts it, folds its
   accumulator in and marks its items done. */
BATCH__PRIVATE batch_result batch__map_replay(void* arg, const unsigned char* p, size_t len) {
    batch__mjob* m = (batch__mjob*)arg;
    const batch_map_desc* d = &m->d;
    if (len != BATCH__JBATCH_LEN + d->acc_size || p[0] != BATCH__JKIND_MAP || p[1] > BATCH_BATCH_FAILED) return BATCH_ERR_CORRUPT;
    uint64_t index = batch__get64(p + 8), first = batch__get64(p + 16), count = batch__get64(p + 24);
    uint64_t succeeded = batch__get64(p + 32), failed = batch__get64(p + 40);
    uint32_t retries = batch__get32(p + 4);
    if (count == 0 || count > ((uint64_t)1 << 40) || succeeded > count || succeeded + failed != count ||
        !batch__fits_size(count) || !batch__fits_size(first) || first > SIZE_MAX - count ||
        (!d->pull_fn && first + count > d->count) || index >= SIZE_MAX / 2 || retries > 1000)
        return BATCH_ERR_CORRUPT;
    if (m->replay_stopped) return BATCH__JDROP;   /* ordered: after a batch that runs again */
    if (d->ordered && (index != m->next_batch || first != m->next_item)) return BATCH_ERR_CORRUPT;   /* in order, no gap */
    if (failed && m->rerun_failed) {
        if (d->ordered) m->replay_stopped = true;   /* later batches fold after it: they run again too */
        return BATCH__JDROP;
    }
    if (!d->ordered) {
        if (m->ndone == m->capdone) {
            size_t ncap = m->capdone ? m->capdone * 2 : 16;
            size_t* r = (size_t*)BATCH_REALLOC(m->done_ranges, ncap * 2 * sizeof(size_t), m->alloc_ctx);
            if (!r) return BATCH_ERR_NOMEM;
            m->done_ranges = r;
            m->capdone = ncap;
        }
        m->done_ranges[2 * m->ndone] = (size_t)first;
        m->done_ranges[2 * m->ndone + 1] = (size_t)(first + count);
        m->ndone++;
        if (index >= m->next_batch) m->next_batch = (size_t)index + 1;
    } else {
        m->next_batch++;
        m->next_deliver++;
        m->next_item += (size_t)count;
        if (!d->pull_fn && m->next_item >= d->count) m->input_done = true;
    }
    batch__map_count(m, (batch_batch_status)p[1], (size_t)succeeded, (size_t)failed);
    m->s.retries += retries;
    m->s.resumed_batches++;
    m->s.resumed_items += count;
    if (d->acc_size && p[1] != BATCH_BATCH_FAILED) d->combine_fn(m->acc, p + BATCH__JBATCH_LEN, d->user_data);
    return BATCH_OK;
}

BATCH__PRIVATE int batch__range_cmp(const void* a, const void* b) {
    size_t x = *(const size_t*)a, y = *(const size_t*)b;
    return x < y ? -1 : x > y;
}

/* Unordered resume: sorts the done ranges and merges neighbours; an overlap is corrupt. */
BATCH__PRIVATE batch_result batch__map_sort_ranges(batch__mjob* m) {
    if (m->ndone < 2) return BATCH_OK;
    qsort(m->done_ranges, m->ndone, 2 * sizeof(size_t), batch__range_cmp);
    size_t w = 0;
    for (size_t i = 1; i < m->ndone; i++) {
        size_t* last = &m->done_ranges[2 * w];
        size_t* cur = &m->done_ranges[2 * i];
        if (cur[0] < last[1]) return BATCH_ERR_CORRUPT;
        if (cur[0] == last[1]) last[1] = cur[1];
        else { w++; m->done_ranges[2 * w] = cur[0]; m->done_ranges[2 * w + 1] = cur[1]; }
    }
    m->ndone = w + 1;
    return BATCH_OK;
}

/* The map's shape: what makes its batches and accumulators mean the same thing. */
BATCH__PRIVATE uint64_t batch__map_fingerprint(const batch__mjob* m) {
    const batch_map_desc* d = &m->d;
    uint64_t h = batch__fp_mix(BATCH__JKIND_MAP, d->pull_fn ? UINT64_MAX : d->count);
    h = batch__fp_mix(h, d->result_size);
    h = batch__fp_mix(h, d->acc_size);
    h = batch__fp_mix(h, d->ordered != 0);
    if (d->ordered) h = batch__fp_mix(batch__fp_mix(batch__fp_mix(h, m->size), m->min_b), m->max_b);   /* the batch boundaries */
    /* an accumulator's bytes are the fold's own, in this machine's byte order: a big-endian
       machine's journal is another job's (little-endian fingerprints stay what they were) */
    if (d->acc_size && batch__big_endian()) h = batch__fp_mix(h, 0xBEu);
    return h ? h : 1;
}

/* Job lock held: moves the input cursor past items the journal has as done (a pull source's are
   pulled and dropped). Returns the number of items before the next done range (SIZE_MAX: none). */
BATCH__PRIVATE size_t batch__map_skip_done(batch__mjob* m) {
    while (m->done_at < m->ndone) {
        size_t first = m->done_ranges[2 * m->done_at], end = m->done_ranges[2 * m->done_at + 1];
        if (m->next_item < first) return first - m->next_item;
        if (m->d.pull_fn) {
            batch_job* saved = batch__tls_map_locked;
            batch__tls_map_locked = (batch_job*)m;
            while (m->next_item < end) {
                void* ignored = NULL;
                if (!m->d.pull_fn(m->d.user_data, &ignored)) { m->input_done = true; break; }
                m->next_item++;
            }
            batch__tls_map_locked = saved;
            if (m->input_done) return SIZE_MAX;
        }
        m->next_item = end;
        m->done_at++;
        if (!m->d.pull_fn && m->next_item >= m->d.count) m->input_done = true;
    }
    return SIZE_MAX;
}

/* ---- dispatch ---------------------------------------------------------------------------- */
BATCH__PRIVATE void batch__map_wake_consumer(batch__mjob* m) {
    if (m->consumer_waiting) {
        m->consumer_waiting = false;
        batch_counter_done(&m->avail);
    }
}

BATCH__PRIVATE void batch__map_release_token(batch__mjob* m) {
    if (!m->token_released) {
        m->token_released = true;
        batch__map_wake_consumer(m);   /* the end may now be near: let it look */
        m->dec_pending++;
    }
}

/* Job lock held: room in sl for a batch of n items. Out of memory, the batch waits for one in
   flight to finish; with nothing in flight there is nothing to wait for and the map stops. */
BATCH__PRIVATE bool batch__map_reserve(batch__mjob* m, batch__mslot* sl, size_t n) {
    if (batch__slot_reserve(m, sl, n)) return true;
    if (m->running == 0 && !m->iq_head && !m->held) {
        atomic_store_explicit(&m->stop, BATCH__STOP_NOMEM, memory_order_relaxed);
        batch__map_release_token(m);
    }
    return false;
}

/* Job lock held: cuts the next batch of the map's own input into sl (its index, first item and
   count), at most room items (a batch stops where the journal's done items begin). False when
   there is none now: out of memory, or the input ended (input_done). */
BATCH__PRIVATE bool batch__map_cut(batch__mjob* m, batch__mslot* sl, size_t room) {
    size_t size = batch__map_next_size(m);
    if (!m->d.pull_fn && size > m->d.count - m->next_item) size = m->d.count - m->next_item;
    if (size > room) size = room;
    if (!batch__map_reserve(m, sl, size)) return false;
    size_t n = 0;
    if (m->d.pull_fn) {
        batch_job* saved = batch__tls_map_locked;
        batch__tls_map_locked = (batch_job*)m;
        while (n < size) {
            void* p = NULL;
            if (!m->d.pull_fn(m->d.user_data, &p)) { m->input_done = true; break; }
            sl->items[n].index = m->next_item + n;
            sl->items[n].ptr = p;
            n++;
        }
        batch__tls_map_locked = saved;
    } else {
        n = size;
        if (m->next_item + n >= m->d.count) m->input_done = true;
    }
    if (n == 0) { m->input_done = true; return false; }
    sl->batch_index = m->next_batch++;
    sl->first = m->next_item;
    sl->count = n;
    m->next_item += n;
    return true;
}

/* Job lock held: an executor's next batch is the oldest range pushed to it. False when none is
   queued (input_done once none will come) or out of memory. */
BATCH__PRIVATE bool batch__map_cut_pushed(batch__mjob* m, batch__mslot* sl) {
    batch__map_ext* x = m->ext;
    if (!x->rcount) {
        if (x->closed) m->input_done = true;
        return false;
    }
    if (!batch__map_reserve(m, sl, x->ranges[x->rhead].count)) return false;
    const batch__range* rg = &x->ranges[x->rhead];
    sl->batch_index = rg->index;
    sl->first = rg->first;
    sl->count = rg->count;
    x->rhead = (x->rhead + 1) % (size_t)m->nslots;
    x->rcount--;
    return true;
}

/* Job lock held. Fills free slots with new batches while input, room and the concurrency limit
   allow; returns them linked, to be queued once the lock is released (a source keeps them to
   hand out). */
BATCH__PRIVATE batch__mslot* batch__map_pump(batch__mjob* m) {
    batch__mslot* out = NULL;
    batch__mslot** tail = &out;
    if (!m->token_released && m->deadline_ns) (void)batch__map_stopped(m, batch_now_ns());
    bool pushed = m->ext && m->ext->mode == BATCH__EXT_EXECUTOR;
    while (!m->token_released) {
        size_t room = (m->ndone && !m->input_done) ? batch__map_skip_done(m) : SIZE_MAX;
        if (atomic_load_explicit(&m->stop, memory_order_relaxed) || m->input_done) { batch__map_release_token(m); break; }
        if (!m->free_slots) break;
        if (m->d.max_concurrent_batches && m->running >= m->d.max_concurrent_batches) break;
        batch__mslot* sl = m->free_slots;
        if (!(pushed ? batch__map_cut_pushed(m, sl) : batch__map_cut(m, sl, room))) {
            if (m->input_done) continue;   /* the token goes at the top of the loop */
            break;                         /* nothing to cut now, or no memory until a batch finishes */
        }
        m->free_slots = sl->next;
        sl->next = NULL;
        sl->state = BATCH__SLOT_RUNNING;
        sl->retries_used = 0;
        m->running++;
        if (++m->conc_now > m->s.peak_concurrent_batches) m->s.peak_concurrent_batches = m->conc_now;
        batch_counter_add(&m->latch, 1);
        *tail = sl;
        tail = &sl->next;
    }
    if (out && m->ext && m->ext->mode == BATCH__EXT_SOURCE) {   /* for another process to run */
        *m->ext->dtail = out;
        m->ext->dtail = tail;
        return NULL;
    }
    return out;
}

/* Queues the slots `list` (no lock held). A slot the pool cannot take runs here. */
BATCH__PRIVATE void batch__map_submit(batch__mjob* m, batch__mslot* list) {
    while (list) {
        batch__mslot* sl = list;
        list = sl->next;
        sl->next = NULL;
        if (batch_pool_submit(m->pool, &(batch_work){ .fn = batch__mslot_task, .user_data = sl, .priority = m->d.priority }) != BATCH_OK)
            batch__mslot_task(m->pool, sl);
    }
}

/* Releases the job lock, queues `list`, reports progress (ev: a finished batch, or NULL), then
   pays the latch decrements owed. The last decrement may let a waiter free the job, so it is
   the last thing this thread does with it. */
BATCH__PRIVATE void batch__map_unlock_ev(batch__mjob* m, batch__mslot* list, const batch_event_info* ev) {
    bool report = ev && m->head.prog.fn;
    if (report) {   /* hold the job alive while reporting: one more count, paid below */
        batch_counter_add(&m->latch, 1);
        m->dec_pending++;
    }
    int dec = m->dec_pending;
    m->dec_pending = 0;
    batch__mutex_unlock(&m->lock);
    batch__map_submit(m, list);
    if (report) {
        batch__progress_emit((batch_job*)m, BATCH_EVENT_BATCH_COMPLETED, ev);
        batch__progress_tick((batch_job*)m, batch_now_ns());
    }
    while (dec-- > 0) batch__counter_sub1(&m->latch);
}
BATCH__PRIVATE void batch__map_unlock(batch__mjob* m, batch__mslot* list) { batch__map_unlock_ev(m, list, NULL); }

/* ---- delivery ---------------------------------------------------------------------------- */
/* Job lock held. The slot becomes free again and leaves the latch. */
BATCH__PRIVATE void batch__slot_free(batch__mjob* m, batch__mslot* sl) {
    sl->state = BATCH__SLOT_FREE;
    sl->next = m->free_slots;
    m->free_slots = sl;
    m->dec_pending++;
}

/* Job lock held: appends the slot's last attempt to a list of records (next: the start of the
   retry that follows it, 0 for a delivered batch). Out of memory: it is not kept (the map goes on). */
BATCH__PRIVATE void batch__map_keep(batch__mjob* m, batch__batch_rec** list, size_t* n, size_t* cap, const batch__mslot* sl,
                                    uint64_t next) {
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        batch__batch_rec* r = (batch__batch_rec*)BATCH_REALLOC(*list, ncap * sizeof *r, m->alloc_ctx);
        if (!r) return;
        *list = r;
        *cap = ncap;
    }
    batch__batch_rec* r = &(*list)[(*n)++];
    r->index = sl->batch_index; r->first = sl->first; r->count = sl->count;
    r->succeeded = sl->succeeded; r->failed = sl->failed;
    r->start_ns = sl->start_ns - m->launch_ns; r->end_ns = r->start_ns + sl->exec_ns;
    r->next_ns = next ? next - m->launch_ns : 0;
    r->status = (int)sl->status; r->retries = sl->retries_used; r->worker = sl->worker;
}

/* Job lock held: combine, count, call on_batch, then free the slot or queue it for next(). */
BATCH__PRIVATE void batch__map_deliver(batch__mjob* m, batch__mslot* sl) {
    if (sl->unrun) {   /* nothing to deliver: its items were never processed */
        sl->unrun = false;
        m->s.unprocessed += sl->count;
        atomic_store_explicit(&m->cut, 1, memory_order_relaxed);
        batch__slot_free(m, sl);
        return;
    }
    batch_batch* v = &sl->view;
    v->batch_index = sl->batch_index;
    v->first_index = sl->first;
    v->count = sl->count;
    v->status = sl->status;
    v->succeeded = sl->succeeded;
    v->failed = sl->failed;
    v->items = sl->items;
    v->codes = sl->codes;
    v->results = sl->results;
    for (size_t k = 0; k < sl->nerrors; k++)
        if (sl->errors[k].message) sl->errors[k].message = sl->msgs + ((size_t)(uintptr_t)sl->errors[k].message - 1) * BATCH_MESSAGE_MAX;
    v->errors = sl->errors;
    v->nerrors = sl->nerrors;
    v->acc = (m->d.acc_size && sl->status != BATCH_BATCH_FAILED) ? sl->acc : NULL;
    v->exec_ns = sl->exec_ns;
    v->retries_used = sl->retries_used;
    v->worker = sl->worker;
    batch_job* saved = batch__tls_map_locked;
    batch__tls_map_locked = (batch_job*)m;
    if (v->acc && !(m->ext && m->ext->mode == BATCH__EXT_EXECUTOR)) m->d.combine_fn(m->acc, sl->acc, m->d.user_data);   /* an executor's batches fold in the source */
    batch__map_count(m, sl->status, sl->succeeded, sl->failed);
    if (m->d.on_batch) m->d.on_batch(v, m->d.user_data);
    batch__tls_map_locked = saved;
    /* journaled once delivered: a kill before this runs the batch again (on_batch sees it twice,
       the fold of the resumed job has it once) */
    batch_result jr = m->jn ? batch__map_journal_batch(m, sl) : BATCH_OK;
    if (jr != BATCH_OK) {
        if (m->io_error == BATCH_OK) m->io_error = jr;
        atomic_store(&m->stop, BATCH__STOP_IO);   /* the journal's failure outranks a halt or cancel */
    }
    if (m->d.keep_batches) batch__map_keep(m, &m->recs, &m->nrecs, &m->caprecs, sl, 0);
    if (m->d.iterate && !m->draining) {
        sl->state = BATCH__SLOT_QUEUED;
        sl->next = NULL;
        if (m->iq_tail) m->iq_tail->next = sl; else m->iq_head = sl;
        m->iq_tail = sl;
        batch__map_wake_consumer(m);
    } else {
        batch__slot_free(m, sl);
    }
}

/* Job lock held: a batch finished its last attempt. */
BATCH__PRIVATE void batch__map_finished(batch__mjob* m, batch__mslot* sl) {
    m->running--;
    m->conc_now--;
    sl->state = BATCH__SLOT_FINISHED;
    if (m->adaptive && sl->count && !sl->unrun) {
        uint64_t x = sl->exec_ns * 16 / sl->count;
        m->ema_ns = m->ema_ns ? (m->ema_ns * 3 + x) / 4 : x;
    }
    if (!m->d.ordered) { batch__map_deliver(m, sl); return; }
    for (bool more = true; more;) {   /* deliver every batch now next in order */
        more = false;
        for (int i = 0; i < m->nslots; i++) {
            batch__mslot* x = &m->slots[i];
            if (x->state == BATCH__SLOT_FINISHED && x->batch_index == m->next_deliver) {
                m->next_deliver++;
                batch__map_deliver(m, x);
                more = true;
            }
        }
    }
}

/* ---- running a batch --------------------------------------------------------------------- */
/* Queues slot sl again after delay_ns (the delayed queue; no worker sleeps). */
BATCH__PRIVATE bool batch__mslot_requeue(batch_pool* p, batch__mslot* sl, uint64_t delay_ns) {
    return batch_pool_submit(p, &(batch_work){ .fn = batch__mslot_task, .user_data = sl, .priority = sl->job->d.priority,
                                                .delay_ns = delay_ns ? delay_ns : 1 }) == BATCH_OK;
}

typedef struct batch__item_loop_args {
    batch__mjob* m;
    batch__mslot* sl;
    batch_ctx* ctx;
    batch_item_fn item_fn;
    batch_fold_fn fold_fn;
    const batch_item* items;
    void* user;
    void* acc;
    int* codes;
    unsigned char* res;
    char* msg;
    size_t first, count, rs, rstride;
} batch__item_loop_args;

/* Runs a batch's items, folds the successful ones; returns how many failed. Always inlined, so
   each call site with constant flags is a specialized loop. */
BATCH__INLINE size_t batch__item_loop(const batch__item_loop_args* a, bool has_items, bool has_codes, bool has_fold) {
    const batch__item_loop_args A = *a;
    size_t failed = 0;
    for (size_t i = 0; i < A.count; i++) {
        batch_item it;
        if (has_items) it = A.items[i];
        else { it.index = A.first + i; it.ptr = NULL; }
        A.ctx->msg_set = 0;
        void* r = A.rs ? A.res + (has_codes ? i * A.rstride : 0) : NULL;   /* no codes: one reused slot */
        int rc = A.item_fn(A.ctx, &it, r, A.user);
        if (has_codes) A.codes[i] = rc;
        if (BATCH__LIKELY(rc == 0)) {
            if (has_fold) A.fold_fn(A.acc, &it, r, A.user);
        } else {
            failed++;
            if (A.ctx->msg_set & BATCH__MSG_PERMANENT) A.sl->permanent = true;
            batch__slot_error(A.m, A.sl, it.index, rc, (A.ctx->msg_set & BATCH__MSG_SET) ? A.msg : NULL);
        }
    }
    return failed;
}

/* The run an items_fn processes (batch_ctx.run): what batch_ctx_fail_item needs. */
typedef struct batch__run {
    batch__mjob* m;
    batch__mslot* sl;
    size_t first, count, failed;
    bool marked;                  /* sl->codes holds this call's codes (zeroed at its first report) */
} batch__run;

BATCH_API batch_result batch_ctx_fail_item(batch_ctx* ctx, size_t index, int code, const char* fmt, ...) {
    batch__run* run = ctx ? (batch__run*)ctx->run : NULL;
    if (!run || code == 0 || index < run->first || index - run->first >= run->count) return BATCH_ERR_INVALID;
    size_t i = index - run->first;
    int* codes = run->sl->codes;
    if (!run->marked) {   /* successes leave no trace: the codes are cleared only once one fails */
        memset(codes, 0, run->count * sizeof *codes);
        run->marked = true;
    } else if (codes[i]) {
        return BATCH_ERR_INVALID;   /* reported already */
    }
    codes[i] = code;
    run->failed++;
    char msg[BATCH_MESSAGE_MAX];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    batch__slot_error(run->m, run->sl, index, code, fmt ? msg : NULL);
    return BATCH_OK;
}

BATCH__PRIVATE int batch__error_cmp(const void* a, const void* b) {
    size_t x = ((const batch_item_error*)a)->index, y = ((const batch_item_error*)b)->index;
    return x < y ? -1 : x > y;
}

/* Runs one attempt's items through items_fn in one call; returns how many failed. Leaves codes,
   errors (in index order) and the permanent flag as the item loop would. */
BATCH__PRIVATE size_t batch__run_items(batch__mjob* m, batch__mslot* sl, batch_ctx* ctx, const char* msg) {
    const batch_map_desc* d = &m->d;
    batch__run run = { m, sl, sl->first, sl->count, 0, false };
    batch_item_range r = { sl->first, sl->count, d->pull_fn ? sl->items : NULL, d->result_size ? sl->results : NULL,
                           d->acc_size ? sl->acc : NULL };
    int* codes = sl->codes;
    ctx->run = &run;
    ctx->msg_set = 0;
    int rc = d->items_fn(ctx, &r, d->user_data);
    ctx->run = NULL;
    if (rc != 0) {   /* every item not reported fails with rc */
        const char* text = (ctx->msg_set & BATCH__MSG_SET) ? msg : NULL;
        for (size_t i = 0; i < run.count; i++) {
            if (run.marked && codes[i]) continue;
            codes[i] = rc;
            batch__slot_error(m, sl, run.first + i, rc, text);
        }
        run.failed = run.count;
    } else if (!run.marked && batch__map_shows_items(m)) {
        memset(codes, 0, run.count * sizeof *codes);
    }
    if (run.failed && (ctx->msg_set & BATCH__MSG_PERMANENT)) sl->permanent = true;
    bool sorted = true;
    for (size_t k = 1; k < sl->nerrors && sorted; k++) sorted = sl->errors[k - 1].index < sl->errors[k].index;
    if (!sorted) qsort(sl->errors, sl->nerrors, sizeof *sl->errors, batch__error_cmp);   /* messages go by entry */
    return run.failed;
}

/* Runs one attempt of a batch's items; fills codes, results, errors, counts, status. */
BATCH__PRIVATE void batch__mslot_attempt(batch_pool* p, batch__mslot* sl) {
    batch__mjob* m = sl->job;
    const batch_map_desc* d = &m->d;
    char msg[BATCH_MESSAGE_MAX];
    batch_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.pool = p;
    ctx.batch_index = sl->batch_index;
    ctx.msg = msg;
    ctx.worker = batch_pool_worker_index(p);
    ctx.attempt = sl->retries_used;
    ctx.stop = &m->stop;
    ctx.deadline_ns = m->deadline_ns;
    sl->nerrors = 0;
    sl->permanent = false;
    sl->worker = ctx.worker;
    ctx.owner = (batch_job*)m;
    /* one pass: each successful item is folded at once into the batch's fresh accumulator,
       which is private to this attempt and thrown away if the batch ends FAILED */
    const size_t rs = d->result_size, count = sl->count, first = sl->first;
    const batch_item_fn item_fn = d->item_fn;
    const batch_fold_fn fold_fn = (d->acc_size && item_fn) ? d->fold_fn : NULL;
    const batch_item* items = d->pull_fn ? sl->items : NULL;
    void* const user = d->user_data;
    void* const acc = sl->acc;
    int* const codes = batch__map_shows_items(m) ? sl->codes : NULL;
    const size_t rstride = codes ? rs : 0;   /* a fold-only map reuses one result slot */
    /* that slot lives on this thread's stack when it is small: a heap slot could share a cache
       line with another worker's, and every item writes it */
    union { max_align_t align; unsigned char bytes[256]; } local;
    unsigned char* res = (!codes && rs <= sizeof local.bytes) ? local.bytes : sl->results;
    if (d->acc_size) d->init_fn(acc, user);
    uint64_t t0 = batch_now_ns();
    sl->start_ns = t0;
    batch__item_loop_args a = { m, sl, &ctx, item_fn, fold_fn, items, user, acc, codes, res, msg, first, count, rs, rstride };
    batch__job_frame frame;   /* a wait for this map from one of its items is refused */
    batch__frame_push(&frame, (batch_job*)m);
    /* the common case (items are indices, fold only) gets a loop of its own: the flags are
       constants there, so the compiler drops their branches and keeps the loop in registers */
    size_t failed = !item_fn ? batch__run_items(m, sl, &ctx, msg)
                  : (!items && !codes && fold_fn && rs) ? batch__item_loop(&a, false, false, true)
                                                        : batch__item_loop(&a, items != NULL, codes != NULL, fold_fn != NULL);
    batch__frame_pop(&frame);
    sl->failed = failed;
    sl->succeeded = count - failed;
    sl->exec_ns = batch_now_ns() - t0;
    if (sl->failed == 0) sl->status = BATCH_BATCH_SUCCESS;
    /* the ratio itself, as documented (failed <= thr x count rounds the other way for, e.g.,
       1 failure in 49 items with a threshold of 1.0 / 49) */
    else if (batch__ratio(sl->failed, sl->count) <= d->error_threshold) sl->status = BATCH_BATCH_PARTIAL_SUCCESS;
    else sl->status = BATCH_BATCH_FAILED;
}

/* A batch's last attempt is over: count its time (and retries run elsewhere), deliver, refill. */
BATCH__PRIVATE void batch__mslot_done(batch__mjob* m, batch__mslot* sl, uint64_t busy_ns, uint64_t retries) {
    batch_event_info ev = { NULL, NULL, 0, sl->batch_index, sl->nerrors ? sl->errors[0].code : 0 };
    batch__mutex_lock(&m->lock);
    /* ended at or past the deadline: the map did not finish in time (TIMEOUT), even if this
       was its last batch and every item returned 0 */
    if (m->deadline_ns) (void)batch__map_stopped(m, batch_now_ns());
    m->s.busy_ns += busy_ns;
    m->s.retries += retries;
    batch__map_finished(m, sl);
    batch__map_unlock_ev(m, batch__map_pump(m), &ev);
}

BATCH__PRIVATE void batch__mslot_task(batch_pool* p, void* user) {
    batch__mslot* sl = (batch__mslot*)user;
    batch__mjob* m = sl->job;
    const batch_map_desc* d = &m->d;
    bool counted = false;   /* the last attempt's exec_ns is in busy_ns already */
    uint64_t rng = 0;       /* seeded when a jittered retry first needs it */
    for (;;) {
        if (sl->retry_due) {
            /* a retry waits in slices of at most BATCH__RETRY_POLL_NS, so that a cancel or the
               deadline is not held up by a long backoff */
            uint64_t now = batch_now_ns();
            if (batch__map_stopped(m, now)) {
                sl->retry_due = 0;
                atomic_store_explicit(&m->cut, 1, memory_order_relaxed);
                counted = true;
                break;   /* delivered as it is: FAILED, its last attempt's errors; the retry never ran */
            }
            if (now < sl->retry_due) {
                if (batch__mslot_requeue(p, sl, batch__retry_slice(sl->retry_due, now))) return;
            }
            sl->retry_due = 0;   /* due, or the delayed queue is out of memory: run now */
            batch__mutex_lock(&m->lock);
            if (m->d.keep_batches) batch__map_keep(m, &m->tries, &m->ntries, &m->captries, sl, now);   /* for the trace */
            sl->retries_used++;  /* a retry counts when it runs */
            m->s.retries++;
            batch__mutex_unlock(&m->lock);
        }
        batch__mslot_attempt(p, sl);
        if (sl->status != BATCH_BATCH_FAILED || sl->retries_used >= d->max_retries || sl->permanent) break;
        uint64_t now = batch_now_ns();
        if (batch__map_stopped(m, now)) { atomic_store_explicit(&m->cut, 1, memory_order_relaxed); break; }
        /* the whole batch again after base * 2^k (k: retries so far); it keeps its slot */
        batch__mutex_lock(&m->lock);
        m->s.busy_ns += sl->exec_ns;
        batch__mutex_unlock(&m->lock);
        sl->retry_due = batch__retry_due(d->retry_base_ns, d->retry_max_ns, d->retry_jitter != 0, sl->retries_used, now,
                                         m->deadline_ns, &rng, (uint64_t)(uintptr_t)sl ^ sl->batch_index);
    }
    batch__mslot_done(m, sl, counted ? 0 : sl->exec_ns, 0);
}

/* ---- launch --------------------------------------------------------------------------------- */
BATCH__PRIVATE void batch__map_free_buffers(batch__mjob* m) {
    void* ctx = m->alloc_ctx;
    if (m->slots) {
        for (int i = 0; i < m->nslots; i++) {
            batch__mslot* sl = &m->slots[i];
            if (sl->items) BATCH_FREE(sl->items, ctx);
            if (sl->codes) BATCH_FREE(sl->codes, ctx);
            if (sl->results) BATCH_FREE(sl->results, ctx);
            if (sl->errors) BATCH_FREE(sl->errors, ctx);
            if (sl->msgs) BATCH_FREE(sl->msgs, ctx);
        }
        BATCH_FREE(m->slots, ctx);
    }
    if (m->acc) BATCH_FREE(m->acc, ctx);
    if (m->slot_accs) BATCH_FREE(m->slot_accs, ctx);
    if (m->key) BATCH_FREE(m->key, ctx);
    if (m->recs) BATCH_FREE(m->recs, ctx);
    if (m->tries) BATCH_FREE(m->tries, ctx);
    if (m->done_ranges) BATCH_FREE(m->done_ranges, ctx);
    if (m->jrec) BATCH_FREE(m->jrec, ctx);
    if (m->jn) batch__journal_free(m->jn);   /* not closed by a finish: a failed launch */
}

BATCH__PRIVATE void batch__map_job_free(batch_job* pub) {
    batch__mjob* m = (batch__mjob*)pub;
    batch__map_free_buffers(m);
    batch__mutex_destroy(&m->lock);
    if (m->ext) BATCH_FREE(m->ext, m->alloc_ctx);   /* a source's or an executor's state (the seam) */
    BATCH_FREE(m, m->alloc_ctx);
}

BATCH__PRIVATE batch_result batch__map_check(const batch_map_desc* d) {
    if (!d->item_fn == !d->items_fn) return BATCH_ERR_INVALID;   /* exactly one */
    if (d->result_size && !d->pull_fn && d->count > SIZE_MAX / d->result_size) return BATCH_ERR_INVALID;
    if (d->result_size > ((size_t)1 << 30)) return BATCH_ERR_INVALID;
    if (d->min_batch && d->max_batch && d->min_batch > d->max_batch) return BATCH_ERR_INVALID;
    if (d->batch_size > ((size_t)1 << 30) || d->max_batch > ((size_t)1 << 30)) return BATCH_ERR_INVALID;
    if (!(d->error_threshold >= 0.0 && d->error_threshold <= 1.0)) return BATCH_ERR_INVALID;   /* NaN too */
    if (!(d->halt_error_ratio >= 0.0 && d->halt_error_ratio <= 1.0)) return BATCH_ERR_INVALID;
    if (d->max_retries < 0 || d->max_retries > 1000) return BATCH_ERR_INVALID;
    if (d->retry_base_ns > ((uint64_t)1 << 50) || d->retry_max_ns > ((uint64_t)1 << 50)) return BATCH_ERR_INVALID;
    if (d->max_in_flight < 0 || d->max_in_flight > 65536 || d->max_concurrent_batches < 0) return BATCH_ERR_INVALID;
    if (BATCH__ENUM_BAD(d->priority, BATCH_PRIORITY_COUNT_)) return BATCH_ERR_INVALID;
    if (BATCH__ENUM_BAD(d->complexity, BATCH_COMPLEXITY_COUNT_)) return BATCH_ERR_INVALID;
    if (d->timeout_ns > ((uint64_t)1 << 62) || d->target_batch_ns > ((uint64_t)1 << 40)) return BATCH_ERR_INVALID;
    bool any_fold = d->init_fn || d->fold_fn || d->combine_fn;
    if (d->acc_size && !(d->init_fn && d->combine_fn && !d->fold_fn == !d->item_fn)) return BATCH_ERR_INVALID;   /* items_fn folds itself */
    if (!d->acc_size && any_fold) return BATCH_ERR_INVALID;
    if (d->acc_size > ((size_t)1 << 30)) return BATCH_ERR_INVALID;
    if (d->on_batch && d->iterate) return BATCH_ERR_INVALID;
    if (!batch__progress_desc_ok(&d->progress) || !batch__journal_desc_ok(&d->journal)) return BATCH_ERR_INVALID;
    return BATCH_OK;
}

static const batch__job_ops batch__map_job_ops;   /* defined below */

BATCH__PRIVATE batch_result batch__map_launch_ext(batch_pool* pool, const batch_map_desc* desc, batch__map_ext* ext, batch_job** out) {
    if (!out) return BATCH_ERR_INVALID;
    *out = NULL;
    if (!pool || !desc) return BATCH_ERR_INVALID;
    batch_result r = batch__map_check(desc);
    if (r != BATCH_OK) return r;
    if (batch__pool_refuses_jobs(pool)) return BATCH_ERR_SHUTDOWN;
    void* ctx = batch__pool_alloc_ctx(pool);
    batch__mjob* m = (batch__mjob*)BATCH_MALLOC(sizeof *m, ctx);
    if (!m) return BATCH_ERR_NOMEM;
    memset(m, 0, sizeof *m);
    m->head.ops = &batch__map_job_ops;
    m->pool = pool;
    m->alloc_ctx = ctx;
    m->d = *desc;
    batch_map_desc* d = &m->d;
    if (!batch__mutex_init(&m->lock)) { BATCH_FREE(m, ctx); return BATCH_ERR_NOMEM; }
    m->threads = batch_pool_workers(pool) ? batch_pool_workers(pool) : 1;
    m->ext = ext;
    if (ext && ext->threads) m->threads = ext->threads;
    if (!d->retry_base_ns) d->retry_base_ns = 1000000u;
    if (!d->retry_max_ns) d->retry_max_ns = 60ull * 1000000000u;
    if (!d->max_in_flight) d->max_in_flight = 4 * m->threads;
    m->nslots = d->max_in_flight;
    /* sizing: explicit, complexity, key, else adaptive (ordered maps never size by timing) */
    m->min_b = d->min_batch ? d->min_batch : (d->sizing ? d->sizing->min_size : 1);
    if (d->max_batch) m->max_b = d->max_batch;
    else if (d->sizing) m->max_b = d->sizing->max_size;
    else {
        size_t per_item = (d->pull_fn ? sizeof(batch_item) : 0) +
                          ((d->on_batch || d->iterate || d->items_fn) ? sizeof(int) + d->result_size : 0);
        m->max_b = per_item ? BATCH__SLOT_BYTES / per_item : BATCH__DEFAULT_MAX_BATCH;
        if (m->max_b > BATCH__DEFAULT_MAX_BATCH) m->max_b = BATCH__DEFAULT_MAX_BATCH;
        if (m->max_b < 4096) m->max_b = 4096;
    }
    if (m->min_b > m->max_b) m->min_b = m->max_b;
    m->target_ns = d->target_batch_ns ? d->target_batch_ns : 200000u;
    uint64_t remembered = (d->sizing && d->key) ? batch_sizing_cost(d->sizing, d->key) : 0;
    if (d->batch_size) m->size = d->batch_size;
    else if (d->complexity) m->size = batch_sizing_class_size(d->sizing, d->complexity);
    else if (d->sizing && d->key && batch_sizing_class(d->sizing, d->key) != BATCH_COMPLEXITY_DEFAULT)
        m->size = batch_sizing_size(d->sizing, d->key);
    else if (remembered) { m->size = batch__sat_size(m->target_ns / remembered); m->adaptive = !d->ordered; m->ema_ns = remembered * 16; }
    else if (d->ordered) m->size = d->pull_fn ? 64 : d->count / 64;
    else { m->size = 16; m->adaptive = true; }
    if (m->size > m->max_b) m->size = m->max_b;
    if (m->size < m->min_b) m->size = m->min_b;
    m->key = d->key ? batch__strdup(d->key, ctx) : NULL;
    d->key = m->key;
    m->slots = (batch__mslot*)BATCH_MALLOC((size_t)m->nslots * sizeof(batch__mslot), ctx);
    m->acc = d->acc_size ? BATCH_MALLOC(d->acc_size, ctx) : NULL;
    bool ok = m->slots && (!desc->key || m->key) && (!d->acc_size || m->acc);
    if (m->slots) memset(m->slots, 0, (size_t)m->nslots * sizeof(batch__mslot));
    /* each slot's accumulator on its own cache lines: workers fold into them item by item */
    size_t stride = (d->acc_size + BATCH__CACHE_LINE - 1) / BATCH__CACHE_LINE * BATCH__CACHE_LINE;
    if (ok && d->acc_size)
        ok = stride <= (SIZE_MAX - BATCH__CACHE_LINE) / (size_t)m->nslots &&
             (m->slot_accs = BATCH_MALLOC(stride * (size_t)m->nslots + BATCH__CACHE_LINE, ctx)) != NULL;
    for (int i = 0; ok && i < m->nslots; i++) {
        batch__mslot* sl = &m->slots[i];
        sl->job = m;
        if (d->acc_size) sl->acc = (char*)batch__align_up(m->slot_accs) + stride * (size_t)i;
        sl->next = (i + 1 < m->nslots) ? &m->slots[i + 1] : NULL;
    }
    if (!ok) { batch__map_free_buffers(m); batch__mutex_destroy(&m->lock); BATCH_FREE(m, ctx); return BATCH_ERR_NOMEM; }
    m->free_slots = m->slots;
    if (d->acc_size) d->init_fn(m->acc, d->user_data);
    batch_counter_init(&m->latch, pool);
    batch_counter_init(&m->avail, pool);
    batch_counter_add(&m->latch, 1);   /* the dispatch token */
    m->launch_ns = batch_now_ns();
    m->deadline_ns = d->timeout_ns ? m->launch_ns + d->timeout_ns : 0;
    batch__progress_init(&m->head.prog, &d->progress, m->threads, m->launch_ns);
    if (!d->pull_fn && d->count == 0) m->input_done = true;
    if (d->journal.path) {
        m->rerun_failed = d->journal.rerun_failed != 0;
        uint64_t fp = d->journal.fingerprint ? d->journal.fingerprint : batch__map_fingerprint(m);
        m->jrec = (unsigned char*)BATCH_MALLOC(BATCH__JBATCH_LEN + d->acc_size, ctx);
        r = m->jrec ? batch__journal_open(&m->jn, &d->journal, BATCH__JKIND_MAP, fp, (uint32_t)d->acc_size,
                                          BATCH__JBATCH_LEN + d->acc_size, batch__map_replay, m, ctx)
                    : BATCH_ERR_NOMEM;
        if (r == BATCH_OK && (r = batch__map_sort_ranges(m)) != BATCH_OK) { batch__journal_free(m->jn); m->jn = NULL; }
        if (r != BATCH_OK) { batch__map_free_buffers(m); batch__mutex_destroy(&m->lock); BATCH_FREE(m, ctx); return r; }
        d->journal.path = NULL;   /* borrowed: not kept */
        d->journal.io = NULL;
    }
    *out = (batch_job*)m;
    batch__mutex_lock(&m->lock);
    batch__map_unlock(m, batch__map_pump(m));
    return BATCH_OK;
}

BATCH_API batch_result batch_map_launch(batch_pool* pool, const batch_map_desc* desc, batch_job** out) {
    return batch__map_launch_ext(pool, desc, NULL, out);
}

/* ---- consuming --------------------------------------------------------------------------- */
/* batch_map_next; block = false: *out stays NULL when no batch is ready now. */
BATCH__PRIVATE void batch__map_next(batch__mjob* m, const batch_batch** out, bool block) {
    batch__mslot* list = NULL;
    batch__mutex_lock(&m->lock);
    if (m->held) {
        batch__slot_free(m, m->held);
        m->held = NULL;
        list = batch__map_pump(m);
    }
    for (;;) {
        if (m->iq_head) {
            batch__mslot* sl = m->iq_head;
            m->iq_head = sl->next;
            if (!m->iq_head) m->iq_tail = NULL;
            sl->state = BATCH__SLOT_HELD;
            m->held = sl;
            *out = &sl->view;
            break;
        }
        if (m->token_released && m->running == 0) {
            bool all_free = true;   /* ordered: finished batches may still wait for an earlier one */
            for (int i = 0; i < m->nslots; i++) if (m->slots[i].state != BATCH__SLOT_FREE) all_free = false;
            if (all_free) break;
        }
        if (!block) break;
        m->consumer_waiting = true;
        batch_counter_add(&m->avail, 1);
        batch__map_unlock(m, list);   /* the job outlives this call: the consumer destroys it */
        list = NULL;
        batch_counter_wait(&m->avail);
        batch__mutex_lock(&m->lock);
    }
    batch__map_unlock(m, list);
}

BATCH_API batch_result batch_map_next(batch_job* pub, const batch_batch** out) {
    if (!out) return BATCH_ERR_INVALID;
    *out = NULL;
    batch__mjob* m = (batch__mjob*)pub;
    if (!m || m->head.ops != &batch__map_job_ops || !m->d.iterate) return BATCH_ERR_INVALID;
    if (batch__job_self_call(pub)) return BATCH_ERR_BUSY;   /* from the map's own code: it could never end */
    batch__map_next(m, out, true);
    return BATCH_OK;
}

/* Waits for the end and fills m->s once. */
BATCH__PRIVATE batch_result batch__map_finish(batch__mjob* m) {
    if (m->done) return m->s.result;
    if (m->d.iterate) {
        /* release what the consumer did not read; later batches are freed on delivery */
        batch__mslot* list;
        batch__mutex_lock(&m->lock);
        m->draining = true;
        if (m->held) { batch__slot_free(m, m->held); m->held = NULL; }
        while (m->iq_head) { batch__mslot* sl = m->iq_head; m->iq_head = sl->next; batch__slot_free(m, sl); }
        m->iq_tail = NULL;
        list = batch__map_pump(m);
        batch__map_unlock(m, list);
    }
    batch__job_wait_latch((batch_job*)m, &m->latch);
    if (m->jn) {
        batch_result cr = batch__journal_close(m->jn);
        if (cr != BATCH_OK) {
            if (m->io_error == BATCH_OK) m->io_error = cr;
            atomic_store(&m->stop, BATCH__STOP_IO);
        }
        m->jn = NULL;
    }
    batch_map_summary* s = &m->s;
    s->wall_ns = batch_now_ns() - m->launch_ns;
    s->items = s->succeeded + s->failed;
    if (!m->d.pull_fn) s->unprocessed += m->d.count - m->next_item;   /* += : batches handed out, never run (mpi.c) */
    s->success_rate = s->items ? (double)s->succeeded / (double)s->items : 1.0;
    s->parallel_efficiency = s->wall_ns ? (double)s->busy_ns / ((double)s->wall_ns * m->threads) : 0.0;
    int stop = atomic_load(&m->stop);
    bool cut = s->unprocessed || (m->d.pull_fn && !m->input_done) || atomic_load(&m->cut);
    if (stop == BATCH__STOP_CANCEL && cut) {
        s->status = BATCH_JOB_CANCELLED; s->result = BATCH_ERR_CANCELLED;
    } else if (stop == BATCH__STOP_DEADLINE) {   /* it had not finished by the deadline */
        s->status = BATCH_JOB_CANCELLED; s->result = BATCH_ERR_TIMEOUT;
    } else if (stop == BATCH__STOP_HALT) {
        s->status = BATCH_JOB_FAILED; s->result = BATCH_ERR_FAILED;
    } else if (stop == BATCH__STOP_NOMEM) {
        s->status = BATCH_JOB_FAILED; s->result = BATCH_ERR_NOMEM;
    } else if (stop == BATCH__STOP_IO) {
        s->status = BATCH_JOB_FAILED; s->result = m->io_error;
    } else if (s->failed) {
        s->status = s->succeeded ? BATCH_JOB_PARTIAL_FAILURE : BATCH_JOB_FAILED;
        s->result = s->batches_failed ? BATCH_ERR_FAILED : BATCH_PARTIAL;
    } else {
        s->status = BATCH_JOB_COMPLETED; s->result = BATCH_OK;
    }
    /* remember the cost per item for the next map with this key (on this, the waiting thread) */
    if (m->d.sizing && m->key && s->items && s->busy_ns)
        batch_sizing_record_cost(m->d.sizing, m->key, s->busy_ns / s->items + 1);
    m->done = true;
    batch__progress_emit((batch_job*)m, s->status == BATCH_JOB_CANCELLED ? BATCH_EVENT_JOB_CANCELLED : BATCH_EVENT_JOB_COMPLETED, NULL);
    return s->result;
}

BATCH_API batch_result batch_map_wait(batch_job* pub, batch_map_summary* summary, void* acc_out) {
    batch__mjob* m = (batch__mjob*)pub;
    if (!m || m->head.ops != &batch__map_job_ops) return BATCH_ERR_INVALID;
    if (!m->done && batch__job_self_call(pub)) return BATCH_ERR_BUSY;   /* from the map's own code: it could never end */
    batch_result r = batch__map_finish(m);
    if (summary) *summary = m->s;
    if (acc_out && m->d.acc_size) memcpy(acc_out, m->acc, m->d.acc_size);
    return r;
}

BATCH_API batch_result batch_map_run(batch_pool* pool, const batch_map_desc* desc, batch_map_summary* summary, void* acc_out) {
    batch_job* job;
    batch_result r = batch_map_launch(pool, desc, &job);
    if (r != BATCH_OK) {   /* nothing ran: a defined summary all the same (acc_out untouched) */
        if (summary) { memset(summary, 0, sizeof *summary); summary->status = BATCH_JOB_FAILED; summary->result = r; }
        return r;
    }
    r = batch_map_wait(job, summary, acc_out);
    batch_job_destroy(job);
    return r;
}

/* ---- the seam for mpi.c (declared at the top) ------------------------------------------------ */
/* Launches a map in one of the seam's modes; ext (its state) belongs to the job once launched. */
BATCH__PRIVATE batch_result batch__map_launch_mode(batch_pool* pool, const batch_map_desc* desc, batch__map_ext* ext, batch_job** out) {
    if (!ext) { if (out) *out = NULL; return BATCH_ERR_NOMEM; }
    batch_result r = batch__map_launch_ext(pool, desc, ext, out);
    if (r != BATCH_OK) BATCH_FREE(ext, batch__pool_alloc_ctx(pool));
    return r;
}

BATCH__PRIVATE batch_result batch__map_source_launch(batch_pool* pool, const batch_map_desc* desc, int threads, batch_job** out) {
    batch__map_ext* x = (batch__map_ext*)BATCH_MALLOC(sizeof *x, batch__pool_alloc_ctx(pool));
    if (x) {
        memset(x, 0, sizeof *x);
        x->mode = BATCH__EXT_SOURCE;
        x->threads = threads;
        x->dtail = &x->dhead;
    }
    return batch__map_launch_mode(pool, desc, x, out);
}

BATCH__PRIVATE bool batch__map_source_take(batch_job* src, batch__range* out) {
    batch__mjob* m = (batch__mjob*)src;
    batch__map_ext* x = m->ext;
    batch__mutex_lock(&m->lock);
    batch__mslot* sl = x->dhead;
    if (sl) {
        x->dhead = sl->next;
        if (!x->dhead) x->dtail = &x->dhead;
        sl->next = NULL;
        out->index = sl->batch_index;
        out->first = sl->first;
        out->count = sl->count;
    }
    batch__mutex_unlock(&m->lock);
    return sl != NULL;
}

/* Job lock held: a batch of the source that will never run is finished undelivered (in order,
   when ordered: later batches may wait for it); its items count as unprocessed. */
BATCH__PRIVATE void batch__map_source_drop(batch__mjob* m, batch__mslot* sl) {
    sl->unrun = true;
    batch__map_finished(m, sl);
}

BATCH__PRIVATE bool batch__map_source_return(batch_job* src, const batch__outcome* o) {
    batch__mjob* m = (batch__mjob*)src;
    batch__mslot* sl = NULL;
    batch__mutex_lock(&m->lock);
    for (int i = 0; i < m->nslots && !sl; i++)
        if (m->slots[i].state == BATCH__SLOT_RUNNING && m->slots[i].batch_index == o->index) sl = &m->slots[i];
    if (!sl) { batch__mutex_unlock(&m->lock); return false; }
    if (o->status == BATCH__NOT_RUN) {
        batch__map_source_drop(m, sl);
        batch__map_unlock(m, batch__map_pump(m));
        return true;
    }
    batch__mutex_unlock(&m->lock);
    sl->status = (batch_batch_status)o->status;
    sl->succeeded = o->succeeded;
    sl->failed = o->failed;
    sl->retries_used = o->retries;
    sl->exec_ns = o->exec_ns;
    sl->start_ns = batch_now_ns() - o->exec_ns;
    sl->nerrors = 0;
    sl->worker = -1;
    if (m->d.acc_size && o->acc) memcpy(sl->acc, o->acc, m->d.acc_size);
    batch__mslot_done(m, sl, o->exec_ns, (uint64_t)o->retries);
    return true;
}

BATCH__PRIVATE int batch__map_source_end(batch_job* src) {
    batch__mjob* m = (batch__mjob*)src;
    batch__map_ext* x = m->ext;
    batch__mutex_lock(&m->lock);
    int stop = atomic_load(&m->stop), end = BATCH__SOURCE_OPEN;
    if (m->token_released) {
        bool cancel = stop == BATCH__STOP_CANCEL || stop == BATCH__STOP_DEADLINE || stop == BATCH__STOP_IO ||
                      stop == BATCH__STOP_NOMEM;   /* a halt, as the end of the input, lets cut batches run */
        if (cancel) {
            while (x->dhead) {
                batch__mslot* sl = x->dhead;
                x->dhead = sl->next;
                sl->next = NULL;
                batch__map_source_drop(m, sl);
            }
            x->dtail = &x->dhead;
            end = BATCH__SOURCE_CANCELLED;
        } else if (!x->dhead) {
            end = BATCH__SOURCE_DONE;
        }
    }
    batch__map_unlock(m, NULL);   /* pays for the slots dropped; no batch is cut any more */
    return end;
}

BATCH__PRIVATE void batch__map_source_abandon(batch_job* src) {
    batch__mjob* m = (batch__mjob*)src;
    int e = 0;
    atomic_compare_exchange_strong(&m->stop, &e, BATCH__STOP_CANCEL);
    batch__mutex_lock(&m->lock);
    m->ext->dhead = NULL;   /* the slots listed there are RUNNING too: dropped below */
    m->ext->dtail = &m->ext->dhead;
    for (int i = 0; i < m->nslots; i++)
        if (m->slots[i].state == BATCH__SLOT_RUNNING) batch__map_source_drop(m, &m->slots[i]);
    batch__map_unlock(m, batch__map_pump(m));
}

BATCH__PRIVATE batch_result batch__map_executor_launch(batch_pool* pool, const batch_map_desc* desc, int max_in_flight, batch_job** out) {
    batch_map_desc ed = *desc;   /* the batch rules; sizing, order, halt, time, journal are the source's */
    ed.iterate = 1;
    ed.ordered = 0;
    ed.keep_batches = 0;
    ed.halt_error_ratio = 0;
    ed.timeout_ns = 0;
    ed.max_concurrent_batches = 0;
    ed.max_in_flight = max_in_flight;
    ed.sizing = NULL;
    ed.key = NULL;
    memset(&ed.progress, 0, sizeof ed.progress);
    memset(&ed.journal, 0, sizeof ed.journal);
    size_t n = max_in_flight > 0 ? (size_t)max_in_flight : 0;
    batch__map_ext* x = (batch__map_ext*)BATCH_MALLOC(sizeof *x + n * sizeof(batch__range), batch__pool_alloc_ctx(pool));
    if (x) {
        memset(x, 0, sizeof *x);
        x->mode = BATCH__EXT_EXECUTOR;
    }
    return batch__map_launch_mode(pool, &ed, x, out);
}

BATCH__PRIVATE int batch__map_executor_room(batch_job* ex) {
    batch__mjob* m = (batch__mjob*)ex;
    batch__mutex_lock(&m->lock);
    int n = 0;
    for (batch__mslot* x = m->free_slots; x; x = x->next) n++;
    n -= (int)m->ext->rcount;   /* free slots are promised to the ranges queued */
    batch__mutex_unlock(&m->lock);
    return n;
}

BATCH__PRIVATE bool batch__map_executor_push(batch_job* ex, const batch__range* r) {
    batch__mjob* m = (batch__mjob*)ex;
    batch__map_ext* x = m->ext;
    batch__mutex_lock(&m->lock);
    if (x->rcount == (size_t)m->nslots || x->closed) { batch__mutex_unlock(&m->lock); return false; }
    x->ranges[(x->rhead + x->rcount++) % (size_t)m->nslots] = *r;
    batch__map_unlock(m, batch__map_pump(m));
    return true;
}

BATCH__PRIVATE bool batch__map_executor_take(batch_job* ex, batch__outcome* o) {
    const batch_batch* b = NULL;
    batch__map_next((batch__mjob*)ex, &b, false);   /* an executor is an iterator map */
    if (!b) return false;
    o->index = b->batch_index;
    o->succeeded = b->succeeded;
    o->failed = b->failed;
    o->status = (int)b->status;
    o->retries = b->retries_used;
    o->exec_ns = b->exec_ns;
    o->acc = b->acc;
    return true;
}

BATCH__PRIVATE size_t batch__map_executor_stop(batch_job* ex, bool cancel, batch__range* out, size_t cap) {
    batch__mjob* m = (batch__mjob*)ex;
    batch__map_ext* x = m->ext;
    batch__mutex_lock(&m->lock);
    size_t n = 0;
    while (cancel && x->rcount && n < cap) {
        out[n++] = x->ranges[x->rhead];
        x->rhead = (x->rhead + 1) % (size_t)m->nslots;
        x->rcount--;
    }
    x->closed = true;
    if (cancel) {   /* nothing new starts; running items see batch_ctx_should_stop */
        int e = 0;
        atomic_compare_exchange_strong(&m->stop, &e, BATCH__STOP_CANCEL);
    }
    batch__map_unlock(m, batch__map_pump(m));
    return n;
}

BATCH__PRIVATE bool batch__map_idle(batch_job* job) {
    batch__mjob* m = (batch__mjob*)job;
    batch__mutex_lock(&m->lock);
    bool idle = m->token_released && !m->held && !m->iq_head;
    for (int i = 0; idle && i < m->nslots; i++) idle = m->slots[i].state == BATCH__SLOT_FREE;
    batch__mutex_unlock(&m->lock);
    return idle;
}

BATCH__PRIVATE batch_result batch__map_job_wait(batch_job* pub, batch_job_summary* out) {
    batch__mjob* m = (batch__mjob*)pub;
    if (!m->done && batch__job_self_call(pub)) return BATCH_ERR_BUSY;   /* from the map's own code: it could never end */
    batch_result r = batch__map_finish(m);
    if (out) {
        memset(out, 0, sizeof *out);
        out->status = m->s.status;
        out->result = m->s.result;
        out->completed = m->s.succeeded;
        out->failed = m->s.failed;
        out->cancelled = m->s.unprocessed;
        out->total = out->completed + out->failed + out->cancelled;
        out->retries = m->s.retries;
        out->wall_ns = m->s.wall_ns;
        out->busy_ns = m->s.busy_ns;
        out->peak_concurrency = m->s.peak_concurrent_batches;
    }
    return r;
}

BATCH__PRIVATE batch_result batch__map_job_cancel(batch_job* pub) {
    batch__mjob* m = (batch__mjob*)pub;
    int e = 0;
    atomic_compare_exchange_strong(&m->stop, &e, BATCH__STOP_CANCEL);
    /* from on_batch or pull_fn (the lock is ours): the pump that follows the callback stops */
    if (batch__tls_map_locked == pub) return BATCH_OK;
    /* wake a consumer so that it sees the end once the running batches are delivered */
    batch__mutex_lock(&m->lock);
    batch__map_unlock(m, batch__map_pump(m));
    return BATCH_OK;
}

BATCH__PRIVATE void batch__map_job_counts(batch_job* pub, batch_progress* out, uint64_t* busy) {
    batch__mjob* m = (batch__mjob*)pub;
    bool held = batch__tls_map_locked == pub;   /* from on_batch: this thread holds the lock */
    if (!held) batch__mutex_lock(&m->lock);
    out->total = m->d.pull_fn ? (m->input_done ? m->next_item : 0) : m->d.count;
    out->succeeded = m->s.succeeded;
    out->failed = m->s.failed;
    out->retried = m->s.retries;
    out->running = m->conc_now;
    out->cancelled = m->done ? m->s.unprocessed : 0;
    out->processed = out->succeeded + out->failed + out->cancelled;
    *busy = m->s.busy_ns;
    if (!held) batch__mutex_unlock(&m->lock);
}

BATCH__PRIVATE batch_result batch__map_job_facts(batch_job* pub, batch__job_facts* out);   /* records for reports */
BATCH__PRIVATE void batch__map_job_record(batch_job* pub, size_t i, batch__record* out);
BATCH__PRIVATE const void* batch__map_job_earlier(batch_job* pub, const void* cursor, batch__record* out);
static const batch__job_ops batch__map_job_ops = { batch__map_job_wait, batch__map_job_cancel, batch__map_job_free,
                                                   batch__map_job_counts, batch__job_self_call,
                                                   NULL /* an item's context has its own message buffer */,
                                                   batch__map_job_facts, batch__map_job_record, batch__map_job_earlier };

/* ---- records for reports ------------------------------------------------------------------ */
/* The map's facts once it was waited for: its summaries, one record per kept batch. */
BATCH__PRIVATE batch_result batch__map_job_facts(batch_job* pub, batch__job_facts* out) {
    batch__mjob* m = (batch__mjob*)pub;
    if (!m->done) return BATCH_ERR_BUSY;
    memset(out, 0, sizeof *out);
    out->kind = BATCH__KIND_MAP;
    batch__map_job_wait(pub, &out->summary);   /* done: only copies */
    out->launch_ns = m->launch_ns;
    out->nrecords = m->nrecs;
    out->keeps_records = m->d.keep_batches != 0;
    out->timeline = m->nrecs != 0;
    out->workers = m->threads;
    out->map = m->s;
    return BATCH_OK;
}

/* A kept record as a report's record (its times are kept since the launch). */
BATCH__PRIVATE void batch__map_rec_out(const batch__mjob* m, const batch__batch_rec* b, batch__record* out) {
    memset(out, 0, sizeof *out);
    out->index = b->index;
    out->status = b->status;
    out->status_string = batch_batch_status_string((batch_batch_status)b->status);
    out->attempts = b->retries + 1;
    out->retries = b->retries;
    out->worker = b->worker;
    out->start_ns = m->launch_ns + b->start_ns;
    out->end_ns = m->launch_ns + b->end_ns;
    out->first = b->first;
    out->count = b->count;
    out->succeeded = b->succeeded;
    out->failed = b->failed;
    out->attempt = b->retries + 1;
    out->next_ns = b->next_ns ? m->launch_ns + b->next_ns : 0;
}

/* Kept batch i. */
BATCH__PRIVATE void batch__map_job_record(batch_job* pub, size_t i, batch__record* out) {
    const batch__mjob* m = (const batch__mjob*)pub;
    batch__map_rec_out(m, &m->recs[i], out);   /* i < facts.nrecords */
}

/* The attempts a retry followed, in the order their retries started (the cursor: the last one
   returned). attempts and retries are the attempt's own: the batch's are in its kept record. */
BATCH__PRIVATE const void* batch__map_job_earlier(batch_job* pub, const void* cursor, batch__record* out) {
    const batch__mjob* m = (const batch__mjob*)pub;
    const batch__batch_rec* b = cursor ? (const batch__batch_rec*)cursor + 1 : m->tries;
    if (!b || b >= m->tries + m->ntries) return NULL;
    batch__map_rec_out(m, b, out);
    return b;
}

#endif /* BATCH__MAP_C */
/* ---- end batch_impl/map.c ---- */
/* ---- begin batch_impl/report.c ---- */
/* report.c - JSON, text and HTML reports and the Chrome trace of a finished job (graph run or
   map). Integers only (microseconds, counts, per mille; the trace's microseconds are integers of
   nanoseconds written with 3 decimals), strings escaped: the output does not depend on the locale. */
#ifndef BATCH__REPORT_C
#define BATCH__REPORT_C
#ifndef BATCH_SINGLE_FILE
#  include "job.c"
#endif

/* The characters of s as they go between the quotes of a JSON string. */
BATCH__PRIVATE void batch__json_chars(FILE* out, const char* s) {
    for (const unsigned char* c = (const unsigned char*)s; *c; c++) {
        switch (*c) {
            case '"': fputs("\\\"", out); break;
            case '\\': fputs("\\\\", out); break;
            case '\n': fputs("\\n", out); break;
            case '\r': fputs("\\r", out); break;
            case '\t': fputs("\\t", out); break;
            default:
                if (*c < 0x20) fprintf(out, "\\u%04x", *c);
                else fputc(*c, out);
        }
    }
}
BATCH__PRIVATE void batch__json_string(FILE* out, const char* s) {
    if (!s) { fputs("null", out); return; }
    fputc('"', out);
    batch__json_chars(out, s);
    fputc('"', out);
}

BATCH__PRIVATE unsigned long long batch__us(uint64_t ns) { return (unsigned long long)(ns / 1000u); }
BATCH__PRIVATE unsigned long long batch__permille(uint64_t part, uint64_t whole) {
    return whole ? (unsigned long long)((part * 1000u + whole / 2) / whole) : 1000ull;
}

/* The finished job's facts (job.c, "records for reports"): BATCH_ERR_INVALID (NULL) or
   BATCH_ERR_BUSY (not waited for yet). The reports read the job through these and its records
   only. */
BATCH__PRIVATE batch_result batch__report_facts(batch_job* job, FILE* out, batch__job_facts* f) {
    if (!job || !out) return BATCH_ERR_INVALID;
    return batch__head(job)->ops->facts(job, f);
}
BATCH__PRIVATE void batch__report_record(batch_job* job, size_t i, batch__record* r) { batch__head(job)->ops->record(job, i, r); }

/* A record's time in microseconds since the launch; 0 when it has none. */
BATCH__PRIVATE unsigned long long batch__record_us(const batch__job_facts* f, uint64_t t) {
    return t ? batch__us(t - f->launch_ns) : 0ull;
}
/* A time since the launch (0 before it), in nanoseconds. */
BATCH__PRIVATE uint64_t batch__trace_rel(const batch__job_facts* f, uint64_t t) { return t > f->launch_ns ? t - f->launch_ns : 0; }
/* A task's name, or "#id" when it has none (truncated to n - 1 characters). */
BATCH__PRIVATE void batch__record_label(const batch__record* r, char* buf, size_t n) {
    if (r->name) snprintf(buf, n, "%s", r->name);
    else snprintf(buf, n, "#%u", (unsigned)(r->index + 1));
}

/* JSON: the kind, status and counts every job has. */
BATCH__PRIVATE void batch__json_summary(FILE* out, const batch__job_facts* f) {
    const batch_job_summary* s = &f->summary;
    fprintf(out, "{\n  \"kind\": \"%s\",\n  \"status\": \"%s\",\n  \"result\": ", f->kind == BATCH__KIND_GRAPH ? "graph" : "map",
            batch_job_status_string(s->status));
    batch__json_string(out, batch_result_string(s->result));
    fprintf(out, ",\n  \"result_code\": %d,\n", (int)s->result);
    fprintf(out, "  \"total\": %llu,\n  \"completed\": %llu,\n  \"failed\": %llu,\n  \"skipped\": %llu,\n  \"cancelled\": %llu,\n"
                 "  \"retries\": %llu,\n  \"success_rate_permille\": %llu,\n  \"wall_us\": %llu,\n  \"busy_us\": %llu,\n"
                 "  \"peak_concurrency\": %llu",
            (unsigned long long)s->total, (unsigned long long)s->completed, (unsigned long long)s->failed,
            (unsigned long long)s->skipped, (unsigned long long)s->cancelled, (unsigned long long)s->retries,
            batch__permille(s->completed, s->completed + s->failed + s->skipped), batch__us(s->wall_ns), batch__us(s->busy_ns),
            (unsigned long long)s->peak_concurrency);
}

/* JSON: a graph's name and every task. */
BATCH__PRIVATE void batch__json_tasks(FILE* out, batch_job* job, const batch__job_facts* f) {
    fputs(",\n  \"graph\": ", out);
    batch__json_string(out, f->name);
    fputs(",\n  \"tasks\": [", out);
    for (size_t i = 0; i < f->nrecords; i++) {
        batch__record r;
        batch__report_record(job, i, &r);
        fprintf(out, "%s\n    {\"id\": %zu, \"name\": ", i ? "," : "", r.index + 1);
        batch__json_string(out, r.name);
        fprintf(out, ", \"status\": \"%s\", \"attempts\": %d, \"error\": %d, \"message\": ", r.status_string, r.attempts, r.error);
        batch__json_string(out, r.message);
        fprintf(out, ", \"worker\": %d, \"start_us\": %llu, \"end_us\": %llu}", r.worker, batch__record_us(f, r.start_ns),
                batch__record_us(f, r.end_ns));
    }
    fputs(f->nrecords ? "\n  ]" : "]", out);
}

/* JSON: a map's batch counts, and the kept batches when it keeps them. */
BATCH__PRIVATE void batch__json_batches(FILE* out, batch_job* job, const batch__job_facts* f) {
    const batch_map_summary* m = &f->map;
    fprintf(out, ",\n  \"batches\": %llu,\n  \"batches_succeeded\": %llu,\n  \"batches_partial\": %llu,\n"
                 "  \"batches_failed\": %llu,\n  \"unprocessed\": %llu,\n  \"efficiency_permille\": %llu,\n"
                 "  \"final_batch_size\": %zu",
            (unsigned long long)m->batches, (unsigned long long)m->batches_succeeded, (unsigned long long)m->batches_partial,
            (unsigned long long)m->batches_failed, (unsigned long long)m->unprocessed,
            batch__permille(m->busy_ns, m->wall_ns * (uint64_t)f->workers), m->final_batch_size);
    if (!f->keeps_records) return;
    fputs(",\n  \"batches_kept\": [", out);
    for (size_t i = 0; i < f->nrecords; i++) {
        batch__record r;
        batch__report_record(job, i, &r);
        fprintf(out, "%s\n    {\"index\": %zu, \"first\": %zu, \"count\": %zu, \"status\": \"%s\", \"succeeded\": %zu, "
                     "\"failed\": %zu, \"retries\": %d, \"worker\": %d, \"start_us\": %llu, \"end_us\": %llu}",
                i ? "," : "", r.index, r.first, r.count, r.status_string, r.succeeded, r.failed, r.retries, r.worker,
                batch__record_us(f, r.start_ns), batch__record_us(f, r.end_ns));
    }
    fputs(f->nrecords ? "\n  ]" : "]", out);
}

BATCH_API batch_result batch_job_report_json(batch_job* job, FILE* out) {
    batch__job_facts f;
    batch_result r = batch__report_facts(job, out, &f);
    if (r != BATCH_OK) return r;
    batch__json_summary(out, &f);
    if (f.kind == BATCH__KIND_GRAPH) batch__json_tasks(out, job, &f);
    else batch__json_batches(out, job, &f);
    fputs("\n}\n", out);
    return (fflush(out) != 0 || ferror(out)) ? BATCH_ERR_IO : BATCH_OK;   /* the whole report reached the file */
}

/* Text: the tasks that did not complete, under a header when there is one. */
BATCH__PRIVATE void batch__text_tasks(FILE* out, batch_job* job, const batch__job_facts* f) {
    bool header = false;
    for (size_t i = 0; i < f->nrecords; i++) {
        batch__record r;
        batch__report_record(job, i, &r);
        if (r.status == BATCH_TASK_COMPLETED) continue;
        if (!header) { fprintf(out, "  %-24s %-10s %8s %6s  %s\n", "task", "status", "attempts", "error", "message"); header = true; }
        char label[64];
        batch__record_label(&r, label, sizeof label);
        fprintf(out, "  %-24s %-10s %8d %6d  %s\n", label, r.status_string, r.attempts, r.error, r.message ? r.message : "");
    }
}

BATCH_API batch_result batch_job_report_text(batch_job* job, FILE* out) {
    batch__job_facts f;
    batch_result r = batch__report_facts(job, out, &f);
    if (r != BATCH_OK) return r;
    const batch_job_summary* s = &f.summary;
    bool graph = f.kind == BATCH__KIND_GRAPH;
    unsigned long long rate = batch__permille(s->completed, s->completed + s->failed + s->skipped);
    fprintf(out, "%s job: %s (%s)\n", graph ? "graph" : "map", batch_job_status_string(s->status), batch_result_string(s->result));
    fprintf(out, "  %-12s %12s\n", graph ? "tasks" : "items", "count");
    fprintf(out, "  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n  %-12s %12llu\n",
            "total", (unsigned long long)s->total, "completed", (unsigned long long)s->completed, "failed",
            (unsigned long long)s->failed, "skipped", (unsigned long long)s->skipped, graph ? "cancelled" : "unprocessed",
            (unsigned long long)s->cancelled, "retries", (unsigned long long)s->retries);
    fprintf(out, "  success rate %llu.%llu%%  wall %llu.%03llu ms  busy %llu.%03llu ms  peak %llu\n", rate / 10, rate % 10,
            batch__us(s->wall_ns) / 1000, batch__us(s->wall_ns) % 1000, batch__us(s->busy_ns) / 1000,
            batch__us(s->busy_ns) % 1000, (unsigned long long)s->peak_concurrency);
    if (graph) {
        batch__text_tasks(out, job, &f);
    } else {
        const batch_map_summary* m = &f.map;
        fprintf(out, "  batches %llu: %llu success, %llu partial, %llu failed; final batch size %zu\n",
                (unsigned long long)m->batches, (unsigned long long)m->batches_succeeded,
                (unsigned long long)m->batches_partial, (unsigned long long)m->batches_failed, m->final_batch_size);
    }
    return (fflush(out) != 0 || ferror(out)) ? BATCH_ERR_IO : BATCH_OK;   /* the whole report reached the file */
}

/* ---- HTML: one self-contained file (inline CSS and a few lines of script, nothing fetched) -- */
BATCH__PRIVATE void batch__html_text(FILE* out, const char* s) {
    for (; s && *s; s++) {
        switch (*s) {
            case '<': fputs("&lt;", out); break;
            case '>': fputs("&gt;", out); break;
            case '&': fputs("&amp;", out); break;
            case '"': fputs("&quot;", out); break;
            default: fputc(*s, out);
        }
    }
}
/* The job's name: the graph's, else "graph" or "map"; escaped. */
BATCH__PRIVATE void batch__html_name(FILE* out, const batch__job_facts* f) {
    batch__html_text(out, f->name ? f->name : f->kind == BATCH__KIND_GRAPH ? "graph" : "map");
}
/* A non-negative coordinate with one decimal, without the locale's decimal point. */
BATCH__PRIVATE void batch__html_num(FILE* out, double x) {
    unsigned long long t = x > 0 ? (unsigned long long)(x * 10.0 + 0.5) : 0ull;
    fprintf(out, "%llu.%llu", t / 10, t % 10);
}
/* A record's name: the task's (or "#id"), or "batch N (items a-b)". */
BATCH__PRIVATE void batch__html_label(FILE* out, const batch__job_facts* f, const batch__record* r) {
    if (f->kind == BATCH__KIND_MAP) { fprintf(out, "batch %zu (items %zu-%zu)", r->index, r->first, r->first + r->count - 1); return; }
    char label[64];
    batch__record_label(r, label, sizeof label);
    batch__html_text(out, label);
}

/* HTML: the head, the job's name, and a table of the counts every job has. */
BATCH__PRIVATE void batch__html_summary(FILE* out, const batch__job_facts* f) {
    const batch_job_summary* s = &f->summary;
    bool graph = f->kind == BATCH__KIND_GRAPH;
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>", out);
    batch__html_name(out, f);
    fputs("</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th{background:#eee}table.why td{text-align:left}"
          "svg text{font-size:11px;font-family:sans-serif}svg rect,svg line{vector-effect:non-scaling-stroke}"
          "svg rect{stroke:#555;stroke-width:.3}div.tl{overflow-x:auto;width:100%}"
          ".completed,.success{fill:#6c6;background:#6c6}.failed{fill:#e55;background:#e55}.skipped{fill:#bbb;background:#bbb}"
          ".cancelled{fill:#f93;background:#f93}.partial_success{fill:#fd6;background:#fd6}table.why tr{background:none}"
          "</style></head><body>\n<h1>", out);
    batch__html_name(out, f);
    unsigned long long rate = batch__permille(s->completed, s->completed + s->failed + s->skipped);
    fprintf(out, "</h1>\n<p>%s job: <b>%s</b> (%s), success rate %llu.%llu%%, wall %llu.%03llu ms, peak concurrency %llu</p>\n"
                 "<table><tr>", graph ? "graph" : "map", batch_job_status_string(s->status), batch_result_string(s->result),
            rate / 10, rate % 10, batch__us(s->wall_ns) / 1000, batch__us(s->wall_ns) % 1000,
            (unsigned long long)s->peak_concurrency);
    const char* heads[] = { "total", "completed", "failed", "skipped", graph ? "cancelled" : "unprocessed", "retries",
                            "wall ms", "busy ms", "peak" };
    uint64_t vals[] = { s->total, s->completed, s->failed, s->skipped, s->cancelled, s->retries, batch__us(s->wall_ns),
                        batch__us(s->busy_ns), s->peak_concurrency };   /* wall and busy: us, shown as ms */
    for (int i = 0; i < 9; i++) fprintf(out, "<th>%s</th>", heads[i]);
    fputs("</tr><tr>", out);
    for (int i = 0; i < 9; i++)
        if (i == 6 || i == 7) fprintf(out, "<td>%llu.%03llu</td>", (unsigned long long)vals[i] / 1000, (unsigned long long)vals[i] % 1000);
        else fprintf(out, "<td>%llu</td>", (unsigned long long)vals[i]);
    fputs("</tr></table>\n", out);
    if (!graph)
        fprintf(out, "<p>batches %llu: %llu success, %llu partial, %llu failed; final batch size %zu</p>\n",
                (unsigned long long)f->map.batches, (unsigned long long)f->map.batches_succeeded,
                (unsigned long long)f->map.batches_partial, (unsigned long long)f->map.batches_failed, f->map.final_batch_size);
}

/* HTML: what did not succeed, a row per record: failed, then skipped, then cancelled tasks (a
   map's kept batches: failed, then partial); the first BATCH__HTML_ROWS rows, then a count. */
#define BATCH__HTML_ROWS 1000
BATCH__PRIVATE void batch__html_failures(FILE* out, batch_job* job, const batch__job_facts* f) {
    bool graph = f->kind == BATCH__KIND_GRAPH;
    const int order[3] = { graph ? BATCH_TASK_FAILED : BATCH_BATCH_FAILED, graph ? BATCH_TASK_SKIPPED : BATCH_BATCH_PARTIAL_SUCCESS,
                           graph ? BATCH_TASK_CANCELLED : -1 };
    size_t rows = 0;
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < f->nrecords; i++) {
            batch__record r;
            batch__report_record(job, i, &r);
            if (r.status != order[k]) continue;
            if (!rows++)
                fprintf(out, "<h2>Not %s</h2>\n<table class=\"why\"><tr><th>%s</th><th>status</th><th>error</th><th>message</th>"
                             "<th>attempts</th></tr>\n", graph ? "completed" : "successful", graph ? "task" : "batch");
            if (rows > BATCH__HTML_ROWS) continue;
            fprintf(out, "<tr class=\"%s\"><td>", r.status_string);
            batch__html_label(out, f, &r);
            fprintf(out, "</td><td>%s</td><td>", r.status_string);
            if (graph && (r.error || r.status == BATCH_TASK_FAILED)) fprintf(out, "%d", r.error);
            fputs("</td><td>", out);
            if (graph) batch__html_text(out, r.message);
            else fprintf(out, "%zu ok, %zu failed", r.succeeded, r.failed);
            fputs("</td><td>", out);
            if (r.attempts) fprintf(out, "%d", r.attempts);
            fputs("</td></tr>\n", out);
        }
    }
    if (rows) fputs("</table>\n", out);
    if (rows > BATCH__HTML_ROWS) fprintf(out, "<p class=\"more\">and %zu more</p>\n", rows - BATCH__HTML_ROWS);
}

/* The SVG timeline: one lane per worker, one for other threads, then one for skipped and one
   for cancelled tasks when there are any (they did not run: a thin marker at the time they
   were settled when the record has one, else at the lane's end). BATCH__SVG_WIDTH units are the
   run's wall time; the SVG is as wide as the window, times the zoom. */
#define BATCH__SVG_WIDTH 1000.0
#define BATCH__SVG_LANE 22
#define BATCH__SVG_LEFT 80
typedef struct batch__html_bar { double x0, x1; int lane, status; size_t rec; } batch__html_bar;
typedef struct batch__html_tl {
    int lanes, skip_lane, cancel_lane, failed;   /* lane -1: none; failed: the status that never merges */
    double scale;                                 /* units per ns */
} batch__html_tl;

BATCH__PRIVATE int batch__html_bar_cmp(const void* a, const void* b) {
    const batch__html_bar* x = (const batch__html_bar*)a;
    const batch__html_bar* y = (const batch__html_bar*)b;
    if (x->lane != y->lane) return x->lane < y->lane ? -1 : 1;
    if (x->x0 != y->x0) return x->x0 < y->x0 ? -1 : 1;
    return (x->rec > y->rec) - (x->rec < y->rec);
}

/* The bars of the records that have one, sorted by lane and start; their number. */
BATCH__PRIVATE size_t batch__html_collect(batch_job* job, const batch__job_facts* f, const batch__html_tl* tl, batch__html_bar* bars) {
    size_t n = 0;
    for (size_t i = 0; i < f->nrecords; i++) {
        batch__record r;
        batch__report_record(job, i, &r);
        batch__html_bar* b = &bars[n];
        b->rec = i;
        b->status = r.status;
        int marker = f->kind != BATCH__KIND_GRAPH ? -1 : r.status == BATCH_TASK_SKIPPED ? tl->skip_lane
                   : r.status == BATCH_TASK_CANCELLED ? tl->cancel_lane : -1;
        if (marker >= 0) {
            double t = r.end_ns ? (double)batch__trace_rel(f, r.end_ns) * tl->scale : BATCH__SVG_WIDTH;
            b->lane = marker;
            b->x0 = t > 2 ? (t < BATCH__SVG_WIDTH ? t - 1 : BATCH__SVG_WIDTH - 2) : 0;
            b->x1 = b->x0 + 2;
        } else {
            if (!r.start_ns || (f->kind == BATCH__KIND_GRAPH && !r.attempts)) continue;
            b->lane = (r.worker >= 0 && r.worker < f->workers) ? r.worker : f->workers;
            b->x0 = (double)batch__trace_rel(f, r.start_ns) * tl->scale;
            b->x1 = (double)batch__trace_rel(f, r.end_ns) * tl->scale;
            if (b->x0 > BATCH__SVG_WIDTH) b->x0 = BATCH__SVG_WIDTH;
            if (b->x1 > BATCH__SVG_WIDTH) b->x1 = BATCH__SVG_WIDTH;
            if (b->x1 < b->x0) b->x1 = b->x0;
        }
        n++;
    }
    qsort(bars, n, sizeof *bars, batch__html_bar_cmp);
    return n;
}

/* One record's hover text. */
BATCH__PRIVATE void batch__html_bar_title(FILE* out, const batch__job_facts* f, const batch__record* r) {
    batch__html_label(out, f, r);
    fprintf(out, ": %s", r->status_string);
    if (r->start_ns)
        fprintf(out, ", %llu-%llu us", batch__us(batch__trace_rel(f, r->start_ns)), batch__us(batch__trace_rel(f, r->end_ns)));
    else fputs(", not run (drawn at the end)", out);
    if (f->kind == BATCH__KIND_MAP) fprintf(out, ", %zu ok, %zu failed, retries %d", r->succeeded, r->failed, r->retries);
    else if (r->attempts) fprintf(out, ", attempts %d", r->attempts);
    if (r->error) fprintf(out, ", error %d", r->error);
    if (r->message) { fputs(", ", out); batch__html_text(out, r->message); }
}

/* One rect for bars[first..last] (count of them, same lane and status), at least min_w wide. */
BATCH__PRIVATE void batch__html_rect(FILE* out, batch_job* job, const batch__job_facts* f, const batch__html_bar* first,
                                     const batch__html_bar* last, double x1, size_t count, double min_w) {
    batch__record r;
    batch__report_record(job, first->rec, &r);
    double x0 = first->x0, w = x1 - x0 < min_w ? min_w : x1 - x0;
    if (x0 + w > BATCH__SVG_WIDTH) x0 = BATCH__SVG_WIDTH - w > 0 ? BATCH__SVG_WIDTH - w : 0;
    fprintf(out, "<rect class=\"%s\" x=\"", r.status_string);
    batch__html_num(out, BATCH__SVG_LEFT + x0);
    fprintf(out, "\" y=\"%d\" width=\"", first->lane * BATCH__SVG_LANE + 3);
    batch__html_num(out, w);
    fprintf(out, "\" height=\"%d\"><title>", BATCH__SVG_LANE - 6);
    if (count == 1) {
        batch__html_bar_title(out, f, &r);
    } else {
        fprintf(out, "%zu %s %s, ", count, f->kind == BATCH__KIND_GRAPH ? "tasks" : "batches", r.status_string);
        batch__html_label(out, f, &r);
        fputs(" ... ", out);
        batch__report_record(job, last->rec, &r);
        batch__html_label(out, f, &r);
    }
    fputs("</title></rect>\n", out);
}

/* The bars: runs of touching same-status bars on a lane (gap under 1 unit) as one rect, then
   every failed one on its own, on top, at least 3 units wide. */
BATCH__PRIVATE void batch__html_bars(FILE* out, batch_job* job, const batch__job_facts* f, const batch__html_tl* tl,
                                     const batch__html_bar* bars, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (bars[i].status == tl->failed) { i++; continue; }
        size_t last = i, count = 1, j = i + 1;
        double x1 = bars[i].x1 > bars[i].x0 + 1 ? bars[i].x1 : bars[i].x0 + 1;
        for (; j < n && bars[j].lane == bars[i].lane; j++) {
            if (bars[j].status == tl->failed) continue;
            if (bars[j].status != bars[i].status || bars[j].x0 - x1 >= 1) break;
            double e = bars[j].x1 > bars[j].x0 + 1 ? bars[j].x1 : bars[j].x0 + 1;
            if (e > x1) x1 = e;
            last = j;
            count++;
        }
        batch__html_rect(out, job, f, &bars[i], &bars[last], x1, count, 1);
        i = j;
    }
    for (i = 0; i < n; i++)
        if (bars[i].status == tl->failed) batch__html_rect(out, job, f, &bars[i], &bars[i], bars[i].x1, 1, 3);
}

/* The time axis: ticks at multiples of a step of the 1-2-5 series, 5 to 10 of them, labelled in
   the unit (s, ms, us, ns) of the wall time. */
BATCH__PRIVATE void batch__html_axis(FILE* out, const batch__html_tl* tl, uint64_t wall) {
    uint64_t step = 1, unit = 1;
    static const unsigned mult[3] = { 2, 5, 10 };   /* 1 -> 2 -> 5 -> 10 */
    for (uint64_t base = 1; wall / step > 9; ) {
        for (int k = 0; k < 3 && wall / step > 9; k++) step = base * mult[k];
        base *= 10;
    }
    const char* name = "ns";
    if (wall >= 1000000000u) { unit = 1000000000u; name = "s"; }
    else if (wall >= 1000000u) { unit = 1000000u; name = "ms"; }
    else if (wall >= 1000u) { unit = 1000u; name = "us"; }
    uint64_t q = unit;
    int digits = 0;
    while (q > 1 && step % q) { q /= 10; digits++; }
    int bottom = tl->lanes * BATCH__SVG_LANE;
    for (uint64_t v = 0; v <= wall; v += step) {
        double x = BATCH__SVG_LEFT + (double)v * tl->scale;
        fputs("<line class=\"tick\" x1=\"", out);
        batch__html_num(out, x);
        fputs("\" x2=\"", out);
        batch__html_num(out, x);
        fprintf(out, "\" y1=\"0\" y2=\"%d\" stroke=\"#ccc\"/><text class=\"tick\" text-anchor=\"middle\" x=\"", bottom + 4);
        batch__html_num(out, x);
        fprintf(out, "\" y=\"%d\">%llu", bottom + 16, (unsigned long long)(v / unit));
        if (digits) fprintf(out, ".%0*llu", digits, (unsigned long long)(v % unit / q));
        fprintf(out, " %s</text>\n", name);
    }
}

/* The zoom: a range input widens the SVG inside its scrolling div; the script keeps the text
   from stretching with it (the SVG scales x only). */
BATCH__PRIVATE void batch__html_zoom(FILE* out) {
    fputs("<script>(function(){var s=document.getElementById('tl'),z=document.getElementById('zoom'),"
          "v=document.getElementById('zv');\nfunction fit(){s.setAttribute('width',z.value*100+'%');v.textContent=z.value+'x';"
          "var b=s.viewBox.baseVal,r=s.getBoundingClientRect();if(!r.width)return;var k=(r.height/b.height)/(r.width/b.width);\n"
          "s.querySelectorAll('text').forEach(function(t){var x=parseFloat(t.getAttribute('x'));"
          "t.setAttribute('transform','translate('+x+' 0) scale('+k+' 1) translate('+(-x)+' 0)');});}\n"
          "z.addEventListener('input',fit);window.addEventListener('resize',fit);fit();})();</script>\n", out);
}

/* HTML: the timeline of the bars (n of them), its lanes, axis, legend and zoom. */
BATCH__PRIVATE void batch__html_timeline(FILE* out, batch_job* job, const batch__job_facts* f, batch__html_bar* bars) {
    bool graph = f->kind == BATCH__KIND_GRAPH;
    batch__html_tl tl;
    tl.lanes = f->workers + 1;
    tl.skip_lane = graph && f->summary.skipped ? tl.lanes++ : -1;
    tl.cancel_lane = graph && f->summary.cancelled ? tl.lanes++ : -1;
    tl.failed = graph ? BATCH_TASK_FAILED : BATCH_BATCH_FAILED;
    tl.scale = BATCH__SVG_WIDTH / (double)f->summary.wall_ns;
    size_t n = batch__html_collect(job, f, &tl, bars);
    int height = tl.lanes * BATCH__SVG_LANE + 24;
    fprintf(out, "<h2>Timeline</h2>\n<p>zoom <input type=\"range\" id=\"zoom\" min=\"1\" max=\"50\" value=\"1\"> <span id=\"zv\">1x</span>"
                 "</p>\n<div class=\"tl\"><svg id=\"tl\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                 "preserveAspectRatio=\"none\" width=\"100%%\" height=\"%d\">\n",
            BATCH__SVG_LEFT + (int)BATCH__SVG_WIDTH + 10, height, height);
    for (int l = 0; l < tl.lanes; l++) {
        const char* what = l == tl.skip_lane ? "skipped" : l == tl.cancel_lane ? "cancelled" : l == f->workers ? "other" : NULL;
        fprintf(out, "<text x=\"4\" y=\"%d\">", l * BATCH__SVG_LANE + 15);
        if (what) fputs(what, out);
        else fprintf(out, "worker %d", l);
        fprintf(out, "</text><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#eee\"/>\n", BATCH__SVG_LEFT,
                (l + 1) * BATCH__SVG_LANE, BATCH__SVG_LEFT + (int)BATCH__SVG_WIDTH, (l + 1) * BATCH__SVG_LANE);
    }
    batch__html_axis(out, &tl, f->summary.wall_ns);
    batch__html_bars(out, job, f, &tl, bars, n);
    fputs("</svg></div>\n<p>", out);
    static const char* const task_keys[] = { "completed", "failed", "skipped", "cancelled" };
    static const char* const batch_keys[] = { "success", "partial_success", "failed" };
    for (int k = 0; k < (graph ? 4 : 3); k++)
        fprintf(out, "<span class=\"%s\" style=\"padding:0 6px;margin-right:6px\">%s</span>", graph ? task_keys[k] : batch_keys[k],
                graph ? task_keys[k] : batch_keys[k]);
    fputs("<br>Touching bars of one status on a lane are drawn as one (hover: how many); failed ones always on their own, "
          "on top. Skipped and cancelled tasks did not run: a mark on their lane at the time they were settled, else at "
          "its end.</p>\n", out);
    batch__html_zoom(out);
}

BATCH_API batch_result batch_job_report_html(batch_job* job, FILE* out) {
    batch__job_facts f;
    batch_result r = batch__report_facts(job, out, &f);
    if (r != BATCH_OK) return r;
    batch__html_bar* bars = NULL;
    bool timeline = f.timeline && f.summary.wall_ns && f.nrecords;
    if (timeline && !(bars = (batch__html_bar*)BATCH_MALLOC(f.nrecords * sizeof *bars, NULL))) return BATCH_ERR_NOMEM;
    batch__html_summary(out, &f);
    if (bars) {
        batch__html_timeline(out, job, &f, bars);
        BATCH_FREE(bars, NULL);
    }
    batch__html_failures(out, job, &f);
    fputs("</body></html>\n", out);
    return (fflush(out) != 0 || ferror(out)) ? BATCH_ERR_IO : BATCH_OK;   /* the whole report reached the file */
}

/* ---- trace: Chrome trace event JSON (Perfetto UI, chrome://tracing) ----------------------- */
/* Every attempt of a task or kept batch is a complete event ("X") on its worker's thread line
   (tid: the worker; tid `workers`: any other thread); a retried attempt's wait for its retry is
   one on a "retry waits" line (tid workers + 1 + lane). Waits overlap, and the format wants the
   events of one thread nested, so they are laid out on as many lanes as it takes: by start, each
   on the first lane free by then. */
typedef struct batch__trace_wait { uint64_t t0, t1; size_t k; } batch__trace_wait;

BATCH__PRIVATE int batch__trace_wait_cmp(const void* a, const void* b) {
    const batch__trace_wait* x = (const batch__trace_wait*)a;
    const batch__trace_wait* y = (const batch__trace_wait*)b;
    return x->t0 < y->t0 ? -1 : x->t0 > y->t0 ? 1 : (x->k > y->k) - (x->k < y->k);
}

/* Microseconds with 3 decimals. */
BATCH__PRIVATE void batch__trace_us(FILE* out, uint64_t ns) {
    fprintf(out, "%llu.%03llu", (unsigned long long)(ns / 1000u), (unsigned long long)(ns % 1000u));
}

/* The lanes of the retry waits (lane[k] for earlier attempt k, -1: no wait) and their number:
   BATCH_ERR_NOMEM when the room for them cannot be had. *lanes_out is NULL when there is no
   wait. */
BATCH__PRIVATE batch_result batch__trace_lanes(batch_job* job, const batch__job_facts* f, int** lanes_out, int* nlanes) {
    const batch__job_ops* ops = batch__head(job)->ops;
    batch__record r;
    size_t n = 0, nw = 0;
    *lanes_out = NULL;
    *nlanes = 0;
    for (const void* c = ops->earlier(job, NULL, &r); c; c = ops->earlier(job, c, &r)) n++;
    if (!n) return BATCH_OK;
    batch__trace_wait* w = (batch__trace_wait*)BATCH_MALLOC(n * sizeof *w, NULL);
    int* lane = (int*)BATCH_MALLOC(n * sizeof *lane, NULL);
    uint64_t* lane_end = (uint64_t*)BATCH_MALLOC(n * sizeof *lane_end, NULL);
    if (!w || !lane || !lane_end) {
        if (w) BATCH_FREE(w, NULL);
        if (lane) BATCH_FREE(lane, NULL);
        if (lane_end) BATCH_FREE(lane_end, NULL);
        return BATCH_ERR_NOMEM;
    }
    size_t k = 0;
    for (const void* c = ops->earlier(job, NULL, &r); c && k < n; c = ops->earlier(job, c, &r), k++) {
        lane[k] = -1;
        if (!r.start_ns || !r.next_ns) continue;
        uint64_t t0 = batch__trace_rel(f, r.end_ns), t1 = batch__trace_rel(f, r.next_ns);
        w[nw].t0 = t0;
        w[nw].t1 = t1 > t0 ? t1 : t0;
        w[nw++].k = k;
    }
    qsort(w, nw, sizeof *w, batch__trace_wait_cmp);
    int used = 0;
    for (size_t i = 0; i < nw; i++) {
        int l = 0;
        while (l < used && lane_end[l] > w[i].t0) l++;
        if (l == used) used++;
        lane_end[l] = w[i].t1;
        lane[w[i].k] = l;
    }
    BATCH_FREE(w, NULL);
    BATCH_FREE(lane_end, NULL);
    *lanes_out = lane;
    *nlanes = used;
    return BATCH_OK;
}

/* The metadata: the process's name, and a name for every thread line. */
BATCH__PRIVATE void batch__trace_meta(FILE* out, const batch__job_facts* f, int nlanes) {
    fputs("{\"traceEvents\": [\n{\"ph\": \"M\", \"pid\": 1, \"tid\": 0, \"name\": \"process_name\", \"args\": {\"name\": ", out);
    batch__json_string(out, f->kind == BATCH__KIND_MAP ? "map" : f->name ? f->name : "graph");
    fputs("}}", out);
    for (int t = 0; t <= f->workers + nlanes; t++) {
        fprintf(out, ",\n{\"ph\": \"M\", \"pid\": 1, \"tid\": %d, \"name\": \"thread_name\", \"args\": {\"name\": \"", t);
        if (t < f->workers) fprintf(out, "worker %d", t);
        else if (t == f->workers) fputs("other threads", out);
        else if (t == f->workers + 1) fputs("retry waits", out);
        else fprintf(out, "retry waits %d", t - f->workers);
        fprintf(out, "\"}},\n{\"ph\": \"M\", \"pid\": 1, \"tid\": %d, \"name\": \"thread_sort_index\", \"args\": {\"sort_index\": %d}}", t, t);
    }
}

/* The start of a complete event: its kind, category, name (the task's, "#id" without one, or
   "batch N", then suffix), thread line and times (the end no earlier than the start). */
BATCH__PRIVATE void batch__trace_begin(FILE* out, const batch__job_facts* f, const batch__record* r, const char* cat,
                                       const char* suffix, int tid, uint64_t t0, uint64_t t1) {
    fprintf(out, ",\n{\"ph\": \"X\", \"cat\": \"%s\", \"name\": \"", cat);
    if (f->kind == BATCH__KIND_MAP) fprintf(out, "batch %zu", r->index);
    else if (r->name) batch__json_chars(out, r->name);
    else fprintf(out, "#%zu", r->index + 1);
    batch__json_chars(out, suffix);
    fprintf(out, "\", \"pid\": 1, \"tid\": %d, \"ts\": ", tid);
    batch__trace_us(out, t0);
    fputs(", \"dur\": ", out);
    batch__trace_us(out, t1 > t0 ? t1 - t0 : 0);
}

/* An attempt's event, and the wait for its retry when it has one (lane >= 0). */
BATCH__PRIVATE void batch__trace_attempt(FILE* out, const batch__job_facts* f, const batch__record* r, int lane) {
    if (!r->start_ns) return;   /* not run, or no times */
    bool graph = f->kind == BATCH__KIND_GRAPH;
    int tid = (r->worker >= 0 && r->worker < f->workers) ? r->worker : f->workers;
    uint64_t t0 = batch__trace_rel(f, r->start_ns), t1 = batch__trace_rel(f, r->end_ns);
    batch__trace_begin(out, f, r, graph ? "task" : "batch", "", tid, t0, t1);
    fprintf(out, ", \"args\": {\"status\": \"%s\", \"attempt\": %d", r->status_string, r->attempt);
    if (graph && (r->error || r->status == BATCH_TASK_FAILED)) {
        fprintf(out, ", \"error\": %d, \"message\": ", r->error);
        batch__json_string(out, r->message);
    } else if (!graph) {
        fprintf(out, ", \"first\": %zu, \"count\": %zu, \"succeeded\": %zu, \"failed\": %zu", r->first, r->count,
                r->succeeded, r->failed);
    }
    fputs("}}", out);
    if (lane < 0 || !r->next_ns) return;
    batch__trace_begin(out, f, r, "retry-wait", " (retry wait)", f->workers + 1 + lane, t1, batch__trace_rel(f, r->next_ns));
    fprintf(out, ", \"args\": {\"after_attempt\": %d}}", r->attempt);
}

BATCH_API batch_result batch_job_report_trace(batch_job* job, FILE* out) {
    batch__job_facts f;
    batch_result res = batch__report_facts(job, out, &f);
    if (res != BATCH_OK) return res;
    int* lanes;
    int nlanes;
    if ((res = batch__trace_lanes(job, &f, &lanes, &nlanes)) != BATCH_OK) return res;   /* nothing written */
    batch__trace_meta(out, &f, nlanes);
    const batch__job_ops* ops = batch__head(job)->ops;
    batch__record r;
    for (size_t i = 0; i < f.nrecords; i++) {   /* the last attempts */
        ops->record(job, i, &r);
        batch__trace_attempt(out, &f, &r, -1);
    }
    size_t k = 0;   /* the earlier ones, in the order batch__trace_lanes saw them */
    for (const void* c = ops->earlier(job, NULL, &r); c && lanes; c = ops->earlier(job, c, &r), k++)
        batch__trace_attempt(out, &f, &r, lanes[k]);
    if (lanes) BATCH_FREE(lanes, NULL);
    fputs("\n],\n\"displayTimeUnit\": \"ms\"}\n", out);
    return (fflush(out) != 0 || ferror(out)) ? BATCH_ERR_IO : BATCH_OK;   /* the whole report reached the file */
}

/* ---- reading reports back (batch_report_compare) ----------------------------------------- */
/* A small reader for the reports above: a strict JSON walker that keeps the top-level numbers
   and strings it knows and each task's id, name and status. Strings are unescaped into a
   bounded buffer. */
#define BATCH__RPT_MAX_TASKS 100000
typedef struct batch__rpt_task { long long id; char name[64]; char status[16]; } batch__rpt_task;
typedef struct batch__rpt {
    char status[32], kind[8];
    long long total, completed, failed, skipped, cancelled, retries, rate, wall_us;
    batch__rpt_task* tasks;
    size_t ntasks, cap;
    void* ctx;
    bool nomem;                   /* reading failed for want of memory, not for the text */
} batch__rpt;

BATCH__PRIVATE const char* batch__js_ws(const char* p) { while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++; return p; }

/* Reads a string into buf (truncated to n - 1); returns the position after it, or NULL. */
BATCH__PRIVATE const char* batch__js_str(const char* p, char* buf, size_t n) {
    size_t k = 0;
    if (*p++ != '"') return NULL;
    while (*p != '"') {
        char c = *p;
        if (!c || (unsigned char)c < 0x20) return NULL;
        if (c == '\\') {
            c = *++p;
            if (c == 'n') c = '\n';
            else if (c == 't') c = '\t';
            else if (c == 'r') c = '\r';
            else if (c == 'u') {
                for (int i = 1; i <= 4; i++) if (!isxdigit((unsigned char)p[i])) return NULL;
                c = '?';
                p += 4;
            } else if (c != '"' && c != '\\' && c != '/') return NULL;
        }
        if (buf && k + 1 < n) buf[k++] = c;
        p++;
    }
    if (buf && n) buf[k] = 0;
    return p + 1;
}

BATCH__PRIVATE const char* batch__js_skip(const char* p, int depth);
BATCH__PRIVATE const char* batch__js_num(const char* p, long long* v) {
    char* end;
    errno = 0;
    long long x = strtoll(p, &end, 10);
    if (end == p || errno) return NULL;
    if (*end == '.' || *end == 'e' || *end == 'E') return NULL;   /* reports hold integers */
    if (v) *v = x;
    return end;
}
BATCH__PRIVATE const char* batch__js_skip(const char* p, int depth) {
    p = batch__js_ws(p);
    if (depth > 16) return NULL;
    if (*p == '"') return batch__js_str(p, NULL, 0);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        bool obj = *p == '{';
        p = batch__js_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (obj) {
                if (!(p = batch__js_str(batch__js_ws(p), NULL, 0))) return NULL;
                p = batch__js_ws(p);
                if (*p++ != ':') return NULL;
            }
            if (!(p = batch__js_skip(p, depth + 1))) return NULL;
            p = batch__js_ws(p);
            if (*p == ',') { p++; continue; }
            return *p == close ? p + 1 : NULL;
        }
    }
    if (!strncmp(p, "null", 4) || !strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    return batch__js_num(p, NULL);
}

BATCH__PRIVATE const char* batch__rpt_task_read(const char* p, batch__rpt* r) {
    if (r->ntasks == r->cap) {
        if (r->cap >= BATCH__RPT_MAX_TASKS) return NULL;
        size_t ncap = r->cap ? r->cap * 2 : 64;
        batch__rpt_task* t = (batch__rpt_task*)BATCH_REALLOC(r->tasks, ncap * sizeof *t, r->ctx);
        if (!t) { r->nomem = true; return NULL; }
        r->tasks = t;
        r->cap = ncap;
    }
    batch__rpt_task* t = &r->tasks[r->ntasks];
    memset(t, 0, sizeof *t);
    p = batch__js_ws(p);
    if (*p++ != '{') return NULL;
    for (;;) {
        char key[32];
        if (!(p = batch__js_str(batch__js_ws(p), key, sizeof key))) return NULL;
        p = batch__js_ws(p);
        if (*p++ != ':') return NULL;
        p = batch__js_ws(p);
        if (!strcmp(key, "id")) p = batch__js_num(p, &t->id);
        else if (!strcmp(key, "name") && *p == '"') p = batch__js_str(p, t->name, sizeof t->name);
        else if (!strcmp(key, "status")) p = batch__js_str(p, t->status, sizeof t->status);
        else p = batch__js_skip(p, 2);
        if (!p) return NULL;
        p = batch__js_ws(p);
        if (*p == ',') { p++; continue; }
        if (*p++ != '}') return NULL;
        r->ntasks++;
        return p;
    }
}

/* Reads a whole report; false when it is not one. */
BATCH__PRIVATE bool batch__rpt_read(const char* p, batch__rpt* r) {
    p = batch__js_ws(p);
    if (*p++ != '{') return false;
    bool has_status = false;
    for (;;) {
        char key[40];
        if (!(p = batch__js_str(batch__js_ws(p), key, sizeof key))) return false;
        p = batch__js_ws(p);
        if (*p++ != ':') return false;
        p = batch__js_ws(p);
        long long* num = !strcmp(key, "total") ? &r->total : !strcmp(key, "completed") ? &r->completed
                       : !strcmp(key, "failed") ? &r->failed : !strcmp(key, "skipped") ? &r->skipped
                       : !strcmp(key, "cancelled") ? &r->cancelled : !strcmp(key, "retries") ? &r->retries
                       : !strcmp(key, "success_rate_permille") ? &r->rate : !strcmp(key, "wall_us") ? &r->wall_us : NULL;
        if (num) p = batch__js_num(p, num);
        else if (!strcmp(key, "status")) { p = batch__js_str(p, r->status, sizeof r->status); has_status = p != NULL; }
        else if (!strcmp(key, "kind")) p = batch__js_str(p, r->kind, sizeof r->kind);
        else if (!strcmp(key, "tasks") && *p == '[') {
            p = batch__js_ws(p + 1);
            if (*p == ']') p++;
            else for (;;) {
                if (!(p = batch__rpt_task_read(p, r))) return false;
                p = batch__js_ws(p);
                if (*p == ',') { p++; continue; }
                if (*p++ != ']') return false;
                break;
            }
        } else p = batch__js_skip(p, 1);
        if (!p) return false;
        p = batch__js_ws(p);
        if (*p == ',') { p++; continue; }
        if (*p++ != '}') return false;
        return has_status && *batch__js_ws(p) == 0;
    }
}

/* A signed count of tenths as "[-]x.y". */
BATCH__PRIVATE const char* batch__tenths(char* buf, size_t n, long long v) {
    unsigned long long a = (unsigned long long)(v < 0 ? -v : v);
    snprintf(buf, n, "%s%llu.%llu", v < 0 ? "-" : "+", a / 10, a % 10);
    return buf;
}

BATCH_API batch_result batch_report_compare(const char* baseline, const char* current, FILE* out) {
    if (!baseline || !current || !out) return BATCH_ERR_INVALID;
    batch__rpt a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    batch_result r = BATCH_ERR_INVALID;
    if (!batch__rpt_read(baseline, &a) || !batch__rpt_read(current, &b)) {
        if (a.nomem || b.nomem) r = BATCH_ERR_NOMEM;
    } else {
        r = BATCH_OK;
        fprintf(out, "status: %s -> %s\n", a.status, b.status);
        char t1[32], t2[32], t3[32];
        fprintf(out, "success rate: %s%% -> %s%% (%s points)\n", batch__tenths(t1, sizeof t1, a.rate) + 1,
                batch__tenths(t2, sizeof t2, b.rate) + 1, batch__tenths(t3, sizeof t3, b.rate - a.rate));
        long long pct = a.wall_us ? (b.wall_us - a.wall_us) * 1000 / a.wall_us : 0;
        fprintf(out, "duration: %lld us -> %lld us (%s%%)\n", a.wall_us, b.wall_us, batch__tenths(t1, sizeof t1, pct));
        fprintf(out, "completed %lld -> %lld, failed %lld -> %lld, skipped %lld -> %lld, cancelled %lld -> %lld, retries %lld -> %lld\n",
                a.completed, b.completed, a.failed, b.failed, a.skipped, b.skipped, a.cancelled, b.cancelled, a.retries, b.retries);
        size_t changed = 0;
        for (size_t i = 0; i < b.ntasks; i++) {
            const batch__rpt_task* y = &b.tasks[i];
            const batch__rpt_task* x = NULL;
            for (size_t k = 0; k < a.ntasks && !x; k++)   /* by name when both have one, else by id */
                if (y->name[0] ? !strcmp(a.tasks[k].name, y->name) : (!a.tasks[k].name[0] && a.tasks[k].id == y->id)) x = &a.tasks[k];
            if (x && !strcmp(x->status, y->status)) continue;
            if (!changed++) fputs("tasks whose status changed:\n", out);
            if (y->name[0]) fprintf(out, "  %s: %s -> %s\n", y->name, x ? x->status : "(new)", y->status);
            else fprintf(out, "  #%lld: %s -> %s\n", y->id, x ? x->status : "(new)", y->status);
        }
        if (!changed && b.ntasks) fputs("no task changed status\n", out);
        if (fflush(out) != 0 || ferror(out)) r = BATCH_ERR_IO;
    }
    if (a.tasks) BATCH_FREE(a.tasks, a.ctx);
    if (b.tasks) BATCH_FREE(b.tasks, b.ctx);
    return r;
}

#endif /* BATCH__REPORT_C */
/* ---- end batch_impl/report.c ---- */
/* ---- begin batch_impl/queue.c ---- */
/* queue.c - durable job queues: one append-only file shared by processes (the journal's record
   format and I/O), an in-memory index of its jobs rebuilt from the records, and the serve job
   that runs claimed jobs on a pool. See "DURABLE QUEUES" in the API part for the contract and
   batch_impl/README.md for the design. */
#ifndef BATCH__QUEUE_C
#define BATCH__QUEUE_C
#ifndef BATCH_SINGLE_FILE
#  include "journal.c"
#endif

/* ---- records ---------------------------------------------------------------------------------
   Each record's payload starts with its type (1 byte) and a job id (u64); the rest, little-endian:
   JOB      priority i32, max_retries i32, status u8, attempts u16, error i32, pushed u64,
            when u64, owner u64, name_len u16, msg_len u16, then name, message, payload
            (a push writes one, QUEUED; compaction writes one per job, in its state)
   CLAIM    owner u64, lease end u64         RENEW    owner u64, lease end u64
   DONE     time u64                         RELEASE  (nothing)
   FAIL     code i32, final u8, when u64 (the retry's time, or the end), msg_len u16, message
   CANCEL   time u64                         EXPIRE   final u8, when u64 (a lease ran out)
   MOVED    (id 0) compaction replaced the file: reopen the path
   NEXT     (id: the next id to give) */
enum { BATCH__QR_JOB = 1, BATCH__QR_CLAIM, BATCH__QR_RENEW, BATCH__QR_DONE, BATCH__QR_FAIL, BATCH__QR_RELEASE,
       BATCH__QR_CANCEL, BATCH__QR_EXPIRE, BATCH__QR_MOVED, BATCH__QR_NEXT };
#define BATCH__QJOB_HDR 52u
#define BATCH__QGONE 255u               /* an id compaction dropped */
#define BATCH__QMAX_REC ((size_t)BATCH_QUEUE_PAYLOAD_MAX + BATCH__QJOB_HDR + BATCH_QUEUE_NAME_MAX + BATCH_MESSAGE_MAX)
#define BATCH__QREAD ((size_t)1 << 20)  /* the follower reads the log this much at a time */

typedef struct batch__qjob {
    uint64_t rec;                 /* file offset of its JOB record's payload */
    uint64_t msg_at;              /* file offset of its last message's bytes; 0: none */
    uint64_t owner;               /* RUNNING: the claiming handle's token */
    uint64_t when;                /* QUEUED: not before; RUNNING: lease end; finished: the end */
    uint64_t pushed;
    int32_t priority, error;
    uint32_t size;                /* payload bytes */
    uint16_t attempts, max_retries, name_len, jmsg_len, msg_len;
    uint8_t inheap;               /* an entry of it is in the ready heap */
} batch__qjob;

typedef struct batch__qtimer { uint64_t when, id; } batch__qtimer;   /* a delayed or lease heap entry */

typedef struct batch__qpend {     /* BUFFERED: an end of a job not yet written */
    uint8_t type, permanent;
    uint64_t id;
    int code;
    char msg[BATCH_MESSAGE_MAX];
} batch__qpend;

struct batch_queue {
    batch__journal* j;            /* the file (its io, handle, write buffer and append offset) */
    batch_journal_desc jd;        /* path (our copy), durability, sync_every */
    char* path;
    void* alloc_ctx;
    batch__mutex lock;            /* one operation of this handle at a time */
    uint64_t owner;               /* this handle's token in CLAIM records */
    uint64_t lease_ns, retry_base_ns, retry_max_ns, rng;
    bool jitter;
    /* the index */
    batch__qjob* jobs;            /* ids base .. base + njobs - 1 */
    uint8_t* st;                  /* their statuses (BATCH__QGONE: dropped) */
    uint32_t* blk;                /* status counts per block of ids (batch__qset) */
    size_t capblk;
    size_t njobs, capjobs;
    uint64_t base, next_id;
    uint64_t count[BATCH_QUEUE_STATUS_COUNT_];
    struct batch__qready* ready;  /* heap of the QUEUED jobs whose delay is over */
    size_t nready, capready;
    batch__qtimer *delayed, *leases;   /* min-heaps on when */
    size_t ndelayed, capdelayed, nleases, capleases;
    bool moved;                   /* a MOVED record was read: reopen the path */
    /* the follower's read buffer */
    unsigned char* rb;
    size_t rbcap;
    /* BUFFERED ends */
    batch__qpend* pend;
    size_t npend, cappend;
    uint64_t* held;               /* ids claimed and not ended */
    size_t nheld, capheld;
    long pid;                     /* the process that opened the handle (a fork's child reopens) */
    bool flocked;                 /* the operation under way holds the file lock */
};

BATCH_API const char* batch_queue_status_string(batch_queue_status s) {
    static const char* const names[] = { "queued", "running", "done", "failed", "cancelled" };
    return ((unsigned)s < BATCH_QUEUE_STATUS_COUNT_) ? names[s] : "unknown";
}

/* ---- growth and heaps ------------------------------------------------------------------------ */
BATCH__PRIVATE bool batch__qgrow(void** p, size_t* cap, size_t need, size_t elem, void* ctx) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return false;
        c *= 2;
    }
    void* n = batch__grow_block(*p, *cap, c, elem, ctx);   /* big arrays on huge pages: fewer faults */
    if (!n) return false;
    *p = n;
    *cap = c;
    return true;
}

BATCH__PRIVATE batch__qjob* batch__qget(batch_queue* q, uint64_t id) {
    if (id < q->base || id - q->base >= q->njobs || q->st[id - q->base] == BATCH__QGONE) return NULL;
    return &q->jobs[id - q->base];
}

/* The ready heap: priority desc, then id asc; entries carry the priority, so that a sift never
   reads the jobs' array. */
typedef struct batch__qready { int64_t prio; uint64_t id; } batch__qready;
BATCH__PRIVATE bool batch__qbefore(batch__qready a, batch__qready b) {
    return a.prio != b.prio ? a.prio > b.prio : a.id < b.id;
}
BATCH__PRIVATE bool batch__qready_push(batch_queue* q, uint64_t id) {
    batch__qjob* jb = &q->jobs[id - q->base];
    if (jb->inheap) return true;
    if (!batch__qgrow((void**)&q->ready, &q->capready, q->nready + 1, sizeof *q->ready, q->alloc_ctx)) return false;
    batch__qready e = { jb->priority, id };
    size_t i = q->nready++;
    while (i && batch__qbefore(e, q->ready[(i - 1) / 2])) { q->ready[i] = q->ready[(i - 1) / 2]; i = (i - 1) / 2; }
    q->ready[i] = e;
    jb->inheap = 1;
    return true;
}
BATCH__PRIVATE uint64_t batch__qready_pop(batch_queue* q) {
    batch__qready top = q->ready[0], last = q->ready[--q->nready];
    size_t i = 0, n = q->nready;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && batch__qbefore(q->ready[c + 1], q->ready[c])) c++;
        if (!batch__qbefore(q->ready[c], last)) break;
        q->ready[i] = q->ready[c];
        i = c;
    }
    if (n) q->ready[i] = last;
    q->jobs[top.id - q->base].inheap = 0;
    return top.id;
}
BATCH__PRIVATE bool batch__qtimer_push(batch__qtimer** h, size_t* n, size_t* cap, batch__qtimer t, void* ctx) {
    if (!batch__qgrow((void**)h, cap, *n + 1, sizeof **h, ctx)) return false;
    size_t i = (*n)++;
    while (i && t.when < (*h)[(i - 1) / 2].when) { (*h)[i] = (*h)[(i - 1) / 2]; i = (i - 1) / 2; }
    (*h)[i] = t;
    return true;
}
BATCH__PRIVATE batch__qtimer batch__qtimer_pop(batch__qtimer* h, size_t* n) {
    batch__qtimer top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1].when < h[c].when) c++;
        if (h[c].when >= last.when) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* Keeps the entries of a timer heap that still stand for their job's state (status, when) and
   heaps them again: the entries of jobs that ended, or were renewed, wait until their time
   otherwise (a lease's, 30 s of completions). */
BATCH__PRIVATE void batch__qtimer_prune(batch_queue* q, batch__qtimer* h, size_t* n, uint8_t status) {
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        const batch__qjob* jb = batch__qget(q, h[i].id);
        if (jb && q->st[h[i].id - q->base] == status && jb->when == h[i].when) h[k++] = h[i];
    }
    *n = 0;
    for (size_t i = 0; i < k; i++) (void)batch__qtimer_push(&h, n, &k, h[i], q->alloc_ctx);   /* in place: i >= *n */
}

/* A job became QUEUED (when: not before) or RUNNING (when: lease end): index it. */
BATCH__PRIVATE bool batch__qschedule(batch_queue* q, uint64_t id, uint8_t status, uint64_t when) {
    batch__qtimer t = { when, id };
    if (status == BATCH_QUEUE_RUNNING && q->nleases >= 4096 && q->nleases / 4 > q->count[BATCH_QUEUE_RUNNING])
        batch__qtimer_prune(q, q->leases, &q->nleases, BATCH_QUEUE_RUNNING);
    if (status == BATCH_QUEUE_RUNNING) return batch__qtimer_push(&q->leases, &q->nleases, &q->capleases, t, q->alloc_ctx);
    if (status != BATCH_QUEUE_QUEUED) return true;
    if (!when) return batch__qready_push(q, id);
    return batch__qtimer_push(&q->delayed, &q->ndelayed, &q->capdelayed, t, q->alloc_ctx);
}

/* Per block of BATCH__QBLOCK ids, how many jobs of each status (and of any, the last counter):
   a page at a large offset skips whole blocks instead of scanning every status byte. */
#define BATCH__QBLOCK_BITS 12u
#define BATCH__QBLK (BATCH_QUEUE_STATUS_COUNT_ + 1)
BATCH__PRIVATE void batch__qset(batch_queue* q, uint64_t id, uint8_t status) {
    size_t i = (size_t)(id - q->base);
    uint32_t* b = q->blk + (i >> BATCH__QBLOCK_BITS) * BATCH__QBLK;
    uint8_t* s = &q->st[i];
    if (*s < BATCH_QUEUE_STATUS_COUNT_) { q->count[*s]--; b[*s]--; }
    else b[BATCH_QUEUE_STATUS_COUNT_]++;   /* a new job */
    *s = status;
    q->count[status]++;
    b[status]++;
}

/* ---- applying records ------------------------------------------------------------------------ */
/* A JOB record at file offset `off` (its payload). */
BATCH__PRIVATE batch_result batch__qapply_job(batch_queue* q, uint64_t id, const unsigned char* p, size_t len, uint64_t off) {
    if (len < BATCH__QJOB_HDR) return BATCH_ERR_CORRUPT;
    uint16_t nl = (uint16_t)(p[48] | p[49] << 8), ml = (uint16_t)(p[50] | p[51] << 8);
    uint8_t status = p[17];
    if ((size_t)BATCH__QJOB_HDR + nl + ml > len || len - BATCH__QJOB_HDR - nl - ml > BATCH_QUEUE_PAYLOAD_MAX ||
        status >= BATCH_QUEUE_STATUS_COUNT_ || id == 0 || (q->njobs && id < q->base + q->njobs) ||
        nl >= BATCH_QUEUE_NAME_MAX || ml >= BATCH_MESSAGE_MAX)
        return BATCH_ERR_CORRUPT;   /* ids only grow: a second record of an id is not ours */
    if (q->njobs == 0) q->base = id;
    size_t idx = (size_t)(id - q->base);
    if (id - q->base > SIZE_MAX / 2) return BATCH_ERR_CORRUPT;
    if (idx >= q->capjobs) {   /* st grows with jobs, to the same capacity */
        size_t cap = q->capjobs;
        if (!batch__qgrow((void**)&q->jobs, &cap, idx + 1, sizeof *q->jobs, q->alloc_ctx)) return BATCH_ERR_NOMEM;
        uint8_t* st = (uint8_t*)batch__grow_block(q->st, q->capjobs, cap, 1, q->alloc_ctx);
        if (!st) return BATCH_ERR_NOMEM;   /* jobs grew alone: the next try grows st again */
        q->st = st;
        q->capjobs = cap;
    }
    size_t nblk = ((idx >> BATCH__QBLOCK_BITS) + 1) * BATCH__QBLK, had = q->capblk;   /* counters */
    if (nblk > had) {
        if (!batch__qgrow((void**)&q->blk, &q->capblk, nblk, sizeof *q->blk, q->alloc_ctx)) return BATCH_ERR_NOMEM;
        memset(q->blk + had, 0, (q->capblk - had) * sizeof *q->blk);
    }
    for (size_t i = q->njobs; i < idx; i++) q->st[i] = BATCH__QGONE;
    q->njobs = idx + 1;
    batch__qjob* jb = &q->jobs[idx];
    memset(jb, 0, sizeof *jb);
    jb->rec = off;
    jb->priority = (int32_t)batch__get32(p + 9);
    jb->max_retries = (uint16_t)batch__get32(p + 13);
    jb->attempts = (uint16_t)(p[18] | p[19] << 8);
    jb->error = (int32_t)batch__get32(p + 20);
    jb->pushed = batch__get64(p + 24);
    jb->when = batch__get64(p + 32);
    jb->owner = batch__get64(p + 40);
    jb->name_len = nl;
    jb->jmsg_len = ml;
    jb->msg_len = ml;
    jb->msg_at = ml ? off + BATCH__QJOB_HDR + nl : 0;
    jb->size = (uint32_t)(len - BATCH__QJOB_HDR - nl - ml);
    q->st[idx] = BATCH__QGONE;
    batch__qset(q, id, status);
    if (id + 1 > q->next_id) q->next_id = id + 1;
    return batch__qschedule(q, id, status, jb->when) ? BATCH_OK : BATCH_ERR_NOMEM;
}

/* An end or a change of a job (every type but JOB, MOVED and NEXT). Writers check a change
   against the state before they write it; replay applies it as it is. */
BATCH__PRIVATE batch_result batch__qapply_change(batch_queue* q, int type, uint64_t id, const unsigned char* p, size_t len,
                                                 uint64_t off) {
    static const uint8_t need[] = { 0, 0, 25, 25, 17, 24, 9, 17, 18 };
    batch__qjob* jb = batch__qget(q, id);
    if (!jb || len < need[type]) return BATCH_ERR_CORRUPT;
    uint8_t status;
    switch (type) {
        case BATCH__QR_CLAIM: case BATCH__QR_RENEW:
            if (type == BATCH__QR_CLAIM) jb->attempts++;
            jb->owner = batch__get64(p + 9);
            jb->when = batch__get64(p + 17);
            status = BATCH_QUEUE_RUNNING;
            break;
        case BATCH__QR_DONE: case BATCH__QR_CANCEL:
            jb->when = batch__get64(p + 9);
            status = type == BATCH__QR_DONE ? BATCH_QUEUE_DONE : BATCH_QUEUE_CANCELLED;
            break;
        case BATCH__QR_RELEASE:
            if (jb->attempts) jb->attempts--;
            jb->when = 0;
            status = BATCH_QUEUE_QUEUED;
            break;
        case BATCH__QR_FAIL: {
            uint16_t ml = (uint16_t)(p[22] | p[23] << 8);
            if ((size_t)24 + ml > len || ml >= BATCH_MESSAGE_MAX) return BATCH_ERR_CORRUPT;
            jb->error = (int32_t)batch__get32(p + 9);
            jb->when = batch__get64(p + 14);
            jb->msg_len = ml;
            jb->msg_at = ml ? off + 24 : 0;
            status = p[13] ? BATCH_QUEUE_FAILED : BATCH_QUEUE_QUEUED;
            break;
        }
        default: /* EXPIRE */
            jb->error = BATCH_ERR_TIMEOUT;
            jb->msg_len = 0;
            jb->msg_at = 0;
            jb->when = batch__get64(p + 10);
            status = p[9] ? BATCH_QUEUE_FAILED : BATCH_QUEUE_QUEUED;
            break;
    }
    if (status != BATCH_QUEUE_RUNNING) jb->owner = 0;
    batch__qset(q, id, status);
    return batch__qschedule(q, id, status, jb->when) ? BATCH_OK : BATCH_ERR_NOMEM;
}

/* One record's payload, at file offset off. */
BATCH__PRIVATE batch_result batch__qapply(batch_queue* q, const unsigned char* p, size_t len, uint64_t off) {
    if (len < 9 || p[0] < BATCH__QR_JOB || p[0] > BATCH__QR_NEXT) return BATCH_ERR_CORRUPT;
    uint64_t id = batch__get64(p + 1);
    switch (p[0]) {
        case BATCH__QR_JOB: return batch__qapply_job(q, id, p, len, off);
        case BATCH__QR_MOVED: q->moved = true; return BATCH_OK;
        case BATCH__QR_NEXT: if (id > q->next_id) q->next_id = id; return BATCH_OK;
        default: return batch__qapply_change(q, p[0], id, p, len, off);
    }
}

/* ---- following the file ---------------------------------------------------------------------- */
/* Reads and applies what was appended since our last look (j->end). A torn or untrusted tail is
   cut when `cut` (the exclusive lock is held: no writer is midway), else left for a writer. */
BATCH__PRIVATE batch_result batch__qfollow(batch_queue* q, bool cut) {
    batch__journal* j = q->j;
    uint64_t size = 0;
    bool gone = false;
    int e = batch__file_stat(j->h, &size, &gone);
    if (e) return batch__errno_result(e);
    if (size < j->end) return BATCH_ERR_CORRUPT;   /* only a torn tail is ever cut, and we never read one */
    uint64_t off = j->end;       /* the next record's offset */
    uint64_t boff = off;         /* the file offset of rb[0] */
    size_t have = 0;             /* bytes in rb */
    while (off < size && !q->moved) {
        size_t at = (size_t)(off - boff), need = BATCH__JREC;
        if (have - at >= BATCH__JREC) {
            uint32_t l = batch__get32(q->rb + at);
            if (l == 0 && batch__get32(q->rb + at + 4) == 0) {   /* zeros to the end: a torn append; else corrupt */
                if ((e = batch__jzero_tail(j, off + BATCH__JREC, size)) != 0) return e < 0 ? BATCH_ERR_CORRUPT : batch__errno_result(e);
                break;
            }
            if (l == 0 || l > BATCH__QMAX_REC) return BATCH_ERR_CORRUPT;    /* never written so (the journal's rules) */
            need += l;
        }
        if (have - at < need) {   /* refill: keep the partial record, read at least BATCH__QREAD more */
            size_t keep = have - at;
            if (keep) memmove(q->rb, q->rb + at, keep);
            boff = off;
            uint64_t want = need > BATCH__QREAD ? need : BATCH__QREAD;
            if (want > size - boff) want = size - boff;
            if (!batch__qgrow((void**)&q->rb, &q->rbcap, (size_t)want, 1, q->alloc_ctx)) return BATCH_ERR_NOMEM;
            if (want > keep && (e = batch__jread(j, q->rb + keep, (size_t)want - keep, boff + keep)) != 0)
                return batch__errno_result(e);
            have = want > keep ? (size_t)want : keep;
            if (have < need) break;                                           /* torn */
            continue;   /* look again: with the length known when only the frame was asked for */
        }
        uint32_t len = batch__get32(q->rb + at), crc = batch__get32(q->rb + at + 4);
        const unsigned char* p = q->rb + at + BATCH__JREC;
        if (batch__crc32c(p, len) != crc) break;                              /* not trusted, nor what follows */
        batch_result r = batch__qapply(q, p, len, off + BATCH__JREC);
        if (r != BATCH_OK) return r;
        off += BATCH__JREC + len;
    }
    if (off < size && !q->moved && cut && (e = j->io.truncate(j->io.user, j->h, off)) != 0) return batch__errno_result(e);
    j->end = off;
    /* a compaction whose MOVED record could not be written (or a deleted file): follow the path */
    if (gone) q->moved = true;
    return BATCH_OK;
}

/* ---- writing records -------------------------------------------------------------------------
   An operation frames its records into the journal's buffer (applying each to the index at the
   offset it will have) and writes them all before it unlocks the file. */
BATCH__PRIVATE unsigned char* batch__qrec(batch_queue* q, size_t len) {
    batch__journal* j = q->j;
    if (!batch__jreserve(j, j->used + BATCH__JREC + len)) return NULL;
    return j->buf + j->used + BATCH__JREC;
}
BATCH__PRIVATE batch_result batch__qrec_done(batch_queue* q, size_t len) {
    batch__journal* j = q->j;
    unsigned char* f = j->buf + j->used;
    batch__put32(f, (uint32_t)len);
    batch__put32(f + 4, batch__crc32c(f + BATCH__JREC, len));
    int type = f[BATCH__JREC];
    batch_result r = batch__qapply(q, f + BATCH__JREC, len, j->end + j->used + BATCH__JREC);
    j->used += BATCH__JREC + len;
    /* MACHINE syncs for what a power loss must not take: pushes, ends, cancels. A claim, renewal,
       release or expiry that is lost only makes its job run again (at least once, as a killed
       worker does), and the next sync covers it anyway. */
    if (type == BATCH__QR_JOB || type == BATCH__QR_DONE || type == BATCH__QR_FAIL || type == BATCH__QR_CANCEL) j->unsynced++;
    return r;
}
/* A record of a change: type, id, then `extra` bytes the caller fills in (*out). */
BATCH__PRIVATE unsigned char* batch__qchange(batch_queue* q, int type, uint64_t id, size_t extra) {
    unsigned char* p = batch__qrec(q, 9 + extra);
    if (!p) return NULL;
    p[0] = (unsigned char)type;
    batch__put64(p + 1, id);
    return p;
}
BATCH__PRIVATE batch_result batch__qtime_rec(batch_queue* q, int type, uint64_t id, uint64_t t) {
    unsigned char* p = batch__qchange(q, type, id, 8);
    if (!p) return BATCH_ERR_NOMEM;
    batch__put64(p + 9, t);
    return batch__qrec_done(q, 17);
}
BATCH__PRIVATE batch_result batch__qlease_rec(batch_queue* q, int type, uint64_t id, uint64_t now) {
    unsigned char* p = batch__qchange(q, type, id, 16);
    if (!p) return BATCH_ERR_NOMEM;
    batch__put64(p + 9, q->owner);
    batch__put64(p + 17, now + q->lease_ns);
    return batch__qrec_done(q, 25);
}
BATCH__PRIVATE batch_result batch__qfail_rec(batch_queue* q, uint64_t id, int code, bool final, uint64_t when, const char* msg) {
    size_t ml = 0;   /* the message's bytes, without a NUL: the record has their count */
    while (msg && ml < BATCH_MESSAGE_MAX - 1 && msg[ml]) ml++;
    unsigned char* p = batch__qchange(q, BATCH__QR_FAIL, id, 15 + ml);
    if (!p) return BATCH_ERR_NOMEM;
    batch__put32(p + 9, (uint32_t)code);
    p[13] = final;
    batch__put64(p + 14, when);
    p[22] = (unsigned char)(ml & 0xFF);
    p[23] = (unsigned char)(ml >> 8);
    if (ml) memcpy(p + 24, msg, ml);
    return batch__qrec_done(q, 24 + ml);
}
/* A JOB record: the job's state, name, message and payload. */
BATCH__PRIVATE batch_result batch__qjob_rec(batch_queue* q, uint64_t id, const batch__qjob* s, uint8_t status, const char* name,
                                            size_t nl, const char* msg, size_t ml, const void* payload, size_t size) {
    unsigned char* p = batch__qrec(q, BATCH__QJOB_HDR + nl + ml + size);
    if (!p) return BATCH_ERR_NOMEM;
    p[0] = BATCH__QR_JOB;
    batch__put64(p + 1, id);
    batch__put32(p + 9, (uint32_t)s->priority);
    batch__put32(p + 13, s->max_retries);
    p[17] = status;
    p[18] = (unsigned char)(s->attempts & 0xFF);
    p[19] = (unsigned char)(s->attempts >> 8);
    batch__put32(p + 20, (uint32_t)s->error);
    batch__put64(p + 24, s->pushed);
    batch__put64(p + 32, s->when);
    batch__put64(p + 40, s->owner);
    p[48] = (unsigned char)(nl & 0xFF); p[49] = (unsigned char)(nl >> 8);
    p[50] = (unsigned char)(ml & 0xFF); p[51] = (unsigned char)(ml >> 8);
    if (nl) memcpy(p + BATCH__QJOB_HDR, name, nl);
    if (ml) memcpy(p + BATCH__QJOB_HDR + nl, msg, ml);
    if (size) memcpy(p + BATCH__QJOB_HDR + nl + ml, payload, size);
    return batch__qrec_done(q, BATCH__QJOB_HDR + nl + ml + size);
}

BATCH__PRIVATE batch_result batch__qload(batch_queue* q, bool excl);

/* Writes the framed records at the end of the file (and syncs, MACHINE). On failure the file is
   cut back to where it was and the index read again: 0 or an errno. */
BATCH__PRIVATE int batch__qwrite(batch_queue* q) {
    batch__journal* j = q->j;
    size_t at = 0;
    int e = 0;
    while (at < j->used) {
        size_t put = 0;
        e = j->io.write(j->io.user, j->h, j->buf + at, j->used - at, j->end + at, &put);
        if (!e && (put == 0 || put > j->used - at)) e = EIO;
        if (e) break;
        at += put;
    }
    if (!e) {
        j->end += j->used;
        if (j->dur == BATCH_DURABLE_MACHINE && j->unsynced >= j->sync_every) {
            e = j->io.sync(j->io.user, j->h);
            j->unsynced = 0;
        }
        j->used = 0;
    } else {   /* the index holds records the file does not: read it again */
        (void)j->io.truncate(j->io.user, j->h, j->end);
        j->used = 0;
        (void)batch__qload(q, true);
    }
    return e;
}

/* ---- the index: reset, load, reopen ----------------------------------------------------------- */
BATCH__PRIVATE void batch__qreset(batch_queue* q) {
    q->njobs = 0;
    q->base = 0;
    q->next_id = 1;
    memset(q->count, 0, sizeof q->count);
    if (q->blk) memset(q->blk, 0, q->capblk * sizeof *q->blk);
    q->nready = q->ndelayed = q->nleases = 0;
    q->moved = false;
}

/* The header (written when the file is new), then every record. Lock held (exclusive: excl). */
BATCH__PRIVATE batch_result batch__qload(batch_queue* q, bool excl) {
    batch__journal* j = q->j;
    unsigned char want[BATCH__JHEADER];
    batch__journal_want(want, BATCH__JKIND_QUEUE, 0, 0);
    uint64_t size;
    int e = j->io.size(j->io.user, j->h, &size);
    if (e) return batch__errno_result(e);
    batch__qreset(q);
    batch_result r;
    if (size < BATCH__JHEADER) {
        if (!excl) return BATCH_ERR_CORRUPT;   /* never: a queue file gets its header under the exclusive lock */
        r = batch__journal_start(j, &q->jd, want, size);
        j->err = 0;
        j->unsynced = 0;
        if (r != BATCH_OK) return r;
    } else if ((r = batch__journal_header(j, want)) != BATCH_OK) {
        return r;
    }
    j->end = BATCH__JHEADER;
    return batch__qfollow(q, excl);
}

/* Compaction replaced the file: open the path again, lock it as the old one was, read it. */
BATCH__PRIVATE batch_result batch__qreopen(batch_queue* q, bool excl) {
    batch__journal* j = q->j;
    intptr_t h = -1;
    int e = j->io.open(j->io.user, q->path, &h);
    if (e) return batch__errno_result(e);
    if ((e = batch__file_lock(h, excl)) != 0) { j->io.close(j->io.user, h); return batch__errno_result(e); }
    batch__file_unlock(j->h);
    j->io.close(j->io.user, j->h);
    j->h = h;
    return batch__qload(q, excl);
}

/* ---- one operation: lock, catch up, act, write, unlock ---------------------------------------- */
BATCH__PRIVATE batch_result batch__qflush_pending(batch_queue* q);

/* In a child of fork the handle's file description is the parent's, and so is its lock: the
   child opens the file again and becomes a handle of its own (the parent's claims stay the
   parent's). q->lock held. */
BATCH__PRIVATE batch_result batch__qafter_fork(batch_queue* q, bool* forked) {
    *forked = false;
#if defined(BATCH__HOSTED) && !defined(_WIN32)
    long pid = (long)getpid();
    if (pid == q->pid) return BATCH_OK;
    batch__journal* j = q->j;
    intptr_t h = -1;
    int e = j->io.open(j->io.user, q->path, &h);
    if (e) return batch__errno_result(e);
    j->io.close(j->io.user, j->h);   /* the child's copy: the parent's lock and file stay */
    j->h = h;
    j->used = 0;
    q->pid = pid;
    q->nheld = q->npend = 0;
    do q->owner = batch__rand(&q->rng) ^ ((uint64_t)pid << 40); while (!q->owner);
    *forked = true;
#else
    (void)q;
#endif
    return BATCH_OK;
}

BATCH__PRIVATE batch_result batch__qbegin(batch_queue* q, bool excl) {
    batch__mutex_lock(&q->lock);
    bool forked;
    batch_result r = batch__qafter_fork(q, &forked);
    int e = r == BATCH_OK ? batch__file_lock(q->j->h, excl) : 0;
    q->flocked = r == BATCH_OK && !e;
    if (e) r = batch__errno_result(e);
    if (r == BATCH_OK) r = forked ? batch__qload(q, excl) : batch__qfollow(q, excl);
    for (int i = 0; r == BATCH_OK && q->moved && i < 100; i++) r = batch__qreopen(q, excl);
    if (r == BATCH_OK && excl) r = batch__qflush_pending(q);
    return r;
}

/* Writes what the operation framed, unlocks: r, or the write's failure (then the index is read
   again from the file, which holds none of the failed records). */
BATCH__PRIVATE batch_result batch__qend(batch_queue* q, batch_result r) {
    if (q->j->used && r != BATCH_OK) {   /* the operation failed midway: none of its records */
        q->j->used = 0;
        (void)batch__qload(q, true);
    } else if (q->j->used) {
        int e = batch__qwrite(q);
        if (e) r = batch__errno_result(e);
    }
    if (q->flocked) batch__file_unlock(q->j->h);
    q->flocked = false;
    batch__mutex_unlock(&q->lock);
    return r;
}

/* ---- reading a job's data ----------------------------------------------------------------------- */
BATCH__PRIVATE batch_result batch__qread(batch_queue* q, void* buf, size_t n, uint64_t off) {
    int e = n ? batch__jread(q->j, buf, n, off) : 0;
    return e ? batch__errno_result(e) : BATCH_OK;
}

/* Fills *info of job id (name and message read from the file). */
BATCH__PRIVATE batch_result batch__qinfo(batch_queue* q, uint64_t id, batch_queue_info* info) {
    const batch__qjob* jb = &q->jobs[id - q->base];
    memset(info, 0, sizeof *info);
    info->id = id;
    info->status = (batch_queue_status)q->st[id - q->base];
    info->priority = jb->priority;
    info->max_retries = jb->max_retries;
    info->attempts = jb->attempts;
    info->error = jb->error;
    info->pushed_ns = jb->pushed;
    if (info->status == BATCH_QUEUE_QUEUED) info->not_before_ns = jb->when;
    else if (info->status == BATCH_QUEUE_RUNNING) info->lease_until_ns = jb->when;
    else info->finished_ns = jb->when;
    info->size = jb->size;
    batch_result r = batch__qread(q, info->name, jb->name_len, jb->rec + BATCH__QJOB_HDR);
    if (r == BATCH_OK) r = batch__qread(q, info->message, jb->msg_len, jb->msg_at);
    return r;
}

/* *out: the info and a copy of the payload of job id. */
BATCH__PRIVATE batch_result batch__qfetch(batch_queue* q, uint64_t id, batch_queue_job* out) {
    const batch__qjob* jb = &q->jobs[id - q->base];
    batch_result r = batch__qinfo(q, id, &out->info);
    if (r != BATCH_OK || !jb->size) return r;
    out->payload = BATCH_MALLOC(jb->size, q->alloc_ctx);
    if (!out->payload) return BATCH_ERR_NOMEM;
    r = batch__qread(q, out->payload, jb->size, jb->rec + BATCH__QJOB_HDR + jb->name_len + jb->jmsg_len);
    if (r != BATCH_OK) { BATCH_FREE(out->payload, q->alloc_ctx); out->payload = NULL; }
    return r;
}

BATCH_API void batch_queue_job_free(batch_queue* q, batch_queue_job* job) {
    if (!job) return;
    if (job->payload) BATCH_FREE(job->payload, q ? q->alloc_ctx : NULL);
    memset(job, 0, sizeof *job);
}

/* ---- open and close ----------------------------------------------------------------------------- */
BATCH__PRIVATE bool batch__queue_desc_ok(const batch_queue_desc* d) {
    return d->path && d->path[0] && !BATCH__ENUM_BAD(d->durability, BATCH_DURABLE_BUFFERED + 1) && d->sync_every >= 0 &&
           d->lease_ns <= ((uint64_t)1 << 62) && d->retry_base_ns <= ((uint64_t)1 << 62) &&
           d->retry_max_ns <= ((uint64_t)1 << 62);
}

BATCH__PRIVATE void batch__queue_free(batch_queue* q) {
    void* ctx = q->alloc_ctx;   /* read before q is freed */
    if (q->j) batch__journal_free(q->j);
    BATCH_FREE(q->jobs, ctx); BATCH_FREE(q->st, ctx); BATCH_FREE(q->blk, ctx); BATCH_FREE(q->ready, ctx);
    BATCH_FREE(q->delayed, ctx); BATCH_FREE(q->leases, ctx); BATCH_FREE(q->rb, ctx);
    BATCH_FREE(q->pend, ctx); BATCH_FREE(q->held, ctx); BATCH_FREE(q->path, ctx);
    batch__mutex_destroy(&q->lock);
    BATCH_FREE(q, ctx);
}

BATCH_API batch_result batch_queue_open(batch_queue** out, const batch_queue_desc* desc) {
    if (!out) return BATCH_ERR_INVALID;
    *out = NULL;
    if (!desc || !batch__queue_desc_ok(desc)) return BATCH_ERR_INVALID;
    if (!batch__journal_default_io()) return BATCH_ERR_IO;
    batch_queue* q = (batch_queue*)BATCH_MALLOC(sizeof *q, desc->alloc_ctx);
    if (!q) return BATCH_ERR_NOMEM;
    memset(q, 0, sizeof *q);
    q->alloc_ctx = desc->alloc_ctx;
    if (!batch__mutex_init(&q->lock)) { BATCH_FREE(q, desc->alloc_ctx); return BATCH_ERR_NOMEM; }
    size_t pl = strlen(desc->path);
    q->path = (char*)BATCH_MALLOC(pl + 1, q->alloc_ctx);
    if (!q->path) { batch__queue_free(q); return BATCH_ERR_NOMEM; }
    memcpy(q->path, desc->path, pl + 1);
    q->jd.path = q->path;
    q->jd.durability = desc->durability;
    q->jd.sync_every = desc->sync_every;
    q->lease_ns = desc->lease_ns ? desc->lease_ns : 30000000000ull;
    q->retry_base_ns = desc->retry_base_ns ? desc->retry_base_ns : 1000000000ull;
    q->retry_max_ns = desc->retry_max_ns ? desc->retry_max_ns : 600000000000ull;
    q->jitter = desc->retry_jitter != 0;
    /* the token in our claims: this process, this handle, this instant */
    uint64_t seed = batch__wall_ns() ^ ((uint64_t)(uintptr_t)q << 16) ^ batch_now_ns();
#if defined(BATCH__HOSTED) && !defined(_WIN32)
    q->pid = (long)getpid();
    seed ^= (uint64_t)q->pid << 40;
#elif defined(_WIN32)
    seed ^= (uint64_t)GetCurrentProcessId() << 40;
#endif
    q->rng = seed | 1;
    do q->owner = batch__rand(&q->rng); while (!q->owner);
    uint64_t size;
    batch_result r = batch__journal_new(&q->j, &q->jd, BATCH__QMAX_REC, 4096, &size, q->alloc_ctx);
    if (r != BATCH_OK) { batch__queue_free(q); return r; }
    int e = batch__file_lock(q->j->h, true);
    if (e) { batch__queue_free(q); return batch__errno_result(e); }
    r = batch__qload(q, true);
    for (int i = 0; r == BATCH_OK && q->moved && i < 100; i++) r = batch__qreopen(q, true);
    batch__file_unlock(q->j->h);
    if (r != BATCH_OK) { batch__queue_free(q); return r; }
    *out = q;
    return BATCH_OK;
}

BATCH_API batch_result batch_queue_flush(batch_queue* q) {
    if (!q) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, true);
    if (r == BATCH_OK && q->j->dur == BATCH_DURABLE_MACHINE && q->j->unsynced && !q->j->used) {
        int e = q->j->io.sync(q->j->io.user, q->j->h);
        q->j->unsynced = 0;
        if (e) r = batch__errno_result(e);
    }
    return batch__qend(q, r);
}

BATCH_API batch_result batch_queue_close(batch_queue* q) {
    if (!q) return BATCH_OK;
    batch_result r = q->npend || q->j->unsynced ? batch_queue_flush(q) : BATCH_OK;
    batch__queue_free(q);
    return r;
}

/* ---- push --------------------------------------------------------------------------------------- */
BATCH__PRIVATE bool batch__qpush_ok(const batch_queue_push_desc* d) {
    return (d->payload || !d->size) && d->size <= BATCH_QUEUE_PAYLOAD_MAX && d->max_retries >= 0 &&
           d->max_retries <= 1000 && (!d->name || strlen(d->name) < BATCH_QUEUE_NAME_MAX);
}

BATCH_API batch_result batch_queue_push_many(batch_queue* q, const batch_queue_push_desc* jobs, size_t n,
                                             uint64_t* out_first_id) {
    if (!q || !jobs || !n) return BATCH_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!batch__qpush_ok(&jobs[i])) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, true);
    uint64_t first = q->next_id, now = batch__wall_ns();
    for (size_t i = 0; i < n && r == BATCH_OK; i++) {
        batch__qjob s;
        memset(&s, 0, sizeof s);
        s.priority = jobs[i].priority;
        s.max_retries = (uint16_t)jobs[i].max_retries;
        s.pushed = now;
        const char* name = jobs[i].name ? jobs[i].name : "";
        r = batch__qjob_rec(q, q->next_id, &s, BATCH_QUEUE_QUEUED, name, strlen(name), NULL, 0, jobs[i].payload, jobs[i].size);
        if (r == BATCH_OK && q->j->used >= BATCH__QREAD && i + 1 < n) {   /* big pushes: a write per MiB */
            int e = batch__qwrite(q);
            if (e) r = batch__errno_result(e);
        }
    }
    r = batch__qend(q, r);
    if (r == BATCH_OK && out_first_id) *out_first_id = first;
    return r;
}

BATCH_API batch_result batch_queue_push(batch_queue* q, const batch_queue_push_desc* job, uint64_t* out_id) {
    return batch_queue_push_many(q, job, 1, out_id);
}

/* The ids this handle claimed and has not ended: a held one's end that fails tells how it was
   lost; one never held is BATCH_ERR_INVALID. q->lock held. */
BATCH__PRIVATE size_t batch__qheld_at(const batch_queue* q, uint64_t id) {
    for (size_t i = 0; i < q->nheld; i++) if (q->held[i] == id) return i;
    return SIZE_MAX;
}
BATCH__PRIVATE void batch__qforget(batch_queue* q, uint64_t id) {
    size_t i = batch__qheld_at(q, id);
    if (i != SIZE_MAX) q->held[i] = q->held[--q->nheld];
}
BATCH__PRIVATE bool batch__qkeep(batch_queue* q, uint64_t id) {
    if (!batch__qgrow((void**)&q->held, &q->capheld, q->nheld + 1, sizeof *q->held, q->alloc_ctx)) return false;
    q->held[q->nheld++] = id;
    return true;
}

/* ---- claim -------------------------------------------------------------------------------------- */
/* The retry time of a job whose attempt `attempts` failed, or 0 when it is final. */
BATCH__PRIVATE uint64_t batch__qretry_at(batch_queue* q, const batch__qjob* jb, bool permanent, uint64_t now) {
    if (permanent || jb->attempts > jb->max_retries) return 0;
    int k = jb->attempts ? jb->attempts - 1 : 0;
    return batch__retry_due(q->retry_base_ns, q->retry_max_ns, q->jitter, k, now, 0, &q->rng, q->owner);
}

/* Leases that ran out give their jobs back (EXPIRE records); due retries become ready. */
BATCH__PRIVATE batch_result batch__qtimers(batch_queue* q, uint64_t now) {
    while (q->nleases && q->leases[0].when <= now) {
        batch__qtimer t = batch__qtimer_pop(q->leases, &q->nleases);
        batch__qjob* jb = batch__qget(q, t.id);
        if (!jb || q->st[t.id - q->base] != BATCH_QUEUE_RUNNING || jb->when != t.when) continue;   /* stale */
        bool final = jb->attempts > jb->max_retries;   /* else claimable at once: the lease was the wait */
        unsigned char* p = batch__qchange(q, BATCH__QR_EXPIRE, t.id, 9);
        if (!p) return BATCH_ERR_NOMEM;
        p[9] = final;
        batch__put64(p + 10, final ? now : 0);
        batch_result r = batch__qrec_done(q, 18);
        if (r != BATCH_OK) return r;
    }
    while (q->ndelayed && q->delayed[0].when <= now) {
        batch__qtimer t = batch__qtimer_pop(q->delayed, &q->ndelayed);
        batch__qjob* jb = batch__qget(q, t.id);
        if (jb && q->st[t.id - q->base] == BATCH_QUEUE_QUEUED && jb->when == t.when && !batch__qready_push(q, t.id))
            return BATCH_ERR_NOMEM;
    }
    return BATCH_OK;
}

BATCH_API batch_result batch_queue_claim(batch_queue* q, batch_queue_job* out) {
    if (!out) return BATCH_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!q) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, true);
    uint64_t now = batch__wall_ns(), id = 0;
    if (r == BATCH_OK) r = batch__qtimers(q, now);
    while (r == BATCH_OK && q->nready && !id) {
        uint64_t c = batch__qready_pop(q);
        const batch__qjob* jb = batch__qget(q, c);
        if (jb && q->st[c - q->base] == BATCH_QUEUE_QUEUED && jb->when <= now) id = c;
    }
    bool empty = r == BATCH_OK && !id;   /* not an error: the expired leases are still written */
    if (r == BATCH_OK && id) r = batch__qlease_rec(q, BATCH__QR_CLAIM, id, now);
    if (r == BATCH_OK && id) {   /* written before the job is read: its offsets are in the file */
        int e = batch__qwrite(q);
        if (e) r = batch__errno_result(e);
        else if ((r = batch__qfetch(q, id, out)) == BATCH_OK && !batch__qkeep(q, id)) r = BATCH_ERR_NOMEM;
        if (r != BATCH_OK) batch_queue_job_free(q, out);   /* claimed in the file: its lease runs out */
    }
    r = batch__qend(q, r);
    return r == BATCH_OK && empty ? BATCH_ERR_EMPTY : r;
}

/* ---- the end of a claimed job ------------------------------------------------------------------- */
/* Does this handle hold job id? BATCH_OK, or why not. */
BATCH__PRIVATE batch_result batch__qheld(batch_queue* q, uint64_t id) {
    const batch__qjob* jb = batch__qget(q, id);
    if (!jb) return BATCH_ERR_NOT_FOUND;
    if (batch__qheld_at(q, id) == SIZE_MAX) return BATCH_ERR_INVALID;
    uint8_t st = q->st[id - q->base];
    if (st == BATCH_QUEUE_RUNNING && jb->owner == q->owner) return BATCH_OK;
    return st == BATCH_QUEUE_CANCELLED ? BATCH_ERR_CANCELLED : BATCH_ERR_TIMEOUT;   /* lost to a claim */
}
/* The file says this handle holds it (the check of a BUFFERED end when it is written). */
BATCH__PRIVATE bool batch__qholds(batch_queue* q, uint64_t id) {
    const batch__qjob* jb = batch__qget(q, id);
    return jb && q->st[id - q->base] == BATCH_QUEUE_RUNNING && jb->owner == q->owner;
}

/* Frames the record of an end (DONE, FAIL, RELEASE) of a job this handle holds. */
BATCH__PRIVATE batch_result batch__qend_rec(batch_queue* q, int type, uint64_t id, int code, bool permanent, const char* msg) {
    if (!batch__qholds(q, id)) return BATCH_ERR_INVALID;
    uint64_t now = batch__wall_ns();
    if (type == BATCH__QR_DONE) return batch__qtime_rec(q, BATCH__QR_DONE, id, now);
    if (type == BATCH__QR_RELEASE) {
        if (!batch__qchange(q, BATCH__QR_RELEASE, id, 0)) return BATCH_ERR_NOMEM;
        return batch__qrec_done(q, 9);
    }
    uint64_t at = batch__qretry_at(q, batch__qget(q, id), permanent, now);
    return batch__qfail_rec(q, id, code, at == 0, at ? at : now, msg);
}

/* BUFFERED: the ends wait in the handle; each is checked again when it is written (a job
   cancelled or lost meanwhile keeps what happened to it). Exclusive lock held. */
BATCH__PRIVATE batch_result batch__qflush_pending(batch_queue* q) {
    for (size_t i = 0; i < q->npend; i++) {
        const batch__qpend* e = &q->pend[i];
        batch_result r = batch__qend_rec(q, e->type, e->id, e->code, e->permanent, e->msg);
        if (r == BATCH_ERR_NOMEM) return r;
    }
    q->npend = 0;
    return BATCH_OK;
}

BATCH__PRIVATE batch_result batch__qfinish(batch_queue* q, int type, uint64_t id, int code, bool permanent, const char* msg) {
    if (!q || !id) return BATCH_ERR_INVALID;
    if (q->j->dur == BATCH_DURABLE_BUFFERED) {
        batch__mutex_lock(&q->lock);
        batch_result r = batch__qheld(q, id);
        if (r == BATCH_OK && !batch__qgrow((void**)&q->pend, &q->cappend, q->npend + 1, sizeof *q->pend, q->alloc_ctx))
            r = BATCH_ERR_NOMEM;
        if (r == BATCH_OK) {
            batch__qpend* e = &q->pend[q->npend++];
            e->type = (uint8_t)type;
            e->permanent = permanent;
            e->id = id;
            e->code = code;
            e->msg[0] = 0;
            if (msg) { strncpy(e->msg, msg, BATCH_MESSAGE_MAX - 1); e->msg[BATCH_MESSAGE_MAX - 1] = 0; }
        }
        if (r == BATCH_OK || r == BATCH_ERR_CANCELLED || r == BATCH_ERR_TIMEOUT) batch__qforget(q, id);
        batch__mutex_unlock(&q->lock);
        return r;
    }
    batch_result r = batch__qbegin(q, true);
    if (r == BATCH_OK) r = batch__qheld(q, id);
    if (r == BATCH_OK) r = batch__qend_rec(q, type, id, code, permanent, msg);
    if (r == BATCH_OK || r == BATCH_ERR_CANCELLED || r == BATCH_ERR_TIMEOUT) batch__qforget(q, id);
    batch_result w = batch__qend(q, r);
    if (r == BATCH_OK && w != BATCH_OK) {   /* not written: still held */
        batch__mutex_lock(&q->lock);
        (void)batch__qkeep(q, id);
        batch__mutex_unlock(&q->lock);
    }
    return w;
}

BATCH_API batch_result batch_queue_complete(batch_queue* q, uint64_t id) {
    return batch__qfinish(q, BATCH__QR_DONE, id, 0, false, NULL);
}
BATCH_API batch_result batch_queue_fail(batch_queue* q, uint64_t id, int code, int permanent, const char* message) {
    if (!code) return BATCH_ERR_INVALID;
    return batch__qfinish(q, BATCH__QR_FAIL, id, code, permanent != 0, message);
}
BATCH_API batch_result batch_queue_release(batch_queue* q, uint64_t id) {
    return batch__qfinish(q, BATCH__QR_RELEASE, id, 0, false, NULL);
}
BATCH_API batch_result batch_queue_renew(batch_queue* q, uint64_t id) {
    if (!q || !id) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, true);
    if (r == BATCH_OK) r = batch__qheld(q, id);
    if (r == BATCH_OK) r = batch__qlease_rec(q, BATCH__QR_RENEW, id, batch__wall_ns());
    return batch__qend(q, r);   /* a lost job stays in the held list: its end tells why too */
}

BATCH_API batch_result batch_queue_cancel(batch_queue* q, uint64_t id) {
    if (!q || !id) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, true);
    const batch__qjob* jb = r == BATCH_OK ? batch__qget(q, id) : NULL;
    if (r == BATCH_OK && !jb) r = BATCH_ERR_NOT_FOUND;
    if (r == BATCH_OK && q->st[id - q->base] > BATCH_QUEUE_RUNNING) r = BATCH_ERR_INVALID;
    if (r == BATCH_OK) r = batch__qtime_rec(q, BATCH__QR_CANCEL, id, batch__wall_ns());
    return batch__qend(q, r);
}

/* ---- reading the queue -------------------------------------------------------------------------- */
BATCH_API batch_result batch_queue_get(batch_queue* q, uint64_t id, batch_queue_job* out) {
    if (!out) return BATCH_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!q || !id) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, false);
    if (r == BATCH_OK && !batch__qget(q, id)) r = BATCH_ERR_NOT_FOUND;
    if (r == BATCH_OK) r = batch__qfetch(q, id, out);
    if (r != BATCH_OK) batch_queue_job_free(q, out);
    return batch__qend(q, r);
}

BATCH_API batch_result batch_queue_list(batch_queue* q, int status, uint64_t offset, batch_queue_info* out,
                                        size_t limit, size_t* n) {
    if (n) *n = 0;
    if (!q || !n || (limit && !out) || status < -1 || status >= BATCH_QUEUE_STATUS_COUNT_) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, false);
    size_t got = 0, i = 0;
    int k = status < 0 ? BATCH_QUEUE_STATUS_COUNT_ : status;
    for (; r == BATCH_OK && i < q->njobs && offset; i += (size_t)1 << BATCH__QBLOCK_BITS) {   /* whole blocks */
        uint32_t c = q->blk[(i >> BATCH__QBLOCK_BITS) * BATCH__QBLK + (size_t)k];
        if (offset < c) break;
        offset -= c;
    }
    for (; r == BATCH_OK && i < q->njobs && got < limit; i++) {
        uint8_t st = q->st[i];
        if (st == BATCH__QGONE || (status >= 0 && st != status)) continue;
        if (offset) { offset--; continue; }
        r = batch__qinfo(q, q->base + i, &out[got]);
        if (r == BATCH_OK) got++;
    }
    *n = got;
    return batch__qend(q, r);
}

BATCH_API batch_result batch_queue_stats_get(batch_queue* q, batch_queue_stats* out) {
    if (!q || !out) return BATCH_ERR_INVALID;
    memset(out, 0, sizeof *out);
    batch_result r = batch__qbegin(q, false);
    if (r == BATCH_OK) {
        uint64_t now = batch__wall_ns();
        for (int s = 0; s < BATCH_QUEUE_STATUS_COUNT_; s++) { out->count[s] = q->count[s]; out->total += q->count[s]; }
        for (size_t i = 0; i < q->njobs; i++) {
            if (q->st[i] == BATCH_QUEUE_QUEUED && q->jobs[i].when > now) out->delayed++;
            else if (q->st[i] == BATCH_QUEUE_RUNNING && q->jobs[i].when <= now) out->expired++;
        }
        out->file_bytes = q->j->end;
        out->next_id = q->next_id;
    }
    return batch__qend(q, r);
}

/* ---- compaction --------------------------------------------------------------------------------- */
/* Appends job id's JOB record, in its present state, to the new file t. */
BATCH__PRIVATE batch_result batch__qcopy_job(batch_queue* q, batch__journal* t, uint64_t id, unsigned char** scratch, size_t* cap) {
    const batch__qjob* jb = &q->jobs[id - q->base];
    size_t len = BATCH__QJOB_HDR + jb->name_len + jb->msg_len + jb->size;
    if (!batch__qgrow((void**)scratch, cap, len, 1, q->alloc_ctx)) return BATCH_ERR_NOMEM;
    unsigned char* p = *scratch;
    p[0] = BATCH__QR_JOB;
    batch__put64(p + 1, id);
    batch__put32(p + 9, (uint32_t)jb->priority);
    batch__put32(p + 13, jb->max_retries);
    p[17] = q->st[id - q->base];
    p[18] = (unsigned char)(jb->attempts & 0xFF);
    p[19] = (unsigned char)(jb->attempts >> 8);
    batch__put32(p + 20, (uint32_t)jb->error);
    batch__put64(p + 24, jb->pushed);
    batch__put64(p + 32, jb->when);
    batch__put64(p + 40, jb->owner);
    p[48] = (unsigned char)(jb->name_len & 0xFF); p[49] = (unsigned char)(jb->name_len >> 8);
    p[50] = (unsigned char)(jb->msg_len & 0xFF); p[51] = (unsigned char)(jb->msg_len >> 8);
    unsigned char* at = p + BATCH__QJOB_HDR;
    batch_result r = batch__qread(q, at, jb->name_len, jb->rec + BATCH__QJOB_HDR);
    if (r == BATCH_OK) r = batch__qread(q, at + jb->name_len, jb->msg_len, jb->msg_at);
    if (r == BATCH_OK)
        r = batch__qread(q, at + jb->name_len + jb->msg_len, jb->size, jb->rec + BATCH__QJOB_HDR + jb->name_len + jb->jmsg_len);
    return r == BATCH_OK ? batch__journal_append(t, p, len) : r;
}

/* Writes the compacted queue to tmp (synced): the NEXT record, then one JOB record per job kept. */
BATCH__PRIVATE batch_result batch__qwrite_compact(batch_queue* q, const char* tmp, bool drop) {
    batch_journal_desc d = q->jd;
    d.path = tmp;
    d.durability = BATCH_DURABLE_BUFFERED;
    batch__journal* t;
    uint64_t size;
    batch_result r = batch__journal_new(&t, &d, BATCH__QMAX_REC, BATCH__JBUFFERED + 4096, &size, q->alloc_ctx);
    if (r != BATCH_OK) return r;
    unsigned char want[BATCH__JHEADER], next[9];
    batch__journal_want(want, BATCH__JKIND_QUEUE, 0, 0);
    int e = size ? t->io.truncate(t->io.user, t->h, 0) : 0;   /* left by a compaction that crashed */
    r = e ? batch__errno_result(e) : batch__journal_start(t, &d, want, 0);
    next[0] = BATCH__QR_NEXT;
    batch__put64(next + 1, q->next_id);
    if (r == BATCH_OK) r = batch__journal_append(t, next, sizeof next);
    unsigned char* scratch = NULL;
    size_t cap = 0;
    for (size_t i = 0; r == BATCH_OK && i < q->njobs; i++) {
        uint8_t st = q->st[i];
        if (st == BATCH__QGONE || (drop && st > BATCH_QUEUE_RUNNING)) continue;
        r = batch__qcopy_job(q, t, q->base + i, &scratch, &cap);
    }
    BATCH_FREE(scratch, q->alloc_ctx);
    if (r == BATCH_OK && (batch__jflush(t) || (t->unsynced = 1, batch__jsync(t)))) r = batch__errno_result(t->err);
    batch__journal_free(t);
    return r;
}

BATCH_API batch_result batch_queue_compact(batch_queue* q, int drop_finished) {
    if (!q) return BATCH_ERR_INVALID;
    size_t pl = strlen(q->path);
    char* tmp = (char*)BATCH_MALLOC(pl + 9, q->alloc_ctx);
    if (!tmp) return BATCH_ERR_NOMEM;
    memcpy(tmp, q->path, pl);
    memcpy(tmp + pl, ".compact", 9);
    batch_result r = batch__qbegin(q, true);
    if (r == BATCH_OK && q->j->used) {   /* BUFFERED ends first, so that the copy has them */
        int e = batch__qwrite(q);
        if (e) r = batch__errno_result(e);
    }
    if (r == BATCH_OK) r = batch__qwrite_compact(q, tmp, drop_finished != 0);
    int e = r == BATCH_OK ? batch__file_rename(tmp, q->path) : 0;
    if (e) r = e == EBUSY ? BATCH_ERR_BUSY : batch__errno_result(e);
    if (r != BATCH_OK) batch__file_remove(tmp);   /* a copy that did not replace the queue */
    if (r == BATCH_OK && q->jd.durability == BATCH_DURABLE_MACHINE && (e = batch__sync_dir(q->path)) != 0) r = batch__errno_result(e);
    if (r == BATCH_OK) {   /* tell the others, who hold the old file open, to follow */
        if (!batch__qchange(q, BATCH__QR_MOVED, 0, 0)) r = BATCH_ERR_NOMEM;
        else if ((r = batch__qrec_done(q, 9)) == BATCH_OK && (e = batch__qwrite(q)) != 0) r = batch__errno_result(e);
        if (r == BATCH_OK) r = batch__qreopen(q, true);
    }
    BATCH_FREE(tmp, q->alloc_ctx);
    return batch__qend(q, r);
}

/* ---- serving: a job that claims and runs --------------------------------------------------------
   A thread of the serve's own claims jobs while it has free slots, hands each to the pool, renews
   the leases of those running every lease / 3, and looks for new jobs every poll_ns when the
   queue had none. Each job runs in a slot: its context's stop flag is the slot's, set when the
   serve stops or a renewal finds the job cancelled or lost. */
typedef struct batch__qrun {      /* one run, for the reports */
    uint64_t id;
    char* name;                   /* NULL: none */
    char* msg;
    int status;                   /* a batch_task_status */
    int attempts, error, worker;
    uint64_t start_ns, end_ns;
} batch__qrun;

struct batch__qserve;
typedef struct batch__qslot {
    struct batch__qserve* s;
    batch_queue_job job;
    _Atomic int stop;
    bool busy, lost;              /* lost: a renewal found the job cancelled or taken */
    char msg[BATCH_MESSAGE_MAX];
} batch__qslot;

typedef struct batch__qserve {
    batch__job_head head;         /* first: the job layer dispatches on it */
    batch_pool* pool;
    batch_queue* q;
    batch_queue_serve_desc d;
    void* alloc_ctx;
    batch__mutex m;
    batch__cond cv;
    batch__thread thr;
    batch__qslot* slots;
    int nslots, running;
    bool inline_run;              /* a pool without workers: jobs run on the serve's thread */
    bool done, joined, stopping;
    _Atomic int cancel;
    uint64_t claimed, launch_ns, end_ns;
    batch_job_summary sum;        /* completed, failed, cancelled, retries, busy_ns, peak */
    batch_result result;          /* an error of the queue, or BATCH_OK */
    batch__qrun* runs;
    size_t nruns, capruns;
} batch__qserve;

/* Notes a run for the reports (out of memory: the run is missing from them). m held. */
BATCH__PRIVATE void batch__qserve_note(batch__qserve* s, const batch__qslot* sl, int status, int error, int worker,
                                      uint64_t t0, uint64_t t1) {
    if (!batch__qgrow((void**)&s->runs, &s->capruns, s->nruns + 1, sizeof *s->runs, s->alloc_ctx)) return;
    batch__qrun* r = &s->runs[s->nruns++];
    memset(r, 0, sizeof *r);
    r->id = sl->job.info.id;
    r->status = status;
    r->attempts = sl->job.info.attempts;
    r->error = error;
    r->worker = worker;
    r->start_ns = t0;
    r->end_ns = t1;
    const char* texts[2] = { sl->job.info.name, error ? sl->msg : "" };
    char** dst[2] = { &r->name, &r->msg };
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(texts[i]);
        if (!n) continue;
        *dst[i] = (char*)BATCH_MALLOC(n + 1, s->alloc_ctx);
        if (*dst[i]) memcpy(*dst[i], texts[i], n + 1);
    }
}

/* The outcome of a run that returned rc: written to the queue; the run's task status. */
BATCH__PRIVATE int batch__qserve_settle(batch__qserve* s, batch__qslot* sl, int rc, const batch_ctx* ctx, bool* retried) {
    batch_queue* q = s->q;
    uint64_t id = sl->job.info.id;
    batch_result r;
    int status;
    *retried = false;
    batch__mutex_lock(&s->m);   /* lost is written by the renewals, under m */
    bool give_back = atomic_load_explicit(&sl->stop, memory_order_relaxed) && !sl->lost;
    batch__mutex_unlock(&s->m);
    if (rc == 0) {
        r = batch_queue_complete(q, id);
        status = r == BATCH_OK ? BATCH_TASK_COMPLETED : BATCH_TASK_CANCELLED;
    } else if (give_back) {
        r = batch_queue_release(q, id);   /* the serve stops: the job goes back, its attempt not counted */
        status = BATCH_TASK_CANCELLED;
    } else {
        bool permanent = (ctx->msg_set & BATCH__MSG_PERMANENT) != 0;
        r = batch_queue_fail(q, id, rc, permanent, (ctx->msg_set & BATCH__MSG_SET) ? sl->msg : NULL);
        status = r == BATCH_OK ? BATCH_TASK_FAILED : BATCH_TASK_CANCELLED;
        *retried = r == BATCH_OK && !permanent && sl->job.info.attempts <= sl->job.info.max_retries;
    }
    if (r != BATCH_OK && r != BATCH_ERR_CANCELLED && r != BATCH_ERR_TIMEOUT && r != BATCH_ERR_INVALID) {
        batch__mutex_lock(&s->m);
        if (s->result == BATCH_OK) s->result = r;
        batch__mutex_unlock(&s->m);
    }
    return status;
}

/* A pool task: runs the slot's job, writes its outcome, frees the slot. */
BATCH__PRIVATE void batch__qserve_run(batch_pool* pool, void* arg) {
    batch__qslot* sl = (batch__qslot*)arg;
    batch__qserve* s = sl->s;
    batch_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.pool = pool;
    ctx.owner = (batch_job*)s;
    ctx.msg = sl->msg;
    ctx.stop = &sl->stop;
    ctx.worker = batch_pool_worker_index(pool);
    ctx.attempt = sl->job.info.attempts;
    ctx.batch_index = (size_t)sl->job.info.id;
    sl->msg[0] = 0;
    batch__job_frame f;
    batch__frame_push(&f, (batch_job*)s);
    uint64_t t0 = batch_now_ns();
    int rc = s->d.fn(&ctx, &sl->job, s->d.user_data);
    uint64_t t1 = batch_now_ns();
    batch__frame_pop(&f);
    bool retried;
    int status = batch__qserve_settle(s, sl, rc, &ctx, &retried);
    batch_event_info ev;
    memset(&ev, 0, sizeof ev);
    ev.name = sl->job.info.name[0] ? sl->job.info.name : NULL;
    ev.batch_index = (size_t)sl->job.info.id;
    ev.error = status == BATCH_TASK_FAILED ? rc : 0;
    batch__mutex_lock(&s->m);
    s->sum.busy_ns += t1 - t0;
    if (status == BATCH_TASK_COMPLETED) s->sum.completed++;
    else if (status == BATCH_TASK_FAILED) s->sum.failed++;
    else s->sum.cancelled++;
    if (retried) s->sum.retries++;
    if (s->d.keep_records) batch__qserve_note(s, sl, status, ev.error, ctx.worker, t0, t1);
    batch__mutex_unlock(&s->m);
    if (status == BATCH_TASK_COMPLETED || status == BATCH_TASK_FAILED)
        batch__progress_emit((batch_job*)s, status == BATCH_TASK_COMPLETED ? BATCH_EVENT_TASK_COMPLETED : BATCH_EVENT_TASK_FAILED, &ev);
    batch_queue_job_free(s->q, &sl->job);
    batch__mutex_lock(&s->m);
    sl->busy = false;
    s->running--;
    batch__cond_broadcast(&s->cv);
    batch__mutex_unlock(&s->m);
}

/* Claims into free slots and starts them; m held (released around the queue's calls). Returns
   true when the queue had nothing to claim. */
BATCH__PRIVATE bool batch__qserve_fill(batch__qserve* s) {
    while (!s->stopping && s->running < s->nslots && (!s->d.max_jobs || s->claimed < s->d.max_jobs)) {
        batch__qslot* sl = NULL;
        for (int i = 0; i < s->nslots && !sl; i++) if (!s->slots[i].busy) sl = &s->slots[i];
        sl->busy = true;
        s->running++;
        batch__mutex_unlock(&s->m);
        batch_result r = batch_queue_claim(s->q, &sl->job);
        batch__mutex_lock(&s->m);
        if (r != BATCH_OK) {
            sl->busy = false;
            s->running--;
            if (r == BATCH_ERR_EMPTY) return true;
            if (s->result == BATCH_OK) s->result = r;
            return false;
        }
        s->claimed++;
        atomic_store_explicit(&sl->stop, 0, memory_order_relaxed);
        sl->lost = false;
        if ((uint64_t)s->running > s->sum.peak_concurrency) s->sum.peak_concurrency = (uint64_t)s->running;
        batch__mutex_unlock(&s->m);
        if (s->inline_run) {
            batch__qserve_run(s->pool, sl);
        } else {
            batch_work w;
            memset(&w, 0, sizeof w);
            w.fn = batch__qserve_run;
            w.user_data = sl;
            r = batch_pool_submit(s->pool, &w);
            if (r != BATCH_OK) {   /* the pool shuts down: give the job back */
                (void)batch_queue_release(s->q, sl->job.info.id);
                batch_queue_job_free(s->q, &sl->job);
            }
        }
        batch__mutex_lock(&s->m);
        if (r != BATCH_OK) {
            sl->busy = false;
            s->running--;
            s->claimed--;
            if (s->result == BATCH_OK) s->result = r;
        }
    }
    return false;
}

/* Renews the leases of the running jobs; one found cancelled or taken is told to stop. m held. */
BATCH__PRIVATE void batch__qserve_renew(batch__qserve* s) {
    for (int i = 0; i < s->nslots; i++) {
        batch__qslot* sl = &s->slots[i];
        if (!sl->busy || sl->lost || !sl->job.info.id) continue;
        uint64_t id = sl->job.info.id;
        batch__mutex_unlock(&s->m);
        batch_result r = batch_queue_renew(s->q, id);
        batch__mutex_lock(&s->m);
        if (sl->busy && sl->job.info.id == id && (r == BATCH_ERR_CANCELLED || r == BATCH_ERR_TIMEOUT)) {
            sl->lost = true;
            atomic_store_explicit(&sl->stop, 1, memory_order_relaxed);
        }
    }
}

/* Nothing QUEUED or RUNNING is left in the queue (drain): the counts only, not the O(jobs)
   scan of batch_queue_stats_get. m held. */
BATCH__PRIVATE bool batch__qserve_drained(batch__qserve* s) {
    batch__mutex_unlock(&s->m);
    batch_queue* q = s->q;
    batch_result r = batch__qbegin(q, false);
    bool drained = q->count[BATCH_QUEUE_QUEUED] == 0 && q->count[BATCH_QUEUE_RUNNING] == 0;
    r = batch__qend(q, r);
    batch__mutex_lock(&s->m);
    if (r != BATCH_OK) { if (s->result == BATCH_OK) s->result = r; return true; }
    return drained;
}

BATCH__PRIVATE int batch__qserve_main(void* arg) {
    batch__qserve* s = (batch__qserve*)arg;
    uint64_t lease = s->q->lease_ns, next_renew = batch_now_ns() + lease / 3;
    batch__mutex_lock(&s->m);
    for (;;) {
        bool limit = s->d.max_jobs && s->claimed >= s->d.max_jobs;
        if (!s->stopping && (atomic_load_explicit(&s->cancel, memory_order_relaxed) || s->result != BATCH_OK)) {
            s->stopping = true;
            for (int i = 0; i < s->nslots; i++) atomic_store_explicit(&s->slots[i].stop, 1, memory_order_relaxed);
        }
        if ((s->stopping || limit) && s->running == 0) break;
        bool empty = batch__qserve_fill(s);
        if (empty && s->d.drain && s->running == 0 && batch__qserve_drained(s)) break;
        uint64_t now = batch_now_ns();
        if (now >= next_renew) {
            batch__qserve_renew(s);
            next_renew = batch_now_ns() + lease / 3;
        }
        batch__mutex_unlock(&s->m);
        batch__progress_tick((batch_job*)s, now);
        batch__mutex_lock(&s->m);
        if (!empty && s->running < s->nslots && !limit && !s->stopping) continue;   /* room and work: claim on */
        uint64_t until = now + (empty ? s->d.poll_ns : lease / 3);
        if (until > next_renew) until = next_renew;
        if (s->running || empty) batch__cond_wait_slice(&s->cv, &s->m, until);
    }
    s->end_ns = batch_now_ns();
    bool cancelled = atomic_load_explicit(&s->cancel, memory_order_relaxed) != 0;
    batch__mutex_unlock(&s->m);
    batch__progress_emit((batch_job*)s, cancelled ? BATCH_EVENT_JOB_CANCELLED : BATCH_EVENT_JOB_COMPLETED, NULL);
    batch__mutex_lock(&s->m);
    s->done = true;
    batch__cond_broadcast(&s->cv);
    batch__mutex_unlock(&s->m);
    return 0;
}

/* ---- the serve as a batch_job ------------------------------------------------------------------- */
BATCH__PRIVATE void batch__qserve_summary(batch__qserve* s, batch_job_summary* out) {
    *out = s->sum;
    out->total = s->sum.completed + s->sum.failed + s->sum.cancelled;
    out->wall_ns = s->end_ns - s->launch_ns;
    bool cancelled = atomic_load_explicit(&s->cancel, memory_order_relaxed) != 0;
    if (s->result != BATCH_OK) { out->status = BATCH_JOB_FAILED; out->result = s->result; }
    else if (cancelled) { out->status = BATCH_JOB_CANCELLED; out->result = BATCH_ERR_CANCELLED; }
    else if (s->sum.failed) { out->status = BATCH_JOB_PARTIAL_FAILURE; out->result = BATCH_PARTIAL; }
    else { out->status = BATCH_JOB_COMPLETED; out->result = BATCH_OK; }
}

BATCH__PRIVATE batch_result batch__qserve_wait(batch_job* pub, batch_job_summary* out) {
    batch__qserve* s = (batch__qserve*)pub;
    if (batch__job_self_call(pub)) return BATCH_ERR_BUSY;
    batch__mutex_lock(&s->m);
    while (!s->done) batch__cond_wait_slice(&s->cv, &s->m, batch_now_ns() + BATCH__WAIT_SLICE_NS);
    bool join = !s->joined;
    s->joined = true;
    batch__mutex_unlock(&s->m);
    if (join) batch__thread_join(s->thr);
    batch_job_summary sum;
    batch__qserve_summary(s, &sum);
    if (out) *out = sum;
    return sum.result;
}

BATCH__PRIVATE batch_result batch__qserve_cancel(batch_job* pub) {
    batch__qserve* s = (batch__qserve*)pub;
    atomic_store_explicit(&s->cancel, 1, memory_order_relaxed);
    batch__mutex_lock(&s->m);   /* the flag is seen at the serve thread's next look, which this wakes */
    batch__cond_broadcast(&s->cv);
    batch__mutex_unlock(&s->m);
    return BATCH_OK;
}

BATCH__PRIVATE void batch__qserve_free(batch_job* pub) {
    batch__qserve* s = (batch__qserve*)pub;
    void* ctx = s->alloc_ctx;
    for (size_t i = 0; i < s->nruns; i++) { BATCH_FREE(s->runs[i].name, ctx); BATCH_FREE(s->runs[i].msg, ctx); }
    BATCH_FREE(s->runs, ctx);
    BATCH_FREE(s->slots, ctx);
    batch__cond_destroy(&s->cv);
    batch__mutex_destroy(&s->m);
    BATCH_FREE(s, ctx);
}

BATCH__PRIVATE void batch__qserve_counts(batch_job* pub, batch_progress* out, uint64_t* busy) {
    batch__qserve* s = (batch__qserve*)pub;
    batch__mutex_lock(&s->m);
    out->total = s->d.max_jobs;   /* 0 (unknown) unless a limit says how many */
    out->succeeded = s->sum.completed;
    out->failed = s->sum.failed;
    out->cancelled = s->sum.cancelled;
    out->retried = s->sum.retries;
    out->running = (uint64_t)s->running;
    out->processed = out->succeeded + out->failed + out->cancelled;
    *busy = s->sum.busy_ns;
    batch__mutex_unlock(&s->m);
}

/* Reports: the serve shows as a graph of the runs (a task per run, named after its job). */
BATCH__PRIVATE batch_result batch__qserve_facts(batch_job* pub, batch__job_facts* out) {
    batch__qserve* s = (batch__qserve*)pub;
    if (!s->done || !s->joined) return BATCH_ERR_BUSY;
    memset(out, 0, sizeof *out);
    out->kind = BATCH__KIND_GRAPH;
    out->name = s->q->path;
    batch__qserve_summary(s, &out->summary);
    out->launch_ns = s->launch_ns;
    out->nrecords = s->nruns;
    out->keeps_records = s->d.keep_records != 0;
    out->timeline = s->nruns > 0;
    out->workers = s->inline_run ? 1 : batch_pool_workers(s->pool);
    return BATCH_OK;
}
BATCH__PRIVATE void batch__qserve_record(batch_job* pub, size_t i, batch__record* out) {
    const batch__qrun* r = &((batch__qserve*)pub)->runs[i];
    memset(out, 0, sizeof *out);
    out->index = (size_t)(r->id - 1);
    out->name = r->name;
    out->status = r->status;
    out->status_string = batch_task_status_string((batch_task_status)r->status);
    out->attempts = r->attempts;
    out->retries = r->attempts ? r->attempts - 1 : 0;
    out->error = r->error;
    out->message = r->msg;
    out->worker = r->worker;
    out->start_ns = r->start_ns;
    out->end_ns = r->end_ns;
    out->attempt = r->attempts;
}
BATCH__PRIVATE const void* batch__qserve_earlier(batch_job* pub, const void* cursor, batch__record* out) {
    (void)pub; (void)cursor; (void)out;
    return NULL;   /* each run is a record of its own already */
}
static const batch__job_ops batch__qserve_ops = { batch__qserve_wait, batch__qserve_cancel, batch__qserve_free,
                                                  batch__qserve_counts, batch__job_self_call,
                                                  NULL /* a run's context has its own message buffer */,
                                                  batch__qserve_facts, batch__qserve_record, batch__qserve_earlier };

BATCH_API batch_result batch_queue_serve(batch_pool* pool, batch_queue* q, const batch_queue_serve_desc* desc,
                                         batch_job** out_job) {
    if (!out_job) return BATCH_ERR_INVALID;
    *out_job = NULL;
    if (!pool || !q || !desc || !desc->fn || desc->concurrency < 0 || desc->poll_ns > ((uint64_t)1 << 62) ||
        !batch__progress_desc_ok(&desc->progress))
        return BATCH_ERR_INVALID;
    if (batch__pool_refuses_jobs(pool)) return BATCH_ERR_SHUTDOWN;
    void* ctx = batch__pool_alloc_ctx(pool);
    batch__qserve* s = (batch__qserve*)BATCH_MALLOC(sizeof *s, ctx);
    if (!s) return BATCH_ERR_NOMEM;
    memset(s, 0, sizeof *s);
    s->alloc_ctx = ctx;
    s->head.ops = &batch__qserve_ops;
    s->pool = pool;
    s->q = q;
    s->d = *desc;
    if (!s->d.poll_ns) s->d.poll_ns = 50000000u;
    int workers = batch_pool_workers(pool);
    s->inline_run = workers == 0;
    s->nslots = s->inline_run ? 1 : desc->concurrency ? desc->concurrency : workers;
    s->launch_ns = batch_now_ns();
    batch__progress_init(&s->head.prog, &desc->progress, workers ? workers : 1, s->launch_ns);
    s->slots = (batch__qslot*)BATCH_MALLOC(sizeof *s->slots * (size_t)s->nslots, ctx);
    bool m_ok = false, cv_ok = false;
    if (!s->slots || !(m_ok = batch__mutex_init(&s->m)) || !(cv_ok = batch__cond_init(&s->cv))) {
        if (cv_ok) batch__cond_destroy(&s->cv);
        if (m_ok) batch__mutex_destroy(&s->m);
        BATCH_FREE(s->slots, ctx);
        BATCH_FREE(s, ctx);
        return BATCH_ERR_NOMEM;
    }
    memset(s->slots, 0, sizeof *s->slots * (size_t)s->nslots);
    for (int i = 0; i < s->nslots; i++) { s->slots[i].s = s; atomic_init(&s->slots[i].stop, 0); }
    atomic_init(&s->cancel, 0);
    if (!batch__thread_create(&s->thr, batch__qserve_main, s)) {
        s->joined = true;
        batch__qserve_free((batch_job*)s);
        return BATCH_ERR_THREAD;
    }
    *out_job = (batch_job*)s;
    return BATCH_OK;
}

#endif /* BATCH__QUEUE_C */
/* ---- end batch_impl/queue.c ---- */
/* ---- begin batch_impl/mpi.c ---- */
/* mpi.c - batched maps across MPI ranks (BATCH_MPI only; see "MAPS ACROSS PROCESSES").

   Every rank runs an executor (map.c's seam: batches whose ranges are pushed to it, on the rank's
   own pool, with the threshold and whole-batch retry rules). Rank 0 also runs the source (the
   map's own input cutting, sizing, ordered delivery, fold, journal and halt, but no items) and
   hands its ranges to the ranks that asked for work, its own executor included. This file only
   moves ranges and outcomes between the two through the seam's functions ("the map's seam for
   mpi.c" in map.c). All MPI calls happen on the calling thread of each rank.

   Messages (on a duplicate of the user's communicator, so they never meet the user's):
     REQ    rank -> 0   int32: room for k more batches (k > 0), or -1: done, nothing follows
     WORK   0 -> rank   u64[3]: batch index, first item, count; count 0: stop (index 1: cancel)
     RESULT rank -> 0   u64[6] index, status (0xff: not run), succeeded, failed, retries,
                        exec_ns; then the batch's accumulator (acc_size bytes)
   Messages from one rank arrive in the order sent (MPI's non-overtaking rule, one receive
   pattern for all tags), so its DONE comes after all its results. */
#ifndef BATCH__MPI_C
#define BATCH__MPI_C
#ifndef BATCH_SINGLE_FILE
#  include "map.c"
#endif
#if defined(BATCH_MPI)

enum { BATCH__TAG_REQ = 7301, BATCH__TAG_WORK, BATCH__TAG_RESULT };
enum { BATCH__RESULT_WORDS = 6, BATCH__HELLO_WORDS = 10, BATCH__STATS_WORDS = 7 };
enum { BATCH__RANK_WORKING, BATCH__RANK_STOPPED, BATCH__RANK_DONE };   /* as rank 0 sees each rank */
#define BATCH__UNRUN 0xffu
_Static_assert(BATCH__STATS_WORDS <= BATCH__HELLO_WORDS, "batch__mpi.rows holds the hellos, then the stats");
/* A loop with nothing to do naps, 50 us at first, twice as long each time nothing happened, up
   to 1 ms, then looks again. It does not ask to be woken per finished batch: a wake-up takes a
   core a worker needs. A rank asks for work before it runs out (its room is max_in_flight
   batches) and adaptive batches aim at 1 ms here (target_batch_ns 0), so the latency of a
   message hides behind the batches queued. */
#define BATCH__MPI_NAP_MIN_NS 50000u
#define BATCH__MPI_NAP_MAX_NS 1000000u

typedef struct batch__mpi {
    MPI_Comm comm;
    int rank, size;
    batch_result err;             /* BATCH_ERR_MPI after the first failed call */
    void* alloc_ctx;
    size_t acc_size;
    unsigned char* buf;           /* one RESULT message, then the final accumulator */
    batch_pool* pool;             /* this rank's pool */
    batch_job* exec;              /* this rank's executor */
    batch_job* src;               /* rank 0: the source */
    batch__range* dropped;        /* ranges the executor took back (k of them at most) */
    int k;                        /* this rank's room: executor slots */
    int total_k, total_threads;   /* every rank's */
    uint64_t* rows;               /* every rank's hello, later its stats */
    /* rank 0 */
    int* want;                    /* batches each rank asked for and did not get yet */
    int* state;                   /* BATCH__RANK_* of each rank */
    int next_rank;                /* the rank whose turn comes first */
    bool exec_stopped;            /* rank 0's executor gets no more ranges */
} batch__mpi;

BATCH__PRIVATE bool batch__mpi_ok(batch__mpi* c, int rc) {
    if (rc != MPI_SUCCESS && c->err == BATCH_OK) c->err = BATCH_ERR_MPI;
    return rc == MPI_SUCCESS && c->err == BATCH_OK;
}

/* Sleeps *nap ns and doubles it up to the cap; activity resets it. */
BATCH__PRIVATE void batch__mpi_nap(bool any, long* nap) {
    if (any) { *nap = BATCH__MPI_NAP_MIN_NS; return; }
    struct timespec ts = { 0, *nap };
    nanosleep(&ts, NULL);
    if (*nap < (long)BATCH__MPI_NAP_MAX_NS) *nap *= 2;
}

/* Between two rounds of a rank's loop: an inline pool (no workers) runs the batches queued on
   it here, as nobody else would; then the nap. */
BATCH__PRIVATE void batch__mpi_pause(batch__mpi* c, bool any, long* nap) {
    if (batch_pool_workers(c->pool) == 0) (void)batch_pool_wait_idle(c->pool);
    batch__mpi_nap(any, nap);
}

/* Sends one finished (or never run) batch to rank 0; on rank 0 the source takes it directly. */
BATCH__PRIVATE void batch__mpi_send_result(batch__mpi* c, const batch__outcome* o) {
    if (c->rank == 0) {
        if (!batch__map_source_return(c->src, o)) c->err = BATCH_ERR_MPI;   /* cannot happen: a protocol error */
        return;
    }
    uint64_t w[BATCH__RESULT_WORDS] = { o->index, o->status == BATCH__NOT_RUN ? BATCH__UNRUN : (uint64_t)o->status,
                                        o->succeeded, o->failed, (uint64_t)o->retries, o->exec_ns };
    memcpy(c->buf, w, sizeof w);
    if (c->acc_size) {
        if (o->acc) memcpy(c->buf + sizeof w, o->acc, c->acc_size);
        else memset(c->buf + sizeof w, 0, c->acc_size);
    }
    batch__mpi_ok(c, MPI_Send(c->buf, (int)(sizeof w + c->acc_size), MPI_BYTE, 0, BATCH__TAG_RESULT, c->comm));
}

/* Completes a non-blocking collective while napping: a blocking one would spin a core in
   Open MPI while the other ranks still finish their batches. */
BATCH__PRIVATE int batch__mpi_wait(MPI_Request* req) {
    long nap = BATCH__MPI_NAP_MIN_NS;
    for (;;) {
        int done = 0;
        int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS || done) return rc;
        batch__mpi_nap(false, &nap);
    }
}
BATCH__PRIVATE int batch__mpi_allgather(const void* in, void* out, int words, MPI_Comm comm) {
    MPI_Request req;
    int rc = MPI_Iallgather(in, words, MPI_UINT64_T, out, words, MPI_UINT64_T, comm, &req);
    return rc == MPI_SUCCESS ? batch__mpi_wait(&req) : rc;
}
BATCH__PRIVATE int batch__mpi_allreduce_int(const int* in, int* out, MPI_Op op, MPI_Comm comm) {
    MPI_Request req;
    int rc = MPI_Iallreduce(in, out, 1, MPI_INT, op, comm, &req);
    return rc == MPI_SUCCESS ? batch__mpi_wait(&req) : rc;
}
BATCH__PRIVATE int batch__mpi_bcast(void* buf, int bytes, MPI_Comm comm) {
    MPI_Request req;
    int rc = MPI_Ibcast(buf, bytes, MPI_BYTE, 0, comm, &req);
    return rc == MPI_SUCCESS ? batch__mpi_wait(&req) : rc;
}

/* Forwards what this rank's executor finished. True when it did anything. */
BATCH__PRIVATE bool batch__mpi_drain(batch__mpi* c) {
    bool any = false;
    batch__outcome o;
    while (c->err == BATCH_OK && batch__map_executor_take(c->exec, &o)) {
        batch__mpi_send_result(c, &o);
        any = true;
    }
    return any;
}

/* No more ranges for this rank's executor. At the end of the input the ranges it has queued
   still run; on a cancel they go back as not run and running items see the stop. */
BATCH__PRIVATE void batch__mpi_stop_exec(batch__mpi* c, bool cancel) {
    size_t n = batch__map_executor_stop(c->exec, cancel, c->dropped, (size_t)c->k);
    for (size_t i = 0; i < n; i++) {
        batch__outcome o = { .index = c->dropped[i].index, .status = BATCH__NOT_RUN };
        batch__mpi_send_result(c, &o);
    }
}

/* ---- rank 0 --------------------------------------------------------------------------------- */
/* A RESULT message from rank src, probed as st: the batch's outcome goes to the source. */
BATCH__PRIVATE void batch__mpi_recv_result(batch__mpi* c, int src, MPI_Status* st) {
    int bytes = 0;
    MPI_Get_count(st, MPI_BYTE, &bytes);
    if (bytes != (int)(BATCH__RESULT_WORDS * sizeof(uint64_t) + c->acc_size)) { c->err = BATCH_ERR_MPI; return; }
    if (!batch__mpi_ok(c, MPI_Recv(c->buf, bytes, MPI_BYTE, src, BATCH__TAG_RESULT, c->comm, MPI_STATUS_IGNORE))) return;
    uint64_t w[BATCH__RESULT_WORDS];
    memcpy(w, c->buf, sizeof w);
    batch__outcome o = { .index = (size_t)w[0], .status = w[1] == BATCH__UNRUN ? BATCH__NOT_RUN : (int)w[1],
                         .succeeded = (size_t)w[2], .failed = (size_t)w[3], .retries = (int)w[4], .exec_ns = w[5],
                         .acc = c->acc_size ? c->buf + sizeof w : NULL };
    if (!batch__map_source_return(c->src, &o)) c->err = BATCH_ERR_MPI;
}

/* Takes the messages the other ranks sent: requests for work, DONE, results. True when any came. */
BATCH__PRIVATE bool batch__mpi_receive(batch__mpi* c) {
    bool any = false;
    while (c->err == BATCH_OK) {
        int flag = 0;
        MPI_Status st;
        if (!batch__mpi_ok(c, MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c->comm, &flag, &st)) || !flag) break;
        any = true;
        int src = st.MPI_SOURCE;
        if (st.MPI_TAG == BATCH__TAG_REQ) {
            int k = 0;
            if (!batch__mpi_ok(c, MPI_Recv(&k, 1, MPI_INT, src, BATCH__TAG_REQ, c->comm, MPI_STATUS_IGNORE))) break;
            if (k < 0) c->state[src] = BATCH__RANK_DONE;
            else if (c->state[src] == BATCH__RANK_WORKING) c->want[src] += k;
        } else if (st.MPI_TAG == BATCH__TAG_RESULT) {
            batch__mpi_recv_result(c, src, &st);
        } else {
            c->err = BATCH_ERR_MPI;   /* nobody sends anything else on this communicator */
        }
    }
    return any;
}

/* Who gets the next range: the ranks that asked (their turn costs a message) in turn, then
   rank 0's executor while it has room; -1: nobody now. */
BATCH__PRIVATE int batch__mpi_pick_rank(batch__mpi* c) {
    for (int k = 0; k < c->size - 1; k++) {
        int r = 1 + (c->next_rank - 1 + k) % (c->size - 1);
        if (c->want[r] > 0 && c->state[r] == BATCH__RANK_WORKING) return r;
    }
    return !c->exec_stopped && batch__map_executor_room(c->exec) > 0 ? 0 : -1;
}

/* Hands out the ranges the source cut, in batch order. True when it did anything. */
BATCH__PRIVATE bool batch__mpi_hand_out(batch__mpi* c) {
    bool any = false;
    batch__range rg;
    int to;
    while (c->err == BATCH_OK && (to = batch__mpi_pick_rank(c)) >= 0 && batch__map_source_take(c->src, &rg)) {
        any = true;
        if (to == 0) {
            if (!batch__map_executor_push(c->exec, &rg)) c->err = BATCH_ERR_MPI;
            continue;
        }
        c->next_rank = to + 1 > c->size - 1 ? 1 : to + 1;
        uint64_t w[3] = { rg.index, rg.first, rg.count };
        if (batch__mpi_ok(c, MPI_Send(w, 3, MPI_UINT64_T, to, BATCH__TAG_WORK, c->comm))) c->want[to]--;
    }
    return any;
}

/* The end of the input (or a stop): once what was cut is handed out, every rank gets one STOP
   (a cancel also drops what was never handed out). True once every rank is done and every
   batch is back. */
BATCH__PRIVATE bool batch__mpi_wind_down(batch__mpi* c) {
    int end = batch__map_source_end(c->src);
    if (end == BATCH__SOURCE_OPEN) {
        if (c->exec_stopped) c->err = BATCH_ERR_MPI;   /* cannot happen: the executor stops only at the end */
        return false;
    }
    bool cancel = end == BATCH__SOURCE_CANCELLED;
    for (int r = 1; r < c->size && c->err == BATCH_OK; r++) {
        if (c->state[r] != BATCH__RANK_WORKING) continue;
        uint64_t w[3] = { cancel ? 1u : 0u, 0, 0 };
        if (batch__mpi_ok(c, MPI_Send(w, 3, MPI_UINT64_T, r, BATCH__TAG_WORK, c->comm))) c->state[r] = BATCH__RANK_STOPPED;
    }
    if (!c->exec_stopped) {
        batch__mpi_stop_exec(c, cancel);
        c->exec_stopped = true;
    }
    for (int r = 1; r < c->size; r++) if (c->state[r] != BATCH__RANK_DONE) return false;
    if (!batch__map_idle(c->exec) || !batch__map_idle(c->src)) return false;
    batch__mpi_drain(c);
    return true;
}

BATCH__PRIVATE void batch__mpi_coordinate(batch__mpi* c) {
    c->want = (int*)BATCH_MALLOC((size_t)c->size * 2 * sizeof(int), c->alloc_ctx);
    if (!c->want) { c->err = BATCH_ERR_NOMEM; return; }
    c->state = c->want + c->size;
    for (int r = 0; r < c->size; r++) { c->want[r] = 0; c->state[r] = r == 0 ? BATCH__RANK_DONE : BATCH__RANK_WORKING; }
    c->next_rank = 1;
    long nap = BATCH__MPI_NAP_MIN_NS;
    while (c->err == BATCH_OK) {
        bool any = batch__mpi_receive(c);
        if (batch__mpi_drain(c)) any = true;   /* rank 0's own batches */
        if (batch__mpi_hand_out(c)) any = true;
        if (batch__mpi_wind_down(c)) break;
        batch__mpi_pause(c, any, &nap);
    }
    BATCH_FREE(c->want, c->alloc_ctx);
    c->want = c->state = NULL;
}

/* ---- every other rank ------------------------------------------------------------------------ */
BATCH__PRIVATE void batch__mpi_work(batch__mpi* c) {
    int asked = 0;
    long nap = BATCH__MPI_NAP_MIN_NS;
    bool stopped = false;
    while (c->err == BATCH_OK) {
        bool any = batch__mpi_drain(c);
        if (!stopped) {
            int room = batch__map_executor_room(c->exec) - asked;
            if (room > 0) {
                if (!batch__mpi_ok(c, MPI_Send(&room, 1, MPI_INT, 0, BATCH__TAG_REQ, c->comm))) break;
                asked += room;
                any = true;
            }
        }
        for (;;) {
            int flag = 0;
            if (!batch__mpi_ok(c, MPI_Iprobe(0, BATCH__TAG_WORK, c->comm, &flag, MPI_STATUS_IGNORE)) || !flag) break;
            uint64_t w[3];
            if (!batch__mpi_ok(c, MPI_Recv(w, 3, MPI_UINT64_T, 0, BATCH__TAG_WORK, c->comm, MPI_STATUS_IGNORE))) break;
            any = true;
            if (w[2] == 0) {   /* STOP: nothing more comes; a cancel also takes back what did not start */
                stopped = true;
                batch__mpi_stop_exec(c, w[0] != 0);
            } else {
                asked--;
                batch__range rg = { (size_t)w[0], (size_t)w[1], (size_t)w[2] };
                if (!batch__map_executor_push(c->exec, &rg)) c->err = BATCH_ERR_MPI;
            }
        }
        if (stopped && batch__map_idle(c->exec)) {
            batch__mpi_drain(c);
            int done = -1;
            batch__mpi_ok(c, MPI_Send(&done, 1, MPI_INT, 0, BATCH__TAG_REQ, c->comm));
            break;
        }
        batch__mpi_pause(c, any, &nap);
    }
}

/* ---- the call -------------------------------------------------------------------------------- */
/* Every rank checks its own desc, then all agree on the map's shape (or all refuse); fills
   c->k, c->total_k, c->total_threads and allocates c->rows. */
BATCH__PRIVATE batch_result batch__mpi_agree(batch__mpi* c, batch_pool* pool, const batch_map_desc* desc) {
    batch_result r = (!pool || !desc) ? BATCH_ERR_INVALID : batch__map_check(desc);
    if (r == BATCH_OK && (desc->pull_fn || desc->on_batch || desc->iterate)) r = BATCH_ERR_INVALID;
    int threads = pool ? (batch_pool_workers(pool) ? batch_pool_workers(pool) : 1) : 1;
    c->k = (r == BATCH_OK && desc->max_in_flight) ? desc->max_in_flight : 4 * threads;
    uint64_t hello[BATCH__HELLO_WORDS] = { (uint64_t)(r == BATCH_OK) };
    if (r == BATCH_OK) {
        uint64_t h[BATCH__HELLO_WORDS] = { 1, desc->count, desc->result_size, desc->acc_size, (uint64_t)(desc->ordered != 0),
                                           desc->batch_size, (uint64_t)desc->complexity, (uint64_t)desc->max_retries,
                                           (uint64_t)c->k, (uint64_t)threads };
        memcpy(hello, h, sizeof h);
    }
    c->rows = (uint64_t*)BATCH_MALLOC((size_t)c->size * BATCH__HELLO_WORDS * sizeof(uint64_t), c->alloc_ctx);
    int agree = c->rows != NULL;   /* out of memory anywhere: everybody stops */
    int agreed = 0;
    if (batch__mpi_allreduce_int(&agree, &agreed, MPI_LAND, c->comm) != MPI_SUCCESS) return BATCH_ERR_MPI;
    if (!agreed) return BATCH_ERR_NOMEM;
    if (batch__mpi_allgather(hello, c->rows, BATCH__HELLO_WORDS, c->comm) != MPI_SUCCESS) return BATCH_ERR_MPI;
    const uint64_t* all = c->rows;
    for (int i = 0; i < c->size; i++) {
        const uint64_t* x = all + (size_t)i * BATCH__HELLO_WORDS;
        if (!x[0]) { r = r == BATCH_OK ? BATCH_ERR_INVALID : r; continue; }
        for (int f = 1; f <= 7; f++) if (x[f] != all[f] && all[0]) r = r == BATCH_OK ? BATCH_ERR_INVALID : r;
        c->total_k += (int)x[8];
        c->total_threads += (int)x[9];
    }
    return r;
}

/* Launches this rank's executor and, on rank 0, the source: everybody starts, or nobody. The
   first failure's code travels from rank 0 when it is the source's (a journal that does not
   fit), else it is NOMEM. */
BATCH__PRIVATE batch_result batch__mpi_start(batch__mpi* c, batch_pool* pool, const batch_map_desc* desc) {
    batch_result r = BATCH_OK;
    c->pool = pool;
    c->acc_size = desc->acc_size;
    c->buf = (unsigned char*)BATCH_MALLOC(BATCH__RESULT_WORDS * sizeof(uint64_t) + 2 * c->acc_size, c->alloc_ctx);
    c->dropped = (batch__range*)BATCH_MALLOC((size_t)c->k * sizeof(batch__range), c->alloc_ctx);
    bool ok = c->buf && c->dropped && batch__map_executor_launch(pool, desc, c->k, &c->exec) == BATCH_OK;
    if (ok && c->rank == 0) {
        batch_map_desc sd = *desc;
        sd.max_in_flight = c->total_k;
        if (!sd.target_batch_ns) sd.target_batch_ns = 1000000u;   /* see BATCH__MPI_NAP_MIN_NS */
        r = batch__map_source_launch(pool, &sd, c->total_threads, &c->src);   /* the journal may refuse */
        ok = r == BATCH_OK;
    }
    int code = ok ? 0 : (c->rank == 0 && r != BATCH_OK ? (int)r : (int)BATCH_ERR_NOMEM), worst = 0;
    if (batch__mpi_allreduce_int(&code, &worst, MPI_MIN, c->comm) != MPI_SUCCESS) worst = BATCH_ERR_MPI;
    if (worst == 0) return BATCH_OK;
    if (c->exec) { batch__map_executor_stop(c->exec, false, NULL, 0); batch_job_destroy(c->exec); c->exec = NULL; }
    if (c->src) { batch_job_cancel(c->src); batch_job_destroy(c->src); c->src = NULL; }
    return (batch_result)worst;
}

/* Waits for this rank's share and rank 0's summary, then gives every rank the whole: the
   summary with everybody's busy time and retries, the accumulator, each rank's stats. */
BATCH__PRIVATE batch_result batch__mpi_gather(batch__mpi* c, batch_map_summary* summary, void* acc_out, batch_mpi_rank_stats* per_rank,
                                              bool* filled) {
    batch_map_summary es, cs;
    memset(&es, 0, sizeof es);
    memset(&cs, 0, sizeof cs);
    unsigned char* acc = c->buf + BATCH__RESULT_WORDS * sizeof(uint64_t) + c->acc_size;
    batch_result er = batch_map_wait(c->exec, &es, NULL);
    uint64_t mine[BATCH__STATS_WORDS] = { es.batches, es.items, es.succeeded, es.failed, es.retries, es.busy_ns,
                                          (uint64_t)(er == BATCH_ERR_NOMEM) };
    batch_result r = c->src ? batch_map_wait(c->src, &cs, acc) : BATCH_OK;
    if (c->err != BATCH_OK) return c->err;
    if (batch__mpi_allgather(mine, c->rows, BATCH__STATS_WORDS, c->comm) != MPI_SUCCESS ||   /* rows: reused */
        batch__mpi_bcast(&cs, (int)sizeof cs, c->comm) != MPI_SUCCESS ||
        (c->acc_size && batch__mpi_bcast(acc, (int)c->acc_size, c->comm) != MPI_SUCCESS))
        return BATCH_ERR_MPI;
    uint64_t busy = 0, retries = 0;
    bool nomem = false;
    for (int i = 0; i < c->size; i++) {
        const uint64_t* x = c->rows + (size_t)i * BATCH__STATS_WORDS;
        if (per_rank) {
            batch_mpi_rank_stats* p = &per_rank[i];
            p->batches = x[0]; p->items = x[1]; p->succeeded = x[2]; p->failed = x[3]; p->retries = x[4]; p->busy_ns = x[5];
        }
        busy += x[5];
        retries += x[4];
        nomem = nomem || x[6];
    }
    cs.busy_ns = busy;
    cs.retries = retries;
    cs.parallel_efficiency = cs.wall_ns ? (double)busy / ((double)cs.wall_ns * c->total_threads) : 0.0;
    r = nomem && cs.result != BATCH_ERR_IO ? BATCH_ERR_NOMEM : cs.result;
    cs.result = r;
    if (summary) { *summary = cs; *filled = true; }
    if (acc_out && c->acc_size) memcpy(acc_out, acc, c->acc_size);
    return r;
}

BATCH_API batch_result batch_mpi_map(MPI_Comm comm, batch_pool* pool, const batch_map_desc* desc,
                                     batch_map_summary* summary, void* acc_out, batch_mpi_rank_stats* per_rank) {
    if (comm == MPI_COMM_NULL) return BATCH_ERR_INVALID;
    batch__mpi c;
    memset(&c, 0, sizeof c);
    if (MPI_Comm_dup(comm, &c.comm) != MPI_SUCCESS) return BATCH_ERR_MPI;
    MPI_Comm_set_errhandler(c.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c.comm, &c.rank);
    MPI_Comm_size(c.comm, &c.size);
    c.alloc_ctx = batch__pool_alloc_ctx(pool);
    bool filled = false;
    batch_result r = batch__mpi_agree(&c, pool, desc);
    if (r == BATCH_OK) r = batch__mpi_start(&c, pool, desc);
    if (r == BATCH_OK) {
        if (c.rank == 0) batch__mpi_coordinate(&c);
        else batch__mpi_work(&c);
        if (c.err != BATCH_OK) {   /* stop what runs here, then leave: MPI may not be usable */
            batch__map_executor_stop(c.exec, true, c.dropped, (size_t)c.k);
            if (c.src) batch__map_source_abandon(c.src);   /* the batches out will not come back */
        }
        r = batch__mpi_gather(&c, summary, acc_out, per_rank, &filled);
        batch_job_destroy(c.exec);
        if (c.src) batch_job_destroy(c.src);
    }
    if (c.buf) BATCH_FREE(c.buf, c.alloc_ctx);
    if (c.dropped) BATCH_FREE(c.dropped, c.alloc_ctx);
    if (c.rows) BATCH_FREE(c.rows, c.alloc_ctx);
    MPI_Comm_free(&c.comm);
    if (summary && !filled) {   /* refused or broken: a defined summary all the same */
        memset(summary, 0, sizeof *summary);
        summary->status = BATCH_JOB_FAILED;
        summary->result = r;
    }
    return r;
}

#endif /* BATCH_MPI */
#endif /* BATCH__MPI_C */
/* ---- end batch_impl/mpi.c ---- */
#endif /* BATCH_IMPLEMENTATION */

/* LICENSE
   MIT License

   Copyright (c) 2026 the batch.h authors

   Permission is hereby granted, free of charge, to any person obtaining a copy
   of this software and associated documentation files (the "Software"), to deal
   in the Software without restriction, including without limitation the rights
   to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
   copies of the Software, and to permit persons to whom the Software is
   furnished to do so, subject to the following conditions:

   The above copyright notice and this permission notice shall be included in all
   copies or substantial portions of the Software.

   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
   IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
   FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
   AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
   LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
   OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
   SOFTWARE.
*/
