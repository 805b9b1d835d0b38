/* SPDX-License-Identifier: MIT */
/*
 * `volley bench --tcp`: TCP echo over loopback. The client is the load
 * client of `volley tcp-load` (tools/tcpload.c), one volley loop in this
 * process; each server is a child process started afresh for every run,
 * so that client and server never share a thread:
 *   uring, epoll  `volley tcp-echo` on that loop backend
 *   ref           `volley tcp-ref`, plain C epoll as the tutorials write it
 * at 1, 50, 300 and 1000 connections and 128 and 4096-byte requests,
 * ping-pong. Beside them: one stream into `volley tcp-echo --discard` next
 * to iperf3, and sockperf's TCP ping-pong next to the one-connection
 * rows, each when the program is installed. Runs are interleaved as in
 * the datagram bench, and the figures are medians.
 */
#include "bench.h"

#include "cli.h"
#include "tcpload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SELF        "/proc/self/exe"
#define REPORT_MAX  (1u << 20)
#define STREAM_SIZE 65536
#define PP_SIZE     128 /* sockperf's row sits next to the 1-connection rows */
#define MAX_CONNS   1000
#define LISTEN_NS   (3 * NS_PER_S)
#define REAP_NS     (5 * NS_PER_S)
#define MAX_TCELLS  40
#define MAX_TREPEAT BENCH_RUNS_MAX

static const unsigned tcp_conns[] = {1, 50, 300, MAX_CONNS};
static const size_t tcp_sizes[] = {128, 4096};
#define NCONNS (sizeof(tcp_conns) / sizeof(tcp_conns[0]))
#define NSIZES (sizeof(tcp_sizes) / sizeof(tcp_sizes[0]))

enum tcp_path { P_URING, P_EPOLL, P_REF, P_STREAM, P_IPERF3, P_SOCKPERF, P_NPATHS };

static const char *const path_names[P_NPATHS] = {
    [P_URING] = "uring",   [P_EPOLL] = "epoll",   [P_REF] = "ref",
    [P_STREAM] = "volley", [P_IPERF3] = "iperf3", [P_SOCKPERF] = "sockperf",
};

struct sample {
    double rps, p50_us, p99_us, gbps;
    double srv_ns; /* the server's CPU time per request (-1: not known) */
    uint64_t requests, errors;
};

struct tcell {
    enum tcp_path path;
    unsigned conns;
    size_t size;
    struct sample *runs;
    unsigned nruns;
    bool dead;
    char note[200];
    struct sample med; /* medians; requests and errors summed */
    double lo, hi, ratio;
};

struct tmatrix {
    struct tcell cells[MAX_TCELLS];
    unsigned n;
    char notes[8][200];
    unsigned nnotes;
    bool failed; /* a volley cell failed: the exit status says so */
    int64_t start_ns, end_ns;
};

/* ---- child processes ---- */

/* Until something accepts on 127.0.0.1:port, or the deadline. */
static int await_listen(int port, int64_t deadline)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    while (cli_mono_ns() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

        if (fd < 0)
            return -errno;
        ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok)
            return 0;
        usleep(5000);
    }
    return -ETIMEDOUT;
}

struct child {
    pid_t pid;
    int fd;
};

static int start_server(struct child *ch, char *const argv[], int port, char *why,
                        size_t why_size)
{
    char buf[256];
    int err = bench_start(&ch->pid, argv, &ch->fd);

    if (err < 0) {
        snprintf(why, why_size, "cannot start %s: %s", argv[1], strerror(-err));
        return err;
    }
    err = await_listen(port, cli_mono_ns() + LISTEN_NS);
    if (err < 0) {
        kill(ch->pid, SIGKILL);
        bench_collect(ch->pid, ch->fd, buf, sizeof(buf), cli_mono_ns() + REAP_NS);
        snprintf(why, why_size, "%s did not listen on port %d", argv[1], port);
    }
    return err;
}

/* Ends the server: its report in buf, 0 when it exited by itself or on
 * SIGTERM as asked. */
static int stop_server(struct child *ch, char *buf, size_t cap)
{
    int status;

    kill(ch->pid, SIGTERM);
    status = bench_collect(ch->pid, ch->fd, buf, cap, cli_mono_ns() + REAP_NS);
    if (status < 0)
        return status;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)
        return 0;
    return -ECHILD;
}

