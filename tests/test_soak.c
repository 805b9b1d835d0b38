/* The soak: per backend, N datagrams from one socket to another, each
 * carrying its sequence number and a checksum of its payload, with sizes
 * varying deterministically from 0 bytes to 1472 (runs of equal sizes the
 * GSO planner coalesces included) and now and then up to 65507. A window
 * keeps at most W datagrams sent and not yet received, well within the
 * receive buffer, so a loss is a defect and not a full buffer. Every
 * datagram must arrive exactly once, intact and in order; sent == received,
 * no kernel drops, no send errors.
 *
 * N is VOLLEY_SOAK_COUNT (per backend, default 500000); argv[1], if given,
 * runs only the backend of that name. A backend that makes no progress for
 * 10 s fails. */
#include "t.h"

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_COUNT 500000ull
#define WINDOW        256u /* datagrams in flight at most */
#define NSLOT         64u  /* datagrams per volley_send at most */
#define SLOT_BYTES    65536u
#define STALL_MS      10000
#define HDR           8u /* u32 sequence number, u32 checksum */
#define PAT_BYTES     (SLOT_BYTES + 4096u)

enum kind { K_IP, K_PAIR, K_UNIX };

struct config {
    const char *name;
    enum kind kind;
    unsigned backend;
};

static const struct config configs[] = {
    {"scalar", K_IP, VOLLEY_BACKEND_SCALAR},    {"mmsg", K_IP, VOLLEY_BACKEND_MMSG},
    {"uring", K_IP, VOLLEY_BACKEND_URING},      {"pair", K_PAIR, VOLLEY_BACKEND_PAIR},
    {"unix-mmsg", K_UNIX, VOLLEY_BACKEND_MMSG},
};

static uint8_t pat[PAT_BYTES]; /* payload bodies are windows into this */

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Payload size of datagram seq: blocks of 32 alternate between runs of
 * one size (GSO-coalescible, some with a shorter last datagram), sizes
 * varying over 0..1472, tiny ones, and a large one up to 65507. */
static uint32_t size_of(uint64_t seq)
{
    uint64_t blk = seq / 32, i = seq % 32;
    switch (blk % 8) {
    case 0:
        return 1200;
    case 1:
    case 5:
        return (uint32_t)(mix(seq) % 1473);
    case 2:
        return 1472;
    case 3:
        return (uint32_t)(seq % 9);
    case 4:
        return i == 31 ? 37 : 100;
    case 6:
        if (i)
            return 500;
        return blk % 32 == 6 ? VOLLEY_UDP4_MAX
                             : 1473 + (uint32_t)(mix(blk) % (VOLLEY_UDP4_MAX - 1472));
    default:
        return i < 16 ? 1472 : 800;
    }
}

static const uint8_t *body_of(uint64_t seq)
{
    return pat + (seq * 61) % 4096;
}

static uint32_t checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return (uint32_t)(h ^ (h >> 32));
}

/* Write datagram seq into p; returns its length. */
static uint32_t make(uint8_t *p, uint64_t seq)
{
    uint32_t len = size_of(seq);
    const uint8_t *body = body_of(seq);
    if (len < HDR) {
        memcpy(p, body, len);
        return len;
    }
    uint32_t s32 = (uint32_t)seq, sum = checksum(body, len - HDR);
    memcpy(p, &s32, 4);
    memcpy(p + 4, &sum, 4);
    memcpy(p + HDR, body, len - HDR);
    return len;
}

