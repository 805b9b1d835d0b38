/* SPDX-License-Identifier: MIT */
/* The pure parts of the stream path (stream.h): receive buffers, the read
 * and send queues with their segment pool, and the deadline heap. No
 * system call here. Every allocation goes through one wrapper so the test
 * build can count them and fail any one of them; whatever can fail is
 * reserved before a queue is touched, so -ENOMEM leaves it as it was. */
#include "stream.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SEGS_PER_BLOCK   64u
#define CHUNKS_PER_BLOCK 16u
#define SMALL_PER_BLOCK  64u

#if VOLLEY_TESTING
unsigned long volley__stream_buf_allocs;
unsigned volley__stream_buf_fail_in;

/* Whether the allocation being made now is the one a test asked to fail. */
static bool fail_now(void)
{
    __atomic_add_fetch(&volley__stream_buf_allocs, 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(&volley__stream_buf_fail_in, __ATOMIC_RELAXED) == 0)
        return false;
    return __atomic_sub_fetch(&volley__stream_buf_fail_in, 1, __ATOMIC_RELAXED) == 0;
}
#else
static inline bool fail_now(void)
{
    return false;
}
#endif

static void *xmalloc(size_t n)
{
    return fail_now() ? NULL : malloc(n);
}

static void *xcalloc(size_t n, size_t size)
{
    return fail_now() ? NULL : calloc(n, size);
}

static void *xrealloc(void *p, size_t n)
{
    return fail_now() ? NULL : realloc(p, n);
}

/* volley__pages, failing when a test asks: receive buffers and copy
 * chunks are cut from such blocks. */
