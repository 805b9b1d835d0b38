/* SPDX-License-Identifier: MIT */
/* Segmentation planning (which descriptors go out as one UDP_SEGMENT
 * message) and GRO/GSO piece arithmetic. Pure; fuzzed by fuzz/fuzz_gso.c. */
#include "dgram.h"

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

/* A descriptor's path: peer, local, ifindex, segment (0 in both, the
 * caller checked), ecn and flags lie together in 64 bytes. Descriptors
 * copied from one template, the usual case, compare equal in four 16-byte
 * loads and xors, all inline: the planner's cost per datagram is mostly
 * this comparison. flags has no say in a run (it is the receive side's),
 * so a difference there only sends the slow comparison below. */
enum {
    PATH_FROM = offsetof(struct volley_dgram, peer),
    PATH_LEN = 64,
};
_Static_assert(offsetof(struct volley_dgram, flags) + 1 - PATH_FROM == PATH_LEN,
               "peer .. flags are 64 bytes without padding");

#if defined(__GNUC__) || defined(__clang__)
typedef uint64_t path_word __attribute__((vector_size(16)));
#define PATH_WORD_ZERO(w) (((w)[0] | (w)[1]) == 0)
#else
typedef uint64_t path_word;
#define PATH_WORD_ZERO(w) ((w) == 0)
#endif
#define PATH_WORDS (PATH_LEN / sizeof(path_word))

struct path {
    path_word w[PATH_WORDS];
};

static inline void path_load(struct path *p, const struct volley_dgram *d)
{
    memcpy(p->w, (const char *)d + PATH_FROM, PATH_LEN);
}

static inline bool path_same(const struct path *p, const struct volley_dgram *d)
{
    const char *b = (const char *)d + PATH_FROM;
    path_word diff = {0}, x;
    for (size_t i = 0; i < PATH_WORDS; i++) {
        memcpy(&x, b + i * sizeof x, sizeof x);
        diff |= p->w[i] ^ x;
    }
    return PATH_WORD_ZERO(diff);
}

/* Same destination, source, interface and ECN: may share one message,
 * whatever the bytes of the addresses that do not count. */
static bool same_path(const struct volley_dgram *a, const struct volley_dgram *b)
{
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
        r->contig = true;
        r->bytes = d[i].len;
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
        unsigned j = i + 1, count = 1;
        /* (addresses as numbers: the first's data may be NULL, and is
         * then refused by the caller's check) */
        uintptr_t base = (uintptr_t)d[i].data;
        bool contig = true;
        unsigned end = n - i > max_segs ? i + max_segs : n;
        struct path head;
        path_load(&head, &d[i]);
        /* Each joins with a length of 1..seg and data; the path compare
         * covers segment (0 in the head). */
        while (j < end) {
            const struct volley_dgram *x = &d[j];
            size_t len = x->len;
            if (len - 1 >= seg || !x->data || total + len > ceiling ||
                !(path_same(&head, x) || (!x->segment && same_path(&d[i], x))))
                break;
            contig &= (uintptr_t)x->data == base + total;
            total += len;
            count++;
            j++;
            if (len < seg)
                break; /* a shorter datagram can only end a run */
        }
        r->count = count;
        r->contig = contig;
        r->bytes = total;
        if (r->count > 1)
            r->seg = (uint16_t)seg;
        i = j;
    }
    return nr;
}
