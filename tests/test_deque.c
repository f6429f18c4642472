/* test_deque.c - the Chase-Lev deque: owner LIFO semantics, growth, and 1 owner + k thieves over
   10^6 items with every item taken exactly once. */

static void* item(uintptr_t i) { return (void*)(i + 1); }   /* never NULL */

static void test_deque_owner(void) {
    batch__deque d;
    CHECK(batch__deque_init(&d, 16, NULL));
    CHECK(batch__deque_pop(&d) == NULL);
    for (uintptr_t i = 0; i < 1000; i++) CHECK(batch__deque_push(&d, item(i)));   /* grows */
    CHECK_EQ(batch__deque_size(&d), 1000);
    for (uintptr_t i = 1000; i-- > 500;) CHECK(batch__deque_pop(&d) == item(i));  /* LIFO */
    void* x;
    for (uintptr_t i = 0; i < 500; i++) {                                          /* FIFO */
        CHECK(batch__deque_steal(&d, &x) == BATCH__STEAL_OK);
        CHECK(x == item(i));
    }
    CHECK(batch__deque_steal(&d, &x) == BATCH__STEAL_EMPTY);
    CHECK(batch__deque_pop(&d) == NULL);
    /* wrap around a small ring many times without growing */
    for (uintptr_t i = 0; i < 10000; i++) {
        CHECK(batch__deque_push(&d, item(i)));
        CHECK(batch__deque_push(&d, item(i + 1)));
        CHECK(batch__deque_steal(&d, &x) == BATCH__STEAL_OK && x == item(i));
        CHECK(batch__deque_pop(&d) == item(i + 1));
    }
    batch__deque_destroy(&d);
}

#if !defined(BATCH_NO_THREADS)
typedef struct deque_stress {
    batch__deque d;
    long n;
    _Atomic unsigned char* taken;
    _Atomic int done;
    _Atomic long total;
} deque_stress;

static void deque_take(deque_stress* s, void* x) {
    uintptr_t i = (uintptr_t)x - 1;
    CHECK(i < (uintptr_t)s->n);
    atomic_fetch_add_explicit(&s->taken[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->total, 1, memory_order_relaxed);
}

static int deque_thief(void* arg) {
    deque_stress* s = (deque_stress*)arg;
    for (;;) {
        void* x;
        batch__steal_result r = batch__deque_steal(&s->d, &x);
        if (r == BATCH__STEAL_OK) deque_take(s, x);
        else if (r == BATCH__STEAL_EMPTY && atomic_load(&s->done)) break;
    }
    return 0;
}

static void deque_stress_run(int thieves, long n) {
    deque_stress s;
    memset(&s, 0, sizeof s);
    CHECK(batch__deque_init(&s.d, 16, NULL));   /* small: growth happens under theft */
    s.n = n;
    s.taken = (_Atomic unsigned char*)calloc((size_t)n, 1);
    CHECK(s.taken != NULL);
    batch__thread th[8];
    for (int k = 0; k < thieves; k++) CHECK(batch__thread_create(&th[k], deque_thief, &s));
    uint64_t rng = test_seed ^ (uint64_t)thieves;
    long next = 0;
    while (next < n) {
        long burst = 1 + (long)(test_rand(&rng) % 64);
        for (long i = 0; i < burst && next < n; i++) CHECK(batch__deque_push(&s.d, item((uintptr_t)next++)));
        long pops = (long)(test_rand(&rng) % 48);
        for (long i = 0; i < pops; i++) {
            void* x = batch__deque_pop(&s.d);
            if (!x) break;
            deque_take(&s, x);
        }
    }
    for (void* x; (x = batch__deque_pop(&s.d));) deque_take(&s, x);
    atomic_store(&s.done, 1);
    for (int k = 0; k < thieves; k++) batch__thread_join(th[k]);
    CHECK_EQ(atomic_load(&s.total), n);
    for (long i = 0; i < n; i++) {
        if (atomic_load(&s.taken[i]) != 1) { fprintf(stderr, "item %ld taken %d times\n", i, atomic_load(&s.taken[i])); CHECK(0); }
    }
    free((void*)s.taken);
    batch__deque_destroy(&s.d);
}

static void test_deque_thieves(void) {
    long n = scaled(1000000);
    for (int k = 1; k <= 8; k *= 2) deque_stress_run(k, n);
}
#define DEQUE_THREAD_TESTS { "deque_thieves", test_deque_thieves },
#else
#define DEQUE_THREAD_TESTS
#endif

#define DEQUE_TESTS \
    { "deque_owner", test_deque_owner }, \
    DEQUE_THREAD_TESTS
