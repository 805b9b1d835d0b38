// SPDX-License-Identifier: MIT
// The installed header as a C++ program sees it: it compiles warning-free
// as C++11 with -Wpedantic, and a socket opened with VOLLEY_OPTS_INIT
// works. Exits 0 (pass), 1 (fail) or 77 (skip: no loopback here).
#include <volley.h>

#include <cstdio>
#include <cstring>

int main()
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    if (o.size != sizeof o || o.backend != VOLLEY_BACKEND_AUTO) {
        std::fprintf(stderr, "FAIL: VOLLEY_OPTS_INIT gave size %u\n", o.size);
        return 1;
    }
    volley_sock *s = nullptr;
    int r = volley_open(&s, "127.0.0.1:0", &o);
    if (r < 0) {
        std::fprintf(stderr, "SKIP: volley_open: %s\n", volley_strerror(r));
        return 77;
    }
    struct volley_addr self;
    r = volley_local_addr(s, &self);
    char byte = 'x';
    struct volley_dgram d;
    std::memset(&d, 0, sizeof d);
    d.data = &byte;
    d.len = 1;
    d.peer = self;
    if (r == 0)
        r = volley_send(s, &d, 1);
    for (int i = 0; r >= 0 && i < 100; i++) {
        if (volley_wait(s, VOLLEY_WAIT_RECV, 10) < 0 || (r = volley_recv(s, &d, 1)) != 0)
            break;
    }
    bool ok = r == 1 && d.len == 1 && *static_cast<char *>(d.data) == 'x';
    volley_close(s); /* d.data pointed into the socket's memory until here */
    if (!ok) {
        std::fprintf(stderr, "FAIL: round trip: %d\n", r);
        return 1;
    }
    std::printf("test_header_cxx: ok\n");
    return 0;
}
