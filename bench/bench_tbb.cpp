// bench_tbb.cpp - the oneTBB system of the batch.h benchmark (bench.c calls these through the
// C interface declared in workloads.h). Built only into build/bench/bench_tbb (make bench-tbb).
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <vector>

#include "workloads.h"

namespace {

std::unique_ptr<oneapi::tbb::global_control> g_control;
std::unique_ptr<oneapi::tbb::task_arena> g_arena;
std::vector<bench_slot> g_slots;   // one per arena slot

[[noreturn]] void fail(const char* what, const std::exception* e) {
    std::fprintf(stderr, "bench: oneTBB %s failed: %s\n", what, e ? e->what() : "unknown exception");
    std::exit(1);
}

long fib_rec(int n) {
    if (n < BENCH_FIB_CUTOFF) return bench_fib_serial(n);
    long x = 0, y = 0;
    oneapi::tbb::task_group g;
    g.run([&x, n] { x = fib_rec(n - 1); });
    y = fib_rec(n - 2);
    g.wait();
    return x + y;
}

void add_to_slot(uint64_t s) {
    int slot = oneapi::tbb::this_task_arena::current_thread_index();
    if (slot < 0 || (size_t)slot >= g_slots.size()) {
        std::fprintf(stderr, "bench: oneTBB thread index %d out of range\n", slot);
        std::abort();
    }
    g_slots[(size_t)slot].v += s;
}

}  // namespace

extern "C" int bench_tbb_init(int threads) {
    try {
        // lets the arena have T slots even when T exceeds the CPU count (oneTBB's default limit)
        g_control.reset(new oneapi::tbb::global_control(oneapi::tbb::global_control::max_allowed_parallelism,
                                                        (size_t)threads));
        g_arena.reset(new oneapi::tbb::task_arena(threads));
        g_arena->initialize();
        g_slots.assign((size_t)g_arena->max_concurrency(), bench_slot());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench: oneTBB init failed: %s\n", e.what());
        return 0;
    }
    return 1;
}

extern "C" void bench_tbb_fini(void) {
    g_arena.reset();
    g_control.reset();
}

extern "C" void bench_tbb_spawn(size_t n) {
    try {
        g_arena->execute([n] {
            oneapi::tbb::task_group g;
            for (size_t i = 0; i < n; i++) g.run([] { bench_empty_fp(nullptr); });
            g.wait();
        });
    } catch (const std::exception& e) {
        fail("spawn", &e);
    }
}

extern "C" long bench_tbb_fib(int n) {
    long r = 0;
    try {
        g_arena->execute([&r, n] { r = fib_rec(n); });
    } catch (const std::exception& e) {
        fail("fib", &e);
    }
    return r;
}

extern "C" uint64_t bench_tbb_parfor(size_t n, size_t chunk, int split) {
    for (bench_slot& s : g_slots) s.v = 0;
    try {
        g_arena->execute([n, chunk, split] {
            using range = oneapi::tbb::blocked_range<size_t>;
            if (split == BENCH_SPLIT_CHUNK) {
                // exactly the chunks of the other systems: a range of chunk indices, split down to
                // single chunks (a grainsize over items would leave chunks of K/2..K items)
                size_t chunks = (n + chunk - 1) / chunk;
                oneapi::tbb::parallel_for(
                    range(0, chunks, 1),
                    [n, chunk](const range& r) {
                        for (size_t c = r.begin(); c < r.end(); c++) {
                            size_t b = c * chunk, e = n - b < chunk ? n : b + chunk;
                            add_to_slot(bench_sum_range(b, e));
                        }
                    },
                    oneapi::tbb::simple_partitioner());
                return;
            }
            auto body = [](const range& r) { add_to_slot(bench_sum_range(r.begin(), r.end())); };
            if (split == BENCH_SPLIT_STATIC)
                oneapi::tbb::parallel_for(range(0, n), body, oneapi::tbb::static_partitioner());
            else
                oneapi::tbb::parallel_for(range(0, n), body, oneapi::tbb::auto_partitioner());
        });
    } catch (const std::exception& e) {
        fail("parallel_for", &e);
    }
    return bench_slots_sum(g_slots.data(), (int)g_slots.size());
}
