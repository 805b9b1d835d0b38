/* SPDX-License-Identifier: MIT */
/*
 * `volley bench --threads`: one loop per core, 2 server threads against 1,
 * over loopback. Datagrams: two sender flows (`volley send --threads 2
 * --pin`, one per CPU) into `volley recv --threads N --pin --steer cpu`:
 * on loopback a datagram is processed on its sender's CPU, so with cpu
 * steering each receiving thread serves the flow sent from its own CPU.
 * TCP: ping-pong of 128 bytes at 300 connections, the tcp-load client on
 * two threads in this process, into `volley tcp-echo --threads N`. Every
 * run is interleaved with the others, as in the other matrices; the
 * figures are medians and the ratios are 2 threads over 1.
 */
#include "bench.h"

#include "cli.h"
#include "tcpload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNS BENCH_RUNS_MAX

enum { K_DGRAM, K_TCP, K_N };

struct tcell {
    unsigned kind, threads;
    double v[MAX_RUNS];
    unsigned n;
    char why[160];
    double med;
};

static double median(const struct tcell *c)
{
    return bench_median_of(c->v, sizeof(c->v[0]), 0, c->n);
}

static void run_cell(struct tcell *c, double seconds)
{
    double v = 0;
    int err;

    if (c->why[0])
        return; /* failed once: not run again */
    if (c->kind == K_DGRAM)
        err = bench_tools_threads_run(c->threads, seconds, &v, c->why, sizeof(c->why));
    else
        err = bench_tcp_threads_run(c->threads, BENCH_THREADS_CONNS, seconds, &v, c->why,
                                    sizeof(c->why));
    if (err < 0 && !c->why[0])
        snprintf(c->why, sizeof(c->why), "%s", volley_strerror(err));
    if (err == 0)
        c->v[c->n++] = v;
}

static const char *const kind_names[K_N] = {"datagrams", "tcp-echo"};
static const char *const units[K_N] = {"dgrams/s", "requests/s"};

static void print(struct tcell *cells, unsigned ncells,
                  const struct bench_threads_opts *o)
{
    char host[256];

    bench_machine(host, sizeof(host));
    if (!o->json)
        printf("volley bench --threads: loopback, %s\nmedian of %u interleaved run%s of "
               "%.2f s per cell\n\n%-10s %7s %12s %-10s %6s\n",
               host, o->repeat, o->repeat == 1 ? "" : "s", o->seconds, "kind", "threads",
               "median", "unit", "ratio");
    else
        bench_json_open("threads", "median of %u interleaved run%s of %.2f s per cell",
                        o->repeat, o->repeat == 1 ? "" : "s", o->seconds);
    for (unsigned i = 0; i < ncells; i++) {
        struct tcell *c = &cells[i];
        double base = cells[i - (c->threads == 2)].med;
        double ratio = c->n && base > 0 ? c->med / base : 0;

        if (o->json) {
            printf("%s\n{\"kind\":\"%s\",\"threads\":%u,\"runs\":%u,\"%s\":%.1f"
                   ",\"ratio_to_1_thread\":",
                   i ? "," : "", kind_names[c->kind], c->threads, c->n,
                   c->kind == K_DGRAM ? "dgrams_per_s" : "requests_per_s", c->med);
            if (ratio > 0)
                printf("%.4f}", ratio);
            else
                fputs("null}", stdout);
            continue;
        }
        printf("%-10s %7u %12.0f %-10s ", kind_names[c->kind], c->threads, c->med,
               units[c->kind]);
        if (ratio > 0)
            printf("%6.2f\n", ratio);
        else
            printf("%6s\n", "-");
    }
    if (o->json)
        bench_json_close();
}

int bench_threads_main(const struct bench_threads_opts *o)
{
    struct tcell cells[4] = {
        {.kind = K_DGRAM, .threads = 1},
        {.kind = K_DGRAM, .threads = 2},
        {.kind = K_TCP, .threads = 1},
        {.kind = K_TCP, .threads = 2},
    };
    FILE *f = o->json ? stderr : stdout;
    struct bench_progress pr;
    int rc = 0;

    if (tcp_raise_nofile(BENCH_THREADS_CONNS * 2 + TCP_FD_SLACK) < 0)
        return cli_runtime_error("raising the open file limit", -EMFILE);
    cli_catch_signals();
    bench_progress_start(&pr, 4 * o->repeat);
    for (unsigned rep = 0, done = 0; rep < o->repeat && !cli_stop; rep++)
        for (unsigned i = 0; i < 4 && !cli_stop; i++, done++) {
            bench_progress(&pr, done, "run %u/%u  %-10s %u thread%s", rep + 1, o->repeat,
                           kind_names[cells[i].kind], cells[i].threads,
                           cells[i].threads == 1 ? "" : "s");
            run_cell(&cells[i], o->seconds);
        }
    bench_progress_end(&pr);
    for (unsigned i = 0; i < 4; i++)
        cells[i].med = median(&cells[i]);
    print(cells, 4, o);
    if (!o->json)
        putchar('\n');
    for (unsigned i = 0; i < 4; i++) {
        if (!cells[i].why[0])
            continue;
        fprintf(f, "%s, %u thread%s: failed: %s\n", kind_names[cells[i].kind],
                cells[i].threads, cells[i].threads == 1 ? "" : "s", cells[i].why);
        cli_note_error(0, "%s, %u thread%s: failed: %s", kind_names[cells[i].kind],
                       cells[i].threads, cells[i].threads == 1 ? "" : "s", cells[i].why);
        rc = 1;
    }
    return rc;
}
