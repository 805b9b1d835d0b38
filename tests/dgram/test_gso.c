/* SPDX-License-Identifier: MIT */
/* GSO planning without sockets: boundary tables in the style of the
 * kernel's udpgso selftest (one segment, one byte more, the segment limit,
 * one more than it, a short last segment, the 64 KiB ceiling), runs broken
 * by every key that must break them, and a seeded random comparison with
 * a small reference planner written from the documented rule. */
#include "dgram/dgram.h"
#include "t.h"

#define MAXD 1024

/* Peers and locals by number: 0 none (connected socket). */
static const char *const peers[] = {NULL,
                                    "10.0.0.1:443",
                                    "10.0.0.2:443",
                                    "10.0.0.1:444",
                                    "[2001:db8::1]:443",
                                    "[2001:db8::2]:443",
                                    "[::ffff:10.0.0.1]:443"};
static const char *const locals[] = {NULL, "10.0.0.100:0", "10.0.0.101:0",
                                     "[2001:db8::100]:0"};
enum { V4A = 1, V4B = 2, V4A_PORT = 3, V6A = 4, V6B = 5, V4MAPPED = 6 };

/* A group of identical descriptors. */
struct grp {
    unsigned reps;
    size_t len;
    int peer, local;
    uint8_t ecn;
    uint16_t segment;
    uint32_t ifindex;
};
struct want {
    unsigned count;
    uint16_t seg;
};
struct pcase {
    const char *name;
    unsigned max_segs;
    struct grp g[8];   /* ends at reps == 0 */
    struct want w[16]; /* ends at count == 0 */
};

/* Shorthands: reps x len to peer p with everything else default. */
#define G(r, l, p)                                                                       \
    {                                                                                    \
        .reps = (r), .len = (l), .peer = (p)                                             \
    }
#define W(c, s)                                                                          \
    {                                                                                    \
        .count = (c), .seg = (s)                                                         \
    }

