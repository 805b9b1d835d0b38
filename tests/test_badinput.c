/* SPDX-License-Identifier: MIT */
/* Bad input at the API boundary: every public function with NULL pointers,
 * out-of-range counts, sizes, options, addresses and fds returns the
 * documented negative errno and crashes nothing. Send-side checks run on
 * the scalar and the mmsg backend. Every check runs; a failing one does
 * not stop the others. */
#include "dgram/dgram.h"
#include "t.h"

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static uint8_t big[70000];

static struct volley_dgram dg(const struct volley_addr *peer, size_t len)
{
    struct volley_dgram d;
    memset(&d, 0, sizeof d);
    d.data = big;
    d.len = len;
    if (peer)
        d.peer = *peer;
    return d;
}

static int null_pointers(void)
{
    t_context("NULL");
    volley_sock *s = NULL;
    struct volley_opts o = VOLLEY_OPTS_INIT;
    struct volley_dgram d[2];
    struct volley_addr a;
    struct volley_stats st;
    struct volley_sockerr e;
    struct volley_caps caps;
    char buf[64];
    memset(d, 0, sizeof d);
    memset(&a, 0, sizeof a);

    T_EXPECT(volley_open(NULL, "127.0.0.1:0", &o), -EINVAL);
    T_EXPECT(volley_open(&s, NULL, &o), -EINVAL);
    T_EXPECT(volley_wrap(NULL, 0, &o), -EINVAL);
    volley_sock *b = NULL;
    T_EXPECT(volley_pair(NULL, &b, &o), -EINVAL);
    T_EXPECT(volley_pair(&s, NULL, &o), -EINVAL);
    volley_close(NULL); /* ignored */
    T_EXPECT(volley_connect(NULL, "127.0.0.1:9"), -EINVAL);
    T_EXPECT(volley_connect_addr(NULL, &a), -EINVAL);
    T_EXPECT(volley_send(NULL, d, 1), -EINVAL);
    T_EXPECT(volley_recv(NULL, d, 1), -EINVAL);
    T_EXPECT(volley_fd(NULL), -EINVAL);
    T_EXPECT(volley_wait(NULL, VOLLEY_WAIT_RECV, 0), -EINVAL);
    T_EXPECT(volley_local_addr(NULL, &a), -EINVAL);
    T_EXPECT(volley_get_stats(NULL, &st, sizeof st), -EINVAL);
    T_EXPECT(volley_errors(NULL, &e, 1), -EINVAL);
    T_EXPECT(volley_probe(NULL, sizeof caps), -EINVAL);
    T_EXPECT(volley_probe(&caps, 0), -EINVAL);
    T_EXPECT(volley_addr_parse(NULL, "1.2.3.4:5"), -EINVAL);
    T_EXPECT(volley_addr_parse(&a, NULL), -EINVAL);
    T_EXPECT(volley_addr_format(NULL, buf, sizeof buf), -EINVAL);
    T_EXPECT(volley_addr_format(&a, NULL, 64), -EINVAL);
    /* No errno channel here: these must simply not crash. */
    T_CHECK(volley_addr_equal(NULL, &a) <= 0, "volley_addr_equal(NULL, a) claims equal");
    T_CHECK(volley_addr_equal(&a, NULL) <= 0, "volley_addr_equal(a, NULL) claims equal");
    T_CHECK(volley_addr_equal(NULL, NULL) <= 0,
            "volley_addr_equal(NULL, NULL) claims equal");
    T_EXPECT(volley_addr_port(NULL), 0);
    T_EXPECT(volley_addr_len(NULL), 0);
    (void)volley_backend_name(NULL);
    T_EXPECT(volley_features(NULL), 0);
    T_EXPECT(volley_gso_max_segments(NULL), 0);

    /* A valid socket with NULL arguments. */
    if (volley_open(&s, "127.0.0.1:0", &o) == 0) {
        T_EXPECT(volley_connect(s, NULL), -EINVAL);
        T_EXPECT(volley_connect_addr(s, NULL), -EINVAL);
        T_EXPECT(volley_send(s, NULL, 1), -EINVAL);
        T_EXPECT(volley_recv(s, NULL, 1), -EINVAL);
        T_EXPECT(volley_local_addr(s, NULL), -EINVAL);
        T_EXPECT(volley_get_stats(s, NULL, sizeof st), -EINVAL);
        T_EXPECT(volley_errors(s, NULL, 1), -EINVAL);
        volley_close(s);
    } else {
        T_CHECK(0, "volley_open(127.0.0.1:0) failed");
    }
    return 0;
}

/* One send-side configuration: a kill switch must not change which sends
 * are accepted or how they fail, so every one gets the same checks. */
struct sendcfg {
    char label[32];
    unsigned backend;
    unsigned disable;
};

/* Every kernel backend, and the ones that offload again with GSO off;
 * returns how many (at most 2 * t_nbackends). */
