/* SPDX-License-Identifier: MIT */
/*
 * volley: batched, offloaded datagram I/O for Linux.
 *
 * One API over several backends chosen at run time:
 *   scalar  sendmsg/recvmsg, one datagram per system call (portable POSIX)
 *   mmsg    sendmmsg/recvmmsg, many datagrams per call, with UDP GSO/GRO
 *   uring   io_uring: multishot receive into a provided-buffer ring; sends
 *           with sendmmsg, or through the ring when zero-copy is asked for;
 *           with UDP GSO/GRO
 *   pair    an in-memory socket pair with seeded impairments, for tests
 *
 * Conventions (every function):
 *   - Errors are negative errno values. errno is never the channel.
 *   - volley_send/volley_recv never block. They return how many datagrams
 *     were done, 0 when the socket would block, and a negative errno only
 *     when none was done. EINTR is retried inside.
 *   - A volley_sock is used by one thread at a time.
 *
 * Ownership: datagrams handed to volley_send are read during the call only;
 * the caller's buffers are free again when it returns. Datagrams returned by
 * volley_recv point into memory owned by the socket and stay valid until the
 * next volley_recv or volley_close on that socket; copy what must outlive it.
 */
#ifndef VOLLEY_H
#define VOLLEY_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(VOLLEY_BUILDING)
#define VOLLEY_API __attribute__((visibility("default")))
#else
#define VOLLEY_API
#endif

/* The version this header belongs to. A program compiled against it can
 * compare these with what volley_version() and volley_version_number()
 * say of the library it runs with. */
#define VOLLEY_VERSION_MAJOR 0
#define VOLLEY_VERSION_MINOR 1
#define VOLLEY_VERSION_PATCH 0
/* One number that orders versions: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define VOLLEY_VERSION_NUMBER                                                            \
    (VOLLEY_VERSION_MAJOR * 10000 + VOLLEY_VERSION_MINOR * 100 + VOLLEY_VERSION_PATCH)
#define VOLLEY_VERSION_STR_(x) #x
#define VOLLEY_VERSION_STR(x)  VOLLEY_VERSION_STR_(x)
/* "MAJOR.MINOR.PATCH", as a string literal. */
#define VOLLEY_VERSION_STRING                                                            \
    VOLLEY_VERSION_STR(VOLLEY_VERSION_MAJOR)                                             \
    "." VOLLEY_VERSION_STR(VOLLEY_VERSION_MINOR) "." VOLLEY_VERSION_STR(                 \
        VOLLEY_VERSION_PATCH)

/* Most datagrams one volley_send/volley_recv call accepts (n above: -EINVAL). */
#define VOLLEY_BATCH_MAX 1024
/* Largest UDP payload: IPv4 (65535 - 20 - 8) and IPv6 (65535 - 8 - 40 header
 * bytes are not counted by IPv6's payload length, but UDP's 16-bit length is). */
#define VOLLEY_UDP4_MAX 65507
#define VOLLEY_UDP6_MAX 65527
/* Most segments one explicit GSO descriptor may carry (see volley_dgram).
 * This is volley's limit, the same whether GSO is on or off; the kernel's
 * own per-message limit is volley_gso_max_segments(). */
#define VOLLEY_GSO_SEGMENTS_MAX 128

/*
 * An IP address and port, or none (family AF_UNSPEC). It is the sockaddr the
 * kernel uses, so it can be passed to any socket call as &a.sa. Ports are in
 * network byte order inside, as in sockaddr_in; use the helpers below.
 * Datagrams on AF_UNIX sockets carry no address (AF_UNSPEC): such sockets
 * must be connected (a socketpair is).
 */
struct volley_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
    };
};

/* Flags in volley_dgram.flags (receive side). */
#define VOLLEY_DGRAM_TRUNC  0x01u /* the datagram was longer than len: cut */
#define VOLLEY_DGRAM_TSTAMP 0x02u /* rx_ns holds a kernel receive timestamp */
#define VOLLEY_DGRAM_GRO    0x04u /* split from a GRO-coalesced buffer */

/*
 * One datagram. Callers keep arrays of these; they are plain data.
 *
 * Send: data/len is the payload; peer the destination (AF_UNSPEC on a
 * connected socket); local the source address to use (AF_UNSPEC: the kernel
 * chooses; only the IP is used, not the port; of the family the datagram
 * leaves by: on an IPv6 socket an IPv4 local goes with an IPv4 or
 * v4-mapped peer and an IPv6 local with an IPv6 peer, as on an IPv4 socket
 * an IPv6 one is refused, -EAFNOSUPPORT); ifindex the outgoing interface
 * (0: any); ecn the ECN codepoint (0..3). segment > 0 makes this descriptor a
 * GSO buffer: len bytes cut into segment-sized datagrams (the last may be
 * shorter), at most VOLLEY_GSO_SEGMENTS_MAX of them, segment <= len, and len
 * within the UDP maximum for the peer. The same buffers are accepted
 * whether GSO is on, off or turned off after a refusal: volley sends them
 * in as many messages as the kernel's limit needs (one per datagram without
 * GSO). It counts as one descriptor in the return value.
 *
 * Receive: everything is filled in. local/ifindex need the pktinfo feature,
 * ecn the ecn feature, rx_ns the timestamp feature (and VOLLEY_DGRAM_TSTAMP).
 * segment is 0 (one datagram) unless the GRO_SEGMENTS feature is on: then
 * a coalesced buffer comes as one descriptor cut at segment, as on send.
 * IPv4-mapped IPv6 addresses are returned as plain AF_INET.
 */
struct volley_dgram {
    void *data;
    size_t len;
    struct volley_addr peer;
    struct volley_addr local;
    uint32_t ifindex;
    uint16_t segment;
    uint8_t ecn;
    uint8_t flags;
    int64_t rx_ns; /* CLOCK_REALTIME nanoseconds */
};

/* Backends. */
enum volley_backend_id {
    VOLLEY_BACKEND_AUTO = 0,
    VOLLEY_BACKEND_SCALAR = 1,
    VOLLEY_BACKEND_MMSG = 2,
    VOLLEY_BACKEND_PAIR = 3,
    VOLLEY_BACKEND_URING = 4,
    VOLLEY_BACKEND_EPOLL = 5, /* stream loops only (volley_loop_open) */
    VOLLEY_BACKEND_XNU = 6,   /* macOS: sendmsg_x/recvmsg_x batches (see volley(7)) */
};

/*
 * Features. On by default: GSO, GRO, PKTINFO, ECN, RXQ_OVFL (each can be
 * turned off with volley_opts.disable or the VOLLEY_DISABLE environment
 * variable). Off by default: TIMESTAMP, RECVERR, GRO_SEGMENTS (turn on with
 * volley_opts.enable). A feature the kernel refuses is simply off: see
 * volley_features() and `volley probe`.
 *
 * GRO_SEGMENTS hands GRO-coalesced buffers to the caller whole instead of
 * one descriptor per datagram: such a descriptor has segment set to the
 * stride (the size of every datagram in it but the last, which may be
 * shorter), len to the whole buffer and VOLLEY_DGRAM_GRO in flags, exactly
 * the form volley_send takes for a GSO buffer, so a relay can send it on
 * unchanged. It is for callers that walk the strides themselves (QUIC
 * stacks): no per-datagram work at all. A descriptor with segment 0 is one
 * datagram, as always. Stats still count datagrams. Needs GRO (off with it).
 */
#define VOLLEY_F_GSO          0x01u  /* UDP_SEGMENT send offload (mmsg, uring) */
#define VOLLEY_F_GRO          0x02u  /* UDP_GRO receive offload (mmsg, uring) */
#define VOLLEY_F_PKTINFO      0x04u  /* local address/ifindex on receive */
#define VOLLEY_F_ECN          0x08u  /* ECN codepoint on receive */
#define VOLLEY_F_TIMESTAMP    0x10u  /* SO_TIMESTAMPNS receive timestamps */
#define VOLLEY_F_RXQ_OVFL     0x20u  /* SO_RXQ_OVFL kernel drop counter */
#define VOLLEY_F_RECVERR      0x40u  /* IP_RECVERR ICMP error reports */
#define VOLLEY_F_GRO_SEGMENTS 0x80u  /* GRO buffers returned whole (see above) */
#define VOLLEY_F_DONTFRAG     0x100u /* never fragment: path MTU is the caller's */
#define VOLLEY_F_DEFAULT                                                                 \
    (VOLLEY_F_GSO | VOLLEY_F_GRO | VOLLEY_F_PKTINFO | VOLLEY_F_ECN | VOLLEY_F_RXQ_OVFL | \
     VOLLEY_F_DONTFRAG)

/*
 * DONTFRAG sets the don't-fragment bit on every datagram and leaves path
 * MTU discovery to the caller (IP_MTU_DISCOVER and IPV6_MTU_DISCOVER set
 * to PMTUDISC_PROBE, as quinn-udp sets them): a datagram larger than the
 * interface's MTU fails with -EMSGSIZE instead of leaving in fragments,
 * and one larger than a smaller MTU further on is dropped there, reported
 * by ICMP ("fragmentation needed", or "packet too big": a volley_sockerr
 * with -EMSGSIZE and the MTU in info, with VOLLEY_F_RECVERR) and by
 * volley_path_mtu. On by default because what volley is for wants it:
 * QUIC requires it (RFC 9000, 14) and does its own discovery (DPLPMTUD),
 * and a lost fragment loses the whole datagram, so a fragmented stream
 * loses more than its packets do. Callers whose datagrams must get
 * through at any size (DNS answers, say) turn it off, and the kernel's
 * own rule (fragment what exceeds the path MTU) is back.
 */

