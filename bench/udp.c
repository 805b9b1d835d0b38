/* SPDX-License-Identifier: MIT */
/*
 * The datagram matrix of `volley bench`: a throughput cell per path and
 * payload size and a latency cell per path, each run --repeat times,
 * interleaved: one repetition visits every cell once, round-robin, before
 * the next starts, so that a slow spell of a noisy machine hits all cells
 * alike rather than all runs of one. Each cell's figure is the median of
 * its runs; ratios are ratios of medians. report.c prints them.
 */
#include "bench.h"
#include "udp.h"

#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IPERF_GUESS  200000.0 /* datagrams/s, before anything was measured */
#define IPERF_MIN_DG 1000u

bool bench_path_linux_only(enum bench_path p)
{
    return p != BENCH_BASELINE && p != BENCH_SCALAR && p != BENCH_TOOLS &&
           p != BENCH_IPERF3;
}

/* ---- the matrix ---- */

/* The feature path p needs that this machine lacks, or NULL. */
static const char *path_lacks(enum bench_path p, const struct volley_caps *c,
                              const char **why)
{
    if (!VOLLEY_HAVE_LINUX && bench_path_linux_only(p)) {
        *why = "not available on this platform: built without the Linux parts";
        return "sendmmsg, GSO or io_uring";
    }
    if ((p == BENCH_GSO_GRO || p == BENCH_GSO_SPLIT || p == BENCH_GSO_PLAIN ||
         p == BENCH_URING_GSO || p == BENCH_URING_ZC || p == BENCH_RAW ||
         p == BENCH_GRO_SEGS) &&
        !c->gso.ok) {
        *why = cli_feature_why(&c->gso);
        return "gso";
    }
    if ((p == BENCH_RAW || p == BENCH_GRO_SEGS || p == BENCH_GSO_SPLIT) && !c->gro.ok) {
        *why = cli_feature_why(&c->gro);
        return "gro";
    }
    if ((p == BENCH_URING || p == BENCH_URING_GSO || p == BENCH_URING_ZC) &&
        !c->uring.ok) {
        *why = cli_feature_why(&c->uring);
        return "uring";
    }
    if (p == BENCH_URING_ZC && !c->uring_zc.ok) {
        *why = cli_feature_why(&c->uring_zc);
        return "zero-copy sends";
    }
    if (p == BENCH_IPERF3 && !bench_iperf3_found()) {
        *why = "not found in PATH; install it to compare";
        return "iperf3";
    }
    return NULL;
}

static int add_cell(struct matrix *m, enum cell_kind kind, enum bench_path p, size_t size,
                    unsigned repeat)
{
    struct cell *c = &m->cells[m->n];

    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->path = p;
    c->size = size;
    if (kind == CELL_TPUT)
        c->tput = calloc(repeat, sizeof(*c->tput));
    else
        c->lat = calloc(repeat, sizeof(*c->lat));
    if (!c->tput && !c->lat)
        return -ENOMEM;
    m->n++;
    return 0;
}

static void matrix_free(struct matrix *m)
{
    for (unsigned i = 0; i < m->n; i++) {
        free(m->cells[i].tput);
        free(m->cells[i].lat);
    }
}

/* Throughput cells size by size in path order, then a latency cell per path. */
static int matrix_build(struct matrix *m, const struct bench_cfg *c)
{
    struct volley_caps caps;
    bool lacking[BENCH_NPATHS] = {false};
    int err = volley_probe(&caps, sizeof(caps));

    if (err < 0)
        return err;
    for (enum bench_path p = 0; p < BENCH_NPATHS; p++) {
        const char *why, *lack;

        if (!(c->paths & (1u << p)))
            continue;
        lack = path_lacks(p, &caps, &why);
        if (!lack)
            continue;
        lacking[p] = true;
        snprintf(m->notes[m->nnotes++], sizeof(m->notes[0]), "%s: skipped: no %s (%s)",
                 bench_path_name(p), lack, why);
    }
    for (unsigned i = 0; i < c->nsizes; i++)
        for (enum bench_path p = 0; p < BENCH_NPATHS; p++)
            if (c->paths & (1u << p) && !lacking[p] &&
                (err = add_cell(m, CELL_TPUT, p, c->sizes[i], c->repeat)) < 0)
                return err;
    /* raw is a throughput ceiling; tools and iperf3 have no ping-pong */
    for (enum bench_path p = 0; c->latency && p < BENCH_TOOLS; p++)
        if (p != BENCH_RAW && c->paths & (1u << p) && !lacking[p] &&
            (err = add_cell(m, CELL_LAT, p, LAT_SIZE, c->repeat)) < 0)
            return err;
    return 0;
}

