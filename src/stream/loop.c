/* SPDX-License-Identifier: MIT */
/* The loop and its turn: opening and closing a loop, its options, the
 * clock, and volley_loop_poll.
 *
 * A turn of volley_loop_poll: release what the caller saw close, start the
 * sends that were queued, hand consumed buffers back, let the backend wait
 * and report, fire due deadlines, start the sends those reports allow, and
 * return the events owed, connection by connection, from the ready list
 * (conn.c). The other jobs of the stream core: listen.c (listen, dial,
 * accept), read.c (receiving and reads), write.c (sends, writes, close);
 * the backends (uring.c, epoll.c) move the bytes and report back through
 * the volley__conn_* calls of loop.h. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Receive buffers put to use when a loop opens; more as it needs them. */
#define BUFS_FIRST 64u

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
    o->sendq_budget = o->sendq_budget ? o->sendq_budget : VOLLEY__SENDQ_BUDGET;
    return 0;
}

static int loop_try(volley_loop *l, const struct volley__loop_ops *ops,
                    const struct volley_loop_opts *o)
{
    l->host.ops = &volley__loop_host_ops;
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
    l->pool.small_on = true;
    l->sendq_budget = o.sendq_budget;
    r = volley__bufs_init(&l->bufs, o.buf_count, o.buf_size, BUFS_FIRST);
    if (r < 0) {
        free(l);
        return r;
    }
    r = volley__sys_notify_open(&l->wake);
    if (r < 0) {
        volley__bufs_free(&l->bufs);
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
    if (r == 0 && (r = l->ops->wake_watch(l)) < 0)
        l->ops->fini(l);
    if (r < 0) {
        volley__sys_notify_close(&l->wake);
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

int64_t volley_loop_timeout_ns(const volley_loop *l)
{
    if (!l)
        return -1;
    if (l->ready_head || l->flush_head || l->reap || l->fired_head || l->wake_owed)
        return 0;
    struct volley__timer *t = volley__timers_top(&l->timers);
    if (!t)
        return -1;
    int64_t left = t->at - volley__loop_now();
    return left > 0 ? left : 0;
}

int volley_loop_timeout(const volley_loop *l)
{
    return volley__ms_ceil(volley_loop_timeout_ns(l));
}

int volley_loop_get_stats(const volley_loop *l, struct volley_loop_stats *out,
                          size_t size)
{
    if (!l || !out || !size)
        return -EINVAL;
    struct volley_loop_stats st = l->st;
    st.total = l->gone;
    for (uint32_t i = 0; i < l->nslots; i++) {
        const volley_conn *c = volley__loop_slot(l, i);
        if (c->state == VOLLEY__STATE_FREE)
            continue;
        volley__stats_add(&st.total, &c->st);
        st.total.queued += c->sq.bytes;
        st.total.buffered += c->rq.bytes;
    }
    st.total.coalesced = volley__stats_coalesced(&st.total);
    st.bufs_live = l->bufs.live;
    st.bufs_held = l->bufs.held;
    st.over_share = l->over;
    st.sendq_mem = volley__segpool_mem(&l->pool);
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
                    c->done_ok = volley__conn_done_count(c);
                    if (c->sq.done_head)
                        volley__conn_ready(c, VOLLEY_EV_SENT);
                } else {
                    c->flags |= VOLLEY__C_SENDING;
                    l->ops->send(c);
                }
            }
            volley__conn_close_progress(c);
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
        volley__timers_del(&l->timers, t);
        if (t->kind == VOLLEY__TIMER_USER) {
            volley__timer_due(l, t, now);
            continue;
        }
        volley_conn *c = (volley_conn *)((char *)t - offsetof(volley_conn, timer));
        if (c->dl_connect && c->dl_connect <= now) {
            c->dl_connect = 0;
            volley__conn_end(c, -ETIMEDOUT, false);
            continue;
        }
        if (c->dl_want && c->dl_want <= now && (c->flags & VOLLEY__C_LISTENER)) {
            c->dl_want = 0; /* a listener's rest is over */
            if (c->state == VOLLEY__CS_OPEN && l->ops->accept(c, true) < 0)
                c->dl_want = volley__deadline_in(VOLLEY__ACCEPT_PAUSE_MS);
        }
        if (c->dl_want && c->dl_want <= now) {
            c->dl_want = 0;
            c->want = 1;
            volley__conn_ready(c, VOLLEY_EV_TIMEOUT);
            c->pending |= VOLLEY__P_TO_READ;
        }
        if (c->dl_drain && c->dl_drain <= now) {
            c->dl_drain = 0;
            c->flags &= ~VOLLEY__C_WAIT_DRAIN;
            volley__conn_ready(c, VOLLEY_EV_TIMEOUT);
            c->pending |= VOLLEY__P_TO_DRAIN;
        }
        if (c->dl_linger && c->dl_linger <= now) {
            c->dl_linger = 0;
            /* closed while connecting, or still flushing: linger_ms bounds
             * the close either way */
            if (c->state == VOLLEY__CS_CONNECTING || c->state == VOLLEY__CS_FLUSHING) {
                volley__conn_end(c, -ETIMEDOUT, true);
                continue;
            }
            if (c->state == VOLLEY__CS_LINGER) {
                volley__conn_end(c, 0, false);
                continue;
            }
        }
        volley__conn_timer_sync(c); /* the deadlines still ahead */
    }
}

