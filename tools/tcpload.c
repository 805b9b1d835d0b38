/* SPDX-License-Identifier: MIT */
/*
 * The TCP load client: N connections on one volley_loop. Every connection
 * is dialed first; the measured run starts once all dials have finished,
 * so connection setup is not in the figures. At its end no new request
 * goes out; ping-pong connections wait (a bounded time) for the reply in
 * flight, then every connection is closed in order (FIN) and the loop is
 * closed. Each phase has a deadline: the run always stops by itself.
 */
#include "tcpload.h"

#include "cli.h"
#include "team.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define DIAL_MS     5000
#define CONNECT_NS  (6 * NS_PER_S) /* all dials: DIAL_MS and some slack */
#define DRAIN_NS    (1 * NS_PER_S) /* replies still in flight at the end */
#define CLOSE_NS    (2 * NS_PER_S) /* orderly closes */
#define LINGER_MS   1000
#define POLL_EVENTS 256
/* Writes one stream top-up makes at most, whatever the queue says. */
#define FILL_MAX 1024
/* Below this many receive buffers a loop has the library's default. */
#define MIN_AUTO_BUFFERS 256u
#define READQ_DEFAULT    (256u << 10)
#define PUBLISH_NS       (100 * NS_PER_MS)

bool tcp_parse_backend(const char *s, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned id;
    } names[] = {{"auto", VOLLEY_BACKEND_AUTO},
                 {"uring", VOLLEY_BACKEND_URING},
                 {"epoll", VOLLEY_BACKEND_EPOLL}};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].id;
            return true;
        }
    }
    return false;
}

int tcp_raise_nofile(unsigned need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            return -errno;
    }
    return rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need ? -EMFILE : 0;
}

/* ---- the run ---- */

enum conn_state {
    C_DIALING, /* dial made, no answer yet */
    C_IDLE,    /* connected, nothing in flight */
    C_WAITING, /* ping-pong: a request is out */
    C_CLOSING, /* close or abort asked, CLOSED not seen yet */
    C_DONE,    /* CLOSED seen, or never opened */
};

struct tconn {
    volley_conn *c;
    int64_t t0; /* when the request in flight went out */
    enum conn_state state;
};

struct run {
    const struct tcpload_cfg *cfg;
    volley_loop *l;
    struct tconn *tc;
    uint8_t *payload;
    struct lat_hist *hist;
    unsigned open;    /* handles whose CLOSED has not come yet */
    unsigned dialing; /* dials not answered yet */
    unsigned waiting; /* ping-pong requests in flight */
    bool running, draining;
    uint64_t issued, requests, bytes_in, errors;
    int first_error;
    int64_t start_ns, stop_ns, tick_ns;
    struct volley_loop_stats at_start, at_stop, at_tick;
    uint64_t tick_requests, tick_in, tick_issued;
    int64_t pub_ns; /* when the byte count was published last */
    const char *stopped;
};

static void count_error(struct run *r, int err)
{
    r->errors++;
    if (r->first_error == 0)
        r->first_error = err < 0 ? err : -EIO;
}

static void close_conn(struct run *r, struct tconn *t)
{
    if (t->state != C_IDLE && t->state != C_WAITING)
        return;
    if (t->state == C_WAITING)
        r->waiting--;
    t->state = C_CLOSING;
    (void)volley_conn_close(t->c); /* -EPIPE: ending already; CLOSED follows */
}

static void fail_conn(struct run *r, struct tconn *t, int err)
{
    count_error(r, err);
    if (t->state == C_WAITING)
        r->waiting--;
    if (t->state == C_IDLE || t->state == C_WAITING) {
        t->state = C_CLOSING;
        (void)volley_conn_abort(t->c);
    }
}

static bool capped(const struct run *r)
{
    return r->cfg->count && r->issued >= r->cfg->count;
}

