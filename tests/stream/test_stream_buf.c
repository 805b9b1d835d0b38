/* SPDX-License-Identifier: MIT */
/* The stream path's pure parts without sockets: receive buffers lent and
 * released in order, the read queue against a byte-stream model, the send
 * queue built of copies and lent buffers, sent in random partial amounts
 * and reassembled byte for byte, its finished-buffer list, its pool in a
 * steady state (nothing allocated), every allocation failing in turn
 * (nothing changed), and the deadline heap against a brute-force model. */
#include "stream/stream.h"
#include "t.h"

#include <stdint.h>

#define CHUNK VOLLEY__CHUNK

static uint64_t seed = 0x5eed;

static size_t rnd(size_t n)
{
    return n ? t_rand(&seed) % n : 0;
}

/* ---- receive buffers ---------------------------------------------------- */

static int bufs_take_put(void)
{
    struct volley__bufs b;
    T_EQ(volley__bufs_init(&b, 8, 4096, 8), 0);
    T_EQ((uintptr_t)b.mem % 4096, 0);
    T_EQ(b.count, 8);
    T_EQ(b.size, 4096);
    T_EQ(b.nfree, 8);
    T_EQ(b.nrel, 0);
    for (int32_t i = 0; i < 8; i++) {
        T_EQ(volley__bufs_take(&b), i);
        T_EQ(volley__buf_addr(&b, (uint32_t)i) - b.mem, (long long)i * 4096);
    }
    T_EQ(volley__bufs_take(&b), -1);
    T_EQ(volley__bufs_take(&b), -1);
    /* a stack: the last given back is the next taken */
    volley__bufs_put(&b, 5);
    volley__bufs_put(&b, 2);
    T_EQ(b.nfree, 2);
    T_EQ(volley__bufs_take(&b), 2);
    T_EQ(volley__bufs_take(&b), 5);
    T_EQ(volley__bufs_take(&b), -1);
    /* every byte of the slab is writable */
    memset(b.mem, 0xab, (size_t)b.count * b.size);
    volley__bufs_free(&b);
    T_ASSERT(!b.mem && !b.next && !b.free && b.count == 0);
    volley__bufs_free(&b); /* twice is harmless */
    return 0;
}

static int bufs_enomem(void)
{
    /* the slab and five tables: each allocation fails once in turn */
    for (unsigned k = 1;; k++) {
        struct volley__bufs b;
        unsigned long before = volley__stream_buf_allocs;
        volley__stream_buf_fail_in = k;
        int r = volley__bufs_init(&b, 16, 2048, 16);
        volley__stream_buf_fail_in = 0;
        if (r == 0) {
            T_EQ(k, 7);
            T_EQ(volley__stream_buf_allocs - before, 6);
            T_EQ(b.nfree, 16);
            volley__bufs_free(&b);
            break;
        }
        T_EQ(r, -ENOMEM);
        T_ASSERT(!b.mem && !b.next && !b.off && !b.len && !b.rel && !b.free);
        T_ASSERT(k < 7);
    }
    return 0;
}

/* ---- a connection's received bytes -------------------------------------- */

/* Fill buffer id with len bytes of the stream from offset at. */
static void recv_into(struct volley__bufs *b, struct volley__readq *q, uint32_t id,
                      uint32_t len, size_t at)
{
    uint8_t *p = volley__buf_addr(b, id);
    for (uint32_t i = 0; i < len; i++)
        p[i] = t_byte(7, at + i);
    volley__readq_push(q, b, id, len);
}

static bool is_stream(const uint8_t *p, size_t len, size_t at)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != t_byte(7, at + i))
            return false;
    return true;
}

static int readq_basic(void)
{
    struct volley__bufs b;
    struct volley__readq q = VOLLEY__READQ_INIT;
    T_EQ(volley__bufs_init(&b, 4, 100, 4), 0);
    struct iovec iov[4];
    uint8_t out[400];
    T_EQ(volley__readq_peek(&q, &b, iov, 4), 0);
    T_EQ(volley__readq_read(&q, &b, out, 10), 0);
    recv_into(&b, &q, 0, 100, 0);
    recv_into(&b, &q, 1, 30, 100); /* the first is full: a buffer of its own */
    recv_into(&b, &q, 2, 1, 130);  /* copied to the end of buffer 1 */
    T_EQ(q.bytes, 131);
    T_EQ(q.head, 0);
    T_EQ(q.tail, 1);
    T_EQ(q.nbufs, 2);
    T_ASSERT(b.held == 2 && b.holders == 1);
    T_ASSERT(b.nrel == 1 && b.rel[0] == 2);
    b.nrel = 0;
    T_EQ(volley__readq_peek(&q, &b, iov, 4), 2);
    T_ASSERT(iov[0].iov_base == b.mem && iov[0].iov_len == 100);
    T_ASSERT(iov[1].iov_base == b.mem + 100 && iov[1].iov_len == 31);
    T_EQ(volley__readq_peek(&q, &b, iov, 1), 1);
    T_EQ(volley__readq_peek(&q, &b, iov, 0), 0);
    T_EQ(volley__readq_read(&q, &b, out, 0), 0); /* n 0: nothing happens */
    /* within the first buffer */
    T_EQ(volley__readq_read(&q, &b, out, 40), 40);
    T_ASSERT(is_stream(out, 40, 0));
    T_EQ(b.nrel, 0);
    T_EQ(volley__readq_peek(&q, &b, iov, 1), 1);
    T_ASSERT(iov[0].iov_base == b.mem + 40 && iov[0].iov_len == 60);
    /* across the rest of the first and into the second */
    T_EQ(volley__readq_read(&q, &b, out, 70), 70);
    T_ASSERT(is_stream(out, 70, 40));
    T_EQ(b.nrel, 1);
    T_EQ(b.rel[0], 0);
    T_EQ(q.bytes, 21);
    /* consume only, then more than there is */
    T_EQ(volley__readq_read(&q, &b, NULL, 5), 5);
    T_EQ(volley__readq_read(&q, &b, out, 400), 16);
    T_ASSERT(is_stream(out, 16, 115));
    T_EQ(b.nrel, 2);
    T_EQ(b.rel[1], 1);
    T_ASSERT(q.head == -1 && q.tail == -1 && q.bytes == 0 && q.nbufs == 0);
    T_ASSERT(b.held == 0 && b.holders == 0);
    /* the queue works again after emptying */
    b.nrel = 0;
    recv_into(&b, &q, 3, 50, 0);
    T_EQ(volley__readq_read(&q, &b, out, 50), 50);
    T_ASSERT(is_stream(out, 50, 0));
    T_ASSERT(b.nrel == 1 && b.rel[0] == 3 && q.head == -1);
    volley__bufs_free(&b);
    return 0;
}

