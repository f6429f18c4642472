/* opts.h - batchrun's options: its own and GNU parallel's everyday ones (opts.c). */
#ifndef BATCHRUN_OPTS_H
#define BATCHRUN_OPTS_H
#include <stdint.h>
#include <stdio.h>
#include "child.h"

#define BR_EXIT_OTHER 255          /* GNU parallel's "other error": usage, setup, a lost write */
#define BR_MAX_EXIT_FAILED 101     /* more than 100 commands failed */
#define BR_MAX_JOBS 256            /* BATCH_MAX_WORKERS: one worker per running command */
#define BR_OUTPUT_MEM_BOUND (1u << 20)   /* a command's output spills to a file past this */

enum { BR_HALT_NONE, BR_HALT_FAIL, BR_HALT_SUCCESS, BR_HALT_DONE };
typedef struct br_halt {
    int kind;          /* BR_HALT_* */
    int now;           /* now: kill the running commands; soon: let them finish */
    int percent;       /* value is a percentage of the commands done so far */
    double value;      /* X of fail=X, or Y of fail=Y% */
} br_halt;

typedef struct br_opts {
    int jobs, retries;
    uint64_t retry_delay_ns, timeout_ns, delay_ns;
    br_halt halt;
    unsigned char ok_code[256];
    const char* results_dir;
    const char* joblog_path;
    int joblog_append;        /* --joblog +FILE */
    const char* report_json_path;
    const char* report_text_path;
    const char* trace_path;
    const char* cmd_file;
    const char* job_file;
    const char* journal_path;
    int resume;               /* 0 no, 1 --resume, 2 --resume-failed */
    int progress, keep_order, tag, dry_run, link;
    br_out_mode out_mode;
} br_opts;

/* Parses argv's options into o (defaults first). The command and its argument sources start at
   argv[*first_arg] (== argc when there are none). Returns -1 when the run goes on, else the exit
   status (0 after --help or --version, BR_EXIT_OTHER after a usage error, with a message). */
int br_opts_parse(br_opts* o, int argc, char** argv, int* first_arg);
void br_opts_usage(FILE* out);

#endif
