/* SPDX-License-Identifier: MIT */
/* Peers that want to hurt a stream loop, on both loop backends: what the
 * loop holds for them stays within its budget and their share of it, the
 * well-behaved connections beside them keep being served, and each defect
 * such peers once found stays fixed.
 *
 * The peers are plain sockets driven from the test's own thread between
 * polls, so each step happens in a known order. Service is bounded by
 * poll turns and by generous deadlines that only end a case that hangs;
 * nothing asserts how long anything took. */
#include "tstream.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Poll until c has at least n bytes buffered (5 s at most). */
static void buffered_at_least(volley_loop *l, volley_conn *c, size_t n, const char *what)
{
    long long end = t_now_ms() + 5000;
    while (volley_conn_buffered(c) < n) {
        if (t_now_ms() > end) {
            struct volley_loop_stats st = loop_stats(l);
            T_FAIL("%s: %zu of %zu bytes buffered in 5 s (%llu of the budget's "
                   "buffers held, %llu connections over their share)",
                   what, volley_conn_buffered(c), n, (unsigned long long)st.bufs_held,
                   (unsigned long long)st.over_share);
        }
        pull(l, 1);
    }
}

/* A plain client of ln and the server end the loop accepted for it. */
static int client_of(volley_loop *l, volley_conn *ln, volley_conn **srv)
{
    int fd = plain_connect(addr_of(ln, "127.0.0.1"), 0);
    T_ASSERT(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int)) == 0);
    *srv = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
    return fd;
}

/* n bytes of stream seed from the plain socket fd, checked. */
static void plain_recv_stream(int fd, size_t n, uint64_t seed, uint64_t off)
{
    uint8_t buf[4096];
    while (n) {
        ssize_t r = recv(fd, buf, n < sizeof buf ? n : sizeof buf, 0);
        if (r <= 0)
            T_FAIL("recv: %s", r < 0 ? strerror(errno) : "EOF");
        T_STREAM(buf, (size_t)r, seed, off, "echoed bytes");
        off += (uint64_t)r;
        n -= (size_t)r;
    }
}

/* One byte per segment: the bytes of a slow sender share one buffer, so
 * its want is met long before the budget runs out, and the loop's other
 * connections are served meanwhile. */
static int case_dribble(void)
{
    struct volley_loop_opts lo = lopts();
    lo.buf_count = 8;
    lo.buf_size = 512;
    evq_n = 0;
    volley_loop *l = loop_with(&lo);
    volley_conn *ln, *srv, *srv2;
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, &ln_user));
    int fd = client_of(l, ln, &srv);
    T_OK(volley_conn_want(srv, 300, -1));
    uint8_t in[2000];
    gen(11, 0, in, 300);
    for (size_t i = 0; i < 299; i++) {
        plain_send_all(fd, in + i, 1);
        buffered_at_least(l, srv, i + 1, "a sender of one byte per segment");
    }
    T_CHECK(queued_ev(VOLLEY_EV_READABLE, srv) < 0, "READABLE before the want of 300");
    struct volley_loop_stats st = loop_stats(l);
    T_CHECK(st.bufs_held == 1, "299 bytes hold %llu buffers of 512 bytes",
            (unsigned long long)st.bufs_held);
    int fd2 = client_of(l, ln, &srv2);
    gen(12, 0, in, sizeof in);
    plain_send_all(fd2, in, sizeof in);
    read_exact(l, srv2, in, sizeof in);
    T_STREAM(in, sizeof in, 12, 0, "the other connection");
    gen(11, 299, in, 1);
    plain_send_all(fd, in, 1);
    T_EXPECT(TAKE(l, VOLLEY_EV_READABLE, srv).len, 300);
    T_EXPECT(volley_conn_read(srv, in, 300), 300);
    T_STREAM(in, 300, 11, 0, "the dribbled bytes");
    close(fd);
    close(fd2);
    volley_loop_close(l, 0);
    return 0;
}

/* Peers that send and are never read: each holds at most its share of
 * the budget, a well-behaved connection beside them gets every byte
 * echoed, and once the application reads them, every byte they sent
 * arrives (receiving resumes as the budget frees up). */
#define HOGS      12
#define HOG_BYTES (16 * KiB)
/* A loop with a budget of 64 buffers of 512 bytes, listening on ln. */
static volley_loop *hog_loop(volley_conn **ln)
{
    struct volley_loop_opts lo = lopts();
    lo.buf_count = 64;
    lo.buf_size = 512;
    evq_n = 0;
    volley_loop *l = loop_with(&lo);
    T_OK(volley_listen(l, ln, "127.0.0.1:0", NULL, &ln_user));
    return l;
}

