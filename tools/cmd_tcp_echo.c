/* SPDX-License-Identifier: MIT */
/*
 * volley tcp-echo: a TCP echo server on one volley_loop, or with --discard
 * a sink that reads and drops. Echoing takes the received bytes where they
 * lie: volley_conn_peek points at the loop's receive buffers, and those
 * spans are queued back, lent (volley_conn_write_ref, on a uring loop) and
 * consumed at their SENT events, or copied (volley_conn_write, on epoll)
 * and consumed at once; consuming hands the buffers back to the loop.
 * When a send queue is full the bytes stay buffered until WRITABLE or a
 * SENT; a connection holding readq_max bytes stops receiving meanwhile,
 * so a peer that does not read cannot grow the server.
 */
#include "cli.h"
#include "tcpload.h"
#include "team.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A server left running must still stop by itself. */
#define TCP_ECHO_DEFAULT_SECONDS 60
#define TCP_ECHO_BUFFERS         1024
#define TCP_ECHO_EVENTS          256
#define TCP_ECHO_SPANS           16
/* How long queued echoes may still flush once the server stops. */
#define TCP_ECHO_DRAIN_MS 1000

struct echo_cfg {
    struct flow_cfg flow; /* ADDR, --count, --duration, --json */
    unsigned backend;
    unsigned buffers;
    bool discard;
};

struct server {
    const struct echo_cfg *cfg;
    volley_loop *l;
    volley_conn *listener;
    uint64_t accepted, closed, open, resets, errors;
    int first_error;
    int64_t start_ns, end_ns, tick_ns;
    struct volley_loop_stats at_tick;
    unsigned ticks;
    const char *stopped;
    struct team_pub *pub; /* --threads: what this thread publishes */
    /* the most connections open at once (--threads: summed over the
     * threads in the summary); volley's memory: the heap in use before the
     * first connection and at that peak (not with --threads: the heap is
     * the process's) */
    size_t heap0, heap_peak;
    uint64_t peak;
    /* Echo by lending the received spans (uring) rather than copying
     * them (epoll). A lent span holds its receive buffer until its SENT,
     * a poll later: at 1000 connections that is the loop's whole default
     * budget, and in that regime each pause and resume of a connection's
     * receiving costs the epoll loop an epoll_ctl (3 a request: 0.8 of
     * the copying server's requests/s at 1000 connections of 4 KiB), the
     * uring loop nothing; there lending saves the copy (0.8 of its CPU a
     * 4 KiB request). */
    bool lend;
};

/* The heap in use (malloc's arenas and the blocks it maps for large
 * requests); 0 when the allocator does not say (a sanitizer's). The
 * program holds nothing per connection: the growth is volley's. */
static size_t heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();

    return m.uordblks ? m.uordblks + m.hblkhd : 0;
}

/* A connection's state is its user pointer, so that none is allocated:
 * the bytes lent back to it (queued by reference, consumed at their SENT)
 * shifted left by one, and in bit 0 whether its peer has finished sending
 * (it is closed once everything that peer sent has been echoed). */
#define ECHO_PEER_DONE 1u

static uintptr_t echo_state(const volley_conn *c)
{
    return (uintptr_t)volley_conn_user(c);
}

static void echo_set(volley_conn *c, size_t lent, uintptr_t done)
{
    volley_conn_set_user(c, (void *)(((uintptr_t)lent << 1) | done));
}

