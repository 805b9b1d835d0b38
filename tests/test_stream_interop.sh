#!/bin/sh
# SPDX-License-Identifier: MIT
# volley tcp-echo against clients that know nothing of volley, over
# loopback, on both loop backends (uring and epoll):
#   - a plain Python client: 8 connections at once, each sending 20 random
#     payloads of 1 byte to 256 KiB (a thread sends while the connection
#     reads), every one echoed back exactly; the server stops by itself
#     after those 8 connections (--count 8) and exits 0;
#   - socat: a 3 MiB file piped through one connection comes back
#     identical, and socat sees the server close after its own EOF.
# A uring server that cannot start because io_uring is refused here skips
# that backend; without `volley tcp-echo` the whole test is skipped.
#
# Usage: sh tests/test_stream_interop.sh /path/to/volley
# Exit status: 0 pass, 1 fail, 77 skip (every case skipped).

T=60 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
need timeout
need python3 "the client is a Python program"

if ! timeout $T "$VOLLEY" tcp-echo --help >/dev/null 2>&1; then
    echo "skip: this volley has no tcp-echo"
    exit 77
fi

# finish NAME: waits for the server; false (and a failure) if it did not
# exit 0.
finish() {
    if ! reap "$vpid"; then
        fail "volley tcp-echo ($1) exited with $reaped: $(tail -n 5 "$tmp/$1.err")"
        return 1
    fi
}

python_case() {
    be=$1
    start_echo "py-$be" "$be" --count 8 --duration 50
    rc=$?
    [ $rc -eq 2 ] && skip "$be: io_uring not available" && return
    [ $rc -ne 0 ] && return
    begin "$be: python3, 8 connections x 20 random payloads echoed"
    if ! timeout $T python3 -c '
import random, socket, sys, threading
port = int(sys.argv[1])
errors = []

def conn(k):
    rnd = random.Random(k)
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        for r in range(20):
            n = rnd.choice([1, 2, 100, 1460, 4096, 65536, 262144, rnd.randint(1, 262144)])
            data = rnd.randbytes(n)
            t = threading.Thread(target=s.sendall, args=(data,))
            t.start()
            got = bytearray()
            while len(got) < n:
                b = s.recv(min(1 << 20, n - len(got)))
                if not b:
                    break
                got += b
            t.join()
            if bytes(got) != data:
                errors.append("conn %d round %d: %d bytes sent, %d back%s" % (
                    k, r, n, len(got), "" if len(got) != n else ", different"))
                return
        s.shutdown(socket.SHUT_WR)
        if s.recv(1) != b"":
            errors.append("conn %d: bytes after the echo" % k)
    except Exception as e:
        errors.append("conn %d: %r" % (k, e))
    finally:
        s.close()

ts = [threading.Thread(target=conn, args=(k,)) for k in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
if errors:
    print("\n".join(errors))
    sys.exit(1)' "$port" >"$tmp/py-$be.client" 2>&1; then
        fail "$be: python client: $(cat "$tmp/py-$be.client")"
        stop "$vpid"
    fi
    finish "py-$be"
}

socat_case() {
    be=$1
    if ! have socat; then
        skip "$be: socat not installed"
        return
    fi
    start_echo "socat-$be" "$be" --count 1 --duration 50
    rc=$?
    [ $rc -eq 2 ] && skip "$be: io_uring not available" && return
    [ $rc -ne 0 ] && return
    begin "$be: socat, a 3 MiB file through one connection"
    timeout $T python3 -c '
import os, sys
sys.stdout.buffer.write(os.urandom(3 * 1024 * 1024 + 123))' >"$tmp/socat-$be.in"
    if ! timeout $T socat -t 20 - "TCP:127.0.0.1:$port" <"$tmp/socat-$be.in" \
        >"$tmp/socat-$be.back" 2>"$tmp/socat-$be.log"; then
        fail "$be: socat exited non-zero: $(tail -n 3 "$tmp/socat-$be.log")"
        stop "$vpid"
    elif ! cmp -s "$tmp/socat-$be.in" "$tmp/socat-$be.back"; then
        fail "$be: socat got back $(wc -c <"$tmp/socat-$be.back") bytes of" \
            "$(wc -c <"$tmp/socat-$be.in"), or different ones"
    fi
    finish "socat-$be"
}

for be in uring epoll; do
    python_case "$be"
    socat_case "$be"
done

cases_done
