/* child.c - batchrun: run one command, capture/stream its output like GNU parallel (see child.h).

   Waiting: poll() on the capture pipes, the child's pidfd (Linux, probed once per sink) or this
   waiter's SIGCHLD self-pipe (the fallback), and the sink's stop pipe; the next deadline (timeout,
   SIGKILL grace) is poll's timeout. Nothing sleeps in a loop.

   Global mutable state: only the SIGCHLD fallback has any (it is what signal handling needs): a
   table of the waiters' self-pipe write ends that the handler writes one byte to, a count of
   running handlers (a waiter leaving its slot waits for it to drop to 0 before it closes the pipe,
   so no handler writes to a reused fd), the previous SIGCHLD action (chained to) and a once flag.
   The handler is installed the first time a sink without pidfd runs a command; SIGCHLD must not
   be blocked in every thread (a waiter rechecks its child once a second in case it is). */
#define _GNU_SOURCE
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sendfile.h>
#include <sys/syscall.h>
#endif

#if defined(SYS_pidfd_open) && !defined(BR_NO_PIDFD)
#define BR_HAVE_PIDFD 1
#else
#define BR_HAVE_PIDFD 0
#endif

#define BR_CHUNK 65536u                     /* read/write block */
#define BR_KILL_GRACE_NS 1000000000ull      /* SIGTERM, then SIGKILL this much later */
#define BR_FALLBACK_RECHECK_MS 1000         /* SIGCHLD fallback: safety recheck */
#define BR_SIGCHLD_SLOTS 1024

/* ---- types ---------------------------------------------------------------------------------- */
typedef struct br_stream {
    char* buf;          /* in memory: buf[0..len) */
    size_t len, cap;
    int spill_fd;       /* -1, or the unlinked file that holds all of it (buf is then freed) */
    uint64_t total;     /* bytes received */
} br_stream;

struct br_capture {
    br_stream s[2];     /* stdout, stderr */
    char* tag;          /* "TAG\t" or NULL */
    size_t tag_len;
    size_t seq;
    br_capture* next;   /* held for keep_order, sorted by seq */
};

struct br_output {
    int fd[2];                  /* out, err */
    br_out_mode mode;
    int keep_order;
    size_t mem_bound;
    int use_pidfd;
    int stop_rd, stop_wr;       /* br_stop writes one byte; nobody reads it (stays readable) */
    atomic_int stopped;
    atomic_int error;           /* first failed write's errno */
    pthread_mutex_t lock;       /* the rest: writes to out/err, the held list, the buffers */
    int fd_failed[2];
    int saw_epipe;
    size_t next_seq;
    br_capture* held;
    char* wbuf;                 /* tagged output is assembled here */
    size_t wlen;
    char* rbuf;                 /* spill files are read back through here */
};

/* A writer's place in one stream: is the next byte at the start of a line (gets the tag)? */
typedef struct br_wr {
    int i;              /* 0 out, 1 err */
    const char* tag;
    size_t tag_len;
    int bol;
} br_wr;

typedef struct br_guard {
    sigset_t old;
    int pending_before;
} br_guard;

/* ---- small helpers -------------------------------------------------------------------------- */
static uint64_t br_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int br_set_flags(int fd, int cloexec, int nonblock) {
    if (cloexec && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return errno;
    if (nonblock) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return errno;
    }
    return 0;
}

/* A close-on-exec pipe (atomically with pipe2 where it exists). */
static int br_pipe(int p[2]) {
#ifdef __linux__
    if (pipe2(p, O_CLOEXEC) < 0) return errno;
    return 0;
#else
    if (pipe(p) < 0) return errno;   /* another thread's spawn may inherit it for a moment */
    int err = br_set_flags(p[0], 1, 0);
    if (!err) err = br_set_flags(p[1], 1, 0);
    if (err) { close(p[0]); close(p[1]); }
    return err;
#endif
}

