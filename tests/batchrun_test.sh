#!/usr/bin/env bash
# batchrun_test.sh - checks examples/batchrun/ end to end (about 10 s in all).
# Usage: bash tests/batchrun_test.sh [path/to/batchrun]   (default build/examples/batchrun)
# Last line: "N passed, N failed"; the exit status is non-zero when a check failed.
set -u

BR=${1:-build/examples/batchrun}
case $BR in /*) ;; *) BR=$PWD/$BR ;; esac
if [ ! -x "$BR" ]; then echo "batchrun_test: no executable at $BR"; echo "0 passed, 1 failed"; exit 1; fi

T=$(mktemp -d "${TMPDIR:-/tmp}/batchrun_test.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; printf '     %s\n' "$2"; }
check() {   # check NAME 'CONDITION': evaluates the shell condition (may use && and ||)
    if eval "$2"; then ok "$1"; else fail "$1" "condition failed: $2"; fi
}
now_ms() { date +%s%3N; }
# run_br OUT ERR ARGS...: runs batchrun with stdin from /dev/null, sets $rc
run_br() { local out=$1 err=$2; shift 2; "$BR" "$@" </dev/null >"$out" 2>"$err"; rc=$?; }
# field COLUMN ROW JOBLOG: a joblog field (row 1 = the first line after the header)
field() { sed -n "$(($2 + 1))p" "$3" | cut -f "$1"; }
lines() { wc -l <"$1" | tr -d ' '; }

# ---- 1. no arguments, stdin at EOF: exits at once with 0 ----------------------------------------
t0=$(now_ms)
"$BR" </dev/null >/dev/null 2>&1; rc=$?
el=$(( $(now_ms) - t0 ))
check "no arguments, empty stdin: exit 0" '[ "$rc" = 0 ]'
check "no arguments, empty stdin: quick (${el} ms)" '[ "$el" -lt 2000 ]'

# ---- 2. plain commands from stdin; the joblog: a header + one line per command -------------------
printf 'echo one\n\n# a comment\necho two\nexit 3\ntrue\n' | "$BR" -j 2 --joblog jl2 >out2 2>err2; rc=$?
check "stdin commands: exit status = failed commands (1)" '[ "$rc" = 1 ]'
check "stdin commands: output passed through" 'grep -qx two out2'
check "joblog: header + 4 lines" '[ "$(lines jl2)" = 5 ]'
header=$(printf 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand')
check "joblog: header first" '[ "$(head -n 1 jl2)" = "$header" ]'
check "joblog: 9 tab-separated fields on every line (GNU parallel's)" '[ -z "$(awk -F "\t" "NF != 9" jl2)" ]'
check "joblog: exit code 3 of 'exit 3'" '[ "$(grep -P "\texit 3$" jl2 | cut -f 7)" = 3 ]'
check "joblog: Receive = bytes of output (4 of 'echo two')" '[ "$(grep -P "\techo two$" jl2 | cut -f 6)" = 4 ]'
check "joblog: start is epoch seconds with 3 decimals" \
    '[ -z "$(tail -n +2 jl2 | cut -f 3 | grep -Ev "^[0-9]{10,}\.[0-9]{3}$")" ]'
check "summary line on stderr" 'grep -q "4 commands: 3 succeeded, 1 failed" err2'

# ---- 3. a job file with dependencies runs in order ----------------------------------------------
cat >order.jobs <<'EOF'
# a -> b -> c, and d (independent); c also waits for d
a: : sleep 0.2; echo a >> order
b: a : echo b >> order
d: : echo d >> order
c: b d : echo c >> order
EOF
run_br out3 err3 -J order.jobs -j 4
pos() { grep -nx "$1" order | cut -d: -f1; }
check "job file: exit 0" '[ "$rc" = 0 ]'
check "job file: all four ran" '[ "$(lines order)" = 4 ]'
check "job file: a before b before c" '[ "$(pos a)" -lt "$(pos b)" ] && [ "$(pos b)" -lt "$(pos c)" ]'
check "job file: d before c" '[ "$(pos d)" -lt "$(pos c)" ]'
check "job file: d (a root) did not wait for a" '[ "$(pos d)" -lt "$(pos a)" ]'

# ---- 4. a failing command's dependents do not run --------------------------------------------------
cat >fail.jobs <<'EOF'
bad:   : exit 4
child: bad : touch child.ran
grand: child : touch grand.ran
other: : touch other.ran
EOF
run_br out4 err4 -J fail.jobs --report-json rep4.json
check "failure: exit status 1" '[ "$rc" = 1 ]'
check "failure: dependent did not run" '[ ! -e child.ran ]'
check "failure: transitive dependent did not run" '[ ! -e grand.ran ]'
check "failure: independent command ran" '[ -e other.ran ]'
check "failure: report counts 2 skipped" 'grep -q "\"skipped\": 2," rep4.json'
check "failure: report has the failed job" 'grep -q "\"name\": \"bad\", \"status\": \"failed\"" rep4.json'

# ---- 5. a timeout kills sleep 100 within a few seconds ----------------------------------------------
t0=$(now_ms)
echo 'sleep 100' | "$BR" --timeout 0.5 --joblog jl5 >out5 2>err5; rc=$?
el=$(( $(now_ms) - t0 ))
check "timeout: exit status 1" '[ "$rc" = 1 ]'
check "timeout: over within 3 s (${el} ms)" '[ "$el" -lt 3000 ]'
check "timeout: joblog signal 15 (SIGTERM), exit -1" '[ "$(field 8 1 jl5)" = 15 ] && [ "$(field 7 1 jl5)" = -1 ]'
check "timeout: reported" 'grep -q "timed out" err5'
# a command that ignores SIGTERM gets SIGKILL 1 s later, its whole process group with it
t0=$(now_ms)
echo 'trap "" TERM; sleep 99.25; true' | "$BR" --timeout 0.3 --joblog jl5b >/dev/null 2>&1
el=$(( $(now_ms) - t0 ))
check "timeout: SIGTERM ignored -> SIGKILL 1 s later (${el} ms)" '[ "$el" -ge 1200 ] && [ "$el" -lt 4000 ]'
check "timeout: joblog signal 9 (SIGKILL)" '[ "$(field 8 1 jl5b)" = 9 ]'
check "timeout: no sleep left behind" '! pgrep -f "^sleep 99.25$" >/dev/null'

# ---- 6. retries happen (attempts counted in a file) ---------------------------------------------------
cmd6='n=$(cat count6 2>/dev/null || echo 0); n=$((n + 1)); echo $n > count6; [ $n -ge 3 ]'
echo "$cmd6" | "$BR" --retries 3 --retry-delay 10 --joblog jl6 >out6 2>err6; rc=$?
check "retries: succeeds on the 3rd attempt (exit 0)" '[ "$rc" = 0 ]'
check "retries: 3 attempts made" '[ "$(cat count6)" = 3 ]'
check "retries: one joblog line, exit 0" '[ "$(lines jl6)" = 2 ] && [ "$(field 7 1 jl6)" = 0 ]'
check "retries: announced on stderr" '[ "$(grep -c "retry [12] of 3" err6)" = 2 ]'
rm -f count6
echo "$cmd6" | "$BR" --retries 1 --retry-delay 10 >/dev/null 2>&1; rc=$?
check "retries: gives up after 1 retry (exit 1, 2 attempts)" '[ "$rc" = 1 ] && [ "$(cat count6)" = 2 ]'
echo 'echo $BATCHRUN_ATTEMPT >> att6; [ $BATCHRUN_ATTEMPT = 3 ]' | "$BR" --retries 5 --retry-delay 1 >/dev/null 2>&1
check "retries: BATCHRUN_ATTEMPT is 1, 2, 3" '[ "$(tr -d "\n" <att6)" = 123 ]'
t0=$(now_ms)
echo 'exit 1' | "$BR" --retries 2 --retry-delay 200 >/dev/null 2>&1
el=$(( $(now_ms) - t0 ))
check "retries: exponential backoff 200 + 400 ms (${el} ms)" '[ "$el" -ge 600 ] && [ "$el" -lt 2000 ]'

# ---- 7. --halt as GNU parallel has it --------------------------------------------------------------
for i in 1 2 3 4 5 6 7 8 9 10; do echo "echo $i >> ran7; exit $((i + 2))"; done >cmds7
run_br out7 err7 -f cmds7 -j 1 --halt soon,fail=2
check "halt soon,fail=2: no new command after the 2nd failure" '[ "$(lines ran7)" = 2 ]'
check "halt soon,fail=2: exit status 2 (failed commands)" '[ "$rc" = 2 ]'
check "halt: summary says 8 cancelled, halted" 'grep -q "8 cancelled.*(halted)" err7'
rm -f ran7
run_br out7 err7 -f cmds7 -j 1 --halt 1
check "halt 1 (soon,fail=1): exit status of the failing command (3)" '[ "$(lines ran7)" = 1 ] && [ "$rc" = 3 ]'
rm -f ran7
run_br out7 err7 -f cmds7 -j 1 --halt soon,fail=30%
check "halt fail=30%: stops at the first failure (100% of those done); exit = 10% failed" \
    '[ "$(lines ran7)" = 1 ] && [ "$rc" = 10 ]'
rm -f ran7
printf 'exit 1\ntrue\ntouch ran7b\n' | "$BR" -j 1 --halt soon,success=1 >/dev/null 2>&1; rc=$?
check "halt soon,success=1: exit 0 after the first success, no more commands" '[ "$rc" = 0 ] && [ ! -e ran7b ]'
t0=$(now_ms)
printf 'sleep 0.2; exit 7\nsleep 99.75\n' | "$BR" -j 2 --halt now,fail=1 >/dev/null 2>err7n; rc=$?
el=$(( $(now_ms) - t0 ))
check "halt now,fail=1: the running command is killed (${el} ms), exit 7" '[ "$rc" = 7 ] && [ "$el" -lt 3000 ]'
check "halt now: no sleep left behind" '! pgrep -f "^sleep 99.75$" >/dev/null'
run_br out7 err7 -f cmds7 -j 1
check "no halt: all 10 ran, exit 10" '[ "$(lines ran7)" = 10 ] && [ "$rc" = 10 ]'

# ---- 8. --ok-codes 5 counts as success (scenario E: 5 = no tests) ---------------------------------------
echo 'exit 5' | "$BR" >/dev/null 2>&1; rc=$?
check "exit 5 fails by default" '[ "$rc" = 1 ]'
echo 'exit 5' | "$BR" --ok-codes 5 >/dev/null 2>&1; rc=$?
check "--ok-codes 5: exit 5 is a success" '[ "$rc" = 0 ]'
printf 'exit 0\nexit 5\nexit 6\n' | "$BR" --ok-codes 0,5 >/dev/null 2>&1; rc=$?
check "--ok-codes 0,5: only exit 6 fails" '[ "$rc" = 1 ]'

# ---- 9. bad job files exit 255 and name the line ------------------------------------------------------------
printf 'a: : true\n\nb: nosuch : touch ran9\n' >unknown.jobs
run_br out9 err9 -J unknown.jobs
check "unknown dependency: exit 255" '[ "$rc" = 255 ]'
check "unknown dependency: file:line named" 'grep -q "unknown.jobs:3: .*unknown job .nosuch." err9'
check "unknown dependency: nothing ran" '[ ! -e ran9 ]'
printf '# a cycle\na: c : true\nb: a : true\nc: b : true\n' >cycle.jobs
run_br out9 err9 -J cycle.jobs
check "cycle: exit 255" '[ "$rc" = 255 ]'
check "cycle: file:line and the cycle named" 'grep -Eq "^cycle.jobs:[234]: cycle: ([abc] -> ){3}[abc]$" err9'
printf 'a: a : true\n' >self.jobs
run_br out9 err9 -J self.jobs
check "self-dependency: exit 255, line named" '[ "$rc" = 255 ] && grep -q "^self.jobs:1: " err9'
printf 'a: : true\nb: a :   \n' >empty.jobs
run_br out9 err9 -J empty.jobs
check "empty command: exit 255" '[ "$rc" = 255 ]'
check "empty command: file:line named" 'grep -q "^empty.jobs:2: empty command" err9'
printf 'a: : true\nb: : true\na: : false\n' >dup.jobs
run_br out9 err9 -J dup.jobs
check "duplicate name: exit 255, both lines named" \
    '[ "$rc" = 255 ] && grep -q "^dup.jobs:3: duplicate job name .a. (first on line 1)" err9'
printf 'just a command\n' >nocolon.jobs
run_br out9 err9 -J nocolon.jobs
check "line without 'name:': exit 255, line named" '[ "$rc" = 255 ] && grep -q "^nocolon.jobs:1: " err9'
run_br out9 err9 -J no-such-file.jobs
check "missing job file: exit 255" '[ "$rc" = 255 ]'

# ---- 10. usage errors exit 255 (GNU parallel's "other error") ------------------------------------------------------------------------------
run_br out10 err10 -j x
check "-j x: exit 255" '[ "$rc" = 255 ]'
run_br out10 err10 --bogus
check "unknown option: exit 255" '[ "$rc" = 255 ]'
run_br out10 err10 --halt x%
check "bad --halt: exit 255" '[ "$rc" = 255 ]'
run_br out10 err10 --report-json - echo ::: a
check "--report-json - without --results: refused (it would mix with the output)" '[ "$rc" = 255 ]'
run_br out10 err10 --help
check "--help: usage on stdout, exit 0" '[ "$rc" = 0 ] && grep -q "^usage: batchrun" out10'

# ---- 11. --results captures stdout and stderr per command ---------------------------------------------------
printf 'echo out1; echo err1 >&2\necho out2\n' | "$BR" --results res/sub >out11 2>/dev/null
check "--results: DIR/<seq>.out and .err" \
    '[ "$(cat res/sub/1.out)" = out1 ] && [ "$(cat res/sub/1.err)" = err1 ] && [ "$(cat res/sub/2.out)" = out2 ]'
check "--results: nothing on batchrun's stdout" '[ ! -s out11 ]'
printf 'hello: : echo hi\n' >named.jobs
run_br out11 err11 -J named.jobs --results res
check "--results: job files use the name" '[ "$(cat res/hello.out)" = hi ]'

# ---- 12. -j limits concurrency -----------------------------------------------------------------------------
for i in 1 2 3 4 5 6; do echo 'if mkdir lock12 2>/dev/null; then sleep 0.05; rmdir lock12; else touch overlap12; fi'; done >cmds12
run_br out12 err12 -f cmds12 -j 1 --report-json rep12.json
check "-j 1: never two at once" '[ ! -e overlap12 ] && grep -q "\"peak_concurrency\": 1," rep12.json'
t0=$(now_ms)
for i in 1 2 3 4; do echo 'sleep 0.3'; done | "$BR" -j 4 >/dev/null 2>&1
el=$(( $(now_ms) - t0 ))
check "-j 4: four sleeps of 0.3 s overlap (${el} ms)" '[ "$el" -lt 1000 ]'

# ---- 13. reports --------------------------------------------------------------------------------------------
printf 'true\nfalse\n' | "$BR" --report-json rep13.json --report-text rep13.txt >/dev/null 2>&1
check "JSON report: totals" 'grep -q "\"total\": 2," rep13.json && grep -q "\"failed\": 1," rep13.json'
check "text report: the failed command" 'grep -q "false .*failed .*exit 1" rep13.txt'

printf 'sleep 0.05\nexit 3\n' | "$BR" -j 2 --retries 1 --retry-delay 10 --trace trace13.json >/dev/null 2>&1
check "--trace: Chrome trace JSON, an event per attempt and the retry's wait" \
    'grep -q "^{\"traceEvents\": \[" trace13.json && [ "$(grep -o "\"ph\": \"X\", \"cat\": \"task\"" trace13.json | wc -l)" = 3 ] && grep -q "retry-wait" trace13.json'
run_br out13 err13 --trace /dev/full true ::: 1
check "--trace /dev/full: exit 255" '[ "$rc" = 255 ] || [ ! -w /dev/full ]'

# ---- 14. SIGTERM to batchrun stops the running commands and starts no new ones -------------------------------
t0=$(now_ms)
printf 'sleep 99.5\nsleep 99.5\nsleep 99.5\n' | "$BR" -j 1 >/dev/null 2>err14 &
pid=$!
sleep 0.3
kill -TERM "$pid"
wait "$pid"; rc=$?
el=$(( $(now_ms) - t0 ))
check "SIGTERM: exit 143 within 3 s (${el} ms)" '[ "$rc" = 143 ] && [ "$el" -lt 3000 ]'
check "SIGTERM: the running command killed" '! pgrep -f "^sleep 99.5$" >/dev/null'
check "SIGTERM: the 2 others never started" 'grep -q "1 failed, 0 skipped, 2 cancelled.*(interrupted)" err14'

# ---- 15. --journal / --resume: finished commands are not run again ------------------------------------------
for i in 1 2 3 4 5; do echo "echo $i >> ran15"; done >cmds15
run_br out15 err15 -f cmds15 --journal j15
check "journal: first run, all five ran" '[ "$rc" = 0 ] && [ "$(lines ran15)" = 5 ]'
run_br out15b err15b -f cmds15 --journal j15
check "journal: an existing journal without --resume is refused (exit 2)" \
    '[ "$rc" = 255 ] && grep -q "pass --resume" err15b && [ "$(lines ran15)" = 5 ]'
run_br out15c err15c -f cmds15 --journal j15 --resume
check "journal: --resume of a finished run runs nothing" \
    '[ "$rc" = 0 ] && [ "$(lines ran15)" = 5 ] && grep -q "5 succeeded.*(5 from the journal)" err15c'
echo "echo 6 >> ran15" >>cmds15
run_br out15d err15d -f cmds15 --journal j15 --resume
check "journal: other commands are another job (exit 2, nothing runs)" \
    '[ "$rc" = 255 ] && grep -q "journal of other commands" err15d && [ "$(lines ran15)" = 5 ]'
run_br out15e err15e --resume
check "--resume without --journal: usage error" '[ "$rc" = 255 ]'

# a failing command: --resume keeps its failure, --resume-failed runs it again
printf 'echo a >> ran15f\ntest -e fixed15 || exit 4\necho c >> ran15f\n' >cmds15f
run_br out15f err15f -f cmds15f --journal j15f --joblog jl15f
check "journal: one failure recorded (exit 1)" '[ "$rc" = 1 ] && [ "$(lines ran15f)" = 2 ]'
touch fixed15
run_br out15g err15g -f cmds15f --journal j15f --resume
check "--resume: the failure stands, nothing runs" '[ "$rc" = 1 ] && [ "$(lines ran15f)" = 2 ]'
run_br out15h err15h -f cmds15f --journal j15f --resume-failed --joblog jl15f
check "--resume-failed: the failed command runs again and succeeds" \
    '[ "$rc" = 0 ] && [ "$(lines ran15f)" = 2 ] && grep -q "3 succeeded" err15h'
check "--resume: the joblog grows (one header, 3 + 1 lines)" \
    '[ "$(lines jl15f)" = 5 ] && [ "$(grep -c "^Seq" jl15f)" = 1 ]'

# SIGKILL half-way, then resume: every command ran, at most -j of them twice
for i in $(seq 1 40); do echo "sleep 0.05; echo $i >> ran15k"; done >cmds15k
"$BR" -f cmds15k -j 2 --journal j15k </dev/null >/dev/null 2>&1 &
pid=$!
sleep 0.4
kill -KILL "$pid"
wait "$pid" 2>/dev/null
sleep 0.2   # the orphaned commands of the killed run finish
before=$(lines ran15k)
run_br out15k err15k -f cmds15k -j 2 --journal j15k --resume
uniq15=$(sort -n ran15k | uniq | wc -l | tr -d ' ')
total15=$(lines ran15k)
check "SIGKILL + --resume: the killed run had done part (${before} of 40)" '[ "$before" -gt 0 ] && [ "$before" -lt 40 ]'
check "SIGKILL + --resume: all 40 ran (${uniq15} distinct)" '[ "$rc" = 0 ] && [ "$uniq15" = 40 ]'
check "SIGKILL + --resume: at most -j (2) ran twice (${total15} runs)" '[ "$total15" -le 42 ]'
check "SIGKILL + --resume: the resumed run skipped the journaled ones" 'grep -q "from the journal" err15k'

# ---- 16. GNU parallel's idioms ------------------------------------------------------------------------------
run_br out16 err16 -k echo {} ::: a 'b c'
check "{} ::: a 'b c': two commands, in order" '[ "$(cat out16)" = "$(printf "a\nb c")" ]'
run_br out16 err16 -k echo ::: x y
check "no replacement string: ' {}' appended" '[ "$(cat out16)" = "$(printf "x\ny")" ]'
printf 'dir/f.tar.gz\n' | "$BR" -k echo {.} {/} {//} {/.} >out16 2>/dev/null
check "stdin lines are the arguments; {.} {/} {//} {/.}" '[ "$(cat out16)" = "dir/f.tar dir/f.tar.gz dir f.tar" ] || [ "$(cat out16)" = "dir/f.tar f.tar.gz dir f.tar" ]'
run_br out16 err16 -k echo {2}{1} ::: a b ::: 1 2
check "two sources: the product, {n}" '[ "$(tr "\n" " " <out16)" = "1a 2a 1b 2b " ]'
run_br out16 err16 -k --link echo {1}{2} ::: a b ::: 1 2
check "--link pairs the sources" '[ "$(tr "\n" " " <out16)" = "a1 b2 " ]'
run_br out16 err16 --dry-run echo {#} ::: a b
check "--dry-run prints the commands, runs nothing; {#}" '[ "$(cat out16)" = "$(printf "echo 1\necho 2")" ]'
run_br out16 err16 -k --tag echo ::: a b
check "--tag: argument, TAB, line" '[ "$(cat out16)" = "$(printf "a\ta\nb\tb")" ]'
run_br out16 err16 -k -j 3 'sleep {}; echo {}' ::: 0.3 0.1 0.2
check "-k: output in input order" '[ "$(tr "\n" " " <out16)" = "0.3 0.1 0.2 " ]'
run_br out16 err16 -j 2 'for i in 1 2 3; do echo {}$i; sleep 0.05; done' ::: A B
check "grouped output: a command's lines stay together" \
    '[ "$(tr -d "\n" <out16)" = A1A2A3B1B2B3 ] || [ "$(tr -d "\n" <out16)" = B1B2B3A1A2A3 ]'
run_br out16 err16 -j 2 --ungroup 'for i in 1 2 3; do echo {}$i; sleep 0.3; done' ::: A B
check "--ungroup: lines of both commands mix" '[ "$(sed -n 1p out16 | head -c 1)" != "$(sed -n 2p out16 | head -c 1)" ] && [ "$(lines out16)" = 6 ]'
run_br out16 err16 --version
check "--version: the library's version" 'grep -Eq "^batchrun \(batch.h\) [0-9]+\.[0-9]+\.[0-9]+$" out16'
t0=$(now_ms)
run_br out16 err16 -j 2 --delay 0.2 true ::: 1 2 3
el=$(( $(now_ms) - t0 ))
check "--delay 0.2: three starts take >= 0.4 s (${el} ms)" '[ "$el" -ge 400 ]'

# ---- 17. no write failure ends in exit status 0 ----------------------------------------------------------------
if [ -w /dev/full ]; then
    run_br out17 err17 --joblog /dev/full true ::: 1 2
    check "--joblog /dev/full: exit 255, file and cause named" '[ "$rc" = 255 ] && grep -q "/dev/full.*No space left" err17'
    run_br out17 err17 --report-json /dev/full true ::: 1
    check "--report-json /dev/full: exit 255" '[ "$rc" = 255 ] && grep -q "/dev/full" err17'
    "$BR" echo ::: a b </dev/null >/dev/full 2>err17; rc=$?
    check "stdout on /dev/full: exit 255, cause named" '[ "$rc" = 255 ] && grep -q "No space left" err17'
fi
full_dir=""
if [ "$(id -u)" = 0 ] && mkdir -p full17 && mount -t tmpfs -o size=32k tmpfs full17 2>/dev/null; then full_dir=full17; fi
if [ -n "$full_dir" ]; then
    mkdir full17/res
    head -c 30000 /dev/zero >full17/fill
    seq 1 300 | "$BR" -j 2 --journal full17/j true >/dev/null 2>err17; rc=$?
    check "--journal on a full disk: non-zero exit (${rc}), said so" '[ "$rc" = 255 ] && grep -q "journal" err17'
    seq 1 300 | "$BR" -j 2 --joblog full17/jl true >/dev/null 2>err17; rc=$?
    check "--joblog on a full disk: exit 255" '[ "$rc" = 255 ] && grep -q "No space left" err17'
    for i in $(seq 1 20); do echo "head -c 4000 /dev/zero"; done >cmds17r
    "$BR" -j 2 -f cmds17r --results full17/res </dev/null >/dev/null 2>err17; rc=$?
    check "--results on a full disk: exit 255, the file named" \
        '[ "$rc" = 255 ] && grep -q "cannot write full17/res/[0-9]*\.out: No space left" err17'
    umount full17
else
    echo "     (not root or no tmpfs: the full-disk journal check is skipped; /dev/full covers the rest)"
fi
mkdir -p dir17
run_br out17 err17 -f dir17
check "-f DIR: says it is a directory, exit 255" '[ "$rc" = 255 ] && grep -q "Is a directory" err17'
printf 'echo a\000b\n' >nul17
run_br out17 err17 -f nul17
check "a NUL byte in a command: a warning" 'grep -q "Warning.*NUL" err17'
(ulimit -n 6; echo true | "$BR" -j 1 >out17 2>err17); rc=$?
check "too few file descriptors: exit 255 and the real cause (${rc})" '[ "$rc" = 255 ] && grep -q "Too many open files" err17'
mkdir -p res17
"$BR" --results res17 --report-json - echo ::: a b </dev/null >out17 2>/dev/null
check "--report-json - with --results: stdout is the report alone" \
    '[ "$(head -c 1 out17)" = "{" ] && ! grep -qx a out17 && [ "$(cat res17/1.out)" = a ]'

# ---- 18. differential: the same command lines through GNU parallel -k and batchrun -k --------------------------
if command -v parallel >/dev/null 2>&1; then
    export PARALLEL_HOME="$T/parallel_home"
    mkdir -p "$PARALLEL_HOME" && touch "$PARALLEL_HOME/will-cite"
    printf 'f1\nf 2\n' >args18
    # same NAME INPUT ARGS...: stdout and exit status of both must match (stdin = INPUT, printf format)
    same() {
        local name=$1 input=$2
        shift 2
        printf "$input" | SHELL=/bin/sh parallel -k -j 2 "$@" >p18 2>/dev/null; local prc=$?
        printf "$input" | "$BR" -k -j 2 "$@" >b18 2>/dev/null; local brc=$?
        if cmp -s p18 b18 && [ "$prc" = "$brc" ]; then ok "same as parallel: $name"
        else fail "same as parallel: $name" "parallel: rc $prc $(head -c 200 p18 | tr '\n' '|')  batchrun: rc $brc $(head -c 200 b18 | tr '\n' '|')"; fi
    }
    same "echo {} :::" '' echo {} ::: a b c
    same "appended {}" '' echo ::: a 'b c'
    same "{.} {/} {//} {/.}" '' echo {.} {/} {//} {/.} ::: dir/sub/f.tar.gz plain /abs.x
    same "two sources, {1} {2}" '' echo {1} {2} ::: a b ::: 1 2
    same "--link" '' --link echo {1} {2} ::: a b c ::: 1 2
    same "{#}" '' echo {#} {} ::: x y z
    same "exit codes: 2 failed" '' 'exit {}' ::: 0 1 2
    same "--tag" '' --tag echo ::: a b
    same "stdin lines as arguments" 'l1\nl2 x\n' echo
    same "empty line argument" 'a\n\nb\n' echo x{}y
    same "quoting of special characters" '' echo {} ::: "d'e" 'x$y' 'a;b' '*' 'q"r' 'back\slash'
    same "arguments are the commands" '' ::: 'echo 1' 'echo 2; exit 3'
    same ":::: FILE" '' echo {} :::: args18
    same "--halt soon,fail=1" '' --halt soon,fail=1 -j 1 'exit {}' ::: 0 4 0
    same "101 for more than 100 failures" '' false ::: $(seq 1 120)
    same "multi-line output grouped" '' 'echo {}1; echo {}2' ::: a b c
    same "stderr is not stdout" '' 'echo out{}; echo err{} >&2' ::: a b
else
    echo "     (GNU parallel is not installed: the differential checks are skipped)"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
