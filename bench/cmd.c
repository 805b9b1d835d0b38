/* SPDX-License-Identifier: MIT */
/*
 * volley bench, the command: every I/O path side by side over loopback, at
 * several payload sizes, against a plain sendto/recvfrom baseline (and
 * iperf3 when it is installed), plus a ping-pong latency row per path.
 *
 * This file is the command's face: --help, the options and their checks,
 * the JSON "args", and which matrix runs: the datagram one (udp.c, printed
 * by report.c) or --tcp, --unix or --threads (tcp.c, unix.c, threads.c).
 */
#include "bench.h"
#include "udp.h"

#include "cli.h"

#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#define MAX_REPEAT BENCH_RUNS_MAX
#define ALL_PATHS  ((1u << BENCH_NPATHS) - 1)

static void bench_usage(void)
{
    fputs(
        "Usage: volley bench [options]\n"
        "Compare I/O paths over loopback (127.0.0.1), a sender and a receiver thread\n"
        "per cell, for each payload size:\n"
        "  baseline    plain sendto/recvfrom, one datagram per call, no libvolley\n"
        "  raw         the ceiling, no libvolley: sendmmsg of 32 GSO buffers of up to\n"
        "              64 KiB, recvmmsg into 32 GRO buffers, counting datagrams only\n"
        "  scalar      volley, scalar backend\n"
        "  mmsg        volley, mmsg backend, GSO and GRO off\n"
        "  gso+gro     volley, mmsg backend, sender GSO, receiver GRO\n"
        "  gso-split   as gso+gro, the sender hands GSO buffers (as raw): the\n"
        "              receiver's split into descriptors against raw\n"
        "  gso->plain  volley, mmsg backend, sender GSO, receiver without GRO\n"
        "  gro-segs    as gso+gro, the receiver takes GRO buffers whole\n"
        "              (VOLLEY_F_GRO_SEGMENTS): no per-datagram work\n"
        "  uring       volley, uring backend, GSO and GRO off\n"
        "  uring+gso   volley, uring backend, sender GSO, receiver GRO\n"
        "  uring+zc    as uring+gso, every send zero-copy (SENDMSG_ZC)\n"
        "  tools       volley send into volley recv, as two processes with their\n"
        "              defaults (the README's commands); CPU costs not measured\n"
        "  iperf3      the iperf3 program (UDP, -b 0), when it is installed\n"
        "and a latency row per path (not raw, tools or iperf3): ping-pong, one\n"
        "64-byte datagram in flight, echoed by the other thread. Rows `volley\n"
        "probe` finds unavailable here are skipped with a note.\n"
        "\n"
        "      --seconds S     sending time per cell and run, 0.001 to 60\n"
        "                      (3 decimals; default 0.25)\n"
        "      --repeat N      runs per cell, interleaved across cells; the median\n"
        "                      is reported: 1 to 100 (default 3)\n"
        "      --sizes LIST    payload sizes, 1 to 16 of them, comma-separated, each\n"
        "                      1 to 65507 (default 64,512,1200,1472)\n"
        "      --paths LIST    paths to run, comma-separated (default all); ratios\n"
        "                      need baseline (and raw) in the list\n"
        "      --no-latency    leave out the latency rows\n"
        "      --cpu TX,RX     pin the sender (ping client) thread to CPU TX and the\n"
        "                      receiver (echo) thread to CPU RX: 0 to 1023, CPUs\n"
        "                      this process may run on\n"
        "      --plot FILE     also draw the results as an SVG chart into FILE\n"
        "      --tcp           the TCP matrix instead (takes --seconds, --repeat,\n"
        "                      --plot and --json): see below\n"
        "      --unix          the AF_UNIX socketpair rows instead (takes --repeat\n"
        "                      and --json): see below\n"
        "      --threads       one loop per core instead (takes --seconds, --repeat\n"
        "                      and --json): see below\n"
        "  -j, --json          print one JSON document (volley(1), JSON OUTPUT):\n"
        "                      the table's header and a cells array, one object\n"
        "                      per cell\n"
        "  -h, --help          show this help\n"
        "\n"
        "Throughput columns: received datagrams/s (median) and the spread of the\n"
        "runs ((max - min) / median), payload Gbit/s, system calls and thread CPU ns\n"
        "per datagram sent (tx) and received (rx), datagrams sent, received and lost\n"
        "over all runs, and the ratios to the baseline and to raw (/raw) at the same\n"
        "size. Latency columns: round-trip p50 and p99 (medians of the runs), min\n"
        "and max, round trips measured, requests lost, and p50 relative to the\n"
        "baseline.\n"
        "Progress goes to standard error: a live line on a terminal, else a plain\n"
        "line at the first cell and then every 5 seconds at most.\n"
        "\n"
        "With --tcp: TCP echo, ping-pong, at 1, 50, 300 and 1000 connections and\n"
        "128 and 4096-byte requests. Each server is a child process: `volley\n"
        "tcp-echo` on the uring and on the epoll loop, and ref, a plain C epoll\n"
        "echo server as the tutorials write it. Each is driven, in turn, by two\n"
        "clients in this process: tcp-load (`volley tcp-load`'s, one volley loop)\n"
        "and plain (plain C epoll, no libvolley, one request in flight per\n"
        "connection, every reply compared with its request). A client's own cost\n"
        "shapes what a server reaches under it: each figure is compared with\n"
        "ref's under the same client. First, under each client side by side:\n"
        "requests/s and the server's CPU ns per request, each with its ratio to\n"
        "ref. Then a row per server and client: requests/s, spread, round-trip\n"
        "p50 and p99 (us), server and client CPU ns per request, the client's\n"
        "load (its CPU time over the run's: near 1.00 the rate is the client's),\n"
        "requests and errors over all runs, and both ratios. Then one stream of\n"
        "65536-byte writes into `volley tcp-echo --discard` (Gbit/s) next to\n"
        "iperf3 -c into iperf3 -s, and the one-connection 128-byte ping-pong\n"
        "next to sockperf pp --tcp against sockperf sr --tcp, each when installed\n"
        "(their -t takes whole seconds: at least 1).\n"
        "\n"
        "With --unix: 10,000 datagrams of 4000 bytes through an AF_UNIX SOCK_DGRAM\n"
        "socketpair, one thread doing both ends in rounds (send a round, receive\n"
        "it): write/read, one system call per datagram and end, against volley\n"
        "(mmsg backend, volley_wrap on the pair's fds) in batches of 64, 128 and\n"
        "256. Columns: datagrams/s (median), spread, system calls of both ends,\n"
        "calls per datagram, the ratio of datagrams/s to write/read and how many\n"
        "times fewer system calls than write/read it made.\n"

        "\n"
        "With --threads: 2 server threads against 1, over loopback. Datagrams: 64-byte\n"
        "datagrams from `volley send --threads 2 --pin` (two flows) into `volley recv\n"
        "--threads N --pin --steer cpu`, the receiver's datagrams/s; TCP: 128-byte\n"
        "ping-pong at 300 connections from the tcp-load client on 2 threads in this\n"
        "process into `volley tcp-echo --threads N`, requests/s. Columns: the median\n"
        "and the ratio of 2 threads to 1. Clients and servers share this machine's\n"
        "CPUs: 2 threads gain only where CPUs are free for them.\n"
        "\n" CLI_NUMBER_HELP,
        stdout);
    if (!VOLLEY_HAVE_LINUX) {
        printf("\nNot available on this platform (built without the Linux parts):\n"
               "--tcp, --threads, --cpu, and the paths\n ");
        for (enum bench_path p = 0; p < BENCH_NPATHS; p++)
            if (bench_path_linux_only(p))
                printf(" %s", bench_path_name(p));
        printf("\n");
    }
}

