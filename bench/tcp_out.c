/* SPDX-License-Identifier: MIT */
/*
 * What `volley bench --tcp` prints of its matrix (tcp.c): the text tables,
 * the --json cells, the notes and the --plot chart. Each echo server is
 * ranked against ref under the same client, by requests/s and by its CPU
 * per request, so that what a client's own cost does to the figures shows
 * as a difference between the two clients' columns.
 */
#include "tcp.h"

#include "cli.h"
#include "seq.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

static double spread(const struct tcell *c)
{
    double mid = tcp_figure(c, &c->med);

    return mid > 0 ? (c->hi - c->lo) / mid * 100 : 0;
}

static void ratio_col(double r)
{
    if (r > 0)
        printf(" %6.2f", r);
    else
        printf(" %6s", "-");
}

/* v in width columns with prec decimals, or a dash when it is not known
 * (negative). */
static void num_col(double v, int width, int prec)
{
    if (v >= 0)
        printf(" %*.*f", width, prec, v);
    else
        printf(" %*s", width, "-");
}

/* One echo cell's four figures in the side-by-side table; dashes when it
 * has no runs. */
static void pair_cols(const struct tcell *c)
{
    if (!c || c->nruns == 0) {
        printf("   %9s %6s %7s %6s", "-", "-", "-", "-");
        return;
    }
    printf("   %9.0f", c->med.rps);
    ratio_col(c->ratio);
    num_col(c->med.srv_ns, 7, 0);
    ratio_col(c->ns_ratio);
}

static void print_pairs(const struct tmatrix *m)
{
    printf("echo, ping-pong, under each client: requests/s and the server's CPU ns per\n"
           "request; x ref: the ratio to ref's under the same client\n");
    printf("%-6s %5s %5s   %-31s   %s\n", "", "", "", "client: tcp-load",
           "client: plain");
    printf("%-6s %5s %5s", "server", "conns", "size");
    for (enum tcp_client cl = TC_LOAD; cl < TC_NCLIENTS; cl++)
        printf("   %9s %6s %7s %6s", "req/s", "x ref", "srv-ns", "x ref");
    putchar('\n');
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];

        /* one line per server, conns and size: at its tcp-load cell */
        if (c->path > P_REF || c->client != TC_LOAD)
            continue;
        printf("%-6s %5u %5zu", tcp_path_names[c->path], c->conns, c->size);
        pair_cols(c);
        pair_cols(tcp_find(m, c->path, TC_PLAIN, c->conns, c->size));
        putchar('\n');
    }
}

static void print_echo(const struct tmatrix *m)
{
    printf("\necho, ping-pong, each run: requests/s, round trip (us), server and "
           "client CPU ns\nper request, and the client's CPU load (1.00: it used a "
           "whole CPU, so the rate\nis the client's)\n");
    printf("%-8s %-8s %5s %5s %10s %6s %8s %8s %8s %8s %5s %10s %6s %6s %6s\n", "server",
           "client", "conns", "size", "req/s", "spread", "p50", "p99", "srv-ns", "cli-ns",
           "load", "requests", "errors", "ratio", "ns/ref");
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];

        if (c->path > P_REF || c->nruns == 0)
            continue;
        printf("%-8s %-8s %5u %5zu %10.0f %5.1f%%", tcp_path_names[c->path],
               tcp_client_names[c->client], c->conns, c->size, c->med.rps, spread(c));
        num_col(c->med.p50_us, 8, 1);
        num_col(c->med.p99_us, 8, 1);
        num_col(c->med.srv_ns, 8, 0);
        num_col(c->med.cli_ns, 8, 0);
        num_col(c->med.cli_load, 5, 2);
        printf(" %10" PRIu64 " %6" PRIu64, c->med.requests, c->med.errors);
        ratio_col(c->ratio);
        ratio_col(c->ns_ratio);
        putchar('\n');
    }
}

static void print_others(const struct tmatrix *m)
{
    const struct tcell *mine = tcp_find(m, P_URING, TC_LOAD, 1, TCP_PP_SIZE);

    if (!mine || !mine->nruns)
        mine = tcp_find(m, P_EPOLL, TC_LOAD, 1, TCP_PP_SIZE);
    printf("\nstream: one connection, %d-byte writes into a sink (Gbit/s)\n",
           TCP_STREAM_SIZE);
    printf("%-8s %8s %6s %6s\n", "path", "Gbit/s", "spread", "ratio");
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];

        if ((c->path != P_STREAM && c->path != P_IPERF3) || c->nruns == 0)
            continue;
        printf("%-8s %8.2f %5.1f%%", tcp_path_names[c->path], c->med.gbps, spread(c));
        ratio_col(c->ratio);
        putchar('\n');
    }
    printf("\nping-pong, one connection, %d bytes (us)\n", TCP_PP_SIZE);
    printf("%-8s %8s %8s %10s\n", "path", "p50", "p99", "req/s");
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];

        if ((c != mine && c->path != P_SOCKPERF) || c->nruns == 0)
            continue;
        printf("%-8s %8.1f %8.1f %10.0f\n", tcp_path_names[c->path], c->med.p50_us,
               c->med.p99_us, c->med.rps);
    }
}

#define CLIENTS_TEXT                                                                     \
    "clients, in this process, each in turn: tcp-load (one volley loop) and plain "      \
    "(plain C epoll, one request in flight per connection); servers: child processes"