static void br_close(int* fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static void br_set_error(br_output* o, int err) {
    int zero = 0;
    atomic_compare_exchange_strong(&o->error, &zero, err);
}

/* ---- writing to out/err (under o->lock) ----------------------------------------------------- */
/* Takes the lock with SIGPIPE blocked in this thread (a write to a closed pipe then fails with
   EPIPE instead of killing the process; br_unlock takes the pending SIGPIPE away). */
static void br_lock(br_output* o, br_guard* g) {
    sigset_t pipe_set, pend;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    g->pending_before = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &g->old);
    pthread_mutex_lock(&o->lock);
    o->saw_epipe = 0;
}

static void br_unlock(br_output* o, br_guard* g) {
    int epipe = o->saw_epipe;
    pthread_mutex_unlock(&o->lock);
    if (epipe && !g->pending_before) {
        sigset_t pipe_set;
        struct timespec zero = { 0, 0 };
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {}
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static void br_fd_failed(br_output* o, int i, int err) {
    o->fd_failed[i] = 1;
    if (err == EPIPE) o->saw_epipe = 1;
    br_set_error(o, err);
}

/* Waits until a non-blocking out/err accepts data again. */
static void br_wait_writable(int fd) {
    struct pollfd p = { .fd = fd, .events = POLLOUT, .revents = 0 };
    while (poll(&p, 1, -1) < 0 && errno == EINTR) {}
}

static void br_write_all(br_output* o, int i, const char* p, size_t n) {
    while (n && !o->fd_failed[i]) {
        ssize_t w = write(o->fd[i], p, n);
        if (w >= 0) {
            p += w;
            n -= (size_t)w;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            br_wait_writable(o->fd[i]);
        } else if (errno != EINTR) {
            br_fd_failed(o, i, errno);
        }
    }
}

static void br_wflush(br_output* o, int i) {
    br_write_all(o, i, o->wbuf, o->wlen);
    o->wlen = 0;
}

static void br_wadd(br_output* o, int i, const char* p, size_t n) {
    if (o->wlen + n > BR_CHUNK) {
        br_wflush(o, i);
        if (n >= BR_CHUNK) {
            br_write_all(o, i, p, n);
            return;
        }
    }
    memcpy(o->wbuf + o->wlen, p, n);
    o->wlen += n;
}

/* Writes p[0..n) to stream w->i, the tag in front of every line; call br_wflush when done. */
static void br_put(br_output* o, br_wr* w, const char* p, size_t n) {
    if (!w->tag) {
        br_wflush(o, w->i);
        br_write_all(o, w->i, p, n);
        return;
    }
    while (n) {
        if (w->bol) br_wadd(o, w->i, w->tag, w->tag_len);
        const char* nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) + 1 : n;
        br_wadd(o, w->i, p, k);
        w->bol = nl != NULL;
        p += k;
        n -= k;
    }
}

/* Copies a spill file to stream w->i: sendfile when untagged (Linux), else 64 KiB blocks. */
static void br_put_file(br_output* o, br_wr* w, int fd, uint64_t size) {
    off_t off = 0;
#ifdef __linux__
    while (!w->tag && !o->fd_failed[w->i] && (uint64_t)off < size) {
        size_t want = size - (uint64_t)off > (1u << 30) ? (1u << 30) : (size_t)(size - (uint64_t)off);
        ssize_t n = sendfile(o->fd[w->i], fd, &off, want);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { br_wait_writable(o->fd[w->i]); continue; }
        if (n < 0 && errno != EINVAL && errno != ENOSYS && errno != EOVERFLOW) br_fd_failed(o, w->i, errno);
        break;   /* 0 (file shorter than said) or sendfile cannot do it: the read loop below */
    }
#endif
    while (!o->fd_failed[w->i] && (uint64_t)off < size) {
        ssize_t n = pread(fd, o->rbuf, BR_CHUNK, off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            br_set_error(o, n < 0 ? errno : EIO);   /* the spill file itself failed */
            break;
        }
        br_put(o, w, o->rbuf, (size_t)n);
        off += n;
    }
    br_wflush(o, w->i);
}

/* Writes a capture whole: stdout part, then stderr part. */
static void br_write_capture(br_output* o, const br_capture* c) {
    for (int i = 0; i < 2; i++) {
        br_wr w = { i, c->tag, c->tag_len, 1 };
        const br_stream* s = &c->s[i];
        if (s->spill_fd >= 0) {
            br_put_file(o, &w, s->spill_fd, s->total);
        } else if (s->len) {
            br_put(o, &w, s->buf, s->len);
            br_wflush(o, i);
        }
    }
}

/* ---- captures ------------------------------------------------------------------------------- */
static br_capture* br_capture_new(const char* tag) {
    br_capture* c = (br_capture*)calloc(1, sizeof *c);
    if (!c) return NULL;
    c->s[0].spill_fd = c->s[1].spill_fd = -1;
    if (tag) {
        size_t n = strlen(tag);
        c->tag = (char*)malloc(n + 2);
        if (!c->tag) {
            free(c);
            return NULL;
        }
        memcpy(c->tag, tag, n);
        c->tag[n] = '\t';
        c->tag[n + 1] = 0;
        c->tag_len = n + 1;
    }
    return c;
}

void br_output_discard(br_capture* c) {
    if (!c) return;
    for (int i = 0; i < 2; i++) {
        free(c->s[i].buf);
        br_close(&c->s[i].spill_fd);
    }
    free(c->tag);
    free(c);
}

/* An unlinked, close-on-exec temporary file in $TMPDIR or /tmp. */
static int br_spill_open(int* fd) {
    const char* dir = getenv("TMPDIR");
    char path[4096];
    if (!dir || !*dir) dir = "/tmp";
    if ((size_t)snprintf(path, sizeof path, "%s/batchrun.XXXXXX", dir) >= sizeof path) return ENAMETOOLONG;
#ifdef __linux__
    int f = mkostemp(path, O_CLOEXEC);
#else
    int f = mkstemp(path);
#endif
    if (f < 0) return errno;
    unlink(path);
    int err = br_set_flags(f, 1, 0);
    if (err) {
        close(f);
        return err;
    }
    *fd = f;
    return 0;
}

static int br_file_write(int fd, const char* p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int br_capture_save(br_capture* c, int out_fd, int err_fd) {
    int fds[2] = { out_fd, err_fd }, err = 0;
    char* buf = NULL;
    for (int i = 0; c && i < 2 && !err; i++) {
        const br_stream* s = &c->s[i];
        if (s->spill_fd < 0) {
            err = s->len ? br_file_write(fds[i], s->buf, s->len) : 0;
            continue;
        }
        if (!buf && !(buf = (char*)malloc(BR_CHUNK))) err = ENOMEM;
        for (off_t off = 0; !err && (uint64_t)off < s->total;) {
            ssize_t n = pread(s->spill_fd, buf, BR_CHUNK, off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) err = n < 0 ? errno : EIO;
            else err = br_file_write(fds[i], buf, (size_t)n);
            off += n > 0 ? n : 0;
        }
    }
    free(buf);
    br_output_discard(c);
    return err;
}

/* Appends p[0..n) to stream i of c: in memory while both streams together stay within bound,
   else (from then on) to the stream's spill file. Returns 0 or an errno. */
static int br_append(br_capture* c, int i, const char* p, size_t n, size_t bound) {
    br_stream* s = &c->s[i];
    s->total += n;
    if (s->spill_fd < 0 && s->len + n > s->cap) {
        size_t held = c->s[0].len + c->s[1].len;
        size_t want = s->cap ? s->cap * 2 : 16384;
        while (want < s->len + n) want *= 2;
        if (held - s->len + want > bound) want = bound - (held - s->len);   /* what is left */
        if (held + n <= bound && want >= s->len + n) {
            char* nb = (char*)realloc(s->buf, want);
            if (!nb) return ENOMEM;
            s->buf = nb;
            s->cap = want;
        } else {
            int err = br_spill_open(&s->spill_fd);
            if (!err) err = br_file_write(s->spill_fd, s->buf, s->len);
            if (err) return err;
            free(s->buf);
            s->buf = NULL;
            s->len = s->cap = 0;
        }
    }
    if (s->spill_fd >= 0) return br_file_write(s->spill_fd, p, n);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

/* ---- the sink ------------------------------------------------------------------------------- */
static int br_probe_pidfd(void) {
#if BR_HAVE_PIDFD
    long fd = syscall(SYS_pidfd_open, (long)getpid(), 0L);
    if (fd < 0) return 0;
    close((int)fd);
    return 1;
#else
    return 0;
#endif
}

int br_output_create(br_output** out, int out_fd, int err_fd, br_out_mode mode, int keep_order, size_t mem_bound) {
    *out = NULL;
    if (out_fd < 0 || err_fd < 0 || (mode != BR_OUT_GROUP && mode != BR_OUT_LINE && mode != BR_OUT_UNGROUP))
        return EINVAL;
    br_output* o = (br_output*)calloc(1, sizeof *o);
    if (!o) return ENOMEM;
    o->wbuf = (char*)malloc(BR_CHUNK);
    o->rbuf = (char*)malloc(BR_CHUNK);
    if (!o->wbuf || !o->rbuf) {
        free(o->wbuf);
        free(o->rbuf);
        free(o);
        return ENOMEM;
    }
    int p[2] = { -1, -1 }, err = br_pipe(p);
    if (!err) err = br_set_flags(p[0], 0, 1);
    if (!err) err = br_set_flags(p[1], 0, 1);
    if (!err) err = pthread_mutex_init(&o->lock, NULL);
    if (err) {
        if (p[0] >= 0) { close(p[0]); close(p[1]); }
        free(o->wbuf);
        free(o->rbuf);
        free(o);
        return err;
    }
    o->stop_rd = p[0];
    o->stop_wr = p[1];
    o->fd[0] = out_fd;
    o->fd[1] = err_fd;
    o->mode = keep_order && mode == BR_OUT_LINE ? BR_OUT_GROUP : mode;   /* -k --line-buffer: grouped */
    o->keep_order = keep_order;
    o->mem_bound = mem_bound;
    o->use_pidfd = br_probe_pidfd();
    o->next_seq = 1;
    atomic_init(&o->stopped, 0);
    atomic_init(&o->error, 0);
    *out = o;
    return 0;
}

int br_output_error(const br_output* o) {
    return atomic_load(&((br_output*)o)->error);
}

int br_output_destroy(br_output* o) {
    if (!o) return 0;
    br_guard g;
    br_lock(o, &g);
    while (o->held) {   /* what waits for a seq that never came: in seq order */
        br_capture* c = o->held;
        o->held = c->next;
        br_write_capture(o, c);
        br_output_discard(c);
    }
    br_unlock(o, &g);
    int err = atomic_load(&o->error);
    pthread_mutex_destroy(&o->lock);
    close(o->stop_rd);
    close(o->stop_wr);
    free(o->wbuf);
    free(o->rbuf);
    free(o);
    return err;
}

void br_stop(br_output* o) {
    atomic_store(&o->stopped, 1);
    ssize_t w = write(o->stop_wr, "s", 1);   /* full pipe (called before): already readable */
    (void)w;
}

/* keep_order: writes the held captures that are next in line. */
static void br_release_held(br_output* o) {
    while (o->held && o->held->seq <= o->next_seq) {
        br_capture* c = o->held;
        o->held = c->next;
        br_write_capture(o, c);
        if (c->seq == o->next_seq) o->next_seq++;
        br_output_discard(c);
    }
}

void br_output_emit(br_output* o, size_t seq, br_capture* cap) {
    br_guard g;
    if (!o->keep_order) {
        if (!cap) return;
        br_lock(o, &g);
        br_write_capture(o, cap);
        br_unlock(o, &g);
        br_output_discard(cap);
        return;
    }
    br_lock(o, &g);
    if (seq == o->next_seq) {
        if (cap) br_write_capture(o, cap);
        o->next_seq++;
        br_release_held(o);
        br_unlock(o, &g);
        br_output_discard(cap);
        return;
    }
    if (!cap) cap = br_capture_new(NULL);   /* a placeholder to hold */
    if (!cap) {
        br_set_error(o, ENOMEM);   /* later seqs wait until br_output_destroy */
    } else {
        br_capture** at = &o->held;
        while (*at && (*at)->seq < seq) at = &(*at)->next;
        cap->seq = seq;
        cap->next = *at;
        *at = cap;
        br_release_held(o);   /* seq < next_seq (a caller's duplicate): written now */
    }
    br_unlock(o, &g);
}

void br_output_skip(br_output* o, size_t seq) {
    if (o->keep_order) br_output_emit(o, seq, NULL);
}

/* ---- SIGCHLD fallback (no pidfd) ------------------------------------------------------------ */
static atomic_int br_chld_fd[BR_SIGCHLD_SLOTS];   /* a waiter's self-pipe write end + 1; 0: free */
static atomic_int br_chld_busy;                   /* handlers running right now */
static struct sigaction br_chld_old;              /* chained to */
static pthread_once_t br_chld_once = PTHREAD_ONCE_INIT;
static int br_chld_err;                           /* written once, under br_chld_once */

static void br_on_sigchld(int sig, siginfo_t* si, void* uc) {
    int saved = errno;
    atomic_fetch_add(&br_chld_busy, 1);
    for (int k = 0; k < BR_SIGCHLD_SLOTS; k++) {
        int fd = atomic_load(&br_chld_fd[k]);
        if (fd) {
            ssize_t w = write(fd - 1, "c", 1);   /* non-blocking; a full pipe is readable anyway */
            (void)w;
        }
    }
    atomic_fetch_sub(&br_chld_busy, 1);
    if (br_chld_old.sa_flags & SA_SIGINFO) {
        if (br_chld_old.sa_sigaction) br_chld_old.sa_sigaction(sig, si, uc);
    } else if (br_chld_old.sa_handler != SIG_DFL && br_chld_old.sa_handler != SIG_IGN) {
        br_chld_old.sa_handler(sig);
    }
    errno = saved;
}

static void br_chld_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = br_on_sigchld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGCHLD, NULL, &br_chld_old) < 0 || sigaction(SIGCHLD, &sa, NULL) < 0) br_chld_err = errno;
}

