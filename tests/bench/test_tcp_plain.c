/* SPDX-License-Identifier: MIT */
/*
 * The plain client of `volley bench --tcp` (bench/tcp_plain.c) against
 * servers in this process that behave and that do not: it must count the
 * requests of a good echo, also when the echo comes back a byte at a time,
 * and end with its reason, by itself and bounded, whatever a bad server
 * does: a reply that differs, one byte too many, a connection closed or
 * never answered, nobody listening.
 */
#include "bench.h"
#include "cli.h"
#include "seq.h"
#include "t.h"

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* What tcp_plain.c takes from the tool's cli.c, which has the whole
 * command around it. */
_Atomic int cli_stop;
atomic_bool cli_halt;

int64_t cli_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

int64_t cli_real_ns(void)
{
    return 0;
}

double cli_ns_seconds(int64_t ns)
{
    return (double)ns / 1e9;
}

int cli_ms_until(int64_t now, int64_t when)
{
    if (when <= now)
        return 0;
    return when - now >= NS_PER_S ? 1000 : (int)((when - now + 999999) / 1000000);
}

/* ---- the servers ---- */

enum srv_mode {
    S_ECHO,    /* as it should */
    S_DRIBBLE, /* the echo a byte per write */
    S_CORRUPT, /* one byte changed, from the 1000th byte echoed on */
    S_EXTRA,   /* one byte more than was sent */
    S_CLOSE,   /* closes the connection on its first request */
    S_SILENT,  /* reads and never answers */
};

#define MAX_SRV_CONNS 16
#define DURATION_NS   (100 * NS_PER_MS)

struct srv {
    enum srv_mode mode;
    int lfd;
    uint16_t port;
    atomic_bool stop;
    pthread_t thread;
};

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* What the server does with n bytes read on fd, after echoed bytes
 * before them; false: the connection is to go. */
static bool answer(const struct srv *s, int fd, uint8_t *buf, size_t n, uint64_t *echoed)
{
    bool ok = true;

    switch (s->mode) {
    case S_ECHO:
        return write_all(fd, buf, n);
    case S_DRIBBLE:
        for (size_t i = 0; i < n && ok; i++)
            ok = write_all(fd, buf + i, 1);
        return ok;
    case S_CORRUPT:
        if (*echoed + n > 1000)
            buf[n - 1] ^= 0x5a;
        *echoed += n;
        return write_all(fd, buf, n);
    case S_EXTRA:
        buf[n] = 'x';
        return write_all(fd, buf, n + 1);
    case S_CLOSE:
        return false;
    case S_SILENT:
        return true;
    }
    return false;
}

static void *serve(void *arg)
{
    struct srv *s = arg;
    struct pollfd p[1 + MAX_SRV_CONNS] = {{.fd = s->lfd, .events = POLLIN}};
    static uint8_t buf[65536 + 1];
    uint64_t echoed[1 + MAX_SRV_CONNS] = {0};
    nfds_t n = 1;

    while (!atomic_load(&s->stop)) {
        if (poll(p, n, 20) <= 0)
            continue;
        if ((p[0].revents & POLLIN) && n < 1 + MAX_SRV_CONNS) {
            int fd = accept(s->lfd, NULL, NULL);

            if (fd >= 0) {
                echoed[n] = 0;
                p[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
            }
        }
        for (nfds_t i = 1; i < n; i++) {
            ssize_t got;

            if (!p[i].revents)
                continue;
            got = read(p[i].fd, buf, sizeof(buf) - 1);
            if (got > 0 && answer(s, p[i].fd, buf, (size_t)got, &echoed[i]))
                continue;
            if (got < 0 && errno == EINTR)
                continue;
            close(p[i].fd);
            p[i] = p[--n];
            echoed[i] = echoed[n];
            i--;
        }
    }
    for (nfds_t i = 1; i < n; i++)
        close(p[i].fd);
    return NULL;
}

static void srv_start(struct srv *s, enum srv_mode mode)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);

    s->mode = mode;
    atomic_store(&s->stop, false);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    T_ASSERT(s->lfd >= 0);
    T_ASSERT(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
    T_ASSERT(listen(s->lfd, 64) == 0);
    T_ASSERT(getsockname(s->lfd, (struct sockaddr *)&a, &len) == 0);
    s->port = ntohs(a.sin_port);
    T_ASSERT(pthread_create(&s->thread, NULL, serve, s) == 0);
}

