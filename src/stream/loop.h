/* SPDX-License-Identifier: MIT */
/* Private to libvolley: the stream loop. Its core is one file per job,
 * loop.c (the loop and its turn), conn.c (connections and their events),
 * listen.c (listen, dial, accept), read.c (receiving and reads) and
 * write.c (sends, writes, close), which share the calls declared first
 * below; one file per loop backend (uring.c, epoll.c) only moves bytes
 * and reports back through the volley__conn_* / volley__loop_* callbacks
 * after them; host.c keeps the datagram sockets on a loop. */

#ifndef VOLLEY_LOOP_H
#define VOLLEY_LOOP_H

#include "stream.h"

#include <sys/stat.h>
#include <sys/un.h>

/* How long a listener rests after running out of descriptors or memory. */
#define VOLLEY__ACCEPT_PAUSE_MS 100

/* Most queue segments one vectored send carries. */
#define VOLLEY__SEND_IOV 32

/* A connection's life. Reading and writing are allowed as listed. */
enum volley__cstate {
    VOLLEY__CS_CONNECTING, /* dial in progress: writes queue, nothing is sent */
    VOLLEY__CS_OPEN,
    VOLLEY__CS_FLUSHING, /* closed by the caller: sending what was queued */
    VOLLEY__CS_LINGER,   /* FIN sent: dropping what arrives until the peer's FIN */
    VOLLEY__CS_ENDING,   /* the backend is tearing the socket down */
    VOLLEY__CS_ENDED,    /* gone from the kernel; CLOSED is due or was returned */
};

/* struct volley_conn.flags */
#define VOLLEY__C_LISTENER     0x001u
#define VOLLEY__C_CLOSED_BY_US 0x002u  /* volley_conn_close/abort was called */
#define VOLLEY__C_EOF          0x004u  /* the peer's FIN arrived */
#define VOLLEY__C_RECV         0x008u  /* receiving is on (as asked of the backend) */
#define VOLLEY__C_STARVED      0x010u  /* receiving stopped: no buffer was free */
#define VOLLEY__C_SENDING      0x020u  /* a send is in flight */
#define VOLLEY__C_SAID_AGAIN   0x040u  /* a write said -EAGAIN: WRITABLE is owed */
#define VOLLEY__C_WAIT_DRAIN   0x080u  /* DRAINED is owed when the queue empties */
#define VOLLEY__C_ABORT        0x100u  /* tear down with a reset */
#define VOLLEY__C_READY        0x200u  /* on the loop's ready list */
#define VOLLEY__C_FLUSH        0x400u  /* on the loop's flush list */
#define VOLLEY__C_SHUT_ASKED   0x800u  /* volley_conn_shutdown: FIN after the queue */
#define VOLLEY__C_RX_LENT      0x2000u /* a volley_conn_recv_into buffer is lent */
#define VOLLEY__C_SHUT_DONE    0x1000u /* the FIN went (SHUT_WR) */
#define VOLLEY__C_OVER         0x4000u /* receiving paused: over its share of buffers */
#define VOLLEY__C_REAPED       0x8000u /* CLOSED returned: on the reap list */

/* What volley_conn_stats counts of one connection (the rest of it is
 * computed when asked). */
struct volley__cstats {
    uint64_t bytes_in, bytes_out, writes, sends, rearms, unsent_bytes, zc_sends,
        zc_copied;
};

/* VOLLEY_CONN_DIRECT: the caller's receive buffer, while lent, and what
 * the RECEIVED event owed reports. Only a DIRECT connection has one (from
 * the loop's free list, for its whole life). */
struct volley__direct {
    uint8_t *buf;
    uint64_t tag;
    uint32_t len;                /* at most VOLLEY__DGRAM_MAX: one recv(2) */
    uint32_t got;                /* bytes in it for the RECEIVED event owed */
    struct volley__direct *next; /* on the loop's free list */
};

/* Options of connections (volley_conn_opts, checked, defaults applied),
 * one record per distinct set in use on a loop: a listener's are its
 * accepted connections', and dials with the same options share theirs. */