/* Ping-pong: the next request on t. */
static void send_request(struct run *r, struct tconn *t)
{
    ssize_t w;
    int err;

    if (capped(r))
        return;
    w = volley_conn_write(t->c, r->payload, r->cfg->size);
    err = w < 0 ? (int)w : volley_conn_want(t->c, r->cfg->size, -1);
    if (err < 0) {
        fail_conn(r, t, err);
        return;
    }
    t->t0 = cli_mono_ns();
    t->state = C_WAITING;
    r->waiting++;
    r->issued++;
    r->tick_issued++;
}

/* Stream: fill t's send queue until it says -EAGAIN (WRITABLE follows).
 * The payload never changes, so it is lent, not copied. */
static void fill(struct run *r, struct tconn *t)
{
    for (unsigned i = 0; i < FILL_MAX && !capped(r); i++) {
        int err = volley_conn_write_ref(t->c, r->payload, r->cfg->size, 0);

        if (err == -EAGAIN)
            return;
        if (err < 0) {
            fail_conn(r, t, err);
            return;
        }
        r->issued++;
        r->requests++;
        r->tick_requests++;
    }
}

static void kick(struct run *r, struct tconn *t)
{
    if (r->cfg->mode == TCPLOAD_PINGPONG)
        send_request(r, t);
    else
        fill(r, t);
}

static void drop_input(struct run *r, struct tconn *t)
{
    size_t n = volley_conn_buffered(t->c);

    if (n && volley_conn_consume(t->c, n) == 0) {
        r->bytes_in += n;
        r->tick_in += n;
    }
}

static void on_reply(struct run *r, struct tconn *t, int64_t now)
{
    size_t size = r->cfg->size;
    int err;

    if (r->cfg->mode == TCPLOAD_STREAM || t->state != C_WAITING) {
        drop_input(r, t); /* an echo of a stream, or bytes nobody asked for */
        return;
    }
    /* READABLE with fewer than asked: the peer closed or failed. */
    if (volley_conn_buffered(t->c) < size) {
        fail_conn(r, t, -ECONNRESET);
        return;
    }
    err = volley_conn_consume(t->c, size);
    if (err < 0) {
        fail_conn(r, t, err);
        return;
    }
    r->bytes_in += size;
    r->tick_in += size;
    r->waiting--;
    t->state = C_IDLE;
    if (r->running) {
        lat_hist_add(r->hist, (uint64_t)(now - t->t0));
        r->requests++;
        r->tick_requests++;
        send_request(r, t);
    } else {
        close_conn(r, t);
    }
}

static void on_closed(struct run *r, struct tconn *t, int err)
{
    if (t->state == C_DIALING) {
        r->dialing--;
        count_error(r, err ? err : -ECONNABORTED);
    } else if (t->state != C_CLOSING) {
        if (t->state == C_WAITING)
            r->waiting--;
        count_error(r, err ? err : -ECONNRESET); /* it ended under us */
    }
    t->state = C_DONE;
    r->open--;
}

static void on_event(struct run *r, const struct volley_event *e, int64_t now)
{
    struct tconn *t = e->user;

    switch (e->type) {
    case VOLLEY_EV_CONNECTED:
        r->dialing--;
        t->state = C_IDLE;
        if (r->running)
            kick(r, t);
        break;
    case VOLLEY_EV_READABLE:
        on_reply(r, t, now);
        break;
    case VOLLEY_EV_WRITABLE:
        if (r->running && r->cfg->mode == TCPLOAD_STREAM && t->state == C_IDLE)
            fill(r, t);
        break;
    case VOLLEY_EV_EOF:
        if (t->state == C_IDLE || t->state == C_WAITING)
            fail_conn(r, t, -ECONNRESET); /* the server left */
        break;
    case VOLLEY_EV_CLOSED:
        on_closed(r, t, e->err);
        break;
    default: /* SENT, DRAINED; no deadlines are asked for */
        break;
    }
}

