/* SPDX-License-Identifier: MIT */
/* Private to libvolley: the pure parts of the stream path. They make no
 * system call, so they are unit-tested and fuzzed without sockets:
 *
 *   bufs    the loop's receive buffers: one slab cut into count buffers,
 *           lent to connections and given back in order
 *   readq   a connection's received bytes: a chain of buffer spans
 *   sendq   a connection's queued bytes: copied chunks and lent buffers
 *   timers  a min-heap of connection deadlines
 */
#ifndef VOLLEY_STREAM_H
#define VOLLEY_STREAM_H

#include "../base/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* ---- receive buffers ---------------------------------------------------- */

/* At most count buffers of size bytes in one slab (mem): the loop's
 * receive budget. Only the first live ones are in use; the rest of the
 * slab is address space the kernel backs with memory only once a buffer
 * is grown into use (volley__bufs_grow), so memory follows demand up to
 * the budget. A live buffer is either free (the uring buffer ring or the
 * epoll free stack holds it), or lent to one connection's readq, or
 * released: consumed (or new) and waiting in rel[] until the backend hands
 * it back (uring: to the buffer ring; epoll: to its free stack) once per
 * loop turn. */
struct volley__bufs {
    uint8_t *mem;     /* count * size bytes */
    uint32_t size;    /* bytes per buffer */
    uint32_t count;   /* a power of two: the budget */
    uint32_t live;    /* buffers in use: ids 0 .. live - 1 */
    uint32_t held;    /* buffers in readqs now */
    uint32_t holders; /* readqs holding at least one buffer */
    /* per buffer, while lent: */
    int32_t *next; /* next buffer in the same readq, -1 at the tail */
    uint32_t *off; /* first unread byte */
    uint32_t *len; /* end of the bytes received into it */
    /* consumed buffers the backend has not taken back yet: */
    uint32_t *rel;
    uint32_t nrel;
    /* free stack, used by backends that pick buffers themselves (epoll): */
    uint32_t *free;
    uint32_t nfree;
};

/* Allocate the slab (page-aligned) and the tables. Returns 0 or -ENOMEM
 * (nothing left allocated). The first live buffers (at most count) start
 * on the free stack. */
VOLLEY_INTERNAL int volley__bufs_init(struct volley__bufs *b, uint32_t count,
                                      uint32_t size, uint32_t live);
/* Put more of the budget to use: live doubles (at most count), and the new
 * buffers go to rel[] for the backend to take in. Returns how many. */
VOLLEY_INTERNAL uint32_t volley__bufs_grow(struct volley__bufs *b);
VOLLEY_INTERNAL void volley__bufs_free(struct volley__bufs *b);
static inline uint8_t *volley__buf_addr(const struct volley__bufs *b, uint32_t id)
{
    return b->mem + (size_t)id * b->size;
}
/* Epoll's own allocation: pop a free buffer, -1 when none. */
VOLLEY_INTERNAL int32_t volley__bufs_take(struct volley__bufs *b);
/* Give a buffer back to the free stack (epoll). */
VOLLEY_INTERNAL void volley__bufs_put(struct volley__bufs *b, uint32_t id);

/* ---- a connection's received bytes -------------------------------------- */

/* Every buffer of the chain is full but the first (partly read) and the
 * last (being filled), so a connection holds at most 2 + bytes / size
 * buffers however small the pieces its peer sends. */
struct volley__readq {
    int32_t head, tail; /* buffer ids, -1 when empty */
    uint32_t nbufs;     /* buffers in the chain */
    size_t bytes;       /* unread bytes in the chain */
};
#define VOLLEY__READQ_INIT                                                               \
    {                                                                                    \
        .head = -1, .tail = -1, .nbufs = 0, .bytes = 0                                   \
    }

/* Append len bytes (0 < len <= b->size) just received into buffer id.
 * What fits in the free end of the chain's last buffer is copied there;
 * when all of it fits, buffer id goes straight to b->rel, else it joins
 * the chain holding the rest. Returns the bytes copied. */
