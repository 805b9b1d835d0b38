#!/bin/sh
# SPDX-License-Identifier: MIT
# Drives the volley command-line tool as a user would: help and usage errors,
# the numbers every flag takes and refuses, bad environment variables named
# as such, rate parsing, probe's JSON, a send/recv run over loopback with every
# datagram accounted for, a sender without the sequence header, echo and ping
# round trips, tcp-echo and tcp-load over loopback, and a short bench with its
# JSON and its SVG chart. With VOLLEY_TEST_PORTABLE=1 (CMake sets it for a
# tool built without the Linux parts) what needs them (tcp-echo, tcp-load,
# --threads, --pin, --steer, bench --tcp, --threads and --cpu, the mmsg,
# uring and raw bench paths) must be refused as not available instead, and
# the rest is run on the scalar backend.
#
# Usage: sh tests/test_cli.sh /path/to/volley
# Exit status: 0 pass, 1 fail, 77 skip (python3 or timeout missing).

# shellcheck disable=SC2015 # "run && check || fail": fail when either does

T=20 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
need python3
need timeout

# check_help CMD FLAG...: --help exits 0 and names every flag.
check_help() {
    cmd=$1
    shift
    if ! timeout $T "$VOLLEY" ${cmd:+"$cmd"} --help >"$tmp/help" 2>&1; then
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

# refuses FLAG VALUE RANGE ARG...: `volley ARG... FLAG VALUE` exits 2, and
# its message names the flag, the value and the allowed range "RANGE)".
refuses() {
    flag=$1
    value=$2
    shift 2
    refuses_item "$flag" "$value" "$value" "$@"
}

# refuses_item FLAG LIST ITEM RANGE ARG...: the same for a list whose bad
# ITEM is named.
refuses_item() {
    flag=$1
    value=$2
    item=$3
    range=$4
    shift 4
    timeout $T "$VOLLEY" "$@" "$flag" "$value" >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 2 ]; then
        fail "volley $* $flag '$value' exited $rc, want 2"
    elif ! grep -q -F -e "$flag: \"$item\"" "$tmp/err" ||
        ! grep -q -F -e "$range)" "$tmp/err"; then
        fail "volley $* $flag '$value' does not name the flag, $item and $range: $(cat "$tmp/err")"
    fi
}

# env_refused VAR=VALUE ARG...: `volley ARG...` with that in its environment
# exits 2 and names the variable and the value.
env_refused() {
    setting=$1
    shift
    env "$setting" timeout $T "$VOLLEY" "$@" >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 2 ]; then
        fail "$setting volley $* exited $rc, want 2"
    elif ! grep -q -F -e "${setting%%=*}" "$tmp/err" ||
        ! grep -q -F -e "\"${setting#*=}\"" "$tmp/err"; then
        fail "$setting volley $* does not name it: $(cat "$tmp/err")"
    fi
}

# start_recv NAME ARG...: runs `volley recv 127.0.0.1:PORT ARG... --json`
# in the background once it has bound a free port; sets port and vpid.
start_recv() {
    start_volley recv "$@" --json
}

# 1: the tool was built without the Linux parts.
portable=${VOLLEY_TEST_PORTABLE:-0}
# linux_only: true where the tool has the Linux parts (the case runs).
linux_only() {
    [ "$portable" = 0 ]
}

# not_here ARG...: `volley ARG...` exits 2 saying that what it asked for is
# not available on this platform.
not_here() {
    timeout $T "$VOLLEY" "$@" >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 2 ]; then
        fail "volley $* exited $rc, want 2 (not available)"
    elif ! grep -q -F "not available on this platform" "$tmp/err"; then
        fail "volley $* does not say it is not available here: $(cat "$tmp/err")"
    fi
}

# rate_is RATE BPS: `volley send --rate RATE` takes it as BPS bits/s.
rate_is() {
    timeout $T "$VOLLEY" send "127.0.0.1:$(free_port)" --rate "$1" --count 1 --json \
        >"$tmp/rate.json" 2>"$tmp/rate.err" &&
        check_end "$tmp/rate.json" 'assert j["target_rate_bps"] == '"$2" ||
        fail "--rate $1 is not $2 bit/s: $(cat "$tmp/rate.json" "$tmp/rate.err")"
}

# --- help, version, usage errors
check_help "" probe recv send echo ping bench tcp-echo tcp-load --version
check_help probe --json
check_help recv --count --duration --idle --backend --no-gso --no-gro --json VLY1 jitter \
    --threads --steer --pin per_thread
check_help send --count --duration --size --rate --burst --kernel-pacing --batch \
    --backend --no-gso --json VLY1 --threads --pin
check_help echo --count --duration --idle --batch --backend --no-gso --no-gro --json \
    --threads --steer --pin
check_help ping --count --rate --interval --size --timeout --duration --backend --json VLY1
check_help bench --seconds --repeat --sizes --paths --no-latency --cpu --plot --json iperf3 \
    --tcp sockperf --threads "and plain (plain C epoll"
tcp_cmds=
if linux_only; then
    tcp_cmds="tcp-echo tcp-load"
    check_help tcp-echo --backend --discard --count --duration --buffers --json epoll \
        --threads --steer --pin
    check_help tcp-load --conns --size --mode --duration --count --backend --buffers --zc \
        --json pingpong stream p99.9 --threads --pin
    # the help says so where something is missing, and only there
    ! timeout $T "$VOLLEY" --help | grep -q "not available" || fail "volley --help: not available"
else
    for cmd in tcp-echo tcp-load "tcp-echo --help" "tcp-echo 127.0.0.1:0" "tcp-ref"; do
        # shellcheck disable=SC2086 # $cmd is meant to split
        not_here $cmd
    done
    check_help "" "tcp-echo  not available on this platform" \
        "tcp-load  not available on this platform"
    check_help recv "--threads, --steer and --pin are not available on this platform"
    check_help send "--threads and --pin are not available on this platform"
    check_help echo "--threads, --steer and --pin are not available on this platform"
    check_help bench "Not available on this platform" "--tcp, --threads, --cpu" \
        "raw mmsg gso+gro gso-split gso->plain gro-segs uring uring+gso uring+zc"
    for args in "recv 127.0.0.1:0 --threads 2" "recv 127.0.0.1:0 --steer cpu" \
        "send 127.0.0.1:9 --threads 1" "send 127.0.0.1:9 --pin" \
        "echo 127.0.0.1:0 --threads 2" "bench --tcp" "bench --threads" "bench --cpu 0,0" \
        "bench --paths baseline,mmsg" "bench --paths raw" "bench --paths uring+zc"; do
        # shellcheck disable=SC2086 # $args is meant to split
        not_here $args
    done