static void turn_reap(volley_loop *l)
{
    while (l->reap) {
        volley_conn *c = l->reap;
        l->reap = c->ready_next;
        volley__conn_release(c);
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
        volley_conn *c = volley__loop_slot(l, i);
        if (c->state == VOLLEY__STATE_FREE ||
            !(c->flags & (VOLLEY__C_STARVED | VOLLEY__C_OVER)))
            continue;
        if (c->flags & VOLLEY__C_STARVED) {
            c->flags &= ~VOLLEY__C_STARVED;
            l->starved--;
        }
        volley__conn_recv_sync(c);
    }
}

/* One turn: flush, wait up to timeout_ns (negative: no limit) or until
 * the first deadline, whichever is sooner, to the nanosecond, then fire
 * the deadlines that are due. */
static int turn(volley_loop *l, int64_t timeout_ns)
{
    turn_flush(l);
    turn_bufs(l);
    if (l->ready_head || l->dgrams_owed || l->fired_head || l->wake_owed)
        timeout_ns = 0;
    struct volley__timer *t = volley__timers_top(&l->timers);
    if (t && timeout_ns != 0) {
        int64_t left = t->at - volley__loop_now();
        if (left < 0)
            left = 0;
        if (timeout_ns < 0 || left < timeout_ns)
            timeout_ns = left;
    }
    int r = l->ops->wait(l, timeout_ns);
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
    int64_t timeout_ns = timeout_ms < 0 ? -1 : (int64_t)timeout_ms * VOLLEY__NS_PER_MS;
    int64_t end = timeout_ns > 0 ? volley__loop_now() + timeout_ns : 0;
    for (;;) {
        int r = turn(l, timeout_ns);
        unsigned k = volley__loop_emit(l, ev, n);
        if (k)
            return (int)k;
        /* a signal ends the wait, so the caller can look at its flags */
        if (r < 0 && r != -ETIME && r != -EAGAIN && r != -EBUSY)
            return r;
        if (timeout_ns == 0)
            return 0;
        if (timeout_ns > 0) {
            timeout_ns = end - volley__loop_now();
            if (timeout_ns <= 0)
                return 0;
        }
    }
}

/* Abort every connection still alive (listeners just stop). */
static void abort_all(volley_loop *l)
{
    for (uint32_t i = 0; i < l->nslots; i++) {
        volley_conn *c = volley__loop_slot(l, i);
        if (c->state != VOLLEY__STATE_FREE && c->state < VOLLEY__CS_ENDING)
            volley__conn_end(c, -ECANCELED, !(c->flags & VOLLEY__C_LISTENER));
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
            volley_conn *c = volley__loop_slot(l, i);
            if (c->state == VOLLEY__STATE_FREE || c->state >= VOLLEY__CS_ENDING)
                continue;
            if (c->flags & VOLLEY__C_LISTENER)
                volley__conn_end(c, -ECANCELED, false);
            else if (c->state == VOLLEY__CS_CONNECTING)
                volley__conn_end(c, -ECANCELED, true);
            else if (c->state == VOLLEY__CS_OPEN) {
                c->state = VOLLEY__CS_FLUSHING;
                c->flags |= VOLLEY__C_CLOSED_BY_US;
                volley__conn_flush_later(c);
            }
        }
    }
    int64_t now = volley__loop_now();
    int64_t drain_end = drain_ms > 0 ? now + (int64_t)drain_ms * VOLLEY__NS_PER_MS : 0;
    /* After the abort, the cancellations it starts complete at once; a
     * kernel that does not complete them within this is given up on: the
     * ring's own release below still cancels and waits for them. */
    int64_t reap_end = drain_ms == 0 ? now + 2000 * VOLLEY__NS_PER_MS : 0;
    while (l->st.conns > 0) {
        now = volley__loop_now();
        if (drain_end && now >= drain_end) {
            abort_all(l);
            drain_end = 0;
            reap_end = now + 2000 * VOLLEY__NS_PER_MS;
        }
        if (reap_end && now >= reap_end)
            break;
        /* What lingers has sent everything: it need not hold the close up. */
        for (uint32_t i = 0; i < l->nslots; i++)
            if (volley__loop_slot(l, i)->state == VOLLEY__CS_LINGER)
                volley__conn_end(volley__loop_slot(l, i), 0, false);
        /* Events are not returned: what was owed is dropped with the conn. */
        (void)turn(l, 10);
        for (uint32_t i = 0; i < l->nslots; i++) {
            volley_conn *c = volley__loop_slot(l, i);
            c->flags &= ~VOLLEY__C_READY;
            if (c->state == VOLLEY__CS_ENDED)
                volley__conn_release(c);
        }
        l->ready_head = l->ready_tail = NULL;
    }
    l->ops->fini(l);
    volley__sys_notify_close(&l->wake);
    volley__timer_free_all(l);
    for (uint32_t i = 0; i < l->nslots; i++) {
        volley_conn *c = volley__loop_slot(l, i);
        if (c->state != VOLLEY__STATE_FREE && c->fd >= 0)
            volley__sys_close(c->fd); /* only when given up on above */
        free(c->un);
        free(c->rx);
    }
    for (uint32_t b = 0; b * VOLLEY__CONN_BLOCK < l->nslots; b++)
        free(l->blocks[b]);
    free(l->blocks);
    while (l->copts) { /* the connections given up on above still had theirs */
        struct volley__copts *o = l->copts;
        l->copts = o->next;
        free(o);
    }
    while (l->free_rx) {
        struct volley__direct *d = l->free_rx;
        l->free_rx = d->next;
        free(d);
    }
    volley__segpool_free(&l->pool);
    volley__timers_free(&l->timers);
    volley__bufs_free(&l->bufs);
    free(l);
}