static int case_nonreaders(void)
{
    volley_conn *ln, *hog[HOGS], *srv;
    volley_loop *l = hog_loop(&ln);
    int hfd[HOGS];
    uint8_t buf[HOG_BYTES];
    for (unsigned i = 0; i < HOGS; i++) {
        hfd[i] = client_of(l, ln, &hog[i]);
        gen(100 + i, 0, buf, sizeof buf);
        plain_send_all(hfd[i], buf, sizeof buf); /* the kernel holds what we do not */
    }
    settle(l, 300);
    struct volley_loop_stats st = loop_stats(l);
    printf("  %u peers never read: %llu of 64 buffers held, %llu over their share\n",
           HOGS, (unsigned long long)st.bufs_held, (unsigned long long)st.over_share);
    T_CHECK(st.bufs_held < 64, "every buffer of the budget held by peers never read");
    T_CHECK(st.bufs_live <= 64, "%llu buffers live, budget 64",
            (unsigned long long)st.bufs_live);
    int fd = client_of(l, ln, &srv);
    for (unsigned round = 0; round < 50; round++) {
        gen(7, round * 100, buf, 100);
        plain_send_all(fd, buf, 100);
        unsigned turns = 0;
        while (volley_conn_buffered(srv) < 100) {
            T_CHECK(++turns < 200, "round %u: 100 bytes not received in 200 poll turns",
                    round);
            if (turns >= 200)
                return 0;
            pull(l, 50);
        }
        T_EXPECT(volley_conn_read(srv, buf, sizeof buf), 100);
        put(srv, buf, 100);
        pull(l, 0);
        plain_recv_stream(fd, 100, 7, round * 100);
    }
    /* now the application reads the peers: all of it, in order */
    for (unsigned i = 0; i < HOGS; i++) {
        read_exact(l, hog[i], buf, sizeof buf);
        T_STREAM(buf, sizeof buf, 100 + i, 0, "a peer's bytes read late");
    }
    st = loop_stats(l);
    T_EXPECT(st.over_share, 0);
    for (unsigned i = 0; i < HOGS; i++)
        close(hfd[i]);
    close(fd);
    volley_loop_close(l, 0);
    return 0;
}

/* The same peers, every one accepted (and receiving) before any of them
 * sends, then all sending at once: the loop sees nothing of the burst
 * until its next poll. A receive that kept taking buffers until the loop
 * looked (io_uring's multishot receive) would let the first few peers take
 * the whole budget; receiving is bounded instead, so the peers hold at most
 * half the budget plus each one's share (here 2 buffers each) and a
 * newcomer is served. */
static int case_nonreaders_at_once(void)
{
    volley_conn *ln, *hog[HOGS], *srv;
    volley_loop *l = hog_loop(&ln);
    int hfd[HOGS];
    uint8_t buf[HOG_BYTES];
    for (unsigned i = 0; i < HOGS; i++)
        hfd[i] = client_of(l, ln, &hog[i]);
    settle(l, 50);
    T_EXPECT(loop_stats(l).bufs_live, 64);
    for (unsigned i = 0; i < HOGS; i++) {
        gen(200 + i, 0, buf, sizeof buf);
        plain_send_all(hfd[i], buf, sizeof buf);
    }
    settle(l, 300);
    struct volley_loop_stats st = loop_stats(l);
    printf("  %u peers sending at once: %llu of 64 buffers held, %llu over their share\n",
           HOGS, (unsigned long long)st.bufs_held, (unsigned long long)st.over_share);
    T_CHECK(st.bufs_held <= 32 + 2 * HOGS,
            "%llu of 64 buffers held by %u peers never read (at most %u)",
            (unsigned long long)st.bufs_held, HOGS, 32 + 2 * HOGS);
    int fd = client_of(l, ln, &srv);
    gen(8, 0, buf, 1000);
    plain_send_all(fd, buf, 1000);
    buffered_at_least(l, srv, 1000, "a newcomer beside peers never read");
    T_EXPECT(volley_conn_read(srv, buf, 1000), 1000);
    T_STREAM(buf, 1000, 8, 0, "the newcomer's bytes");
    for (unsigned i = 0; i < HOGS; i++) {
        read_exact(l, hog[i], buf, sizeof buf);
        T_STREAM(buf, sizeof buf, 200 + i, 0, "a peer's bytes read late");
    }
    for (unsigned i = 0; i < HOGS; i++)
        close(hfd[i]);
    close(fd);
    volley_loop_close(l, 0);
    return 0;
}

/* The documented pattern, want n then read n on READABLE, after resets:
 * READABLE (with fewer bytes, the peer is gone) and CLOSED come in one
 * batch, and a want then must not put the connection back on the ready
 * list, which would cut the others closed in that batch off from being
 * released. */
