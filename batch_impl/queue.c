/* queue.c - durable job queues: one append-only file shared by processes (the journal's record
   format and I/O), an in-memory index of its jobs rebuilt from the records, and the serve job
   that runs claimed jobs on a pool. See "DURABLE QUEUES" in the API part for the contract and
   batch_impl/README.md for the design. */
#ifndef BATCH__QUEUE_C
#define BATCH__QUEUE_C
#ifndef BATCH_SINGLE_FILE
#  include "journal.c"
#endif

/* ---- records ---------------------------------------------------------------------------------
   Each record's payload starts with its type (1 byte) and a job id (u64); the rest, little-endian:
   JOB      priority i32, max_retries i32, status u8, attempts u16, error i32, pushed u64,
            when u64, owner u64, name_len u16, msg_len u16, then name, message, payload
            (a push writes one, QUEUED; compaction writes one per job, in its state)
   CLAIM    owner u64, lease end u64         RENEW    owner u64, lease end u64
   DONE     time u64                         RELEASE  (nothing)
   FAIL     code i32, final u8, when u64 (the retry's time, or the end), msg_len u16, message
   CANCEL   time u64                         EXPIRE   final u8, when u64 (a lease ran out)
   MOVED    (id 0) compaction replaced the file: reopen the path
   NEXT     (id: the next id to give) */
enum { BATCH__QR_JOB = 1, BATCH__QR_CLAIM, BATCH__QR_RENEW, BATCH__QR_DONE, BATCH__QR_FAIL, BATCH__QR_RELEASE,
       BATCH__QR_CANCEL, BATCH__QR_EXPIRE, BATCH__QR_MOVED, BATCH__QR_NEXT };
#define BATCH__QJOB_HDR 52u
#define BATCH__QGONE 255u               /* an id compaction dropped */
#define BATCH__QMAX_REC ((size_t)BATCH_QUEUE_PAYLOAD_MAX + BATCH__QJOB_HDR + BATCH_QUEUE_NAME_MAX + BATCH_MESSAGE_MAX)
#define BATCH__QREAD ((size_t)1 << 20)  /* the follower reads the log this much at a time */

typedef struct batch__qjob {
    uint64_t rec;                 /* file offset of its JOB record's payload */
    uint64_t msg_at;              /* file offset of its last message's bytes; 0: none */
    uint64_t owner;               /* RUNNING: the claiming handle's token */
    uint64_t when;                /* QUEUED: not before; RUNNING: lease end; finished: the end */
    uint64_t pushed;
    int32_t priority, error;
    uint32_t size;                /* payload bytes */
    uint16_t attempts, max_retries, name_len, jmsg_len, msg_len;
    uint8_t inheap;               /* an entry of it is in the ready heap */
} batch__qjob;

typedef struct batch__qtimer { uint64_t when, id; } batch__qtimer;   /* a delayed or lease heap entry */

typedef struct batch__qpend {     /* BUFFERED: an end of a job not yet written */
    uint8_t type, permanent;
    uint64_t id;
    int code;
    char msg[BATCH_MESSAGE_MAX];
} batch__qpend;

struct batch_queue {
    batch__journal* j;            /* the file (its io, handle, write buffer and append offset) */
    batch_journal_desc jd;        /* path (our copy), durability, sync_every */
    char* path;
    void* alloc_ctx;
    batch__mutex lock;            /* one operation of this handle at a time */
    uint64_t owner;               /* this handle's token in CLAIM records */
    uint64_t lease_ns, retry_base_ns, retry_max_ns, rng;
    bool jitter;
    /* the index */
    batch__qjob* jobs;            /* ids base .. base + njobs - 1 */
    uint8_t* st;                  /* their statuses (BATCH__QGONE: dropped) */
    uint32_t* blk;                /* status counts per block of ids (batch__qset) */
    size_t capblk;
    size_t njobs, capjobs;
    uint64_t base, next_id;
    uint64_t count[BATCH_QUEUE_STATUS_COUNT_];
    struct batch__qready* ready;  /* heap of the QUEUED jobs whose delay is over */
    size_t nready, capready;
    batch__qtimer *delayed, *leases;   /* min-heaps on when */
    size_t ndelayed, capdelayed, nleases, capleases;
    bool moved;                   /* a MOVED record was read: reopen the path */
    /* the follower's read buffer */
    unsigned char* rb;
    size_t rbcap;
    /* BUFFERED ends */
    batch__qpend* pend;
    size_t npend, cappend;
    uint64_t* held;               /* ids claimed and not ended */
    size_t nheld, capheld;
    long pid;                     /* the process that opened the handle (a fork's child reopens) */
    bool flocked;                 /* the operation under way holds the file lock */
};

BATCH_API const char* batch_queue_status_string(batch_queue_status s) {
    static const char* const names[] = { "queued", "running", "done", "failed", "cancelled" };
    return ((unsigned)s < BATCH_QUEUE_STATUS_COUNT_) ? names[s] : "unknown";
}

/* ---- growth and heaps ------------------------------------------------------------------------ */
BATCH__PRIVATE bool batch__qgrow(void** p, size_t* cap, size_t need, size_t elem, void* ctx) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return false;
        c *= 2;
    }
    void* n = batch__grow_block(*p, *cap, c, elem, ctx);   /* big arrays on huge pages: fewer faults */
    if (!n) return false;
    *p = n;
    *cap = c;
    return true;
}

BATCH__PRIVATE batch__qjob* batch__qget(batch_queue* q, uint64_t id) {
    if (id < q->base || id - q->base >= q->njobs || q->st[id - q->base] == BATCH__QGONE) return NULL;
    return &q->jobs[id - q->base];
}

/* The ready heap: priority desc, then id asc; entries carry the priority, so that a sift never
   reads the jobs' array. */
typedef struct batch__qready { int64_t prio; uint64_t id; } batch__qready;
BATCH__PRIVATE bool batch__qbefore(batch__qready a, batch__qready b) {
    return a.prio != b.prio ? a.prio > b.prio : a.id < b.id;
}
BATCH__PRIVATE bool batch__qready_push(batch_queue* q, uint64_t id) {
    batch__qjob* jb = &q->jobs[id - q->base];
    if (jb->inheap) return true;
    if (!batch__qgrow((void**)&q->ready, &q->capready, q->nready + 1, sizeof *q->ready, q->alloc_ctx)) return false;
    batch__qready e = { jb->priority, id };
    size_t i = q->nready++;
    while (i && batch__qbefore(e, q->ready[(i - 1) / 2])) { q->ready[i] = q->ready[(i - 1) / 2]; i = (i - 1) / 2; }
    q->ready[i] = e;
    jb->inheap = 1;
    return true;
}
BATCH__PRIVATE uint64_t batch__qready_pop(batch_queue* q) {
    batch__qready top = q->ready[0], last = q->ready[--q->nready];
    size_t i = 0, n = q->nready;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && batch__qbefore(q->ready[c + 1], q->ready[c])) c++;
        if (!batch__qbefore(q->ready[c], last)) break;
        q->ready[i] = q->ready[c];
        i = c;
    }
    if (n) q->ready[i] = last;
    q->jobs[top.id - q->base].inheap = 0;
    return top.id;
}
BATCH__PRIVATE bool batch__qtimer_push(batch__qtimer** h, size_t* n, size_t* cap, batch__qtimer t, void* ctx) {
    if (!batch__qgrow((void**)h, cap, *n + 1, sizeof **h, ctx)) return false;
    size_t i = (*n)++;
    while (i && t.when < (*h)[(i - 1) / 2].when) { (*h)[i] = (*h)[(i - 1) / 2]; i = (i - 1) / 2; }
    (*h)[i] = t;
    return true;
}
BATCH__PRIVATE batch__qtimer batch__qtimer_pop(batch__qtimer* h, size_t* n) {
    batch__qtimer top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1].when < h[c].when) c++;
        if (h[c].when >= last.when) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* Keeps the entries of a timer heap that still stand for their job's state (status, when) and
   heaps them again: the entries of jobs that ended, or were renewed, wait until their time
   otherwise (a lease's, 30 s of completions). */
BATCH__PRIVATE void batch__qtimer_prune(batch_queue* q, batch__qtimer* h, size_t* n, uint8_t status) {
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        const batch__qjob* jb = batch__qget(q, h[i].id);
        if (jb && q->st[h[i].id - q->base] == status && jb->when == h[i].when) h[k++] = h[i];
    }
    *n = 0;
    for (size_t i = 0; i < k; i++) (void)batch__qtimer_push(&h, n, &k, h[i], q->alloc_ctx);   /* in place: i >= *n */
}

/* A job became QUEUED (when: not before) or RUNNING (when: lease end): index it. */
BATCH__PRIVATE bool batch__qschedule(batch_queue* q, uint64_t id, uint8_t status, uint64_t when) {
    batch__qtimer t = { when, id };
    if (status == BATCH_QUEUE_RUNNING && q->nleases >= 4096 && q->nleases / 4 > q->count[BATCH_QUEUE_RUNNING])
        batch__qtimer_prune(q, q->leases, &q->nleases, BATCH_QUEUE_RUNNING);
    if (status == BATCH_QUEUE_RUNNING) return batch__qtimer_push(&q->leases, &q->nleases, &q->capleases, t, q->alloc_ctx);
    if (status != BATCH_QUEUE_QUEUED) return true;
    if (!when) return batch__qready_push(q, id);
    return batch__qtimer_push(&q->delayed, &q->ndelayed, &q->capdelayed, t, q->alloc_ctx);
}

/* Per block of BATCH__QBLOCK ids, how many jobs of each status (and of any, the last counter):
   a page at a large offset skips whole blocks instead of scanning every status byte. */