/* One poll of the loop and its events. */
static int turn(struct run *r, int timeout_ms)
{
    struct volley_event ev[POLL_EVENTS];
    int n = volley_loop_poll(r->l, ev, POLL_EVENTS, timeout_ms);
    int64_t now = cli_mono_ns();

    if (n < 0 && n != -EINTR)
        return n;
    for (int i = 0; i < n; i++)
        on_event(r, &ev[i], now);
    return 0;
}

static int dial_all(struct run *r, const struct volley_conn_opts *co)
{
    for (unsigned i = 0; i < r->cfg->conns; i++) {
        struct tconn *t = &r->tc[i];
        int err = volley_dial(r->l, &t->c, r->cfg->addr, co, DIAL_MS, t);

        if (err == -EINVAL || err == -EAFNOSUPPORT)
            return err; /* the address: the same for every connection */
        if (err < 0) {
            t->state = C_DONE;
            count_error(r, err);
            continue;
        }
        t->state = C_DIALING;
        r->open++;
        r->dialing++;
    }
    return 0;
}

/* Until every dial is answered; the ones left at the deadline fail. */
static int connect_phase(struct run *r)
{
    int64_t deadline = cli_mono_ns() + CONNECT_NS;

    while (r->dialing > 0 && !cli_stopping()) {
        int64_t now = cli_mono_ns();
        int err;

        if (now >= deadline)
            break;
        err = turn(r, cli_ms_until(now, deadline));
        if (err < 0)
            return err;
    }
    for (unsigned i = 0; i < r->cfg->conns; i++) {
        struct tconn *t = &r->tc[i];

        if (t->state != C_DIALING)
            continue;
        count_error(r, -ETIMEDOUT);
        r->dialing--;
        t->state = C_CLOSING;
        (void)volley_conn_abort(t->c);
    }
    return 0;
}

static void stats(const struct run *r, struct volley_loop_stats *s)
{
    memset(s, 0, sizeof(*s));
    (void)volley_loop_get_stats(r->l, s, sizeof(*s));
}

static void tick(struct run *r, int64_t now)
{
    struct volley_loop_stats s;
    struct tcpload_tick t = {
        .from = cli_ns_seconds(r->tick_ns - r->start_ns),
        .to = cli_ns_seconds(now - r->start_ns),
        .requests = r->tick_requests,
        .bytes_in = r->tick_in,
        .conns = r->open,
    };

    stats(r, &s);
    /* as fill_result counts them, so that the lines add up to it */
    if (r->cfg->mode == TCPLOAD_PINGPONG)
        t.bytes_out = r->tick_issued * r->cfg->size;
    else
        t.bytes_out = s.total.bytes_out - r->at_tick.total.bytes_out;
    if (r->cfg->pub)
        team_put(r->cfg->pub, TL_BYTES_OUT,
                 s.total.bytes_out - r->at_start.total.bytes_out);
    r->at_tick = s;
    r->tick_requests = r->tick_in = r->tick_issued = 0;
    r->tick_ns = now;
    if (r->cfg->tick)
        r->cfg->tick(&t, r->cfg->tick_arg);
}

/* The end of the measured run: no new requests from here on. */
static void stop(struct run *r, int64_t now, const char *why)
{
    r->running = false;
    r->draining = true;
    r->stop_ns = now;
    r->stopped = why;
    stats(r, &r->at_stop);
    if (r->cfg->tick && now > r->tick_ns)
        tick(r, now);
    for (unsigned i = 0; i < r->cfg->conns; i++)
        if (r->tc[i].state == C_IDLE || r->cfg->mode == TCPLOAD_STREAM)
            close_conn(r, &r->tc[i]);
}

static const char *why_stop(const struct run *r, int64_t now, int64_t end)
{
    if (cli_stopping())
        return "signal";
    if (now >= end)
        return "duration";
    if (capped(r) && r->waiting == 0)
        return "count";
    if (r->open == 0)
        return "errors";
    return NULL;
}

