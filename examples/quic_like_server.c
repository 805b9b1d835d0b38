/* SPDX-License-Identifier: MIT */
/* The datagram plumbing a QUIC server needs, on an echo protocol:
 *
 *  - one dual-stack socket on [::]:PORT serves IPv4 and IPv6 peers;
 *  - GRO (on by default) takes coalesced bursts in one receive;
 *  - each reply leaves from the address its datagram arrived on (the
 *    received local address, from pktinfo), as QUIC requires on a host
 *    with several addresses: a reply from another address is a different
 *    path to the peer;
 *  - the ECN codepoint comes back as it came, as QUIC's ECN validation
 *    expects to see it echoed;
 *  - same-size replies to one peer are written into one buffer and handed
 *    over as one GSO descriptor (segment = their size), as a QUIC stack
 *    that builds packets back to back does: one descriptor and one message
 *    for the run, which the kernel cuts into datagrams;
 *  - ICMP errors (VOLLEY_F_RECVERR) are reported, not lost: a QUIC stack
 *    uses them to drop dead paths and to learn path MTUs.
 *
 * Prints "listening ADDR" and "features ...", a line per ICMP report, and
 * a summary when it stops: on SIGINT/SIGTERM or after IDLE idle seconds.
 *
 *   example_quic_like_server [::]:4433 [IDLE]
 */
#include <volley.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 32
#define SLOT  65536

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

/* A QUIC stack builds each reply in its own buffer (it encrypts into it);
 * here the reply is a copy of the request. Sized once for a whole batch:
 * nothing is allocated per datagram. */
static unsigned char replies[BATCH * SLOT];

static int same_path(const struct volley_dgram *a, const struct volley_dgram *b)
{
    return volley_addr_equal(&a->peer, &b->peer) &&
           volley_addr_equal(&a->local, &b->local) && a->ifindex == b->ifindex &&
           a->ecn == b->ecn;
}

/* Can reply `in` be one more segment of GSO descriptor `run`? Every segment
 * but the last has the first one's size, and the whole fits one UDP
 * datagram's worth of bytes to that peer. */
static int can_join(const struct volley_dgram *run, const struct volley_dgram *in)
{
    size_t seg = run->segment ? run->segment : run->len;
    size_t max = in->peer.sa.sa_family == AF_INET ? VOLLEY_UDP4_MAX : VOLLEY_UDP6_MAX;
    return seg > 0 && in->len > 0 && in->len <= seg && run->len % seg == 0 &&
           run->len / seg < VOLLEY_GSO_SEGMENTS_MAX && run->len + in->len <= max &&
           same_path(run, in);
}

/* Build the replies to rx[0..n) in tx, merging runs; returns how many. */
static unsigned build(const struct volley_dgram *rx, int n, struct volley_dgram *tx)
{
    unsigned nt = 0;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const struct volley_dgram *in = &rx[i];
        memcpy(replies + off, in->data, in->len);
        off += in->len;
        if (nt > 0 && can_join(&tx[nt - 1], in)) {
            struct volley_dgram *run = &tx[nt - 1];
            run->segment = (uint16_t)(run->segment ? run->segment : run->len);
            run->len += in->len; /* contiguous: it was copied right after */
            continue;
        }
        tx[nt] = (struct volley_dgram){
            .data = replies + off - in->len,
            .len = in->len,
            .peer = in->peer,
            .local = in->local, /* answer from where it arrived */
            .ifindex = in->ifindex,
            .ecn = in->ecn,
        };
        nt++;
    }
    return nt;
}

static void send_all(volley_sock *s, const struct volley_dgram *tx, unsigned n)
{
    for (unsigned done = 0, tries = 0; done < n && tries < 100; tries++) {
        int w = volley_send(s, tx + done, n - done);
        if (w < 0) {
            fprintf(stderr, "send: %s\n", volley_strerror(w));
            w = 1; /* that reply cannot go: skip it */
        } else if (w == 0) {
            volley_wait(s, VOLLEY_WAIT_SEND, 100);
        }
        done += (unsigned)w;
    }
}

static long report_errors(volley_sock *s)
{
    struct volley_sockerr e[8];
    int n = volley_errors(s, e, 8);
    for (int i = 0; i < n; i++) {
        char from[64], about[64];
        volley_addr_format(&e[i].offender, from, sizeof from);
        volley_addr_format(&e[i].dest, about, sizeof about);
        printf("icmp %s from %s about %s (type %u code %u)\n",
               volley_strerror(e[i].error), from, about, e[i].type, e[i].code);
    }
    fflush(stdout);
    return n > 0 ? n : 0;
}

static volley_sock *open_server(const char *bind)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.enable = VOLLEY_F_RECVERR;
    o.rx_batch = BATCH;
    o.rx_slot_size = SLOT;
    volley_sock *s;
    struct volley_addr a;
    char name[64];
    int r = volley_open(&s, bind, &o);
    if (r == 0 && (r = volley_local_addr(s, &a)) == 0)
        r = volley_addr_format(&a, name, sizeof name);
    if (r < 0) {
        fprintf(stderr, "open %s: %s\n", bind, volley_strerror(r));
        return NULL;
    }
    unsigned f = volley_features(s);
    printf("listening %s\nfeatures%s%s%s%s%s\n", name, f & VOLLEY_F_GSO ? " gso" : "",
           f & VOLLEY_F_GRO ? " gro" : "", f & VOLLEY_F_PKTINFO ? " pktinfo" : "",
           f & VOLLEY_F_ECN ? " ecn" : "", f & VOLLEY_F_RECVERR ? " recverr" : "");
    fflush(stdout);
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s [::]:PORT [IDLE_SECONDS]\n", argv[0]);
        return 2;
    }
    int idle_limit = argc > 2 ? atoi(argv[2]) : 30;
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: wake the wait */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    volley_sock *s = open_server(argv[1]);
    if (!s)
        return 1;

    struct volley_dgram rx[BATCH], tx[BATCH];
    long echoed = 0, sends = 0, icmp = 0;
    for (int idle = 0; !stopping && idle < idle_limit;) {
        int r = volley_wait(s, VOLLEY_WAIT_RECV, 1000);
        if (r < 0) {
            fprintf(stderr, "wait: %s\n", volley_strerror(r));
            break;
        }
        icmp += report_errors(s);
        if (!(r & VOLLEY_WAIT_RECV)) {
            idle += r == 0; /* a second without traffic, or a signal */
            continue;
        }
        idle = 0;
        int n = volley_recv(s, rx, BATCH);
        if (n < 0)
            fprintf(stderr, "recv: %s\n", volley_strerror(n));
        if (n > 0) {
            unsigned nt = build(rx, n, tx);
            send_all(s, tx, nt);
            echoed += n;
            sends += nt;
        }
    }
    struct volley_stats st;
    volley_get_stats(s, &st, sizeof st);
    printf("echoed %ld datagrams in %ld descriptors, %llu gso sends, %ld icmp reports\n",
           echoed, sends, (unsigned long long)st.tx_gso_sends, icmp);
    volley_close(s);
    return 0;
}