enum {
    OPT_SECONDS = OPT_OWN,
    OPT_REPEAT,
    OPT_SIZES,
    OPT_PATHS,
    OPT_NO_LATENCY,
    OPT_CPU,
    OPT_PLOT,
    OPT_TCP,
    OPT_UNIX,
    OPT_THREADS_BENCH,
};

static const struct cli_num seconds_num = {
    .flag = "--seconds", .min = 1, .max = 60000, .places = 3, .unit = CLI_UNIT_S};
static const struct cli_num repeat_num = {
    .flag = "--repeat", .min = 1, .max = MAX_REPEAT};
/* Every cell runs over IPv4 loopback. */
static const struct cli_num sizes_num = {
    .flag = "--sizes", .min = 1, .max = VOLLEY_UDP4_MAX, .unit = CLI_UNIT_BYTES};
#if VOLLEY_HAVE_LINUX
static const struct cli_num cpu_num = {.flag = "--cpu", .min = 0, .max = CPU_SETSIZE - 1};
#endif

static int parse_sizes(const char *s, struct bench_cfg *c)
{
    uint64_t v[MAX_SIZES];
    int rc = cli_number_list(s, &sizes_num, 1, MAX_SIZES, v, &c->nsizes);

    for (unsigned i = 0; rc == PARSE_RUN && i < c->nsizes; i++)
        c->sizes[i] = (size_t)v[i];
    return rc;
}

