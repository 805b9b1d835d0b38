/* SPDX-License-Identifier: MIT */
/* Reuseport groups (volley_group_open, volley_group_steer,
 * volley_group_leave) and volley_listen_fd, against what the header
 * promises:
 *
 *   - FLOW steering keeps every datagram of a flow on one member, spreads
 *     flows over every member, and puts each where the documented hash
 *     says (so the program is known to run, not the kernel's fallback);
 *     KERNEL keeps flows together too; on IPv4, IPv6 and dual-stack [::];
 *   - CPU steering delivers on member cpu % n (loopback: the sender's CPU);
 *   - a member leaves mid-stream without losing a datagram: everything
 *     sent is received once or counted as a kernel drop, and nothing
 *     reaches the leaving member once it was drained;
 *   - members leave and rejoin hundreds of times under load, by FLOW and
 *     CPU steering, and every datagram sent is received exactly once;
 *   - a stream group serves each member on its own loop (volley_listen_fd);
 *   - bad input gets the documented errno and leaves nothing open;
 *   - a refused steering program leaves a working group on the kernel's
 *     hash (and volley_probe says so); any other failing call of an open
 *     returns its error with nothing left open.
 *
 * Traffic stays on 127.0.0.1 and ::1. The fault seam is process-global, so
 * every case runs in a process of its own. */
#include "base/base.h"
#include "t.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

#define MAGIC  0x766f6c6cu
#define FLOWS  64
#define ROUNDS 4

/* ---- helpers ---- */

static int group(int *fds, unsigned n, const char *addr, unsigned flags, unsigned steer)
{
    struct volley_group_opts o = VOLLEY_GROUP_OPTS_INIT;
    o.flags = flags;
    o.steer = steer;
    int r = volley_group_open(fds, n, addr, &o);
    if (r < 0)
        T_FAIL("volley_group_open(%u, %s): %s", n, addr, volley_strerror(r));
    return r;
}

static void close_all(const int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        close(fds[i]);
}

static struct volley_addr fd_addr(int fd)
{
    struct volley_addr a;
    memset(&a, 0, sizeof a);
    socklen_t len = sizeof a;
    if (getsockname(fd, &a.sa, &len) < 0)
        T_FAIL("getsockname: %s", strerror(errno));
    return a;
}

/* to with ip's family and address ("127.0.0.1", "::1") and port's port */
static struct volley_addr on_ip(const char *ip, const struct volley_addr *port)
{
    char s[80];
    snprintf(s, sizeof s, strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip,
             volley_addr_port(port));
    return t_addr(s);
}

static bool ipv6_here(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct volley_addr a = t_addr("[::1]:0");
    bool ok = bind(fd, &a.sa, volley_addr_len(&a)) == 0;
    close(fd);
    return ok;
}

/* A blocking UDP client bound on ip (port 0); *self: its address. */
static int client(const char *ip, struct volley_addr *self)
{
    struct volley_addr a = on_ip(ip, &(struct volley_addr){.sin = {.sin_port = 0}});
    int fd = socket(a.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        T_FAIL("socket: %s", strerror(errno));
    if (bind(fd, &a.sa, volley_addr_len(&a)) < 0)
        T_FAIL("bind %s: %s", t_fmt(&a), strerror(errno));
    *self = fd_addr(fd);
    return fd;
}

struct msg {
    uint32_t magic, flow, seq;
};

static void send_msg(int fd, const struct volley_addr *to, uint32_t flow, uint32_t seq)
{
    struct msg m = {MAGIC, flow, seq};
    if (sendto(fd, &m, sizeof m, 0, &to->sa, volley_addr_len(to)) != sizeof m)
        T_FAIL("sendto %s: %s", t_fmt(to), strerror(errno));
}

/* The member FLOW steering picks among n for a packet from src, computed as
 * the header describes it: the source address words and port (as the
 * network header holds them) xored, times 0x9e3779b1, high 16 bits. */
static unsigned flow_member(const struct volley_addr *src, unsigned n)
{
    uint32_t h = ntohs(src->sin.sin_port);
    if (src->sa.sa_family == AF_INET) {
        h ^= ntohl(src->sin.sin_addr.s_addr);
    } else {
        const uint8_t *b = src->sin6.sin6_addr.s6_addr;
        for (int i = 0; i < 16; i += 4)
            h ^= (uint32_t)b[i] << 24 | (uint32_t)b[i + 1] << 16 |
                 (uint32_t)b[i + 2] << 8 | b[i + 3];
    }
    return ((h * 0x9e3779b1u) >> 16) % n;
}

/* One datagram taken from member fds[*m] within timeout_ms (false: none). */
static bool recv_any(const int *fds, unsigned n, int timeout_ms, unsigned *m,
                     struct msg *out, struct volley_addr *from)
{
    struct pollfd p[VOLLEY_GROUP_MAX];
    long long end = t_now_ms() + timeout_ms;
    for (;;) {
        for (unsigned i = 0; i < n; i++) {
            socklen_t len = sizeof *from;
            ssize_t r = recvfrom(fds[i], out, sizeof *out, MSG_DONTWAIT, &from->sa, &len);
            if (r >= 0) {
                T_EQ(r, sizeof *out);
                T_EQ(out->magic, MAGIC);
                *m = i;
                return true;
            }
            if (errno != EAGAIN && errno != EINTR)
                T_FAIL("recvfrom: %s", strerror(errno));
        }
        long long left = end - t_now_ms();
        if (left <= 0)
            return false;
        for (unsigned i = 0; i < n; i++)
            p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        poll(p, n, (int)left);
    }
}

/* A dual-stack socket reports IPv4 peers as v4-mapped: as plain IPv4. */
static struct volley_addr unmapped(const struct volley_addr *a)
{
    struct volley_addr out = *a;
    if (a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a->sin6.sin6_addr)) {
        memset(&out, 0, sizeof out);
        out.sin.sin_family = AF_INET;
        out.sin.sin_port = a->sin6.sin6_port;
        memcpy(&out.sin.sin_addr, &a->sin6.sin6_addr.s6_addr[12], 4);
    }
    return out;
}

/* ---- flows: stickiness, spread, the documented hash ---- */

struct flowrun {
    const char *bind; /* the group's address */
    const char *ip;   /* the clients' (and destination) IP */
    unsigned steer, n;
};

/* FLOWS new flows of ROUNDS datagrams each into the group: every datagram
 * arrives, from its flow's address, each flow on one member (the one the
 * hash names when steering is FLOW); hit[m] counts the flows member m got. */
static void flows_once(const struct flowrun *f, const int *fds, uint32_t base,
                       unsigned *hit)
{
    struct volley_addr port = fd_addr(fds[0]);
    struct volley_addr to = on_ip(f->ip, &port);
    int cl[FLOWS];
    struct volley_addr self[FLOWS];
    int owner[FLOWS];
    unsigned wrong = 0;
    for (unsigned i = 0; i < FLOWS; i++) {
        cl[i] = client(f->ip, &self[i]);
        owner[i] = -1;
    }
    for (uint32_t r = 0; r < ROUNDS; r++) {
        for (uint32_t i = 0; i < FLOWS; i++)
            send_msg(cl[i], &to, base + i, r);
        for (unsigned got = 0; got < FLOWS; got++) {
            unsigned m;
            struct msg msg;
            struct volley_addr from;
            if (!recv_any(fds, f->n, 5000, &m, &msg, &from))
                T_FAIL("round %u: %u of %u datagrams arrived", r, got, FLOWS);
            uint32_t i = msg.flow - base;
            T_ASSERT(i < FLOWS && msg.seq == r);
            from = unmapped(&from);
            T_CHECK(volley_addr_equal(&from, &self[i]), "flow %u from %s, sent from %s",
                    i, t_fmt(&from), t_fmt(&self[i]));
            if (owner[i] < 0) {
                owner[i] = (int)m;
                hit[m]++;
                if (f->steer == VOLLEY_STEER_FLOW && m != flow_member(&self[i], f->n) &&
                    !wrong++)
                    printf("  flow from %s on member %u, the hash says %u\n",
                           t_fmt(&self[i]), m, flow_member(&self[i], f->n));
            }
            T_CHECK(owner[i] == (int)m, "flow %u: datagram %u on member %u, before on %d",
                    i, r, m, owner[i]);
        }
    }
    T_CHECK(wrong == 0, "%u flows of %u not on the member the hash names", wrong, FLOWS);
    close_all(cl, FLOWS);
}

