/* SPDX-License-Identifier: MIT */
/* The stream loop's core: the public stream API, connection states,
 * events and deadlines. The backends (loop_uring.c, loop_epoll.c) move the
 * bytes and report back through the volley__conn_* calls at the end.
 *
 * A turn of volley_loop_poll: release what the caller saw close, start the
 * sends that were queued, hand consumed buffers back, let the backend wait
 * and report, fire due deadlines, start the sends those reports allow, and
 * return the events owed, connection by connection, from the ready list. */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EV(t)                (1u << (t))
#define STATE_FREE           0xff
#define NS_PER_MS            1000000LL
#define DEFAULT_SENDQ_MAX    (1u << 20)
#define DEFAULT_READQ_MAX    (256u << 10)
#define DEFAULT_SENDQ_BUDGET (16u << 20)
#define LIMIT_2_30           (1u << 30)
/* Receive buffers put to use when a loop opens; more as it needs them. */
#define BUFS_FIRST 64u
/* What a lent buffer (volley_conn_write_ref) costs of sendq_max besides
 * its bytes: the queue entry that tracks it until its SENT event, so that
 * empty or tiny buffers cannot queue without bound. */
#define REF_COST 64u
/* Which TIMEOUT events are owed, next to the EV() bits of c->pending. */
#define P_TO_READ  (1u << 16)
#define P_TO_DRAIN (1u << 17)

int64_t volley__loop_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint32_t round_pow2(uint32_t v)
{
    uint32_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* ---- connections: slots, lists, deadlines ------------------------------- */

volley_conn *volley__loop_conn(volley_loop *l, uint64_t tag)
{
    uint32_t slot = VOLLEY__TAG_SLOT(tag);
    if (slot >= l->nslots)
        return NULL;
    volley_conn *c = l->slots[slot];
    if (!c || c->state == STATE_FREE || (c->gen & 0xffffffu) != VOLLEY__TAG_GEN(tag))
        return NULL;
    return c;
}

static volley_conn *conn_new(volley_loop *l)
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
        if (volley__timers_reserve(&l->timers, l->nslots + 1) < 0)
            return NULL;
        if (l->nslots == l->cap_slots) {
            uint32_t cap = l->cap_slots ? l->cap_slots * 2 : 64;
            volley_conn **s = realloc(l->slots, cap * sizeof *s);
            if (!s)
                return NULL;
            l->slots = s;
            l->cap_slots = cap;
        }
        c = calloc(1, sizeof *c);
        if (!c)
            return NULL;
        c->slot = l->nslots;
        l->slots[l->nslots++] = c;
    }
    c->loop = l;
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
static uint64_t coalesced(const struct volley_conn_stats *s)
{
    return s->writes > s->sends ? s->writes - s->sends : 0;
}

static void stats_add(struct volley_conn_stats *to, const struct volley_conn_stats *s)
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

/* Everything of c back to the loop; its slot waits for reuse. */
static void conn_release(volley_conn *c)
{
    volley_loop *l = c->loop;
    stats_add(&l->gone, &c->st);
    (void)volley__readq_clear(&c->rq, &l->bufs);
    (void)volley__sendq_clear(&c->sq, &l->pool);
    while (volley__sendq_pop_done(&c->sq, &l->pool, &(uint64_t){0}, &(size_t){0}))
        ;
    volley__timers_del(&l->timers, &c->timer);
    c->state = STATE_FREE;
    c->ready_next = l->free_conns;
    l->free_conns = c;
    l->st.conns--;
}

/* Put c at the end of the ready list (once). A connection whose CLOSED
 * was returned is on the reap list through the same link, and owes
 * nothing more. */
