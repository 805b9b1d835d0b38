#!/bin/sh
# Drives the volley command-line tool as a user would: help and usage errors,
# rate parsing, probe's JSON, a send/recv run over loopback with every
# datagram accounted for, a sender without the sequence header, echo and ping
# round trips, and a short bench with its JSON and its SVG chart.
#
# Usage: sh tests/test_cli.sh /path/to/volley
# Exit status: 0 pass, 1 fail, 77 skip (python3 or timeout missing).

VOLLEY=${1:?usage: sh test_cli.sh /path/to/volley}
T=20 # seconds any one command may take

if ! command -v python3 >/dev/null 2>&1; then
    echo "skip: python3 not found"
    exit 77
fi
if ! command -v timeout >/dev/null 2>&1; then
    echo "skip: timeout not found"
    exit 77
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# check_json FILE CODE [ARG...]: runs Python CODE (asserts) with j, the
# parsed FILE, and the ARGs as the list a.
check_json() {
    f=$1
    code=$2
    shift 2
    timeout $T python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
a = sys.argv[3:]
exec(sys.argv[2])' "$f" "$code" "$@"
}

# check_help CMD FLAG...: --help exits 0 and names every flag.
check_help() {
    cmd=$1
    shift
    if ! timeout $T "$VOLLEY" $cmd --help >"$tmp/help" 2>&1; then
        fail "volley $cmd --help did not exit 0"
        return
    fi
    for flag in "$@"; do
        grep -q -e "$flag" "$tmp/help" || fail "volley $cmd --help does not mention $flag"
    done
}

# expect_usage ARG...: the command exits 2 and says why on stderr.
expect_usage() {
    timeout $T "$VOLLEY" "$@" >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc -eq 2 ] || fail "volley $* exited $rc, want 2"
    [ -s "$tmp/err" ] || fail "volley $* printed nothing on stderr"
}

