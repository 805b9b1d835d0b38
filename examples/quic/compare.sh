#!/bin/sh
# SPDX-License-Identifier: MIT
# Compare volley's datapath with the plain one under the QUIC example, on
# loopback, in one run: REPEATS times each (alternating, so that both see
# the same machine), three workloads:
#   bulk   1 connection moving BULK bytes each way (echoed)
#   many   50 connections moving 1 MB each
#   hs     HS connections doing only the handshake (handshakes per second)
# and prints the median of each, and the ratio volley / plain, with the
# server's CPU time (user + system, from its own getrusage) per byte it
# echoed (bulk, many) or per handshake (hs), and that ratio too.
#
#   sh examples/quic/compare.sh BUILD_DIR [REPEATS] [BULK] [HS]
#
# BUILD_DIR holds example_quic_server and example_quic_client. The
# certificate is made for the run (certtool) and removed after it.
set -u
build=${1:?usage: compare.sh BUILD_DIR [REPEATS] [BULK] [HS]}
reps=${2:-5}
bulk=${3:-100000000}
hs=${4:-500}
srv=$build/example_quic_server
cli=$build/example_quic_client
if [ ! -x "$srv" ] || [ ! -x "$cli" ]; then
    echo "no $srv or $cli" >&2
    exit 1
fi
tmp=$(mktemp -d) || exit 1
spid=
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$tmp"' EXIT
printf 'cn = "localhost"\nexpiration_days = 1\ntls_www_server\nsigning_key\n' >"$tmp/cfg"
if ! certtool --generate-privkey --key-type=ecdsa --outfile "$tmp/key.pem" \
    >/dev/null 2>&1 ||
    ! certtool --generate-self-signed --load-privkey "$tmp/key.pem" --template "$tmp/cfg" \
        --outfile "$tmp/cert.pem" >/dev/null 2>&1; then
    echo "certtool failed" >&2
    exit 1
fi

# one DATAPATH CONNS BYTES FIELD: one client run against a fresh server;
# prints FIELD of the client's summary line and the server's CPU
# microseconds (nothing when the run failed).
one() {
    if [ "$1" = plain ]; then bind=127.0.0.1:0; else bind="[::]:0"; fi
    rm -f "$tmp/srv.out" # not the last server's port: the new one may open it late
    timeout 300 "$srv" "--$1" --idle 60 "$tmp/cert.pem" "$tmp/key.pem" "$bind" \
        >"$tmp/srv.out" 2>&1 &
    spid=$!
    i=0
    while [ $i -lt 600 ] && ! grep -q '^listening' "$tmp/srv.out" 2>/dev/null; do
        sleep 0.05
        i=$((i + 1))
    done
    port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$tmp/srv.out")
    if [ -z "$port" ]; then
        echo "no server: $(cat "$tmp/srv.out")" >&2
        kill "$spid" 2>/dev/null
        wait "$spid"
        spid=
        return
    fi
    timeout 300 "$cli" "--$1" --conns "$2" --bytes "$3" --timeout 240 \
        "127.0.0.1:$port" >"$tmp/cli.out" 2>&1
    rc=$?
    kill "$spid" 2>/dev/null
    wait "$spid"
    spid=
    [ $rc -eq 0 ] || {
        echo "run failed: $1 $2 x $3: $(tail -n 3 "$tmp/cli.out")" >&2
        return
    }
    v=$(sed -n "s/^client: datapath .* $4 \([0-9.]*\).*/\1/p" "$tmp/cli.out")
    cpu=$(sed -n 's/^server: cpu_us \([0-9]*\)$/\1/p' "$tmp/srv.out")
    [ -n "$v" ] && [ -n "$cpu" ] && echo "$v $cpu"
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

for w in bulk many hs; do
    : >"$tmp/$w.volley"
    : >"$tmp/$w.plain"
done
r=0
while [ $r -lt "$reps" ]; do
    for dp in volley plain; do
        one $dp 1 "$bulk" mbit_s >>"$tmp/bulk.$dp"
        one $dp 50 1000000 mbit_s >>"$tmp/many.$dp"
        one $dp "$hs" 0 hs_per_s >>"$tmp/hs.$dp"
    done
    r=$((r + 1))
done
# per w: the unit of the figure, what the server's CPU is divided by, and
# the unit of that quotient
for w in bulk many hs; do
    case $w in
    bulk) unit=Mbit/s per=$bulk cpu_unit=ns/byte scale=1000 ;;
    many) unit=Mbit/s per=$((50 * 1000000)) cpu_unit=ns/byte scale=1000 ;;
    hs) unit=handshakes/s per=$hs cpu_unit=us/handshake scale=1 ;;
    esac
    for dp in volley plain; do
        awk -v per="$per" -v k="$scale" '{ print $1 > "/dev/stderr"; print $2 * k / per }' \
            <"$tmp/$w.$dp" 2>"$tmp/$w.$dp.v" >"$tmp/$w.$dp.cpu"
    done
    v=$(median <"$tmp/$w.volley.v")
    p=$(median <"$tmp/$w.plain.v")
    vc=$(median <"$tmp/$w.volley.cpu")
    pc=$(median <"$tmp/$w.plain.cpu")
    echo "$w: volley $(tr '\n' ' ' <"$tmp/$w.volley.v")| plain $(tr '\n' ' ' <"$tmp/$w.plain.v")"
    awk -v w=$w -v v="${v:-0}" -v p="${p:-0}" -v u="$unit" -v vc="${vc:-0}" -v pc="${pc:-0}" \
        -v cu="$cpu_unit" 'BEGIN {
        printf "%s: median volley %.1f %s, plain %.1f %s, ratio %.2f; server CPU volley %.2f %s, plain %.2f %s, ratio %.2f\n",
               w, v, u, p, u, (p > 0 ? v / p : 0), vc, cu, pc, cu, (pc > 0 ? vc / pc : 0) }'
done
