/* SPDX-License-Identifier: MIT */
/*
 * The volley paths of `volley bench`. Each cell runs a sender thread and a
 * receiver thread over loopback; both are bounded in time so a cell can never
 * hang, whatever the kernel drops.
 */
#include "bench.h"

#include "cli.h"
#include "seq.h"
#include "volley.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int64_t bench_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *bench_path_name(enum bench_path p)
{
    static const char *const names[BENCH_NPATHS] = {
        [BENCH_BASELINE] = "baseline",    [BENCH_RAW] = "raw",
        [BENCH_SCALAR] = "scalar",        [BENCH_MMSG] = "mmsg",
        [BENCH_GSO_GRO] = "gso+gro",      [BENCH_GSO_SPLIT] = "gso-split",
        [BENCH_GSO_PLAIN] = "gso->plain", [BENCH_GRO_SEGS] = "gro-segs",
        [BENCH_URING] = "uring",          [BENCH_URING_GSO] = "uring+gso",
        [BENCH_URING_ZC] = "uring+zc",    [BENCH_TOOLS] = "tools",
        [BENCH_IPERF3] = "iperf3",
    };
    return names[p];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

double bench_median(double *v, unsigned n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(v[0]), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_median_of(const void *recs, size_t stride, size_t off, unsigned n)
{
    double v[BENCH_RUNS_MAX];

    if (n > BENCH_RUNS_MAX)
        n = BENCH_RUNS_MAX;
    for (unsigned i = 0; i < n; i++)
        memcpy(&v[i], (const char *)recs + i * stride + off, sizeof(double));
    return bench_median(v, n);
}

void bench_rcvbuf(int fd)
{
    int size = BENCH_RCVBUF;

    /* Without the privilege (or Linux's FORCE option), settle for the
     * capped size as any program would. */
#ifdef SO_RCVBUFFORCE
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) == 0)
        return;
#endif
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

bool bench_rx_finished(const struct bench_run *r, int64_t now, int64_t quiet_since)
{
    int64_t done = atomic_load(&r->tx_done_ns);

    if (now >= r->rx_deadline_ns)
        return true;
    if (done == 0)
        return false;
    /* Datagrams sent just before the sender finished may still be queued. */
    if (quiet_since < done)
        quiet_since = done;
    return now - quiet_since >= BENCH_QUIET_NS;
}

void bench_tx_start(struct bench_run *r)
{
    r->tx_start_ns = cli_mono_ns();
    r->tx_end_ns = r->tx_start_ns + r->tx_ns;
}

void bench_tx_finish(struct bench_run *r, int64_t cpu_start)
{
    r->tx.cpu_ns = bench_cpu_ns() - cpu_start;
    r->tx.bytes = r->tx.dgrams * r->size;
    atomic_store(&r->tx_done_ns, cli_mono_ns());
}

/* Datagrams per descriptor the sender of r hands volley_send. */
static unsigned tx_per_desc(const struct bench_run *r)
{
    size_t fit = VOLLEY_UDP4_MAX / r->size;

    if ((r->path != BENCH_GRO_SEGS && r->path != BENCH_GSO_SPLIT) || fit < 2)
        return 1;
    return fit < VOLLEY_GSO_SEGMENTS_MAX ? (unsigned)fit : VOLLEY_GSO_SEGMENTS_MAX;
}

static void *volley_tx(void *arg)
{
    struct bench_run *r = arg;
    struct volley_dgram d[BENCH_BATCH];
    struct volley_stats st;
    int64_t cpu0 = bench_cpu_ns();

    /* gro-segs and gso-split send as raw does: GSO buffers
     * (VOLLEY_GSO_SEGMENTS_MAX datagrams or 64 KiB each), one descriptor per
     * buffer. */
    unsigned per = tx_per_desc(r), ndesc = per > 1 ? BENCH_GSO_DESCS : BENCH_BATCH;

    memset(d, 0, sizeof(d));
    for (unsigned i = 0; i < ndesc; i++) {
        d[i].data = per > 1 ? r->payload : r->payload + (size_t)i * r->size;
        d[i].len = r->size * per;
        d[i].segment = per > 1 ? (uint16_t)r->size : 0;
        d[i].peer.sin = r->dst;
    }
    bench_tx_start(r);
    while (r->tx.dgrams < BENCH_CAP && cli_mono_ns() < r->tx_end_ns) {
        uint64_t left = (BENCH_CAP - r->tx.dgrams) / per;
        unsigned n = left < ndesc ? (unsigned)left : ndesc;
        int k;

        if (n == 0)
            break;
        seq_stamp(r->payload, r->size, per > 1 ? per : n, r->stream, r->tx.dgrams);
        k = volley_send(r->tx_sock, d, n);
        if (k > 0) {
            r->tx.dgrams += (uint64_t)k * per;
        } else if (k == 0 || k == -ENOBUFS) {
            volley_wait(r->tx_sock, VOLLEY_WAIT_SEND, BENCH_POLL_MS);
        } else {
            r->tx.err = k;
            break;
        }
    }
    bench_tx_finish(r, cpu0);
    if (volley_get_stats(r->tx_sock, &st, sizeof(st)) == 0)
        r->tx.syscalls = st.tx_syscalls;
    return NULL;
}

static void *volley_rx(void *arg)
{
    struct bench_run *r = arg;
    struct volley_dgram d[BENCH_BATCH];
    struct volley_stats st;
    int64_t cpu0 = bench_cpu_ns(), quiet = cli_mono_ns();

    for (;;) {
        /* Sleeps in the receive when nothing is waiting: one system call. */
        int n = volley_recv_wait(r->rx_sock, d, BENCH_BATCH, BENCH_POLL_MS);
        int64_t now = cli_mono_ns();

        if (n < 0) {
            r->rx.err = n;
            break;
        }
        for (int i = 0; i < n; i++) {
            /* a whole GRO buffer (gro-segs) holds len / segment datagrams */
            unsigned seg = d[i].segment;
            r->rx.dgrams += seg ? (d[i].len + seg - 1) / seg : 1;
            r->rx.bytes += d[i].len;
        }
        if (n > 0)
            quiet = r->last_rx_ns = now;
        if (bench_rx_finished(r, now, quiet))
            break;
    }
    r->rx.cpu_ns = bench_cpu_ns() - cpu0;
    if (volley_get_stats(r->rx_sock, &st, sizeof(st)) == 0)
        r->rx.syscalls = st.rx_syscalls;
    return NULL;
}

/* Both ends on loopback; the options make each path what its name says. */
int bench_volley_open(struct bench_run *r)
{
    enum bench_path p = r->path;
    struct volley_opts tx = VOLLEY_OPTS_INIT, rx = VOLLEY_OPTS_INIT;
    struct volley_addr a;
    int err;

    if (p == BENCH_SCALAR)
        tx.backend = rx.backend = VOLLEY_BACKEND_SCALAR;
    else if (p == BENCH_URING || p == BENCH_URING_GSO || p == BENCH_URING_ZC)
        tx.backend = rx.backend = VOLLEY_BACKEND_URING;
    else
        tx.backend = rx.backend = VOLLEY_BACKEND_MMSG;
    /* Rows without "gso" in their name are one datagram per message. */
    if (p == BENCH_SCALAR || p == BENCH_MMSG || p == BENCH_URING)
        tx.disable = rx.disable = VOLLEY_F_GSO | VOLLEY_F_GRO;
    else if (p == BENCH_GSO_PLAIN)
        rx.disable = VOLLEY_F_GRO;
    else if (p == BENCH_GRO_SEGS)
        rx.enable = VOLLEY_F_GRO_SEGMENTS; /* coalesced buffers handed out whole */
    if (p == BENCH_URING_ZC)
        tx.zc_threshold = 1; /* every message zero-copy */
    rx.rcvbuf = BENCH_RCVBUF;
    err = volley_open(&r->rx_sock, "127.0.0.1:0", &rx);
    if (err >= 0)
        err = volley_local_addr(r->rx_sock, &a);
    if (err >= 0)
        err = volley_open(&r->tx_sock, "127.0.0.1:0", &tx);
    if (err >= 0)
        r->dst = a.sin;
    return err < 0 ? err : 0;
}

void bench_volley_close(struct bench_run *r)
{
    volley_close(r->tx_sock);
    volley_close(r->rx_sock);
}

/* A thread created on `cpu` never runs anywhere else (-1: anywhere).
 * Pinning is Linux's (the tool refuses --cpu elsewhere). */
static int spawn(pthread_t *t, int cpu, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);

    if (err)
        return err;
    if (cpu >= 0) {
#if VOLLEY_HAVE_LINUX
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        err = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
#else
        err = ENOTSUP;
#endif
    }
    if (!err)
        err = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return err;
}