free_port() {
    python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_recv NAME ARG...: runs `volley recv 127.0.0.1:PORT ARG... --json`
# in the background once it has bound a free port; sets port and rpid.
start_recv() {
    start_server recv "$@"
}

# start_server CMD NAME ARG...: the same for `volley CMD` (recv or echo).
start_server() {
    cmd=$1
    name=$2
    shift 2
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        timeout $T "$VOLLEY" $cmd "127.0.0.1:$port" "$@" --json \
            >"$tmp/$name.json" 2>"$tmp/$name.err" &
        rpid=$!
        i=0
        while [ $i -lt 100 ] && kill -0 $rpid 2>/dev/null; do
            grep -q listening "$tmp/$name.err" 2>/dev/null && return 0
            sleep 0.05
            i=$((i + 1))
        done
        # Lost the race for the port, or never came up: try another.
        kill $rpid 2>/dev/null
        wait $rpid 2>/dev/null
    done
    fail "volley $cmd did not start: $(cat "$tmp/$name.err")"
    return 1
}

# rate_is RATE BPS: `volley send --rate RATE` takes it as BPS bits/s.
rate_is() {
    timeout $T "$VOLLEY" send "127.0.0.1:$(free_port)" --rate "$1" --count 1 --json \
        >"$tmp/rate.json" 2>"$tmp/rate.err" &&
        check_json "$tmp/rate.json" 'assert j["target_rate_bps"] == '"$2" ||
        fail "--rate $1 is not $2 bit/s: $(cat "$tmp/rate.json" "$tmp/rate.err")"
}

# --- help, version, usage errors
check_help "" probe recv send echo ping bench --version
check_help probe --json
check_help recv --count --duration --idle --backend --no-gso --no-gro --json VLY1 jitter
check_help send --count --duration --size --rate --burst --kernel-pacing --batch \
    --backend --no-gso --json VLY1
check_help echo --count --duration --idle --batch --backend --no-gso --no-gro --json
check_help ping --count --rate --interval --size --timeout --duration --backend --json VLY1
check_help bench --seconds --repeat --sizes --paths --no-latency --cpu --plot --json iperf3
timeout $T "$VOLLEY" --version | grep -q -E '^volley [0-9]+\.[0-9]+\.[0-9]+$' ||
    fail "volley --version"
expect_usage
expect_usage nosuchcommand
expect_usage probe --bogus
expect_usage recv 127.0.0.1:9 --bogus
expect_usage recv
expect_usage recv 127.0.0.1:9 --idle -1
expect_usage send --bogus 127.0.0.1:9
expect_usage send not-an-address
expect_usage send 127.0.0.1:9 --count abc
expect_usage send 127.0.0.1:9 --size 0
expect_usage send 127.0.0.1:9 --batch 5000
expect_usage send 127.0.0.1:9 --backend nope
expect_usage send 127.0.0.1:0
# --rate: a decimal number of bits/s with one optional SI suffix
for bad in "" abc 0 0k -5M +5M " 5M" 5X 1.2.3M M 5MM 5Mbit 1e6 0x10 inf 10.5T 11T; do
    expect_usage send 127.0.0.1:9 --rate "$bad"
done
expect_usage send 127.0.0.1:9 --burst 3000
expect_usage send 127.0.0.1:9 --kernel-pacing
expect_usage send 127.0.0.1:9 --rate 1M --burst 0
expect_usage send 127.0.0.1:9 --rate 1M --burst 5000000000
expect_usage echo
expect_usage echo 127.0.0.1:9 --duration 0
expect_usage echo 127.0.0.1:9 --batch 0
expect_usage echo 127.0.0.1:9 --bogus
expect_usage ping
expect_usage ping 127.0.0.1:0
expect_usage ping 127.0.0.1:9 --size 23
expect_usage ping 127.0.0.1:9 --count 0
expect_usage ping 127.0.0.1:9 --count 20000000
expect_usage ping 127.0.0.1:9 --rate 100 --interval 10
expect_usage ping 127.0.0.1:9 --rate 0
expect_usage ping 127.0.0.1:9 --interval -1
expect_usage ping 127.0.0.1:9 --timeout 0
expect_usage ping 127.0.0.1:9 --timeout 1e3
expect_usage bench --bogus
expect_usage bench --sizes 0
expect_usage bench --seconds x
expect_usage bench --repeat 0
expect_usage bench --repeat 101
expect_usage bench --paths nope
expect_usage bench --cpu 0
expect_usage bench --cpu 0,99999
expect_usage bench --cpu a,b
expect_usage bench --plot ""

# --- rates the parser takes: SI, powers of 1000, bits per second
rate_is 750k 750000
rate_is 750K 750000
rate_is 100M 100000000
rate_is 2.5G 2500000000
rate_is 1T 1000000000000
rate_is 1000000 1000000
rate_is 0.5k 500

# --- probe
if timeout $T "$VOLLEY" probe --json >"$tmp/probe.json"; then
    check_json "$tmp/probe.json" '
assert all(isinstance(j[k]["ok"], bool) and isinstance(j[k]["why"], str)
    for k in ("scalar", "mmsg", "gso", "gro", "pktinfo", "ecn", "timestamp",
              "rxq_ovfl", "recverr", "ipv6", "uring", "uring_zc", "kernel_pacing"))
assert isinstance(j["gso_max_segments"], int)' || fail "probe --json: $(cat "$tmp/probe.json")"
else
    fail "volley probe --json did not exit 0"
fi

# --- recv and send bounded by time alone, with nobody on the other side
timeout $T "$VOLLEY" recv 127.0.0.1:0 --duration 0.3 --json >"$tmp/idle.json" 2>/dev/null &&
    check_json "$tmp/idle.json" 'assert j["datagrams"] == 0' || fail "recv --duration 0.3"
timeout $T "$VOLLEY" send "127.0.0.1:$(free_port)" --duration 0.3 --json >"$tmp/void.json" &&
    check_json "$tmp/void.json" 'assert j["datagrams"] > 0' || fail "send --duration 0.3"

# --- send to recv: every datagram accounted for
if start_recv seq --count 5000; then
    timeout $T "$VOLLEY" send "127.0.0.1:$port" --count 5000 --size 200 --json \
        >"$tmp/send.json" || fail "volley send exited non-zero"
    wait $rpid || fail "volley recv exited non-zero: $(cat "$tmp/seq.err")"
    check_json "$tmp/send.json" '
assert j["datagrams"] == 5000 and j["bytes"] == 5000 * 200
assert j["header_bytes"] == 28 and j["target_rate_bps"] is None
assert j["rate_bps"] > j["payload_rate_bps"] > 0
assert abs(j["rate_bps"] / j["payload_rate_bps"] - 228 / 200) < 1e-6' ||
        fail "send summary: $(cat "$tmp/send.json")"
    # Loopback with a large buffer should not drop 5000 datagrams, but if the
    # kernel did, it must have said so. With GRO a dropped buffer may hold
    # several datagrams yet counts once, hence <= rather than ==.
    check_json "$tmp/seq.json" '
assert j["duplicated"] == 0 and j["truncated"] == 0 and j["stream"] is not None
assert j["bytes"] == j["datagrams"] * 200
assert ((j["datagrams"] == 5000 and j["lost"] == 0) or
        (j["kernel_drops"] > 0 and j["datagrams"] + j["kernel_drops"] <= 5000))
# the header carries send times: RFC 3550 jitter is known, and small
assert isinstance(j["jitter_ms"], float) and 0 <= j["jitter_ms"] < 1000
assert j["rate_bps"] > j["payload_rate_bps"] > 0' ||
        fail "recv summary: $(cat "$tmp/seq.json")"
fi

# --- a plain sender without the header is counted exactly
if start_recv plain --count 100; then
    timeout $T python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(100):
    s.sendto(b"%030d" % i, ("127.0.0.1", int(sys.argv[1])))' \
        "$port" || fail "python sender"
    wait $rpid || fail "volley recv exited non-zero: $(cat "$tmp/plain.err")"
    check_json "$tmp/plain.json" '
assert j["datagrams"] == 100 and j["bytes"] == 100 * 30
assert j["lost"] == 0 and j["stream"] is None and j["jitter_ms"] is None' ||
        fail "plain recv summary: $(cat "$tmp/plain.json")"
fi

# --- a paced sender: the rate it reports is the pacer's, within reason (the
# receiver measures it precisely in tests/test_interop.sh)
timeout $T "$VOLLEY" send "127.0.0.1:$(free_port)" --rate 20M --duration 0.5 --size 1000 \
    --json >"$tmp/paced.json" &&
    check_json "$tmp/paced.json" '
assert j["target_rate_bps"] == 20000000 and j["kernel_pacing"] is False
assert 0.5 * 20e6 < j["rate_bps"] < 1.1 * 20e6, j["rate_bps"]' ||
    fail "send --rate 20M: $(cat "$tmp/paced.json")"

# --- echo and ping: every request answered, percentiles in order
# ping-pong, then 200 requests on a schedule at 2000/s
pcheck='
n = int(a[0])
assert j["sent"] == n and j["received"] == n and j["lost"] == 0, "counts"
assert j["late"] == 0 and j["duplicated"] == 0 and j["stopped"] == "count"
p = [j[k] for k in ("min_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us")]
assert all(x > 0 for x in p) and p == sorted(p), p
assert p[0] <= j["mean_us"] <= p[-1]'
if start_server echo echo --count 700 --duration 20; then
    timeout $T "$VOLLEY" ping "127.0.0.1:$port" --count 500 --json >"$tmp/ping.json" &&
        check_json "$tmp/ping.json" "$pcheck"'
assert j["mode"] == "ping-pong" and j["size"] == 64' 500 ||
        fail "ping: $(cat "$tmp/ping.json")"
    timeout $T "$VOLLEY" ping "127.0.0.1:$port" --count 200 --rate 2000 --size 100 \
        --json >"$tmp/ping2.json" &&
        check_json "$tmp/ping2.json" "$pcheck"'
assert j["mode"] == "interval" and j["interval_ms"] == 0.5 and j["size"] == 100' 200 ||
        fail "ping --rate: $(cat "$tmp/ping2.json")"
    wait $rpid || fail "volley echo exited non-zero: $(cat "$tmp/echo.err")"
    check_json "$tmp/echo.json" '
assert j["received"] == 700 and j["echoed"] == 700 and j["stopped"] == "count"
assert j["bytes"] == 500 * 64 + 200 * 100 and j["errors"] == 0 and j["dropped"] == 0' ||
        fail "echo summary: $(cat "$tmp/echo.json")"
fi
# nobody answers: bounded by the timeout, every request lost
timeout $T "$VOLLEY" ping "127.0.0.1:$(free_port)" --count 3 --timeout 100 --json \
    >"$tmp/noping.json" &&
    check_json "$tmp/noping.json" '
assert j["sent"] == 3 and j["received"] == 0 and j["lost"] == 3 and j["p50_us"] is None' ||
    fail "ping to nobody: $(cat "$tmp/noping.json")"
# echo with nobody talking stops by its duration and still reports
timeout $T "$VOLLEY" echo 127.0.0.1:0 --duration 0.3 --json >"$tmp/noecho.json" 2>/dev/null &&
    check_json "$tmp/noecho.json" 'assert j["received"] == 0 and j["stopped"] == "duration"' ||
    fail "echo --duration 0.3: $(cat "$tmp/noecho.json")"

# --- bench: one object per cell, baseline is the unit, and the chart
check_json "$tmp/probe.json" 'assert j["gso"]["ok"]' 2>/dev/null && gso=True || gso=False
check_json "$tmp/probe.json" 'assert j["uring"]["ok"]' 2>/dev/null && uring=True || uring=False
check_json "$tmp/probe.json" 'assert j["uring_zc"]["ok"]' 2>/dev/null && zc=True || zc=False
if timeout 120 "$VOLLEY" bench --seconds 0.1 --repeat 1 --sizes 64 --json \
    --plot "$tmp/bench.svg" >"$tmp/bench.json" 2>"$tmp/bench.err"; then
    check_json "$tmp/bench.json" '
import shutil
gso, uring, zc = a[0] == "True", a[1] == "True", a[2] == "True"
tkeys = {"kind", "path", "size", "repeat", "dgrams_per_s", "gbit_per_s",
         "syscalls_per_dgram", "tx_syscalls_per_dgram", "rx_syscalls_per_dgram",
         "tx_cpu_ns_per_dgram", "rx_cpu_ns_per_dgram", "sent", "received", "lost",
         "ratio_to_baseline"}
lkeys = {"kind", "path", "size", "p50_us", "p99_us", "samples", "lost",
         "ratio_to_baseline"}
paths = (["baseline", "scalar", "mmsg"] + (["gso+gro", "gso->plain"] if gso else [])
         + (["uring"] if uring else []) + (["uring+gso"] if gso and uring else [])
         + (["uring+zc"] if gso and uring and zc else []))
tput = [c for c in j if c["kind"] == "throughput"]
lat = [c for c in j if c["kind"] == "latency"]
assert isinstance(j, list) and len(tput) + len(lat) == len(j)
iperf = ["iperf3"] if shutil.which("iperf3") else []
got = [c["path"] for c in tput]
# iperf3 is someone else'"'"'s program: a failed run is noted and left out
assert got == paths + iperf or got == paths, got
assert [c["path"] for c in lat] == paths
for c in tput:
    assert set(c) >= tkeys and c["size"] == 64 and c["received"] > 0, c
    assert c["repeat"] == 1 and c["sent"] == c["received"] + c["lost"], c
    if c["path"] != "iperf3":
        assert abs(c["syscalls_per_dgram"] - c["tx_syscalls_per_dgram"]
                   - c["rx_syscalls_per_dgram"]) < 1e-5, c
for c in lat:
    assert set(c) >= lkeys and c["size"] == 64 and c["samples"] > 0, c
    assert 0 < c["p50_us"] <= c["p99_us"], c
assert tput[0]["path"] == "baseline" and tput[0]["ratio_to_baseline"] == 1
assert lat[0]["path"] == "baseline" and lat[0]["ratio_to_baseline"] == 1
' "$gso" "$uring" "$zc" || fail "bench --json: $(cat "$tmp/bench.json" "$tmp/bench.err")"
    # The chart is well-formed XML with one bar per throughput cell and one
    # latency bar per latency cell, labelled axes, a legend and a title.
    timeout $T python3 -c '
import json, sys, xml.dom.minidom
j = json.load(open(sys.argv[2]))
d = xml.dom.minidom.parse(sys.argv[1])
rects = d.getElementsByTagName("rect")
bars = [r for r in rects if r.getAttribute("class") == "bar"]
lats = [r for r in rects if r.getAttribute("class") == "lat"]
assert len(bars) == len([c for c in j if c["kind"] == "throughput"]), len(bars)
assert len(lats) == len([c for c in j if c["kind"] == "latency"]), len(lats)
assert all(float(r.getAttribute("height")) >= 0 for r in bars)
text = " ".join(t.firstChild.data for t in d.getElementsByTagName("text") if t.firstChild)
for want in ("volley bench", "datagrams received per second", "payload bytes",
             "baseline", "64 B", "p50"):
    assert want in text, want' "$tmp/bench.svg" "$tmp/bench.json" ||
        fail "bench --plot: the SVG does not check out"
    if command -v rsvg-convert >/dev/null 2>&1; then
        timeout $T rsvg-convert -o "$tmp/bench.png" "$tmp/bench.svg" &&
            [ -s "$tmp/bench.png" ] || fail "rsvg-convert could not render the chart"
    else
        echo "note: rsvg-convert not installed, the chart was not rendered"
    fi
else
    fail "volley bench --seconds 0.1 --repeat 1 --sizes 64 --json did not exit 0: $(cat "$tmp/bench.err")"
fi

# --- bench repeats: every cell runs --repeat times; no latency rows on request
if timeout 60 "$VOLLEY" bench --seconds 0.05 --repeat 3 --sizes 64,200 \
    --paths baseline,mmsg --no-latency --json >"$tmp/bench3.json" 2>"$tmp/bench3.err"; then
    check_json "$tmp/bench3.json" '
assert [(c["path"], c["size"]) for c in j] == [("baseline", 64), ("mmsg", 64),
                                               ("baseline", 200), ("mmsg", 200)]
assert all(c["kind"] == "throughput" and c["repeat"] == 3 for c in j)
assert all(c["dgrams_per_s_min"] <= c["dgrams_per_s"] <= c["dgrams_per_s_max"] for c in j)' ||
        fail "bench --repeat 3: $(cat "$tmp/bench3.json")"
else
    fail "volley bench --repeat 3 did not exit 0"
fi
# the table: a header, the cells, the latency rows and the total time
if timeout 60 "$VOLLEY" bench --seconds 0.05 --repeat 1 --sizes 64 --paths baseline,mmsg \
    >"$tmp/bench.txt" 2>&1; then
    for want in "dgrams/s" "^baseline +64" "^mmsg +64" "latency" "p99" "^total "; do
        grep -q -E -e "$want" "$tmp/bench.txt" || fail "bench table lacks '$want'"
    done
    # piped: no progress line (no carriage return)
    ! grep -q "$(printf '\r')" "$tmp/bench.txt" || fail "bench drew progress into a pipe"
else
    fail "volley bench table run did not exit 0: $(cat "$tmp/bench.txt")"
fi

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
exit 0
