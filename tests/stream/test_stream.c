/* SPDX-License-Identifier: MIT */
/* The TCP stream API (volley_loop, volley_listen, volley_dial and
 * volley_conn_*) against its header, on both loop backends: every case
 * runs once as "uring/NAME" and once as "epoll/NAME" (`test_stream epoll`
 * picks the epoll ones); a uring case is skipped where a uring loop does
 * not open (-ENOTSUP).
 *
 * Streams are generated from seeds, so that any byte at any offset can be
 * checked without keeping what was sent. Both ends of a connection are
 * usually on the same loop; where the header speaks of a peer doing what
 * volley cannot (reset, shut one side, accept nothing), the peer is a
 * plain socket. Every wait is bounded by a poll timeout and a deadline;
 * nothing asserts how long anything took. */
#include "stream/loop.h"
#include "tstream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ====================================================================== */
/* Cases                                                                    */
/* ====================================================================== */

/* ---- bad input ---- */

static int loop_opts_rejected(struct volley_loop_opts o, const char *what)
{
    volley_loop *l = NULL;
    int r = volley_loop_open(&l, &o);
    if (r == 0)
        volley_loop_close(l, 0);
    return T_CHECK(r == -EINVAL, "volley_loop_open(%s) = %d (%s), want -EINVAL", what, r,
                   volley_strerror(r));
}

static void loop_opts_accepted(struct volley_loop_opts o, const char *what)
{
    volley_loop *l = NULL;
    int r = volley_loop_open(&l, &o);
    T_CHECK(r == 0, "volley_loop_open(%s) = %d (%s), want 0", what, r,
            volley_strerror(r));
    volley_loop_close(l, 0);
}

static void bad_loop_opts(void)
{
    struct volley_loop_opts o = lopts();
    volley_loop *l = NULL;
    T_EXPECT(volley_loop_open(NULL, &o), -EINVAL);
    T_EXPECT(volley_loop_open(NULL, NULL), -EINVAL);
    o.size = 0;
    loop_opts_rejected(o, "size 0");
    /* a newer caller's larger struct: fine with a zero tail, -E2BIG with
     * a field this library does not know */
    struct {
        struct volley_loop_opts o;
        uint32_t more[4];
    } big = {.o = lopts()};
    big.o.size = sizeof big;
    T_EXPECT(volley_loop_open(&l, &big.o), 0);
    volley_loop_close(l, 0);
    big.more[2] = 1;
    T_EXPECT(volley_loop_open(&l, &big.o), -E2BIG);
    static const unsigned backends[] = {VOLLEY_BACKEND_SCALAR, VOLLEY_BACKEND_MMSG,
                                        VOLLEY_BACKEND_PAIR, 6, 99};
    for (size_t i = 0; i < T_COUNT(backends); i++) {
        o = lopts();
        o.backend = backends[i];
        loop_opts_rejected(o, "a datagram or unknown backend");
    }
#define LOOP_FIELD(f, bad, good)                                                         \
    do {                                                                                 \
        o = lopts();                                                                     \
        o.f = bad;                                                                       \
        loop_opts_rejected(o, #f " = " #bad);                                            \
        o.f = good;                                                                      \
        loop_opts_accepted(o, #f " = " #good);                                           \
    } while (0)
    LOOP_FIELD(entries, 7, 8);
    LOOP_FIELD(entries, 32769, 32768);
    LOOP_FIELD(buf_size, 511, 512);
    LOOP_FIELD(buf_size, MiB + 1, MiB);
    LOOP_FIELD(buf_count, 1, 2);
    LOOP_FIELD(buf_count, 32769, 3);
    /* linger_ms must stay a positive int: 2^31 would mean "never" */
    LOOP_FIELD(linger_ms, 2147483648u, 2147483647u);
    LOOP_FIELD(linger_ms, 0xffffffffu, 1);
    LOOP_FIELD(sendq_budget, 65535, 65536);
    LOOP_FIELD(sendq_budget, 0x80000001u, 0x80000000u);
    for (unsigned i = 0; i < T_COUNT(o.reserved); i++) {
        o = lopts();
        o.reserved[i] = 1;
        loop_opts_rejected(o, "reserved[i] = 1");
    }
    /* NULL options are the defaults */
    T_EXPECT(volley_loop_open(&l, NULL), 0);
    volley_loop_close(l, 0);
    volley_loop_close(NULL, 0);
    volley_loop_close(NULL, -1);
}

static void bad_loop_calls(volley_loop *l)
{
    struct volley_event ev[2];
    struct volley_loop_stats st;
    T_EXPECT(volley_loop_poll(NULL, ev, 2, 0), -EINVAL);
    T_EXPECT(volley_loop_poll(l, NULL, 2, 0), -EINVAL);
    T_EXPECT(volley_loop_poll(l, ev, 0, 0), -EINVAL);
    T_EXPECT(volley_loop_fd(NULL), -EINVAL);
    T_EXPECT(volley_loop_timeout(NULL), -1);
    T_CHECK(volley_loop_fd(l) >= 0, "volley_loop_fd = %d", volley_loop_fd(l));
    T_CHECK(!strcmp(volley_loop_backend(NULL), "none"), "volley_loop_backend(NULL)");
    T_EXPECT(volley_loop_get_stats(NULL, &st, sizeof st), -EINVAL);
    T_EXPECT(volley_loop_get_stats(l, NULL, sizeof st), -EINVAL);
    T_EXPECT(volley_loop_get_stats(l, &st, 0), -EINVAL);
    uint8_t small[sizeof(uint64_t) + 8];
    memset(small, 0xee, sizeof small);
    T_EXPECT(volley_loop_get_stats(l, (void *)small, sizeof(uint64_t)), 0);
    T_CHECK(small[sizeof(uint64_t)] == 0xee,
            "volley_loop_get_stats(size 8) wrote past 8");
}

/* Addresses neither listen nor dial take. */
static const char *const bad_addrs[] = {
    "",
    "127.0.0.1",
    "127.0.0.1:",
    "127.0.0.1:65536",
    "localhost:80",
    "[::1]",
    "[::1:80",
    "::1:80",
    "1.2.3.4.5:1",
    "127.0.0.1:-1",
    "127.0.0.1:80x",
    "[zz::1]:80",
};

/* listen (dial false) or dial with these options: the result. */
static int try_open(volley_loop *l, bool dial, const char *addr,
                    const struct volley_conn_opts *o)
{
    volley_conn *c = NULL;
    int r = dial ? volley_dial(l, &c, addr, o, 1000, NULL)
                 : volley_listen(l, &c, addr, o, NULL);
    if (r == 0) {
        volley_conn_abort(c);
        take_within(l, VOLLEY_EV_CLOSED, c, 2000, NULL);
    }
    return r;
}

static void bad_conn_opts(volley_loop *l, bool dial, const char *addr)
{
    const char *fn = dial ? "volley_dial" : "volley_listen";
    struct volley_conn_opts o;
#define CONN_BAD(field_set, what)                                                        \
    do {                                                                                 \
        o = copts();                                                                     \
        field_set;                                                                       \
        int r_ = try_open(l, dial, addr, &o);                                            \
        T_CHECK(r_ == -EINVAL, "%s(%s) = %d (%s), want -EINVAL", fn, what, r_,           \
                volley_strerror(r_));                                                    \
    } while (0)
#define CONN_GOOD(field_set, what)                                                       \
    do {                                                                                 \
        o = copts();                                                                     \
        field_set;                                                                       \
        int r_ = try_open(l, dial, addr, &o);                                            \
        T_CHECK(r_ == 0, "%s(%s) = %d (%s), want 0", fn, what, r_, volley_strerror(r_)); \
    } while (0)
    CONN_BAD(o.size = 0, "size 0");
    for (unsigned i = 0; i < T_COUNT(o.reserved); i++)
        CONN_BAD(o.reserved[i] = 1, "reserved[i] = 1");
    CONN_BAD(o.flags = 0x100, "unknown flag 0x100");
    CONN_BAD(o.flags = 0x80000000u, "unknown flag 0x80000000");
    CONN_BAD(o.backlog = 65536, "backlog 65536");
    CONN_GOOD(o.backlog = 65535, "backlog 65535");
    CONN_BAD(o.sendq_max = (1u << 30) + 1, "sendq_max 2^30 + 1");
    CONN_GOOD(o.sendq_max = 1u << 30, "sendq_max 2^30");
    CONN_GOOD(o.sendq_max = 1, "sendq_max 1");
    CONN_BAD((o.sendq_max = 1000, o.sendq_low = 1000), "sendq_low == sendq_max");
    CONN_BAD((o.sendq_max = 1000, o.sendq_low = 5000), "sendq_low > sendq_max");
    CONN_GOOD((o.sendq_max = 1000, o.sendq_low = 999), "sendq_low 999, sendq_max 1000");
    CONN_BAD(o.sendq_low = SENDQ_MAX_DEFAULT, "sendq_low == the default sendq_max");
    CONN_BAD(o.readq_max = (1u << 30) + 1, "readq_max 2^30 + 1");
    CONN_GOOD(o.readq_max = 1u << 30, "readq_max 2^30");
    CONN_GOOD(o.readq_max = 1, "readq_max 1");
}

static void bad_listen_dial(volley_loop *l, const char *live)
{
    volley_conn *c = NULL;
    struct volley_conn_opts o = copts();
    T_EXPECT(volley_listen(NULL, &c, "127.0.0.1:0", &o, NULL), -EINVAL);
    T_EXPECT(volley_listen(l, NULL, "127.0.0.1:0", &o, NULL), -EINVAL);
    T_EXPECT(volley_listen(l, &c, NULL, &o, NULL), -EINVAL);
    T_EXPECT(volley_dial(NULL, &c, live, &o, 1000, NULL), -EINVAL);
    T_EXPECT(volley_dial(l, NULL, live, &o, 1000, NULL), -EINVAL);
    T_EXPECT(volley_dial(l, &c, NULL, &o, 1000, NULL), -EINVAL);
    T_EXPECT(volley_dial(l, &c, "127.0.0.1:0", &o, 1000, NULL), -EINVAL);
    struct {
        struct volley_conn_opts o;
        uint32_t more[2];
    } big = {.o = copts()};
    big.o.size = sizeof big;
    big.more[1] = 7;
    T_EXPECT(volley_listen(l, &c, "127.0.0.1:0", &big.o, NULL), -E2BIG);
    T_EXPECT(volley_dial(l, &c, live, &big.o, 1000, NULL), -E2BIG);
    big.more[1] = 0;
    T_EXPECT(try_open(l, false, "127.0.0.1:0", &big.o), 0);
    for (size_t i = 0; i < T_COUNT(bad_addrs); i++) {
        t_context("address \"%s\"", bad_addrs[i]);
        T_EXPECT(volley_listen(l, &c, bad_addrs[i], &o, NULL), -EINVAL);
        T_EXPECT(volley_dial(l, &c, bad_addrs[i], &o, 1000, NULL), -EINVAL);
    }
    t_context("listen options");
    bad_conn_opts(l, false, "127.0.0.1:0");
    t_context("dial options");
    bad_conn_opts(l, true, live);
    t_context(NULL);
}

/* Every call a connection refuses with NULL arguments. */
static void bad_conn_nulls(volley_conn *c)
{
    char buf[8];
    struct iovec iov[2];
    struct volley_conn_stats st;
    struct volley_addr a;
    T_EXPECT(volley_conn_addr(NULL, &a, &a), -EINVAL);
    T_EXPECT(volley_conn_buffered(NULL), 0);
    T_EXPECT(volley_conn_queued(NULL), 0);
    T_EXPECT(volley_conn_read(NULL, buf, sizeof buf), -EINVAL);
    T_EXPECT(volley_conn_read(c, NULL, sizeof buf), -EINVAL);
    T_EXPECT(volley_conn_peek(NULL, iov, 2), -EINVAL);
    T_EXPECT(volley_conn_peek(c, NULL, 2), -EINVAL);
    T_EXPECT(volley_conn_peek(c, iov, 0), -EINVAL);
    T_EXPECT(volley_conn_consume(NULL, 0), -EINVAL);
    T_EXPECT(volley_conn_want(NULL, 1, -1), -EINVAL);
    T_EXPECT(volley_conn_write(NULL, buf, 1), -EINVAL);
    T_EXPECT(volley_conn_write(c, NULL, 1), -EINVAL);
    T_EXPECT(volley_conn_write_ref(NULL, buf, 1, 1), -EINVAL);
    T_EXPECT(volley_conn_write_ref(c, NULL, 1, 1), -EINVAL);
    T_EXPECT(volley_conn_wait_drained(NULL, -1), -EINVAL);
    T_EXPECT(volley_conn_shutdown(NULL), -EINVAL);
    T_EXPECT(volley_conn_recv_into(NULL, buf, 1, 1), -EINVAL);
    T_CHECK(volley_conn_user(NULL) == NULL, "volley_conn_user(NULL)");
    T_EXPECT(volley_conn_close(NULL), -EINVAL);
    T_EXPECT(volley_conn_abort(NULL), -EINVAL);
    T_EXPECT(volley_conn_get_stats(NULL, &st, sizeof st), -EINVAL);
    T_EXPECT(volley_conn_get_stats(c, NULL, sizeof st), -EINVAL);
    T_EXPECT(volley_conn_get_stats(c, &st, 0), -EINVAL);
}

/* Range checks of an open connection with the default readq_max. */
static void bad_conn_ranges(volley_conn *c)
{
    T_EXPECT(volley_conn_want(c, 0, -1), -EINVAL);
    T_EXPECT(volley_conn_want(c, READQ_MAX_DEFAULT + 1, -1), -EINVAL);
    T_EXPECT(volley_conn_want(c, SIZE_MAX, -1), -EINVAL);
    T_EXPECT(volley_conn_want(c, READQ_MAX_DEFAULT, -1), 0);
    T_EXPECT(volley_conn_want(c, 1, -1), 0);
    T_EXPECT(volley_conn_consume(c, 1), -EINVAL);
    T_EXPECT(volley_conn_consume(c, 0), 0);
}

/* A listener refuses the stream calls. */
static void bad_on_listener(volley_conn *ln)
{
    char buf[8];
    struct iovec iov[2];
    T_EXPECT(volley_conn_read(ln, buf, sizeof buf), -ENOTCONN);
    T_EXPECT(volley_conn_peek(ln, iov, 2), -ENOTCONN);
    T_EXPECT(volley_conn_consume(ln, 0), -ENOTCONN);
    T_EXPECT(volley_conn_want(ln, 1, -1), -ENOTCONN);
    T_EXPECT(volley_conn_write(ln, buf, 1), -ENOTCONN);
    T_EXPECT(volley_conn_write_ref(ln, buf, 1, 1), -ENOTCONN);
    T_EXPECT(volley_conn_wait_drained(ln, -1), -ENOTCONN);
    T_EXPECT(volley_conn_shutdown(ln), -ENOTCONN);
    T_EXPECT(volley_conn_buffered(ln), 0);
    T_EXPECT(volley_conn_queued(ln), 0);
    struct volley_addr peer = conn_peer(ln);
    T_EXPECT(peer.sa.sa_family, AF_UNSPEC);
}

/* After close or abort, everything but get_stats is -EPIPE. */
static void all_epipe(volley_conn *c, const char *after)
{
    char buf[8];
    struct iovec iov[2];
    t_context("after %s", after);
    T_EXPECT(volley_conn_read(c, buf, sizeof buf), -EPIPE);
    T_EXPECT(volley_conn_peek(c, iov, 2), -EPIPE);
    T_EXPECT(volley_conn_consume(c, 0), -EPIPE);
    T_EXPECT(volley_conn_want(c, 1, -1), -EPIPE);
    T_EXPECT(volley_conn_write(c, buf, 1), -EPIPE);
    T_EXPECT(volley_conn_write_ref(c, buf, 1, 1), -EPIPE);
    T_EXPECT(volley_conn_wait_drained(c, -1), -EPIPE);
    T_EXPECT(volley_conn_shutdown(c), -EPIPE);
    T_EXPECT(volley_conn_close(c), -EPIPE);
    T_EXPECT(volley_conn_abort(c), -EPIPE);
    t_context(NULL);
}

static int case_bad_input(void)
{
    bad_loop_opts();
    struct duo d;
    duo_default(&d);
    bad_loop_calls(d.l);
    bad_listen_dial(d.l, addr_of(d.ln, "127.0.0.1"));
    bad_conn_nulls(d.cli);
    bad_conn_ranges(d.cli);
    bad_on_listener(d.ln);
    /* -EPIPE at once after close and abort, and still once CLOSED came */
    T_EXPECT(volley_conn_close(d.cli), 0);
    all_epipe(d.cli, "close");
    T_EXPECT(volley_conn_abort(d.srv), 0);
    all_epipe(d.srv, "abort");
    T_EXPECT(TAKE(d.l, VOLLEY_EV_CLOSED, d.srv).err, -ECANCELED);
    TAKE(d.l, VOLLEY_EV_CLOSED, d.cli);
    all_epipe(d.srv, "abort, CLOSED returned");
    T_EXPECT(volley_conn_close(d.ln), 0);
    T_EXPECT(volley_conn_close(d.ln), -EPIPE);
    T_EXPECT(volley_conn_abort(d.ln), -EPIPE);
    TAKE(d.l, VOLLEY_EV_CLOSED, d.ln);
    pull(d.l, 0);
    volley_loop_close(d.l, 0);
    return 0;
}

/* ---- listen and dial, addresses ---- */

/* A listener on bind, a dial to ip:its port; both ends checked. */
static int listen_dial(const char *bind, const char *ip, unsigned flags)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    struct volley_conn_opts o = copts();
    o.flags = flags;
    volley_conn *ln, *cli;
    int r = volley_listen(l, &ln, bind, &o, &ln_user);
    if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL) {
        volley_loop_close(l, 0);
        return t_skip("%s: %s", bind, volley_strerror(r));
    }
    T_OK(r);
    struct volley_addr la = conn_local(ln);
    T_CHECK(volley_addr_port(&la) != 0, "listener bound to port 0");
    T_EXPECT(conn_peer(ln).sa.sa_family, AF_UNSPEC);
    T_CHECK(volley_conn_user(ln) == &ln_user, "listener's user pointer");
    T_OK(volley_dial(l, &cli, addr_of(ln, ip), &o, 5000, &cli_user));
    T_CHECK(volley_conn_user(cli) == &cli_user, "dialed conn's user pointer");

    struct volley_event a = TAKE(l, VOLLEY_EV_ACCEPTED, NULL);
    T_CHECK(a.listener == ln, "ACCEPTED.listener %p, want %p", (void *)a.listener,
            (void *)ln);
    T_CHECK(a.user == &ln_user, "ACCEPTED.user is not the listener's");
    T_CHECK(volley_conn_user(a.conn) == &ln_user, "accepted conn's user pointer");
    T_EXPECT(a.err, 0);
    volley_conn *srv = a.conn;
    volley_conn_set_user(srv, &srv_user);
    T_CHECK(volley_conn_user(srv) == &srv_user, "volley_conn_set_user");
    T_CHECK(volley_conn_user(ln) == &ln_user,
            "set_user on a conn changed the listener's");
    struct volley_event c = TAKE(l, VOLLEY_EV_CONNECTED, cli);
    T_CHECK(c.user == &cli_user && c.listener == NULL && c.err == 0,
            "CONNECTED user %p listener %p err %d", c.user, (void *)c.listener, c.err);

    struct volley_addr cl = conn_local(cli), cp = conn_peer(cli);
    struct volley_addr sl = conn_local(srv), sp = conn_peer(srv);
    printf("  %s: client %s -> %s, server %s <- %s\n", bind, t_fmt(&cl), t_fmt(&cp),
           t_fmt(&sl), t_fmt(&sp));
    T_CHECK(t_addr_is(&cp, addr_of(ln, ip)), "client's peer %s, dialed %s", t_fmt(&cp),
            addr_of(ln, ip));
    T_EXPECT(volley_addr_port(&cl), volley_addr_port(&sp));
    T_EXPECT(volley_addr_port(&sl), volley_addr_port(&la));
    /* on a dual-stack listener the peer may come v4-mapped: the header
     * does not say (datagrams come back plain AF_INET) */
    struct volley_addr spv4 = sp;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sp.sa.sa_family == AF_INET6 && !memcmp(&sp.sin6.sin6_addr, mapped, 12)) {
        printf("  note: the server's peer is v4-mapped (%s)\n", t_fmt(&sp));
        memset(&spv4, 0, sizeof spv4);
        spv4.sin.sin_family = AF_INET;
        memcpy(&spv4.sin.sin_addr, (const uint8_t *)&sp.sin6.sin6_addr + 12, 4);
    }
    T_CHECK(cl.sa.sa_family == spv4.sa.sa_family && t_same_ip(&cl, &spv4),
            "server's peer %s is not the client's local %s", t_fmt(&sp), t_fmt(&cl));

    /* a message each way */
    char buf[8];
    put(cli, "ping", 4);
    read_exact(l, srv, buf, 4);
    T_ASSERT(!memcmp(buf, "ping", 4));
    put(srv, "pong!", 5);
    read_exact(l, cli, buf, 5);
    T_ASSERT(!memcmp(buf, "pong!", 5));
    struct volley_loop_stats st = loop_stats(l);
    T_EXPECT(st.accepted, 1);
    T_EXPECT(st.dialed, 1);
    T_EXPECT(st.conns, 3);
    struct duo d = {l, ln, cli, srv};
    duo_close(&d);
    return 0;
}

