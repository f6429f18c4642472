# alloc_branches.awk - reads gcov -b output of batch.h and lists the allocation-failure checks
# whose branches are not all taken: for every line that allocates (BATCH_MALLOC/REALLOC, strdup,
# deque init, a guarded stb_ds operation, mutex/cond init), the test of the result on that line
# or one of the next three. Used by `make coverage`.
function flush_site(   k) {
    for (k = 0; k < nlines; k++) {
        if (used[lno[k]]) continue;
        if (src[k] ~ /if \(|&&|\|\||\?/ && nbr[k] > 0) {
            used[lno[k]] = 1; sites++;
            if (bad[k]) { untaken++; printf "  batch.h:%d: %s\n%s", lno[k], src[k], brs[k]; }
            return;
        }
    }
}
function add_line(line,   m) {
    n = split(line, parts, ":");
    cur_no = parts[2] + 0;
    s = line; sub(/^[^:]*:[^:]*:/, "", s); gsub(/^[ \t]+/, "", s);
    window_push(cur_no, s);
}
function window_push(no, s) {
    # keep the last 4 lines; a site opened 3 lines ago is decided now
    for (i = 0; i < 3; i++) { lno[i] = lno[i + 1]; src[i] = src[i + 1]; nbr[i] = nbr[i + 1]; bad[i] = bad[i + 1]; brs[i] = brs[i + 1]; isalloc[i] = isalloc[i + 1]; }
    lno[3] = no; src[3] = s; nbr[3] = 0; bad[3] = 0; brs[3] = "";
    isalloc[3] = (s ~ /BATCH_MALLOC\(|BATCH_REALLOC\(|batch__strdup\(|batch__deque_init\(|batch__ds_guarded\(|batch__mutex_init\(|batch__cond_init\(|batch__pool_sync_init\(|batch__gnode_submit\(|batch__enqueue\(|batch__task_alloc\(/) && s !~ /^(\/\*|\*|#)/ && s !~ /^(BATCH__PRIVATE|static|BATCH_API) .*\) *\{ *$/;
}
function decide(   k) {   # the line at window slot 0 leaves: if it allocated, look at slots 0..3
    if (isalloc[0]) { nlines = 4; flush_site(); }
}
/^ *[-#=0-9*]+: *[0-9]+:/ { decide(); add_line($0); next }
/^branch/ { nbr[3]++; if ($0 ~ /never executed|taken 0%/) { bad[3] = 1; brs[3] = brs[3] "      " $0 "\n" } next }
END { for (j = 0; j < 4; j++) { decide(); window_push(0, ""); }
      printf "allocation-failure checks: %d, with a branch never taken: %d\n", sites, untaken }
