/* SPDX-License-Identifier: MIT */
/*
 * The cells of `volley bench`: throughput over the volley paths (bench.c)
 * and the plain-C baseline (baseline.c), ping-pong latency (latency.c),
 * iperf3 for comparison (iperf.c), and the SVG chart (plot.c). The sequence
 * header and percentiles are the tool's (tools/seq.h), as are the clocks
 * (tools/cli.h). The command itself is cmd.c, its datagram matrix udp.c
 * (with udp.h), and the output every matrix shares is report.c's. Nothing
 * under tools/ includes this file: the tool knows the bench only as
 * cmd_bench (tools/cli.h).
 */
#ifndef VOLLEY_BENCH_H
#define VOLLEY_BENCH_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct lat_hist;

int64_t bench_cpu_ns(void); /* CPU time of the calling thread */

/* The paths `volley bench` compares, in table order. iperf3 is the iperf3
 * program itself, run when it is installed. */
enum bench_path {
    BENCH_BASELINE,
    BENCH_RAW,
    BENCH_SCALAR,
    BENCH_MMSG,
    BENCH_GSO_GRO,
    BENCH_GSO_SPLIT,
    BENCH_GSO_PLAIN,
    BENCH_GRO_SEGS,
    BENCH_URING,
    BENCH_URING_GSO,
    BENCH_URING_ZC,
    BENCH_TOOLS,
    BENCH_IPERF3,
    BENCH_NPATHS
};

const char *bench_path_name(enum bench_path p);

/* Most runs a cell of any matrix has (--repeat's limit). */
#define BENCH_RUNS_MAX 100
/* The median of v[0..n-1] (n <= BENCH_RUNS_MAX), which it sorts: the mean
 * of the middle two when n is even, 0 when n is 0. */
double bench_median(double *v, unsigned n);
/* The median of the double at byte off in each of n records stride bytes
 * apart. */
double bench_median_of(const void *recs, size_t stride, size_t off, unsigned n);

#define BENCH_BATCH 256
/* GSO buffers per volley_send on the gso-split and gro-segs paths (as raw
 * sends). */
#define BENCH_GSO_DESCS 32
#define BENCH_RCVBUF    (8 * 1024 * 1024)
/* Receive timeouts: short enough to notice the sender is done promptly. */
#define BENCH_POLL_MS 10
/* The receiver stops once the sender is done and this long passed quietly.
 * Over loopback a datagram is queued before its send returns, so the last
 * ones are waiting already; this covers io_uring's completions. */
#define BENCH_QUIET_NS 30000000LL
/* ... or this long after the sender's planned end, whatever happens. */
#define BENCH_GRACE_NS 2000000000LL
/* A bound on datagrams per cell that does not depend on the clock. */
#define BENCH_CAP 200000000ull

/* Gives fd a BENCH_RCVBUF receive buffer, past net.core.rmem_max when the
 * process may (CAP_NET_ADMIN), so that every path gets the same one. */
void bench_rcvbuf(int fd);

/* What one thread of a cell did. */
struct bench_side {
    uint64_t dgrams;
    uint64_t bytes;
    uint64_t syscalls;
    int64_t cpu_ns;
    int err; /* negative errno that ended this side early, 0 if none */
};

struct volley_sock;

/* CPUs to pin a cell's two threads to (-1: not pinned). In a latency cell
 * tx is the client, rx the echo. */
struct bench_pin {
    int tx, rx;
};

/* One cell: shared by its sender and receiver threads. */
struct bench_run {
    enum bench_path path;
    size_t size;
    uint32_t stream;
    uint8_t *payload; /* BENCH_BATCH * size bytes for the sender */
    struct sockaddr_in dst;
    int tx_fd, rx_fd;                      /* baseline */
    struct volley_sock *tx_sock, *rx_sock; /* volley paths */
    int64_t tx_ns;                         /* sending time */
    int64_t tx_end_ns;                     /* the sender stops here (CLOCK_MONOTONIC) */
    int64_t rx_deadline_ns;                /* the receiver stops here in any case */
    int64_t tx_start_ns;                   /* written by the sender */
    int64_t last_rx_ns;                    /* written by the receiver */
    _Atomic int64_t tx_done_ns;            /* 0 until the sender is done */
    struct bench_side tx, rx;
    /* latency cells: round-trip times (the tool's histogram, seq.h), how
     * many at most, and requests never answered */
    struct lat_hist *rtt;
    uint64_t rtt_cap, rtt_n, rtt_lost;
};

/* Receiver threads call this when a receive found nothing; quiet_since is
 * when the last datagram arrived (or when the receiver started). */
bool bench_rx_finished(const struct bench_run *r, int64_t now, int64_t quiet_since);
/* The sender's start: its sending time counts from now, however late the
 * thread got going on a busy machine. */
void bench_tx_start(struct bench_run *r);
/* The sender's end: records its CPU time and tells the receiver. */
void bench_tx_finish(struct bench_run *r, int64_t cpu_start);

/* Starts rx, then tx, on their CPUs; returns once both are done. The
 * sender stops at `seconds`, the receiver when bench_rx_finished says so. */