static int case_ipv4(void)
{
    return listen_dial("127.0.0.1:0", "127.0.0.1", 0);
}

static int case_ipv6(void)
{
    return listen_dial("[::1]:0", "[::1]", 0);
}

static int case_dual_stack(void)
{
    return listen_dial("[::]:0", "127.0.0.1", 0);
}

/* V6ONLY: an IPv4 dial to the [::] listener's port finds nobody. */
static int case_v6only(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    struct volley_conn_opts o = copts();
    o.flags = VOLLEY_CONN_V6ONLY;
    volley_conn *ln, *cli;
    int r = volley_listen(l, &ln, "[::]:0", &o, NULL);
    if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL)
        return t_skip("[::]: %s", volley_strerror(r));
    T_OK(r);
    T_OK(volley_dial(l, &cli, addr_of(ln, "127.0.0.1"), NULL, 5000, NULL));
    struct volley_event e = TAKE(l, VOLLEY_EV_CLOSED, cli);
    T_EXPECT(e.err, -ECONNREFUSED);
    T_CHECK(queued_ev(VOLLEY_EV_ACCEPTED, NULL) < 0, "a v6-only listener accepted IPv4");
    T_EXPECT(close_wait(l, ln), 0);
    volley_loop_close(l, 0);
    return 0;
}

/* ---- stream integrity: both directions at once, many connections ---- */

struct xfer {
    unsigned conns;
    uint64_t bytes;   /* per direction per connection */
    size_t max_write; /* writes of 1 .. max_write bytes */
    unsigned ref_pct; /* share of writes made with write_ref */
    uint32_t entries, buf_size, buf_count;
    uint32_t sendq_max;
    uint32_t zc_threshold;
};

struct ref {
    struct ref *next;
    uint64_t tag;
    size_t len;
    uint8_t data[];
};

struct side {
    volley_conn *c;
    int idx; /* the pair; -1 on a server end until the client's header came */
    bool client, hdr_done, blocked, closing, closed, connected, eof;
    uint64_t accepted_at; /* a server end: the poll its ACCEPTED came in */
    uint64_t tx_seed, rx_seed, tx_done, rx_done, rng, writes, next_tag;
    size_t next_len;
    struct ref *refs, *refs_tail; /* lent buffers, oldest first */
};

struct xrun {
    const struct xfer *x;
    volley_loop *l;
    volley_conn *ln;
    struct side *cli, *srv;
    unsigned accepted, closed;
    uint64_t moved;
    uint64_t polls;    /* volley_loop_poll calls so far */
    uint64_t hdr_wait; /* the most polls a server end waited for its header */
    size_t sendq_max, sendq_low;
};

/* The last xrun's hdr_wait. */
static uint64_t xrun_hdr_wait;

static void side_seeds(struct side *s, int idx)
{
    s->idx = idx;
    s->tx_seed = 1000 + 2 * (uint64_t)idx + !s->client;
    s->rx_seed = 1000 + 2 * (uint64_t)idx + s->client;
    s->rng = mix(s->tx_seed) | 1;
}

static size_t pick_len(uint64_t *rng, size_t max, uint64_t left)
{
    size_t bits = t_rand(rng) % 18 + 1;
    size_t n = 1 + t_rand(rng) % ((size_t)1 << bits);
    n = n < max ? n : max;
    return n < left ? n : (size_t)left;
}

/* What the queue's room counts as used: the bytes queued, and 64 bytes
 * for each lent buffer until its SENT event. */
static size_t queue_used(const struct side *s)
{
    size_t used = volley_conn_queued(s->c);
    for (const struct ref *f = s->refs; f; f = f->next)
        used += 64;
    return used;
}

/* Whether a write of n bytes may be refused for the loop's send budget
 * (16 MiB by default): its queues' copies fill it, within a chunk. */
static bool send_budget_full(const struct xrun *r, size_t n)
{
    return loop_stats(r->l).sendq_mem + n + 16 * KiB > 16 * MiB;
}

/* One write of s->next_len stream bytes, copied or lent: 0 or -EAGAIN. */
static int write_next(struct xrun *r, struct side *s)
{
    size_t n = s->next_len;
    size_t q = queue_used(s);
    if (t_rand(&s->rng) % 100 < r->x->ref_pct) {
        struct ref *f = malloc(sizeof *f + n);
        T_ASSERT(f);
        f->next = NULL;
        f->len = n;
        f->tag = ++s->next_tag * 1000 + (uint64_t)s->idx;
        gen(s->tx_seed, s->tx_done, f->data, n);
        int w = volley_conn_write_ref(s->c, f->data, n, f->tag);
        if (w == -EAGAIN) {
            free(f);
            s->next_tag--;
            T_CHECK(q > 0 && q + n + 64 > r->sendq_max,
                    "write_ref(%zu) = -EAGAIN with %zu used, sendq_max %zu", n, q,
                    r->sendq_max);
            return w;
        }
        if (w != 0)
            T_FAIL("volley_conn_write_ref(%zu): %s", n, volley_strerror(w));
        if (s->refs_tail)
            s->refs_tail->next = f;
        else
            s->refs = f;
        s->refs_tail = f;
    } else {
        gen(s->tx_seed, s->tx_done, scratch, n);
        ssize_t w = volley_conn_write(s->c, scratch, n);
        if (w == -EAGAIN) {
            T_CHECK(q > 0 && (q + n > r->sendq_max || send_budget_full(r, n)),
                    "write(%zu) = -EAGAIN with %zu used, sendq_max %zu", n, q,
                    r->sendq_max);
            return -EAGAIN;
        }
        if (w != (ssize_t)n)
            T_FAIL("volley_conn_write(%zu) = %zd (%s)", n, w,
                   w < 0 ? volley_strerror((int)w) : "short");
    }
    s->tx_done += n;
    s->writes++;
    s->next_len = 0;
    r->moved += n;
    return 0;
}

/* Queue more of s's stream: a few writes, until -EAGAIN or the end. */
static void pump(struct xrun *r, struct side *s)
{
    if (s->closing || s->blocked || s->idx < 0)
        return;
    if (s->client && !s->hdr_done) {
        uint32_t idx = (uint32_t)s->idx;
        put(s->c, &idx, sizeof idx);
        s->writes++;
        s->hdr_done = true;
    }
    for (unsigned k = 0; k < 8 && s->tx_done < r->x->bytes; k++) {
        if (!s->next_len)
            s->next_len = pick_len(&s->rng, r->x->max_write, r->x->bytes - s->tx_done);
        if (write_next(r, s) == -EAGAIN) {
            s->blocked = true;
            return;
        }
    }
    if (s->tx_done == r->x->bytes && s->rx_done == r->x->bytes && s->hdr_done) {
        T_EXPECT(volley_conn_close(s->c), 0);
        s->closing = true;
    }
}

/* Read and check everything buffered on s. */
static void drain(struct xrun *r, struct side *s)
{
    if (s->idx < 0) {
        size_t b = volley_conn_buffered(s->c);
        if (b < 4)
            T_FAIL("READABLE on an accepted conn with %zu bytes buffered after want(4)",
                   b);
        uint32_t idx;
        T_EXPECT(volley_conn_read(s->c, &idx, 4), 4);
        T_ASSERT(idx < r->x->conns && r->cli[idx].idx == (int)idx);
        side_seeds(s, (int)idx);
        if (r->polls - s->accepted_at > r->hdr_wait)
            r->hdr_wait = r->polls - s->accepted_at;
        s->hdr_done = true;
    }
    ssize_t n;
    while ((n = volley_conn_read(s->c, scratch, sizeof scratch)) > 0) {
        char what[64];
        snprintf(what, sizeof what, "%s of pair %d", s->client ? "client" : "server",
                 s->idx);
        T_STREAM(scratch, (size_t)n, s->rx_seed, s->rx_done, what);
        s->rx_done += (uint64_t)n;
        r->moved += (uint64_t)n;
        if (s->rx_done > r->x->bytes)
            T_FAIL("%s received %llu bytes, %llu were sent", what,
                   (unsigned long long)s->rx_done, (unsigned long long)r->x->bytes);
    }
    /* -ESHUTDOWN may come before the EOF event is returned */
    if (n < 0 && n != -ESHUTDOWN)
        T_FAIL("volley_conn_read: %s", volley_strerror((int)n));
}

static void on_accepted(struct xrun *r, const struct volley_event *e)
{
    T_CHECK(e->listener == r->ln && e->user == &ln_user, "ACCEPTED: listener %p user %p",
            (void *)e->listener, e->user);
    if (r->accepted >= r->x->conns)
        T_FAIL("more than %u connections accepted", r->x->conns);
    struct side *s = &r->srv[r->accepted++];
    s->c = e->conn;
    s->idx = -1;
    s->accepted_at = r->polls;
    volley_conn_set_user(s->c, s);
    /* no deadline: with the receive budget scarce (ring_exhaustion) an end
     * can wait most of the run for its first bytes; xrun_loop's watchdog
     * fails a run that stops moving */
    T_EXPECT(volley_conn_want(s->c, 4, -1), 0);
}

