/* SPDX-License-Identifier: MIT */
/*
 * volley ping: round-trip latency against `volley echo` or any UDP echo
 * server. Each request carries the sequence header; a reply is matched by
 * its stream id and sequence number, so a server that returns the bytes
 * unchanged is all it takes. The send times live in an array sized once
 * from --count; the round-trip times go into the tool's latency histogram
 * (seq.h), as every latency figure the tool prints.
 */
#include "cli.h"
#include "seq.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PING_MAX_COUNT   10000000ull
#define PING_BATCH       64
#define PING_DEFAULT_SEC 30
#define NS_PER_US        1000.0
/* Marks a request that was answered (or failed) in ping_state.sent. */
#define PING_DONE (-1)

struct ping_cfg {
    struct flow_cfg flow; /* ADDR and the flags ping shares with send */
    int64_t interval_ns;  /* 0: ping-pong, one request in flight */
    int64_t timeout_ns;
};

struct ping_state {
    int64_t *sent;        /* per sequence number: CLOCK_MONOTONIC send time, 0 not
                             sent yet, PING_DONE answered or failed */
    struct lat_hist *rtt; /* round-trip times of the replies in time */
    uint8_t *buf;         /* PING_BATCH request payloads */
    uint64_t nsent;       /* requests sent (or failed to send) */
    uint64_t received, late, duplicated, errors, foreign;
    struct cli_icmp icmp;
    uint32_t stream;
    int64_t start_ns, last_send_ns, end_ns;
    bool awaiting; /* ping-pong: the last request is unanswered */
    const char *stopped;
    /* the current one-second interval */
    int64_t tick_ns, tick_sum, tick_max;
    uint64_t tick_sent, tick_received;
    unsigned ticks;
};

static void ping_usage(void)
{
    printf(
        "Usage: volley ping ADDR [options]\n"
        "Measure round-trip times to the UDP echo server at ADDR (`volley echo`, or\n"
        "any server that sends the bytes back) and print their percentiles.\n"
        "By default one request is in flight at a time (ping-pong): the next one goes\n"
        "when the reply is in or --timeout passed. With --rate or --interval,\n"
        "requests go on a fixed schedule whatever the replies do.\n"
        "\n"
        "  -c, --count N        requests to send, 1 to %llu (default 1000)\n"
        "  -r, --rate PPS       send PPS requests per second, 0.001 to 1000000000\n"
        "                       (3 decimals)\n"
        "  -I, --interval MS    send one request every MS milliseconds, 0.000001 to\n"
        "                       1000000 (6 decimals)\n"
        "  -s, --size BYTES     payload bytes per request, %d to %d to an IPv4 (or\n"
        "                       v4-mapped) ADDR, %d to %d to IPv6 (default 64)\n"
        "  -t, --timeout MS     a reply later than this is late, not counted in the\n"
        "                       times: 0.001 to 60000 (3 decimals; default 1000)\n"
        "  -d, --duration S     stop after S seconds in any case, 0.001 to %d\n"
        "                       (3 decimals; default %d)\n"
        "  -b, --backend NAME   auto, scalar, mmsg, uring or xnu (default auto)\n"
        "  -j, --json           print one JSON document instead: the lines and the\n"
        "                       summary (volley(1), JSON OUTPUT)\n"
        "  -h, --help           show this help\n"
        "\n"
        "Each second: requests sent and replies received in it, their mean and\n"
        "largest round-trip time. Then: sent, received, lost (no reply), late,\n"
        "duplicated, and min, mean, p50, p90, p99, p99.9 and max in microseconds.\n"
        "The percentiles come from a log-linear histogram: each is at most 1/64\n"
        "(1.6%%) above the exact one, never below; min, mean and max are exact.\n"
        "Exit status 1 when not one request drew a reply (a late reply counts), as\n"
        "ping(8); ICMP errors the requests drew (a closed port) are named.\n"
        "\n" CLI_ADDR_HELP CLI_NUMBER_HELP "\n" SEQ_HDR_HELP,
        PING_MAX_COUNT, SEQ_HDR_LEN, VOLLEY_UDP4_MAX, SEQ_HDR_LEN, VOLLEY_UDP6_MAX,
        MAX_SECONDS, PING_DEFAULT_SEC);
}

static const struct cli_num count_num = {
    .flag = "--count", .min = 1, .max = PING_MAX_COUNT};