static int readq_clear(void)
{
    struct volley__bufs b;
    struct volley__readq q = VOLLEY__READQ_INIT;
    T_EQ(volley__bufs_init(&b, 8, 64, 8), 0);
    T_EQ(volley__readq_clear(&q, &b), 0);
    T_EQ(b.nrel, 0);
    static const uint32_t ids[] = {6, 2, 7, 0};
    for (unsigned i = 0; i < 4; i++) /* full buffers: no piece joins another */
        recv_into(&b, &q, ids[i], 64, 0);
    T_EQ(volley__readq_read(&q, &b, NULL, 3), 3);
    T_EQ(volley__readq_clear(&q, &b), 4 * 64 - 3);
    T_EQ(b.nrel, 4);
    for (unsigned i = 0; i < 4; i++)
        T_EQ(b.rel[i], ids[i]);
    T_ASSERT(q.head == -1 && q.tail == -1 && q.bytes == 0);
    T_EQ(volley__readq_read(&q, &b, NULL, 10), 0);
    volley__bufs_free(&b);
    return 0;
}

/* A peer sending one byte per segment: every piece arrives in a buffer of
 * its own (as the kernel hands them out) and costs bytes, not buffers. */
static int readq_dribble(void)
{
    struct volley__bufs b;
    struct volley__readq q = VOLLEY__READQ_INIT;
    T_EQ(volley__bufs_init(&b, 8, 512, 8), 0);
    size_t at = 0;
    for (int i = 0; i < 2000; i++) {
        int32_t id = volley__bufs_take(&b);
        T_ASSERT(id >= 0); /* one held, the others come back each step */
        recv_into(&b, &q, (uint32_t)id, 1, at++);
        for (uint32_t k = 0; k < b.nrel; k++)
            volley__bufs_put(&b, b.rel[k]);
        b.nrel = 0;
        T_EQ(q.nbufs, (uint32_t)(at + 511) / 512);
        T_EQ(b.held, q.nbufs);
    }
    T_EQ(q.bytes, 2000);
    /* a piece that does not fit is split: the rest starts a buffer */
    int32_t id = volley__bufs_take(&b);
    T_ASSERT(id >= 0);
    recv_into(&b, &q, (uint32_t)id, 300, at);
    T_EQ(q.nbufs, 5);
    T_EQ(b.off[id], 48); /* 2000 = 3 * 512 + 464: 48 bytes filled the end */
    struct iovec iov[8];
    T_EQ(volley__readq_peek(&q, &b, iov, 8), 5);
    T_EQ(iov[3].iov_len, 512);
    T_EQ(iov[4].iov_len, 252);
    uint8_t out[2300];
    T_EQ(volley__readq_read(&q, &b, out, sizeof out), 2300);
    T_ASSERT(is_stream(out, 2300, 0));
    T_ASSERT(q.nbufs == 0 && b.held == 0 && b.holders == 0);
    volley__bufs_free(&b);
    return 0;
}

/* The budget is count buffers; only live of them circulate, and growing
 * puts the next ones to use through rel[], up to the budget. */
static int bufs_grow(void)
{
    struct volley__bufs b;
    T_EQ(volley__bufs_init(&b, 16, 256, 3), 0);
    T_EQ(b.live, 3);
    T_EQ(b.nfree, 3);
    T_EQ(volley__bufs_take(&b), 0);
    T_EQ(volley__bufs_take(&b), 1);
    T_EQ(volley__bufs_take(&b), 2);
    T_EQ(volley__bufs_take(&b), -1);
    T_EQ(volley__bufs_grow(&b), 3);
    T_ASSERT(b.live == 6 && b.nrel == 3);
    T_ASSERT(b.rel[0] == 3 && b.rel[1] == 4 && b.rel[2] == 5);
    b.nrel = 0;
    T_EQ(volley__bufs_grow(&b), 6);
    T_EQ(volley__bufs_grow(&b), 4); /* up to the budget, not past it */
    T_EQ(b.live, 16);
    T_EQ(volley__bufs_grow(&b), 0);
    T_EQ(b.nrel, 10);
    volley__bufs_free(&b);
    /* live is at least one and at most the budget */
    T_EQ(volley__bufs_init(&b, 4, 256, 0), 0);
    T_EQ(b.live, 1);
    volley__bufs_free(&b);
    T_EQ(volley__bufs_init(&b, 4, 256, 99), 0);
    T_EQ(b.live, 4);
    volley__bufs_free(&b);
    return 0;
}

/* Two connections share the buffers; random receives, reads, peeks and
 * consumes against the byte stream each should see, with the backend
 * taking released buffers back after every step. */
struct rconn {
    struct volley__readq q;
    size_t in, out;     /* stream offsets received, read */
    uint32_t chain[64]; /* ids in the chain, oldest first */
    uint32_t left[64];  /* unread bytes of each */
    uint32_t end[64];   /* where the bytes received into each end */
    unsigned nchain;
};

static void rconn_consumed(struct rconn *c, size_t n, uint32_t *want, unsigned *nwant)
{
    c->out += n;
    while (n) {
        size_t take = n < c->left[0] ? n : c->left[0];
        c->left[0] -= (uint32_t)take;
        n -= take;
        if (c->left[0] == 0) {
            want[(*nwant)++] = c->chain[0];
            memmove(c->chain, c->chain + 1, --c->nchain * sizeof *c->chain);
            memmove(c->left, c->left + 1, c->nchain * sizeof *c->left);
            memmove(c->end, c->end + 1, c->nchain * sizeof *c->end);
        }
    }
}

/* The model of a push: what fits in the last buffer's free end goes there;
 * a buffer whose bytes all fit is released at once. */
static void rconn_pushed(struct rconn *c, uint32_t id, uint32_t len, uint32_t size,
                         uint32_t *want, unsigned *nwant)
{
    uint32_t copied = 0;
    if (c->nchain) {
        unsigned t = c->nchain - 1;
        copied = size - c->end[t] < len ? size - c->end[t] : len;
        c->end[t] += copied;
        c->left[t] += copied;
    }
    if (copied == len) {
        want[(*nwant)++] = id;
    } else {
        c->chain[c->nchain] = id;
        c->left[c->nchain] = len - copied;
        c->end[c->nchain++] = len;
    }
    c->in += len;
}

static void rconn_peek(const struct rconn *c, const struct volley__bufs *b)
{
    struct iovec iov[8];
    unsigned max = (unsigned)rnd(9);
    unsigned k = volley__readq_peek(&c->q, b, iov, max);
    T_EQ(k, c->nchain < max ? c->nchain : max);
    size_t at = c->out;
    for (unsigned i = 0; i < k; i++) {
        T_EQ(iov[i].iov_len, c->left[i]);
        T_ASSERT(is_stream(iov[i].iov_base, iov[i].iov_len, at));
        at += iov[i].iov_len;
    }
}

