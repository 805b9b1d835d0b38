/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend on its own terms: a provided-buffer ring that runs
 * dry under a slow consumer, zero-copy send slots that must outlive the
 * kernel's use of them, set-up failures through the syscall seam, teardown
 * with sends in flight, submission retries, the eventfd behind volley_fd,
 * the connected fast path, a steady receive that needs no system call,
 * per-datagram metadata identical to the mmsg backend's, a datagram refused
 * in the middle of a batch, and sockets whose queue or send buffer fills.
 *
 * Each case runs in a child process, so one failure does not hide the
 * others and the leak checker runs once per case. Every case skips (77)
 * when io_uring cannot be used here.
 */
#include "dgram/dgram.h"
#if VOLLEY_HAVE_URING
#include "dgram/uring.h"
#endif
#include "t.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#define URING   VOLLEY_BACKEND_URING
#define MMSG    VOLLEY_BACKEND_MMSG
#define WAIT_MS 3000
#define MIB     (1 << 20)
#define POISON  0xa5

/* ---- sockets ---- */

static struct volley_opts opts_for(unsigned backend, unsigned disable)
{
    struct volley_opts o = t_opts(backend);
    o.disable = disable;
    return o;
}

static volley_sock *open_sock(const struct volley_opts *o, const char *bind)
{
    volley_sock *s;
    T_SKIP_IF(!t_open(&s, bind, o), "address family unavailable");
    T_ASSERT(!strcmp(volley_backend_name(s), t_backend_of(o->backend)->name));
    return s;
}

/* A sender opened with so and an mmsg receiver with room for a burst;
 * returns the receiver's address. */
static struct volley_addr to_mmsg(const struct volley_opts *so, volley_sock **tx,
                                  volley_sock **rx)
{
    struct volley_opts ro = opts_for(MMSG, 0);
    ro.rcvbuf = 4 * MIB;
    *tx = open_sock(so, "127.0.0.1:0");
    *rx = open_sock(&ro, "127.0.0.1:0");
    return t_local(*rx);
}

static bool zc_supported(void)
{
    struct volley_caps c;
    T_OK(volley_probe(&c, sizeof c));
    return c.uring_zc.ok;
}

/* ---- payloads ---- */

/* The first SEQ_BYTES bytes carry the sequence number 7 bits at a time;
 * no byte of any payload is ever the poison, so one poison byte proves a
 * send slot was overwritten while the kernel still read it. */
#define SEQ_BYTES 3

static uint8_t pat(uint32_t seq, size_t i)
{
    if (i < SEQ_BYTES)
        return (uint8_t)((seq >> (7 * i)) & 0x7f);
    uint8_t b = t_byte(seq, i);
    return b == POISON ? 0x5a : b;
}

/* Past the sequence bytes, pat(seq, i) is the poison-free t_byte(seq, i),
 * (131 seq + 7 i + 17) mod 256: for every seq the same cycle of 256 bytes,
 * entered at 165 seq mod 256 (7 * 165 = 131 mod 256). So a payload is made
 * with one copy from this table and checked with one memcmp. (A byte at a
 * time, the 56 MB of case zerocopy and the 92 MB of close_inflight took
 * most of their CPU under TSan, and close_inflight ran past the watchdog
 * on a loaded machine.) */
#define BODY_MAX 65536
static uint8_t body_cycle[256 + BODY_MAX];

/* Where seq's payload is in body_cycle: body_of(seq)[i] is pat(seq, i) for
 * SEQ_BYTES <= i < BODY_MAX. */
static const uint8_t *body_of(uint32_t seq)
{
    return body_cycle + ((165u * seq) & 0xff);
}

static void body_init(void)
{
    for (size_t j = 0; j < sizeof body_cycle; j++) {
        uint8_t b = t_byte(0, j);
        body_cycle[j] = b == POISON ? 0x5a : b;
    }
    /* the claim above, at every entry into the cycle */
    for (uint32_t seq = 0; seq < 256; seq++)
        for (size_t i = SEQ_BYTES; i < SEQ_BYTES + 256; i++)
            T_ASSERT(body_of(seq)[i] == pat(seq, i));
}

static void fill(uint8_t *p, size_t len, uint32_t seq)
{
    T_ASSERT(len <= BODY_MAX);
    for (size_t i = 0; i < len && i < SEQ_BYTES; i++)
        p[i] = pat(seq, i);
    if (len > SEQ_BYTES)
        memcpy(p + SEQ_BYTES, body_of(seq) + SEQ_BYTES, len - SEQ_BYTES);
}

static uint32_t seq_of(const struct volley_dgram *d)
{
    const uint8_t *p = d->data;
    uint32_t seq = 0;
    for (size_t i = 0; i < SEQ_BYTES && i < d->len; i++)
        seq |= (uint32_t)(p[i] & 0x7f) << (7 * i);
    return seq;
}

/* Whether p is seq's payload of len bytes (so holds no poison). */
static bool intact(const uint8_t *p, size_t len, uint32_t seq)
{
    T_ASSERT(len <= BODY_MAX);
    for (size_t i = 0; i < len && i < SEQ_BYTES; i++)
        if (p[i] != pat(seq, i))
            return false;
    return len <= SEQ_BYTES ||
           !memcmp(p + SEQ_BYTES, body_of(seq) + SEQ_BYTES, len - SEQ_BYTES);
}

#define CHECK_PAYLOAD(d, len) check_payload_((d), (len), __LINE__)
static void check_payload_(const struct volley_dgram *d, size_t len, int line)
{
    if (d->len != len)
        t_fail_at(__FILE__, line, "length %zu, want %zu", d->len, len);
    const uint8_t *p = d->data;
    if (intact(p, len, seq_of(d)))
        return;
    /* what is wrong with it, a byte at a time */
    size_t poison = 0, bad = SIZE_MAX;
    for (size_t i = 0; i < len; i++)
        poison += p[i] == POISON;
    if (poison)
        t_fail_at(__FILE__, line,
                  "%zu of %zu bytes are poison: a send slot was released while "
                  "the kernel still read it",
                  poison, len);
    uint32_t seq = seq_of(d);
    for (size_t i = 0; i < len && bad == SIZE_MAX; i++)
        if (p[i] != pat(seq, i))
            bad = i;
    if (bad != SIZE_MAX)
        t_fail_at(__FILE__, line, "seq %u: byte %zu is 0x%02x, want 0x%02x", seq, bad,
                  p[bad], pat(seq, bad));
}

/* Datagram i of o: seq's payload of len bytes to `to` (NULL: none). */
static void outbox_set(struct t_batch *o, unsigned i, uint32_t seq, size_t len,
                       const struct volley_addr *to)
{
    T_ASSERT(i < o->n && len <= o->stride);
    struct volley_dgram *d = &o->d[i];
    memset(d, 0, sizeof *d);
    d->data = o->buf + i * o->stride;
    d->len = len;
    if (to)
        d->peer = *to;
    fill(d->data, len, seq);
}

/* Send seq0 .. seq0+n-1, len bytes each, all of them or fail. */
static void send_seq(volley_sock *tx, const struct volley_addr *to, uint32_t seq0,
                     unsigned n, size_t len)
{
    struct t_batch o = t_batch_new(n, len);
    for (unsigned i = 0; i < n; i++)
        outbox_set(&o, i, seq0 + i, len, to);
    T_EQ(t_send_all(tx, o.d, n, WAIT_MS), n);
    t_batch_free(&o);
}

