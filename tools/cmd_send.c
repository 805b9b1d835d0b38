/* SPDX-License-Identifier: MIT */
/*
 * volley send: a bounded sender that stamps the sequence header, as fast as
 * the socket takes datagrams or at a --rate kept by the library's pacer.
 */
#include "cli.h"
#include "seq.h"
#include "team.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What `volley send` has done. */
struct tx_state {
    uint64_t dgrams;
    int64_t start_ns, end_ns;
    int64_t tick_ns;
    uint64_t tick_dgrams;
    uint64_t counted; /* datagrams in the lines printed */
    unsigned ticks;
    unsigned overhead; /* IP + UDP header bytes per datagram */
    struct cli_icmp icmp;
};

static void send_usage(void)
{
    fputs("Usage: volley send ADDR [options]\n"
          "Send datagrams carrying the sequence header to ADDR, as fast as the socket\n"
          "takes them or at --rate. Without --count or --duration, sends for 5 seconds.\n"
          "\n"
          "  -c, --count N        send N datagrams, 1 to 18446744073709551615\n"
          "  -d, --duration S     send for S seconds, 0.001 to 1000000 (3 decimals)\n"
          "  -s, --size BYTES     payload bytes per datagram, 0 to 65507 to an IPv4\n"
          "                       or v4-mapped ADDR, 0 to 65527 to IPv6 (default 1200)\n"
          "  -r, --rate RATE      send at most RATE bits per second, 1 to 10T, counting\n"
          "                       payload and UDP/IP headers (28 bytes IPv4, 48 IPv6):\n"
          "                       a number with an optional SI suffix k, M, G or T\n"
          "                       (powers of 1000) that comes to whole bits, e.g.\n"
          "                       750k, 100M, 2.5G\n"
          "      --burst BYTES    with --rate: largest burst, 1 to 4294967295 (default\n"
          "                       4 ms at the rate, at least 3000 bytes)\n"
          "      --kernel-pacing  with --rate: leave pacing to the kernel\n"
          "                       (SO_MAX_PACING_RATE; needs the fq qdisc)\n"
          "  -B, --batch N        datagrams per volley_send call, 1 to 1024\n"
          "                       (default 256)\n"
          "  -b, --backend NAME   auto, scalar, mmsg, uring or xnu (default auto)\n"
          "      --no-gso         turn UDP GSO off\n"
          "      --threads N      N threads, 1 to 64 (default 1), each with its own\n"
          "                       socket, so its own source port: N flows; --count\n"
          "                       and --rate are shared out among them\n" CLI_PIN_HELP
          "  -j, --json           print one JSON document instead: the lines and the\n"
          "                       summary (volley(1), JSON OUTPUT)\n"
          "  -h, --help           show this help\n"
          "\n"
          "With --threads, each thread stamps its own stream; the lines and the\n"
          "summary sum the threads, and the JSON adds \"threads\" and \"per_thread\",\n"
          "one object per thread.\n"
          "\n"
          "Each second: the interval, datagrams, payload Mbit/s and Mbit/s counted with\n"
          "the headers. The summary gives both rates and, with --rate, how close the\n"
          "achieved rate came to it.\n"
          "\n" CLI_ADDR_HELP CLI_NUMBER_HELP "\n" SEQ_HDR_HELP,
          stdout);
}

enum { OPT_BURST = OPT_OWN, OPT_KERNEL_PACING };

static const struct cli_num rate_num = {
    .flag = "--rate", .min = 1, .max = MAX_RATE_BPS, .unit = CLI_UNIT_SI};
/* The library's pace_burst is 32 bits wide; 0 there means its default. */
static const struct cli_num burst_num = {
    .flag = "--burst", .min = 1, .max = UINT32_MAX, .unit = CLI_UNIT_BYTES};

