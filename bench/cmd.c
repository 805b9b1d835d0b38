/* SPDX-License-Identifier: MIT */
/*
 * volley bench: every I/O path side by side over loopback, at several
 * payload sizes, against a plain sendto/recvfrom baseline (and iperf3 when
 * it is installed), plus a ping-pong latency row per path.
 *
 * Each cell runs --repeat times, interleaved: one repetition visits every
 * cell once, round-robin, before the next starts, so that a slow spell of a
 * noisy machine hits all cells alike rather than all runs of one. Each
 * cell's figure is the median of its runs; ratios are ratios of medians.
 */
#include "bench.h"
#include "cli.h"
#include "seq.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZES    16
#define MAX_REPEAT   BENCH_RUNS_MAX
#define MAX_CELLS    (MAX_SIZES * BENCH_NPATHS + BENCH_NPATHS)
#define LAT_SIZE     64
#define ALL_PATHS    ((1u << BENCH_NPATHS) - 1)
#define IPERF_GUESS  200000.0 /* datagrams/s, before anything was measured */
#define IPERF_MIN_DG 1000u

struct bench_cfg {
    double seconds;
    size_t sizes[MAX_SIZES];
    unsigned nsizes;
    unsigned paths; /* bit per enum bench_path */
    unsigned repeat;
    bool json;
    bool latency;
    const char *plot;
    struct bench_pin pin;
    bool tcp;
    bool unix_pair;
    bool threads;
    const char *udp_flag;    /* a flag --tcp, --unix and --threads do not take */
    const char *seconds_arg; /* --seconds, which --unix does not take */
    const char *plot_arg;    /* --plot, which --unix and --threads do not take */
};

enum cell_kind { CELL_TPUT, CELL_LAT };

struct cell {
    enum cell_kind kind;
    enum bench_path path;
    size_t size;
    struct bench_result *tput;    /* one per repetition */
    struct bench_lat_result *lat; /* one per repetition */
    unsigned runs;                /* repetitions that produced a result */
    bool dead;                    /* failed (iperf3 only): not run again */
    char note[160];
    /* filled in once every repetition is done */
    struct bench_result med;
    struct bench_lat_result lmed;
    double lo, hi;    /* smallest and largest dgrams/s (or p50) of the runs */
    double ratio;     /* median over the baseline's median, 0: no baseline */
    double ratio_raw; /* throughput: median over raw's median, 0: no raw */
};

struct matrix {
    struct cell cells[MAX_CELLS];
    unsigned n;
    char notes[BENCH_NPATHS * 2][200];
    unsigned nnotes;
    int64_t start_ns, end_ns;
};

/* The paths that need Linux's sendmmsg/recvmmsg, GSO/GRO or io_uring: the
 * mmsg and uring backends, and raw's direct calls. */
static bool path_linux_only(enum bench_path p)
{
    return p != BENCH_BASELINE && p != BENCH_SCALAR && p != BENCH_TOOLS &&
           p != BENCH_IPERF3;
}

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
        "128 and 4096-byte requests. The client is `volley tcp-load`'s, one volley\n"
        "loop in this process; each server is a child process: `volley tcp-echo`\n"
        "on the uring and on the epoll loop, and ref, a plain C epoll echo server\n"
        "as the tutorials write it. Columns: requests/s, spread, round-trip p50\n"
        "and p99 (us), the server's CPU ns per request, requests and errors over\n"
        "all runs, and the ratio of requests/s to ref. Then one stream of\n"
        "65536-byte writes into `volley tcp-echo --discard` (Gbit/s) next to\n"
        "iperf3 -c into iperf3 -s,\n"
        "and the one-connection 128-byte ping-pong next to sockperf pp --tcp\n"
        "against sockperf sr --tcp, each when installed (their -t takes whole\n"
        "seconds: at least 1).\n"
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
            if (path_linux_only(p))
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
        if (!VOLLEY_HAVE_LINUX && path_linux_only(p))
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

/* ---- the matrix ---- */