/* A self-pipe the SIGCHLD handler writes to (registered before the spawn: no exit is missed).
   *slot is -1 when the table is full (then the once-a-second recheck is what notices the end). */
static int br_chld_register(int p[2], int* slot) {
    pthread_once(&br_chld_once, br_chld_install);
    if (br_chld_err) return br_chld_err;
    int err = br_pipe(p);
    if (!err) err = br_set_flags(p[0], 0, 1);
    if (!err) err = br_set_flags(p[1], 0, 1);
    if (err) {
        if (p[0] >= 0) { br_close(&p[0]); br_close(&p[1]); }
        return err;
    }
    *slot = -1;
    for (int k = 0; k < BR_SIGCHLD_SLOTS; k++) {
        int zero = 0;
        if (atomic_compare_exchange_strong(&br_chld_fd[k], &zero, p[1] + 1)) {
            *slot = k;
            break;
        }
    }
    return 0;
}

static void br_chld_unregister(int p[2], int slot) {
    if (slot >= 0) {
        atomic_store(&br_chld_fd[slot], 0);
        while (atomic_load(&br_chld_busy)) sched_yield();   /* a handler may hold the old fd */
    }
    br_close(&p[0]);
    br_close(&p[1]);
}

/* ---- running one command -------------------------------------------------------------------- */
typedef struct br_run {
    br_output* o;
    const br_cmd_spec* spec;
    br_cmd_result* res;
    br_capture* cap;        /* GROUP: the captured output */
    br_stream part[2];      /* LINE: the partial last line of each stream */
    br_wr lw[2];            /* LINE: where each stream's writer is */
    int line;
    int rd[2], wr[2];       /* capture pipes: our read ends, the child's write ends (-1: none) */
    int child_fd[2];        /* the child's 1 and 2 */
    int wait_fd;            /* pidfd, or the SIGCHLD self-pipe's read end */
    int chld[2], slot;
    pid_t pid;
    int spawned, exited, termed, killed, stopped, timed_out;
    uint64_t deadline, kill_at;
    off_t file0[2];         /* results files: size before (-1: not a regular file) */
    char* scratch;
} br_run;

