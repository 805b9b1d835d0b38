#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/quic_like_server.c in a network namespace of its own, with two
# more IPv4 and IPv6 addresses (on a dummy interface where there is one). A client bound
# to the first address sends to each address: every reply must come from
# the address it was sent to (the server answers from the received local
# address), with the ECN codepoint the request had, also over ::1. A burst
# sent as one GSO buffer must come back whole, answered with fewer
# descriptors than datagrams when the server has GRO (the burst arrives in
# one receive) and with GSO sends when it has GSO too; a datagram from a
# port nobody listens on must show up as an ICMP report.
#
# Needs root (to make the namespace): skips otherwise. All traffic stays in
# the namespace.
# $1: the volley binary; the examples sit next to it.
set -u
T=30 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
bin="$(dirname "$VOLLEY")/example_quic_like_server"
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
need python3
need ip
need unshare

if [ -z "${VOLLEY_TEST_IN_NETNS-}" ]; then
    if ! unshare -n true 2>/dev/null; then
        echo "skip: cannot make a network namespace (not root?)"
        exit 77
    fi
    VOLLEY_TEST_IN_NETNS=1 timeout 60 unshare -n sh "$0" "$VOLLEY"
    exit $?
fi

# From here on, inside the new namespace: two more addresses of each family,
# on a dummy interface, or on lo where this kernel has no dummy driver (the
# replies' source addresses are chosen the same way on either).
ip link set lo up || exit 1
if ip link add vly0 type dummy 2>/dev/null && ip link set vly0 up; then
    dev=vly0 len4=24 len6=64
else
    dev=lo len4=32 len6=128
fi
ip addr add 10.9.0.1/$len4 dev $dev && ip addr add 10.9.0.2/$len4 dev $dev || exit 1
v6=0
if [ -e /proc/net/if_inet6 ]; then
    ip -6 addr add fd00:9::1/$len6 dev $dev nodad &&
        ip -6 addr add fd00:9::2/$len6 dev $dev nodad && v6=1
fi

run_bg timeout $T "$bin" "[::]:4433" 20 >"$tmp/out" 2>"$tmp/err"
spid=$bpid
if ! wait_for "$tmp/out" '^features'; then
    echo "FAIL: server did not start: $(cat "$tmp/err")"
    exit 1
fi
timeout 20 python3 - 4433 "$v6" "$tmp/out" <<'PY'
import socket, struct, sys, time
port, v6, out = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]

def check_family(fam, client_addr, targets):
    """Send to every target with every ECN codepoint; each reply must come
    from the target, with the same codepoint."""
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((client_addr, 0))
    s.settimeout(5)
    if fam == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
        tos = (socket.IPPROTO_IP, socket.IP_TOS)
    else:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
        tos = (socket.IPPROTO_IPV6, socket.IPV6_TCLASS)
    for t in targets:
        for ecn in (0, 1, 2, 3):
            s.setsockopt(tos[0], tos[1], ecn)
            msg = ("%s ecn %d" % (t, ecn)).encode()
            s.sendto(msg, (t, port))
            try:
                data, anc, _, src = s.recvmsg(2048, 64)
            except socket.timeout:
                sys.exit("no reply from %s" % t)
            if data != msg:
                sys.exit("%s: reply %r, want %r" % (t, data, msg))
            if src[0] != t or src[1] != port:
                sys.exit("sent to %s, the reply came from %s" % (t, src[:2]))
            got = [d[0] & 3 for lvl, typ, d in anc if typ in (socket.IP_TOS, socket.IPV6_TCLASS)]
            if got != [ecn]:
                sys.exit("%s: sent ECN %d, reply had %r" % (t, ecn, got))
    s.close()

check_family(socket.AF_INET, "10.9.0.1", ["10.9.0.1", "10.9.0.2"])
check_family(socket.AF_INET6, "::1", ["::1"])
if v6:
    check_family(socket.AF_INET6, "fd00:9::1", ["fd00:9::1", "fd00:9::2"])

# A burst of eight 200-byte datagrams in one GSO buffer: the server receives
# them in one batch (GRO) and answers with one GSO descriptor.
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.9.0.1", 0))
s.settimeout(5)
burst = [bytes([i]) * 200 for i in range(8)]
UDP_SEGMENT = 103
try:
    s.sendmsg([b"".join(burst)], [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("H", 200))],
              0, ("10.9.0.2", port))
except OSError:
    for m in burst:  # no GSO in this kernel: the same datagrams one by one
        s.sendto(m, ("10.9.0.2", port))
got = []
for _ in burst:
    try:
        data, src = s.recvfrom(2048)
    except socket.timeout:
        sys.exit("burst: %d of %d replies" % (len(got), len(burst)))
    if src != ("10.9.0.2", port):
        sys.exit("burst reply from %s" % (src,))
    got.append(data)
if got != burst:
    sys.exit("the burst came back different or out of order")

# From a port nobody listens on (a raw socket writes the UDP header): the
# reply draws an ICMP port unreachable, which the server must report.
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.bind(("10.9.0.1", 0))
dead = probe.getsockname()[1]
probe.close()
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
raw.bind(("10.9.0.1", 0))
payload = b"nobody home"
raw.sendto(struct.pack("!HHHH", dead, port, 8 + len(payload), 0) + payload,
           ("10.9.0.2", 0))
want = "about 10.9.0.1:%d" % dead
for _ in range(100):  # up to 5 s for the report to be printed
    if want in open(out).read():
        break
    time.sleep(0.05)
else:
    sys.exit("no ICMP report %r in the server's output" % want)
PY
rc=$?
stop "$spid" # SIGTERM: the server prints its summary and exits 0
reap "$spid"
src=$?
out=$(cat "$tmp/out" "$tmp/err")
[ $rc -eq 0 ] || fail "client ($rc): $out"
[ $src -eq 0 ] || fail "server exited $src: $out"
summary=$(grep '^echoed' "$tmp/out")
case "$summary" in
*" 0 icmp reports"* | "") fail "summary: $summary" ;;
esac
features=$(grep '^features' "$tmp/out")
case "$features" in
*" gro"*)
    # "echoed N datagrams in M descriptors": the burst took one.
    dgrams=$(echo "$summary" | sed -n 's/^echoed \([0-9]*\) datagrams.*/\1/p')
    descs=$(echo "$summary" | sed -n 's/.* in \([0-9]*\) descriptors.*/\1/p')
    if [ -z "$dgrams" ] || [ -z "$descs" ] || [ "$descs" -ge "$dgrams" ]; then
        fail "GRO on, but no GSO descriptor: $summary"
    fi
    ;;
esac
case "$features" in
*" gso"*" gro"*)
    case "$summary" in
    *" 0 gso sends"*) fail "GSO and GRO on, but no GSO send: $summary" ;;
    esac
    ;;
esac
[ $failures -eq 0 ] || exit 1
echo "ok: replies from each address they were sent to, ECN echoed, a GSO burst, an ICMP report ($summary)"
