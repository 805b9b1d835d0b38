/* SPDX-License-Identifier: MIT */
/* What the stream tests share (tests/stream/tstream.c): a loop of the running
 * case's backend, streams generated from seeds, the queue of polled
 * events with bounded waits for one of them, a connected pair on one
 * loop, and plain sockets for the peers volley does not drive. Every wait
 * is bounded; nothing asserts how long anything took. */
#ifndef VOLLEY_TSTREAM_H
#define VOLLEY_TSTREAM_H

#include "t.h"

#include <sys/resource.h>
#include <sys/types.h>

#define KiB               1024u
#define MiB               (1024u * 1024u)
#define SENDQ_MAX_DEFAULT MiB
#define READQ_MAX_DEFAULT (256u * KiB)
#define T_STREAM(buf, len, seed, off, what)                                              \
    stream_at(__FILE__, __LINE__, buf, len, seed, off, what)
#define EVQ_MAX                 4096
#define TAKE(l, type, c)        take_at(__FILE__, __LINE__, l, type, c, 5000)
#define TAKE_MS(l, type, c, ms) take_at(__FILE__, __LINE__, l, type, c, ms)

/* The streams' scratch space, and the events polled and not taken yet
 * (oldest first). */
extern uint8_t scratch[256 * KiB], check_buf[256 * KiB];
extern struct volley_event evq[EVQ_MAX];
extern unsigned evq_n;
/* The user pointers of a duo's listener, client and server. */
extern char ln_user, cli_user, srv_user;

/* A listener, and a client dialed to it with the server end it accepted,
 * on one loop. */
struct duo {
    volley_loop *l;
    volley_conn *ln, *cli, *srv;
};

struct volley_loop_opts lopts(void);

struct volley_conn_opts copts(void);

volley_loop *loop_with(const struct volley_loop_opts *o);

volley_loop *loop_new(void);

void need_fds(rlim_t n);

uint64_t mix(uint64_t x);

void gen(uint64_t seed, uint64_t off, void *buf, size_t len);

void stream_at(const char *file, int line, const void *buf, size_t len, uint64_t seed,
               uint64_t off, const char *what);

struct volley_addr conn_local(const volley_conn *c);

struct volley_addr conn_peer(const volley_conn *c);

const char *addr_of(const volley_conn *c, const char *ip);

const char *ev_name(unsigned t);

int pull(volley_loop *l, int timeout_ms);

void evq_remove(unsigned i);

int queued_ev(unsigned type, const volley_conn *c);

void drop_ev(unsigned type, const volley_conn *c);

const char *evq_text(void);

bool take_within(volley_loop *l, unsigned type, const volley_conn *c, int timeout_ms,
                 struct volley_event *out);

struct volley_event take_at(const char *file, int line, volley_loop *l, unsigned type,
                            const volley_conn *c, int ms);

void settle(volley_loop *l, int ms);

void duo_connect(struct duo *d, const struct volley_conn_opts *o);

void duo_open(struct duo *d, const struct volley_loop_opts *lo,
              const struct volley_conn_opts *o);

void duo_default(struct duo *d);

void put(volley_conn *c, const void *buf, size_t n);

void read_exact(volley_loop *l, volley_conn *c, void *buf, size_t n);

int close_wait(volley_loop *l, volley_conn *c);

void close_both(volley_loop *l, volley_conn *a, volley_conn *b);

void duo_close(struct duo *d);

struct volley_loop_stats loop_stats(const volley_loop *l);

struct volley_conn_stats conn_stats(const volley_conn *c);

void timeouts(int fd, int ms);

int plain_listen(const char *where, int backlog, char addr[64]);

int plain_connect(const char *addr, int rcvbuf);

int plain_accept(int lfd);

void plain_reset(int fd);

ssize_t plain_recv_now(int fd, void *buf, size_t n);

void plain_send_all(int fd, const void *buf, size_t n);

/* A listener on 127.0.0.1 that takes no more connections (backlog 0, and
 * full): a dial to addr stays in progress, its SYN dropped. */
struct full_listener {
    int lfd, filler, extra;
    char addr[64];
};
void full_listener_open(struct full_listener *f);
void full_listener_close(struct full_listener *f);

#endif /* VOLLEY_TSTREAM_H */