fi
# every command with numeric flags states their syntax, and each flag its range
for cmd in recv send echo ping bench $tcp_cmds; do
    check_help "$cmd" "plain decimal"
done
check_help recv "0.001 to 1000000" "0 to 1000000" "1 to 18446744073709551615"
check_help send "0 to 65507" "0 to 65527" "1 to 10T" "1 to 4294967295" "1 to 1024"
check_help echo "0.001 to 1000000" "0 to 1000000" "1 to 1024"
check_help ping "1 to 10000000" "0.001 to 1000000000" "0.000001 to" "24 to 65507" \
    "24 to 65527" "0.001 to 60000"
check_help bench "0.001 to 60" "1 to 100" "1 to 16" "1 to 65507" "0 to 1023"
if linux_only; then
    check_help tcp-echo "0.001 to 1000000" "1 to 18446744073709551615" "2 to 32768"
    check_help tcp-load "1 to 20000" "1 to 16777216" "0.001 to 1000000" "2 to 32768"
fi
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
expect_usage send 127.0.0.1:9 --batch 5000
expect_usage send 127.0.0.1:9 --backend nope
expect_usage echo 127.0.0.1:9 --backend epoll
expect_usage send 127.0.0.1:0
# --rate: a decimal number of bits/s with one optional SI suffix
for bad in "" abc 0 0k -5M +5M " 5M" "5M " 5X 1.2.3M M 5MM 5Mbit 1e6 0x10 inf 10.5T 11T \
    .5M 5.M 05M 1.5 0.0005k; do
    refuses --rate "$bad" 1..10T send 127.0.0.1:9 --count 1
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
expect_usage bench --unix --tcp
expect_usage bench --unix --threads
expect_usage bench --unix --seconds 1
expect_usage bench --unix --sizes 64
expect_usage bench --unix --plot "$tmp/u.svg"
if linux_only; then
    expect_usage bench --tcp --sizes 64
    expect_usage bench --tcp --paths baseline
    expect_usage bench --tcp --no-latency
    expect_usage bench --tcp --repeat 0
    expect_usage bench --threads --paths raw
    expect_usage bench --threads --plot "$tmp/t.svg"
    expect_usage tcp-echo
    expect_usage tcp-echo 127.0.0.1:0 --bogus
    expect_usage tcp-echo not-an-address
    expect_usage tcp-echo 127.0.0.1:0 extra
    expect_usage tcp-echo 127.0.0.1:0 --backend mmsg
    expect_usage tcp-echo 127.0.0.1:0 --duration 0
    expect_usage tcp-echo 127.0.0.1:0 --count 0
    expect_usage tcp-echo 127.0.0.1:0 --buffers 1
    expect_usage tcp-echo 127.0.0.1:0 --buffers 32769
    expect_usage tcp-load
    expect_usage tcp-load 127.0.0.1:0
    expect_usage tcp-load 127.0.0.1:9 --bogus
    expect_usage tcp-load 127.0.0.1:9 --conns 0
    expect_usage tcp-load 127.0.0.1:9 --mode nope
    expect_usage tcp-load 127.0.0.1:9 --backend scalar
    expect_usage tcp-load 127.0.0.1:9 --duration 1e3
    expect_usage tcp-load 127.0.0.1:9 --count -1
    refuses --conns 20001 1..20000 tcp-load 127.0.0.1:9
    refuses --size 0 1..16777216 tcp-load 127.0.0.1:9
    refuses --size 16777217 1..16777216 tcp-load 127.0.0.1:9
    refuses --buffers 40000 2..32768 tcp-load 127.0.0.1:9
    refuses --duration 0.0001 0.001..1000000 tcp-echo 127.0.0.1:0
fi

# --- numbers: one parser for every flag. Each refusal class for a flag of
# each command; an accepted value would end the command at once, exit 0.
# hex, blank, exponent, sign, trailing garbage, a fraction of a whole number
for bad in 0x10 " 10" 1e1 -10 10x 10.5; do
    refuses --count "$bad" 1..18446744073709551615 recv 127.0.0.1:0 --duration 0.1
    refuses --batch "$bad" 1..1024 send 127.0.0.1:9 --count 1
    refuses --batch "$bad" 1..1024 echo 127.0.0.1:0 --duration 0.1
    refuses --count "$bad" 1..10000000 ping 127.0.0.1:9 --timeout 100
    refuses --repeat "$bad" 1..100 bench --paths baseline --no-latency --sizes 64 \
        --seconds 0.01
done
for bad in 0x1 " 1" "1 " 1e-3 1E3 -1 +1 1S 1sec "1 s" 1,5 .5 5. 01 inf nan "" s -1s 1ss 1m; do
    refuses --duration "$bad" 0.001..1000000 recv 127.0.0.1:0 --idle 0
    refuses --idle "$bad" 0..1000000 echo 127.0.0.1:0 --duration 0.1
    refuses --timeout "$bad" 0.001..60000 ping 127.0.0.1:9 --count 1
    refuses --seconds "$bad" 0.001..60 bench --paths baseline --no-latency --sizes 64 \
        --repeat 1