/* --rate and --interval span the same schedules: 1 ns to 1000 s apart. */
static const struct cli_num rate_num = {
    .flag = "--rate", .min = 1, .max = 1000000000000ull, .places = 3};
static const struct cli_num interval_num = {.flag = "--interval",
                                            .min = 1,
                                            .max = 1000000000000ull,
                                            .places = 6,
                                            .unit = CLI_UNIT_MS};
static const struct cli_num timeout_num = {
    .flag = "--timeout", .min = 1, .max = 60000000, .places = 3, .unit = CLI_UNIT_MS};

/* --rate in thousandths of a request per second, or --interval in
 * nanoseconds: the time between two requests. */
static int ping_schedule(int opt, struct ping_cfg *c)
{
    uint64_t v;
    int rc;

    if (c->interval_ns)
        return cli_usage_error("--rate and --interval exclude each other");
    rc = cli_number(optarg, opt == 'r' ? &rate_num : &interval_num, &v);
    if (rc == PARSE_RUN)
        c->interval_ns = (int64_t)(opt == 'r' ? 1000000000000ull / v : v);
    return rc;
}

static int ping_option(int opt, void *cfg)
{
    struct ping_cfg *c = cfg;
    uint64_t us;
    int rc;

    switch (opt) {
    case 'c':
        return cli_number(optarg, &count_num, &c->flow.count);
    case 'r':
    case 'I':
        return ping_schedule(opt, c);
    case 't':
        rc = cli_number(optarg, &timeout_num, &us);
        if (rc == PARSE_RUN)
            c->timeout_ns = (int64_t)us * 1000;
        return rc;
    default:
        return cli_flow_option(opt, &c->flow);
    }
}

static int ping_operands(int argc, char **argv, void *cfg)
{
    struct ping_cfg *c = cfg;

    return cli_dest_addr(argc, argv, &c->flow);
}

static void ping_interval(struct ping_state *st, const struct ping_cfg *c, int64_t end)
{
    double from = cli_ns_seconds(st->tick_ns - st->start_ns);

    if (c->flow.json) {
        cli_doc_interval();
        printf("\"from\":%.3f,\"to\":%.3f,\"sent\":%" PRIu64 ",\"received\":%" PRIu64
               ",\"mean_us\":",
               from, from + cli_ns_seconds(end - st->tick_ns), st->tick_sent,
               st->tick_received);
        if (st->tick_received)
            printf("%.3f,\"max_us\":%.3f}",
                   (double)st->tick_sum / (double)st->tick_received / NS_PER_US,
                   (double)st->tick_max / NS_PER_US);
        else
            fputs("null,\"max_us\":null}", stdout);
    } else {
        if (st->ticks == 0)
            printf("%-13s %10s %10s %10s %10s\n", "interval(s)", "sent", "received",
                   "mean(us)", "max(us)");
        printf("%6.2f-%-6.2f %10" PRIu64 " %10" PRIu64 " %10.1f %10.1f\n", from,
               from + cli_ns_seconds(end - st->tick_ns), st->tick_sent, st->tick_received,
               st->tick_received
                   ? (double)st->tick_sum / (double)st->tick_received / NS_PER_US
                   : 0.0,
               (double)st->tick_max / NS_PER_US);
    }
    st->ticks++;
    st->tick_ns = end;
    st->tick_sent = st->tick_received = 0;
    st->tick_sum = st->tick_max = 0;
}

static void ping_reply(struct ping_state *st, const struct ping_cfg *c,
                       const struct volley_dgram *d, int64_t now)
{
    struct seq_hdr h;
    int64_t rtt;

    if (!seq_hdr_decode(d->data, d->len, &h) || h.stream != st->stream ||
        h.seq >= st->nsent || st->sent[h.seq] == 0) {
        st->foreign++; /* not an answer to this run */
        return;
    }
    if (st->sent[h.seq] == PING_DONE) {
        st->duplicated++;
        return;
    }
    rtt = now - st->sent[h.seq];
    st->sent[h.seq] = PING_DONE;
    if (h.seq + 1 == st->nsent)
        st->awaiting = false;
    if (rtt > c->timeout_ns) {
        st->late++;
        return;
    }
    lat_hist_add(st->rtt, (uint64_t)rtt);
    st->received++;
    st->tick_received++;
    st->tick_sum += rtt;
    if (rtt > st->tick_max)
        st->tick_max = rtt;
}

