/* SPDX-License-Identifier: MIT */
/* Loop timers and the wake-up (volley_timer_*, volley_loop_wake), on both
 * loop backends: TIMER events with their tags, once or repeating, missed
 * periods counted, stop and restart and close at any point (a TIMER owed
 * and not yet returned included), deadlines in volley_loop_timeout, no
 * allocation to start or stop, and WAKE from another thread and from a
 * signal handler, many wakes making one event. Deadlines are waited for
 * by polling; nothing asserts how long anything took. */
#include "stream/stream.h"
#include "tstream.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

static int case_bad_input(void)
{
    volley_loop *l = loop_new();
    volley_timer *t = (volley_timer *)&t;
    T_EXPECT(volley_timer_open(NULL, &t, 1), -EINVAL);
    T_EXPECT(volley_timer_open(l, NULL, 1), -EINVAL);
    T_EXPECT(volley_timer_start(NULL, 1, 0), -EINVAL);
    T_EXPECT(volley_timer_stop(NULL), -EINVAL);
    volley_timer_close(NULL);
    T_EXPECT(volley_loop_wake(NULL), -EINVAL);
    T_OK(volley_timer_open(l, &t, 1));
    T_EXPECT(volley_timer_start(t, 0x80000000u, 0), -EINVAL);
    T_EXPECT(volley_timer_start(t, 1, 0x80000000u), -EINVAL);
    T_EXPECT(volley_timer_start(t, 0x7fffffffu, 0x7fffffffu), 0);
    T_EXPECT(volley_timer_start_ns(NULL, 1, 0), -EINVAL);
    T_EXPECT(volley_timer_start_ns(t, 2147483647000001ull, 0), -EINVAL);
    T_EXPECT(volley_timer_start_ns(t, 1, 2147483647000001ull), -EINVAL);
    T_EXPECT(volley_timer_start_ns(t, UINT64_MAX, 0), -EINVAL);
    T_EXPECT(volley_timer_start_ns(t, 2147483647000000ull, 2147483647000000ull), 0);
    T_EXPECT(volley_loop_timeout_ns(NULL), -1);
    T_EXPECT(volley_timer_stop(t), 0);
    T_EXPECT(volley_timer_stop(t), 0); /* stopped already: no-op */
    volley_timer_close(t);
    volley_loop_close(l, 0);
    return 0;
}

/* A one-shot timer: one TIMER with its tag, the deadline in
 * volley_loop_timeout while it runs, none after. */
static int case_once(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_timer *t;
    T_OK(volley_timer_open(l, &t, 0xabcdef));
    T_EXPECT(volley_loop_timeout(l), -1);
    T_OK(volley_timer_start(t, 50, 0));
    int ms = volley_loop_timeout(l);
    T_CHECK(ms >= 0 && ms <= 50, "volley_loop_timeout = %d with a timer at 50 ms", ms);
    struct volley_event e = TAKE(l, VOLLEY_EV_TIMER, NULL);
    T_EXPECT(e.tag, 0xabcdef);
    T_EXPECT(e.len, 1);
    T_ASSERT(e.conn == NULL);
    settle(l, 100);
    T_CHECK(queued_ev(VOLLEY_EV_TIMER, NULL) < 0, "a one-shot timer came twice");
    T_EXPECT(volley_loop_timeout(l), -1);
    volley_timer_close(t);
    volley_loop_close(l, 0);
    return 0;
}

/* Nanosecond timers: the deadline in volley_loop_timeout_ns as it is (and
 * rounded up in volley_loop_timeout), and no TIMER before its deadline,
 * once or repeating below a millisecond, the poll waiting with no limit of
 * its own. How late each came is printed, not checked. */
