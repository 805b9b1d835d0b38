/*
 * Helpers shared by `volley send`, `volley recv` and `volley bench`: the
 * sequence header both ends agree on, the loss/duplicate/reorder tracker,
 * clocks, and the benchmark cells (volley paths in bench.c, the plain-C
 * baseline in baseline.c).
 */
#ifndef VOLLEY_BENCH_H
#define VOLLEY_BENCH_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Sequence header, at the start of a payload, all fields big-endian:
 *   bytes  0-3   magic "VLY1"
 *   bytes  4-7   stream id (u32, random per sender run)
 *   bytes  8-15  sequence number (u64, from 0)
 *   bytes 16-23  send time, CLOCK_REALTIME nanoseconds (u64)
 * Payloads shorter than BENCH_HDR_LEN carry no header.
 */
#define BENCH_HDR_LEN 24

struct bench_hdr {
    uint32_t stream;
    uint64_t seq;
    uint64_t sent_ns;
};

/* buf must hold BENCH_HDR_LEN bytes. */
void bench_hdr_encode(uint8_t *buf, const struct bench_hdr *h);
/* true when buf/len starts with a header (then *h is filled). */
bool bench_hdr_decode(const uint8_t *buf, size_t len, struct bench_hdr *h);
/* A random stream id for this run. */
uint32_t bench_stream_id(void);

int64_t bench_mono_ns(void); /* CLOCK_MONOTONIC */
int64_t bench_real_ns(void); /* CLOCK_REALTIME, for headers */
int64_t bench_cpu_ns(void);  /* CPU time of the calling thread */

/*
 * Loss, duplicate and reorder tracking for one stream over a sliding window
 * of BENCH_SEQ_WINDOW sequence numbers, allocated once by bench_seq_init.
 * A number below the window counts as reordered (it came late; whether it is
 * also a duplicate can no longer be told). lost = highest + 1 - distinct.
 */
#define BENCH_SEQ_WINDOW 65536u

struct bench_seq {
    uint64_t *seen; /* BENCH_SEQ_WINDOW bits, indexed by seq % window */
    uint64_t base;  /* lowest number still inside the window */
    uint64_t highest;
    uint64_t distinct;
    uint64_t duplicated;
    uint64_t reordered;
    bool any;
};

int bench_seq_init(struct bench_seq *t);
void bench_seq_free(struct bench_seq *t);
void bench_seq_add(struct bench_seq *t, uint64_t seq);
uint64_t bench_seq_lost(const struct bench_seq *t);

/* The paths `volley bench` compares, in table order. */
enum bench_path {
    BENCH_BASELINE,
    BENCH_SCALAR,
    BENCH_MMSG,
    BENCH_GSO_GRO,
    BENCH_GSO_PLAIN,
    BENCH_URING,
    BENCH_URING_GSO,
    BENCH_NPATHS
};

const char *bench_path_name(enum bench_path p);

#define BENCH_BATCH  256
#define BENCH_RCVBUF (8 * 1024 * 1024)
/* Receive timeouts: short enough to notice the sender is done promptly. */
#define BENCH_POLL_MS 10
/* The receiver stops once the sender is done and this long passed quietly. */
#define BENCH_QUIET_NS 100000000LL
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

/* One cell: shared by its sender and receiver threads. */
struct bench_run {
    size_t size;
    uint32_t stream;
    uint8_t *payload; /* BENCH_BATCH * size bytes for the sender */
    struct sockaddr_in dst;
    int tx_fd, rx_fd;                      /* baseline */
    struct volley_sock *tx_sock, *rx_sock; /* volley paths */
    int64_t tx_end_ns;                     /* the sender stops here (CLOCK_MONOTONIC) */
    int64_t rx_deadline_ns;                /* the receiver stops here in any case */
    int64_t tx_start_ns;                   /* written by the sender */
    int64_t last_rx_ns;                    /* written by the receiver */
    _Atomic int64_t tx_done_ns;            /* 0 until the sender is done */
    struct bench_side tx, rx;
};

/* Receiver threads call this when a receive found nothing; quiet_since is
 * when the last datagram arrived (or when the receiver started). */
bool bench_rx_finished(const struct bench_run *r, int64_t now, int64_t quiet_since);
/* Writes headers into n datagrams of size bytes laid out back to back in
 * payload, numbered from seq; a no-op when size is below BENCH_HDR_LEN. */
void bench_stamp(uint8_t *payload, size_t size, unsigned n, uint32_t stream,
                 uint64_t seq);
/* The sender's end: records its CPU time and tells the receiver. */
void bench_tx_finish(struct bench_run *r, int64_t cpu_start);

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
int bench_cell(enum bench_path p, size_t size, double seconds, struct bench_result *out);

#endif /* VOLLEY_BENCH_H */
