/* batchrun_args_test.c - unit test of examples/batchrun/args.c (GNU parallel style arguments).

   Build: cc -std=c11 -Iexamples/batchrun tests/batchrun_args_test.c examples/batchrun/args.c
   Run:   ./a.out                      the table of cases; last line "N passed, N failed"
          ./a.out --print [--link] [--empty-ok] ARGS...
                                       prints br_args_command of every job, one a line, reading
                                       stdin lines as the source when ARGS has no ::: / ::::;
                                       job i (0-based) gets the slot parallel -j2 --dry-run shows
                                       for it: 1 for the first job, then 1 for odd i, 2 for even i.
   The expected strings come from GNU parallel 20221122 (parallel -k --dry-run -j2 ...). */
#define _POSIX_C_SOURCE 200809L
#include "args.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXV 24

typedef struct test_case {
    const char* name;
    unsigned flags;
    const char* input;    /* stdin lines when there is no source (NULL: none) */
    size_t input_len;     /* 0: strlen(input) */
    const char* argv[MAXV];  /* NULL-terminated */
    const char* cmds[MAXV];  /* expected commands, NULL-terminated */
    const char* tags[MAXV];  /* expected tags, NULL-terminated; { NULL }: not checked */
} test_case;

static const test_case CASES[] = {
    {"quoting", 0, NULL, 0,
     {"echo", "{}", ":::", "a", "b c", "d'e", "", "x$y", "tab\tz", "-x", "a+b./_9", "a=b", "ü", NULL},
     {"echo a", "echo 'b c'", "echo 'd'\"'\"'e'", "echo ''", "echo 'x$y'", "echo 'tab\tz'",
      "echo -x", "echo a+b./_9", "echo 'a=b'", "echo 'ü'", NULL},
     {"a", "b c", "d'e", "", "x$y", "tab\tz", "-x", "a+b./_9", "a=b", "ü", NULL}},
    {"single quotes at the ends", 0, NULL, 0,
     {"echo", ":::", "'a", "a'", "''", "a''b", "'", " '", NULL},
     {"echo \"'\"'a'", "echo 'a'\"'\"", "echo \"'\"''\"'\"", "echo 'a'\"'\"''\"'\"'b'",
      "echo \"'\"", "echo ' '\"'\"", NULL},
     {NULL}},
    {"path replacement strings", 0, NULL, 0,
     {"echo", "{.}", "{/}", "{//}", "{/.}", ":::", "dir/sub/file.tar.gz", "plain", "/abs.x",
      ".hidden", "/", "", "a/", "a.b/.c", "//a", "a//b", "..", "sp ace/f x.y", NULL},
     {"echo dir/sub/file.tar file.tar.gz dir/sub file.tar", "echo plain plain . plain",
      "echo /abs abs.x / abs", "echo '' .hidden . ''", "echo / '' / ''", "echo '' '' . ''",
      "echo a/ '' . ''", "echo a.b/ .c a.b ''", "echo //a a / a", "echo a//b b a b",
      "echo . .. . .", "echo 'sp ace/f x' 'f x.y' 'sp ace' 'f x'", NULL},
     {NULL}},
    {"inside a word", 0, NULL, 0,
     {"echo", "X{}X", ":::", "a b", NULL}, {"echo X'a b'X", NULL}, {NULL}},
    {"numbered sources", 0, NULL, 0,
     {"echo", "{2}", "{1}", ":::", "a", "b", ":::", "1", "2", NULL},
     {"echo 1 a", "echo 2 a", "echo 1 b", "echo 2 b", NULL},
     {"a 1", "a 2", "b 1", "b 2", NULL}},
    {"{} with two sources", 0, NULL, 0,
     {"echo", "{}", ":::", "a", "b c", ":::", "1", NULL},
     {"echo a 1", "echo 'b c' 1", NULL}, {"a 1", "b c 1", NULL}},
    {"{n.} {n/} {n//} {n/.} and {.} of all", 0, NULL, 0,
     {"echo", "{.}", "{1.}", "{2/}", "{1//}", "{2/.}", ":::", "a.x/b.c", ":::", "c/d.z", NULL},
     {"echo a.x/b c/d a.x/b d.z a.x d", NULL}, {NULL}},
    {"missing and negative sources", 0, NULL, 0,
     {"echo", "{3}", "{-1}", "{-2}", "{1}", "{01}", ":::", "a", ":::", "b", NULL},
     {"echo  b a a a", NULL}, {NULL}},
    {"{3}x counts as a replacement string", 0, NULL, 0,
     {"echo", "{3}x", ":::", "a", NULL}, {"echo x", NULL}, {NULL}},
    {"not replacement strings", 0, NULL, 0,
     {"echo", "{foo}", "{}", "{{}}", "{ }", "{0}", "{-}", ":::", "a", NULL},
     {"echo {foo} a {a} { } a {-}", NULL}, {NULL}},
    {"{} appended", 0, NULL, 0,
     {"echo", ":::", "a", "b", NULL}, {"echo a", "echo b", NULL}, {NULL}},
    {"{} appended, two sources", 0, NULL, 0,
     {"echo", ":::", "a", "b", ":::", "1 2", NULL}, {"echo a '1 2'", "echo b '1 2'", NULL},
     {NULL}},
    {"command words are not quoted", 0, NULL, 0,
     {"echo", "a b", "x'y", "$z", ":::", "1", NULL}, {"echo a b x'y $z 1", NULL}, {NULL}},
    {"--link wraps the shorter source", BR_ARGS_LINK, NULL, 0,
     {"echo", "{1}", "{2}", ":::", "a", "b", ":::", "1", "2", "3", NULL},
     {"echo a 1", "echo b 2", "echo a 3", NULL}, {"a 1", "b 2", "a 3", NULL}},
    {"--link three sources", BR_ARGS_LINK, NULL, 0,
     {"echo", ":::", "a", "b", "c", ":::", "1", "2", ":::", "X", "Y", "Z", "W", NULL},
     {"echo a 1 X", "echo b 2 Y", "echo c 1 Z", "echo a 2 W", NULL}, {NULL}},
    {"arguments as commands", 0, NULL, 0,
     {":::", "echo 1", "echo {}", NULL}, {"echo 1", "echo {}", NULL}, {"echo 1", "echo {}", NULL}},
    {"arguments as commands, two sources", 0, NULL, 0,
     {":::", "echo 1", ":::", "b c", "d", NULL}, {"echo 1 b c", "echo 1 d", NULL}, {NULL}},
    {"{#} and {%}", 0, NULL, 0,
     {"echo", "{#}", "{%}", ":::", "a", "b", "c", "d", NULL},
     {"echo 1 1", "echo 2 1", "echo 3 2", "echo 4 1", NULL}, {"a", "b", "c", "d", NULL}},
    {"newlines split ::: words", 0, NULL, 0,
     {"echo", ":::", "nl\nx", "a b\nc", "\n", "a\n", NULL},
     {"echo nl", "echo x", "echo 'a b'", "echo c", "echo ''", "echo ''", "echo a", "echo ''", NULL},
     {NULL}},
    {"stdin lines", 0, "a\nb c\n\n  t  \nlast", 0, {"echo", NULL},
     {"echo a", "echo 'b c'", "echo ''", "echo '  t  '", "echo last", NULL},
     {"a", "b c", "", "  t  ", "last", NULL}},
    {"stdin lines as commands", 0, "echo 1\necho 'x'\n", 0, {NULL},
     {"echo 1", "echo 'x'", NULL}, {NULL}},
    {"stdin CR is kept, NUL becomes \\0", 0, "a\r\nx\0y\n\r\n", 9, {"echo", NULL},
     {"echo 'a\r'", "echo 'x\\0y'", "echo '\r'", NULL}, {NULL}},
    {"empty stdin", 0, "", 0, {"echo", NULL}, {NULL}, {NULL}},
    {"one newline on stdin", 0, "\n", 0, {"echo", NULL}, {"echo ''", NULL}, {NULL}},
    {"empty ::: next to others (empty-ok)", BR_ARGS_EMPTY_OK, NULL, 0,
     {"echo", ":::", "a", ":::", NULL}, {"echo a ''", NULL}, {"a ", NULL}},
    {"only an empty ::: (empty-ok)", BR_ARGS_EMPTY_OK, NULL, 0,
     {"echo", ":::", NULL}, {NULL}, {NULL}},
    {"unicode", 0, NULL, 0,
     {"echo", "{/.}", ":::", "dír/ñame.txt", NULL}, {"echo 'ñame'", NULL}, {NULL}},
};