/* Receive exactly seq0 .. seq0+n-1 in order, len bytes each. */
static void recv_seq(volley_sock *rx, uint32_t seq0, unsigned n, size_t len)
{
    struct t_batch in = t_batch_new(n, len ? len : 1);
    unsigned got = t_recv_n(rx, in.d, n, in.buf, in.stride, WAIT_MS);
    if (got != n)
        T_FAIL("received %u of %u datagrams (seq %u..)", got, n, seq0);
    for (unsigned i = 0; i < n; i++) {
        CHECK_PAYLOAD(&in.d[i], len);
        if (seq_of(&in.d[i]) != seq0 + i)
            T_FAIL("datagram %u carries seq %u, want %u", i, seq_of(&in.d[i]), seq0 + i);
    }
    t_batch_free(&in);
}

/* ---- 0. where sent payloads are copied ---- */

/* The send arena is page-aligned and each payload copied into it starts
 * on a cache line, whatever the lengths before it: a copy whose
 * destination sits a few bytes past its source's offset in the page runs
 * at a fraction of its speed (4K aliasing), and applications often send
 * from page-aligned buffers. Odd lengths, one datagram a call, every one
 * received intact. */
static int case_arena_aligned(void)
{
#if !VOLLEY_HAVE_URING
    return 0; /* no uring backend: the case skips before this */
#else
    struct volley_opts so = opts_for(URING, VOLLEY_F_GSO);
    volley_sock *tx, *rx;
    struct volley_addr to = to_mmsg(&so, &tx, &rx);
    T_CHECK(((uintptr_t)U(tx)->arena & 4095) == 0, "arena at %p", (void *)U(tx)->arena);
    static const size_t lens[] = {37, 1200, 3, 999, 64, 65, 4000, 1, 1500, 100};
    for (uint32_t seq = 0; seq < 40; seq++) {
        size_t len = lens[seq % (sizeof lens / sizeof lens[0])];
        send_seq(tx, &to, seq, 1, len);
        T_CHECK(U(tx)->a_head % 64 == 0,
                "after %zu bytes the arena's next copy goes at %zu", len, U(tx)->a_head);
        recv_seq(rx, seq, 1, len);
    }
    volley_close(tx);
    volley_close(rx);
    return 0;
#endif
}

/* ---- 1. ring exhaustion with a slow consumer ---- */

/* Take a burst of n datagrams [seq0, seq0+n) 8 at a time until each is
 * delivered or counted as a kernel drop (drops0: the count before the
 * burst), or idle_ms pass with nothing new. Each must arrive intact and at
 * most once. Returns how many arrived. */
static unsigned drain_burst(volley_sock *rx, uint32_t seq0, unsigned n, size_t len,
                            uint64_t drops0, int idle_ms)
{
    uint8_t *seen = calloc(n, 1);
    T_ASSERT(seen);
    struct volley_dgram d[8];
    unsigned got = 0;
    long long last = t_now_ms();
    for (;;) {
        int r = T_OK(volley_recv(rx, d, 8));
        for (int i = 0; i < r; i++) {
            CHECK_PAYLOAD(&d[i], len);
            uint32_t q = seq_of(&d[i]) - seq0;
            if (q >= n)
                T_FAIL("seq %u is not from this burst", q + seq0);
            if (seen[q])
                T_FAIL("seq %u delivered twice", q + seq0);
            seen[q] = 1;
            got++;
        }
        if (r > 0) {
            last = t_now_ms();
            continue;
        }
        if (got + (t_stats(rx).rx_kernel_drops - drops0) >= n ||
            t_now_ms() - last > idle_ms)
            break;
        (void)volley_wait(rx, VOLLEY_WAIT_RECV, 50);
    }
    /* Everything is accounted for: anything more would be a second copy. */
    (void)volley_wait(rx, VOLLEY_WAIT_RECV, 20);
    T_EQ(volley_recv(rx, d, 8), 0);
    free(seen);
    return got;
}

static void exhaustion_run(uint32_t ring, int rcvbuf, bool expect_drops)
{
    enum { BURST = 5000, LEN = 200, ROUNDS = 20, ROUND_BURST = 1000, AFTER = 100 };
    const unsigned nogso = VOLLEY_F_GSO | VOLLEY_F_GRO;
    struct volley_opts ro = opts_for(URING, nogso);
    ro.rx_ring_bufs = ring;
    ro.rx_batch = 8;
    ro.rcvbuf = rcvbuf;
    struct volley_opts so = opts_for(MMSG, nogso);
    volley_sock *rx = open_sock(&ro, "127.0.0.1:0");
    volley_sock *tx = open_sock(&so, "127.0.0.1:0");
    struct volley_addr to = t_local(rx);

    /* the whole burst goes out before the receiver reads anything */
    send_seq(tx, &to, 0, BURST, LEN);
    unsigned got = drain_burst(rx, 0, BURST, LEN, 0, 500);
    struct volley_stats st = t_stats(rx);
    printf("  ring %u, rcvbuf %d: delivered %u, kernel drops %llu, ring empty %llu, "
           "rearms %llu\n",
           ring, rcvbuf, got, (unsigned long long)st.rx_kernel_drops,
           (unsigned long long)st.rx_ring_empty, (unsigned long long)st.rx_rearms);
    T_EQ(got + st.rx_kernel_drops, BURST);
    T_EQ(st.rx_dgrams, got);
    T_ASSERT(got >= ring);
    T_ASSERT(st.rx_ring_empty >= 1);
    T_ASSERT(st.rx_rearms >= 2);
    T_EQ(st.rx_errors, 0);
    if (expect_drops)
        T_ASSERT(st.rx_kernel_drops > 0);

    /* the ring still holds all its buffers: a later burst arrives whole */
    send_seq(tx, &to, BURST, AFTER, LEN);
    T_EQ(drain_burst(rx, BURST, AFTER, LEN, st.rx_kernel_drops, 500), AFTER);

    /* and keeps them over many exhaustions */
    uint32_t seq = BURST + AFTER;
    for (int round = 0; round < ROUNDS; round++) {
        struct volley_stats b = t_stats(rx);
        send_seq(tx, &to, seq, ROUND_BURST, LEN);
        unsigned n = drain_burst(rx, seq, ROUND_BURST, LEN, b.rx_kernel_drops, 500);
        struct volley_stats a = t_stats(rx);
        if (n < ring || n + (a.rx_kernel_drops - b.rx_kernel_drops) != ROUND_BURST)
            T_FAIL("round %d: delivered %u, dropped %llu of %d", round, n,
                   (unsigned long long)(a.rx_kernel_drops - b.rx_kernel_drops),
                   ROUND_BURST);
        T_ASSERT(a.rx_ring_empty > b.rx_ring_empty);
        T_ASSERT(a.rx_rearms > b.rx_rearms);
        seq += ROUND_BURST;
    }
    uint64_t drops = t_stats(rx).rx_kernel_drops;
    send_seq(tx, &to, seq, AFTER, LEN);
    T_EQ(drain_burst(rx, seq, AFTER, LEN, drops, 500), AFTER);
    volley_close(tx);
    volley_close(rx);
}

static int case_exhaustion(void)
{
    exhaustion_run(16, 4 * MIB, false);
    /* a receive buffer too small for the burst: drops are counted exactly */
    exhaustion_run(16, 64 * 1024, true);
    /* the smallest ring there is (1 is rounded up to 2) */
    exhaustion_run(1, 4 * MIB, false);
    return 0;
}

/* ---- 2. zero-copy ---- */