static void tcp_echo_usage(void)
{
    printf("Usage: volley tcp-echo ADDR [options]\n"
           "Listen on ADDR (\"ip:port\" or \"[ip6]:port\"; port 0 picks one) and send\n"
           "every byte each TCP connection sends back to it, all connections on one\n"
           "volley loop. With --discard, read and drop instead (a sink for one-way\n"
           "throughput). Works with `volley tcp-load` and any TCP client.\n"
           "\n"
           "  -b, --backend NAME   auto, uring or epoll (default auto)\n"
           "      --discard        drop what arrives instead of echoing it\n"
           "  -c, --count N        stop after N connections have closed,\n"
           "                       1 to 18446744073709551615\n"
           "  -d, --duration S     stop after S seconds, 0.001 to %d (3 decimals;\n"
           "                       default %d)\n"
           "      --buffers N      receive buffers of the loop, %u to %u (default %d)\n"
           "      --threads N      N threads, 1 to %d (default 1), each with its own\n"
           "                       loop and listener of one SO_REUSEPORT group on ADDR\n"
           "      --steer HOW      which thread a new connection goes to: flow (hash\n"
           "                       of the source address and port), cpu (the CPU the\n"
           "                       kernel took it on) or kernel (its own hash); default\n"
           "                       flow\n" CLI_PIN_HELP
           "  -j, --json           print one JSON document instead: the lines and the\n"
           "                       summary (volley(1), JSON OUTPUT)\n"
           "  -h, --help           show this help\n"
           "\n"
           "Each second: the interval, connections open, connections accepted, and\n"
           "Mbit/s received and sent. SIGINT or SIGTERM stops it early; the summary\n"
           "is printed either way. With --threads, --count counts the connections\n"
           "every thread closed, the lines and the summary sum the threads, and the\n"
           "JSON adds \"threads\", \"steer\" and \"per_thread\", one object per thread.\n"
           "\n" CLI_ADDR_HELP CLI_NUMBER_HELP,
           MAX_SECONDS, TCP_ECHO_DEFAULT_SECONDS, TCP_MIN_BUFFERS, TCP_MAX_BUFFERS,
           TCP_ECHO_BUFFERS, CLI_THREADS_MAX);
}

enum { OPT_DISCARD = OPT_OWN, OPT_BUFFERS };

static const struct cli_num buffers_num = {
    .flag = "--buffers", .min = TCP_MIN_BUFFERS, .max = TCP_MAX_BUFFERS};

static int tcp_echo_option(int opt, void *cfg)
{
    struct echo_cfg *c = cfg;
    uint64_t v;
    int rc;

    switch (opt) {
    case 'b':
        if (!tcp_parse_backend(optarg, &c->backend))
            return cli_usage_error("bad --backend '%s': want auto, uring or epoll",
                                   optarg);
        return PARSE_RUN;
    case OPT_DISCARD:
        c->discard = true;
        return PARSE_RUN;
    case OPT_BUFFERS:
        rc = cli_number(optarg, &buffers_num, &v);
        if (rc == PARSE_RUN)
            c->buffers = (unsigned)v;
        return rc;
    default:
        return cli_flow_option(opt, &c->flow);
    }
}

static int tcp_echo_operands(int argc, char **argv, void *cfg)
{
    struct echo_cfg *c = cfg;

    return cli_bind_addr(argc, argv, &c->flow);
}

/* Queues back what c holds, span by span, as far as its send queue takes
 * it, copying (volley_conn_write), and consumes what it queued at once;
 * the rest waits for WRITABLE. */
static int echo_copy(volley_conn *c)
{
    struct iovec iov[TCP_ECHO_SPANS];

    for (;;) {
        int n = volley_conn_peek(c, iov, TCP_ECHO_SPANS);
        size_t done = 0;
        bool full = false;
        int err = 0;

        if (n <= 0)
            return n == -ESHUTDOWN ? 0 : n;
        for (int i = 0; i < n && !full && err == 0; i++) {
            ssize_t w = volley_conn_write(c, iov[i].iov_base, iov[i].iov_len);

            if (w == -EAGAIN)
                full = true;
            else if (w < 0)
                err = (int)w;
            else
                done += (size_t)w;
        }
        /* The spans are invalid from here on. */
        if (done > 0 && err == 0)
            err = volley_conn_consume(c, done);
        if (err < 0 || full || n < TCP_ECHO_SPANS)
            return err;
    }
}

/* As echo_copy without the copy: each span of the receive buffers is
 * lent to the send queue (volley_conn_write_ref, tagged with its length)
 * and consumed when its SENT event says the kernel is done with it; spans
 * stay put until consumed. The rest waits for WRITABLE or a SENT. */
