/* SPDX-License-Identifier: MIT */
/* Receiving and reads: the receive budget's fair shares, whether a
 * connection receives, what the backends report of received bytes, and
 * the read API. */
#include "loop.h"

#include <errno.h>

/* Whether c holds more than its share of the receive budget (count
 * buffers, of which free are held by no connection). While more than half
 * the budget is free, every connection may hold up to readq_max. Below
 * that, each may hold its share of the budget, count / (2 * connections),
 * or what its want needs if that is more: the connections holding the
 * most stop first, and TCP's window then pushes back on their peers alone.
 * Below an eighth, only connections holding nothing receive: the last
 * eighth goes one buffer per connection. So a connection holding nothing
 * receives as long as the unread bytes of the others pin fewer than seven
 * eighths of the budget, which takes more than count / 2 connections each
 * holding its share. */
static bool over_share(const volley_conn *c)
{
    const volley_loop *l = volley__conn_loop(c);
    const struct volley__bufs *b = &l->bufs;
    uint32_t held = c->rq.nbufs, free = b->count - b->held;
    if (!held || free > b->count / 2)
        return false;
    if (free <= b->count / 8)
        return true;
    uint64_t share = b->count / (2 * (l->st.conns ? l->st.conns : 1));
    uint64_t need = (c->want + b->size - 1) / b->size + 1; /* head partly read */
    return held >= (share > need ? share : need);
}

/* Whether the backend should be receiving for c now (over: c holds more
 * than its share). */
static bool recv_wanted(const volley_conn *c, bool over)
{
    if (c->flags & (VOLLEY__C_LISTENER | VOLLEY__C_EOF | VOLLEY__C_STARVED))
        return false;
    switch (c->state) {
    case VOLLEY__CS_OPEN:
        /* a DIRECT connection receives only into the caller's buffers */
        return !(c->o->flags & VOLLEY_CONN_DIRECT) && c->rq.bytes < c->o->readq_max &&
               !over;
    case VOLLEY__CS_FLUSHING:
    case VOLLEY__CS_LINGER:
        return true; /* read and drop, so the close is not a reset */
    default:
        return false;
    }
}

void volley__conn_recv_sync(volley_conn *c)
{
    /* paused for its share: looked at again as buffers come back */
    bool over = c->state == VOLLEY__CS_OPEN && over_share(c);
    bool on = recv_wanted(c, over);
    if (over != !!(c->flags & VOLLEY__C_OVER)) {
        c->flags ^= VOLLEY__C_OVER;
        volley__conn_loop(c)->over += over ? 1 : (uint32_t)-1;
    }
    if (on == !!(c->flags & VOLLEY__C_RECV))
        return;
    c->flags ^= VOLLEY__C_RECV;
    if (on)
        c->st.rearms++;
    volley__conn_loop(c)->ops->recv(c, on);
}

void volley__conn_data(volley_conn *c, uint32_t id, uint32_t len)
{
    volley_loop *l = volley__conn_loop(c);
    c->st.bytes_in += len;
    if (c->state != VOLLEY__CS_OPEN) {
        /* closing: what arrives is dropped */
        l->bufs.rel[l->bufs.nrel++] = id;
        return;
    }
    volley__readq_push(&c->rq, &l->bufs, id, len);
    if (c->rq.bytes >= c->want)
        volley__conn_ready(c, VOLLEY_EV_READABLE);
    volley__conn_recv_sync(c);
}

void volley__conn_recv_end(volley_conn *c, int res)
{
    volley_loop *l = volley__conn_loop(c);
    c->flags &= ~VOLLEY__C_RECV;
    if (c->state >= VOLLEY__CS_ENDING)
        return;
    if (res == -ENOBUFS) {
        l->st.ring_empty++;
        if (!(c->flags & VOLLEY__C_STARVED)) {
            c->flags |= VOLLEY__C_STARVED;
            l->starved++;
        }
        return;
    }
    if (res < 0) {
        if (c->rq.bytes)
            volley__conn_ready(c, VOLLEY_EV_READABLE);
        volley__conn_end(c, res, false);
        return;
    }
    c->flags |= VOLLEY__C_EOF;
    switch (c->state) {
    case VOLLEY__CS_OPEN:
        if (c->rq.bytes)
            volley__conn_ready(c, VOLLEY_EV_READABLE);
        volley__conn_ready(c, VOLLEY_EV_EOF);
        break;
    case VOLLEY__CS_LINGER:
        volley__conn_end(c, 0, false);
        break;
    default:
        break; /* FLUSHING: ends after the FIN goes */
    }
}

