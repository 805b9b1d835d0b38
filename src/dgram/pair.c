/* SPDX-License-Identifier: MIT */
/* The pair backend: two sockets joined in memory by one bounded queue per
 * direction, with seeded drop/duplicate/reorder/delay, so users can test a
 * protocol against a misbehaving network without a network. */
#include "dgram.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAIR_SEED_DEFAULT 0x2545f4914f6cdd1dull
/* Mixed into the b->a seed so the two directions draw different streams. */
#define PAIR_SEED_BA 0xd1b54a32d192ed03ull
#define PPM          1000000u
#define NS_PER_MS    1000000

/* A datagram in a queue. Ring entries keep data pointing at their own slot. */
struct pair_entry {
    uint8_t *data;
    uint32_t len; /* bytes kept: at most the slot size */
    uint8_t ecn;
    bool trunc;
    int64_t due_ns; /* CLOCK_MONOTONIC time it may be delivered from */
    int64_t rx_ns;  /* CLOCK_REALTIME when it was sent */
};

/*
 * One direction. From head, the ring holds the entries the receiver's last
 * recv handed out (loaned: valid until its next recv), then the queued ones.
 * Loans have ring room of their own, as a kernel's receive buffer does not
 * shrink while the application reads what it got, so only queued entries
 * count against the capacity.
 */
struct pair_queue {
    pthread_mutex_t lock;
    struct pair_entry *ring;
    uint8_t *slab;
    size_t slot_size;
    unsigned size;     /* ring entries: cap + loan_max */
    unsigned cap;      /* most queued entries */
    unsigned loan_max; /* most entries one recv hands out */
    unsigned head, loaned, queued;
    /* a datagram reorder held back until the next one is queued */
    struct pair_entry hold;
    unsigned hold_copies;       /* 0: none held; 2: it was duplicated too */
    uint64_t drops;             /* full-queue drops not yet in the receiver's stats */
    uint64_t rng;               /* impairment PRNG state, drawn by the sender */
    struct volley__notify note; /* the receiver's wake-up: its volley_fd */
    bool note_set;
    bool rx_closed;
};

struct pair_shared {
    struct pair_queue q[2]; /* q[0] carries a -> b, q[1] b -> a */
    atomic_int refs;        /* open sides, plus volley_pair's while it runs */
};

struct pair_side {
    struct pair_shared *sh;
    struct pair_queue *in, *out;
};

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* True with probability ppm / 1e6. An impairment that is off draws
 * nothing, so turning one on does not shift the others' draws. */
static bool chance(struct pair_queue *q, uint32_t ppm)
{
    return ppm && splitmix64(&q->rng) % PPM < ppm;
}

/* Keep the receiver's wake-up fd readable exactly while datagrams wait for
 * it (queued or held), so it can sit in an epoll set or a kqueue. Called
 * under the lock after every change. It is signalled at most once and
 * stays open while the receiver is, so neither call fails but by
 * injection; then the next change tries again. */
static void note_sync(struct pair_queue *q)
{
    bool want = q->queued || q->hold_copies;
    if (want == q->note_set)
        return;
    int r =
        want ? volley__sys_notify_signal(&q->note) : volley__sys_notify_drain(&q->note);
    if (r == 0)
        q->note_set = want;
}

static void entry_copy(struct pair_entry *dst, const struct pair_entry *src)
{
    uint8_t *slot = dst->data;
    if (src->len)
        memcpy(slot, src->data, src->len);
    *dst = *src;
    dst->data = slot;
}

/* Queue one copy of e, or count it as dropped for the receiver when full. */
static bool q_put(struct pair_queue *q, const struct pair_entry *e)
{
    if (q->queued == q->cap) {
        q->drops++;
        return false;
    }
    entry_copy(&q->ring[(q->head + q->loaned + q->queued) % q->size], e);
    q->queued++;
    return true;
}

/* Queue copies of e; returns how many fit, counting the rest on the sender. */
static unsigned put_copies(volley_sock *s, struct pair_queue *q,
                           const struct pair_entry *e, unsigned copies)
{
    unsigned landed = 0;
    for (unsigned i = 0; i < copies; i++) {
        if (q_put(q, e))
            landed++;
        else
            s->st.pair_queue_full++;
    }
    return landed;
}