static size_t br_line_limit(const br_output* o) {
    return o->mem_bound > BR_CHUNK ? o->mem_bound : BR_CHUNK;
}

static int br_buf_add(br_stream* s, const char* p, size_t n) {
    if (!n) return 0;
    if (s->len + n > s->cap) {
        size_t want = s->cap ? s->cap : 4096;
        while (want < s->len + n) want *= 2;
        char* nb = (char*)realloc(s->buf, want);
        if (!nb) return ENOMEM;
        s->buf = nb;
        s->cap = want;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

/* LINE: writes the complete lines of partial + p[0..n) now (under the lock, with their tags),
   keeps the rest. A partial line beyond the limit is written as it is. */
static int br_line_feed(br_run* r, int i, const char* p, size_t n, int final) {
    br_stream* s = &r->part[i];
    size_t k = n;
    while (k && p[k - 1] != '\n') k--;   /* p[0..k): up to the last newline */
    if (!final && !k && s->len + n <= br_line_limit(r->o)) return br_buf_add(s, p, n);
    if (final || !k) k = n;
    br_guard g;
    br_lock(r->o, &g);
    br_put(r->o, &r->lw[i], s->buf, s->len);
    br_put(r->o, &r->lw[i], p, k);
    br_wflush(r->o, i);
    br_unlock(r->o, &g);
    s->len = 0;
    return br_buf_add(s, p + k, n - k);
}

/* Reads once (at most max bytes) from capture pipe i; closes it at EOF. */
static int br_read_pipe(br_run* r, int i, size_t max, size_t* got) {
    *got = 0;
    ssize_t n = read(r->rd[i], r->scratch, max < BR_CHUNK ? max : BR_CHUNK);
    if (n < 0) return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
    if (n == 0) {
        br_close(&r->rd[i]);
        return 0;
    }
    *got = (size_t)n;
    if (i == 0) r->res->out_bytes += (uint64_t)n;
    else r->res->err_bytes += (uint64_t)n;
    if (r->line) return br_line_feed(r, i, r->scratch, (size_t)n, 0);
    return br_append(r->cap, i, r->scratch, (size_t)n, r->o->mem_bound);
}

/* After the shell ended: reads what is in the pipes now, without waiting for EOF (a background
   grandchild may hold them open, or keep writing: only what was there at this point is read). */
static int br_drain(br_run* r) {
    for (int i = 0; i < 2; i++) {
        size_t left = 1u << 20;
#ifdef FIONREAD
        int avail = 0;
        if (r->rd[i] >= 0 && ioctl(r->rd[i], FIONREAD, &avail) == 0) left = avail > 0 ? (size_t)avail : 0;
#endif
        while (left && r->rd[i] >= 0) {
            size_t got;
            int err = br_read_pipe(r, i, left, &got);
            if (err) return err;
            if (!got) break;
            left -= got < left ? got : left;
        }
        if (r->line && r->part[i].len) {
            int err = br_line_feed(r, i, "", 0, 1);
            if (err) return err;
        }
    }
    return 0;
}

/* Pipes, buffers and the SIGCHLD registration: everything that can fail before the spawn. */
static int br_run_setup(br_run* r) {
    const br_output* o = r->o;
    const br_cmd_spec* sp = r->spec;
    int given[2] = { sp->out_fd, sp->err_fd }, capturing = 0;
    r->line = o->mode == BR_OUT_LINE;
    for (int i = 0; i < 2; i++) {
        r->file0[i] = -1;
        struct stat st;
        if (given[i] >= 0 && fstat(given[i], &st) == 0 && S_ISREG(st.st_mode)) r->file0[i] = st.st_size;
        if (given[i] >= 0 || o->mode == BR_OUT_UNGROUP) {
            r->child_fd[i] = given[i] >= 0 ? given[i] : o->fd[i];
            continue;
        }
        int p[2] = { -1, -1 };
        int err = br_pipe(p);
        if (!err) err = br_set_flags(p[0], 0, 1);
        if (err) {
            if (p[0] >= 0) { close(p[0]); close(p[1]); }
            return err;
        }
        r->rd[i] = p[0];
        r->wr[i] = r->child_fd[i] = p[1];
        capturing = 1;
    }
    if (capturing) {
        r->scratch = (char*)malloc(BR_CHUNK);
        if (!r->scratch) return ENOMEM;
        if (r->line) {
            br_capture* t = br_capture_new(sp->tag);   /* the tag, formatted */
            if (!t) return ENOMEM;
            r->cap = t;
            for (int i = 0; i < 2; i++) r->lw[i] = (br_wr){ i, t->tag, t->tag_len, 1 };
        } else if (!(r->cap = br_capture_new(sp->tag))) {
            return ENOMEM;
        }
    }
    if (!o->use_pidfd) return br_chld_register(r->chld, &r->slot);
    return 0;
}

/* posix_spawn of /bin/sh -c command: own process group, stdin /dev/null, signal mask empty,
   SIGPIPE default (the caller may ignore it). */
static int br_spawn(br_run* r) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, def;
    char sh[] = "sh", dash_c[] = "-c";
    char* argv[] = { sh, dash_c, (char*)r->spec->command, NULL };
    char* no_env[] = { NULL };
    int err = posix_spawn_file_actions_init(&fa);
    if (err) return err;
    err = posix_spawnattr_init(&at);
    if (err) {
        posix_spawn_file_actions_destroy(&fa);
        return err;
    }
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!err) err = posix_spawn_file_actions_adddup2(&fa, r->child_fd[0], 1);
    if (!err) err = posix_spawn_file_actions_adddup2(&fa, r->child_fd[1], 2);
    if (!err) err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!err) err = posix_spawnattr_setpgroup(&at, 0);
    if (!err) err = posix_spawnattr_setsigmask(&at, &none);
    if (!err) err = posix_spawnattr_setsigdefault(&at, &def);
    if (!err) err = posix_spawn(&r->pid, "/bin/sh", &fa, &at, argv, r->spec->env ? r->spec->env : no_env);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return err;
}

