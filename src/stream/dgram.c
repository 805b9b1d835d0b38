/* SPDX-License-Identifier: MIT */
/*
 * Datagram sockets on a stream loop (volley_opts.loop): their entries in
 * the loop, their DGRAM events, and what happens when the loop closes
 * first. A uring socket on a uring loop shares the loop's ring (the
 * backend routes its operations through it, tagged with VOLLEY__DTAG, and
 * the loop hands their completions back through volley__uring_cqe); any
 * other socket is watched for readability through the loop's backend
 * (dgram_watch).
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct volley__dgram *volley__loop_dgram(volley_loop *l, uint64_t tag)
{
    uint32_t i = (uint32_t)((tag >> 8) & 0xffffu);
    if (i >= l->ndgrams)
        return NULL;
    struct volley__dgram *d = &l->dgrams[i];
    return d->s && d->gen == (uint8_t)(tag >> 24) ? d : NULL;
}

void volley__loop_dgram_owe(volley_loop *l, struct volley__dgram *d, unsigned bits)
{
    if (!bits)
        return;
    if (!d->pending)
        l->dgrams_owed++;
    d->pending |= bits;
}

/* Up to n DGRAM events into ev. */
unsigned volley__loop_dgram_emit(volley_loop *l, struct volley_event *ev, unsigned n)
{
    unsigned k = 0;
    for (uint32_t i = 0; i < l->ndgrams && l->dgrams_owed && k < n; i++) {
        struct volley__dgram *d = &l->dgrams[i];
        if (!d->pending)
            continue;
        memset(&ev[k], 0, sizeof ev[k]);
        ev[k].type = VOLLEY_EV_DGRAM;
        ev[k].user = d->user ? d->user : d->s;
        ev[k].tag = d->pending;
        k++;
        d->pending = 0;
        l->dgrams_owed--;
    }
    return k;
}

int volley__loop_dgram_attach(volley_sock *s)
{
    volley_loop *l = s->opts.loop;
    if (l->closing)
        return -EINVAL;
    uint32_t i = 0;
    while (i < l->ndgrams && l->dgrams[i].s)
        i++;
    if (i == l->ndgrams) {
        if (i >= 0xffffu) /* what a tag and a buffer group id can name */
            return -ENOMEM;
        if (i == l->cap_dgrams) {
            uint32_t cap = l->cap_dgrams ? 2 * l->cap_dgrams : 4;
            struct volley__dgram *nd = realloc(l->dgrams, cap * sizeof *nd);
            if (!nd)
                return -ENOMEM;
            memset(nd + l->cap_dgrams, 0, (cap - l->cap_dgrams) * sizeof *nd);
            l->dgrams = nd;
            l->cap_dgrams = cap;
        }
        l->ndgrams++;
    }
    struct volley__dgram *d = &l->dgrams[i];
    uint8_t gen = (uint8_t)(d->gen + 1);
    memset(d, 0, sizeof *d);
    d->gen = gen;
    d->s = s;
    d->user = s->opts.loop_user;
    s->loop = l;
    s->loop_idx = i;
    s->loop_gen = gen;
#if VOLLEY_HAVE_URING
    /* AUTO on a uring loop: a uring socket, to share the ring */
    if (s->opts.backend == VOLLEY_BACKEND_AUTO && volley__loop_ring(l) &&
        !(s->opts.disable & VOLLEY__F_NO_URING))
        s->opts.backend = VOLLEY_BACKEND_URING;
#endif
    return 0;
}

int volley__loop_dgram_start(volley_sock *s)
{
    struct volley__dgram *d = &s->loop->dgrams[s->loop_idx];
    if (s->loop_shared)
        return 0;
    int r = s->loop->ops->dgram_watch(s->loop, s->loop_idx, true);
    if (r == 0)
        d->watched = true;
    return r;
}

void volley__loop_dgram_blocked(volley_sock *s)
{
    volley_loop *l = s->loop;
    struct volley__dgram *d = &l->dgrams[s->loop_idx];
    if (d->out_armed)
        return;
    if (l->ops->dgram_out(l, s->loop_idx, true) == 0)
        d->out_armed = true;
    else
        volley__loop_dgram_owe(l, d, VOLLEY_WAIT_SEND); /* a look, then again */
}

void volley__loop_dgram_detach(volley_sock *s)
{
    volley_loop *l = s->loop;
    if (!l)
        return;
    struct volley__dgram *d = &l->dgrams[s->loop_idx];
    if (d->out_armed || d->out_reg)
        (void)l->ops->dgram_out(l, s->loop_idx, false);
    if (d->watched)
        (void)l->ops->dgram_watch(l, s->loop_idx, false);
    if (d->pending)
        l->dgrams_owed--;
    d->s = NULL;
    d->pending = 0;
    d->watched = false;
    while (l->ndgrams && !l->dgrams[l->ndgrams - 1].s)
        l->ndgrams--;
    s->loop = NULL;
}

int volley__loop_pump(volley_loop *l, int timeout_ms)
{
    return l->ops->wait(l, timeout_ms);
}

void volley__loop_reap(volley_loop *l)
{
    if (l->ops->reap)
        l->ops->reap(l);
}

/* The loop closes: a socket sharing its ring tears its backend down (while
 * the ring still runs) and is left able only to close; a watched one works
 * on alone. */
void volley__loop_dgram_release(volley_loop *l)
{
    for (uint32_t i = 0; i < l->ndgrams; i++) {
        volley_sock *s = l->dgrams[i].s;
        if (!s)
            continue;
        if (s->loop_shared) {
            s->be->close(s);
            s->be = &volley__backend_gone;
            s->loop_shared = false;
        }
        volley__loop_dgram_detach(s);
    }
    free(l->dgrams);
    l->dgrams = NULL;
    l->ndgrams = l->cap_dgrams = 0;
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