/*
 * Why 32 receive slots by default: each slot takes a whole GRO buffer
 * (up to 64 KiB), so 32 slots are 2 MiB, a working set that stays in the
 * caches at full speed; 256 slots (16 MiB) received up to 1.4x fewer
 * datagrams per second with GRO in `volley bench` and `volley recv`, and
 * no more without GRO. The uring ring gets 2 * rx_batch buffers, for the
 * same reason. A caller expecting bursts of many small datagrams without
 * GRO may pick more.
 *
 * Options. Set size = sizeof(struct volley_opts) (VOLLEY_OPTS_INIT does);
 * zero in any other field means its default, so new fields can be added at
 * the end without breaking callers built against an older header. Every
 * field is checked at open against the range written beside it (ppm
 * fields at most 1000000, pace_rate_bps at most 10 Tbit/s, rcvbuf and
 * sndbuf not negative): anything outside is -EINVAL, whatever the backend.
 *
 * Environment (read at open, applies to every socket):
 *   VOLLEY_BACKEND=auto|scalar|mmsg|uring|xnu   backend when opts->backend
 *                                is AUTO (volley_pair ignores it)
 *   VOLLEY_DISABLE=gso,gro,...   features to turn off: gso, gro, pktinfo,
 *                                ecn, timestamp, rxq_ovfl, recverr,
 *                                gro_segments, and the
 *                                backends mmsg, uring and xnu
 */
struct volley_opts {
    uint32_t size;
    uint32_t backend;      /* enum volley_backend_id */
    uint32_t enable;       /* VOLLEY_F_* to add to the defaults */
    uint32_t disable;      /* VOLLEY_F_* to turn off */
    uint32_t rx_batch;     /* receive slots: messages per syscall, at most
                              VOLLEY_BATCH_MAX (32: see below) */
    uint32_t rx_slot_size; /* bytes per receive slot, at most 65536 (65535);
                              smaller truncates, and leaves GRO off */
    int32_t rcvbuf;        /* receive buffer bytes (SO_RCVBUFFORCE when allowed,
                              else SO_RCVBUF capped by rmem_max); 0 = default */
    int32_t sndbuf;        /* send buffer bytes, likewise; 0 = default */
    /* volley_pair only: */
    uint32_t pair_capacity;    /* datagrams queued per direction, at most 65536
                                  (256) */
    uint32_t pair_drop_ppm;    /* per-million chance a datagram is dropped */
    uint32_t pair_dup_ppm;     /* ... duplicated */
    uint32_t pair_reorder_ppm; /* ... held back behind the next one */
    uint32_t pair_delay_us;    /* delivery delay */
    uint32_t pair_reserved;    /* must be 0 */
    uint64_t pair_seed;        /* impairment PRNG seed (0 picks a fixed default) */
    /* uring only: */
    uint32_t zc_threshold;   /* send messages of at least this many bytes
                                zero-copy (SENDMSG_ZC); 0 = never. Ignored
                                where zero-copy cannot work: AF_UNIX sockets,
                                kernels before Linux 6.1 */
    uint32_t rx_ring_bufs;   /* provided receive buffers, at most 4096, rounded
                                up to a power of two, at least 2 (2 * rx_batch,
                                up to 4096) */
    uint32_t tx_arena;       /* bytes of send slots in flight, 65536 .. 2^30
                                (4 MiB); also the largest datagram the socket
                                sends (larger: -EMSGSIZE), which matters for
                                AF_UNIX only */
    uint32_t uring_reserved; /* must be 0 */
    /* pacing (see volley_set_pacing): */
    uint64_t pace_rate_bps; /* 0 = send as fast as the kernel takes */
    uint32_t pace_burst;    /* bytes, 0 = default */
    uint32_t pace_flags;    /* VOLLEY_PACE_* */
    /* On a stream loop (see "Datagram sockets on a loop" below): */
    struct volley_loop *loop; /* the loop whose events say when the socket is
                                 ready; NULL: none */
    void *loop_user;          /* ev.user of its DGRAM events (NULL: the
                                 volley_sock itself) */
};
#ifdef __cplusplus
/* C++ before C++20 has no designated initializers. */
static inline struct volley_opts volley_opts_init_cxx_(void)
{
    struct volley_opts o = {};
    o.size = sizeof o;
    return o;
}
#define VOLLEY_OPTS_INIT volley_opts_init_cxx_()
#else
#define VOLLEY_OPTS_INIT                                                                 \
    {                                                                                    \
        .size = sizeof(struct volley_opts)                                               \
    }
#endif

/* Per-socket counters, since open or wrap. Grown at the end only. System calls
 * count every call volley makes for the socket, waiting included: a wait
 * for receiving counts as rx, a wait for sending only as tx. */
struct volley_stats {
    uint64_t tx_syscalls;
    uint64_t tx_dgrams; /* datagrams the kernel took */
    uint64_t tx_bytes;
    uint64_t tx_wouldblock;   /* calls that stopped on EAGAIN */
    uint64_t tx_gso_sends;    /* messages carrying UDP_SEGMENT */
    uint64_t tx_gso_fallback; /* times GSO was refused and turned off */
    uint64_t tx_errors;       /* datagrams refused with an error */
    uint64_t rx_syscalls;
    uint64_t rx_dgrams;
    uint64_t rx_bytes;
    uint64_t rx_wouldblock;
    uint64_t rx_truncated;    /* datagrams flagged VOLLEY_DGRAM_TRUNC */
    uint64_t rx_kernel_drops; /* dropped by the kernel: receive buffer full. With
                                 GRO a dropped coalesced buffer counts once,
                                 however many datagrams it held */
    uint64_t rx_gro_buffers;  /* coalesced buffers split */
    uint64_t rx_errors;
    /* errors by kind, both directions */
    uint64_t err_connrefused; /* ECONNREFUSED */
    uint64_t err_unreach;     /* EHOSTUNREACH, ENETUNREACH */
    uint64_t err_msgsize;     /* EMSGSIZE */
    uint64_t err_nobufs;      /* ENOBUFS, ENOMEM */
    uint64_t err_perm;        /* EPERM, EACCES */
    uint64_t err_other;
    uint64_t sockerr_queued; /* reports queued for volley_errors() */
    uint64_t sockerr_lost;   /* reports lost because that queue was full */
    /* pair only, counted on the sending side */
    uint64_t pair_dropped;
    uint64_t pair_duplicated;
    uint64_t pair_reordered;
    uint64_t pair_queue_full; /* drops because the queue was full */
    /* uring only */
    uint64_t rx_ring_empty; /* the provided-buffer ring ran dry (ENOBUFS) */
    uint64_t rx_rearms;     /* multishot receives armed */
    uint64_t tx_zc_sends;   /* messages sent zero-copy */
    uint64_t tx_cancelled;  /* messages cancelled after an earlier one failed
                               while in flight (counted in tx_errors too) */
    uint64_t tx_paced;      /* send calls cut short by the pacer */
};

/* An asynchronous error report (ICMP, or a pending socket error). */
struct volley_sockerr {
    int error;      /* negative errno, e.g. -ECONNREFUSED */
    uint8_t origin; /* SO_EE_ORIGIN_* (0: a pending socket error, no details) */
    uint8_t type;   /* ICMP type and code */
    uint8_t code;
    uint8_t reserved;
    uint32_t info;               /* e.g. next-hop MTU for "fragmentation needed" */
    struct volley_addr offender; /* who sent the ICMP (AF_UNSPEC: unknown) */
    struct volley_addr dest;     /* destination of the failed datagram */
};

typedef struct volley_sock volley_sock;

/*
 * Open a UDP socket bound to `bind`: "127.0.0.1:0", "[::1]:4433",
 * "[::]:0" (dual-stack: IPv4 peers appear as AF_INET), "[fe80::1%2]:9".
 * Addresses are numeric; no name lookup. Every volley call on it is
 * non-blocking (MSG_DONTWAIT); the fd itself is blocking, so that
 * volley_recv_wait can sleep in the receive.
 * The backend: opts->backend, or with AUTO the VOLLEY_BACKEND environment
 * variable, or else mmsg where sendmmsg works and scalar otherwise. The
 * uring backend is used when asked for (it receives with no system call
 * per batch, but on this project's benchmark it did not beat mmsg's
 * throughput everywhere, so it is not the automatic choice).
 * Errors: -EINVAL (NULL or unparsable, an option out of its range, unknown
 * VOLLEY_BACKEND or VOLLEY_DISABLE name: see volley_env_check), -E2BIG
 * (opts->size larger than known with a non-zero tail), -ENOTSUP (forced
 * backend disabled, or not available here: for uring, a kernel without
 * io_uring, one that refuses it by policy, or one too old for what the
 * backend needs; for xnu, any system but macOS), -ENOMEM,
 * volley_set_pacing's errors when opts ask for pacing, and any errno from
 * socket()/bind() and, for uring, from setting up the ring (-EMFILE,
 * -ENFILE, -ENOMEM, ...).
 */
