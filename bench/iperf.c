/* SPDX-License-Identifier: MIT */
/*
 * The iperf3 row of `volley bench`: the iperf3 program, when it is
 * installed, over the same loopback, so that volley's numbers can be read
 * against the tool people already know. A one-off server and a UDP client
 * at unlimited rate, both child processes killed if they overstay; the
 * client's JSON report gives the receiver's counts.
 */
#include "bench.h"

#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IPERF3        "iperf3"
#define REPORT_MAX    (4u << 20)
#define CONNECT_TRIES 10
/* The socket buffers iperf3 is asked for (-w), as the volley receivers get. */
#define IPERF_WINDOW "8M"

bool bench_iperf3_found(void)
{
    const char *path = getenv("PATH");
    char dir[4096];

    while (path && *path) {
        size_t len = strcspn(path, ":");

        if (len > 0 && len < sizeof(dir) - sizeof(IPERF3) - 1) {
            memcpy(dir, path, len);
            snprintf(dir + len, sizeof(dir) - len, "/%s", IPERF3);
            if (access(dir, X_OK) == 0)
                return true;
        }
        path += len + (path[len] == ':');
    }
    return false;
}

static int parse_report(const char *json, struct bench_result *out, char *why,
                        size_t why_size)
{
    const char *end = bench_json_member(json, "end"), *rx, *tx;
    double packets, lost, seconds, bytes, sent;

    if (bench_json_member(json, "error")) {
        bench_json_string(bench_json_member(json, "error"), why, why_size);
        return -EIO;
    }
    /* iperf3 3.8 and later split the sums; older ones report the
     * receiver's counts in "sum". */
    rx = bench_json_member(end, "sum_received");
    if (!rx)
        rx = bench_json_member(end, "sum");
    tx = bench_json_member(end, "sum_sent");
    if (!bench_json_number(bench_json_member(rx, "packets"), &packets) ||
        !bench_json_number(bench_json_member(rx, "lost_packets"), &lost) ||
        !bench_json_number(bench_json_member(rx, "seconds"), &seconds) ||
        !bench_json_number(bench_json_member(rx, "bytes"), &bytes)) {
        snprintf(why, why_size, "no receiver counts in iperf3's JSON report");
        return -EIO;
    }
    if (!bench_json_number(bench_json_member(tx, "packets"), &sent))
        sent = packets;
    memset(out, 0, sizeof(*out));
    out->path = BENCH_IPERF3;
    out->seconds = seconds;
    out->sent = (uint64_t)sent;
    out->received = packets > lost ? (uint64_t)(packets - lost) : 0;
    out->lost = out->sent > out->received ? out->sent - out->received : 0;
    if (seconds > 0) {
        out->dgrams_per_s = (double)out->received / seconds;
        out->gbit_per_s = bytes * 8 / seconds / 1e9;
    }
    out->tx_syscalls_per_dgram = out->rx_syscalls_per_dgram = -1;
    out->tx_cpu_ns_per_dgram = out->rx_cpu_ns_per_dgram = -1;
    return 0;
}

/* One client run: its report in buf. -ECONNREFUSED when the server was not
 * listening yet. */
static int run_client(char *const argv[], char *buf, int64_t deadline)
{
    int fd, status;
    pid_t pid;
    int err = bench_start(&pid, argv, &fd);

    if (err < 0)
        return err;
    status = bench_collect(pid, fd, buf, REPORT_MAX, deadline);
    if (status < 0)
        return status;
    if (strstr(buf, "unable to connect") || strstr(buf, "Connection refused"))
        return -ECONNREFUSED;
    return 0;
}

int bench_iperf3_cell(size_t size, uint64_t dgrams, double seconds,
                      const struct bench_pin *pin, struct bench_result *out, char *why,
                      size_t why_size)
{
    char port_s[16], len_s[24], count_s[24], cpu_tx[16], cpu_rx[16];
    char *server[] = {IPERF3, "-s",   "-1", "-B",   "127.0.0.1",
                      "-p",   port_s, "-A", cpu_rx, NULL};
    char *client[] = {IPERF3, "-u",         "-c",     "127.0.0.1", "-p",   port_s,
                      "-b",   "0",          "-l",     len_s,       "-k",   count_s,
                      "-w",   IPERF_WINDOW, "--json", "-A",        cpu_tx, NULL};
    int64_t deadline = cli_mono_ns() + (int64_t)((4 * seconds + 3) * 1e9);
    int port = bench_free_port(), err = 0;
    char *buf;
    pid_t srv;

    if (port < 0) {
        snprintf(why, why_size, "no free port: %s", strerror(-port));
        return port;
    }
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(len_s, sizeof(len_s), "%zu", size);
    snprintf(count_s, sizeof(count_s), "%llu", (unsigned long long)dgrams);
    snprintf(cpu_tx, sizeof(cpu_tx), "%d", pin ? pin->tx : -1);
    snprintf(cpu_rx, sizeof(cpu_rx), "%d", pin ? pin->rx : -1);
    if (!pin || pin->rx < 0)
        server[7] = NULL;
    if (!pin || pin->tx < 0)
        client[15] = NULL;
    buf = malloc(REPORT_MAX);
    if (!buf)
        return -ENOMEM;
    err = bench_spawn(&srv, server, -1);
    if (err < 0) {
        snprintf(why, why_size, "cannot start iperf3: %s", strerror(-err));
        free(buf);
        return err;
    }
    /* The server needs a moment to listen; a refused client is retried
     * while the server runs (kill(pid, 0) is safe: it is not reaped yet). */
    for (int i = 0; i < CONNECT_TRIES; i++) {
        usleep(20000u << (i < 3 ? i : 3));
        err = run_client(client, buf, deadline);
        if (err != -ECONNREFUSED || kill(srv, 0) != 0)
            break;
    }
    if (err == 0)
        err = parse_report(buf, out, why, why_size);
    else if (err == -ETIMEDOUT)
        snprintf(why, why_size, "iperf3 did not finish in %.0f s", 4 * seconds + 3);
    else
        snprintf(why, why_size, "iperf3 client: %s", strerror(-err));
    /* A one-off server leaves after its test; one without a test is told to. */
    if (err != 0)
        kill(srv, SIGTERM);
    bench_reap(srv, cli_mono_ns() + 1000000000LL);
    if (err == 0)
        out->size = size;
    free(buf);
    return err;
}
