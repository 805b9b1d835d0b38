/* SPDX-License-Identifier: MIT */
/*
 * The plain client of `volley bench --tcp`: a TCP ping-pong load client in
 * plain C, no libvolley, written the way the usual epoll tutorials write
 * one, so that the bench does not rest on volley's own client alone: one
 * thread, non-blocking sockets with TCP_NODELAY, level-triggered epoll, N
 * connections with one request in flight on each. A connection sends its
 * request (what send(2) does not take waits for EPOLLOUT), reads until
 * the whole echo is in, compares it byte for byte with what it sent, and
 * sends the next. Each request carries its connection and sequence
 * number, so a reply from another request or connection differs too.
 *
 * Every phase has a deadline and any fault ends the run with a reason:
 * a dial that fails or does not finish, a reply that differs, bytes
 * nobody asked for, a connection the server closes or resets, a reply
 * still missing DRAIN_NS after the end. Nothing is allocated per request.
 */
#include "bench.h"

#include "cli.h"
#include "seq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 64
#define CONNECT_NS (6 * NS_PER_S) /* every dial */
#define DRAIN_NS   (1 * NS_PER_S) /* replies in flight at the end */
#define CLOSE_NS   (2 * NS_PER_S) /* the server's side of the closes */
#define STAMP_LEN  12             /* connection (u32) and sequence (u64) */

struct pconn {
    int fd;
    bool connected;
    bool busy;      /* a request is out and its reply not all in */
    bool want_out;  /* epoll watches EPOLLOUT: the request is not all written */
    size_t out, in; /* bytes of the request written, of its reply read */
    uint64_t seq;   /* requests made on this connection */
    int64_t t0;     /* when the request went out */
    uint8_t *req, *rep;
};

struct prun {
    const struct tcp_plain_cfg *cfg;
    struct pconn *pc;
    uint8_t *bufs;
    struct lat_hist *hist;
    int ep;
    bool running;
    unsigned busy; /* requests in flight */
    uint64_t requests;
    char *why;
    size_t why_size;
};

__attribute__((format(printf, 3, 4))) static int fault(struct prun *r, int err,
                                                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->why, r->why_size, fmt, ap);
    va_end(ap);
    return err;
}

static int watch(struct prun *r, unsigned i, uint32_t events, int op)
{
    struct epoll_event ev = {.events = events, .data.u32 = i};

    if (epoll_ctl(r->ep, op, r->pc[i].fd, &ev) < 0)
        return fault(r, -errno, "epoll_ctl: %s", strerror(errno));
    return 0;
}

/* ---- dialing ---- */

static int dial(struct prun *r, unsigned i, const struct sockaddr_in *a)
{
    struct pconn *c = &r->pc[i];
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return fault(r, -errno, "socket: %s", strerror(errno));
    /* as volley and the reference server set it */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)a, sizeof(*a)) < 0 &&
        errno != EINPROGRESS)
        return fault(r, -errno, "connect: %s", strerror(errno));
    return watch(r, i, EPOLLOUT, EPOLL_CTL_ADD);
}

static int connected(struct prun *r, unsigned i)
{
    struct pconn *c = &r->pc[i];
    socklen_t len = sizeof(int);
    int err = 0;

    if (c->connected)
        return 0;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err)
        return fault(r, -err, "connection %u: connect: %s", i, strerror(err));
    c->connected = true;
    return watch(r, i, EPOLLIN, EPOLL_CTL_MOD);
}

/* Every connection dialed, then until each is up or CONNECT_NS passed. */
static int connect_all(struct prun *r, const struct sockaddr_in *a)
{
    struct epoll_event ev[MAX_EVENTS];
    int64_t deadline = cli_mono_ns() + CONNECT_NS;
    unsigned up = 0, n = r->cfg->conns;
    int err = 0;

    for (unsigned i = 0; i < n && err == 0; i++)
        err = dial(r, i, a);
    while (err == 0 && up < n) {
        int64_t now = cli_mono_ns();
        int got;

        if (now >= deadline)
            return fault(r, -ETIMEDOUT, "%u of %u connections not up after %lld s",
                         n - up, n, (long long)(CONNECT_NS / NS_PER_S));
        if (cli_stopping())
            return fault(r, -EINTR, "interrupted");
        got = epoll_wait(r->ep, ev, MAX_EVENTS, cli_ms_until(now, deadline));
        if (got < 0 && errno != EINTR)
            return fault(r, -errno, "epoll_wait: %s", strerror(errno));
        for (int k = 0; k < got && err == 0; k++) {
            unsigned i = ev[k].data.u32;

            if (!r->pc[i].connected) {
                err = connected(r, i);
                up += err == 0;
            }
        }
    }
    return err;
}

