#!/bin/sh
# SPDX-License-Identifier: MIT
# Every command's --json against the schema volley(1) documents (JSON
# OUTPUT), checked by tests/volley_json.py: probe, recv with send, echo with
# ping, tcp-echo with tcp-load, a short bench and bench --tcp (both its
# clients against every server), each over loopback and
# bounded; the error document for a bad argument, an unknown option, a
# runtime error before the run (a port in use, nobody listening) and after it
# (ping without a reply). Then the figures a user adds up: recv's received
# and lost against what send sent, echo's received against echoed, failed
# and not echoed, ping's sent against received, lost and late, tcp-load's
# bytes out against bytes in and against the server's, and every command's
# lines against its summary.
#
# Usage: sh tests/test_json.sh /path/to/volley
# Exit status: 0 pass, 1 fail, 77 skip (python3 or timeout missing).

# shellcheck disable=SC2015 # "run && check || fail": fail when either does

T=30 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
need python3
need timeout

schema="$(dirname "$0")/volley_json.py"
version=$("$VOLLEY" --version | sed 's/^volley //')

# valid CMD STATUS FILE: FILE, from `volley CMD --json` that exited STATUS,
# matches the schema.
valid() {
    timeout $T python3 "$schema" "$version" "$1" "$2" "$3" ||
        fail "volley $1 --json (exit $2) does not match the schema: $(cat "$3")"
}

# doc NAME STATUS CMD ARG...: runs `volley CMD ARG... --json` into
# $tmp/NAME.json (stderr $tmp/NAME.err); its exit status must be STATUS and
# its document valid.
doc() {
    name=$1
    want=$2
    cmd=$3
    shift 3
    begin "$cmd $* --json: exit $want"
    timeout $T "$VOLLEY" "$cmd" "$@" --json >"$tmp/$name.json" 2>"$tmp/$name.err"
    rc=$?
    [ $rc -eq "$want" ] || fail "volley $cmd $* --json exited $rc, want $want: $(cat "$tmp/$name.err")"
    valid "$cmd" "$rc" "$tmp/$name.json"
}

# server_done CMD NAME: the server start_volley started (vpid) with --json
# exits 0 and its document ($tmp/NAME.out) is valid.
server_done() {
    reap "$vpid"
    rc=$?
    [ $rc -eq 0 ] || fail "volley $1 exited $rc: $(cat "$tmp/$2.err")"
    valid "$1" "$rc" "$tmp/$2.out"
}

# --- the checker itself refuses what the schema does not allow
begin "the schema checker refuses bad documents"
printf '{"version":"%s","command":"recv","error":{"message":"x","errno":null}}\n' \
    "$version" >"$tmp/ok.json"
timeout $T python3 "$schema" "$version" recv 2 "$tmp/ok.json" >/dev/null ||
    fail "the checker refuses a valid error document"
for bad in '{"version":"0.0.0","command":"recv","error":{"message":"x","errno":null}}' \
    '{"version":"V","command":"send","error":{"message":"x","errno":null}}' \
    '{"version":"V","command":"recv","error":{"message":"","errno":null}}' \
    '{"version":"V","command":"recv","error":{"message":"x","errno":"nope"}}' \
    '{"version":"V","command":"recv"}' \
    '[]' 'not json'; do
    echo "$bad" | sed "s/\"V\"/\"$version\"/" >"$tmp/bad.json"
    timeout $T python3 "$schema" "$version" recv 2 "$tmp/bad.json" >/dev/null &&
        fail "the checker takes $bad"
done
# a run's document with an error and exit status 0, or without one and 1
doc probe 0 probe
sed 's/}$/,"error":{"message":"x","errno":null}}/' "$tmp/probe.json" >"$tmp/bad.json"
timeout $T python3 "$schema" "$version" probe 0 "$tmp/bad.json" >/dev/null &&
    fail "the checker takes an error with exit status 0"
timeout $T python3 "$schema" "$version" probe 1 "$tmp/probe.json" >/dev/null &&
    fail "the checker takes exit status 1 without an error"

# --- probe (its document above)
check_end "$tmp/probe.json" 'assert isinstance(j["scalar"]["ok"], bool)' ||
    fail "probe --json: $(cat "$tmp/probe.json")"

# --- recv and send: received + lost == sent, the lines add up
begin "recv and send"
if start_volley recv rx --count 3000 --idle 5 --duration 20 --json; then
    doc tx 0 send "127.0.0.1:$port" --count 3000 --size 100 --batch 64
    server_done recv rx
    check_end "$tmp/tx.json" '
