/* SPDX-License-Identifier: MIT */
/* Control messages, without sockets: what volley__cmsg_build writes for each
 * send descriptor, what volley__cmsg_parse and volley__cmsg_parse_err read
 * from hand-made receive buffers (well-formed and malformed), and the round
 * trip where send and receive forms mean the same thing. */
#include "dgram/dgram.h"
#include "t.h"

#include <arpa/inet.h>
#include <linux/errqueue.h>
#include <netinet/udp.h>
#include <stdalign.h>
#include <time.h>

#define BUF_CAP 1024
/* Control buffers must be aligned like a cmsghdr. */
struct cbuf {
    alignas(struct cmsghdr) uint8_t b[BUF_CAP];
    size_t len;
};

/* Append one control message with data d (dlen bytes); cmsg_len is
 * CMSG_LEN(dlen) + len_delta, so callers can write lying headers. The
 * buffer grows by CMSG_SPACE(dlen). */
static void put(struct cbuf *c, int level, int type, const void *d, size_t dlen,
                long len_delta)
{
    if (c->len + CMSG_SPACE(dlen) > BUF_CAP)
        T_FAIL("test buffer too small");
    struct cmsghdr h;
    memset(&h, 0, sizeof h);
    h.cmsg_level = level;
    h.cmsg_type = type;
    h.cmsg_len = (size_t)((long)CMSG_LEN(dlen) + len_delta);
    memset(c->b + c->len, 0, CMSG_SPACE(dlen));
    memcpy(c->b + c->len, &h, sizeof h);
    if (dlen)
        memcpy(c->b + c->len + CMSG_LEN(0), d, dlen);
    c->len += CMSG_SPACE(dlen);
}

/* A header with an arbitrary cmsg_len and no data written. */
static void put_raw(struct cbuf *c, int level, int type, size_t cmsg_len)
{
    struct cmsghdr h;
    memset(&h, 0, sizeof h);
    h.cmsg_level = level;
    h.cmsg_type = type;
    h.cmsg_len = cmsg_len;
    memcpy(c->b + c->len, &h, sizeof h);
    c->len += sizeof h;
}

/* ---- receive-side payloads ---- */

static struct in_pktinfo pkt4(const char *addr, const char *spec, int ifindex)
{
    struct in_pktinfo p;
    memset(&p, 0, sizeof p);
    p.ipi_ifindex = ifindex;
    inet_pton(AF_INET, addr, &p.ipi_addr);
    inet_pton(AF_INET, spec, &p.ipi_spec_dst);
    return p;
}

static struct in6_pktinfo pkt6(const char *addr, unsigned ifindex)
{
    struct in6_pktinfo p;
    memset(&p, 0, sizeof p);
    p.ipi6_ifindex = ifindex;
    inet_pton(AF_INET6, addr, &p.ipi6_addr);
    return p;
}

static void init_meta(struct volley__rxmeta *m)
{
    memset(m, 0, sizeof *m);
}

