/* SPDX-License-Identifier: MIT */
/*
 * `volley bench --plot`: the results as a hand-written SVG document. Top:
 * datagrams per second on a log scale, bars grouped by payload size, one
 * colour per path, each bar labelled with its ratio to the baseline. Below:
 * ping-pong latency per path, a bar to p50 and a whisker to p99. Every
 * mark has a <title> tooltip with its numbers.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define W        1000.0
#define PLOT_X0  90.0
#define PLOT_X1  (W - 170.0)
#define PLOT_Y0  96.0
#define PLOT_Y1  430.0
#define LAT_TOP  520.0
#define LAT_ROW  26.0
#define LAT_X0   130.0
#define LAT_X1   (W - 230.0)
#define MAX_KEYS 32

/* One colour per path: the UDP chart has 13 (with iperf3), so two paths
 * never share one. */
static const char *const palette[] = {
    "#7f7f7f", "#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9",
    "#8c564b", "#332288", "#999933", "#aa4499", "#117733", "#ddcc77", "#000000",
};
#define NCOLOURS (sizeof(palette) / sizeof(palette[0]))

/* Text content or attribute value, escaped for XML. */
static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            /* Control characters are not allowed in XML 1.0. */
            fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
        }
    }
}

/* 1.2M, 950k, 12: short enough to sit on an axis. */
static void si(char *buf, size_t size, double v)
{
    static const char *const suffix[] = {"", "k", "M", "G", "T"};
    unsigned u = 0;

    while (u < 4 && v >= 1000) {
        v /= 1000;
        u++;
    }
    /* 1k, not 1.0k: a decade's tick is a whole number */
    snprintf(buf, size, v < 10 && u && v != floor(v) ? "%.1f%s" : "%.0f%s", v, suffix[u]);
}

/* The distinct paths or sizes, in order of first appearance. */
struct keys {
    const char *path[MAX_KEYS];
    size_t size[MAX_KEYS];
    const char *group[MAX_KEYS];
    unsigned npaths, nsizes;
};

static unsigned path_index(struct keys *k, const char *path)
{
    unsigned i = 0;

    while (i < k->npaths && strcmp(k->path[i], path) != 0)
        i++;
    if (i == k->npaths && k->npaths < MAX_KEYS)
        k->path[k->npaths++] = path;
    return i < MAX_KEYS ? i : MAX_KEYS - 1;
}

static unsigned size_index(struct keys *k, size_t size, const char *group)
{
    unsigned i = 0;

    while (i < k->nsizes && k->size[i] != size)
        i++;
    if (i == k->nsizes && k->nsizes < MAX_KEYS) {
        k->group[k->nsizes] = group;
        k->size[k->nsizes++] = size;
    }
    return i < MAX_KEYS ? i : MAX_KEYS - 1;
}

static const char *colour(unsigned i)
{
    return palette[i % NCOLOURS];
}

/* Decades that hold every positive value. */
static void log_range(const struct bench_plot *p, double *lo, double *hi)
{
    double mn = INFINITY, mx = 0;

    for (unsigned i = 0; i < p->nbars; i++) {
        double v = p->bars[i].dgrams_per_s;

        if (v > 0 && v < mn)
            mn = v;
        if (v > mx)
            mx = v;
    }
    if (mx <= 0) {
        *lo = 1;
        *hi = 10;
        return;
    }
    /* The decade below the smallest bar, unless that bar stands at least
     * a factor 2 above it: a bar at 10k on an axis from 10k has no height. */
    *lo = pow(10, floor(log10(mn / 2)));
    /* Room above the tallest bar for its label. */
    *hi = pow(10, ceil(log10(mx * 3)));
    if (*hi <= *lo)
        *hi = *lo * 10;
}

static double y_of(double v, double lo, double hi)
{
    if (v <= lo)
        return PLOT_Y1;
    return PLOT_Y1 -
           (log10(v) - log10(lo)) / (log10(hi) - log10(lo)) * (PLOT_Y1 - PLOT_Y0);
}

