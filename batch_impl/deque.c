/* deque.c - the per-worker work-stealing deque: Chase & Lev (2005) in C11 atomics after Le, Pop,
   Cohen & Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak Memory Models" (2013),
   with the fixes their model checking found:
   - signed 64-bit indices: bottom - 1 on an empty deque must not wrap;
   - a thief loads the ring after bottom, with acquire, so it never reads a stale ring that push
     has already replaced;
   - a thief reads the item before its CAS on top and uses it only if the CAS succeeds;
   - replaced rings are freed only when the deque is destroyed (quiescence), never while a thief
     may still be reading one.
   The owner pushes and pops at the bottom (LIFO); thieves steal at the top (FIFO).
   The items are opaque pointers; a NULL item is never stored. */
#ifndef BATCH__DEQUE_C
#define BATCH__DEQUE_C
#ifndef BATCH_SINGLE_FILE
#  include "platform.c"
#endif

typedef struct batch__ring {
    int64_t mask;                   /* capacity - 1; capacity is a power of two */
    struct batch__ring* retired;    /* older rings, kept until the deque is destroyed */
    _Atomic(void*) slot[];
} batch__ring;

typedef struct batch__deque {
    BATCH__ALIGNED _Atomic int64_t top;     /* next item to steal; only ever incremented (CAS) */
    BATCH__ALIGNED _Atomic int64_t bottom;  /* next free slot; written by the owner only */
    _Atomic(batch__ring*) ring;
    int64_t top_seen;                       /* owner only: a top it read (top only grows) */
    void* alloc_ctx;
} batch__deque;

typedef enum { BATCH__STEAL_EMPTY, BATCH__STEAL_LOST, BATCH__STEAL_OK } batch__steal_result;

BATCH__PRIVATE batch__ring* batch__ring_new(int64_t cap, void* alloc_ctx) {
    batch__ring* r = (batch__ring*)BATCH_MALLOC(sizeof(batch__ring) + (size_t)cap * sizeof(_Atomic(void*)), alloc_ctx);
    if (!r) return NULL;
    r->mask = cap - 1;
    r->retired = NULL;
    /* every slot holds a value: after a grow, a thief that read an old top may load a slot the
       copy skipped, before its CAS fails (found by make relacy); C11 reads no indeterminate atomic */
    for (int64_t i = 0; i < cap; i++) atomic_init(&r->slot[i], NULL);
    return r;
}

/* capacity: a power of two >= 2. Returns false when out of memory. */
BATCH__PRIVATE bool batch__deque_init(batch__deque* d, int64_t capacity, void* alloc_ctx) {
    batch__ring* r = batch__ring_new(capacity, alloc_ctx);
    if (!r) return false;
    atomic_init(&d->top, 0);
    atomic_init(&d->bottom, 0);
    atomic_init(&d->ring, r);
    d->top_seen = 0;
    d->alloc_ctx = alloc_ctx;
    return true;
}

/* Only at quiescence: no owner or thief may be using the deque. */
BATCH__PRIVATE void batch__deque_destroy(batch__deque* d) {
    batch__ring* r = atomic_load_explicit(&d->ring, memory_order_relaxed);
    while (r) { batch__ring* next = r->retired; BATCH_FREE(r, d->alloc_ctx); r = next; }
    atomic_store_explicit(&d->ring, NULL, memory_order_relaxed);
}

/* Owner only. Doubles the ring, copying the live items [t, b). */
BATCH__PRIVATE batch__ring* batch__deque_grow(batch__deque* d, batch__ring* old, int64_t t, int64_t b) {
    if (old->mask + 1 >= ((int64_t)1 << 40)) return NULL;
    batch__ring* r = batch__ring_new((old->mask + 1) * 2, d->alloc_ctx);
    if (!r) return NULL;
    for (int64_t i = t; i < b; i++) {
        /* relaxed: these slots were written by this (owner) thread */
        void* x = atomic_load_explicit(&old->slot[i & old->mask], memory_order_relaxed);
        atomic_store_explicit(&r->slot[i & r->mask], x, memory_order_relaxed);
    }
    r->retired = old;
    /* release: a thief that acquires the new ring sees its copied slots */
    atomic_store_explicit(&d->ring, r, memory_order_release);
    return r;
}

/* Owner only. Returns false (item not pushed) when the ring is full and cannot grow. */
BATCH__PRIVATE bool batch__deque_push(batch__deque* d, void* x) {
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);  /* own variable */
    batch__ring* r = atomic_load_explicit(&d->ring, memory_order_relaxed);  /* own variable */
    /* top is read only when the ring looks full by an older top: top only grows, so the older
       value errs on the full side, and the owner's pushes stop pulling the line thieves CAS */
    if (b - d->top_seen > r->mask) {
        /* acquire: pairs with a thief's successful CAS on top, so the slot it read is free to reuse */
        int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
        d->top_seen = t;
        if (b - t > r->mask) {
            r = batch__deque_grow(d, r, t, b);
            if (!r) return false;
        }
    }
    atomic_store_explicit(&r->slot[b & r->mask], x, memory_order_relaxed);
    /* release: publishes the slot, and the item it points to, to thieves that acquire bottom */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    return true;
}

/* Owner only. NULL when empty (or when a thief won the last item). */
BATCH__PRIVATE void* batch__deque_pop(batch__deque* d) {
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
    batch__ring* r = atomic_load_explicit(&d->ring, memory_order_relaxed);
    /* relaxed store, then a seq_cst fence: our claim on slot b must be visible before we read
       top, and a thief's fence orders its top read before its bottom read (Dekker). Neither
       fence publishes data, so ThreadSanitizer's blindness to fences cannot hide a race here. */
    atomic_store_explicit(&d->bottom, b, memory_order_relaxed);
    BATCH__FENCE_SEQ_CST();
    int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
    void* x = NULL;
    if (t <= b) {
        x = atomic_load_explicit(&r->slot[b & r->mask], memory_order_relaxed);
        if (t == b) {
            /* the last item: race the thieves for it on top */
            if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                         memory_order_relaxed))
                x = NULL;
            /* release (not relaxed): keeps the release sequence of bottom intact for tools
               that model only the C++20 rules; free on x86 and cheap elsewhere */
            atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
        }
    } else {
        atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    }
    return x;
}

/* Any thread. OK with *out set, EMPTY, or LOST (a race with another thief or the owner: retry). */
BATCH__PRIVATE batch__steal_result batch__deque_steal(batch__deque* d, void** out) {
    /* acquire: a thief that sees top advanced also sees the slot reads that preceded the CAS */
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    BATCH__FENCE_SEQ_CST();  /* top read before bottom read: see pop */
    /* acquire: pairs with push's release store of bottom: the slot and the item are visible */
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_acquire);
    if (t >= b) return BATCH__STEAL_EMPTY;
    /* acquire: a ring installed by grow before the push we saw is seen with its contents */
    batch__ring* r = atomic_load_explicit(&d->ring, memory_order_acquire);
    void* x = atomic_load_explicit(&r->slot[t & r->mask], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return BATCH__STEAL_LOST;
    *out = x;
    return BATCH__STEAL_OK;
}

/* A racy size estimate, for heuristics only. */
BATCH__PRIVATE int64_t batch__deque_size(batch__deque* d) {
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
    return b > t ? b - t : 0;
}

#endif /* BATCH__DEQUE_C */
