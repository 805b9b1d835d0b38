/* SPDX-License-Identifier: MIT */
/* Capability probing: every feature is tried for real over loopback, never
 * inferred from a kernel version. */
#include "dgram.h"

#include <errno.h>
#include <arpa/inet.h>
#include <poll.h>
#if VOLLEY_HAVE_URING
#include <liburing.h>
#endif
#include <pthread.h>
#include <string.h>

/* The kernel's GSO verdict, once it has given one: its segment limit, or
 * 0 when it refused. -1 while unknown (never probed, or every probe so
 * far failed for a reason of the moment, like no free fd). */
static int gso_verdict = -1;
static pthread_mutex_t gso_lock = PTHREAD_MUTEX_INITIALIZER;

/* Count datagrams waiting on a plain non-blocking socket (bounded wait). */
static unsigned drain_count(int fd, unsigned want)
{
    unsigned got = 0;
    uint8_t buf[64];
    for (int idle = 0; got < want && idle < 20;) {
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t r = volley__sys_recvmsg(fd, &m, MSG_DONTWAIT);
        if (r >= 0) {
            got++;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (volley__sys_poll(&p, 1, 10) <= 0)
            idle++;
    }
    return got;
}

/* Send one UDP_SEGMENT message of segs 16-byte segments from tx to the
 * address of rx: 1 if the kernel took it and all segments arrived, 0 if it
 * refused, or a negative errno for a failure that says nothing about GSO
 * (out of memory or buffers). */
static int try_segments(int tx, int rx, const struct sockaddr_in *to, unsigned segs)
{
    static uint8_t payload[128 * 16];
    uint16_t seg = 16;
    uint8_t ctrl[CMSG_SPACE(sizeof seg)] __attribute__((aligned(8)));
    struct iovec iov = {payload, (size_t)segs * seg};
    struct msghdr m = {.msg_name = (void *)to,
                       .msg_namelen = sizeof *to,
                       .msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = ctrl,
                       .msg_controllen = sizeof ctrl};
    memset(ctrl, 0, sizeof ctrl);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof seg);
    memcpy(CMSG_DATA(c), &seg, sizeof seg);
    ssize_t r = volley__sys_sendmsg(tx, &m, 0);
    if (r == (ssize_t)iov.iov_len)
        return drain_count(rx, segs) == segs;
    if (r == -ENOMEM || r == -ENOBUFS || r == -EAGAIN || r == -EINTR)
        return (int)r;
    return 0;
}

int volley__probe_loopback(int tx_flags, int rx_flags, int *tx, int *rx,
                           struct sockaddr_in *to)
{
    *to = (struct sockaddr_in){.sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof *to;
    *tx = volley__sys_socket(AF_INET, SOCK_DGRAM | tx_flags, 0);
    *rx = volley__sys_socket(AF_INET, SOCK_DGRAM | rx_flags, 0);
    int r = *tx < 0 ? *tx : *rx;
    if (r >= 0)
        r = volley__sys_bind(*rx, (struct sockaddr *)to, sizeof *to);
    if (r >= 0)
        r = volley__sys_getsockname(*rx, (struct sockaddr *)to, &len);
    return r < 0 ? r : 0;
}

/* The limit (128 or 64, 0 when refused), or a negative errno when the
 * probe could not run. */
static int probe_gso_limit(void)
{
    int tx, rx;
    struct sockaddr_in a;
    int r =
        volley__probe_loopback(SOCK_CLOEXEC, SOCK_NONBLOCK | SOCK_CLOEXEC, &tx, &rx, &a);
    if (r >= 0) {
        /* Linux took 64 segments from 4.18 and 128 from 6.9. */
        r = try_segments(tx, rx, &a, 128);
        if (r > 0)
            r = 128;
        else if (r == 0)
            r = try_segments(tx, rx, &a, 64) > 0 ? 64 : 0;
    }
    volley__sys_close(tx);
    volley__sys_close(rx);
    return r;
}

int volley__probe_gso(void)
{
    pthread_mutex_lock(&gso_lock);
    int r = gso_verdict;
    if (r < 0) {
        r = probe_gso_limit();
        if (r >= 0)
            gso_verdict = r;
    }
    pthread_mutex_unlock(&gso_lock);
    return r;
}

unsigned volley__probe_gso_limit(void)
{
    int r = volley__probe_gso();
    return r > 0 ? (unsigned)r : 0;
}

/* ---- volley_probe ---- */

/* Why a Linux-only feature is off in a build without the Linux parts
 * (cmake -DVOLLEY_LINUX_BACKENDS=OFF, and every build elsewhere). */
#define NOT_BUILT "built without the Linux parts"

static void set(struct volley_feature *f, int err, const char *ok_why,
                const char *bad_why)
{
    f->ok = err == 0;
    f->err = err;
    f->why = err == 0 ? ok_why : bad_why;
}

/* Open a receiver and a sender on 127.0.0.1 with the given options. */
static int open_two(const struct volley_opts *o, volley_sock **rx, volley_sock **tx,
                    struct volley_addr *to)
{
    int r = volley_open(rx, "127.0.0.1:0", o);
    if (r < 0)
        return r;
    r = volley_open(tx, "127.0.0.1:0", o);
    if (r == 0)
        r = volley_local_addr(*rx, to);
    if (r < 0) {
        volley_close(*rx);
        *rx = NULL;
    }
    return r;
}

/* Receive up to n datagrams within ~200 ms. */
static int recv_some(volley_sock *s, struct volley_dgram *d, unsigned n)
{
    for (int i = 0; i < 20; i++) {
        int r = volley_recv(s, d, n);
        if (r != 0)
            return r;
        volley_wait(s, VOLLEY_WAIT_RECV, 10);
    }
    return 0;
}

/* One round trip over backend b; err 0 if the datagram came back. */
static int probe_backend(unsigned b)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *rx, *tx;
    struct volley_addr to;
    o.backend = b;
    int r = open_two(&o, &rx, &tx, &to);
    if (r < 0)
        return r;
    uint8_t byte = 42;
    struct volley_dgram d = {.data = &byte, .len = 1, .peer = to};
    r = volley_send(tx, &d, 1);
    if (r == 1)
        r = recv_some(rx, &d, 1) == 1 ? 0 : -EIO;
    volley_close(rx);
    volley_close(tx);
    return r < 0 ? r : 0;
}