static void srv_stop(struct srv *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

/* The client against a server of this mode: its return, why in why. */
static int against(enum srv_mode mode, unsigned conns, size_t size,
                   struct tcp_plain_result *r, char *why, size_t why_size)
{
    struct srv s;
    int err;

    srv_start(&s, mode);
    err = tcp_plain_run(
        &(struct tcp_plain_cfg){
            .port = s.port, .conns = conns, .size = size, .duration_ns = DURATION_NS},
        r, why, why_size);
    srv_stop(&s);
    printf("  mode %d, %u conns, %zu B: %d %s\n", (int)mode, conns, size, err, why);
    return err;
}

/* ---- the cases ---- */

static int good_echo(void)
{
    static const size_t sizes[] = {1, 11, 12, 128, 4096, 65536};
    struct tcp_plain_result r;
    char why[200] = "";

    for (size_t i = 0; i < T_COUNT(sizes); i++) {
        t_context("%zu bytes", sizes[i]);
        T_EQ(against(S_ECHO, 8, sizes[i], &r, why, sizeof(why)), 0);
        T_ASSERT(r.requests > 0 && r.seconds > 0);
        T_ASSERT(r.p50_us > 0 && r.p50_us <= r.p99_us);
    }
    return 0;
}

static int dribbled_echo(void)
{
    struct tcp_plain_result r;
    char why[200] = "";

    T_EQ(against(S_DRIBBLE, 4, 300, &r, why, sizeof(why)), 0);
    T_ASSERT(r.requests > 0);
    return 0;
}

static int corrupt_reply(void)
{
    struct tcp_plain_result r;
    char why[200] = "";

    T_EQ(against(S_CORRUPT, 2, 128, &r, why, sizeof(why)), -EPROTO);
    T_ASSERT(strstr(why, "differs from the request at byte 127 of 128"));
    return 0;
}

static int extra_byte(void)
{
    struct tcp_plain_result r;
    char why[200] = "";

    /* the byte too many comes with the reply or after it: either way */
    T_EQ(against(S_EXTRA, 1, 128, &r, why, sizeof(why)), -EPROTO);
    T_ASSERT(strstr(why, "differs") || strstr(why, "no request out"));
    return 0;
}

static int server_closes(void)
{
    struct tcp_plain_result r;
    char why[200] = "";
    int err = against(S_CLOSE, 3, 128, &r, why, sizeof(why));

    /* a FIN, or a reset when the request was still unread */
    T_ASSERT(err == -ECONNRESET);
    T_ASSERT(strstr(why, "closed it") || strstr(why, "read: "));
    return 0;
}

static int server_silent(void)
{
    struct tcp_plain_result r;
    char why[200] = "";

    T_EQ(against(S_SILENT, 3, 128, &r, why, sizeof(why)), -ETIMEDOUT);
    T_ASSERT(strstr(why, "3 replies still missing"));
    T_EQ(r.requests, 0);
    return 0;
}

static int nobody_listening(void)
{
    struct srv s;
    struct tcp_plain_result r;
    char why[200] = "";
    uint16_t port;

    srv_start(&s, S_ECHO); /* a port that was free, then closed */
    srv_stop(&s);
    port = s.port;
    T_EQ(tcp_plain_run(
             &(struct tcp_plain_cfg){
                 .port = port, .conns = 2, .size = 128, .duration_ns = DURATION_NS},
             &r, why, sizeof(why)),
         -ECONNREFUSED);
    T_ASSERT(strstr(why, "connect"));
    return 0;
}

static int bad_config(void)
{
    struct tcp_plain_result r;
    char why[200] = "";
    struct tcp_plain_cfg c = {.port = 9, .conns = 1, .size = 1, .duration_ns = 1};

    c.conns = 0;
    T_EQ(tcp_plain_run(&c, &r, why, sizeof(why)), -EINVAL);
    c.conns = 1;
    c.size = 0;
    T_EQ(tcp_plain_run(&c, &r, why, sizeof(why)), -EINVAL);
    c.size = 1;
    c.duration_ns = 0;
    T_EQ(tcp_plain_run(&c, &r, why, sizeof(why)), -EINVAL);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(good_echo),        T_CASE(dribbled_echo), T_CASE(corrupt_reply),
        T_CASE(extra_byte),       T_CASE(server_closes), T_CASE(server_silent),
        T_CASE(nobody_listening), T_CASE(bad_config),
    };
    struct t_run how = {.case_s = 30, .total_s = 120};

    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
