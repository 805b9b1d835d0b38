#!/bin/sh
# SPDX-License-Identifier: MIT
# The README's C code is what people copy, so it is compiled and run here:
#   - every ```c block is a whole program, compiled with warnings as errors
#     against this build's library; a ```c fragment block is compiled as
#     the body of a function, beside declarations of the names it uses;
#   - the UDP program echoes 20 datagrams of a plain client byte for byte;
#   - the TCP program echoes 200 connections at once, and a 5 MiB
#     transfer, each byte for byte to the end: every client shuts its side
#     after sending and reads until the server closes.
# $1: the volley binary (the library and README sit where it says);
# VOLLEY_TEST_CC and VOLLEY_TEST_CFLAGS: the compiler and the sanitizer
# flags of this build.
set -u
T=60 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
need python3
top=$(cd "$(dirname "$0")/.." && pwd)
lib=$(cd "$(dirname "$VOLLEY")" && pwd)
cc=${VOLLEY_TEST_CC:-cc}
need "$cc" "the README's programs are compiled"

# The blocks, one file each: $tmp/block-N.c, and $tmp/block-N.kind
# ("c" or "fragment").
awk -v dir="$tmp" '
/^```c( fragment)?$/ { n++; kind = ($0 ~ /fragment/) ? "fragment" : "c";
                       file = dir "/block-" n ".c"; print kind > (dir "/block-" n ".kind");
                       inside = 1; next }
/^```/ && inside     { inside = 0; close(file); next }
inside               { print > file }
END                  { print n + 0 > (dir "/count") }' "$top/README.md"
count=$(cat "$tmp/count")
[ "$count" -ge 3 ] || fail "README.md: $count C blocks, want at least 3"

# compile NAME SRC [-c]: a program from SRC as $tmp/NAME (with -c, an
# object file only); the compiler's messages in $tmp/NAME.cc.
compile() {
    if [ "${3:-}" = -c ]; then
        set -- "$1" "$2" -c
    else
        set -- "$1" "$2" -L"$lib" -lvolley -Wl,-rpath,"$lib"
    fi
    name=$1
    src=$2
    shift 2
    # shellcheck disable=SC2086 # the flags are words on purpose
    timeout $T "$cc" -std=gnu11 -Wall -Wextra -Werror ${VOLLEY_TEST_CFLAGS:-} \
        -I"$top/include" -o "$tmp/$name" "$src" "$@" >"$tmp/$name.cc" 2>&1
}

udp="" tcp=""
n=1
while [ $n -le "$count" ]; do
    src="$tmp/block-$n.c"
    if [ "$(cat "$tmp/block-$n.kind")" = fragment ]; then
        begin "README block $n (a fragment) compiles"
        {
            echo '#include <volley.h>'
            echo 'static char my_udp;'
            echo 'static void handle(struct volley_dgram *d, int n) { (void)d; (void)n; }'
            echo 'void fragment(volley_loop *l, struct volley_event *ev, int i);'
            echo 'void fragment(volley_loop *l, struct volley_event *ev, int i) {'
            echo '    volley_sock *udp; struct volley_dgram d[64]; int n;'
            cat "$src"
            echo '(void)my_udp;'
            echo '}'
        } >"$tmp/frag-$n.c"
        compile "frag-$n.o" "$tmp/frag-$n.c" -c || fail "block $n: $(cat "$tmp/frag-$n.o.cc")"
    else
        begin "README block $n (a program) compiles"
        if ! compile "block-$n" "$src"; then
            fail "block $n: $(cat "$tmp/block-$n.cc")"
        elif grep -q volley_loop_open "$src"; then
            tcp="$tmp/block-$n"
        else
            udp="$tmp/block-$n"
        fi
    fi
    n=$((n + 1))
done

if [ -n "$udp" ]; then
    begin "the README's UDP program echoes datagrams"
    port=$(free_port)
    run_bg timeout $T "$udp" "127.0.0.1:$port"
    upid=$bpid
    udp_echoes "$port" || fail "the README's UDP program"
    stop "$upid"
    reap "$upid"
fi

if [ -n "$tcp" ]; then
    begin "the README's TCP program echoes 200 connections and 5 MiB to the end"
    port=$(free_port)
    run_bg timeout $T "$tcp" "127.0.0.1:$port"
    tpid=$bpid
    timeout $T python3 - "$port" <<'PY' || fail "the README's TCP program"
import random, socket, sys, threading, time
port = int(sys.argv[1])

def connect():
    for _ in range(100):  # the server may still be starting
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=30)
        except ConnectionRefusedError:
            time.sleep(0.05)
    raise SystemExit("the server does not answer")

def exchange(size, seed, errors):
    try:
        payload = random.Random(seed).randbytes(size)
        s = connect()
        def send():
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=send)
        t.start()
        got = bytearray()
        while True:
            part = s.recv(65536)
            if not part:
                break  # the server closed: it echoed everything first
            got += part
        t.join()
        s.close()
        if bytes(got) != payload:
            errors.append("%d bytes: %d came back%s" % (size, len(got),
                          ", different" if len(got) == size else ""))
    except Exception as e:
        errors.append("%d bytes: %s: %s" % (size, type(e).__name__, e))

connect().close()
errors = []
threads = [threading.Thread(target=exchange, args=(5 << 20, 1, errors))]
threads += [threading.Thread(target=exchange, args=(random.randrange(1, 200000), 2 + i, errors))
            for i in range(200)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit("%d of %d connections went wrong, first: %s" % (len(errors), len(threads), errors[0]))
PY
    stop "$tpid"
    reap "$tpid"
fi
cases_done
