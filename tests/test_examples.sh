#!/bin/sh
# The examples build and do what their comments say: examples/echo.c answers
# a plain UDP client byte for byte, then exits after its count.
# $1: the volley binary; the examples sit next to it.
set -u
dir=$(dirname "$1")
echo_bin="$dir/example_echo"
[ -x "$echo_bin" ] || { echo "FAIL: $echo_bin not built"; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 missing"; exit 77; }

port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
timeout 20 "$echo_bin" "127.0.0.1:$port" 20 >/tmp/volley-example-echo.$$ 2>&1 &
pid=$!
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
wait $pid
erc=$?
out=$(cat /tmp/volley-example-echo.$$); rm -f /tmp/volley-example-echo.$$
[ $rc -eq 0 ] || { echo "FAIL: client ($rc)"; exit 1; }
[ $erc -eq 0 ] || { echo "FAIL: example_echo exited $erc: $out"; exit 1; }
case "$out" in
*"echoed 20 datagrams"*) echo "ok: example_echo answered 20 datagrams byte for byte" ;;
*) echo "FAIL: unexpected summary: $out"; exit 1 ;;
esac