/* Requests due now: in ping-pong one once the last is answered or timed out;
 * on a schedule, every one whose time has come. */
static unsigned ping_due(const struct ping_state *st, const struct ping_cfg *c,
                         int64_t now)
{
    uint64_t due;

    if (st->nsent >= c->flow.count)
        return 0;
    if (c->interval_ns == 0)
        return !st->awaiting || now - st->last_send_ns >= c->timeout_ns;
    if (now < st->start_ns)
        return 0;
    due = (uint64_t)((now - st->start_ns) / c->interval_ns) + 1;
    if (due > c->flow.count)
        due = c->flow.count;
    if (due <= st->nsent)
        return 0;
    return due - st->nsent > PING_BATCH ? PING_BATCH : (unsigned)(due - st->nsent);
}

static int ping_send(volley_sock *s, struct ping_state *st, const struct ping_cfg *c,
                     unsigned n)
{
    struct volley_dgram d[PING_BATCH];
    int64_t now;
    int k;

    memset(d, 0, sizeof(d));
    for (unsigned i = 0; i < n; i++) {
        d[i].data = st->buf + (size_t)i * c->flow.size;
        d[i].len = c->flow.size;
        d[i].peer = c->flow.peer;
    }
    seq_stamp(st->buf, c->flow.size, n, st->stream, st->nsent);
    now = cli_mono_ns();
    k = volley_send(s, d, n);
    if (k == 0 || k == -ENOBUFS) /* no room now: the loop comes back */
        return volley_wait(s, VOLLEY_WAIT_SEND, 1);
    if (k < 0) {
        /* That request cannot go: it counts as sent, and lost. */
        st->errors++;
        st->sent[st->nsent++] = PING_DONE;
        st->tick_sent++;
        return 0;
    }
    for (int i = 0; i < k; i++)
        st->sent[st->nsent++] = now;
    st->tick_sent += (unsigned)k;
    st->last_send_ns = now;
    st->awaiting = true;
    return 0;
}

/* ICMP errors (port unreachable) come back as reports: a request that drew
 * one will not be answered, so ping-pong need not wait out the timeout. */
static void ping_errors(volley_sock *s, struct ping_state *st)
{
    unsigned n = cli_icmp_drain(s, &st->icmp, false);

    if (n) {
        st->errors += n;
        st->awaiting = false;
    }
}

/* When the loop must look again: the next request, the timeout of the
 * last, the next interval line, or the end. */
static int64_t ping_wake(const struct ping_state *st, const struct ping_cfg *c)
{
    int64_t wake = st->end_ns;

    if (st->nsent < c->flow.count && c->interval_ns)
        wake = st->start_ns + (int64_t)st->nsent * c->interval_ns;
    else if (st->awaiting || st->nsent >= c->flow.count)
        wake = st->last_send_ns + c->timeout_ns;
    if (st->tick_ns + NS_PER_S < wake)
        wake = st->tick_ns + NS_PER_S;
    return wake < st->end_ns ? wake : st->end_ns;
}

/* Waits for replies until wake. volley_wait counts in milliseconds, which
 * would overshoot a schedule of requests less than that apart: a shorter
 * wait polls the socket's descriptor with a nanosecond timeout instead
 * (nothing is buffered inside the library: the last receive found nothing). */
static int ping_wait(volley_sock *s, int64_t now, int64_t wake)
{
    struct pollfd p = {.fd = volley_fd(s), .events = POLLIN};
    struct timespec ts;

    if (wake - now >= NS_PER_MS || p.fd < 0)
        return volley_wait(s, VOLLEY_WAIT_RECV, cli_ms_until(now, wake));
    if (wake <= now)
        return 0;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)(wake - now);
    return ppoll(&p, 1, &ts, NULL) < 0 ? -errno : 0;
}

static bool ping_finished(struct ping_state *st, const struct ping_cfg *c, int64_t now)
{
    if (cli_stop)
        st->stopped = "signal";
    else if (now >= st->end_ns)
        st->stopped = "duration";
    else if (st->nsent >= c->flow.count &&
             (st->received + st->late + st->errors >= st->nsent ||
              now - st->last_send_ns >= c->timeout_ns))
        st->stopped = "count";
    return st->stopped != NULL;
}