static const struct cell *find_cell(const struct matrix *m, enum cell_kind kind,
                                    enum bench_path p, size_t size)
{
    for (unsigned i = 0; i < m->n; i++)
        if (m->cells[i].kind == kind && m->cells[i].path == p && m->cells[i].size == size)
            return &m->cells[i];
    return NULL;
}

/* iperf3 is told how many datagrams to send (its -t takes whole seconds):
 * enough for about `seconds` at the rate iperf3 itself, or else the
 * baseline, last sent at this size. */
static uint64_t iperf_dgrams(const struct matrix *m, const struct cell *c, double seconds)
{
    const struct cell *base = find_cell(m, CELL_TPUT, BENCH_BASELINE, c->size);
    const struct bench_result *last = NULL;
    double rate = IPERF_GUESS, n;

    if (c->runs)
        last = &c->tput[c->runs - 1];
    else if (base && base->runs)
        last = &base->tput[base->runs - 1];
    if (last && last->seconds > 0 && last->sent)
        rate = (double)last->sent / last->seconds;
    n = rate * seconds;
    if (n < IPERF_MIN_DG)
        n = IPERF_MIN_DG;
    return n > (double)BENCH_CAP ? BENCH_CAP : (uint64_t)n;
}

static int run_cell(struct matrix *m, struct cell *c, const struct bench_cfg *cfg)
{
    char why[sizeof(c->note)] = "";
    int err;

    if (c->kind == CELL_LAT)
        err = bench_latency_cell(c->path, c->size, cfg->seconds, &cfg->pin,
                                 &c->lat[c->runs]);
    else if (c->path == BENCH_IPERF3)
        err = bench_iperf3_cell(c->size, iperf_dgrams(m, c, cfg->seconds), cfg->seconds,
                                &cfg->pin, &c->tput[c->runs], why, sizeof(why));
    else if (c->path == BENCH_TOOLS)
        err =
            bench_tools_cell(c->size, cfg->seconds, &c->tput[c->runs], why, sizeof(why));
    else
        err = bench_cell(c->path, c->size, cfg->seconds, &cfg->pin, &c->tput[c->runs]);
    if (err == 0) {
        c->runs++;
    } else if (c->path == BENCH_TOOLS) {
        fprintf(stderr, "volley bench: tools at %zu bytes: %s\n", c->size, why);
    } else if (c->path == BENCH_IPERF3) {
        /* Someone else's program: note it and go on without it. */
        c->dead = true;
        snprintf(c->note, sizeof(c->note), "%s", why);
        err = 0;
    }
    return err;
}

static int matrix_run(struct matrix *m, const struct bench_cfg *cfg)
{
    struct bench_progress pr;
    unsigned done = 0;
    int err = 0;

    bench_progress_start(&pr, m->n * cfg->repeat);
    m->start_ns = pr.start_ns;
    for (unsigned rep = 0; rep < cfg->repeat && !err && !cli_stop; rep++) {
        for (unsigned i = 0; i < m->n && !err && !cli_stop; i++, done++) {
            struct cell *c = &m->cells[i];

            if (c->dead)
                continue;
            bench_progress(&pr, done, "run %u/%u  %-10s %-10s %5zu B", rep + 1,
                           cfg->repeat, bench_path_name(c->path),
                           c->kind == CELL_LAT ? "latency" : "throughput", c->size);
            err = run_cell(m, c, cfg);
            if (err < 0) {
                bench_progress_end(&pr);
                fprintf(stderr, "%s: %s %s at %zu bytes: %s\n", cli_name,
                        bench_path_name(c->path),
                        c->kind == CELL_LAT ? "latency" : "throughput", c->size,
                        volley_strerror(err));
                cli_note_error(err, "%s %s at %zu bytes: %s", bench_path_name(c->path),
                               c->kind == CELL_LAT ? "latency" : "throughput", c->size,
                               volley_strerror(err));
            }
        }
    }
    if (!err)
        bench_progress_end(&pr);
    m->end_ns = cli_mono_ns();
    return err;
}

/* ---- medians ---- */

#define TPUT_MEDIAN(c, field)                                                            \
    bench_median_of((c)->tput, sizeof(*(c)->tput), offsetof(struct bench_result, field), \
                    (c)->runs)
#define LAT_MEDIAN(c, field)                                                             \
    bench_median_of((c)->lat, sizeof(*(c)->lat),                                         \
                    offsetof(struct bench_lat_result, field), (c)->runs)