/* For the main thread of --threads; the loop's byte count walks every
 * connection, so it is taken every PUBLISH_NS only. */
static void publish(struct run *r, int64_t now)
{
    team_put(r->cfg->pub, TL_REQUESTS, r->requests);
    team_put(r->cfg->pub, TL_OPEN, r->open);
    if (now - r->pub_ns >= PUBLISH_NS) {
        struct volley_loop_stats s;

        stats(r, &s);
        team_put(r->cfg->pub, TL_BYTES_OUT,
                 s.total.bytes_out - r->at_start.total.bytes_out);
        r->pub_ns = now;
    }
}

static int run_phase(struct run *r)
{
    int64_t end;

    r->start_ns = r->tick_ns = cli_mono_ns();
    end = r->start_ns + r->cfg->duration_ns;
    stats(r, &r->at_start);
    r->at_tick = r->at_start;
    r->running = true;
    for (unsigned i = 0; i < r->cfg->conns; i++)
        if (r->tc[i].state == C_IDLE)
            kick(r, &r->tc[i]);
    for (;;) {
        int64_t now = cli_mono_ns(), wake = end;
        const char *why = why_stop(r, now, end);
        int err;

        if (why) {
            stop(r, now, why);
            return 0;
        }
        if (now - r->tick_ns >= NS_PER_S)
            tick(r, now);
        if (r->cfg->tick && r->tick_ns + NS_PER_S < wake)
            wake = r->tick_ns + NS_PER_S;
        err = turn(r, cli_ms_until(now, wake));
        if (r->cfg->pub)
            publish(r, now);
        if (err < 0) {
            stop(r, cli_mono_ns(), "errors");
            return err;
        }
    }
}

/* Replies still in flight, then the orderly closes, each phase bounded. */
static void end_phase(struct run *r)
{
    int64_t deadline = cli_mono_ns() + DRAIN_NS;

    while (r->waiting > 0 && cli_mono_ns() < deadline)
        if (turn(r, cli_ms_until(cli_mono_ns(), deadline)) < 0)
            break;
    for (unsigned i = 0; i < r->cfg->conns; i++)
        close_conn(r, &r->tc[i]);
    deadline = cli_mono_ns() + CLOSE_NS;
    while (r->open > 0 && cli_mono_ns() < deadline)
        if (turn(r, cli_ms_until(cli_mono_ns(), deadline)) < 0)
            break;
}

static double us_or_none(const struct lat_hist *h, double pct)
{
    return h->n ? (double)lat_hist_pct(h, pct) / 1e3 : -1;
}

static void fill_percentiles(const struct lat_hist *h, struct tcpload_result *out)
{
    out->samples = h->n;
    out->min_us = h->n ? (double)h->min / 1e3 : -1;
    out->mean_us = h->n ? h->sum / (double)h->n / 1e3 : -1;
    out->p50_us = us_or_none(h, 50);
    out->p90_us = us_or_none(h, 90);
    out->p99_us = us_or_none(h, 99);
    out->p999_us = us_or_none(h, 99.9);
    out->max_us = h->n ? (double)h->max / 1e3 : -1;
}

static void fill_result(const struct run *r, struct tcpload_result *out)
{
    const struct volley_loop_stats *a = &r->at_start, *b = &r->at_stop;

    out->requests = r->requests;
    /* Ping-pong: the requests written in the run, whose replies bytes_in
     * counts also when they come in after its end (end_phase waits for
     * them), so the two agree when every request was answered. The loop's
     * count would miss a request still queued at the end while its reply
     * was counted. A stream's echo is cut off at the end: what the kernel
     * took in the run is its rate. */
    if (r->cfg->mode == TCPLOAD_PINGPONG)
        out->bytes_out = r->issued * r->cfg->size;
    else
        out->bytes_out = b->total.bytes_out - a->total.bytes_out;
    out->bytes_in = r->bytes_in;
    out->errors = r->errors;
    out->first_error = r->first_error;
    out->seconds = cli_ns_seconds(r->stop_ns - r->start_ns);
    out->syscalls = b->syscalls - a->syscalls;
    out->polls = b->polls - a->polls;
    out->ring_empty = b->ring_empty - a->ring_empty;
    out->sends = b->total.sends - a->total.sends;
    out->zc_sends = b->total.zc_sends - a->total.zc_sends;
    out->zc_copied = b->total.zc_copied - a->total.zc_copied;
    fill_percentiles(r->hist, out);
    out->stopped = r->stopped;
}