done
# finer than the flag's unit, or out of range
refuses --duration 0.0001 0.001..1000000 send 127.0.0.1:9
refuses --duration 0 0.001..1000000 recv 127.0.0.1:0
refuses --duration 1000000.001 0.001..1000000 recv 127.0.0.1:0
refuses --idle 1000001 0..1000000 recv 127.0.0.1:0 --duration 0.1
refuses --count 0 1..18446744073709551615 send 127.0.0.1:9
refuses --count 18446744073709551616 1..18446744073709551615 send 127.0.0.1:9
refuses --burst 4294967296 1..4294967295 send 127.0.0.1:9 --count 1 --rate 1M
refuses --batch 1025 1..1024 echo 127.0.0.1:0 --duration 0.1
refuses --count 10000001 1..10000000 ping 127.0.0.1:9 --timeout 100
refuses --rate 0.0001 0.001..1000000000 ping 127.0.0.1:9 --count 1
refuses --rate 1000000001 0.001..1000000000 ping 127.0.0.1:9 --count 1
refuses --interval 0.0000001 0.000001..1000000 ping 127.0.0.1:9 --count 1
refuses --interval 1000000.5 0.000001..1000000 ping 127.0.0.1:9 --count 1
refuses --timeout 60000.001 0.001..60000 ping 127.0.0.1:9 --count 1
refuses --seconds 60.001 0.001..60 bench --paths baseline --no-latency --sizes 64
refuses --repeat 101 1..100 bench --paths baseline --no-latency --sizes 64
# a size over the UDP maximum of ADDR's family is bad usage, not a failed send
refuses --size 65508 0..65507 send 127.0.0.1:9 --count 1
refuses --size 65508 0..65507 send "[::ffff:127.0.0.1]:9" --count 1
refuses --size 65528 0..65527 send "[::1]:9" --count 1
refuses --size 70000 24..65507 ping 127.0.0.1:9 --count 1 --timeout 100
refuses --size 65508 24..65507 ping "[::ffff:127.0.0.1]:9" --count 1 --timeout 100
refuses --size 65528 24..65527 ping "[::1]:9" --count 1 --timeout 100
refuses --size 23 24..65507 ping 127.0.0.1:9 --count 1 --timeout 100
refuses --sizes 65508 1..65507 bench --paths baseline --no-latency --seconds 0.01
# units, as people type them: sizes in K (k, KiB: 1024), M and G; times in
# s, ms, us or ns, a bare number in the flag's own unit (seconds for
# --duration, --idle and --seconds, milliseconds for --interval and
# --timeout); rates in powers of 1000 (above)
for form in 1k:1024 1K:1024 1KiB:1024 1.5k:1536 0.5K:512 0k:0 64:64; do
    timeout $T "$VOLLEY" send "127.0.0.1:$(free_port)" --size "${form%%:*}" --count 1 \
        --json >"$tmp/unit.json" 2>"$tmp/unit.err" &&
        check_end "$tmp/unit.json" 'assert j["bytes"] == int(a[0]), j' "${form#*:}" ||
        fail "send --size ${form%%:*} is not ${form#*:} bytes: $(cat "$tmp/unit.err")"
done
for form in 2s:2000 500ms:500 1500us:1.5 250000ns:0.25 0.5s:500 7:7; do
    timeout $T "$VOLLEY" ping 127.0.0.1:9 --count 1 --interval "${form%%:*}" \
        --timeout "${form%%:*}" --json >"$tmp/unit.json" 2>/dev/null
    check_json "$tmp/unit.json" '
assert j["args"]["interval_ms"] == float(a[0]) == j["args"]["timeout_ms"], j["args"]' \
        "${form#*:}" || fail "ping --interval/--timeout ${form%%:*} is not ${form#*:} ms"
done
for form in 1s:1 250ms:0.25 1000us:0.001 2000000ns:0.002 0.25:0.25; do
    timeout $T "$VOLLEY" recv 127.0.0.1:0 --duration "${form%%:*}" --idle "${form%%:*}" \
        --json >"$tmp/unit.json" 2>/dev/null &&
        check_json "$tmp/unit.json" '
assert j["args"]["duration_s"] == float(a[0]) == j["args"]["idle_s"], j["args"]' \
            "${form#*:}" || fail "recv --duration/--idle ${form%%:*} is not ${form#*:} s"
done
# the same strict refusals: a unit that is not the flag's, finer than its
# step, out of range, or overflowing
for bad in 1kB 1KB 1Ki 1ki 1kk k 1.k -1k 1e3k 1s 64K 1G 99999999999999999999K; do
    refuses --size "$bad" 0..65507 send 127.0.0.1:9 --count 1
done
refuses --size 1.0001k 0..65507 send 127.0.0.1:9 --count 1
linux_only && refuses --size 17M 1..16777216 tcp-load 127.0.0.1:9
refuses --burst 4G 1..4294967295 send 127.0.0.1:9 --count 1 --rate 1M
refuses_item --sizes 64,1.1k 1.1k 1..65507 bench --paths baseline --no-latency --seconds 0.01
for bad in 500us 1ns 0.5ms 0s 0ms 1000001s 99999999999999999999s 1M 1k 1h; do
    refuses --duration "$bad" 0.001..1000000 recv 127.0.0.1:0 --idle 0
done
for bad in 1ns 0.5us 60001ms 61s 1ks; do
    refuses --timeout "$bad" 0.001..60000 ping 127.0.0.1:9 --count 1
done
refuses --interval 0.5ns 0.000001..1000000 ping 127.0.0.1:9 --count 1
refuses --interval 1001s 0.000001..1000000 ping 127.0.0.1:9 --count 1
refuses --seconds 61s 0.001..60 bench --paths baseline --no-latency --sizes 64
refuses --seconds 100us 0.001..60 bench --paths baseline --no-latency --sizes 64
timeout $T "$VOLLEY" recv 127.0.0.1:0 --duration 1us >/dev/null 2>"$tmp/err"
grep -q -F 'is finer than 0.001 s' "$tmp/err" ||
    fail "recv --duration 1us does not say it is finer than the flag's step: $(cat "$tmp/err")"

# --- host names, resolved by the tool: names in /etc/hosts only (no
# resolver traffic), brackets for IPv6 and optional for names
if grep -q -E '^127\.0\.0\.1[[:space:]].*\blocalhost\b' /etc/hosts 2>/dev/null; then
    if start_volley recv named --count 5 --idle 5 --duration 20 --json; then
        for addr in "localhost:$port" "[localhost]:$port"; do
            timeout $T "$VOLLEY" send "$addr" --count 1 --size 64 --json >"$tmp/named.json" &&
                check_json "$tmp/named.json" '
