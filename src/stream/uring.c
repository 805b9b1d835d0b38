/* SPDX-License-Identifier: MIT */
/* The io_uring loop backend: one ring per loop, set up for one thread
 * (SINGLE_ISSUER + DEFER_TASKRUN where the kernel has them, COOP_TASKRUN
 * otherwise). Listeners accept with one multishot accept; connections
 * receive with one multishot recv each, into provided-buffer rings shared
 * by the whole loop (two, below), so an idle connection holds no buffer;
 * each has at most one send in flight (the core guarantees it), vectored
 * over what was queued. Every multishot operation is re-armed whenever a
 * completion arrives without IORING_CQE_F_MORE, whatever the reason, while
 * it is still wanted. Every operation carries its connection's slot and
 * generation, and a connection's socket is closed only when the last of
 * its operations has completed. A connection's socket also goes into the
 * ring's socket table, at its slot (fix, below), so that the operations
 * that follow find it without a descriptor lookup. */
#include "loop.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* The receive budget is split across two buffer rings. Multishot
 * receives draw from the first, which is never given more than would
 * bring the buffers held to half the budget: a multishot receive takes
 * buffers as fast as bytes arrive, before the core sees them and can pause
 * a connection over its share, so without the cap a burst from many
 * connections at once could take the whole budget. The rest goes to the
 * second ring, from which receives take one buffer each (armed again only
 * while the connection is within its share). */
#define BGID_MANY 0
#define BGID_ONE  1

/* Operations, in the low byte of a tag. */
enum {
    OP_ACCEPT = 1,
    OP_CONNECT,
    OP_RECV,
    OP_SEND,
    OP_CANCEL,
    OP_CANCEL_FD,
    OP_RECV_INTO,
    OP_SEND_ZC,
    OP_FIX,   /* the socket into the ring's table */
    OP_UNFIX, /* ... and out of it */
};

/* struct volley_conn.be_state */
#define U_ARMED     0x1u  /* the multishot accept or recv is in flight */
#define U_WANT      0x2u  /* ... and should stay so */
#define U_CANCELING 0x4u  /* a cancel of it is in flight */
#define U_CANCEL_FD 0x8u  /* the ending cancel of everything was sent */
#define U_ONE       0x10u /* the receive in flight is a single one (BGID_ONE) */
#define U_FIX_SENT  0x20u /* the socket was given to the table (OP_FIX) */
#define U_FIXING    0x40u /* ... and that has not completed yet */
#define U_FIXED     0x80u /* the socket is in the table: operations use it */
_Static_assert(U_FIXED * 2 - 1 <= UINT8_MAX, "every bit fits volley_conn.be_state");

/* The ring's socket table has an entry per connection slot, up to this
 * many: the kernel allocates the whole table at once (8 bytes an entry).
 * A connection in a slot beyond it, or on a kernel without the table,
 * has its socket looked up by descriptor for each operation. */
#define FIXED_MAX 16384u

/* What a send in flight needs until it completes, when the SQE alone does
 * not carry it: the message and iovecs of a vectored send, a zero-copy
 * send's result until its notification. Only busy connections hold one
 * (c->be_send), from the free list: it grows only when more connections
 * send at once, and a plain send of one span needs none. */
struct ur_send {
    struct msghdr msg;
    struct iovec iov[VOLLEY__SEND_IOV];
    ssize_t zc_res;
    struct ur_send *next;     /* on the free list */
    struct ur_send *all_next; /* every record, for ur_fini */
};

struct ur {
    struct io_uring ring;
    struct ur_send *free_sends, *all_sends;
    struct io_uring_buf_ring *br[2]; /* by group id */
    size_t br_bytes;                 /* each */
    uint32_t posted[2];              /* buffers given to each and not yet seen taken */
    bool br_registered[2];
    uint32_t nfixed; /* entries in the ring's socket table (0: none) */
    uint32_t fixed;  /* sockets in it */
    bool overflowed; /* the last look saw the CQ overflow flag */
    bool zc;         /* the kernel has SEND_ZC and SENDMSG_ZC */
};

