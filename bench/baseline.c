/* SPDX-License-Identifier: MIT */
/*
 * The baseline `volley bench` measures against: UDP written the simple way,
 * one sendto(2) per datagram and one blocking recvfrom(2) per datagram, with
 * no libvolley. Its system calls are counted here, one per call made. The
 * latency pair (ping and echo) is written the same way.
 */
#include "bench.h"

#include "cli.h"
#include "seq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int open_rx(struct bench_run *r)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    /* The timeout lets the receiver notice the sender is done. */
    struct timeval tv = {.tv_usec = BENCH_POLL_MS * 1000};

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->rx_fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (r->rx_fd < 0)
        return -errno;
    bench_rcvbuf(r->rx_fd);
    if (setsockopt(r->rx_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        bind(r->rx_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(r->rx_fd, (struct sockaddr *)&a, &len) < 0)
        return -errno;
    r->dst = a;
    return 0;
}

int bench_baseline_open(struct bench_run *r)
{
    struct timeval tv = {.tv_usec = BENCH_POLL_MS * 1000};
    int err = open_rx(r);

    if (err < 0)
        return err;
    r->tx_fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (r->tx_fd < 0)
        return -errno;
    /* A blocking sendto could wait for buffer room indefinitely; the sender
     * must stay bounded by its clock. */
    if (setsockopt(r->tx_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        return -errno;
    return 0;
}

void bench_baseline_close(struct bench_run *r)
{
    if (r->tx_fd >= 0)
        close(r->tx_fd);
    if (r->rx_fd >= 0)
        close(r->rx_fd);
    r->tx_fd = r->rx_fd = -1;
}

void *bench_baseline_tx(void *arg)
{
    struct bench_run *r = arg;
    struct seq_hdr h = {.stream = r->stream};
    int64_t cpu0 = bench_cpu_ns();

    bench_tx_start(r);
    while (r->tx.dgrams < BENCH_CAP) {
        ssize_t n;
        int e;

        /* The clock is read once per BENCH_BATCH calls, as the volley paths
         * read it once per batch. */
        if (r->tx.syscalls % BENCH_BATCH == 0) {
            if (cli_mono_ns() >= r->tx_end_ns)
                break;
            h.sent_ns = (uint64_t)cli_real_ns();
        }
        h.seq = r->tx.dgrams;
        if (r->size >= SEQ_HDR_LEN)
            seq_hdr_encode(r->payload, &h);
        n = sendto(r->tx_fd, r->payload, r->size, 0, (struct sockaddr *)&r->dst,
                   sizeof(r->dst));
        e = errno;
        r->tx.syscalls++;
        if (n >= 0) {
            r->tx.dgrams++;
            continue;
        }
        if (e != ENOBUFS && e != EAGAIN && e != EINTR) {
            r->tx.err = -e;
            break;
        }
        /* Refused for lack of room, maybe after SO_SNDTIMEO: the round count
         * may be far off, so check the clock now. */
        if (cli_mono_ns() >= r->tx_end_ns)
            break;
    }
    bench_tx_finish(r, cpu0);
    return NULL;
}

void *bench_baseline_rx(void *arg)
{
    struct bench_run *r = arg;
    uint8_t buf[65536];
    int64_t cpu0 = bench_cpu_ns(), quiet = cli_mono_ns();

    for (;;) {
        ssize_t n = recvfrom(r->rx_fd, buf, sizeof(buf), 0, NULL, NULL);
        int e = errno;
        int64_t now = cli_mono_ns();

        r->rx.syscalls++;
        if (n >= 0) {
            r->rx.dgrams++;
            r->rx.bytes += (uint64_t)n;
            quiet = r->last_rx_ns = now;
        } else if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR) {
            r->rx.err = -e;
            break;
        }
        if (bench_rx_finished(r, now, quiet))
            break;
    }
    r->rx.cpu_ns = bench_cpu_ns() - cpu0;
    return NULL;
}

static bool transient(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ENOBUFS;
}

/* Waits in blocking recvfrom (10 ms at a time) for the answer to seq. */
static int64_t baseline_await(struct bench_run *r, uint64_t seq, int64_t t0)
{
    uint8_t buf[65536];

    for (;;) {
        ssize_t n = recvfrom(r->tx_fd, buf, sizeof(buf), 0, NULL, NULL);
        int e = errno;
        int64_t now = cli_mono_ns();

        r->tx.syscalls++;
        if (n >= 0 && bench_lat_match(r, buf, (size_t)n, seq))
            return now - t0;
        if (n < 0 && !transient(e)) {
            r->tx.err = -e;
            return -1;
        }
        if (now - t0 >= BENCH_LAT_TIMEOUT_MS * 1000000LL)
            return -1;
    }
}

void *bench_baseline_ping(void *arg)
{
    struct bench_run *r = arg;
    struct seq_hdr h = {.stream = r->stream};
    struct timeval tv = {.tv_usec = BENCH_POLL_MS * 1000};
    int64_t cpu0 = bench_cpu_ns();

    if (setsockopt(r->tx_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
        int e = errno;

        r->tx.err = -e;
    }
    bench_tx_start(r);
    for (uint64_t seq = 0; !r->tx.err && r->rtt_n < r->rtt_cap; seq++) {
        int64_t t0 = cli_mono_ns(), rtt;
        ssize_t n;
        int e;

        if (t0 >= r->tx_end_ns)
            break;
        h.seq = seq;
        h.sent_ns = (uint64_t)cli_real_ns();
        if (r->size >= SEQ_HDR_LEN)
            seq_hdr_encode(r->payload, &h);
        n = sendto(r->tx_fd, r->payload, r->size, 0, (struct sockaddr *)&r->dst,
                   sizeof(r->dst));
        e = errno;
        r->tx.syscalls++;
        if (n < 0) {
            if (!transient(e))
                r->tx.err = -e;
            continue;
        }
        r->tx.dgrams++;
        rtt = baseline_await(r, seq, t0);
        if (!r->tx.err)
            bench_lat_record(r, rtt);
    }
    bench_tx_finish(r, cpu0);
    return NULL;
}

void *bench_baseline_echo(void *arg)
{
    struct bench_run *r = arg;
    uint8_t buf[65536];
    int64_t cpu0 = bench_cpu_ns(), quiet = cli_mono_ns();

    for (;;) {
        struct sockaddr_in from;
        socklen_t len = sizeof(from);
        ssize_t n =
            recvfrom(r->rx_fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
        int e = errno;
        int64_t now = cli_mono_ns();

        r->rx.syscalls++;
        if (n >= 0) {
            r->rx.dgrams++;
            quiet = now;
            r->rx.syscalls++;
            n = sendto(r->rx_fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
            e = errno;
            if (n < 0 && !transient(e)) {
                r->rx.err = -e;
                break;
            }
        } else if (!transient(e)) {
            r->rx.err = -e;
            break;
        }
        if (bench_rx_finished(r, now, quiet))
            break;
    }
    r->rx.cpu_ns = bench_cpu_ns() - cpu0;
    return NULL;
}