static int g_passed, g_failed; /* the test driver's own counters */

static void check(int ok, const char* name, const char* what) {
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
        printf("FAIL %s: %s\n", name, what);
    }
}

static void check_str(const char* got, const char* want, const char* name, const char* what) {
    int ok = got && want && strcmp(got, want) == 0;
    if (!ok) printf("     got  [%s]\n     want [%s]\n", got ? got : "(null)", want ? want : "(none)");
    check(ok, name, what);
}

static int slot_of(size_t i) { return i == 0 ? 1 : 2 - (int)(i % 2); }

static size_t count_of(const char* const* v) {
    size_t n = 0;
    while (v[n]) n++;
    return n;
}

static br_args* make(const test_case* c) {
    char err[256] = "";
    br_args* a = NULL;
    int argc = (int)count_of(c->argv);
    if (br_args_parse_ex(&a, argc, (char**)c->argv, c->flags, NULL, err, sizeof err) != 0) {
        printf("     parse: %s\n", err);
        return NULL;
    }
    if (c->input) {
        size_t n = c->input_len ? c->input_len : strlen(c->input);
        FILE* f = n ? fmemopen((void*)c->input, n, "r") : fopen("/dev/null", "r");
        int rc = f ? br_args_read_lines(a, f, "-", NULL, err, sizeof err) : -1;
        if (f) fclose(f);
        if (rc != 0) {
            printf("     read_lines: %s\n", err);
            br_args_destroy(a);
            return NULL;
        }
    }
    return a;
}

