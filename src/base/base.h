/* SPDX-License-Identifier: MIT */
/* Private to libvolley: the base both subsystems stand on. The system-call
 * seam (sys.c, the only place system calls are made), addresses (addr.c),
 * options and the environment (opts.c), reuseport groups (group.c), the
 * version and volley_strerror. It knows neither datagram sockets nor the
 * stream loop: src/dgram and src/stream include it, never each other.
 * Tests include it and link the static library to reach these. */
#ifndef VOLLEY_BASE_H
#define VOLLEY_BASE_H

#include "volley.h"

#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define VOLLEY_INTERNAL __attribute__((visibility("hidden")))

/* n bytes on a page boundary (NULL: out of memory); free() releases them.
 * Every block the kernel or volley copies payloads into comes from here:
 * the kernel copies from buffers that start on a page, and a destination
 * a few bytes past its source's offset in the page makes each load of the
 * copy wait on the store before it (4K aliasing). malloc leaves a large
 * block 16 bytes past a page, which ran a one-thread send-then-receive
 * loop of 1200-byte datagrams at a third of its speed. */
static inline void *volley__pages(size_t n)
{
    void *p = NULL;
    return posix_memalign(&p, 4096, n) == 0 ? p : NULL;
}

/* Flags Linux (and the BSDs) take at socket(), which macOS lacks: there
 * volley's sockets are left without them (every call passes MSG_DONTWAIT). */
#ifndef SOCK_CLOEXEC
#define SOCK_CLOEXEC 0
#endif
#ifndef SOCK_NONBLOCK
#define SOCK_NONBLOCK 0
#endif

/* Backends VOLLEY_DISABLE turns off, kept in the internal copy of
 * volley_opts.disable next to the feature bits. */
#define VOLLEY__F_NO_MMSG  0x10000u
#define VOLLEY__F_NO_URING 0x20000u
#define VOLLEY__F_NO_XNU   0x40000u
#define VOLLEY__F_ALL                                                                    \
    (VOLLEY_F_GSO | VOLLEY_F_GRO | VOLLEY_F_PKTINFO | VOLLEY_F_ECN |                     \
     VOLLEY_F_TIMESTAMP | VOLLEY_F_RXQ_OVFL | VOLLEY_F_RECVERR | VOLLEY_F_GRO_SEGMENTS | \
     VOLLEY_F_DONTFRAG)
/* Option limits (volley.h documents them; opts.c checks them). */
#define VOLLEY__PAIR_CAPACITY_MAX 65536u
#define VOLLEY__RING_BUFS_MAX     4096u
#define VOLLEY__ARENA_MIN         65536u /* one full GSO message must fit */
#define VOLLEY__ARENA_MAX         (1u << 30)
#define VOLLEY__PACE_MAX_BPS      10000000000000ull /* 10 Tbit/s */
/* No socket takes a datagram this large: the kernel's send buffer limits
 * (an int) refuse it, so volley does too, before any arithmetic on it. */
#define VOLLEY__DGRAM_MAX 0x7fffffffu

/* The xnu backend (sendmsg_x/recvmsg_x): built on Apple, and into the
 * tests' copy of the library elsewhere (VOLLEY_XNU_EMUL), where the calls
 * are tests/dgram/xnu_emul.c's emulation. The library shipped off Apple has none
 * of it. */
#if defined(__APPLE__) || (defined(VOLLEY_XNU_EMUL) && VOLLEY_TESTING)
#define VOLLEY_HAVE_XNU 1
#else
#define VOLLEY_HAVE_XNU 0
#endif

/* io_uring names newer than Debian's liburing 2.3 (kernel ABI values),
 * for both subsystems' zero-copy sends. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3) /* Linux 6.2 */
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

/* ---- opts.c: options and the environment ---- */
/* Copy a caller's options struct (its first field: its size) into dst,
 * zero-filling what an older caller lacks: 0, -EINVAL (size below min), or
 * -E2BIG (a newer caller set fields this library does not know). src may
 * be NULL: all zero. */
VOLLEY_INTERNAL int volley__opts_in(void *dst, size_t dsize, const void *src, size_t min);
/* VOLLEY_BACKEND as it applies to a stream loop (uring, epoll, else AUTO)
 * and whether VOLLEY_DISABLE names uring: 0 or -EINVAL (a bad variable). */
