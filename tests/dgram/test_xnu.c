/* SPDX-License-Identifier: MIT */
/* The xnu backend against XNU's known hazards, played by the emulation of
 * sendmsg_x/recvmsg_x (tests/dgram/xnu_emul.c): a prefix taken without error,
 * EINTR, the send buffer full in the middle of a batch, errno clobbered
 * between the failure and a second read, recvmsg_x without control data,
 * calls that fail their self-test, the kill switch, and bad input. The
 * emulation and the self-test's verdict are process-global, so each case
 * runs in a process of its own. On a Mac (no emulation) it skips. */
#include "dgram/dgram.h"
#include "t.h"

#if defined(VOLLEY_XNU_EMUL)
#include "xnu_emul.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PLEN 100

static struct {
    volley_sock *a, *b;
    struct volley_addr to; /* b's address */
} fx;

static struct volley_dgram txd[VOLLEY_BATCH_MAX];
static uint8_t txbuf[VOLLEY_BATCH_MAX * PLEN];

/* Two xnu sockets over IPv4 loopback (o NULL: the defaults), n numbered
 * datagrams for b in txd. The self-test runs at the first open, with
 * whatever the emulation is set to do then. */
static void fx_open(const struct volley_opts *o, unsigned n)
{
    struct volley_opts def = t_opts(VOLLEY_BACKEND_XNU);
    struct volley_addr to_a;
    def.rcvbuf = 4 << 20;
    t_socks(o ? o : &def, "127.0.0.1:0", &fx.a, &fx.b, &fx.to, &to_a);
    T_ASSERT(!strcmp(volley_backend_name(fx.a), "xnu"));
    for (unsigned i = 0; i < n; i++) {
        t_fill_seq(txbuf + (size_t)i * PLEN, PLEN, i);
        txd[i] = (struct volley_dgram){
            .data = txbuf + (size_t)i * PLEN, .len = PLEN, .peer = fx.to};
    }
}

static int fx_close(void)
{
    volley_close(fx.a);
    volley_close(fx.b);
    t_xnu_reset();
    return 0;
}

/* Receive exactly n datagrams numbered seq0.. in order, and nothing more. */
static void expect_seq(unsigned n, uint32_t seq0)
{
    static struct volley_dgram d[VOLLEY_BATCH_MAX];
    static uint8_t store[VOLLEY_BATCH_MAX * PLEN];
    unsigned got = t_recv_n(fx.b, d, n, store, PLEN, 1000);
    if (got != n)
        T_FAIL("received %u of %u datagrams", got, n);
    for (unsigned i = 0; i < n; i++)
        T_EQ(T_SEQ(&d[i], PLEN), seq0 + i);
    volley_wait(fx.b, VOLLEY_WAIT_RECV, 50);
    T_EQ(volley_recv(fx.b, d, 1), 0);
}

static struct volley_caps probe(void)
{
    struct volley_caps c;
    T_OK(volley_probe(&c, sizeof c));
    return c;
}

/* ---- the batch path is the one in use ---- */

static int batches(void)
{
    fx_open(NULL, 10);
    T_EQ(probe().xnu.ok, 1);
    unsigned long s0 = t_xnu.send_calls, r0 = t_xnu.recv_calls;
    struct volley_stats st0 = t_stats(fx.a);
    T_EQ(volley_send(fx.a, txd, 10), 10);
    T_EQ(t_xnu.send_calls - s0, 1);
    T_EQ(t_stats(fx.a).tx_syscalls - st0.tx_syscalls, 1);
    expect_seq(10, 0);
    T_ASSERT(t_xnu.recv_calls > r0);
    T_EQ(t_stats(fx.b).rx_dgrams, 10);
    return fx_close();
}

/* XNU takes at most 256 messages a call: 300 go in two calls. */
static int over_256(void)
{
    fx_open(NULL, 300);
    struct volley_stats st0 = t_stats(fx.a);
    T_EQ(volley_send(fx.a, txd, 300), 300);
    struct volley_stats st1 = t_stats(fx.a);
    T_EQ(st1.tx_syscalls - st0.tx_syscalls, 2);
    T_EQ(st1.tx_dgrams - st0.tx_dgrams, 300);
    /* whatever the receive buffer could not hold is counted as dropped */
    static struct volley_dgram d[300];
    unsigned got = t_recv_n(fx.b, d, 300, NULL, 0, 300);
    T_EQ(got + t_stats(fx.b).rx_kernel_drops, 300);
    return fx_close();
}