struct volley__copts {
    uint32_t refs; /* connections pointing here */
    uint32_t sendq_max, sendq_low, readq_max, zc_threshold;
    uint32_t flags;             /* VOLLEY_CONN_* */
    struct volley__copts *next; /* in the loop's list */
};

/* A connection or a listener. What only a busy connection needs lives
 * elsewhere while it is busy: the send in flight's message and iovecs are
 * the backend's (uring: a record from its free list, until the send
 * completes; epoll: the stack), received bytes are in the loop's buffers,
 * queued ones in its segment pool. So an idle connection costs this
 * struct, a place in the deadline heap, and nothing else: fields are as
 * narrow as their ranges allow (the options' are at most 2^30). */
struct volley_conn {
    void *user;
    volley_conn *ready_next, *flush_next;
    struct volley__unix *un;       /* a local listener's or dial's address */
    struct volley__direct *rx;     /* VOLLEY_CONN_DIRECT's */
    void *be_send;                 /* the backend's record of the send in flight */
    const struct volley__copts *o; /* its options (shared) */
    int64_t dl_connect;            /* deadlines, 0 when none: volley_dial's */
    int64_t dl_want;   /* volley_conn_want's; a listener's rest after EMFILE */
    int64_t dl_drain;  /* volley_conn_wait_drained's */
    int64_t dl_linger; /* close deadline */
    struct volley__timer timer;
    struct volley__readq rq;
    struct volley__sendq sq;
    struct volley__cstats st;
    struct volley_addr local, peer; /* AF_UNIX with no more for local ones */
    int fd;
    uint32_t slot;     /* index in the loop's slots (volley__loop_slot) */
    uint32_t gen;      /* bumped each time the slot is reused */
    uint32_t pending;  /* events owed: 1u << VOLLEY_EV_* */
    int32_t err;       /* the CLOSED event's error */
    uint32_t done_ok;  /* finished REF writes at the head of the done list
                          that were sent whole (the rest were dropped) */
    uint32_t want;     /* READABLE threshold (at most readq_max) */
    uint32_t listener; /* ACCEPTED: the slot of the listener it came from */
    uint16_t flags;    /* VOLLEY__C_* */
    uint16_t inflight; /* backend operations not yet completed */
    uint8_t state;     /* enum volley__cstate */
    uint8_t be_state;  /* the backend's own bits */
};

/* Connections are allocated VOLLEY__CONN_BLOCK at a time: slot i is entry
 * i % VOLLEY__CONN_BLOCK of block i / VOLLEY__CONN_BLOCK, and never moves.
 * The block knows the loop, so that a connection need not. */
#define VOLLEY__CONN_BLOCK 64u
struct volley__conn_block {
    volley_loop *loop;
    volley_conn c[VOLLEY__CONN_BLOCK];
};

/* The loop c is on: its block's. */
static inline volley_loop *volley__conn_loop(const volley_conn *c)
{
    const char *first = (const char *)(c - c->slot % VOLLEY__CONN_BLOCK);
    const void *b = first - offsetof(struct volley__conn_block, c);
    return ((const struct volley__conn_block *)b)->loop;
}

/* struct volley__timer.kind: whose deadline it is. */
#define VOLLEY__TIMER_CONN 0 /* a connection's (volley_conn.timer) */
#define VOLLEY__TIMER_USER 1 /* a loop timer's (volley_timer.node) */

/* A local stream socket's address ("unix:/path" or "unix:@name"), kept by
 * the listener or dial that was given it: volley_addr has no room for a
 * path. */
struct volley__unix {
    struct sockaddr_un sa;
    socklen_t len;
    bool made; /* a listener made the file: removed when it closes */
    dev_t dev; /* ... if it is still the same file then */
    ino_t ino;
};

