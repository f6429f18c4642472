#!/usr/bin/env bash
# batchrun_queue_test.sh - checks `batchrun queue` (examples/batchrun/queue_cmd.c) end to end
# on real queue files: add, serve (one and two at once, failures, cancels, kill -9, signals),
# list paging, show, stats, compact (also during a serve), JSON, usage errors. About 20 s.
# Usage: bash tests/batchrun_queue_test.sh [path/to/batchrun]   (default build/examples/batchrun)
# Last line: "N passed, N failed"; the exit status is non-zero when a check failed.
set -u

BR=${1:-build/examples/batchrun}
case $BR in /*) ;; *) BR=$PWD/$BR ;; esac
if [ ! -x "$BR" ]; then echo "batchrun_queue_test: no executable at $BR"; echo "0 passed, 1 failed"; exit 1; fi

T=$(mktemp -d "${TMPDIR:-/tmp}/batchrun_queue_test.XXXXXX")
bg_pids=""
cleanup() {
    for p in $bg_pids; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 1

passed=0 failed=0
ok()   { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; printf '     %s\n' "$2"; }
check() {   # check NAME 'CONDITION': evaluates the shell condition (may use && and ||)
    if eval "$2"; then ok "$1"; else fail "$1" "condition failed: $2"; fi
}
now_ms() { date +%s%3N; }
lines() { wc -l <"$1" | tr -d ' '; }
Q() { "$BR" queue "$@"; }   # (not for background runs: $! would be a subshell)
# jget FILE EXPR: a Python expression over the JSON document d in FILE, printed ("ERR" when the
# file is not JSON); jf FILE KEY...: those fields of the object, joined by '|'
if command -v python3 >/dev/null; then HAVE_PY=1; else HAVE_PY=0; echo "     (no python3: the JSON checks are skipped)"; fi
jget() { python3 -c 'import json,sys
try: d = json.load(open(sys.argv[1]))
except Exception as e: print("ERR"); sys.exit(0)
print(eval(sys.argv[2]))' "$1" "$2"; }
jf() { python3 -c 'import json,sys
try: d = json.load(open(sys.argv[1]))
except Exception as e: print("ERR"); sys.exit(0)
print("|".join(str(d[k]) for k in sys.argv[2:]))' "$@"; }
json_ok() { [ "$HAVE_PY" = 0 ] || python3 -c 'import json,sys; json.load(sys.stdin)' <"$1" 2>/dev/null; }
# wait_for SECONDS CONDITION: polls the condition every 50 ms
wait_for() {
    local end=$(( $(now_ms) + $1 * 1000 ))
    while ! eval "$2"; do [ "$(now_ms)" -ge "$end" ] && return 1; sleep 0.05; done
}
status_of() { Q "$1" show "$2" --json 2>/dev/null | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p'; }

# ---- 1. add one job; show it ----------------------------------------------------------------------
Q q1 add --priority 3 --retries 2 --name first echo hello world >out1 2>err1; rc=$?
check "add: exit 0, prints the id 1" '[ "$rc" = 0 ] && [ "$(cat out1)" = 1 ]'
check "add: the queue file is mode 0600" '[ "$(stat -c %a q1)" = 600 ]'
Q q1 show 1 >out1 2>&1
check "show: the command, joined by spaces" 'grep -q "^command  *echo hello world$" out1'
check "show: name, priority, retries, status" \
    'grep -q "^name  *first$" out1 && grep -q "^priority  *3$" out1 && grep -q "^retries  *2$" out1 && grep -q "^status  *queued$" out1'
Q q1 show 1 --json >out1j
check "show --json parses" 'json_ok out1j'
[ "$HAVE_PY" = 1 ] && check "show --json: fields" \
    '[ "$(jf out1j command name priority max_retries status attempts)" = "echo hello world|first|3|2|queued|0" ]'
Q q1 add --quiet -- echo '"quoted"' 'tab	here' >out1 && Q q1 --json show 2 >out1j
check "add --quiet prints nothing; -- ends the options" '[ ! -s out1 ]'
want=$(printf 'echo "quoted" tab\there')
check "JSON escapes quotes and control characters" 'json_ok out1j && grep -qF "tab\\there" out1j'
[ "$HAVE_PY" = 1 ] && check "JSON: the command comes back whole" '[ "$(jf out1j command)" = "$want" ]'
printf 'echo a\001b\377c\n' | Q q1 add --quiet && Q q1 show 3 --json >out1j
check "JSON of a command with a raw control byte parses" 'json_ok out1j'

# ---- 2. add 1000 commands from stdin; stats --------------------------------------------------------
for i in $(seq 1 1000); do echo "echo $i"; done >cmds2
printf '\n# a comment\n   \n' >>cmds2
Q q2 add <cmds2 >out2 2>err2; rc=$?
check "add from stdin: exit 0, 1000 ids 1..1000 (blank and # lines skipped)" \
    '[ "$rc" = 0 ] && [ "$(lines out2)" = 1000 ] && [ "$(head -n 1 out2)" = 1 ] && [ "$(tail -n 1 out2)" = 1000 ]'
Q q2 stats >out2 && Q q2 stats --json >out2j
check "stats: 1000 queued, total 1000, next id 1001" \
    'grep -q "^queued  *1000$" out2 && grep -q "^total  *1000$" out2 && grep -q "^next id  *1001$" out2'
check "stats --json parses" 'json_ok out2j'
[ "$HAVE_PY" = 1 ] && check "stats --json: counts" '[ "$(jf out2j queued done total next_id)" = "1000|0|1000|1001" ]'
printf 'echo a\necho b\n' | Q q2 add --json >out2j
check "add --json: an array of the ids" 'json_ok out2j && [ "$(tr -d " \n" <out2j)" = "[1001,1002]" ]'

# ---- 3. list paging: every id once across pages ------------------------------------------------------
: >ids3
for off in $(seq 0 70 1002); do Q q2 list --offset "$off" --limit 70 >out3 || break; tail -n +2 out3 | awk '{print $1}' >>ids3; done
check "list pages (--offset/--limit 70): 1002 ids, each once, in order" \
    '[ "$(lines ids3)" = 1002 ] && [ -z "$(uniq -d ids3)" ] && sort -n -c ids3 2>/dev/null'
Q q2 list >out3
check "list: default limit 100 (and a header)" '[ "$(lines out3)" = 101 ] && head -n 1 out3 | grep -q "^ID  *STATUS  *PRIO  *ATTEMPTS  *NAME  *COMMAND$"'
check "list: aligned columns" '[ "$(awk "{print index(\$0, \"queued\")}" <(tail -n +2 out3) | sort -u | wc -l)" = 1 ]'
Q q2 list --offset 995 --limit 0 --json >out3j
check "list --json: an array that parses" 'json_ok out3j'
[ "$HAVE_PY" = 1 ] && check "list --json --offset 995 --limit 0: ids 996..1002 with commands" \
    '[ "$(jget out3j "[j[\"id\"] for j in d] == list(range(996, 1003)) and d[0][\"command\"] == \"echo 996\"")" = True ]'
Q q2 list --status done >out3
check "list --status done on a fresh queue: just the header" '[ "$(lines out3)" = 1 ]'

# ---- 4. serve --drain runs each job exactly once ------------------------------------------------------
for i in $(seq 1 300); do echo "echo $i >> $T/ran4"; done | Q q4 add --quiet
t0=$(now_ms)
Q q4 serve -j 4 --drain >out4 2>err4; rc=$?
el=$(( $(now_ms) - t0 ))
check "serve --drain: exit 0 (${el} ms)" '[ "$rc" = 0 ]'
check "serve --drain: 300 commands ran, each once" '[ "$(lines ran4)" = 300 ] && [ "$(sort -n ran4 | uniq | wc -l)" = 300 ]'
Q q4 stats --json >out4j
check "serve --drain: stats say 300 done" 'grep -q "\"done\":300" out4j && grep -q "\"queued\":0" out4j'
check "serve: the summary on stderr" 'grep -q "300 done, 0 failed" err4'

# ---- 5. two serves at once on one queue: every job once -----------------------------------------------
for i in $(seq 1 400); do echo "echo $i >> $T/ran5"; done | Q q5 add --quiet
"$BR" queue q5 serve -j 3 --drain >out5a 2>err5a & pa=$!
"$BR" queue q5 serve -j 3 --drain >out5b 2>err5b & pb=$!
bg_pids="$bg_pids $pa $pb"
wait $pa; ra=$?
wait $pb; rb=$?
check "two serves at once: both exit 0" '[ "$ra" = 0 ] && [ "$rb" = 0 ]'
check "two serves at once: 400 commands ran, each once" '[ "$(lines ran5)" = 400 ] && [ "$(sort -n ran5 | uniq | wc -l)" = 400 ]'
da=$(sed -n 's/.*: \([0-9]*\) done.*/\1/p' err5a); db=$(sed -n 's/.*: \([0-9]*\) done.*/\1/p' err5b)
check "two serves at once: their done counts add up to 400 (${da} + ${db})" '[ $((da + db)) = 400 ]'

