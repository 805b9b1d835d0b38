/* Segmentation planning (which descriptors go out as one UDP_SEGMENT
 * message) and GRO/GSO piece arithmetic. Pure; fuzzed by fuzz/fuzz_gso.c. */
#include "internal.h"

#include <stddef.h>
#include <string.h>

size_t volley__gso_max_payload(int fam, const struct volley_addr *p)
{
    /* A v4-mapped peer is reached over IPv4, with IPv4's ceiling. */
    if (p->sa.sa_family == AF_INET ||
        (p->sa.sa_family == AF_INET6 && volley__addr_is_v4mapped(&p->sin6.sin6_addr)))
        return VOLLEY_UDP4_MAX;
    if (p->sa.sa_family == AF_INET6)
        return VOLLEY_UDP6_MAX;
    if (fam == AF_INET)
        return VOLLEY_UDP4_MAX;
    return VOLLEY_UDP6_MAX; /* IPv6, the pair; AF_UNIX is left to the kernel */
}

/* The descriptors of a run are usually copies of one address: comparing
 * the bytes settles those without a call per datagram. */
static bool same_addr(const struct volley_addr *a, const struct volley_addr *b)
{
    return memcmp(a, b, sizeof *a) == 0 || volley_addr_equal(a, b);
}

/* n (>= 8, a constant here) bytes equal: eight at a time, the last eight
 * overlapping, all inline (a memcmp call per datagram costs more). */
static inline bool same_bytes(const char *a, const char *b, size_t n)
{
    uint64_t diff = 0, x, y;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        diff |= x ^ y;
    }
    if (i < n) {
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        diff |= x ^ y;
    }
    return diff == 0;
}

/* Same destination, source, interface and ECN: may share one message.
 * peer, local, ifindex, segment (0 in both, the caller checked) and ecn
 * lie together: descriptors copied from one template, the usual case,
 * compare equal in one memcmp. */
static bool same_path(const struct volley_dgram *a, const struct volley_dgram *b)
{
    enum {
        FROM = offsetof(struct volley_dgram, peer),
        TO = offsetof(struct volley_dgram, ecn) + sizeof a->ecn,
    };
    _Static_assert(TO - FROM == 2 * sizeof(struct volley_addr) + sizeof a->ifindex +
                                    sizeof a->segment + sizeof a->ecn,
                   "no padding between peer and ecn");
    if (same_bytes((const char *)a + FROM, (const char *)b + FROM, TO - FROM))
        return true;
    return a->ecn == b->ecn && a->ifindex == b->ifindex &&
           same_addr(&a->peer, &b->peer) && same_addr(&a->local, &b->local);
}

unsigned volley__gso_plan(const struct volley_dgram *d, unsigned n, unsigned max_segs,
                          struct volley__run *runs)
{
    unsigned nr = 0;
    for (unsigned i = 0; i < n;) {
        struct volley__run *r = &runs[nr++];
        r->first = i;
        r->count = 1;
        r->seg = d[i].segment;
        size_t seg = d[i].len;
        /* Explicit GSO buffers, empty datagrams and ones too large to be a
         * segment stand alone. */
        if (max_segs < 2 || d[i].segment || seg == 0 || seg > UINT16_MAX) {
            i++;
            continue;
        }
        /* Without a peer (connected socket) assume the smaller IPv4 ceiling. */
        size_t ceiling = d[i].peer.sa.sa_family == AF_INET6
                             ? volley__gso_max_payload(AF_INET6, &d[i].peer)
                             : VOLLEY_UDP4_MAX;
        size_t total = seg;
        unsigned j = i + 1;
        while (j < n && r->count < max_segs && !d[j].segment && d[j].len > 0 &&
               d[j].len <= seg && total + d[j].len <= ceiling &&
               same_path(&d[i], &d[j])) {
            total += d[j].len;
            r->count++;
            if (d[j++].len < seg)
                break; /* a shorter datagram can only end a run */
        }
        if (r->count > 1)
            r->seg = (uint16_t)seg;
        i = j;
    }
    return nr;
}