#define BATCH__QBLOCK_BITS 12u
#define BATCH__QBLK (BATCH_QUEUE_STATUS_COUNT_ + 1)
BATCH__PRIVATE void batch__qset(batch_queue* q, uint64_t id, uint8_t status) {
    size_t i = (size_t)(id - q->base);
    uint32_t* b = q->blk + (i >> BATCH__QBLOCK_BITS) * BATCH__QBLK;
    uint8_t* s = &q->st[i];
    if (*s < BATCH_QUEUE_STATUS_COUNT_) { q->count[*s]--; b[*s]--; }
    else b[BATCH_QUEUE_STATUS_COUNT_]++;   /* a new job */
    *s = status;
    q->count[status]++;
    b[status]++;
}

/* ---- applying records ------------------------------------------------------------------------ */
/* A JOB record at file offset `off` (its payload). */
BATCH__PRIVATE batch_result batch__qapply_job(batch_queue* q, uint64_t id, const unsigned char* p, size_t len, uint64_t off) {
    if (len < BATCH__QJOB_HDR) return BATCH_ERR_CORRUPT;
    uint16_t nl = (uint16_t)(p[48] | p[49] << 8), ml = (uint16_t)(p[50] | p[51] << 8);
    uint8_t status = p[17];
    if ((size_t)BATCH__QJOB_HDR + nl + ml > len || len - BATCH__QJOB_HDR - nl - ml > BATCH_QUEUE_PAYLOAD_MAX ||
        status >= BATCH_QUEUE_STATUS_COUNT_ || id == 0 || (q->njobs && id < q->base + q->njobs) ||
        nl >= BATCH_QUEUE_NAME_MAX || ml >= BATCH_MESSAGE_MAX)
        return BATCH_ERR_CORRUPT;   /* ids only grow: a second record of an id is not ours */
    if (q->njobs == 0) q->base = id;
    size_t idx = (size_t)(id - q->base);
    if (id - q->base > SIZE_MAX / 2) return BATCH_ERR_CORRUPT;
    if (idx >= q->capjobs) {   /* st grows with jobs, to the same capacity */
        size_t cap = q->capjobs;
        if (!batch__qgrow((void**)&q->jobs, &cap, idx + 1, sizeof *q->jobs, q->alloc_ctx)) return BATCH_ERR_NOMEM;
        uint8_t* st = (uint8_t*)batch__grow_block(q->st, q->capjobs, cap, 1, q->alloc_ctx);
        if (!st) return BATCH_ERR_NOMEM;   /* jobs grew alone: the next try grows st again */
        q->st = st;
        q->capjobs = cap;
    }
    size_t nblk = ((idx >> BATCH__QBLOCK_BITS) + 1) * BATCH__QBLK, had = q->capblk;   /* counters */
    if (nblk > had) {
        if (!batch__qgrow((void**)&q->blk, &q->capblk, nblk, sizeof *q->blk, q->alloc_ctx)) return BATCH_ERR_NOMEM;
        memset(q->blk + had, 0, (q->capblk - had) * sizeof *q->blk);
    }
    for (size_t i = q->njobs; i < idx; i++) q->st[i] = BATCH__QGONE;
    q->njobs = idx + 1;
    batch__qjob* jb = &q->jobs[idx];
    memset(jb, 0, sizeof *jb);
    jb->rec = off;
    jb->priority = (int32_t)batch__get32(p + 9);
    jb->max_retries = (uint16_t)batch__get32(p + 13);
    jb->attempts = (uint16_t)(p[18] | p[19] << 8);
    jb->error = (int32_t)batch__get32(p + 20);
    jb->pushed = batch__get64(p + 24);
    jb->when = batch__get64(p + 32);
    jb->owner = batch__get64(p + 40);
    jb->name_len = nl;
    jb->jmsg_len = ml;
    jb->msg_len = ml;
    jb->msg_at = ml ? off + BATCH__QJOB_HDR + nl : 0;
    jb->size = (uint32_t)(len - BATCH__QJOB_HDR - nl - ml);
    q->st[idx] = BATCH__QGONE;
    batch__qset(q, id, status);
    if (id + 1 > q->next_id) q->next_id = id + 1;
    return batch__qschedule(q, id, status, jb->when) ? BATCH_OK : BATCH_ERR_NOMEM;
}

/* An end or a change of a job (every type but JOB, MOVED and NEXT). Writers check a change
   against the state before they write it; replay applies it as it is. */
BATCH__PRIVATE batch_result batch__qapply_change(batch_queue* q, int type, uint64_t id, const unsigned char* p, size_t len,
                                                 uint64_t off) {
    static const uint8_t need[] = { 0, 0, 25, 25, 17, 24, 9, 17, 18 };
    batch__qjob* jb = batch__qget(q, id);
    if (!jb || len < need[type]) return BATCH_ERR_CORRUPT;
    uint8_t status;
    switch (type) {
        case BATCH__QR_CLAIM: case BATCH__QR_RENEW:
            if (type == BATCH__QR_CLAIM) jb->attempts++;
            jb->owner = batch__get64(p + 9);
            jb->when = batch__get64(p + 17);
            status = BATCH_QUEUE_RUNNING;
            break;
        case BATCH__QR_DONE: case BATCH__QR_CANCEL:
            jb->when = batch__get64(p + 9);
            status = type == BATCH__QR_DONE ? BATCH_QUEUE_DONE : BATCH_QUEUE_CANCELLED;
            break;
        case BATCH__QR_RELEASE:
            if (jb->attempts) jb->attempts--;
            jb->when = 0;
            status = BATCH_QUEUE_QUEUED;
            break;
        case BATCH__QR_FAIL: {
            uint16_t ml = (uint16_t)(p[22] | p[23] << 8);
            if ((size_t)24 + ml > len || ml >= BATCH_MESSAGE_MAX) return BATCH_ERR_CORRUPT;
            jb->error = (int32_t)batch__get32(p + 9);
            jb->when = batch__get64(p + 14);
            jb->msg_len = ml;
            jb->msg_at = ml ? off + 24 : 0;
            status = p[13] ? BATCH_QUEUE_FAILED : BATCH_QUEUE_QUEUED;
            break;
        }
        default: /* EXPIRE */
            jb->error = BATCH_ERR_TIMEOUT;
            jb->msg_len = 0;
            jb->msg_at = 0;
            jb->when = batch__get64(p + 10);
            status = p[9] ? BATCH_QUEUE_FAILED : BATCH_QUEUE_QUEUED;
            break;
    }
    if (status != BATCH_QUEUE_RUNNING) jb->owner = 0;
    batch__qset(q, id, status);
    return batch__qschedule(q, id, status, jb->when) ? BATCH_OK : BATCH_ERR_NOMEM;
}

/* One record's payload, at file offset off. */
BATCH__PRIVATE batch_result batch__qapply(batch_queue* q, const unsigned char* p, size_t len, uint64_t off) {
    if (len < 9 || p[0] < BATCH__QR_JOB || p[0] > BATCH__QR_NEXT) return BATCH_ERR_CORRUPT;
    uint64_t id = batch__get64(p + 1);
    switch (p[0]) {
        case BATCH__QR_JOB: return batch__qapply_job(q, id, p, len, off);
        case BATCH__QR_MOVED: q->moved = true; return BATCH_OK;
        case BATCH__QR_NEXT: if (id > q->next_id) q->next_id = id; return BATCH_OK;
        default: return batch__qapply_change(q, p[0], id, p, len, off);
    }
}

/* ---- following the file ---------------------------------------------------------------------- */
/* Reads and applies what was appended since our last look (j->end). A torn or untrusted tail is
   cut when `cut` (the exclusive lock is held: no writer is midway), else left for a writer. */
BATCH__PRIVATE batch_result batch__qfollow(batch_queue* q, bool cut) {
    batch__journal* j = q->j;
    uint64_t size = 0;
    bool gone = false;
    int e = batch__file_stat(j->h, &size, &gone);
    if (e) return batch__errno_result(e);
    if (size < j->end) return BATCH_ERR_CORRUPT;   /* only a torn tail is ever cut, and we never read one */
    uint64_t off = j->end;       /* the next record's offset */
    uint64_t boff = off;         /* the file offset of rb[0] */
    size_t have = 0;             /* bytes in rb */
    while (off < size && !q->moved) {
        size_t at = (size_t)(off - boff), need = BATCH__JREC;
        if (have - at >= BATCH__JREC) {
            uint32_t l = batch__get32(q->rb + at);
            if (l == 0 && batch__get32(q->rb + at + 4) == 0) {   /* zeros to the end: a torn append; else corrupt */
                if ((e = batch__jzero_tail(j, off + BATCH__JREC, size)) != 0) return e < 0 ? BATCH_ERR_CORRUPT : batch__errno_result(e);
                break;
            }
            if (l == 0 || l > BATCH__QMAX_REC) return BATCH_ERR_CORRUPT;    /* never written so (the journal's rules) */
            need += l;
        }
        if (have - at < need) {   /* refill: keep the partial record, read at least BATCH__QREAD more */
            size_t keep = have - at;
            if (keep) memmove(q->rb, q->rb + at, keep);
            boff = off;
            uint64_t want = need > BATCH__QREAD ? need : BATCH__QREAD;
            if (want > size - boff) want = size - boff;
            if (!batch__qgrow((void**)&q->rb, &q->rbcap, (size_t)want, 1, q->alloc_ctx)) return BATCH_ERR_NOMEM;
            if (want > keep && (e = batch__jread(j, q->rb + keep, (size_t)want - keep, boff + keep)) != 0)
                return batch__errno_result(e);
            have = want > keep ? (size_t)want : keep;
            if (have < need) break;                                           /* torn */
            continue;   /* look again: with the length known when only the frame was asked for */
        }
        uint32_t len = batch__get32(q->rb + at), crc = batch__get32(q->rb + at + 4);
        const unsigned char* p = q->rb + at + BATCH__JREC;
        if (batch__crc32c(p, len) != crc) break;                              /* not trusted, nor what follows */
        batch_result r = batch__qapply(q, p, len, off + BATCH__JREC);
        if (r != BATCH_OK) return r;
        off += BATCH__JREC + len;
    }
    if (off < size && !q->moved && cut && (e = j->io.truncate(j->io.user, j->h, off)) != 0) return batch__errno_result(e);
    j->end = off;
    /* a compaction whose MOVED record could not be written (or a deleted file): follow the path */
    if (gone) q->moved = true;
    return BATCH_OK;
}