VOLLEY_INTERNAL int volley__env_loop_backend(unsigned *backend, bool *no_uring);
/* Validate and copy caller options (NULL: defaults) into *dst, applying
 * defaults and the VOLLEY_DISABLE environment, and VOLLEY_BACKEND when
 * env_backend_applies and the caller left the backend to volley. */
VOLLEY_INTERNAL int volley__opts_load(struct volley_opts *dst,
                                      const struct volley_opts *src,
                                      bool env_backend_applies);

/* ---- group.c ---- */
/* Attach a FLOW steering program to fd's reuseport group (for the GSO
 * probe): 0 or setsockopt(2)'s error. */
VOLLEY_INTERNAL int volley__group_probe_attach(int fd);

/* ---- hosting: a datagram socket on a stream loop (volley_opts.loop) ----
 * The one place the two subsystems meet. The socket (the guest, in
 * src/dgram) and the loop (its host, in src/stream) know each other only
 * through these two tables, so neither includes the other's header. A
 * struct volley_loop begins with a struct volley__host: a socket given a
 * loop reaches its table through the pointer. */
struct io_uring;
struct volley__host;
struct volley__guest;

struct volley__host_ops {
    /* Take an entry for g, whose user is set: 0, -EINVAL (the host is
     * closing), -ENOMEM. Sets g->host, g->ring, g->tag_base and g->bgid. */
    int (*attach)(struct volley__host *h, struct volley__guest *g);
    /* g is set up (fd, poll_fd and shared are final): the host watches
     * poll_fd for it, unless it shares the host's ring. 0 or an error. */
    int (*start)(struct volley__guest *g);
    /* Let go of g's entry (g->host becomes NULL). */
    void (*detach)(struct volley__guest *g);
    /* A send on g stopped short for lack of room: the host watches fd for
     * room and owes a DGRAM event with VOLLEY_WAIT_SEND. */
    void (*blocked)(struct volley__guest *g);
    /* For a guest sharing the ring: run the host's backend, waiting up to
     * timeout_ms (0: only submit and reap) for completions, each handed to
     * its guest; or only reap what is posted. */
    int (*pump)(struct volley__host *h, int timeout_ms);
    void (*reap)(struct volley__host *h);
};

struct volley__guest_ops {
    /* A completion of g's own operation on the host's ring (own_tag: the
     * upper half of its user_data): the VOLLEY_WAIT_* bits the host owes. */
    unsigned (*cqe)(struct volley__guest *g, uint32_t own_tag, int32_t res,
                    uint32_t flags);
    /* The host closes: g stops using its ring and is left able only to
     * close (called only for a guest that shares the ring). */
    void (*host_closing)(struct volley__guest *g);
};

struct volley__host {
    const struct volley__host_ops *ops;
};

struct volley__guest {
    /* the socket's side */
    const struct volley__guest_ops *ops;
    void *user;  /* ev.user of its DGRAM events */
    int fd;      /* its own descriptor (watched for room to send) */
    int poll_fd; /* what says it is readable (volley_fd) */
    bool shared; /* its backend runs on the host's ring */
    /* the host's side, set at attach */
    struct volley__host *host; /* NULL: on no loop */
    struct io_uring *ring;     /* the host's ring; NULL: it has none */
    uint64_t tag_base;         /* the user_data of g's operations there:
                                  tag_base | (uint64_t)own_tag << 32 */
    unsigned bgid;             /* a buffer group id of g's own there */
    uint32_t idx;              /* the host's entry */
};

/* ---- addr.c ---- */
VOLLEY_INTERNAL void volley__addr_from_sockaddr(struct volley_addr *out,
                                                const struct sockaddr *sa, socklen_t len);
/* Write a into a sockaddr_in6-sized buffer for a socket of family fam,
 * mapping IPv4 into ::ffff:0:0/96 on IPv6 sockets. Returns the length, or
 * 0 for AF_UNSPEC, or -EAFNOSUPPORT. */
VOLLEY_INTERNAL int volley__addr_to_sockaddr(const struct volley_addr *a, int fam,
                                             struct sockaddr_in6 *out);
VOLLEY_INTERNAL bool volley__addr_is_v4mapped(const struct in6_addr *a);
/* IPv4, or IPv6 holding a v4-mapped address. */
VOLLEY_INTERNAL bool volley__addr_is_v4(const struct volley_addr *a);

