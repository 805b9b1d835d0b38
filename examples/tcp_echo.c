/* SPDX-License-Identifier: MIT */
/* A TCP echo server in a page: one volley loop serves every connection.
 * Received bytes are echoed from where they lie (peek, write, consume);
 * a connection is closed once its peer has finished and everything it
 * sent went back. Stops after COUNT connections have closed (if given) or
 * 30 idle seconds.
 *
 *   example_tcp_echo 127.0.0.1:7000 [count]
 */
#include <volley.h>

#include <stdio.h>
#include <stdlib.h>

/* Per connection: has the peer finished sending? */
struct client {
    int peer_done;
};

/* Queue back everything buffered on c, as far as its send queue takes it. */
static void echo(volley_conn *c)
{
    struct iovec iov[16];
    int n;

    while ((n = volley_conn_peek(c, iov, 16)) > 0) {
        size_t done = 0;
        int i;

        for (i = 0; i < n; i++) {
            /* volley_conn_write copies: the spans can be consumed after. */
            if (volley_conn_write(c, iov[i].iov_base, iov[i].iov_len) < 0)
                break; /* -EAGAIN: full; WRITABLE comes when it drains */
            done += iov[i].iov_len;
        }
        volley_conn_consume(c, done); /* hands the buffers back to the loop */
        if (i < n || n < 16)
            return;
    }
}

static void serve(volley_conn *c, struct client *cl)
{
    echo(c);
    /* Close once the peer is done and nothing is left to echo: what is
     * queued still goes out, then FIN, then CLOSED. */
    if (cl->peer_done && volley_conn_buffered(c) == 0)
        volley_conn_close(c);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ADDR [COUNT]\n", argv[0]);
        return 2;
    }
    long limit = argc > 2 ? atol(argv[2]) : -1, closed = 0;
    volley_loop *l;
    volley_conn *listener;
    int r = volley_loop_open(&l, NULL); /* uring where it works, else epoll */
    if (r == 0)
        r = volley_listen(l, &listener, argv[1], NULL, NULL);
    if (r < 0) {
        fprintf(stderr, "listen %s: %s\n", argv[1], volley_strerror(r));
        volley_loop_close(l, 0);
        return 1;
    }
    struct volley_event ev[64];
    while (limit < 0 || closed < limit) {
        int n = volley_loop_poll(l, ev, 64, 30000);
        if (n <= 0) {
            if (n < 0)
                fprintf(stderr, "poll: %s\n", volley_strerror(n));
            break; /* or idle */
        }
        for (int i = 0; i < n; i++) {
            volley_conn *c = ev[i].conn;
            struct client *cl = ev[i].user;
            switch (ev[i].type) {
            case VOLLEY_EV_ACCEPTED:
                cl = calloc(1, sizeof(*cl));
                if (!cl) {
                    volley_conn_abort(c);
                    break;
                }
                volley_conn_set_user(c, cl); /* comes back as ev.user */
                break;
            case VOLLEY_EV_READABLE: /* bytes arrived */
            case VOLLEY_EV_WRITABLE: /* room again after -EAGAIN */
                serve(c, cl);
                break;
            case VOLLEY_EV_EOF: /* the peer shut its sending side */
                cl->peer_done = 1;
                serve(c, cl);
                break;
            case VOLLEY_EV_CLOSED: /* always the last event: free our state */
                if (c != listener) {
                    free(cl);
                    closed++;
                }
                break;
            default: /* SENT, DRAINED, TIMEOUT: nothing here asks for them */
                break;
            }
        }
    }
    printf("served %ld connections\n", closed);
    volley_loop_close(l, 1000); /* up to a second to flush, then abort */
    return 0;
}
