#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/quic: the QUIC echo client against the server (ngtcp2 + GnuTLS)
# on loopback, over 127.0.0.1 and ::1, with 1 and with 50 connections, on
# volley's datapath (the server on [::]:0, answering from the address each
# packet reached) and on the plain one (sendmsg/recvmsg, one packet per
# call). Every byte echoed is checked by the client (it exits 0 only when
# every connection got all its bytes back). Each run prints how many
# packets each side received marked ECT(0) after its connection's
# handshake: on volley's datapath both counts must be above zero. Then the
# same run with ECN reporting broken (VOLLEY_DISABLE=ecn on the client:
# volley reports no codepoint) must make the client's count zero and the
# check fail, so that the check is known to be able to fail. The same for
# the local address of the replies (pktinfo), below.
#
# The certificate is made here, for this run, with certtool, and removed
# with the scratch directory. Skips (77) when the examples were not built
# (no ngtcp2 or GnuTLS development packages) or certtool is missing.
# $1: the volley binary; the examples sit next to it.
set -u
T=120 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
srv="$(dirname "$VOLLEY")/example_quic_server"
cli="$(dirname "$VOLLEY")/example_quic_client"
if [ ! -x "$srv" ] || [ ! -x "$cli" ]; then
    echo "skip: examples/quic not built (needs libngtcp2-dev, libngtcp2-crypto-gnutls-dev, libgnutls28-dev)"
    exit 77
fi
need certtool "package gnutls-bin"

cat >"$tmp/cert.cfg" <<'EOF'
cn = "localhost"
dns_name = "localhost"
ip_address = "127.0.0.1"
ip_address = "::1"
expiration_days = 1
tls_www_server
signing_key
EOF
if ! certtool --generate-privkey --key-type=ecdsa --outfile "$tmp/key.pem" \
    >"$tmp/certtool.log" 2>&1 ||
    ! certtool --generate-self-signed --load-privkey "$tmp/key.pem" \
        --template "$tmp/cert.cfg" --outfile "$tmp/cert.pem" >>"$tmp/certtool.log" 2>&1; then
    echo "FAIL: certtool: $(cat "$tmp/certtool.log")"
    exit 1
fi

# field FILE PREFIX NAME: the number after NAME on FILE's line starting PREFIX.
field() {
    sed -n "s/^$2.* $3 \([0-9][0-9]*\).*/\1/p" "$1" | head -n 1
}

# ect_ok NAME: both sides of run NAME received ECT(0) packets after the
# handshake.
ect_ok() {
    c=$(field "$tmp/$1.cli" "client: datapath" ect0_rx)
    s=$(field "$tmp/$1.srv" "server: datapath" ect0_rx)
    [ "${c:-0}" -gt 0 ] && [ "${s:-0}" -gt 0 ]
}

# quic NAME DATAPATH FAMILY CONNS BYTES [CENV [SENV [HOST [CBIND [SECONDS]]]]]:
# one run of the client (with CENV, VAR=VALUE, in its environment; bound
# to CBIND; giving up after SECONDS) against a server of its own (SENV in
# its environment) at HOST (by default the loopback address of FAMILY);
# output in $tmp/NAME.cli and $tmp/NAME.srv. Returns the client's status.
quic() {
    name=$1
    dp=$2
    fam=$3
    conns=$4
    bytes=$5
    cenv=${6:-QX_NONE=1}
    senv=${7:-QX_NONE=1}
    host=127.0.0.1
    [ "$fam" = 6 ] && host="[::1]"
    host=${8:-$host}
    cbind=${9:-}
    secs=${10:-90}
    if [ "$dp" = plain ]; then
        bind="$host:0"
        flag=--plain
    else
        bind="[::]:0"
        flag=--volley
    fi
    run_bg timeout $T env "$senv" "$srv" $flag --idle 60 "$tmp/cert.pem" "$tmp/key.pem" "$bind" \
        >"$tmp/$name.srv" 2>"$tmp/$name.srv.err"
    spid=$bpid
    i=0 # up to 30 s: CI machines are busy
    while [ $i -lt 600 ] && ! grep -q '^listening' "$tmp/$name.srv"; do
        sleep 0.05
        i=$((i + 1))
    done
    if ! grep -q '^listening' "$tmp/$name.srv"; then
        fail "$name: the server did not start: $(cat "$tmp/$name.srv.err")"
        stop "$spid"
        reap "$spid"
        return 1
    fi
    port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$tmp/$name.srv")
    timeout $T env "$cenv" "$cli" $flag ${cbind:+--bind "$cbind"} --conns "$conns" \
        --bytes "$bytes" --timeout "$secs" "$host:$port" >"$tmp/$name.cli" \
        2>"$tmp/$name.cli.err"
    crc=$?
    stop "$spid"
    reap "$spid"
    src=$?
    [ $src -eq 0 ] || fail "$name: the server exited $src: $(cat "$tmp/$name.srv.err")"
    echo "$name: $(grep '^client: datapath .* conns' "$tmp/$name.cli")"
    echo "$name: ect0_rx after the handshake: client $(field "$tmp/$name.cli" \
        "client: datapath" ect0_rx), server $(field "$tmp/$name.srv" \
        "server: datapath" ect0_rx)"
    return $crc
}

