/* Turning a batch of descriptors into messages: GSO runs become one
 * UDP_SEGMENT message, explicit GSO buffers are cut up when GSO is off.
 * Shared by every backend that can send many messages at once. */
#include "internal.h"

/* Messages and iovecs one build may use. */
#define MSG_CAP VOLLEY_BATCH_MAX
#define IOV_CAP VOLLEY_BATCH_MAX

static void add_msg(volley_sock *s, struct volley__txbuild *b,
                    const struct volley_dgram *d, unsigned first, unsigned niov,
                    unsigned ndesc, unsigned ndgram, size_t bytes, uint16_t seg)
{
    struct volley__txinfo *t = &s->tx_info[b->nmsg];
    volley__fill_txmsg(s, b->nmsg, &s->tx_msgs[b->nmsg].msg_hdr, d, &s->tx_iov[b->niov],
                       niov, seg);
    t->first = first;
    t->ndesc = ndesc;
    t->ndgram = ndgram;
    t->bytes = (uint32_t)bytes;
    t->gso = seg != 0;
    b->nmsg++;
    b->niov += niov;
}

/* Cut an explicit GSO descriptor into plain datagrams (GSO is off). Only
 * the last piece completes the descriptor. Returns false if out of room. */
static bool add_pieces(volley_sock *s, struct volley__txbuild *b,
                       const struct volley_dgram *d, unsigned idx)
{
    unsigned pieces = volley__gso_count(d->len, d->segment);
    if (b->nmsg + pieces > MSG_CAP || b->niov + pieces > IOV_CAP)
        return false;
    for (unsigned p = 0; p < pieces; p++) {
        uint32_t off = p * d->segment;
        uint32_t len = volley__seg_next((uint32_t)d->len, d->segment, off);
        s->tx_iov[b->niov] = (struct iovec){(uint8_t *)d->data + off, len};
        add_msg(s, b, d, idx, 1, p + 1 == pieces, 1, len, 0);
    }
    return true;
}

void volley__tx_build(volley_sock *s, const struct volley_dgram *d, unsigned n,
                      struct volley__txbuild *b)
{
    unsigned gso = (s->features & VOLLEY_F_GSO) ? s->gso_segs : 0;
    unsigned base = b->next;
    unsigned nr = volley__gso_plan(d + base, n - base, gso, s->runs);
    for (unsigned r = 0; r < nr; r++) {
        const struct volley__run *run = &s->runs[r];
        unsigned idx = base + run->first;
        const struct volley_dgram *x = &d[idx];
        if (x->segment && !gso) {
            if (!add_pieces(s, b, x, idx))
                return;
        } else {
            if (b->nmsg + 1 > MSG_CAP || b->niov + run->count > IOV_CAP)
                return;
            size_t bytes = 0;
            for (unsigned j = 0; j < run->count; j++) {
                s->tx_iov[b->niov + j] = (struct iovec){x[j].data, x[j].len};
                bytes += x[j].len;
            }
            unsigned ndgram =
                x->segment ? volley__gso_count(x->len, x->segment) : run->count;
            /* Never a segment size on a single datagram: some kernels and
             * devices mishandle it. */
            uint16_t seg = ndgram > 1 ? run->seg : 0;
            add_msg(s, b, x, idx, run->count, run->count, ndgram, bytes, seg);
        }
        b->next = idx + run->count;
    }
}

/* The device or kernel refused segmentation: turn it off for good on this
 * socket; the caller rebuilds from the refused message unsegmented. */
void volley__gso_fallback(volley_sock *s)
{
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
        s->st.tx_errors++;
    volley__count_err(s, err);
    (*done)++;
}
