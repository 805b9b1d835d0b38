/* SPDX-License-Identifier: MIT */
/*
 * volley: the command-line tool.
 *   probe  what this kernel lets volley use, and why not
 *   recv   a counting sink that tracks loss, reordering and jitter
 *   send   a bounded, optionally paced sender that stamps the sequence header
 *   echo   a UDP echo server on any backend
 *   ping   round-trip latency against any UDP echo server
 *   bench  every I/O path side by side on loopback, against plain C
 *          (with --tcp: TCP echo against a plain epoll server)
 *   tcp-echo, tcp-load  a TCP echo server and load client on one volley loop
 * This file holds main and what the commands share.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

const char *cli_name = "volley";
_Atomic int cli_stop;
atomic_bool cli_halt;

bool cli_json;

/* The first error said: later ones are most often its consequences. */
static struct {
    bool have;
    int err;
    char msg[512];
} doc_err;

__attribute__((format(printf, 2, 0))) static void note_error_v(int err, const char *fmt,
                                                               va_list ap)
{
    if (doc_err.have)
        return;
    vsnprintf(doc_err.msg, sizeof(doc_err.msg), fmt, ap);
    doc_err.err = err;
    doc_err.have = true;
}

void cli_note_error(int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    note_error_v(err, fmt, ap);
    va_end(ap);
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", cli_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    va_start(ap, fmt);
    note_error_v(0, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", cli_name);
    return EXIT_USAGE;
}

int cli_unavailable(const char *what)
{
    return cli_usage_error("%s is " CLI_NOT_HERE, what);
}

/* What getopt refused, for the JSON error: it said so on stderr itself. */
static char *const *parse_argv;

int cli_bad_option(void)
{
    if (optopt > 0 && optopt <= UCHAR_MAX)
        cli_note_error(0, "bad option -%c or its value is missing", optopt);
    else if (parse_argv && optind > 0)
        cli_note_error(0, "bad option '%s' or its value is missing",
                       parse_argv[optind - 1]);
    else
        cli_note_error(0, "bad option");
    fprintf(stderr, "Try '%s --help'.\n", cli_name);
    return EXIT_USAGE;
}

int cli_runtime_error(const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", cli_name, what, volley_strerror(err));
    cli_note_error(err, "%s: %s", what, volley_strerror(err));
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

/* The library's one table of names; a pair is not a socket the tool opens. */
bool cli_parse_backend(const char *s, unsigned *out)
{
    int id = volley_backend_parse(s);
    /* datagram commands: a pair is made by volley_pair, epoll is for loops */
    if (id < 0 || id == VOLLEY_BACKEND_PAIR || id == VOLLEY_BACKEND_EPOLL)
        return false;
    *out = (unsigned)id;
    return true;
}

enum num_fault { NUM_OK, NUM_SYNTAX, NUM_PLACES, NUM_RANGE };

/* The suffixes a flag's unit allows, and what each stands for: a power
 * of ten to shift by (relative to the flag's own unit) and a power of 1024
 * to multiply by. */
static const struct suffix {
    enum cli_unit unit;
    const char *text;
    int shift10;
    unsigned pow1024;
} unit_suffixes[] = {
    {CLI_UNIT_SI, "k", 3, 0},      {CLI_UNIT_SI, "K", 3, 0},
    {CLI_UNIT_SI, "m", 6, 0},      {CLI_UNIT_SI, "M", 6, 0},
    {CLI_UNIT_SI, "g", 9, 0},      {CLI_UNIT_SI, "G", 9, 0},
    {CLI_UNIT_SI, "t", 12, 0},     {CLI_UNIT_SI, "T", 12, 0},
    {CLI_UNIT_BYTES, "k", 0, 1},   {CLI_UNIT_BYTES, "K", 0, 1},
    {CLI_UNIT_BYTES, "KiB", 0, 1}, {CLI_UNIT_BYTES, "M", 0, 2},
    {CLI_UNIT_BYTES, "MiB", 0, 2}, {CLI_UNIT_BYTES, "G", 0, 3},
    {CLI_UNIT_BYTES, "GiB", 0, 3}, {CLI_UNIT_S, "s", 0, 0},
    {CLI_UNIT_S, "ms", -3, 0},     {CLI_UNIT_S, "us", -6, 0},
    {CLI_UNIT_S, "ns", -9, 0},     {CLI_UNIT_MS, "s", 3, 0},
    {CLI_UNIT_MS, "ms", 0, 0},     {CLI_UNIT_MS, "us", -3, 0},
    {CLI_UNIT_MS, "ns", -6, 0},
};

/* The suffix s[0..len) for f, or NULL. */
static const struct suffix *find_suffix(const char *s, size_t len,
                                        const struct cli_num *f)
{
    for (size_t i = 0; i < sizeof(unit_suffixes) / sizeof(unit_suffixes[0]); i++)
        if (unit_suffixes[i].unit == f->unit && strlen(unit_suffixes[i].text) == len &&
            memcmp(unit_suffixes[i].text, s, len) == 0)
            return &unit_suffixes[i];
    return NULL;
}

/* *v = *v * 10^k + add; false when that overflows. */
static bool shift_in(uint64_t *v, unsigned k, unsigned add)
{
    for (; k > 0; k--) {
        if (*v > UINT64_MAX / 10)
            return false;
        *v *= 10;
    }
    if (*v > UINT64_MAX - add)
        return false;
    *v += add;
    return true;
}

static size_t digits(const char *p, const char *end)
{
    size_t n = 0;

    while (p + n < end && isdigit((unsigned char)p[n]))
        n++;
    return n;
}

/* Reads s[0..len) into *out, exactly, in units of 10^-f->places of the
 * flag's unit. Written by hand: strtod and strtoull take blanks, signs, hex
 * and exponents. */
static enum num_fault scan_number(const char *s, size_t len, const struct cli_num *f,
                                  uint64_t *out)
{
    const char *end = s + len, *frac, *tail;
    const struct suffix *u = NULL;
    size_t whole, nfrac = 0;
    int shift = (int)f->places;
    uint64_t v = 0;
    bool fits = true;

    whole = digits(s, end);
    /* "0" alone may start a number: "010" could be meant as octal. */
    if (whole == 0 || (whole > 1 && *s == '0'))
        return NUM_SYNTAX;
    frac = tail = s + whole;
    if (frac < end && *frac == '.') {
        nfrac = digits(++frac, end);
        if (nfrac == 0)
            return NUM_SYNTAX;
        tail = frac + nfrac;
    }
    if (tail != end && !(u = find_suffix(tail, (size_t)(end - tail), f)))
        return NUM_SYNTAX;
    if (u)
        shift += u->shift10;
    while (nfrac > 0 && frac[nfrac - 1] == '0') /* they change nothing */
        nfrac--;
    for (size_t i = 0; i < whole; i++)
        fits = fits && shift_in(&v, 1, (unsigned)(s[i] - '0'));
    for (size_t i = 0; i < nfrac; i++)
        fits = fits && shift_in(&v, 1, (unsigned)(frac[i] - '0'));
    for (unsigned i = 0; u && i < u->pow1024 && fits; i++)
        fits = v <= UINT64_MAX / 1024 && (v *= 1024, true);
    /* v is now the value times 10^nfrac, in steps times 10^-shift */
    shift -= (int)nfrac;
    for (; shift < 0 && fits; shift++) {
        if (v % 10)
            return NUM_PLACES; /* between two steps */
        v /= 10;
    }
    if (!fits || !shift_in(&v, (unsigned)shift, 0) || v < f->min || v > f->max)
        return NUM_RANGE;
    *out = v;
    return NUM_OK;
}

/* v units of 10^-f->places as written: "0.25", "10T". */
static void format_units(char *buf, size_t size, uint64_t v, const struct cli_num *f)
{
    static const char suffixes[] = "kMGT";
    uint64_t one = 1;
    unsigned k = 0;
    int n;

    for (unsigned i = 0; i < f->places; i++)
        one *= 10;
    while (f->unit == CLI_UNIT_SI && k < 4 && v >= 1000 && v % 1000 == 0) {
        v /= 1000;
        k++;
    }
    n = snprintf(buf, size, "%" PRIu64, v / one);
    if (v % one) {
        n += snprintf(buf + n, size - (size_t)n, ".%0*" PRIu64, (int)f->places, v % one);
        while (buf[n - 1] == '0')
            buf[--n] = '\0';
    }
    if (k)
        snprintf(buf + n, size - (size_t)n, "%c", suffixes[k - 1]);
}

static int refuse(const struct cli_num *f, const char *s, size_t len, enum num_fault why)
{
    char lo[32], hi[32], what[96];
    static const char *const units[] = {
        [CLI_UNIT_NONE] = "",
        [CLI_UNIT_SI] = " with an optional k, M, G or T suffix",
        [CLI_UNIT_BYTES] = " with an optional K (KiB), M (MiB) or G (GiB) suffix",
        [CLI_UNIT_S] = " of seconds, or one ending in s, ms, us or ns",
        [CLI_UNIT_MS] = " of milliseconds, or one ending in s, ms, us or ns",
    };
    static const char *const unit_names[] = {[CLI_UNIT_S] = " s", [CLI_UNIT_MS] = " ms"};

    format_units(lo, sizeof(lo), f->min, f);
    format_units(hi, sizeof(hi), f->max, f);
    if (why == NUM_SYNTAX)
        snprintf(what, sizeof(what), "is not a plain decimal number%s", units[f->unit]);
    else if (why == NUM_PLACES && (f->unit == CLI_UNIT_S || f->unit == CLI_UNIT_MS)) {
        char step[32];

        format_units(step, sizeof(step), 1, f);
        snprintf(what, sizeof(what), "is finer than %s%s, the flag's step", step,
                 unit_names[f->unit]);
    } else if (why == NUM_PLACES && f->places)
        snprintf(what, sizeof(what), "has more than %u decimal places", f->places);
    else
        snprintf(what, sizeof(what), "%s",
                 why == NUM_PLACES ? "is not a whole number" : "is out of range");
    return cli_usage_error("%s: \"%.*s\" %s (%s..%s)", f->flag, (int)len, s, what, lo,
                           hi);
}

int cli_number(const char *s, const struct cli_num *f, uint64_t *out)
{
    size_t len = strlen(s);
    enum num_fault why = scan_number(s, len, f, out);

    return why == NUM_OK ? PARSE_RUN : refuse(f, s, len, why);
}

static int refuse_list(const struct cli_num *f, const char *s, const char *what,
                       unsigned min_n, unsigned max_n)
{
    char lo[32], hi[32], n[32];

    format_units(lo, sizeof(lo), f->min, f);
    format_units(hi, sizeof(hi), f->max, f);
    if (min_n == max_n)
        snprintf(n, sizeof(n), "%u", min_n);
    else
        snprintf(n, sizeof(n), "%u to %u", min_n, max_n);
    return cli_usage_error("%s: \"%s\" %s (want %s comma-separated numbers, each %s..%s)",
                           f->flag, s, what, n, lo, hi);
}

int cli_number_list(const char *s, const struct cli_num *f, unsigned min_n,
                    unsigned max_n, uint64_t *out, unsigned *n)
{
    const char *item = s, *comma;

    for (*n = 0;; item = comma + 1) {
        size_t len;
        enum num_fault why;

        comma = strchr(item, ',');
        len = comma ? (size_t)(comma - item) : strlen(item);
        if (len == 0)
            return refuse_list(f, s, "has an empty item", min_n, max_n);
        if (*n == max_n)
            return refuse_list(f, s, "has too many items", min_n, max_n);
        why = scan_number(item, len, f, &out[*n]);
        if (why != NUM_OK)
            return refuse(f, item, len, why);
        ++*n;
        if (!comma)
            break;
    }
    if (*n < min_n)
        return refuse_list(f, s, "has too few items", min_n, max_n);
    return PARSE_RUN;
}

unsigned cli_udp_max(const struct volley_addr *a)
{
    return cli_over_ipv4(a) ? VOLLEY_UDP4_MAX : VOLLEY_UDP6_MAX;
}

int cli_size(const char *s, uint64_t min, const struct volley_addr *a, uint64_t *out)
{
    const struct cli_num f = {
        .flag = "--size", .min = min, .max = cli_udp_max(a), .unit = CLI_UNIT_BYTES};

    return cli_number(s, &f, out);
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

int64_t cli_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t cli_real_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
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

int cli_wait_ms(int64_t now, int64_t when)
{
    int ms = cli_ms_until(now, when);

    return ms > 100 ? 100 : ms;
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

const char *cli_feature_why(const struct volley_feature *f)
{
    if (f->why)
        return f->why;
    return f->err ? volley_strerror(f->err) : "not probed by this library";
}

int cli_fd_flags(int fd, bool nonblock)
{
    int fl = fcntl(fd, F_GETFL);

    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fl < 0 ||
        (nonblock && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -errno;
    return 0;
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

/* The errno names a script can compare against: those the tool and the
 * library return. NULL for any other. */
static const char *errno_name(int err)
{
#define NAME(e)                                                                          \
    case e:                                                                              \
        return #e
    switch (err < 0 ? -err : err) {
        NAME(EPERM);
        NAME(ENOENT);
        NAME(EINTR);
        NAME(EIO);
        NAME(EBADF);
        NAME(ECHILD);
        NAME(EAGAIN);
        NAME(ENOMEM);
        NAME(EACCES);
        NAME(EFAULT);
        NAME(EBUSY);
        NAME(EEXIST);
        NAME(ENODEV);
        NAME(EINVAL);
        NAME(ENFILE);
        NAME(EMFILE);
        NAME(ENOSPC);
        NAME(EPIPE);
        NAME(ERANGE);
        NAME(ENOSYS);
        NAME(ENOTSOCK);
        NAME(EMSGSIZE);
        NAME(EPROTONOSUPPORT);
        NAME(EOPNOTSUPP);
        NAME(EAFNOSUPPORT);
        NAME(EADDRINUSE);
        NAME(EADDRNOTAVAIL);
        NAME(ENETDOWN);
        NAME(ENETUNREACH);
        NAME(ECONNABORTED);
        NAME(ECONNRESET);
        NAME(ENOBUFS);
        NAME(EISCONN);
        NAME(ENOTCONN);
        NAME(ESHUTDOWN);
        NAME(ETIMEDOUT);
        NAME(ECONNREFUSED);
        NAME(EHOSTDOWN);
        NAME(EHOSTUNREACH);
        NAME(EALREADY);
        NAME(EINPROGRESS);
        NAME(ECANCELED);
        NAME(EPROTO);
    default:
        return NULL;
    }
#undef NAME
}

static const char *const backend_names[] = {
    [VOLLEY_BACKEND_AUTO] = "auto",   [VOLLEY_BACKEND_SCALAR] = "scalar",
    [VOLLEY_BACKEND_MMSG] = "mmsg",   [VOLLEY_BACKEND_PAIR] = "pair",
    [VOLLEY_BACKEND_URING] = "uring", [VOLLEY_BACKEND_EPOLL] = "epoll",
    [VOLLEY_BACKEND_XNU] = "xnu"};
static const char *const steer_names[] = {[VOLLEY_STEER_FLOW] = "flow",
                                          [VOLLEY_STEER_CPU] = "cpu",
                                          [VOLLEY_STEER_KERNEL] = "kernel"};
#define NAME_OF(table, i) ((i) < sizeof(table) / sizeof(table[0]) ? table[i] : NULL)

/* Where the document stands: nothing written yet, inside "intervals",
 * inside "end", or closed. */
static enum { DOC_NONE, DOC_INTERVALS, DOC_END, DOC_DONE } doc_state;
static unsigned doc_intervals;
static const char *doc_command; /* "recv": the command as typed */
static unsigned doc_flags;      /* the CLI_F_* bits of the command parsed */

static void doc_head(void)
{
    fputs("{\"version\":", stdout);
    cli_json_string(volley_version());
    fputs(",\"command\":", stdout);
    cli_json_string(doc_command);
}

static void doc_host(void)
{
    struct utsname u;
    char host[256];

    if (gethostname(host, sizeof(host)) != 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';
    if (uname(&u) != 0)
        memset(&u, 0, sizeof(u));
    fputs(",\"host\":{\"hostname\":", stdout);
    cli_json_string(host);
    fputs(",\"system\":", stdout);
    cli_json_string(u.sysname);
    fputs(",\"kernel\":", stdout);
    cli_json_string(u.release);
    fputs(",\"machine\":", stdout);
    cli_json_string(u.machine);
    printf(",\"cpus\":%ld}", sysconf(_SC_NPROCESSORS_ONLN));
}

static void doc_start(void)
{
    struct timespec ts;
    struct tm tm;
    char when[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf(",\"start\":{\"time\":\"%s\",\"unix\":%lld}", when, (long long)ts.tv_sec);
}

void cli_doc_begin(void (*args)(const void *cfg), const void *cfg)
{
    if (!cli_json || doc_state != DOC_NONE)
        return;
    doc_head();
    fputs(",\"args\":{", stdout);
    if (args)
        args(cfg);
    putchar('}');
    doc_host();
    doc_start();
    fputs(",\"intervals\":[", stdout);
    doc_state = DOC_INTERVALS;
}

void cli_doc_interval(void)
{
    fputs(doc_intervals++ ? ",\n{" : "\n{", stdout);
}

void cli_doc_end(void)
{
    if (doc_state != DOC_INTERVALS)
        return;
    fputs("],\n\"end\":{", stdout);
    doc_state = DOC_END;
}

void cli_doc_finish(int rc)
{
    const char *name;

    if (!cli_json || doc_state == DOC_DONE || (doc_state == DOC_NONE && rc == 0))
        return;
    if (doc_state == DOC_NONE)
        doc_head();
    else if (doc_state == DOC_INTERVALS)
        fputs("],\n\"end\":null", stdout);
    else
        putchar('}');
    if (rc != 0) {
        if (!doc_err.have)
            cli_note_error(0, "failed (exit status %d)", rc);
        fputs(",\n\"error\":{\"message\":", stdout);
        cli_json_string(doc_err.msg);
        name = doc_err.err ? errno_name(doc_err.err) : NULL;
        fputs(",\"errno\":", stdout);
        cli_json_string(name);
        putchar('}');
    }
    puts("}");
    doc_state = DOC_DONE;
}

void cli_json_key(const char *key, bool first)
{
    printf("%s\"%s\":", first ? "" : ",", key);
}

/* "key":value for a count or a time that may be unlimited (0: null). */
static void json_limit(const char *key, uint64_t v)
{
    cli_json_key(key, false);
    if (v)
        printf("%" PRIu64, v);
    else
        fputs("null", stdout);
}

static void json_seconds(const char *key, int64_t ns)
{
    cli_json_key(key, false);
    if (ns)
        printf("%.3f", cli_ns_seconds(ns));
    else
        fputs("null", stdout);
}

void cli_flow_args(const void *flow)
{
    const struct flow_cfg *c = flow;

    cli_json_key("addr", true);
    cli_json_string(c->addr_arg);
    cli_json_key("address", false);
    cli_json_string(c->addr);
    if (doc_flags & CLI_F_COUNT)
        json_limit("count", c->count);
    if (doc_flags & CLI_F_DURATION)
        json_seconds("duration_s", c->duration_ns);
    if (doc_flags & CLI_F_IDLE)
        json_seconds("idle_s", c->idle_ns);
    if (doc_flags & CLI_F_BATCH)
        json_limit("batch", c->batch);
    if (doc_flags & CLI_F_BACKEND) {
        cli_json_key("backend", false);
        cli_json_string(NAME_OF(backend_names, c->backend));
    }
    if (doc_flags & CLI_F_NO_GSO)
        printf(",\"gso\":%s", c->disable & VOLLEY_F_GSO ? "false" : "true");
    if (doc_flags & CLI_F_NO_GRO)
        printf(",\"gro\":%s", c->disable & VOLLEY_F_GRO ? "false" : "true");
    if (doc_flags & CLI_F_THREADS)
        printf(",\"threads\":%u,\"pin\":%s", c->threads ? c->threads : 1,
               c->pin ? "true" : "false");
    if (doc_flags & CLI_F_STEER) {
        cli_json_key("steer", false);
        cli_json_string(NAME_OF(steer_names, c->steer));
    }
}

unsigned cli_icmp_drain(volley_sock *s, struct cli_icmp *e, bool look)
{
    struct volley_sockerr r[16];
    struct volley_stats st = {0};
    unsigned total = 0;
    int n;

    /* A wait that polls: the reports of the last datagrams sent are still
     * in the kernel's queue, which the library reads when it sees POLLERR. */
    if (look)
        (void)volley_wait(s, VOLLEY_WAIT_SEND, 0);
    while ((n = volley_errors(s, r, 16)) > 0) {
        for (int i = 0; i < n; i++) {
            if (e->read++ == 0)
                e->first = r[i];
            if (r[i].error == e->first.error &&
                volley_addr_equal(&r[i].dest, &e->first.dest))
                e->same++;
        }
        total += (unsigned)n;
    }
    /* The stats cost a system call (the kernel's drop counter), and only
     * a call that read reports can find more of them queued: ping drains
     * after every receive. */
    if (total && volley_get_stats(s, &st, sizeof(st)) == 0 &&
        st.sockerr_queued > e->reports)
        e->reports = st.sockerr_queued;
    return total;
}

/* The ICMP message behind a report, as RFC 792 and RFC 4443 name it. */
static void icmp_kind(const struct volley_sockerr *r, char *buf, size_t size)
{
    /* SO_EE_ORIGIN_ICMP and SO_EE_ORIGIN_ICMP6: <linux/errqueue.h> is not
     * everywhere the tool builds. */
    enum { ORIGIN_ICMP = 2, ORIGIN_ICMP6 = 3 };
    static const char *const unreach4[] = {"network unreachable", "host unreachable",
                                           "protocol unreachable", "port unreachable",
                                           "fragmentation needed"};
    const char *what = NULL;

    if (r->origin == ORIGIN_ICMP && r->type == 3 && r->code < 5)
        what = unreach4[r->code];
    else if (r->origin == ORIGIN_ICMP6 && r->type == 1 && r->code == 4)
        what = "port unreachable";
    else if (r->origin == ORIGIN_ICMP6 && r->type == 1 && r->code == 3)
        what = "address unreachable";
    else if (r->origin == ORIGIN_ICMP6 && r->type == 2)
        what = "packet too big";
    if (what)
        snprintf(buf, size, " (ICMP%s %s)", r->origin == ORIGIN_ICMP6 ? "v6" : "", what);
    else if (r->origin == ORIGIN_ICMP || r->origin == ORIGIN_ICMP6)
        snprintf(buf, size, " (ICMP%s type %u code %u)",
                 r->origin == ORIGIN_ICMP6 ? "v6" : "", r->type, r->code);
    else
        buf[0] = '\0';
}

static void icmp_dest(const struct volley_sockerr *r, char *buf, size_t size)
{
    if (r->dest.sa.sa_family == AF_UNSPEC || volley_addr_format(&r->dest, buf, size) < 0)
        snprintf(buf, size, "?");
}

/* Reports of the first kind: all of them when every one read was. */
static uint64_t icmp_times(const struct cli_icmp *e)
{
    return e->same == e->read && e->reports > e->read ? e->reports : e->same;
}

void cli_icmp_text(const struct cli_icmp *e, char *buf, size_t size)
{
    char dest[64], kind[64];
    int n;

    uint64_t times = icmp_times(e);

    buf[0] = '\0';
    if (e->read == 0)
        return;
    icmp_dest(&e->first, dest, sizeof(dest));
    icmp_kind(&e->first, kind, sizeof(kind));
    n = snprintf(buf, size, "%s: %s%s, %" PRIu64 " time%s", dest,
                 volley_strerror(e->first.error), kind, times, times == 1 ? "" : "s");
    if (e->reports > times && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, " (%" PRIu64 " error reports in all)",
                 e->reports);
}

void cli_icmp_json(const struct cli_icmp *e)
{
    char dest[64], kind[64], msg[160];

    printf(",\"icmp_errors\":%" PRIu64 ",\"icmp_error\":", e->reports);
    if (e->read == 0) {
        fputs("null", stdout);
        return;
    }
    icmp_dest(&e->first, dest, sizeof(dest));
    icmp_kind(&e->first, kind, sizeof(kind));
    snprintf(msg, sizeof(msg), "%s%s", volley_strerror(e->first.error), kind);
    fputs("{\"message\":", stdout);
    cli_json_string(msg);
    fputs(",\"errno\":", stdout);
    cli_json_string(errno_name(e->first.error));
    fputs(",\"dest\":", stdout);
    cli_json_string(dest);
    printf(",\"count\":%" PRIu64 "}", icmp_times(e));
}

static const struct cli_num count_num = {.flag = "--count", .min = 1, .max = UINT64_MAX};
/* Seconds to the millisecond: the loops wait in milliseconds. */
const struct cli_num cli_duration = {.flag = "--duration",
                                     .min = 1,
                                     .max = MAX_SECONDS * 1000ull,
                                     .places = 3,
                                     .unit = CLI_UNIT_S};
static const struct cli_num idle_num = {.flag = "--idle",
                                        .min = 0,
                                        .max = MAX_SECONDS * 1000ull,
                                        .places = 3,
                                        .unit = CLI_UNIT_S};
static const struct cli_num batch_num = {
    .flag = "--batch", .min = 1, .max = VOLLEY_BATCH_MAX};
#if VOLLEY_HAVE_LINUX
static const struct cli_num threads_num = {
    .flag = "--threads", .min = 1, .max = CLI_THREADS_MAX};

static int parse_steer(const char *s, unsigned *out)
{
    for (unsigned i = 0; i < sizeof(steer_names) / sizeof(steer_names[0]); i++) {
        if (strcmp(s, steer_names[i]) == 0) {
            *out = i;
            return PARSE_RUN;
        }
    }
    return cli_usage_error("bad --steer '%s': want flow, cpu or kernel", s);
}
#endif

int cli_seconds(const char *s, const struct cli_num *f, int64_t *ns)
{
    uint64_t ms;
    int rc = cli_number(s, f, &ms);

    if (rc == PARSE_RUN)
        *ns = (int64_t)ms * NS_PER_MS;
    return rc;
}

int cli_flow_option(int opt, void *flow)
{
    struct flow_cfg *c = flow;

    switch (opt) {
    case 'j':
        c->json = true;
        return PARSE_RUN;
    case 'c':
        return cli_number(optarg, &count_num, &c->count);
    case 'd':
        return cli_seconds(optarg, &cli_duration, &c->duration_ns);
    case 'i':
        return cli_seconds(optarg, &idle_num, &c->idle_ns);
    case 's':
        c->size_arg = optarg;
        return PARSE_RUN;
    case 'B':
        return cli_number(optarg, &batch_num, &c->batch);
    case 'b':
        if (!cli_parse_backend(optarg, &c->backend))
            return cli_usage_error(
                "bad --backend '%s': want auto, scalar, mmsg, uring or xnu", optarg);
        return PARSE_RUN;
    case OPT_NO_GSO:
        c->disable |= VOLLEY_F_GSO;
        return PARSE_RUN;
    case OPT_NO_GRO:
        c->disable |= VOLLEY_F_GRO;
        return PARSE_RUN;
#if !VOLLEY_HAVE_LINUX
    case OPT_THREADS:
        return cli_unavailable("--threads");
    case OPT_PIN:
        return cli_unavailable("--pin");
    case OPT_STEER:
        return cli_unavailable("--steer");
#else
    case OPT_THREADS: {
        uint64_t n;
        int rc = cli_number(optarg, &threads_num, &n);

        if (rc == PARSE_RUN)
            c->threads = (unsigned)n;
        return rc;
    }
    case OPT_PIN:
        c->pin = true;
        return PARSE_RUN;
    case OPT_STEER:
        return parse_steer(optarg, &c->steer);
#endif
    default:
        return cli_bad_option();
    }
}

#define ADDR_FORMS "ip:port, [ip6]:port, host:port or [host]:port"

/* host[0..len) by getaddrinfo, into *out with port: the first address it
 * gives (RFC 6724 order), as every client of the resolver would take. */
static int resolve_host(const char *s, const char *host, size_t len, unsigned port,
                        struct volley_addr *out)
{
    struct addrinfo hints, *res = NULL, *ai;
    char name[256];
    int rc;

    if (len == 0 || len >= sizeof(name))
        return cli_usage_error("bad ADDR '%s': want " ADDR_FORMS, s);
    memcpy(name, host, len);
    name[len] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM; /* one answer per address, not per protocol */
    rc = getaddrinfo(name, NULL, &hints, &res);
    for (ai = rc == 0 ? res : NULL; ai; ai = ai->ai_next)
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            ai->ai_addrlen <= sizeof(*out))
            break;
    if (!ai) {
        const char *why = rc ? gai_strerror(rc) : "no IPv4 or IPv6 address";

        if (res)
            freeaddrinfo(res);
        /* The resolver could not say now: not the user's mistake. */
        if (rc == EAI_AGAIN || rc == EAI_FAIL || rc == EAI_MEMORY || rc == EAI_SYSTEM) {
            fprintf(stderr, "%s: ADDR '%s': cannot resolve '%s': %s\n", cli_name, s, name,
                    why);
            cli_note_error(0, "ADDR '%s': cannot resolve '%s': %s", s, name, why);
            return 1;
        }
        return cli_usage_error("bad ADDR '%s': cannot resolve '%s': %s", s, name, why);
    }
    memset(out, 0, sizeof(*out));
    memcpy(&out->sa, ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET)
        out->sin.sin_port = htons((uint16_t)port);
    else
        out->sin6.sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return PARSE_RUN;
}

/* ADDR as people type it: what volley_addr_parse takes, or a host name
 * with a port, resolved here, in the tool, so that the library only ever
 * sees addresses. c->addr becomes the address ("127.0.0.1:9000"), what the
 * library is given; c->addr_arg keeps what was typed. */
static int resolve_addr(struct flow_cfg *c)
{
    const char *s = c->addr_arg, *host = s, *colon;
    size_t len;
    unsigned long port;
    char *end;
    int rc;

    if (volley_addr_parse(&c->peer, s) == 0) {
        c->addr = s;
        return PARSE_RUN;
    }
    if (*s == '[') {
        const char *close = strchr(s, ']');

        if (!close || close[1] != ':')
            return cli_usage_error("bad ADDR '%s': want " ADDR_FORMS, s);
        host = s + 1;
        len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s))) /* IPv6 needs brackets */
            return cli_usage_error("bad ADDR '%s': want " ADDR_FORMS, s);
        len = (size_t)(colon - s);
    }
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (!isdigit((unsigned char)colon[1]) || *end || errno || port > 65535)
        return cli_usage_error("bad ADDR '%s': the port is not 0 to 65535", s);
    rc = resolve_host(s, host, len, (unsigned)port, &c->peer);
    if (rc != PARSE_RUN)
        return rc;
    if (volley_addr_format(&c->peer, c->addr_buf, sizeof(c->addr_buf)) < 0)
        return cli_usage_error("bad ADDR '%s': want " ADDR_FORMS, s);
    c->addr = c->addr_buf;
    return PARSE_RUN;
}

static int flow_addr(int argc, char **argv, struct flow_cfg *c)
{
    if (optind >= argc)
        return cli_usage_error("missing ADDR");
    if (optind + 1 < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind + 1]);
    c->addr_arg = argv[optind];
    return resolve_addr(c);
}

int cli_bind_addr(int argc, char **argv, void *flow)
{
    return flow_addr(argc, argv, flow);
}

int cli_dest_addr(int argc, char **argv, void *flow)
{
    struct flow_cfg *c = flow;
    int rc = flow_addr(argc, argv, c);

    if (rc != PARSE_RUN)
        return rc;
    if (volley_addr_port(&c->peer) == 0)
        return cli_usage_error("ADDR '%s' needs a port other than 0", c->addr);
    /* Read only now: the largest size depends on ADDR's family. */
    return c->size_arg ? cli_size(c->size_arg, c->size_min, &c->peer, &c->size)
                       : PARSE_RUN;
}

/* Scripts wait for the "listening" line before they send. */
int cli_listen(volley_sock **s, const struct flow_cfg *c, struct volley_opts *o)
{
    struct volley_addr local;
    char name[64];
    int err;

    o->backend = c->backend;
    o->disable = c->disable;
    o->rcvbuf = CLI_RCVBUF;
    err = volley_open(s, c->addr, o);
    if (err < 0)
        return cli_runtime_error(c->addr, err);
    if (volley_local_addr(*s, &local) >= 0 &&
        volley_addr_format(&local, name, sizeof(name)) >= 0)
        fprintf(stderr, "%s: listening on %s (%s)\n", cli_name, name,
                volley_backend_name(*s));
    return 0;
}

/* The flags several commands take, each picked by its CLI_F_* bit; --json
 * and --help, with no bit, every command takes. */
static const struct {
    unsigned bit;
    struct option flag;
} shared_flags[] = {
    {CLI_F_COUNT, {"count", required_argument, NULL, 'c'}},
    {CLI_F_DURATION, {"duration", required_argument, NULL, 'd'}},
    {CLI_F_IDLE, {"idle", required_argument, NULL, 'i'}},
    {CLI_F_SIZE, {"size", required_argument, NULL, 's'}},
    {CLI_F_BATCH, {"batch", required_argument, NULL, 'B'}},
    {CLI_F_BACKEND, {"backend", required_argument, NULL, 'b'}},
    {CLI_F_NO_GSO, {"no-gso", no_argument, NULL, OPT_NO_GSO}},
    {CLI_F_NO_GRO, {"no-gro", no_argument, NULL, OPT_NO_GRO}},
    {CLI_F_THREADS, {"threads", required_argument, NULL, OPT_THREADS}},
    {CLI_F_THREADS, {"pin", no_argument, NULL, OPT_PIN}},
    {CLI_F_STEER, {"steer", required_argument, NULL, OPT_STEER}},
    {0, {"json", no_argument, NULL, 'j'}},
    {0, {"help", no_argument, NULL, 'h'}},
};
#define NSHARED   (sizeof(shared_flags) / sizeof(shared_flags[0]))
#define MAX_FLAGS (CLI_MAX_OWN + NSHARED)

/* Appends f to getopt's long table lo[*n] and, with a short form, to its
 * option string. */
static void add_flag(const struct option *f, struct option *lo, size_t *n, char *shorts)
{
    size_t len = strlen(shorts);

    lo[(*n)++] = *f;
    if (f->val > UCHAR_MAX) /* long only */
        return;
    shorts[len++] = (char)f->val;
    if (f->has_arg == required_argument)
        shorts[len++] = ':';
    shorts[len] = '\0';
}

/* The command's own flags first: where an abbreviation is ambiguous, getopt
 * lists the candidates in table order, as each command always listed them. */
static void build_flags(const struct cli_cmd *cmd, struct option *lo, char *shorts)
{
    size_t n = 0;

    shorts[0] = '\0';
    for (size_t i = 0; i < CLI_MAX_OWN && cmd->own[i].name; i++)
        add_flag(&cmd->own[i], lo, &n, shorts);
    for (size_t i = 0; i < NSHARED; i++)
        if (!shared_flags[i].bit || (cmd->shared & shared_flags[i].bit))
            add_flag(&shared_flags[i].flag, lo, &n, shorts);
    lo[n] = (struct option){0};
}

int cli_parse(int argc, char **argv, const struct cli_cmd *cmd, void *cfg)
{
    struct option lo[MAX_FLAGS + 1];
    char shorts[2 * MAX_FLAGS + 1];
    int opt, rc;

    build_flags(cmd, lo, shorts);
    parse_argv = argv;
    doc_flags = cmd->shared;
    while ((opt = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
        if (opt == 'h') {
            cmd->usage();
            if (!VOLLEY_HAVE_LINUX && cmd->shared & (CLI_F_THREADS | CLI_F_STEER))
                printf("\n%s " CLI_NOT_HERE ".\n",
                       cmd->shared & CLI_F_STEER ? "--threads, --steer and --pin are"
                                                 : "--threads and --pin are");
            return 0;
        }
        rc = cmd->option(opt, cfg);
        if (rc != PARSE_RUN)
            return rc;
    }
    if (cmd->operands)
        return cmd->operands(argc, argv, cfg);
    if (optind < argc)
        return cli_usage_error("unexpected argument '%s'", argv[optind]);
    return PARSE_RUN;
}

/* A bad VOLLEY_BACKEND or VOLLEY_DISABLE fails volley_open and volley_probe
 * with a bare EINVAL, which a command would blame on its ADDR or show as
 * missing features: say what is wrong, by name, before any command runs. */
static int check_env(void)
{
    char msg[256];

    if (volley_env_check(msg, sizeof(msg)) == 0)
        return PARSE_RUN;
    fprintf(stderr, "volley: %s\n", msg);
    cli_note_error(0, "%s", msg);
    return EXIT_USAGE;
}

/* tcp-echo, tcp-load and bench --tcp drive the stream loop. */
#if VOLLEY_HAVE_LINUX
#define HELP_BENCH_TCP "TCP echo against a plain epoll server"
#define HELP_TCP_ECHO  "a TCP echo server (or sink) on one volley loop"
#define HELP_TCP_LOAD  "TCP load: many connections, ping-pong latency or stream rate"
#else
#define HELP_BENCH_TCP CLI_NOT_HERE
#define HELP_TCP_ECHO  CLI_NOT_HERE
#define HELP_TCP_LOAD  CLI_NOT_HERE
#endif

static void top_usage(FILE *f)
{
    fputs("Usage: volley COMMAND [options]\n"
          "Fast batched datagram I/O: inspect, send, receive, echo, ping and benchmark.\n"
          "\n"
          "Commands:\n"
          "  probe     show which kernel features volley can use, and why not\n"
          "  recv      receive and count datagrams: loss, reordering, jitter\n"
          "  send      send sequenced datagrams, as fast as possible or at a --rate\n"
          "  echo      send every datagram back to where it came from\n"
          "  ping      round-trip latency percentiles against any UDP echo server\n"
          "  bench     compare every I/O path on loopback against plain sendto/recvfrom\n"
          "            (--tcp: " HELP_BENCH_TCP ")\n"
          "  tcp-echo  " HELP_TCP_ECHO "\n"
          "  tcp-load  " HELP_TCP_LOAD "\n"
          "\n"
          "  -h, --help      show this help\n"
          "  -V, --version   print the version\n"
          "\n"
          "Run 'volley COMMAND --help' for the options of each command.\n",
          f);
}

/* --json, as getopt_long would take it: "-j", "--json" or a prefix of it.
 * Seen before the command parses its flags, so that a refused flag ahead
 * of --json still gets its error document. */
static bool wants_json(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        size_t len = strlen(argv[i]);

        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "-j") == 0 ||
            (len >= 3 && strncmp(argv[i], "--json", len) == 0))
            return true;
    }
    return false;
}

static int run_command(int argc, char **argv);

int main(int argc, char **argv)
{
    int rc;

    /* Interval lines must show up when they happen, also through a pipe. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    cli_json = wants_json(argc, argv);
    doc_command = argc > 1 ? argv[1] : NULL;
    rc = run_command(argc, argv);
    cli_doc_finish(rc);
    return rc;
}

static int run_command(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
    } cmds[] = {
        {"probe", cmd_probe},
        {"recv", cmd_recv},
        {"send", cmd_send},
        {"echo", cmd_echo},
        {"ping", cmd_ping},
        {"bench", cmd_bench},
#if VOLLEY_HAVE_LINUX
        {"tcp-echo", cmd_tcp_echo},
        {"tcp-load", cmd_tcp_load},
        {"tcp-ref", cmd_tcp_ref}, /* bench --tcp's reference server: not listed */
#else
        /* they drive the stream loop */
        {"tcp-echo", NULL},
        {"tcp-load", NULL},
        {"tcp-ref", NULL},
#endif
    };
    static char name[32];

    if (argc < 2)
        return cli_usage_error("missing COMMAND");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        top_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("volley %s\n", volley_version()); /* the library's, as it runs */
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) != 0)
            continue;
        if (!cmds[i].run)
            return cli_unavailable(cmds[i].name);
        /* Every command opens sockets or probes, all under the environment. */
        if (check_env() != PARSE_RUN)
            return EXIT_USAGE;
        snprintf(name, sizeof(name), "volley %s", cmds[i].name);
        cli_name = name;
        /* getopt names the program by argv[0] in its messages. */
        argv[1] = name;
        return cmds[i].run(argc - 1, argv + 1);
    }
    return cli_usage_error("unknown command '%s'", argv[1]);
}
