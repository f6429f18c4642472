/* child.h - batchrun: run ONE shell command and handle its output the way GNU parallel does.

   A br_output is the sink every command of a batch shares (thread-safe). br_cmd_run starts
   `/bin/sh -c COMMAND` in its own process group with stdin /dev/null and blocks until it ended,
   without polling: it sleeps in poll() on the capture pipes, a pidfd (Linux >= 5.3) or a SIGCHLD
   self-pipe (elsewhere), and the sink's stop pipe, with the timeout as poll's timeout.

   Output modes (GNU parallel's names):
     BR_OUT_GROUP    the default: stdout and stderr are captured (in memory up to mem_bound bytes,
                     then in an unlinked temporary file in $TMPDIR or /tmp) and written whole by
                     br_output_emit, stdout part then stderr part, never mixed with other commands.
     BR_OUT_LINE     --line-buffer: whole lines are written as they come, each line atomically with
                     its tag; a last line without a newline is written when the command ended. A
                     line longer than max(mem_bound, 64 KiB) is written in pieces (memory stays
                     bounded). With keep_order, LINE behaves like GROUP (captured, emitted in order).
     BR_OUT_UNGROUP  --ungroup: the command writes to out/err directly (no tag, no byte counts, no
                     ordering: with keep_order the emit/skip calls only keep the bookkeeping).
   A command whose spec has out_fd/err_fd >= 0 writes there directly (batchrun's --results files);
   for a regular file its byte count is the growth of the file.

   Tags (--tag): every output line gets "TAG\t" in front; a last line without a newline gets the tag
   and stays without a newline (as parallel 20221122 prints it).

   Errors are errno values (EMFILE, ENOMEM, ENOSPC, EPIPE, ...); nothing here exits or prints.
   Writing to out/err never raises SIGPIPE in the process (the writing thread blocks it and takes
   the pending one); a failed fd is not written again and the first failure is reported. */
#ifndef BATCHRUN_CHILD_H
#define BATCHRUN_CHILD_H

#include <stddef.h>
#include <stdint.h>

typedef enum { BR_OUT_GROUP, BR_OUT_LINE, BR_OUT_UNGROUP } br_out_mode;
typedef struct br_output br_output;
typedef struct br_capture br_capture;

/* out_fd/err_fd: the destinations (normally 1 and 2). keep_order (-k): outputs are emitted in seq
   order 1, 2, 3, ... (a seq's output waits until every smaller seq was emitted or skipped).
   mem_bound: bytes a command's captured output may hold in memory before it spills to a file.
   Returns 0 or an errno (ENOMEM, EMFILE for the stop pipe, EINVAL). */
int br_output_create(br_output** o, int out_fd, int err_fd, br_out_mode mode, int keep_order, size_t mem_bound);
/* Call when no br_cmd_run/emit/skip runs any more (br_stop may have been called). Flushes what is
   held (-k outputs whose predecessors never came are written in seq order), frees it. Returns 0 or the errno of the first failed write to out/err (EPIPE, ENOSPC, ...). */
int br_output_destroy(br_output* o);
/* The errno of the first failed write so far, 0 if none (any thread, any time). */
int br_output_error(const br_output* o);

typedef struct br_cmd_spec {
    const char* command;   /* run as /bin/sh -c command, own process group, stdin /dev/null */
    char* const* env;      /* environment (NULL: the empty environment) */
    size_t seq;            /* 1, 2, ...: the order for keep_order */
    const char* tag;       /* NULL, or every output line is prefixed with tag and a TAB */
    int out_fd, err_fd;    /* >= 0: the command writes there directly; -1: captured as the mode says */
    uint64_t timeout_ns;   /* 0: none; else SIGTERM to the process group at the deadline, SIGKILL 1 s later */
} br_cmd_spec;

typedef struct br_cmd_result {
    int exit_code;                 /* -1 if killed by a signal */
    int signo;                     /* the signal that ended it, 0 if none */
    int timed_out, stopped;        /* the deadline passed / br_stop was called while it ran (or before) */
    uint64_t out_bytes, err_bytes; /* bytes of output (GNU parallel's joblog Receive column) */
} br_cmd_result;

/* Runs the command and blocks until it ended (its process group is SIGTERMed at the timeout or
   on br_stop, SIGKILLed 1 s later and, if it was signalled, SIGKILLed when the shell ended). Once
   the shell has exited, what is left in the pipes is read without blocking: a background grandchild
   that keeps them open does not make it wait. *cap receives the captured output (GROUP, or LINE
   with keep_order), NULL when nothing was captured; hand it to br_output_emit or br_output_discard.
   Returns 0 (then *res is filled) or an errno: spawn failure, pipe2/pidfd EMFILE, ENOMEM, a
   failed spill file (ENOSPC...). After br_stop it starts nothing: returns 0 with stopped = 1,
   exit_code -1 and *cap NULL. */
int br_cmd_run(br_output* o, const br_cmd_spec* spec, br_cmd_result* res, br_capture** cap);
/* Writes cap whole (or holds it until its turn with keep_order) and frees it; cap may be NULL
   (then it is br_output_skip). Every seq must be emitted or skipped exactly once with keep_order. */
void br_output_emit(br_output* o, size_t seq, br_capture* cap);
/* Frees a capture that will not be written (a failed attempt that will be retried). NULL is fine. */
void br_output_discard(br_capture* cap);
/* Writes a capture's stdout part to out_fd and its stderr part to err_fd (files: no tag, no
   sink), then frees it. Returns 0 or the errno of the first failed write (ENOSPC, EIO, ...). */
int br_capture_save(br_capture* cap, int out_fd, int err_fd);
/* keep_order: this seq has no output (skipped, cancelled); lets the later seqs through. */
void br_output_skip(br_output* o, size_t seq);
/* Every running br_cmd_run SIGTERMs its process group (SIGKILL 1 s later) and returns with
   stopped = 1; later calls start nothing. Async-signal-safe: sets a flag and writes one byte to a
   pipe that every waiter polls, so a SIGINT/SIGTERM handler may call it. */
void br_stop(br_output* o);

#endif
