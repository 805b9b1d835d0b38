/* SPDX-License-Identifier: MIT */
/*
 * `volley bench --unix`: an AF_UNIX SOCK_DGRAM socketpair, the transport
 * of VM networking on macOS, where the xnu backend was wanted. 10,000
 * datagrams of 4000 bytes go from one end to the other:
 *   write/read  one write(2) per datagram, then one read(2) per datagram
 *   volley      volley_send/volley_recv (mmsg backend, volley_wrap on the
 *               socketpair's fds), in batches of 64, 128 and 256; built
 *               without the Linux parts, the backend volley picks (xnu on
 *               macOS, else scalar), named in the row
 * One thread does both ends: it sends a round (the batch, or 256 for
 * write/read), then receives what is in flight, so the pair never holds
 * more than a round. Both fds are non-blocking, a full socket buffer
 * ends a round early (what is in flight is read first), and a run still
 * going after 10 s stops with an error: it cannot deadlock. Each row runs --repeat times,
 * interleaved; the figures are medians, the ratios ratios of medians to write/read's.
 */
#include "bench.h"

#include "cli.h"
#include "volley.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define UNIX_COUNT  10000u
#define UNIX_SIZE   4000u
#define UNIX_ROUND  256u /* write/read's round: as many as volley's largest batch */
#define UNIX_SNDBUF (8 * 1024 * 1024)
#define UNIX_RUN_NS (10 * NS_PER_S) /* a run that takes longer has gone wrong */
#define UNIX_ROWS   4
#define UNIX_REPEAT BENCH_RUNS_MAX

static const unsigned row_batch[UNIX_ROWS] = {1, 64, 128, 256};

struct unix_sample {
    double dgrams_per_s;
    uint64_t syscalls;
    uint64_t dgrams;
};

struct unix_row {
    unsigned batch; /* 1: write/read */
    char name[32];  /* "write/read", or "volley " and the backend that ran */
    struct unix_sample runs[UNIX_REPEAT];
    unsigned nruns;
    struct unix_sample med;
    double lo, hi, ratio, syscall_ratio;
};

/* Room for a round: the default send buffer holds fewer than 64 datagrams
 * of 4000 bytes. Past wmem_max when the process may (SO_SNDBUFFORCE). */
static void big_sndbuf(int fd)
{
    int size = UNIX_SNDBUF;
#ifdef SO_SNDBUFFORCE
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) == 0)
        return;
#endif
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static int make_pair(int sv[2])
{
#if VOLLEY_HAVE_LINUX
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
#else /* as on macOS, where socketpair takes no flags */
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0)
        return -errno;
    int err = cli_fd_flags(sv[0], true);
    if (err == 0)
        err = cli_fd_flags(sv[1], true);
    if (err < 0) {
        close(sv[0]);
        close(sv[1]);
        return err;
    }
#endif
    big_sndbuf(sv[0]);
    bench_rcvbuf(sv[1]);
    return 0;
}

/* Datagram seq carries its number in its first bytes. */
static void stamp(uint8_t *p, uint64_t seq)
{
    memcpy(p, &seq, sizeof(seq));
}

static bool stamped(const void *p, size_t len, uint64_t seq)
{
    uint64_t got;
    if (len != UNIX_SIZE)
        return false;
    memcpy(&got, p, sizeof(got));
    return got == seq;
}

/* write/read: a round of writes, then a read per datagram in flight. */
static int run_plain(struct unix_sample *out)
{
    static uint8_t tx[UNIX_SIZE], rx[UNIX_SIZE + 1];
    int sv[2], err = make_pair(sv);
    if (err < 0)
        return err;
    uint64_t sent = 0, got = 0, calls = 0;
    int64_t t0 = cli_mono_ns(), limit = t0 + UNIX_RUN_NS;
    memset(tx, 0x5a, sizeof(tx));
    while (got < UNIX_COUNT && err == 0) {
        uint64_t end = sent + UNIX_ROUND < UNIX_COUNT ? sent + UNIX_ROUND : UNIX_COUNT;
        while (sent < end) {
            stamp(tx, sent);
            calls++;
            if (write(sv[0], tx, sizeof(tx)) != (ssize_t)sizeof(tx))
                break; /* full (EAGAIN): read what is in flight first */
            sent++;
        }
        while (got < sent) {
            calls++;
            ssize_t r = read(sv[1], rx, sizeof(rx));
            if (r < 0)
                break;
            if (!stamped(rx, (size_t)r, got)) {
                err = -EBADMSG;
                break;
            }
            got++;
        }
        if (err == 0 && cli_mono_ns() > limit)
            err = -ETIMEDOUT;
    }
    int64_t ns = cli_mono_ns() - t0;
    close(sv[0]);
    close(sv[1]);
    out->dgrams = got;
    out->syscalls = calls;
    out->dgrams_per_s = ns > 0 ? (double)got * 1e9 / (double)ns : 0;
    return err;
}

