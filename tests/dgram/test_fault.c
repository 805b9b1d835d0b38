/* SPDX-License-Identifier: MIT */
/* System-call faults through the seam in src/base/sys.c: EINTR, EAGAIN, short
 * sendmmsg/recvmmsg counts, ENOBUFS, asynchronous ECONNREFUSED on send and
 * receive, socket()/bind()/setsockopt() failures at open, sendmmsg missing,
 * and GSO refused mid-stream. Scalar and mmsg over IPv4 loopback, and the
 * batch cases on xnu too (sendmsg_x/recvmsg_x), whose results must be
 * mmsg's.
 *
 * Fault state and probe results are process-global, so every case runs in
 * a child process of its own and starts from a clean seam. */
#include "dgram/dgram.h"
#include "t.h"

#include <arpa/inet.h>
#include <linux/sock_diag.h>
#include <unistd.h>

#define PLEN 100

struct ops {
    enum volley__sysop send, recv;
};

static struct ops ops_of(unsigned be)
{
    if (be == VOLLEY_BACKEND_MMSG)
        return (struct ops){VOLLEY__SYS_SENDMMSG, VOLLEY__SYS_RECVMMSG};
    if (be == VOLLEY_BACKEND_XNU)
        return (struct ops){VOLLEY__SYS_SENDMSG_X, VOLLEY__SYS_RECVMSG_X};
    return (struct ops){VOLLEY__SYS_SENDMSG, VOLLEY__SYS_RECVMSG};
}

/* Sends many datagrams a call (mmsg, xnu), or one (scalar). */
static bool batching(unsigned be)
{
    return be == VOLLEY_BACKEND_MMSG || be == VOLLEY_BACKEND_XNU;
}

/* The running case's sockets: a sends to b, of the case's backend, over
 * IPv4 loopback. Each case runs in a process of its own. */
static struct {
    unsigned be;
    volley_sock *a, *b;
    struct volley_addr to; /* b's address */
} fx;

/* n numbered datagrams of len bytes from seq0 to `to`. */
static void fill(struct volley_dgram *d, uint8_t *store, unsigned n, uint32_t seq0,
                 size_t len, const struct volley_addr *to)
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t *p = store + (size_t)i * len;
        t_fill_seq(p, len, seq0 + i);
        memset(&d[i], 0, sizeof d[i]);
        d[i].data = p;
        d[i].len = len;
        d[i].peer = *to;
    }
}

/* Receive exactly n datagrams numbered seq0.. in order, and nothing more. */
static void expect_seq(volley_sock *b, unsigned n, uint32_t seq0)
{
    static struct volley_dgram d[VOLLEY_BATCH_MAX];
    static uint8_t store[VOLLEY_BATCH_MAX * PLEN];
    unsigned got = t_recv_n(b, d, n, store, PLEN, 1000);
    if (got != n)
        T_FAIL("received %u of %u datagrams", got, n);
    for (unsigned i = 0; i < n; i++) {
        uint64_t seq = T_SEQ(&d[i], PLEN);
        if (seq != seq0 + i)
            T_FAIL("datagram %u is #%llu, want #%u", i, (unsigned long long)seq,
                   seq0 + i);
    }
    volley_wait(b, VOLLEY_WAIT_RECV, 50);
    int r = volley_recv(b, d, 1);
    if (r != 0)
        T_FAIL("an extra datagram arrived (volley_recv = %d)", r);
}

/* Wait until everything sent to b over loopback is queued on it. */
static void settle(volley_sock *b)
{
    T_ASSERT(volley_wait(b, VOLLEY_WAIT_RECV, 1000) & VOLLEY_WAIT_RECV);
    usleep(20000);
}

static struct volley_dgram txd[VOLLEY_BATCH_MAX];
static uint8_t txbuf[VOLLEY_BATCH_MAX * PLEN];

/* Open fx with features `disable` off, and ten datagrams ready in txd. */
static void fx_open(unsigned disable)
{
    fx.be = t_current()->backend;
    struct volley_opts o = t_opts(fx.be);
    o.disable = disable;
    o.rcvbuf = 4 << 20;
    struct volley_addr to_a;
    t_socks(&o, "127.0.0.1:0", &fx.a, &fx.b, &fx.to, &to_a);
    T_ASSERT(!strcmp(volley_backend_name(fx.a), t_backend_of(fx.be)->name));
    fill(txd, txbuf, 10, 0, PLEN, &fx.to);
}

