// cpp_api.cpp - the API part of batch.h compiles as C++11 and links against the C implementation.
#include "batch.h"
#include <cstdio>
#include <cstring>

static void add_one(batch_pool* pool, void* user) {
    (void)pool;
    int* v = static_cast<int*>(user);
    *v += 1;
}

int main() {
    batch_pool* pool = nullptr;
    batch_pool_desc desc;
    std::memset(&desc, 0, sizeof desc);
    desc.workers = 2;
    if (batch_pool_create(&pool, &desc) != BATCH_OK) return 1;
    int values[64] = {0};
    batch_counter done;
    batch_counter_init(&done, pool);
    for (int i = 0; i < 64; i++) {
        batch_work w;
        std::memset(&w, 0, sizeof w);
        w.fn = add_one;
        w.user_data = &values[i];
        w.counter = &done;
        if (batch_pool_submit(pool, &w) != BATCH_OK) return 1;
    }
    batch_counter_wait(&done);
    batch_pool_destroy(pool);
    for (int i = 0; i < 64; i++) if (values[i] != 1) return 1;
    std::printf("C++ API: ok (%s)\n", batch_result_string(BATCH_OK));
    return 0;
}