/* ---- one run of each kind of cell ---- */

static void server_argv(enum tcp_path p, char **argv, char *addr, char *bound)
{
    unsigned i = 0;

    argv[i++] = SELF;
    argv[i++] = p == P_REF ? "tcp-ref" : "tcp-echo";
    argv[i++] = addr;
    if (p == P_URING || p == P_EPOLL) {
        argv[i++] = "--backend";
        argv[i++] = p == P_URING ? "uring" : "epoll";
    }
    if (p == P_STREAM)
        argv[i++] = "--discard";
    argv[i++] = "--duration";
    argv[i++] = bound;
    argv[i++] = "--json";
    argv[i] = NULL;
}

static void sample_of(const struct tcpload_result *r, struct sample *s)
{
    memset(s, 0, sizeof(*s));
    s->requests = r->requests;
    s->errors = r->errors;
    if (r->seconds > 0) {
        s->rps = (double)r->requests / r->seconds;
        s->gbps = (double)r->bytes_out * 8 / r->seconds / 1e9;
    }
    s->p50_us = r->p50_us;
    s->p99_us = r->p99_us;
}

/* CPU nanoseconds pid has run so far (/proc/PID/schedstat), -1 if unknown. */
static double cpu_ns(pid_t pid)
{
    char path[64];
    unsigned long long ns;
    FILE *f;
    int n;

    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fscanf(f, "%llu", &ns);
    fclose(f);
    return n == 1 ? (double)ns : -1;
}

/* A volley cell: a server of path c->path, the volley client against it. */
static int volley_run(const struct tcell *c, double seconds, struct sample *out,
                      char *why, size_t why_size)
{
    char addr[32], bound[32], *argv[10], *report = malloc(REPORT_MAX);
    int port = bench_free_port(), err;
    struct tcpload_cfg lc = {.addr = addr,
                             .conns = c->conns,
                             .size = c->size,
                             .mode =
                                 c->path == P_STREAM ? TCPLOAD_STREAM : TCPLOAD_PINGPONG,
                             .duration_ns = (int64_t)(seconds * 1e9)};
    struct tcpload_result r;
    struct child ch;

    if (!report)
        return -ENOMEM;
    err = port;
    if (port > 0) {
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        snprintf(bound, sizeof(bound), "%.3f", seconds + 60);
        server_argv(c->path, argv, addr, bound);
        err = start_server(&ch, argv, port, why, why_size);
    }
    double cpu0 = -1, cpu1 = -1;
    if (err >= 0) {
        /* the server's CPU over the whole client run (its dials too): how
         * much work each server does per request, whoever bounds the rate */
        cpu0 = cpu_ns(ch.pid);
        err = tcpload_run(&lc, &r);
        cpu1 = cpu_ns(ch.pid);
        if (err < 0)
            snprintf(why, why_size, "client: %s", volley_strerror(err));
        if (stop_server(&ch, report, REPORT_MAX) < 0 && err >= 0) {
            snprintf(why, why_size, "server failed: %.120s", report);
            err = -ECHILD;
        }
    }
    if (err >= 0) {
        sample_of(&r, out);
        out->srv_ns = cpu0 >= 0 && cpu1 >= cpu0 && r.requests
                          ? (cpu1 - cpu0) / (double)r.requests
                          : -1;
    }
    free(report);
    return err < 0 ? err : 0;
}

int bench_tcp_threads_run(unsigned threads, unsigned conns, double seconds, double *rps,
                          char *why, size_t why_size)
{
    char addr[32], bound[32], n[16], *report = malloc(REPORT_MAX);
    char *argv[] = {SELF,         "tcp-echo", addr,     "--threads", n,
                    "--duration", bound,      "--json", NULL};
    int port = bench_free_port(), err = port;
    struct tcpload_cfg lc = {.addr = addr,
                             .conns = conns,
                             .size = PP_SIZE,
                             .mode = TCPLOAD_PINGPONG,
                             .duration_ns = (int64_t)(seconds * 1e9)};
    static struct tcpload_result r, per[BENCH_CLIENT_THREADS];
    struct child ch;

    if (!report)
        return -ENOMEM;
    if (port > 0) {
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        snprintf(bound, sizeof(bound), "%.3f", seconds + 60);
        snprintf(n, sizeof(n), "%u", threads);
        err = start_server(&ch, argv, port, why, why_size);
    }
    if (err >= 0) {
        err = tcpload_run_threads(&lc, BENCH_CLIENT_THREADS, false, &r, per);
        if (err < 0)
            snprintf(why, why_size, "client: %s", volley_strerror(err));
        if (stop_server(&ch, report, REPORT_MAX) < 0 && err >= 0) {
            snprintf(why, why_size, "server failed: %.120s", report);
            err = -ECHILD;
        }
    }
    if (err >= 0 && r.errors) {
        snprintf(why, why_size, "%" PRIu64 " client errors", r.errors);
        err = -EIO;
    }
    if (err >= 0)
        *rps = r.seconds > 0 ? (double)r.requests / r.seconds : 0;
    free(report);
    return err < 0 ? err : 0;
}

