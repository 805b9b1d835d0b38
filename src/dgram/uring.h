/* SPDX-License-Identifier: MIT */
/* Private to the io_uring backend (uring.c: the ring, receive, waiting and
 * the socket's lifetime; uring_send.c: send slots, the payload arena and
 * volley_send): its state and tags. */
#ifndef VOLLEY_DGRAM_URING_H
#define VOLLEY_DGRAM_URING_H

#include "dgram.h"

#include <liburing.h>
#include <pthread.h>

/* A multishot receive is tagged with its generation: after it is moved to
 * another thread, the old one's last completions must not disarm the new.
 * Tags fit 32 bits: on a loop's ring they ride in the upper half of the
 * user_data (volley__guest.tag_base). */
#define GEN_MASK      0x3fffffu
#define TAG_RECV(gen) (((uint64_t)(gen) << 8) | 1u)
#define TAG_CANCEL    2ull
#define TAG_SEND      (1ull << 31) /* | slot index */
#define BGID          7

#define SQ_ENTRIES 1024
#define CQ_ENTRIES 8192
/* sockaddr_in6 (28) rounded up so that the payload, after the 16-byte
 * io_uring_recvmsg_out, the name and VOLLEY__RX_CTRL, starts on a cache
 * line of the (page-aligned) buffer: 16 + 48 + 256 = 320 */
#define NAME_SPACE    48
#define DEFAULT_ARENA (4u << 20)

enum slot_state { SLOT_FREE, SLOT_INFLIGHT, SLOT_NOTIF, SLOT_DONE };

struct slot {
    struct msghdr m;
    struct iovec iov;
    struct sockaddr_in6 name;
    uint8_t ctrl[VOLLEY__TX_CTRL] __attribute__((aligned(8)));
    struct volley_addr peer; /* for the error report if it fails late */
    size_t arena_off;        /* where its payload copy sits */
    size_t charge;           /* arena bytes to release with this slot */
    unsigned ndgram;
    size_t bytes;
    int res;
    uint8_t state;
    bool gso;
    bool zc;
    bool call_owned; /* the sending call will account for it */
    bool completed;  /* its result completion arrived */
};

struct uring {
    struct io_uring *ring; /* own, or the loop's (shared) */
    struct io_uring own;
    bool shared;       /* on a loop's ring: its polls bring the completions */
    uint64_t tag_base; /* shared: the loop's tag for this socket */
    unsigned bgid;     /* the buffer group (shared rings have several) */
    int efd;
    bool efd_dirty; /* completions were reaped since the eventfd was reset */
    /* receive */
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    bool br_registered;
    uint8_t *bufs;
    size_t buf_size;
    unsigned nbufs;
    struct msghdr rxhdr; /* namelen/controllen template the kernel uses */
    bool armed;
    uint32_t gen;       /* generation of the current multishot */
    pthread_t armed_by; /* its receive work runs in this thread */
    uint16_t *rxq;      /* buffer ids whose completions were reaped, in order */
    int32_t *rxq_res;
    uint32_t *rxq_flags;
    unsigned rxq_head, rxq_n;
    uint16_t *loaned; /* buffer ids the caller holds until the next recv */
    unsigned nloaned;
    /* send */
    struct slot *slots;
    unsigned nslots;
    unsigned long slot_head, slot_tail; /* FIFO: allocate at head */
    uint8_t *arena;
    size_t arena_size, a_head, a_used;
    size_t tx_want; /* arena bytes of the message that found no room */
    bool sock_full; /* the last send stopped on the socket's EAGAIN */
    size_t zc_threshold;
};

static inline struct uring *U(volley_sock *s)
{
    return s->priv;
}

/* An operation's user_data: its own tag, or on a loop's ring the loop's
 * tag for this socket carrying it. */
static inline uint64_t utag(const struct uring *u, uint64_t tag)
{
    return u->shared ? u->tag_base | (tag << 32) : tag;
}

static inline void *buf_addr(struct uring *u, unsigned bid)
{
    return u->bufs + (size_t)bid * u->buf_size;
}

/* uring.c */
/* Take every posted completion. */
VOLLEY_INTERNAL void volley__uring_reap(volley_sock *s);
/* Submit queued entries (or flush overflowed completions). */
VOLLEY_INTERNAL int volley__uring_enter(volley_sock *s, uint64_t *syscalls);

/* uring_send.c */
VOLLEY_INTERNAL void volley__uring_slots_release(struct uring *u);
/* Slots in flight. */
VOLLEY_INTERNAL unsigned volley__uring_slots_busy(const struct uring *u);
VOLLEY_INTERNAL void volley__uring_on_send_cqe(volley_sock *s,
                                               const struct io_uring_cqe *cqe);
/* Room for the message that found none last time, or else for a good
 * share of a batch. */
VOLLEY_INTERNAL bool volley__uring_can_send(const struct uring *u);
VOLLEY_INTERNAL int volley__uring_send(volley_sock *s, const struct volley_dgram *d,
                                       unsigned n);

#endif /* VOLLEY_DGRAM_URING_H */
