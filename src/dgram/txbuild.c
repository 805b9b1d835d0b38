/* SPDX-License-Identifier: MIT */
/* Turning a batch of descriptors into messages: GSO runs become one
 * UDP_SEGMENT message, explicit GSO buffers are cut into as many messages
 * as the kernel's segment limit needs (one per datagram when GSO is off).
 * Shared by every backend that can send many messages at once. */
#include "dgram.h"

#include <errno.h>

/* Messages and iovecs one build may use. */
#define MSG_CAP VOLLEY_BATCH_MAX
#define IOV_CAP VOLLEY_BATCH_MAX

/* The path of the last message head that passed volley__sock_check_one,
 * and the message whose name and control were built for it: in the usual
 * batch, copies of one template, every later head with the same 64 path
 * bytes (volley__path_same) is checked by its length and data alone and
 * shares that name and control, so each descriptor is visited once for
 * its check, its run and its message. */
struct seen {
    struct volley__path path;
    size_t max_len; /* the path's payload ceiling: longer is -EMSGSIZE */
    unsigned msg;   /* the message built for it, if has_msg */
    uint16_t seg;   /* that message's UDP_SEGMENT (0: none) */
    bool valid, has_msg;
};

/* volley__sock_check_one's answer for head x. Everything it weighs but the
 * length and the data is in the path, so a path that passed before passes
 * again; any doubt asks the full check, which gives the exact errno. */
static int check_head(const volley_sock *s, const struct volley_dgram *x, struct seen *c)
{
    if (c->valid && !x->segment && x->len <= c->max_len && (x->data || !x->len) &&
        volley__path_same(&c->path, x))
        return 0;
    int err = volley__sock_check_one(s, x);
    if (err < 0)
        return err;
    volley__path_load(&c->path, x);
    c->max_len = volley__sock_max_len(s, &x->peer);
    c->valid = true;
    c->has_msg = false;
    return 0;
}

static void add_msg(volley_sock *s, struct volley__txbuild *b, struct seen *c,
                    const struct volley_dgram *d, unsigned first, unsigned niov,
                    unsigned ndesc, unsigned ndgram, size_t bytes, uint16_t seg)
{
    struct volley__txinfo *t = &s->tx_info[b->nmsg];
    struct msghdr *m = &s->tx_msgs[b->nmsg].msg_hdr;
    if (c->has_msg && c->seg == seg) {
        /* name and control depend on the path and seg alone (msg.c) */
        const struct msghdr *p = &s->tx_msgs[c->msg].msg_hdr;
        *m = (struct msghdr){
            .msg_name = p->msg_name,
            .msg_namelen = p->msg_namelen,
            .msg_iov = &s->tx_iov[b->niov],
            .msg_iovlen = niov,
            .msg_control = p->msg_control,
            .msg_controllen = p->msg_controllen,
        };
    } else {
        volley__msg_fill_tx(s, b->nmsg, m, d, &s->tx_iov[b->niov], niov, seg);
        c->msg = b->nmsg;
        c->seg = seg;
        c->has_msg = true;
    }
    t->first = first;
    t->ndesc = ndesc;
    t->ndgram = ndgram;
    t->bytes = bytes; /* at most VOLLEY__DGRAM_MAX: volley__sock_check_one saw to it */
    t->gso = seg != 0;
    b->nmsg++;
    b->niov += niov;
}

/* Cut an explicit GSO descriptor into messages of at most per segments
 * (per 1: plain datagrams). Only the last piece completes the descriptor.
 * Returns false if out of room. */
static bool add_pieces(volley_sock *s, struct volley__txbuild *b, struct seen *c,
                       const struct volley_dgram *d, unsigned idx, unsigned per)
{
    unsigned segs = volley__gso_count(d->len, d->segment);
    unsigned pieces = (segs + per - 1) / per;
    if (b->nmsg + pieces > MSG_CAP || b->niov + pieces > IOV_CAP)
        return false;
    size_t step = (size_t)per * d->segment;
    for (unsigned p = 0; p < pieces; p++) {
        size_t off = p * step;
        size_t len = d->len - off < step ? d->len - off : step;
        unsigned n = volley__gso_count(len, d->segment);
        s->tx_iov[b->niov] = (struct iovec){(uint8_t *)d->data + off, len};
        add_msg(s, b, c, d, idx, 1, p + 1 == pieces, n, len, n > 1 ? d->segment : 0);
    }
    return true;
}

/* One planned run: a single datagram or a coalesced GSO run. Payloads
 * that lie back to back in memory share one iovec: the kernel copies one
 * long run much faster than many short ones. */
static bool add_run(volley_sock *s, struct volley__txbuild *b, struct seen *c,
                    const struct volley_dgram *x, unsigned idx,
                    const struct volley__run *run)
{
    if (b->nmsg + 1 > MSG_CAP || b->niov + run->count > IOV_CAP)
        return false;
    struct iovec *iov = &s->tx_iov[b->niov];
    unsigned niov = 0;
    if (run->contig) { /* the planner saw them back to back */
        iov[niov++] = (struct iovec){x[0].data, run->bytes};
    } else {
        /* The iovec being grown stays in registers: a store and reload
         * of its length per datagram was most of this loop's cost. A run
         * of more than one datagram has data in each (volley__gso_run). */
        const uint8_t *start = x[0].data;
        size_t len = x[0].len;
        for (unsigned j = 1; j < run->count; j++) {
            const uint8_t *p = x[j].data;
            if (start + len == p) {
                len += x[j].len;
                continue;
            }
            iov[niov++] = (struct iovec){(void *)start, len};
            start = p;
            len = x[j].len;
        }
        iov[niov++] = (struct iovec){(void *)start, len};
    }
    /* Never a segment size on a single datagram: some kernels and devices
     * mishandle it. */
    uint16_t seg = run->count > 1 ? run->seg : 0;
    add_msg(s, b, c, x, idx, niov, run->count, run->count, run->bytes, seg);
    return true;
}

