#!/bin/sh
# SPDX-License-Identifier: MIT
# The volley tool against programs that know nothing of it, over loopback:
#   - recv counts exactly what a plain Python sender and socat sent;
#   - recv against real traffic generators (sockperf throughput, iperf2 -u),
#     compared with the count the generator reports;
#   - ping against a plain Python echo server: every reply back, sane
#     percentiles;
#   - echo answers a plain Python client byte for byte;
#   - send --rate, measured by recv, within 2% of the target at two rates.
# A case whose tool (or volley subcommand) is missing prints "skip: ..." and
# the rest still run.
#
# Usage: sh tests/test_interop.sh /path/to/volley
# Exit status: 0 pass, 1 fail, 77 skip (every case skipped).

T=30 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
need timeout
need python3 "every case checks JSON with it"

# has_sub CMD: this volley build has the subcommand.
has_sub() {
    timeout $T "$VOLLEY" "$1" --help >/dev/null 2>&1
}

mono_us() {
    python3 -c 'import time; print(time.monotonic_ns() // 1000)'
}

# finish NAME: waits for the background volley; false if it failed.
finish() {
    if ! reap "$vpid"; then
        fail "volley exited non-zero: $(cat "$tmp/$1.err")"
        return 1
    fi
}

# counted NAME SENT [BYTES]: recv's JSON in $tmp/NAME.out accounts for SENT
# datagrams (and BYTES payload bytes): exactly, unless the kernel dropped
# some and recv reported it (a dropped GRO buffer counts once, hence <=).
counted() {
    check_end "$tmp/$1.out" '
sent, d, drops = int(a[0]), j["datagrams"], j["kernel_drops"]
print("  sender: %d datagrams; recv: %d, kernel drops %d" % (sent, d, drops))
assert j["truncated"] == 0, "truncated"
assert d == sent or (drops > 0 and d < sent and d + drops <= sent), \
    "received %d, sent %d, kernel drops %d" % (d, sent, drops)
if d == sent and len(a) > 1:
    assert j["bytes"] == int(a[1]), "bytes %d, sent %s" % (j["bytes"], a[1])' "$2" ${3:+"$3"} ||
        fail "$1: recv's count does not match the sender's $2 datagrams: $(cat "$tmp/$1.out")"
}

# --- a plain Python sender, no volley header
if start_volley recv py --count 2000 --idle 2 --duration 20 --json; then
    begin "recv <- python3 sendto, 2000 datagrams"
    if timeout $T python3 -c '
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = nbytes = 0
for i in range(2000):
    n = 1 + (i * 37) % 1400
    data = bytes((i + k) & 0xff for k in range(n))
    if s.sendto(data, ("127.0.0.1", port)) == n:
        sent += 1
        nbytes += n
print(sent, nbytes)' "$port" >"$tmp/py.sent"; then
        finish py && read -r sent nbytes <"$tmp/py.sent" && counted py "$sent" "$nbytes"
        check_end "$tmp/py.out" 'assert j["stream"] is None' ||
            fail "recv found a volley header in plain datagrams"
    else
        fail "python3 sender"
    fi
fi

# --- socat: one datagram per block read from a file
if ! have socat; then
    skip "socat not installed"
elif start_volley recv socat --idle 2 --duration 20 --json; then
    begin "recv <- socat, 201 datagrams from a file"
    timeout $T python3 -c '
import sys
sys.stdout.write("".join(chr(97 + i % 26) for i in range(200 * 1200 + 345)))' >"$tmp/socat.in"
    # -x logs every transfer as "> DATE length=N from=.. to=..": socat's own
    # count of what it sent.
    if timeout $T socat -b 1200 -x -u - "UDP:127.0.0.1:$port" <"$tmp/socat.in" \
        2>"$tmp/socat.log"; then
        finish socat
        sent=$(grep -c '^> .*length=' "$tmp/socat.log")
        nbytes=$(sed -n 's/^> .*length=\([0-9]*\) .*/\1/p' "$tmp/socat.log" |
            awk '{ s += $1 } END { print s + 0 }')
        if [ "$sent" -ne 201 ] || [ "$nbytes" -ne 240345 ]; then
            fail "socat reports $sent datagrams, $nbytes bytes; want 201, 240345"
        fi
        counted socat "$sent" "$nbytes"
    else
        fail "socat exited non-zero: $(tail -3 "$tmp/socat.log")"
    fi
fi

# --- traffic generators that need no control channel
if ! have sockperf; then
    skip "sockperf not installed"
