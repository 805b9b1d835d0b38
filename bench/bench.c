/*
 * Benchmark helpers: the sequence header, the sequence tracker,
 * percentiles, and the volley paths of `volley bench`. Each cell runs a sender thread and
 * a receiver thread over loopback; both are bounded in time so a cell can never hang,
 * whatever the kernel drops.
 */
#include "bench.h"

#include "volley.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const uint8_t hdr_magic[4] = {'V', 'L', 'Y', '1'};

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

void bench_hdr_encode(uint8_t *buf, const struct bench_hdr *h)
{
    memcpy(buf, hdr_magic, sizeof(hdr_magic));
    put_be32(buf + 4, h->stream);
    put_be64(buf + 8, h->seq);
    put_be64(buf + 16, h->sent_ns);
}

bool bench_hdr_decode(const uint8_t *buf, size_t len, struct bench_hdr *h)
{
    if (len < BENCH_HDR_LEN || memcmp(buf, hdr_magic, sizeof(hdr_magic)) != 0)
        return false;
    h->stream = (uint32_t)get_be(buf + 4, 4);
    h->seq = get_be(buf + 8, 8);
    h->sent_ns = get_be(buf + 16, 8);
    return true;
}

uint32_t bench_stream_id(void)
{
    uint32_t id;

    if (getrandom(&id, sizeof(id), GRND_NONBLOCK) == (ssize_t)sizeof(id))
        return id;
    /* No entropy yet (early boot): distinct enough between runs. */
    return (uint32_t)bench_real_ns() ^ (uint32_t)getpid() * 2654435761u;
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t bench_real_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

int64_t bench_cpu_ns(void)
{
    return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

int bench_seq_init(struct bench_seq *t)
{
    memset(t, 0, sizeof(*t));
    t->seen = calloc(BENCH_SEQ_WINDOW / 64, sizeof(uint64_t));
    return t->seen ? 0 : -ENOMEM;
}

void bench_seq_free(struct bench_seq *t)
{
    free(t->seen);
    t->seen = NULL;
}

static uint64_t *seen_word(const struct bench_seq *t, uint64_t seq, uint64_t *mask)
{
    uint64_t bit = seq % BENCH_SEQ_WINDOW;

    *mask = 1ull << (bit % 64);
    return &t->seen[bit / 64];
}

/* Move the window up so that it starts at base, forgetting what falls out. */
static void seq_slide(struct bench_seq *t, uint64_t base)
{
    uint64_t mask;

    if (base - t->base >= BENCH_SEQ_WINDOW) {
        memset(t->seen, 0, BENCH_SEQ_WINDOW / 8);
    } else {
        for (uint64_t s = t->base; s < base; s++)
            *seen_word(t, s, &mask) &= ~mask;
    }
    t->base = base;
}

void bench_seq_add(struct bench_seq *t, uint64_t seq)
{
    uint64_t mask, *word;

    if (seq < t->base) {
        t->reordered++;
        t->distinct++;
        return;
    }
    /* Written as a difference: seq comes off the wire and may be near 2^64. */
    if (seq - t->base >= BENCH_SEQ_WINDOW)
        seq_slide(t, seq - BENCH_SEQ_WINDOW + 1);
    word = seen_word(t, seq, &mask);
    if (*word & mask) {
        t->duplicated++;
        return;
    }
    *word |= mask;
    t->distinct++;
    if (t->any && seq < t->highest)
        t->reordered++;
    else
        t->highest = seq;
    t->any = true;
}

uint64_t bench_seq_lost(const struct bench_seq *t)
{
    /* Late arrivals below the window may have been duplicates counted as
     * distinct, so distinct can exceed highest + 1: clamp rather than wrap. */
    if (!t->any || t->distinct > t->highest)
        return 0;
    return t->highest - t->distinct + 1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

void bench_sort_ns(int64_t *v, uint64_t n)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_i64);
}

int64_t bench_percentile(const int64_t *sorted, uint64_t n, double pct)
{
    /* ceil(rank) - 1 as an index; the slack keeps 99.9% of 1000, which
     * floating point makes 999.0000000000001, at rank 999. */
    double rank = ceil(pct / 100.0 * (double)n - 1e-9);
    uint64_t i = rank < 1 ? 0 : (uint64_t)rank - 1;

    return sorted[i < n ? i : n - 1];
}

const char *bench_path_name(enum bench_path p)
{
    static const char *const names[BENCH_NPATHS] = {
        [BENCH_BASELINE] = "baseline",
        [BENCH_SCALAR] = "scalar",
        [BENCH_MMSG] = "mmsg",
        [BENCH_GSO_GRO] = "gso+gro",
        [BENCH_GSO_PLAIN] = "gso->plain",
        [BENCH_URING] = "uring",
        [BENCH_URING_GSO] = "uring+gso",
        [BENCH_URING_ZC] = "uring+zc",
        [BENCH_IPERF3] = "iperf3",
    };
    return names[p];
}

void bench_rcvbuf(int fd)
{
    int size = BENCH_RCVBUF;

    /* Without the privilege, settle for the capped size as any program would. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
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

void bench_stamp(uint8_t *payload, size_t size, unsigned n, uint32_t stream, uint64_t seq)
{
    struct bench_hdr h = {.stream = stream, .sent_ns = (uint64_t)bench_real_ns()};

    if (size < BENCH_HDR_LEN)
        return;
    for (unsigned i = 0; i < n; i++) {
        h.seq = seq + i;
        bench_hdr_encode(payload + (size_t)i * size, &h);
    }
}

void bench_tx_start(struct bench_run *r)
{
    r->tx_start_ns = bench_mono_ns();
    r->tx_end_ns = r->tx_start_ns + r->tx_ns;
}

void bench_tx_finish(struct bench_run *r, int64_t cpu_start)
{
    r->tx.cpu_ns = bench_cpu_ns() - cpu_start;
    r->tx.bytes = r->tx.dgrams * r->size;
    atomic_store(&r->tx_done_ns, bench_mono_ns());
}

static void *volley_tx(void *arg)
{
    struct bench_run *r = arg;
    struct volley_dgram d[BENCH_BATCH];
    struct volley_stats st;
    int64_t cpu0 = bench_cpu_ns();

    memset(d, 0, sizeof(d));
    for (unsigned i = 0; i < BENCH_BATCH; i++) {
        d[i].data = r->payload + (size_t)i * r->size;
        d[i].len = r->size;
        d[i].peer.sin = r->dst;
    }
    bench_tx_start(r);
    while (r->tx.dgrams < BENCH_CAP && bench_mono_ns() < r->tx_end_ns) {
        uint64_t left = BENCH_CAP - r->tx.dgrams;
        unsigned n = left < BENCH_BATCH ? (unsigned)left : BENCH_BATCH;
        int k;

        bench_stamp(r->payload, r->size, n, r->stream, r->tx.dgrams);
        k = volley_send(r->tx_sock, d, n);
        if (k > 0) {
            r->tx.dgrams += (unsigned)k;
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
    int64_t cpu0 = bench_cpu_ns(), quiet = bench_mono_ns();

    for (;;) {
        int n = volley_recv(r->rx_sock, d, BENCH_BATCH);
        int64_t now = bench_mono_ns();

        if (n < 0) {
            r->rx.err = n;
            break;
        }
        for (int i = 0; i < n; i++)
            r->rx.bytes += d[i].len;
        if (n > 0) {
            r->rx.dgrams += (unsigned)n;
            quiet = r->last_rx_ns = now;
        }
        if (bench_rx_finished(r, now, quiet))
            break;
        if (n > 0)
            continue;
        n = volley_wait(r->rx_sock, VOLLEY_WAIT_RECV, BENCH_POLL_MS);
        if (n < 0 && n != -EINTR) {
            r->rx.err = n;
            break;
        }
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
    if (p == BENCH_URING_ZC)
        tx.zc_threshold = 1; /* every message zero-copy */
    rx.rx_batch = BENCH_BATCH;
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

/* A thread created on `cpu` never runs anywhere else (-1: anywhere). */
static int spawn(pthread_t *t, int cpu, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    cpu_set_t set;
    int err = pthread_attr_init(&attr);

    if (err)
        return err;
    if (cpu >= 0) {
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        err = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
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
    int64_t now = bench_mono_ns();
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
        atomic_store(&r->tx_done_ns, bench_mono_ns());
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
    bool base = p == BENCH_BASELINE;
    int err;

    if (p == BENCH_IPERF3)
        return -EINVAL; /* not a thread pair: see bench_iperf3_cell */
    r.stream = bench_stream_id();
    r.payload = calloc(BENCH_BATCH, size);
    if (!r.payload)
        return -ENOMEM;
    err = base ? bench_baseline_open(&r) : bench_volley_open(&r);
    if (err == 0)
        err = bench_run_threads(&r, seconds, pin, base ? bench_baseline_tx : volley_tx,
                                base ? bench_baseline_rx : volley_rx);
    if (base)
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