/* Flows until every member had one (a few tries: with 64 flows over 4
 * members one try nearly always does). */
static void flows(const struct flowrun *f)
{
    t_context("%s %s", f->bind, f->steer == VOLLEY_STEER_FLOW ? "flow" : "kernel");
    int fds[VOLLEY_GROUP_MAX];
    T_EXPECT(group(fds, f->n, f->bind, 0, f->steer), f->steer);
    unsigned hit[VOLLEY_GROUP_MAX] = {0}, empty = f->n;
    for (unsigned t = 0; t < 8 && empty; t++) {
        flows_once(f, fds, t * FLOWS, hit);
        empty = 0;
        for (unsigned m = 0; m < f->n; m++)
            empty += hit[m] == 0;
    }
    for (unsigned m = 0; m < f->n; m++)
        T_CHECK(hit[m] > 0, "member %u of %u got no flow", m, f->n);
    close_all(fds, f->n);
}

static int flow_ipv4(void)
{
    flows(&(struct flowrun){"127.0.0.1:0", "127.0.0.1", VOLLEY_STEER_FLOW, 4});
    return 0;
}

static int flow_ipv6(void)
{
    if (!ipv6_here())
        return t_skip("no IPv6 here");
    flows(&(struct flowrun){"[::1]:0", "::1", VOLLEY_STEER_FLOW, 4});
    return 0;
}

static int kernel_ipv4(void)
{
    flows(&(struct flowrun){"127.0.0.1:0", "127.0.0.1", VOLLEY_STEER_KERNEL, 4});
    return 0;
}

static int kernel_ipv6(void)
{
    if (!ipv6_here())
        return t_skip("no IPv6 here");
    flows(&(struct flowrun){"[::1]:0", "::1", VOLLEY_STEER_KERNEL, 4});
    return 0;
}

/* Dual-stack [::]: IPv4 datagrams are steered by their IPv4 header. */
static int dual_stack(void)
{
    if (!ipv6_here())
        return t_skip("no IPv6 here");
    flows(&(struct flowrun){"[::]:0", "127.0.0.1", VOLLEY_STEER_FLOW, 4});
    flows(&(struct flowrun){"[::]:0", "::1", VOLLEY_STEER_FLOW, 3});
    return 0;
}

/* V6ONLY leaves IPv4 to others: an IPv4 socket binds the same port and
 * gets the IPv4 datagrams, while IPv6 still reaches the group. */
static int v6only(void)
{
    if (!ipv6_here())
        return t_skip("no IPv6 here");
    int fds[2];
    T_EXPECT(group(fds, 2, "[::]:0", VOLLEY_GROUP_V6ONLY, VOLLEY_STEER_FLOW),
             VOLLEY_STEER_FLOW);
    struct volley_addr port = fd_addr(fds[0]);
    struct volley_addr v4 = on_ip("0.0.0.0", &port), to4 = on_ip("127.0.0.1", &port);
    int s4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    T_ASSERT(s4 >= 0);
    T_CHECK(bind(s4, &v4.sa, volley_addr_len(&v4)) == 0,
            "IPv4 bind on the port of a V6ONLY group: %s", strerror(errno));
    struct volley_addr self;
    int c4 = client("127.0.0.1", &self);
    send_msg(c4, &to4, 1, 0);
    struct msg m;
    T_CHECK(recv(s4, &m, sizeof m, 0) == sizeof m && m.flow == 1,
            "the IPv4 datagram went elsewhere");
    unsigned k;
    struct volley_addr from;
    T_CHECK(!recv_any(fds, 2, 0, &k, &m, &from), "an IPv4 datagram reached the group");
    unsigned hit[2] = {0};
    flows_once(&(struct flowrun){"[::]:0", "::1", VOLLEY_STEER_FLOW, 2}, fds, 0, hit);
    close(c4);
    close(s4);
    close_all(fds, 2);
    /* and without V6ONLY the IPv4 port is taken by the group */
    T_EXPECT(group(fds, 2, "[::]:0", 0, VOLLEY_STEER_FLOW), VOLLEY_STEER_FLOW);
    port = fd_addr(fds[0]);
    v4 = on_ip("0.0.0.0", &port);
    s4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    T_CHECK(bind(s4, &v4.sa, volley_addr_len(&v4)) < 0 && errno == EADDRINUSE,
            "IPv4 bind on the port of a dual-stack group worked");
    close(s4);
    close_all(fds, 2);
    return 0;
}

/* ---- CPU steering ---- */

static bool cpus_01(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_ISSET(0, &set) &&
           CPU_ISSET(1, &set);
}

static pthread_t start_on(int cpu, void *(*fn)(void *), void *arg)
{
    pthread_attr_t at;
    pthread_attr_init(&at);
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        T_EXPECT(pthread_attr_setaffinity_np(&at, sizeof set, &set), 0);
    }
    pthread_t t;
    T_EXPECT(pthread_create(&t, &at, fn, arg), 0);
    pthread_attr_destroy(&at);
    return t;
}

struct cpusend {
    int cpu;
    unsigned count, elsewhere; /* sent, and sent while not on cpu */
    struct volley_addr to;
    int cl[8];
};

static void *cpu_send(void *arg)
{
    struct cpusend *c = arg;
    for (unsigned i = 0; i < c->count; i++) {
        c->elsewhere += sched_getcpu() != c->cpu;
        send_msg(c->cl[i % 8], &c->to, i % 8, i);
    }
    return NULL;
}

/* On loopback the kernel handles a datagram on the CPU that sent it, so a
 * sender pinned to CPU c reaches member c alone of the group of 2 fds,
 * CPU-steered: checked for c = 0 and 1. Closes the members. */
static void expect_cpu_members(int *fds)
{
    struct volley_addr port = fd_addr(fds[0]);
    for (int cpu = 0; cpu < 2; cpu++) {
        t_context("sender on CPU %d", cpu);
        struct cpusend c = {.cpu = cpu, .count = 256, .to = on_ip("127.0.0.1", &port)};
        struct volley_addr self;
        for (int i = 0; i < 8; i++)
            c.cl[i] = client("127.0.0.1", &self);
        pthread_join(start_on(cpu, cpu_send, &c), NULL);
        T_EXPECT(c.elsewhere, 0);
        unsigned on[2] = {0};
        for (unsigned got = 0; got < c.count; got++) {
            unsigned m;
            struct msg msg;
            struct volley_addr from;
            if (!recv_any(fds, 2, 5000, &m, &msg, &from))
                T_FAIL("%u of %u datagrams arrived", got, c.count);
            on[m]++;
        }
        T_CHECK(on[cpu] == c.count, "member 0 got %u, member 1 %u; all on %d expected",
                on[0], on[1], cpu);
        close_all(c.cl, 8);
    }
    close_all(fds, 2);
}

static int cpu_steer(void)
{
    if (!cpus_01())
        return t_skip("needs CPUs 0 and 1");
    int fds[2];
    T_EXPECT(group(fds, 2, "127.0.0.1:0", 0, VOLLEY_STEER_CPU), VOLLEY_STEER_CPU);
    expect_cpu_members(fds);
    return 0;
}

/* Linux 6.1 or later (the kernel's reuseport choice honours
 * SO_INCOMING_CPU from there on). */
static bool kernel_at_least_6_1(void)
{
    struct utsname u;
    unsigned major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
        return false;
    return major > 6 || (major == 6 && minor >= 1);
}

/* The steering program's setsockopt fails with -EPERM, every time. */
static void refuse_program(void)
{
    volley__sys_fault_setsockopt(SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF);
    volley__sys_fault_set(VOLLEY__SYS_SETSOCKOPT, 1, 0, EPERM, 0);
}

/* CPU steering whose program the kernel refuses: the group says
 * VOLLEY_STEER_KERNEL, yet member c still gets what is processed on CPU c,
 * through SO_INCOMING_CPU. */
static int cpu_steer_no_program(void)
{
    if (!cpus_01())
        return t_skip("needs CPUs 0 and 1");
    if (!kernel_at_least_6_1())
        return t_skip("needs Linux 6.1 (SO_INCOMING_CPU in the reuseport choice)");
    int fds[2];
    refuse_program();
    int r = group(fds, 2, "127.0.0.1:0", 0, VOLLEY_STEER_CPU);
    volley__sys_fault_clear();
    T_EXPECT(r, VOLLEY_STEER_KERNEL);
    expect_cpu_members(fds);
    return 0;
}