/* Runs argv to its end within deadline; its stdout into buf. */
static int run_tool(char *const argv[], char *buf, size_t cap, int64_t deadline)
{
    pid_t pid;
    int fd, status, err = bench_start(&pid, argv, &fd);

    if (err < 0)
        return err;
    status = bench_collect(pid, fd, buf, cap, deadline);
    if (status < 0)
        return status;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

/* Whole seconds for the tools whose -t takes nothing finer. */
static unsigned whole_seconds(double seconds)
{
    return seconds < 1.5 ? 1 : (unsigned)lround(seconds);
}

static double after(const char *text, const char *key)
{
    const char *p = strstr(text, key);

    return p ? strtod(p + strlen(key), NULL) : -1;
}

/* sockperf's ping-pong client against its server, one TCP connection. */
static int sockperf_run(double seconds, struct sample *out, char *why, size_t why_size)
{
    char port_s[16], size_s[16], secs_s[16], tail[256], *buf = malloc(REPORT_MAX);
    char *server[] = {"sockperf", "sr", "--tcp", "-i", "127.0.0.1", "-p", port_s, NULL};
    char *client[] = {"sockperf", "pp",   "--tcp", "-i",   "127.0.0.1",  "-p", port_s,
                      "-m",       size_s, "-t",    secs_s, "--full-rtt", NULL};
    int port = bench_free_port(), err = port < 0 ? port : 0;
    double secs, received;
    struct child ch;

    if (!buf)
        return -ENOMEM;
    buf[0] = '\0';
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(size_s, sizeof(size_s), "%d", PP_SIZE);
    snprintf(secs_s, sizeof(secs_s), "%u", whole_seconds(seconds));
    if (err == 0)
        err = start_server(&ch, server, port, why, why_size);
    if (err == 0) {
        err = run_tool(client, buf, REPORT_MAX,
                       cli_mono_ns() + (int64_t)(whole_seconds(seconds) + 15) * NS_PER_S);
        /* Killed as asked: its status and output say nothing more. */
        stop_server(&ch, tail, sizeof(tail));
    }
    memset(out, 0, sizeof(*out));
    out->srv_ns = -1; /* not measured for other programs */
    out->p50_us = after(buf, "percentile 50.000 =");
    out->p99_us = after(buf, "percentile 99.000 =");
    secs = after(buf, "[Valid Duration] RunTime=");
    received =
        after(strstr(buf, "[Valid Duration]") ? strstr(buf, "[Valid Duration]") : "",
              "ReceivedMessages=");
    if (err == 0 && (out->p50_us < 0 || out->p99_us < 0 || secs <= 0 || received < 0)) {
        snprintf(why, why_size, "no percentiles in sockperf's output");
        err = -EIO;
    } else if (err < 0 && !why[0]) {
        snprintf(why, why_size, "sockperf pp: %s", strerror(-err));
    }
    if (err == 0) {
        out->rps = received / secs;
        out->requests = (uint64_t)received;
    }
    free(buf);
    return err;
}

/* iperf3 over TCP, one stream: the receiver's bits per second. */
static int iperf3_run(double seconds, struct sample *out, char *why, size_t why_size)
{
    char port_s[16], secs_s[16], *buf = malloc(REPORT_MAX);
    char *server[] = {"iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", port_s, NULL};
    char *client[] = {"iperf3", "-c",   "127.0.0.1", "-p", port_s,
                      "-t",     secs_s, "--json",    NULL};
    int64_t deadline = cli_mono_ns() + (int64_t)(whole_seconds(seconds) + 10) * NS_PER_S;
    int port = bench_free_port(), err = port < 0 ? port : 0;
    const char *sum;
    pid_t srv;

    if (!buf)
        return -ENOMEM;
    buf[0] = '\0';
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(secs_s, sizeof(secs_s), "%u", whole_seconds(seconds));
    if (err == 0)
        err = bench_spawn(&srv, server, -1);
    if (err == 0) {
        /* A one-off server takes one test: no probe connection; the client
         * is retried while the server comes up instead. */
        for (int i = 0; i < 10; i++) {
            usleep(20000u << (i < 3 ? i : 3));
            err = run_tool(client, buf, REPORT_MAX, deadline);
            if (err == 0 || kill(srv, 0) != 0)
                break;
        }
        kill(srv, SIGTERM);
        bench_reap(srv, cli_mono_ns() + NS_PER_S);
    }
    sum = bench_json_member(bench_json_member(buf, "end"), "sum_received");
    memset(out, 0, sizeof(*out));
    out->srv_ns = -1; /* not measured for other programs */
    if (err == 0 &&
        !bench_json_number(bench_json_member(sum, "bits_per_second"), &out->gbps)) {
        snprintf(why, why_size, "no sum_received in iperf3's JSON report");
        err = -EIO;
    } else if (err < 0) {
        snprintf(why, why_size, "iperf3: %s", strerror(-err));
    }
    out->gbps /= 1e9;
    free(buf);
    return err;
}

/* ---- the matrix ---- */

static bool program_found(const char *name)
{
    const char *path = getenv("PATH");
    char file[4096];

    while (path && *path) {
        size_t len = strcspn(path, ":");

        if (len > 0 && len + strlen(name) + 2 < sizeof(file)) {
            snprintf(file, sizeof(file), "%.*s/%s", (int)len, path, name);
            if (access(file, X_OK) == 0)
                return true;
        }
        path += len + (path[len] == ':');
    }
    return false;
}

static void note(struct tmatrix *m, const char *what, const char *why)
{
    if (m->nnotes < sizeof(m->notes) / sizeof(m->notes[0]))
        snprintf(m->notes[m->nnotes++], sizeof(m->notes[0]), "%s: skipped: %s", what,
                 why);
}

static int add(struct tmatrix *m, enum tcp_path p, unsigned conns, size_t size,
               unsigned repeat)
{
    struct tcell *c = &m->cells[m->n];

    memset(c, 0, sizeof(*c));
    c->path = p;
    c->conns = conns;
    c->size = size;
    c->runs = calloc(repeat, sizeof(*c->runs));
    if (!c->runs)
        return -ENOMEM;
    m->n++;
    return 0;
}

/* Whether a loop on backend opens here. */
static bool loop_works(unsigned backend)
{
    struct volley_loop_opts o = VOLLEY_LOOP_OPTS_INIT;
    volley_loop *l;

    o.backend = backend;
    if (volley_loop_open(&l, &o) < 0)
        return false;
    volley_loop_close(l, 0);
    return true;
}

/* Echo cells size by size, connections by connections, server by server;
 * then the stream rows and sockperf. */
static int build(struct tmatrix *m, unsigned repeat)
{
    bool uring = loop_works(VOLLEY_BACKEND_URING);
    bool many = tcp_raise_nofile(MAX_CONNS + TCP_FD_SLACK) == 0;
    int err = 0;

    if (!uring)
        note(m, "uring", "no io_uring stream loop here");
    if (!many)
        note(m, "1000 connections", "the open file limit is too low");
    for (unsigned s = 0; s < NSIZES; s++)
        for (unsigned k = 0; k < NCONNS; k++)
            for (enum tcp_path p = P_URING; p <= P_REF && err == 0; p++)
                if ((p != P_URING || uring) && (tcp_conns[k] < MAX_CONNS || many))
                    err = add(m, p, tcp_conns[k], tcp_sizes[s], repeat);
    if (err == 0)
        err = add(m, P_STREAM, 1, STREAM_SIZE, repeat);
    if (err == 0 && program_found("iperf3"))
        err = add(m, P_IPERF3, 1, 0, repeat);
    else if (err == 0)
        note(m, "iperf3", "not found in PATH; install it to compare");
    if (err == 0 && program_found("sockperf"))
        err = add(m, P_SOCKPERF, 1, PP_SIZE, repeat);
    else if (err == 0)
        note(m, "sockperf", "not found in PATH; install it to compare");
    return err;
}

static void run_cell(struct tmatrix *m, struct tcell *c, double seconds)
{
    char why[sizeof(c->note)] = "";
    struct sample *s = &c->runs[c->nruns];
    int err;

    if (c->path == P_IPERF3)
        err = iperf3_run(seconds, s, why, sizeof(why));
    else if (c->path == P_SOCKPERF)
        err = sockperf_run(seconds, s, why, sizeof(why));
    else
        err = volley_run(c, seconds, s, why, sizeof(why));
    if (err == 0) {
        c->nruns++;
        return;
    }
    /* A cell that failed once is not run again; a volley one fails the run. */
    c->dead = true;
    snprintf(c->note, sizeof(c->note), "%s", why[0] ? why : volley_strerror(err));
    if (c->path != P_IPERF3 && c->path != P_SOCKPERF)
        m->failed = true;
}

static void run_all(struct tmatrix *m, double seconds, unsigned repeat)
{
    struct bench_progress pr;
    unsigned done = 0;

    bench_progress_start(&pr, m->n * repeat);
    m->start_ns = pr.start_ns;
    for (unsigned rep = 0; rep < repeat && !cli_stop; rep++) {
        for (unsigned i = 0; i < m->n && !cli_stop; i++, done++) {
            const struct tcell *c = &m->cells[i];

            if (c->dead)
                continue;
            bench_progress(&pr, done, "%-8s %5u conns %6zu B", path_names[c->path],
                           c->conns, c->size);
            run_cell(m, &m->cells[i], seconds);
        }
    }
    bench_progress_end(&pr);
    m->end_ns = cli_mono_ns();
}

/* ---- medians ---- */

#define MEDIAN(c, field)                                                                 \
    bench_median_of((c)->runs, sizeof(*(c)->runs), offsetof(struct sample, field),       \
                    (c)->nruns)

static const struct tcell *find(const struct tmatrix *m, enum tcp_path p, unsigned conns,
                                size_t size)
{
    for (unsigned i = 0; i < m->n; i++)
        if (m->cells[i].path == p && m->cells[i].conns == conns &&
            m->cells[i].size == size)
            return &m->cells[i];
    return NULL;
}

/* The figure a cell is ranked by: requests/s, or Gbit/s for a stream. */
static double figure(const struct tcell *c, const struct sample *s)
{
    return c->path == P_STREAM || c->path == P_IPERF3 ? s->gbps : s->rps;
}

static void medians(struct tmatrix *m)
{
    for (unsigned i = 0; i < m->n; i++) {
        struct tcell *c = &m->cells[i];

        if (c->nruns == 0)
            continue;
        c->med.rps = MEDIAN(c, rps);
        c->med.gbps = MEDIAN(c, gbps);
        c->med.p50_us = MEDIAN(c, p50_us);
        c->med.p99_us = MEDIAN(c, p99_us);
        c->med.srv_ns = MEDIAN(c, srv_ns);
        c->lo = c->hi = figure(c, &c->runs[0]);
        for (unsigned r = 0; r < c->nruns; r++) {
            c->med.requests += c->runs[r].requests;
            c->med.errors += c->runs[r].errors;
            c->lo = fmin(c->lo, figure(c, &c->runs[r]));
            c->hi = fmax(c->hi, figure(c, &c->runs[r]));
        }
    }
    for (unsigned i = 0; i < m->n; i++) {
        struct tcell *c = &m->cells[i];
        const struct tcell *ref = c->path == P_STREAM ? find(m, P_IPERF3, 1, 0)
                                                      : find(m, P_REF, c->conns, c->size);

        c->ratio = 0;
        if (c->nruns && c->path <= P_STREAM && ref && ref->nruns &&
            figure(ref, &ref->med))
            c->ratio = figure(c, &c->med) / figure(ref, &ref->med);
    }
}

/* ---- output ---- */

static double spread(const struct tcell *c)
{
    double mid = figure(c, &c->med);

    return mid > 0 ? (c->hi - c->lo) / mid * 100 : 0;
}

static void ratio_col(double r)
{
    if (r > 0)
        printf(" %6.2f\n", r);
    else
        printf(" %6s\n", "-");
}

static void print_echo(const struct tmatrix *m)
{
    printf("echo, ping-pong: requests/s, round trip (us), server CPU ns per request\n");
    printf("%-8s %5s %5s %10s %6s %8s %8s %8s %10s %6s %6s\n", "server", "conns", "size",
           "req/s", "spread", "p50", "p99", "srv-ns", "requests", "errors", "ratio");
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];

        if (c->path > P_REF || c->nruns == 0)
            continue;
        printf("%-8s %5u %5zu %10.0f %5.1f%% %8.1f %8.1f %8.0f %10" PRIu64 " %6" PRIu64,
               path_names[c->path], c->conns, c->size, c->med.rps, spread(c),
               c->med.p50_us, c->med.p99_us, c->med.srv_ns, c->med.requests,
               c->med.errors);
        ratio_col(c->ratio);
    }
}