/* Send one datagram with ECT(0) and check what the receiver learnt. */
static void probe_metadata(struct volley_caps *c)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *rx, *tx;
    struct volley_addr to;
    o.enable = VOLLEY_F_TIMESTAMP;
    int r = open_two(&o, &rx, &tx, &to);
    struct volley_dgram d = {0};
    uint8_t byte = 1;
    if (r == 0) {
        d = (struct volley_dgram){.data = &byte, .len = 1, .peer = to, .ecn = 2};
        r = volley_send(tx, &d, 1);
        r = r == 1 ? (recv_some(rx, &d, 1) == 1 ? 0 : -EIO) : (r < 0 ? r : -EIO);
    }
    int pk = r ? r : (d.local.sa.sa_family == AF_INET && d.ifindex ? 0 : -ENOTSUP);
    int ecn = r ? r : (d.ecn == 2 ? 0 : -ENOTSUP);
    int ts = r ? r : (d.flags & VOLLEY_DGRAM_TSTAMP ? 0 : -ENOTSUP);
    set(&c->pktinfo, pk, "IP_PKTINFO gave the local address of a loopback datagram",
        "no local address came with a loopback datagram");
    set(&c->ecn, ecn, "an ECT(0) datagram over loopback arrived marked ECT(0)",
        "the ECN codepoint did not survive a loopback round trip");
    set(&c->timestamp, ts, "SO_TIMESTAMPNS stamped a loopback datagram",
        "no receive timestamp came with a loopback datagram");
    if (r == 0) {
        volley_close(rx);
        volley_close(tx);
    }
}

/* Overflow a tiny receive buffer and check the kernel reports the drops. */
static int probe_rxq_ovfl(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *rx, *tx;
    struct volley_addr to;
    o.rcvbuf = 1;                            /* the kernel rounds up to its minimum */
    o.disable = VOLLEY_F_GSO | VOLLEY_F_GRO; /* one skb per datagram, or few drop */
    int r = open_two(&o, &rx, &tx, &to);
    if (r < 0)
        return r;
    static uint8_t buf[1000];
    struct volley_dgram d[64];
    for (unsigned i = 0; i < 64; i++)
        d[i] = (struct volley_dgram){.data = buf, .len = sizeof buf, .peer = to};
    (void)volley_send(tx, d, 64);
    struct volley_stats st;
    while (recv_some(rx, d, 64) > 0)
        ;
    volley_get_stats(rx, &st, sizeof st);
    volley_close(rx);
    volley_close(tx);
    return st.rx_kernel_drops > 0 ? 0 : -ENOTSUP;
}