# ---- 6. output grouped per job; environment; priority order ----------------------------------------
Q q6 add --quiet 'echo a1; sleep 0.2; echo a2; echo a3 >&2'
Q q6 add --quiet 'echo b1; sleep 0.1; echo b2'
Q q6 add --quiet --name envjob --priority 9 'echo "id=$BATCHRUN_QUEUE_ID attempt=$BATCHRUN_ATTEMPT name=$BATCHRUN_NAME q=$BATCHRUN_QUEUE"'
Q q6 serve -j 1 --drain >out6 2>err6
check "priority: the priority-9 job ran first" '[ "$(head -n 1 out6)" = "id=3 attempt=1 name=envjob q=q6" ]'
Q q6 add --quiet 'echo c1; sleep 0.2; echo c2'
Q q6 add --quiet 'echo d1; sleep 0.1; echo d2'
Q q6 serve -j 2 --drain >out6 2>err6
check "grouped output: each job's lines stay together" 'grep -A1 -x c1 out6 | grep -qx c2 && grep -A1 -x d1 out6 | grep -qx d2'

# ---- 7. a failing command: failed after its retries, the exit status recorded ------------------------
Q q7 add --quiet --retries 2 'echo try >> tries7; exit 3'
Q q7 add --quiet 'true'
Q q7 serve -j 2 --drain --retry-delay 20 >out7 2>err7; rc=$?
check "serve with a failing command: exit 1" '[ "$rc" = 1 ]'
check "a failing command ran 1 + 2 retries times" '[ "$(lines tries7)" = 3 ]'
Q q7 show 1 --json >out7j
check "show --json of the failed job parses" 'json_ok out7j'
[ "$HAVE_PY" = 1 ] && check "failed job: status failed, attempts 3, error 3, message" \
    '[ "$(jf out7j status attempts error message)" = "failed|3|3|exit 3" ]'