static void print_others(const struct tmatrix *m)
{
    const struct tcell *mine = find(m, P_URING, 1, PP_SIZE);

    if (!mine || !mine->nruns)
        mine = find(m, P_EPOLL, 1, PP_SIZE);
    printf("\nstream: one connection, %d-byte writes into a sink (Gbit/s)\n",
           STREAM_SIZE);
    printf("%-8s %8s %6s %6s\n", "path", "Gbit/s", "spread", "ratio");
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];

        if ((c->path != P_STREAM && c->path != P_IPERF3) || c->nruns == 0)
            continue;
        printf("%-8s %8.2f %5.1f%%", path_names[c->path], c->med.gbps, spread(c));
        ratio_col(c->ratio);
    }
    printf("\nping-pong, one connection, %d bytes (us)\n", PP_SIZE);
    printf("%-8s %8s %8s %10s\n", "path", "p50", "p99", "req/s");
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];

        if ((c != mine && c->path != P_SOCKPERF) || c->nruns == 0)
            continue;
        printf("%-8s %8.1f %8.1f %10.0f\n", path_names[c->path], c->med.p50_us,
               c->med.p99_us, c->med.rps);
    }
}

static void print_table(const struct tmatrix *m, double seconds, unsigned repeat)
{
    char host[256];

    bench_machine(host, sizeof(host));
    printf("volley bench --tcp: loopback, %s\nmedian of %u interleaved run%s of %.2f s "
           "per cell; client: one volley loop in this process; servers: child "
           "processes\n\n",
           host, repeat, repeat == 1 ? "" : "s", seconds);
    print_echo(m);
    print_others(m);
}

