/* SPDX-License-Identifier: MIT */
/* The in-memory pair: delivery both ways, GSO splitting, full queues,
 * seeded impairments, delay, descriptor lifetime, the wake-up fd (an
 * eventfd, or the pipe that stands in for one) and its failures, closing,
 * two threads at once, and bad input. */
#include "dgram/dgram.h"
#include "t.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

/* Impairment payloads: an 8-byte sequence number, then a pattern. */
#define SEQ_LEN 24

static int send1(volley_sock *s, const void *p, size_t len, uint8_t ecn)
{
    struct volley_dgram d = {.data = (void *)p, .len = len, .ecn = ecn};
    return volley_send(s, &d, 1);
}

static void open_pair(struct volley_opts *o, volley_sock **a, volley_sock **b)
{
    o->backend = VOLLEY_BACKEND_PAIR;
    T_OK(volley_pair(a, b, o));
}

static int roundtrip(void)
{
    static const size_t sizes[] = {0, 1, 1200, VOLLEY_UDP6_MAX};
    static uint8_t buf[VOLLEY_UDP6_MAX];
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    T_ASSERT(!strcmp(volley_backend_name(a), "pair"));
    T_ASSERT(volley_features(b) & VOLLEY_F_ECN);
    T_ASSERT(!(volley_features(b) & VOLLEY_F_TIMESTAMP));

    volley_sock *ends[2][2] = {{a, b}, {b, a}};
    uint64_t seq = 0, bytes = 0;
    for (int dir = 0; dir < 2; dir++) {
        volley_sock *tx = ends[dir][0], *rx = ends[dir][1];
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            for (uint8_t ecn = 0; ecn < 4; ecn++, seq++) {
                size_t len = sizes[k];
                t_fill(buf, len, seq);
                T_EQ(send1(tx, buf, len, ecn), 1);
                /* The payload was copied: the caller's buffer is free again. */
                memset(buf, 0, len);
                struct volley_dgram d;
                T_EQ(volley_recv(rx, &d, 1), 1);
                T_PAYLOAD(&d, len, seq, 0);
                T_EQ(d.ecn, ecn);
                T_EQ(d.flags, 0);
                T_EQ(d.peer.sa.sa_family, AF_UNSPEC);
                T_EQ(d.local.sa.sa_family, AF_UNSPEC);
                T_EQ(d.ifindex, 0);
                T_EQ(d.segment, 0);
                T_EQ(d.rx_ns, 0);
                T_EQ(volley_recv(rx, &d, 1), 0);
                if (dir == 0)
                    bytes += len;
            }
        }
    }
    struct volley_stats sa = t_stats(a), sb = t_stats(b);
    T_EQ(sa.tx_dgrams, 16);
    T_EQ(sb.tx_dgrams, 16);
    T_EQ(sa.tx_bytes, bytes);
    T_EQ(sb.rx_bytes, bytes);
    T_EQ(sb.rx_dgrams, 16);
    T_EQ(sa.rx_dgrams, 16);
    T_EQ(sa.tx_syscalls + sa.rx_syscalls + sb.tx_syscalls + sb.rx_syscalls, 0);
    T_EQ(sb.rx_wouldblock, 16);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int features(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.enable = VOLLEY_F_TIMESTAMP;
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    T_ASSERT(volley_features(b) & VOLLEY_F_TIMESTAMP);
    int64_t before = t_realtime_ns();
    T_EQ(send1(a, "t", 1, 0), 1);
    int64_t after = t_realtime_ns();
    struct volley_dgram d;
    T_EQ(volley_recv(b, &d, 1), 1);
    T_ASSERT(d.flags & VOLLEY_DGRAM_TSTAMP);
    T_ASSERT(d.rx_ns >= before && d.rx_ns <= after);
    volley_close(a);
    volley_close(b);

    /* With ECN off the codepoint is not reported, as on a real socket. */
    o = (struct volley_opts)VOLLEY_OPTS_INIT;
    o.disable = VOLLEY_F_ECN;
    open_pair(&o, &a, &b);
    T_ASSERT(!(volley_features(b) & VOLLEY_F_ECN));
    T_EQ(send1(a, "e", 1, 3), 1);
    T_EQ(volley_recv(b, &d, 1), 1);
    T_EQ(d.ecn, 0);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int batch(void)
{
    enum { N = 256, LEN = 100 };
    static uint8_t bufs[N][LEN];
    struct volley_dgram d[N], r[N];
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.rx_batch = N; /* one receive hands out the whole batch */
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    memset(d, 0, sizeof d);
    for (unsigned i = 0; i < N; i++) {
        d[i].data = bufs[i];
        d[i].len = 1 + i % LEN;
        d[i].ecn = (uint8_t)(i % 4);
        t_fill(bufs[i], d[i].len, i);
    }
    T_EQ(volley_send(a, d, N), N);
    T_EQ(volley_recv(b, r, N), N);
    for (unsigned i = 0; i < N; i++) {
        T_PAYLOAD(&r[i], 1 + i % LEN, i, 0);
        T_EQ(r[i].ecn, i % 4);
    }
    T_EQ(volley_recv(b, r, N), 0);
    T_EQ(t_stats(a).tx_dgrams, N);
    T_EQ(t_stats(b).rx_dgrams, N);
    T_EQ(t_stats(a).pair_queue_full, 0);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int gso(void)
{
    uint8_t one[10], buf[1000];
    t_fill(one, sizeof one, 1);
    t_fill(buf, sizeof buf, 2);
    struct volley_dgram d[3] = {
        {.data = one, .len = sizeof one},
        {.data = buf, .len = 1000, .segment = 300, .ecn = 2},
        {.data = buf, .len = 600, .segment = 300},
    };
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    T_EQ(volley_send(a, d, 3), 3);
    struct volley_dgram r[16];
    T_EQ(volley_recv(b, r, 16), 7);
    T_PAYLOAD(&r[0], sizeof one, 1, 0);
    static const size_t want_len[] = {300, 300, 300, 100, 300, 300};
    static const size_t want_off[] = {0, 300, 600, 900, 0, 300};
    for (int i = 0; i < 6; i++) {
        const struct volley_dgram *x = &r[1 + i];
        T_EQ(x->len, want_len[i]);
        T_ASSERT(!memcmp(x->data, buf + want_off[i], want_len[i]));
        T_EQ(x->ecn, i < 4 ? 2 : 0);
        T_EQ(x->segment, 0);
        T_EQ(x->flags, 0);
    }
    struct volley_stats st = t_stats(a);
    T_EQ(st.tx_dgrams, 7);
    T_EQ(st.tx_bytes, 10 + 1000 + 600);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int truncation(void)
{
    static uint8_t buf[300];
    t_fill(buf, sizeof buf, 9);
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.rx_slot_size = 100;
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    struct volley_dgram d[2] = {
        {.data = buf, .len = 150},
        {.data = buf, .len = 100},
    };
    T_EQ(volley_send(a, d, 2), 2);
    struct volley_dgram r[2];
    T_EQ(volley_recv(b, r, 2), 2);
    T_PAYLOAD(&r[0], 100, 9, 0);
    T_EQ(r[0].flags, VOLLEY_DGRAM_TRUNC);
    T_PAYLOAD(&r[1], 100, 9, 0);
    T_EQ(r[1].flags, 0);
    struct volley_stats st = t_stats(b);
    T_EQ(st.rx_truncated, 1);
    T_EQ(st.rx_bytes, 200);
    T_EQ(t_stats(a).tx_bytes, 250);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* Send datagrams first..first+n-1 of 64 bytes in one call, their payloads
 * written by fill. */
static void send_64(volley_sock *s, uint64_t first, unsigned n,
                    void (*fill)(void *, size_t, uint64_t))
{
    static uint8_t bufs[VOLLEY_BATCH_MAX][64];
    struct volley_dgram d[VOLLEY_BATCH_MAX];
    memset(d, 0, n * sizeof d[0]);
    for (unsigned i = 0; i < n; i++) {
        fill(bufs[i], 64, first + i);
        d[i].data = bufs[i];
        d[i].len = 64;
    }
    T_EQ(volley_send(s, d, n), n);
}

/* Send seq first..first+n-1, 64 bytes each, in one call. */
static void send_seqs(volley_sock *s, uint64_t first, unsigned n)
{
    send_64(s, first, n, t_fill);
}

static int full_queue(void)
{
    enum { CAP = 32, K = 5 };
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.pair_capacity = CAP;
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    send_seqs(a, 0, CAP + K);
    T_EQ(t_stats(a).pair_queue_full, K);
    T_EQ(t_stats(a).tx_dgrams, CAP + K);

    struct volley_dgram r[64];
    T_EQ(volley_recv(b, r, 64), CAP);
    for (unsigned i = 0; i < CAP; i++)
        T_PAYLOAD(&r[i], 64, i, 0);
    T_EQ(t_stats(b).rx_kernel_drops, K);
    T_EQ(t_stats(b).rx_dgrams, CAP);

    /* What b holds from its last recv does not shrink the queue. */
    send_seqs(a, 100, CAP);
    T_EQ(t_stats(a).pair_queue_full, K);
    T_EQ(volley_recv(b, r, 64), CAP);
    for (unsigned i = 0; i < CAP; i++)
        T_PAYLOAD(&r[i], 64, 100 + i, 0);

    /* One at a time: the same count. */
    for (unsigned i = 0; i < CAP + K; i++)
        send_seqs(a, 200 + i, 1);
    T_EQ(t_stats(a).pair_queue_full, 2 * K);
    T_EQ(volley_recv(b, r, 64), CAP);
    T_EQ(volley_recv(b, r, 64), 0);
    T_EQ(t_stats(b).rx_kernel_drops, 2 * K);
    volley_close(a);
    volley_close(b);
    return 0;
}

struct imp_counts {
    uint64_t lost, dup, reordered;
};

struct observer {
    uint8_t *seen;
    uint64_t total, max;
    bool any;
    struct imp_counts c;
};

static void observe(struct observer *ob, volley_sock *rx)
{
    struct volley_dgram r[64];
    int n;
    while ((n = T_OK(volley_recv(rx, r, 64))) > 0) {
        for (int i = 0; i < n; i++) {
            uint64_t seq = T_SEQ(&r[i], SEQ_LEN);
            T_ASSERT(seq < ob->total);
            if (ob->seen[seq]) {
                ob->c.dup++;
                continue;
            }
            ob->seen[seq] = 1;
            if (ob->any && seq < ob->max)
                ob->c.reordered++;
            if (!ob->any || seq > ob->max)
                ob->max = seq;
            ob->any = true;
        }
    }
}

/* 20000 datagrams with drop/dup/reorder on, in small batches, the receiver
 * draining between them. What the receiver sees must match what the
 * sender counted. dir 1 sends b -> a. */
static struct imp_counts run_impaired(uint64_t seed, int dir)
{
    enum { TOTAL = 20000, BATCH = 8 };
    static uint8_t seen[TOTAL];
    static uint8_t bufs[BATCH][SEQ_LEN];
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.pair_seed = seed;
    o.pair_drop_ppm = 50000;
    o.pair_dup_ppm = 30000;
    o.pair_reorder_ppm = 40000;
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    volley_sock *tx = dir ? b : a, *rx = dir ? a : b;

    memset(seen, 0, sizeof seen);
    struct observer ob = {.seen = seen, .total = TOTAL};
    struct volley_dgram d[BATCH];
    memset(d, 0, sizeof d);
    for (uint64_t base = 0; base < TOTAL; base += BATCH) {
        for (unsigned i = 0; i < BATCH; i++) {
            t_fill_seq(bufs[i], SEQ_LEN, base + i);
            d[i].data = bufs[i];
            d[i].len = SEQ_LEN;
        }
        T_EQ(volley_send(tx, d, BATCH), BATCH);
        observe(&ob, rx);
    }
    /* A datagram still held back comes out when the receiver looks. */
    observe(&ob, rx);
    for (unsigned i = 0; i < TOTAL; i++)
        ob.c.lost += !seen[i];

    struct volley_stats st = t_stats(tx);
    T_EQ(st.tx_dgrams, TOTAL);
    T_EQ(st.pair_queue_full, 0);
    T_EQ(t_stats(rx).rx_kernel_drops, 0);
    T_EQ(ob.c.lost, st.pair_dropped);
    T_EQ(ob.c.dup, st.pair_duplicated);
    T_EQ(ob.c.reordered, st.pair_reordered);
    T_ASSERT(ob.c.lost > 0 && ob.c.dup > 0 && ob.c.reordered > 0);
    T_EQ(t_stats(rx).rx_dgrams, TOTAL - ob.c.lost + ob.c.dup);
    volley_close(a);
    volley_close(b);
    return ob.c;
}

static bool same_counts(struct imp_counts x, struct imp_counts y)
{
    return x.lost == y.lost && x.dup == y.dup && x.reordered == y.reordered;
}

static int impairments(void)
{
    struct imp_counts first = run_impaired(12345, 0);
    T_ASSERT(same_counts(first, run_impaired(12345, 0)));
    T_ASSERT(!same_counts(first, run_impaired(54321, 0)));
    /* The other direction draws from its own stream. */
    T_ASSERT(!same_counts(first, run_impaired(12345, 1)));
    /* Seed 0 picks a fixed default: still repeatable. */
    T_ASSERT(same_counts(run_impaired(0, 0), run_impaired(0, 0)));
    return 0;
}

static uint64_t seq_of(const struct volley_dgram *d)
{
    T_EQ(d->len, 64);
    return t_seq(d);
}

/* Send seq first..first+n-1 with the seq in the first 8 bytes. */
static void send_numbered(volley_sock *s, uint64_t first, unsigned n)
{
    send_64(s, first, n, t_fill_seq);
}

/* Certain impairments (1e6 ppm) make the exact rules visible. */
static int impairment_rules(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *a, *b;
    struct volley_dgram r[16];

    o.pair_reorder_ppm = 1000000;
    open_pair(&o, &a, &b);
    /* 0 is held, 1 overtakes it, 2 is held and released in order when b
     * looks, as nothing came after it. */
    send_numbered(a, 0, 3);
    T_EQ(volley_recv(b, r, 16), 3);
    T_EQ(seq_of(&r[0]), 1);
    T_EQ(seq_of(&r[1]), 0);
    T_EQ(seq_of(&r[2]), 2);
    T_EQ(t_stats(a).pair_reordered, 1);
    volley_close(a);
    volley_close(b);

    o = (struct volley_opts)VOLLEY_OPTS_INIT;
    o.pair_dup_ppm = 1000000;
    open_pair(&o, &a, &b);
    send_numbered(a, 0, 2);
    T_EQ(volley_recv(b, r, 16), 4);
    for (int i = 0; i < 4; i++)
        T_EQ(seq_of(&r[i]), i / 2);
    T_EQ(t_stats(a).pair_duplicated, 2);
    volley_close(a);
    volley_close(b);

    o = (struct volley_opts)VOLLEY_OPTS_INIT;
    o.pair_drop_ppm = 1000000;
    open_pair(&o, &a, &b);
    send_numbered(a, 0, 5);
    T_EQ(volley_recv(b, r, 16), 0);
    T_EQ(t_stats(a).pair_dropped, 5);
    T_EQ(t_stats(a).tx_dgrams, 5);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* Tiny queues: a held datagram released into a full queue is lost, not
 * reordered; a hold waits for room rather than be dropped by the receiver. */
static int impairment_full(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *a, *b;
    struct volley_dgram r[8];

    o.pair_capacity = 1;
    o.pair_reorder_ppm = 1000000;
    open_pair(&o, &a, &b);
    send_numbered(a, 0, 2);
    T_EQ(t_stats(a).pair_queue_full, 1);
    T_EQ(t_stats(a).pair_reordered, 0);
    T_EQ(volley_recv(b, r, 8), 1);
    T_EQ(seq_of(&r[0]), 1);
    T_EQ(t_stats(b).rx_kernel_drops, 1);
    volley_close(a);
    volley_close(b);

    /* Both copies can never fit a queue of one: the second is counted. */
    o.pair_dup_ppm = 1000000;
    open_pair(&o, &a, &b);
    send_numbered(a, 0, 1);
    T_EQ(t_stats(a).pair_queue_full, 1);
    T_EQ(volley_recv(b, r, 8), 1);
    T_EQ(seq_of(&r[0]), 0);
    T_EQ(volley_recv(b, r, 8), 0);
    T_EQ(t_stats(b).rx_kernel_drops, 1);
    volley_close(a);
    volley_close(b);

    o = (struct volley_opts)VOLLEY_OPTS_INIT;
    o.pair_capacity = 2;
    o.pair_reorder_ppm = 1000000;
    open_pair(&o, &a, &b);
    send_numbered(a, 0, 3); /* 1 0 queued, 2 held */
    T_EQ(volley_recv(b, r, 1), 1);
    T_EQ(volley_recv(b, r, 8), 2);
    T_EQ(seq_of(&r[0]), 0);
    T_EQ(seq_of(&r[1]), 2);
    T_EQ(t_stats(b).rx_kernel_drops, 0);
    T_EQ(t_stats(a).pair_queue_full, 0);
    T_EQ(t_stats(a).pair_reordered, 1);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int delay(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.pair_delay_us = 200000;
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    long long t0 = t_now_ms();
    send_numbered(a, 0, 3);
    struct volley_dgram r[4];
    T_EQ(volley_recv(b, r, 4), 0);
    T_EQ(volley_wait(b, VOLLEY_WAIT_SEND, 0), VOLLEY_WAIT_SEND);
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV, 2000), VOLLEY_WAIT_RECV);
    T_ASSERT(t_now_ms() - t0 >= 200);
    T_EQ(volley_recv(b, r, 4), 3);
    for (int i = 0; i < 3; i++)
        T_EQ(seq_of(&r[i]), i);
    T_ASSERT(t_stats(b).rx_wouldblock >= 1);
    volley_close(a);
    volley_close(b);

    /* Nothing queued: the wait times out. */
    o = (struct volley_opts)VOLLEY_OPTS_INIT;
    open_pair(&o, &a, &b);
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV, 0), 0);
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV, 20), 0);
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV | VOLLEY_WAIT_SEND, 0), VOLLEY_WAIT_SEND);
    send_numbered(a, 0, 1);
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV | VOLLEY_WAIT_SEND, -1),
         VOLLEY_WAIT_RECV | VOLLEY_WAIT_SEND);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int lifetime(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    /* The tightest ring: 4 queued plus 2 loaned entries. */
    o.pair_capacity = 4;
    o.rx_batch = 2;
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    send_seqs(a, 0, 4);
    struct volley_dgram r[8], r2[8];
    T_EQ(volley_recv(b, r, 8), 2);
    /* Refill the queue to the brim behind the loaned datagrams. */
    send_seqs(a, 4, 4);
    T_EQ(t_stats(a).pair_queue_full, 2);
    T_PAYLOAD(&r[0], 64, 0, 0);
    T_PAYLOAD(&r[1], 64, 1, 0);
    T_EQ(volley_recv(b, r2, 8), 2);
    T_PAYLOAD(&r2[0], 64, 2, 0);
    T_PAYLOAD(&r2[1], 64, 3, 0);
    send_seqs(a, 8, 4);
    T_PAYLOAD(&r2[0], 64, 2, 0);
    T_PAYLOAD(&r2[1], 64, 3, 0);
    T_EQ(volley_recv(b, r, 8), 2);
    T_PAYLOAD(&r[0], 64, 4, 0);
    T_PAYLOAD(&r[1], 64, 5, 0);
    T_EQ(volley_recv(b, r, 8), 2);
    T_PAYLOAD(&r[0], 64, 8, 0);
    T_PAYLOAD(&r[1], 64, 9, 0);
    T_EQ(t_stats(a).pair_queue_full, 4);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* volley_fd is an eventfd with the Linux parts, and the read end of a
 * pipe without them (macOS has no eventfd): the portable build runs the
 * pipe. */
static void check_fd_kind(int fd)
{
#if VOLLEY_HAVE_LINUX
    t_assert_eventfd(fd);
#else
    struct stat st;
    T_ASSERT(fstat(fd, &st) == 0);
    T_ASSERT(S_ISFIFO(st.st_mode));
#endif
}

static int wakeup_fd(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    int fa = volley_fd(a), fb = volley_fd(b);
    T_ASSERT(fa >= 0 && fb >= 0 && fa != fb);
    check_fd_kind(fa);
    check_fd_kind(fb);
    T_ASSERT(!t_readable(fa, 0) && !t_readable(fb, 0));
    send_numbered(a, 0, 2);
    T_ASSERT(t_readable(fb, 0));
    T_ASSERT(!t_readable(fa, 0));
    struct volley_dgram r[4];
    T_EQ(volley_recv(b, r, 1), 1);
    T_ASSERT(t_readable(fb, 0));
    T_EQ(volley_recv(b, r, 4), 1);
    T_ASSERT(!t_readable(fb, 0));
    T_EQ(volley_recv(b, r, 4), 0);
    T_ASSERT(!t_readable(fb, 0));
    send_numbered(b, 0, 1);
    T_ASSERT(t_readable(fa, 0));
    volley_close(a);
    volley_close(b);

    /* A held-back datagram is waiting too: the fd must say so. */
    o.pair_reorder_ppm = 1000000;
    open_pair(&o, &a, &b);
    send_numbered(a, 0, 1);
    T_ASSERT(t_readable(volley_fd(b), 0));
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV, 2000), VOLLEY_WAIT_RECV);
    T_EQ(volley_recv(b, r, 4), 1);
    T_ASSERT(!t_readable(volley_fd(b), 0));
    T_EQ(t_stats(a).pair_reordered, 0);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* The wake-up fd's calls fail only by injection (the fd is signalled at
 * most once and open while its socket is), but when they do: a pair that
 * cannot open one is not made and leaks nothing, and a failed signal or
 * drain is made good by the next change of the queue. */