assert j["args"]["addr"] == a[0] and j["args"]["address"] == a[1], j["args"]
assert j["end"]["datagrams"] == 1' "$addr" "127.0.0.1:$port" ||
                fail "send $addr: $(cat "$tmp/named.json")"
        done
        timeout $T "$VOLLEY" ping "localhost:$port" --count 3 --timeout 100 >/dev/null 2>&1
        timeout $T "$VOLLEY" send "localhost:$port" --count 3 --size 64 >/dev/null ||
            fail "send localhost:$port exited non-zero"
        reap "$vpid"
        check_end "$tmp/named.out" 'assert j["datagrams"] >= 5, j' ||
            fail "recv from senders to localhost: $(cat "$tmp/named.out")"
    fi
    # a server bound by name, a client by name
    if start_volley echo echoname --count 2 --duration 20 --json; then
        timeout $T "$VOLLEY" ping "localhost:$port" --count 2 --json >"$tmp/pname.json" &&
            check_end "$tmp/pname.json" 'assert j["received"] == 2' ||
            fail "ping localhost:$port: $(cat "$tmp/pname.json")"
        reap "$vpid"
    fi
    timeout $T "$VOLLEY" recv localhost:0 --duration 0.05 --json >"$tmp/bindname.json" \
        2>"$tmp/bindname.err" &&
        grep -q "listening on 127.0.0.1:" "$tmp/bindname.err" ||
        fail "recv localhost:0 did not bind 127.0.0.1: $(cat "$tmp/bindname.err")"
else
    echo "note: no 127.0.0.1 localhost line in /etc/hosts: names not tried"
fi
# [::1] needs its brackets; a name needs a port; a port is 0 to 65535
if grep -q -E '^::1[[:space:]].*\bip6-localhost\b' /etc/hosts 2>/dev/null; then
    timeout $T "$VOLLEY" send ip6-localhost:9 --count 1 --json >"$tmp/ip6.json" 2>/dev/null &&
        check_json "$tmp/ip6.json" 'assert j["args"]["address"] == "[::1]:9"' ||
        fail "send ip6-localhost:9: $(cat "$tmp/ip6.json")"
fi
long=$(printf '%0300d' 0 | tr 0 a)
for bad in localhost "localhost:" localhost:65536 localhost:-1 "localhost: 9" localhost:9x \
    ::1:9 "[::1]" "[::1]9" "[localhost:9" "]:9" ":9" "[]:9" "$long:9" "local host:"; do
    expect_usage send "$bad" --count 1
    grep -q -F "bad ADDR" "$tmp/err" || fail "send '$bad' does not say the ADDR is bad"
done

# lists: no empty item, at most as many items as allowed, each a number
bench1="bench --paths baseline --no-latency --seconds 0.01 --repeat 1"
for bad in 64,,512 ,64 "64," "" 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17; do
    # shellcheck disable=SC2086 # $bench1 is meant to split
    refuses --sizes "$bad" 1..65507 $bench1
done
for bad in 0x10 " 512" -64 1e2 64k 0 65508; do
    # shellcheck disable=SC2086
    refuses_item --sizes "64,$bad" "$bad" 1..65507 $bench1
done
for bad in 0 "0," ,0 0,,0 0,0,0; do
    # shellcheck disable=SC2086
    linux_only && refuses --cpu "$bad" 0..1023 $bench1 --sizes 64
done
for bad in 0x0 -1 1024 1e1; do
    # shellcheck disable=SC2086
    linux_only && refuses_item --cpu "0,$bad" "$bad" 0..1023 $bench1 --sizes 64
done
# shellcheck disable=SC2086
expect_usage $bench1 --sizes 64 --paths baseline,,mmsg
# shellcheck disable=SC2086
expect_usage $bench1 --sizes 64 --paths baseline,
# the forms that are documented still work, at the ends of their ranges
timeout $T "$VOLLEY" send "127.0.0.1:$(free_port)" --size 65507 --count 1 --batch 1024 \
    --json >"$tmp/big.json" &&
    check_end "$tmp/big.json" 'assert j["datagrams"] == 1 and j["bytes"] == 65507' ||
    fail "send --size 65507: $(cat "$tmp/big.json")"
timeout $T "$VOLLEY" send "[::ffff:127.0.0.1]:$(free_port)" --size 65507 --count 1 \
    --json >"$tmp/mapped.json" &&
    check_end "$tmp/mapped.json" 'assert j["datagrams"] == 1 and j["errors"] == 0' ||
    fail "send --size 65507 to a v4-mapped ADDR: $(cat "$tmp/mapped.json")"
timeout $T "$VOLLEY" send "127.0.0.1:$(free_port)" --size 0 --count 3 --json \
    >"$tmp/empty.json" &&
    check_end "$tmp/empty.json" 'assert j["datagrams"] == 3 and j["bytes"] == 0' ||
    fail "send --size 0: $(cat "$tmp/empty.json")"
timeout $T "$VOLLEY" recv 127.0.0.1:0 --duration 0.001 --idle 0.250 --count 1 --json \
    >/dev/null 2>&1 || fail "recv --duration 0.001 --idle 0.250"
# (nobody answers: exit status 1, as ping(8))
timeout $T "$VOLLEY" ping "127.0.0.1:$(free_port)" --count 1 --interval 0.000001 \
    --timeout 0.001 --duration 1000000 --json >"$tmp/fine.json" 2>/dev/null
[ $? -eq 1 ] &&
    check_end "$tmp/fine.json" 'assert j["sent"] == 1 and j["interval_ms"] == 0.000001' ||
    fail "ping --interval 0.000001: $(cat "$tmp/fine.json")"

# --- a bad environment variable is named as the cause, by every command
for cmd in probe "recv 127.0.0.1:0 --duration 0.1" "send 127.0.0.1:9 --count 1" \
    "echo 127.0.0.1:0 --duration 0.1" "ping 127.0.0.1:9 --count 1 --timeout 100" \
    "$bench1 --sizes 64" ${tcp_cmds:+"tcp-echo 127.0.0.1:0 --duration 0.1"}; do
    # shellcheck disable=SC2086 # $cmd is meant to split
    env_refused VOLLEY_BACKEND=bogus $cmd
    # shellcheck disable=SC2086
    env_refused VOLLEY_DISABLE=foo $cmd
    # shellcheck disable=SC2086
    env_refused VOLLEY_DISABLE=gso,nope $cmd