static void hold(volley_sock *s, struct pair_queue *q, const struct pair_entry *e,
                 unsigned copies)
{
    /* A queue of one can never take both copies: count the second now, so
     * the receiver can always release the hold once its queue empties. */
    if (copies > q->cap) {
        s->st.pair_queue_full++;
        q->drops++;
        copies = q->cap;
    }
    entry_copy(&q->hold, e);
    q->hold_copies = copies;
}

/* Impair and queue one datagram. The draws happen in a fixed order, so the
 * same seed and traffic give the same outcome. */
static void send_one(volley_sock *s, struct pair_queue *q, const struct pair_entry *e)
{
    const struct volley_opts *o = &s->opts;
    if (chance(q, o->pair_drop_ppm)) {
        s->st.pair_dropped++;
        return;
    }
    unsigned copies = 1;
    if (chance(q, o->pair_dup_ppm)) {
        copies = 2;
        s->st.pair_duplicated++;
    }
    if (chance(q, o->pair_reorder_ppm) && !q->hold_copies) {
        hold(s, q, e, copies);
        return;
    }
    unsigned landed = put_copies(s, q, e, copies);
    if (!q->hold_copies)
        return;
    unsigned held_landed = put_copies(s, q, &q->hold, q->hold_copies);
    q->hold_copies = 0;
    if (landed && held_landed)
        s->st.pair_reordered++;
}

/* One descriptor; a GSO buffer becomes segment-sized datagrams (the last
 * shorter), as the kernel would cut it. */
static void send_dgram(volley_sock *s, struct pair_queue *q, const struct volley_dgram *d,
                       struct pair_entry *e)
{
    size_t seg = d->segment ? d->segment : d->len;
    size_t left = d->len;
    e->data = d->data;
    e->ecn = d->ecn;
    for (;;) {
        size_t len = left < seg ? left : seg;
        e->trunc = len > q->slot_size;
        e->len = (uint32_t)(e->trunc ? q->slot_size : len);
        s->st.tx_dgrams++;
        s->st.tx_bytes += len;
        send_one(s, q, e);
        left -= len;
        if (!left)
            return;
        e->data += len;
    }
}

static int pair_send(volley_sock *s, const struct volley_dgram *d, unsigned n)
{
    struct pair_queue *q = ((struct pair_side *)s->priv)->out;
    struct pair_entry e = {.rx_ns = now_ns(CLOCK_REALTIME)};
    if (s->opts.pair_delay_us)
        e.due_ns = now_ns(CLOCK_MONOTONIC) + (int64_t)s->opts.pair_delay_us * 1000;

    pthread_mutex_lock(&q->lock);
    /* The lock is held for the whole batch, so the peer closes before it
     * or after it: all or nothing is taken. */
    if (q->rx_closed) {
        pthread_mutex_unlock(&q->lock);
        return -EPIPE;
    }
    for (unsigned i = 0; i < n; i++)
        send_dgram(s, q, &d[i], &e);
    note_sync(q);
    pthread_mutex_unlock(&q->lock);
    return (int)n;
}

static void fold_drops(volley_sock *s, struct pair_queue *q)
{
    s->st.rx_kernel_drops += q->drops;
    q->drops = 0;
}

/* No later datagram has overtaken the held one, so when the receiver looks
 * it goes out in order: the last datagram sent is never stuck. It waits
 * while the queue lacks room, as only the sender counts full-queue drops. */
static void release_hold(struct pair_queue *q)
{
    if (!q->hold_copies || q->cap - q->queued < q->hold_copies)
        return;
    for (; q->hold_copies; q->hold_copies--)
        q_put(q, &q->hold);
}

static void deliver(volley_sock *s, struct volley_dgram *d, const struct pair_entry *e)
{
    memset(d, 0, sizeof *d);
    d->data = e->data;
    d->len = e->len;
    if (s->features & VOLLEY_F_ECN)
        d->ecn = e->ecn;
    if (e->trunc) {
        d->flags |= VOLLEY_DGRAM_TRUNC;
        s->st.rx_truncated++;
    }
    if (s->features & VOLLEY_F_TIMESTAMP) {
        d->rx_ns = e->rx_ns;
        d->flags |= VOLLEY_DGRAM_TSTAMP;
    }
    s->st.rx_dgrams++;
    s->st.rx_bytes += e->len;
}

