/*
 * volley recv: a counting sink. Every datagram is counted; the first stream
 * carrying the sequence header is also checked for loss, duplicates and
 * reordering, and its interarrival jitter is estimated as RTP does
 * (RFC 3550, 6.4.1) from the header's send time and the arrival time.
 */
#include "cli.h"
#include "seq.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What `volley recv` has seen. Intervals start at the first datagram. */
struct rx_state {
    struct seq_track seq;
    bool have_stream;
    uint32_t stream;
    uint64_t dgrams, bytes, wire_bytes, truncated;
    int64_t first_ns, last_ns;
    int64_t tick_ns; /* start of the interval being counted */
    uint64_t tick_dgrams, tick_bytes;
    unsigned ticks;
    /* jitter: transit = arrival - send time, both CLOCK_REALTIME */
    bool have_transit;
    int64_t transit_ns;
    double jitter_ns;
};

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
          "  -j, --json           print only the summary, as one JSON object\n"
          "  -h, --help           show this help\n"
          "\n"
          "Each second: the interval, datagrams and payload Mbit/s in it; lost,\n"
          "reordered and duplicated so far; and the interarrival jitter in ms\n"
          "(RFC 3550: arrival time against the header's send time, smoothed by 1/16).\n"
          "Then a summary with the rate counted on the wire as the pacer of `volley\n"
          "send --rate` counts it (payload + 28 bytes for IPv4, 48 for IPv6).\n"
          "\n" CLI_NUMBER_HELP "\n" SEQ_HDR_HELP,
          stdout);
}

static void print_jitter(const struct rx_state *st)
{
    if (st->have_transit)
        printf(" %10.3f\n", st->jitter_ns / 1e6);
    else
        printf(" %10s\n", "-");
}