/* ---- sys.c: the only place system calls are made (but for the clock and
 * liburing's ring memory, which need none) ----
 * Each returns the call's result or a negative errno (errno read once). */
enum volley__sysop {
    VOLLEY__SYS_SOCKET,
    VOLLEY__SYS_BIND,
    VOLLEY__SYS_CONNECT,
    VOLLEY__SYS_SETSOCKOPT,
    VOLLEY__SYS_GETSOCKOPT,
    VOLLEY__SYS_GETSOCKNAME,
    VOLLEY__SYS_GETPEERNAME,
    VOLLEY__SYS_SENDMSG,
    VOLLEY__SYS_SENDMMSG,
    VOLLEY__SYS_RECVMSG,
    VOLLEY__SYS_RECVMMSG,
    VOLLEY__SYS_POLL,
    VOLLEY__SYS_FCNTL,
    /* eventfd(2) and its reads and writes, or the pipe that stands in for
     * one where there is none (volley__sys_notify_*) */
    VOLLEY__SYS_EVENTFD,
    VOLLEY__SYS_EVENTFD_READ,
    VOLLEY__SYS_EVENTFD_WRITE,
    VOLLEY__SYS_MMAP,
    VOLLEY__SYS_URING_INIT,
    VOLLEY__SYS_URING_REGISTER,
    VOLLEY__SYS_URING_SUBMIT,
    VOLLEY__SYS_URING_WAIT,
    VOLLEY__SYS_URING_FILES, /* the ring's socket table: register, update */
    /* the stream path: */
    VOLLEY__SYS_LISTEN,
    VOLLEY__SYS_ACCEPT,
    VOLLEY__SYS_SHUTDOWN,
    VOLLEY__SYS_RECV,
    VOLLEY__SYS_EPOLL_CREATE,
    VOLLEY__SYS_EPOLL_CTL,
    VOLLEY__SYS_EPOLL_WAIT,
    /* membarrier(2), for the RCU grace period a group member's leave waits */
    VOLLEY__SYS_MEMBARRIER,
    /* a local stream socket's file: stat(2) and unlink(2) */
    VOLLEY__SYS_STAT,
    VOLLEY__SYS_UNLINK,
    /* XNU's batch calls (the xnu backend): */
    VOLLEY__SYS_SENDMSG_X,
    VOLLEY__SYS_RECVMSG_X,
    VOLLEY__SYS_COUNT
};
VOLLEY_INTERNAL int volley__sys_socket(int domain, int type, int proto);
VOLLEY_INTERNAL int volley__sys_bind(int fd, const struct sockaddr *a, socklen_t len);
VOLLEY_INTERNAL int volley__sys_connect(int fd, const struct sockaddr *a, socklen_t len);
VOLLEY_INTERNAL int volley__sys_setsockopt(int fd, int level, int opt, const void *v,
                                           socklen_t len);
VOLLEY_INTERNAL int volley__sys_getsockopt(int fd, int level, int opt, void *v,
                                           socklen_t *len);
VOLLEY_INTERNAL int volley__sys_getsockname(int fd, struct sockaddr *a, socklen_t *len);
VOLLEY_INTERNAL int volley__sys_getpeername(int fd, struct sockaddr *a, socklen_t *len);
VOLLEY_INTERNAL ssize_t volley__sys_sendmsg(int fd, const struct msghdr *m, int flags);
VOLLEY_INTERNAL int volley__sys_sendmmsg(int fd, struct mmsghdr *m, unsigned n,
                                         int flags);
VOLLEY_INTERNAL ssize_t volley__sys_recvmsg(int fd, struct msghdr *m, int flags);
VOLLEY_INTERNAL int volley__sys_recvmmsg(int fd, struct mmsghdr *m, unsigned n,
                                         int flags);
VOLLEY_INTERNAL int volley__sys_poll(struct pollfd *p, unsigned n, int timeout_ms);
#if VOLLEY_HAVE_XNU
struct volley__msghdr_x;
/* sendmsg_x/recvmsg_x: the messages done (sendmsg_x may do a prefix) or a
 * negative errno, read once, right after the call. A short count from the
 * fault seam cuts n as for sendmmsg. */
VOLLEY_INTERNAL int volley__sys_sendmsg_x(int fd, struct volley__msghdr_x *m, unsigned n,
                                          int flags);
