/* SPDX-License-Identifier: MIT */
/*
 * A datagram socket on a stream loop (volley_opts.loop): the socket's side
 * of hosting (base.h). It takes an entry in the loop before its backend is
 * chosen (AUTO on a uring loop becomes uring, to share the ring), has the
 * loop watch it once set up, tells it when a send stopped short, and lets
 * go at close. The loop calls back through the guest table: a completion
 * on its ring goes to the backend (volley_backend.ring_cqe), and when the
 * loop closes first a socket on its ring is left with the gone backend.
 */
#include "dgram.h"

#include <errno.h>
#include <stddef.h>

static volley_sock *sock_of(struct volley__guest *g)
{
    return (volley_sock *)((char *)g - offsetof(volley_sock, guest));
}

static unsigned guest_cqe(struct volley__guest *g, uint32_t own_tag, int32_t res,
                          uint32_t flags)
{
    volley_sock *s = sock_of(g);
    return s->be->ring_cqe ? s->be->ring_cqe(s, own_tag, res, flags) : 0;
}

/* The backend tears down while the loop's ring still runs; every call on
 * the socket but close then gives -EPIPE. */
static void guest_host_closing(struct volley__guest *g)
{
    volley_sock *s = sock_of(g);
    if (s->be->close)
        s->be->close(s);
    s->be = &volley__backend_gone;
    g->shared = false;
}

static const struct volley__guest_ops guest_ops = {
    .cqe = guest_cqe,
    .host_closing = guest_host_closing,
};

int volley__hosted_attach(volley_sock *s)
{
    struct volley__host *h = (struct volley__host *)s->opts.loop;
    s->guest.ops = &guest_ops;
    s->guest.user = s->opts.loop_user ? s->opts.loop_user : s;
    int r = h->ops->attach(h, &s->guest);
    if (r < 0)
        return r;
#if VOLLEY_HAVE_URING
    /* AUTO on a uring loop: a uring socket, to share the ring */
    if (s->opts.backend == VOLLEY_BACKEND_AUTO && s->guest.ring &&
        !(s->opts.disable & VOLLEY__F_NO_URING))
        s->opts.backend = VOLLEY_BACKEND_URING;
#endif
    return 0;
}

int volley__hosted_start(volley_sock *s)
{
    s->guest.fd = s->fd;
    s->guest.poll_fd = volley_fd(s);
    return s->guest.host->ops->start(&s->guest);
}

void volley__hosted_blocked(volley_sock *s)
{
    s->guest.host->ops->blocked(&s->guest);
}

void volley__hosted_detach(volley_sock *s)
{
    if (s->guest.host)
        s->guest.host->ops->detach(&s->guest);
}

int volley__hosted_pump(volley_sock *s, int timeout_ms)
{
    return s->guest.host->ops->pump(s->guest.host, timeout_ms);
}

void volley__hosted_reap(volley_sock *s)
{
    s->guest.host->ops->reap(s->guest.host);
}

static int gone_send(volley_sock *s, const struct volley_dgram *d, unsigned n)
{
    (void)s, (void)d, (void)n;
    return -EPIPE;
}

static int gone_recv(volley_sock *s, struct volley_dgram *d, unsigned n)
{
    (void)s, (void)d, (void)n;
    return -EPIPE;
}

static int gone_wait(volley_sock *s, unsigned events, int timeout_ms)
{
    (void)s, (void)events, (void)timeout_ms;
    return -EPIPE;
}

const struct volley_backend volley__backend_gone = {
    .name = "gone",
    .caps = VOLLEY__BE_GONE,
    .send = gone_send,
    .recv = gone_recv,
    .wait = gone_wait,
};
