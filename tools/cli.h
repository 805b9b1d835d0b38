/* SPDX-License-Identifier: MIT */
/*
 * The volley command-line tool: what its commands share. Each command lives
 * in its own tools/cmd_<name>.c (bench in bench/cmd.c, beside the benchmark
 * it runs) and reaches the library through volley.h only, as a user's
 * program would.
 * Exit status of every command: 0 done, 1 runtime error, 2 bad usage.
 */
#ifndef VOLLEY_CLI_H
#define VOLLEY_CLI_H

#include "volley.h"

#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXIT_USAGE 2
/* Option parsers return this when the command should go on and run. */
#define PARSE_RUN (-1)
#define NS_PER_S  1000000000LL
#define NS_PER_MS 1000000LL
/* Longest accepted duration, in seconds: far from overflowing nanoseconds. */
#define MAX_SECONDS 1000000
/* Highest --rate: the library's pacing limit, 10 Tbit/s. */
#define MAX_RATE_BPS 10000000000000ull

/* --threads: at most one reuseport group's members. */
#define CLI_THREADS_MAX VOLLEY_GROUP_MAX

/* Datagrams recv and echo take per receive call by default. */
#define CLI_RX_BATCH 256

/* Flags without a short form: values above any character. A command's own
 * start at OPT_OWN. */
enum {
    OPT_NO_GSO = 256,
    OPT_NO_GRO,
    OPT_THREADS,
    OPT_PIN,
    OPT_STEER,
    OPT_OWN,
};

/* "volley recv" once a command is chosen: prefixes every message. */
extern const char *cli_name;
/* Set by SIGINT/SIGTERM once cli_catch_signals ran. Atomic (lock-free, so
 * a handler may store it) because the threads of --threads read it too. */
extern _Atomic int cli_stop;
/* Set by the main thread of a --threads run when the run as a whole is
 * done (count, idle): its threads stop as they would on a signal. */
extern atomic_bool cli_halt;

/* What every loop of a command checks before its next turn. */
static inline bool cli_stopping(void)
{
    return atomic_load_explicit(&cli_stop, memory_order_relaxed) ||
           atomic_load_explicit(&cli_halt, memory_order_relaxed);
}

__attribute__((format(printf, 1, 2))) int cli_usage_error(const char *fmt, ...);
/* Built without the Linux parts (VOLLEY_HAVE_LINUX 0, as on macOS), the
 * commands, flags and bench rows that need them (the stream loop,
 * reuseport groups, CPU pinning, sendmmsg, io_uring) are refused with
 * this: a usage error naming what, and why. */
#define CLI_NOT_HERE "not available on this platform (built without the Linux parts)"
int cli_unavailable(const char *what);
/* getopt has already said what was wrong. */
int cli_bad_option(void);
int cli_runtime_error(const char *what, int err);
/* Ctrl-C ends a run early but still prints its summary. No SA_RESTART, so
 * a wait in progress returns at once. */
void cli_catch_signals(void);

/* true and *out set when s names a datagram backend (not pair, not epoll). */
bool cli_parse_backend(const char *s, unsigned *out);

/*
 * Every numeric flag is read by cli_number. A value is plain decimal: "0" or
 * digits without a leading zero, then optionally "." and digits, then
 * optionally one suffix of the flag's unit:
 *   CLI_UNIT_SI     k, M, G or T in either case, powers of 1000 (rates)
 *   CLI_UNIT_BYTES  K or k (also KiB), M (MiB), G (GiB): powers of 1024, as
 *                   iperf3 reads sizes
 *   CLI_UNIT_S, _MS s, ms, us or ns; a bare number is in the flag's own unit,
 *                   seconds or milliseconds
 * Nothing else: no sign, blanks, hex, exponent or other text. The value is
 * kept exactly, as a whole number of steps of 10^-places of the flag's
 * unit; one between two steps is refused: with places 3, "0.25" and
 * "0.2500" are 250, "0.0001" is refused, and "250ms" for a flag in seconds
 * is 250 too. No flag takes a negative number.
 */