/* ---- sendmsg_x's prefix: resumed, each datagram counted once ---- */

static int prefix(void)
{
    fx_open(NULL, 10);
    atomic_store(&t_xnu.send_prefix, 3);
    struct volley_stats st0 = t_stats(fx.a);
    unsigned long s0 = t_xnu.send_calls;
    T_EQ(volley_send(fx.a, txd, 10), 10);
    struct volley_stats st1 = t_stats(fx.a);
    T_EQ(t_xnu.send_calls - s0, 4); /* 3 + 3 + 3 + 1 */
    T_EQ(st1.tx_syscalls - st0.tx_syscalls, 4);
    T_EQ(st1.tx_dgrams - st0.tx_dgrams, 10);
    T_EQ(st1.tx_wouldblock - st0.tx_wouldblock, 0);
    T_EQ(st1.tx_errors - st0.tx_errors, 0);
    expect_seq(10, 0);
    return fx_close();
}

/* A GSO buffer (cut into datagrams here, XNU has no GSO) split by a
 * prefix still arrives whole and counts as one descriptor. */
static int prefix_gso_buffer(void)
{
    fx_open(NULL, 0);
    static uint8_t buf[5 * PLEN];
    for (unsigned i = 0; i < 5; i++)
        t_fill_seq(buf + i * PLEN, PLEN, i);
    struct volley_dgram d = {
        .data = buf, .len = sizeof buf, .segment = PLEN, .peer = fx.to};
    atomic_store(&t_xnu.send_prefix, 2);
    T_EQ(volley_send(fx.a, &d, 1), 1);
    T_EQ(t_stats(fx.a).tx_dgrams, 5);
    expect_seq(5, 0);
    return fx_close();
}

/* ---- the send buffer full in the middle of a batch ---- */

static int full_mid_batch(void)
{
    fx_open(NULL, 10);
    atomic_store(&t_xnu.full_after, 4);
    struct volley_stats st0 = t_stats(fx.a);
    T_EQ(volley_send(fx.a, txd, 10), 4);
    struct volley_stats st1 = t_stats(fx.a);
    T_EQ(st1.tx_dgrams - st0.tx_dgrams, 4);
    T_EQ(st1.tx_wouldblock - st0.tx_wouldblock, 1);
    T_EQ(st1.tx_errors - st0.tx_errors, 0);
    T_EQ(volley_send(fx.a, txd + 4, 6), 6);
    expect_seq(10, 0);
    return fx_close();
}

static int full_at_once(void)
{
    fx_open(NULL, 10);
    atomic_store(&t_xnu.full_after, 0);
    T_EQ(volley_send(fx.a, txd, 10), 0);
    struct volley_stats st = t_stats(fx.a);
    T_EQ(st.tx_wouldblock, 1);
    T_EQ(st.tx_errors, 0);
    T_EQ(st.err_other, 0);
    T_EQ(volley_send(fx.a, txd, 10), 10);
    expect_seq(10, 0);
    return fx_close();
}

/* ---- EINTR: retried inside, as on mmsg; surfaced once retries run out ---- */

static int eintr_retried(void)
{
    fx_open(NULL, 10);
    atomic_store(&t_xnu.eintr, 3);
    T_EQ(volley_send(fx.a, txd, 10), 10);
    T_EQ(atomic_load(&t_xnu.eintr), 0);
    T_ASSERT(volley_wait(fx.b, VOLLEY_WAIT_RECV, 1000) & VOLLEY_WAIT_RECV);
    usleep(20000);
    atomic_store(&t_xnu.eintr, 3);
    static struct volley_dgram d[10];
    T_EQ(volley_recv(fx.b, d, 10), 10);
    for (unsigned i = 0; i < 10; i++)
        T_EQ(T_SEQ(&d[i], PLEN), i);
    return fx_close();
}

