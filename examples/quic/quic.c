/* SPDX-License-Identifier: MIT */
/* The engine shared by the QUIC example server and client: see quic.h.
 *
 * Datapath (volley, the default):
 *  - receive: volley_recv on a socket joined to a volley_loop; GRO buffers
 *    come split into datagrams, each with its ECN codepoint and the local
 *    address it arrived on (pktinfo), which becomes the path's local
 *    address, so that replies leave from the address the peer reached;
 *  - send: ngtcp2 writes a connection's packets back to back into one
 *    buffer; a run of same-size packets (the last may be shorter) on one
 *    path with one ECN codepoint becomes one volley_dgram with segment set
 *    (GSO), and the runs of every connection go out in one volley_send;
 *  - timers: one volley_timer, started to the nanosecond
 *    (volley_timer_start_ns) for the earliest ngtcp2_conn_get_expiry of
 *    all connections: ngtcp2's deadlines (pacing, loss detection) are
 *    often nearer than a millisecond, and the loop sleeps exactly until
 *    them.
 * Without pktinfo (VOLLEY_DISABLE=pktinfo) the bound address is every
 * path's local address and the kernel picks the replies' source.
 * Datapath --plain: sendmsg/recvmsg, one packet per call, the ECN
 * codepoint in a cmsg each way, no offload, ppoll(2) with a timeout to
 * the nanosecond (the same deadlines as the volley datapath); the
 * socket is bound to one address, so no pktinfo is needed.
 */
#define _GNU_SOURCE /* ppoll */
#include "quic.h"

#include <errno.h>
#include <stdarg.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ALPN        "volley-echo"
#define GSO_PKTS    40 /* packets in one GSO run: 40 * 1452 < 65507 */
#define RECV_BATCH  64
#define RECV_ROUNDS 64 /* receive batches per wake-up before other work */

static const char priority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
    "+CHACHA20-POLY1305:+AES-128-CCM:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "+GROUP-SECP384R1:%DISABLE_TLS13_COMPAT_MODE";

uint8_t qx_pattern[QX_PAT_P + QX_PAT_RUN];

uint64_t qx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void rand_bytes(uint8_t *dest, size_t len)
{
    if (gnutls_rnd(GNUTLS_RND_NONCE, dest, len) != 0)
        abort();
}

static void rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *ctx)
{
    (void)ctx;
    rand_bytes(dest, destlen);
}

static void make_cid(struct qx_conn *c, ngtcp2_cid *cid)
{
    uint8_t d[QX_CID_LEN];
    memcpy(d, &c->slot, 4);
    memcpy(d + 4, c->tag, 4);
    rand_bytes(d + 8, QX_CID_LEN - 8);
    ngtcp2_cid_init(cid, d, QX_CID_LEN);
}

static struct qx_conn *lookup(struct qx_ep *ep, const uint8_t *cid, size_t len)
{
    uint32_t slot;
    if (len != QX_CID_LEN)
        return NULL;
    memcpy(&slot, cid, 4);
    if (slot >= ep->nslots || !ep->slots[slot])
        return NULL;
    struct qx_conn *c = ep->slots[slot];
    return memcmp(cid + 4, c->tag, 4) == 0 ? c : NULL;
}

static void mark_dirty(struct qx_conn *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        c->ep->dirty[c->ep->ndirty++] = c;
    }
}

/* ---- streams ---- */

static struct qx_stream *stream_new(struct qx_conn *c, int64_t id)
{
    struct qx_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->id = id;
    s->next = c->streams;
    c->streams = s;
    ngtcp2_conn_set_stream_user_data(c->q, id, s);
    return s;
}

static void stream_free_chunks(struct qx_stream *s)
{
    while (s->head) {
        struct qx_chunk *k = s->head;
        s->head = k->next;
        free(k);
    }
    s->tail = s->cur = NULL;
}

static int stream_append(struct qx_stream *s, const uint8_t *d, size_t n)
{
    while (n > 0) {
        if (!s->tail || s->tail->len == QX_CHUNK) {
            struct qx_chunk *k = malloc(sizeof *k);
            if (!k)
                return -1;
            k->next = NULL;
            k->off = s->end;
            k->len = 0;
            if (s->tail)
                s->tail->next = k;
            else
                s->head = k;
            s->tail = k;
            if (!s->cur)
                s->cur = k;
        }
        size_t m = QX_CHUNK - s->tail->len;
        if (m > n)
            m = n;
        memcpy(s->tail->d + s->tail->len, d, m);
        s->tail->len += m;
        s->end += m;
        d += m;
        n -= m;
    }
    return 0;
}