static int ping_loop(volley_sock *s, struct ping_state *st, const struct ping_cfg *c)
{
    struct volley_dgram d[PING_BATCH];

    for (;;) {
        int64_t now = cli_mono_ns();
        unsigned due = ping_due(st, c, now);
        int n, err;

        while (now - st->tick_ns >= NS_PER_S)
            ping_interval(st, c, st->tick_ns + NS_PER_S);
        if (due) {
            err = ping_send(s, st, c, due);
            if (err < 0 && err != -EINTR)
                return err;
        }
        n = volley_recv(s, d, PING_BATCH);
        if (n < 0)
            return n;
        now = cli_mono_ns();
        for (int i = 0; i < n; i++)
            ping_reply(st, c, &d[i], now);
        ping_errors(s, st);
        if (ping_finished(st, c, now))
            return 0;
        if (n > 0 || ping_due(st, c, now))
            continue;
        n = ping_wait(s, now, ping_wake(st, c));
        if (n < 0 && n != -EINTR)
            return n;
    }
}

static double us(int64_t ns)
{
    return (double)ns / NS_PER_US;
}

/* The round-trip figures of the summary: percentiles, of which 0 is the
 * smallest time and 100 the largest, and the mean. */
static const struct {
    const char *key, *label;
    double pct; /* negative: the mean */
} rtt_figures[] = {{"min_us", "min", 0},  {"mean_us", "mean", -1},
                   {"p50_us", "p50", 50}, {"p90_us", "p90", 90},
                   {"p99_us", "p99", 99}, {"p999_us", "p99.9", 99.9},
                   {"max_us", "max", 100}};
#define NFIGURES (sizeof(rtt_figures) / sizeof(rtt_figures[0]))

/* One figure in microseconds, from the times of at least one reply. */
static double rtt_us(const struct ping_state *st, double pct)
{
    const struct lat_hist *h = st->rtt;

    if (pct < 0)
        return h->sum / (double)h->n / NS_PER_US;
    if (pct == 0)
        return us((int64_t)h->min);
    return us((int64_t)lat_hist_pct(h, pct));
}

static void ping_stats_json(const struct ping_state *st)
{
    for (size_t i = 0; i < NFIGURES; i++)
        if (st->received)
            printf(",\"%s\":%.3f", rtt_figures[i].key, rtt_us(st, rtt_figures[i].pct));
        else
            printf(",\"%s\":null", rtt_figures[i].key);
}

static void ping_stats_text(const struct ping_state *st)
{
    if (st->received == 0) {
        puts("no replies");
        return;
    }
    fputs("rtt us:", stdout);
    for (size_t i = 0; i < NFIGURES; i++)
        printf("%s%s %.1f", i ? "  " : " ", rtt_figures[i].label,
               rtt_us(st, rtt_figures[i].pct));
    putchar('\n');
}

static uint64_t ping_lost(const struct ping_state *st)
{
    return st->nsent - st->received - st->late;
}

static void ping_summary(volley_sock *s, struct ping_state *st, const struct ping_cfg *c)
{
    int64_t span = cli_mono_ns() - st->start_ns;
    uint64_t n = st->received;

    /* The last, partial second; in JSON also a first one, so that the
     * lines add up to the summary. */
    if (c->flow.json ? st->tick_sent || st->tick_received
                     : st->ticks && st->tick_ns < st->start_ns + span)
        ping_interval(st, c, st->start_ns + span);
    if (c->flow.json) {
        cli_doc_end();
        printf("\"peer\":");
        cli_json_string(c->flow.addr);
        printf(",\"size\":%" PRIu64 ",\"mode\":\"%s\",\"interval_ms\":%.6f"
               ",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
               ",\"late\":%" PRIu64 ",\"duplicated\":%" PRIu64 ",\"errors\":%" PRIu64
               ",\"seconds\":%.6f",
               c->flow.size, c->interval_ns ? "interval" : "ping-pong",
               (double)c->interval_ns / 1e6, st->nsent, n, ping_lost(st), st->late,
               st->duplicated, st->errors, cli_ns_seconds(span));
        ping_stats_json(st);
        printf(",\"latency_error\":%.6f", LAT_HIST_ERROR);
        printf(",\"stopped\":\"%s\",\"backend\":", st->stopped);
        cli_json_string(volley_backend_name(s));
        cli_icmp_json(&st->icmp);
        return;
    }
    printf("--- %s: %" PRIu64 " sent, %" PRIu64 " received, %" PRIu64
           " lost (%.2f%%), %" PRIu64 " late, %" PRIu64 " duplicated, %" PRIu64
           " errors in %.3f s\n",
           c->flow.addr, st->nsent, n, ping_lost(st),
           st->nsent ? 100.0 * (double)ping_lost(st) / (double)st->nsent : 0.0, st->late,
           st->duplicated, st->errors, cli_ns_seconds(span));
    printf("%" PRIu64 "-byte payloads, %s, backend %s; stopped by %s\n", c->flow.size,
           c->interval_ns ? "on a schedule" : "ping-pong", volley_backend_name(s),
           st->stopped);
    ping_stats_text(st);
    if (st->icmp.read) {
        char why[256];

        cli_icmp_text(&st->icmp, why, sizeof(why));
        printf("error reports: %s\n", why);
    }
}

