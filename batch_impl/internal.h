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