/* Pinned through sched_getaffinity's CPU sets: Linux's. */
static int parse_cpus(const char *s, struct bench_pin *pin)
{
#if !VOLLEY_HAVE_LINUX
    (void)s;
    (void)pin;
    return cli_unavailable("--cpu");
#else
    cpu_set_t allowed;
    uint64_t v[2];
    unsigned n;
    int rc = cli_number_list(s, &cpu_num, 2, 2, v, &n);

    if (rc != PARSE_RUN)
        return rc;
    /* A CPU outside the process's set would fail only once threads start. */
    for (unsigned i = 0; i < n && sched_getaffinity(0, sizeof(allowed), &allowed) == 0;
         i++)
        if (!CPU_ISSET((int)v[i], &allowed))
            return cli_usage_error("--cpu: CPU %" PRIu64 " is not one this process may "
                                   "run on",
                                   v[i]);
    pin->tx = (int)v[0];
    pin->rx = (int)v[1];
    return PARSE_RUN;
#endif
}

static int parse_paths(const char *s, struct bench_cfg *c)
{
    const char *item = s, *comma;

    for (c->paths = 0;; item = comma + 1) {
        enum bench_path p = 0;
        size_t len;

        comma = strchr(item, ',');
        len = comma ? (size_t)(comma - item) : strlen(item);
        while (p < BENCH_NPATHS && (strlen(bench_path_name(p)) != len ||
                                    strncmp(item, bench_path_name(p), len) != 0))
            p++;
        if (p == BENCH_NPATHS)
            return cli_usage_error("--paths: \"%.*s\" in \"%s\" is not a path: want "
                                   "names from `volley bench --help`, comma-separated",
                                   (int)len, item, s);
        if (!VOLLEY_HAVE_LINUX && bench_path_linux_only(p))
            return cli_usage_error("--paths: %s is " CLI_NOT_HERE, bench_path_name(p));
        c->paths |= 1u << p;
        if (!comma)
            return PARSE_RUN;
    }
}

static int bench_option(int opt, void *cfg)
{
    struct bench_cfg *c = cfg;
    uint64_t v;
    int rc;

    switch (opt) {
    case 'j':
        c->json = true;
        return PARSE_RUN;
    case OPT_SECONDS:
        c->seconds_arg = "--seconds";
        rc = cli_number(optarg, &seconds_num, &v);
        if (rc == PARSE_RUN)
            c->seconds = (double)v / 1000;
        return rc;
    case OPT_REPEAT:
        rc = cli_number(optarg, &repeat_num, &v);
        if (rc == PARSE_RUN)
            c->repeat = (unsigned)v;
        return rc;
    case OPT_SIZES:
        c->udp_flag = "--sizes";
        return parse_sizes(optarg, c);
    case OPT_PATHS:
        c->udp_flag = "--paths";
        return parse_paths(optarg, c);
    case OPT_NO_LATENCY:
        c->udp_flag = "--no-latency";
        c->latency = false;
        return PARSE_RUN;
    case OPT_CPU:
        c->udp_flag = "--cpu";
        return parse_cpus(optarg, &c->pin);
    case OPT_TCP:
        if (!VOLLEY_HAVE_LINUX)
            return cli_unavailable("--tcp");
        c->tcp = true;
        return PARSE_RUN;
    case OPT_UNIX:
        c->unix_pair = true;
        return PARSE_RUN;
    case OPT_THREADS_BENCH:
        if (!VOLLEY_HAVE_LINUX)
            return cli_unavailable("--threads");
        c->threads = true;
        return PARSE_RUN;
    case OPT_PLOT:
        c->plot_arg = "--plot";
        if (*optarg == '\0')
            return cli_usage_error("bad --plot '': want a file name");
        c->plot = optarg;
        return PARSE_RUN;
    default:
        return cli_bad_option();
    }
}

