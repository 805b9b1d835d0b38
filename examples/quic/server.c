/* SPDX-License-Identifier: MIT */
/* A QUIC echo server on ngtcp2 + GnuTLS over volley: every connection on
 * one UDP socket on one volley_loop; each bidirectional stream's bytes
 * come back on it, then its FIN.
 *
 *   example_quic_server [--volley|--plain] [--max-conns N] [--idle SECONDS]
 *                       CERT KEY [BIND]
 *
 * BIND is "[::]:0" by default (dual-stack; replies leave from the address
 * each packet arrived on). --plain: sendmsg/recvmsg, one packet per call,
 * bound to one address (give BIND, e.g. 127.0.0.1:0). Prints
 * "listening PORT", and when it stops (SIGINT, SIGTERM, or IDLE seconds
 * with no connection and no packet) a line of counters, ect0_rx being
 * the packets received marked ECT(0) after their connection's handshake,
 * and the CPU time it used (user + system, microseconds).
 */
#include "quic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

int main(int argc, char **argv)
{
    int plain = 0, idle = 30, i = 1;
    unsigned max_conns = 4096;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--plain") == 0)
            plain = 1;
        else if (strcmp(argv[i], "--volley") == 0)
            plain = 0;
        else if (strcmp(argv[i], "--idle") == 0 && i + 1 < argc)
            idle = atoi(argv[++i]);
        else if (strcmp(argv[i], "--max-conns") == 0 && i + 1 < argc)
            max_conns = (unsigned)atoi(argv[++i]);
        else
            break;
    }
    if (argc - i < 2 || max_conns == 0) {
        fprintf(stderr,
                "usage: %s [--volley|--plain] [--max-conns N] [--idle SECONDS] CERT KEY "
                "[BIND]\n",
                argv[0]);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct qx_ep ep;
    const char *bind = argc - i > 2 ? argv[i + 2] : "[::]:0";
    int r = qx_ep_open(&ep, 1, plain, bind, max_conns, &stopping);
    if (r < 0) {
        fprintf(stderr, "open %s: %s\n", bind, volley_strerror(r));
        qx_ep_close(&ep);
        return 1;
    }
    if (qx_server_tls(&ep, argv[i], argv[i + 1]) < 0) {
        qx_ep_close(&ep);
        return 1;
    }
    printf("listening %u\n", (unsigned)volley_addr_port(&ep.local));
    if (ep.vs) {
        unsigned f = volley_features(ep.vs);
        printf("features %s%s%s%s%s\n", volley_backend_name(ep.vs),
               f & VOLLEY_F_GSO ? " gso" : "", f & VOLLEY_F_GRO ? " gro" : "",
               f & VOLLEY_F_PKTINFO ? " pktinfo" : "", f & VOLLEY_F_ECN ? " ecn" : "");
    }
    fflush(stdout);
    qx_ep_run(&ep, UINT64_MAX, idle * 1000);
    printf("server: accepted %llu\n", (unsigned long long)ep.accepted);
    qx_print_counters(&ep, "server");
    qx_ep_close(&ep);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("server: cpu_us %lld\n",
           (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
               (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec));
    return 0;
}
