/* SPDX-License-Identifier: MIT */
/*
 * volley echo: a UDP echo server on any backend. Every datagram goes back
 * to its sender unchanged, from the local address it arrived on and with the
 * ECN codepoint it carried, in batches both ways (with GSO, a batch of
 * same-size replies to one peer leaves as one UDP_SEGMENT send).
 */
#include "cli.h"
#include "team.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A server left running must still stop by itself. */
#define ECHO_DEFAULT_SECONDS 60
/* Longest wait for send room before checking the clock again. */
#define ECHO_SEND_WAIT_MS 100

struct echo_state {
    uint64_t received, echoed, bytes, errors, dropped;
    int64_t start_ns, first_ns, last_ns, end_ns;
    const char *stopped;
};

static void echo_usage(void)
{
    printf(
        "Usage: volley echo ADDR [options]\n"
        "Bind ADDR (\"ip:port\" or \"[ip6]:port\") and send every UDP datagram back\n"
        "to its sender, unchanged, from the address it arrived on and with the same\n"
        "ECN codepoint. Receives and sends in batches. Works with `volley ping`\n"
        "and any UDP client.\n"
        "\n"
        "  -c, --count N        stop after N datagrams, 1 to 18446744073709551615\n"
        "  -d, --duration S     stop after S seconds, 0.001 to %d (3 decimals;\n"
        "                       default %d)\n"
        "  -i, --idle S         stop after S seconds without traffic once traffic\n"
        "                       has begun, 0 to %d (3 decimals; default 0: never)\n"
        "  -B, --batch N        datagrams per receive call, 1 to %d (default %d)\n"
        "  -b, --backend NAME   auto, scalar, mmsg, uring or xnu (default auto)\n"
        "      --no-gso         turn UDP GSO off\n"
        "      --no-gro         turn UDP GRO off\n"
        "      --threads N      N threads, 1 to %d (default 1), each with its own\n"
        "                       socket of one SO_REUSEPORT group on ADDR\n"
        "      --steer HOW      which thread a datagram goes to: flow (hash of the\n"
        "                       source address and port), cpu (the CPU the kernel\n"
        "                       took it on) or kernel (its own hash); default "
        "flow\n" CLI_PIN_HELP
        "  -j, --json           print the summary as one JSON document (volley(1),\n"
        "                       JSON OUTPUT; it has no lines)\n"
        "  -h, --help           show this help\n"
        "\n"
        "The summary: datagrams received, echoed, failed (errors) and not echoed\n"
        "(no send room before the end), which add up to those received.\n" CLI_DROPS_HELP
        "SIGINT or SIGTERM stops it early; the summary is printed either way.\n"
        "With --threads, the limits hold for all threads together, the summary\n"
        "sums them, and the JSON adds \"threads\", \"steer\" and \"per_thread\".\n"
        "\n" CLI_ADDR_HELP CLI_NUMBER_HELP,
        MAX_SECONDS, ECHO_DEFAULT_SECONDS, MAX_SECONDS, VOLLEY_BATCH_MAX, CLI_RX_BATCH,
        CLI_THREADS_MAX);
}

/* Sends d[0..n) back where each came from. Descriptors from volley_recv
 * already hold the peer, the local address and the ECN codepoint. */
static int echo_batch(volley_sock *s, struct volley_dgram *d, unsigned n,
                      struct echo_state *st)
{
    unsigned done = 0;

    for (unsigned i = 0; i < n; i++)
        d[i].segment = 0;
    while (done < n) {
        int w = volley_send(s, d + done, n - done);
        int64_t now, until;

        if (w > 0) {
            for (int i = 0; i < w; i++)
                st->bytes += d[done + (unsigned)i].len;
            st->echoed += (unsigned)w;
            done += (unsigned)w;
            continue;
        }
        if (w < 0 && w != -ENOBUFS) {
            st->errors++; /* this one cannot go: skip it */
            done++;
            continue;
        }
        now = cli_mono_ns();
        if (cli_stopping() || now >= st->end_ns)
            break;
        until = now + ECHO_SEND_WAIT_MS * 1000000LL;
        if (until > st->end_ns)
            until = st->end_ns;
        w = volley_wait(s, VOLLEY_WAIT_SEND, cli_ms_until(now, until));
        if (w < 0 && w != -EINTR) {
            st->dropped += n - done;
            return w;
        }
    }
    st->dropped += n - done;
    return 0;
}

/* What each thread of --threads publishes after every batch. */
enum { EC_RECEIVED, EC_LAST };

static int echo_loop(volley_sock *s, const struct flow_cfg *c, struct echo_state *st,
                     struct team_pub *pub)
{
    struct volley_dgram d[VOLLEY_BATCH_MAX];
    int64_t idle = c->idle_ns;