static void run_case(const test_case* c) {
    br_args* a = make(c);
    check(a != NULL, c->name, "parse");
    if (!a) return;
    size_t n = count_of(c->cmds);
    check(br_args_count(a) == n, c->name, "job count");
    check(br_args_has_command(a) == (c->argv[0] && strcmp(c->argv[0], ":::") != 0), c->name,
          "has_command");
    for (size_t i = 0; i < n && i < br_args_count(a); i++) {
        char* s = br_args_command(a, i, slot_of(i));
        check_str(s, c->cmds[i], c->name, "command");
        free(s);
        if (c->tags[0] && i < count_of(c->tags)) {
            s = br_args_tag(a, i);
            check_str(s, c->tags[i], c->name, "tag");
            free(s);
        }
    }
    check(br_args_command(a, br_args_count(a), 1) == NULL, c->name, "command past the end");
    br_args_destroy(a);
}

/* parse must fail and its message contain want */
static void expect_error(const char* name, int argc, char** argv, unsigned flags, const char* want) {
    char err[256] = "";
    br_args* a = (br_args*)&err; /* must be set to NULL */
    int rc = br_args_parse_ex(&a, argc, argv, flags, NULL, err, sizeof err);
    check(rc != 0 && a == NULL, name, "parse fails");
    int ok = strstr(err, want) != NULL;
    if (!ok) printf("     message [%s], want [%s]\n", err, want);
    check(ok, name, "message");
    if (rc == 0) br_args_destroy(a);
}

