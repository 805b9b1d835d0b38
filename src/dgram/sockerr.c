/* SPDX-License-Identifier: MIT */
/* Errors: counting them by kind, the queue of asynchronous reports
 * (ICMP through the error queue, or pending socket errors), and the retry
 * policy every backend applies to a failed system call. */
#include "dgram.h"

#include <errno.h>
#include <string.h>

/* SO_EE_ORIGIN_LOCAL: a report the sending host made itself. */
#define ORIGIN_LOCAL 1

void volley__err_count(volley_sock *s, int err)
{
    switch (-err) {
    case ECONNREFUSED:
        s->st.err_connrefused++;
        break;
    case EHOSTUNREACH:
    case ENETUNREACH:
        s->st.err_unreach++;
        break;
    case EMSGSIZE:
        s->st.err_msgsize++;
        break;
    case ENOBUFS:
    case ENOMEM:
        s->st.err_nobufs++;
        break;
    case EPERM:
    case EACCES:
        s->st.err_perm++;
        break;
    default:
        s->st.err_other++;
    }
}

void volley__err_push(volley_sock *s, const struct volley_sockerr *e)
{
    if (s->err_count == VOLLEY__SOCKERR_RING) {
        s->err_head = (s->err_head + 1) % VOLLEY__SOCKERR_RING;
        s->err_count--;
        s->st.sockerr_lost++;
    }
    s->errs[(s->err_head + s->err_count) % VOLLEY__SOCKERR_RING] = *e;
    s->err_count++;
    s->st.sockerr_queued++;
}

int volley__err_drain_queue(volley_sock *s)
{
    int got = 0;
    /* Bounded: the queue is limited by the receive buffer, but never spin. */
    for (int i = 0; i < 64; i++) {
        uint8_t ctrl[256] __attribute__((aligned(8)));
        struct sockaddr_in6 dest;
        uint8_t byte;
        struct iovec iov = {&byte, 1};
        struct msghdr m = {.msg_name = &dest,
                           .msg_namelen = sizeof dest,
                           .msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = ctrl,
                           .msg_controllen = sizeof ctrl};
        ssize_t r = volley__sys_recvmsg(s->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
        if (r == -EINTR)
            continue;
        if (r < 0)
            break;
        struct volley_sockerr e;
        if (volley__cmsg_parse_err(ctrl, m.msg_controllen, &e) < 0)
            continue;
        volley__addr_from_sockaddr(&e.dest, (struct sockaddr *)&dest, m.msg_namelen);
        /* A datagram the kernel refused as too big for the path is counted
         * by the send that failed; its report only adds the MTU. */
        if (!(e.origin == ORIGIN_LOCAL && e.error == -EMSGSIZE))
            volley__err_count(s, e.error);
        volley__err_push(s, &e);
        got++;
    }
    return got;
}

bool volley__err_is_async(int err)
{
    return err == -ECONNREFUSED || err == -EHOSTUNREACH || err == -ENETUNREACH ||
           err == -EHOSTDOWN || err == -ENETDOWN || err == -EPROTO;
}

void volley__err_async(volley_sock *s, int err)
{
    /* With RECVERR the details wait in the error queue; otherwise the
     * kernel gave us only the errno. */
    if ((s->features & VOLLEY_F_RECVERR) && volley__err_drain_queue(s) > 0)
        return;
    struct volley_sockerr e;
    memset(&e, 0, sizeof e);
    e.error = err;
    volley__err_count(s, err);
    volley__err_push(s, &e);
}

bool volley__err_send_retry(volley_sock *s, struct volley__retry *rt, int err)
{
    /* Bounded even for EINTR, so a broken kernel cannot hang a call. */
    if (rt->tries >= 16)
        return false;
    rt->tries++;
    if (err == -EINTR)
        return true;
    if (!volley__err_is_async(err)) {
        /* Too big for the path: with RECVERR the kernel queued a report
         * that says the MTU; hand it over with the error, now. */
        if (err == -EMSGSIZE && (s->features & VOLLEY_F_RECVERR))
            (void)volley__err_drain_queue(s);
        return false;
    }
    /* UDP sends never fail with ECONNREFUSED on their own account: it is
     * always an earlier datagram's ICMP. Unreachable errors can be either,
     * so they are retried once and judged by the outcome. */
    if (err == -ECONNREFUSED) {
        volley__err_async(s, err);
        return true;
    }
    if (rt->maybe_async == err)
        return false;
    rt->maybe_async = err;
    return true;
}

void volley__err_send_ok(volley_sock *s, struct volley__retry *rt)
{
    if (rt->maybe_async)
        volley__err_async(s, rt->maybe_async);
    rt->maybe_async = 0;
    rt->tries = 0;
}

bool volley__err_recv_retry(volley_sock *s, unsigned *tries, int err)
{
    if ((*tries)++ >= 16)
        return false;
    if (err == -EINTR)
        return true;
    if (!volley__err_is_async(err))
        return false;
    volley__err_async(s, err);
    return true;
}

int volley__err_recv_none(volley_sock *s, int r)
{
    if (r == -EAGAIN || r == 0 || volley__err_is_async(r)) {
        s->st.rx_wouldblock++;
        return 0;
    }
    s->st.rx_errors++;
    volley__err_count(s, r);
    return r;
}

int volley_errors(volley_sock *s, struct volley_sockerr *out, unsigned n)
{
    if (!s || !out || n == 0)
        return -EINVAL;
    if (volley__sock_gone(s))
        return -EPIPE;
    unsigned k = 0;
    for (; k < n && s->err_count; k++) {
        out[k] = s->errs[s->err_head];
        s->err_head = (s->err_head + 1) % VOLLEY__SOCKERR_RING;
        s->err_count--;
    }
    return (int)k;
}
