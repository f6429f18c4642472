/* args.h - GNU parallel style argument sources for batchrun.

   Turns "COMMAND WORDS ::: a b c :::: FILE ..." into the list of shell commands GNU parallel
   (20221122) runs for it, with its replacement strings and its quoting for /bin/sh:

     sources   ":::" WORDS (each word is one argument; a word containing "\n" is split at it into
               several, as parallel does), "::::" FILES (each file is one source of its lines;
               "-" is stdin). Without --link, the jobs are the cartesian product, the first source
               varying slowest; with --link they are zipped by position, a shorter source wrapping
               around. An empty source next to non-empty ones counts as one empty argument (as in
               parallel); when every source is empty there are no jobs.
     lines     a trailing "\n" is removed; "\r" is kept (parallel keeps it too and warns when the
               first three values of a source end in CR); a NUL byte becomes the two characters
               "\0", with parallel's three-line warning.
     command   the command words joined by single spaces, unquoted. Replacement strings: {} {.} {/}
               {//} {/.} (all sources, each argument quoted, joined by a space), {n} {n.} {n/} {n//}
               {n/.} (source n, 1-based; {-n} counts from the last; {0} is {}; a source that does not exist is
               the empty string), {#} (job number, 1-based), {%} (the slot passed in). Without any
               of them, " {}" is appended. Without command words, the arguments (unquoted, joined
               by a space) are the command.
     quoting   an argument made only of A-Z a-z 0-9 _ + - . / is left alone; the empty string is
               ''; anything else is put in single quotes, each ' written as '"'"' (a leading or
               trailing '' left by that is dropped). The same for SHELL=/bin/sh, dash and bash.

   Differences from parallel 20221122: ":::" with no words after it is an error unless
   BR_ARGS_EMPTY_OK (parallel: an empty source); ":::: DIR" is an error (parallel: silently no
   arguments); --link with an empty source gives no jobs (parallel dies in Perl); "::::+", ":::+"
   and the other replacement strings ({..}, {+/}, {= perl =}, ...) are not known (left as they
   are); parallel warns about NUL bytes for fewer lines when several :::: files have them.

   All functions check their arguments and return an error (never abort); out of memory is an
   error too. No global state: several br_args may be used from different threads. */
#ifndef BATCHRUN_ARGS_H
#define BATCHRUN_ARGS_H

#include <stddef.h>
#include <stdio.h>

typedef struct br_args br_args; /* opaque */

/* flags for br_args_parse_ex */
#define BR_ARGS_LINK 1u     /* --link instead of the cartesian product */
#define BR_ARGS_EMPTY_OK 2u /* ":::" with no words after it is an empty source (parallel: no
                               jobs, or one empty argument next to other sources) instead of an
                               error */

/* argv[0..argc): the command words (may be none), then the sources, each introduced by ":::"
   (the words after it up to the next marker) or "::::" (file names; each file's lines are one
   source, "-" is stdin). link != 0: --link. On error returns nonzero, *out is NULL and err holds
   a message (no "batchrun: " prefix). Warnings (NUL bytes, CR-NL) of :::: files are dropped:
   use br_args_parse_ex to see them. */
int br_args_parse(br_args** out, int argc, char** argv, int link, char* err, size_t errn);

/* br_args_parse with flags (BR_ARGS_*) and a stream for parallel's warnings (NULL: none),
   written as "batchrun: Warning: ...". */
int br_args_parse_ex(br_args** out, int argc, char** argv, unsigned flags, FILE* warn, char* err,
                     size_t errn);

/* Adds the lines of f as one more source (meant for stdin or -f FILE when br_args_parse found no
   source). name is used in messages. A directory is an error ("... Is a directory"); a read
   error too. Returns 0, or nonzero with err filled (a is then unchanged). */
int br_args_read_lines(br_args* a, FILE* f, const char* name, FILE* warn, char* err, size_t errn);

int br_args_has_command(const br_args* a);  /* command words were given (0 for NULL) */
size_t br_args_sources(const br_args* a);   /* number of sources (0 for NULL) */
size_t br_args_count(const br_args* a);     /* number of jobs (0 for NULL) */

/* The shell command of job i (0-based, < br_args_count) for slot `slot` ({%}), malloc'd; NULL
   for bad arguments or out of memory. */
char* br_args_command(const br_args* a, size_t i, int slot);

/* The --tag prefix of job i: its arguments, unquoted, joined by a space (parallel then writes a
   tab and the output line), malloc'd; NULL for bad arguments or out of memory. */
char* br_args_tag(const br_args* a, size_t i);

/* s quoted for /bin/sh the way parallel quotes an argument, malloc'd (NULL: bad argument or out
   of memory). */
char* br_args_quote(const char* s);

void br_args_destroy(br_args* a); /* NULL is fine */

#endif
