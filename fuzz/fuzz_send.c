/* SPDX-License-Identifier: MIT */
/* volley_send on arrays of 1..64 descriptors built from the input, on every
 * backend: UDP over IPv4 (unconnected) and IPv6 (connected to itself) for
 * scalar, mmsg and uring; a pair; and one end of an AF_UNIX SOCK_DGRAM
 * socketpair wrapped for scalar, mmsg and uring (once more for uring with
 * the smallest send arena). Lengths run from 0 past 4 GiB: payloads longer
 * than the static buffer point into one read-only mapping of 5 GiB that
 * costs nothing until read, so a send that reads all of a length volley
 * must refuse shows up as slow, and one that writes it somewhere as an
 * overflow.
 *
 * Only loopback is ever a destination: IP peers are 127.0.0.1 or ::1 with
 * a port of this process's own (the sender itself, a second socket, a port
 * just released) or port 0, never another program's socket.
 *
 * Checked: the return is a count in 0..n or an error volley.h lists for
 * volley_send; a descriptor the header calls bad is never taken, and one
 * at d[0] fails the call; on AF_UNIX and the pair (nothing is lost there)
 * exactly the datagrams taken arrive, in order, with their lengths and
 * bytes; a send that stopped early takes more once the receiver is
 * drained; counters never go backwards. Sockets are opened once, on first
 * use, and drained after every input. */
#define FUZZ_NAME "fuzz_send"
#include "fuzz.h"
#include "dgram/dgram.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* volley_send's errors as volley.h lists them, and the kernel's answers
 * for one datagram that can come back from loopback or a socketpair. */
static const int send_errs[] = {EMSGSIZE, EAFNOSUPPORT, EDESTADDRREQ, EINVAL, ENOBUFS,
                                EPIPE,
                                /* the kernel's answer for that datagram */
                                EHOSTUNREACH, ENETUNREACH, EPERM, EACCES, ECONNREFUSED,
                                EADDRNOTAVAIL, ENODEV, ENXIO, ENOMEM};

/* Most segments one explicit GSO descriptor may carry, whatever the
 * socket: beyond it a descriptor is always bad. */
#ifdef VOLLEY_GSO_SEGMENTS_MAX
#define SEGMENTS_MAX VOLLEY_GSO_SEGMENTS_MAX
#else
#define SEGMENTS_MAX 128
#endif

#define MAX_DESC   64
#define DESC_BYTES 16
#define SMALL_MAX  (256u * 1024) /* payloads up to this come from a static buffer */
#define BIG_LEN    ((5ull << 30) + 65536)

enum {
    T_SCALAR4,
    T_MMSG4,
    T_URING4,
    T_SCALAR6,
    T_MMSG6,
    T_URING6,
    T_PAIR,
    T_SCALAR_UNIX,
    T_MMSG_UNIX,
    T_URING_UNIX,
    T_URING_UNIX_SMALL, /* the smallest send arena (64 KiB) */
    T_COUNT
};

struct target {
    bool tried, ok;
    volley_sock *s;
    volley_sock *rx; /* pair: the receiving end */
    int raw;         /* AF_UNIX: the socketpair's other end, plain */
    int sink;        /* IP: a second plain socket on loopback */
    int fam;         /* AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC for the pair */
    bool connected, uring;
    size_t arena; /* uring: the send arena, the largest datagram it sends */
    struct volley_addr self, sink_addr;
    uint16_t closed_port; /* network order */
    struct volley_stats st;
};

static struct target targets[T_COUNT];
static uint8_t small[SMALL_MAX];
static const uint8_t *big;
static uint8_t rxbuf[SMALL_MAX];

static int plain_socket(int fam, struct volley_addr *bound)
{
    int fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    REQUIRE(volley_addr_parse(bound, fam == AF_INET ? "127.0.0.1:0" : "[::1]:0") == 0);
    socklen_t len = volley_addr_len(bound);
    REQUIRE(bind(fd, &bound->sa, len) == 0);
    REQUIRE(getsockname(fd, &bound->sa, &len) == 0);
    return fd;
}