VOLLEY_API int volley_open(volley_sock **out, const char *bind,
                           const struct volley_opts *o);

/*
 * Adopt an existing SOCK_DGRAM fd (UDP or AF_UNIX). volley sets it
 * non-blocking and, on success, owns it: volley_close closes it. On failure
 * the fd is left open and remains the caller's (possibly now O_NONBLOCK).
 * Errors: -EINVAL, -E2BIG, -EBADF, -ENOTSOCK, -EPROTOTYPE (not SOCK_DGRAM),
 * -EAFNOSUPPORT (not IP or AF_UNIX), -ENOTSUP, -ENOMEM, getsockopt(2)'s and
 * fcntl(2)'s errors, and the backend setup and pacing errors as for
 * volley_open (-EMFILE, -ENFILE, ...).
 */
VOLLEY_API int volley_wrap(volley_sock **out, int fd, const struct volley_opts *o);

/*
 * Two connected in-memory sockets: what a sends, b receives and the other
 * way round, through bounded queues (a full queue drops and counts), with
 * optional seeded drop/duplicate/reorder/delay. Same API as real sockets;
 * volley_send on one end after the other was closed gives -EPIPE. A full
 * queue's drop is counted twice: pair_queue_full for the sender and
 * rx_kernel_drops for the receiver, like a kernel's receive buffer.
 * Errors: -EINVAL (NULL, a backend other than AUTO/PAIR, an option out of
 * its range, an unknown VOLLEY_DISABLE name), -E2BIG, -ENOTSUP (opts ask
 * for kernel pacing, VOLLEY_PACE_KERNEL, which a pair cannot do), -ENOMEM,
 * eventfd(2)'s (pipe(2)'s where there is no eventfd, as on macOS) and
 * pthread_mutex_init(3)'s errors.
 */
VOLLEY_API int volley_pair(volley_sock **a, volley_sock **b, const struct volley_opts *o);

/* Close the socket and free everything it holds. NULL is ignored. */
VOLLEY_API void volley_close(volley_sock *s);

/* Fix the peer (connect(2)); datagrams may then leave peer AF_UNSPEC.
 * Errors: -EINVAL, -EAFNOSUPPORT, -ENOTSUP (pair, AF_UNIX), -EPIPE (the
 * socket's uring loop closed first), connect(2)'s errors. */
VOLLEY_API int volley_connect(volley_sock *s, const char *peer);
VOLLEY_API int volley_connect_addr(volley_sock *s, const struct volley_addr *peer);

/*
 * Send up to n datagrams, in order. Returns how many were taken (GSO
 * descriptors count as one), 0 if the socket would block. 0 ("would
 * block") always means that waiting (volley_wait with VOLLEY_WAIT_SEND)
 * will help. A negative return is about d[0] only: it was not sent.
 * Errors the kernel reports later (ICMP) are counted in stats and queued
 * for volley_errors(); they never fail a send. When the kernel refuses a
 * segmented message (EIO, EINVAL) volley sends its datagrams again
 * unsegmented: if they go, GSO was the problem and is turned off for the
 * socket (tx_gso_fallback); if they fail too, that is the datagram's own
 * error and GSO stays on. (Two cases are not resent: a later piece of a
 * GSO buffer cut in several messages, whose first pieces are out, counts
 * as failed like any partly sent buffer; and a uring send that fails
 * after the call returned is reported as below.) On the uring backend a
 * send still running when the call returns (rare: sends are made not to
 * wait) counts as taken; if it fails later, the failure is counted in
 * tx_errors and queued for volley_errors() with its destination.
 * Errors: -EMSGSIZE (too big: over the UDP maximum for the peer, or for
 * AF_UNIX over what the socket can hold: 2^31 - 1 bytes, and on uring its
 * tx_arena), -EAFNOSUPPORT (peer or local family does not match),
 * -EDESTADDRREQ (no peer on an unconnected socket), -EINVAL (bad
 * arguments, n == 0 or above VOLLEY_BATCH_MAX, ecn > 3, a GSO buffer whose
 * segment is larger than len or that holds more than
 * VOLLEY_GSO_SEGMENTS_MAX segments), -ENOBUFS (retry later), -EPIPE (a
 * pair whose other end is closed; a socket whose uring loop closed first),
 * or the kernel's answer for that
 * datagram (-EHOSTUNREACH, -EPERM, ...).
 */
VOLLEY_API int volley_send(volley_sock *s, const struct volley_dgram *d, unsigned n);

/*
 * Receive up to n datagrams into d (only d[i] for i < return are written).
 * Returns the count, 0 if nothing is waiting. Payloads point into socket
 * memory, valid until the next volley_recv/volley_close. A datagram longer
 * than the receive slot is cut and flagged VOLLEY_DGRAM_TRUNC.
 * Errors: -EINVAL, -EPIPE (the socket's uring loop closed first), or the
 * kernel's when nothing was received. ICMP errors never fail a receive:
 * see volley_errors().
 */
VOLLEY_API int volley_recv(volley_sock *s, struct volley_dgram *d, unsigned n);

/*
 * volley_recv that sleeps: when nothing is waiting, wait up to timeout_ms
 * (-1: no limit, 0: not at all) for datagrams, then receive them. It is
 * the cheapest way to wait for the next datagram: one blocking receive on
 * a socket from volley_open (mmsg, scalar), one io_uring_enter on uring,
 * where volley_wait + volley_recv take two system calls or more. A socket
 * from volley_wrap (left non-blocking) and the pair wait as volley_wait
 * does. A changed timeout_ms costs one setsockopt(SO_RCVTIMEO) on mmsg and
 * scalar (-1 sets a limit of 24 days, so that the kernel never restarts
 * the receive after a signal); the same one again costs nothing. Returns
 * as volley_recv does; 0 when the time ran out, and possibly early (an
 * ICMP report, a completion that was not a datagram): callers loop. A
 * signal caught by a handler always ends the sleep with 0, on every
 * backend, whether the handler was installed with SA_RESTART (as
 * signal(3) does) or not, so a caller can check its stop flag. Send completions
 * and queued error reports are handled as by volley_recv.
 * Errors: -EINVAL (NULL, n == 0 or above VOLLEY_BATCH_MAX, timeout_ms
 * below -1), -EPIPE (the socket's uring loop closed first), and
 * volley_recv's and volley_wait's errors.
 */
VOLLEY_API int volley_recv_wait(volley_sock *s, struct volley_dgram *d, unsigned n,
                                int timeout_ms);

/* The file descriptor to watch for readability with poll/epoll: the socket
 * itself, or for the uring and pair backends an eventfd that becomes
 * readable when datagrams (or send completions) are waiting (for pair,
 * the read end of a pipe where there is no eventfd, as on macOS). Readiness is
 * a hint: volley_recv may still return 0. Datagrams volley already holds
 * (the rest of a GRO buffer the caller's array was too small for) do not
 * make it readable: call volley_recv until it returns 0 before waiting on
 * the fd. On the uring backend the kernel finishes receives in the thread
 * that last called volley_recv or volley_wait on the socket (at first, the
 * one that opened it), when that thread enters the kernel: wait on the fd
 * from that thread. Errors: -EINVAL (NULL), -EPIPE (the socket's uring
 * loop closed first: nothing to watch). */
VOLLEY_API int volley_fd(const volley_sock *s);

#define VOLLEY_WAIT_RECV 0x1u
#define VOLLEY_WAIT_SEND 0x2u
#define VOLLEY_WAIT_ERR  0x4u /* reports are waiting in volley_errors() */
/*
 * Wait until the socket can receive and/or send (events is a mask of
 * VOLLEY_WAIT_RECV/SEND; VOLLEY_WAIT_ERR only ever comes back) or
 * timeout_ms passes (-1: no limit). Returns the ready mask, with
 * VOLLEY_WAIT_ERR added when new reports wait in volley_errors(); 0 on
 * timeout, and possibly early (a signal, or a wake-up that turned out to be
 * for nothing): callers loop. Errors: -EINVAL (NULL, events 0 or unknown
 * bits), -EPIPE (the socket's uring loop closed first), poll(2)'s errors
 * (on uring, io_uring_enter(2)'s).
 */
VOLLEY_API int volley_wait(volley_sock *s, unsigned events, int timeout_ms);

/* The bound local address. Errors: -EINVAL, -ENOTSUP (pair), -EPIPE (the
 * socket's uring loop closed first), getsockname(2). */
VOLLEY_API int volley_local_addr(const volley_sock *s, struct volley_addr *out);

/*
 * The path MTU the kernel knows toward peer (NULL: the connected peer):
 * the largest IP packet, headers included, that leaves without
 * fragments: the route's MTU, lowered by any "fragmentation needed" or
 * "packet too big" heard since. The largest datagram that fits is this
 * less 28 bytes for IPv4, 48 for IPv6. With VOLLEY_F_DONTFRAG larger ones
 * fail (-EMSGSIZE) or are dropped on the way. Returns the MTU.
 * Errors: -EINVAL (NULL s, a peer of no address family), -ENOTSUP (not
 * an IP socket: pair, AF_UNIX), -EAFNOSUPPORT (an IPv6 peer for an IPv4
 * socket), -ENOTCONN (no peer and not connected), -EPIPE (the socket's
 * uring loop closed first), -ENETUNREACH and the other errors of
 * connect(2) for a peer there is no route to.
 */
