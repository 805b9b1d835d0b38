/* Test helpers: assertions, skips, socket setup over any backend. Tests exit
 * 0 (pass), 1 (fail) or 77 (skip). Every test arms a watchdog so a bug
 * fails fast instead of hanging. */
#ifndef VOLLEY_T_H
#define VOLLEY_T_H

#include "volley.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_SKIP 77

#define T_FAIL(...)                                                                      \
    do {                                                                                 \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                             \
        fprintf(stderr, __VA_ARGS__);                                                    \
        fprintf(stderr, "\n");                                                           \
        exit(1);                                                                         \
    } while (0)

#define T_ASSERT(c)                                                                      \
    do {                                                                                 \
        if (!(c))                                                                        \
            T_FAIL("%s", #c);                                                            \
    } while (0)

/* Integer equality that prints both sides. */
#define T_EQ(a, b)                                                                       \
    do {                                                                                 \
        long long a_ = (long long)(a), b_ = (long long)(b);                              \
        if (a_ != b_)                                                                    \
            T_FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);                            \
    } while (0)

/* A volley call returning >= 0, or fail with its error text. */
#define T_OK(x)                                                                          \
    ({                                                                                   \
        int r_ = (x);                                                                    \
        if (r_ < 0)                                                                      \
            T_FAIL("%s: %s (%d)", #x, volley_strerror(r_), r_);                          \
        r_;                                                                              \
    })

#define T_SKIP_IF(c, why)                                                                \
    do {                                                                                 \
        if (c) {                                                                         \
            fprintf(stderr, "SKIP %s:%d: %s\n", __FILE__, __LINE__, why);                \
            exit(T_SKIP);                                                                \
        }                                                                                \
    } while (0)

/* Abort the test after `seconds` (prints the test name). */
void t_watchdog(const char *name, unsigned seconds);

/* Backend id from a name ("scalar", "mmsg", "uring", "pair"); exits 1 if
 * unknown. */
unsigned t_backend(const char *name);

/* Options with size set and the given backend. */
struct volley_opts t_opts(unsigned backend);

/*
 * Two sockets that talk to each other: for the pair backend an in-memory
 * pair; otherwise two UDP sockets of `backend` bound on `bind` (e.g.
 * "127.0.0.1:0" or "[::1]:0"), *to_b holding b's address (the peer to use
 * when a sends) and *to_a a's. Skips (77) if the family is unavailable.
 */
void t_socks(const struct volley_opts *o, const char *bind, volley_sock **a,
             volley_sock **b, struct volley_addr *to_b, struct volley_addr *to_a);

/* Receive until `want` datagrams arrived into d (copying payloads into
 * `store`, want * stride bytes) or timeout_ms passed with nothing new.
 * Returns how many arrived. */
unsigned t_recv_n(volley_sock *s, struct volley_dgram *d, unsigned want, uint8_t *store,
                  size_t stride, int timeout_ms);

/* Send all n datagrams, waiting when the socket would block (bounded by
 * timeout_ms overall). Returns how many were sent. */
unsigned t_send_all(volley_sock *s, const struct volley_dgram *d, unsigned n,
                    int timeout_ms);

/* Monotonic milliseconds. */
long long t_now_ms(void);

/* Deterministic payload byte for (seq, index). */
static inline uint8_t t_byte(uint64_t seq, size_t i)
{
    return (uint8_t)((seq * 131u + i * 7u + 17u) & 0xff);
}

#endif
