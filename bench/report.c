/* SPDX-License-Identifier: MIT */
/*
 * What `volley bench` prints. For every matrix: the progress line on
 * standard error, the machine line, and the frame of the --json document.
 * For the datagram matrix (udp.c): the table, its --json cells, the notes
 * under them, and the --plot chart (drawn by plot.c).
 */
#include "bench.h"
#include "udp.h"

#include "cli.h"
#include "seq.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* ---- every matrix ---- */

void bench_progress_start(struct bench_progress *p, unsigned total)
{
    p->live = isatty(STDERR_FILENO);
    p->total = total;
    p->start_ns = cli_mono_ns();
    p->last_ns = 0;
}

void bench_progress(struct bench_progress *p, unsigned done, const char *what, ...)
{
    int64_t now = cli_mono_ns();
    double elapsed = cli_ns_seconds(now - p->start_ns);
    char line[160];
    va_list ap;

    if (!p->live && p->last_ns && now - p->last_ns < BENCH_PROGRESS_S * NS_PER_S)
        return;
    p->last_ns = now;
    va_start(ap, what);
    vsnprintf(line, sizeof(line), what, ap);
    va_end(ap);
    if (p->live)
        fprintf(stderr, "\r\033[K[%3u/%u] %s  %5.1f s", done + 1, p->total, line,
                elapsed);
    else
        fprintf(stderr, "%s: [%u/%u] %s, %.1f s", cli_name, done + 1, p->total, line,
                elapsed);
    if (done > 0)
        fprintf(stderr, ", about %.0f s left", elapsed / done * (p->total - done));
    fputs(p->live ? "" : "\n", stderr);
    fflush(stderr);
}

void bench_progress_end(const struct bench_progress *p)
{
    if (p->live)
        fputs("\r\033[K", stderr);
}

void bench_machine(char *buf, size_t size)
{
    struct utsname u;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;

    if (uname(&u) != 0)
        memset(&u, 0, sizeof(u));
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
    snprintf(buf, size, "%s %s %s, %ld CPUs, %s", u.sysname, u.release, u.machine,
             sysconf(_SC_NPROCESSORS_ONLN), when);
}

void bench_json_open(const char *matrix, const char *header, ...)
{
    char host[256], line[400];
    va_list ap;

    va_start(ap, header);
    vsnprintf(line, sizeof(line), header, ap);
    va_end(ap);
    bench_machine(host, sizeof(host));
    cli_doc_end();
    fputs("\"matrix\":", stdout);
    cli_json_string(matrix);
    fputs(",\"machine\":", stdout);
    cli_json_string(host);
    fputs(",\"header\":", stdout);
    cli_json_string(line);
    fputs(",\"cells\":[", stdout);
}

void bench_json_close(void)
{
    fputs("\n]", stdout);
}

/* ---- the datagram matrix ---- */

static double spread(const struct cell *c)
{
    double mid = c->kind == CELL_TPUT ? c->med.dgrams_per_s : c->lmed.p50_us;

    return mid > 0 ? (c->hi - c->lo) / mid * 100 : 0;
}

/* A per-datagram cost, or "-" where it is not known (iperf3). */
static void cost(double v, int width, int prec)
{
    if (v < 0)
        printf(" %*s", width, "-");
    else
        printf(" %*.*f", width, prec, v);
}

void bench_udp_table(const struct matrix *m, const struct bench_cfg *cfg)
{
    char host[256];
    bool lat = false;

    bench_machine(host, sizeof(host));
    printf("volley bench: loopback, %s\nmedian of %u interleaved run%s of %.2f s per "
           "cell\n\n",
           host, cfg->repeat, cfg->repeat == 1 ? "" : "s", cfg->seconds);
    printf("%-10s %5s %10s %6s %7s %9s %9s %8s %8s %10s %10s %8s %6s %6s\n", "path",
           "size", "dgrams/s", "spread", "Gbit/s", "tx_sys/dg", "rx_sys/dg", "tx_ns/dg",
           "rx_ns/dg", "sent", "received", "lost", "ratio", "/raw");
    for (unsigned i = 0; i < m->n; i++) {
        const struct cell *c = &m->cells[i];
        const struct bench_result *r = &c->med;

        if (c->kind == CELL_LAT) {
            lat = true;
            continue;
        }
        if (c->runs == 0)
            continue;
        printf("%-10s %5zu %10.0f %5.1f%% %7.3f", bench_path_name(c->path), c->size,
               r->dgrams_per_s, spread(c), r->gbit_per_s);
        cost(r->tx_syscalls_per_dgram, 9, 4);
        cost(r->rx_syscalls_per_dgram, 9, 4);
        cost(r->tx_cpu_ns_per_dgram, 8, 0);
        cost(r->rx_cpu_ns_per_dgram, 8, 0);
        printf(" %10" PRIu64 " %10" PRIu64 " %8" PRIu64, r->sent, r->received, r->lost);
        if (c->ratio > 0)
            printf(" %6.2f", c->ratio);
        else
            printf(" %6s", "-");
        if (c->ratio_raw > 0)
            printf(" %6.2f\n", c->ratio_raw);
        else
            printf(" %6s\n", "-");
    }
    if (!lat)
        return;
    printf("\nlatency: ping-pong, one %d-byte datagram in flight, echoed by the other "
           "thread (us)\n",
           LAT_SIZE);
    printf("%-10s %8s %8s %8s %9s %9s %6s %9s\n", "path", "p50", "p99", "min", "max",
           "samples", "lost", "p50 ratio");
    for (unsigned i = 0; i < m->n; i++) {
        const struct cell *c = &m->cells[i];
        const struct bench_lat_result *l = &c->lmed;

        if (c->kind != CELL_LAT || c->runs == 0)
            continue;
        printf("%-10s %8.1f %8.1f %8.1f %9.1f %9" PRIu64 " %6" PRIu64,
               bench_path_name(c->path), l->p50_us, l->p99_us, l->min_us, l->max_us,
               l->samples, l->lost);
        if (c->ratio > 0)
            printf(" %9.2f\n", c->ratio);
        else
            printf(" %9s\n", "-");
    }
}

