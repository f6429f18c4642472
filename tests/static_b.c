/* static_b.c - the second BATCH_STATIC translation unit (see static_a.c). */
#define BATCH_STATIC
#define BATCH_IMPLEMENTATION
#include "../batch.h"

int static_b_run(void);

static void inc(batch_pool* p, void* u) { (void)p; ++*(int*)u; }

int static_b_run(void) {
    batch_pool* pool;
    if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = BATCH_WORKERS_INLINE }) != BATCH_OK) return -1;
    int v = 0;
    batch_counter c;
    batch_counter_init(&c, pool);
    batch_pool_submit(pool, &(batch_work){ .fn = inc, .user_data = &v, .counter = &c });
    batch_counter_wait(&c);
    batch_pool_destroy(pool);
    return v;
}
