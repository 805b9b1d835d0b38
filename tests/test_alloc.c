/* No allocation per datagram: the allocator entry points are defined here,
 * counted, and forwarded to glibc. For each backend and a few feature
 * mixes, the counts taken after 100,000 and after 500,000 datagrams must
 * equal the count taken after warm-up. */
#include "t.h"

#include <malloc.h>
#include <stdint.h>

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
    };
    struct t_run how = {.total_s = 240};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}

#endif