void tcp_print_table(const struct tmatrix *m, double seconds, unsigned repeat)
{
    char host[256];

    bench_machine(host, sizeof(host));
    printf("volley bench --tcp: loopback, %s\nmedian of %u interleaved run%s of %.2f s "
           "per cell; " CLIENTS_TEXT "\n\n",
           host, repeat, repeat == 1 ? "" : "s", seconds);
    print_pairs(m);
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

static const char *client_of(const struct tcell *c)
{
    if (c->path == P_IPERF3 || c->path == P_SOCKPERF)
        return tcp_path_names[c->path]; /* the program's own client */
    return tcp_client_names[c->client];
}

void tcp_print_json(const struct tmatrix *m, double seconds, unsigned repeat)
{
    const char *sep = "";

    bench_json_open("tcp",
                    "median of %u interleaved run%s of %.2f s per cell; " CLIENTS_TEXT,
                    repeat, repeat == 1 ? "" : "s", seconds);
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];
        bool stream = c->path == P_STREAM || c->path == P_IPERF3;

        if (c->nruns == 0)
            continue;
        printf("%s\n{\"kind\":\"%s\",\"path\":\"%s\",\"client\":\"%s\",\"conns\":%u"
               ",\"size\":%zu,\"repeat\":%u",
               sep, kind(c), tcp_path_names[c->path], client_of(c), c->conns, c->size,
               c->nruns);
        json_num("requests_per_s", stream ? -1 : c->med.rps, 1);
        json_num("gbit_per_s", c->med.gbps, 4);
        json_num("p50_us", stream ? -1 : c->med.p50_us, 3);
        json_num("p99_us", stream ? -1 : c->med.p99_us, 3);
        json_num("latency_error", stream || c->path == P_SOCKPERF ? -1 : LAT_HIST_ERROR,
                 6);
        json_num("server_cpu_ns_per_request", stream ? -1 : c->med.srv_ns, 1);
        json_num("client_cpu_ns_per_request", stream ? -1 : c->med.cli_ns, 1);
        json_num("client_cpu_load", stream ? -1 : c->med.cli_load, 3);
        json_num("min", c->lo, 3);
        json_num("max", c->hi, 3);
        printf(",\"requests\":%" PRIu64 ",\"errors\":%" PRIu64, c->med.requests,
               c->med.errors);
        json_num(c->path == P_STREAM ? "ratio_to_iperf3" : "ratio_to_ref",
                 c->ratio > 0 ? c->ratio : -1, 4);
        if (c->path <= P_REF)
            json_num("server_cpu_ratio_to_ref", c->ns_ratio > 0 ? c->ns_ratio : -1, 4);
        putchar('}');
        sep = ",";
    }
    bench_json_close();
}

void tcp_print_notes(const struct tmatrix *m, bool json)
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
            fprintf(f, "%s, client %s, %u conns, %zu bytes: failed: %s\n",
                    tcp_path_names[c->path], client_of(c), c->conns, c->size, c->note);
    }
    fprintf(f, "total %.1f s: %u cell runs%s\n", cli_ns_seconds(m->end_ns - m->start_ns),
            runs, cli_stop ? " (interrupted)" : "");
}

/* A bar's name: the server, and the client when it is the plain one. */
static const char *bar_name(const struct tcell *c)
{
    static const char *const plain[P_NPATHS] = {
        [P_URING] = "uring, plain client",
        [P_EPOLL] = "epoll, plain client",
        [P_REF] = "ref, plain client",
    };

    return c->client == TC_PLAIN && plain[c->path] ? plain[c->path]
                                                   : tcp_path_names[c->path];
}

int tcp_write_plot(FILE *f, const struct tmatrix *m, double seconds, unsigned repeat)
{
    static struct bench_plot_bar bars[MAX_TCELLS];
    static struct bench_plot_lat lat[MAX_TCELLS];
    static char groups[MAX_TCELLS][32];
    char sub[600], host[256];
    struct bench_plot p = {
        .title = "volley bench --tcp: echo over loopback",
        .subtitle = sub,
        .y_label = "requests per second (log scale)",
        .x_label = "connections, request bytes (ping-pong)",
        .unit = "requests/s",
        .base = "the plain epoll server (ref) under the same client",
        .lat_title = "Round trip, one connection, 128-byte ping-pong: bar to p50, "
                     "whisker to p99, microseconds",
        .bars = bars,
        .lat = lat,
    };

    bench_machine(host, sizeof(host));
    snprintf(sub, sizeof(sub),
             "%s\nmedian of %u interleaved run%s of %.2f s per cell; bar labels: ratio "
             "to the plain epoll server (ref) at the same connections and size, under "
             "the same client",
             host, repeat, repeat == 1 ? "" : "s", seconds);
    for (unsigned i = 0; i < m->n; i++) {
        const struct tcell *c = &m->cells[i];

        if (c->nruns == 0 || c->path > P_SOCKPERF)
            continue;
        if (c->path <= P_REF) {
            snprintf(groups[p.nbars], sizeof(groups[0]), "%u conn%s, %zu B", c->conns,
                     c->conns == 1 ? "" : "s", c->size);
            bars[p.nbars] =
                (struct bench_plot_bar){bar_name(c), c->conns * 100000 + c->size,
                                        c->med.rps, c->ratio, groups[p.nbars]};
            p.nbars++;
        }
        if ((c->path <= P_REF && c->conns == 1 && c->size == TCP_PP_SIZE) ||
            c->path == P_SOCKPERF)
            lat[p.nlat++] =
                (struct bench_plot_lat){bar_name(c), c->med.p50_us, c->med.p99_us};
    }
    return bench_plot_svg(f, &p);
}