/* A loop timer (volley_timer_open). */
struct volley_timer {
    volley_loop *loop;
    struct volley__timer node; /* in the loop's deadline heap while started */
    uint64_t tag;              /* ev.tag of its TIMER events */
    int64_t period;            /* nanoseconds between firings, 0: once */
    uint64_t owed;             /* firings not returned in a TIMER event yet */
    volley_timer *fired_next;  /* on the loop's fired list */
    uint32_t index;            /* in loop->utimers */
    bool on_fired;             /* on the fired list */
    bool closed;               /* closed while on it: freed when it leaves */
};

/* A datagram socket on the loop (volley_opts.loop), seen as a guest
 * (base.h's hosting): its descriptors, its callbacks. */
struct volley__dgram {
    struct volley__guest *g; /* NULL: the entry is free */
    uint32_t pending;        /* VOLLEY_WAIT_* owed in a DGRAM event */
    uint8_t gen;             /* bumped each time the entry is reused */
    bool watched;            /* the loop watches its volley_fd (every other kind) */
    bool armed;              /* uring: the readiness poll is in flight */
    bool out_armed;          /* a send stopped short: writability is watched */
    bool out_reg;            /* epoll: the socket's fd is in the set for that alone */
};

/* A loop backend: one file, one table. */
struct volley__loop_ops {
    const char *name;
    unsigned id;     /* VOLLEY_BACKEND_URING or _EPOLL */
    bool async_send; /* a send in flight reads the queue until it completes */
    /* Set up on l (bufs, options ready): 0 or a negative errno (-ENOTSUP:
     * this kernel cannot run it). */
    int (*init)(volley_loop *l, const struct volley_loop_opts *o);
    /* Release everything; every connection is gone already (or given up
     * on: nothing of it is reported any more). */
    void (*fini)(volley_loop *l);
    int (*fd)(const volley_loop *l);
    /* c->fd is listening: accept from now on (on), or pause (off: what
     * the kernel accepted meanwhile waits in its queue). */
    int (*accept)(volley_conn *c, bool on);
    /* c->fd is a fresh non-blocking socket: connect it to c->peer. Report
     * through volley__conn_connected. */
    int (*connect)(volley_conn *c);
    /* Receive on or off. Off is a wish: data may still arrive. The backend
     * restarts a receive that ends by itself while on; it reports only an
     * end the core must act on (volley__conn_recv_end). */
    void (*recv)(volley_conn *c, bool on);
    /* VOLLEY_CONN_DIRECT: receive once into c->rx->buf/len and report
     * through volley__conn_received. */
    void (*recv_into)(volley_conn *c);
    /* Bytes are queued and no send is in flight: send from the queue head
     * and report through volley__conn_sent. */
    void (*send)(volley_conn *c);
    /* Stop everything on c and call volley__conn_gone once nothing of it
     * is in flight any more (which closes the socket). */
    void (*end)(volley_conn *c);
    /* Hand released receive buffers back (loop->bufs.rel). */
    void (*bufs_back)(volley_loop *l);
    /* Submit what is prepared, wait up to timeout_ns nanoseconds for
     * something to happen (0: do not wait; negative: no limit) and report
     * it: 0 or a negative errno. */
    int (*wait)(volley_loop *l, int64_t timeout_ns);
    /* Watch datagram entry i's volley_fd for readability (on), or stop
     * (off: nothing of the watch is in flight when it returns). Readiness
     * is reported through volley__loop_dgram_owe. 0 or a negative errno. */
    int (*dgram_watch)(volley_loop *l, uint32_t i, bool on);
    /* Watch entry i's socket for room to send, once (on: report through
     * volley__loop_dgram_owe with VOLLEY_WAIT_SEND and clear out_armed),
     * or stop (off: nothing of it in flight when it returns). */
    int (*dgram_out)(volley_loop *l, uint32_t i, bool on);
    /* Report completions already posted, without a system call (NULL:
     * the backend has none to report outside wait). */
    void (*reap)(volley_loop *l);
    /* Watch l->wake.rfd for readability from now on, reporting it through
     * volley__loop_woken. 0 or a negative errno. */
    int (*wake_watch)(volley_loop *l);
};