/* The receiver starts first so that it is draining when the flood begins. */
int bench_run_threads(struct bench_run *r, double seconds, const struct bench_pin *pin,
                      void *(*tx)(void *), void *(*rx)(void *))
{
    pthread_t rx_thread, tx_thread;
    int64_t now = cli_mono_ns();
    int err;

    r->tx_ns = (int64_t)(seconds * 1e9);
    r->tx_end_ns = now + r->tx_ns;
    r->rx_deadline_ns = r->tx_end_ns + BENCH_GRACE_NS;
    err = spawn(&rx_thread, pin ? pin->rx : -1, rx, r);
    if (err)
        return -err;
    err = spawn(&tx_thread, pin ? pin->tx : -1, tx, r);
    if (err)
        /* No sender: let the receiver see a finished one and quit. */
        atomic_store(&r->tx_done_ns, cli_mono_ns());
    else
        pthread_join(tx_thread, NULL);
    pthread_join(rx_thread, NULL);
    return -err;
}

static double per(double num, uint64_t den)
{
    return den ? num / (double)den : 0.0;
}

static void fill_result(const struct bench_run *r, enum bench_path p,
                        struct bench_result *out)
{
    double secs = 0.0;

    if (r->rx.dgrams && r->last_rx_ns > r->tx_start_ns)
        secs = (double)(r->last_rx_ns - r->tx_start_ns) / 1e9;
    memset(out, 0, sizeof(*out));
    out->path = p;
    out->size = r->size;
    out->seconds = secs;
    out->sent = r->tx.dgrams;
    out->received = r->rx.dgrams;
    out->lost = r->tx.dgrams > r->rx.dgrams ? r->tx.dgrams - r->rx.dgrams : 0;
    if (secs > 0) {
        out->dgrams_per_s = (double)r->rx.dgrams / secs;
        out->gbit_per_s = (double)r->rx.bytes * 8 / secs / 1e9;
    }
    out->tx_syscalls_per_dgram = per((double)r->tx.syscalls, r->tx.dgrams);
    out->rx_syscalls_per_dgram = per((double)r->rx.syscalls, r->rx.dgrams);
    out->tx_cpu_ns_per_dgram = per((double)r->tx.cpu_ns, r->tx.dgrams);
    out->rx_cpu_ns_per_dgram = per((double)r->rx.cpu_ns, r->rx.dgrams);
}

