#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/epoll_many.c: eight sockets in one epoll set, each echoing what
# arrives on it. Five datagrams go to every socket; every one must come back
# byte for byte from the port it was sent to, and the example must count
# them all and exit.
# $1: the volley binary; the examples sit next to it.
set -u
T=20 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
bin="$(dirname "$VOLLEY")/example_epoll_many"
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
need python3

run_bg timeout $T "$bin" 40 >"$tmp/out" 2>"$tmp/err"
epid=$bpid
wait_for "$tmp/out" '^ports' || { echo "FAIL: no ports line: $(cat "$tmp/err")"; exit 1; }
# shellcheck disable=SC2046 # the port numbers are separate arguments
timeout 15 python3 - $(sed -n 's/^ports //p' "$tmp/out") <<'PY'
import socket, sys
ports = [int(p) for p in sys.argv[1:]]
if len(ports) != 8:
    sys.exit("want 8 ports, got %r" % ports)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
want = set()
for k in range(5):
    for p in ports:
        msg = b"%d:%d:" % (p, k) + bytes(range(k * 40))
        want.add((p, msg))
        s.sendto(msg, ("127.0.0.1", p))
for _ in range(len(want)):
    try:
        data, (host, port) = s.recvfrom(65535)
    except socket.timeout:
        sys.exit("%d echoes missing" % len(want))
    if (port, data) not in want:
        sys.exit("unexpected echo from port %d: %r" % (port, data[:20]))
    want.discard((port, data))
PY
example_done example_epoll_many "$epid" $? "echoed 40 datagrams on 8 sockets" \
    "$tmp/out" "$tmp/err" || exit 1
echo "ok: example_epoll_many echoed 5 datagrams on each of 8 sockets, each from its own port"