/* ---- a member leaves mid-stream without losing a datagram ---- */

#define LEAVE_TOTAL  200000u /* at most; the stream stops once it showed enough */
#define LEAVE_WINDOW 64u     /* per sender in flight: well within one member's buffer */
#define LEAVE_FLOWS  16
#define LEAVE_LEN    64
#define SENDERS      2

/* Sender i sends the numbers i, i + SENDERS, ...: its first sent[i]. */
struct stream {
    struct volley_addr to;
    atomic_uint sent[SENDERS], received[SENDERS], done;
    atomic_bool stop;
    long long end_ms; /* senders stop here at the latest */
};

struct sender {
    struct stream *st;
    unsigned id;
    int cl[LEAVE_FLOWS];
};

static void *stream_send(void *arg)
{
    struct sender *s = arg;
    struct stream *st = s->st;
    uint8_t buf[LEAVE_LEN];
    for (unsigned seq = s->id;
         seq < LEAVE_TOTAL && !atomic_load(&st->stop) && t_now_ms() < st->end_ms;
         seq += SENDERS) {
        while (atomic_load(&st->sent[s->id]) - atomic_load(&st->received[s->id]) >=
                   LEAVE_WINDOW &&
               t_now_ms() < st->end_ms)
            usleep(50);
        t_fill_seq(buf, sizeof buf, seq);
        int fd = s->cl[(seq / SENDERS) % LEAVE_FLOWS];
        if (sendto(fd, buf, sizeof buf, 0, &st->to.sa, volley_addr_len(&st->to)) !=
            sizeof buf)
            T_FAIL("sendto: %s", strerror(errno));
        atomic_fetch_add(&st->sent[s->id], 1);
    }
    atomic_fetch_add(&st->done, 1);
    return NULL;
}

struct tally {
    uint8_t seen[LEAVE_TOTAL];
    unsigned dups, received;
    struct stream *st;
};

/* Everything queued on s now: its count. */
static unsigned take(volley_sock *s, struct tally *t)
{
    struct volley_dgram d[32];
    unsigned total = 0;
    for (;;) {
        int r = volley_recv(s, d, 32);
        if (r < 0)
            T_FAIL("volley_recv: %s", volley_strerror(r));
        if (r == 0)
            return total;
        for (int i = 0; i < r; i++) {
            uint64_t seq = T_SEQ(&d[i], LEAVE_LEN);
            T_ASSERT(seq < LEAVE_TOTAL);
            t->dups += t->seen[seq]++ > 0;
            atomic_fetch_add(&t->st->received[seq % SENDERS], 1);
        }
        total += (unsigned)r;
        t->received += (unsigned)r;
    }
}

static void wait_any(volley_sock *const *s, unsigned n, int timeout_ms)
{
    struct pollfd p[3];
    for (unsigned i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = volley_fd(s[i]), .events = POLLIN};
    poll(p, n, timeout_ms);
}

enum leave_phase { STREAMING, DRAINING, WATCHING, LEFT };

struct leave {
    volley_sock *s[3];
    int fds[3];
    unsigned n, steer;
    enum leave_phase phase;
    long long since, until; /* the phase's mark (0: none) and deadline */
    unsigned mark[SENDERS]; /* what each sender had sent at the mark */
    bool quiet_streaming;   /* the leaver stayed empty while all sent on */
    bool watched;           /* ... and got nothing while all sent 1000 more */
    unsigned before, late, after;
    uint64_t drops;
};

/* Every sender sent at least k since the mark (or is done). */
static bool all_sent(const struct leave *L, const struct stream *st, unsigned k)
{
    for (unsigned i = 0; i < SENDERS; i++)
        if (atomic_load(&st->sent[i]) < L->mark[i] + k)
            return false;
    return true;
}

static void set_mark(struct leave *L, const struct stream *st, long long now)
{
    L->since = now;
    for (unsigned i = 0; i < SENDERS; i++)
        L->mark[i] = atomic_load(&st->sent[i]);
}

/* The leaver (s[2]) took g datagrams in this turn: is it drained? Empty at
 * one turn, and empty again once 20 ms passed and every sender (every
 * flow) sent 200 more: whatever was in flight at the swap has landed. */
static void drain_turn(struct leave *L, const struct stream *st, unsigned g,
                       long long now)
{
    if (g) {
        L->since = 0;
    } else if (!L->since) {
        set_mark(L, st, now);
    } else if (now - L->since >= 20 && all_sent(L, st, 200)) {
        L->phase = WATCHING;
        L->quiet_streaming = atomic_load(&st->done) == 0;
        set_mark(L, st, now);
        L->until = now + 1000;
    }
}

/* One turn: take what is queued everywhere and move through the phases:
 * leave once 5000 have arrived; drain the leaver (now s[2]); watch that
 * nothing more reaches it while every sender sends 1000 more; close it,
 * steer the two that stay, and stop the stream once they took 5000 more.
 * Returns what arrived. */
static unsigned leave_turn(struct leave *L, struct tally *t)
{
    unsigned got = 0;
    long long now = t_now_ms();
    for (unsigned i = 0; i < L->n; i++) {
        unsigned g = take(L->s[i], t);
        got += g;
        L->before += L->phase == STREAMING && i == 1 ? g : 0;
        L->late += L->phase == WATCHING && i == 2 ? g : 0;
        L->after += L->phase == LEFT ? g : 0;
        if (L->phase == DRAINING && i == 2)
            drain_turn(L, t->st, g, now);
    }
    if (L->phase == STREAMING && t->received >= 5000) {
        T_EXPECT(volley_group_leave(L->fds, 3, 1, L->steer), 0);
        volley_sock *k = L->s[1];
        L->s[1] = L->s[2];
        L->s[2] = k;
        L->phase = DRAINING;
        L->since = 0;
        L->until = now + 2000;
    } else if (L->phase == DRAINING && now > L->until) {
        T_FAIL("the leaving member was not found empty within 2 s");
    } else if (L->phase == WATCHING && (all_sent(L, t->st, 1000) || now > L->until ||
                                        atomic_load(&t->st->done) == SENDERS)) {
        L->watched = all_sent(L, t->st, 1000);
        L->drops += t_stats(L->s[2]).rx_kernel_drops;
        volley_close(L->s[2]);
        L->n = 2;
        T_EXPECT(volley_group_steer(L->fds, 2, L->steer), L->steer);
        L->phase = LEFT;
    } else if (L->phase == LEFT && L->after >= 5000) {
        atomic_store(&t->st->stop, true);
    }
    return got;
}

static void leave_run(unsigned steer)
{
    t_context("%s", steer == VOLLEY_STEER_CPU ? "cpu" : "flow");
    struct leave L = {.n = 3, .steer = steer};
    T_EXPECT(group(L.fds, 3, "127.0.0.1:0", 0, steer), steer);
    struct volley_addr port = fd_addr(L.fds[0]);
    for (int i = 0; i < 3; i++) {
        T_OK(volley_wrap(&L.s[i], L.fds[i], NULL));
        T_ASSERT(volley_features(L.s[i]) & VOLLEY_F_RXQ_OVFL);
    }
    static struct tally t;
    memset(&t, 0, sizeof t);
    struct stream st = {.to = on_ip("127.0.0.1", &port), .end_ms = t_now_ms() + 5000};
    t.st = &st;
    struct sender snd[SENDERS];
    pthread_t th[SENDERS];
    bool pin = cpus_01();
    for (unsigned i = 0; i < SENDERS; i++) {
        snd[i] = (struct sender){.st = &st, .id = i};
        struct volley_addr self;
        for (int f = 0; f < LEAVE_FLOWS; f++)
            snd[i].cl[f] = client("127.0.0.1", &self);
        th[i] = start_on(pin ? (int)i : -1, stream_send, &snd[i]);
    }
    unsigned sent = 0;
    long long idle_from = t_now_ms(), end = t_now_ms() + 15000; /* far past end_ms */
    while (t_now_ms() < end) {
        wait_any(L.s, L.n, 5);
        if (leave_turn(&L, &t))
            idle_from = t_now_ms();
        /* done first: once both senders are done, the counts read after
         * it are final (read before it, one may still grow by the last
         * datagram, which would then never be taken) */
        bool senders_done = atomic_load(&st.done) == SENDERS;
        sent = atomic_load(&st.sent[0]) + atomic_load(&st.sent[1]);
        if (senders_done && L.phase == LEFT &&
            (t.received == sent || t_now_ms() - idle_from > 500))
            break;
    }
    for (unsigned i = 0; i < SENDERS; i++) {
        pthread_join(th[i], NULL);
        close_all(snd[i].cl, LEAVE_FLOWS);
    }
    sent = atomic_load(&st.sent[0]) + atomic_load(&st.sent[1]);
    for (unsigned i = 0; i < L.n; i++) {
        L.drops += t_stats(L.s[i]).rx_kernel_drops;
        volley_close(L.s[i]);
    }
    printf("  %s: sent %u, received %u, dropped %llu; the leaver got %u before leaving\n",
           steer == VOLLEY_STEER_CPU ? "cpu" : "flow", sent, t.received,
           (unsigned long long)L.drops, L.before);
    T_EXPECT(L.phase, LEFT);
    T_EXPECT(t.dups, 0);
    T_EXPECT(t.received + L.drops, sent);
    T_EXPECT(L.late, 0);
    T_CHECK(L.before > 0, "the leaving member had no traffic: nothing was tested");
    T_CHECK(L.quiet_streaming && L.watched,
            "the leaver was not shown quiet while every sender went on");
    T_CHECK(L.after >= 5000, "%u arrived after the group was steered again", L.after);
    for (unsigned i = 0; i < SENDERS && !L.drops; i++)
        for (unsigned k = 0; k < atomic_load(&st.sent[i]); k++)
            if (!t.seen[i + k * SENDERS])
                T_FAIL("datagram %u never arrived", i + k * SENDERS);
}

