/* SPDX-License-Identifier: MIT */
/* Connections and their events: slots and generations, the ready and
 * flush lists, deadlines, a connection's end, and the events it owes in
 * their documented order. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

volley_conn *volley__loop_conn(volley_loop *l, uint64_t tag)
{
    uint32_t slot = VOLLEY__TAG_SLOT(tag);
    if (slot >= l->nslots)
        return NULL;
    volley_conn *c = volley__loop_slot(l, slot);
    if (c->state == VOLLEY__STATE_FREE || (c->gen & 0xffffffu) != VOLLEY__TAG_GEN(tag))
        return NULL;
    return c;
}

volley_conn *volley__conn_new(volley_loop *l)
{
    volley_conn *c = l->free_conns;
    if (c) {
        l->free_conns = c->ready_next;
        uint32_t slot = c->slot, gen = c->gen + 1;
        memset(c, 0, sizeof *c);
        c->slot = slot;
        c->gen = gen;
    } else {
        /* every connection may have a deadline: its place in the heap is
         * made now, so that arming one never fails */
        if (volley__timers_reserve(&l->timers, l->nslots + l->ntimers + 1) < 0)
            return NULL;
        uint32_t b = l->nslots / VOLLEY__CONN_BLOCK;
        if (l->nslots % VOLLEY__CONN_BLOCK == 0) {
            /* a block at a time: no allocator header per connection, and
             * one pointer per block rather than per slot */
            if (b == l->cap_blocks) {
                uint32_t cap = l->cap_blocks ? l->cap_blocks * 2 : 8;
                struct volley__conn_block **s = realloc(l->blocks, cap * sizeof *s);
                if (!s)
                    return NULL;
                l->blocks = s;
                l->cap_blocks = cap;
            }
            l->blocks[b] = calloc(1, sizeof *l->blocks[b]);
            if (!l->blocks[b])
                return NULL;
            l->blocks[b]->loop = l;
        }
        c = volley__loop_slot(l, l->nslots);
        c->slot = l->nslots++;
    }
    c->fd = -1;
    c->want = 1;
    c->timer.pos = -1;
    c->rq = (struct volley__readq)VOLLEY__READQ_INIT;
    c->state = VOLLEY__CS_OPEN;
    l->st.conns++;
    return c;
}

/* Writes that went out in a send with others: every write beyond one per
 * send. */
uint64_t volley__stats_coalesced(const struct volley_conn_stats *s)
{
    return s->writes > s->sends ? s->writes - s->sends : 0;
}

void volley__stats_add(struct volley_conn_stats *to, const struct volley__cstats *s)
{
    to->bytes_in += s->bytes_in;
    to->bytes_out += s->bytes_out;
    to->writes += s->writes;
    to->sends += s->sends;
    to->rearms += s->rearms;
    to->unsent_bytes += s->unsent_bytes;
    to->zc_sends += s->zc_sends;
    to->zc_copied += s->zc_copied;
}

/* c lets go of its options record: freed with the last connection. */
static void copts_put(volley_conn *c)
{
    struct volley__copts *o = (struct volley__copts *)c->o;
    c->o = NULL;
    if (!o || --o->refs)
        return;
    struct volley__copts **p = &volley__conn_loop(c)->copts;
    while (*p != o)
        p = &(*p)->next;
    *p = o->next;
    free(o);
}

/* Everything of c back to the loop; its slot waits for reuse. */
void volley__conn_release(volley_conn *c)
{
    volley_loop *l = volley__conn_loop(c);
    free(c->un);
    c->un = NULL;
    copts_put(c);
    if (c->rx) {
        c->rx->next = l->free_rx;
        l->free_rx = c->rx;
        c->rx = NULL;
    }
    volley__stats_add(&l->gone, &c->st);
    (void)volley__readq_clear(&c->rq, &l->bufs);
    (void)volley__sendq_clear(&c->sq, &l->pool);
    while (volley__sendq_pop_done(&c->sq, &l->pool, &(uint64_t){0}, &(size_t){0}))
        ;
    volley__timers_del(&l->timers, &c->timer);
    c->state = VOLLEY__STATE_FREE;
    c->ready_next = l->free_conns;
    l->free_conns = c;
    l->st.conns--;
}

