/* Socket lifetime, options, backend choice, argument checks, the public
 * send/receive/wait entry points with pacing, and stats. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* Not public feature bits: set from VOLLEY_DISABLE=mmsg,uring only. */
#define F_NO_MMSG  0x10000u
#define F_NO_URING 0x20000u
#define F_ALL                                                                            \
    (VOLLEY_F_GSO | VOLLEY_F_GRO | VOLLEY_F_PKTINFO | VOLLEY_F_ECN |                     \
     VOLLEY_F_TIMESTAMP | VOLLEY_F_RXQ_OVFL | VOLLEY_F_RECVERR)

static const struct {
    const char *name;
    unsigned bit;
} feature_names[] = {
    {"gso", VOLLEY_F_GSO},
    {"gro", VOLLEY_F_GRO},
    {"pktinfo", VOLLEY_F_PKTINFO},
    {"ecn", VOLLEY_F_ECN},
    {"timestamp", VOLLEY_F_TIMESTAMP},
    {"rxq_ovfl", VOLLEY_F_RXQ_OVFL},
    {"recverr", VOLLEY_F_RECVERR},
    {"mmsg", F_NO_MMSG},
    {"uring", F_NO_URING},
};

/* The kernel backends VOLLEY_BACKEND may name (pairs are never chosen by
 * the environment). */