static void on_sent(struct side *s, const struct volley_event *e)
{
    struct ref *f = s->refs;
    if (!f)
        T_FAIL("SENT tag %llu with no buffer lent", (unsigned long long)e->tag);
    if (e->tag != f->tag || e->len != f->len || e->err != 0)
        T_FAIL("SENT tag %llu len %zu err %d; want the oldest: tag %llu len %zu err 0",
               (unsigned long long)e->tag, e->len, e->err, (unsigned long long)f->tag,
               f->len);
    s->refs = f->next;
    if (!s->refs)
        s->refs_tail = NULL;
    memset(f->data, 0x5a, f->len); /* a late reader would send this */
    free(f);
}

static void on_closed(struct xrun *r, struct side *s, const struct volley_event *e)
{
    T_CHECK(e->err == 0, "CLOSED err %d (%s) on pair %d", e->err, volley_strerror(e->err),
            s->idx);
    T_CHECK(s->closing, "CLOSED before volley_conn_close on pair %d", s->idx);
    T_CHECK(!s->refs, "CLOSED before SENT of tag %llu",
            s->refs ? (unsigned long long)s->refs->tag : 0ull);
    struct volley_conn_stats st = conn_stats(s->c);
    uint64_t hdr = 4;
    T_EXPECT(st.bytes_out, r->x->bytes + (s->client ? hdr : 0));
    T_EXPECT(st.bytes_in, r->x->bytes + (s->client ? 0 : hdr));
    T_EXPECT(st.writes, s->writes);
    T_EXPECT(st.unsent_bytes, 0);
    T_EXPECT(st.queued, 0);
    T_CHECK(st.sends >= 1 && st.coalesced <= st.writes,
            "sends %llu, coalesced %llu of %llu writes", (unsigned long long)st.sends,
            (unsigned long long)st.coalesced, (unsigned long long)st.writes);
    s->closed = true;
    r->closed++;
}

static void on_event(struct xrun *r, const struct volley_event *e)
{
    if (e->type == VOLLEY_EV_ACCEPTED) {
        on_accepted(r, e);
        return;
    }
    struct side *s = e->user;
    if (!s || s->c != e->conn)
        T_FAIL("%s event for %p with user %p: not a connection of this run",
               ev_name(e->type), (void *)e->conn, e->user);
    if (s->closed)
        T_FAIL("%s after CLOSED on pair %d", ev_name(e->type), s->idx);
    if (s->client && !s->connected && e->type != VOLLEY_EV_CONNECTED)
        T_FAIL("%s before CONNECTED on pair %d", ev_name(e->type), s->idx);
    switch (e->type) {
    case VOLLEY_EV_CONNECTED:
        T_CHECK(s->client && !s->connected, "CONNECTED twice or on an accepted conn");
        s->connected = true;
        break;
    case VOLLEY_EV_READABLE:
        T_CHECK(e->len > 0, "READABLE with len 0");
        drain(r, s);
        break;
    case VOLLEY_EV_SENT:
        on_sent(s, e);
        break;
    case VOLLEY_EV_WRITABLE:
        T_CHECK(s->blocked, "WRITABLE without a write that said -EAGAIN");
        T_CHECK(volley_conn_queued(s->c) <= r->sendq_low,
                "WRITABLE with %zu queued, sendq_low %zu", volley_conn_queued(s->c),
                r->sendq_low);
        s->blocked = false;
        break;
    case VOLLEY_EV_EOF:
        s->eof = true;
        drain(r, s);
        T_EXPECT(s->rx_done, r->x->bytes);
        break;
    case VOLLEY_EV_CLOSED:
        on_closed(r, s, e);
        break;
    default:
        T_FAIL("unexpected %s event on pair %d", ev_name(e->type), s->idx);
    }
}

static void xrun_report(const struct xrun *r)
{
    unsigned blocked = 0, closing = 0, waiting = 0;
    for (unsigned i = 0; i < r->x->conns; i++)
        for (int k = 0; k < 2; k++) {
            const struct side *s = k ? &r->srv[i] : &r->cli[i];
            blocked += s->blocked;
            closing += s->closing && !s->closed;
            waiting += s->rx_done < r->x->bytes;
        }
    fprintf(stderr,
            "  accepted %u of %u, closed %u of %u; ends blocked on WRITABLE %u, "
            "closing %u, still receiving %u\n",
            r->accepted, r->x->conns, r->closed, 2 * r->x->conns, blocked, closing,
            waiting);
}

static void xrun_loop(struct xrun *r)
{
    static struct volley_event ev[256];
    long long stall = t_now_ms() + 10000;
    while (r->closed < 2 * r->x->conns) {
        uint64_t before = r->moved + r->closed + r->accepted;
        int n = volley_loop_poll(r->l, ev, T_COUNT(ev), 50);
        r->polls++;
        if (n < 0)
            T_FAIL("volley_loop_poll: %s", volley_strerror(n));
        for (int i = 0; i < n; i++)
            on_event(r, &ev[i]);
        for (unsigned i = 0; i < r->x->conns; i++) {
            pump(r, &r->cli[i]);
            if (i < r->accepted)
                pump(r, &r->srv[i]);
        }
        if (r->moved + r->closed + r->accepted != before)
            stall = t_now_ms() + 10000;
        else if (t_now_ms() > stall) {
            xrun_report(r);
            T_FAIL("no progress for 10 s");
        }
    }
}

static void xrun_setup(struct xrun *r, const struct xfer *x)
{
    memset(r, 0, sizeof *r);
    r->x = x;
    need_fds(2 * x->conns + 64);
    struct volley_loop_opts lo = lopts();
    lo.entries = x->entries;
    lo.buf_size = x->buf_size;
    lo.buf_count = x->buf_count;
    r->l = loop_with(&lo);
    struct volley_conn_opts o = copts();
    o.sendq_max = x->sendq_max;
    o.zc_threshold = x->zc_threshold;
    r->sendq_max = x->sendq_max ? x->sendq_max : SENDQ_MAX_DEFAULT;
    r->sendq_low = r->sendq_max / 4;
    r->cli = calloc(x->conns, sizeof *r->cli);
    r->srv = calloc(x->conns, sizeof *r->srv);
    T_ASSERT(r->cli && r->srv);
    T_OK(volley_listen(r->l, &r->ln, "127.0.0.1:0", &o, &ln_user));
    const char *to = addr_of(r->ln, "127.0.0.1");
    for (unsigned i = 0; i < x->conns; i++) {
        struct side *s = &r->cli[i];
        s->client = true;
        side_seeds(s, (int)i);
        T_OK(volley_dial(r->l, &s->c, to, &o, 10000, s));
        /* writes are taken before the connection is up */
        pump(r, s);
    }
}

/* Run x; returns the loop's counters once everything closed. */
static struct volley_loop_stats xrun(const struct xfer *x)
{
    int fds = t_count_fds();
    struct xrun r;
    xrun_setup(&r, x);
    xrun_loop(&r);
    xrun_hdr_wait = r.hdr_wait;
    T_EXPECT(close_wait(r.l, r.ln), 0);
    pull(r.l, 0);
    evq_n = 0;
    struct volley_loop_stats st = loop_stats(r.l);
    uint64_t all = 2 * (uint64_t)x->conns * (x->bytes + 2); /* +4 header each */
    T_EXPECT(st.total.bytes_in, all);
    T_EXPECT(st.total.bytes_out, all);
    T_EXPECT(st.accepted, x->conns);
    T_EXPECT(st.dialed, x->conns);
    T_EXPECT(st.closed, 2 * x->conns + 1);
    T_EXPECT(st.conns, 0);
    T_EXPECT(st.total.unsent_bytes, 0);
    printf("  %u conns x %llu bytes each way: writes %llu, sends %llu, coalesced %llu, "
           "rearms %llu, ring_empty %llu, cq_overflow %llu, syscalls %llu, polls %llu\n",
           x->conns, (unsigned long long)x->bytes, (unsigned long long)st.total.writes,
           (unsigned long long)st.total.sends, (unsigned long long)st.total.coalesced,
           (unsigned long long)st.total.rearms, (unsigned long long)st.ring_empty,
           (unsigned long long)st.cq_overflow, (unsigned long long)st.syscalls,
           (unsigned long long)st.polls);
    volley_loop_close(r.l, 0);
    T_EXPECT(t_count_fds(), fds);
    free(r.cli);
    free(r.srv);
    return st;
}

static int case_integrity_1(void)
{
    static const struct xfer x = {
        .conns = 1, .bytes = 16 * MiB, .max_write = 200 * KiB, .ref_pct = 30};
    xrun(&x);
    return 0;
}

/* Zero-copy sends for everything of 4 KiB or more (uring; epoll ignores
 * the option): the same bytes arrive, and a queue lets go of its pages
 * only after the kernel's notification. */
static int case_integrity_zc(void)
{
    static const struct xfer x = {.conns = 4,
                                  .bytes = 4 * MiB,
                                  .max_write = 200 * KiB,
                                  .ref_pct = 50,
                                  .zc_threshold = 4096};
    struct volley_loop_stats st = xrun(&x);
    printf("  zero-copy sends %llu (copied by the kernel after all: %llu)\n",
           (unsigned long long)st.total.zc_sends, (unsigned long long)st.total.zc_copied);
    if (t_loop_backend()->id == VOLLEY_BACKEND_EPOLL)
        T_EXPECT(st.total.zc_sends, 0); /* epoll always copies */
    else
        T_CHECK(st.total.zc_sends > 0,
                "no zero-copy send on uring with zc_threshold 4096");
    return 0;
}

static int case_integrity_1000(void)
{
    static const struct xfer x = {
        .conns = 1000, .bytes = 100 * KiB, .max_write = 200 * KiB, .ref_pct = 30};
    xrun(&x);
    return 0;
}

/* Two receive buffers of 512 bytes for many senders: receiving stops and
 * restarts, and nothing is lost. */
static int case_ring_exhaustion(void)
{
    static const struct xfer x = {.conns = 64,
                                  .bytes = 128 * KiB,
                                  .max_write = 64 * KiB,
                                  .ref_pct = 20,
                                  .buf_size = 512,
                                  .buf_count = 2};
    struct volley_loop_stats st = xrun(&x);
    T_CHECK(st.ring_empty > 0, "ring_empty is 0 with 2 receive buffers for 128 ends");
    printf("  the longest wait of a server end for its 4-byte header: %llu polls\n",
           (unsigned long long)xrun_hdr_wait);
    return 0;
}

/* The smallest rings under 200 connections: still every byte. */
static int case_cq_pressure(void)
{
    static const struct xfer x = {.conns = 200,
                                  .bytes = 64 * KiB,
                                  .max_write = 32 * KiB,
                                  .ref_pct = 20,
                                  .entries = 8};
    xrun(&x);
    return 0;
}

/* Small send queues: writes keep saying -EAGAIN, WRITABLE keeps coming. */
static int case_sendq_small(void)
{
    static const struct xfer x = {.conns = 8,
                                  .bytes = 2 * MiB,
                                  .max_write = 16 * KiB,
                                  .ref_pct = 30,
                                  .sendq_max = 32 * KiB};
    xrun(&x);
    return 0;
}

/* ---- reads ---- */

static int case_read_upto(void)
{
    struct duo d;
    duo_default(&d);
    uint8_t out[100], in[200];
    gen(1, 0, out, sizeof out);
    put(d.cli, out, sizeof out);
    struct volley_event e = TAKE(d.l, VOLLEY_EV_READABLE, d.srv);
    T_CHECK(e.len >= 1 && e.len <= 100, "READABLE len %zu", e.len);
    T_CHECK(e.user == &srv_user, "READABLE.user is not the conn's");
    /* take the rest in */
    while (volley_conn_buffered(d.srv) < 100)
        TAKE(d.l, VOLLEY_EV_READABLE, d.srv);
    T_EXPECT(volley_conn_buffered(d.srv), 100);
    T_EXPECT(volley_conn_read(d.srv, in, 30), 30);
    T_EXPECT(volley_conn_buffered(d.srv), 70);
    T_EXPECT(volley_conn_read(d.srv, in + 30, sizeof in - 30), 70);
    T_ASSERT(!memcmp(in, out, 100));
    T_EXPECT(volley_conn_read(d.srv, in, sizeof in), 0);
    T_EXPECT(volley_conn_buffered(d.srv), 0);
    duo_close(&d);
    return 0;
}

/* want(n): READABLE only once n bytes are in, then read exactly n; the
 * wish ends with that READABLE. */
static int case_read_want(void)
{
    struct duo d;
    duo_default(&d);
    T_EXPECT(volley_conn_want(d.srv, 5000, 5000), 0);
    uint8_t out[5000], in[5000];
    gen(2, 0, out, sizeof out);
    for (unsigned i = 0; i < 5; i++) {
        put(d.cli, out + i * 1000, 1000);
        settle(d.l, 30);
        int k = queued_ev(VOLLEY_EV_READABLE, d.srv);
        if (i < 4 && k >= 0)
            T_FAIL("READABLE (len %zu, %zu buffered) after %u of 5000 bytes, want(5000)",
                   evq[k].len, volley_conn_buffered(d.srv), (i + 1) * 1000);
    }
    struct volley_event e = TAKE(d.l, VOLLEY_EV_READABLE, d.srv);
    T_CHECK(e.len >= 5000, "READABLE len %zu after want(5000)", e.len);
    T_EXPECT(volley_conn_read(d.srv, in, 5000), 5000);
    T_ASSERT(!memcmp(in, out, 5000));
    T_CHECK(queued_ev(VOLLEY_EV_TIMEOUT, d.srv) < 0, "TIMEOUT after the want was met");
    /* back to want(1) */
    put(d.cli, "x", 1);
    e = TAKE(d.l, VOLLEY_EV_READABLE, d.srv);
    T_EXPECT(e.len, 1);
    T_EXPECT(volley_conn_read(d.srv, in, 10), 1);
    /* a want met by what is already buffered */
    put(d.cli, out, 300);
    while (volley_conn_buffered(d.srv) < 300)
        TAKE(d.l, VOLLEY_EV_READABLE, d.srv);
    drop_ev(VOLLEY_EV_READABLE, d.srv);
    T_EXPECT(volley_conn_want(d.srv, 200, 2000), 0);
    e = TAKE(d.l, VOLLEY_EV_READABLE, d.srv);
    T_CHECK(e.len >= 200, "READABLE len %zu after want(200) with 300 buffered", e.len);
    T_EXPECT(volley_conn_read(d.srv, in, 300), 300);
    settle(d.l, 50);
    duo_close(&d);
    return 0;
}

