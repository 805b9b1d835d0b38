/* SPDX-License-Identifier: MIT */
/* The soak: per backend, N datagrams from one socket to another, each
 * carrying its sequence number and a checksum of its payload, with sizes
 * varying deterministically from 0 bytes to 1472 (runs of equal sizes the
 * GSO planner coalesces included) and now and then up to 65507. A window
 * keeps at most W datagrams sent and not yet received, well within the
 * receive buffer, so a loss is a defect and not a full buffer. Every
 * datagram must arrive exactly once, intact and in order; sent == received,
 * no kernel drops, no send errors.
 *
 * N is VOLLEY_SOAK_COUNT (per backend, default 500000). Every backend of
 * the test kit runs, and mmsg over an AF_UNIX socketpair ("unix-mmsg"); a
 * backend that makes no progress for 10 s fails. */
#include "t.h"

#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_COUNT 500000ull
#define WINDOW        256u /* datagrams in flight at most */
#define NSLOT         64u  /* datagrams per volley_send at most */
#define SLOT_BYTES    65536u
#define STALL_MS      10000
#define HDR           8u /* u32 sequence number, u32 checksum */
#define PAT_BYTES     (SLOT_BYTES + 4096u)

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

/* One backend's run: a sends to b, seq by seq. */
struct run {
    volley_sock *a, *b;
    struct volley_addr to;
    uint64_t n, sent, received, prepared, bytes;
};

/* Open sender a and receiver b for the running case: its backend, over an
 * AF_UNIX socketpair when the case says so (arg). */
static void open_two(struct run *x)
{
    const struct t_case *c = t_current();
    struct volley_opts o = t_opts(c->backend);
    if (c->arg) {
        int fd[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fd) < 0)
            T_FAIL("socketpair: %s", strerror(errno));
        T_OK(volley_wrap(&x->a, fd[0], &o));
        T_OK(volley_wrap(&x->b, fd[1], &o));
    } else if (!t_backend_of(c->backend)->kernel) {
        o.pair_capacity = 4 * WINDOW;
        T_OK(volley_pair(&x->a, &x->b, &o));
    } else {
        o.rcvbuf = 8 << 20;
        o.sndbuf = 4 << 20;
        T_OK(volley_open(&x->b, "127.0.0.1:0", &o));
        T_OK(volley_open(&x->a, "127.0.0.1:0", &o));
        x->to = t_local(x->b);
    }
}

static uint8_t slots[NSLOT][SLOT_BYTES];
static uint32_t slot_len[NSLOT];
static struct volley_dgram txd[NSLOT], rxd[VOLLEY_BATCH_MAX];

/* Send what the window has room for: how many went, -1 on a failure. */
static int send_window(struct run *x)
{
    uint64_t room = WINDOW - (x->sent - x->received);
    if (room > NSLOT)
        room = NSLOT;
    if (room > x->n - x->sent)
        room = x->n - x->sent;
    if (!room)
        return 0;
    /* slot seq % NSLOT holds datagram seq; [sent, prepared) are ready */
    for (; x->prepared < x->sent + room; x->prepared++)
        slot_len[x->prepared % NSLOT] = make(slots[x->prepared % NSLOT], x->prepared);
    for (unsigned i = 0; i < room; i++) {
        unsigned k = (unsigned)((x->sent + i) % NSLOT);
        memset(&txd[i], 0, sizeof txd[i]);
        txd[i].data = slots[k];
        txd[i].len = slot_len[k];
        txd[i].peer = x->to;
    }
    int r = volley_send(x->a, txd, (unsigned)room);
    if (!T_CHECK(r >= 0, "volley_send at #%llu: %s", (unsigned long long)x->sent,
                 volley_strerror(r)))
        return -1;
    for (int i = 0; i < r; i++)
        x->bytes += txd[i].len;
    x->sent += (unsigned)r;
    return r;
}

/* Receive and verify all that waits: how many came, -1 on a failure. */
static int recv_all(struct run *x)
{
    int total = 0;
    for (;;) {
        int r = volley_recv(x->b, rxd, VOLLEY_BATCH_MAX);
        if (!T_CHECK(r >= 0, "volley_recv after #%llu: %s",
                     (unsigned long long)x->received, volley_strerror(r)))
            return -1;
        if (r == 0)
            return total;
        for (int i = 0; i < r; i++, x->received++) {
            const char *why = x->received < x->sent ? verify(&rxd[i], x->received)
                                                    : "more datagrams than were sent";
            if (!T_CHECK(!why,
                         "datagram %d of a batch of %d, expected #%llu (%u bytes): %s", i,
                         r, (unsigned long long)x->received, size_of(x->received), why)) {
                /* what the counters say of it: a kernel drop, a send
                 * counted that never went, or the receive */
                struct volley_stats sa = t_stats(x->a), sb = t_stats(x->b);
                printf("  sent %llu: tx_dgrams %llu tx_errors %llu tx_wouldblock %llu; "
                       "rx_dgrams %llu rx_kernel_drops %llu rx_errors %llu rx_truncated "
                       "%llu\n",
                       (unsigned long long)x->sent, (unsigned long long)sa.tx_dgrams,
                       (unsigned long long)sa.tx_errors,
                       (unsigned long long)sa.tx_wouldblock,
                       (unsigned long long)sb.rx_dgrams,
                       (unsigned long long)sb.rx_kernel_drops,
                       (unsigned long long)sb.rx_errors,
                       (unsigned long long)sb.rx_truncated);
                return -1;
            }
        }
        total += r;
    }
}