static void rconn_step(struct rconn *c, struct volley__bufs *b)
{
    static uint8_t out[4096];
    uint32_t want[64];
    unsigned nwant = 0;
    unsigned op = (unsigned)rnd(4);
    if (op == 0 && c->nchain < 64) {
        int32_t id = volley__bufs_take(b);
        if (id < 0)
            return;
        /* small pieces half the time, as a peer dribbling bytes sends */
        uint32_t len = 1 + (uint32_t)rnd(rnd(2) ? 16 : b->size);
        recv_into(b, &c->q, (uint32_t)id, len, c->in);
        rconn_pushed(c, (uint32_t)id, len, b->size, want, &nwant);
    } else if (op == 1 || op == 2) {
        size_t n = rnd(sizeof out + 1);
        size_t got = volley__readq_read(&c->q, b, op == 1 ? out : NULL, n);
        T_EQ(got, n < c->in - c->out ? n : c->in - c->out);
        if (op == 1)
            T_ASSERT(is_stream(out, got, c->out));
        rconn_consumed(c, got, want, &nwant);
    } else {
        rconn_peek(c, b);
    }
    T_EQ(b->nrel, nwant);
    for (unsigned i = 0; i < nwant; i++)
        T_EQ(b->rel[i], want[i]);
    T_EQ(c->q.bytes, c->in - c->out);
    T_EQ(c->q.head, c->nchain ? (int32_t)c->chain[0] : -1);
    T_EQ(c->q.tail, c->nchain ? (int32_t)c->chain[c->nchain - 1] : -1);
    T_EQ(c->q.nbufs, c->nchain);
    /* full but for the first and the last */
    for (unsigned i = 1; i + 1 < c->nchain; i++)
        T_EQ(c->end[i], b->size);
}

static int readq_random(void)
{
    struct volley__bufs b;
    T_EQ(volley__bufs_init(&b, 32, 700, 32), 0);
    struct rconn c[2];
    memset(c, 0, sizeof c);
    c[0].q = c[1].q = (struct volley__readq)VOLLEY__READQ_INIT;
    for (int step = 0; step < 200000; step++) {
        rconn_step(&c[rnd(2)], &b);
        for (uint32_t i = 0; i < b.nrel; i++)
            volley__bufs_put(&b, b.rel[i]);
        b.nrel = 0;
        T_EQ(b.held, c[0].nchain + c[1].nchain);
        T_EQ(b.holders, (c[0].nchain > 0) + (c[1].nchain > 0));
    }
    T_ASSERT(c[0].in > 500000 && c[1].in > 500000);
    for (int i = 0; i < 2; i++)
        T_EQ(volley__readq_clear(&c[i].q, &b), c[i].in - c[i].out);
    T_EQ(b.nfree + b.nrel, b.count);
    volley__bufs_free(&b);
    return 0;
}

/* ---- a connection's queued bytes ---------------------------------------- */

/* Bytes lent by REF segments: they stay put for the whole program. */
static uint8_t lent[1 << 20];

static void lent_init(void)
{
    for (size_t i = 0; i < sizeof lent; i++)
        lent[i] = (uint8_t)(i * 2654435761u >> 13);
}

static size_t nsegs(const struct volley__seg *s)
{
    size_t n = 0;
    for (; s; s = s->next)
        n++;
    return n;
}