#define UR(l) ((struct ur *)(l)->be)

/* An SQE, submitting what is queued first when the queue is full. NULL
 * only when even that fails: the caller reports the operation failed. */
static struct io_uring_sqe *sqe_get(volley_loop *l)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&UR(l)->ring);
    if (sqe)
        return sqe;
    l->st.syscalls++;
    if (volley__sys_uring_submit(&UR(l)->ring) < 0)
        return NULL;
    return io_uring_get_sqe(&UR(l)->ring);
}

static void put_buffer(volley_loop *l, uint32_t id)
{
    l->bufs.rel[l->bufs.nrel++] = id;
}

/* Consumed buffers go back: to the multishot ring while the buffers held
 * plus those it has stay within half the budget (buffers taken but not
 * yet reported count as still there, so the cap errs low), to the other
 * ring after that. */
static void ur_bufs_back(volley_loop *l)
{
    struct ur *u = UR(l);
    const struct volley__bufs *b = &l->bufs;
    int mask = io_uring_buf_ring_mask(b->count);
    uint32_t cap = b->held < b->count / 2 ? b->count / 2 - b->held : 0;
    int added[2] = {0, 0};
    for (uint32_t i = 0; i < b->nrel; i++) {
        uint32_t id = b->rel[i];
        int g = u->posted[BGID_MANY] < cap ? BGID_MANY : BGID_ONE;
        io_uring_buf_ring_add(u->br[g], volley__buf_addr(b, id), b->size,
                              (unsigned short)id, mask, added[g]++);
        u->posted[g]++;
    }
    for (int g = 0; g < 2; g++)
        io_uring_buf_ring_advance(u->br[g], added[g]);
    l->bufs.nrel = 0;
}

/* An operation's SQE addresses c's socket: by its entry in the ring's
 * table once it is there, which saves the kernel a descriptor lookup (an
 * fget and fput) per operation. */
