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

/* Under a strict -std=c11 glibc hides POSIX (clock_gettime, sysconf). If this is the first
   include of the implementation file, ask for POSIX; in gnu modes nothing is changed. */
#if defined(BATCH_IMPLEMENTATION) && defined(__STRICT_ANSI__) && !defined(_POSIX_C_SOURCE) && \
    !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#  define _POSIX_C_SOURCE 200809L
#endif

#include <stddef.h>
#include <stdint.h>

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
    X(BATCH_PARTIAL,        1, "finished; failures stayed under the threshold") \
    X(BATCH_ERR_INVALID,   -1, "invalid argument") \
    X(BATCH_ERR_NOMEM,     -2, "out of memory") \
    X(BATCH_ERR_CYCLE,     -3, "task graph has a cycle") \
    X(BATCH_ERR_BUSY,      -4, "object is in use") \
    X(BATCH_ERR_CANCELLED, -5, "cancelled") \
    X(BATCH_ERR_TIMEOUT,   -6, "timed out") \
    X(BATCH_ERR_THRESHOLD, -7, "error threshold exceeded") \
    X(BATCH_ERR_SHUTDOWN,  -8, "pool is shutting down") \
    X(BATCH_ERR_THREAD,    -9, "could not create a thread") \
    X(BATCH_ERR_FAILED,   -10, "job failed")

#define BATCH__RESULT_ENUM(name, value, text) name = value,
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
   outside the pool goes to one FIFO injection queue per priority. Idle workers steal, spin
   briefly, then sleep; no submission is ever left with every worker asleep. */
typedef struct batch_pool batch_pool;

/* workers = BATCH_WORKERS_INLINE: no threads; tasks run on whichever thread waits for them
   (batch_counter_wait, batch_pool_parallel_for, batch_pool_wait_idle, batch_pool_destroy), in
   priority then FIFO order. Deterministic: for tests, debugging and single-core targets. */
#define BATCH_WORKERS_INLINE (-1)

typedef struct batch_pool_desc {
    int workers;        /* 0: one per CPU (batch_cpu_count()); BATCH_WORKERS_INLINE: no threads;
                           otherwise 1..BATCH_MAX_WORKERS */
    int deque_capacity; /* initial slots of each worker's deque (grows on demand); 0: 256;
                           a power of two in [16, 2^24] */
    int spin_rounds;    /* work searches an idle worker makes before it sleeps; 0: 16; <= 4096 */
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

/* batch_pool_shutdown, then frees the pool. NULL does nothing. From a task of this pool it does
   nothing and returns BATCH_ERR_BUSY. No other thread may use the pool once this is called. */
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
typedef struct batch_counter {
    uint64_t state_;        /* count << 1 | waiter flag; accessed atomically */
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
#if defined(__STDC_NO_ATOMICS__)
#  error "batch.h needs C11 <stdatomic.h>"
#endif

/* Threads backend: C11 <threads.h>, pthreads, or none. */
#if defined(BATCH_NO_THREADS)
#  undef BATCH_USE_PTHREADS
#elif !defined(BATCH_USE_PTHREADS) && (defined(__APPLE__) || defined(__STDC_NO_THREADS__))
#  define BATCH_USE_PTHREADS
#endif

#if (defined(BATCH_MALLOC) + defined(BATCH_REALLOC) + defined(BATCH_FREE)) % 3
#  error "define all of BATCH_MALLOC, BATCH_REALLOC and BATCH_FREE, or none"
#endif

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <limits.h>
#include <time.h>
#if defined(BATCH_USE_PTHREADS)
#  include <pthread.h>
#  include <sched.h>
#elif !defined(BATCH_NO_THREADS)
#  include <threads.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#  include <unistd.h>
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

/* stb_ds: BATCH_STB_DS_PATH if defined, else "stb_ds.h" if it is on the include path, else
   Debian's <stb/stb_ds.h> (libstb-dev). Its implementation has no once-guard, so a user who
   compiles it elsewhere opts out with BATCH_NO_STB_DS_IMPLEMENTATION. */
#if defined(INCLUDE_STB_DS_H) && !defined(BATCH_NO_STB_DS_IMPLEMENTATION)
#  error "stb_ds.h was included before the batch.h implementation: define BATCH_NO_STB_DS_IMPLEMENTATION and compile STB_DS_IMPLEMENTATION yourself"
#endif
#ifndef BATCH_NO_STB_DS_IMPLEMENTATION
#  define STBDS_REALLOC(c, p, sz) BATCH_REALLOC((p), (sz), (c)) /* c is always NULL in stb_ds */
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
#    pragma GCC diagnostic ignored "-Wmissing-prototypes"
#    pragma GCC diagnostic ignored "-Wunused-function"
#  endif
#  if defined(BATCH_STB_DS_PATH)
#    include BATCH_STB_DS_PATH
#  elif defined(__has_include)
#    if __has_include("stb_ds.h")
#      include "stb_ds.h"
#    else
#      include <stb/stb_ds.h>
#    endif
#  else
#    include <stb/stb_ds.h>
#  endif
#  if defined(__GNUC__)
#    pragma GCC diagnostic pop
#  endif
#endif

/* Internal linkage for everything that is not API. `unused` keeps each part compilable alone. */
#if defined(__GNUC__) || defined(__clang__)
#  define BATCH__PRIVATE static __attribute__((unused))
#  define BATCH__LIKELY(x)   __builtin_expect(!!(x), 1)
#  define BATCH__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#  define BATCH__PRIVATE static
#  define BATCH__LIKELY(x)   (x)
#  define BATCH__UNLIKELY(x) (x)
#endif

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

#define BATCH__CACHE_LINE 64
#define BATCH__ALIGNED _Alignas(BATCH__CACHE_LINE)

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "batch.h needs lock-free 64-bit atomics");
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2, "batch.h needs lock-free pointer atomics");
_Static_assert(sizeof(_Atomic uint64_t) == sizeof(uint64_t) &&
               _Alignof(_Atomic uint64_t) == _Alignof(uint64_t),
               "batch_counter stores an _Atomic uint64_t in a uint64_t field");