/* The feature path p needs that this machine lacks, or NULL. */
static const char *path_lacks(enum bench_path p, const struct volley_caps *c,
                              const char **why)
{
    if (!VOLLEY_HAVE_LINUX && path_linux_only(p)) {
        *why = "not available on this platform: built without the Linux parts";
        return "sendmmsg, GSO or io_uring";
    }
    if ((p == BENCH_GSO_GRO || p == BENCH_GSO_SPLIT || p == BENCH_GSO_PLAIN ||
         p == BENCH_URING_GSO || p == BENCH_URING_ZC || p == BENCH_RAW ||
         p == BENCH_GRO_SEGS) &&
        !c->gso.ok) {
        *why = cli_feature_why(&c->gso);
        return "gso";
    }
    if ((p == BENCH_RAW || p == BENCH_GRO_SEGS || p == BENCH_GSO_SPLIT) && !c->gro.ok) {
        *why = cli_feature_why(&c->gro);
        return "gro";
    }
    if ((p == BENCH_URING || p == BENCH_URING_GSO || p == BENCH_URING_ZC) &&
        !c->uring.ok) {
        *why = cli_feature_why(&c->uring);
        return "uring";
    }
    if (p == BENCH_URING_ZC && !c->uring_zc.ok) {
        *why = cli_feature_why(&c->uring_zc);
        return "zero-copy sends";
    }
    if (p == BENCH_IPERF3 && !bench_iperf3_found()) {
        *why = "not found in PATH; install it to compare";
        return "iperf3";
    }
    return NULL;
}

static int add_cell(struct matrix *m, enum cell_kind kind, enum bench_path p, size_t size,
                    unsigned repeat)
{
    struct cell *c = &m->cells[m->n];

    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->path = p;
    c->size = size;
    if (kind == CELL_TPUT)
        c->tput = calloc(repeat, sizeof(*c->tput));
    else
        c->lat = calloc(repeat, sizeof(*c->lat));
    if (!c->tput && !c->lat)
        return -ENOMEM;
    m->n++;
    return 0;
}

static void matrix_free(struct matrix *m)
{
    for (unsigned i = 0; i < m->n; i++) {
        free(m->cells[i].tput);
        free(m->cells[i].lat);
    }
}

/* Throughput cells size by size in path order, then a latency cell per path. */
static int matrix_build(struct matrix *m, const struct bench_cfg *c)
{
    struct volley_caps caps;
    bool lacking[BENCH_NPATHS] = {false};
    int err = volley_probe(&caps, sizeof(caps));

    if (err < 0)
        return err;
    for (enum bench_path p = 0; p < BENCH_NPATHS; p++) {
        const char *why, *lack;

        if (!(c->paths & (1u << p)))
            continue;
        lack = path_lacks(p, &caps, &why);
        if (!lack)
            continue;
        lacking[p] = true;
        snprintf(m->notes[m->nnotes++], sizeof(m->notes[0]), "%s: skipped: no %s (%s)",
                 bench_path_name(p), lack, why);
    }
    for (unsigned i = 0; i < c->nsizes; i++)
        for (enum bench_path p = 0; p < BENCH_NPATHS; p++)
            if (c->paths & (1u << p) && !lacking[p] &&
                (err = add_cell(m, CELL_TPUT, p, c->sizes[i], c->repeat)) < 0)
                return err;
    /* raw is a throughput ceiling; tools and iperf3 have no ping-pong */
    for (enum bench_path p = 0; c->latency && p < BENCH_TOOLS; p++)
        if (p != BENCH_RAW && c->paths & (1u << p) && !lacking[p] &&
            (err = add_cell(m, CELL_LAT, p, LAT_SIZE, c->repeat)) < 0)
            return err;
    return 0;
}

static const struct cell *find_cell(const struct matrix *m, enum cell_kind kind,
                                    enum bench_path p, size_t size)
{
    for (unsigned i = 0; i < m->n; i++)
        if (m->cells[i].kind == kind && m->cells[i].path == p && m->cells[i].size == size)
            return &m->cells[i];
    return NULL;
}

