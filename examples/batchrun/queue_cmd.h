/* queue_cmd.h - batchrun queue PATH SUBCOMMAND ...: shell commands in a durable batch.h queue.

   The queue is one file (batch_queue_open): `add` pushes commands, `serve` runs them on a pool
   (each through child.c, output grouped per job), `list`, `show`, `cancel`, `stats` and `compact`
   look at it or change it. Any number of batchrun processes may use one queue at once. */
#ifndef BATCHRUN_QUEUE_CMD_H
#define BATCHRUN_QUEUE_CMD_H

/* argv[0] is "queue", argv[1] the queue's path, then the subcommand and its arguments. Returns
   the exit status: 0, 1 (serve: a command failed; show/cancel: no such job, cancel: already
   finished), 255 for usage and library errors (after a "batchrun: queue: ..." line on stderr). */
int br_queue_main(int argc, char** argv);

#endif
