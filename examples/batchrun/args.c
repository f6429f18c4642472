/* args.c - GNU parallel style argument sources for batchrun (see args.h).

   Each source keeps its arguments once (one string each); job i is expanded on demand from its
   index: a mixed-radix number over the sources (the last source is the lowest digit) for the
   cartesian product, or i modulo each source's length for --link. */
#define _POSIX_C_SOURCE 200809L
#include "args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct br_args_src {
    char** v; /* the arguments */
    size_t n, cap;
} br_args_src;

struct br_args {
    char* cmd;        /* command words joined by spaces, " {}" appended when needed; NULL: none */
    br_args_src* src; /* the sources in order */
    size_t nsrc, capsrc;
    int link;
    size_t count; /* number of jobs */
};

typedef struct br_args_buf {
    char* p;
    size_t len, cap;
    int oom;
} br_args_buf;

enum { BR_ARGS_ALL, BR_ARGS_ONE, BR_ARGS_JOBNUM, BR_ARGS_SLOT };
enum { BR_ARGS_PLAIN, BR_ARGS_NOEXT, BR_ARGS_BASE, BR_ARGS_DIR, BR_ARGS_BASENOEXT };

typedef struct br_args_repl {
    int kind;   /* BR_ARGS_ALL ... BR_ARGS_SLOT */
    int op;     /* BR_ARGS_PLAIN ... BR_ARGS_BASENOEXT */
    int neg;    /* {-n}: counted from the last source */
    size_t num; /* source number (1-based); SIZE_MAX: too large to exist */
    size_t len; /* length of the replacement string in the template */
} br_args_repl;

/* ---- small helpers ------------------------------------------------------------------------- */

static void br_args_seterr(char* err, size_t errn, const char* fmt, ...) {
    if (!err || errn == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errn, fmt, ap);
    va_end(ap);
}

static const char* br_args_strerror(int e, char* buf, size_t n) {
    if (strerror_r(e, buf, n) != 0) snprintf(buf, n, "error %d", e);
    return buf;
}

static void br_args_buf_add(br_args_buf* b, const char* s, size_t n) {
    if (b->oom) return;
    if (n > SIZE_MAX - 1 - b->len) {
        b->oom = 1;
        return;
    }
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char* p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void br_args_buf_str(br_args_buf* b, const char* s) { br_args_buf_add(b, s, strlen(s)); }

/* the finished string (never NULL unless out of memory) */
static char* br_args_buf_take(br_args_buf* b) {
    if (!b->oom && !b->p) br_args_buf_add(b, "", 0);
    if (b->oom) {
        free(b->p);
        b->p = NULL;
    }
    return b->p;
}

static int br_args_is_plain(const char* s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '+' || c == '-' || c == '.' || c == '/';
        if (!ok) return 0;
    }
    return n > 0;
}

/* s[0..n) quoted for /bin/sh as parallel quotes it */
static void br_args_buf_quoted(br_args_buf* b, const char* s, size_t n) {
    if (n == 0) {
        br_args_buf_str(b, "''");
        return;
    }
    if (br_args_is_plain(s, n)) {
        br_args_buf_add(b, s, n);
        return;
    }
    /* runs between single quotes go in '...', each quote is "'"; an empty first or last run
       (the string starts or ends with a quote) is left out, empty runs inside are '' */
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '\'') continue;
        int first = start == 0, last = i == n;
        if (i > start || !(first || last)) {
            br_args_buf_str(b, "'");
            br_args_buf_add(b, s + start, i - start);
            br_args_buf_str(b, "'");
        }
        if (!last) br_args_buf_str(b, "\"'\"");
        start = i + 1;
    }
}

/* ---- path replacement strings: each gives a slice of the argument or a constant ------------ */

static size_t br_args_last(const char* s, size_t n, char c) { /* index of the last c, or n */
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == c) return i - 1;
    return n;
}

/* {/}: what follows the last '/' */
static void br_args_base(const char** s, size_t* n) {
    size_t k = br_args_last(*s, *n, '/');
    if (k < *n) {
        *s += k + 1;
        *n -= k + 1;
    }
}

/* {.}: without the last '.' and what follows it, unless a '/' follows it */
static void br_args_noext(const char* s, size_t* n) {
    size_t k = br_args_last(s, *n, '.');
    if (k < *n && br_args_last(s + k, *n - k, '/') == *n - k) *n = k;
}