static const char *label_or(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

static void y_axis(FILE *f, const struct bench_plot *p, double lo, double hi)
{
    char label[16];

    for (double dec = lo; dec <= hi * 1.001; dec *= 10) {
        double y = y_of(dec, lo, hi);

        si(label, sizeof(label), dec);
        fprintf(
            f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ccc\"/>\n"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
            "font-size=\"12\">%s</text>\n",
            PLOT_X0, y, PLOT_X1, y, PLOT_X0 - 6, y + 4, label);
        for (int m = 2; m <= 5 && dec * 10 <= hi * 1.001; m += 3) {
            y = y_of(dec * m, lo, hi);
            fprintf(
                f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\" "
                "stroke-dasharray=\"4 3\"/>\n",
                PLOT_X0, y, PLOT_X1, y);
        }
    }
    fprintf(f,
            "<text transform=\"translate(24 %.1f) rotate(-90)\" text-anchor=\"middle\" "
            "font-size=\"13\">",
            (PLOT_Y0 + PLOT_Y1) / 2);
    esc(f, label_or(p->y_label, "datagrams received per second (log scale)"));
    fputs("</text>\n", f);
}

static void bar(FILE *f, const struct bench_plot *p, const struct bench_plot_bar *b,
                double x, double w, double lo, double hi, const char *fill)
{
    double y = y_of(b->dgrams_per_s, lo, hi);
    char value[16];

    si(value, sizeof(value), b->dgrams_per_s);
    fprintf(f,
            "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
            "fill=\"%s\"><title>",
            x, y, w, PLOT_Y1 - y, fill);
    esc(f, b->path);
    if (b->group) {
        fputs(", ", f);
        esc(f, b->group);
    } else {
        fprintf(f, ", %zu bytes", b->size);
    }
    fprintf(f, ": %.0f ", b->dgrams_per_s);
    esc(f, label_or(p->unit, "datagrams/s"));
    if (b->ratio > 0) {
        fprintf(f, ", %.2fx ", b->ratio);
        esc(f, label_or(p->base, "the baseline"));
    }
    fputs("</title></rect>\n", f);
    /* The ratio says more than the raw value; the raw value is the tooltip. */
    fprintf(f,
            "<text transform=\"translate(%.1f %.1f) rotate(-90)\" font-size=\"10\" "
            "fill=\"#333\">",
            x + w / 2 + 3.5, y - 4);
    if (b->ratio > 0)
        fprintf(f, "%.2fx", b->ratio);
    else
        fputs(value, f);
    fputs("</text>\n", f);
}

/* The label of group g under its bars, centred at x within width w. A
 * label of two parts ("300 conns, 128 B") takes two lines, and the font
 * shrinks until the longest line fits w: neighbours never overlap. */
static void group_label(FILE *f, const struct keys *k, unsigned g, double x, double w)
{
    char text[64];
    const char *comma;
    size_t first, longest;
    double font = 13;

    if (k->group[g])
        snprintf(text, sizeof(text), "%s", k->group[g]);
    else
        snprintf(text, sizeof(text), "%zu B", k->size[g]);
    comma = strstr(text, ", ");
    first = comma ? (size_t)(comma - text) : strlen(text);
    longest = comma && strlen(comma + 2) > first ? strlen(comma + 2) : first;
    /* DejaVu Sans averages under 0.62 em a character in these labels. */
    while (font > 7 && (double)longest * 0.62 * font > w - 4)
        font -= 0.5;
    fprintf(f,
            "<text class=\"group\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
            "font-size=\"%.1f\">",
            x, PLOT_Y1 + 18, font);
    if (!comma) {
        esc(f, text);
    } else {
        text[first] = '\0';
        fprintf(f, "<tspan x=\"%.1f\">", x);
        esc(f, text);
        fprintf(f, "</tspan><tspan x=\"%.1f\" dy=\"%.1f\">", x, font * 1.2);
        esc(f, comma + 2);
        fputs("</tspan>", f);
    }
    fputs("</text>\n", f);
}

static void throughput(FILE *f, const struct bench_plot *p, struct keys *k)
{
    double lo, hi, gw, bw;

    for (unsigned i = 0; i < p->nbars; i++) {
        path_index(k, p->bars[i].path);
        size_index(k, p->bars[i].size, p->bars[i].group);
    }
    log_range(p, &lo, &hi);
    y_axis(f, p, lo, hi);
    gw = (PLOT_X1 - PLOT_X0) / (k->nsizes ? k->nsizes : 1);
    bw = gw * 0.8 / (k->npaths ? k->npaths : 1);
    for (unsigned i = 0; i < p->nbars; i++) {
        const struct bench_plot_bar *b = &p->bars[i];
        unsigned pi = path_index(k, b->path), gi = size_index(k, b->size, b->group);
        double x = PLOT_X0 + gi * gw + gw * 0.1 + pi * bw;

        bar(f, p, b, x + 1, bw - 2, lo, hi, colour(pi));
    }
    for (unsigned g = 0; g < k->nsizes; g++)
        group_label(f, k, g, PLOT_X0 + (g + 0.5) * gw, gw);
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n"
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">",
            PLOT_X0, PLOT_Y1, PLOT_X1, PLOT_Y1, PLOT_X0, PLOT_Y0, PLOT_X0, PLOT_Y1,
            (PLOT_X0 + PLOT_X1) / 2, PLOT_Y1 + 50);
    esc(f, label_or(p->x_label, "payload bytes per datagram"));
    fputs("</text>\n", f);
}

