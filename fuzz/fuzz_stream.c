/* SPDX-License-Identifier: MIT */
/* The stream path's pure parts driven by a sequence of operations read
 * from the input, each checked against a plain model:
 *
 *   send queue  copies and lent buffers appended, gathered with any entry
 *               and byte limit, partly "sent", cleared, finished buffers
 *               popped: the bytes gathered must be the model's stream
 *               byte for byte, the finished buffers its lent ones in order
 *               with their tags and lengths, and an allocation failed on
 *               purpose must leave the queue as it was;
 *   read queue  buffers taken, filled and pushed, read, peeked, consumed,
 *               cleared, given back: the bytes must be the stream's and
 *               every emptied buffer released once, in order;
 *   deadlines   timers set, moved, deleted and expired: the heap keeps its
 *               order and every position, and its top is the earliest.
 *
 * Sizes are bounded (a 96 KiB send queue, 8 receive buffers of 256
 * bytes, 32 timers) so that a run explores sequences, not memcpy. */
#define FUZZ_NAME "fuzz_stream"
#include "fuzz.h"
#include "stream/stream.h"

#include <errno.h>
#include <string.h>

#define SENDQ_MAX (96u * 1024)
#define REFS_MAX  1024u
#define NBUFS     8u
#define BUFSIZE   256u
#define NTIMERS   32u

struct input {
    const uint8_t *p;
    size_t left;
};