/* As ping(8): exit status 1 when not one request drew a reply (a late one
 * is a reply), saying why when the network said why. */
static int ping_verdict(const struct ping_state *st)
{
    char why[256];

    if (st->nsent == 0 || st->received + st->late > 0)
        return 0;
    cli_icmp_text(&st->icmp, why, sizeof(why));
    fprintf(stderr, "%s: no reply to any of %" PRIu64 " requests%s%s\n", cli_name,
            st->nsent, why[0] ? ": " : "", why);
    if (st->icmp.read)
        cli_note_error(st->icmp.first.error,
                       "no reply to any of %" PRIu64 " requests: %s", st->nsent, why);
    else
        cli_note_error(0, "no reply to any of %" PRIu64 " requests", st->nsent);
    return 1;
}

static void ping_args(const void *cfg)
{
    const struct ping_cfg *c = cfg;

    cli_flow_args(&c->flow);
    printf(",\"size\":%" PRIu64 ",\"mode\":\"%s\",\"interval_ms\":", c->flow.size,
           c->interval_ns ? "interval" : "ping-pong");
    if (c->interval_ns)
        printf("%.6f", (double)c->interval_ns / 1e6);
    else
        fputs("null", stdout);
    printf(",\"timeout_ms\":%.3f", (double)c->timeout_ns / 1e6);
}

static int ping_alloc(struct ping_state *st, const struct ping_cfg *c)
{
    st->sent = calloc(c->flow.count, sizeof(*st->sent));
    st->rtt = calloc(1, sizeof(*st->rtt));
    st->buf = calloc(PING_BATCH, c->flow.size);
    return st->sent && st->rtt && st->buf ? 0 : -ENOMEM;
}

static void ping_free(struct ping_state *st)
{
    free(st->sent);
    free(st->rtt);
    free(st->buf);
}

static int ping_run(const struct ping_cfg *c)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    struct ping_state st;
    volley_sock *s;
    int err;

    memset(&st, 0, sizeof(st));
    o.backend = c->flow.backend;
    o.enable = VOLLEY_F_RECVERR;
    err = volley_open(&s, c->flow.peer.sa.sa_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0",
                      &o);
    if (err < 0)
        return cli_runtime_error("open", err);
    err = ping_alloc(&st, c);
    if (err == 0) {
        cli_catch_signals();
        cli_doc_begin(ping_args, c);
        st.stream = seq_stream_id();
        st.start_ns = st.tick_ns = cli_mono_ns();
        st.end_ns = st.start_ns + c->flow.duration_ns;
        err = ping_loop(s, &st, c);
    }
    if (err == 0)
        ping_summary(s, &st, c);
    ping_free(&st);
    volley_close(s);
    return err < 0 ? cli_runtime_error("ping", err) : ping_verdict(&st);
}

int cmd_ping(int argc, char **argv)
{
    static const struct cli_cmd cmd = {
        .shared = CLI_F_COUNT | CLI_F_DURATION | CLI_F_SIZE | CLI_F_BACKEND,
        .own = {{"rate", required_argument, NULL, 'r'},
                {"interval", required_argument, NULL, 'I'},
                {"timeout", required_argument, NULL, 't'}},
        .usage = ping_usage,
        .option = ping_option,
        .operands = ping_operands,
    };
    struct ping_cfg c = {.flow = {.count = 1000,
                                  .size = 64,
                                  .size_min = SEQ_HDR_LEN,
                                  .duration_ns = PING_DEFAULT_SEC * NS_PER_S},
                         .timeout_ns = 1000 * NS_PER_MS};
    int rc = cli_parse(argc, argv, &cmd, &c);

    return rc == PARSE_RUN ? ping_run(&c) : rc;
}
