# shellcheck shell=sh
# SPDX-License-Identifier: MIT
# What the shell tests share, sourced by each as
#   T=SECONDS   # the longest any one command may take
#   . "$(dirname "$0")/lib.sh"
# with the volley binary as the script's $1. It sets VOLLEY, a scratch
# directory $tmp and the failure count, and on exit kills the background
# processes started with run_bg and removes $tmp.

: "${T:?set T before sourcing lib.sh}"
VOLLEY=${1:?usage: sh ${0##*/} /path/to/volley}
failures=0

# have CMD: CMD is installed.
have() {
    command -v "$1" >/dev/null 2>&1
}

# need CMD [WHY]: skips the whole test (exit status 77) without CMD.
need() {
    have "$1" && return 0
    echo "skip: $1 not found${2:+ ($2)}"
    exit 77
}

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# For tests made of cases: begin WHAT says a case runs, skip WHY that one
# cannot run here; cases_done prints the counts and exits 1 on any failure,
# 77 when no case ran, else 0.
ran=0
skipped=0
begin() {
    echo "case: $*"
    ran=$((ran + 1))
}
skip() {
    echo "skip: $*"
    skipped=$((skipped + 1))
}
cases_done() {
    echo "${0##*/}: $ran case(s) ran, $skipped skipped, $failures failure(s)"
    [ "$failures" -eq 0 ] || exit 1
    [ "$ran" -gt 0 ] || exit 77
    exit 0
}

tmp=$(mktemp -d) || exit 1
bg="" # background processes started and not reaped yet

# run_bg CMD...: starts CMD in the background; sets bpid.
run_bg() {
    "$@" &
    bpid=$!
    bg="$bg $bpid"
}

# stop PID: asks a program started by run_bg as `timeout SECONDS CMD...`
# (PID is timeout's) to end, with SIGTERM sent to CMD itself. Sent to
# timeout, the signal would be passed on and followed by a SIGCONT, and a
# SIGCONT cancels the stop a sanitizer's leak check sends its own process
# at exit: that check then waits for it forever.
stop() {
    pkill -TERM -P "$1" 2>/dev/null || kill "$1" 2>/dev/null
}

# reap PID: waits for it (its status is wait's) and forgets it, so the exit
# trap never signals a process id that may have been reused.
reap() {
    wait "$1"
    reaped=$?
    bg=$(echo " $bg " | sed "s/ $1 / /")
    return $reaped
}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
    for p in $bg; do
        kill "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# example_done NAME PID RC SUMMARY FILE...: an example program (NAME,
# running as PID) was driven by a client that exited RC. Waits for the
# program and counts a failure for a client that failed, a program that
# exited non-zero, or output (the FILEs) without SUMMARY in it. Returns
# true when all three were right.
example_done() {
    name=$1
    pid=$2
    rc=$3
    want=$4
    shift 4
    reap "$pid"
    erc=$?
    out=$(cat "$@")
    before=$failures
    [ "$rc" -eq 0 ] || fail "$name's client ($rc)"
    [ $erc -eq 0 ] || fail "$name exited $erc: $out"
    case "$out" in
    *"$want"*) ;;
    *) fail "$name: unexpected summary: $out" ;;
    esac
    [ $failures -eq "$before" ]
}

# check_json FILE CODE [ARG...]: runs Python CODE (asserts) with j, the
# parsed FILE, and the ARGs as the list a.
check_json() {
    f=$1
    code=$2
    shift 2
    timeout "$T" python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
a = sys.argv[3:]
exec(sys.argv[2])' "$f" "$code" "$@"
}

# check_end FILE CODE [ARG...]: check_json with j the summary ("end") of
# the volley --json document in FILE.
check_end() {
    f=$1
    code=$2
    shift 2
    check_json "$f" 'j = j["end"]
'"$code" "$@"
}

# free_port: a port on 127.0.0.1 that nobody had bound a moment ago, for
# UDP and TCP alike. It is picked below the kernel's ephemeral range
# (32768 and up by default): tests that open thousands of TCP connections
# at once use that range up, and a port taken from it could be a live
# connection's own by the time a server binds it.
free_port() {
    timeout "$T" python3 -c '
import random, socket
for _ in range(1000):
    port = random.randrange(20000, 32000)
    try:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            s.bind(("127.0.0.1", port))
            s.close()
    except OSError:
        continue
    print(port)
    break
else:
    raise SystemExit("no free port")'
}

# start_volley CMD NAME ARG...: runs `volley CMD 127.0.0.1:PORT ARG...` (a
# server: recv or echo) in the background once it has bound a free port (it
# says "listening" on stderr); output in $tmp/NAME.out and .err; sets port
# and vpid.
start_volley() {
    cmd=$1
    name=$2
    shift 2
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        run_bg timeout "$T" "$VOLLEY" "$cmd" "127.0.0.1:$port" "$@" \
            >"$tmp/$name.out" 2>"$tmp/$name.err"
        vpid=$bpid
        i=0
        while [ $i -lt 100 ] && kill -0 "$vpid" 2>/dev/null; do
            grep -q listening "$tmp/$name.err" 2>/dev/null && return 0
            sleep 0.05
            i=$((i + 1))
        done
        # Lost the race for the port, or never came up: try another.
        stop "$vpid"
        reap "$vpid" 2>/dev/null
    done
    fail "volley $cmd did not start: $(cat "$tmp/$name.err")"
    return 1
}

# wait_for FILE TEXT: waits until FILE holds TEXT (a server said it is
# ready); 1 when it does not within 5 seconds.
wait_for() {
    i=0
    while [ $i -lt 100 ]; do
        grep -q -e "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

# start_echo NAME BACKEND ARG...: runs `volley tcp-echo 127.0.0.1:0
# --backend BACKEND ARG...` in the background and waits for its
# "listening on ADDR" line; sets port and vpid. Returns 2 when the backend
# is not available here, 1 when the server did not start.
start_echo() {
    name=$1
    backend=$2
    shift 2
    run_bg timeout "$T" "$VOLLEY" tcp-echo 127.0.0.1:0 --backend "$backend" "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err"
    vpid=$bpid
    i=0
    while [ $i -lt 200 ]; do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' \
            "$tmp/$name.err" 2>/dev/null | head -n 1)
        [ -n "$port" ] && return 0
        kill -0 "$vpid" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    stop "$vpid"
    reap "$vpid" 2>/dev/null
    if [ "$backend" = uring ] &&
        grep -qi 'not supported\|not available\|ENOTSUP' "$tmp/$name.err"; then
        return 2
    fi
    fail "volley tcp-echo --backend $backend did not start: $(cat "$tmp/$name.err")"
    return 1
}

# udp_echoes PORT: a plain UDP client sends 20 datagrams of 0 to 950 bytes
# to 127.0.0.1:PORT, one at a time, and each must come back byte for byte
# (a server still starting is given 20 tries of 0.5 s per datagram).
udp_echoes() {
    timeout "$T" python3 - "$1" <<'PY'
import socket, sys
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
}
