/* SPDX-License-Identifier: MIT */
/* A server on one loop and one thread: TCP, UDP and a local stream socket
 * echoed from one volley_loop_poll, a repeating timer printing the
 * statistics every second, a worker thread that hands the loop work
 * through volley_loop_wake, and a clean stop on SIGINT (or SIGTERM).
 *
 *   example_server TCP_ADDR UDP_ADDR UNIX_PATH
 *   example_server 127.0.0.1:7000 127.0.0.1:7001 /tmp/echo.sock
 *
 * It prints "listening tcp ADDR udp ADDR unix PATH" once it serves (port 0
 * picks one), a "stats" line a second and a "stopped" line at the end. */
#include <volley.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAG_STATS 1

static volatile sig_atomic_t stopping;
static volley_loop *loop;

/* The work other threads hand the loop: a count behind a mutex. */
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long jobs_queued, jobs_done;

static unsigned long conns, stream_bytes, datagrams;
static char peer_done; /* a connection's user pointer once its peer finished */

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    volley_loop_wake(loop); /* async-signal-safe: the poll returns at once */
}

/* A worker: a job every 100 ms, then a wake so the loop takes it. */
static void *worker(void *arg)
{
    (void)arg;
    while (!stopping) {
        usleep(100 * 1000);
        pthread_mutex_lock(&jobs_lock);
        jobs_queued++;
        pthread_mutex_unlock(&jobs_lock);
        volley_loop_wake(loop);
    }
    return NULL;
}

/* Queue back what c holds, as far as its send queue takes it; close once
 * the peer has finished and everything went back. */
static void echo(volley_conn *c)
{
    struct iovec v[8];
    int k;
    while ((k = volley_conn_peek(c, v, 8)) > 0) {
        size_t took = 0;
        int j = 0;
        while (j < k && volley_conn_write(c, v[j].iov_base, v[j].iov_len) >= 0)
            took += v[j++].iov_len;
        volley_conn_consume(c, took);
        stream_bytes += took;
        if (j < k)
            return; /* -EAGAIN: WRITABLE comes back here */
    }
    if (volley_conn_user(c) == &peer_done)
        volley_conn_close(c);
}

static void echo_datagrams(volley_sock *udp)
{
    struct volley_dgram d[64];
    int n;
    while ((n = volley_recv(udp, d, 64)) > 0) {
        for (int done = 0; done < n;) {
            int w = volley_send(udp, d + done, (unsigned)(n - done));
            if (w <= 0)
                break; /* refused or no room: dropped, as UDP may */
            done += w;
        }
        datagrams += (unsigned long)n;
    }
}

static int fail(const char *what, int r)
{
    fprintf(stderr, "%s: %s\n", what, volley_strerror(r));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s TCP_ADDR UDP_ADDR UNIX_PATH\n", argv[0]);
        return 2;
    }
    char unix_addr[256];
    snprintf(unix_addr, sizeof unix_addr, "unix:%s", argv[3]);
    int r = volley_loop_open(&loop, NULL);
    if (r < 0)
        return fail("loop", r);
    volley_conn *tcp, *local;
    if ((r = volley_listen(loop, &tcp, argv[1], NULL, NULL)) < 0)
        return fail("listen tcp", r);
    if ((r = volley_listen(loop, &local, unix_addr, NULL, NULL)) < 0)
        return fail("listen unix", r);
    volley_sock *udp;
    struct volley_opts uo = VOLLEY_OPTS_INIT;
    uo.loop = loop; /* its DGRAM events come from the same poll */
    if ((r = volley_open(&udp, argv[2], &uo)) < 0)
        return fail("udp", r);
    volley_timer *stats;
    if ((r = volley_timer_open(loop, &stats, TAG_STATS)) < 0 ||
        (r = volley_timer_start(stats, 1000, 1000)) < 0)
        return fail("timer", r);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, worker, NULL) != 0)
        return fail("thread", -EAGAIN);

    struct volley_addr ta, ua;
    char ts[64], us[64];
    volley_conn_addr(tcp, &ta, NULL);
    volley_local_addr(udp, &ua);
    volley_addr_format(&ta, ts, sizeof ts);
    volley_addr_format(&ua, us, sizeof us);
    printf("listening tcp %s udp %s unix %s\n", ts, us, argv[3]);
    fflush(stdout);

    struct volley_event ev[64];
    while (!stopping) {
        int n = volley_loop_poll(loop, ev, 64, -1); /* -EINTR: look at stopping */
        for (int i = 0; i < n; i++) {
            volley_conn *c = ev[i].conn;
            switch (ev[i].type) {
            case VOLLEY_EV_ACCEPTED:
                conns++;
                volley_conn_set_user(c, NULL);
                break;
            case VOLLEY_EV_EOF:
                volley_conn_set_user(c, &peer_done);
                /* fall through */
            case VOLLEY_EV_READABLE:
            case VOLLEY_EV_WRITABLE:
                echo(c);
                break;
            case VOLLEY_EV_DGRAM:
                echo_datagrams(udp);
                break;
            case VOLLEY_EV_WAKE:
                pthread_mutex_lock(&jobs_lock);
                jobs_done += jobs_queued; /* all of it: wakes coalesce */
                jobs_queued = 0;
                pthread_mutex_unlock(&jobs_lock);
                break;
            case VOLLEY_EV_TIMER:
                printf(
                    "stats: %lu connections, %lu stream bytes, %lu datagrams, %lu jobs\n",
                    conns, stream_bytes, datagrams, jobs_done);
                fflush(stdout);
                break;
            }
        }
    }
    pthread_join(th, NULL);
    printf("stopped: %lu connections, %lu stream bytes, %lu datagrams, %lu jobs\n", conns,
           stream_bytes, datagrams, jobs_done);
    volley_timer_close(stats);
    volley_close(udp); /* before its loop */
    volley_loop_close(loop, 1000);
    return 0;
}