static void target(struct io_uring_sqe *sqe, const volley_conn *c)
{
    if (c->be_state & U_FIXED) {
        sqe->fd = (int)c->slot;
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}

/* Put c's socket into the ring's table, at c's slot, once: the entry is
 * used from the update's completion on (on_fix), so nothing depends on
 * the order the kernel runs them in, and an update that fails costs only
 * the lookups. No SQE now: the next operation tries again. */
static void fix(volley_conn *c)
{
    volley_loop *l = volley__conn_loop(c);
    if ((c->be_state & U_FIX_SENT) || c->slot >= UR(l)->nfixed)
        return;
    struct io_uring_sqe *sqe = sqe_get(l);
    if (!sqe)
        return;
    /* the kernel reads c->fd when it submits this; c stays put till then */
    io_uring_prep_files_update(sqe, &c->fd, 1, (int)c->slot);
    io_uring_sqe_set_data64(sqe, VOLLEY__TAG(c, OP_FIX));
    c->inflight++;
    c->be_state |= U_FIX_SENT | U_FIXING;
}

/* Take c's socket out of the table, before its descriptor is closed (the
 * table holds the socket open): an SQE whose completion c waits for, or
 * at once when there is no SQE. */
static void unfix(volley_conn *c)
{
    volley_loop *l = volley__conn_loop(c);
    c->be_state &= ~U_FIXED;
    UR(l)->fixed--;
    struct io_uring_sqe *sqe = sqe_get(l);
    if (sqe) {
        io_uring_prep_close_direct(sqe, c->slot);
        io_uring_sqe_set_data64(sqe, VOLLEY__TAG(c, OP_UNFIX));
        c->inflight++;
    } else {
        /* should this fail too, the socket stays open until the slot's
         * next connection or the loop's end replaces or frees the entry */
        l->st.syscalls++;
        (void)volley__sys_uring_update_file(&UR(l)->ring, c->slot, -1);
    }
}

static void on_fix(volley_conn *c, const struct io_uring_cqe *cqe)
{
    c->be_state &= ~U_FIXING;
    if (cqe->res < 0)
        return;
    UR(volley__conn_loop(c))->fixed++;
    if (c->state >= VOLLEY__CS_ENDING)
        unfix(c); /* it ended meanwhile (ur_end left this to here) */
    else
        c->be_state |= U_FIXED;
}

static int arm_accept(volley_conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(volley__conn_loop(c));
    if (!sqe)
        return -EBUSY;
    io_uring_prep_multishot_accept(sqe, c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, VOLLEY__TAG(c, OP_ACCEPT));
    c->inflight++;
    c->be_state |= U_ARMED | U_WANT;
    return 0;
}

/* A receive for c: multishot while the multishot ring has buffers, else
 * (or when one is true) a single receive from the other ring. */
static int arm_recv(volley_conn *c, bool one)
{
    volley_loop *l = volley__conn_loop(c);
    fix(c);
    struct io_uring_sqe *sqe = sqe_get(l);
    if (!sqe)
        return -EBUSY;
    one = one || !UR(l)->posted[BGID_MANY];
    if (one)
        io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
    else
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    target(sqe, c);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = one ? BGID_ONE : BGID_MANY;
    io_uring_sqe_set_data64(sqe, VOLLEY__TAG(c, OP_RECV));
    c->inflight++;
    c->be_state = (c->be_state & ~U_ONE) | U_ARMED | (one ? U_ONE : 0u);
    return 0;
}

/* Want c's multishot operation op (OP_ACCEPT or OP_RECV) on or off: arm
 * it when it is not in flight, or cancel it; while a cancel is in flight,
 * its end re-arms it if it is wanted again. 0, or -EBUSY (no SQE). */
static int multishot(volley_conn *c, unsigned op, bool on)
{
    if (on) {
        c->be_state |= U_WANT;
        if (c->be_state & U_ARMED)
            return 0;
        return op == OP_ACCEPT ? arm_accept(c) : arm_recv(c, false);
    }
    c->be_state &= ~U_WANT;
    if ((c->be_state & (U_ARMED | U_CANCELING)) != U_ARMED)
        return 0;
    struct io_uring_sqe *sqe = sqe_get(volley__conn_loop(c));
    if (!sqe)
        return -EBUSY;
    io_uring_prep_cancel64(sqe, VOLLEY__TAG(c, op), 0);
    io_uring_sqe_set_data64(sqe, VOLLEY__TAG(c, OP_CANCEL));
    c->inflight++;
    c->be_state |= U_CANCELING;
    return 0;
}

static int ur_accept(volley_conn *c, bool on)
{
    return multishot(c, OP_ACCEPT, on);
}

static int ur_connect(volley_conn *c)
{
    struct io_uring_sqe *sqe = sqe_get(volley__conn_loop(c));
    if (!sqe)
        return -EBUSY;
    socklen_t len;
    const struct sockaddr *sa = volley__conn_peer_sa(c, &len);
    io_uring_prep_connect(sqe, c->fd, sa, len);
    io_uring_sqe_set_data64(sqe, VOLLEY__TAG(c, OP_CONNECT));
    c->inflight++;
    return 0;
}

static void ur_recv(volley_conn *c, bool on)
{
    /* off without an SQE: it keeps receiving; the core drops or keeps
     * what comes */
    if (multishot(c, OP_RECV, on) < 0 && on) {
        c->be_state &= ~U_WANT;
        volley__conn_recv_end(c, -EBUSY);
    }
}

static void ur_recv_into(volley_conn *c)
{
    fix(c);
    struct io_uring_sqe *sqe = sqe_get(volley__conn_loop(c));
    if (!sqe) {
        volley__conn_received(c, -EBUSY);
        return;
    }
    io_uring_prep_recv(sqe, c->fd, c->rx->buf, c->rx->len, 0);
    target(sqe, c);
    io_uring_sqe_set_data64(sqe, VOLLEY__TAG(c, OP_RECV_INTO));
    c->inflight++;
}

/* A send record for c, from the free list (NULL: out of memory). */
static struct ur_send *send_rec_get(volley_conn *c)
{
    struct ur *u = UR(volley__conn_loop(c));
    struct ur_send *s = u->free_sends;
    if (s) {
        u->free_sends = s->next;
    } else {
        if (!(s = malloc(sizeof *s)))
            return NULL;
        s->all_next = u->all_sends;
        u->all_sends = s;
    }
    c->be_send = s;
    return s;
}

/* c's send completed: its record (if it had one) back to the free list. */
static void send_rec_put(volley_conn *c)
{
    struct ur_send *s = c->be_send;
    if (!s)
        return;
    struct ur *u = UR(volley__conn_loop(c));
    s->next = u->free_sends;
    u->free_sends = s;
    c->be_send = NULL;
}

static void ur_send(volley_conn *c)
{
    size_t bytes;
    struct iovec iov[VOLLEY__SEND_IOV];
    unsigned n = volley__sendq_gather(&c->sq, iov, VOLLEY__SEND_IOV, SIZE_MAX, &bytes);
    /* Zero-copy: the queue stays untouched until the notification says
     * the kernel is done with its pages (on_send_zc). */
    bool zc =
        c->o->zc_threshold && bytes >= c->o->zc_threshold && UR(volley__conn_loop(c))->zc;
    /* one span goes in the SQE itself; a vectored or zero-copy send needs
     * memory that lasts until it completes */
    struct ur_send *s = NULL;
    if ((zc || n > 1) && !(s = send_rec_get(c))) {
        volley__conn_sent(c, -ENOMEM);
        return;
    }
    fix(c);
    struct io_uring_sqe *sqe = sqe_get(volley__conn_loop(c));
    if (!sqe) {
        send_rec_put(c);
        volley__conn_sent(c, -EBUSY);
        return;
    }
    if (s) {
        memcpy(s->iov, iov, n * sizeof *iov);
        s->msg = (struct msghdr){.msg_iov = s->iov, .msg_iovlen = n};
    }
    if (zc && n == 1)
        io_uring_prep_send_zc(sqe, c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL,
                              IORING_SEND_ZC_REPORT_USAGE);
    else if (zc)
        io_uring_prep_sendmsg_zc(sqe, c->fd, &s->msg, MSG_NOSIGNAL);
    else if (n == 1)
        io_uring_prep_send(sqe, c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    else
        io_uring_prep_sendmsg(sqe, c->fd, &s->msg, MSG_NOSIGNAL);
    if (zc && n > 1)
        sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
    target(sqe, c);
    io_uring_sqe_set_data64(sqe, VOLLEY__TAG(c, zc ? OP_SEND_ZC : OP_SEND));
    c->st.zc_sends += zc;
    c->inflight++;
}

/* The socket goes once nothing of c is in flight any more. */
static void maybe_gone(volley_conn *c)
{
    if (c->state != VOLLEY__CS_ENDING || c->inflight)
        return;
    volley__conn_gone(c);
}

static void ur_end(volley_conn *c)
{
    c->be_state &= ~U_WANT;
    if (c->be_state & U_FIXED)
        unfix(c); /* an update still in flight: on_fix does it */
    if (c->inflight && !(c->be_state & U_CANCEL_FD)) {
        struct io_uring_sqe *sqe = sqe_get(volley__conn_loop(c));
        if (sqe) {
            io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
            io_uring_sqe_set_data64(sqe, VOLLEY__TAG(c, OP_CANCEL_FD));
            c->inflight++;
            c->be_state |= U_CANCEL_FD;
        }
        /* no SQE: the operations end with the socket's own errors instead */
    }
    maybe_gone(c);
}

static void on_recv(volley_conn *c, const struct io_uring_cqe *cqe)
{
    volley_loop *l = volley__conn_loop(c);
    bool one = c->be_state & U_ONE;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        uint32_t *posted = &UR(l)->posted[one ? BGID_ONE : BGID_MANY];
        *posted -= *posted > 0;
        uint32_t id = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (cqe->res > 0 && id < l->bufs.live)
            volley__conn_data(c, id, (uint32_t)cqe->res);
        else if (id < l->bufs.live)
            put_buffer(l, id);
    }
    if (cqe->flags & IORING_CQE_F_MORE)
        return;
    bool canceled = c->be_state & U_CANCELING;
    c->be_state &= ~(U_ARMED | U_CANCELING | U_ONE);
    if (c->state >= VOLLEY__CS_ENDING)
        return;
    int res = cqe->res;
    if (res == 0) {
        c->be_state &= ~U_WANT;
        volley__conn_recv_end(c, 0);
    } else if (res == -ENOBUFS && !one && (c->be_state & U_WANT)) {
        /* the multishot ring ran dry: the budget's other part is for
         * single receives (it has none either: -ENOBUFS again) */
        if (arm_recv(c, true) < 0) {
            c->be_state &= ~U_WANT;
            volley__conn_recv_end(c, -EBUSY);
        }
    } else if (res == -ENOBUFS) {
        c->be_state &= ~U_WANT;
        volley__conn_recv_end(c, -ENOBUFS);
    } else if (res < 0 && res != -ECANCELED && res != -EAGAIN &&
               !(canceled && res == -ENOENT)) {
        c->be_state &= ~U_WANT;
        volley__conn_recv_end(c, res);
    } else if (c->be_state & U_WANT) {
        /* ended by our cancel, or by the kernel for its own reasons (it
         * gives up with -EAGAIN on a non-blocking socket that stays empty
         * after it waited once) */
        c->st.rearms++;
        if (arm_recv(c, false) < 0) {
            c->be_state &= ~U_WANT;
            volley__conn_recv_end(c, -EBUSY);
        }
    }
}

/* A zero-copy send completes twice: its result (with F_MORE when a
 * notification follows), then the notification that the kernel no longer
 * holds the pages. Only then may the queue let go of them. */
static void on_send_zc(volley_conn *c, const struct io_uring_cqe *cqe)
{
    struct ur_send *s = c->be_send;
    if (cqe->flags & IORING_CQE_F_NOTIF) {
        if ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
            c->st.zc_copied++;
        ssize_t res = s->zc_res;
        send_rec_put(c);
        volley__conn_sent(c, res);
        return;
    }
    ssize_t res = cqe->res == 0 ? -EPIPE : cqe->res;
    if (cqe->flags & IORING_CQE_F_MORE) {
        s->zc_res = res;
    } else {
        send_rec_put(c);
        volley__conn_sent(c, res);
    }
}

static void on_accept(volley_conn *c, const struct io_uring_cqe *cqe)
{
    if (cqe->res >= 0)
        volley__loop_accepted(c, cqe->res);
    else if (cqe->res != -ECANCELED)
        volley__loop_accept_failed(c, cqe->res);
    if (cqe->flags & IORING_CQE_F_MORE)
        return;
    c->be_state &= ~(U_ARMED | U_CANCELING);
    if (c->state == VOLLEY__CS_OPEN && (c->be_state & U_WANT)) {
        c->st.rearms++;
        (void)arm_accept(c);
    }
}

/* A datagram socket's operation tagged with this ends nothing of it: the
 * removal of its readiness poll. */
#define DSUB_IGNORE 0xffffffffu

static int arm_dgram_poll(volley_loop *l, uint32_t i)
{
    struct volley__dgram *d = &l->dgrams[i];
    struct io_uring_sqe *sqe = sqe_get(l);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_poll_multishot(sqe, d->g->poll_fd, POLLIN);
    io_uring_sqe_set_data64(sqe, VOLLEY__DTAG(i, d->gen, 0));
    d->armed = true;
    return 0;
}

static void on_dgram(volley_loop *l, uint64_t tag, const struct io_uring_cqe *cqe)
{
    struct volley__dgram *d = volley__loop_dgram(l, tag);
    uint32_t sub = VOLLEY__DTAG_SUB(tag);
    if (!d || sub == DSUB_IGNORE)
        return;
    if (sub == VOLLEY__DSUB_OUT) { /* one-shot: room to send, or it ended */
        d->out_armed = false;
        volley__loop_dgram_owe(l, d, VOLLEY_WAIT_SEND);
        return;
    }
    if (d->g->shared) { /* set from the socket's first operation on */
        volley__loop_dgram_owe(l, d, d->g->ops->cqe(d->g, sub, cqe->res, cqe->flags));
        return;
    }
    /* the readiness poll */
    if (cqe->res > 0)
        volley__loop_dgram_owe(l, d,
                               (cqe->res & (POLLIN | POLLHUP) ? VOLLEY_WAIT_RECV : 0u) |
                                   (cqe->res & POLLERR ? VOLLEY_WAIT_ERR : 0u));
    if (cqe->flags & IORING_CQE_F_MORE)
        return;
    d->armed = false;
    if (d->watched && arm_dgram_poll(l, (uint32_t)(d - l->dgrams)) < 0)
        volley__loop_dgram_owe(l, d, VOLLEY_WAIT_RECV); /* a look, then again */
}

/* The wake-up's eventfd, watched with a multishot poll (re-armed when it
 * ends). */
static int arm_wake(volley_loop *l)
{
    struct io_uring_sqe *sqe = sqe_get(l);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_poll_multishot(sqe, l->wake.rfd, POLLIN);
    io_uring_sqe_set_data64(sqe, VOLLEY__OP_WAKE);
    return 0;
}

static void on_wake(volley_loop *l, const struct io_uring_cqe *cqe)
{
    if (cqe->res > 0)
        volley__loop_woken(l);
    if (!(cqe->flags & IORING_CQE_F_MORE) && arm_wake(l) < 0)
        volley__loop_woken(l); /* no SQE: a look now, and again at the next */
}

static void on_cqe(volley_loop *l, const struct io_uring_cqe *cqe)
{
    uint64_t tag = io_uring_cqe_get_data64(cqe);
    if (tag == VOLLEY__OP_WAKE) {
        on_wake(l, cqe);
        return;
    }
    if (VOLLEY__TAG_OP(tag) == VOLLEY__OP_DGRAM) {
        on_dgram(l, tag, cqe);
        return;
    }
    volley_conn *c = volley__loop_conn(l, tag);
    if (!c) {
        /* cannot happen: a slot is reused only when all its operations
         * completed; a buffer must not be lost even then */
        if (cqe->flags & IORING_CQE_F_BUFFER)
            put_buffer(l, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        return;
    }
    if (!(cqe->flags & IORING_CQE_F_MORE))
        c->inflight--;
    switch (VOLLEY__TAG_OP(tag)) {
    case OP_ACCEPT:
        on_accept(c, cqe);
        break;
    case OP_CONNECT:
        volley__conn_connected(c, cqe->res < 0 ? cqe->res : 0);
        break;
    case OP_RECV:
        on_recv(c, cqe);
        break;
    case OP_SEND:
        send_rec_put(c);
        volley__conn_sent(c, cqe->res == 0 ? -EPIPE : cqe->res);
        break;
    case OP_RECV_INTO:
        volley__conn_received(c, cqe->res);
        break;
    case OP_SEND_ZC:
        on_send_zc(c, cqe);
        break;
    case OP_FIX:
        on_fix(c, cqe);
        break;
    default: /* OP_CANCEL, OP_CANCEL_FD: their targets report themselves;
                OP_UNFIX: nothing to do when it fails (the slot is empty) */
        break;
    }
    maybe_gone(c);
}

/* Report every completion posted now: how many there were. */
static unsigned reap_once(volley_loop *l)
{
    struct ur *u = UR(l);
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe)
    {
        on_cqe(l, cqe);
        n++;
    }
    io_uring_cq_advance(&u->ring, n);
    return n;
}

static int ur_wait(volley_loop *l, int64_t timeout_ns)
{
    struct ur *u = UR(l);
    int r;
    l->st.syscalls++;
    if (timeout_ns == 0) {
        r = volley__sys_uring_submit_get(&u->ring);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ns / VOLLEY__NS_PER_S,
                                       .tv_nsec = timeout_ns % VOLLEY__NS_PER_S};
        r = volley__sys_uring_submit_wait(&u->ring, timeout_ns < 0 ? NULL : &ts);
    }
    bool over = IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW;
    if (over && !u->overflowed)
        l->st.cq_overflow++;
    u->overflowed = over;
    /* Completions may be more than one pass of the CQ holds when it
     * overflowed: reap until it is empty (the kernel refills it). */
    for (int pass = 0; pass < 64; pass++) {
        if (!reap_once(l) ||
            !(IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW))
            break;
        l->st.syscalls++;
        (void)volley__sys_uring_submit_get(&u->ring);
    }
    return r < 0 ? r : 0;
}