static int parse_each(void)
{
    struct cbuf c = {.len = 0};
    struct volley__rxmeta m;
    int r;

    /* Empty control data. */
    init_meta(&m);
    r = volley__cmsg_parse(c.b, 0, &m);
    T_CHECK(r >= 0, "parse(len 0) = %d", r);
    T_CHECK(m.local.sa.sa_family == AF_UNSPEC && m.ifindex == 0 && m.ecn == 0 &&
                !m.has_ts && !m.has_ovfl && m.gro_segment == 0,
            "parse(len 0) set fields");

    /* IP_PKTINFO: local = ipi_addr (not ipi_spec_dst), ifindex. */
    c.len = 0;
    struct in_pktinfo p4 = pkt4("10.0.0.2", "10.9.9.9", 7);
    put(&c, IPPROTO_IP, IP_PKTINFO, &p4, sizeof p4, 0);
    init_meta(&m);
    r = volley__cmsg_parse(c.b, c.len, &m);
    struct volley_addr want = t_addr("10.0.0.2:0");
    T_CHECK(r >= 0, "IP_PKTINFO: parse = %d", r);
    T_CHECK(t_same_ip(&m.local, &want), "IP_PKTINFO: local %s, want 10.0.0.2",
            t_fmt(&m.local));
    T_CHECK(m.ifindex == 7, "IP_PKTINFO: ifindex %u, want 7", m.ifindex);

    /* IPV6_PKTINFO. */
    c.len = 0;
    struct in6_pktinfo p6 = pkt6("2001:db8::2", 5);
    put(&c, IPPROTO_IPV6, IPV6_PKTINFO, &p6, sizeof p6, 0);
    init_meta(&m);
    r = volley__cmsg_parse(c.b, c.len, &m);
    want = t_addr("[2001:db8::2]:0");
    T_CHECK(r >= 0, "IPV6_PKTINFO: parse = %d", r);
    T_CHECK(t_same_ip(&m.local, &want), "IPV6_PKTINFO: local %s, want [2001:db8::2]",
            t_fmt(&m.local));
    T_CHECK(m.ifindex == 5, "IPV6_PKTINFO: ifindex %u, want 5", m.ifindex);

    /* IPV6_PKTINFO with a v4-mapped address: normalised to AF_INET. */
    c.len = 0;
    p6 = pkt6("::ffff:10.0.0.3", 4);
    put(&c, IPPROTO_IPV6, IPV6_PKTINFO, &p6, sizeof p6, 0);
    init_meta(&m);
    r = volley__cmsg_parse(c.b, c.len, &m);
    want = t_addr("10.0.0.3:0");
    T_CHECK(r >= 0, "IPV6_PKTINFO mapped: parse = %d", r);
    T_CHECK(t_same_ip(&m.local, &want),
            "IPV6_PKTINFO mapped: local %s, want AF_INET 10.0.0.3", t_fmt(&m.local));
    T_CHECK(m.ifindex == 4, "IPV6_PKTINFO mapped: ifindex %u, want 4", m.ifindex);

    /* IP_TOS is one byte on receive; ecn is its low two bits. */
    static const struct {
        uint8_t tos, ecn;
    } tos[] = {{0x00, 0}, {0x01, 1}, {0x02, 2}, {0x03, 3},
               {0xb8, 0}, {0xb9, 1}, {0xfe, 2}};
    for (size_t i = 0; i < sizeof tos / sizeof tos[0]; i++) {
        c.len = 0;
        put(&c, IPPROTO_IP, IP_TOS, &tos[i].tos, 1, 0);
        init_meta(&m);
        r = volley__cmsg_parse(c.b, c.len, &m);
        T_CHECK(r >= 0 && m.ecn == tos[i].ecn,
                "IP_TOS 0x%02x: parse = %d ecn %u, want %u", tos[i].tos, r, m.ecn,
                tos[i].ecn);
    }

    /* IPV6_TCLASS is an int. */
    static const int tclass[] = {0x00, 0x01, 0x2a, 0x2b, 0xff};
    for (size_t i = 0; i < sizeof tclass / sizeof tclass[0]; i++) {
        c.len = 0;
        put(&c, IPPROTO_IPV6, IPV6_TCLASS, &tclass[i], sizeof(int), 0);
        init_meta(&m);
        r = volley__cmsg_parse(c.b, c.len, &m);
        T_CHECK(r >= 0 && m.ecn == (tclass[i] & 3),
                "IPV6_TCLASS 0x%02x: parse = %d ecn %u", tclass[i], r, m.ecn);
    }

    /* SO_TIMESTAMPNS. */
    c.len = 0;
    struct timespec ts = {.tv_sec = 1700000000, .tv_nsec = 123456789};
    put(&c, SOL_SOCKET, SO_TIMESTAMPNS, &ts, sizeof ts, 0);
    init_meta(&m);
    r = volley__cmsg_parse(c.b, c.len, &m);
    T_CHECK(r >= 0 && m.has_ts && m.rx_ns == 1700000000123456789LL,
            "SO_TIMESTAMPNS: parse = %d has_ts %d rx_ns %lld", r, m.has_ts,
            (long long)m.rx_ns);

    /* A timestamp too large for int64 nanoseconds is never the kernel's, but
     * it must not overflow (UBSan) or come back as a wrapped, negative time:
     * refused (-EINVAL) or not reported are both fine. */
    c.len = 0;
    ts.tv_sec = INT64_MAX / 1000000000 + 1;
    ts.tv_nsec = 0;
    put(&c, SOL_SOCKET, SO_TIMESTAMPNS, &ts, sizeof ts, 0);
    init_meta(&m);
    r = volley__cmsg_parse(c.b, c.len, &m);
    T_CHECK(r == -EINVAL || !m.has_ts || m.rx_ns >= 0,
            "SO_TIMESTAMPNS tv_sec %lld: parse = %d has_ts %d rx_ns %lld (wrapped)",
            (long long)ts.tv_sec, r, m.has_ts, (long long)m.rx_ns);

    /* SO_RXQ_OVFL. */
    c.len = 0;
    uint32_t ovfl = 0xfffffff0u;
    put(&c, SOL_SOCKET, SO_RXQ_OVFL, &ovfl, sizeof ovfl, 0);
    init_meta(&m);
    r = volley__cmsg_parse(c.b, c.len, &m);
    T_CHECK(r >= 0 && m.has_ovfl && m.ovfl == 0xfffffff0u,
            "SO_RXQ_OVFL: parse = %d has_ovfl %d ovfl %u", r, m.has_ovfl, m.ovfl);

    /* UDP_GRO: int segment size. */
    c.len = 0;
    int gro = 1200;
    put(&c, SOL_UDP, UDP_GRO, &gro, sizeof gro, 0);
    init_meta(&m);
    r = volley__cmsg_parse(c.b, c.len, &m);
    T_CHECK(r >= 0 && m.gro_segment == 1200, "UDP_GRO: parse = %d gro_segment %u", r,
            m.gro_segment);

    /* The last message may end at CMSG_LEN without its padding (the kernel
     * trims msg_controllen that way when the buffer is tight). */
    c.len = 0;
    uint8_t t = 0x03;
    put(&c, IPPROTO_IP, IP_TOS, &t, 1, 0);
    init_meta(&m);
    r = volley__cmsg_parse(c.b, CMSG_LEN(1), &m);
    T_CHECK(r >= 0 && m.ecn == 3, "IP_TOS ending at CMSG_LEN(1): parse = %d ecn %u", r,
            m.ecn);
    return 0;
}

