/* SPDX-License-Identifier: MIT */
/* The datagram suite, run once per backend: test_dgram scalar|mmsg|uring|pair.
 * Each case is a function; a case that makes no sense for the backend (the
 * pair has no IP addresses, no kernel) prints why and skips itself only.
 * The program exits 77 when every case skipped. */
#include "t.h"

#include <linux/errqueue.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/ip_icmp.h>
#include <stdint.h>
#include <sys/socket.h>

#define WAIT_MS 5000
#define MIB     (1 << 20)

static const struct t_backend *g_be; /* the backend under test */

static bool is_pair(void)
{
    return !g_be->kernel;
}

static struct volley_opts opts(void)
{
    return t_opts(g_be->id);
}

/* ---- addresses ---- */

static void expect_addr_(const struct volley_addr *got, const struct volley_addr *want,
                         const char *what, int line)
{
    if (!volley_addr_equal(got, want))
        t_fail_at(__FILE__, line, "%s: got %s, want %s", what, t_fmt(got), t_fmt(want));
}
#define EXPECT_ADDR(got, want) expect_addr_(got, want, #got, __LINE__)

/* Same family and IP, port ignored (received local addresses). */
static void expect_ip_(const struct volley_addr *got, const char *want_s,
                       const char *what, int line)
{
    struct volley_addr want = t_addr(want_s);
    if (!t_same_ip(got, &want))
        t_fail_at(__FILE__, line, "%s: got %s, want the IP of %s", what, t_fmt(got),
                  want_s);
}
#define EXPECT_IP(got, want) expect_ip_(got, want, #got, __LINE__)

/* ---- payloads ---- */

/* d holds len bytes of seq's payload starting at payload offset off, and is
 * not flagged truncated. */
static void check_dgram_(const struct volley_dgram *d, size_t len, uint64_t seq,
                         size_t off, int line)
{
    t_payload_at(__FILE__, line, d, len, seq, off);
    if (d->flags & VOLLEY_DGRAM_TRUNC)
        t_fail_at(__FILE__, line, "datagram %llu: flagged TRUNC",
                  (unsigned long long)seq);
}
#define CHECK_DGRAM(d, len, seq) check_dgram_(d, len, seq, 0, __LINE__)

/* n datagrams of stride bytes to peer (NULL: AF_UNSPEC), datagram i
 * carrying seq base + i. Free with t_batch_free. */
static struct t_batch batch_new(unsigned n, size_t stride, const struct volley_addr *peer,
                                uint64_t base)
{
    struct t_batch b = t_batch_new(n, stride);
    for (unsigned i = 0; i < n; i++) {
        t_fill(b.d[i].data, stride, base + i);
        if (peer)
            b.d[i].peer = *peer;
    }
    return b;
}

static unsigned recv_into(volley_sock *s, struct t_batch *in, unsigned n)
{
    return t_recv_n(s, in->d, n, in->buf, in->stride, WAIT_MS);
}

/* One datagram, bounded wait. */
static struct volley_dgram recv1_(volley_sock *s, int line)
{
    struct volley_dgram d;
    memset(&d, 0, sizeof d);
    if (t_recv_n(s, &d, 1, NULL, 0, WAIT_MS) != 1)
        t_fail_at(__FILE__, line, "no datagram within %d ms", WAIT_MS);
    return d;
}
#define RECV1(s) recv1_(s, __LINE__)

static void send1_(volley_sock *s, const void *data, size_t len,
                   const struct volley_addr *peer, int line)
{
    struct volley_dgram d;
    memset(&d, 0, sizeof d);
    d.data = (void *)data;
    d.len = len;
    if (peer)
        d.peer = *peer;
    if (t_send_all(s, &d, 1, WAIT_MS) != 1)
        t_fail_at(__FILE__, line, "send not taken within %d ms", WAIT_MS);
}
#define SEND1(s, data, len, peer) send1_(s, data, len, peer, __LINE__)

/* Datagram seq of len bytes from a to `to` (NULL: a's connected peer),
 * received intact by b; returned for its addresses. */
static struct volley_dgram hop_(volley_sock *a, volley_sock *b,
                                const struct volley_addr *to, size_t len, uint64_t seq,
                                int line)
{
    static uint8_t buf[VOLLEY_UDP6_MAX];
    t_fill(buf, len, seq);
    send1_(a, buf, len, to, line);
    struct volley_dgram r = recv1_(b, line);
    check_dgram_(&r, len, seq, 0, line);
    return r;
}
#define HOP(a, b, to, len, seq) hop_(a, b, to, len, seq, __LINE__)

/* Send d[0..n) from a while receiving on b, interleaved so a short receive
 * queue (AF_UNIX: 10 datagrams) cannot stall the sender. */
static void xfer(volley_sock *a, const struct volley_dgram *d, unsigned n, volley_sock *b,
                 struct t_batch *in)
{
    unsigned sent = 0, got = 0;
    long long deadline = t_now_ms() + WAIT_MS;
    while ((sent < n || got < n) && t_now_ms() < deadline) {
        bool moved = false;
        if (sent < n) {
            unsigned ask = n - sent > VOLLEY_BATCH_MAX ? VOLLEY_BATCH_MAX : n - sent;
            int k = T_OK(volley_send(a, d + sent, ask));
            sent += (unsigned)k;
            moved |= k > 0;
        }
        unsigned ask = n - got > VOLLEY_BATCH_MAX ? VOLLEY_BATCH_MAX : n - got;
        int k = ask ? T_OK(volley_recv(b, in->d + got, ask)) : 0;
        t_keep(in->d + got, (unsigned)k, in->buf + (size_t)got * in->stride, in->stride);
        got += (unsigned)k;
        moved |= k > 0;
        if (moved)
            deadline = t_now_ms() + WAIT_MS;
        else
            volley_wait(b, VOLLEY_WAIT_RECV, 10);
    }
    T_EQ(sent, n);
    T_EQ(got, n);
}

static double test_scale(void)
{
    const char *e = getenv("VOLLEY_TEST_SCALE");
    double f = e ? strtod(e, NULL) : 1.0;
    return f > 0 ? f : 1.0;
}

/* ---- 1. sizes ---- */

static const size_t sizes4[] = {0,    1,    2,     63,    64,
                                65,   512,  1200,  1472,  1473,
                                4096, 8192, 16384, 32768, VOLLEY_UDP4_MAX};
static const size_t sizes6[] = {0,    1,     1232,  1452,           1453,
                                8192, 65507, 65508, VOLLEY_UDP6_MAX};

static void sizes_round_trip(volley_sock *a, volley_sock *b,
                             const struct volley_addr *to_b, const size_t *sizes,
                             size_t n, size_t max)
{
    struct volley_addr from_a;
    if (!is_pair())
        from_a = t_local(a);
    for (size_t i = 0; i < n; i++) {
        struct volley_dgram r = HOP(a, b, to_b, sizes[i], i);
        if (!is_pair())
            EXPECT_ADDR(&r.peer, &from_a);
    }
    if (!is_pair()) {
        uint8_t *buf = malloc(max + 1);
        T_ASSERT(buf);
        struct volley_dgram d = {.data = buf, .len = max + 1, .peer = *to_b};
        T_EQ(volley_send(a, &d, 1), -EMSGSIZE);
        free(buf);
    }
}

