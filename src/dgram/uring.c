/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend.
 *
 * Receive: one multishot recvmsg per socket fills buffers from a
 * registered provided-buffer ring, so a steady stream needs no system call
 * at all: volley_recv reaps completions the kernel already posted. Buffers
 * handed to the caller go back to the ring at the next volley_recv. When
 * the ring runs dry the kernel ends the multishot with ENOBUFS; data waits
 * in the socket until it is armed again.
 *
 * Send: with no zero-copy asked for, one sendmmsg per batch, as the mmsg
 * backend sends (volley bench measured it faster than the chain below:
 * uring/mmsg without GSO went from 0.75x to 0.92x). With zc_threshold set:
 * messages are built as for sendmmsg (GSO runs included), copied into
 * send slots (the caller's buffers are free when volley_send returns), and
 * submitted as one linked chain with one io_uring_enter per batch. Each
 * carries MSG_DONTWAIT, so a full socket answers EAGAIN at once instead of
 * parking the request, and the link cancels everything behind a failure:
 * the outcome is sendmmsg's, the count up to the first failure or its
 * error, with order kept. (Unlinked requests were measured faster, but a
 * send buffer that drained mid-batch let later datagrams overtake one that
 * got EAGAIN: it could then only be reported lost.)
 *
 * Zero-copy (opts.zc_threshold): SENDMSG_ZC, and a slot is reused only
 * after the kernel's notification completion says it let go of the pages.
 */
#include "uring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void on_recv_cqe(volley_sock *s, const struct io_uring_cqe *cqe)
{
    struct uring *u = U(s);
    bool current = cqe->user_data == TAG_RECV(u->gen);
    if (current && !(cqe->flags & IORING_CQE_F_MORE))
        u->armed = false; /* ended: ENOBUFS, CQ overflow or cancel */
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        /* Every reaped buffer has a distinct id, so this never overflows. */
        unsigned i = (u->rxq_head + u->rxq_n++) % u->nbufs;
        u->rxq[i] = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        u->rxq_res[i] = cqe->res;
        u->rxq_flags[i] = cqe->flags;
        return;
    }
    if (cqe->res == -ENOBUFS)
        s->st.rx_ring_empty++;
    else if (cqe->res == -ECANCELED || cqe->res >= 0)
        return;
    else if (volley__err_is_async(cqe->res))
        volley__err_async(s, cqe->res);
    else {
        s->st.rx_errors++;
        volley__err_count(s, cqe->res);
    }
}

/* Run the task work the kernel left for this thread (receives that
 * finished arriving), which posts their completions. */