static void tput_medians(struct cell *c)
{
    struct bench_result *r = &c->med;

    memset(r, 0, sizeof(*r));
    r->path = c->path;
    r->size = c->size;
    r->dgrams_per_s = TPUT_MEDIAN(c, dgrams_per_s);
    r->gbit_per_s = TPUT_MEDIAN(c, gbit_per_s);
    r->tx_syscalls_per_dgram = TPUT_MEDIAN(c, tx_syscalls_per_dgram);
    r->rx_syscalls_per_dgram = TPUT_MEDIAN(c, rx_syscalls_per_dgram);
    r->tx_cpu_ns_per_dgram = TPUT_MEDIAN(c, tx_cpu_ns_per_dgram);
    r->rx_cpu_ns_per_dgram = TPUT_MEDIAN(c, rx_cpu_ns_per_dgram);
    c->lo = c->hi = c->tput[0].dgrams_per_s;
    for (unsigned i = 0; i < c->runs; i++) {
        r->sent += c->tput[i].sent;
        r->received += c->tput[i].received;
        r->lost += c->tput[i].lost;
        c->lo = fmin(c->lo, c->tput[i].dgrams_per_s);
        c->hi = fmax(c->hi, c->tput[i].dgrams_per_s);
    }
}

static void lat_medians(struct cell *c)
{
    struct bench_lat_result *r = &c->lmed;

    memset(r, 0, sizeof(*r));
    r->path = c->path;
    r->size = c->size;
    r->p50_us = LAT_MEDIAN(c, p50_us);
    r->p99_us = LAT_MEDIAN(c, p99_us);
    r->min_us = c->lat[0].min_us;
    r->max_us = c->lat[0].max_us;
    c->lo = c->hi = c->lat[0].p50_us;
    for (unsigned i = 0; i < c->runs; i++) {
        r->samples += c->lat[i].samples;
        r->lost += c->lat[i].lost;
        r->min_us = fmin(r->min_us, c->lat[i].min_us);
        r->max_us = fmax(r->max_us, c->lat[i].max_us);
        c->lo = fmin(c->lo, c->lat[i].p50_us);
        c->hi = fmax(c->hi, c->lat[i].p50_us);
    }
}

static void matrix_medians(struct matrix *m)
{
    for (unsigned i = 0; i < m->n; i++) {
        struct cell *c = &m->cells[i];

        if (c->runs == 0)
            continue;
        if (c->kind == CELL_TPUT)
            tput_medians(c);
        else
            lat_medians(c);
    }
    for (unsigned i = 0; i < m->n; i++) {
        struct cell *c = &m->cells[i];
        const struct cell *b = find_cell(m, c->kind, BENCH_BASELINE, c->size);
        const struct cell *raw = find_cell(m, CELL_TPUT, BENCH_RAW, c->size);

        c->ratio = c->ratio_raw = 0;
        if (c->kind == CELL_TPUT && c->runs && raw && raw->runs &&
            raw->med.dgrams_per_s > 0)
            c->ratio_raw = c->med.dgrams_per_s / raw->med.dgrams_per_s;
        if (c->runs == 0 || !b || b->runs == 0)
            continue;
        if (c->kind == CELL_TPUT && b->med.dgrams_per_s > 0)
            c->ratio = c->med.dgrams_per_s / b->med.dgrams_per_s;
        else if (c->kind == CELL_LAT && b->lmed.p50_us > 0)
            c->ratio = c->lmed.p50_us / b->lmed.p50_us;
    }
}

int bench_udp_main(const struct bench_cfg *cfg)
{
    static struct matrix m;
    FILE *plot = NULL;
    int err, rc = 0;

    /* Open the chart first: a bad path should not cost a whole run. */
    if (cfg->plot && !(plot = fopen(cfg->plot, "w")))
        return cli_runtime_error(cfg->plot, -errno);
    cli_catch_signals();
    err = matrix_build(&m, cfg);
    if (err < 0)
        rc = cli_runtime_error("setting up", err);
    else if (matrix_run(&m, cfg) < 0)
        rc = 1; /* matrix_run said what failed */
    if (rc == 0) {
        matrix_medians(&m);
        /* The chart first: its error still goes into the JSON document. */
        if (plot && bench_udp_plot(plot, &m, cfg) < 0)
            rc = cli_runtime_error(cfg->plot, -EIO);
        if (plot && fclose(plot) != 0 && rc == 0)
            rc = cli_runtime_error(cfg->plot, -errno);
        plot = NULL;
        if (cfg->json)
            bench_udp_json(&m, cfg);
        else
            bench_udp_table(&m, cfg);
        bench_udp_notes(&m, cfg);
    }
    if (plot)
        fclose(plot);
    matrix_free(&m);
    return rc;
}