/* iperf3 is told how many datagrams to send (its -t takes whole seconds):
 * enough for about `seconds` at the rate iperf3 itself, or else the
 * baseline, last sent at this size. */
static uint64_t iperf_dgrams(const struct matrix *m, const struct cell *c, double seconds)
{
    const struct cell *base = find_cell(m, CELL_TPUT, BENCH_BASELINE, c->size);
    const struct bench_result *last = NULL;
    double rate = IPERF_GUESS, n;

    if (c->runs)
        last = &c->tput[c->runs - 1];
    else if (base && base->runs)
        last = &base->tput[base->runs - 1];
    if (last && last->seconds > 0 && last->sent)
        rate = (double)last->sent / last->seconds;
    n = rate * seconds;
    if (n < IPERF_MIN_DG)
        n = IPERF_MIN_DG;
    return n > (double)BENCH_CAP ? BENCH_CAP : (uint64_t)n;
}

static int run_cell(struct matrix *m, struct cell *c, const struct bench_cfg *cfg)
{
    char why[sizeof(c->note)] = "";
    int err;

    if (c->kind == CELL_LAT)
        err = bench_latency_cell(c->path, c->size, cfg->seconds, &cfg->pin,
                                 &c->lat[c->runs]);
    else if (c->path == BENCH_IPERF3)
        err = bench_iperf3_cell(c->size, iperf_dgrams(m, c, cfg->seconds), cfg->seconds,
                                &cfg->pin, &c->tput[c->runs], why, sizeof(why));
    else if (c->path == BENCH_TOOLS)
        err =
            bench_tools_cell(c->size, cfg->seconds, &c->tput[c->runs], why, sizeof(why));
    else
        err = bench_cell(c->path, c->size, cfg->seconds, &cfg->pin, &c->tput[c->runs]);
    if (err == 0) {
        c->runs++;
    } else if (c->path == BENCH_TOOLS) {
        fprintf(stderr, "volley bench: tools at %zu bytes: %s\n", c->size, why);
    } else if (c->path == BENCH_IPERF3) {
        /* Someone else's program: note it and go on without it. */
        c->dead = true;
        snprintf(c->note, sizeof(c->note), "%s", why);
        err = 0;
    }
    return err;
}

void bench_progress_start(struct bench_progress *p, unsigned total)
{
    p->live = isatty(STDERR_FILENO);
    p->total = total;
    p->start_ns = cli_mono_ns();
    p->last_ns = 0;
}

void bench_progress(struct bench_progress *p, unsigned done, const char *what, ...)
{
    int64_t now = cli_mono_ns();
    double elapsed = cli_ns_seconds(now - p->start_ns);
    char line[160];
    va_list ap;

    if (!p->live && p->last_ns && now - p->last_ns < BENCH_PROGRESS_S * NS_PER_S)
        return;
    p->last_ns = now;
    va_start(ap, what);
    vsnprintf(line, sizeof(line), what, ap);
    va_end(ap);
    if (p->live)
        fprintf(stderr, "\r\033[K[%3u/%u] %s  %5.1f s", done + 1, p->total, line,
                elapsed);
    else
        fprintf(stderr, "%s: [%u/%u] %s, %.1f s", cli_name, done + 1, p->total, line,
                elapsed);
    if (done > 0)
        fprintf(stderr, ", about %.0f s left", elapsed / done * (p->total - done));
    fputs(p->live ? "" : "\n", stderr);
    fflush(stderr);
}

void bench_progress_end(const struct bench_progress *p)
{
    if (p->live)
        fputs("\r\033[K", stderr);
}