static void run_task_work(volley_sock *s, uint64_t *syscalls)
{
    struct uring *u = U(s);
    if (u->shared) /* the loop's polls run it */
        return;
    if (IO_URING_READ_ONCE(*u->ring->sq.kflags) &
        (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) {
        (void)volley__sys_uring_submit(u->ring);
        (*syscalls)++;
    }
}

/* Take every posted completion. */
void volley__uring_reap(volley_sock *s)
{
    struct uring *u = U(s);
    if (u->shared) { /* the loop hands ours back (uring_ring_cqe) */
        volley__hosted_reap(s);
        return;
    }
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(u->ring, head, cqe)
    {
        if (cqe->user_data >= TAG_SEND)
            volley__uring_on_send_cqe(s, cqe);
        else if ((cqe->user_data & 0xff) == 1)
            on_recv_cqe(s, cqe);
        n++;
    }
    io_uring_cq_advance(u->ring, n);
    if (n)
        u->efd_dirty = true;
    volley__uring_slots_release(u);
}

/* Submit queued entries (or flush overflowed completions). */
int volley__uring_enter(volley_sock *s, uint64_t *syscalls)
{
    int r = volley__sys_uring_submit(U(s)->ring);
    (*syscalls)++;
    return r < 0 ? r : 0;
}

/* Entries queued but not yet submitted (a submit that kept failing) go
 * now, so nothing taken waits for the next volley_send. */
static void flush_queued(volley_sock *s, uint64_t *syscalls)
{
    if (io_uring_sq_ready(U(s)->ring))
        (void)volley__uring_enter(s, syscalls);
}

/* ---- receive ---- */

static int arm(volley_sock *s)
{
    struct uring *u = U(s);
    struct io_uring_sqe *sqe = io_uring_get_sqe(u->ring);
    if (!sqe) {
        int r = volley__uring_enter(s, &s->st.rx_syscalls);
        if (r < 0 || !(sqe = io_uring_get_sqe(u->ring)))
            return r < 0 ? r : -EBUSY;
    }
    io_uring_prep_recvmsg_multishot(sqe, s->fd, &u->rxhdr, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = (uint16_t)u->bgid;
    u->gen = (u->gen + 1) & GEN_MASK;
    io_uring_sqe_set_data64(sqe, utag(u, TAG_RECV(u->gen)));
    int r = volley__uring_enter(s, &s->st.rx_syscalls);
    if (r < 0)
        return r;
    u->armed = true;
    u->armed_by = pthread_self();
    s->st.rx_rearms++;
    return 0;
}

/* io_uring finishes a receive in the thread that armed it, and with
 * cooperative task running only when that thread enters the kernel. When
 * another thread has taken over receiving, move the multishot to it:
 * cancel the old one (its data stays in the socket) and arm a new one. */
static int follow_thread(volley_sock *s)
{
    struct uring *u = U(s);
    if (u->shared || !u->armed || pthread_equal(u->armed_by, pthread_self()))
        return 0;
    struct io_uring_sqe *sqe = io_uring_get_sqe(u->ring);
    if (sqe) {
        io_uring_prep_cancel64(sqe, utag(u, TAG_RECV(u->gen)), 0);
        io_uring_sqe_set_data64(sqe, utag(u, TAG_CANCEL));
    }
    u->armed = false;
    return arm(s);
}

/* Give the buffers of the previous volley_recv back to the kernel. */
static void give_back(struct uring *u)
{
    int mask = io_uring_buf_ring_mask(u->nbufs);
    for (unsigned i = 0; i < u->nloaned; i++)
        io_uring_buf_ring_add(u->br, buf_addr(u, u->loaned[i]), (unsigned)u->buf_size,
                              u->loaned[i], mask, (int)i);
    io_uring_buf_ring_advance(u->br, (int)u->nloaned);
    u->nloaned = 0;
}

/* Turn one reaped buffer into a pending entry; bounds-checked against what
 * the kernel says it wrote. False if the record is malformed. */
static bool stage_buffer(volley_sock *s, unsigned bid, int res)
{
    struct uring *u = U(s);
    uint8_t *buf = buf_addr(u, bid);
    u->loaned[u->nloaned++] = (uint16_t)bid;
    struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, res, &u->rxhdr);
    if (!o || res > (int)u->buf_size)
        return false;
    socklen_t namelen = o->namelen < NAME_SPACE ? o->namelen : NAME_SPACE;
    size_t ctrllen = o->controllen < VOLLEY__RX_CTRL ? o->controllen : VOLLEY__RX_CTRL;
    uint8_t *payload = io_uring_recvmsg_payload(o, &u->rxhdr);
    size_t len = io_uring_recvmsg_payload_length(o, res, &u->rxhdr);
    bool trunc = (o->flags & MSG_TRUNC) || o->payloadlen > len;
    volley__msg_stage(s, payload, len, trunc, io_uring_recvmsg_name(o), namelen,
                      (uint8_t *)io_uring_recvmsg_name(o) + NAME_SPACE, ctrllen);
    return true;
}

static unsigned take_received(volley_sock *s, unsigned want)
{
    struct uring *u = U(s);
    unsigned staged = 0;
    while (u->rxq_n && staged < want) {
        unsigned i = u->rxq_head;
        u->rxq_head = (u->rxq_head + 1) % u->nbufs;
        u->rxq_n--;
        if (stage_buffer(s, u->rxq[i], u->rxq_res[i]))
            staged++;
        else
            s->st.rx_errors++;
    }
    return staged;
}

/* Reset the eventfd so a level-triggered poller sleeps until the next
 * completion. Only needed once after completions were reaped: while none
 * were, it has not been signalled since the last reset, or the completion
 * that signalled it is still in the queue. */
static void reset_eventfd(volley_sock *s, uint64_t *syscalls)
{
    struct uring *u = U(s);
    if (!u->efd_dirty)
        return;
    u->efd_dirty = false;
    (void)volley__sys_eventfd_read(u->efd);
    (*syscalls)++;
}

/* Everything a receive starts with: the caller's buffers back to the ring,
 * queued sends out, the multishot in this thread and armed, completions
 * reaped. 0 or a negative errno. */
static int recv_prepare(volley_sock *s)
{
    struct uring *u = U(s);
    give_back(u);
    flush_queued(s, &s->st.tx_syscalls);
    int r = follow_thread(s);
    if (r < 0)
        return r;
    run_task_work(s, &s->st.rx_syscalls);
    volley__uring_reap(s);
    if (!u->armed && u->rxq_n == 0) {
        r = arm(s);
        if (r < 0) {
            s->st.rx_errors++;
            volley__err_count(s, r);
            return r;
        }
        volley__uring_reap(s);
    }
    return 0;
}

static int uring_recv(volley_sock *s, struct volley_dgram *d, unsigned n)
{
    int r = recv_prepare(s);
    if (r < 0)
        return r;
    unsigned want = n < s->rx_batch ? n : s->rx_batch;
    if (!take_received(s, want)) {
        /* Reset the readiness signal, then look once more: a completion
         * posted in between sets it again. */
        reset_eventfd(s, &s->st.rx_syscalls);
        volley__uring_reap(s);
        if (!take_received(s, want)) {
            s->st.rx_wouldblock++;
            return 0;
        }
    }
    return (int)volley__msg_deliver(s, d, n);
}

static int wait_cqe(volley_sock *s, int timeout_ms);

/* What is there, else one io_uring_enter that sleeps until a completion
 * (running the receive's task work), then what came. The eventfd is not
 * reset: a caller that sleeps here is not polling it, and the next
 * volley_recv resets it. */
static int uring_recv_wait(volley_sock *s, struct volley_dgram *d, unsigned n,
                           int timeout_ms)
{
    int r = recv_prepare(s);
    if (r < 0)
        return r;
    unsigned want = n < s->rx_batch ? n : s->rx_batch;
    if (!take_received(s, want) && timeout_ms != 0) {
        r = wait_cqe(s, timeout_ms);
        if (r < 0)
            return r;
        volley__uring_reap(s);
        (void)take_received(s, want);
    }
    if (!volley__msg_pending(s)) {
        s->st.rx_wouldblock++;
        return 0;
    }
    return (int)volley__msg_deliver(s, d, n);
}

/* ---- waiting ---- */

static int ready_mask(volley_sock *s, unsigned events, unsigned errs)
{
    struct uring *u = U(s);
    int ready = 0;
    if (events & VOLLEY_WAIT_RECV && (volley__msg_pending(s) || u->rxq_n))
        ready |= VOLLEY_WAIT_RECV;
    if (events & VOLLEY_WAIT_SEND && volley__uring_can_send(u) && !u->sock_full)
        ready |= VOLLEY_WAIT_SEND;
    if (s->err_count > errs)
        ready |= VOLLEY_WAIT_ERR;
    return ready;
}

/* Sleep in io_uring_enter until a completion is posted or timeout_ms
 * passes (-1: no limit). 0 either way, or a negative errno. */
static int wait_cqe(volley_sock *s, int timeout_ms)
{
    struct uring *u = U(s);
    struct __kernel_timespec ts = {timeout_ms / 1000,
                                   (long long)(timeout_ms % 1000) * 1000000};
    s->st.rx_syscalls++;
    int r = u->shared ? volley__hosted_pump(s, timeout_ms)
                      : volley__sys_uring_wait(u->ring, timeout_ms < 0 ? NULL : &ts);
    return r == -ETIME || r == -EINTR || r == -EAGAIN || r >= 0 ? 0 : r;
}

static int uring_wait(volley_sock *s, unsigned events, int timeout_ms)
{
    struct uring *u = U(s);
    unsigned errs = s->err_count;
    flush_queued(s, &s->st.tx_syscalls);
    if (events & VOLLEY_WAIT_RECV) {
        int r = follow_thread(s);
        if (r < 0)
            return r;
    }
    run_task_work(s, &s->st.rx_syscalls);
    for (bool polled = false;; polled = true) {
        volley__uring_reap(s);
        int ready = ready_mask(s, events, errs);
        if (ready || polled)
            return ready;
        /* Reset the signal, then look again: a completion posted before
         * the reset is in the queue now, one after it sets it again. */
        reset_eventfd(s, &s->st.rx_syscalls);
        volley__uring_reap(s);
        ready = ready_mask(s, events, errs);
        if (ready)
            return ready;
        /* Data waiting in the socket itself (the ring ran dry while the
         * caller held every buffer, so the receive is unarmed), or a send
         * the socket refused for lack of room: those the socket tells. */
        short sock = (!u->armed && events & VOLLEY_WAIT_RECV ? POLLIN : 0) |
                     (u->sock_full && events & VOLLEY_WAIT_SEND ? POLLOUT : 0);
        /* Else everything that can make us ready is a completion: wait on
         * the ring itself, one hop shorter than its eventfd. */
        if (!sock) {
            int r = wait_cqe(s, timeout_ms);
            if (r < 0)
                return r;
            continue;
        }
        struct pollfd p[2] = {
            {.fd = u->shared ? u->ring->ring_fd : u->efd, .events = POLLIN},
            {.fd = s->fd, .events = sock}};
        int r = volley__sys_poll(p, 2, timeout_ms);
        s->st.rx_syscalls++;
        if (r < 0 && r != -EINTR)
            return r;
        if (p[1].revents & POLLOUT)
            u->sock_full = false;
        if (p[1].revents & (POLLIN | POLLOUT))
            return (p[1].revents & POLLIN ? VOLLEY_WAIT_RECV : 0) |
                   ready_mask(s, events & VOLLEY_WAIT_SEND, errs);
        if (r <= 0)
            return 0;
    }
}

/* ---- lifetime ---- */

/* Cancel the multishot and let every send finish, so the kernel holds no
 * pointer into memory about to be freed. Bounded: the ring is torn down
 * by the kernel anyway when its fd closes. */
static void quiesce(volley_sock *s)
{
    struct uring *u = U(s);
    struct io_uring_sqe *sqe = u->armed ? io_uring_get_sqe(u->ring) : NULL;
    if (sqe) {
        io_uring_prep_cancel64(sqe, utag(u, TAG_RECV(u->gen)), 0);
        io_uring_sqe_set_data64(sqe, utag(u, TAG_CANCEL));
    }
    (void)volley__sys_uring_submit(u->ring); /* also sends still queued */
    for (int i = 0; i < 200 && (u->armed || volley__uring_slots_busy(u)); i++) {
        struct __kernel_timespec ts = {0, 5 * 1000 * 1000};
        if (u->shared) {
            (void)volley__hosted_pump(s, 5);
            continue;
        }
        (void)volley__sys_uring_wait(u->ring, &ts);
        volley__uring_reap(s);
    }
}

static void uring_close(volley_sock *s)
{
    struct uring *u = U(s);
    if (!u)
        return;
    if (u->shared) {
        quiesce(s);
        if (u->br_registered)
            volley__sys_uring_unregister_buf_ring(u->ring, (int)u->bgid);
    } else if (u->ring && u->ring->ring_fd > 0) {
        quiesce(s);
        volley__sys_uring_exit(u->ring, u->br_registered ? BGID : -1);
    }
    volley__sys_munmap(u->br, u->br_bytes);
    if (u->efd >= 0)
        volley__sys_close(u->efd);
    free(u->bufs);
    free(u->rxq);
    free(u->rxq_res);
    free(u->rxq_flags);
    free(u->loaned);
    free(u->slots);
    free(u->arena);
    free(u);
    s->priv = NULL;
    s->poll_fd = -1;
}

static unsigned pow2_at_least(unsigned v)
{
    unsigned p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* Where a received payload starts in its buffer: after the kernel's
 * header, the name and the control space, on a cache line. */
#define PAYLOAD_OFF (sizeof(struct io_uring_recvmsg_out) + NAME_SPACE + VOLLEY__RX_CTRL)
_Static_assert(PAYLOAD_OFF % 64 == 0, "a received payload starts on a cache line");

static int alloc_state(volley_sock *s, struct uring *u)
{
    /* volley__opts_load bounded rx_ring_bufs; 2 * rx_batch may be larger */
    unsigned want = s->opts.rx_ring_bufs ? s->opts.rx_ring_bufs : 2 * s->rx_batch;
    if (want > VOLLEY__RING_BUFS_MAX)
        want = VOLLEY__RING_BUFS_MAX;
    u->nbufs = pow2_at_least(want < 2 ? 2 : want);
    u->rxhdr.msg_namelen = NAME_SPACE;
    u->rxhdr.msg_controllen = VOLLEY__RX_CTRL;
    u->buf_size = volley__slot_stride(PAYLOAD_OFF + s->slot_size);
    u->bufs = volley__slab_alloc(u->nbufs, u->buf_size);
    u->rxq = calloc(u->nbufs, sizeof *u->rxq);
    u->rxq_res = calloc(u->nbufs, sizeof *u->rxq_res);
    u->rxq_flags = calloc(u->nbufs, sizeof *u->rxq_flags);
    u->loaned = calloc(u->nbufs, sizeof *u->loaned);
    u->nslots = VOLLEY_BATCH_MAX;
    u->slots = calloc(u->nslots, sizeof *u->slots);
    u->arena_size = s->opts.tx_arena ? s->opts.tx_arena : DEFAULT_ARENA;
    u->arena = volley__slab_alloc(1, u->arena_size);
    s->tx_max = u->arena_size; /* a datagram is copied whole into the arena */
    if (!u->bufs || !u->rxq || !u->rxq_res || !u->rxq_flags || !u->loaned || !u->slots ||
        !u->arena)
        return -ENOMEM;
    u->br_bytes = (size_t)u->nbufs * sizeof(struct io_uring_buf);
    void *br;
    int r = volley__sys_mmap(u->br_bytes, &br);
    if (r < 0)
        return r;
    u->br = br;
    return 0;
}

/* What a step of setting io_uring up answered (the ring, its registrations,
 * the first receive): a kernel without
 * it (ENOSYS), one that refuses it by policy (EPERM: sysctl or seccomp) or
 * lacks what this backend needs (EINVAL, EOPNOTSUPP from an older kernel)
 * means "not available here"; any other failure (EMFILE, ENOMEM, ...) is
 * reported as itself. */
static int unavailable(int r)
{
    return r == -ENOSYS || r == -EPERM || r == -EINVAL || r == -EOPNOTSUPP ? -ENOTSUP : r;
}

/* Zero-copy needs an IP socket (AF_UNIX answers EOPNOTSUPP) and a kernel
 * that knows SENDMSG_ZC (Linux 6.1); elsewhere sends are copied. */
static bool zc_usable(const volley_sock *s, struct uring *u)
{
    if (!s->opts.zc_threshold || (s->family != AF_INET && s->family != AF_INET6))
        return false;
    return volley__sys_uring_has_op(u->ring, IORING_OP_SENDMSG_ZC) > 0 &&
           volley__sys_uring_has_op(u->ring, IORING_OP_SEND_ZC) > 0;
}

/* On a uring loop: the loop's ring, with a buffer group of this socket's
 * own; volley_fd is the loop's fd. */
static void join_ring(volley_sock *s, struct uring *u)
{
    u->ring = s->guest.ring;
    u->shared = true;
    s->guest.shared = true;
    u->tag_base = s->guest.tag_base;
    u->bgid = s->guest.bgid;
}

/* A ring of the socket's own. */
static int own_ring(struct uring *u)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    /* Cooperative task running: completions of the multishot receive are
     * finished when this thread next enters the kernel, not by
     * interrupting it (an inter-processor interrupt per wake-up, costly
     * in a VM). TASKRUN_FLAG tells us when such work waits. */
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    p.cq_entries = CQ_ENTRIES;
    int r = volley__sys_uring_init(SQ_ENTRIES, u->ring, &p);
    if (r == -EINVAL) { /* before Linux 5.19 */
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = CQ_ENTRIES;
        r = volley__sys_uring_init(SQ_ENTRIES, u->ring, &p);
    }
    if (r < 0) {
        u->own.ring_fd = -1;
        return unavailable(r);
    }
    return 0;
}

static int start_ring(volley_sock *s, struct uring *u)
{
    int r = u->shared ? 0 : own_ring(u);
    if (r < 0)
        return r;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)u->br;
    reg.ring_entries = u->nbufs;
    reg.bgid = (uint16_t)u->bgid;
    r = volley__sys_uring_register_buf_ring(u->ring, &reg);
    if (r < 0)
        return unavailable(r);
    u->br_registered = true;
    io_uring_buf_ring_init(u->br);
    for (unsigned i = 0; i < u->nbufs; i++)
        u->loaned[u->nloaned++] = (uint16_t)i;
    give_back(u);
    if (u->shared) {
        s->poll_fd = u->ring->ring_fd;
    } else {
        r = u->efd = volley__sys_eventfd();
        if (r < 0)
            return r;
        r = volley__sys_uring_register_eventfd(u->ring, u->efd);
        if (r < 0)
            return unavailable(r);
        s->poll_fd = u->efd;
    }
    u->zc_threshold = zc_usable(s, u) ? s->opts.zc_threshold : 0;
    return unavailable(arm(s));
}

