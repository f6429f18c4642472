/* test.h - a tiny test framework: CHECK macros, a seed, a scale for slow (sanitizer) builds.
   Each test runs in its own forked process under a watchdog (see main.c). */
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
