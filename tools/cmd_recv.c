/* SPDX-License-Identifier: MIT */
/*
 * volley recv: a counting sink. Every datagram is counted; the first stream
 * carrying the sequence header is also checked for loss, duplicates and
 * reordering, and its interarrival jitter is estimated as RTP does
 * (RFC 3550, 6.4.1) from the header's send time and the arrival time.
 */
#include "cli.h"
#include "seq.h"
#include "team.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What `volley recv` has seen. Intervals start at the first datagram. */
struct rx_state {
    struct seq_rx rx; /* the first sequenced stream: loss, order, jitter */
    uint64_t dgrams, bytes, wire_bytes, truncated;
    int64_t first_ns, last_ns;
    int64_t tick_ns; /* start of the interval being counted */
    uint64_t tick_dgrams, tick_bytes;
    uint64_t counted_dgrams, counted_bytes; /* in the lines printed */
    unsigned ticks;
    /* threads' states summed: no tracker (rx.seq.seen NULL), their losses */
    uint64_t lost;
};

/* What each thread of --threads publishes after every batch. */
enum {
    RX_DGRAMS,
    RX_BYTES,
    RX_LOST,
    RX_REORDERED,
    RX_DUPLICATED,
    RX_FIRST,
    RX_LAST,
    RX_JITTER
};

static uint64_t rx_lost(const struct rx_state *st)
{
    return st->rx.seq.seen ? seq_track_lost(&st->rx.seq) : st->lost;
}

static void recv_usage(void)
{
    fputs("Usage: volley recv ADDR [options]\n"
          "Bind ADDR (\"ip:port\" or \"[ip6]:port\") and count every UDP datagram that\n"
          "arrives. Loss, duplicates, reordering and jitter are tracked for the first\n"
          "stream carrying the sequence header; datagrams without it are only counted.\n"
          "\n"
          "  -c, --count N        stop after N datagrams, 1 to 18446744073709551615\n"
          "  -d, --duration S     stop after S seconds, 0.001 to 1000000 (3 decimals)\n"
          "  -i, --idle S         stop after S seconds without traffic once traffic\n"
          "                       has begun, 0 to 1000000 (3 decimals; default 2;\n"
          "                       0: never)\n"
          "  -b, --backend NAME   auto, scalar, mmsg, uring or xnu (default auto)\n"
          "      --no-gso         turn UDP GSO off\n"
          "      --no-gro         turn UDP GRO off\n"
          "      --threads N      N threads, 1 to 64 (default 1), each with its own\n"
          "                       socket of one SO_REUSEPORT group on ADDR\n"
          "      --steer HOW      which thread a datagram goes to: flow (hash of the\n"
          "                       source address and port), cpu (the CPU the kernel\n"
          "                       took it on) or kernel (its own hash); default "
          "flow\n" CLI_PIN_HELP
          "  -j, --json           print one JSON document instead: the lines and the\n"
          "                       summary (volley(1), JSON OUTPUT)\n"
          "  -h, --help           show this help\n"
          "\n"
          "With --threads, the limits hold for all threads together (--count counts\n"
          "every thread's datagrams), the lines sum the threads (jitter: the largest),\n"
          "each thread tracks the first sequenced stream it sees, and the JSON adds\n"
          "\"threads\", \"steer\" and \"per_thread\", one object per thread.\n"
          "\n"
          "Each second: the interval, datagrams and payload Mbit/s in it; lost,\n"
          "reordered and duplicated so far; and the interarrival jitter in ms\n"
          "(RFC 3550: arrival time against the header's send time, smoothed by 1/16).\n"
          "Then a summary with the rate counted on the wire as the pacer of `volley\n"
          "send --rate` counts it (payload + 28 bytes for IPv4, 48 for "
          "IPv6).\n" CLI_DROPS_HELP "\n" CLI_ADDR_HELP CLI_NUMBER_HELP "\n" SEQ_HDR_HELP,
          stdout);
}