static int leave_flow(void)
{
    leave_run(VOLLEY_STEER_FLOW);
    return 0;
}

static int leave_cpu(void)
{
    if (!cpus_01())
        return t_skip("needs CPUs 0 and 1");
    leave_run(VOLLEY_STEER_CPU);
    return 0;
}

/* ---- members leave and rejoin, over and over, under load ---- */

/* Hundreds of leaves by the documented procedure (leave, drain once until
 * empty, close, a new member joins, steer), while senders on many flows
 * keep going and a second thread serves the members that stay, so that
 * datagrams are on their way while each leaver closes. Every datagram sent
 * must be received exactly once, with no kernel drop. Every other cycle
 * the newest member leaves: on IPv4 it is first on the kernel's hash
 * chain, where a lookup meeting a closing member took it (group.c). The
 * count is CHURN_CYCLES, or VOLLEY_GROUP_CYCLES for a longer run. */
#define CHURN_N       4u
#define CHURN_CYCLES  250u
#define CHURN_TOTAL   4000000u /* at most, per sender; the cycles end the stream */
#define CHURN_WINDOW  48u      /* per sender in flight: within one member's buffer */
#define CHURN_SENDERS 2u
#define CHURN_FLOWS   8

struct churn {
    struct volley_addr to;
    int fds[CHURN_N];
    volley_sock *m[CHURN_N];
    unsigned live, steer; /* the receiving thread serves m[0..live-1] */
    pthread_mutex_t mu;   /* m, live and the tally */
    uint8_t *seen[CHURN_SENDERS];
    unsigned dups;
    uint64_t drops;
    atomic_uint sent[CHURN_SENDERS], received[CHURN_SENDERS];
    atomic_bool stop;
    long long end_ms;
};

struct churner {
    struct churn *c;
    unsigned id;
    int cl[CHURN_FLOWS];
};

static void *churn_send(void *arg)
{
    struct churner *s = arg;
    struct churn *c = s->c;
    uint8_t buf[LEAVE_LEN];
    for (unsigned seq = 0; seq < CHURN_TOTAL && !atomic_load(&c->stop); seq++) {
        while (seq - atomic_load(&c->received[s->id]) >= CHURN_WINDOW &&
               !atomic_load(&c->stop))
            sched_yield();
        t_fill_seq(buf, sizeof buf, (uint64_t)seq * CHURN_SENDERS + s->id);
        int fd = s->cl[seq % CHURN_FLOWS];
        if (sendto(fd, buf, sizeof buf, 0, &c->to.sa, volley_addr_len(&c->to)) !=
            sizeof buf)
            T_FAIL("sendto: %s", strerror(errno));
        atomic_store(&c->sent[s->id], seq + 1);
    }
    return NULL;
}

/* Everything queued on s now, with c->mu held: its count. */
static unsigned churn_take(struct churn *c, volley_sock *s)
{
    struct volley_dgram d[32];
    unsigned total = 0;
    int r;
    while ((r = volley_recv(s, d, 32)) > 0) {
        for (int i = 0; i < r; i++) {
            uint64_t v = T_SEQ(&d[i], LEAVE_LEN);
            unsigned id = (unsigned)(v % CHURN_SENDERS),
                     seq = (unsigned)(v / CHURN_SENDERS);
            T_ASSERT(seq < CHURN_TOTAL);
            c->dups += c->seen[id][seq]++ > 0;
            atomic_fetch_add(&c->received[id], 1);
        }
        total += (unsigned)r;
    }
    if (r < 0)
        T_FAIL("volley_recv: %s", volley_strerror(r));
    return total;
}

static void *churn_serve(void *arg)
{
    struct churn *c = arg;
    while (!atomic_load(&c->stop)) {
        unsigned got = 0;
        pthread_mutex_lock(&c->mu);
        for (unsigned i = 0; i < c->live; i++)
            got += churn_take(c, c->m[i]);
        pthread_mutex_unlock(&c->mu);
        if (!got)
            sched_yield();
    }
    return NULL;
}