struct volley_loop {
    struct volley__host host; /* first: what a datagram socket on it sees */
    const struct volley__loop_ops *ops;
    void *be;
    struct volley__bufs bufs;
    struct volley__segpool pool;
    struct volley__timers timers;
    struct volley__conn_block **blocks;
    uint32_t nslots, cap_blocks;
    volley_conn *free_conns;        /* released, kept for reuse (via ready_next) */
    struct volley__direct *free_rx; /* DIRECT records kept for reuse */
    struct volley__copts *copts;    /* the option sets in use */
    volley_conn *ready_head, *ready_tail;
    volley_conn *flush_head;
    volley_conn *reap; /* CLOSED returned: released at the next poll */
    uint32_t linger_ms;
    uint32_t sendq_budget; /* bytes of copies all queues may hold */
    uint32_t starved;      /* connections waiting for a free buffer */
    uint32_t over;         /* connections paused over their share (C_OVER) */
    bool closing;          /* volley_loop_close runs: events are dropped */
    struct volley_loop_stats st;
    struct volley_conn_stats gone; /* counters of released connections */
    struct volley__dgram *dgrams;  /* datagram sockets on the loop */
    uint32_t ndgrams, cap_dgrams;  /* entries in use up to, allocated */
    uint32_t dgrams_owed;          /* entries with pending bits */
    volley_timer **utimers;        /* every open loop timer */
    uint32_t ntimers, cap_timers;
    volley_timer *fired_head, *fired_tail; /* timers owing a TIMER event */
    struct volley__notify wake;            /* volley_loop_wake writes here */
    int woken;                             /* a wake was written, not seen */
    bool wake_owed;                        /* a WAKE event is owed */
};

/* ---- the stream core's own calls, between its files ------------------- */

#define VOLLEY__EV(t)        (1u << (t))
#define VOLLEY__STATE_FREE   0xff /* struct volley_conn.state of a free slot */
#define VOLLEY__NS_PER_MS    1000000LL
#define VOLLEY__NS_PER_S     1000000000LL
#define VOLLEY__SENDQ_MAX    (1u << 20) /* defaults of the options */
#define VOLLEY__READQ_MAX    (256u << 10)
#define VOLLEY__SENDQ_BUDGET (16u << 20)
/* Which TIMEOUT events are owed, next to the VOLLEY__EV() bits of
 * c->pending. */
#define VOLLEY__P_TO_READ  (1u << 16)
#define VOLLEY__P_TO_DRAIN (1u << 17)

/* conn.c: a connection's life. */
/* A new connection in a free slot (or a new slot), or NULL (-ENOMEM). */
VOLLEY_INTERNAL volley_conn *volley__conn_new(volley_loop *l);
/* Everything of c back to the loop; its slot waits for reuse. */
VOLLEY_INTERNAL void volley__conn_release(volley_conn *c);
/* c's options (volley_conn_opts), checked, and the listen backlog they
 * ask for in *backlog (may be NULL): 0 or -EINVAL/-E2BIG, or -ENOMEM (a
 * DIRECT connection's record). */
VOLLEY_INTERNAL int volley__conn_opts(volley_conn *c, const struct volley_conn_opts *src,
                                      int *backlog);
/* c (accepted by lis) takes lis's options: 0 or -ENOMEM. */
VOLLEY_INTERNAL int volley__conn_opts_from(volley_conn *c, const volley_conn *lis);
/* c owes an event of type (one of VOLLEY_EV_*). */
VOLLEY_INTERNAL void volley__conn_ready(volley_conn *c, unsigned type);
/* c has bytes or a FIN to send at the next turn. */
VOLLEY_INTERNAL void volley__conn_flush_later(volley_conn *c);
/* Keep c's place in the deadline heap in step with its deadlines. */
VOLLEY_INTERNAL void volley__conn_timer_sync(volley_conn *c);
/* A deadline timeout_ms from now (0: none, for a negative timeout). */
VOLLEY_INTERNAL int64_t volley__deadline_in(int timeout_ms);
/* A wait of ns nanoseconds in the milliseconds of an int timeout: rounded
 * up (a wait that ends early finds nothing due), at most INT_MAX; a
 * negative ns (no limit) stays -1. */