/* What to hand ngtcp2 next for s: a pointer and a length (0: none). */
static size_t stream_pending(struct qx_conn *c, struct qx_stream *s, const uint8_t **p)
{
    if (!c->ep->server) {
        uint64_t left = s->end - s->sent;
        *p = qx_pattern + (s->sent + c->seed) % QX_PAT_P;
        return left < QX_PAT_RUN ? (size_t)left : QX_PAT_RUN;
    }
    while (s->cur && s->sent - s->cur->off == s->cur->len && s->cur->len == QX_CHUNK &&
           s->cur->next)
        s->cur = s->cur->next;
    if (!s->cur) {
        *p = NULL;
        return 0;
    }
    size_t pos = (size_t)(s->sent - s->cur->off);
    *p = s->cur->d + pos;
    return s->cur->len - pos;
}

static int stream_wants_fin(const struct qx_conn *c, const struct qx_stream *s)
{
    return !s->fin_sent && s->sent == s->end && (c->ep->server ? s->fin_rx : 1);
}

/* ---- ngtcp2 callbacks ---- */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((struct qx_conn *)ref->user_data)->q;
}

static int on_handshake_completed(ngtcp2_conn *q, void *user)
{
    (void)q;
    struct qx_conn *c = user;
    c->hs_done = 1;
    if (++c->ep->hs_count == c->ep->hs_target)
        c->ep->t_hs_all = qx_now();
    return 0;
}

static int on_recv_stream_data(ngtcp2_conn *q, uint32_t flags, int64_t id,
                               uint64_t offset, const uint8_t *data, size_t len,
                               void *user, void *suser)
{
    struct qx_conn *c = user;
    struct qx_stream *s = suser;
    if (!s && !(s = stream_new(c, id)))
        return NGTCP2_ERR_CALLBACK_FAILURE;
    if (c->ep->server) {
        /* Echo: keep the bytes until the client acknowledges their echo;
         * the client's credit grows as they are acknowledged. */
        if (stream_append(s, data, len) < 0)
            return NGTCP2_ERR_CALLBACK_FAILURE;
    } else {
        for (size_t i = 0; i < len;) {
            size_t pos = (size_t)((offset + i + c->seed) % QX_PAT_P);
            size_t n = len - i < QX_PAT_RUN ? len - i : QX_PAT_RUN;
            if (offset + i + n > s->end || memcmp(data + i, qx_pattern + pos, n) != 0) {
                fprintf(stderr, "conn %u: wrong bytes at offset %llu\n", c->slot,
                        (unsigned long long)(offset + i));
                c->failed = 1;
                return NGTCP2_ERR_CALLBACK_FAILURE;
            }
            i += n;
        }
        ngtcp2_conn_extend_max_stream_offset(q, id, len);
        ngtcp2_conn_extend_max_offset(q, len);
    }
    s->rx += len;
    if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
        s->fin_rx = 1;
    if (!c->ep->server && s->fin_rx && s->rx == s->end)
        c->done = 1;
    mark_dirty(c);
    return 0;
}

static int on_acked_stream_data_offset(ngtcp2_conn *q, int64_t id, uint64_t offset,
                                       uint64_t len, void *user, void *suser)
{
    struct qx_conn *c = user;
    struct qx_stream *s = suser;
    if (!c->ep->server || !s)
        return 0;
    uint64_t acked = offset + len;
    while (s->head && s->head->len == QX_CHUNK && s->head->off + QX_CHUNK <= acked &&
           s->head != s->cur) {
        struct qx_chunk *k = s->head;
        s->head = k->next;
        if (s->tail == k)
            s->tail = NULL;
        free(k);
    }
    ngtcp2_conn_extend_max_stream_offset(q, id, len);
    ngtcp2_conn_extend_max_offset(q, len);
    return 0;
}