static void *xpages(size_t n)
{
    return fail_now() ? NULL : volley__pages(n);
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ---- receive buffers ---------------------------------------------------- */

/* A buffer consumed to its end (or newly live) waits in rel[] for the
 * backend. Every id is there at most once, so count slots never overflow. */
static void release(struct volley__bufs *b, uint32_t id)
{
    assert(b->nrel < b->count);
    b->rel[b->nrel++] = id;
}

int volley__bufs_init(struct volley__bufs *b, uint32_t count, uint32_t size,
                      uint32_t live)
{
    /* ids are int32_t in the chains, so count fits below 2^31 + 1 */
    assert(count > 0 && (count & (count - 1)) == 0 && count <= 1u << 31);
    assert(size > 0);
    memset(b, 0, sizeof *b);
    if ((size_t)count > SIZE_MAX / size)
        return -ENOMEM;
    if (!(b->mem = xpages((size_t)count * size)))
        return -ENOMEM;
    b->size = size;
    b->count = count;
    b->next = xcalloc(count, sizeof *b->next);
    b->off = xcalloc(count, sizeof *b->off);
    b->len = xcalloc(count, sizeof *b->len);
    b->rel = xcalloc(count, sizeof *b->rel);
    b->free = xcalloc(count, sizeof *b->free);
    if (!b->next || !b->off || !b->len || !b->rel || !b->free) {
        volley__bufs_free(b);
        return -ENOMEM;
    }
    b->live = live < 1 ? 1 : live > count ? count : live;
    /* the stack's top is buffer 0: buffers are taken in id order at first */
    for (uint32_t i = 0; i < b->live; i++)
        b->free[i] = b->live - 1 - i;
    for (uint32_t i = 0; i < count; i++)
        b->next[i] = -1;
    b->nfree = b->live;
    return 0;
}

uint32_t volley__bufs_grow(struct volley__bufs *b)
{
    uint32_t to = b->live > b->count / 2 ? b->count : b->live * 2;
    uint32_t n = to - b->live;
    /* rel[] has room: the ids not live are in no other list */
    for (; b->live < to; b->live++)
        release(b, b->live);
    return n;
}

void volley__bufs_free(struct volley__bufs *b)
{
    free(b->mem);
    free(b->next);
    free(b->off);
    free(b->len);
    free(b->rel);
    free(b->free);
    memset(b, 0, sizeof *b);
}

int32_t volley__bufs_take(struct volley__bufs *b)
{
    if (b->nfree == 0)
        return -1;
    return (int32_t)b->free[--b->nfree];
}

void volley__bufs_put(struct volley__bufs *b, uint32_t id)
{
    assert(id < b->count && b->nfree < b->count);
    b->free[b->nfree++] = id;
}

/* ---- a connection's received bytes -------------------------------------- */

/* Buffer id leaves q's chain (it was its head). */
static void unhold(struct volley__readq *q, struct volley__bufs *b, uint32_t id)
{
    assert(q->nbufs > 0 && b->held > 0);
    if (--q->nbufs == 0)
        b->holders--;
    b->held--;
    release(b, id);
}

uint32_t volley__readq_push(struct volley__readq *q, struct volley__bufs *b, uint32_t id,
                            uint32_t len)
{
    assert(id < b->live && len > 0 && len <= b->size);
    uint32_t copied = 0;
    if (q->tail >= 0) {
        /* A small piece must not pin a buffer of its own: fill the end of
         * the last one. Each byte is copied at most once, and only while
         * bytes wait unread (a reader that keeps up never has a tail). */
        uint32_t t = (uint32_t)q->tail, room = b->size - b->len[t];
        copied = room < len ? room : len;
        memcpy(volley__buf_addr(b, t) + b->len[t], volley__buf_addr(b, id), copied);
        b->len[t] += copied;
        q->bytes += copied;
        if (copied == len) {
            release(b, id);
            return copied;
        }
    }
    b->next[id] = -1;
    b->off[id] = copied;
    b->len[id] = len;
    if (q->tail >= 0)
        b->next[q->tail] = (int32_t)id;
    else
        q->head = (int32_t)id;
    q->tail = (int32_t)id;
    q->bytes += len - copied;
    if (q->nbufs++ == 0)
        b->holders++;
    b->held++;
    return copied;
}

size_t volley__readq_read(struct volley__readq *q, struct volley__bufs *b, void *dst,
                          size_t n)
{
    uint8_t *out = dst;
    size_t done = 0;
    while (done < n && q->head >= 0) {
        uint32_t id = (uint32_t)q->head;
        /* a buffer in the chain always has unread bytes */
        assert(b->off[id] < b->len[id]);
        size_t take = min_size(b->len[id] - b->off[id], n - done);
        if (out)
            memcpy(out + done, volley__buf_addr(b, id) + b->off[id], take);
        b->off[id] += (uint32_t)take;
        done += take;
        if (b->off[id] == b->len[id]) {
            q->head = b->next[id];
            if (q->head < 0)
                q->tail = -1;
            unhold(q, b, id);
        }
    }
    assert(done <= q->bytes);
    q->bytes -= done;
    return done;
}

unsigned volley__readq_peek(const struct volley__readq *q, const struct volley__bufs *b,
                            struct iovec *iov, unsigned max)
{
    unsigned k = 0;
    for (int32_t id = q->head; id >= 0 && k < max; id = b->next[id], k++) {
        iov[k].iov_base = volley__buf_addr(b, (uint32_t)id) + b->off[id];
        iov[k].iov_len = b->len[id] - b->off[id];
    }
    return k;
}

size_t volley__readq_clear(struct volley__readq *q, struct volley__bufs *b)
{
    size_t dropped = q->bytes;
    for (int32_t id = q->head, next; id >= 0; id = next) {
        next = b->next[id];
        unhold(q, b, (uint32_t)id);
    }
    q->head = q->tail = -1;
    q->bytes = 0;
    return dropped;
}

/* ---- the segment pool --------------------------------------------------- */

/* Room for one more block in the list of everything allocated. */
static int reserve_block_slot(struct volley__segpool *p)
{
    if (p->nblocks < p->cap_blocks)
        return 0;
    size_t cap = p->cap_blocks ? p->cap_blocks * 2 : 8;
    if (cap < p->cap_blocks || cap > SIZE_MAX / sizeof *p->blocks)
        return -ENOMEM;
    void **blocks = xrealloc(p->blocks, cap * sizeof *blocks);
    if (!blocks)
        return -ENOMEM;
    p->blocks = blocks;
    p->cap_blocks = cap;
    return 0;
}

static int grow_segs(struct volley__segpool *p)
{
    if (reserve_block_slot(p) < 0)
        return -ENOMEM;
    struct volley__seg *s = xmalloc(SEGS_PER_BLOCK * sizeof *s);
    if (!s)
        return -ENOMEM;
    p->blocks[p->nblocks++] = s;
    for (unsigned i = 0; i < SEGS_PER_BLOCK; i++) {
        s[i].next = p->free_segs;
        p->free_segs = &s[i];
    }
    return 0;
}

static int grow_chunks(struct volley__segpool *p)
{
    if (reserve_block_slot(p) < 0)
        return -ENOMEM;
    /* the free stack must hold every chunk the pool will own */
    size_t owned = p->nfree_chunks + p->chunks_out;
    if (p->cap_chunks - owned < CHUNKS_PER_BLOCK) {
        size_t want = owned + CHUNKS_PER_BLOCK, cap = p->cap_chunks * 2;
        if (cap < want)
            cap = want;
        if (cap > SIZE_MAX / sizeof *p->free_chunks)
            return -ENOMEM;
        void **stack = xrealloc(p->free_chunks, cap * sizeof *stack);
        if (!stack)
            return -ENOMEM;
        p->free_chunks = stack;
        p->cap_chunks = cap;
    }
    uint8_t *c = xpages((size_t)CHUNKS_PER_BLOCK * VOLLEY__CHUNK);
    if (!c)
        return -ENOMEM;
    p->blocks[p->nblocks++] = c;
    for (unsigned i = 0; i < CHUNKS_PER_BLOCK; i++)
        p->free_chunks[p->nfree_chunks++] = c + (size_t)i * VOLLEY__CHUNK;
    return 0;
}

static void small_push(struct volley__segpool *p, uint8_t *c)
{
    memcpy(c, &p->free_small, sizeof p->free_small);
    p->free_small = c;
    p->nfree_small++;
}

/* More small chunks: a free whole chunk cut in pieces when there is one
 * (so that a pool grown by large writes serves small ones without
 * allocating), else a block of its own. */
static int grow_small(struct volley__segpool *p)
{
    uint8_t *c;
    size_t n;
    if (p->nfree_chunks) {
        c = p->free_chunks[--p->nfree_chunks]; /* the small ones' for good */
        n = VOLLEY__CHUNK / VOLLEY__CHUNK_SMALL;
    } else {
        if (reserve_block_slot(p) < 0)
            return -ENOMEM;
        if (!(c = xpages((size_t)SMALL_PER_BLOCK * VOLLEY__CHUNK_SMALL)))
            return -ENOMEM;
        p->blocks[p->nblocks++] = c;
        n = SMALL_PER_BLOCK;
    }
    for (size_t i = 0; i < n; i++)
        small_push(p, c + i * VOLLEY__CHUNK_SMALL);
    return 0;
}

/* Make sure nsegs segments, nchunks chunks and nsmall small chunks can be
 * taken without failing. The pool may grow even when this fails; no
 * queue changes. */
static int reserve(struct volley__segpool *p, size_t nsegs, size_t nchunks, size_t nsmall)
{
    size_t have = 0;
    for (struct volley__seg *s = p->free_segs; s && have < nsegs; s = s->next)
        have++;
    for (; have < nsegs; have += SEGS_PER_BLOCK)
        if (grow_segs(p) < 0)
            return -ENOMEM;
    while (p->nfree_chunks < nchunks)
        if (grow_chunks(p) < 0)
            return -ENOMEM;
    while (p->nfree_small < nsmall)
        if (grow_small(p) < 0)
            return -ENOMEM;
    return 0;
}

static struct volley__seg *seg_get(struct volley__segpool *p, uint8_t kind)
{
    struct volley__seg *s = p->free_segs;
    assert(s);
    p->free_segs = s->next;
    memset(s, 0, sizeof *s);
    s->kind = kind;
    return s;
}

static void seg_put(struct volley__segpool *p, struct volley__seg *s)
{
    s->next = p->free_segs;
    p->free_segs = s;
}

static uint8_t *chunk_get(struct volley__segpool *p, bool small)
{
    if (small) {
        assert(p->nfree_small > 0);
        uint8_t *c = p->free_small;
        memcpy(&p->free_small, c, sizeof p->free_small);
        p->nfree_small--;
        p->small_out++;
        return c;
    }
    assert(p->nfree_chunks > 0);
    p->chunks_out++;
    return p->free_chunks[--p->nfree_chunks];
}

static void chunk_put(struct volley__segpool *p, uint8_t *c, bool small)
{
    if (small) {
        assert(p->small_out > 0);
        p->small_out--;
        small_push(p, c);
        return;
    }
    assert(p->chunks_out > 0 && p->nfree_chunks < p->cap_chunks);
    p->chunks_out--;
    p->free_chunks[p->nfree_chunks++] = c;
}

void volley__segpool_free(struct volley__segpool *p)
{
    for (size_t i = 0; i < p->nblocks; i++)
        free(p->blocks[i]);
    free(p->blocks);
    free(p->free_chunks);
    memset(p, 0, sizeof *p);
}

/* ---- a connection's queued bytes ---------------------------------------- */

static void append(struct volley__sendq *q, struct volley__seg *s)
{
    s->next = NULL;
    if (q->tail) {
        /* only the tail's chunk takes more bytes */
        q->tail->room = 0;
        q->tail->next = s;
    } else {
        q->head = s;
    }
    q->tail = s;
    q->bytes += s->len;
}

static void done_append(struct volley__sendq *q, struct volley__seg *s)
{
    s->next = NULL;
    if (q->done_tail)
        q->done_tail->next = s;
    else
        q->done_head = s;
    q->done_tail = s;
}

/* Take the head segment off the queue: its chunk back to the pool, or to
 * the done list when it is a lent buffer. */
static void finish_head(struct volley__sendq *q, struct volley__segpool *p)
{
    struct volley__seg *s = q->head;
    q->head = s->next;
    if (!q->head)
        q->tail = NULL;
    if (s->kind == VOLLEY__SEG_COPY) {
        chunk_put(p, s->chunk, s->small);
        seg_put(p, s);
    } else {
        done_append(q, s);
    }
}

int volley__sendq_write(struct volley__sendq *q, struct volley__segpool *p,
                        const void *buf, size_t n)
{
    if (n == 0)
        return 0;
    if (n > SIZE_MAX - q->bytes)
        return -ENOMEM;
    struct volley__seg *t = q->tail;
    size_t fill = t && t->kind == VOLLEY__SEG_COPY ? min_size(t->room, n) : 0;
    size_t rest = n - fill;
    bool small = p->small_on && !q->head && rest <= VOLLEY__CHUNK_SMALL;
    size_t size = small ? VOLLEY__CHUNK_SMALL : VOLLEY__CHUNK;
    size_t nchunks = rest / size + (rest % size != 0);
    if (reserve(p, nchunks, small ? 0 : nchunks, small ? nchunks : 0) < 0)
        return -ENOMEM;
    const uint8_t *src = buf;
    if (fill) {
        memcpy(t->chunk + (t->data - t->chunk) + t->len, src, fill);
        t->len += fill;
        t->room -= (uint32_t)fill;
        q->bytes += fill;
        src += fill;
    }
    while (rest) {
        struct volley__seg *s = seg_get(p, VOLLEY__SEG_COPY);
        s->small = small;
        s->chunk = chunk_get(p, small);
        s->data = s->chunk;
        s->len = min_size(rest, size);
        s->room = (uint32_t)(size - s->len);
        memcpy(s->chunk, src, s->len);
        src += s->len;
        rest -= s->len;
        append(q, s);
    }
    return 0;
}

int volley__sendq_write_ref(struct volley__sendq *q, struct volley__segpool *p,
                            const void *buf, size_t n, uint64_t tag)
{
    if (n > SIZE_MAX - q->bytes)
        return -ENOMEM;
    if (reserve(p, 1, 0, 0) < 0)
        return -ENOMEM;
    struct volley__seg *s = seg_get(p, VOLLEY__SEG_REF);
    q->refs++;
    s->data = buf;
    s->len = n;
    s->total = n;
    s->tag = tag;
    /* nothing before it to wait for: it is sent already */
    if (n == 0 && !q->head)
        done_append(q, s);
    else
        append(q, s);
    return 0;
}

unsigned volley__sendq_gather(const struct volley__sendq *q, struct iovec *iov,
                              unsigned max, size_t limit, size_t *bytes)
{
    unsigned k = 0;
    size_t total = 0;
    for (const struct volley__seg *s = q->head; s && k < max && total < limit;
         s = s->next) {
        if (s->len == 0)
            continue;
        size_t take = min_size(s->len, limit - total);
        iov[k].iov_base = (void *)(uintptr_t)s->data;
        iov[k].iov_len = take;
        k++;
        total += take;
    }
    *bytes = total;
    return k;
}

void volley__sendq_advance(struct volley__sendq *q, struct volley__segpool *p, size_t n)
{
    assert(n <= q->bytes);
    q->bytes -= n;
    /* Zero-length segments at the front (lent empty buffers behind bytes
     * now sent) finish too, even when n is 0. */
    while (q->head) {
        struct volley__seg *s = q->head;
        if (s->len > 0) {
            if (n == 0)
                break;
            size_t take = min_size(s->len, n);
            s->data += take;
            s->len -= take;
            n -= take;
            if (s->len > 0)
                break;
        }
        finish_head(q, p);
    }
    assert(n == 0);
}

size_t volley__sendq_clear(struct volley__sendq *q, struct volley__segpool *p)
{
    size_t dropped = q->bytes;
    while (q->head)
        finish_head(q, p);
    q->bytes = 0;
    return dropped;
}

bool volley__sendq_pop_done(struct volley__sendq *q, struct volley__segpool *p,
                            uint64_t *tag, size_t *total)
{
    struct volley__seg *s = q->done_head;
    if (!s)
        return false;
    q->done_head = s->next;
    if (!q->done_head)
        q->done_tail = NULL;
    *tag = s->tag;
    *total = s->total;
    assert(q->refs > 0);
    q->refs--;
    seg_put(p, s);
    return true;
}

/* ---- deadlines ---------------------------------------------------------- */

/* Whether t is in h: pos alone is not trusted, so a zeroed timer (pos 0)
 * that was never set reads as out of the heap. */
static bool in_heap(const struct volley__timers *h, const struct volley__timer *t)
{
    return t->pos >= 0 && (uint32_t)t->pos < h->n && h->heap[t->pos] == t;
}

static void place(struct volley__timers *h, uint32_t i, struct volley__timer *t)
{
    h->heap[i] = t;
    t->pos = (int32_t)i;
}

static void sift_up(struct volley__timers *h, uint32_t i)
{
    struct volley__timer *t = h->heap[i];
    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (h->heap[up]->at <= t->at)
            break;
        place(h, i, h->heap[up]);
        i = up;
    }
    place(h, i, t);
}