/* The public batch_counter keeps its atomic state in a plain uint64_t (the API must compile as
   C++); the static assert above makes the reinterpretation sound on every supported target. */
#define BATCH__ATOMIC_U64(p) ((_Atomic uint64_t*)(void*)(p))

#endif /* BATCH__INTERNAL_H */
/* ---- end batch_impl/internal.h ---- */
/* ---- begin batch_impl/platform.c ---- */
/* platform.c - threads, mutexes, condition variables, monotonic clock, CPU count, result strings.
   Three backends behind batch__-prefixed names: C11 <threads.h> (default), pthreads
   (BATCH_USE_PTHREADS) and none (BATCH_NO_THREADS: locks are no-ops, no thread is ever made). */
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

/* ---- clock ------------------------------------------------------------------------------ */
#if !defined(CLOCK_MONOTONIC)
#  error "batch.h: clock_gettime(CLOCK_MONOTONIC) is not visible. Define BATCH_IMPLEMENTATION before the first #include of this file, or compile with -D_POSIX_C_SOURCE=200809L (or -std=gnu11)"
#endif

BATCH_API uint64_t batch_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

BATCH_API int batch_cpu_count(void) {
#if defined(_SC_NPROCESSORS_ONLN)
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
#endif
}

/* Timed waits are cut into slices of at most this much wall time; between slices the monotonic
   clock decides. A wall-clock step can then neither hang a wait nor end it early. */
#define BATCH__WAIT_SLICE_NS 100000000u

/* Test hook: a build can define BATCH__FAIL_THREAD_CREATE() to make thread creation fail. */
#ifndef BATCH__FAIL_THREAD_CREATE
#  define BATCH__FAIL_THREAD_CREATE() 0
#endif

typedef int (*batch__thread_fn)(void* arg);

#if defined(BATCH_NO_THREADS)
/* ---- no threads: every lock is a no-op ------------------------------------------------- */
typedef struct batch__mutex { int unused; } batch__mutex;
typedef struct batch__cond { int unused; } batch__cond;
typedef struct batch__thread { int unused; } batch__thread;
BATCH__PRIVATE bool batch__mutex_init(batch__mutex* m) { (void)m; return true; }
BATCH__PRIVATE void batch__mutex_destroy(batch__mutex* m) { (void)m; }
BATCH__PRIVATE void batch__mutex_lock(batch__mutex* m) { (void)m; }
BATCH__PRIVATE void batch__mutex_unlock(batch__mutex* m) { (void)m; }
BATCH__PRIVATE bool batch__cond_init(batch__cond* c) { (void)c; return true; }
BATCH__PRIVATE void batch__cond_destroy(batch__cond* c) { (void)c; }
BATCH__PRIVATE void batch__cond_signal(batch__cond* c) { (void)c; }
BATCH__PRIVATE void batch__cond_broadcast(batch__cond* c) { (void)c; }
BATCH__PRIVATE void batch__yield(void) {}
BATCH__PRIVATE bool batch__thread_create(batch__thread* t, batch__thread_fn fn, void* arg) {
    (void)t; (void)fn; (void)arg; return false;
}
BATCH__PRIVATE void batch__thread_join(batch__thread t) { (void)t; }
/* Nothing else can change the state we wait for, so sleeping is only useful for timed waits. */
BATCH__PRIVATE void batch__cond_wait_slice(batch__cond* c, batch__mutex* m, uint64_t deadline) {
    (void)c; (void)m;
    uint64_t now = batch_now_ns();
    if (deadline != UINT64_MAX && deadline > now) {
        uint64_t d = deadline - now;
        if (d > BATCH__WAIT_SLICE_NS) d = BATCH__WAIT_SLICE_NS;
        struct timespec ts = { (time_t)(d / 1000000000u), (long)(d % 1000000000u) };
        nanosleep(&ts, NULL);
    }
}
#define BATCH__THREAD_LOCAL _Thread_local

