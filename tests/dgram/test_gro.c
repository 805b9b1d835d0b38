/* SPDX-License-Identifier: MIT */
/* GRO splitting and segmentation offload interop.
 *
 * First volley__gso_seg_next without sockets: boundary rows and exhaustive
 * walks (ceil(len / seg) pieces, all full but maybe the last, summing to
 * len). Then over loopback, for each batching backend (mmsg, and uring
 * when it opens):
 *   - segmented volley sends read by a plain socket that knows nothing of
 *     GRO (IPv4 and IPv6): count, sizes, bytes, order;
 *   - plain sendto() datagrams read by a volley socket with GRO on;
 *   - coalesced buffers: every piece carries its buffer's peer, ECN, local
 *     address, interface, timestamp and VOLLEY_DGRAM_GRO, and the pieces
 *     of each buffer are exactly the datagrams of one segmented send;
 *   - coalesced buffers handed out through arrays of 1 and 3 entries.
 * A socket case that cannot run here (no GSO or GRO, no IPv6, no io_uring)
 * is skipped on its own; the pure tables always run. */
#include "dgram/dgram.h"
#include "t.h"

#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <unistd.h>

/* ---- pure: volley__gso_seg_next ---- */

static const struct {
    uint32_t len;
    uint16_t seg;
    uint32_t off;
    uint32_t want;
} seg_rows[] = {
    /* not coalesced: the buffer is one datagram */
    {1200, 0, 0, 1200},
    {1, 0, 0, 1},
    {65535, 0, 0, 65535},
    {1200, 0, 1200, 0},
    /* exactly one segment, one byte less, one byte more */
    {1200, 1200, 0, 1200},
    {1199, 1200, 0, 1199},
    {1201, 1200, 0, 1200},
    {1201, 1200, 1200, 1},
    /* many full segments: first, middle, last */
    {64800, 1200, 0, 1200},
    {64800, 1200, 32400, 1200},
    {64800, 1200, 63600, 1200},
    /* short last segment */
    {10300, 1000, 9000, 1000},
    {10300, 1000, 10000, 300},
    {65507, 1200, 64800, 707},
    /* the smallest and largest segment sizes */
    {65507, 1, 0, 1},
    {65507, 1, 65506, 1},
    {65535, 65535, 0, 65535},
    {65507, 65535, 0, 65507},
    /* len 0 */
    {0, 0, 0, 0},
    {0, 1200, 0, 0},
    /* off at or after the end */
    {1200, 1200, 1200, 0},
    {2400, 1200, 2400, 0},
    {2400, 1200, 2401, 0},
    {2400, 1200, UINT32_MAX, 0},
    {UINT32_MAX, 65535, UINT32_MAX, 0},
    /* lengths near the top of uint32_t: no overflow in the arithmetic */
    {UINT32_MAX, 65535, UINT32_MAX - 10, 10},
    {UINT32_MAX, 0, UINT32_MAX - 1, 1},
};

static int gro_rows(void)
{
    for (size_t i = 0; i < T_COUNT(seg_rows); i++) {
        uint32_t r =
            volley__gso_seg_next(seg_rows[i].len, seg_rows[i].seg, seg_rows[i].off);
        T_CHECK(r == seg_rows[i].want, "gro_next(%u, %u, %u) = %u, want %u",
                seg_rows[i].len, seg_rows[i].seg, seg_rows[i].off, r, seg_rows[i].want);
    }
    return 0;
}

/* Walk a buffer as volley__msg_deliver does; false after reporting a broken
 * invariant. */
static bool walk(uint32_t len, uint16_t seg)
{
    uint32_t off = 0, pieces = 0;
    uint64_t sum = 0;
    while (off < len && pieces <= len) {
        uint32_t n = volley__gso_seg_next(len, seg, off);
        if (!T_CHECK(n > 0, "walk(%u, %u): empty piece at %u", len, seg, off))
            return false;
        bool last = off + (uint64_t)n == len;
        if (seg && !T_CHECK(n == seg || (last && n < seg),
                            "walk(%u, %u): piece %u at %u is %u bytes", len, seg, pieces,
                            off, n))
            return false;
        if (!seg && !T_CHECK(last, "walk(%u, 0): %u bytes at %u, not the whole rest", len,
                             n, off))
            return false;
        if (!T_CHECK(off + (uint64_t)n <= len, "walk(%u, %u): piece past the end", len,
                     seg))
            return false;
        off += n;
        sum += n;
        pieces++;
    }
    uint32_t want = seg ? (uint32_t)(((uint64_t)len + seg - 1) / seg) : len > 0;
    if (!T_CHECK(pieces == want && sum == len, "walk(%u, %u): %u pieces, %llu bytes", len,
                 seg, pieces, (unsigned long long)sum))
        return false;
    if (seg && !T_CHECK(volley__gso_count(len, seg) == want,
                        "gso_count(%u, %u) = %u, the walk found %u", len, seg,
                        volley__gso_count(len, seg), want))
        return false;
    return T_CHECK(volley__gso_seg_next(len, seg, off) == 0,
                   "walk(%u, %u): a piece after the end", len, seg);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void)
{
    return t_rand(&rng_state);
}