static int br_open_wait_fd(br_run* r) {
#if BR_HAVE_PIDFD
    if (r->o->use_pidfd) {
        long fd = syscall(SYS_pidfd_open, (long)r->pid, 0L);
        if (fd < 0) return errno;
        r->wait_fd = (int)fd;
        int err = br_set_flags(r->wait_fd, 1, 0);
        return err;
    }
#endif
    r->wait_fd = r->chld[0];
    return 0;
}

/* Has the shell ended (a zombie, not reaped yet: its pid still names the process group)? */
static int br_child_ended(const br_run* r) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    while (waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
        if (errno != EINTR) return 1;   /* ECHILD: somebody reaped it; nothing to wait for */
    return si.si_pid != 0;
}

static void br_terminate(br_run* r, uint64_t now) {
    if (r->termed) return;
    r->termed = 1;
    r->kill_at = now + BR_KILL_GRACE_NS;
    kill(-r->pid, SIGTERM);
}

static int br_poll_timeout(const br_run* r, uint64_t now) {
    uint64_t next = 0;
    if (!r->termed && r->deadline) next = r->deadline;
    if (r->termed && !r->killed) next = r->kill_at;
    int ms = -1;
    if (next) {
        uint64_t left = next > now ? (next - now + 999999) / 1000000 : 0;
        ms = left > INT_MAX ? INT_MAX : (int)left;
    }
    if (!r->o->use_pidfd && (ms < 0 || ms > BR_FALLBACK_RECHECK_MS)) ms = BR_FALLBACK_RECHECK_MS;
    return ms;
}

