/* SPDX-License-Identifier: MIT */
/*
 * Reuseport groups: n sockets on one address, and the classic BPF programs
 * that steer packets among them (volley.h says what each steering does).
 *
 * The programs run in the kernel's reuseport selection, with the packet's
 * data already past the UDP (or TCP) header; they read the network header
 * through SKF_NET_OFF and return a member's index. An index the group does
 * not have makes the kernel fall back to its own hash over the members
 * still in the group.
 *
 * Why a leave seals the member and waits (volley_group_leave): a socket's
 * lookup walks the port's hash chain and asks the reuseport group of the
 * first socket there that matches. close() takes a member out of the
 * group before it takes it off the chain, so a lookup that meets the
 * closing member first in that instant finds no group behind it and takes
 * the socket itself: the datagram is queued on a socket about to be freed,
 * and freed with it, counted nowhere (measured: every datagram lost in a
 * leave was one udp_destruct_common freed). A member bound to an
 * interface that does not exist never matches, so the walk passes over
 * it, in the group or not; and lookups run under RCU, so once a grace
 * period has passed after the program and the binding changed, none that
 * saw the old state is still on its way to the member's queue.
 */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif
#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

/* Fibonacci hashing: 2^32 / golden ratio, odd. */
#define FLOW_MULT 0x9e3779b1u

#define PROG_MAX 40

/* An interface index no device has (the kernel hands them out upwards
 * from 1): a socket bound to it matches no arriving packet. */
#define NO_IFINDEX 0x7fffffff

/* When membarrier(2) cannot give a grace period: a wait far longer than
 * one takes (a few milliseconds) but no proof. */
#define GRACE_FALLBACK_NS 50000000L

/* The steering program over m members into prog; member `from` (< m) is
 * sent to index `to` instead (leave: the index the member taking its place
 * has until the leaving one closes); from == m: none. Returns its length. */