static size_t send_configs(struct sendcfg *out)
{
    size_t n = 0;
    for (size_t i = 0; i < t_nbackends; i++) {
        const struct t_backend *b = &t_backends[i];
        if (!b->kernel)
            continue;
        out[n] = (struct sendcfg){.backend = b->id};
        snprintf(out[n++].label, sizeof out->label, "%s", b->name);
        if (!b->offload)
            continue;
        out[n] = (struct sendcfg){.backend = b->id, .disable = VOLLEY_F_GSO};
        snprintf(out[n++].label, sizeof out->label, "%s no-gso", b->name);
    }
    return n;
}

/* Open a socket with o on bind for what; false (saying why) when its
 * backend or address family is not available here, or it failed. */
static bool open_for(volley_sock **s, const char *bind, const struct volley_opts *o,
                     const char *what)
{
    int r = volley_open(s, bind, o);
    if (t_unavailable(o->backend, r))
        t_skip_part(what, "backend not available here");
    else if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL)
        t_skip_part(what, "address family unavailable");
    else
        T_CHECK(r == 0, "volley_open(%s) = %d (%s)", bind, r, volley_strerror(r));
    return r == 0;
}

/* Everything about one socket of configuration c, bound on bind. */
static void send_recv_one(const struct sendcfg *c, const char *bind)
{
    char name[64];
    snprintf(name, sizeof name, "%s %s", c->label, bind);
    t_context("%s", name);
    struct volley_opts o = t_opts(c->backend);
    /* the protocol's ceilings, fragments allowed (IPv6's is more than
     * loopback's MTU holds: with the don't-fragment control, -EMSGSIZE) */
    o.disable = c->disable | VOLLEY_F_DONTFRAG;
    volley_sock *s, *rx;
    if (!open_for(&s, bind, &o, name))
        return;
    T_OK(volley_open(&rx, bind, &o));
    struct volley_addr to = t_local(rx);
    bool v6 = to.sa.sa_family == AF_INET6;
    size_t max = v6 ? VOLLEY_UDP6_MAX : VOLLEY_UDP4_MAX;

    struct volley_dgram d[VOLLEY_BATCH_MAX + 1];
    for (unsigned i = 0; i < VOLLEY_BATCH_MAX + 1; i++)
        d[i] = dg(&to, 10);

    /* counts */
    T_EXPECT(volley_send(s, d, 0), -EINVAL);
    T_EXPECT(volley_send(s, d, VOLLEY_BATCH_MAX + 1), -EINVAL);
    T_EXPECT(volley_send(s, d, UINT_MAX), -EINVAL);
    T_EXPECT(volley_recv(rx, d, 0), -EINVAL);
    T_EXPECT(volley_recv(rx, d, VOLLEY_BATCH_MAX + 1), -EINVAL);
    T_EXPECT(volley_recv(rx, d, UINT_MAX), -EINVAL);

    /* sizes: the protocol ceiling is fine, one byte more is not */
    struct volley_dgram x = dg(&to, max + 1);
    T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);
    x = dg(&to, max);
    T_EXPECT(volley_send(s, &x, 1), 1);
    if (!v6) {
        x = dg(&to, 65508);
        T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);
        x = dg(&to, 65507);
        T_EXPECT(volley_send(s, &x, 1), 1);
    } else {
        x = dg(&to, 65528);
        T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);
        x = dg(&to, 65527);
        T_EXPECT(volley_send(s, &x, 1), 1);
        /* an IPv4 peer on a dual-stack socket has the IPv4 ceiling */
        struct volley_addr p4;
        T_OK(volley_addr_parse(&p4, "127.0.0.1:9"));
        x = dg(&p4, 65508);
        T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);
    }
    x = dg(&to, SIZE_MAX);
    T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);

    /* fields */
    x = dg(&to, 10);
    x.ecn = 4;
    T_EXPECT(volley_send(s, &x, 1), -EINVAL);
    x.ecn = 255;
    T_EXPECT(volley_send(s, &x, 1), -EINVAL);
    x = dg(&to, 10);
    x.data = NULL;
    T_EXPECT(volley_send(s, &x, 1), -EINVAL);

    /* explicit GSO descriptors: volley's limit, not the kernel's */
    unsigned limit = VOLLEY_GSO_SEGMENTS_MAX;
    x = dg(&to, 1000);
    x.segment = 1001;
    T_EXPECT(volley_send(s, &x, 1), -EINVAL);
    x = dg(&to, (size_t)(limit + 1) * 100);
    x.segment = 100;
    T_EXPECT(volley_send(s, &x, 1), -EINVAL);
    x = dg(&to, (size_t)limit * 100 + 1);
    x.segment = 100;
    T_EXPECT(volley_send(s, &x, 1), -EINVAL);
    x = dg(&to, (size_t)limit * 100);
    x.segment = 100;
    T_EXPECT(volley_send(s, &x, 1), 1);
    x = dg(&to, 1000);
    x.segment = 1000;
    T_EXPECT(volley_send(s, &x, 1), 1);
    x = dg(&to, 66000); /* 55 segments of 1200: within the limit, over the ceiling */
    x.segment = 1200;
    T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);
    x = dg(&to, max + 1);
    x.segment = 1200;
    T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);
    x = dg(&to, 64800); /* 54 segments of 1200 */
    x.segment = 1200;
    T_EXPECT(volley_send(s, &x, 1), 1);
    x = dg(&to, 66000);
    x.segment = 1200;
    x.ecn = 7;
    T_EXPECT(volley_send(s, &x, 1), -EINVAL);

    /* addresses */
    struct volley_addr none;
    memset(&none, 0, sizeof none);
    x = dg(&none, 10);
    T_EXPECT(volley_send(s, &x, 1), -EDESTADDRREQ);
    if (!v6) {
        struct volley_addr p6;
        T_OK(volley_addr_parse(&p6, "[::1]:9"));
        x = dg(&p6, 10);
        T_EXPECT(volley_send(s, &x, 1), -EAFNOSUPPORT);
        x = dg(&to, 10);
        x.local = p6;
        T_EXPECT(volley_send(s, &x, 1), -EAFNOSUPPORT);
        T_EXPECT(volley_connect(s, "[::1]:9"), -EAFNOSUPPORT);
    }
    struct volley_addr weird = to;
    weird.sa.sa_family = AF_UNIX;
    x = dg(&weird, 10);
    T_EXPECT(volley_send(s, &x, 1), -EAFNOSUPPORT);

    /* A negative return is about d[0] only: a good prefix is sent. */
    struct volley_dgram two[3] = {dg(&to, 10), dg(&to, 10), dg(&to, 10)};
    two[1].ecn = 4;
    T_EXPECT(volley_send(s, two, 3), 1);
    T_EXPECT(volley_send(s, two + 1, 2), -EINVAL);
    two[1] = dg(&to, max + 1);
    T_EXPECT(volley_send(s, two, 3), 1);
    two[1] = dg(&none, 10);
    T_EXPECT(volley_send(s, two, 3), 1);
    /* The same inside a GSO run (mmsg and uring check while building
     * messages): the bad descriptor ends the run, nothing after it goes. */
    struct volley_dgram run[8];
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 8; i++)
            run[i] = dg(&to, 10);
        if (k == 0)
            run[5].data = NULL;
        else if (k == 1)
            run[5].ecn = 4;
        else if (k == 2)
            run[5].len = max + 1;
        else
            run[5].segment = 11; /* longer than the datagram */
        T_EXPECT(volley_send(s, run, 8), 5);
        T_EXPECT(volley_send(s, run + 5, 3), k == 2 ? -EMSGSIZE : -EINVAL);
    }
    /* And past the first round of messages: 9 buffers of 128 segments
     * make 1152 messages without GSO, more than one build holds. A full
     * send buffer may stop the call first; it never sends the bad one. */
    struct volley_dgram gso[10];
    for (int i = 0; i < 10; i++) {
        gso[i] = dg(&to, 128 * 100);
        gso[i].segment = 100;
    }
    gso[9].ecn = 4;
    int sent = volley_send(s, gso, 10);
    T_CHECK(sent == 9 || (sent >= 0 && sent < 9 && t_stats(s).tx_wouldblock > 0),
            "9 GSO buffers then a bad one: volley_send gave %d", sent);
    if (sent == 9)
        T_EXPECT(volley_send(s, gso + 9, 1), -EINVAL);

    /* connect */
    T_EXPECT(volley_connect(s, "garbage"), -EINVAL);
    T_EXPECT(volley_connect(s, ""), -EINVAL);
    T_EXPECT(volley_connect(s, "127.0.0.1"), -EINVAL);
    T_EXPECT(volley_connect(s, "127.0.0.1:65536"), -EINVAL);

    /* wait, stats, errors */
    T_EXPECT(volley_wait(s, 0, 0), -EINVAL);
    T_EXPECT(volley_wait(s, 0x8, 0), -EINVAL);
    T_EXPECT(volley_wait(s, VOLLEY_WAIT_RECV | 0x100, 0), -EINVAL);
    T_EXPECT(volley_wait(s, 0x80000000u, 0), -EINVAL);
    struct volley_stats st;
    T_EXPECT(volley_get_stats(s, &st, 0), -EINVAL);
    /* an older caller's smaller struct: only its bytes are written */
    uint8_t small[sizeof(uint64_t) + 8];
    memset(small, 0xee, sizeof small);
    T_EXPECT(volley_get_stats(s, (struct volley_stats *)(void *)small, sizeof(uint64_t)),
             0);
    T_CHECK(small[sizeof(uint64_t)] == 0xee,
            "volley_get_stats(size 8) wrote past 8 bytes");
    struct volley_sockerr e[2];
    T_EXPECT(volley_errors(s, e, 0), -EINVAL);
    T_EXPECT(volley_errors(s, e, 2), 0);

    T_EXPECT(volley_fd(s) >= 0, 1);
    volley_close(rx);
    volley_close(s);
}

