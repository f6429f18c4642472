#!/bin/sh
# amalgamate.sh OUT LICENSE API PART... - writes the single header OUT: the API part, then the
# implementation parts inside the BATCH_IMPLEMENTATION guard, then the license. Plain
# concatenation with banners; the one ordered part list lives in the Makefile (PARTS).
set -eu
out=$1; license=$2; api=$3; shift 3
tmp="$out.tmp.$$"
{
    echo "/* SPDX-License-Identifier: MIT */"
    echo "/* batch.h - GENERATED from batch_impl/ by 'make batch.h': edit the parts there, not this file. */"
    cat "$api"
    echo
    echo "/* ======================================================================================== */"
    echo "/* IMPLEMENTATION                                                                           */"
    echo "/* ======================================================================================== */"
    echo "#if defined(BATCH_IMPLEMENTATION) && !defined(BATCH_IMPLEMENTATION_INCLUDED)"
    echo "#define BATCH_IMPLEMENTATION_INCLUDED"
    echo "#define BATCH_SINGLE_FILE"
    for part in "$@"; do
        echo "/* ---- begin $part ---- */"
        cat "$part"
        echo "/* ---- end $part ---- */"
    done
    echo "#endif /* BATCH_IMPLEMENTATION */"
    echo
    echo "/* LICENSE"
    sed 's/^/   /; s/[[:space:]]*$//' "$license"
    echo "*/"
} > "$tmp"
mv "$tmp" "$out"