static int on_stream_open(ngtcp2_conn *q, int64_t id, void *user)
{
    (void)q;
    return stream_new(user, id) ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int on_stream_close(ngtcp2_conn *q, uint32_t flags, int64_t id, uint64_t code,
                           void *user, void *suser)
{
    (void)q, (void)flags, (void)id, (void)code;
    struct qx_conn *c = user;
    struct qx_stream *s = suser, **pp;
    if (!s)
        return 0;
    for (pp = &c->streams; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    stream_free_chunks(s);
    free(s);
    return 0;
}

static int on_extend_max_local_streams_bidi(ngtcp2_conn *q, uint64_t max, void *user)
{
    (void)max;
    struct qx_conn *c = user;
    if (c->ep->server || c->streams || c->done)
        return 0;
    if (c->ep->bytes_per_conn == 0) { /* handshakes only */
        c->done = 1;
        return 0;
    }
    int64_t id;
    if (ngtcp2_conn_open_bidi_stream(q, &id, NULL) != 0)
        return 0;
    struct qx_stream *s = stream_new(c, id);
    if (!s)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    s->end = c->ep->bytes_per_conn;
    mark_dirty(c);
    return 0;
}

static int on_extend_max_stream_data(ngtcp2_conn *q, int64_t id, uint64_t max, void *user,
                                     void *suser)
{
    (void)q, (void)id, (void)max;
    struct qx_stream *s = suser;
    if (s)
        s->blocked = 0;
    mark_dirty(user);
    return 0;
}

static int on_new_cid(ngtcp2_conn *q, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                      void *user)
{
    (void)q, (void)cidlen;
    make_cid(user, cid);
    rand_bytes(token, NGTCP2_STATELESS_RESET_TOKENLEN);
    return 0;
}

static void callbacks(ngtcp2_callbacks *cb, int server)
{
    memset(cb, 0, sizeof *cb);
    if (server) {
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    } else {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
        cb->extend_max_local_streams_bidi = on_extend_max_local_streams_bidi;
    }
    cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
    cb->encrypt = ngtcp2_crypto_encrypt_cb;
    cb->decrypt = ngtcp2_crypto_decrypt_cb;
    cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
    cb->update_key = ngtcp2_crypto_update_key_cb;
    cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
    cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
    cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
    cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
    cb->handshake_completed = on_handshake_completed;
    cb->recv_stream_data = on_recv_stream_data;
    cb->acked_stream_data_offset = on_acked_stream_data_offset;
    cb->stream_open = on_stream_open;
    cb->stream_close = on_stream_close;
    cb->extend_max_stream_data = on_extend_max_stream_data;
    cb->rand = rand_cb;
    cb->get_new_connection_id = on_new_cid;
}

__attribute__((format(printf, 2, 3))) static void log_printf(void *user, const char *fmt,
                                                             ...)
{
    (void)user;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void settings(ngtcp2_settings *st, ngtcp2_transport_params *p, int server)
{
    ngtcp2_settings_default(st);
    st->initial_ts = qx_now();
    st->max_window = 24u << 20;
    st->max_stream_window = 16u << 20;
    if (getenv("QX_LOG"))
        st->log_printf = log_printf;
    ngtcp2_transport_params_default(p);
    p->initial_max_stream_data_bidi_local = 4u << 20;
    p->initial_max_stream_data_bidi_remote = 4u << 20;
    p->initial_max_data = 16u << 20;
    p->initial_max_streams_bidi = server ? 16 : 0;
    p->max_idle_timeout = 10 * NGTCP2_SECONDS;
}

/* ---- connections ---- */

static struct qx_conn *conn_alloc(struct qx_ep *ep)
{
    for (uint32_t i = 0; i < ep->nslots; i++) {
        if (!ep->slots[i]) {
            struct qx_conn *c = calloc(1, sizeof *c);
            if (!c)
                return NULL;
            c->ep = ep;
            c->slot = i;
            rand_bytes(c->tag, sizeof c->tag);
            c->ref.get_conn = get_conn;
            c->ref.user_data = c;
            ep->slots[i] = c;
            ep->nconns++;
            return c;
        }
    }
    return NULL;
}

static void conn_free(struct qx_conn *c)
{
    struct qx_ep *ep = c->ep;
    if (!ep->server) {
        if (c->done && !c->failed)
            ep->conns_done++;
        else
            ep->conns_failed++;
    }
    while (c->streams) {
        struct qx_stream *s = c->streams;
        c->streams = s->next;
        stream_free_chunks(s);
        free(s);
    }
    if (c->q)
        ngtcp2_conn_del(c->q);
    if (c->tls)
        gnutls_deinit(c->tls);
    for (uint32_t i = 0; c->dirty && i < ep->ndirty; i++) {
        if (ep->dirty[i] == c) {
            ep->dirty[i] = ep->dirty[--ep->ndirty];
            break;
        }
    }
    ep->slots[c->slot] = NULL;
    ep->nconns--;
    free(c);
}

static int conn_tls(struct qx_conn *c)
{
    struct qx_ep *ep = c->ep;
    gnutls_datum_t alpn = {(unsigned char *)ALPN, sizeof ALPN - 1};
    unsigned flags = ep->server ? GNUTLS_SERVER : GNUTLS_CLIENT;
    if (gnutls_init(&c->tls, flags | GNUTLS_NO_END_OF_EARLY_DATA) != 0)
        return -1;
    int r = gnutls_priority_set_direct(c->tls, priority, NULL);
    if (r == 0)
        r = ep->server ? ngtcp2_crypto_gnutls_configure_server_session(c->tls)
                       : ngtcp2_crypto_gnutls_configure_client_session(c->tls);
    if (r == 0)
        r = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, ep->cred);
    if (r == 0)
        r = gnutls_alpn_set_protocols(c->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY);
    if (r == 0 && !ep->server)
        r = gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, "localhost", 9);
    if (r != 0)
        return -1;
    gnutls_session_set_ptr(c->tls, &c->ref);
    ngtcp2_conn_set_tls_native_handle(c->q, c->tls);
    return 0;
}

static void path_of(ngtcp2_path *path, const struct volley_addr *local,
                    const struct volley_addr *peer)
{
    path->local.addr = (ngtcp2_sockaddr *)&local->sa;
    path->local.addrlen = volley_addr_len(local);
    path->remote.addr = (ngtcp2_sockaddr *)&peer->sa;
    path->remote.addrlen = volley_addr_len(peer);
    path->user_data = NULL;
}

int qx_client_connect(struct qx_ep *ep, const struct volley_addr *server, uint32_t seed)
{
    struct qx_conn *c = conn_alloc(ep);
    if (!c)
        return -1;
    c->seed = seed % QX_PAT_P;
    ngtcp2_cid dcid, scid;
    uint8_t d[18];
    rand_bytes(d, sizeof d);
    ngtcp2_cid_init(&dcid, d, sizeof d);
    make_cid(c, &scid);
    ngtcp2_callbacks cb;
    ngtcp2_settings st;
    ngtcp2_transport_params p;
    callbacks(&cb, 0);
    settings(&st, &p, 0);
    ngtcp2_path path;
    path_of(&path, &ep->local, server);
    if (ngtcp2_conn_client_new(&c->q, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &st,
                               &p, NULL, c) != 0 ||
        conn_tls(c) < 0) {
        c->failed = 1;
        conn_free(c);
        return -1;
    }
    mark_dirty(c);
    return 0;
}

static struct qx_conn *server_accept(struct qx_ep *ep, const uint8_t *pkt, size_t len,
                                     const ngtcp2_path *path)
{
    ngtcp2_pkt_hd hd;
    if (ngtcp2_accept(&hd, pkt, len) != 0)
        return NULL;
    struct qx_conn *c = conn_alloc(ep);
    if (!c)
        return NULL;
    c->odcid = hd.dcid;
    ngtcp2_cid scid;
    make_cid(c, &scid);
    ngtcp2_callbacks cb;
    ngtcp2_settings st;
    ngtcp2_transport_params p;
    callbacks(&cb, 1);
    settings(&st, &p, 1);
    p.original_dcid = hd.dcid;
    if (ngtcp2_conn_server_new(&c->q, &hd.scid, &scid, path, hd.version, &cb, &st, &p,
                               NULL, c) != 0 ||
        conn_tls(c) < 0) {
        conn_free(c);
        return NULL;
    }
    ep->accepted++;
    return c;
}

/* ---- sending ---- */

static int plain_send(struct qx_ep *ep, const uint8_t *d, size_t len,
                      const struct volley_addr *peer, unsigned ecn)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {(void *)d, len};
    struct msghdr m = {.msg_name = (void *)&peer->sa,
                       .msg_namelen = volley_addr_len(peer),
                       .msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    memset(u.buf, 0, sizeof u.buf);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    int tos = (int)ecn;
    int v6 = ep->local.sa.sa_family == AF_INET6;
    cm->cmsg_level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
    cm->cmsg_type = v6 ? IPV6_TCLASS : IP_TOS;
    cm->cmsg_len = CMSG_LEN(sizeof tos);
    memcpy(CMSG_DATA(cm), &tos, sizeof tos);
    for (int tries = 0; tries < 100; tries++) {
        ep->tx_calls++;
        if (sendmsg(ep->fd, &m, 0) >= 0)
            return 0;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        struct pollfd pf = {.fd = ep->fd, .events = POLLOUT};
        poll(&pf, 1, 10);
    }
    return -1;
}

static void flush_tx(struct qx_ep *ep)
{
    unsigned done = 0;
    for (int tries = 0; done < ep->ntx && tries < 100; tries++) {
        int r = volley_send(ep->vs, ep->txq + done, ep->ntx - done);
        ep->tx_calls++;
        if (r < 0) {
            ep->tx_dropped++; /* that datagram cannot go: QUIC resends */
            r = 1;
        } else if (r == 0) {
            volley_wait(ep->vs, VOLLEY_WAIT_SEND, 10);
        }
        done += (unsigned)r;
    }
    ep->tx_dropped += ep->ntx - done;
    ep->ntx = 0;
    ep->txoff = 0;
}

static int is_wildcard(const struct volley_addr *a)
{
    if (a->sa.sa_family == AF_INET)
        return a->sin.sin_addr.s_addr == htonl(INADDR_ANY);
    return a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a->sin6.sin6_addr);
}