static const struct pcase cases[] = {
    /* udpgso.c style boundaries, limit 64 */
    {"one datagram", 64, {G(1, 1200, V4A)}, {W(1, 0)}},
    {"exactly one segment", 64, {G(1, 1472, V4A)}, {W(1, 0)}},
    {"one byte more than a segment", 64, {G(1, 1200, V4A), G(1, 1, V4A)}, {W(2, 1200)}},
    {"two full segments", 64, {G(2, 1200, V4A)}, {W(2, 1200)}},
    {"segment limit", 64, {G(64, 1000, V4A)}, {W(64, 1000)}},
    {"one more than the limit", 64, {G(65, 1000, V4A)}, {W(64, 1000), W(1, 0)}},
    {"two more than the limit", 64, {G(66, 1000, V4A)}, {W(64, 1000), W(2, 1000)}},
    {"limit then short one",
     64,
     {G(64, 1000, V4A), G(1, 10, V4A)},
     {W(64, 1000), W(1, 0)}},
    {"limit 128", 128, {G(130, 100, V4A)}, {W(128, 100), W(2, 100)}},
    {"limit 2", 2, {G(5, 100, V4A)}, {W(2, 100), W(2, 100), W(1, 0)}},
    {"short last segment", 64, {G(3, 1200, V4A), G(1, 1100, V4A)}, {W(4, 1200)}},
    {"short last, 1 byte", 64, {G(3, 1200, V4A), G(1, 1, V4A)}, {W(4, 1200)}},
    {"short one ends the run",
     64,
     {G(2, 1200, V4A), G(1, 1100, V4A), G(2, 1200, V4A)},
     {W(3, 1200), W(2, 1200)}},
    {"two short in a row", 64, {G(2, 1200, V4A), G(2, 1100, V4A)}, {W(3, 1200), W(1, 0)}},
    {"size increase", 64, {G(3, 1200, V4A), G(1, 1201, V4A)}, {W(3, 1200), W(1, 0)}},
    {"increase after one", 64, {G(1, 1200, V4A), G(3, 1300, V4A)}, {W(1, 0), W(3, 1300)}},
    {"shrinking staircase",
     64,
     {G(1, 300, V4A), G(1, 200, V4A), G(1, 100, V4A)},
     {W(2, 300), W(1, 0)}},
    /* the 64 KiB ceiling: 54 x 1200 = 64800 fits in 65507, 55 x 1200 does not */
    {"v4 ceiling 1200", 64, {G(60, 1200, V4A)}, {W(54, 1200), W(6, 1200)}},
    {"v6 ceiling 1200", 64, {G(60, 1200, V6A)}, {W(54, 1200), W(6, 1200)}},
    /* 46 x 1400 = 64400 fits, 47 x 1400 = 65800 does not */
    {"v4 ceiling 1400", 64, {G(47, 1400, V4A)}, {W(46, 1400), W(1, 0)}},
    /* 65 x 1000 + 507 = 65507 exactly: fits v4 */
    {"v4 ceiling exact", 128, {G(65, 1000, V4A), G(1, 507, V4A)}, {W(66, 1000)}},
    {"v4 ceiling + 1", 128, {G(65, 1000, V4A), G(1, 508, V4A)}, {W(65, 1000), W(1, 0)}},
    /* the same 65527 bytes fit an IPv6 run but not an IPv4 one */
    {"v6 ceiling exact", 128, {G(65, 1000, V6A), G(1, 527, V6A)}, {W(66, 1000)}},
    {"v6 ceiling + 1", 128, {G(65, 1000, V6A), G(1, 528, V6A)}, {W(65, 1000), W(1, 0)}},
    {"v4 peer, v6 total",
     128,
     {G(65, 1000, V4A), G(1, 527, V4A)},
     {W(65, 1000), W(1, 0)}},
    /* a v4-mapped IPv6 peer is reached over IPv4: IPv4's ceiling */
    {"v4-mapped peer ceiling exact",
     128,
     {G(65, 1000, V4MAPPED), G(1, 507, V4MAPPED)},
     {W(66, 1000)}},
    {"v4-mapped peer ceiling + 1",
     128,
     {G(65, 1000, V4MAPPED), G(1, 508, V4MAPPED)},
     {W(65, 1000), W(1, 0)}},
    /* datagrams as large as possible: never two in one run */
    {"max v4 datagrams", 64, {G(3, 65507, V4A)}, {W(1, 0), W(1, 0), W(1, 0)}},
    {"half-size v4", 64, {G(3, 32753, V4A)}, {W(2, 32753), W(1, 0)}},
    {"half-size v4 + 1", 64, {G(2, 32754, V4A)}, {W(1, 0), W(1, 0)}},
    /* runs broken by each key */
    {"peer change", 64, {G(3, 1200, V4A), G(3, 1200, V4B)}, {W(3, 1200), W(3, 1200)}},
    {"peer port change",
     64,
     {G(2, 1200, V4A), G(2, 1200, V4A_PORT)},
     {W(2, 1200), W(2, 1200)}},
    {"peer family change",
     64,
     {G(2, 1200, V4A), G(2, 1200, V6A)},
     {W(2, 1200), W(2, 1200)}},
    {"v6 peer change", 64, {G(2, 1200, V6A), G(1, 1200, V6B)}, {W(2, 1200), W(1, 0)}},
    {"peer ping-pong",
     64,
     {G(1, 100, V4A), G(1, 100, V4B), G(1, 100, V4A)},
     {W(1, 0), W(1, 0), W(1, 0)}},
    {"ecn change",
     64,
     {{.reps = 3, .len = 1200, .peer = V4A, .ecn = 0},
      {.reps = 3, .len = 1200, .peer = V4A, .ecn = 2},
      {.reps = 1, .len = 1200, .peer = V4A, .ecn = 3}},
     {W(3, 1200), W(3, 1200), W(1, 0)}},
    {"local change",
     64,
     {{.reps = 2, .len = 1200, .peer = V4A, .local = 1},
      {.reps = 2, .len = 1200, .peer = V4A, .local = 2},
      {.reps = 2, .len = 1200, .peer = V4A, .local = 0}},
     {W(2, 1200), W(2, 1200), W(2, 1200)}},
    {"ifindex change",
     64,
     {{.reps = 2, .len = 1200, .peer = V4A, .ifindex = 0},
      {.reps = 2, .len = 1200, .peer = V4A, .ifindex = 2}},
     {W(2, 1200), W(2, 1200)}},
    /* connected socket: no peer on any descriptor still coalesces */
    {"connected", 64, {G(5, 1200, 0)}, {W(5, 1200)}},
    /* zero-length datagrams are never coalesced */
    {"zero between",
     64,
     {G(1, 1200, V4A), G(1, 0, V4A), G(1, 1200, V4A)},
     {W(1, 0), W(1, 0), W(1, 0)}},
    {"zeros", 64, {G(3, 0, V4A)}, {W(1, 0), W(1, 0), W(1, 0)}},
    {"zero at the end", 64, {G(2, 1200, V4A), G(1, 0, V4A)}, {W(2, 1200), W(1, 0)}},
    {"zero first", 64, {G(1, 0, V4A), G(2, 1200, V4A)}, {W(1, 0), W(2, 1200)}},
    /* explicit GSO descriptors stand alone, with their own segment */
    {"explicit segment",
     64,
     {G(2, 1200, V4A),
      {.reps = 1, .len = 5000, .peer = V4A, .segment = 1000},
      G(2, 1200, V4A)},
     {W(2, 1200), W(1, 1000), W(2, 1200)}},
    {"explicit segment equal to len",
     64,
     {G(1, 1000, V4A), {.reps = 1, .len = 1000, .peer = V4A, .segment = 1000}},
     {W(1, 0), W(1, 1000)}},
    {"two explicit in a row",
     64,
     {{.reps = 2, .len = 3000, .peer = V4A, .segment = 1000}},
     {W(1, 1000), W(1, 1000)}},
    /* no coalescing at all */
    {"max_segs 0", 0, {G(4, 1200, V4A)}, {W(1, 0), W(1, 0), W(1, 0), W(1, 0)}},
    {"max_segs 1", 1, {G(4, 1200, V4A)}, {W(1, 0), W(1, 0), W(1, 0), W(1, 0)}},
    {"max_segs 1 with short", 1, {G(1, 1200, V4A), G(1, 10, V4A)}, {W(1, 0), W(1, 0)}},
};