static int pair_recv(volley_sock *s, struct volley_dgram *d, unsigned n)
{
    struct pair_queue *q = ((struct pair_side *)s->priv)->in;
    unsigned got = 0;

    pthread_mutex_lock(&q->lock);
    q->head = (q->head + q->loaned) % q->size;
    q->loaned = 0;
    release_hold(q);
    fold_drops(s, q);
    int64_t now = now_ns(CLOCK_MONOTONIC);
    while (got < n && got < q->loan_max && q->queued) {
        const struct pair_entry *e = &q->ring[(q->head + q->loaned) % q->size];
        if (e->due_ns > now)
            break;
        deliver(s, &d[got++], e);
        q->loaned++;
        q->queued--;
    }
    note_sync(q);
    pthread_mutex_unlock(&q->lock);

    if (!got)
        s->st.rx_wouldblock++;
    return (int)got;
}

/* Whether a recv would deliver now. If not, *due_in is how long until it
 * would (ns), or -1 when nothing waits. */
static bool rx_ready(volley_sock *s, int64_t *due_in)
{
    struct pair_queue *q = ((struct pair_side *)s->priv)->in;
    int64_t due = -1;

    pthread_mutex_lock(&q->lock);
    fold_drops(s, q);
    if (q->queued)
        due = q->ring[(q->head + q->loaned) % q->size].due_ns;
    else if (q->hold_copies)
        due = q->hold.due_ns;
    pthread_mutex_unlock(&q->lock);

    *due_in = -1;
    if (due < 0)
        return false;
    int64_t left = due - now_ns(CLOCK_MONOTONIC);
    if (left <= 0)
        return true;
    *due_in = left;
    return false;
}

/* Whole milliseconds until end, rounded up so a sleep never ends early;
 * -1 when end is -1 (no limit). */
static int ms_until(int64_t end)
{
    if (end < 0)
        return -1;
    int64_t left = end - now_ns(CLOCK_MONOTONIC);
    if (left <= 0)
        return 0;
    int64_t ms = (left + NS_PER_MS - 1) / NS_PER_MS;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static int pair_wait(volley_sock *s, unsigned events, int timeout_ms)
{
    int64_t end = -1;
    if (timeout_ms >= 0)
        end = now_ns(CLOCK_MONOTONIC) + (int64_t)timeout_ms * NS_PER_MS;
    for (;;) {
        int64_t due_in = -1;
        bool rx = (events & VOLLEY_WAIT_RECV) && rx_ready(s, &due_in);
        unsigned ready = (events & VOLLEY_WAIT_SEND) | (rx ? VOLLEY_WAIT_RECV : 0);
        if (ready)
            return (int)ready;
        int ms = ms_until(end);
        if (ms == 0)
            return 0;
        /* Queued but not yet due: nothing can become due sooner than the
         * head, and the wake-up fd is already readable, so just sleep.
         * Empty: the wake-up fd says when something comes. */
        unsigned nfds = (events & VOLLEY_WAIT_RECV) && due_in < 0;
        if (due_in >= 0) {
            int64_t due_ms = (due_in + NS_PER_MS - 1) / NS_PER_MS;
            if (ms < 0 || due_ms < ms)
                ms = (int)due_ms;
        }
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        int r = volley__sys_poll(&p, nfds, ms);
        /* A signal ends the wait, as on every socket: the caller checks
         * its stop flag and calls again. */
        if (r == -EINTR)
            return 0;
        if (r < 0)
            return r;
    }
}

static void queue_free(struct pair_queue *q)
{
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q->slab);
}

/* Everything a direction will ever need is allocated here: sending and
 * receiving never allocate. volley__opts_load has bounded the sizes and
 * filled their defaults. */
static int queue_init(struct pair_queue *q, const struct volley_opts *o, uint64_t seed)
{
    q->cap = o->pair_capacity;
    q->loan_max = o->rx_batch;
    q->size = q->cap + q->loan_max;
    q->slot_size = o->rx_slot_size;
    q->rng = seed;
    q->note = (struct volley__notify){-1, -1};
    /* one slot more for the held datagram */
    size_t slots = (size_t)q->size + 1, stride = volley__slot_stride(q->slot_size);
    int r = pthread_mutex_init(&q->lock, NULL);
    if (r)
        return -r;
    q->ring = calloc(q->size, sizeof *q->ring);
    q->slab = volley__slab_alloc(slots, stride);
    if (!q->ring || !q->slab) {
        queue_free(q);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < q->size; i++)
        q->ring[i].data = q->slab + (size_t)i * stride;
    q->hold.data = q->slab + (size_t)q->size * stride;
    return 0;
}

