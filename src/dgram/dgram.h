/* SPDX-License-Identifier: MIT */
/* Private to libvolley: datagram sockets. The socket's state, the backend
 * ops table, and the pure helpers the backends share (cmsg, gso, pacer,
 * txbuild, msg). Files in src/dgram include this and the base; tests
 * include it to reach these. */
#ifndef VOLLEY_DGRAM_H
#define VOLLEY_DGRAM_H

#include "../base/base.h"

#include <netinet/udp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The kernel ABI's UDP offload options, for C libraries older than it
 * (glibc has them since 2.29). */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define VOLLEY__SOCKERR_RING 32
/* Control-message space per message: pktinfo + TOS/TCLASS + UDP_SEGMENT on
 * send; pktinfo (both families on dual-stack) + TOS + TCLASS + timestamp +
 * RXQ_OVFL + UDP_GRO on receive. */
#define VOLLEY__TX_CTRL 96
#define VOLLEY__RX_CTRL 256

/* What a backend is and can do (struct volley_backend.caps). */
#define VOLLEY__BE_KERNEL  0x1u /* drives a kernel socket: connect, local address */
#define VOLLEY__BE_OFFLOAD 0x2u /* can use UDP GSO and GRO */
/* Its send checks the descriptors while building messages (txbuild.c):
 * volley_send leaves the check to it, saving a pass over the batch. */
#define VOLLEY__BE_CHECKS 0x4u
/* The socket lost its backend (its uring loop closed first): every entry
 * point but close and the counters gives -EPIPE. */
#define VOLLEY__BE_GONE 0x8u

/* A datagram backend: one file, one table. volley_open/volley_wrap choose
 * one (sock.c) and call its init; adding a backend is adding a file, a
 * table and an entry in setup.c's list of kernel backends. */
struct volley_backend {
    const char *name;
    unsigned id;   /* VOLLEY_BACKEND_* */
    unsigned caps; /* VOLLEY__BE_* */
    /* Set the backend up on a socket whose fd, family, options and send
     * buffers are ready: 0, or a negative errno (-ENOTSUP: not available
     * here). NULL for backends that are not opened on an fd (the pair). */
    int (*init)(volley_sock *s);
    int (*send)(volley_sock *s, const struct volley_dgram *d, unsigned n);
    /* called only when nothing staged by an earlier call is pending */
    int (*recv)(volley_sock *s, struct volley_dgram *d, unsigned n);
    /* volley_recv_wait, likewise, by the backend's own means (uring) */
    int (*recv_wait)(volley_sock *s, struct volley_dgram *d, unsigned n, int timeout_ms);
    /* or: recv, sleeping in the first receive on a blocking fd until
     * SO_RCVTIMEO (volley__msg_block_for set it). Neither: poll, then recv. */
    int (*recv_block)(volley_sock *s, struct volley_dgram *d, unsigned n);
    /* NULL: poll(2) on s->fd */
    int (*wait)(volley_sock *s, unsigned events, int timeout_ms);
    /* backend-private teardown; NULL if none. The fd is closed by sock.c. */
    void (*close)(volley_sock *s);
    /* a completion of the socket's own operation on its loop's ring (a
     * backend that shares it: uring): what the loop owes for it
     * (VOLLEY_WAIT_*); NULL for the others */
    unsigned (*ring_cqe)(volley_sock *s, uint32_t own_tag, int32_t res, uint32_t flags);
};

extern const struct volley_backend volley__backend_scalar VOLLEY_INTERNAL;
extern const struct volley_backend volley__backend_mmsg VOLLEY_INTERNAL;
extern const struct volley_backend volley__backend_pair VOLLEY_INTERNAL;
/* mmsg's send: also the uring backend's when no zero-copy is asked for. */
VOLLEY_INTERNAL int volley__mmsg_send(volley_sock *s, const struct volley_dgram *d,
                                      unsigned n);
/* scalar's send and receive: also the xnu backend's where XNU's batch
 * calls cannot serve (block: the first receive may sleep, as recv_block). */