VOLLEY_API int volley_path_mtu(const volley_sock *s, const struct volley_addr *peer);

/* Copy the counters; size is sizeof(*out) as the caller knows it (bytes
 * past what this library knows are left untouched). They stay readable on
 * a socket whose uring loop closed first: what it did until then.
 * Errors: -EINVAL. */
VOLLEY_API int volley_get_stats(const volley_sock *s, struct volley_stats *out,
                                size_t size);

/*
 * Pacing: send at most rate_bps bits per second, in bursts of at most
 * burst bytes, counting each datagram as it is on the wire: payload plus
 * UDP (8) and IP (20 for IPv4 and v4-mapped peers, 40 for IPv6) headers;
 * link-layer framing is not counted; AF_UNIX and pair datagrams count
 * their payload only. volley_send then takes only what the budget allows
 * now (the rest is "not taken", as for a full socket); a GSO run is never
 * larger than the burst, and a datagram larger than the burst goes when the
 * bucket is full. volley_wait(VOLLEY_WAIT_SEND) sleeps until the datagram
 * that was refused may go. rate_bps 0 turns pacing off. burst 0 picks four
 * milliseconds at the rate (room for a late wake-up), at least 3000 bytes.
 * A change takes effect on the next call; the budget earned so far is kept
 * (up to the new burst).
 *
 * VOLLEY_PACE_KERNEL leaves pacing to the kernel (SO_MAX_PACING_RATE; it
 * needs the fq qdisc on the outgoing device to be enforced, see `volley
 * probe`); volley then does not hold datagrams back itself.
 * Errors: -EINVAL (rate above 10 Tbit/s, unknown flags), -ENOTSUP (kernel
 * pacing on a socket that cannot do it), -EPIPE (the socket's uring loop
 * closed first), setsockopt(2)'s errors.
 */
#define VOLLEY_PACE_KERNEL 0x1u
VOLLEY_API int volley_set_pacing(volley_sock *s, uint64_t rate_bps, uint32_t burst,
                                 unsigned flags);

/* Nanoseconds until a datagram of len payload bytes to peer may go under
 * pacing: 0 = now. peer NULL: headers counted by the socket's family, as
 * volley_send does for a datagram without a peer. Errors: -EINVAL, -EPIPE
 * (the socket's uring loop closed first). */
VOLLEY_API int64_t volley_pacing_delay(const volley_sock *s, size_t len,
                                       const struct volley_addr *peer);

/* Pop up to n queued asynchronous error reports (oldest first). The queue
 * holds 32; older reports are dropped and counted in sockerr_lost.
 * Errors: -EINVAL (NULL, n == 0), -EPIPE (the socket's uring loop closed
 * first). */
VOLLEY_API int volley_errors(volley_sock *s, struct volley_sockerr *out, unsigned n);

/* The backend id for a name: "auto", "scalar", "mmsg", "uring", "pair",
 * "epoll" or "xnu" (the names volley_backend_name and volley_loop_backend return,
 * and VOLLEY_BACKEND takes but for "pair"). Errors: -EINVAL (NULL or unknown). */
VOLLEY_API int volley_backend_parse(const char *name);

/* "scalar", "mmsg", "uring", "xnu" or "pair" ("none" for NULL, "gone"
 * for a socket whose uring loop closed first). */
VOLLEY_API const char *volley_backend_name(const volley_sock *s);

/* VOLLEY_F_* mask of what is on for this socket after probing (0 once
 * its uring loop closed first). */
VOLLEY_API unsigned volley_features(const volley_sock *s);

/* GSO segment limit in use (0: GSO off, or the socket's uring loop
 * closed first). */
VOLLEY_API unsigned volley_gso_max_segments(const volley_sock *s);

/*
 * Check the environment variables volley_open reads (VOLLEY_BACKEND,
 * VOLLEY_DISABLE). Returns 0 when each is unset or valid; -EINVAL when one
 * is not, with a one-line message naming the variable, the bad value and
 * what is accepted written to msg (NUL-terminated, cut to fit; msg may be
 * NULL when size is 0). Errors: -EINVAL (also for msg NULL with size > 0).
 */
VOLLEY_API int volley_env_check(char *msg, size_t size);

/* The version of the library running now (which may be newer than the
 * header a program was compiled with): volley_version() as
 * "MAJOR.MINOR.PATCH" (a static string, never NULL), volley_version_number()
 * as VOLLEY_VERSION_NUMBER computes it. */
VOLLEY_API const char *volley_version(void);
VOLLEY_API unsigned volley_version_number(void);

/* Explain a negative errno (or a positive one). Never NULL. */
VOLLEY_API const char *volley_strerror(int err);

/* Address helpers. parse reads "ip:port" or "[ip6]:port" with a numeric port
 * 0..65535. format writes "1.2.3.4:5" or "[::1]:5" ("-" for AF_UNSPEC) and
 * returns the length (a buffer of 64 is always enough). equal, port and len
 * never fail (NULL gives 0).
 * Errors: volley_addr_parse: -EINVAL (NULL, or not one of those forms).
 * volley_addr_format: -EINVAL (NULL), -EAFNOSUPPORT (a family other than
 * AF_INET, AF_INET6 and AF_UNSPEC), -ENOSPC (buffer too small). */
VOLLEY_API int volley_addr_parse(struct volley_addr *out, const char *s);
VOLLEY_API int volley_addr_format(const struct volley_addr *a, char *buf, size_t size);
VOLLEY_API int volley_addr_equal(const struct volley_addr *a,
                                 const struct volley_addr *b);
VOLLEY_API uint16_t volley_addr_port(const struct volley_addr *a);
VOLLEY_API socklen_t volley_addr_len(const struct volley_addr *a);

/* What this kernel supports, found by trying each feature on loopback. */
struct volley_feature {
    int ok;          /* 1: works */
    int err;         /* negative errno from the attempt when !ok, else 0 */
    const char *why; /* static text: how it was checked, or why it is off */
};
struct volley_caps {
    struct volley_feature scalar, mmsg, gso, gro, pktinfo, ecn, timestamp, rxq_ovfl,
        recverr, ipv6;
    unsigned gso_max_segments;           /* 128 or 64 when gso.ok */
    struct volley_feature uring;         /* the uring backend: a round trip */
    struct volley_feature uring_zc;      /* IORING_OP_SENDMSG_ZC known */
    struct volley_feature kernel_pacing; /* SO_MAX_PACING_RATE accepted */
    /* a reuseport group takes a steering program (volley_group_open) */
    struct volley_feature reuseport_steer;
    /* macOS: sendmsg_x/recvmsg_x passed their loopback self-test (when
     * not, the xnu backend sends and receives with sendmsg/recvmsg) */
    struct volley_feature xnu;
};
/* Fill *out (size = sizeof as the caller knows it). Errors: -EINVAL (NULL,
 * size 0, or an invalid VOLLEY_BACKEND/VOLLEY_DISABLE: see volley_env_check;
 * nothing is probed then). */
VOLLEY_API int volley_probe(struct volley_caps *out, size_t size);

