#!/bin/sh
# SPDX-License-Identifier: MIT
# volley against quinn-udp on quinn-udp's own throughput workload (one
# thread sends a 64 KiB GSO step and receives it back; see src/main.rs and
# quinn_workload.c), on loopback, in one run: ROUNDS rounds, each running
# every row at 64 and 1200 bytes one after another, so that all rows see
# the same machine. Prints each row's median datagrams per second and its
# ratio to quinn-udp's.
#
#   sh bench/quinn/compare.sh BUILD_DIR [ROUNDS]
#
# BUILD_DIR holds quinn_workload (the volley side, built with the
# project). The quinn-udp side is built here, offline, with Debian's cargo
# from Debian's crates (apt-get install cargo librust-quinn-udp-dev), into
# BUILD_DIR/quinn-workload.
#
# Rows: quinn-udp; volley-gso, one descriptor per step cut at the size (as
# quinn-udp's Transmit); volley-each, one descriptor per datagram (volley
# plans GSO); volley-gso-uring, volley-gso on the io_uring backend. Every
# volley row receives one descriptor per datagram (volley's default);
# quinn-udp's receive hands back whole GRO buffers.
set -u
build=${1:?usage: compare.sh BUILD_DIR [ROUNDS]}
rounds=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
ours=$build/quinn_workload
if [ ! -x "$ours" ]; then
    echo "no $ours: build the project first" >&2
    exit 1
fi
command -v cargo >/dev/null || {
    echo "no cargo: apt-get install cargo librust-quinn-udp-dev" >&2
    exit 1
}
target=$(cd "$build" && pwd)/quinn-workload
if ! (cd "$here" && CARGO_TARGET_DIR=$target cargo build --quiet --release); then
    echo "building the quinn-udp side failed (is librust-quinn-udp-dev installed?)" >&2
    exit 1
fi
theirs=$target/release/quinn-workload
rm -f "$here/Cargo.lock"
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT

# row NAME SIZE TOTAL: 3 repeats of one row, their lines appended to $out
row() {
    case $1 in
    quinn-udp) "$theirs" "$2" "$3" 3 ;;
    volley-gso) "$ours" "$2" "$3" 3 gso ;;
    volley-each) "$ours" "$2" "$3" 3 each ;;
    volley-gso-uring) VOLLEY_BACKEND=uring "$ours" "$2" "$3" 3 gso | sed 's/^volley-gso /volley-gso-uring /' ;;
    esac >>"$out" || {
        echo "$1 at $2 bytes failed" >&2
        exit 1
    }
}

i=0
while [ "$i" -lt "$rounds" ]; do
    for size in 64 1200; do
        # about a tenth of a second a repeat on a 2-CPU VM
        total=$((32 << 20))
        [ "$size" = 1200 ] && total=$((256 << 20))
        for r in quinn-udp volley-gso volley-each volley-gso-uring; do
            row "$r" "$size" "$total"
        done
    done
    i=$((i + 1))
done

echo "quinn-udp's workload, $rounds rounds x 3 repeats, median datagrams/s (ratio to quinn-udp)"
awk '
    { v[$1 " " $2] = v[$1 " " $2] " " $3 }
    function median(s,    a, n, i, j, t) {
        n = split(s, a, " ")
        for (i = 1; i <= n; i++)
            for (j = i + 1; j <= n; j++)
                if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        split("quinn-udp volley-gso volley-each volley-gso-uring", rows, " ")
        split("64 1200", sizes, " ")
        printf "%-18s %22s %22s\n", "row", "64 B", "1200 B"
        for (r = 1; r <= 4; r++) {
            line = sprintf("%-18s", rows[r])
            for (s = 1; s <= 2; s++) {
                m = median(v[rows[r] " " sizes[s]])
                q = median(v["quinn-udp " sizes[s]])
                line = line sprintf(" %12.2f M (%4.2f)", m / 1e6, m / q)
            }
            print line
        }
    }' "$out"