/* Send to a port nobody listens on; the ICMP must come back as a report. */
static int probe_recverr(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *gone, *tx;
    struct volley_addr to;
    o.enable = VOLLEY_F_RECVERR;
    int r = open_two(&o, &gone, &tx, &to);
    if (r < 0)
        return r;
    volley_close(gone);
    uint8_t byte = 0;
    struct volley_dgram d = {.data = &byte, .len = 1, .peer = to};
    struct volley_sockerr e = {0};
    r = volley_send(tx, &d, 1) == 1 ? -ENOTSUP : -EIO;
    for (int i = 0; i < 20 && r == -ENOTSUP; i++) {
        volley_wait(tx, VOLLEY_WAIT_RECV, 10);
        (void)volley_recv(tx, &d, 1);
        if (volley_errors(tx, &e, 1) == 1 && e.error == -ECONNREFUSED)
            r = 0;
    }
    volley_close(tx);
    return r;
}

/* A 4-segment GSO send to a GRO socket must arrive coalesced. */
static int probe_gro(void)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *rx, *tx;
    struct volley_addr to;
    o.backend = VOLLEY_BACKEND_MMSG;
    int r = open_two(&o, &rx, &tx, &to);
    if (r < 0)
        return r;
    r = -ENOTSUP;
    if (volley_features(rx) & VOLLEY_F_GRO && volley_gso_max_segments(tx)) {
        static uint8_t buf[4 * 100];
        struct volley_dgram d[4] = {
            {.data = buf, .len = sizeof buf, .segment = 100, .peer = to}};
        if (volley_send(tx, d, 1) == 1 && recv_some(rx, d, 4) > 0 &&
            d[0].flags & VOLLEY_DGRAM_GRO)
            r = 0;
    }
    volley_close(rx);
    volley_close(tx);
    return r;
}

static int probe_kernel_pacing(void)
{
    volley_sock *s;
    int r = volley_open(&s, "127.0.0.1:0", NULL);
    if (r < 0)
        return r;
    r = volley_set_pacing(s, 1000000, 0, VOLLEY_PACE_KERNEL);
    volley_close(s);
    return r;
}

/* Two UDP sockets in a reuseport group on loopback, and the FLOW program
 * attached to them. */
static int probe_reuseport_steer(void)
{
#if VOLLEY_HAVE_LINUX
    struct volley_group_opts o = VOLLEY_GROUP_OPTS_INIT;
    o.steer = VOLLEY_STEER_KERNEL;
    int fds[2];
    int r = volley_group_open(fds, 2, "127.0.0.1:0", &o);
    if (r < 0)
        return r;
    r = volley__group_probe_attach(fds[0]);
    volley__sys_close(fds[0]);
    volley__sys_close(fds[1]);
    return r;
#else
    return -ENOTSUP; /* classic BPF steering is Linux's */
#endif
}

static void probe_uring(struct volley_caps *c)
{
#if VOLLEY_HAVE_URING
    /* A uring open says only -ENOTSUP when io_uring is refused; a bare
     * ring tells why. */
    struct io_uring ring;
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    int r = volley__sys_uring_init(2, &ring, &params);
    if (r == 0) {
        volley__sys_uring_exit(&ring, -1);
        r = probe_backend(VOLLEY_BACKEND_URING);
    }
    const char *why = "io_uring refused: disabled (VOLLEY_DISABLE=uring, or sysctl "
                      "kernel.io_uring_disabled), blocked by seccomp, or provided-buffer "
                      "rings/multishot recvmsg missing (Linux 6.0+)";
    if (r == -EPERM)
        why =
            "io_uring_setup returned EPERM: kernel.io_uring_disabled or a seccomp filter";
    else if (r == -ENOSYS)
        why = "io_uring_setup returned ENOSYS: kernel built without io_uring";
    set(&c->uring, r,
        "multishot recvmsg into a provided-buffer ring, round trip over loopback", why);
    int zc = volley__sys_uring_has_op(NULL, IORING_OP_SENDMSG_ZC) > 0 ? 0 : -ENOTSUP;
    set(&c->uring_zc, zc, "IORING_OP_SENDMSG_ZC listed by the kernel's opcode probe",
        "IORING_OP_SENDMSG_ZC not listed by the kernel's opcode probe (Linux 6.1+)");
#else
    set(&c->uring, -ENOTSUP, "", "built without liburing");
    set(&c->uring_zc, -ENOTSUP, "", "built without liburing");
#endif
}

/* The xnu backend: does a socket of it open (VOLLEY_DISABLE=xnu: no), and
 * did XNU's batch calls pass their self-test? */
