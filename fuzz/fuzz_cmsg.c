/* SPDX-License-Identifier: MIT */
/* The input is a received control buffer: volley__cmsg_parse and
 * volley__cmsg_parse_err must answer from it without reading a byte past
 * its length (the copy is exactly that long, so ASan sees any overread).
 * The first bytes also describe a send descriptor for volley__cmsg_build,
 * whose output must be well-formed and stay within the capacity given. */
#define FUZZ_NAME "fuzz_cmsg"
#include "fuzz.h"
#include "dgram/dgram.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool family_ok(const struct volley_addr *a)
{
    int f = a->sa.sa_family;
    return f == AF_UNSPEC || f == AF_INET || f == AF_INET6;
}

static void parse(const uint8_t *data, size_t size)
{
    /* malloc aligns for any type, so cmsghdr alignment holds. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return;
    memcpy(buf, data, size);

    struct volley__rxmeta m;
    memset(&m, 0xa5, sizeof m);
    int r = volley__cmsg_parse(buf, size, &m);
    REQUIRE(r == 0 || r == -EINVAL);
    REQUIRE(m.ecn <= 3);
    REQUIRE(family_ok(&m.local));
    if (m.local.sa.sa_family == AF_INET6)
        REQUIRE(!volley__addr_is_v4mapped(&m.local.sin6.sin6_addr));

    struct volley_sockerr e;
    memset(&e, 0xa5, sizeof e);
    r = volley__cmsg_parse_err(buf, size, &e);
    REQUIRE(r == 0 || r == -ENOENT || r == -EINVAL);
    if (r == 0) {
        REQUIRE(e.error < 0);
        REQUIRE(family_ok(&e.offender));
    }
    free(buf);
}

/* Bytes to a send descriptor: family, local, ifindex, ecn, segment. */
static void build(const uint8_t *p, size_t size)
{
    if (size < 24)
        return;
    struct volley_dgram d;
    memset(&d, 0, sizeof d);
    int fam = p[0] & 1 ? AF_INET6 : AF_INET;
    unsigned kind = p[1] % 4; /* peer: none, v4, v6, v4-mapped v6 */
    if (kind == 1) {
        d.peer.sin.sin_family = AF_INET;
        memcpy(&d.peer.sin.sin_addr, p + 4, 4);
    } else if (kind >= 2) {
        d.peer.sin6.sin6_family = AF_INET6;
        memcpy(&d.peer.sin6.sin6_addr, p + 4, 16);
        if (kind == 3) {
            memset(d.peer.sin6.sin6_addr.s6_addr, 0, 10);
            d.peer.sin6.sin6_addr.s6_addr[10] = 0xff;
            d.peer.sin6.sin6_addr.s6_addr[11] = 0xff;
        }
    }
    unsigned lk = p[2] % 3;
    if (lk == 1) {
        d.local.sin.sin_family = AF_INET;
        memcpy(&d.local.sin.sin_addr, p + 8, 4);
    } else if (lk == 2) {
        d.local.sin6.sin6_family = AF_INET6;
        memcpy(&d.local.sin6.sin6_addr, p + 8, 16);
    }
    d.ifindex = p[3] & 0x80 ? p[3] : 0;
    d.ecn = p[0] >> 1 & 3;
    uint16_t seg = (uint16_t)(p[22] << 8 | p[23]);
    if (p[0] & 8)
        seg = 0;
    size_t cap = p[1] >> 2 > 40 ? VOLLEY__TX_CTRL : (size_t)(p[1] >> 2) * 3;

    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf)
        return;
    int r = volley__cmsg_build(buf, cap, fam, &d, seg);
    REQUIRE(r == -ENOSPC || (r >= 0 && (size_t)r <= cap));
    if (cap == VOLLEY__TX_CTRL)
        REQUIRE(r >= 0); /* the per-message space is always enough */
    if (r > 0) {
        /* A well-formed chain of messages covering exactly r bytes. */
        size_t off = 0;
        while (off < (size_t)r) {
            struct cmsghdr h;
            REQUIRE((size_t)r - off >= sizeof h);
            memcpy(&h, buf + off, sizeof h);
            REQUIRE(h.cmsg_len >= CMSG_LEN(0) && h.cmsg_len <= (size_t)r - off);
            off += CMSG_ALIGN(h.cmsg_len);
        }
        REQUIRE(off == (size_t)r);
        struct volley__rxmeta m;
        REQUIRE(volley__cmsg_parse(buf, (size_t)r, &m) == 0);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    parse(data, size);
    build(data, size);
    return 0;
}