static void print_jitter(const struct rx_state *st)
{
    if (st->rx.have_transit)
        printf(" %10.3f\n", st->rx.jitter_ns / 1e6);
    else
        printf(" %10s\n", "-");
}

static void rx_interval_json(const struct rx_state *st, double from, int64_t span)
{
    cli_doc_interval();
    printf("\"from\":%.3f,\"to\":%.3f,\"datagrams\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"mbit_per_s\":%.3f,\"lost_so_far\":%" PRIu64
           ",\"reordered_so_far\":%" PRIu64 ",\"duplicated_so_far\":%" PRIu64
           ",\"jitter_ms\":",
           from, from + cli_ns_seconds(span), st->tick_dgrams, st->tick_bytes,
           cli_rate((double)st->tick_bytes * 8 / 1e6, span), rx_lost(st),
           st->rx.seq.reordered, st->rx.seq.duplicated);
    if (st->rx.have_transit)
        printf("%.6f}", st->rx.jitter_ns / 1e6);
    else
        fputs("null}", stdout);
}

/* Closes the interval at end_ns, printing it as a line or a JSON object. */
static void rx_interval(struct rx_state *st, const struct flow_cfg *c, int64_t end_ns)
{
    double from = cli_ns_seconds(st->tick_ns - st->first_ns);

    if (c->quiet) {
        st->tick_ns = end_ns;
        return;
    }
    st->counted_dgrams += st->tick_dgrams;
    st->counted_bytes += st->tick_bytes;
    if (c->json) {
        rx_interval_json(st, from, end_ns - st->tick_ns);
        st->ticks++;
        st->tick_dgrams = st->tick_bytes = 0;
        st->tick_ns = end_ns;
        return;
    }
    if (st->ticks++ == 0)
        printf("%-13s %10s %10s %10s %10s %10s %10s\n", "interval(s)", "dgrams", "Mbit/s",
               "lost", "reordered", "duplicated", "jitter(ms)");
    printf("%6.2f-%-6.2f %10" PRIu64 " %10.2f %10" PRIu64 " %10" PRIu64 " %10" PRIu64,
           from, from + cli_ns_seconds(end_ns - st->tick_ns), st->tick_dgrams,
           cli_rate((double)st->tick_bytes * 8 / 1e6, end_ns - st->tick_ns), rx_lost(st),
           st->rx.seq.reordered, st->rx.seq.duplicated);
    print_jitter(st);
    st->tick_dgrams = st->tick_bytes = 0;
    st->tick_ns = end_ns;
}

/* Prints every whole second that has passed, before `now`'s batch is counted.
 * While traffic is quiet the interval it went quiet in stays open: if the
 * stream has ended, the summary closes it at the last datagram rather than
 * print a second it was silent for half of. */
static void rx_ticks(struct rx_state *st, const struct flow_cfg *c, int64_t now,
                     bool arriving)
{
    while (st->dgrams && now - st->tick_ns >= NS_PER_S) {
        if (!arriving && st->last_ns < st->tick_ns + NS_PER_S)
            break;
        rx_interval(st, c, st->tick_ns + NS_PER_S);
    }
}

static void rx_account(struct rx_state *st, const struct flow_cfg *c,
                       const struct volley_dgram *d, unsigned n, int64_t now)
{
    struct seq_rx_sums sums;

    if (n == 0)
        return;
    if (c->count && n > c->count - st->dgrams)
        n = (unsigned)(c->count - st->dgrams);
    if (st->dgrams == 0)
        st->first_ns = st->tick_ns = now;
    st->last_ns = now;
    seq_rx_batch(&st->rx, d, n, cli_real_ns(), &sums);
    st->bytes += sums.bytes;
    st->tick_bytes += sums.bytes;
    st->wire_bytes += sums.wire_bytes;
    st->truncated += sums.truncated;
    st->dgrams += n;
    st->tick_dgrams += n;
}

/* When the receive must wake up with nothing arrived: the end, the idle
 * limit or the next interval line. */