static int fx_close(void)
{
    volley_close(fx.a);
    volley_close(fx.b);
    return 0;
}

/* The ten datagrams from a with the nth send call failing with err (err
 * 0: taking only short_n): volley_send's result; *calls (unless NULL)
 * gets the send calls made. */
static int send_faulted(unsigned nth, int err, unsigned short_n, unsigned long *calls)
{
    enum volley__sysop op = ops_of(fx.be).send;
    volley__sys_fault_set(op, nth, 1, err, short_n);
    int r = volley_send(fx.a, txd, 10);
    if (calls)
        *calls = volley__sys_count(op);
    volley__sys_fault_clear();
    return r;
}

/* The ten datagrams sent and queued on b, then received into d with the
 * first receive call failing as send_faulted's: volley_recv's result. */
static int recv_faulted(struct volley_dgram *d, int err, unsigned short_n,
                        unsigned long *calls)
{
    T_EQ(volley_send(fx.a, txd, 10), 10);
    settle(fx.b);
    enum volley__sysop op = ops_of(fx.be).recv;
    volley__sys_fault_set(op, 1, 1, err, short_n);
    int r = volley_recv(fx.b, d, 10);
    if (calls)
        *calls = volley__sys_count(op);
    volley__sys_fault_clear();
    return r;
}

/* ---- cases: each returns 0 (pass) or T_SKIP, or exits 1 ---- */

static int eintr_send(void)
{
    fx_open(0);
    unsigned long calls;
    int r = send_faulted(1, EINTR, 0, &calls);
    T_EQ(r, 10);
    /* the interrupted call, then the real one(s) */
    T_EQ(calls, batching(fx.be) ? 2 : 11);
    expect_seq(fx.b, 10, 0);
    return fx_close();
}

static int eintr_recv(void)
{
    fx_open(0);
    struct volley_dgram d[10];
    unsigned long calls;
    int r = recv_faulted(d, EINTR, 0, &calls);
    T_EQ(r, 10);
    T_ASSERT(calls >= 2);
    for (unsigned i = 0; i < 10; i++)
        T_EQ(T_SEQ(&d[i], PLEN), i);
    return fx_close();
}

static int eagain_send(void)
{
    fx_open(VOLLEY_F_GSO);
    struct volley_stats s0 = t_stats(fx.a);
    /* scalar: the 3rd datagram would block; mmsg: the whole first call */
    unsigned nth = batching(fx.be) ? 1 : 3;
    int want = batching(fx.be) ? 0 : 2;
    int r = send_faulted(nth, EAGAIN, 0, NULL);
    struct volley_stats s1 = t_stats(fx.a);
    T_EQ(r, want);
    T_EQ(s1.tx_wouldblock - s0.tx_wouldblock, 1);
    T_EQ(s1.tx_dgrams - s0.tx_dgrams, want);
    T_EQ(s1.tx_errors - s0.tx_errors, 0);
    /* the rest goes with the next call */
    T_EQ(volley_send(fx.a, txd + want, 10 - (unsigned)want), 10 - want);
    expect_seq(fx.b, 10, 0);
    return fx_close();
}

static int short_send(void)
{
    fx_open(VOLLEY_F_GSO);
    struct volley_stats s0 = t_stats(fx.a);
    unsigned long calls;
    int r = send_faulted(1, 0, 3, &calls);
    struct volley_stats s1 = t_stats(fx.a);
    T_EQ(r, 10);
    T_EQ(calls, 2);
    T_EQ(s1.tx_syscalls - s0.tx_syscalls, 2);
    T_EQ(s1.tx_dgrams - s0.tx_dgrams, 10);
    expect_seq(fx.b, 10, 0);
    return fx_close();
}

static int short_recv(void)
{
    fx_open(VOLLEY_F_GSO | VOLLEY_F_GRO);
    struct volley_dgram d[10];
    int r = recv_faulted(d, 0, 3, NULL);
    /* a short count is data, not an error; the rest comes next */
    T_ASSERT(r >= 1 && r <= 3);
    for (int i = 0; i < r; i++)
        T_EQ(T_SEQ(&d[i], PLEN), i);
    expect_seq(fx.b, 10 - (unsigned)r, (uint32_t)r);
    return fx_close();
}