static int eintr_endless(void)
{
    fx_open(NULL, 10);
    atomic_store(&t_xnu.eintr, 1000);
    T_EQ(volley_send(fx.a, txd, 10), -EINTR);
    struct volley_stats st = t_stats(fx.a);
    T_EQ(st.tx_errors, 1);
    T_EQ(st.tx_dgrams, 0);
    /* bounded: 16 retries after the first call, as mmsg's */
    T_EQ(st.tx_syscalls, 17);
    atomic_store(&t_xnu.eintr, 0);
    T_EQ(volley_send(fx.a, txd, 10), 10);
    expect_seq(10, 0);
    return fx_close();
}

/* ---- errno clobbered after the failure: the call's error is reported ---- */

static int errno_clobber_send(void)
{
    fx_open(NULL, 10);
    atomic_store(&t_xnu.clobber_errno, EAGAIN);
    atomic_store(&t_xnu.fail_errno, EMSGSIZE);
    T_EQ(volley_send(fx.a, txd, 10), -EMSGSIZE);
    T_ASSERT(atomic_load(&t_xnu.clobbered) > 0);
    T_EQ(t_stats(fx.a).err_msgsize, 1);
    /* and the other way round: would-block stays would-block */
    atomic_store(&t_xnu.clobber_errno, EBADF);
    atomic_store(&t_xnu.fail_errno, EAGAIN);
    T_EQ(volley_send(fx.a, txd, 10), 0);
    struct volley_stats st = t_stats(fx.a);
    T_EQ(st.tx_wouldblock, 1);
    T_EQ(st.tx_errors, 1);
    return fx_close();
}

static int errno_clobber_recv(void)
{
    fx_open(NULL, 10);
    static struct volley_dgram d[10];
    atomic_store(&t_xnu.clobber_errno, EAGAIN);
    atomic_store(&t_xnu.fail_errno, ENOMEM);
    T_EQ(volley_recv(fx.b, d, 10), -ENOMEM);
    T_EQ(t_stats(fx.b).err_nobufs, 1);
    atomic_store(&t_xnu.clobber_errno, ENOMEM);
    atomic_store(&t_xnu.fail_errno, EAGAIN);
    T_EQ(volley_recv(fx.b, d, 10), 0);
    T_EQ(t_stats(fx.b).rx_errors, 1);
    return fx_close();
}

/* ---- recvmsg_x without control data ---- */

/* With control-data features on, datagrams come through recvmsg, metadata
 * and all; with them off, through recvmsg_x. Sends stay batched. */
static int no_control(void)
{
    atomic_store(&t_xnu.no_control, true);
    fx_open(NULL, 10);
    struct volley_caps c = probe();
    T_EQ(c.xnu.ok, 1);
    T_ASSERT(strstr(c.xnu.why, "no control data"));
    for (unsigned i = 0; i < 10; i++)
        txd[i].ecn = 2;
    unsigned long s0 = t_xnu.send_calls, r0 = t_xnu.recv_calls;
    T_EQ(volley_send(fx.a, txd, 10), 10);
    T_EQ(t_xnu.send_calls - s0, 1);
    static struct volley_dgram d[10];
    T_EQ(t_recv_n(fx.b, d, 10, NULL, 0, 1000), 10);
    T_EQ(t_xnu.recv_calls, r0); /* recvmsg served */
    T_ASSERT(volley_features(fx.b) & VOLLEY_F_PKTINFO);
    for (unsigned i = 0; i < 10; i++) {
        T_EQ(d[i].ecn, 2);
        T_ASSERT(t_addr_is(&d[i].local, "127.0.0.1:0") ||
                 d[i].local.sa.sa_family == AF_INET);
        T_ASSERT(d[i].ifindex != 0);
    }
    volley_close(fx.a);
    volley_close(fx.b);

    struct volley_opts o = t_opts(VOLLEY_BACKEND_XNU);
    o.disable = VOLLEY_F_PKTINFO | VOLLEY_F_ECN | VOLLEY_F_RXQ_OVFL | VOLLEY_F_TIMESTAMP;
    fx_open(&o, 10);
    r0 = t_xnu.recv_calls;
    T_EQ(volley_send(fx.a, txd, 10), 10);
    expect_seq(10, 0);
    T_ASSERT(t_xnu.recv_calls > r0);
    return fx_close();
}

