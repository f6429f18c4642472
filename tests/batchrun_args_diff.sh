#!/usr/bin/env bash
# batchrun_args_diff.sh - compares examples/batchrun/args.c with GNU parallel: for each invocation
# of the table, the commands `parallel -k --dry-run -j 2 ARGS` prints (SHELL=/bin/sh) against
# `batchrun_args_test --print ARGS`, and their stderr (warnings, errors; "parallel" read as
# "batchrun") and exit status.
# Usage: bash tests/batchrun_args_diff.sh [path/to/batchrun_args_test]
#        (default: builds tests/batchrun_args_test.c with $CC, default cc, into a temporary dir)
# Last line: "N passed, N failed"; the exit status is non-zero when an invocation differed.
# Without parallel installed: a note and "0 passed, 0 failed", exit status 0.
set -u

if ! command -v parallel >/dev/null 2>&1; then
    echo "batchrun_args_diff: GNU parallel is not installed; nothing to compare"
    echo "0 passed, 0 failed"
    exit 0
fi

TOP=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/batchrun_args_diff.XXXXXX")
trap 'rm -rf "$T"' EXIT

PROG=${1:-}
if [ -z "$PROG" ]; then
    PROG=$T/batchrun_args_test
    if ! ${CC:-cc} -std=c11 -O1 -I"$TOP/examples/batchrun" -o "$PROG" \
        "$TOP/tests/batchrun_args_test.c" "$TOP/examples/batchrun/args.c"; then
        echo "batchrun_args_diff: cannot build the test driver"
        echo "0 passed, 1 failed"
        exit 1
    fi
