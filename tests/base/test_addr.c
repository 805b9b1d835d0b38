/* SPDX-License-Identifier: MIT */
/* Address helpers: parse, format, equal, port/len, and the internal
 * sockaddr conversions (v4-mapped IPv6 in both directions). Every row of
 * every table is checked; a failing row does not stop the others. */
#include "base/base.h"
#include "t.h"

#include <arpa/inet.h>
#include <sys/un.h>

/* Inputs format(parse(x)) must reproduce byte for byte. */
static const struct {
    const char *s;
    int family;
    uint16_t port;
} canonical[] = {
    {"1.2.3.4:5", AF_INET, 5},
    {"0.0.0.0:0", AF_INET, 0},
    {"127.0.0.1:65535", AF_INET, 65535},
    {"255.255.255.255:443", AF_INET, 443},
    {"[::1]:5", AF_INET6, 5},
    {"[::]:0", AF_INET6, 0},
    {"[2001:db8::1]:65535", AF_INET6, 65535},
    {"[2001:db8:1:2:3:4:5:6]:4433", AF_INET6, 4433},
    {"[fe80::1%2]:5", AF_INET6, 5},
};

/* Everything here is -EINVAL. */
static const char *const rejected[] = {
    "",
    ":",
    ":5",
    "1.2.3.4",                      /* no port */
    "1.2.3.4:",                     /* empty port */
    "[::1]",                        /* no port */
    "[::1]:",                       /* empty port */
    "::1:5",                        /* IPv6 without brackets */
    "::1",                          /* ditto, no port */
    "1.2.3.4:65536",                /* port too large */
    "1.2.3.4:99999",                /* ditto */
    "1.2.3.4:4294967301",           /* wraps to 5 in 32 bits */
    "1.2.3.4:18446744073709551621", /* wraps to 5 in 64 bits */
    "[::1]:65536",
    "1.2.3.4:-1",   /* negative */
    "1.2.3.4:+5",   /* sign is not a digit */
    "1.2.3.4: 5",   /* leading space */
    "1.2.3.4:5 ",   /* trailing space */
    "1.2.3.4:0x10", /* not decimal */
    "1.2.3.4:http", /* service name */
    "1.2.3.4:5x",   /* trailing junk */
    "1.2.3.4:5:6",  /* trailing junk */
    "[::1]:5x",
    "[::1]:5]",
    "[::1]x:5",    /* junk between bracket and colon */
    "localhost:5", /* hostnames are not looked up */
    "example.com:80",
    "[localhost]:5",
    "[1.2.3.4]:5", /* IPv4 inside brackets */
    "[::1:5",      /* unbalanced brackets */
    "::1]:5",
    "[]:5",
    "[[::1]]:5",
    "256.1.1.1:5",        /* octet out of range */
    "1.2.3:5",            /* too few octets */
    "1.2.3.4.5:5",        /* too many */
    " 1.2.3.4:5",         /* leading space */
    "[::g]:5",            /* bad hex */
    "[2001:db8::1::2]:5", /* two :: */
    "[fe80::1%]:5",       /* empty scope */
};