#elif defined(BATCH_USE_PTHREADS)
/* ---- pthreads ------------------------------------------------------------------------------ */
typedef pthread_mutex_t batch__mutex;
typedef pthread_cond_t batch__cond;
typedef pthread_t batch__thread;
BATCH__PRIVATE bool batch__mutex_init(batch__mutex* m) { return pthread_mutex_init(m, NULL) == 0; }
BATCH__PRIVATE void batch__mutex_destroy(batch__mutex* m) { pthread_mutex_destroy(m); }
BATCH__PRIVATE void batch__mutex_lock(batch__mutex* m) { pthread_mutex_lock(m); }
BATCH__PRIVATE void batch__mutex_unlock(batch__mutex* m) { pthread_mutex_unlock(m); }
BATCH__PRIVATE bool batch__cond_init(batch__cond* c) { return pthread_cond_init(c, NULL) == 0; }
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
#define BATCH__THREAD_LOCAL _Thread_local

#else
/* ---- C11 <threads.h> ---------------------------------------------------------------------- */
typedef mtx_t batch__mutex;
typedef cnd_t batch__cond;
typedef thrd_t batch__thread;
BATCH__PRIVATE bool batch__mutex_init(batch__mutex* m) { return mtx_init(m, mtx_plain) == thrd_success; }
BATCH__PRIVATE void batch__mutex_destroy(batch__mutex* m) { mtx_destroy(m); }
BATCH__PRIVATE void batch__mutex_lock(batch__mutex* m) { mtx_lock(m); }
BATCH__PRIVATE void batch__mutex_unlock(batch__mutex* m) { mtx_unlock(m); }
BATCH__PRIVATE bool batch__cond_init(batch__cond* c) { return cnd_init(c) == thrd_success; }
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
#define BATCH__THREAD_LOCAL _Thread_local
#endif

#if !defined(BATCH_NO_THREADS)
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
    void* alloc_ctx;
} batch__deque;

typedef enum { BATCH__STEAL_EMPTY, BATCH__STEAL_LOST, BATCH__STEAL_OK } batch__steal_result;

BATCH__PRIVATE batch__ring* batch__ring_new(int64_t cap, void* alloc_ctx) {
    batch__ring* r = (batch__ring*)BATCH_MALLOC(sizeof(batch__ring) + (size_t)cap * sizeof(_Atomic(void*)), alloc_ctx);
    if (!r) return NULL;
    r->mask = cap - 1;
    r->retired = NULL;
    return r;
}

