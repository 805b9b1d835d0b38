/* SPDX-License-Identifier: MIT */
/* No allocation per datagram or per stream operation: the allocator entry
 * points are defined here, counted, and forwarded to glibc. For each
 * datagram backend and a few feature mixes, the counts taken after 100,000
 * and after 500,000 datagrams must equal the count taken after warm-up;
 * on each stream loop backend, echo round trips on one connection (copied
 * and lent writes, wants, peeks, reads) after warm-up must allocate and
 * free nothing. Each case runs in a process of its own. */
#include "t.h"

#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif

#ifdef T_ASAN

int main(void)
{
    fprintf(stderr, "SKIP: the address sanitizer owns malloc\n");
    return T_SKIP;
}

#else

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);

static unsigned long n_alloc, n_free;

static void count(unsigned long *c)
{
    __atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t n)
{
    count(&n_alloc);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    count(&n_alloc);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    count(&n_alloc);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p)
        count(&n_free);
    __libc_free(p);
}

void *memalign(size_t align, size_t n)
{
    count(&n_alloc);
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    count(&n_alloc);
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    count(&n_alloc);
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

struct counts {
    unsigned long alloc, free;
};

static struct counts now(void)
{
    struct counts c = {__atomic_load_n(&n_alloc, __ATOMIC_RELAXED),
                       __atomic_load_n(&n_free, __ATOMIC_RELAXED)};
    return c;
}

/* A feature mix: the case gives the backend and the name. */
struct config {
    unsigned enable, disable;
    size_t len;     /* payload bytes */
    unsigned batch; /* datagrams per volley_send */
};

enum { MAX_BATCH = 256, MAX_LEN = 1200 };

static struct volley_dgram tx[MAX_BATCH], rx[VOLLEY_BATCH_MAX];
static uint8_t txbuf[MAX_BATCH][MAX_LEN];

/* Send n datagrams in batches, receiving everything after each batch.
 * Returns datagrams received (drops are possible on real sockets and do
 * not matter here). */
static uint64_t run(const struct config *c, volley_sock *a, volley_sock *b, uint64_t n,
                    uint64_t *tstamps)
{
    const char *name = t_current()->name;
    uint64_t sent = 0, got = 0;
    long long stall = t_now_ms() + 10000;
    while (sent < n) {
        unsigned k = n - sent < c->batch ? (unsigned)(n - sent) : c->batch;
        for (unsigned i = 0; i < k; i++)
            memcpy(txbuf[i], &(uint64_t){sent + i}, sizeof(uint64_t));
        int r = T_OK(volley_send(a, tx, k));
        sent += (unsigned)r;
        bool moved = r > 0;
        for (;;) {
            int m = T_OK(volley_recv(b, rx, VOLLEY_BATCH_MAX));
            if (m == 0) {
                if (got >= sent || volley_wait(b, VOLLEY_WAIT_RECV, 20) == 0)
                    break;
                continue;
            }
            for (int i = 0; i < m; i++) {
                if (rx[i].len != c->len)
                    T_FAIL("%s: received %zu bytes, sent %zu", name, rx[i].len, c->len);
                *tstamps += (rx[i].flags & VOLLEY_DGRAM_TSTAMP) != 0;
            }
            got += (unsigned)m;
            moved = true;
        }
        if (moved)
            stall = t_now_ms() + 10000;
        else if (t_now_ms() > stall)
            T_FAIL("%s: no progress for 10 s", name);
        else
            volley_wait(a, VOLLEY_WAIT_SEND, 10);
    }
    return got;
}

static int check_config(void)
{
    const struct config *c = t_current()->arg;
    const char *name = t_current()->name;
    struct volley_opts o = t_opts(t_current()->backend);
    o.enable = c->enable;
    o.disable = c->disable;
    o.rcvbuf = 4 << 20;
    volley_sock *a, *b;
    struct volley_addr to_a, to_b;
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    memset(tx, 0, sizeof tx);
    for (unsigned i = 0; i < c->batch; i++) {
        memset(txbuf[i], (int)i, c->len);
        tx[i].data = txbuf[i];
        tx[i].len = c->len;
        tx[i].peer = to_b;
    }

    uint64_t ts = 0, got = run(c, a, b, 1000, &ts);
    struct counts c0 = now();
    got += run(c, a, b, 100000, &ts);
    struct counts c1 = now();
    got += run(c, a, b, 400000, &ts);
    struct counts c2 = now();

    struct volley_stats sa = t_stats(a), sb = t_stats(b);
    printf("%-10s received %llu of 501000; allocations %lu/%lu/%lu, frees %lu/%lu/%lu;"
           " gso sends %llu, gro buffers %llu, timestamps %llu\n",
           name, (unsigned long long)got, c0.alloc, c1.alloc, c2.alloc, c0.free, c1.free,
           c2.free, (unsigned long long)sa.tx_gso_sends,
           (unsigned long long)sb.rx_gro_buffers, (unsigned long long)ts);
    if (c1.alloc != c0.alloc || c2.alloc != c1.alloc || c1.free != c0.free ||
        c2.free != c1.free)
        T_FAIL("%s: allocations grew with datagrams: after warm-up %lu, +100k %lu, "
               "+400k %lu (frees %lu, %lu, %lu)",
               name, c0.alloc, c1.alloc, c2.alloc, c0.free, c1.free, c2.free);
    T_ASSERT(got > 0);
    if (c->enable & VOLLEY_F_TIMESTAMP && volley_features(b) & VOLLEY_F_TIMESTAMP)
        T_EQ(ts, got);
    if (strstr(name, "-gso") && volley_gso_max_segments(a) > 0)
        T_ASSERT(sa.tx_gso_sends > 0);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* ---- stream loops ---- */

struct pair {
    volley_loop *l;
    volley_conn *ln, *cli, *srv;
};

static unsigned long refs_made, sent_seen;

/* Poll until an event of type on c; others are dropped but SENT, which
 * is counted (no allocation: the array is static). */
static struct volley_event wait_for(volley_loop *l, unsigned type, volley_conn *c)
{
    static struct volley_event ev[16];
    static struct volley_event keep;
    for (int tries = 0; tries < 500; tries++) {
        int n = volley_loop_poll(l, ev, 16, 10);
        if (n < 0)
            T_FAIL("volley_loop_poll: %s", volley_strerror(n));
        bool found = false;
        for (int i = 0; i < n; i++) {
            if (ev[i].type == VOLLEY_EV_SENT) {
                T_EXPECT(ev[i].err, 0);
                sent_seen++;
            }
            if (!found && ev[i].type == type && (!c || ev[i].conn == c)) {
                keep = ev[i];
                found = true;
            }
        }
        if (found || type == 0)
            return keep;
    }
    T_FAIL("no event %u within 5 s", type);
}

static void pair_open(struct pair *p, unsigned be)
{
    struct volley_loop_opts o = VOLLEY_LOOP_OPTS_INIT;
    o.backend = be;
    int r = volley_loop_open(&p->l, &o);
    T_SKIP_IF(r == -ENOTSUP && be == VOLLEY_BACKEND_URING,
              "uring loops do not open here");
    T_OK(r);
    T_OK(volley_listen(p->l, &p->ln, "127.0.0.1:0", NULL, NULL));
    struct volley_addr a;
    T_OK(volley_conn_addr(p->ln, &a, NULL));
    char to[64];
    snprintf(to, sizeof to, "127.0.0.1:%u", volley_addr_port(&a));
    T_OK(volley_dial(p->l, &p->cli, to, NULL, 5000, NULL));
    p->srv = wait_for(p->l, VOLLEY_EV_ACCEPTED, NULL).conn;
}

/* n round trips of len bytes: the client writes (copied, or lent every
 * other time), the server wants len, peeks, echoes and consumes, the
 * client reads len. */
static void round_trips(struct pair *p, unsigned n, size_t len)
{
    static uint8_t out[4096], in[4096];
    static struct iovec iov[8];
    for (unsigned i = 0; i < n; i++) {
        /* the buffer lent last time is ours again only after its SENT */
        for (int tries = 0; sent_seen < refs_made; tries++) {
            T_ASSERT(tries < 500);
            wait_for(p->l, 0, NULL);
        }
        memset(out, (int)i, len);
        if (i & 1) {
            T_OK(volley_conn_write_ref(p->cli, out, len, i));
            refs_made++;
        }
        if (!(i & 1))
            T_EXPECT(volley_conn_write(p->cli, out, len), (long long)len);
        T_OK(volley_conn_want(p->srv, len, 5000));
        wait_for(p->l, VOLLEY_EV_READABLE, p->srv);
        int k = T_OK(volley_conn_peek(p->srv, iov, 8));
        size_t got = 0;
        for (int j = 0; j < k; j++) {
            T_OK(volley_conn_write(p->srv, iov[j].iov_base, iov[j].iov_len));
            got += iov[j].iov_len;
        }
        T_EXPECT(got, len);
        T_OK(volley_conn_consume(p->srv, got));
        T_OK(volley_conn_want(p->cli, len, 5000));
        wait_for(p->l, VOLLEY_EV_READABLE, p->cli);
        T_EXPECT(volley_conn_read(p->cli, in, len), (long long)len);
        if (memcmp(in, out, len))
            T_FAIL("round trip %u: the echo differs", i);
    }
}

static int check_stream(void)
{
    const struct t_loop_backend *b = t_loop_backend();
    struct pair p;
    pair_open(&p, b->id);
    round_trips(&p, 1000, 1000);
    struct counts c0 = now();
    round_trips(&p, 10000, 1000);
    struct counts c1 = now();
    round_trips(&p, 5000, 37);
    struct counts c2 = now();
    printf("  %s: allocations %lu/%lu/%lu, frees %lu/%lu/%lu\n", b->name, c0.alloc,
           c1.alloc, c2.alloc, c0.free, c1.free, c2.free);
    if (c1.alloc != c0.alloc || c2.alloc != c1.alloc || c1.free != c0.free ||
        c2.free != c1.free)
        T_FAIL("allocations grew with round trips: after warm-up %lu, +10000 %lu, "
               "+5000 %lu (frees %lu, %lu, %lu)",
               c0.alloc, c1.alloc, c2.alloc, c0.free, c1.free, c2.free);
    volley_loop_close(p.l, 0);
    return 0;
}

/* Loop timers: 100,000 opened (the setup), then started, restarted and
 * stopped in random order without an allocation, and at last all started:
 * each fires once, in the order of its deadline. A deadline is known
 * between the clock read before and after its start, so a TIMER before
 * another is out of order only when its earliest deadline is past the
 * other's latest. */
#define TIMERS 100000
static int check_timers(void)
{
    const struct t_loop_backend *b = t_loop_backend();
    struct volley_loop_opts o = VOLLEY_LOOP_OPTS_INIT;
    o.backend = b->id;
    volley_loop *l;
    int r = volley_loop_open(&l, &o);
    T_SKIP_IF(r == -ENOTSUP && b->id == VOLLEY_BACKEND_URING,
              "uring loops do not open here");
    T_OK(r);
    static volley_timer *t[TIMERS];
    static int64_t lo[TIMERS], hi[TIMERS];
    static bool fired[TIMERS];
    for (unsigned i = 0; i < TIMERS; i++) {
        T_OK(volley_timer_open(l, &t[i], i));
        fired[i] = false;
    }
    struct counts c0 = now();
    uint64_t rng = 77;
    int64_t t0 = t_now_ns();
    unsigned ops = 0;
    for (unsigned k = 0; k < 3 * TIMERS; k++, ops++) {
        unsigned i = t_rand(&rng) % TIMERS;
        if (t_rand(&rng) % 3 == 0)
            T_OK(volley_timer_stop(t[i]));
        else
            T_OK(volley_timer_start(t[i], 1000 + t_rand(&rng) % 100000, 0));
    }
    int64_t t1 = t_now_ns();
    /* every one of them, in a random order, due within 400 ms */
    for (unsigned k = 0; k < TIMERS; k++) {
        unsigned i = (unsigned)(((uint64_t)k * 48271u) % TIMERS);
        uint64_t ms = t_rand(&rng) % 400;
        lo[i] = t_now_ns() + (int64_t)ms * 1000000;
        T_OK(volley_timer_start(t[i], ms, 0));
        hi[i] = t_now_ns() + (int64_t)ms * 1000000;
    }
    unsigned got = 0, out_of_order = 0;
    int64_t last_lo = 0;
    static struct volley_event ev[256];
    for (int tries = 0; got < TIMERS && tries < 100000; tries++) {
        int n = volley_loop_poll(l, ev, 256, 100);
        T_ASSERT(n >= 0);
        for (int k = 0; k < n; k++) {
            T_ASSERT(ev[k].type == VOLLEY_EV_TIMER && ev[k].tag < TIMERS);
            uint64_t i = ev[k].tag;
            if (fired[i])
                T_FAIL("timer %llu fired twice", (unsigned long long)i);
            fired[i] = true;
            got++;
            out_of_order += hi[i] < last_lo;
            if (lo[i] > last_lo)
                last_lo = lo[i];
        }
    }
    struct counts c1 = now();
    printf("  %s: %u ops of start or stop in %.1f ms (%.0f ns each); %u of %u fired, "
           "%u out of order; allocations after setup %lu, frees %lu\n",
           b->name, ops, (double)(t1 - t0) / 1e6, (double)(t1 - t0) / ops, got, TIMERS,
           out_of_order, c1.alloc - c0.alloc, c1.free - c0.free);
    T_EXPECT(got, TIMERS);
    T_EXPECT(out_of_order, 0);
    T_CHECK(c1.alloc == c0.alloc && c1.free == c0.free,
            "timers allocated %lu and freed %lu times after setup", c1.alloc - c0.alloc,
            c1.free - c0.free);
    volley_loop_close(l, 0);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct config plain = {0, 0, 64, 256},
                               no_offload = {0, VOLLEY_F_GSO | VOLLEY_F_GRO, 64, 256},
                               gso = {0, 0, 1200, 64},
                               ts = {VOLLEY_F_TIMESTAMP, 0, 64, 256};
    static const struct t_case cases[] = {
        {"scalar", check_config, VOLLEY_BACKEND_SCALAR, &plain},
        {"mmsg", check_config, VOLLEY_BACKEND_MMSG, &no_offload},
        {"pair", check_config, VOLLEY_BACKEND_PAIR, &plain},
        {"mmsg-gso", check_config, VOLLEY_BACKEND_MMSG, &gso},
        {"scalar-ts", check_config, VOLLEY_BACKEND_SCALAR, &ts},
        {"mmsg-ts", check_config, VOLLEY_BACKEND_MMSG, &ts},
        {"uring", check_config, VOLLEY_BACKEND_URING, &no_offload},
        {"uring-gso", check_config, VOLLEY_BACKEND_URING, &gso},
        {"uring-ts", check_config, VOLLEY_BACKEND_URING, &ts},
        {"loop-uring/steady_echo", check_stream, 0, &t_loop_backends[0]},
        {"loop-epoll/steady_echo", check_stream, 0, &t_loop_backends[1]},
        {"loop-uring/timers", check_timers, 0, &t_loop_backends[0]},
        {"loop-epoll/timers", check_timers, 0, &t_loop_backends[1]},
    };
    signal(SIGPIPE, SIG_IGN);
    struct t_run how = {.flags = T_FORK, .case_s = 120, .total_s = 400};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}

#endif
