/* SPDX-License-Identifier: MIT */
/* GRO pass-through (VOLLEY_F_GRO_SEGMENTS): a coalesced buffer comes out of
 * volley_recv as one descriptor cut at its stride, the form volley_send
 * takes, for every split case of test_gro (runs, a short last datagram,
 * explicit GSO buffers, a single datagram, the smallest caller array).
 * Each buffer's bytes are exactly the datagrams sent, stats count
 * datagrams, and a received buffer relayed with volley_send arrives at a
 * plain socket as the same datagrams. Over mmsg and (when it opens) uring,
 * IPv4 loopback; a backend without GSO or GRO here is skipped. */
#include "dgram/dgram.h"
#include "t.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXD 256

static uint8_t txbuf[1 << 20], rxbuf[1 << 20];

/* One send: reps descriptors of len bytes (segment > 0: explicit GSO). */
struct grp {
    unsigned reps;
    uint32_t len;
    uint16_t segment;
};
struct scase {
    const char *name;
    struct grp g[3]; /* ends at reps == 0 */
    unsigned dgrams; /* datagrams on the wire */
    uint16_t stride; /* of the one coalesced buffer; 0: not coalesced */
};

static const struct scase cases[] = {
    {"20 x 1200", {{20, 1200, 0}}, 20, 1200},
    {"10 x 1000 + 300", {{10, 1000, 0}, {1, 300, 0}}, 11, 1000},
    {"explicit 5000/1200", {{1, 5000, 1200}}, 5, 1200},
    {"1200 + 1 byte", {{1, 1200, 0}, {1, 1, 0}}, 2, 1200},
    {"64 x 64", {{64, 64, 0}}, 64, 64},
    {"one datagram", {{1, 500, 0}}, 1, 0},
};

/* Descriptors for c to peer, payload bytes numbered from 0; returns the
 * count and the total length in *bytes. */
static unsigned build(const struct scase *c, const struct volley_addr *peer,
                      struct volley_dgram *d, size_t *bytes)
{
    unsigned n = 0;
    *bytes = 0;
    for (const struct grp *g = c->g; g->reps; g++) {
        for (unsigned r = 0; r < g->reps; r++, n++) {
            memset(&d[n], 0, sizeof d[n]);
            d[n].data = txbuf + *bytes;
            d[n].len = g->len;
            d[n].segment = g->segment;
            d[n].peer = *peer;
            for (uint32_t i = 0; i < g->len; i++)
                txbuf[*bytes + i] = t_byte(*bytes + i, 0);
            *bytes += g->len;
        }
    }
    return n;
}

/* Receive until want datagrams (counting a segmented descriptor as its
 * datagrams) arrived, batch descriptors per call; payloads are copied to
 * rxbuf back to back. Returns the descriptors received. */
static unsigned take(volley_sock *s, unsigned want, unsigned batch,
                     struct volley_dgram *d, unsigned *dgrams)
{
    unsigned nd = 0;
    size_t used = 0;
    *dgrams = 0;
    long long deadline = t_now_ms() + 2000;
    while (*dgrams < want && nd < MAXD && t_now_ms() < deadline) {
        int r = volley_recv(s, d + nd, batch < MAXD - nd ? batch : MAXD - nd);
        T_ASSERT(r >= 0);
        if (r == 0) {
            volley_wait(s, VOLLEY_WAIT_RECV, 50);
            continue;
        }
        for (int i = 0; i < r; i++, nd++) {
            struct volley_dgram *x = &d[nd];
            T_ASSERT(used + x->len <= sizeof rxbuf);
            memcpy(rxbuf + used, x->data, x->len);
            x->data = rxbuf + used;
            used += x->len;
            *dgrams += x->segment ? volley__gso_count(x->len, x->segment) : 1;
        }
    }
    return nd;
}

static bool open_rx(unsigned be, unsigned enable, volley_sock **s)
{
    struct volley_opts o = t_opts(be);
    o.enable = enable;
    o.rcvbuf = 4 << 20;
    int r = volley_open(s, "127.0.0.1:0", &o);
    if (t_unavailable(be, r))
        return false;
    T_OK(r);
    return true;
}

