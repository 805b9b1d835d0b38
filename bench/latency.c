/* SPDX-License-Identifier: MIT */
/*
 * The latency rows of `volley bench`: ping-pong over loopback with one
 * datagram in flight. The client thread (the cell's sender) stamps a
 * request, sends it and waits for it to come back; the echo thread (the
 * receiver) sends every datagram back where it came from. Both wait in the
 * kernel between datagrams, as a real client and server would, so a round
 * trip includes two wake-ups. The baseline pair is in baseline.c.
 */
#include "bench.h"

#include "cli.h"
#include "seq.h"
#include "volley.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LAT_TIMEOUT_NS (BENCH_LAT_TIMEOUT_MS * 1000000LL)

bool bench_lat_match(const struct bench_run *r, const void *buf, size_t len, uint64_t seq)
{
    struct seq_hdr h;

    /* Too short for a header: with one datagram in flight, it is the one. */
    if (r->size < SEQ_HDR_LEN)
        return true;
    return seq_hdr_decode(buf, len, &h) && h.stream == r->stream && h.seq == seq;
}

void bench_lat_record(struct bench_run *r, int64_t rtt_ns)
{
    if (rtt_ns < 0)
        r->rtt_lost++;
    else if (r->rtt_n < r->rtt_cap) {
        lat_hist_add(r->rtt, (uint64_t)rtt_ns);
        r->rtt_n++;
    }
}

/* The round-trip time of the reply to request seq, sent at t0; -1 when none
 * came within the timeout, or receiving failed (then *err says why). */
static int64_t volley_await(struct bench_run *r, uint64_t seq, int64_t t0, int *err)
{
    struct volley_dgram d[8];
    int64_t deadline = t0 + LAT_TIMEOUT_NS;

    for (;;) {
        /* One system call: it sleeps in the receive. The same timeout every
         * time costs no setsockopt; the deadline is checked after it. */
        int n = volley_recv_wait(r->tx_sock, d, 8, BENCH_POLL_MS);
        int64_t now = cli_mono_ns();

        if (n < 0 && n != -EINTR) {
            *err = n;
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (bench_lat_match(r, d[i].data, d[i].len, seq))
                return now - t0;
        if (now >= deadline)
            return -1;
    }
}

static int volley_send_one(struct bench_run *r, const struct volley_dgram *q)
{
    for (;;) {
        int k = volley_send(r->tx_sock, q, 1);

        if (k != 0 && k != -ENOBUFS)
            return k;
        if (cli_mono_ns() >= r->tx_end_ns)
            return 0;
        volley_wait(r->tx_sock, VOLLEY_WAIT_SEND, BENCH_POLL_MS);
    }
}

static void *volley_ping(void *arg)
{
    struct bench_run *r = arg;
    struct volley_dgram q;
    int64_t cpu0 = bench_cpu_ns();

    memset(&q, 0, sizeof(q));
    q.data = r->payload;
    q.len = r->size;
    q.peer.sin = r->dst;
    bench_tx_start(r);
    for (uint64_t seq = 0; r->rtt_n < r->rtt_cap; seq++) {
        int64_t t0 = cli_mono_ns(), rtt;
        int k;

        if (t0 >= r->tx_end_ns)
            break;
        seq_stamp(r->payload, r->size, 1, r->stream, seq);
        k = volley_send_one(r, &q);
        if (k <= 0) {
            r->tx.err = k;
            break;
        }
        r->tx.dgrams++;
        rtt = volley_await(r, seq, t0, &r->tx.err);
        if (r->tx.err)
            break;
        bench_lat_record(r, rtt);
    }
    bench_tx_finish(r, cpu0);
    return NULL;
}

/* Sends d[0..n) back; gives up on the rest at the deadline. */
static int volley_echo_back(struct bench_run *r, struct volley_dgram *d, unsigned n)
{
    unsigned done = 0;

    for (unsigned i = 0; i < n; i++)
        d[i].segment = 0;
    while (done < n) {
        int k = volley_send(r->rx_sock, d + done, n - done);

        if (k > 0) {
            done += (unsigned)k;
        } else if (k < 0 && k != -ENOBUFS) {
            return k;
        } else {
            if (cli_mono_ns() >= r->rx_deadline_ns)
                return 0;
            volley_wait(r->rx_sock, VOLLEY_WAIT_SEND, BENCH_POLL_MS);
        }
    }
    return 0;
}

static void *volley_echo(void *arg)
{
    struct bench_run *r = arg;
    struct volley_dgram d[BENCH_BATCH];
    int64_t cpu0 = bench_cpu_ns(), quiet = cli_mono_ns();

    for (;;) {
        int n = volley_recv_wait(r->rx_sock, d, BENCH_BATCH, BENCH_POLL_MS);
        int64_t now = cli_mono_ns();

        if (n > 0) {
            r->rx.dgrams += (unsigned)n;
            quiet = now;
            n = volley_echo_back(r, d, (unsigned)n);
            if (n == 0)
                continue;
        }
        if (n < 0) {
            r->rx.err = n;
            break;
        }
        if (bench_rx_finished(r, now, quiet))
            break;
    }
    r->rx.cpu_ns = bench_cpu_ns() - cpu0;
    return NULL;
}

static void fill_latency(struct bench_run *r, struct bench_lat_result *out)
{
    memset(out, 0, sizeof(*out));
    out->path = r->path;
    out->size = r->size;
    out->samples = r->rtt_n;
    out->lost = r->rtt_lost;
    if (r->rtt_n == 0)
        return;
    out->min_us = (double)r->rtt->min / 1e3;
    out->p50_us = (double)lat_hist_pct(r->rtt, 50) / 1e3;
    out->p99_us = (double)lat_hist_pct(r->rtt, 99) / 1e3;
    out->max_us = (double)r->rtt->max / 1e3;
}

int bench_latency_cell(enum bench_path p, size_t size, double seconds,
                       const struct bench_pin *pin, struct bench_lat_result *out)
{
    struct bench_run r = {.path = p, .size = size, .tx_fd = -1, .rx_fd = -1};
    bool base = p == BENCH_BASELINE;
    int err;

    if (p == BENCH_IPERF3 || size == 0)
        return -EINVAL;
    r.stream = seq_stream_id();
    r.rtt_cap = BENCH_LAT_CAP;
    r.payload = calloc(1, size);
    r.rtt = calloc(1, sizeof(*r.rtt));
    if (!r.payload || !r.rtt) {
        free(r.payload);
        free(r.rtt);
        return -ENOMEM;
    }
    err = base ? bench_baseline_open(&r) : bench_volley_open(&r);
    if (err == 0)
        err =
            bench_run_threads(&r, seconds, pin, base ? bench_baseline_ping : volley_ping,
                              base ? bench_baseline_echo : volley_echo);
    if (base)
        bench_baseline_close(&r);
    else
        bench_volley_close(&r);
    if (err == 0)
        err = r.tx.err ? r.tx.err : r.rx.err;
    if (err == 0)
        fill_latency(&r, out);
    free(r.payload);
    free(r.rtt);
    return err;
}