static int send_recv(void)
{
    struct sendcfg cfgs[2 * T_BACKENDS_MAX];
    size_t n = send_configs(cfgs);
    for (size_t i = 0; i < n; i++) {
        send_recv_one(&cfgs[i], "127.0.0.1:0");
        send_recv_one(&cfgs[i], "[::1]:0");
    }
    return 0;
}

/* A dual-stack socket sending to a v4-mapped IPv6 peer sends IPv4: the
 * IPv4 ceiling applies to each datagram and to coalesced runs, and a batch
 * of small valid datagrams is never refused as too big. */
static void mapped_peer_one(unsigned be)
{
    char name[64];
    snprintf(name, sizeof name, "%s v4-mapped peer", t_backend_of(be)->name);
    t_context("%s", name);
    struct volley_opts o = t_opts(be);
    volley_sock *s, *rx;
    if (!open_for(&s, "[::]:0", &o, name))
        return;
    T_OK(volley_open(&rx, "127.0.0.1:0", &o));
    struct volley_addr to = t_local(rx), mapped;
    char txt[64];
    snprintf(txt, sizeof txt, "[::ffff:127.0.0.1]:%u", volley_addr_port(&to));
    T_OK(volley_addr_parse(&mapped, txt));

    struct volley_dgram x = dg(&mapped, 65508);
    T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);
    x = dg(&mapped, 65507);
    T_EXPECT(volley_send(s, &x, 1), 1);
    /* 60 x 1092 = 65520 bytes: more than one IPv4 super-packet may carry */
    struct volley_dgram d[60];
    for (unsigned i = 0; i < 60; i++)
        d[i] = dg(&mapped, 1092);
    T_EXPECT(volley_send(s, d, 60), 60);
    for (unsigned i = 0; i < 60; i++)
        d[i] = dg(&to, 1092);
    T_EXPECT(volley_send(s, d, 60), 60);
    volley_close(rx);
    volley_close(s);
}