static int echo_lend(volley_conn *c)
{
    struct iovec iov[TCP_ECHO_SPANS];
    uintptr_t st = echo_state(c);
    size_t lent = st >> 1, skip = lent;
    int n = volley_conn_peek(c, iov, TCP_ECHO_SPANS);
    int err = 0;

    if (n <= 0)
        return n == -ESHUTDOWN ? 0 : n;
    for (int i = 0; i < n && err == 0; i++) {
        const uint8_t *base = iov[i].iov_base;
        size_t len = iov[i].iov_len;

        if (skip >= len) { /* lent already */
            skip -= len;
            continue;
        }
        base += skip;
        len -= skip;
        skip = 0;
        err = volley_conn_write_ref(c, base, len, (uint64_t)len);
        if (err == 0)
            lent += len;
    }
    echo_set(c, lent, st & ECHO_PEER_DONE);
    return err == -EAGAIN ? 0 : err;
}

/* A lent span went out (or never will: the connection ended). */
static int echo_sent(volley_conn *c, const struct volley_event *e)
{
    uintptr_t st = echo_state(c);

    if (e->err < 0)
        return 0; /* CLOSED follows */
    echo_set(c, (st >> 1) - (size_t)e->tag, st & ECHO_PEER_DONE);
    return volley_conn_consume(c, (size_t)e->tag);
}

static int serve(struct server *s, volley_conn *c)
{
    int err = 0;
    size_t n;

    if (s->cfg->discard) {
        n = volley_conn_buffered(c);
        if (n > 0)
            err = volley_conn_consume(c, n);
    } else {
        err = s->lend ? echo_lend(c) : echo_copy(c);
    }
    if (err == 0 && (echo_state(c) & ECHO_PEER_DONE) && volley_conn_buffered(c) == 0)
        err = volley_conn_close(c);
    return err;
}

static void on_closed(struct server *s, const struct volley_event *e)
{
    if (e->conn == s->listener) {
        s->listener = NULL;
        return;
    }
    s->open--;
    s->closed++;
    if (e->err == -ECONNRESET) {
        s->resets++; /* a client that closed with bytes unread: its choice */
    } else if (e->err != 0 && e->err != -ECANCELED) {
        s->errors++;
        if (s->first_error == 0)
            s->first_error = e->err;
    }
}

static void on_event(struct server *s, const struct volley_event *e)
{
    int err = 0;

    switch (e->type) {
    case VOLLEY_EV_ACCEPTED:
        s->accepted++;
        s->open++;
        volley_conn_set_user(e->conn, NULL);
        break;
    case VOLLEY_EV_EOF:
        echo_set(e->conn, echo_state(e->conn) >> 1, ECHO_PEER_DONE);
        err = serve(s, e->conn);
        break;
    case VOLLEY_EV_SENT:
        err = echo_sent(e->conn, e);
        if (err == 0)
            err = serve(s, e->conn);
        break;
    case VOLLEY_EV_READABLE:
    case VOLLEY_EV_WRITABLE:
        err = serve(s, e->conn);
        break;
    case VOLLEY_EV_CLOSED:
        on_closed(s, e);
        break;
    default: /* DRAINED, TIMEOUT: nothing asked for them */
        break;
    }
    if (err < 0 && err != -EPIPE) /* -EPIPE: ending already, CLOSED follows */
        (void)volley_conn_abort(e->conn);
}

/* One line of the run, as text or as an object of "intervals". */
static void tcp_echo_line(unsigned *ticks, double from, double span, uint64_t open,
                          uint64_t accepted, uint64_t in, uint64_t out)
{
    if (cli_json) {
        cli_doc_interval();
        printf("\"from\":%.3f,\"to\":%.3f,\"conns\":%" PRIu64 ",\"accepted\":%" PRIu64
               ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 "}",
               from, from + span, open, accepted, in, out);
        return;
    }
    if ((*ticks)++ == 0)
        printf("%-13s %7s %9s %11s %11s\n", "interval(s)", "conns", "accepted",
               "Mbit/s(in)", "Mbit/s(out)");
    printf("%6.2f-%-6.2f %7" PRIu64 " %9" PRIu64 " %11.2f %11.2f\n", from, from + span,
           open, accepted, (double)in * 8 / span / 1e6, (double)out * 8 / span / 1e6);
}

