/* SPDX-License-Identifier: MIT */
/* What the stream tests share: see tstream.h. */
#include "tstream.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the loop backend of the running case ---- */

struct volley_loop_opts lopts(void)
{
    struct volley_loop_opts o = VOLLEY_LOOP_OPTS_INIT;
    o.backend = t_loop_backend()->id;
    return o;
}

struct volley_conn_opts copts(void)
{
    struct volley_conn_opts o = VOLLEY_CONN_OPTS_INIT;
    return o;
}

/* A loop of the case's backend; skips the case where uring loops do not
 * open here. */
volley_loop *loop_with(const struct volley_loop_opts *o)
{
    volley_loop *l = NULL;
    int r = volley_loop_open(&l, o);
    T_SKIP_IF(r == -ENOTSUP && o->backend == VOLLEY_BACKEND_URING,
              "uring loops do not open here");
    if (r < 0)
        T_FAIL("volley_loop_open(%s): %s", t_loop_backend()->name, volley_strerror(r));
    T_ASSERT(l != NULL);
    if (strcmp(volley_loop_backend(l), t_loop_backend()->name))
        T_FAIL("volley_loop_backend = %s, forced %s", volley_loop_backend(l),
               t_loop_backend()->name);
    return l;
}

volley_loop *loop_new(void)
{
    struct volley_loop_opts o = lopts();
    return loop_with(&o);
}

/* At least n descriptors; skips when the hard limit is lower. */
void need_fds(rlim_t n)
{
    struct rlimit rl;
    T_ASSERT(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur >= n)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < n) {
        char why[128];
        snprintf(why, sizeof why, "needs %lu descriptors, the hard limit is %lu",
                 (unsigned long)n, (unsigned long)rl.rlim_max);
        t_skip_exit(__FILE__, __LINE__, why);
    }
    rl.rlim_cur = rl.rlim_max;
    T_ASSERT(setrlimit(RLIMIT_NOFILE, &rl) == 0);
}

/* ---- streams from seeds ---- */

uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Bytes off .. off+len of stream seed. */
void gen(uint64_t seed, uint64_t off, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        uint64_t w = mix(seed * 0x100000001b3ull ^ (off >> 3));
        for (unsigned k = off & 7; k < 8 && len; k++, len--, off++)
            *p++ = (uint8_t)(w >> (8 * k));
    }
}

uint8_t scratch[256 * KiB], check_buf[256 * KiB];

/* Fail unless buf is bytes off .. off+len of stream seed. */
void stream_at(const char *file, int line, const void *buf, size_t len, uint64_t seed,
               uint64_t off, const char *what)
{
    const uint8_t *p = buf;
    while (len) {
        size_t k = len < sizeof check_buf ? len : sizeof check_buf;
        gen(seed, off, check_buf, k);
        for (size_t i = 0; i < k; i++)
            if (p[i] != check_buf[i])
                t_fail_at(file, line, "%s: stream byte %llu is %u, want %u", what,
                          (unsigned long long)(off + i), p[i], check_buf[i]);
        p += k;
        off += k;
        len -= k;
    }
}

/* ---- addresses ---- */

struct volley_addr conn_local(const volley_conn *c)
{
    struct volley_addr a;
    memset(&a, 0xee, sizeof a);
    T_OK(volley_conn_addr(c, &a, NULL));
    return a;
}

struct volley_addr conn_peer(const volley_conn *c)
{
    struct volley_addr a;
    memset(&a, 0xee, sizeof a);
    T_OK(volley_conn_addr(c, NULL, &a));
    return a;
}

/* "ip:port" with the port c is bound to (ip: "127.0.0.1", "[::1]"), in one
 * of a few static buffers. */
const char *addr_of(const volley_conn *c, const char *ip)
{
    static char bufs[4][80];
    static unsigned k;
    char *b = bufs[k++ % 4];
    struct volley_addr a = conn_local(c);
    snprintf(b, 80, "%s:%u", ip, volley_addr_port(&a));
    return b;
}

/* ---- events ---- */

const char *ev_name(unsigned t)
{
    static const char *const names[] = {
        "?",   "ACCEPTED", "CONNECTED", "READABLE", "SENT",  "WRITABLE", "DRAINED",
        "EOF", "TIMEOUT",  "CLOSED",    "RECEIVED", "DGRAM", "TIMER",    "WAKE"};
    return t < T_COUNT(names) ? names[t] : "?";
}

/* Events polled and not taken yet, oldest first. */
struct volley_event evq[EVQ_MAX];
unsigned evq_n;

