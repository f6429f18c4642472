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
