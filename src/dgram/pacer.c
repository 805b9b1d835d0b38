/* SPDX-License-Identifier: MIT */
/* Token-bucket pacing. Pure: the caller passes the clock, so tests can
 * drive it with any schedule. Tokens are bytes; the fraction of a byte
 * earned but not yet whole is kept in bit-nanoseconds, so no time is lost
 * to rounding however often it is refilled. */
#include "dgram.h"

#include <errno.h>

#define NS 1000000000ull

void volley__pacer_set(struct volley__pacer *p, uint64_t rate_bps, uint32_t burst,
                       int64_t now_ns)
{
    bool was_on = p->rate_bps != 0;
    if (was_on)
        volley__pacer_refill(p, now_ns);
    p->rate_bps = rate_bps;
    p->burst = burst ? burst : volley__pacer_default_burst(rate_bps);
    /* A fresh pacer starts with a full bucket; a running one keeps what it
     * earned, up to the new burst. */
    if (!was_on || p->tokens > (int64_t)p->burst)
        p->tokens = (int64_t)p->burst;
    p->frac = 0;
    p->last_ns = now_ns;
}

uint32_t volley__pacer_default_burst(uint64_t rate_bps)
{
    /* Four milliseconds at the rate: a sender that sleeps until its next
     * datagram may go and wakes up late (a busy host overshoots by a
     * millisecond or more) finds its budget still there instead of
     * overflowing a full bucket, so the long-run rate holds. */
    uint64_t b = rate_bps / 8 / 250;
    if (b < 3000)
        return 3000;
    return b > UINT32_MAX ? UINT32_MAX : (uint32_t)b;
}

void volley__pacer_refill(struct volley__pacer *p, int64_t now_ns)
{
    if (!p->rate_bps || now_ns <= p->last_ns) {
        p->last_ns = now_ns > p->last_ns ? now_ns : p->last_ns;
        return;
    }
    uint64_t dt = (uint64_t)(now_ns - p->last_ns);
    p->last_ns = now_ns;
    /* Bits earned, scaled by NS: dt * rate fits 128 bits for any dt. */
    unsigned __int128 earned = (unsigned __int128)dt * p->rate_bps + p->frac;
    unsigned __int128 bytes = earned / (8 * NS);
    int64_t room = (int64_t)p->burst - p->tokens;
    if (bytes >= (unsigned __int128)room) {
        p->tokens = (int64_t)p->burst; /* full: what is beyond is not saved */
        p->frac = 0;
        return;
    }
    p->tokens += (int64_t)bytes;
    p->frac = (uint64_t)(earned % (8 * NS));
}

bool volley__pacer_admit(struct volley__pacer *p, uint64_t cost)
{
    if (!p->rate_bps)
        return true;
    if (p->tokens >= (int64_t)cost || p->tokens >= (int64_t)p->burst) {
        /* A datagram larger than the burst goes from a full bucket, leaving
         * a debt the rate pays back before anything else goes. */
        p->tokens -= (int64_t)cost;
        return true;
    }
    return false;
}

void volley__pacer_refund(struct volley__pacer *p, uint64_t cost)
{
    if (!p->rate_bps)
        return;
    p->tokens += (int64_t)cost;
    if (p->tokens > (int64_t)p->burst)
        p->tokens = (int64_t)p->burst;
}

int64_t volley__pacer_delay(const struct volley__pacer *p, uint64_t cost, int64_t now_ns)
{
    if (!p->rate_bps)
        return 0;
    struct volley__pacer q = *p;
    volley__pacer_refill(&q, now_ns);
    int64_t want = cost < q.burst ? (int64_t)cost : (int64_t)q.burst;
    if (q.tokens >= want)
        return 0;
    /* Bit-nanoseconds still to earn, rounded up to whole nanoseconds. */
    unsigned __int128 need = (unsigned __int128)(want - q.tokens) * 8 * NS;
    need = need > q.frac ? need - q.frac : 0;
    unsigned __int128 ns = (need + q.rate_bps - 1) / q.rate_bps;
    return ns > INT64_MAX ? INT64_MAX : (int64_t)ns;
}

uint64_t volley__pacer_wire_bytes(int fam, const struct volley_dgram *d)
{
    size_t ip;
    if (fam != AF_INET && fam != AF_INET6)
        ip = 0; /* AF_UNIX, the pair: no headers */
    else
        ip = volley__gso_max_payload(fam, &d->peer) == VOLLEY_UDP4_MAX ? 28 : 48;
    if (!d->segment)
        return d->len + ip;
    return d->len + (uint64_t)volley__gso_count(d->len, d->segment) * ip;
}