static int matrix_run(struct matrix *m, const struct bench_cfg *cfg)
{
    struct bench_progress pr;
    unsigned done = 0;
    int err = 0;

    bench_progress_start(&pr, m->n * cfg->repeat);
    m->start_ns = pr.start_ns;
    for (unsigned rep = 0; rep < cfg->repeat && !err && !cli_stop; rep++) {
        for (unsigned i = 0; i < m->n && !err && !cli_stop; i++, done++) {
            struct cell *c = &m->cells[i];

            if (c->dead)
                continue;
            bench_progress(&pr, done, "run %u/%u  %-10s %-10s %5zu B", rep + 1,
                           cfg->repeat, bench_path_name(c->path),
                           c->kind == CELL_LAT ? "latency" : "throughput", c->size);
            err = run_cell(m, c, cfg);
            if (err < 0) {
                bench_progress_end(&pr);
                fprintf(stderr, "%s: %s %s at %zu bytes: %s\n", cli_name,
                        bench_path_name(c->path),
                        c->kind == CELL_LAT ? "latency" : "throughput", c->size,
                        volley_strerror(err));
                cli_note_error(err, "%s %s at %zu bytes: %s", bench_path_name(c->path),
                               c->kind == CELL_LAT ? "latency" : "throughput", c->size,
                               volley_strerror(err));
            }
        }
    }
    if (!err)
        bench_progress_end(&pr);
    m->end_ns = cli_mono_ns();
    return err;
}

/* ---- medians ---- */

#define TPUT_MEDIAN(c, field)                                                            \
    bench_median_of((c)->tput, sizeof(*(c)->tput), offsetof(struct bench_result, field), \
                    (c)->runs)
#define LAT_MEDIAN(c, field)                                                             \
    bench_median_of((c)->lat, sizeof(*(c)->lat),                                         \
                    offsetof(struct bench_lat_result, field), (c)->runs)

static void tput_medians(struct cell *c)
{
    struct bench_result *r = &c->med;

    memset(r, 0, sizeof(*r));
    r->path = c->path;
    r->size = c->size;
    r->dgrams_per_s = TPUT_MEDIAN(c, dgrams_per_s);
    r->gbit_per_s = TPUT_MEDIAN(c, gbit_per_s);
    r->tx_syscalls_per_dgram = TPUT_MEDIAN(c, tx_syscalls_per_dgram);
    r->rx_syscalls_per_dgram = TPUT_MEDIAN(c, rx_syscalls_per_dgram);
    r->tx_cpu_ns_per_dgram = TPUT_MEDIAN(c, tx_cpu_ns_per_dgram);
    r->rx_cpu_ns_per_dgram = TPUT_MEDIAN(c, rx_cpu_ns_per_dgram);
    c->lo = c->hi = c->tput[0].dgrams_per_s;
    for (unsigned i = 0; i < c->runs; i++) {
        r->sent += c->tput[i].sent;
        r->received += c->tput[i].received;
        r->lost += c->tput[i].lost;
        c->lo = fmin(c->lo, c->tput[i].dgrams_per_s);
        c->hi = fmax(c->hi, c->tput[i].dgrams_per_s);
    }
}

static void lat_medians(struct cell *c)
{
    struct bench_lat_result *r = &c->lmed;

    memset(r, 0, sizeof(*r));
    r->path = c->path;
    r->size = c->size;
    r->p50_us = LAT_MEDIAN(c, p50_us);
    r->p99_us = LAT_MEDIAN(c, p99_us);
    r->min_us = c->lat[0].min_us;
    r->max_us = c->lat[0].max_us;
    c->lo = c->hi = c->lat[0].p50_us;
    for (unsigned i = 0; i < c->runs; i++) {
        r->samples += c->lat[i].samples;
        r->lost += c->lat[i].lost;
        r->min_us = fmin(r->min_us, c->lat[i].min_us);
        r->max_us = fmax(r->max_us, c->lat[i].max_us);
        c->lo = fmin(c->lo, c->lat[i].p50_us);
        c->hi = fmax(c->hi, c->lat[i].p50_us);
    }
}