/* Poll once, up to timeout_ms, queueing what comes. */
int pull(volley_loop *l, int timeout_ms)
{
    if (evq_n > EVQ_MAX - 64)
        T_FAIL("%u events polled and not taken", evq_n);
    int r = volley_loop_poll(l, evq + evq_n, 64, timeout_ms);
    if (r < 0)
        T_FAIL("volley_loop_poll: %s", volley_strerror(r));
    T_ASSERT(r <= 64);
    for (int i = 0; i < r; i++)
        if (evq[evq_n + (unsigned)i].type < VOLLEY_EV_ACCEPTED ||
            evq[evq_n + (unsigned)i].type > VOLLEY_EV_WAKE)
            T_FAIL("event of unknown type %u", evq[evq_n + (unsigned)i].type);
    evq_n += (unsigned)r;
    return r;
}

void evq_remove(unsigned i)
{
    memmove(evq + i, evq + i + 1, (evq_n - i - 1) * sizeof *evq);
    evq_n--;
}

/* Index of the first queued event of type on c (NULL: any conn), or -1. */
int queued_ev(unsigned type, const volley_conn *c)
{
    for (unsigned i = 0; i < evq_n; i++)
        if (evq[i].type == type && (!c || evq[i].conn == c))
            return (int)i;
    return -1;
}

/* Drop every queued event of type on c. */
void drop_ev(unsigned type, const volley_conn *c)
{
    int i;
    while ((i = queued_ev(type, c)) >= 0)
        evq_remove((unsigned)i);
}

const char *evq_text(void)
{
    static char b[512];
    size_t o = 0;
    b[0] = 0;
    for (unsigned i = 0; i < evq_n && o < sizeof b - 40; i++)
        o += (size_t)snprintf(b + o, sizeof b - o, "%s%s(%p,%d)", i ? " " : "",
                              ev_name(evq[i].type), (void *)evq[i].conn, evq[i].err);
    return evq_n ? b : "none";
}

/* Take the first event of type on c (NULL: any), polling up to
 * timeout_ms for it. */
bool take_within(volley_loop *l, unsigned type, const volley_conn *c, int timeout_ms,
                 struct volley_event *out)
{
    long long end = t_now_ms() + timeout_ms;
    for (;;) {
        int i = queued_ev(type, c);
        if (i >= 0) {
            if (out)
                *out = evq[i];
            evq_remove((unsigned)i);
            return true;
        }
        long long left = end - t_now_ms();
        if (left <= 0)
            return false;
        pull(l, left > 100 ? 100 : (int)left);
    }
}

struct volley_event take_at(const char *file, int line, volley_loop *l, unsigned type,
                            const volley_conn *c, int ms)
{
    struct volley_event e;
    if (!take_within(l, type, c, ms, &e))
        t_fail_at(file, line, "no %s event for %p within %d ms; queued: %s",
                  ev_name(type), (const void *)c, ms, evq_text());
    return e;
}

/* Poll for up to ms, queueing everything. */
void settle(volley_loop *l, int ms)
{
    long long end = t_now_ms() + ms;
    while (t_now_ms() < end)
        pull(l, 10);
}

/* ---- a connected pair on one loop ---- */

char ln_user, cli_user, srv_user;

void duo_connect(struct duo *d, const struct volley_conn_opts *o)
{
    T_OK(volley_listen(d->l, &d->ln, "127.0.0.1:0", o, &ln_user));
    T_OK(volley_dial(d->l, &d->cli, addr_of(d->ln, "127.0.0.1"), o, 5000, &cli_user));
    struct volley_event e = TAKE(d->l, VOLLEY_EV_ACCEPTED, NULL);
    d->srv = e.conn;
    volley_conn_set_user(d->srv, &srv_user);
    TAKE(d->l, VOLLEY_EV_CONNECTED, d->cli);
}

void duo_open(struct duo *d, const struct volley_loop_opts *lo,
              const struct volley_conn_opts *o)
{
    evq_n = 0;
    d->l = loop_with(lo);
    duo_connect(d, o);
}

void duo_default(struct duo *d)
{
    struct volley_loop_opts lo = lopts();
    struct volley_conn_opts o = copts();
    duo_open(d, &lo, &o);
}

/* Write all n bytes (the queue takes them: n is small), or fail. */
void put(volley_conn *c, const void *buf, size_t n)
{
    ssize_t r = volley_conn_write(c, buf, n);
    if (r != (ssize_t)n)
        T_FAIL("volley_conn_write(%zu) = %zd (%s)", n, r,
               r < 0 ? volley_strerror((int)r) : "short");
}

