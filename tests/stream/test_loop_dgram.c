/* SPDX-License-Identifier: MIT */
/*
 * Datagram sockets on a stream loop (volley_opts.loop): DGRAM events, one
 * thread serving UDP and TCP from one volley_loop_poll, the uring socket
 * that shares the loop's ring, the watched kinds, and either closing
 * first. Every case runs on both loop backends.
 */
#include "dgram/dgram.h"
#include "t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENTS 100

static volley_loop *loop_new(void)
{
    struct volley_loop_opts o = VOLLEY_LOOP_OPTS_INIT;
    o.backend = t_loop_backend()->id;
    volley_loop *l = NULL;
    int r = volley_loop_open(&l, &o);
    T_SKIP_IF(r == -ENOTSUP && o.backend == VOLLEY_BACKEND_URING,
              "uring loops do not open here");
    T_OK(r);
    return l;
}

static bool uring_loop(void)
{
    return t_loop_backend()->id == VOLLEY_BACKEND_URING;
}

/* A UDP socket on loop l, with this user pointer, of backend be. */
static volley_sock *sock_on(volley_loop *l, void *user, unsigned be)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.backend = be;
    o.loop = l;
    o.loop_user = user;
    volley_sock *s = NULL;
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    return s;
}

/* A plain UDP client socket, non-blocking, that sends to s. */
static int client_for(volley_sock *s)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    T_ASSERT(fd >= 0);
    struct volley_addr a = t_local(s);
    T_ASSERT(connect(fd, &a.sa, volley_addr_len(&a)) == 0);
    return fd;
}

/* Poll l until a DGRAM event for user comes (bounded): its tag. Other
 * events are counted into *others when given. */
static uint64_t wait_dgram(volley_loop *l, void *user, unsigned *others)
{
    struct volley_event ev[64];
    long long end = t_now_ms() + 5000;
    while (t_now_ms() < end) {
        int n = T_OK(volley_loop_poll(l, ev, 64, 100));
        uint64_t tag = 0;
        for (int i = 0; i < n; i++) {
            if (ev[i].type == VOLLEY_EV_DGRAM && ev[i].user == user) {
                T_ASSERT(ev[i].conn == NULL);
                tag |= ev[i].tag;
            } else if (others) {
                (*others)++;
            }
        }
        if (tag)
            return tag;
    }
    T_FAIL("no DGRAM event in 5 s");
}

/* Receive everything s has now into a count; checks each payload. */
static unsigned drain(volley_sock *s, uint64_t *seen_mask)
{
    struct volley_dgram d[64];
    unsigned got = 0;
    int n;
    while ((n = T_OK(volley_recv(s, d, 64))) > 0) {
        for (int i = 0; i < n; i++) {
            T_EQ(d[i].len, 8);
            uint64_t seq;
            memcpy(&seq, d[i].data, 8);
            if (seen_mask && seq < 64)
                *seen_mask |= 1ull << seq;
        }
        got += (unsigned)n;
    }
    return got;
}

/* One datagram from a plain client into s: a DGRAM event for user says
 * RECV, and volley_recv takes exactly it. */
static void one_through(volley_loop *l, volley_sock *s, void *user)
{
    int c = client_for(s);
    uint64_t v = 1;
    T_EQ(send(c, &v, 8, 0), 8);
    T_ASSERT(wait_dgram(l, user, NULL) & VOLLEY_WAIT_RECV);
    T_EQ(drain(s, NULL), 1);
    close(c);
}

/* ---- cases ---- */

