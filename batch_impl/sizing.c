/* sizing.c - complexity classes and the keyed sizing registry (an stb_ds string map, created
   and changed only on the calling thread, under the stb_ds allocation guard). */
#ifndef BATCH__SIZING_C
#define BATCH__SIZING_C
#ifndef BATCH_SINGLE_FILE
#  include "internal.h"
#endif

typedef struct batch__sizing_value { batch_complexity cls; uint64_t cost_ns; } batch__sizing_value;
typedef struct batch__sizing_entry { char* key; batch__sizing_value value; } batch__sizing_entry;

struct batch_sizing {
    void* alloc_ctx;
    size_t size[BATCH_COMPLEXITY_COUNT_];   /* [0] default */
    size_t min_size, max_size;
    batch__sizing_entry* map;
};

static const size_t batch__default_class_size[BATCH_COMPLEXITY_COUNT_] = { 10, 50, 20, 10, 5 };

/* stb_ds operations, run under the allocation guard (batch__ds_guarded, internal.h). */
typedef struct batch__sizing_op { batch_sizing* s; char* key; batch__sizing_value v; } batch__sizing_op;
BATCH__PRIVATE void batch__ds_sizing_put(void* a) { batch__sizing_op* o = (batch__sizing_op*)a; stbds_shput(o->s->map, o->key, o->v); }
/* allocates the empty map, so that later gets never allocate */
BATCH__PRIVATE void batch__ds_sizing_make(void* a) { batch__sizing_op* o = (batch__sizing_op*)a; (void)stbds_shgeti(o->s->map, ""); }

BATCH_API batch_result batch_sizing_create(batch_sizing** out, const batch_sizing_desc* desc) {
    if (!out) return BATCH_ERR_INVALID;
    *out = NULL;
    batch_sizing_desc d;
    memset(&d, 0, sizeof d);
    if (desc) d = *desc;
    size_t mn = d.min_size ? d.min_size : 1, mx = d.max_size ? d.max_size : ((size_t)1 << 20);
    if (mn > mx) return BATCH_ERR_INVALID;
    batch_sizing* s = (batch_sizing*)BATCH_MALLOC(sizeof *s, d.alloc_ctx);
    if (!s) return BATCH_ERR_NOMEM;
    memset(s, 0, sizeof *s);
    s->alloc_ctx = d.alloc_ctx;
    for (int i = 0; i < BATCH_COMPLEXITY_COUNT_; i++) s->size[i] = d.class_size[i] ? d.class_size[i] : batch__default_class_size[i];
    s->min_size = mn;
    s->max_size = mx;
    batch__sizing_op op = { s, NULL, { BATCH_COMPLEXITY_DEFAULT, 0 } };
    if (batch__ds_guarded(batch__ds_sizing_make, &op) != BATCH_OK) { BATCH_FREE(s, d.alloc_ctx); return BATCH_ERR_NOMEM; }
    *out = s;
    return BATCH_OK;
}

BATCH_API batch_result batch_sizing_destroy(batch_sizing* s) {
    if (!s) return BATCH_OK;
    for (ptrdiff_t i = 0; i < stbds_shlen(s->map); i++) BATCH_FREE(s->map[i].key, s->alloc_ctx);
    stbds_shfree(s->map);
    BATCH_FREE(s, s->alloc_ctx);
    return BATCH_OK;
}

BATCH__PRIVATE ptrdiff_t batch__sizing_find(const batch_sizing* s, const char* key) {
    batch__sizing_entry* m = s->map;   /* the map exists: shgeti does not allocate */
    return stbds_shgeti(m, (char*)(uintptr_t)key);
}

/* Inserts or updates key; `v` gets the entry's current value (or zeros) first when update is set. */
BATCH__PRIVATE batch_result batch__sizing_store(batch_sizing* s, const char* key, batch__sizing_value v) {
    ptrdiff_t i = batch__sizing_find(s, key);
    if (i >= 0) { s->map[i].value = v; return BATCH_OK; }
    char* copy = batch__strdup(key, s->alloc_ctx);
    if (!copy) return BATCH_ERR_NOMEM;
    batch__sizing_op op = { s, copy, v };
    if (batch__ds_guarded(batch__ds_sizing_put, &op) != BATCH_OK) { BATCH_FREE(copy, s->alloc_ctx); return BATCH_ERR_NOMEM; }
    return BATCH_OK;
}

BATCH_API batch_result batch_sizing_set(batch_sizing* s, const char* key, batch_complexity c) {
    if (!s || !key || BATCH__ENUM_BAD(c, BATCH_COMPLEXITY_COUNT_)) return BATCH_ERR_INVALID;
    ptrdiff_t i = batch__sizing_find(s, key);
    batch__sizing_value v = { c, i >= 0 ? s->map[i].value.cost_ns : 0 };
    return batch__sizing_store(s, key, v);
}

BATCH_API batch_complexity batch_sizing_class(const batch_sizing* s, const char* key) {
    if (!s || !key) return BATCH_COMPLEXITY_DEFAULT;
    ptrdiff_t i = batch__sizing_find(s, key);
    return i >= 0 ? s->map[i].value.cls : BATCH_COMPLEXITY_DEFAULT;
}

BATCH__PRIVATE size_t batch__clamp(size_t v, size_t lo, size_t hi) { return v < lo ? lo : v > hi ? hi : v; }

BATCH_API size_t batch_sizing_class_size(const batch_sizing* s, batch_complexity c) {
    if (BATCH__ENUM_BAD(c, BATCH_COMPLEXITY_COUNT_)) return 0;
    return s ? batch__clamp(s->size[c], s->min_size, s->max_size) : batch__default_class_size[c];
}

BATCH_API size_t batch_sizing_size(const batch_sizing* s, const char* key) {
    return batch_sizing_class_size(s, batch_sizing_class(s, key));
}

BATCH_API uint64_t batch_sizing_cost(const batch_sizing* s, const char* key) {
    if (!s || !key) return 0;
    ptrdiff_t i = batch__sizing_find(s, key);
    return i >= 0 ? s->map[i].value.cost_ns : 0;
}

BATCH_API batch_result batch_sizing_record_cost(batch_sizing* s, const char* key, uint64_t ns) {
    if (!s || !key || ns == 0) return BATCH_ERR_INVALID;
    ptrdiff_t i = batch__sizing_find(s, key);
    batch__sizing_value v = { BATCH_COMPLEXITY_DEFAULT, ns };
    if (i >= 0) {
        v = s->map[i].value;
        v.cost_ns = v.cost_ns ? (v.cost_ns + ns + 1) / 2 : ns;   /* EMA, weight 1/2 */
    }
    return batch__sizing_store(s, key, v);
}

#endif /* BATCH__SIZING_C */