static inline int volley__ms_ceil(int64_t ns)
{
    if (ns < 0)
        return -1;
    int64_t ms = (ns + VOLLEY__NS_PER_MS - 1) / VOLLEY__NS_PER_MS;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}
/* Finished lent buffers waiting for their SENT events. */
VOLLEY_INTERNAL uint32_t volley__conn_done_count(const volley_conn *c);
/* Drop what c has queued, counted; lent buffers get their SENT (with an
 * error) before CLOSED. */
VOLLEY_INTERNAL void volley__conn_drop_queue(volley_conn *c);
/* Tear c down with err as its CLOSED error (reset: with an RST). */
VOLLEY_INTERNAL void volley__conn_end(volley_conn *c, int err, bool reset);
/* After the caller closed or shut c: the FIN once everything queued went
 * out; after a close, the linger that follows. */
VOLLEY_INTERNAL void volley__conn_close_progress(volley_conn *c);
/* Up to n events from the ready list into ev. */
VOLLEY_INTERNAL unsigned volley__loop_emit(volley_loop *l, struct volley_event *ev,
                                           unsigned n);
VOLLEY_INTERNAL void volley__stats_add(struct volley_conn_stats *to,
                                       const struct volley__cstats *s);
/* Writes that went out in a send with others. */
VOLLEY_INTERNAL uint64_t volley__stats_coalesced(const struct volley_conn_stats *s);
/* timer.c: a loop timer's deadline n is due (it is out of the heap):
 * owe its TIMER event, and start its next period. */
VOLLEY_INTERNAL void volley__timer_due(volley_loop *l, struct volley__timer *n,
                                       int64_t now);
/* Up to n TIMER events, then a WAKE event when one is owed. */
VOLLEY_INTERNAL unsigned volley__timer_emit(volley_loop *l, struct volley_event *ev,
                                            unsigned n);
/* The loop closes: free every timer. */
VOLLEY_INTERNAL void volley__timer_free_all(volley_loop *l);
/* The address a dial connects to: the peer's, or the local socket's path
 * (its length in *len). */
VOLLEY_INTERNAL const struct sockaddr *volley__conn_peer_sa(const volley_conn *c,
                                                            socklen_t *len);
/* listen.c: c's socket is about to close: a local listener removes the
 * socket file it made, if it is still that file. */
VOLLEY_INTERNAL void volley__conn_unlink(volley_conn *c);
/* read.c: turn the backend's receiving on or off as c should be now. */
VOLLEY_INTERNAL void volley__conn_recv_sync(volley_conn *c);

/* Backends call these. */
VOLLEY_INTERNAL void volley__loop_accepted(volley_conn *lis, int fd);
VOLLEY_INTERNAL void volley__conn_connected(volley_conn *c, int err);
/* len bytes arrived in buffer id (the connection owns it from now). */
VOLLEY_INTERNAL void volley__conn_data(volley_conn *c, uint32_t id, uint32_t len);
/* Receiving ended: 0 the peer's FIN, -ENOBUFS no buffer was free (the
 * core restarts it when buffers come back), another negative errno the
 * connection failed. */
VOLLEY_INTERNAL void volley__conn_recv_end(volley_conn *c, int res);
/* The receive into the caller's buffer ended: res bytes (> 0), 0 the
 * peer's FIN, or a negative errno. */
VOLLEY_INTERNAL void volley__conn_received(volley_conn *c, ssize_t res);
/* The send in flight ended: res bytes went (res > 0), or it failed. */
VOLLEY_INTERNAL void volley__conn_sent(volley_conn *c, ssize_t res);
/* Nothing of c is in flight: close its socket (with a reset when ABORT is
 * set) and owe CLOSED. */
VOLLEY_INTERNAL void volley__conn_gone(volley_conn *c);
/* The wake-up's eventfd became readable: drain it and owe WAKE. */
VOLLEY_INTERNAL void volley__loop_woken(volley_loop *l);
/* The loop's clock: monotonic nanoseconds. */
VOLLEY_INTERNAL int64_t volley__loop_now(void);
/* A listener's accept failed with err (not EAGAIN): counted; when the
 * process or the system is out of descriptors or memory, accepting pauses
 * for VOLLEY__ACCEPT_PAUSE_MS (a retry at once would only fail again, and
 * spin), otherwise it goes on. */