done
env VOLLEY_BACKEND=scalar VOLLEY_DISABLE=gso,gro timeout $T "$VOLLEY" recv 127.0.0.1:0 \
    --duration 0.1 --json >"$tmp/env.json" 2>"$tmp/env.err" &&
    check_end "$tmp/env.json" 'assert j["backend"] == "scalar"' ||
    fail "valid VOLLEY_BACKEND and VOLLEY_DISABLE: $(cat "$tmp/env.json" "$tmp/env.err")"
env VOLLEY_BACKEND=mmsg VOLLEY_DISABLE=ecn timeout $T "$VOLLEY" probe >/dev/null ||
    fail "volley probe with a valid environment"

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
    check_end "$tmp/probe.json" '
assert all(isinstance(j[k]["ok"], bool) and isinstance(j[k]["why"], str)
    for k in ("scalar", "mmsg", "gso", "gro", "pktinfo", "ecn", "timestamp",
              "rxq_ovfl", "recverr", "ipv6", "uring", "uring_zc", "kernel_pacing",
              "xnu"))
assert isinstance(j["gso_max_segments"], int)' || fail "probe --json: $(cat "$tmp/probe.json")"
    # Without the Linux parts, what they bring is off and says why.
    check_end "$tmp/probe.json" '
built = a[0] == "0"
for k in ("mmsg", "gso", "gro", "reuseport_steer"):
    assert built or (not j[k]["ok"] and j[k]["why"] == "built without the Linux parts"), k
' "$portable" || fail "probe --json without the Linux parts: $(cat "$tmp/probe.json")"
else
    fail "volley probe --json did not exit 0"
fi

# --- recv and send bounded by time alone, with nobody on the other side
timeout $T "$VOLLEY" recv 127.0.0.1:0 --duration 0.3 --json >"$tmp/idle.json" 2>/dev/null &&
    check_end "$tmp/idle.json" 'assert j["datagrams"] == 0' || fail "recv --duration 0.3"
timeout $T "$VOLLEY" send "127.0.0.1:$(free_port)" --duration 0.3 --json >"$tmp/void.json" &&
    check_end "$tmp/void.json" 'assert j["datagrams"] > 0' || fail "send --duration 0.3"

# --- send to recv: every datagram accounted for
if start_recv seq --count 5000; then
    timeout $T "$VOLLEY" send "127.0.0.1:$port" --count 5000 --size 200 --json \
        >"$tmp/send.json" || fail "volley send exited non-zero"
    reap "$vpid" || fail "volley recv exited non-zero: $(cat "$tmp/seq.err")"
    check_end "$tmp/send.json" '
assert j["datagrams"] == 5000 and j["bytes"] == 5000 * 200
assert j["header_bytes"] == 28 and j["target_rate_bps"] is None
assert j["rate_bps"] > j["payload_rate_bps"] > 0
assert abs(j["rate_bps"] / j["payload_rate_bps"] - 228 / 200) < 1e-6' ||
        fail "send summary: $(cat "$tmp/send.json")"
    # Loopback with a large buffer should not drop 5000 datagrams, but if the
    # kernel did, it must have said so. With GRO a dropped buffer may hold
    # several datagrams yet counts once, hence <= rather than ==.
    check_end "$tmp/seq.out" '
assert j["duplicated"] == 0 and j["truncated"] == 0 and j["stream"] is not None
assert j["bytes"] == j["datagrams"] * 200
assert ((j["datagrams"] == 5000 and j["lost"] == 0) or
        (j["kernel_drops"] > 0 and j["datagrams"] + j["kernel_drops"] <= 5000))
# the header carries send times: RFC 3550 jitter is known, and small
assert isinstance(j["jitter_ms"], float) and 0 <= j["jitter_ms"] < 1000
assert j["rate_bps"] > j["payload_rate_bps"] > 0' ||
        fail "recv summary: $(cat "$tmp/seq.out")"
fi

# --- a plain sender without the header is counted exactly
if start_recv plain --count 100; then
    timeout $T python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(100):
    s.sendto(b"%030d" % i, ("127.0.0.1", int(sys.argv[1])))' \
        "$port" || fail "python sender"
    reap "$vpid" || fail "volley recv exited non-zero: $(cat "$tmp/plain.err")"
    check_end "$tmp/plain.out" '
assert j["datagrams"] == 100 and j["bytes"] == 100 * 30
assert j["lost"] == 0 and j["stream"] is None and j["jitter_ms"] is None' ||
        fail "plain recv summary: $(cat "$tmp/plain.out")"
fi

# --- a paced sender: the rate it reports is the pacer's, within reason (the
# receiver measures it precisely in tests/test_interop.sh)
timeout $T "$VOLLEY" send "127.0.0.1:$(free_port)" --rate 20M --duration 0.5 --size 1000 \
    --json >"$tmp/paced.json" &&
    check_end "$tmp/paced.json" '
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
if start_volley echo echo --count 700 --duration 20 --json; then
    timeout $T "$VOLLEY" ping "127.0.0.1:$port" --count 500 --json >"$tmp/ping.json" &&
        check_end "$tmp/ping.json" "$pcheck"'
assert j["mode"] == "ping-pong" and j["size"] == 64' 500 ||
        fail "ping: $(cat "$tmp/ping.json")"
    timeout $T "$VOLLEY" ping "127.0.0.1:$port" --count 200 --rate 2000 --size 100 \
        --json >"$tmp/ping2.json" &&
        check_end "$tmp/ping2.json" "$pcheck"'
assert j["mode"] == "interval" and j["interval_ms"] == 0.5 and j["size"] == 100' 200 ||
        fail "ping --rate: $(cat "$tmp/ping2.json")"
    reap "$vpid" || fail "volley echo exited non-zero: $(cat "$tmp/echo.err")"
    check_end "$tmp/echo.out" '
assert j["received"] == 700 and j["echoed"] == 700 and j["stopped"] == "count"
assert j["bytes"] == 500 * 64 + 200 * 100 and j["errors"] == 0 and j["dropped"] == 0' ||
        fail "echo summary: $(cat "$tmp/echo.out")"