/*
 * Streams (TCP): a loop per thread.
 *
 * A volley_loop drives many listeners and connections from one thread: on
 * io_uring (one ring: multishot accept, multishot receive into a buffer
 * ring shared by every connection of the loop, one vectored send in flight
 * per connection) or on epoll (the fallback, and the baseline it is
 * measured against). volley_loop_poll does the I/O and hands back events;
 * reads and writes between two polls touch only memory: writes are queued
 * and go out, coalesced, at the next poll; reads take bytes that already
 * arrived. Nothing here blocks except volley_loop_poll (up to its timeout)
 * and volley_loop_close (up to its drain time).
 *
 * A loop, and every connection on it, is used only by the thread that
 * opened it (its io_uring accepts work from that thread alone).
 *
 * Lifetime: a volley_conn (connection or listener) made by volley_listen,
 * volley_dial or handed out by an ACCEPTED event stays valid until the
 * volley_loop_poll call after the one that returned its CLOSED event.
 * Every connection gets exactly one CLOSED event, whether the peer, an
 * error, a deadline, volley_conn_close or volley_conn_abort ended it; after
 * close or abort, other calls on it return -EPIPE. volley_loop_close frees
 * whatever is left.
 *
 * Buffers: received bytes sit in the loop's receive buffers (shared by all
 * connections: an idle connection holds none) until read or consumed; a
 * small receive is copied to the end of the connection's last buffer, so
 * every buffer a connection holds is full but its first and last. A
 * connection holding readq_max bytes stops receiving until the application
 * reads. Bytes given to volley_conn_write are copied; a buffer given to
 * volley_conn_write_ref stays the caller's, must not change, and is lent to
 * volley until its SENT event.
 *
 * Budgets: what peers can make a loop hold. Peers choose what they send
 * and whether they read; the application chooses what it reads and
 * writes. Whatever they do, the loop holds at most:
 *   - to receive, buf_count buffers of buf_size bytes (16 MiB by default),
 *     put to use as needed: a connection holds at most readq_max bytes
 *     (in at most 2 + readq_max / buf_size buffers). While more than half
 *     of the budget is free that is the only limit. Below half, a
 *     connection stops receiving once it holds its share, buf_count /
 *     (2 * connections) buffers, or what its want needs if that is more;
 *     the ones holding the most stop first, and TCP's window pushes back
 *     on their peers alone. Below an eighth, only connections holding
 *     nothing receive. Receiving resumes as buffers come back
 *     (volley_loop_stats: bufs_live, bufs_held, over_share). So a peer
 *     that dribbles one byte per segment costs bytes, not buffers, and
 *     peers whose bytes the application leaves unread cannot keep the
 *     others from receiving until more than buf_count / 2 of them each
 *     hold their share: size buf_count for the connections a loop serves;
 *   - to send, sendq_budget bytes of copies (16 MiB by default), besides
 *     each connection's sendq_max: once the loop's queues hold the
 *     budget, a write to a connection holding its share, sendq_budget /
 *     (2 * connections), says -EAGAIN (WRITABLE follows as usual); one
 *     holding less still writes, and a write into an empty queue is
 *     always taken;
 *   - per connection, one deadline of each kind, and under 384 bytes of
 *     the heap while it is idle, whether it has been used or not (on
 *     x86-64: its slot, 336 bytes, and its place in the deadline heap);
 *     while it is busy, the bytes it holds (above), and a send of more
 *     than one span in flight on io_uring a record of about 600 bytes from
 *     a free list, until it completes; a VOLLEY_CONN_DIRECT connection
 *     48 more. What bounds how many connections there are is the
 *     descriptor limit (an accept that fails for it pauses the listener
 *     for 100 ms) and the application, which ends idle ones
 *     (volley_conn_want's timeout).
 *
 * Environment: VOLLEY_BACKEND=uring|epoll picks the loop backend when
 * opts->backend is AUTO (a datagram backend name there is ignored by
 * loops, as "epoll" is by datagram sockets); VOLLEY_DISABLE=uring makes
 * AUTO loops use epoll.
 */
typedef struct volley_loop volley_loop;
typedef struct volley_conn volley_conn;
typedef struct volley_timer volley_timer; /* volley_timer_open */

struct volley_loop_opts {
    uint32_t size;         /* sizeof(struct volley_loop_opts) */
    uint32_t backend;      /* VOLLEY_BACKEND_AUTO, _URING or _EPOLL */
    uint32_t entries;      /* uring submission queue entries, 8 .. 32768,
                              rounded up to a power of two (256) */
    uint32_t buf_size;     /* receive buffer bytes, 512 .. 1 MiB (16384) */
    uint32_t buf_count;    /* the receive budget: at most this many buffers,
                              2 .. 32768, rounded up to a power of two
                              (1024); put to use as needed, and shared
                              fairly (see "Budgets" above) */
    uint32_t linger_ms;    /* how long a closed connection may take to flush
                              what it queued (else it is aborted) and to
                              wait for the peer's FIN after its own, 1 ..
                              2^31 - 1 (5000) */
    uint32_t sendq_budget; /* the send budget: bytes all connections'
                              queues may hold in copies, 64 KiB .. 2^31
                              (16 MiB); shared fairly (see "Budgets") */
    uint32_t reserved[3];  /* must be 0 */
};
#ifdef __cplusplus
#define VOLLEY_LOOP_OPTS_INIT volley_loop_opts_init_cxx_()
static inline struct volley_loop_opts volley_loop_opts_init_cxx_(void)
{
    struct volley_loop_opts o = {};
    o.size = sizeof o;
    return o;
}
#else
#define VOLLEY_LOOP_OPTS_INIT                                                            \
    {                                                                                    \
        .size = sizeof(struct volley_loop_opts)                                          \
    }
#endif

/* Connection options, for volley_listen (inherited by what it accepts) and
 * volley_dial. Zero fields take the default in parentheses. */
#define VOLLEY_CONN_NO_NODELAY   0x1u /* leave Nagle on (TCP_NODELAY is set by default) */
#define VOLLEY_CONN_REUSEPORT    0x2u /* listen: SO_REUSEPORT */
#define VOLLEY_CONN_V6ONLY       0x4u /* listen on [::]: IPv6 only (default: dual-stack) */
#define VOLLEY_CONN_BACKLOG_ZERO 0x8u /* listen with a backlog of 0 */
/* reads only into the caller's buffers: volley_conn_recv_into */
#define VOLLEY_CONN_DIRECT 0x10u
/* listen: do not set SO_REUSEADDR (set by default, so that a restarted
 * server binds its port while connections of its last run wait in
 * TIME_WAIT) */
#define VOLLEY_CONN_NO_REUSEADDR 0x20u
struct volley_conn_opts {
    uint32_t size;         /* sizeof(struct volley_conn_opts) */
    uint32_t flags;        /* VOLLEY_CONN_* */
    uint32_t backlog;      /* listen backlog, 0 .. 65535 (0: SOMAXCONN); a
                              listener is made with backlog 0 only through
                              VOLLEY_CONN_BACKLOG_ZERO */
    uint32_t sendq_max;    /* bytes queued before writes say -EAGAIN,
                              1 .. 2^30 (1 MiB) */
    uint32_t sendq_low;    /* WRITABLE fires when the queue falls to this,
                              below sendq_max (sendq_max / 4) */
    uint32_t readq_max;    /* bytes buffered before receiving pauses,
                              1 .. 2^30 (256 KiB) */
    uint32_t zc_threshold; /* uring: a send of at least this many bytes goes
                              zero-copy (SEND_ZC); 0 = never (the default:
                              on loopback the kernel copies anyway and
                              zero-copy only adds a completion; it pays
                              for large sends on a real NIC). Ignored by
                              epoll and by kernels without SEND_ZC */
    uint32_t reserved[3];  /* must be 0 */
};
#ifdef __cplusplus
#define VOLLEY_CONN_OPTS_INIT volley_conn_opts_init_cxx_()
static inline struct volley_conn_opts volley_conn_opts_init_cxx_(void)
{
    struct volley_conn_opts o = {};
    o.size = sizeof o;
    return o;
}
#else
#define VOLLEY_CONN_OPTS_INIT                                                            \
    {                                                                                    \
        .size = sizeof(struct volley_conn_opts)                                          \
    }
#endif

/*
 * Events, in the order a connection can see them:
 *   ACCEPTED   a new connection (ev.conn) on the listener ev.listener; its
 *              user pointer is the listener's until set. It is the
 *              connection's only event in the batch that returns it, so
 *              a user pointer set then comes with every later event
 *   CONNECTED  volley_dial's connection is up
 *   READABLE   bytes are buffered: at least the amount asked for with
 *              volley_conn_want (1 by default), or fewer when the peer
 *              closed or failed; ev.len is how many are buffered. It
 *              comes when bytes arrive or a want is met, not again for
 *              bytes left unread
 *   RECEIVED   (VOLLEY_CONN_DIRECT) the buffer of volley_conn_recv_into
 *              with tag ev.tag holds ev.len (> 0) new bytes and is the
 *              caller's again
 *   SENT       the buffer of volley_conn_write_ref with tag ev.tag is no
 *              longer used: all of it was sent (ev.err 0) or it never will
 *              be (ev.err < 0: the connection ended first)
 *   WRITABLE   a write said -EAGAIN, and the queue has fallen to sendq_low
 *   DRAINED    the queue is empty, as volley_conn_wait_drained asked
 *   EOF        the peer closed its sending side; what it sent before is
 *              still buffered, and writing still works (a pending
 *              volley_conn_recv_into buffer is the caller's again)
 *   TIMEOUT    a deadline of volley_conn_want (ev.tag READABLE) or
 *              volley_conn_wait_drained (ev.tag DRAINED) passed; ev.err is
 *              -ETIMEDOUT; the connection is unchanged, and what arrived
 *              stays buffered
 *   DGRAM      (not a connection's: ev.conn is NULL) a datagram socket on
 *              the loop is ready: ev.user is its loop_user (the
 *              volley_sock itself when that is NULL) and ev.tag says what,
 *              VOLLEY_WAIT_RECV (datagrams arrived: volley_recv until it
 *              returns 0), VOLLEY_WAIT_ERR (volley_errors has reports),
 *              VOLLEY_WAIT_SEND (a volley_send stopped short for lack of
 *              room, and there is room again). It comes when something
 *              arrives, not again for datagrams left unread
 *   TIMER      (ev.conn is NULL) a loop timer (volley_timer_open) is due:
 *              ev.tag is its tag, ev.len how many times it came due since
 *              its last TIMER event (more than 1 when a repeating timer
 *              was due again before the loop got to it)
 *   WAKE       (ev.conn is NULL) volley_loop_wake was called, once or
 *              more, since the last WAKE event
 *   CLOSED     the end, always the last event of a connection. ev.err: 0
 *              after volley_conn_close flushed everything; -ECANCELED after
 *              volley_conn_abort or a loop close; -ECONNRESET when the
 *              peer reset it; -ECONNREFUSED, -ETIMEDOUT (the dial timeout),
 *              -ENETUNREACH, -EHOSTUNREACH for a dial that failed;
 *              -ETIMEDOUT too when a close could not flush within linger_ms;
 *              other socket errors as the kernel reports them. Bytes still
 *              buffered are dropped with the connection; bytes still queued
 *              are counted in unsent_bytes.
 */