static int64_t recv_wake(const struct rx_state *st, const struct flow_cfg *c, int64_t now,
                         int64_t end)
{
    int64_t wake = end;

    if (st->dgrams && c->idle_ns > 0 && st->last_ns + c->idle_ns < wake)
        wake = st->last_ns + c->idle_ns;
    if (st->dgrams && st->tick_ns + NS_PER_S > now && st->tick_ns + NS_PER_S < wake)
        wake = st->tick_ns + NS_PER_S;
    return wake;
}

/* For the main thread of --threads: relaxed stores, one writer. */
static void rx_publish(struct team_pub *p, const struct rx_state *st)
{
    team_put(p, RX_DGRAMS, st->dgrams);
    team_put(p, RX_BYTES, st->bytes);
    team_put(p, RX_LOST, seq_track_lost(&st->rx.seq));
    team_put(p, RX_REORDERED, st->rx.seq.reordered);
    team_put(p, RX_DUPLICATED, st->rx.seq.duplicated);
    team_put(p, RX_FIRST, (uint64_t)st->first_ns);
    team_put(p, RX_LAST, (uint64_t)st->last_ns);
    team_put(p, RX_JITTER, st->rx.have_transit ? (uint64_t)st->rx.jitter_ns + 1 : 0);
}

static int recv_loop(volley_sock *s, const struct flow_cfg *c, struct rx_state *st,
                     struct team_pub *pub)
{
    struct volley_dgram d[CLI_RX_BATCH];
    int64_t end = c->duration_ns > 0 ? cli_mono_ns() + c->duration_ns : INT64_MAX;

    while (!cli_stopping()) {
        int64_t t = cli_mono_ns();
        int n = volley_recv_wait(s, d, CLI_RX_BATCH,
                                 cli_wait_ms(t, recv_wake(st, c, t, end)));
        int64_t now = cli_mono_ns();

        if (n < 0)
            return n;
        rx_ticks(st, c, now, n > 0);
        rx_account(st, c, d, (unsigned)n, now);
        if (pub && n > 0)
            rx_publish(pub, st);
        if ((c->count && st->dgrams >= c->count) || now >= end)
            break;
        if (st->dgrams && c->idle_ns > 0 && now - st->last_ns >= c->idle_ns)
            break;
    }
    return 0;
}

/* Rates between the first and the last datagram: n datagrams span n - 1
 * gaps, so the first one's share is left out. */
static double span_rate(const struct rx_state *st, double amount)
{
    if (st->dgrams < 2)
        return 0.0;
    return cli_rate(amount * (double)(st->dgrams - 1) / (double)st->dgrams,
                    st->last_ns - st->first_ns);
}

/* The JSON members of a summary, without the braces. */
static void recv_json(const char *backend, const struct volley_stats *vs,
                      const struct rx_state *st)
{
    int64_t span = st->last_ns - st->first_ns;

    printf(
        "\"datagrams\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.6f"
        ",\"syscalls\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"duplicated\":%" PRIu64
        ",\"reordered\":%" PRIu64 ",\"truncated\":%" PRIu64 ",\"kernel_drops\":%" PRIu64
        ",\"dgrams_per_s\":%.1f,\"mbit_per_s\":%.3f,\"rate_bps\":%.0f"
        ",\"payload_rate_bps\":%.0f,\"jitter_ms\":",
        st->dgrams, st->bytes, cli_ns_seconds(span), vs->rx_syscalls, rx_lost(st),
        st->rx.seq.duplicated, st->rx.seq.reordered, st->truncated, vs->rx_kernel_drops,
        span_rate(st, (double)st->dgrams), span_rate(st, (double)st->bytes * 8 / 1e6),
        span_rate(st, (double)st->wire_bytes * 8), span_rate(st, (double)st->bytes * 8));
    if (st->rx.have_transit)
        printf("%.6f", st->rx.jitter_ns / 1e6);
    else
        fputs("null", stdout);
    fputs(",\"backend\":", stdout);
    cli_json_string(backend);
    if (st->rx.have_stream)
        printf(",\"stream\":%" PRIu32, st->rx.stream);
    else
        fputs(",\"stream\":null", stdout);
}