/* Hand over n packets written back to back at d (each seg bytes, the last
 * perhaps shorter) on one path with one ECN codepoint. */
static void emit(struct qx_ep *ep, uint8_t *d, size_t len, size_t seg, unsigned npkts,
                 const ngtcp2_path *path, unsigned ecn)
{
    struct volley_addr peer, local;
    memset(&peer, 0, sizeof peer);
    memset(&local, 0, sizeof local);
    memcpy(&peer, path->remote.addr, path->remote.addrlen);
    memcpy(&local, path->local.addr, path->local.addrlen);
    if (is_wildcard(&local)) /* no pktinfo: the kernel picks the source */
        memset(&local, 0, sizeof local);
    if (ep->no_ecn_tx)
        ecn = 0;
    ep->tx_pkts += npkts;
    if (ep->plain) {
        for (size_t off = 0; off < len; off += seg)
            plain_send(ep, d + off, len - off < seg ? len - off : seg, &peer, ecn);
        return;
    }
    ep->txq[ep->ntx++] = (struct volley_dgram){
        .data = d,
        .len = len,
        .peer = peer,
        .local = local, /* from where the peer reached us */
        .segment = (uint16_t)(npkts > 1 ? seg : 0),
        .ecn = (uint8_t)ecn,
    };
    ep->txoff += len;
}

