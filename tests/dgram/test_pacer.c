/* SPDX-License-Identifier: MIT */
/* Pacing: the token bucket driven by an injected clock (exact, no timing
 * asserted), then the socket-level contract on the in-memory pair and on
 * loopback with bounds that hold whatever the machine's speed. */
#include "dgram/dgram.h"
#include "t.h"

#include <time.h>

#define NS 1000000000LL

/* A sender that offers `size`-byte wire datagrams every `step` ns for
 * `dur` ns. Returns bytes admitted; *max_window gets the most bytes
 * admitted in any window of `win` ns (checked against burst + rate). */
static uint64_t offer(struct volley__pacer *p, int64_t t0, int64_t dur, int64_t step,
                      uint64_t size, int64_t win, uint64_t *max_window)
{
    /* Ring of recent admissions to measure windows without allocation. */
    enum { RING = 1 << 16 };
    static int64_t when[RING];
    static uint64_t what[RING];
    unsigned head = 0, tail = 0;
    uint64_t total = 0, in_window = 0;
    *max_window = 0;
    for (int64_t t = t0; t < t0 + dur; t += step) {
        volley__pacer_refill(p, t);
        while (volley__pacer_admit(p, size)) {
            total += size;
            when[head % RING] = t;
            what[head % RING] = size;
            head++;
            in_window += size;
            T_ASSERT(head - tail < RING);
        }
        while (tail != head && when[tail % RING] <= t - win)
            in_window -= what[tail++ % RING];
        if (in_window > *max_window)
            *max_window = in_window;
    }
    return total;
}

/* Achieved rate over a long run is the target, at several rates. */
static int rates(void)
{
    static const uint64_t rates[] = {1000000, 50000000, 1000000000, 40000000000ull};
    for (unsigned i = 0; i < sizeof rates / sizeof *rates; i++) {
        struct volley__pacer p = {0};
        uint64_t rate = rates[i], size = 1228, maxw;
        volley__pacer_set(&p, rate, 0, 0);
        int64_t dur = 10 * NS, step = 10000; /* offered every 10 us */
        uint64_t bytes = offer(&p, 0, dur, step, size, 1000000, &maxw);
        double achieved = (double)bytes * 8 / 10.0;
        double err = (achieved - (double)rate) / (double)rate;
        /* the initial burst is the only excess; 0.5% is far tighter than
         * the 2% asked for and still exact arithmetic, not timing */
        if (err < -0.005 || err > 0.005)
            T_FAIL("rate %llu: achieved %.0f (%.3f%%)", (unsigned long long)rate,
                   achieved, err * 100);
    }
    return 0;
}

/* A sender that sleeps until its next datagram may go and wakes up late
 * (up to 3 ms, seeded) still gets the rate with the default burst. */
static int late_wakeups(void)
{
    static const uint64_t rates[] = {20000000, 100000000, 1000000000};
    for (unsigned i = 0; i < sizeof rates / sizeof *rates; i++) {
        struct volley__pacer p = {0};
        uint64_t rate = rates[i], bytes = 0, seed = 42;
        volley__pacer_set(&p, rate, 0, 0);
        int64_t t = 0, end = 20 * NS;
        while (t < end) {
            volley__pacer_refill(&p, t);
            while (volley__pacer_admit(&p, 1228))
                bytes += 1228;
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            t += volley__pacer_delay(&p, 1228, t) + (int64_t)((seed >> 33) % 3000000);
        }
        double err = ((double)bytes * 8 / 20.0 - (double)rate) / (double)rate;
        if (err < -0.02 || err > 0.02)
            T_FAIL("rate %llu with late wake-ups: %.2f%% off", (unsigned long long)rate,
                   err * 100);
    }
    return 0;
}

