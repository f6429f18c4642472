/* test.h - a tiny test framework: CHECK macros, a seed, a scale for slow (sanitizer) builds.
   Each test runs in its own process under a watchdog (see main.c): forked, or on Windows this
   program started again for that one test. */
#ifndef BATCH_TEST_H
#define BATCH_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

typedef struct test_case { const char* name; void (*fn)(void); } test_case;

extern uint64_t test_seed;      /* the run's seed (-s SEED replays it) */
extern int test_scale;          /* BATCH_TEST_SCALE: divide iteration counts by this (>= 1) */

void test_fail_at(const char* file, int line, const char* expr, const char* detail);

#define CHECK(cond) do { if (!(cond)) test_fail_at(__FILE__, __LINE__, #cond, NULL); } while (0)
#define CHECK_EQ(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
    if (a_ != b_) { char d_[96]; snprintf(d_, sizeof d_, "%lld != %lld", a_, b_); \
                    test_fail_at(__FILE__, __LINE__, #a " == " #b, d_); } } while (0)
#define CHECK_OK(r) do { int r_ = (int)(r); if (r_ != 0) { char d_[96]; \
    snprintf(d_, sizeof d_, "returned %d (%s)", r_, batch_result_string((batch_result)r_)); \
    test_fail_at(__FILE__, __LINE__, #r, d_); } } while (0)

/* What the tests need from the OS, on POSIX and on Windows (main.c; Windows has no fork,
   fmemopen, /dev/null or /tmp). */
void test_sleep_ns(uint64_t ns);
FILE* test_memfile(char* buf, size_t n);                   /* fmemopen(buf, n, "w") */
void test_memfile_close(FILE* f, char* buf, size_t n);     /* fclose: buf holds the text, NUL-ended */
void test_tmp_path(char* out, size_t n, const char* name); /* "/tmp/NAME", or in GetTempPath */
void test_skip(const char* what);                          /* prints "skipped on Windows: what" */
#define MAX_TEST_PATH 512
#if defined(_WIN32)
#  define TEST_DEVNULL "NUL"
#  include <io.h>
#  include <direct.h>
#  include <process.h>
#  define unlink(p) _unlink(p)
#  define rmdir(p) _rmdir(p)
#  define getpid() _getpid()
int test_is_wine(void);                                    /* running under wine, not Windows */
/* Starts this program again with `args` after its name (inheritable handles are inherited):
   the process handle, or NULL. */
void* test_spawn_self(const char* args);
#else
#  define TEST_DEVNULL "/dev/null"
#endif

/* Iteration counts shrink under sanitizers but never below 1. */
static inline long scaled(long n) { long s = n / (test_scale > 0 ? test_scale : 1); return s > 0 ? s : 1; }

/* A per-test PRNG seeded from the run's seed. */
static inline uint64_t test_rand(uint64_t* s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
#endif