enum volley_event_type {
    VOLLEY_EV_ACCEPTED = 1,
    VOLLEY_EV_CONNECTED = 2,
    VOLLEY_EV_READABLE = 3,
    VOLLEY_EV_SENT = 4,
    VOLLEY_EV_WRITABLE = 5,
    VOLLEY_EV_DRAINED = 6,
    VOLLEY_EV_EOF = 7,
    VOLLEY_EV_TIMEOUT = 8,
    VOLLEY_EV_CLOSED = 9,
    VOLLEY_EV_RECEIVED = 10,
    VOLLEY_EV_DGRAM = 11,
    VOLLEY_EV_TIMER = 12,
    VOLLEY_EV_WAKE = 13,
};
struct volley_event {
    volley_conn *conn;
    void *user;            /* the connection's user pointer */
    volley_conn *listener; /* ACCEPTED: the listener; otherwise NULL */
    uint64_t tag;          /* SENT: the write's tag; TIMEOUT: which wait */
    size_t len;            /* READABLE: bytes buffered; SENT: bytes */
    uint32_t type;         /* enum volley_event_type */
    int32_t err;           /* 0 or a negative errno, as listed above */
};

/* Counters; loop ones add up every connection's since the loop opened.
 * Grown at the end only. */
struct volley_conn_stats {
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t writes;       /* volley_conn_write and _write_ref calls taken */
    uint64_t sends;        /* send operations (each one vectored send) */
    uint64_t coalesced;    /* writes that went out in a send with others */
    uint64_t rearms;       /* receives restarted (multishot ended, paused) */
    uint64_t unsent_bytes; /* queued bytes the connection ended without sending */
    uint64_t zc_sends;     /* sends that went zero-copy (zc_threshold) */
    uint64_t zc_copied;    /* ... of which the kernel copied after all */
    uint64_t queued;       /* bytes queued now */
    uint64_t buffered;     /* bytes buffered now */
};
struct volley_loop_stats {
    uint64_t syscalls; /* system calls the loop made, waits included */
    uint64_t polls;    /* volley_loop_poll calls */
    uint64_t accepted;
    uint64_t dialed;        /* dials that connected */
    uint64_t closed;        /* CLOSED events */
    uint64_t conns;         /* connections and listeners open now */
    uint64_t ring_empty;    /* receives stopped because no buffer was free */
    uint64_t cq_overflow;   /* completion queue overflows recovered from */
    uint64_t accept_errors; /* accepts that failed (EMFILE, ENOBUFS, ...) */
    struct volley_conn_stats total;
    /* The receive budget (buf_count buffers of buf_size bytes): */
    uint64_t bufs_live;  /* buffers put to use so far (memory taken) */
    uint64_t bufs_held;  /* ... held by connections' unread bytes now */
    uint64_t over_share; /* connections not receiving now because they
                            hold more than their share of the budget */
    uint64_t sendq_mem;  /* bytes of copies the queues hold now, in whole
                            chunks: what counts against sendq_budget */
};

/*
 * Open a loop. o may be NULL (all defaults). Every field is checked
 * against its range (-EINVAL). A forced backend the kernel cannot run
 * gives -ENOTSUP; AUTO takes uring when it works, else epoll.
 * Errors: -EINVAL (also a bad VOLLEY_BACKEND or VOLLEY_DISABLE), -E2BIG
 * (o is newer than this library and sets fields it does not know),
 * -ENOTSUP, -ENOMEM, -EMFILE, io_uring_setup(2) and epoll_create1(2)
 * errors.
 */
VOLLEY_API int volley_loop_open(volley_loop **out, const struct volley_loop_opts *o);

/*
 * Close the loop: stop listening, let every connection flush what it
 * queued and send its FIN for up to drain_ms (0: abort everything now;
 * negative: no limit; no wait for peers' FINs),
 * then abort what is left, reap every completion still due, and only then
 * unmap the buffers and release the ring or epoll instance. No event is
 * returned for what happens during the close: SENT buffers are free when
 * it returns. NULL is a no-op.
 */
VOLLEY_API void volley_loop_close(volley_loop *l, int drain_ms);

/*
 * Make volley_loop_poll return a VOLLEY_EV_WAKE event: the poll sleeping
 * now, or the next one. Callable from any thread and from a signal
 * handler (it writes to an eventfd the loop watches, nothing else), while
 * the loop is open; wakes coalesce: however many are made before the loop
 * looks, one WAKE event comes. The way for another thread to hand the loop
 * work: queue it, then wake the loop, which takes the queue on WAKE.
 * Errors: -EINVAL (NULL), write(2)'s on the eventfd.
 */
VOLLEY_API int volley_loop_wake(volley_loop *l);

/*
 * Loop timers: one-shot or repeating deadlines on the loop, due as
 * VOLLEY_EV_TIMER events with the timer's tag, counted in
 * volley_loop_timeout (an application that embeds the loop sleeps exactly
 * until the first). They share the loop's deadline heap with the
 * connections' deadlines: starting, restarting and stopping one is
 * O(log n) and allocates nothing; only opening one does. A timer belongs
 * to the loop's thread, as the loop does.
 *
 * volley_timer_open makes a stopped timer whose events carry tag; it is
 * freed by volley_timer_close, or with the loop (volley_loop_close frees
 * the timers still open). volley_timer_start (re)starts t to be due
 * after_ms milliseconds from now, then every repeat_ms milliseconds (0:
 * once), each at most 2^31 - 1; volley_timer_start_ns does the same in
 * nanoseconds, each at most (2^31 - 1) * 1000000 (the same span), for a
 * deadline that a millisecond is too coarse for (a transport's pacing or
 * loss timer): the loop's wait ends at the deadline to the nanosecond
 * (an epoll loop where the kernel refuses epoll_pwait2 rounds up to the
 * next millisecond; no timer ever fires early). A TIMER event owed and
 * not yet returned is dropped: a restart counts from now. The clock is
 * CLOCK_MONOTONIC. volley_timer_stop: no TIMER event
 * comes for t until it is started again, even one already due and not yet
 * returned. volley_timer_close stops t and frees it (NULL: nothing).
 * Errors: volley_timer_open: -EINVAL (NULL, or the loop is closing),
 * -ENOMEM. volley_timer_start: -EINVAL (NULL, a value out of range).
 * volley_timer_start_ns: -EINVAL (NULL, a value out of range).
 * volley_timer_stop: -EINVAL (NULL). volley_timer_close: none.
 */
VOLLEY_API int volley_timer_open(volley_loop *l, volley_timer **out, uint64_t tag);
VOLLEY_API int volley_timer_start(volley_timer *t, uint64_t after_ms, uint64_t repeat_ms);
VOLLEY_API int volley_timer_start_ns(volley_timer *t, uint64_t after_ns,
                                     uint64_t repeat_ns);
VOLLEY_API int volley_timer_stop(volley_timer *t);
VOLLEY_API void volley_timer_close(volley_timer *t);

/*
 * Do the I/O that is due and return up to n events (at least 1 unless the
 * timeout passed first). Waits up to timeout_ms when there is nothing to
 * return (-1: no limit, 0: never). Events not returned for lack of room
 * come first on the next call. A signal that interrupts the wait ends it
 * with -EINTR, whether its handler was installed with SA_RESTART or not,
 * so a caller can look at what its handler set; polling again goes on.
 * Errors: -EINVAL (NULL, n == 0), -EINTR.
 */
VOLLEY_API int volley_loop_poll(volley_loop *l, struct volley_event *ev, unsigned n,
                                int timeout_ms);

/* A file descriptor that is readable whenever volley_loop_poll has
 * something to do, for embedding the loop in another event loop; poll it
 * with volley_loop_timeout as the timeout. Errors: -EINVAL. */
VOLLEY_API int volley_loop_fd(const volley_loop *l);

/* Milliseconds until volley_loop_poll has work that the fd does not
 * announce: the next deadline (a dial, want, drain or linger timeout, or
 * a loop timer), rounded up, or 0 when events or queued writes are
 * waiting; -1 when there is none (and for NULL). volley_loop_timeout_ns:
 * the same in nanoseconds, not rounded, for an outer loop that can wait
 * that finely (ppoll, epoll_pwait2, an io_uring timeout). */
VOLLEY_API int volley_loop_timeout(const volley_loop *l);
VOLLEY_API int64_t volley_loop_timeout_ns(const volley_loop *l);

/* "uring" or "epoll" ("none" for NULL). */
VOLLEY_API const char *volley_loop_backend(const volley_loop *l);

/* Copy the loop counters (size: as volley_get_stats). Errors: -EINVAL. */
VOLLEY_API int volley_loop_get_stats(const volley_loop *l, struct volley_loop_stats *out,
                                     size_t size);