static void enqueue(volley_conn *c)
{
    volley_loop *l = c->loop;
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
static void ready(volley_conn *c, unsigned type)
{
    c->pending |= EV(type);
    enqueue(c);
}

static void flush_later(volley_conn *c)
{
    if (c->flags & VOLLEY__C_FLUSH)
        return;
    c->flags |= VOLLEY__C_FLUSH;
    c->flush_next = c->loop->flush_head;
    c->loop->flush_head = c;
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
static void timer_sync(volley_conn *c)
{
    int64_t at = earliest(c);
    if (!at)
        volley__timers_del(&c->loop->timers, &c->timer);
    else
        (void)volley__timers_set(&c->loop->timers, &c->timer, at);
}

static int64_t deadline_in(int timeout_ms)
{
    return timeout_ms < 0 ? 0 : volley__loop_now() + (int64_t)timeout_ms * NS_PER_MS;
}

bool volley__loop_rx_tight(const volley_loop *l)
{
    return l->bufs.count - l->bufs.held <= l->bufs.count / 2;
}

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
    const volley_loop *l = c->loop;
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

/* Whether the backend should be receiving for c now. */
static bool recv_wanted(const volley_conn *c)
{
    if (c->flags & (VOLLEY__C_LISTENER | VOLLEY__C_EOF | VOLLEY__C_STARVED))
        return false;
    switch (c->state) {
    case VOLLEY__CS_OPEN:
        /* a DIRECT connection receives only into the caller's buffers */
        return !(c->copt & VOLLEY_CONN_DIRECT) && c->rq.bytes < c->readq_max &&
               !over_share(c);
    case VOLLEY__CS_FLUSHING:
    case VOLLEY__CS_LINGER:
        return true; /* read and drop, so the close is not a reset */
    default:
        return false;
    }
}

static void recv_sync(volley_conn *c)
{
    bool on = recv_wanted(c);
    /* paused for its share: looked at again as buffers come back */
    bool over = !on && c->state == VOLLEY__CS_OPEN && over_share(c);
    if (over != !!(c->flags & VOLLEY__C_OVER)) {
        c->flags ^= VOLLEY__C_OVER;
        c->loop->over += over ? 1 : (uint32_t)-1;
    }
    if (on == !!(c->flags & VOLLEY__C_RECV))
        return;
    c->flags ^= VOLLEY__C_RECV;
    if (on)
        c->st.rearms++;
    c->loop->ops->recv(c, on);
}

static uint32_t done_count(const volley_conn *c)
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
        c->loop->starved--;
    if (c->flags & VOLLEY__C_OVER)
        c->loop->over--;
    c->flags &= ~(VOLLEY__C_STARVED | VOLLEY__C_OVER);
}

/* Drop what c has queued, counted; lent buffers get their SENT (with an
 * error) before CLOSED. */
static void drop_queue(volley_conn *c)
{
    c->flags &= ~VOLLEY__C_SENDING;
    c->done_ok = done_count(c); /* these went whole; what the clear adds did not */
    c->st.unsent_bytes += volley__sendq_clear(&c->sq, &c->loop->pool);
    if (c->sq.done_head)
        ready(c, VOLLEY_EV_SENT);
}

/* Tear c down with err as its CLOSED error. Queued bytes are dropped and
 * counted; lent buffers get their SENT (with an error) before CLOSED. */
static void conn_end(volley_conn *c, int err, bool reset)
{
    if (c->state >= VOLLEY__CS_ENDING)
        return;
    c->err = err;
    /* A send in flight on io_uring still reads the queue: it is dropped
     * when that send completes (volley__conn_sent). */
    if (!(c->flags & VOLLEY__C_SENDING) || !c->loop->ops->async_send)
        drop_queue(c);
    c->dl_connect = c->dl_want = c->dl_drain = c->dl_linger = 0;
    timer_sync(c);
    if (reset)
        c->flags |= VOLLEY__C_ABORT;
    unpause(c);
    c->flags &= ~(VOLLEY__C_RECV | VOLLEY__C_SAID_AGAIN | VOLLEY__C_WAIT_DRAIN);
    c->pending &= ~(EV(VOLLEY_EV_WRITABLE) | EV(VOLLEY_EV_DRAINED));
    c->state = VOLLEY__CS_ENDING;
    c->loop->ops->end(c);
}

/* After the caller closed or shut c: FIN once everything queued went out;
 * after a close, the linger that follows. */
static void close_progress(volley_conn *c)
{
    bool closing = c->state == VOLLEY__CS_FLUSHING;
    bool shut = c->state == VOLLEY__CS_OPEN && (c->flags & VOLLEY__C_SHUT_ASKED);
    if ((!closing && !shut) || c->sq.bytes || (c->flags & VOLLEY__C_SENDING))
        return;
    int r = 0;
    if (!(c->flags & VOLLEY__C_SHUT_DONE)) {
        c->loop->st.syscalls++;
        r = volley__sys_shutdown(c->fd, SHUT_WR);
        if (r < 0 && r != -ENOTCONN) {
            conn_end(c, r, true);
            return;
        }
        c->flags |= VOLLEY__C_SHUT_DONE;
    }
    if (shut)
        return;
    if ((c->flags & VOLLEY__C_EOF) || r == -ENOTCONN) {
        conn_end(c, 0, false);
        return;
    }
    c->state = VOLLEY__CS_LINGER;
    recv_sync(c);
}

/* ---- options ------------------------------------------------------------ */

static int loop_opts(struct volley_loop_opts *o, const struct volley_loop_opts *src)
{
    int r =
        volley__opts_in(o, sizeof *o, src, offsetof(struct volley_loop_opts, backend));
    if (r < 0)
        return r;
    for (size_t i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++)
        if (o->reserved[i])
            return -EINVAL;
    if (o->backend != VOLLEY_BACKEND_AUTO && o->backend != VOLLEY_BACKEND_URING &&
        o->backend != VOLLEY_BACKEND_EPOLL)
        return -EINVAL;
    if ((o->entries && (o->entries < 8 || o->entries > 32768)) ||
        (o->buf_size && (o->buf_size < 512 || o->buf_size > (1u << 20))) ||
        (o->buf_count && (o->buf_count < 2 || o->buf_count > 32768)) ||
        o->linger_ms > INT32_MAX ||
        (o->sendq_budget &&
         (o->sendq_budget < (64u << 10) || o->sendq_budget > (1u << 31))))
        return -EINVAL;
    o->entries = o->entries ? round_pow2(o->entries) : 256;
    o->buf_size = o->buf_size ? o->buf_size : 16384;
    o->buf_count = o->buf_count ? round_pow2(o->buf_count) : 1024;
    o->linger_ms = o->linger_ms ? o->linger_ms : 5000;
    o->sendq_budget = o->sendq_budget ? o->sendq_budget : DEFAULT_SENDQ_BUDGET;
    return 0;
}

static int conn_opts(volley_conn *c, const struct volley_conn_opts *src)
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
    if ((o.flags & ~known) || o.backlog > 65535 || o.sendq_max > LIMIT_2_30 ||
        o.readq_max > LIMIT_2_30)
        return -EINVAL;
    size_t max = o.sendq_max ? o.sendq_max : DEFAULT_SENDQ_MAX;
    if (o.sendq_low >= max)
        return -EINVAL;
    c->copt = o.flags;
    c->backlog = o.flags & VOLLEY_CONN_BACKLOG_ZERO ? 0
                 : o.backlog                        ? o.backlog
                                                    : SOMAXCONN;
    c->sendq_max = max;
    c->sendq_low = o.sendq_low ? o.sendq_low : max / 4;
    c->readq_max = o.readq_max ? o.readq_max : DEFAULT_READQ_MAX;
    c->zc_threshold = o.zc_threshold;
    return 0;
}