static int case_events(void)
{
    volley_loop *l = loop_new();
    int tag_user;
    volley_sock *s = sock_on(l, &tag_user, VOLLEY_BACKEND_AUTO);
    if (uring_loop()) {
        /* AUTO on a uring loop: a uring socket on the loop's ring */
        T_ASSERT(!strcmp(volley_backend_name(s), "uring"));
        T_EQ(volley_fd(s), volley_loop_fd(l));
    } else {
        T_ASSERT(strcmp(volley_backend_name(s), "uring") != 0);
    }
    int c = client_for(s);
    uint64_t mask = 0;
    for (uint64_t i = 0; i < 10; i++)
        T_EQ(send(c, &i, 8, 0), 8);
    unsigned got = 0;
    for (int tries = 0; got < 10 && tries < 50; tries++) {
        T_EQ(wait_dgram(l, &tag_user, NULL) & VOLLEY_WAIT_RECV, VOLLEY_WAIT_RECV);
        got += drain(s, &mask);
    }
    T_EQ(got, 10);
    T_EQ(mask, 0x3ff);
    /* datagrams left unread bring no second event; a new one does */
    for (uint64_t i = 0; i < 3; i++)
        T_EQ(send(c, &i, 8, 0), 8);
    T_ASSERT(wait_dgram(l, &tag_user, NULL) & VOLLEY_WAIT_RECV);
    struct volley_dgram one;
    T_EQ(volley_recv(s, &one, 1), 1);
    struct volley_event lev[8];
    for (int i = 0; i < 3; i++) {
        int k = T_OK(volley_loop_poll(l, lev, 8, 20));
        for (int j = 0; j < k; j++)
            T_ASSERT(lev[j].type != VOLLEY_EV_DGRAM);
    }
    uint64_t more = 3;
    T_EQ(send(c, &more, 8, 0), 8);
    T_ASSERT(wait_dgram(l, &tag_user, NULL) & VOLLEY_WAIT_RECV);
    T_EQ(drain(s, NULL), 3);
    /* nothing more: no event without new datagrams (bounded look) */
    struct volley_event ev[8];
    int n = 0;
    for (int i = 0; i < 3; i++)
        n += T_OK(volley_loop_poll(l, ev, 8, 20));
    T_EQ(n, 0);
    /* and a reply goes out through the same socket */
    struct volley_addr back;
    socklen_t blen = sizeof back.sin6;
    T_ASSERT(getsockname(c, &back.sa, &blen) == 0);
    uint64_t v = 77;
    struct volley_dgram d = {.data = &v, .len = 8, .peer = back};
    T_EQ(volley_send(s, &d, 1), 1);
    T_ASSERT(t_readable(c, 2000));
    uint64_t w = 0;
    T_EQ(recv(c, &w, 8, 0), 8);
    T_EQ(w, 77);
    close(c);
    volley_close(s);
    volley_loop_close(l, 0);
    return 0;
}

static int case_user_null(void)
{
    volley_loop *l = loop_new();
    volley_sock *s = sock_on(l, NULL, VOLLEY_BACKEND_AUTO);
    one_through(l, s, s); /* with no loop_user the event names the socket itself */
    volley_close(s);
    volley_loop_close(l, 0);
    return 0;
}

/* Every kernel backend a caller may force on the loop. */
static int case_forced_backends(void)
{
    const unsigned bes[] = {VOLLEY_BACKEND_SCALAR, VOLLEY_BACKEND_MMSG,
                            VOLLEY_BACKEND_URING};
    for (size_t b = 0; b < T_COUNT(bes); b++) {
        t_context("backend %u", bes[b]);
        if (t_backend_err(bes[b]) < 0)
            continue;
        volley_loop *l = loop_new();
        int user;
        volley_sock *s = sock_on(l, &user, bes[b]);
        int c = client_for(s);
        uint64_t mask = 0;
        for (uint64_t i = 0; i < 5; i++)
            T_EQ(send(c, &i, 8, 0), 8);
        unsigned got = 0;
        for (int tries = 0; got < 5 && tries < 50; tries++) {
            (void)wait_dgram(l, &user, NULL);
            got += drain(s, &mask);
        }
        T_EQ(got, 5);
        close(c);
        volley_close(s);
        volley_loop_close(l, 0);
    }
    return 0;
}

/* One thread, one loop: a UDP socket and CLIENTS TCP connections echoed
 * by the same volley_loop_poll calls. */
