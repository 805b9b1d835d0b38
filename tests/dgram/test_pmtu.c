/* SPDX-License-Identifier: MIT */
/* Path MTU control (VOLLEY_F_DONTFRAG, volley_path_mtu) on every kernel
 * backend, IPv4 and IPv6, in a network namespace of the test's own whose
 * loopback MTU it sets to 1400: with the don't-fragment control on (the
 * default) a datagram larger than the path refuses with -EMSGSIZE and
 * one that fits goes; with it off the larger one leaves in fragments and
 * arrives whole; volley_path_mtu says 1400 either way.
 *
 * Needs root (to make the namespace): skips otherwise. All traffic stays
 * in the namespace. */
#include "t.h"

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define MTU 1400

/* This process in a network namespace of its own, its lo up with MTU:
 * false when that is not allowed here. */
static bool own_netns(void)
{
    if (unshare(CLONE_NEWNET) != 0)
        return false;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    ifr.ifr_mtu = MTU;
    bool ok = ioctl(fd, SIOCSIFMTU, &ifr) == 0;
    ok = ok && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    close(fd);
    return ok;
}

/* One family on one backend: len bytes to rx, with the control on or off;
 * returns what volley_send said. */
static int send_len(volley_sock *tx, const struct volley_addr *to, size_t len)
{
    static uint8_t buf[65536];
    memset(buf, 0x5a, len);
    struct volley_dgram d = {.data = buf, .len = len, .peer = *to};
    return volley_send(tx, &d, 1);
}

static int family_case(unsigned backend, const char *bind, size_t header)
{
    struct volley_opts o = t_opts(backend);
    volley_sock *tx, *rx;
    struct volley_addr to_rx, to_tx;
    t_socks(&o, bind, &tx, &rx, &to_rx, &to_tx);
    T_SKIP_IF(!(volley_features(tx) & VOLLEY_F_DONTFRAG),
              "the kernel refused the don't-fragment control");
    T_EXPECT(volley_path_mtu(tx, &to_rx), MTU);
    T_EXPECT(volley_path_mtu(tx, NULL), -ENOTCONN);
    /* on: the largest that fits goes, one more byte does not */
    T_EXPECT(send_len(tx, &to_rx, MTU - header), 1);
    T_EXPECT(send_len(tx, &to_rx, MTU - header + 1), -EMSGSIZE);
    struct volley_dgram in[4];
    static uint8_t copy[4 * 65536];
    T_EXPECT(t_recv_n(rx, in, 1, copy, 65536, 2000), 1);
    T_EXPECT(in[0].len, MTU - header);
    T_ASSERT(t_stats(tx).err_msgsize >= 1);
    volley_close(tx);

    /* with error reports on, the refusal is queued too, with the MTU, as
     * an ICMP "fragmentation needed" from further on would be: a wait
     * takes it in (POLLERR), and volley_errors hands it over */
    o.enable = VOLLEY_F_RECVERR;
    T_ASSERT(t_open(&tx, bind, &o));
    if (volley_features(tx) & VOLLEY_F_RECVERR) {
        T_EXPECT(send_len(tx, &to_rx, MTU - header + 1), -EMSGSIZE);
        struct volley_sockerr e[4];
        int n = 0;
        for (int i = 0; i < 50 && n == 0; i++) {
            T_ASSERT(volley_wait(tx, VOLLEY_WAIT_SEND, 100) >= 0);
            n = volley_errors(tx, e, 4);
        }
        T_ASSERT(n >= 1);
        T_EXPECT(e[0].error, -EMSGSIZE);
        T_EXPECT(e[0].info, MTU);
    }
    volley_close(tx);
    o.enable = 0;

    /* off: the larger one leaves in fragments and arrives whole */
    o.disable = VOLLEY_F_DONTFRAG;
    T_ASSERT(t_open(&tx, bind, &o));
    T_ASSERT(!(volley_features(tx) & VOLLEY_F_DONTFRAG));
    T_EXPECT(volley_path_mtu(tx, &to_rx), MTU);
    T_EXPECT(send_len(tx, &to_rx, 3000), 1);
    T_EXPECT(t_recv_n(rx, in, 1, copy, 65536, 2000), 1);
    T_EXPECT(in[0].len, 3000);
    volley_close(tx);
    volley_close(rx);
    return 0;
}

static int v4(void)
{
    return family_case(t_current()->backend, "127.0.0.1:0", 28);
}

static int v6(void)
{
    return family_case(t_current()->backend, "[::1]:0", 48);
}

static int bad_input(void)
{
    struct volley_opts o = t_opts(VOLLEY_BACKEND_PAIR);
    volley_sock *a, *b;
    T_OK(volley_pair(&a, &b, &o));
    struct volley_addr p = t_addr("127.0.0.1:9");
    T_EXPECT(volley_path_mtu(NULL, &p), -EINVAL);
    T_EXPECT(volley_path_mtu(a, &p), -ENOTSUP);
    volley_close(a);
    volley_close(b);
    o = t_opts(VOLLEY_BACKEND_SCALAR);
    T_ASSERT(t_open(&a, "127.0.0.1:0", &o));
    struct volley_addr v6 = t_addr("[::1]:9"), none;
    memset(&none, 0, sizeof none);
    T_EXPECT(volley_path_mtu(a, &v6), -EAFNOSUPPORT);
    T_EXPECT(volley_path_mtu(a, &none), -EINVAL);
    volley_close(a);
    return 0;
}

int main(int argc, char **argv)
{
    if (!own_netns()) {
        printf("skip: cannot make a network namespace with its own MTU (not root?)\n");
        return T_SKIP;
    }
    static const struct t_case cases[] = {
        {"v4/scalar", v4, VOLLEY_BACKEND_SCALAR, NULL},
        {"v4/mmsg", v4, VOLLEY_BACKEND_MMSG, NULL},
        {"v4/uring", v4, VOLLEY_BACKEND_URING, NULL},
        {"v6/scalar", v6, VOLLEY_BACKEND_SCALAR, NULL},
        {"v6/mmsg", v6, VOLLEY_BACKEND_MMSG, NULL},
        {"v6/uring", v6, VOLLEY_BACKEND_URING, NULL},
        {"bad_input", bad_input, 0, NULL},
    };
    struct t_run how = {.flags = T_FORK, .case_s = 30, .total_s = 120};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