check "the other job is done" '[ "$(status_of q7 2)" = done ]'
Q q7 add --quiet --retries 0 'sleep 5'
Q q7 serve --drain --timeout 0.3 >out7 2>err7; rc=$?
check "--timeout: the command is stopped, the job failed with 124" \
    '[ "$rc" = 1 ] && [ "$(status_of q7 3)" = failed ] && Q q7 show 3 | grep -q "^error  *124$"'

# ---- 8. cancel: a queued job never runs; a running one is killed quickly -------------------------------
Q q8 add --quiet "touch $T/never8"
Q q8 add --quiet "true"
Q q8 cancel 1 >out8 2>err8; rc=$?
check "cancel a queued job: exit 0" '[ "$rc" = 0 ] && grep -qx "cancelled 1" out8'
Q q8 serve --drain >out8 2>err8
check "a job cancelled while queued never runs" '[ ! -e never8 ] && [ "$(status_of q8 1)" = cancelled ] && [ "$(status_of q8 2)" = done ]'
Q q8 cancel 1 >out8 2>err8; rc=$?
check "cancel of a cancelled job: exit 1, said so" '[ "$rc" = 1 ] && grep -q "already cancelled" err8'
Q q8 cancel 99 >out8 2>err8; rc=$?
check "cancel of an unknown id: exit 1" '[ "$rc" = 1 ] && grep -q "no job 99" err8'
Q q8 show 99 >out8 2>err8; rc=$?
check "show of an unknown id: exit 1" '[ "$rc" = 1 ] && grep -q "no job 99" err8'
Q q8 add --quiet "echo started >> $T/started8; sleep 30; touch $T/finished8"
"$BR" queue q8 serve --drain --lease 1 >out8 2>err8 & ps8=$!
bg_pids="$bg_pids $ps8"
wait_for 5 '[ -s started8 ]'
t0=$(now_ms)
Q q8 cancel 3 --json >out8j; rc=$?
check "cancel --json of a running job: exit 0, parses" '[ "$rc" = 0 ] && json_ok out8j'
wait $ps8; rc=$?
el=$(( $(now_ms) - t0 ))
check "a running job's command is stopped quickly (${el} ms), the serve ends" '[ "$el" -lt 3000 ]'
check "the cancelled running job is cancelled, its command did not finish" '[ "$(status_of q8 3)" = cancelled ] && [ ! -e finished8 ]'
check "the cancelled job is not counted as a failure: exit 0 (${rc})" '[ "$rc" = 0 ]'