/* ---- the self-test fails: scalar calls, and volley probe says why ---- */

static void fallback_works(void)
{
    unsigned long s0 = t_xnu.send_calls, r0 = t_xnu.recv_calls;
    struct volley_stats st0 = t_stats(fx.a);
    T_EQ(volley_send(fx.a, txd, 10), 10);
    T_EQ(t_stats(fx.a).tx_syscalls - st0.tx_syscalls, 10); /* one sendmsg each */
    expect_seq(10, 0);
    T_EQ(t_xnu.send_calls, s0);
    T_EQ(t_xnu.recv_calls, r0);
}

static int selftest_missing(void)
{
    atomic_store(&t_xnu.fail_errno, ENOSYS);
    fx_open(NULL, 10);
    atomic_store(&t_xnu.fail_errno, 0); /* the verdict is kept */
    fallback_works();
    struct volley_caps c = probe();
    T_EQ(c.xnu.ok, 0);
    T_EQ(c.xnu.err, -ENOSYS);
    T_ASSERT(strstr(c.xnu.why, "sendmsg/recvmsg"));
    return fx_close();
}

static int selftest_wrong_length(void)
{
    atomic_store(&t_xnu.bad_datalen, true);
    fx_open(NULL, 10);
    fallback_works();
    struct volley_caps c = probe();
    T_EQ(c.xnu.ok, 0);
    T_EQ(c.xnu.err, -EIO);
    return fx_close();
}

/* A self-test that could not start (no fd) decides nothing: the next
 * open runs it again. */
static int selftest_no_fd(void)
{
    volley_sock *s;
    struct volley_opts o = t_opts(VOLLEY_BACKEND_XNU);
    /* the open's own socket works, the self-test's two fail */
    volley__sys_fault_set(VOLLEY__SYS_SOCKET, 2, 2, EMFILE, 0);
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    volley__sys_fault_clear();
    volley_close(s);
    fx_open(NULL, 10);
    unsigned long s0 = t_xnu.send_calls;
    T_EQ(volley_send(fx.a, txd, 10), 10);
    T_EQ(t_xnu.send_calls - s0, 1);
    expect_seq(10, 0);
    return fx_close();
}

/* ---- the kill switch ---- */

static int kill_switch(void)
{
    setenv("VOLLEY_DISABLE", "xnu", 1);
    volley_sock *s;
    struct volley_opts o = t_opts(VOLLEY_BACKEND_XNU);
    T_EQ(volley_open(&s, "127.0.0.1:0", &o), -ENOTSUP);
    T_EQ(t_xnu.send_calls + t_xnu.recv_calls, 0); /* not even the self-test */
    struct volley_caps c = probe();
    T_EQ(c.xnu.ok, 0);
    T_EQ(c.xnu.err, -ENOTSUP);
    T_ASSERT(strstr(c.xnu.why, "VOLLEY_DISABLE=xnu"));
    /* the automatic choice is unaffected */
    o.backend = VOLLEY_BACKEND_AUTO;
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    volley_close(s);
    setenv("VOLLEY_DISABLE", "gso,xnu,", 1);
    T_EQ(volley_env_check(NULL, 0), 0);
    unsetenv("VOLLEY_DISABLE");
    o.backend = VOLLEY_BACKEND_XNU;
    T_OK(volley_open(&s, "127.0.0.1:0", &o));
    volley_close(s);
    return 0;
}

/* ---- bad input ---- */