VOLLEY_INTERNAL int volley__scalar_send(volley_sock *s, const struct volley_dgram *d,
                                        unsigned n);
VOLLEY_INTERNAL int volley__scalar_receive(volley_sock *s, struct volley_dgram *d,
                                           unsigned n, bool block);
#if VOLLEY_HAVE_XNU
extern const struct volley_backend volley__backend_xnu VOLLEY_INTERNAL;
/* The self-test of XNU's batch calls, run once per process (again while it
 * could not run at all): 0 when sendmsg_x/recvmsg_x moved two datagrams
 * over loopback intact, else the error or -ENOTSUP. *ctrl: 0 when
 * recvmsg_x also brought their control data. */
VOLLEY_INTERNAL int volley__xnu_probe(int *ctrl);
#if VOLLEY_TESTING
/* Forget the verdict, so the next socket runs the self-test again. */
VOLLEY_INTERNAL void volley__xnu_probe_reset(void);
#endif
#endif
#if VOLLEY_HAVE_URING
extern const struct volley_backend volley__backend_uring VOLLEY_INTERNAL;
#if VOLLEY_TESTING
/* Tests: overwrite a send slot's payload the moment it is released, so a
 * kernel still reading it would send the poison. */
extern bool volley__uring_poison VOLLEY_INTERNAL;
#endif
#endif

/* Metadata parsed from one received message's control messages. */
struct volley__rxmeta {
    struct volley_addr local;
    uint32_t ifindex;
    uint16_t gro_segment; /* 0: not coalesced */
    uint8_t ecn;
    bool has_ts;
    bool has_ovfl;
    int64_t rx_ns;
    uint32_t ovfl; /* SO_RXQ_OVFL running counter */
};

/* A received message not yet (fully) handed to the caller: GRO buffers can
 * hold more datagrams than the caller asked for. */
struct volley__rxpend {
    uint8_t *data;
    uint32_t len; /* bytes in the buffer */
    uint32_t off; /* next unread byte */
    bool trunc;
    struct volley_addr peer;
    struct volley__rxmeta meta;
};

/* What one outgoing message carries, to account for it once sent. */
struct volley__txinfo {
    unsigned first;  /* index of its first descriptor in the call */
    unsigned ndesc;  /* descriptors it completes (0 for a non-final piece) */
    unsigned ndgram; /* datagrams on the wire */
    size_t bytes;
    bool gso; /* carries UDP_SEGMENT */
};

/* Token bucket (see pacer.c). */
struct volley__pacer {
    uint64_t rate_bps; /* 0: off */
    uint32_t burst;    /* bytes */
    int64_t tokens;    /* bytes; negative after a datagram above the burst */
    uint64_t frac;     /* part of a byte earned, in bit-nanoseconds */
    int64_t last_ns;   /* clock of the last refill */
};

/* Where receive slot i + 1 starts after slot i: slot_size rounded up to a
 * cache line, so that in a slab from volley__slab_alloc every slot starts
 * on one (see volley__pages). */
static inline size_t volley__slot_stride(size_t slot_size)
{
    return (slot_size + 63) & ~(size_t)63;
}

/* n slots of stride bytes, page-aligned; NULL when out of memory or too
 * big. free() releases it. */
static inline uint8_t *volley__slab_alloc(size_t n, size_t stride)
{
    if (stride && n > SIZE_MAX / stride)
        return NULL;
    return volley__pages(n * stride);
}

struct volley_sock {
    const struct volley_backend *be;
    int fd;
    int poll_fd; /* what volley_fd returns instead of fd when >= 0 */
    int family;  /* AF_INET, AF_INET6, AF_UNIX */
    bool connected;
    bool fd_blocks;    /* the fd is blocking (volley_open): every call but
                          volley_recv_wait's passes MSG_DONTWAIT */
    int rcvtimeo_ms;   /* SO_RCVTIMEO as last set (-2: none, the default) */
    unsigned features; /* VOLLEY_F_* actually on */
    unsigned gso_segs; /* GSO segment limit, 0 when GSO is off */
    size_t tx_max;     /* bytes one datagram may carry (the uring arena's size) */
    struct volley_opts opts;
    struct volley_stats st;
    struct volley_addr bound; /* local address, for the port of rx local */
    struct volley__pacer pacer;
    uint64_t pace_want; /* wire bytes of the datagram the pacer refused */
    bool kernel_paced;  /* SO_MAX_PACING_RATE set by volley */