static int parse_ok(void)
{
    for (size_t i = 0; i < sizeof canonical / sizeof canonical[0]; i++) {
        struct volley_addr a;
        memset(&a, 0xa5, sizeof a);
        int r = volley_addr_parse(&a, canonical[i].s);
        T_CHECK(r == 0, "parse(\"%s\") = %d, want 0", canonical[i].s, r);
        if (r)
            continue;
        T_CHECK(a.sa.sa_family == canonical[i].family,
                "parse(\"%s\"): family %d, want %d", canonical[i].s, a.sa.sa_family,
                canonical[i].family);
        T_CHECK(volley_addr_port(&a) == canonical[i].port, "port(\"%s\") = %u, want %u",
                canonical[i].s, volley_addr_port(&a), canonical[i].port);
        socklen_t want = canonical[i].family == AF_INET ? sizeof(struct sockaddr_in)
                                                        : sizeof(struct sockaddr_in6);
        T_CHECK(volley_addr_len(&a) == want, "len(\"%s\") = %u, want %u", canonical[i].s,
                (unsigned)volley_addr_len(&a), (unsigned)want);
    }

    struct volley_addr a;
    /* The port is kept in network byte order inside the sockaddr. */
    T_OK(volley_addr_parse(&a, "10.1.2.3:4660"));
    T_CHECK(a.sin.sin_port == htons(4660), "sin_port not in network order");
    T_CHECK(a.sin.sin_addr.s_addr == htonl(0x0a010203), "sin_addr wrong");

    T_OK(volley_addr_parse(&a, "[2001:db8::7]:4433"));
    struct in6_addr want6;
    inet_pton(AF_INET6, "2001:db8::7", &want6);
    T_CHECK(!memcmp(&a.sin6.sin6_addr, &want6, sizeof want6), "sin6_addr wrong");
    T_CHECK(a.sin6.sin6_port == htons(4433), "sin6_port not in network order");
    T_CHECK(a.sin6.sin6_scope_id == 0, "scope id %u, want 0", a.sin6.sin6_scope_id);

    T_OK(volley_addr_parse(&a, "[fe80::1%2]:5"));
    T_CHECK(a.sin6.sin6_scope_id == 2, "scope id %u, want 2", a.sin6.sin6_scope_id);
    return 0;
}

static int parse_reject(void)
{
    for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
        struct volley_addr a;
        int r = volley_addr_parse(&a, rejected[i]);
        T_CHECK(r == -EINVAL, "parse(\"%s\") = %d, want -EINVAL", rejected[i], r);
    }
    struct volley_addr a;
    T_CHECK(volley_addr_parse(&a, NULL) == -EINVAL, "parse(NULL string) != -EINVAL");
    T_CHECK(volley_addr_parse(NULL, "1.2.3.4:5") == -EINVAL,
            "parse(NULL out) != -EINVAL");

    /* A long string of digits must neither overflow nor be accepted. */
    char big[300];
    memcpy(big, "1.2.3.4:", 8);
    memset(big + 8, '9', sizeof big - 9);
    big[sizeof big - 1] = 0;
    T_CHECK(volley_addr_parse(&a, big) == -EINVAL, "parse(huge port) != -EINVAL");
    memset(big, 'a', sizeof big - 1);
    T_CHECK(volley_addr_parse(&a, big) == -EINVAL, "parse(300 x 'a') != -EINVAL");
    return 0;
}