/* Read exactly n bytes, polling up to 5 s while short. */
void read_exact(volley_loop *l, volley_conn *c, void *buf, size_t n)
{
    size_t got = 0;
    long long end = t_now_ms() + 5000;
    while (got < n) {
        ssize_t r = volley_conn_read(c, (char *)buf + got, n - got);
        if (r < 0)
            T_FAIL("volley_conn_read after %zu of %zu bytes: %s", got, n,
                   volley_strerror((int)r));
        got += (size_t)r;
        if (got < n) {
            if (t_now_ms() > end)
                T_FAIL("read %zu of %zu bytes in 5 s", got, n);
            pull(l, 20);
            drop_ev(VOLLEY_EV_READABLE, c);
        }
    }
}

/* Close c and take its CLOSED event: its err. */
int close_wait(volley_loop *l, volley_conn *c)
{
    T_EXPECT(volley_conn_close(c), 0);
    return TAKE(l, VOLLEY_EV_CLOSED, c).err;
}

/* Close both ends of a connection, then take both CLOSED events (each
 * end's close may wait for the other's FIN). */
void close_both(volley_loop *l, volley_conn *a, volley_conn *b)
{
    T_EXPECT(volley_conn_close(a), 0);
    T_EXPECT(volley_conn_close(b), 0);
    T_EXPECT(TAKE(l, VOLLEY_EV_CLOSED, a).err, 0);
    T_EXPECT(TAKE(l, VOLLEY_EV_CLOSED, b).err, 0);
}

void duo_close(struct duo *d)
{
    close_both(d->l, d->cli, d->srv);
    T_EXPECT(close_wait(d->l, d->ln), 0);
    pull(d->l, 0);
    volley_loop_close(d->l, 0);
}

struct volley_loop_stats loop_stats(const volley_loop *l)
{
    struct volley_loop_stats st;
    T_OK(volley_loop_get_stats(l, &st, sizeof st));
    return st;
}

struct volley_conn_stats conn_stats(const volley_conn *c)
{
    struct volley_conn_stats st;
    T_OK(volley_conn_get_stats(c, &st, sizeof st));
    return st;
}

/* ---- plain sockets (the peers volley does not drive) ---- */

void timeouts(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    T_ASSERT(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    T_ASSERT(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0);
}

/* A blocking TCP socket listening on where ("127.0.0.1:0"); *addr gets
 * "127.0.0.1:PORT". */
int plain_listen(const char *where, int backlog, char addr[64])
{
    struct volley_addr a = t_addr(where);
    int fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    T_ASSERT(fd >= 0);
    T_ASSERT(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int)) == 0);
    T_ASSERT(bind(fd, &a.sa, volley_addr_len(&a)) == 0);
    T_ASSERT(listen(fd, backlog) == 0);
    socklen_t len = sizeof a;
    T_ASSERT(getsockname(fd, &a.sa, &len) == 0);
    T_ASSERT(volley_addr_format(&a, addr, 64) > 0);
    return fd;
}

/* A blocking TCP socket connected to addr, with 5 s send and receive
 * timeouts; rcvbuf > 0 sets SO_RCVBUF first. */
int plain_connect(const char *addr, int rcvbuf)
{
    struct volley_addr a = t_addr(addr);
    int fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    T_ASSERT(fd >= 0);
    if (rcvbuf > 0)
        T_ASSERT(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
    timeouts(fd, 5000);
    if (connect(fd, &a.sa, volley_addr_len(&a)) != 0)
        T_FAIL("connect(%s): %s", addr, strerror(errno));
    return fd;
}

int plain_accept(int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        T_FAIL("accept: %s", strerror(errno));
    timeouts(fd, 5000);
    return fd;
}

/* Close fd with a reset (SO_LINGER 0). */
void plain_reset(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    T_ASSERT(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    close(fd);
}

/* Receive what is there now without blocking: the count, 0 at EOF,
 * -errno (-EAGAIN: nothing yet). */
ssize_t plain_recv_now(int fd, void *buf, size_t n)
{
    ssize_t r = recv(fd, buf, n, MSG_DONTWAIT);
    return r < 0 ? -errno : r;
}

void plain_send_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r <= 0)
            T_FAIL("send: %s", r < 0 ? strerror(errno) : "0");
        p += r;
        n -= (size_t)r;
    }
}

void full_listener_open(struct full_listener *f)
{
    f->lfd = plain_listen("127.0.0.1:0", 0, f->addr);
    /* backlog 0 holds one connection: fill it */
    f->filler = plain_connect(f->addr, 0);
    struct volley_addr a = t_addr(f->addr);
    f->extra = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    T_ASSERT(f->extra >= 0);
    (void)!connect(f->extra, &a.sa, volley_addr_len(&a));
}

void full_listener_close(struct full_listener *f)
{
    close(f->extra);
    close(f->filler);
    close(f->lfd);
}