fi
# nobody answers: bounded by the timeout, every request lost, and as
# ping(8) exit status 1; a closed port on loopback answers with ICMP port
# unreachable, which the summary and the error name
noport=$(free_port)
timeout $T "$VOLLEY" ping "127.0.0.1:$noport" --count 3 --timeout 100 --json \
    >"$tmp/noping.json" 2>"$tmp/noping.err"
rc=$?
[ $rc -eq 1 ] && check_end "$tmp/noping.json" '
assert j["sent"] == 3 and j["received"] == 0 and j["lost"] == 3 and j["p50_us"] is None
e = j["icmp_error"]
assert j["icmp_errors"] >= 1 and e["errno"] == "ECONNREFUSED" and e["dest"] == a[0], e
assert "port unreachable" in e["message"] and e["count"] == j["icmp_errors"]' \
    "127.0.0.1:$noport" && check_json "$tmp/noping.json" '
assert j["error"]["errno"] == "ECONNREFUSED" and "no reply" in j["error"]["message"]' ||
    fail "ping to nobody exited $rc: $(cat "$tmp/noping.json" "$tmp/noping.err")"
grep -q -F "127.0.0.1:$noport: Connection refused (ICMP port unreachable)" "$tmp/noping.err" ||
    fail "ping to nobody does not say which error: $(cat "$tmp/noping.err")"
timeout $T "$VOLLEY" ping "127.0.0.1:$noport" --count 2 --timeout 100 \
    >"$tmp/noping.txt" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q -E "port unreachable\), 2 times" "$tmp/noping.txt" ||
    fail "ping to nobody, text, exited $rc: $(cat "$tmp/noping.txt")"
# send to a closed port: the summary says which error came back, how often
timeout $T "$VOLLEY" send "127.0.0.1:$noport" --count 20 --batch 1 >"$tmp/nosend.txt" 2>&1 &&
    grep -q -F "error reports: 127.0.0.1:$noport: Connection refused (ICMP port unreachable)" \
        "$tmp/nosend.txt" ||
    fail "send to a closed port does not say which error: $(cat "$tmp/nosend.txt")"
timeout $T "$VOLLEY" send "127.0.0.1:$noport" --count 20 --batch 1 --json \
    >"$tmp/nosend.json" 2>&1 &&
    check_end "$tmp/nosend.json" '
e = j["icmp_error"]
assert j["icmp_errors"] >= 1 and e["errno"] == "ECONNREFUSED" and e["dest"] == a[0], j' \
        "127.0.0.1:$noport" ||
    fail "send --json to a closed port: $(cat "$tmp/nosend.json")"
# echo with nobody talking stops by its duration and still reports
timeout $T "$VOLLEY" echo 127.0.0.1:0 --duration 0.3 --json >"$tmp/noecho.json" 2>/dev/null &&
    check_end "$tmp/noecho.json" 'assert j["received"] == 0 and j["stopped"] == "duration"' ||
    fail "echo --duration 0.3: $(cat "$tmp/noecho.json")"

# --- tcp-echo and tcp-load: ping-pong over loopback, every request answered,
# and a stream into the sink; the server counts the connections closed
if linux_only; then
    if start_volley tcp-echo tcpecho --count 3 --duration 20 --json; then
        timeout $T "$VOLLEY" tcp-load "127.0.0.1:$port" --conns 3 --size 100 --duration 1 \
            --json >"$tmp/tcpload.json" &&
            check_end "$tmp/tcpload.json" '
assert j["mode"] == "pingpong" and j["conns"] == 3 and j["connected"] == 3, "conns"
assert j["requests"] > 0 and j["errors"] == 0 and j["first_error"] is None, "counts"
assert j["bytes_out"] >= j["requests"] * 100 and j["stopped"] == "duration"
p = [j[k] for k in ("min_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us")]
assert all(x > 0 for x in p) and p == sorted(p), p
assert p[0] <= j["mean_us"] <= p[-1]' ||
            fail "tcp-load: $(cat "$tmp/tcpload.json")"
        reap "$vpid" || fail "volley tcp-echo exited non-zero: $(cat "$tmp/tcpecho.err")"
        check_end "$tmp/tcpecho.out" '
assert j["mode"] == "echo" and j["stopped"] == "count"
assert j["accepted"] == 3 and j["closed"] == 3 and j["errors"] == 0
assert j["bytes_in"] == j["bytes_out"] > 0' ||
            fail "tcp-echo summary: $(cat "$tmp/tcpecho.out")"
    fi
    if start_volley tcp-echo sink --discard --count 1 --duration 20 --json; then
        timeout $T "$VOLLEY" tcp-load "127.0.0.1:$port" --mode stream --size 65536 \
            --duration 0.5 --json >"$tmp/stream.json" &&
            check_end "$tmp/stream.json" '
assert j["mode"] == "stream" and j["requests"] > 0 and j["errors"] == 0
assert j["bytes_out"] > 0 and j["p50_us"] is None' ||
            fail "tcp-load --mode stream: $(cat "$tmp/stream.json")"
        reap "$vpid" || fail "volley tcp-echo --discard exited non-zero"
        # the client counts what the kernel took until its end; the close sends the rest
        check_end "$tmp/sink.out" '
assert j["mode"] == "discard" and j["closed"] == 1 and j["bytes_out"] == 0
assert j["bytes_in"] >= json.load(open(a[0]))["end"]["bytes_out"] > 0' "$tmp/stream.json" ||
            fail "tcp-echo --discard summary: $(cat "$tmp/sink.out")"
    fi
    # nobody listening: a runtime error, said on stderr, exit 1
    timeout $T "$VOLLEY" tcp-load "127.0.0.1:$(free_port)" --duration 0.2 --json \
        >/dev/null 2>"$tmp/refused.err"
    rc=$?
    [ $rc -eq 1 ] && [ -s "$tmp/refused.err" ] ||
        fail "tcp-load to nobody exited $rc: $(cat "$tmp/refused.err")"
    # the server alone stops by its duration and still reports
    timeout $T "$VOLLEY" tcp-echo 127.0.0.1:0 --duration 0.3 --json >"$tmp/notcp.json" \
        2>/dev/null &&
        check_end "$tmp/notcp.json" 'assert j["accepted"] == 0 and j["stopped"] == "duration"' ||
        fail "tcp-echo --duration 0.3: $(cat "$tmp/notcp.json")"
