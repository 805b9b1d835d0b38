/* SPDX-License-Identifier: MIT */
/* A UDP echo server in a page: every datagram goes back to its sender, with
 * the same ECN codepoint, from the address it arrived on. Batches of up to
 * 64 each way; stops after --count datagrams or 30 idle seconds.
 *
 *   example_echo 127.0.0.1:9000 [count]
 */
#include <volley.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ADDR [COUNT]\n", argv[0]);
        return 2;
    }
    long limit = argc > 2 ? atol(argv[2]) : -1;
    volley_sock *s;
    int r = volley_open(&s, argv[1], NULL);
    if (r < 0) {
        fprintf(stderr, "open %s: %s\n", argv[1], volley_strerror(r));
        return 1;
    }
    struct volley_dgram d[64];
    long echoed = 0;
    while (limit < 0 || echoed < limit) {
        if (volley_wait(s, VOLLEY_WAIT_RECV, 30000) == 0)
            break; /* idle */
        int n = volley_recv(s, d, 64);
        if (n < 0) {
            fprintf(stderr, "recv: %s\n", volley_strerror(n));
            break;
        }
        /* Received descriptors already hold peer, local address and ECN,
         * so sending them back as they are answers each datagram from the
         * address it came in on, with the same marking. */
        for (int done = 0; done < n;) {
            int w = volley_send(s, d + done, (unsigned)(n - done));
            if (w < 0) {
                done++; /* that datagram cannot go: skip it */
                continue;
            }
            if (w == 0)
                volley_wait(s, VOLLEY_WAIT_SEND, 100);
            done += w;
        }
        echoed += n;
    }
    printf("echoed %ld datagrams\n", echoed);
    volley_close(s);
    return 0;
}
