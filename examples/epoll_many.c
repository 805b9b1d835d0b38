/* SPDX-License-Identifier: MIT */
/* Many volley sockets in one epoll set: the shape of a server that listens
 * on several ports, or keeps one socket per peer group, in one thread.
 * volley_fd() is the descriptor to watch whatever the backend (the socket,
 * or an eventfd for uring). Each socket echoes what arrives on it.
 *
 * Binds 8 sockets to 127.0.0.1 on ports the kernel picks, prints
 * "ports P1 ... P8", and stops after COUNT datagrams in all or 30 idle
 * seconds.
 *
 *   example_epoll_many [COUNT]
 */
#include <volley.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define NSOCK 8
#define BATCH 64
/* Batches per socket per turn, so that one busy socket cannot starve the others. */
#define ROUNDS 16

/* Echo n received datagrams: they already carry peer, local address and ECN. */
static void echo(volley_sock *s, struct volley_dgram *d, int n)
{
    for (int done = 0, tries = 0; done < n && tries < 100; tries++) {
        int w = volley_send(s, d + done, (unsigned)(n - done));
        if (w < 0)
            w = 1; /* d[done] cannot go: skip it */
        else if (w == 0)
            volley_wait(s, VOLLEY_WAIT_SEND, 100);
        done += w;
    }
}

/* Receive and echo up to ROUNDS batches. Returns how many datagrams, and
 * sets *more when some may still be waiting: volley can hold the rest of a
 * GRO buffer, which does not make the fd readable, so such a socket is
 * served again without waiting for epoll. */
static long serve(volley_sock *s, int *more)
{
    struct volley_dgram d[BATCH];
    long got = 0;
    *more = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int n = volley_recv(s, d, BATCH);
        if (n < 0)
            fprintf(stderr, "recv: %s\n", volley_strerror(n));
        if (n <= 0)
            return got;
        echo(s, d, n);
        got += n;
    }
    *more = 1;
    return got;
}

int main(int argc, char **argv)
{
    long limit = argc > 1 ? atol(argv[1]) : -1;
    volley_sock *s[NSOCK] = {0};
    int more[NSOCK] = {0};
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        return 1;
    }
    printf("ports");
    for (int i = 0; i < NSOCK; i++) {
        struct volley_addr a;
        int r = volley_open(&s[i], "127.0.0.1:0", NULL);
        if (r == 0)
            r = volley_local_addr(s[i], &a);
        if (r < 0) {
            fprintf(stderr, "socket %d: %s\n", i, volley_strerror(r));
            return 1;
        }
        /* The socket's index rides in the event, to find it again. */
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, volley_fd(s[i]), &ev) < 0) {
            perror("epoll_ctl");
            return 1;
        }
        printf(" %u", volley_addr_port(&a));
    }
    printf("\n");
    fflush(stdout); /* the ports are how a client finds us */

    long echoed = 0;
    while (limit < 0 || echoed < limit) {
        int busy = 0;
        for (int i = 0; i < NSOCK; i++)
            busy |= more[i];
        struct epoll_event ev[NSOCK];
        int n = epoll_wait(ep, ev, NSOCK, busy ? 0 : 30000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("epoll_wait");
            break;
        }
        if (n == 0 && !busy)
            break; /* idle */
        for (int k = 0; k < n; k++)
            more[ev[k].data.u32] = 1;
        for (int i = 0; i < NSOCK; i++)
            if (more[i])
                echoed += serve(s[i], &more[i]);
    }
    printf("echoed %ld datagrams on %d sockets\n", echoed, NSOCK);
    for (int i = 0; i < NSOCK; i++)
        volley_close(s[i]);
    close(ep);
    return 0;
}
