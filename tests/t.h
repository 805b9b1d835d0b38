/* SPDX-License-Identifier: MIT */
/*
 * The test kit every C test is built on: checks that report file:line, the
 * case runner, the table of backends, and helpers for addresses, payloads
 * and sockets.
 *
 * A test is a table of cases handed to t_main. It prints a line per case
 * ("ok: NAME (N ms)", "skip: NAME (why)", "FAIL: NAME (...)") and ends with
 * "PROGRAM: N passed, N failed, N skipped"; it exits 0 when every case that
 * ran passed, 77 when every case skipped, 1 on any failure.
 *
 * Picking cases, the one rule: a test that runs once per backend
 * (test_dgram) takes the backend's name first (t_backend_arg). Every other
 * argument is a piece of a case name; a case runs when its name contains
 * any of them, every case runs when there is none. `test_dgram uring icmp`
 * runs the uring backend's cases whose name contains "icmp", `test_fault
 * gso_einval` the test_fault cases whose name contains "gso_einval".
 * Arguments that pick no case at all are an error, not a silent pass.
 *
 * Checks. Fatal ones (T_FAIL, T_ASSERT, T_EQ, T_OK) print "FAIL file:line:
 * ..." and end the process: the program, or only the case when each case
 * runs in a process of its own (T_FORK). Soft ones (T_CHECK, T_EXPECT)
 * print the same, count the failure and carry on; a case with a soft
 * failure fails. Both show the context set with t_context, if any.
 */
#ifndef VOLLEY_T_H
#define VOLLEY_T_H

#include "volley.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_SKIP 77

#define T_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- checks ---- */

#define T_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Report a failure at file:line and end the process (exit 1). */
void t_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/* Report a failure at file:line, count it and return false. */
bool t_miss_at(const char *file, int line, const char *fmt, ...) T_PRINTF(3, 4);
/* The soft failures reported so far in this process. */
unsigned t_failures(void);
/* What the checks that follow are about, shown in their reports ("[ctx]");
 * NULL clears it. Each case starts without one. */
void t_context(const char *fmt, ...) T_PRINTF(1, 2);

#define T_FAIL(...) t_fail_at(__FILE__, __LINE__, __VA_ARGS__)

#define T_ASSERT(c)                                                                      \
    do {                                                                                 \
        if (!(c))                                                                        \
            T_FAIL("%s", #c);                                                            \
    } while (0)

/* Integer equality that prints both sides. */
#define T_EQ(a, b)                                                                       \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ != b_)                                                                    \
            T_FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);                            \
    } while (0)

