/* SPDX-License-Identifier: MIT */
/* A QUIC client on ngtcp2 + GnuTLS over volley: opens N connections at
 * once on one UDP socket, sends M bytes of a known pattern on one stream
 * of each and checks every byte that the echo server sends back, then
 * closes. Exits 0 only when every connection got all its bytes back.
 *
 *   example_quic_client [--volley|--plain] [--conns N] [--bytes M] [--timeout S]
 *                       [--bind ADDR] SERVER
 *
 * SERVER is "127.0.0.1:PORT" or "[::1]:PORT"; ADDR (the local address)
 * defaults to the loopback address of its family. Prints one line:
 * handshakes per second (N over the time until the last handshake
 * completed), bulk throughput (N * M payload bytes each way over the
 * whole run), and the counters, ect0_rx being the packets received
 * marked ECT(0) after their connection's handshake.
 * QX_BREAK_ECN=1 in the environment sends every packet Not-ECT (to show
 * that a test of ECN can fail); QX_LOG=1 prints ngtcp2's log.
 */
#include "quic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

int main(int argc, char **argv)
{
    int plain = 0, timeout = 60, i = 1;
    unsigned conns = 1;
    unsigned long long bytes = 1 << 20;
    const char *bind = NULL;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--plain") == 0)
            plain = 1;
        else if (strcmp(argv[i], "--volley") == 0)
            plain = 0;
        else if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
            conns = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc)
            bytes = strtoull(argv[++i], NULL, 0);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = atoi(argv[++i]);
        else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc)
            bind = argv[++i];
        else
            break;
    }
    struct volley_addr server;
    if (argc - i != 1 || conns == 0 || conns > 100000 || timeout <= 0 ||
        volley_addr_parse(&server, argv[i]) < 0) {
        fprintf(stderr,
                "usage: %s [--volley|--plain] [--conns N] [--bytes M] [--timeout S] "
                "[--bind ADDR] SERVER\n",
                argv[0]);
        return 2;
    }
    if (!bind)
        bind = server.sa.sa_family == AF_INET6 ? "[::1]:0" : "127.0.0.1:0";
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct qx_ep ep;
    int r = qx_ep_open(&ep, 0, plain, bind, conns, &stopping);
    if (r < 0 || qx_client_tls(&ep) < 0) {
        fprintf(stderr, "open %s: %s\n", bind, volley_strerror(r));
        qx_ep_close(&ep);
        return 1;
    }
    ep.bytes_per_conn = bytes;
    ep.hs_target = conns;
    ep.t_start = qx_now();
    for (unsigned k = 0; k < conns; k++) {
        if (qx_client_connect(&ep, &server, k * 7919u + 1) < 0) {
            fprintf(stderr, "connection %u: cannot start\n", k);
            ep.conns_failed++;
        }
    }
    r = qx_ep_run(&ep, ep.t_start + (uint64_t)timeout * 1000000000u, 0);
    ep.t_done = qx_now();
    unsigned left = ep.nconns;
    qx_print_counters(&ep, "client");
    qx_ep_close(&ep); /* counts what is left as failed */
    double hs_s = ep.t_hs_all ? (double)(ep.t_hs_all - ep.t_start) / 1e9 : 0;
    double run_s = (double)(ep.t_done - ep.t_start) / 1e9;
    printf("client: datapath %s conns %u bytes %llu ok %u failed %u handshake_s %.4f "
           "hs_per_s %.0f run_s %.4f mbit_s %.1f\n",
           plain ? "plain" : "volley", conns, bytes, ep.conns_done, ep.conns_failed, hs_s,
           hs_s > 0 ? conns / hs_s : 0.0, run_s,
           run_s > 0 ? (double)conns * (double)bytes * 8 / run_s / 1e6 : 0.0);
    if (r < 0 && left > 0)
        fprintf(stderr, "%s: %u connection(s) unfinished\n",
                stopping ? "stopped" : "timed out", left);
    return ep.conns_done == conns && ep.conns_failed == 0 ? 0 : 1;
}