for fam in 4 6; do
    for dp in volley plain; do
        for conns in 1 50; do
            if [ "$conns" = 1 ]; then
                bytes=4000000
            else
                bytes=200000
            fi
            name="v$fam-$dp-$conns"
            begin "$name: $conns connection(s) of $bytes bytes each"
            if ! quic "$name" "$dp" "$fam" "$conns" "$bytes"; then
                fail "$name: client: $(cat "$tmp/$name.cli" "$tmp/$name.cli.err")"
                continue
            fi
            grep -q " ok $conns failed 0 " "$tmp/$name.cli" ||
                fail "$name: not every connection got its bytes back"
            if [ "$dp" = volley ]; then
                ect_ok "$name" || fail "$name: no ECT(0) packets received after the handshake"
            fi
        done
    done
done

# GSO and GRO were used where the server's socket has them.
if grep -q '^features.* gso' "$tmp/v4-volley-1.srv"; then
    n=$(field "$tmp/v4-volley-1.cli" "client: datapath" gso_sends)
    [ "${n:-0}" -gt 0 ] || fail "the client made no GSO send"
fi
if grep -q '^features.* gro' "$tmp/v4-volley-1.srv"; then
    n=$(field "$tmp/v4-volley-1.srv" "server: datapath" gro_buffers)
    [ "${n:-0}" -gt 0 ] || fail "the server split no GRO buffer"
fi

# The check can fail: with ECN reporting broken on the client, its count
# is zero, and ect_ok says so.
begin "v4-volley-noecn: VOLLEY_DISABLE=ecn on the client"
if quic v4-volley-noecn volley 4 1 1000000 VOLLEY_DISABLE=ecn; then
    c=$(field "$tmp/v4-volley-noecn.cli" "client: datapath" ect0_rx)
    [ "${c:-x}" = 0 ] || fail "ECN reporting off, yet the client counted ${c:-no} ECT(0) packets"
    if ect_ok v4-volley-noecn; then
        fail "the ECN check passed with ECN reporting broken"
    fi
else
    fail "v4-volley-noecn: client: $(cat "$tmp/v4-volley-noecn.cli.err")"
fi
# The local address per packet: a client on 127.0.0.1 reaches the server
# (on [::]:0) at 127.0.0.2. The replies must come from 127.0.0.2, the
# address the client reached (pktinfo): from any other the client drops
# them. Without pktinfo on the server (VOLLEY_DISABLE=pktinfo) the kernel
# answers from 127.0.0.1 and no connection completes: the check can fail.
begin "v4-volley-pktinfo: replies from the address the client reached"
if quic v4-volley-pktinfo volley 4 5 100000 "" "" 127.0.0.2 127.0.0.1:0; then
    grep -q " ok 5 failed 0 " "$tmp/v4-volley-pktinfo.cli" ||
        fail "v4-volley-pktinfo: not every connection got its bytes back"
elif grep -q '^features.* pktinfo' "$tmp/v4-volley-pktinfo.srv"; then
    fail "v4-volley-pktinfo: client: $(cat "$tmp/v4-volley-pktinfo.cli.err")"
fi
begin "v4-volley-nopktinfo: VOLLEY_DISABLE=pktinfo on the server"
if quic v4-volley-nopktinfo volley 4 5 100000 "" VOLLEY_DISABLE=pktinfo 127.0.0.2 \
    127.0.0.1:0 4; then
    fail "without pktinfo, yet the client heard the server from the address it reached"
fi
cases_done
