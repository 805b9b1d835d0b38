/* SPDX-License-Identifier: MIT */
/* The macOS batching backend: XNU's private sendmsg_x/recvmsg_x, up to 256
 * datagrams per call, each with its own length (msg_datalen) and flags. No
 * GSO or GRO exists there. The calls are private, so they are trusted only
 * after a loopback self-test (once per process); where it fails, or
 * VOLLEY_DISABLE=xnu turns the backend off, sockets use sendmsg/recvmsg.
 * Some releases' recvmsg_x brings no control data: the self-test tells,
 * and a socket that needs it (pktinfo, ecn, timestamp, rxq_ovfl on) then
 * receives with recvmsg, one datagram a call, and still sends in batches.
 * Waiting is poll(2) on the socket, which kqueue can watch as well. */
#include "dgram.h"
#include "../base/xnu.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Features whose values arrive only as control messages. */
#define RX_CTRL_FEATURES                                                                 \
    (VOLLEY_F_PKTINFO | VOLLEY_F_ECN | VOLLEY_F_TIMESTAMP | VOLLEY_F_RXQ_OVFL)

struct xnu {
    struct volley__msghdr_x *tx; /* VOLLEY_BATCH_MAX: one per built message */
    struct volley__msghdr_x *rx; /* rx_batch */
    bool batch;                  /* the self-test passed: the batch calls serve */
    bool rx_ctrl;                /* recvmsg_x brings control data */
};

/* ---- the self-test ---- */

/* The verdict once the calls have given one: 0 or a negative errno, and
 * whether control data came back. 1 while unknown: never run, or every run
 * so far failed for a reason of the moment (no free fd, no memory). */
static int verdict = 1;
static int verdict_ctrl = -ENOTSUP;
static pthread_mutex_t verdict_lock = PTHREAD_MUTEX_INITIALIZER;

#define SELFTEST_N 2
static const char selftest_payload[SELFTEST_N][8] = {"volley", "xnu1"};
static const size_t selftest_len[SELFTEST_N] = {6, 4}; /* two lengths: datalen counts */

/* Errors that say nothing about the calls: the self-test runs again later. */
static bool transient(int err)
{
    return err == -ENOMEM || err == -ENOBUFS || err == -EMFILE || err == -ENFILE ||
           err == -EAGAIN || err == -EINTR;
}

/* Send the two datagrams to `to`; 0 or the error. A prefix is resumed. */
static int selftest_send(int tx, struct sockaddr_in *to)
{
    struct volley__msghdr_x m[SELFTEST_N];
    struct iovec iov[SELFTEST_N];
    memset(m, 0, sizeof m);
    for (unsigned i = 0; i < SELFTEST_N; i++) {
        iov[i] = (struct iovec){(void *)selftest_payload[i], selftest_len[i]};
        m[i].msg_name = to;
        m[i].msg_namelen = sizeof *to;
        m[i].msg_iov = &iov[i];
        m[i].msg_iovlen = 1;
    }
    unsigned sent = 0;
    for (int tries = 0; sent < SELFTEST_N && tries < 8; tries++) {
        int r = volley__sys_sendmsg_x(tx, m + sent, SELFTEST_N - sent, MSG_DONTWAIT);
        if (r < 0 && r != -EINTR)
            return r;
        if (r > 0)
            sent += (unsigned)r > SELFTEST_N - sent ? SELFTEST_N - sent : (unsigned)r;
    }
    return sent == SELFTEST_N ? 0 : -EAGAIN;
}

/* Receive them back (within about 200 ms): 0 when both came intact, in
 * order, each with its own length; *ctrl 0 when each carried control
 * data (rx asked for IP_RECVTOS). */
