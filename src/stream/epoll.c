/* SPDX-License-Identifier: MIT */
/* The epoll loop backend: readiness, then the system call. Level-triggered;
 * a socket is in the epoll set only while something is wanted of it
 * (receiving, a connect, or a send the kernel refused for lack of room), so
 * a hang-up on a connection that is paused does not wake the loop again
 * and again. Receives go into the same buffers the uring backend lends
 * from its ring, taken from the free stack. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#define EVENTS_MAX     256
#define ACCEPTS_A_TURN 64
#define READS_A_TURN   16

/* struct volley_conn.be_state */
#define E_IN         0x1u /* EPOLLIN wanted */
#define E_OUT        0x2u /* EPOLLOUT wanted: connecting, or a send blocked */
#define E_BLOCKED    0x4u /* the send in flight waits for room */
#define E_IN_SET     0x8u /* the fd is in the epoll set */
#define E_MASK       0x30u
#define E_MASK_SHIFT 4 /* (the mask registered: E_IN/E_OUT, shifted) */

struct ep {
    int epfd;
    bool no_pwait2; /* epoll_pwait2 refused (an old kernel or a filter) */
    struct epoll_event evs[EVENTS_MAX];
};

#define EP(l) ((struct ep *)(l)->be)

static int ep_init(volley_loop *l, const struct volley_loop_opts *o)
{
    (void)o;
    struct ep *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    l->st.syscalls++;
    int r = volley__sys_epoll_create();
    if (r < 0) {
        free(e);
        return r;
    }
    e->epfd = r;
    l->be = e;
    return 0;
}

static void ep_fini(volley_loop *l)
{
    volley__sys_close(EP(l)->epfd);
    free(l->be);
    l->be = NULL;
}

static int ep_fd(const volley_loop *l)
{
    return EP(l)->epfd;
}

/* Make the epoll set hold what c wants now: in, out, both or nothing. */
static int interest(volley_conn *c)
{
    volley_loop *l = volley__conn_loop(c);
    uint32_t want = c->be_state & (E_IN | E_OUT);
    uint32_t have = (c->be_state & E_MASK) >> E_MASK_SHIFT;
    bool in_set = c->be_state & E_IN_SET;
    if (in_set && want == have)
        return 0;
    struct epoll_event ev = {.events = (want & E_IN ? EPOLLIN : 0u) |
                                       (want & E_OUT ? EPOLLOUT : 0u),
                             .data.u64 = VOLLEY__TAG(c, 0)};
    int op = !want ? EPOLL_CTL_DEL : in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (!want && !in_set)
        return 0;
    l->st.syscalls++;
    int r = volley__sys_epoll_ctl(EP(l)->epfd, op, c->fd, &ev);
    if (r < 0)
        return r;
    c->be_state = (c->be_state & ~(E_MASK | E_IN_SET)) | (want << E_MASK_SHIFT) |
                  (want ? E_IN_SET : 0u);
    return 0;
}

/* Want EPOLLIN on c or not. */
static int want_in(volley_conn *c, bool on)
{
    if (on)
        c->be_state |= E_IN;
    else
        c->be_state &= ~E_IN;
    return interest(c);
}

static int ep_accept(volley_conn *c, bool on)
{
    return want_in(c, on);
}

static int ep_connect(volley_conn *c)
{
    volley__conn_loop(c)->st.syscalls++;
    socklen_t len;
    const struct sockaddr *sa = volley__conn_peer_sa(c, &len);
    int r = volley__sys_connect(c->fd, sa, len);
    if (r == -EINPROGRESS) {
        c->be_state |= E_OUT;
        return interest(c);
    }
    /* At once (loopback can), or refused at once: both are events. */
    volley__conn_connected(c, r);
    return 0;
}

static void ep_recv(volley_conn *c, bool on)
{
    if (want_in(c, on) < 0 && on) {
        c->be_state &= ~E_IN;
        volley__conn_recv_end(c, -ENOMEM);
    }
}

static void ep_recv_into(volley_conn *c)
{
    if (want_in(c, true) < 0) {
        c->be_state &= ~E_IN;
        volley__conn_received(c, -ENOMEM);
    }
}

/* A receive into the caller's buffer (VOLLEY_CONN_DIRECT). */
static void on_readable_direct(volley_conn *c)
{
    volley__conn_loop(c)->st.syscalls++;
    ssize_t r = volley__sys_recv(c->fd, c->rx->buf, c->rx->len);
    if (r == -EAGAIN)
        return;
    c->be_state &= ~E_IN;
    (void)interest(c);
    volley__conn_received(c, r);
}