static void test_bad_input(const char* dir) {
    char* empty1[] = {"echo", ":::"};
    char* empty2[] = {"echo", ":::", "a", ":::", ":::", "b"};
    char* nofile[] = {"echo", "::::"};
    char* missing[] = {"echo", "::::", "/nonexistent/batchrun_args_test"};
    char* isdir[] = {"echo", "::::", (char*)dir};
    char* withnull[] = {"echo", NULL};
    expect_error("::: with nothing after it", 2, empty1, 0, "no argument after :::");
    expect_error("empty ::: between others", 6, empty2, BR_ARGS_LINK, "no argument after :::");
    expect_error(":::: with nothing after it", 2, nofile, 0, "no file name after ::::");
    expect_error(":::: missing file", 3, missing, 0, "No such file or directory");
    expect_error(":::: directory", 3, isdir, 0, "Is a directory");
    expect_error("NULL in argv", 2, withnull, 0, "invalid argument");
    expect_error("NULL argv", 1, NULL, 0, "invalid argument");
    expect_error("argc < 0", -1, empty1, 0, "invalid argument");
    expect_error("unknown flag", 2, empty1, 64u, "invalid argument");
    check(br_args_parse(NULL, 2, empty1, 0, NULL, 0) != 0, "NULL out", "fails");
    check(br_args_parse(NULL, 2, empty1, 0, (char[1]){0}, 1) != 0, "errn 1", "fails");

    br_args* a = NULL;
    char err[256];
    check(br_args_parse(&a, 0, NULL, 0, err, sizeof err) == 0 && a, "no words at all", "parses");
    check(br_args_count(a) == 0 && !br_args_has_command(a) && br_args_sources(a) == 0,
          "no words at all", "nothing");
    check(br_args_read_lines(a, NULL, "x", NULL, err, sizeof err) != 0, "read_lines NULL f", "fails");
    check(br_args_read_lines(NULL, stdin, "x", NULL, err, sizeof err) != 0, "read_lines NULL a",
          "fails");
    FILE* d = fopen(dir, "r");
    if (d) {
        err[0] = '\0';
        check(br_args_read_lines(a, d, dir, NULL, err, sizeof err) != 0 &&
                  strstr(err, "Is a directory") && br_args_sources(a) == 0,
              "read_lines directory", "fails with Is a directory");
        fclose(d);
    }
    check(br_args_command(a, 0, 1) == NULL && br_args_tag(a, 0) == NULL, "no jobs", "NULL");
    br_args_destroy(a);
    check(br_args_command(NULL, 0, 1) == NULL && br_args_tag(NULL, 0) == NULL &&
              br_args_quote(NULL) == NULL && br_args_count(NULL) == 0 &&
              !br_args_has_command(NULL) && br_args_sources(NULL) == 0,
          "NULL object", "errors");
    br_args_destroy(NULL);
}

