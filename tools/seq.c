/* SPDX-License-Identifier: MIT */
/*
 * Sequenced streams: the header, the tracker of what arrived, percentiles.
 */
#include "seq.h"

#include "cli.h"
#include "volley.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if VOLLEY_HAVE_LINUX
#include <sys/random.h>
#endif

static const uint8_t hdr_magic[4] = {'V', 'L', 'Y', '1'};

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* n bytes big-endian, the inverse of seq_put_be64 (seq.h) */
static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

void seq_hdr_encode(uint8_t *buf, const struct seq_hdr *h)
{
    memcpy(buf, hdr_magic, sizeof(hdr_magic));
    put_be32(buf + 4, h->stream);
    seq_put_be64(buf + 8, h->seq);
    seq_put_be64(buf + 16, h->sent_ns);
}

bool seq_hdr_decode(const uint8_t *buf, size_t len, struct seq_hdr *h)
{
    if (len < SEQ_HDR_LEN || memcmp(buf, hdr_magic, sizeof(hdr_magic)) != 0)
        return false;
    h->stream = (uint32_t)get_be(buf + 4, 4);
    h->seq = get_be(buf + 8, 8);
    h->sent_ns = get_be(buf + 16, 8);
    return true;
}

uint32_t seq_stream_id(void)
{
#if defined(__APPLE__)
    return arc4random();
#else
#if VOLLEY_HAVE_LINUX
    uint32_t id;

    if (getrandom(&id, sizeof(id), GRND_NONBLOCK) == (ssize_t)sizeof(id))
        return id;
#endif
    /* No entropy yet (early boot), or no getrandom: distinct enough
     * between runs. */
    return (uint32_t)cli_real_ns() ^ (uint32_t)getpid() * 2654435761u;
#endif
}

/* One header is encoded; the others are copies of it with the sequence
 * number patched in one big-endian store: a few nanoseconds a datagram, so
 * the tools cost what the library costs. */
void seq_stamp(uint8_t *payload, size_t size, unsigned n, uint32_t stream, uint64_t seq)
{
    struct seq_hdr h = {.stream = stream, .seq = seq, .sent_ns = (uint64_t)cli_real_ns()};

    if (size < SEQ_HDR_LEN || n == 0)
        return;
    seq_hdr_encode(payload, &h);
    for (unsigned i = 1; i < n; i++) {
        uint8_t *p = payload + (size_t)i * size;

        memcpy(p, payload, SEQ_HDR_LEN);
        seq_hdr_renumber(p, seq + i);
    }
}

int seq_track_init(struct seq_track *t)
{
    memset(t, 0, sizeof(*t));
    t->seen = calloc(SEQ_WINDOW / 64, sizeof(uint64_t));
    return t->seen ? 0 : -ENOMEM;
}

void seq_track_free(struct seq_track *t)
{
    free(t->seen);
    t->seen = NULL;
}

static uint64_t *seen_word(const struct seq_track *t, uint64_t seq, uint64_t *mask)
{
    uint64_t bit = seq % SEQ_WINDOW;

    *mask = 1ull << (bit % 64);
    return &t->seen[bit / 64];
}

/* Bits [bit % 64, bit % 64 + k) of a word, k from 1 to 64. */
static uint64_t bits(uint64_t bit, uint64_t k)
{
    return (k == 64 ? ~0ull : (1ull << k) - 1) << (bit % 64);
}

/* The numbers from seq that lie in seq's word of the bitmap, at most n. */
static uint64_t word_chunk(uint64_t seq, uint64_t n)
{
    uint64_t k = 64 - seq % 64;
    return k < n ? k : n;
}

/* Move the window up so that it starts at base, forgetting what falls out:
 * a word at a time. */
static void seq_slide(struct seq_track *t, uint64_t base)
{
    if (base - t->base >= SEQ_WINDOW) {
        memset(t->seen, 0, SEQ_WINDOW / 8);
    } else {
        for (uint64_t s = t->base; s < base;) {
            uint64_t k = word_chunk(s, base - s);
            t->seen[s % SEQ_WINDOW / 64] &= ~bits(s % SEQ_WINDOW, k);
            s += k;
        }
    }
    t->base = base;
}

