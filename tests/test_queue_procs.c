/* test_queue_procs.c - the durable queue shared by processes: pushers and servers at once,
   kill -9 of servers and pushers, torn and corrupt files, paging a big queue. */
#define QUEUE_PROC_TESTS