int bench_cell(enum bench_path p, size_t size, double seconds,
               const struct bench_pin *pin, struct bench_result *out)
{
    struct bench_run r = {.path = p, .size = size, .tx_fd = -1, .rx_fd = -1};
    bool base = p == BENCH_BASELINE, raw = p == BENCH_RAW;
    int err;

    if (p == BENCH_IPERF3 || p == BENCH_TOOLS)
        return -EINVAL; /* not a thread pair: see bench_iperf3_cell, _tools_cell */
    r.stream = seq_stream_id();
    r.payload = calloc(BENCH_BATCH, size);
    if (!r.payload)
        return -ENOMEM;
    if (raw) {
#if VOLLEY_HAVE_LINUX /* raw.c: sendmmsg, recvmmsg, GSO and GRO */
        err = bench_raw_open(&r);
        if (err == 0)
            err = bench_run_threads(&r, seconds, pin, bench_raw_tx, bench_raw_rx);
#else
        err = -ENOTSUP; /* the tool refuses the row before it gets here */
#endif
    } else {
        err = base ? bench_baseline_open(&r) : bench_volley_open(&r);
        if (err == 0)
            err =
                bench_run_threads(&r, seconds, pin, base ? bench_baseline_tx : volley_tx,
                                  base ? bench_baseline_rx : volley_rx);
    }
    if (base || raw)
        bench_baseline_close(&r);
    else
        bench_volley_close(&r);
    free(r.payload);
    if (err == 0)
        err = r.tx.err ? r.tx.err : r.rx.err;
    if (err == 0)
        fill_result(&r, p, out);
    return err;
}