/* Put c at the end of the ready list (once). A connection whose CLOSED
 * was returned is on the reap list through the same link, and owes
 * nothing more. */
static void enqueue(volley_conn *c)
{
    volley_loop *l = volley__conn_loop(c);
    if (c->flags & (VOLLEY__C_READY | VOLLEY__C_REAPED))
        return;
    c->flags |= VOLLEY__C_READY;
    c->ready_next = NULL;
    if (l->ready_tail)
        l->ready_tail->ready_next = c;
    else
        l->ready_head = c;
    l->ready_tail = c;
}

/* c owes an event of type. */
void volley__conn_ready(volley_conn *c, unsigned type)
{
    c->pending |= VOLLEY__EV(type);
    enqueue(c);
}

void volley__conn_flush_later(volley_conn *c)
{
    if (c->flags & VOLLEY__C_FLUSH)
        return;
    c->flags |= VOLLEY__C_FLUSH;
    c->flush_next = volley__conn_loop(c)->flush_head;
    volley__conn_loop(c)->flush_head = c;
}

static int64_t earliest(const volley_conn *c)
{
    int64_t at = 0;
    const int64_t d[] = {c->dl_connect, c->dl_want, c->dl_drain, c->dl_linger};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        if (d[i] && (!at || d[i] < at))
            at = d[i];
    return at;
}

/* Keep c's place in the deadline heap in step with its deadlines. It
 * cannot fail: conn_new reserved a place for every connection. */
void volley__conn_timer_sync(volley_conn *c)
{
    int64_t at = earliest(c);
    if (!at)
        volley__timers_del(&volley__conn_loop(c)->timers, &c->timer);
    else
        (void)volley__timers_set(&volley__conn_loop(c)->timers, &c->timer, at);
}

int64_t volley__deadline_in(int timeout_ms)
{
    return timeout_ms < 0 ? 0
                          : volley__loop_now() + (int64_t)timeout_ms * VOLLEY__NS_PER_MS;
}

uint32_t volley__conn_done_count(const volley_conn *c)
{
    uint32_t n = 0;
    for (const struct volley__seg *s = c->sq.done_head; s; s = s->next)
        n++;
    return n;
}

/* c no longer waits for buffers (it ends). */
static void unpause(volley_conn *c)
{
    if (c->flags & VOLLEY__C_STARVED)
        volley__conn_loop(c)->starved--;
    if (c->flags & VOLLEY__C_OVER)
        volley__conn_loop(c)->over--;
    c->flags &= ~(VOLLEY__C_STARVED | VOLLEY__C_OVER);
}

/* Drop what c has queued, counted; lent buffers get their SENT (with an
 * error) before CLOSED. */
void volley__conn_drop_queue(volley_conn *c)
{
    c->flags &= ~VOLLEY__C_SENDING;
    c->done_ok =
        volley__conn_done_count(c); /* these went whole; what the clear adds did not */
    c->st.unsent_bytes += volley__sendq_clear(&c->sq, &volley__conn_loop(c)->pool);
    if (c->sq.done_head)
        volley__conn_ready(c, VOLLEY_EV_SENT);
}

/* Tear c down with err as its CLOSED error. Queued bytes are dropped and
 * counted; lent buffers get their SENT (with an error) before CLOSED. */
void volley__conn_end(volley_conn *c, int err, bool reset)
{
    if (c->state >= VOLLEY__CS_ENDING)
        return;
    c->err = err;
    /* A send in flight on io_uring still reads the queue: it is dropped
     * when that send completes (volley__conn_sent). */
    if (!(c->flags & VOLLEY__C_SENDING) || !volley__conn_loop(c)->ops->async_send)
        volley__conn_drop_queue(c);
    c->dl_connect = c->dl_want = c->dl_drain = c->dl_linger = 0;
    volley__conn_timer_sync(c);
    if (reset)
        c->flags |= VOLLEY__C_ABORT;
    unpause(c);
    c->flags &= ~(VOLLEY__C_RECV | VOLLEY__C_SAID_AGAIN | VOLLEY__C_WAIT_DRAIN);
    c->pending &= ~(VOLLEY__EV(VOLLEY_EV_WRITABLE) | VOLLEY__EV(VOLLEY_EV_DRAINED));
    c->state = VOLLEY__CS_ENDING;
    volley__conn_loop(c)->ops->end(c);
}