/* Everything a dual-stack socket can get at once, plus messages the parser
 * does not know, in kernel order. */
static int parse_all(void)
{
    struct cbuf c = {.len = 0};
    uint8_t junk[3] = {1, 2, 3};
    int ttl = 64;
    put(&c, SOL_SOCKET, 12345, junk, sizeof junk, 0); /* unknown type */
    put(&c, 999, 1, junk, 1, 0);                      /* unknown level */
    put(&c, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl, 0); /* known to the kernel only */
    put(&c, SOL_SOCKET, 4242, NULL, 0, 0);            /* empty unknown */
    struct timespec ts = {.tv_sec = 5, .tv_nsec = 6};
    put(&c, SOL_SOCKET, SO_TIMESTAMPNS, &ts, sizeof ts, 0);
    uint32_t ovfl = 17;
    put(&c, SOL_SOCKET, SO_RXQ_OVFL, &ovfl, sizeof ovfl, 0);
    struct in6_pktinfo p6 = pkt6("2001:db8::44", 9);
    put(&c, IPPROTO_IPV6, IPV6_PKTINFO, &p6, sizeof p6, 0);
    int tclass = 0x02;
    put(&c, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof tclass, 0);
    int gro = 1350;
    put(&c, SOL_UDP, UDP_GRO, &gro, sizeof gro, 0);
    put(&c, SOL_UDP, 4343, junk, 2, 0); /* unknown UDP type */

    struct volley__rxmeta m;
    init_meta(&m);
    int r = volley__cmsg_parse(c.b, c.len, &m);
    struct volley_addr want = t_addr("[2001:db8::44]:0");
    T_CHECK(r >= 0, "all: parse = %d", r);
    T_CHECK(t_same_ip(&m.local, &want) && m.ifindex == 9, "all: local %s ifindex %u",
            t_fmt(&m.local), m.ifindex);
    T_CHECK(m.ecn == 2, "all: ecn %u, want 2", m.ecn);
    T_CHECK(m.has_ts && m.rx_ns == 5000000006LL, "all: has_ts %d rx_ns %lld", m.has_ts,
            (long long)m.rx_ns);
    T_CHECK(m.has_ovfl && m.ovfl == 17, "all: has_ovfl %d ovfl %u", m.has_ovfl, m.ovfl);
    T_CHECK(m.gro_segment == 1350, "all: gro_segment %u", m.gro_segment);
    return 0;
}