fi

# --- bench --unix and bench --threads: their JSON, as the man page lists it
batch_be=mmsg
linux_only || batch_be=scalar
if timeout 120 "$VOLLEY" bench --unix --repeat 1 --json >"$tmp/unix.json" 2>"$tmp/unix.err"; then
    check_end "$tmp/unix.json" '
j = j["cells"]
rows = [(c["path"], c["batch"]) for c in j]
# without the Linux parts, volley picks the backend (scalar, here): one
# system call per datagram and end, as write/read
be = a[0]
assert rows == [("write/read", 1), ("volley " + be, 64), ("volley " + be, 128),
                ("volley " + be, 256)], rows
for c in j:
    assert c["size"] == 4000 and c["datagrams"] == 10000 and c["runs"] == 1, c
    assert c["dgrams_per_s"] > 0 and c["syscalls"] > 0, c
assert j[0]["syscalls"] == 20000 and j[0]["ratio"] == 1
# batches make fewer system calls than one per datagram and end
assert all(c["syscalls"] < j[0]["syscalls"] if be == "mmsg" else
           c["syscalls"] == j[0]["syscalls"] for c in j[1:]), j' "$batch_be" ||
        fail "bench --unix --json: $(cat "$tmp/unix.json" "$tmp/unix.err")"
else
    fail "bench --unix: $(cat "$tmp/unix.err")"
fi
if linux_only; then
    if timeout 120 "$VOLLEY" bench --threads --seconds 0.05 --repeat 1 --json \
        >"$tmp/threads.json" 2>"$tmp/threads.err"; then
        check_end "$tmp/threads.json" '
j = j["cells"]
cells = [(c["kind"], c["threads"]) for c in j]
assert cells == [("datagrams", 1), ("datagrams", 2), ("tcp-echo", 1), ("tcp-echo", 2)], cells
for c in j:
    rate = c["dgrams_per_s"] if c["kind"] == "datagrams" else c["requests_per_s"]
    assert rate > 0 and c["runs"] == 1 and c["ratio_to_1_thread"] > 0, c
assert j[0]["ratio_to_1_thread"] == 1 and j[2]["ratio_to_1_thread"] == 1' ||
            fail "bench --threads --json: $(cat "$tmp/threads.json" "$tmp/threads.err")"
    else
        fail "bench --threads: $(cat "$tmp/threads.err")"
    fi
fi

# --- --threads: one socket (or loop) per thread, every datagram and request
# accounted for in per_thread rows that sum to the whole
if linux_only; then
    for bad in 0 65 x; do
        expect_usage recv 127.0.0.1:9 --threads "$bad"
        expect_usage tcp-load 127.0.0.1:9 --conns 100 --threads "$bad"
    done
    expect_usage recv 127.0.0.1:9 --threads 2 --steer nonsense
    expect_usage echo 127.0.0.1:9 --steer nonsense
    expect_usage tcp-load 127.0.0.1:9 --conns 1 --threads 2
    if start_recv thr --threads 2 --count 20000; then
        timeout $T "$VOLLEY" send "127.0.0.1:$port" --threads 2 --count 20000 --size 100 \
            --json >"$tmp/thrsend.json" || fail "volley send --threads 2 exited non-zero"
        reap "$vpid" || fail "volley recv --threads 2 exited non-zero: $(cat "$tmp/thr.err")"
        check_end "$tmp/thrsend.json" '
assert j["threads"] == 2 and len(j["per_thread"]) == 2
assert j["datagrams"] == 20000 == sum(t["datagrams"] for t in j["per_thread"])
assert [t["thread"] for t in j["per_thread"]] == [0, 1]' ||
            fail "send --threads 2: $(cat "$tmp/thrsend.json")"
        check_end "$tmp/thr.out" '
p = j["per_thread"]
assert j["threads"] == 2 and len(p) == 2 and j["steer"] == "flow"
assert j["datagrams"] == sum(t["datagrams"] for t in p)
assert j["kernel_drops"] == sum(t["kernel_drops"] for t in p)
assert (j["datagrams"] == 20000 or
        (j["kernel_drops"] > 0 and j["datagrams"] + j["kernel_drops"] <= 20000))
assert j["duplicated"] == 0 and j["bytes"] == 100 * j["datagrams"]' ||
            fail "recv --threads 2: $(cat "$tmp/thr.out")"
    fi
    if start_volley echo threcho --threads 2 --steer kernel --count 300 --duration 20 --json; then
        timeout $T "$VOLLEY" ping "127.0.0.1:$port" --count 300 --json >"$tmp/thrping.json" &&
            check_end "$tmp/thrping.json" 'assert j["received"] == 300' ||
            fail "ping to echo --threads 2: $(cat "$tmp/thrping.json")"
        reap "$vpid" || fail "volley echo --threads 2 exited non-zero: $(cat "$tmp/threcho.err")"
        check_end "$tmp/threcho.out" '
p = j["per_thread"]
assert j["threads"] == 2 and len(p) == 2 and j["stopped"] == "count"
assert j["received"] == j["echoed"] == 300 == sum(t["echoed"] for t in p)' ||
            fail "echo --threads 2: $(cat "$tmp/threcho.out")"
    fi
    if start_volley tcp-echo thrtcp --threads 2 --count 8 --duration 20 --json; then
        timeout $T "$VOLLEY" tcp-load "127.0.0.1:$port" --threads 2 --conns 8 --count 4000 \
            --duration 10 --json >"$tmp/thrload.json" &&
            check_end "$tmp/thrload.json" '
p = j["per_thread"]
assert j["threads"] == 2 and len(p) == 2 and j["connected"] == 8
assert j["requests"] == 4000 == sum(t["requests"] for t in p), j["requests"]
assert j["errors"] == 0 and j["stopped"] == "count"
assert [t["conns"] for t in p] == [4, 4]' ||
            fail "tcp-load --threads 2: $(cat "$tmp/thrload.json")"
        reap "$vpid" || fail "volley tcp-echo --threads 2 exited non-zero: $(cat "$tmp/thrtcp.err")"
        check_end "$tmp/thrtcp.out" '
