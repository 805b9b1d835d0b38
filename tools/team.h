/* SPDX-License-Identifier: MIT */
/*
 * --threads: one loop and one socket per thread, for the commands that
 * take it. The threads share nothing on the data path: each owns its
 * socket (or loop) and its state. What the main thread shows while they
 * run (the interval lines, the limits of the run as a whole) it reads
 * from counters each thread publishes with relaxed atomic stores, one
 * writer each, on a cache line of its own; the summary is made after
 * the threads are joined, from their own states.
 */
#ifndef VOLLEY_TEAM_H
#define VOLLEY_TEAM_H

#include "cli.h"

#include <pthread.h>
#include <stdatomic.h>

/* Counters one thread publishes, indexed by the command. */
#define TEAM_PUB_MAX 8
struct team_pub {
    _Alignas(64) _Atomic uint64_t v[TEAM_PUB_MAX];
};

/* Relaxed: the reader wants a recent value, not an ordering. */
static inline void team_put(struct team_pub *p, unsigned i, uint64_t v)
{
    atomic_store_explicit(&p->v[i], v, memory_order_relaxed);
}
static inline uint64_t team_get(const struct team_pub *p, unsigned i)
{
    return atomic_load_explicit(&((struct team_pub *)p)->v[i], memory_order_relaxed);
}

struct team {
    unsigned n;
    pthread_t tid[CLI_THREADS_MAX];
    int cpu[CLI_THREADS_MAX]; /* -1: not pinned */
    bool started[CLI_THREADS_MAX];
    /* 0 while thread i sets up, 1 once it runs, 2 once it is done, a
     * negative errno when it could not set up: written by it (release),
     * read by the main thread. */
    _Atomic int state[CLI_THREADS_MAX];
    struct team_pub *pub; /* n of them */
};

/* The threads a flow_cfg asks for: 1 without --threads. */
static inline unsigned team_size(const struct flow_cfg *c)
{
    return c->threads ? c->threads : 1;
}

/* Sets t up for n threads, pinned (pin) to the allowed CPUs in turn. 0 or
 * -ENOMEM. */
int team_init(struct team *t, unsigned n, bool pin);
/* Starts fn(arg + i * stride) on thread i, i < t->n, with SIGINT and
 * SIGTERM blocked there: the main thread takes them and stops the run. On
 * failure the threads started are told to halt (team_join joins them), and
 * the error is returned. */
int team_start(struct team *t, void *(*fn)(void *), void *arg, size_t stride);
/* Thread i says it is set up (err 0) or why it could not. */
void team_ready(struct team *t, unsigned i, int err);
/* Thread i is done: its loop has ended. */
void team_done(struct team *t, unsigned i);
/* How many threads are set up and not done. */
unsigned team_running(const struct team *t);
/* Until every thread is set up: 0, or the first error (then the threads
 * are told to halt). Bounded: -ETIMEDOUT after 10 s. */
int team_await(struct team *t);
/* Joins every started thread and frees what team_init took. */
void team_join(struct team *t);
/* The main thread's nap between two looks at the counters: until `until`,
 * 50 ms at most, cut short by a signal. */
void team_nap(int64_t until);
/* Sum of counter i over the threads. */
uint64_t team_sum(const struct team *t, unsigned i);
/* Largest counter i over the threads. */
uint64_t team_max(const struct team *t, unsigned i);
/* Prints thread i's number and pinned CPU as `,"thread":I,"cpu":C`
 * (null when not pinned). */
void team_json_cpu(const struct team *t, unsigned i);
/* The steering a group got, against the one asked: a warning when the
 * kernel refused the program. */
void team_steer_note(unsigned asked, int got);
/* "flow", "cpu" or "kernel". */
const char *team_steer_name(unsigned steer);
/* Opens c's --threads members on c->addr (flags: VOLLEY_GROUP_*) into
 * fds, steered as --steer asks; 0, or the exit status once it said why. */
int team_group(int *fds, const struct flow_cfg *c, unsigned flags);
/* "listening on ADDR (BACKEND, N threads)" for scripts to wait for. */
void team_listening(int fd, const char *backend, unsigned n);

#endif /* VOLLEY_TEAM_H */
