#!/bin/sh
# The examples build and do what their comments say: examples/echo.c answers
# a plain UDP client byte for byte, then exits after its count.
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
timeout 15 python3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for i in range(20):
    msg = bytes((i * 7 + k) & 0xff for k in range(i * 50))
    for attempt in range(20):  # the server may still be starting
        s.sendto(msg, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(65535)
            break
        except socket.timeout:
            continue
    else:
        sys.exit("no answer to datagram %d" % i)
    if data != msg:
        sys.exit("datagram %d came back different" % i)
PY
rc=$?
reap "$bpid"
erc=$?
out=$(cat "$tmp/echo.out")
[ $rc -eq 0 ] || { echo "FAIL: client ($rc)"; exit 1; }
[ $erc -eq 0 ] || { echo "FAIL: example_echo exited $erc: $out"; exit 1; }
case "$out" in
*"echoed 20 datagrams"*) echo "ok: example_echo answered 20 datagrams byte for byte" ;;
*) echo "FAIL: unexpected summary: $out"; exit 1 ;;
esac
