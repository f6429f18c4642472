/* test_queue.c - the durable queue in one process: every call, bad input, leases, retries,
   cancel, list pages, compaction, the serve job. */
#define QUEUE_TESTS