sent = j["datagrams"]
doc = json.load(open(a[0]))
rx = doc["end"]
assert sent == 3000 and j["bytes"] == 100 * sent, j
assert rx["datagrams"] + rx["lost"] == sent, (rx, sent)
assert rx["datagrams"] == sum(i["datagrams"] for i in doc["intervals"]), doc["intervals"]
assert rx["bytes"] == sum(i["bytes"] for i in doc["intervals"])
assert rx["kernel_drops"] >= 0 and rx["duplicated"] == 0' "$tmp/rx.out" ||
        fail "recv against send: $(cat "$tmp/rx.out" "$tmp/tx.json")"
    check_json "$tmp/tx.json" '
assert j["end"]["datagrams"] == sum(i["datagrams"] for i in j["intervals"])
assert j["args"]["count"] == 3000 and j["args"]["size"] == 100 and j["args"]["batch"] == 64' ||
        fail "send's lines and args: $(cat "$tmp/tx.json")"
fi

# --- echo and ping: every request accounted for, on both sides
begin "echo and ping"
if start_volley echo ec --count 200 --duration 20 --json; then
    doc pg 0 ping "127.0.0.1:$port" --count 200 --rate 2000 --size 64
    server_done echo ec
    check_end "$tmp/ec.out" '
assert j["received"] == j["echoed"] + j["errors"] + j["dropped"] == 200, j
assert j["kernel_drops"] >= 0' ||
        fail "echo's counts: $(cat "$tmp/ec.out")"
    check_json "$tmp/pg.json" '
e = j["end"]
assert e["sent"] == e["received"] + e["lost"] + e["late"] == 200, e
assert e["sent"] == sum(i["sent"] for i in j["intervals"]), j["intervals"]
assert e["received"] == sum(i["received"] for i in j["intervals"])
assert 0 < e["min_us"] <= e["p50_us"] <= e["p99_us"] <= e["max_us"], e
assert e["latency_error"] > 0 and e["latency_error"] < 0.02, e' ||
        fail "ping's counts: $(cat "$tmp/pg.json")"
fi

# --- tcp-echo and tcp-load: bytes out == bytes in once every request completed
if [ "${VOLLEY_TEST_PORTABLE:-0}" = 0 ]; then
    begin "tcp-echo and tcp-load"
    if start_volley tcp-echo te --count 4 --duration 20 --json; then
        doc tl 0 tcp-load "127.0.0.1:$port" --conns 4 --count 2000 --duration 10
        server_done tcp-echo te
        check_json "$tmp/tl.json" '
e = j["end"]
te = json.load(open(a[0]))["end"]
assert e["errors"] == 0 and e["requests"] == 2000 and e["stopped"] == "count", e
assert e["bytes_out"] == e["bytes_in"] == 2000 * 128, e
assert te["bytes_in"] == te["bytes_out"] == e["bytes_out"], (te, e)
assert te["peak_conns"] == 4, te
# 4 connections fit in the block of slots the listener took, but the
# first blocks of the send pool (64 small chunks, 64 segments: about
# 20 KB) may be taken before the peak is read: a sanity bound only
h = te["heap_per_conn"]
assert h is None or (isinstance(h, int) and 0 <= h <= 16384), te
assert e["requests"] == sum(i["requests"] for i in j["intervals"]), j["intervals"]
assert e["bytes_out"] == sum(i["bytes_out"] for i in j["intervals"])
assert e["latency_error"] > 0 and e["p50_us"] <= e["p99_us"] <= e["max_us"], e' \
            "$tmp/te.out" ||
            fail "tcp-load against tcp-echo: $(cat "$tmp/tl.json" "$tmp/te.out")"
    fi
    # volley's memory per connection, from a peak of 200: what the slots
    # take, in blocks of 64 (null only when the allocator does not say)
    if start_volley tcp-echo te2 --count 200 --duration 20 --json; then
        doc tl2 0 tcp-load "127.0.0.1:$port" --conns 200 --count 400 --duration 10
        server_done tcp-echo te2
        check_json "$tmp/te2.out" '
e = j["end"]
assert e["accepted"] == 200 and e["peak_conns"] >= 100, e
h = e["heap_per_conn"]
assert h is None or (isinstance(h, int) and 64 <= h <= 1024), e' ||
            fail "tcp-echo heap_per_conn: $(cat "$tmp/te2.out")"
    fi
    # nobody listening: the run began, then failed: end null, the errno named
    doc tlref 1 tcp-load "127.0.0.1:$(free_port)" --duration 0.2
    check_json "$tmp/tlref.json" '
