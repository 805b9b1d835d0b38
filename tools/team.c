/* SPDX-License-Identifier: MIT */
/*
 * --threads: starting, pinning and joining the threads of a command.
 */
#include "team.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define NAP_NS (50 * NS_PER_MS)

/* The i-th CPU this process may run on, modulo their number; -1 when the
 * set cannot be read. */
static int nth_cpu(const cpu_set_t *allowed, unsigned i)
{
    int count = CPU_COUNT(allowed), k;

    if (count <= 0)
        return -1;
    k = (int)(i % (unsigned)count);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, allowed) && k-- == 0)
            return cpu;
    return -1;
}

int team_init(struct team *t, unsigned n, bool pin)
{
    cpu_set_t allowed;
    bool have = pin && sched_getaffinity(0, sizeof(allowed), &allowed) == 0;

    memset(t, 0, sizeof(*t));
    t->n = n;
    for (unsigned i = 0; i < n; i++)
        t->cpu[i] = have ? nth_cpu(&allowed, i) : -1;
    t->pub = aligned_alloc(_Alignof(struct team_pub), n * sizeof(*t->pub));
    if (!t->pub)
        return -ENOMEM;
    memset(t->pub, 0, n * sizeof(*t->pub));
    atomic_store(&cli_halt, false);
    return 0;
}

static int start_one(struct team *t, unsigned i, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);

    if (err)
        return -err;
    if (t->cpu[i] >= 0) {
        cpu_set_t one;

        CPU_ZERO(&one);
        CPU_SET(t->cpu[i], &one);
        err = pthread_attr_setaffinity_np(&attr, sizeof(one), &one);
    }
    if (err == 0)
        err = pthread_create(&t->tid[i], &attr, fn, arg);
    pthread_attr_destroy(&attr);
    t->started[i] = err == 0;
    return -err;
}

int team_start(struct team *t, void *(*fn)(void *), void *arg, size_t stride)
{
    sigset_t block, old;
    int err = 0;

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (unsigned i = 0; i < t->n && err == 0; i++)
        err = start_one(t, i, fn, (char *)arg + i * stride);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err < 0)
        atomic_store(&cli_halt, true);
    return err;
}

void team_join(struct team *t)
{
    for (unsigned i = 0; i < t->n; i++)
        if (t->started[i])
            pthread_join(t->tid[i], NULL);
    free(t->pub);
    t->pub = NULL;
}

void team_nap(int64_t until)
{
    int64_t left = until - cli_mono_ns();
    struct timespec ts;

    if (left <= 0)
        return;
    if (left > NAP_NS)
        left = NAP_NS;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)left;
    nanosleep(&ts, NULL); /* EINTR: a signal, seen by the caller */
}

uint64_t team_sum(const struct team *t, unsigned i)
{
    uint64_t sum = 0;

    for (unsigned k = 0; k < t->n; k++)
        sum += team_get(&t->pub[k], i);
    return sum;
}

uint64_t team_max(const struct team *t, unsigned i)
{
    uint64_t max = 0;

    for (unsigned k = 0; k < t->n; k++) {
        uint64_t v = team_get(&t->pub[k], i);

        if (v > max)
            max = v;
    }
    return max;
}

void team_json_cpu(const struct team *t, unsigned i)
{
    if (t->cpu[i] >= 0)
        printf(",\"thread\":%u,\"cpu\":%d", i, t->cpu[i]);
    else
        printf(",\"thread\":%u,\"cpu\":null", i);
}

const char *team_steer_name(unsigned steer)
{
    static const char *const names[] = {[VOLLEY_STEER_FLOW] = "flow",
                                        [VOLLEY_STEER_CPU] = "cpu",
                                        [VOLLEY_STEER_KERNEL] = "kernel"};

    return steer < sizeof(names) / sizeof(names[0]) ? names[steer] : "?";
}

void team_steer_note(unsigned asked, int got)
{
    if (got >= 0 && (unsigned)got != asked)
        fprintf(stderr,
                "%s: warning: --steer %s was refused by the kernel; steering is %s\n",
                cli_name, team_steer_name(asked), team_steer_name((unsigned)got));
}

void team_ready(struct team *t, unsigned i, int err)
{
    atomic_store_explicit(&t->state[i], err < 0 ? err : 1, memory_order_release);
}

void team_done(struct team *t, unsigned i)
{
    atomic_store_explicit(&t->state[i], 2, memory_order_release);
}

unsigned team_running(const struct team *t)
{
    unsigned n = 0;

    for (unsigned i = 0; i < t->n; i++)
        n += atomic_load_explicit(&((struct team *)t)->state[i], memory_order_acquire) ==
             1;
    return n;
}

int team_await(struct team *t)
{
    int64_t deadline = cli_mono_ns() + 10 * NS_PER_S;

    for (unsigned i = 0; i < t->n; i++) {
        int st;

        while ((st = atomic_load_explicit(&t->state[i], memory_order_acquire)) == 0 &&
               cli_mono_ns() < deadline)
            team_nap(cli_mono_ns() + NS_PER_MS);
        if (st <= 0) {
            atomic_store(&cli_halt, true);
            return st < 0 ? st : -ETIMEDOUT;
        }
    }
    return 0;
}

int team_group(int *fds, const struct flow_cfg *c, unsigned flags)
{
    struct volley_group_opts o = VOLLEY_GROUP_OPTS_INIT;
    int got;

    o.flags = flags;
    o.steer = c->steer;
    got = volley_group_open(fds, team_size(c), c->addr, &o);
    if (got < 0)
        return cli_runtime_error(c->addr, got);
    team_steer_note(c->steer, got);
    return 0;
}

void team_listening(int fd, const char *backend, unsigned n)
{
    struct volley_addr a;
    socklen_t len = sizeof(a);
    char name[64];

    memset(&a, 0, sizeof(a));
    if (getsockname(fd, &a.sa, &len) < 0 ||
        volley_addr_format(&a, name, sizeof(name)) < 0)
        snprintf(name, sizeof(name), "?");
    fprintf(stderr, "%s: listening on %s (%s, %u threads)\n", cli_name, name, backend, n);
}
