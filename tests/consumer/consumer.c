/* SPDX-License-Identifier: MIT */
/* Built against an installed volley (tests/test_install.sh): opens a socket
 * on 127.0.0.1, sends a datagram to itself, receives it, prints OK. With
 * CONSUMER_VERSION defined (the version the CMake package or pkg-config
 * reported), it must equal the header's. */
#include <volley.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what, int r)
{
    fprintf(stderr, "consumer: %s: %s\n", what, volley_strerror(r));
    return 1;
}

int main(void)
{
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", VOLLEY_VERSION_MAJOR,
             VOLLEY_VERSION_MINOR, VOLLEY_VERSION_PATCH);
    if (strcmp(version, VOLLEY_VERSION_STRING) != 0 ||
        strcmp(version, volley_version()) != 0) {
        fprintf(stderr, "consumer: header says %s (%s), library says %s\n", version,
                VOLLEY_VERSION_STRING, volley_version());
        return 1;
    }
#ifdef CONSUMER_VERSION
    if (strcmp(version, CONSUMER_VERSION) != 0) {
        fprintf(stderr, "consumer: header says %s, package says %s\n", version,
                CONSUMER_VERSION);
        return 1;
    }
#endif
    volley_sock *s;
    struct volley_dgram d = {.data = "hello", .len = 5};
    int r = volley_open(&s, "127.0.0.1:0", NULL);
    if (r < 0)
        return fail("open", r);
    if ((r = volley_local_addr(s, &d.peer)) < 0 || (r = volley_send(s, &d, 1)) != 1)
        return fail("send to itself", r);
    struct volley_dgram in;
    for (int i = 0; i < 50 && (r = volley_recv_wait(s, &in, 1, 100)) == 0; i++)
        ; /* bounded: 50 waits of at most 100 ms */
    if (r != 1)
        return fail("receive", r);
    if (in.len != 5 || memcmp(in.data, "hello", 5) != 0) {
        fprintf(stderr, "consumer: received something else\n");
        return 1;
    }
    printf("OK volley %s, backend %s\n", version, volley_backend_name(s));
    volley_close(s);
    return 0;
}