enum cli_unit { CLI_UNIT_NONE, CLI_UNIT_SI, CLI_UNIT_BYTES, CLI_UNIT_S, CLI_UNIT_MS };
struct cli_num {
    const char *flag;  /* "--size": messages name it */
    uint64_t min, max; /* inclusive, in steps */
    unsigned places;   /* a step is 10^-places */
    enum cli_unit unit;
};
/* What every command's --help says about the above. */
/* --pin's help line, the same for every command that takes --threads. */
#define CLI_PIN_HELP                                                                     \
    "      --pin            with --threads 2 or more: pin thread i to the i-th\n"        \
    "                       CPU this process may use (modulo their number)\n"

/* What every command with an ADDR says about it in its --help. */
#define CLI_ADDR_HELP                                                                    \
    "ADDR may also name a host, \"host:port\" or \"[host]:port\" (localhost:9000): it\n" \
    "is resolved once, by getaddrinfo, and its first address used.\n"

#define CLI_NUMBER_HELP                                                                  \
    "Numbers are plain decimal, like 1200 or 0.25: no sign, exponent, hex, blanks or\n"  \
    "leading zeros. A value must lie in its flag's range and be a whole number, or\n"    \
    "have at most the decimals shown. Sizes in bytes may end in K (or k, KiB: 1024),\n"  \
    "M (MiB) or G (GiB), as iperf3 reads them; times may end in s, ms, us or ns (a\n"    \
    "bare number is in the flag's own unit); rates in k, M, G or T (powers of 1000).\n"  \
    "Anything else is refused (exit status 2).\n"

/* PARSE_RUN and *out set when s is valid for f; otherwise says why, naming
 * the flag, the value and its range, and returns EXIT_USAGE. */
int cli_number(const char *s, const struct cli_num *f, uint64_t *out);
/* A comma-separated list of min_n to max_n numbers, each read as f says
 * into out[0..*n); no item may be empty. Returns as cli_number does. */
int cli_number_list(const char *s, const struct cli_num *f, unsigned min_n,
                    unsigned max_n, uint64_t *out, unsigned *n);
/* A flag in seconds to the millisecond (f->places 3), into nanoseconds. */
int cli_seconds(const char *s, const struct cli_num *f, int64_t *ns);
/* --duration of recv, send, echo and ping: 0.001 to MAX_SECONDS. */
extern const struct cli_num cli_duration;
/* The largest UDP payload to a: IPv4's for IPv4 and v4-mapped peers. */
unsigned cli_udp_max(const struct volley_addr *a);
/* --size, read once ADDR is known: min to the UDP limit for a. */
int cli_size(const char *s, uint64_t min, const struct volley_addr *a, uint64_t *out);

int64_t cli_mono_ns(void); /* CLOCK_MONOTONIC */
int64_t cli_real_ns(void); /* CLOCK_REALTIME, for the sequence header */
double cli_ns_seconds(int64_t ns);
/* A poll timeout that wakes at `when`, capped at a second. */
int cli_ms_until(int64_t now, int64_t when);
/* A volley_recv_wait timeout that wakes at `when`: 100 ms steps while it
 * is far, so that a stream's calls keep one timeout (volley then sets it
 * once, not per call). */
int cli_wait_ms(int64_t now, int64_t when);
/* amount per second over ns, 0 for an empty span. */
double cli_rate(double amount, int64_t ns);
/* "1.23 Gbit/s", "750 kbit/s": SI, three significant digits or so. */
void cli_format_bps(char *buf, size_t size, double bps);

/* Reached over IPv4: an IPv4 or a v4-mapped IPv6 address. */
static inline bool cli_over_ipv4(const struct volley_addr *a)
{
    return a->sa.sa_family != AF_INET6 || IN6_IS_ADDR_V4MAPPED(&a->sin6.sin6_addr);
}
/* IP and UDP header bytes a datagram to a carries on the wire, as the
 * library's pacer counts them: 28 for IPv4 (and v4-mapped), 48 for IPv6.
 * Inline: `volley recv` asks it of every datagram. */