/* A new member: bound to the group's address, taking the last index. */
static volley_sock *churn_join(struct churn *c, int *fd)
{
    *fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    T_ASSERT(*fd >= 0 &&
             setsockopt(*fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0);
    if (bind(*fd, &c->to.sa, volley_addr_len(&c->to)) < 0)
        T_FAIL("bind %s: %s", t_fmt(&c->to), strerror(errno));
    volley_sock *s;
    T_OK(volley_wrap(&s, *fd, NULL));
    return s;
}

static void churn_cycle(struct churn *c, unsigned i)
{
    unsigned n = CHURN_N, k = i % 2 ? n - 1 : i / 2 % n;
    T_EXPECT(volley_group_leave(c->fds, n, k, c->steer), 0);
    pthread_mutex_lock(&c->mu);
    volley_sock *gone = c->m[k];
    c->m[k] = c->m[n - 1];
    c->live = n - 1;
    churn_take(c, gone);
    c->drops += t_stats(gone).rx_kernel_drops;
    pthread_mutex_unlock(&c->mu);
    volley_close(gone); /* while the others are served */
    volley_sock *s = churn_join(c, &c->fds[n - 1]);
    pthread_mutex_lock(&c->mu);
    c->m[n - 1] = s;
    c->live = n;
    pthread_mutex_unlock(&c->mu);
    T_EXPECT(volley_group_steer(c->fds, n, c->steer), c->steer);
}

static unsigned churn_cycles(void)
{
    const char *e = getenv("VOLLEY_GROUP_CYCLES");
    return e && atoi(e) > 0 ? (unsigned)atoi(e) : CHURN_CYCLES;
}

/* After the cycles: the senders stop, what they sent arrives. */
static void churn_settle(struct churn *c, pthread_t *th, struct churner *snd,
                         pthread_t serve)
{
    atomic_store(&c->stop, true);
    for (unsigned i = 0; i < CHURN_SENDERS; i++) {
        pthread_join(th[i], NULL);
        close_all(snd[i].cl, CHURN_FLOWS);
    }
    pthread_join(serve, NULL);
    long long end = t_now_ms() + 2000;
    for (;;) {
        unsigned missing = 0;
        for (unsigned i = 0; i < CHURN_N; i++)
            churn_take(c, c->m[i]);
        for (unsigned i = 0; i < CHURN_SENDERS; i++)
            missing += atomic_load(&c->sent[i]) - atomic_load(&c->received[i]);
        if (!missing || t_now_ms() > end)
            break;
        usleep(1000);
    }
    for (unsigned i = 0; i < CHURN_N; i++) {
        c->drops += t_stats(c->m[i]).rx_kernel_drops;
        volley_close(c->m[i]);
    }
}

static void churn_run(unsigned steer)
{
    static struct churn c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    c.steer = steer;
    c.live = CHURN_N;
    T_EXPECT(group(c.fds, CHURN_N, "127.0.0.1:0", 0, steer), steer);
    struct volley_addr port = fd_addr(c.fds[0]);
    c.to = on_ip("127.0.0.1", &port);
    for (unsigned i = 0; i < CHURN_N; i++)
        T_OK(volley_wrap(&c.m[i], c.fds[i], NULL));
    for (unsigned i = 0; i < CHURN_SENDERS; i++)
        T_ASSERT((c.seen[i] = calloc(CHURN_TOTAL, 1)) != NULL);
    struct churner snd[CHURN_SENDERS];
    pthread_t th[CHURN_SENDERS], serve;
    bool pin = cpus_01();
    for (unsigned i = 0; i < CHURN_SENDERS; i++) {
        snd[i] = (struct churner){.c = &c, .id = i};
        struct volley_addr self;
        for (int f = 0; f < CHURN_FLOWS; f++)
            snd[i].cl[f] = client("127.0.0.1", &self);
        th[i] = start_on(pin ? (int)i : -1, churn_send, &snd[i]);
    }
    T_ASSERT(pthread_create(&serve, NULL, churn_serve, &c) == 0);
    unsigned cycles = churn_cycles(), done = 0;
    long long end = t_now_ms() + 20000ll * (cycles / CHURN_CYCLES + 1);
    for (; done < cycles && t_now_ms() < end; done++)
        churn_cycle(&c, done);
    churn_settle(&c, th, snd, serve);
    unsigned sent = 0, received = 0;
    for (unsigned i = 0; i < CHURN_SENDERS; i++) {
        sent += atomic_load(&c.sent[i]);
        received += atomic_load(&c.received[i]);
    }
    printf("  %s: %u leaves; sent %u, received %u, duplicated %u, dropped %llu\n",
           steer == VOLLEY_STEER_CPU ? "cpu" : "flow", done, sent, received, c.dups,
           (unsigned long long)c.drops);
    T_CHECK(done >= 100, "only %u cycles in the time allowed", done);
    T_EXPECT(c.dups, 0);
    T_EXPECT(c.drops, 0);
    T_EXPECT(received, sent);
    for (unsigned i = 0; i < CHURN_SENDERS; i++)
        free(c.seen[i]);
}

static int churn_flow(void)
{
    churn_run(VOLLEY_STEER_FLOW);
    return 0;
}

static int churn_cpu(void)
{
    if (!cpus_01())
        return t_skip("needs CPUs 0 and 1");
    churn_run(VOLLEY_STEER_CPU);
    return 0;
}

/* ---- streams: one loop per member ---- */

static const struct t_loop_backend *loop_be(void)
{
    return t_current()->arg;
}

/* A loop of the case's backend; NULL (the case skips) where uring loops
 * do not open. */
static volley_loop *loop_new(void)
{
    struct volley_loop_opts o = VOLLEY_LOOP_OPTS_INIT;
    o.backend = loop_be()->id;
    volley_loop *l = NULL;
    int r = volley_loop_open(&l, &o);
    if (r == -ENOTSUP && o.backend == VOLLEY_BACKEND_URING)
        return NULL;
    if (r < 0)
        T_FAIL("volley_loop_open(%s): %s", loop_be()->name, volley_strerror(r));
    return l;
}

#define CONNS 50

struct served {
    int loop; /* which loop accepted it */
    uint8_t buf[sizeof(struct msg)];
    size_t have;
};

/* Read a client's message, note which loop it reached, echo it. */
static void serve(volley_conn *c, struct served *sv, int loop, int *where)
{
    ssize_t r;
    while (sv->have < sizeof sv->buf &&
           (r = volley_conn_read(c, sv->buf + sv->have, sizeof sv->buf - sv->have)) > 0)
        sv->have += (size_t)r;
    if (sv->have < sizeof sv->buf)
        return;
    struct msg m;
    memcpy(&m, sv->buf, sizeof m);
    T_ASSERT(m.magic == MAGIC && m.flow < CONNS);
    T_CHECK(where[m.flow] < 0, "client %u reached loops %d and %d", m.flow, where[m.flow],
            loop);
    where[m.flow] = loop;
    T_EXPECT(volley_conn_write(c, &m, sizeof m), sizeof m);
    sv->have = 0;
}

static void loop_turn(volley_loop *l, int loop, struct served *pool, unsigned *used,
                      unsigned *accepted, int *where)
{
    struct volley_event ev[32];
    int n = volley_loop_poll(l, ev, 32, 1);
    T_ASSERT(n >= 0);
    for (int i = 0; i < n; i++) {
        if (ev[i].type == VOLLEY_EV_ACCEPTED) {
            T_ASSERT(*used < 2 * CONNS);
            struct served *sv = &pool[(*used)++];
            *sv = (struct served){.loop = loop};
            volley_conn_set_user(ev[i].conn, sv);
            accepted[loop]++;
        } else if (ev[i].type == VOLLEY_EV_READABLE) {
            serve(ev[i].conn, ev[i].user, loop, where);
        }
    }
}

/* Blocking connects: the kernel completes them before any accept. */
static int tcp_client(const struct volley_addr *to, uint32_t id)
{
    int fd = socket(to->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    T_ASSERT(fd >= 0);
    if (connect(fd, &to->sa, volley_addr_len(to)) < 0)
        T_FAIL("connect %s: %s", t_fmt(to), strerror(errno));
    struct msg m = {MAGIC, id, 0};
    T_EXPECT(send(fd, &m, sizeof m, 0), sizeof m);
    T_EXPECT(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    return fd;
}

static int case_stream_group(void)
{
    int before = t_count_fds();
    volley_loop *l[2] = {loop_new(), NULL};
    if (!l[0])
        return t_skip("uring loops do not open here");
    l[1] = loop_new();
    int fds[2];
    T_EXPECT(group(fds, 2, "127.0.0.1:0", VOLLEY_GROUP_STREAM, VOLLEY_STEER_FLOW),
             VOLLEY_STEER_FLOW);
    volley_conn *ln[2];
    for (int i = 0; i < 2; i++)
        T_OK(volley_listen_fd(l[i], &ln[i], fds[i], NULL, NULL));
    struct volley_addr to = fd_addr(fds[0]);
    int cl[CONNS], where[CONNS];
    bool echoed[CONNS] = {false};
    for (uint32_t i = 0; i < CONNS; i++) {
        cl[i] = tcp_client(&to, i);
        where[i] = -1;
    }
    static struct served pool[2 * CONNS];
    unsigned used = 0, accepted[2] = {0}, done = 0;
    for (long long end = t_now_ms() + 10000; done < CONNS && t_now_ms() < end;) {
        for (int k = 0; k < 2; k++)
            loop_turn(l[k], k, pool, &used, accepted, where);
        for (unsigned i = 0; i < CONNS; i++) {
            struct msg m;
            if (echoed[i] || recv(cl[i], &m, sizeof m, MSG_PEEK) != sizeof m)
                continue;
            T_EXPECT(recv(cl[i], &m, sizeof m, 0), sizeof m);
            T_CHECK(m.magic == MAGIC && m.flow == i, "client %u: echo of %u", i, m.flow);
            echoed[i] = true;
            done++;
        }
    }
    T_EXPECT(done, CONNS);
    T_EXPECT(accepted[0] + accepted[1], CONNS);
    for (unsigned i = 0; i < CONNS; i++)
        T_CHECK(where[i] >= 0, "client %u was never served", i);
    T_CHECK(accepted[0] > 0 && accepted[1] > 0, "accepted: %u and %u", accepted[0],
            accepted[1]);
    /* the steering the group was opened with holds for its connections */
    unsigned wrong = 0;
    for (unsigned i = 0; i < CONNS; i++) {
        struct volley_addr self = fd_addr(cl[i]);
        wrong += where[i] >= 0 && (unsigned)where[i] != flow_member(&self, 2);
    }
    T_CHECK(wrong == 0, "%u connections of %u not on the loop the hash names", wrong,
            CONNS);
    close_all(cl, CONNS);
    volley_loop_close(l[0], 1000);
    volley_loop_close(l[1], 1000);
    T_EXPECT(t_count_fds(), before);
    return 0;
}

/* ---- volley_listen_fd ---- */

static int tcp_listener(int family, bool listening)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    T_ASSERT(fd >= 0);
    struct volley_addr a = t_addr(family == AF_INET ? "127.0.0.1:0" : "[::1]:0");
    T_EXPECT(bind(fd, &a.sa, volley_addr_len(&a)), 0);
    if (listening)
        T_EXPECT(listen(fd, 16), 0);
    return fd;
}

/* A connection accepted from ln's address, a byte echoed through it. */
static void listen_serves(volley_loop *l, volley_conn *ln)
{
    struct volley_addr a;
    T_OK(volley_conn_addr(ln, &a, NULL));
    char to[64];
    T_OK(volley_addr_format(&a, to, sizeof to));
    volley_conn *c, *srv = NULL;
    T_OK(volley_dial(l, &c, to, NULL, 5000, NULL));
    bool connected = false, echoed = false;
    long long end = t_now_ms() + 5000;
    while (!echoed && t_now_ms() < end) {
        struct volley_event ev[8];
        int n = volley_loop_poll(l, ev, 8, 10);
        T_ASSERT(n >= 0);
        for (int i = 0; i < n; i++) {
            if (ev[i].type == VOLLEY_EV_ACCEPTED) {
                T_ASSERT(ev[i].listener == ln);
                srv = ev[i].conn;
            } else if (ev[i].type == VOLLEY_EV_CONNECTED && ev[i].conn == c) {
                connected = true;
                T_EXPECT(volley_conn_write(c, "x", 1), 1);
            } else if (ev[i].type == VOLLEY_EV_READABLE && ev[i].conn == srv) {
                char b;
                T_EXPECT(volley_conn_read(srv, &b, 1), 1);
                T_EXPECT(volley_conn_write(srv, &b, 1), 1);
            } else if (ev[i].type == VOLLEY_EV_READABLE && ev[i].conn == c) {
                char b = 0;
                T_EXPECT(volley_conn_read(c, &b, 1), 1);
                echoed = b == 'x';
            }
        }
    }
    T_ASSERT(connected && srv && echoed);
}

/* A blocking listening socket is adopted, made non-blocking, served, and
 * closed with the loop. */
static int case_listen_fd(void)
{
    int before = t_count_fds();
    volley_loop *l = loop_new();
    if (!l)
        return t_skip("uring loops do not open here");
    int families[2] = {AF_INET, AF_INET6};
    for (int f = 0; f < (ipv6_here() ? 2 : 1); f++) {
        int fd = tcp_listener(families[f], true);
        T_ASSERT(!(fcntl(fd, F_GETFL) & O_NONBLOCK));
        struct volley_addr bound = fd_addr(fd);
        volley_conn *ln;
        int user;
        T_OK(volley_listen_fd(l, &ln, fd, NULL, &user));
        T_ASSERT(volley_conn_user(ln) == &user);
        T_ASSERT(fcntl(fd, F_GETFL) & O_NONBLOCK);
        struct volley_addr a;
        T_OK(volley_conn_addr(ln, &a, NULL));
        T_CHECK(volley_addr_equal(&a, &bound), "listener on %s, bound to %s", t_fmt(&a),
                t_fmt(&bound));
        listen_serves(l, ln);
    }
    /* listen-time options are ignored, the others taken */
    struct volley_conn_opts o = VOLLEY_CONN_OPTS_INIT;
    o.flags = VOLLEY_CONN_REUSEPORT | VOLLEY_CONN_V6ONLY | VOLLEY_CONN_BACKLOG_ZERO;
    o.backlog = 3;
    o.sendq_max = 4096;
    volley_conn *ln;
    T_OK(volley_listen_fd(l, &ln, tcp_listener(AF_INET, true), &o, NULL));
    listen_serves(l, ln);
    volley_loop_close(l, 1000);
    T_EXPECT(t_count_fds(), before);
    return 0;
}

/* On failure the fd is still open and the caller's: the loop neither
 * closes it now nor later. */
static void refused(volley_loop *l, int fd, const struct volley_conn_opts *o, int want,
                    const char *what)
{
    volley_conn *c = (volley_conn *)&c;
    int r = volley_listen_fd(l, &c, fd, o, NULL);
    T_CHECK(r == want, "%s: %d (%s), want %s", what, r, volley_strerror(r),
            volley_strerror(want));
    T_CHECK(c == NULL, "%s: *out not cleared", what);
    if (fd >= 0)
        T_CHECK(fcntl(fd, F_GETFD) >= 0, "%s: the fd was closed", what);
}

static int case_listen_fd_bad(void)
{
    volley_loop *l = loop_new();
    if (!l)
        return t_skip("uring loops do not open here");
    struct volley_loop_stats s0, s1;
    T_OK(volley_loop_get_stats(l, &s0, sizeof s0));
    int good = tcp_listener(AF_INET, true);
    volley_conn *c;
    T_EXPECT(volley_listen_fd(NULL, &c, good, NULL, NULL), -EINVAL);
    T_EXPECT(volley_listen_fd(l, NULL, good, NULL, NULL), -EINVAL);
    refused(l, -1, NULL, -EBADF, "fd -1");
    int closed = dup(good);
    close(closed);
    c = NULL;
    T_EXPECT(volley_listen_fd(l, &c, closed, NULL, NULL), -EBADF);
    int fds[8], k = 0;
    int pipefd[2];
    T_EXPECT(pipe2(pipefd, O_CLOEXEC), 0);
    refused(l, fds[k++] = pipefd[0], NULL, -ENOTSOCK, "a pipe");
    fds[k++] = pipefd[1];
    refused(l, fds[k++] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), NULL,
            -EPROTOTYPE, "a UDP socket");
    refused(l, fds[k++] = tcp_listener(AF_INET, false), NULL, -EINVAL,
            "a TCP socket not listening");
    refused(l, fds[k++] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), NULL, -EINVAL,
            "a TCP socket never bound");
    /* (an AF_UNIX listener is served now: test_stream_unix) */
    /* options: checked as for volley_listen */
    struct volley_conn_opts o = VOLLEY_CONN_OPTS_INIT;
    o.flags = 0x80000000u;
    refused(l, good, &o, -EINVAL, "unknown flags");
    o = (struct volley_conn_opts)VOLLEY_CONN_OPTS_INIT;
    o.reserved[2] = 1;
    refused(l, good, &o, -EINVAL, "reserved set");
    o = (struct volley_conn_opts)VOLLEY_CONN_OPTS_INIT;
    o.size = 2;
    refused(l, good, &o, -EINVAL, "size too small");
    o = (struct volley_conn_opts)VOLLEY_CONN_OPTS_INIT;
    o.sendq_low = 1u << 20;
    refused(l, good, &o, -EINVAL, "sendq_low not below sendq_max");
    struct {
        struct volley_conn_opts o;
        uint32_t more;
    } big = {VOLLEY_CONN_OPTS_INIT, 1};
    big.o.size = sizeof big;
    refused(l, good, &big.o, -E2BIG, "an unknown non-zero tail");
    T_OK(volley_loop_get_stats(l, &s1, sizeof s1));
    T_EXPECT(s1.conns, s0.conns);
    /* a zero tail is fine, and the fd works after all those refusals */
    big.more = 0;
    volley_conn *ln;
    T_OK(volley_listen_fd(l, &ln, good, &big.o, NULL));
    listen_serves(l, ln);
    volley_loop_close(l, 0);
    T_CHECK(fcntl(good, F_GETFD) < 0, "the loop did not close the fd it owned");
    for (int i = 0; i < k; i++) {
        T_CHECK(fcntl(fds[i], F_GETFD) >= 0, "fd %d was closed by the loop", i);
        close(fds[i]);
    }
    return 0;
}

