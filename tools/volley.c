/*
 * volley: the command-line tool. It reaches the library through volley.h
 * only, as a user's program would.
 *   probe  what this kernel lets volley use, and why not
 *   recv   a counting sink that tracks loss, duplicates and reordering
 *   send   a bounded sender that stamps the sequence header
 *   bench  every I/O path side by side on loopback, against plain C
 * Exit status: 0 done, 1 runtime error, 2 bad usage.
 */
#include "bench.h"
#include "volley.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2
/* Option parsers return this when the command should go on and run. */
#define PARSE_RUN (-1)
#define NS_PER_S  1000000000LL
/* Longest accepted duration: keeps seconds-to-nanoseconds far from overflow. */
#define MAX_SECONDS 1e6
#define MAX_SIZES   16

enum { OPT_NO_GSO = 256, OPT_NO_GRO, OPT_SECONDS, OPT_SIZES, OPT_PATHS };

/* "volley recv" once a command is chosen: prefixes every message. */
static const char *cmd_name = "volley";
static volatile sig_atomic_t stop_requested;

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", cmd_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", cmd_name);
    return EXIT_USAGE;
}

/* getopt has already said what was wrong. */
static int bad_option(void)
{
    fprintf(stderr, "Try '%s --help'.\n", cmd_name);
    return EXIT_USAGE;
}

static int runtime_error(const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", cmd_name, what, volley_strerror(err));
    return 1;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Ctrl-C ends a run early but still prints its summary. No SA_RESTART, so
 * a wait in progress returns at once. */
static void catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    unsigned long long v;
    char *end;

    /* strtoull would accept "-1" (as a huge number) and leading blanks. */
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_seconds(const char *s, bool allow_zero, double *out)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || *end != '\0' || !isfinite(v) || v < 0 || v > MAX_SECONDS)
        return false;
    if (v == 0 && !allow_zero)
        return false;
    *out = v;
    return true;
}

static bool parse_backend(const char *s, unsigned *out)
{
    if (strcmp(s, "auto") == 0)
        *out = VOLLEY_BACKEND_AUTO;
    else if (strcmp(s, "scalar") == 0)
        *out = VOLLEY_BACKEND_SCALAR;
    else if (strcmp(s, "mmsg") == 0)
        *out = VOLLEY_BACKEND_MMSG;
    else if (strcmp(s, "uring") == 0)
        *out = VOLLEY_BACKEND_URING;
    else
        return false;
    return true;
}

static int64_t seconds_ns(double s)
{
    return (int64_t)(s * 1e9);
}

static double ns_seconds(int64_t ns)
{
    return (double)ns / 1e9;
}

/* A poll timeout that wakes at `when`, capped at a second. */
static int ms_until(int64_t now, int64_t when)
{
    if (when <= now)
        return 0;
    if (when - now >= NS_PER_S)
        return 1000;
    return (int)((when - now + 999999) / 1000000);
}

static double rate(double amount, int64_t ns)
{
    return ns > 0 ? amount / ns_seconds(ns) : 0.0;
}