/* After the caller closed or shut c: FIN once everything queued went out;
 * after a close, the linger that follows. */
void volley__conn_close_progress(volley_conn *c)
{
    bool closing = c->state == VOLLEY__CS_FLUSHING;
    bool shut = c->state == VOLLEY__CS_OPEN && (c->flags & VOLLEY__C_SHUT_ASKED);
    if ((!closing && !shut) || c->sq.bytes || (c->flags & VOLLEY__C_SENDING))
        return;
    int r = 0;
    if (!(c->flags & VOLLEY__C_SHUT_DONE)) {
        volley__conn_loop(c)->st.syscalls++;
        r = volley__sys_shutdown(c->fd, SHUT_WR);
        if (r < 0 && r != -ENOTCONN) {
            volley__conn_end(c, r, true);
            return;
        }
        c->flags |= VOLLEY__C_SHUT_DONE;
    }
    if (shut)
        return;
    if ((c->flags & VOLLEY__C_EOF) || r == -ENOTCONN) {
        volley__conn_end(c, 0, false);
        return;
    }
    c->state = VOLLEY__CS_LINGER;
    volley__conn_recv_sync(c);
}

/* A DIRECT connection's record, from the loop's free list: 0 or -ENOMEM. */
static int direct_get(volley_conn *c)
{
    volley_loop *l = volley__conn_loop(c);
    if (!(c->o->flags & VOLLEY_CONN_DIRECT) || c->rx)
        return 0;
    struct volley__direct *d = l->free_rx;
    if (d)
        l->free_rx = d->next;
    else if (!(d = malloc(sizeof *d)))
        return -ENOMEM;
    memset(d, 0, sizeof *d);
    c->rx = d;
    return 0;
}

int volley__conn_opts_from(volley_conn *c, const volley_conn *lis)
{
    struct volley__copts *o = (struct volley__copts *)lis->o;
    o->refs++;
    c->o = o;
    return direct_get(c);
}

/* c's options record: one with these values if the loop has it, else a
 * new one. 0 or -ENOMEM. */
static int copts_get(volley_conn *c, const struct volley__copts *want)
{
    volley_loop *l = volley__conn_loop(c);
    struct volley__copts *o = l->copts;
    while (o && (o->sendq_max != want->sendq_max || o->sendq_low != want->sendq_low ||
                 o->readq_max != want->readq_max ||
                 o->zc_threshold != want->zc_threshold || o->flags != want->flags))
        o = o->next;
    if (!o) {
        if (!(o = malloc(sizeof *o)))
            return -ENOMEM;
        *o = *want;
        o->refs = 0;
        o->next = l->copts;
        l->copts = o;
    }
    o->refs++;
    c->o = o;
    return 0;
}

int volley__conn_opts(volley_conn *c, const struct volley_conn_opts *src, int *backlog)
{
    struct volley_conn_opts o;
    int r = volley__opts_in(&o, sizeof o, src, offsetof(struct volley_conn_opts, flags));
    if (r < 0)
        return r;
    for (size_t i = 0; i < sizeof o.reserved / sizeof o.reserved[0]; i++)
        if (o.reserved[i])
            return -EINVAL;
    const uint32_t known = VOLLEY_CONN_NO_NODELAY | VOLLEY_CONN_REUSEPORT |
                           VOLLEY_CONN_V6ONLY | VOLLEY_CONN_BACKLOG_ZERO |
                           VOLLEY_CONN_DIRECT | VOLLEY_CONN_NO_REUSEADDR;
    if ((o.flags & ~known) || o.backlog > 65535 || o.sendq_max > (1u << 30) ||
        o.readq_max > (1u << 30))
        return -EINVAL;
    size_t max = o.sendq_max ? o.sendq_max : VOLLEY__SENDQ_MAX;
    if (o.sendq_low >= max)
        return -EINVAL;
    if (backlog)
        *backlog = o.flags & VOLLEY_CONN_BACKLOG_ZERO ? 0
                   : o.backlog                        ? (int)o.backlog
                                                      : SOMAXCONN;
    struct volley__copts want = {
        .flags = o.flags,
        .sendq_max = (uint32_t)max,
        .sendq_low = o.sendq_low ? o.sendq_low : (uint32_t)max / 4,
        .readq_max = o.readq_max ? o.readq_max : VOLLEY__READQ_MAX,
        .zc_threshold = o.zc_threshold,
    };
    if ((r = copts_get(c, &want)) < 0)
        return r;
    return direct_get(c);
}

