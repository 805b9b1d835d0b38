/* SPDX-License-Identifier: MIT */
/* The shared engine of examples/quic: QUIC connections (ngtcp2 + GnuTLS)
 * on one UDP socket, over volley's datapath (GSO, GRO, ECN, pktinfo, on a
 * volley_loop with a loop timer) or a plain one (sendmsg/recvmsg, one
 * packet per call, poll(2)). See server.c and client.c. */
#ifndef QUIC_EXAMPLE_H
#define QUIC_EXAMPLE_H

#include <volley.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include <signal.h>
#include <stdint.h>

#define QX_CID_LEN 16     /* our connection IDs: slot (4), tag (4), random (8) */
#define QX_PAT_P   65521u /* the client's byte pattern repeats every P bytes */
#define QX_PAT_RUN 65536u /* ... and is stored P + RUN long */
#define QX_CHUNK   (64 * 1024)
#define QX_TXQ     128 /* datagrams gathered for one volley_send */

struct qx_chunk {
    struct qx_chunk *next;
    uint64_t off; /* stream offset of d[0] */
    size_t len;
    uint8_t d[QX_CHUNK];
};

struct qx_stream {
    struct qx_stream *next;
    int64_t id;
    uint64_t sent; /* offset handed to ngtcp2 */
    uint64_t end;  /* client: bytes to send; server: bytes received */
    uint64_t rx;   /* bytes received (client: checked) */
    int fin_rx, fin_sent, blocked;
    struct qx_chunk *head, *tail, *cur; /* server: the echo buffer */
};

struct qx_ep;
struct qx_conn {
    struct qx_ep *ep;
    uint32_t slot;
    uint8_t tag[4];
    ngtcp2_conn *q;
    gnutls_session_t tls;
    ngtcp2_crypto_conn_ref ref;
    ngtcp2_cid odcid; /* server: the client's first destination CID */
    struct qx_stream *streams;
    uint32_t seed; /* client: this connection's pattern offset */
    int hs_done;
    int dirty; /* in ep->dirty */
    int done;  /* client: every byte came back */
    int failed;
};

struct qx_ep {
    int server;
    int plain;
    volley_sock *vs;
    volley_loop *loop;
    volley_timer *timer;
    int fd;                   /* plain */
    struct volley_addr local; /* bound */
    gnutls_certificate_credentials_t cred;
    struct qx_conn **slots;
    uint32_t nslots, nconns;
    struct qx_conn **dirty;
    uint32_t ndirty;
    /* transmit batch (volley datapath) */
    struct volley_dgram txq[QX_TXQ];
    unsigned ntx;
    uint8_t *txbuf;
    size_t txoff, txcap;
    /* client */
    uint64_t bytes_per_conn;
    uint32_t conns_done, conns_failed, hs_count, hs_target;
    uint64_t t_start, t_hs_all, t_done;
    /* counters */
    uint64_t rx_pkts, tx_pkts, tx_calls, tx_dropped, ect0_rx, accepted;
    int no_ecn_tx; /* QX_BREAK_ECN: send every packet Not-ECT */
    volatile sig_atomic_t *stop;
};

extern uint8_t qx_pattern[QX_PAT_P + QX_PAT_RUN];

uint64_t qx_now(void);
int qx_ep_open(struct qx_ep *ep, int server, int plain, const char *bind_addr,
               uint32_t max_conns, volatile sig_atomic_t *stop);
void qx_ep_close(struct qx_ep *ep);
int qx_server_tls(struct qx_ep *ep, const char *cert, const char *key);
int qx_client_tls(struct qx_ep *ep);
int qx_client_connect(struct qx_ep *ep, const struct volley_addr *server, uint32_t seed);
/* Serve until *stop, no connection in idle_ms (server, idle_ms > 0), every
 * client connection ended (client), or deadline (ns, qx_now clock). */
int qx_ep_run(struct qx_ep *ep, uint64_t deadline, int idle_ms);
void qx_print_counters(const struct qx_ep *ep, const char *who);

#endif
