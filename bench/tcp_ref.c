/* SPDX-License-Identifier: MIT */
/*
 * The reference server of `volley bench --tcp`: a TCP echo server in plain
 * C, no libvolley, written the way the usual epoll tutorials write it:
 * non-blocking sockets, level-triggered epoll, one read(2) per readiness
 * into a static buffer, written straight back; what write(2) does not take
 * is kept per connection, and the connection then waits for EPOLLOUT (and
 * reads nothing more) until it has gone. TCP_NODELAY is set as volley sets
 * it by default, so the comparison is about the I/O path alone.
 *
 * It runs as the hidden command `volley tcp-ref ADDR [--duration S]
 * [--json]`, so that the bench can start it as a process like the others.
 */
#include "bench.h"

#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_EVENTS  64
#define READ_BUF    65536
#define WAIT_MS     100
#define REF_SECONDS 60

struct ref_conn {
    int fd;
    char *pending; /* bytes write(2) did not take yet */
    size_t len, cap;
};

struct ref_stats {
    uint64_t accepted, closed, bytes, syscalls;
};

static char buf[READ_BUF];

static void ref_usage(void)
{
    printf("Usage: volley tcp-ref ADDR [options]\n"
           "The plain epoll TCP echo server `volley bench --tcp` compares against.\n"
           "\n"
           "  -d, --duration S     stop after S seconds, 0.001 to %d (3 decimals;\n"
           "                       default %d)\n"
           "  -j, --json           print the summary as one JSON object\n"
           "  -h, --help           show this help\n"
           "\n" CLI_NUMBER_HELP,
           MAX_SECONDS, REF_SECONDS);
}

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL, 0);

    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static int listen_on(const struct volley_addr *a)
{
    int one = 1, fd = socket(a->sa.sa_family, SOCK_STREAM, 0);

    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, &a->sa, volley_addr_len(a)) < 0 || listen(fd, SOMAXCONN) < 0 ||
        set_nonblocking(fd) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static void drop(int ep, struct ref_conn *c, struct ref_stats *st)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pending);
    free(c);
    st->closed++;
    st->syscalls += 2;
}

static void accept_all(int ep, int lfd, struct ref_stats *st)
{
    for (;;) {
        struct epoll_event ev = {.events = EPOLLIN};
        struct ref_conn *c;
        int one = 1, fd = accept(lfd, NULL, NULL);

        st->syscalls++;
        if (fd < 0)
            return; /* EAGAIN: no more for now */
        c = calloc(1, sizeof(*c));
        if (!c || set_nonblocking(fd) < 0) {
            free(c);
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        st->accepted++;
        st->syscalls += 4;
    }
}

/* Keeps what write(2) left; false when out of memory. */
static bool keep(struct ref_conn *c, const char *p, size_t n)
{
    if (c->len + n > c->cap) {
        size_t cap = (c->len + n) * 2;
        char *q = realloc(c->pending, cap);

        if (!q)
            return false;
        c->pending = q;
        c->cap = cap;
    }
    memcpy(c->pending + c->len, p, n);
    c->len += n;
    return true;
}

static void watch(int ep, struct ref_conn *c, uint32_t events, struct ref_stats *st)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    st->syscalls++;
}

static void on_readable(int ep, struct ref_conn *c, struct ref_stats *st)
{
    ssize_t n = read(c->fd, buf, sizeof(buf)), w;

    st->syscalls++;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        drop(ep, c, st);
        return;
    }
    if (n < 0)
        return;
    w = write(c->fd, buf, (size_t)n);
    st->syscalls++;
    if (w < 0 && errno != EAGAIN) {
        drop(ep, c, st);
        return;
    }
    if (w < 0)
        w = 0;
    st->bytes += (uint64_t)w;
    if (w < n) {
        if (!keep(c, buf + w, (size_t)(n - w))) {
            drop(ep, c, st);
            return;
        }
        watch(ep, c, EPOLLOUT, st);
    }
}

static void on_writable(int ep, struct ref_conn *c, struct ref_stats *st)
{
    ssize_t w = write(c->fd, c->pending, c->len);

    st->syscalls++;
    if (w < 0 && errno != EAGAIN) {
        drop(ep, c, st);
        return;
    }
    if (w <= 0)
        return;
    st->bytes += (uint64_t)w;
    memmove(c->pending, c->pending + w, c->len - (size_t)w);
    c->len -= (size_t)w;
    if (c->len == 0)
        watch(ep, c, EPOLLIN, st);
}

static int serve(int lfd, int64_t end, struct ref_stats *st)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, events[MAX_EVENTS];
    int ep = epoll_create1(0);

    if (ep < 0)
        return -errno;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    while (!cli_stop && cli_mono_ns() < end) {
        int n = epoll_wait(ep, events, MAX_EVENTS, WAIT_MS);

        st->syscalls++;
        for (int i = 0; i < n; i++) {
            struct ref_conn *c = events[i].data.ptr;

            if (!c)
                accept_all(ep, lfd, st);
            else if (events[i].events & EPOLLOUT)
                on_writable(ep, c, st);
            else
                on_readable(ep, c, st);
        }
    }
    /* Connections still open are left to exit(2): the process ends here. */
    close(ep);
    return 0;
}

static int ref_run(const struct flow_cfg *c)
{
    struct ref_stats st = {0};
    int64_t start;
    int err, lfd = listen_on(&c->peer);

    if (lfd < 0)
        return cli_runtime_error(c->addr, lfd);
    fprintf(stderr, "%s: listening on %s\n", cli_name, c->addr);
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an EPIPE, not an exit */
    cli_catch_signals();
    start = cli_mono_ns();
    err = serve(lfd, start + c->duration_ns, &st);
    close(lfd);
    if (err < 0)
        return cli_runtime_error("epoll", err);
    if (c->json)
        printf("{\"accepted\":%" PRIu64 ",\"closed\":%" PRIu64 ",\"bytes_out\":%" PRIu64
               ",\"syscalls\":%" PRIu64 ",\"seconds\":%.6f}\n",
               st.accepted, st.closed, st.bytes, st.syscalls,
               cli_ns_seconds(cli_mono_ns() - start));
    else
        printf("echoed %" PRIu64 " bytes over %" PRIu64 " connections\n", st.bytes,
               st.accepted);
    return 0;
}

int cmd_tcp_ref(int argc, char **argv)
{
    static const struct cli_cmd cmd = {
        .shared = CLI_F_DURATION,
        .usage = ref_usage,
        .option = cli_flow_option,
        .operands = cli_bind_addr,
    };
    struct flow_cfg c = {.duration_ns = REF_SECONDS * NS_PER_S};
    int rc = cli_parse(argc, argv, &cmd, &c);

    return rc == PARSE_RUN ? ref_run(&c) : rc;
}
