/* SPDX-License-Identifier: MIT */
/*
 * The tools row of `volley bench`: `volley send` into `volley recv`, this
 * very program's own subcommands with their defaults (the README's
 * commands), as two child processes over loopback. The receiver stops on a
 * short silence after the sender is done; its JSON report gives the rate
 * between its first and last datagram, the sender's what it sent.
 */
#include "bench.h"

#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPORT_MAX 65536
#define SELF       "/proc/self/exe"

/* key's number in the summary ("end") of the tool's JSON document json;
 * false when missing. */
static bool report_number(const char *json, const char *key, double *out)
{
    const char *v = bench_json_member(bench_json_member(json, "end"), key);

    return v && bench_json_number(v, out);
}

/* Waits for the child, its report in buf: 0 when it succeeded, or why not. */
static int finish(pid_t pid, int fd, char *buf, int64_t deadline)
{
    int status = bench_collect(pid, fd, buf, REPORT_MAX, deadline);
    if (status < 0)
        return status;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

static void fill(const char *rx, const char *tx, size_t size, struct bench_result *out)
{
    double sent = 0, got = 0, rate = 0, mbit = 0, secs = 0, tx_sys = 0, rx_sys = 0;

    report_number(tx, "datagrams", &sent);
    report_number(tx, "syscalls", &tx_sys);
    report_number(rx, "datagrams", &got);
    report_number(rx, "dgrams_per_s", &rate);
    report_number(rx, "mbit_per_s", &mbit);
    report_number(rx, "seconds", &secs);
    report_number(rx, "syscalls", &rx_sys);
    memset(out, 0, sizeof(*out));
    out->path = BENCH_TOOLS;
    out->size = size;
    out->seconds = secs;
    out->sent = (uint64_t)sent;
    out->received = (uint64_t)got;
    out->lost = sent > got ? (uint64_t)(sent - got) : 0;
    out->dgrams_per_s = rate;
    out->gbit_per_s = mbit / 1000;
    out->tx_syscalls_per_dgram = sent > 0 ? tx_sys / sent : -1;
    out->rx_syscalls_per_dgram = got > 0 ? rx_sys / got : -1;
    out->tx_cpu_ns_per_dgram = out->rx_cpu_ns_per_dgram = -1; /* not measured */
}

/* `volley recv` (recv_argv) and, once it is bound, `volley send`
 * (send_argv), each run to its end with its report in rx_buf and tx_buf
 * (REPORT_MAX bytes each, allocated when both are given): 0, or a negative
 * errno with why said. port: bench_free_port's (negative: its error). */
static int run_pair(int port, char **recv_argv, char **send_argv, double seconds,
                    char *rx_buf, char *tx_buf, char *why, size_t why_size)
{
    int64_t deadline = cli_mono_ns() + (int64_t)((seconds + 10) * 1e9);
    int rx_fd = -1, tx_fd = -1;
    pid_t rx = -1, tx = -1;
    int err = port < 0 ? port : !rx_buf || !tx_buf ? -ENOMEM : 0;

    if (err == 0)
        err = bench_start(&rx, recv_argv, &rx_fd);
    if (err < 0) {
        snprintf(why, why_size, "cannot start volley recv: %s", strerror(-err));
        return err;
    }
    usleep(100000); /* until the receiver is bound: datagrams before it are lost */
    err = bench_start(&tx, send_argv, &tx_fd);
    if (err == 0)
        err = finish(tx, tx_fd, tx_buf, deadline);
    if (err < 0) {
        snprintf(why, why_size, "volley send: %s", strerror(-err));
        kill(rx, SIGTERM);
    }
    int rerr = finish(rx, rx_fd, rx_buf, deadline);
    if (err == 0 && rerr < 0)
        snprintf(why, why_size, "volley recv: %s", strerror(-(err = rerr)));
    return err;
}

int bench_tools_cell(size_t size, double seconds, struct bench_result *out, char *why,
                     size_t why_size)
{
    char addr[32], size_s[24], dur_s[32], bound_s[32];
    char *recv_argv[] = {SELF,    "recv",       addr,    "--json", "--idle",
                         "0.300", "--duration", bound_s, NULL};
    char *send_argv[] = {SELF,   "send",       addr,  "--json", "--size",
                         size_s, "--duration", dur_s, NULL};
    int port = bench_free_port();
    char *rx_buf = malloc(REPORT_MAX), *tx_buf = malloc(REPORT_MAX);

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(size_s, sizeof(size_s), "%zu", size);
    snprintf(dur_s, sizeof(dur_s), "%.3f", seconds);
    snprintf(bound_s, sizeof(bound_s), "%.3f", seconds + 5);
    int err =
        run_pair(port, recv_argv, send_argv, seconds, rx_buf, tx_buf, why, why_size);
    if (err == 0)
        fill(rx_buf, tx_buf, size, out);
    free(rx_buf);
    free(tx_buf);
    return err;
}

int bench_tools_threads_run(unsigned threads, double seconds, double *dgrams_per_s,
                            char *why, size_t why_size)
{
    char addr[32], n[16], dur_s[32], bound_s[32];
    char *recv_argv[] = {SELF,    "recv",       addr,    "--threads", n,
                         "--pin", "--steer",    "cpu",   "--json",    "--idle",
                         "0.300", "--duration", bound_s, NULL};
    char *send_argv[] = {SELF,     "send",   addr, "--threads",  "2",   "--pin",
                         "--json", "--size", "64", "--duration", dur_s, NULL};
    int port = bench_free_port();
    char *rx_buf = malloc(REPORT_MAX), *tx_buf = malloc(REPORT_MAX);

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(n, sizeof(n), "%u", threads);
    snprintf(dur_s, sizeof(dur_s), "%.3f", seconds);
    snprintf(bound_s, sizeof(bound_s), "%.3f", seconds + 5);
    int err =
        run_pair(port, recv_argv, send_argv, seconds, rx_buf, tx_buf, why, why_size);
    if (err == 0 && !report_number(rx_buf, "dgrams_per_s", dgrams_per_s)) {
        snprintf(why, why_size, "no dgrams_per_s in volley recv's report");
        err = -EIO;
    }
    free(rx_buf);
    free(tx_buf);
    return err;
}
