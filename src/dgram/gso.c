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

/* Same destination, source, interface and ECN: may share one message,
 * whatever the bytes of the addresses that do not count. */
static bool same_path(const struct volley_dgram *a, const struct volley_dgram *b)
{
    return a->ecn == b->ecn && a->ifindex == b->ifindex &&
           same_addr(&a->peer, &b->peer) && same_addr(&a->local, &b->local);
}

void volley__gso_run(const struct volley_dgram *d, unsigned n, unsigned max_segs,
                     struct volley__run *r)
{
    r->first = 0;
    r->count = 1;
    r->seg = d[0].segment;
    r->contig = true;
    r->bytes = d[0].len;
    size_t seg = d[0].len;
    /* Explicit GSO buffers, empty datagrams and ones too large to be a
     * segment stand alone. */
    if (max_segs < 2 || d[0].segment || seg == 0 || seg > UINT16_MAX)
        return;
    /* Without a peer (connected socket) assume the smaller IPv4 ceiling. */
    size_t ceiling = d[0].peer.sa.sa_family == AF_INET6
                         ? volley__gso_max_payload(AF_INET6, &d[0].peer)
                         : VOLLEY_UDP4_MAX;
    /* (addresses as numbers: the first's data may be NULL, and is then
     * refused by the caller's check) */
    uintptr_t base = (uintptr_t)d[0].data;
    unsigned end = n > max_segs ? max_segs : n;
    struct volley__path head;
    volley__path_load(&head, &d[0]);
    /* Datagrams of the first's length, while j + 1 of them fit under the
     * ceiling: no sum to check, the length compare covers 1..seg, and the
     * path compare covers segment (0 in the head). */
    size_t fit = (size_t)end * seg <= ceiling ? end : ceiling / seg;
    unsigned lim = fit < end ? (unsigned)fit : end, j = 1;
    bool contig = true;
    for (; j < lim; j++) {
        const struct volley_dgram *x = &d[j];
        if (x->len != seg || !x->data ||
            !(volley__path_same(&head, x) || (!x->segment && same_path(&d[0], x))))
            break;
        contig &= (uintptr_t)x->data == base + j * seg;
    }
    /* Then one more may end the run: a shorter one (a full one stopped
     * above for a reason that holds here too), with a length of 1..seg,
     * data, room under the ceiling and the path. */
    size_t total = j * seg;
    if (j < end) {
        const struct volley_dgram *x = &d[j];
        size_t len = x->len;
        if (len - 1 < seg && x->data && total + len <= ceiling &&
            (volley__path_same(&head, x) || (!x->segment && same_path(&d[0], x)))) {
            contig &= (uintptr_t)x->data == base + total;
            total += len;
            j++;
        }
    }
    r->count = j;
    r->contig = contig;
    r->bytes = total;
    if (j > 1)
        r->seg = (uint16_t)seg;
}

unsigned volley__gso_plan(const struct volley_dgram *d, unsigned n, unsigned max_segs,
                          struct volley__run *runs)
{
    unsigned nr = 0;
    for (unsigned i = 0; i < n; nr++) {
        volley__gso_run(d + i, n - i, max_segs, &runs[nr]);
        runs[nr].first = i;
        i += runs[nr].count;
    }
    return nr;
}