/* Send from the queue head until it is empty or the kernel has no room. */
static void ep_send(volley_conn *c)
{
    size_t bytes;
    struct iovec iov[VOLLEY__SEND_IOV]; /* the send is over when sendmsg returns */
    unsigned n = volley__sendq_gather(&c->sq, iov, VOLLEY__SEND_IOV, SIZE_MAX, &bytes);
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n};
    volley__conn_loop(c)->st.syscalls++;
    ssize_t r = volley__sys_sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (r == -EAGAIN) {
        c->be_state |= E_BLOCKED | E_OUT;
        if (interest(c) < 0)
            volley__conn_sent(c, -ENOMEM);
        return;
    }
    volley__conn_sent(c, r == 0 ? -EPIPE : r);
}

static void ep_end(volley_conn *c)
{
    c->be_state &= ~(E_IN | E_OUT | E_BLOCKED);
    (void)interest(c);
    volley__conn_gone(c);
}

static void ep_bufs_back(volley_loop *l)
{
    for (uint32_t i = 0; i < l->bufs.nrel; i++)
        volley__bufs_put(&l->bufs, l->bufs.rel[i]);
    l->bufs.nrel = 0;
}

static int sock_error(volley_conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    volley__conn_loop(c)->st.syscalls++;
    int r = volley__sys_getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return r < 0 ? r : -err;
}

static void on_listener(volley_conn *c)
{
    for (int i = 0;
         i < ACCEPTS_A_TURN && c->state == VOLLEY__CS_OPEN && (c->be_state & E_IN); i++) {
        volley__conn_loop(c)->st.syscalls++;
        int fd = volley__sys_accept(c->fd);
        if (fd == -EAGAIN)
            return;
        if (fd < 0) {
            volley__loop_accept_failed(c, fd);
            return;
        }
        volley__loop_accepted(c, fd);
    }
}

static void on_readable(volley_conn *c)
{
    volley_loop *l = volley__conn_loop(c);
    for (int i = 0; i < READS_A_TURN && (c->be_state & E_IN); i++) {
        int32_t id = volley__bufs_take(&l->bufs);
        if (id < 0) {
            c->be_state &= ~E_IN;
            (void)interest(c);
            volley__conn_recv_end(c, -ENOBUFS);
            return;
        }
        l->st.syscalls++;
        ssize_t r = volley__sys_recv(c->fd, volley__buf_addr(&l->bufs, (uint32_t)id),
                                     l->bufs.size);
        if (r <= 0) {
            volley__bufs_put(&l->bufs, (uint32_t)id);
            if (r == -EAGAIN)
                return;
            c->be_state &= ~E_IN;
            (void)interest(c);
            volley__conn_recv_end(c, (int)r);
            return;
        }
        volley__conn_data(c, (uint32_t)id, (uint32_t)r);
        if ((size_t)r < l->bufs.size)
            return; /* the socket is most likely empty: epoll says if not */
    }
}

static void on_event(volley_conn *c, uint32_t events)
{
    if (c->flags & VOLLEY__C_LISTENER) {
        on_listener(c);
        return;
    }
    if (c->state == VOLLEY__CS_CONNECTING) {
        c->be_state &= ~E_OUT;
        int err = sock_error(c);
        if (interest(c) < 0 && !err)
            err = -ENOMEM;
        volley__conn_connected(c, err);
        return;
    }
    if (c->state >= VOLLEY__CS_ENDING)
        return;
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (c->be_state & E_IN)) {
        if (c->state == VOLLEY__CS_OPEN && (c->o->flags & VOLLEY_CONN_DIRECT))
            on_readable_direct(c);
        else
            on_readable(c);
    }
    if (c->state >= VOLLEY__CS_ENDING)
        return;
    if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && (c->be_state & E_BLOCKED)) {
        c->be_state &= ~(E_BLOCKED | E_OUT);
        (void)interest(c);
        ep_send(c);
        return;
    }
    if ((events & EPOLLERR) && !(c->be_state & E_IN)) {
        int err = sock_error(c);
        volley__conn_recv_end(c, err < 0 ? err : -EIO);
    }
}

/* A datagram socket's readiness is edge-triggered, as on uring loops: a
 * DGRAM event when datagrams arrive, not again for ones left unread. */
#define DGRAM_IN (EPOLLIN | EPOLLET)

/* The events of entry i's fds: EPOLLIN (and EPOLLOUT while room to send is
 * watched on the same fd) on volley_fd, EPOLLOUT alone on the socket's own
 * fd when that is another (a uring socket's volley_fd is its eventfd). */
static int dgram_ctl(volley_loop *l, struct volley__dgram *d, uint32_t i, int op, int fd,
                     uint32_t events, uint32_t sub)
{
    struct epoll_event ev = {.events = events, .data.u64 = VOLLEY__DTAG(i, d->gen, sub)};
    l->st.syscalls++;
    return volley__sys_epoll_ctl(EP(l)->epfd, op, fd, &ev);
}