static unsigned expand(const struct grp *g, struct volley_dgram *d)
{
    static uint8_t payload[65536];
    unsigned n = 0;
    for (; g->reps; g++) {
        for (unsigned r = 0; r < g->reps; r++) {
            if (n == MAXD)
                T_FAIL("case too long");
            struct volley_dgram *x = &d[n++];
            memset(x, 0, sizeof *x);
            x->data = payload;
            x->len = g->len;
            x->peer = t_addr(peers[g->peer]);
            x->local = t_addr(locals[g->local]);
            x->ecn = g->ecn;
            x->segment = g->segment;
            x->ifindex = g->ifindex;
        }
    }
    return n;
}

/* The documented rule, written plainly: a run starts at any descriptor;
 * it takes the next one while that one is a plain non-empty datagram on
 * the same path, no longer than the first, the previous one was not
 * shorter than the first, the run stays within max_segs and the ceiling. */
/* A v4-mapped IPv6 peer is reached over IPv4, with IPv4's ceiling. */
static size_t ceiling_of(const struct volley_addr *peer)
{
    if (peer->sa.sa_family == AF_INET6 &&
        !volley__addr_is_v4mapped(&peer->sin6.sin6_addr))
        return VOLLEY_UDP6_MAX;
    return VOLLEY_UDP4_MAX;
}