static int nobufs_first(void)
{
    fx_open(0);
    int r = send_faulted(1, ENOBUFS, 0, NULL);
    struct volley_stats st = t_stats(fx.a);
    T_EQ(r, -ENOBUFS);
    T_EQ(st.err_nobufs, 1);
    T_EQ(st.tx_dgrams, 0);
    /* nothing went; a retry sends everything */
    T_EQ(volley_send(fx.a, txd, 10), 10);
    expect_seq(fx.b, 10, 0);
    return fx_close();
}

static int nobufs_later(void)
{
    fx_open(0);
    int r = send_faulted(4, ENOBUFS, 0, NULL);
    T_EQ(r, 3);
    T_EQ(t_stats(fx.a).tx_dgrams, 3);
    T_EQ(volley_send(fx.a, txd + 3, 7), 7);
    expect_seq(fx.b, 10, 0);
    return fx_close();
}

static void expect_one_report(volley_sock *s, int err)
{
    struct volley_sockerr e[4];
    memset(e, 0xa5, sizeof e);
    T_EQ(volley_errors(s, e, 4), 1);
    T_EQ(e[0].error, err);
    T_EQ(e[0].origin, 0);
    T_EQ(volley_errors(s, e, 4), 0);
}

static int connrefused_send(void)
{
    fx_open(0);
    int r = send_faulted(1, ECONNREFUSED, 0, NULL);
    struct volley_stats st = t_stats(fx.a);
    /* an earlier datagram's ICMP: reported, never fails this send */
    T_EQ(r, 10);
    T_EQ(st.err_connrefused, 1);
    T_EQ(st.tx_errors, 0);
    T_EQ(st.tx_dgrams, 10);
    expect_one_report(fx.a, -ECONNREFUSED);
    expect_seq(fx.b, 10, 0);
    return fx_close();
}

static int connrefused_recv(void)
{
    fx_open(0);
    struct volley_dgram d[10];
    int r = recv_faulted(d, ECONNREFUSED, 0, NULL);
    struct volley_stats st = t_stats(fx.b);
    /* the data that is waiting comes back, not the error */
    T_EQ(r, 10);
    for (unsigned i = 0; i < 10; i++)
        T_EQ(T_SEQ(&d[i], PLEN), i);
    T_EQ(st.err_connrefused, 1);
    T_EQ(st.rx_errors, 0);
    expect_one_report(fx.b, -ECONNREFUSED);
    return fx_close();
}

static int open_fails(enum volley__sysop op, int err)
{
    struct volley_opts o = t_opts(t_current()->backend);
    int before = t_count_fds();
    volley_sock *s = NULL;
    volley__sys_fault_set(op, 1, 0, err, 0); /* every call, probes included */
    int r = volley_open(&s, "127.0.0.1:0", &o);
    volley__sys_fault_clear();
    T_EQ(r, -err);
    T_EQ(t_count_fds(), before);
    /* and with the fault gone the same open works */
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    volley_close(s);
    T_EQ(t_count_fds(), before);
    return 0;
}

static int emfile(void)
{
    return open_fails(VOLLEY__SYS_SOCKET, EMFILE);
}

static int eaddrinuse(void)
{
    return open_fails(VOLLEY__SYS_BIND, EADDRINUSE);
}

/* Every setsockopt refused: the features are simply off, datagrams flow. */
static int setsockopt_refused(void)
{
    volley__sys_fault_set(VOLLEY__SYS_SETSOCKOPT, 1, 0, ENOPROTOOPT, 0);
    fx_open(0);
    volley__sys_fault_clear();
    T_EQ(volley_features(fx.a), 0);
    T_EQ(volley_gso_max_segments(fx.a), 0);
    T_EQ(volley_send(fx.a, txd, 10), 10);
    expect_seq(fx.b, 10, 0);
    return fx_close();
}

