/* SPDX-License-Identifier: MIT */
/* Options at the public boundary: arbitrary struct volley_opts contents
 * and sizes (smaller than, equal to and larger than the struct this build
 * knows, with zero or non-zero tails), with every backend id in and out of
 * range, through volley_open, volley_wrap and volley_pair; then a few
 * sends, receives, waits and stats reads on what opened.
 *
 * Checked: every negative return is one volley.h lists for that function;
 * an open that failed leaves no descriptor behind (and volley_wrap leaves
 * the caller's fd open); a close releases every descriptor; a forced
 * backend is the one used; features stay within what was asked for;
 * counters never go backwards and count exactly what the calls returned;
 * a send on an idle AF_UNIX or pair socket makes progress. The options
 * buffer is exactly opts->size bytes long (at least the size field), so
 * ASan sees any read past it.
 *
 * Input: [0] backend id, [1] how to open (bits 0-2), environment (3-5),
 * NULL options (6), clamp fields into range (7), [2] size mode, [3..4]
 * size parameter, [5] tail byte, [6] variant, then the struct's bytes,
 * then up to eight (op, argument) byte pairs. */
#define FUZZ_NAME "fuzz_opts"
#include "fuzz.h"
#include "dgram/dgram.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The errors volley.h lists for each function. Where it says "X's errors"
 * the list is X's own from its manual page. */
static const int open_errs[] = {EINVAL, E2BIG, ENOTSUP, ENOMEM,
                                /* socket(2) */
                                EACCES, EAFNOSUPPORT, EMFILE, ENFILE, ENOBUFS,
                                EPROTONOSUPPORT,
                                /* bind(2) */
                                EADDRINUSE, EADDRNOTAVAIL,
                                /* setsockopt(2), through volley_set_pacing */
                                EBADF, EFAULT, ENOPROTOOPT, ENOTSOCK};
static const int wrap_errs[] = {EINVAL, E2BIG, EBADF, ENOTSOCK, EPROTOTYPE, EAFNOSUPPORT,
                                ENOTSUP, ENOMEM,
                                /* setsockopt(2), through volley_set_pacing */
                                EFAULT, ENOPROTOOPT};
static const int pair_errs[] = {EINVAL, E2BIG, ENOMEM,
                                /* volley_set_pacing: VOLLEY_PACE_KERNEL on a pair */
                                ENOTSUP,
                                /* eventfd(2) */
                                EMFILE, ENFILE, ENODEV};
static const int send_errs[] = {
    EMSGSIZE, EAFNOSUPPORT, EDESTADDRREQ, EINVAL, ENOBUFS, EPIPE,
    /* the kernel's answer for one datagram */
    EHOSTUNREACH, ENETUNREACH, EPERM, EACCES, ECONNREFUSED, ENOMEM};
static const int recv_errs[] = {EINVAL,
                                /* the kernel's, when nothing was received */
                                ENOMEM, ENOBUFS, ECONNRESET, ENOTCONN};
static const int wait_errs[] = {EINVAL,
                                /* poll(2) */
                                EFAULT, EINTR, ENOMEM};
static const int local_errs[] = {EINVAL, ENOTSUP,
                                 /* getsockname(2) */
                                 EBADF, EFAULT, ENOBUFS, ENOTSOCK};