static bool open_target(struct target *t, unsigned id)
{
    static const uint32_t backends[] = {VOLLEY_BACKEND_SCALAR, VOLLEY_BACKEND_MMSG,
                                        VOLLEY_BACKEND_URING};
    struct volley_opts o = VOLLEY_OPTS_INIT;
    t->raw = t->sink = -1;
    if (id == T_PAIR) {
        t->fam = AF_UNSPEC;
        t->connected = true;
        return volley_pair(&t->s, &t->rx, &o) == 0;
    }
    if (id >= T_SCALAR_UNIX) {
        o.backend = id == T_URING_UNIX_SMALL ? VOLLEY_BACKEND_URING
                                             : backends[id - T_SCALAR_UNIX];
        if (id == T_URING_UNIX_SMALL)
            o.tx_arena = 65536;
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
        REQUIRE(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
        if (volley_wrap(&t->s, sv[0], &o) < 0) {
            close(sv[0]);
            close(sv[1]);
            return false;
        }
        t->raw = sv[1];
        t->fam = AF_UNIX;
        t->connected = true;
        t->rx = t->s;
        t->uring = o.backend == VOLLEY_BACKEND_URING;
        t->arena = !t->uring ? 0 : o.tx_arena ? o.tx_arena : 4u << 20;
        return true;
    }
    t->fam = id < T_SCALAR6 ? AF_INET : AF_INET6;
    o.backend = backends[id % 3];
    t->uring = o.backend == VOLLEY_BACKEND_URING;
    if (volley_open(&t->s, t->fam == AF_INET ? "127.0.0.1:0" : "[::1]:0", &o) < 0)
        return false;
    REQUIRE(volley_local_addr(t->s, &t->self) == 0);
    if (t->fam == AF_INET6) {
        REQUIRE(volley_connect_addr(t->s, &t->self) == 0);
        t->connected = true;
    }
    t->rx = t->s;
    t->sink = plain_socket(t->fam, &t->sink_addr);
    struct volley_addr gone;
    close(plain_socket(t->fam, &gone));
    t->closed_port = gone.sin.sin_port; /* same place in both families */
    return true;
}

static struct target *get_target(unsigned id)
{
    struct target *t = &targets[id];
    if (!t->tried) {
        t->tried = true;
        t->ok = open_target(t, id);
        if (t->ok)
            REQUIRE(volley_get_stats(t->s, &t->st, sizeof t->st) == 0);
    }
    return t->ok ? t : NULL;
}

/* ---- descriptors from bytes ---- */

static const uint64_t len_table[] = {0,
                                     1,
                                     1472,
                                     65507,
                                     65508,
                                     65527,
                                     65528,
                                     65535,
                                     65536,
                                     100000,
                                     212960,
                                     212961,
                                     SMALL_MAX,
                                     0x7fffffffull,
                                     0x80000000ull,
                                     0xffffffffull,
                                     1ull << 32,
                                     (1ull << 32) + 1,
                                     (1ull << 32) + 100,
                                     (1ull << 32) + 65536,
                                     5ull << 30,
                                     BIG_LEN};

static uint32_t u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* A loopback address (any bytes at all for the pair, which sends nowhere). */
static void make_peer(const struct target *t, struct volley_addr *a, const uint8_t *p)
{
    memset(a, 0, sizeof *a);
    unsigned fam = p[8] & 7, port = p[8] >> 3 & 3, var = p[8] >> 5;
    uint16_t ports[4] = {t->self.sin.sin_port, t->sink_addr.sin.sin_port, t->closed_port,
                         0};
    if (t->fam == AF_UNSPEC) {
        memcpy(a, p + 2, 12);
        memcpy((uint8_t *)a + 12, p + 2, 12);
    }
    switch (fam) {
    case 0:
        a->sa.sa_family = AF_UNSPEC;
        break;
    case 1:
    case 6:
        a->sin.sin_family = AF_INET;
        a->sin.sin_port = ports[port];
        if (t->fam != AF_UNSPEC)
            a->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        break;
    case 2:
    case 7:
        a->sin6.sin6_family = AF_INET6;
        a->sin6.sin6_port = ports[port];
        if (t->fam != AF_UNSPEC) {
            a->sin6.sin6_addr = in6addr_loopback;
            a->sin6.sin6_flowinfo = var & 1 ? htonl(p[14]) : 0;
            a->sin6.sin6_scope_id = var & 2 ? p[15] : 0;
        }
        break;
    case 3:
        a->sin6.sin6_family = AF_INET6;
        a->sin6.sin6_port = ports[port];
        if (t->fam != AF_UNSPEC) {
            memset(&a->sin6.sin6_addr, 0, sizeof a->sin6.sin6_addr);
            a->sin6.sin6_addr.s6_addr[10] = 0xff;
            a->sin6.sin6_addr.s6_addr[11] = 0xff;
            a->sin6.sin6_addr.s6_addr[12] = 127;
            a->sin6.sin6_addr.s6_addr[15] = 1;
        }
        break;
    case 4:
        a->sa.sa_family = AF_UNIX;
        break;
    default:
        a->sa.sa_family = (sa_family_t)(p[14] | p[15] << 8); /* anything */
        break;
    }
}

/* A source address: any IP at all (the destination is loopback, so nothing
 * leaves the machine), or another family. */
static void make_local(struct volley_addr *a, const uint8_t *p)
{
    memset(a, 0, sizeof *a);
    switch (p[9] & 7) {
    case 3:
        a->sin.sin_family = AF_INET;
        a->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        break;
    case 4:
        a->sin.sin_family = AF_INET;
        memcpy(&a->sin.sin_addr, p + 1, 4);
        break;
    case 5:
        a->sin6.sin6_family = AF_INET6;
        a->sin6.sin6_addr = in6addr_loopback;
        break;
    case 6:
        a->sin6.sin6_family = AF_INET6;
        memcpy(&a->sin6.sin6_addr, p, 16);
        break;
    case 7:
        a->sa.sa_family = (sa_family_t)(p[9] << 5 | p[12]);
        break;
    default:
        break;
    }
}

static void make_desc(const struct target *t, struct volley_dgram *d, const uint8_t *p)
{
    memset(d, 0, sizeof *d);
    uint32_t v = u32le(p + 1);
    uint64_t len;
    switch (p[0] >> 6) {
    case 0:
        len = v % 2048;
        break;
    case 1:
        len = v % (SMALL_MAX + 1);
        break;
    case 2:
        len = len_table[v % COUNT(len_table)];
        break;
    default:
        len = (uint64_t)(p[0] & 1) << 32 | v;
        break;
    }
    if (len > BIG_LEN)
        len = BIG_LEN;
    d->len = (size_t)len;
    if (p[13] == 0xff && (len || p[12] == 0x5a))
        d->data = NULL; /* with len > 0 bad: volley must refuse it unread */
    else if (len <= SMALL_MAX - 255)
        d->data = small + p[13];
    else if (len <= SMALL_MAX)
        d->data = small;
    else
        d->data = (void *)big;

    uint16_t raw = (uint16_t)(p[5] | p[6] << 8);
    if (p[7] < 0x80) {
        d->segment = 0;
    } else if (p[7] < 0xc0) {
        d->segment = raw;
    } else if (p[7] < 0xe0) {
        uint64_t seg = len / (1 + p[6] % 130);
        d->segment = (uint16_t)(seg > 65535 ? 65535 : seg ? seg : 1);
    } else {
        d->segment = (uint16_t)(1 + raw % 1500);
    }
    make_peer(t, &d->peer, p);
    make_local(&d->local, p);
    d->ecn = p[10] < 0xc0 ? p[10] & 3 : p[10];
    /* no interface, loopback, or one that does not exist */
    d->ifindex = p[11] < 0xc0 ? 0 : p[11] < 0xe0 ? 1 : 0x100000u + p[11];
    d->flags = p[12];
}

static bool v4_peer(const struct volley_addr *a)
{
    return a->sa.sa_family == AF_INET ||
           (a->sa.sa_family == AF_INET6 && volley__addr_is_v4mapped(&a->sin6.sin6_addr));
}

/* Whether volley.h calls d bad on this socket (a conservative reading:
 * only what the header spells out). */
static bool bad_desc(const struct target *t, const struct volley_dgram *d)
{
    if (d->ecn > 3 || (!d->data && d->len))
        return true;
    int pf = d->peer.sa.sa_family, lf = d->local.sa.sa_family;
    if (pf == AF_UNSPEC && !t->connected)
        return true;
    if (d->segment &&
        (d->segment > d->len || (d->len + d->segment - 1) / d->segment > SEGMENTS_MAX))
        return true;
    if (t->fam == AF_UNIX)
        return pf != AF_UNSPEC || d->len > 0x7fffffff || (t->arena && d->len > t->arena);
    if (t->fam == AF_UNSPEC)
        return false;
    if (pf != AF_UNSPEC && pf != AF_INET && pf != AF_INET6)
        return true;
    if (lf != AF_UNSPEC && lf != AF_INET && lf != AF_INET6)
        return true;
    if (t->fam == AF_INET && (pf == AF_INET6 || lf == AF_INET6))
        return true;
    /* On IPv6 the local address is of the family the datagram leaves by. */
    if (t->fam == AF_INET6 && pf != AF_UNSPEC) {
        if (lf == AF_INET && !v4_peer(&d->peer))
            return true;
        if (lf == AF_INET6 && !volley__addr_is_v4mapped(&d->local.sin6.sin6_addr) &&
            v4_peer(&d->peer))
            return true;
    }
    size_t max = pf == AF_UNSPEC ? (t->fam == AF_INET ? VOLLEY_UDP4_MAX : VOLLEY_UDP6_MAX)
                 : v4_peer(&d->peer) ? VOLLEY_UDP4_MAX
                                     : VOLLEY_UDP6_MAX;
    return d->len > max;
}

/* ---- what arrives ---- */

/* The datagrams descriptors d[0..k) put on the wire, in order. */
struct piece {
    const uint8_t *data;
    size_t len;
    unsigned desc;
};

static unsigned expect(const struct volley_dgram *d, unsigned k, struct piece *out,
                       unsigned cap)
{
    unsigned n = 0;
    for (unsigned i = 0; i < k; i++) {
        size_t seg = d[i].segment ? d[i].segment : d[i].len;
        size_t off = 0;
        do {
            size_t len = d[i].len - off < seg ? d[i].len - off : seg;
            REQUIRE(n < cap);
            const uint8_t *at = d[i].data ? (const uint8_t *)d[i].data + off : NULL;
            out[n++] = (struct piece){at, len, i};
            off += len;
        } while (off < d[i].len);
    }
    return n;
}

static void mismatch(const char *what, unsigned idx, size_t got, const struct piece *p,
                     const struct volley_dgram *d)
{
    fuzz_fail("%s: datagram %u (of descriptor %u: len %zu, segment %u) "
              "arrived as %zu bytes, expected %zu",
              what, idx, p->desc, d[p->desc].len, d[p->desc].segment, got, p->len);
}

/* Take everything waiting at the AF_UNIX other end and compare it with
 * what d[0..k) should have sent. A cut-up descriptor may stop after any of
 * its pieces only if it is the last one taken. */
static void check_unix(struct target *t, const struct volley_dgram *d, unsigned k)
{
    static struct piece want[MAX_DESC * SEGMENTS_MAX + MAX_DESC];
    unsigned nw = expect(d, k, want, COUNT(want));
    unsigned got = 0;
    for (;;) {
        ssize_t r = recv(t->raw, rxbuf, sizeof rxbuf, MSG_DONTWAIT | MSG_TRUNC);
        if (r < 0) {
            REQUIRE(errno == EAGAIN);
            break;
        }
        if (got >= nw) {
            fuzz_fail("AF_UNIX: %u datagrams arrived for %u expected", got + 1, nw);
        }
        const struct piece *p = &want[got];
        if ((size_t)r != p->len)
            mismatch("AF_UNIX", got, (size_t)r, p, d);
        size_t cmp = (size_t)r < sizeof rxbuf ? (size_t)r : sizeof rxbuf;
        if (cmp && memcmp(rxbuf, p->data, cmp) != 0) {
            fuzz_fail("AF_UNIX: datagram %u has other bytes", got);
        }
        got++;
    }
    if (got < nw) {
        /* Only the last descriptor's tail pieces may be missing. */
        unsigned last = want[nw - 1].desc;
        if (!(got > 0 && want[got - 1].desc == last && d[last].segment)) {
            fuzz_fail("AF_UNIX: %u datagrams arrived for %u expected", got, nw);
        }
    }
}

/* The same for the pair, unless its bounded queue dropped some. */
static void check_pair(struct target *t, const struct volley_dgram *d, unsigned k,
                       bool exact)
{
    static struct piece want[MAX_DESC * SEGMENTS_MAX + MAX_DESC];
    unsigned nw = expect(d, k, want, COUNT(want));
    unsigned got = 0;
    struct volley_dgram rx[64];
    for (int calls = 0; calls < 200; calls++) {
        int r = volley_recv(t->rx, rx, COUNT(rx));
        REQUIRE(r >= 0 && r <= (int)COUNT(rx));
        if (r == 0)
            break;
        for (int i = 0; i < r; i++, got++) {
            if (!exact)
                continue;
            REQUIRE(got < nw);
            const struct piece *p = &want[got];
            size_t len = p->len < 65535 ? p->len : 65535;
            if (rx[i].len != len)
                mismatch("pair", got, rx[i].len, p, d);
            REQUIRE(!!(rx[i].flags & VOLLEY_DGRAM_TRUNC) == (p->len > len));
            REQUIRE(len == 0 || memcmp(rx[i].data, p->data, len) == 0);
            REQUIRE(rx[i].ecn == d[p->desc].ecn);
        }
    }
    if (exact)
        REQUIRE(got == nw);
}

/* Empty the IP sockets: whatever arrives must look like a datagram. */
static void drain_ip(struct target *t)
{
    struct volley_dgram rx[64];
    for (int calls = 0; calls < 64; calls++) {
        int r = volley_recv(t->s, rx, COUNT(rx));
        REQUIRE(r >= 0 && r <= (int)COUNT(rx));
        if (r == 0)
            break;
        for (int i = 0; i < r; i++) {
            REQUIRE(rx[i].len <= 65535 && (rx[i].data || !rx[i].len));
            REQUIRE(rx[i].peer.sa.sa_family == AF_INET ||
                    rx[i].peer.sa.sa_family == AF_INET6);
            REQUIRE(rx[i].ecn <= 3);
            REQUIRE(!(rx[i].flags &
                      ~(VOLLEY_DGRAM_TRUNC | VOLLEY_DGRAM_TSTAMP | VOLLEY_DGRAM_GRO)));
        }
    }
    for (int i = 0; i < 4096 && recv(t->sink, rxbuf, sizeof rxbuf, MSG_DONTWAIT) >= 0;
         i++)
        ;
    struct volley_sockerr e[32];
    while (volley_errors(t->s, e, COUNT(e)) > 0)
        ;
}

static void check_stats(struct target *t, unsigned taken, bool exact)
{
    struct volley_stats st;
    REQUIRE(volley_get_stats(t->s, &st, sizeof st) == 0);
    check_monotonic(&t->st, &st);
    /* Every descriptor taken put at least one datagram on the wire (uring
     * may still be finishing one). */
    if (exact)
        REQUIRE(st.tx_dgrams - t->st.tx_dgrams >= taken);
    t->st = st;
}

/* Byte 0: target. Then 16 bytes per descriptor (see make_desc). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!big) {
        void *m = mmap(NULL, BIG_LEN, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        REQUIRE(m != MAP_FAILED);
        big = m;
        for (size_t i = 0; i < sizeof small; i++)
            small[i] = (uint8_t)(i * 7 + (i >> 8));
    }
    if (size < 1)
        return 0;
    struct target *t = get_target(data[0] % T_COUNT);
    if (!t)
        return 0;
    unsigned n = (unsigned)((size - 1) / DESC_BYTES);
    n = n < 1 ? 1 : n > MAX_DESC ? MAX_DESC : n;
    static struct volley_dgram d[MAX_DESC];
    for (unsigned i = 0; i < n; i++) {
        uint8_t p[DESC_BYTES] = {0};
        size_t at = 1 + (size_t)i * DESC_BYTES;
        if (at < size)
            memcpy(p, data + at, size - at < DESC_BYTES ? size - at : DESC_BYTES);
        make_desc(t, &d[i], p);
    }
    unsigned first_bad = n;
    for (unsigned i = 0; i < n && first_bad == n; i++)
        if (bad_desc(t, &d[i]))
            first_bad = i;

    /* Send; where it stops short of a bad descriptor, drain and go on. A
     * second call that takes nothing from an empty socket is stuck. */
    unsigned off = 0;
    for (int round = 0; round < 3 && off < first_bad; round++) {
        uint64_t full_before = t->st.pair_queue_full;
        int r = volley_send(t->s, d + off, n - off);
        CHECK_ERR("volley_send", r, send_errs);
        REQUIRE(r <= (int)(n - off));
        if (r < 0) {
            REQUIRE(off < n);
        } else if (off + (unsigned)r > first_bad) {
            fuzz_fail("descriptor %u was taken but is bad", first_bad);
        }
        unsigned k = r > 0 ? (unsigned)r : 0;
        if (t->uring)
            (void)volley_wait(t->s, VOLLEY_WAIT_SEND, 0); /* reap */
        if (t->fam == AF_UNIX) {
            check_unix(t, d + off, k);
        } else if (t->fam == AF_UNSPEC) {
            struct volley_stats st;
            REQUIRE(volley_get_stats(t->s, &st, sizeof st) == 0);
            check_pair(t, d + off, k, st.pair_queue_full == full_before);
        } else {
            drain_ip(t);
        }
        check_stats(t, k, !t->uring);
        if (r < 0)
            break;
        if (r == 0 && round > 0) {
            fuzz_fail("%s: descriptor %u (len %zu, segment %u) is never taken "
                      "though the socket is idle",
                      volley_backend_name(t->s), off, d[off].len, d[off].segment);
        }
        off += k;
    }
    if (first_bad == 0) {
        /* A bad first descriptor fails the call. */
        int r = volley_send(t->s, d, n);
        CHECK_ERR("volley_send", r, send_errs);
        if (r >= 0) {
            fuzz_fail("%s: descriptor 0 is bad (len %zu, segment %u, ecn %u, "
                      "peer family %d) but volley_send returned %d",
                      volley_backend_name(t->s), d[0].len, d[0].segment, d[0].ecn,
                      d[0].peer.sa.sa_family, r);
        }
    }
    return 0;
}