/* Check that x is datagram seq; NULL if so, else what is wrong. */
static const char *verify(const struct volley_dgram *x, uint64_t seq)
{
    static char why[160];
    uint32_t len = size_of(seq);
    if (x->flags & VOLLEY_DGRAM_TRUNC)
        return "truncated";
    if (x->len != len) {
        uint32_t got = 0;
        if (x->len >= 4)
            memcpy(&got, x->data, 4);
        snprintf(why, sizeof why, "%zu bytes, want %u (header seq %u if any)", x->len,
                 len, got);
        return why;
    }
    const uint8_t *p = x->data;
    if (len < HDR)
        return memcmp(p, body_of(seq), len) ? "payload differs" : NULL;
    uint32_t s32, sum;
    memcpy(&s32, p, 4);
    memcpy(&sum, p + 4, 4);
    if (s32 != (uint32_t)seq) {
        snprintf(why, sizeof why, "carries #%u", s32);
        return why;
    }
    if (checksum(p + HDR, len - HDR) != sum)
        return "checksum mismatch";
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct volley_stats stats(const volley_sock *s)
{
    struct volley_stats st;
    T_OK(volley_get_stats(s, &st, sizeof st));
    return st;
}

/* Open sender a and receiver b; false if the backend is unavailable. */
static bool open_two(const struct config *c, volley_sock **a, volley_sock **b,
                     struct volley_addr *to)
{
    struct volley_opts o = t_opts(c->backend);
    memset(to, 0, sizeof *to);
    if (c->kind == K_PAIR) {
        o.pair_capacity = 4 * WINDOW;
        T_OK(volley_pair(a, b, &o));
        return true;
    }
    if (c->kind == K_UNIX) {
        int fd[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fd) < 0)
            T_FAIL("socketpair: %s", strerror(errno));
        T_OK(volley_wrap(a, fd[0], &o));
        T_OK(volley_wrap(b, fd[1], &o));
        return true;
    }
    o.rcvbuf = 8 << 20;
    o.sndbuf = 4 << 20;
    int r = volley_open(b, "127.0.0.1:0", &o);
    if (r < 0 && c->backend == VOLLEY_BACKEND_URING) {
        printf("soak %s: skipped (%s)\n", c->name, volley_strerror(r));
        return false;
    }
    T_OK(r);
    T_OK(volley_open(a, "127.0.0.1:0", &o));
    T_OK(volley_local_addr(*b, to));
    return true;
}

static uint8_t slots[NSLOT][SLOT_BYTES];
static uint32_t slot_len[NSLOT];
static struct volley_dgram txd[NSLOT], rxd[VOLLEY_BATCH_MAX];

