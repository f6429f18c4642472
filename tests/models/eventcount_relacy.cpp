/* eventcount_relacy.cpp - the park/wake protocol of batch_impl/pool.c (batch__ec_prepare,
   batch__ec_cancel, batch__ec_commit, batch__ec_notify and the worker loop of
   batch__worker_main) checked under the C11 memory model by Relacy Race Detector
   (`make relacy`). tests/models/park.pml checks the same protocol with spin, which can only
   assume the fences make it sequentially consistent; here every load may read any store the C11
   rules allow, so the Dekker pair itself is checked: the sleeper's seq_cst RMW + fence before it
   re-checks the queue, against the producer's fence between publishing work and reading the
   waiter count.

   The queue is the real deque (deque_relacy.cpp, transcribed from deque.c, included here): one
   producer owns it and pushes N_ITEMS items, calling ec_notify(false) after each, as a worker
   does after queueing work; N_WORKERS workers run the loop of batch__worker_main, finding work
   by stealing (batch__steal_any's 4 tries). The worker that takes the last item does what
   batch__join_workers does (stop, then ec_notify(true)), so every worker can exit. Every order
   and fence is pool.c's; each is tagged with the pool.c line it mirrors ("pool.c:NN").
   Claim: no lost wake-up. If a worker slept with an item queued that nobody else would take,
   the run ends with the producer finished and every worker blocked in the condition variable:
   Relacy reports a DEADLOCK. Every item is also taken exactly once (asserted afterwards).

   BUGGY (-DBUGGY) drops the seq_cst fence of ec_notify (pool.c:251): the producer may read a
   waiter count from before a worker's announce while that worker's re-check misses the push;
   Relacy must report the deadlock.

   Not covered: the other re-checks made after ec_prepare (injected work, pool.c:513/519; a
   counter's value, pool.c:1005). With only the deque as the queue, removing ec_prepare's own
   fence (pool.c:230) does not fail here, because steal's fence (deque.c:130) already stands
   between the announce and the re-read of bottom; those other re-checks may rely on it. */
#define DEQUE_RELACY_PART
#include "deque_relacy.cpp"

enum { N_WORKERS = 2, N_ITEMS = 3, INITIAL_CAP = 2 };

/* pool.c:22 */
static const uint64_t EC_WAITER_BITS = 16;
static const uint64_t EC_WAITER_MASK = (1ull << EC_WAITER_BITS) - 1;
static const uint64_t EC_EPOCH_ONE = 1ull << EC_WAITER_BITS;

struct item { rl::var<int> payload; };

struct eventcount_test : rl::test_suite<eventcount_test, 1 + N_WORKERS> {
    dq::deque d;
    item items[N_ITEMS];
    int taken[1 + N_WORKERS][N_ITEMS];   /* each row written by its own thread only */
    rl::atomic<uint64_t> ec_state;        /* pool.c:108 waiters | epoch << 16 */
    rl::atomic<int> stop;                 /* pool.c p->stop */
    rl::atomic<int> done;                 /* the model's: items taken so far */
    rl::mutex ec_lock;
    rl::condition_variable ec_cond;

    void before() {
        dq::deque_init(&d, INITIAL_CAP);
        ec_state.store(0, memory_order_relaxed);
        stop.store(0, memory_order_relaxed);
        done.store(0, memory_order_relaxed);
        for (int k = 0; k <= N_WORKERS; k++)
            for (int i = 0; i < N_ITEMS; i++) taken[k][i] = 0;
    }

    /* ---- the eventcount: pool.c:227-261 ---- */
    uint64_t ec_prepare() {                                          /* pool.c:228 */
        uint64_t s = ec_state.fetch_add(1, memory_order_seq_cst);   /* pool.c:229 */
        rl::atomic_thread_fence(memory_order_seq_cst);              /* pool.c:230 */
        return s >> EC_WAITER_BITS;
    }

    void ec_cancel() {                                               /* pool.c:234 */
        ec_state.fetch_sub(1, memory_order_relaxed);                /* pool.c:236 */
    }