/* capacity: a power of two >= 2. Returns false when out of memory. */
BATCH__PRIVATE bool batch__deque_init(batch__deque* d, int64_t capacity, void* alloc_ctx) {
    batch__ring* r = batch__ring_new(capacity, alloc_ctx);
    if (!r) return false;
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    atomic_init(&d->ring, r);
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
    /* acquire: pairs with a thief's successful CAS on top, so the slot it read is free to reuse */
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    batch__ring* r = atomic_load_explicit(&d->ring, memory_order_relaxed);  /* own variable */
    if (b - t > r->mask) {
        r = batch__deque_grow(d, r, t, b);
        if (!r) return false;
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
   cache line (single writer); submissions from other threads are counted under the injection
   lock. The pool is idle when sum(executed), read first, equals sum(submitted), read after:
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
#define BATCH__INJECT_GRAB_MAX 32       /* most tasks a worker moves from injection to its deque */
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
    struct batch__task* next;        /* queue link, free-list link */
    struct batch__task* next_chunk;  /* links chunks on the spare list */
    uint64_t due;                    /* delayed tasks: monotonic ns */
    uint8_t level;
} batch__task;
typedef union batch__task_slot { batch__task t; BATCH__ALIGNED char pad[BATCH__CACHE_LINE]; } batch__task_slot;
_Static_assert(sizeof(batch__task_slot) == BATCH__CACHE_LINE, "a pool task is one cache line");

typedef struct batch__slab { struct batch__slab* next; void* raw; } batch__slab;

typedef struct batch__worker {
    batch__deque dq;
    BATCH__ALIGNED batch_pool* pool;
    int index;
    uint64_t rng;
    batch__task* free_head;
    int free_count;
    /* single writer (this worker), read by stats and quiescence checks */
    _Atomic uint64_t submitted, executed, steals, sleeps;
    batch__thread thread;
} batch__worker;

struct batch_pool {
    void* alloc_ctx;
    void* raw_self;                      /* what BATCH_MALLOC returned (the pool is over-aligned) */
    void* raw_workers;
    batch__worker* workers;
    int nworkers;
    int spin_rounds;
    bool inline_mode;

    /* injection queues, and the free-task cache of threads that are not workers */
    BATCH__ALIGNED batch__mutex inj_lock;
    batch__task* inj_head[BATCH__LEVELS];
    batch__task* inj_tail[BATCH__LEVELS];
    int64_t inj_len[BATCH__LEVELS];
    batch__task* ext_free;
    int ext_free_count;
    batch__task* inline_stack;           /* inline pools: NORMAL tasks submitted by tasks (LIFO) */
    _Atomic uint64_t ext_submitted;      /* written under inj_lock */
    _Atomic uint64_t ext_executed;       /* tasks run by inline runners */
    BATCH__ALIGNED _Atomic unsigned inj_mask;  /* bit l: level l non-empty; written under inj_lock */

    /* spare free-task chunks and the slabs they come from */
    BATCH__ALIGNED batch__mutex spare_lock;
    batch__task* spare;
    batch__slab* slabs;

    /* eventcount: waiters in the low bits, epoch above */
    BATCH__ALIGNED _Atomic uint64_t ec_state;
    batch__mutex ec_lock;
    batch__cond ec_cond;

    /* delayed tasks: a binary min-heap on due */
    BATCH__ALIGNED batch__mutex delay_lock;
    batch__task** heap;
    size_t heap_len, heap_cap;
    _Atomic uint64_t delay_next;         /* earliest due, UINT64_MAX when empty */

    /* waiting threads and the life cycle */
    BATCH__ALIGNED batch__mutex done_lock;
    batch__cond done_cond;
    batch__mutex life_lock;
    _Atomic int shutdown;                /* non-workers may no longer submit; delays are ignored */
    _Atomic int stop;                    /* workers exit */
    _Atomic int ext_active;              /* non-workers inside batch_pool_submit */
    _Atomic int idle_waiters;            /* threads waiting for quiescence */
    bool joined;
};

static BATCH__THREAD_LOCAL batch__worker* batch__tls_worker;   /* the worker this thread is */
static BATCH__THREAD_LOCAL batch_pool* batch__tls_inline;      /* inline pool this thread runs */

BATCH__PRIVATE batch__worker* batch__self(const batch_pool* p) {
    batch__worker* w = batch__tls_worker;
    return (w && w->pool == p) ? w : NULL;
}

/* Owner-only increment of a counter that others read. */
BATCH__PRIVATE void batch__bump(_Atomic uint64_t* c) {
    /* release: quiescence checks acquire these counts (see the file comment) */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_release);
}

/* ---- free tasks ------------------------------------------------------------------------ */

/* Takes a chunk of BATCH__MAG tasks from the spare list, or makes a slab of them. */
BATCH__PRIVATE batch__task* batch__refill(batch_pool* p) {
    batch__mutex_lock(&p->spare_lock);
    batch__task* c = p->spare;
    if (c) {
        p->spare = c->next_chunk;
    } else {
        size_t sz = sizeof(batch__slab) + BATCH__CACHE_LINE + BATCH__MAG * sizeof(batch__task_slot);
        void* raw = BATCH_MALLOC(sz, p->alloc_ctx);
        if (raw) {
            batch__slab* s = (batch__slab*)raw;
            s->raw = raw;
            s->next = p->slabs;
            p->slabs = s;
            batch__task_slot* slots = (batch__task_slot*)batch__align_up(s + 1);
            for (int i = 0; i < BATCH__MAG; i++)
                slots[i].t.next = (i + 1 < BATCH__MAG) ? &slots[i + 1].t : NULL;
            c = &slots[0].t;
        }
    }
    batch__mutex_unlock(&p->spare_lock);
    return c;
}