static int case_sizes(void)
{
    struct volley_opts o = opts();
    o.rcvbuf = 4 * MIB;
    /* The protocol's ceilings, fragments allowed: IPv6's (65527) is more
     * than loopback's MTU holds (65536 - 48), so with the don't-fragment
     * control it would be -EMSGSIZE (test_pmtu's business). */
    o.disable |= VOLLEY_F_DONTFRAG;
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    sizes_round_trip(a, b, &to_b, sizes4, sizeof sizes4 / sizeof *sizes4,
                     VOLLEY_UDP4_MAX);
    volley_close(a);
    volley_close(b);
    if (is_pair())
        return 0;
    if (!t_open(&a, "[::1]:0", &o)) {
        t_skip_part("case_sizes ipv6", "no IPv6 loopback");
        return 0;
    }
    T_OK(volley_open(&b, "[::1]:0", &o));
    to_b = t_local(b);
    sizes_round_trip(a, b, &to_b, sizes6, sizeof sizes6 / sizeof *sizes6,
                     VOLLEY_UDP6_MAX);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* ---- 2. batches ---- */

static void batch_round(volley_sock *a, volley_sock *b, const struct volley_addr *to,
                        unsigned n, size_t stride, bool vary, uint64_t base)
{
    struct t_batch tx = batch_new(n, stride, to, base);
    if (vary)
        for (unsigned i = 0; i < n; i++)
            tx.d[i].len = 1 + (i * 37u) % stride;
    T_EQ(volley_send(a, tx.d, n), n);
    struct t_batch in = t_batch_new(n, stride);
    T_EQ(recv_into(b, &in, n), n);
    for (unsigned i = 0; i < n; i++)
        CHECK_DGRAM(&in.d[i], tx.d[i].len, base + i);
    t_batch_free(&in);
    t_batch_free(&tx);
}

static int case_batch(void)
{
    struct volley_opts o = opts();
    o.rcvbuf = 4 * MIB;
    o.pair_capacity = VOLLEY_BATCH_MAX;
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    batch_round(a, b, &to_b, 256, 100, false, 0);
    batch_round(a, b, &to_b, 256, 1400, true, 1000);
    batch_round(a, b, &to_b, VOLLEY_BATCH_MAX, 64, false, 5000);
    batch_round(a, b, &to_b, VOLLEY_BATCH_MAX, 1000, true, 9000);

    struct t_batch big = batch_new(VOLLEY_BATCH_MAX + 1, 8, &to_b, 0);
    T_EQ(volley_send(a, big.d, VOLLEY_BATCH_MAX + 1), -EINVAL);
    t_batch_free(&big);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* ---- 3. families ---- */

static void family_round(const char *bind)
{
    struct volley_opts o = opts();
    volley_sock *a, *b;
    if (!t_open(&a, bind, &o)) {
        t_skip_part(bind, "address family unavailable");
        return;
    }
    T_OK(volley_open(&b, bind, &o));
    struct volley_addr la = t_local(a), lb = t_local(b);
    struct volley_dgram r = HOP(a, b, &lb, 200, 1);
    EXPECT_ADDR(&r.peer, &la);
    struct volley_addr back = r.peer;
    r = HOP(b, a, &back, 200, 2);
    EXPECT_ADDR(&r.peer, &lb);
    volley_close(a);
    volley_close(b);
}

static int case_families(void)
{
    if (is_pair())
        return t_skip("the pair has no IP addresses");
    family_round("127.0.0.1:0");
    family_round("[::1]:0");

    struct volley_opts o = opts();
    volley_sock *ds, *s4, *s6 = NULL;
    if (!t_open(&ds, "[::]:0", &o)) {
        t_skip_part("case_families dual-stack", "no IPv6");
        return 0;
    }
    T_OK(volley_open(&s4, "127.0.0.1:0", &o));
    struct volley_addr l4 = t_local(s4), ds4 = t_dest(ds, "127.0.0.1:0");
    uint8_t *buf = malloc(VOLLEY_UDP6_MAX + 1);
    T_ASSERT(buf);

    /* IPv4 into the dual-stack socket: the peer comes out as AF_INET */
    struct volley_dgram r = HOP(s4, ds, &ds4, 300, 10);
    T_EQ(r.peer.sa.sa_family, AF_INET);
    EXPECT_ADDR(&r.peer, &l4);

    /* and back out to that AF_INET peer, one and a batch */
    struct volley_addr peer4 = r.peer;
    r = HOP(ds, s4, &peer4, 301, 11);
    EXPECT_ADDR(&r.peer, &ds4);
    struct t_batch tx = batch_new(16, 1000, &peer4, 100);
    T_EQ(volley_send(ds, tx.d, 16), 16);
    struct t_batch in = t_batch_new(16, 1000);
    T_EQ(recv_into(s4, &in, 16), 16);
    for (unsigned i = 0; i < 16; i++) {
        CHECK_DGRAM(&in.d[i], 1000, 100 + i);
        EXPECT_ADDR(&in.d[i].peer, &ds4);
    }
    t_batch_free(&in);
    t_batch_free(&tx);

    /* the IPv4 size limit applies to AF_INET peers of an IPv6 socket */
    struct volley_dgram d = {.data = buf, .len = VOLLEY_UDP4_MAX + 1, .peer = peer4};
    T_EQ(volley_send(ds, &d, 1), -EMSGSIZE);
    HOP(ds, s4, &peer4, VOLLEY_UDP4_MAX, 12);

    /* IPv6 peers of the same socket stay IPv6 */
    if (t_open(&s6, "[::1]:0", &o)) {
        struct volley_addr l6 = t_local(s6), ds6 = t_dest(ds, "[::1]:0");
        r = HOP(s6, ds, &ds6, 400, 13);
        T_EQ(r.peer.sa.sa_family, AF_INET6);
        EXPECT_ADDR(&r.peer, &l6);
        struct volley_addr peer6 = r.peer;
        r = HOP(ds, s6, &peer6, 401, 14);
        EXPECT_ADDR(&r.peer, &ds6);
        /* an IPv4 socket cannot reach an IPv6 peer */
        d = (struct volley_dgram){.data = buf, .len = 10, .peer = l6};
        T_EQ(volley_send(s4, &d, 1), -EAFNOSUPPORT);
        volley_close(s6);
    }
    free(buf);
    volley_close(ds);
    volley_close(s4);
    return 0;
}

/* ---- 4. AF_UNIX ---- */

static int case_unix(void)
{
    if (is_pair())
        return t_skip("the pair backend does not wrap kernel sockets");
    int fds[2];
    T_ASSERT(socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) == 0);
    struct volley_opts o = opts();
    volley_sock *a, *b;
    T_OK(volley_wrap(&a, fds[0], &o));
    T_OK(volley_wrap(&b, fds[1], &o));
    T_ASSERT(!strcmp(volley_backend_name(a), g_be->name));

    static const size_t sizes[] = {0, 1, 100, 1200, 8192, VOLLEY_UDP4_MAX};
    for (unsigned i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        struct volley_dgram r = HOP(a, b, NULL, sizes[i], i);
        T_EQ(r.peer.sa.sa_family, AF_UNSPEC);
        r = HOP(b, a, NULL, sizes[i], 50 + i);
        T_EQ(r.peer.sa.sa_family, AF_UNSPEC);
    }

    /* same-size batches: nothing UDP-specific (GSO) may be tried here */
    struct t_batch tx = batch_new(200, 1200, NULL, 1000);
    struct t_batch in = t_batch_new(200, 1200);
    xfer(a, tx.d, 200, b, &in);
    for (unsigned i = 0; i < 200; i++) {
        CHECK_DGRAM(&in.d[i], 1200, 1000 + i);
        T_EQ(in.d[i].peer.sa.sa_family, AF_UNSPEC);
    }
    t_batch_free(&in);
    t_batch_free(&tx);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* ---- 5. ECN ---- */

/* False when the receiver has no ECN. */
static bool ecn_run(volley_sock *tx, volley_sock *rx, const struct volley_addr *to,
                    const char *what)
{
    if (!(volley_features(rx) & VOLLEY_F_ECN)) {
        t_skip_part(what, "receiver lacks VOLLEY_F_ECN");
        return false;
    }
    /* same size on purpose: datagrams with different ECN must not share a
     * GSO send */
    struct t_batch b = batch_new(4, 100, to, 0);
    for (unsigned i = 0; i < 4; i++)
        b.d[i].ecn = (uint8_t)i;
    T_EQ(volley_send(tx, b.d, 4), 4);
    struct t_batch in = t_batch_new(16, 100);
    T_EQ(recv_into(rx, &in, 4), 4);
    for (unsigned i = 0; i < 4; i++) {
        CHECK_DGRAM(&in.d[i], 100, i);
        if (in.d[i].ecn != i)
            T_FAIL("%s: datagram %u arrived with ecn %u, sent %u", what, i, in.d[i].ecn,
                   i);
    }
    t_batch_free(&b);

    /* a same-size run with one codepoint: GSO on send, GRO on receive */
    b = batch_new(16, 100, to, 10);
    for (unsigned i = 0; i < 16; i++)
        b.d[i].ecn = 1;
    T_EQ(volley_send(tx, b.d, 16), 16);
    T_EQ(recv_into(rx, &in, 16), 16);
    for (unsigned i = 0; i < 16; i++) {
        CHECK_DGRAM(&in.d[i], 100, 10 + i);
        if (in.d[i].ecn != 1)
            T_FAIL("%s: batch datagram %u arrived with ecn %u, sent 1", what, i,
                   in.d[i].ecn);
    }
    t_batch_free(&b);
    t_batch_free(&in);
    return true;
}

static int case_ecn(void)
{
    struct volley_opts o = opts();
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    bool ran = false;
    if (is_pair()) {
        t_socks(&o, "", &a, &b, &to_b, &to_a);
        ran = ecn_run(a, b, &to_b, "case_ecn pair");
        volley_close(a);
        volley_close(b);
        return ran ? 0 : t_skip("the pair's receiver lacks VOLLEY_F_ECN");
    }
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    ran |= ecn_run(a, b, &to_b, "case_ecn ipv4");
    volley_close(a);
    volley_close(b);

    if (t_open(&a, "[::1]:0", &o)) {
        T_OK(volley_open(&b, "[::1]:0", &o));
        to_b = t_local(b);
        ran |= ecn_run(a, b, &to_b, "case_ecn ipv6");
        volley_close(a);
        volley_close(b);
    }

    volley_sock *ds, *s4;
    if (t_open(&ds, "[::]:0", &o)) {
        T_OK(volley_open(&s4, "127.0.0.1:0", &o));
        struct volley_addr ds4 = t_dest(ds, "127.0.0.1:0"), l4 = t_local(s4);
        ran |= ecn_run(s4, ds, &ds4, "case_ecn ipv4 into dual-stack");
        ran |= ecn_run(ds, s4, &l4, "case_ecn dual-stack to ipv4");
        volley_close(ds);
        volley_close(s4);
    }
    if (!ran)
        return t_skip("no ECN on any receiver");
    return 0;
}

/* ---- 6. pktinfo ---- */

static int case_pktinfo(void)
{
    if (is_pair())
        return t_skip("the pair has no IP addresses");
    unsigned lo = if_nametoindex("lo");
    T_ASSERT(lo > 0);
    struct volley_opts o = opts();
    volley_sock *w4, *s4;
    T_OK(volley_open(&w4, "0.0.0.0:0", &o));
    if (!(volley_features(w4) & VOLLEY_F_PKTINFO)) {
        volley_close(w4);
        return t_skip("no VOLLEY_F_PKTINFO");
    }
    T_OK(volley_open(&s4, "127.0.0.1:0", &o));
    struct volley_addr l4 = t_local(s4);
    uint8_t buf[64];
    t_fill(buf, sizeof buf, 1);

    /* the destination address and interface come back as local/ifindex */
    struct volley_addr w4_1 = t_dest(w4, "127.0.0.1:0"), w4_2 = t_dest(w4, "127.0.0.2:0");
    SEND1(s4, buf, sizeof buf, &w4_1);
    struct volley_dgram r = RECV1(w4);
    CHECK_DGRAM(&r, sizeof buf, 1);
    EXPECT_IP(&r.local, "127.0.0.1:0");
    T_EQ(r.ifindex, lo);
    EXPECT_ADDR(&r.peer, &l4);

    /* a server on 0.0.0.0 answers from the address it was reached at */
    SEND1(s4, buf, sizeof buf, &w4_2);
    r = RECV1(w4);
    EXPECT_IP(&r.local, "127.0.0.2:0");
    T_EQ(r.ifindex, lo);
    struct volley_dgram reply = {.data = buf,
                                 .len = sizeof buf,
                                 .peer = r.peer,
                                 .local = r.local,
                                 .ifindex = r.ifindex};
    T_EQ(t_send_all(w4, &reply, 1, WAIT_MS), 1);
    r = RECV1(s4);
    EXPECT_ADDR(&r.peer, &w4_2);

    /* source choice without ifindex, and none at all */
    struct volley_dgram d = {.data = buf, .len = sizeof buf, .peer = l4};
    d.local = t_addr("127.0.0.2:0");
    T_EQ(t_send_all(w4, &d, 1, WAIT_MS), 1);
    r = RECV1(s4);
    EXPECT_ADDR(&r.peer, &w4_2);
    memset(&d.local, 0, sizeof d.local);
    T_EQ(t_send_all(w4, &d, 1, WAIT_MS), 1);
    r = RECV1(s4);
    EXPECT_ADDR(&r.peer, &w4_1);
    volley_close(w4);

    /* dual-stack wildcard: IPv6 and IPv4 (normalised) destinations */
    volley_sock *ds, *s6;
    if (!t_open(&ds, "[::]:0", &o)) {
        t_skip_part("case_pktinfo dual-stack", "no IPv6");
        volley_close(s4);
        return 0;
    }
    if (!t_open(&s6, "[::1]:0", &o)) {
        t_skip_part("case_pktinfo dual-stack", "no IPv6 loopback address");
        volley_close(ds);
        volley_close(s4);
        return 0;
    }
    struct volley_addr l6 = t_local(s6), ds6 = t_dest(ds, "[::1]:0");
    struct volley_addr ds4_1 = t_dest(ds, "127.0.0.1:0"),
                       ds4_2 = t_dest(ds, "127.0.0.2:0");
    SEND1(s6, buf, sizeof buf, &ds6);
    r = RECV1(ds);
    EXPECT_IP(&r.local, "[::1]:0");
    T_EQ(r.ifindex, lo);
    EXPECT_ADDR(&r.peer, &l6);
    reply = (struct volley_dgram){
        .data = buf, .len = sizeof buf, .peer = r.peer, .local = r.local};
    T_EQ(t_send_all(ds, &reply, 1, WAIT_MS), 1);
    r = RECV1(s6);
    EXPECT_ADDR(&r.peer, &ds6);

    SEND1(s4, buf, sizeof buf, &ds4_1);
    r = RECV1(ds);
    EXPECT_IP(&r.local, "127.0.0.1:0");
    T_EQ(r.ifindex, lo);
    EXPECT_ADDR(&r.peer, &l4);

    SEND1(s4, buf, sizeof buf, &ds4_2);
    r = RECV1(ds);
    EXPECT_IP(&r.local, "127.0.0.2:0");
    reply = (struct volley_dgram){
        .data = buf, .len = sizeof buf, .peer = r.peer, .local = r.local};
    T_EQ(t_send_all(ds, &reply, 1, WAIT_MS), 1);
    r = RECV1(s4);
    EXPECT_ADDR(&r.peer, &ds4_2);
    volley_close(ds);
    volley_close(s6);
    volley_close(s4);
    return 0;
}

/* ---- 6b. where received payloads start ---- */

/* Every receive slot starts on a cache line: the kernel's copy into a slot
 * (`rep movsb`) ran at a third of its speed on this machine when the
 * destination was 16 bytes past one, as malloc left it. Datagrams of
 * growing sizes, so that GRO keeps each in a slot of its own. */
static int case_aligned(void)
{
    struct volley_opts o = opts();
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    enum { N = 8 };
    for (unsigned round = 0; round < 3; round++) {
        struct t_batch tx = batch_new(N, 100 * N, &to_b, 40 + round * N);
        for (unsigned i = 0; i < N; i++)
            tx.d[i].len = 100 * (i + 1);
        T_EQ(volley_send(a, tx.d, N), N);
        struct volley_dgram in[N];
        unsigned got = 0;
        for (unsigned tries = 0; got < N && tries < 100; tries++) {
            int r = volley_recv_wait(b, in + got, N - got, WAIT_MS);
            T_ASSERT(r >= 0);
            for (unsigned i = got; i < got + (unsigned)r; i++) {
                CHECK_DGRAM(&in[i], 100 * (i + 1), 40 + round * N + i);
                T_CHECK(((uintptr_t)in[i].data & 63) == 0,
                        "datagram %u of round %u starts at %p", i, round, in[i].data);
            }
            got += (unsigned)r;
        }
        T_EQ(got, N);
        t_batch_free(&tx);
    }
    volley_close(a);
    volley_close(b);
    return 0;
}

/* ---- 7. truncation ---- */

static int case_trunc(void)
{
    struct volley_opts o = opts();
    o.rx_slot_size = 100;
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    uint8_t buf[300];
    t_fill(buf, sizeof buf, 7);
    SEND1(a, buf, 300, &to_b);
    struct volley_dgram r = RECV1(b);
    T_EQ(r.len, 100);
    T_ASSERT(r.flags & VOLLEY_DGRAM_TRUNC);
    for (size_t i = 0; i < 100; i++)
        T_EQ(((uint8_t *)r.data)[i], t_byte(7, i));
    T_EQ(t_stats(b).rx_truncated, 1);

    /* the boundary: exactly the slot fits, one more byte does not */
    t_fill(buf, sizeof buf, 8);
    SEND1(a, buf, 100, &to_b);
    r = RECV1(b);
    CHECK_DGRAM(&r, 100, 8);
    SEND1(a, buf, 101, &to_b);
    r = RECV1(b);
    T_EQ(r.len, 100);
    T_ASSERT(r.flags & VOLLEY_DGRAM_TRUNC);
    T_EQ(t_stats(b).rx_truncated, 2);

    /* small datagrams sent as one batch (a GSO send on mmsg) must not be
     * coalesced past the slot size on receive */
    for (unsigned len = 80; len <= 100; len += 20) {
        struct t_batch tx = batch_new(8, len, &to_b, 20 + len);
        T_EQ(volley_send(a, tx.d, 8), 8);
        struct t_batch in = t_batch_new(8, 100);
        T_EQ(recv_into(b, &in, 8), 8);
        for (unsigned i = 0; i < 8; i++)
            CHECK_DGRAM(&in.d[i], len, 20 + len + i);
        t_batch_free(&in);
        t_batch_free(&tx);
    }
    T_EQ(t_stats(b).rx_truncated, 2);
    T_EQ(t_stats(b).rx_dgrams, 19);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* ---- 8. timestamps ---- */

static int case_timestamp(void)
{
    struct volley_opts o = opts();
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    uint8_t buf[64];
    t_fill(buf, sizeof buf, 3);

    /* off by default */
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    T_ASSERT(!(volley_features(b) & VOLLEY_F_TIMESTAMP));
    SEND1(a, buf, sizeof buf, &to_b);
    struct volley_dgram r = RECV1(b);
    T_ASSERT(!(r.flags & VOLLEY_DGRAM_TSTAMP));
    volley_close(a);
    volley_close(b);

    o.enable = VOLLEY_F_TIMESTAMP;
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    if (!(volley_features(b) & VOLLEY_F_TIMESTAMP)) {
        volley_close(a);
        volley_close(b);
        return t_skip("VOLLEY_F_TIMESTAMP refused");
    }
    struct t_batch tx = batch_new(16, 64, &to_b, 0);
    T_EQ(volley_send(a, tx.d, 16), 16);
    struct t_batch in = t_batch_new(16, 64);
    T_EQ(recv_into(b, &in, 16), 16);
    int64_t now = t_realtime_ns(), window = 60 * (int64_t)1000000000;
    for (unsigned i = 0; i < 16; i++) {
        CHECK_DGRAM(&in.d[i], 64, i);
        T_ASSERT(in.d[i].flags & VOLLEY_DGRAM_TSTAMP);
        if (in.d[i].rx_ns < now - window || in.d[i].rx_ns > now + window)
            T_FAIL("rx_ns %lld is not within 60 s of now %lld", (long long)in.d[i].rx_ns,
                   (long long)now);
    }
    t_batch_free(&in);
    t_batch_free(&tx);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* ---- 9. kernel drop counter ---- */

static int case_kernel_drops(void)
{
    enum { N = 2000, LEN = 1000 };
    struct volley_opts o = opts();
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    struct t_batch in = t_batch_new(1, 1);
    if (is_pair()) {
        /* the pair's analogue: a full queue drops and counts on the sender */
        t_socks(&o, "", &a, &b, &to_b, &to_a);
        struct t_batch tx = batch_new(N, LEN, NULL, 0);
        T_EQ(t_send_all(a, tx.d, N, WAIT_MS), N);
        unsigned got = 0;
        for (;;) {
            int k = T_OK(volley_recv(b, in.d, 1));
            if (!k)
                break;
            CHECK_DGRAM(in.d, LEN, got);
            got++;
        }
        struct volley_stats sa = t_stats(a);
        T_ASSERT(sa.pair_queue_full > 0);
        T_EQ(got + sa.pair_queue_full, N);
        T_EQ(t_stats(b).rx_kernel_drops, sa.pair_queue_full);
        T_EQ(t_stats(b).rx_dgrams, got);
        t_batch_free(&tx);
        t_batch_free(&in);
        volley_close(a);
        volley_close(b);
        return 0;
    }

    o.rcvbuf = 4096;
    T_OK(volley_open(&b, "127.0.0.1:0", &o));
    if (!(volley_features(b) & VOLLEY_F_RXQ_OVFL)) {
        volley_close(b);
        t_batch_free(&in);
        return t_skip("no VOLLEY_F_RXQ_OVFL");
    }
    /* one skb per datagram: a dropped GSO buffer would count once */
    struct volley_opts ao = opts();
    ao.disable = VOLLEY_F_GSO;
    T_OK(volley_open(&a, "127.0.0.1:0", &ao));
    to_b = t_local(b);
    struct t_batch tx = batch_new(N, LEN, &to_b, 0);
    T_EQ(t_send_all(a, tx.d, N, WAIT_MS), N);

    unsigned got = 0;
    for (;;) {
        int k = T_OK(volley_recv(b, in.d, 1));
        if (!k && volley_wait(b, VOLLEY_WAIT_RECV, 200) == 0)
            break;
        if (!k)
            continue;
        T_EQ(in.d[0].len, LEN);
        got++;
    }
    struct volley_stats sb = t_stats(b);
    printf("  kernel drops: received %u, rx_kernel_drops %llu of %d\n", got,
           (unsigned long long)sb.rx_kernel_drops, N);
    T_ASSERT(sb.rx_kernel_drops > 0);
    T_EQ(got + sb.rx_kernel_drops, N);
    /* The kernel's control message reports drops on the next datagram it
     * queues: a marker (1 byte) into the now empty queue carries the total,
     * which must not be counted twice. */
    uint8_t mark = 0xAB;
    SEND1(a, &mark, 1, &to_b);
    struct volley_dgram r = RECV1(b);
    T_EQ(r.len, 1);
    sb = t_stats(b);
    T_EQ(got + sb.rx_kernel_drops, N);
    T_EQ(sb.rx_dgrams, got + 1);
    t_batch_free(&tx);
    t_batch_free(&in);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* ---- 10. a million datagrams, every one accounted for ---- */

enum { SEQ_LEN = 32, SEQ_BATCH = 256 };
static const uint64_t SEQ_MARK = UINT64_MAX;

struct tally {
    uint8_t *seen;
    uint64_t n, got, dups, marks;
};

static void tally_one(struct tally *t, const struct volley_dgram *d)
{
    uint64_t seq = T_SEQ(d, SEQ_LEN);
    if (seq == SEQ_MARK) {
        t->marks++;
        return;
    }
    if (seq >= t->n)
        T_FAIL("sequence number %llu out of range", (unsigned long long)seq);
    if (t->seen[seq]++)
        t->dups++;
    t->got++;
}

/* Receive everything waiting; returns datagrams taken. */
static unsigned tally_drain(volley_sock *b, struct tally *t, struct volley_dgram *rd)
{
    unsigned total = 0;
    for (;;) {
        int k = T_OK(volley_recv(b, rd, VOLLEY_BATCH_MAX));
        if (!k)
            return total;
        for (int i = 0; i < k; i++)
            tally_one(t, &rd[i]);
        total += (unsigned)k;
    }
}

/* Send n sequence-numbered datagrams in batches of SEQ_BATCH, draining the
 * receiver after every drain_every-th batch, then check every one was
 * received exactly once or counted as dropped (!exact: the kernel counted
 * whole coalesced buffers, so the count may be short, never over). */
static void seq_run(const char *label, const struct volley_opts *o, uint64_t n,
                    unsigned drain_every, bool want_drops, bool exact)
{
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    t_socks(o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    struct tally t = {.n = n};
    t.seen = calloc(t.n, 1);
    static struct volley_dgram rd[VOLLEY_BATCH_MAX];
    struct volley_dgram sd[SEQ_BATCH];
    static uint8_t sbuf[SEQ_BATCH][SEQ_LEN];
    T_ASSERT(t.seen);
    memset(sd, 0, sizeof sd);
    for (unsigned i = 0; i < SEQ_BATCH; i++) {
        sd[i].data = sbuf[i];
        sd[i].len = SEQ_LEN;
        sd[i].peer = to_b;
    }

    long long t0 = t_now_ms(), stall = t0 + 10000;
    uint64_t sent = 0;
    for (unsigned batches = 1; sent < t.n; batches++) {
        unsigned k = t.n - sent < SEQ_BATCH ? (unsigned)(t.n - sent) : SEQ_BATCH;
        for (unsigned i = 0; i < k; i++)
            t_fill_seq(sbuf[i], SEQ_LEN, sent + i);
        int r = T_OK(volley_send(a, sd, k));
        sent += (unsigned)r;
        unsigned got = batches % drain_every ? 0 : tally_drain(b, &t, rd);
        if (r || got)
            stall = t_now_ms() + 10000;
        else if (t_now_ms() > stall)
            T_FAIL("%s: no progress for 10 s at %llu sent", label,
                   (unsigned long long)sent);
        else if (!tally_drain(b, &t, rd))
            volley_wait(a, VOLLEY_WAIT_SEND, 10);
    }
    /* whatever is still in flight */
    while (tally_drain(b, &t, rd) || volley_wait(b, VOLLEY_WAIT_RECV, 200) > 0)
        ;
    /* The kernel's control message reports drops with the next datagram it
     * queues: markers into the empty queue make sure that path has seen
     * every drop too (the counter must agree either way). */
    bool counted = is_pair() || (volley_features(b) & VOLLEY_F_RXQ_OVFL);
    uint64_t marks_sent = 0;
    if (!is_pair() && counted) {
        t_fill_seq(sbuf[0], SEQ_LEN, SEQ_MARK);
        for (int tries = 0; tries < 50 && !t.marks; tries++) {
            marks_sent += (unsigned)T_OK(volley_send(a, sd, 1));
            volley_wait(b, VOLLEY_WAIT_RECV, 100);
            tally_drain(b, &t, rd);
        }
        T_ASSERT(t.marks > 0);
    }
    struct volley_stats sa = t_stats(a), sb = t_stats(b);
    /* The pair counts a full queue on both sides: the sender's
     * pair_queue_full and the receiver's rx_kernel_drops, as a kernel would. */
    uint64_t drops =
        is_pair() ? sa.pair_queue_full + sa.pair_dropped : sb.rx_kernel_drops;
    printf("  %s: sent %llu, received %llu, dups %llu, drops %llu, %lld ms\n", label,
           (unsigned long long)sent, (unsigned long long)t.got,
           (unsigned long long)t.dups, (unsigned long long)drops, t_now_ms() - t0);
    T_EQ(t.dups, 0);
    if (!counted)
        printf("  (no drop counter on this socket: every datagram must arrive)\n");
    if (is_pair())
        T_EQ(sb.rx_kernel_drops, sa.pair_queue_full);
    uint64_t missing = 0;
    for (uint64_t i = 0; i < t.n; i++)
        missing += !t.seen[i];
    T_EQ(t.got + missing, t.n);
    if (exact) {
        T_EQ(missing, drops);
    } else {
        if (missing != drops)
            printf(
                "  %s: %llu missing, %llu counted (a dropped GRO buffer counts once)\n",
                label, (unsigned long long)missing, (unsigned long long)drops);
        T_ASSERT(missing >= drops);
        T_ASSERT(!missing == !drops);
    }
    if (want_drops && counted)
        T_ASSERT(drops > 0);
    T_EQ(sa.tx_dgrams, sent + marks_sent);
    T_EQ(sb.rx_dgrams, t.got + t.marks);
    free(t.seen);
    volley_close(a);
    volley_close(b);
}

/* Whether a receiver opened with o has GRO on (the backend's offload and
 * the kernel's). */
static bool gro_on(const struct volley_opts *o)
{
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    t_socks(o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    bool on = volley_features(b) & VOLLEY_F_GRO;
    volley_close(a);
    volley_close(b);
    return on;
}

static int case_million(void)
{
    uint64_t n = (uint64_t)(1000000 * test_scale());
    n = n < 1000 ? 1000 : n;
    struct volley_opts o = opts();
    o.rcvbuf = 4 * MIB;
    seq_run("million", &o, n, 1, false, true);

    /* A receiver that lags behind a small buffer: many drops, all counted.
     * Without GRO the kernel splits GSO buffers before queueing, so each
     * dropped datagram counts once. */
    o = opts();
    o.rcvbuf = 64 * 1024;
    o.pair_capacity = 300;
    o.disable = VOLLEY_F_GRO;
    seq_run("lossy", &o, n / 5, 4, true, true);
    o.disable = 0;
    o.rcvbuf = 4096;
    if (gro_on(&o))
        seq_run("lossy-gro", &o, n / 5, 4, false, false);
    return 0;
}

/* ---- 11. stats ---- */

static int case_stats(void)
{
    struct volley_opts o = opts();
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    /* different sizes: no GSO, one datagram per message */
    struct t_batch tx = batch_new(10, 200, &to_b, 0);
    uint64_t bytes = 0;
    for (unsigned i = 0; i < 10; i++) {
        tx.d[i].len = 100 + i;
        bytes += tx.d[i].len;
    }
    T_EQ(volley_send(a, tx.d, 10), 10);
    struct t_batch in = t_batch_new(10, 200);
    T_EQ(recv_into(b, &in, 10), 10);
    struct volley_stats sa = t_stats(a), sb = t_stats(b);
    T_EQ(sa.tx_dgrams, 10);
    T_EQ(sa.tx_bytes, bytes);
    T_EQ(sa.rx_dgrams, 0);
    T_EQ(sa.tx_errors, 0);
    T_EQ(sb.rx_dgrams, 10);
    T_EQ(sb.rx_bytes, bytes);
    T_EQ(sb.tx_dgrams, 0);
    T_EQ(sb.rx_truncated, 0);
    if (!is_pair()) {
        T_ASSERT(sa.tx_syscalls >= 1);
        T_ASSERT(sb.rx_syscalls >= 1);
    }
    t_batch_free(&tx);

    if (!is_pair()) {
        /* a batch to one peer without GSO: one sendmsg each for scalar, one
         * call (sendmmsg, io_uring_enter) for the batching backends */
        struct volley_opts co = opts();
        co.disable = VOLLEY_F_GSO;
        volley_sock *c;
        T_OK(volley_open(&c, "127.0.0.1:0", &co));
        tx = batch_new(64, 100, &to_b, 100);
        struct volley_stats before = t_stats(c);
        T_EQ(volley_send(c, tx.d, 64), 64);
        struct volley_stats after = t_stats(c);
        T_EQ(after.tx_syscalls - before.tx_syscalls,
             g_be->id == VOLLEY_BACKEND_SCALAR ? 64 : 1);
        T_EQ(after.tx_gso_sends, 0);
        T_EQ(after.tx_dgrams, 64);
        T_EQ(after.tx_bytes, 6400);
        t_batch_free(&in);
        in = t_batch_new(64, 100);
        T_EQ(recv_into(b, &in, 64), 64);
        for (unsigned i = 0; i < 64; i++)
            CHECK_DGRAM(&in.d[i], 100, 100 + i);
        sb = t_stats(b);
        T_EQ(sb.rx_dgrams, 74);
        T_EQ(sb.rx_bytes, bytes + 6400);
        t_batch_free(&tx);
        volley_close(c);
    }
    t_batch_free(&in);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* ---- 12. connected sockets ---- */

static void connected_run(volley_sock *a, volley_sock *b,
                          const struct volley_addr *from_a)
{
    struct volley_dgram r = HOP(a, b, NULL, 500, 1);
    if (from_a)
        EXPECT_ADDR(&r.peer, from_a);

    struct t_batch tx = batch_new(64, 500, NULL, 10);
    T_EQ(volley_send(a, tx.d, 64), 64);
    struct t_batch in = t_batch_new(64, 500);
    T_EQ(recv_into(b, &in, 64), 64);
    for (unsigned i = 0; i < 64; i++) {
        CHECK_DGRAM(&in.d[i], 500, 10 + i);
        if (from_a)
            EXPECT_ADDR(&in.d[i].peer, from_a);
    }
    t_batch_free(&in);
    t_batch_free(&tx);
}

static int case_connected(void)
{
    struct volley_opts o = opts();
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    if (is_pair()) {
        t_socks(&o, "", &a, &b, &to_b, &to_a);
        T_EQ(volley_connect(a, "127.0.0.1:9"), -ENOTSUP);
        connected_run(a, b, NULL);
        connected_run(b, a, NULL);
        volley_close(a);
        volley_close(b);
        return 0;
    }
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    char name[64];
    T_ASSERT(volley_addr_format(&to_b, name, sizeof name) > 0);
    T_OK(volley_connect(a, name));
    connected_run(a, b, &to_a);
    /* b is not connected: a datagram without a peer has nowhere to go */
    uint8_t byte = 1;
    struct volley_dgram d = {.data = &byte, .len = 1};
    T_EQ(volley_send(b, &d, 1), -EDESTADDRREQ);
    /* b can still answer a */
    SEND1(b, &byte, 1, &to_a);
    struct volley_dgram r = RECV1(a);
    T_EQ(r.len, 1);
    EXPECT_ADDR(&r.peer, &to_b);
    volley_close(a);
    volley_close(b);

    if (t_open(&a, "[::1]:0", &o)) {
        T_OK(volley_open(&b, "[::1]:0", &o));
        to_a = t_local(a);
        to_b = t_local(b);
        T_OK(volley_connect_addr(a, &to_b));
        connected_run(a, b, &to_a);
        T_EQ(volley_send(b, &d, 1), -EDESTADDRREQ);
        volley_close(a);
        volley_close(b);
    }
    return 0;
}

/* ---- 13. volley_wait ---- */

static int case_wait(void)
{
    struct volley_opts o = opts();
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV, 50), 0);
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV, 0), 0);
    T_EQ(volley_wait(a, VOLLEY_WAIT_SEND, 1000), VOLLEY_WAIT_SEND);
    uint8_t buf[100];
    t_fill(buf, sizeof buf, 0);
    SEND1(a, buf, sizeof buf, &to_b);
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV, WAIT_MS), VOLLEY_WAIT_RECV);
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV | VOLLEY_WAIT_SEND, WAIT_MS),
         VOLLEY_WAIT_RECV | VOLLEY_WAIT_SEND);
    struct volley_dgram r = RECV1(b);
    CHECK_DGRAM(&r, sizeof buf, 0);
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV, 50), 0);

    /* taken one at a time: datagrams the socket already holds (a GRO buffer,
     * a receive batch) must still make it readable */
    struct t_batch tx = batch_new(10, 100, &to_b, 1);
    T_EQ(volley_send(a, tx.d, 10), 10);
    for (unsigned i = 0; i < 10; i++) {
        T_EQ(volley_wait(b, VOLLEY_WAIT_RECV, WAIT_MS), VOLLEY_WAIT_RECV);
        T_EQ(volley_recv(b, &r, 1), 1);
        CHECK_DGRAM(&r, 100, 1 + i);
    }
    T_EQ(volley_wait(b, VOLLEY_WAIT_RECV, 50), 0);
    T_EQ(volley_recv(b, &r, 1), 0);
    t_batch_free(&tx);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* ---- 14. ICMP errors ---- */