/* Returns 0 (pass) or 1 (a defect, printed). */
static int soak(const struct config *c, uint64_t n)
{
    volley_sock *a, *b;
    struct volley_addr to;
    if (!open_two(c, &a, &b, &to))
        return 0;
    uint64_t sent = 0, received = 0, prepared = 0, bytes = 0;
    double t0 = now_s();
    long long stall = t_now_ms() + STALL_MS;
    while (received < n) {
        bool moved = false;
        uint64_t room = WINDOW - (sent - received);
        if (room > NSLOT)
            room = NSLOT;
        if (room > n - sent)
            room = n - sent;
        if (room) {
            /* slot seq % NSLOT holds datagram seq; [sent, prepared) are ready */
            for (; prepared < sent + room; prepared++)
                slot_len[prepared % NSLOT] = make(slots[prepared % NSLOT], prepared);
            for (unsigned i = 0; i < room; i++) {
                unsigned k = (unsigned)((sent + i) % NSLOT);
                memset(&txd[i], 0, sizeof txd[i]);
                txd[i].data = slots[k];
                txd[i].len = slot_len[k];
                txd[i].peer = to;
            }
            int r = volley_send(a, txd, (unsigned)room);
            if (r < 0) {
                fprintf(stderr, "FAIL soak %s: volley_send at #%llu: %s\n", c->name,
                        (unsigned long long)sent, volley_strerror(r));
                return 1;
            }
            for (int i = 0; i < r; i++)
                bytes += txd[i].len;
            sent += (unsigned)r;
            moved |= r > 0;
        }
        for (;;) {
            int r = volley_recv(b, rxd, VOLLEY_BATCH_MAX);
            if (r < 0) {
                fprintf(stderr, "FAIL soak %s: volley_recv after #%llu: %s\n", c->name,
                        (unsigned long long)received, volley_strerror(r));
                return 1;
            }
            if (r == 0)
                break;
            for (int i = 0; i < r; i++, received++) {
                const char *why = received < sent ? verify(&rxd[i], received)
                                                  : "more datagrams than were sent";
                if (why) {
                    fprintf(stderr,
                            "FAIL soak %s: datagram %d of a batch of %d, expected #%llu "
                            "(%u bytes): %s\n",
                            c->name, i, r, (unsigned long long)received,
                            size_of(received), why);
                    return 1;
                }
            }
            moved = true;
        }
        if (moved) {
            stall = t_now_ms() + STALL_MS;
            continue;
        }
        if (t_now_ms() > stall) {
            struct volley_stats sa = stats(a), sb = stats(b);
            fprintf(stderr,
                    "FAIL soak %s: no progress for %d ms: sent %llu, received %llu, "
                    "tx_dgrams %llu, rx_dgrams %llu, rx_kernel_drops %llu\n",
                    c->name, STALL_MS, (unsigned long long)sent,
                    (unsigned long long)received, (unsigned long long)sa.tx_dgrams,
                    (unsigned long long)sb.rx_dgrams,
                    (unsigned long long)sb.rx_kernel_drops);
            return 1;
        }
        /* Datagrams in flight: they will make b readable. Otherwise a
         * would block: wait until it can send. */
        if (sent > received)
            (void)volley_wait(b, VOLLEY_WAIT_RECV, 10);
        else
            (void)volley_wait(a, VOLLEY_WAIT_SEND, 10);
    }
    double secs = now_s() - t0;
    /* Nothing more may arrive; late send completions are counted once the
     * sender looks. */
    (void)volley_wait(b, VOLLEY_WAIT_RECV, 50);
    int extra = volley_recv(b, rxd, VOLLEY_BATCH_MAX);
    struct volley_stats sa = stats(a), sb = stats(b);
    for (int i = 0; i < 100 && sa.tx_dgrams < sent; i++) {
        (void)volley_wait(a, VOLLEY_WAIT_SEND, 10);
        sa = stats(a);
    }
    printf("soak %-9s sent %llu, received %llu, bytes %llu, %.2f s (%.0f datagrams/s; "
           "gso sends %llu, gro buffers %llu)\n",
           c->name, (unsigned long long)sent, (unsigned long long)received,
           (unsigned long long)bytes, secs, (double)received / (secs > 0 ? secs : 1),
           (unsigned long long)sa.tx_gso_sends, (unsigned long long)sb.rx_gro_buffers);
    int bad = 0;
#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "FAIL soak %s: ", c->name);                                  \
            fprintf(stderr, __VA_ARGS__);                                                \
            fprintf(stderr, "\n");                                                       \
            bad = 1;                                                                     \
        }                                                                                \
    } while (0)
    CHECK(extra == 0, "%d more datagrams after all %llu arrived", extra,
          (unsigned long long)n);
    CHECK(sent == n && received == n, "sent %llu, received %llu of %llu",
          (unsigned long long)sent, (unsigned long long)received, (unsigned long long)n);
    CHECK(sa.tx_dgrams == n, "tx_dgrams %llu", (unsigned long long)sa.tx_dgrams);
    CHECK(sb.rx_dgrams == n, "rx_dgrams %llu", (unsigned long long)sb.rx_dgrams);
    CHECK(sa.tx_bytes == bytes && sb.rx_bytes == bytes,
          "tx_bytes %llu, rx_bytes %llu, want %llu", (unsigned long long)sa.tx_bytes,
          (unsigned long long)sb.rx_bytes, (unsigned long long)bytes);
    CHECK(sb.rx_kernel_drops == 0, "rx_kernel_drops %llu",
          (unsigned long long)sb.rx_kernel_drops);
    CHECK(sa.tx_errors == 0, "tx_errors %llu", (unsigned long long)sa.tx_errors);
    CHECK(sb.rx_errors == 0 && sb.rx_truncated == 0, "rx_errors %llu, rx_truncated %llu",
          (unsigned long long)sb.rx_errors, (unsigned long long)sb.rx_truncated);
#undef CHECK
    volley_close(a);
    volley_close(b);
    return bad;
}

int main(int argc, char **argv)
{
    unsetenv("VOLLEY_BACKEND");
    unsetenv("VOLLEY_DISABLE");
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint64_t n = DEFAULT_COUNT;
    const char *env = getenv("VOLLEY_SOAK_COUNT");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end || v == 0)
            T_FAIL("VOLLEY_SOAK_COUNT=%s: want a positive count", env);
        n = v;
    }
    /* A short run is bounded by the watchdog; a long one by the stall
     * check of each backend. */
    if (n <= DEFAULT_COUNT)
        t_watchdog("test_soak", 280);
    uint64_t seed = 0x5eed;
    for (size_t i = 0; i < sizeof pat; i++)
        pat[i] = (uint8_t)(mix(seed + i / 8) >> (8 * (i % 8)));
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        if (argc > 1 && strcmp(argv[1], configs[i].name))
            continue;
        failed += soak(&configs[i], n);
        ran++;
    }
    if (!ran)
        T_FAIL("no backend named %s", argc > 1 ? argv[1] : "?");
    printf("soak: %d of %d backends failed\n", failed, ran);
    return failed ? 1 : 0;
}