static int format(void)
{
    for (size_t i = 0; i < sizeof canonical / sizeof canonical[0]; i++) {
        struct volley_addr a;
        if (volley_addr_parse(&a, canonical[i].s))
            continue; /* reported by parse_ok */
        char buf[64];
        int r = volley_addr_format(&a, buf, sizeof buf);
        int want = (int)strlen(canonical[i].s);
        T_CHECK(r == want, "format(\"%s\") = %d, want %d", canonical[i].s, r, want);
        if (r < 0)
            continue;
        T_CHECK(!strcmp(buf, canonical[i].s), "format(parse(\"%s\")) = \"%s\"",
                canonical[i].s, buf);

        /* Exactly enough room (with the NUL) works; one byte less is -ENOSPC and
         * nothing past the given size is touched. */
        char small[80];
        memset(small, 'Z', sizeof small);
        r = volley_addr_format(&a, small, (size_t)want + 1);
        T_CHECK(r == want && !strcmp(small, canonical[i].s),
                "format(\"%s\", size %d) = %d", canonical[i].s, want + 1, r);
        memset(small, 'Z', sizeof small);
        r = volley_addr_format(&a, small, (size_t)want);
        T_CHECK(r == -ENOSPC, "format(\"%s\", size %d) = %d, want -ENOSPC",
                canonical[i].s, want, r);
        T_CHECK(small[want] == 'Z', "format(\"%s\", size %d) wrote past the buffer",
                canonical[i].s, want);
        memset(small, 'Z', sizeof small);
        r = volley_addr_format(&a, small, 1);
        T_CHECK(r == -ENOSPC, "format(\"%s\", size 1) = %d, want -ENOSPC", canonical[i].s,
                r);
        T_CHECK(small[1] == 'Z', "format(\"%s\", size 1) wrote past the buffer",
                canonical[i].s);
    }

    /* AF_UNSPEC is "-". */
    struct volley_addr none;
    memset(&none, 0, sizeof none);
    char buf[64];
    int r = volley_addr_format(&none, buf, sizeof buf);
    T_CHECK(r == 1 && !strcmp(buf, "-"), "format(AF_UNSPEC) = %d \"%s\", want 1 \"-\"", r,
            r >= 0 ? buf : "");
    r = volley_addr_format(&none, buf, 1);
    T_CHECK(r == -ENOSPC, "format(AF_UNSPEC, size 1) = %d, want -ENOSPC", r);

    /* The longest IPv6 form with scope and port fits in 64. */
    struct volley_addr a;
    memset(&a, 0, sizeof a);
    a.sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &a.sin6.sin6_addr);
    a.sin6.sin6_port = htons(65535);
    a.sin6.sin6_scope_id = 4294967295u;
    r = volley_addr_format(&a, buf, sizeof buf);
    T_CHECK(r > 0 && r < 64 && (size_t)r == strlen(buf), "format(longest v6) = %d", r);
    if (r > 0) {
        struct volley_addr b;
        r = volley_addr_parse(&b, buf);
        T_CHECK(r == 0 && volley_addr_equal(&a, &b), "re-parse of \"%s\" = %d", buf, r);
    }

    /* IPv4-mapped IPv6 formats as IPv6 text, and that text parses again. */
    memset(&a, 0, sizeof a);
    a.sin6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:1.2.3.4", &a.sin6.sin6_addr);
    a.sin6.sin6_port = htons(9);
    r = volley_addr_format(&a, buf, sizeof buf);
    T_CHECK(r > 0 && buf[0] == '[', "format(::ffff:1.2.3.4) = %d \"%s\"", r,
            r > 0 ? buf : "");
    if (r > 0) {
        struct volley_addr b;
        T_CHECK(volley_addr_parse(&b, buf) == 0, "re-parse of \"%s\" failed", buf);
    }

    T_CHECK(volley_addr_format(NULL, buf, sizeof buf) == -EINVAL, "format(NULL addr)");
    T_OK(volley_addr_parse(&a, "1.2.3.4:5"));
    T_CHECK(volley_addr_format(&a, NULL, 64) == -EINVAL, "format(NULL buf)");
    return 0;
}

