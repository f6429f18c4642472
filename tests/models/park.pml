/* park.pml - the worker park/wake protocol of batch.h's pool (pool.c, batch__ec_*), for spin.

   A producer queues NTASKS tasks; NWORKERS workers take tasks or park:
     worker:   if a task is queued, take it; else announce (waiters++, key = epoch), re-check the
               queue (take and cancel if one is there), else sleep while epoch == key
     producer: queue the task, then if waiters > 0: epoch++ and signal one sleeper (under the lock)
   The C code makes the announce and the producer's check a Dekker pair with seq_cst fences, so
   the sequentially consistent interleavings spin explores are the executions that can happen.
   A condition variable is modelled with signal-one semantics: a signal wakes at most one sleeper
   and is lost if nobody sleeps. Claim: no lost wake-up - the system never gets stuck with a task
   queued and every worker asleep. BUGGY drops the re-check after the announce: spin must find
   the lost wake-up. */
#define NWORKERS 2
#define NTASKS 3

byte queued = 0;       /* tasks in the queue */
byte done = 0;         /* tasks run */
byte waiters = 0;      /* announced (prepare) and not yet left */
byte epoch = 0;
bool lock = 0;
byte sleeping = 0;     /* blocked in the condition variable */
byte tokens = 0;       /* signals delivered to sleepers, not yet consumed */
bool produced = 0;

inline acquire() { atomic { lock == 0 -> lock = 1 } }
inline release() { lock = 0 }

active proctype producer() {
    byte i;
    for (i : 1 .. NTASKS) {
        queued++;                              /* push (then the fence) */
        if
        :: waiters > 0 ->                      /* ec_notify: someone announced */
            acquire();
            epoch++;
            if
            :: sleeping > tokens -> tokens++   /* signal one */
            :: else -> skip                    /* nobody asleep: the signal is lost */
            fi;
            release()
        :: else -> skip
        fi
    }
    produced = 1
}

active [NWORKERS] proctype worker() {
    byte key;
loop:
    if
    :: atomic { queued > 0 -> queued--; done++ } -> goto loop
    :: atomic { queued == 0 } ->
        waiters++;                             /* ec_prepare: announce, then the fence */
        key = epoch;
#ifndef BUGGY
        if
        :: atomic { queued > 0 -> queued--; done++ } -> waiters--; goto loop   /* re-check */
        :: else -> skip
        fi;
#endif
        acquire();
        do
        :: epoch != key -> break
        :: else ->                             /* cond_wait: release, block, reacquire */
            sleeping++;
            release();
end_sleep:  atomic { tokens > 0 -> tokens--; sleeping-- };
            acquire()
        od;
        release();
        waiters--;
        goto loop
    fi
}

/* When nothing can move any more, every task must have run. */
active proctype monitor() {
    timeout -> assert(queued == 0 && done == NTASKS && produced)
}
