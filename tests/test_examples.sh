#!/bin/sh
# SPDX-License-Identifier: MIT
# The examples build and do what their comments say: examples/echo.c answers
# a plain UDP client byte for byte, then exits after its count;
# examples/tcp_echo.c echoes several TCP connections byte for byte, at once,
# and exits once its count of connections has closed. Built without the
# Linux parts (VOLLEY_TEST_PORTABLE=1) there is no tcp_echo: it uses the
# stream loop.
# $1: the volley binary; the examples sit next to it.
set -u
T=20 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
echo_bin="$(dirname "$VOLLEY")/example_echo"
[ -x "$echo_bin" ] || { echo "FAIL: $echo_bin not built"; exit 1; }
need python3

port=$(free_port)
run_bg timeout $T "$echo_bin" "127.0.0.1:$port" 20 >"$tmp/echo.out" 2>&1
udp_echoes "$port"
example_done example_echo "$bpid" $? "echoed 20 datagrams" "$tmp/echo.out" || exit 1
echo "ok: example_echo answered 20 datagrams byte for byte"

if [ "${VOLLEY_TEST_PORTABLE:-0}" = 1 ]; then
    [ ! -e "$(dirname "$VOLLEY")/example_tcp_echo" ] || { echo "FAIL: tcp_echo built"; exit 1; }
    echo "skip: example_tcp_echo (built without the Linux parts)"
    exit 0
fi
tcp_bin="$(dirname "$VOLLEY")/example_tcp_echo"
[ -x "$tcp_bin" ] || { echo "FAIL: $tcp_bin not built"; exit 1; }
port=$(free_port)
run_bg timeout $T "$tcp_bin" "127.0.0.1:$port" 5 >"$tmp/tcp.out" 2>&1
timeout 15 python3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def connect():
    for attempt in range(100):  # the server may still be starting
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            time.sleep(0.05)
    sys.exit("could not connect")
# Five connections open at once, each sending its own bytes in pieces of
# several sizes (up to 200 KiB, more than a receive buffer), interleaved.
conns = [connect() for _ in range(5)]
sent = [bytearray() for _ in conns]
for rnd, size in enumerate((1, 100, 5000, 70000, 200000)):
    for i, s in enumerate(conns):
        msg = bytes((i * 31 + rnd * 7 + k) & 0xff for k in range(size))
        s.sendall(msg)
        sent[i] += msg
        got = bytearray()
        while len(got) < len(msg):
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("connection %d closed early" % i)
            got += chunk
        if bytes(got) != msg:
            sys.exit("connection %d: round %d came back different" % (i, rnd))
# A half close: the server sends back what is left, then closes its side.
for i, s in enumerate(conns):
    s.sendall(b"tail")
    s.shutdown(socket.SHUT_WR)
    rest = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    if bytes(rest) != b"tail":
        sys.exit("connection %d: tail %r" % (i, bytes(rest)))
    s.close()
PY
example_done example_tcp_echo "$bpid" $? "served 5 connections" "$tmp/tcp.out" || exit 1
echo "ok: example_tcp_echo echoed 5 connections byte for byte"
