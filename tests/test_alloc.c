/* test_alloc.c - the allocator behind BATCH_MALLOC/REALLOC/FREE in the test build: counts live
   bytes and allocations, and fails allocation number N once (mode ONCE) or from N on (FROM).
   A header before each block remembers its size. Thread-safe (atomics). */
#include <stdlib.h>

enum { TEST_FAIL_NEVER, TEST_FAIL_ONCE, TEST_FAIL_FROM };
static _Atomic long long test_live_bytes;
static _Atomic long test_alloc_count;       /* allocations attempted since the last reset */
static _Atomic long test_fail_n = -1;
static _Atomic int test_fail_mode;
_Atomic int test_fail_thread_at = -1;
static _Atomic int test_thread_creates;

typedef union { size_t size; max_align_t align; } test_hdr;

static void test_alloc_reset(int mode, long n) {
    atomic_store(&test_alloc_count, 0);
    atomic_store(&test_fail_n, n);
    atomic_store(&test_fail_mode, mode);
}

static int test_should_fail(void) {
    long k = atomic_fetch_add(&test_alloc_count, 1) + 1;
    int mode = atomic_load(&test_fail_mode);
    long n = atomic_load(&test_fail_n);
    return (mode == TEST_FAIL_ONCE && k == n) || (mode == TEST_FAIL_FROM && k >= n);
}

void* test_malloc(size_t sz, void* ctx) {
    (void)ctx;
    if (test_should_fail()) return NULL;
    test_hdr* h = (test_hdr*)malloc(sizeof(test_hdr) + sz);
    if (!h) return NULL;
    h->size = sz;
    atomic_fetch_add(&test_live_bytes, (long long)sz);
    return h + 1;
}

void test_free(void* p, void* ctx) {
    (void)ctx;
    if (!p) return;
    test_hdr* h = (test_hdr*)p - 1;
    atomic_fetch_sub(&test_live_bytes, (long long)h->size);
    free(h);
}

void* test_realloc(void* p, size_t sz, void* ctx) {
    if (!p) return test_malloc(sz, ctx);
    if (sz == 0) { test_free(p, ctx); return NULL; }
    if (test_should_fail()) return NULL;
    test_hdr* h = (test_hdr*)p - 1;
    size_t old = h->size;
    test_hdr* n = (test_hdr*)realloc(h, sizeof(test_hdr) + sz);
    if (!n) return NULL;
    n->size = sz;
    atomic_fetch_add(&test_live_bytes, (long long)sz - (long long)old);
    return n + 1;
}

_Atomic int test_fail_sync_at = -1;
static _Atomic int test_sync_inits;
int test_sync_init_fails(void) {
    int at = atomic_load(&test_fail_sync_at);
    int k = atomic_fetch_add(&test_sync_inits, 1);
    return at >= 0 && k == at;
}

_Atomic int test_fail_graph_submit_on;
static _Atomic uint64_t test_graph_submits;
int test_graph_submit_fails(void) {
    if (!atomic_load_explicit(&test_fail_graph_submit_on, memory_order_relaxed)) return 0;
    uint64_t k = atomic_fetch_add_explicit(&test_graph_submits, 1, memory_order_relaxed) * 0x9E3779B97F4A7C15ull;
    return (int)((k >> 62) & 1);   /* about half */
}

int test_thread_create_fails(void) {
    int at = atomic_load(&test_fail_thread_at);
    int k = atomic_fetch_add(&test_thread_creates, 1);
    return at >= 0 && k == at;
}
