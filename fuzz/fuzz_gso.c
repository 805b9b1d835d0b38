/* SPDX-License-Identifier: MIT */
/* volley__gso_plan on descriptor arrays derived from the input: whatever
 * the lengths, peers, locals, ECN marks and explicit segments, the plan
 * covers [0, n) in order without gaps, respects the segment limit and the
 * per-family byte ceiling, coalesces only plain same-path datagrams of one
 * size (the last may be shorter), and never puts a segment size on a
 * single datagram. The run array is sized exactly n, so ASan sees any
 * write past it.
 *
 * The same input also drives the GRO split: its last four bytes are a
 * buffer length (at most 65535) and a segment size, and walking that buffer
 * with volley__gso_seg_next must give ceil(len / seg) pieces (one when seg is
 * 0, none when len is 0), all of seg bytes but maybe the last, summing to
 * len, as volley__msg_deliver relies on. */
#define FUZZ_NAME "fuzz_gso"
#include "fuzz.h"
#include "dgram/dgram.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static const char *const peer_text[] = {NULL,
                                        "10.0.0.1:443",
                                        "10.0.0.2:443",
                                        "10.0.0.1:444",
                                        "[2001:db8::1]:443",
                                        "[2001:db8::1%3]:443",
                                        "[2001:db8::2]:443",
                                        "[::ffff:10.0.0.1]:443"};
static const char *const local_text[] = {NULL, "10.0.0.100:0", "[2001:db8::100]:0",
                                         "10.0.0.101:0"};
/* Lengths that sit on the boundaries. */
static const size_t sizes[] = {0,    1,     2,     999,   1000,  1200,  1472,  8000,
                               9000, 16375, 16376, 32753, 32754, 65507, 65527, 65535};

static struct volley_addr addr(const char *s)
{
    struct volley_addr a;
    memset(&a, 0, sizeof a);
    if (s && volley_addr_parse(&a, s))
        abort();
    return a;
}

/* A v4-mapped IPv6 peer is reached over IPv4, with IPv4's ceiling. */
static size_t ceiling(const struct volley_addr *peer)
{
    if (peer->sa.sa_family == AF_INET6 &&
        !volley__addr_is_v4mapped(&peer->sin6.sin6_addr))
        return VOLLEY_UDP6_MAX;
    return VOLLEY_UDP4_MAX;
}

static bool same_path(const struct volley_dgram *a, const struct volley_dgram *b)
{
    return a->ecn == b->ecn && a->ifindex == b->ifindex &&
           volley_addr_equal(&a->peer, &b->peer) &&
           volley_addr_equal(&a->local, &b->local);
}

/* The GRO split of a buffer whose length and segment size are the last
 * four bytes (big-endian u16 each). */
static void fuzz_gro_split(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    const uint8_t *p = data + size - 4;
    uint32_t len = (uint32_t)p[0] << 8 | p[1];
    uint16_t seg = (uint16_t)(p[2] << 8 | p[3]);
    uint32_t off = 0, pieces = 0;
    while (off < len) {
        uint32_t n = volley__gso_seg_next(len, seg, off);
        REQUIRE(n > 0 && n <= len - off);
        if (seg)
            REQUIRE(n == seg || (n < seg && off + n == len));
        else
            REQUIRE(n == len - off);
        off += n;
        REQUIRE(++pieces <= len);
    }
    REQUIRE(off == len);
    REQUIRE(volley__gso_seg_next(len, seg, len) == 0);
    REQUIRE(volley__gso_seg_next(len, seg, len + 1 + p[3]) == 0);
    uint32_t want = seg ? (len + seg - 1) / seg : len > 0;
    REQUIRE(pieces == want);
    if (seg)
        REQUIRE(volley__gso_count(len, seg) == pieces);
}