static int case_want_after_close(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_conn *ln, *srv[6];
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, &ln_user));
    int fd[6];
    for (unsigned i = 0; i < 6; i++) {
        fd[i] = client_of(l, ln, &srv[i]);
        T_OK(volley_conn_want(srv[i], 1000, -1));
    }
    for (unsigned i = 0; i < 6; i++) {
        plain_send_all(fd[i], "0123456789", 10);
        plain_reset(fd[i]);
    }
    usleep(50 * 1000); /* (only to gather them in fewer batches) */
    unsigned closed = 0;
    long long end = t_now_ms() + 5000;
    while (closed < 6 && t_now_ms() < end) {
        struct volley_event ev[64];
        int n = volley_loop_poll(l, ev, 64, 20);
        T_ASSERT(n >= 0);
        for (int i = 0; i < n; i++) {
            if (ev[i].type != VOLLEY_EV_READABLE && ev[i].type != VOLLEY_EV_CLOSED)
                continue;
            /* want what is missing, as the pattern does on a short READABLE */
            int r = volley_conn_want(ev[i].conn, 1000, -1);
            if (ev[i].type == VOLLEY_EV_CLOSED) {
                closed++;
                T_CHECK(r == -ESHUTDOWN, "want after CLOSED = %d (%s), want -ESHUTDOWN",
                        r, volley_strerror(r));
            }
        }
    }
    T_EXPECT(closed, 6);
    pull(l, 0);
    pull(l, 0);
    struct volley_loop_stats st = loop_stats(l);
    T_CHECK(st.conns == 1, "%llu connections left, want the listener alone",
            (unsigned long long)st.conns);
    T_EXPECT(st.bufs_held, 0);
    volley_loop_close(l, 0);
    return 0;
}

/* A dial that cannot connect (its SYN is dropped: the listener's queue is
 * full), closed by the caller: linger_ms bounds that close, with a dial
 * timeout longer than it or with none. */
static int case_close_connecting(void)
{
    struct full_listener f;
    full_listener_open(&f);
    static const int dial_ms[] = {60000, 0};
    for (unsigned i = 0; i < T_COUNT(dial_ms); i++) {
        struct volley_loop_opts lo = lopts();
        lo.linger_ms = 200;
        evq_n = 0;
        volley_loop *l = loop_with(&lo);
        volley_conn *c;
        T_OK(volley_dial(l, &c, f.addr, NULL, dial_ms[i], NULL));
        pull(l, 20);
        T_OK(volley_conn_close(c));
        int t = volley_loop_timeout(l);
        T_CHECK(t >= 0 && t <= 200, "volley_loop_timeout = %d closing with linger 200 ms",
                t);
        struct volley_event e = TAKE(l, VOLLEY_EV_CLOSED, c);
        T_CHECK(e.err == -ETIMEDOUT, "CLOSED err %d (%s), want -ETIMEDOUT", e.err,
                volley_strerror(e.err));
        volley_loop_close(l, 0);
    }
    full_listener_close(&f);
    return 0;
}

/* Lent buffers cost room even when empty: on a full queue a zero-length
 * one says -EAGAIN too, and however many a caller hands over between two
 * polls, what the queue holds for them is bounded by sendq_max. */
static int case_write_ref_bounded(void)
{
    struct duo d;
    struct volley_loop_opts lo = lopts();
    struct volley_conn_opts o = copts();
    o.sendq_max = 4096;
    duo_open(&d, &lo, &o);
    static const char byte = 'x';
    unsigned taken = 0;
    int r = 0;
    for (unsigned i = 0;
         i < 100000 && (r = volley_conn_write_ref(d.cli, &byte, 0, i)) == 0; i++)
        taken++;
    T_EXPECT(r, -EAGAIN);
    T_CHECK(taken >= 1 && taken <= 4096 / 64,
            "%u empty lent buffers taken, sendq_max 4096", taken);
    /* a full queue of bytes refuses an empty buffer too */
    struct duo e;
    duo_open(&e, &lo, &o);
    T_EXPECT(volley_conn_write(e.cli, scratch, 4096), 4096);
    T_EXPECT(volley_conn_write_ref(e.cli, &byte, 0, 1), -EAGAIN);
    T_EXPECT(volley_conn_write(e.cli, scratch, 1), -EAGAIN);
    volley_loop_close(e.l, 0);
    /* every one taken is given back with SENT, in order */
    for (unsigned i = 0; i < taken; i++) {
        struct volley_event ev = TAKE(d.l, VOLLEY_EV_SENT, d.cli);
        T_EXPECT(ev.tag, i);
        T_EXPECT(ev.err, 0);
    }
    T_EXPECT(volley_conn_write_ref(d.cli, &byte, 0, 7), 0);
    volley_loop_close(d.l, 0);
    return 0;
}

/* Close a, and b once a's FIN arrived. */
static void close_first(volley_loop *l, volley_conn *a, volley_conn *b)
{
    T_OK(volley_conn_close(a));
    TAKE(l, VOLLEY_EV_EOF, b);
    T_EXPECT(close_wait(l, b), 0);
    T_EXPECT(TAKE(l, VOLLEY_EV_CLOSED, a).err, 0);
}

/* A restarted server: the connections of its last run that it closed
 * first wait in TIME_WAIT on its port, and a listener binds that port
 * again all the same, unless VOLLEY_CONN_NO_REUSEADDR asks for the
 * kernel's plain rule. (The port a listener is given is free of other
 * programs' sockets; an ephemeral port of a dialed socket is not, which
 * is why no listener is tried on one here.) */