static int gro_walks(void)
{
    static const uint16_t segs[] = {0,   1,    2,    3,    7,    100,
                                    999, 1000, 1199, 1200, 1201, 1472};
    for (size_t s = 0; s < sizeof segs / sizeof segs[0]; s++)
        for (uint32_t len = 0; len <= 3000; len++)
            if (!walk(len, segs[s]))
                return 0;
    static const uint32_t big[] = {32753, 32754, 64799, 64800, 64801,
                                   65506, 65507, 65527, 65535};
    static const uint16_t bigsegs[] = {1, 1200, 1472, 8000, 32753, 32754, 65507, 65535};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        for (size_t s = 0; s < sizeof bigsegs / sizeof bigsegs[0]; s++)
            if (!walk(big[i], bigsegs[s]))
                return 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t len = rnd() % 65536;
        uint16_t seg = (uint16_t)(rnd() % 8 ? 1 + rnd() % 65535 : 1 + rnd() % 64);
        if (!walk(len, seg))
            return 0;
    }
    return 0;
}

/* ---- socket helpers ---- */

struct fam {
    const char *name;
    int af;
    const char *lo;  /* bind: loopback, any port */
    const char *any; /* bind: wildcard, any port */
};
static const struct fam fams[] = {{"IPv4", AF_INET, "127.0.0.1:0", "0.0.0.0:0"},
                                  {"IPv6", AF_INET6, "[::1]:0", "[::]:0"}};

/* Payload of datagram seq: its number in the first bytes, then a pattern
 * that differs per datagram, so a swap, a cut or a shifted split shows. */
static uint8_t pat(uint32_t seq, size_t i)
{
    return (uint8_t)(t_byte(seq, i) ^ (i < 4 ? seq >> (8 * i) : 0));
}

static void fill(uint8_t *p, uint32_t seq, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = pat(seq, i);
}

/* Index of the first byte that is not datagram seq's, or len. */
static size_t mismatch(const uint8_t *p, uint32_t seq, size_t len)
{
    size_t i = 0;
    while (i < len && p[i] == pat(seq, i))
        i++;
    return i;
}

/* What a socket case runs on, and with. */
struct sock_case {
    const struct t_backend *b;
    const struct fam *f;
    const struct scase *c; /* gso_to_plain */
    bool mixed;            /* plain_to_gro */
    unsigned batch;        /* gro_small_array */
    const char *src;       /* gro_metadata */
};

/* Options for the running case's backend, with room to receive bursts. */
static struct volley_opts rx_opts(const struct sock_case *sc)
{
    struct volley_opts o = t_opts(sc->b->id);
    o.rcvbuf = 4 << 20;
    return o;
}

/* Open a volley socket: 0, T_SKIP when the case cannot run here (said),
 * 1 when it failed (reported). */
static int open_sock(volley_sock **s, const char *bind, const struct volley_opts *o,
                     const char *what)
{
    int r = volley_open(s, bind, o);
    if (t_unavailable(o->backend, r))
        return t_skip("backend not available");
    if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL)
        return t_skip("address family not available");
    return T_CHECK(r == 0, "%s: volley_open(%s): %s", what, bind, volley_strerror(r)) ? 0
                                                                                      : 1;
}

/* A plain UDP socket on loopback, as any program would open it; -1 when
 * the family is not available. */