/* Never more than burst + rate * window in any window. */
static int burst(void)
{
    static const uint32_t bursts[] = {3000, 20000, 65535 + 28};
    for (unsigned i = 0; i < sizeof bursts / sizeof *bursts; i++) {
        struct volley__pacer p = {0};
        uint64_t rate = 100000000, maxw;
        volley__pacer_set(&p, rate, bursts[i], 0);
        T_EQ(p.burst, bursts[i]);
        int64_t win = 1000000; /* 1 ms */
        offer(&p, 0, NS, 1000, 1228, win, &maxw);
        uint64_t bound = bursts[i] + rate / 8 * (uint64_t)win / NS + 1228;
        if (maxw > bound)
            T_FAIL("burst %u: %llu bytes in 1 ms > %llu", bursts[i],
                   (unsigned long long)maxw, (unsigned long long)bound);
    }
    /* The default burst: 4 ms at the rate, at least 3000 bytes. */
    T_EQ(volley__pacer_default_burst(1000000), 3000);
    T_EQ(volley__pacer_default_burst(8000000000ull), 4000000);
    return 0;
}

/* A datagram above the burst goes from a full bucket and leaves a debt. */
static int oversize(void)
{
    struct volley__pacer p = {0};
    volley__pacer_set(&p, 8000000, 3000, 0); /* 1 byte per us */
    T_ASSERT(volley__pacer_admit(&p, 10000));
    T_EQ(p.tokens, 3000 - 10000);
    T_ASSERT(!volley__pacer_admit(&p, 100));
    /* debt of 7000 bytes plus 100 needed: 7100 us */
    T_EQ(volley__pacer_delay(&p, 100, 0), 7100000);
    volley__pacer_refill(&p, 7099999);
    T_ASSERT(!volley__pacer_admit(&p, 100));
    volley__pacer_refill(&p, 7100000);
    T_ASSERT(volley__pacer_admit(&p, 100));
    return 0;
}

/* delay() predicts admit() to the nanosecond, sub-byte remainders included. */
static int delay_exact(void)
{
    struct volley__pacer p = {0};
    volley__pacer_set(&p, 3000000, 3000, 0); /* 3 Mbit/s: 2.666.. us per byte */
    while (volley__pacer_admit(&p, 1000))
        ;
    int64_t now = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t d = volley__pacer_delay(&p, 1000, now);
        T_ASSERT(d > 0);
        volley__pacer_refill(&p, now + d - 1);
        T_ASSERT(!volley__pacer_admit(&p, 1000));
        volley__pacer_refill(&p, now + d);
        T_ASSERT(volley__pacer_admit(&p, 1000));
        now += d;
    }
    /* 1000 datagrams of 8000 bits at 3 Mbit/s: 2.6667 s, rounding never
     * accumulates beyond a nanosecond per step */
    T_ASSERT(now >= 2666666000LL && now <= 2666668000LL);
    return 0;
}

/* A rate change applies from the next call; earned budget is kept. */
static int change(void)
{
    struct volley__pacer p = {0};
    volley__pacer_set(&p, 8000000, 5000, 0);
    while (volley__pacer_admit(&p, 1000))
        ;
    volley__pacer_set(&p, 80000000, 5000, 0); /* 10 bytes per us now */
    T_EQ(volley__pacer_delay(&p, 1000, 0), (1000 - p.tokens) * 100);
    volley__pacer_refill(&p, 100000);
    T_ASSERT(volley__pacer_admit(&p, 1000));
    /* a smaller burst caps what was saved */
    volley__pacer_set(&p, 8000000, 100000, 100000);
    volley__pacer_refill(&p, 10 * NS);
    volley__pacer_set(&p, 8000000, 4000, 10 * NS);
    T_EQ(p.tokens, 4000);
    /* the clock going backwards earns nothing */
    volley__pacer_refill(&p, 5 * NS);
    T_EQ(p.tokens, 4000);
    return 0;
}