void seq_track_add(struct seq_track *t, uint64_t seq)
{
    uint64_t mask, *word;

    if (seq < t->base) {
        t->reordered++;
        t->distinct++;
        return;
    }
    /* Written as a difference: seq comes off the wire and may be near 2^64. */
    if (seq - t->base >= SEQ_WINDOW)
        seq_slide(t, seq - SEQ_WINDOW + 1);
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

void seq_track_add_run(struct seq_track *t, uint64_t seq, uint64_t n)
{
    while (n > 0) {
        /* A word's worth (never past 2^64: words are 64-aligned) */
        uint64_t k = word_chunk(seq, n), last = seq + k - 1;

        if ((t->any && seq <= t->highest) || seq < t->base) {
            /* not all new: one by one, as they would have come */
            seq_track_add(t, seq++);
            n--;
            continue;
        }
        /* All above anything seen: after the window moves up for the
         * last, their bits are clear, and none is late. */
        if (last - t->base >= SEQ_WINDOW)
            seq_slide(t, last - SEQ_WINDOW + 1);
        t->seen[seq % SEQ_WINDOW / 64] |= bits(seq % SEQ_WINDOW, k);
        t->distinct += k;
        t->highest = last;
        t->any = true;
        seq += k;
        n -= k;
    }
}

uint64_t seq_track_lost(const struct seq_track *t)
{
    /* Late arrivals below the window may have been duplicates counted as
     * distinct, so distinct can exceed highest + 1: clamp rather than wrap. */
    if (!t->any || t->distinct > t->highest)
        return 0;
    return t->highest - t->distinct + 1;
}

/* 8 bytes big-endian as a number: a load and a byte swap where the
 * compiler can tell (the run's test in seq_rx_batch is in its loop). */
static inline uint64_t load_be64(const uint8_t *p)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) &&                                      \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return __builtin_bswap64(v);
#else
    return get_be(p, 8);
#endif
}

/* RFC 3550 6.4.1 for one datagram of the stream; false when its header
 * carries no send time. Clock offsets between the hosts cancel out. */
static bool rx_jitter(struct seq_rx *r, uint64_t sent_ns, int64_t arrival)
{
    int64_t transit;

    if (sent_ns == 0 || sent_ns > INT64_MAX)
        return false;
    transit = arrival - (int64_t)sent_ns;
    if (r->have_transit)
        r->jitter_ns += (fabs((double)(transit - r->transit_ns)) - r->jitter_ns) / 16;
    r->transit_ns = transit;
    r->have_transit = true;
    return true;
}

/* The group's datagrams after its first move the jitter as a transit
 * difference of 0 does, each by a sixteenth towards 0: J + (0 - J) / 16
 * is J * 15/16 rounded once, which is what the multiply gives (15/16 and
 * 1/16 are exact), so this is the RFC's step, a multiply a datagram. */
static void rx_group_end(struct seq_rx *r, struct seq_rx_run *run)
{
    double j = r->jitter_ns;

    if (run->timed)
        for (uint64_t k = 0; k < run->same; k++)
            j *= 15.0 / 16.0;
    r->jitter_ns = j;
    run->same = 0;
}

/* What the run holds goes to the tracker and the jitter; the next
 * datagram may still go on with it. */
static void rx_run_flush(struct seq_rx *r, struct seq_rx_run *run)
{
    rx_group_end(r, run);
    seq_track_add_run(&r->seq, run->seq, run->n);
    run->seq += run->n;
    run->n = 0;
}

/* A group begins at the header at p, known to be the stream's. */
static void rx_group_begin(struct seq_rx *r, struct seq_rx_run *run, const uint8_t *p,
                           int64_t arrival)
{
    memcpy(&run->sent, p + 16, sizeof(run->sent));
    run->arrival = arrival;
    run->timed = rx_jitter(r, load_be64(p + 16), arrival);
}

/* A datagram that does not go on with the run: read its header in full. */
static void rx_header(struct seq_rx *r, struct seq_rx_run *run,
                      const struct volley_dgram *x, int64_t arrival)
{
    struct seq_hdr h;

    if (run->live)
        rx_run_flush(r, run);
    run->live = false;
    if (!seq_hdr_decode(x->data, x->len, &h))
        return;
    if (!r->have_stream) {
        r->have_stream = true;
        r->stream = h.stream;
    }
    if (h.stream != r->stream)
        return;
    memcpy(&run->head, x->data, sizeof(run->head));
    run->seq = h.seq;
    run->n = 1;
    run->live = true;
    rx_group_begin(r, run, x->data, arrival);
}

/* The plain counters of a batch. */
struct rx_tally {
    uint64_t bytes, v6, trunc;
};

static inline void rx_count(struct rx_tally *t, const struct volley_dgram *x)
{
    t->bytes += x->len;
    t->v6 += !cli_over_ipv4(&x->peer);
    t->trunc += (x->flags & VOLLEY_DGRAM_TRUNC) != 0;
}

/* How many of d[0..n) go on with the run's group in turn: the stream's
 * next numbers (never past 2^64 - 1), its send time and arrival. The usual
 * datagram, so everything stays in registers: three loads and compares. */
