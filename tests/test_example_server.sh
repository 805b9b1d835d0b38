#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/server.c: one loop on one thread serves TCP, UDP and a local
# stream socket at once, echoing each byte for byte; its repeating timer
# prints the statistics every second, counting the jobs its worker thread
# handed over through volley_loop_wake; SIGINT stops it cleanly (exit 0, a
# "stopped" line, and the socket file it made removed).
# $1: the volley binary; the examples sit next to it.
set -u
T=30 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
bin="$(dirname "$VOLLEY")/example_server"
if [ "${VOLLEY_TEST_PORTABLE:-0}" = 1 ]; then
    echo "skip: example_server (built without the Linux parts)"
    exit 77
fi
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
need python3

sock="$tmp/echo.sock"
run_bg timeout $T "$bin" 127.0.0.1:0 127.0.0.1:0 "$sock" >"$tmp/out" 2>"$tmp/err"
spid=$bpid
wait_for "$tmp/out" '^listening' || { echo "FAIL: not listening: $(cat "$tmp/err")"; exit 1; }
line=$(head -n 1 "$tmp/out")
tcp=$(echo "$line" | sed -n 's/.* tcp 127\.0\.0\.1:\([0-9]*\) .*/\1/p')
udp=$(echo "$line" | sed -n 's/.* udp 127\.0\.0\.1:\([0-9]*\) .*/\1/p')
timeout $T python3 - "$tcp" "$udp" "$sock" <<'PY' || fail "the clients"
import socket, sys
tcp, udp, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def stream(s, n):
    data = bytes((i * 13 + n) & 0xff for i in range(100000))
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        part = s.recv(65536)
        if not part:
            break
        got += part
    if got != data:
        sys.exit("stream %d: %d of %d bytes came back" % (n, len(got), len(data)))

stream(socket.create_connection(("127.0.0.1", tcp), timeout=10), 1)
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.settimeout(10)
u.connect(path)
stream(u, 2)
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d.settimeout(2)
d.sendto(b"datagram", ("127.0.0.1", udp))
if d.recvfrom(100)[0] != b"datagram":
    sys.exit("the datagram came back different")
PY
# a stats line that counts jobs handed over from the worker thread
i=0
while [ $i -lt 100 ] && ! grep -q 'stats: .* [1-9][0-9]* jobs' "$tmp/out"; do
    sleep 0.1
    i=$((i + 1))
done
grep -q 'stats: .* [1-9][0-9]* jobs' "$tmp/out" ||
    fail "no stats line with jobs: $(cat "$tmp/out")"
kill -INT "$(pgrep -P "$spid" | head -n 1)" 2>/dev/null || kill -INT "$spid"
reap "$spid"
rc=$?
[ $rc -eq 0 ] || fail "exit $rc after SIGINT: $(cat "$tmp/err")"
grep -q '^stopped: 2 connections, 200000 stream bytes, 1 datagrams' "$tmp/out" ||
    fail "unexpected summary: $(tail -n 1 "$tmp/out")"
[ ! -e "$sock" ] || fail "the socket file is left behind"
[ $failures -eq 0 ] || exit 1
echo "ok: one loop served TCP, UDP and a local socket, its timer and its worker"