static void json_string(const char *s)
{
    if (!s) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* ---- probe ---- */

static const struct {
    const char *name;
    size_t off;
} features[] = {
    {"scalar", offsetof(struct volley_caps, scalar)},
    {"mmsg", offsetof(struct volley_caps, mmsg)},
    {"gso", offsetof(struct volley_caps, gso)},
    {"gro", offsetof(struct volley_caps, gro)},
    {"pktinfo", offsetof(struct volley_caps, pktinfo)},
    {"ecn", offsetof(struct volley_caps, ecn)},
    {"timestamp", offsetof(struct volley_caps, timestamp)},
    {"rxq_ovfl", offsetof(struct volley_caps, rxq_ovfl)},
    {"recverr", offsetof(struct volley_caps, recverr)},
    {"ipv6", offsetof(struct volley_caps, ipv6)},
    {"uring", offsetof(struct volley_caps, uring)},
    {"uring_zc", offsetof(struct volley_caps, uring_zc)},
};
#define NFEATURES (sizeof(features) / sizeof(features[0]))

static const struct volley_feature *feature(const struct volley_caps *c, size_t i)
{
    return (const struct volley_feature *)((const char *)c + features[i].off);
}

/* The probe's explanation; a library that left it out still gets a reason. */
static const char *feature_why(const struct volley_feature *f)
{
    if (f->why)
        return f->why;
    return f->err ? volley_strerror(f->err) : "not probed by this library";
}

static void probe_usage(void)
{
    puts("Usage: volley probe [--json]\n"
         "Try each kernel feature volley can use, on loopback, and print what works\n"
         "and why the rest is off.\n"
         "\n"
         "  -j, --json   print one JSON object: "
         "{\"NAME\":{\"ok\":BOOL,\"why\":TEXT},...,\n"
         "               \"gso_max_segments\":N}\n"
         "  -h, --help   show this help");
}

static void probe_print_text(const struct volley_caps *c)
{
    for (size_t i = 0; i < NFEATURES; i++) {
        const struct volley_feature *f = feature(c, i);

        if (!f->ok)
            printf("%s: no (%s)\n", features[i].name, feature_why(f));
        else if (f == &c->gso)
            printf("%s: yes (up to %u segments per send)\n", features[i].name,
                   c->gso_max_segments);
        else
            printf("%s: yes\n", features[i].name);
    }
}

static void probe_print_json(const struct volley_caps *c)
{
    putchar('{');
    for (size_t i = 0; i < NFEATURES; i++) {
        const struct volley_feature *f = feature(c, i);

        printf("\"%s\":{\"ok\":%s,\"why\":", features[i].name, f->ok ? "true" : "false");
        json_string(feature_why(f));
        fputs("},", stdout);
    }
    printf("\"gso_max_segments\":%u}\n", c->gso_max_segments);
}

static int cmd_probe(int argc, char **argv)
{
    static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    struct volley_caps caps;
    bool json = false;
    int opt, err;

    while ((opt = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
        if (opt == 'h') {
            probe_usage();
            return 0;
        }
        if (opt != 'j')
            return bad_option();
        json = true;
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    err = volley_probe(&caps, sizeof(caps));
    if (err < 0)
        return runtime_error("probe", err);
    if (json)
        probe_print_json(&caps);
    else
        probe_print_text(&caps);
    return 0;
}

/* ---- recv and send ---- */

struct flow_cfg {
    const char *addr;
    struct volley_addr peer;
    uint64_t count;  /* 0: no limit */
    double duration; /* 0: no limit */
    double idle;     /* recv: 0 never stops on silence */
    uint64_t size;
    uint64_t batch;
    unsigned backend;
    unsigned disable;
    bool json;
};

#define HEADER_HELP                                                                      \
    "Sequence header (big-endian, at the start of each payload of 24 bytes or more):\n"  \
    "  bytes  0-3   magic \"VLY1\"\n"                                                    \
    "  bytes  4-7   stream id (u32, random per sender run)\n"                            \
    "  bytes  8-15  sequence number (u64, from 0)\n"                                     \
    "  bytes 16-23  send time, CLOCK_REALTIME nanoseconds (u64)\n"

static void recv_usage(void)
{
    fputs("Usage: volley recv ADDR [options]\n"
          "Bind ADDR (\"ip:port\" or \"[ip6]:port\") and count every UDP datagram that\n"
          "arrives. Loss, duplicates and reordering are tracked for the first stream\n"
          "carrying the sequence header; datagrams without it are only counted.\n"
          "\n"
          "  -c, --count N        stop after N datagrams\n"
          "  -d, --duration S     stop after S seconds (fractions allowed)\n"
          "  -i, --idle S         stop after S seconds without traffic once traffic\n"
          "                       has begun (default 2; 0: never)\n"
          "  -b, --backend NAME   auto, scalar, mmsg or uring (default auto)\n"
          "      --no-gso         turn UDP GSO off\n"
          "      --no-gro         turn UDP GRO off\n"
          "  -j, --json           print only the summary, as one JSON object\n"
          "  -h, --help           show this help\n"
          "\n"
          "Each second: the interval, datagrams and Mbit/s in it, and lost, reordered\n"
          "and duplicated so far. Then a summary.\n"
          "\n" HEADER_HELP,
          stdout);
}

static void send_usage(void)
{
    fputs("Usage: volley send ADDR [options]\n"
          "Send datagrams carrying the sequence header to ADDR as fast as the socket\n"
          "takes them. Without --count or --duration, sends for 5 seconds.\n"
          "\n"
          "  -c, --count N        send N datagrams\n"
          "  -d, --duration S     send for S seconds (fractions allowed)\n"
          "  -s, --size BYTES     payload bytes per datagram (default 1200)\n"
          "  -B, --batch N        datagrams per volley_send call (default 64, max 1024)\n"
          "  -b, --backend NAME   auto, scalar, mmsg or uring (default auto)\n"
          "      --no-gso         turn UDP GSO off\n"
          "  -j, --json           print only the summary, as one JSON object\n"
          "  -h, --help           show this help\n"
          "\n" HEADER_HELP,
          stdout);
}

/* Checks the one operand, ADDR, once the flags are parsed. */
static int flow_operand(int argc, char **argv, struct flow_cfg *c, bool is_send)
{
    if (optind >= argc)
        return usage_error("missing ADDR");
    if (optind + 1 < argc)
        return usage_error("unexpected argument '%s'", argv[optind + 1]);
    c->addr = argv[optind];
    if (volley_addr_parse(&c->peer, c->addr) < 0)
        return usage_error("bad ADDR '%s': want ip:port or [ip6]:port", c->addr);
    if (!is_send)
        return PARSE_RUN;
    if (volley_addr_port(&c->peer) == 0)
        return usage_error("ADDR '%s' needs a port other than 0", c->addr);
    if (c->peer.sa.sa_family == AF_INET && c->size > VOLLEY_UDP4_MAX)
        return usage_error("--size %" PRIu64 " is above the IPv4 limit of %d", c->size,
                           VOLLEY_UDP4_MAX);
    return PARSE_RUN;
}

static int flow_option(int opt, struct flow_cfg *c)
{
    switch (opt) {
    case 'j':
        c->json = true;
        break;
    case 'c':
        if (!parse_u64(optarg, 1, UINT64_MAX, &c->count))
            return usage_error("bad --count '%s': want a whole number from 1", optarg);
        break;
    case 'd':
        if (!parse_seconds(optarg, false, &c->duration))
            return usage_error("bad --duration '%s': want seconds above 0", optarg);
        break;
    case 'i':
        if (!parse_seconds(optarg, true, &c->idle))
            return usage_error("bad --idle '%s': want seconds, 0 or more", optarg);
        break;
    case 's':
        if (!parse_u64(optarg, 1, VOLLEY_UDP6_MAX, &c->size))
            return usage_error("bad --size '%s': want 1 to %d bytes", optarg,
                               VOLLEY_UDP6_MAX);
        break;
    case 'B':
        if (!parse_u64(optarg, 1, VOLLEY_BATCH_MAX, &c->batch))
            return usage_error("bad --batch '%s': want 1 to %d", optarg,
                               VOLLEY_BATCH_MAX);
        break;
    case 'b':
        if (!parse_backend(optarg, &c->backend))
            return usage_error("bad --backend '%s': want auto, scalar, mmsg or uring",
                               optarg);
        break;
    case OPT_NO_GSO:
        c->disable |= VOLLEY_F_GSO;
        break;
    case OPT_NO_GRO:
        c->disable |= VOLLEY_F_GRO;
        break;
    default:
        return bad_option();
    }
    return PARSE_RUN;
}

static int flow_parse(int argc, char **argv, struct flow_cfg *c, bool is_send)
{
    static const struct option recv_lo[] = {{"count", required_argument, NULL, 'c'},
                                            {"duration", required_argument, NULL, 'd'},
                                            {"idle", required_argument, NULL, 'i'},
                                            {"backend", required_argument, NULL, 'b'},
                                            {"no-gso", no_argument, NULL, OPT_NO_GSO},
                                            {"no-gro", no_argument, NULL, OPT_NO_GRO},
                                            {"json", no_argument, NULL, 'j'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    static const struct option send_lo[] = {{"count", required_argument, NULL, 'c'},
                                            {"duration", required_argument, NULL, 'd'},
                                            {"size", required_argument, NULL, 's'},
                                            {"batch", required_argument, NULL, 'B'},
                                            {"backend", required_argument, NULL, 'b'},
                                            {"no-gso", no_argument, NULL, OPT_NO_GSO},
                                            {"json", no_argument, NULL, 'j'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int opt, rc;

    while ((opt = getopt_long(argc, argv, is_send ? "c:d:s:B:b:jh" : "c:d:i:b:jh",
                              is_send ? send_lo : recv_lo, NULL)) != -1) {
        if (opt == 'h') {
            if (is_send)
                send_usage();
            else
                recv_usage();
            return 0;
        }
        rc = flow_option(opt, c);
        if (rc != PARSE_RUN)
            return rc;
    }
    return flow_operand(argc, argv, c, is_send);
}

/* What `volley recv` has seen. Intervals start at the first datagram. */
struct rx_state {
    struct bench_seq seq;
    bool have_stream;
    uint32_t stream;
    uint64_t dgrams, bytes, truncated;
    int64_t first_ns, last_ns;
    int64_t tick_ns; /* start of the interval being counted */
    uint64_t tick_dgrams, tick_bytes;
    unsigned ticks;
};

/* Closes the interval at end_ns, printing it unless only JSON is wanted. */
static void rx_interval(struct rx_state *st, const struct flow_cfg *c, int64_t end_ns)
{
    double from = ns_seconds(st->tick_ns - st->first_ns);

    if (c->json) {
        st->tick_ns = end_ns;
        return;
    }
    if (st->ticks++ == 0)
        printf("%-13s %10s %10s %10s %10s %10s\n", "interval(s)", "dgrams", "Mbit/s",
               "lost", "reordered", "duplicated");
    printf("%6.2f-%-6.2f %10" PRIu64 " %10.2f %10" PRIu64 " %10" PRIu64 " %10" PRIu64
           "\n",
           from, from + ns_seconds(end_ns - st->tick_ns), st->tick_dgrams,
           rate((double)st->tick_bytes * 8 / 1e6, end_ns - st->tick_ns),
           bench_seq_lost(&st->seq), st->seq.reordered, st->seq.duplicated);
    st->tick_dgrams = st->tick_bytes = 0;
    st->tick_ns = end_ns;
}

/* Prints every whole second that has passed, before `now`'s batch is counted. */
static void rx_ticks(struct rx_state *st, const struct flow_cfg *c, int64_t now)
{
    while (st->dgrams && now - st->tick_ns >= NS_PER_S)
        rx_interval(st, c, st->tick_ns + NS_PER_S);
}

static void rx_account(struct rx_state *st, const struct flow_cfg *c,
                       const struct volley_dgram *d, unsigned n, int64_t now)
{
    struct bench_hdr h;

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
        if (d[i].flags & VOLLEY_DGRAM_TRUNC)
            st->truncated++;
        if (!bench_hdr_decode(d[i].data, d[i].len, &h))
            continue;
        if (!st->have_stream) {
            st->have_stream = true;
            st->stream = h.stream;
        }
        if (h.stream == st->stream)
            bench_seq_add(&st->seq, h.seq);
    }
    st->dgrams += n;
    st->tick_dgrams += n;
}

static int recv_loop(volley_sock *s, const struct flow_cfg *c, struct rx_state *st)
{
    struct volley_dgram d[BENCH_BATCH];
    int64_t idle = seconds_ns(c->idle);
    int64_t end = c->duration > 0 ? bench_mono_ns() + seconds_ns(c->duration) : INT64_MAX;

    while (!stop_requested) {
        int n = volley_recv(s, d, BENCH_BATCH);
        int64_t now = bench_mono_ns(), wake = end;

        if (n < 0)
            return n;
        rx_ticks(st, c, now);
        rx_account(st, c, d, (unsigned)n, now);
        if ((c->count && st->dgrams >= c->count) || now >= end)
            break;
        if (st->dgrams && idle > 0 && now - st->last_ns >= idle)
            break;
        if (n > 0)
            continue;
        if (st->dgrams && idle > 0 && st->last_ns + idle < wake)
            wake = st->last_ns + idle;
        if (st->dgrams && st->tick_ns + NS_PER_S < wake)
            wake = st->tick_ns + NS_PER_S;
        n = volley_wait(s, VOLLEY_WAIT_RECV, ms_until(now, wake));
        if (n < 0 && n != -EINTR)
            return n;
    }
    return 0;
}

static void recv_summary(volley_sock *s, const struct flow_cfg *c, struct rx_state *st)
{
    struct volley_stats vs = {0};
    int64_t span = st->last_ns - st->first_ns;
    double mbit = rate((double)st->bytes * 8 / 1e6, span);

    volley_get_stats(s, &vs, sizeof(vs));
    if (c->json) {
        printf("{\"datagrams\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.6f"
               ",\"syscalls\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"duplicated\":%" PRIu64
               ",\"reordered\":%" PRIu64 ",\"truncated\":%" PRIu64
               ",\"kernel_drops\":%" PRIu64 ",\"dgrams_per_s\":%.1f,\"mbit_per_s\":%.3f"
               ",\"backend\":",
               st->dgrams, st->bytes, ns_seconds(span), vs.rx_syscalls,
               bench_seq_lost(&st->seq), st->seq.duplicated, st->seq.reordered,
               st->truncated, vs.rx_kernel_drops, rate((double)st->dgrams, span), mbit);
        json_string(volley_backend_name(s));
        if (st->have_stream)
            printf(",\"stream\":%" PRIu32 "}\n", st->stream);
        else
            puts(",\"stream\":null}");
        return;
    }
    if (st->ticks && st->last_ns > st->tick_ns)
        rx_interval(st, c, st->last_ns);
    printf("received %" PRIu64 " datagrams, %" PRIu64 " bytes in %.3f s: %.0f dgrams/s, "
           "%.2f Mbit/s\n",
           st->dgrams, st->bytes, ns_seconds(span), rate((double)st->dgrams, span), mbit);
    printf("backend %s, %" PRIu64 " receive calls, truncated %" PRIu64
           ", kernel drops %" PRIu64 "\n",
           volley_backend_name(s), vs.rx_syscalls, st->truncated, vs.rx_kernel_drops);
    if (st->have_stream)
        printf("stream %08" PRIx32 ": lost %" PRIu64 ", duplicated %" PRIu64
               ", reordered %" PRIu64 "\n",
               st->stream, bench_seq_lost(&st->seq), st->seq.duplicated,
               st->seq.reordered);
    else
        puts("no sequence header seen");
}

static int recv_run(const struct flow_cfg *c)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    struct volley_addr local;
    struct rx_state st;
    char name[64];
    volley_sock *s;
    int err;

    o.backend = c->backend;
    o.disable = c->disable;
    o.rcvbuf = BENCH_RCVBUF;
    memset(&st, 0, sizeof(st));
    err = volley_open(&s, c->addr, &o);
    if (err < 0)
        return runtime_error(c->addr, err);
    err = bench_seq_init(&st.seq);
    if (err == 0 && volley_local_addr(s, &local) >= 0 &&
        volley_addr_format(&local, name, sizeof(name)) >= 0)
        fprintf(stderr, "%s: listening on %s (%s)\n", cmd_name, name,
                volley_backend_name(s));
    catch_signals();
    if (err == 0)
        err = recv_loop(s, c, &st);
    if (err == 0)
        recv_summary(s, c, &st);
    bench_seq_free(&st.seq);
    volley_close(s);
    return err < 0 ? runtime_error("receive", err) : 0;
}

static int cmd_recv(int argc, char **argv)
{
    struct flow_cfg c = {.idle = 2.0};
    int rc = flow_parse(argc, argv, &c, false);

    return rc == PARSE_RUN ? recv_run(&c) : rc;
}

/* What `volley send` has done. */
struct tx_state {
    uint64_t dgrams;
    int64_t start_ns, end_ns;
    int64_t tick_ns;
    uint64_t tick_dgrams;
    unsigned ticks;
};

static void tx_interval(struct tx_state *st, const struct flow_cfg *c, int64_t end_ns)
{
    double from = ns_seconds(st->tick_ns - st->start_ns);

    if (c->json) {
        st->tick_ns = end_ns;
        return;
    }
    if (st->ticks++ == 0)
        printf("%-13s %10s %10s\n", "interval(s)", "dgrams", "Mbit/s");
    printf("%6.2f-%-6.2f %10" PRIu64 " %10.2f\n", from,
           from + ns_seconds(end_ns - st->tick_ns), st->tick_dgrams,
           rate((double)(st->tick_dgrams * c->size) * 8 / 1e6, end_ns - st->tick_ns));
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
    bench_stamp(d[0].data, c->size, n, stream, st->dgrams);
    k = volley_send(s, d, n);
    if (k > 0) {
        st->dgrams += (unsigned)k;
        st->tick_dgrams += (unsigned)k;
        return 0;
    }
    /* Full socket buffer (or the device queue: ENOBUFS): wait for room. */
    if (k == 0 || k == -ENOBUFS)
        k = volley_wait(s, VOLLEY_WAIT_SEND, ms_until(bench_mono_ns(), wake));
    return k < 0 && k != -EINTR ? k : 0;
}

static int send_loop(volley_sock *s, const struct flow_cfg *c, struct volley_dgram *d,
                     struct tx_state *st)
{
    uint32_t stream = bench_stream_id();
    int64_t end = c->duration > 0 ? st->start_ns + seconds_ns(c->duration) : INT64_MAX;
    int err = 0;

    st->tick_ns = st->start_ns;
    while (!stop_requested && (c->count == 0 || st->dgrams < c->count)) {
        int64_t now = bench_mono_ns(), tick_end;

        if (now >= end)
            break;
        while (now - st->tick_ns >= NS_PER_S)
            tx_interval(st, c, st->tick_ns + NS_PER_S);
        tick_end = st->tick_ns + NS_PER_S;
        err = send_batch(s, c, d, stream, st, end < tick_end ? end : tick_end);
        if (err < 0)
            break;
    }
    st->end_ns = bench_mono_ns();
    return err;
}

static void send_summary(volley_sock *s, const struct flow_cfg *c, struct tx_state *st)
{
    struct volley_stats vs = {0};
    int64_t span = st->end_ns - st->start_ns;
    uint64_t bytes = st->dgrams * c->size;
    double mbit = rate((double)bytes * 8 / 1e6, span);

    volley_get_stats(s, &vs, sizeof(vs));
    if (c->json) {
        printf("{\"datagrams\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"seconds\":%.6f"
               ",\"syscalls\":%" PRIu64 ",\"gso_sends\":%" PRIu64 ",\"errors\":%" PRIu64
               ",\"dgrams_per_s\":%.1f,\"mbit_per_s\":%.3f,\"backend\":",
               st->dgrams, bytes, ns_seconds(span), vs.tx_syscalls, vs.tx_gso_sends,
               vs.tx_errors, rate((double)st->dgrams, span), mbit);
        json_string(volley_backend_name(s));
        puts("}");
        return;
    }
    if (st->ticks && st->end_ns > st->tick_ns)
        tx_interval(st, c, st->end_ns);
    printf("sent %" PRIu64 " datagrams, %" PRIu64 " bytes in %.3f s: %.0f dgrams/s, "
           "%.2f Mbit/s\n",
           st->dgrams, bytes, ns_seconds(span), rate((double)st->dgrams, span), mbit);
    printf("backend %s, %" PRIu64 " send calls, %" PRIu64 " GSO sends, %" PRIu64
           " errors\n",
           volley_backend_name(s), vs.tx_syscalls, vs.tx_gso_sends, vs.tx_errors);
}

/* Every datagram has its own buffer: each carries its own sequence number. */
static struct volley_dgram *send_buffers(const struct flow_cfg *c)
{
    struct volley_dgram *d = calloc(c->batch, sizeof(*d));
    uint8_t *payload = calloc(c->batch, c->size);

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

static int send_run(const struct flow_cfg *c)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    struct tx_state st = {0};
    struct volley_dgram *d;
    volley_sock *s;
    int err;

    o.backend = c->backend;
    o.disable = c->disable;
    err = volley_open(&s, c->peer.sa.sa_family == AF_INET6 ? "[::]:0" : "0.0.0.0:0", &o);
    if (err < 0)
        return runtime_error("open", err);
    d = send_buffers(c);
    if (!d) {
        volley_close(s);
        return runtime_error("send", -ENOMEM);
    }
    catch_signals();
    st.start_ns = bench_mono_ns();
    err = send_loop(s, c, d, &st);
    if (err == 0)
        send_summary(s, c, &st);
    free(d[0].data);
    free(d);
    volley_close(s);
    return err < 0 ? runtime_error("send", err) : 0;
}

static int cmd_send(int argc, char **argv)
{
    struct flow_cfg c = {.size = 1200, .batch = 64};
    int rc = flow_parse(argc, argv, &c, true);

    if (rc != PARSE_RUN)
        return rc;
    if (c.count == 0 && c.duration == 0)
        c.duration = 5.0;
    return send_run(&c);
}

/* ---- bench ---- */

struct bench_cfg {
    double seconds;
    size_t sizes[MAX_SIZES];
    unsigned nsizes;
    unsigned paths; /* bit per enum bench_path */
    bool json;
};

static void bench_usage(void)
{
    puts("Usage: volley bench [options]\n"
         "Compare I/O paths over loopback (127.0.0.1), a sender and a receiver thread\n"
         "per cell, for each payload size:\n"
         "  baseline    plain sendto/recvfrom, one datagram per call, no libvolley\n"
         "  scalar      volley, scalar backend\n"
         "  mmsg        volley, mmsg backend, GSO and GRO off\n"
         "  gso+gro     volley, mmsg backend, sender GSO, receiver GRO\n"
         "  gso->plain  volley, mmsg backend, sender GSO, receiver without GRO\n"
         "  uring       volley, uring backend, GSO and GRO off\n"
         "  uring+gso   volley, uring backend, sender GSO, receiver GRO\n"
         "Rows `volley probe` finds unavailable here are skipped with a note.\n"
         "\n"
         "      --seconds S     sending time per cell (default 1.5)\n"
         "      --sizes LIST    payload sizes, comma-separated (default 64,1200)\n"
         "      --paths LIST    paths to run, comma-separated (default all); ratios\n"
         "                      need baseline in the list\n"
         "  -j, --json          print a JSON array, one object per cell\n"
         "  -h, --help          show this help\n"
         "\n"
         "Columns: received datagrams/s and payload Gbit/s; system calls and thread\n"
         "CPU ns per datagram sent (tx) and received (rx); datagrams sent, received\n"
         "and lost; throughput relative to baseline at the same size.");
}

static bool parse_sizes(const char *s, struct bench_cfg *c)
{
    char buf[256], *save = NULL;

    if (strlen(s) >= sizeof(buf))
        return false;
    strcpy(buf, s);
    c->nsizes = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint64_t v;

        if (c->nsizes == MAX_SIZES || !parse_u64(tok, 1, VOLLEY_UDP4_MAX, &v))
            return false;
        c->sizes[c->nsizes++] = (size_t)v;
    }
    return c->nsizes > 0;
}

static bool parse_paths(const char *s, struct bench_cfg *c)
{
    char buf[256], *save = NULL;

    if (strlen(s) >= sizeof(buf))
        return false;
    strcpy(buf, s);
    c->paths = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        enum bench_path p = 0;

        while (p < BENCH_NPATHS && strcmp(tok, bench_path_name(p)))
            p++;
        if (p == BENCH_NPATHS)
            return false;
        c->paths |= 1u << p;
    }
    return c->paths != 0;
}

static int bench_parse(int argc, char **argv, struct bench_cfg *c)
{
    static const struct option lo[] = {{"seconds", required_argument, NULL, OPT_SECONDS},
                                       {"sizes", required_argument, NULL, OPT_SIZES},
                                       {"paths", required_argument, NULL, OPT_PATHS},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int opt;

    while ((opt = getopt_long(argc, argv, "jh", lo, NULL)) != -1) {
        if (opt == 'h') {
            bench_usage();
            return 0;
        } else if (opt == 'j') {
            c->json = true;
        } else if (opt == OPT_SECONDS) {
            if (!parse_seconds(optarg, false, &c->seconds) || c->seconds > 60)
                return usage_error("bad --seconds '%s': want above 0, at most 60",
                                   optarg);
        } else if (opt == OPT_SIZES) {
            if (!parse_sizes(optarg, c))
                return usage_error("bad --sizes '%s': want up to %d sizes of 1 to %d "
                                   "bytes, comma-separated",
                                   optarg, MAX_SIZES, VOLLEY_UDP4_MAX);
        } else if (opt == OPT_PATHS) {
            if (!parse_paths(optarg, c))
                return usage_error("bad --paths '%s': want names from `volley bench "
                                   "--help`, comma-separated",
                                   optarg);
        } else {
            return bad_option();
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    return PARSE_RUN;
}

static void bench_row(const struct bench_result *r, double ratio)
{
    printf("%-10s %5zu %9.0f %9.3f %10.4f %10.4f %9.0f %9.0f %9" PRIu64 " %9" PRIu64
           " %9" PRIu64 " %6.2f\n",
           bench_path_name(r->path), r->size, r->dgrams_per_s, r->gbit_per_s,
           r->tx_syscalls_per_dgram, r->rx_syscalls_per_dgram, r->tx_cpu_ns_per_dgram,
           r->rx_cpu_ns_per_dgram, r->sent, r->received, r->lost, ratio);
}

static void bench_json(const struct bench_result *r, const double *ratio, unsigned n)
{
    putchar('[');
    for (unsigned i = 0; i < n; i++, r++)
        printf(
            "%s\n{\"path\":\"%s\",\"size\":%zu,\"dgrams_per_s\":%.1f,\"gbit_per_s\":%.4f"
            ",\"tx_syscalls_per_dgram\":%.6f,\"rx_syscalls_per_dgram\":%.6f"
            ",\"tx_cpu_ns_per_dgram\":%.1f,\"rx_cpu_ns_per_dgram\":%.1f"
            ",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
            ",\"ratio_to_baseline\":%.4f}",
            i ? "," : "", bench_path_name(r->path), r->size, r->dgrams_per_s,
            r->gbit_per_s, r->tx_syscalls_per_dgram, r->rx_syscalls_per_dgram,
            r->tx_cpu_ns_per_dgram, r->rx_cpu_ns_per_dgram, r->sent, r->received, r->lost,
            ratio[i]);
    puts("\n]");
}

/* The feature path p needs that this kernel lacks, or NULL. */
static const char *path_lacks(enum bench_path p, const struct volley_caps *c,
                              const char **why)
{
    if ((p == BENCH_GSO_GRO || p == BENCH_GSO_PLAIN || p == BENCH_URING_GSO) &&
        !c->gso.ok) {
        *why = feature_why(&c->gso);
        return "gso";
    }
    if ((p == BENCH_URING || p == BENCH_URING_GSO) && !c->uring.ok) {
        *why = feature_why(&c->uring);
        return "uring";
    }
    return NULL;
}

static int bench_main(const struct bench_cfg *c)
{
    static struct bench_result res[MAX_SIZES * BENCH_NPATHS];
    static double ratio[MAX_SIZES * BENCH_NPATHS];
    struct volley_caps caps;
    unsigned n = 0;
    int err = volley_probe(&caps, sizeof(caps));

    if (err < 0)
        return runtime_error("probe", err);
    if (!c->json)
        printf("%-10s %5s %9s %9s %10s %10s %9s %9s %9s %9s %9s %6s\n", "path", "size",
               "dgrams/s", "Gbit/s", "tx_sys/dg", "rx_sys/dg", "tx_ns/dg", "rx_ns/dg",
               "sent", "received", "lost", "ratio");
    for (unsigned i = 0; i < c->nsizes; i++) {
        double base = 0.0;

        for (enum bench_path p = 0; p < BENCH_NPATHS; p++) {
            const char *why, *lack = path_lacks(p, &caps, &why);
            char what[64];

            if (!(c->paths & (1u << p)))
                continue;
            if (lack) {
                fprintf(c->json ? stderr : stdout, "%-10s %5zu skipped: no %s (%s)\n",
                        bench_path_name(p), c->sizes[i], lack, why);
                continue;
            }
            err = bench_cell(p, c->sizes[i], c->seconds, &res[n]);
            if (err < 0) {
                snprintf(what, sizeof(what), "%s at %zu bytes", bench_path_name(p),
                         c->sizes[i]);
                return runtime_error(what, err);
            }
            if (p == BENCH_BASELINE)
                base = res[n].dgrams_per_s;
            ratio[n] = base > 0 ? res[n].dgrams_per_s / base : 0.0;
            if (!c->json)
                bench_row(&res[n], ratio[n]);
            n++;
        }
    }
    if (c->json)
        bench_json(res, ratio, n);
    return 0;
}

static int cmd_bench(int argc, char **argv)
{
    struct bench_cfg c = {.seconds = 1.5,
                          .sizes = {64, 1200},
                          .nsizes = 2,
                          .paths = (1u << BENCH_NPATHS) - 1};
    int rc = bench_parse(argc, argv, &c);

    return rc == PARSE_RUN ? bench_main(&c) : rc;
}

/* ---- main ---- */

static void top_usage(FILE *f)
{
    fputs("Usage: volley COMMAND [options]\n"
          "Fast batched datagram I/O: inspect, send, receive and benchmark.\n"
          "\n"
          "Commands:\n"
          "  probe   show which kernel features volley can use, and why not\n"
          "  recv    receive and count datagrams, tracking loss and reordering\n"
          "  send    send sequenced datagrams as fast as possible, for a bounded time\n"
          "  bench   compare every I/O path on loopback against plain sendto/recvfrom\n"
          "\n"
          "  -h, --help      show this help\n"
          "  -V, --version   print the version\n"
          "\n"
          "Run 'volley COMMAND --help' for the options of each command.\n",
          f);
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } cmds[] = {
        {"probe", cmd_probe},
        {"recv", cmd_recv},
        {"send", cmd_send},
        {"bench", cmd_bench},
    };
    static char name[32];

    /* Interval lines must show up when they happen, also through a pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return usage_error("missing COMMAND");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        top_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("volley %d.%d.%d\n", VOLLEY_VERSION_MAJOR, VOLLEY_VERSION_MINOR,
               VOLLEY_VERSION_PATCH);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) != 0)
            continue;
        snprintf(name, sizeof(name), "volley %s", cmds[i].name);
        cmd_name = name;
        /* getopt names the program by argv[0] in its messages. */
        argv[1] = name;
        return cmds[i].run(argc - 1, argv + 1);
    }
    return usage_error("unknown command '%s'", argv[1]);
}