/* The address of a port that was bound and is now closed. Take it while
 * the sockets that send there hold their own ports: a port closed first
 * can be the very one the kernel gives the next socket, which then sends
 * to itself. */
static bool closed_port(const char *bind, struct volley_addr *out)
{
    struct volley_opts o = opts();
    volley_sock *c;
    if (!t_open(&c, bind, &o))
        return false;
    *out = t_local(c);
    volley_close(c);
    return true;
}

/* A socket on tx_bind with RECVERR sends to a closed port bound like
 * closed_bind: the report arrives, and the socket works afterwards. */
static void recverr_run(const char *what, const char *tx_bind, const char *closed_bind)
{
    struct volley_opts o = opts();
    o.enable = VOLLEY_F_RECVERR;
    volley_sock *tx, *p;
    struct volley_addr gone;
    if (!t_open(&tx, tx_bind, &o)) {
        t_skip_part(what, "address family unavailable");
        return;
    }
    if (!closed_port(closed_bind, &gone)) {
        t_skip_part(what, "address family unavailable");
        volley_close(tx);
        return;
    }
    if (!(volley_features(tx) & VOLLEY_F_RECVERR)) {
        t_skip_part(what, "VOLLEY_F_RECVERR refused");
        volley_close(tx);
        return;
    }
    uint8_t buf[64];
    t_fill(buf, sizeof buf, 5);
    SEND1(tx, buf, sizeof buf, &gone);

    struct volley_sockerr errs[8];
    struct volley_dgram rd[8];
    int n = 0;
    long long deadline = t_now_ms() + WAIT_MS;
    while (t_now_ms() < deadline) {
        T_EQ(T_OK(volley_recv(tx, rd, 8)), 0);
        n = T_OK(volley_errors(tx, errs, 8));
        if (n > 0)
            break;
        volley_wait(tx, VOLLEY_WAIT_RECV, 50);
    }
    if (n <= 0)
        T_FAIL("%s: no error report within %d ms", what, WAIT_MS);
    T_EQ(errs[0].error, -ECONNREFUSED);
    EXPECT_ADDR(&errs[0].dest, &gone);
    if (gone.sa.sa_family == AF_INET) {
        T_EQ(errs[0].origin, SO_EE_ORIGIN_ICMP);
        T_EQ(errs[0].type, ICMP_DEST_UNREACH);
        T_EQ(errs[0].code, ICMP_PORT_UNREACH);
    } else {
        T_EQ(errs[0].origin, SO_EE_ORIGIN_ICMP6);
        T_EQ(errs[0].type, ICMP6_DST_UNREACH);
        T_EQ(errs[0].code, ICMP6_DST_UNREACH_NOPORT);
    }
    T_ASSERT(t_stats(tx).sockerr_queued >= 1);

    /* the socket carries on */
    struct volley_opts po = opts();
    T_OK(volley_open(&p, closed_bind, &po));
    struct volley_addr lp = t_local(p), back = t_dest(tx, closed_bind);
    HOP(tx, p, &lp, sizeof buf, 6);
    struct volley_dgram r = HOP(p, tx, &back, sizeof buf, 6);
    EXPECT_ADDR(&r.peer, &lp);
    volley_close(p);
    volley_close(tx);
}