/* A volley call returning >= 0, or fail with its error text. */
#define T_OK(x)                                                                          \
    ({                                                                                   \
        int r_ = (x);                                                                    \
        if (r_ < 0)                                                                      \
            T_FAIL("%s: %s (%d)", #x, volley_strerror(r_), r_);                          \
        r_;                                                                              \
    })

/* Soft: c holds, or report (printf-style) and count; evaluates to c. */
#define T_CHECK(c, ...)                                                                  \
    ({                                                                                   \
        bool ok_ = (c);                                                                  \
        if (!ok_)                                                                        \
            t_miss_at(__FILE__, __LINE__, __VA_ARGS__);                                  \
        ok_;                                                                             \
    })

/* Soft: call gives want, or report both values (with the error text of a
 * negative errno) and count; evaluates to whether it did. */
#define T_EXPECT(call, want)                                                             \
    t_expect_at(__FILE__, __LINE__, #call, (long long)(call), (long long)(want))
bool t_expect_at(const char *file, int line, const char *what, long long got,
                 long long want);

/* End the process as skipped (77): the program, or a T_FORK case. */
#define T_SKIP_IF(c, why)                                                                \
    do {                                                                                 \
        if (c)                                                                           \
            t_skip_exit(__FILE__, __LINE__, why);                                        \
    } while (0)
void t_skip_exit(const char *file, int line, const char *why) __attribute__((noreturn));

/* ---- the case runner ---- */

struct t_case {
    const char *name;
    /* Returns 0 when the case ran, t_skip() when it cannot run here. It
     * fails through the checks. */
    int (*fn)(void);
    /* A backend (VOLLEY_BACKEND_*) the case needs: where a socket of it
     * does not open (-ENOTSUP: io_uring refused, or not built) the case is
     * skipped without running. AUTO: none. */
    unsigned backend;
    const void *arg; /* anything else the case needs */
};

/* A case named as its function, needing no backend. */
#define T_CASE(f)                                                                        \
    {                                                                                    \
        .name = #f, .fn = f                                                              \
    }

/* Each case in a child process of its own: for tests whose state is
 * process-global (the fault seam, probe results); a crash fails that case
 * alone, and the leak checker runs once per case. */
#define T_FORK 0x1u

struct t_run {
    unsigned flags;   /* T_FORK */
    unsigned case_s;  /* watchdog: seconds one case may run (0: no limit) */
    unsigned total_s; /* ... all cases together (0: no limit): under CTest's
                         timeout, so the watchdog names the case that ran
                         over instead of the whole program being killed */
    unsigned backend; /* a backend every case needs (t_backend_arg's) */
};

/* Run the cases argv picks (see the rule above) and return the exit
 * status. argv[0] is not looked at. */
int t_main(const struct t_case *cases, size_t n, const struct t_run *how, int argc,
           char **argv);

/* The case running now, with the backend it runs on (t_run's, unless its
 * own). */
const struct t_case *t_current(void);

/* Say why the running case cannot run here ("skip: NAME (why)"); returns
 * T_SKIP for the case to return. */
int t_skip(const char *fmt, ...) T_PRINTF(1, 2);
/* Say that part of the running case, what, was left out, and why. */
void t_skip_part(const char *what, const char *why);

/* Print the closing line and return the exit status for these counts
 * (for a test with a runner of its own). */
int t_summary(unsigned passed, unsigned failed, unsigned skipped);

/* ---- backends ---- */

struct t_backend {
    const char *name; /* as volley_backend_name spells it */
    unsigned id;      /* VOLLEY_BACKEND_* */
    bool kernel;      /* kernel sockets (volley_open, volley_wrap); false: an
                         in-memory pair (volley_pair) */
    bool offload;     /* sends with GSO, receives with GRO (where the kernel
                         does): the tests of those run on it */
};

/* Every backend: a new one is one entry here. */
extern const struct t_backend t_backends[];
extern const size_t t_nbackends;
#define T_BACKENDS_MAX 8 /* t_nbackends is never more */

/* The entry for backend id (fails for one the table lacks). */
const struct t_backend *t_backend_of(unsigned id);

/* For a test run once per backend: the backend argv[1] names (fails with
 * a usage message without one). Takes it off: *argv then starts at it, so
 * the rest are the case name pieces t_main reads. */
const struct t_backend *t_backend_arg(int *argc, char ***argv);

/* The stream loop backends. A stream test's cases run once on each
 * (t_main_loops): "uring/NAME" and "epoll/NAME", with the loop backend as
 * the case's arg (t_loop_backend()). */
struct t_loop_backend {
    const char *name; /* as volley_loop_backend spells it */
    unsigned id;      /* VOLLEY_BACKEND_URING or _EPOLL */
};
extern const struct t_loop_backend t_loop_backends[];
extern const size_t t_nloop_backends;
/* A case of a stream test, before it is made one per loop backend. */
struct t_loop_case {
    const char *name;
    int (*fn)(void);
};
/* t_main over every case of defs on every loop backend (at most 64 cases). */
int t_main_loops(const struct t_loop_case *defs, size_t n, const struct t_run *how,
                 int argc, char **argv);
/* The same, after np cases that need no loop (at most 64), for a test
 * that has both kinds. */
int t_main_mixed(const struct t_case *plain, size_t np, const struct t_loop_case *defs,
                 size_t n, const struct t_run *how, int argc, char **argv);
/* The loop backend of the running case. */
const struct t_loop_backend *t_loop_backend(void);

/* 0 when a socket of backend id (AUTO too) opens here, else the error it
 * gives (-ENOTSUP: not available). Tried once, in a child process, so that
 * what an open probes and remembers stays out of this one. */
int t_backend_err(unsigned id);

/* Whether r, what opening or wrapping a socket of backend id gave, only
 * says that the backend is not available here (io_uring refused). */
bool t_unavailable(unsigned id, int r);

/* ---- sockets ---- */

/* Options with size set and the given backend. */
struct volley_opts t_opts(unsigned backend);

/* Open a socket on bind; false when its address family is not available
 * here (no IPv6, no such local address), so the caller can skip. */
bool t_open(volley_sock **s, const char *bind, const struct volley_opts *o);

/*
 * Two sockets that talk to each other: for the pair backend an in-memory
 * pair; otherwise two UDP sockets of `backend` bound on `bind` (e.g.
 * "127.0.0.1:0" or "[::1]:0"), *to_b holding b's address (the peer to use
 * when a sends) and *to_a a's. Skips (77) if the family is unavailable.
 */
void t_socks(const struct volley_opts *o, const char *bind, volley_sock **a,
             volley_sock **b, struct volley_addr *to_b, struct volley_addr *to_a);

struct volley_stats t_stats(const volley_sock *s);

/* Receive until `want` datagrams arrived into d (copying payloads into
 * `store`, want * stride bytes) or timeout_ms passed with nothing new.
 * Returns how many arrived. */
unsigned t_recv_n(volley_sock *s, struct volley_dgram *d, unsigned want, uint8_t *store,
                  size_t stride, int timeout_ms);

/* Send all n datagrams, waiting when the socket would block (bounded by
 * timeout_ms overall). Returns how many were sent. */
unsigned t_send_all(volley_sock *s, const struct volley_dgram *d, unsigned n,
                    int timeout_ms);

/* Copy the payloads of d[0..n) out of socket memory into store (slots of
 * stride bytes, cut to fit) and point d at the copies. */
void t_keep(struct volley_dgram *d, unsigned n, uint8_t *store, size_t stride);

/* n descriptors, d[i] pointing at slot i (stride bytes) of buf: datagrams
 * to send, or room to keep received ones. */
struct t_batch {
    struct volley_dgram *d;
    uint8_t *buf;
    size_t stride;
    unsigned n;
};
struct t_batch t_batch_new(unsigned n, size_t stride);
void t_batch_free(struct t_batch *b);

/* File descriptors this process has open. */
int t_count_fds(void);

/* Whether fd is readable within timeout_ms. */
bool t_readable(int fd, int timeout_ms);

/* Fails unless fd is an eventfd (Linux: read from /proc/self/fd). */
void t_assert_eventfd(int fd);

/* ---- addresses ---- */

/* The address s ("1.2.3.4:5", "[::1]:0"); NULL or "" is none (AF_UNSPEC).
 * Fails on anything else. */
struct volley_addr t_addr(const char *s);
/* The address s is bound to. */
struct volley_addr t_local(const volley_sock *s);
/* ip ("127.0.0.1:0", "[::1]:0") with the port s is bound to. */
struct volley_addr t_dest(const volley_sock *s, const char *ip);
/* a is the address s (as t_addr reads it). */
bool t_addr_is(const struct volley_addr *a, const char *s);
/* a as text, in one of a few static buffers (enough for one message). */
const char *t_fmt(const struct volley_addr *a);
/* Same family and IP; ports are not compared. */
bool t_same_ip(const struct volley_addr *a, const struct volley_addr *b);

/* ---- payloads ---- */

/* Deterministic payload byte for (seq, index). */
static inline uint8_t t_byte(uint64_t seq, size_t i)
{
    return (uint8_t)((seq * 131u + i * 7u + 17u) & 0xff);
}

/* Datagram seq's payload: t_byte(seq, i) at every i. */
void t_fill(void *p, size_t len, uint64_t seq);

/* Fail unless d is len bytes of datagram seq's payload from offset off. */
#define T_PAYLOAD(d, len, seq, off) t_payload_at(__FILE__, __LINE__, d, len, seq, off)
void t_payload_at(const char *file, int line, const struct volley_dgram *d, size_t len,
                  uint64_t seq, size_t off);

/* A numbered payload (len >= 8): seq in the first 8 bytes, then t_byte. */
void t_fill_seq(void *p, size_t len, uint64_t seq);
/* The number in a numbered payload (d holds at least 8 bytes). */
uint64_t t_seq(const struct volley_dgram *d);
/* Fail unless d is a numbered payload of len bytes; returns its number. */
#define T_SEQ(d, len) t_seq_at(__FILE__, __LINE__, d, len)
uint64_t t_seq_at(const char *file, int line, const struct volley_dgram *d, size_t len);

/* ---- time and numbers ---- */

/* Monotonic milliseconds, and nanoseconds (CLOCK_MONOTONIC, the clock of
 * volley's loop timers). */
long long t_now_ms(void);
int64_t t_now_ns(void);
/* CLOCK_REALTIME nanoseconds, the clock of volley_dgram.rx_ns. */
int64_t t_realtime_ns(void);
/* The next number of a seeded xorshift sequence. */
uint32_t t_rand(uint64_t *state);

#endif
