/* SPDX-License-Identifier: MIT */
/* Sends, writes and close: the send budget's fair shares, a queue's room,
 * what the backends report of sends, and the write, shutdown, close and
 * abort API. */
#include "loop.h"

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>

/* What a lent buffer (volley_conn_write_ref) costs of sendq_max besides
 * its bytes: the queue entry that tracks it until its SENT event, so that
 * empty or tiny buffers cannot queue without bound. */
#define REF_COST 64u

void volley__conn_sent(volley_conn *c, ssize_t res)
{
    volley_loop *l = volley__conn_loop(c);
    if (c->state >= VOLLEY__CS_ENDING) {
        if (c->flags & VOLLEY__C_SENDING)
            volley__conn_drop_queue(c); /* held back for this send (conn_end) */
        return;
    }
    c->flags &= ~VOLLEY__C_SENDING;
    if (res == -EAGAIN) {
        /* io_uring gives up on a non-blocking socket that is still full
         * after it waited once for room: nothing went, send again */
        volley__conn_flush_later(c);
        return;
    }
    if (res < 0) {
        volley__conn_end(c, (int)res, false);
        return;
    }
    size_t n = (size_t)res;
    c->st.sends++;
    if (n > c->sq.bytes)
        n = c->sq.bytes; /* cannot happen: the kernel took what it was given */
    volley__sendq_advance(&c->sq, &l->pool, n);
    c->st.bytes_out += n;
    if (c->sq.done_head) {
        c->done_ok = volley__conn_done_count(c); /* not ending yet: all went whole */
        volley__conn_ready(c, VOLLEY_EV_SENT);
    }
    if ((c->flags & VOLLEY__C_SAID_AGAIN) && c->sq.bytes <= c->o->sendq_low) {
        c->flags &= ~VOLLEY__C_SAID_AGAIN;
        volley__conn_ready(c, VOLLEY_EV_WRITABLE);
    }
    if (!c->sq.bytes && (c->flags & VOLLEY__C_WAIT_DRAIN)) {
        c->flags &= ~VOLLEY__C_WAIT_DRAIN;
        c->dl_drain = 0;
        volley__conn_timer_sync(c);
        volley__conn_ready(c, VOLLEY_EV_DRAINED);
    }
    volley__conn_flush_later(c);
}

size_t volley_conn_queued(const volley_conn *c)
{
    return c ? c->sq.bytes : 0;
}

/* The writing side's checks: 0 when c may be written to. */
static int writable(const volley_conn *c)
{
    if (!c)
        return -EINVAL;
    if (c->flags & VOLLEY__C_LISTENER)
        return -ENOTCONN;
    if ((c->flags & (VOLLEY__C_CLOSED_BY_US | VOLLEY__C_SHUT_ASKED)) ||
        c->state >= VOLLEY__CS_ENDING)
        return -EPIPE;
    return 0;
}

/* Whether copying n more bytes would take the loop's queues past the send
 * budget while c holds at least its share of it, count / (2 *
 * connections): then the connections holding the most wait first, and
 * those holding little still write. */
static bool over_send_share(const volley_conn *c, size_t used, size_t n)
{
    const volley_loop *l = volley__conn_loop(c);
    size_t mem = volley__segpool_mem(&l->pool) + (n / VOLLEY__CHUNK + 1) * VOLLEY__CHUNK;
    if (mem <= (size_t)l->sendq_budget / VOLLEY__CHUNK * VOLLEY__CHUNK)
        return false;
    return used >= l->sendq_budget / (2 * (l->st.conns ? l->st.conns : 1));
}

/* Whether a write of n bytes, costing n + extra of sendq_max, fits: a
 * single larger write fits an empty queue. Lent buffers, queued or waiting
 * for their SENT event, cost REF_COST each besides their bytes; copies
 * count against the loop's send budget too. */
static int room(volley_conn *c, size_t n, size_t extra)
{
    size_t used = c->sq.bytes + (size_t)c->sq.refs * REF_COST;
    if (!used || (used < c->o->sendq_max && n + extra <= c->o->sendq_max - used &&
                  (extra || !over_send_share(c, used, n))))
        return 0;
    c->flags |= VOLLEY__C_SAID_AGAIN;
    return -EAGAIN;
}

static void queued(volley_conn *c)
{
    c->st.writes++;
    volley__conn_flush_later(c);
}