/* The datagrams no line has shown yet, in a last line up to the last
 * datagram: the lines of a JSON document add up to its summary. */
static void rx_last_interval(struct rx_state *st, const struct flow_cfg *c)
{
    st->tick_dgrams = st->dgrams - st->counted_dgrams;
    st->tick_bytes = st->bytes - st->counted_bytes;
    if (c->json ? st->tick_dgrams > 0 : st->ticks && st->last_ns > st->tick_ns)
        rx_interval(st, c, st->last_ns > st->tick_ns ? st->last_ns : st->tick_ns);
}

static void recv_summary(const char *backend, const struct volley_stats *vs,
                         const struct flow_cfg *c, struct rx_state *st)
{
    int64_t span = st->last_ns - st->first_ns;
    char wire[32], payload[32];

    rx_last_interval(st, c);
    if (c->json) {
        cli_doc_end();
        recv_json(backend, vs, st);
        return;
    }
    cli_format_bps(wire, sizeof(wire), span_rate(st, (double)st->wire_bytes * 8));
    cli_format_bps(payload, sizeof(payload), span_rate(st, (double)st->bytes * 8));
    printf("received %" PRIu64 " datagrams, %" PRIu64 " bytes in %.3f s: %.0f dgrams/s, "
           "%s (payload %s)\n",
           st->dgrams, st->bytes, cli_ns_seconds(span), span_rate(st, (double)st->dgrams),
           wire, payload);
    printf("backend %s, %" PRIu64 " receive calls, truncated %" PRIu64
           ", kernel drops %" PRIu64 " " CLI_DROPS_NOTE "\n",
           backend, vs->rx_syscalls, st->truncated, vs->rx_kernel_drops);
    if (!st->rx.have_stream) {
        puts("no sequence header seen");
        return;
    }
    printf("stream %08" PRIx32 ": lost %" PRIu64 ", duplicated %" PRIu64
           ", reordered %" PRIu64,
           st->rx.stream, rx_lost(st), st->rx.seq.duplicated, st->rx.seq.reordered);
    if (st->rx.have_transit)
        printf(", jitter %.3f ms\n", st->rx.jitter_ns / 1e6);
    else
        puts(", no send times");
}

#if VOLLEY_HAVE_LINUX /* --threads: reuseport groups, CPU pinning */
/* ---- --threads ---- */

struct rx_thread {
    struct team *team;
    unsigned i;
    const struct flow_cfg *cfg; /* the run's limits are the main thread's */
    int fd;
    volley_sock *s;
    struct rx_state st;
    struct volley_stats vs;
    int err;
};

static void *rx_thread_main(void *arg)
{
    struct rx_thread *t = arg;
    struct volley_opts o = VOLLEY_OPTS_INIT;
    struct flow_cfg c = *t->cfg;
    int err = seq_track_init(&t->st.rx.seq);

    /* The count and the idle limit are the run's, watched by the main thread;
     * the lines are its too. */
    c.count = 0;
    c.idle_ns = 0;
    c.quiet = true;
    o.enable = VOLLEY_F_TIMESTAMP;
    o.backend = c.backend;
    o.disable = c.disable;
    o.rcvbuf = CLI_RCVBUF;
    if (err == 0)
        err = volley_wrap(&t->s, t->fd, &o);
    if (err < 0)
        close(t->fd); /* the socket's from a wrap on */
    team_ready(t->team, t->i, err);
    if (err == 0)
        err = recv_loop(t->s, &c, &t->st, &t->team->pub[t->i]);
    if (t->s)
        volley_get_stats(t->s, &t->vs, sizeof(t->vs));
    t->err = err;
    return NULL;
}

/* The interval lines of all threads: agg holds the sums published. */
static void rx_watch_ticks(struct team *team, const struct flow_cfg *c,
                           struct rx_state *agg, int64_t now)
{
    uint64_t first = 0, dgrams = team_sum(team, RX_DGRAMS), jitter;