/* Wire bytes: headers per datagram as the header documents. */
static int wire(void)
{
    struct volley_dgram d = {.len = 1200};
    T_OK(volley_addr_parse(&d.peer, "127.0.0.1:1"));
    T_EQ(volley__pacer_wire_bytes(AF_INET, &d), 1228);
    T_EQ(volley__pacer_wire_bytes(AF_INET6, &d), 1228); /* v4 peer on dual-stack */
    T_OK(volley_addr_parse(&d.peer, "[::ffff:127.0.0.1]:1"));
    T_EQ(volley__pacer_wire_bytes(AF_INET6, &d), 1228);
    T_OK(volley_addr_parse(&d.peer, "[::1]:1"));
    T_EQ(volley__pacer_wire_bytes(AF_INET6, &d), 1248);
    d.len = 5000;
    d.segment = 1200; /* 5 datagrams on the wire */
    T_EQ(volley__pacer_wire_bytes(AF_INET6, &d), 5000 + 5 * 48);
    memset(&d.peer, 0, sizeof d.peer);
    T_EQ(volley__pacer_wire_bytes(AF_UNSPEC, &d), 5000);
    return 0;
}

/* On the pair: sends are cut to the budget, the rest is "not taken",
 * volley_wait(SEND) returns once the refused datagram may go, and the
 * long-run rate never exceeds rate * time + burst. */