/* Blocks in poll until the shell ended, reading the pipes, acting on stop and deadlines. */
static int br_wait_loop(br_run* r) {
    while (!r->exited) {
        struct pollfd p[4];
        int n = 0, at_stop = -1, at_rd[2] = { -1, -1 };
        p[n++] = (struct pollfd){ .fd = r->wait_fd, .events = POLLIN, .revents = 0 };
        if (!r->stopped) {
            at_stop = n;
            p[n++] = (struct pollfd){ .fd = r->o->stop_rd, .events = POLLIN, .revents = 0 };
        }
        for (int i = 0; i < 2; i++) {
            if (r->rd[i] < 0) continue;
            at_rd[i] = n;
            p[n++] = (struct pollfd){ .fd = r->rd[i], .events = POLLIN, .revents = 0 };
        }
        int k = poll(p, (nfds_t)n, br_poll_timeout(r, br_now()));
        if (k < 0 && errno != EINTR) return errno;
        uint64_t now = br_now();
        if (k > 0 && at_stop >= 0 && p[at_stop].revents) {
            r->stopped = 1;
            br_terminate(r, now);
        }
        for (int i = 0; k > 0 && i < 2; i++) {
            size_t got;
            int err = at_rd[i] >= 0 && p[at_rd[i]].revents ? br_read_pipe(r, i, BR_CHUNK, &got) : 0;
            if (err) return err;
        }
        if (r->o->use_pidfd) {
            r->exited = k > 0 && p[0].revents;
        } else if (k >= 0) {
            char junk[64];
            while (read(r->wait_fd, junk, sizeof junk) > 0) {}
            r->exited = br_child_ended(r);
        }
        if (!r->termed && r->deadline && now >= r->deadline) {
            r->timed_out = 1;
            br_terminate(r, now);
        }
        if (r->termed && !r->killed && now >= r->kill_at) {
            r->killed = 1;
            kill(-r->pid, SIGKILL);
        }
    }
    return 0;
}