static const struct {
    const char *name;
    unsigned id;
} backend_names[] = {
    {"auto", VOLLEY_BACKEND_AUTO},
    {"scalar", VOLLEY_BACKEND_SCALAR},
    {"mmsg", VOLLEY_BACKEND_MMSG},
    {"uring", VOLLEY_BACKEND_URING},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* What the environment asks of every socket. */
struct env {
    unsigned backend; /* VOLLEY_BACKEND_*; AUTO when unset */
    unsigned disable; /* VOLLEY_F_* and F_NO_* */
};

/* VOLLEY_BACKEND: 0, or -EINVAL with the reason in msg. */
static int env_backend(struct env *e, char *msg, size_t size)
{
    const char *v = getenv("VOLLEY_BACKEND");
    if (!v || !*v)
        return 0;
    for (size_t i = 0; i < COUNT(backend_names); i++) {
        if (!strcmp(v, backend_names[i].name)) {
            e->backend = backend_names[i].id;
            return 0;
        }
    }
    if (size)
        snprintf(msg, size,
                 "VOLLEY_BACKEND=\"%s\": unknown backend (use auto, scalar, mmsg or "
                 "uring)",
                 v);
    return -EINVAL;
}

/* VOLLEY_DISABLE=gso,gro,...: 0, or -EINVAL naming the unknown item. */
static int env_disable(struct env *e, char *msg, size_t size)
{
    const char *all = getenv("VOLLEY_DISABLE");
    for (const char *v = all; v && *v;) {
        size_t len = strcspn(v, ",");
        bool found = len == 0; /* empty items are harmless */
        for (size_t i = 0; i < COUNT(feature_names) && !found; i++) {
            if (strlen(feature_names[i].name) == len &&
                !strncmp(v, feature_names[i].name, len)) {
                e->disable |= feature_names[i].bit;
                found = true;
            }
        }
        if (!found) {
            if (size)
                snprintf(msg, size,
                         "VOLLEY_DISABLE=\"%s\": unknown name \"%.*s\" (use gso, gro, "
                         "pktinfo, ecn, timestamp, rxq_ovfl, recverr, mmsg or uring)",
                         all, (int)len, v);
            return -EINVAL;
        }
        v += len;
        if (*v == ',')
            v++;
    }
    return 0;
}

static int env_read(struct env *e, char *msg, size_t size)
{
    memset(e, 0, sizeof *e);
    if (size)
        msg[0] = '\0';
    int r = env_backend(e, msg, size);
    return r < 0 ? r : env_disable(e, msg, size);
}

int volley_env_check(char *msg, size_t size)
{
    struct env e;
    if (!msg && size)
        return -EINVAL;
    return env_read(&e, msg, size);
}

/* Every field's range as the header documents it. */
static bool opts_valid(const struct volley_opts *o)
{
    return o->backend <= VOLLEY_BACKEND_URING && !((o->enable | o->disable) & ~F_ALL) &&
           !(o->pace_flags & ~VOLLEY_PACE_KERNEL) &&
           o->pace_rate_bps <= VOLLEY__PACE_MAX_BPS && o->rx_batch <= VOLLEY_BATCH_MAX &&
           o->rx_slot_size <= 65536 && o->rcvbuf >= 0 && o->sndbuf >= 0 &&
           o->pair_capacity <= VOLLEY__PAIR_CAPACITY_MAX && o->pair_drop_ppm <= 1000000 &&
           o->pair_dup_ppm <= 1000000 && o->pair_reorder_ppm <= 1000000 &&
           o->rx_ring_bufs <= VOLLEY__RING_BUFS_MAX &&
           (o->tx_arena == 0 ||
            (o->tx_arena >= VOLLEY__ARENA_MIN && o->tx_arena <= VOLLEY__ARENA_MAX)) &&
           o->pair_reserved == 0 && o->uring_reserved == 0;
}

int volley__opts_load(struct volley_opts *dst, const struct volley_opts *src,
                      bool env_backend_applies)
{
    memset(dst, 0, sizeof *dst);
    if (src) {
        if (src->size < offsetof(struct volley_opts, backend) + sizeof src->backend)
            return -EINVAL;
        /* A newer caller's fields we do not know must be zero. */
        const uint8_t *tail = (const uint8_t *)src;
        for (size_t i = sizeof *dst; i < src->size; i++)
            if (tail[i])
                return -E2BIG;
        memcpy(dst, src, src->size < sizeof *dst ? src->size : sizeof *dst);
    }
    dst->size = sizeof *dst;
    if (!opts_valid(dst))
        return -EINVAL;
    if (!dst->rx_batch)
        dst->rx_batch = 256;
    if (!dst->rx_slot_size)
        dst->rx_slot_size = 65535;
    if (!dst->pair_capacity)
        dst->pair_capacity = 256;
    struct env env;
    memset(&env, 0, sizeof env);
    /* VOLLEY_BACKEND is an error only where it applies: when the choice of
     * a kernel backend is left to volley. */
    int r = env_backend_applies && dst->backend == VOLLEY_BACKEND_AUTO
                ? env_backend(&env, NULL, 0)
                : 0;
    if (r == 0)
        r = env_disable(&env, NULL, 0);
    if (r < 0)
        return r;
    /* The internal copy also carries F_NO_MMSG/F_NO_URING for the choice. */
    dst->disable |= env.disable;
    if (dst->backend == VOLLEY_BACKEND_AUTO)
        dst->backend = env.backend;
    return 0;
}

volley_sock *volley__sock_alloc(const struct volley_opts *o,
                                const struct volley_backend *be)
{
    volley_sock *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fd = -1;
    s->poll_fd = -1;
    s->tx_max = VOLLEY__DGRAM_MAX;
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
    free(s->runs);
}

void volley_close(volley_sock *s)
{
    if (!s)
        return;
    if (s->be && s->be->close)
        s->be->close(s);
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
    s->runs = calloc(VOLLEY_BATCH_MAX, sizeof *s->runs);
    if (!s->pend || !s->tx_msgs || !s->tx_iov || !s->tx_names || !s->tx_ctrl ||
        !s->tx_info || !s->runs)
        return -ENOMEM;
    return 0;
}

static int alloc_rx_slab(volley_sock *s)
{
    unsigned rb = s->rx_batch;
    s->rx_slab = malloc((size_t)rb * s->slot_size);
    s->rx_msgs = calloc(rb, sizeof *s->rx_msgs);
    s->rx_iov = calloc(rb, sizeof *s->rx_iov);
    s->rx_names = calloc(rb, sizeof *s->rx_names);
    s->rx_ctrl = calloc(rb, VOLLEY__RX_CTRL);
    if (!s->rx_slab || !s->rx_msgs || !s->rx_iov || !s->rx_names || !s->rx_ctrl)
        return -ENOMEM;
    return 0;
}

static bool setopt_on(int fd, int level, int opt)
{
    int one = 1;
    return volley__sys_setsockopt(fd, level, opt, &one, sizeof one) == 0;
}

/* The kernel's drop counter for the socket now (SO_MEMINFO reads the same
 * 32-bit counter SO_RXQ_OVFL reports); false when it cannot be read. */
static bool meminfo_drops(const volley_sock *s, uint32_t *drops)
{
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof mem;
    if (volley__sys_getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 ||
        len <= SK_MEMINFO_DROPS * sizeof mem[0])
        return false;
    *drops = mem[SK_MEMINFO_DROPS];
    return true;
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
    if (want & VOLLEY_F_ECN) {
        /* A dual-stack socket reports IPv4 arrivals' TOS only with IP_RECVTOS. */
        bool ok = setopt_on(fd, IPPROTO_IP, IP_RECVTOS);
        if (v6)
            ok = setopt_on(fd, IPPROTO_IPV6, IPV6_RECVTCLASS);
        if (ok)
            on |= VOLLEY_F_ECN;
    }
    if (want & VOLLEY_F_TIMESTAMP && setopt_on(fd, SOL_SOCKET, SO_TIMESTAMPNS))
        on |= VOLLEY_F_TIMESTAMP;
    if (want & VOLLEY_F_RXQ_OVFL && setopt_on(fd, SOL_SOCKET, SO_RXQ_OVFL))
        on |= VOLLEY_F_RXQ_OVFL;
    if (want & VOLLEY_F_RECVERR) {
        bool ok = setopt_on(fd, IPPROTO_IP, IP_RECVERR);
        if (v6)
            ok = setopt_on(fd, IPPROTO_IPV6, IPV6_RECVERR);
        if (ok)
            on |= VOLLEY_F_RECVERR;
    }
    /* A coalesced buffer is up to 64 KiB: a smaller slot would cut it. */
    if (want & VOLLEY_F_GRO && s->slot_size >= 65535 && setopt_on(fd, SOL_UDP, UDP_GRO))
        on |= VOLLEY_F_GRO;
    if (want & VOLLEY_F_GSO) {
        /* Setting 0 asks the kernel whether it knows UDP_SEGMENT and leaves
         * no segment size set socket-wide. */
        int zero = 0;
        unsigned limit = volley__gso_limit();
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

/* Set up io_uring on s. A kernel without it (ENOSYS), one that refuses it
 * by policy (EPERM: sysctl or seccomp) or lacks what the backend needs
 * (EINVAL, EOPNOTSUPP from an older kernel) means "not available here";
 * any other failure (EMFILE, ENOMEM, ...) is reported as itself. */
static int try_uring(volley_sock *s)
{
#if VOLLEY_HAVE_URING
    s->be = &volley__backend_uring;
    int r = volley__uring_init(s);
    if (r == 0)
        return 0;
    s->be = NULL;
    if (r == -ENOSYS || r == -EPERM || r == -EINVAL || r == -EOPNOTSUPP)
        return -ENOTSUP;
    return r;
#else
    (void)s;
    return -ENOTSUP;
#endif
}

static int choose_backend(volley_sock *s)
{
    unsigned b = s->opts.backend;
    unsigned off = s->opts.disable;
    if (b == VOLLEY_BACKEND_PAIR)
        return -ENOTSUP;
    if (b == VOLLEY_BACKEND_SCALAR) {
        s->be = &volley__backend_scalar;
        return 0;
    }
    if (b == VOLLEY_BACKEND_URING)
        return off & F_NO_URING ? -ENOTSUP : try_uring(s);
    /* sendmmsg with no messages tells whether the call exists. */
    bool mmsg_ok =
        !(off & F_NO_MMSG) && volley__sys_sendmmsg(s->fd, s->tx_msgs, 0, 0) == 0;
    if (b == VOLLEY_BACKEND_MMSG && !mmsg_ok)
        return -ENOTSUP;
    s->be = mmsg_ok ? &volley__backend_mmsg : &volley__backend_scalar;
    return 0;
}

/* Common to open and wrap, once s->fd and s->family are set. */
static int setup(volley_sock *s)
{
    int r = alloc_buffers(s);
    if (r < 0)
        return r;
    r = choose_backend(s);
    if (r == 0 && (s->be == &volley__backend_scalar || s->be == &volley__backend_mmsg))
        r = alloc_rx_slab(s);
    if (r < 0)
        return r;
    set_bufsize(s->fd, SO_RCVBUFFORCE, SO_RCVBUF, s->opts.rcvbuf);
    set_bufsize(s->fd, SO_SNDBUFFORCE, SO_SNDBUF, s->opts.sndbuf);
    r = volley__pace_init(s);
    if (r < 0)
        return r;
    if (s->family == AF_INET || s->family == AF_INET6) {
        unsigned want = (VOLLEY_F_DEFAULT | s->opts.enable) & ~s->opts.disable;
        if (s->be == &volley__backend_scalar)
            want &= ~(VOLLEY_F_GSO | VOLLEY_F_GRO); /* portable path: plain calls */
        enable_features(s, want);
        /* Counters start at open or wrap: drops a wrapped socket saw
         * before are not ours to report. */
        if (s->features & VOLLEY_F_RXQ_OVFL && !meminfo_drops(s, &s->ovfl_last))
            s->ovfl_last = 0;
        struct sockaddr_in6 sa;
        socklen_t len = sizeof sa;
        if (volley__sys_getsockname(s->fd, (struct sockaddr *)&sa, &len) == 0)
            volley__addr_from_sockaddr(&s->bound, (struct sockaddr *)&sa, len);
    }
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
    volley_sock *s = volley__sock_alloc(&opts, NULL);
    if (!s)
        return -ENOMEM;
    s->family = a.sa.sa_family;
    r = s->fd =
        volley__sys_socket(s->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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
    volley_sock *s = volley__sock_alloc(&opts, NULL);
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

int volley_connect_addr(volley_sock *s, const struct volley_addr *peer)
{
    struct sockaddr_in6 sa;
    if (!s || !peer)
        return -EINVAL;
    if (s->be == &volley__backend_pair || s->family == AF_UNIX)
        return -ENOTSUP;
    int len = volley__addr_to_sockaddr(peer, s->family, &sa);
    if (len <= 0)
        return len == 0 ? -EINVAL : len;
    int r = volley__sys_connect(s->fd, (struct sockaddr *)&sa, (socklen_t)len);
    if (r < 0)
        return r;
    s->connected = true;
    return 0;
}

int volley_connect(volley_sock *s, const char *peer)
{
    struct volley_addr a;
    if (!s || !peer || volley_addr_parse(&a, peer) < 0)
        return -EINVAL;
    return volley_connect_addr(s, &a);
}

/* ---- argument checks ---- */

static int check_addr_family(const volley_sock *s, int fam)
{
    if (fam == AF_UNSPEC || s->family == AF_UNSPEC)
        return 0;
    if (s->family == AF_UNIX)
        return -EAFNOSUPPORT;
    if (fam == AF_INET6 && s->family == AF_INET)
        return -EAFNOSUPPORT;
    if (fam != AF_INET && fam != AF_INET6)
        return -EAFNOSUPPORT;
    return 0;
}

/* A source address must belong to the family the datagram leaves by: on
 * an IPv6 socket an IPv4 (or v4-mapped) local goes with an IPv4 (or
 * v4-mapped) peer, and only with one, as an IPv4 socket refuses IPv6. */
static int check_local(const volley_sock *s, const struct volley_dgram *d)
{
    int r = check_addr_family(s, d->local.sa.sa_family);
    if (r < 0 || d->local.sa.sa_family == AF_UNSPEC || s->family != AF_INET6 ||
        d->peer.sa.sa_family == AF_UNSPEC)
        return r;
    return volley__addr_is_v4(&d->local) == volley__addr_is_v4(&d->peer) ? 0
                                                                         : -EAFNOSUPPORT;
}

/* Sizes are checked before any arithmetic on them. */
static int check_one(const volley_sock *s, const struct volley_dgram *d)
{
    if (d->ecn > 3 || (!d->data && d->len))
        return -EINVAL;
    if (d->peer.sa.sa_family == AF_UNSPEC && !s->connected)
        return -EDESTADDRREQ;
    int r = check_addr_family(s, d->peer.sa.sa_family);
    if (r == 0)
        r = check_local(s, d);
    if (r < 0)
        return r;
    if (d->len > s->tx_max ||
        (s->family != AF_UNIX && d->len > volley__max_payload(s->family, &d->peer)))
        return -EMSGSIZE;
    /* The same limit whether GSO is on, off or refused: volley cuts a
     * buffer into as many messages as the kernel needs. */
    if (d->segment && (d->segment > d->len ||
                       volley__gso_count(d->len, d->segment) > VOLLEY_GSO_SEGMENTS_MAX))
        return -EINVAL;
    return 0;
}

int volley__check_send(const volley_sock *s, const struct volley_dgram *d, unsigned n,
                       unsigned *bad)
{
    for (unsigned i = 0; i < n; i++) {
        int r = check_one(s, &d[i]);
        if (r < 0) {
            *bad = i;
            return r;
        }
    }
    *bad = n;
    return 0;
}

/* ---- public entry points ---- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Send what the pacer allows now; give back the budget of what the kernel
 * did not take. */
static int paced_send(volley_sock *s, const struct volley_dgram *d, unsigned n)
{
    struct volley__pacer *p = &s->pacer;
    volley__pacer_refill(p, mono_ns());
    unsigned k = 0;
    while (k < n && volley__pacer_admit(p, volley__wire_bytes(s->family, &d[k])))
        k++;
    if (k < n) {
        s->pace_want = volley__wire_bytes(s->family, &d[k]);
        s->st.tx_paced++;
    }
    if (k == 0)
        return 0;
    int r = s->be->send(s, d, k);
    for (unsigned i = r > 0 ? (unsigned)r : 0; i < k; i++)
        volley__pacer_refund(p, volley__wire_bytes(s->family, &d[i]));
    return r;
}

int volley_send(volley_sock *s, const struct volley_dgram *d, unsigned n)
{
    if (!s || !d || n == 0 || n > VOLLEY_BATCH_MAX)
        return -EINVAL;
    unsigned ok;
    int r = volley__check_send(s, d, n, &ok);
    if (ok == 0)
        return r;
    if (s->pacer.rate_bps)
        return paced_send(s, d, ok);
    return s->be->send(s, d, ok);
}

/* ---- pacing ---- */

int volley_set_pacing(volley_sock *s, uint64_t rate_bps, uint32_t burst, unsigned flags)
{
    if (!s || flags & ~VOLLEY_PACE_KERNEL || rate_bps > VOLLEY__PACE_MAX_BPS)
        return -EINVAL;
    bool ip = s->family == AF_INET || s->family == AF_INET6;
    if (flags & VOLLEY_PACE_KERNEL && !ip)
        return -ENOTSUP;
    if (ip && (flags & VOLLEY_PACE_KERNEL || s->kernel_paced)) {
        /* bytes per second; all ones lifts the limit again */
        uint64_t bytes = flags & VOLLEY_PACE_KERNEL && rate_bps ? rate_bps / 8 : ~0ull;
        int r = volley__sys_setsockopt(s->fd, SOL_SOCKET, SO_MAX_PACING_RATE, &bytes,
                                       sizeof bytes);
        if (r < 0)
            return r;
        s->kernel_paced = (flags & VOLLEY_PACE_KERNEL) && rate_bps;
    }
    if (flags & VOLLEY_PACE_KERNEL)
        rate_bps = 0; /* the kernel holds datagrams back, not volley */
    if (rate_bps)
        volley__pacer_set(&s->pacer, rate_bps, burst, mono_ns());
    else
        memset(&s->pacer, 0, sizeof s->pacer);
    s->pace_want = 0;
    return 0;
}

int volley__pace_init(volley_sock *s)
{
    const struct volley_opts *o = &s->opts;
    if (!o->pace_rate_bps)
        return 0;
    return volley_set_pacing(s, o->pace_rate_bps, o->pace_burst, o->pace_flags);
}

int64_t volley_pacing_delay(const volley_sock *s, size_t len,
                            const struct volley_addr *peer)
{
    if (!s)
        return -EINVAL;
    struct volley_dgram d;
    memset(&d, 0, sizeof d);
    d.len = len;
    if (peer)
        d.peer = *peer;
    return volley__pacer_delay(&s->pacer, volley__wire_bytes(s->family, &d), mono_ns());
}

/* Sleep ns (interrupted early by a signal: the caller's loop calls again). */
static void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000, ns % 1000000000};
    (void)clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

static int wait_socket(volley_sock *s, unsigned events, int timeout_ms);

/* Waiting for SEND on a paced socket means waiting for the budget of the
 * datagram the pacer refused last. */
static int wait_paced(volley_sock *s, unsigned events, int timeout_ms, int64_t pace_ns)
{
    unsigned other = events & ~VOLLEY_WAIT_SEND;
    int64_t limit = timeout_ms < 0 ? INT64_MAX : (int64_t)timeout_ms * 1000000;
    int64_t ns = pace_ns < limit ? pace_ns : limit;
    int ready = 0;
    if (other) {
        int ms = (int)((ns + 999999) / 1000000);
        ready = wait_socket(s, other, ms);
        if (ready < 0)
            return ready;
    } else {
        sleep_ns(ns);
        s->st.tx_syscalls++;
    }
    int64_t left = volley__pacer_delay(&s->pacer, s->pace_want, mono_ns());
    return ready | (left == 0 ? (int)VOLLEY_WAIT_SEND : 0);
}

int volley_recv(volley_sock *s, struct volley_dgram *d, unsigned n)
{
    if (!s || !d || n == 0 || n > VOLLEY_BATCH_MAX)
        return -EINVAL;
    /* What an earlier call staged (the rest of a GRO buffer) goes first,
     * before any buffer is reused: that keeps the lifetime rule. */
    if (volley__pending(s))
        return (int)volley__deliver(s, d, n);
    return s->be->recv(s, d, n);
}

int volley_fd(const volley_sock *s)
{
    if (!s)
        return -EINVAL;
    return s->poll_fd >= 0 ? s->poll_fd : s->fd;
}

/* Consume a pending error poll() reported, so waiting does not spin. */
static void take_poll_error(volley_sock *s)
{
    if (s->features & VOLLEY_F_RECVERR && volley__drain_errqueue(s) > 0)
        return;
    int err = 0;
    socklen_t len = sizeof err;
    if (volley__sys_getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
        volley__async_err(s, -err);
}

int volley_wait(volley_sock *s, unsigned events, int timeout_ms)
{
    if (!s || !events || events & ~(VOLLEY_WAIT_RECV | VOLLEY_WAIT_SEND))
        return -EINVAL;
    if (events & VOLLEY_WAIT_SEND && s->pacer.rate_bps && s->pace_want) {
        int64_t ns = volley__pacer_delay(&s->pacer, s->pace_want, mono_ns());
        if (ns > 0)
            return wait_paced(s, events, timeout_ms, ns);
    }
    return wait_socket(s, events, timeout_ms);
}

static int wait_socket(volley_sock *s, unsigned events, int timeout_ms)
{
    if (s->be->wait)
        return s->be->wait(s, events, timeout_ms);
    if (events & VOLLEY_WAIT_RECV && volley__pending(s))
        return VOLLEY_WAIT_RECV;
    struct pollfd p = {.fd = s->fd};
    if (events & VOLLEY_WAIT_RECV)
        p.events |= POLLIN;
    if (events & VOLLEY_WAIT_SEND)
        p.events |= POLLOUT;
    int r = volley__sys_poll(&p, 1, timeout_ms);
    /* Waiting is a system call made for this socket like any other. */
    if (events & VOLLEY_WAIT_RECV)
        s->st.rx_syscalls++;
    else
        s->st.tx_syscalls++;
    /* A signal ends the wait early; the caller's loop calls again. */
    if (r == -EINTR)
        return 0;
    if (r <= 0)
        return r;
    int ready = 0;
    if (p.revents & POLLERR) {
        unsigned before = s->err_count;
        take_poll_error(s);
        if (s->err_count != before)
            ready |= VOLLEY_WAIT_ERR;
    }
    if (p.revents & (POLLIN | POLLHUP) && events & VOLLEY_WAIT_RECV)
        ready |= VOLLEY_WAIT_RECV;
    if (p.revents & POLLOUT && events & VOLLEY_WAIT_SEND)
        ready |= VOLLEY_WAIT_SEND;
    return ready;
}

int volley_local_addr(const volley_sock *s, struct volley_addr *out)
{
    if (!s || !out)
        return -EINVAL;
    if (s->be == &volley__backend_pair)
        return -ENOTSUP;
    struct sockaddr_in6 sa;
    socklen_t len = sizeof sa;
    int r = volley__sys_getsockname(s->fd, (struct sockaddr *)&sa, &len);
    if (r < 0)
        return r;
    volley__addr_from_sockaddr(out, (struct sockaddr *)&sa, len);
    return 0;
}

/* SO_RXQ_OVFL reports drops only with the next datagram queued after
 * them; SO_MEMINFO tells them now. */
static uint64_t kernel_drops_now(const volley_sock *s)
{
    uint32_t drops;
    if (!(s->features & VOLLEY_F_RXQ_OVFL) || !meminfo_drops(s, &drops))
        return s->st.rx_kernel_drops;
    /* Unsigned difference: the same wrap rule as the control message. */
    return s->st.rx_kernel_drops + (uint32_t)(drops - s->ovfl_last);
}

int volley_get_stats(const volley_sock *s, struct volley_stats *out, size_t size)
{
    if (!s || !out || size == 0)
        return -EINVAL;
    struct volley_stats st = s->st;
    if (s->family == AF_INET || s->family == AF_INET6)
        st.rx_kernel_drops = kernel_drops_now(s);
    memcpy(out, &st, size < sizeof st ? size : sizeof st);
    return 0;
}

const char *volley_backend_name(const volley_sock *s)
{
    return s && s->be ? s->be->name : "none";
}

unsigned volley_features(const volley_sock *s)
{
    return s ? s->features : 0;
}

unsigned volley_gso_max_segments(const volley_sock *s)
{
    return s && (s->features & VOLLEY_F_GSO) ? s->gso_segs : 0;
}