VOLLEY_INTERNAL void volley__loop_accept_failed(volley_conn *lis, int err);

/* user_data of io_uring operations and epoll events: slot, generation and
 * operation in 64 bits, so a completion for a reused slot is recognised. */
#define VOLLEY__TAG(c, op)                                                               \
    (((uint64_t)((c)->gen & 0xffffffu) << 40) | ((uint64_t)(c)->slot << 8) |             \
     (uint64_t)(op))
#define VOLLEY__TAG_OP(t)   ((unsigned)((t)&0xffu))
#define VOLLEY__TAG_SLOT(t) ((uint32_t)(((t) >> 8) & 0xffffffffu))
#define VOLLEY__TAG_GEN(t)  ((uint32_t)((t) >> 40))
/* A datagram entry's operations: operation 0xff, the entry's index and
 * generation, and the socket's own 32-bit tag (0: the readiness watch). */
#define VOLLEY__OP_DGRAM 0xffu
#define VOLLEY__DTAG(i, gen, sub)                                                        \
    (((uint64_t)(sub) << 32) | ((uint64_t)(uint8_t)(gen) << 24) |                        \
     ((uint64_t)((i)&0xffffu) << 8) | VOLLEY__OP_DGRAM)
#define VOLLEY__DTAG_SUB(t) ((uint32_t)((t) >> 32))
/* The sub tag of the watch for room to send (no socket's own tag is this). */
#define VOLLEY__DSUB_OUT 0xfffffffeu
/* The operation of the wake-up's watch (not a connection's, nor a
 * datagram entry's). */
#define VOLLEY__OP_WAKE 0xfeu
/* The datagram entry a tag names, or NULL when it moved on. */
VOLLEY_INTERNAL struct volley__dgram *volley__loop_dgram(volley_loop *l, uint64_t tag);
/* Entry d owes a DGRAM event with these VOLLEY_WAIT_* bits. */
VOLLEY_INTERNAL void volley__loop_dgram_owe(volley_loop *l, struct volley__dgram *d,
                                            unsigned bits);
/* host.c: up to n DGRAM events into ev; and the loop's closing. */
VOLLEY_INTERNAL unsigned volley__loop_dgram_emit(volley_loop *l, struct volley_event *ev,
                                                 unsigned n);
VOLLEY_INTERNAL void volley__loop_dgram_release(volley_loop *l);
/* host.c: the loop as a host of datagram sockets (l->host.ops). */
extern const struct volley__host_ops volley__loop_host_ops VOLLEY_INTERNAL;
#if VOLLEY_HAVE_URING
/* The ring of a uring loop, NULL for any other. */
struct io_uring;
VOLLEY_INTERNAL struct io_uring *volley__loop_ring(volley_loop *l);
/* A uring loop's socket table: the sockets in it now, and its entries
 * (*size; 0: it has none). 0 and 0 for any other loop. */
VOLLEY_INTERNAL uint32_t volley__loop_fixed(volley_loop *l, uint32_t *size);
#endif

/* The connection in slot i (i < l->nslots). */
static inline volley_conn *volley__loop_slot(const volley_loop *l, uint32_t i)
{
    return &l->blocks[i / VOLLEY__CONN_BLOCK]->c[i % VOLLEY__CONN_BLOCK];
}

/* The connection a tag names, or NULL when its slot moved on. */
VOLLEY_INTERNAL volley_conn *volley__loop_conn(volley_loop *l, uint64_t tag);

#if VOLLEY_HAVE_URING
extern const struct volley__loop_ops volley__loop_uring VOLLEY_INTERNAL;
#endif
extern const struct volley__loop_ops volley__loop_epoll VOLLEY_INTERNAL;

#endif /* VOLLEY_LOOP_H */