static void json_num(const char *key, double v, int prec)
{
    if (v < 0 || !isfinite(v))
        printf(",\"%s\":null", key);
    else
        printf(",\"%s\":%.*f", key, prec, v);
}

static const char *kind(const struct tcell *c)
{
    if (c->path <= P_REF)
        return "echo";
    return c->path == P_SOCKPERF ? "pingpong" : "stream";
}

static void print_json(const struct tmatrix *m, double seconds, unsigned repeat)
{
    const char *sep = "";

    bench_json_open("tcp",
                    "median of %u interleaved run%s of %.2f s per cell; client: one "
                    "volley loop in this process; servers: child processes",
                    repeat, repeat == 1 ? "" : "s", seconds);
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];
        bool stream = c->path == P_STREAM || c->path == P_IPERF3;

        if (c->nruns == 0)
            continue;
        printf("%s\n{\"kind\":\"%s\",\"path\":\"%s\",\"conns\":%u,\"size\":%zu"
               ",\"repeat\":%u",
               sep, kind(c), path_names[c->path], c->conns, c->size, c->nruns);
        json_num("requests_per_s", stream ? -1 : c->med.rps, 1);
        json_num("gbit_per_s", c->med.gbps, 4);
        json_num("p50_us", stream ? -1 : c->med.p50_us, 3);
        json_num("p99_us", stream ? -1 : c->med.p99_us, 3);
        json_num("latency_error", stream || c->path == P_SOCKPERF ? -1 : LAT_HIST_ERROR,
                 6);
        json_num("server_cpu_ns_per_request", stream ? -1 : c->med.srv_ns, 1);
        json_num("min", c->lo, 3);
        json_num("max", c->hi, 3);
        printf(",\"requests\":%" PRIu64 ",\"errors\":%" PRIu64, c->med.requests,
               c->med.errors);
        json_num(c->path == P_STREAM ? "ratio_to_iperf3" : "ratio_to_ref",
                 c->ratio > 0 ? c->ratio : -1, 4);
        putchar('}');
        sep = ",";
    }
    bench_json_close();
}