static int mapped_peer(void)
{
    mapped_peer_one(VOLLEY_BACKEND_SCALAR);
    mapped_peer_one(VOLLEY_BACKEND_MMSG);
    return 0;
}

static int open_args(void)
{
    t_context("open");
    volley_sock *s = NULL;
    struct volley_opts o = VOLLEY_OPTS_INIT;

    static const char *const binds[] = {"",      "garbage",       "127.0.0.1",
                                        "[::1]", "localhost:0",   "127.0.0.1:65536",
                                        "::1:0", "[127.0.0.1]:0", "127.0.0.1:0x"};
    for (size_t i = 0; i < sizeof binds / sizeof binds[0]; i++) {
        int r = volley_open(&s, binds[i], &o);
        T_CHECK(r == -EINVAL, "volley_open(\"%s\") = %d (%s), want -EINVAL", binds[i], r,
                volley_strerror(r));
        if (r == 0)
            volley_close(s);
    }

    o.size = 0;
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &o), -EINVAL);

    /* A newer caller's larger struct: a zero tail is fine, a non-zero one is
     * something this library cannot honour. */
    struct {
        struct volley_opts o;
        uint8_t tail[24];
    } bigger;
    memset(&bigger, 0, sizeof bigger);
    bigger.o.size = sizeof bigger;
    int r = volley_open(&s, "127.0.0.1:0", &bigger.o);
    T_EXPECT(r, 0);
    if (r == 0)
        volley_close(s);
    bigger.tail[23] = 1;
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &bigger.o), -E2BIG);
    bigger.tail[23] = 0;
    bigger.tail[0] = 0x80;
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &bigger.o), -E2BIG);

    /* An older caller's smaller struct is accepted (missing fields default). */
    struct volley_opts older;
    memset(&older, 0, sizeof older);
    older.size = offsetof(struct volley_opts, pair_capacity);
    r = volley_open(&s, "127.0.0.1:0", &older);
    T_EXPECT(r, 0);
    if (r == 0)
        volley_close(s);

    /* A size ending inside the loop pointer is no struct's: refused, not
     * read as half a pointer; one ending before it means no loop. */
    struct volley_opts cut = t_opts(0);
    cut.loop = (struct volley_loop *)(uintptr_t)0xdeadbeefcafe;
    cut.size = (uint32_t)(offsetof(struct volley_opts, loop) + 4);
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &cut), -EINVAL);
    cut.size = (uint32_t)offsetof(struct volley_opts, loop);
    r = volley_open(&s, "127.0.0.1:0", &cut);
    T_EXPECT(r, 0);
    if (r == 0)
        volley_close(s);

    o = t_opts(99);
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &o), -EINVAL);
    o = t_opts(1000);
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &o), -EINVAL);
    o = t_opts(UINT32_MAX);
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &o), -EINVAL);
    o = t_opts(VOLLEY_BACKEND_PAIR);
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &o), -ENOTSUP);

    o = t_opts(0);
    o.enable = 0x200; /* the first bit no feature has */
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &o), -EINVAL);
    o = t_opts(0);
    o.disable = 0x80000000u;
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &o), -EINVAL);
    o = t_opts(0);
    o.rx_batch = VOLLEY_BATCH_MAX + 1;
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &o), -EINVAL);
    o.rx_batch = VOLLEY_BATCH_MAX;
    r = volley_open(&s, "127.0.0.1:0", &o);
    T_EXPECT(r, 0);
    if (r == 0)
        volley_close(s);

    /* volley_pair's options are checked the same way. */
    volley_sock *a, *b;
    o = t_opts(0);
    o.size = 0;
    T_EXPECT(volley_pair(&a, &b, &o), -EINVAL);
    o = t_opts(0);
    o.enable = 0x200;
    T_EXPECT(volley_pair(&a, &b, &o), -EINVAL);
    bigger.tail[0] = 1;
    T_EXPECT(volley_pair(&a, &b, &bigger.o), -E2BIG);
    return 0;
}