static void json_num(const char *key, double v, int prec)
{
    if (v < 0 || !isfinite(v))
        printf(",\"%s\":null", key);
    else
        printf(",\"%s\":%.*f", key, prec, v);
}

static void json_tput(const struct cell *c)
{
    const struct bench_result *r = &c->med;
    bool known = r->tx_syscalls_per_dgram >= 0;

    printf("{\"kind\":\"throughput\",\"path\":\"%s\",\"size\":%zu,\"repeat\":%u",
           bench_path_name(c->path), c->size, c->runs);
    json_num("dgrams_per_s", r->dgrams_per_s, 1);
    json_num("dgrams_per_s_min", c->lo, 1);
    json_num("dgrams_per_s_max", c->hi, 1);
    json_num("gbit_per_s", r->gbit_per_s, 4);
    json_num("syscalls_per_dgram",
             known ? r->tx_syscalls_per_dgram + r->rx_syscalls_per_dgram : -1, 6);
    json_num("tx_syscalls_per_dgram", r->tx_syscalls_per_dgram, 6);
    json_num("rx_syscalls_per_dgram", r->rx_syscalls_per_dgram, 6);
    json_num("tx_cpu_ns_per_dgram", r->tx_cpu_ns_per_dgram, 1);
    json_num("rx_cpu_ns_per_dgram", r->rx_cpu_ns_per_dgram, 1);
    printf(",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64, r->sent,
           r->received, r->lost);
    json_num("ratio_to_baseline", c->ratio > 0 ? c->ratio : -1, 4);
    json_num("ratio_to_raw", c->ratio_raw > 0 ? c->ratio_raw : -1, 4);
    putchar('}');
}

static void json_lat(const struct cell *c)
{
    const struct bench_lat_result *l = &c->lmed;

    printf("{\"kind\":\"latency\",\"path\":\"%s\",\"size\":%zu,\"repeat\":%u",
           bench_path_name(c->path), c->size, c->runs);
    json_num("p50_us", l->p50_us, 3);
    json_num("p99_us", l->p99_us, 3);
    json_num("min_us", l->min_us, 3);
    json_num("max_us", l->max_us, 3);
    json_num("latency_error", LAT_HIST_ERROR, 6);
    printf(",\"samples\":%" PRIu64 ",\"lost\":%" PRIu64, l->samples, l->lost);
    json_num("ratio_to_baseline", c->ratio > 0 ? c->ratio : -1, 4);
    putchar('}');
}

void bench_udp_json(const struct matrix *m, const struct bench_cfg *cfg)
{
    const char *sep = "";

    bench_json_open("udp", "median of %u interleaved run%s of %.2f s per cell",
                    cfg->repeat, cfg->repeat == 1 ? "" : "s", cfg->seconds);
    for (unsigned i = 0; i < m->n; i++) {
        const struct cell *c = &m->cells[i];

        if (c->runs == 0)
            continue;
        printf("%s\n", sep);
        if (c->kind == CELL_TPUT)
            json_tput(c);
        else
            json_lat(c);
        sep = ",";
    }
    bench_json_close();
}

void bench_udp_notes(const struct matrix *m, const struct bench_cfg *cfg)
{
    FILE *f = cfg->json ? stderr : stdout;
    unsigned cells = 0;

    if (!cfg->json && m->nnotes)
        putchar('\n');
    for (unsigned i = 0; i < m->nnotes; i++)
        fprintf(f, "%s\n", m->notes[i]);
    for (unsigned i = 0; i < m->n; i++) {
        cells += m->cells[i].runs;
        if (m->cells[i].dead)
            fprintf(f, "%s at %zu bytes: failed: %s\n", bench_path_name(m->cells[i].path),
                    m->cells[i].size, m->cells[i].note);
    }
    fprintf(f, "%stotal %.1f s: %u cell runs of %.2f s%s\n",
            cfg->json || m->nnotes ? "" : "\n", cli_ns_seconds(m->end_ns - m->start_ns),
            cells, cfg->seconds, cli_stop ? " (interrupted)" : "");
}

int bench_udp_plot(FILE *f, const struct matrix *m, const struct bench_cfg *cfg)
{
    static struct bench_plot_bar bars[MAX_CELLS];
    static struct bench_plot_lat lat[BENCH_NPATHS];
    char sub[400], host[256];
    struct bench_plot p = {.title = "volley bench: UDP datagrams over loopback",
                           .subtitle = sub,
                           .bars = bars,
                           .lat = lat};

    bench_machine(host, sizeof(host));
    snprintf(sub, sizeof(sub),
             "%s\nmedian of %u interleaved run%s of %.2f s per cell; bar labels: ratio "
             "to the plain sendto/recvfrom baseline at the same size",
             host, cfg->repeat, cfg->repeat == 1 ? "" : "s", cfg->seconds);
    for (unsigned i = 0; i < m->n; i++) {
        const struct cell *c = &m->cells[i];

        if (c->runs == 0)
            continue;
        if (c->kind == CELL_TPUT)
            bars[p.nbars++] = (struct bench_plot_bar){
                bench_path_name(c->path), c->size, c->med.dgrams_per_s, c->ratio, NULL};
        else
            lat[p.nlat++] = (struct bench_plot_lat){bench_path_name(c->path),
                                                    c->lmed.p50_us, c->lmed.p99_us};
    }
    return bench_plot_svg(f, &p);
}