static void tcp_echo_tick(struct server *s, int64_t now)
{
    struct volley_loop_stats st = {0};
    double span = cli_ns_seconds(now - s->tick_ns), from;

    volley_loop_get_stats(s->l, &st, sizeof(st));
    from = cli_ns_seconds(s->tick_ns - s->start_ns);
    tcp_echo_line(&s->ticks, from, span, s->open, st.accepted - s->at_tick.accepted,
                  st.total.bytes_in - s->at_tick.total.bytes_in,
                  st.total.bytes_out - s->at_tick.total.bytes_out);
    s->at_tick = st;
    s->tick_ns = now;
}

static const char *tcp_echo_done(const struct server *s, int64_t now)
{
    if (cli_stopping())
        return "signal";
    if (s->cfg->flow.count && s->closed >= s->cfg->flow.count)
        return "count";
    if (now >= s->end_ns)
        return "duration";
    return NULL;
}

/* What each thread of --threads publishes. */
enum { TE_ACCEPTED, TE_CLOSED, TE_OPEN, TE_BYTES_IN, TE_BYTES_OUT };
/* The loop's byte counts walk every connection: published this often. */
#define TE_PUBLISH_NS (100 * NS_PER_MS)

static void tcp_echo_publish(struct server *s, int64_t now, int64_t *next)
{
    team_put(s->pub, TE_ACCEPTED, s->accepted);
    team_put(s->pub, TE_CLOSED, s->closed);
    team_put(s->pub, TE_OPEN, s->open);
    if (now >= *next) {
        struct volley_loop_stats st = {0};

        volley_loop_get_stats(s->l, &st, sizeof(st));
        team_put(s->pub, TE_BYTES_IN, st.total.bytes_in);
        team_put(s->pub, TE_BYTES_OUT, st.total.bytes_out);
        *next = now + TE_PUBLISH_NS;
    }
}

static int tcp_echo_loop(struct server *s)
{
    int64_t publish = 0;
    struct volley_event ev[TCP_ECHO_EVENTS];
    bool quiet = s->cfg->flow.quiet;

    s->end_ns = s->start_ns + s->cfg->flow.duration_ns;
    s->tick_ns = s->start_ns;
    for (;;) {
        int64_t now = cli_mono_ns(), wake = s->end_ns;
        int n;

        s->stopped = tcp_echo_done(s, now);
        if (s->stopped)
            return 0;
        if (!quiet && now - s->tick_ns >= NS_PER_S)
            tcp_echo_tick(s, now);
        if (!quiet && s->tick_ns + NS_PER_S < wake)
            wake = s->tick_ns + NS_PER_S;
        n = volley_loop_poll(s->l, ev, TCP_ECHO_EVENTS, cli_ms_until(now, wake));
        if (n < 0 && n != -EINTR)
            return n;
        for (int i = 0; i < n; i++)
            on_event(s, &ev[i]);
        if (s->pub)
            tcp_echo_publish(s, now, &publish);
        if (s->open > s->peak) {
            s->peak = s->open;
            if (s->heap0)
                s->heap_peak = heap_in_use();
        }
    }
}

/* The JSON members of a summary, without the braces. */
static void tcp_echo_json(const struct server *s, const struct volley_loop_stats *st,
                          const char *backend, double secs)
{
    printf("\"mode\":\"%s\",\"accepted\":%" PRIu64 ",\"closed\":%" PRIu64
           ",\"resets\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"bytes_in\":%" PRIu64
           ",\"bytes_out\":%" PRIu64 ",\"seconds\":%.6f,\"syscalls\":%" PRIu64
           ",\"polls\":%" PRIu64 ",\"sends\":%" PRIu64 ",\"coalesced\":%" PRIu64
           ",\"rearms\":%" PRIu64 ",\"ring_empty\":%" PRIu64
           ",\"stopped\":\"%s\",\"backend\":",
           s->cfg->discard ? "discard" : "echo", s->accepted, s->closed, s->resets,
           s->errors, st->total.bytes_in, st->total.bytes_out, secs, st->syscalls,
           st->polls, st->total.sends, st->total.coalesced, st->total.rearms,
           st->ring_empty, s->stopped);
    cli_json_string(backend);
    printf(",\"peak_conns\":%" PRIu64 ",\"heap_per_conn\":", s->peak);
    if (s->peak && s->heap0 && s->heap_peak >= s->heap0)
        printf("%zu", (s->heap_peak - s->heap0) / s->peak);
    else
        fputs("null", stdout);
}