/* A kernel without sendmmsg: auto falls back, a forced mmsg is refused. */
static int no_sendmmsg(void)
{
    int before = t_count_fds();
    volley_sock *a, *b;
    struct volley_opts o = t_opts(VOLLEY_BACKEND_AUTO);
    volley__sys_fault_set(VOLLEY__SYS_SENDMMSG, 1, 0, ENOSYS, 0);
    T_OK(volley_open(&a, "127.0.0.1:0", &o));
    T_OK(volley_open(&b, "127.0.0.1:0", &o));
    if (strcmp(volley_backend_name(a), "scalar"))
        T_FAIL("sendmmsg ENOSYS, auto: backend %s, want scalar", volley_backend_name(a));
    struct volley_opts m = t_opts(VOLLEY_BACKEND_MMSG);
    volley_sock *c = NULL;
    int r = volley_open(&c, "127.0.0.1:0", &m);
    T_EQ(r, -ENOTSUP);
    /* the auto socket still works (plain sendmsg) */
    struct volley_addr to = t_local(b);
    fill(txd, txbuf, 10, 0, PLEN, &to);
    T_EQ(volley_send(a, txd, 10), 10);
    T_EQ(volley__sys_count(VOLLEY__SYS_SENDMMSG) >= 3, 1);
    volley__sys_fault_clear();
    expect_seq(b, 10, 0);
    volley_close(a);
    volley_close(b);
    T_EQ(t_count_fds(), before);
    return 0;
}

/* The device refuses GSO (EIO) in the middle of a long run: the refused
 * message goes again unsegmented, GSO stays off, nothing is lost or sent
 * twice. */
static int gso_refused(void)
{
    enum { TOTAL = 20000, BATCH = 64, LEN = 1000 };
    fx_open(0);
    if (!volley_gso_max_segments(fx.a))
        return t_skip("GSO unavailable");
    static uint8_t seen[TOTAL];
    static uint8_t buf[BATCH * LEN];
    static uint8_t keep[BATCH * LEN];
    static struct volley_dgram d[BATCH], rd[BATCH];
    unsigned received = 0;
    volley__sys_fault_set(VOLLEY__SYS_SENDMMSG, 3, 1, EIO, 0);
    for (unsigned seq0 = 0; seq0 < TOTAL; seq0 += BATCH) {
        unsigned n = TOTAL - seq0 < BATCH ? TOTAL - seq0 : BATCH;
        fill(d, buf, n, seq0, LEN, &fx.to);
        if (t_send_all(fx.a, d, n, 5000) != n)
            T_FAIL("batch at #%u not sent", seq0);
        /* drain what this batch delivered before sending more */
        unsigned got = t_recv_n(fx.b, rd, seq0 + n - received, keep, LEN, 2000);
        for (unsigned i = 0; i < got; i++) {
            uint64_t seq = T_SEQ(&rd[i], LEN);
            if (seq >= TOTAL)
                T_FAIL("unknown datagram #%llu", (unsigned long long)seq);
            if (seen[seq]++)
                T_FAIL("datagram #%llu arrived twice", (unsigned long long)seq);
            received++;
        }
        if (received != seq0 + n) {
            unsigned missing = 0;
            for (unsigned k = 0; k < seq0 + n; k++)
                if (!seen[k] && missing++ < 5)
                    fprintf(stderr, "  missing #%u\n", k);
            T_FAIL("after batch at #%u: %u received, want %u", seq0, received, seq0 + n);
        }
    }
    unsigned long calls = volley__sys_count(VOLLEY__SYS_SENDMMSG);
    volley__sys_fault_clear();
    T_ASSERT(calls >= 3);
    volley_wait(fx.b, VOLLEY_WAIT_RECV, 50);
    T_EQ(volley_recv(fx.b, rd, 1), 0);
    struct volley_stats st = t_stats(fx.a);
    T_EQ(volley_gso_max_segments(fx.a), 0);
    T_EQ(st.tx_gso_fallback, 1);
    T_EQ(st.tx_dgrams, TOTAL);
    T_EQ(st.tx_errors, 0);
    T_ASSERT(st.tx_gso_sends >= 2);
    return fx_close();
}

/* EINVAL on a segmented message that the same datagrams get unsegmented
 * too is their own error (a batch to port 0, or from a source address that
 * is not ours), not GSO's: GSO stays on, and an explicit GSO descriptor is
 * still sent segmented afterwards. Once, any such EINVAL turned GSO off for
 * good. */
