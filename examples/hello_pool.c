/* hello_pool.c - the README example: square 100 numbers on every core. */
#define BATCH_IMPLEMENTATION
#include "batch.h"
#include <stdio.h>

static void square(batch_pool* pool, void* user) { int* v = user; *v *= *v; (void)pool; }

int main(void) {
    batch_pool* pool;
    int v[100];
    batch_counter done;
    if (batch_pool_create(&pool, &(batch_pool_desc){0}) != BATCH_OK) return 1;
    batch_counter_init(&done, pool);
    for (int i = 0; i < 100; i++) {
        v[i] = i;
        batch_pool_submit(pool, &(batch_work){ .fn = square, .user_data = &v[i], .counter = &done });
    }
    batch_counter_wait(&done);          /* sleeps, or helps if called from a worker */
    batch_pool_destroy(pool);
    long sum = 0;
    for (int i = 0; i < 100; i++) sum += v[i];
    printf("sum of squares 0..99 = %ld\n", sum);  /* 328350 */
    return sum == 328350 ? 0 : 1;
}