static int send_option(int opt, void *cfg)
{
    struct flow_cfg *c = cfg;

    switch (opt) {
    case 'r':
        return cli_number(optarg, &rate_num, &c->rate_bps);
    case OPT_BURST:
        return cli_number(optarg, &burst_num, &c->burst);
    case OPT_KERNEL_PACING:
        c->pace_flags |= VOLLEY_PACE_KERNEL;
        return PARSE_RUN;
    default:
        return cli_flow_option(opt, c);
    }
}

/* The pacing flags mean nothing without a rate; then ADDR, as any sender. */
static int send_operands(int argc, char **argv, void *cfg)
{
    const struct flow_cfg *c = cfg;

    if (c->rate_bps == 0 && c->burst)
        return cli_usage_error("--burst needs --rate");
    if (c->rate_bps == 0 && c->pace_flags)
        return cli_usage_error("--kernel-pacing needs --rate");
    return cli_dest_addr(argc, argv, cfg);
}

static double wire_bits(const struct tx_state *st, const struct flow_cfg *c,
                        uint64_t dgrams)
{
    return (double)dgrams * (double)(c->size + st->overhead) * 8;
}

static void tx_interval(struct tx_state *st, const struct flow_cfg *c, int64_t end_ns)
{
    double from = cli_ns_seconds(st->tick_ns - st->start_ns);
    int64_t span = end_ns - st->tick_ns;

    if (c->quiet) {
        st->tick_ns = end_ns;
        return;
    }
    st->counted += st->tick_dgrams;
    if (c->json) {
        cli_doc_interval();
        printf("\"from\":%.3f,\"to\":%.3f,\"datagrams\":%" PRIu64 ",\"bytes\":%" PRIu64
               ",\"mbit_per_s\":%.3f,\"ip_mbit_per_s\":%.3f}",
               from, from + cli_ns_seconds(span), st->tick_dgrams,
               st->tick_dgrams * c->size,
               cli_rate((double)(st->tick_dgrams * c->size) * 8 / 1e6, span),
               cli_rate(wire_bits(st, c, st->tick_dgrams) / 1e6, span));
    } else {
        if (st->ticks == 0)
            printf("%-13s %10s %10s %11s\n", "interval(s)", "dgrams", "Mbit/s",
                   "Mbit/s(IP)");
        printf("%6.2f-%-6.2f %10" PRIu64 " %10.2f %11.2f\n", from,
               from + cli_ns_seconds(span), st->tick_dgrams,
               cli_rate((double)(st->tick_dgrams * c->size) * 8 / 1e6, span),
               cli_rate(wire_bits(st, c, st->tick_dgrams) / 1e6, span));
    }
    st->ticks++;
    st->tick_dgrams = 0;
    st->tick_ns = end_ns;
}

static int send_batch(volley_sock *s, const struct flow_cfg *c, struct volley_dgram *d,
                      uint32_t stream, struct tx_state *st, int64_t wake)
{
    unsigned n = (unsigned)c->batch;
    int k;

    if (c->count && c->count - st->dgrams < n)
        n = (unsigned)(c->count - st->dgrams);
    seq_stamp(d[0].data, c->size, n, stream, st->dgrams);
    k = volley_send(s, d, n);
    if (k > 0) {
        st->dgrams += (unsigned)k;
        st->tick_dgrams += (unsigned)k;
        /* All taken: go on. Part taken: the rest would not be now either. */
        if ((unsigned)k == n)
            return 0;
        k = 0;
    }
    /* Not taken: a full socket buffer, the device queue (ENOBUFS) or the
     * pacer. The wait sleeps until there is room, or the pacer allows. */
    if (k == 0 || k == -ENOBUFS)
        k = volley_wait(s, VOLLEY_WAIT_SEND, cli_ms_until(cli_mono_ns(), wake));
    return k < 0 && k != -EINTR ? k : 0;
}

/* What each thread of --threads publishes after every batch. */
enum { TX_DGRAMS };