/* Closes the interval at end_ns, printing it unless only JSON is wanted. */
static void rx_interval(struct rx_state *st, const struct flow_cfg *c, int64_t end_ns)
{
    double from = cli_ns_seconds(st->tick_ns - st->first_ns);

    if (c->json) {
        st->tick_ns = end_ns;
        return;
    }
    if (st->ticks++ == 0)
        printf("%-13s %10s %10s %10s %10s %10s %10s\n", "interval(s)", "dgrams", "Mbit/s",
               "lost", "reordered", "duplicated", "jitter(ms)");
    printf("%6.2f-%-6.2f %10" PRIu64 " %10.2f %10" PRIu64 " %10" PRIu64 " %10" PRIu64,
           from, from + cli_ns_seconds(end_ns - st->tick_ns), st->tick_dgrams,
           cli_rate((double)st->tick_bytes * 8 / 1e6, end_ns - st->tick_ns),
           seq_track_lost(&st->seq), st->seq.reordered, st->seq.duplicated);
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

/* RFC 3550 6.4.1: J += (|D| - J) / 16, D the change in transit time between
 * consecutive arrivals. Clock offsets between the hosts cancel out. */
static void rx_jitter(struct rx_state *st, const struct seq_hdr *h, int64_t arrival)
{
    int64_t transit;

    if (h->sent_ns == 0 || h->sent_ns > INT64_MAX)
        return;
    transit = arrival - (int64_t)h->sent_ns;
    if (st->have_transit)
        st->jitter_ns += (fabs((double)(transit - st->transit_ns)) - st->jitter_ns) / 16;
    st->transit_ns = transit;
    st->have_transit = true;
}

static void rx_account(struct rx_state *st, const struct flow_cfg *c,
                       const struct volley_dgram *d, unsigned n, int64_t now)
{
    int64_t real_now = cli_real_ns();
    struct seq_hdr h;

    if (n == 0)
        return;
    if (c->count && n > c->count - st->dgrams)
        n = (unsigned)(c->count - st->dgrams);
    if (st->dgrams == 0)
        st->first_ns = st->tick_ns = now;
    st->last_ns = now;
    for (unsigned i = 0; i < n; i++) {
        st->bytes += d[i].len;
        st->tick_bytes += d[i].len;
        st->wire_bytes += d[i].len + cli_ip_overhead(&d[i].peer);
        if (d[i].flags & VOLLEY_DGRAM_TRUNC)
            st->truncated++;
        if (!seq_hdr_decode(d[i].data, d[i].len, &h))
            continue;
        if (!st->have_stream) {
            st->have_stream = true;
            st->stream = h.stream;
        }
        if (h.stream != st->stream)
            continue;
        seq_track_add(&st->seq, h.seq);
        /* The kernel's receive time when it gave one: a batch read at once
         * would otherwise look like a burst of arrivals. */
        rx_jitter(st, &h, d[i].flags & VOLLEY_DGRAM_TSTAMP ? d[i].rx_ns : real_now);
    }
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

static int recv_loop(volley_sock *s, const struct flow_cfg *c, struct rx_state *st)
{
    struct volley_dgram d[CLI_RX_BATCH];
    int64_t end = c->duration_ns > 0 ? cli_mono_ns() + c->duration_ns : INT64_MAX;

    while (!cli_stop) {
        int64_t t = cli_mono_ns();
        int n = volley_recv_wait(s, d, CLI_RX_BATCH,
                                 cli_wait_ms(t, recv_wake(st, c, t, end)));
        int64_t now = cli_mono_ns();

        if (n < 0)
            return n;
        rx_ticks(st, c, now, n > 0);
        rx_account(st, c, d, (unsigned)n, now);
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

static void recv_json(volley_sock *s, const struct volley_stats *vs, struct rx_state *st)
{
    int64_t span = st->last_ns - st->first_ns;

    printf(
        "{\"datagrams\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.6f"
        ",\"syscalls\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"duplicated\":%" PRIu64
        ",\"reordered\":%" PRIu64 ",\"truncated\":%" PRIu64 ",\"kernel_drops\":%" PRIu64
        ",\"dgrams_per_s\":%.1f,\"mbit_per_s\":%.3f,\"rate_bps\":%.0f"
        ",\"payload_rate_bps\":%.0f,\"jitter_ms\":",
        st->dgrams, st->bytes, cli_ns_seconds(span), vs->rx_syscalls,
        seq_track_lost(&st->seq), st->seq.duplicated, st->seq.reordered, st->truncated,
        vs->rx_kernel_drops, span_rate(st, (double)st->dgrams),
        span_rate(st, (double)st->bytes * 8 / 1e6),
        span_rate(st, (double)st->wire_bytes * 8), span_rate(st, (double)st->bytes * 8));
    if (st->have_transit)
        printf("%.6f", st->jitter_ns / 1e6);
    else
        fputs("null", stdout);
    fputs(",\"backend\":", stdout);
    cli_json_string(volley_backend_name(s));
    if (st->have_stream)
        printf(",\"stream\":%" PRIu32 "}\n", st->stream);
    else
        puts(",\"stream\":null}");
}

static void recv_summary(volley_sock *s, const struct flow_cfg *c, struct rx_state *st)
{
    struct volley_stats vs = {0};
    int64_t span = st->last_ns - st->first_ns;
    char wire[32], payload[32];

    volley_get_stats(s, &vs, sizeof(vs));
    if (c->json) {
        recv_json(s, &vs, st);
        return;
    }
    if (st->ticks && st->last_ns > st->tick_ns)
        rx_interval(st, c, st->last_ns);
    cli_format_bps(wire, sizeof(wire), span_rate(st, (double)st->wire_bytes * 8));
    cli_format_bps(payload, sizeof(payload), span_rate(st, (double)st->bytes * 8));
    printf("received %" PRIu64 " datagrams, %" PRIu64 " bytes in %.3f s: %.0f dgrams/s, "
           "%s (payload %s)\n",
           st->dgrams, st->bytes, cli_ns_seconds(span), span_rate(st, (double)st->dgrams),
           wire, payload);
    printf("backend %s, %" PRIu64 " receive calls, truncated %" PRIu64
           ", kernel drops %" PRIu64 "\n",
           volley_backend_name(s), vs.rx_syscalls, st->truncated, vs.rx_kernel_drops);
    if (!st->have_stream) {
        puts("no sequence header seen");
        return;
    }
    printf("stream %08" PRIx32 ": lost %" PRIu64 ", duplicated %" PRIu64
           ", reordered %" PRIu64,
           st->stream, seq_track_lost(&st->seq), st->seq.duplicated, st->seq.reordered);
    if (st->have_transit)
        printf(", jitter %.3f ms\n", st->jitter_ns / 1e6);
    else
        puts(", no send times");
}

static int recv_run(const struct flow_cfg *c)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    struct rx_state st;
    volley_sock *s;
    int err;

    memset(&st, 0, sizeof(st));
    err = seq_track_init(&st.seq);
    if (err < 0)
        return cli_runtime_error("receive", err);
    o.enable = VOLLEY_F_TIMESTAMP;
    if (cli_listen(&s, c, &o) != 0) {
        seq_track_free(&st.seq);
        return 1;
    }
    cli_catch_signals();
    err = recv_loop(s, c, &st);
    if (err == 0)
        recv_summary(s, c, &st);
    seq_track_free(&st.seq);
    volley_close(s);
    return err < 0 ? cli_runtime_error("receive", err) : 0;
}

int cmd_recv(int argc, char **argv)
{
    static const struct cli_cmd cmd = {
        .shared = CLI_F_COUNT | CLI_F_DURATION | CLI_F_IDLE | CLI_F_BACKEND |
                  CLI_F_NO_GSO | CLI_F_NO_GRO,
        .usage = recv_usage,
        .option = cli_flow_option,
        .operands = cli_bind_addr,
    };
    struct flow_cfg c = {.idle_ns = 2 * NS_PER_S};
    int rc = cli_parse(argc, argv, &cmd, &c);

    return rc == PARSE_RUN ? recv_run(&c) : rc;
}