/* The members: non-blocking, close-on-exec, of the kind asked for, bound
 * to one address; a stream group's are listening. */
static int group_fds(void)
{
    static const unsigned kinds[] = {0, VOLLEY_GROUP_STREAM};
    for (size_t k = 0; k < T_COUNT(kinds); k++) {
        t_context("%s", kinds[k] ? "stream" : "datagram");
        int fds[3];
        group(fds, 3, "127.0.0.1:0", kinds[k], VOLLEY_STEER_FLOW);
        struct volley_addr a0 = fd_addr(fds[0]);
        T_CHECK(volley_addr_port(&a0) != 0, "port 0 was not replaced");
        for (int i = 0; i < 3; i++) {
            int type = 0, listening = 0, reuse = 0;
            socklen_t len = sizeof type;
            T_EXPECT(getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &type, &len), 0);
            len = sizeof listening;
            T_EXPECT(getsockopt(fds[i], SOL_SOCKET, SO_ACCEPTCONN, &listening, &len), 0);
            len = sizeof reuse;
            T_EXPECT(getsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &reuse, &len), 0);
            T_EXPECT(type, kinds[k] ? SOCK_STREAM : SOCK_DGRAM);
            T_EXPECT(listening, kinds[k] ? 1 : 0);
            T_EXPECT(reuse, 1);
            T_CHECK(fcntl(fds[i], F_GETFL) & O_NONBLOCK, "member %d blocks", i);
            T_CHECK(fcntl(fds[i], F_GETFD) & FD_CLOEXEC, "member %d not close-on-exec",
                    i);
            struct volley_addr a = fd_addr(fds[i]);
            T_CHECK(volley_addr_equal(&a, &a0), "member %d on %s, member 0 on %s", i,
                    t_fmt(&a), t_fmt(&a0));
        }
        close_all(fds, 3);
    }
    return 0;
}