static int shared_new(struct pair_shared **out, const struct volley_opts *o)
{
    struct pair_shared *sh = calloc(1, sizeof *sh);
    if (!sh)
        return -ENOMEM;
    uint64_t seed = o->pair_seed ? o->pair_seed : PAIR_SEED_DEFAULT;
    uint64_t seed_ba = seed ^ PAIR_SEED_BA;
    int r = queue_init(&sh->q[0], o, seed);
    if (r == 0) {
        r = queue_init(&sh->q[1], o, splitmix64(&seed_ba));
        if (r < 0)
            queue_free(&sh->q[0]);
    }
    if (r < 0) {
        free(sh);
        return r;
    }
    atomic_init(&sh->refs, 1);
    *out = sh;
    return 0;
}

static void shared_put(struct pair_shared *sh)
{
    if (atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) != 1)
        return;
    queue_free(&sh->q[0]);
    queue_free(&sh->q[1]);
    free(sh);
}

static void pair_close(volley_sock *s)
{
    struct pair_side *me = s->priv;
    /* Under the lock, so a send in the peer's thread either finishes first
     * or sees the flag and never touches this side's wake-up fd again. */
    pthread_mutex_lock(&me->in->lock);
    me->in->rx_closed = true;
    pthread_mutex_unlock(&me->in->lock);
    volley__sys_notify_close(&me->in->note);
    s->fd = -1; /* closed with it */
    shared_put(me->sh);
    free(me);
    s->priv = NULL;
}

/* Open side i: it sends into q[i] and receives from the other queue. */
static int side_open(volley_sock **out, struct pair_shared *sh, unsigned i,
                     const struct volley_opts *o)
{
    struct pair_side *me = malloc(sizeof *me);
    if (!me)
        return -ENOMEM;
    volley_sock *s = volley__setup_alloc(o, &volley__backend_pair);
    if (!s) {
        free(me);
        return -ENOMEM;
    }
    *me = (struct pair_side){.sh = sh, .in = &sh->q[i ^ 1], .out = &sh->q[i]};
    atomic_fetch_add_explicit(&sh->refs, 1, memory_order_relaxed);
    s->priv = me;
    s->family = AF_UNSPEC;
    s->connected = true;
    s->features = (VOLLEY_F_DEFAULT | o->enable) & ~o->disable &
                  (VOLLEY_F_ECN | VOLLEY_F_TIMESTAMP);
    struct volley__notify note;
    int err = volley__sys_notify_open(&note);
    if (err == 0) {
        me->in->note = note;
        s->fd = note.rfd;
        err = volley__sock_pace_init(s);
    }
    if (err < 0) {
        volley_close(s);
        return err;
    }
    *out = s;
    return 0;
}

VOLLEY_API int volley_pair(volley_sock **a, volley_sock **b, const struct volley_opts *o)
{
    if (!a || !b)
        return -EINVAL;
    struct volley_opts opts;
    int r = volley__opts_load(&opts, o, false);
    if (r < 0)
        return r;
    /* The caller's own choice: VOLLEY_BACKEND picks among the kernel
     * backends for volley_open and must not turn a pair into an error. */
    unsigned want = o ? o->backend : VOLLEY_BACKEND_AUTO;
    if (want != VOLLEY_BACKEND_AUTO && want != VOLLEY_BACKEND_PAIR)
        return -EINVAL;
    if (opts.loop) /* in memory: no kernel readiness for a loop to watch */
        return -EINVAL;
    opts.backend = VOLLEY_BACKEND_PAIR;

    struct pair_shared *sh;
    r = shared_new(&sh, &opts);
    if (r < 0)
        return r;
    volley_sock *sa = NULL, *sb = NULL;
    r = side_open(&sa, sh, 0, &opts);
    if (r == 0)
        r = side_open(&sb, sh, 1, &opts);
    if (r < 0)
        volley_close(sa);
    shared_put(sh); /* the sides hold it now, or nobody does */
    if (r < 0)
        return r;
    *a = sa;
    *b = sb;
    return 0;
}

const struct volley_backend volley__backend_pair = {
    .name = "pair",
    .id = VOLLEY_BACKEND_PAIR,
    .send = pair_send,
    .recv = pair_recv,
    .wait = pair_wait,
    .close = pair_close,
};