static unsigned ref_plan(const struct volley_dgram *d, unsigned n, unsigned max_segs,
                         struct volley__run *runs)
{
    unsigned nr = 0;
    for (unsigned i = 0; i < n;) {
        struct volley__run *r = &runs[nr++];
        r->first = i;
        r->count = 1;
        r->seg = d[i].segment;
        size_t s = d[i].len, total = s;
        bool open = max_segs > 1 && d[i].segment == 0 && s > 0;
        unsigned j = i + 1;
        while (open && j < n) {
            const struct volley_dgram *x = &d[j];
            if (x->segment || x->len == 0 || x->len > s || r->count + 1 > max_segs ||
                total + x->len > ceiling_of(&d[i].peer) || x->ecn != d[i].ecn ||
                x->ifindex != d[i].ifindex || !volley_addr_equal(&x->peer, &d[i].peer) ||
                !volley_addr_equal(&x->local, &d[i].local))
                break;
            total += x->len;
            r->count++;
            open = x->len == s;
            j++;
        }
        if (r->count > 1)
            r->seg = (uint16_t)s;
        i = j;
    }
    return nr;
}

/* Invariants every plan must hold whatever the input. */
static void check_invariants(const char *name, const struct volley_dgram *d, unsigned n,
                             unsigned max_segs, const struct volley__run *runs,
                             unsigned nr)
{
    unsigned next = 0;
    T_CHECK(nr <= n, "%s: %u runs for %u descriptors", name, nr, n);
    for (unsigned k = 0; k < nr && k < n; k++) {
        const struct volley__run *r = &runs[k];
        T_CHECK(r->first == next && r->count >= 1 && r->first + r->count <= n,
                "%s: run %u [%u,+%u) does not continue at %u", name, k, r->first,
                r->count, next);
        /* bytes and contig, as the builder of the run's iovecs trusts them */
        size_t bytes = 0;
        bool contig = true;
        for (unsigned j = r->first; j < r->first + r->count && j < n; j++) {
            contig &= j == r->first || (const uint8_t *)d[j].data ==
                                           (const uint8_t *)d[r->first].data + bytes;
            bytes += d[j].len;
        }
        T_CHECK(r->bytes == bytes && r->contig == contig,
                "%s: run %u has bytes %zu contig %d, want %zu %d", name, k, r->bytes,
                r->contig, bytes, contig);
        T_CHECK(r->count <= (max_segs > 1 ? max_segs : 1),
                "%s: run %u has %u > max_segs %u", name, k, r->count, max_segs);
        if (r->count == 1) {
            T_CHECK(r->seg == d[r->first].segment, "%s: single run %u seg %u, want %u",
                    name, k, r->seg, d[r->first].segment);
        } else if (r->first + r->count <= n) {
            size_t total = 0;
            for (unsigned j = r->first; j < r->first + r->count; j++) {
                total += d[j].len;
                T_CHECK(d[j].segment == 0 && d[j].len > 0 && d[j].len <= r->seg,
                        "%s: run %u holds d[%u] (len %zu segment %u) under seg %u", name,
                        k, j, d[j].len, d[j].segment, r->seg);
                T_CHECK(j + 1 == r->first + r->count || d[j].len == r->seg,
                        "%s: run %u has a short datagram d[%u] before its end", name, k,
                        j);
            }
            T_CHECK(r->seg == d[r->first].len, "%s: run %u seg %u != first len %zu", name,
                    k, r->seg, d[r->first].len);
            T_CHECK(total <= ceiling_of(&d[r->first].peer), "%s: run %u has %zu bytes",
                    name, k, total);
        }
        next = r->first + r->count;
    }
    T_CHECK(next == n, "%s: runs end at %u of %u", name, next, n);
}

