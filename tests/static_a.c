/* static_a.c + static_b.c - two translation units, each with its own BATCH_STATIC copy of the
   implementation, link into one program and each copy works. */
#define BATCH_STATIC
#define BATCH_IMPLEMENTATION
#include "../batch.h"
#include <stdio.h>

int static_b_run(void);

static void inc(batch_pool* p, void* u) { (void)p; ++*(int*)u; }

int main(void) {
    batch_pool* pool;
    if (batch_pool_create(&pool, &(batch_pool_desc){ .workers = 2 }) != BATCH_OK) return 1;
    int v = 0;
    batch_counter c;
    batch_counter_init(&c, pool);
    batch_pool_submit(pool, &(batch_work){ .fn = inc, .user_data = &v, .counter = &c });
    batch_counter_wait(&c);
    batch_pool_destroy(pool);
    if (v != 1 || static_b_run() != 1) return 1;
    puts("two BATCH_STATIC copies: ok");
    return 0;
}
