#include "t.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

static const char *watch_name = "test";

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL: watchdog expired in ";
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, watch_name, strlen(watch_name));
    (void)!write(2, "\n", 1);
    _exit(1);
}

void t_watchdog(const char *name, unsigned seconds)
{
    watch_name = name;
    signal(SIGALRM, on_alarm);
    alarm(seconds);
}

unsigned t_backend(const char *name)
{
    if (!name)
        return VOLLEY_BACKEND_AUTO;
    int id = volley_backend_parse(name);
    if (id < 0)
        T_FAIL("unknown backend %s", name);
    return (unsigned)id;
}

struct volley_opts t_opts(unsigned backend)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.backend = backend;
    return o;
}

long long t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void t_socks(const struct volley_opts *o, const char *bind, volley_sock **a,
             volley_sock **b, struct volley_addr *to_b, struct volley_addr *to_a)
{
    if (o->backend == VOLLEY_BACKEND_PAIR) {
        T_OK(volley_pair(a, b, o));
        memset(to_b, 0, sizeof *to_b);
        memset(to_a, 0, sizeof *to_a);
        return;
    }
    int r = volley_open(a, bind, o);
    T_SKIP_IF(r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL, "address family unavailable");
    T_OK(r);
    T_OK(volley_open(b, bind, o));
    T_OK(volley_local_addr(*b, to_b));
    T_OK(volley_local_addr(*a, to_a));
}

unsigned t_recv_n(volley_sock *s, struct volley_dgram *d, unsigned want, uint8_t *store,
                  size_t stride, int timeout_ms)
{
    unsigned got = 0;
    long long deadline = t_now_ms() + timeout_ms;
    while (got < want && t_now_ms() < deadline) {
        unsigned ask = want - got > VOLLEY_BATCH_MAX ? VOLLEY_BATCH_MAX : want - got;
        int r = volley_recv(s, d + got, ask);
        if (r < 0)
            T_FAIL("volley_recv: %s", volley_strerror(r));
        if (r == 0) {
            volley_wait(s, VOLLEY_WAIT_RECV, 50);
            continue;
        }
        for (int i = 0; i < r; i++) {
            struct volley_dgram *x = &d[got + i];
            if (store) {
                size_t n = x->len < stride ? x->len : stride;
                memcpy(store + (size_t)(got + i) * stride, x->data, n);
                x->data = store + (size_t)(got + i) * stride;
            }
        }
        got += (unsigned)r;
        deadline = t_now_ms() + timeout_ms;
    }
    return got;
}

unsigned t_send_all(volley_sock *s, const struct volley_dgram *d, unsigned n,
                    int timeout_ms)
{
    unsigned done = 0;
    long long deadline = t_now_ms() + timeout_ms;
    while (done < n && t_now_ms() < deadline) {
        unsigned ask = n - done > VOLLEY_BATCH_MAX ? VOLLEY_BATCH_MAX : n - done;
        int r = volley_send(s, d + done, ask);
        if (r < 0)
            T_FAIL("volley_send: %s", volley_strerror(r));
        if (r == 0)
            volley_wait(s, VOLLEY_WAIT_SEND, 10);
        done += (unsigned)r;
    }
    return done;
}
