/* SPDX-License-Identifier: MIT */
/* Socket lifetime: open, wrap and close, the memory sized once per
 * socket, the backend chosen and set up, and the features turned on. */
#include "dgram.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

volley_sock *volley__setup_alloc(const struct volley_opts *o,
                                 const struct volley_backend *be)
{
    volley_sock *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fd = -1;
    s->poll_fd = -1;
    s->tx_max = VOLLEY__DGRAM_MAX;
    s->rcvtimeo_ms = -2; /* none: not even the long one -1 stands for */
    s->be = be;
    s->opts = *o;
    return s;
}

static void free_buffers(volley_sock *s)
{
    free(s->rx_slab);
    free(s->rx_msgs);
    free(s->rx_iov);
    free(s->rx_names);
    free(s->rx_ctrl);
    free(s->pend);
    free(s->tx_msgs);
    free(s->tx_iov);
    free(s->tx_names);
    free(s->tx_ctrl);
    free(s->tx_info);
}

void volley_close(volley_sock *s)
{
    if (!s)
        return;
#if VOLLEY_HAVE_LINUX
    /* a watch on the socket goes before the fds it watches; a socket on
     * the loop's ring leaves the loop after its last completion */
    if (!s->guest.shared)
        volley__hosted_detach(s);
#endif
    if (s->be && s->be->close)
        s->be->close(s);
#if VOLLEY_HAVE_LINUX
    volley__hosted_detach(s);
#endif
    volley__sys_close(s->fd);
    free_buffers(s);
    free(s);
}

/* All per-datagram memory, sized once: nothing is allocated after this.
 * Message arrays serve every backend; the receive slab only those that
 * receive with recvmsg/recvmmsg (io_uring brings its own buffer ring). */
static int alloc_buffers(volley_sock *s)
{
    s->slot_size = s->opts.rx_slot_size;
    s->rx_batch = s->opts.rx_batch;
    s->pend = calloc(s->rx_batch, sizeof *s->pend);
    s->tx_msgs = calloc(VOLLEY_BATCH_MAX, sizeof *s->tx_msgs);
    s->tx_iov = calloc(VOLLEY_BATCH_MAX, sizeof *s->tx_iov);
    s->tx_names = calloc(VOLLEY_BATCH_MAX, sizeof *s->tx_names);
    s->tx_ctrl = calloc(VOLLEY_BATCH_MAX, VOLLEY__TX_CTRL);
    s->tx_info = calloc(VOLLEY_BATCH_MAX, sizeof *s->tx_info);
    if (!s->pend || !s->tx_msgs || !s->tx_iov || !s->tx_names || !s->tx_ctrl ||
        !s->tx_info)
        return -ENOMEM;
    return 0;
}

static bool setopt_int(int fd, int level, int opt, int v)
{
    return volley__sys_setsockopt(fd, level, opt, &v, sizeof v) == 0;
}

static bool setopt_on(int fd, int level, int opt)
{
    return setopt_int(fd, level, opt, 1);
}

/* IPv4's option, and on an IPv6 socket IPv6's too (the one that counts
 * there): a dual-stack socket reports IPv4 arrivals only through IPv4's,
 * and sends to IPv4 peers under IPv4's rules. */
static bool setopt_both(int fd, bool v6, int opt4, int opt6, int v)
{
    bool ok = setopt_int(fd, IPPROTO_IP, opt4, v);
    return v6 ? setopt_int(fd, IPPROTO_IPV6, opt6, v) : ok;
}