    /* SO_RXQ_OVFL: the kernel's counter is cumulative and 32-bit; this is
     * its value when volley last looked (at open or wrap at first) */
    uint32_t ovfl_last;

    /* receive: rx_batch slots of slot_size bytes */
    uint8_t *rx_slab;
    size_t slot_size;
    unsigned rx_batch;
    struct mmsghdr *rx_msgs;
    struct iovec *rx_iov;
    struct sockaddr_in6 *rx_names;
    uint8_t *rx_ctrl; /* rx_batch * VOLLEY__RX_CTRL */
    struct volley__rxpend *pend;
    unsigned pend_n, pend_i;
    unsigned rx_dirty; /* receive headers [0, rx_dirty) need a reset */

    /* send: one message per datagram at most */
    struct mmsghdr *tx_msgs;
    struct iovec *tx_iov;
    struct sockaddr_in6 *tx_names;
    uint8_t *tx_ctrl;               /* VOLLEY_BATCH_MAX * VOLLEY__TX_CTRL */
    struct volley__txinfo *tx_info; /* what each built message carries */

    /* asynchronous error reports for volley_errors() */
    struct volley_sockerr errs[VOLLEY__SOCKERR_RING];
    unsigned err_head, err_count;

    void *priv; /* backend-private state (pair, uring) */

    /* on a stream loop (opts.loop): what the loop knows of it
     * (guest.host is NULL on none) */
    struct volley__guest guest;
};

/* Its backend left (volley__backend_gone). */
static inline bool volley__sock_gone(const volley_sock *s)
{
    return s->be->caps & VOLLEY__BE_GONE;
}

/* A socket whose loop closed under it (it shared the loop's ring): every
 * call but close gives -EPIPE. */
extern const struct volley_backend volley__backend_gone VOLLEY_INTERNAL;

/* ---- hosted.c: on a stream loop (volley_opts.loop; base.h's hosting) ----
 * attach takes an entry in the loop before the backend is chosen (and, for
 * AUTO on a uring loop, asks for uring); start has the loop watch the
 * socket once it is set up; detach lets go of the entry (none: nothing).
 * blocked, pump and reap pass on to the loop (base.h says what they do). */
VOLLEY_INTERNAL int volley__hosted_attach(volley_sock *s);
VOLLEY_INTERNAL int volley__hosted_start(volley_sock *s);
VOLLEY_INTERNAL void volley__hosted_detach(volley_sock *s);
VOLLEY_INTERNAL void volley__hosted_blocked(volley_sock *s);
VOLLEY_INTERNAL int volley__hosted_pump(volley_sock *s, int timeout_ms);
VOLLEY_INTERNAL void volley__hosted_reap(volley_sock *s);

/* A zeroed socket with fd -1, the given options and backend; no slabs.
 * NULL when out of memory. volley_close frees it. */
VOLLEY_INTERNAL volley_sock *volley__setup_alloc(const struct volley_opts *o,
                                                 const struct volley_backend *be);
/* Apply opts.pace_* to a new socket (after family and fd are set). */
VOLLEY_INTERNAL int volley__sock_pace_init(volley_sock *s);
/* Record an error of kind err (negative) in the per-kind counters. */
VOLLEY_INTERNAL void volley__err_count(volley_sock *s, int err);
/* Queue an asynchronous error report (drops the oldest when full). */
VOLLEY_INTERNAL void volley__err_push(volley_sock *s, const struct volley_sockerr *e);
/* Drain MSG_ERRQUEUE into the report queue. Returns reports read. */
VOLLEY_INTERNAL int volley__err_drain_queue(volley_sock *s);
/* True for errors that belong to an earlier datagram (ICMP feedback). */
VOLLEY_INTERNAL bool volley__err_is_async(int err);
/* Handle an asynchronous error seen by a syscall: count, queue, drain. */
VOLLEY_INTERNAL void volley__err_async(volley_sock *s, int err);
/* Retry policy for one outgoing message that failed with err: EINTR and
 * errors left over from earlier datagrams (ICMP feedback) are retried a
 * few times; anything else belongs to this message. */