static int bad_input(void)
{
    char msg[200];
    volley_sock *s;
    T_EQ(volley_backend_parse("xnu"), VOLLEY_BACKEND_XNU);
    T_EQ(volley_backend_parse("XNU"), -EINVAL);
    T_EQ(volley_backend_parse("xnu "), -EINVAL);
    setenv("VOLLEY_DISABLE", "xnux", 1);
    T_EQ(volley_env_check(msg, sizeof msg), -EINVAL);
    T_ASSERT(strstr(msg, "xnu)"));
    T_EQ(volley_open(&s, "127.0.0.1:0", NULL), -EINVAL);
    unsetenv("VOLLEY_DISABLE");
    setenv("VOLLEY_BACKEND", "xnu", 1);
    T_OK(volley_open(&s, "127.0.0.1:0", NULL));
    T_ASSERT(!strcmp(volley_backend_name(s), "xnu"));
    volley_close(s);
    unsetenv("VOLLEY_BACKEND");
    /* ids around it: epoll is for loops, 7 is nothing */
    struct volley_opts o = t_opts(VOLLEY_BACKEND_EPOLL);
    T_EQ(volley_open(&s, "127.0.0.1:0", &o), -EINVAL);
    o.backend = VOLLEY_BACKEND_XNU + 1;
    T_EQ(volley_open(&s, "127.0.0.1:0", &o), -EINVAL);
    /* a stream socket is no datagram socket */
    int sv[2];
    T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    o.backend = VOLLEY_BACKEND_XNU;
    T_EQ(volley_wrap(&s, sv[0], &o), -EPROTOTYPE);
    close(sv[0]);
    close(sv[1]);
    /* the batch limits, at the boundary and one past it */
    fx_open(NULL, 1);
    T_EQ(volley_send(fx.a, txd, 0), -EINVAL);
    T_EQ(volley_send(fx.a, NULL, 1), -EINVAL);
    T_EQ(volley_send(fx.a, txd, VOLLEY_BATCH_MAX + 1), -EINVAL);
    static struct volley_dgram d[VOLLEY_BATCH_MAX + 1];
    T_EQ(volley_recv(fx.b, d, 0), -EINVAL);
    T_EQ(volley_recv(fx.b, d, VOLLEY_BATCH_MAX + 1), -EINVAL);
    T_EQ(volley_recv(fx.b, d, VOLLEY_BATCH_MAX), 0);
    /* a datagram too large for UDP, and an IPv6 peer on an IPv4 socket */
    static uint8_t big[65536];
    struct volley_dgram x = {.data = big, .len = sizeof big, .peer = fx.to};
    T_EQ(volley_send(fx.a, &x, 1), -EMSGSIZE);
    x = (struct volley_dgram){.data = big, .len = 1, .peer = t_addr("[::1]:9")};
    T_EQ(volley_send(fx.a, &x, 1), -EAFNOSUPPORT);
    return fx_close();
}

/* ---- volley_fd is the socket: poll (or kqueue) watches it ---- */

static int fd_pollable(void)
{
    fx_open(NULL, 1);
    int fd = volley_fd(fx.b);
    T_ASSERT(fd >= 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    T_EQ(poll(&p, 1, 0), 0);
    T_EQ(volley_send(fx.a, txd, 1), 1);
    T_EQ(poll(&p, 1, 1000), 1);
    T_ASSERT(volley_wait(fx.b, VOLLEY_WAIT_RECV, 0) & VOLLEY_WAIT_RECV);
    T_ASSERT(volley_wait(fx.a, VOLLEY_WAIT_SEND, 0) & VOLLEY_WAIT_SEND);
    static struct volley_dgram d[1];
    T_EQ(volley_recv_wait(fx.b, d, 1, 1000), 1);
    T_EQ(volley_recv_wait(fx.b, d, 1, 10), 0);
    return fx_close();
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(batches),
        T_CASE(over_256),
        T_CASE(prefix),
        T_CASE(prefix_gso_buffer),
        T_CASE(full_mid_batch),
        T_CASE(full_at_once),
        T_CASE(eintr_retried),
        T_CASE(eintr_endless),
        T_CASE(errno_clobber_send),
        T_CASE(errno_clobber_recv),
        T_CASE(no_control),
        T_CASE(selftest_missing),
        T_CASE(selftest_wrong_length),
        T_CASE(selftest_no_fd),
        T_CASE(kill_switch),
        T_CASE(bad_input),
        T_CASE(fd_pollable),
    };
    struct t_run how = {.flags = T_FORK, .case_s = 60};
    unsetenv("VOLLEY_BACKEND");
    unsetenv("VOLLEY_DISABLE");
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
#else
int main(void)
{
    puts("test_xnu: the emulation of sendmsg_x/recvmsg_x is built off Apple only");
    return t_summary(0, 0, 1);
}
#endif