void volley__conn_received(volley_conn *c, ssize_t res)
{
    if (res == -EAGAIN && c->state == VOLLEY__CS_OPEN) {
        volley__conn_loop(c)->ops->recv_into(
            c); /* nothing came after all: receive again */
        return;
    }
    if (c->state != VOLLEY__CS_OPEN || res == -ECANCELED) {
        c->flags &= ~VOLLEY__C_RX_LENT;
        return; /* closing: the buffer is free with CLOSED */
    }
    if (res > 0) {
        /* still lent until RECEIVED is returned: it reports this tag */
        c->st.bytes_in += (size_t)res;
        c->rx->got = (uint32_t)res;
        volley__conn_ready(c, VOLLEY_EV_RECEIVED);
        return;
    }
    c->flags &= ~VOLLEY__C_RX_LENT;
    volley__conn_recv_end(c, (int)res);
}

size_t volley_conn_buffered(const volley_conn *c)
{
    return c ? c->rq.bytes : 0;
}

/* The reading side's checks: 0 when c may be read from. */
static int readable(const volley_conn *c)
{
    if (!c)
        return -EINVAL;
    if (c->flags & VOLLEY__C_CLOSED_BY_US)
        return -EPIPE;
    if (c->flags & VOLLEY__C_LISTENER)
        return -ENOTCONN;
    return 0;
}

/* What a read finding nothing says. */
static int nothing(const volley_conn *c)
{
    return (c->flags & VOLLEY__C_EOF) || c->state >= VOLLEY__CS_ENDING ? -ESHUTDOWN : 0;
}

/* After bytes were consumed: receive again if c had paused. */
static void consumed(volley_conn *c)
{
    volley__conn_recv_sync(c);
}

ssize_t volley_conn_read(volley_conn *c, void *buf, size_t n)
{
    int r = readable(c);
    if (r < 0)
        return r;
    if (!buf && n)
        return -EINVAL;
    if (!c->rq.bytes)
        return nothing(c);
    size_t got = volley__readq_read(&c->rq, &volley__conn_loop(c)->bufs, buf, n);
    consumed(c);
    return (ssize_t)got;
}

int volley_conn_peek(volley_conn *c, struct iovec *iov, unsigned n)
{
    int r = readable(c);
    if (r < 0)
        return r;
    if (!iov || !n)
        return -EINVAL;
    if (!c->rq.bytes)
        return nothing(c);
    return (int)volley__readq_peek(&c->rq, &volley__conn_loop(c)->bufs, iov, n);
}

int volley_conn_consume(volley_conn *c, size_t n)
{
    int r = readable(c);
    if (r < 0)
        return r;
    if (n > c->rq.bytes)
        return -EINVAL;
    (void)volley__readq_read(&c->rq, &volley__conn_loop(c)->bufs, NULL, n);
    consumed(c);
    return 0;
}

int volley_conn_want(volley_conn *c, size_t n, int timeout_ms)
{
    int r = readable(c);
    if (r < 0)
        return r;
    if (!n || n > c->o->readq_max)
        return -EINVAL;
    if (c->flags & VOLLEY__C_REAPED)
        return -ESHUTDOWN; /* its CLOSED was returned: no event follows */
    c->want = (uint32_t)n;
    c->pending &= ~VOLLEY__P_TO_READ;
    c->dl_want = volley__deadline_in(timeout_ms);
    volley__conn_timer_sync(c);
    if (c->rq.bytes >= n || (c->rq.bytes && (c->flags & VOLLEY__C_EOF)))
        volley__conn_ready(c, VOLLEY_EV_READABLE);
    return 0;
}

int volley_conn_recv_into(volley_conn *c, void *buf, size_t n, uint64_t tag)
{
    int r = readable(c);
    if (r < 0)
        return r;
    if (!buf || !n)
        return -EINVAL;
    if (!(c->o->flags & VOLLEY_CONN_DIRECT))
        return -ENOTSUP;
    if (c->flags & VOLLEY__C_RX_LENT)
        return -EBUSY;
    if ((c->flags & VOLLEY__C_EOF) || c->state >= VOLLEY__CS_ENDING)
        return -ESHUTDOWN;
    c->rx->buf = buf;
    c->rx->len =
        n > VOLLEY__DGRAM_MAX ? VOLLEY__DGRAM_MAX : (uint32_t)n; /* one recv(2) */
    c->rx->tag = tag;
    c->flags |= VOLLEY__C_RX_LENT;
    if (c->state == VOLLEY__CS_OPEN)
        volley__conn_loop(c)->ops->recv_into(c);
    return 0;
}