struct volley__retry {
    unsigned tries;
    int maybe_async; /* seen once; async only if the retry then succeeds */
};
VOLLEY_INTERNAL bool volley__err_send_retry(volley_sock *s, struct volley__retry *rt,
                                            int err);
/* The message went out: settle what volley__err_send_retry left undecided. */
VOLLEY_INTERNAL void volley__err_send_ok(volley_sock *s, struct volley__retry *rt);
/* Same for receive: true to call again (at most a few times per call). */
VOLLEY_INTERNAL bool volley__err_recv_retry(volley_sock *s, unsigned *tries, int err);
/* A batch receive that brought nothing (r <= 0, after the retries): what
 * the receive call returns, counted: 0 for nothing waiting (EAGAIN, or an
 * error that was reported for volley_errors), else the error. */
VOLLEY_INTERNAL int volley__err_recv_none(volley_sock *s, int r);
/* Check one send descriptor: 0, or the negative errno volley_send
 * returns for it. */
VOLLEY_INTERNAL int volley__sock_check_one(const volley_sock *s,
                                           const struct volley_dgram *d);
/* The longest payload a descriptor may carry to peer on s: tx_max, and
 * for UDP the ceiling of the peer's family (never below IPv4's); longer
 * is -EMSGSIZE. */
VOLLEY_INTERNAL size_t volley__sock_max_len(const volley_sock *s,
                                            const struct volley_addr *peer);
/* Fill the msghdr for descriptor d (name, iov, control). gso_seg > 0 adds
 * UDP_SEGMENT; iovs/niov describe the payload. */
VOLLEY_INTERNAL void volley__msg_fill_tx(volley_sock *s, unsigned slot, struct msghdr *m,
                                         const struct volley_dgram *d, struct iovec *iov,
                                         size_t niov, uint16_t gso_seg);
/* Prepare receive slot i's msghdr for a fresh receive. */
VOLLEY_INTERNAL void volley__msg_reset_rx(volley_sock *s, unsigned i);
/* Turn received message i (len bytes, kernel flags) into a pending entry. */
VOLLEY_INTERNAL void volley__msg_stage_rx(volley_sock *s, unsigned i, size_t len,
                                          int mflags);
/* The same from explicit parts (len bytes are at data; trunc: cut). */
VOLLEY_INTERNAL void volley__msg_stage(volley_sock *s, uint8_t *data, size_t len,
                                       bool trunc, const void *name, socklen_t namelen,
                                       const void *ctrl, size_t ctrllen);
/* The recvmsg/recvmmsg slab: rx_batch slots with their headers (the
 * scalar and mmsg backends' init). 0 or -ENOMEM. */
VOLLEY_INTERNAL int volley__msg_alloc_rx(volley_sock *s);
/* The kernel's drop counter for the socket now (SO_MEMINFO, the counter
 * SO_RXQ_OVFL reports); false when it cannot be read. */
VOLLEY_INTERNAL bool volley__msg_meminfo_drops(const volley_sock *s, uint32_t *drops);
/* Make the next blocking receive on s->fd wait at most timeout_ms (-1: no
 * limit, VOLLEY__RCVTIMEO_FOREVER_S in fact, so that a signal always ends
 * it), setting SO_RCVTIMEO only when it changes: 0, -EAGAIN when the fd
 * cannot block (wrapped fds stay non-blocking; timeout 0), or an error. */
/* 24 days: below what a 32-bit kernel's timeout holds at HZ 1000
 * (LONG_MAX / HZ seconds), above which it would count as none. */