/* ---- requests and replies ---- */

/* Writes what is left of connection i's request. */
static int flush(struct prun *r, unsigned i)
{
    struct pconn *c = &r->pc[i];
    size_t size = r->cfg->size;

    while (c->out < size) {
        /* MSG_NOSIGNAL: a server gone is this run's error, not the process's end */
        ssize_t w = send(c->fd, c->req + c->out, size - c->out, MSG_NOSIGNAL);

        if (w > 0) {
            c->out += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (c->want_out)
                return 0;
            c->want_out = true;
            return watch(r, i, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        } else {
            return fault(r, w < 0 ? -errno : -EIO, "connection %u: send: %s", i,
                         w < 0 ? strerror(errno) : "wrote nothing");
        }
    }
    if (c->want_out) {
        c->want_out = false;
        return watch(r, i, EPOLLIN, EPOLL_CTL_MOD);
    }
    return 0;
}

static int send_request(struct prun *r, unsigned i, int64_t now)
{
    struct pconn *c = &r->pc[i];
    uint8_t stamp[STAMP_LEN];
    size_t n = r->cfg->size < STAMP_LEN ? r->cfg->size : STAMP_LEN;

    memcpy(stamp, &i, 4);
    memcpy(stamp + 4, &c->seq, 8);
    memcpy(c->req, stamp, n);
    c->seq++;
    c->out = c->in = 0;
    c->busy = true;
    c->t0 = now;
    r->busy++;
    return flush(r, i);
}

/* The whole reply is in: check it, count it, and ask again while the run
 * lasts. */
static int complete(struct prun *r, unsigned i, int64_t now)
{
    struct pconn *c = &r->pc[i];
    size_t size = r->cfg->size;

    if (c->out < size)
        return fault(r, -EPROTO,
                     "connection %u: %zu reply bytes before the request "
                     "was all written",
                     i, c->in);
    if (memcmp(c->req, c->rep, size) != 0) {
        size_t at = 0;

        while (c->req[at] == c->rep[at])
            at++;
        return fault(r, -EPROTO,
                     "connection %u, request %llu: the reply differs from "
                     "the request at byte %zu of %zu",
                     i, (unsigned long long)(c->seq - 1), at, size);
    }
    c->busy = false;
    r->busy--;
    if (!r->running)
        return 0;
    lat_hist_add(r->hist, (uint64_t)(now - c->t0));
    r->requests++;
    return send_request(r, i, now);
}

/* Connection i is readable (or failed): as much of the reply as is there. */
static int on_input(struct prun *r, unsigned i, int64_t now)
{
    struct pconn *c = &r->pc[i];
    size_t size = r->cfg->size;

    for (;;) {
        /* Idle, a byte is read only to tell what came: any is too much. */
        size_t want = c->busy ? size - c->in : 1;
        uint8_t spare;
        ssize_t n = read(c->fd, c->busy ? c->rep + c->in : &spare, want);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0)
            return fault(r, -errno, "connection %u: read: %s", i, strerror(errno));
        if (n == 0)
            return fault(r, -ECONNRESET,
                         "connection %u: the server closed it with "
                         "%zu of %zu reply bytes in",
                         i, c->busy ? c->in : 0, size);
        if (!c->busy)
            return fault(r, -EPROTO, "connection %u: bytes with no request out", i);
        c->in += (size_t)n;
        if (c->in == size)
            return complete(r, i, now);
    }
}