static int gso_einval_own(void)
{
    fx_open(0);
    unsigned segs = volley_gso_max_segments(fx.a);
    if (!segs)
        return t_skip("GSO unavailable");
    struct volley_addr port0 = fx.to, stranger;
    port0.sin.sin_port = 0;
    fill(txd, txbuf, 8, 0, PLEN, &port0);
    T_EQ(volley_send(fx.a, txd, 8), -EINVAL);
    T_EQ(volley_gso_max_segments(fx.a), segs);
    T_OK(volley_addr_parse(&stranger, "192.0.2.1:0"));
    fill(txd, txbuf, 8, 0, PLEN, &fx.to);
    for (unsigned i = 0; i < 8; i++)
        txd[i].local = stranger;
    T_ASSERT(volley_send(fx.a, txd, 8) < 0);
    T_EQ(volley_gso_max_segments(fx.a), segs);
    struct volley_stats st = t_stats(fx.a);
    T_EQ(st.tx_gso_fallback, 0);
    uint64_t gso_before = st.tx_gso_sends;
    fill(txd, txbuf, 8, 0, PLEN, &fx.to);
    struct volley_dgram one = {
        .data = txbuf, .len = 8 * PLEN, .segment = PLEN, .peer = fx.to};
    T_EQ(volley_send(fx.a, &one, 1), 1);
    expect_seq(fx.b, 8, 0);
    st = t_stats(fx.a);
    T_EQ(st.tx_gso_sends, gso_before + 1);
    /* An injected refusal of the segmented message alone is GSO's: off. */
    volley__sys_fault_set(fx.be == VOLLEY_BACKEND_URING ? VOLLEY__SYS_URING_SUBMIT
                                                        : VOLLEY__SYS_SENDMMSG,
                          1, 1, EINVAL, 0);
    int r = volley_send(fx.a, &one, 1);
    volley__sys_fault_clear();
    if (fx.be != VOLLEY_BACKEND_URING) { /* uring's submit fault is not a send result */
        T_EQ(r, 1);
        expect_seq(fx.b, 8, 0);
        T_EQ(volley_gso_max_segments(fx.a), 0);
        T_EQ(t_stats(fx.a).tx_gso_fallback, 1);
    }
    return fx_close();
}

/* The first open probes GSO while no fd is free: that socket goes without
 * GSO, but the failure is not taken as the kernel's verdict: the next open
 * probes again. Once, it was cached for the whole process. */
static int gso_probe_transient(void)
{
    struct volley_opts o = t_opts(t_current()->backend);
    volley_sock *s;
    /* socket() call 1 is the socket's own, 2 and 3 are the probe's */
    volley__sys_fault_set(VOLLEY__SYS_SOCKET, 2, 2, EMFILE, 0);
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    volley__sys_fault_clear();
    T_EQ(volley_gso_max_segments(s), 0);
    volley_close(s);
    struct volley_caps c;
    T_OK(volley_probe(&c, sizeof c));
    if (!c.gso.ok)
        return t_skip("the kernel has no GSO");
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    T_EQ(volley_gso_max_segments(s), c.gso_max_segments);
    volley_close(s);
    return 0;
}

/* A forced uring open reports what stopped it: a kernel without usable
 * io_uring is -ENOTSUP, running out of fds or memory is itself. Once,
 * every failure came back as -ENOTSUP. */