static void probe_xnu(struct volley_caps *c)
{
#if VOLLEY_HAVE_XNU
    volley_sock *s;
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.backend = VOLLEY_BACKEND_XNU;
    int ctrl = -ENOTSUP;
    int r = volley_open(&s, "127.0.0.1:0", &o);
    if (r == 0) {
        volley_close(s);
        r = volley__xnu_probe(&ctrl);
    } else if (r == -ENOTSUP) {
        set(&c->xnu, r, "",
            "turned off (VOLLEY_DISABLE=xnu): sockets use sendmsg/recvmsg");
        return;
    }
    set(&c->xnu, r,
        ctrl == 0 ? "sendmsg_x/recvmsg_x moved two datagrams over loopback intact, "
                    "with their control data"
                  : "sendmsg_x/recvmsg_x moved two datagrams over loopback intact, "
                    "but recvmsg_x brought no control data: sockets with pktinfo, ecn, "
                    "timestamp or rxq_ovfl on receive with recvmsg",
        "sendmsg_x/recvmsg_x failed their loopback self-test: the xnu backend sends "
        "and receives with sendmsg/recvmsg");
#else
    set(&c->xnu, -ENOTSUP, "", "macOS only (sendmsg_x/recvmsg_x)");
#endif
}

int volley_probe(struct volley_caps *out, size_t size)
{
    if (!out || size == 0)
        return -EINVAL;
    /* With a bad VOLLEY_BACKEND or VOLLEY_DISABLE every open fails: report
     * that, not a kernel that seems to lack everything. */
    int bad = volley_env_check(NULL, 0);
    if (bad < 0)
        return bad;
    struct volley_caps c;
    memset(&c, 0, sizeof c);
    set(&c.scalar, probe_backend(VOLLEY_BACKEND_SCALAR),
        "sendmsg/recvmsg round trip over loopback", "sendmsg/recvmsg round trip failed");
    set(&c.mmsg, probe_backend(VOLLEY_BACKEND_MMSG),
        "sendmmsg/recvmmsg round trip over loopback",
        VOLLEY_HAVE_LINUX
            ? "sendmmsg/recvmmsg unavailable or disabled (VOLLEY_DISABLE=mmsg)"
            : NOT_BUILT);
    int gso = VOLLEY_HAVE_LINUX ? volley__probe_gso() : 0;
    c.gso_max_segments = gso > 0 ? (unsigned)gso : 0;
    set(&c.gso,
        gso > 0   ? 0
        : gso < 0 ? gso
                  : -ENOTSUP,
        gso == 128 ? "a 128-segment UDP_SEGMENT send arrived whole over loopback"
                   : "a 64-segment UDP_SEGMENT send arrived whole over loopback",
        gso < 0 ? "the GSO probe could not run (sockets over loopback failed); it "
                  "is tried again at the next open"
        : VOLLEY_HAVE_LINUX ? "the kernel refused a UDP_SEGMENT send over loopback"
                            : NOT_BUILT);
    set(&c.gro, VOLLEY_HAVE_LINUX ? probe_gro() : -ENOTSUP,
        "a segmented send arrived coalesced on a UDP_GRO socket",
        VOLLEY_HAVE_LINUX
            ? "UDP_GRO refused, or a segmented send did not arrive coalesced"
            : NOT_BUILT);
    probe_metadata(&c);
    set(&c.rxq_ovfl, probe_rxq_ovfl(), "overflowing a tiny receive buffer was counted",
        "SO_RXQ_OVFL refused, or drops from a full receive buffer were not reported");
    set(&c.recverr, probe_recverr(),
        "a send to a closed loopback port came back as ECONNREFUSED",
        "IP_RECVERR refused, or no ICMP report for a closed loopback port");
    probe_uring(&c);
    probe_xnu(&c);
    set(&c.kernel_pacing, probe_kernel_pacing(),
        "SO_MAX_PACING_RATE accepted on a UDP socket; enforced where the outgoing "
        "device uses the fq qdisc",
        "SO_MAX_PACING_RATE refused on a UDP socket");
    set(&c.reuseport_steer, probe_reuseport_steer(),
        "a classic BPF steering program attached to a reuseport group on loopback",
        VOLLEY_HAVE_LINUX
            ? "SO_ATTACH_REUSEPORT_CBPF refused (Linux 4.5+): groups use the "
              "kernel's own hash"
            : NOT_BUILT);
    volley_sock *v6;
    int r = volley_open(&v6, "[::1]:0", NULL);
    set(&c.ipv6, r, "bound a UDP socket on [::1]", "cannot bind a UDP socket on [::1]");
    if (r == 0)
        volley_close(v6);
    memcpy(out, &c, size < sizeof c ? size : sizeof c);
    return 0;
}