static int case_ns(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_timer *t;
    T_OK(volley_timer_open(l, &t, 11));
    T_EXPECT(volley_loop_timeout_ns(l), -1);
    int64_t t0 = t_now_ns();
    T_OK(volley_timer_start_ns(t, 1500000, 0)); /* 1.5 ms */
    int64_t ns = volley_loop_timeout_ns(l);
    int ms = volley_loop_timeout(l);
    T_CHECK(ns >= 0 && ns <= 1500000,
            "volley_loop_timeout_ns = %lld with a timer at 1.5 ms", (long long)ns);
    T_CHECK(ms >= 0 && ms <= 2, "volley_loop_timeout = %d with a timer at 1.5 ms", ms);
    struct volley_event ev[4];
    int n;
    while ((n = volley_loop_poll(l, ev, 4, -1)) == 0)
        ;
    int64_t late = t_now_ns() - t0 - 1500000;
    T_EXPECT(n, 1);
    T_EXPECT(ev[0].type, VOLLEY_EV_TIMER);
    T_EXPECT(ev[0].tag, 11);
    T_CHECK(late >= 0, "a 1.5 ms timer came %lld ns early", (long long)-late);
    printf("  a 1.5 ms timer came %lld us after its deadline\n",
           (long long)(late / 1000));

    /* every 250 us: the k-th period is due k * 250 us after the start */
    uint64_t periods = 0;
    t0 = t_now_ns();
    T_OK(volley_timer_start_ns(t, 250000, 250000));
    for (int i = 0; i < 20; i++) {
        while ((n = volley_loop_poll(l, ev, 4, -1)) == 0)
            ;
        T_EXPECT(n, 1);
        T_EXPECT(ev[0].type, VOLLEY_EV_TIMER);
        periods += ev[0].len;
        int64_t early = t0 + (int64_t)periods * 250000 - t_now_ns();
        T_CHECK(early <= 0, "period %llu of a 250 us timer came %lld ns early",
                (unsigned long long)periods, (long long)early);
    }
    printf("  20 TIMER events of a 250 us timer counted %llu periods in %lld us\n",
           (unsigned long long)periods, (long long)((t_now_ns() - t0) / 1000));
    T_OK(volley_timer_stop(t));
    T_EXPECT(volley_loop_timeout_ns(l), -1);
    volley_timer_close(t);
    volley_loop_close(l, 0);
    return 0;
}

/* Repeating, then stopped: it keeps coming, then no more. Restarted with
 * a shorter wait, the new wait counts. */
static int case_repeat_stop_restart(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_timer *t;
    T_OK(volley_timer_open(l, &t, 7));
    T_OK(volley_timer_start(t, 5, 5));
    for (int i = 0; i < 5; i++)
        T_EXPECT(TAKE(l, VOLLEY_EV_TIMER, NULL).tag, 7);
    T_OK(volley_timer_stop(t));
    evq_n = 0;
    settle(l, 60);
    T_CHECK(queued_ev(VOLLEY_EV_TIMER, NULL) < 0, "TIMER after stop");
    T_OK(volley_timer_start(t, 100000, 0));
    T_OK(volley_timer_start(t, 0, 0)); /* a restart replaces the wait */
    T_EXPECT(TAKE(l, VOLLEY_EV_TIMER, NULL).tag, 7);
    volley_timer_close(t);
    volley_loop_close(l, 0);
    return 0;
}

/* A repeating timer the loop does not get to for many periods comes once,
 * with the count of periods in ev.len, and keeps its period after. */
static int case_missed(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_timer *t;
    T_OK(volley_timer_open(l, &t, 3));
    T_OK(volley_timer_start(t, 1, 1));
    usleep(50 * 1000); /* 50 periods with nobody polling */
    struct volley_event e = TAKE(l, VOLLEY_EV_TIMER, NULL);
    T_CHECK(e.len >= 2, "a 1 ms timer unpolled for 50 ms came with len %zu", e.len);
    T_CHECK(queued_ev(VOLLEY_EV_TIMER, NULL) < 0, "the missed periods came one by one");
    T_EXPECT(TAKE(l, VOLLEY_EV_TIMER, NULL).tag, 3);
    volley_timer_close(t);
    volley_loop_close(l, 0);
    return 0;
}

/* Stopped or closed while its TIMER is owed but not returned (the poll
 * had room for one event only): nothing comes for it. */
static int case_owed(void)
{
    volley_loop *l = loop_new();
    volley_timer *a, *b, *c;
    T_OK(volley_timer_open(l, &a, 1));
    T_OK(volley_timer_open(l, &b, 2));
    T_OK(volley_timer_open(l, &c, 3));
    T_OK(volley_timer_start(a, 0, 0));
    T_OK(volley_timer_start(b, 0, 0));
    T_OK(volley_timer_start(c, 0, 0));
    usleep(2000);
    struct volley_event ev[4];
    T_EXPECT(volley_loop_poll(l, ev, 1, 1000), 1);
    T_EXPECT(ev[0].type, VOLLEY_EV_TIMER);
    uint64_t first = ev[0].tag;
    volley_timer *rest[2];
    unsigned k = 0;
    volley_timer *all[] = {a, b, c};
    for (unsigned i = 0; i < 3; i++)
        if (i + 1 != first)
            rest[k++] = all[i];
    T_ASSERT(k == 2);
    T_OK(volley_timer_stop(rest[0]));
    volley_timer_close(rest[1]);
    T_EXPECT(volley_loop_poll(l, ev, 4, 50), 0);
    for (unsigned i = 0; i < 3; i++)
        if (all[i] != rest[1])
            volley_timer_close(all[i]);
    volley_loop_close(l, 0);
    return 0;
}