static void zc_run(const char *label, unsigned disable, uint32_t arena, int32_t sndbuf)
{
    enum { N = 2000, LEN = 4000, BATCH = 200 };
    struct volley_opts so = opts_for(URING, disable);
    so.zc_threshold = 1024;
    so.tx_arena = arena;
    so.sndbuf = sndbuf;
    volley_sock *tx, *rx;
    struct volley_addr to = to_mmsg(&so, &tx, &rx);
    for (uint32_t seq = 0; seq < N; seq += BATCH) {
        send_seq(tx, &to, seq, BATCH, LEN);
        recv_seq(rx, seq, BATCH, LEN);
    }
    /* let the last completions and notifications in */
    long long deadline = t_now_ms() + WAIT_MS;
    while (t_stats(tx).tx_dgrams < N && t_now_ms() < deadline)
        (void)volley_wait(tx, VOLLEY_WAIT_SEND, 10);
    struct volley_stats st = t_stats(tx);
    printf("  %s: zc sends %llu, gso sends %llu, syscalls %llu\n", label,
           (unsigned long long)st.tx_zc_sends, (unsigned long long)st.tx_gso_sends,
           (unsigned long long)st.tx_syscalls);
    T_ASSERT(st.tx_zc_sends > 0);
    T_EQ(st.tx_dgrams, N);
    T_EQ(st.tx_bytes, (uint64_t)N * LEN);
    T_EQ(st.tx_errors, 0);
    if (!(disable & VOLLEY_F_GSO) && volley_gso_max_segments(tx))
        T_ASSERT(st.tx_gso_sends > 0);
    volley_close(tx);
    volley_close(rx);
}

/* Move this process into a network namespace of its own whose loopback
 * queues packets in a rate-limited qdisc: the kernel then still holds the
 * pages of a zero-copy send after the send itself completed (plain
 * loopback copies them before that). False if not allowed here. */
static bool slow_private_loopback(void)
{
    if (unshare(CLONE_NEWNET) != 0)
        return false;
    return system("ip link set lo up && tc qdisc add dev lo root tbf rate 400mbit "
                  "burst 128kb latency 200ms 2>/dev/null") == 0;
}

/* Overwrite send slots as they are released (a test hook of the uring
 * backend), so a slot the kernel still reads sends poison. */
static void poison_slots(bool on)
{
#if VOLLEY_HAVE_URING
    volley__uring_poison = on;
#else
    (void)on; /* no uring backend: every case skips before this */
#endif
}

static int case_zerocopy(void)
{
    if (!zc_supported())
        return t_skip("IORING_OP_SENDMSG_ZC not supported");
    poison_slots(true);
    zc_run("no gso", VOLLEY_F_GSO, 0, 0);
    zc_run("gso", 0, 0, 0);
    /* the smallest arena: slots are reused as soon as they are released */
    zc_run("no gso, 64 KiB arena", VOLLEY_F_GSO, 65536, 0);
    zc_run("gso, 64 KiB arena", 0, 65536, 0);
    /* last: this leaves the host's network namespace. The send buffer is
     * made big enough for a whole batch, so that only the pages' lifetime
     * is tested here (a send buffer that fills: case sndbuf_full) */
    if (slow_private_loopback()) {
        zc_run("queued, no gso", VOLLEY_F_GSO, 0, 64 * MIB);
        zc_run("queued, gso", 0, 0, 64 * MIB);
        zc_run("queued, no gso, 64 KiB arena", VOLLEY_F_GSO, 65536, 64 * MIB);
    } else {
        t_skip_part("queued runs", "no private network namespace with tc here");
    }
    poison_slots(false);
    return 0;
}

/* ---- 3. set-up failures through the seam ---- */

static void expect_uring_refused(enum volley__sysop op, int err)
{
    struct volley_opts o = opts_for(URING, 0);
    int fds = t_count_fds();
    for (int i = 0; i < 20; i++) {
        volley__sys_fault_set(op, 1, 0, err, 0);
        volley_sock *s = NULL;
        int r = volley_open(&s, "127.0.0.1:0", &o);
        if (r != -ENOTSUP)
            T_FAIL("op %d failing with %d: volley_open gave %d, want -ENOTSUP", op, err,
                   r);
        T_ASSERT(s == NULL);
        T_ASSERT(volley__sys_count(op) >= 1); /* the seam was reached */
        volley__sys_fault_clear();
    }
    T_EQ(t_count_fds(), fds);
}

static void expect_auto_fallback(enum volley__sysop op, int err)
{
    int fds = t_count_fds();
    volley__sys_fault_set(op, 1, 0, err, 0);
    struct volley_opts o = opts_for(VOLLEY_BACKEND_AUTO, 0);
    volley_sock *a, *b;
    T_OK(volley_open(&a, "127.0.0.1:0", &o));
    T_OK(volley_open(&b, "127.0.0.1:0", NULL));
    T_ASSERT(strcmp(volley_backend_name(a), "uring"));
    T_ASSERT(!strcmp(volley_backend_name(a), "mmsg"));
    struct volley_addr to = t_local(b);
    send_seq(a, &to, 7, 1, 50);
    recv_seq(b, 7, 1, 50);
    volley_close(a);
    volley_close(b);
    volley__sys_fault_clear();
    T_EQ(t_count_fds(), fds);
}