/* Reaps the shell (after SIGKILLing what is left of its group if it was being stopped). */
static int br_reap(br_run* r, int* status) {
    if (r->termed) kill(-r->pid, SIGKILL);
    while (waitpid(r->pid, status, 0) < 0)
        if (errno != EINTR) return errno;
    return 0;
}

static void br_fill_result(br_run* r, int status) {
    br_cmd_result* res = r->res;
    if (WIFEXITED(status)) {
        res->exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        res->signo = WTERMSIG(status);
    }
    res->timed_out = r->timed_out;
    res->stopped = r->stopped;
    int given[2] = { r->spec->out_fd, r->spec->err_fd };
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (r->file0[i] < 0 || fstat(given[i], &st) != 0 || st.st_size < r->file0[i]) continue;
        if (i == 0) res->out_bytes = (uint64_t)(st.st_size - r->file0[i]);
        else res->err_bytes = (uint64_t)(st.st_size - r->file0[i]);
    }
}

static void br_run_free(br_run* r) {
    for (int i = 0; i < 2; i++) {
        br_close(&r->rd[i]);
        br_close(&r->wr[i]);
        free(r->part[i].buf);
    }
    if (r->o->use_pidfd) br_close(&r->wait_fd);
    else if (r->chld[0] >= 0) br_chld_unregister(r->chld, r->slot);
    br_output_discard(r->cap);
    free(r->scratch);
}