/* Byte 0: max_segs. Then 4 bytes per descriptor:
 *   b0: peer (3 bits), ecn (2), local (2), explicit segment flag (1)
 *   b1, b2: length (b1 top bit: from the boundary table by b2)
 *   b3: ifindex (low bit), segment size selector */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_gro_split(data, size);
    if (size < 1)
        return 0;
    unsigned max_segs = data[0] < 200 ? data[0] % 130 : 64;
    unsigned n = (unsigned)((size - 1) / 4);
    if (n > VOLLEY_BATCH_MAX)
        n = VOLLEY_BATCH_MAX;
    if (n == 0) {
        struct volley__run none;
        REQUIRE(volley__gso_plan(NULL, 0, max_segs, &none) == 0);
        return 0;
    }
    struct volley_dgram *d = calloc(n, sizeof *d);
    struct volley__run *runs = malloc(n * sizeof *runs);
    if (!d || !runs) {
        free(d);
        free(runs);
        return 0;
    }
    /* Payloads back to back, but for a gap where an input asks: the
     * planner only compares the addresses, never reads them. */
    static uint8_t payload[1];
    uintptr_t at = (uintptr_t)payload;
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *p = data + 1 + (size_t)i * 4;
        struct volley_dgram *x = &d[i];
        x->data = (void *)(at + ((p[3] & 3) == 2));
        x->peer = addr(peer_text[p[0] & 7]);
        x->ecn = p[0] >> 3 & 3;
        x->local = addr(local_text[p[0] >> 5 & 3]);
        x->len = p[1] & 0x80 ? sizes[p[2] % 16] : (size_t)((p[1] & 0x7f) << 8 | p[2]);
        x->ifindex = p[3] & 1;
        if ((p[3] & 3) == 3)
            x->data = NULL; /* bad when len > 0: never joins a run */
        at = (uintptr_t)x->data + x->len;
        if (p[0] & 0x80 && x->len > 0) {
            size_t seg = p[3] >> 1 ? (size_t)(p[3] >> 1) * 97 : x->len;
            x->segment = (uint16_t)(seg > 65535 ? 65535 : seg);
        }
    }

    unsigned nr = volley__gso_plan(d, n, max_segs, runs);
    REQUIRE(nr >= 1 && nr <= n);
    unsigned next = 0, limit = max_segs > 1 ? max_segs : 1;
    for (unsigned k = 0; k < nr; k++) {
        const struct volley__run *r = &runs[k];
        REQUIRE(r->first == next);
        REQUIRE(r->count >= 1 && r->count <= limit && r->count <= n - r->first);
        const struct volley_dgram *f = &d[r->first];
        size_t bytes = 0;
        bool contig = true;
        for (unsigned j = r->first; j < r->first + r->count; j++) {
            contig &= j == r->first || (uintptr_t)d[j].data == (uintptr_t)f->data + bytes;
            bytes += d[j].len;
        }
        REQUIRE(r->bytes == bytes && r->contig == contig);
        if (r->count == 1) {
            /* alone: its own explicit segment, 0 for a plain datagram */
            REQUIRE(r->seg == f->segment);
        } else {
            REQUIRE(r->seg == f->len && r->seg > 0);
            size_t total = 0;
            for (unsigned j = r->first; j < r->first + r->count; j++) {
                const struct volley_dgram *x = &d[j];
                REQUIRE(x->segment == 0 && x->len > 0);
                /* data: the run's first is the caller's to check */
                REQUIRE(j == r->first || x->data);
                REQUIRE(same_path(f, x));
                bool last = j + 1 == r->first + r->count;
                REQUIRE(last ? x->len <= r->seg : x->len == r->seg);
                total += x->len;
            }
            REQUIRE(total <= ceiling(&f->peer));
        }
        next = r->first + r->count;
    }
    REQUIRE(next == n);

    /* Piece counts: ceil(len / seg), 0 for nothing. */
    for (unsigned i = 0; i < n; i++) {
        uint16_t seg = d[i].segment ? d[i].segment : (uint16_t)(1 + (d[i].len & 0xfff));
        unsigned c = volley__gso_count(d[i].len, seg);
        REQUIRE((size_t)c == (d[i].len + seg - 1) / seg);
    }
    free(d);
    free(runs);
    return 0;
}