VOLLEY_INTERNAL uint32_t volley__readq_push(struct volley__readq *q,
                                            struct volley__bufs *b, uint32_t id,
                                            uint32_t len);
/* Copy up to n unread bytes into dst (dst may be NULL: consume only) and
 * consume them; every buffer emptied goes to b->rel. Returns the count. */
VOLLEY_INTERNAL size_t volley__readq_read(struct volley__readq *q, struct volley__bufs *b,
                                          void *dst, size_t n);
/* Point up to max iovecs at the unread bytes, in order. Returns how many. */
VOLLEY_INTERNAL unsigned volley__readq_peek(const struct volley__readq *q,
                                            const struct volley__bufs *b,
                                            struct iovec *iov, unsigned max);
/* Release every buffer (to b->rel); returns the bytes dropped. */
VOLLEY_INTERNAL size_t volley__readq_clear(struct volley__readq *q,
                                           struct volley__bufs *b);

/* ---- a connection's queued bytes ---------------------------------------- */

/* A segment is a run of bytes to send: either part of a copy chunk the
 * queue owns (COPY) or a buffer lent by the caller (REF, with its tag).
 * Segments and chunks come from a pool shared by the loop's connections;
 * the pool grows in blocks and never shrinks until it is freed, so a
 * steady state allocates nothing. */
#define VOLLEY__SEG_COPY    0
#define VOLLEY__SEG_REF     1
#define VOLLEY__CHUNK       16384u /* bytes per copy chunk */
#define VOLLEY__CHUNK_SMALL 256u   /* bytes per small copy chunk */
struct volley__seg {
    struct volley__seg *next;
    const uint8_t *data; /* first byte not yet sent */
    size_t len;          /* bytes not yet sent */
    size_t total;        /* REF: the whole buffer's length (for SENT) */
    uint64_t tag;        /* REF: the caller's tag */
    uint8_t *chunk;      /* COPY: the chunk holding data */
    uint32_t room;       /* COPY, tail only: free bytes after data + len */
    uint8_t kind;        /* VOLLEY__SEG_* */
    bool small;          /* COPY: chunk is a small one (VOLLEY__CHUNK_SMALL
                            bytes), else VOLLEY__CHUNK */
};
struct volley__segpool {
    struct volley__seg *free_segs;
    void **free_chunks; /* a stack of free chunks */
    size_t nfree_chunks, cap_chunks;
    void **blocks; /* everything allocated, for volley__segpool_free */
    size_t nblocks, cap_blocks;
    size_t chunks_out; /* chunks lent to queues now */
    /* With small_on (the loop's pool), a write into an empty queue that
     * fits a small chunk takes one: many connections that each answer a
     * little at once then hold 256 bytes each, not 16 KiB, and the pool
     * does not keep 16 KiB per connection that was busy at once. */
    bool small_on;
    void *free_small; /* free small chunks, each holding the next's address */
    size_t nfree_small;
    size_t small_out; /* small chunks lent to queues now */
};
/* Bytes of chunks lent to queues now. */
static inline size_t volley__segpool_mem(const struct volley__segpool *p)
{
    return p->chunks_out * VOLLEY__CHUNK + p->small_out * VOLLEY__CHUNK_SMALL;
}
struct volley__sendq {
    struct volley__seg *head, *tail;
    size_t bytes;  /* queued, not yet sent */
    uint32_t refs; /* REF segments queued or done (until popped) */
    /* REF segments finished (sent, or dropped by a clear), oldest first,
     * waiting for their SENT events: */
    struct volley__seg *done_head, *done_tail;
};
#define VOLLEY__SENDQ_INIT                                                               \
    {                                                                                    \
        0                                                                                \
    }

