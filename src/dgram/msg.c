/* SPDX-License-Identifier: MIT */
/* Message plumbing the kernel backends share: msghdrs for sends, staging
 * received messages, and handing datagrams to the caller, splitting GRO
 * buffers in place. */
#include "dgram.h"

#include <errno.h>
#if VOLLEY_HAVE_SOCK_DIAG_H
#include <linux/sock_diag.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

void volley__msg_fill_tx(volley_sock *s, unsigned slot, struct msghdr *m,
                         const struct volley_dgram *d, struct iovec *iov, size_t niov,
                         uint16_t gso_seg)
{
    memset(m, 0, sizeof *m);
    m->msg_iov = iov;
    m->msg_iovlen = niov;
    if (s->family != AF_INET && s->family != AF_INET6)
        return;
    int len = volley__addr_to_sockaddr(&d->peer, s->family, &s->tx_names[slot]);
    if (len > 0) {
        m->msg_name = &s->tx_names[slot];
        m->msg_namelen = (socklen_t)len;
    }
    uint8_t *ctrl = s->tx_ctrl + (size_t)slot * VOLLEY__TX_CTRL;
    int clen = volley__cmsg_build(ctrl, VOLLEY__TX_CTRL, s->family, d, gso_seg);
    if (clen > 0) {
        m->msg_control = ctrl;
        m->msg_controllen = (size_t)clen;
    }
}

void volley__msg_reset_rx(volley_sock *s, unsigned i)
{
    struct msghdr *m = &s->rx_msgs[i].msg_hdr;
    s->rx_iov[i].iov_base = s->rx_slab + (size_t)i * volley__slot_stride(s->slot_size);
    s->rx_iov[i].iov_len = s->slot_size;
    m->msg_name = &s->rx_names[i];
    m->msg_namelen = sizeof s->rx_names[i];
    m->msg_iov = &s->rx_iov[i];
    m->msg_iovlen = 1;
    m->msg_control = s->rx_ctrl + (size_t)i * VOLLEY__RX_CTRL;
    m->msg_controllen = VOLLEY__RX_CTRL;
    m->msg_flags = 0;
}

void volley__msg_stage(volley_sock *s, uint8_t *data, size_t len, bool trunc,
                       const void *name, socklen_t namelen, const void *ctrl,
                       size_t ctrllen)
{
    struct volley__rxpend *p = &s->pend[s->pend_n++];
    p->data = data;
    p->len = (uint32_t)(len < s->slot_size ? len : s->slot_size);
    p->off = 0;
    p->trunc = trunc || len > s->slot_size; /* a buffer bigger than the slot */
    volley__addr_from_sockaddr(&p->peer, name, namelen);
    (void)volley__cmsg_parse(ctrl, ctrllen, &p->meta);
    if (p->meta.local.sa.sa_family == AF_INET)
        p->meta.local.sin.sin_port = s->bound.sin.sin_port;
    else if (p->meta.local.sa.sa_family == AF_INET6)
        p->meta.local.sin6.sin6_port = s->bound.sin6.sin6_port;
    if (p->meta.has_ovfl) {
        /* Unsigned difference survives the kernel's 32-bit wrap. */
        s->st.rx_kernel_drops += (uint32_t)(p->meta.ovfl - s->ovfl_last);
        s->ovfl_last = p->meta.ovfl;
    }
    if (p->meta.gro_segment && p->len > p->meta.gro_segment)
        s->st.rx_gro_buffers++;
}

void volley__msg_stage_rx(volley_sock *s, unsigned i, size_t len, int mflags)
{
    const struct msghdr *m = &s->rx_msgs[i].msg_hdr;
    volley__msg_stage(s, s->rx_iov[i].iov_base, len, (mflags & MSG_TRUNC) != 0,
                      m->msg_name, m->msg_namelen, m->msg_control, m->msg_controllen);
}

bool volley__msg_pending(const volley_sock *s)
{
    return s->pend_i < s->pend_n;
}

/* One descriptor of a buffer: every field but data and len is the same
 * for the whole buffer, computed once by the caller into locals (so that
 * nothing written here can alias what is read, and no narrow store is
 * read back wide). */
static inline void put_dgram(struct volley_dgram *x, uint8_t *data, uint32_t len,
                             const struct volley_addr *peer,
                             const struct volley_addr *local, uint32_t ifindex,
                             uint16_t segment, uint8_t ecn, uint8_t flags, int64_t rx_ns)
{
    x->data = data;
    x->len = len;
    x->peer = *peer;
    x->local = *local;
    x->ifindex = ifindex;
    x->segment = segment;
    x->ecn = ecn;
    x->flags = flags;
    x->rx_ns = rx_ns;
}

