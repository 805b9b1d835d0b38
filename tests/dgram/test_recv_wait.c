/* SPDX-License-Identifier: MIT */
/* volley_recv_wait on every backend, and on wrapped sockets (left
 * non-blocking): it returns what is waiting at once, sleeps until
 * datagrams come, gives 0 when its time runs out or a signal interrupts
 * it (its handler installed with SA_RESTART or not), never sleeps with
 * timeout 0, sets SO_RCVTIMEO once for a repeated timeout, and refuses bad
 * arguments. It never asserts how long a wait
 * took: only that it returned, and what. */
#include "dgram/dgram.h"
#include "t.h"

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

/* A sender on one socket and a receiver on another, of backend be (pair:
 * the two ends of a pair); wrap: the receiver is a wrapped UDP socket. */
struct duo {
    volley_sock *tx, *rx;
    struct volley_addr to;
};

static void duo_open(struct duo *u, unsigned be, bool wrap)
{
    struct volley_opts o = t_opts(be);
    struct volley_addr back;
    if (!wrap) {
        t_socks(&o, "127.0.0.1:0", &u->tx, &u->rx, &u->to, &back);
        return;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct volley_addr lo = t_addr("127.0.0.1:0");
    T_ASSERT(fd >= 0 && bind(fd, &lo.sa, volley_addr_len(&lo)) == 0);
    T_OK(volley_wrap(&u->rx, fd, &o));
    T_OK(volley_open(&u->tx, "127.0.0.1:0", &o));
    u->to = t_local(u->rx);
}

static void duo_close(struct duo *u)
{
    volley_close(u->tx);
    volley_close(u->rx);
}

static void send_one(struct duo *u, uint8_t byte)
{
    static uint8_t b;
    b = byte;
    struct volley_dgram d = {.data = &b, .len = 1, .peer = u->to};
    T_EQ(t_send_all(u->tx, &d, 1, 1000), 1);
}

/* Datagrams waiting come back at once, whatever the timeout; with nothing
 * waiting the call comes back empty, and timeout 0 never sleeps. */
static void waiting_and_empty(struct duo *u)
{
    struct volley_dgram d[4];
    T_EXPECT(volley_recv_wait(u->rx, d, 4, 0), 0);
    T_EXPECT(volley_recv_wait(u->rx, d, 4, 20), 0);
    send_one(u, 7);
    int r = 0;
    for (int i = 0; i < 50 && r == 0; i++)
        r = volley_recv_wait(u->rx, d, 4, 100);
    T_EQ(r, 1);
    T_EQ(*(uint8_t *)d[0].data, 7);
    T_EXPECT(volley_recv_wait(u->rx, d, 4, 0), 0);
}

struct later {
    struct duo *u;
    unsigned delay_ms;
};

static void *send_later(void *arg)
{
    struct later *l = arg;
    usleep(l->delay_ms * 1000);
    send_one(l->u, 9);
    return NULL;
}

/* A receiver asleep with no limit wakes for a datagram sent meanwhile. */
static void sleeps_until_sent(struct duo *u)
{
    struct later l = {u, 50};
    pthread_t t;
    T_ASSERT(pthread_create(&t, NULL, send_later, &l) == 0);
    struct volley_dgram d[4];
    int r = 0;
    for (int i = 0; i < 5 && r == 0; i++) /* 0 is allowed: callers loop */
        r = volley_recv_wait(u->rx, d, 4, -1);
    pthread_join(t, NULL);
    T_EQ(r, 1);
    T_EQ(*(uint8_t *)d[0].data, 9);
}

/* arg: whether the receiver is a wrapped socket */
static int per_backend(void)
{
    const struct t_case *c = t_current();
    struct duo u;
    duo_open(&u, c->backend, c->arg != NULL);
    waiting_and_empty(&u);
    sleeps_until_sent(&u);
    duo_close(&u);
    return 0;
}

/* A repeated timeout is set once: the receive itself is the only system
 * call of each further wait. */
static int case_timeout_set_once(void)
{
    struct duo u;
    duo_open(&u, VOLLEY_BACKEND_MMSG, false);
    struct volley_dgram d[4];
    /* the seam counts calls while something is armed: arm what never fires */
    volley__sys_fault_clear();
    volley__sys_fault_set(VOLLEY__SYS_CONNECT, 1000000, 1, EINVAL, 0);
    for (int i = 0; i < 3; i++)
        T_EXPECT(volley_recv_wait(u.rx, d, 4, 10), 0);
    T_EXPECT(volley__sys_count(VOLLEY__SYS_SETSOCKOPT), 1);
    T_EXPECT(volley__sys_count(VOLLEY__SYS_RECVMMSG), 3);
    T_EXPECT(volley_recv_wait(u.rx, d, 4, 11), 0);
    T_EXPECT(volley__sys_count(VOLLEY__SYS_SETSOCKOPT), 2);
    /* an interrupted sleep is an early return, not an error */
    volley__sys_fault_set(VOLLEY__SYS_RECVMMSG, 1, 1, EINTR, 0);
    T_EXPECT(volley_recv_wait(u.rx, d, 4, 10), 0);
    /* a failed SO_RCVTIMEO is the call's error */
    volley__sys_fault_set(VOLLEY__SYS_SETSOCKOPT, 1, 1, ENOMEM, 0);
    T_EXPECT(volley_recv_wait(u.rx, d, 4, 12), -ENOMEM);
    volley__sys_fault_clear();
    duo_close(&u);
    return 0;
}

static volatile sig_atomic_t signalled;

static void on_usr1(int sig)
{
    (void)sig;
    signalled = 1;
}

struct ringer {
    pthread_t waiter;
    struct duo *u;
    atomic_bool done;
};

/* Signal the waiter until it returns: a signal that comes before it sleeps
 * only runs the handler, so one is not enough, and how long it takes to
 * fall asleep does not matter. One that sleeps through 200 gets a datagram
 * instead, which the test sees as a failure. */
static void *ring(void *arg)
{
    struct ringer *r = arg;
    for (int i = 0; i < 200 && !atomic_load(&r->done); i++) {
        usleep(10000);
        if (!atomic_load(&r->done))
            pthread_kill(r->waiter, SIGUSR1);
    }
    if (!atomic_load(&r->done))
        send_one(r->u, 5);
    return NULL;
}

/* A signal ends a sleep without a limit, whether its handler asked the
 * kernel to restart interrupted calls (SA_RESTART, as signal(3) installs
 * it) or not: 0 comes back, not the datagram that would otherwise end it.
 * arg: SA_RESTART or not; the receiver of the case's backend, or a
 * wrapped mmsg socket for WRAPPED. */
#define WRAPPED 0x100u
static int case_signal(void)
{
    const struct t_case *c = t_current();
    int flags = *(const int *)c->arg;
    struct duo u;
    duo_open(&u, c->backend, flags & WRAPPED);
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = flags & SA_RESTART};
    T_ASSERT(sigaction(SIGUSR1, &sa, NULL) == 0);
    signalled = 0;
    struct ringer r = {.waiter = pthread_self(), .u = &u};
    pthread_t t;
    T_ASSERT(pthread_create(&t, NULL, ring, &r) == 0);
    struct volley_dgram d[4];
    int got = volley_recv_wait(u.rx, d, 4, -1);
    atomic_store(&r.done, true);
    pthread_join(t, NULL);
    T_EXPECT(got, 0);
    T_CHECK(signalled, "the handler never ran");
    duo_close(&u);
    return 0;
}