# ---- 9. kill -9 of a serve during a long job (--lease 1): another serve finishes it ------------------
# (a lost lease counts as a failed attempt: the job needs a retry left to run again)
Q q9 add --quiet --retries 1 "echo \$\$ >> $T/pids9; sleep 1; echo end >> $T/ends9"
"$BR" queue q9 serve --lease 1 >out9 2>err9 & ps9=$!
bg_pids="$bg_pids $ps9"
wait_for 5 '[ -s pids9 ]'
kill -9 $ps9; wait $ps9 2>/dev/null
kill -9 -- "-$(head -n 1 pids9)" 2>/dev/null   # the orphaned command's process group
check "after kill -9 the job is still running (leased)" '[ "$(status_of q9 1)" = running ]'
sleep 1.2   # the lease runs out
Q q9 serve --drain --lease 1 >out9 2>err9; rc=$?
check "another serve --drain finishes it: exit 0" '[ "$rc" = 0 ]'
check "the job is done, in 2 attempts, its command ran to the end once" \
    '[ "$(status_of q9 1)" = done ] && Q q9 show 1 | grep -q "^attempts  *2$" && [ "$(lines ends9)" = 1 ]'

# ---- 10. SIGTERM to a serve: the command stops, the job goes back to the queue --------------------------
Q q10 add --quiet "echo \$\$ >> $T/pids10; sleep 30"
"$BR" queue q10 serve >out10 2>err10 & ps10=$!
bg_pids="$bg_pids $ps10"
wait_for 5 '[ -s pids10 ]'
t0=$(now_ms)
kill -TERM $ps10
wait $ps10; rc=$?
el=$(( $(now_ms) - t0 ))
check "SIGTERM: the serve ends quickly (${el} ms), exit 0" '[ "$el" -lt 3000 ] && [ "$rc" = 0 ]'
# (its processes may linger as zombies where PID 1 does not reap orphans: those do not count)
alive10() { ps -eo pgid=,stat= 2>/dev/null | awk -v g="$(head -n 1 pids10)" '$1 == g && $2 !~ /^Z/' | wc -l; }
check "SIGTERM: the command's process group is gone" '[ "$(alive10)" = 0 ]'
check "SIGTERM: the job is queued again, its attempt not counted" \
    '[ "$(status_of q10 1)" = queued ] && Q q10 show 1 | grep -q "^attempts  *0$"'

