#!/bin/sh
# SPDX-License-Identifier: MIT
# What a user gets from `cmake --install`: the build installed into a scratch
# prefix; the installed tool run from there as it is; and tests/consumer
# (a program outside the tree) built against it and run, four ways: CMake's
# find_package with volley::volley and with volley::volley_static,
# pkg-config, and pkg-config --static. Each must link the library the way
# it says (readelf), see the version the header has, and pass a datagram
# through loopback. A version the package must not
# accept (the next minor, while the major is 0) must be refused. Without
# liburing, the shared library's consumer must still build.
#
# Usage: sh tests/test_install.sh /path/to/build/volley (its build directory
# is installed). Exit status: 0 pass, 1 fail, 77 skip (no cmake, pkg-config,
# cc or readelf; or a sanitizer build, whose library needs the sanitizer
# runtime in every program).
set -u
T=60 # seconds any one command may take
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
need cmake
need pkg-config
need cc
need readelf
if [ -n "${VOLLEY_TEST_SANITIZED-}" ]; then
    echo "skip: a sanitizer build's library links only into sanitizer builds"
    exit 77
fi
build=$(dirname "$VOLLEY")
src=$(cd "$(dirname "$0")/consumer" && pwd)
prefix=$tmp/prefix

if ! timeout $T cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "FAIL: cmake --install $build"
    exit 1
fi

# The installed tool runs as it is from any prefix: with no LD_LIBRARY_PATH,
# it loads the library installed beside it (not one elsewhere on the system,
# nor the build tree's).
tool=$(find "$prefix" -path '*/bin/volley' -type f | head -n 1)
if [ -z "$tool" ]; then
    fail "no bin/volley installed under $prefix"
elif ! out=$(env -u LD_LIBRARY_PATH timeout $T "$tool" probe 2>&1); then
    fail "installed $tool probe: $out"
elif have ldd && ! env -u LD_LIBRARY_PATH ldd "$tool" | grep -q "libvolley\.so.* => $prefix/"; then
    fail "installed $tool does not load the library of $prefix: $(ldd "$tool" | grep volley)"
else
    echo "ok: installed volley probe runs without LD_LIBRARY_PATH"
fi

# links_volley BIN: BIN loads libvolley.so at run time.
links_volley() {
    readelf -d "$1" | grep -q 'NEEDED.*libvolley'
}

# check_run WHAT BIN SHARED [ENV...]: BIN links libvolley dynamically when
# SHARED is 1 (statically when 0), runs with ENV, and says OK.
check_run() {
    what=$1
    bin=$2
    shared=$3
    shift 3
    if [ ! -x "$bin" ]; then
        fail "$what: not built: $(tail -n 20 "$tmp/log")"
        return
    fi
    if links_volley "$bin"; then linked=1; else linked=0; fi
    [ "$linked" = "$shared" ] || fail "$what: loads libvolley.so: $linked, want $shared"
    if out=$(env "$@" timeout $T "$bin" 2>&1) && [ "${out#OK }" != "$out" ]; then
        echo "ok: $what: $out"
    else
        fail "$what: $out"
    fi
}

# cmake_consumer DIR ARG...: configures and builds tests/consumer in DIR.
cmake_consumer() {
    dir=$1
    shift
    timeout $T cmake -S "$src" -B "$dir" -DCMAKE_PREFIX_PATH="$prefix" "$@" \
        >"$tmp/log" 2>&1 && timeout $T cmake --build "$dir" >>"$tmp/log" 2>&1
}

cmake_consumer "$tmp/shared"
check_run "find_package, volley::volley" "$tmp/shared/consumer" 1
cmake_consumer "$tmp/static" -DCONSUMER_STATIC=ON
check_run "find_package, volley::volley_static" "$tmp/static/consumer" 0
if cmake_consumer "$tmp/next" -DCONSUMER_WANT=0.2; then
    fail "find_package(volley 0.2) accepted this build"
elif grep -q 'version' "$tmp/log"; then
    echo "ok: find_package(volley 0.2) refused 0.1"
else
    fail "find_package(volley 0.2) failed, but not on the version: $(cat "$tmp/log")"
fi

# On a machine without liburing-dev (simulated: CMake told to ignore every
# directory that holds liburing), a program that links the shared library
# still configures, builds and runs; one that links the static library of
# an io_uring build is refused, saying what is missing.
no_uring=
for f in /usr/local/lib*/liburing.* /usr/local/lib/*/liburing.* /usr/lib*/liburing.* \
    /usr/lib/*/liburing.* /lib*/liburing.* /lib/*/liburing.*; do
    [ -e "$f" ] && no_uring="$no_uring${no_uring:+;}${f%/*}"
done
cmake_consumer "$tmp/shared-nouring" -DCMAKE_IGNORE_PATH="$no_uring"
check_run "find_package without liburing, volley::volley" "$tmp/shared-nouring/consumer" 1
if readelf -d "$build/libvolley.so" | grep -q 'NEEDED.*liburing'; then
    if cmake_consumer "$tmp/static-nouring" -DCONSUMER_STATIC=ON -DCMAKE_IGNORE_PATH="$no_uring"; then
        fail "find_package without liburing: volley::volley_static linked"
    elif grep -q 'volley_static needs liburing' "$tmp/log"; then
        echo "ok: find_package without liburing: volley::volley_static refused, saying why"
    else
        fail "find_package without liburing, volley::volley_static: $(tail -n 20 "$tmp/log")"
    fi
fi

PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name volley.pc)")
export PKG_CONFIG_PATH
libdir=$(pkg-config --variable=libdir volley)
version=$(pkg-config --modversion volley)
# shellcheck disable=SC2046 # pkg-config's output is words on purpose
timeout $T cc -o "$tmp/pc-shared" "$src/consumer.c" -DCONSUMER_VERSION="\"$version\"" \
    $(pkg-config --cflags --libs volley) >"$tmp/log" 2>&1
check_run "pkg-config" "$tmp/pc-shared" 1 LD_LIBRARY_PATH="$libdir"
# Static: the archive by its file name, with the libraries --static adds
# (Libs.private), which are what the static library needs.
libs=$(pkg-config --static --libs volley | sed 's/-lvolley\b/-l:libvolley.a/')
# shellcheck disable=SC2046,SC2086
timeout $T cc -o "$tmp/pc-static" "$src/consumer.c" -DCONSUMER_VERSION="\"$version\"" \
    $(pkg-config --cflags volley) $libs >"$tmp/log" 2>&1
check_run "pkg-config --static" "$tmp/pc-static" 0

[ $failures -eq 0 ] || exit 1
echo "test_install: all passed"