/* Malformed buffers: all -EINVAL, and nothing read past len (ASan). */
static int parse_malformed(void)
{
    static const struct {
        const char *name;
        int level, type;
        size_t dlen;
    } shorts[] = {
        {"IP_PKTINFO 8 bytes", IPPROTO_IP, IP_PKTINFO, 8},
        {"IP_PKTINFO 0 bytes", IPPROTO_IP, IP_PKTINFO, 0},
        {"IPV6_PKTINFO 16 bytes", IPPROTO_IPV6, IPV6_PKTINFO, 16},
        {"IPV6_PKTINFO 19 bytes", IPPROTO_IPV6, IPV6_PKTINFO, 19},
        {"IP_TOS 0 bytes", IPPROTO_IP, IP_TOS, 0},
        {"IPV6_TCLASS 0 bytes", IPPROTO_IPV6, IPV6_TCLASS, 0},
        {"IPV6_TCLASS 2 bytes", IPPROTO_IPV6, IPV6_TCLASS, 2},
        {"SO_TIMESTAMPNS 8 bytes", SOL_SOCKET, SO_TIMESTAMPNS, 8},
        {"SO_TIMESTAMPNS 15 bytes", SOL_SOCKET, SO_TIMESTAMPNS, 15},
        {"SO_RXQ_OVFL 3 bytes", SOL_SOCKET, SO_RXQ_OVFL, 3},
        {"SO_RXQ_OVFL 0 bytes", SOL_SOCKET, SO_RXQ_OVFL, 0},
        {"UDP_GRO 2 bytes", SOL_UDP, UDP_GRO, 2},
        {"UDP_GRO 0 bytes", SOL_UDP, UDP_GRO, 0},
    };
    static const uint8_t zeros[64];
    struct cbuf c = {.len = 0};
    struct volley__rxmeta m;
    int r;

    for (size_t i = 0; i < sizeof shorts / sizeof shorts[0]; i++) {
        c.len = 0;
        put(&c, shorts[i].level, shorts[i].type, zeros, shorts[i].dlen, 0);
        init_meta(&m);
        r = volley__cmsg_parse(c.b, c.len, &m);
        T_CHECK(r == -EINVAL, "%s: parse = %d, want -EINVAL", shorts[i].name, r);
        /* and when the buffer ends right at CMSG_LEN */
        r = volley__cmsg_parse(c.b, CMSG_LEN(shorts[i].dlen), &m);
        T_CHECK(r == -EINVAL, "%s (unpadded): parse = %d, want -EINVAL", shorts[i].name,
                r);
    }

    /* cmsg_len smaller than the header itself (0 would loop forever). */
    static const size_t tiny[] = {0, 1, sizeof(struct cmsghdr) - 1};
    for (size_t i = 0; i < sizeof tiny / sizeof tiny[0]; i++) {
        c.len = 0;
        put_raw(&c, SOL_SOCKET, 4242, tiny[i]);
        memset(c.b + c.len, 0, 32);
        c.len += 32;
        init_meta(&m);
        r = volley__cmsg_parse(c.b, c.len, &m);
        T_CHECK(r == -EINVAL, "cmsg_len %zu: parse = %d, want -EINVAL", tiny[i], r);
    }

    /* cmsg_len past the end of the buffer, including values that overflow
     * when aligned or added to a pointer. */
    const size_t past[] = {CMSG_LEN(4) + 1, CMSG_LEN(4) + 8, 4096,
                           SIZE_MAX,        SIZE_MAX - 7,    SIZE_MAX / 2};
    for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
        c.len = 0;
        int v = 1200;
        put(&c, SOL_UDP, UDP_GRO, &v, sizeof v, 0);
        memcpy(&((struct cmsghdr *)(void *)c.b)->cmsg_len, &past[i], sizeof past[i]);
        init_meta(&m);
        r = volley__cmsg_parse(c.b, CMSG_LEN(4), &m);
        T_CHECK(r == -EINVAL, "cmsg_len %zu in %zu bytes: parse = %d, want -EINVAL",
                past[i], (size_t)CMSG_LEN(4), r);
    }

    /* Same for unknown messages: they are skipped, but only if they fit. */
    c.len = 0;
    put(&c, SOL_SOCKET, 4242, zeros, 8, 100);
    init_meta(&m);
    r = volley__cmsg_parse(c.b, c.len, &m);
    T_CHECK(r == -EINVAL, "unknown cmsg running past len: parse = %d, want -EINVAL", r);

    /* A good message, then a bad one: -EINVAL, the first is kept. */
    c.len = 0;
    uint8_t tos = 0x02;
    put(&c, IPPROTO_IP, IP_TOS, &tos, 1, 0);
    int gro = 1000;
    put(&c, SOL_UDP, UDP_GRO, &gro, sizeof gro, 64);
    init_meta(&m);
    r = volley__cmsg_parse(c.b, c.len, &m);
    T_CHECK(r == -EINVAL, "good then overlong: parse = %d, want -EINVAL", r);
    T_CHECK(m.ecn == 2, "good then overlong: ecn %u, want 2 (parsed before the bad one)",
            m.ecn);

    c.len = 0;
    put(&c, IPPROTO_IP, IP_TOS, &tos, 1, 0);
    put(&c, IPPROTO_IP, IP_PKTINFO, zeros, 4, 0);
    init_meta(&m);
    r = volley__cmsg_parse(c.b, c.len, &m);
    T_CHECK(r == -EINVAL, "good then short IP_PKTINFO: parse = %d, want -EINVAL", r);
    return 0;
}

/* ---- MSG_ERRQUEUE records ---- */

struct errrec {
    struct sock_extended_err ee;
    union {
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
        struct sockaddr sa;
    } off;
};

/* An error record from offender ("192.0.2.1", "2001:db8::9"; NULL: none). */
static struct errrec rec(int err, uint8_t origin, uint8_t type, uint8_t code,
                         uint32_t info, const char *offender)
{
    struct errrec e;
    memset(&e, 0, sizeof e);
    e.ee.ee_errno = (uint32_t)err;
    e.ee.ee_origin = origin;
    e.ee.ee_type = type;
    e.ee.ee_code = code;
    e.ee.ee_info = info;
    if (offender && strchr(offender, ':')) {
        e.off.sin6.sin6_family = AF_INET6;
        inet_pton(AF_INET6, offender, &e.off.sin6.sin6_addr);
    } else if (offender) {
        e.off.sin.sin_family = AF_INET;
        inet_pton(AF_INET, offender, &e.off.sin.sin_addr);
    }
    return e;
}

/* Append e as the RECVERR message of its offender's family (IPv4 for none). */
static void put_rec(struct cbuf *c, const struct errrec *e)
{
    if (e->off.sa.sa_family == AF_INET6)
        put(c, IPPROTO_IPV6, IPV6_RECVERR, e, sizeof e->ee + sizeof e->off.sin6, 0);
    else
        put(c, IPPROTO_IP, IP_RECVERR, e, sizeof e->ee + sizeof e->off.sin, 0);
}