static unsigned uring_ring_cqe(volley_sock *s, uint32_t tag, int32_t res, uint32_t flags)
{
    struct uring *u = U(s);
    struct io_uring_cqe cqe = {.user_data = tag, .res = res, .flags = flags};
    unsigned errs = s->err_count, bits = 0;
    if (tag >= TAG_SEND) {
        volley__uring_on_send_cqe(s, &cqe);
    } else if ((tag & 0xff) == 1) {
        bool was = u->armed;
        on_recv_cqe(s, &cqe);
        /* data, or a receive that ended: volley_recv takes the one and
         * re-arms the other */
        if (flags & IORING_CQE_F_BUFFER || (was && !u->armed))
            bits |= VOLLEY_WAIT_RECV;
    }
    volley__uring_slots_release(u);
    if (s->err_count > errs)
        bits |= VOLLEY_WAIT_ERR;
    return bits;
}

static int uring_init(volley_sock *s)
{
    struct uring *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->efd = -1;
    u->own.ring_fd = -1;
    u->ring = &u->own;
    u->bgid = BGID;
    s->priv = u;
    if (s->guest.ring)
        join_ring(s, u);
    int r = alloc_state(s, u);
    if (r == 0)
        r = start_ring(s, u);
    if (r < 0)
        uring_close(s);
    return r;
}

const struct volley_backend volley__backend_uring = {
    .name = "uring",
    .id = VOLLEY_BACKEND_URING,
    .caps = VOLLEY__BE_KERNEL | VOLLEY__BE_OFFLOAD | VOLLEY__BE_CHECKS,
    .init = uring_init,
    .send = volley__uring_send,
    .recv = uring_recv,
    .recv_wait = uring_recv_wait,
    .wait = uring_wait,
    .close = uring_close,
    .ring_cqe = uring_ring_cqe,
};
