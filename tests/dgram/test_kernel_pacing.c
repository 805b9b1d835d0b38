/* SPDX-License-Identifier: MIT */
/* Kernel pacing (VOLLEY_PACE_KERNEL, SO_MAX_PACING_RATE) is only enforced
 * by the fq qdisc, which loopback does not use. So this test builds its
 * own network: a private namespace for the sender, a second one for the
 * receiver, a veth pair between them and fq on the sender's end. It needs
 * root and iproute2; without them it skips (77).
 *
 * The assertion is the feature itself, with generous bounds: paced, the
 * receiver sees no more than 1.15x the rate; unpaced, the same link
 * carries far more, so the limit really came from pacing. */
#include "t.h"

#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RATE_BPS 20000000ull /* 20 Mbit/s */
#define SIZE     1200
#define RUN_MS   1500

static char peer_ns[64];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int r = system(cmd);
    return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static void cleanup(void)
{
    if (peer_ns[0])
        sh("ip netns del %s 2>/dev/null", peer_ns);
}

/* Sender side in our own fresh namespace, receiver side in peer_ns.
 * Returns NULL when ready, else why it cannot be built here. */
static const char *build_network(void)
{
    if (geteuid() != 0)
        return "needs root";
    if (unshare(CLONE_NEWNET) != 0)
        return "cannot create a network namespace";
    snprintf(peer_ns, sizeof peer_ns, "volley-pace-%d", (int)getpid());
    atexit(cleanup);
    if (sh("ip netns add %s", peer_ns) != 0 ||
        sh("ip link add vly0 type veth peer name vly1 netns %s", peer_ns) != 0 ||
        sh("ip addr add 10.201.0.1/24 dev vly0 && ip link set vly0 up") != 0 ||
        sh("ip -n %s addr add 10.201.0.2/24 dev vly1", peer_ns) != 0 ||
        sh("ip -n %s link set vly1 up && ip -n %s link set lo up", peer_ns, peer_ns) != 0)
        return "cannot build a veth pair between namespaces (iproute2 missing?)";
    if (sh("tc qdisc replace dev vly0 root fq") != 0)
        return "this kernel has no fq qdisc";
    return NULL;
}

/* Open the receiver inside peer_ns; the socket stays there afterwards. */
static volley_sock *open_receiver(void)
{
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", peer_ns);
    int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int there = open(path, O_RDONLY | O_CLOEXEC);
    T_ASSERT(home >= 0 && there >= 0);
    T_ASSERT(setns(there, CLONE_NEWNET) == 0);
    struct volley_opts o = t_opts(VOLLEY_BACKEND_AUTO);
    o.rcvbuf = 8 << 20;
    volley_sock *rx;
    int r = volley_open(&rx, "10.201.0.2:7000", &o);
    T_ASSERT(setns(home, CLONE_NEWNET) == 0);
    close(home);
    close(there);
    T_OK(r);
    return rx;
}

struct sink {
    volley_sock *s;
    atomic_bool stop;
    uint64_t dgrams;
    long long first_ms, last_ms;
};

static void *sink_run(void *arg)
{
    struct sink *k = arg;
    struct volley_dgram d[256];
    long long deadline = t_now_ms() + RUN_MS + 3000;
    while (!atomic_load(&k->stop) && t_now_ms() < deadline) {
        int n = volley_recv(k->s, d, 256);
        if (n <= 0) {
            volley_wait(k->s, VOLLEY_WAIT_RECV, 20);
            continue;
        }
        long long now = t_now_ms();
        if (!k->dgrams)
            k->first_ms = now;
        k->last_ms = now;
        k->dgrams += (uint64_t)n;
    }
    return NULL;
}

/* Blast for RUN_MS; returns the rate the receiver saw (wire bits/s). */
static double measure(volley_sock *rx, unsigned flags)
{
    struct volley_opts o = t_opts(VOLLEY_BACKEND_AUTO);
    o.disable = VOLLEY_F_GSO; /* one skb per datagram through fq */
    o.pace_rate_bps = flags ? RATE_BPS : 0;
    o.pace_flags = flags;
    volley_sock *tx;
    T_OK(volley_open(&tx, "10.201.0.1:0", &o));
    struct sink k = {.s = rx};
    pthread_t th;
    T_ASSERT(pthread_create(&th, NULL, sink_run, &k) == 0);
    static uint8_t buf[SIZE];
    struct volley_dgram d[64];
    for (int i = 0; i < 64; i++) {
        d[i] = (struct volley_dgram){.data = buf, .len = SIZE};
        T_OK(volley_addr_parse(&d[i].peer, "10.201.0.2:7000"));
    }
    long long end = t_now_ms() + RUN_MS;
    while (t_now_ms() < end) {
        int n = volley_send(tx, d, 64);
        T_ASSERT(n >= 0);
        if (n < 64)
            volley_wait(tx, VOLLEY_WAIT_SEND, 20);
    }
    usleep(300 * 1000); /* what fq still holds drains at the rate */
    atomic_store(&k.stop, true);
    pthread_join(th, NULL);
    volley_close(tx);
    struct volley_dgram drain[256];
    while (volley_recv(rx, drain, 256) > 0)
        ;
    T_ASSERT(k.dgrams > 10 && k.last_ms > k.first_ms);
    double secs = (double)(k.last_ms - k.first_ms) / 1000.0;
    return (double)(k.dgrams - 1) * (SIZE + 28) * 8 / secs;
}

static int rate_under_fq(void)
{
    const char *why = build_network();
    if (why)
        return t_skip("%s", why);
    volley_sock *rx = open_receiver();
    double paced = measure(rx, VOLLEY_PACE_KERNEL);
    double free_run = measure(rx, 0);
    printf(
        "kernel pacing at %.0f Mbit/s: receiver saw %.2f Mbit/s; unpaced %.2f Mbit/s\n",
        RATE_BPS / 1e6, paced / 1e6, free_run / 1e6);
    T_ASSERT(paced <= RATE_BPS * 1.15);
    T_ASSERT(paced >= RATE_BPS * 0.5);
    T_ASSERT(free_run > paced * 3);
    volley_close(rx);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {T_CASE(rate_under_fq)};
    struct t_run how = {.total_s = 60};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