fi
case $PROG in /*) ;; *) PROG=$PWD/$PROG ;; esac

# parallel without its citation notice and without ~/.parallel
mkdir -p "$T/home" && : >"$T/home/will-cite"
export PARALLEL_HOME=$T/home SHELL=/bin/sh LC_ALL=C
cd "$T" || exit 1

# input files
printf 'f1a\nf1 b\n' >f1
printf "f2a\nf2'b\n\n" >f2
printf 'no newline at the end' >f3
printf 'x\0y\nz\n' >nul
printf 'a\r\nb\r\nc\r\nd\n' >crlf
printf 'a\nb c\n' >lines
printf 'a\n\n  b  \n\n' >blank
printf 'echo 1\necho "2 3"\n' >cmds
mkdir dir

passed=0 failed=0
NORM=p   # a sed script applied to both outputs before they are compared (p: none)
# check NAME STDIN ARGS...: one invocation; STDIN is a file name (/dev/null: none)
check() {
    local name=$1 in=$2
    shift 2
    local pargs=() a
    for a in "$@"; do [ "$a" = --empty-ok ] || pargs+=("$a"); done
    parallel -k --dry-run -j 2 "${pargs[@]}" <"$in" >want.raw 2>want.err
    echo "exit $?" >>want.raw
    sed 's/^parallel: /batchrun: /' want.err >want.err2
    "$PROG" --print "$@" <"$in" >got.raw 2>got.err
    echo "exit $?" >>got.raw
    sed -n "$NORM" want.raw >want.out
    sed -n "$NORM" got.raw >got.out
    if cmp -s want.out got.out && cmp -s want.err2 got.err; then
        passed=$((passed + 1))
        echo "ok   $name"
    else
        failed=$((failed + 1))
        echo "FAIL $name"
        diff want.out got.out | sed 's/^/     out: /' | head -20
        diff want.err2 got.err | sed 's/^/     err: /' | head -10
    fi
}

bytes=()
for i in $(seq 1 255); do
    [ "$i" = 10 ] && continue
    bytes+=("a$(printf "\\$(printf %03o "$i")")b")
done

N=/dev/null
check "quoting" $N echo {} ::: a 'b c' "d'e" '' 'x$y' $'tab\tz' '~x' '-x' 'a=b'
check "quoting of every byte" $N echo ::: "${bytes[@]}"
check "single quotes at the ends" $N echo {} ::: "'a" "a'" "''" "a''b" "'a'" "'''" " '" "' "
check "path replacement strings" $N echo {.} {/} {//} {/.} ::: dir/sub/file.tar.gz plain \
    /abs.x .hidden a.b/c ./x / '' a/ a.b/ /a.b.c 'sp ace/f x.y' x. a.b/.c a..b //a ///a a//b \
    dir/sub// // ./ .. . .a.b 'a\b.c' 'a .b' 'a. b'
check "replacement inside words" $N echo X{}X {}{.} ::: 'a b.c' d
check "{1} {2}" $N echo {1} {2} ::: a b ::: 1 2
check "{2} {1}, three sources" $N echo {2} {1} {3} ::: a b ::: c d ::: e f g
check "{} with two sources" $N echo {} ::: a 'b c' ::: 1 2
check "numbered path strings" $N echo {.} {1.} {2/} {1//} {2/.} ::: a.x/b.c ::: c/d.z 'e f/g.h'
check "missing, negative, zero sources" $N echo {3} {-1} {-2} {1} {01} {0} ::: a ::: b
check "{3}x is a replacement string" $N echo {3}x ::: a
check "not replacement strings" $N echo {foo} {{}} '{ }' {-} {1x} ::: a
check "{} appended" $N echo ::: a b
check "{} appended, two sources" $N echo ::: a b ::: '1 2' 3
check "command words with spaces" $N echo "a b" "c'd" 'x$y' ::: z
check "--link, 2 and 3" $N --link echo {1} {2} ::: a b ::: 1 2 3
check "--link, 3 and 2" $N --link echo {1} {2} ::: a b c ::: 1 2
check "--link, three sources" $N --link echo ::: a b c ::: 1 2 ::: X Y Z W
check "arguments as commands" $N ::: 'echo 1' 'echo {}' 'echo "a b"'
check "arguments as commands, two sources" $N ::: 'echo 1' ::: 'b c' d
check "{#}" $N echo {#} ::: a b c d e f g
# parallel --dry-run's {%} depends on timing (with -j 2: 1 1 2 1 2 ... or 1 2 1 2 ...): the slot
# only has to be 1 or 2 (the test driver gives 1 1 2 1 2 ...)
NORM='s/ [12]$/ SLOT/p'
check "{%} is 1 or 2" $N echo {#} {%} ::: a b c d e f g
NORM=p
check "newlines in ::: words" $N echo ::: $'nl\nx' $'a b\nc' $'\n' $'a\n'
check "unicode" $N echo {} {/.} ::: 'ü' 'dír/ñame.txt' '日本'
check "stdin lines" lines echo
check "stdin blank lines, spaces" blank echo {}
check "stdin lines as commands" cmds
check "stdin without a final newline" f3 echo
check "stdin with NUL" nul echo
check "stdin with CR-NL" crlf echo
check ":::: one file" $N echo :::: f1
check ":::: two files" $N echo :::: f1 f2
check "::: then ::::" $N echo ::: x y :::: f1
check ":::: then :::" $N echo {2} {1} :::: f2 ::: x y
check ":::: - (stdin)" lines echo :::: - f1
check ":::: CR-NL file" $N echo :::: crlf
check ":::: empty file" $N echo :::: /dev/null
check ":::: empty file next to :::" $N echo ::: a b :::: /dev/null
# not compared: parallel 20221122 dies in Perl ("Can't call method "orig" on an undefined
# value") for --link with an empty source; batchrun runs no job.
check "empty ::: next to others" $N --empty-ok echo ::: a ::: ::: b
check "empty ::: alone" $N --empty-ok echo :::
check ":::: missing file" $N echo :::: "$T/missing"
check "30 x 30 product" $N echo {2}-{1} ::: $(seq 30) ::: $(seq 30)

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