# ---- 11. compact keeps the listing; --drop-finished drops the finished jobs -----------------------------
Q q7 list --limit 0 --json >before11 && Q q7 list --limit 0 >before11t
Q q7 compact >out11 2>err11; rc=$?
Q q7 list --limit 0 --json >after11 && Q q7 list --limit 0 >after11t
check "compact: exit 0" '[ "$rc" = 0 ] && grep -q "^compacted q7" out11'
check "compact: the listing is identical (JSON and text)" 'cmp -s before11 after11 && cmp -s before11t after11t'
Q q2 list --limit 0 --json >before11 && Q q2 stats --json >stats11a
Q q2 compact --json >out11 2>err11; rc=$?
Q q2 list --limit 0 --json >after11 && Q q2 stats --json >stats11b
check "compact --json parses" '[ "$rc" = 0 ] && json_ok out11'
check "compact of 1002 queued jobs: the listing is identical" 'cmp -s before11 after11'
Q q4 compact --drop-finished >out11 2>err11; rc=$?
Q q4 stats --json >stats11
check "compact --drop-finished: the 300 done jobs are gone, ids go on from 301" \
    '[ "$rc" = 0 ] && grep -q "\"total\":0" stats11 && [ "$(Q q4 add true)" = 301 ]'

for i in $(seq 1 300); do echo "echo $i >> $T/ran11"; done | Q q11 add --quiet
"$BR" queue q11 serve -j 4 --drain >out11 2>err11 & ps11=$!
bg_pids="$bg_pids $ps11"
n11=0 bad11=0
while kill -0 $ps11 2>/dev/null; do Q q11 compact --drop-finished >/dev/null 2>&1 || bad11=1; n11=$((n11 + 1)); done
wait $ps11; rc=$?
check "compact --drop-finished while a serve runs (${n11} times): all succeed, every job once" \
    '[ "$rc" = 0 ] && [ "$bad11" = 0 ] && [ "$(lines ran11)" = 300 ] && [ "$(sort -n ran11 | uniq | wc -l)" = 300 ]'

# ---- 12. usage and queue errors exit 255 --------------------------------------------------------------
usage_rc() { Q "$@" >outu 2>erru </dev/null; echo $?; }
check "no queue file: 255" '[ "$(usage_rc)" = 255 ] && grep -q "^batchrun: queue: " erru'
check "no subcommand: 255" '[ "$(usage_rc q12)" = 255 ]'
check "unknown subcommand: 255" '[ "$(usage_rc q12 frobnicate)" = 255 ] && grep -q "unknown subcommand" erru'
check "unknown option: 255" '[ "$(usage_rc q12 list --bogus)" = 255 ]'
check "an option of another subcommand: 255" '[ "$(usage_rc q12 list --drain)" = 255 ] && grep -q "not an option of list" erru'
check "bad --limit: 255" '[ "$(usage_rc q12 list --limit x)" = 255 ]'
check "bad --status: 255" '[ "$(usage_rc q12 list --status sleeping)" = 255 ]'
check "bad --durability: 255" '[ "$(usage_rc q12 stats --durability forever)" = 255 ]'
check "show without an id: 255" '[ "$(usage_rc q12 show)" = 255 ]'
check "show with a bad id: 255" '[ "$(usage_rc q12 show 0)" = 255 ]'
check "add --retries 1001: 255" '[ "$(usage_rc q12 add --retries 1001 true)" = 255 ]'
check "serve -j 0: 255" '[ "$(usage_rc q12 serve -j 0)" = 255 ]'
echo "this is not a queue" >notq
check "a file that is not a queue: 255" '[ "$(usage_rc notq stats)" = 255 ] && grep -q "notq" erru'
check "-h: usage on stdout, exit 0" '[ "$(usage_rc -h)" = 0 ] && grep -q "^usage: batchrun queue" outu'
for d in process machine buffered; do
    Q q12 --durability "$d" add --quiet "echo $d >> $T/dur12" && Q q12 serve --drain --durability "$d" >/dev/null 2>&1
done
check "--durability process|machine|buffered: add and serve work" '[ "$(lines dur12)" = 3 ] && [ "$(Q q12 stats --json | grep -c "\"done\":3")" = 1 ]'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