static unsigned next(struct input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

static unsigned next16(struct input *in)
{
    unsigned hi = next(in);
    return hi << 8 | next(in);
}

/* Bytes lent by REF segments. */
static uint8_t lent[65536 + 256];

/* ---- the send queue ----------------------------------------------------- */

struct sendm {
    struct volley__segpool pool;
    struct volley__sendq q;
    uint8_t want[SENDQ_MAX]; /* queued and unsent, oldest first */
    size_t wlen;
    uint64_t sent, written;
    struct {
        uint64_t end, tag;
        size_t total;
    } ref[REFS_MAX];
    unsigned nref, popped;
};

static unsigned finished(const struct sendm *m)
{
    unsigned k = m->popped;
    while (k < m->nref && m->ref[k].end <= m->sent)
        k++;
    return k;
}

static size_t count_segs(const struct volley__seg *s)
{
    size_t n = 0;
    for (; s; s = s->next)
        n++;
    return n;
}

static void send_check(const struct sendm *m)
{
    REQUIRE(m->q.bytes == m->wlen);
    REQUIRE(count_segs(m->q.done_head) == finished(m) - m->popped);
    REQUIRE(!m->q.head == !m->q.tail && !m->q.done_head == !m->q.done_tail);
    REQUIRE(!m->q.head || m->q.head->len > 0);
    if (m->q.tail && m->q.tail->kind == VOLLEY__SEG_COPY) {
        const struct volley__seg *t = m->q.tail;
        size_t size = t->small ? VOLLEY__CHUNK_SMALL : VOLLEY__CHUNK;
        REQUIRE(!t->small || m->pool.small_on);
        REQUIRE(t->data >= t->chunk && t->len <= size);
        REQUIRE((size_t)(t->data - t->chunk) + t->len + t->room == size);
    }
}

/* Gather with the input's limits, compare, advance by part of it. */
static void send_some(struct sendm *m, struct input *in)
{
    struct iovec iov[64];
    unsigned max = next(in) % 65;
    unsigned lim = next16(in);
    size_t limit = lim == 0xffff ? SIZE_MAX : (size_t)lim * 4, bytes = 0;
    unsigned k = volley__sendq_gather(&m->q, iov, max, limit, &bytes);
    REQUIRE(k <= max);
    size_t at = 0;
    for (unsigned i = 0; i < k; i++) {
        REQUIRE(iov[i].iov_len > 0 && iov[i].iov_len <= bytes - at);
        REQUIRE(memcmp(iov[i].iov_base, m->want + at, iov[i].iov_len) == 0);
        at += iov[i].iov_len;
    }
    REQUIRE(at == bytes && bytes <= limit && bytes <= m->wlen);
    if (k < max && limit > m->wlen)
        REQUIRE(bytes == m->wlen); /* nothing cut it short */
    size_t n = bytes ? next16(in) % (bytes + 1) : 0;
    volley__sendq_advance(&m->q, &m->pool, n);
    memmove(m->want, m->want + n, m->wlen - n);
    m->wlen -= n;
    m->sent += n;
}

static void send_write(struct sendm *m, struct input *in, bool fail)
{
    static uint8_t src[3 * VOLLEY__CHUNK];
    size_t n = next16(in) % (sizeof src + 1);
    unsigned seed = next(in);
    if (n > SENDQ_MAX - m->wlen)
        return;
    for (size_t i = 0; i < n; i++)
        src[i] = (uint8_t)(seed + i * 31 + (i >> 8));
    struct volley__seg tail = m->q.tail ? *m->q.tail : (struct volley__seg){0};
    volley__stream_buf_fail_in = fail ? 1 + next(in) % 4 : 0;
    int r = volley__sendq_write(&m->q, &m->pool, src, n);
    volley__stream_buf_fail_in = 0;
    if (r == -ENOMEM) {
        REQUIRE(fail);
        REQUIRE(!m->q.tail ||
                (m->q.tail->len == tail.len && m->q.tail->room == tail.room));
        return;
    }
    REQUIRE(r == 0);
    memcpy(m->want + m->wlen, src, n);
    m->wlen += n;
    m->written += n;
}

static void send_write_ref(struct sendm *m, struct input *in, bool fail)
{
    size_t n = next16(in) % 4 == 0 ? 0 : next16(in) % 8192;
    size_t off = next16(in);
    if (n > SENDQ_MAX - m->wlen || m->nref == REFS_MAX)
        return;
    if (n > sizeof lent - off)
        n = sizeof lent - off;
    const struct volley__seg *tail = m->q.tail;
    volley__stream_buf_fail_in = fail ? 1 + next(in) % 2 : 0;
    int r = volley__sendq_write_ref(&m->q, &m->pool, lent + off, n, m->nref + 1000);
    volley__stream_buf_fail_in = 0;
    if (r == -ENOMEM) {
        REQUIRE(fail && m->q.tail == tail);
        return;
    }
    REQUIRE(r == 0);
    memcpy(m->want + m->wlen, lent + off, n);
    m->wlen += n;
    m->written += n;
    m->ref[m->nref].end = m->written;
    m->ref[m->nref].tag = m->nref + 1000;
    m->ref[m->nref++].total = n;
}

static void send_pop(struct sendm *m)
{
    uint64_t tag;
    size_t total;
    if (volley__sendq_pop_done(&m->q, &m->pool, &tag, &total)) {
        REQUIRE(m->popped < finished(m));
        REQUIRE(tag == m->ref[m->popped].tag && total == m->ref[m->popped].total);
        m->popped++;
    } else {
        REQUIRE(finished(m) == m->popped);
    }
}

static void send_clear(struct sendm *m)
{
    REQUIRE(volley__sendq_clear(&m->q, &m->pool) == m->wlen);
    REQUIRE(!m->q.head && !m->q.tail);
    m->sent += m->wlen;
    m->wlen = 0;
}

/* ---- the read queue ----------------------------------------------------- */

struct readm {
    struct volley__bufs b;
    struct volley__readq q;
    uint64_t in, out; /* stream offsets received, read */
    uint32_t chain[NBUFS], left[NBUFS], end[NBUFS];
    unsigned nchain;
};

static uint8_t rbyte(uint64_t at)
{
    return (uint8_t)(at * 7 + 3 + (at >> 8));
}

static void read_push(struct readm *m, struct input *in)
{
    int32_t id = volley__bufs_take(&m->b);
    if (id < 0)
        return;
    REQUIRE((uint32_t)id < NBUFS && m->nchain < NBUFS);
    uint32_t len = 1 + next(in) % BUFSIZE;
    uint8_t *p = volley__buf_addr(&m->b, (uint32_t)id);
    for (uint32_t i = 0; i < len; i++)
        p[i] = rbyte(m->in + i);
    uint32_t nrel = m->b.nrel;
    uint32_t copied = volley__readq_push(&m->q, &m->b, (uint32_t)id, len);
    /* the free end of the last buffer takes what fits; a buffer whose bytes
     * all fit there is released at once */
    uint32_t want = 0;
    if (m->nchain) {
        unsigned t = m->nchain - 1;
        want = BUFSIZE - m->end[t] < len ? BUFSIZE - m->end[t] : len;
        m->end[t] += want;
        m->left[t] += want;
    }
    REQUIRE(copied == want);
    if (copied == len) {
        REQUIRE(m->b.nrel == nrel + 1 && m->b.rel[nrel] == (uint32_t)id);
    } else {
        REQUIRE(m->b.nrel == nrel);
        m->chain[m->nchain] = (uint32_t)id;
        m->left[m->nchain] = len - copied;
        m->end[m->nchain++] = len;
    }
    m->in += len;
}

/* The model's side of consuming n bytes: emptied buffers must be the next
 * ones in rel[], in chain order. */
static void read_consumed(struct readm *m, size_t n, uint32_t nrel)
{
    m->out += n;
    while (n) {
        size_t take = n < m->left[0] ? n : m->left[0];
        m->left[0] -= (uint32_t)take;
        n -= take;
        if (m->left[0])
            break;
        REQUIRE(nrel < m->b.nrel && m->b.rel[nrel++] == m->chain[0]);
        memmove(m->chain, m->chain + 1, --m->nchain * sizeof *m->chain);
        memmove(m->left, m->left + 1, m->nchain * sizeof *m->left);
        memmove(m->end, m->end + 1, m->nchain * sizeof *m->end);
    }
    REQUIRE(nrel == m->b.nrel);
}

static void read_read(struct readm *m, struct input *in, bool copy)
{
    uint8_t dst[NBUFS * BUFSIZE + 1];
    size_t n = next16(in) % (sizeof dst + 1);
    uint32_t nrel = m->b.nrel;
    size_t got = volley__readq_read(&m->q, &m->b, copy ? dst : NULL, n);
    size_t have = (size_t)(m->in - m->out);
    REQUIRE(got == (n < have ? n : have));
    for (size_t i = 0; copy && i < got; i++)
        REQUIRE(dst[i] == rbyte(m->out + i));
    read_consumed(m, got, nrel);
}

static void read_peek(const struct readm *m, struct input *in)
{
    struct iovec iov[NBUFS + 1];
    unsigned max = next(in) % (NBUFS + 2);
    unsigned k = volley__readq_peek(&m->q, &m->b, iov, max);
    REQUIRE(k == (m->nchain < max ? m->nchain : max));
    uint64_t at = m->out;
    for (unsigned i = 0; i < k; i++) {
        REQUIRE(iov[i].iov_len == m->left[i]);
        for (size_t j = 0; j < iov[i].iov_len; j++)
            REQUIRE(((const uint8_t *)iov[i].iov_base)[j] == rbyte(at + j));
        at += iov[i].iov_len;
    }
}

static void read_clear(struct readm *m)
{
    uint32_t nrel = m->b.nrel;
    REQUIRE(volley__readq_clear(&m->q, &m->b) == m->in - m->out);
    REQUIRE(m->b.nrel == nrel + m->nchain);
    for (unsigned i = 0; i < m->nchain; i++)
        REQUIRE(m->b.rel[nrel + i] == m->chain[i]);
    m->out = m->in;
    m->nchain = 0;
}

/* The backend takes the released buffers back. */
static void read_recycle(struct readm *m)
{
    for (uint32_t i = 0; i < m->b.nrel; i++)
        volley__bufs_put(&m->b, m->b.rel[i]);
    m->b.nrel = 0;
}

static void read_check(const struct readm *m)
{
    REQUIRE(m->q.bytes == m->in - m->out);
    REQUIRE(m->q.head == (m->nchain ? (int32_t)m->chain[0] : -1));
    REQUIRE(m->q.tail == (m->nchain ? (int32_t)m->chain[m->nchain - 1] : -1));
    REQUIRE(m->b.nfree + m->b.nrel + m->nchain == NBUFS);
    REQUIRE(m->q.nbufs == m->nchain && m->b.held == m->nchain);
    REQUIRE(m->b.holders == (m->nchain > 0));
    for (unsigned i = 1; i + 1 < m->nchain; i++)
        REQUIRE(m->end[i] == BUFSIZE); /* full but for the first and the last */
}

/* ---- deadlines ---------------------------------------------------------- */

struct timerm {
    struct volley__timers h;
    struct volley__timer t[NTIMERS];
    bool in[NTIMERS];
};

static void timers_op(struct timerm *m, unsigned op, struct input *in, bool fail)
{
    unsigned i = next(in) % NTIMERS;
    int64_t at = (int64_t)next16(in) - 30000, was = m->t[i].at;
    if (op == 0) {
        volley__stream_buf_fail_in = fail;
        int r = volley__timers_set(&m->h, &m->t[i], at);
        volley__stream_buf_fail_in = 0;
        if (r == 0) {
            m->in[i] = true;
            REQUIRE(m->t[i].at == at);
        } else {
            /* only growing the array can fail */
            REQUIRE(r == -ENOMEM && fail && !m->in[i]);
            REQUIRE(m->t[i].pos == -1 && m->t[i].at == was);
        }
    } else if (op == 1) {
        volley__timers_del(&m->h, &m->t[i]);
        m->in[i] = false;
    } else {
        struct volley__timer *top = volley__timers_top(&m->h);
        if (top) {
            volley__timers_del(&m->h, top);
            m->in[top - m->t] = false;
        }
    }
}

static void timers_check(const struct timerm *m)
{
    uint32_t n = 0;
    int64_t min = INT64_MAX;
    for (unsigned i = 0; i < NTIMERS; i++) {
        const struct volley__timer *t = &m->t[i];
        if (!m->in[i]) {
            REQUIRE(t->pos == -1);
            continue;
        }
        n++;
        REQUIRE(t->pos >= 0 && (uint32_t)t->pos < m->h.n && m->h.heap[t->pos] == t);
        if (t->at < min)
            min = t->at;
    }
    REQUIRE(m->h.n == n);
    for (uint32_t i = 1; i < m->h.n; i++)
        REQUIRE(m->h.heap[(i - 1) / 2]->at <= m->h.heap[i]->at);
    REQUIRE(n ? volley__timers_top(&m->h)->at == min : !volley__timers_top(&m->h));
}

/* ---- the run ------------------------------------------------------------ */

static struct sendm sm;
static struct readm rm;
static struct timerm tm;

static void setup(void)
{
    memset(&sm, 0, sizeof sm);
    memset(&rm, 0, sizeof rm);
    memset(&tm, 0, sizeof tm);
    rm.q = (struct volley__readq)VOLLEY__READQ_INIT;
    if (volley__bufs_init(&rm.b, NBUFS, BUFSIZE, NBUFS) != 0)
        fuzz_fail("out of memory");
    for (unsigned i = 0; i < NTIMERS; i++)
        tm.t[i].pos = -1;
    if (!lent[1])
        for (size_t i = 0; i < sizeof lent; i++)
            lent[i] = (uint8_t)(i * 2654435761u >> 11);
}

/* Flatten what is left against the model, then free everything. */
static void teardown(void)
{
    static uint8_t out[SENDQ_MAX];
    struct iovec iov[256];
    size_t bytes;
    unsigned k = volley__sendq_gather(&sm.q, iov, 256, SIZE_MAX, &bytes);
    REQUIRE(bytes == sm.wlen || k == 256);
    size_t at = 0;
    for (unsigned i = 0; i < k; i++) {
        memcpy(out + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    REQUIRE(memcmp(out, sm.want, at) == 0);
    send_clear(&sm);
    while (sm.popped < sm.nref)
        send_pop(&sm);
    send_pop(&sm);
    REQUIRE(sm.pool.chunks_out == 0 && sm.pool.small_out == 0);
    volley__segpool_free(&sm.pool);
    read_clear(&rm);
    volley__bufs_free(&rm.b);
    volley__timers_free(&tm.h);
}

static void step(struct input *in)
{
    unsigned op = next(in);
    bool fail = op & 0x80;
    switch ((op & 0x7f) % 24) {
    case 0:
    case 1:
    case 2:
        send_write(&sm, in, fail);
        break;
    case 3:
    case 4:
        send_write_ref(&sm, in, fail);
        break;
    case 5:
    case 6:
    case 7:
        send_some(&sm, in);
        break;
    case 8:
        send_clear(&sm);
        break;
    case 9:
    case 10:
        send_pop(&sm);
        break;
    case 11:
    case 12:
        read_push(&rm, in);
        break;
    case 13:
    case 14:
        read_read(&rm, in, op & 1);
        break;
    case 15:
        read_peek(&rm, in);
        break;
    case 16:
        read_clear(&rm);
        break;
    case 17:
    case 18:
        read_recycle(&rm);
        break;
    default:
        timers_op(&tm, (op & 0x7f) % 3, in, fail);
        break;
    }
    send_check(&sm);
    read_check(&rm);
    timers_check(&tm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {data, size};
    setup();
    sm.pool.small_on = size & 1; /* the loop's pool has small chunks */
    while (in.left)
        step(&in);
    teardown();
    return 0;
}