static void matrix_medians(struct matrix *m)
{
    for (unsigned i = 0; i < m->n; i++) {
        struct cell *c = &m->cells[i];

        if (c->runs == 0)
            continue;
        if (c->kind == CELL_TPUT)
            tput_medians(c);
        else
            lat_medians(c);
    }
    for (unsigned i = 0; i < m->n; i++) {
        struct cell *c = &m->cells[i];
        const struct cell *b = find_cell(m, c->kind, BENCH_BASELINE, c->size);
        const struct cell *raw = find_cell(m, CELL_TPUT, BENCH_RAW, c->size);

        c->ratio = c->ratio_raw = 0;
        if (c->kind == CELL_TPUT && c->runs && raw && raw->runs &&
            raw->med.dgrams_per_s > 0)
            c->ratio_raw = c->med.dgrams_per_s / raw->med.dgrams_per_s;
        if (c->runs == 0 || !b || b->runs == 0)
            continue;
        if (c->kind == CELL_TPUT && b->med.dgrams_per_s > 0)
            c->ratio = c->med.dgrams_per_s / b->med.dgrams_per_s;
        else if (c->kind == CELL_LAT && b->lmed.p50_us > 0)
            c->ratio = c->lmed.p50_us / b->lmed.p50_us;
    }
}

/* ---- output ---- */

static double spread(const struct cell *c)
{
    double mid = c->kind == CELL_TPUT ? c->med.dgrams_per_s : c->lmed.p50_us;

    return mid > 0 ? (c->hi - c->lo) / mid * 100 : 0;
}

/* A per-datagram cost, or "-" where it is not known (iperf3). */
static void cost(double v, int width, int prec)
{
    if (v < 0)
        printf(" %*s", width, "-");
    else
        printf(" %*.*f", width, prec, v);
}

void bench_machine(char *buf, size_t size)
{
    struct utsname u;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;

    if (uname(&u) != 0)
        memset(&u, 0, sizeof(u));
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
    snprintf(buf, size, "%s %s %s, %ld CPUs, %s", u.sysname, u.release, u.machine,
             sysconf(_SC_NPROCESSORS_ONLN), when);
}

void bench_json_open(const char *matrix, const char *header, ...)
{
    char host[256], line[400];
    va_list ap;

    va_start(ap, header);
    vsnprintf(line, sizeof(line), header, ap);
    va_end(ap);
    bench_machine(host, sizeof(host));
    cli_doc_end();
    fputs("\"matrix\":", stdout);
    cli_json_string(matrix);
    fputs(",\"machine\":", stdout);
    cli_json_string(host);
    fputs(",\"header\":", stdout);
    cli_json_string(line);
    fputs(",\"cells\":[", stdout);
}

void bench_json_close(void)
{
    fputs("\n]", stdout);
}

static void print_table(const struct matrix *m, const struct bench_cfg *cfg)
{
    char host[256];
    bool lat = false;

    bench_machine(host, sizeof(host));
    printf("volley bench: loopback, %s\nmedian of %u interleaved run%s of %.2f s per "
           "cell\n\n",
           host, cfg->repeat, cfg->repeat == 1 ? "" : "s", cfg->seconds);
    printf("%-10s %5s %10s %6s %7s %9s %9s %8s %8s %10s %10s %8s %6s %6s\n", "path",
           "size", "dgrams/s", "spread", "Gbit/s", "tx_sys/dg", "rx_sys/dg", "tx_ns/dg",
           "rx_ns/dg", "sent", "received", "lost", "ratio", "/raw");
    for (unsigned i = 0; i < m->n; i++) {
        const struct cell *c = &m->cells[i];
        const struct bench_result *r = &c->med;

        if (c->kind == CELL_LAT) {
            lat = true;
            continue;
        }
        if (c->runs == 0)
            continue;
        printf("%-10s %5zu %10.0f %5.1f%% %7.3f", bench_path_name(c->path), c->size,
               r->dgrams_per_s, spread(c), r->gbit_per_s);
        cost(r->tx_syscalls_per_dgram, 9, 4);
        cost(r->rx_syscalls_per_dgram, 9, 4);
        cost(r->tx_cpu_ns_per_dgram, 8, 0);
        cost(r->rx_cpu_ns_per_dgram, 8, 0);
        printf(" %10" PRIu64 " %10" PRIu64 " %8" PRIu64, r->sent, r->received, r->lost);
        if (c->ratio > 0)
            printf(" %6.2f", c->ratio);
        else
            printf(" %6s", "-");
        if (c->ratio_raw > 0)
            printf(" %6.2f\n", c->ratio_raw);
        else
            printf(" %6s\n", "-");
    }
    if (!lat)
        return;
    printf("\nlatency: ping-pong, one %d-byte datagram in flight, echoed by the other "
           "thread (us)\n",
           LAT_SIZE);
    printf("%-10s %8s %8s %8s %9s %9s %6s %9s\n", "path", "p50", "p99", "min", "max",
           "samples", "lost", "p50 ratio");
    for (unsigned i = 0; i < m->n; i++) {
        const struct cell *c = &m->cells[i];
        const struct bench_lat_result *l = &c->lmed;

        if (c->kind != CELL_LAT || c->runs == 0)
            continue;
        printf("%-10s %8.1f %8.1f %8.1f %9.1f %9" PRIu64 " %6" PRIu64,
               bench_path_name(c->path), l->p50_us, l->p99_us, l->min_us, l->max_us,
               l->samples, l->lost);
        if (c->ratio > 0)
            printf(" %9.2f\n", c->ratio);
        else
            printf(" %9s\n", "-");
    }
}