static int plain_open(const struct fam *f, struct volley_addr *bound)
{
    int fd = socket(f->af, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct volley_addr a = t_addr(f->lo);
    socklen_t len = sizeof *bound;
    int big = 4 << 20;
    if (bind(fd, &a.sa, volley_addr_len(&a)) < 0 ||
        getsockname(fd, &bound->sa, &len) < 0) {
        close(fd);
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    return fd;
}

/* ---- what goes on the wire ---- */

#define MAXW    512        /* datagrams on the wire per case */
#define LIMIT   UINT32_MAX /* reps: the socket's GSO segment limit */
#define STORE_B (8u << 20)

/* reps descriptors of len bytes; segment > 0: each is one explicit GSO
 * buffer of len bytes cut at segment. */
struct grp {
    uint32_t reps;
    uint32_t len;
    uint16_t segment;
};
struct scase {
    const char *name;
    struct grp g[4]; /* ends at reps == 0 */
    unsigned buf;    /* sent in one call: datagrams in its one coalesced
                        buffer (0: not one buffer) */
};

struct wire {
    struct volley_dgram d[MAXW]; /* descriptors to send */
    unsigned nd;
    uint32_t len[MAXW]; /* datagrams expected on the wire, in order */
    unsigned nw;
};

static uint8_t *tx_store, *rx_store;

/* Lay out a case's descriptors (payloads in tx_store, numbered from seq0)
 * and the datagrams the receiver should see; false if it does not fit. */
static bool build(struct wire *w, const struct scase *c, unsigned limit, uint32_t seq0,
                  const struct volley_addr *to)
{
    size_t used = 0;
    w->nd = w->nw = 0;
    for (const struct grp *g = c->g; g->reps; g++) {
        uint32_t reps = g->reps == LIMIT ? limit : g->reps;
        for (uint32_t r = 0; r < reps; r++) {
            if (w->nd == MAXW || used + g->len > STORE_B)
                return false;
            struct volley_dgram *x = &w->d[w->nd++];
            memset(x, 0, sizeof *x);
            x->data = tx_store + used;
            x->len = g->len;
            x->segment = g->segment;
            x->peer = *to;
            uint32_t seg = g->segment ? g->segment : g->len;
            uint32_t off = 0;
            do { /* once for an empty datagram */
                uint32_t n = g->len - off < seg ? g->len - off : seg;
                if (w->nw == MAXW)
                    return false;
                fill(tx_store + used + off, seq0 + w->nw, n);
                w->len[w->nw++] = n;
                off += n;
            } while (off < g->len);
            used += g->len;
        }
    }
    return true;
}

/* Send every descriptor; true when all were taken. */
static bool send_wire(volley_sock *s, const struct wire *w, const char *what)
{
    unsigned sent = t_send_all(s, w->d, w->nd, 5000);
    return T_CHECK(sent == w->nd, "%s: sent %u of %u descriptors", what, sent, w->nd);
}

/* Reap send completions (uring counts them late) and read the counters. */
static struct volley_stats stats_of(volley_sock *s)
{
    (void)volley_wait(s, VOLLEY_WAIT_SEND, 0);
    return t_stats(s);
}

/* One received datagram, copied out of socket memory. */
struct got {
    struct volley_dgram d; /* data points into rx_store */
    uintptr_t orig;        /* where it was in socket memory */
    unsigned call;         /* which volley_recv returned it */
};

/*
 * Receive with volley_recv(s, .., batch) into g[0..cap) until want
 * datagrams arrived (cap > want lets extras show) or 2 s pass with nothing
 * new. Checks that no call returns more than asked. Returns how many
 * arrived.
 */
static unsigned collect(volley_sock *s, unsigned want, unsigned batch, struct got *g,
                        unsigned cap, const char *what)
{
    static struct volley_dgram d[VOLLEY_BATCH_MAX];
    unsigned got = 0, call = 0;
    size_t used = 0;
    long long start = t_now_ms(), last = start;
    /* Up to 2 s of silence while datagrams are missing; once all are
     * in, 50 ms more to see extras. */
    while (got < cap && t_now_ms() - start < 20000) {
        long long quiet = t_now_ms() - last;
        if (quiet > (got >= want ? 50 : 2000))
            break;
        unsigned ask = batch < cap - got ? batch : cap - got;
        int r = volley_recv(s, d, ask);
        if (!T_CHECK(r >= 0 && (unsigned)r <= ask, "%s: volley_recv(%u) = %d (%s)", what,
                     ask, r, r < 0 ? volley_strerror(r) : "too many"))
            break;
        if (r == 0) {
            (void)volley_wait(s, VOLLEY_WAIT_RECV, 50);
            continue;
        }
        for (int i = 0; i < r; i++, got++) {
            if (!T_CHECK(used + d[i].len <= STORE_B, "%s: receive store full", what))
                return got;
            g[got].d = d[i];
            g[got].orig = (uintptr_t)d[i].data;
            g[got].call = call;
            if (d[i].len)
                memcpy(rx_store + used, d[i].data, d[i].len);
            g[got].d.data = rx_store + used;
            used += d[i].len;
        }
        call++;
        last = t_now_ms();
    }
    return got;
}

/* Every datagram once, in order, with its length and bytes. */
static bool check_order(const struct got *g, unsigned got, const uint32_t *len,
                        unsigned want, const char *what)
{
    for (unsigned i = 0; i < got && i < want; i++) {
        const struct volley_dgram *x = &g[i].d;
        if (!T_CHECK(x->len == len[i], "%s: datagram %u is %zu bytes, want %u", what, i,
                     x->len, len[i]))
            return false;
        size_t bad = mismatch(x->data, i, x->len);
        if (!T_CHECK(bad == x->len,
                     "%s: datagram %u differs at byte %zu of %zu (order or split wrong)",
                     what, i, bad, x->len))
            return false;
        if (!T_CHECK(!(x->flags & VOLLEY_DGRAM_TRUNC) && x->segment == 0,
                     "%s: datagram %u has flags %#x segment %u", what, i, x->flags,
                     x->segment))
            return false;
    }
    return T_CHECK(got == want, "%s: received %u datagrams, want %u", what, got, want);
}

/* ---- 2: segmented sends read by a plain socket ---- */

static const struct scase gso_cases[] = {
    {"64 x 1200", {{64, 1200, 0}}, 0},
    {"10 x 1000 + 300", {{10, 1000, 0}, {1, 300, 0}}, 11},
    {"explicit 5000/1200", {{1, 5000, 1200}}, 5},
    {"1200 + 1 byte", {{1, 1200, 0}, {1, 1, 0}}, 2},
    {"explicit 3600/1200 (exact multiple)", {{1, 3600, 1200}}, 3},
    {"segment limit + 1 x 100", {{LIMIT, 100, 0}, {1, 100, 0}}, 0},
    {"mixed runs", {{3, 1200, 0}, {1, 800, 0}, {1, 4000, 1000}, {5, 64, 0}}, 0},
};

static int gso_to_plain(void)
{
    static struct wire w;
    static uint8_t rbuf[65536];
    const struct sock_case *sc = t_current()->arg;
    const struct fam *f = sc->f;
    const char *what = t_current()->name;
    struct volley_addr to;
    int fd = plain_open(f, &to);
    if (fd < 0)
        return t_skip("address family not available");
    struct volley_opts o = t_opts(sc->b->id);
    volley_sock *s = NULL;
    int res = open_sock(&s, f->lo, &o, what);
    if (res)
        goto out;
    unsigned limit = volley_gso_max_segments(s);
    if (limit == 0) {
        res = t_skip("GSO is off here");
        goto out;
    }
    if (!T_CHECK(build(&w, sc->c, limit, 0, &to), "%s: case too large", what) ||
        !send_wire(s, &w, what))
        goto out;
    for (unsigned i = 0; i < w.nw; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (!T_CHECK(poll(&p, 1, 3000) == 1, "%s: %u of %u datagrams arrived", what, i,
                     w.nw))
            goto out;
        /* MSG_TRUNC: the real length, so a buffer left coalesced shows. */
        ssize_t r = recv(fd, rbuf, sizeof rbuf, MSG_TRUNC | MSG_DONTWAIT);
        if (!T_CHECK(r == (ssize_t)w.len[i], "%s: datagram %u is %zd bytes, want %u",
                     what, i, r, w.len[i]))
            goto out;
        size_t bad = mismatch(rbuf, i, (size_t)r);
        if (!T_CHECK(bad == (size_t)r, "%s: datagram %u differs at byte %zu of %zd", what,
                     i, bad, r))
            goto out;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    T_CHECK(poll(&p, 1, 50) == 0, "%s: more than %u datagrams arrived", what, w.nw);
    struct volley_stats st = stats_of(s);
    T_CHECK(st.tx_gso_sends > 0 && st.tx_gso_fallback == 0 && st.tx_errors == 0,
            "%s: gso_sends %llu, fallbacks %llu, errors %llu", what,
            (unsigned long long)st.tx_gso_sends, (unsigned long long)st.tx_gso_fallback,
            (unsigned long long)st.tx_errors);
    T_CHECK(st.tx_dgrams == w.nw, "%s: tx_dgrams %llu, want %u", what,
            (unsigned long long)st.tx_dgrams, w.nw);
out:
    volley_close(s);
    close(fd);
    return res == T_SKIP ? T_SKIP : 0;
}

/* ---- 3: plain sendto() read by a volley socket with GRO on ---- */

static int plain_to_gro(void)
{
    static const uint32_t sizes[] = {0,    1,    2,     63,   64,   500,
                                     1199, 1200, 1201,  1472, 1473, 4096,
                                     8999, 9000, 16384, 100,  65507};
    static uint32_t len[200];
    static struct got g[210];
    const struct sock_case *sc = t_current()->arg;
    const struct fam *f = sc->f;
    const char *what = t_current()->name;
    bool mixed = sc->mixed;
    struct volley_opts o = rx_opts(sc);
    volley_sock *s = NULL;
    int fd = -1;
    int res = open_sock(&s, f->lo, &o, what);
    if (res)
        goto out;
    if (!(volley_features(s) & VOLLEY_F_GRO)) {
        res = t_skip("GRO is off here");
        goto out;
    }
    struct volley_addr to, from;
    T_OK(volley_local_addr(s, &to));
    fd = plain_open(f, &from);
    if (!T_CHECK(fd >= 0, "%s: plain socket", what))
        goto out;

    /* Bursts of at most 50 datagrams or 128 KiB, each drained before the
     * next, so a small receive buffer cannot drop. */
    unsigned got = 0;
    for (unsigned i = 0; i < 200;) {
        unsigned first = i;
        size_t bytes = 0;
        for (; i < 200 && i - first < 50 && bytes < (128u << 10); i++) {
            len[i] = mixed ? sizes[(i * 7u) % (sizeof sizes / sizeof sizes[0])] : 1200;
            fill(tx_store, i, len[i]);
            ssize_t r = sendto(fd, tx_store, len[i], 0, &to.sa, volley_addr_len(&to));
            if (!T_CHECK(r == (ssize_t)len[i], "%s: sendto #%u: %zd (%s)", what, i, r,
                         strerror(errno)))
                goto out;
            bytes += len[i];
        }
        unsigned n = collect(s, i - first, VOLLEY_BATCH_MAX, g, i - first, what);
        for (unsigned k = 0; k < n; k++) {
            const struct volley_dgram *x = &g[k].d;
            unsigned seq = first + k;
            if (!T_CHECK(x->len == len[seq] && mismatch(x->data, seq, x->len) == x->len,
                         "%s: datagram %u: %zu bytes, want %u, or wrong bytes", what, seq,
                         x->len, len[seq]))
                goto out;
            if (!T_CHECK(volley_addr_equal(&x->peer, &from),
                         "%s: datagram %u: wrong peer", what, seq))
                goto out;
            if (volley_features(s) & VOLLEY_F_PKTINFO &&
                !T_CHECK(volley_addr_equal(&x->local, &to) && x->ifindex > 0,
                         "%s: datagram %u: wrong local address or ifindex %u", what, seq,
                         x->ifindex))
                goto out;
            if (!T_CHECK(!(x->flags & VOLLEY_DGRAM_TRUNC) && x->ecn == 0,
                         "%s: datagram %u: flags %#x ecn %u", what, seq, x->flags,
                         x->ecn))
                goto out;
        }
        got += n;
        if (!T_CHECK(n == i - first, "%s: %u of datagrams %u..%u arrived", what, n, first,
                     i - 1))
            goto out;
    }
    /* Nothing extra. */
    struct got extra[1];
    T_CHECK(collect(s, 0, 1, extra, 1, what) == 0, "%s: more than 200 datagrams", what);
    struct volley_stats st = stats_of(s);
    T_CHECK(st.rx_dgrams == got && st.rx_kernel_drops == 0,
            "%s: rx_dgrams %llu (want %u), kernel drops %llu", what,
            (unsigned long long)st.rx_dgrams, got,
            (unsigned long long)st.rx_kernel_drops);
out:
    volley_close(s);
    if (fd >= 0)
        close(fd);
    return res == T_SKIP ? T_SKIP : 0;
}

/* ---- 4: what every piece of a coalesced buffer carries ---- */

static const struct scase coalesced[] = {
    {"20 x 1200", {{20, 1200, 0}}, 20},
    {"10 x 1000 + 300", {{10, 1000, 0}, {1, 300, 0}}, 11},
    {"explicit 5000/1200", {{1, 5000, 1200}}, 5},
    {"1200 + 1 byte", {{1, 1200, 0}, {1, 1, 0}}, 2},
};
#define NCOALESCED (sizeof coalesced / sizeof coalesced[0])

/* Send each case of cases[0..nc) in its own call (so each is one
 * segmented message, one coalesced buffer); fills len/nw with every
 * datagram sent and bufs/nb with datagrams per buffer. */
static bool send_cases(volley_sock *s, const struct scase *cases, size_t nc,
                       const struct volley_addr *to, const struct volley_addr *local,
                       uint8_t ecn, uint32_t *len, unsigned *nw, unsigned *bufs,
                       unsigned *nb, const char *what)
{
    static struct wire w;
    *nw = *nb = 0;
    for (size_t c = 0; c < nc; c++) {
        if (!T_CHECK(build(&w, &cases[c], 0, *nw, to) && *nw + w.nw <= MAXW,
                     "%s: case too large", what))
            return false;
        for (unsigned i = 0; i < w.nd; i++) {
            w.d[i].ecn = ecn;
            if (local)
                w.d[i].local = *local;
        }
        if (!send_wire(s, &w, what))
            return false;
        memcpy(len + *nw, w.len, w.nw * sizeof *len);
        *nw += w.nw;
        bufs[(*nb)++] = cases[c].buf;
    }
    return true;
}

/* Close a case's sockets: what it returns after res (0, T_SKIP, or 1
 * after a failed check, which the runner has counted). */
static int finish(int res, volley_sock *tx, volley_sock *rx)
{
    volley_close(tx);
    volley_close(rx);
    return res == T_SKIP ? T_SKIP : 0;
}

/* 0 when rx has what the metadata case looks at, else T_SKIP (said). */
static int gro_ready(volley_sock *rx)
{
    unsigned want = VOLLEY_F_GRO | VOLLEY_F_PKTINFO | VOLLEY_F_ECN | VOLLEY_F_TIMESTAMP;
    if ((volley_features(rx) & want) != want)
        return t_skip("GRO, pktinfo, ECN or timestamps off here");
    return 0;
}

static int gro_metadata(void)
{
    static uint32_t len[MAXW];
    static struct got g[MAXW + 8];
    unsigned bufs[NCOALESCED], nw, nb;
    const struct sock_case *sc = t_current()->arg;
    const struct fam *f = sc->f;
    const char *what = t_current()->name;
    const char *src = sc->src;
    struct volley_opts o = rx_opts(sc);
    o.enable = VOLLEY_F_TIMESTAMP;
    volley_sock *rx = NULL, *tx = NULL;
    int res;
    if ((res = open_sock(&rx, f->lo, &o, what)) ||
        (res = open_sock(&tx, f->any, &o, what)) || (res = gro_ready(rx)))
        goto out;
    if (volley_gso_max_segments(tx) == 0) {
        res = t_skip("GSO is off here");
        goto out;
    }
    struct volley_addr to, from, local = t_addr(src), txb;
    T_OK(volley_local_addr(rx, &to));
    T_OK(volley_local_addr(tx, &txb));
    /* The receiver sees the chosen source address with the sender's port. */
    from = local;
    if (from.sa.sa_family == AF_INET)
        from.sin.sin_port = htons(volley_addr_port(&txb));
    else
        from.sin6.sin6_port = htons(volley_addr_port(&txb));
    int64_t t0 = t_realtime_ns();
    if (!send_cases(tx, coalesced, NCOALESCED, &to, &local, 2, len, &nw, bufs, &nb, what))
        goto out;
    unsigned got = collect(rx, nw, VOLLEY_BATCH_MAX, g, nw + 8, what);
    if (!check_order(g, got, len, nw, what))
        goto out;

    unsigned lo_index = if_nametoindex("lo");
    unsigned i = 0, multi = 0;
    for (unsigned k = 0; k < nb; k++) {
        const struct volley_dgram *h = &g[i].d;
        /* A buffer's pieces lie back to back in socket memory. */
        unsigned n = 1;
        while (i + n < got && g[i + n].d.flags & VOLLEY_DGRAM_GRO &&
               g[i + n].orig == g[i + n - 1].orig + g[i + n - 1].d.len)
            n++;
        if (!T_CHECK(n == bufs[k], "%s: buffer %u split into %u datagrams, want %u", what,
                     k, n, bufs[k]))
            goto out;
        multi += n > 1;
        for (unsigned j = i; j < i + n; j++) {
            const struct volley_dgram *x = &g[j].d;
            if (!T_CHECK((x->flags & VOLLEY_DGRAM_GRO) == (n > 1 ? VOLLEY_DGRAM_GRO : 0),
                         "%s: datagram %u of a %u-piece buffer has flags %#x", what, j, n,
                         x->flags))
                goto out;
            if (!T_CHECK(volley_addr_equal(&x->peer, &from) &&
                             volley_addr_equal(&x->peer, &h->peer),
                         "%s: datagram %u: peer is not the chosen source %s", what, j,
                         src))
                goto out;
            if (!T_CHECK(x->ecn == 2 && x->ecn == h->ecn,
                         "%s: datagram %u: ecn %u, want 2", what, j, x->ecn))
                goto out;
            if (!T_CHECK(volley_addr_equal(&x->local, &to) &&
                             volley_addr_equal(&x->local, &h->local),
                         "%s: datagram %u: local is not the receiver's address", what, j))
                goto out;
            if (!T_CHECK(x->ifindex == h->ifindex && x->ifindex > 0 &&
                             (lo_index == 0 || x->ifindex == lo_index),
                         "%s: datagram %u: ifindex %u, buffer's %u, lo %u", what, j,
                         x->ifindex, h->ifindex, lo_index))
                goto out;
            if (!T_CHECK(x->flags & VOLLEY_DGRAM_TSTAMP && x->rx_ns == h->rx_ns &&
                             x->rx_ns > t0 - 1000000000 && x->rx_ns < t0 + 60000000000,
                         "%s: datagram %u: timestamp %lld (buffer's %lld, sent at %lld)",
                         what, j, (long long)x->rx_ns, (long long)h->rx_ns,
                         (long long)t0))
                goto out;
        }
        i += n;
    }
    struct volley_stats st = stats_of(rx);
    T_CHECK(st.rx_gro_buffers == multi && multi > 0,
            "%s: rx_gro_buffers %llu, want %u coalesced buffers", what,
            (unsigned long long)st.rx_gro_buffers, multi);
    T_CHECK(st.rx_dgrams == nw, "%s: rx_dgrams %llu, want %u", what,
            (unsigned long long)st.rx_dgrams, nw);
out:
    return finish(res, tx, rx);
}

/* ---- 5: coalesced buffers through small caller arrays ---- */

static const struct scase small_cases[] = {
    {"40 x 1000 + 333", {{40, 1000, 0}, {1, 333, 0}}, 41},
    {"30 x 700", {{30, 700, 0}}, 30},
    {"explicit 5000/1200", {{1, 5000, 1200}}, 5},
    {"1200 + 1 byte", {{1, 1200, 0}, {1, 1, 0}}, 2},
    {"20 x 1472", {{20, 1472, 0}}, 20},
};

static int gro_small_array(void)
{
    static uint32_t len[MAXW];
    static struct got g[MAXW + 8];
    unsigned bufs[8], nw, nb;
    const struct sock_case *sc = t_current()->arg;
    const struct fam *f = sc->f;
    const char *what = t_current()->name;
    unsigned batch = sc->batch;
    struct volley_opts o = rx_opts(sc);
    volley_sock *rx = NULL, *tx = NULL;
    int res;
    if ((res = open_sock(&rx, f->lo, &o, what)) ||
        (res = open_sock(&tx, f->lo, &o, what)))
        goto out;
    if (!(volley_features(rx) & VOLLEY_F_GRO) || volley_gso_max_segments(tx) == 0) {
        res = t_skip("GSO or GRO is off here");
        goto out;
    }
    struct volley_addr to;
    T_OK(volley_local_addr(rx, &to));
    size_t nc = sizeof small_cases / sizeof small_cases[0];
    if (!send_cases(tx, small_cases, nc, &to, NULL, 0, len, &nw, bufs, &nb, what))
        goto out;

    /* The first piece of a coalesced buffer leaves the rest pending: the
     * socket must say so rather than wait on an empty kernel queue. */
    long long deadline = t_now_ms() + 5000;
    int r = 0;
    while (r == 0 && t_now_ms() < deadline) {
        r = volley_recv(rx, &g[0].d, 1);
        if (r == 0)
            (void)volley_wait(rx, VOLLEY_WAIT_RECV, 50);
    }
    if (!T_CHECK(r == 1, "%s: first volley_recv = %d", what, r))
        goto out;
    T_CHECK(g[0].d.flags & VOLLEY_DGRAM_GRO, "%s: first datagram not from a GRO buffer",
            what);
    T_CHECK(volley_wait(rx, VOLLEY_WAIT_RECV, 0) & VOLLEY_WAIT_RECV,
            "%s: wait does not report the rest of a split buffer", what);
    memcpy(rx_store + (STORE_B - 65536), g[0].d.data, g[0].d.len);
    struct got first = g[0];
    first.d.data = rx_store + (STORE_B - 65536);

    unsigned got = collect(rx, nw - 1, batch, g + 1, nw + 7, what);
    g[0] = first;
    if (!check_order(g, got + 1, len, nw, what))
        goto out;
    /* Small arrays take more calls, and none returned more than asked
     * (collect checks that). */
    T_CHECK(g[got].call + 1 >= (nw - 1 + batch - 1) / batch,
            "%s: %u datagrams in %u calls of at most %u", what, nw - 1, g[got].call + 1,
            batch);
    struct volley_stats st = stats_of(rx);
    T_CHECK(st.rx_gro_buffers > 0, "%s: no coalesced buffer seen", what);
    T_CHECK(st.rx_dgrams == nw, "%s: rx_dgrams %llu, want %u", what,
            (unsigned long long)st.rx_dgrams, nw);
out:
    return finish(res, tx, rx);
}

/* ---- the cases: the pure tables, then each socket case on each
 * backend that offloads ---- */

enum { SOCK_CASES = T_BACKENDS_MAX * 25 };
static struct t_case cases[2 + SOCK_CASES];
static struct sock_case socks[SOCK_CASES];
static char names[SOCK_CASES][160];
static size_t ncases, nsocks;

/* A socket case running fn with x, named as fmt says. */
static void add(int (*fn)(void), struct sock_case x, const char *fmt, ...) T_PRINTF(3, 4);
static void add(int (*fn)(void), struct sock_case x, const char *fmt, ...)
{
    T_ASSERT(nsocks < SOCK_CASES);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(names[nsocks], sizeof names[0], fmt, ap);
    va_end(ap);
    socks[nsocks] = x;
    cases[ncases++] = (struct t_case){names[nsocks], fn, x.b->id, &socks[nsocks]};
    nsocks++;
}

static void add_family(const struct t_backend *b, const struct fam *f)
{
    for (size_t c = 0; c < T_COUNT(gso_cases); c++)
        add(gso_to_plain, (struct sock_case){.b = b, .f = f, .c = &gso_cases[c]},
            "%s %s GSO -> plain recv(): %s", b->name, f->name, gso_cases[c].name);
    for (int mixed = 0; mixed < 2; mixed++)
        add(plain_to_gro, (struct sock_case){.b = b, .f = f, .mixed = mixed},
            "%s %s plain sendto() -> GRO recv: 200 x %s", b->name, f->name,
            mixed ? "mixed sizes" : "1200");
    for (unsigned batch = 1; batch <= 3; batch += 2)
        add(gro_small_array, (struct sock_case){.b = b, .f = f, .batch = batch},
            "%s %s GRO recv with n = %u", b->name, f->name, batch);
}

static void add_backend(const struct t_backend *b)
{
    static const char *const srcs[] = {"127.0.0.1:0", "127.0.0.2:0", "[::1]:0"};
    for (size_t f = 0; f < T_COUNT(fams); f++)
        add_family(b, &fams[f]);
    for (size_t k = 0; k < T_COUNT(srcs); k++) {
        const struct fam *f = &fams[k == 2];
        add(gro_metadata, (struct sock_case){.b = b, .f = f, .src = srcs[k]},
            "%s %s GSO (ECT(0), from %s) -> GRO recv metadata", b->name, f->name,
            srcs[k]);
    }
}

int main(int argc, char **argv)
{
    cases[ncases++] = (struct t_case)T_CASE(gro_rows);
    cases[ncases++] = (struct t_case)T_CASE(gro_walks);
    for (size_t i = 0; i < t_nbackends; i++)
        if (t_backends[i].offload)
            add_backend(&t_backends[i]);
    tx_store = malloc(STORE_B);
    rx_store = malloc(STORE_B);
    T_ASSERT(tx_store && rx_store);
    struct t_run how = {.total_s = 240};
    int r = t_main(cases, ncases, &how, argc, argv);
    free(tx_store);
    free(rx_store);
    return r;
}