static void conn_close_now(struct qx_conn *c, int liberr)
{
    struct qx_ep *ep = c->ep;
    if (!ep->plain && (ep->txcap - ep->txoff < 2048 || ep->ntx == QX_TXQ))
        flush_tx(ep);
    uint8_t *d = ep->txbuf + ep->txoff;
    ngtcp2_connection_close_error ce;
    ngtcp2_connection_close_error_default(&ce);
    if (liberr)
        ngtcp2_connection_close_error_set_transport_error_liberr(&ce, liberr, NULL, 0);
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    ngtcp2_ssize n =
        ngtcp2_conn_write_connection_close(c->q, &ps.path, &pi, d, 1452, &ce, qx_now());
    if (n > 0)
        emit(ep, d, (size_t)n, (size_t)n, 1, &ps.path, pi.ecn);
    conn_free(c);
}

static int same_path(const ngtcp2_path *a, const ngtcp2_path *b)
{
    return a->local.addrlen == b->local.addrlen &&
           a->remote.addrlen == b->remote.addrlen &&
           memcmp(a->local.addr, b->local.addr, a->local.addrlen) == 0 &&
           memcmp(a->remote.addr, b->remote.addr, a->remote.addrlen) == 0;
}

static struct qx_stream *next_stream(struct qx_conn *c)
{
    for (struct qx_stream *s = c->streams; s; s = s->next) {
        const uint8_t *p;
        if (!s->blocked && (stream_pending(c, s, &p) > 0 || stream_wants_fin(c, s)))
            return s;
    }
    return NULL;
}