    st->end_ns = st->start_ns + c->duration_ns;
    while (!cli_stopping()) {
        int64_t t = cli_mono_ns(), wake = st->end_ns;
        if (idle > 0 && st->received && st->last_ns + idle < wake)
            wake = st->last_ns + idle;
        int n = volley_recv_wait(s, d, (unsigned)c->batch, cli_wait_ms(t, wake));
        int64_t now = cli_mono_ns();
        int err;

        if (n < 0)
            return n;
        if (n > 0) {
            if (c->count && (uint64_t)n > c->count - st->received)
                n = (int)(c->count - st->received);
            if (st->received == 0)
                st->first_ns = now;
            st->received += (unsigned)n;
            st->last_ns = now;
            err = echo_batch(s, d, (unsigned)n, st);
            if (pub) {
                team_put(pub, EC_RECEIVED, st->received);
                team_put(pub, EC_LAST, (uint64_t)st->last_ns);
            }
            if (err < 0)
                return err;
        }
        if (c->count && st->received >= c->count) {
            st->stopped = "count";
            return 0;
        }
        if (now >= st->end_ns) {
            st->stopped = "duration";
            return 0;
        }
        if (idle > 0 && st->received && now - st->last_ns >= idle) {
            st->stopped = "idle";
            return 0;
        }
    }
    st->stopped = "signal";
    return 0;
}

/* The JSON members of a summary, without the braces. */
static void echo_json(const char *backend, const struct volley_stats *vs,
                      const struct echo_state *st)
{
    int64_t span = st->last_ns - st->first_ns;

    printf("\"received\":%" PRIu64 ",\"echoed\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"errors\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"seconds\":%.6f"
           ",\"rx_syscalls\":%" PRIu64 ",\"tx_syscalls\":%" PRIu64
           ",\"gso_sends\":%" PRIu64 ",\"kernel_drops\":%" PRIu64
           ",\"dgrams_per_s\":%.1f,\"stopped\":\"%s\",\"backend\":",
           st->received, st->echoed, st->bytes, st->errors, st->dropped,
           cli_ns_seconds(span), vs->rx_syscalls, vs->tx_syscalls, vs->tx_gso_sends,
           vs->rx_kernel_drops, cli_rate((double)st->echoed, span), st->stopped);
    cli_json_string(backend);
}

static void echo_summary(const char *backend, const struct volley_stats *vs,
                         const struct flow_cfg *c, const struct echo_state *st)
{
    int64_t span = st->last_ns - st->first_ns;

    if (c->json) {
        cli_doc_end();
        echo_json(backend, vs, st);
        return;
    }
    printf("echoed %" PRIu64 " of %" PRIu64 " datagrams (%" PRIu64
           " bytes) in %.3f s: %.0f dgrams/s\n",
           st->echoed, st->received, st->bytes, cli_ns_seconds(span),
           cli_rate((double)st->echoed, span));
    printf("backend %s, %" PRIu64 " receive calls, %" PRIu64 " send calls, %" PRIu64
           " GSO sends, %" PRIu64 " errors, %" PRIu64 " not echoed; stopped by %s\n",
           backend, vs->rx_syscalls, vs->tx_syscalls, vs->tx_gso_sends, st->errors,
           st->dropped, st->stopped);
    printf("kernel drops %" PRIu64 " " CLI_DROPS_NOTE "\n", vs->rx_kernel_drops);
}

static int echo_run(const struct flow_cfg *c)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    struct echo_state st = {.stopped = "signal"};
    volley_sock *s;
    int err;

    o.rx_batch = (uint32_t)c->batch;
    if (cli_listen(&s, c, &o) != 0)
        return 1;
    cli_catch_signals();
    cli_doc_begin(cli_flow_args, c);
    st.start_ns = cli_mono_ns();
    err = echo_loop(s, c, &st, NULL);
    {
        struct volley_stats vs = {0};

        volley_get_stats(s, &vs, sizeof(vs));
        echo_summary(volley_backend_name(s), &vs, c, &st);
    }
    volley_close(s);
    return err < 0 ? cli_runtime_error("echo", err) : 0;
}

#if VOLLEY_HAVE_LINUX /* --threads: reuseport groups, CPU pinning */
/* ---- --threads ---- */

struct echo_thread {
    struct team *team;
    unsigned i;
    const struct flow_cfg *cfg;
    int fd;
    volley_sock *s;
    struct echo_state st;
    struct volley_stats vs;
    int err;
};

static void *echo_thread_main(void *arg)
{
    struct echo_thread *t = arg;
    struct volley_opts o = VOLLEY_OPTS_INIT;
    struct flow_cfg c = *t->cfg;
    int err;

    /* The count and the idle limit are the run's, watched by the main thread. */
    c.count = 0;
    c.idle_ns = 0;
    o.rx_batch = (uint32_t)c.batch;
    o.backend = c.backend;
    o.disable = c.disable;
    o.rcvbuf = CLI_RCVBUF;
    err = volley_wrap(&t->s, t->fd, &o);
    if (err < 0)
        close(t->fd); /* the socket's from a wrap on */
    team_ready(t->team, t->i, err);
    t->st.stopped = "signal";
    t->st.start_ns = cli_mono_ns();
    if (err == 0)
        err = echo_loop(t->s, &c, &t->st, &t->team->pub[t->i]);
    if (t->s)
        volley_get_stats(t->s, &t->vs, sizeof(t->vs));
    team_done(t->team, t->i);
    t->err = err;
    return NULL;
}