static void print_notes(const struct tmatrix *m, bool json)
{
    FILE *f = json ? stderr : stdout;
    unsigned runs = 0;

    if (!json)
        putchar('\n');
    for (unsigned i = 0; i < m->nnotes; i++)
        fprintf(f, "%s\n", m->notes[i]);
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];

        runs += c->nruns;
        if (c->dead)
            fprintf(f, "%s, %u conns, %zu bytes: failed: %s\n", path_names[c->path],
                    c->conns, c->size, c->note);
    }
    fprintf(f, "total %.1f s: %u cell runs%s\n", cli_ns_seconds(m->end_ns - m->start_ns),
            runs, cli_stop ? " (interrupted)" : "");
}

static int write_plot(FILE *f, const struct tmatrix *m, double seconds, unsigned repeat)
{
    static struct bench_plot_bar bars[MAX_TCELLS];
    static struct bench_plot_lat lat[P_NPATHS];
    static char groups[MAX_TCELLS][32];
    char sub[400], host[256];
    struct bench_plot p = {
        .title = "volley bench --tcp: echo over loopback",
        .subtitle = sub,
        .y_label = "requests per second (log scale)",
        .x_label = "connections, request bytes (ping-pong)",
        .unit = "requests/s",
        .base = "the plain epoll server (ref)",
        .lat_title = "Round trip, one connection, 128-byte ping-pong: bar to p50, "
                     "whisker to p99, microseconds",
        .bars = bars,
        .lat = lat,
    };

    bench_machine(host, sizeof(host));
    snprintf(sub, sizeof(sub),
             "%s\nmedian of %u interleaved run%s of %.2f s per cell; bar labels: ratio "
             "to the plain epoll server (ref) at the same connections and size",
             host, repeat, repeat == 1 ? "" : "s", seconds);
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];

        if (c->nruns == 0 || c->path > P_SOCKPERF)
            continue;
        if (c->path <= P_REF) {
            snprintf(groups[p.nbars], sizeof(groups[0]), "%u conn%s, %zu B", c->conns,
                     c->conns == 1 ? "" : "s", c->size);
            bars[p.nbars] =
                (struct bench_plot_bar){path_names[c->path], c->conns * 100000 + c->size,
                                        c->med.rps, c->ratio, groups[p.nbars]};
            p.nbars++;
        }
        if ((c->path <= P_REF && c->conns == 1 && c->size == PP_SIZE) ||
            c->path == P_SOCKPERF)
            lat[p.nlat++] = (struct bench_plot_lat){path_names[c->path], c->med.p50_us,
                                                    c->med.p99_us};
    }
    return bench_plot_svg(f, &p);
}

