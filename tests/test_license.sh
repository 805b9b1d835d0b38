#!/bin/sh
# SPDX-License-Identifier: MIT
# volley is MIT-licensed: LICENSE holds the terms, the Debian copyright file
# names the same licence, and every source, header, script, build file and
# man page says so in an SPDX line within its first three lines. The files
# are the ones git tracks (or, in an unpacked tarball, the same kinds found
# on disk); data (fuzz corpora, the ABI dump) and prose (*.md) carry none.
# $1: the volley binary (not used).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
tag='SPDX-License-Identifier: MIT'
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

grep -q '^MIT License$' "$top/LICENSE" 2>/dev/null || fail "LICENSE is missing or not MIT"
grep -q 'the volley authors' "$top/LICENSE" 2>/dev/null || fail "LICENSE names no copyright holder"
grep -q '^License: MIT$' "$top/cmake/deb/copyright" || fail "cmake/deb/copyright: not MIT"

list=$(mktemp) || exit 1
trap 'rm -f "$list"' EXIT
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$top" ls-files >"$list"
else
    (cd "$top" && find . -path './build*' -prune -o -type f -print | sed 's|^\./||') >"$list"
fi
checked=0
while IFS= read -r f; do
    case $f in
    fuzz/corpus/* | abi/*.abi | *.md | LICENSE | cmake/deb/copyright) continue ;;
    *.c | *.h | *.cc | *.rs | *.sh | *.py | *.cmake | *.in | *.map | *.toml | *.txt | *.suppr | \
        man/*.[137] | .ci/* | .clang-format | .gitignore | cmake/deb/*) ;;
    *) fail "$f: a kind of file this test does not know (licensed or data?)" && continue ;;
    esac
    checked=$((checked + 1))
    head -n 3 "$top/$f" | grep -q "$tag" || fail "$f: no '$tag' in its first 3 lines"
done <"$list"
echo "test_license: $checked files checked, $failures failure(s)"
[ "$checked" -gt 0 ] || fail "no files found under $top"
[ "$failures" -eq 0 ]