/* ---- writing records -------------------------------------------------------------------------
   An operation frames its records into the journal's buffer (applying each to the index at the
   offset it will have) and writes them all before it unlocks the file. */
BATCH__PRIVATE unsigned char* batch__qrec(batch_queue* q, size_t len) {
    batch__journal* j = q->j;
    if (!batch__jreserve(j, j->used + BATCH__JREC + len)) return NULL;
    return j->buf + j->used + BATCH__JREC;
}
BATCH__PRIVATE batch_result batch__qrec_done(batch_queue* q, size_t len) {
    batch__journal* j = q->j;
    unsigned char* f = j->buf + j->used;
    batch__put32(f, (uint32_t)len);
    batch__put32(f + 4, batch__crc32c(f + BATCH__JREC, len));
    int type = f[BATCH__JREC];
    batch_result r = batch__qapply(q, f + BATCH__JREC, len, j->end + j->used + BATCH__JREC);
    j->used += BATCH__JREC + len;
    /* MACHINE syncs for what a power loss must not take: pushes, ends, cancels. A claim, renewal,
       release or expiry that is lost only makes its job run again (at least once, as a killed
       worker does), and the next sync covers it anyway. */
    if (type == BATCH__QR_JOB || type == BATCH__QR_DONE || type == BATCH__QR_FAIL || type == BATCH__QR_CANCEL) j->unsynced++;
    return r;
}
/* A record of a change: type, id, then `extra` bytes the caller fills in (*out). */
BATCH__PRIVATE unsigned char* batch__qchange(batch_queue* q, int type, uint64_t id, size_t extra) {
    unsigned char* p = batch__qrec(q, 9 + extra);
    if (!p) return NULL;
    p[0] = (unsigned char)type;
    batch__put64(p + 1, id);
    return p;
}
BATCH__PRIVATE batch_result batch__qtime_rec(batch_queue* q, int type, uint64_t id, uint64_t t) {
    unsigned char* p = batch__qchange(q, type, id, 8);
    if (!p) return BATCH_ERR_NOMEM;
    batch__put64(p + 9, t);
    return batch__qrec_done(q, 17);
}
BATCH__PRIVATE batch_result batch__qlease_rec(batch_queue* q, int type, uint64_t id, uint64_t now) {
    unsigned char* p = batch__qchange(q, type, id, 16);
    if (!p) return BATCH_ERR_NOMEM;
    batch__put64(p + 9, q->owner);
    batch__put64(p + 17, now + q->lease_ns);
    return batch__qrec_done(q, 25);
}
BATCH__PRIVATE batch_result batch__qfail_rec(batch_queue* q, uint64_t id, int code, bool final, uint64_t when, const char* msg) {
    size_t ml = 0;   /* the message's bytes, without a NUL: the record has their count */
    while (msg && ml < BATCH_MESSAGE_MAX - 1 && msg[ml]) ml++;
    unsigned char* p = batch__qchange(q, BATCH__QR_FAIL, id, 15 + ml);
    if (!p) return BATCH_ERR_NOMEM;
    batch__put32(p + 9, (uint32_t)code);
    p[13] = final;
    batch__put64(p + 14, when);
    p[22] = (unsigned char)(ml & 0xFF);
    p[23] = (unsigned char)(ml >> 8);
    if (ml) memcpy(p + 24, msg, ml);
    return batch__qrec_done(q, 24 + ml);
}
/* A JOB record: the job's state, name, message and payload. */
BATCH__PRIVATE batch_result batch__qjob_rec(batch_queue* q, uint64_t id, const batch__qjob* s, uint8_t status, const char* name,
                                            size_t nl, const char* msg, size_t ml, const void* payload, size_t size) {
    unsigned char* p = batch__qrec(q, BATCH__QJOB_HDR + nl + ml + size);
    if (!p) return BATCH_ERR_NOMEM;
    p[0] = BATCH__QR_JOB;
    batch__put64(p + 1, id);
    batch__put32(p + 9, (uint32_t)s->priority);
    batch__put32(p + 13, s->max_retries);
    p[17] = status;
    p[18] = (unsigned char)(s->attempts & 0xFF);
    p[19] = (unsigned char)(s->attempts >> 8);
    batch__put32(p + 20, (uint32_t)s->error);
    batch__put64(p + 24, s->pushed);
    batch__put64(p + 32, s->when);
    batch__put64(p + 40, s->owner);
    p[48] = (unsigned char)(nl & 0xFF); p[49] = (unsigned char)(nl >> 8);
    p[50] = (unsigned char)(ml & 0xFF); p[51] = (unsigned char)(ml >> 8);
    if (nl) memcpy(p + BATCH__QJOB_HDR, name, nl);
    if (ml) memcpy(p + BATCH__QJOB_HDR + nl, msg, ml);
    if (size) memcpy(p + BATCH__QJOB_HDR + nl + ml, payload, size);
    return batch__qrec_done(q, BATCH__QJOB_HDR + nl + ml + size);
}

BATCH__PRIVATE batch_result batch__qload(batch_queue* q, bool excl);

/* Writes the framed records at the end of the file (and syncs, MACHINE). On failure the file is
   cut back to where it was and the index read again: 0 or an errno. */
BATCH__PRIVATE int batch__qwrite(batch_queue* q) {
    batch__journal* j = q->j;
    size_t at = 0;
    int e = 0;
    while (at < j->used) {
        size_t put = 0;
        e = j->io.write(j->io.user, j->h, j->buf + at, j->used - at, j->end + at, &put);
        if (!e && (put == 0 || put > j->used - at)) e = EIO;
        if (e) break;
        at += put;
    }
    if (!e) {
        j->end += j->used;
        if (j->dur == BATCH_DURABLE_MACHINE && j->unsynced >= j->sync_every) {
            e = j->io.sync(j->io.user, j->h);
            j->unsynced = 0;
        }
        j->used = 0;
    } else {   /* the index holds records the file does not: read it again */
        (void)j->io.truncate(j->io.user, j->h, j->end);
        j->used = 0;
        (void)batch__qload(q, true);
    }
    return e;
}

/* ---- the index: reset, load, reopen ----------------------------------------------------------- */
BATCH__PRIVATE void batch__qreset(batch_queue* q) {
    q->njobs = 0;
    q->base = 0;
    q->next_id = 1;
    memset(q->count, 0, sizeof q->count);
    if (q->blk) memset(q->blk, 0, q->capblk * sizeof *q->blk);
    q->nready = q->ndelayed = q->nleases = 0;
    q->moved = false;
}

/* The header (written when the file is new), then every record. Lock held (exclusive: excl). */
BATCH__PRIVATE batch_result batch__qload(batch_queue* q, bool excl) {
    batch__journal* j = q->j;
    unsigned char want[BATCH__JHEADER];
    batch__journal_want(want, BATCH__JKIND_QUEUE, 0, 0);
    uint64_t size;
    int e = j->io.size(j->io.user, j->h, &size);
    if (e) return batch__errno_result(e);
    batch__qreset(q);
    batch_result r;
    if (size < BATCH__JHEADER) {
        if (!excl) return BATCH_ERR_CORRUPT;   /* never: a queue file gets its header under the exclusive lock */
        r = batch__journal_start(j, &q->jd, want, size);
        j->err = 0;
        j->unsynced = 0;
        if (r != BATCH_OK) return r;
    } else if ((r = batch__journal_header(j, want)) != BATCH_OK) {
        return r;
    }
    j->end = BATCH__JHEADER;
    return batch__qfollow(q, excl);
}

/* Compaction replaced the file: open the path again, lock it as the old one was, read it. */
BATCH__PRIVATE batch_result batch__qreopen(batch_queue* q, bool excl) {
    batch__journal* j = q->j;
    intptr_t h = -1;
    int e = j->io.open(j->io.user, q->path, &h);
    if (e) return batch__errno_result(e);
    if ((e = batch__file_lock(h, excl)) != 0) { j->io.close(j->io.user, h); return batch__errno_result(e); }
    batch__file_unlock(j->h);
    j->io.close(j->io.user, j->h);
    j->h = h;
    return batch__qload(q, excl);
}

/* ---- one operation: lock, catch up, act, write, unlock ---------------------------------------- */
BATCH__PRIVATE batch_result batch__qflush_pending(batch_queue* q);

/* In a child of fork the handle's file description is the parent's, and so is its lock: the
   child opens the file again and becomes a handle of its own (the parent's claims stay the
   parent's). q->lock held. */
BATCH__PRIVATE batch_result batch__qafter_fork(batch_queue* q, bool* forked) {
    *forked = false;
#if defined(BATCH__HOSTED) && !defined(_WIN32)
    long pid = (long)getpid();
    if (pid == q->pid) return BATCH_OK;
    batch__journal* j = q->j;
    intptr_t h = -1;
    int e = j->io.open(j->io.user, q->path, &h);
    if (e) return batch__errno_result(e);
    j->io.close(j->io.user, j->h);   /* the child's copy: the parent's lock and file stay */
    j->h = h;
    j->used = 0;
    q->pid = pid;
    q->nheld = q->npend = 0;
    do q->owner = batch__rand(&q->rng) ^ ((uint64_t)pid << 40); while (!q->owner);
    *forked = true;
#else
    (void)q;
#endif
    return BATCH_OK;
}

