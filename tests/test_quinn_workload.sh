#!/bin/sh
# SPDX-License-Identifier: MIT
# bench/quinn/quinn_workload.c, volley's side of bench/quinn/compare.sh:
# each mode at 64 and 1200 bytes (and a size that leaves a short last
# datagram in every step) moves every byte and prints one well-formed
# line per repeat, on the default backend and on uring where this kernel
# has it; bad arguments get a usage message and status 2. The quinn-udp
# side needs cargo and Debian's crates, which the tests do not install.
# $1: the volley binary; quinn_workload sits next to it.
set -u
T=60
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
bin="$(dirname "$VOLLEY")/quinn_workload"
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }

# good SIZE TOTAL MODE [BACKEND]: 2 repeats, each line "volley-MODE SIZE RATE"
good() {
    begin "$3 at $1 bytes, $2 bytes in all${4:+, $4}"
    if [ -n "${4-}" ]; then
        VOLLEY_BACKEND=$4 timeout "$T" "$bin" "$1" "$2" 2 "$3" >"$tmp/out" 2>"$tmp/err"
    else
        timeout "$T" "$bin" "$1" "$2" 2 "$3" >"$tmp/out" 2>"$tmp/err"
    fi
    rc=$?
    [ $rc -eq 0 ] || { fail "exit $rc: $(cat "$tmp/err")"; return; }
    n=$(grep -cE "^volley-$3 $1 [1-9][0-9]*\$" "$tmp/out")
    [ "$n" -eq 2 ] || fail "expected 2 lines of volley-$3 $1 RATE, got: $(cat "$tmp/out")"
}

for mode in gso each; do
    good 64 1000000 $mode
    good 1200 4000000 $mode
    good 1000 1234567 $mode # 64 datagrams a step, the last of all cut short
    good 65507 300000 $mode # one datagram a step
done
if "$VOLLEY" probe 2>/dev/null | grep -q "^uring: yes"; then
    good 1200 4000000 gso uring
    good 64 1000000 each uring
else
    skip "no io_uring datagram backend here"
fi

# bad ARGS...: usage, status 2, nothing on stdout
bad() {
    begin "bad arguments: $*"
    timeout "$T" "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc -eq 2 ] || fail "$*: exit $rc, want 2"
    [ -s "$tmp/err" ] || fail "$*: no message"
    [ ! -s "$tmp/out" ] || fail "$*: printed $(cat "$tmp/out")"
}
bad
bad 1200 1000 1
bad 1200 1000 1 tso
bad 0 1000 1 gso
bad 65508 1000 1 gso
bad -5 1000 1 gso
bad 1200 x 1 gso
bad 1200 1000 0 each
cases_done
