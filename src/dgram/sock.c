/* SPDX-License-Identifier: MIT */
/* The entry points on an open socket: connect, argument checks, send with
 * pacing, receive, wait, and stats. Lifetime is in setup.c, options in
 * opts.c. */
#include "dgram.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

int volley_connect_addr(volley_sock *s, const struct volley_addr *peer)
{
    struct sockaddr_in6 sa;
    if (!s || !peer)
        return -EINVAL;
    if (volley__sock_gone(s))
        return -EPIPE;
    if (!(s->be->caps & VOLLEY__BE_KERNEL) || s->family == AF_UNIX)
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
    if (volley__sock_gone(s))
        return -EPIPE;
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
size_t volley__sock_max_len(const volley_sock *s, const struct volley_addr *peer)
{
    if (s->family == AF_UNIX)
        return s->tx_max;
    size_t ceil = volley__gso_max_payload(s->family, peer);
    return ceil < s->tx_max ? ceil : s->tx_max;
}

int volley__sock_check_one(const volley_sock *s, const struct volley_dgram *d)
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
    /* (No family's ceiling is below IPv4's: the common case asks no more.) */
    if ((d->len > s->tx_max || d->len > VOLLEY_UDP4_MAX) &&
        d->len > volley__sock_max_len(s, &d->peer))
        return -EMSGSIZE;
    /* The same limit whether GSO is on, off or refused: volley cuts a
     * buffer into as many messages as the kernel needs. */
    if (d->segment && (d->segment > d->len ||
                       volley__gso_count(d->len, d->segment) > VOLLEY_GSO_SEGMENTS_MAX))
        return -EINVAL;
    return 0;
}

/* The descriptors before the first bad one: *ok of them; its error. */
static int check_send(const volley_sock *s, const struct volley_dgram *d, unsigned n,
                      unsigned *ok)
{
    for (unsigned i = 0; i < n; i++) {
        int r = volley__sock_check_one(s, &d[i]);
        if (r < 0) {
            *ok = i;
            return r;
        }
    }
    *ok = n;
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
    while (k < n && volley__pacer_admit(p, volley__pacer_wire_bytes(s->family, &d[k])))
        k++;
    if (k < n) {
        s->pace_want = volley__pacer_wire_bytes(s->family, &d[k]);
        s->st.tx_paced++;
    }
    if (k == 0)
        return 0;
    int r = s->be->send(s, d, k);
    for (unsigned i = r > 0 ? (unsigned)r : 0; i < k; i++)
        volley__pacer_refund(p, volley__pacer_wire_bytes(s->family, &d[i]));
    return r;
}

int volley_send(volley_sock *s, const struct volley_dgram *d, unsigned n)
{
    if (!s || !d || n == 0 || n > VOLLEY_BATCH_MAX)
        return -EINVAL;
    if (volley__sock_gone(s))
        return -EPIPE;
    unsigned ok = n;
    int r;
    /* A backend that checks as it builds sends the good prefix and
     * returns the first bad descriptor's error when it is the first. The
     * pacer weighs descriptors before the backend sees them: a bad one
     * must fail here, not wait for a budget it can never fit. */
    if (!(s->be->caps & VOLLEY__BE_CHECKS) || s->pacer.rate_bps) {
        r = check_send(s, d, n, &ok);
        if (ok == 0)
            return r;
    }
#if VOLLEY_HAVE_LINUX
    uint64_t blocked = s->st.tx_wouldblock;
#endif
    r = s->pacer.rate_bps ? paced_send(s, d, ok) : s->be->send(s, d, ok);
#if VOLLEY_HAVE_LINUX
    if (s->guest.host && s->st.tx_wouldblock != blocked)
        volley__hosted_blocked(s);
#endif
    return r;
}

/* ---- pacing ---- */

int volley_set_pacing(volley_sock *s, uint64_t rate_bps, uint32_t burst, unsigned flags)
{
    if (!s || flags & ~VOLLEY_PACE_KERNEL || rate_bps > VOLLEY__PACE_MAX_BPS)
        return -EINVAL;
    if (volley__sock_gone(s))
        return -EPIPE;
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

int volley__sock_pace_init(volley_sock *s)
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
    if (volley__sock_gone(s))
        return -EPIPE;
    struct volley_dgram d;
    memset(&d, 0, sizeof d);
    d.len = len;
    if (peer)
        d.peer = *peer;
    return volley__pacer_delay(&s->pacer, volley__pacer_wire_bytes(s->family, &d),
                               mono_ns());
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
    if (volley__sock_gone(s))
        return -EPIPE;
    /* What an earlier call staged (the rest of a GRO buffer) goes first,
     * before any buffer is reused: that keeps the lifetime rule. */
    if (volley__msg_pending(s))
        return (int)volley__msg_deliver(s, d, n);
    return s->be->recv(s, d, n);
}