static const int pacing_errs[] = {EINVAL, ENOTSUP,
                                  /* setsockopt(2) */
                                  EBADF, EFAULT, ENOPROTOOPT, ENOTSOCK};

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    REQUIRE(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static bool fd_open(int fd)
{
    return fd >= 0 && fcntl(fd, F_GETFD) >= 0;
}

enum how {
    HOW_OPEN4,
    HOW_OPEN6,
    HOW_WRAP4,
    HOW_WRAP6,
    HOW_WRAP_UNIX,
    HOW_PAIR,
    HOW_BAD,
    HOW_WRAP4_CONNECTED,
};

/* Environment each input may set for its own calls (then unset). */
static const struct {
    const char *name, *value;
    unsigned disable; /* features it turns off */
} envs[8] = {
    {NULL, NULL, 0},
    {"VOLLEY_DISABLE", "gso,gro", VOLLEY_F_GSO | VOLLEY_F_GRO},
    {"VOLLEY_DISABLE", "uring,mmsg", 0},
    {"VOLLEY_BACKEND", "scalar", 0},
    {"VOLLEY_BACKEND", "uring", 0},
    {"VOLLEY_BACKEND", "bogus", 0},
    {"VOLLEY_DISABLE", "gso,nosuch", 0},
    {"VOLLEY_DISABLE", "timestamp,pktinfo,ecn,rxq_ovfl,recverr",
     VOLLEY_F_TIMESTAMP | VOLLEY_F_PKTINFO | VOLLEY_F_ECN | VOLLEY_F_RXQ_OVFL |
         VOLLEY_F_RECVERR},
};

static uint32_t pick_backend(uint8_t b)
{
    static const uint32_t odd[] = {5,     6,       7,           0xff,
                                   0x100, 0x10003, 0x80000004u, 0xffffffffu};
    return b < 0xf0 ? b % 6 : odd[b & 7];
}

/* Fields pulled into their documented ranges, so that inputs get past
 * validation often; rx_ring_bufs, tx_arena, zc_threshold and pace_burst
 * stay as given. */
static void tame(struct volley_opts *o)
{
    o->enable &= 0x7f;
    o->disable &= 0x7f;
    o->rx_batch %= 1025;
    o->rx_slot_size %= 65537;
    o->rcvbuf &= 0xfffff;
    o->sndbuf &= 0xfffff;
    o->pair_capacity %= 65537;
    o->pair_drop_ppm %= 1000001;
    o->pair_dup_ppm %= 1000001;
    o->pair_reorder_ppm %= 1000001;
    o->pair_delay_us %= 5000;
    if (o->pace_rate_bps >> 63)
        o->pace_rate_bps %= VOLLEY__PACE_MAX_BPS + 1;
    else
        o->pace_rate_bps = 0;
    o->pace_flags &= VOLLEY_PACE_KERNEL;
}

/* Legal options can ask for gigabytes (a 4 GiB send arena, a pair queue of
 * 65536 slots of 64 KiB each way): plain allocations, not what this target
 * checks, and past the fuzzer's memory limit. Keep them to tens of MiB;
 * the variant byte may ask for the raw send arena (at most 1 GiB, within
 * the limit), never for a raw pair queue (up to 4 GiB each way: the
 * fuzzer would stop on it as out of memory). */
static void bound_memory(struct volley_opts *o, bool raw)
{
    if (!raw && o->tx_arena > (64u << 20))
        o->tx_arena %= 64u << 20;
    size_t batch = o->rx_batch ? o->rx_batch : 256;
    size_t slot = o->rx_slot_size ? o->rx_slot_size : 65535;
    size_t cap = o->pair_capacity ? o->pair_capacity : 256;
    if (batch <= VOLLEY_BATCH_MAX && slot <= 65536 && cap <= 65536 &&
        (cap + batch + 1) * slot > (128u << 20)) {
        size_t fit = (128u << 20) / slot;
        o->pair_capacity = (uint32_t)(fit > batch + 2 ? fit - batch - 1 : 1);
    }
}

/* What the calls on one opened socket have done, to check its counters. */
struct ctx {
    volley_sock *s;  /* the socket under test */
    volley_sock *rx; /* where its datagrams are received: s, or the pair's b */
    int raw;         /* AF_UNIX: the socketpair's other end, plain */
    struct volley_addr to;
    bool ip, uring, paced;
    uint64_t taken;    /* datagrams volley_send took on s */
    uint64_t received; /* datagrams volley_recv returned on rx */
    struct volley_stats last_s, last_rx;
    bool have_s, have_rx;
};

static uint8_t payload[256 * 1024];

/* AF_UNIX: take what reached the other end and send a little of each back,
 * so volley_recv has something to receive. */
static void echo_raw(struct ctx *c)
{
    static uint8_t buf[256 * 1024];
    for (int i = 0; i < 32; i++) {
        ssize_t r = recv(c->raw, buf, sizeof buf, MSG_DONTWAIT);
        if (r < 0)
            break;
        (void)!send(c->raw, buf, (size_t)r < 2048 ? (size_t)r : 2048, MSG_DONTWAIT);
    }
}

static void read_stats(struct ctx *c)
{
    struct volley_stats st;
    REQUIRE(volley_get_stats(c->s, &st, sizeof st) == 0);
    if (c->have_s)
        check_monotonic(&c->last_s, &st);
    c->last_s = st;
    c->have_s = true;
    /* A send still in flight on uring counts as taken before the kernel's
     * answer is counted; everything else is counted as it is taken. */
    if (c->uring)
        REQUIRE(st.tx_dgrams <= c->taken);
    else
        REQUIRE(st.tx_dgrams == c->taken);
    if (c->rx != c->s) {
        REQUIRE(volley_get_stats(c->rx, &st, sizeof st) == 0);
        if (c->have_rx)
            check_monotonic(&c->last_rx, &st);
        c->last_rx = st;
        c->have_rx = true;
    }
    REQUIRE(st.rx_dgrams == c->received);
}

static int do_send(struct ctx *c, const struct volley_dgram *d, unsigned n)
{
    int r = volley_send(c->s, d, n);
    CHECK_ERR("volley_send", r, send_errs);
    REQUIRE(r <= (int)n);
    if (r > 0)
        c->taken += (unsigned)r;
    if (c->raw >= 0)
        echo_raw(c);
    return r;
}

/* One datagram of len bytes to the usual destination. On an AF_UNIX or
 * pair socket nothing can be waiting once the other end was drained, so a
 * send that takes nothing twice in a row is stuck. */
static void send_one(struct ctx *c, size_t len, unsigned kind)
{
    struct volley_dgram d;
    memset(&d, 0, sizeof d);
    d.data = payload;
    d.len = len;
    d.peer = c->to;
    if (kind == 1) {
        d.peer.sa.sa_family = AF_UNSPEC;
    } else if (kind == 2 && c->ip) {
        /* the other family's loopback */
        if (c->to.sa.sa_family == AF_INET6)
            REQUIRE(volley_addr_parse(&d.peer, "127.0.0.1:9") == 0);
        else
            REQUIRE(volley_addr_parse(&d.peer, "[::1]:9") == 0);
    } else if (kind >= 3) {
        d.ecn = (uint8_t)kind; /* 3 is the last valid codepoint */
    }
    int r = do_send(c, &d, 1);
    if (d.ecn > 3)
        REQUIRE(r == -EINVAL);
    if (r != 0 || c->paced || c->ip)
        return;
    if (c->rx != c->s) {
        struct volley_dgram rx[64];
        int got = volley_recv(c->rx, rx, 64);
        CHECK_ERR("volley_recv", got, recv_errs);
        if (got > 0)
            c->received += (unsigned)got;
    }
    int w = volley_wait(c->s, VOLLEY_WAIT_SEND, 0);
    CHECK_ERR("volley_wait", w, wait_errs);
    r = do_send(c, &d, 1);
    if (r == 0) {
        fuzz_fail("a %zu-byte datagram on an idle %s socket is never taken", len,
                  volley_backend_name(c->s));
    }
}

static void send_batch(struct ctx *c, unsigned k)
{
    struct volley_dgram d[16];
    memset(d, 0, sizeof d);
    for (unsigned i = 0; i < k; i++) {
        d[i].data = payload + i;
        d[i].len = (i * 37 + k) % 1500;
        d[i].peer = c->to;
    }
    (void)do_send(c, d, k);
}

static void do_recv(struct ctx *c, unsigned n)
{
    struct volley_dgram d[64];
    int r = volley_recv(c->rx, d, n);
    CHECK_ERR("volley_recv", r, recv_errs);
    REQUIRE(r <= (int)n);
    for (int i = 0; i < r; i++) {
        REQUIRE(d[i].data || d[i].len == 0);
        REQUIRE(d[i].len <= 65536);
        REQUIRE(d[i].ecn <= 3);
        REQUIRE(!(d[i].flags &
                  ~(VOLLEY_DGRAM_TRUNC | VOLLEY_DGRAM_TSTAMP | VOLLEY_DGRAM_GRO)));
    }
    if (r > 0)
        c->received += (unsigned)r;
}

static void do_wait(struct ctx *c, uint8_t arg)
{
    unsigned ev = arg & 3;
    if (arg & 0x40)
        ev |= 0x8; /* an unknown bit */
    volley_sock *s = arg & 0x80 ? c->rx : c->s;
    int r = volley_wait(s, ev, 0);
    CHECK_ERR("volley_wait", r, wait_errs);
    if (ev == 0 || ev & ~3u)
        REQUIRE(r == -EINVAL);
    if (r > 0)
        REQUIRE(!(r & ~(int)(ev | VOLLEY_WAIT_ERR)));
}

static void do_stats(struct ctx *c, uint8_t arg)
{
    read_stats(c);
    /* A caller that knows fewer or more counters. */
    _Alignas(8) uint8_t buf[sizeof(struct volley_stats) + 32];
    memset(buf, 0xee, sizeof buf);
    size_t sz = arg & 1 ? sizeof buf : (size_t)arg % (sizeof(struct volley_stats) + 1);
    int r = volley_get_stats(c->s, (struct volley_stats *)(void *)buf, sz);
    if (sz == 0) {
        REQUIRE(r == -EINVAL);
        return;
    }
    REQUIRE(r == 0);
    size_t known = sizeof(struct volley_stats);
    for (size_t i = sz < known ? sz : known; i < sizeof buf; i++)
        REQUIRE(buf[i] == 0xee);
}

static void do_misc(struct ctx *c, uint8_t arg, unsigned allowed)
{
    struct volley_sockerr e[40];
    unsigned n = arg % 40;
    int r = volley_errors(c->s, e, n);
    REQUIRE(n ? r >= 0 && r <= (int)n : r == -EINVAL);
    for (int i = 0; i < r; i++)
        REQUIRE(e[i].error < 0);
    struct volley_addr a;
    r = volley_local_addr(c->s, &a);
    CHECK_ERR("volley_local_addr", r, local_errs);
    REQUIRE(volley_fd(c->s) >= 0);
    REQUIRE((volley_features(c->s) & ~allowed) == 0);
    unsigned g = volley_gso_max_segments(c->s);
    REQUIRE(g == 0 || (volley_features(c->s) & VOLLEY_F_GSO));
    REQUIRE(volley_pacing_delay(c->s, arg * 100u, NULL) >= 0);
}

static void do_pacing(struct ctx *c, uint8_t arg)
{
    static const uint64_t rates[] = {0,
                                     1,
                                     8000,
                                     1000000,
                                     1000000000ull,
                                     VOLLEY__PACE_MAX_BPS,
                                     VOLLEY__PACE_MAX_BPS + 1,
                                     UINT64_MAX};
    uint64_t rate = rates[arg & 7];
    unsigned flags = arg >> 3 & 3;
    uint32_t burst = arg & 0x20 ? 0 : (uint32_t)arg * 64;
    int r = volley_set_pacing(c->s, rate, burst, flags);
    CHECK_ERR("volley_set_pacing", r, pacing_errs);
    if (rate > VOLLEY__PACE_MAX_BPS || flags & ~VOLLEY_PACE_KERNEL)
        REQUIRE(r == -EINVAL);
    if (r == 0)
        c->paced = rate && !(flags & VOLLEY_PACE_KERNEL);
}

static void run_ops(struct ctx *c, const uint8_t *p, size_t n, unsigned allowed)
{
    for (unsigned i = 0; i < 8 && n >= 2; i++, p += 2, n -= 2) {
        uint8_t op = p[0], arg = p[1];
        switch (op % 8) {
        case 0:
            send_one(c, (size_t)arg * 8, op >> 3 & 7);
            break;
        case 1:
            send_batch(c, arg % 16 + 1);
            break;
        case 2:
            send_one(c, ((size_t)arg + 1) * 1024, 0); /* up to 256 KiB */
            break;
        case 3:
            do_recv(c, arg % 64 + 1);
            break;
        case 4:
            do_wait(c, arg);
            break;
        case 5:
            do_stats(c, arg);
            break;
        case 6:
            do_misc(c, arg, allowed);
            break;
        default:
            do_pacing(c, arg);
            break;
        }
    }
    read_stats(c);
}

/* A plain UDP socket bound to loopback, maybe connected to itself. */
static int udp_socket(int fam, bool connect_self)
{
    int fd = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct volley_addr a;
    REQUIRE(volley_addr_parse(&a, fam == AF_INET ? "127.0.0.1:0" : "[::1]:0") == 0);
    socklen_t len = volley_addr_len(&a);
    if (bind(fd, &a.sa, len) < 0 || getsockname(fd, &a.sa, &len) < 0 ||
        (connect_self && connect(fd, &a.sa, len) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Descriptors that are not a SOCK_DGRAM IP or AF_UNIX socket. */
static int bad_fd(uint8_t v, int *own)
{
    int fds[2];
    *own = -1;
    switch (v % 5) {
    case 0:
        return -1 - v; /* negative */
    case 1:
        if (pipe2(fds, O_CLOEXEC) < 0)
            return -1;
        close(fds[1]);
        return *own = fds[0];
    case 2:
        return *own = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    case 3:
        return *own = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    default: {
        /* a descriptor number nothing holds */
        int fd = dup(0);
        if (fd >= 0)
            close(fd);
        return fd;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { HDR = 7, OPS = HDR + sizeof(struct volley_opts) };
    uint8_t h[OPS];
    memset(h, 0, sizeof h);
    memcpy(h, data, size < sizeof h ? size : sizeof h);
    const uint8_t *ops = size > OPS ? data + OPS : NULL;
    size_t nops = size > OPS ? size - OPS : 0;

    struct volley_opts o;
    memcpy(&o, h + HDR, sizeof o);
    /* A loop is a pointer the caller vouches for: none, or a real one
     * (kept across inputs: every socket on it is closed by the end of
     * each). loop_user is never dereferenced and stays as given. */
    static volley_loop *loop;
    o.loop = NULL;
    if (h[6] & 0x40 && (loop || volley_loop_open(&loop, NULL) == 0))
        o.loop = loop;
    o.backend = pick_backend(h[0]);
    unsigned how = h[1] & 7, env = h[1] >> 3 & 7;
    bool null_opts = h[1] & 0x40;
    if (h[1] & 0x80)
        tame(&o);
    bound_memory(&o, h[6] & 0x80);

    /* The options as the caller hands them: exactly size bytes. */
    uint16_t sp = (uint16_t)(h[3] | h[4] << 8);
    size_t osz;
    bool nonzero_tail = false;
    switch (h[2] % 5) {
    case 0:
        osz = sizeof o;
        break;
    case 1:
        osz = sp % (sizeof o + 1);
        break;
    case 2:
        osz = sizeof o + sp % 512;
        break;
    case 3:
        osz = sizeof o + 1 + sp % 512;
        nonzero_tail = true;
        break;
    default:
        osz = sp;
        nonzero_tail = h[5] & 1;
        break;
    }
    o.size = (uint32_t)osz;
    size_t cap = osz > sizeof o.size ? osz : sizeof o.size;
    uint8_t *ob = calloc(1, cap);
    REQUIRE(ob);
    memcpy(ob, &o, cap < sizeof o ? cap : sizeof o);
    if (nonzero_tail && osz > sizeof o)
        ob[sizeof o + h[5] % (osz - sizeof o)] = h[5] | 1;
    const struct volley_opts *op = null_opts ? NULL : (const struct volley_opts *)ob;

    if (envs[env].name)
        setenv(envs[env].name, envs[env].value, 1);

    int base = count_fds();
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.raw = -1;
    int wrapped = -1, other = -1, own = -1, r;
    int before = base;
    switch (how) {
    case HOW_OPEN4:
    case HOW_OPEN6:
        r = volley_open(&c.s, how == HOW_OPEN4 ? "127.0.0.1:0" : "[::1]:0", op);
        CHECK_ERR("volley_open", r, open_errs);
        break;
    case HOW_WRAP4:
    case HOW_WRAP6:
    case HOW_WRAP4_CONNECTED:
        wrapped =
            udp_socket(how == HOW_WRAP6 ? AF_INET6 : AF_INET, how == HOW_WRAP4_CONNECTED);
        if (wrapped < 0)
            goto out;
        before = count_fds();
        r = volley_wrap(&c.s, wrapped, op);
        CHECK_ERR("volley_wrap", r, wrap_errs);
        break;
    case HOW_WRAP_UNIX: {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
            goto out;
        wrapped = sv[0];
        other = c.raw = sv[1];
        REQUIRE(fcntl(c.raw, F_SETFL, O_NONBLOCK) == 0);
        before = count_fds();
        r = volley_wrap(&c.s, wrapped, op);
        CHECK_ERR("volley_wrap", r, wrap_errs);
        break;
    }
    case HOW_PAIR:
        r = volley_pair(&c.s, &c.rx, op);
        CHECK_ERR("volley_pair", r, pair_errs);
        break;
    default: {
        /* Arguments volley must refuse. */
        static const char *const binds[] = {
            NULL,          "",       "127.0.0.1",  "127.0.0.1:65536",
            "localhost:0", "[::1:0", "1.2.3.4.5:0"};
        uint8_t v = h[6];
        if (v & 0x40) {
            int fd = bad_fd(v >> 3, &own);
            before = count_fds();
            r = volley_wrap(&c.s, fd, op);
            CHECK_ERR("volley_wrap", r, wrap_errs);
            REQUIRE(r < 0);
            if (own >= 0)
                REQUIRE(fd_open(own));
        } else if (v & 0x20) {
            r = v & 1 ? volley_pair(NULL, &c.rx, op) : volley_pair(&c.s, NULL, op);
            REQUIRE(r == -EINVAL);
        } else {
            r = v & 0x10 ? volley_open(NULL, "127.0.0.1:0", op)
                         : volley_open(&c.s, binds[v % COUNT(binds)], op);
            CHECK_ERR("volley_open", r, open_errs);
            REQUIRE(r < 0);
        }
        break;
    }
    }

    /* Whatever opened must not have claimed anything more. */
    if (r < 0) {
        REQUIRE(count_fds() == before);
        if (wrapped >= 0)
            REQUIRE(fd_open(wrapped)); /* still the caller's */
        goto out;
    }
    /* What volley takes from the caller: the first size bytes. */
    struct volley_opts eff;
    memset(&eff, 0, sizeof eff);
    if (!null_opts)
        memcpy(&eff, ob, osz < sizeof eff ? osz : sizeof eff);
    if (nonzero_tail && osz > sizeof o && !null_opts) {
        fuzz_fail("options with a non-zero tail were accepted");
    }

    /* The backend asked for is the one used. */
    uint32_t be = eff.backend;
    const char *name = volley_backend_name(c.s);
    if (how == HOW_PAIR) {
        REQUIRE(be == VOLLEY_BACKEND_AUTO || be == VOLLEY_BACKEND_PAIR);
        REQUIRE(!strcmp(name, "pair"));
    } else {
        REQUIRE(be <= VOLLEY_BACKEND_URING && be != VOLLEY_BACKEND_PAIR);
        if (be == VOLLEY_BACKEND_AUTO && envs[env].name &&
            !strcmp(envs[env].name, "VOLLEY_BACKEND")) {
            REQUIRE(strcmp(envs[env].value, "bogus") != 0);
            be = !strcmp(envs[env].value, "scalar") ? VOLLEY_BACKEND_SCALAR
                                                    : VOLLEY_BACKEND_URING;
        }
        static const char *const names[] = {NULL, "scalar", "mmsg", NULL, "uring"};
        /* (AUTO on a uring loop: a uring socket, sharing its ring) */
        if (be == VOLLEY_BACKEND_AUTO)
            REQUIRE(!strcmp(name, "scalar") || !strcmp(name, "mmsg") ||
                    (eff.loop && !strcmp(name, "uring")));
        else
            REQUIRE(!strcmp(name, names[be]));
    }
    c.uring = !strcmp(name, "uring");

    /* Features: at most the defaults plus what was enabled, less what was
     * disabled (by the options or the environment). */
    unsigned allowed =
        (VOLLEY_F_DEFAULT | eff.enable) & ~eff.disable & ~envs[env].disable;
    REQUIRE((volley_features(c.s) & ~allowed) == 0);

    if (!c.rx)
        c.rx = c.s;
    c.ip = how != HOW_PAIR && how != HOW_WRAP_UNIX;
    if (c.ip) {
        REQUIRE(volley_local_addr(c.s, &c.to) == 0);
        if (how == HOW_WRAP4_CONNECTED)
            c.to.sa.sa_family = AF_UNSPEC;
    }
    /* Pacing from the options makes sends take nothing for a while. */
    c.paced = eff.pace_rate_bps && !(eff.pace_flags & VOLLEY_PACE_KERNEL);
    if (ops)
        run_ops(&c, ops, nops, allowed);
    volley_close(c.s);
    if (c.rx != c.s)
        volley_close(c.rx);
    if (wrapped >= 0) {
        REQUIRE(!fd_open(wrapped)); /* volley owned it */
        wrapped = -1;
    }

out:
    if (wrapped >= 0)
        close(wrapped);
    if (other >= 0)
        close(other);
    if (own >= 0)
        close(own);
    REQUIRE(count_fds() == base);
    if (envs[env].name)
        unsetenv(envs[env].name);
    free(ob);
    return 0;
}
