/* shutdown.pml - shutdown racing submit (pool.c: batch_pool_submit's ext_active/shutdown pair,
   batch__submit_outsider's check under ext_lock, and batch_pool_shutdown). Two outside threads
   submit until refused, one on each path; the destroyer sets shutdown, waits until no submit is
   in progress and takes ext_lock once, then drains the queue and stops.
   Claims: every accepted task runs (none is queued after the drain), and a refused submit queues
   nothing. BUGGY checks the shutdown flag before announcing itself (the increment of ext_active
   comes after the check) and skips the lock round trip: spin must find a task accepted after
   the drain. */
byte queued = 0, accepted = 0, ran = 0, active_submits = 0;
bool shutdown = 0, drained = 0, refused = 0, refused_locked = 0, ext_lock = 0;

active proctype locked_submitter() {
    byte tries = 0;
    do
    :: refused_locked || tries == 4 -> break
    :: else ->
        tries++;
        atomic { !ext_lock -> ext_lock = 1 };
        if
        :: shutdown -> refused_locked = 1
        :: else -> queued++; accepted++
        fi;
        ext_lock = 0
    od
}

active proctype submitter() {
    byte tries = 0;
    do
    :: refused || tries == 4 -> break
    :: else ->
        tries++;
#ifdef BUGGY
        if
        :: shutdown -> refused = 1
        :: else -> active_submits++; queued++; accepted++; active_submits--
        fi
#else
        active_submits++;                      /* seq_cst, then read the flag */
        if
        :: shutdown -> active_submits--; refused = 1
        :: else -> queued++; accepted++; active_submits--
        fi
#endif
    od
}

active proctype destroyer() {
    shutdown = 1;                              /* seq_cst */
    active_submits == 0;                       /* no submit half-way */
#ifndef BUGGY
    atomic { !ext_lock -> ext_lock = 1 };      /* the one inside the lock has finished */
    ext_lock = 0;
#endif
    do                                         /* the drain: run what was accepted */
    :: queued > 0 -> queued--; ran++
    :: else -> break
    od;
    drained = 1;
    assert(queued == 0)
}

active proctype monitor() {
    timeout -> assert(drained && queued == 0 && ran == accepted)
}