/* volley__cmsg_parse_err over c into *se, filled with fill bytes first. */
static int parse_rec(const struct cbuf *c, struct volley_sockerr *se, int fill)
{
    memset(se, fill, sizeof *se);
    return volley__cmsg_parse_err(c->b, c->len, se);
}

static int parse_err(void)
{
    struct cbuf c = {.len = 0};
    struct volley_sockerr se;
    int r;

    /* ICMP port unreachable, IPv4. */
    struct errrec e = rec(ECONNREFUSED, SO_EE_ORIGIN_ICMP, 3, 3, 0, "192.0.2.1");
    put_rec(&c, &e);
    r = parse_rec(&c, &se, 0);
    T_CHECK(r == 0, "IP_RECVERR: parse_err = %d", r);
    T_CHECK(se.error == -ECONNREFUSED && se.origin == SO_EE_ORIGIN_ICMP && se.type == 3 &&
                se.code == 3 && se.info == 0,
            "IP_RECVERR: error %d origin %u type %u code %u info %u", se.error, se.origin,
            se.type, se.code, se.info);
    T_CHECK(t_addr_is(&se.offender, "192.0.2.1:0"),
            "IP_RECVERR: offender %s, want 192.0.2.1:0", t_fmt(&se.offender));

    /* Fragmentation needed, after other messages. */
    c.len = 0;
    uint8_t tos = 1;
    put(&c, IPPROTO_IP, IP_TOS, &tos, 1, 0);
    put(&c, SOL_SOCKET, 4242, NULL, 0, 0);
    e = rec(EMSGSIZE, SO_EE_ORIGIN_ICMP, 3, 4, 1400, "198.51.100.7");
    put_rec(&c, &e);
    r = parse_rec(&c, &se, 0);
    T_CHECK(r == 0 && se.error == -EMSGSIZE && se.type == 3 && se.code == 4 &&
                se.info == 1400,
            "frag needed: parse_err = %d error %d type %u code %u info %u", r, se.error,
            se.type, se.code, se.info);
    T_CHECK(t_addr_is(&se.offender, "198.51.100.7:0"), "frag needed: offender %s",
            t_fmt(&se.offender));

    /* ICMPv6 port unreachable. */
    c.len = 0;
    e = rec(ECONNREFUSED, SO_EE_ORIGIN_ICMP6, 1, 4, 0, "2001:db8::9");
    put_rec(&c, &e);
    r = parse_rec(&c, &se, 0);
    T_CHECK(r == 0 && se.error == -ECONNREFUSED && se.origin == SO_EE_ORIGIN_ICMP6 &&
                se.type == 1 && se.code == 4,
            "IPV6_RECVERR: parse_err = %d error %d origin %u type %u code %u", r,
            se.error, se.origin, se.type, se.code);
    T_CHECK(t_addr_is(&se.offender, "[2001:db8::9]:0"), "IPV6_RECVERR: offender %s",
            t_fmt(&se.offender));

    /* ICMPv4 on a dual-stack socket: offender is v4-mapped, comes back AF_INET. */
    c.len = 0;
    e = rec(EHOSTUNREACH, SO_EE_ORIGIN_ICMP, 3, 1, 0, "::ffff:192.0.2.77");
    put_rec(&c, &e);
    r = parse_rec(&c, &se, 0);
    T_CHECK(r == 0 && se.error == -EHOSTUNREACH,
            "mapped offender: parse_err = %d error %d", r, se.error);
    T_CHECK(t_addr_is(&se.offender, "192.0.2.77:0"),
            "mapped offender: %s, want AF_INET 192.0.2.77", t_fmt(&se.offender));

    /* A local error has no offender (AF_UNSPEC). */
    c.len = 0;
    e = rec(EMSGSIZE, SO_EE_ORIGIN_LOCAL, 0, 0, 1500, NULL);
    put_rec(&c, &e);
    r = parse_rec(&c, &se, 0xa5);
    T_CHECK(r == 0 && se.error == -EMSGSIZE && se.origin == SO_EE_ORIGIN_LOCAL &&
                se.info == 1500,
            "local error: parse_err = %d error %d origin %u info %u", r, se.error,
            se.origin, se.info);
    T_CHECK(se.offender.sa.sa_family == AF_UNSPEC, "local error: offender family %d",
            se.offender.sa.sa_family);

    /* None present. */
    memset(&se, 0, sizeof se);
    r = volley__cmsg_parse_err(c.b, 0, &se);
    T_CHECK(r == -ENOENT, "parse_err(empty) = %d, want -ENOENT", r);
    c.len = 0;
    put(&c, IPPROTO_IP, IP_TOS, &tos, 1, 0);
    int gro = 1000;
    put(&c, SOL_UDP, UDP_GRO, &gro, sizeof gro, 0);
    r = volley__cmsg_parse_err(c.b, c.len, &se);
    T_CHECK(r == -ENOENT, "parse_err(no RECVERR) = %d, want -ENOENT", r);

    /* Malformed. */
    c.len = 0;
    e = rec(ECONNREFUSED, SO_EE_ORIGIN_ICMP, 3, 3, 0, NULL);
    put(&c, IPPROTO_IP, IP_RECVERR, &e, 8, 0); /* shorter than sock_extended_err */
    r = volley__cmsg_parse_err(c.b, c.len, &se);
    T_CHECK(r == -EINVAL, "IP_RECVERR with 8 bytes: parse_err = %d, want -EINVAL", r);
    c.len = 0;
    put(&c, IPPROTO_IPV6, IPV6_RECVERR, &e, 4, 0);
    r = volley__cmsg_parse_err(c.b, c.len, &se);
    T_CHECK(r == -EINVAL, "IPV6_RECVERR with 4 bytes: parse_err = %d, want -EINVAL", r);
    c.len = 0;
    put(&c, IPPROTO_IP, IP_RECVERR, &e, sizeof e.ee + sizeof e.off.sin, 200);
    r = volley__cmsg_parse_err(c.b, c.len, &se);
    T_CHECK(r == -EINVAL, "IP_RECVERR running past len: parse_err = %d, want -EINVAL", r);
    c.len = 0;
    put_raw(&c, IPPROTO_IP, IP_RECVERR, 0);
    memset(c.b + c.len, 0, 64);
    c.len += 64;
    r = volley__cmsg_parse_err(c.b, c.len, &se);
    T_CHECK(r == -EINVAL, "cmsg_len 0: parse_err = %d, want -EINVAL", r);
    return 0;
}