static int case_setup_faults(void)
{
    unsetenv("VOLLEY_BACKEND");
    unsetenv("VOLLEY_DISABLE");
    expect_uring_refused(VOLLEY__SYS_URING_INIT, EPERM);
    expect_auto_fallback(VOLLEY__SYS_URING_INIT, EPERM);
    expect_uring_refused(VOLLEY__SYS_URING_INIT, ENOSYS);
    expect_auto_fallback(VOLLEY__SYS_URING_INIT, ENOSYS);
    /* the ring exists when these fail: it must be torn down again */
    expect_uring_refused(VOLLEY__SYS_URING_REGISTER, EINVAL);
    expect_uring_refused(VOLLEY__SYS_URING_SUBMIT, EPERM); /* arming fails */
    /* nothing sticks: the next open works */
    struct volley_opts o = opts_for(URING, 0);
    volley_sock *a = open_sock(&o, "127.0.0.1:0");
    volley_sock *b = open_sock(&o, "127.0.0.1:0");
    struct volley_addr to = t_local(b);
    send_seq(a, &to, 1, 10, 300);
    recv_seq(b, 1, 10, 300);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* VOLLEY_DISABLE=uring is documented in volley.h: forced uring is refused,
 * auto carries on without it. */
static int case_disable_env(void)
{
    unsetenv("VOLLEY_BACKEND");
    T_OK(setenv("VOLLEY_DISABLE", "uring", 1));
    struct volley_opts o = opts_for(URING, 0);
    volley_sock *s = NULL;
    int r = volley_open(&s, "127.0.0.1:0", &o);
    if (r != -ENOTSUP)
        T_FAIL("VOLLEY_DISABLE=uring: forced uring open gave %d (%s), want -ENOTSUP", r,
               volley_strerror(r));
    T_OK(volley_open(&s, "127.0.0.1:0", NULL));
    T_ASSERT(strcmp(volley_backend_name(s), "uring"));
    volley_close(s);
    unsetenv("VOLLEY_DISABLE");
    return 0;
}

/* ---- 4. close with sends in flight ---- */

static void close_inflight_run(const char *label, unsigned disable, uint32_t zc,
                               bool reader_bound)
{
    enum { REPS = 50, BATCHES = 10, N = 256, LEN = 1200 };
    struct t_batch o = t_batch_new(N, LEN);
    struct volley_opts so = opts_for(URING, disable);
    so.zc_threshold = zc;
    struct volley_opts ro = opts_for(URING, 0);
    ro.rx_ring_bufs = 64;
    ro.rx_batch = 32;
    long long t0 = t_now_ms();
    unsigned sent = 0;
    for (int rep = 0; rep < REPS; rep++) {
        volley_sock *tx = open_sock(&so, "127.0.0.1:0");
        volley_sock *rx = open_sock(&ro, "127.0.0.1:0");
        struct volley_addr to = t_local(rx);
        if (!reader_bound) {
            /* a port nobody listens on: every datagram draws an ICMP error */
            volley_close(rx);
            rx = NULL;
        }
        for (unsigned i = 0; i < N; i++)
            outbox_set(&o, i, i, LEN, &to);
        for (int b = 0; b < BATCHES; b++) {
            int r = volley_send(tx, o.d, N);
            if (r < 0 && (reader_bound || r != -ECONNREFUSED))
                T_FAIL("%s: volley_send: %s", label, volley_strerror(r));
            if (reader_bound && r == 0)
                T_FAIL("%s: volley_send took nothing", label);
            sent += r > 0 ? (unsigned)r : 0;
        }
        volley_close(tx);
        volley_close(rx);
    }
    printf("  %s: %u datagrams taken, %d rounds in %lld ms\n", label, sent, REPS,
           t_now_ms() - t0);
    t_batch_free(&o);
}

static int case_close_inflight(void)
{
    int fds = t_count_fds();
    close_inflight_run("gso, reader", 0, 0, true);
    close_inflight_run("no gso, reader", VOLLEY_F_GSO, 0, true);
    close_inflight_run("gso, closed port", 0, 0, false);
    close_inflight_run("no gso, closed port", VOLLEY_F_GSO, 0, false);
    if (zc_supported()) {
        close_inflight_run("zc, reader", VOLLEY_F_GSO, 1024, true);
        close_inflight_run("zc gso, closed port", 0, 1024, false);
    }
    T_EQ(t_count_fds(), fds);
    return 0;
}

/* ---- 5. submission retried ---- */

static int case_submit_retry(void)
{
    enum { N = 64, LEN = 300 };
    if (!zc_supported())
        return t_skip("sends go through the ring only with zero-copy");
    struct volley_opts so = opts_for(URING, VOLLEY_F_GSO);
    so.zc_threshold = 1024; /* the ring's sends, the small ones copied */
    struct volley_opts ro = opts_for(MMSG, 0); /* makes no io_uring calls */
    volley_sock *tx = open_sock(&so, "127.0.0.1:0");
    volley_sock *rx = open_sock(&ro, "127.0.0.1:0");
    struct volley_addr to = t_local(rx);
    struct t_batch o = t_batch_new(N, LEN);
    for (uint32_t round = 0; round < 3; round++) {
        for (unsigned i = 0; i < N; i++)
            outbox_set(&o, i, round * N + i, LEN, &to);
        volley__sys_fault_set(VOLLEY__SYS_URING_SUBMIT, 1, 2, EBUSY, 0);
        T_EQ(volley_send(tx, o.d, N), N);
        T_ASSERT(volley__sys_count(VOLLEY__SYS_URING_SUBMIT) >= 3);
        volley__sys_fault_clear();
        recv_seq(rx, round * N, N, LEN);
    }
    struct volley_stats st = t_stats(tx);
    T_EQ(st.tx_errors, 0);
    t_batch_free(&o);
    volley_close(tx);
    volley_close(rx);
    return 0;
}

/* Submission refused on every retry: volley_send counts the batch as taken,
 * so it must leave without the caller sending anything else. */
static int case_submit_stall(void)
{
    enum { N = 64, LEN = 300 };
    struct volley_opts so = opts_for(URING, VOLLEY_F_GSO);
    struct volley_opts ro = opts_for(MMSG, 0);
    volley_sock *tx = open_sock(&so, "127.0.0.1:0");
    volley_sock *rx = open_sock(&ro, "127.0.0.1:0");
    struct volley_addr to = t_local(rx);
    struct t_batch o = t_batch_new(N, LEN);
    for (unsigned i = 0; i < N; i++)
        outbox_set(&o, i, i, LEN, &to);
    volley__sys_fault_set(VOLLEY__SYS_URING_SUBMIT, 1, 0, EBUSY, 0);
    int r = volley_send(tx, o.d, N);
    volley__sys_fault_clear();
    printf("  every submission refused: volley_send returned %d\n", r);
    if (r == N) {
        /* taken: the sender only waits, as a caller with nothing more to
         * send would */
        for (int i = 0; i < 10; i++)
            (void)volley_wait(tx, VOLLEY_WAIT_SEND, 10);
        struct t_batch in = t_batch_new(N, LEN);
        unsigned got = t_recv_n(rx, in.d, N, in.buf, LEN, 500);
        t_batch_free(&in);
        if (got != N)
            T_FAIL("volley_send took %d datagrams but %u arrived: they wait in the "
                   "submission queue for the next send",
                   N, got);
    } else {
        /* not taken: nothing may have gone out, or a resend duplicates */
        T_ASSERT(r <= 0);
        (void)volley_wait(tx, VOLLEY_WAIT_SEND, 100);
        struct volley_dgram d[1];
        (void)volley_wait(rx, VOLLEY_WAIT_RECV, 200);
        T_EQ(volley_recv(rx, d, 1), 0);
    }
    t_batch_free(&o);
    volley_close(tx);
    volley_close(rx);
    return 0;
}

/* ---- 6. volley_fd and volley_wait ---- */

static int case_eventfd(void)
{
    struct volley_opts ro = opts_for(URING, 0);
    volley_sock *rx = open_sock(&ro, "127.0.0.1:0");
    volley_sock *other = open_sock(&ro, "127.0.0.1:0");
    struct volley_opts so = opts_for(MMSG, 0);
    volley_sock *tx = open_sock(&so, "127.0.0.1:0");
    struct volley_addr to = t_local(rx);

    int fd = volley_fd(rx);
    T_ASSERT(fd >= 0);
    T_ASSERT(fd != rx->fd);
    t_assert_eventfd(fd);
    T_ASSERT(volley_fd(other) != fd);

    T_ASSERT(!t_readable(fd, 0));
    send_seq(tx, &to, 3, 1, 100);
    T_ASSERT(t_readable(fd, 2000));
    T_ASSERT(!t_readable(volley_fd(other), 0)); /* not for that socket */
    T_EQ(volley_wait(rx, VOLLEY_WAIT_RECV, 2000), VOLLEY_WAIT_RECV);
    recv_seq(rx, 3, 1, 100);
    struct volley_dgram d[4];
    T_EQ(volley_recv(rx, d, 4), 0);
    /* nothing is waiting, so an event loop polling the fd must sleep */
    T_ASSERT(!t_readable(fd, 0));
    T_EQ(volley_wait(rx, VOLLEY_WAIT_RECV, 50), 0);
    T_ASSERT(!t_readable(fd, 0));

    /* again, waiting first */
    send_seq(tx, &to, 4, 3, 100);
    T_EQ(volley_wait(rx, VOLLEY_WAIT_RECV, 2000), VOLLEY_WAIT_RECV);
    recv_seq(rx, 4, 3, 100);
    T_EQ(volley_wait(rx, VOLLEY_WAIT_RECV, 50), 0);

    /* the ring runs dry while the caller holds every buffer: what waits in
     * the socket must still wake the caller */
    struct volley_opts small = opts_for(URING, VOLLEY_F_GRO);
    small.rx_ring_bufs = 4;
    small.rx_batch = 4;
    volley_sock *dry = open_sock(&small, "127.0.0.1:0");
    struct volley_addr to_dry = t_local(dry);
    send_seq(tx, &to_dry, 10, 10, 100);
    T_EQ(volley_wait(dry, VOLLEY_WAIT_RECV, 2000), VOLLEY_WAIT_RECV);
    unsigned got = 0;
    while (got < 4) {
        int r = T_OK(volley_recv(dry, d, 4 - got));
        if (r == 0)
            T_EQ(volley_wait(dry, VOLLEY_WAIT_RECV, 2000), VOLLEY_WAIT_RECV);
        for (int i = 0; i < r; i++)
            T_EQ(seq_of(&d[i]), 10 + got + (unsigned)i);
        got += (unsigned)r;
    }
    /* all four buffers are on loan now */
    T_EQ(volley_wait(dry, VOLLEY_WAIT_RECV, 2000), VOLLEY_WAIT_RECV);
    recv_seq(dry, 14, 6, 100);
    T_EQ(volley_wait(dry, VOLLEY_WAIT_RECV, 50), 0);
    T_ASSERT(t_stats(dry).rx_ring_empty >= 1);

    volley_close(dry);
    volley_close(tx);
    volley_close(other);
    volley_close(rx);
    return 0;
}

/* ---- 7. connected fast path ---- */

static void connected_run(const char *label, uint32_t zc, bool same_len)
{
    enum { N = 1000, STRIDE = 1400 };
    /* equal lengths make GSO runs (sendmsg with a control message); without
     * GSO every message goes out with the plain send opcodes */
    struct volley_opts so = opts_for(URING, same_len ? 0 : VOLLEY_F_GSO);
    so.zc_threshold = zc;
    struct volley_opts ro = opts_for(URING, 0);
    ro.rcvbuf = 4 * MIB;
    volley_sock *tx = open_sock(&so, "127.0.0.1:0");
    volley_sock *rx = open_sock(&ro, "127.0.0.1:0");
    struct volley_addr to = t_local(rx), from = t_local(tx);
    T_OK(volley_connect(tx, t_fmt(&to)));

    struct t_batch o = t_batch_new(N, STRIDE);
    size_t lens[N];
    for (unsigned i = 0; i < N; i++) {
        lens[i] = same_len ? 1000 : 600 + (i * 37) % 800;
        outbox_set(&o, i, i, lens[i], NULL);
        T_EQ(o.d[i].peer.sa.sa_family, AF_UNSPEC);
    }
    struct t_batch in = t_batch_new(N, STRIDE);
    unsigned got = 0;
    for (unsigned i = 0; i < N; i += 100) {
        T_EQ(t_send_all(tx, o.d + i, 100, WAIT_MS), 100);
        got += t_recv_n(rx, in.d + got, i + 100 - got, in.buf + (size_t)got * STRIDE,
                        STRIDE, WAIT_MS);
    }
    T_EQ(got, N);
    for (unsigned i = 0; i < N; i++) {
        CHECK_PAYLOAD(&in.d[i], lens[i]);
        if (seq_of(&in.d[i]) != i)
            T_FAIL("%s: datagram %u carries seq %u", label, i, seq_of(&in.d[i]));
        if (!volley_addr_equal(&in.d[i].peer, &from))
            T_FAIL("%s: datagram %u from %s", label, i, t_fmt(&in.d[i].peer));
    }
    long long deadline = t_now_ms() + WAIT_MS;
    while (t_stats(tx).tx_dgrams < N && t_now_ms() < deadline)
        (void)volley_wait(tx, VOLLEY_WAIT_SEND, 10);
    struct volley_stats st = t_stats(tx);
    T_EQ(st.tx_dgrams, N);
    T_EQ(st.tx_errors, 0);
    if (zc)
        T_ASSERT(st.tx_zc_sends > 0);
    if (!same_len)
        T_EQ(st.tx_gso_sends, 0);
    printf("  %s: gso sends %llu, zc sends %llu\n", label,
           (unsigned long long)st.tx_gso_sends, (unsigned long long)st.tx_zc_sends);
    t_batch_free(&in);
    t_batch_free(&o);
    volley_close(tx);
    volley_close(rx);
}

static int case_connected(void)
{
    connected_run("plain send", 0, false);
    connected_run("gso", 0, true);
    if (zc_supported()) {
        connected_run("plain send zc", 512, false);
        connected_run("gso zc", 512, true);
    }
    return 0;
}

/* ---- 8. steady receive without system calls ---- */

static int case_steady(void)
{
    enum { N = 64, LEN = 500, BATCHES = 200 };
    /* no GRO: every datagram takes its own buffer, so the ring cycles;
     * with room for a burst and the next one while the caller holds one */
    struct volley_opts ro = opts_for(URING, VOLLEY_F_GRO);
    ro.rx_ring_bufs = 4 * N;
    volley_sock *rx = open_sock(&ro, "127.0.0.1:0");
    struct volley_opts so = opts_for(MMSG, 0);
    volley_sock *tx = open_sock(&so, "127.0.0.1:0");
    struct volley_addr to = t_local(rx);
    send_seq(tx, &to, 0, N, LEN);
    recv_seq(rx, 0, N, LEN);
    struct volley_stats before = t_stats(rx);
    for (uint32_t b = 1; b <= BATCHES; b++) {
        send_seq(tx, &to, b * N, N, LEN);
        T_EQ(volley_wait(rx, VOLLEY_WAIT_RECV, WAIT_MS), VOLLEY_WAIT_RECV);
        recv_seq(rx, b * N, N, LEN);
    }
    struct volley_stats after = t_stats(rx);
    uint64_t calls = after.rx_syscalls - before.rx_syscalls;
    printf("  %d batches of %d: %llu receive syscalls, %llu rearms\n", BATCHES, N,
           (unsigned long long)calls,
           (unsigned long long)(after.rx_rearms - before.rx_rearms));
    T_ASSERT(calls < 20);
    T_EQ(after.rx_dgrams - before.rx_dgrams, BATCHES * N);
    T_EQ(after.rx_ring_empty, 0);
    volley_close(tx);
    volley_close(rx);
    return 0;
}

/* ---- 9. metadata parity with mmsg ---- */

struct spec {
    size_t len;
    uint8_t ecn;
};

struct exchange {
    struct t_batch in;
    unsigned got;
    struct volley_addr to;   /* where the sender sent */
    struct volley_addr from; /* the sender's address, as the receiver sees it */
    struct volley_stats rx, tx;
    int64_t t0, t1;
};

/* A sender on tx_bind sends sp[0..n) to a receiver on rx_bind; both sockets
 * use the backend. A receiver on "[::]" is reached at 127.0.0.1. */
static struct exchange run_exchange(unsigned backend, const char *rx_bind,
                                    const char *tx_bind, uint32_t slot,
                                    const struct spec *sp, unsigned n)
{
    struct exchange x;
    memset(&x, 0, sizeof x);
    struct volley_opts o = opts_for(backend, 0);
    o.enable = VOLLEY_F_TIMESTAMP;
    o.rx_slot_size = slot;
    volley_sock *rx = open_sock(&o, rx_bind);
    volley_sock *tx = open_sock(&o, tx_bind);
    T_ASSERT(volley_features(rx) & VOLLEY_F_TIMESTAMP);
    T_ASSERT(volley_features(rx) & VOLLEY_F_PKTINFO);
    T_ASSERT(volley_features(rx) & VOLLEY_F_ECN);
    x.to = t_local(rx);
    if (x.to.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&x.to.sin6.sin6_addr)) {
        uint16_t port = x.to.sin6.sin6_port;
        T_OK(volley_addr_parse(&x.to, "127.0.0.1:0"));
        x.to.sin.sin_port = port;
    }
    x.from = t_local(tx);
    struct t_batch ob = t_batch_new(n, 65536);
    for (unsigned i = 0; i < n; i++) {
        outbox_set(&ob, i, i, sp[i].len, &x.to);
        ob.d[i].ecn = sp[i].ecn;
    }
    x.in = t_batch_new(n, 65536);
    x.t0 = t_realtime_ns();
    T_EQ(t_send_all(tx, ob.d, n, WAIT_MS), n);
    x.got = t_recv_n(rx, x.in.d, n, x.in.buf, x.in.stride, 500);
    x.t1 = t_realtime_ns();
    long long deadline = t_now_ms() + WAIT_MS;
    while (t_stats(tx).tx_dgrams < n && t_now_ms() < deadline)
        (void)volley_wait(tx, VOLLEY_WAIT_SEND, 10);
    x.rx = t_stats(rx);
    x.tx = t_stats(tx);
    t_batch_free(&ob);
    volley_close(tx);
    volley_close(rx);
    return x;
}