/* {//}: the directory, as dirname(1) gives it */
static void br_args_dir(const char** s, size_t* n) {
    const char* p = *s;
    size_t len = *n;
    while (len > 1 && p[len - 1] == '/') len--; /* trailing slashes */
    size_t k = br_args_last(p, len, '/');
    if (k == len) { /* no slash: "." (also for "") */
        *s = ".";
        *n = 1;
        return;
    }
    len = k;
    while (len > 0 && p[len - 1] == '/') len--;
    if (len == 0) { /* only slashes before the last component */
        *s = "/";
        *n = 1;
        return;
    }
    *n = len;
}

static void br_args_buf_op(br_args_buf* b, const char* s, int op) {
    size_t n = strlen(s);
    if (op == BR_ARGS_NOEXT) br_args_noext(s, &n);
    if (op == BR_ARGS_BASE || op == BR_ARGS_BASENOEXT) br_args_base(&s, &n);
    if (op == BR_ARGS_BASENOEXT) br_args_noext(s, &n);
    if (op == BR_ARGS_DIR) br_args_dir(&s, &n);
    br_args_buf_quoted(b, s, n);
}

/* ---- replacement strings --------------------------------------------------------------------- */

/* The op suffix at s ("}", ".}", "/}", "//}", "/.}"); its length with the "}", or 0. */
static size_t br_args_parse_op(const char* s, int* op) {
    static const struct {
        const char* text;
        int op;
    } ops[] = {{"}", BR_ARGS_PLAIN},
               {".}", BR_ARGS_NOEXT},
               {"/}", BR_ARGS_BASE},
               {"//}", BR_ARGS_DIR},
               {"/.}", BR_ARGS_BASENOEXT}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = strlen(ops[i].text);
        if (strncmp(s, ops[i].text, n) == 0) {
            *op = ops[i].op;
            return n;
        }
    }
    return 0;
}

/* Is there a replacement string at s (which starts with '{')? Fills r and returns 1 if so. */
static int br_args_parse_repl(const char* s, br_args_repl* r) {
    memset(r, 0, sizeof *r);
    if ((s[1] == '#' || s[1] == '%') && s[2] == '}') {
        r->kind = s[1] == '#' ? BR_ARGS_JOBNUM : BR_ARGS_SLOT;
        r->len = 3;
        return 1;
    }
    size_t p = 1;
    if (s[p] == '-') {
        r->neg = 1;
        p++;
    }
    size_t digits = 0;
    while (s[p] >= '0' && s[p] <= '9') {
        size_t d = (size_t)(s[p] - '0');
        r->num = r->num > (SIZE_MAX - d) / 10 ? SIZE_MAX : r->num * 10 + d;
        p++;
        digits++;
    }
    if (r->neg && digits == 0) return 0;
    if (r->neg && r->num == 0) return 0;
    r->kind = r->num ? BR_ARGS_ONE : BR_ARGS_ALL; /* {0} is {}, as in parallel */
    size_t n = br_args_parse_op(s + p, &r->op);
    if (n == 0) return 0;
    r->len = p + n;
    return 1;
}

static int br_args_has_repl(const char* t) {
    br_args_repl r;
    for (const char* p = strchr(t, '{'); p; p = strchr(p + 1, '{'))
        if (br_args_parse_repl(p, &r)) return 1;
    return 0;
}

/* ---- jobs -------------------------------------------------------------------------------------- */

static size_t br_args_len(const br_args_src* s) { return s->n ? s->n : 1; }

/* the argument of source s (0-based) in job i */
static const char* br_args_value(const br_args* a, size_t i, size_t s) {
    const br_args_src* src = &a->src[s];
    size_t k;
    if (a->link) {
        k = i % br_args_len(src);
    } else {
        for (size_t t = a->nsrc; t > s + 1; t--) i /= br_args_len(&a->src[t - 1]);
        k = i % br_args_len(src);
    }
    return src->n ? src->v[k] : ""; /* an empty source next to others: one empty argument */
}