static int send_loop(volley_sock *s, const struct flow_cfg *c, struct volley_dgram *d,
                     struct tx_state *st, struct team_pub *pub)
{
    uint32_t stream = seq_stream_id();
    int64_t end = c->duration_ns > 0 ? st->start_ns + c->duration_ns : INT64_MAX;
    int err = 0;

    st->tick_ns = st->start_ns;
    while (!cli_stopping() && (c->count == 0 || st->dgrams < c->count)) {
        int64_t now = cli_mono_ns(), tick_end;

        if (now >= end)
            break;
        if (now - st->tick_ns >= NS_PER_S) /* once a second: a call of its own */
            cli_icmp_drain(s, &st->icmp, true);
        while (now - st->tick_ns >= NS_PER_S)
            tx_interval(st, c, st->tick_ns + NS_PER_S);
        tick_end = st->tick_ns + NS_PER_S;
        err = send_batch(s, c, d, stream, st, end < tick_end ? end : tick_end);
        if (pub)
            team_put(pub, TX_DGRAMS, st->dgrams);
        if (err < 0)
            break;
    }
    st->end_ns = cli_mono_ns();
    cli_icmp_drain(s, &st->icmp, true);
    return err;
}

static void send_args(const void *cfg)
{
    const struct flow_cfg *c = cfg;

    cli_flow_args(c);
    printf(",\"size\":%" PRIu64, c->size);
    if (c->rate_bps)
        printf(",\"rate_bps\":%" PRIu64 ",\"burst\":%" PRIu64 ",\"kernel_pacing\":%s",
               c->rate_bps, c->burst,
               c->pace_flags & VOLLEY_PACE_KERNEL ? "true" : "false");
    else
        fputs(",\"rate_bps\":null,\"burst\":null,\"kernel_pacing\":false", stdout);
}

/* The JSON members of a summary, without the braces. */
static void send_json(const char *backend, const struct flow_cfg *c,
                      const struct tx_state *st, const struct volley_stats *vs)
{
    int64_t span = st->end_ns - st->start_ns;
    uint64_t bytes = st->dgrams * c->size;

    printf("\"datagrams\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.6f"
           ",\"syscalls\":%" PRIu64 ",\"gso_sends\":%" PRIu64 ",\"errors\":%" PRIu64
           ",\"dgrams_per_s\":%.1f,\"mbit_per_s\":%.3f,\"rate_bps\":%.0f"
           ",\"payload_rate_bps\":%.0f,\"header_bytes\":%u,\"paced\":%" PRIu64,
           st->dgrams, bytes, cli_ns_seconds(span), vs->tx_syscalls, vs->tx_gso_sends,
           vs->tx_errors, cli_rate((double)st->dgrams, span),
           cli_rate((double)bytes * 8 / 1e6, span),
           cli_rate(wire_bits(st, c, st->dgrams), span),
           cli_rate((double)bytes * 8, span), st->overhead, vs->tx_paced);
    if (c->rate_bps)
        printf(
            ",\"target_rate_bps\":%" PRIu64 ",\"burst\":%" PRIu64 ",\"kernel_pacing\":%s",
            c->rate_bps, c->burst, c->pace_flags & VOLLEY_PACE_KERNEL ? "true" : "false");
    else
        fputs(",\"target_rate_bps\":null", stdout);
    fputs(",\"backend\":", stdout);
    cli_json_string(backend);
}

/* Kernel pacing is only enforced by the fq qdisc; say so when it was not. */
static void kernel_pacing_note(const struct flow_cfg *c, double achieved)
{
    if (!(c->pace_flags & VOLLEY_PACE_KERNEL) || achieved <= 1.1 * (double)c->rate_bps)
        return;
    fprintf(stderr,
            "%s: note: the kernel did not hold the rate; SO_MAX_PACING_RATE needs the "
            "fq qdisc on the outgoing device (see `volley probe`)\n",
            cli_name);
}

