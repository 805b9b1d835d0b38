#!/bin/sh
# SPDX-License-Identifier: MIT
# volley tcp-echo, with its default options, against hostile peers, on
# both loop backends (uring and epoll):
#   - 200 peers send and never read what comes back, and 200 more dribble
#     one byte at a time, while a well-behaved client sends 200 requests
#     and must get every byte of each echoed (a stall fails it after 20 s);
#   - the server's resident memory stays under what volley(1) promises for
#     tcp-echo: the loop's two budgets (16 MiB to receive, 16 MiB to send)
#     and the program itself, 48 MiB in all (not checked under the
#     sanitizers, whose own memory it would measure);
#   - stopped while those connections are open (it closes them first, so
#     they wait in TIME_WAIT on its port), a new tcp-echo binds the same
#     port at once.
# A uring server that cannot start because io_uring is refused here skips
# that backend; without `volley tcp-echo` the whole test is skipped.
#
# Usage: sh tests/test_tcp_hostile.sh /path/to/volley
# Exit status: 0 pass, 1 fail, 77 skip (every case skipped).

T=90 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
need timeout
need python3 "the peers are a Python program"
need pgrep

if ! timeout $T "$VOLLEY" tcp-echo --help >/dev/null 2>&1; then
    echo "skip: this volley has no tcp-echo"
    exit 77
fi

rss_max_kib=$((48 * 1024))
[ -n "${VOLLEY_TEST_SANITIZED:-}" ] && rss_max_kib=0

for backend in uring epoll; do
    start_echo "hostile-$backend" "$backend" --duration 120
    rc=$?
    if [ $rc -eq 2 ]; then
        skip "$backend: io_uring is not available here"
        continue
    fi
    [ $rc -eq 0 ] || continue
    begin "$backend: 200 non-readers and 200 dribblers beside a well-behaved client"
    pid=$(pgrep -P "$vpid" | head -n 1)
    [ -n "$pid" ] || pid=$vpid
    timeout $T python3 - "$port" "$pid" "$rss_max_kib" <<'PY' || fail "$backend: the peers' checks"
import os, random, signal, socket, sys, threading, time

port, pid, rss_max = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
addr = ("127.0.0.1", port)

def connect(rcvbuf=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(20)
    s.connect(addr)
    s.setblocking(False)
    return s

def rss_kib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

# Send and never read: a small receive buffer keeps what comes back (and
# so the kernel's memory) small; each sends 1 MiB at most.
noread = [connect(rcvbuf=4096) for _ in range(200)]
dribble = [connect() for _ in range(200)]
sent = [0] * len(noread)
chunk = bytes(random.getrandbits(8) for _ in range(16384))

result = {"rounds": 0, "error": None}

def good():
    try:
        s = socket.create_connection(addr, timeout=20)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rng = random.Random(7)
        for r in range(200):
            msg = bytes(rng.getrandbits(8) for _ in range(1000))
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                part = s.recv(len(msg) - len(got))
                if not part:
                    raise RuntimeError("EOF after %d bytes of round %d" % (len(got), r))
                got += part
            if got != msg:
                raise RuntimeError("round %d: the echo differs" % r)
            result["rounds"] = r + 1
        s.close()
    except Exception as e:
        result["error"] = "%s: %s" % (type(e).__name__, e)

def attack_step():
    global rss_most
    for i, s in enumerate(noread):
        if sent[i] < (1 << 20):
            try:
                sent[i] += s.send(chunk)
            except (BlockingIOError, InterruptedError):
                pass
    for s in dribble:
        try:
            s.send(b"x")
            s.recv(4096)
        except (BlockingIOError, InterruptedError):
            pass
    rss_most = max(rss_most, rss_kib())
    time.sleep(0.01)

# The attack first, until the server holds all it will, then the
# well-behaved client beside it.
rss_most = 0
start = time.monotonic()
while time.monotonic() < start + 3:
    attack_step()
t = threading.Thread(target=good)
t.start()
end = time.monotonic() + 60
while t.is_alive() and time.monotonic() < end:
    attack_step()
t.join(timeout=30)
print("  the well-behaved client: %d of 200 round trips; the non-readers sent "
      "%d MiB; the server's resident memory at most %d KiB"
      % (result["rounds"], sum(sent) >> 20, rss_most))
ok = result["rounds"] == 200 and not result["error"]
if not ok:
    print("FAIL: the well-behaved client: %s" % (result["error"] or "stalled"))
if rss_max and rss_most > rss_max:
    print("FAIL: resident memory %d KiB, over %d KiB" % (rss_most, rss_max))
    ok = False
# Stop the server with every connection open: it closes them first.
os.kill(pid, signal.SIGTERM)
for _ in range(400):
    if not os.path.exists("/proc/%d" % pid):
        break
    time.sleep(0.05)
sys.exit(0 if ok else 1)
PY
    reap "$vpid"
    rc=$?
    [ $rc -eq 0 ] || fail "$backend: tcp-echo exited $rc: $(tail -n 3 "$tmp/hostile-$backend.err")"
    left=$(ss -tan "( sport = :$port )" 2>/dev/null | tail -n +2 | wc -l)
    # A restarted server binds its port at once.
    if ! timeout $T "$VOLLEY" tcp-echo "127.0.0.1:$port" --backend "$backend" \
        --duration 0.2 >"$tmp/restart.out" 2>"$tmp/restart.err"; then
        fail "$backend: restart on port $port ($left sockets left on it): $(cat "$tmp/restart.err")"
    else
        echo "  restarted on port $port beside $left sockets of its last run"
    fi
done
cases_done