BATCH__PRIVATE batch_result batch__qbegin(batch_queue* q, bool excl) {
    batch__mutex_lock(&q->lock);
    bool forked;
    batch_result r = batch__qafter_fork(q, &forked);
    int e = r == BATCH_OK ? batch__file_lock(q->j->h, excl) : 0;
    q->flocked = r == BATCH_OK && !e;
    if (e) r = batch__errno_result(e);
    if (r == BATCH_OK) r = forked ? batch__qload(q, excl) : batch__qfollow(q, excl);
    for (int i = 0; r == BATCH_OK && q->moved && i < 100; i++) r = batch__qreopen(q, excl);
    if (r == BATCH_OK && excl) r = batch__qflush_pending(q);
    return r;
}

/* Writes what the operation framed, unlocks: r, or the write's failure (then the index is read
   again from the file, which holds none of the failed records). */
BATCH__PRIVATE batch_result batch__qend(batch_queue* q, batch_result r) {
    if (q->j->used && r != BATCH_OK) {   /* the operation failed midway: none of its records */
        q->j->used = 0;
        (void)batch__qload(q, true);
    } else if (q->j->used) {
        int e = batch__qwrite(q);
        if (e) r = batch__errno_result(e);
    }
    if (q->flocked) batch__file_unlock(q->j->h);
    q->flocked = false;
    batch__mutex_unlock(&q->lock);
    return r;
}

/* ---- reading a job's data ----------------------------------------------------------------------- */
BATCH__PRIVATE batch_result batch__qread(batch_queue* q, void* buf, size_t n, uint64_t off) {
    int e = n ? batch__jread(q->j, buf, n, off) : 0;
    return e ? batch__errno_result(e) : BATCH_OK;
}

/* Fills *info of job id (name and message read from the file). */
BATCH__PRIVATE batch_result batch__qinfo(batch_queue* q, uint64_t id, batch_queue_info* info) {
    const batch__qjob* jb = &q->jobs[id - q->base];
    memset(info, 0, sizeof *info);
    info->id = id;
    info->status = (batch_queue_status)q->st[id - q->base];
    info->priority = jb->priority;
    info->max_retries = jb->max_retries;
    info->attempts = jb->attempts;
    info->error = jb->error;
    info->pushed_ns = jb->pushed;
    if (info->status == BATCH_QUEUE_QUEUED) info->not_before_ns = jb->when;
    else if (info->status == BATCH_QUEUE_RUNNING) info->lease_until_ns = jb->when;
    else info->finished_ns = jb->when;
    info->size = jb->size;
    batch_result r = batch__qread(q, info->name, jb->name_len, jb->rec + BATCH__QJOB_HDR);
    if (r == BATCH_OK) r = batch__qread(q, info->message, jb->msg_len, jb->msg_at);
    return r;
}

/* *out: the info and a copy of the payload of job id. */
BATCH__PRIVATE batch_result batch__qfetch(batch_queue* q, uint64_t id, batch_queue_job* out) {
    const batch__qjob* jb = &q->jobs[id - q->base];
    batch_result r = batch__qinfo(q, id, &out->info);
    if (r != BATCH_OK || !jb->size) return r;
    out->payload = BATCH_MALLOC(jb->size, q->alloc_ctx);
    if (!out->payload) return BATCH_ERR_NOMEM;
    r = batch__qread(q, out->payload, jb->size, jb->rec + BATCH__QJOB_HDR + jb->name_len + jb->jmsg_len);
    if (r != BATCH_OK) { BATCH_FREE(out->payload, q->alloc_ctx); out->payload = NULL; }
    return r;
}

BATCH_API void batch_queue_job_free(batch_queue* q, batch_queue_job* job) {
    if (!job) return;
    if (job->payload) BATCH_FREE(job->payload, q ? q->alloc_ctx : NULL);
    memset(job, 0, sizeof *job);
}

/* ---- open and close ----------------------------------------------------------------------------- */
BATCH__PRIVATE bool batch__queue_desc_ok(const batch_queue_desc* d) {
    return d->path && d->path[0] && !BATCH__ENUM_BAD(d->durability, BATCH_DURABLE_BUFFERED + 1) && d->sync_every >= 0 &&
           d->lease_ns <= ((uint64_t)1 << 62) && d->retry_base_ns <= ((uint64_t)1 << 62) &&
           d->retry_max_ns <= ((uint64_t)1 << 62);
}

BATCH__PRIVATE void batch__queue_free(batch_queue* q) {
    void* ctx = q->alloc_ctx;   /* read before q is freed */
    if (q->j) batch__journal_free(q->j);
    BATCH_FREE(q->jobs, ctx); BATCH_FREE(q->st, ctx); BATCH_FREE(q->blk, ctx); BATCH_FREE(q->ready, ctx);
    BATCH_FREE(q->delayed, ctx); BATCH_FREE(q->leases, ctx); BATCH_FREE(q->rb, ctx);
    BATCH_FREE(q->pend, ctx); BATCH_FREE(q->held, ctx); BATCH_FREE(q->path, ctx);
    batch__mutex_destroy(&q->lock);
    BATCH_FREE(q, ctx);
}

BATCH_API batch_result batch_queue_open(batch_queue** out, const batch_queue_desc* desc) {
    if (!out) return BATCH_ERR_INVALID;
    *out = NULL;
    if (!desc || !batch__queue_desc_ok(desc)) return BATCH_ERR_INVALID;
    if (!batch__journal_default_io()) return BATCH_ERR_IO;
    batch_queue* q = (batch_queue*)BATCH_MALLOC(sizeof *q, desc->alloc_ctx);
    if (!q) return BATCH_ERR_NOMEM;
    memset(q, 0, sizeof *q);
    q->alloc_ctx = desc->alloc_ctx;
    if (!batch__mutex_init(&q->lock)) { BATCH_FREE(q, desc->alloc_ctx); return BATCH_ERR_NOMEM; }
    size_t pl = strlen(desc->path);
    q->path = (char*)BATCH_MALLOC(pl + 1, q->alloc_ctx);
    if (!q->path) { batch__queue_free(q); return BATCH_ERR_NOMEM; }
    memcpy(q->path, desc->path, pl + 1);
    q->jd.path = q->path;
    q->jd.durability = desc->durability;
    q->jd.sync_every = desc->sync_every;
    q->lease_ns = desc->lease_ns ? desc->lease_ns : 30000000000ull;
    q->retry_base_ns = desc->retry_base_ns ? desc->retry_base_ns : 1000000000ull;
    q->retry_max_ns = desc->retry_max_ns ? desc->retry_max_ns : 600000000000ull;
    q->jitter = desc->retry_jitter != 0;
    /* the token in our claims: this process, this handle, this instant */
    uint64_t seed = batch__wall_ns() ^ ((uint64_t)(uintptr_t)q << 16) ^ batch_now_ns();
#if defined(BATCH__HOSTED) && !defined(_WIN32)
    q->pid = (long)getpid();
    seed ^= (uint64_t)q->pid << 40;
#elif defined(_WIN32)
    seed ^= (uint64_t)GetCurrentProcessId() << 40;
#endif
    q->rng = seed | 1;
    do q->owner = batch__rand(&q->rng); while (!q->owner);
    uint64_t size;
    batch_result r = batch__journal_new(&q->j, &q->jd, BATCH__QMAX_REC, 4096, &size, q->alloc_ctx);
    if (r != BATCH_OK) { batch__queue_free(q); return r; }
    int e = batch__file_lock(q->j->h, true);
    if (e) { batch__queue_free(q); return batch__errno_result(e); }
    r = batch__qload(q, true);
    for (int i = 0; r == BATCH_OK && q->moved && i < 100; i++) r = batch__qreopen(q, true);
    batch__file_unlock(q->j->h);
    if (r != BATCH_OK) { batch__queue_free(q); return r; }
    *out = q;
    return BATCH_OK;
}

BATCH_API batch_result batch_queue_flush(batch_queue* q) {
    if (!q) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, true);
    if (r == BATCH_OK && q->j->dur == BATCH_DURABLE_MACHINE && q->j->unsynced && !q->j->used) {
        int e = q->j->io.sync(q->j->io.user, q->j->h);
        q->j->unsynced = 0;
        if (e) r = batch__errno_result(e);
    }
    return batch__qend(q, r);
}

BATCH_API batch_result batch_queue_close(batch_queue* q) {
    if (!q) return BATCH_OK;
    batch_result r = q->npend || q->j->unsynced ? batch_queue_flush(q) : BATCH_OK;
    batch__queue_free(q);
    return r;
}

/* ---- push --------------------------------------------------------------------------------------- */
BATCH__PRIVATE bool batch__qpush_ok(const batch_queue_push_desc* d) {
    return (d->payload || !d->size) && d->size <= BATCH_QUEUE_PAYLOAD_MAX && d->max_retries >= 0 &&
           d->max_retries <= 1000 && (!d->name || strlen(d->name) < BATCH_QUEUE_NAME_MAX);
}

BATCH_API batch_result batch_queue_push_many(batch_queue* q, const batch_queue_push_desc* jobs, size_t n,
                                             uint64_t* out_first_id) {
    if (!q || !jobs || !n) return BATCH_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!batch__qpush_ok(&jobs[i])) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, true);
    uint64_t first = q->next_id, now = batch__wall_ns();
    for (size_t i = 0; i < n && r == BATCH_OK; i++) {
        batch__qjob s;
        memset(&s, 0, sizeof s);
        s.priority = jobs[i].priority;
        s.max_retries = (uint16_t)jobs[i].max_retries;
        s.pushed = now;
        const char* name = jobs[i].name ? jobs[i].name : "";
        r = batch__qjob_rec(q, q->next_id, &s, BATCH_QUEUE_QUEUED, name, strlen(name), NULL, 0, jobs[i].payload, jobs[i].size);
        if (r == BATCH_OK && q->j->used >= BATCH__QREAD && i + 1 < n) {   /* big pushes: a write per MiB */
            int e = batch__qwrite(q);
            if (e) r = batch__errno_result(e);
        }
    }
    r = batch__qend(q, r);
    if (r == BATCH_OK && out_first_id) *out_first_id = first;
    return r;
}