/* peek: spans of at most one receive buffer each, in order; consume. */
static int case_peek_consume(void)
{
    struct duo d;
    struct volley_loop_opts lo = lopts();
    lo.buf_size = 512;
    struct volley_conn_opts o = copts();
    duo_open(&d, &lo, &o);
    uint8_t out[3000];
    gen(3, 0, out, sizeof out);
    T_EXPECT(volley_conn_want(d.srv, 3000, 5000), 0);
    put(d.cli, out, sizeof out);
    TAKE(d.l, VOLLEY_EV_READABLE, d.srv);
    struct iovec iov[64];
    int n = volley_conn_peek(d.srv, iov, 64);
    T_CHECK(n >= 6, "peek gave %d spans of 3000 bytes in 512-byte buffers", n);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        T_CHECK(iov[i].iov_len > 0 && iov[i].iov_len <= 512, "span %d: %zu bytes", i,
                iov[i].iov_len);
        T_ASSERT(off + iov[i].iov_len <= sizeof out);
        T_ASSERT(!memcmp(iov[i].iov_base, out + off, iov[i].iov_len));
        off += iov[i].iov_len;
    }
    T_EXPECT(off, 3000);
    struct iovec two[2];
    T_EXPECT(volley_conn_peek(d.srv, two, 2), 2);
    T_CHECK(two[0].iov_base == iov[0].iov_base && two[1].iov_len == iov[1].iov_len,
            "peek with room for 2 differs from the first 2 spans");
    T_EXPECT(volley_conn_buffered(d.srv), 3000);
    T_EXPECT(volley_conn_consume(d.srv, 1000), 0);
    T_EXPECT(volley_conn_buffered(d.srv), 2000);
    T_ASSERT(volley_conn_peek(d.srv, iov, 64) >= 1);
    T_ASSERT(!memcmp(iov[0].iov_base, out + 1000, iov[0].iov_len));
    T_EXPECT(volley_conn_consume(d.srv, 2001), -EINVAL);
    T_EXPECT(volley_conn_buffered(d.srv), 2000);
    uint8_t in[10];
    T_EXPECT(volley_conn_read(d.srv, in, 10), 10);
    T_ASSERT(!memcmp(in, out + 1000, 10));
    T_EXPECT(volley_conn_consume(d.srv, 1990), 0);
    T_EXPECT(volley_conn_buffered(d.srv), 0);
    T_EXPECT(volley_conn_peek(d.srv, iov, 64), 0);
    duo_close(&d);
    return 0;
}

/* Peeked spans stay where they are until consumed: polling does not move
 * them, so they can be lent back with volley_conn_write_ref and consumed
 * at their SENT events (an echo or relay without a copy), more bytes
 * arriving meanwhile. A close while spans are lent still sends them as
 * they were, though another connection receives into the loop's buffers
 * right after. */
static void lend_all(volley_conn *c, struct iovec *iov, int *n, size_t want)
{
    *n = volley_conn_peek(c, iov, 64);
    size_t total = 0;
    for (int i = 0; i < *n; i++) {
        T_EXPECT(volley_conn_write_ref(c, iov[i].iov_base, iov[i].iov_len, (uint64_t)i),
                 0);
        total += iov[i].iov_len;
    }
    T_EXPECT(total, want);
}

static int case_peek_lend(void)
{
    struct duo d;
    struct volley_loop_opts lo = lopts();
    lo.buf_size = 512;
    struct volley_conn_opts o = copts();
    duo_open(&d, &lo, &o);
    uint8_t out[3000], more[3000], in[3000];
    gen(5, 0, out, sizeof out);
    gen(6, 0, more, sizeof more);
    T_EXPECT(volley_conn_want(d.srv, sizeof out, 5000), 0);
    put(d.cli, out, sizeof out);
    TAKE(d.l, VOLLEY_EV_READABLE, d.srv);
    struct iovec iov[64];
    int n;
    lend_all(d.srv, iov, &n, sizeof out);
    T_CHECK(n >= 6, "peek gave %d spans of 3000 bytes in 512-byte buffers", n);
    /* more bytes come in behind the lent ones, over several polls */
    put(d.cli, more, sizeof more);
    read_exact(d.l, d.cli, in, sizeof in);
    T_CHECK(!memcmp(in, out, sizeof in), "the lent spans went out changed");
    size_t off = 0;
    for (int i = 0; i < n; i++) { /* still in place, unchanged */
        T_ASSERT(!memcmp(iov[i].iov_base, out + off, iov[i].iov_len));
        off += iov[i].iov_len;
    }
    for (int i = 0; i < n; i++) {
        struct volley_event e = TAKE(d.l, VOLLEY_EV_SENT, d.srv);
        T_EXPECT(e.tag, (uint64_t)i);
        T_EXPECT(e.err, 0);
        T_EXPECT(volley_conn_consume(d.srv, iov[i].iov_len), 0);
    }
    long long end = t_now_ms() + 5000;
    while (volley_conn_buffered(d.srv) < (ssize_t)sizeof more && t_now_ms() < end)
        pull(d.l, 20);
    T_EXPECT(volley_conn_buffered(d.srv), (ssize_t)sizeof more);

    /* lent, then closed at once: the close sends them as they are */
    lend_all(d.srv, iov, &n, sizeof more);
    T_EXPECT(volley_conn_close(d.srv), 0);
    /* the lent spans' buffers are not given to another receive */
    T_CHECK(loop_stats(d.l).bufs_held >= (uint64_t)n, "%llu buffers held after the close",
            (unsigned long long)loop_stats(d.l).bufs_held);
    struct duo d2 = {.l = d.l};
    duo_connect(&d2, &o);
    static uint8_t flood[64 * KiB], sink[64 * KiB];
    gen(7, 0, flood, sizeof flood);
    put(d2.cli, flood, sizeof flood);
    read_exact(d.l, d2.srv, sink, sizeof sink);
    read_exact(d.l, d.cli, in, sizeof in);
    T_CHECK(!memcmp(in, more, sizeof in), "spans lent before a close went out changed");
    T_ASSERT(!memcmp(sink, flood, sizeof sink));
    T_EXPECT(TAKE(d.l, VOLLEY_EV_EOF, d.cli).type, VOLLEY_EV_EOF);
    T_EXPECT(volley_conn_close(d.cli), 0); /* the server end's close waits for its FIN */
    T_EXPECT(TAKE(d.l, VOLLEY_EV_CLOSED, d.srv).err, 0);
    T_EXPECT(TAKE(d.l, VOLLEY_EV_CLOSED, d.cli).err, 0);
    T_EXPECT(close_wait(d.l, d.ln), 0);
    duo_close(&d2); /* and the loop */
    return 0;
}

/* A want that is not met: TIMEOUT (tag READABLE, -ETIMEDOUT), what came
 * stays buffered, the connection carries on. */
static int case_want_timeout(void)
{
    struct duo d;
    duo_default(&d);
    T_EXPECT(volley_loop_timeout(d.l), -1);
    T_EXPECT(volley_conn_want(d.srv, 100, 200), 0);
    int t = volley_loop_timeout(d.l);
    T_CHECK(t >= 0 && t <= 200, "volley_loop_timeout = %d with a 200 ms want", t);
    uint8_t out[10], in[20];
    gen(4, 0, out, sizeof out);
    put(d.cli, out, sizeof out);
    struct volley_event e = TAKE(d.l, VOLLEY_EV_TIMEOUT, d.srv);
    T_EXPECT(e.tag, VOLLEY_EV_READABLE);
    T_EXPECT(e.err, -ETIMEDOUT);
    T_CHECK(queued_ev(VOLLEY_EV_READABLE, d.srv) < 0 ||
                evq[queued_ev(VOLLEY_EV_READABLE, d.srv)].len >= 100,
            "READABLE with fewer than the 100 bytes wanted");
    drop_ev(VOLLEY_EV_READABLE, d.srv);
    T_EXPECT(volley_conn_buffered(d.srv), 10);
    T_EXPECT(volley_loop_timeout(d.l), -1);
    T_EXPECT(volley_conn_read(d.srv, in, sizeof in), 10);
    T_ASSERT(!memcmp(in, out, 10));
    /* still a working connection both ways */
    put(d.srv, "ok", 2);
    read_exact(d.l, d.cli, in, 2);
    duo_close(&d);
    return 0;
}

/* EOF: what was sent before is still buffered; once read, -ESHUTDOWN. */
static int case_eof_shutdown(void)
{
    struct duo d;
    duo_default(&d);
    uint8_t out[10], in[20];
    gen(5, 0, out, sizeof out);
    put(d.cli, out, sizeof out);
    T_EXPECT(volley_conn_close(d.cli), 0);
    struct volley_event e = TAKE(d.l, VOLLEY_EV_EOF, d.srv);
    T_EXPECT(e.err, 0);
    T_EXPECT(volley_conn_buffered(d.srv), 10);
    T_EXPECT(volley_conn_read(d.srv, in, 4), 4);
    T_EXPECT(volley_conn_read(d.srv, in + 4, sizeof in), 6);
    T_ASSERT(!memcmp(in, out, 10));
    T_EXPECT(volley_conn_read(d.srv, in, sizeof in), -ESHUTDOWN);
    T_EXPECT(volley_conn_read(d.srv, in, sizeof in), -ESHUTDOWN);
    struct iovec iov[2];
    T_EXPECT(volley_conn_peek(d.srv, iov, 2), -ESHUTDOWN);
    T_CHECK(queued_ev(VOLLEY_EV_CLOSED, d.srv) < 0, "the peer's FIN closed the conn");
    T_EXPECT(close_wait(d.l, d.srv), 0);
    T_EXPECT(TAKE(d.l, VOLLEY_EV_CLOSED, d.cli).err, 0);
    T_EXPECT(close_wait(d.l, d.ln), 0);
    volley_loop_close(d.l, 0);
    return 0;
}

/* A plain peer shuts its sending side: EOF, and volley's writes still
 * reach it; volley's close then gives it EOF. */
static int case_half_close(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_conn *ln;
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
    int fd = plain_connect(addr_of(ln, "127.0.0.1"), 0);
    volley_conn *srv = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
    plain_send_all(fd, "hello", 5);
    T_ASSERT(shutdown(fd, SHUT_WR) == 0);
    TAKE(l, VOLLEY_EV_EOF, srv);
    char in[64];
    T_EXPECT(volley_conn_read(srv, in, sizeof in), 5);
    T_EXPECT(volley_conn_read(srv, in, sizeof in), -ESHUTDOWN);
    uint8_t out[50000];
    gen(6, 0, out, sizeof out);
    put(srv, out, sizeof out);
    T_EXPECT(volley_conn_close(srv), 0);
    T_EXPECT(TAKE(l, VOLLEY_EV_CLOSED, srv).err, 0);
    static uint8_t got[sizeof out + 1];
    size_t n = 0;
    ssize_t r;
    while ((r = recv(fd, got + n, sizeof got - n, 0)) > 0)
        n += (size_t)r;
    T_CHECK(r == 0, "the peer's recv ended with %s, want EOF", strerror(errno));
    T_EXPECT(n, sizeof out);
    T_ASSERT(!memcmp(got, out, sizeof out));
    close(fd);
    T_EXPECT(close_wait(l, ln), 0);
    volley_loop_close(l, 0);
    return 0;
}

/* volley_conn_shutdown: the peer reads EOF once the queue went out,
 * reading goes on, writes are -EPIPE, a second shutdown too. */
static int case_shutdown(void)
{
    struct duo d;
    duo_default(&d);
    uint8_t out[20000], in[20000];
    gen(19, 0, out, sizeof out);
    put(d.cli, out, sizeof out);
    T_EXPECT(volley_conn_shutdown(d.cli), 0);
    T_EXPECT(volley_conn_write(d.cli, out, 1), -EPIPE);
    T_EXPECT(volley_conn_write_ref(d.cli, out, 1, 1), -EPIPE);
    T_EXPECT(volley_conn_shutdown(d.cli), -EPIPE);
    TAKE(d.l, VOLLEY_EV_EOF, d.srv);
    T_EXPECT(volley_conn_read(d.srv, in, sizeof in), sizeof out);
    T_ASSERT(!memcmp(in, out, sizeof out));
    T_EXPECT(volley_conn_read(d.srv, in, sizeof in), -ESHUTDOWN);
    /* the other way still works */
    put(d.srv, out, 5000);
    read_exact(d.l, d.cli, in, 5000);
    T_ASSERT(!memcmp(in, out, 5000));
    close_both(d.l, d.cli, d.srv);
    T_EXPECT(close_wait(d.l, d.ln), 0);
    volley_loop_close(d.l, 0);
    return 0;
}

/* VOLLEY_CONN_DIRECT: bytes land in the caller's buffer, RECEIVED with
 * the tag and the count; one receive at a time; not on other conns. */
static int case_recv_into(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    struct volley_conn_opts od = copts(), o = copts();
    od.flags = VOLLEY_CONN_DIRECT;
    volley_conn *ln, *cli;
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", &od, NULL));
    T_OK(volley_dial(l, &cli, addr_of(ln, "127.0.0.1"), &o, 5000, NULL));
    volley_conn *srv = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
    TAKE(l, VOLLEY_EV_CONNECTED, cli);
    static uint8_t out[300 * KiB], in[300 * KiB], spare[16];
    T_EXPECT(volley_conn_recv_into(cli, in, sizeof in, 1), -ENOTSUP);
    T_EXPECT(volley_conn_recv_into(srv, in, 0, 1), -EINVAL);
    T_EXPECT(volley_conn_recv_into(srv, NULL, 10, 1), -EINVAL);
    gen(20, 0, out, sizeof out);
    put(cli, out, sizeof out);
    size_t got = 0;
    uint64_t tag = 100;
    long long end = t_now_ms() + 10000;
    while (got < sizeof out && t_now_ms() < end) {
        T_EXPECT(volley_conn_recv_into(srv, in + got, sizeof in - got, ++tag), 0);
        T_EXPECT(volley_conn_recv_into(srv, spare, sizeof spare, 0), -EBUSY);
        struct volley_event e = TAKE(l, VOLLEY_EV_RECEIVED, srv);
        T_EXPECT(e.tag, tag);
        T_CHECK(e.len > 0 && e.len <= sizeof in - got, "RECEIVED len %zu", e.len);
        T_STREAM(in + got, e.len, 20, got, "recv_into");
        got += e.len;
    }
    T_EXPECT(got, sizeof out);
    T_EXPECT(volley_conn_buffered(srv), 0);
    T_EXPECT(volley_conn_shutdown(cli), 0);
    T_EXPECT(volley_conn_recv_into(srv, in, sizeof in, 7), 0);
    TAKE(l, VOLLEY_EV_EOF, srv);
    T_CHECK(queued_ev(VOLLEY_EV_RECEIVED, srv) < 0, "RECEIVED after EOF with no bytes");
    T_EXPECT(volley_conn_recv_into(srv, in, sizeof in, 8), -ESHUTDOWN);
    close_both(l, cli, srv);
    T_EXPECT(close_wait(l, ln), 0);
    volley_loop_close(l, 0);
    return 0;
}

/* Two DIRECT receives complete in one turn and the caller takes one
 * event at a time: the other's buffer stays lent until its RECEIVED is
 * returned, so a receive asked for meanwhile is -EBUSY and the event
 * reports its own tag (it once reported the new receive's). */