/* Write what c has to send; returns -1 when c was freed. */
static int conn_write(struct qx_conn *c)
{
    struct qx_ep *ep = c->ep;
    uint64_t ts = qx_now();
    size_t mtu = ngtcp2_conn_get_max_tx_udp_payload_size(c->q);
    size_t quantum = ngtcp2_conn_get_send_quantum(c->q);
    unsigned maxpk = (unsigned)(quantum / mtu);
    if (maxpk < 1)
        maxpk = 1;
    if (maxpk > GSO_PKTS)
        maxpk = GSO_PKTS;
    for (struct qx_stream *s = c->streams; s; s = s->next)
        s->blocked = 0;
    int more = 1;
    for (int bursts = 0; more && bursts < 64; bursts++) {
        if (!ep->plain &&
            (ep->ntx + maxpk > QX_TXQ || ep->txcap - ep->txoff < maxpk * mtu))
            flush_tx(ep);
        uint8_t *start = ep->txbuf + ep->txoff;
        size_t off = 0, seg = 0;
        unsigned npk = 0;
        ngtcp2_path_storage ps, ps0;
        ngtcp2_path_storage_zero(&ps);
        ngtcp2_path_storage_zero(&ps0);
        ngtcp2_pkt_info pi, pi0 = {0};
        unsigned total = 0;
        for (int iter = 0; iter < 4 * GSO_PKTS; iter++) {
            struct qx_stream *s = next_stream(c);
            ngtcp2_vec v = {0};
            size_t vcnt = 0;
            uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
            int64_t sid = -1;
            if (s) {
                const uint8_t *p;
                v.len = stream_pending(c, s, &p);
                v.base = (uint8_t *)p;
                vcnt = v.len > 0;
                sid = s->id;
                if (s->sent + v.len == s->end && (!ep->server || s->fin_rx))
                    flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
            }
            ngtcp2_ssize nd = -1;
            ngtcp2_ssize n = ngtcp2_conn_writev_stream(
                c->q, &ps.path, &pi, start + off, mtu, &nd, flags, sid, &v, vcnt, ts);
            if (nd >= 0 && s) {
                s->sent += (uint64_t)nd;
                if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && s->sent == s->end)
                    s->fin_sent = 1;
            }
            if (n == NGTCP2_ERR_WRITE_MORE)
                continue;
            if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR) {
                s->blocked = 1;
                continue;
            }
            if (n < 0) {
                if (off > 0)
                    emit(ep, start, off, seg, npk, &ps0.path, pi0.ecn);
                conn_close_now(c, (int)n);
                return -1;
            }
            if (n == 0) {
                more = 0; /* nothing more to send now */
                break;
            }
            if (npk > 0 && (pi.ecn != pi0.ecn || !same_path(&ps.path, &ps0.path) ||
                            (size_t)n > seg)) {
                /* another path or codepoint, or longer: the run so far goes
                 * alone, and this packet starts the next */
                emit(ep, start, off, seg, npk, &ps0.path, pi0.ecn);
                start += off;
                off = 0;
                npk = 0;
            }
            if (npk == 0) {
                seg = (size_t)n;
                pi0 = pi;
                ngtcp2_path_copy(&ps0.path, &ps.path);
            }
            off += (size_t)n;
            npk++;
            /* A shorter packet is the run's last; the burst ends at maxpk. */
            if (++total >= maxpk || (size_t)n < seg)
                break;
        }
        if (npk > 0)
            emit(ep, start, off, seg, npk, &ps0.path, pi0.ecn);
    }
    ngtcp2_conn_update_pkt_tx_time(c->q, ts);
    if (!ep->server && c->done) {
        conn_close_now(c, 0);
        return -1;
    }
    return 0;
}

/* ---- receiving ---- */

static void on_packet(struct qx_ep *ep, const uint8_t *d, size_t len,
                      const struct volley_addr *peer, struct volley_addr *local,
                      unsigned ecn)
{
    ep->rx_pkts++;
    ngtcp2_version_cid vc;
    if (ngtcp2_pkt_decode_version_cid(&vc, d, len, QX_CID_LEN) != 0)
        return;
    if (local->sa.sa_family == AF_UNSPEC) /* no pktinfo: the bound address */
        *local = ep->local;
    ngtcp2_path path;
    path_of(&path, local, peer);
    struct qx_conn *c = lookup(ep, vc.dcid, vc.dcidlen);
    if (!c && ep->server) {
        for (uint32_t i = 0; i < ep->nslots && !c; i++) {
            struct qx_conn *o = ep->slots[i];
            if (o && o->odcid.datalen == vc.dcidlen &&
                memcmp(o->odcid.data, vc.dcid, vc.dcidlen) == 0)
                c = o;
        }
        if (!c && !(c = server_accept(ep, d, len, &path)))
            return;
    }
    if (!c)
        return;
    int after_hs = c->hs_done;
    ngtcp2_pkt_info pi = {.ecn = (uint8_t)ecn};
    int r = ngtcp2_conn_read_pkt(c->q, &path, &pi, d, len, qx_now());
    if (after_hs && ecn == NGTCP2_ECN_ECT_0)
        ep->ect0_rx++;
    if (r == NGTCP2_ERR_DRAINING || r == NGTCP2_ERR_CLOSING ||
        r == NGTCP2_ERR_DROP_CONN) {
        conn_free(c);
        return;
    }
    if (r != 0) {
        if (!ep->server)
            fprintf(stderr, "conn %u: %s\n", c->slot, ngtcp2_strerror(r));
        c->failed = 1;
        conn_close_now(c, r);
        return;
    }
    mark_dirty(c);
}

static int recv_volley(struct qx_ep *ep)
{
    struct volley_dgram rx[RECV_BATCH];
    for (int round = 0; round < RECV_ROUNDS; round++) {
        int n = volley_recv(ep->vs, rx, RECV_BATCH);
        if (n <= 0)
            return 0;
        for (int i = 0; i < n; i++)
            on_packet(ep, rx[i].data, rx[i].len, &rx[i].peer, &rx[i].local, rx[i].ecn);
    }
    return 1; /* more may wait */
}