static int env(void)
{
    t_context("environment");
    volley_sock *s;
    struct volley_opts o = t_opts(VOLLEY_BACKEND_MMSG);

    setenv("VOLLEY_DISABLE", "mmsg", 1);
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &o), -ENOTSUP);
    o = t_opts(VOLLEY_BACKEND_AUTO);
    int r = volley_open(&s, "127.0.0.1:0", &o);
    T_EXPECT(r, 0);
    if (r == 0) {
        T_CHECK(!strcmp(volley_backend_name(s), "scalar"),
                "VOLLEY_DISABLE=mmsg, auto: backend %s, want scalar",
                volley_backend_name(s));
        volley_close(s);
    }
    unsetenv("VOLLEY_DISABLE");

    setenv("VOLLEY_BACKEND", "scalar", 1);
    r = volley_open(&s, "127.0.0.1:0", &o);
    T_EXPECT(r, 0);
    if (r == 0) {
        T_CHECK(!strcmp(volley_backend_name(s), "scalar"),
                "VOLLEY_BACKEND=scalar, auto: backend %s, want scalar",
                volley_backend_name(s));
        volley_close(s);
    }
    /* An unknown name is an error where it applies, and only there. */
    setenv("VOLLEY_BACKEND", "bogus", 1);
    T_EXPECT(volley_open(&s, "127.0.0.1:0", &o), -EINVAL);
    /* ... named with its value, and no capabilities are invented for it */
    char msg[256];
    T_EXPECT(volley_env_check(msg, sizeof msg), -EINVAL);
    T_CHECK(strstr(msg, "VOLLEY_BACKEND") && strstr(msg, "bogus"), "message: %s", msg);
    struct volley_caps caps;
    T_EXPECT(volley_probe(&caps, sizeof caps), -EINVAL);
    char tiny[8];
    T_EXPECT(volley_env_check(tiny, sizeof tiny), -EINVAL);
    T_CHECK(strlen(tiny) == sizeof tiny - 1, "cut message: \"%s\"", tiny);
    T_EXPECT(volley_env_check(NULL, 0), -EINVAL);
    T_EXPECT(volley_env_check(NULL, 10), -EINVAL);
    setenv("VOLLEY_BACKEND", "pair", 1); /* volley_open never makes a pair */
    T_EXPECT(volley_env_check(NULL, 0), -EINVAL);
    setenv("VOLLEY_BACKEND", "mmsg", 1);
    setenv("VOLLEY_DISABLE", "gso,,foo", 1);
    T_EXPECT(volley_env_check(msg, sizeof msg), -EINVAL);
    T_CHECK(strstr(msg, "VOLLEY_DISABLE") && strstr(msg, "\"foo\""), "message: %s", msg);
    setenv("VOLLEY_DISABLE", "gso,,gro,", 1);
    T_EXPECT(volley_env_check(msg, sizeof msg), 0);
    T_CHECK(msg[0] == '\0', "message when valid: %s", msg);
    unsetenv("VOLLEY_DISABLE");
    setenv("VOLLEY_BACKEND", "bogus", 1);
    volley_sock *pa, *pb;
    r = volley_pair(&pa, &pb, NULL);
    T_EXPECT(r, 0);
    if (r == 0) {
        volley_close(pa);
        volley_close(pb);
    }
    unsetenv("VOLLEY_BACKEND");
    return 0;
}

/* Open with o; expect want (closing the socket if it opened). */
static void expect_open(const struct volley_opts *o, int want, const char *what)
{
    volley_sock *s = NULL;
    int r = volley_open(&s, "127.0.0.1:0", o);
    if (want == 0 && t_unavailable(o->backend, r))
        return; /* no io_uring here: nothing to learn */
    T_CHECK(r == want, "%s: volley_open = %d (%s), want %d", what, r, volley_strerror(r),
            want);
    if (r == 0)
        volley_close(s);
}

/* Every option is checked against its documented range at open, on every
 * backend, before anything is sized from it (rx_ring_bufs above 2^31 once
 * made the uring open loop forever). */