static int tables(void)
{
    static struct volley_dgram d[MAXD];
    static struct volley__run runs[MAXD + 1];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct pcase *pc = &cases[c];
        unsigned n = expand(pc->g, d);
        const struct want *w = pc->w;

        memset(runs, 0xa5, sizeof runs);
        unsigned nr = volley__gso_plan(d, n, pc->max_segs, runs);
        unsigned nw = 0;
        while (nw < 16 && w[nw].count)
            nw++;
        bool same = nr == nw;
        unsigned first = 0;
        for (unsigned k = 0; same && k < nw; k++) {
            same = runs[k].first == first && runs[k].count == w[k].count &&
                   runs[k].seg == w[k].seg;
            first += w[k].count;
        }
        if (!same) {
            char got[512] = "", exp[512] = "";
            for (unsigned k = 0; k < nr && k < 16; k++)
                snprintf(got + strlen(got), sizeof got - strlen(got), " [%u +%u seg %u]",
                         runs[k].first, runs[k].count, runs[k].seg);
            for (unsigned k = 0, f = 0; k < nw; f += w[k].count, k++)
                snprintf(exp + strlen(exp), sizeof exp - strlen(exp), " [%u +%u seg %u]",
                         f, w[k].count, w[k].seg);
            T_CHECK(0, "%s (max_segs %u): got %u runs%s, want %u runs%s", pc->name,
                    pc->max_segs, nr, got, nw, exp);
        }
        T_CHECK(runs[nr].first == 0xa5a5a5a5u, "%s: wrote past the %u runs returned",
                pc->name, nr);
        check_invariants(pc->name, d, n, pc->max_segs, runs, nr);

        /* The reference planner agrees with the table (keeps it honest). */
        static struct volley__run ref[MAXD];
        unsigned nref = ref_plan(d, n, pc->max_segs, ref);
        bool ref_same = nref == nw;
        for (unsigned k = 0; ref_same && k < nw; k++)
            ref_same = ref[k].count == w[k].count && ref[k].seg == w[k].seg;
        if (!ref_same)
            T_FAIL("test table and reference planner disagree on \"%s\"", pc->name);
    }

    /* No descriptors: no runs. */
    T_CHECK(volley__gso_plan(d, 0, 64, runs) == 0, "plan(n = 0) != 0");
    return 0;
}

/* A long batch of the largest size the batch API allows. */
static int full_batch(void)
{
    static struct volley_dgram d[VOLLEY_BATCH_MAX];
    static struct volley__run runs[VOLLEY_BATCH_MAX];
    struct grp g[] = {G(VOLLEY_BATCH_MAX, 1000, V4A), {0}};
    unsigned n = expand(g, d);
    unsigned nr = volley__gso_plan(d, n, 64, runs);
    T_CHECK(nr == VOLLEY_BATCH_MAX / 64, "1024 x 1000 at 64: %u runs, want 16", nr);
    check_invariants("full batch", d, n, 64, runs, nr);
    nr = volley__gso_plan(d, n, 0, runs);
    T_CHECK(nr == VOLLEY_BATCH_MAX, "1024 x 1000 at 0: %u runs, want 1024", nr);
    check_invariants("full batch, no gso", d, n, 0, runs, nr);
    /* Payloads back to back: each run is one iovec's worth; a gap in one
     * run makes that run, and only it, not contiguous. */
    static uint8_t area[VOLLEY_BATCH_MAX * 1000 + 1];
    for (unsigned i = 0; i < n; i++)
        d[i].data = area + (size_t)i * 1000 + (i >= 100);
    nr = volley__gso_plan(d, n, 64, runs);
    check_invariants("full batch, back to back", d, n, 64, runs, nr);
    for (unsigned k = 0; k < nr; k++)
        T_CHECK(runs[k].contig == (k != 1), "back to back: run %u contig %d", k,
                runs[k].contig);
    return 0;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    return t_rand(&rng_state);
}
/* Random batches built to hit the boundaries often: few sizes, few peers. */
static int random_plans(void)
{
    static struct volley_dgram d[300];
    static struct volley__run runs[300], ref[300];
    static const size_t sizes[] = {0, 1, 100, 999, 1000, 1200, 1472, 9000, 32753, 65507};
    static const unsigned limits[] = {0, 1, 2, 3, 8, 64, 128};
    static uint8_t payload[1];
    for (int iter = 0; iter < 20000; iter++) {
        unsigned n = 1 + rnd() % 300;
        unsigned max_segs = limits[rnd() % 7];
        size_t base = sizes[rnd() % 10];
        for (unsigned i = 0; i < n; i++) {
            struct volley_dgram *x = &d[i];
            memset(x, 0, sizeof *x);
            x->data = payload;
            /* mostly the batch size, sometimes shorter, sometimes anything */
            uint32_t k = rnd() % 16;
            if (k < 14)
                x->len = base;
            else if (k == 14)
                x->len = rnd() % (base + 1);
            else
                x->len = sizes[rnd() % 10];
            x->peer = t_addr(peers[rnd() % 23 ? (iter & 1 ? V6A : V4A) : rnd() % 6]);
            x->local = t_addr(locals[rnd() % 31 ? 0 : rnd() % 4]);
            x->ecn = rnd() % 29 ? 0 : (uint8_t)(rnd() % 4);
            x->ifindex = rnd() % 37 ? 0 : rnd() % 2;
            if (rnd() % 41 == 0 && x->len > 0)
                x->segment = (uint16_t)(1 + rnd() % (x->len < 65535 ? x->len : 65535));
        }
        unsigned nr = volley__gso_plan(d, n, max_segs, runs);
        char name[64];
        snprintf(name, sizeof name, "random #%d (n %u, max_segs %u)", iter, n, max_segs);
        unsigned before = t_failures();
        check_invariants(name, d, n, max_segs, runs, nr);
        unsigned nref = ref_plan(d, n, max_segs, ref);
        bool same = nr == nref;
        for (unsigned k = 0; same && k < nr; k++)
            same = runs[k].first == ref[k].first && runs[k].count == ref[k].count &&
                   runs[k].seg == ref[k].seg;
        T_CHECK(same, "%s: plan differs from the reference (%u vs %u runs)", name, nr,
                nref);
        if (t_failures() > before + 5 || t_failures() > 50)
            return 0; /* enough to go on */
    }
    return 0;
}