static int case_reuseaddr(void)
{
    for (unsigned plain = 0; plain < 2; plain++) {
        evq_n = 0;
        volley_loop *l = loop_new();
        struct volley_conn_opts o = copts();
        o.flags = plain ? VOLLEY_CONN_NO_REUSEADDR : 0;
        volley_conn *ln, *cli, *srv;
        T_OK(volley_listen(l, &ln, "127.0.0.1:0", &o, &ln_user));
        char at[64];
        snprintf(at, sizeof at, "%s", addr_of(ln, "127.0.0.1"));
        T_OK(volley_dial(l, &cli, at, NULL, 5000, NULL));
        srv = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
        TAKE(l, VOLLEY_EV_CONNECTED, cli);
        close_first(l, srv, cli); /* the server's FIN first: it waits in TIME_WAIT */
        T_EXPECT(close_wait(l, ln), 0);
        volley_conn *again;
        int r = volley_listen(l, &again, at, &o, NULL);
        if (r == 0)
            T_EXPECT(close_wait(l, again), 0);
        if (plain)
            T_CHECK(r == -EADDRINUSE,
                    "listen on %s in TIME_WAIT without SO_REUSEADDR = %d (%s)", at, r,
                    volley_strerror(r));
        else
            T_CHECK(r == 0, "listen again on %s in TIME_WAIT = %d (%s)", at, r,
                    volley_strerror(r));
        volley_loop_close(l, 0);
    }
    return 0;
}

/* Writes queued for peers that do not read: the loop's copies stay within
 * its send budget (and each connection's share of it), a connection with
 * an empty queue can always write, and a connection told -EAGAIN for the
 * budget's sake gets WRITABLE once the others drain. */
#define WRITERS 8
static int case_send_budget(void)
{
    struct volley_loop_opts lo = lopts();
    lo.sendq_budget = 256 * KiB;
    evq_n = 0;
    volley_loop *l = loop_with(&lo);
    volley_conn *ln, *srv[WRITERS + 1];
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, &ln_user));
    int fd[WRITERS + 1];
    for (unsigned i = 0; i <= WRITERS; i++)
        fd[i] = client_of(l, ln, &srv[i]);
    /* no poll meanwhile: nothing is sent, everything written is queued */
    size_t total = 0;
    bool refused[WRITERS] = {0};
    for (unsigned i = 0; i < WRITERS; i++) {
        ssize_t w;
        while ((w = volley_conn_write(srv[i], scratch, 64 * KiB)) > 0)
            total += (size_t)w;
        T_EXPECT(w, -EAGAIN);
        refused[i] = true;
        T_CHECK(volley_conn_queued(srv[i]) >= 64 * KiB, "writer %u: %zu bytes queued", i,
                volley_conn_queued(srv[i]));
    }
    /* 9 connections and the listener: a share is 256 KiB / 20 */
    size_t bound = 256 * KiB + WRITERS * (64 * KiB + 256 * KiB / 20);
    printf("  %zu bytes queued for %u writers, send budget 256 KiB\n", total, WRITERS);
    T_CHECK(total <= bound, "%zu bytes queued, want at most %zu", total, bound);
    T_CHECK(total < WRITERS * (size_t)MiB, "the budget did not limit the queues");
    T_EXPECT(volley_conn_write(srv[WRITERS], scratch, 64 * KiB), (ssize_t)(64 * KiB));
    /* the peers read; every writer refused hears WRITABLE */
    unsigned writable = 0;
    long long end = t_now_ms() + 10000;
    uint8_t sink[64 * KiB];
    while (writable < WRITERS && t_now_ms() < end) {
        for (unsigned i = 0; i <= WRITERS; i++)
            while (plain_recv_now(fd[i], sink, sizeof sink) > 0)
                ;
        pull(l, 5);
        for (unsigned i = 0; i < WRITERS; i++)
            if (refused[i] && queued_ev(VOLLEY_EV_WRITABLE, srv[i]) >= 0) {
                drop_ev(VOLLEY_EV_WRITABLE, srv[i]);
                refused[i] = false;
                writable++;
            }
    }
    T_EXPECT(writable, WRITERS);
    for (unsigned i = 0; i <= WRITERS; i++)
        close(fd[i]);
    volley_loop_close(l, 0);
    return 0;
}

/* ---- the sweep: every kind of hostile peer at once ---- */

/* The server under attack: an echo server as an application would write
 * it on volley. It echoes what arrives through peek, write and consume,
 * stops reading a connection whose write says -EAGAIN until WRITABLE,
 * closes once the peer's FIN came and everything was echoed, and aborts a
 * connection that sends nothing for IDLE_MS (the application's guard
 * against peers that connect and go silent). */
#define IDLE_MS    400
#define ECHO_CONNS 4096
struct echo_srv {
    volley_loop *l;
    volley_conn *ln;
    int idle_ms; /* the guard: IDLE_MS, or -1 where no peer goes silent */
    unsigned closed, idled;
    struct echo_conn *live[ECHO_CONNS]; /* what a loop close frees */
};

struct echo_conn {
    bool eof, blocked, done;
    int idle_ms;   /* the server's */
    unsigned slot; /* in echo_srv.live */
};

static struct echo_conn *echo_state(volley_conn *c)
{
    return volley_conn_user(c);
}