/* Many timers, due in an order of their own: each comes once, none before
 * its turn, and starting or stopping allocates nothing. */
#define MANY 1000
static int case_many(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    static volley_timer *t[MANY];
    static bool seen[MANY];
    for (unsigned i = 0; i < MANY; i++) {
        T_OK(volley_timer_open(l, &t[i], i));
        seen[i] = false;
    }
    unsigned long before = volley__stream_buf_allocs;
    uint64_t rng = 5;
    for (int round = 0; round < 10; round++)
        for (unsigned i = 0; i < MANY; i++) {
            T_OK(volley_timer_start(t[i], t_rand(&rng) % 100000, 0));
            if (round < 9)
                T_OK(volley_timer_stop(t[i]));
        }
    T_EXPECT(volley__stream_buf_allocs, before);
    /* now all due at once, but in the order of their tags */
    for (unsigned i = 0; i < MANY; i++)
        T_OK(volley_timer_start(t[i], 0, 0));
    unsigned got = 0;
    long long end = t_now_ms() + 10000;
    while (got < MANY && t_now_ms() < end) {
        struct volley_event ev[64];
        int n = volley_loop_poll(l, ev, 64, 10);
        T_ASSERT(n >= 0);
        for (int i = 0; i < n; i++) {
            T_ASSERT(ev[i].type == VOLLEY_EV_TIMER && ev[i].tag < MANY);
            T_CHECK(!seen[ev[i].tag], "timer %llu came twice",
                    (unsigned long long)ev[i].tag);
            seen[ev[i].tag] = true;
            got++;
        }
    }
    T_EXPECT(got, MANY);
    for (unsigned i = 0; i < MANY / 2; i++)
        volley_timer_close(t[i]);
    volley_loop_close(l, 0); /* frees the other half */
    return 0;
}

/* ---- the wake-up ---- */

static void *wake_soon(void *arg)
{
    usleep(20 * 1000);
    T_ASSERT(volley_loop_wake(arg) == 0);
    return NULL;
}

/* From another thread, while the loop sleeps without a deadline: one WAKE.
 * Many wakes before the loop looks: one WAKE. */
static int case_wake_thread(void)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    pthread_t th;
    T_ASSERT(pthread_create(&th, NULL, wake_soon, l) == 0);
    struct volley_event ev[4];
    int n = volley_loop_poll(l, ev, 4, -1);
    pthread_join(th, NULL);
    T_EXPECT(n, 1);
    T_EXPECT(ev[0].type, VOLLEY_EV_WAKE);
    T_ASSERT(ev[0].conn == NULL);
    for (int i = 0; i < 100; i++)
        T_OK(volley_loop_wake(l));
    T_EXPECT(volley_loop_poll(l, ev, 4, 1000), 1);
    T_EXPECT(ev[0].type, VOLLEY_EV_WAKE);
    T_EXPECT(volley_loop_poll(l, ev, 4, 20), 0);
    volley_loop_close(l, 0);
    return 0;
}

static volley_loop *signal_loop;

static void wake_from_handler(int sig)
{
    (void)sig;
    (void)volley_loop_wake(signal_loop);
}

/* From a signal handler: the poll the signal interrupts returns -EINTR or
 * the WAKE, and the WAKE comes either way. */
static int case_wake_signal(void)
{
    volley_loop *l = loop_new();
    signal_loop = l;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = wake_from_handler;
    sa.sa_flags = SA_RESTART;
    T_ASSERT(sigaction(SIGUSR2, &sa, NULL) == 0);
    T_ASSERT(raise(SIGUSR2) == 0);
    struct volley_event ev[4];
    int n = volley_loop_poll(l, ev, 4, 1000);
    if (n == -EINTR)
        n = volley_loop_poll(l, ev, 4, 1000);
    T_EXPECT(n, 1);
    T_EXPECT(ev[0].type, VOLLEY_EV_WAKE);
    signal(SIGUSR2, SIG_DFL);
    volley_loop_close(l, 0);
    return 0;
}

/* ====================================================================== */

static const struct t_loop_case defs[] = {
    {"bad_input", case_bad_input},
    {"once", case_once},
    {"ns", case_ns},
    {"repeat_stop_restart", case_repeat_stop_restart},
    {"missed", case_missed},
    {"owed", case_owed},
    {"many", case_many},
    {"wake_thread", case_wake_thread},
    {"wake_signal", case_wake_signal},
};

int main(int argc, char **argv)
{
    struct t_run how = {.flags = T_FORK, .case_s = 60, .total_s = 200};
    return t_main_loops(defs, T_COUNT(defs), &how, argc, argv);
}