static inline unsigned cli_ip_overhead(const struct volley_addr *a)
{
    return cli_over_ipv4(a) ? 28 : 48;
}

/* A probed feature's explanation; a library that left it out still gets a
 * reason. */
const char *cli_feature_why(const struct volley_feature *f);

/* Sets FD_CLOEXEC, and O_NONBLOCK when nonblock, on fd: for the systems
 * whose socket(), socketpair() and pipe() take no such flags (macOS).
 * 0 or a negative errno. */
int cli_fd_flags(int fd, bool nonblock);

/* A JSON string (NULL prints null) on stdout. */
void cli_json_string(const char *s);

/*
 * --json: whatever the command, stdout carries one document of one shape
 * (volley(1), JSON OUTPUT), so a script reads every command the same way:
 *   {"version", "command", "args", "host", "start", "intervals": [...],
 *    "end": {...}}, and "error" {"message", "errno"} beside them when the
 * exit status is not 0. main owns the document: it writes the error
 * document when a command failed before it began, and closes the one a
 * command began, adding the error the command ended with.
 */
extern bool cli_json;
/* The error a --json document reports: the first one said on stderr.
 * cli_usage_error and cli_runtime_error call it; code that explains a
 * failure itself calls it with a negative errno or 0. */
__attribute__((format(printf, 2, 3))) void cli_note_error(int err, const char *fmt, ...);
/* Writes the document up to its open "intervals" array; args prints the
 * members of "args" from cfg. Nothing without --json. */
void cli_doc_begin(void (*args)(const void *cfg), const void *cfg);
/* Opens the next object of "intervals": the caller prints its members and
 * its closing brace. */
void cli_doc_interval(void);
/* Closes "intervals" and opens "end": the caller prints its members; main
 * closes it. */
void cli_doc_end(void);
/* main, once the command returned rc: the error document, or the end of
 * the one begun. */
void cli_doc_finish(int rc);
/* "key":value members for the args and end objects: a leading comma but
 * for the first member of an object (first true). */
void cli_json_key(const char *key, bool first);
/* What the shared flags of a flow command (struct flow_cfg) came to, as
 * members of "args", the first of them first. */
void cli_flow_args(const void *flow);

/*
 * How a command reads its command line. The flags several commands take are
 * defined once, in cli.c; a command picks the ones it takes by CLI_F_* bits
 * and adds its own. Every command takes --json and --help.
 */
enum {
    CLI_F_COUNT = 1u << 0,
    CLI_F_DURATION = 1u << 1,
    CLI_F_IDLE = 1u << 2,
    CLI_F_SIZE = 1u << 3,
    CLI_F_BATCH = 1u << 4,
    CLI_F_BACKEND = 1u << 5,
    CLI_F_NO_GSO = 1u << 6,
    CLI_F_NO_GRO = 1u << 7,
    CLI_F_THREADS = 1u << 8, /* --threads and --pin */
    CLI_F_STEER = 1u << 9,
};
#define CLI_MAX_OWN 10

struct cli_cmd {
    unsigned shared; /* CLI_F_* */
    /* The command's own flags, ended by an entry without a name. getopt
     * sees them ahead of the shared ones. */
    struct option own[CLI_MAX_OWN + 1];
    void (*usage)(void); /* --help */
    /* Reads one flag (getopt's return; optarg holds its value) into cfg:
     * PARSE_RUN to go on, or an exit status. */
    int (*option)(int opt, void *cfg);
    /* Reads what follows the flags (argv[optind] on) into cfg, as option
     * does; NULL when the command takes no operand. */
    int (*operands)(int argc, char **argv, void *cfg);
};

/* Reads the command line as cmd says: PARSE_RUN when the command should
 * run, 0 once --help was shown, or an exit status. */
int cli_parse(int argc, char **argv, const struct cli_cmd *cmd, void *cfg);

/*
 * ICMP error reports (VOLLEY_F_RECVERR) a sender drew, read with
 * volley_errors: how many, and the first kind in full, so that a summary
 * can say which error it was (a closed port answers "port unreachable").
 */
