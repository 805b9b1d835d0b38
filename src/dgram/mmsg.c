/* SPDX-License-Identifier: MIT */
/* The batching backend: sendmmsg/recvmmsg, with UDP GSO on send (runs of
 * same-destination, same-size datagrams become one UDP_SEGMENT message)
 * and GRO on receive (coalesced buffers split by msg.c's volley__msg_deliver). */
#include "dgram.h"

#include <errno.h>

static int mmsg_send_msgs(volley_sock *s, unsigned off, unsigned cnt)
{
    return volley__sys_sendmmsg(s->fd, s->tx_msgs + off, cnt, MSG_DONTWAIT);
}

int volley__mmsg_send(volley_sock *s, const struct volley_dgram *d, unsigned n)
{
    static const struct volley__tx_calls calls = {
        .per_call = VOLLEY_BATCH_MAX, /* every message one build makes */
        .send = mmsg_send_msgs,
    };
    return volley__tx_send(s, d, n, &calls);
}

/* flags MSG_DONTWAIT, or MSG_WAITFORONE to sleep in the kernel until the
 * first datagram (or SO_RCVTIMEO) on a blocking fd; a signal then ends
 * the wait early. */
static int mmsg_receive(volley_sock *s, struct volley_dgram *d, unsigned n, int flags)
{
    unsigned want = n < s->rx_batch ? n : s->rx_batch;
    unsigned tries = 0;
    /* Only the headers the last call filled were changed by the kernel. */
    for (unsigned i = 0; i < want && i < s->rx_dirty; i++)
        volley__msg_reset_rx(s, i);
    s->rx_dirty = want; /* until we know how many this call fills */
    int r;
    for (;;) {
        r = volley__sys_recvmmsg(s->fd, s->rx_msgs, want, flags);
        s->st.rx_syscalls++;
        if (r == -EINTR && !(flags & MSG_DONTWAIT))
            r = -EAGAIN;
        if (r >= 0 || !volley__err_recv_retry(s, &tries, r))
            break;
        /* The failed call may have touched the headers. */
        for (unsigned i = 0; i < want; i++)
            volley__msg_reset_rx(s, i);
    }
    if (r <= 0)
        return volley__err_recv_none(s, r);
    s->rx_dirty = (unsigned)r;
    for (int i = 0; i < r; i++)
        volley__msg_stage_rx(s, (unsigned)i, s->rx_msgs[i].msg_len,
                             s->rx_msgs[i].msg_hdr.msg_flags);
    return (int)volley__msg_deliver(s, d, n);
}

static int mmsg_recv(volley_sock *s, struct volley_dgram *d, unsigned n)
{
    return mmsg_receive(s, d, n, MSG_DONTWAIT);
}

static int mmsg_recv_block(volley_sock *s, struct volley_dgram *d, unsigned n)
{
    return mmsg_receive(s, d, n, MSG_WAITFORONE);
}

/* sendmmsg with no messages tells whether the call exists: ENOSYS (not in
 * this kernel) or EPERM (refused by a seccomp filter) make mmsg not
 * available here, -ENOTSUP; any other failure is reported as itself. */
static int mmsg_init(volley_sock *s)
{
    int r = volley__sys_sendmmsg(s->fd, s->tx_msgs, 0, 0);
    if (r < 0)
        return r == -ENOSYS || r == -EPERM ? -ENOTSUP : r;
    return volley__msg_alloc_rx(s);
}

const struct volley_backend volley__backend_mmsg = {
    .name = "mmsg",
    .id = VOLLEY_BACKEND_MMSG,
    .caps = VOLLEY__BE_KERNEL | VOLLEY__BE_OFFLOAD | VOLLEY__BE_CHECKS,
    .init = mmsg_init,
    .send = volley__mmsg_send,
    .recv = mmsg_recv,
    .recv_block = mmsg_recv_block,
};
