/* SPDX-License-Identifier: MIT */
/*
 * `volley bench --tcp`: TCP echo over loopback. Each server is a child
 * process started afresh for every run, so that client and server never
 * share a thread:
 *   uring, epoll  `volley tcp-echo` on that loop backend
 *   ref           `volley tcp-ref`, plain C epoll as the tutorials write it
 * at 1, 50, 300 and 1000 connections and 128 and 4096-byte requests,
 * ping-pong, each driven by two clients in this process in turn: the load
 * client of `volley tcp-load` (tools/tcpload.c, one volley loop) and the
 * plain epoll client of tcp_plain.c. A client's own cost and batching
 * shape what a server achieves under it, so each server is ranked against
 * ref under the same client, and by its CPU per request as well as by
 * requests/s. Beside them: one stream into `volley tcp-echo --discard`
 * next to iperf3, and sockperf's TCP ping-pong next to the one-connection
 * rows, each when the program is installed. Runs are interleaved as in the
 * datagram bench, and the figures are medians. What is printed, and how,
 * is tcp_out.c's.
 */
#include "tcp.h"

#include "cli.h"
#include "tcpload.h"

#include <arpa/inet.h>
#include <dirent.h>
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

#define SELF       "/proc/self/exe"
#define REPORT_MAX (1u << 20)
#define MAX_CONNS  1000
#define LISTEN_NS  (3 * NS_PER_S)
#define REAP_NS    (5 * NS_PER_S)

static const unsigned tcp_conns[] = {1, 50, 300, MAX_CONNS};
static const size_t tcp_sizes[] = {128, 4096};
#define NCONNS (sizeof(tcp_conns) / sizeof(tcp_conns[0]))
#define NSIZES (sizeof(tcp_sizes) / sizeof(tcp_sizes[0]))

const char *const tcp_path_names[P_NPATHS] = {
    [P_URING] = "uring",   [P_EPOLL] = "epoll",   [P_REF] = "ref",
    [P_STREAM] = "volley", [P_IPERF3] = "iperf3", [P_SOCKPERF] = "sockperf",
};
const char *const tcp_client_names[TC_NCLIENTS] = {
    [TC_LOAD] = "tcp-load", [TC_PLAIN] = "plain"};

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

/* CPU nanoseconds pid's threads have run so far (their
 * /proc/PID/task/TID/schedstat: io_uring's workers are threads of the
 * server too), -1 if unknown. A thread that ends between two readings
 * takes its time with it; the servers' threads live as long as they do. */
static double cpu_ns(pid_t pid)
{
    char path[64];
    struct dirent *d;
    double sum = 0;
    bool any = false;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    dir = opendir(path);
    if (!dir)
        return -1;
    while ((d = readdir(dir)) != NULL) {
        unsigned long long ns;
        FILE *f;

        if (d->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%.16s/schedstat", (int)pid,
                 d->d_name);
        f = fopen(path, "r");
        if (f && fscanf(f, "%llu", &ns) == 1) {
            sum += (double)ns;
            any = true;
        }
        if (f)
            fclose(f);
    }
    closedir(dir);
    return any ? sum : -1;
}

/* One client run against the server on port: the load client or the
 * plain one, as c says. */
static int drive(const struct tcell *c, const char *addr, int port, double seconds,
                 struct sample *out, char *why, size_t why_size)
{
    int64_t ns = (int64_t)(seconds * 1e9);
    int err;

    if (c->client == TC_PLAIN) {
        struct tcp_plain_cfg pc = {.port = (uint16_t)port,
                                   .conns = c->conns,
                                   .size = c->size,
                                   .duration_ns = ns};
        struct tcp_plain_result pr;

        err = tcp_plain_run(&pc, &pr, why, why_size);
        memset(out, 0, sizeof(*out));
        if (err == 0) {
            out->requests = pr.requests;
            out->rps = pr.seconds > 0 ? (double)pr.requests / pr.seconds : 0;
            out->gbps = pr.seconds > 0
                            ? (double)pr.requests * (double)c->size * 8 / pr.seconds / 1e9
                            : 0;
            out->p50_us = pr.p50_us;
            out->p99_us = pr.p99_us;
        }
        return err;
    }
    struct tcpload_cfg lc = {.addr = addr,
                             .conns = c->conns,
                             .size = c->size,
                             .mode =
                                 c->path == P_STREAM ? TCPLOAD_STREAM : TCPLOAD_PINGPONG,
                             .duration_ns = ns};
    struct tcpload_result r;

    err = tcpload_run(&lc, &r);
    if (err < 0)
        snprintf(why, why_size, "client: %s", volley_strerror(err));
    else
        sample_of(&r, out);
    return err;
}

