/* System-call faults through the seam in src/sys.c: EINTR, EAGAIN, short
 * sendmmsg/recvmmsg counts, ENOBUFS, asynchronous ECONNREFUSED on send and
 * receive, socket()/bind()/setsockopt() failures at open, sendmmsg missing,
 * and GSO refused mid-stream. Scalar and mmsg over IPv4 loopback.
 *
 * Fault state and probe results are process-global, so every case runs in
 * a child process of its own and starts from a clean seam. */
#include "internal.h"
#include "t.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/sock_diag.h>
#include <sys/wait.h>
#include <unistd.h>

#define PLEN 100

struct ops {
    enum volley__sysop send, recv;
};

static struct ops ops_of(unsigned be)
{
    if (be == VOLLEY_BACKEND_MMSG)
        return (struct ops){VOLLEY__SYS_SENDMMSG, VOLLEY__SYS_RECVMMSG};
    return (struct ops){VOLLEY__SYS_SENDMSG, VOLLEY__SYS_RECVMSG};
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        T_FAIL("opendir(/proc/self/fd)");
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static struct volley_stats stats(const volley_sock *s)
{
    struct volley_stats st;
    T_OK(volley_get_stats(s, &st, sizeof st));
    return st;
}

/* Sender a and receiver b on 127.0.0.1; flags VOLLEY_F_* to disable. */
static void pair_up(unsigned be, unsigned disable, volley_sock **a, volley_sock **b,
                    struct volley_addr *to_b)
{
    struct volley_opts o = t_opts(be);
    o.disable = disable;
    o.rcvbuf = 4 << 20;
    struct volley_addr to_a;
    t_socks(&o, "127.0.0.1:0", a, b, to_b, &to_a);
    const char *want = be == VOLLEY_BACKEND_MMSG    ? "mmsg"
                       : be == VOLLEY_BACKEND_URING ? "uring"
                                                    : "scalar";
    T_ASSERT(!strcmp(volley_backend_name(*a), want));
}

/* True when a uring socket opens here (io_uring may be refused). */
static bool uring_works(void)
{
    struct volley_opts o = t_opts(VOLLEY_BACKEND_URING);
    volley_sock *s;
    if (volley_open(&s, "127.0.0.1:0", &o) < 0)
        return false;
    volley_close(s);
    return true;
}

/* n datagrams of len bytes numbered from seq0. */
static void fill(struct volley_dgram *d, uint8_t *store, unsigned n, uint32_t seq0,
                 size_t len, const struct volley_addr *to)
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t *p = store + (size_t)i * len;
        uint32_t seq = seq0 + i;
        memcpy(p, &seq, sizeof seq);
        for (size_t k = sizeof seq; k < len; k++)
            p[k] = t_byte(seq, k);
        memset(&d[i], 0, sizeof d[i]);
        d[i].data = p;
        d[i].len = len;
        d[i].peer = *to;
    }
}