int br_cmd_run(br_output* o, const br_cmd_spec* spec, br_cmd_result* res, br_capture** cap) {
    memset(res, 0, sizeof *res);
    res->exit_code = -1;
    *cap = NULL;
    if (atomic_load(&o->stopped)) {
        res->stopped = 1;
        return 0;
    }
    br_run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.spec = spec;
    r.res = res;
    r.rd[0] = r.rd[1] = r.wr[0] = r.wr[1] = r.wait_fd = r.chld[0] = r.chld[1] = r.slot = -1;
    if (spec->timeout_ns) r.deadline = br_now() + spec->timeout_ns;
    int err = br_run_setup(&r);
    if (!err) err = br_spawn(&r);
    if (!err) {
        r.spawned = 1;
        br_close(&r.wr[0]);
        br_close(&r.wr[1]);
        err = br_open_wait_fd(&r);
    }
    if (!err) err = br_wait_loop(&r);
    if (!err) err = br_drain(&r);
    if (r.spawned) {
        int status = 0;
        if (err) kill(-r.pid, SIGKILL);
        int rerr = br_reap(&r, &status);
        if (!err) err = rerr;
        if (!err) br_fill_result(&r, status);
    }
    if (!err && !r.line && r.cap && (r.cap->s[0].total || r.cap->s[1].total)) {
        *cap = r.cap;
        r.cap = NULL;
    }
    br_run_free(&r);
    return err;
}