static int wakeup_faults(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.backend = VOLLEY_BACKEND_PAIR;
    volley_sock *a = NULL, *b = NULL;
    int before = t_count_fds();
    for (unsigned nth = 1; nth <= 2; nth++) { /* a's, then b's */
        volley__sys_fault_set(VOLLEY__SYS_EVENTFD, nth, 1, EMFILE, 0);
        T_EQ(volley_pair(&a, &b, &o), -EMFILE);
        volley__sys_fault_clear();
        T_EQ(t_count_fds(), before);
    }
    T_OK(volley_pair(&a, &b, &o));
    int fb = volley_fd(b);

    volley__sys_fault_set(VOLLEY__SYS_EVENTFD_WRITE, 1, 1, EAGAIN, 0);
    send_numbered(a, 0, 1);
    volley__sys_fault_clear();
    T_ASSERT(!t_readable(fb, 0)); /* queued, but the signal failed */
    send_numbered(a, 1, 1);
    T_ASSERT(t_readable(fb, 0));

    struct volley_dgram r[4];
    volley__sys_fault_set(VOLLEY__SYS_EVENTFD_READ, 1, 1, EINTR, 0);
    T_EQ(volley_recv(b, r, 4), 2);
    volley__sys_fault_clear();
    T_ASSERT(t_readable(fb, 0)); /* empty, but the drain failed */
    T_EQ(volley_recv(b, r, 4), 0);
    T_ASSERT(!t_readable(fb, 0));

    volley_close(a);
    volley_close(b);
    T_EQ(t_count_fds(), before);
    return 0;
}