static int case_bad_input(void)
{
    struct duo u;
    duo_open(&u, VOLLEY_BACKEND_MMSG, false);
    struct volley_dgram d[2];
    T_EXPECT(volley_recv_wait(NULL, d, 1, 0), -EINVAL);
    T_EXPECT(volley_recv_wait(u.rx, NULL, 1, 0), -EINVAL);
    T_EXPECT(volley_recv_wait(u.rx, d, 0, 0), -EINVAL);
    T_EXPECT(volley_recv_wait(u.rx, d, VOLLEY_BATCH_MAX + 1, 0), -EINVAL);
    T_EXPECT(volley_recv_wait(u.rx, d, 1, -2), -EINVAL);
    T_EXPECT(volley_recv_wait(u.rx, d, 1, -1000), -EINVAL);
    duo_close(&u);
    return 0;
}

int main(int argc, char **argv)
{
    static const bool wrapped = true;
    static const int plain = 0, restart = SA_RESTART;
    static const int plain_wrapped = WRAPPED, restart_wrapped = SA_RESTART | WRAPPED;
    static const struct t_case cases[] = {
        {"scalar", per_backend, VOLLEY_BACKEND_SCALAR, NULL},
        {"mmsg", per_backend, VOLLEY_BACKEND_MMSG, NULL},
        {"uring", per_backend, VOLLEY_BACKEND_URING, NULL},
        {"pair", per_backend, VOLLEY_BACKEND_PAIR, NULL},
        {"wrapped mmsg", per_backend, VOLLEY_BACKEND_MMSG, &wrapped},
        {"wrapped uring", per_backend, VOLLEY_BACKEND_URING, &wrapped},
        {"timeout set once", case_timeout_set_once, VOLLEY_BACKEND_MMSG, NULL},
        {"signal scalar", case_signal, VOLLEY_BACKEND_SCALAR, &plain},
        {"signal SA_RESTART scalar", case_signal, VOLLEY_BACKEND_SCALAR, &restart},
        {"signal mmsg", case_signal, VOLLEY_BACKEND_MMSG, &plain},
        {"signal SA_RESTART mmsg", case_signal, VOLLEY_BACKEND_MMSG, &restart},
        {"signal uring", case_signal, VOLLEY_BACKEND_URING, &plain},
        {"signal SA_RESTART uring", case_signal, VOLLEY_BACKEND_URING, &restart},
        {"signal pair", case_signal, VOLLEY_BACKEND_PAIR, &plain},
        {"signal SA_RESTART pair", case_signal, VOLLEY_BACKEND_PAIR, &restart},
        {"signal xnu", case_signal, VOLLEY_BACKEND_XNU, &plain},
        {"signal SA_RESTART xnu", case_signal, VOLLEY_BACKEND_XNU, &restart},
        {"signal wrapped mmsg", case_signal, VOLLEY_BACKEND_MMSG, &plain_wrapped},
        {"signal SA_RESTART wrapped mmsg", case_signal, VOLLEY_BACKEND_MMSG,
         &restart_wrapped},
        {"signal wrapped uring", case_signal, VOLLEY_BACKEND_URING, &plain_wrapped},
        {"signal SA_RESTART wrapped uring", case_signal, VOLLEY_BACKEND_URING,
         &restart_wrapped},
        {"bad input", case_bad_input, VOLLEY_BACKEND_MMSG, NULL},
    };
    struct t_run how = {.flags = T_FORK, .case_s = 30, .total_s = 200};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