/* A volley cell: a server of path c->path, c->client against it. */
static int volley_run(const struct tcell *c, double seconds, struct sample *out,
                      char *why, size_t why_size)
{
    char addr[32], bound[32], *argv[10], *report = malloc(REPORT_MAX);
    int port = bench_free_port(), err;
    double cpu0 = -1, cpu1 = -1;
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
    if (err >= 0) {
        /* the server's CPU over the whole client run (its dials too): how
         * much work each server does per request, whoever bounds the rate;
         * and the client's, this thread's: near a whole CPU, the rate is
         * the client's and tells little of the server */
        cpu0 = cpu_ns(ch.pid);
        int64_t t0 = cli_mono_ns(), c0 = bench_cpu_ns();
        err = drive(c, addr, port, seconds, out, why, why_size);
        int64_t t1 = cli_mono_ns(), c1 = bench_cpu_ns();
        cpu1 = cpu_ns(ch.pid);
        out->cli_ns = out->requests ? (double)(c1 - c0) / (double)out->requests : -1;
        out->cli_load = t1 > t0 ? (double)(c1 - c0) / (double)(t1 - t0) : -1;
        if (stop_server(&ch, report, REPORT_MAX) < 0 && err >= 0) {
            snprintf(why, why_size, "server failed: %.120s", report);
            err = -ECHILD;
        }
    }
    if (err >= 0)
        out->srv_ns = cpu0 >= 0 && cpu1 >= cpu0 && out->requests
                          ? (cpu1 - cpu0) / (double)out->requests
                          : -1;
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
                             .size = TCP_PP_SIZE,
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
    snprintf(size_s, sizeof(size_s), "%d", TCP_PP_SIZE);
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
    out->srv_ns = out->cli_ns = out->cli_load = -1; /* not measured for other programs */
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
    out->srv_ns = out->cli_ns = out->cli_load = -1; /* not measured for other programs */
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

static int add(struct tmatrix *m, enum tcp_path p, enum tcp_client client, unsigned conns,
               size_t size, unsigned repeat)
{
    struct tcell *c = &m->cells[m->n];

    memset(c, 0, sizeof(*c));
    c->path = p;
    c->client = client;
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

/* Echo cells size by size, connections by connections, client by client,
 * server by server (the servers a ratio compares run back to back); then
 * the stream rows and sockperf. */
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
            for (enum tcp_client cl = TC_LOAD; cl < TC_NCLIENTS; cl++)
                for (enum tcp_path p = P_URING; p <= P_REF && err == 0; p++)
                    if ((p != P_URING || uring) && (tcp_conns[k] < MAX_CONNS || many))
                        err = add(m, p, cl, tcp_conns[k], tcp_sizes[s], repeat);
    if (err == 0)
        err = add(m, P_STREAM, TC_LOAD, 1, TCP_STREAM_SIZE, repeat);
    if (err == 0 && program_found("iperf3"))
        err = add(m, P_IPERF3, TC_LOAD, 1, 0, repeat);
    else if (err == 0)
        note(m, "iperf3", "not found in PATH; install it to compare");
    if (err == 0 && program_found("sockperf"))
        err = add(m, P_SOCKPERF, TC_LOAD, 1, TCP_PP_SIZE, repeat);
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
            bench_progress(&pr, done, "%-8s %-8s %5u conns %6zu B",
                           tcp_path_names[c->path], tcp_client_names[c->client], c->conns,
                           c->size);
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

const struct tcell *tcp_find(const struct tmatrix *m, enum tcp_path p,
                             enum tcp_client client, unsigned conns, size_t size)
{
    for (unsigned i = 0; i < m->n; i++)
        if (m->cells[i].path == p && m->cells[i].client == client &&
            m->cells[i].conns == conns && m->cells[i].size == size)
            return &m->cells[i];
    return NULL;
}

double tcp_figure(const struct tcell *c, const struct sample *s)
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
        c->med.cli_ns = MEDIAN(c, cli_ns);
        c->med.cli_load = MEDIAN(c, cli_load);
        c->lo = c->hi = tcp_figure(c, &c->runs[0]);
        for (unsigned r = 0; r < c->nruns; r++) {
            c->med.requests += c->runs[r].requests;
            c->med.errors += c->runs[r].errors;
            c->lo = fmin(c->lo, tcp_figure(c, &c->runs[r]));
            c->hi = fmax(c->hi, tcp_figure(c, &c->runs[r]));
        }
    }
    for (unsigned i = 0; i < m->n; i++) {
        struct tcell *c = &m->cells[i];
        const struct tcell *ref = c->path == P_STREAM
                                      ? tcp_find(m, P_IPERF3, TC_LOAD, 1, 0)
                                      : tcp_find(m, P_REF, c->client, c->conns, c->size);

        c->ratio = c->ns_ratio = 0;
        if (!c->nruns || c->path > P_STREAM || !ref || !ref->nruns)
            continue;
        if (tcp_figure(ref, &ref->med) > 0)
            c->ratio = tcp_figure(c, &c->med) / tcp_figure(ref, &ref->med);
        if (c->path != P_STREAM && c->med.srv_ns > 0 && ref->med.srv_ns > 0)
            c->ns_ratio = c->med.srv_ns / ref->med.srv_ns;
    }
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
        if (plot && tcp_write_plot(plot, &m, o->seconds, o->repeat) < 0)
            rc = cli_runtime_error(o->plot, -EIO);
        if (plot && fclose(plot) != 0 && rc == 0)
            rc = cli_runtime_error(o->plot, -errno);
        plot = NULL;
        if (o->json)
            tcp_print_json(&m, o->seconds, o->repeat);
        else
            tcp_print_table(&m, o->seconds, o->repeat);
        tcp_print_notes(&m, o->json);
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