static int case_icmp(void)
{
    if (is_pair())
        return t_skip("the pair has no kernel sockets");
    recverr_run("case_icmp ipv4", "127.0.0.1:0", "127.0.0.1:0");
    recverr_run("case_icmp ipv6", "[::1]:0", "[::1]:0");
    recverr_run("case_icmp dual-stack to ipv4", "[::]:0", "127.0.0.1:0");

    /* no RECVERR, connected: the refusal is counted, sending carries on */
    struct volley_opts o = opts();
    volley_sock *tx, *p;
    struct volley_addr gone;
    T_OK(volley_open(&tx, "127.0.0.1:0", &o));
    T_ASSERT(closed_port("127.0.0.1:0", &gone));
    T_OK(volley_connect_addr(tx, &gone));
    uint8_t buf[64];
    t_fill(buf, sizeof buf, 9);
    struct volley_dgram d = {.data = buf, .len = sizeof buf}, rd[8];
    long long deadline = t_now_ms() + WAIT_MS;
    while (t_stats(tx).err_connrefused == 0 && t_now_ms() < deadline) {
        T_EQ(volley_send(tx, &d, 1), 1);
        T_EQ(T_OK(volley_recv(tx, rd, 8)), 0);
        volley_wait(tx, VOLLEY_WAIT_RECV, 20);
    }
    T_ASSERT(t_stats(tx).err_connrefused >= 1);
    T_EQ(volley_send(tx, &d, 1), 1);
    T_EQ(T_OK(volley_recv(tx, rd, 8)), 0);
    T_EQ(volley_send(tx, &d, 1), 1);
    /* someone binds the port again: the same connected socket reaches it */
    char name[64];
    volley_addr_format(&gone, name, sizeof name);
    int r = volley_open(&p, name, &o);
    if (r == 0) {
        struct volley_dgram x;
        while (volley_recv(tx, &x, 1) > 0)
            ;
        T_EQ(t_send_all(tx, &d, 1, WAIT_MS), 1);
        x = RECV1(p);
        CHECK_DGRAM(&x, sizeof buf, 9);
        volley_close(p);
    } else {
        t_skip_part("case_icmp rebind", "the closed port was taken");
    }
    volley_close(tx);
    return 0;
}

