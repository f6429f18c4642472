#!/usr/bin/env bash
# bench_batchrun.sh - launch cost of batchrun against xargs -P and GNU parallel, side by side.
# Usage: bash bench/bench_batchrun.sh [path/to/batchrun] [--reps N] [--csv FILE]
# Workloads at -j 2: 200 x `sleep 0.01` (is a finished command noticed at once?) and 2000 x `true`
# (what does a launch cost?). The systems run in turn, REPS rounds (default 5), so drift and noise
# hit all of them alike; the table gives medians, min and max of the wall time in ms and the
# median ratio to xargs. GNU parallel runs only when installed.
set -u
BR=${1:-build/examples/batchrun}
shift || true
REPS=5
CSV=""
while [ $# -gt 0 ]; do
    case $1 in
        --reps) REPS=$2; shift 2 ;;
        --csv) CSV=$2; shift 2 ;;
        *) echo "bench_batchrun: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$BR" ] || { echo "bench_batchrun: no executable at $BR" >&2; exit 2; }
T=$(mktemp -d "${TMPDIR:-/tmp}/bench_batchrun.XXXXXX")
trap 'rm -rf "$T"' EXIT
export PARALLEL_HOME="$T/parallel_home"
mkdir -p "$PARALLEL_HOME" && touch "$PARALLEL_HOME/will-cite"
systems="batchrun xargs"
command -v parallel >/dev/null 2>&1 && systems="$systems parallel"

for i in $(seq 1 200); do echo 'sleep 0.01'; done >"$T/sleep"
for i in $(seq 1 2000); do echo 'true'; done >"$T/true"

now_ns() { date +%s%N; }
# run SYSTEM FILE: the wall time in ns of running FILE's commands at -j 2
run() {
    local t0 t1
    t0=$(now_ns)
    case $1 in
        batchrun) "$BR" -j 2 -f "$2" >/dev/null 2>&1 ;;
        xargs) xargs -P 2 -I{} sh -c '{}' <"$2" >/dev/null 2>&1 ;;
        parallel) SHELL=/bin/sh parallel -j 2 <"$2" >/dev/null 2>&1 ;;
    esac
    t1=$(now_ns)
    echo $(( (t1 - t0) / 1000 ))
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

[ -n "$CSV" ] && echo "workload,system,threads,n,unit,median,min,max" >"$CSV"
printf '%-14s %-9s %10s %10s %10s %8s\n' workload system "median ms" "min ms" "max ms" "/ xargs"
for w in sleep true; do
    n=$(wc -l <"$T/$w" | tr -d ' ')
    for s in $systems; do : >"$T/times.$s"; done
    for r in $(seq 1 "$REPS"); do
        for s in $systems; do run "$s" "$T/$w" >>"$T/times.$s"; done
    done
    xm=$(median <"$T/times.xargs")
    for s in $systems; do
        m=$(median <"$T/times.$s")
        lo=$(sort -n "$T/times.$s" | head -n 1)
        hi=$(sort -n "$T/times.$s" | tail -n 1)
        name="${w}_x$n"
        awk -v w="$name" -v s="$s" -v m="$m" -v lo="$lo" -v hi="$hi" -v x="$xm" \
            'BEGIN { printf "%-14s %-9s %10.1f %10.1f %10.1f %8.2f\n", w, s, m / 1000, lo / 1000, hi / 1000, m / x }'
        [ -n "$CSV" ] && awk -v w="$name" -v s="$s" -v n="$n" -v m="$m" -v lo="$lo" -v hi="$hi" \
            'BEGIN { printf "batchrun_%s,%s,2,%d,ms,%.2f,%.2f,%.2f\n", w, s, n, m / 1000, lo / 1000, hi / 1000 }' >>"$CSV"
    done
done
