/* SPDX-License-Identifier: MIT */
/*
 * Sequenced streams, as `volley send`, `recv` and `ping` and the benchmark's
 * cells measure them: the header a sender stamps on each payload, the
 * tracker of what arrived (loss, duplicates, reordering), and percentiles of
 * the times measured.
 */
#ifndef VOLLEY_SEQ_H
#define VOLLEY_SEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The header's layout, as --help gives it; payloads shorter than
 * SEQ_HDR_LEN carry no header. */
#define SEQ_HDR_LEN 24
#define SEQ_HDR_HELP                                                                     \
    "Sequence header (big-endian, at the start of each payload of 24 bytes or more):\n"  \
    "  bytes  0-3   magic \"VLY1\"\n"                                                    \
    "  bytes  4-7   stream id (u32, random per sender run)\n"                            \
    "  bytes  8-15  sequence number (u64, from 0)\n"                                     \
    "  bytes 16-23  send time, CLOCK_REALTIME nanoseconds (u64)\n"

struct seq_hdr {
    uint32_t stream;
    uint64_t seq;
    uint64_t sent_ns;
};

/* buf must hold SEQ_HDR_LEN bytes. */
void seq_hdr_encode(uint8_t *buf, const struct seq_hdr *h);
/* v big-endian at p, by shifts: no <endian.h>, which not every system
 * has (compilers make it a byte swap). */
static inline void seq_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
/* Renumbers an encoded header in place. */
static inline void seq_hdr_renumber(uint8_t *buf, uint64_t seq)
{
    seq_put_be64(buf + 8, seq);
}
/* true when buf/len starts with a header (then *h is filled). */
bool seq_hdr_decode(const uint8_t *buf, size_t len, struct seq_hdr *h);
/* A random stream id for this run. */
uint32_t seq_stream_id(void);
/* Writes headers, sent now, into n datagrams of size bytes laid out back to
 * back in payload, numbered from seq; a no-op when size is below
 * SEQ_HDR_LEN. */
void seq_stamp(uint8_t *payload, size_t size, unsigned n, uint32_t stream, uint64_t seq);

/*
 * Loss, duplicate and reorder tracking for one stream over a sliding window
 * of SEQ_WINDOW sequence numbers, allocated once by seq_track_init.
 * A number below the window counts as reordered (it came late; whether it is
 * also a duplicate can no longer be told). lost = highest + 1 - distinct.
 */
#define SEQ_WINDOW 65536u

struct seq_track {
    uint64_t *seen; /* SEQ_WINDOW bits, indexed by seq % window */
    uint64_t base;  /* lowest number still inside the window */
    uint64_t highest;
    uint64_t distinct;
    uint64_t duplicated;
    uint64_t reordered;
    bool any;
};

int seq_track_init(struct seq_track *t);
void seq_track_free(struct seq_track *t);
void seq_track_add(struct seq_track *t, uint64_t seq);
/* The same as seq_track_add of seq, seq + 1, ..., seq + n - 1 in turn, a
 * bitmap word at a time where they are all new: the usual arrival. */
void seq_track_add_run(struct seq_track *t, uint64_t seq, uint64_t n);
uint64_t seq_track_lost(const struct seq_track *t);

/*
 * What `volley recv` keeps of the first stream carrying the header it sees:
 * the tracker, and the interarrival jitter estimated as RTP does (RFC 3550,
 * 6.4.1: J += (|D| - J) / 16, D the change in transit time, arrival minus
 * the header's send time, between consecutive datagrams of the stream).
 */
struct seq_rx_run {
    bool live;       /* the last datagram of the stream read may be gone on with */
    uint64_t head;   /* its header's bytes 0-7 (magic, stream) as they lie */
    uint64_t seq, n; /* in order from seq, n of them not yet in the tracker */
    /* The group: datagrams of the run with one send time and arrival
     * (each after the first a transit difference of 0) */
    uint64_t sent; /* header bytes 16-23 (send time) as they lie */
    int64_t arrival;
    uint64_t same; /* its datagrams after the first, not yet in the jitter */
    bool timed;    /* its headers carry a send time */
};
struct seq_rx {
    struct seq_track seq;
    bool have_stream;
    uint32_t stream;
    bool have_transit; /* a datagram with a send time has come */
    int64_t transit_ns;
    double jitter_ns;
    struct seq_rx_run run; /* goes on from one batch to the next */
};
/* What a batch adds to the plain counters: payload bytes, the same on the
 * wire as the pacer of `volley send --rate` counts it (payload + 28 bytes
 * for IPv4 and v4-mapped peers, 48 for IPv6), datagrams cut short. */
struct seq_rx_sums {
    uint64_t bytes, wire_bytes, truncated;
};
struct volley_dgram;
/* Accounts for received datagrams d[0..n) in order, each arriving at its
 * kernel timestamp (VOLLEY_DGRAM_TSTAMP) or else at real_now, the same as
 * reading every header in turn would. A datagram that goes on with the one
 * before (the next number of the stream, the same send time and arrival:
 * one send batch, one coalesced buffer) costs a few compares, in the next
 * batch too; the tracker and the jitter see such runs whole, and have
 * seen every datagram of d when it returns. */
void seq_rx_batch(struct seq_rx *r, const struct volley_dgram *d, unsigned n,
                  int64_t real_now, struct seq_rx_sums *sums);

/*
 * Every latency figure the tool prints comes from this one log-linear
 * histogram of nanoseconds: values below 128 exactly, above in 64 steps
 * per power of two, every value up to 2^64 - 1, in a fixed 30 KiB, so
 * nothing is kept or sorted per sample. A percentile is the upper edge of
 * the bucket holding the nearest-rank sample (the smallest value with at
 * least pct% of all at or below it), capped at the largest value seen: it
 * is never below the exact percentile and less than LAT_HIST_ERROR above
 * it, relatively, and p50 <= p90 <= p99 <= p99.9 <= max always holds.
 * min, max and the mean are exact.
 */
#define LAT_HIST_BUCKETS (128 + 57 * 64)
#define LAT_HIST_ERROR   (1.0 / 64) /* a bucket's width over its lower edge */
struct lat_hist {
    uint64_t n, min, max;
    double sum;
    uint64_t b[LAT_HIST_BUCKETS];
};
void lat_hist_add(struct lat_hist *h, uint64_t ns);
/* a += b */
void lat_hist_merge(struct lat_hist *a, const struct lat_hist *b);
/* 0 < pct <= 100; 0 when empty. */
uint64_t lat_hist_pct(const struct lat_hist *h, double pct);

#endif /* VOLLEY_SEQ_H */