static int case_recv_into_owed(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    struct volley_conn_opts od = copts();
    od.flags = VOLLEY_CONN_DIRECT;
    volley_conn *ln, *srv[2];
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", &od, NULL));
    int fd[2];
    static uint8_t in[2][1000], spare[16];
    for (unsigned i = 0; i < 2; i++) {
        fd[i] = plain_connect(addr_of(ln, "127.0.0.1"), 0);
        srv[i] = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
        T_OK(volley_conn_recv_into(srv[i], in[i], sizeof in[i], 10 + i));
    }
    settle(l, 20); /* the receives are in flight */
    uint8_t out[100];
    for (unsigned i = 0; i < 2; i++) {
        gen(30 + i, 0, out, sizeof out);
        T_ASSERT(send(fd[i], out, sizeof out, 0) == (ssize_t)sizeof out);
    }
    usleep(50 * 1000); /* both sockets hold their bytes before the next wait */
    struct volley_event e;
    int n = 0;
    for (int t = 0; t < 100 && n == 0; t++)
        n = volley_loop_poll(l, &e, 1, 100);
    T_EXPECT(n, 1);
    T_EXPECT(e.type, VOLLEY_EV_RECEIVED);
    unsigned first = e.conn == srv[1], other = !first;
    T_EXPECT(e.tag, 10 + first);
    T_EXPECT(volley_conn_recv_into(srv[other], spare, sizeof spare, 99), -EBUSY);
    e = TAKE(l, VOLLEY_EV_RECEIVED, srv[other]);
    T_EXPECT(e.tag, 10 + other);
    T_EXPECT(e.len, sizeof out);
    T_STREAM(in[other], sizeof out, 30 + other, 0, "the second receive");
    T_OK(volley_conn_recv_into(srv[other], spare, sizeof spare, 99));
    for (unsigned i = 0; i < 2; i++)
        close(fd[i]);
    volley_loop_close(l, 0);
    return 0;
}

/* ---- interop with plain sockets ---- */

struct plain_job {
    char addr[64];
    int fd;     /* plain listener (server job) */
    size_t len; /* bytes each way */
    int status; /* 0 ok, else what failed */
    char why[160];
};

/* A blocking client: send 64 KiB, read the echo, 16 times; then shut and
 * wait for the server's EOF. */
