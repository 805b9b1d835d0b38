/* SPDX-License-Identifier: MIT */
/* Address parsing, formatting and IPv4-mapped normalisation. Pure: no
 * system calls, no name lookups, fuzzed by fuzz/fuzz_addr.c. */
#include "base.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

bool volley__addr_is_v4mapped(const struct in6_addr *a)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a->s6_addr, prefix, sizeof prefix) == 0;
}

bool volley__addr_is_v4(const struct volley_addr *a)
{
    return a->sa.sa_family == AF_INET ||
           (a->sa.sa_family == AF_INET6 && volley__addr_is_v4mapped(&a->sin6.sin6_addr));
}

/* Parse a decimal port "0".."65535" occupying all of s. */
static int parse_port(const char *s, uint16_t *out)
{
    if (!*s)
        return -EINVAL;
    unsigned v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(*s - '0');
        if (v > 65535)
            return -EINVAL;
    }
    *out = (uint16_t)v;
    return 0;
}

/* Parse "fe80::1%2" (numeric scope only) into sin6. */
static int parse_v6(const char *host, size_t len, struct sockaddr_in6 *sin6)
{
    char buf[INET6_ADDRSTRLEN + 12];
    if (len == 0 || len >= sizeof buf)
        return -EINVAL;
    memcpy(buf, host, len);
    buf[len] = '\0';
    char *pct = strchr(buf, '%');
    if (pct) {
        *pct++ = '\0';
        if (!*pct)
            return -EINVAL;
        unsigned long scope = 0;
        for (const char *p = pct; *p; p++) {
            if (*p < '0' || *p > '9')
                return -EINVAL;
            scope = scope * 10 + (unsigned long)(*p - '0');
            if (scope > UINT32_MAX)
                return -EINVAL;
        }
        sin6->sin6_scope_id = (uint32_t)scope;
    }
    /* inet_pton also accepts "::ffff:1.2.3.4"; a bare dotted quad is not IPv6. */
    if (!strchr(buf, ':') || inet_pton(AF_INET6, buf, &sin6->sin6_addr) != 1)
        return -EINVAL;
    return 0;
}

int volley_addr_parse(struct volley_addr *out, const char *s)
{
    if (!out || !s)
        return -EINVAL;
    struct volley_addr a;
    memset(&a, 0, sizeof a);
    uint16_t port;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || parse_port(end + 2, &port) < 0)
            return -EINVAL;
        if (parse_v6(s + 1, (size_t)(end - s - 1), &a.sin6) < 0)
            return -EINVAL;
        a.sin6.sin6_family = AF_INET6;
        a.sin6.sin6_port = htons(port);
    } else {
        const char *colon = strchr(s, ':');
        char host[INET_ADDRSTRLEN];
        size_t len = colon ? (size_t)(colon - s) : 0;
        if (!colon || len == 0 || len >= sizeof host || parse_port(colon + 1, &port) < 0)
            return -EINVAL;
        memcpy(host, s, len);
        host[len] = '\0';
        if (inet_pton(AF_INET, host, &a.sin.sin_addr) != 1)
            return -EINVAL;
        a.sin.sin_family = AF_INET;
        a.sin.sin_port = htons(port);
    }
    *out = a;
    return 0;
}

int volley_addr_format(const struct volley_addr *a, char *buf, size_t size)
{
    if (!a || !buf)
        return -EINVAL;
    char ip[INET6_ADDRSTRLEN];
    int n;
    switch (a->sa.sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &a->sin.sin_addr, ip, sizeof ip);
        n = snprintf(buf, size, "%s:%u", ip, ntohs(a->sin.sin_port));
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &a->sin6.sin6_addr, ip, sizeof ip);
        if (a->sin6.sin6_scope_id)
            n = snprintf(buf, size, "[%s%%%u]:%u", ip, a->sin6.sin6_scope_id,
                         ntohs(a->sin6.sin6_port));
        else
            n = snprintf(buf, size, "[%s]:%u", ip, ntohs(a->sin6.sin6_port));
        break;
    case AF_UNSPEC:
        n = snprintf(buf, size, "-");
        break;
    default:
        return -EAFNOSUPPORT;
    }
    if (n < 0)
        return -EINVAL;
    return (size_t)n < size ? n : -ENOSPC;
}

int volley_addr_equal(const struct volley_addr *a, const struct volley_addr *b)
{
    if (!a || !b || a->sa.sa_family != b->sa.sa_family)
        return 0;
    switch (a->sa.sa_family) {
    case AF_INET:
        return a->sin.sin_port == b->sin.sin_port &&
               a->sin.sin_addr.s_addr == b->sin.sin_addr.s_addr;
    case AF_INET6:
        return a->sin6.sin6_port == b->sin6.sin6_port &&
               a->sin6.sin6_scope_id == b->sin6.sin6_scope_id &&
               memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr, 16) == 0;
    default:
        return 1; /* two "no address" values */
    }
}

uint16_t volley_addr_port(const struct volley_addr *a)
{
    if (!a)
        return 0;
    if (a->sa.sa_family == AF_INET)
        return ntohs(a->sin.sin_port);
    if (a->sa.sa_family == AF_INET6)
        return ntohs(a->sin6.sin6_port);
    return 0;
}

socklen_t volley_addr_len(const struct volley_addr *a)
{
    if (!a)
        return 0;
    if (a->sa.sa_family == AF_INET)
        return sizeof(struct sockaddr_in);
    if (a->sa.sa_family == AF_INET6)
        return sizeof(struct sockaddr_in6);
    return 0;
}

void volley__addr_from_sockaddr(struct volley_addr *out, const struct sockaddr *sa,
                                socklen_t len)
{
    memset(out, 0, sizeof *out);
    if (!sa || len < sizeof sa->sa_family)
        return;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        memcpy(&out->sin, sa, sizeof out->sin);
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (volley__addr_is_v4mapped(&s6->sin6_addr)) {
            out->sin.sin_family = AF_INET;
            out->sin.sin_port = s6->sin6_port;
            memcpy(&out->sin.sin_addr, s6->sin6_addr.s6_addr + 12, 4);
        } else {
            out->sin6 = *s6;
        }
    }
}

int volley__addr_to_sockaddr(const struct volley_addr *a, int fam,
                             struct sockaddr_in6 *out)
{
    switch (a->sa.sa_family) {
    case AF_UNSPEC:
        return 0;
    case AF_INET:
        if (fam == AF_INET) {
            memcpy(out, &a->sin, sizeof a->sin);
            return sizeof a->sin;
        }
        if (fam != AF_INET6)
            return -EAFNOSUPPORT;
        memset(out, 0, sizeof *out);
        out->sin6_family = AF_INET6;
        out->sin6_port = a->sin.sin_port;
        out->sin6_addr.s6_addr[10] = 0xff;
        out->sin6_addr.s6_addr[11] = 0xff;
        memcpy(out->sin6_addr.s6_addr + 12, &a->sin.sin_addr, 4);
        return sizeof *out;
    case AF_INET6:
        if (fam != AF_INET6)
            return -EAFNOSUPPORT;
        *out = a->sin6;
        return sizeof *out;
    default:
        return -EAFNOSUPPORT;
    }
}