int bench_run_threads(struct bench_run *r, double seconds, const struct bench_pin *pin,
                      void *(*tx)(void *), void *(*rx)(void *));

/* Both volley sockets of a cell on 127.0.0.1, configured as r->path says. */
int bench_volley_open(struct bench_run *r);
void bench_volley_close(struct bench_run *r);

/* raw.c: the ceiling: sendmmsg of GSO buffers, recvmmsg with GRO, counting
 * only, no libvolley. Throughput only (no latency row). */
int bench_raw_open(struct bench_run *r);
void *bench_raw_tx(void *run);
void *bench_raw_rx(void *run);

/* baseline.c: sendto/recvfrom, one datagram per call, no libvolley. */
int bench_baseline_open(struct bench_run *r);
void bench_baseline_close(struct bench_run *r);
void *bench_baseline_tx(void *run);
void *bench_baseline_rx(void *run);

struct bench_result {
    enum bench_path path;
    size_t size;
    double seconds; /* sender start to last datagram received */
    uint64_t sent, received, lost;
    double dgrams_per_s, gbit_per_s;
    double tx_syscalls_per_dgram, rx_syscalls_per_dgram;
    double tx_cpu_ns_per_dgram, rx_cpu_ns_per_dgram;
};

/* Run one path at one payload size for about `seconds`. Negative errno when
 * a socket could not be opened or a side failed. */
int bench_cell(enum bench_path p, size_t size, double seconds,
               const struct bench_pin *pin, struct bench_result *out);

/*
 * latency.c: ping-pong over loopback, one datagram in flight: a client
 * thread sends, the echo thread sends it back, the client waits for it
 * (BENCH_LAT_TIMEOUT_MS at most: then it is lost) and sends the next, for
 * about `seconds` or BENCH_LAT_CAP round trips.
 */
#define BENCH_LAT_CAP        1000000u
#define BENCH_LAT_TIMEOUT_MS 200

struct bench_lat_result {
    enum bench_path path;
    size_t size;
    uint64_t samples, lost;
    double min_us, p50_us, p99_us, max_us;
};

int bench_latency_cell(enum bench_path p, size_t size, double seconds,
                       const struct bench_pin *pin, struct bench_lat_result *out);
void *bench_baseline_ping(void *run);
void *bench_baseline_echo(void *run);
/* Whether buf/len answers request seq of this cell. */
bool bench_lat_match(const struct bench_run *r, const void *buf, size_t len,
                     uint64_t seq);
/* Keeps one round-trip time (negative: lost). */
void bench_lat_record(struct bench_run *r, int64_t rtt_ns);

/* proc.c: child processes and their JSON reports. */
#include <sys/types.h>
/* A TCP port free on 127.0.0.1 now, or a negative errno. */
int bench_free_port(void);
/* Runs argv (PATH searched) with stdin and stderr on /dev/null and stdout
 * on out_fd (-1: /dev/null). 0 or a negative errno. */
int bench_spawn(pid_t *pid, char *const argv[], int out_fd);
/* Waits for pid until deadline (CLOCK_MONOTONIC ns), then kills it: its
 * wait status, or -ETIMEDOUT when it had to be killed. */
int bench_reap(pid_t pid, int64_t deadline);
/* Reads fd into buf (NUL-terminated) until EOF or the deadline. */
size_t bench_slurp(int fd, char *buf, size_t cap, int64_t deadline);
/* bench_spawn with stdout into a pipe that *out reads. */
int bench_start(pid_t *pid, char *const argv[], int *out);
/* The started child's output into buf (fd is closed), then its wait
 * status, or -ETIMEDOUT when the deadline had it killed. */
int bench_collect(pid_t pid, int fd, char *buf, size_t cap, int64_t deadline);
/* The value of key in the JSON object obj, or NULL. */
const char *bench_json_member(const char *obj, const char *key);
bool bench_json_number(const char *v, double *out);
void bench_json_string(const char *v, char *buf, size_t size);

/*
 * tools.c: the `volley send` -> `volley recv` row: this very program's own
 * send and recv subcommands as child processes, with their defaults, over
 * loopback; the receiver's report gives the rate. On failure a negative
 * errno with the reason in why.
 */
int bench_tools_cell(size_t size, double seconds, struct bench_result *out, char *why,
                     size_t why_size);

/*
 * iperf.c: the iperf3 program over loopback, UDP, unlimited rate: a one-off
 * server (`iperf3 -s -1`) and a client sending `dgrams` datagrams of `size`
 * bytes (`-k`; its -t takes whole seconds only), each killed if it runs past
 * a deadline derived from `seconds`. Fills the rates, sent, received and
 * lost from the client's JSON report (the receiver's side); the per-datagram
 * costs are unknown (negative). On failure returns a negative errno and
 * puts the reason in why.
 */
bool bench_iperf3_found(void);
int bench_iperf3_cell(size_t size, uint64_t dgrams, double seconds,
                      const struct bench_pin *pin, struct bench_result *out, char *why,
                      size_t why_size);