    void ec_commit(uint64_t key) {                                   /* pool.c:239, no deadline */
        ec_lock.lock($);
        while ((ec_state.load(memory_order_relaxed) >> EC_WAITER_BITS) ==      /* pool.c:241 */
               (key & (UINT64_MAX >> EC_WAITER_BITS)))
            ec_cond.wait(ec_lock, $);                               /* cond_wait_slice, forever */
        ec_lock.unlock($);
        ec_state.fetch_sub(1, memory_order_relaxed);                /* pool.c:247 */
    }

    void ec_notify(bool all) {                                       /* pool.c:250 */
#ifndef BUGGY
        rl::atomic_thread_fence(memory_order_seq_cst);              /* pool.c:251 */
#endif
        uint64_t s = ec_state.load(memory_order_relaxed);           /* pool.c:252 */
        if ((s & EC_WAITER_MASK) == 0) return;
        ec_lock.lock($);
        ec_state.fetch_add(EC_EPOCH_ONE, memory_order_relaxed);     /* pool.c:256 */
        if (all) ec_cond.notify_all($);
        else ec_cond.notify_one($);
        ec_lock.unlock($);
    }

    /* ---- the worker: pool.c:545-560 (batch__worker_main), stealing as batch__steal_any ---- */
    item* find_work() {                                              /* pool.c:501 */
        void* x = NULL;
        for (int tries = 0; tries < 4; tries++) {
            dq::steal_result r = dq::deque_steal(&d, &x);
            if (r == dq::STEAL_OK) return static_cast<item*>(x);
            if (r == dq::STEAL_EMPTY) break;
        }
        return NULL;
    }

    void execute(unsigned me, item* it) {
        RL_ASSERT(static_cast<void*>(it) != dq::POISON);
        int i = static_cast<int>(it - items);
        RL_ASSERT(i >= 0 && i < N_ITEMS);
        RL_ASSERT(it->payload($) == i + 1);
        it->payload($) = -1;
        taken[me][i]++;
        /* the model's shutdown: whoever takes the last item stops the pool, as
           batch__join_workers does (pool.c:671-672) */
        if (done.fetch_add(1, memory_order_relaxed) + 1 == N_ITEMS) {
            stop.store(1, memory_order_seq_cst);                    /* pool.c:671 */
            ec_notify(true);                                        /* pool.c:672 */
        }
    }

    void worker(unsigned me) {
        for (;;) {
            item* t = find_work();                                   /* pool.c:549 (spin: once) */
            if (t) { execute(me, t); continue; }
            uint64_t key = ec_prepare();                             /* pool.c:552 */
            if ((t = find_work())) { ec_cancel(); execute(me, t); continue; }    /* pool.c:553 */
            if (stop.load(memory_order_seq_cst)) { ec_cancel(); break; }         /* pool.c:554 */
            ec_commit(key);                                          /* pool.c:557 */
        }
    }

    void thread(unsigned me) {
        if (me == 0) {                         /* the producer: a worker queueing work */
            for (int i = 0; i < N_ITEMS; i++) {
                items[i].payload($) = i + 1;
                RL_ASSERT(dq::deque_push(&d, &items[i]));
                ec_notify(false);              /* pool.c:835-836: deque push, then notify */
            }
        } else {
            worker(me);
        }
    }

    void after() {
        for (int i = 0; i < N_ITEMS; i++) {
            int n = 0;
            for (int k = 0; k <= N_WORKERS; k++) n += taken[k][i];
            RL_ASSERT(n == 1);
        }
        dq::deque_destroy(&d);
    }
};

/* eventcount_relacy [ITERATIONS [bK | f]]: as deque_relacy. */
int main(int argc, char** argv) {
    rl::test_params p;
    dq::parse_params(argc, argv, &p);
    std::ostringstream progress;
    p.progress_stream = &progress;
    bool ok = rl::simulate<eventcount_test>(p);
#ifdef BUGGY
    const char* tag = " (BUGGY: ec_notify has no fence)";
#else
    const char* tag = "";
#endif
    std::printf("eventcount_relacy%s: %s after %llu of %llu iterations (%s)\n", tag,
                ok ? "no violation" : "VIOLATION", (unsigned long long)p.stop_iteration,
                (unsigned long long)p.iteration_count, rl::format(p.search_type));
    return ok ? 0 : 1;
}