#define SAME(field, fmtspec)                                                             \
    do {                                                                                 \
        if (a->field != b->field)                                                        \
            T_FAIL("%s datagram %u (len %zu ecn %u): " #field " mmsg " fmtspec           \
                   ", uring " fmtspec,                                                   \
                   label, i, sp[i].len, sp[i].ecn, a->field, b->field);                  \
    } while (0)

#define SAME_STAT(field)                                                                 \
    do {                                                                                 \
        if (m.field != u.field)                                                          \
            T_FAIL("%s: " #field " mmsg %llu, uring %llu", label,                        \
                   (unsigned long long)m.field, (unsigned long long)u.field);            \
    } while (0)

static void parity_run(const char *label, const char *rx_bind, const char *tx_bind,
                       uint32_t slot, const struct spec *sp, unsigned n)
{
    struct exchange xm = run_exchange(MMSG, rx_bind, tx_bind, slot, sp, n);
    struct exchange xu = run_exchange(URING, rx_bind, tx_bind, slot, sp, n);
    T_EQ(xm.got, n);
    T_EQ(xu.got, n);
    for (unsigned i = 0; i < n; i++) {
        const struct volley_dgram *a = &xm.in.d[i], *b = &xu.in.d[i];
        SAME(len, "%zu");
        SAME(ecn, "%u");
        SAME(flags, "0x%x");
        SAME(ifindex, "%u");
        SAME(segment, "%u");
        if (memcmp(a->data, b->data, a->len))
            T_FAIL("%s datagram %u: payloads differ", label, i);
        size_t want = sp[i].len < slot ? sp[i].len : slot;
        if (b->len != want)
            T_FAIL("%s datagram %u: length %zu, sent %zu, slot %u", label, i, b->len,
                   sp[i].len, slot);
        if (want >= SEQ_BYTES)
            CHECK_PAYLOAD(b, want);
        if (!(b->flags & VOLLEY_DGRAM_TRUNC) != (sp[i].len <= slot))
            T_FAIL("%s datagram %u: %zu bytes into a %u-byte slot, flags 0x%x", label, i,
                   sp[i].len, slot, b->flags);
        const struct exchange *xs[2] = {&xm, &xu};
        for (int k = 0; k < 2; k++) {
            const struct volley_dgram *d = &xs[k]->in.d[i];
            if (!volley_addr_equal(&d->peer, &xs[k]->from))
                T_FAIL("%s datagram %u: peer %s, want %s", label, i, t_fmt(&d->peer),
                       t_fmt(&xs[k]->from));
            if (!volley_addr_equal(&d->local, &xs[k]->to))
                T_FAIL("%s datagram %u: local %s, want %s", label, i, t_fmt(&d->local),
                       t_fmt(&xs[k]->to));
            if (!(d->flags & VOLLEY_DGRAM_TSTAMP) || d->rx_ns < xs[k]->t0 - 1000000000 ||
                d->rx_ns > xs[k]->t1 + 1000000000)
                T_FAIL("%s datagram %u: timestamp %lld outside [%lld, %lld]", label, i,
                       (long long)d->rx_ns, (long long)xs[k]->t0, (long long)xs[k]->t1);
        }
        T_ASSERT(b->ifindex != 0);
    }
    struct volley_stats m = xm.rx, u = xu.rx;
    SAME_STAT(rx_dgrams);
    SAME_STAT(rx_bytes);
    SAME_STAT(rx_truncated);
    SAME_STAT(rx_gro_buffers);
    SAME_STAT(rx_kernel_drops);
    SAME_STAT(rx_errors);
    m = xm.tx;
    u = xu.tx;
    SAME_STAT(tx_dgrams);
    SAME_STAT(tx_bytes);
    SAME_STAT(tx_gso_sends);
    SAME_STAT(tx_errors);
    t_batch_free(&xm.in);
    t_batch_free(&xu.in);
}

