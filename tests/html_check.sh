#!/bin/sh
# html_check.sh - renders the HTML reports of tests/html_gen.c in headless Chromium and checks
# the DOM it ends up with: the <title>, the failure-table rows, the failed bars; then takes a
# screenshot of the 10^4-task report. Usage: html_check.sh GENERATOR OUTDIR
# Without chromium: a note, and "0 passed, 0 failed".
gen=$1 dir=$2
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
browser=$(command -v chromium || command -v chromium-browser)
if [ -z "$browser" ]; then
    echo "note: chromium not installed (apt-get install -y --no-install-recommends chromium): nothing rendered"
    echo "0 passed, 0 failed"
    exit 0
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
"$gen" "$dir" > "$dir/expect.txt" || { bad "html_gen"; echo "$pass passed, $fail failed"; exit 1; }
run() { timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir="$dir/profile" "$@" 2>/dev/null; }
count() { grep -o "$1" "$2" | wc -l | tr -d ' '; }
while read -r file rows failed title; do
    dom="$dir/$file.dom"
    run --dump-dom "file://$dir/$file" > "$dom"
    got=$(sed -n 's:.*<title>\([^<]*\)</title>.*:\1:p' "$dom" | head -n 1)
    [ "$got" = "$title" ] && ok "$file: title '$got'" || bad "$file: title '$got', want '$title'"
    n=$(count '<tr class="[a-z_]*">' "$dom")
    [ "$n" = "$rows" ] && ok "$file: $n failure-table rows" || bad "$file: $n failure-table rows, want $rows"
    n=$(count '<rect class="failed"' "$dom")
    [ "$n" = "$failed" ] && ok "$file: $n failed bars" || bad "$file: $n failed bars, want $failed"
    n=$(count 'transform="translate(' "$dom")
    [ "$n" -gt 0 ] && ok "$file: the script ran (text kept from stretching)" || bad "$file: the zoom script did not run"
done < "$dir/expect.txt"
size=$(wc -c < "$dir/big.html")
[ "$size" -lt 2000000 ] && ok "big.html: $size bytes" || bad "big.html: $size bytes, want < 2 MB"
rm -f "$dir/report-10k.png"
run --screenshot="$dir/report-10k.png" --window-size=1400,900 "file://$dir/big.html" > /dev/null
if [ -s "$dir/report-10k.png" ]; then ok "screenshot $dir/report-10k.png"; else bad "no screenshot"; fi
rm -rf "$dir/profile"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