static void json_num(const char *key, double v, int prec)
{
    if (v < 0 || !isfinite(v))
        printf(",\"%s\":null", key);
    else
        printf(",\"%s\":%.*f", key, prec, v);
}

static void json_tput(const struct cell *c)
{
    const struct bench_result *r = &c->med;
    bool known = r->tx_syscalls_per_dgram >= 0;

    printf("{\"kind\":\"throughput\",\"path\":\"%s\",\"size\":%zu,\"repeat\":%u",
           bench_path_name(c->path), c->size, c->runs);
    json_num("dgrams_per_s", r->dgrams_per_s, 1);
    json_num("dgrams_per_s_min", c->lo, 1);
    json_num("dgrams_per_s_max", c->hi, 1);
    json_num("gbit_per_s", r->gbit_per_s, 4);
    json_num("syscalls_per_dgram",
             known ? r->tx_syscalls_per_dgram + r->rx_syscalls_per_dgram : -1, 6);
    json_num("tx_syscalls_per_dgram", r->tx_syscalls_per_dgram, 6);
    json_num("rx_syscalls_per_dgram", r->rx_syscalls_per_dgram, 6);
    json_num("tx_cpu_ns_per_dgram", r->tx_cpu_ns_per_dgram, 1);
    json_num("rx_cpu_ns_per_dgram", r->rx_cpu_ns_per_dgram, 1);
    printf(",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64, r->sent,
           r->received, r->lost);
    json_num("ratio_to_baseline", c->ratio > 0 ? c->ratio : -1, 4);
    json_num("ratio_to_raw", c->ratio_raw > 0 ? c->ratio_raw : -1, 4);
    putchar('}');
}

static void json_lat(const struct cell *c)
{
    const struct bench_lat_result *l = &c->lmed;

    printf("{\"kind\":\"latency\",\"path\":\"%s\",\"size\":%zu,\"repeat\":%u",
           bench_path_name(c->path), c->size, c->runs);
    json_num("p50_us", l->p50_us, 3);
    json_num("p99_us", l->p99_us, 3);
    json_num("min_us", l->min_us, 3);
    json_num("max_us", l->max_us, 3);
    json_num("latency_error", LAT_HIST_ERROR, 6);
    printf(",\"samples\":%" PRIu64 ",\"lost\":%" PRIu64, l->samples, l->lost);
    json_num("ratio_to_baseline", c->ratio > 0 ? c->ratio : -1, 4);
    putchar('}');
}