/* ---- the loop ----------------------------------------------------------- */

static int loop_try(volley_loop *l, const struct volley__loop_ops *ops,
                    const struct volley_loop_opts *o)
{
    l->ops = ops;
    return ops->init(l, o);
}

int volley_loop_open(volley_loop **out, const struct volley_loop_opts *opts)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    struct volley_loop_opts o;
    int r = loop_opts(&o, opts);
    if (r < 0)
        return r;
    unsigned env_backend;
    bool no_uring;
    r = volley__env_loop_backend(&env_backend, &no_uring);
    if (r < 0)
        return r;
    unsigned want = o.backend ? o.backend : env_backend;
    volley_loop *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->linger_ms = o.linger_ms;
    l->sendq_budget = o.sendq_budget;
    r = volley__bufs_init(&l->bufs, o.buf_count, o.buf_size, BUFS_FIRST);
    if (r < 0) {
        free(l);
        return r;
    }
    r = -ENOTSUP;
#if VOLLEY_HAVE_URING
    if (want == VOLLEY_BACKEND_URING || (want == VOLLEY_BACKEND_AUTO && !no_uring)) {
        r = loop_try(l, &volley__loop_uring, &o);
        if (r == -ENOTSUP && want == VOLLEY_BACKEND_AUTO)
            r = 1; /* fall back */
    }
#endif
    if (want == VOLLEY_BACKEND_EPOLL || (want == VOLLEY_BACKEND_AUTO && r != 0))
        r = loop_try(l, &volley__loop_epoll, &o);
    if (r < 0) {
        volley__bufs_free(&l->bufs);
        free(l);
        return r;
    }
    *out = l;
    return 0;
}

const char *volley_loop_backend(const volley_loop *l)
{
    return l ? l->ops->name : "none";
}

int volley_loop_fd(const volley_loop *l)
{
    return l ? l->ops->fd(l) : -EINVAL;
}