unsigned volley__msg_deliver(volley_sock *s, struct volley_dgram *d, unsigned n)
{
    unsigned k = 0;
    uint64_t dgrams = 0, bytes = 0;
    /* GRO_SEGMENTS: a coalesced buffer goes out whole, cut at its stride. */
    bool whole = s->features & VOLLEY_F_GRO_SEGMENTS;
    while (k < n && s->pend_i < s->pend_n) {
        struct volley__rxpend *p = &s->pend[s->pend_i];
        uint8_t *data = p->data;
        uint32_t off = p->off, plen = p->len;
        uint16_t seg = p->meta.gro_segment;
        bool gro = seg && plen > seg;
        const struct volley_addr peer = p->peer, local = p->meta.local;
        uint32_t ifindex = p->meta.ifindex;
        uint8_t ecn = p->meta.ecn;
        uint8_t flags = (uint8_t)((p->meta.has_ts ? VOLLEY_DGRAM_TSTAMP : 0) |
                                  (gro ? VOLLEY_DGRAM_GRO : 0));
        int64_t rx_ns = p->meta.has_ts ? p->meta.rx_ns : 0;
        if (plen == 0) { /* an empty datagram is one descriptor too */
            put_dgram(&d[k++], data, 0, &peer, &local, ifindex, 0, ecn, flags, rx_ns);
            dgrams++;
        } else if (gro && whole) {
            put_dgram(&d[k++], data + off, plen - off, &peer, &local, ifindex, seg, ecn,
                      flags, rx_ns);
            dgrams += volley__gso_count(plen - off, seg);
            bytes += plen - off;
            off = plen;
        } else {
            uint32_t stride = seg ? seg : plen;
            while (k < n && off < plen) {
                uint32_t len = plen - off > stride ? stride : plen - off;
                put_dgram(&d[k++], data + off, len, &peer, &local, ifindex, 0, ecn, flags,
                          rx_ns);
                off += len;
                bytes += len;
                dgrams++;
            }
        }
        p->off = off;
        if (off < plen)
            break; /* out of descriptors mid-buffer */
        /* The cut, if any, is at the end of the buffer. */
        if (p->trunc) {
            d[k - 1].flags |= VOLLEY_DGRAM_TRUNC;
            s->st.rx_truncated++;
        }
        s->pend_i++;
    }
    s->st.rx_dgrams += dgrams;
    s->st.rx_bytes += bytes;
    if (s->pend_i == s->pend_n)
        s->pend_i = s->pend_n = 0;
    return k;
}

int volley__msg_alloc_rx(volley_sock *s)
{
    unsigned rb = s->rx_batch;
    s->rx_slab = volley__slab_alloc(rb, volley__slot_stride(s->slot_size));
    s->rx_msgs = calloc(rb, sizeof *s->rx_msgs);
    s->rx_iov = calloc(rb, sizeof *s->rx_iov);
    s->rx_names = calloc(rb, sizeof *s->rx_names);
    s->rx_ctrl = calloc(rb, VOLLEY__RX_CTRL);
    if (!s->rx_slab || !s->rx_msgs || !s->rx_iov || !s->rx_names || !s->rx_ctrl)
        return -ENOMEM;
    for (unsigned i = 0; i < rb; i++)
        volley__msg_reset_rx(s, i);
    s->rx_dirty = 0;
    return 0;
}

/* The kernel's drop counter for the socket now (SO_MEMINFO reads the same
 * 32-bit counter SO_RXQ_OVFL reports); false when it cannot be read. */
bool volley__msg_meminfo_drops(const volley_sock *s, uint32_t *drops)
{
#if !VOLLEY_HAVE_SOCK_DIAG_H || !defined(SO_MEMINFO)
    (void)s, (void)drops;
    return false;
#else
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof mem;
    if (volley__sys_getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 ||
        len <= SK_MEMINFO_DROPS * sizeof mem[0])
        return false;
    *drops = mem[SK_MEMINFO_DROPS];
    return true;
#endif
}

int volley__msg_block_for(volley_sock *s, int timeout_ms)
{
    if (!s->fd_blocks || timeout_ms == 0)
        return -EAGAIN;
    if (timeout_ms == s->rcvtimeo_ms)
        return 0;
    /* No limit is a long one: the kernel restarts a receive a signal
     * handler with SA_RESTART interrupted only when the socket has no
     * timeout (sock_intr_errno), and the caller must see the signal. */
    struct timeval tv = {VOLLEY__RCVTIMEO_FOREVER_S, 0};
    if (timeout_ms >= 0)
        tv = (struct timeval){timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int r = volley__sys_setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    s->st.rx_syscalls++;
    if (r < 0)
        return r;
    s->rcvtimeo_ms = timeout_ms;
    return 0;
}