static void bench_args(const void *cfg)
{
    const struct bench_cfg *c = cfg;
    const char *sep = "";

    cli_json_key("matrix", true);
    cli_json_string(c->tcp         ? "tcp"
                    : c->unix_pair ? "unix"
                    : c->threads   ? "threads"
                                   : "udp");
    printf(",\"seconds\":%.3f,\"repeat\":%u,\"sizes\":[", c->seconds, c->repeat);
    for (unsigned i = 0; i < c->nsizes; i++)
        printf("%s%zu", i ? "," : "", c->sizes[i]);
    fputs("],\"paths\":[", stdout);
    for (enum bench_path p = 0; p < BENCH_NPATHS; p++) {
        if (!(c->paths & (1u << p)))
            continue;
        printf("%s", sep);
        cli_json_string(bench_path_name(p));
        sep = ",";
    }
    printf("],\"latency\":%s,\"cpu\":", c->latency ? "true" : "false");
    if (c->pin.tx >= 0)
        printf("[%d,%d]", c->pin.tx, c->pin.rx);
    else
        fputs("null", stdout);
    fputs(",\"plot\":", stdout);
    cli_json_string(c->plot);
}

int cmd_bench(int argc, char **argv)
{
    static const struct cli_cmd cmd = {
        .own = {{"seconds", required_argument, NULL, OPT_SECONDS},
                {"repeat", required_argument, NULL, OPT_REPEAT},
                {"sizes", required_argument, NULL, OPT_SIZES},
                {"paths", required_argument, NULL, OPT_PATHS},
                {"no-latency", no_argument, NULL, OPT_NO_LATENCY},
                {"cpu", required_argument, NULL, OPT_CPU},
                {"plot", required_argument, NULL, OPT_PLOT},
                {"tcp", no_argument, NULL, OPT_TCP},
                {"unix", no_argument, NULL, OPT_UNIX},
                {"threads", no_argument, NULL, OPT_THREADS_BENCH}},
        .usage = bench_usage,
        .option = bench_option,
    };
    struct bench_cfg c = {.seconds = 0.25,
                          .sizes = {64, 512, 1200, 1472},
                          .nsizes = 4,
                          .paths = ALL_PATHS,
                          .repeat = 3,
                          .latency = true,
                          .pin = {-1, -1}};
    int rc = cli_parse(argc, argv, &cmd, &c);

    if (rc != PARSE_RUN)
        return rc;
    if ((c.tcp + c.unix_pair + c.threads) > 1)
        return cli_usage_error(
            "--tcp, --unix and --threads are three matrices: pick one");
    if ((c.tcp || c.threads) && (c.udp_flag || (c.threads && c.plot_arg)))
        return cli_usage_error("%s is for datagram paths; %s runs its own matrix",
                               c.udp_flag ? c.udp_flag : "--plot",
                               c.tcp ? "--tcp" : "--threads");
    if (c.unix_pair && (c.udp_flag || c.seconds_arg || c.plot_arg))
        return cli_usage_error(
            "%s is not for --unix, which sends a fixed count and takes "
            "only --repeat and --json",
            c.udp_flag      ? c.udp_flag
            : c.seconds_arg ? c.seconds_arg
                            : c.plot_arg);
    cli_doc_begin(bench_args, &c);
    if (c.unix_pair)
        return bench_unix_main(
            &(struct bench_unix_opts){.repeat = c.repeat, .json = c.json});
#if VOLLEY_HAVE_LINUX
    if (c.threads)
        return bench_threads_main(&(struct bench_threads_opts){
            .seconds = c.seconds, .repeat = c.repeat, .json = c.json});
    if (c.tcp)
        return bench_tcp_main(&(struct bench_tcp_opts){
            .seconds = c.seconds, .repeat = c.repeat, .json = c.json, .plot = c.plot});
#endif
    return bench_udp_main(&c);
}