static int selftest_recv(int rx, bool asked_ctrl, int *ctrl)
{
    struct volley__msghdr_x m[SELFTEST_N];
    struct iovec iov[SELFTEST_N];
    uint8_t buf[SELFTEST_N][64];
    uint8_t cbuf[SELFTEST_N][64] __attribute__((aligned(8)));
    unsigned got = 0, with_ctrl = 0;
    for (int idle = 0; got < SELFTEST_N && idle < 20;) {
        unsigned want = SELFTEST_N - got;
        memset(m, 0, sizeof m);
        for (unsigned i = 0; i < want; i++) {
            iov[i] = (struct iovec){buf[got + i], sizeof buf[0]};
            m[i].msg_iov = &iov[i];
            m[i].msg_iovlen = 1;
            m[i].msg_control = cbuf[got + i];
            m[i].msg_controllen = sizeof cbuf[0];
        }
        int r = volley__sys_recvmsg_x(rx, m, want, MSG_DONTWAIT);
        if (r == -EAGAIN || r == -EINTR || r == 0) {
            struct pollfd p = {.fd = rx, .events = POLLIN};
            if (volley__sys_poll(&p, 1, 10) <= 0)
                idle++;
            continue;
        }
        if (r < 0)
            return r;
        if ((unsigned)r > want)
            return -EIO;
        for (unsigned i = 0; i < (unsigned)r; i++, got++) {
            if (m[i].msg_datalen != selftest_len[got] || m[i].msg_flags & MSG_TRUNC ||
                memcmp(buf[got], selftest_payload[got], selftest_len[got]) != 0)
                return -EIO;
            with_ctrl += m[i].msg_controllen > 0;
        }
    }
    if (got < SELFTEST_N)
        return -ETIMEDOUT;
    *ctrl = asked_ctrl && with_ctrl == SELFTEST_N ? 0 : -ENOTSUP;
    return 0;
}

/* The self-test; *ran false when it could not even start (sockets over
 * loopback failed), which says nothing about the calls. */
static int selftest(int *ctrl, bool *ran)
{
    struct sockaddr_in a;
    int one = 1, tx, rx;
    int r = volley__probe_loopback(0, 0, &tx, &rx, &a);
    *ran = r >= 0;
    if (r >= 0) {
        /* Every datagram then carries its TOS byte: a control message to
         * look for. */
        bool asked =
            volley__sys_setsockopt(rx, IPPROTO_IP, IP_RECVTOS, &one, sizeof one) == 0;
        r = selftest_send(tx, &a);
        if (r == 0)
            r = selftest_recv(rx, asked, ctrl);
    }
    volley__sys_close(tx);
    volley__sys_close(rx);
    return r;
}

int volley__xnu_probe(int *ctrl)
{
    pthread_mutex_lock(&verdict_lock);
    int r = verdict;
    if (r > 0) {
        int c = -ENOTSUP;
        bool ran;
        r = selftest(&c, &ran);
        if (ran && !transient(r)) {
            verdict = r;
            verdict_ctrl = c;
        }
    }
    *ctrl = r == 0 ? verdict_ctrl : -ENOTSUP;
    pthread_mutex_unlock(&verdict_lock);
    return r;
}

#if VOLLEY_TESTING
void volley__xnu_probe_reset(void)
{
    pthread_mutex_lock(&verdict_lock);
    verdict = 1;
    verdict_ctrl = -ENOTSUP;
    pthread_mutex_unlock(&verdict_lock);
}
#endif

/* ---- send ---- */

static void to_x(struct volley__msghdr_x *x, const struct msghdr *m)
{
    x->msg_name = m->msg_name;
    x->msg_namelen = m->msg_namelen;
    x->msg_iov = m->msg_iov;
    x->msg_iovlen = (int)m->msg_iovlen;
    x->msg_control = m->msg_control;
    x->msg_controllen = (socklen_t)m->msg_controllen;
    x->msg_flags = 0;
    x->msg_datalen = 0;
}

static void xnu_built(volley_sock *s, unsigned nmsg)
{
    struct xnu *x = s->priv;
    for (unsigned j = 0; j < nmsg; j++)
        to_x(&x->tx[j], &s->tx_msgs[j].msg_hdr);
}