/* Turn on what was asked for and the kernel accepts; the rest stays off. */
static void enable_features(volley_sock *s, unsigned want)
{
    int fd = s->fd;
    bool v6 = s->family == AF_INET6;
    unsigned on = 0;
    if (want & VOLLEY_F_PKTINFO && (v6 ? setopt_on(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO)
                                       : setopt_on(fd, IPPROTO_IP, IP_PKTINFO)))
        on |= VOLLEY_F_PKTINFO;
    if (want & VOLLEY_F_ECN && setopt_both(fd, v6, IP_RECVTOS, IPV6_RECVTCLASS, 1))
        on |= VOLLEY_F_ECN;
#if defined(SO_TIMESTAMPNS) && defined(SO_RXQ_OVFL) && defined(IP_RECVERR)
    /* Linux's options: elsewhere these features stay off. */
    if (want & VOLLEY_F_TIMESTAMP && setopt_on(fd, SOL_SOCKET, SO_TIMESTAMPNS))
        on |= VOLLEY_F_TIMESTAMP;
    if (want & VOLLEY_F_RXQ_OVFL && setopt_on(fd, SOL_SOCKET, SO_RXQ_OVFL))
        on |= VOLLEY_F_RXQ_OVFL;
    if (want & VOLLEY_F_RECVERR && setopt_both(fd, v6, IP_RECVERR, IPV6_RECVERR, 1))
        on |= VOLLEY_F_RECVERR;
    _Static_assert(IP_PMTUDISC_PROBE == IPV6_PMTUDISC_PROBE, "one value for both");
    if (want & VOLLEY_F_DONTFRAG &&
        setopt_both(fd, v6, IP_MTU_DISCOVER, IPV6_MTU_DISCOVER, IP_PMTUDISC_PROBE))
        on |= VOLLEY_F_DONTFRAG;
#endif
    /* A coalesced buffer is up to 64 KiB: a smaller slot would cut it. */
    if (want & VOLLEY_F_GRO && s->slot_size >= 65535 && setopt_on(fd, SOL_UDP, UDP_GRO))
        on |= VOLLEY_F_GRO | (want & VOLLEY_F_GRO_SEGMENTS);
    if (want & VOLLEY_F_GSO) {
        /* Setting 0 asks the kernel whether it knows UDP_SEGMENT and leaves
         * no segment size set socket-wide. */
        int zero = 0;
        unsigned limit = volley__probe_gso_limit();
        if (limit &&
            volley__sys_setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0) {
            on |= VOLLEY_F_GSO;
            s->gso_segs = limit;
        }
    }
    s->features = on;
}

/* A buffer size as asked: past net.core.rmem_max/wmem_max when privileged
 * (the FORCE options), else capped by the kernel as for anyone. */
static void set_bufsize(int fd, int force_opt, int opt, int32_t size)
{
    if (size <= 0)
        return;
    if (volley__sys_setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) < 0)
        (void)volley__sys_setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

/* The backends volley_open and volley_wrap can drive a socket with. */
static const struct volley_backend *const kernel_backends[] = {
    &volley__backend_scalar,
#if VOLLEY_HAVE_LINUX
    &volley__backend_mmsg,
#endif
#if VOLLEY_HAVE_URING
    &volley__backend_uring,
#endif
#if VOLLEY_HAVE_XNU
    &volley__backend_xnu,
#endif
};

/* The VOLLEY_DISABLE name that turns backend id off, as a disable bit. */
static unsigned disable_bit(unsigned id)
{
    return id == VOLLEY_BACKEND_MMSG    ? VOLLEY__F_NO_MMSG
           : id == VOLLEY_BACKEND_URING ? VOLLEY__F_NO_URING
           : id == VOLLEY_BACKEND_XNU   ? VOLLEY__F_NO_XNU
                                        : 0;
}

/* Set backend id up on s: 0, or a negative errno (-ENOTSUP: not built,
 * turned off, or not available here). */
static int init_backend(volley_sock *s, unsigned id)
{
    if (s->opts.disable & disable_bit(id))
        return -ENOTSUP;
    for (size_t i = 0; i < sizeof kernel_backends / sizeof kernel_backends[0]; i++) {
        const struct volley_backend *be = kernel_backends[i];
        if (be->id != id)
            continue;
        s->be = be;
        int r = be->init(s);
        if (r < 0)
            s->be = NULL; /* init released what it set up */
        return r;
    }
    return -ENOTSUP;
}

/* A forced backend, or for AUTO mmsg where it works (xnu on macOS) and
 * scalar otherwise (uring only when asked for: see volley_open in
 * volley.h). */
static int choose_backend(volley_sock *s)
{
    unsigned b = s->opts.backend;
    if (b != VOLLEY_BACKEND_AUTO)
        return init_backend(s, b);
    int r = init_backend(s, VOLLEY_BACKEND_MMSG);
#if defined(__APPLE__)
    if (r == -ENOTSUP)
        r = init_backend(s, VOLLEY_BACKEND_XNU);
#endif
    return r == -ENOTSUP ? init_backend(s, VOLLEY_BACKEND_SCALAR) : r;
}

