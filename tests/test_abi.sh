#!/bin/sh
# SPDX-License-Identifier: MIT
# The built libvolley.so keeps the ABI recorded in abi/libvolley.so.0.abi:
# no exported function or variable removed or changed, no public type
# changed (sizes, member offsets and types), except members added at the
# end of the structs that carry their size (abi/libvolley.suppr). New
# functions and types are fine. abidiff (abigail-tools) compares, in leaf
# mode so that each changed type is counted once, and with include/ as the
# public headers, so the library's private structs may change freely.
# CONTRIBUTING.md says how to update the baseline when a release breaks the
# ABI on purpose.
#
# Usage: sh tests/test_abi.sh /path/to/volley /path/to/libvolley.so
# Exit status: 0 pass, 1 fail, 77 skip (no abidiff, or a library without
# debug information, e.g. a Release build: its types cannot be compared).
set -u
T=120 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/.." && pwd)
lib=${2:?usage: sh test_abi.sh VOLLEY LIBVOLLEY_SO}
need abidiff "Debian: abigail-tools"
need readelf
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
    echo "skip: $lib has no debug information to compare types with" \
        "(a Release build? RelWithDebInfo or Debug checks the ABI)"
    exit 77
fi

timeout $T abidiff --leaf-changes-only --headers-dir2 "$top/include" \
    --suppressions "$top/abi/libvolley.suppr" \
    "$top/abi/libvolley.so.0.abi" "$lib" >"$tmp/report" 2>&1
rc=$?
cat "$tmp/report"
# abidiff's status is a bit mask: 1 error, 2 usage error, 4 a change,
# 8 an incompatible change (a removed symbol). A change (4) alone is
# what additions give; the counts below tell them from changes to what
# exists, which abidiff reports with 4 as well.
[ $((rc & 3)) -eq 0 ] || { echo "FAIL: abidiff could not compare ($rc)"; exit 1; }
[ $((rc & 8)) -eq 0 ] || fail "incompatible change (abidiff status $rc)"

# count WHAT: the number before WHAT in the summary lines (0 if none).
count() {
    n=$(sed -n "s/.*[^0-9]\([0-9][0-9]*\) $1.*/\1/p" "$tmp/report" | head -n 1)
    echo "${n:-0}"
}
changed_types=$(sed -n 's/^Changed leaf types summary: \([0-9]*\).*/\1/p' "$tmp/report")
[ "${changed_types:-0}" -eq 0 ] || fail "$changed_types public types changed"
grep -q 'functions summary' "$tmp/report" || [ $rc -eq 0 ] ||
    fail "no summary in abidiff's report"
for what in "Removed, .* Changed, .* Added function" "Removed, .* Changed, .* Added variable"; do
    line=$(grep -e "$what" "$tmp/report")
    removed=$(echo "$line" | sed -n 's/.*: \([0-9]*\) Removed.*/\1/p')
    changed=$(echo "$line" | sed -n 's/.* \([0-9]*\) Changed.*/\1/p')
    [ "${removed:-0}" -eq 0 ] || fail "$removed removed: $line"
    [ "${changed:-0}" -eq 0 ] || fail "$changed changed: $line"
done
[ $failures -eq 0 ] || exit 1
echo "ok: the ABI of abi/libvolley.so.0.abi holds (additions: $(count 'Added function') functions)"