/*
 * Datagram sockets on a loop. A socket opened or wrapped with
 * volley_opts.loop set joins that loop, so that one thread serves its UDP
 * sockets and its TCP connections from one volley_loop_poll: the socket's
 * readiness comes as DGRAM events, and volley_send, volley_recv and the
 * rest work on it as on any socket, from the loop's thread only.
 *   - On a uring loop, a uring socket (the choice for AUTO) shares the
 *     loop's ring instead of owning one: its multishot receive and its
 *     sends go through the loop's io_uring_enter, volley_recv takes what
 *     the loop's polls brought in (no system call), and volley_fd is the
 *     loop's fd. volley_wait and volley_recv_wait work, and sleep in the
 *     loop's ring: connections' completions that arrive meanwhile are kept
 *     for the next volley_loop_poll.
 *   - Any other kernel socket (mmsg, scalar, or uring on an epoll loop)
 *     keeps its own means and the loop watches volley_fd for readability.
 * Close the socket before the loop. A loop closed first lets go of its
 * sockets: a watched socket works on alone; a socket that shared the
 * ring can only be closed: every other call gives -EPIPE once its
 * arguments pass their checks, but for volley_get_stats (the counters
 * until then) and the calls that have no error to give
 * (volley_backend_name says "gone", volley_features and
 * volley_gso_max_segments 0).
 * Errors, at open or wrap: -EINVAL (a closing loop; the pair backend),
 * -ENOMEM.
 */

/*
 * Listen on addr ("ip:port", "[ip6]:port"; "[::]:port" is dual-stack
 * unless VOLLEY_CONN_V6ONLY), or on a local stream socket: "unix:/path",
 * or Linux's abstract "unix:@name" (no file). Connections arrive as
 * ACCEPTED events; an accept that fails is counted (accept_errors), and
 * one that fails for lack of descriptors or memory makes the listener
 * rest 100 ms rather than fail again at every poll (the connections wait
 * in the kernel). The listener is a volley_conn: volley_conn_close stops
 * it (CLOSED follows), volley_conn_addr gives the bound address (port 0
 * picks one; a local socket's addresses say AF_UNIX and nothing more).
 * A socket file left at the path by a server that crashed (a socket that
 * nobody listens on) is replaced; a live server's, or a file that is no
 * socket, is not (-EADDRINUSE). The listener's close removes the file it
 * made, if that file is still there.
 * Errors: -EINVAL (NULL, bad address or options, an empty path),
 * -E2BIG (as for volley_loop_open), -EADDRINUSE, -EAFNOSUPPORT,
 * -ENAMETOOLONG (a path of 108 bytes or more), -ENOMEM,
 * socket(2)/bind(2)/listen(2) errors.
 */
VOLLEY_API int volley_listen(volley_loop *l, volley_conn **out, const char *addr,
                             const struct volley_conn_opts *o, void *user);

/*
 * Connect to addr (as volley_listen takes it, "unix:" ones included);
 * CONNECTED or CLOSED (with the reason) follows. timeout_ms bounds the
 * connect (0 or negative: the kernel's own limit). Writes are accepted at
 * once and go out once connected.
 * Errors: -EINVAL (NULL, bad address or options, port 0, an empty path),
 * -E2BIG (as for volley_loop_open), -EAFNOSUPPORT, -ENAMETOOLONG, -ENOMEM,
 * socket(2) errors; refusals and timeouts arrive as the CLOSED event (a
 * local path with no socket: -ENOENT; a local listener whose queue is
 * full: -EAGAIN).
 */
VOLLEY_API int volley_dial(volley_loop *l, volley_conn **out, const char *addr,
                           const struct volley_conn_opts *o, int timeout_ms, void *user);

/* The connection's user pointer (NULL for NULL), and setting it: it comes
 * back in every event of the connection. Neither fails. */
VOLLEY_API void *volley_conn_user(const volley_conn *c);
VOLLEY_API void volley_conn_set_user(volley_conn *c, void *user);

/* The connection's local and peer addresses (either pointer may be NULL;
 * a listener's peer is AF_UNSPEC). Errors: -EINVAL. */
VOLLEY_API int volley_conn_addr(const volley_conn *c, struct volley_addr *local,
                                struct volley_addr *peer);

/* Bytes buffered now (0 for NULL). */
VOLLEY_API size_t volley_conn_buffered(const volley_conn *c);

/*
 * Copy up to n buffered bytes into buf and consume them. Returns the
 * count, 0 when nothing is buffered (more may come), -ESHUTDOWN when
 * nothing is buffered and the peer has closed its side (nothing more will
 * come). Errors: -EINVAL (NULL), -EPIPE (closed or aborted by the caller),
 * -ENOTCONN (a listener).
 */
VOLLEY_API ssize_t volley_conn_read(volley_conn *c, void *buf, size_t n);

/*
 * Point iov at buffered bytes without consuming them, in order, one entry
 * per receive buffer; returns the entries filled, 0 or -ESHUTDOWN when
 * nothing is buffered (as volley_conn_read). The bytes stay where they
 * are, unchanged, until a consume or read takes them or the connection
 * ends (polling and later arrivals do not move them): a span may be lent
 * back with volley_conn_write_ref and consumed at its SENT event, an echo
 * or relay without a copy; a close with buffers lent keeps the received
 * bytes until the connection is gone.
 * Errors: -EINVAL (NULL, n == 0), -EPIPE, -ENOTCONN (as volley_conn_read).
 */
VOLLEY_API int volley_conn_peek(volley_conn *c, struct iovec *iov, unsigned n);

/* Drop the first n buffered bytes. Returns 0.
 * Errors: -EINVAL (NULL, or n more than is buffered), -EPIPE, -ENOTCONN. */
VOLLEY_API int volley_conn_consume(volley_conn *c, size_t n);

/*
 * On a VOLLEY_CONN_DIRECT connection, receive up to n bytes straight into
 * buf, without the loop's buffers: one copy less, for large transfers.
 * One receive at a time; buf is lent to volley until the RECEIVED event
 * with tag (ev.len bytes arrived), or EOF, or CLOSED. Such a connection
 * never buffers (volley_conn_read finds nothing) but while closing.
 * Returns 0. Errors: -EINVAL (NULL, n == 0), -ENOTSUP (not a
 * VOLLEY_CONN_DIRECT connection), -EBUSY (a receive is pending, or its
 * RECEIVED has not been returned by volley_loop_poll yet), -EPIPE,
 * -ENOTCONN, -ESHUTDOWN (the peer closed its side).
 */
VOLLEY_API int volley_conn_recv_into(volley_conn *c, void *buf, size_t n, uint64_t tag);

/*
 * Ask for READABLE only once at least n bytes are buffered (n at most
 * readq_max), or TIMEOUT (tag VOLLEY_EV_READABLE) if they have not
 * arrived within timeout_ms (negative: no deadline). Read exactly n
 * bytes with it: want n, then read n on READABLE. The wish holds until
 * READABLE or TIMEOUT is returned; want(c, 1, -1) is the default. It says
 * READABLE at once when n bytes are buffered already (so want(c, 1, -1)
 * also asks again for bytes left unread). After the connection's CLOSED
 * was returned no event follows: what is buffered can still be read until
 * the next poll, and a want is -ESHUTDOWN.
 * Errors: -EINVAL (NULL, n of 0 or above readq_max), -EPIPE, -ENOTCONN,
 * -ESHUTDOWN.
 */
VOLLEY_API int volley_conn_want(volley_conn *c, size_t n, int timeout_ms);

/*
 * Queue a copy of n bytes to send. All or nothing: returns n, or -EAGAIN
 * when the queue would pass sendq_max, or the loop's send budget is
 * reached and this connection holds its share of it (see "Budgets";
 * WRITABLE follows once the queue has fallen to sendq_low; a single write
 * of any size is taken when the queue is empty). Queued bytes go out at the next
 * volley_loop_poll, with everything else queued, in one vectored send; bytes never
 * reorder. Errors: -EINVAL (NULL), -EPIPE (closed, aborted, or the connection ended),
 * -ENOTCONN (a listener), -ENOMEM.
 */
VOLLEY_API ssize_t volley_conn_write(volley_conn *c, const void *buf, size_t n);

/* As volley_conn_write without the copy: buf is lent to volley until the
 * SENT event carrying tag. Returns 0, or -EAGAIN as volley_conn_write. A
 * lent buffer counts 64 bytes against sendq_max besides its own (an empty
 * one too), from this call until its SENT event is returned, so that
 * lending cannot queue without bound. Errors: -EINVAL, -EPIPE, -ENOTCONN,
 * -ENOMEM. */
VOLLEY_API int volley_conn_write_ref(volley_conn *c, const void *buf, size_t n,
                                     uint64_t tag);

/* Bytes queued and not yet taken by the kernel (0 for NULL). */
VOLLEY_API size_t volley_conn_queued(const volley_conn *c);

/* Ask for one DRAINED event when the queue is empty (at once if it is),
 * or TIMEOUT (tag VOLLEY_EV_DRAINED) after timeout_ms (negative: none).
 * Errors: -EINVAL (NULL), -EPIPE, -ENOTCONN. */
VOLLEY_API int volley_conn_wait_drained(volley_conn *c, int timeout_ms);

/*
 * Half close: once what is queued has been sent, shut the sending side
 * (the peer reads EOF). Reading goes on; further writes are -EPIPE; call
 * volley_conn_close when done reading. Returns 0.
 * Errors: -EINVAL (NULL), -EPIPE (closed, aborted, ended, or shut already),
 * -ENOTCONN (a listener).
 */