static int uring_open_errors(void)
{
    static const struct {
        enum volley__sysop op;
        int err, want;
    } cases[] = {
        {VOLLEY__SYS_URING_INIT, EMFILE, -EMFILE},
        {VOLLEY__SYS_URING_INIT, ENFILE, -ENFILE},
        {VOLLEY__SYS_URING_INIT, ENOMEM, -ENOMEM},
        {VOLLEY__SYS_URING_INIT, ENOSYS, -ENOTSUP},
        {VOLLEY__SYS_URING_INIT, EPERM, -ENOTSUP},
        {VOLLEY__SYS_URING_REGISTER, ENOMEM, -ENOMEM},
        {VOLLEY__SYS_URING_REGISTER, EINVAL, -ENOTSUP},
        {VOLLEY__SYS_EVENTFD, EMFILE, -EMFILE},
        {VOLLEY__SYS_MMAP, ENOMEM, -ENOMEM},
    };
    struct volley_opts o = t_opts(t_current()->backend);
    int before = t_count_fds();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        volley_sock *s = NULL;
        volley__sys_fault_set(cases[i].op, 1, 0, cases[i].err, 0);
        int r = volley_open(&s, "127.0.0.1:0", &o);
        volley__sys_fault_clear();
        if (r != cases[i].want)
            T_FAIL("case %zu: %s injected: volley_open = %d (%s), want %d", i,
                   volley_strerror(-cases[i].err), r, volley_strerror(r), cases[i].want);
        T_EQ(t_count_fds(), before);
    }
    return 0;
}

/* Drops a socket saw before volley_wrap are not counted as the wrapped
 * socket's: counters start at the wrap. */
static int wrap_old_drops(void)
{
    int rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof a;
    int tiny = 1;
    T_ASSERT(rx >= 0 && tx >= 0);
    T_ASSERT(setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny) == 0);
    T_ASSERT(bind(rx, (struct sockaddr *)&a, sizeof a) == 0);
    T_ASSERT(getsockname(rx, (struct sockaddr *)&a, &len) == 0);
    static uint8_t buf[1000];
    for (int i = 0; i < 64; i++)
        (void)sendto(tx, buf, sizeof buf, 0, (struct sockaddr *)&a, sizeof a);
    uint32_t mem[SK_MEMINFO_VARS];
    len = sizeof mem;
    T_ASSERT(getsockopt(rx, SOL_SOCKET, SO_MEMINFO, mem, &len) == 0);
    if (mem[SK_MEMINFO_DROPS] == 0)
        return t_skip("nothing was dropped: nothing to check");
    struct volley_opts o = t_opts(t_current()->backend);
    volley_sock *s;
    T_OK(volley_wrap(&s, rx, &o));
    T_EQ(t_stats(s).rx_kernel_drops, 0);
    static struct volley_dgram d[64];
    unsigned got = 0;
    for (int r; (r = volley_recv(s, d, 64)) > 0;)
        got += (unsigned)r;
    T_ASSERT(got > 0);
    T_EQ(t_stats(s).rx_kernel_drops, 0);
    /* New drops after the wrap are counted. */
    for (int i = 0; i < 64; i++)
        (void)sendto(tx, buf, sizeof buf, 0, (struct sockaddr *)&a, sizeof a);
    T_ASSERT(t_stats(s).rx_kernel_drops > 0);
    volley_close(s);
    close(tx);
    return 0;
}

/* Case f on backend VOLLEY_BACKEND_<ID>, named "f be". */
#define ON(f, be, ID)                                                                    \
    {                                                                                    \
        .name = #f " " #be, .fn = f, .backend = VOLLEY_BACKEND_##ID                      \
    }
#define BOTH(f) ON(f, scalar, SCALAR), ON(f, mmsg, MMSG), ON(f, xnu, XNU)

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        BOTH(eintr_send),
        BOTH(eintr_recv),
        BOTH(eagain_send),
        ON(short_send, mmsg, MMSG),
        ON(short_send, xnu, XNU),
        ON(short_recv, mmsg, MMSG),
        ON(short_recv, xnu, XNU),
        BOTH(nobufs_first),
        ON(nobufs_later, scalar, SCALAR),
        BOTH(connrefused_send),
        BOTH(connrefused_recv),
        BOTH(emfile),
        BOTH(eaddrinuse),
        BOTH(setsockopt_refused),
        T_CASE(no_sendmmsg),
        ON(gso_refused, mmsg, MMSG),
        ON(gso_einval_own, mmsg, MMSG),
        ON(gso_einval_own, uring, URING),
        ON(gso_probe_transient, mmsg, MMSG),
        {.name = "uring_open_errors",
         .fn = uring_open_errors,
         .backend = VOLLEY_BACKEND_URING},
        BOTH(wrap_old_drops),
    };
    struct t_run how = {.flags = T_FORK, .case_s = 60};
    unsetenv("VOLLEY_BACKEND");
    unsetenv("VOLLEY_DISABLE");
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