/* Both ends wrapped by volley, mmsg backend; each round one volley_send
 * of `batch` datagrams, then volley_recv until the round is in. */
/* Names row after the backend that ran. */
static int run_volley(unsigned batch, struct unix_sample *out, struct unix_row *row)
{
    static uint8_t payload[256][UNIX_SIZE];
    static struct volley_dgram tx[256], rx[256];
    struct volley_opts o = VOLLEY_OPTS_INIT;
    volley_sock *a = NULL, *b = NULL;
    int sv[2], err = make_pair(sv);
    if (err < 0)
        return err;
#if VOLLEY_HAVE_LINUX
    o.backend = VOLLEY_BACKEND_MMSG;
#endif
    o.rx_batch = batch;
    o.rx_slot_size = UNIX_SIZE + 1; /* a longer datagram would show as truncated */
    err = volley_wrap(&a, sv[0], &o);
    if (err == 0)
        err = volley_wrap(&b, sv[1], &o);
    if (err < 0) {
        volley_close(a);
        close(sv[1]);
        if (!a)
            close(sv[0]);
        return err;
    }
    snprintf(row->name, sizeof(row->name), "volley %s", volley_backend_name(b));
    for (unsigned i = 0; i < batch; i++) {
        memset(payload[i], 0x5a, UNIX_SIZE);
        tx[i] = (struct volley_dgram){.data = payload[i], .len = UNIX_SIZE};
    }
    uint64_t sent = 0, got = 0;
    int64_t t0 = cli_mono_ns(), limit = t0 + UNIX_RUN_NS;
    while (got < UNIX_COUNT && err == 0) {
        unsigned n = UNIX_COUNT - sent < batch ? (unsigned)(UNIX_COUNT - sent) : batch;
        for (unsigned i = 0; i < n; i++)
            stamp(payload[i], sent + i);
        int r = n ? volley_send(a, tx, n) : 0;
        if (r < 0) {
            err = r;
            break;
        }
        sent += (unsigned)r;
        while (got < sent) {
            unsigned want = sent - got < batch ? (unsigned)(sent - got) : batch;
            int k = volley_recv(b, rx, want);
            if (k <= 0) {
                err = k;
                break;
            }
            for (int i = 0; i < k && err == 0; i++, got++)
                if (!stamped(rx[i].data, rx[i].len, got) ||
                    rx[i].flags & VOLLEY_DGRAM_TRUNC)
                    err = -EBADMSG;
        }
        if (err == 0 && cli_mono_ns() > limit)
            err = -ETIMEDOUT;
    }
    int64_t ns = cli_mono_ns() - t0;
    struct volley_stats sa, sb;
    volley_get_stats(a, &sa, sizeof(sa));
    volley_get_stats(b, &sb, sizeof(sb));
    volley_close(a); /* closes the fds it wrapped */
    volley_close(b);
    out->dgrams = got;
    out->syscalls = sa.tx_syscalls + sa.rx_syscalls + sb.tx_syscalls + sb.rx_syscalls;
    out->dgrams_per_s = ns > 0 ? (double)got * 1e9 / (double)ns : 0;
    return err;
}

static void row_medians(struct unix_row *row)
{
    double v[UNIX_REPEAT], c[UNIX_REPEAT];
    unsigned n = row->nruns;
    for (unsigned i = 0; i < n; i++) {
        v[i] = row->runs[i].dgrams_per_s;
        c[i] = (double)row->runs[i].syscalls;
    }
    row->med.dgrams_per_s = bench_median(v, n);
    row->med.syscalls = (uint64_t)bench_median(c, n);
    row->med.dgrams = n ? row->runs[0].dgrams : 0;
    row->lo = n ? v[0] : 0;
    row->hi = n ? v[n - 1] : 0;
}