static int on_event(struct prun *r, const struct epoll_event *ev, int64_t now)
{
    unsigned i = ev->data.u32;
    int err = 0;

    if ((ev->events & EPOLLOUT) && r->pc[i].want_out)
        err = flush(r, i);
    if (err == 0 && (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        err = on_input(r, i, now);
    return err;
}

/* The measured run, then the replies still in flight, each bounded. */
static int run_phase(struct prun *r, struct tcp_plain_result *out)
{
    struct epoll_event ev[MAX_EVENTS];
    int64_t start = cli_mono_ns(), end = start + r->cfg->duration_ns, stop = end;
    int err = 0;

    r->running = true;
    for (unsigned i = 0; i < r->cfg->conns && err == 0; i++)
        err = send_request(r, i, start);
    while (err == 0) {
        int64_t now = cli_mono_ns();
        int n;

        if (r->running && (now >= end || cli_stopping())) {
            r->running = false;
            stop = now;
        }
        if (!r->running && r->busy == 0)
            break;
        if (!r->running && now >= stop + DRAIN_NS)
            return fault(r, -ETIMEDOUT, "%u replies still missing %lld s after the end",
                         r->busy, (long long)(DRAIN_NS / NS_PER_S));
        n = epoll_wait(r->ep, ev, MAX_EVENTS,
                       cli_ms_until(now, r->running ? end : stop + DRAIN_NS));
        if (n < 0 && errno != EINTR)
            return fault(r, -errno, "epoll_wait: %s", strerror(errno));
        now = cli_mono_ns();
        for (int k = 0; k < n && err == 0; k++)
            err = on_event(r, &ev[k], now);
    }
    out->requests = r->requests;
    out->seconds = cli_ns_seconds(stop - start);
    return err;
}

/* The orderly end, as tcp-load's: a FIN on every connection, then until
 * the server has closed each (or CLOSE_NS), so that no server is stopped
 * with connections it has not yet seen end. */
static void close_all(struct prun *r)
{
    struct epoll_event ev[MAX_EVENTS];
    int64_t deadline = cli_mono_ns() + CLOSE_NS;
    unsigned open = 0;

    for (unsigned i = 0; i < r->cfg->conns; i++)
        if (r->pc[i].fd >= 0 && shutdown(r->pc[i].fd, SHUT_WR) == 0)
            open++;
    while (open > 0) {
        int64_t now = cli_mono_ns();
        int n;

        if (now >= deadline)
            return; /* the rest are closed by teardown */
        n = epoll_wait(r->ep, ev, MAX_EVENTS, cli_ms_until(now, deadline));
        for (int k = 0; k < n; k++) {
            struct pconn *c = &r->pc[ev[k].data.u32];
            uint8_t sink[256];
            ssize_t got = c->fd >= 0 ? read(c->fd, sink, sizeof(sink)) : 0;

            if (c->fd >= 0 && (got == 0 || (got < 0 && errno != EAGAIN &&
                                            errno != EWOULDBLOCK && errno != EINTR))) {
                close(c->fd); /* also leaves the epoll set */
                c->fd = -1;
                open--;
            }
        }
    }
}

/* ---- the whole run ---- */

static int setup(struct prun *r)
{
    size_t n = r->cfg->conns, size = r->cfg->size;

    r->pc = calloc(n, sizeof(*r->pc));
    r->bufs = malloc(n * size * 2);
    r->hist = calloc(1, sizeof(*r->hist));
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!r->pc || !r->bufs || !r->hist)
        return fault(r, -ENOMEM, "out of memory");
    if (r->ep < 0)
        return fault(r, -errno, "epoll_create1: %s", strerror(errno));
    for (size_t i = 0; i < n; i++) {
        struct pconn *c = &r->pc[i];

        c->fd = -1;
        c->req = r->bufs + i * size * 2;
        c->rep = c->req + size;
        /* a payload that is not all alike, so that a shift shows */
        for (size_t b = 0; b < size; b++)
            c->req[b] = (uint8_t)(b * 131 + i * 7 + 1);
    }
    return 0;
}

static void teardown(struct prun *r)
{
    for (unsigned i = 0; r->pc && i < r->cfg->conns; i++)
        if (r->pc[i].fd >= 0)
            close(r->pc[i].fd);
    if (r->ep >= 0)
        close(r->ep);
    free(r->pc);
    free(r->bufs);
    free(r->hist);
}

int tcp_plain_run(const struct tcp_plain_cfg *c, struct tcp_plain_result *out, char *why,
                  size_t why_size)
{
    struct prun r = {.cfg = c, .ep = -1, .why = why, .why_size = why_size};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(c->port)};
    int err;

    memset(out, 0, sizeof(*out));
    out->p50_us = out->p99_us = -1;
    if (c->conns == 0 || c->size == 0 || c->duration_ns <= 0)
        return fault(&r, -EINVAL, "no connections, request bytes or time");
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    err = setup(&r);
    if (err == 0)
        err = connect_all(&r, &a);
    if (err == 0)
        err = run_phase(&r, out);
    if (err == 0)
        close_all(&r);
    if (err == 0 && r.hist->n) {
        out->p50_us = (double)lat_hist_pct(r.hist, 50) / 1e3;
        out->p99_us = (double)lat_hist_pct(r.hist, 99) / 1e3;
    }
    teardown(&r);
    return err;
}