VOLLEY_INTERNAL int volley__sys_recvmsg_x(int fd, struct volley__msghdr_x *m, unsigned n,
                                          int flags);
#endif
VOLLEY_INTERNAL int volley__sys_listen(int fd, int backlog);
/* accept4(2), non-blocking and close-on-exec; the peer address is not asked. */
VOLLEY_INTERNAL int volley__sys_accept(int fd);
VOLLEY_INTERNAL int volley__sys_shutdown(int fd, int how);
/* recv(2) with MSG_DONTWAIT. */
VOLLEY_INTERNAL ssize_t volley__sys_recv(int fd, void *buf, size_t len);
struct epoll_event;
/* epoll_create1(EPOLL_CLOEXEC), epoll_ctl(2), epoll_wait(2) and
 * epoll_pwait2(2) with no signal mask (-ENOSYS where the C library has no
 * such call); EINTR is returned, not retried: the caller's timeout would
 * stretch. The two waits are one kind of call to the fault seam. */
VOLLEY_INTERNAL int volley__sys_epoll_create(void);
VOLLEY_INTERNAL int volley__sys_epoll_ctl(int epfd, int op, int fd,
                                          struct epoll_event *ev);
VOLLEY_INTERNAL int volley__sys_epoll_wait(int epfd, struct epoll_event *ev, int n,
                                           int timeout_ms);
struct timespec;
VOLLEY_INTERNAL int volley__sys_epoll_pwait2(int epfd, struct epoll_event *ev, int n,
                                             const struct timespec *ts);
VOLLEY_INTERNAL int volley__sys_fcntl(int fd, int cmd, int arg);
VOLLEY_INTERNAL void volley__sys_close(int fd);
/* stat(2) of path: 0 and *st, or a negative errno. */
struct stat;
VOLLEY_INTERNAL int volley__sys_stat(const char *path, struct stat *st);
/* unlink(2): 0 or a negative errno. */
VOLLEY_INTERNAL int volley__sys_unlink(const char *path);
#if VOLLEY_HAVE_LINUX
/* membarrier(MEMBARRIER_CMD_GLOBAL): returns once every CPU has passed an
 * RCU grace period (the kernel runs synchronize_rcu()); 0 or -EINVAL
 * (nohz_full), -ENOSYS, -EPERM (seccomp). */
VOLLEY_INTERNAL int volley__sys_membarrier_global(void);
/* eventfd(2), non-blocking and close-on-exec. */
VOLLEY_INTERNAL int volley__sys_eventfd(void);
/* Read (reset) or add to an eventfd's counter: 0 or a negative errno
 * (-EAGAIN: nothing to read, or the counter is full). */
VOLLEY_INTERNAL int volley__sys_eventfd_read(int fd);
VOLLEY_INTERNAL int volley__sys_eventfd_write(int fd, uint64_t v);
#endif
/*
 * A wake-up a poller can watch where no socket is (the pair backend's
 * volley_fd): an eventfd with the Linux parts, else a non-blocking pipe,
 * as macOS has no eventfd. rfd is what poll watches and drain reads; wfd
 * is what signal writes (the same fd for an eventfd). The user keeps it
 * at most one signal deep: signal once, drain once. Each call is counted
 * and failed as the eventfd call it stands for (VOLLEY__SYS_EVENTFD,
 * _WRITE, _READ), whichever is underneath. open: 0 or a negative errno;
 * signal, drain: 0 or a negative errno (-EAGAIN: nothing to drain).
 */
struct volley__notify {
    int rfd, wfd;
};
VOLLEY_INTERNAL int volley__sys_notify_open(struct volley__notify *n);
VOLLEY_INTERNAL int volley__sys_notify_signal(const struct volley__notify *n);
VOLLEY_INTERNAL int volley__sys_notify_drain(const struct volley__notify *n);
/* Closes both ends (once when they are one fd) and sets them to -1. */
VOLLEY_INTERNAL void volley__sys_notify_close(struct volley__notify *n);
/* Anonymous private read-write memory: 0 and *out, or a negative errno. */
VOLLEY_INTERNAL int volley__sys_mmap(size_t len, void **out);
VOLLEY_INTERNAL void volley__sys_munmap(void *p, size_t len);
#if VOLLEY_HAVE_URING
struct io_uring;
struct io_uring_params;
struct io_uring_buf_reg;
VOLLEY_INTERNAL int volley__sys_uring_init(unsigned entries, struct io_uring *ring,
                                           struct io_uring_params *p);