static int recv_plain(struct qx_ep *ep)
{
    static uint8_t buf[65536];
    for (int round = 0; round < RECV_ROUNDS * RECV_BATCH; round++) {
        union {
            char b[CMSG_SPACE(sizeof(int)) * 2];
            struct cmsghdr align;
        } u;
        struct volley_addr peer;
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {.msg_name = &peer.sa,
                           .msg_namelen = sizeof peer,
                           .msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = u.b,
                           .msg_controllen = sizeof u.b};
        memset(&peer, 0, sizeof peer);
        ssize_t n = recvmsg(ep->fd, &m, MSG_DONTWAIT);
        if (n < 0)
            return 0;
        unsigned ecn = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
            if ((cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TOS) ||
                (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_TCLASS)) {
                if (cm->cmsg_len >= CMSG_LEN(sizeof(int)))
                    ecn = (unsigned)*(int *)(void *)CMSG_DATA(cm) & 3;
                else
                    ecn = *(uint8_t *)CMSG_DATA(cm) & 3;
            }
        }
        struct volley_addr local = ep->local;
        on_packet(ep, buf, (size_t)n, &peer, &local, ecn);
    }
    return 1;
}

/* ---- the loop ---- */

/* Write every connection marked dirty; the array holds each live
 * connection at most once (conn_free takes a freed one out). */
static void write_dirty(struct qx_ep *ep)
{
    while (ep->ndirty > 0) {
        struct qx_conn *c = ep->dirty[--ep->ndirty];
        c->dirty = 0;
        conn_write(c);
    }
    if (!ep->plain && ep->ntx > 0)
        flush_tx(ep);
}

/* Handle expiries that are due; returns ns until the next one (UINT64_MAX:
 * none). */
static uint64_t expire(struct qx_ep *ep)
{
    uint64_t now = qx_now(), next = UINT64_MAX;
    for (uint32_t i = 0; i < ep->nslots; i++) {
        struct qx_conn *c = ep->slots[i];
        if (!c)
            continue;
        uint64_t e = ngtcp2_conn_get_expiry(c->q);
        if (e <= now) {
            int r = ngtcp2_conn_handle_expiry(c->q, now);
            if (r != 0) {
                if (!ep->server)
                    fprintf(stderr, "conn %u: %s\n", c->slot, ngtcp2_strerror(r));
                c->failed = 1;
                conn_free(c);
                continue;
            }
            mark_dirty(c);
            continue;
        }
        if (e - now < next)
            next = e - now;
    }
    return next;
}

int qx_ep_run(struct qx_ep *ep, uint64_t deadline, int idle_ms)
{
    uint64_t last_rx = qx_now(), rx_seen = ep->rx_pkts;
    int more = 0;
    write_dirty(ep);
    while (!*ep->stop) {
        uint64_t now = qx_now();
        if (now >= deadline)
            return -1;
        if (!ep->server && ep->nconns == 0)
            return 0;
        if (ep->rx_pkts != rx_seen) {
            rx_seen = ep->rx_pkts;
            last_rx = now;
        } else if (ep->server && idle_ms > 0 && ep->nconns == 0 &&
                   now - last_rx > (uint64_t)idle_ms * 1000000u) {
            return 0;
        }
        uint64_t next = expire(ep);
        write_dirty(ep);
        /* Sleep until the next expiry, at most 100 ms (to see the stop
         * flag and the deadline); not at all while datagrams wait. */
        if (next > 100000000u)
            next = 100000000u;
        if (more)
            next = 0;
        if (ep->plain) {
            struct pollfd pf = {.fd = ep->fd, .events = POLLIN};
            struct timespec ts = {.tv_sec = (time_t)(next / 1000000000u),
                                  .tv_nsec = (long)(next % 1000000000u)};
            if (next > 0)
                ppoll(&pf, 1, &ts, NULL);
            more = recv_plain(ep);
        } else {
            /* The loop's poll does the socket's I/O on a shared ring:
             * call it even when not waiting. The timer ends the wait at
             * the expiry; the poll's own limit is only a backstop. */
            struct volley_event ev[16];
            if (next > 0)
                volley_timer_start_ns(ep->timer, next, 0);
            int n = volley_loop_poll(ep->loop, ev, 16, next > 0 ? 200 : 0);
            if (n < 0 && n != -EINTR) {
                fprintf(stderr, "poll: %s\n", volley_strerror(n));
                return -1;
            }
            if (next > 0)
                volley_timer_stop(ep->timer);
            /* DGRAM events say that datagrams arrived; receive anyway (a
             * timer or a zero timeout may have ended the wait). */
            more = recv_volley(ep);
        }
        write_dirty(ep);
    }
    return -1;
}

/* ---- setup ---- */

