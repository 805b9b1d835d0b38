/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's send (uring.c has the rest): with no zero-copy
 * asked for, one sendmmsg per batch; with zc_threshold set, messages are
 * copied into send slots and their payload arena and submitted as one
 * linked chain (uring.c's opening comment says why). A slot is reused once
 * its completion, and for zero-copy the kernel's notification, came.
 */
#include "uring.h"

#include <errno.h>
#include <string.h>

#if VOLLEY_TESTING
bool volley__uring_poison;
#define POISONING volley__uring_poison
#else
#define POISONING false
#endif

/* ---- send slots and the payload arena ---- */

/* Where len contiguous arena bytes would go: the ring wraps by skipping the
 * tail gap, charged to the slot so release order stays FIFO. False when
 * they do not fit now. */
static bool arena_place(const struct uring *u, size_t len, size_t *off, size_t *charge)
{
    size_t head = u->a_used ? u->a_head : 0;
    size_t tail = (head + u->arena_size - u->a_used) % u->arena_size;
    if (u->a_used && head <= tail) { /* free space is [head, tail) */
        if (tail - head < len)
            return false;
        *off = head;
        *charge = len;
    } else if (u->arena_size - head >= len) {
        *off = head;
        *charge = len;
    } else if (tail >= len && u->a_used + (u->arena_size - head) + len <= u->arena_size) {
        *off = 0;
        *charge = (u->arena_size - head) + len;
    } else {
        return false;
    }
    return true;
}

/* len bytes at *off, taken up to the next cache line when there is room,
 * so that every payload starts on one (see volley__pages). */
static bool arena_alloc(struct uring *u, size_t len, size_t *off, size_t *charge)
{
    size_t take = volley__slot_stride(len);
    if (take > u->arena_size || !arena_place(u, take, off, charge)) {
        take = len;
        if (!arena_place(u, take, off, charge))
            return false;
    }
    u->a_head = *off + take;
    if (u->a_head == u->arena_size)
        u->a_head = 0;
    u->a_used += *charge;
    return true;
}

/* Release finished slots from the FIFO's tail. */
void volley__uring_slots_release(struct uring *u)
{
    while (u->slot_tail != u->slot_head) {
        struct slot *sl = &u->slots[u->slot_tail % u->nslots];
        if (sl->state != SLOT_DONE)
            break;
        u->a_used -= sl->charge;
        if (POISONING)
            memset(u->arena + sl->arena_off, 0xa5, sl->bytes);
        sl->state = SLOT_FREE;
        u->slot_tail++;
    }
}

unsigned volley__uring_slots_busy(const struct uring *u)
{
    return (unsigned)(u->slot_head - u->slot_tail);
}

/* ---- completions ---- */

/* A send finished after its call returned: account for it here. */
static void late_send_result(volley_sock *s, struct slot *sl)
{
    if (sl->res >= 0) {
        s->st.tx_dgrams += sl->ndgram;
        s->st.tx_bytes += sl->bytes;
        s->st.tx_gso_sends += sl->gso;
        return;
    }
    s->st.tx_errors += sl->ndgram;
    if (sl->res == -ECANCELED) {
        s->st.tx_cancelled++;
        return;
    }
    struct volley_sockerr e;
    memset(&e, 0, sizeof e);
    e.error = sl->res;
    e.dest = sl->peer;
    volley__err_count(s, sl->res);
    volley__err_push(s, &e);
}

void volley__uring_on_send_cqe(volley_sock *s, const struct io_uring_cqe *cqe)
{
    struct uring *u = U(s);
    struct slot *sl = &u->slots[(uint32_t)cqe->user_data % u->nslots];
    if (cqe->flags & IORING_CQE_F_NOTIF) {
        sl->state = SLOT_DONE; /* the kernel is done with the pages */
        return;
    }
    sl->res = cqe->res;
    sl->completed = true;
    /* A zero-copy send that went out owes a notification later. */
    sl->state = (cqe->flags & IORING_CQE_F_MORE) ? SLOT_NOTIF : SLOT_DONE;
    if (!sl->call_owned)
        late_send_result(s, sl);
}

/* ---- send ---- */

/* Copy built message j into a fresh slot; NULL when out of room. */
static struct slot *fill_slot(volley_sock *s, unsigned j, const struct volley_dgram *d)
{
    struct uring *u = U(s);
    const struct msghdr *m = &s->tx_msgs[j].msg_hdr;
    const struct volley__txinfo *t = &s->tx_info[j];
    if (volley__uring_slots_busy(u) == u->nslots)
        return NULL;
    size_t off = 0, charge = 0;
    /* t->bytes never exceeds the arena: s->tx_max is its size. */
    if (t->bytes && !arena_alloc(u, t->bytes, &off, &charge)) {
        u->tx_want = t->bytes;
        return NULL;
    }
    u->tx_want = 0;
    struct slot *sl = &u->slots[u->slot_head++ % u->nslots];
    size_t pos = 0;
    for (size_t k = 0; k < m->msg_iovlen; k++) {
        size_t len = m->msg_iov[k].iov_len;
        if (len) /* an empty datagram's data may be NULL */
            memcpy(u->arena + off + pos, m->msg_iov[k].iov_base, len);
        pos += len;
    }
    memset(&sl->m, 0, sizeof sl->m);
    sl->iov = (struct iovec){u->arena + off, t->bytes};
    sl->m.msg_iov = &sl->iov;
    sl->m.msg_iovlen = 1;
    if (m->msg_namelen) {
        memcpy(&sl->name, m->msg_name, m->msg_namelen);
        sl->m.msg_name = &sl->name;
        sl->m.msg_namelen = m->msg_namelen;
    }
    if (m->msg_controllen) {
        memcpy(sl->ctrl, m->msg_control, m->msg_controllen);
        sl->m.msg_control = sl->ctrl;
        sl->m.msg_controllen = m->msg_controllen;
    }
    sl->peer = d[t->first].peer;
    sl->arena_off = off;
    sl->charge = charge;
    sl->ndgram = t->ndgram;
    sl->bytes = t->bytes;
    sl->gso = t->gso;
    sl->zc = u->zc_threshold && t->bytes >= u->zc_threshold;
    sl->res = 0;
    sl->state = SLOT_INFLIGHT;
    sl->call_owned = true;
    sl->completed = false;
    return sl;
}

static void prep_send(volley_sock *s, struct io_uring_sqe *sqe, struct slot *sl,
                      unsigned idx)
{
    /* MSG_DONTWAIT: a full socket answers EAGAIN now instead of parking
     * the request on a poll, so every send finishes inside the submit and
     * its result is known before volley_send returns. A connected socket
     * with nothing per-datagram to say takes the plain send opcodes. */
    bool plain = !sl->m.msg_name && !sl->m.msg_control;
    if (plain && sl->zc)
        io_uring_prep_send_zc(sqe, s->fd, sl->iov.iov_base, sl->iov.iov_len, MSG_DONTWAIT,
                              0);
    else if (plain)
        io_uring_prep_send(sqe, s->fd, sl->iov.iov_base, sl->iov.iov_len, MSG_DONTWAIT);
    else if (sl->zc)
        io_uring_prep_sendmsg_zc(sqe, s->fd, &sl->m, MSG_DONTWAIT);
    else
        io_uring_prep_sendmsg(sqe, s->fd, &sl->m, MSG_DONTWAIT);
    if (sl->zc)
        s->st.tx_zc_sends++;
    io_uring_sqe_set_data64(sqe, utag(U(s), TAG_SEND | idx));
}

/* Queue messages [from, nmsg) as one linked chain; returns how many. */
static unsigned queue_chain(volley_sock *s, const struct volley_dgram *d, unsigned from,
                            unsigned nmsg, struct slot **chain)
{
    struct uring *u = U(s);
    struct io_uring_sqe *prev = NULL;
    unsigned k = 0;
    for (unsigned j = from; j < nmsg && io_uring_sq_space_left(u->ring); j++, k++) {
        struct slot *sl = fill_slot(s, j, d);
        if (!sl)
            break;
        struct io_uring_sqe *sqe = io_uring_get_sqe(u->ring);
        prep_send(s, sqe, sl, (unsigned)((u->slot_head - 1) % u->nslots));
        if (prev)
            prev->flags |= IOSQE_IO_LINK;
        prev = sqe;
        chain[k] = sl;
    }
    return k;
}

/* Submit what is queued. A ring that is briefly busy (completions not yet
 * reaped) is retried; if entries still could not go in, they stay queued
 * and leave with the next submission, so they count as taken. */
static void submit(volley_sock *s)
{
    for (int i = 0; i < 16; i++) {
        int r = volley__uring_enter(s, &s->st.tx_syscalls);
        if (r != -EINTR && r != -EBUSY && r != -EAGAIN)
            return;
        volley__uring_reap(s);
    }
}

static void count_sent(volley_sock *s, const struct slot *sl)
{
    s->st.tx_dgrams += sl->ndgram;
    s->st.tx_bytes += sl->bytes;
    s->st.tx_gso_sends += sl->gso;
}

/* After the chain went in: messages [0, taken) were sent (or are still
 * running: reap() accounts for those when they finish), *err is the first
 * failure (0 if none). The link cancelled everything behind it: those
 * were never sent and stay the caller's. */
static unsigned judge_chain(volley_sock *s, struct slot **chain, unsigned k, int *err)
{
    unsigned taken = 0;
    *err = 0;
    for (; taken < k; taken++) {
        struct slot *sl = chain[taken];
        if (sl->completed && sl->res < 0) {
            *err = sl->res;
            break;
        }
        sl->call_owned = false;
        if (sl->completed)
            count_sent(s, sl);
    }
    return taken;
}

int volley__uring_send(volley_sock *s, const struct volley_dgram *d, unsigned n)
{
    unsigned done = 0;
    struct volley__txbuild b = {0};
    struct volley__retry rt = {0, 0};
    struct slot *chain[VOLLEY_BATCH_MAX];
    volley__uring_reap(s);
    /* One sendmmsg for the batch costs less than a linked chain of
     * per-message sendmsg requests (volley bench, uring vs mmsg rows), and
     * the caller's buffers need no copy: with no zero-copy asked for and
     * nothing in flight (so order holds), send as mmsg does. */
    /* (On a loop's ring, entries queued there are the loop's: with no
     * slot busy, none of them is this socket's.) */
    if (!U(s)->zc_threshold && volley__uring_slots_busy(U(s)) == 0 &&
        (U(s)->shared || !io_uring_sq_ready(U(s)->ring))) {
        /* The socket, not the ring, said "would block": waiting for SEND
         * then watches the socket for room. */
        uint64_t blocked = s->st.tx_wouldblock;
        int r = volley__mmsg_send(s, d, n);
        U(s)->sock_full = s->st.tx_wouldblock != blocked;
        return r;
    }
    while (volley__tx_more(&b, n)) {
        b.nmsg = b.niov = 0;
        volley__tx_build(s, d, n, &b);
        unsigned off = 0;
        while (off < b.nmsg) {
            unsigned k = queue_chain(s, d, off, b.nmsg, chain);
            if (k == 0) {
                /* Every slot is in flight: the rest stays the caller's. */
                return volley__tx_stopped(s, off, b.nmsg, done, -EAGAIN);
            }
            submit(s);
            volley__uring_reap(s);
            int err;
            unsigned taken = judge_chain(s, chain, k, &err);
            for (unsigned j = off; j < off + taken; j++)
                done += s->tx_info[j].ndesc;
            off += taken;
            if (taken) {
                volley__err_send_ok(s, &rt);
                volley__tx_gso_verdict(s, &b, true);
            }
            if (!err)
                continue;
            if (volley__err_send_retry(s, &rt, err))
                continue;
            if (volley__tx_gso_refused(s, &b, off, err))
                break;
            volley__tx_gso_verdict(s, &b, false);
            return volley__tx_stopped(s, off, b.nmsg, done, err);
        }
    }
    return volley__tx_result(&b, done);
}

/* Room for the message that found none last time, or else for a good
 * share of a batch. */
bool volley__uring_can_send(const struct uring *u)
{
    size_t off, charge;
    if (volley__uring_slots_busy(u) == u->nslots)
        return false;
    if (u->tx_want)
        return arena_place(u, u->tx_want, &off, &charge);
    return u->a_used < u->arena_size / 2;
}