static void option_ranges_of(unsigned be)
{
/* o with field set to v opens with want */
#define RANGE(field, v, want, what)                                                      \
    do {                                                                                 \
        struct volley_opts o = t_opts(be);                                               \
        o.field = v;                                                                     \
        expect_open(&o, want, what);                                                     \
    } while (0)
    RANGE(rx_ring_bufs, 0x80000001u, -EINVAL, "rx_ring_bufs 2^31+1");
    RANGE(rx_ring_bufs, UINT32_MAX, -EINVAL, "rx_ring_bufs 2^32-1");
    RANGE(rx_ring_bufs, 4097, -EINVAL, "rx_ring_bufs 4097");
    RANGE(rx_ring_bufs, 4096, 0, "rx_ring_bufs 4096");
    RANGE(tx_arena, 65535, -EINVAL, "tx_arena 65535");
    RANGE(tx_arena, (1u << 30) + 1, -EINVAL, "tx_arena 2^30+1");
    RANGE(tx_arena, 65536, 0, "tx_arena 65536");
    RANGE(rx_slot_size, 65537, -EINVAL, "rx_slot_size 65537");
    RANGE(pair_capacity, 65537, -EINVAL, "pair_capacity 65537");
    RANGE(pair_drop_ppm, 1000001, -EINVAL, "pair_drop_ppm 1000001");
    RANGE(rcvbuf, -1, -EINVAL, "rcvbuf -1");
    RANGE(pace_rate_bps, 10000000000001ull, -EINVAL, "pace_rate_bps above 10 Tbit/s");
    RANGE(pair_reserved, 1, -EINVAL, "pair_reserved 1");
    RANGE(uring_reserved, 1, -EINVAL, "uring_reserved 1");
#undef RANGE
}

static int option_ranges(void)
{
    t_context("option ranges");
    option_ranges_of(VOLLEY_BACKEND_AUTO);
    for (size_t i = 0; i < t_nbackends; i++)
        if (t_backends[i].kernel)
            option_ranges_of(t_backends[i].id);
    return 0;
}

static void huge_unix_one(const struct t_backend *b, void *map)
{
    char name[64];
    snprintf(name, sizeof name, "huge AF_UNIX %s", b->name);
    t_context("%s", name);
    int sv[2];
    T_ASSERT(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
    int big_buf = 1 << 20;
    (void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big_buf, sizeof big_buf);
    (void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big_buf, sizeof big_buf);
    struct volley_opts o = t_opts(b->id);
    o.tx_arena = 65536;
    o.zc_threshold = 1; /* AF_UNIX cannot send zero-copy: volley copies */
    volley_sock *s, *rx;
    int r = volley_wrap(&s, sv[0], &o);
    if (t_unavailable(b->id, r)) {
        t_skip_part(name, "backend not available here");
        close(sv[0]);
        close(sv[1]);
        return;
    }
    T_OK(r);
    o = t_opts(VOLLEY_BACKEND_MMSG);
    T_OK(volley_wrap(&rx, sv[1], &o));
    struct volley_dgram x = {.data = map, .len = (4ull << 30) + 1};
    T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);
    x.len = 0x80000000u;
    T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);
    x.len = SIZE_MAX;
    T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);
    x.len = 4096;
    x.segment = 1;
    T_EXPECT(volley_send(s, &x, 1), -EINVAL); /* 4096 segments */
    x = (struct volley_dgram){.data = map, .len = 100000};
    if (b->id == VOLLEY_BACKEND_URING) { /* over its send arena */
        T_EXPECT(volley_send(s, &x, 1), -EMSGSIZE);
    } else {
        T_EXPECT(volley_send(s, &x, 1), 1);
        struct volley_dgram d;
        volley_wait(rx, VOLLEY_WAIT_RECV, 1000);
        T_EXPECT(volley_recv(rx, &d, 1), 1);
        /* taken whole; the receiver's 64 KiB slot cuts it, and says so */
        T_CHECK(d.len == 65535 && (d.flags & VOLLEY_DGRAM_TRUNC),
                "100000-byte datagram arrived as %zu bytes, flags %#x", d.len, d.flags);
    }
    /* an ordinary datagram still goes (zero-copy quietly off) */
    x = (struct volley_dgram){.data = big, .len = 1000};
    T_EXPECT(volley_send(s, &x, 1), 1);
    struct volley_dgram got;
    volley_wait(rx, VOLLEY_WAIT_RECV, 1000);
    T_EXPECT(volley_recv(rx, &got, 1), 1);
    struct volley_stats st = t_stats(s);
    T_CHECK(st.tx_bytes <= 101000, "tx_bytes %llu after refusals",
            (unsigned long long)st.tx_bytes);
    volley_close(rx);
    volley_close(s);
}

/* A length no socket can take is refused before any arithmetic on it:
 * above 2^31-1 bytes everywhere (a 4 GiB AF_UNIX datagram once sized a
 * uring send slot with a 32-bit count and overflowed it), and on uring
 * above the send arena (a 100000-byte datagram with a 64 KiB arena once
 * made volley_send return 0 for ever). mmsg takes 100000 bytes whole. */