elif start_volley recv sockperf --idle 2 --duration 20 --json; then
    begin "recv <- sockperf throughput, 2 s at 50000 msg/s"
    if timeout $T sockperf throughput -i 127.0.0.1 -p "$port" -t 2 -m 1200 --mps 50000 \
        >"$tmp/sockperf.log" 2>&1; then
        finish sockperf
        sent=$(sed -n 's/.*Total of \([0-9]*\) messages sent.*/\1/p' "$tmp/sockperf.log")
        if [ -n "$sent" ]; then
            counted sockperf "$sent" $((sent * 1200))
        else
            fail "no message count in sockperf's output: $(tail -5 "$tmp/sockperf.log")"
        fi
    else
        fail "sockperf exited non-zero: $(tail -5 "$tmp/sockperf.log")"
    fi
fi

# iperf2 (not iperf3, which needs its TCP control channel). --no-udp-fin:
# without a server, the final handshake would retransmit its FIN datagram
# for 2 s. -y C reports the exact bytes sent.
if ! have iperf || ! iperf -v 2>&1 | grep -q 'iperf version 2'; then
    skip "iperf (iperf2) not installed"
elif ! iperf --help 2>&1 | grep -q -e --no-udp-fin; then
    skip "this iperf has no --no-udp-fin"
elif start_volley recv iperf --idle 2 --duration 20 --json; then
    begin "recv <- iperf -u, 2 s at 50 Mbit/s"
    if timeout $T iperf -y C -u -c 127.0.0.1 -p "$port" -t 2 -b 50M -l 1200 --no-udp-fin \
        >"$tmp/iperf.log" 2>&1; then
        finish iperf
        # CSV: date,src,sport,dst,dport,id,interval,bytes,bits/s,...
        nbytes=$(awk -F, 'NF >= 9 { b = $8 } END { print b + 0 }' "$tmp/iperf.log")
        if [ "$nbytes" -gt 0 ] && [ $((nbytes % 1200)) -eq 0 ]; then
            counted iperf $((nbytes / 1200)) "$nbytes"
        else
            fail "iperf reports $nbytes bytes, not whole 1200-byte datagrams: $(cat "$tmp/iperf.log")"
        fi
    else
        fail "iperf exited non-zero: $(tail -5 "$tmp/iperf.log")"
    fi
fi

# --- ping against a plain Python echo server
cat >"$tmp/echo_server.py" <<'EOF'
import os, select, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
start, last, n = time.monotonic(), None, 0
# Until 3 s of silence after the first datagram, 25 s at most.
while time.monotonic() - start < 25 and (last is None or time.monotonic() - last < 3):
    if not select.select([s], [], [], 0.2)[0]:
        continue
    data, peer = s.recvfrom(65536)
    s.sendto(data, peer)
    n += 1
    last = time.monotonic()
print(n)
EOF
if ! has_sub ping; then
    skip "volley ping not in this build"
else
    begin "ping -> python3 echo server, 200 probes at 1000/s"
    run_bg timeout $T python3 "$tmp/echo_server.py" "$tmp/echo.port" >"$tmp/echo.count"
    spid=$bpid
    i=0
    while [ $i -lt 100 ] && [ ! -s "$tmp/echo.port" ]; do
        sleep 0.05
        i=$((i + 1))
    done
    if [ -s "$tmp/echo.port" ]; then
        t0=$(mono_us)
        timeout $T "$VOLLEY" ping "127.0.0.1:$(cat "$tmp/echo.port")" --count 200 \
            --rate 1000 --size 64 --timeout 1000 --json >"$tmp/ping.out" 2>"$tmp/ping.err" ||
            fail "volley ping exited non-zero: $(cat "$tmp/ping.err")"
        t1=$(mono_us)
        check_end "$tmp/ping.out" '
span = int(a[0])
p = [j[k] for k in ("min_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us")]
print("  sent %s, received %s; min/p50/p90/p99/p99.9/max us: %s" % (
    j["sent"], j["received"], "/".join(str(x) for x in p)))
assert j["sent"] == 200 and j["received"] == 200 and j["lost"] == 0, "counts"
assert all(x > 0 for x in p), "non-positive percentile"
assert p == sorted(p), "percentiles out of order"
assert p[-1] < span, "max %s us above the whole run (%d us)" % (p[-1], span)' \
            $((t1 - t0)) || fail "ping summary: $(cat "$tmp/ping.out")"
    else
        fail "python3 echo server did not start"
    fi
    reap "$spid"
fi

# --- echo answers a plain Python client byte for byte
if ! has_sub echo; then
    skip "volley echo not in this build"
elif start_volley echo echo --idle 2 --duration 20; then
    begin "echo <- python3 client, 100 datagrams of varied sizes"
    timeout $T python3 -c '