/* w == NULL: the non-worker cache, which the caller must guard with inj_lock. */
BATCH__PRIVATE batch__task* batch__task_alloc(batch_pool* p, batch__worker* w) {
    batch__task** head = w ? &w->free_head : &p->ext_free;
    int* count = w ? &w->free_count : &p->ext_free_count;
    if (!*head) {
        *head = batch__refill(p);
        if (!*head) return NULL;
        *count = BATCH__MAG;
    }
    batch__task* t = *head;
    *head = t->next;
    (*count)--;
    return t;
}

BATCH__PRIVATE void batch__task_free(batch_pool* p, batch__worker* w, batch__task* t) {
    batch__task** head = w ? &w->free_head : &p->ext_free;
    int* count = w ? &w->free_count : &p->ext_free_count;
    t->next = *head;
    *head = t;
    if (++*count > 2 * BATCH__MAG) {
        /* give a chunk back so that a producer/consumer pair does not grow memory forever */
        batch__task* chunk = *head;
        batch__task* last = chunk;
        for (int i = 1; i < BATCH__MAG; i++) last = last->next;
        *head = last->next;
        last->next = NULL;
        *count -= BATCH__MAG;
        batch__mutex_lock(&p->spare_lock);
        chunk->next_chunk = p->spare;
        p->spare = chunk;
        batch__mutex_unlock(&p->spare_lock);
    }
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

BATCH__PRIVATE void batch__ec_notify(batch_pool* p, bool all) {
    BATCH__FENCE_SEQ_CST();   /* publish the work before reading waiters */
    uint64_t s = atomic_load_explicit(&p->ec_state, memory_order_relaxed);
    if ((s & BATCH__EC_WAITER_MASK) == 0) return;
    batch__mutex_lock(&p->ec_lock);
    /* relaxed: ordered by ec_lock, which every sleeper holds while it compares epochs */
    atomic_fetch_add_explicit(&p->ec_state, BATCH__EC_EPOCH_ONE, memory_order_relaxed);
    if (all) batch__cond_broadcast(&p->ec_cond);
    else batch__cond_signal(&p->ec_cond);
    batch__mutex_unlock(&p->ec_lock);
}

/* ---- injection queues -------------------------------------------------------------------- */
/* inj_lock held. */
BATCH__PRIVATE void batch__inj_append(batch_pool* p, batch__task* t) {
    int l = t->level;
    t->next = NULL;
    if (p->inj_tail[l]) p->inj_tail[l]->next = t; else p->inj_head[l] = t;
    p->inj_tail[l] = t;
    if (p->inj_len[l]++ == 0)
        /* relaxed: a hint read without the lock; the lock orders the queue itself */
        atomic_fetch_or_explicit(&p->inj_mask, 1u << l, memory_order_relaxed);
}

/* inj_lock held. Pops the oldest task of the highest non-empty level in `levels`. */
BATCH__PRIVATE batch__task* batch__inj_pop(batch_pool* p, unsigned levels) {
    for (int l = 0; l < BATCH__LEVELS; l++) {
        if (!(levels & (1u << l)) || !p->inj_head[l]) continue;
        batch__task* t = p->inj_head[l];
        p->inj_head[l] = t->next;
        if (!p->inj_head[l]) p->inj_tail[l] = NULL;
        if (--p->inj_len[l] == 0)
            atomic_fetch_and_explicit(&p->inj_mask, ~(1u << l), memory_order_relaxed);
        return t;
    }
    return NULL;
}

/* A worker takes the oldest task of the highest level; from NORMAL and below it also moves a
   fair share of that level into its own deque, where other workers can steal it. They are
   pushed newest first, so that the owner, popping LIFO, still runs them oldest first. */
BATCH__PRIVATE batch__task* batch__inj_take(batch_pool* p, batch__worker* w, unsigned levels) {
    batch__task* grab[BATCH__INJECT_GRAB_MAX];
    int moved = 0;
    batch__mutex_lock(&p->inj_lock);
    batch__task* t = batch__inj_pop(p, levels);
    if (t && t->level >= BATCH__LEVEL_NORMAL) {
        int l = t->level;
        int64_t n = p->inj_len[l] / p->nworkers;
        if (n > BATCH__INJECT_GRAB_MAX) n = BATCH__INJECT_GRAB_MAX;
        for (int i = 0; i < n; i++) grab[i] = batch__inj_pop(p, 1u << l);
        int i = (int)n - 1;
        for (; i >= 0; i--)
            if (!batch__deque_push(&w->dq, grab[i])) break;
        moved = (int)n - 1 - i;
        /* a deque that cannot grow: the rest goes back to the front, in order */
        for (; i >= 0; i--) {
            batch__task* x = grab[i];
            x->next = p->inj_head[l];
            p->inj_head[l] = x;
            if (!p->inj_tail[l]) p->inj_tail[l] = x;
            if (p->inj_len[l]++ == 0) atomic_fetch_or_explicit(&p->inj_mask, 1u << l, memory_order_relaxed);
        }
    }
    batch__mutex_unlock(&p->inj_lock);
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
    batch__mutex_lock(&p->inj_lock);
    while (list) { batch__task* t = list; list = t->next; batch__inj_append(p, t); }
    batch__mutex_unlock(&p->inj_lock);
    batch__ec_notify(p, n > 1);
    /* an inline runner or a quiescence waiter may sleep on done_cond */
    batch__mutex_lock(&p->done_lock);
    batch__cond_broadcast(&p->done_cond);
    batch__mutex_unlock(&p->done_lock);
    return n;
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
BATCH__PRIVATE void batch__counter_sub1(batch_counter* c) {
    batch_pool* p = c->pool_;
    /* seq_cst: pairs with the waiter's flag RMW and the eventcount fence (see batch__ec_*) */
    uint64_t old = atomic_fetch_sub_explicit(BATCH__ATOMIC_U64(&c->state_), BATCH__CNT_ONE, memory_order_seq_cst);
    if (old / BATCH__CNT_ONE == 1 && (old & (BATCH__CNT_ONE - 1)))
        batch__counter_wake(p, old);
}

/* ---- running tasks ----------------------------------------------------------------------- */
BATCH__PRIVATE void batch__execute(batch_pool* p, batch__worker* w, batch__task* t) {
    batch_work_fn fn = t->fn;
    void* user = t->user;
    batch_counter* c = t->counter;
    if (w) batch__task_free(p, w, t);   /* hot in cache for the tasks fn submits */
    fn(p, user);
    if (c) batch__counter_sub1(c);
    if (w) batch__bump(&w->executed);
    else atomic_fetch_add_explicit(&p->ext_executed, 1, memory_order_release);
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
    if ((mask & BATCH__HIGH_LEVELS_MASK) && (t = batch__inj_take(p, w, BATCH__HIGH_LEVELS_MASK))) return t;
    if ((t = (batch__task*)batch__deque_pop(&w->dq))) return t;
    if (atomic_load_explicit(&p->inj_mask, memory_order_relaxed) && (t = batch__inj_take(p, w, ~0u))) return t;
    uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
    if (due != UINT64_MAX && due <= batch_now_ns() && batch__release_due(p, batch_now_ns()) &&
        (t = batch__inj_take(p, w, ~0u)))
        return t;
    return batch__steal_any(p, w);
}

BATCH__PRIVATE batch__task* batch__find_work_spin(batch_pool* p, batch__worker* w) {
    for (int i = 0; i < p->spin_rounds; i++) {
        batch__task* t = batch__find_work(p, w);
        if (t) return t;
        if (i < p->spin_rounds / 2) { for (int k = 0; k < 32; k++) batch__cpu_relax(); }
        else batch__yield();
    }
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
    uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
    if (due != UINT64_MAX && due <= batch_now_ns()) batch__release_due(p, batch_now_ns());
    /* the order of a one-worker pool: urgent injected work, then the work tasks submitted
       (newest first, like a worker's own deque: nested waits stay shallow), then the rest */
    batch__mutex_lock(&p->inj_lock);
    batch__task* t = batch__inj_pop(p, BATCH__HIGH_LEVELS_MASK);
    if (!t && (t = p->inline_stack)) p->inline_stack = t->next;
    if (!t) t = batch__inj_pop(p, ~0u);
    batch__task copy;
    if (t) { copy = *t; batch__task_free(p, NULL, t); }
    batch__mutex_unlock(&p->inj_lock);
    if (!t) return false;
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
    uint64_t s = atomic_load_explicit(&p->ext_submitted, memory_order_acquire);
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
    if (p->inline_mode) {
        for (;;) {
            if (flush_delays) batch__release_due(p, UINT64_MAX);
            if (batch__inline_run_one(p)) continue;
            if (batch__quiescent(p)) return;
            batch__mutex_lock(&p->done_lock);
            uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
            if (!batch__quiescent(p)) batch__cond_wait_slice(&p->done_cond, &p->done_lock, due);
            batch__mutex_unlock(&p->done_lock);
        }
    }
    atomic_fetch_add_explicit(&p->idle_waiters, 1, memory_order_seq_cst);
    for (;;) {
        if (flush_delays) batch__release_due(p, UINT64_MAX);
        batch__mutex_lock(&p->done_lock);
        bool q = batch__quiescent(p);
        /* the slice bound only matters for delays submitted during shutdown, flushed above */
        if (!q) batch__cond_wait_slice(&p->done_cond, &p->done_lock,
                                       flush_delays ? batch_now_ns() + 10000000u : UINT64_MAX);
        batch__mutex_unlock(&p->done_lock);
        if (q) break;
    }
    atomic_fetch_sub_explicit(&p->idle_waiters, 1, memory_order_relaxed);
}

/* ---- create / destroy ---------------------------------------------------------------------- */
/* The pool's locks and condition variables, in one order for init and destroy. Returns true
   when all 8 were made; on failure the ones made are destroyed again. */
BATCH__PRIVATE void batch__pool_sync_destroy(batch_pool* p, int made) {
    switch (made) {
        case 8: batch__mutex_destroy(&p->life_lock); /* fall through */
        case 7: batch__cond_destroy(&p->done_cond); /* fall through */
        case 6: batch__mutex_destroy(&p->done_lock); /* fall through */
        case 5: batch__mutex_destroy(&p->delay_lock); /* fall through */
        case 4: batch__cond_destroy(&p->ec_cond); /* fall through */
        case 3: batch__mutex_destroy(&p->ec_lock); /* fall through */
        case 2: batch__mutex_destroy(&p->spare_lock); /* fall through */
        case 1: batch__mutex_destroy(&p->inj_lock); /* fall through */
        default: break;
    }
}
BATCH__PRIVATE bool batch__pool_sync_init(batch_pool* p) {
    int made = 0;
    if (batch__mutex_init(&p->inj_lock) && ++made && batch__mutex_init(&p->spare_lock) && ++made &&
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
    if (p->raw_workers) BATCH_FREE(p->raw_workers, ctx);
    batch__pool_sync_destroy(p, 8);
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
    if (desc->spin_rounds < 0 || desc->spin_rounds > 4096) return BATCH_ERR_INVALID;

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
    p->spin_rounds = desc->spin_rounds ? desc->spin_rounds : 16;
    p->inline_mode = inline_mode;
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
            w->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1) ^ (uint64_t)(uintptr_t)p;
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
           once this loop ends, no non-worker can enqueue any more */
        while (atomic_load_explicit(&p->ext_active, memory_order_seq_cst) != 0) batch__yield();
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
/* Queues an initialised task (counter already incremented). Cannot fail except for delayed
   tasks (heap growth): then returns false and nothing was queued. */
BATCH__PRIVATE bool batch__enqueue(batch_pool* p, batch__worker* w, batch__task* t, uint64_t delay_ns) {
    if (delay_ns && !atomic_load_explicit(&p->shutdown, memory_order_relaxed)) {
        t->due = batch_now_ns() + delay_ns;
        batch__mutex_lock(&p->delay_lock);
        if (p->heap_len == p->heap_cap) {
            size_t ncap = p->heap_cap ? p->heap_cap * 2 : 64;
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
        batch__mutex_lock(&p->inj_lock);
    } else {
        batch__mutex_lock(&p->inj_lock);
        atomic_store_explicit(&p->ext_submitted, atomic_load_explicit(&p->ext_submitted, memory_order_relaxed) + 1,
                              memory_order_release);
        if (batch__tls_inline == p && t->level == BATCH__LEVEL_NORMAL) {
            t->next = p->inline_stack;
            p->inline_stack = t;
            batch__mutex_unlock(&p->inj_lock);
            return true;
        }
    }
    batch__inj_append(p, t);
    batch__mutex_unlock(&p->inj_lock);
    batch__ec_notify(p, false);
    if (p->inline_mode) {
        batch__mutex_lock(&p->done_lock);
        batch__cond_broadcast(&p->done_cond);
        batch__mutex_unlock(&p->done_lock);
    }
    return true;
}

BATCH_API batch_result batch_pool_submit(batch_pool* p, const batch_work* work) {
    if (!p || !work || !work->fn) return BATCH_ERR_INVALID;
    if ((int)work->priority < 0 || work->priority >= BATCH_PRIORITY_COUNT_) return BATCH_ERR_INVALID;
    if (work->delay_ns > ((uint64_t)1 << 62)) return BATCH_ERR_INVALID;
    if (work->counter && work->counter->pool_ != p) return BATCH_ERR_INVALID;
    batch__worker* w = batch__self(p);
    bool outsider = !w && batch__tls_inline != p;
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
        batch__mutex_lock(&p->inj_lock);
        t = batch__task_alloc(p, NULL);
        batch__mutex_unlock(&p->inj_lock);
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
            else { batch__mutex_lock(&p->inj_lock); batch__task_free(p, NULL, t); batch__mutex_unlock(&p->inj_lock); }
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
    uint64_t s = atomic_load_explicit(BATCH__ATOMIC_U64(&c->state_), memory_order_relaxed);
    do {
        if (s < BATCH__CNT_ONE) return BATCH_ERR_INVALID;
        /* seq_cst: as in batch__counter_sub1 */
    } while (!atomic_compare_exchange_weak_explicit(BATCH__ATOMIC_U64(&c->state_), &s, s - BATCH__CNT_ONE,
                                                    memory_order_seq_cst, memory_order_relaxed));
    if (s / BATCH__CNT_ONE == 1 && (s & (BATCH__CNT_ONE - 1))) batch__counter_wake(p, s);
    return BATCH_OK;
}

BATCH_API uint64_t batch_counter_value(const batch_counter* c) { return c ? batch__counter_load(c) : 0; }

BATCH__PRIVATE batch_result batch__counter_wait(batch_counter* c, uint64_t deadline) {
    if (!c || !c->pool_) return BATCH_ERR_INVALID;
    batch_pool* p = c->pool_;
    _Atomic uint64_t* st = BATCH__ATOMIC_U64(&c->state_);
    batch__worker* w = batch__self(p);
    if (w) {
        /* a worker helps: it runs any task until the count is zero */
        int idle = 0;
        while (batch__counter_load(c) != 0) {
            batch__task* t = batch__find_work(p, w);
            if (t) { batch__execute(p, w, t); idle = 0; continue; }
            if (deadline != UINT64_MAX && batch_now_ns() >= deadline) return BATCH_ERR_TIMEOUT;
            if (++idle < p->spin_rounds) { batch__cpu_relax(); continue; }
            atomic_fetch_or_explicit(st, BATCH__CNT_WORKER_WAITING, memory_order_seq_cst);
            uint64_t key = batch__ec_prepare(p);
            if (batch__counter_load(c) == 0) { batch__ec_cancel(p); break; }
            if ((t = batch__find_work(p, w))) { batch__ec_cancel(p); batch__execute(p, w, t); idle = 0; continue; }
            uint64_t due = atomic_load_explicit(&p->delay_next, memory_order_relaxed);
            batch__ec_commit(p, key, due < deadline ? due : deadline);
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
            bool ready = atomic_load_explicit(&p->inj_mask, memory_order_relaxed) != 0;
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

BATCH_API batch_result batch_counter_wait(batch_counter* c) { return batch__counter_wait(c, UINT64_MAX); }

BATCH_API batch_result batch_counter_wait_timeout(batch_counter* c, uint64_t timeout_ns) {
    uint64_t now = batch_now_ns();
    uint64_t deadline = timeout_ns >= UINT64_MAX - now ? UINT64_MAX - 1 : now + timeout_ns;
    return batch__counter_wait(c, deadline);
}

/* ---- parallel-for ---------------------------------------------------------------------------- */
typedef struct batch__pfor {
    BATCH__ALIGNED _Atomic size_t next;
    BATCH__ALIGNED size_t n, chunk;
    batch_range_fn fn;
    void* user;
} batch__pfor;

BATCH__PRIVATE void batch__pfor_claim(batch_pool* p, batch__pfor* f) {
    for (;;) {
        /* relaxed: chunks are independent; the counter publishes their results to the caller */
        size_t b = atomic_fetch_add_explicit(&f->next, f->chunk, memory_order_relaxed);
        if (b >= f->n) return;
        size_t e = f->n - b < f->chunk ? f->n : b + f->chunk;
        f->fn(p, b, e, f->user);
    }
}

BATCH__PRIVATE void batch__pfor_helper(batch_pool* p, void* user) { batch__pfor_claim(p, (batch__pfor*)user); }

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
    /* every claimer overshoots n by at most one chunk: the cursor must not wrap */
    if (chunk > (SIZE_MAX - n) / (helpers + 1)) return BATCH_ERR_INVALID;
    batch__pfor f;
    atomic_init(&f.next, 0);
    f.n = n;
    f.chunk = chunk;
    f.fn = fn;
    f.user = user;
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