BATCH_API batch_result batch_queue_push(batch_queue* q, const batch_queue_push_desc* job, uint64_t* out_id) {
    return batch_queue_push_many(q, job, 1, out_id);
}

/* The ids this handle claimed and has not ended: a held one's end that fails tells how it was
   lost; one never held is BATCH_ERR_INVALID. q->lock held. */
BATCH__PRIVATE size_t batch__qheld_at(const batch_queue* q, uint64_t id) {
    for (size_t i = 0; i < q->nheld; i++) if (q->held[i] == id) return i;
    return SIZE_MAX;
}
BATCH__PRIVATE void batch__qforget(batch_queue* q, uint64_t id) {
    size_t i = batch__qheld_at(q, id);
    if (i != SIZE_MAX) q->held[i] = q->held[--q->nheld];
}
BATCH__PRIVATE bool batch__qkeep(batch_queue* q, uint64_t id) {
    if (!batch__qgrow((void**)&q->held, &q->capheld, q->nheld + 1, sizeof *q->held, q->alloc_ctx)) return false;
    q->held[q->nheld++] = id;
    return true;
}

/* ---- claim -------------------------------------------------------------------------------------- */
/* The retry time of a job whose attempt `attempts` failed, or 0 when it is final. */
BATCH__PRIVATE uint64_t batch__qretry_at(batch_queue* q, const batch__qjob* jb, bool permanent, uint64_t now) {
    if (permanent || jb->attempts > jb->max_retries) return 0;
    int k = jb->attempts ? jb->attempts - 1 : 0;
    return batch__retry_due(q->retry_base_ns, q->retry_max_ns, q->jitter, k, now, 0, &q->rng, q->owner);
}

/* Leases that ran out give their jobs back (EXPIRE records); due retries become ready. */
BATCH__PRIVATE batch_result batch__qtimers(batch_queue* q, uint64_t now) {
    while (q->nleases && q->leases[0].when <= now) {
        batch__qtimer t = batch__qtimer_pop(q->leases, &q->nleases);
        batch__qjob* jb = batch__qget(q, t.id);
        if (!jb || q->st[t.id - q->base] != BATCH_QUEUE_RUNNING || jb->when != t.when) continue;   /* stale */
        bool final = jb->attempts > jb->max_retries;   /* else claimable at once: the lease was the wait */
        unsigned char* p = batch__qchange(q, BATCH__QR_EXPIRE, t.id, 9);
        if (!p) return BATCH_ERR_NOMEM;
        p[9] = final;
        batch__put64(p + 10, final ? now : 0);
        batch_result r = batch__qrec_done(q, 18);
        if (r != BATCH_OK) return r;
    }
    while (q->ndelayed && q->delayed[0].when <= now) {
        batch__qtimer t = batch__qtimer_pop(q->delayed, &q->ndelayed);
        batch__qjob* jb = batch__qget(q, t.id);
        if (jb && q->st[t.id - q->base] == BATCH_QUEUE_QUEUED && jb->when == t.when && !batch__qready_push(q, t.id))
            return BATCH_ERR_NOMEM;
    }
    return BATCH_OK;
}

BATCH_API batch_result batch_queue_claim(batch_queue* q, batch_queue_job* out) {
    if (!out) return BATCH_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!q) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, true);
    uint64_t now = batch__wall_ns(), id = 0;
    if (r == BATCH_OK) r = batch__qtimers(q, now);
    while (r == BATCH_OK && q->nready && !id) {
        uint64_t c = batch__qready_pop(q);
        const batch__qjob* jb = batch__qget(q, c);
        if (jb && q->st[c - q->base] == BATCH_QUEUE_QUEUED && jb->when <= now) id = c;
    }
    bool empty = r == BATCH_OK && !id;   /* not an error: the expired leases are still written */
    if (r == BATCH_OK && id) r = batch__qlease_rec(q, BATCH__QR_CLAIM, id, now);
    if (r == BATCH_OK && id) {   /* written before the job is read: its offsets are in the file */
        int e = batch__qwrite(q);
        if (e) r = batch__errno_result(e);
        else if ((r = batch__qfetch(q, id, out)) == BATCH_OK && !batch__qkeep(q, id)) r = BATCH_ERR_NOMEM;
        if (r != BATCH_OK) batch_queue_job_free(q, out);   /* claimed in the file: its lease runs out */
    }
    r = batch__qend(q, r);
    return r == BATCH_OK && empty ? BATCH_ERR_EMPTY : r;
}

/* ---- the end of a claimed job ------------------------------------------------------------------- */
/* Does this handle hold job id? BATCH_OK, or why not. */
BATCH__PRIVATE batch_result batch__qheld(batch_queue* q, uint64_t id) {
    const batch__qjob* jb = batch__qget(q, id);
    if (!jb) return BATCH_ERR_NOT_FOUND;
    if (batch__qheld_at(q, id) == SIZE_MAX) return BATCH_ERR_INVALID;
    uint8_t st = q->st[id - q->base];
    if (st == BATCH_QUEUE_RUNNING && jb->owner == q->owner) return BATCH_OK;
    return st == BATCH_QUEUE_CANCELLED ? BATCH_ERR_CANCELLED : BATCH_ERR_TIMEOUT;   /* lost to a claim */
}
/* The file says this handle holds it (the check of a BUFFERED end when it is written). */
BATCH__PRIVATE bool batch__qholds(batch_queue* q, uint64_t id) {
    const batch__qjob* jb = batch__qget(q, id);
    return jb && q->st[id - q->base] == BATCH_QUEUE_RUNNING && jb->owner == q->owner;
}

/* Frames the record of an end (DONE, FAIL, RELEASE) of a job this handle holds. */
BATCH__PRIVATE batch_result batch__qend_rec(batch_queue* q, int type, uint64_t id, int code, bool permanent, const char* msg) {
    if (!batch__qholds(q, id)) return BATCH_ERR_INVALID;
    uint64_t now = batch__wall_ns();
    if (type == BATCH__QR_DONE) return batch__qtime_rec(q, BATCH__QR_DONE, id, now);
    if (type == BATCH__QR_RELEASE) {
        if (!batch__qchange(q, BATCH__QR_RELEASE, id, 0)) return BATCH_ERR_NOMEM;
        return batch__qrec_done(q, 9);
    }
    uint64_t at = batch__qretry_at(q, batch__qget(q, id), permanent, now);
    return batch__qfail_rec(q, id, code, at == 0, at ? at : now, msg);
}

/* BUFFERED: the ends wait in the handle; each is checked again when it is written (a job
   cancelled or lost meanwhile keeps what happened to it). Exclusive lock held. */
BATCH__PRIVATE batch_result batch__qflush_pending(batch_queue* q) {
    for (size_t i = 0; i < q->npend; i++) {
        const batch__qpend* e = &q->pend[i];
        batch_result r = batch__qend_rec(q, e->type, e->id, e->code, e->permanent, e->msg);
        if (r == BATCH_ERR_NOMEM) return r;
    }
    q->npend = 0;
    return BATCH_OK;
}

BATCH__PRIVATE batch_result batch__qfinish(batch_queue* q, int type, uint64_t id, int code, bool permanent, const char* msg) {
    if (!q || !id) return BATCH_ERR_INVALID;
    if (q->j->dur == BATCH_DURABLE_BUFFERED) {
        batch__mutex_lock(&q->lock);
        batch_result r = batch__qheld(q, id);
        if (r == BATCH_OK && !batch__qgrow((void**)&q->pend, &q->cappend, q->npend + 1, sizeof *q->pend, q->alloc_ctx))
            r = BATCH_ERR_NOMEM;
        if (r == BATCH_OK) {
            batch__qpend* e = &q->pend[q->npend++];
            e->type = (uint8_t)type;
            e->permanent = permanent;
            e->id = id;
            e->code = code;
            e->msg[0] = 0;
            if (msg) { strncpy(e->msg, msg, BATCH_MESSAGE_MAX - 1); e->msg[BATCH_MESSAGE_MAX - 1] = 0; }
        }
        if (r == BATCH_OK || r == BATCH_ERR_CANCELLED || r == BATCH_ERR_TIMEOUT) batch__qforget(q, id);
        batch__mutex_unlock(&q->lock);
        return r;
    }
    batch_result r = batch__qbegin(q, true);
    if (r == BATCH_OK) r = batch__qheld(q, id);
    if (r == BATCH_OK) r = batch__qend_rec(q, type, id, code, permanent, msg);
    if (r == BATCH_OK || r == BATCH_ERR_CANCELLED || r == BATCH_ERR_TIMEOUT) batch__qforget(q, id);
    batch_result w = batch__qend(q, r);
    if (r == BATCH_OK && w != BATCH_OK) {   /* not written: still held */
        batch__mutex_lock(&q->lock);
        (void)batch__qkeep(q, id);
        batch__mutex_unlock(&q->lock);
    }
    return w;
}

BATCH_API batch_result batch_queue_complete(batch_queue* q, uint64_t id) {
    return batch__qfinish(q, BATCH__QR_DONE, id, 0, false, NULL);
}
BATCH_API batch_result batch_queue_fail(batch_queue* q, uint64_t id, int code, int permanent, const char* message) {
    if (!code) return BATCH_ERR_INVALID;
    return batch__qfinish(q, BATCH__QR_FAIL, id, code, permanent != 0, message);
}
BATCH_API batch_result batch_queue_release(batch_queue* q, uint64_t id) {
    return batch__qfinish(q, BATCH__QR_RELEASE, id, 0, false, NULL);
}
BATCH_API batch_result batch_queue_renew(batch_queue* q, uint64_t id) {
    if (!q || !id) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, true);
    if (r == BATCH_OK) r = batch__qheld(q, id);
    if (r == BATCH_OK) r = batch__qlease_rec(q, BATCH__QR_RENEW, id, batch__wall_ns());
    return batch__qend(q, r);   /* a lost job stays in the held list: its end tells why too */
}

