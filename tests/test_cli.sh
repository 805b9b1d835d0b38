#!/bin/sh
# Drives the volley command-line tool as a user would: help and usage errors,
# probe's JSON, a send/recv run over loopback with every datagram accounted
# for, a sender without the sequence header, and a short bench.
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

# check_json FILE CODE: runs Python CODE (asserts) with j, the parsed FILE.
check_json() {
    timeout $T python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
exec(sys.argv[2])' "$1" "$2"
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
    name=$1
    shift
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        timeout $T "$VOLLEY" recv "127.0.0.1:$port" "$@" --json \
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
    fail "volley recv did not start: $(cat "$tmp/$name.err")"
    return 1
}

# --- help, version, usage errors
check_help "" probe recv send bench --version
check_help probe --json
check_help recv --count --duration --idle --backend --no-gso --no-gro --json VLY1
check_help send --count --duration --size --batch --backend --no-gso --json VLY1
check_help bench --seconds --sizes --json
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
expect_usage bench --bogus
expect_usage bench --sizes 0
expect_usage bench --seconds x

# --- probe
if timeout $T "$VOLLEY" probe --json >"$tmp/probe.json"; then
    check_json "$tmp/probe.json" '
assert all(isinstance(j[k]["ok"], bool) and isinstance(j[k]["why"], str)
    for k in ("scalar", "mmsg", "gso", "gro", "pktinfo", "ecn", "timestamp",
              "rxq_ovfl", "recverr", "ipv6", "uring", "uring_zc"))
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
    check_json "$tmp/send.json" 'assert j["datagrams"] == 5000 and j["bytes"] == 5000 * 200' ||
        fail "send summary: $(cat "$tmp/send.json")"
    # Loopback with a large buffer should not drop 5000 datagrams, but if the
    # kernel did, it must have said so. With GRO a dropped buffer may hold
    # several datagrams yet counts once, hence <= rather than ==.
    check_json "$tmp/seq.json" '
assert j["duplicated"] == 0 and j["truncated"] == 0 and j["stream"] is not None
assert j["bytes"] == j["datagrams"] * 200
assert ((j["datagrams"] == 5000 and j["lost"] == 0) or
        (j["kernel_drops"] > 0 and j["datagrams"] + j["kernel_drops"] <= 5000))' ||
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
assert j["lost"] == 0 and j["stream"] is None' || fail "plain recv summary: $(cat "$tmp/plain.json")"
fi

# --- bench: one object per path, baseline is the unit
if timeout 60 "$VOLLEY" bench --seconds 0.2 --sizes 64 --json >"$tmp/bench.json"; then
    check_json "$tmp/probe.json" 'assert j["gso"]["ok"]' 2>/dev/null && gso=True || gso=False
    check_json "$tmp/probe.json" 'assert j["uring"]["ok"]' 2>/dev/null && uring=True || uring=False
    check_json "$tmp/bench.json" '
keys = {"path", "size", "dgrams_per_s", "gbit_per_s", "tx_syscalls_per_dgram",
        "rx_syscalls_per_dgram", "tx_cpu_ns_per_dgram", "rx_cpu_ns_per_dgram",
        "sent", "received", "lost", "ratio_to_baseline"}
want = (["baseline", "scalar", "mmsg"] + (["gso+gro", "gso->plain"] if '$gso' else [])
        + (["uring"] if '$uring' else []))
base = [c for c in j if c["path"] == "baseline"]
assert isinstance(j, list) and [c["path"] for c in j] == want
assert all(set(c) >= keys and c["size"] == 64 and c["received"] > 0 for c in j)
assert len(base) == 1 and base[0]["ratio_to_baseline"] == 1' ||
        fail "bench --json: $(cat "$tmp/bench.json")"
else
    fail "volley bench --seconds 0.2 --sizes 64 --json did not exit 0"
fi

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
exit 0