static void sift_down(struct volley__timers *h, uint32_t i)
{
    struct volley__timer *t = h->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->heap[c + 1]->at < h->heap[c]->at)
            c++;
        if (h->heap[c]->at >= t->at)
            break;
        place(h, i, h->heap[c]);
        i = c;
    }
    place(h, i, t);
}

/* After heap[i] changed its deadline, or was replaced. */
static void resift(struct volley__timers *h, uint32_t i)
{
    if (i > 0 && h->heap[(i - 1) / 2]->at > h->heap[i]->at)
        sift_up(h, i);
    else
        sift_down(h, i);
}

int volley__timers_reserve(struct volley__timers *h, uint32_t n)
{
    uint32_t cap = h->cap;
    while (cap < n) {
        /* positions are int32_t */
        if (cap > (uint32_t)INT32_MAX / 2)
            return -ENOMEM;
        cap = cap ? cap * 2 : 16;
    }
    if (cap == h->cap)
        return 0;
    void *heap = xrealloc(h->heap, (size_t)cap * sizeof *h->heap);
    if (!heap)
        return -ENOMEM;
    h->heap = heap;
    h->cap = cap;
    return 0;
}

int volley__timers_set(struct volley__timers *h, struct volley__timer *t, int64_t at)
{
    if (in_heap(h, t)) {
        t->at = at;
        resift(h, (uint32_t)t->pos);
        return 0;
    }
    if (h->n == h->cap && volley__timers_reserve(h, h->n + 1) < 0)
        return -ENOMEM;
    t->at = at;
    place(h, h->n++, t);
    sift_up(h, h->n - 1);
    return 0;
}

void volley__timers_del(struct volley__timers *h, struct volley__timer *t)
{
    if (!in_heap(h, t)) {
        t->pos = -1;
        return;
    }
    uint32_t i = (uint32_t)t->pos;
    struct volley__timer *last = h->heap[--h->n];
    t->pos = -1;
    if (last == t)
        return;
    place(h, i, last);
    resift(h, i);
}

void volley__timers_free(struct volley__timers *h)
{
    free(h->heap);
    memset(h, 0, sizeof *h);
}