int volley_loop_timeout(const volley_loop *l)
{
    if (!l)
        return -1;
    if (l->ready_head || l->flush_head || l->reap)
        return 0;
    struct volley__timer *t = volley__timers_top(&l->timers);
    if (!t)
        return -1;
    int64_t left = t->at - volley__loop_now();
    if (left <= 0)
        return 0;
    int64_t ms = (left + NS_PER_MS - 1) / NS_PER_MS;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

int volley_loop_get_stats(const volley_loop *l, struct volley_loop_stats *out,
                          size_t size)
{
    if (!l || !out || !size)
        return -EINVAL;
    struct volley_loop_stats st = l->st;
    st.total = l->gone;
    for (uint32_t i = 0; i < l->nslots; i++) {
        const volley_conn *c = l->slots[i];
        if (c->state == STATE_FREE)
            continue;
        stats_add(&st.total, &c->st);
        st.total.queued += c->sq.bytes;
        st.total.buffered += c->rq.bytes;
    }
    st.total.coalesced = coalesced(&st.total);
    st.bufs_live = l->bufs.live;
    st.bufs_held = l->bufs.held;
    st.over_share = l->over;
    memcpy(out, &st, size < sizeof st ? size : sizeof st);
    return 0;
}

/* Start the sends that can go, and FINs that are due. */
static void turn_flush(volley_loop *l)
{
    while (l->flush_head) {
        volley_conn *c = l->flush_head;
        l->flush_head = c->flush_next;
        c->flags &= ~VOLLEY__C_FLUSH;
        if (c->state == VOLLEY__CS_OPEN || c->state == VOLLEY__CS_FLUSHING) {
            if (!(c->flags & VOLLEY__C_SENDING) && (c->sq.bytes || c->sq.head)) {
                if (!c->sq.bytes) {
                    /* only empty lent buffers: finished without a send */
                    volley__sendq_advance(&c->sq, &l->pool, 0);
                    c->done_ok = done_count(c);
                    if (c->sq.done_head)
                        ready(c, VOLLEY_EV_SENT);
                } else {
                    c->flags |= VOLLEY__C_SENDING;
                    l->ops->send(c);
                }
            }
            close_progress(c);
        }
    }
}

static void turn_deadlines(volley_loop *l)
{
    struct volley__timer *t;
    int64_t now = 0;
    while ((t = volley__timers_top(&l->timers))) {
        if (!now)
            now = volley__loop_now();
        if (t->at > now)
            break;
        volley_conn *c = (volley_conn *)((char *)t - offsetof(volley_conn, timer));
        volley__timers_del(&l->timers, t);
        if (c->dl_connect && c->dl_connect <= now) {
            c->dl_connect = 0;
            conn_end(c, -ETIMEDOUT, false);
            continue;
        }
        if (c->dl_want && c->dl_want <= now && (c->flags & VOLLEY__C_LISTENER)) {
            c->dl_want = 0; /* a listener's rest is over */
            if (c->state == VOLLEY__CS_OPEN && l->ops->accept(c, true) < 0)
                c->dl_want = deadline_in(VOLLEY__ACCEPT_PAUSE_MS);
        }
        if (c->dl_want && c->dl_want <= now) {
            c->dl_want = 0;
            c->want = 1;
            ready(c, VOLLEY_EV_TIMEOUT);
            c->pending |= P_TO_READ;
        }
        if (c->dl_drain && c->dl_drain <= now) {
            c->dl_drain = 0;
            c->flags &= ~VOLLEY__C_WAIT_DRAIN;
            ready(c, VOLLEY_EV_TIMEOUT);
            c->pending |= P_TO_DRAIN;
        }
        if (c->dl_linger && c->dl_linger <= now) {
            c->dl_linger = 0;
            /* closed while connecting, or still flushing: linger_ms bounds
             * the close either way */
            if (c->state == VOLLEY__CS_CONNECTING || c->state == VOLLEY__CS_FLUSHING) {
                conn_end(c, -ETIMEDOUT, true);
                continue;
            }
            if (c->state == VOLLEY__CS_LINGER) {
                conn_end(c, 0, false);
                continue;
            }
        }
        timer_sync(c); /* the deadlines still ahead */
    }
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
    volley_loop *l = c->loop;
    for (;;) {
        uint32_t p = c->pending;
        if (p & EV(VOLLEY_EV_ACCEPTED)) {
            c->pending &= ~EV(VOLLEY_EV_ACCEPTED);
            fill(e, c, VOLLEY_EV_ACCEPTED);
            e->listener = c->listener;
            return true;
        }
        if (p & EV(VOLLEY_EV_CONNECTED)) {
            c->pending &= ~EV(VOLLEY_EV_CONNECTED);
            fill(e, c, VOLLEY_EV_CONNECTED);
            return true;
        }
        if (p & EV(VOLLEY_EV_READABLE)) {
            c->pending &= ~EV(VOLLEY_EV_READABLE);
            bool ended = (c->flags & VOLLEY__C_EOF) || c->state >= VOLLEY__CS_ENDING;
            if (c->rq.bytes && (c->rq.bytes >= c->want || ended)) {
                fill(e, c, VOLLEY_EV_READABLE);
                e->len = c->rq.bytes;
                c->want = 1;
                c->dl_want = 0;
                c->pending &= ~P_TO_READ;
                timer_sync(c);
                return true;
            }
            continue;
        }
        if (p & EV(VOLLEY_EV_RECEIVED)) {
            c->pending &= ~EV(VOLLEY_EV_RECEIVED);
            fill(e, c, VOLLEY_EV_RECEIVED);
            e->tag = c->rx_tag;
            e->len = c->rx_got;
            return true;
        }
        if (p & EV(VOLLEY_EV_SENT)) {
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
            c->pending &= ~EV(VOLLEY_EV_SENT);
            continue;
        }
        if (p & EV(VOLLEY_EV_WRITABLE)) {
            c->pending &= ~EV(VOLLEY_EV_WRITABLE);
            fill(e, c, VOLLEY_EV_WRITABLE);
            return true;
        }
        if (p & EV(VOLLEY_EV_DRAINED)) {
            c->pending &= ~EV(VOLLEY_EV_DRAINED);
            fill(e, c, VOLLEY_EV_DRAINED);
            return true;
        }
        if (p & EV(VOLLEY_EV_EOF)) {
            c->pending &= ~EV(VOLLEY_EV_EOF);
            fill(e, c, VOLLEY_EV_EOF);
            return true;
        }
        if (p & (P_TO_READ | P_TO_DRAIN)) {
            uint32_t bit = p & P_TO_READ ? P_TO_READ : P_TO_DRAIN;
            c->pending &= ~bit;
            if (!(c->pending & (P_TO_READ | P_TO_DRAIN)))
                c->pending &= ~EV(VOLLEY_EV_TIMEOUT);
            fill(e, c, VOLLEY_EV_TIMEOUT);
            e->tag = bit == P_TO_READ ? VOLLEY_EV_READABLE : VOLLEY_EV_DRAINED;
            e->err = -ETIMEDOUT;
            return true;
        }
        c->pending &= ~EV(VOLLEY_EV_TIMEOUT);
        if (p & EV(VOLLEY_EV_CLOSED)) {
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
static unsigned turn_emit(volley_loop *l, struct volley_event *ev, unsigned n)
{
    unsigned k = l->dgrams_owed ? volley__loop_dgram_emit(l, ev, n) : 0;
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

static void turn_reap(volley_loop *l)
{
    while (l->reap) {
        volley_conn *c = l->reap;
        l->reap = c->ready_next;
        conn_release(c);
    }
}

/* Buffers consumed since the last turn go back, more of the budget is put
 * to use when three quarters of what is in use are held or a receive found
 * none free, and connections that waited for buffers (none was free, or
 * they held more than their share) are looked at again. */
static void turn_bufs(volley_loop *l)
{
    struct volley__bufs *b = &l->bufs;
    if (b->live < b->count && (l->starved || b->held >= b->live - b->live / 4))
        (void)volley__bufs_grow(b);
    if (!b->nrel)
        return;
    l->ops->bufs_back(l);
    for (uint32_t i = 0; i < l->nslots && (l->starved || l->over); i++) {
        volley_conn *c = l->slots[i];
        if (c->state == STATE_FREE || !(c->flags & (VOLLEY__C_STARVED | VOLLEY__C_OVER)))
            continue;
        if (c->flags & VOLLEY__C_STARVED) {
            c->flags &= ~VOLLEY__C_STARVED;
            l->starved--;
        }
        recv_sync(c);
    }
}

static int turn(volley_loop *l, int timeout_ms)
{
    turn_flush(l);
    turn_bufs(l);
    if (l->ready_head || l->dgrams_owed)
        timeout_ms = 0;
    struct volley__timer *t = volley__timers_top(&l->timers);
    if (t && timeout_ms != 0) {
        int64_t left = t->at - volley__loop_now();
        int ms = left <= 0 ? 0 : (int)((left + NS_PER_MS - 1) / NS_PER_MS);
        if (timeout_ms < 0 || ms < timeout_ms)
            timeout_ms = ms;
    }
    int r = l->ops->wait(l, timeout_ms);
    turn_deadlines(l);
    turn_flush(l);
    turn_bufs(l);
    return r;
}

int volley_loop_poll(volley_loop *l, struct volley_event *ev, unsigned n, int timeout_ms)
{
    if (!l || !ev || !n)
        return -EINVAL;
    l->st.polls++;
    turn_reap(l);
    int64_t end =
        timeout_ms > 0 ? volley__loop_now() + (int64_t)timeout_ms * NS_PER_MS : 0;
    for (;;) {
        int r = turn(l, timeout_ms);
        unsigned k = turn_emit(l, ev, n);
        if (k)
            return (int)k;
        /* a signal ends the wait, so the caller can look at its flags */
        if (r < 0 && r != -ETIME && r != -EAGAIN && r != -EBUSY)
            return r;
        if (timeout_ms == 0)
            return 0;
        if (timeout_ms > 0) {
            int64_t left = end - volley__loop_now();
            if (left <= 0)
                return 0;
            timeout_ms = (int)((left + NS_PER_MS - 1) / NS_PER_MS);
        }
    }
}

/* Abort every connection still alive (listeners just stop). */
static void abort_all(volley_loop *l)
{
    for (uint32_t i = 0; i < l->nslots; i++) {
        volley_conn *c = l->slots[i];
        if (c->state != STATE_FREE && c->state < VOLLEY__CS_ENDING)
            conn_end(c, -ECANCELED, !(c->flags & VOLLEY__C_LISTENER));
    }
}

void volley_loop_close(volley_loop *l, int drain_ms)
{
    if (!l)
        return;
    volley__loop_dgram_release(l);
    l->closing = true;
    turn_reap(l);
    if (drain_ms == 0) {
        abort_all(l);
    } else {
        for (uint32_t i = 0; i < l->nslots; i++) {
            volley_conn *c = l->slots[i];
            if (c->state == STATE_FREE || c->state >= VOLLEY__CS_ENDING)
                continue;
            if (c->flags & VOLLEY__C_LISTENER)
                conn_end(c, -ECANCELED, false);
            else if (c->state == VOLLEY__CS_CONNECTING)
                conn_end(c, -ECANCELED, true);
            else if (c->state == VOLLEY__CS_OPEN) {
                c->state = VOLLEY__CS_FLUSHING;
                c->flags |= VOLLEY__C_CLOSED_BY_US;
                flush_later(c);
            }
        }
    }
    int64_t now = volley__loop_now();
    int64_t drain_end = drain_ms > 0 ? now + (int64_t)drain_ms * NS_PER_MS : 0;
    /* After the abort, the cancellations it starts complete at once; a
     * kernel that does not complete them within this is given up on: the
     * ring's own release below still cancels and waits for them. */
    int64_t reap_end = drain_ms == 0 ? now + 2000 * NS_PER_MS : 0;
    while (l->st.conns > 0) {
        now = volley__loop_now();
        if (drain_end && now >= drain_end) {
            abort_all(l);
            drain_end = 0;
            reap_end = now + 2000 * NS_PER_MS;
        }
        if (reap_end && now >= reap_end)
            break;
        /* What lingers has sent everything: it need not hold the close up. */
        for (uint32_t i = 0; i < l->nslots; i++)
            if (l->slots[i]->state == VOLLEY__CS_LINGER)
                conn_end(l->slots[i], 0, false);
        /* Events are not returned: what was owed is dropped with the conn. */
        (void)turn(l, 10);
        for (uint32_t i = 0; i < l->nslots; i++) {
            volley_conn *c = l->slots[i];
            c->flags &= ~VOLLEY__C_READY;
            if (c->state == VOLLEY__CS_ENDED)
                conn_release(c);
        }
        l->ready_head = l->ready_tail = NULL;
    }
    l->ops->fini(l);
    for (uint32_t i = 0; i < l->nslots; i++) {
        volley_conn *c = l->slots[i];
        if (c->state != STATE_FREE && c->fd >= 0)
            volley__sys_close(c->fd); /* only when given up on above */
        free(c);
    }
    free(l->slots);
    volley__segpool_free(&l->pool);
    volley__timers_free(&l->timers);
    volley__bufs_free(&l->bufs);
    free(l);
}

/* ---- listen and dial ---------------------------------------------------- */

static int sock_setup(volley_conn *c, const char *addr, struct volley_addr *a)
{
    if (!addr)
        return -EINVAL;
    int r = volley_addr_parse(a, addr);
    if (r < 0)
        return r;
    c->loop->st.syscalls++;
    r = volley__sys_socket(a->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                           0);
    if (r < 0)
        return r;
    c->fd = r;
    return 0;
}

/* c's local (or peer) address into *out, v4-mapped ones as plain IPv4 as
 * everywhere in volley: 0 or a negative errno (*out unchanged). */
static int sock_name(volley_conn *c, bool peer, struct volley_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    c->loop->st.syscalls++;
    int r = peer ? volley__sys_getpeername(c->fd, (struct sockaddr *)&ss, &len)
                 : volley__sys_getsockname(c->fd, (struct sockaddr *)&ss, &len);
    if (r == 0)
        volley__addr_from_sockaddr(out, (struct sockaddr *)&ss, len);
    return r;
}

static int setopt(volley_conn *c, int level, int opt, int v)
{
    c->loop->st.syscalls++;
    return volley__sys_setsockopt(c->fd, level, opt, &v, sizeof v);
}

static void conn_abandon(volley_conn *c)
{
    if (c->fd >= 0)
        volley__sys_close(c->fd);
    conn_release(c);
}

/* What listen and dial share: the checks, a connection with its options
 * and a socket for addr (the local address of a listener, the peer of a
 * dial), in *cp. */
static int conn_make(volley_loop *l, volley_conn **out, const char *addr,
                     const struct volley_conn_opts *o, bool listener, volley_conn **cp)
{
    if (!l || !out)
        return -EINVAL;
    *out = NULL;
    if (l->closing)
        return -EINVAL;
    volley_conn *c = conn_new(l);
    if (!c)
        return -ENOMEM;
    int r = conn_opts(c, o);
    if (r == 0)
        r = sock_setup(c, addr, listener ? &c->local : &c->peer);
    if (r < 0) {
        conn_abandon(c);
        return r;
    }
    *cp = c;
    return 0;
}

int volley_listen(volley_loop *l, volley_conn **out, const char *addr,
                  const struct volley_conn_opts *o, void *user)
{
    volley_conn *c;
    int r = conn_make(l, out, addr, o, true, &c);
    if (r < 0)
        return r;
    c->flags |= VOLLEY__C_LISTENER;
    c->user = user;
    /* so that a restarted server binds its port while connections of its
     * last run wait in TIME_WAIT, as every TCP server does */
    if (!(c->copt & VOLLEY_CONN_NO_REUSEADDR))
        r = setopt(c, SOL_SOCKET, SO_REUSEADDR, 1);
    if (r == 0 && (c->copt & VOLLEY_CONN_REUSEPORT))
        r = setopt(c, SOL_SOCKET, SO_REUSEPORT, 1);
    if (r == 0 && c->local.sa.sa_family == AF_INET6)
        r = setopt(c, IPPROTO_IPV6, IPV6_V6ONLY, !!(c->copt & VOLLEY_CONN_V6ONLY));
    if (r == 0) {
        l->st.syscalls++;
        r = volley__sys_bind(c->fd, &c->local.sa, volley_addr_len(&c->local));
    }
    if (r == 0) {
        l->st.syscalls++;
        r = volley__sys_listen(c->fd, (int)c->backlog);
    }
    if (r == 0)
        r = sock_name(c, false, &c->local);
    if (r == 0)
        r = l->ops->accept(c, true);
    if (r < 0) {
        conn_abandon(c);
        return r;
    }
    *out = c;
    return 0;
}

int volley_listen_fd(volley_loop *l, volley_conn **out, int fd,
                     const struct volley_conn_opts *o, void *user)
{
    if (!l || !out)
        return -EINVAL;
    *out = NULL;
    if (l->closing)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    l->st.syscalls += 2;
    int r = volley__sys_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    if (r == -EBADF || r == -ENOTSOCK)
        return r;
    if (r == 0 && type != SOCK_STREAM)
        return -EPROTOTYPE;
    len = sizeof listening;
    if (r == 0)
        r = volley__sys_getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    if (r < 0)
        return r;
    if (!listening)
        return -EINVAL;
    volley_conn *c = conn_new(l);
    if (!c)
        return -ENOMEM;
    c->fd = fd;
    r = conn_opts(c, o);
    if (r == 0)
        r = sock_name(c, false, &c->local);
    if (r == 0 && c->local.sa.sa_family != AF_INET && c->local.sa.sa_family != AF_INET6)
        r = -EAFNOSUPPORT;
    if (r == 0) {
        l->st.syscalls++;
        int fl = volley__sys_fcntl(fd, F_GETFL, 0);
        r = fl < 0 ? fl : 0;
        if (r == 0 && !(fl & O_NONBLOCK)) {
            l->st.syscalls++;
            r = volley__sys_fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        }
    }
    c->flags |= VOLLEY__C_LISTENER;
    c->user = user;
    if (r == 0)
        r = l->ops->accept(c, true);
    if (r < 0) {
        c->fd = -1; /* the caller's still */
        conn_release(c);
        return r;
    }
    *out = c;
    return 0;
}

/* TCP_NODELAY unless the options leave Nagle on. */
static int nodelay(volley_conn *c)
{
    return c->copt & VOLLEY_CONN_NO_NODELAY ? 0 : setopt(c, IPPROTO_TCP, TCP_NODELAY, 1);
}

int volley_dial(volley_loop *l, volley_conn **out, const char *addr,
                const struct volley_conn_opts *o, int timeout_ms, void *user)
{
    volley_conn *c;
    int r = conn_make(l, out, addr, o, false, &c);
    if (r < 0)
        return r;
    if (volley_addr_port(&c->peer) == 0)
        r = -EINVAL;
    if (r == 0)
        r = nodelay(c);
    if (r < 0) {
        conn_abandon(c);
        return r;
    }
    c->user = user;
    c->state = VOLLEY__CS_CONNECTING;
    c->dl_connect = timeout_ms > 0 ? deadline_in(timeout_ms) : 0;
    timer_sync(c);
    r = l->ops->connect(c);
    if (r < 0) {
        conn_abandon(c);
        return r;
    }
    *out = c;
    return 0;
}

/* ---- what the backends report ------------------------------------------- */

void volley__loop_accepted(volley_conn *lis, int fd)
{
    volley_loop *l = lis->loop;
    if (lis->state != VOLLEY__CS_OPEN || l->closing) {
        volley__sys_close(fd);
        return;
    }
    volley_conn *c = conn_new(l);
    if (!c) {
        l->st.accept_errors++;
        volley__sys_close(fd); /* the peer sees the socket close */
        return;
    }
    c->fd = fd;
    c->copt = lis->copt;
    c->sendq_max = lis->sendq_max;
    c->sendq_low = lis->sendq_low;
    c->readq_max = lis->readq_max;
    c->zc_threshold = lis->zc_threshold;
    c->user = lis->user;
    c->listener = lis;
    if (nodelay(c) < 0) {
        /* counted as a failed accept: the peer sees the socket close */
        l->st.accept_errors++;
        conn_abandon(c);
        return;
    }
    (void)sock_name(c, true, &c->peer);
    (void)sock_name(c, false, &c->local);
    l->st.accepted++;
    ready(c, VOLLEY_EV_ACCEPTED);
    recv_sync(c);
}

void volley__loop_accept_failed(volley_conn *lis, int err)
{
    lis->loop->st.accept_errors++;
    if (err != -EMFILE && err != -ENFILE && err != -ENOBUFS && err != -ENOMEM)
        return;
    if (lis->dl_want || lis->loop->ops->accept(lis, false) < 0)
        return; /* resting already, or it cannot: it goes on as it is */
    lis->dl_want = deadline_in(VOLLEY__ACCEPT_PAUSE_MS);
    timer_sync(lis);
}

void volley__conn_connected(volley_conn *c, int err)
{
    volley_loop *l = c->loop;
    if (c->state != VOLLEY__CS_CONNECTING)
        return;
    if (err < 0) {
        conn_end(c, err == -ECANCELED ? -ETIMEDOUT : err, false);
        return;
    }
    c->dl_connect = 0;
    timer_sync(c);
    (void)sock_name(c, false, &c->local);
    l->st.dialed++;
    if (c->flags & VOLLEY__C_CLOSED_BY_US) {
        c->state = VOLLEY__CS_FLUSHING; /* closed while connecting: flush, then FIN */
    } else {
        c->state = VOLLEY__CS_OPEN;
        ready(c, VOLLEY_EV_CONNECTED);
        if (c->flags & VOLLEY__C_RX_LENT)
            l->ops->recv_into(c); /* asked for while connecting */
    }
    recv_sync(c);
    flush_later(c);
}

void volley__conn_data(volley_conn *c, uint32_t id, uint32_t len)
{
    volley_loop *l = c->loop;
    c->st.bytes_in += len;
    if (c->state != VOLLEY__CS_OPEN) {
        /* closing: what arrives is dropped */
        l->bufs.rel[l->bufs.nrel++] = id;
        return;
    }
    volley__readq_push(&c->rq, &l->bufs, id, len);
    if (c->rq.bytes >= c->want)
        ready(c, VOLLEY_EV_READABLE);
    recv_sync(c);
}

void volley__conn_recv_end(volley_conn *c, int res)
{
    volley_loop *l = c->loop;
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
            ready(c, VOLLEY_EV_READABLE);
        conn_end(c, res, false);
        return;
    }
    c->flags |= VOLLEY__C_EOF;
    switch (c->state) {
    case VOLLEY__CS_OPEN:
        if (c->rq.bytes)
            ready(c, VOLLEY_EV_READABLE);
        ready(c, VOLLEY_EV_EOF);
        break;
    case VOLLEY__CS_LINGER:
        conn_end(c, 0, false);
        break;
    default:
        break; /* FLUSHING: ends after the FIN goes */
    }
}

void volley__conn_received(volley_conn *c, ssize_t res)
{
    if (res == -EAGAIN && c->state == VOLLEY__CS_OPEN) {
        c->loop->ops->recv_into(c); /* nothing came after all: receive again */
        return;
    }
    c->flags &= ~VOLLEY__C_RX_LENT;
    if (c->state != VOLLEY__CS_OPEN || res == -ECANCELED)
        return; /* closing: the buffer is free with CLOSED */
    if (res > 0) {
        c->st.bytes_in += (size_t)res;
        c->rx_got = (size_t)res;
        ready(c, VOLLEY_EV_RECEIVED);
        return;
    }
    volley__conn_recv_end(c, (int)res);
}

void volley__conn_sent(volley_conn *c, ssize_t res)
{
    volley_loop *l = c->loop;
    if (c->state >= VOLLEY__CS_ENDING) {
        if (c->flags & VOLLEY__C_SENDING)
            drop_queue(c); /* held back for this send (conn_end) */
        return;
    }
    c->flags &= ~VOLLEY__C_SENDING;
    if (res == -EAGAIN) {
        /* io_uring gives up on a non-blocking socket that is still full
         * after it waited once for room: nothing went, send again */
        flush_later(c);
        return;
    }
    if (res < 0) {
        conn_end(c, (int)res, false);
        return;
    }
    size_t n = (size_t)res;
    c->st.sends++;
    if (n > c->sq.bytes)
        n = c->sq.bytes; /* cannot happen: the kernel took what it was given */
    volley__sendq_advance(&c->sq, &l->pool, n);
    c->st.bytes_out += n;
    if (c->sq.done_head) {
        c->done_ok = done_count(c); /* not ending yet: all went whole */
        ready(c, VOLLEY_EV_SENT);
    }
    if ((c->flags & VOLLEY__C_SAID_AGAIN) && c->sq.bytes <= c->sendq_low) {
        c->flags &= ~VOLLEY__C_SAID_AGAIN;
        ready(c, VOLLEY_EV_WRITABLE);
    }
    if (!c->sq.bytes && (c->flags & VOLLEY__C_WAIT_DRAIN)) {
        c->flags &= ~VOLLEY__C_WAIT_DRAIN;
        c->dl_drain = 0;
        timer_sync(c);
        ready(c, VOLLEY_EV_DRAINED);
    }
    flush_later(c);
}

void volley__conn_gone(volley_conn *c)
{
    if (c->flags & VOLLEY__C_ABORT) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close with a reset */
        c->loop->st.syscalls++;
        (void)volley__sys_setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    c->loop->st.syscalls++;
    volley__sys_close(c->fd);
    c->state = VOLLEY__CS_ENDED;
    c->fd = -1;
    unpause(c);
    ready(c, VOLLEY_EV_CLOSED);
}

/* ---- per-connection calls ----------------------------------------------- */

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

size_t volley_conn_buffered(const volley_conn *c)
{
    return c ? c->rq.bytes : 0;
}

size_t volley_conn_queued(const volley_conn *c)
{
    return c ? c->sq.bytes : 0;
}

int volley_conn_get_stats(const volley_conn *c, struct volley_conn_stats *out,
                          size_t size)
{
    if (!c || !out || !size)
        return -EINVAL;
    struct volley_conn_stats st = c->st;
    st.coalesced = coalesced(&st);
    st.queued = c->sq.bytes;
    st.buffered = c->rq.bytes;
    memcpy(out, &st, size < sizeof st ? size : sizeof st);
    return 0;
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
    recv_sync(c);
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
    size_t got = volley__readq_read(&c->rq, &c->loop->bufs, buf, n);
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
    return (int)volley__readq_peek(&c->rq, &c->loop->bufs, iov, n);
}

int volley_conn_consume(volley_conn *c, size_t n)
{
    int r = readable(c);
    if (r < 0)
        return r;
    if (n > c->rq.bytes)
        return -EINVAL;
    (void)volley__readq_read(&c->rq, &c->loop->bufs, NULL, n);
    consumed(c);
    return 0;
}

int volley_conn_want(volley_conn *c, size_t n, int timeout_ms)
{
    int r = readable(c);
    if (r < 0)
        return r;
    if (!n || n > c->readq_max)
        return -EINVAL;
    if (c->flags & VOLLEY__C_REAPED)
        return -ESHUTDOWN; /* its CLOSED was returned: no event follows */
    c->want = n;
    c->pending &= ~P_TO_READ;
    c->dl_want = deadline_in(timeout_ms);
    timer_sync(c);
    if (c->rq.bytes >= n || (c->rq.bytes && (c->flags & VOLLEY__C_EOF)))
        ready(c, VOLLEY_EV_READABLE);
    return 0;
}

int volley_conn_recv_into(volley_conn *c, void *buf, size_t n, uint64_t tag)
{
    int r = readable(c);
    if (r < 0)
        return r;
    if (!buf || !n)
        return -EINVAL;
    if (!(c->copt & VOLLEY_CONN_DIRECT))
        return -ENOTSUP;
    if (c->flags & VOLLEY__C_RX_LENT)
        return -EBUSY;
    if ((c->flags & VOLLEY__C_EOF) || c->state >= VOLLEY__CS_ENDING)
        return -ESHUTDOWN;
    c->rx_buf = buf;
    c->rx_len = n > VOLLEY__DGRAM_MAX ? VOLLEY__DGRAM_MAX : n; /* one recv(2) */
    c->rx_tag = tag;
    c->flags |= VOLLEY__C_RX_LENT;
    if (c->state == VOLLEY__CS_OPEN)
        c->loop->ops->recv_into(c);
    return 0;
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
    const volley_loop *l = c->loop;
    size_t chunks = l->pool.chunks_out + n / VOLLEY__CHUNK + 1;
    if (chunks <= l->sendq_budget / VOLLEY__CHUNK)
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
    if (!used || (used < c->sendq_max && n + extra <= c->sendq_max - used &&
                  (extra || !over_send_share(c, used, n))))
        return 0;
    c->flags |= VOLLEY__C_SAID_AGAIN;
    return -EAGAIN;
}

static void queued(volley_conn *c)
{
    c->st.writes++;
    flush_later(c);
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
    if (n && (r = volley__sendq_write(&c->sq, &c->loop->pool, buf, n)) < 0)
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
    if ((r = volley__sendq_write_ref(&c->sq, &c->loop->pool, buf, n, tag)) < 0)
        return r;
    if (c->sq.done_head) {
        /* a zero-length buffer behind nothing finished at once */
        c->done_ok = done_count(c);
        ready(c, VOLLEY_EV_SENT);
    }
    queued(c);
    return 0;
}

int volley_conn_wait_drained(volley_conn *c, int timeout_ms)
{
    int r = writable(c);
    if (r < 0)
        return r;
    c->pending &= ~P_TO_DRAIN;
    if (!c->sq.bytes && !(c->flags & VOLLEY__C_SENDING)) {
        c->flags &= ~VOLLEY__C_WAIT_DRAIN;
        c->dl_drain = 0;
        timer_sync(c);
        ready(c, VOLLEY_EV_DRAINED);
        return 0;
    }
    c->flags |= VOLLEY__C_WAIT_DRAIN;
    c->dl_drain = deadline_in(timeout_ms);
    timer_sync(c);
    return 0;
}

/* Buffered bytes are dropped and reading stops when the caller closes. */
static void drop_reads(volley_conn *c)
{
    (void)volley__readq_clear(&c->rq, &c->loop->bufs);
    c->pending &= ~(EV(VOLLEY_EV_READABLE) | P_TO_READ | EV(VOLLEY_EV_EOF));
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
    flush_later(c);
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
        conn_end(c, 0, false);
        return 0;
    }
    if (c->state == VOLLEY__CS_OPEN)
        c->state = VOLLEY__CS_FLUSHING; /* CONNECTING: flushes once connected */
    c->dl_linger = deadline_in((int)c->loop->linger_ms);
    timer_sync(c);
    recv_sync(c);
    flush_later(c);
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
    conn_end(c, -ECANCELED, !(c->flags & VOLLEY__C_LISTENER));
    return 0;
}