/* ---- build ---- */

enum { K_PKT4 = 1, K_TOS = 2, K_PKT6 = 4, K_TCLASS = 8, K_SEG = 16 };

struct bcase {
    const char *name;
    int fam;
    const char *peer, *local;
    uint32_t ifindex;
    uint8_t ecn;
    uint16_t gso;
    unsigned want; /* K_* present */
};

static const struct bcase bcases[] = {
    {"v4 nothing", AF_INET, "10.0.0.9:443", NULL, 0, 0, 0, 0},
    {"v4 connected nothing", AF_INET, NULL, NULL, 0, 0, 0, 0},
    {"v4 local", AF_INET, "10.0.0.9:443", "10.0.0.1:0", 0, 0, 0, K_PKT4},
    {"v4 local with port", AF_INET, "10.0.0.9:443", "10.0.0.1:999", 0, 0, 0, K_PKT4},
    {"v4 ifindex", AF_INET, "10.0.0.9:443", NULL, 3, 0, 0, K_PKT4},
    {"v4 ecn", AF_INET, "10.0.0.9:443", NULL, 0, 2, 0, K_TOS},
    {"v4 connected ecn", AF_INET, NULL, NULL, 0, 1, 0, K_TOS},
    {"v4 gso", AF_INET, "10.0.0.9:443", NULL, 0, 0, 1200, K_SEG},
    {"v4 all", AF_INET, "10.0.0.9:443", "10.0.0.1:0", 3, 3, 1400, K_PKT4 | K_TOS | K_SEG},
    {"v6 nothing", AF_INET6, "[2001:db8::9]:443", NULL, 0, 0, 0, 0},
    {"v6 local", AF_INET6, "[2001:db8::9]:443", "[2001:db8::1]:0", 0, 0, 0, K_PKT6},
    {"v6 ifindex", AF_INET6, "[2001:db8::9]:443", NULL, 4, 0, 0, K_PKT6},
    {"v6 ecn", AF_INET6, "[2001:db8::9]:443", NULL, 0, 3, 0, K_TCLASS},
    {"v6 gso", AF_INET6, "[2001:db8::9]:443", NULL, 0, 0, 65000, K_SEG},
    {"v6 all", AF_INET6, "[2001:db8::9]:443", "[2001:db8::1]:0", 2, 1, 1200,
     K_PKT6 | K_TCLASS | K_SEG},
    {"v6 sock, v4 peer, nothing", AF_INET6, "10.0.0.9:443", NULL, 0, 0, 0, 0},
    {"v6 sock, v4 peer, local", AF_INET6, "10.0.0.9:443", "10.0.0.1:0", 0, 0, 0, K_PKT4},
    {"v6 sock, v4 peer, ecn", AF_INET6, "10.0.0.9:443", NULL, 0, 2, 0, K_TOS},
    {"v6 sock, v4 peer, all", AF_INET6, "10.0.0.9:443", "10.0.0.1:0", 5, 2, 1000,
     K_PKT4 | K_TOS | K_SEG},
    /* written as v4-mapped IPv6: still leaves through IPv4 */
    {"v6 sock, mapped peer, ecn", AF_INET6, "[::ffff:10.0.0.9]:443", NULL, 0, 2, 0,
     K_TOS},
    {"v6 sock, mapped peer, mapped local", AF_INET6, "[::ffff:10.0.0.9]:443",
     "[::ffff:10.0.0.1]:0", 0, 1, 0, K_PKT4 | K_TOS},
};