static void send_summary(const char *backend, const struct volley_stats *vs,
                         const struct flow_cfg *c, struct tx_state *st)
{
    int64_t span = st->end_ns - st->start_ns;
    uint64_t bytes = st->dgrams * c->size;
    double wire = cli_rate(wire_bits(st, c, st->dgrams), span);
    char w[32], p[32], t[32];

    kernel_pacing_note(c, wire);
    /* The datagrams no line has shown yet: the lines add up to the total. */
    st->tick_dgrams = st->dgrams - st->counted;
    if (c->json ? st->tick_dgrams > 0 : st->ticks && st->end_ns > st->tick_ns)
        tx_interval(st, c, st->end_ns > st->tick_ns ? st->end_ns : st->tick_ns);
    if (c->json) {
        cli_doc_end();
        send_json(backend, c, st, vs);
        cli_icmp_json(&st->icmp);
        return;
    }
    cli_format_bps(w, sizeof(w), wire);
    cli_format_bps(p, sizeof(p), cli_rate((double)bytes * 8, span));
    printf("sent %" PRIu64 " datagrams, %" PRIu64 " bytes in %.3f s: %.0f dgrams/s, "
           "%s with headers (payload %s)\n",
           st->dgrams, bytes, cli_ns_seconds(span), cli_rate((double)st->dgrams, span), w,
           p);
    if (c->rate_bps) {
        cli_format_bps(t, sizeof(t), (double)c->rate_bps);
        printf("target %s (%s pacing): achieved %.1f%%, %" PRIu64
               " calls cut short by the pacer\n",
               t, c->pace_flags & VOLLEY_PACE_KERNEL ? "kernel" : "library",
               100.0 * wire / (double)c->rate_bps, vs->tx_paced);
    }
    printf("backend %s, %" PRIu64 " send calls, %" PRIu64 " GSO sends, %" PRIu64
           " errors\n",
           backend, vs->tx_syscalls, vs->tx_gso_sends, vs->tx_errors);
    if (st->icmp.read) {
        char why[256];

        cli_icmp_text(&st->icmp, why, sizeof(why));
        printf("error reports: %s\n", why);
    }
}

/* Every datagram has its own buffer: each carries its own sequence number. */
static struct volley_dgram *send_buffers(const struct flow_cfg *c)
{
    struct volley_dgram *d = calloc(c->batch, sizeof(*d));
    /* Empty datagrams still need a buffer to point into. */
    uint8_t *payload = calloc(c->batch, c->size ? c->size : 1);

    if (!d || !payload) {
        free(d);
        free(payload);
        return NULL;
    }
    for (uint64_t i = 0; i < c->batch; i++) {
        d[i].data = payload + i * c->size;
        d[i].len = c->size;
        d[i].peer = c->peer;
    }
    return d;
}

static int send_open(volley_sock **s, const struct flow_cfg *c)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    int err;

    o.backend = c->backend;
    o.disable = c->disable;
    o.pace_rate_bps = c->rate_bps;
    o.pace_burst = (uint32_t)c->burst;
    o.pace_flags = c->pace_flags;
    o.enable = VOLLEY_F_RECVERR; /* to say which error a closed port answers */
    err = volley_open(s, c->peer.sa.sa_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0", &o);
    if (err < 0)
        return cli_runtime_error(c->rate_bps ? "open with pacing" : "open", err);
    return 0;
}

static int send_run(const struct flow_cfg *c)
{
    struct tx_state st = {.overhead = cli_ip_overhead(&c->peer)};
    struct volley_dgram *d;
    volley_sock *s;
    int err;

    if (send_open(&s, c) != 0)
        return 1;
    d = send_buffers(c);
    if (!d) {
        volley_close(s);
        return cli_runtime_error("send", -ENOMEM);
    }
    cli_catch_signals();
    cli_doc_begin(send_args, c);
    st.start_ns = cli_mono_ns();
    err = send_loop(s, c, d, &st, NULL);
    if (err == 0) {
        struct volley_stats vs = {0};

        volley_get_stats(s, &vs, sizeof(vs));
        send_summary(volley_backend_name(s), &vs, c, &st);
    }
    free(d[0].data);
    free(d);
    volley_close(s);
    return err < 0 ? cli_runtime_error("send", err) : 0;
}