static int closing(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    send_numbered(b, 0, 2);
    send_numbered(a, 0, 3);
    struct volley_dgram r[8];
    T_EQ(volley_recv(a, r, 1), 1);
    volley_close(b); /* with three datagrams still queued for it */
    T_EQ(send1(a, "x", 1, 0), -EPIPE);
    struct volley_dgram d[2] = {{.data = "y", .len = 1}, {.data = "z", .len = 1}};
    T_EQ(volley_send(a, d, 2), -EPIPE);
    T_EQ(t_stats(a).tx_dgrams, 3);
    /* What b sent before closing is still delivered. */
    T_EQ(volley_recv(a, r, 8), 1);
    T_EQ(seq_of(&r[0]), 1);
    volley_close(a);

    /* The other order, with loaned, queued and held datagrams about:
     * b holds 1, 0 3 2 are queued, 4 is held back. */
    o.pair_reorder_ppm = 1000000;
    open_pair(&o, &a, &b);
    send_numbered(a, 0, 2);
    T_EQ(volley_recv(b, r, 1), 1);
    T_EQ(seq_of(&r[0]), 1);
    send_numbered(a, 2, 3);
    volley_close(a);
    T_EQ(send1(b, "x", 1, 0), -EPIPE);
    T_EQ(volley_recv(b, r, 8), 4);
    static const uint64_t want[] = {0, 3, 2, 4};
    for (int i = 0; i < 4; i++)
        T_EQ(seq_of(&r[i]), want[i]);
    volley_close(b);
    return 0;
}