static void echo_pump(volley_conn *c)
{
    struct echo_conn *e = echo_state(c);
    if (e->done)
        return;
    e->blocked = false;
    struct iovec iov[16];
    int n;
    while ((n = volley_conn_peek(c, iov, 16)) > 0) {
        size_t took = 0;
        for (int i = 0; i < n; i++) {
            ssize_t w = volley_conn_write(c, iov[i].iov_base, iov[i].iov_len);
            if (w == -EAGAIN) {
                e->blocked = true;
                break;
            }
            if (w < 0) { /* it ended (a reset): CLOSED follows */
                T_CHECK(w == -EPIPE, "write = %zd (%s)", w, volley_strerror((int)w));
                e->done = true;
                return;
            }
            T_ASSERT(w == (ssize_t)iov[i].iov_len);
            took += (size_t)w;
        }
        if (took)
            T_OK(volley_conn_consume(c, took));
        if (e->blocked)
            return;
    }
    if (e->eof && !volley_conn_buffered(c)) {
        e->done = true;
        T_OK(volley_conn_close(c));
        return;
    }
    (void)volley_conn_want(c, 1, e->idle_ms); /* not after the peer's FIN */
}

static void echo_event(struct echo_srv *s, const struct volley_event *ev)
{
    volley_conn *c = ev->conn;
    switch (ev->type) {
    case VOLLEY_EV_ACCEPTED: {
        struct echo_conn *e = calloc(1, sizeof *e);
        T_ASSERT(e);
        for (e->slot = 0; e->slot < ECHO_CONNS && s->live[e->slot]; e->slot++)
            ;
        T_ASSERT(e->slot < ECHO_CONNS);
        s->live[e->slot] = e;
        e->idle_ms = s->idle_ms;
        volley_conn_set_user(c, e);
        T_OK(volley_conn_want(c, 1, e->idle_ms));
        break;
    }
    case VOLLEY_EV_READABLE:
    case VOLLEY_EV_WRITABLE:
        echo_pump(c);
        break;
    case VOLLEY_EV_EOF:
        echo_state(c)->eof = true;
        if (!echo_state(c)->blocked)
            echo_pump(c);
        break;
    case VOLLEY_EV_TIMEOUT:
        if (!echo_state(c)->done && !volley_conn_buffered(c)) {
            s->idled++;
            echo_state(c)->done = true;
            T_OK(volley_conn_abort(c));
        }
        break;
    case VOLLEY_EV_CLOSED:
        if (c != s->ln) {
            s->live[echo_state(c)->slot] = NULL;
            free(echo_state(c));
            s->closed++;
        }
        break;
    default:
        break;
    }
}

/* One turn of the server: a poll, its events handled. */
static void echo_turn(struct echo_srv *s, int timeout_ms)
{
    struct volley_event ev[64];
    int n = volley_loop_poll(s->l, ev, 64, timeout_ms);
    T_CHECK(n >= 0, "volley_loop_poll = %d (%s)", n, volley_strerror(n));
    for (int i = 0; i < n; i++)
        echo_event(s, &ev[i]);
}

/* Close the server's loop (it returns no more events) and free what its
 * connections still held. */
static void echo_close(struct echo_srv *s)
{
    volley_loop_close(s->l, 0);
    for (unsigned i = 0; i < ECHO_CONNS; i++)
        free(s->live[i]);
}

/* The attackers, in a process of their own (the server's descriptor limit
 * is not theirs), for at most HOSTILE_MS: peers that dribble one byte at a
 * time, peers that send and never read, peers that connect and say
 * nothing, a storm of connections reset as soon as they sent something,
 * peers that send, shut their side and read, and a burst of connections
 * far beyond the listen backlog. Every socket is non-blocking; what the
 * kernel refuses is simply tried again later. */
#define HOSTILE_MS 2500
#define N_DRIBBLE  40
#define N_NOREAD   40
#define N_SILENT   40
#define N_HALF     20
#define N_BURST    200
#define N_RESETS   300

static int nb_connect(const struct volley_addr *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    (void)!setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
    (void)!connect(fd, &a->sa, volley_addr_len(a));
    return fd;
}

static void drain_fd(int fd)
{
    static uint8_t sink[64 * KiB];
    while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0)
        ;
}