/* Send and receive until all n arrived; false on a failure. */
static bool pump(struct run *x)
{
    long long stall = t_now_ms() + STALL_MS;
    while (x->received < x->n) {
        int sent = send_window(x), got = sent < 0 ? -1 : recv_all(x);
        if (sent < 0 || got < 0)
            return false;
        if (sent > 0 || got > 0) {
            stall = t_now_ms() + STALL_MS;
            continue;
        }
        if (t_now_ms() > stall) {
            struct volley_stats sa = t_stats(x->a), sb = t_stats(x->b);
            return T_CHECK(
                false,
                "no progress for %d ms: sent %llu, received %llu, "
                "tx_dgrams %llu, rx_dgrams %llu, rx_kernel_drops %llu",
                STALL_MS, (unsigned long long)x->sent, (unsigned long long)x->received,
                (unsigned long long)sa.tx_dgrams, (unsigned long long)sb.rx_dgrams,
                (unsigned long long)sb.rx_kernel_drops);
        }
        /* Datagrams in flight: they will make b readable. Otherwise a
         * would block: wait until it can send. */
        if (x->sent > x->received)
            (void)volley_wait(x->b, VOLLEY_WAIT_RECV, 10);
        else
            (void)volley_wait(x->a, VOLLEY_WAIT_SEND, 10);
    }
    return true;
}

/* After the run: nothing more arrives, and the counters agree. */
static void check_totals(struct run *x, double secs)
{
    uint64_t n = x->n, bytes = x->bytes;
    /* Nothing more may arrive; late send completions are counted once the
     * sender looks. */
    (void)volley_wait(x->b, VOLLEY_WAIT_RECV, 50);
    int extra = volley_recv(x->b, rxd, VOLLEY_BATCH_MAX);
    struct volley_stats sa = t_stats(x->a), sb = t_stats(x->b);
    for (int i = 0; i < 100 && sa.tx_dgrams < x->sent; i++) {
        (void)volley_wait(x->a, VOLLEY_WAIT_SEND, 10);
        sa = t_stats(x->a);
    }
    printf("soak %-9s sent %llu, received %llu, bytes %llu, %.2f s (%.0f datagrams/s; "
           "gso sends %llu, gro buffers %llu)\n",
           t_current()->name, (unsigned long long)x->sent,
           (unsigned long long)x->received, (unsigned long long)bytes, secs,
           (double)x->received / (secs > 0 ? secs : 1),
           (unsigned long long)sa.tx_gso_sends, (unsigned long long)sb.rx_gro_buffers);
    T_CHECK(extra == 0, "%d more datagrams after all %llu arrived", extra,
            (unsigned long long)n);
    T_CHECK(x->sent == n && x->received == n, "sent %llu, received %llu of %llu",
            (unsigned long long)x->sent, (unsigned long long)x->received,
            (unsigned long long)n);
    T_CHECK(sa.tx_dgrams == n, "tx_dgrams %llu", (unsigned long long)sa.tx_dgrams);
    T_CHECK(sb.rx_dgrams == n, "rx_dgrams %llu", (unsigned long long)sb.rx_dgrams);
    T_CHECK(sa.tx_bytes == bytes && sb.rx_bytes == bytes,
            "tx_bytes %llu, rx_bytes %llu, want %llu", (unsigned long long)sa.tx_bytes,
            (unsigned long long)sb.rx_bytes, (unsigned long long)bytes);
    T_CHECK(sb.rx_kernel_drops == 0, "rx_kernel_drops %llu",
            (unsigned long long)sb.rx_kernel_drops);
    T_CHECK(sa.tx_errors == 0, "tx_errors %llu", (unsigned long long)sa.tx_errors);
    T_CHECK(sb.rx_errors == 0 && sb.rx_truncated == 0,
            "rx_errors %llu, rx_truncated %llu", (unsigned long long)sb.rx_errors,
            (unsigned long long)sb.rx_truncated);
}

static uint64_t soak_count = DEFAULT_COUNT;

static int soak(void)
{
    struct run x = {.n = soak_count};
    t_context("soak %s", t_current()->name);
    open_two(&x);
    long long t0 = t_now_ms();
    if (pump(&x))
        check_totals(&x, (double)(t_now_ms() - t0) / 1000);
    volley_close(x.a);
    volley_close(x.b);
    return 0;
}

int main(int argc, char **argv)
{
    unsetenv("VOLLEY_BACKEND");
    unsetenv("VOLLEY_DISABLE");
    const char *env = getenv("VOLLEY_SOAK_COUNT");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end || v == 0)
            T_FAIL("VOLLEY_SOAK_COUNT=%s: want a positive count", env);
        soak_count = v;
    }
    uint64_t seed = 0x5eed;
    for (size_t i = 0; i < sizeof pat; i++)
        pat[i] = (uint8_t)(mix(seed + i / 8) >> (8 * (i % 8)));
    static const bool over_unix = true;
    struct t_case cases[T_BACKENDS_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; i < t_nbackends; i++)
        cases[n++] = (struct t_case){t_backends[i].name, soak, t_backends[i].id, NULL};
    cases[n++] = (struct t_case){"unix-mmsg", soak, VOLLEY_BACKEND_MMSG, &over_unix};
    /* A short run is bounded by the watchdog; a long one by the stall
     * check of each backend. */
    struct t_run how = {.total_s = soak_count <= DEFAULT_COUNT ? 280 : 0};
    return t_main(cases, n, &how, argc, argv);
}