/* Until the run is over; then the threads are told to stop. Says why. */
static const char *echo_watch(struct team *team, const struct flow_cfg *c)
{
    int64_t end = cli_mono_ns() + c->duration_ns;
    const char *why = NULL;

    while (!why) {
        int64_t now = cli_mono_ns();
        uint64_t n = team_sum(team, EC_RECEIVED);

        if (cli_stop)
            why = "signal";
        else if (c->count && n >= c->count)
            why = "count";
        else if (now >= end || team_running(team) == 0)
            why = "duration";
        else if (n && c->idle_ns > 0 &&
                 now - (int64_t)team_max(team, EC_LAST) >= c->idle_ns)
            why = "idle";
        else
            team_nap(end);
    }
    atomic_store(&cli_halt, true);
    return why;
}

static void echo_threads_summary(const struct team *team, const struct flow_cfg *c,
                                 struct echo_thread *t, const char *why)
{
    struct echo_state agg = {.stopped = why};
    struct volley_stats vs = {0};
    const char *backend = volley_backend_name(t[0].s);

    for (unsigned i = 0; i < team->n; i++) {
        const struct echo_state *s = &t[i].st;

        if (s->received && (agg.received == 0 || s->first_ns < agg.first_ns))
            agg.first_ns = s->first_ns;
        if (s->received && s->last_ns > agg.last_ns)
            agg.last_ns = s->last_ns;
        agg.received += s->received;
        agg.echoed += s->echoed;
        agg.bytes += s->bytes;
        agg.errors += s->errors;
        agg.dropped += s->dropped;
        vs.rx_syscalls += t[i].vs.rx_syscalls;
        vs.tx_syscalls += t[i].vs.tx_syscalls;
        vs.tx_gso_sends += t[i].vs.tx_gso_sends;
        vs.rx_kernel_drops += t[i].vs.rx_kernel_drops;
        /* halted by the main thread: stopped for the run's reason */
        if (strcmp(s->stopped, "signal") == 0)
            t[i].st.stopped = why;
    }
    if (!c->json) {
        echo_summary(backend, &vs, c, &agg);
        for (unsigned i = 0; i < team->n; i++)
            printf("thread %u: echoed %" PRIu64 " of %" PRIu64 " datagrams\n", i,
                   t[i].st.echoed, t[i].st.received);
        return;
    }
    echo_summary(backend, &vs, c, &agg);
    printf(",\"threads\":%u,\"steer\":\"%s\",\"per_thread\":[", team->n,
           team_steer_name(c->steer));
    for (unsigned i = 0; i < team->n; i++) {
        fputs(i ? ",{" : "{", stdout);
        echo_json(volley_backend_name(t[i].s), &t[i].vs, &t[i].st);
        team_json_cpu(team, i);
        putchar('}');
    }
    putchar(']');
}

static int echo_run_threads(const struct flow_cfg *c)
{
    static struct echo_thread t[CLI_THREADS_MAX];
    int fds[CLI_THREADS_MAX], err;
    unsigned n = team_size(c);
    const char *why = "signal";
    struct team team;

    if (team_init(&team, n, c->pin) < 0)
        return cli_runtime_error("echo", -ENOMEM);
    if (team_group(fds, c, 0) != 0) {
        team_join(&team);
        return 1;
    }
    for (unsigned i = 0; i < n; i++)
        t[i] = (struct echo_thread){.team = &team, .i = i, .cfg = c, .fd = fds[i]};
    cli_catch_signals();
    err = team_start(&team, echo_thread_main, t, sizeof(t[0]));
    if (err == 0)
        err = team_await(&team);
    if (err == 0) {
        team_listening(fds[0], volley_backend_name(t[0].s), n);
        cli_doc_begin(cli_flow_args, c);
        why = echo_watch(&team, c);
    }
    team_join(&team);
    for (unsigned i = 0; i < n && err == 0; i++)
        err = t[i].err;
    if (err == 0)
        echo_threads_summary(&team, c, t, why);
    for (unsigned i = 0; i < n; i++) {
        if (t[i].s)
            volley_close(t[i].s);
        else if (!team.started[i])
            close(fds[i]);
    }
    return err < 0 ? cli_runtime_error("echo", err) : 0;
}
#endif

int cmd_echo(int argc, char **argv)
{
    static const struct cli_cmd cmd = {
        .shared = CLI_F_COUNT | CLI_F_DURATION | CLI_F_IDLE | CLI_F_BATCH |
                  CLI_F_BACKEND | CLI_F_NO_GSO | CLI_F_NO_GRO | CLI_F_THREADS |
                  CLI_F_STEER,
        .usage = echo_usage,
        .option = cli_flow_option,
        .operands = cli_bind_addr,
    };
    struct flow_cfg c = {.duration_ns = ECHO_DEFAULT_SECONDS * NS_PER_S,
                         .batch = CLI_RX_BATCH};
    int rc = cli_parse(argc, argv, &cmd, &c);

    if (rc != PARSE_RUN)
        return rc;
#if VOLLEY_HAVE_LINUX
    if (team_size(&c) > 1)
        return echo_run_threads(&c);
#endif
    return echo_run(&c);
}