static size_t want_bytes(unsigned k)
{
    size_t n = 0;
    if (k & K_PKT4)
        n += CMSG_SPACE(sizeof(struct in_pktinfo));
    if (k & K_TOS)
        n += CMSG_SPACE(sizeof(int));
    if (k & K_PKT6)
        n += CMSG_SPACE(sizeof(struct in6_pktinfo));
    if (k & K_TCLASS)
        n += CMSG_SPACE(sizeof(int));
    if (k & K_SEG)
        n += CMSG_SPACE(sizeof(uint16_t));
    return n;
}

static struct volley_dgram bdgram(const struct bcase *bc)
{
    struct volley_dgram d;
    memset(&d, 0, sizeof d);
    d.peer = t_addr(bc->peer);
    d.local = t_addr(bc->local);
    d.ifindex = bc->ifindex;
    d.ecn = bc->ecn;
    d.len = 100;
    return d;
}

/* h (IP_TOS or IPV6_TCLASS, named what) is an int holding bc's ECN. */
static void check_ecn(const struct bcase *bc, struct cmsghdr *h, const char *what)
{
    int v;
    T_CHECK(h->cmsg_len == CMSG_LEN(sizeof v), "%s: %s cmsg_len %zu", bc->name, what,
            (size_t)h->cmsg_len);
    memcpy(&v, CMSG_DATA(h), sizeof v);
    T_CHECK(v == bc->ecn, "%s: %s %d, want %u", bc->name, what, v, bc->ecn);
}

/* Walk what build wrote and compare with the case. */
static void check_built(const struct bcase *bc, const uint8_t *buf, size_t len)
{
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_control = (void *)buf;
    mh.msg_controllen = len;
    unsigned seen = 0;
    struct volley_addr local = t_addr(bc->local);
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
        const uint8_t *data = CMSG_DATA(h);
        unsigned k = 0;
        if (h->cmsg_level == IPPROTO_IP && h->cmsg_type == IP_PKTINFO) {
            k = K_PKT4;
            struct in_pktinfo p;
            T_CHECK(h->cmsg_len == CMSG_LEN(sizeof p), "%s: IP_PKTINFO cmsg_len %zu",
                    bc->name, (size_t)h->cmsg_len);
            memcpy(&p, data, sizeof p);
            uint32_t want = local.sa.sa_family == AF_INET ? local.sin.sin_addr.s_addr : 0;
            if (local.sa.sa_family == AF_INET6) /* v4-mapped: its last four bytes */
                memcpy(&want, local.sin6.sin6_addr.s6_addr + 12, 4);
            T_CHECK(p.ipi_spec_dst.s_addr == want, "%s: ipi_spec_dst %08x, want %08x",
                    bc->name, ntohl(p.ipi_spec_dst.s_addr), ntohl(want));
            T_CHECK((uint32_t)p.ipi_ifindex == bc->ifindex, "%s: ipi_ifindex %d, want %u",
                    bc->name, p.ipi_ifindex, bc->ifindex);
        } else if (h->cmsg_level == IPPROTO_IP && h->cmsg_type == IP_TOS) {
            k = K_TOS;
            check_ecn(bc, h, "IP_TOS");
        } else if (h->cmsg_level == IPPROTO_IPV6 && h->cmsg_type == IPV6_PKTINFO) {
            k = K_PKT6;
            struct in6_pktinfo p;
            T_CHECK(h->cmsg_len == CMSG_LEN(sizeof p), "%s: IPV6_PKTINFO cmsg_len %zu",
                    bc->name, (size_t)h->cmsg_len);
            memcpy(&p, data, sizeof p);
            struct in6_addr want = IN6ADDR_ANY_INIT;
            if (local.sa.sa_family == AF_INET6)
                want = local.sin6.sin6_addr;
            T_CHECK(!memcmp(&p.ipi6_addr, &want, sizeof want), "%s: ipi6_addr wrong",
                    bc->name);
            T_CHECK(p.ipi6_ifindex == bc->ifindex, "%s: ipi6_ifindex %u, want %u",
                    bc->name, p.ipi6_ifindex, bc->ifindex);
        } else if (h->cmsg_level == IPPROTO_IPV6 && h->cmsg_type == IPV6_TCLASS) {
            k = K_TCLASS;
            check_ecn(bc, h, "IPV6_TCLASS");
        } else if (h->cmsg_level == SOL_UDP && h->cmsg_type == UDP_SEGMENT) {
            k = K_SEG;
            uint16_t v;
            T_CHECK(h->cmsg_len == CMSG_LEN(sizeof v), "%s: UDP_SEGMENT cmsg_len %zu",
                    bc->name, (size_t)h->cmsg_len);
            memcpy(&v, data, sizeof v);
            T_CHECK(v == bc->gso, "%s: UDP_SEGMENT %u, want %u", bc->name, v, bc->gso);
        } else {
            T_CHECK(0, "%s: unexpected cmsg level %d type %d", bc->name, h->cmsg_level,
                    h->cmsg_type);
            continue;
        }
        T_CHECK(!(seen & k), "%s: cmsg kind %u written twice", bc->name, k);
        seen |= k;
    }
    T_CHECK(seen == bc->want, "%s: wrote kinds 0x%x, want 0x%x", bc->name, seen,
            bc->want);
}

