/*
 * volley: the command-line tool.
 *   probe  what this kernel lets volley use, and why not
 *   recv   a counting sink that tracks loss, reordering and jitter
 *   send   a bounded, optionally paced sender that stamps the sequence header
 *   echo   a UDP echo server on any backend
 *   ping   round-trip latency against any UDP echo server
 *   bench  every I/O path side by side on loopback, against plain C
 * This file holds main and what the commands share.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cli_name = "volley";
volatile sig_atomic_t cli_stop;

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", cli_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", cli_name);
    return EXIT_USAGE;
}

int cli_bad_option(void)
{
    fprintf(stderr, "Try '%s --help'.\n", cli_name);
    return EXIT_USAGE;
}

int cli_runtime_error(const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", cli_name, what, volley_strerror(err));
    return 1;
}

static void on_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
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

bool cli_parse_seconds(const char *s, bool allow_zero, double *out)
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

bool cli_parse_backend(const char *s, unsigned *out)
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

/* Digits, then an optional fraction; *end is left after them. strtod is
 * not used: it takes blanks, signs, hex, "inf" and exponents. */
static bool decimal_prefix(const char *s, double *out, const char **end)
{
    double v = 0, scale = 1;
    bool digits = false;

    for (; *s >= '0' && *s <= '9'; s++, digits = true)
        v = v * 10 + (*s - '0');
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, digits = true) {
            scale /= 10;
            v += (*s - '0') * scale;
        }
    }
    *out = v;
    *end = s;
    return digits && isfinite(v);
}

bool cli_parse_decimal(const char *s, double *out)
{
    const char *end;
    double v;

    if (!decimal_prefix(s, &v, &end) || *end != '\0' || v <= 0)
        return false;
    *out = v;
    return true;
}

bool cli_parse_rate(const char *s, uint64_t *bps)
{
    const char *end;
    double v, mult = 1;

    if (!decimal_prefix(s, &v, &end))
        return false;
    switch (*end) {
    case '\0':
        break;
    case 'k':
    case 'K':
        mult = 1e3;
        break;
    case 'm':
    case 'M':
        mult = 1e6;
        break;
    case 'g':
    case 'G':
        mult = 1e9;
        break;
    case 't':
    case 'T':
        mult = 1e12;
        break;
    default:
        return false;
    }
    if (*end != '\0' && end[1] != '\0')
        return false;
    v = round(v * mult);
    if (v < 1 || v > (double)MAX_RATE_BPS)
        return false;
    *bps = (uint64_t)v;
    return true;
}

bool cli_parse_cpus(const char *s, int *tx, int *rx)
{
    cpu_set_t allowed;
    uint64_t a, b;
    char buf[32], *comma;

    if (strlen(s) >= sizeof(buf))
        return false;
    strcpy(buf, s);
    comma = strchr(buf, ',');
    if (!comma)
        return false;
    *comma = '\0';
    if (!cli_parse_u64(buf, 0, CPU_SETSIZE - 1, &a) ||
        !cli_parse_u64(comma + 1, 0, CPU_SETSIZE - 1, &b))
        return false;
    /* A CPU outside the process's set would fail only once threads start. */
    if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0 &&
        (!CPU_ISSET((int)a, &allowed) || !CPU_ISSET((int)b, &allowed)))
        return false;
    *tx = (int)a;
    *rx = (int)b;
    return true;
}

int64_t cli_seconds_ns(double s)
{
    return (int64_t)(s * 1e9);
}

double cli_ns_seconds(int64_t ns)
{
    return (double)ns / 1e9;
}

int cli_ms_until(int64_t now, int64_t when)
{
    if (when <= now)
        return 0;
    if (when - now >= NS_PER_S)
        return 1000;
    return (int)((when - now + 999999) / 1000000);
}

double cli_rate(double amount, int64_t ns)
{
    return ns > 0 ? amount / cli_ns_seconds(ns) : 0.0;
}

void cli_format_bps(char *buf, size_t size, double bps)
{
    static const char *const unit[] = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
    unsigned u = 0;

    while (u < 4 && bps >= 1000) {
        bps /= 1000;
        u++;
    }
    snprintf(buf, size, "%.*f %s", bps < 10 ? 3 : bps < 100 ? 2 : 1, bps, unit[u]);
}