BATCH_API batch_result batch_queue_cancel(batch_queue* q, uint64_t id) {
    if (!q || !id) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, true);
    const batch__qjob* jb = r == BATCH_OK ? batch__qget(q, id) : NULL;
    if (r == BATCH_OK && !jb) r = BATCH_ERR_NOT_FOUND;
    if (r == BATCH_OK && q->st[id - q->base] > BATCH_QUEUE_RUNNING) r = BATCH_ERR_INVALID;
    if (r == BATCH_OK) r = batch__qtime_rec(q, BATCH__QR_CANCEL, id, batch__wall_ns());
    return batch__qend(q, r);
}

/* ---- reading the queue -------------------------------------------------------------------------- */
BATCH_API batch_result batch_queue_get(batch_queue* q, uint64_t id, batch_queue_job* out) {
    if (!out) return BATCH_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!q || !id) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, false);
    if (r == BATCH_OK && !batch__qget(q, id)) r = BATCH_ERR_NOT_FOUND;
    if (r == BATCH_OK) r = batch__qfetch(q, id, out);
    if (r != BATCH_OK) batch_queue_job_free(q, out);
    return batch__qend(q, r);
}

BATCH_API batch_result batch_queue_list(batch_queue* q, int status, uint64_t offset, batch_queue_info* out,
                                        size_t limit, size_t* n) {
    if (n) *n = 0;
    if (!q || !n || (limit && !out) || status < -1 || status >= BATCH_QUEUE_STATUS_COUNT_) return BATCH_ERR_INVALID;
    batch_result r = batch__qbegin(q, false);
    size_t got = 0, i = 0;
    int k = status < 0 ? BATCH_QUEUE_STATUS_COUNT_ : status;
    for (; r == BATCH_OK && i < q->njobs && offset; i += (size_t)1 << BATCH__QBLOCK_BITS) {   /* whole blocks */
        uint32_t c = q->blk[(i >> BATCH__QBLOCK_BITS) * BATCH__QBLK + (size_t)k];
        if (offset < c) break;
        offset -= c;
    }
    for (; r == BATCH_OK && i < q->njobs && got < limit; i++) {
        uint8_t st = q->st[i];
        if (st == BATCH__QGONE || (status >= 0 && st != status)) continue;
        if (offset) { offset--; continue; }
        r = batch__qinfo(q, q->base + i, &out[got]);
        if (r == BATCH_OK) got++;
    }
    *n = got;
    return batch__qend(q, r);
}

BATCH_API batch_result batch_queue_stats_get(batch_queue* q, batch_queue_stats* out) {
    if (!q || !out) return BATCH_ERR_INVALID;
    memset(out, 0, sizeof *out);
    batch_result r = batch__qbegin(q, false);
    if (r == BATCH_OK) {
        uint64_t now = batch__wall_ns();
        for (int s = 0; s < BATCH_QUEUE_STATUS_COUNT_; s++) { out->count[s] = q->count[s]; out->total += q->count[s]; }
        for (size_t i = 0; i < q->njobs; i++) {
            if (q->st[i] == BATCH_QUEUE_QUEUED && q->jobs[i].when > now) out->delayed++;
            else if (q->st[i] == BATCH_QUEUE_RUNNING && q->jobs[i].when <= now) out->expired++;
        }
        out->file_bytes = q->j->end;
        out->next_id = q->next_id;
    }
    return batch__qend(q, r);
}

/* ---- compaction --------------------------------------------------------------------------------- */
/* Appends job id's JOB record, in its present state, to the new file t. */
BATCH__PRIVATE batch_result batch__qcopy_job(batch_queue* q, batch__journal* t, uint64_t id, unsigned char** scratch, size_t* cap) {
    const batch__qjob* jb = &q->jobs[id - q->base];
    size_t len = BATCH__QJOB_HDR + jb->name_len + jb->msg_len + jb->size;
    if (!batch__qgrow((void**)scratch, cap, len, 1, q->alloc_ctx)) return BATCH_ERR_NOMEM;
    unsigned char* p = *scratch;
    p[0] = BATCH__QR_JOB;
    batch__put64(p + 1, id);
    batch__put32(p + 9, (uint32_t)jb->priority);
    batch__put32(p + 13, jb->max_retries);
    p[17] = q->st[id - q->base];
    p[18] = (unsigned char)(jb->attempts & 0xFF);
    p[19] = (unsigned char)(jb->attempts >> 8);
    batch__put32(p + 20, (uint32_t)jb->error);
    batch__put64(p + 24, jb->pushed);
    batch__put64(p + 32, jb->when);
    batch__put64(p + 40, jb->owner);
    p[48] = (unsigned char)(jb->name_len & 0xFF); p[49] = (unsigned char)(jb->name_len >> 8);
    p[50] = (unsigned char)(jb->msg_len & 0xFF); p[51] = (unsigned char)(jb->msg_len >> 8);
    unsigned char* at = p + BATCH__QJOB_HDR;
    batch_result r = batch__qread(q, at, jb->name_len, jb->rec + BATCH__QJOB_HDR);
    if (r == BATCH_OK) r = batch__qread(q, at + jb->name_len, jb->msg_len, jb->msg_at);
    if (r == BATCH_OK)
        r = batch__qread(q, at + jb->name_len + jb->msg_len, jb->size, jb->rec + BATCH__QJOB_HDR + jb->name_len + jb->jmsg_len);
    return r == BATCH_OK ? batch__journal_append(t, p, len) : r;
}

/* Writes the compacted queue to tmp (synced): the NEXT record, then one JOB record per job kept. */
BATCH__PRIVATE batch_result batch__qwrite_compact(batch_queue* q, const char* tmp, bool drop) {
    batch_journal_desc d = q->jd;
    d.path = tmp;
    d.durability = BATCH_DURABLE_BUFFERED;
    batch__journal* t;
    uint64_t size;
    batch_result r = batch__journal_new(&t, &d, BATCH__QMAX_REC, BATCH__JBUFFERED + 4096, &size, q->alloc_ctx);
    if (r != BATCH_OK) return r;
    unsigned char want[BATCH__JHEADER], next[9];
    batch__journal_want(want, BATCH__JKIND_QUEUE, 0, 0);
    int e = size ? t->io.truncate(t->io.user, t->h, 0) : 0;   /* left by a compaction that crashed */
    r = e ? batch__errno_result(e) : batch__journal_start(t, &d, want, 0);
    next[0] = BATCH__QR_NEXT;
    batch__put64(next + 1, q->next_id);
    if (r == BATCH_OK) r = batch__journal_append(t, next, sizeof next);
    unsigned char* scratch = NULL;
    size_t cap = 0;
    for (size_t i = 0; r == BATCH_OK && i < q->njobs; i++) {
        uint8_t st = q->st[i];
        if (st == BATCH__QGONE || (drop && st > BATCH_QUEUE_RUNNING)) continue;
        r = batch__qcopy_job(q, t, q->base + i, &scratch, &cap);
    }
    BATCH_FREE(scratch, q->alloc_ctx);
    if (r == BATCH_OK && (batch__jflush(t) || (t->unsynced = 1, batch__jsync(t)))) r = batch__errno_result(t->err);
    batch__journal_free(t);
    return r;
}

BATCH_API batch_result batch_queue_compact(batch_queue* q, int drop_finished) {
    if (!q) return BATCH_ERR_INVALID;
    size_t pl = strlen(q->path);
    char* tmp = (char*)BATCH_MALLOC(pl + 9, q->alloc_ctx);
    if (!tmp) return BATCH_ERR_NOMEM;
    memcpy(tmp, q->path, pl);
    memcpy(tmp + pl, ".compact", 9);
    batch_result r = batch__qbegin(q, true);
    if (r == BATCH_OK && q->j->used) {   /* BUFFERED ends first, so that the copy has them */
        int e = batch__qwrite(q);
        if (e) r = batch__errno_result(e);
    }
    if (r == BATCH_OK) r = batch__qwrite_compact(q, tmp, drop_finished != 0);
    int e = r == BATCH_OK ? batch__file_rename(tmp, q->path) : 0;
    if (e) r = e == EBUSY ? BATCH_ERR_BUSY : batch__errno_result(e);
    if (r != BATCH_OK) batch__file_remove(tmp);   /* a copy that did not replace the queue */
    if (r == BATCH_OK && q->jd.durability == BATCH_DURABLE_MACHINE && (e = batch__sync_dir(q->path)) != 0) r = batch__errno_result(e);
    if (r == BATCH_OK) {   /* tell the others, who hold the old file open, to follow */
        if (!batch__qchange(q, BATCH__QR_MOVED, 0, 0)) r = BATCH_ERR_NOMEM;
        else if ((r = batch__qrec_done(q, 9)) == BATCH_OK && (e = batch__qwrite(q)) != 0) r = batch__errno_result(e);
        if (r == BATCH_OK) r = batch__qreopen(q, true);
    }
    BATCH_FREE(tmp, q->alloc_ctx);
    return batch__qend(q, r);
}

/* ---- serving: a job that claims and runs --------------------------------------------------------
   A thread of the serve's own claims jobs while it has free slots, hands each to the pool, renews
   the leases of those running every lease / 3, and looks for new jobs every poll_ns when the
   queue had none. Each job runs in a slot: its context's stop flag is the slot's, set when the
   serve stops or a renewal finds the job cancelled or lost. */
typedef struct batch__qrun {      /* one run, for the reports */
    uint64_t id;
    char* name;                   /* NULL: none */
    char* msg;
    int status;                   /* a batch_task_status */
    int attempts, error, worker;
    uint64_t start_ns, end_ns;
} batch__qrun;