static void on_dgram(volley_loop *l, uint64_t tag, uint32_t ev)
{
    struct volley__dgram *d = volley__loop_dgram(l, tag);
    if (!d)
        return;
    uint32_t i = (uint32_t)((tag >> 8) & 0xffffu);
    bool out_only = VOLLEY__DTAG_SUB(tag) == VOLLEY__DSUB_OUT;
    unsigned bits = out_only ? 0u
                             : (ev & (EPOLLIN | EPOLLHUP) ? VOLLEY_WAIT_RECV : 0u) |
                                   (ev & EPOLLERR ? VOLLEY_WAIT_ERR : 0u);
    if (d->out_armed && ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        bits |= VOLLEY_WAIT_SEND;
        d->out_armed = false;
        if (!out_only) /* back to EPOLLIN alone (one-shot is off by itself) */
            (void)dgram_ctl(l, d, i, EPOLL_CTL_MOD, d->g->poll_fd, DGRAM_IN, 0);
    }
    volley__loop_dgram_owe(l, d, bits);
}

/* The wake-up's eventfd in the set, level-triggered: it is drained when
 * it says so. */
static int ep_wake_watch(volley_loop *l)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = VOLLEY__OP_WAKE};
    l->st.syscalls++;
    return volley__sys_epoll_ctl(EP(l)->epfd, EPOLL_CTL_ADD, l->wake.rfd, &ev);
}

/* epoll_wait counts milliseconds: a wait with a part of one (a deadline
 * nearer than a millisecond, or between two) goes to epoll_pwait2, which
 * counts nanoseconds; where that is refused, the wait is rounded up, so a
 * deadline is never fired early, only up to a millisecond late. */
static int ep_epoll_wait(struct ep *e, int64_t timeout_ns)
{
    if (timeout_ns > 0 && timeout_ns % VOLLEY__NS_PER_MS && !e->no_pwait2) {
        struct timespec ts = {.tv_sec = timeout_ns / VOLLEY__NS_PER_S,
                              .tv_nsec = timeout_ns % VOLLEY__NS_PER_S};
        int n = volley__sys_epoll_pwait2(e->epfd, e->evs, EVENTS_MAX, &ts);
        if (n != -ENOSYS && n != -EPERM)
            return n;
        e->no_pwait2 = true;
    }
    return volley__sys_epoll_wait(e->epfd, e->evs, EVENTS_MAX,
                                  volley__ms_ceil(timeout_ns));
}

static int ep_wait(volley_loop *l, int64_t timeout_ns)
{
    struct ep *e = EP(l);
    l->st.syscalls++;
    int n = ep_epoll_wait(e, timeout_ns);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        uint64_t tag = e->evs[i].data.u64;
        if (tag == VOLLEY__OP_WAKE) {
            volley__loop_woken(l);
            continue;
        }
        if (VOLLEY__TAG_OP(tag) == VOLLEY__OP_DGRAM) {
            on_dgram(l, tag, e->evs[i].events);
            continue;
        }
        volley_conn *c = volley__loop_conn(l, tag);
        if (c && c->fd >= 0)
            on_event(c, e->evs[i].events);
    }
    return 0;
}

/* A datagram socket's volley_fd in the set, level-triggered, or out. */
static int ep_dgram_watch(volley_loop *l, uint32_t i, bool on)
{
    struct volley__dgram *d = &l->dgrams[i];
    return dgram_ctl(l, d, i, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, d->g->poll_fd, DGRAM_IN,
                     0);
}

/* Room to send: EPOLLOUT next to EPOLLIN when the socket is its own
 * volley_fd; else the socket's fd on its own, one-shot. */
static int ep_dgram_out(volley_loop *l, uint32_t i, bool on)
{
    struct volley__dgram *d = &l->dgrams[i];
    int fd = d->g->fd;
    if (d->g->poll_fd == fd) {
        if (!on)
            d->out_armed = false;
        return dgram_ctl(l, d, i, EPOLL_CTL_MOD, fd, on ? DGRAM_IN | EPOLLOUT : DGRAM_IN,
                         0);
    }
    if (!on) {
        d->out_armed = false;
        if (!d->out_reg)
            return 0;
        d->out_reg = false;
        return dgram_ctl(l, d, i, EPOLL_CTL_DEL, fd, 0, VOLLEY__DSUB_OUT);
    }
    int r = dgram_ctl(l, d, i, d->out_reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd,
                      EPOLLOUT | EPOLLONESHOT, VOLLEY__DSUB_OUT);
    if (r == 0)
        d->out_reg = true;
    return r;
}

const struct volley__loop_ops volley__loop_epoll = {
    .name = "epoll",
    .async_send = false,
    .id = VOLLEY_BACKEND_EPOLL,
    .init = ep_init,
    .fini = ep_fini,
    .fd = ep_fd,
    .accept = ep_accept,
    .connect = ep_connect,
    .recv = ep_recv,
    .recv_into = ep_recv_into,
    .send = ep_send,
    .end = ep_end,
    .bufs_back = ep_bufs_back,
    .wait = ep_wait,
    .dgram_watch = ep_dgram_watch,
    .dgram_out = ep_dgram_out,
    .wake_watch = ep_wake_watch,
};