/* One walk over the descriptors: each run is planned, its head checked
 * and its message built before the next run begins. */
void volley__tx_build(volley_sock *s, const struct volley_dgram *d, unsigned n,
                      struct volley__txbuild *b)
{
    unsigned gso = (s->features & VOLLEY_F_GSO) ? s->gso_segs : 0;
    unsigned i = b->next;
    if (b->err)
        n = b->bad;
    if (i < b->plain_end) { /* a refused GSO message's datagrams, unsegmented */
        gso = 0;
        n = b->plain_end;
    }
    struct seen c = {.valid = false, .has_msg = false};
    while (i < n) {
        const struct volley_dgram *x = &d[i];
        struct volley__run run;
        if (gso > 1) {
            volley__gso_run(x, n - i, gso, &run);
        } else { /* what volley__gso_run plans without coalescing */
            run = (struct volley__run){
                .count = 1, .seg = x->segment, .contig = true, .bytes = x->len};
        }
        int err = check_head(s, x, &c);
        if (err < 0) {
            b->err = err;
            b->bad = i;
            return;
        }
        if (x->segment ? !add_pieces(s, b, &c, x, i, gso > 1 ? gso : 1)
                       : !add_run(s, b, &c, x, i, &run))
            return;
        i += run.count;
        b->next = i;
    }
}

bool volley__tx_gso_refused(volley_sock *s, struct volley__txbuild *b, unsigned j,
                            int err)
{
    const struct volley__txinfo *t = &s->tx_info[j];
    if ((err != -EIO && err != -EINVAL) || !t->gso || b->suspect)
        return false;
    /* A later piece of a cut-up buffer: its first pieces are out, and
     * resending from the start would duplicate them. */
    if (j > 0 && s->tx_info[j - 1].ndesc == 0)
        return false;
    b->next = t->first;
    b->plain_end = t->first + (t->ndesc ? t->ndesc : 1);
    b->suspect = true;
    return true;
}

void volley__tx_gso_verdict(volley_sock *s, struct volley__txbuild *b, bool sent)
{
    if (!b->suspect)
        return;
    b->suspect = false;
    if (!sent)
        return; /* the datagram's own error: GSO stays on */
    s->features &= ~VOLLEY_F_GSO;
    s->gso_segs = 0;
    s->st.tx_gso_fallback++;
}

void volley__tx_account(volley_sock *s, unsigned from, unsigned to, unsigned *done)
{
    for (unsigned j = from; j < to; j++) {
        const struct volley__txinfo *t = &s->tx_info[j];
        *done += t->ndesc;
        s->st.tx_dgrams += t->ndgram;
        s->st.tx_bytes += t->bytes;
        s->st.tx_gso_sends += t->gso;
    }
}

/* A stop in the middle of a cut-up descriptor: its first pieces are on the
 * wire, so it is done, and the pieces left behind count as failed. */
void volley__tx_settle_partial(volley_sock *s, unsigned off, unsigned nmsg,
                               unsigned *done, int err)
{
    if (off == 0 || off >= nmsg || s->tx_info[off - 1].ndesc != 0)
        return;
    unsigned first = s->tx_info[off].first;
    unsigned j = off;
    for (; j < nmsg && s->tx_info[j].first == first; j++)
        s->st.tx_errors += s->tx_info[j].ndgram;
    volley__err_count(s, err);
    (*done)++;
}

int volley__tx_stopped(volley_sock *s, unsigned off, unsigned nmsg, unsigned done,
                       int err)
{
    if (err == -EAGAIN)
        s->st.tx_wouldblock++;
    volley__tx_settle_partial(s, off, nmsg, &done, err);
    if (err != -EAGAIN && done == 0) {
        s->st.tx_errors++;
        volley__err_count(s, err);
        return err;
    }
    return (int)done;
}

int volley__tx_send(volley_sock *s, const struct volley_dgram *d, unsigned n,
                    const struct volley__tx_calls *c)
{
    unsigned done = 0;
    struct volley__txbuild b = {0};
    struct volley__retry rt = {0, 0};
    while (volley__tx_more(&b, n)) {
        b.nmsg = b.niov = 0;
        volley__tx_build(s, d, n, &b);
        if (c->built)
            c->built(s, b.nmsg);
        unsigned off = 0;
        while (off < b.nmsg) {
            unsigned cnt = b.nmsg - off < c->per_call ? b.nmsg - off : c->per_call;
            int r = c->send(s, off, cnt);
            s->st.tx_syscalls++;
            if (r > 0) {
                /* never more than asked, whatever the call claims */
                unsigned k = (unsigned)r < cnt ? (unsigned)r : cnt;
                volley__err_send_ok(s, &rt);
                volley__tx_gso_verdict(s, &b, true);
                volley__tx_account(s, off, off + k, &done);
                off += k;
                continue;
            }
            if (r == 0)
                r = -EAGAIN; /* not expected with messages to send; never spin */
            else if (volley__err_send_retry(s, &rt, r))
                continue;
            if (volley__tx_gso_refused(s, &b, off, r))
                break;
            volley__tx_gso_verdict(s, &b, false);
            return volley__tx_stopped(s, off, b.nmsg, done, r);
        }
    }
    return volley__tx_result(&b, done);
}