unsigned cli_ip_overhead(const struct volley_addr *a)
{
    if (a->sa.sa_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&a->sin6.sin6_addr))
        return 48;
    return 28;
}

const char *cli_feature_why(const struct volley_feature *f)
{
    if (f->why)
        return f->why;
    return f->err ? volley_strerror(f->err) : "not probed by this library";
}

void cli_json_string(const char *s)
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

int cli_flow_option(int opt, struct flow_cfg *c)
{
    switch (opt) {
    case 'j':
        c->json = true;
        break;
    case 'c':
        if (!cli_parse_u64(optarg, 1, UINT64_MAX, &c->count))
            return cli_usage_error("bad --count '%s': want a whole number from 1",
                                   optarg);
        break;
    case 'd':
        if (!cli_parse_seconds(optarg, false, &c->duration))
            return cli_usage_error("bad --duration '%s': want seconds above 0, at "
                                   "most %.0f",
                                   optarg, MAX_SECONDS);
        break;
    case 'i':
        if (!cli_parse_seconds(optarg, true, &c->idle))
            return cli_usage_error("bad --idle '%s': want seconds, 0 or more", optarg);
        break;
    case 's':
        if (!cli_parse_u64(optarg, 1, VOLLEY_UDP6_MAX, &c->size))
            return cli_usage_error("bad --size '%s': want 1 to %d bytes", optarg,
                                   VOLLEY_UDP6_MAX);
        break;
    case 'B':
        if (!cli_parse_u64(optarg, 1, VOLLEY_BATCH_MAX, &c->batch))
            return cli_usage_error("bad --batch '%s': want 1 to %d", optarg,
                                   VOLLEY_BATCH_MAX);
        break;
    case 'b':
        if (!cli_parse_backend(optarg, &c->backend))
            return cli_usage_error("bad --backend '%s': want auto, scalar, mmsg or uring",
                                   optarg);
        break;
    case OPT_NO_GSO:
        c->disable |= VOLLEY_F_GSO;
        break;
    case OPT_NO_GRO:
        c->disable |= VOLLEY_F_GRO;
        break;
    default:
        return cli_bad_option();
    }
    return PARSE_RUN;
}

int cli_flow_operand(int argc, char **argv, struct flow_cfg *c, bool is_dest)
{
    if (optind >= argc)
        return cli_usage_error("missing ADDR");
    if (optind + 1 < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind + 1]);
    c->addr = argv[optind];
    if (volley_addr_parse(&c->peer, c->addr) < 0)
        return cli_usage_error("bad ADDR '%s': want ip:port or [ip6]:port", c->addr);
    if (!is_dest)
        return PARSE_RUN;
    if (volley_addr_port(&c->peer) == 0)
        return cli_usage_error("ADDR '%s' needs a port other than 0", c->addr);
    if (c->peer.sa.sa_family == AF_INET && c->size > VOLLEY_UDP4_MAX)
        return cli_usage_error("--size %" PRIu64 " is above the IPv4 limit of %d",
                               c->size, VOLLEY_UDP4_MAX);
    return PARSE_RUN;
}

static void top_usage(FILE *f)
{
    fputs("Usage: volley COMMAND [options]\n"
          "Fast batched datagram I/O: inspect, send, receive, echo, ping and benchmark.\n"
          "\n"
          "Commands:\n"
          "  probe   show which kernel features volley can use, and why not\n"
          "  recv    receive and count datagrams: loss, reordering, jitter\n"
          "  send    send sequenced datagrams, as fast as possible or at a --rate\n"
          "  echo    send every datagram back to where it came from\n"
          "  ping    round-trip latency percentiles against any UDP echo server\n"
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
        {"probe", cmd_probe}, {"recv", cmd_recv}, {"send", cmd_send},
        {"echo", cmd_echo},   {"ping", cmd_ping}, {"bench", cmd_bench},
    };
    static char name[32];

    /* Interval lines must show up when they happen, also through a pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2)
        return cli_usage_error("missing COMMAND");
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
        cli_name = name;
        /* getopt names the program by argv[0] in its messages. */
        argv[1] = name;
        return cmds[i].run(argc - 1, argv + 1);
    }
    return cli_usage_error("unknown command '%s'", argv[1]);
}
