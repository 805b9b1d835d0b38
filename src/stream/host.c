/* SPDX-License-Identifier: MIT */
/*
 * Datagram sockets on a stream loop (volley_opts.loop): the loop's side of
 * hosting (base.h). Their entries in the loop, their DGRAM events, and
 * what happens when the loop closes first. A uring socket on a uring loop
 * shares the loop's ring (its operations carry the entry's VOLLEY__DTAG,
 * and the loop hands their completions back through the guest's cqe); any
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
    return d->g && d->gen == (uint8_t)(tag >> 24) ? d : NULL;
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
        ev[k].user = d->g->user;
        ev[k].tag = d->pending;
        k++;
        d->pending = 0;
        l->dgrams_owed--;
    }
    return k;
}

static volley_loop *loop_of(struct volley__host *h)
{
    return (volley_loop *)h; /* the loop begins with its host */
}

static int host_attach(struct volley__host *h, struct volley__guest *g)
{
    volley_loop *l = loop_of(h);
    if (l->closing)
        return -EINVAL;
    uint32_t i = 0;
    while (i < l->ndgrams && l->dgrams[i].g)
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
    d->g = g;
    g->host = h;
    g->idx = i;
    g->ring = NULL;
#if VOLLEY_HAVE_URING
    g->ring = volley__loop_ring(l);
#endif
    g->tag_base = VOLLEY__DTAG(i, gen, 0);
    g->bgid = 2 + i; /* the loop's connections use groups 0 and 1 */
    return 0;
}

static int host_start(struct volley__guest *g)
{
    volley_loop *l = loop_of(g->host);
    if (g->shared)
        return 0;
    int r = l->ops->dgram_watch(l, g->idx, true);
    if (r == 0)
        l->dgrams[g->idx].watched = true;
    return r;
}

static void host_blocked(struct volley__guest *g)
{
    volley_loop *l = loop_of(g->host);
    struct volley__dgram *d = &l->dgrams[g->idx];
    if (d->out_armed)
        return;
    if (l->ops->dgram_out(l, g->idx, true) == 0)
        d->out_armed = true;
    else
        volley__loop_dgram_owe(l, d, VOLLEY_WAIT_SEND); /* a look, then again */
}

static void host_detach(struct volley__guest *g)
{
    volley_loop *l = loop_of(g->host);
    struct volley__dgram *d = &l->dgrams[g->idx];
    if (d->out_armed || d->out_reg)
        (void)l->ops->dgram_out(l, g->idx, false);
    if (d->watched)
        (void)l->ops->dgram_watch(l, g->idx, false);
    if (d->pending)
        l->dgrams_owed--;
    d->g = NULL;
    d->pending = 0;
    d->watched = false;
    while (l->ndgrams && !l->dgrams[l->ndgrams - 1].g)
        l->ndgrams--;
    g->host = NULL;
}

static int host_pump(struct volley__host *h, int timeout_ms)
{
    volley_loop *l = loop_of(h);
    return l->ops->wait(l, timeout_ms < 0 ? -1 : (int64_t)timeout_ms * VOLLEY__NS_PER_MS);
}

static void host_reap(struct volley__host *h)
{
    volley_loop *l = loop_of(h);
    if (l->ops->reap)
        l->ops->reap(l);
}

const struct volley__host_ops volley__loop_host_ops = {
    .attach = host_attach,
    .start = host_start,
    .detach = host_detach,
    .blocked = host_blocked,
    .pump = host_pump,
    .reap = host_reap,
};

/* The loop closes: a socket sharing its ring tears its backend down (while
 * the ring still runs) and is left able only to close; a watched one works
 * on alone. */
void volley__loop_dgram_release(volley_loop *l)
{
    for (uint32_t i = 0; i < l->ndgrams; i++) {
        struct volley__guest *g = l->dgrams[i].g;
        if (!g)
            continue;
        if (g->shared)
            g->ops->host_closing(g);
        host_detach(g);
    }
    free(l->dgrams);
    l->dgrams = NULL;
    l->ndgrams = l->cap_dgrams = 0;
}