int qx_ep_open(struct qx_ep *ep, int server, int plain, const char *bind_addr,
               uint32_t max_conns, volatile sig_atomic_t *stop)
{
    memset(ep, 0, sizeof *ep);
    ep->server = server;
    ep->plain = plain;
    ep->stop = stop;
    ep->fd = -1;
    ep->nslots = max_conns;
    ep->slots = calloc(max_conns, sizeof *ep->slots);
    ep->dirty = calloc(max_conns, sizeof *ep->dirty);
    ep->txcap = 64 * 65536;
    ep->txbuf = malloc(ep->txcap);
    ep->no_ecn_tx = getenv("QX_BREAK_ECN") != NULL;
    if (!ep->slots || !ep->dirty || !ep->txbuf)
        return -ENOMEM;
    for (size_t i = 0; i < sizeof qx_pattern; i++) /* the same on both ends */
        qx_pattern[i] = (uint8_t)((i % QX_PAT_P) * 2654435761u >> 13);
    int r;
    if (plain) {
        struct volley_addr a;
        if ((r = volley_addr_parse(&a, bind_addr)) < 0)
            return r;
        int v6 = a.sa.sa_family == AF_INET6, one = 1;
        ep->fd = socket(a.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (ep->fd < 0)
            return -errno;
        int buf = 4 << 20;
        setsockopt(ep->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        setsockopt(ep->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        if (setsockopt(ep->fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP,
                       v6 ? IPV6_RECVTCLASS : IP_RECVTOS, &one, sizeof one) < 0 ||
            bind(ep->fd, &a.sa, volley_addr_len(&a)) < 0)
            return -errno;
        socklen_t len = sizeof ep->local;
        if (getsockname(ep->fd, &ep->local.sa, &len) < 0)
            return -errno;
    } else {
        if ((r = volley_loop_open(&ep->loop, NULL)) < 0 ||
            (r = volley_timer_open(ep->loop, &ep->timer, 1)) < 0)
            return r;
        struct volley_opts o = VOLLEY_OPTS_INIT;
        o.loop = ep->loop;
        o.rx_batch = RECV_BATCH;
        o.rcvbuf = 4 << 20;
        o.sndbuf = 4 << 20;
        if ((r = volley_open(&ep->vs, bind_addr, &o)) < 0 ||
            (r = volley_local_addr(ep->vs, &ep->local)) < 0)
            return r;
    }
    return 0;
}

int qx_server_tls(struct qx_ep *ep, const char *cert, const char *key)
{
    if (gnutls_certificate_allocate_credentials(&ep->cred) != 0)
        return -1;
    int r =
        gnutls_certificate_set_x509_key_file(ep->cred, cert, key, GNUTLS_X509_FMT_PEM);
    if (r < 0) {
        fprintf(stderr, "%s, %s: %s\n", cert, key, gnutls_strerror(r));
        return -1;
    }
    return 0;
}

/* The example client does not verify the certificate: the test makes a
 * throwaway one at run time. A real client would. */
int qx_client_tls(struct qx_ep *ep)
{
    return gnutls_certificate_allocate_credentials(&ep->cred) == 0 ? 0 : -1;
}

void qx_ep_close(struct qx_ep *ep)
{
    for (uint32_t i = 0; ep->slots && i < ep->nslots; i++)
        if (ep->slots[i])
            conn_free(ep->slots[i]);
    if (ep->vs)
        volley_close(ep->vs);
    if (ep->timer)
        volley_timer_close(ep->timer);
    if (ep->loop)
        volley_loop_close(ep->loop, 0);
    if (ep->fd >= 0)
        close(ep->fd);
    if (ep->cred)
        gnutls_certificate_free_credentials(ep->cred);
    free(ep->slots);
    free(ep->dirty);
    free(ep->txbuf);
}

void qx_print_counters(const struct qx_ep *ep, const char *who)
{
    struct volley_stats st = {0};
    if (ep->vs)
        volley_get_stats(ep->vs, &st, sizeof st);
    printf("%s: datapath %s rx_pkts %llu tx_pkts %llu send_calls %llu gso_sends %llu "
           "gro_buffers %llu tx_dropped %llu ect0_rx %llu\n",
           who, ep->plain ? "plain" : "volley", (unsigned long long)ep->rx_pkts,
           (unsigned long long)ep->tx_pkts,
           (unsigned long long)(ep->plain ? ep->tx_calls : st.tx_syscalls),
           (unsigned long long)st.tx_gso_sends, (unsigned long long)st.rx_gro_buffers,
           (unsigned long long)ep->tx_dropped, (unsigned long long)ep->ect0_rx);
    fflush(stdout);
}