p = j["per_thread"]
assert j["threads"] == 2 and len(p) == 2 and j["stopped"] == "count"
assert j["accepted"] == j["closed"] == 8 == sum(t["accepted"] for t in p)
assert j["errors"] == 0 and j["bytes_in"] == j["bytes_out"] == 4000 * 128' ||
            fail "tcp-echo --threads 2: $(cat "$tmp/thrtcp.out")"
    fi
fi

# --- bench: one object per cell, baseline is the unit, and the chart
check_end "$tmp/probe.json" 'assert j["gso"]["ok"]' 2>/dev/null && gso=True || gso=False
check_end "$tmp/probe.json" 'assert j["uring"]["ok"]' 2>/dev/null && uring=True || uring=False
check_end "$tmp/probe.json" 'assert j["uring_zc"]["ok"]' 2>/dev/null && zc=True || zc=False
if timeout 120 "$VOLLEY" bench --seconds 0.1 --repeat 1 --sizes 64 --json \
    --plot "$tmp/bench.svg" >"$tmp/bench.json" 2>"$tmp/bench.err"; then
    check_end "$tmp/bench.json" '
import shutil
j = j["cells"]
gso, uring, zc = a[0] == "True", a[1] == "True", a[2] == "True"
linux = a[3] == "mmsg" # else built without the Linux parts: none of their paths
gso, uring, zc = gso and linux, uring and linux, zc and linux
tkeys = {"kind", "path", "size", "repeat", "dgrams_per_s", "gbit_per_s",
         "syscalls_per_dgram", "tx_syscalls_per_dgram", "rx_syscalls_per_dgram",
         "tx_cpu_ns_per_dgram", "rx_cpu_ns_per_dgram", "sent", "received", "lost",
         "ratio_to_baseline", "ratio_to_raw"}
lkeys = {"kind", "path", "size", "p50_us", "p99_us", "samples", "lost",
         "ratio_to_baseline"}
paths = (["baseline"] + (["raw"] if gso else []) + ["scalar"] + (["mmsg"] if linux else [])
         + (["gso+gro", "gso-split", "gso->plain", "gro-segs"] if gso else [])
         + (["uring"] if uring else []) + (["uring+gso"] if gso and uring else [])
         + (["uring+zc"] if gso and uring and zc else []) + ["tools"])
tput = [c for c in j if c["kind"] == "throughput"]
lat = [c for c in j if c["kind"] == "latency"]
assert isinstance(j, list) and len(tput) + len(lat) == len(j)
iperf = ["iperf3"] if shutil.which("iperf3") else []
got = [c["path"] for c in tput]
# iperf3 is someone else'"'"'s program: a failed run is noted and left out
assert got == paths + iperf or got == paths, got
assert [c["path"] for c in lat] == [p for p in paths if p not in ("raw", "tools")]
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
assert not gso or [c["ratio_to_raw"] for c in tput if c["path"] == "raw"] == [1]
assert lat[0]["path"] == "baseline" and lat[0]["ratio_to_baseline"] == 1
' "$gso" "$uring" "$zc" "$batch_be" || fail "bench --json: $(cat "$tmp/bench.json" "$tmp/bench.err")"
    # The chart is well-formed XML with one bar per throughput cell and one
    # latency bar per latency cell, labelled axes, a legend and a title.
    timeout $T python3 -c '
import json, sys, xml.dom.minidom
j = json.load(open(sys.argv[2]))["end"]["cells"]
d = xml.dom.minidom.parse(sys.argv[1])
rects = d.getElementsByTagName("rect")
bars = [r for r in rects if r.getAttribute("class") == "bar"]
lats = [r for r in rects if r.getAttribute("class") == "lat"]
assert len(bars) == len([c for c in j if c["kind"] == "throughput"]), len(bars)
assert len(lats) == len([c for c in j if c["kind"] == "latency"]), len(lats)
# the log axis starts below the smallest bar: every bar has a height
assert all(float(r.getAttribute("height")) > 0 for r in bars), [
    r.getAttribute("height") for r in bars]
# one colour per path
fills = {}
for r in bars:
    fills.setdefault(r.getElementsByTagName("title")[0].firstChild.data.split(",")[0],
                     r.getAttribute("fill"))
assert len(set(fills.values())) == len(fills), fills
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
    --paths "baseline,$batch_be" --no-latency --json >"$tmp/bench3.json" 2>"$tmp/bench3.err"; then
    check_end "$tmp/bench3.json" '
be = a[0]
j = j["cells"]
assert [(c["path"], c["size"]) for c in j] == [("baseline", 64), (be, 64),
                                               ("baseline", 200), (be, 200)]
assert all(c["kind"] == "throughput" and c["repeat"] == 3 for c in j)
assert all(c["dgrams_per_s_min"] <= c["dgrams_per_s"] <= c["dgrams_per_s_max"] for c in j)' \
        "$batch_be" ||
        fail "bench --repeat 3: $(cat "$tmp/bench3.json")"
else
    fail "volley bench --repeat 3 did not exit 0"
fi
# the table: a header, the cells, the latency rows and the total time
if timeout 60 "$VOLLEY" bench --seconds 0.05 --repeat 1 --sizes 64 --paths "baseline,$batch_be" \
    >"$tmp/bench.txt" 2>&1; then
    for want in "dgrams/s" "^baseline +64" "^$batch_be +64" "latency" "p99" "^total "; do
        grep -q -E -e "$want" "$tmp/bench.txt" || fail "bench table lacks '$want'"
    done
    # piped: no live line (no carriage return), but plain progress lines
    ! grep -q "$(printf '\r')" "$tmp/bench.txt" || fail "bench drew progress into a pipe"
    grep -q -E '^volley bench: \[1/[0-9]+\] run 1/1 +baseline' "$tmp/bench.txt" ||
        fail "bench piped printed no progress line: $(cat "$tmp/bench.txt")"
else
    fail "volley bench table run did not exit 0: $(cat "$tmp/bench.txt")"
fi

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
exit 0