static void tcp_echo_summary(const struct server *s, const struct volley_loop_stats *stp,
                             const char *backend, double secs)
{
    struct volley_loop_stats st = *stp;

    if (s->cfg->flow.json) {
        cli_doc_end();
        tcp_echo_json(s, stp, backend, secs);
        return;
    }
    printf("%s %" PRIu64 " bytes (received %" PRIu64 ") in %.3f s over %" PRIu64
           " connections; %" PRIu64 " closed, %" PRIu64 " reset, %" PRIu64 " errors\n",
           s->cfg->discard ? "dropped" : "echoed",
           s->cfg->discard ? st.total.bytes_in : st.total.bytes_out, st.total.bytes_in,
           secs, s->accepted, s->closed, s->resets, s->errors);
    printf("backend %s, %" PRIu64 " system calls, %" PRIu64 " sends, %" PRIu64
           " receive re-arms, %" PRIu64 " times out of buffers; stopped by %s\n",
           backend, st.syscalls, st.total.sends, st.total.rearms, st.ring_empty,
           s->stopped);
    if (s->peak && s->heap0 && s->heap_peak >= s->heap0)
        printf("volley's heap: %zu bytes per connection at the peak of %" PRIu64
               " open\n",
               (s->heap_peak - s->heap0) / s->peak, s->peak);
}

static void tcp_echo_args(const void *cfg)
{
    const struct echo_cfg *c = cfg;
    unsigned id = c->backend;

    cli_flow_args(&c->flow);
    printf(",\"backend\":\"%s\",\"discard\":%s,\"buffers\":%u",
           id == VOLLEY_BACKEND_URING   ? "uring"
           : id == VOLLEY_BACKEND_EPOLL ? "epoll"
                                        : "auto",
           c->discard ? "true" : "false", c->buffers);
}

/* Scripts wait for the "listening" line before they connect. */
static int tcp_echo_listen(struct server *s)
{
    struct volley_conn_opts co = VOLLEY_CONN_OPTS_INIT;
    struct volley_addr local;
    char name[64];
    int err = volley_listen(s->l, &s->listener, s->cfg->flow.addr, &co, NULL);

    if (err < 0)
        return err;
    if (volley_conn_addr(s->listener, &local, NULL) == 0 &&
        volley_addr_format(&local, name, sizeof(name)) >= 0)
        fprintf(stderr, "%s: listening on %s (%s)\n", cli_name, name,
                volley_loop_backend(s->l));
    return 0;
}

static int tcp_echo_run(const struct echo_cfg *c)
{
    struct volley_loop_opts lo = VOLLEY_LOOP_OPTS_INIT;
    struct server s = {.cfg = c, .stopped = "signal"};
    int err = tcp_raise_nofile(0);

    if (err < 0)
        return cli_runtime_error("raising the open file limit", err);
    lo.backend = c->backend;
    lo.buf_count = c->buffers;
    err = volley_loop_open(&s.l, &lo);
    if (err < 0)
        return cli_runtime_error("opening the loop", err);
    s.lend = strcmp(volley_loop_backend(s.l), "uring") == 0;
    err = tcp_echo_listen(&s);
    if (err < 0) {
        volley_loop_close(s.l, 0);
        return cli_runtime_error(c->flow.addr, err);
    }
    cli_catch_signals();
    cli_doc_begin(tcp_echo_args, c);
    s.start_ns = cli_mono_ns();
    s.heap0 = heap_in_use();
    err = tcp_echo_loop(&s);
    {
        struct volley_loop_stats st = {0};

        volley_loop_get_stats(s.l, &st, sizeof(st));
        tcp_echo_summary(&s, &st, volley_loop_backend(s.l),
                         cli_ns_seconds(cli_mono_ns() - s.start_ns));
    }
    volley_loop_close(s.l, TCP_ECHO_DRAIN_MS);
    return err < 0 ? cli_runtime_error("tcp-echo", err) : 0;
}