static int write_file(const char* path, const char* text, size_t n) {
    FILE* f = fopen(path, "w");
    if (!f) return -1;
    int ok = fwrite(text, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* :::: with two files and mixed with ::: (parallel: each file is one source) */
static void test_files(const char* dir) {
    char f1[512], f2[512], err[256];
    snprintf(f1, sizeof f1, "%s/f1", dir);
    snprintf(f2, sizeof f2, "%s/f2", dir);
    if (write_file(f1, "f1a\nf1b\n", 8) || write_file(f2, "f2a\nf2 b\r\nn\0ul", 14)) {
        check(0, "files", "cannot write temporary files");
        return;
    }
    char* argv[] = {"echo", "::::", f1, f2, ":::", "x"};
    static const char* const want[] = {"echo f1a f2a x", "echo f1a 'f2 b\r' x",
                                       "echo f1a 'n\\0ul' x", "echo f1b f2a x",
                                       "echo f1b 'f2 b\r' x", "echo f1b 'n\\0ul' x"};
    br_args* a = NULL;
    FILE* warn = tmpfile();
    check(br_args_parse_ex(&a, 6, argv, 0, warn, err, sizeof err) == 0, "files", "parse");
    check(br_args_count(a) == 6 && br_args_sources(a) == 3, "files", "count");
    for (size_t i = 0; i < 6 && i < br_args_count(a); i++) {
        char* s = br_args_command(a, i, 1);
        check_str(s, want[i], "files", "command");
        free(s);
    }
    br_args_destroy(a);
    if (warn) {
        char buf[512] = "";
        rewind(warn);
        size_t n = fread(buf, 1, sizeof buf - 1, warn);
        buf[n] = '\0';
        check_str(buf,
                  "batchrun: Warning: A NUL character in the input was replaced with \\0.\n"
                  "batchrun: Warning: NUL cannot be passed through in the argument list.\n"
                  "batchrun: Warning: Did you mean to use the --null option?\n",
                  "files", "NUL warning");
        fclose(warn);
    }
    remove(f1);
    remove(f2);
}

/* argv "echo" then k sources ":::" w0 .. w(n-1); NULL when out of memory */
static char** product_argv(char** words, int n, int k, int* argc) {
    *argc = 1 + k * (n + 1);
    char** v = malloc((size_t)*argc * sizeof *v);
    if (!v) return NULL;
    v[0] = "echo";
    for (int s = 0; s < k; s++) {
        v[1 + s * (n + 1)] = ":::";
        for (int w = 0; w < n; w++) v[2 + s * (n + 1) + w] = words[w];
    }
    return v;
}

/* 1000 x 1000 jobs from 2000 strings; a product that overflows size_t is refused */
static void test_large(void) {
    enum { N = 4096 };
    static char store[N][16];
    static char* words[N];
    for (int w = 0; w < N; w++) {
        snprintf(store[w], sizeof store[w], "w%d", w);
        words[w] = store[w];
    }
    char err[256];
    int argc;
    char** v = product_argv(words, 1000, 2, &argc);
    br_args* a = NULL;
    check(v && br_args_parse(&a, argc, v, 0, err, sizeof err) == 0, "10^6 jobs", "parse");
    check(br_args_count(a) == 1000000, "10^6 jobs", "count");
    char* s = br_args_command(a, 999999, 1);
    check_str(s, "echo w999 w999", "10^6 jobs", "last job");
    free(s);
    s = br_args_command(a, 1000, 1);
    check_str(s, "echo w1 w0", "10^6 jobs", "job 1000");
    free(s);
    br_args_destroy(a);
    free(v);

    int k = 1; /* the smallest number of N-word sources whose product overflows */
    for (size_t p = N; p <= SIZE_MAX / N; p *= N) k++;
    k++;
    v = product_argv(words, N, k, &argc);
    a = NULL;
    err[0] = '\0';
    check(v && br_args_parse(&a, argc, v, 0, err, sizeof err) != 0 && !a &&
              strstr(err, "too many jobs"),
          "overflowing product", "refused");
    check(v && br_args_parse(&a, argc, v, 1, err, sizeof err) == 0 && br_args_count(a) == N,
          "overflowing product with --link", "fine");
    br_args_destroy(a);
    a = NULL;
    check(v && br_args_parse(&a, argc - N - 1, v, 0, err, sizeof err) == 0 &&
              br_args_count(a) > SIZE_MAX / N,
          "one source less", "fine");
    s = br_args_command(a, br_args_count(a) - 1, 1);
    check(s && strlen(s) == 4 + 6 * (size_t)(k - 1), "one source less", "last job");
    free(s);
    br_args_destroy(a);
    free(v);
}

static void test_cr_warning(void) {
    char* argv[] = {"echo", ":::", "a\r", "b\r", "c\r", ":::", "a\r", "b\r"};
    char err[256], buf[256] = "";
    FILE* warn = tmpfile();
    br_args* a = NULL;
    check(warn && br_args_parse_ex(&a, 8, argv, 0, warn, err, sizeof err) == 0, "CR", "parse");
    if (warn) {
        rewind(warn);
        buf[fread(buf, 1, sizeof buf - 1, warn)] = '\0';
        fclose(warn);
    }
    check_str(buf,
              "batchrun: Warning: The first three values end in CR-NL. Consider using -d "
              "\"\\r\\n\"\n",
              "CR", "warning once, for the source with three values");
    br_args_destroy(a);
}

static int print_mode(int argc, char** argv) {
    unsigned flags = 0;
    int k = 0;
    for (; k < argc; k++) {
        if (strcmp(argv[k], "--link") == 0)
            flags |= BR_ARGS_LINK;
        else if (strcmp(argv[k], "--empty-ok") == 0)
            flags |= BR_ARGS_EMPTY_OK;
        else
            break;
    }
    char err[512];
    br_args* a = NULL;
    if (br_args_parse_ex(&a, argc - k, argv + k, flags, stderr, err, sizeof err) != 0 ||
        (br_args_sources(a) == 0 && br_args_read_lines(a, stdin, "-", stderr, err, sizeof err))) {
        fprintf(stderr, "batchrun: Error: %s\n", err);
        br_args_destroy(a);
        return 255;
    }
    int rc = 0;
    for (size_t i = 0; i < br_args_count(a) && rc == 0; i++) {
        char* s = br_args_command(a, i, slot_of(i));
        if (s && printf("%s\n", s) < 0) rc = 1;
        if (!s) rc = 1;
        free(s);
    }
    br_args_destroy(a);
    return rc;
}

int main(int argc, char** argv) {
    if (argc > 1 && strcmp(argv[1], "--print") == 0) return print_mode(argc - 2, argv + 2);
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) run_case(&CASES[c]);
    char dir[] = "/tmp/batchrun_args_test.XXXXXX";
    if (!mkdtemp(dir)) {
        check(0, "mkdtemp", "cannot make a temporary directory");
    } else {
        test_bad_input(dir);
        test_files(dir);
        rmdir(dir);
    }
    test_large();
    test_cr_warning();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed != 0;
}