#define VOLLEY__RCVTIMEO_FOREVER_S 2073600
VOLLEY_INTERNAL int volley__msg_block_for(volley_sock *s, int timeout_ms);
/* Hand pending datagrams to the caller; returns how many. */
VOLLEY_INTERNAL unsigned volley__msg_deliver(volley_sock *s, struct volley_dgram *d,
                                             unsigned n);
/* True when staged datagrams are waiting to be delivered. */
VOLLEY_INTERNAL bool volley__msg_pending(const volley_sock *s);

/* ---- txbuild.c: descriptors to messages in s->tx_msgs/tx_info ---- */
struct volley__txbuild {
    unsigned nmsg, niov;
    unsigned next;      /* first descriptor not yet built */
    unsigned plain_end; /* descriptors below it are built without GSO */
    bool suspect;       /* a GSO message was refused: being resent plain */
    int err;            /* d[bad] failed volley__sock_check_one: nothing from */
    unsigned bad;       /* it on is built */
};
/* Build messages for d[b->next .. n) until the message or iovec arrays
 * are full or a descriptor fails its check; b->nmsg/niov must be 0.
 * Advances b->next. One walk: each run is planned (volley__gso_run), its
 * first descriptor checked and its message built before the next. The
 * check is volley__sock_check_one's, made once per message: a datagram
 * joining a GSO run shares its first datagram's path and a length no
 * larger, so its own check reduces to having data; a first datagram with
 * the path of one checked before in the build needs its length and data
 * checked alone, and shares that one's name and control. */
VOLLEY_INTERNAL void volley__tx_build(volley_sock *s, const struct volley_dgram *d,
                                      unsigned n, struct volley__txbuild *b);
/* Descriptors of d[0..n) are left to build. */
static inline bool volley__tx_more(const struct volley__txbuild *b, unsigned n)
{
    return b->next < (b->err ? b->bad : n);
}
/* Every message built went out, done descriptors with them: what the send
 * call returns (the check's error when the first descriptor failed it). */
static inline int volley__tx_result(const struct volley__txbuild *b, unsigned done)
{
    return done || !b->err ? (int)done : b->err;
}
/* Message j was refused with err. When it carried UDP_SEGMENT and began its
 * descriptor, its datagrams are rebuilt unsegmented (b->next moves back)
 * and true is returned: whether they then go out tells a GSO problem from
 * the datagram's own error. */
VOLLEY_INTERNAL bool volley__tx_gso_refused(volley_sock *s, struct volley__txbuild *b,
                                            unsigned j, int err);
/* The first message after such a refusal was sent, or failed for good
 * (sent false): only a send proves GSO guilty, and turns it off for good. */
VOLLEY_INTERNAL void volley__tx_gso_verdict(volley_sock *s, struct volley__txbuild *b,
                                            bool sent);
/* Messages [from, to) went out: count them and the descriptors done. */
VOLLEY_INTERNAL void volley__tx_account(volley_sock *s, unsigned from, unsigned to,
                                        unsigned *done);
/* Sending stopped at message off of nmsg: if that cut a descriptor's
 * pieces in two, the descriptor is done and the rest count as failed. */
VOLLEY_INTERNAL void volley__tx_settle_partial(volley_sock *s, unsigned off,
                                               unsigned nmsg, unsigned *done, int err);
/* Sending stopped at message off of nmsg with err, done descriptors taken
 * so far: what the send call returns. EAGAIN counts as would-block and
 * returns the count; another error is returned when nothing was taken. */
VOLLEY_INTERNAL int volley__tx_stopped(volley_sock *s, unsigned off, unsigned nmsg,
                                       unsigned done, int err);
/* How a batching backend puts built messages on the wire. */
struct volley__tx_calls {
    unsigned per_call; /* messages one call takes at most */
    /* the messages s->tx_msgs[0 .. nmsg) were built (NULL: nothing to do) */
    void (*built)(volley_sock *s, unsigned nmsg);
    /* send messages [off, off + cnt): how many were taken (more is read as
     * cnt), 0, or a negative errno */
    int (*send)(volley_sock *s, unsigned off, unsigned cnt);
};
/* volley_send's work on a backend that sends many messages per call (mmsg,
 * xnu): build, send, retry, the GSO fallback and the accounting. */