int bench_unix_main(const struct bench_unix_opts *o)
{
    static struct unix_row rows[UNIX_ROWS];
    unsigned repeat = o->repeat < UNIX_REPEAT ? o->repeat : UNIX_REPEAT;
    for (unsigned i = 0; i < UNIX_ROWS; i++) {
        memset(&rows[i], 0, sizeof(rows[i]));
        rows[i].batch = row_batch[i];
        snprintf(rows[i].name, sizeof(rows[i].name), "%s",
                 row_batch[i] == 1 ? "write/read" : "volley");
    }
    /* interleaved: every row once per repetition */
    for (unsigned k = 0; k < repeat; k++)
        for (unsigned i = 0; i < UNIX_ROWS; i++) {
            struct unix_row *row = &rows[i];
            struct unix_sample s;
            int err = row->batch == 1 ? run_plain(&s) : run_volley(row->batch, &s, row);
            if (err < 0) {
                fprintf(stderr, "volley bench --unix: %s, batch %u: %s\n", row->name,
                        row->batch, volley_strerror(err));
                return 1;
            }
            row->runs[row->nruns++] = s;
        }
    for (unsigned i = 0; i < UNIX_ROWS; i++)
        row_medians(&rows[i]);
    const struct unix_row *base = &rows[0];
    for (unsigned i = 0; i < UNIX_ROWS; i++) {
        struct unix_row *row = &rows[i];
        row->ratio = base->med.dgrams_per_s > 0
                         ? row->med.dgrams_per_s / base->med.dgrams_per_s
                         : 0;
        row->syscall_ratio = row->med.syscalls
                                 ? (double)base->med.syscalls / (double)row->med.syscalls
                                 : 0;
    }
    if (o->json) {
        bench_json_open("unix",
                        "AF_UNIX SOCK_DGRAM socketpair, one thread, %u datagrams of %u "
                        "bytes; median of %u interleaved run%s per row",
                        UNIX_COUNT, UNIX_SIZE, repeat, repeat == 1 ? "" : "s");
        for (unsigned i = 0; i < UNIX_ROWS; i++) {
            const struct unix_row *r = &rows[i];
            printf("%s\n  {\"path\": \"%s\", \"batch\": %u, \"size\": %u, "
                   "\"datagrams\": %llu, \"runs\": %u, \"dgrams_per_s\": %.0f, "
                   "\"min\": %.0f, \"max\": %.0f, \"syscalls\": %llu, "
                   "\"syscalls_per_dgram\": %.4f, \"ratio\": %.3f, "
                   "\"fewer_syscalls\": %.1f}",
                   i ? "," : "", r->name, r->batch, UNIX_SIZE,
                   (unsigned long long)r->med.dgrams, r->nruns, r->med.dgrams_per_s,
                   r->lo, r->hi, (unsigned long long)r->med.syscalls,
                   r->med.dgrams ? (double)r->med.syscalls / (double)r->med.dgrams : 0,
                   r->ratio, r->syscall_ratio);
        }
        bench_json_close();
        return 0;
    }
    printf("volley bench --unix: AF_UNIX SOCK_DGRAM socketpair, one thread, %u datagrams "
           "of %u bytes\nmedian of %u interleaved run%s per row\n\n",
           UNIX_COUNT, UNIX_SIZE, repeat, repeat == 1 ? "" : "s");
    printf("%-13s %5s %12s %8s %9s %10s %7s %9s\n", "path", "batch", "dgrams/s", "spread",
           "syscalls", "calls/dg", "ratio", "1/calls");
    for (unsigned i = 0; i < UNIX_ROWS; i++) {
        const struct unix_row *r = &rows[i];
        double spread =
            r->med.dgrams_per_s > 0 ? (r->hi - r->lo) / r->med.dgrams_per_s : 0;
        printf("%-13s %5u %12.0f %7.0f%% %9llu %10.4f %6.2fx %8.1fx\n", r->name, r->batch,
               r->med.dgrams_per_s, spread * 100, (unsigned long long)r->med.syscalls,
               r->med.dgrams ? (double)r->med.syscalls / (double)r->med.dgrams : 0,
               r->ratio, r->syscall_ratio);
    }
    printf("\nratio: datagrams/s over write/read's; 1/calls: write/read's system calls "
           "over the row's\n");
    return 0;
}
