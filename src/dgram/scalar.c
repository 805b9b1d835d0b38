/* SPDX-License-Identifier: MIT */
/* The portable backend: one sendmsg/recvmsg per datagram, POSIX only. An
 * explicit GSO descriptor is cut into datagrams here, as the kernel would. */
#include "dgram.h"

#include <errno.h>

/* Send one message; 0 when it went out, else the error that stopped it. */
static int send_one(volley_sock *s, struct msghdr *m)
{
    struct volley__retry rt = {0, 0};
    for (;;) {
        ssize_t r = volley__sys_sendmsg(s->fd, m, MSG_DONTWAIT);
        s->st.tx_syscalls++;
        if (r >= 0) {
            volley__err_send_ok(s, &rt);
            return 0;
        }
        if (!volley__err_send_retry(s, &rt, (int)r))
            return (int)r;
    }
}

/* Send descriptor d as one or more datagrams. Returns the datagrams sent
 * (all of them) or a negative error when the first could not go. */
static int send_desc(volley_sock *s, const struct volley_dgram *d)
{
    unsigned pieces = d->segment ? volley__gso_count(d->len, d->segment) : 1;
    for (unsigned p = 0; p < pieces; p++) {
        uint32_t off = p * d->segment;
        /* data may be NULL for an empty datagram: no arithmetic on it then */
        struct iovec iov = {off ? (uint8_t *)d->data + off : d->data,
                            volley__gso_seg_next((uint32_t)d->len, d->segment, off)};
        struct msghdr m;
        volley__msg_fill_tx(s, 0, &m, d, &iov, 1, 0);
        int r = send_one(s, &m);
        if (r < 0 && p == 0)
            return r;
        if (r < 0) {
            /* Part of the buffer is on the wire: the descriptor is done, and
             * the pieces that could not follow are counted as failed. */
            s->st.tx_errors += pieces - p;
            volley__err_count(s, r);
            return (int)p;
        }
        s->st.tx_dgrams++;
        s->st.tx_bytes += iov.iov_len;
    }
    return (int)pieces;
}

int volley__scalar_send(volley_sock *s, const struct volley_dgram *d, unsigned n)
{
    unsigned done = 0;
    for (; done < n; done++) {
        int r = send_desc(s, &d[done]);
        if (r >= 0)
            continue;
        if (r == -EAGAIN) {
            s->st.tx_wouldblock++;
            break;
        }
        if (done)
            break; /* the error comes back on the next call, counted then */
        s->st.tx_errors++;
        volley__err_count(s, r);
        return r;
    }
    return (int)done;
}

/* block: the first call sleeps in the kernel (a blocking fd, bounded by
 * SO_RCVTIMEO; a signal ends it early), the rest never do. */
int volley__scalar_receive(volley_sock *s, struct volley_dgram *d, unsigned n, bool block)
{
    unsigned want = n < s->rx_batch ? n : s->rx_batch;
    unsigned got = 0, tries = 0;
    while (got < want) {
        struct msghdr *m = &s->rx_msgs[got].msg_hdr;
        volley__msg_reset_rx(s, got);
        bool sleep = block && got == 0;
        ssize_t r = volley__sys_recvmsg(s->fd, m, sleep ? 0 : MSG_DONTWAIT);
        s->st.rx_syscalls++;
        if (r == -EINTR && sleep)
            r = -EAGAIN;
        if (r >= 0) {
            volley__msg_stage_rx(s, got++, (size_t)r, m->msg_flags);
            continue;
        }
        if (volley__err_recv_retry(s, &tries, (int)r))
            continue;
        if (r == -EAGAIN)
            break;
        if (got)
            break; /* the error comes back on the next call */
        s->st.rx_errors++;
        volley__err_count(s, (int)r);
        return (int)r;
    }
    if (!got) {
        s->st.rx_wouldblock++;
        return 0;
    }
    return (int)volley__msg_deliver(s, d, n);
}

static int scalar_recv(volley_sock *s, struct volley_dgram *d, unsigned n)
{
    return volley__scalar_receive(s, d, n, false);
}

static int scalar_recv_block(volley_sock *s, struct volley_dgram *d, unsigned n)
{
    return volley__scalar_receive(s, d, n, true);
}

const struct volley_backend volley__backend_scalar = {
    .name = "scalar",
    .id = VOLLEY_BACKEND_SCALAR,
    .caps = VOLLEY__BE_KERNEL,
    .init = volley__msg_alloc_rx,
    .send = volley__scalar_send,
    .recv = scalar_recv,
    .recv_block = scalar_recv_block,
};
