/* SPDX-License-Identifier: MIT */
/* Timers and the wake-up: what a server needs of its loop besides
 * connections. A timer is a node of the loop's deadline heap, as each
 * connection's deadlines are, so starting, restarting and stopping one is
 * O(log n) and allocates nothing (its place in the heap is made when it is
 * opened). When it is due it owes a TIMER event, kept on the loop's fired
 * list until a poll returns it. The wake-up is an eventfd the loop's
 * backend watches: any thread, or a signal handler, may write to it; a
 * flag makes the writes of many wakes one. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The most a timer may wait or repeat: what an int of milliseconds holds,
 * as every other timeout of the API (about 24.8 days), in either unit. */
#define TIMER_MS_MAX 0x7fffffffu
#define TIMER_NS_MAX ((uint64_t)TIMER_MS_MAX * VOLLEY__NS_PER_MS)

static volley_timer *of_node(struct volley__timer *n)
{
    return (volley_timer *)((char *)n - offsetof(volley_timer, node));
}

int volley_timer_open(volley_loop *l, volley_timer **out, uint64_t tag)
{
    if (!l || !out)
        return -EINVAL;
    *out = NULL;
    if (l->closing)
        return -EINVAL;
    /* its place in the heap and in the loop's list, so that starting it
     * never fails */
    if (volley__timers_reserve(&l->timers, l->nslots + l->ntimers + 1) < 0)
        return -ENOMEM;
    if (l->ntimers == l->cap_timers) {
        uint32_t cap = l->cap_timers ? l->cap_timers * 2 : 16;
        volley_timer **a = realloc(l->utimers, cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        l->utimers = a;
        l->cap_timers = cap;
    }
    volley_timer *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->loop = l;
    t->tag = tag;
    t->node.pos = -1;
    t->node.kind = VOLLEY__TIMER_USER;
    t->index = l->ntimers;
    l->utimers[l->ntimers++] = t;
    *out = t;
    return 0;
}

int volley_timer_start_ns(volley_timer *t, uint64_t after_ns, uint64_t repeat_ns)
{
    if (!t || after_ns > TIMER_NS_MAX || repeat_ns > TIMER_NS_MAX)
        return -EINVAL;
    volley_loop *l = t->loop;
    t->period = (int64_t)repeat_ns;
    t->owed = 0; /* a TIMER owed and not returned yet is from the last start */
    (void)volley__timers_set(&l->timers, &t->node,
                             volley__loop_now() + (int64_t)after_ns);
    return 0;
}

int volley_timer_start(volley_timer *t, uint64_t after_ms, uint64_t repeat_ms)
{
    if (after_ms > TIMER_MS_MAX || repeat_ms > TIMER_MS_MAX)
        return -EINVAL;
    return volley_timer_start_ns(t, after_ms * VOLLEY__NS_PER_MS,
                                 repeat_ms * VOLLEY__NS_PER_MS);
}

int volley_timer_stop(volley_timer *t)
{
    if (!t)
        return -EINVAL;
    volley__timers_del(&t->loop->timers, &t->node);
    t->owed = 0;
    return 0;
}

void volley_timer_close(volley_timer *t)
{
    if (!t)
        return;
    volley_loop *l = t->loop;
    volley__timers_del(&l->timers, &t->node);
    t->owed = 0;
    volley_timer *last = l->utimers[--l->ntimers];
    l->utimers[t->index] = last;
    last->index = t->index;
    if (t->on_fired)
        t->closed = true; /* freed when the fired list reaches it */
    else
        free(t);
}

void volley__timer_due(volley_loop *l, struct volley__timer *n, int64_t now)
{
    volley_timer *t = of_node(n);
    uint64_t times = 1;
    if (t->period) {
        /* a repeating timer keeps its period: the times the loop was too
         * late for are counted, not fired one by one */
        times += (uint64_t)((now - n->at) / t->period);
        (void)volley__timers_set(&l->timers, n, n->at + (int64_t)times * t->period);
    }
    t->owed += times;
    if (t->on_fired)
        return;
    t->on_fired = true;
    t->fired_next = NULL;
    if (l->fired_tail)
        l->fired_tail->fired_next = t;
    else
        l->fired_head = t;
    l->fired_tail = t;
}

unsigned volley__timer_emit(volley_loop *l, struct volley_event *ev, unsigned n)
{
    unsigned k = 0;
    while (l->fired_head && k < n) {
        volley_timer *t = l->fired_head;
        l->fired_head = t->fired_next;
        if (!l->fired_head)
            l->fired_tail = NULL;
        t->on_fired = false;
        if (t->closed) {
            free(t);
            continue;
        }
        if (!t->owed)
            continue; /* stopped or restarted since it fired */
        memset(&ev[k], 0, sizeof ev[k]);
        ev[k].type = VOLLEY_EV_TIMER;
        ev[k].tag = t->tag;
        ev[k].len = t->owed;
        t->owed = 0;
        k++;
    }
    if (k < n && l->wake_owed) {
        l->wake_owed = false;
        memset(&ev[k], 0, sizeof ev[k]);
        ev[k++].type = VOLLEY_EV_WAKE;
    }
    return k;
}

void volley__timer_free_all(volley_loop *l)
{
    while (l->fired_head) {
        volley_timer *t = l->fired_head;
        l->fired_head = t->fired_next;
        if (t->closed)
            free(t);
    }
    l->fired_tail = NULL;
    for (uint32_t i = 0; i < l->ntimers; i++)
        free(l->utimers[i]);
    free(l->utimers);
    l->utimers = NULL;
    l->ntimers = l->cap_timers = 0;
}

/* ---- the wake-up -------------------------------------------------------- */

int volley_loop_wake(volley_loop *l)
{
    if (!l)
        return -EINVAL;
    /* only the first wake since the loop last looked writes: the others
     * ride on it */
    if (__atomic_exchange_n(&l->woken, 1, __ATOMIC_ACQ_REL))
        return 0;
    int r = volley__sys_notify_signal(&l->wake);
    if (r < 0 && r != -EAGAIN) {
        __atomic_store_n(&l->woken, 0, __ATOMIC_RELEASE);
        return r;
    }
    return 0;
}

void volley__loop_woken(volley_loop *l)
{
    /* Drain first, then let wakes write again: a wake in between finds the
     * flag still set and rides on the WAKE owed now; one after it writes,
     * and the next poll sees it. */
    while (volley__sys_notify_drain(&l->wake) == 0)
        ;
    __atomic_store_n(&l->woken, 0, __ATOMIC_RELEASE);
    l->wake_owed = true;
}