static unsigned auto_buffers(const struct tcpload_cfg *c)
{
    unsigned n = 2 * c->conns;

    if (c->buffers)
        return c->buffers;
    if (n < MIN_AUTO_BUFFERS)
        return 0; /* the library's default */
    return n < TCP_MAX_BUFFERS ? n : TCP_MAX_BUFFERS;
}

static int open_run(struct run *r, const struct tcpload_cfg *c)
{
    struct volley_loop_opts lo = VOLLEY_LOOP_OPTS_INIT;

    r->cfg = c;
    r->tc = calloc(c->conns, sizeof(*r->tc));
    r->payload = malloc(c->size);
    r->hist = calloc(1, sizeof(*r->hist));
    if (!r->tc || !r->payload || !r->hist)
        return -ENOMEM;
    for (size_t i = 0; i < c->size; i++)
        r->payload[i] = (uint8_t)('a' + i % 26);
    lo.backend = c->backend;
    lo.buf_count = auto_buffers(c);
    lo.linger_ms = LINGER_MS;
    return volley_loop_open(&r->l, &lo);
}

static int drive(struct run *r, struct tcpload_result *out)
{
    struct volley_conn_opts co = VOLLEY_CONN_OPTS_INIT;
    int err;

    /* A reply is awaited whole (volley_conn_want), so it must fit. */
    co.readq_max = r->cfg->size > READQ_DEFAULT ? (uint32_t)r->cfg->size : 0;
    co.zc_threshold = r->cfg->zc_threshold;
    snprintf(out->backend, sizeof(out->backend), "%s", volley_loop_backend(r->l));
    err = dial_all(r, &co);
    if (err == 0)
        err = connect_phase(r);
    if (err < 0)
        return err;
    for (unsigned i = 0; i < r->cfg->conns; i++)
        out->connected += r->tc[i].state == C_IDLE;
    if (out->connected == 0)
        return r->first_error ? r->first_error : -ECONNREFUSED;
    err = run_phase(r);
    end_phase(r);
    return err;
}

int tcpload_run(const struct tcpload_cfg *c, struct tcpload_result *out)
{
    struct run r = {.stopped = "signal"};
    int err;

    memset(out, 0, sizeof(*out));
    if (!c->addr || c->conns == 0 || c->size == 0)
        return -EINVAL;
    err = open_run(&r, c);
    if (err == 0) {
        err = drive(&r, out);
        if (err == 0)
            fill_result(&r, out);
        if (c->hist_out)
            *c->hist_out = *r.hist;
    }
    volley_loop_close(r.l, 0);
    free(r.tc);
    free(r.payload);
    free(r.hist);
    return err;
}

/* ---- --threads ---- */

struct load_thread {
    struct team *team;
    unsigned i;
    struct tcpload_cfg cfg; /* its share of the connections and the count */
    struct tcpload_result *r;
    struct lat_hist hist;
    int err;
};

static void *load_thread_main(void *arg)
{
    struct load_thread *t = arg;

    team_ready(t->team, t->i, 0);
    t->err = tcpload_run(&t->cfg, t->r);
    team_done(t->team, t->i);
    return NULL;
}