static void legend(FILE *f, const struct keys *k)
{
    fprintf(f, "<g class=\"legend\" font-size=\"13\">\n");
    for (unsigned i = 0; i < k->npaths; i++) {
        double y = PLOT_Y0 + i * 22;

        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" fill=\"%s\"/>"
                "<text x=\"%.1f\" y=\"%.1f\">",
                PLOT_X1 + 24, y, colour(i), PLOT_X1 + 44, y + 12);
        esc(f, k->path[i]);
        fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
}

static void latency(FILE *f, const struct bench_plot *p, struct keys *k)
{
    double mx = 0, scale, step;
    char tick[16];

    for (unsigned i = 0; i < p->nlat; i++)
        if (p->lat[i].p99_us > mx)
            mx = p->lat[i].p99_us;
    /* Round the axis up to 1, 2 or 5 times a power of ten. */
    step = mx > 0 ? pow(10, floor(log10(mx))) : 1;
    while (step * 5 < mx)
        step *= 2;
    scale = (LAT_X1 - LAT_X0) / (step * ceil(mx / step > 0 ? mx / step : 1));
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"15\" font-weight=\"bold\">",
            PLOT_X0, LAT_TOP - 20);
    esc(f,
        label_or(p->lat_title, "Round trip, one datagram in flight (ping-pong): bar to "
                               "p50, whisker to p99, microseconds"));
    fputs("</text>\n", f);
    for (double t = 0; t * scale <= LAT_X1 - LAT_X0 + 0.5; t += step) {
        double x = LAT_X0 + t * scale;

        si(tick, sizeof(tick), t);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%s"
                "</text>\n",
                x, LAT_TOP, x, LAT_TOP + p->nlat * LAT_ROW, x,
                LAT_TOP + p->nlat * LAT_ROW + 14, tick);
    }
    for (unsigned i = 0; i < p->nlat; i++) {
        const struct bench_plot_lat *l = &p->lat[i];
        double y = LAT_TOP + i * LAT_ROW + 4, h = LAT_ROW - 8;
        double x50 = LAT_X0 + l->p50_us * scale, x99 = LAT_X0 + l->p99_us * scale;

        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"13\">",
                LAT_X0 - 8, y + h - 4);
        esc(f, l->path);
        fprintf(f,
                "</text>\n<rect class=\"lat\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                "height=\"%.1f\" fill=\"%s\"><title>",
                LAT_X0, y, x50 - LAT_X0, h, colour(path_index(k, l->path)));
        esc(f, l->path);
        fprintf(
            f,
            ": p50 %.1f us, p99 %.1f us</title></rect>\n"
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>"
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n"
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">p50 %.1f / p99 %.1f</text>\n",
            l->p50_us, l->p99_us, x50, y + h / 2, x99, y + h / 2, x99, y + 2, x99,
            y + h - 2, x99 + 6, y + h - 4, l->p50_us, l->p99_us);
    }
}

/* One line of small grey text per line of s, under the title. */
static void subtitle(FILE *f, const char *s)
{
    char line[512];
    double y = 52;

    while (s && *s) {
        size_t len = strcspn(s, "\n");

        snprintf(line, sizeof(line), "%.*s",
                 (int)(len < sizeof(line) ? len : sizeof(line) - 1), s);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"#555\">", PLOT_X0,
                y);
        esc(f, line);
        fputs("</text>\n", f);
        s += len + (s[len] == '\n');
        y += 16;
    }
}

int bench_plot_svg(FILE *f, const struct bench_plot *p)
{
    struct keys k;
    double h = p->nlat ? LAT_TOP + p->nlat * LAT_ROW + 40 : PLOT_Y1 + 70;

    memset(&k, 0, sizeof(k));
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, "
            "sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
            "<text x=\"%.1f\" y=\"32\" font-size=\"20\" font-weight=\"bold\">",
            W, h, W, h, PLOT_X0);
    esc(f, p->title);
    fputs("</text>\n", f);
    subtitle(f, p->subtitle);
    throughput(f, p, &k);
    legend(f, &k);
    if (p->nlat)
        latency(f, p, &k);
    fputs("</svg>\n", f);
    return ferror(f) ? -EIO : 0;
}