/* ---- 15. GSO/GRO ---- */

/* Receive n datagrams a few at a time so GRO buffers are handed out in
 * parts. */
static void recv_chunked(volley_sock *b, struct t_batch *in, unsigned n, unsigned chunk)
{
    unsigned got = 0;
    long long deadline = t_now_ms() + WAIT_MS;
    while (got < n && t_now_ms() < deadline) {
        unsigned ask = n - got < chunk ? n - got : chunk;
        int k = T_OK(volley_recv(b, in->d + got, ask));
        if (!k) {
            volley_wait(b, VOLLEY_WAIT_RECV, 50);
            continue;
        }
        for (int i = 0; i < k; i++)
            T_ASSERT(in->d[got + (unsigned)i].len <= in->stride);
        t_keep(in->d + got, (unsigned)k, in->buf + (size_t)got * in->stride, in->stride);
        got += (unsigned)k;
    }
    T_EQ(got, n);
}

static void gso_auto(volley_sock *a, volley_sock *b, const struct volley_addr *to,
                     unsigned n, size_t len, size_t last, uint64_t base)
{
    struct volley_stats sa0 = t_stats(a), sb0 = t_stats(b);
    struct t_batch tx = batch_new(n, len, to, base);
    tx.d[n - 1].len = last;
    T_EQ(volley_send(a, tx.d, n), n);
    struct volley_stats sa = t_stats(a);
    T_ASSERT(sa.tx_gso_sends > sa0.tx_gso_sends);
    T_EQ(sa.tx_syscalls - sa0.tx_syscalls, 1);
    T_EQ(sa.tx_dgrams - sa0.tx_dgrams, n);
    T_EQ(sa.tx_bytes - sa0.tx_bytes, (n - 1) * len + last);
    struct t_batch in = t_batch_new(n, len);
    recv_chunked(b, &in, n, 7);
    bool gro = false;
    for (unsigned i = 0; i < n; i++) {
        CHECK_DGRAM(&in.d[i], tx.d[i].len, base + i);
        gro |= (in.d[i].flags & VOLLEY_DGRAM_GRO) != 0;
    }
    struct volley_stats sb = t_stats(b);
    T_EQ(sb.rx_dgrams - sb0.rx_dgrams, n);
    T_EQ(sb.rx_bytes - sb0.rx_bytes, (n - 1) * len + last);
    if (volley_features(b) & VOLLEY_F_GRO) {
        T_ASSERT(gro);
        T_ASSERT(sb.rx_gro_buffers > sb0.rx_gro_buffers);
    }
    t_batch_free(&in);
    t_batch_free(&tx);
}