struct cli_icmp {
    uint64_t reports; /* every report the socket queued (its stats) */
    uint64_t read;    /* of them, read here: the library keeps the latest 32 */
    uint64_t same;    /* of those, the first kind: same error and destination */
    struct volley_sockerr first;
};
/* Reads every report waiting on s into e; how many were read. look: first
 * make the library look at the kernel's error queue (a poll), for a caller
 * that does not wait on s. */
unsigned cli_icmp_drain(volley_sock *s, struct cli_icmp *e, bool look);
/* "127.0.0.1:9: connection refused (ICMP port unreachable), 5 times" and,
 * when other kinds came too, how many. "" when none came. */
void cli_icmp_text(const struct cli_icmp *e, char *buf, size_t size);
/* ,"icmp_errors":N,"icmp_error":{"message","errno","dest","count"} or null */
void cli_icmp_json(const struct cli_icmp *e);

/* Wherever kernel drops are shown: SO_RXQ_OVFL counts the buffers the
 * socket dropped, and with GRO one buffer holds a batch of datagrams. */
#define CLI_DROPS_NOTE                                                                   \
    "(buffers dropped on a full socket: with GRO, one can hold many datagrams)"
/* The same for a --help text. */
#define CLI_DROPS_HELP                                                                   \
    "Kernel drops count the receive buffers the kernel dropped because the\n"            \
    "socket was full (SO_RXQ_OVFL): with GRO, one dropped buffer can hold a\n"           \
    "whole batch of coalesced datagrams, so drops may be fewer than the\n"               \
    "datagrams lost.\n"

/* What recv, send, echo and ping share. */
struct flow_cfg {
    const char *addr;     /* ADDR as an address: what the library is given */
    const char *addr_arg; /* ADDR as typed: a host name is resolved */
    char addr_buf[64];
    struct volley_addr peer;
    uint64_t count;      /* 0: no limit */
    int64_t duration_ns; /* 0: no limit */
    int64_t idle_ns;     /* recv, echo: 0 never stops on silence */
    uint64_t size;
    uint64_t size_min;    /* the smallest --size: ping's carry the header */
    const char *size_arg; /* --size as given, read with ADDR (send, ping) */
    uint64_t batch;
    unsigned backend;
    unsigned disable;
    bool json;
    /* A thread of --threads: its lines are the main thread's to print. */
    bool quiet;
    /* --threads N: one socket (or loop) per thread; --pin: thread i on the
     * i-th CPU this process may use, modulo their number; --steer: how a
     * server's reuseport group spreads packets (VOLLEY_STEER_*). */
    unsigned threads;
    bool pin;
    unsigned steer;
    /* send only */
    uint64_t rate_bps; /* 0: as fast as the socket takes */
    uint64_t burst;    /* 0: the library's default */
    unsigned pace_flags;
};

/* A cli_cmd option reader for the shared flags, into a struct flow_cfg. */
int cli_flow_option(int opt, void *flow);
/* cli_cmd operand readers for the one operand, ADDR, into a struct
 * flow_cfg: where recv and echo bind, and where send and ping send, which
 * needs a port and a --size that fits a UDP datagram to it. */
int cli_bind_addr(int argc, char **argv, void *flow);
int cli_dest_addr(int argc, char **argv, void *flow);
/* The receive buffer recv and echo ask for: room to absorb a sender at
 * full speed. */
#define CLI_RCVBUF (8 * 1024 * 1024)
/* Opens ADDR for recv and echo with o, to which the flags add the backend,
 * the features turned off and a large receive buffer; then says where it
 * listens. 0, or the exit status once it said why it could not. */
int cli_listen(volley_sock **s, const struct flow_cfg *c, struct volley_opts *o);

int cmd_probe(int argc, char **argv);
int cmd_recv(int argc, char **argv);
int cmd_send(int argc, char **argv);
int cmd_echo(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tcp_echo(int argc, char **argv);
int cmd_tcp_load(int argc, char **argv);
/* Not listed: the reference server `volley bench --tcp` runs (bench/tcp_ref.c). */
int cmd_tcp_ref(int argc, char **argv);

#endif /* VOLLEY_CLI_H */