VOLLEY_API int volley_conn_shutdown(volley_conn *c);

/*
 * Orderly close: what is queued is sent, then the sending side is shut
 * (FIN); what the peer still sends is read and dropped until its own FIN
 * (so that closing with its bytes unread never resets the connection and
 * destroys what it has not read yet), at most until linger_ms after the
 * call; then the socket is closed once every operation on it has
 * completed, and CLOSED (err 0) follows. Reading stops at once for the
 * caller. A close that cannot flush what was queued within linger_ms is
 * aborted (CLOSED with -ETIMEDOUT).
 * Errors: -EINVAL (NULL), -EPIPE (already closed or aborted).
 */
VOLLEY_API int volley_conn_close(volley_conn *c);

/* Abort: drop what is queued (counted in unsent_bytes), cancel what is in
 * flight, reset the connection (RST) and close it; CLOSED (-ECANCELED)
 * follows. Errors: -EINVAL (NULL), -EPIPE (already closed or aborted). */
VOLLEY_API int volley_conn_abort(volley_conn *c);

/* Copy the connection's counters (size: as volley_get_stats).
 * Errors: -EINVAL. */
VOLLEY_API int volley_conn_get_stats(const volley_conn *c, struct volley_conn_stats *out,
                                     size_t size);

/*
 * Reuseport groups: one socket per thread on one address.
 *
 * A server outgrows one core long before it outgrows a machine. A group is
 * n sockets bound to one address with SO_REUSEPORT: the kernel hands each
 * arriving packet (a datagram, or a connection's first segment) to one
 * member, and each member is served by its own thread (for datagrams:
 * volley_wrap on the member's fd; for streams: volley_listen_fd on a loop
 * of that thread). Nothing is shared between the members' threads.
 *
 * Steering, which member a packet goes to (n members, in the order they
 * joined: fds[0] first):
 *   VOLLEY_STEER_FLOW    (the default) a hash of the packet's source
 *                        address and port, modulo n: every packet of a flow
 *                        lands on the same member while the group is
 *                        unchanged, and many flows spread over all members.
 *                        The hash multiplies the source port and address
 *                        words by an odd constant (Fibonacci hashing) and
 *                        keeps the high bits.
 *   VOLLEY_STEER_CPU     the CPU the kernel processes the packet on, modulo
 *                        n: member i serves CPUs i, i + n, ... A flow
 *                        stays on one member as long as its packets are
 *                        processed on one CPU: a NIC's RSS or RPS makes it
 *                        so; on loopback it is the sending thread's CPU.
 *                        Pin member i's thread to CPU i and a packet is
 *                        served where the kernel received it. Member i
 *                        also gets SO_INCOMING_CPU i: where the program
 *                        is refused, Linux 6.1 and later still hand a
 *                        packet processed on CPU i < n to member i.
 *   VOLLEY_STEER_KERNEL  no program: the kernel's own hash of the 4-tuple.
 * FLOW and CPU are classic BPF programs (SO_ATTACH_REUSEPORT_CBPF): any
 * user may attach them, where an eBPF program needs privileges most
 * deployments do not grant. A kernel that refuses the program leaves the
 * group working on its own hash: the call then returns
 * VOLLEY_STEER_KERNEL, and `volley probe` says so (reuseport_steer).
 *
 * When a member closes, the kernel moves the last member into its place
 * and the group has n - 1 members: flows move, no packet is delivered to
 * the closed socket, and whatever was still queued on it is lost with it
 * (for TCP: connections not yet accepted are reset). volley_group_leave
 * takes a member out without losing a datagram, even while datagrams
 * keep coming.
 */
#define VOLLEY_STEER_FLOW   0u
#define VOLLEY_STEER_CPU    1u
#define VOLLEY_STEER_KERNEL 2u

#define VOLLEY_GROUP_MAX 64 /* members of one group */

#define VOLLEY_GROUP_STREAM 0x1u /* TCP listeners (default: UDP sockets) */
#define VOLLEY_GROUP_V6ONLY 0x2u /* on [::]: IPv6 only (default: dual-stack) */
struct volley_group_opts {
    uint32_t size;        /* sizeof(struct volley_group_opts) */
    uint32_t flags;       /* VOLLEY_GROUP_* */
    uint32_t steer;       /* VOLLEY_STEER_* */
    uint32_t backlog;     /* streams: listen backlog, 0 .. 65535 (0: SOMAXCONN) */
    uint32_t reserved[4]; /* must be 0 */
};
#ifdef __cplusplus
static inline struct volley_group_opts volley_group_opts_init_cxx_(void)
{
    struct volley_group_opts o = {};
    o.size = sizeof o;
    return o;
}
#define VOLLEY_GROUP_OPTS_INIT volley_group_opts_init_cxx_()
#else
#define VOLLEY_GROUP_OPTS_INIT                                                           \
    {                                                                                    \
        .size = sizeof(struct volley_group_opts)                                         \
    }
#endif

/*
 * Open n (1 .. VOLLEY_GROUP_MAX) sockets bound to addr ("ip:port",
 * "[ip6]:port"; port 0: the first member picks one, the others join it)
 * with SO_REUSEPORT, in order, into fds[0..n-1] (non-blocking, close on
 * exec; streams are listening already), and steer them as o->steer asks
 * (o NULL: defaults). The fds are the caller's: hand each to volley_wrap
 * or volley_listen_fd, or close them. Returns the steering in effect
 * (VOLLEY_STEER_*: KERNEL when the program was refused), or a negative
 * errno with nothing left open. Errors: -EINVAL (NULL, n out of range, bad
 * address or options, unknown steering), -E2BIG, -EADDRINUSE (the address
 * is taken by a socket outside the group), -EAFNOSUPPORT, socket(2),
 * bind(2) and listen(2) errors.
 */
VOLLEY_API int volley_group_open(int *fds, unsigned n, const char *addr,
                                 const struct volley_group_opts *o);

/*
 * Steer the group whose members are fds[0..n-1], in the kernel's order,
 * as steer asks (after a member left, or to change the steering): the
 * program replaces the group's previous one. Returns the steering in
 * effect. Errors: -EINVAL (NULL, n out of range, unknown steering), -EBADF, -ENOTSOCK,
 * or the error setsockopt(2) gave (the group keeps its previous steering).
 */
VOLLEY_API int volley_group_steer(const int *fds, unsigned n, unsigned steer);

/*
 * Take member k out of the group without losing a datagram. When it
 * returns, new packets go to the other members only, steered as steer
 * (FLOW or CPU) asks over n - 1 members, and no datagram will be queued on
 * the leaving member any more; fds[k] and fds[n-1] have swapped places:
 * fds[0..n-2] are the members that stay, in the order the kernel will have
 * them once the leaving member, now fds[n-1], is closed. Then receive what
 * is queued on fds[n-1] until it is empty (once), close it, and call
 * volley_group_steer(fds, n - 1, steer): until then, the flows of one
 * member in n - 1 are placed by the kernel's hash.
 * How: the new program never picks the leaver; the leaver is bound to an
 * interface no device has (SO_BINDTOIFINDEX), so the kernel's lookup
 * passes over it, also while close() takes it out of the group (a lookup
 * that meets a closing member first would queue the datagram on it, to be
 * freed with it, counted nowhere); then the call waits for an RCU grace
 * period (membarrier(2)), after which no lookup that saw the old state is
 * still delivering. It takes milliseconds; the leaver can no longer send.
 * This holds on Linux 5.0 and later where membarrier(2) is allowed. Where
 * it is not (nohz_full, a seccomp filter) the call waits 50 ms instead;
 * where the binding is refused (before 5.0, or a member bound to a device
 * already, without CAP_NET_RAW) a datagram that arrives in the instant the
 * leaver closes can still be lost, uncounted. Broadcast and multicast
 * datagrams go to every matching member; the leaver gets none from the
 * return on. Returns 0. Errors: -EINVAL (NULL, n < 2 or out of range,
 * k >= n, steer not FLOW or CPU: the kernel's own hash cannot leave a
 * member out), -EBADF, -ENOTSOCK, or setsockopt(2)'s error for the program
 * (nothing changed).
 */
VOLLEY_API int volley_group_leave(int *fds, unsigned n, unsigned k, unsigned steer);

/*
 * Serve the listening TCP socket fd (a group member, or one inherited:
 * systemd socket activation) on loop l, as volley_listen does from then
 * on. The loop owns the fd from success on; on failure it stays the
 * caller's. o's listen-time flags (REUSEPORT, V6ONLY, BACKLOG_ZERO,
 * backlog) are ignored: the socket is listening already.
 * Errors: -EINVAL (NULL, a closing loop, bad options, fd not listening),
 * -E2BIG, -EBADF, -ENOTSOCK, -EPROTOTYPE (not SOCK_STREAM), -EAFNOSUPPORT
 * (not IPv4 or IPv6), -ENOMEM, getsockopt(2) and fcntl(2) errors.
 */
VOLLEY_API int volley_listen_fd(volley_loop *l, volley_conn **out, int fd,
                                const struct volley_conn_opts *o, void *user);

#ifdef __cplusplus
}
#endif
#endif /* VOLLEY_H */
