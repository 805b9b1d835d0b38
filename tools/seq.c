/* SPDX-License-Identifier: MIT */
/*
 * Sequenced streams: the header, the tracker of what arrived, percentiles.
 */
#include "seq.h"

#include "cli.h"

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