static void fill(struct volley_event *e, volley_conn *c, unsigned type)
{
    memset(e, 0, sizeof *e);
    e->conn = c;
    e->user = c->user;
    e->type = type;
}

/* The next event c owes, in the documented order, into e: false when c
 * owes none (any more). */
static bool next_event(volley_conn *c, struct volley_event *e)
{
    volley_loop *l = volley__conn_loop(c);
    for (;;) {
        uint32_t p = c->pending;
        if (p & VOLLEY__EV(VOLLEY_EV_ACCEPTED)) {
            c->pending &= ~VOLLEY__EV(VOLLEY_EV_ACCEPTED);
            fill(e, c, VOLLEY_EV_ACCEPTED);
            e->listener = volley__loop_slot(l, c->listener);
            return true;
        }
        if (p & VOLLEY__EV(VOLLEY_EV_CONNECTED)) {
            c->pending &= ~VOLLEY__EV(VOLLEY_EV_CONNECTED);
            fill(e, c, VOLLEY_EV_CONNECTED);
            return true;
        }
        if (p & VOLLEY__EV(VOLLEY_EV_READABLE)) {
            c->pending &= ~VOLLEY__EV(VOLLEY_EV_READABLE);
            bool ended = (c->flags & VOLLEY__C_EOF) || c->state >= VOLLEY__CS_ENDING;
            if (c->rq.bytes && (c->rq.bytes >= c->want || ended)) {
                fill(e, c, VOLLEY_EV_READABLE);
                e->len = c->rq.bytes;
                c->want = 1;
                c->dl_want = 0;
                c->pending &= ~VOLLEY__P_TO_READ;
                volley__conn_timer_sync(c);
                return true;
            }
            continue;
        }
        if (p & VOLLEY__EV(VOLLEY_EV_RECEIVED)) {
            c->pending &= ~VOLLEY__EV(VOLLEY_EV_RECEIVED);
            c->flags &= ~VOLLEY__C_RX_LENT; /* the buffer is the caller's again */
            fill(e, c, VOLLEY_EV_RECEIVED);
            e->tag = c->rx->tag;
            e->len = c->rx->got;
            return true;
        }
        if (p & VOLLEY__EV(VOLLEY_EV_SENT)) {
            uint64_t tag;
            size_t total;
            if (volley__sendq_pop_done(&c->sq, &l->pool, &tag, &total)) {
                fill(e, c, VOLLEY_EV_SENT);
                e->tag = tag;
                e->len = total;
                if (c->done_ok)
                    c->done_ok--;
                else
                    e->err = c->err ? c->err : -ECANCELED;
                return true;
            }
            c->pending &= ~VOLLEY__EV(VOLLEY_EV_SENT);
            continue;
        }
        if (p & VOLLEY__EV(VOLLEY_EV_WRITABLE)) {
            c->pending &= ~VOLLEY__EV(VOLLEY_EV_WRITABLE);
            fill(e, c, VOLLEY_EV_WRITABLE);
            return true;
        }
        if (p & VOLLEY__EV(VOLLEY_EV_DRAINED)) {
            c->pending &= ~VOLLEY__EV(VOLLEY_EV_DRAINED);
            fill(e, c, VOLLEY_EV_DRAINED);
            return true;
        }
        if (p & VOLLEY__EV(VOLLEY_EV_EOF)) {
            c->pending &= ~VOLLEY__EV(VOLLEY_EV_EOF);
            fill(e, c, VOLLEY_EV_EOF);
            return true;
        }
        if (p & (VOLLEY__P_TO_READ | VOLLEY__P_TO_DRAIN)) {
            uint32_t bit = p & VOLLEY__P_TO_READ ? VOLLEY__P_TO_READ : VOLLEY__P_TO_DRAIN;
            c->pending &= ~bit;
            if (!(c->pending & (VOLLEY__P_TO_READ | VOLLEY__P_TO_DRAIN)))
                c->pending &= ~VOLLEY__EV(VOLLEY_EV_TIMEOUT);
            fill(e, c, VOLLEY_EV_TIMEOUT);
            e->tag = bit == VOLLEY__P_TO_READ ? VOLLEY_EV_READABLE : VOLLEY_EV_DRAINED;
            e->err = -ETIMEDOUT;
            return true;
        }
        c->pending &= ~VOLLEY__EV(VOLLEY_EV_TIMEOUT);
        if (p & VOLLEY__EV(VOLLEY_EV_CLOSED)) {
            c->pending = 0;
            fill(e, c, VOLLEY_EV_CLOSED);
            e->err = c->err;
            return true;
        }
        return false;
    }
}

