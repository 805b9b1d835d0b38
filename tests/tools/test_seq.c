/* SPDX-License-Identifier: MIT */
/*
 * The tools' sequence tracker (tools/seq.c): seq_track_add_run, the bulk
 * form `volley recv` uses for runs of consecutive numbers, must leave the
 * tracker exactly as seq_track_add of each number in turn would, whatever
 * came before: duplicates, late numbers, jumps past the window, numbers
 * near 2^64. seq_rx_batch, `volley recv`'s accounting of a batch, must
 * count what reading every header in turn would: the same tracker, bytes,
 * wire bytes and truncations, and the same jitter to the last bit.
 */
#include "cli.h"
#include "seq.h"
#include "t.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* seq.c reads the clock only to stamp headers. */
int64_t cli_real_ns(void)
{
    return 0;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void same(const struct seq_track *a, const struct seq_track *b, unsigned step)
{
    if (a->base != b->base || a->highest != b->highest || a->distinct != b->distinct ||
        a->duplicated != b->duplicated || a->reordered != b->reordered ||
        a->any != b->any || memcmp(a->seen, b->seen, SEQ_WINDOW / 8) != 0)
        T_FAIL("step %u: trackers differ (base %llu/%llu highest %llu/%llu distinct "
               "%llu/%llu dup %llu/%llu reordered %llu/%llu)",
               step, (unsigned long long)a->base, (unsigned long long)b->base,
               (unsigned long long)a->highest, (unsigned long long)b->highest,
               (unsigned long long)a->distinct, (unsigned long long)b->distinct,
               (unsigned long long)a->duplicated, (unsigned long long)b->duplicated,
               (unsigned long long)a->reordered, (unsigned long long)b->reordered);
}

/* Runs starting where the stream would go on, a little back (duplicates
 * and late ones), far back, far ahead (past the window), from `start`. */
static void random_runs(uint64_t start, unsigned steps)
{
    struct seq_track one, bulk;
    T_ASSERT(seq_track_init(&one) == 0 && seq_track_init(&bulk) == 0);
    uint64_t next = start;
    for (unsigned i = 0; i < steps; i++) {
        uint64_t seq = next, n = 1 + next_random() % 300;
        switch (next_random() % 8) {
        case 0:
            seq = next - next_random() % 200; /* some seen again */
            break;
        case 1:
            seq = next - next_random() % (2 * SEQ_WINDOW); /* late */
            break;
        case 2:
            seq = next + next_random() % (2 * SEQ_WINDOW); /* a jump */
            break;
        case 3:
            seq = next + 1 + next_random() % 64; /* a gap */
            break;
        default:
            break;
        }
        if (seq < start) /* stay on one side of the wrap */
            seq = start;
        if (UINT64_MAX - seq < n)
            n = UINT64_MAX - seq;
        for (uint64_t k = 0; k < n; k++)
            seq_track_add(&one, seq + k);
        seq_track_add_run(&bulk, seq, n);
        same(&one, &bulk, i);
        if (seq + n > next)
            next = seq + n;
    }
    T_EQ(seq_track_lost(&one), seq_track_lost(&bulk));
    seq_track_free(&one);
    seq_track_free(&bulk);
}

static int runs_from_zero(void)
{
    random_runs(0, 3000);
    return 0;
}

static int runs_near_the_top(void)
{
    random_runs(UINT64_MAX - 400000, 3000);
    return 0;
}

/* The plain cases by hand: in order, then a duplicate run, then late. */
static int by_hand(void)
{
    struct seq_track t;
    T_ASSERT(seq_track_init(&t) == 0);
    seq_track_add_run(&t, 0, 1000);
    T_EQ(t.distinct, 1000);
    T_EQ(t.highest, 999);
    T_EQ(seq_track_lost(&t), 0);
    seq_track_add_run(&t, 990, 20); /* 10 again, 10 new */
    T_EQ(t.duplicated, 10);
    T_EQ(t.distinct, 1010);
    T_EQ(t.reordered, 0);
    seq_track_add_run(&t, 2000, 10); /* 990 lost for now */
    T_EQ(seq_track_lost(&t), 990);
    seq_track_add_run(&t, 1500, 5); /* late */
    T_EQ(t.reordered, 5);
    T_EQ(seq_track_lost(&t), 985);
    seq_track_add_run(&t, 3000, 0); /* nothing */
    T_EQ(t.highest, 2009);
    seq_track_free(&t);
    return 0;
}

/* ---- seq_rx_batch against one header at a time ---- */

static void ref_datagram(struct seq_rx *r, struct seq_rx_sums *sums,
                         const struct volley_dgram *x, int64_t real_now)
{
    int64_t arrival = x->flags & VOLLEY_DGRAM_TSTAMP ? x->rx_ns : real_now;
    struct seq_hdr h;

    sums->bytes += x->len;
    sums->wire_bytes += x->len + cli_ip_overhead(&x->peer);
    sums->truncated += (x->flags & VOLLEY_DGRAM_TRUNC) != 0;
    if (!seq_hdr_decode(x->data, x->len, &h))
        return;
    if (!r->have_stream) {
        r->have_stream = true;
        r->stream = h.stream;
    }
    if (h.stream != r->stream)
        return;
    seq_track_add(&r->seq, h.seq);
    if (h.sent_ns == 0 || h.sent_ns > INT64_MAX)
        return;
    int64_t transit = arrival - (int64_t)h.sent_ns;
    if (r->have_transit)
        r->jitter_ns += (fabs((double)(transit - r->transit_ns)) - r->jitter_ns) / 16;
    r->transit_ns = transit;
    r->have_transit = true;
}

static void rx_same(const struct seq_rx *a, const struct seq_rx *b, unsigned batch)
{
    same(&a->seq, &b->seq, batch);
    T_CHECK(a->have_stream == b->have_stream && a->stream == b->stream,
            "batch %u: stream differs", batch);
    T_CHECK(a->have_transit == b->have_transit && a->transit_ns == b->transit_ns,
            "batch %u: transit differs", batch);
    T_CHECK(a->jitter_ns == b->jitter_ns, "batch %u: jitter %.9f != %.9f", batch,
            a->jitter_ns, b->jitter_ns);
}

enum { RX_BATCH = 256, RX_SLOT = 40 };

/* One datagram of a batch: header (or none) in its own slot of buf. */
static void rx_put(struct volley_dgram *x, uint8_t *slot, uint32_t stream, uint64_t seq,
                   uint64_t sent, int64_t rx_ns, bool tstamp)
{
    struct seq_hdr h = {.stream = stream, .seq = seq, .sent_ns = sent};
    memset(x, 0, sizeof(*x));
    seq_hdr_encode(slot, &h);
    x->data = slot;
    x->len = SEQ_HDR_LEN + next_random() % (RX_SLOT - SEQ_HDR_LEN + 1);
    x->peer.sin.sin_family = AF_INET;
    x->flags = tstamp ? VOLLEY_DGRAM_TSTAMP : 0;
    x->rx_ns = tstamp ? rx_ns : 0;
}

/* What a sender and the kernel make of a stream from `start`: send
 * batches sharing a send time, coalesced buffers sharing an arrival, and
 * now and then a loss, a duplicate, a swap, a late one, a header with no
 * send time, another stream, a datagram too short for a header, an IPv6
 * or v4-mapped peer, a truncation, a batch without timestamps. */
static void rx_batches(uint64_t start, unsigned batches)
{
    static uint8_t buf[RX_BATCH * RX_SLOT];
    static struct volley_dgram d[RX_BATCH];
    struct seq_rx fast, ref;
    memset(&fast, 0, sizeof(fast));
    memset(&ref, 0, sizeof(ref));
    T_ASSERT(seq_track_init(&fast.seq) == 0 && seq_track_init(&ref.seq) == 0);
    uint64_t seq = start, sent = 1000000, left_in_send = 0;
    int64_t rx_ns = 5000000, real_now = 9000000;
    for (unsigned b = 0; b < batches; b++) {
        unsigned n = 1 + (unsigned)(next_random() % RX_BATCH), left_in_buf = 0;
        bool tstamp = next_random() % 8 != 0;
        real_now += 1000 + (int64_t)(next_random() % 5000);
        for (unsigned i = 0; i < n; i++) {
            if (left_in_send-- == 0) {
                left_in_send = next_random() % 300;
                sent += 1 + next_random() % 20000;
                if (next_random() % 16 == 0)
                    sent = 0; /* no send time */
            }
            if (left_in_buf-- == 0) {
                left_in_buf = next_random() % 64;
                rx_ns += (int64_t)(next_random() % 30000);
            }
            uint8_t *slot = buf + (size_t)i * RX_SLOT;
            unsigned ev = (unsigned)(next_random() % 64);
            if (ev == 0 && seq < UINT64_MAX - 10)
                seq += 1 + next_random() % 5; /* lost */
            if (ev == 1 && i > 0) {           /* a duplicate of the one before */
                d[i] = d[i - 1];
                memcpy(slot, d[i - 1].data, RX_SLOT);
                d[i].data = slot;
                continue;
            }
            uint64_t num = seq;
            if (ev == 2 && seq - start > 70000)
                num = seq - 1 - next_random() % 70000; /* late, maybe below the window */
            rx_put(&d[i], slot, ev == 3 ? 0xbeef : 0x51u, num, sent, rx_ns, tstamp);
            if (ev == 4)
                d[i].len = next_random() % SEQ_HDR_LEN; /* no header */
            if (ev == 5)
                d[i].flags |= VOLLEY_DGRAM_TRUNC;
            if (ev == 6) {
                d[i].peer.sin6.sin6_family = AF_INET6;
                memset(&d[i].peer.sin6.sin6_addr, 0, sizeof(struct in6_addr));
                if (next_random() % 2) /* v4-mapped: IPv4's overhead */
                    memset(d[i].peer.sin6.sin6_addr.s6_addr + 10, 0xff, 2);
            }
            if (num == seq && ev != 3 && ev != 4 && seq < UINT64_MAX)
                seq++;
        }
        if (n > 2 && next_random() % 4 == 0) { /* two swapped */
            unsigned a = (unsigned)(next_random() % n), c = (unsigned)(next_random() % n);
            struct volley_dgram t = d[a];
            d[a] = d[c];
            d[c] = t;
        }
        struct seq_rx_sums got, want = {0, 0, 0};
        seq_rx_batch(&fast, d, n, real_now, &got);
        for (unsigned i = 0; i < n; i++)
            ref_datagram(&ref, &want, &d[i], real_now);
        T_CHECK(got.bytes == want.bytes && got.wire_bytes == want.wire_bytes &&
                    got.truncated == want.truncated,
                "batch %u: sums differ", b);
        rx_same(&fast, &ref, b);
    }
    T_CHECK(ref.seq.duplicated > 0 && ref.seq.reordered > 0 &&
                seq_track_lost(&ref.seq) > 0,
            "the traffic had no duplicate, late one or loss");
    seq_track_free(&fast.seq);
    seq_track_free(&ref.seq);
}

static int rx_batch_from_zero(void)
{
    rx_batches(0, 2000);
    return 0;
}

static int rx_batch_near_the_top(void)
{
    rx_batches(UINT64_MAX - 300000, 2000);
    return 0;
}

/* Each percentile of the latency histogram against the exact one of the
 * same samples: never below it, less than LAT_HIST_ERROR above it. */
static int hist_within_bound(void)
{
    static const double pcts[] = {1, 50, 90, 99, 99.9, 100};
    enum { N = 5000 };
    static uint64_t v[N];
    struct lat_hist *h = calloc(1, sizeof(*h));

    T_ASSERT(h != NULL);
    for (unsigned i = 0; i < N; i++) {
        /* spread over many powers of two, a few exact small values */
        v[i] = i < 100 ? i : next_random() >> (next_random() % 40 + 10);
        lat_hist_add(h, v[i]);
    }
    for (unsigned i = 1; i < N; i++) /* insertion sort: the exact answer */
        for (unsigned k = i; k > 0 && v[k - 1] > v[k]; k--) {
            uint64_t x = v[k];
            v[k] = v[k - 1];
            v[k - 1] = x;
        }
    T_EQ(h->min, v[0]);
    T_EQ(h->max, v[N - 1]);
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
        uint64_t exact = v[(size_t)ceil(pcts[i] / 100 * N - 1e-9) - 1];
        uint64_t got = lat_hist_pct(h, pcts[i]);

        T_CHECK(got >= exact && (double)(got - exact) <= LAT_HIST_ERROR * (double)exact,
                "p%g: %llu for %llu", pcts[i], (unsigned long long)got,
                (unsigned long long)exact);
    }
    free(h);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(by_hand),
        T_CASE(hist_within_bound),
        T_CASE(runs_from_zero),
        T_CASE(runs_near_the_top),
        T_CASE(rx_batch_from_zero),
        T_CASE(rx_batch_near_the_top),
    };
    struct t_run how = {.total_s = 120};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