import os, socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
s.settimeout(2)
sizes = [0, 1, 2, 3, 23, 24, 25, 64, 100, 512, 1199, 1200, 1201, 1472, 1473,
         4000, 8972, 9000, 16384, 32768, 65507]
def payload(i):
    n = sizes[i % len(sizes)] if i < 60 else 1 + (i * 97) % 1500
    kind = i % 3
    if kind == 0:
        return os.urandom(n)
    if kind == 1:
        return bytes([i & 0xff]) * n
    return (b"VLY1" + bytes(range(256)) * 300)[:n]  # looks like a volley header
msgs = [payload(i) for i in range(100)]
# 50 in lockstep, then 50 in one burst: replies in order, each identical.
for i in range(50):
    s.send(msgs[i])
    r = s.recv(65536)
    assert r == msgs[i], "datagram %d (%d bytes): got %d bytes back, differing" % (
        i, len(msgs[i]), len(r))
for m in msgs[50:]:
    s.send(m)
for i in range(50, 100):
    r = s.recv(65536)
    assert r == msgs[i], "burst datagram %d (%d bytes): got %d bytes back" % (
        i, len(msgs[i]), len(r))
s.settimeout(0.3)
try:
    r = s.recv(65536)
    raise AssertionError("an extra reply of %d bytes" % len(r))
except socket.timeout:
    pass' "$port" >"$tmp/echo_client.log" 2>&1 ||
        fail "echo client: $(tail -3 "$tmp/echo_client.log")"
    finish echo
fi

# --- send --rate measured by recv: within 2% over ~3 s
if ! timeout $T "$VOLLEY" send --help 2>/dev/null | grep -q -e --rate; then
    skip "volley send --rate not in this build"
else
    # A paced sender never goes faster than its budget, but loses the time
    # it is not running beyond its burst: on a virtual machine a wake-up
    # can come tens of milliseconds late. So: the burst covers 10 ms at the
    # rate (the default, 4 ms, is checked against late wake-ups in
    # test_pacer), the rate may never be more than 2% above the target,
    # and within 2% below it in the best of three runs. Under the
    # sanitizers (VOLLEY_TEST_SANITIZED, set by the build) the floor is
    # 10%: instrumented code misses more of its wake-ups.
    floor=0.02
    [ -n "${VOLLEY_TEST_SANITIZED:-}" ] && floor=0.10
    for rate in 20M 100M; do
        case $rate in 20M) burst=25000 ;; *) burst=125000 ;; esac
        begin "send --rate $rate -> recv, 3 s of 1200-byte datagrams"
        ok=
        for attempt in 1 2 3; do
            start_volley recv "rate$rate" --idle 1 --duration 20 --json || break
            timeout $T "$VOLLEY" send "127.0.0.1:$port" --rate $rate --burst $burst \
                --duration 3 --size 1200 --json >"$tmp/send$rate.out" 2>"$tmp/send$rate.err" ||
                fail "volley send --rate $rate exited non-zero: $(cat "$tmp/send$rate.err")"
            finish "rate$rate" || break
            sent=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["end"]["datagrams"])' \
                "$tmp/send$rate.out" 2>/dev/null)
            [ -n "$sent" ] && counted "rate$rate" "$sent" $((sent * 1200))
            # The receiver's wire rate (payload + UDP + IPv4 headers) between
            # its first and last datagram: n datagrams span n - 1 gaps.
            verdict=$(check_end "$tmp/rate$rate.out" '
want, floor = float(a[0].rstrip("M")) * 1e6, float(a[1])
d, secs = j["datagrams"], j["seconds"]
assert j["lost"] == 0 and d > 100 and secs > 2, "too little measured"
got = (j["bytes"] + 28 * d) * 8 * (d - 1) / d / secs
if "rate_bps" in j:
    r = j["rate_bps"]
    assert abs(r - got) <= 0.005 * got, "recv rate_bps %s, computed %.0f" % (r, got)
dev = got / want - 1
print("%s %+.2f%%" % ("over" if dev > 0.02 else "ok" if dev >= -floor else "under", 100 * dev))' \
                "$rate" "$floor") || { fail "send --rate $rate: $(cat "$tmp/rate$rate.out")"; break; }
            echo "  attempt $attempt: receiver measured $verdict against $rate"
            case $verdict in
            over*) fail "send --rate $rate went faster than its target"; ok="done"; break ;;
            ok*) ok=yes; break ;;
            esac
        done
        [ -n "$ok" ] || fail "send --rate $rate: more than ${floor} below the target in three runs"
    done
fi

cases_done