VOLLEY_INTERNAL void volley__segpool_free(struct volley__segpool *p);
/* Append a copy of n bytes (n may exceed a chunk: several chunks are
 * used); the tail chunk's room is filled first; into an empty queue, a
 * small chunk when the pool has them on and n fits one. Returns 0 or -ENOMEM (the
 * queue is then unchanged). */
VOLLEY_INTERNAL int volley__sendq_write(struct volley__sendq *q,
                                        struct volley__segpool *p, const void *buf,
                                        size_t n);
/* Append a lent buffer. Returns 0 or -ENOMEM (unchanged). n may be 0: the
 * segment then finishes at the next advance (or at once if the queue is
 * empty: it goes straight to the done list). */
VOLLEY_INTERNAL int volley__sendq_write_ref(struct volley__sendq *q,
                                            struct volley__segpool *p, const void *buf,
                                            size_t n, uint64_t tag);
/* Point up to max iovecs at the first queued bytes, at most limit bytes in
 * all; returns how many entries, and the bytes they cover in *bytes. */
VOLLEY_INTERNAL unsigned volley__sendq_gather(const struct volley__sendq *q,
                                              struct iovec *iov, unsigned max,
                                              size_t limit, size_t *bytes);
/* The kernel took n bytes (n <= q->bytes) from the front: finished COPY
 * segments give their chunk back to the pool, finished REF segments move
 * to the done list. */
VOLLEY_INTERNAL void volley__sendq_advance(struct volley__sendq *q,
                                           struct volley__segpool *p, size_t n);
/* Drop everything queued: chunks go back to the pool, REF segments to the
 * done list (their SENT event reports the error). Returns the bytes
 * dropped. */
VOLLEY_INTERNAL size_t volley__sendq_clear(struct volley__sendq *q,
                                           struct volley__segpool *p);
/* Pop the oldest finished REF segment: its tag and total length. Returns
 * false when there is none. The segment goes back to the pool. */
VOLLEY_INTERNAL bool volley__sendq_pop_done(struct volley__sendq *q,
                                            struct volley__segpool *p, uint64_t *tag,
                                            size_t *total);

/* ---- deadlines ---------------------------------------------------------- */

/* A binary min-heap of (deadline, owner). Each owner embeds one
 * volley__timer and so has at most one entry (its earliest deadline);
 * pos is its index in the heap, or -1 when it is not in it. */
struct volley__timer {
    int64_t at; /* deadline, monotonic nanoseconds */
    int32_t pos;
    uint32_t kind; /* the owner's kind: the heap never looks at it */
};
struct volley__timers {
    struct volley__timer **heap;
    uint32_t n, cap;
};
/* Put t in the heap at deadline at, or move it there if it is in already.
 * Returns 0 or -ENOMEM (then t is unchanged). */
VOLLEY_INTERNAL int volley__timers_set(struct volley__timers *h, struct volley__timer *t,
                                       int64_t at);
/* Make room for n timers, so that setting up to n never fails. Returns 0
 * or -ENOMEM (the heap unchanged). */
VOLLEY_INTERNAL int volley__timers_reserve(struct volley__timers *h, uint32_t n);
/* Take t out of the heap (no-op when it is not in it). */
VOLLEY_INTERNAL void volley__timers_del(struct volley__timers *h,
                                        struct volley__timer *t);
/* The earliest timer, or NULL. */
static inline struct volley__timer *volley__timers_top(const struct volley__timers *h)
{
    return h->n ? h->heap[0] : NULL;
}
VOLLEY_INTERNAL void volley__timers_free(struct volley__timers *h);

#if VOLLEY_TESTING
/* Tests: every allocation this part makes (buffers, pool, heap) is
 * counted in allocs; with fail_in set to n > 0, the nth one from then on
 * fails (and fail_in is back to 0). */
extern unsigned long volley__stream_buf_allocs VOLLEY_INTERNAL;
extern unsigned volley__stream_buf_fail_in VOLLEY_INTERNAL;
#endif

#endif /* VOLLEY_STREAM_H */