struct batch__qserve;
typedef struct batch__qslot {
    struct batch__qserve* s;
    batch_queue_job job;
    _Atomic int stop;
    bool busy, lost;              /* lost: a renewal found the job cancelled or taken */
    char msg[BATCH_MESSAGE_MAX];
} batch__qslot;

typedef struct batch__qserve {
    batch__job_head head;         /* first: the job layer dispatches on it */
    batch_pool* pool;
    batch_queue* q;
    batch_queue_serve_desc d;
    void* alloc_ctx;
    batch__mutex m;
    batch__cond cv;
    batch__thread thr;
    batch__qslot* slots;
    int nslots, running;
    bool inline_run;              /* a pool without workers: jobs run on the serve's thread */
    bool done, joined, stopping;
    _Atomic int cancel;
    uint64_t claimed, launch_ns, end_ns;
    batch_job_summary sum;        /* completed, failed, cancelled, retries, busy_ns, peak */
    batch_result result;          /* an error of the queue, or BATCH_OK */
    batch__qrun* runs;
    size_t nruns, capruns;
} batch__qserve;

/* Notes a run for the reports (out of memory: the run is missing from them). m held. */
BATCH__PRIVATE void batch__qserve_note(batch__qserve* s, const batch__qslot* sl, int status, int error, int worker,
                                      uint64_t t0, uint64_t t1) {
    if (!batch__qgrow((void**)&s->runs, &s->capruns, s->nruns + 1, sizeof *s->runs, s->alloc_ctx)) return;
    batch__qrun* r = &s->runs[s->nruns++];
    memset(r, 0, sizeof *r);
    r->id = sl->job.info.id;
    r->status = status;
    r->attempts = sl->job.info.attempts;
    r->error = error;
    r->worker = worker;
    r->start_ns = t0;
    r->end_ns = t1;
    const char* texts[2] = { sl->job.info.name, error ? sl->msg : "" };
    char** dst[2] = { &r->name, &r->msg };
    for (int i = 0; i < 2; i++) {
        size_t n = strlen(texts[i]);
        if (!n) continue;
        *dst[i] = (char*)BATCH_MALLOC(n + 1, s->alloc_ctx);
        if (*dst[i]) memcpy(*dst[i], texts[i], n + 1);
    }
}

/* The outcome of a run that returned rc: written to the queue; the run's task status. */
BATCH__PRIVATE int batch__qserve_settle(batch__qserve* s, batch__qslot* sl, int rc, const batch_ctx* ctx, bool* retried) {
    batch_queue* q = s->q;
    uint64_t id = sl->job.info.id;
    batch_result r;
    int status;
    *retried = false;
    batch__mutex_lock(&s->m);   /* lost is written by the renewals, under m */
    bool give_back = atomic_load_explicit(&sl->stop, memory_order_relaxed) && !sl->lost;
    batch__mutex_unlock(&s->m);
    if (rc == 0) {
        r = batch_queue_complete(q, id);
        status = r == BATCH_OK ? BATCH_TASK_COMPLETED : BATCH_TASK_CANCELLED;
    } else if (give_back) {
        r = batch_queue_release(q, id);   /* the serve stops: the job goes back, its attempt not counted */
        status = BATCH_TASK_CANCELLED;
    } else {
        bool permanent = (ctx->msg_set & BATCH__MSG_PERMANENT) != 0;
        r = batch_queue_fail(q, id, rc, permanent, (ctx->msg_set & BATCH__MSG_SET) ? sl->msg : NULL);
        status = r == BATCH_OK ? BATCH_TASK_FAILED : BATCH_TASK_CANCELLED;
        *retried = r == BATCH_OK && !permanent && sl->job.info.attempts <= sl->job.info.max_retries;
    }
    if (r != BATCH_OK && r != BATCH_ERR_CANCELLED && r != BATCH_ERR_TIMEOUT && r != BATCH_ERR_INVALID) {
        batch__mutex_lock(&s->m);
        if (s->result == BATCH_OK) s->result = r;
        batch__mutex_unlock(&s->m);
    }
    return status;
}

/* A pool task: runs the slot's job, writes its outcome, frees the slot. */
BATCH__PRIVATE void batch__qserve_run(batch_pool* pool, void* arg) {
    batch__qslot* sl = (batch__qslot*)arg;
    batch__qserve* s = sl->s;
    batch_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.pool = pool;
    ctx.owner = (batch_job*)s;
    ctx.msg = sl->msg;
    ctx.stop = &sl->stop;
    ctx.worker = batch_pool_worker_index(pool);
    ctx.attempt = sl->job.info.attempts;
    ctx.batch_index = (size_t)sl->job.info.id;
    sl->msg[0] = 0;
    batch__job_frame f;
    batch__frame_push(&f, (batch_job*)s);
    uint64_t t0 = batch_now_ns();
    int rc = s->d.fn(&ctx, &sl->job, s->d.user_data);
    uint64_t t1 = batch_now_ns();
    batch__frame_pop(&f);
    bool retried;
    int status = batch__qserve_settle(s, sl, rc, &ctx, &retried);
    batch_event_info ev;
    memset(&ev, 0, sizeof ev);
    ev.name = sl->job.info.name[0] ? sl->job.info.name : NULL;
    ev.batch_index = (size_t)sl->job.info.id;
    ev.error = status == BATCH_TASK_FAILED ? rc : 0;
    batch__mutex_lock(&s->m);
    s->sum.busy_ns += t1 - t0;
    if (status == BATCH_TASK_COMPLETED) s->sum.completed++;
    else if (status == BATCH_TASK_FAILED) s->sum.failed++;
    else s->sum.cancelled++;
    if (retried) s->sum.retries++;
    if (s->d.keep_records) batch__qserve_note(s, sl, status, ev.error, ctx.worker, t0, t1);
    batch__mutex_unlock(&s->m);
    if (status == BATCH_TASK_COMPLETED || status == BATCH_TASK_FAILED)
        batch__progress_emit((batch_job*)s, status == BATCH_TASK_COMPLETED ? BATCH_EVENT_TASK_COMPLETED : BATCH_EVENT_TASK_FAILED, &ev);
    batch_queue_job_free(s->q, &sl->job);
    batch__mutex_lock(&s->m);
    sl->busy = false;
    s->running--;
    batch__cond_broadcast(&s->cv);
    batch__mutex_unlock(&s->m);
}

/* Claims into free slots and starts them; m held (released around the queue's calls). Returns
   true when the queue had nothing to claim. */
BATCH__PRIVATE bool batch__qserve_fill(batch__qserve* s) {
    while (!s->stopping && s->running < s->nslots && (!s->d.max_jobs || s->claimed < s->d.max_jobs)) {
        batch__qslot* sl = NULL;
        for (int i = 0; i < s->nslots && !sl; i++) if (!s->slots[i].busy) sl = &s->slots[i];
        sl->busy = true;
        s->running++;
        batch__mutex_unlock(&s->m);
        batch_result r = batch_queue_claim(s->q, &sl->job);
        batch__mutex_lock(&s->m);
        if (r != BATCH_OK) {
            sl->busy = false;
            s->running--;
            if (r == BATCH_ERR_EMPTY) return true;
            if (s->result == BATCH_OK) s->result = r;
            return false;
        }
        s->claimed++;
        atomic_store_explicit(&sl->stop, 0, memory_order_relaxed);
        sl->lost = false;
        if ((uint64_t)s->running > s->sum.peak_concurrency) s->sum.peak_concurrency = (uint64_t)s->running;
        batch__mutex_unlock(&s->m);
        if (s->inline_run) {
            batch__qserve_run(s->pool, sl);
        } else {
            batch_work w;
            memset(&w, 0, sizeof w);
            w.fn = batch__qserve_run;
            w.user_data = sl;
            r = batch_pool_submit(s->pool, &w);
            if (r != BATCH_OK) {   /* the pool shuts down: give the job back */
                (void)batch_queue_release(s->q, sl->job.info.id);
                batch_queue_job_free(s->q, &sl->job);
            }
        }
        batch__mutex_lock(&s->m);
        if (r != BATCH_OK) {
            sl->busy = false;
            s->running--;
            s->claimed--;
            if (s->result == BATCH_OK) s->result = r;
        }
    }
    return false;
}

/* Renews the leases of the running jobs; one found cancelled or taken is told to stop. m held. */
BATCH__PRIVATE void batch__qserve_renew(batch__qserve* s) {
    for (int i = 0; i < s->nslots; i++) {
        batch__qslot* sl = &s->slots[i];
        if (!sl->busy || sl->lost || !sl->job.info.id) continue;
        uint64_t id = sl->job.info.id;
        batch__mutex_unlock(&s->m);
        batch_result r = batch_queue_renew(s->q, id);
        batch__mutex_lock(&s->m);
        if (sl->busy && sl->job.info.id == id && (r == BATCH_ERR_CANCELLED || r == BATCH_ERR_TIMEOUT)) {
            sl->lost = true;
            atomic_store_explicit(&sl->stop, 1, memory_order_relaxed);
        }
    }
}

/* Nothing QUEUED or RUNNING is left in the queue (drain): the counts only, not the O(jobs)
   scan of batch_queue_stats_get. m held. */
BATCH__PRIVATE bool batch__qserve_drained(batch__qserve* s) {
    batch__mutex_unlock(&s->m);
    batch_queue* q = s->q;
    batch_result r = batch__qbegin(q, false);
    bool drained = q->count[BATCH_QUEUE_QUEUED] == 0 && q->count[BATCH_QUEUE_RUNNING] == 0;
    r = batch__qend(q, r);
    batch__mutex_lock(&s->m);
    if (r != BATCH_OK) { if (s->result == BATCH_OK) s->result = r; return true; }
    return drained;
}