static void ur_reap(volley_loop *l)
{
    (void)reap_once(l);
}

static int ur_dgram_watch(volley_loop *l, uint32_t i, bool on)
{
    struct volley__dgram *d = &l->dgrams[i];
    if (on)
        return arm_dgram_poll(l, i);
    d->watched = false;
    if (!d->armed)
        return 0;
    struct io_uring_sqe *sqe = sqe_get(l);
    if (sqe) {
        io_uring_prep_poll_remove(sqe, VOLLEY__DTAG(i, d->gen, 0));
        io_uring_sqe_set_data64(sqe, VOLLEY__DTAG(i, d->gen, DSUB_IGNORE));
    }
    /* Bounded: the poll ends at once when removed, or with the fd. */
    for (int t = 0; t < 200 && d->armed; t++)
        (void)ur_wait(l, 5 * VOLLEY__NS_PER_MS);
    return 0;
}

/* Room to send on entry i's socket: a one-shot poll for POLLOUT. */
static int ur_dgram_out(volley_loop *l, uint32_t i, bool on)
{
    struct volley__dgram *d = &l->dgrams[i];
    uint64_t tag = VOLLEY__DTAG(i, d->gen, VOLLEY__DSUB_OUT);
    struct io_uring_sqe *sqe = sqe_get(l);
    if (on) {
        if (!sqe)
            return -EBUSY;
        io_uring_prep_poll_add(sqe, d->g->fd, POLLOUT);
        io_uring_sqe_set_data64(sqe, tag);
        return 0;
    }
    if (sqe) {
        io_uring_prep_poll_remove(sqe, tag);
        io_uring_sqe_set_data64(sqe, VOLLEY__DTAG(i, d->gen, DSUB_IGNORE));
    }
    for (int t = 0; t < 200 && d->out_armed; t++)
        (void)ur_wait(l, 5 * VOLLEY__NS_PER_MS);
    return 0;
}