/* volley_recv_wait the plain way: receive, else wait, then receive. */
static int recv_poll(volley_sock *s, struct volley_dgram *d, unsigned n, int timeout_ms)
{
    int r = s->be->recv(s, d, n);
    if (r != 0 || timeout_ms == 0)
        return r;
    r = wait_socket(s, VOLLEY_WAIT_RECV, timeout_ms);
    if (r <= 0 || !(r & VOLLEY_WAIT_RECV))
        return r < 0 ? r : 0;
    return volley_recv(s, d, n);
}

int volley_recv_wait(volley_sock *s, struct volley_dgram *d, unsigned n, int timeout_ms)
{
    if (!s || !d || n == 0 || n > VOLLEY_BATCH_MAX || timeout_ms < -1)
        return -EINVAL;
    if (volley__sock_gone(s))
        return -EPIPE;
    if (volley__msg_pending(s))
        return (int)volley__msg_deliver(s, d, n);
    if (s->be->recv_wait)
        return s->be->recv_wait(s, d, n, timeout_ms);
    if (s->be->recv_block) {
        int r = volley__msg_block_for(s, timeout_ms);
        if (r != -EAGAIN)
            return r < 0 ? r : s->be->recv_block(s, d, n);
    }
    return recv_poll(s, d, n, timeout_ms);
}

int volley_fd(const volley_sock *s)
{
    if (!s)
        return -EINVAL;
    if (volley__sock_gone(s))
        return -EPIPE;
    return s->poll_fd >= 0 ? s->poll_fd : s->fd;
}

/* Consume a pending error poll() reported, so waiting does not spin. */
static void take_poll_error(volley_sock *s)
{
    if (s->features & VOLLEY_F_RECVERR && volley__err_drain_queue(s) > 0)
        return;
    int err = 0;
    socklen_t len = sizeof err;
    if (volley__sys_getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
        volley__err_async(s, -err);
}

int volley_wait(volley_sock *s, unsigned events, int timeout_ms)
{
    if (!s || !events || events & ~(VOLLEY_WAIT_RECV | VOLLEY_WAIT_SEND))
        return -EINVAL;
    if (volley__sock_gone(s))
        return -EPIPE;
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
    if (events & VOLLEY_WAIT_RECV && volley__msg_pending(s))
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
    if (volley__sock_gone(s))
        return -EPIPE;
    if (!(s->be->caps & VOLLEY__BE_KERNEL))
        return -ENOTSUP;
    struct sockaddr_in6 sa;
    socklen_t len = sizeof sa;
    int r = volley__sys_getsockname(s->fd, (struct sockaddr *)&sa, &len);
    if (r < 0)
        return r;
    volley__addr_from_sockaddr(out, (struct sockaddr *)&sa, len);
    return 0;
}

#if VOLLEY_HAVE_LINUX
/* IP_MTU (or IPV6_MTU) of a connected socket: the route's, with what ICMP
 * said of the path since. */
static int mtu_of(int fd, int fam)
{
    int mtu = 0;
    socklen_t len = sizeof mtu;
    int r = fam == AF_INET
                ? volley__sys_getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len)
                : volley__sys_getsockopt(fd, IPPROTO_IPV6, IPV6_MTU, &mtu, &len);
    return r < 0 ? r : mtu;
}
#endif

int volley_path_mtu(const volley_sock *s, const struct volley_addr *peer)
{
    if (!s)
        return -EINVAL;
    if (volley__sock_gone(s))
        return -EPIPE;
    if (!(s->be->caps & VOLLEY__BE_KERNEL) ||
        (s->family != AF_INET && s->family != AF_INET6))
        return -ENOTSUP;
#if VOLLEY_HAVE_LINUX
    if (!peer)
        return mtu_of(s->fd, s->family);
    int fam = peer->sa.sa_family;
    if (fam != AF_INET && fam != AF_INET6)
        return -EINVAL;
    if (s->family == AF_INET && fam == AF_INET6)
        return -EAFNOSUPPORT;
    /* A socket of its own connected to peer: the kernel answers for a
     * route, not for an address an unconnected socket sends to. */
    struct sockaddr_in6 sa;
    int len = volley__addr_to_sockaddr(peer, fam, &sa);
    if (len <= 0)
        return -EINVAL;
    int fd = volley__sys_socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fd;
    int r = volley__sys_connect(fd, (struct sockaddr *)&sa, (socklen_t)len);
    if (r == 0)
        r = mtu_of(fd, fam);
    volley__sys_close(fd);
    return r;
#else
    (void)peer;
    return -ENOTSUP;
#endif
}

/* SO_RXQ_OVFL reports drops only with the next datagram queued after
 * them; SO_MEMINFO tells them now. */
static uint64_t kernel_drops_now(const volley_sock *s)
{
    uint32_t drops;
    if (!(s->features & VOLLEY_F_RXQ_OVFL) || !volley__msg_meminfo_drops(s, &drops))
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
    return s && !volley__sock_gone(s) ? s->features : 0;
}

unsigned volley_gso_max_segments(const volley_sock *s)
{
    return volley_features(s) & VOLLEY_F_GSO ? s->gso_segs : 0;
}