BATCH__PRIVATE int batch__qserve_main(void* arg) {
    batch__qserve* s = (batch__qserve*)arg;
    uint64_t lease = s->q->lease_ns, next_renew = batch_now_ns() + lease / 3;
    batch__mutex_lock(&s->m);
    for (;;) {
        bool limit = s->d.max_jobs && s->claimed >= s->d.max_jobs;
        if (!s->stopping && (atomic_load_explicit(&s->cancel, memory_order_relaxed) || s->result != BATCH_OK)) {
            s->stopping = true;
            for (int i = 0; i < s->nslots; i++) atomic_store_explicit(&s->slots[i].stop, 1, memory_order_relaxed);
        }
        if ((s->stopping || limit) && s->running == 0) break;
        bool empty = batch__qserve_fill(s);
        if (empty && s->d.drain && s->running == 0 && batch__qserve_drained(s)) break;
        uint64_t now = batch_now_ns();
        if (now >= next_renew) {
            batch__qserve_renew(s);
            next_renew = batch_now_ns() + lease / 3;
        }
        batch__mutex_unlock(&s->m);
        batch__progress_tick((batch_job*)s, now);
        batch__mutex_lock(&s->m);
        if (!empty && s->running < s->nslots && !limit && !s->stopping) continue;   /* room and work: claim on */
        uint64_t until = now + (empty ? s->d.poll_ns : lease / 3);
        if (until > next_renew) until = next_renew;
        if (s->running || empty) batch__cond_wait_slice(&s->cv, &s->m, until);
    }
    s->end_ns = batch_now_ns();
    bool cancelled = atomic_load_explicit(&s->cancel, memory_order_relaxed) != 0;
    batch__mutex_unlock(&s->m);
    batch__progress_emit((batch_job*)s, cancelled ? BATCH_EVENT_JOB_CANCELLED : BATCH_EVENT_JOB_COMPLETED, NULL);
    batch__mutex_lock(&s->m);
    s->done = true;
    batch__cond_broadcast(&s->cv);
    batch__mutex_unlock(&s->m);
    return 0;
}

/* ---- the serve as a batch_job ------------------------------------------------------------------- */
BATCH__PRIVATE void batch__qserve_summary(batch__qserve* s, batch_job_summary* out) {
    *out = s->sum;
    out->total = s->sum.completed + s->sum.failed + s->sum.cancelled;
    out->wall_ns = s->end_ns - s->launch_ns;
    bool cancelled = atomic_load_explicit(&s->cancel, memory_order_relaxed) != 0;
    if (s->result != BATCH_OK) { out->status = BATCH_JOB_FAILED; out->result = s->result; }
    else if (cancelled) { out->status = BATCH_JOB_CANCELLED; out->result = BATCH_ERR_CANCELLED; }
    else if (s->sum.failed) { out->status = BATCH_JOB_PARTIAL_FAILURE; out->result = BATCH_PARTIAL; }
    else { out->status = BATCH_JOB_COMPLETED; out->result = BATCH_OK; }
}

BATCH__PRIVATE batch_result batch__qserve_wait(batch_job* pub, batch_job_summary* out) {
    batch__qserve* s = (batch__qserve*)pub;
    if (batch__job_self_call(pub)) return BATCH_ERR_BUSY;
    batch__mutex_lock(&s->m);
    while (!s->done) batch__cond_wait_slice(&s->cv, &s->m, batch_now_ns() + BATCH__WAIT_SLICE_NS);
    bool join = !s->joined;
    s->joined = true;
    batch__mutex_unlock(&s->m);
    if (join) batch__thread_join(s->thr);
    batch_job_summary sum;
    batch__qserve_summary(s, &sum);
    if (out) *out = sum;
    return sum.result;
}

BATCH__PRIVATE batch_result batch__qserve_cancel(batch_job* pub) {
    batch__qserve* s = (batch__qserve*)pub;
    atomic_store_explicit(&s->cancel, 1, memory_order_relaxed);
    batch__mutex_lock(&s->m);   /* the flag is seen at the serve thread's next look, which this wakes */
    batch__cond_broadcast(&s->cv);
    batch__mutex_unlock(&s->m);
    return BATCH_OK;
}

BATCH__PRIVATE void batch__qserve_free(batch_job* pub) {
    batch__qserve* s = (batch__qserve*)pub;
    void* ctx = s->alloc_ctx;
    for (size_t i = 0; i < s->nruns; i++) { BATCH_FREE(s->runs[i].name, ctx); BATCH_FREE(s->runs[i].msg, ctx); }
    BATCH_FREE(s->runs, ctx);
    BATCH_FREE(s->slots, ctx);
    batch__cond_destroy(&s->cv);
    batch__mutex_destroy(&s->m);
    BATCH_FREE(s, ctx);
}

BATCH__PRIVATE void batch__qserve_counts(batch_job* pub, batch_progress* out, uint64_t* busy) {
    batch__qserve* s = (batch__qserve*)pub;
    batch__mutex_lock(&s->m);
    out->total = s->d.max_jobs;   /* 0 (unknown) unless a limit says how many */
    out->succeeded = s->sum.completed;
    out->failed = s->sum.failed;
    out->cancelled = s->sum.cancelled;
    out->retried = s->sum.retries;
    out->running = (uint64_t)s->running;
    out->processed = out->succeeded + out->failed + out->cancelled;
    *busy = s->sum.busy_ns;
    batch__mutex_unlock(&s->m);
}

/* Reports: the serve shows as a graph of the runs (a task per run, named after its job). */
BATCH__PRIVATE batch_result batch__qserve_facts(batch_job* pub, batch__job_facts* out) {
    batch__qserve* s = (batch__qserve*)pub;
    if (!s->done || !s->joined) return BATCH_ERR_BUSY;
    memset(out, 0, sizeof *out);
    out->kind = BATCH__KIND_GRAPH;
    out->name = s->q->path;
    batch__qserve_summary(s, &out->summary);
    out->launch_ns = s->launch_ns;
    out->nrecords = s->nruns;
    out->keeps_records = s->d.keep_records != 0;
    out->timeline = s->nruns > 0;
    out->workers = s->inline_run ? 1 : batch_pool_workers(s->pool);
    return BATCH_OK;
}
BATCH__PRIVATE void batch__qserve_record(batch_job* pub, size_t i, batch__record* out) {
    const batch__qrun* r = &((batch__qserve*)pub)->runs[i];
    memset(out, 0, sizeof *out);
    out->index = (size_t)(r->id - 1);
    out->name = r->name;
    out->status = r->status;
    out->status_string = batch_task_status_string((batch_task_status)r->status);
    out->attempts = r->attempts;
    out->retries = r->attempts ? r->attempts - 1 : 0;
    out->error = r->error;
    out->message = r->msg;
    out->worker = r->worker;
    out->start_ns = r->start_ns;
    out->end_ns = r->end_ns;
    out->attempt = r->attempts;
}
BATCH__PRIVATE const void* batch__qserve_earlier(batch_job* pub, const void* cursor, batch__record* out) {
    (void)pub; (void)cursor; (void)out;
    return NULL;   /* each run is a record of its own already */
}
static const batch__job_ops batch__qserve_ops = { batch__qserve_wait, batch__qserve_cancel, batch__qserve_free,
                                                  batch__qserve_counts, batch__job_self_call,
                                                  NULL /* a run's context has its own message buffer */,
                                                  batch__qserve_facts, batch__qserve_record, batch__qserve_earlier };

BATCH_API batch_result batch_queue_serve(batch_pool* pool, batch_queue* q, const batch_queue_serve_desc* desc,
                                         batch_job** out_job) {
    if (!out_job) return BATCH_ERR_INVALID;
    *out_job = NULL;
    if (!pool || !q || !desc || !desc->fn || desc->concurrency < 0 || desc->poll_ns > ((uint64_t)1 << 62) ||
        !batch__progress_desc_ok(&desc->progress))
        return BATCH_ERR_INVALID;
    if (batch__pool_refuses_jobs(pool)) return BATCH_ERR_SHUTDOWN;
    void* ctx = batch__pool_alloc_ctx(pool);
    batch__qserve* s = (batch__qserve*)BATCH_MALLOC(sizeof *s, ctx);
    if (!s) return BATCH_ERR_NOMEM;
    memset(s, 0, sizeof *s);
    s->alloc_ctx = ctx;
    s->head.ops = &batch__qserve_ops;
    s->pool = pool;
    s->q = q;
    s->d = *desc;
    if (!s->d.poll_ns) s->d.poll_ns = 50000000u;
    int workers = batch_pool_workers(pool);
    s->inline_run = workers == 0;
    s->nslots = s->inline_run ? 1 : desc->concurrency ? desc->concurrency : workers;
    s->launch_ns = batch_now_ns();
    batch__progress_init(&s->head.prog, &desc->progress, workers ? workers : 1, s->launch_ns);
    s->slots = (batch__qslot*)BATCH_MALLOC(sizeof *s->slots * (size_t)s->nslots, ctx);
    bool m_ok = false, cv_ok = false;
    if (!s->slots || !(m_ok = batch__mutex_init(&s->m)) || !(cv_ok = batch__cond_init(&s->cv))) {
        if (cv_ok) batch__cond_destroy(&s->cv);
        if (m_ok) batch__mutex_destroy(&s->m);
        BATCH_FREE(s->slots, ctx);
        BATCH_FREE(s, ctx);
        return BATCH_ERR_NOMEM;
    }
    memset(s->slots, 0, sizeof *s->slots * (size_t)s->nslots);
    for (int i = 0; i < s->nslots; i++) { s->slots[i].s = s; atomic_init(&s->slots[i].stop, 0); }
    atomic_init(&s->cancel, 0);
    if (!batch__thread_create(&s->thr, batch__qserve_main, s)) {
        s->joined = true;
        batch__qserve_free((batch_job*)s);
        return BATCH_ERR_THREAD;
    }
    *out_job = (batch_job*)s;
    return BATCH_OK;
}

#endif /* BATCH__QUEUE_C */