static int case_parity(void)
{
    static const struct spec mixed[] = {
        {0, 0},    {1, 1},    {3, 2},    {100, 3},  {1200, 1},  {1200, 1},
        {1200, 1}, {1200, 1}, {1200, 2}, {1200, 2}, {1100, 2},  {1200, 3},
        {500, 3},  {1472, 0}, {9000, 1}, {9000, 1}, {60000, 2}, {7, 3},
    };
    static const struct spec cut[] = {
        {999, 1},  {1000, 2}, {1001, 3}, {1010, 1}, {1040, 2},
        {1041, 3}, {1100, 1}, {1500, 0}, {3000, 2},
    };
    const unsigned nm = sizeof mixed / sizeof *mixed, nc = sizeof cut / sizeof *cut;
    parity_run("ipv4", "127.0.0.1:0", "127.0.0.1:0", 65535, mixed, nm);
    parity_run("ipv6", "[::1]:0", "[::1]:0", 65535, mixed, nm);
    /* IPv4 into a dual-stack socket: both pktinfo families, plain AF_INET */
    parity_run("dual-stack", "[::]:0", "127.0.0.1:0", 65535, mixed, nm);
    parity_run("ipv4, 1000-byte slots", "127.0.0.1:0", "127.0.0.1:0", 1000, cut, nc);
    parity_run("ipv6, 1000-byte slots", "[::1]:0", "[::1]:0", 1000, cut, nc);
    return 0;
}

/* ---- 10. a datagram refused in the middle of a batch ---- */

/* Where a send fails the moment the kernel runs it: broadcast without
 * SO_BROADCAST (EACCES), or no route at all. */
#define BAD_DEST "255.255.255.255:9"

/* As with sendmmsg: a batch stops at a datagram the kernel refuses. So
 * [0 1 2 bad 4 5 6] gives 3 and 0 1 2 arrive; the refused one alone then
 * fails its own call (counted once, not queued as a late report); the
 * rest follow, and 0 1 2 4 5 6 arrive once each, in order. Nothing
 * behind the failure may have gone out (the link cancelled it). */
static void refused_run(const char *label, unsigned disable, uint32_t zc, size_t len)
{
    enum { ROUNDS = 300 };
    struct volley_opts so = opts_for(URING, disable);
    so.zc_threshold = zc;
    volley_sock *tx, *rx;
    struct volley_addr to = to_mmsg(&so, &tx, &rx), bad;
    T_OK(volley_addr_parse(&bad, BAD_DEST));
    struct t_batch o = t_batch_new(7, len);
    struct t_batch in = t_batch_new(6, len);
    /* 300 rounds: a slot kept by a refused or cancelled message would run
     * the send side dry long before the last one */
    for (uint32_t round = 0; round < ROUNDS; round++) {
        uint32_t seq0 = round * 7;
        for (unsigned i = 0; i < 7; i++)
            outbox_set(&o, i, seq0 + i, len, i == 3 ? &bad : &to);
        struct volley_stats before = t_stats(tx);
        int r = volley_send(tx, o.d, 7);
        if (r != 3)
            T_FAIL("%s round %u: volley_send gave %d, want 3", label, round, r);
        recv_seq(rx, seq0, 3, len);
        struct volley_dgram extra[1];
        T_EQ(volley_recv(rx, extra, 1), 0); /* nothing behind the refusal */
        r = volley_send(tx, o.d + 3, 4);
        if (r >= 0)
            T_FAIL("%s round %u: the refused datagram first gave %d", label, round, r);
        T_EQ(volley_send(tx, o.d + 4, 3), 3);
        struct volley_stats after = t_stats(tx);
        T_EQ(after.tx_errors - before.tx_errors, 1);
        T_EQ(after.sockerr_queued - before.sockerr_queued, 0);
        unsigned got = t_recv_n(rx, in.d, 3, in.buf, len, 1000);
        T_EQ(got, 3);
        for (unsigned i = 0; i < 3; i++) {
            CHECK_PAYLOAD(&in.d[i], len);
            if (seq_of(&in.d[i]) != seq0 + 4 + i)
                T_FAIL("%s round %u: datagram %u is seq %u, want %u", label, round, i,
                       seq_of(&in.d[i]), seq0 + 4 + i);
        }
        T_EQ(volley_recv(rx, extra, 1), 0);
    }
    (void)volley_wait(tx, VOLLEY_WAIT_SEND, 10);
    struct volley_stats st = t_stats(tx);
    printf("  %s: tx_dgrams %llu, tx_errors %llu, zc sends %llu\n", label,
           (unsigned long long)st.tx_dgrams, (unsigned long long)st.tx_errors,
           (unsigned long long)st.tx_zc_sends);
    T_EQ(st.tx_dgrams, ROUNDS * 6);
    T_EQ(st.tx_errors, ROUNDS);
    t_batch_free(&in);
    t_batch_free(&o);
    volley_close(tx);
    volley_close(rx);
}