static int case_udp_and_tcp(void)
{
    volley_loop *l = loop_new();
    int udp_user;
    volley_sock *s = sock_on(l, &udp_user, VOLLEY_BACKEND_AUTO);
    volley_conn *lis;
    T_OK(volley_listen(l, &lis, "127.0.0.1:0", NULL, NULL));
    struct volley_addr la;
    T_OK(volley_conn_addr(lis, &la, NULL));
    char where[64];
    T_OK(volley_addr_format(&la, where, sizeof where));
    volley_conn *dialed[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        T_OK(volley_dial(l, &dialed[i], where, NULL, 5000, &dialed[i]));
        char msg[16];
        int len = snprintf(msg, sizeof msg, "conn %d", i);
        T_EQ(volley_conn_write(dialed[i], msg, (size_t)len), len);
    }
    int c = client_for(s);
    const unsigned dgrams = 200;
    unsigned sent = 0, echoed = 0, answered = 0, udp_got = 0;
    struct volley_event ev[64];
    long long end = t_now_ms() + 20000;
    while ((answered < CLIENTS || echoed < dgrams) && t_now_ms() < end) {
        if (sent < dgrams) {
            uint64_t v = sent;
            if (send(c, &v, 8, 0) == 8)
                sent++;
        }
        int n = T_OK(volley_loop_poll(l, ev, 64, 10));
        for (int i = 0; i < n; i++) {
            volley_conn *conn = ev[i].conn;
            switch (ev[i].type) {
            case VOLLEY_EV_DGRAM: {
                T_ASSERT(ev[i].user == &udp_user);
                struct volley_dgram d[64];
                int k;
                while ((k = T_OK(volley_recv(s, d, 64))) > 0) {
                    udp_got += (unsigned)k;
                    T_EQ(volley_send(s, d, (unsigned)k), k); /* echo */
                }
                break;
            }
            case VOLLEY_EV_READABLE: {
                char buf[64];
                ssize_t got = volley_conn_read(conn, buf, sizeof buf);
                T_ASSERT(got > 0);
                if (ev[i].user == NULL) { /* accepted: echo */
                    T_EQ(volley_conn_write(conn, buf, (size_t)got), got);
                } else { /* dialed: the answer */
                    volley_conn **slot = ev[i].user;
                    char want[16];
                    int len =
                        snprintf(want, sizeof want, "conn %d", (int)(slot - dialed));
                    T_EQ(got, len);
                    T_ASSERT(!memcmp(buf, want, (size_t)len));
                    answered++;
                }
                break;
            }
            default:
                break;
            }
        }
        uint64_t w;
        while (recv(c, &w, 8, 0) == 8)
            echoed++;
    }
    T_EQ(answered, CLIENTS);
    T_EQ(udp_got, dgrams);
    T_EQ(echoed, dgrams);
    close(c);
    volley_close(s);
    volley_loop_close(l, 0);
    return 0;
}

/* volley_recv_wait on a socket sharing the ring sleeps in the loop's ring;
 * a connection's events that come meanwhile wait for volley_loop_poll. */
static int case_recv_wait(void)
{
    volley_loop *l = loop_new();
    int user;
    volley_sock *s = sock_on(l, &user, VOLLEY_BACKEND_AUTO);
    volley_conn *lis, *dc;
    T_OK(volley_listen(l, &lis, "127.0.0.1:0", NULL, NULL));
    struct volley_addr la;
    T_OK(volley_conn_addr(lis, &la, NULL));
    char where[64];
    T_OK(volley_addr_format(&la, where, sizeof where));
    T_OK(volley_dial(l, &dc, where, NULL, 5000, NULL));
    int c = client_for(s);
    uint64_t v = 5;
    T_EQ(send(c, &v, 8, 0), 8);
    struct volley_dgram d[4];
    int n = 0;
    for (int i = 0; i < 100 && n == 0; i++)
        n = T_OK(volley_recv_wait(s, d, 4, 50));
    T_EQ(n, 1);
    T_EQ(d[0].len, 8);
    /* the dial's CONNECTED and the ACCEPTED were kept for the loop */
    bool connected = false, accepted = false;
    struct volley_event ev[16];
    for (int i = 0; i < 100 && !(connected && accepted); i++) {
        int k = T_OK(volley_loop_poll(l, ev, 16, 20));
        for (int j = 0; j < k; j++) {
            connected |= ev[j].type == VOLLEY_EV_CONNECTED && ev[j].conn == dc;
            accepted |= ev[j].type == VOLLEY_EV_ACCEPTED;
        }
    }
    T_ASSERT(connected && accepted);
    /* volley_wait with nothing there times out */
    T_EQ(volley_wait(s, VOLLEY_WAIT_RECV, 10), 0);
    close(c);
    volley_close(s);
    volley_loop_close(l, 0);
    return 0;
}

