/* SPDX-License-Identifier: MIT */
/*
 * What the files of `volley bench --tcp` share: tcp.c runs the matrix
 * (its servers, clients and medians), tcp_out.c prints it (text, JSON,
 * chart) and tcp_plain.c is the plain client (declared in bench.h).
 */
#ifndef VOLLEY_BENCH_TCP_H
#define VOLLEY_BENCH_TCP_H

#include "bench.h"

#define TCP_STREAM_SIZE 65536
#define TCP_PP_SIZE     128 /* sockperf's row sits next to the 1-connection rows */
#define MAX_TCELLS      64

enum tcp_path { P_URING, P_EPOLL, P_REF, P_STREAM, P_IPERF3, P_SOCKPERF, P_NPATHS };
extern const char *const tcp_path_names[P_NPATHS];

/* Who drives an echo server: volley's load client or the plain one. The
 * stream rows and the other programs have their own (TC_LOAD there). */
enum tcp_client { TC_LOAD, TC_PLAIN, TC_NCLIENTS };
extern const char *const tcp_client_names[TC_NCLIENTS];

struct sample {
    double rps, p50_us, p99_us, gbps;
    double srv_ns;   /* the server's CPU time per request (-1: not known) */
    double cli_ns;   /* the client thread's (-1: not known) */
    double cli_load; /* the client thread's CPU time over the run's (1: a whole CPU) */
    uint64_t requests, errors;
};

struct tcell {
    enum tcp_path path;
    enum tcp_client client;
    unsigned conns;
    size_t size;
    struct sample *runs;
    unsigned nruns;
    bool dead;
    char note[200];
    struct sample med; /* medians; requests and errors summed */
    double lo, hi;
    double ratio;    /* of the figure to ref's (iperf3's), same client; 0: none */
    double ns_ratio; /* of srv_ns to ref's, same client; 0: none */
};

struct tmatrix {
    struct tcell cells[MAX_TCELLS];
    unsigned n;
    char notes[8][200];
    unsigned nnotes;
    bool failed; /* a volley cell failed: the exit status says so */
    int64_t start_ns, end_ns;
};

const struct tcell *tcp_find(const struct tmatrix *m, enum tcp_path p,
                             enum tcp_client client, unsigned conns, size_t size);
/* The figure a cell is ranked by: requests/s, or Gbit/s for a stream. */
double tcp_figure(const struct tcell *c, const struct sample *s);

void tcp_print_table(const struct tmatrix *m, double seconds, unsigned repeat);
void tcp_print_json(const struct tmatrix *m, double seconds, unsigned repeat);
void tcp_print_notes(const struct tmatrix *m, bool json);
int tcp_write_plot(FILE *f, const struct tmatrix *m, double seconds, unsigned repeat);

#endif /* VOLLEY_BENCH_TCP_H */