static int pair(void)
{
    struct volley_opts o = t_opts(VOLLEY_BACKEND_PAIR);
    o.pair_capacity = 4096;
    o.pace_rate_bps = 8000000; /* 1 MB/s */
    o.pace_burst = 10000;
    volley_sock *a, *b;
    T_OK(volley_pair(&a, &b, &o));
    static uint8_t buf[1000];
    struct volley_dgram d[64];
    for (int i = 0; i < 64; i++)
        d[i] = (struct volley_dgram){.data = buf, .len = sizeof buf};
    /* a full bucket of 10000 bytes takes 10 datagrams of 1000 */
    T_EQ(volley_send(a, d, 64), 10);
    T_EQ(volley_send(a, d, 64), 0);
    T_ASSERT(t_stats(a).tx_paced >= 2);
    int64_t delay = volley_pacing_delay(a, 1000, NULL);
    T_ASSERT(delay > 0 && delay <= 1000000); /* at most 1 ms for 1000 bytes */
    T_EQ(volley_wait(a, VOLLEY_WAIT_SEND, 2000), VOLLEY_WAIT_SEND);
    T_ASSERT(volley_send(a, d, 64) >= 1);

    /* Bounded run: 300 ms of trying; never above rate * time + burst. */
    long long t0 = t_now_ms();
    uint64_t sent = 11000;
    struct volley_dgram r[256];
    while (t_now_ms() - t0 < 300) {
        int k = volley_send(a, d, 64);
        T_ASSERT(k >= 0);
        sent += (uint64_t)k * 1000;
        if (k == 0)
            volley_wait(a, VOLLEY_WAIT_SEND, 50);
        while (volley_recv(b, r, 256) > 0)
            ;
    }
    double secs = (double)(t_now_ms() - t0 + 5) / 1000.0;
    T_ASSERT((double)sent <= 1000000.0 * secs + 10000 + 11000);

    /* Turned off: everything goes at once. */
    T_OK(volley_set_pacing(a, 0, 0, 0));
    T_EQ(volley_send(a, d, 64), 64);
    T_EQ(volley_pacing_delay(a, 1000, NULL), 0);
    /* Turned on at run time: applies to the next call. */
    T_OK(volley_set_pacing(a, 8000000, 5000, 0));
    T_EQ(volley_send(a, d, 64), 5);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* A refused datagram is never dropped: what the kernel did not take is
 * refunded, and on loopback everything sent arrives. */
static int loopback(void)
{
    struct volley_opts o = t_opts(VOLLEY_BACKEND_AUTO);
    o.pace_rate_bps = 200000000; /* 25 MB/s */
    o.rcvbuf = 4 << 20;
    volley_sock *a, *b;
    struct volley_addr to_b, to_a;
    t_socks(&o, "127.0.0.1:0", &a, &b, &to_b, &to_a);
    static uint8_t buf[1200];
    struct volley_dgram d[128], r[256];
    for (int i = 0; i < 128; i++)
        d[i] = (struct volley_dgram){.data = buf, .len = sizeof buf, .peer = to_b};
    unsigned sent = 0, got = 0;
    long long t0 = t_now_ms();
    while (sent < 5000 && t_now_ms() - t0 < 5000) {
        unsigned n = 5000 - sent < 128 ? 5000 - sent : 128;
        int k = volley_send(a, d, n);
        T_ASSERT(k >= 0);
        sent += (unsigned)k;
        if ((unsigned)k < n)
            volley_wait(a, VOLLEY_WAIT_SEND, 50);
        int g;
        while ((g = volley_recv(b, r, 256)) > 0)
            got += (unsigned)g;
    }
    T_EQ(sent, 5000);
    got += t_recv_n(b, r, 5000 - got, NULL, 0, 500);
    T_EQ(got + t_stats(b).rx_kernel_drops, 5000);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int bad_input(void)
{
    volley_sock *a, *b;
    struct volley_opts o = t_opts(VOLLEY_BACKEND_PAIR);
    T_OK(volley_pair(&a, &b, &o));
    T_EQ(volley_set_pacing(NULL, 1000, 0, 0), -EINVAL);
    T_EQ(volley_set_pacing(a, 1000, 0, 0x80), -EINVAL);
    T_EQ(volley_set_pacing(a, VOLLEY__PACE_MAX_BPS + 1, 0, 0), -EINVAL);
    T_EQ(volley_set_pacing(a, 1000, 0, VOLLEY_PACE_KERNEL), -ENOTSUP);
    T_EQ(volley_pacing_delay(NULL, 100, NULL), -EINVAL);
    volley_close(a);
    volley_close(b);
    o.pace_flags = 0x80;
    T_EQ(volley_pair(&a, &b, &o), -EINVAL);
    o = t_opts(VOLLEY_BACKEND_AUTO);
    o.pace_rate_bps = VOLLEY__PACE_MAX_BPS + 1;
    T_EQ(volley_open(&a, "127.0.0.1:0", &o), -EINVAL);
    /* Kernel pacing on a real socket: accepted (enforced only under fq). */
    o.pace_rate_bps = 1000000;
    o.pace_flags = VOLLEY_PACE_KERNEL;
    T_OK(volley_open(&a, "127.0.0.1:0", &o));
    T_EQ(volley_pacing_delay(a, 100000, NULL), 0); /* volley holds nothing back */
    T_OK(volley_set_pacing(a, 0, 0, 0));
    volley_close(a);

    /* A bad descriptor fails at once on a paced socket of the backends
     * that check while building messages: it never waits for a budget. */
    static uint8_t payload[16];
    const unsigned backends[] = {VOLLEY_BACKEND_MMSG, VOLLEY_BACKEND_URING};
    for (size_t i = 0; i < T_COUNT(backends); i++) {
        o = t_opts(backends[i]);
        o.pace_rate_bps = 100000;
        o.pace_burst = 3000;
        int r = volley_open(&a, "127.0.0.1:0", &o);
        if (r == -ENOTSUP)
            continue; /* not built or not allowed here */
        T_OK(r);
        struct volley_dgram d;
        memset(&d, 0, sizeof d);
        T_OK(volley_addr_parse(&d.peer, "127.0.0.1:9"));
        d.data = payload;
        d.len = sizeof payload;
        /* The budget spent: a good datagram waits, and a 70000-byte one
         * would wait for a full bucket, 240 ms away at this rate. */
        int sent = 0;
        while (sent < 1000 && volley_send(a, &d, 1) == 1)
            sent++;
        T_CHECK(sent < 1000, "a 3000-byte burst took %d datagrams", sent);
        d.len = 70000;
        T_EXPECT(volley_send(a, &d, 1), -EMSGSIZE);
        d.len = sizeof payload;
        d.ecn = 4;
        T_EXPECT(volley_send(a, &d, 1), -EINVAL);
        d.ecn = 0;
        d.data = NULL;
        T_EXPECT(volley_send(a, &d, 1), -EINVAL);
        volley_close(a);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(rates),       T_CASE(burst),     T_CASE(late_wakeups), T_CASE(oversize),
        T_CASE(delay_exact), T_CASE(change),    T_CASE(wire),         T_CASE(pair),
        T_CASE(loopback),    T_CASE(bad_input),
    };
    struct t_run how = {.total_s = 120};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