static int huge_unix(void)
{
    size_t span = (4ull << 30) + 4096;
    void *map =
        mmap(NULL, span, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    T_ASSERT(map != MAP_FAILED);
    for (size_t i = 0; i < t_nbackends; i++)
        if (t_backends[i].kernel)
            huge_unix_one(&t_backends[i], map);
    munmap(map, span);
    return 0;
}

/* The source address belongs to the family the datagram leaves by: on an
 * IPv6 socket an IPv4 local goes with an IPv4 peer (it was once silently
 * ignored with an IPv6 one), an IPv6 local with an IPv6 peer. */
static void local_family_one(const struct sendcfg *c)
{
    char name[sizeof c->label + 16];
    snprintf(name, sizeof name, "local family %.31s", c->label);
    t_context("%s", name);
    struct volley_opts o = t_opts(c->backend);
    o.disable = c->disable;
    volley_sock *s, *rx4;
    if (!open_for(&s, "[::]:0", &o, name))
        return;
    T_OK(volley_open(&rx4, "127.0.0.1:0", &o));
    struct volley_addr to4 = t_local(rx4), to6, lo4, lo6;
    T_OK(volley_addr_parse(&to6, "[::1]:9"));
    T_OK(volley_addr_parse(&lo4, "127.0.0.2:0"));
    T_OK(volley_addr_parse(&lo6, "[::1]:0"));
    struct volley_dgram x = dg(&to6, 10);
    x.local = lo4;
    T_EXPECT(volley_send(s, &x, 1), -EAFNOSUPPORT);
    x = dg(&to4, 10);
    x.local = lo6;
    T_EXPECT(volley_send(s, &x, 1), -EAFNOSUPPORT);
    /* The pair that is meant: IPv4 from 127.0.0.2 to an IPv4 peer. */
    x = dg(&to4, 10);
    x.local = lo4;
    T_EXPECT(volley_send(s, &x, 1), 1);
    struct volley_dgram d;
    uint8_t store[16];
    if (t_recv_n(rx4, &d, 1, store, sizeof store, 1000) == 1) {
        char got[64];
        volley_addr_format(&d.peer, got, sizeof got);
        T_CHECK(d.peer.sa.sa_family == AF_INET && !strncmp(got, "127.0.0.2:", 10),
                "datagram from local 127.0.0.2 arrived from %s", got);
    } else {
        T_CHECK(0, "the datagram from 127.0.0.2 did not arrive");
    }
    volley_close(rx4);
    volley_close(s);
}

static int local_family(void)
{
    struct sendcfg cfgs[2 * T_BACKENDS_MAX];
    size_t n = send_configs(cfgs);
    for (size_t i = 0; i < n; i++)
        local_family_one(&cfgs[i]);
    return 0;
}

static int wrap(void)
{
    t_context("wrap");
    volley_sock *s = NULL;
    struct volley_opts o = VOLLEY_OPTS_INIT;

    T_EXPECT(volley_wrap(&s, -1, &o), -EBADF);
    T_EXPECT(volley_wrap(&s, INT_MIN, &o), -EBADF);

    /* An fd number that is not open. */
    int closed = socket(AF_INET, SOCK_DGRAM, 0);
    T_ASSERT(closed >= 0);
    close(closed);
    T_EXPECT(volley_wrap(&s, closed, &o), -EBADF);

    int p[2];
    T_ASSERT(pipe(p) == 0);
    T_EXPECT(volley_wrap(&s, p[0], &o), -ENOTSOCK);
    T_CHECK(fd_open(p[0]), "volley_wrap(pipe) closed the fd");
    close(p[0]);
    close(p[1]);

    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    T_ASSERT(tcp >= 0);
    T_EXPECT(volley_wrap(&s, tcp, &o), -EPROTOTYPE);
    T_CHECK(fd_open(tcp), "volley_wrap(TCP) closed the fd");
    close(tcp);

    int us[2];
    T_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, us) == 0);
    T_EXPECT(volley_wrap(&s, us[0], &o), -EPROTOTYPE);
    T_CHECK(fd_open(us[0]), "volley_wrap(AF_UNIX stream) closed the fd");
    close(us[0]);
    close(us[1]);

    /* -EINVAL leaves the fd with the caller too. */
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    T_ASSERT(udp >= 0);
    T_EXPECT(volley_wrap(NULL, udp, &o), -EINVAL);
    T_CHECK(fd_open(udp), "volley_wrap(NULL out) closed the fd");
    struct volley_opts bad = o;
    bad.size = 0;
    T_EXPECT(volley_wrap(&s, udp, &bad), -EINVAL);
    T_CHECK(fd_open(udp), "volley_wrap(bad opts) closed the fd");
    bad = o;
    bad.enable = 0x200;
    T_EXPECT(volley_wrap(&s, udp, &bad), -EINVAL);
    T_CHECK(fd_open(udp), "volley_wrap(unknown feature) closed the fd");

    /* Any failure leaves the fd open and the caller's, also one found
     * after volley started setting the socket up (a forced backend that is
     * turned off). */
    bad = t_opts(VOLLEY_BACKEND_PAIR);
    int r = volley_wrap(&s, udp, &bad);
    T_EXPECT(r, -ENOTSUP);
    T_CHECK(fd_open(udp), "volley_wrap(forced pair) = %d closed the fd", r);
    setenv("VOLLEY_DISABLE", "mmsg", 1);
    bad = t_opts(VOLLEY_BACKEND_MMSG);
    r = volley_wrap(&s, udp, &bad);
    unsetenv("VOLLEY_DISABLE");
    T_EXPECT(r, -ENOTSUP);
    T_CHECK(fd_open(udp), "volley_wrap(forced mmsg, disabled) = %d closed the fd", r);
    close(udp);

    /* A datagram socket of a family volley cannot drive. */
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (nl >= 0) {
        r = volley_wrap(&s, nl, &o);
        T_EXPECT(r, -EAFNOSUPPORT);
        T_CHECK(fd_open(nl), "volley_wrap(AF_NETLINK) = %d closed the fd", r);
        close(nl);
    }
    return 0;
}