/* A small receive ring runs dry under a burst: every datagram is still
 * either received or counted as dropped by the kernel. */
static int case_ring_dry(void)
{
    volley_loop *l = loop_new();
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.loop = l;
    o.rx_ring_bufs = 2;
    o.rx_batch = 2;
    o.disable = VOLLEY_F_GRO;
    volley_sock *s;
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    int c = client_for(s);
    const unsigned total = 3000;
    unsigned sent = 0, got = 0;
    long long end = t_now_ms() + 10000;
    while (t_now_ms() < end) {
        for (int i = 0; i < 64 && sent < total; i++) {
            uint64_t v = sent;
            if (send(c, &v, 8, 0) == 8)
                sent++;
        }
        struct volley_event ev[8];
        (void)T_OK(volley_loop_poll(l, ev, 8, 5));
        got += drain(s, NULL);
        struct volley_stats st = t_stats(s);
        if (sent == total && got + st.rx_kernel_drops == total)
            break;
    }
    struct volley_stats st = t_stats(s);
    T_EQ(got + st.rx_kernel_drops, total);
    T_ASSERT(got > 0);
    close(c);
    volley_close(s);
    volley_loop_close(l, 0);
    return 0;
}

/* Every entry point on a socket whose backend left with its loop: -EPIPE
 * after the argument checks, whatever it did before; the counters stay
 * readable, and what has no error to give says there is nothing. */
static void gone_everywhere(volley_sock *s, const struct volley_addr *peer)
{
    struct volley_dgram d[2];
    struct volley_addr a;
    struct volley_sockerr e[2];
    T_EQ(volley_recv_wait(s, d, 2, 0), -EPIPE);
    T_EQ(volley_recv_wait(s, d, 2, -1), -EPIPE);
    T_EQ(volley_wait(s, VOLLEY_WAIT_SEND, -1), -EPIPE);
    T_EQ(volley_fd(s), -EPIPE);
    T_EQ(volley_local_addr(s, &a), -EPIPE);
    T_EQ(volley_connect(s, "127.0.0.1:9"), -EPIPE);
    T_EQ(volley_connect_addr(s, peer), -EPIPE);
    T_EQ(volley_set_pacing(s, 1000000, 0, 0), -EPIPE);
    T_EQ(volley_set_pacing(s, 0, 0, 0), -EPIPE);
    T_EQ(volley_pacing_delay(s, 100, peer), -EPIPE);
    T_EQ(volley_errors(s, e, 2), -EPIPE);
    /* bad arguments are still bad arguments */
    T_EQ(volley_recv(s, NULL, 2), -EINVAL);
    T_EQ(volley_connect(s, "nonsense"), -EINVAL);
    struct volley_stats st;
    T_EQ(volley_get_stats(s, &st, sizeof st), 0);
    T_EQ(strcmp(volley_backend_name(s), "gone"), 0);
    T_EQ(volley_features(s), 0);
    T_EQ(volley_gso_max_segments(s), 0);
}

/* The loop closes first: a socket that shared the ring can only be
 * closed; a watched one works on alone. */
static int case_loop_closes_first(void)
{
    volley_loop *l = loop_new();
    volley_sock *s = sock_on(l, NULL, VOLLEY_BACKEND_AUTO);
    volley_sock *w = sock_on(l, NULL, VOLLEY_BACKEND_MMSG);
    bool shared = uring_loop();
    volley_loop_close(l, 0);
    struct volley_dgram d[2];
    uint64_t v = 9;
    int c = client_for(w);
    T_EQ(send(c, &v, 8, 0), 8);
    T_EQ(volley_recv_wait(w, d, 2, 2000), 1);
    close(c);
    if (shared) {
        T_EQ(volley_recv(s, d, 2), -EPIPE);
        d[0] = (struct volley_dgram){.data = &v, .len = 8, .peer = t_local(w)};
        T_EQ(volley_send(s, d, 1), -EPIPE);
        T_EQ(volley_wait(s, VOLLEY_WAIT_RECV, 0), -EPIPE);
        gone_everywhere(s, &d[0].peer);
    } else {
        c = client_for(s);
        T_EQ(send(c, &v, 8, 0), 8);
        T_EQ(volley_recv_wait(s, d, 2, 2000), 1);
        close(c);
    }
    volley_close(s);
    volley_close(w);
    return 0;
}