static void print_json(const struct matrix *m, const struct bench_cfg *cfg)
{
    const char *sep = "";

    bench_json_open("udp", "median of %u interleaved run%s of %.2f s per cell",
                    cfg->repeat, cfg->repeat == 1 ? "" : "s", cfg->seconds);
    for (unsigned i = 0; i < m->n; i++) {
        const struct cell *c = &m->cells[i];

        if (c->runs == 0)
            continue;
        printf("%s\n", sep);
        if (c->kind == CELL_TPUT)
            json_tput(c);
        else
            json_lat(c);
        sep = ",";
    }
    bench_json_close();
}

static void print_notes(const struct matrix *m, const struct bench_cfg *cfg)
{
    FILE *f = cfg->json ? stderr : stdout;
    unsigned cells = 0;

    if (!cfg->json && m->nnotes)
        putchar('\n');
    for (unsigned i = 0; i < m->nnotes; i++)
        fprintf(f, "%s\n", m->notes[i]);
    for (unsigned i = 0; i < m->n; i++) {
        cells += m->cells[i].runs;
        if (m->cells[i].dead)
            fprintf(f, "%s at %zu bytes: failed: %s\n", bench_path_name(m->cells[i].path),
                    m->cells[i].size, m->cells[i].note);
    }
    fprintf(f, "%stotal %.1f s: %u cell runs of %.2f s%s\n",
            cfg->json || m->nnotes ? "" : "\n", cli_ns_seconds(m->end_ns - m->start_ns),
            cells, cfg->seconds, cli_stop ? " (interrupted)" : "");
}

static int write_plot(FILE *f, const struct matrix *m, const struct bench_cfg *cfg)
{
    static struct bench_plot_bar bars[MAX_CELLS];
    static struct bench_plot_lat lat[BENCH_NPATHS];
    char sub[400], host[256];
    struct bench_plot p = {.title = "volley bench: UDP datagrams over loopback",
                           .subtitle = sub,
                           .bars = bars,
                           .lat = lat};

    bench_machine(host, sizeof(host));
    snprintf(sub, sizeof(sub),
             "%s\nmedian of %u interleaved run%s of %.2f s per cell; bar labels: ratio "
             "to the plain sendto/recvfrom baseline at the same size",
             host, cfg->repeat, cfg->repeat == 1 ? "" : "s", cfg->seconds);
    for (unsigned i = 0; i < m->n; i++) {
        const struct cell *c = &m->cells[i];

        if (c->runs == 0)
            continue;
        if (c->kind == CELL_TPUT)
            bars[p.nbars++] = (struct bench_plot_bar){
                bench_path_name(c->path), c->size, c->med.dgrams_per_s, c->ratio, NULL};
        else
            lat[p.nlat++] = (struct bench_plot_lat){bench_path_name(c->path),
                                                    c->lmed.p50_us, c->lmed.p99_us};
    }
    return bench_plot_svg(f, &p);
}

static int bench_main(const struct bench_cfg *cfg)
{
    static struct matrix m;
    FILE *plot = NULL;
    int err, rc = 0;

    /* Open the chart first: a bad path should not cost a whole run. */
    if (cfg->plot && !(plot = fopen(cfg->plot, "w")))
        return cli_runtime_error(cfg->plot, -errno);
    cli_catch_signals();
    err = matrix_build(&m, cfg);
    if (err < 0)
        rc = cli_runtime_error("setting up", err);
    else if (matrix_run(&m, cfg) < 0)
        rc = 1; /* matrix_run said what failed */
    if (rc == 0) {
        matrix_medians(&m);
        /* The chart first: its error still goes into the JSON document. */
        if (plot && write_plot(plot, &m, cfg) < 0)
            rc = cli_runtime_error(cfg->plot, -EIO);
        if (plot && fclose(plot) != 0 && rc == 0)
            rc = cli_runtime_error(cfg->plot, -errno);
        plot = NULL;
        if (cfg->json)
            print_json(&m, cfg);
        else
            print_table(&m, cfg);
        print_notes(&m, cfg);
    }
    if (plot)
        fclose(plot);
    matrix_free(&m);
    return rc;
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
    return bench_main(&c);
}