/* Common to open and wrap, once s->fd and s->family are set. */
static int setup(volley_sock *s)
{
    int r = alloc_buffers(s);
#if VOLLEY_HAVE_LINUX
    if (r == 0 && s->opts.loop)
        r = volley__hosted_attach(s);
#else
    if (r == 0 && s->opts.loop)
        r = -ENOTSUP; /* stream loops are Linux's */
#endif
    if (r < 0)
        return r;
    r = choose_backend(s);
    if (r < 0)
        return r;
    set_bufsize(s->fd, SO_RCVBUFFORCE, SO_RCVBUF, s->opts.rcvbuf);
    set_bufsize(s->fd, SO_SNDBUFFORCE, SO_SNDBUF, s->opts.sndbuf);
    r = volley__sock_pace_init(s);
    if (r < 0)
        return r;
    if (s->family == AF_INET || s->family == AF_INET6) {
        unsigned want = (VOLLEY_F_DEFAULT | s->opts.enable) & ~s->opts.disable;
        if (!(s->be->caps & VOLLEY__BE_OFFLOAD))
            want &= ~(VOLLEY_F_GSO | VOLLEY_F_GRO);
        enable_features(s, want);
        /* Counters start at open or wrap: drops a wrapped socket saw
         * before are not ours to report. */
        if (s->features & VOLLEY_F_RXQ_OVFL &&
            !volley__msg_meminfo_drops(s, &s->ovfl_last))
            s->ovfl_last = 0;
        struct sockaddr_in6 sa;
        socklen_t len = sizeof sa;
        if (volley__sys_getsockname(s->fd, (struct sockaddr *)&sa, &len) == 0)
            volley__addr_from_sockaddr(&s->bound, (struct sockaddr *)&sa, len);
    }
#if VOLLEY_HAVE_LINUX
    if (s->guest.host)
        return volley__hosted_start(s);
#endif
    return 0;
}

int volley_open(volley_sock **out, const char *bind, const struct volley_opts *o)
{
    struct volley_opts opts;
    struct volley_addr a;
    if (!out || !bind)
        return -EINVAL;
    int r = volley__opts_load(&opts, o, true);
    if (r < 0)
        return r;
    if (volley_addr_parse(&a, bind) < 0)
        return -EINVAL;
    if (opts.backend == VOLLEY_BACKEND_PAIR)
        return -ENOTSUP;
    volley_sock *s = volley__setup_alloc(&opts, NULL);
    if (!s)
        return -ENOMEM;
    s->family = a.sa.sa_family;
    /* A blocking fd: every call volley makes on it passes MSG_DONTWAIT
     * but volley_recv_wait's, which sleeps in the receive itself. */
    r = s->fd = volley__sys_socket(s->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    s->fd_blocks = true;
    if (r >= 0 && s->family == AF_INET6) {
        int zero = 0; /* "[::]" means both families */
        (void)volley__sys_setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
                                     sizeof zero);
    }
    if (r >= 0)
        r = volley__sys_bind(s->fd, &a.sa, volley_addr_len(&a));
    if (r >= 0)
        r = setup(s);
    if (r < 0) {
        volley_close(s);
        return r;
    }
    *out = s;
    return 0;
}

int volley_wrap(volley_sock **out, int fd, const struct volley_opts *o)
{
    struct volley_opts opts;
    if (!out)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    int r = volley__opts_load(&opts, o, true);
    if (r < 0)
        return r;
    if (opts.backend == VOLLEY_BACKEND_PAIR)
        return -ENOTSUP;
    int type = 0, dom = 0;
    socklen_t len = sizeof type;
    r = volley__sys_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    if (r < 0)
        return r;
    if (type != SOCK_DGRAM)
        return -EPROTOTYPE;
    len = sizeof dom;
    r = volley__sys_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &len);
    if (r < 0)
        return r;
    if (dom != AF_INET && dom != AF_INET6 && dom != AF_UNIX)
        return -EAFNOSUPPORT;
    volley_sock *s = volley__setup_alloc(&opts, NULL);
    if (!s)
        return -ENOMEM;
    s->fd = fd;
    s->family = dom;
    struct sockaddr_in6 peer;
    len = sizeof peer;
    /* AF_UNIX datagrams carry no address here, so such sockets count as
     * connected (a socketpair is). */
    s->connected = dom == AF_UNIX ||
                   volley__sys_getpeername(fd, (struct sockaddr *)&peer, &len) == 0;
    r = volley__sys_fcntl(fd, F_GETFL, 0);
    if (r >= 0)
        r = volley__sys_fcntl(fd, F_SETFL, r | O_NONBLOCK);
    if (r >= 0)
        r = setup(s);
    if (r < 0) {
        s->fd = -1; /* still the caller's */
        volley_close(s);
        return r;
    }
    *out = s;
    return 0;
}
