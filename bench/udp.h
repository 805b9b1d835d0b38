/* SPDX-License-Identifier: MIT */
/*
 * The datagram matrix of `volley bench` (its default; "udp" in the JSON):
 * its settings, cells and results, shared by cmd.c (the options, and which
 * matrix runs), udp.c (the cells, their interleaved runs and medians) and
 * report.c (the table, JSON, notes and chart made of them). Private to
 * those three: the other matrices (tcp.c, unix.c, threads.c) have their
 * own cells.
 */
#ifndef VOLLEY_BENCH_UDP_H
#define VOLLEY_BENCH_UDP_H

#include "bench.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define MAX_SIZES 16
#define MAX_CELLS (MAX_SIZES * BENCH_NPATHS + BENCH_NPATHS)
#define LAT_SIZE  64

struct bench_cfg {
    double seconds;
    size_t sizes[MAX_SIZES];
    unsigned nsizes;
    unsigned paths; /* bit per enum bench_path */
    unsigned repeat;
    bool json;
    bool latency;
    const char *plot;
    struct bench_pin pin;
    bool tcp;
    bool unix_pair;
    bool threads;
    const char *udp_flag;    /* a flag --tcp, --unix and --threads do not take */
    const char *seconds_arg; /* --seconds, which --unix does not take */
    const char *plot_arg;    /* --plot, which --unix and --threads do not take */
};

enum cell_kind { CELL_TPUT, CELL_LAT };

struct cell {
    enum cell_kind kind;
    enum bench_path path;
    size_t size;
    struct bench_result *tput;    /* one per repetition */
    struct bench_lat_result *lat; /* one per repetition */
    unsigned runs;                /* repetitions that produced a result */
    bool dead;                    /* failed (iperf3 only): not run again */
    char note[160];
    /* filled in once every repetition is done */
    struct bench_result med;
    struct bench_lat_result lmed;
    double lo, hi;    /* smallest and largest dgrams/s (or p50) of the runs */
    double ratio;     /* median over the baseline's median, 0: no baseline */
    double ratio_raw; /* throughput: median over raw's median, 0: no raw */
};

struct matrix {
    struct cell cells[MAX_CELLS];
    unsigned n;
    char notes[BENCH_NPATHS * 2][200];
    unsigned nnotes;
    int64_t start_ns, end_ns;
};

/* The paths that need Linux's sendmmsg/recvmmsg, GSO/GRO or io_uring: the
 * mmsg and uring backends, and raw's direct calls. */
bool bench_path_linux_only(enum bench_path p);

/* Runs the matrix cfg describes and prints it (the chart too, with --plot):
 * the exit status. */
int bench_udp_main(const struct bench_cfg *cfg);

/* report.c, once the medians are in: the table, or the --json cells. */
void bench_udp_table(const struct matrix *m, const struct bench_cfg *cfg);
void bench_udp_json(const struct matrix *m, const struct bench_cfg *cfg);
/* The skipped paths, failed cells and the total time, after either (to
 * standard error with --json). */
void bench_udp_notes(const struct matrix *m, const struct bench_cfg *cfg);
/* The chart as an SVG document into f; negative errno when writing failed. */
int bench_udp_plot(FILE *f, const struct matrix *m, const struct bench_cfg *cfg);

#endif /* VOLLEY_BENCH_UDP_H */