VOLLEY_INTERNAL int volley__tx_send(volley_sock *s, const struct volley_dgram *d,
                                    unsigned n, const struct volley__tx_calls *c);

/* Start or change pacing at now_ns (burst 0: the default). */
VOLLEY_INTERNAL void volley__pacer_set(struct volley__pacer *p, uint64_t rate_bps,
                                       uint32_t burst, int64_t now_ns);
VOLLEY_INTERNAL uint32_t volley__pacer_default_burst(uint64_t rate_bps);
/* Add what the rate earned since the last refill, up to the burst. */
VOLLEY_INTERNAL void volley__pacer_refill(struct volley__pacer *p, int64_t now_ns);
/* Take cost bytes if the budget allows now (always when off). */
VOLLEY_INTERNAL bool volley__pacer_admit(struct volley__pacer *p, uint64_t cost);
/* Give back what was admitted but not sent. */
VOLLEY_INTERNAL void volley__pacer_refund(struct volley__pacer *p, uint64_t cost);
/* Nanoseconds from now_ns until cost bytes would be admitted (0: now). */
VOLLEY_INTERNAL int64_t volley__pacer_delay(const struct volley__pacer *p, uint64_t cost,
                                            int64_t now_ns);
/* Bytes descriptor d occupies on the wire for pacing (see volley.h). */
VOLLEY_INTERNAL uint64_t volley__pacer_wire_bytes(int fam, const struct volley_dgram *d);

/* ---- probe.c ---- */
/* The kernel's GSO segment limit (128 or 64; 0 when it refuses GSO), found
 * by sending a segmented datagram over loopback. Only the kernel's verdict
 * is kept for the process: a probe that could not run (no free fd, no
 * memory) returns its negative errno and is tried again next time. */
VOLLEY_INTERNAL int volley__probe_gso(void);
/* The same, 0 when GSO cannot be used now. */
VOLLEY_INTERNAL unsigned volley__probe_gso_limit(void);
/* Two UDP sockets for a self-test over IPv4 loopback, of SOCK_DGRAM with
 * tx_flags and rx_flags (SOCK_NONBLOCK, SOCK_CLOEXEC where there are
 * such): *rx bound to 127.0.0.1 on a port of the kernel's choice, that
 * address in *to. Returns 0 or a negative errno; either way the caller
 * closes both (a negative errno in place of one not made). */
VOLLEY_INTERNAL int volley__probe_loopback(int tx_flags, int rx_flags, int *tx, int *rx,
                                           struct sockaddr_in *to);

/* ---- cmsg.c (pure) ---- */
/* Build send control messages for d on a socket of family fam. Returns the
 * bytes used (0..cap) or -ENOSPC. */
VOLLEY_INTERNAL int volley__cmsg_build(uint8_t *buf, size_t cap, int fam,
                                       const struct volley_dgram *d, uint16_t gso_seg);
/* Parse receive control messages; unknown ones are skipped, malformed ones
 * make it return -EINVAL (what was parsed before stays in *out). */
VOLLEY_INTERNAL int volley__cmsg_parse(const void *ctrl, size_t len,
                                       struct volley__rxmeta *out);
/* Parse an MSG_ERRQUEUE message's control data into *out: 0, or -ENOENT
 * when no IP/IPv6 RECVERR record is present, -EINVAL when malformed. */
VOLLEY_INTERNAL int volley__cmsg_parse_err(const void *ctrl, size_t len,
                                           struct volley_sockerr *out);

/* ---- gso.c (pure) ---- */
/* A run: descriptors [first, first+count) sent as one message. seg > 0:
 * one UDP_SEGMENT message of that segment size. bytes: their payloads'
 * sum; contig: the payloads lie back to back from the first's data, so one
 * iovec carries them all. */
