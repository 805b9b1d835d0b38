/* SPDX-License-Identifier: MIT */
/* Control messages: built for sends, parsed from receives and from the
 * error queue. Pure: works on byte buffers only, never trusts a length it
 * has not checked, and is fuzzed by fuzz/fuzz_cmsg.c. */
#include "dgram.h"

#include <errno.h>
#if VOLLEY_HAVE_ERRQUEUE_H
#include <linux/errqueue.h>
#endif
#include <string.h>
#include <time.h>

/* Append one control message; returns the new offset or -ENOSPC. */
static int put(uint8_t *buf, size_t cap, size_t off, int level, int type,
               const void *data, size_t len)
{
    if (off > cap || CMSG_SPACE(len) > cap - off)
        return -ENOSPC;
    struct cmsghdr h;
    memset(&h, 0, sizeof h);
    h.cmsg_len = CMSG_LEN(len);
    h.cmsg_level = level;
    h.cmsg_type = type;
    memset(buf + off, 0, CMSG_SPACE(len));
    memcpy(buf + off, &h, sizeof h);
    memcpy(buf + off + CMSG_LEN(0), data, len);
    return (int)(off + CMSG_SPACE(len));
}

int volley__cmsg_build(uint8_t *buf, size_t cap, int fam, const struct volley_dgram *d,
                       uint16_t gso_seg)
{
    int off = 0;
    /* A v4 (or v4-mapped) peer on an IPv6 socket leaves through the IPv4
     * stack, which reads only SOL_IP control messages: an IPV6_TCLASS
     * would be ignored there. */
    bool v4 = fam == AF_INET || volley__addr_is_v4(&d->peer) ||
              (d->peer.sa.sa_family == AF_UNSPEC && volley__addr_is_v4(&d->local));
    bool want_pktinfo = d->local.sa.sa_family != AF_UNSPEC || d->ifindex != 0;

    if (want_pktinfo && v4) {
        struct in_pktinfo pi;
        memset(&pi, 0, sizeof pi);
        pi.ipi_ifindex = (int)d->ifindex;
        if (d->local.sa.sa_family == AF_INET)
            pi.ipi_spec_dst = d->local.sin.sin_addr;
        else if (volley__addr_is_v4(&d->local))
            memcpy(&pi.ipi_spec_dst, d->local.sin6.sin6_addr.s6_addr + 12, 4);
        off = put(buf, cap, (size_t)off, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
    } else if (want_pktinfo) {
        struct in6_pktinfo pi;
        memset(&pi, 0, sizeof pi);
        pi.ipi6_ifindex = d->ifindex;
        if (d->local.sa.sa_family == AF_INET6)
            pi.ipi6_addr = d->local.sin6.sin6_addr;
        off = put(buf, cap, (size_t)off, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof pi);
    }
    if (off < 0)
        return off;
    if (d->ecn) {
        int tos = d->ecn & 3;
        if (v4)
            off = put(buf, cap, (size_t)off, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
        else
            off = put(buf, cap, (size_t)off, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos);
        if (off < 0)
            return off;
    }
    if (gso_seg)
        off = put(buf, cap, (size_t)off, SOL_UDP, UDP_SEGMENT, &gso_seg, sizeof gso_seg);
    return off;
}

/* Walk the control messages of buf[0..len): calls fn for each with its
 * payload bounds checked against len. Returns 0, -EINVAL if malformed, or
 * the first negative value fn returns. */
typedef int (*cmsg_fn)(int level, int type, const uint8_t *data, size_t len, void *arg);

static int walk(const void *ctrl, size_t len, cmsg_fn fn, void *arg)
{
    const uint8_t *p = ctrl;
    size_t off = 0;
    while (len - off >= sizeof(struct cmsghdr)) {
        struct cmsghdr h;
        memcpy(&h, p + off, sizeof h);
        if (h.cmsg_len < CMSG_LEN(0) || h.cmsg_len > len - off)
            return -EINVAL;
        int r = fn(h.cmsg_level, h.cmsg_type, p + off + CMSG_LEN(0),
                   h.cmsg_len - CMSG_LEN(0), arg);
        if (r < 0)
            return r;
        size_t step = CMSG_ALIGN(h.cmsg_len);
        if (step > len - off)
            break;
        off += step;
    }
    return 0;
}

static int need(size_t have, size_t want)
{
    return have < want ? -EINVAL : 0;
}

static int parse_one(int level, int type, const uint8_t *data, size_t len, void *arg)
{
    struct volley__rxmeta *m = arg;
    if (level == IPPROTO_IP && type == IP_PKTINFO) {
        struct in_pktinfo pi;
        if (need(len, sizeof pi))
            return -EINVAL;
        memcpy(&pi, data, sizeof pi);
        memset(&m->local, 0, sizeof m->local);
        m->local.sin.sin_family = AF_INET;
        m->local.sin.sin_addr = pi.ipi_addr;
        m->ifindex = (uint32_t)pi.ipi_ifindex;
    } else if (level == IPPROTO_IPV6 && type == IPV6_PKTINFO) {
        struct in6_pktinfo pi;
        struct sockaddr_in6 s6;
        if (need(len, sizeof pi))
            return -EINVAL;
        memcpy(&pi, data, sizeof pi);
        memset(&s6, 0, sizeof s6);
        s6.sin6_family = AF_INET6;
        s6.sin6_addr = pi.ipi6_addr;
        volley__addr_from_sockaddr(&m->local, (struct sockaddr *)&s6, sizeof s6);
        m->ifindex = pi.ipi6_ifindex;
    } else if (level == IPPROTO_IP && (type == IP_TOS || type == IP_RECVTOS)) {
        if (need(len, 1))
            return -EINVAL;
        m->ecn = data[0] & 3;
    } else if (level == IPPROTO_IPV6 && type == IPV6_TCLASS) {
        int v;
        if (need(len, sizeof v))
            return -EINVAL;
        memcpy(&v, data, sizeof v);
        m->ecn = (uint8_t)(v & 3);
    } else if (level == SOL_SOCKET && type == SCM_TIMESTAMPNS) {
        struct timespec ts;
        if (need(len, sizeof ts))
            return -EINVAL;
        memcpy(&ts, data, sizeof ts);
        /* In range for int64 nanoseconds (until 2262), or not a timestamp. */
        if (ts.tv_sec < 0 || ts.tv_sec >= INT64_MAX / 1000000000 || ts.tv_nsec < 0 ||
            ts.tv_nsec >= 1000000000)
            return -EINVAL;
        m->rx_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        m->has_ts = true;
    } else if (level == SOL_SOCKET && type == SO_RXQ_OVFL) {
        if (need(len, sizeof m->ovfl))
            return -EINVAL;
        memcpy(&m->ovfl, data, sizeof m->ovfl);
        m->has_ovfl = true;
    } else if (level == SOL_UDP && type == UDP_GRO) {
        int v;
        if (need(len, sizeof v))
            return -EINVAL;
        memcpy(&v, data, sizeof v);
        m->gro_segment = v > 0 && v <= UINT16_MAX ? (uint16_t)v : 0;
    }
    return 0;
}

int volley__cmsg_parse(const void *ctrl, size_t len, struct volley__rxmeta *out)
{
    memset(out, 0, sizeof *out);
    if (!ctrl)
        return 0;
    return walk(ctrl, len, parse_one, out);
}

struct err_ctx {
    struct volley_sockerr *out;
    bool found;
};

static int parse_err_one(int level, int type, const uint8_t *data, size_t len, void *arg)
{
    struct err_ctx *c = arg;
#if !VOLLEY_HAVE_ERRQUEUE_H
    /* no error queue here: nothing is a report */
    (void)c, (void)level, (void)type, (void)data, (void)len;
    return 0;
#else
    if (!((level == IPPROTO_IP && type == IP_RECVERR) ||
          (level == IPPROTO_IPV6 && type == IPV6_RECVERR)))
        return 0;
    struct sock_extended_err ee;
    if (need(len, sizeof ee))
        return -EINVAL;
    memcpy(&ee, data, sizeof ee);
    struct volley_sockerr *e = c->out;
    memset(e, 0, sizeof *e);
    e->error = ee.ee_errno > 0 && ee.ee_errno < 4096 ? -(int)ee.ee_errno : -EIO;
    e->origin = ee.ee_origin;
    e->type = ee.ee_type;
    e->code = ee.ee_code;
    e->info = ee.ee_info;
    /* The offender's address follows the record (SO_EE_OFFENDER). */
    struct sockaddr_in6 off;
    memset(&off, 0, sizeof off);
    size_t olen = len - sizeof ee;
    if (olen > sizeof off)
        olen = sizeof off;
    memcpy(&off, data + sizeof ee, olen);
    volley__addr_from_sockaddr(&e->offender, (struct sockaddr *)&off, (socklen_t)olen);
    c->found = true;
    return 0;
#endif
}

int volley__cmsg_parse_err(const void *ctrl, size_t len, struct volley_sockerr *out)
{
    struct err_ctx c = {out, false};
    memset(out, 0, sizeof *out);
    if (!ctrl)
        return -ENOENT;
    int r = walk(ctrl, len, parse_err_one, &c);
    if (r < 0)
        return r;
    return c.found ? 0 : -ENOENT;
}
