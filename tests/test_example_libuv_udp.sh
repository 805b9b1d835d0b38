#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/libuv_udp.c: a volley socket in a libuv loop echoes a burst of
# datagrams byte for byte, then exits after its count. Skipped where the
# example was not built (no libuv).
# $1: the volley binary; the examples sit next to it.
set -u
T=20 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
bin="$(dirname "$VOLLEY")/example_libuv_udp"
[ -x "$bin" ] || { echo "skip: $bin not built (no libuv)"; exit 77; }
need python3

run_bg timeout $T "$bin" 127.0.0.1:0 100 >"$tmp/out" 2>"$tmp/err"
upid=$bpid
wait_for "$tmp/out" '^listening' || { echo "FAIL: not listening: $(cat "$tmp/err")"; exit 1; }
port=$(sed -n 's/^listening 127.0.0.1://p' "$tmp/out")
timeout 15 python3 - "$port" <<'PY'
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.settimeout(5)
for burst in range(4):  # bursts of 25: batches of several datagrams
    sent = [bytes([burst, i]) * (i * 20 + 1) for i in range(25)]
    for m in sent:
        s.sendto(m, ("127.0.0.1", port))
    got = []
    for _ in sent:
        try:
            got.append(s.recv(65535))
        except socket.timeout:
            sys.exit("burst %d: %d of %d echoes" % (burst, len(got), len(sent)))
    if sorted(got) != sorted(sent):
        sys.exit("burst %d came back different" % burst)
PY
example_done example_libuv_udp "$upid" $? "echoed 100 datagrams" "$tmp/out" "$tmp/err" ||
    exit 1
echo "ok: example_libuv_udp echoed 4 bursts of 25 datagrams"