/* One explicit GSO descriptor of len bytes cut at seg. */
static void gso_explicit(volley_sock *a, volley_sock *b, const struct volley_addr *to,
                         size_t len, uint16_t seg, uint64_t seq)
{
    uint8_t *buf = malloc(len);
    T_ASSERT(buf);
    t_fill(buf, len, seq);
    struct volley_dgram d = {.data = buf, .len = len, .peer = *to, .segment = seg};
    T_EQ(volley_send(a, &d, 1), 1);
    unsigned n = (unsigned)((len + seg - 1) / seg);
    struct t_batch in = t_batch_new(n, seg);
    recv_chunked(b, &in, n, 3);
    for (unsigned i = 0; i < n; i++) {
        size_t off = (size_t)i * seg, want = len - off < seg ? len - off : seg;
        check_dgram_(&in.d[i], want, seq, off, __LINE__);
    }
    T_EQ(volley_recv(b, in.d, 1), 0);
    t_batch_free(&in);
    free(buf);
}

static int case_gso(void)
{
    struct volley_opts o = opts();
    o.rcvbuf = 4 * MIB;
    volley_sock *a, *b, *c;
    struct volley_addr to_a, to_b;
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    unsigned max = volley_gso_max_segments(a);
    if (max == 0) {
        volley_close(a);
        volley_close(b);
        return t_skip("GSO is off: backend, kernel or VOLLEY_DISABLE");
    }
    /* 64 x 1200 is more than one super-datagram can carry: two GSO sends */
    gso_auto(a, b, &to_b, 64, 1200, 1200, 0);
    gso_auto(a, b, &to_b, 11, 1200, 500, 100); /* short last segment */
    gso_auto(a, b, &to_b, 2, 1200, 1, 200);
    size_t seg = 60000 / max;
    gso_auto(a, b, &to_b, max, seg, seg, 300);     /* exactly the segment limit */
    gso_auto(a, b, &to_b, max + 1, seg, seg, 600); /* one more */

    /* a longer last datagram must not ride in the run */
    struct t_batch tx = batch_new(4, 1200, &to_b, 900);
    for (unsigned i = 0; i < 3; i++)
        tx.d[i].len = 500;
    T_EQ(volley_send(a, tx.d, 4), 4);
    struct t_batch in = t_batch_new(4, 1200);
    recv_chunked(b, &in, 4, 4);
    for (unsigned i = 0; i < 4; i++)
        CHECK_DGRAM(&in.d[i], tx.d[i].len, 900 + i);
    t_batch_free(&in);
    t_batch_free(&tx);

    /* explicit descriptors, to a receiver without GRO and to one with it */
    struct volley_opts co = o;
    co.disable = VOLLEY_F_GRO;
    T_OK(volley_open(&c, "127.0.0.1:0", &co));
    struct volley_addr to_c = t_local(c);
    gso_explicit(a, c, &to_c, 5000, 1200, 1000);
    gso_explicit(a, c, &to_c, 1200, 1200, 1001);
    gso_explicit(a, c, &to_c, 1201, 1200, 1002);
    gso_explicit(a, c, &to_c, (size_t)max * seg, (uint16_t)seg, 1003);
    gso_explicit(a, b, &to_b, 5000, 1200, 1004);
    volley_close(c);
    volley_close(a);
    volley_close(b);

    if (t_open(&a, "[::1]:0", &o)) {
        T_OK(volley_open(&b, "[::1]:0", &o));
        to_b = t_local(b);
        gso_auto(a, b, &to_b, 64, 1200, 1200, 2000);
        gso_explicit(a, b, &to_b, 5000, 1200, 2100);
        volley_close(a);
        volley_close(b);
    }
    return 0;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"sizes", case_sizes, 0, NULL},
        {"batch", case_batch, 0, NULL},
        {"families", case_families, 0, NULL},
        {"unix", case_unix, 0, NULL},
        {"ecn", case_ecn, 0, NULL},
        {"pktinfo", case_pktinfo, 0, NULL},
        {"aligned", case_aligned, 0, NULL},
        {"trunc", case_trunc, 0, NULL},
        {"timestamp", case_timestamp, 0, NULL},
        {"kernel_drops", case_kernel_drops, 0, NULL},
        {"million", case_million, 0, NULL},
        {"stats", case_stats, 0, NULL},
        {"connected", case_connected, 0, NULL},
        {"wait", case_wait, 0, NULL},
        {"icmp", case_icmp, 0, NULL},
        {"gso", case_gso, 0, NULL},
    };
    g_be = t_backend_arg(&argc, &argv);
    /* One budget for all the cases: a backend this kernel or sandbox
     * refuses (io_uring off by sysctl or seccomp) skips every case. */
    struct t_run how = {.total_s = 240, .backend = g_be->id};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