VOLLEY_INTERNAL int volley__sys_uring_register_buf_ring(struct io_uring *ring,
                                                        struct io_uring_buf_reg *reg);
VOLLEY_INTERNAL int volley__sys_uring_register_eventfd(struct io_uring *ring, int fd);
/* io_uring_submit, or io_uring_get_events when nothing is queued. */
VOLLEY_INTERNAL int volley__sys_uring_submit(struct io_uring *ring);
/* Wait for a completion up to ts (NULL: no limit); 0, or a negative errno
 * (-ETIME when the time ran out). */
struct __kernel_timespec;
VOLLEY_INTERNAL int volley__sys_uring_wait(struct io_uring *ring,
                                           struct __kernel_timespec *ts);
/* Submit what is queued and reap what is due, without waiting. */
VOLLEY_INTERNAL int volley__sys_uring_submit_get(struct io_uring *ring);
/* Submit what is queued and wait for at least one completion up to ts
 * (NULL: no limit): the number submitted, or a negative errno (-ETIME
 * when the time ran out, -EINTR on a signal). */
VOLLEY_INTERNAL int volley__sys_uring_submit_wait(struct io_uring *ring,
                                                  struct __kernel_timespec *ts);
/* Whether the kernel knows io_uring opcode op: 1, 0, or a negative errno.
 * ring NULL: asks through a ring of its own. */
VOLLEY_INTERNAL int volley__sys_uring_has_op(struct io_uring *ring, int op);
/* Unregister buffer ring bgid from a ring that stays (a loop's). */
VOLLEY_INTERNAL int volley__sys_uring_unregister_buf_ring(struct io_uring *ring,
                                                          int bgid);
/* Give the ring a socket table of n empty entries: 0 or a negative errno. */
VOLLEY_INTERNAL int volley__sys_uring_register_files(struct io_uring *ring, unsigned n);
/* Set entry i of the ring's socket table to fd (-1: empty it): 0 or a
 * negative errno. */
VOLLEY_INTERNAL int volley__sys_uring_update_file(struct io_uring *ring, unsigned i,
                                                  int fd);
/* Teardown: unregister the buffer ring bgid (if registered) and release
 * the ring. Nothing to fail: the kernel frees it all with the ring fd. */
VOLLEY_INTERNAL void volley__sys_uring_exit(struct io_uring *ring, int bgid);
#endif

#if VOLLEY_TESTING
/*
 * Fault injection (tests). Arm op so that, counting its calls from now
 * (1-based), calls nth .. nth+times-1 fail: with -err when err != 0, or,
 * for sendmmsg/recvmmsg (and sendmsg_x/recvmsg_x) with err == 0, are made
 * with at most short_n messages (a short count). times 0 means every call
 * from nth on.
 * volley__sys_fault_clear disarms everything; volley__sys_count tells how many
 * calls of op were made since the last clear. volley__sys_fault_setsockopt
 * narrows VOLLEY__SYS_SETSOCKOPT to the calls setting opt at level (counted
 * and failed alone: the Nth such call) until the next clear.
 */
VOLLEY_INTERNAL void volley__sys_fault_set(enum volley__sysop op, unsigned nth,
                                           unsigned times, int err, unsigned short_n);
VOLLEY_INTERNAL void volley__sys_fault_setsockopt(int level, int opt);
VOLLEY_INTERNAL void volley__sys_fault_clear(void);
VOLLEY_INTERNAL unsigned long volley__sys_count(enum volley__sysop op);
#endif

/* The portable build (VOLLEY_LINUX_BACKENDS=OFF) compiles the library
 * with Linux's own calls forbidden, so that none creeps in outside the
 * files built only on Linux. */
#if defined(VOLLEY_POISON_LINUX) && VOLLEY_POISON_LINUX
#pragma GCC poison sendmmsg recvmmsg accept4 epoll_create1 epoll_ctl epoll_wait
#pragma GCC poison epoll_pwait2
#pragma GCC poison eventfd eventfd_read eventfd_write
#pragma GCC poison io_uring_queue_init_params
#endif

#endif /* VOLLEY_BASE_H */