/* Groups opened on port 0 never share a port: bound with SO_REUSEPORT the
 * kernel may hand a UDP socket the port of another reuseport socket of
 * this user, and two groups would then be one. */
static int port0_distinct(void)
{
    enum { GROUPS = 400 };
    static int fds[GROUPS];
    static uint16_t port[GROUPS];
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < GROUPS + 64)
        return t_skip("too few descriptors allowed");
    unsigned shared = 0;
    for (unsigned i = 0; i < GROUPS; i++) {
        group(&fds[i], 1, "127.0.0.1:0", 0, VOLLEY_STEER_KERNEL);
        struct volley_addr a = fd_addr(fds[i]);
        port[i] = volley_addr_port(&a);
        for (unsigned k = 0; k < i; k++)
            shared += port[k] == port[i];
    }
    close_all(fds, GROUPS);
    T_EXPECT(shared, 0);
    return 0;
}

/* ---- bad input ---- */

/* volley_group_open refuses: the errno, fds untouched, nothing open. */
static void open_refused(unsigned n, const char *addr, const struct volley_group_opts *o,
                         int want, const char *what)
{
    int fds[VOLLEY_GROUP_MAX + 1];
    for (unsigned i = 0; i < T_COUNT(fds); i++)
        fds[i] = -7;
    int before = t_count_fds();
    int r = volley_group_open(fds, n, addr, o);
    T_CHECK(r == want, "%s: %d (%s), want %s", what, r, volley_strerror(r),
            volley_strerror(want));
    if (r >= 0)
        close_all(fds, n);
    T_CHECK(t_count_fds() == before, "%s: descriptors left open", what);
}

static int group_open_bad(void)
{
    struct volley_group_opts o = VOLLEY_GROUP_OPTS_INIT;
    int fds[2];
    T_EXPECT(volley_group_open(NULL, 1, "127.0.0.1:0", NULL), -EINVAL);
    open_refused(1, NULL, NULL, -EINVAL, "addr NULL");
    open_refused(0, "127.0.0.1:0", NULL, -EINVAL, "n 0");
    open_refused(VOLLEY_GROUP_MAX + 1, "127.0.0.1:0", NULL, -EINVAL, "n over the max");
    open_refused(2, "127.0.0.1", NULL, -EINVAL, "no port");
    open_refused(2, "localhost:80", NULL, -EINVAL, "a name");
    open_refused(2, "", NULL, -EINVAL, "empty");
    o.flags = 0x4;
    open_refused(2, "127.0.0.1:0", &o, -EINVAL, "unknown flags");
    o = (struct volley_group_opts)VOLLEY_GROUP_OPTS_INIT;
    o.steer = 3;
    open_refused(2, "127.0.0.1:0", &o, -EINVAL, "unknown steering");
    o = (struct volley_group_opts)VOLLEY_GROUP_OPTS_INIT;
    o.flags = VOLLEY_GROUP_STREAM;
    o.backlog = 65536;
    open_refused(2, "127.0.0.1:0", &o, -EINVAL, "backlog over 65535");
    for (unsigned i = 0; i < T_COUNT(o.reserved); i++) {
        o = (struct volley_group_opts)VOLLEY_GROUP_OPTS_INIT;
        o.reserved[i] = 1;
        open_refused(2, "127.0.0.1:0", &o, -EINVAL, "reserved set");
    }
    o = (struct volley_group_opts)VOLLEY_GROUP_OPTS_INIT;
    o.size = 3;
    open_refused(2, "127.0.0.1:0", &o, -EINVAL, "size too small");
    struct {
        struct volley_group_opts o;
        uint32_t more;
    } big = {VOLLEY_GROUP_OPTS_INIT, 1};
    big.o.size = sizeof big;
    open_refused(2, "127.0.0.1:0", &big.o, -E2BIG, "an unknown non-zero tail");
    big.more = 0;
    T_EXPECT(volley_group_open(fds, 2, "127.0.0.1:0", &big.o), VOLLEY_STEER_FLOW);
    close_all(fds, 2);
    /* the largest backlog and group, and NULL options, are fine */
    o = (struct volley_group_opts)VOLLEY_GROUP_OPTS_INIT;
    o.flags = VOLLEY_GROUP_STREAM;
    o.backlog = 65535;
    T_EXPECT(volley_group_open(fds, 2, "127.0.0.1:0", &o), VOLLEY_STEER_FLOW);
    close_all(fds, 2);
    int many[VOLLEY_GROUP_MAX];
    T_EXPECT(volley_group_open(many, VOLLEY_GROUP_MAX, "127.0.0.1:0", NULL),
             VOLLEY_STEER_FLOW);
    close_all(many, VOLLEY_GROUP_MAX);
    return 0;
}

/* A port held by a socket outside the group: -EADDRINUSE, nothing open. */
static void taken(int type, int reuseport, unsigned flags, const char *what)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    T_ASSERT(fd >= 0);
    T_EXPECT(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &reuseport, sizeof reuseport), 0);
    struct volley_addr a = t_addr("127.0.0.1:0");
    T_EXPECT(bind(fd, &a.sa, volley_addr_len(&a)), 0);
    if (type == SOCK_STREAM)
        T_EXPECT(listen(fd, 4), 0);
    a = fd_addr(fd);
    char s[64];
    T_OK(volley_addr_format(&a, s, sizeof s));
    struct volley_group_opts o = VOLLEY_GROUP_OPTS_INIT;
    o.flags = flags;
    open_refused(3, s, &o, -EADDRINUSE, what);
    close(fd);
}

static int group_open_taken(void)
{
    taken(SOCK_DGRAM, 0, 0, "a UDP socket without SO_REUSEPORT");
    taken(SOCK_STREAM, 0, VOLLEY_GROUP_STREAM, "a TCP listener without SO_REUSEPORT");
    taken(SOCK_DGRAM, 1, 0, "a UDP socket with SO_REUSEPORT outside the group");
    taken(SOCK_STREAM, 1, VOLLEY_GROUP_STREAM,
          "a TCP listener with SO_REUSEPORT outside the group");
    /* a group on the port of another group */
    int fds[2];
    group(fds, 2, "127.0.0.1:0", 0, VOLLEY_STEER_FLOW);
    struct volley_addr a = fd_addr(fds[0]);
    char s[64];
    T_OK(volley_addr_format(&a, s, sizeof s));
    open_refused(2, s, NULL, -EADDRINUSE, "the port of another group");
    close_all(fds, 2);
    return 0;
}