/* ---- --threads ---- */

struct te_thread {
    struct team *team;
    unsigned i;
    struct echo_cfg cfg; /* the run's count is the main thread's */
    int fd;
    struct server s;
    struct volley_loop_stats st;
    char backend[16];
    int err;
};

/* The loop is opened, served and closed on its own thread: an io_uring
 * loop takes submissions from the thread that made it only. */
static void *te_thread_main(void *arg)
{
    struct te_thread *t = arg;
    struct volley_loop_opts lo = VOLLEY_LOOP_OPTS_INIT;
    struct volley_conn_opts co = VOLLEY_CONN_OPTS_INIT;
    int err;

    t->s =
        (struct server){.cfg = &t->cfg, .stopped = "signal", .pub = &t->team->pub[t->i]};
    lo.backend = t->cfg.backend;
    lo.buf_count = t->cfg.buffers;
    err = volley_loop_open(&t->s.l, &lo);
    if (err == 0) {
        t->s.lend = strcmp(volley_loop_backend(t->s.l), "uring") == 0;
        err = volley_listen_fd(t->s.l, &t->s.listener, t->fd, &co, NULL);
    }
    if (err < 0)
        close(t->fd); /* the loop's from a listen on */
    if (t->s.l)
        snprintf(t->backend, sizeof(t->backend), "%s", volley_loop_backend(t->s.l));
    team_ready(t->team, t->i, err);
    t->s.start_ns = cli_mono_ns();
    if (err == 0)
        err = tcp_echo_loop(&t->s);
    if (t->s.l) {
        volley_loop_get_stats(t->s.l, &t->st, sizeof(t->st));
        volley_loop_close(t->s.l, TCP_ECHO_DRAIN_MS);
    }
    team_done(t->team, t->i);
    t->err = err;
    return NULL;
}

struct te_watch {
    int64_t tick_ns, start_ns;
    uint64_t accepted, in, out;
    unsigned ticks;
};

static void te_tick(struct team *team, struct te_watch *w, int64_t now)
{
    double span = cli_ns_seconds(now - w->tick_ns), from;
    uint64_t accepted = team_sum(team, TE_ACCEPTED), in = team_sum(team, TE_BYTES_IN);
    uint64_t out = team_sum(team, TE_BYTES_OUT);

    from = cli_ns_seconds(w->tick_ns - w->start_ns);
    tcp_echo_line(&w->ticks, from, span, team_sum(team, TE_OPEN), accepted - w->accepted,
                  in - w->in, out - w->out);
    w->accepted = accepted;
    w->in = in;
    w->out = out;
    w->tick_ns = now;
}

static const char *te_watch(struct team *team, const struct echo_cfg *c)
{
    struct te_watch w = {.start_ns = cli_mono_ns()};
    int64_t end = w.start_ns + c->flow.duration_ns;
    const char *why = NULL;

    w.tick_ns = w.start_ns;
    while (!why) {
        int64_t now = cli_mono_ns();

        if (cli_stop)
            why = "signal";
        else if (c->flow.count && team_sum(team, TE_CLOSED) >= c->flow.count)
            why = "count";
        else if (now >= end || team_running(team) == 0)
            why = "duration";
        if (why)
            break;
        if (now - w.tick_ns >= NS_PER_S)
            te_tick(team, &w, now);
        team_nap(w.tick_ns + NS_PER_S > end ? end : w.tick_ns + NS_PER_S);
    }
    atomic_store(&cli_halt, true);
    return why;
}

static void te_sum(struct volley_loop_stats *a, const struct volley_loop_stats *b)
{
    a->syscalls += b->syscalls;
    a->polls += b->polls;
    a->ring_empty += b->ring_empty;
    a->total.bytes_in += b->total.bytes_in;
    a->total.bytes_out += b->total.bytes_out;
    a->total.sends += b->total.sends;
    a->total.coalesced += b->total.coalesced;
    a->total.rearms += b->total.rearms;
}

static void te_summary(const struct team *team, const struct echo_cfg *c,
                       struct te_thread *t, const char *why, int64_t end_ns)
{
    struct server agg = {.cfg = c, .stopped = why, .start_ns = t[0].s.start_ns};
    struct volley_loop_stats st = {0};
    double secs = cli_ns_seconds(end_ns - agg.start_ns);