static uint32_t check_payload(const struct volley_dgram *x, size_t len)
{
    uint32_t seq;
    if (x->len != len)
        T_FAIL("datagram of %zu bytes, want %zu", x->len, len);
    memcpy(&seq, x->data, sizeof seq);
    const uint8_t *p = x->data;
    for (size_t k = sizeof seq; k < len; k++)
        if (p[k] != t_byte(seq, k))
            T_FAIL("datagram %u corrupt at byte %zu", seq, k);
    return seq;
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
        uint32_t seq = check_payload(&d[i], PLEN);
        if (seq != seq0 + i)
            T_FAIL("datagram %u is #%u, want #%u", i, seq, seq0 + i);
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

/* ---- cases: each returns 0 (pass) or T_SKIP, or exits 1 ---- */

static int eintr_send(unsigned be)
{
    volley_sock *a, *b;
    struct volley_addr to;
    pair_up(be, 0, &a, &b, &to);
    fill(txd, txbuf, 10, 0, PLEN, &to);
    volley__sys_fault_set(ops_of(be).send, 1, 1, EINTR, 0);
    int r = volley_send(a, txd, 10);
    unsigned long calls = volley__sys_count(ops_of(be).send);
    volley__sys_fault_clear();
    T_EQ(r, 10);
    /* the interrupted call, then the real one(s) */
    T_EQ(calls, be == VOLLEY_BACKEND_MMSG ? 2 : 11);
    expect_seq(b, 10, 0);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int eintr_recv(unsigned be)
{
    volley_sock *a, *b;
    struct volley_addr to;
    pair_up(be, 0, &a, &b, &to);
    fill(txd, txbuf, 10, 0, PLEN, &to);
    T_EQ(volley_send(a, txd, 10), 10);
    settle(b);
    struct volley_dgram d[10];
    volley__sys_fault_set(ops_of(be).recv, 1, 1, EINTR, 0);
    int r = volley_recv(b, d, 10);
    unsigned long calls = volley__sys_count(ops_of(be).recv);
    volley__sys_fault_clear();
    T_EQ(r, 10);
    T_ASSERT(calls >= 2);
    for (unsigned i = 0; i < 10; i++)
        T_EQ(check_payload(&d[i], PLEN), i);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int eagain_send(unsigned be)
{
    volley_sock *a, *b;
    struct volley_addr to;
    pair_up(be, VOLLEY_F_GSO, &a, &b, &to);
    fill(txd, txbuf, 10, 0, PLEN, &to);
    struct volley_stats s0 = stats(a);
    /* scalar: the 3rd datagram would block; mmsg: the whole first call */
    unsigned nth = be == VOLLEY_BACKEND_MMSG ? 1 : 3;
    int want = be == VOLLEY_BACKEND_MMSG ? 0 : 2;
    volley__sys_fault_set(ops_of(be).send, nth, 1, EAGAIN, 0);
    int r = volley_send(a, txd, 10);
    volley__sys_fault_clear();
    struct volley_stats s1 = stats(a);
    T_EQ(r, want);
    T_EQ(s1.tx_wouldblock - s0.tx_wouldblock, 1);
    T_EQ(s1.tx_dgrams - s0.tx_dgrams, want);
    T_EQ(s1.tx_errors - s0.tx_errors, 0);
    /* the rest goes with the next call */
    T_EQ(volley_send(a, txd + want, 10 - (unsigned)want), 10 - want);
    expect_seq(b, 10, 0);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int short_send(unsigned be)
{
    volley_sock *a, *b;
    struct volley_addr to;
    pair_up(be, VOLLEY_F_GSO, &a, &b, &to);
    fill(txd, txbuf, 10, 0, PLEN, &to);
    struct volley_stats s0 = stats(a);
    volley__sys_fault_set(VOLLEY__SYS_SENDMMSG, 1, 1, 0, 3);
    int r = volley_send(a, txd, 10);
    unsigned long calls = volley__sys_count(VOLLEY__SYS_SENDMMSG);
    volley__sys_fault_clear();
    struct volley_stats s1 = stats(a);
    T_EQ(r, 10);
    T_EQ(calls, 2);
    T_EQ(s1.tx_syscalls - s0.tx_syscalls, 2);
    T_EQ(s1.tx_dgrams - s0.tx_dgrams, 10);
    expect_seq(b, 10, 0);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int short_recv(unsigned be)
{
    volley_sock *a, *b;
    struct volley_addr to;
    pair_up(be, VOLLEY_F_GSO | VOLLEY_F_GRO, &a, &b, &to);
    fill(txd, txbuf, 10, 0, PLEN, &to);
    T_EQ(volley_send(a, txd, 10), 10);
    settle(b);
    struct volley_dgram d[10];
    volley__sys_fault_set(VOLLEY__SYS_RECVMMSG, 1, 1, 0, 3);
    int r = volley_recv(b, d, 10);
    volley__sys_fault_clear();
    /* a short count is data, not an error; the rest comes next */
    T_ASSERT(r >= 1 && r <= 3);
    for (int i = 0; i < r; i++)
        T_EQ(check_payload(&d[i], PLEN), i);
    expect_seq(b, 10 - (unsigned)r, (uint32_t)r);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int nobufs_first(unsigned be)
{
    volley_sock *a, *b;
    struct volley_addr to;
    pair_up(be, 0, &a, &b, &to);
    fill(txd, txbuf, 10, 0, PLEN, &to);
    volley__sys_fault_set(ops_of(be).send, 1, 1, ENOBUFS, 0);
    int r = volley_send(a, txd, 10);
    volley__sys_fault_clear();
    struct volley_stats st = stats(a);
    T_EQ(r, -ENOBUFS);
    T_EQ(st.err_nobufs, 1);
    T_EQ(st.tx_dgrams, 0);
    /* nothing went; a retry sends everything */
    T_EQ(volley_send(a, txd, 10), 10);
    expect_seq(b, 10, 0);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int nobufs_later(unsigned be)
{
    volley_sock *a, *b;
    struct volley_addr to;
    pair_up(be, 0, &a, &b, &to);
    fill(txd, txbuf, 10, 0, PLEN, &to);
    volley__sys_fault_set(VOLLEY__SYS_SENDMSG, 4, 1, ENOBUFS, 0);
    int r = volley_send(a, txd, 10);
    volley__sys_fault_clear();
    T_EQ(r, 3);
    T_EQ(stats(a).tx_dgrams, 3);
    T_EQ(volley_send(a, txd + 3, 7), 7);
    expect_seq(b, 10, 0);
    volley_close(a);
    volley_close(b);
    return 0;
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

static int connrefused_send(unsigned be)
{
    volley_sock *a, *b;
    struct volley_addr to;
    pair_up(be, 0, &a, &b, &to);
    fill(txd, txbuf, 10, 0, PLEN, &to);
    volley__sys_fault_set(ops_of(be).send, 1, 1, ECONNREFUSED, 0);
    int r = volley_send(a, txd, 10);
    volley__sys_fault_clear();
    struct volley_stats st = stats(a);
    /* an earlier datagram's ICMP: reported, never fails this send */
    T_EQ(r, 10);
    T_EQ(st.err_connrefused, 1);
    T_EQ(st.tx_errors, 0);
    T_EQ(st.tx_dgrams, 10);
    expect_one_report(a, -ECONNREFUSED);
    expect_seq(b, 10, 0);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int connrefused_recv(unsigned be)
{
    volley_sock *a, *b;
    struct volley_addr to;
    pair_up(be, 0, &a, &b, &to);
    fill(txd, txbuf, 10, 0, PLEN, &to);
    T_EQ(volley_send(a, txd, 10), 10);
    settle(b);
    struct volley_dgram d[10];
    volley__sys_fault_set(ops_of(be).recv, 1, 1, ECONNREFUSED, 0);
    int r = volley_recv(b, d, 10);
    volley__sys_fault_clear();
    struct volley_stats st = stats(b);
    /* the data that is waiting comes back, not the error */
    T_EQ(r, 10);
    for (unsigned i = 0; i < 10; i++)
        T_EQ(check_payload(&d[i], PLEN), i);
    T_EQ(st.err_connrefused, 1);
    T_EQ(st.rx_errors, 0);
    expect_one_report(b, -ECONNREFUSED);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int open_fails(unsigned be, enum volley__sysop op, int err)
{
    struct volley_opts o = t_opts(be);
    int before = count_fds();
    volley_sock *s = NULL;
    volley__sys_fault_set(op, 1, 0, err, 0); /* every call, probes included */
    int r = volley_open(&s, "127.0.0.1:0", &o);
    volley__sys_fault_clear();
    T_EQ(r, -err);
    T_EQ(count_fds(), before);
    /* and with the fault gone the same open works */
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    volley_close(s);
    T_EQ(count_fds(), before);
    return 0;
}

static int emfile(unsigned be)
{
    return open_fails(be, VOLLEY__SYS_SOCKET, EMFILE);
}

static int eaddrinuse(unsigned be)
{
    return open_fails(be, VOLLEY__SYS_BIND, EADDRINUSE);
}

/* Every setsockopt refused: the features are simply off, datagrams flow. */
static int setsockopt_refused(unsigned be)
{
    volley_sock *a, *b;
    struct volley_addr to;
    volley__sys_fault_set(VOLLEY__SYS_SETSOCKOPT, 1, 0, ENOPROTOOPT, 0);
    pair_up(be, 0, &a, &b, &to);
    volley__sys_fault_clear();
    T_EQ(volley_features(a), 0);
    T_EQ(volley_gso_max_segments(a), 0);
    fill(txd, txbuf, 10, 0, PLEN, &to);
    T_EQ(volley_send(a, txd, 10), 10);
    expect_seq(b, 10, 0);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* A kernel without sendmmsg: auto falls back, a forced mmsg is refused. */
static int no_sendmmsg(unsigned be)
{
    (void)be;
    int before = count_fds();
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
    struct volley_addr to;
    T_OK(volley_local_addr(b, &to));
    fill(txd, txbuf, 10, 0, PLEN, &to);
    T_EQ(volley_send(a, txd, 10), 10);
    T_EQ(volley__sys_count(VOLLEY__SYS_SENDMMSG) >= 3, 1);
    volley__sys_fault_clear();
    expect_seq(b, 10, 0);
    volley_close(a);
    volley_close(b);
    T_EQ(count_fds(), before);
    return 0;
}

/* The device refuses GSO (EIO) in the middle of a long run: the refused
 * message goes again unsegmented, GSO stays off, nothing is lost or sent
 * twice. */
static int gso_refused(unsigned be)
{
    enum { TOTAL = 20000, BATCH = 64, LEN = 1000 };
    volley_sock *a, *b;
    struct volley_addr to;
    pair_up(be, 0, &a, &b, &to);
    if (!volley_gso_max_segments(a)) {
        fprintf(stderr, "  GSO unavailable\n");
        return T_SKIP;
    }
    static uint8_t seen[TOTAL];
    static uint8_t buf[BATCH * LEN];
    static struct volley_dgram d[BATCH], rd[VOLLEY_BATCH_MAX];
    unsigned received = 0;
    volley__sys_fault_set(VOLLEY__SYS_SENDMMSG, 3, 1, EIO, 0);
    for (unsigned seq0 = 0; seq0 < TOTAL; seq0 += BATCH) {
        unsigned n = TOTAL - seq0 < BATCH ? TOTAL - seq0 : BATCH;
        fill(d, buf, n, seq0, LEN, &to);
        if (t_send_all(a, d, n, 5000) != n)
            T_FAIL("batch at #%u not sent", seq0);
        /* drain what this batch delivered before sending more */
        long long deadline = t_now_ms() + 2000;
        while (received < seq0 + n && t_now_ms() < deadline) {
            int r = volley_recv(b, rd, VOLLEY_BATCH_MAX);
            if (r < 0)
                T_FAIL("volley_recv: %s", volley_strerror(r));
            if (r == 0) {
                volley_wait(b, VOLLEY_WAIT_RECV, 50);
                continue;
            }
            for (int i = 0; i < r; i++) {
                uint32_t seq = check_payload(&rd[i], LEN);
                if (seq >= TOTAL)
                    T_FAIL("unknown datagram #%u", seq);
                if (seen[seq]++)
                    T_FAIL("datagram #%u arrived twice", seq);
                received++;
            }
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
    volley_wait(b, VOLLEY_WAIT_RECV, 50);
    T_EQ(volley_recv(b, rd, 1), 0);
    struct volley_stats st = stats(a);
    T_EQ(volley_gso_max_segments(a), 0);
    T_EQ(st.tx_gso_fallback, 1);
    T_EQ(st.tx_dgrams, TOTAL);
    T_EQ(st.tx_errors, 0);
    T_ASSERT(st.tx_gso_sends >= 2);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* EINVAL on a segmented message that the same datagrams get unsegmented
 * too is their own error (a batch to port 0, or from a source address that
 * is not ours), not GSO's: GSO stays on, and an explicit GSO descriptor is
 * still sent segmented afterwards. Once, any such EINVAL turned GSO off for
 * good. */
static int gso_einval_own(unsigned be)
{
    if (be == VOLLEY_BACKEND_URING && !uring_works())
        return T_SKIP;
    volley_sock *a, *b;
    struct volley_addr to;
    pair_up(be, 0, &a, &b, &to);
    unsigned segs = volley_gso_max_segments(a);
    if (!segs)
        return T_SKIP;
    struct volley_addr port0 = to, stranger;
    port0.sin.sin_port = 0;
    fill(txd, txbuf, 8, 0, PLEN, &port0);
    T_EQ(volley_send(a, txd, 8), -EINVAL);
    T_EQ(volley_gso_max_segments(a), segs);
    T_OK(volley_addr_parse(&stranger, "192.0.2.1:0"));
    fill(txd, txbuf, 8, 0, PLEN, &to);
    for (unsigned i = 0; i < 8; i++)
        txd[i].local = stranger;
    T_ASSERT(volley_send(a, txd, 8) < 0);
    T_EQ(volley_gso_max_segments(a), segs);
    struct volley_stats st = stats(a);
    T_EQ(st.tx_gso_fallback, 0);
    uint64_t gso_before = st.tx_gso_sends;
    fill(txd, txbuf, 8, 0, PLEN, &to);
    struct volley_dgram one = {
        .data = txbuf, .len = 8 * PLEN, .segment = PLEN, .peer = to};
    T_EQ(volley_send(a, &one, 1), 1);
    expect_seq(b, 8, 0);
    st = stats(a);
    T_EQ(st.tx_gso_sends, gso_before + 1);
    /* An injected refusal of the segmented message alone is GSO's: off. */
    volley__sys_fault_set(be == VOLLEY_BACKEND_URING ? VOLLEY__SYS_URING_SUBMIT
                                                     : VOLLEY__SYS_SENDMMSG,
                          1, 1, EINVAL, 0);
    int r = volley_send(a, &one, 1);
    volley__sys_fault_clear();
    if (be != VOLLEY_BACKEND_URING) { /* uring's submit fault is not a send result */
        T_EQ(r, 1);
        expect_seq(b, 8, 0);
        T_EQ(volley_gso_max_segments(a), 0);
        T_EQ(stats(a).tx_gso_fallback, 1);
    }
    volley_close(a);
    volley_close(b);
    return 0;
}

/* The first open probes GSO while no fd is free: that socket goes without
 * GSO, but the failure is not taken as the kernel's verdict: the next open
 * probes again. Once, it was cached for the whole process. */
static int gso_probe_transient(unsigned be)
{
    struct volley_opts o = t_opts(be);
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
        return T_SKIP; /* the kernel's own verdict: no GSO */
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    T_EQ(volley_gso_max_segments(s), c.gso_max_segments);
    volley_close(s);
    return 0;
}

/* A forced uring open reports what stopped it: a kernel without usable
 * io_uring is -ENOTSUP, running out of fds or memory is itself. Once,
 * every failure came back as -ENOTSUP. */
static int uring_open_errors(unsigned be)
{
    if (!uring_works())
        return T_SKIP;
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
    struct volley_opts o = t_opts(be);
    int before = count_fds();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        volley_sock *s = NULL;
        volley__sys_fault_set(cases[i].op, 1, 0, cases[i].err, 0);
        int r = volley_open(&s, "127.0.0.1:0", &o);
        volley__sys_fault_clear();
        if (r != cases[i].want)
            T_FAIL("case %zu: %s injected: volley_open = %d (%s), want %d", i,
                   volley_strerror(-cases[i].err), r, volley_strerror(r), cases[i].want);
        T_EQ(count_fds(), before);
    }
    return 0;
}

/* Drops a socket saw before volley_wrap are not counted as the wrapped
 * socket's: counters start at the wrap. */
static int wrap_old_drops(unsigned be)
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
        return T_SKIP; /* nothing was dropped: nothing to check */
    struct volley_opts o = t_opts(be);
    volley_sock *s;
    T_OK(volley_wrap(&s, rx, &o));
    T_EQ(stats(s).rx_kernel_drops, 0);
    static struct volley_dgram d[64];
    unsigned got = 0;
    for (int r; (r = volley_recv(s, d, 64)) > 0;)
        got += (unsigned)r;
    T_ASSERT(got > 0);
    T_EQ(stats(s).rx_kernel_drops, 0);
    /* New drops after the wrap are counted. */
    for (int i = 0; i < 64; i++)
        (void)sendto(tx, buf, sizeof buf, 0, (struct sockaddr *)&a, sizeof a);
    T_ASSERT(stats(s).rx_kernel_drops > 0);
    volley_close(s);
    close(tx);
    return 0;
}

struct fcase {
    const char *name;
    int (*fn)(unsigned be);
    unsigned be;
};

#define BOTH(f)                                                                          \
    {#f " scalar", f, VOLLEY_BACKEND_SCALAR},                                            \
    {                                                                                    \
#f " mmsg", f, VOLLEY_BACKEND_MMSG                                               \
    }

static const struct fcase cases[] = {
    BOTH(eintr_send),
    BOTH(eintr_recv),
    BOTH(eagain_send),
    {"short_send mmsg", short_send, VOLLEY_BACKEND_MMSG},
    {"short_recv mmsg", short_recv, VOLLEY_BACKEND_MMSG},
    BOTH(nobufs_first),
    {"nobufs_later scalar", nobufs_later, VOLLEY_BACKEND_SCALAR},
    BOTH(connrefused_send),
    BOTH(connrefused_recv),
    BOTH(emfile),
    BOTH(eaddrinuse),
    BOTH(setsockopt_refused),
    {"no_sendmmsg", no_sendmmsg, VOLLEY_BACKEND_AUTO},
    {"gso_refused mmsg", gso_refused, VOLLEY_BACKEND_MMSG},
    {"gso_einval_own mmsg", gso_einval_own, VOLLEY_BACKEND_MMSG},
    {"gso_einval_own uring", gso_einval_own, VOLLEY_BACKEND_URING},
    {"gso_probe_transient mmsg", gso_probe_transient, VOLLEY_BACKEND_MMSG},
    {"uring_open_errors", uring_open_errors, VOLLEY_BACKEND_URING},
    BOTH(wrap_old_drops),
};

/* argv[1], if given, runs only the cases whose name contains it. */
int main(int argc, char **argv)
{
    unsetenv("VOLLEY_BACKEND");
    unsetenv("VOLLEY_DISABLE");
    unsigned pass = 0, fail = 0, skip = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct fcase *c = &cases[i];
        if (argc > 1 && !strstr(c->name, argv[1]))
            continue;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
            T_FAIL("fork");
        if (pid == 0) {
            t_watchdog(c->name, 60);
            volley__sys_fault_clear();
            exit(c->fn(c->be));
        }
        int st;
        if (waitpid(pid, &st, 0) != pid)
            T_FAIL("waitpid");
        const char *res;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            res = "ok";
            pass++;
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == T_SKIP) {
            res = "skip";
            skip++;
        } else {
            res = "FAIL";
            fail++;
            if (WIFSIGNALED(st))
                fprintf(stderr, "  (killed by signal %d)\n", WTERMSIG(st));
        }
        printf("%-4s %s\n", res, c->name);
        fflush(stdout);
    }
    printf("test_fault: %u passed, %u failed, %u skipped\n", pass, fail, skip);
    if (fail)
        return 1;
    return pass ? 0 : T_SKIP;
}