/* The number of jobs for the current sources into *count; -1 if it does not fit a size_t. */
static int br_args_recount(const br_args* a, size_t* count) {
    size_t empty = 0, max = 0, prod = 1;
    for (size_t s = 0; s < a->nsrc; s++) {
        size_t n = a->src[s].n;
        if (n == 0) empty++;
        if (n > max) max = n;
        size_t l = br_args_len(&a->src[s]);
        if (!a->link && prod > SIZE_MAX / l) return -1;
        prod *= l;
    }
    if (a->nsrc == 0 || empty == a->nsrc)
        *count = 0;
    else if (a->link)
        *count = empty ? 0 : max;
    else
        *count = prod;
    return 0;
}

static void br_args_buf_job_args(br_args_buf* b, const br_args* a, size_t i, int quoted, int op) {
    for (size_t s = 0; s < a->nsrc; s++) {
        if (s) br_args_buf_str(b, " ");
        const char* v = br_args_value(a, i, s);
        if (quoted)
            br_args_buf_op(b, v, op);
        else
            br_args_buf_str(b, v);
    }
}

static void br_args_buf_repl(br_args_buf* b, const br_args* a, size_t i, int slot,
                             const br_args_repl* r) {
    char num[32];
    switch (r->kind) {
    case BR_ARGS_JOBNUM:
        snprintf(num, sizeof num, "%zu", i + 1);
        br_args_buf_str(b, num);
        break;
    case BR_ARGS_SLOT:
        snprintf(num, sizeof num, "%d", slot);
        br_args_buf_str(b, num);
        break;
    case BR_ARGS_ALL:
        br_args_buf_job_args(b, a, i, 1, r->op);
        break;
    default: /* one source; one that does not exist is the empty string */
        if (r->num <= a->nsrc) {
            size_t s = r->neg ? a->nsrc - r->num : r->num - 1;
            br_args_buf_op(b, br_args_value(a, i, s), r->op);
        }
        break;
    }
}

char* br_args_command(const br_args* a, size_t i, int slot) {
    if (!a || i >= a->count) return NULL;
    br_args_buf b = {0};
    if (!a->cmd) {
        br_args_buf_job_args(&b, a, i, 0, BR_ARGS_PLAIN);
        return br_args_buf_take(&b);
    }
    const char* t = a->cmd;
    br_args_repl r;
    for (const char* p = strchr(t, '{'); p; p = strchr(p, '{')) {
        if (!br_args_parse_repl(p, &r)) {
            p++;
            continue;
        }
        br_args_buf_add(&b, t, (size_t)(p - t));
        br_args_buf_repl(&b, a, i, slot, &r);
        t = p + r.len;
        p = t;
    }
    br_args_buf_str(&b, t);
    return br_args_buf_take(&b);
}

char* br_args_tag(const br_args* a, size_t i) {
    if (!a || i >= a->count) return NULL;
    br_args_buf b = {0};
    br_args_buf_job_args(&b, a, i, 0, BR_ARGS_PLAIN);
    return br_args_buf_take(&b);
}

char* br_args_quote(const char* s) {
    if (!s) return NULL;
    br_args_buf b = {0};
    br_args_buf_quoted(&b, s, strlen(s));
    return br_args_buf_take(&b);
}

int br_args_has_command(const br_args* a) { return a && a->cmd; }
size_t br_args_sources(const br_args* a) { return a ? a->nsrc : 0; }
size_t br_args_count(const br_args* a) { return a ? a->count : 0; }

/* ---- sources ----------------------------------------------------------------------------------- */

