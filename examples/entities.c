/* entities.c - scenario B: a complexity-sized batch executor over 100 entities.

   Batches of 10, an error threshold of 30% per batch, 2 retries of a failed batch (1 ms, 2 ms),
   at most 4 batches at once, results streamed as batches finish ("Batch i: s/n successful
   (t ms)") and folded into a running average score without keeping them. Entities whose
   record is malformed fail; one batch is hit by a transient outage on its first attempt and
   succeeds on retry. The registry shows how a key ("D3-Q2") picks a batch size. */
#define BATCH_IMPLEMENTATION
#include "batch.h"
#include <stdio.h>

typedef struct score_acc { double total; long count; } score_acc;

/* Entity i scores (i * 37) % 100; every 13th record is malformed. Batch 4 sees an outage on
   its first attempt: all its items fail, so the batch is FAILED and retried. */
static int analyse(batch_ctx* ctx, const batch_item* item, void* result, void* user) {
    (void)user;
    if (batch_ctx_batch_index(ctx) == 4 && batch_ctx_attempt(ctx) == 0)
        return batch_ctx_fail(ctx, 503, "entity %zu: analysis service unavailable", item->index);
    if (item->index % 13 == 7) return batch_ctx_fail(ctx, 422, "entity %zu: malformed record", item->index);
    *(double*)result = (double)((item->index * 37) % 100);
    return 0;
}

static void acc_init(void* acc, void* user) { (void)user; *(score_acc*)acc = (score_acc){ 0, 0 }; }
static void acc_fold(void* acc, const batch_item* item, const void* result, void* user) {
    (void)item; (void)user;
    score_acc* a = (score_acc*)acc;
    a->total += *(const double*)result;
    a->count++;
}
static void acc_combine(void* acc, const void* other, void* user) {
    (void)user;
    score_acc* a = (score_acc*)acc;
    const score_acc* b = (const score_acc*)other;
    a->total += b->total;
    a->count += b->count;
}

static void on_batch(const batch_batch* b, void* user) {
    (void)user;
    printf("Batch %zu: %zu/%zu successful (%.3f ms) %s%s\n", b->batch_index, b->succeeded, b->count,
           (double)b->exec_ns / 1e6, batch_batch_status_string(b->status),
           b->retries_used ? " after retry" : "");
    for (size_t k = 0; k < b->nerrors; k++)
        printf("    item %zu failed (%d): %s\n", b->errors[k].index, b->errors[k].code,
               b->errors[k].message ? b->errors[k].message : "");
}

int main(void) {
    batch_pool* pool;
    if (batch_pool_create(&pool, &(batch_pool_desc){0}) != BATCH_OK) return 1;

    /* the executor's complexity table: keys to classes, default 10, clamped to [2, 100] */
    batch_sizing* sizing;
    batch_sizing_create(&sizing, &(batch_sizing_desc){ .min_size = 2, .max_size = 100 });
    const char* moderate[] = { "D1-Q1", "D1-Q2", "D2-Q1" };
    const char* complex_[] = { "D2-Q3", "D3-Q1", "D4-Q2" };
    const char* very[] = { "D2-Q2", "D3-Q2", "D3-Q3", "D3-Q4", "D3-Q5", "D4-Q1", "D5-Q2" };
    for (int i = 0; i < 3; i++) batch_sizing_set(sizing, moderate[i], BATCH_COMPLEXITY_MODERATE);
    for (int i = 0; i < 3; i++) batch_sizing_set(sizing, complex_[i], BATCH_COMPLEXITY_COMPLEX);
    for (int i = 0; i < 7; i++) batch_sizing_set(sizing, very[i], BATCH_COMPLEXITY_VERY_COMPLEX);
    printf("batch sizes: D1-Q1 %zu, D4-Q2 %zu, D3-Q2 %zu, unknown %zu\n", batch_sizing_size(sizing, "D1-Q1"),
           batch_sizing_size(sizing, "D4-Q2"), batch_sizing_size(sizing, "D3-Q2"), batch_sizing_size(sizing, "X"));

    score_acc avg;
    batch_map_summary s;
    batch_result r = batch_map_run(pool, &(batch_map_desc){
        .count = 100, .item_fn = analyse, .result_size = sizeof(double),
        .batch_size = 10, .error_threshold = 0.3, .max_retries = 2, .retry_base_ns = 1000000,
        .max_concurrent_batches = 4, .ordered = 1, .on_batch = on_batch,
        .acc_size = sizeof avg, .init_fn = acc_init, .fold_fn = acc_fold, .combine_fn = acc_combine }, &s, &avg);

    printf("Processed %llu/100 entities successfully\n", (unsigned long long)s.succeeded);
    printf("batches %llu (success %llu, partial %llu, failed %llu), retries %llu, success rate %.1f%%, %s\n",
           (unsigned long long)s.batches, (unsigned long long)s.batches_succeeded, (unsigned long long)s.batches_partial,
           (unsigned long long)s.batches_failed, (unsigned long long)s.retries, 100.0 * s.success_rate,
           batch_result_string(r));
    printf("average score %.2f over %ld entities (streamed, nothing kept)\n", avg.count ? avg.total / (double)avg.count : 0.0, avg.count);

    batch_sizing_destroy(sizing);
    batch_pool_destroy(pool);
    return (r == BATCH_PARTIAL && s.succeeded == 92 && avg.count == 92) ? 0 : 1;
}