int bench_tcp_main(const struct bench_tcp_opts *o)
{
    static struct tmatrix m;
    FILE *plot = NULL;
    int rc = 0;

    if (o->plot && !(plot = fopen(o->plot, "w")))
        return cli_runtime_error(o->plot, -errno);
    /* A server gone while the client writes must be an error, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    cli_catch_signals();
    if (build(&m, o->repeat) < 0) {
        rc = cli_runtime_error("setting up", -ENOMEM);
    } else {
        run_all(&m, o->seconds, o->repeat);
        medians(&m);
        /* The chart first: its error still goes into the JSON document. */
        if (plot && write_plot(plot, &m, o->seconds, o->repeat) < 0)
            rc = cli_runtime_error(o->plot, -EIO);
        if (plot && fclose(plot) != 0 && rc == 0)
            rc = cli_runtime_error(o->plot, -errno);
        plot = NULL;
        if (o->json)
            print_json(&m, o->seconds, o->repeat);
        else
            print_table(&m, o->seconds, o->repeat);
        print_notes(&m, o->json);
        if (m.failed && rc == 0) {
            cli_note_error(0, "a cell failed (the notes on standard error say which)");
            rc = 1;
        }
    }
    if (plot)
        fclose(plot);
    for (unsigned i = 0; i < m.n; i++)
        free(m.cells[i].runs);
    return rc;
}