static void br_args_src_free(br_args_src* s) {
    for (size_t k = 0; k < s->n; k++) free(s->v[k]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* appends v (taken over: freed on failure); 0 or -1 (out of memory) */
static int br_args_src_push(br_args_src* s, char* v) {
    if (!v) return -1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        if (s->cap > SIZE_MAX / 2 / sizeof *s->v) cap = 0; /* would overflow */
        char** nv = cap ? realloc(s->v, cap * sizeof *nv) : NULL;
        if (!nv) {
            free(v);
            return -1;
        }
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = v;
    return 0;
}

static char* br_args_strndup(const char* s, size_t n) {
    if (n == SIZE_MAX) return NULL;
    char* p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void br_args_warn_cr(const br_args_src* s, FILE* warn) {
    if (!warn || s->n < 3) return;
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(s->v[k]);
        if (n == 0 || s->v[k][n - 1] != '\r') return;
    }
    fputs("batchrun: Warning: The first three values end in CR-NL. Consider using -d \"\\r\\n\"\n",
          warn);
}

/* Appends source s (taken over, also on failure). 0, or -1 with err filled. */
static int br_args_add_src(br_args* a, br_args_src* s, char* err, size_t errn) {
    if (a->nsrc == a->capsrc) {
        size_t cap = a->capsrc ? a->capsrc * 2 : 4;
        br_args_src* ns = a->capsrc <= SIZE_MAX / 2 / sizeof *ns ? realloc(a->src, cap * sizeof *ns)
                                                                   : NULL;
        if (!ns) {
            br_args_src_free(s);
            br_args_seterr(err, errn, "out of memory");
            return -1;
        }
        a->src = ns;
        a->capsrc = cap;
    }
    a->src[a->nsrc++] = *s;
    size_t count;
    if (br_args_recount(a, &count) != 0) {
        br_args_src_free(&a->src[--a->nsrc]);
        br_args_seterr(err, errn, "too many jobs (more than %zu)", (size_t)SIZE_MAX);
        return -1;
    }
    a->count = count;
    return 0;
}

/* The words of one ":::" source; a word containing "\n" gives one argument per line. */
static int br_args_words(br_args_src* s, char** w, int n) {
    for (int k = 0; k < n; k++) {
        const char* p = w[k];
        for (;;) {
            const char* nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            if (br_args_src_push(s, br_args_strndup(p, len)) != 0) return -1;
            if (!nl) break;
            p = nl + 1;
        }
    }
    return 0;
}

/* One line read by getline (len bytes, NULs possible) as an argument: without its "\n", each
   NUL as the two characters "\0" (with parallel's warning). NULL: out of memory. */
static char* br_args_line(const char* line, size_t len, FILE* warn) {
    if (len > 0 && line[len - 1] == '\n') len--;
    size_t nul = 0;
    for (size_t k = 0; k < len; k++) nul += line[k] == '\0';
    if (nul == 0) return br_args_strndup(line, len);
    if (warn)
        fputs("batchrun: Warning: A NUL character in the input was replaced with \\0.\n"
              "batchrun: Warning: NUL cannot be passed through in the argument list.\n"
              "batchrun: Warning: Did you mean to use the --null option?\n",
              warn);
    if (nul > SIZE_MAX - 1 - len) return NULL;
    char* v = malloc(len + nul + 1);
    if (!v) return NULL;
    size_t o = 0;
    for (size_t k = 0; k < len; k++) {
        if (line[k] == '\0') {
            v[o++] = '\\';
            v[o++] = '0';
        } else {
            v[o++] = line[k];
        }
    }
    v[o] = '\0';
    return v;
}

/* The lines of f into s. 0, or -1 with err filled (s then holds what was read; the caller
   frees it). */
static int br_args_lines(br_args_src* s, FILE* f, const char* name, FILE* warn, char* err,
                         size_t errn) {
    char eb[128];
    struct stat st;
    int fd = fileno(f);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        br_args_seterr(err, errn, "Cannot read input file `%s': %s.", name,
                       br_args_strerror(EISDIR, eb, sizeof eb));
        return -1;
    }
    char* line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    for (;;) {
        errno = 0;
        got = getline(&line, &cap, f);
        if (got < 0) break;
        if (br_args_src_push(s, br_args_line(line, (size_t)got, warn)) != 0) {
            br_args_seterr(err, errn, "out of memory");
            rc = -1;
            break;
        }
    }
    if (rc == 0 && (ferror(f) || (got < 0 && errno == ENOMEM))) {
        int e = errno ? errno : EIO;
        br_args_seterr(err, errn, "Cannot read input file `%s': %s.", name,
                       br_args_strerror(e, eb, sizeof eb));
        rc = -1;
    }
    free(line);
    if (rc == 0) br_args_warn_cr(s, warn);
    return rc;
}

int br_args_read_lines(br_args* a, FILE* f, const char* name, FILE* warn, char* err, size_t errn) {
    if (!a || !f) {
        br_args_seterr(err, errn, "br_args_read_lines: invalid argument");
        return -1;
    }
    if (!name) name = "-";
    br_args_src s = {0};
    if (br_args_lines(&s, f, name, warn, err, errn) != 0) {
        br_args_src_free(&s);
        return -1;
    }
    return br_args_add_src(a, &s, err, errn);
}

/* the sources of one "::::": each file name is one source */
static int br_args_files(br_args* a, char** names, int n, FILE* warn, char* err, size_t errn) {
    char eb[128];
    for (int k = 0; k < n; k++) {
        int is_stdin = strcmp(names[k], "-") == 0;
        FILE* f = is_stdin ? stdin : fopen(names[k], "r");
        if (!f) {
            br_args_seterr(err, errn, "Cannot open input file `%s': %s.", names[k],
                           br_args_strerror(errno, eb, sizeof eb));
            return -1;
        }
        br_args_src s = {0};
        int rc = br_args_lines(&s, f, names[k], warn, err, errn);
        if (!is_stdin) fclose(f);
        if (rc != 0) {
            br_args_src_free(&s);
            return -1;
        }
        if (br_args_add_src(a, &s, err, errn) != 0) return -1;
    }
    return 0;
}

static int br_args_is_marker(const char* w) { return !strcmp(w, ":::") || !strcmp(w, "::::"); }

/* the command words argv[0..n) joined by spaces, " {}" appended when there is no replacement
   string; 0 or -1 (out of memory) */
static int br_args_set_command(br_args* a, char** argv, int n) {
    br_args_buf b = {0};
    for (int k = 0; k < n; k++) {
        if (k) br_args_buf_str(&b, " ");
        br_args_buf_str(&b, argv[k]);
    }
    char* cmd = br_args_buf_take(&b);
    if (cmd && !br_args_has_repl(cmd)) {
        b = (br_args_buf){cmd, strlen(cmd), strlen(cmd) + 1, 0};
        br_args_buf_str(&b, " {}");
        cmd = br_args_buf_take(&b);
    }
    a->cmd = cmd;
    return cmd ? 0 : -1;
}

/* the sources from argv[0] (a marker) on */
static int br_args_parse_sources(br_args* a, int argc, char** argv, unsigned flags, FILE* warn,
                                 char* err, size_t errn) {
    int k = 0;
    while (k < argc) {
        int files = strcmp(argv[k], "::::") == 0, m = k + 1;
        while (m < argc && !br_args_is_marker(argv[m])) m++;
        if (m == k + 1 && (files || !(flags & BR_ARGS_EMPTY_OK))) {
            br_args_seterr(err, errn, files ? "no file name after ::::" : "no argument after :::");
            return -1;
        }
        if (files) {
            if (br_args_files(a, argv + k + 1, m - k - 1, warn, err, errn) != 0) return -1;
        } else {
            br_args_src s = {0};
            if (br_args_words(&s, argv + k + 1, m - k - 1) != 0) {
                br_args_src_free(&s);
                br_args_seterr(err, errn, "out of memory");
                return -1;
            }
            br_args_warn_cr(&s, warn);
            if (br_args_add_src(a, &s, err, errn) != 0) return -1;
        }
        k = m;
    }
    return 0;
}

int br_args_parse_ex(br_args** out, int argc, char** argv, unsigned flags, FILE* warn, char* err,
                     size_t errn) {
    if (out) *out = NULL;
    int bad = !out || argc < 0 || (argc > 0 && !argv) || (flags & ~3u);
    for (int k = 0; !bad && k < argc; k++) bad = argv[k] == NULL;
    if (bad) {
        br_args_seterr(err, errn, "br_args_parse: invalid argument");
        return -1;
    }
    br_args* a = calloc(1, sizeof *a);
    if (!a) {
        br_args_seterr(err, errn, "out of memory");
        return -1;
    }
    a->link = (flags & BR_ARGS_LINK) != 0;
    int ncmd = 0;
    while (ncmd < argc && !br_args_is_marker(argv[ncmd])) ncmd++;
    if (ncmd > 0 && br_args_set_command(a, argv, ncmd) != 0) {
        br_args_seterr(err, errn, "out of memory");
        br_args_destroy(a);
        return -1;
    }
    if (ncmd < argc &&
        br_args_parse_sources(a, argc - ncmd, argv + ncmd, flags, warn, err, errn) != 0) {
        br_args_destroy(a);
        return -1;
    }
    *out = a;
    return 0;
}

int br_args_parse(br_args** out, int argc, char** argv, int link, char* err, size_t errn) {
    return br_args_parse_ex(out, argc, argv, link ? BR_ARGS_LINK : 0u, NULL, err, errn);
}

void br_args_destroy(br_args* a) {
    if (!a) return;
    for (size_t s = 0; s < a->nsrc; s++) br_args_src_free(&a->src[s]);
    free(a->src);
    free(a->cmd);
    free(a);
}
