/* SPDX-License-Identifier: MIT */
/*
 * The tools' sequence tracker (tools/seq.c): seq_track_add_run, the bulk
 * form `volley recv` uses for runs of consecutive numbers, must leave the
 * tracker exactly as seq_track_add of each number in turn would, whatever
 * came before: duplicates, late numbers, jumps past the window, numbers
 * near 2^64.
 */
#include "cli.h"
#include "seq.h"
#include "t.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* seq.c reads the clock only to stamp headers. */
int64_t cli_real_ns(void)
{
    return 0;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void same(const struct seq_track *a, const struct seq_track *b, unsigned step)
{
    if (a->base != b->base || a->highest != b->highest || a->distinct != b->distinct ||
        a->duplicated != b->duplicated || a->reordered != b->reordered ||
        a->any != b->any || memcmp(a->seen, b->seen, SEQ_WINDOW / 8) != 0)
        T_FAIL("step %u: trackers differ (base %llu/%llu highest %llu/%llu distinct "
               "%llu/%llu dup %llu/%llu reordered %llu/%llu)",
               step, (unsigned long long)a->base, (unsigned long long)b->base,
               (unsigned long long)a->highest, (unsigned long long)b->highest,
               (unsigned long long)a->distinct, (unsigned long long)b->distinct,
               (unsigned long long)a->duplicated, (unsigned long long)b->duplicated,
               (unsigned long long)a->reordered, (unsigned long long)b->reordered);
}

/* Runs starting where the stream would go on, a little back (duplicates
 * and late ones), far back, far ahead (past the window), from `start`. */
static void random_runs(uint64_t start, unsigned steps)
{
    struct seq_track one, bulk;
    T_ASSERT(seq_track_init(&one) == 0 && seq_track_init(&bulk) == 0);
    uint64_t next = start;
    for (unsigned i = 0; i < steps; i++) {
        uint64_t seq = next, n = 1 + next_random() % 300;
        switch (next_random() % 8) {
        case 0:
            seq = next - next_random() % 200; /* some seen again */
            break;
        case 1:
            seq = next - next_random() % (2 * SEQ_WINDOW); /* late */
            break;
        case 2:
            seq = next + next_random() % (2 * SEQ_WINDOW); /* a jump */
            break;
        case 3:
            seq = next + 1 + next_random() % 64; /* a gap */
            break;
        default:
            break;
        }
        if (seq < start) /* stay on one side of the wrap */
            seq = start;
        if (UINT64_MAX - seq < n)
            n = UINT64_MAX - seq;
        for (uint64_t k = 0; k < n; k++)
            seq_track_add(&one, seq + k);
        seq_track_add_run(&bulk, seq, n);
        same(&one, &bulk, i);
        if (seq + n > next)
            next = seq + n;
    }
    T_EQ(seq_track_lost(&one), seq_track_lost(&bulk));
    seq_track_free(&one);
    seq_track_free(&bulk);
}

static int runs_from_zero(void)
{
    random_runs(0, 3000);
    return 0;
}

static int runs_near_the_top(void)
{
    random_runs(UINT64_MAX - 400000, 3000);
    return 0;
}

/* The plain cases by hand: in order, then a duplicate run, then late. */
static int by_hand(void)
{
    struct seq_track t;
    T_ASSERT(seq_track_init(&t) == 0);
    seq_track_add_run(&t, 0, 1000);
    T_EQ(t.distinct, 1000);
    T_EQ(t.highest, 999);
    T_EQ(seq_track_lost(&t), 0);
    seq_track_add_run(&t, 990, 20); /* 10 again, 10 new */
    T_EQ(t.duplicated, 10);
    T_EQ(t.distinct, 1010);
    T_EQ(t.reordered, 0);
    seq_track_add_run(&t, 2000, 10); /* 990 lost for now */
    T_EQ(seq_track_lost(&t), 990);
    seq_track_add_run(&t, 1500, 5); /* late */
    T_EQ(t.reordered, 5);
    T_EQ(seq_track_lost(&t), 985);
    seq_track_add_run(&t, 3000, 0); /* nothing */
    T_EQ(t.highest, 2009);
    seq_track_free(&t);
    return 0;
}

/* Each percentile of the latency histogram against the exact one of the
 * same samples: never below it, less than LAT_HIST_ERROR above it. */
static int hist_within_bound(void)
{
    static const double pcts[] = {1, 50, 90, 99, 99.9, 100};
    enum { N = 5000 };
    static uint64_t v[N];
    struct lat_hist *h = calloc(1, sizeof(*h));

    T_ASSERT(h != NULL);
    for (unsigned i = 0; i < N; i++) {
        /* spread over many powers of two, a few exact small values */
        v[i] = i < 100 ? i : next_random() >> (next_random() % 40 + 10);
        lat_hist_add(h, v[i]);
    }
    for (unsigned i = 1; i < N; i++) /* insertion sort: the exact answer */
        for (unsigned k = i; k > 0 && v[k - 1] > v[k]; k--) {
            uint64_t x = v[k];
            v[k] = v[k - 1];
            v[k - 1] = x;
        }
    T_EQ(h->min, v[0]);
    T_EQ(h->max, v[N - 1]);
    for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
        uint64_t exact = v[(size_t)ceil(pcts[i] / 100 * N - 1e-9) - 1];
        uint64_t got = lat_hist_pct(h, pcts[i]);

        T_CHECK(got >= exact && (double)(got - exact) <= LAT_HIST_ERROR * (double)exact,
                "p%g: %llu for %llu", pcts[i], (unsigned long long)got,
                (unsigned long long)exact);
    }
    free(h);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(by_hand),
        T_CASE(hist_within_bound),
        T_CASE(runs_from_zero),
        T_CASE(runs_near_the_top),
    };
    struct t_run how = {.total_s = 120};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