struct volley__run {
    unsigned first;
    unsigned count;
    uint16_t seg;
    bool contig;
    size_t bytes;
};
/* The run that begins at d[0] of d[0..n) (n >= 1): runs of same
 * peer/local/ifindex/ecn and same length (the last may be shorter),
 * at most max_segs datagrams and max_bytes(peer) per run. max_segs 0 or 1:
 * no coalescing. Explicit GSO descriptors (segment > 0) and ones without
 * data are runs of their own; only a run's first descriptor needs
 * volley__sock_check_one (a datagram joins with the first's path, data
 * and a length no larger). run->first is 0. */
VOLLEY_INTERNAL void volley__gso_run(const struct volley_dgram *d, unsigned n,
                                     unsigned max_segs, struct volley__run *run);
/* Plan messages for d[0..n): volley__gso_run from each run's end in turn.
 * Returns runs written (<= n). */
VOLLEY_INTERNAL unsigned volley__gso_plan(const struct volley_dgram *d, unsigned n,
                                          unsigned max_segs, struct volley__run *runs);
/* A descriptor's path: peer, local, ifindex, segment, ecn and flags lie
 * together in the 64 bytes from peer on. Descriptors copied from one
 * template, the usual case, compare equal in four 16-byte loads and xors,
 * all inline: what the planner and the send checks cost per datagram is
 * mostly this comparison. */
enum {
    VOLLEY__PATH_FROM = offsetof(struct volley_dgram, peer),
    VOLLEY__PATH_LEN = 64,
};
_Static_assert(offsetof(struct volley_dgram, flags) + 1 - VOLLEY__PATH_FROM ==
                   VOLLEY__PATH_LEN,
               "peer .. flags are 64 bytes without padding");
#if defined(__GNUC__) || defined(__clang__)
typedef uint64_t volley__path_word __attribute__((vector_size(16)));
#define VOLLEY__PATH_WORD_ZERO(w) (((w)[0] | (w)[1]) == 0)
#else
typedef uint64_t volley__path_word;
#define VOLLEY__PATH_WORD_ZERO(w) ((w) == 0)
#endif
#define VOLLEY__PATH_WORDS (VOLLEY__PATH_LEN / sizeof(volley__path_word))
struct volley__path {
    volley__path_word w[VOLLEY__PATH_WORDS];
};
static inline void volley__path_load(struct volley__path *p, const struct volley_dgram *d)
{
    memcpy(p->w, (const char *)d + VOLLEY__PATH_FROM, VOLLEY__PATH_LEN);
}
/* The same 64 bytes: the same path (a false answer proves nothing). */
static inline bool volley__path_same(const struct volley__path *p,
                                     const struct volley_dgram *d)
{
    const char *b = (const char *)d + VOLLEY__PATH_FROM;
    volley__path_word diff = {0}, x;
    for (size_t i = 0; i < VOLLEY__PATH_WORDS; i++) {
        memcpy(&x, b + i * sizeof x, sizeof x);
        diff |= p->w[i] ^ x;
    }
    return VOLLEY__PATH_WORD_ZERO(diff);
}
/* The length of the datagram at offset off < len in a buffer of len bytes
 * cut at seg (0: one datagram): a GRO buffer being split, or a GSO buffer
 * being cut by hand. */
static inline uint32_t volley__gso_seg_next(uint32_t len, uint16_t seg, uint32_t off)
{
    if (off >= len)
        return 0;
    uint32_t left = len - off;
    return seg && left > seg ? seg : left;
}
/* Datagrams in a GSO/GRO buffer of len bytes cut at seg (seg > 0). */
static inline unsigned volley__gso_count(size_t len, uint16_t seg)
{
    if (seg == 0)
        return len ? 1 : 0;
    return (unsigned)((len + seg - 1) / seg);
}
/* Payload ceiling of one (super-)datagram to peer p on a socket of fam. */
VOLLEY_INTERNAL size_t volley__gso_max_payload(int fam, const struct volley_addr *p);

#endif /* VOLLEY_DGRAM_H */