struct io_uring *volley__loop_ring(volley_loop *l)
{
    return l->ops == &volley__loop_uring ? &UR(l)->ring : NULL;
}

uint32_t volley__loop_fixed(volley_loop *l, uint32_t *size)
{
    bool ur = l->ops == &volley__loop_uring;
    *size = ur ? UR(l)->nfixed : 0;
    return ur ? UR(l)->fixed : 0;
}

static int ur_fd(const volley_loop *l)
{
    return UR(l)->ring.ring_fd;
}

static void ur_fini(volley_loop *l)
{
    struct ur *u = UR(l);
    if (u->br_registered[BGID_ONE])
        (void)volley__sys_uring_unregister_buf_ring(&u->ring, BGID_ONE);
    volley__sys_uring_exit(&u->ring, u->br_registered[BGID_MANY] ? BGID_MANY : -1);
    for (int g = 0; g < 2; g++)
        if (u->br[g])
            volley__sys_munmap(u->br[g], u->br_bytes);
    while (u->all_sends) {
        struct ur_send *s = u->all_sends;
        u->all_sends = s->all_next;
        free(s);
    }
    free(u);
    l->be = NULL;
}

/* io_uring setup errors that mean "not here": the backend is then not
 * available (-ENOTSUP), as for datagram sockets. */
