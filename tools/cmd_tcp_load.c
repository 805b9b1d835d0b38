/* SPDX-License-Identifier: MIT */
/*
 * volley tcp-load: N TCP connections on one volley_loop against an echo
 * server (`volley tcp-echo` or any other), ping-pong for round-trip
 * latency or a stream for throughput. The client itself is tcpload.c,
 * which `volley bench --tcp` runs too.
 */
#include "cli.h"
#include "tcpload.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define LOAD_DEFAULT_SECONDS 5
#define LOAD_DEFAULT_SIZE    128

struct load_cfg {
    struct flow_cfg flow; /* ADDR, --count, --duration, --size, --json */
    struct tcpload_cfg run;
    unsigned ticks;
};

static void load_usage(void)
{
    printf("Usage: volley tcp-load ADDR [options]\n"
           "Open --conns TCP connections to the echo server at ADDR (\"ip:port\" or\n"
           "\"[ip6]:port\"), all on one volley loop, and load them for --duration.\n"
           "The run is measured once every connection is up.\n"
           "  pingpong  each connection sends --size bytes and waits for as many back,\n"
           "            then sends again: requests/s and round-trip percentiles\n"
           "  stream    each connection keeps its send queue full of --size writes and\n"
           "            drops whatever comes back: throughput\n"
           "\n"
           "  -n, --conns N        connections, 1 to %u (default 1)\n"
           "  -s, --size BYTES     request or write size, 1 to %u (default %d)\n"
           "  -m, --mode MODE      pingpong or stream (default pingpong)\n"
           "  -d, --duration S     length of the run, 0.001 to %d (3 decimals;\n"
           "                       default %d)\n"
           "  -c, --count N        stop after N requests (stream: writes) in all,\n"
           "                       1 to 18446744073709551615\n"
           "  -b, --backend NAME   auto, uring or epoll (default auto)\n"
           "      --buffers N      receive buffers of the loop, %u to %u (default\n"
           "                       twice --conns, at least the library's 256)\n"
           "      --zc BYTES       send zero-copy from BYTES a send (uring; 1 to\n"
           "                       %u; default never)\n"
           "      --threads N      N threads, 1 to %d and at most --conns (default 1),\n"
           "                       each its own loop with its share of --conns and\n"
           "                       --count\n" CLI_PIN_HELP
           "  -j, --json           print one JSON document instead: the lines and the\n"
           "                       summary (volley(1), JSON OUTPUT)\n"
           "  -h, --help           show this help\n"
           "\n"
           "Each second: the interval, connections open, requests, requests/s and\n"
           "Mbit/s sent. In ping-pong, bytes out are the requests written in the run\n"
           "and bytes in their replies, the last of which may come after its end:\n"
           "the two are equal when every request was answered. The summary gives "
           "requests/s, Gbit/s sent, the round-trip\n"
           "p50, p90, p99, p99.9 and max in microseconds (from a log-linear\n"
           "histogram: each percentile at most 1/64 above the exact one, never\n"
           "below), and the errors: dials that\n"
           "failed, connections lost, short replies. SIGINT or SIGTERM ends the run\n"
           "early; the summary is printed either way. With --threads, the lines and\n"
           "the summary sum the threads (the percentiles are over every round trip,\n"
           "the seconds the longest thread's run) and the JSON adds \"threads\" and\n"
           "\"per_thread\", one object per thread.\n"
           "\n" CLI_ADDR_HELP CLI_NUMBER_HELP,
           TCP_MAX_CONNS, TCP_MAX_SIZE, LOAD_DEFAULT_SIZE, MAX_SECONDS,
           LOAD_DEFAULT_SECONDS, TCP_MIN_BUFFERS, TCP_MAX_BUFFERS, UINT32_MAX,
           CLI_THREADS_MAX);
}

enum { OPT_BUFFERS = OPT_OWN, OPT_ZC };

static const struct cli_num conns_num = {
    .flag = "--conns", .min = 1, .max = TCP_MAX_CONNS};
static const struct cli_num size_num = {
    .flag = "--size", .min = 1, .max = TCP_MAX_SIZE, .unit = CLI_UNIT_BYTES};
static const struct cli_num zc_num = {
    .flag = "--zc", .min = 1, .max = UINT32_MAX, .unit = CLI_UNIT_BYTES};
static const struct cli_num buffers_num = {
    .flag = "--buffers", .min = TCP_MIN_BUFFERS, .max = TCP_MAX_BUFFERS};