    for (unsigned i = 0; i < team->n; i++) {
        uint64_t f = team_get(&team->pub[i], RX_FIRST);

        if (team_get(&team->pub[i], RX_DGRAMS) && (first == 0 || f < first))
            first = f;
    }
    if (dgrams == 0)
        return;
    if (agg->dgrams == 0)
        agg->first_ns = agg->tick_ns = (int64_t)first;
    agg->tick_dgrams += dgrams - agg->dgrams;
    agg->tick_bytes += team_sum(team, RX_BYTES) - agg->bytes;
    agg->dgrams = dgrams;
    agg->bytes = team_sum(team, RX_BYTES);
    agg->lost = team_sum(team, RX_LOST);
    agg->rx.seq.reordered = team_sum(team, RX_REORDERED);
    agg->rx.seq.duplicated = team_sum(team, RX_DUPLICATED);
    agg->last_ns = (int64_t)team_max(team, RX_LAST);
    jitter = team_max(team, RX_JITTER);
    agg->rx.have_transit = jitter > 0;
    agg->rx.jitter_ns = jitter ? (double)(jitter - 1) : 0;
    rx_ticks(agg, c, now, true);
}

/* Until the run is over: the count, the idle limit, the duration or a
 * signal; then the threads are told to stop. */
static void rx_watch(struct team *team, const struct flow_cfg *c, struct rx_state *agg)
{
    int64_t end = c->duration_ns > 0 ? cli_mono_ns() + c->duration_ns : INT64_MAX;

    for (;;) {
        int64_t now = cli_mono_ns();
        uint64_t n = team_sum(team, RX_DGRAMS);

        rx_watch_ticks(team, c, agg, now);
        if (cli_stopping() || now >= end || (c->count && n >= c->count))
            break;
        if (n && c->idle_ns > 0 && now - (int64_t)team_max(team, RX_LAST) >= c->idle_ns)
            break;
        team_nap(agg->dgrams ? agg->tick_ns + NS_PER_S : end);
    }
    atomic_store(&cli_halt, true);
}

/* The threads' own states, summed once they are joined. */
static void rx_merge(struct rx_state *agg, const struct rx_state *t)
{
    if (t->dgrams && (agg->dgrams == 0 || t->first_ns < agg->first_ns))
        agg->first_ns = t->first_ns;
    if (t->dgrams && t->last_ns > agg->last_ns)
        agg->last_ns = t->last_ns;
    agg->dgrams += t->dgrams;
    agg->bytes += t->bytes;
    agg->wire_bytes += t->wire_bytes;
    agg->truncated += t->truncated;
    agg->lost += rx_lost(t);
    agg->rx.seq.duplicated += t->rx.seq.duplicated;
    agg->rx.seq.reordered += t->rx.seq.reordered;
    if (t->rx.have_transit &&
        (!agg->rx.have_transit || t->rx.jitter_ns > agg->rx.jitter_ns)) {
        agg->rx.have_transit = true;
        agg->rx.jitter_ns = t->rx.jitter_ns;
    }
    if (t->rx.have_stream && !agg->rx.have_stream) {
        agg->rx.have_stream = true;
        agg->rx.stream = t->rx.stream;
    }
}

static void rx_threads_summary(const struct team *team, const struct flow_cfg *c,
                               struct rx_thread *t, struct rx_state *agg)
{
    struct volley_stats vs = {0};
    const char *backend = volley_backend_name(t[0].s);