/* Two threads, each driving one side: sending and receiving at once. */
struct flow {
    volley_sock *s;
    atomic_int *my_done, *peer_done;
    uint64_t got;
};

static void *drive(void *arg)
{
    enum { TOTAL = 100000, BATCH = 32 };
    struct flow *f = arg;
    uint64_t next = 0;
    uint8_t bufs[BATCH][64];
    struct volley_dgram d[BATCH], r[64];
    memset(d, 0, sizeof d);
    bool peer_was_done = false;
    for (uint64_t sent = 0;;) {
        if (sent < TOTAL) {
            for (unsigned i = 0; i < BATCH; i++) {
                t_fill_seq(bufs[i], 64, sent + i);
                d[i].data = bufs[i];
                d[i].len = 64;
            }
            T_EQ(volley_send(f->s, d, BATCH), BATCH);
            sent += BATCH;
            if (sent == TOTAL)
                atomic_store(f->my_done, 1);
        }
        int n = T_OK(volley_recv(f->s, r, 64));
        for (int i = 0; i < n; i++) {
            uint64_t seq = t_seq(&r[i]);
            /* Full-queue drops leave gaps, never disorder. */
            T_ASSERT(seq >= next && seq < TOTAL);
            next = seq + 1;
        }
        f->got += (uint64_t)n;
        if (n == 0 && sent == TOTAL) {
            /* Everything the peer sent was queued before its flag was set,
             * so an empty recv after seeing the flag is the end. */
            if (peer_was_done)
                break;
            peer_was_done = atomic_load(f->peer_done);
            if (!peer_was_done)
                volley_wait(f->s, VOLLEY_WAIT_RECV, 10);
        }
    }
    return NULL;
}

