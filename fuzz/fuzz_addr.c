/* SPDX-License-Identifier: MIT */
/* volley_addr_parse on arbitrary text: it either refuses with -EINVAL or
 * yields an IPv4/IPv6 address whose formatted text parses back to the same
 * address and formats identically. The input is also read as a raw
 * struct volley_addr and as a sockaddr of the input's length. */
#define FUZZ_NAME "fuzz_addr"
#include "fuzz.h"
#include "base/base.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* format(a) parses back to an equal address and is a fixed point. */
static void round_trip(const struct volley_addr *a)
{
    char buf[64], again[64];
    int n = volley_addr_format(a, buf, sizeof buf);
    REQUIRE(n > 0 && n < (int)sizeof buf && (size_t)n == strlen(buf));
    struct volley_addr b;
    REQUIRE(volley_addr_parse(&b, buf) == 0);
    REQUIRE(volley_addr_equal(a, &b) == 1);
    REQUIRE(volley_addr_format(&b, again, sizeof again) == n);
    REQUIRE(strcmp(buf, again) == 0);
    REQUIRE(volley_addr_port(&b) == volley_addr_port(a));

    /* Every buffer too small says so and writes nothing past its size. */
    char small[64];
    for (int k = 0; k <= n; k++) {
        memset(small, 'Z', sizeof small);
        REQUIRE(volley_addr_format(a, small, (size_t)k) == -ENOSPC);
        REQUIRE(k == (int)sizeof small || small[k] == 'Z');
    }

    /* Through a sockaddr of either socket family and back. */
    static const int fams[] = {AF_INET, AF_INET6};
    for (int f = 0; f < 2; f++) {
        struct sockaddr_in6 sa;
        int len = volley__addr_to_sockaddr(a, fams[f], &sa);
        if (a->sa.sa_family == AF_INET6 && fams[f] == AF_INET) {
            REQUIRE(len == -EAFNOSUPPORT);
            continue;
        }
        REQUIRE(len > 0 && (size_t)len <= sizeof sa);
        struct volley_addr c;
        volley__addr_from_sockaddr(&c, (struct sockaddr *)&sa, (socklen_t)len);
        /* v4-mapped IPv6 comes back as AF_INET by design */
        if (a->sa.sa_family == AF_INET6 && volley__addr_is_v4mapped(&a->sin6.sin6_addr)) {
            REQUIRE(c.sa.sa_family == AF_INET);
            REQUIRE(c.sin.sin_port == a->sin6.sin6_port);
        } else {
            REQUIRE(volley_addr_equal(a, &c) == 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;

    /* As text. */
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    struct volley_addr a;
    int r = volley_addr_parse(&a, s);
    REQUIRE(r == 0 || r == -EINVAL);
    if (r == 0) {
        REQUIRE(a.sa.sa_family == AF_INET || a.sa.sa_family == AF_INET6);
        round_trip(&a);
    }
    free(s);

    /* As a raw address of any family. */
    if (size >= sizeof a) {
        memcpy(&a, data, sizeof a);
        char buf[64];
        memset(buf, 'Z', sizeof buf);
        int n = volley_addr_format(&a, buf, sizeof buf);
        if (n >= 0)
            REQUIRE(n < (int)sizeof buf && (size_t)n == strlen(buf));
        if (a.sa.sa_family == AF_INET || a.sa.sa_family == AF_INET6)
            round_trip(&a);
        (void)volley_addr_len(&a);
        (void)volley_addr_port(&a);
    }

    /* As a sockaddr of exactly the input's length (family always present). */
    if (size >= sizeof(sa_family_t)) {
        void *sa = malloc(size);
        if (!sa)
            return 0;
        memcpy(sa, data, size);
        struct volley_addr out;
        volley__addr_from_sockaddr(&out, sa, (socklen_t)size);
        REQUIRE(out.sa.sa_family == AF_UNSPEC || out.sa.sa_family == AF_INET ||
                out.sa.sa_family == AF_INET6);
        if (out.sa.sa_family == AF_INET6)
            REQUIRE(!volley__addr_is_v4mapped(&out.sin6.sin6_addr));
        free(sa);
    }
    return 0;
}