assert j["end"] is None and j["error"]["errno"] == "ECONNREFUSED", j' ||
        fail "tcp-load to nobody: $(cat "$tmp/tlref.json")"
fi

# --- bench: the machine header and a cell per path
doc bench 0 bench --seconds 0.05 --repeat 1 --sizes 64 --paths baseline,scalar --no-latency
check_end "$tmp/bench.json" '
assert j["matrix"] == "udp" and "CPUs" in j["machine"], j
assert [c["path"] for c in j["cells"]] == ["baseline", "scalar"], j["cells"]' ||
    fail "bench --json: $(cat "$tmp/bench.json")"

# --- bench --tcp: every echo server under both clients, with both ratios.
# The plain client compares every reply with its request and fails its
# cell (exit 1) on any difference, so exit 0 says every reply was right.
if [ "${VOLLEY_TEST_PORTABLE:-0}" = 0 ]; then
    T=240 # 50 cells, each a server process and up to 1000 connections
    doc btcp 0 bench --tcp --seconds 0.02 --repeat 1
    T=30
    check_end "$tmp/btcp.json" '
assert j["matrix"] == "tcp" and "plain" in j["header"], j
echo = [c for c in j["cells"] if c["kind"] == "echo"]
want = {"requests_per_s", "server_cpu_ns_per_request", "ratio_to_ref",
        "server_cpu_ratio_to_ref", "p50_us", "p99_us", "requests", "errors",
        "client_cpu_ns_per_request", "client_cpu_load"}
for c in echo:
    assert want <= set(c), c
    if c["requests"]:
        assert c["client_cpu_ns_per_request"] > 0, c
        assert 0 < c["client_cpu_load"] <= 1.05, c
    assert c["client"] in ("tcp-load", "plain"), c
by = {cl: {(c["path"], c["conns"], c["size"]) for c in echo if c["client"] == cl}
      for cl in ("tcp-load", "plain")}
assert by["plain"] == by["tcp-load"], by
assert {("ref", 1, 128), ("epoll", 50, 4096)} <= by["plain"], by
for c in echo:
    if c["client"] == "plain":
        assert c["errors"] == 0, c
    if c["path"] == "ref" and c["requests"]:
        assert c["ratio_to_ref"] == 1, c' ||
        fail "bench --tcp --json: $(cat "$tmp/btcp.json")"
fi

# --- error documents
# a bad argument, before --json and after it
doc badcount 2 recv 127.0.0.1:0 --count 12x
check_json "$tmp/badcount.json" '
assert set(j) == {"version", "command", "error"} and j["error"]["errno"] is None
assert "--count" in j["error"]["message"] and "12x" in j["error"]["message"]' ||
    fail "recv --count 12x: $(cat "$tmp/badcount.json")"
begin "--json ahead of the bad argument"
timeout $T "$VOLLEY" send --json 127.0.0.1:9 --size -1 >"$tmp/badsize.json" 2>/dev/null
rc=$?
[ $rc -eq 2 ] || fail "send --size -1 exited $rc"
valid send "$rc" "$tmp/badsize.json"
doc badopt 2 ping 127.0.0.1:9 --no-such-flag
doc badaddr 2 echo nowhere
for cmd in probe recv send echo ping bench tcp-echo tcp-load; do
    doc "bad$cmd" 2 "$cmd" --no-such-flag
done
# a runtime error before the run: the port is taken
if start_volley recv busy --duration 20; then
    doc inuse 1 recv "127.0.0.1:$port" --duration 1
    check_json "$tmp/inuse.json" 'assert j["error"]["errno"] == "EADDRINUSE", j' ||
        fail "recv on a taken port: $(cat "$tmp/inuse.json")"
    stop "$vpid"
    reap "$vpid"
fi
# a runtime error after the run: no reply at all (exit 1, as ping(8))
doc noreply 1 ping "127.0.0.1:$(free_port)" --count 2 --timeout 50
check_json "$tmp/noreply.json" '
assert j["end"]["received"] == 0 and j["end"]["sent"] == 2
assert j["error"]["errno"] == "ECONNREFUSED" and "no reply" in j["error"]["message"]' ||
    fail "ping without a reply: $(cat "$tmp/noreply.json")"

cases_done