/* As mmsg's send, with sendmsg_x: a count below what was asked is a prefix
 * taken without error, and the rest goes in the next call; -1 (EAGAIN) is
 * nothing taken. Without GSO every built message is one datagram, or one
 * piece of a buffer the caller marked for GSO. */
static int xnu_send_msgs(volley_sock *s, unsigned off, unsigned cnt)
{
    struct xnu *x = s->priv;
    return volley__sys_sendmsg_x(s->fd, x->tx + off, cnt, MSG_DONTWAIT);
}

static int xnu_send(volley_sock *s, const struct volley_dgram *d, unsigned n)
{
    static const struct volley__tx_calls calls = {
        .per_call = VOLLEY__XNU_BATCH,
        .built = xnu_built,
        .send = xnu_send_msgs,
    };
    struct xnu *x = s->priv;
    if (!x->batch)
        return volley__scalar_send(s, d, n);
    return volley__tx_send(s, d, n, &calls);
}

/* ---- receive ---- */

/* Receive slot i, ready for recvmsg_x: the slab slot, name and control
 * space msg.c set up for recvmsg. */
static void reset_rx(volley_sock *s, struct xnu *x, unsigned i)
{
    volley__msg_reset_rx(s, i);
    to_x(&x->rx[i], &s->rx_msgs[i].msg_hdr);
}

static int xnu_recv(volley_sock *s, struct volley_dgram *d, unsigned n)
{
    struct xnu *x = s->priv;
    if (!x->batch || (!x->rx_ctrl && s->features & RX_CTRL_FEATURES))
        return volley__scalar_receive(s, d, n, false);
    unsigned want = n < s->rx_batch ? n : s->rx_batch;
    if (want > VOLLEY__XNU_BATCH)
        want = VOLLEY__XNU_BATCH;
    unsigned tries = 0;
    int r;
    for (;;) {
        for (unsigned i = 0; i < want; i++)
            reset_rx(s, x, i);
        r = volley__sys_recvmsg_x(s->fd, x->rx, want, MSG_DONTWAIT);
        s->st.rx_syscalls++;
        if (r >= 0 || !volley__err_recv_retry(s, &tries, r))
            break;
    }
    if (r <= 0)
        return volley__err_recv_none(s, r);
    if ((unsigned)r > want)
        r = (int)want;
    for (unsigned i = 0; i < (unsigned)r; i++) {
        struct volley__msghdr_x *m = &x->rx[i];
        struct msghdr *h = &s->rx_msgs[i].msg_hdr;
        /* msg.c reads the lengths the kernel wrote from slot i's recvmsg
         * header, which points at the same name and control space */
        h->msg_namelen = m->msg_namelen;
        h->msg_controllen = m->msg_controllen;
        volley__msg_stage_rx(s, i, m->msg_datalen, m->msg_flags);
    }
    return (int)volley__msg_deliver(s, d, n);
}

/* ---- lifetime ---- */

static void xnu_close(volley_sock *s)
{
    struct xnu *x = s->priv;
    if (!x)
        return;
    free(x->tx);
    free(x->rx);
    free(x);
    s->priv = NULL;
}

static int xnu_init(volley_sock *s)
{
    int ctrl;
    int v = volley__xnu_probe(&ctrl);
    struct xnu *x = calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    s->priv = x;
    x->tx = calloc(VOLLEY_BATCH_MAX, sizeof *x->tx);
    x->rx = calloc(s->rx_batch, sizeof *x->rx);
    int r = x->tx && x->rx ? volley__msg_alloc_rx(s) : -ENOMEM;
    if (r < 0) {
        xnu_close(s);
        return r;
    }
    x->batch = v == 0;
    x->rx_ctrl = ctrl == 0;
    return 0;
}

const struct volley_backend volley__backend_xnu = {
    .name = "xnu",
    .id = VOLLEY_BACKEND_XNU,
    .caps = VOLLEY__BE_KERNEL,
    .init = xnu_init,
    .send = xnu_send,
    .recv = xnu_recv,
    .close = xnu_close,
};