static int steer_leave_bad(void)
{
    int fds[3], keep[3];
    group(fds, 3, "127.0.0.1:0", 0, VOLLEY_STEER_FLOW);
    memcpy(keep, fds, sizeof fds);
    T_EXPECT(volley_group_steer(NULL, 3, VOLLEY_STEER_FLOW), -EINVAL);
    T_EXPECT(volley_group_steer(fds, 0, VOLLEY_STEER_FLOW), -EINVAL);
    T_EXPECT(volley_group_steer(fds, VOLLEY_GROUP_MAX + 1, VOLLEY_STEER_FLOW), -EINVAL);
    T_EXPECT(volley_group_steer(fds, 3, 3), -EINVAL);
    T_EXPECT(volley_group_leave(NULL, 3, 0, VOLLEY_STEER_FLOW), -EINVAL);
    T_EXPECT(volley_group_leave(fds, 1, 0, VOLLEY_STEER_FLOW), -EINVAL);
    T_EXPECT(volley_group_leave(fds, 0, 0, VOLLEY_STEER_FLOW), -EINVAL);
    T_EXPECT(volley_group_leave(fds, VOLLEY_GROUP_MAX + 1, 0, VOLLEY_STEER_FLOW),
             -EINVAL);
    T_EXPECT(volley_group_leave(fds, 3, 3, VOLLEY_STEER_FLOW), -EINVAL);
    T_EXPECT(volley_group_leave(fds, 3, 1, VOLLEY_STEER_KERNEL), -EINVAL);
    T_EXPECT(volley_group_leave(fds, 3, 1, 3), -EINVAL);
    int bad[3] = {fds[0], -1, fds[2]};
    T_EXPECT(volley_group_steer(bad, 3, VOLLEY_STEER_CPU), -EBADF);
    T_EXPECT(volley_group_leave(bad, 3, 0, VOLLEY_STEER_CPU), -EBADF);
    bad[1] = dup(fds[1]);
    close(bad[1]);
    T_EXPECT(volley_group_steer(bad, 3, VOLLEY_STEER_CPU), -EBADF);
    T_EXPECT(volley_group_leave(bad, 3, 0, VOLLEY_STEER_CPU), -EBADF);
    T_EXPECT(memcmp(bad, (int[3]){fds[0], bad[1], fds[2]}, sizeof bad), 0);
    T_EXPECT(memcmp(fds, keep, sizeof fds), 0);
    /* and on the group itself every steering takes */
    T_EXPECT(volley_group_steer(fds, 3, VOLLEY_STEER_CPU), VOLLEY_STEER_CPU);
    T_EXPECT(volley_group_steer(fds, 3, VOLLEY_STEER_KERNEL), VOLLEY_STEER_KERNEL);
    T_EXPECT(volley_group_steer(fds, 3, VOLLEY_STEER_KERNEL), VOLLEY_STEER_KERNEL);
    T_EXPECT(volley_group_steer(fds, 3, VOLLEY_STEER_FLOW), VOLLEY_STEER_FLOW);
    T_EXPECT(volley_group_leave(fds, 3, 0, VOLLEY_STEER_FLOW), 0);
    T_EXPECT(fds[0], keep[2]);
    T_EXPECT(fds[2], keep[0]);
    close_all(fds, 3);
    return 0;
}

/* ---- faults ---- */

/* A kernel that refuses the program: the group opens on the kernel's hash
 * and delivers everything; steer and leave report the refusal and change
 * nothing; volley_probe says why. */
static int program_refused(void)
{
    int fds[4], keep[4];
    refuse_program();
    T_EXPECT(volley_group_open(fds, 4, "127.0.0.1:0", NULL), VOLLEY_STEER_KERNEL);
    T_EXPECT(volley__sys_count(VOLLEY__SYS_SETSOCKOPT), 1);
    memcpy(keep, fds, sizeof fds);
    T_EXPECT(volley_group_steer(fds, 4, VOLLEY_STEER_CPU), -EPERM);
    T_EXPECT(volley_group_leave(fds, 4, 1, VOLLEY_STEER_FLOW), -EPERM);
    T_EXPECT(memcmp(fds, keep, sizeof fds), 0);
    unsigned hit[4] = {0};
    flows_once(&(struct flowrun){"127.0.0.1:0", "127.0.0.1", VOLLEY_STEER_KERNEL, 4}, fds,
               0, hit);
    close_all(fds, 4);
    struct volley_caps c;
    T_OK(volley_probe(&c, sizeof c));
    T_EXPECT(c.reuseport_steer.ok, 0);
    T_EXPECT(c.reuseport_steer.err, -EPERM);
    T_CHECK(c.reuseport_steer.why && *c.reuseport_steer.why, "no why");
    volley__sys_fault_clear();
    T_OK(volley_probe(&c, sizeof c));
    T_EXPECT(c.reuseport_steer.ok, 1);
    T_EXPECT(c.reuseport_steer.err, 0);
    T_CHECK(c.reuseport_steer.why && *c.reuseport_steer.why, "no why");
    /* a refused change keeps the steering the group had */
    T_EXPECT(group(fds, 4, "127.0.0.1:0", 0, VOLLEY_STEER_FLOW), VOLLEY_STEER_FLOW);
    refuse_program();
    T_EXPECT(volley_group_steer(fds, 4, VOLLEY_STEER_CPU), -EPERM);
    T_EXPECT(volley_group_leave(fds, 4, 0, VOLLEY_STEER_CPU), -EPERM);
    volley__sys_fault_clear();
    memset(hit, 0, sizeof hit);
    flows_once(&(struct flowrun){"127.0.0.1:0", "127.0.0.1", VOLLEY_STEER_FLOW, 4}, fds,
               0, hit);
    close_all(fds, 4);
    return 0;
}

struct open_fault {
    enum volley__sysop op;
    const char *name;
    int err;
};

/* Each call of op that volley_group_open makes, failed in turn: its error
 * and nothing open, but for the program's setsockopt (the last one), whose
 * refusal leaves the kernel's hash. */
static void open_faults(const char *addr, unsigned flags, const struct open_fault *f)
{
    struct volley_group_opts o = VOLLEY_GROUP_OPTS_INIT;
    o.flags = flags;
    int fds[3];
    volley__sys_fault_set(f->op, 1u << 30, 1, f->err, 0); /* only counts */
    T_EXPECT(volley_group_open(fds, 3, addr, &o), VOLLEY_STEER_FLOW);
    unsigned long total = volley__sys_count(f->op);
    volley__sys_fault_clear();
    close_all(fds, 3);
    if (total == 0)
        printf("  %s%s: no %s call\n", addr, flags ? " stream" : "", f->name);
    for (unsigned nth = 1; nth <= total; nth++) {
        t_context("%s%s: %s call %u of %lu failing with %s", addr, flags ? " stream" : "",
                  f->name, nth, total, strerror(f->err));
        int want = f->op == VOLLEY__SYS_SETSOCKOPT && nth == total
                       ? (int)VOLLEY_STEER_KERNEL
                       : -f->err;
        int before = t_count_fds();
        volley__sys_fault_set(f->op, nth, 1, f->err, 0);
        int r = volley_group_open(fds, 3, addr, &o);
        volley__sys_fault_clear();
        T_EXPECT(r, want);
        if (r >= 0)
            close_all(fds, 3);
        T_EXPECT(t_count_fds(), before);
    }
}

static int case_open_faults(void)
{
    static const struct open_fault ops[] = {
        {VOLLEY__SYS_SOCKET, "socket", EMFILE},
        {VOLLEY__SYS_SETSOCKOPT, "setsockopt", ENOMEM},
        {VOLLEY__SYS_BIND, "bind", EACCES},
        {VOLLEY__SYS_LISTEN, "listen", EADDRINUSE},
        {VOLLEY__SYS_GETSOCKNAME, "getsockname", ENOBUFS},
    };
    for (size_t i = 0; i < T_COUNT(ops); i++) {
        open_faults("127.0.0.1:0", 0, &ops[i]);
        open_faults("127.0.0.1:0", VOLLEY_GROUP_STREAM, &ops[i]);
        if (ipv6_here()) {
            open_faults("[::1]:0", 0, &ops[i]);
            open_faults("[::]:0", VOLLEY_GROUP_STREAM, &ops[i]);
        }
    }
    return 0;
}

/* ---- the cases ---- */

static const struct t_case base_cases[] = {
    T_CASE(flow_ipv4),
    T_CASE(flow_ipv6),
    T_CASE(kernel_ipv4),
    T_CASE(kernel_ipv6),
    T_CASE(dual_stack),
    T_CASE(v6only),
    T_CASE(cpu_steer),
    T_CASE(cpu_steer_no_program),
    T_CASE(leave_flow),
    T_CASE(group_fds),
    T_CASE(port0_distinct),
    T_CASE(leave_cpu),
    T_CASE(churn_flow),
    T_CASE(churn_cpu),
    T_CASE(group_open_bad),
    T_CASE(group_open_taken),
    T_CASE(steer_leave_bad),
    T_CASE(program_refused),
    {.name = "open_faults", .fn = case_open_faults},
};

/* Run on each loop backend, as "uring/NAME" and "epoll/NAME". */
static const struct t_loop_case loop_cases[] = {
    {"stream_group", case_stream_group},
    {"listen_fd", case_listen_fd},
    {"listen_fd_bad", case_listen_fd_bad},
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    unsetenv("VOLLEY_BACKEND");
    unsetenv("VOLLEY_DISABLE");
    struct t_run how = {.flags = T_FORK, .case_s = 60, .total_s = 280};
    return t_main_mixed(base_cases, T_COUNT(base_cases), loop_cases, T_COUNT(loop_cases),
                        &how, argc, argv);
}