/* Thread i's part of total shared out among n. */
static uint64_t share(uint64_t total, unsigned n, unsigned i)
{
    return total / n + (i < total % n);
}

/* The lines, from the sums of what the threads publish, until all are done. */
static void watch(struct team *team, const struct tcpload_cfg *c)
{
    int64_t start = cli_mono_ns(), tick_ns = start;
    uint64_t requests = 0, out = 0;

    while (team_running(team) > 0) {
        int64_t now = cli_mono_ns();

        if (cli_stop)
            atomic_store(&cli_halt, true);
        if (c->tick && now - tick_ns >= NS_PER_S) {
            struct tcpload_tick t = {.from = cli_ns_seconds(tick_ns - start),
                                     .to = cli_ns_seconds(now - start),
                                     .requests = team_sum(team, TL_REQUESTS) - requests,
                                     .bytes_out = team_sum(team, TL_BYTES_OUT) - out,
                                     .conns = (unsigned)team_sum(team, TL_OPEN)};

            requests += t.requests;
            out += t.bytes_out;
            tick_ns = now;
            c->tick(&t, c->tick_arg);
        }
        team_nap(tick_ns + NS_PER_S);
    }
}

static void add_result(struct tcpload_result *a, const struct tcpload_result *b)
{
    a->connected += b->connected;
    a->requests += b->requests;
    a->bytes_out += b->bytes_out;
    a->bytes_in += b->bytes_in;
    a->errors += b->errors;
    if (a->first_error == 0)
        a->first_error = b->first_error;
    if (b->seconds > a->seconds)
        a->seconds = b->seconds;
    a->syscalls += b->syscalls;
    a->polls += b->polls;
    a->ring_empty += b->ring_empty;
    a->sends += b->sends;
    a->zc_sends += b->zc_sends;
    a->zc_copied += b->zc_copied;
}

static void sum_results(struct load_thread *t, unsigned n, struct tcpload_result *r)
{
    struct lat_hist *h = calloc(1, sizeof(*h));

    memset(r, 0, sizeof(*r));
    r->stopped = "errors";
    for (unsigned i = 0; i < n; i++) {
        if (t[i].err < 0)
            continue;
        add_result(r, t[i].r);
        if (h)
            lat_hist_merge(h, &t[i].hist);
        if (strcmp(r->stopped, "errors") == 0)
            r->stopped = t[i].r->stopped;
        if (!r->backend[0])
            snprintf(r->backend, sizeof(r->backend), "%s", t[i].r->backend);
    }
    if (h)
        fill_percentiles(h, r);
    free(h);
}

int tcpload_run_threads(const struct tcpload_cfg *c, unsigned n, bool pin,
                        struct tcpload_result *r, struct tcpload_result *per)
{
    struct load_thread *t = calloc(n, sizeof(*t));
    struct team team;
    int err = t && n <= CLI_THREADS_MAX && n <= c->conns ? 0 : -EINVAL;

    if (!t || err < 0 || team_init(&team, n, pin) < 0) {
        free(t);
        return t ? err : -ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        t[i] = (struct load_thread){.team = &team, .i = i, .cfg = *c, .r = &per[i]};
        t[i].cfg.conns = (unsigned)share(c->conns, n, i);
        t[i].cfg.count = c->count ? share(c->count, n, i) : 0;
        if (c->count && t[i].cfg.count == 0)
            t[i].cfg.count = 1; /* 0 would be no limit: one request more at most */
        t[i].cfg.tick = NULL;
        t[i].cfg.pub = &team.pub[i];
        t[i].cfg.hist_out = &t[i].hist;
    }
    err = team_start(&team, load_thread_main, t, sizeof(t[0]));
    if (err == 0)
        watch(&team, c);
    team_join(&team);
    if (err == 0) {
        sum_results(t, n, r);
        err = r->connected ? 0 : t[0].err < 0 ? t[0].err : -ECONNREFUSED;
    }
    free(t);
    return err;
}