static void *plain_client(void *arg)
{
    struct plain_job *j = arg;
    static uint8_t out[64 * KiB], in[64 * KiB];
    struct volley_addr a = t_addr(j->addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    j->status = 1;
    if (connect(fd, &a.sa, volley_addr_len(&a)) != 0) {
        snprintf(j->why, sizeof j->why, "connect: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    for (uint64_t off = 0; off < j->len; off += sizeof out) {
        gen(7, off, out, sizeof out);
        if (send(fd, out, sizeof out, MSG_NOSIGNAL) != (ssize_t)sizeof out)
            goto out;
        size_t got = 0;
        ssize_t r = 1;
        while (got < sizeof in && (r = recv(fd, in + got, sizeof in - got, 0)) > 0)
            got += (size_t)r;
        if (got < sizeof in || memcmp(in, out, sizeof in)) {
            snprintf(j->why, sizeof j->why, "echo at %llu: %zu bytes back, %s",
                     (unsigned long long)off, got,
                     got < sizeof in ? "short" : "different");
            goto out;
        }
    }
    shutdown(fd, SHUT_WR);
    j->status = recv(fd, in, 1, 0) == 0 ? 0 : 2;
    if (j->status)
        snprintf(j->why, sizeof j->why, "no EOF from the volley server");
out:
    if (j->status && !j->why[0])
        snprintf(j->why, sizeof j->why, "send/recv: %s", strerror(errno));
    close(fd);
    return NULL;
}

/* Echo what arrives on c back, until EOF; then close. Returns once c's
 * CLOSED came (err 0). */
static void echo_until_closed(volley_loop *l, volley_conn *c)
{
    static uint8_t buf[64 * KiB];
    long long end = t_now_ms() + 30000;
    bool closing = false;
    while (t_now_ms() < end) {
        if (evq_n == 0) {
            pull(l, 50);
            continue;
        }
        struct volley_event e = evq[0];
        evq_remove(0);
        if (e.conn != c)
            continue;
        if (e.type == VOLLEY_EV_CLOSED) {
            T_EXPECT(e.err, 0);
            return;
        }
        ssize_t n;
        while (!closing && (n = volley_conn_read(c, buf, sizeof buf)) > 0)
            put(c, buf, (size_t)n);
        if (e.type == VOLLEY_EV_EOF && !closing) {
            T_EXPECT(volley_conn_read(c, buf, sizeof buf), -ESHUTDOWN);
            T_EXPECT(volley_conn_close(c), 0);
            closing = true;
        }
    }
    T_FAIL("no CLOSED within 30 s");
}

static int case_plain_client(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_conn *ln;
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
    struct plain_job j = {.len = MiB};
    snprintf(j.addr, sizeof j.addr, "%s", addr_of(ln, "127.0.0.1"));
    pthread_t t;
    T_ASSERT(pthread_create(&t, NULL, plain_client, &j) == 0);
    volley_conn *srv = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
    echo_until_closed(l, srv);
    pthread_join(t, NULL);
    T_CHECK(j.status == 0, "plain client: %s", j.why);
    struct volley_loop_stats st = loop_stats(l);
    T_EXPECT(st.total.bytes_in, MiB);
    T_EXPECT(st.total.bytes_out, MiB);
    T_EXPECT(close_wait(l, ln), 0);
    volley_loop_close(l, 0);
    return 0;
}

/* A plain blocking server thread: accept one, echo until EOF, close. */
static void *plain_echo_server(void *arg)
{
    struct plain_job *j = arg;
    static uint8_t buf[64 * KiB];
    j->status = 1;
    int fd = accept4(j->fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        snprintf(j->why, sizeof j->why, "accept: %s", strerror(errno));
        return NULL;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ssize_t r;
    size_t total = 0;
    while ((r = recv(fd, buf, sizeof buf, 0)) > 0) {
        if (send(fd, buf, (size_t)r, MSG_NOSIGNAL) != r)
            break;
        total += (size_t)r;
    }
    j->status = r == 0 ? 0 : 1;
    if (r != 0)
        snprintf(j->why, sizeof j->why, "after %zu bytes: %s", total, strerror(errno));
    close(fd);
    return NULL;
}

/* volley dials a plain echo server: writes (copied and lent) come back
 * whole; close flushes and the server sees EOF. */
static int case_plain_server(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    struct plain_job j = {0};
    j.fd = plain_listen("127.0.0.1:0", 8, j.addr);
    pthread_t t;
    T_ASSERT(pthread_create(&t, NULL, plain_echo_server, &j) == 0);
    volley_conn *c;
    T_OK(volley_dial(l, &c, j.addr, NULL, 5000, NULL));
    static uint8_t out[2 * MiB], in[2 * MiB];
    gen(8, 0, out, sizeof out);
    uint64_t rng = 8, tags = 0, sent_ev = 0;
    size_t sent = 0, got = 0;
    bool blocked = false;
    long long end = t_now_ms() + 30000;
    while ((sent < sizeof out || got < sizeof in || sent_ev < tags) && t_now_ms() < end) {
        while (!blocked && sent < sizeof out) {
            size_t n = pick_len(&rng, 200 * KiB, sizeof out - sent);
            int w = tags < 4 && n > 1000
                        ? volley_conn_write_ref(c, out + sent, n, tags + 1)
                        : (int)volley_conn_write(c, out + sent, n);
            if (w == -EAGAIN) {
                blocked = true;
                break;
            }
            T_ASSERT(w >= 0);
            tags += w == 0;
            sent += n;
        }
        pull(l, 10);
        struct volley_event e;
        while (take_within(l, VOLLEY_EV_SENT, c, 0, &e)) {
            T_EXPECT(e.tag, ++sent_ev);
            T_EXPECT(e.err, 0);
        }
        if (take_within(l, VOLLEY_EV_WRITABLE, c, 0, NULL))
            blocked = false;
        drop_ev(VOLLEY_EV_READABLE, c);
        drop_ev(VOLLEY_EV_CONNECTED, c);
        ssize_t r = volley_conn_read(c, in + got, sizeof in - got);
        T_ASSERT(r >= 0);
        got += (size_t)r;
    }
    T_EXPECT(sent, sizeof out);
    T_EXPECT(got, sizeof in);
    T_EXPECT(sent_ev, tags);
    T_ASSERT(!memcmp(in, out, sizeof out));
    T_EXPECT(close_wait(l, c), 0);
    pthread_join(t, NULL);
    T_CHECK(j.status == 0, "plain server: %s", j.why);
    close(j.fd);
    volley_loop_close(l, 0);
    return 0;
}

/* ---- faults and endings ---- */

/* The peer resets mid-stream: CLOSED -ECONNRESET, then writes say -EPIPE.
 * dialed: volley dialed a plain listener; else a plain client connected. */
static int reset_case(bool dialed)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_conn *c, *ln = NULL;
    int fd, lfd = -1;
    char addr[64];
    if (dialed) {
        lfd = plain_listen("127.0.0.1:0", 8, addr);
        T_OK(volley_dial(l, &c, addr, NULL, 5000, NULL));
        TAKE(l, VOLLEY_EV_CONNECTED, c);
        fd = plain_accept(lfd);
    } else {
        T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
        fd = plain_connect(addr_of(ln, "127.0.0.1"), 0);
        c = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
    }
    /* both directions busy, then the reset */
    static uint8_t out[256 * KiB];
    gen(9, 0, out, sizeof out);
    plain_send_all(fd, out, 1000);
    put(c, out, sizeof out);
    TAKE(l, VOLLEY_EV_READABLE, c);
    plain_reset(fd);
    struct volley_event e = TAKE(l, VOLLEY_EV_CLOSED, c);
    T_CHECK(e.err == -ECONNRESET, "CLOSED err %d (%s), want -ECONNRESET", e.err,
            volley_strerror(e.err));
    T_EXPECT(volley_conn_write(c, out, 1), -EPIPE);
    T_EXPECT(volley_conn_write_ref(c, out, 1, 1), -EPIPE);
    pull(l, 0);
    if (ln)
        T_EXPECT(close_wait(l, ln), 0);
    if (lfd >= 0)
        close(lfd);
    volley_loop_close(l, 0);
    return 0;
}

/* The sockets in the loop's socket table now (uring; 0 elsewhere), and
 * the table's entries (*size). */
static uint32_t table_used(volley_loop *l, uint32_t *size)
{
#if VOLLEY_HAVE_URING
    return volley__loop_fixed(l, size);
#else
    (void)l;
    *size = 0;
    return 0;
#endif
}

/* The plain peer fd, after volley closed its end: EOF (want 0) or a reset
 * (want -ECONNRESET), within 5 s. */
static void peer_sees(int fd, int want)
{
    char b[16];
    timeouts(fd, 5000);
    ssize_t r = recv(fd, b, sizeof b, 0);
    int got = r < 0 ? -errno : (int)r;
    T_CHECK(got == want, "the peer's recv: %d (%s), want %d", got,
            strerror(got < 0 ? -got : 0), want);
}

/* A plain peer connects to `to` (*fd), and the connection l accepts for it
 * echoes one 4-byte request back: that connection. */
static volley_conn *accept_echo(volley_loop *l, const char *to, int *fd)
{
    char buf[8];
    *fd = plain_connect(to, 0);
    volley_conn *c = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
    plain_send_all(*fd, "ping", 4);
    read_exact(l, c, buf, 4);
    put(c, buf, 4);
    for (int k = 0; k < 500 && !t_readable(*fd, 0); k++)
        pull(l, 10);
    T_EXPECT(plain_recv_now(*fd, buf, sizeof buf), 4);
    return c;
}

/* A uring loop puts each connection's socket into its ring's socket
 * table, from which its operations take it (no descriptor lookup each),
 * and takes it out again before closing the descriptor: the table holds
 * the socket open. A close and an abort reach the peer as FIN and reset,
 * whether volley or the peer closed first and also for a connection
 * ended before its entry was made; the table is empty afterwards. With
 * no table (epoll; registering it failed: test_stream_faults) the same
 * holds. */
static int case_socket_table(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    uint32_t size;
    T_EXPECT(table_used(l, &size), 0);
    if (!size)
        printf("  the %s loop has no socket table\n", t_loop_backend()->name);
    volley_conn *ln, *c[4];
    int fd[4];
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
    const char *to = addr_of(ln, "127.0.0.1");
    /* a round trip each: served through the table once it is in it */
    for (int i = 0; i < 3; i++)
        c[i] = accept_echo(l, to, &fd[i]);
    T_EXPECT(table_used(l, &size), size ? 3u : 0u);
    /* volley closes: FIN; volley aborts: reset; the peer closes first */
    T_OK(volley_conn_close(c[0]));
    T_OK(volley_conn_abort(c[1]));
    close(fd[2]);
    TAKE(l, VOLLEY_EV_EOF, c[2]);
    T_OK(volley_conn_close(c[2]));
    TAKE(l, VOLLEY_EV_CLOSED, c[1]);
    TAKE(l, VOLLEY_EV_CLOSED, c[2]);
    peer_sees(fd[1], -ECONNRESET);
    /* the close's FIN went out before the peer's (volley lingers for it) */
    for (int k = 0; k < 500 && !t_readable(fd[0], 0); k++)
        pull(l, 10);
    peer_sees(fd[0], 0);
    close(fd[0]);
    TAKE(l, VOLLEY_EV_CLOSED, c[0]);
    T_EXPECT(table_used(l, &size), 0);
    /* aborted in the turn that accepted it, its entry not made yet */
    fd[3] = plain_connect(to, 0);
    c[3] = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
    T_OK(volley_conn_abort(c[3]));
    TAKE(l, VOLLEY_EV_CLOSED, c[3]);
    peer_sees(fd[3], -ECONNRESET);
    T_EXPECT(table_used(l, &size), 0);
    close(fd[1]);
    close(fd[3]);
    T_EXPECT(close_wait(l, ln), 0);
    volley_loop_close(l, 0);
    return 0;
}

/* A loop opened under a low descriptor limit gets a table that small;
 * the connections in slots beyond it, once the limit is raised, are
 * served by descriptor: every round trip and close works, and only the
 * slots inside the table are in it. */
static int case_socket_table_full(void)
{
    enum { LIMIT = 32, N = 48 };
    evq_n = 0;
    need_fds(4 * N);
    struct rlimit rl, low;
    T_ASSERT(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    T_ASSERT(t_count_fds() + 8 < LIMIT);
    low = rl;
    low.rlim_cur = LIMIT;
    T_ASSERT(setrlimit(RLIMIT_NOFILE, &low) == 0);
    volley_loop *l = loop_new();
    T_ASSERT(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    uint32_t size;
    (void)table_used(l, &size);
    T_CHECK(size == 0 || size == LIMIT, "a table of %u entries under a limit of %d", size,
            LIMIT);
    volley_conn *ln, *c[N];
    int fd[N];
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
    const char *to = addr_of(ln, "127.0.0.1");
    for (int i = 0; i < N; i++)
        c[i] = accept_echo(l, to, &fd[i]);
    /* slots: the listener's, then the connections' in order */
    uint32_t inside = size ? size - 1 : 0;
    T_EXPECT(table_used(l, &size), inside);
    for (int i = 0; i < N; i++) {
        close(fd[i]);
        TAKE(l, VOLLEY_EV_EOF, c[i]);
        T_OK(volley_conn_close(c[i]));
        TAKE(l, VOLLEY_EV_CLOSED, c[i]);
    }
    T_EXPECT(table_used(l, &size), 0);
    T_EXPECT(close_wait(l, ln), 0);
    volley_loop_close(l, 0);
    return 0;
}

static int case_reset_dialed(void)
{
    return reset_case(true);
}

static int case_reset_accepted(void)
{
    return reset_case(false);
}

/* The peer closes with data of volley's it never read: its kernel resets
 * the connection, volley sees CLOSED -ECONNRESET. */
static int case_peer_close_unread(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_conn *ln;
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
    int fd = plain_connect(addr_of(ln, "127.0.0.1"), 0);
    volley_conn *c = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
    put(c, "unread by the peer", 18);
    for (int i = 0; i < 500 && !t_readable(fd, 0); i++)
        pull(l, 10);
    T_ASSERT(t_readable(fd, 0));
    close(fd);
    struct volley_event e = TAKE(l, VOLLEY_EV_CLOSED, c);
    T_CHECK(e.err == -ECONNRESET, "CLOSED err %d (%s), want -ECONNRESET", e.err,
            volley_strerror(e.err));
    pull(l, 0);
    T_EXPECT(close_wait(l, ln), 0);
    volley_loop_close(l, 0);
    return 0;
}

/* The peer closes (FIN) while volley has not read what it sent: EOF, all
 * of it still readable, then -ESHUTDOWN. */
static int case_peer_fin_unread(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_conn *ln;
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
    int fd = plain_connect(addr_of(ln, "127.0.0.1"), 0);
    volley_conn *c = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
    static uint8_t out[100 * KiB], in[100 * KiB + 1];
    gen(10, 0, out, sizeof out);
    plain_send_all(fd, out, sizeof out);
    close(fd);
    TAKE(l, VOLLEY_EV_EOF, c);
    T_CHECK(queued_ev(VOLLEY_EV_CLOSED, c) < 0, "CLOSED on a FIN with unread data");
    T_EXPECT(volley_conn_buffered(c), sizeof out);
    T_EXPECT(volley_conn_read(c, in, sizeof in), sizeof out);
    T_ASSERT(!memcmp(in, out, sizeof out));
    T_EXPECT(volley_conn_read(c, in, sizeof in), -ESHUTDOWN);
    T_EXPECT(close_wait(l, c), 0);
    T_EXPECT(close_wait(l, ln), 0);
    volley_loop_close(l, 0);
    return 0;
}

/* A TCP socket bound on loopback and not listening: a port that refuses. */
static int refusing_port(char addr[64])
{
    struct volley_addr a = t_addr("127.0.0.1:0");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    T_ASSERT(fd >= 0 && bind(fd, &a.sa, volley_addr_len(&a)) == 0);
    socklen_t len = sizeof a;
    T_ASSERT(getsockname(fd, &a.sa, &len) == 0);
    T_ASSERT(volley_addr_format(&a, addr, 64) > 0);
    return fd;
}

/* Refused: CLOSED -ECONNREFUSED, no CONNECTED; what was written before is
 * unsent, lent buffers come back with an error first. */
static int case_refused(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    char addr[64];
    int hold = refusing_port(addr);
    volley_conn *c;
    static uint8_t lent[1000];
    T_OK(volley_dial(l, &c, addr, NULL, 5000, &cli_user));
    put(c, "0123456789", 10);
    T_EXPECT(volley_conn_write_ref(c, lent, sizeof lent, 77), 0);
    struct volley_event s = TAKE(l, VOLLEY_EV_SENT, c);
    T_EXPECT(s.tag, 77);
    T_CHECK(s.err < 0, "SENT err %d for a buffer of a refused dial", s.err);
    struct volley_event e = TAKE(l, VOLLEY_EV_CLOSED, c);
    T_EXPECT(e.err, -ECONNREFUSED);
    T_CHECK(e.user == &cli_user, "CLOSED.user");
    T_CHECK(queued_ev(VOLLEY_EV_CONNECTED, c) < 0, "CONNECTED for a refused dial");
    struct volley_conn_stats st = conn_stats(c);
    T_EXPECT(st.unsent_bytes, 10 + sizeof lent);
    T_EXPECT(st.bytes_out, 0);
    T_EXPECT(volley_conn_write(c, "x", 1), -EPIPE);
    struct volley_loop_stats ls = loop_stats(l);
    T_EXPECT(ls.dialed, 0);
    T_EXPECT(ls.closed, 1);
    pull(l, 0);
    close(hold);
    volley_loop_close(l, 0);
    return 0;
}

/* The order of SENT before CLOSED, checked on the raw event sequence. */
static int case_refused_order(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    char addr[64];
    int hold = refusing_port(addr);
    volley_conn *c;
    static uint8_t lent[100];
    T_OK(volley_dial(l, &c, addr, NULL, 5000, NULL));
    T_EXPECT(volley_conn_write_ref(c, lent, sizeof lent, 5), 0);
    T_EXPECT(volley_conn_write_ref(c, lent, sizeof lent, 6), 0);
    long long end = t_now_ms() + 5000;
    while (queued_ev(VOLLEY_EV_CLOSED, c) < 0 && t_now_ms() < end)
        pull(l, 50);
    T_ASSERT(queued_ev(VOLLEY_EV_CLOSED, c) >= 0);
    unsigned k = 0;
    uint64_t want_tag[] = {5, 6};
    for (unsigned i = 0; i < evq_n; i++) {
        if (evq[i].conn != c)
            continue;
        if (k < 2) {
            T_CHECK(evq[i].type == VOLLEY_EV_SENT && evq[i].tag == want_tag[k],
                    "event %u: %s tag %llu, want SENT tag %llu", k, ev_name(evq[i].type),
                    (unsigned long long)evq[i].tag, (unsigned long long)want_tag[k]);
        } else {
            T_CHECK(evq[i].type == VOLLEY_EV_CLOSED, "event %u: %s, want CLOSED last", k,
                    ev_name(evq[i].type));
        }
        k++;
    }
    T_EXPECT(k, 3);
    pull(l, 0);
    close(hold);
    volley_loop_close(l, 0);
    return 0;
}

/* A listener whose accept queue is full drops SYNs on loopback: the dial
 * times out, CLOSED -ETIMEDOUT, and the deadline shows in loop_timeout. */
static int case_connect_timeout(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    struct full_listener f;
    full_listener_open(&f);
    volley_conn *c;
    T_OK(volley_dial(l, &c, f.addr, NULL, 200, NULL));
    int t = volley_loop_timeout(l);
    T_CHECK(t >= 0 && t <= 200, "volley_loop_timeout = %d after a 200 ms dial", t);
    struct volley_event e = TAKE(l, VOLLEY_EV_CLOSED, c);
    T_CHECK(e.err == -ETIMEDOUT, "CLOSED err %d (%s), want -ETIMEDOUT", e.err,
            volley_strerror(e.err));
    T_CHECK(queued_ev(VOLLEY_EV_CONNECTED, c) < 0, "CONNECTED on a dropped dial");
    pull(l, 0);
    T_EXPECT(volley_loop_timeout(l), -1);
    full_listener_close(&f);
    volley_loop_close(l, 0);
    return 0;
}

/* A peer that reads only when told: a plain socket with a small receive
 * buffer, non-blocking reads checked against stream seed. */
struct slow_peer {
    int fd;
    uint64_t seed, got;
};

static void slow_accept(struct slow_peer *p, int lfd, uint64_t seed)
{
    p->fd = plain_accept(lfd);
    p->seed = seed;
    p->got = 0;
}

/* Read up to max bytes that are there now; false at EOF. */
static bool slow_read(struct slow_peer *p, size_t max)
{
    static uint8_t buf[256 * KiB];
    while (max) {
        ssize_t r = plain_recv_now(p->fd, buf, max < sizeof buf ? max : sizeof buf);
        if (r == -EAGAIN)
            return true;
        if (r == 0)
            return false;
        if (r < 0)
            T_FAIL("peer recv after %llu bytes: %s", (unsigned long long)p->got,
                   strerror((int)-r));
        T_STREAM(buf, (size_t)r, p->seed, p->got, "peer");
        p->got += (uint64_t)r;
        max -= (size_t)r;
    }
    return true;
}

/* A dialed conn to a plain listener whose accepted end reads slowly. */
struct to_slow {
    volley_loop *l;
    volley_conn *c;
    int lfd;
    struct slow_peer p;
};

static void to_slow_open(struct to_slow *s, const struct volley_loop_opts *lo,
                         const struct volley_conn_opts *o, uint64_t seed)
{
    evq_n = 0;
    char addr[64];
    s->l = loop_with(lo);
    s->lfd = plain_listen("127.0.0.1:0", 8, addr);
    int small = 64 * KiB;
    T_ASSERT(setsockopt(s->lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    T_OK(volley_dial(s->l, &s->c, addr, o, 5000, NULL));
    TAKE(s->l, VOLLEY_EV_CONNECTED, s->c);
    slow_accept(&s->p, s->lfd, seed);
}

static void to_slow_close(struct to_slow *s)
{
    if (s->p.fd >= 0)
        close(s->p.fd);
    close(s->lfd);
    pull(s->l, 0);
    volley_loop_close(s->l, 0);
}

/* Write stream bytes from *off until -EAGAIN or total; returns whether
 * -EAGAIN stopped it. */
static bool write_until_full(volley_conn *c, uint64_t seed, uint64_t *off, uint64_t total,
                             size_t chunk, size_t sendq_max)
{
    while (*off < total) {
        size_t n = total - *off < chunk ? (size_t)(total - *off) : chunk;
        gen(seed, *off, scratch, n);
        size_t q = volley_conn_queued(c);
        ssize_t r = volley_conn_write(c, scratch, n);
        if (r == -EAGAIN) {
            T_CHECK(q + n > sendq_max, "-EAGAIN with %zu queued + %zu, sendq_max %zu", q,
                    n, sendq_max);
            return true;
        }
        if (r != (ssize_t)n)
            T_FAIL("volley_conn_write(%zu) = %zd", n, r);
        *off += n;
    }
    return false;
}

/* sendq_max: writes stop at -EAGAIN, WRITABLE once the queue is down to
 * sendq_low, a write larger than the limit goes into an empty queue; a
 * slow peer gets every byte. */
static int case_sendq_limit(void)
{
    struct to_slow s;
    struct volley_loop_opts lo = lopts();
    struct volley_conn_opts o = copts();
    o.sendq_max = 64 * KiB;
    o.sendq_low = 16 * KiB;
    to_slow_open(&s, &lo, &o, 11);
    uint64_t off = 0, total = 4 * MiB;
    unsigned writable = 0;
    long long end = t_now_ms() + 30000;
    while (off < total && t_now_ms() < end) {
        if (!write_until_full(s.c, 11, &off, total, 8 * KiB, o.sendq_max))
            break;
        T_CHECK(volley_conn_queued(s.c) <= o.sendq_max, "queued %zu > sendq_max",
                volley_conn_queued(s.c));
        struct volley_event e;
        while (!take_within(s.l, VOLLEY_EV_WRITABLE, s.c, 10, &e))
            if (!slow_read(&s.p, 4 * KiB) || t_now_ms() > end)
                T_FAIL("no WRITABLE after -EAGAIN (%zu queued, peer has %llu bytes)",
                       volley_conn_queued(s.c), (unsigned long long)s.p.got);
        T_CHECK(volley_conn_queued(s.c) <= o.sendq_low,
                "WRITABLE with %zu queued, sendq_low %u", volley_conn_queued(s.c),
                o.sendq_low);
        writable++;
    }
    T_EXPECT(off, total);
    T_CHECK(writable > 10, "only %u WRITABLE events", writable);
    /* empty queue: one write larger than sendq_max is taken; then none */
    T_EXPECT(volley_conn_wait_drained(s.c, 20000), 0);
    while (!take_within(s.l, VOLLEY_EV_DRAINED, s.c, 10, NULL))
        T_ASSERT(slow_read(&s.p, 256 * KiB) && t_now_ms() < end + 20000);
    T_EXPECT(volley_conn_queued(s.c), 0);
    gen(11, off, scratch, 100 * KiB);
    T_EXPECT(volley_conn_write(s.c, scratch, 100 * KiB), 100 * KiB);
    off += 100 * KiB;
    T_EXPECT(volley_conn_write(s.c, scratch, 1), -EAGAIN);
    T_EXPECT(volley_conn_write_ref(s.c, scratch, 1, 1), -EAGAIN);
    T_EXPECT(volley_conn_close(s.c), 0);
    end = t_now_ms() + 20000;
    while (slow_read(&s.p, 256 * KiB) && t_now_ms() < end)
        pull(s.l, 5);
    T_EXPECT(s.p.got, off);
    close(s.p.fd);
    s.p.fd = -1;
    T_EXPECT(TAKE(s.l, VOLLEY_EV_CLOSED, s.c).err, 0);
    to_slow_close(&s);
    return 0;
}

/* wait_drained: TIMEOUT (tag DRAINED) while the peer does not read, the
 * conn unchanged; DRAINED once it did; DRAINED at once on an empty queue. */
static int case_drain(void)
{
    struct to_slow s;
    struct volley_loop_opts lo = lopts();
    struct volley_conn_opts o = copts();
    o.sendq_max = 1u << 30;
    to_slow_open(&s, &lo, &o, 12);
    T_EXPECT(volley_conn_wait_drained(s.c, -1), 0);
    struct volley_event e = TAKE(s.l, VOLLEY_EV_DRAINED, s.c);
    T_EXPECT(e.err, 0);
    static uint8_t big[16 * MiB];
    gen(12, 0, big, sizeof big);
    T_EXPECT(volley_conn_write(s.c, big, sizeof big), sizeof big);
    T_EXPECT(volley_conn_wait_drained(s.c, 300), 0);
    int t = volley_loop_timeout(s.l);
    T_CHECK(t >= 0 && t <= 300, "volley_loop_timeout = %d with a 300 ms drain wait", t);
    e = TAKE(s.l, VOLLEY_EV_TIMEOUT, s.c);
    T_EXPECT(e.tag, VOLLEY_EV_DRAINED);
    T_EXPECT(e.err, -ETIMEDOUT);
    T_CHECK(volley_conn_queued(s.c) > 0, "nothing queued: the peer took 16 MiB unread");
    T_CHECK(queued_ev(VOLLEY_EV_DRAINED, s.c) < 0, "DRAINED with a full queue");
    T_EXPECT(volley_conn_wait_drained(s.c, 20000), 0);
    long long end = t_now_ms() + 20000;
    while (!take_within(s.l, VOLLEY_EV_DRAINED, s.c, 5, NULL))
        T_ASSERT(slow_read(&s.p, 1 * MiB) && t_now_ms() < end);
    T_EXPECT(volley_conn_queued(s.c), 0);
    while (s.p.got < sizeof big && t_now_ms() < end)
        T_ASSERT(slow_read(&s.p, 1 * MiB));
    T_EXPECT(s.p.got, sizeof big);
    T_EXPECT(volley_conn_close(s.c), 0);
    T_ASSERT(shutdown(s.p.fd, SHUT_WR) == 0);
    T_EXPECT(TAKE(s.l, VOLLEY_EV_CLOSED, s.c).err, 0);
    to_slow_close(&s);
    return 0;
}

/* close with 8 MiB queued and a peer not reading yet: every byte arrives,
 * then EOF; CLOSED err 0; SENT err 0 for the lent buffer. */
static int case_close_inflight(void)
{
    struct to_slow s;
    struct volley_loop_opts lo = lopts();
    struct volley_conn_opts o = copts();
    o.sendq_max = 1u << 30;
    to_slow_open(&s, &lo, &o, 13);
    static uint8_t big[8 * MiB];
    gen(13, 0, big, sizeof big);
    T_EXPECT(volley_conn_write(s.c, big, sizeof big / 2), sizeof big / 2);
    T_EXPECT(volley_conn_write_ref(s.c, big + sizeof big / 2, sizeof big / 2, 9), 0);
    settle(s.l, 50);
    T_EXPECT(volley_conn_close(s.c), 0);
    long long end = t_now_ms() + 30000;
    bool open = true;
    while (open && t_now_ms() < end) {
        pull(s.l, 5);
        open = slow_read(&s.p, 1 * MiB);
    }
    T_CHECK(!open, "no EOF at the peer");
    T_EXPECT(s.p.got, sizeof big);
    T_ASSERT(shutdown(s.p.fd, SHUT_WR) == 0);
    struct volley_event e = TAKE(s.l, VOLLEY_EV_SENT, s.c);
    T_EXPECT(e.tag, 9);
    T_EXPECT(e.err, 0);
    e = TAKE(s.l, VOLLEY_EV_CLOSED, s.c);
    T_EXPECT(e.err, 0);
    to_slow_close(&s);
    return 0;
}

/* An orderly close while the peer keeps its own side open: the close
 * waits for the peer's FIN for linger_ms after the call, then closes the
 * socket anyway: still an orderly close (err 0), and everything queued
 * reached the peer. */
static int case_close_peer_open(void)
{
    struct to_slow s;
    struct volley_loop_opts lo = lopts();
    lo.linger_ms = 300;
    struct volley_conn_opts o = copts();
    to_slow_open(&s, &lo, &o, 18);
    gen(18, 0, scratch, 1000);
    put(s.c, scratch, 1000);
    T_EXPECT(volley_conn_close(s.c), 0);
    long long end = t_now_ms() + 5000;
    bool open = true;
    while (open && t_now_ms() < end) {
        pull(s.l, 5);
        open = slow_read(&s.p, 4096);
    }
    T_CHECK(!open, "no EOF at the peer");
    T_EXPECT(s.p.got, 1000);
    int t = volley_loop_timeout(s.l);
    T_CHECK(t >= 0 && t <= 300, "volley_loop_timeout = %d while lingering 300 ms", t);
    struct volley_event e;
    T_CHECK(take_within(s.l, VOLLEY_EV_CLOSED, s.c, 5000, &e),
            "no CLOSED within 5 s while the peer keeps its side open (linger_ms 300)");
    if (queued_ev(VOLLEY_EV_CLOSED, s.c) < 0 && e.conn == s.c)
        T_EXPECT(e.err, 0);
    to_slow_close(&s);
    return 0;
}

/* close that cannot flush within linger_ms: CLOSED -ETIMEDOUT, the rest
 * counted unsent. */
static int case_linger_timeout(void)
{
    struct to_slow s;
    struct volley_loop_opts lo = lopts();
    lo.linger_ms = 300;
    struct volley_conn_opts o = copts();
    o.sendq_max = 1u << 30;
    to_slow_open(&s, &lo, &o, 14);
    static uint8_t big[16 * MiB];
    T_EXPECT(volley_conn_write(s.c, big, sizeof big), sizeof big);
    T_EXPECT(volley_conn_close(s.c), 0);
    int t = volley_loop_timeout(s.l);
    T_CHECK(t >= 0 && t <= 300, "volley_loop_timeout = %d with linger 300 ms", t);
    struct volley_event e = TAKE(s.l, VOLLEY_EV_CLOSED, s.c);
    T_CHECK(e.err == -ETIMEDOUT, "CLOSED err %d (%s), want -ETIMEDOUT", e.err,
            volley_strerror(e.err));
    struct volley_conn_stats st = conn_stats(s.c);
    T_CHECK(st.unsent_bytes > 0, "unsent_bytes 0 with 16 MiB never read");
    T_EXPECT(st.unsent_bytes + st.bytes_out, sizeof big);
    to_slow_close(&s);
    return 0;
}

/* abort with sends in flight: CLOSED -ECANCELED after SENT (err < 0) for
 * the lent buffer that never went; the peer sees a reset or EOF; unsent
 * bytes counted. */
static int case_abort_inflight(void)
{
    struct to_slow s;
    struct volley_loop_opts lo = lopts();
    struct volley_conn_opts o = copts();
    o.sendq_max = 1u << 30;
    to_slow_open(&s, &lo, &o, 15);
    static uint8_t big[16 * MiB], tail[4096];
    T_EXPECT(volley_conn_write_ref(s.c, big, sizeof big, 1), 0);
    T_EXPECT(volley_conn_write_ref(s.c, tail, sizeof tail, 2), 0);
    settle(s.l, 50);
    T_EXPECT(volley_conn_abort(s.c), 0);
    struct volley_event e1 = TAKE(s.l, VOLLEY_EV_SENT, s.c);
    struct volley_event e2 = TAKE(s.l, VOLLEY_EV_SENT, s.c);
    T_EXPECT(e1.tag, 1);
    T_CHECK(e1.err < 0, "SENT err %d for a 16 MiB buffer the peer never read", e1.err);
    T_EXPECT(e2.tag, 2);
    T_CHECK(e2.err < 0, "SENT err %d for a buffer queued behind it", e2.err);
    struct volley_event c = TAKE(s.l, VOLLEY_EV_CLOSED, s.c);
    T_EXPECT(c.err, -ECANCELED);
    struct volley_conn_stats st = conn_stats(s.c);
    T_CHECK(st.unsent_bytes > 0, "unsent_bytes 0 after an abort");
    T_EXPECT(st.unsent_bytes + st.bytes_out, sizeof big + sizeof tail);
    /* the peer: what had arrived, then a reset or EOF */
    long long end = t_now_ms() + 10000;
    ssize_t r = 1;
    static uint8_t buf[MiB];
    while (t_now_ms() < end) {
        r = plain_recv_now(s.p.fd, buf, sizeof buf);
        if (r == -EAGAIN)
            usleep(1000);
        else if (r <= 0)
            break;
    }
    T_CHECK(r == 0 || r == -ECONNRESET, "the peer's recv ended with %zd", r);
    to_slow_close(&s);
    return 0;
}

/* volley_loop_close with 1000 busy connections (both ends on the loop,
 * lent buffers in flight): it returns, frees everything, closes every fd. */
static int case_loop_close_busy(void)
{
    need_fds(2200);
    int fds = t_count_fds();
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_conn *ln;
    struct volley_conn_opts o = copts();
    o.sendq_max = 1u << 30;
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", &o, NULL));
    const char *to = addr_of(ln, "127.0.0.1");
    enum { N = 500 };
    static uint8_t lent[256 * KiB];
    static volley_conn *c[2 * N];
    for (unsigned i = 0; i < N; i++)
        T_OK(volley_dial(l, &c[i], to, &o, 5000, NULL));
    unsigned accepted = 0;
    long long end = t_now_ms() + 20000;
    while (accepted < N && t_now_ms() < end) {
        struct volley_event e;
        if (take_within(l, VOLLEY_EV_ACCEPTED, NULL, 50, &e))
            c[N + accepted++] = e.conn;
        drop_ev(VOLLEY_EV_CONNECTED, NULL);
    }
    T_EXPECT(accepted, N);
    for (unsigned i = 0; i < 2 * N; i++) {
        T_EXPECT(volley_conn_write(c[i], lent, 64 * KiB), 64 * KiB);
        T_EXPECT(volley_conn_write_ref(c[i], lent, sizeof lent, i), 0);
    }
    for (int i = 0; i < 5; i++)
        pull(l, 10), evq_n = 0;
    volley_loop_close(l, 0);
    memset(lent, 0xa5, sizeof lent); /* ours again: nothing may read it now */
    T_EXPECT(t_count_fds(), fds);
    return 0;
}

/* A blocking reader of a slow_peer until EOF (10 s per recv). */
static void *peer_reader(void *arg)
{
    struct slow_peer *p = arg;
    static uint8_t buf[256 * KiB];
    static uint8_t want[256 * KiB];
    struct timeval tv = {.tv_sec = 10};
    setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t r;
    while ((r = recv(p->fd, buf, sizeof buf, 0)) > 0) {
        gen(p->seed, p->got, want, (size_t)r);
        if (memcmp(buf, want, (size_t)r))
            return "different bytes";
        p->got += (uint64_t)r;
    }
    if (r == 0)
        shutdown(p->fd, SHUT_WR);
    return r == 0 ? NULL : "recv failed before EOF";
}

/* volley_loop_close with a drain time lets a queue flush to a peer that
 * reads: every byte arrives, then EOF. */
static int case_loop_close_drain(void)
{
    struct to_slow s;
    struct volley_loop_opts lo = lopts();
    struct volley_conn_opts o = copts();
    o.sendq_max = 1u << 30;
    to_slow_open(&s, &lo, &o, 16);
    static uint8_t big[4 * MiB];
    gen(16, 0, big, sizeof big);
    T_EXPECT(volley_conn_write(s.c, big, sizeof big), sizeof big);
    pthread_t t;
    T_ASSERT(pthread_create(&t, NULL, peer_reader, &s.p) == 0);
    volley_loop_close(s.l, 10000);
    void *why;
    pthread_join(t, &why);
    T_CHECK(why == NULL, "peer: %s", (const char *)why);
    T_EXPECT(s.p.got, sizeof big);
    close(s.p.fd);
    close(s.lfd);
    return 0;
}

/* ---- the loop fd and deadlines ---- */

/* Poll with timeout 0 (up to 10 times, waiting on the loop fd between)
 * until an event of type on c (NULL: any) comes. */
static bool take_nowait(volley_loop *l, unsigned type, volley_conn *c,
                        struct volley_event *e)
{
    for (int i = 0; i < 10; i++) {
        pull(l, 0);
        if (take_within(l, type, c, 0, e))
            return true;
        t_readable(volley_loop_fd(l), 100);
    }
    return false;
}

/* Poll until the loop has nothing more to say (bounded). */
static void idle(volley_loop *l)
{
    for (int i = 0; i < 20 && pull(l, 0) > 0; i++)
        ;
}

/* A listener out of descriptors (EMFILE, for real: the descriptor limit
 * lowered under it) rests instead of retrying on every poll, and takes
 * the waiting connections once descriptors are there again. */
static int case_accept_emfile(void)
{
    volley_loop *l = loop_new();
    volley_conn *ln;
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
    const char *to = addr_of(ln, "127.0.0.1");
    int port = atoi(strrchr(to, ':') + 1);
    int pipefd[2], ready[2];
    T_ASSERT(pipe(pipefd) == 0 && pipe(ready) == 0);
    fflush(NULL);
    pid_t pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) { /* three clients that stay connected until told */
        int fds[3];
        for (int i = 0; i < 3; i++) {
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            fds[i] = socket(AF_INET, SOCK_STREAM, 0);
            if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof sa) < 0)
                _exit(1);
        }
        (void)!write(ready[1], "r", 1); /* all three wait in the accept queue */
        char b;
        (void)!read(pipefd[0], &b, 1);
        _exit(0);
    }
    close(pipefd[0]);
    close(ready[1]);
    char b;
    T_ASSERT(read(ready[0], &b, 1) == 1);
    close(ready[0]);
    struct rlimit old, low;
    T_ASSERT(getrlimit(RLIMIT_NOFILE, &old) == 0);
    low = old;
    int lowest = dup(0); /* the lowest free descriptor: a limit there leaves none */
    T_ASSERT(lowest >= 0);
    close(lowest);
    low.rlim_cur = (rlim_t)lowest;
    T_ASSERT(setrlimit(RLIMIT_NOFILE, &low) == 0);
    static struct volley_event ev[16];
    unsigned accepted = 0;
    for (int i = 0; i < 1000; i++) {
        int n = volley_loop_poll(l, ev, T_COUNT(ev), 0);
        T_ASSERT(n >= 0);
        for (int k = 0; k < n; k++)
            accepted += ev[k].type == VOLLEY_EV_ACCEPTED;
    }
    struct volley_loop_stats st = loop_stats(l);
    T_ASSERT(setrlimit(RLIMIT_NOFILE, &old) == 0);
    printf("  1000 polls out of descriptors: %llu failed accepts, %u accepted\n",
           (unsigned long long)st.accept_errors, accepted);
    T_CHECK(st.accept_errors >= 1,
            "no accept failed with the descriptor limit at its use");
    T_CHECK(st.accept_errors < 100,
            "%llu failed accepts in 1000 polls: the listener does not rest",
            (unsigned long long)st.accept_errors);
    long long end = t_now_ms() + 5000;
    while (accepted < 3 && t_now_ms() < end) {
        int n = volley_loop_poll(l, ev, T_COUNT(ev), 50);
        T_ASSERT(n >= 0);
        for (int k = 0; k < n; k++)
            accepted += ev[k].type == VOLLEY_EV_ACCEPTED;
    }
    T_EXPECT(accepted, 3);
    (void)!write(pipefd[1], "x", 1);
    close(pipefd[1]);
    int wst;
    T_ASSERT(waitpid(pid, &wst, 0) == pid);
    T_CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "the clients could not connect");
    volley_loop_close(l, 0);
    return 0;
}

static int case_loop_fd(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    int fd = volley_loop_fd(l);
    T_ASSERT(fd >= 0);
    T_EXPECT(volley_loop_fd(l), fd);
    volley_conn *ln;
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
    idle(l);
    int p = plain_connect(addr_of(ln, "127.0.0.1"), 0);
    T_CHECK(t_readable(fd, 5000), "loop fd not readable with a connection to accept");
    struct volley_event e;
    T_ASSERT(take_nowait(l, VOLLEY_EV_ACCEPTED, NULL, &e));
    volley_conn *c = e.conn;
    idle(l);
    evq_n = 0;
    plain_send_all(p, "abc", 3);
    T_CHECK(t_readable(fd, 5000), "loop fd not readable with bytes arriving");
    T_ASSERT(take_nowait(l, VOLLEY_EV_READABLE, c, &e));
    char buf[8];
    T_EXPECT(volley_conn_read(c, buf, sizeof buf), 3);
    idle(l);
    /* a queued write is something for volley_loop_poll to do: the fd or
     * the timeout must say so, or an embedding loop would never send it */
    put(c, "xyz", 3);
    bool ready = volley_loop_timeout(l) == 0 || t_readable(fd, 200);
    T_CHECK(ready,
            "a write is queued, the loop fd is not readable and "
            "volley_loop_timeout is %d",
            volley_loop_timeout(l));
    idle(l);
    T_ASSERT(t_readable(p, 5000));
    T_EXPECT(recv(p, buf, sizeof buf, 0), 3);
    close(p);
    T_ASSERT(take_nowait(l, VOLLEY_EV_EOF, c, &e) || queued_ev(VOLLEY_EV_EOF, c) >= 0 ||
             take_within(l, VOLLEY_EV_EOF, c, 2000, &e));
    T_EXPECT(close_wait(l, c), 0);
    T_EXPECT(close_wait(l, ln), 0);
    volley_loop_close(l, 0);
    return 0;
}

/* volley_loop_timeout: -1 without deadlines, the nearest one otherwise,
 * 0 once one passed; events that did not fit come on the next call. */
static int case_loop_timeout(void)
{
    struct duo d;
    duo_default(&d);
    idle(d.l);
    evq_n = 0;
    T_EXPECT(volley_loop_timeout(d.l), -1);
    T_EXPECT(volley_conn_want(d.srv, 100, 3000), 0);
    T_EXPECT(volley_conn_want(d.cli, 100, 50), 0);
    int t = volley_loop_timeout(d.l);
    T_CHECK(t >= 0 && t <= 50, "volley_loop_timeout = %d, nearest deadline 50 ms", t);
    T_EXPECT(volley_conn_want(d.srv, 100, 50), 0); /* a new wish replaces the old */
    usleep(150 * 1000);
    T_EXPECT(volley_loop_timeout(d.l), 0);
    struct volley_event ev[2];
    T_EXPECT(volley_loop_poll(d.l, ev, 1, 1000), 1);
    T_EXPECT(ev[0].type, VOLLEY_EV_TIMEOUT);
    T_EXPECT(volley_loop_timeout(d.l), 0);
    T_EXPECT(volley_loop_poll(d.l, ev + 1, 1, 1000), 1);
    T_EXPECT(ev[1].type, VOLLEY_EV_TIMEOUT);
    T_CHECK(ev[0].conn != ev[1].conn, "two TIMEOUTs for one conn");
    T_EXPECT(volley_loop_timeout(d.l), -1);
    idle(d.l);
    T_CHECK(queued_ev(VOLLEY_EV_TIMEOUT, NULL) < 0, "a third TIMEOUT");
    /* a pending dial's deadline */
    volley_conn *c;
    T_OK(volley_dial(d.l, &c, addr_of(d.ln, "127.0.0.1"), NULL, 4000, NULL));
    t = volley_loop_timeout(d.l);
    T_CHECK(t >= 0 && t <= 4000, "volley_loop_timeout = %d with a 4 s dial", t);
    TAKE(d.l, VOLLEY_EV_CONNECTED, c);
    volley_conn *s = TAKE(d.l, VOLLEY_EV_ACCEPTED, NULL).conn;
    T_EXPECT(volley_loop_timeout(d.l), -1);
    close_both(d.l, c, s);
    duo_close(&d);
    return 0;
}

/* ---- counters ---- */

static int case_stats(void)
{
    struct duo d;
    duo_default(&d);
    idle(d.l);
    evq_n = 0;
    struct volley_loop_stats l0 = loop_stats(d.l);
    T_EXPECT(l0.conns, 3);
    T_EXPECT(l0.accepted, 1);
    T_EXPECT(l0.dialed, 1);
    struct volley_conn_stats c0 = conn_stats(d.cli), s0 = conn_stats(d.srv);
    T_EXPECT(c0.bytes_out + c0.bytes_in + s0.bytes_in + s0.bytes_out, 0);
    uint8_t out[1000], in[1000];
    gen(17, 0, out, sizeof out);
    for (unsigned i = 0; i < 100; i++)
        put(d.cli, out + 10 * i, 10);
    T_EXPECT(volley_conn_queued(d.cli), 1000);
    T_EXPECT(conn_stats(d.cli).queued, 1000);
    T_EXPECT(volley_conn_want(d.srv, 1000, 5000), 0);
    TAKE(d.l, VOLLEY_EV_READABLE, d.srv);
    T_EXPECT(conn_stats(d.srv).buffered, 1000);
    T_EXPECT(volley_conn_read(d.srv, in, sizeof in), 1000);
    T_ASSERT(!memcmp(in, out, sizeof out));
    T_EXPECT(conn_stats(d.srv).buffered, 0);
    struct volley_conn_stats c1 = conn_stats(d.cli), s1 = conn_stats(d.srv);
    printf("  100 writes between polls: sends %llu, coalesced %llu\n",
           (unsigned long long)c1.sends, (unsigned long long)c1.coalesced);
    T_EXPECT(c1.writes, 100);
    T_EXPECT(c1.bytes_out, 1000);
    T_EXPECT(c1.queued, 0);
    T_EXPECT(s1.bytes_in, 1000);
    T_CHECK(c1.sends >= 1 && c1.sends < 100, "%llu sends for 100 writes made at once",
            (unsigned long long)c1.sends);
    T_CHECK(c1.coalesced > 0 && c1.coalesced <= 100, "coalesced %llu of 100 writes",
            (unsigned long long)c1.coalesced);
    struct volley_loop_stats l1 = loop_stats(d.l);
    T_EXPECT(l1.total.bytes_out, 1000);
    T_EXPECT(l1.total.bytes_in, 1000);
    T_EXPECT(l1.total.writes, 100);
    T_CHECK(l1.polls > l0.polls && l1.syscalls > l0.syscalls, "polls %llu, syscalls %llu",
            (unsigned long long)l1.polls, (unsigned long long)l1.syscalls);
    /* each volley_loop_poll call counts once */
    uint64_t p0 = loop_stats(d.l).polls;
    struct volley_event ev[4];
    for (int i = 0; i < 7; i++)
        volley_loop_poll(d.l, ev, 4, 0);
    T_EXPECT(loop_stats(d.l).polls - p0, 7);
    close_both(d.l, d.cli, d.srv);
    T_EXPECT(close_wait(d.l, d.ln), 0);
    pull(d.l, 0);
    struct volley_loop_stats l2 = loop_stats(d.l);
    T_EXPECT(l2.conns, 0);
    T_EXPECT(l2.closed, 3);
    volley_loop_close(d.l, 0);
    return 0;
}

/* ---- 10,000 connections on one loop ---- */

/* At most this much of volley's own memory per idle connection, once
 * accepted and after a request and its echo (the header's figure). */
enum { TENK = 10000, TENK_MSG = 16, TENK_HEAP_MAX = 384 };

struct tenk {
    volley_loop *l;
    unsigned dialed, connected, echoed, closed;
    volley_conn **c;
};

static void tenk_dial(struct tenk *k, const char *to)
{
    while (k->dialed < TENK && k->dialed - k->connected < 500) {
        T_OK(volley_dial(k->l, &k->c[k->dialed], to, NULL, 20000,
                         (void *)(uintptr_t)(k->dialed + 1)));
        k->dialed++;
    }
}

static void tenk_event(struct tenk *k, const struct volley_event *e)
{
    unsigned i = (unsigned)(uintptr_t)e->user - 1;
    char msg[TENK_MSG + 1], in[TENK_MSG];
    T_ASSERT(i < TENK && k->c[i] == e->conn);
    snprintf(msg, sizeof msg, "conn %010u", i);
    if (e->type == VOLLEY_EV_CONNECTED) {
        if (++k->connected == TENK)
            for (unsigned j = 0; j < TENK; j++) {
                snprintf(msg, sizeof msg, "conn %010u", j);
                put(k->c[j], msg, TENK_MSG);
                T_EXPECT(volley_conn_want(k->c[j], TENK_MSG, -1), 0);
            }
    } else if (e->type == VOLLEY_EV_READABLE) {
        T_EXPECT(volley_conn_read(k->c[i], in, sizeof in), TENK_MSG);
        if (memcmp(in, msg, TENK_MSG))
            T_FAIL("conn %u: the echo differs", i);
        if (++k->echoed == TENK)
            for (unsigned j = 0; j < TENK; j++)
                T_EXPECT(volley_conn_close(k->c[j]), 0);
    } else if (e->type == VOLLEY_EV_CLOSED) {
        T_CHECK(e->err == 0, "conn %u: CLOSED %s", i, volley_strerror(e->err));
        k->closed++;
    } else {
        T_FAIL("conn %u: %s", i, ev_name(e->type));
    }
}

/* The dialing side, in a child process (descriptors are per process). */
static void tenk_client(const char *to)
{
    static struct volley_event ev[256];
    struct tenk k = {.l = loop_new(), .c = calloc(TENK, sizeof(volley_conn *))};
    T_ASSERT(k.c);
    long long end = t_now_ms() + 100000;
    while (k.closed < TENK) {
        tenk_dial(&k, to);
        int n = volley_loop_poll(k.l, ev, T_COUNT(ev), 50);
        T_ASSERT(n >= 0);
        for (int i = 0; i < n; i++)
            tenk_event(&k, &ev[i]);
        if (t_now_ms() > end)
            T_FAIL("client: connected %u, echoed %u, closed %u of %u", k.connected,
                   k.echoed, k.closed, TENK);
    }
    volley_loop_close(k.l, 0);
    free(k.c);
    exit(t_failures() ? 1 : 0);
}

/* The accepting side's state: what it counted, and volley's memory. */
struct tenk_srv {
    volley_loop *l;
    volley_conn *ln;
    unsigned accepted, closed;
    size_t heap0;          /* heap in use before the first connection */
    uint64_t peak;         /* most connections open at once (the listener too) */
    size_t heap_peak;      /* heap in use then */
    uint64_t conns_echoed; /* connections open at the first EOF: every echo */
    size_t heap_echoed;    /* went by then (the client closes after the last) */
};

/* Heap in use: what malloc handed out, in its arenas and in the blocks it
 * maps on its own for large requests (the slots' deadline heap, the
 * send pool's blocks), 0 when a sanitizer's allocator reports none. */
static size_t heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks ? m.uordblks + m.hblkhd : 0;
}

/* volley's own memory per connection, from the heap in use at n open
 * connections and the listener (the kernel's socket memory is not
 * counted: it is not volley's). */
static size_t tenk_per_conn(const struct tenk_srv *s, size_t heap, uint64_t n)
{
    return (heap - s->heap0) / (size_t)(n - 1);
}

/* The accepting side: echo 16 bytes, close on EOF. */
static void tenk_server_event(struct tenk_srv *s, const struct volley_event *e)
{
    char in[TENK_MSG];
    if (e->type == VOLLEY_EV_ACCEPTED) {
        T_ASSERT(e->listener == s->ln);
        s->accepted++;
        T_EXPECT(volley_conn_want(e->conn, TENK_MSG, -1), 0);
    } else if (e->type == VOLLEY_EV_READABLE) {
        ssize_t n = volley_conn_read(e->conn, in, sizeof in);
        if (n > 0)
            put(e->conn, in, (size_t)n);
    } else if (e->type == VOLLEY_EV_EOF) {
        if (!s->conns_echoed) {
            /* a round trip on every connection, none closed yet */
            s->conns_echoed = loop_stats(s->l).conns;
            s->heap_echoed = heap_in_use();
        }
        T_EXPECT(volley_conn_close(e->conn), 0);
    } else if (e->type == VOLLEY_EV_CLOSED) {
        T_CHECK(e->err == 0, "server: CLOSED %s", volley_strerror(e->err));
        s->closed++;
    }
}

static int case_conns_10k(void)
{
    need_fds(TENK + 200);
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_conn *ln;
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
    char to[64];
    snprintf(to, sizeof to, "%s", addr_of(ln, "127.0.0.1"));
    fflush(NULL);
    pid_t pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
        alarm(0);
        tenk_client(to);
    }
    static struct volley_event ev[256];
    struct tenk_srv s = {.l = l, .ln = ln, .heap0 = heap_in_use()};
    long long end = t_now_ms() + 110000;
    int st = -1;
    while (s.closed < TENK && t_now_ms() < end) {
        int n = volley_loop_poll(l, ev, T_COUNT(ev), 50);
        T_ASSERT(n >= 0);
        for (int i = 0; i < n; i++)
            tenk_server_event(&s, &ev[i]);
        uint64_t c = loop_stats(l).conns;
        if (c > s.peak) {
            s.peak = c;
            s.heap_peak = heap_in_use();
        }
        if (waitpid(pid, &st, WNOHANG) == pid) {
            pid = 0;
            if (!WIFEXITED(st) || WEXITSTATUS(st))
                break;
        }
    }
    printf("  accepted %u, closed %u, most open at once %llu\n", s.accepted, s.closed,
           (unsigned long long)s.peak);
    /* (a sanitizer's allocator reports no heap) */
    if (s.heap0 && s.peak > TENK / 2) {
        size_t per = tenk_per_conn(&s, s.heap_peak, s.peak);
        printf("  heap per open connection, accepted: %zu bytes\n", per);
        T_CHECK(per <= TENK_HEAP_MAX,
                "%zu bytes of volley's heap per accepted connection, want <= %u", per,
                TENK_HEAP_MAX);
    }
    if (s.heap0 && s.conns_echoed > TENK / 2) {
        size_t per = tenk_per_conn(&s, s.heap_echoed, s.conns_echoed);
        printf("  heap per open connection, after a round trip: %zu bytes\n", per);
        T_CHECK(
            per <= TENK_HEAP_MAX,
            "%zu bytes of volley's heap per connection after a round trip, want <= %u",
            per, TENK_HEAP_MAX);
    }
    if (pid > 0) {
        for (int i = 0; i < 200 && waitpid(pid, &st, WNOHANG) == 0; i++)
            usleep(50 * 1000);
        if (waitpid(pid, &st, WNOHANG) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
    }
    T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the dialing process failed");
    T_EXPECT(s.accepted, TENK);
    T_EXPECT(s.closed, TENK);
    T_CHECK(s.peak >= TENK + 1, "at most %llu conns open at once",
            (unsigned long long)s.peak);
    T_EXPECT(close_wait(l, ln), 0);
    volley_loop_close(l, 0);
    return 0;
}

/* ====================================================================== */

static const struct t_loop_case defs[] = {
    {"bad_input", case_bad_input},
    {"ipv4", case_ipv4},
    {"ipv6", case_ipv6},
    {"dual_stack", case_dual_stack},
    {"v6only", case_v6only},
    {"integrity_1", case_integrity_1},
    {"integrity_1000", case_integrity_1000},
    {"integrity_zc", case_integrity_zc},
    {"read_upto", case_read_upto},
    {"read_want", case_read_want},
    {"peek_consume", case_peek_consume},
    {"peek_lend", case_peek_lend},
    {"want_timeout", case_want_timeout},
    {"eof_shutdown", case_eof_shutdown},
    {"half_close", case_half_close},
    {"shutdown", case_shutdown},
    {"recv_into", case_recv_into},
    {"recv_into_owed", case_recv_into_owed},
    {"plain_client", case_plain_client},
    {"plain_server", case_plain_server},
    {"reset_dialed", case_reset_dialed},
    {"reset_accepted", case_reset_accepted},
    {"socket_table", case_socket_table},
    {"socket_table_full", case_socket_table_full},
    {"peer_close_unread", case_peer_close_unread},
    {"peer_fin_unread", case_peer_fin_unread},
    {"refused", case_refused},
    {"refused_order", case_refused_order},
    {"connect_timeout", case_connect_timeout},
    {"ring_exhaustion", case_ring_exhaustion},
    {"cq_pressure", case_cq_pressure},
    {"sendq_small", case_sendq_small},
    {"sendq_limit", case_sendq_limit},
    {"drain", case_drain},
    {"close_inflight", case_close_inflight},
    {"close_peer_open", case_close_peer_open},
    {"linger_timeout", case_linger_timeout},
    {"abort_inflight", case_abort_inflight},
    {"loop_close_busy", case_loop_close_busy},
    {"loop_close_drain", case_loop_close_drain},
    {"accept_emfile", case_accept_emfile},
    {"loop_fd", case_loop_fd},
    {"loop_timeout", case_loop_timeout},
    {"stats", case_stats},
    {"conns_10k", case_conns_10k},
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct t_run how = {.flags = T_FORK, .case_s = 120, .total_s = 290};
    return t_main_loops(defs, T_COUNT(defs), &how, argc, argv);
}