    for (unsigned i = 0; i < team->n; i++) {
        agg.accepted += t[i].s.accepted;
        agg.closed += t[i].s.closed;
        agg.resets += t[i].s.resets;
        agg.errors += t[i].s.errors;
        agg.peak += t[i].s.peak;
        te_sum(&st, &t[i].st);
        if (strcmp(t[i].s.stopped, "signal") == 0)
            t[i].s.stopped = why; /* halted by the main thread */
    }
    tcp_echo_summary(&agg, &st, t[0].backend, secs);
    if (!c->flow.json) {
        for (unsigned i = 0; i < team->n; i++)
            printf("thread %u: %" PRIu64 " connections, %" PRIu64 " bytes in\n", i,
                   t[i].s.accepted, t[i].st.total.bytes_in);
        return;
    }
    printf(",\"threads\":%u,\"steer\":\"%s\",\"per_thread\":[", team->n,
           team_steer_name(c->flow.steer));
    for (unsigned i = 0; i < team->n; i++) {
        fputs(i ? ",{" : "{", stdout);
        tcp_echo_json(&t[i].s, &t[i].st, t[i].backend, secs);
        team_json_cpu(team, i);
        putchar('}');
    }
    putchar(']');
}

static int tcp_echo_run_threads(const struct echo_cfg *c)
{
    static struct te_thread t[CLI_THREADS_MAX];
    int fds[CLI_THREADS_MAX], err = tcp_raise_nofile(0);
    unsigned n = team_size(&c->flow);
    const char *why = "signal";
    struct team team;
    int64_t end_ns = 0;

    if (err < 0)
        return cli_runtime_error("raising the open file limit", err);
    if (team_init(&team, n, c->flow.pin) < 0)
        return cli_runtime_error("tcp-echo", -ENOMEM);
    if (team_group(fds, &c->flow, VOLLEY_GROUP_STREAM) != 0) {
        team_join(&team);
        return 1;
    }
    for (unsigned i = 0; i < n; i++) {
        t[i] = (struct te_thread){.team = &team, .i = i, .cfg = *c, .fd = fds[i]};
        t[i].cfg.flow.count = 0;
        t[i].cfg.flow.quiet = true; /* the lines are the main thread's */
    }
    cli_catch_signals();
    err = team_start(&team, te_thread_main, t, sizeof(t[0]));
    if (err == 0)
        err = team_await(&team);
    if (err == 0) {
        team_listening(fds[0], t[0].backend, n);
        cli_doc_begin(tcp_echo_args, c);
        why = te_watch(&team, c);
        end_ns = cli_mono_ns(); /* before the loops drain */
    }
    team_join(&team);
    for (unsigned i = 0; i < n && err == 0; i++)
        err = t[i].err;
    if (err == 0)
        te_summary(&team, c, t, why, end_ns);
    for (unsigned i = 0; i < n; i++)
        if (!team.started[i])
            close(fds[i]);
    return err < 0 ? cli_runtime_error("tcp-echo", err) : 0;
}

int cmd_tcp_echo(int argc, char **argv)
{
    static const struct cli_cmd cmd = {
        .shared = CLI_F_COUNT | CLI_F_DURATION | CLI_F_THREADS | CLI_F_STEER,
        .own = {{"backend", required_argument, NULL, 'b'},
                {"discard", no_argument, NULL, OPT_DISCARD},
                {"buffers", required_argument, NULL, OPT_BUFFERS}},
        .usage = tcp_echo_usage,
        .option = tcp_echo_option,
        .operands = tcp_echo_operands,
    };
    struct echo_cfg c = {.flow = {.duration_ns = TCP_ECHO_DEFAULT_SECONDS * NS_PER_S},
                         .buffers = TCP_ECHO_BUFFERS};
    int rc = cli_parse(argc, argv, &cmd, &c);

    if (rc != PARSE_RUN)
        return rc;
    return team_size(&c.flow) > 1 ? tcp_echo_run_threads(&c) : tcp_echo_run(&c);
}