    agg->dgrams = agg->bytes = 0;
    agg->lost = agg->rx.seq.duplicated = agg->rx.seq.reordered = 0;
    agg->rx.have_transit = false;
    for (unsigned i = 0; i < team->n; i++) {
        rx_merge(agg, &t[i].st);
        vs.rx_syscalls += t[i].vs.rx_syscalls;
        vs.rx_kernel_drops += t[i].vs.rx_kernel_drops;
    }
    if (!c->json) {
        recv_summary(backend, &vs, c, agg);
        for (unsigned i = 0; i < team->n; i++)
            printf("thread %u: %" PRIu64 " datagrams, %" PRIu64 " receive calls, "
                   "kernel drops %" PRIu64 ", lost %" PRIu64 "\n",
                   i, t[i].st.dgrams, t[i].vs.rx_syscalls, t[i].vs.rx_kernel_drops,
                   rx_lost(&t[i].st));
        return;
    }
    recv_summary(backend, &vs, c, agg);
    printf(",\"threads\":%u,\"steer\":\"%s\",\"per_thread\":[", team->n,
           team_steer_name(c->steer));
    for (unsigned i = 0; i < team->n; i++) {
        fputs(i ? ",{" : "{", stdout);
        recv_json(volley_backend_name(t[i].s), &t[i].vs, &t[i].st);
        team_json_cpu(team, i);
        putchar('}');
    }
    putchar(']');
}

static int recv_run_threads(const struct flow_cfg *c)
{
    static struct rx_thread t[CLI_THREADS_MAX];
    struct rx_state agg;
    int fds[CLI_THREADS_MAX], err;
    struct team team;
    unsigned n = team_size(c);

    if (team_init(&team, n, c->pin) < 0)
        return cli_runtime_error("receive", -ENOMEM);
    if (team_group(fds, c, 0) != 0) {
        team_join(&team);
        return 1;
    }
    for (unsigned i = 0; i < n; i++)
        t[i] = (struct rx_thread){.team = &team, .i = i, .cfg = c, .fd = fds[i]};
    cli_catch_signals();
    err = team_start(&team, rx_thread_main, t, sizeof(t[0]));
    if (err == 0)
        err = team_await(&team);
    if (err == 0) {
        team_listening(fds[0], volley_backend_name(t[0].s), n);
        cli_doc_begin(cli_flow_args, c);
        memset(&agg, 0, sizeof(agg));
        rx_watch(&team, c, &agg);
    }
    team_join(&team);
    for (unsigned i = 0; i < n && err == 0; i++)
        err = t[i].err;
    if (err == 0)
        rx_threads_summary(&team, c, t, &agg);
    for (unsigned i = 0; i < n; i++) {
        if (t[i].s)
            volley_close(t[i].s);
        else if (!team.started[i])
            close(fds[i]);
        seq_track_free(&t[i].st.rx.seq);
    }
    return err < 0 ? cli_runtime_error("receive", err) : 0;
}
#endif

static int recv_run(const struct flow_cfg *c)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    struct rx_state st;
    volley_sock *s;
    int err;

    memset(&st, 0, sizeof(st));
    err = seq_track_init(&st.rx.seq);
    if (err < 0)
        return cli_runtime_error("receive", err);
    o.enable = VOLLEY_F_TIMESTAMP;
    if (cli_listen(&s, c, &o) != 0) {
        seq_track_free(&st.rx.seq);
        return 1;
    }
    cli_catch_signals();
    cli_doc_begin(cli_flow_args, c);
    err = recv_loop(s, c, &st, NULL);
    if (err == 0) {
        struct volley_stats vs = {0};

        volley_get_stats(s, &vs, sizeof(vs));
        recv_summary(volley_backend_name(s), &vs, c, &st);
    }
    seq_track_free(&st.rx.seq);
    volley_close(s);
    return err < 0 ? cli_runtime_error("receive", err) : 0;
}

int cmd_recv(int argc, char **argv)
{
    static const struct cli_cmd cmd = {
        .shared = CLI_F_COUNT | CLI_F_DURATION | CLI_F_IDLE | CLI_F_BACKEND |
                  CLI_F_NO_GSO | CLI_F_NO_GRO | CLI_F_THREADS | CLI_F_STEER,
        .usage = recv_usage,
        .option = cli_flow_option,
        .operands = cli_bind_addr,
    };
    struct flow_cfg c = {.idle_ns = 2 * NS_PER_S};
    int rc = cli_parse(argc, argv, &cmd, &c);

    if (rc != PARSE_RUN)
        return rc;
#if VOLLEY_HAVE_LINUX
    if (team_size(&c) > 1)
        return recv_run_threads(&c);
#endif
    return recv_run(&c);
}