/* Case c sent as one message; received through arrays of batch entries. */
static void one_case(volley_sock *tx, volley_sock *rx, volley_sock *plain,
                     const struct scase *c, unsigned batch)
{
    static struct volley_dgram d[MAXD], got[MAXD];
    struct volley_addr to = t_local(rx), relay_to = t_local(plain);
    size_t bytes;
    unsigned n = build(c, &to, d, &bytes);
    T_EQ(volley_send(tx, d, n), n);
    struct volley_stats before = t_stats(rx);
    unsigned dgrams;
    unsigned nd = take(rx, c->dgrams, batch, got, &dgrams);
    printf("  %s (array of %u): %u descriptors, %u datagrams\n", c->name, batch, nd,
           dgrams);
    T_EQ(dgrams, c->dgrams);
    T_EQ(nd, 1);
    T_EQ(got[0].len, bytes);
    T_EQ(got[0].segment, c->stride);
    T_EQ(got[0].flags & (VOLLEY_DGRAM_GRO | VOLLEY_DGRAM_TRUNC),
         c->stride ? VOLLEY_DGRAM_GRO : 0);
    T_ASSERT(memcmp(got[0].data, txbuf, bytes) == 0);
    struct volley_stats after = t_stats(rx);
    T_EQ(after.rx_dgrams - before.rx_dgrams, c->dgrams);
    T_EQ(after.rx_bytes - before.rx_bytes, bytes);
    T_EQ(after.rx_gro_buffers - before.rx_gro_buffers, c->stride ? 1 : 0);

    /* Relayed as received: the same datagrams, one by one. */
    got[0].peer = relay_to;
    memset(&got[0].local, 0, sizeof got[0].local);
    T_EQ(volley_send(tx, got, 1), 1);
    static struct volley_dgram back[MAXD];
    /* copied out: a later receive call reuses the socket's memory */
    static uint8_t kept[MAXD * 1500];
    T_EQ(t_recv_n(plain, back, c->dgrams, kept, 1500, 2000), c->dgrams);
    size_t off = 0;
    for (unsigned i = 0; i < c->dgrams; i++) {
        T_ASSERT(back[i].segment == 0 && off + back[i].len <= bytes);
        T_ASSERT(memcmp(back[i].data, txbuf + off, back[i].len) == 0);
        off += back[i].len;
    }
    T_EQ(off, bytes);
}

static int run_backend(void)
{
    unsigned be = t_current()->backend;
    volley_sock *rx, *tx, *plain;
    if (!open_rx(be, VOLLEY_F_GRO_SEGMENTS, &rx))
        return t_skip("backend unavailable");
    struct volley_opts o = t_opts(be);
    T_OK(volley_open(&tx, "127.0.0.1:0", &o));
    o.disable = VOLLEY_F_GRO; /* the relay's receiver sees datagrams */
    T_OK(volley_open(&plain, "127.0.0.1:0", &o));
    int res = 0;
    if (!(volley_features(rx) & VOLLEY_F_GRO) || !volley_gso_max_segments(tx)) {
        res = t_skip("GSO or GRO off here");
    } else {
        T_ASSERT(volley_features(rx) & VOLLEY_F_GRO_SEGMENTS);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            one_case(tx, rx, plain, &cases[i], VOLLEY_BATCH_MAX);
            one_case(tx, rx, plain, &cases[i], 1);
        }
    }
    volley_close(plain);
    volley_close(tx);
    volley_close(rx);
    return res;
}

/* Asked for without GRO, the feature stays off: one datagram each. */
static int needs_gro(void)
{
    struct volley_opts o = t_opts(VOLLEY_BACKEND_MMSG);
    o.enable = VOLLEY_F_GRO_SEGMENTS;
    o.disable = VOLLEY_F_GRO;
    volley_sock *s;
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    T_EQ(volley_features(s) & (VOLLEY_F_GRO | VOLLEY_F_GRO_SEGMENTS), 0);
    volley_close(s);
    return 0;
}

int main(int argc, char **argv)
{
    struct t_case tests[1 + T_BACKENDS_MAX] = {T_CASE(needs_gro)};
    size_t n = 1;
    for (size_t i = 0; i < t_nbackends; i++)
        if (t_backends[i].offload)
            tests[n++] =
                (struct t_case){t_backends[i].name, run_backend, t_backends[i].id, NULL};
    struct t_run how = {.total_s = 120};
    unsetenv("VOLLEY_BACKEND");
    unsetenv("VOLLEY_DISABLE");
    return t_main(tests, n, &how, argc, argv);
}