static int load_option(int opt, void *cfg)
{
    struct load_cfg *c = cfg;
    uint64_t v;
    int rc;

    switch (opt) {
    case 'n':
        rc = cli_number(optarg, &conns_num, &v);
        if (rc == PARSE_RUN)
            c->run.conns = (unsigned)v;
        return rc;
    case 'm':
        if (strcmp(optarg, "pingpong") == 0)
            c->run.mode = TCPLOAD_PINGPONG;
        else if (strcmp(optarg, "stream") == 0)
            c->run.mode = TCPLOAD_STREAM;
        else
            return cli_usage_error("bad --mode '%s': want pingpong or stream", optarg);
        return PARSE_RUN;
    case 'b':
        if (!tcp_parse_backend(optarg, &c->run.backend))
            return cli_usage_error("bad --backend '%s': want auto, uring or epoll",
                                   optarg);
        return PARSE_RUN;
    case OPT_BUFFERS:
        rc = cli_number(optarg, &buffers_num, &v);
        if (rc == PARSE_RUN)
            c->run.buffers = (unsigned)v;
        return rc;
    case OPT_ZC:
        rc = cli_number(optarg, &zc_num, &v);
        if (rc == PARSE_RUN)
            c->run.zc_threshold = (uint32_t)v;
        return rc;
    case 's':
        rc = cli_number(optarg, &size_num, &v);
        if (rc == PARSE_RUN)
            c->run.size = (size_t)v;
        return rc;
    default:
        return cli_flow_option(opt, &c->flow);
    }
}

/* ADDR is where to connect: it needs a port. */
static int load_operands(int argc, char **argv, void *cfg)
{
    struct load_cfg *c = cfg;
    int rc = cli_bind_addr(argc, argv, &c->flow);

    if (rc == PARSE_RUN && volley_addr_port(&c->flow.peer) == 0)
        return cli_usage_error("ADDR '%s' needs a port other than 0", c->flow.addr);
    if (rc == PARSE_RUN && c->flow.threads > c->run.conns)
        return cli_usage_error("--threads %u is more than --conns %u: each thread needs "
                               "a connection",
                               c->flow.threads, c->run.conns);
    return rc;
}

static void load_tick(const struct tcpload_tick *t, void *arg)
{
    struct load_cfg *c = arg;
    double span = t->to - t->from;

    if (span <= 0)
        return;
    if (c->flow.json) {
        cli_doc_interval();
        printf("\"from\":%.3f,\"to\":%.3f,\"conns\":%u,\"requests\":%" PRIu64
               ",\"requests_per_s\":%.1f,\"bytes_out\":%" PRIu64 "}",
               t->from, t->to, t->conns, t->requests, (double)t->requests / span,
               t->bytes_out);
        return;
    }
    if (c->ticks++ == 0)
        printf("%-13s %7s %10s %10s %10s\n", "interval(s)", "conns", "requests", "req/s",
               "Mbit/s");
    printf("%6.2f-%-6.2f %7u %10" PRIu64 " %10.0f %10.2f\n", t->from, t->to, t->conns,
           t->requests, (double)t->requests / span,
           (double)t->bytes_out * 8 / span / 1e6);
}

static void json_us(const char *key, double us)
{
    if (us < 0)
        printf(",\"%s\":null", key);
    else
        printf(",\"%s\":%.3f", key, us);
}

static const char *mode_name(const struct tcpload_cfg *c)
{
    return c->mode == TCPLOAD_STREAM ? "stream" : "pingpong";
}

/* The JSON members of a summary over conns connections, without the braces. */
static void load_json(const struct load_cfg *c, unsigned conns,
                      const struct tcpload_result *r)
{
    double secs = r->seconds;

    printf("\"mode\":\"%s\",\"conns\":%u,\"connected\":%u,\"size\":%zu"
           ",\"requests\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ",\"bytes_in\":%" PRIu64
           ",\"seconds\":%.6f,\"requests_per_s\":%.1f,\"gbit_per_s\":%.4f",
           mode_name(&c->run), conns, r->connected, c->run.size, r->requests,
           r->bytes_out, r->bytes_in, secs, secs > 0 ? (double)r->requests / secs : 0.0,
           secs > 0 ? (double)r->bytes_out * 8 / secs / 1e9 : 0.0);
    json_us("min_us", r->min_us);
    json_us("mean_us", r->mean_us);
    json_us("p50_us", r->p50_us);
    json_us("p90_us", r->p90_us);
    json_us("p99_us", r->p99_us);
    json_us("p999_us", r->p999_us);
    json_us("max_us", r->max_us);
    printf(",\"latency_error\":%.6f", LAT_HIST_ERROR);
    printf(",\"errors\":%" PRIu64 ",\"first_error\":", r->errors);
    cli_json_string(r->first_error ? volley_strerror(r->first_error) : NULL);
    printf(",\"syscalls\":%" PRIu64 ",\"polls\":%" PRIu64 ",\"sends\":%" PRIu64
           ",\"ring_empty\":%" PRIu64 ",\"zc_sends\":%" PRIu64 ",\"zc_copied\":%" PRIu64
           ",\"stopped\":\"%s\",\"backend\":",
           r->syscalls, r->polls, r->sends, r->ring_empty, r->zc_sends, r->zc_copied,
           r->stopped);
    cli_json_string(r->backend);
}