static int build(void)
{
    for (size_t i = 0; i < sizeof bcases / sizeof bcases[0]; i++) {
        const struct bcase *bc = &bcases[i];
        struct volley_dgram d = bdgram(bc);
        size_t want = want_bytes(bc->want);
        struct cbuf c;

        memset(c.b, 0xee, sizeof c.b);
        int r = volley__cmsg_build(c.b, BUF_CAP, bc->fam, &d, bc->gso);
        T_CHECK(r == (int)want, "%s: build = %d, want %zu", bc->name, r, want);
        if (r > 0)
            check_built(bc, c.b, (size_t)r);
        T_CHECK(want <= VOLLEY__TX_CTRL, "%s: needs %zu > VOLLEY__TX_CTRL", bc->name,
                want);

        /* Exactly enough room. */
        memset(c.b, 0xee, sizeof c.b);
        r = volley__cmsg_build(c.b, want, bc->fam, &d, bc->gso);
        T_CHECK(r == (int)want, "%s: build(cap %zu) = %d", bc->name, want, r);
        T_CHECK(c.b[want] == 0xee, "%s: build(cap %zu) wrote past cap", bc->name, want);

        /* One byte short, and far too short: -ENOSPC, nothing past cap. */
        if (want > 0) {
            const size_t caps[] = {want - 1, sizeof(struct cmsghdr), 0};
            for (size_t j = 0; j < 3; j++) {
                memset(c.b, 0xee, sizeof c.b);
                r = volley__cmsg_build(c.b, caps[j], bc->fam, &d, bc->gso);
                T_CHECK(r == -ENOSPC, "%s: build(cap %zu) = %d, want -ENOSPC", bc->name,
                        caps[j], r);
                bool clean = true;
                for (size_t k = caps[j]; k < BUF_CAP; k++)
                    clean &= c.b[k] == 0xee;
                T_CHECK(clean, "%s: build(cap %zu) wrote past cap", bc->name, caps[j]);
            }
        }
    }
    return 0;
}

/* Send and receive forms that mean the same thing round-trip. */
static int round_trip(void)
{
    struct volley_dgram d;
    memset(&d, 0, sizeof d);
    d.peer = t_addr("[2001:db8::9]:443");
    d.local = t_addr("[2001:db8::1]:0");
    d.ifindex = 2;
    for (uint8_t ecn = 0; ecn < 4; ecn++) {
        d.ecn = ecn;
        struct cbuf c;
        int r = volley__cmsg_build(c.b, BUF_CAP, AF_INET6, &d, 1200);
        T_CHECK(r > 0, "round trip v6 ecn %u: build = %d", ecn, r);
        if (r <= 0)
            continue;
        struct volley__rxmeta m;
        init_meta(&m);
        r = volley__cmsg_parse(c.b, (size_t)r, &m);
        T_CHECK(r >= 0, "round trip v6 ecn %u: parse = %d", ecn, r);
        T_CHECK(m.ecn == ecn, "round trip v6: ecn %u, want %u", m.ecn, ecn);
        T_CHECK(t_same_ip(&m.local, &d.local) && m.ifindex == 2,
                "round trip v6: local %s ifindex %u", t_fmt(&m.local), m.ifindex);
        T_CHECK(m.gro_segment == 0, "round trip v6: UDP_SEGMENT read as UDP_GRO (%u)",
                m.gro_segment);
    }

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* IP_TOS is an int on send and a byte on receive: the low byte comes
     * first only on little-endian machines. */
    memset(&d, 0, sizeof d);
    d.peer = t_addr("10.0.0.9:443");
    for (uint8_t ecn = 1; ecn < 4; ecn++) {
        d.ecn = ecn;
        struct cbuf c;
        int r = volley__cmsg_build(c.b, BUF_CAP, AF_INET, &d, 0);
        struct volley__rxmeta m;
        init_meta(&m);
        int p = r > 0 ? volley__cmsg_parse(c.b, (size_t)r, &m) : -1;
        T_CHECK(r > 0 && p >= 0 && m.ecn == ecn,
                "round trip v4 ecn %u: build %d parse %d ecn %u", ecn, r, p, m.ecn);
    }
#endif
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(parse_each), T_CASE(parse_all), T_CASE(parse_malformed),
        T_CASE(parse_err),  T_CASE(build),     T_CASE(round_trip),
    };
    struct t_run how = {.total_s = 30};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