static void reset_fd(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    (void)!setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

static void attack(const struct volley_addr *a)
{
    static int dribble[N_DRIBBLE], noread[N_NOREAD], silent[N_SILENT], half[N_HALF],
        burst[N_BURST];
    static uint8_t junk[64 * KiB];
    struct rlimit rl = {4096, 4096};
    (void)!setrlimit(RLIMIT_NOFILE, &rl);
    /* the peers that cost the most first, the burst last */
    for (unsigned i = 0; i < N_NOREAD; i++)
        noread[i] = nb_connect(a);
    for (unsigned i = 0; i < N_DRIBBLE; i++)
        dribble[i] = nb_connect(a);
    for (unsigned i = 0; i < N_SILENT; i++)
        silent[i] = nb_connect(a);
    for (unsigned i = 0; i < N_HALF; i++)
        half[i] = nb_connect(a);
    for (unsigned i = 0; i < N_BURST; i++)
        burst[i] = nb_connect(a);
    unsigned resets = 0;
    bool half_shut = false;
    long long end = t_now_ms() + HOSTILE_MS;
    for (unsigned turn = 0; t_now_ms() < end; turn++) {
        for (unsigned i = 0; i < N_DRIBBLE; i++) {
            (void)!send(dribble[i], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            drain_fd(dribble[i]);
        }
        for (unsigned i = 0; i < N_NOREAD; i++)
            (void)!send(noread[i], junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
        for (unsigned i = 0; i < N_HALF; i++) {
            if (!half_shut && turn == 20) {
                (void)!send(half[i], junk, 1000, MSG_NOSIGNAL | MSG_DONTWAIT);
                (void)!shutdown(half[i], SHUT_WR);
            }
            drain_fd(half[i]);
        }
        half_shut = half_shut || turn == 20;
        for (unsigned k = 0; k < 4 && resets < N_RESETS; k++, resets++) {
            int fd = nb_connect(a);
            if (fd >= 0) {
                (void)!send(fd, junk, 100, MSG_NOSIGNAL | MSG_DONTWAIT);
                reset_fd(fd);
            }
        }
        usleep(5 * 1000);
    }
    for (unsigned i = 0; i < N_BURST; i++)
        close(burst[i]);
    for (unsigned i = 0; i < N_SILENT; i++)
        close(silent[i]);
    _exit(0); /* the other sockets close with the process */
}

/* Well-behaved clients beside the attack: request and echo, every byte
 * checked, each round trip within a bound on the server's poll turns,
 * counting the turns when the loop had a receive buffer to give. The
 * budget's last eighth goes one buffer to each connection holding nothing,
 * so enough attackers at once could still take it all for a moment; the
 * turns when they did are printed, and the bound does not count them. */
#define N_GOOD    4
#define GOOD_MSG  512
#define TURNS_MAX 400
struct good {
    int fd;
    uint64_t sent, got; /* stream offsets */
    unsigned rounds, turns, worst;
};

static void good_step(struct good *g, unsigned i, bool budget_full)
{
    uint8_t buf[GOOD_MSG];
    if (g->got == g->sent) {
        if (g->rounds) {
            if (g->turns > g->worst)
                g->worst = g->turns;
            T_CHECK(g->turns <= TURNS_MAX, "client %u round %u took %u poll turns", i,
                    g->rounds, g->turns);
        }
        gen(500 + i, g->sent, buf, sizeof buf);
        plain_send_all(g->fd, buf, sizeof buf);
        g->sent += sizeof buf;
        g->rounds++;
        g->turns = 0;
        return;
    }
    if (!budget_full)
        g->turns++;
    ssize_t r = plain_recv_now(g->fd, buf, (size_t)(g->sent - g->got));
    if (r == -EAGAIN)
        return;
    T_CHECK(r > 0, "client %u: recv = %zd", i, r);
    if (r <= 0)
        return;
    T_STREAM(buf, (size_t)r, 500 + i, g->got, "a well-behaved client's echo");
    g->got += (uint64_t)r;
}

static int case_sweep(void)
{
    struct volley_loop_opts lo = lopts();
    lo.buf_count = 256; /* a budget the attack can reach: 4 MiB to receive */
    lo.sendq_budget = 1u << 20;
    evq_n = 0;
    /* the well-behaved clients, accepted first, have no idle guard: a
     * loaded machine may keep this process from them for longer than the
     * silent attackers' IDLE_MS, which is theirs alone */
    struct echo_srv s = {.l = loop_with(&lo), .idle_ms = -1};
    struct volley_conn_opts o = copts();
    o.backlog = 16;
    T_OK(volley_listen(s.l, &s.ln, "127.0.0.1:0", &o, NULL));
    struct volley_addr a = conn_local(s.ln);
    struct good good[N_GOOD];
    for (unsigned i = 0; i < N_GOOD; i++) {
        memset(&good[i], 0, sizeof good[i]);
        good[i].fd = plain_connect(addr_of(s.ln, "127.0.0.1"), 0);
        T_ASSERT(setsockopt(good[i].fd, IPPROTO_TCP, TCP_NODELAY, &(int){1},
                            sizeof(int)) == 0);
    }
    for (unsigned k = 0; k < 100 && s.ln && loop_stats(s.l).accepted < N_GOOD; k++)
        echo_turn(&s, 10);
    T_ASSERT(loop_stats(s.l).accepted == N_GOOD);
    s.idle_ms = IDLE_MS;
    /* the attack runs out of descriptors here long before it runs out of
     * connections: accepting must pause and resume, not spin or stop */
    struct rlimit old, rl;
    T_ASSERT(getrlimit(RLIMIT_NOFILE, &old) == 0);
    rl = old;
    rl.rlim_cur = (rlim_t)t_count_fds() + 40;
    pid_t pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0)
        attack(&a);
    T_ASSERT(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    unsigned long long turns = 0, full_turns = 0;
    long long end = t_now_ms() + HOSTILE_MS + 4000;
    struct volley_loop_stats st, most = {0};
    while (t_now_ms() < end) {
        echo_turn(&s, 2);
        turns++;
        st = loop_stats(s.l);
        bool full = st.bufs_held >= lo.buf_count;
        full_turns += full;
        for (unsigned i = 0; i < N_GOOD; i++)
            good_step(&good[i], i, full);
        if (st.bufs_held > most.bufs_held)
            most.bufs_held = st.bufs_held;
        if (st.bufs_live > most.bufs_live)
            most.bufs_live = st.bufs_live;
        if (st.total.queued > most.total.queued)
            most.total.queued = st.total.queued;
        if (st.over_share > most.over_share)
            most.over_share = st.over_share;
        T_CHECK(st.bufs_live <= 256, "%llu receive buffers live, budget 256",
                (unsigned long long)st.bufs_live);
    }
    int status;
    T_ASSERT(waitpid(pid, &status, 0) == pid);
    T_ASSERT(setrlimit(RLIMIT_NOFILE, &old) == 0);
    st = loop_stats(s.l);
    printf("  %llu turns (%llu with every buffer held); accepted %llu (%llu accepts "
           "failed), %u closed, %u idle aborted\n",
           turns, full_turns, (unsigned long long)st.accepted,
           (unsigned long long)st.accept_errors, s.closed, s.idled);
    printf("  most at once: %llu of 256 buffers held, %llu live, %llu bytes queued, "
           "%llu connections over their share\n",
           (unsigned long long)most.bufs_held, (unsigned long long)most.bufs_live,
           (unsigned long long)most.total.queued, (unsigned long long)most.over_share);
    for (unsigned i = 0; i < N_GOOD; i++) {
        printf("  client %u: %u round trips, the longest %u poll turns\n", i,
               good[i].rounds, good[i].worst);
        T_CHECK(good[i].rounds >= 20, "client %u: %u round trips under attack", i,
                good[i].rounds);
    }
    T_CHECK(st.accepted > N_GOOD + 50, "only %llu connections accepted",
            (unsigned long long)st.accepted);
    /* the queues: the budget plus one write into each empty queue */
    T_CHECK(most.total.queued <= (1u << 20) + 512 * 64 * KiB, "%llu bytes queued at once",
            (unsigned long long)most.total.queued);
    /* the attackers are gone: the loop serves a newcomer at once */
    int fd = plain_connect(addr_of(s.ln, "127.0.0.1"), 0);
    gen(9, 0, scratch, 4096);
    plain_send_all(fd, scratch, 4096);
    uint64_t back = 0;
    for (unsigned k = 0; k < 1000 && back < 4096; k++) {
        echo_turn(&s, 5);
        ssize_t r = plain_recv_now(fd, check_buf, 4096 - back);
        if (r > 0) {
            T_STREAM(check_buf, (size_t)r, 9, back, "a newcomer after the attack");
            back += (uint64_t)r;
        }
    }
    T_EXPECT(back, 4096);
    close(fd);
    for (unsigned i = 0; i < N_GOOD; i++)
        close(good[i].fd);
    echo_close(&s);
    return 0;
}

/* One large transfer beside 200 small ones, every byte echoed to the end:
 * each client shuts its side once it has sent everything and reads until
 * the server closes. The clients run in a process of their own, as they
 * would on a real network, so the server's sends keep meeting sockets
 * that the other side is emptying at the same time, which a uring kernel
 * may end with -EAGAIN: a send to try again, not a connection to end. */
#define N_SMALL   200
#define BIG_BYTES (5u * MiB)
struct xfer_peer {
    int fd;
    size_t size, sent, got;
    bool shut, eof;
};

/* One step of p: send what fits, shut when all went, read what came and
 * check it. False when something went wrong (said on stdout). */
static bool xfer_step(struct xfer_peer *p, uint64_t seed)
{
    static uint8_t buf[64 * KiB], want[64 * KiB];
    if (p->sent < p->size) {
        /* the large one sends in small steps too: the server's receive on
         * it waits for data while its send waits for room */
        size_t step = p->size == BIG_BYTES ? 8192 : sizeof buf;
        size_t n = p->size - p->sent < step ? p->size - p->sent : step;
        gen(seed, p->sent, buf, n);
        ssize_t w = send(p->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0)
            p->sent += (size_t)w;
        else if (errno != EAGAIN)
            return printf("  send: %s\n", strerror(errno)), false;
    } else if (!p->shut) {
        if (shutdown(p->fd, SHUT_WR) != 0)
            return printf("  shutdown: %s\n", strerror(errno)), false;
        p->shut = true;
    }
    /* the large one reads slowly, so the server's socket stays nearly full */
    for (unsigned k = 0; k < (p->size == BIG_BYTES ? 1u : 1000u); k++) {
        ssize_t r =
            recv(p->fd, buf, p->size == BIG_BYTES ? 4096 : sizeof buf, MSG_DONTWAIT);
        if (r < 0 && errno == EAGAIN)
            return true;
        if (r < 0)
            return printf("  recv: %s\n", strerror(errno)), false;
        if (r == 0) {
            p->eof = true;
            return true;
        }
        gen(seed, p->got, want, (size_t)r);
        if (memcmp(buf, want, (size_t)r) != 0)
            return printf("  stream bytes %zu.. differ\n", p->got), false;
        p->got += (size_t)r;
    }
    return true;
}

/* The clients' process: exits 0 when every byte came back. */
static void xfer_clients(const struct volley_addr *a)
{
    static struct xfer_peer p[N_SMALL + 1];
    uint64_t rng = 42;
    for (unsigned i = 0; i <= N_SMALL; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (p[i].fd < 0 || connect(p[i].fd, &a->sa, volley_addr_len(a)) != 0 ||
            fcntl(p[i].fd, F_SETFL, O_NONBLOCK) != 0)
            _exit(2);
        p[i].size = i == 0 ? BIG_BYTES : 1 + t_rand(&rng) % (200 * KiB);
    }
    unsigned done = 0;
    bool ok = true;
    long long end = t_now_ms() + 60000;
    while (ok && done <= N_SMALL && t_now_ms() < end) {
        done = 0;
        for (unsigned i = 0; i <= N_SMALL && ok; i++) {
            if (!p[i].eof)
                ok = xfer_step(&p[i], 300 + i);
            done += p[i].eof;
        }
    }
    for (unsigned i = 0; i <= N_SMALL; i++)
        if (!p[i].eof || p[i].got != p[i].size) {
            printf("  client %u: %zu of %zu bytes back%s\n", i, p[i].got, p[i].size,
                   p[i].eof ? "" : ", no EOF");
            ok = false;
        }
    fflush(stdout);
    _exit(ok ? 0 : 1);
}

static int case_big_beside_many(void)
{
    evq_n = 0;
    /* no idle guard: every client sends, but a busy machine may keep one
     * (the large one most of all) from its next step for long */
    struct echo_srv s = {.l = loop_new(), .idle_ms = -1};
    T_OK(volley_listen(s.l, &s.ln, "127.0.0.1:0", NULL, NULL));
    struct volley_addr a = conn_local(s.ln);
    fflush(stdout);
    pid_t pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0)
        xfer_clients(&a);
    int status = 0;
    long long end = t_now_ms() + 70000;
    while (waitpid(pid, &status, WNOHANG) == 0 && t_now_ms() < end)
        echo_turn(&s, 1);
    if (t_now_ms() >= end) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    T_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "the clients did not get every byte back (status %d)", status);
    echo_close(&s);
    return 0;
}

/* ---- a signal ends volley_loop_poll's wait ---- */

static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t poll_returned;

static void on_usr1(int sig)
{
    (void)sig;
    got_signal = 1;
}

struct kicker {
    pthread_t target;
};

/* Signal the polling thread until its poll returns (at most 100 times,
 * 20 ms apart: a signal sent before it sleeps is not lost, it comes
 * again). */
static void *kick(void *arg)
{
    struct kicker *k = arg;
    for (int i = 0; i < 100 && !poll_returned; i++) {
        usleep(20 * 1000);
        pthread_kill(k->target, SIGUSR1);
    }
    return NULL;
}

static int case_poll_signal(void)
{
    for (int restart = 0; restart < 2; restart++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_usr1;
        sa.sa_flags = restart ? SA_RESTART : 0; /* signal() sets SA_RESTART */
        T_ASSERT(sigaction(SIGUSR1, &sa, NULL) == 0);
        evq_n = 0;
        volley_loop *l = loop_new();
        volley_conn *ln;
        T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, &ln_user));
        got_signal = poll_returned = 0;
        struct kicker k = {.target = pthread_self()};
        pthread_t t;
        T_ASSERT(pthread_create(&t, NULL, kick, &k) == 0);
        struct volley_event ev[4];
        int r = volley_loop_poll(l, ev, 4, -1);
        poll_returned = 1;
        pthread_join(t, NULL);
        T_CHECK(r == -EINTR, "volley_loop_poll(-1) = %d (%s) after a signal (%s)", r,
                volley_strerror(r), restart ? "SA_RESTART" : "no SA_RESTART");
        T_ASSERT(got_signal);
        /* the loop goes on */
        T_EXPECT(volley_loop_poll(l, ev, 4, 0), 0);
        T_EXPECT(close_wait(l, ln), 0);
        volley_loop_close(l, 0);
    }
    signal(SIGUSR1, SIG_DFL);
    return 0;
}

/* ====================================================================== */

static const struct t_loop_case defs[] = {
    {"dribble", case_dribble},
    {"nonreaders", case_nonreaders},
    {"nonreaders_at_once", case_nonreaders_at_once},
    {"want_after_close", case_want_after_close},
    {"close_connecting", case_close_connecting},
    {"write_ref_bounded", case_write_ref_bounded},
    {"send_budget", case_send_budget},
    {"reuseaddr", case_reuseaddr},
    {"poll_signal", case_poll_signal},
    {"sweep", case_sweep},
    {"big_beside_many", case_big_beside_many},
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct t_run how = {.flags = T_FORK, .case_s = 60, .total_s = 280};
    return t_main_loops(defs, T_COUNT(defs), &how, argc, argv);
}
