#!/bin/sh
# SPDX-License-Identifier: MIT
# The source tree's imports go one way: a directory may not include the
# headers another directory keeps for itself. Each rule is one call at the
# end of this file:
#   forbid_includes DIR HEADER...            no DIR/*.c or DIR/*.h includes
#                                            a HEADER
#   forbid_headers_of DIR OTHER [HEADER...]  nor any of OTHER/*.h (and the
#                                            HEADERs)
# A header is matched by its name, quoted or in angle brackets, with or
# without a path before it ("bench.h", "../bench/bench.h"). Each include
# found is printed with its file and line, and the test fails.
# $1: the volley binary (not used).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
failures=0
checked=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# forbid_includes DIR HEADER...: DIR is relative to the top of the tree;
# its files directly inside (not its subdirectories) are checked.
forbid_includes() {
    fi_dir=$1
    shift
    [ $# -gt 0 ] || {
        fail "forbid_includes $fi_dir: no header named"
        return
    }
    fi_names=""
    for fi_h in "$@"; do
        fi_h=$(printf '%s\n' "$fi_h" | sed 's/[].[\\*^$+?(){}|]/\\&/g')
        fi_names="$fi_names${fi_names:+|}$fi_h"
    done
    fi_re="^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]([^\">]*/)?($fi_names)[\">]"
    fi_files=0
    for fi_f in "$top/$fi_dir"/*.c "$top/$fi_dir"/*.h; do
        [ -f "$fi_f" ] || continue
        fi_files=$((fi_files + 1))
        fi_hits=$(grep -En "$fi_re" "$fi_f") || continue
        while IFS= read -r fi_hit; do
            fail "${fi_f#"$top"/}:${fi_hit%%:*}: ${fi_hit#*:}: $fi_dir/ may not include it"
        done <<EOF
$fi_hits
EOF
    done
    # A rule over no files checks nothing: the directory moved or is gone.
    [ "$fi_files" -gt 0 ] || fail "$fi_dir/: no .c or .h files to check"
    checked=$((checked + fi_files))
}

# forbid_headers_of DIR OTHER [HEADER...]: forbid_includes DIR with every
# OTHER/*.h there is now, and the HEADERs besides (names that stay
# forbidden should their file move).
forbid_headers_of() {
    fh_dir=$1
    fh_other=$2
    shift 2
    fh_named=$#
    for fh_h in "$top/$fh_other"/*.h; do
        [ -f "$fh_h" ] && set -- "$@" "${fh_h##*/}"
    done
    [ $# -gt "$fh_named" ] || {
        fail "$fh_other/: no headers (is the rule forbid_headers_of $fh_dir $fh_other stale?)"
        return
    }
    forbid_includes "$fh_dir" "$@"
}

# The bench uses the tool's helpers (tools/cli.h, seq.h, tcpload.h); the
# tool knows the bench only as cmd_bench, declared in tools/cli.h, which
# registers the command.
forbid_headers_of tools bench bench.h

# The library: two subsystems over a shared base. Each folder includes its
# own headers and the base's; the base includes neither subsystem, and the
# subsystems meet only through base.h's hosting tables.
forbid_headers_of src/dgram src/stream stream.h loop.h
forbid_headers_of src/stream src/dgram dgram.h
forbid_headers_of src/base src/dgram dgram.h
forbid_headers_of src/base src/stream stream.h loop.h

# Every library source lives in a subsystem's folder or the base, and
# stays one job: at most 900 lines.
for f in "$top"/src/*.c "$top"/src/*.h; do
    [ -f "$f" ] && fail "${f#"$top"/}: a source file outside src/base, src/dgram and src/stream"
done
for f in "$top"/src/*/*.c "$top"/src/*/*.h; do
    [ -f "$f" ] || continue
    n=$(wc -l <"$f")
    [ "$n" -le 900 ] || fail "${f#"$top"/}: $n lines, more than 900"
done

echo "test_layout: $checked files checked, $failures failure(s)"
[ "$failures" -eq 0 ]