#if VOLLEY_HAVE_LINUX /* --threads: reuseport groups, CPU pinning */
/* ---- --threads ---- */

struct tx_thread {
    struct team *team;
    unsigned i;
    struct flow_cfg cfg; /* this thread's share of --count and --rate */
    bool none;           /* --count left nothing to this thread */
    volley_sock *s;
    struct tx_state st;
    struct volley_stats vs;
    int err;
};

static void *tx_thread_main(void *arg)
{
    struct tx_thread *t = arg;
    struct volley_dgram *d = NULL;
    struct volley_opts o = VOLLEY_OPTS_INIT;
    int err;

    o.backend = t->cfg.backend;
    o.disable = t->cfg.disable;
    o.pace_rate_bps = t->cfg.rate_bps;
    o.pace_burst = (uint32_t)t->cfg.burst;
    o.pace_flags = t->cfg.pace_flags;
    o.enable = VOLLEY_F_RECVERR;
    err = volley_open(&t->s,
                      t->cfg.peer.sa.sa_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0", &o);
    if (err == 0 && !(d = send_buffers(&t->cfg)))
        err = -ENOMEM;
    team_ready(t->team, t->i, err);
    t->st.start_ns = t->st.end_ns = cli_mono_ns();
    if (err == 0 && !t->none)
        err = send_loop(t->s, &t->cfg, d, &t->st, &t->team->pub[t->i]);
    team_done(t->team, t->i);
    if (t->s)
        volley_get_stats(t->s, &t->vs, sizeof(t->vs));
    if (d)
        free(d[0].data);
    free(d);
    t->err = err;
    return NULL;
}

/* Thread i's part of a total shared out among n: the first ones take the
 * remainder. */
static uint64_t share(uint64_t total, unsigned n, unsigned i)
{
    return total / n + (i < total % n);
}

/* The lines of all threads, from what they publish, until every thread is
 * done or a signal comes. */
static void tx_watch(struct team *team, const struct flow_cfg *c, struct tx_state *agg)
{
    agg->start_ns = agg->tick_ns = cli_mono_ns();
    for (;;) {
        int64_t now = cli_mono_ns();
        bool running = team_running(team) > 0;

        agg->dgrams = team_sum(team, TX_DGRAMS);
        while (now - agg->tick_ns >= NS_PER_S) {
            agg->tick_dgrams = agg->dgrams - agg->counted;
            tx_interval(agg, c, agg->tick_ns + NS_PER_S);
        }
        if (!running || cli_stop)
            break;
        team_nap(agg->tick_ns + NS_PER_S);
    }
    atomic_store(&cli_halt, true);
}

static void tx_threads_summary(const struct team *team, const struct flow_cfg *c,
                               struct tx_thread *t, struct tx_state *agg)
{
    struct volley_stats vs = {0};
    const char *backend = volley_backend_name(t[0].s);

    agg->dgrams = 0;
    agg->start_ns = t[0].st.start_ns;
    agg->end_ns = t[0].st.end_ns;
    for (unsigned i = 0; i < team->n; i++) {
        const struct tx_state *s = &t[i].st;

        agg->dgrams += s->dgrams;
        if (agg->icmp.read == 0)
            agg->icmp.first = s->icmp.first;
        /* threads send to one ADDR: their first reports are most often alike */
        if (s->icmp.read && s->icmp.first.error == agg->icmp.first.error)
            agg->icmp.same += s->icmp.same;
        agg->icmp.read += s->icmp.read;
        agg->icmp.reports += s->icmp.reports;
        agg->start_ns = s->start_ns < agg->start_ns ? s->start_ns : agg->start_ns;
        agg->end_ns = s->end_ns > agg->end_ns ? s->end_ns : agg->end_ns;
        vs.tx_syscalls += t[i].vs.tx_syscalls;
        vs.tx_gso_sends += t[i].vs.tx_gso_sends;
        vs.tx_errors += t[i].vs.tx_errors;
        vs.tx_paced += t[i].vs.tx_paced;
    }
    if (!c->json) {
        send_summary(backend, &vs, c, agg);
        for (unsigned i = 0; i < team->n; i++)
            printf("thread %u: %" PRIu64 " datagrams, %" PRIu64 " send calls\n", i,
                   t[i].st.dgrams, t[i].vs.tx_syscalls);
        return;
    }
    send_summary(backend, &vs, c, agg);
    printf(",\"threads\":%u,\"per_thread\":[", team->n);
    for (unsigned i = 0; i < team->n; i++) {
        fputs(i ? ",{" : "{", stdout);
        send_json(volley_backend_name(t[i].s), &t[i].cfg, &t[i].st, &t[i].vs);
        team_json_cpu(team, i);
        putchar('}');
    }
    putchar(']');
}

static int send_run_threads(const struct flow_cfg *c)
{
    static struct tx_thread t[CLI_THREADS_MAX];
    unsigned n = team_size(c);
    struct tx_state agg = {.overhead = cli_ip_overhead(&c->peer)};
    struct team team;
    int err;

    if (team_init(&team, n, c->pin) < 0)
        return cli_runtime_error("send", -ENOMEM);
    for (unsigned i = 0; i < n; i++) {
        t[i] = (struct tx_thread){.team = &team, .i = i, .cfg = *c};
        t[i].st.overhead = agg.overhead;
        t[i].cfg.count = c->count ? share(c->count, n, i) : 0;
        t[i].none = c->count && t[i].cfg.count == 0;
        t[i].cfg.rate_bps = c->rate_bps ? share(c->rate_bps, n, i) : 0;
        t[i].cfg.quiet = true; /* the lines are the main thread's */
    }
    cli_catch_signals();
    err = team_start(&team, tx_thread_main, t, sizeof(t[0]));
    if (err == 0)
        err = team_await(&team);
    if (err == 0) {
        cli_doc_begin(send_args, c);
        tx_watch(&team, c, &agg);
    }
    team_join(&team);
    for (unsigned i = 0; i < n && err == 0; i++)
        err = t[i].err;
    if (err == 0)
        tx_threads_summary(&team, c, t, &agg);
    for (unsigned i = 0; i < n; i++)
        if (t[i].s)
            volley_close(t[i].s);
    return err < 0 ? cli_runtime_error("send", err) : 0;
}
#endif

int cmd_send(int argc, char **argv)
{
    static const struct cli_cmd cmd = {
        .shared = CLI_F_COUNT | CLI_F_DURATION | CLI_F_SIZE | CLI_F_BATCH |
                  CLI_F_BACKEND | CLI_F_NO_GSO | CLI_F_THREADS,
        .own = {{"rate", required_argument, NULL, 'r'},
                {"burst", required_argument, NULL, OPT_BURST},
                {"kernel-pacing", no_argument, NULL, OPT_KERNEL_PACING}},
        .usage = send_usage,
        .option = send_option,
        .operands = send_operands,
    };
    struct flow_cfg c = {.size = 1200, .batch = 256};
    int rc = cli_parse(argc, argv, &cmd, &c);

    if (rc != PARSE_RUN)
        return rc;
    if (c.count == 0 && c.duration_ns == 0)
        c.duration_ns = 5 * NS_PER_S;
    if (c.threads > 1 && c.rate_bps && c.rate_bps < c.threads)
        return cli_usage_error("--rate %" PRIu64 " is less than a bit/s per thread",
                               c.rate_bps);
#if VOLLEY_HAVE_LINUX
    if (team_size(&c) > 1)
        return send_run_threads(&c);
#endif
    return send_run(&c);
}
