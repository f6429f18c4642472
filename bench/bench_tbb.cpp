// bench_tbb.cpp - the oneTBB system of the batch.h benchmark (bench.c calls these through the
// C interface declared in workloads.h). Built only into build/bench/bench_tbb (make bench-tbb).
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/partitioner.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
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

// Flow graphs of continue_nodes (graph workloads). A continue_node fires once it has heard from
// every predecessor and then resets its count, so a graph built once runs any number of times.
namespace flow = oneapi::tbb::flow;
using cnode = flow::continue_node<flow::continue_msg>;

struct flow_graph {
    std::unique_ptr<flow::graph> g;
    std::deque<cnode> nodes;   // continue_nodes cannot move: a deque keeps them in place
    cnode* start = nullptr;
};
std::unique_ptr<flow_graph> g_chain, g_fanout, g_wave;

// The graph workloads' task body: one count in the running thread's slot (see bench_graph_task).
struct count_body {
    bench_slot* slots;
    void operator()(const flow::continue_msg&) const {
        bench_graph_task(&slots[oneapi::tbb::this_task_arena::current_thread_index() + 1]);
    }
};

struct wave_body {
    uint32_t* cell;
    size_t stride;
    void operator()(const flow::continue_msg&) const { bench_wave_cell(cell, stride); }
};

// Builds inside the arena, so that the graph's tasks run there.
template <class Build>
int build_graph(std::unique_ptr<flow_graph>& slot, const char* what, Build build) {
    try {
        slot.reset();
        std::unique_ptr<flow_graph> fg(new flow_graph);
        g_arena->execute([&] {
            fg->g.reset(new flow::graph);
            build(*fg);
        });
        slot = std::move(fg);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench: oneTBB %s build failed: %s\n", what, e.what());
        return 0;
    }
    return 1;
}

void run_graph(flow_graph& fg, const char* what) {
    try {
        g_arena->execute([&fg] {
            fg.start->try_put(flow::continue_msg());
            fg.g->wait_for_all();
        });
    } catch (const std::exception& e) {
        fail(what, &e);
    }
}

}  // namespace

extern "C" int bench_tbb_chain_build(size_t n, bench_slot* slots) {
    return build_graph(g_chain, "chain", [n, slots](flow_graph& fg) {
        for (size_t i = 0; i < n; i++) {
            fg.nodes.emplace_back(*fg.g, count_body{ slots });
            if (i) flow::make_edge(fg.nodes[i - 1], fg.nodes[i]);
        }
        fg.start = &fg.nodes.front();
    });
}

extern "C" void bench_tbb_chain_run(void) { run_graph(*g_chain, "chain"); }

extern "C" int bench_tbb_fanout_build(size_t n, bench_slot* slots) {
    return build_graph(g_fanout, "fanout", [n, slots](flow_graph& fg) {
        fg.nodes.emplace_back(*fg.g, count_body{ slots });
        cnode& root = fg.nodes.back();
        for (size_t i = 0; i < n; i++) {
            fg.nodes.emplace_back(*fg.g, count_body{ slots });
            flow::make_edge(root, fg.nodes.back());
        }
        fg.nodes.emplace_back(*fg.g, count_body{ slots });
        cnode& join = fg.nodes.back();
        for (size_t i = 1; i <= n; i++) flow::make_edge(fg.nodes[i], join);
        fg.start = &root;
    });
}

extern "C" void bench_tbb_fanout_run(void) { run_graph(*g_fanout, "fanout"); }

extern "C" int bench_tbb_wave_build(size_t rows, size_t cols, uint32_t* grid) {
    return build_graph(g_wave, "wavefront", [rows, cols, grid](flow_graph& fg) {
        size_t st = cols + 1;
        for (size_t i = 1; i <= rows; i++) {
            for (size_t j = 1; j <= cols; j++) {
                fg.nodes.emplace_back(*fg.g, wave_body{ &grid[i * st + j], st });
                size_t k = (i - 1) * cols + (j - 1);
                if (i > 1) flow::make_edge(fg.nodes[k - cols], fg.nodes[k]);
                if (j > 1) flow::make_edge(fg.nodes[k - 1], fg.nodes[k]);
            }
        }
        fg.start = &fg.nodes.front();
    });
}

extern "C" void bench_tbb_wave_run(void) { run_graph(*g_wave, "wavefront"); }

extern "C" void bench_tbb_graphs_free(void) {
    g_chain.reset();
    g_fanout.reset();
    g_wave.reset();
}

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
    bench_tbb_graphs_free();
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
