/* SPDX-License-Identifier: MIT */
/*
 * The raw ceiling of `volley bench`: what the same system calls reach with
 * no libvolley and nothing but counting, the number volley's paths are
 * measured against. The sender makes sendmmsg(2) calls of RAW_MSGS
 * messages, each one UDP_SEGMENT buffer of as many datagrams of the cell's
 * size as fit in a 64 KiB UDP payload (at most the kernel's segment
 * limit); the receiver makes recvmmsg(2) calls into RAW_MSGS 64 KiB
 * buffers with UDP_GRO on and counts datagrams from each buffer's GRO
 * segment size, never reading a payload.
 */
#include "bench.h"

#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RAW_MSGS     32
#define RAW_BUF      65536
#define RAW_MAX_UDP4 65507

int bench_raw_open(struct bench_run *r)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    struct timeval tv = {.tv_usec = BENCH_POLL_MS * 1000};
    int one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->rx_fd = socket(AF_INET, SOCK_DGRAM, 0);
    r->tx_fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (r->rx_fd < 0 || r->tx_fd < 0)
        return -errno;
    bench_rcvbuf(r->rx_fd);
    /* Timeouts keep both sides bounded by the clock, as in baseline.c. */
    if (setsockopt(r->rx_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(r->tx_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(r->rx_fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) < 0 ||
        bind(r->rx_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(r->rx_fd, (struct sockaddr *)&a, &len) < 0)
        return -errno;
    r->dst = a;
    return 0;
}

/* The sender's messages: RAW_MSGS segmented buffers over one payload. */
struct raw_tx {
    struct mmsghdr m[RAW_MSGS];
    struct iovec iov;
    struct {
        _Alignas(struct cmsghdr) char buf[CMSG_SPACE(sizeof(uint16_t))];
    } ctrl;
    unsigned segs; /* datagrams per message */
};

static void raw_tx_build(struct bench_run *r, struct raw_tx *t, uint8_t *payload,
                         unsigned segs)
{
    uint16_t seg = (uint16_t)r->size;
    struct cmsghdr *c = (struct cmsghdr *)t->ctrl.buf;

    t->segs = segs;
    t->iov = (struct iovec){payload, r->size * segs};
    memset(&t->ctrl, 0, sizeof(t->ctrl));
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(seg));
    memcpy(CMSG_DATA(c), &seg, sizeof(seg));
    memset(t->m, 0, sizeof(t->m));
    for (unsigned i = 0; i < RAW_MSGS; i++) {
        struct msghdr *h = &t->m[i].msg_hdr;

        h->msg_name = &r->dst;
        h->msg_namelen = sizeof(r->dst);
        h->msg_iov = &t->iov;
        h->msg_iovlen = 1;
        /* A single datagram carries no segment size. */
        h->msg_control = segs > 1 ? t->ctrl.buf : NULL;
        h->msg_controllen = segs > 1 ? sizeof(t->ctrl.buf) : 0;
    }
}

/* Datagrams per message: a 64 KiB payload's worth, within the kernel's
 * segment limit (128 since Linux 6.9, 64 before: EINVAL says which). */
static unsigned raw_segs(const struct bench_run *r, unsigned limit)
{
    size_t fit = RAW_MAX_UDP4 / r->size;

    return fit < limit ? (unsigned)(fit ? fit : 1) : limit;
}

void *bench_raw_tx(void *arg)
{
    struct bench_run *r = arg;
    struct raw_tx *t = calloc(1, sizeof(*t));
    uint8_t *payload = calloc(RAW_BUF, 1);
    unsigned limit = 128;
    int64_t cpu0 = bench_cpu_ns();

    bench_tx_start(r);
    if (!t || !payload) {
        r->tx.err = -ENOMEM;
        goto out;
    }
    raw_tx_build(r, t, payload, raw_segs(r, limit));
    while (r->tx.dgrams < BENCH_CAP && cli_mono_ns() < r->tx_end_ns) {
        int n = sendmmsg(r->tx_fd, t->m, RAW_MSGS, 0);
        int e = errno;

        r->tx.syscalls++;
        if (n > 0) {
            r->tx.dgrams += (uint64_t)n * t->segs;
        } else if (e == EINVAL && limit == 128 && t->segs > 64) {
            limit = 64;
            raw_tx_build(r, t, payload, raw_segs(r, limit));
        } else if (e != EAGAIN && e != ENOBUFS && e != EINTR) {
            r->tx.err = -e;
            break;
        }
    }
out:
    bench_tx_finish(r, cpu0);
    free(payload);
    free(t);
    return NULL;
}

/* The datagrams in one received buffer: its GRO segment size splits it,
 * without a look at the payload. */
static unsigned raw_count(const struct msghdr *h, unsigned len)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c;
         c = CMSG_NXTHDR((struct msghdr *)h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int seg;

            memcpy(&seg, CMSG_DATA(c), sizeof(seg));
            return seg > 0 ? (len + (unsigned)seg - 1) / (unsigned)seg : 1;
        }
    }
    return 1;
}

struct raw_rx {
    struct mmsghdr m[RAW_MSGS];
    struct iovec iov[RAW_MSGS];
    struct {
        _Alignas(struct cmsghdr) char buf[CMSG_SPACE(sizeof(int))];
    } ctrl[RAW_MSGS];
    uint8_t bufs[RAW_MSGS][RAW_BUF];
};

static void raw_rx_reset(struct raw_rx *x)
{
    for (unsigned i = 0; i < RAW_MSGS; i++) {
        struct msghdr *h = &x->m[i].msg_hdr;

        x->iov[i] = (struct iovec){x->bufs[i], RAW_BUF};
        h->msg_iov = &x->iov[i];
        h->msg_iovlen = 1;
        h->msg_control = x->ctrl[i].buf;
        h->msg_controllen = sizeof(x->ctrl[i].buf);
    }
}

void *bench_raw_rx(void *arg)
{
    struct bench_run *r = arg;
    struct raw_rx *x = calloc(1, sizeof(*x));
    int64_t cpu0 = bench_cpu_ns(), quiet = cli_mono_ns();

    if (!x) {
        r->rx.err = -ENOMEM;
        return NULL;
    }
    for (;;) {
        raw_rx_reset(x);
        int n = recvmmsg(r->rx_fd, x->m, RAW_MSGS, MSG_WAITFORONE, NULL);
        int e = errno;
        int64_t now = cli_mono_ns();

        r->rx.syscalls++;
        for (int i = 0; i < n; i++) {
            r->rx.dgrams += raw_count(&x->m[i].msg_hdr, x->m[i].msg_len);
            r->rx.bytes += x->m[i].msg_len;
        }
        if (n > 0)
            quiet = r->last_rx_ns = now;
        else if (n < 0 && e != EAGAIN && e != EWOULDBLOCK && e != EINTR) {
            r->rx.err = -e;
            break;
        }
        if (bench_rx_finished(r, now, quiet))
            break;
    }
    r->rx.cpu_ns = bench_cpu_ns() - cpu0;
    free(x);
    return NULL;
}