/* Gather everything queued into out (at most cap bytes); returns bytes. */
static size_t flatten(const struct volley__sendq *q, uint8_t *out, size_t cap)
{
    static struct iovec iov[16384];
    size_t bytes;
    unsigned k = volley__sendq_gather(q, iov, T_COUNT(iov), cap, &bytes);
    T_ASSERT(k < T_COUNT(iov));
    size_t at = 0;
    for (unsigned i = 0; i < k; i++) {
        T_ASSERT(iov[i].iov_len > 0);
        memcpy(out + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    T_EQ(at, bytes);
    return at;
}

static int sendq_copy(void)
{
    struct volley__segpool p = {0};
    struct volley__sendq q = VOLLEY__SENDQ_INIT;
    static uint8_t src[3 * CHUNK + 100], out[sizeof src];
    t_fill(src, sizeof src, 3);
    /* smaller than a chunk: one segment, the rest of the chunk is room */
    T_EQ(volley__sendq_write(&q, &p, src, 100), 0);
    T_ASSERT(q.head && q.head == q.tail && q.head->kind == VOLLEY__SEG_COPY);
    T_EQ(q.head->len, 100);
    T_EQ(q.head->room, CHUNK - 100);
    T_ASSERT(q.head->data == q.head->chunk);
    /* the room fills before another chunk is taken */
    T_EQ(volley__sendq_write(&q, &p, src + 100, CHUNK - 100), 0);
    T_EQ(nsegs(q.head), 1);
    T_EQ(q.head->room, 0);
    T_EQ(p.chunks_out, 1);
    T_EQ(volley__sendq_write(&q, &p, src + CHUNK, 1), 0);
    T_EQ(nsegs(q.head), 2);
    /* larger than a chunk: the room, then whole chunks, then a short one */
    T_EQ(volley__sendq_write(&q, &p, src + CHUNK + 1, 2 * CHUNK + 99), 0);
    T_EQ(nsegs(q.head), 4);
    T_EQ(p.chunks_out, 4);
    T_EQ(q.tail->len, 100);
    T_EQ(q.tail->room, CHUNK - 100);
    T_EQ(q.bytes, sizeof src);
    T_EQ(volley__sendq_write(&q, &p, src, 0), 0); /* nothing */
    T_EQ(q.bytes, sizeof src);
    T_EQ(flatten(&q, out, SIZE_MAX), sizeof src);
    T_ASSERT(!memcmp(out, src, sizeof src));
    /* only the tail keeps room */
    for (struct volley__seg *s = q.head; s != q.tail; s = s->next)
        T_EQ(s->room, 0);
    volley__sendq_advance(&q, &p, sizeof src);
    T_ASSERT(!q.head && !q.tail && q.bytes == 0 && p.chunks_out == 0);
    T_ASSERT(!q.done_head);
    volley__segpool_free(&p);
    T_ASSERT(!p.blocks && p.nblocks == 0);
    return 0;
}

/* The loop's pool (small_on): a write into an empty queue that fits a
 * small chunk takes one; what follows fills its room, then whole chunks;
 * a larger first write, or one behind queued bytes, takes whole chunks. */
static int sendq_small(void)
{
    struct volley__segpool p = {.small_on = true};
    struct volley__sendq q = VOLLEY__SENDQ_INIT;
    static uint8_t out[2 * CHUNK];
    T_EQ(volley__sendq_write(&q, &p, lent, 100), 0);
    T_ASSERT(q.head && q.head == q.tail && q.head->small);
    T_EQ(q.head->room, VOLLEY__CHUNK_SMALL - 100);
    T_EQ(p.small_out, 1);
    T_EQ(p.chunks_out, 0);
    T_EQ(volley__segpool_mem(&p), VOLLEY__CHUNK_SMALL);
    /* the room, then a whole chunk for the rest */
    T_EQ(volley__sendq_write(&q, &p, lent + 100, 300), 0);
    T_EQ(nsegs(q.head), 2);
    T_EQ(q.head->room, 0);
    T_ASSERT(!q.tail->small);
    T_EQ(q.tail->len, 400 - VOLLEY__CHUNK_SMALL);
    T_EQ(q.tail->room, CHUNK - (400 - VOLLEY__CHUNK_SMALL));
    T_EQ(p.chunks_out, 1);
    T_EQ(flatten(&q, out, SIZE_MAX), 400);
    T_ASSERT(!memcmp(out, lent, 400));
    volley__sendq_advance(&q, &p, 400);
    T_ASSERT(!q.head && p.small_out == 0 && p.chunks_out == 0);
    /* exactly a small chunk, then one byte more */
    T_EQ(volley__sendq_write(&q, &p, lent, VOLLEY__CHUNK_SMALL), 0);
    T_ASSERT(q.head->small && q.head->room == 0);
    T_EQ(volley__sendq_clear(&q, &p), VOLLEY__CHUNK_SMALL);
    T_EQ(volley__sendq_write(&q, &p, lent, VOLLEY__CHUNK_SMALL + 1), 0);
    T_ASSERT(!q.head->small && p.small_out == 0 && p.chunks_out == 1);
    /* behind queued bytes (here a lent buffer), no small chunk */
    T_EQ(volley__sendq_clear(&q, &p), VOLLEY__CHUNK_SMALL + 1);
    T_EQ(volley__sendq_write_ref(&q, &p, lent, 10, 7), 0);
    T_EQ(volley__sendq_write(&q, &p, lent, 10), 0);
    T_ASSERT(!q.tail->small && p.chunks_out == 1);
    T_EQ(volley__sendq_clear(&q, &p), 20);
    T_ASSERT(volley__sendq_pop_done(&q, &p, &(uint64_t){0}, &(size_t){0}));
    /* the small chunks' first block failing leaves the queue empty */
    struct volley__segpool p2 = {.small_on = true};
    for (unsigned k = 1; k <= 10; k++) {
        volley__stream_buf_fail_in = k;
        int r = volley__sendq_write(&q, &p2, lent, 10);
        volley__stream_buf_fail_in = 0;
        if (r == 0)
            break;
        T_EQ(r, -ENOMEM);
        T_ASSERT(!q.head && q.bytes == 0 && p2.small_out == 0);
    }
    T_ASSERT(q.head && q.head->small);
    T_EQ(volley__sendq_clear(&q, &p2), 10);
    T_EQ(p2.small_out, 0);
    /* a steady state takes nothing more: the same chunk comes back */
    unsigned long allocs = volley__stream_buf_allocs;
    for (int i = 0; i < 1000; i++) {
        T_EQ(volley__sendq_write(&q, &p2, lent, 1 + (size_t)i % 256), 0);
        volley__sendq_advance(&q, &p2, 1 + (size_t)i % 256);
    }
    T_EQ(volley__stream_buf_allocs, allocs);
    volley__segpool_free(&p2);
    volley__segpool_free(&p);
    T_ASSERT(!p.blocks && !p.free_small && p.nblocks == 0);
    /* a pool that has whole chunks free cuts one: nothing allocated */
    struct volley__segpool p3 = {0};
    T_EQ(volley__sendq_write(&q, &p3, lent, 1000), 0);
    T_EQ(volley__sendq_clear(&q, &p3), 1000);
    size_t whole = p3.nfree_chunks;
    p3.small_on = true;
    allocs = volley__stream_buf_allocs;
    T_EQ(volley__sendq_write(&q, &p3, lent, 37), 0);
    T_ASSERT(q.head->small);
    T_EQ(volley__stream_buf_allocs, allocs);
    T_EQ(p3.nfree_chunks, whole - 1);
    T_EQ(p3.nfree_small, CHUNK / VOLLEY__CHUNK_SMALL - 1);
    T_EQ(flatten(&q, out, SIZE_MAX), 37);
    T_ASSERT(!memcmp(out, lent, 37));
    T_EQ(volley__sendq_clear(&q, &p3), 37);
    volley__segpool_free(&p3);
    return 0;
}

/* A partly sent tail chunk still takes bytes behind what is unsent. */
static int sendq_room_after_send(void)
{
    struct volley__segpool p = {0};
    struct volley__sendq q = VOLLEY__SENDQ_INIT;
    uint8_t src[300], out[300];
    t_fill(src, sizeof src, 9);
    T_EQ(volley__sendq_write(&q, &p, src, 200), 0);
    volley__sendq_advance(&q, &p, 150);
    T_EQ(q.head->len, 50);
    T_EQ(volley__sendq_write(&q, &p, src + 200, 100), 0);
    T_EQ(nsegs(q.head), 1);
    T_EQ(q.head->room, CHUNK - 300);
    T_EQ(flatten(&q, out, SIZE_MAX), 150);
    T_ASSERT(!memcmp(out, src + 150, 150));
    /* behind a REF the next copy starts a chunk of its own */
    T_EQ(volley__sendq_write_ref(&q, &p, lent, 10, 1), 0);
    T_EQ(q.head->room, 0);
    T_EQ(volley__sendq_write(&q, &p, src, 10), 0);
    T_EQ(nsegs(q.head), 3);
    T_EQ(p.chunks_out, 2);
    T_EQ(volley__sendq_clear(&q, &p), 170);
    T_EQ(p.chunks_out, 0);
    volley__segpool_free(&p);
    return 0;
}

/* Expect the done list to give exactly these (tag, total) pairs. */
static void expect_done(struct volley__sendq *q, struct volley__segpool *p,
                        const uint64_t *tags, const size_t *totals, unsigned n)
{
    uint64_t tag;
    size_t total;
    for (unsigned i = 0; i < n; i++) {
        t_context("done %u", i);
        T_ASSERT(volley__sendq_pop_done(q, p, &tag, &total));
        T_EQ(tag, tags[i]);
        T_EQ(total, totals[i]);
    }
    t_context(NULL);
    T_ASSERT(!volley__sendq_pop_done(q, p, &tag, &total));
    T_ASSERT(!q->done_head && !q->done_tail);
}

static int sendq_zero_ref(void)
{
    struct volley__segpool p = {0};
    struct volley__sendq q = VOLLEY__SENDQ_INIT;
    uint8_t src[10] = {0};
    /* on an empty queue: finished at once */
    T_EQ(volley__sendq_write_ref(&q, &p, lent, 0, 11), 0);
    T_ASSERT(!q.head && q.bytes == 0);
    expect_done(&q, &p, (uint64_t[]){11}, (size_t[]){0}, 1);
    /* behind bytes: finished when the advance reaches it, not before */
    T_EQ(volley__sendq_write(&q, &p, src, 10), 0);
    T_EQ(volley__sendq_write_ref(&q, &p, lent, 0, 12), 0);
    T_EQ(volley__sendq_write_ref(&q, &p, lent, 0, 13), 0);
    T_EQ(volley__sendq_write_ref(&q, &p, lent, 5, 14), 0);
    T_EQ(volley__sendq_write_ref(&q, &p, lent, 0, 15), 0);
    struct iovec iov[8];
    size_t bytes;
    T_EQ(volley__sendq_gather(&q, iov, 8, SIZE_MAX, &bytes), 2); /* none empty */
    T_EQ(bytes, 15);
    volley__sendq_advance(&q, &p, 9);
    T_ASSERT(!q.done_head);
    volley__sendq_advance(&q, &p, 0); /* no empty one at the front yet */
    T_ASSERT(!q.done_head);
    volley__sendq_advance(&q, &p, 1);
    T_EQ(nsegs(q.done_head), 2);
    T_EQ(nsegs(q.head), 2);
    T_EQ(q.head->tag, 14);
    volley__sendq_advance(&q, &p, 5);
    T_ASSERT(!q.head && !q.tail && q.bytes == 0);
    expect_done(&q, &p, (uint64_t[]){12, 13, 14, 15}, (size_t[]){0, 0, 5, 0}, 4);
    /* advance(0) flushes empty ones at the front (a queue built by hand,
     * as the public calls never leave one there) */
    T_EQ(volley__sendq_write_ref(&q, &p, lent, 3, 16), 0);
    T_EQ(volley__sendq_write_ref(&q, &p, lent, 0, 17), 0);
    q.head->len = 0;
    q.bytes = 0;
    volley__sendq_advance(&q, &p, 0);
    T_ASSERT(!q.head);
    expect_done(&q, &p, (uint64_t[]){16, 17}, (size_t[]){3, 0}, 2);
    volley__segpool_free(&p);
    return 0;
}

static int sendq_clear_refs(void)
{
    struct volley__segpool p = {0};
    struct volley__sendq q = VOLLEY__SENDQ_INIT;
    uint8_t src[CHUNK + 5];
    t_fill(src, sizeof src, 1);
    T_EQ(volley__sendq_clear(&q, &p), 0);
    T_EQ(volley__sendq_write_ref(&q, &p, lent, 100, 1), 0);
    T_EQ(volley__sendq_write(&q, &p, src, sizeof src), 0);
    T_EQ(volley__sendq_write_ref(&q, &p, lent + 7, 0, 2), 0);
    T_EQ(volley__sendq_write_ref(&q, &p, lent + 9, 50, 3), 0);
    T_EQ(volley__sendq_write(&q, &p, src, 20), 0);
    volley__sendq_advance(&q, &p, 30);
    T_EQ(q.bytes, 100 + sizeof src + 50 + 20 - 30);
    T_EQ(volley__sendq_clear(&q, &p), 100 + sizeof src + 50 + 20 - 30);
    T_ASSERT(!q.head && !q.tail && q.bytes == 0);
    T_EQ(p.chunks_out, 0);
    /* every lent buffer is reported, oldest first, with its whole length */
    expect_done(&q, &p, (uint64_t[]){1, 2, 3}, (size_t[]){100, 0, 50}, 3);
    T_EQ(volley__sendq_clear(&q, &p), 0);
    /* a cleared queue is a fresh one */
    T_EQ(volley__sendq_write(&q, &p, src, 3), 0);
    T_EQ(q.bytes, 3);
    T_EQ(volley__sendq_clear(&q, &p), 3);
    volley__segpool_free(&p);
    return 0;
}

static int sendq_gather_cuts(void)
{
    struct volley__segpool p = {0};
    struct volley__sendq q = VOLLEY__SENDQ_INIT;
    static uint8_t src[2 * CHUNK];
    t_fill(src, sizeof src, 2);
    T_EQ(volley__sendq_write_ref(&q, &p, lent, 100, 1), 0);
    T_EQ(volley__sendq_write(&q, &p, src, sizeof src), 0);
    T_EQ(volley__sendq_write_ref(&q, &p, lent + 500, 300, 2), 0);
    struct iovec iov[8];
    size_t bytes = 1;
    T_EQ(volley__sendq_gather(&q, iov, 0, SIZE_MAX, &bytes), 0);
    T_EQ(bytes, 0);
    T_EQ(volley__sendq_gather(&q, iov, 8, 0, &bytes), 0);
    T_EQ(bytes, 0);
    /* max cuts at whole segments */
    T_EQ(volley__sendq_gather(&q, iov, 2, SIZE_MAX, &bytes), 2);
    T_EQ(bytes, 100 + CHUNK);
    T_ASSERT(iov[0].iov_base == lent && iov[0].iov_len == 100);
    /* limit cuts inside one: the last entry is partial */
    T_EQ(volley__sendq_gather(&q, iov, 8, 150, &bytes), 2);
    T_EQ(bytes, 150);
    T_EQ(iov[1].iov_len, 50);
    T_EQ(volley__sendq_gather(&q, iov, 8, 100, &bytes), 1);
    T_EQ(bytes, 100);
    T_EQ(volley__sendq_gather(&q, iov, 8, 2 * CHUNK + 101, &bytes), 4);
    T_EQ(iov[3].iov_len, 1);
    T_ASSERT(iov[3].iov_base == lent + 500);
    T_EQ(volley__sendq_gather(&q, iov, 8, SIZE_MAX, &bytes), 4);
    T_EQ(bytes, q.bytes);
    /* after a partial advance the first entry starts mid-segment */
    volley__sendq_advance(&q, &p, 160);
    T_EQ(volley__sendq_gather(&q, iov, 1, SIZE_MAX, &bytes), 1);
    T_ASSERT(iov[0].iov_base == q.head->chunk + 60 && bytes == CHUNK - 60);
    T_ASSERT(!memcmp(iov[0].iov_base, src + 60, bytes));
    T_EQ(volley__sendq_clear(&q, &p), 2 * CHUNK + 400 - 160);
    volley__segpool_free(&p);
    return 0;
}

/* ---- the send stream against a model ------------------------------------ */

/* The bytes queued and not yet sent, and the lent buffers in order, each
 * finished when the bytes sent reach its end. */
struct smodel {
    uint8_t *want; /* [0, wlen): unsent bytes, oldest first */
    size_t wlen, cap;
    uint64_t sent, written;
    struct {
        uint64_t end, tag;
        size_t total;
    } ref[4096];
    unsigned nref, popped;
    uint64_t next_tag;
};

/* Lent buffers the model has finished (all bytes to their end sent). */
static unsigned model_done(const struct smodel *m)
{
    unsigned k = m->popped;
    while (k < m->nref && m->ref[k].end <= m->sent)
        k++;
    return k;
}

static void model_append(struct smodel *m, const uint8_t *p, size_t n)
{
    T_ASSERT(m->wlen + n <= m->cap);
    memcpy(m->want + m->wlen, p, n);
    m->wlen += n;
    m->written += n;
}

static void check_against(const struct volley__sendq *q, const struct smodel *m)
{
    static uint8_t out[1 << 20];
    T_EQ(q->bytes, m->wlen);
    T_EQ(nsegs(q->done_head), model_done(m) - m->popped);
    if (m->wlen <= sizeof out && rnd(16) == 0) {
        T_EQ(flatten(q, out, SIZE_MAX), m->wlen);
        T_ASSERT(!memcmp(out, m->want, m->wlen));
    }
    T_ASSERT(!q->head || q->head->len > 0);
    T_ASSERT(!q->head == !q->tail && !q->done_head == !q->done_tail);
}

/* Gather up to a random limit, "send" a random part of it, advance. */
static void send_some(struct volley__sendq *q, struct volley__segpool *p,
                      struct smodel *m)
{
    static uint8_t wire[64 * CHUNK];
    struct iovec iov[64];
    size_t bytes, limit = rnd(4) ? rnd(3 * CHUNK) : SIZE_MAX;
    unsigned k = volley__sendq_gather(q, iov, 1 + (unsigned)rnd(64), limit, &bytes);
    size_t n = rnd(bytes + 1), at = 0;
    for (unsigned i = 0; i < k && at < n; i++) {
        size_t take = iov[i].iov_len < n - at ? iov[i].iov_len : n - at;
        memcpy(wire + at, iov[i].iov_base, take);
        at += take;
    }
    T_ASSERT(!memcmp(wire, m->want, n));
    volley__sendq_advance(q, p, n);
    memmove(m->want, m->want + n, m->wlen - n);
    m->wlen -= n;
    m->sent += n;
}

static void stream_op(struct volley__sendq *q, struct volley__segpool *p,
                      struct smodel *m, unsigned op)
{
    static uint8_t src[3 * CHUNK];
    if (op < 3 && m->wlen < 512 * 1024) { /* a copy */
        size_t n = rnd(4) ? rnd(2000) : rnd(sizeof src);
        for (size_t i = 0; i < n; i++)
            src[i] = (uint8_t)t_rand(&seed);
        T_EQ(volley__sendq_write(q, p, src, n), 0);
        model_append(m, src, n);
    } else if (op < 5 && m->wlen < 512 * 1024 && m->nref < T_COUNT(m->ref)) {
        size_t n = rnd(3) ? rnd(5000) : 0, off = rnd(sizeof lent - n);
        T_EQ(volley__sendq_write_ref(q, p, lent + off, n, ++m->next_tag), 0);
        model_append(m, lent + off, n);
        m->ref[m->nref].end = m->written;
        m->ref[m->nref].tag = m->next_tag;
        m->ref[m->nref++].total = n;
    } else if (op < 9) {
        send_some(q, p, m);
    } else if (op < 11) {
        uint64_t tag;
        size_t total;
        if (volley__sendq_pop_done(q, p, &tag, &total)) {
            T_ASSERT(m->popped < model_done(m));
            T_EQ(tag, m->ref[m->popped].tag);
            T_EQ(total, m->ref[m->popped++].total);
        } else {
            T_EQ(model_done(m), m->popped);
        }
    } else if (rnd(8) == 0) {
        T_EQ(volley__sendq_clear(q, p), m->wlen);
        m->sent += m->wlen;
        m->wlen = 0;
    }
}

static void model_init(struct smodel *m)
{
    memset(m, 0, sizeof *m);
    m->cap = 1 << 20;
    m->want = malloc(m->cap);
    T_ASSERT(m->want);
}

static void model_finish(struct volley__sendq *q, struct volley__segpool *p,
                         struct smodel *m)
{
    T_EQ(volley__sendq_clear(q, p), m->wlen);
    m->sent += m->wlen;
    m->wlen = 0;
    uint64_t tag;
    size_t total;
    while (volley__sendq_pop_done(q, p, &tag, &total))
        T_EQ(tag, m->ref[m->popped++].tag);
    T_EQ(m->popped, m->nref);
    free(m->want);
}

static int sendq_stream(void)
{
    struct volley__segpool p = {0};
    struct volley__sendq q[2] = {VOLLEY__SENDQ_INIT, VOLLEY__SENDQ_INIT};
    static struct smodel m[2];
    model_init(&m[0]);
    model_init(&m[1]);
    for (int step = 0; step < 60000; step++) {
        unsigned c = (unsigned)rnd(2);
        stream_op(&q[c], &p, &m[c], (unsigned)rnd(12));
        check_against(&q[c], &m[c]);
    }
    T_ASSERT(m[0].sent > 10 * CHUNK && m[1].sent > 10 * CHUNK);
    T_ASSERT(m[0].nref > 100 && m[0].popped > 100);
    model_finish(&q[0], &p, &m[0]);
    model_finish(&q[1], &p, &m[1]);
    T_EQ(p.chunks_out, 0); /* the pool is shared: both queues gave theirs */
    volley__segpool_free(&p);
    return 0;
}

/* After warm-up, write/advance/pop cycles allocate nothing. */
static int sendq_steady_state(void)
{
    struct volley__segpool p = {0};
    struct volley__sendq q = VOLLEY__SENDQ_INIT;
    static uint8_t src[4 * CHUNK];
    t_fill(src, sizeof src, 4);
    size_t blocks = 0;
    unsigned long allocs = 0;
    for (int round = 0; round < 20000; round++) {
        if (round == 100) {
            blocks = p.nblocks;
            allocs = volley__stream_buf_allocs;
        }
        size_t n = (size_t)round * 7919 % sizeof src;
        T_EQ(volley__sendq_write(&q, &p, src, n), 0);
        T_EQ(volley__sendq_write_ref(&q, &p, lent, round % 3 ? 300 : 0, 1), 0);
        T_EQ(volley__sendq_write(&q, &p, src, 17), 0);
        volley__sendq_advance(&q, &p, q.bytes / 2);
        if (round % 5 == 0)
            volley__sendq_advance(&q, &p, q.bytes);
        uint64_t tag;
        size_t total;
        while (volley__sendq_pop_done(&q, &p, &tag, &total))
            ;
    }
    T_ASSERT(blocks > 0);
    T_EQ(p.nblocks, blocks);
    T_EQ(volley__stream_buf_allocs, allocs);
    volley__sendq_clear(&q, &p);
    volley__segpool_free(&p);
    return 0;
}

/* ---- allocation failures ------------------------------------------------ */

struct snap {
    size_t bytes, n, ndone, chunks_out;
    struct volley__seg seg[80];
};

static void take_snap(struct snap *s, const struct volley__sendq *q,
                      const struct volley__segpool *p)
{
    memset(s, 0, sizeof *s);
    s->bytes = q->bytes;
    s->ndone = nsegs(q->done_head);
    s->chunks_out = p->chunks_out;
    for (const struct volley__seg *x = q->head; x; x = x->next) {
        T_ASSERT(s->n < T_COUNT(s->seg));
        s->seg[s->n++] = *x;
    }
}

static void same_snap(const struct snap *a, const struct volley__sendq *q,
                      const struct volley__segpool *p)
{
    struct snap b;
    take_snap(&b, q, p);
    T_EQ(a->bytes, b.bytes);
    T_EQ(a->n, b.n);
    T_EQ(a->ndone, b.ndone);
    T_EQ(a->chunks_out, b.chunks_out);
    for (size_t i = 0; i < a->n; i++) {
        t_context("segment %zu", i);
        T_ASSERT(a->seg[i].data == b.seg[i].data && a->seg[i].len == b.seg[i].len);
        T_ASSERT(a->seg[i].room == b.seg[i].room && a->seg[i].kind == b.seg[i].kind);
        T_ASSERT(a->seg[i].next == b.seg[i].next && a->seg[i].tag == b.seg[i].tag);
    }
    t_context(NULL);
}

/* A queue with a copy tail that has room, behind an empty lent buffer and
 * a copy, then extra one-byte lent buffers, all from a fresh pool. */
static void fail_setup(struct volley__sendq *q, struct volley__segpool *p, unsigned extra)
{
    T_EQ(volley__sendq_write(q, p, lent, 10), 0);
    T_EQ(volley__sendq_write_ref(q, p, lent, 0, 7), 0);
    for (unsigned i = 0; i < extra; i++)
        T_EQ(volley__sendq_write_ref(q, p, lent + i, 1, 8), 0);
    T_EQ(volley__sendq_write(q, p, lent + 10, CHUNK - 100), 0);
}

static void fail_teardown(struct volley__sendq *q, struct volley__segpool *p)
{
    uint64_t tag;
    size_t total;
    volley__sendq_clear(q, p);
    while (volley__sendq_pop_done(q, p, &tag, &total))
        ;
    T_ASSERT(!q->head && !q->done_head && p->chunks_out == 0);
    volley__segpool_free(p);
}

/* Fail each allocation op makes in turn, on the queue fail_setup builds;
 * after every failure the queue must be as it was. Returns how many
 * allocations op needed. */
static unsigned fail_each(unsigned extra,
                          int (*op)(struct volley__sendq *, struct volley__segpool *))
{
    static struct snap before;
    for (unsigned k = 1;; k++) {
        struct volley__segpool p = {0};
        struct volley__sendq q = VOLLEY__SENDQ_INIT;
        fail_setup(&q, &p, extra);
        take_snap(&before, &q, &p);
        volley__stream_buf_fail_in = k;
        int r = op(&q, &p);
        bool failed = volley__stream_buf_fail_in == 0;
        volley__stream_buf_fail_in = 0;
        if (r == 0) {
            T_ASSERT(!failed);
            fail_teardown(&q, &p);
            return k - 1;
        }
        t_context("allocation %u fails", k);
        T_EQ(r, -ENOMEM);
        T_ASSERT(failed);
        same_snap(&before, &q, &p);
        t_context(NULL);
        fail_teardown(&q, &p);
    }
}

static int write_small(struct volley__sendq *q, struct volley__segpool *p)
{
    return volley__sendq_write(q, p, lent, 50); /* fits the room */
}

static int write_big(struct volley__sendq *q, struct volley__segpool *p)
{
    return volley__sendq_write(q, p, lent, 40 * CHUNK + 3);
}

static int write_ref(struct volley__sendq *q, struct volley__segpool *p)
{
    return volley__sendq_write_ref(q, p, lent, 1, 1);
}

static int sendq_enomem(void)
{
    struct volley__sendq q = VOLLEY__SENDQ_INIT;
    /* into the tail's room: nothing to allocate */
    T_EQ(fail_each(0, write_small), 0);
    /* 41 chunks where 14 are free: two chunk blocks, the free stack grown
     * before each */
    T_EQ(fail_each(0, write_big), 4);
    /* the set-up took all 64 segments of the first block */
    T_EQ(fail_each(61, write_ref), 1);
    /* a failed write into a queue that holds much already */
    struct volley__segpool p = {0};
    T_EQ(volley__sendq_write(&q, &p, lent, 15 * CHUNK + 10), 0);
    struct snap before;
    take_snap(&before, &q, &p);
    volley__stream_buf_fail_in = 1;
    T_EQ(volley__sendq_write(&q, &p, lent, 2 * CHUNK), -ENOMEM);
    volley__stream_buf_fail_in = 0;
    same_snap(&before, &q, &p);
    /* and the same write then succeeds, in order */
    T_EQ(volley__sendq_write(&q, &p, lent, 2 * CHUNK), 0);
    static uint8_t out[17 * CHUNK + 10];
    T_EQ(flatten(&q, out, SIZE_MAX), sizeof out);
    T_ASSERT(!memcmp(out, lent, 15 * CHUNK + 10));
    T_ASSERT(!memcmp(out + 15 * CHUNK + 10, lent, 2 * CHUNK));
    volley__sendq_clear(&q, &p);
    volley__segpool_free(&p);
    return 0;
}

/* ---- deadlines ---------------------------------------------------------- */

enum { NT = 300 };

static void check_heap(const struct volley__timers *h, const struct volley__timer *t,
                       const bool *in, const int64_t *at)
{
    uint32_t count = 0;
    int64_t min = INT64_MAX;
    for (unsigned i = 0; i < NT; i++) {
        if (!in[i]) {
            T_EQ(t[i].pos, -1);
            continue;
        }
        count++;
        T_ASSERT(t[i].pos >= 0 && (uint32_t)t[i].pos < h->n);
        T_ASSERT(h->heap[t[i].pos] == &t[i]);
        T_EQ(t[i].at, at[i]);
        if (at[i] < min)
            min = at[i];
    }
    T_EQ(h->n, count);
    for (uint32_t i = 1; i < h->n; i++)
        T_ASSERT(h->heap[(i - 1) / 2]->at <= h->heap[i]->at);
    if (count)
        T_EQ(volley__timers_top(h)->at, min);
    else
        T_ASSERT(!volley__timers_top(h));
}

static int timers_model(void)
{
    struct volley__timers h = {0};
    static struct volley__timer t[NT];
    static bool in[NT];
    static int64_t at[NT];
    for (unsigned i = 0; i < NT; i++)
        t[i].pos = -1;
    for (int step = 0; step < 200000; step++) {
        unsigned i = (unsigned)rnd(NT), op = (unsigned)rnd(10);
        /* a narrow range of deadlines makes ties common */
        int64_t when = (int64_t)rnd(step % 2 ? 50 : 1u << 30) - 10;
        if (op < 5) {
            T_EQ(volley__timers_set(&h, &t[i], when), 0);
            in[i] = true;
            at[i] = when;
        } else if (op < 8) {
            volley__timers_del(&h, &t[i]);
            in[i] = false;
        } else if (volley__timers_top(&h)) { /* expire the earliest */
            struct volley__timer *top = volley__timers_top(&h);
            volley__timers_del(&h, top);
            in[top - t] = false;
        }
        check_heap(&h, t, in, at);
    }
    /* and everything drains in deadline order */
    int64_t last = INT64_MIN;
    struct volley__timer *top;
    while ((top = volley__timers_top(&h))) {
        T_ASSERT(top->at >= last);
        last = top->at;
        volley__timers_del(&h, top);
        T_EQ(top->pos, -1);
    }
    volley__timers_free(&h);
    T_ASSERT(!h.heap && h.n == 0 && h.cap == 0);
    return 0;
}

static int timers_edges(void)
{
    struct volley__timers h = {0};
    struct volley__timer a = {.pos = -1}, b = {.pos = -1}, z = {0};
    T_ASSERT(!volley__timers_top(&h));
    volley__timers_del(&h, &a); /* not in: nothing */
    T_EQ(a.pos, -1);
    /* a zeroed timer (pos 0) that was never set is not in the heap */
    T_EQ(volley__timers_set(&h, &a, 5), 0);
    volley__timers_del(&h, &z);
    T_EQ(h.n, 1);
    T_ASSERT(volley__timers_top(&h) == &a);
    T_EQ(volley__timers_set(&h, &z, 3), 0);
    T_EQ(h.n, 2);
    T_ASSERT(volley__timers_top(&h) == &z);
    /* moving one that is in: later, then earlier */
    T_EQ(volley__timers_set(&h, &b, 4), 0);
    T_EQ(volley__timers_set(&h, &z, 10), 0);
    T_ASSERT(volley__timers_top(&h) == &b);
    T_EQ(volley__timers_set(&h, &a, 1), 0);
    T_ASSERT(volley__timers_top(&h) == &a);
    T_EQ(h.n, 3);
    volley__timers_del(&h, &a);
    volley__timers_del(&h, &a);
    T_EQ(h.n, 2);
    T_ASSERT(volley__timers_top(&h) == &b);
    volley__timers_free(&h);
    return 0;
}

static int timers_enomem(void)
{
    struct volley__timers h = {0};
    static struct volley__timer t[40];
    for (unsigned i = 0; i < 40; i++)
        t[i].pos = -1;
    /* the first array, then its doubling, each fail once */
    volley__stream_buf_fail_in = 1;
    T_EQ(volley__timers_set(&h, &t[0], 9), -ENOMEM);
    T_ASSERT(t[0].pos == -1 && t[0].at == 0 && h.n == 0 && !h.heap);
    unsigned long before = volley__stream_buf_allocs;
    for (unsigned i = 0; i < 16; i++)
        T_EQ(volley__timers_set(&h, &t[i], 100 - i), 0);
    T_EQ(volley__stream_buf_allocs - before, 1);
    struct volley__timer **heap = h.heap;
    volley__stream_buf_fail_in = 1;
    T_EQ(volley__timers_set(&h, &t[16], 1), -ENOMEM);
    T_ASSERT(t[16].pos == -1 && t[16].at == 0);
    T_ASSERT(h.n == 16 && h.cap == 16 && h.heap == heap);
    T_ASSERT(volley__timers_top(&h) == &t[15]);
    /* moving one already in allocates nothing */
    volley__stream_buf_fail_in = 1;
    T_EQ(volley__timers_set(&h, &t[3], -5), 0);
    T_EQ(volley__stream_buf_fail_in, 1);
    volley__stream_buf_fail_in = 0;
    T_ASSERT(volley__timers_top(&h) == &t[3]);
    for (unsigned i = 16; i < 40; i++)
        T_EQ(volley__timers_set(&h, &t[i], (int64_t)i), 0);
    T_EQ(h.cap, 64);
    volley__timers_free(&h);

    /* room reserved ahead: setting that many allocates nothing; a failed
     * reserve leaves the heap as it was */
    struct volley__timers r = {0};
    static struct volley__timer u[100];
    volley__stream_buf_fail_in = 1;
    T_EQ(volley__timers_reserve(&r, 100), -ENOMEM);
    T_ASSERT(r.cap == 0 && !r.heap);
    T_EQ(volley__timers_reserve(&r, 100), 0);
    T_EQ(r.cap, 128);
    T_EQ(volley__timers_reserve(&r, 50), 0);
    T_EQ(r.cap, 128);
    volley__stream_buf_fail_in = 1; /* any allocation from here fails */
    for (unsigned i = 0; i < 100; i++) {
        u[i].pos = -1;
        T_EQ(volley__timers_set(&r, &u[i], (int64_t)(i * 7 % 100)), 0);
    }
    T_EQ(volley__stream_buf_fail_in, 1);
    volley__stream_buf_fail_in = 0;
    T_EQ(volley__timers_top(&r)->at, 0);
    volley__timers_free(&r);
    return 0;
}

int main(int argc, char **argv)
{
    lent_init();
    static const struct t_case cases[] = {
        T_CASE(bufs_take_put),  T_CASE(bufs_enomem),        T_CASE(readq_basic),
        T_CASE(readq_clear),    T_CASE(readq_random),       T_CASE(readq_dribble),
        T_CASE(bufs_grow),      T_CASE(sendq_copy),         T_CASE(sendq_room_after_send),
        T_CASE(sendq_zero_ref), T_CASE(sendq_clear_refs),   T_CASE(sendq_gather_cuts),
        T_CASE(sendq_stream),   T_CASE(sendq_steady_state), T_CASE(sendq_enomem),
        T_CASE(timers_model),   T_CASE(timers_edges),       T_CASE(timers_enomem),
        T_CASE(sendq_small),
    };
    struct t_run how = {.total_s = 120};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
