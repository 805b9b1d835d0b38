/* SPDX-License-Identifier: MIT */
/* A volley socket in a libuv loop: a uv_poll_t watches volley_fd() and its
 * callback receives and echoes batches, so volley's batching and offloads
 * sit inside an application that already runs on libuv.
 *
 * A reply the socket cannot take yet is not waited for in the callback,
 * which would stall every other handle on the loop: the batch is kept
 * (received payloads stay valid until the next volley_recv) and the rest
 * goes out when libuv reports the socket writable.
 *
 * Prints "listening ADDR" and stops after COUNT datagrams or 30 idle seconds.
 *
 *   example_libuv_udp 127.0.0.1:0 [COUNT]
 */
#include <volley.h>

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#define BATCH   64
#define ROUNDS  16 /* batches per callback, so other handles get their turn */
#define IDLE_MS 30000

struct server {
    volley_sock *s;
    uv_poll_t poll;
    uv_idle_t more;  /* runs while volley may hold datagrams the fd does not show */
    uv_timer_t idle; /* stops the server after IDLE_MS without traffic */
    struct volley_dgram d[BATCH];
    int n, sent; /* d[sent..n) still to send */
    long echoed, limit;
};

static void stop(struct server *sv)
{
    /* Closed handles leave the loop, and uv_run returns once none is left. */
    uv_close((uv_handle_t *)&sv->poll, NULL);
    uv_close((uv_handle_t *)&sv->more, NULL);
    uv_close((uv_handle_t *)&sv->idle, NULL);
}

/* Send what is left of the batch; 1 when all of it went. */
static int flush(struct server *sv)
{
    while (sv->sent < sv->n) {
        int w = volley_send(sv->s, sv->d + sv->sent, (unsigned)(sv->n - sv->sent));
        if (w == 0)
            return 0;
        sv->sent += w < 0 ? 1 : w; /* a datagram that cannot go is skipped */
    }
    return 1;
}

static int done(const struct server *sv)
{
    return sv->limit >= 0 && sv->echoed >= sv->limit;
}

static void on_io(uv_poll_t *p, int status, int events);
static void on_more(uv_idle_t *h);

/* Finish the kept batch, then receive and echo up to ROUNDS batches. */
static void serve(struct server *sv)
{
    int full = 1;
    for (int round = 0; round < ROUNDS && !done(sv); round++) {
        if (!flush(sv)) { /* the socket is full: wait until it drains */
            uv_idle_stop(&sv->more);
            uv_poll_start(&sv->poll, UV_WRITABLE, on_io);
            return;
        }
        int n = volley_recv(sv->s, sv->d, BATCH);
        if (n < 0)
            fprintf(stderr, "recv: %s\n", volley_strerror(n));
        if (n <= 0) {
            full = 0;
            break;
        }
        sv->n = n;
        sv->sent = 0;
        sv->echoed += n;
    }
    if (!flush(sv)) {
        uv_idle_stop(&sv->more);
        uv_poll_start(&sv->poll, UV_WRITABLE, on_io);
        return;
    }
    if (done(sv)) {
        stop(sv);
        return;
    }
    uv_poll_start(&sv->poll, UV_READABLE, on_io);
    /* Stopped at ROUNDS: more may be waiting inside volley (the rest of a
     * GRO buffer), which the fd does not show; come back next loop turn. */
    if (full)
        uv_idle_start(&sv->more, on_more);
    else
        uv_idle_stop(&sv->more);
}

static void on_io(uv_poll_t *p, int status, int events)
{
    struct server *sv = p->data;
    (void)events;
    if (status < 0) {
        fprintf(stderr, "poll: %s\n", uv_strerror(status));
        stop(sv);
        return;
    }
    uv_timer_again(&sv->idle);
    serve(sv);
}

static void on_more(uv_idle_t *h)
{
    serve(h->data);
}

static void on_idle(uv_timer_t *t)
{
    stop(t->data);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ADDR [COUNT]\n", argv[0]);
        return 2;
    }
    struct server sv = {0};
    sv.limit = argc > 2 ? atol(argv[2]) : -1;
    struct volley_addr a;
    char name[64];
    int r = volley_open(&sv.s, argv[1], NULL);
    if (r == 0)
        r = volley_local_addr(sv.s, &a);
    if (r == 0)
        r = volley_addr_format(&a, name, sizeof name);
    if (r < 0) {
        fprintf(stderr, "open %s: %s\n", argv[1], volley_strerror(r));
        return 1;
    }
    printf("listening %s\n", name);
    fflush(stdout); /* the address is how a client finds us */

    uv_loop_t *loop = uv_default_loop();
    sv.poll.data = sv.more.data = sv.idle.data = &sv;
    r = uv_poll_init(loop, &sv.poll, volley_fd(sv.s));
    if (r < 0) {
        fprintf(stderr, "uv_poll_init: %s\n", uv_strerror(r));
        return 1;
    }
    uv_idle_init(loop, &sv.more);
    uv_timer_init(loop, &sv.idle);
    uv_poll_start(&sv.poll, UV_READABLE, on_io);
    uv_timer_start(&sv.idle, on_idle, IDLE_MS, IDLE_MS);
    uv_run(loop, UV_RUN_DEFAULT);

    printf("echoed %ld datagrams\n", sv.echoed);
    uv_loop_close(loop);
    volley_close(sv.s); /* after libuv stopped watching its fd */
    return 0;
}