static int pair(void)
{
    t_context("pair");
    volley_sock *a, *b;
    struct volley_opts o = t_opts(VOLLEY_BACKEND_PAIR);
    int r = volley_pair(&a, &b, &o);
    if (r < 0) {
        T_CHECK(0, "volley_pair = %d (%s)", r, volley_strerror(r));
        return 0;
    }
    struct volley_addr addr;
    struct volley_dgram d[2];
    memset(d, 0, sizeof d);
    d[0].data = big;
    d[0].len = 1;
    T_EXPECT(volley_connect(a, "127.0.0.1:9"), -ENOTSUP);
    T_EXPECT(volley_local_addr(a, &addr), -ENOTSUP);
    T_EXPECT(volley_send(a, d, 0), -EINVAL);
    T_EXPECT(volley_send(a, d, VOLLEY_BATCH_MAX + 1), -EINVAL);
    T_EXPECT(volley_recv(b, d, 0), -EINVAL);
    T_EXPECT(volley_recv(b, d, VOLLEY_BATCH_MAX + 1), -EINVAL);
    d[0].ecn = 4;
    T_EXPECT(volley_send(a, d, 1), -EINVAL);
    d[0].ecn = 0;
    d[0].len = 100;
    d[0].segment = 101;
    T_EXPECT(volley_send(a, d, 1), -EINVAL);
    d[0].segment = 0;
    d[0].data = NULL;
    T_EXPECT(volley_send(a, d, 1), -EINVAL);
    T_EXPECT(volley_wait(a, 0, 0), -EINVAL);
    struct volley_stats st;
    T_EXPECT(volley_get_stats(a, &st, 0), -EINVAL);
    volley_close(a);
    volley_close(b);
    return 0;
}

/* Backend names: one table, and every name volley_backend_name gives
 * parses back to its backend. */
static int backend_names(void)
{
    t_context("backend names");
    T_EXPECT(volley_backend_parse(NULL), -EINVAL);
    T_EXPECT(volley_backend_parse(""), -EINVAL);
    T_EXPECT(volley_backend_parse("bogus"), -EINVAL);
    T_EXPECT(volley_backend_parse("MMSG"), -EINVAL);
    T_EXPECT(volley_backend_parse("mmsg "), -EINVAL);
    T_EXPECT(volley_backend_parse("auto"), VOLLEY_BACKEND_AUTO);
    T_EXPECT(volley_backend_parse("pair"), VOLLEY_BACKEND_PAIR);
    for (size_t i = 0; i < t_nbackends; i++) {
        struct volley_opts o = t_opts(t_backends[i].id);
        volley_sock *s;
        if (!t_backends[i].kernel || volley_open(&s, "127.0.0.1:0", &o) < 0)
            continue; /* the pair is below; uring may be refused here */
        T_EXPECT(volley_backend_parse(volley_backend_name(s)), t_backends[i].id);
        volley_close(s);
    }
    volley_sock *a, *b;
    T_OK(volley_pair(&a, &b, NULL));
    T_EXPECT(volley_backend_parse(volley_backend_name(a)), VOLLEY_BACKEND_PAIR);
    volley_close(a);
    volley_close(b);
    return 0;
}

static int error_text(void)
{
    t_context("strerror");
    static const int v[] = {INT_MIN, INT_MIN + 1, -100000, -4096, -EINVAL, -1,     0,
                            1,       EINVAL,      4095,    4096,  100000,  INT_MAX};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        const char *t = volley_strerror(v[i]);
        T_CHECK(t != NULL, "volley_strerror(%d) = NULL", v[i]);
        if (t)
            T_CHECK(strlen(t) < 1000, "volley_strerror(%d) is not a sane string", v[i]);
    }
    T_CHECK(volley_strerror(-EMSGSIZE) && volley_strerror(EMSGSIZE) &&
                !strcmp(volley_strerror(-EMSGSIZE), volley_strerror(EMSGSIZE)),
            "volley_strerror(-x) and (x) differ");
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(null_pointers), T_CASE(open_args),     T_CASE(env),
        T_CASE(wrap),          T_CASE(send_recv),     T_CASE(mapped_peer),
        T_CASE(local_family),  T_CASE(option_ranges), T_CASE(huge_unix),
        T_CASE(pair),          T_CASE(backend_names), T_CASE(error_text),
    };
    struct t_run how = {.total_s = 60};
    unsetenv("VOLLEY_BACKEND");
    unsetenv("VOLLEY_DISABLE");
    memset(big, 0x5a, sizeof big);
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