static int equal(void)
{
    static const struct {
        const char *a, *b;
        int eq;
    } rows[] = {
        {"1.2.3.4:5", "1.2.3.4:5", 1},
        {"1.2.3.4:5", "1.2.3.4:6", 0},
        {"1.2.3.4:5", "1.2.3.5:5", 0},
        {"1.2.3.4:0", "1.2.3.4:0", 1},
        {"[::1]:5", "[::1]:5", 1},
        {"[::1]:5", "[::1]:6", 0},
        {"[::1]:5", "[::2]:5", 0},
        {"[fe80::1%2]:5", "[fe80::1%2]:5", 1},
        {"[fe80::1%2]:5", "[fe80::1%3]:5", 0},
        {"[fe80::1%2]:5", "[fe80::1]:5", 0},
        {"0.0.0.0:5", "[::]:5", 0},
        {"127.0.0.1:5", "[::1]:5", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct volley_addr a = t_addr(rows[i].a), b = t_addr(rows[i].b);
        int r1 = volley_addr_equal(&a, &b), r2 = volley_addr_equal(&b, &a);
        T_CHECK(!!r1 == rows[i].eq && !!r2 == rows[i].eq,
                "equal(%s, %s) = %d/%d, want %d", rows[i].a, rows[i].b, r1, r2,
                rows[i].eq);
    }

    /* Only family, IP, port (and scope) count: padding and flowinfo do not. */
    struct volley_addr a = t_addr("1.2.3.4:5"), b = a;
    memset(b.sin.sin_zero, 0x77, sizeof b.sin.sin_zero);
    T_CHECK(volley_addr_equal(&a, &b), "sin_zero bytes changed equality");
    a = t_addr("[2001:db8::1]:5");
    b = a;
    b.sin6.sin6_flowinfo = htonl(0x12345);
    T_CHECK(volley_addr_equal(&a, &b), "sin6_flowinfo changed equality");

    /* No address equals no address (connected sockets send with AF_UNSPEC). */
    struct volley_addr n1, n2;
    memset(&n1, 0, sizeof n1);
    memset(&n2, 0xff, sizeof n2);
    n2.sa.sa_family = AF_UNSPEC;
    T_CHECK(volley_addr_equal(&n1, &n2), "AF_UNSPEC != AF_UNSPEC");
    a = t_addr("0.0.0.0:0");
    T_CHECK(!volley_addr_equal(&n1, &a), "AF_UNSPEC == 0.0.0.0:0");

    /* NULL is never equal to anything (and does not crash). */
    T_CHECK(volley_addr_equal(NULL, &a) <= 0, "equal(NULL, a) > 0");
    T_CHECK(volley_addr_equal(&a, NULL) <= 0, "equal(a, NULL) > 0");
    T_CHECK(volley_addr_port(&n1) == 0, "port(AF_UNSPEC) != 0");
    T_CHECK(volley_addr_len(&n1) == 0, "len(AF_UNSPEC) != 0");
    return 0;
}

static int to_sockaddr(void)
{
    struct sockaddr_in6 out;
    struct volley_addr a = t_addr("1.2.3.4:5");

    /* AF_INET on an AF_INET socket: as is. */
    memset(&out, 0xa5, sizeof out);
    int r = volley__addr_to_sockaddr(&a, AF_INET, &out);
    const struct sockaddr_in *o4 = (const struct sockaddr_in *)&out;
    T_CHECK(r == (int)sizeof(struct sockaddr_in), "to_sockaddr(v4, AF_INET) = %d", r);
    T_CHECK(o4->sin_family == AF_INET && o4->sin_port == htons(5) &&
                o4->sin_addr.s_addr == htonl(0x01020304),
            "to_sockaddr(v4, AF_INET) wrong address");

    /* AF_INET on an AF_INET6 socket: ::ffff:1.2.3.4, port kept. */
    memset(&out, 0xa5, sizeof out);
    r = volley__addr_to_sockaddr(&a, AF_INET6, &out);
    struct in6_addr mapped;
    inet_pton(AF_INET6, "::ffff:1.2.3.4", &mapped);
    T_CHECK(r == (int)sizeof(struct sockaddr_in6), "to_sockaddr(v4, AF_INET6) = %d", r);
    T_CHECK(out.sin6_family == AF_INET6 && out.sin6_port == htons(5) &&
                !memcmp(&out.sin6_addr, &mapped, sizeof mapped),
            "to_sockaddr(v4, AF_INET6) is not ::ffff:1.2.3.4 port 5");
    T_CHECK(out.sin6_flowinfo == 0 && out.sin6_scope_id == 0,
            "to_sockaddr(v4, AF_INET6) left flowinfo/scope garbage (%u/%u)",
            out.sin6_flowinfo, out.sin6_scope_id);
    T_CHECK(volley__addr_is_v4mapped(&out.sin6_addr),
            "is_v4mapped(::ffff:1.2.3.4) false");

    /* AF_INET6 on AF_INET6: as is, scope kept. */
    a = t_addr("[fe80::1%2]:7");
    r = volley__addr_to_sockaddr(&a, AF_INET6, &out);
    T_CHECK(r == (int)sizeof(struct sockaddr_in6) && out.sin6_scope_id == 2 &&
                out.sin6_port == htons(7),
            "to_sockaddr(v6 scoped, AF_INET6) = %d scope %u", r, out.sin6_scope_id);

    /* AF_INET6 into an AF_INET socket: no. */
    a = t_addr("[::1]:5");
    r = volley__addr_to_sockaddr(&a, AF_INET, &out);
    T_CHECK(r == -EAFNOSUPPORT, "to_sockaddr(v6, AF_INET) = %d, want -EAFNOSUPPORT", r);

    /* AF_UNSPEC: nothing to write. */
    memset(&a, 0, sizeof a);
    r = volley__addr_to_sockaddr(&a, AF_INET, &out);
    T_CHECK(r == 0, "to_sockaddr(AF_UNSPEC, AF_INET) = %d, want 0", r);
    r = volley__addr_to_sockaddr(&a, AF_INET6, &out);
    T_CHECK(r == 0, "to_sockaddr(AF_UNSPEC, AF_INET6) = %d, want 0", r);

    struct in6_addr x;
    inet_pton(AF_INET6, "::1", &x);
    T_CHECK(!volley__addr_is_v4mapped(&x), "is_v4mapped(::1)");
    inet_pton(AF_INET6, "::1.2.3.4", &x); /* deprecated v4-compatible, not mapped */
    T_CHECK(!volley__addr_is_v4mapped(&x), "is_v4mapped(::1.2.3.4)");
    inet_pton(AF_INET6, "::fffe:1.2.3.4", &x);
    T_CHECK(!volley__addr_is_v4mapped(&x), "is_v4mapped(::fffe:1.2.3.4)");
    return 0;
}

/* What volley__addr_from_sockaddr makes of sa (len bytes), written over
 * garbage. */
static struct volley_addr from(const void *sa, socklen_t len)
{
    struct volley_addr out;
    memset(&out, 0xa5, sizeof out);
    volley__addr_from_sockaddr(&out, (const struct sockaddr *)sa, len);
    return out;
}

static int from_sockaddr(void)
{
    /* v4-mapped IPv6 comes back as plain AF_INET, port kept. */
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(4433);
    inet_pton(AF_INET6, "::ffff:10.0.0.1", &s6.sin6_addr);
    struct volley_addr out = from(&s6, sizeof s6);
    T_CHECK(out.sa.sa_family == AF_INET, "from_sockaddr(::ffff:10.0.0.1) family %d",
            out.sa.sa_family);
    T_CHECK(t_addr_is(&out, "10.0.0.1:4433"),
            "from_sockaddr(::ffff:10.0.0.1) != 10.0.0.1:4433");

    /* A real IPv6 address stays IPv6, scope kept. */
    inet_pton(AF_INET6, "fe80::5", &s6.sin6_addr);
    s6.sin6_scope_id = 3;
    out = from(&s6, sizeof s6);
    T_CHECK(t_addr_is(&out, "[fe80::5%3]:4433"), "from_sockaddr(fe80::5%%3) changed it");

    /* Plain IPv4. */
    struct sockaddr_in s4;
    memset(&s4, 0, sizeof s4);
    s4.sin_family = AF_INET;
    s4.sin_port = htons(53);
    s4.sin_addr.s_addr = htonl(0x7f000001);
    out = from(&s4, sizeof s4);
    T_CHECK(t_addr_is(&out, "127.0.0.1:53"), "from_sockaddr(127.0.0.1:53) changed it");

    /* AF_UNIX datagrams carry no address. */
    struct sockaddr_un su;
    memset(&su, 0, sizeof su);
    su.sun_family = AF_UNIX;
    out = from(&su, sizeof su);
    T_CHECK(out.sa.sa_family == AF_UNSPEC,
            "from_sockaddr(AF_UNIX) family %d, want AF_UNSPEC", out.sa.sa_family);

    /* Unnamed (length 0): no address. */
    out = from(&s4, 0);
    T_CHECK(out.sa.sa_family == AF_UNSPEC,
            "from_sockaddr(len 0) family %d, want AF_UNSPEC", out.sa.sa_family);

    /* to then from is the identity for both families. */
    const char *round[] = {"9.8.7.6:1", "[2001:db8::2]:2", "[fe80::9%7]:3"};
    for (size_t i = 0; i < sizeof round / sizeof round[0]; i++) {
        struct volley_addr a = t_addr(round[i]);
        static const int fams[] = {AF_INET, AF_INET6};
        for (size_t f = 0; f < 2; f++) {
            int fam = fams[f];
            struct sockaddr_in6 so;
            int len = volley__addr_to_sockaddr(&a, fam, &so);
            if (len <= 0)
                continue;
            out = from(&so, (socklen_t)len);
            T_CHECK(volley_addr_equal(&a, &out), "from(to(%s, fam %d)) differs", round[i],
                    fam);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(parse_ok), T_CASE(parse_reject), T_CASE(format),
        T_CASE(equal),    T_CASE(to_sockaddr),  T_CASE(from_sockaddr),
    };
    struct t_run how = {.total_s = 30};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