static unsigned rx_group_more(const struct volley_dgram *d, unsigned n,
                              const struct seq_rx_run *run, int64_t real_now,
                              struct rx_tally *t)
{
    const uint64_t head = run->head, sent = run->sent, next = run->seq + run->n;
    const int64_t arrival = run->arrival;
    struct rx_tally k = *t;
    unsigned i = 0;

    /* numbers from next up to 2^64 - 1 at most, none when next wrapped */
    if (next == 0)
        n = 0;
    else if (UINT64_MAX - next < n)
        n = (unsigned)(UINT64_MAX - next + 1);
    for (; i < n; i++) {
        const struct volley_dgram *x = &d[i];
        const uint8_t *p = x->data;
        uint64_t h, s;

        if (x->len < SEQ_HDR_LEN ||
            (x->flags & VOLLEY_DGRAM_TSTAMP ? x->rx_ns : real_now) != arrival)
            break;
        memcpy(&h, p, sizeof(h));
        memcpy(&s, p + 16, sizeof(s));
        if (h != head || s != sent || load_be64(p + 8) != next + i)
            break;
        rx_count(&k, x);
    }
    *t = k;
    return i;
}

void seq_rx_batch(struct seq_rx *r, const struct volley_dgram *d, unsigned n,
                  int64_t real_now, struct seq_rx_sums *sums)
{
    struct seq_rx_run run = r->run;
    struct rx_tally t = {0, 0, 0};

    for (unsigned i = 0; i < n;) {
        if (run.live) {
            unsigned k = rx_group_more(d + i, n - i, &run, real_now, &t);
            run.n += k;
            run.same += k;
            i += k;
            if (i == n)
                break;
        }
        const struct volley_dgram *x = &d[i++];
        const uint8_t *p = x->data;
        int64_t arrival = x->flags & VOLLEY_DGRAM_TSTAMP ? x->rx_ns : real_now;
        uint64_t head;

        rx_count(&t, x);
        if (!run.live || x->len < SEQ_HDR_LEN) {
            rx_header(r, &run, x, arrival);
            continue;
        }
        memcpy(&head, p, sizeof(head));
        /* The next number of the stream (never past 2^64 - 1)... */
        if (head != run.head || run.seq + run.n == 0 ||
            load_be64(p + 8) != run.seq + run.n) {
            rx_header(r, &run, x, arrival);
            continue;
        }
        run.n++;
        /* ...beginning the next group (rx_group_more took it otherwise) */
        rx_group_end(r, &run);
        rx_group_begin(r, &run, p, arrival);
    }
    /* The figures read between batches count every datagram so far. */
    if (run.live)
        rx_run_flush(r, &run);
    r->run = run;
    sums->bytes = t.bytes;
    sums->wire_bytes = t.bytes + 28 * (uint64_t)n + 20 * t.v6;
    sums->truncated = t.trunc;
}

static unsigned hist_index(uint64_t v)
{
    unsigned msb, shift;

    if (v < 128)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - 6; /* the top 7 bits stay: 64 steps per power of two */
    return 128 + (shift - 1) * 64 + (unsigned)(v >> shift) - 64;
}

/* The largest value bucket i holds. */
static uint64_t hist_upper(unsigned i)
{
    unsigned k, shift;
    uint64_t mant;

    if (i < 128)
        return i;
    k = i - 128;
    shift = k / 64 + 1;
    mant = k % 64 + 64;
    if (mant + 1 == 128 && shift == 57)
        return UINT64_MAX;
    return ((mant + 1) << shift) - 1;
}

void lat_hist_add(struct lat_hist *h, uint64_t ns)
{
    if (h->n == 0 || ns < h->min)
        h->min = ns;
    if (ns > h->max)
        h->max = ns;
    h->n++;
    h->sum += (double)ns;
    h->b[hist_index(ns)]++;
}

void lat_hist_merge(struct lat_hist *a, const struct lat_hist *b)
{
    if (b->n == 0)
        return;
    if (a->n == 0 || b->min < a->min)
        a->min = b->min;
    if (b->max > a->max)
        a->max = b->max;
    a->n += b->n;
    a->sum += b->sum;
    for (unsigned i = 0; i < LAT_HIST_BUCKETS; i++)
        a->b[i] += b->b[i];
}

uint64_t lat_hist_pct(const struct lat_hist *h, double pct)
{
    /* ceil(rank); the slack keeps 99.9% of 1000, which floating point
     * makes 999.0000000000001, at rank 999. */
    double rank = ceil(pct / 100.0 * (double)h->n - 1e-9);
    uint64_t want = rank < 1 ? 1 : (uint64_t)rank, seen = 0;

    if (h->n == 0)
        return 0;
    for (unsigned i = 0; i < LAT_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t v = hist_upper(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}