static int count(void)
{
    static const struct {
        size_t len;
        uint16_t seg;
        unsigned want;
    } rows[] = {
        {0, 1200, 0},      {1, 1200, 1},      {1199, 1200, 1},   {1200, 1200, 1},
        {1201, 1200, 2},   {2400, 1200, 2},   {2401, 1200, 3},   {1, 1, 1},
        {65507, 1, 65507}, {65507, 1200, 55}, {64800, 1200, 54}, {65535, 65535, 1},
        {65536, 65535, 2}, {65507, 65507, 1}, {1000, 1, 1000},   {128000, 1000, 128},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        unsigned r = volley__gso_count(rows[i].len, rows[i].seg);
        T_CHECK(r == rows[i].want, "gso_count(%zu, %u) = %u, want %u", rows[i].len,
                rows[i].seg, r, rows[i].want);
    }
    return 0;
}

static int max_payload(void)
{
    struct volley_addr v4 = t_addr("10.0.0.1:1"), v6 = t_addr("[2001:db8::1]:1"),
                       none = t_addr(NULL);
    T_CHECK(volley__gso_max_payload(AF_INET, &v4) == VOLLEY_UDP4_MAX,
            "max_payload(INET, v4)");
    T_CHECK(volley__gso_max_payload(AF_INET6, &v4) == VOLLEY_UDP4_MAX,
            "max_payload(INET6, v4-mapped peer) = %zu",
            volley__gso_max_payload(AF_INET6, &v4));
    T_CHECK(volley__gso_max_payload(AF_INET6, &v6) == VOLLEY_UDP6_MAX,
            "max_payload(INET6, v6)");
    struct volley_addr mapped = t_addr("[::ffff:10.0.0.1]:1");
    T_CHECK(volley__gso_max_payload(AF_INET6, &mapped) == VOLLEY_UDP4_MAX,
            "max_payload(INET6, [::ffff:10.0.0.1]) = %zu, want %d (it leaves over IPv4)",
            volley__gso_max_payload(AF_INET6, &mapped), VOLLEY_UDP4_MAX);
    T_CHECK(volley__gso_max_payload(AF_INET, &none) == VOLLEY_UDP4_MAX,
            "max_payload(INET, connected) = %zu",
            volley__gso_max_payload(AF_INET, &none));
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case tests[] = {
        T_CASE(count),      T_CASE(max_payload),  T_CASE(tables),
        T_CASE(full_batch), T_CASE(random_plans),
    };
    struct t_run how = {.total_s = 60};
    return t_main(tests, T_COUNT(tests), &how, argc, argv);
}