/* plot.c: the throughput chart and latency bars as an SVG document. */
struct bench_plot_bar {
    const char *path;
    size_t size; /* bars of one size form a group */
    double dgrams_per_s;
    double ratio;      /* to the baseline at the same size, 0: none */
    const char *group; /* the group's label; NULL: "<size> B" */
};
struct bench_plot_lat {
    const char *path;
    double p50_us, p99_us;
};
struct bench_plot {
    const char *title;
    const char *subtitle; /* lines separated by '\n' */
    /* Wording for other units than datagrams; NULL: the datagram chart's. */
    const char *y_label, *x_label, *unit, *base, *lat_title;
    const struct bench_plot_bar *bars; /* grouped by size, in path order */
    unsigned nbars;
    const struct bench_plot_lat *lat;
    unsigned nlat;
};
/* Writes the document to f; negative errno when writing failed. */
int bench_plot_svg(FILE *f, const struct bench_plot *p);

/* "Linux 6.1.0 x86_64, 2 CPUs, 2025-01-01 12:00 UTC": the machine a run
 * was made on, for titles. */
void bench_machine(char *buf, size_t size);

/*
 * Progress of a matrix on standard error, so that a long run is never
 * silent: on a terminal one live line redrawn in place; elsewhere (a file,
 * a pipe, a CI log) a plain line at the first cell and then at most every
 * BENCH_PROGRESS_S seconds.
 */
#define BENCH_PROGRESS_S 5
struct bench_progress {
    bool live;
    unsigned total;
    int64_t start_ns, last_ns;
};
void bench_progress_start(struct bench_progress *p, unsigned total);
/* Cell done + 1 of total is starting: what, printf-style, says which. */
__attribute__((format(printf, 3, 4))) void
bench_progress(struct bench_progress *p, unsigned done, const char *what, ...);
/* Clears the live line. */
void bench_progress_end(const struct bench_progress *p);

/* --json: closes the document's "intervals" (the bench has none) and opens
 * "end" with the header the text prints ("matrix", "machine", "header")
 * and a "cells" array, one object per cell, that bench_json_close ends.
 * header: the text's line under the machine. */
__attribute__((format(printf, 2, 3))) void bench_json_open(const char *matrix,
                                                           const char *header, ...);
void bench_json_close(void);

/*
 * tcp.c: `volley bench --tcp`, TCP echo over loopback: the volley load
 * client and the plain client of tcp_plain.c, in this process, against
 * `volley tcp-echo` (uring, epoll) and the plain epoll server of
 * tcp_ref.c, each a child process; a stream row
 * beside iperf3 and a ping-pong row beside sockperf where installed.
 * Returns the exit status.
 */
struct bench_tcp_opts {
    double seconds;
    unsigned repeat;
    bool json;
    const char *plot; /* NULL: no chart */
};
int bench_tcp_main(const struct bench_tcp_opts *o);

/*
 * tcp_plain.c: the bench's second TCP client, plain C and no libvolley
 * (epoll, one thread, one request in flight per connection, every reply
 * compared with its request): conns connections to 127.0.0.1:port, the
 * measured run of duration_ns once all are up. 0 and *out, or a negative
 * errno with the reason in why: any fault of the server fails the run.
 */
struct tcp_plain_cfg {
    uint16_t port;
    unsigned conns;
    size_t size;
    int64_t duration_ns;
};
struct tcp_plain_result {
    uint64_t requests; /* answered within the measured run */
    double seconds;    /* the measured run */
    double p50_us, p99_us;
};
int tcp_plain_run(const struct tcp_plain_cfg *c, struct tcp_plain_result *out, char *why,
                  size_t why_size);

/* unix.c: `volley bench --unix`, an AF_UNIX datagram socketpair: write/read
 * per datagram against volley batches of 64, 128 and 256. Returns the exit
 * status. */
struct bench_unix_opts {
    unsigned repeat;
    bool json;
};
int bench_unix_main(const struct bench_unix_opts *o);

/*
 * threads.c: `volley bench --threads`, one loop per core: datagrams from
 * `volley send --threads 2 --pin` (two flows) into `volley recv` on 1 and
 * on 2 threads (--pin --steer cpu), and TCP ping-pong at BENCH_THREADS_CONNS
 * connections from the tcp-load client on BENCH_CLIENT_THREADS threads
 * into `volley tcp-echo` on 1 and on 2 threads, all over loopback,
 * interleaved. Returns the exit status.
 */
#define BENCH_CLIENT_THREADS 2u
#define BENCH_THREADS_CONNS  300u
struct bench_threads_opts {
    double seconds;
    unsigned repeat;
    bool json;
};
int bench_threads_main(const struct bench_threads_opts *o);
/* One datagram run: the receiver's delivered datagrams/s into *dgrams_per_s
 * (tools.c), or a negative errno and why. */
int bench_tools_threads_run(unsigned threads, double seconds, double *dgrams_per_s,
                            char *why, size_t why_size);
/* One TCP run against `volley tcp-echo --threads threads` (tcp.c). */
int bench_tcp_threads_run(unsigned threads, unsigned conns, double seconds, double *rps,
                          char *why, size_t why_size);

#endif /* VOLLEY_BENCH_H */
