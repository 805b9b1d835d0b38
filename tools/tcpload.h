/* SPDX-License-Identifier: MIT */
/*
 * The TCP load client shared by `volley tcp-load` and `volley bench --tcp`:
 * N connections on one volley_loop, either ping-pong (each connection sends
 * a request and waits for as many bytes back) or stream (each connection
 * keeps its send queue full). Round-trip times go into a fixed histogram,
 * so nothing is allocated per request. Also what the TCP commands share:
 * the loop backend names and the file-descriptor limit.
 */
#ifndef VOLLEY_TCPLOAD_H
#define VOLLEY_TCPLOAD_H

#include "seq.h"
#include "volley.h"

struct team_pub;

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --conns: the ephemeral port range of one client address to one server
 * port is about 28000 ports; the limit stays well inside it. */
#define TCP_MAX_CONNS 20000u
/* --size: at most the largest readq_max, which a request must fit. */
#define TCP_MAX_SIZE (16u << 20)
/* Receive buffers a loop may have (volley_loop_opts.buf_count). */
#define TCP_MIN_BUFFERS 2u
#define TCP_MAX_BUFFERS 32768u
/* File descriptors a process needs besides its connections. */
#define TCP_FD_SLACK 64u

/* true and *out set when s is auto, uring or epoll. */
bool tcp_parse_backend(const char *s, unsigned *out);

/* Raises the soft RLIMIT_NOFILE to the hard limit; then 0 when need
 * descriptors fit, -EMFILE when they do not, or getrlimit's error. */
int tcp_raise_nofile(unsigned need);

enum tcpload_mode { TCPLOAD_PINGPONG, TCPLOAD_STREAM };

/* One second of a run, for the progress lines. */
struct tcpload_tick {
    double from, to; /* seconds since the run started */
    uint64_t requests;
    uint64_t bytes_out; /* as tcpload_result counts them, in the interval */
    uint64_t bytes_in;
    unsigned conns; /* connections open */
};

struct tcpload_cfg {
    const char *addr; /* "ip:port" or "[ip6]:port" */
    unsigned conns;   /* 1 .. TCP_MAX_CONNS */
    size_t size;      /* request (ping-pong) or write (stream) bytes */
    enum tcpload_mode mode;
    unsigned backend;      /* VOLLEY_BACKEND_AUTO, _URING or _EPOLL */
    unsigned buffers;      /* receive buffers; 0: twice conns, 256 .. 32768 */
    uint32_t zc_threshold; /* volley_conn_opts.zc_threshold of the connections */
    int64_t duration_ns;   /* of the measured run, after every dial finished */
    uint64_t count;        /* most requests (writes) in all; 0: no limit */
    /* Called about once a second while the run lasts (NULL: never). */
    void (*tick)(const struct tcpload_tick *t, void *arg);
    void *tick_arg;
    /* --threads: where this thread publishes its progress (requests,
     * connections open, bytes sent) for the main thread, and where its
     * round-trip histogram is copied at the end; NULL: nowhere. */
    struct team_pub *pub;
    struct lat_hist *hist_out;
};
/* What a thread of tcpload_run_threads publishes. */
enum { TL_REQUESTS, TL_OPEN, TL_BYTES_OUT };

struct tcpload_result {
    unsigned connected;
    uint64_t requests; /* answered (ping-pong) or written (stream) in the run */
    /* Ping-pong: bytes of the requests written in the run and of their
     * replies, also those that came after its end: equal when every
     * request was answered. Stream: bytes the kernel took in the run, and
     * the echo read before the connections closed. */
    uint64_t bytes_out, bytes_in;
    uint64_t errors; /* failed dials, connections lost, short replies */
    int first_error; /* the first of them, a negative errno; 0: none */
    double seconds;  /* the measured run */
    /* over the run, from the loop's counters: */
    uint64_t syscalls, polls, ring_empty, sends, zc_sends, zc_copied;
    /* round trips (ping-pong), microseconds; negative when none */
    uint64_t samples;
    double min_us, mean_us, p50_us, p90_us, p99_us, p999_us, max_us;
    char backend[8];
    const char *stopped; /* "duration", "count", "signal" or "errors" */
};

/* Runs the load as c says. 0 once it ran (r says how it went), or a
 * negative errno when it could not: the loop did not open, memory, or no
 * connection came up (then the first dial's error). */
int tcpload_run(const struct tcpload_cfg *c, struct tcpload_result *r);

/*
 * The same load on n threads (1 .. 64), each its own loop with its share
 * of the connections and of c->count, pinned (pin) to the allowed CPUs in
 * turn. c->tick is called from the calling thread with the sums of what
 * the threads publish. *r sums the threads (the percentiles over all
 * round trips, the seconds the longest thread's run), per[i] is thread
 * i's own result. 0 once it ran, or the first thread's error when none
 * connected.
 */
int tcpload_run_threads(const struct tcpload_cfg *c, unsigned n, bool pin,
                        struct tcpload_result *r, struct tcpload_result *per);

#endif /* VOLLEY_TCPLOAD_H */