static unsigned steer_prog(struct sock_filter *p, unsigned steer, unsigned m,
                           unsigned from, unsigned to)
{
    unsigned n = 0;
#define OP(c, t, f, k) (p[n++] = (struct sock_filter){(c), (t), (f), (uint32_t)(k)})
    if (steer == VOLLEY_STEER_CPU) {
        OP(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_AD_OFF + SKF_AD_CPU);
    } else {
        /* A = the IP version */
        OP(BPF_LD | BPF_B | BPF_ABS, 0, 0, SKF_NET_OFF);
        OP(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 4);
        OP(BPF_JMP | BPF_JEQ | BPF_K, 0, 7, 6); /* IPv6: on; else skip the 6 + 1 below */
        /* IPv6: the four words of the source address and the source port
         * (the UDP or TCP header right after the fixed header) */
        OP(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_NET_OFF + 8);
        OP(BPF_MISC | BPF_TAX, 0, 0, 0);
        OP(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_NET_OFF + 12);
        OP(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
        OP(BPF_MISC | BPF_TAX, 0, 0, 0);
        OP(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_NET_OFF + 16);
        OP(BPF_JMP | BPF_JA, 0, 0, 5); /* on at the common tail (below) */
        /* IPv4: X = the header's length, A = the source port */
        OP(BPF_LDX | BPF_B | BPF_MSH, 0, 0, SKF_NET_OFF);
        OP(BPF_LD | BPF_H | BPF_IND, 0, 0, SKF_NET_OFF);
        OP(BPF_MISC | BPF_TAX, 0, 0, 0);
        OP(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_NET_OFF + 12);
        OP(BPF_JMP | BPF_JA, 0, 0, 6); /* to the mixing */
        /* IPv6, continued: A holds word 2 of the source, X words 0 ^ 1 */
        OP(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
        OP(BPF_MISC | BPF_TAX, 0, 0, 0);
        OP(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_NET_OFF + 20);
        OP(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
        OP(BPF_MISC | BPF_TAX, 0, 0, 0);
        OP(BPF_LD | BPF_H | BPF_ABS, 0, 0, SKF_NET_OFF + 40);
        /* both: A ^= X, then Fibonacci hashing, high bits */
        OP(BPF_ALU | BPF_XOR | BPF_X, 0, 0, 0);
        OP(BPF_ALU | BPF_MUL | BPF_K, 0, 0, FLOW_MULT);
        OP(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 16);
    }
    OP(BPF_ALU | BPF_MOD | BPF_K, 0, 0, m);
    if (from < m) {
        OP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, from);
        OP(BPF_RET | BPF_K, 0, 0, to);
    }
    OP(BPF_RET | BPF_A, 0, 0, 0);
#undef OP
    return n;
}

static bool steer_known(unsigned steer)
{
    return steer == VOLLEY_STEER_FLOW || steer == VOLLEY_STEER_CPU ||
           steer == VOLLEY_STEER_KERNEL;
}

/* Attach the program to the group of fd (any member will do): 0 or the
 * error. KERNEL asks for no program; one attached before stays, and the
 * caller says so (its steering is unchanged). */
static int attach(int fd, unsigned steer, unsigned m, unsigned from, unsigned to)
{
    struct sock_filter code[PROG_MAX];
    struct sock_fprog prog = {(unsigned short)steer_prog(code, steer, m, from, to), code};
    return volley__sys_setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
                                  sizeof prog);
}

int volley__group_probe_attach(int fd)
{
    return attach(fd, VOLLEY_STEER_FLOW, 2, 2, 0);
}

static int group_opts(struct volley_group_opts *o, const struct volley_group_opts *src)
{
    int r = volley__opts_in(o, sizeof *o, src, offsetof(struct volley_group_opts, flags));
    if (r < 0)
        return r;
    for (unsigned i = 0; i < sizeof o->reserved / sizeof o->reserved[0]; i++)
        if (o->reserved[i])
            return -EINVAL;
    if (o->flags & ~(VOLLEY_GROUP_STREAM | VOLLEY_GROUP_V6ONLY) ||
        !steer_known(o->steer) || o->backlog > 65535)
        return -EINVAL;
    return 0;
}

static int setint(int fd, int level, int opt, int v)
{
    return volley__sys_setsockopt(fd, level, opt, &v, sizeof v);
}

/* One member: a socket bound to *a (whose port the first member fixes).
 * The first binds without SO_REUSEPORT and turns it on after: bound with
 * it, it would join any reuseport socket of this user already on the
 * address (or, on port 0, be given such a socket's port) instead of
 * failing with EADDRINUSE; the others then join the first. */
static int member(const struct volley_group_opts *o, struct volley_addr *a, bool first)
{
    bool stream = o->flags & VOLLEY_GROUP_STREAM;
    int fd = volley__sys_socket(
        a->sa.sa_family,
        (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    int r = first ? 0 : setint(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (r == 0 && stream)
        r = setint(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (r == 0 && a->sa.sa_family == AF_INET6)
        r = setint(fd, IPPROTO_IPV6, IPV6_V6ONLY, !!(o->flags & VOLLEY_GROUP_V6ONLY));
    if (r == 0)
        r = volley__sys_bind(fd, &a->sa, volley_addr_len(a));
    if (r == 0 && first)
        r = setint(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (r == 0 && stream)
        r = volley__sys_listen(fd, o->backlog ? (int)o->backlog : SOMAXCONN);
    if (r == 0 && volley_addr_port(a) == 0) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        r = volley__sys_getsockname(fd, (struct sockaddr *)&ss, &len);
        if (r == 0) {
            uint16_t port = ((struct sockaddr_in *)&ss)->sin_port; /* same place in v6 */
            a->sin.sin_port = port;
        }
    }
    if (r < 0) {
        volley__sys_close(fd);
        return r;
    }
    return fd;
}

int volley_group_open(int *fds, unsigned n, const char *addr,
                      const struct volley_group_opts *opts)
{
    if (!fds || !addr || n == 0 || n > VOLLEY_GROUP_MAX)
        return -EINVAL;
    struct volley_group_opts o;
    int r = group_opts(&o, opts);
    if (r < 0)
        return r;
    struct volley_addr a;
    r = volley_addr_parse(&a, addr);
    if (r < 0)
        return r;
    for (unsigned i = 0; i < n; i++) {
        r = member(&o, &a, i == 0);
        if (r < 0) {
            while (i)
                volley__sys_close(fds[--i]);
            return r;
        }
        fds[i] = r;
    }
    /* CPU steering: member i also says it serves CPU i (SO_INCOMING_CPU).
     * Where the program is refused, kernels since 6.1 then still pick, for
     * a packet processed on CPU i < n, member i. Best effort: a kernel that
     * does not know the option only loses that fallback. */
    for (unsigned i = 0; o.steer == VOLLEY_STEER_CPU && i < n; i++)
        (void)setint(fds[i], SOL_SOCKET, SO_INCOMING_CPU, (int)i);
    if (o.steer == VOLLEY_STEER_KERNEL)
        return VOLLEY_STEER_KERNEL;
    return attach(fds[0], o.steer, n, n, 0) == 0 ? (int)o.steer
                                                 : (int)VOLLEY_STEER_KERNEL;
}

/* Every fd an open socket: 0, -EBADF or -ENOTSOCK. */
static int members_valid(const int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int type;
        socklen_t len = sizeof type;
        if (fds[i] < 0)
            return -EBADF;
        int r = volley__sys_getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &len);
        if (r < 0)
            return r;
    }
    return 0;
}

int volley_group_steer(const int *fds, unsigned n, unsigned steer)
{
    if (!fds || n == 0 || n > VOLLEY_GROUP_MAX || !steer_known(steer))
        return -EINVAL;
    int r = members_valid(fds, n);
    if (r < 0)
        return r;
    if (steer == VOLLEY_STEER_KERNEL) {
        int none = 0;
        r = volley__sys_setsockopt(fds[0], SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &none,
                                   sizeof none);
        return r < 0 && r != -ENOENT ? r : (int)VOLLEY_STEER_KERNEL;
    }
    r = attach(fds[0], steer, n, n, 0);
    return r < 0 ? r : (int)steer;
}

/* Make fd match no arriving packet: bound to an interface no device has.
 * Best effort: before Linux 5.0 (no SO_BINDTOIFINDEX), or on a member bound
 * to a device already without CAP_NET_RAW, it stays matchable, and a
 * datagram may reach it as it closes (volley.h says when). */
static void seal(int fd)
{
    (void)setint(fd, SOL_SOCKET, SO_BINDTOIFINDEX, NO_IFINDEX);
}

/* Wait until no lookup that started before now can still deliver: every
 * one runs, from the socket found to its receive queue, inside one RCU
 * read-side section. */
static void grace(void)
{
    if (volley__sys_membarrier_global() == 0)
        return;
    struct timespec ts = {0, GRACE_FALLBACK_NS};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int volley_group_leave(int *fds, unsigned n, unsigned k, unsigned steer)
{
    if (!fds || n < 2 || n > VOLLEY_GROUP_MAX || k >= n ||
        (steer != VOLLEY_STEER_FLOW && steer != VOLLEY_STEER_CPU))
        return -EINVAL;
    int r = members_valid(fds, n);
    if (r < 0)
        return r;
    /* Over the n - 1 that stay; k's share goes to the last member, which
     * takes k's index in the kernel once k closes. */
    r = attach(fds[0], steer, n - 1, k, n - 1);
    if (r < 0)
        return r;
    seal(fds[k]);
    grace();
    int t = fds[k];
    fds[k] = fds[n - 1];
    fds[n - 1] = t;
    return 0;
}