static int threads(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.pair_capacity = 64;
    volley_sock *a, *b;
    open_pair(&o, &a, &b);
    atomic_int done_a = 0, done_b = 0;
    struct flow fa = {.s = a, .my_done = &done_a, .peer_done = &done_b};
    struct flow fb = {.s = b, .my_done = &done_b, .peer_done = &done_a};
    pthread_t ta, tb;
    T_EQ(pthread_create(&ta, NULL, drive, &fa), 0);
    T_EQ(pthread_create(&tb, NULL, drive, &fb), 0);
    T_EQ(pthread_join(ta, NULL), 0);
    T_EQ(pthread_join(tb, NULL), 0);
    struct volley_stats sa = t_stats(a), sb = t_stats(b);
    /* Every datagram arrived or was counted on both sides as dropped. */
    T_EQ(fb.got + sb.rx_kernel_drops, sa.tx_dgrams);
    T_EQ(fa.got + sa.rx_kernel_drops, sb.tx_dgrams);
    T_EQ(sa.pair_queue_full, sb.rx_kernel_drops);
    T_EQ(sb.pair_queue_full, sa.rx_kernel_drops);
    T_EQ(sb.rx_dgrams, fb.got);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int bad_input(void)
{
    volley_sock *a, *b;
    volley_sock *const sentinel = (volley_sock *)&a;
    struct volley_opts o = VOLLEY_OPTS_INIT;
    T_EQ(volley_pair(NULL, &b, NULL), -EINVAL);
    T_EQ(volley_pair(&a, NULL, NULL), -EINVAL);
    T_EQ(volley_pair(NULL, NULL, &o), -EINVAL);

    static const unsigned others[] = {VOLLEY_BACKEND_SCALAR, VOLLEY_BACKEND_MMSG, 99};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        o = (struct volley_opts)VOLLEY_OPTS_INIT;
        o.backend = others[i];
        a = b = sentinel;
        T_EQ(volley_pair(&a, &b, &o), -EINVAL);
        T_ASSERT(a == sentinel && b == sentinel);
    }
    o = (struct volley_opts)VOLLEY_OPTS_INIT;
    o.pair_capacity = 65537;
    a = b = sentinel;
    T_EQ(volley_pair(&a, &b, &o), -EINVAL);
    T_ASSERT(a == sentinel && b == sentinel);
    o.size = 3;
    T_ASSERT(volley_pair(&a, &b, &o) < 0);
    T_ASSERT(a == sentinel && b == sentinel);

    /* The largest queue is fine (small slots keep it cheap). */
    o = (struct volley_opts)VOLLEY_OPTS_INIT;
    o.pair_capacity = 65536;
    o.rx_slot_size = 64;
    T_OK(volley_pair(&a, &b, &o));
    volley_close(a);
    volley_close(b);

    /* Defaults, and the environment's kernel backend choice is not ours. */
    setenv("VOLLEY_BACKEND", "scalar", 1);
    T_OK(volley_pair(&a, &b, NULL));
    unsetenv("VOLLEY_BACKEND");
    T_EQ(volley_connect(a, "127.0.0.1:9"), -ENOTSUP);
    struct volley_addr addr;
    T_EQ(volley_local_addr(a, &addr), -ENOTSUP);
    /* A destination is ignored: the pair is connected. */
    struct volley_dgram d = {.data = "p", .len = 1};
    T_OK(volley_addr_parse(&d.peer, "127.0.0.1:9"));
    T_EQ(volley_send(a, &d, 1), 1);
    struct volley_dgram r;
    T_EQ(volley_recv(b, &r, 1), 1);
    T_EQ(r.peer.sa.sa_family, AF_UNSPEC);
    volley_close(a);
    volley_close(b);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(bad_input),
        T_CASE(roundtrip),
        T_CASE(features),
        T_CASE(batch),
        T_CASE(gso),
        T_CASE(truncation),
        T_CASE(full_queue),
        T_CASE(impairment_rules),
        T_CASE(impairment_full),
        T_CASE(impairments),
        T_CASE(delay),
        T_CASE(lifetime),
        T_CASE(wakeup_fd),
        T_CASE(wakeup_faults),
        T_CASE(closing),
        T_CASE(threads),
    };
    struct t_run how = {.total_s = 240};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