static void load_summary(const struct load_cfg *c, const struct tcpload_result *r,
                         const struct tcpload_result *per)
{
    unsigned n = c->flow.threads > 1 ? c->flow.threads : 0;
    char rate[32];
    double secs = r->seconds;

    if (c->flow.json) {
        cli_doc_end();
        load_json(c, c->run.conns, r);
        if (n)
            printf(",\"threads\":%u,\"per_thread\":[", n);
        for (unsigned i = 0; i < n; i++) {
            fputs(i ? ",{" : "{", stdout);
            load_json(c, c->run.conns / n + (i < c->run.conns % n), &per[i]);
            printf(",\"thread\":%u}", i);
        }
        if (n)
            putchar(']');
        return;
    }
    cli_format_bps(rate, sizeof(rate), secs > 0 ? (double)r->bytes_out * 8 / secs : 0);
    printf("%s: %u of %u connections, %" PRIu64 " %s in %.3f s: %.0f/s, %s sent\n",
           mode_name(&c->run), r->connected, c->run.conns, r->requests,
           c->run.mode == TCPLOAD_STREAM ? "writes" : "requests", secs,
           secs > 0 ? (double)r->requests / secs : 0.0, rate);
    if (r->samples)
        printf("round trip (us): min %.1f p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max "
               "%.1f\n",
               r->min_us, r->p50_us, r->p90_us, r->p99_us, r->p999_us, r->max_us);
    printf("backend %s, %" PRIu64 " system calls, %" PRIu64 " sends, %" PRIu64
           " errors%s%s; stopped by %s\n",
           r->backend, r->syscalls, r->sends, r->errors,
           r->first_error ? ", first: " : "",
           r->first_error ? volley_strerror(r->first_error) : "", r->stopped);
    for (unsigned i = 0; i < n; i++)
        printf("thread %u: %u connections, %" PRIu64 " %s in %.3f s\n", i,
               per[i].connected, per[i].requests,
               c->run.mode == TCPLOAD_STREAM ? "writes" : "requests", per[i].seconds);
}

static void load_args(const void *cfg)
{
    const struct load_cfg *c = cfg;
    unsigned id = c->run.backend;

    cli_flow_args(&c->flow);
    printf(",\"conns\":%u,\"size\":%zu,\"mode\":\"%s\",\"backend\":\"%s\""
           ",\"buffers\":",
           c->run.conns, c->run.size, mode_name(&c->run),
           id == VOLLEY_BACKEND_URING   ? "uring"
           : id == VOLLEY_BACKEND_EPOLL ? "epoll"
                                        : "auto");
    if (c->run.buffers)
        printf("%u", c->run.buffers);
    else
        fputs("null", stdout);
    if (c->run.zc_threshold)
        printf(",\"zc\":%" PRIu32, c->run.zc_threshold);
    else
        fputs(",\"zc\":null", stdout);
}

static int load_run(struct load_cfg *c)
{
    static struct tcpload_result r, per[CLI_THREADS_MAX];
    int err = tcp_raise_nofile(c->run.conns + TCP_FD_SLACK);

    if (err < 0)
        return cli_runtime_error("raising the open file limit for --conns", err);
    c->run.addr = c->flow.addr;
    c->run.duration_ns = c->flow.duration_ns;
    c->run.count = c->flow.count;
    c->run.tick = load_tick;
    c->run.tick_arg = c;
    cli_catch_signals();
    cli_doc_begin(load_args, c);
    if (c->flow.threads > 1)
        err = tcpload_run_threads(&c->run, c->flow.threads, c->flow.pin, &r, per);
    else
        err = tcpload_run(&c->run, &r);
    if (err < 0)
        return cli_runtime_error(c->flow.addr, err);
    load_summary(c, &r, per);
    return 0;
}

int cmd_tcp_load(int argc, char **argv)
{
    static const struct cli_cmd cmd = {
        .shared = CLI_F_COUNT | CLI_F_DURATION | CLI_F_SIZE | CLI_F_THREADS,
        .own = {{"conns", required_argument, NULL, 'n'},
                {"mode", required_argument, NULL, 'm'},
                {"backend", required_argument, NULL, 'b'},
                {"buffers", required_argument, NULL, OPT_BUFFERS},
                {"zc", required_argument, NULL, OPT_ZC}},
        .usage = load_usage,
        .option = load_option,
        .operands = load_operands,
    };
    struct load_cfg c = {
        .flow = {.duration_ns = LOAD_DEFAULT_SECONDS * NS_PER_S},
        .run = {.conns = 1, .size = LOAD_DEFAULT_SIZE},
    };
    int rc = cli_parse(argc, argv, &cmd, &c);

    return rc == PARSE_RUN ? load_run(&c) : rc;
}