static int case_refused(void)
{
    /* only meaningful where such a send fails at once: ask mmsg */
    struct volley_opts mo = opts_for(MMSG, VOLLEY_F_GSO);
    volley_sock *tx = open_sock(&mo, "127.0.0.1:0");
    struct volley_addr bad;
    T_OK(volley_addr_parse(&bad, BAD_DEST));
    uint8_t byte = 0;
    struct volley_dgram d = {.data = &byte, .len = 1, .peer = bad};
    int r = volley_send(tx, &d, 1);
    volley_close(tx);
    if (r >= 0)
        return t_skip("a send to " BAD_DEST " does not fail at once here");
    refused_run("no gso", VOLLEY_F_GSO, 0, 300);
    refused_run("gso", 0, 0, 300);
    if (zc_supported())
        refused_run("zc", VOLLEY_F_GSO, 1024, 1200);
    return 0;
}

/* ---- 11. a socket that fills ---- */

/* A connected AF_UNIX datagram pair: the writer blocks when the reader's
 * queue is full, which loopback UDP never does. */
static void unix_pair(volley_sock **tx, volley_sock **rx)
{
    int sv[2];
    T_ASSERT(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
    struct volley_opts uo = opts_for(URING, 0), mo = opts_for(MMSG, 0);
    int r = volley_wrap(tx, sv[0], &uo);
    T_SKIP_IF(r == -ENOTSUP, "io_uring not available");
    T_OK(r);
    T_OK(volley_wrap(rx, sv[1], &mo));
    T_ASSERT(!strcmp(volley_backend_name(*tx), "uring"));
}

/* Calls of 64 datagrams, seq = c * 64 + i, until one is not taken whole;
 * returns how many were taken. */
static unsigned fill_until_full(volley_sock *tx, uint32_t call0, unsigned calls)
{
    struct t_batch o = t_batch_new(64, 100);
    unsigned taken = 0;
    for (uint32_t c = call0; c < call0 + calls; c++) {
        for (unsigned i = 0; i < 64; i++)
            outbox_set(&o, i, c * 64 + i, 100, NULL);
        int r = T_OK(volley_send(tx, o.d, 64));
        taken += (unsigned)r;
        if (r < 64)
            break;
    }
    t_batch_free(&o);
    return taken;
}

/* Like sendmmsg: a full socket stops the call (the rest stays the
 * caller's, nothing is left running in the kernel), the next call takes
 * nothing, and what was taken arrives once, in order, across calls. */
static int case_full_socket(void)
{
    enum { CALLS = 64 };
    volley_sock *tx, *rx;
    unix_pair(&tx, &rx);
    uint32_t seq = 0;
    for (int round = 0; round < 3; round++) {
        struct volley_stats before = t_stats(tx);
        unsigned taken = fill_until_full(tx, seq / 64, CALLS);
        T_ASSERT(taken < CALLS * 64); /* it filled */
        struct volley_stats st = t_stats(tx);
        /* everything taken is already sent: nothing waits in the kernel */
        T_EQ(st.tx_dgrams - before.tx_dgrams, taken);
        T_EQ(st.tx_errors, 0);
        T_ASSERT(st.tx_wouldblock > before.tx_wouldblock);
        struct t_batch o = t_batch_new(1, 100);
        outbox_set(&o, 0, 0, 100, NULL);
        T_EQ(volley_send(tx, o.d, 1), 0);
        t_batch_free(&o);
        /* the reader takes it all: in order, once */
        struct volley_dgram d[64];
        unsigned got = 0;
        long long last = t_now_ms();
        while (t_now_ms() - last < 200) {
            int r = T_OK(volley_recv(rx, d, 64));
            for (int i = 0; i < r; i++, got++) {
                CHECK_PAYLOAD(&d[i], 100);
                uint32_t q = seq_of(&d[i]);
                if (q != seq + got)
                    T_FAIL("round %d: datagram %u is seq %u, want %u", round, got, q,
                           seq + got);
            }
            if (r > 0)
                last = t_now_ms();
            else
                (void)volley_wait(rx, VOLLEY_WAIT_RECV, 20);
        }
        T_EQ(got, taken);
        T_EQ(volley_wait(tx, VOLLEY_WAIT_SEND, 1000), VOLLEY_WAIT_SEND);
        /* the 64-aligned seq of the call after the short one */
        seq = (seq + taken + 63) / 64 * 64;
    }
    /* the reader goes: the next send fails at once, not later */
    volley_close(rx);
    struct t_batch o = t_batch_new(4, 100);
    for (unsigned i = 0; i < 4; i++)
        outbox_set(&o, i, i, 100, NULL);
    int r = volley_send(tx, o.d, 4);
    if (r >= 0)
        T_FAIL("a send to a closed AF_UNIX peer gave %d, want an error", r);
    struct volley_stats st = t_stats(tx);
    T_EQ(st.tx_errors, 1);
    t_batch_free(&o);
    volley_close(tx);
    return 0;
}

/* ---- 12. a send buffer that fills and drains during a batch ---- */

/* Behind a rate-limited qdisc the send buffer fills, and frees up while a
 * batch is being sent, as it does behind a real NIC. sendmmsg stops at the
 * first EAGAIN and says how many it took; whatever volley_send says it
 * took must arrive. Returns how many of n arrived. */
static unsigned sndbuf_run(unsigned backend, uint32_t zc, struct volley_stats *st)
{
    enum { N = 200, LEN = 4000 };
    struct volley_opts so = opts_for(backend, VOLLEY_F_GSO);
    so.zc_threshold = zc;
    volley_sock *tx, *rx;
    struct volley_addr to = to_mmsg(&so, &tx, &rx);
    send_seq(tx, &to, 0, N, LEN);
    struct t_batch in = t_batch_new(N, LEN);
    unsigned got = t_recv_n(rx, in.d, N, in.buf, LEN, 1000);
    for (unsigned i = 0; i < got; i++)
        CHECK_PAYLOAD(&in.d[i], LEN);
    long long deadline = t_now_ms() + WAIT_MS;
    while (t_stats(tx).tx_dgrams + t_stats(tx).tx_errors < N && t_now_ms() < deadline)
        (void)volley_wait(tx, VOLLEY_WAIT_SEND, 10);
    *st = t_stats(tx);
    t_batch_free(&in);
    volley_close(tx);
    volley_close(rx);
    return got;
}

static int case_sndbuf_full(void)
{
    enum { N = 200 };
    if (!slow_private_loopback())
        return t_skip("no private network namespace with tc here");
    struct volley_stats st;
    unsigned ref = sndbuf_run(MMSG, 0, &st);
    if (ref != N || st.tx_wouldblock == 0)
        return t_skip("the send buffer did not fill under mmsg");
    const uint32_t zcs[2] = {0, 1024};
    for (int k = 0; k < (zc_supported() ? 2 : 1); k++) {
        unsigned got = sndbuf_run(URING, zcs[k], &st);
        printf("  zc %u: %u of %d arrived, tx_errors %llu, tx_wouldblock %llu, "
               "reports %llu\n",
               zcs[k], got, N, (unsigned long long)st.tx_errors,
               (unsigned long long)st.tx_wouldblock,
               (unsigned long long)st.sockerr_queued);
        if (got != N || st.tx_errors)
            T_FAIL("zc %u: volley_send took %d datagrams, %u arrived and %llu were "
                   "counted failed (mmsg: all %d arrived)",
                   zcs[k], N, got, (unsigned long long)st.tx_errors, N);
    }
    return 0;
}

/* A socket with no room: volley_send takes nothing, and waiting for SEND
 * sleeps until the peer makes room, instead of saying "ready" at once
 * (which would make a caller spin). Not a timing check: only whether the
 * wait reported SEND before and after the peer read. */
static int case_wait_for_room(void)
{
    int sv[2];
    T_ASSERT(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
    struct volley_opts o = opts_for(URING, 0);
    volley_sock *s;
    T_OK(volley_wrap(&s, sv[0], &o));
    static uint8_t buf[4096];
    struct volley_dgram d = {.data = buf, .len = sizeof buf};
    unsigned sent = 0;
    while (sent < 100000 && volley_send(s, &d, 1) == 1)
        sent++;
    T_ASSERT(sent < 100000);        /* the socket filled up */
    T_EQ(volley_send(s, &d, 1), 0); /* would block */
    T_EQ(volley_wait(s, VOLLEY_WAIT_SEND, 20), 0);
    for (unsigned i = 0; i < sent; i++)
        T_ASSERT(recv(sv[1], buf, sizeof buf, MSG_DONTWAIT) == sizeof buf);
    T_EQ(volley_wait(s, VOLLEY_WAIT_SEND, 1000), VOLLEY_WAIT_SEND);
    T_EQ(volley_send(s, &d, 1), 1);
    volley_close(s);
    close(sv[1]);
    return 0;
}

/* ---- 13. a socket that changes thread ---- */

/* A socket opened on the main thread, used by thread A, then by thread B
 * after A stopped (A exits, or stays alive and idle), then by the main
 * thread again: the multishot receive follows each new thread (the old
 * one is cancelled, what it had not taken stays in the socket), every
 * datagram sent to it arrives exactly once, and B's sends work. (Whether
 * the receive moved is not asserted: the kernel also finishes receives
 * for a thread that sleeps elsewhere, only later.) */
enum { MOVE_N = 600, MOVE_LEN = 200, MOVE_A = 150 };

struct mover {
    volley_sock *rx, *tx;
    struct volley_addr back; /* tx's address: B sends here */
    uint8_t seen[MOVE_N];
    unsigned got, want;
    bool stay; /* A stays alive, idle, until released */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stage; /* 1: A is done receiving; 2: A may exit */
};

/* Receive until m->got reaches m->want, 8 at a time; the last call's
 * buffers stay lent, and more may wait reaped but not delivered. */
static void mover_take(struct mover *m)
{
    struct volley_dgram d[8];
    long long t0 = t_now_ms();
    while (m->got < m->want) {
        int r = T_OK(volley_recv_wait(m->rx, d, 8, 100));
        for (int i = 0; i < r; i++) {
            CHECK_PAYLOAD(&d[i], MOVE_LEN);
            uint32_t q = seq_of(&d[i]);
            T_ASSERT(q < MOVE_N);
            if (m->seen[q]++)
                T_FAIL("seq %u arrived twice", q);
            m->got++;
        }
        if (t_now_ms() - t0 > WAIT_MS)
            T_FAIL("received %u of %u", m->got, m->want);
    }
}

static void mover_stage(struct mover *m, int stage, bool wait)
{
    pthread_mutex_lock(&m->mu);
    if (wait) {
        while (m->stage < stage)
            pthread_cond_wait(&m->cv, &m->mu);
    } else {
        m->stage = stage;
        pthread_cond_broadcast(&m->cv);
    }
    pthread_mutex_unlock(&m->mu);
}

static void *mover_a(void *arg)
{
    struct mover *m = arg;
    mover_take(m);
    mover_stage(m, 1, false);
    if (m->stay)
        mover_stage(m, 2, true);
    return NULL;
}

static void *mover_b(void *arg)
{
    struct mover *m = arg;
    mover_take(m);
    send_seq(m->rx, &m->back, 0, 20, MOVE_LEN); /* sending from B works too */
    return NULL;
}

static void move_run(bool stay)
{
    struct mover *m = calloc(1, sizeof *m);
    T_ASSERT(m);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->stay = stay;
    struct volley_opts ro = opts_for(URING, VOLLEY_F_GRO);
    ro.rx_ring_bufs = 64;
    ro.rcvbuf = 4 * MIB;
    m->rx = open_sock(&ro, "127.0.0.1:0");
    struct volley_opts so = opts_for(MMSG, 0);
    m->tx = open_sock(&so, "127.0.0.1:0");
    struct volley_addr to = t_local(m->rx);
    m->back = t_local(m->tx);
    pthread_t a, b;
    send_seq(m->tx, &to, 0, MOVE_N / 3, MOVE_LEN);
    m->want = MOVE_A;
    T_EQ(pthread_create(&a, NULL, mover_a, m), 0);
    mover_stage(m, 1, true);
    /* A holds buffers and may have more reaped: these arrive while no
     * thread enters its ring */
    send_seq(m->tx, &to, MOVE_N / 3, MOVE_N / 3, MOVE_LEN);
    if (!stay)
        T_EQ(pthread_join(a, NULL), 0);
    m->want = 2 * MOVE_N / 3 + 10;
    T_EQ(pthread_create(&b, NULL, mover_b, m), 0);
    usleep(20 * 1000);
    send_seq(m->tx, &to, 2 * MOVE_N / 3, MOVE_N - 2 * MOVE_N / 3, MOVE_LEN);
    T_EQ(pthread_join(b, NULL), 0);
    m->want = MOVE_N; /* the rest, on this thread: one more move */
    mover_take(m);
    recv_seq(m->tx, 0, 20, MOVE_LEN);
    struct volley_stats st = t_stats(m->rx);
    printf("  %s: %u received, %llu receive re-arms, %llu kernel drops\n",
           stay ? "A stays" : "A exits", m->got, (unsigned long long)st.rx_rearms,
           (unsigned long long)st.rx_kernel_drops);
    T_EQ(st.rx_kernel_drops, 0);
    if (stay)
        mover_stage(m, 2, false);
    if (stay)
        T_EQ(pthread_join(a, NULL), 0);
    volley_close(m->rx);
    volley_close(m->tx);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}

static int case_thread_move(void)
{
    int fds = t_count_fds();
    move_run(false);
    move_run(true);
    T_EQ(t_count_fds(), fds);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        {"arena_aligned", case_arena_aligned, URING, NULL},
        {"exhaustion", case_exhaustion, URING, NULL},
        {"zerocopy", case_zerocopy, URING, NULL},
        {"setup_faults", case_setup_faults, URING, NULL},
        {"disable_env", case_disable_env, URING, NULL},
        {"close_inflight", case_close_inflight, URING, NULL},
        {"submit_retry", case_submit_retry, URING, NULL},
        {"submit_stall", case_submit_stall, URING, NULL},
        {"eventfd", case_eventfd, URING, NULL},
        {"connected", case_connected, URING, NULL},
        {"steady", case_steady, URING, NULL},
        {"parity", case_parity, URING, NULL},
        {"refused", case_refused, URING, NULL},
        {"full_socket", case_full_socket, URING, NULL},
        {"sndbuf_full", case_sndbuf_full, URING, NULL},
        {"wait_for_room", case_wait_for_room, URING, NULL},
        {"thread_move", case_thread_move, URING, NULL},
    };
    struct t_run how = {.flags = T_FORK, .case_s = 60};
    body_init();
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