ssize_t volley_conn_write(volley_conn *c, const void *buf, size_t n)
{
    int r = writable(c);
    if (r < 0)
        return r;
    if (!buf && n)
        return -EINVAL;
    if (n > SSIZE_MAX)
        return -EINVAL;
    if ((r = room(c, n, 0)) < 0)
        return r;
    if (n && (r = volley__sendq_write(&c->sq, &volley__conn_loop(c)->pool, buf, n)) < 0)
        return r;
    queued(c);
    return (ssize_t)n;
}

int volley_conn_write_ref(volley_conn *c, const void *buf, size_t n, uint64_t tag)
{
    int r = writable(c);
    if (r < 0)
        return r;
    if (!buf && n)
        return -EINVAL;
    if ((r = room(c, n, REF_COST)) < 0)
        return r;
    if ((r = volley__sendq_write_ref(&c->sq, &volley__conn_loop(c)->pool, buf, n, tag)) <
        0)
        return r;
    if (c->sq.done_head) {
        /* a zero-length buffer behind nothing finished at once */
        c->done_ok = volley__conn_done_count(c);
        volley__conn_ready(c, VOLLEY_EV_SENT);
    }
    queued(c);
    return 0;
}

int volley_conn_wait_drained(volley_conn *c, int timeout_ms)
{
    int r = writable(c);
    if (r < 0)
        return r;
    c->pending &= ~VOLLEY__P_TO_DRAIN;
    if (!c->sq.bytes && !(c->flags & VOLLEY__C_SENDING)) {
        c->flags &= ~VOLLEY__C_WAIT_DRAIN;
        c->dl_drain = 0;
        volley__conn_timer_sync(c);
        volley__conn_ready(c, VOLLEY_EV_DRAINED);
        return 0;
    }
    c->flags |= VOLLEY__C_WAIT_DRAIN;
    c->dl_drain = volley__deadline_in(timeout_ms);
    volley__conn_timer_sync(c);
    return 0;
}

/* Buffered bytes are dropped and reading stops when the caller closes;
 * while buffers are lent to the send queue the bytes stay until c is
 * released (a lent span may be one of them: volley_conn_peek's spans stay
 * put until consumed), held against the budget as before. */
static void drop_reads(volley_conn *c)
{
    if (!c->sq.refs)
        (void)volley__readq_clear(&c->rq, &volley__conn_loop(c)->bufs);
    c->pending &=
        ~(VOLLEY__EV(VOLLEY_EV_READABLE) | VOLLEY__P_TO_READ | VOLLEY__EV(VOLLEY_EV_EOF));
    c->dl_want = 0;
}

int volley_conn_shutdown(volley_conn *c)
{
    int r = writable(c);
    if (r < 0)
        return r;
    if (c->flags & VOLLEY__C_SHUT_ASKED)
        return -EPIPE;
    c->flags |= VOLLEY__C_SHUT_ASKED;
    volley__conn_flush_later(c);
    return 0;
}

int volley_conn_close(volley_conn *c)
{
    if (!c)
        return -EINVAL;
    if (c->flags & VOLLEY__C_CLOSED_BY_US)
        return -EPIPE;
    c->flags |= VOLLEY__C_CLOSED_BY_US;
    if (c->state >= VOLLEY__CS_ENDING)
        return 0; /* ending already: its CLOSED is on the way */
    drop_reads(c);
    if (c->flags & VOLLEY__C_LISTENER) {
        volley__conn_end(c, 0, false);
        return 0;
    }
    if (c->state == VOLLEY__CS_OPEN)
        c->state = VOLLEY__CS_FLUSHING; /* CONNECTING: flushes once connected */
    c->dl_linger = volley__deadline_in((int)volley__conn_loop(c)->linger_ms);
    volley__conn_timer_sync(c);
    volley__conn_recv_sync(c);
    volley__conn_flush_later(c);
    return 0;
}

int volley_conn_abort(volley_conn *c)
{
    if (!c)
        return -EINVAL;
    if (c->flags & VOLLEY__C_CLOSED_BY_US)
        return -EPIPE;
    c->flags |= VOLLEY__C_CLOSED_BY_US;
    drop_reads(c);
    volley__conn_end(c, -ECANCELED, !(c->flags & VOLLEY__C_LISTENER));
    return 0;
}