/* Take c off the front of the ready list. */
static void unready(volley_loop *l, volley_conn *c)
{
    l->ready_head = c->ready_next;
    if (!l->ready_head)
        l->ready_tail = NULL;
    c->flags &= ~VOLLEY__C_READY;
}

/* Up to n events from the ready list, connection by connection. A new
 * connection's ACCEPTED is its only event in a batch, so the user pointer
 * set on ACCEPTED comes with everything after it; its other events go
 * back on the list for the next batch. */
unsigned volley__loop_emit(volley_loop *l, struct volley_event *ev, unsigned n)
{
    unsigned k = l->fired_head || l->wake_owed ? volley__timer_emit(l, ev, n) : 0;
    if (l->dgrams_owed && k < n)
        k += volley__loop_dgram_emit(l, ev + k, n - k);
    volley_conn *later = NULL, **later_tail = &later;
    while (l->ready_head && k < n) {
        volley_conn *c = l->ready_head;
        while (k < n && next_event(c, &ev[k])) {
            unsigned type = ev[k++].type;
            if (type == VOLLEY_EV_CLOSED) {
                l->st.closed++;
                /* freed at the next poll: the caller may still look at it,
                 * but nothing puts it on the ready list again */
                unready(l, c);
                c->flags |= VOLLEY__C_REAPED;
                c->ready_next = l->reap;
                l->reap = c;
                goto next;
            }
            if (type == VOLLEY_EV_ACCEPTED && c->pending) {
                unready(l, c);
                c->ready_next = NULL;
                *later_tail = c;
                later_tail = &c->ready_next;
                goto next;
            }
        }
        if (k == n && c->pending)
            break; /* out of room: c stays first */
        unready(l, c);
    next:;
    }
    for (volley_conn *c = later, *nx; c; c = nx) {
        nx = c->ready_next;
        enqueue(c);
    }
    return k;
}

void volley__conn_gone(volley_conn *c)
{
    if (c->flags & VOLLEY__C_ABORT) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close with a reset */
        volley__conn_loop(c)->st.syscalls++;
        (void)volley__sys_setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    volley__conn_unlink(c);
    volley__conn_loop(c)->st.syscalls++;
    volley__sys_close(c->fd);
    c->state = VOLLEY__CS_ENDED;
    c->fd = -1;
    unpause(c);
    volley__conn_ready(c, VOLLEY_EV_CLOSED);
}

void *volley_conn_user(const volley_conn *c)
{
    return c ? c->user : NULL;
}

void volley_conn_set_user(volley_conn *c, void *user)
{
    if (c)
        c->user = user;
}

int volley_conn_addr(const volley_conn *c, struct volley_addr *local,
                     struct volley_addr *peer)
{
    if (!c)
        return -EINVAL;
    if (local)
        *local = c->local;
    if (peer)
        *peer = c->peer;
    return 0;
}

int volley_conn_get_stats(const volley_conn *c, struct volley_conn_stats *out,
                          size_t size)
{
    if (!c || !out || !size)
        return -EINVAL;
    struct volley_conn_stats st = {0};
    volley__stats_add(&st, &c->st);
    st.coalesced = volley__stats_coalesced(&st);
    st.queued = c->sq.bytes;
    st.buffered = c->rq.bytes;
    memcpy(out, &st, size < sizeof st ? size : sizeof st);
    return 0;
}