/* Sockets come and go on a loop in any order; entries are reused and a
 * closed socket's events never reach the next one. */
static int case_churn(void)
{
    volley_loop *l = loop_new();
    int users[4];
    volley_sock *s[4];
    for (int i = 0; i < 4; i++)
        s[i] = sock_on(l, &users[i], VOLLEY_BACKEND_AUTO);
    volley_close(s[1]);
    volley_close(s[3]);
    s[1] = sock_on(l, &users[1], VOLLEY_BACKEND_AUTO);
    for (int i = 0; i < 3; i++)
        one_through(l, s[i], &users[i]);
    volley_close(s[0]);
    volley_close(s[1]);
    volley_close(s[2]);
    volley_loop_close(l, 0);
    return 0;
}

/* Zero-copy sends on the loop's ring complete through the loop. */
static int case_zero_copy(void)
{
    T_SKIP_IF(!uring_loop(), "zero-copy is the uring backend's");
    volley_loop *l = loop_new();
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.loop = l;
    o.zc_threshold = 1000;
    volley_sock *s;
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    int rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    T_ASSERT(bind(rx, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t alen = sizeof a;
    T_ASSERT(getsockname(rx, (struct sockaddr *)&a, &alen) == 0);
    char where[32];
    snprintf(where, sizeof where, "127.0.0.1:%u", ntohs(a.sin_port));
    static uint8_t big[1200];
    struct volley_dgram d[16];
    for (int i = 0; i < 16; i++)
        d[i] =
            (struct volley_dgram){.data = big, .len = sizeof big, .peer = t_addr(where)};
    unsigned sent = 0;
    long long end = t_now_ms() + 5000;
    while (sent < 160 && t_now_ms() < end) {
        int r = volley_send(s, d, 16);
        T_ASSERT(r >= 0);
        sent += (unsigned)r;
        struct volley_event ev[8];
        (void)T_OK(volley_loop_poll(l, ev, 8, 1));
        char buf[2048];
        while (recv(rx, buf, sizeof buf, 0) > 0)
            ;
    }
    T_EQ(sent, 160);
    volley_close(s); /* waits for the last notifications through the loop */
    close(rx);
    volley_loop_close(l, 0);
    return 0;
}

static int case_bad_input(void)
{
    volley_loop *l = loop_new();
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.loop = l;
    volley_sock *a, *b;
    T_EQ(volley_pair(&a, &b, &o), -EINVAL);
    volley_loop_close(l, 0);
    return 0;
}

/* Joining the loop fails cleanly: the buffer group cannot be registered
 * on the loop's ring (uring), the watch cannot be set (epoll, and uring
 * sockets on an epoll loop): the open fails with that error, leaks no
 * descriptor, and the loop serves the next socket as before. */
static int case_faults(void)
{
    volley_loop *l = loop_new();
    int fds = t_count_fds();
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.loop = l;
    volley_sock *s = NULL;
    if (uring_loop()) {
        volley__sys_fault_set(VOLLEY__SYS_URING_REGISTER, 1, 1, ENOMEM, 0);
        T_EQ(volley_open(&s, "127.0.0.1:0", &o), -ENOMEM);
        volley__sys_fault_set(VOLLEY__SYS_URING_REGISTER, 1, 1, EPERM, 0);
        T_EQ(volley_open(&s, "127.0.0.1:0", &o), -ENOTSUP);
        volley__sys_fault_set(VOLLEY__SYS_URING_SUBMIT, 1, 1, EBUSY, 0);
        T_EQ(volley_open(&s, "127.0.0.1:0", &o), -EBUSY);
    } else {
        volley__sys_fault_set(VOLLEY__SYS_EPOLL_CTL, 1, 1, ENOMEM, 0);
        T_EQ(volley_open(&s, "127.0.0.1:0", &o), -ENOMEM);
        o.backend = VOLLEY_BACKEND_URING;
        if (t_backend_err(VOLLEY_BACKEND_URING) == 0) {
            volley__sys_fault_set(VOLLEY__SYS_EPOLL_CTL, 1, 1, EPERM, 0);
            T_EQ(volley_open(&s, "127.0.0.1:0", &o), -EPERM);
        }
        o.backend = VOLLEY_BACKEND_AUTO;
    }
    volley__sys_fault_clear();
    T_ASSERT(s == NULL);
    T_EQ(t_count_fds(), fds);
    int user;
    s = sock_on(l, &user, VOLLEY_BACKEND_AUTO);
    one_through(l, s, &user);
    volley_close(s);
    volley_loop_close(l, 0);
    return 0;
}

/* A send that stops short for lack of room (an AF_UNIX peer that does not
 * read) is followed, once the peer reads, by a DGRAM event with
 * VOLLEY_WAIT_SEND, and the next send goes. For the socket on the ring and
 * for a watched one. */
static int case_send_room(void)
{
    /* (uring on an epoll loop: volley_fd is its eventfd, room is watched on
     * the socket's own fd) */
    const unsigned bes[] = {VOLLEY_BACKEND_AUTO, VOLLEY_BACKEND_MMSG,
                            VOLLEY_BACKEND_URING};
    for (size_t b = 0; b < T_COUNT(bes); b++) {
        t_context("backend %u", bes[b]);
        if (t_backend_err(bes[b]) < 0)
            continue;
        volley_loop *l = loop_new();
        int sv[2];
        T_ASSERT(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) ==
                 0);
        int user;
        struct volley_opts o = VOLLEY_OPTS_INIT;
        o.backend = bes[b];
        o.loop = l;
        o.loop_user = &user;
        volley_sock *s;
        T_OK(volley_wrap(&s, sv[0], &o));
        static uint8_t buf[512];
        struct volley_dgram d[64];
        for (int i = 0; i < 64; i++)
            d[i] = (struct volley_dgram){.data = buf, .len = sizeof buf};
        /* fill the peer's queue: a call that takes fewer than asked */
        int r = 64, calls = 0;
        while (r == 64 && calls++ < 1000)
            r = T_OK(volley_send(s, d, 64));
        T_ASSERT(r < 64);
        /* no room yet: no SEND (a few looks) */
        struct volley_event ev[8];
        for (int i = 0; i < 3; i++) {
            int n = T_OK(volley_loop_poll(l, ev, 8, 0));
            for (int j = 0; j < n; j++)
                T_ASSERT(
                    !(ev[j].type == VOLLEY_EV_DGRAM && ev[j].tag & VOLLEY_WAIT_SEND));
        }
        char sink[1024];
        while (recv(sv[1], sink, sizeof sink, 0) > 0)
            ;
        uint64_t tag = 0;
        for (int i = 0; i < 100 && !(tag & VOLLEY_WAIT_SEND); i++)
            tag |= wait_dgram(l, &user, NULL);
        T_ASSERT(tag & VOLLEY_WAIT_SEND);
        T_ASSERT(T_OK(volley_send(s, d, 1)) == 1);
        volley_close(s);
        close(sv[1]);
        volley_loop_close(l, 0);
    }
    return 0;
}

static const struct t_loop_case defs[] = {
    {"send_room", case_send_room},
    {"faults", case_faults},
    {"events", case_events},
    {"user_null", case_user_null},
    {"forced_backends", case_forced_backends},
    {"udp_and_tcp", case_udp_and_tcp},
    {"recv_wait", case_recv_wait},
    {"ring_dry", case_ring_dry},
    {"loop_closes_first", case_loop_closes_first},
    {"churn", case_churn},
    {"zero_copy", case_zero_copy},
    {"bad_input", case_bad_input},
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct t_run how = {.flags = T_FORK, .case_s = 60, .total_s = 290};
    return t_main_loops(defs, T_COUNT(defs), &how, argc, argv);
}