static int not_here(int r)
{
    return r == -ENOSYS || r == -EPERM || r == -EINVAL || r == -EOPNOTSUPP ? -ENOTSUP : r;
}

static int ur_init(volley_loop *l, const struct volley_loop_opts *o)
{
    struct ur *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    /* One thread's ring first; then the flags older kernels know. */
    const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    int r = -EINVAL;
    for (size_t i = 0; i < sizeof tries / sizeof tries[0] && r == -EINVAL; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        p.flags = tries[i] | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        p.cq_entries =
            o->entries * 4 > 65536 ? 65536 : o->entries * 4; /* the kernel's most */
        l->st.syscalls++;
        r = volley__sys_uring_init(o->entries, &u->ring, &p);
    }
    if (r < 0) {
        free(u);
        return not_here(r);
    }
    l->be = u;
    /* each ring has room for the whole budget */
    u->br_bytes = (size_t)l->bufs.count * sizeof(struct io_uring_buf);
    for (int g = 0; g < 2; g++) {
        void *br;
        r = volley__sys_mmap(u->br_bytes, &br);
        if (r < 0)
            goto fail;
        u->br[g] = br;
        io_uring_buf_ring_init(u->br[g]);
        struct io_uring_buf_reg reg;
        memset(&reg, 0, sizeof reg);
        reg.ring_addr = (uintptr_t)br;
        reg.ring_entries = l->bufs.count;
        reg.bgid = (uint16_t)g;
        r = volley__sys_uring_register_buf_ring(&u->ring, &reg);
        if (r < 0) {
            r = not_here(r);
            goto fail;
        }
        u->br_registered[g] = true;
    }
    /* The socket table: an entry per descriptor the process may have
     * open, up to FIXED_MAX. Without it, sockets are looked up by
     * descriptor, as they are beyond it. */
    struct rlimit nofile;
    uint32_t nfixed = FIXED_MAX;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nfixed)
        nfixed = (uint32_t)nofile.rlim_cur;
    l->st.syscalls++;
    if (volley__sys_uring_register_files(&u->ring, nfixed) == 0)
        u->nfixed = nfixed;
    u->zc = volley__sys_uring_has_op(&u->ring, IORING_OP_SEND_ZC) > 0 &&
            volley__sys_uring_has_op(&u->ring, IORING_OP_SENDMSG_ZC) > 0;
    /* Every live buffer starts in a ring (the free stack is epoll's). */
    for (uint32_t i = 0; i < l->bufs.live; i++)
        put_buffer(l, i);
    l->bufs.nfree = 0;
    ur_bufs_back(l);
    return 0;
fail:
    ur_fini(l);
    return r;
}

const struct volley__loop_ops volley__loop_uring = {
    .name = "uring",
    .async_send = true,
    .id = VOLLEY_BACKEND_URING,
    .init = ur_init,
    .fini = ur_fini,
    .fd = ur_fd,
    .accept = ur_accept,
    .connect = ur_connect,
    .recv = ur_recv,
    .recv_into = ur_recv_into,
    .send = ur_send,
    .end = ur_end,
    .bufs_back = ur_bufs_back,
    .wait = ur_wait,
    .dgram_watch = ur_dgram_watch,
    .dgram_out = ur_dgram_out,
    .reap = ur_reap,
    .wake_watch = arm_wake,
};
