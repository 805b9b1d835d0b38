/* SPDX-License-Identifier: MIT */
/* Every system call libvolley makes goes through here, so tests can make
 * the Nth call of any kind fail with a chosen errno or a short count. The
 * fault machinery is built only into the test library (VOLLEY_TESTING);
 * the shipped one makes each call directly. */
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#if VOLLEY_HAVE_LINUX
#include <linux/membarrier.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif
#include <sys/mman.h>
#include <sys/stat.h>
#if VOLLEY_HAVE_LINUX
#include <sys/syscall.h>
#endif
#include <unistd.h>
#if VOLLEY_HAVE_URING
#include <liburing.h>
#endif
#if VOLLEY_HAVE_XNU
#include "xnu.h"
#endif

#if VOLLEY_TESTING
struct fault {
    unsigned long from, to; /* call numbers [from, to], to == 0: no end */
    int err;
    unsigned short_n;
    bool armed;
};

/* Call counters are only kept while a test has armed something, so the
 * normal path pays one relaxed load per call. */
static atomic_int faults_armed;
static struct fault faults[VOLLEY__SYS_COUNT];
static unsigned long calls[VOLLEY__SYS_COUNT];
/* setsockopt calls of other options pass untouched and uncounted while
 * fault_level >= 0 (volley__sys_fault_setsockopt) */
static int fault_level = -1, fault_opt;

void volley__sys_fault_set(enum volley__sysop op, unsigned nth, unsigned times, int err,
                           unsigned short_n)
{
    if ((unsigned)op >= VOLLEY__SYS_COUNT || nth == 0)
        return;
    struct fault *f = &faults[op];
    f->from = calls[op] + nth;
    f->to = times ? f->from + times - 1 : 0;
    f->err = err < 0 ? -err : err;
    f->short_n = short_n;
    f->armed = true;
    atomic_store(&faults_armed, 1);
}

void volley__sys_fault_clear(void)
{
    for (int i = 0; i < VOLLEY__SYS_COUNT; i++) {
        faults[i].armed = false;
        calls[i] = 0;
    }
    fault_level = -1;
    atomic_store(&faults_armed, 0);
}

void volley__sys_fault_setsockopt(int level, int opt)
{
    fault_level = level;
    fault_opt = opt;
}

static bool opt_picked(int level, int opt)
{
    return fault_level < 0 || (level == fault_level && opt == fault_opt);
}

unsigned long volley__sys_count(enum volley__sysop op)
{
    return (unsigned)op < VOLLEY__SYS_COUNT ? calls[op] : 0;
}

/* Returns the fault that applies to this call of op, or NULL. */
static const struct fault *fault_hit(enum volley__sysop op)
{
    if (!atomic_load_explicit(&faults_armed, memory_order_relaxed))
        return NULL;
    unsigned long n = ++calls[op];
    const struct fault *f = &faults[op];
    if (!f->armed || n < f->from || (f->to && n > f->to))
        return NULL;
    return f;
}

#define FAULT_ERR(op)                                                                    \
    do {                                                                                 \
        const struct fault *f_ = fault_hit(op);                                          \
        if (f_ && f_->err)                                                               \
            return -f_->err;                                                             \
    } while (0)
#else
struct fault {
    int err;
    unsigned short_n;
};
/* (unused where no batch call is built: clang says so of a static inline) */
__attribute__((unused)) static inline const struct fault *fault_hit(enum volley__sysop op)
{
    (void)op;
    return NULL;
}
#define FAULT_ERR(op) ((void)(op))
static inline bool opt_picked(int level, int opt)
{
    (void)level;
    (void)opt;
    return false;
}
#endif

static int ret_or_errno(long r)
{
    if (r >= 0)
        return (int)r;
    int e = errno;
    return -e;
}

int volley__sys_socket(int domain, int type, int proto)
{
    FAULT_ERR(VOLLEY__SYS_SOCKET);
    return ret_or_errno(socket(domain, type, proto));
}

int volley__sys_bind(int fd, const struct sockaddr *a, socklen_t len)
{
    FAULT_ERR(VOLLEY__SYS_BIND);
    return ret_or_errno(bind(fd, a, len));
}

int volley__sys_connect(int fd, const struct sockaddr *a, socklen_t len)
{
    FAULT_ERR(VOLLEY__SYS_CONNECT);
    for (;;) {
        int r = ret_or_errno(connect(fd, a, len));
        if (r != -EINTR)
            return r;
    }
}

int volley__sys_setsockopt(int fd, int level, int opt, const void *v, socklen_t len)
{
    if (opt_picked(level, opt))
        FAULT_ERR(VOLLEY__SYS_SETSOCKOPT);
    return ret_or_errno(setsockopt(fd, level, opt, v, len));
}

int volley__sys_getsockopt(int fd, int level, int opt, void *v, socklen_t *len)
{
    FAULT_ERR(VOLLEY__SYS_GETSOCKOPT);
    return ret_or_errno(getsockopt(fd, level, opt, v, len));
}

int volley__sys_getsockname(int fd, struct sockaddr *a, socklen_t *len)
{
    FAULT_ERR(VOLLEY__SYS_GETSOCKNAME);
    return ret_or_errno(getsockname(fd, a, len));
}

int volley__sys_getpeername(int fd, struct sockaddr *a, socklen_t *len)
{
    FAULT_ERR(VOLLEY__SYS_GETPEERNAME);
    return ret_or_errno(getpeername(fd, a, len));
}

ssize_t volley__sys_sendmsg(int fd, const struct msghdr *m, int flags)
{
    FAULT_ERR(VOLLEY__SYS_SENDMSG);
    ssize_t r = sendmsg(fd, m, flags);
    if (r >= 0)
        return r;
    int e = errno;
    return -e;
}

#if VOLLEY_HAVE_LINUX
int volley__sys_sendmmsg(int fd, struct mmsghdr *m, unsigned n, int flags)
{
    const struct fault *f = fault_hit(VOLLEY__SYS_SENDMMSG);
    if (f && f->err)
        return -f->err;
    if (f && f->short_n && n > f->short_n)
        n = f->short_n;
    return ret_or_errno(sendmmsg(fd, m, n, flags));
}

#endif

ssize_t volley__sys_recvmsg(int fd, struct msghdr *m, int flags)
{
    FAULT_ERR(VOLLEY__SYS_RECVMSG);
    ssize_t r = recvmsg(fd, m, flags);
    if (r >= 0)
        return r;
    int e = errno;
    return -e;
}

#if VOLLEY_HAVE_LINUX
int volley__sys_recvmmsg(int fd, struct mmsghdr *m, unsigned n, int flags)
{
    const struct fault *f = fault_hit(VOLLEY__SYS_RECVMMSG);
    if (f && f->err)
        return -f->err;
    if (f && f->short_n && n > f->short_n)
        n = f->short_n;
    return ret_or_errno(recvmmsg(fd, m, n, flags, NULL));
}
#endif

#if VOLLEY_HAVE_XNU
#if defined(__APPLE__)
/* In libSystem, with no header: declared as XNU declares them. */
ssize_t recvmsg_x(int s, struct volley__msghdr_x *m, unsigned cnt, int flags);
ssize_t sendmsg_x(int s, const struct volley__msghdr_x *m, unsigned cnt, int flags);
#define XNU_RECVMSG_X     recvmsg_x
#define XNU_SENDMSG_X     sendmsg_x
#define XNU_AFTER_ERRNO() ((void)0)
#else
#define XNU_RECVMSG_X     volley__xnu_emul_recvmsg_x
#define XNU_SENDMSG_X     volley__xnu_emul_sendmsg_x
#define XNU_AFTER_ERRNO() volley__xnu_emul_after_errno()
#endif

/* errno is read here and nowhere else: a signal handler that runs after
 * the call may change it, and the value read first is the call's. */
int volley__sys_sendmsg_x(int fd, struct volley__msghdr_x *m, unsigned n, int flags)
{
    const struct fault *f = fault_hit(VOLLEY__SYS_SENDMSG_X);
    if (f && f->err)
        return -f->err;
    if (f && f->short_n && n > f->short_n)
        n = f->short_n;
    ssize_t r = XNU_SENDMSG_X(fd, m, n, flags);
    int e = errno;
    XNU_AFTER_ERRNO();
    return r >= 0 ? (int)r : -e;
}

int volley__sys_recvmsg_x(int fd, struct volley__msghdr_x *m, unsigned n, int flags)
{
    const struct fault *f = fault_hit(VOLLEY__SYS_RECVMSG_X);
    if (f && f->err)
        return -f->err;
    if (f && f->short_n && n > f->short_n)
        n = f->short_n;
    ssize_t r = XNU_RECVMSG_X(fd, m, n, flags);
    int e = errno;
    XNU_AFTER_ERRNO();
    return r >= 0 ? (int)r : -e;
}
#endif

int volley__sys_poll(struct pollfd *p, unsigned n, int timeout_ms)
{
    FAULT_ERR(VOLLEY__SYS_POLL);
    return ret_or_errno(poll(p, n, timeout_ms));
}

int volley__sys_fcntl(int fd, int cmd, int arg)
{
    FAULT_ERR(VOLLEY__SYS_FCNTL);
    return ret_or_errno(fcntl(fd, cmd, arg));
}

void volley__sys_close(int fd)
{
    /* close(2) must not be retried on EINTR on Linux: the fd is gone. */
    if (fd >= 0)
        close(fd);
}

int volley__sys_stat(const char *path, struct stat *st)
{
    FAULT_ERR(VOLLEY__SYS_STAT);
    return ret_or_errno(stat(path, st));
}

int volley__sys_unlink(const char *path)
{
    FAULT_ERR(VOLLEY__SYS_UNLINK);
    return ret_or_errno(unlink(path));
}

#if VOLLEY_HAVE_LINUX
int volley__sys_membarrier_global(void)
{
    FAULT_ERR(VOLLEY__SYS_MEMBARRIER);
    return ret_or_errno((int)syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0));
}

int volley__sys_eventfd(void)
{
    FAULT_ERR(VOLLEY__SYS_EVENTFD);
    return ret_or_errno(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
}

int volley__sys_eventfd_read(int fd)
{
    FAULT_ERR(VOLLEY__SYS_EVENTFD_READ);
    eventfd_t v;
    return ret_or_errno(eventfd_read(fd, &v));
}

int volley__sys_eventfd_write(int fd, uint64_t v)
{
    FAULT_ERR(VOLLEY__SYS_EVENTFD_WRITE);
    return ret_or_errno(eventfd_write(fd, v));
}

int volley__sys_notify_open(struct volley__notify *n)
{
    int fd = volley__sys_eventfd();
    if (fd < 0)
        return fd;
    n->rfd = n->wfd = fd;
    return 0;
}

int volley__sys_notify_signal(const struct volley__notify *n)
{
    return volley__sys_eventfd_write(n->wfd, 1);
}

int volley__sys_notify_drain(const struct volley__notify *n)
{
    return volley__sys_eventfd_read(n->rfd);
}
#else
/* macOS has no pipe2: the flags are set right after pipe(), so an exec in
 * another thread just between the two calls would inherit the fds, as
 * with any fd there that is made without SOCK_CLOEXEC's like. */
static int set_flags(int fd)
{
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return ret_or_errno(-1);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return ret_or_errno(-1);
    return 0;
}

int volley__sys_notify_open(struct volley__notify *n)
{
    FAULT_ERR(VOLLEY__SYS_EVENTFD);
    int p[2];
    if (pipe(p) < 0)
        return ret_or_errno(-1);
    int r = set_flags(p[0]);
    if (r == 0)
        r = set_flags(p[1]);
    if (r < 0) {
        close(p[0]);
        close(p[1]);
        return r;
    }
    n->rfd = p[0];
    n->wfd = p[1];
    return 0;
}

/* One byte is the signal: the pipe holds at most one, as an eventfd's
 * counter only moves between 0 and 1 for the same user. */
int volley__sys_notify_signal(const struct volley__notify *n)
{
    FAULT_ERR(VOLLEY__SYS_EVENTFD_WRITE);
    static const char one = 1;
    for (;;) {
        ssize_t r = write(n->wfd, &one, 1);
        if (r == 1)
            return 0;
        int e = r < 0 ? errno : EAGAIN;
        if (e != EINTR)
            return -e;
    }
}

int volley__sys_notify_drain(const struct volley__notify *n)
{
    FAULT_ERR(VOLLEY__SYS_EVENTFD_READ);
    char b;
    for (;;) {
        ssize_t r = read(n->rfd, &b, 1);
        if (r == 1)
            return 0;
        int e = r < 0 ? errno : EAGAIN; /* 0: the write end is gone */
        if (e != EINTR)
            return -e;
    }
}
#endif

void volley__sys_notify_close(struct volley__notify *n)
{
    if (n->wfd != n->rfd)
        volley__sys_close(n->wfd);
    volley__sys_close(n->rfd);
    n->rfd = n->wfd = -1;
}

int volley__sys_mmap(size_t len, void **out)
{
    FAULT_ERR(VOLLEY__SYS_MMAP);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (p == MAP_FAILED)
        return ret_or_errno(-1);
    *out = p;
    return 0;
}

void volley__sys_munmap(void *p, size_t len)
{
    if (p)
        munmap(p, len);
}

int volley__sys_listen(int fd, int backlog)
{
    FAULT_ERR(VOLLEY__SYS_LISTEN);
    return ret_or_errno(listen(fd, backlog));
}

#if VOLLEY_HAVE_LINUX
int volley__sys_accept(int fd)
{
    FAULT_ERR(VOLLEY__SYS_ACCEPT);
    for (;;) {
        int r = ret_or_errno(accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (r != -EINTR)
            return r;
    }
}
#endif

int volley__sys_shutdown(int fd, int how)
{
    FAULT_ERR(VOLLEY__SYS_SHUTDOWN);
    return ret_or_errno(shutdown(fd, how));
}

ssize_t volley__sys_recv(int fd, void *buf, size_t len)
{
    FAULT_ERR(VOLLEY__SYS_RECV);
    for (;;) {
        ssize_t r = recv(fd, buf, len, MSG_DONTWAIT);
        if (r >= 0)
            return r;
        int e = errno;
        if (e != EINTR)
            return -e;
    }
}

#if VOLLEY_HAVE_LINUX
int volley__sys_epoll_create(void)
{
    FAULT_ERR(VOLLEY__SYS_EPOLL_CREATE);
    return ret_or_errno(epoll_create1(EPOLL_CLOEXEC));
}

int volley__sys_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    FAULT_ERR(VOLLEY__SYS_EPOLL_CTL);
    return ret_or_errno(epoll_ctl(epfd, op, fd, ev));
}

int volley__sys_epoll_wait(int epfd, struct epoll_event *ev, int n, int timeout_ms)
{
    FAULT_ERR(VOLLEY__SYS_EPOLL_WAIT);
    return ret_or_errno(epoll_wait(epfd, ev, n, timeout_ms));
}

int volley__sys_epoll_pwait2(int epfd, struct epoll_event *ev, int n,
                             const struct timespec *ts)
{
    FAULT_ERR(VOLLEY__SYS_EPOLL_WAIT);
#if VOLLEY_HAVE_EPOLL_PWAIT2
    return ret_or_errno(epoll_pwait2(epfd, ev, n, ts, NULL));
#else
    (void)epfd;
    (void)ev;
    (void)n;
    (void)ts;
    return -ENOSYS;
#endif
}
#endif

#if VOLLEY_HAVE_URING
int volley__sys_uring_init(unsigned entries, struct io_uring *ring,
                           struct io_uring_params *p)
{
    FAULT_ERR(VOLLEY__SYS_URING_INIT);
    return io_uring_queue_init_params(entries, ring, p); /* already -errno */
}

int volley__sys_uring_register_buf_ring(struct io_uring *ring,
                                        struct io_uring_buf_reg *reg)
{
    FAULT_ERR(VOLLEY__SYS_URING_REGISTER);
    return io_uring_register_buf_ring(ring, reg, 0);
}

int volley__sys_uring_register_eventfd(struct io_uring *ring, int fd)
{
    FAULT_ERR(VOLLEY__SYS_URING_REGISTER);
    return io_uring_register_eventfd(ring, fd);
}

int volley__sys_uring_wait(struct io_uring *ring, struct __kernel_timespec *ts)
{
    FAULT_ERR(VOLLEY__SYS_URING_WAIT);
    struct io_uring_cqe *cqe;
    int r = io_uring_wait_cqe_timeout(ring, &cqe, ts);
    return r < 0 ? r : 0;
}

int volley__sys_uring_submit_get(struct io_uring *ring)
{
    FAULT_ERR(VOLLEY__SYS_URING_SUBMIT);
    return io_uring_submit_and_get_events(ring);
}

int volley__sys_uring_submit_wait(struct io_uring *ring, struct __kernel_timespec *ts)
{
    FAULT_ERR(VOLLEY__SYS_URING_WAIT);
    struct io_uring_cqe *cqe;
    return io_uring_submit_and_wait_timeout(ring, &cqe, 1, ts, NULL);
}

int volley__sys_uring_has_op(struct io_uring *ring, int op)
{
    FAULT_ERR(VOLLEY__SYS_URING_REGISTER);
    struct io_uring_probe *p =
        ring ? io_uring_get_probe_ring(ring) : io_uring_get_probe();
    if (!p)
        return -ENOMEM; /* liburing says no more than that */
    int r = io_uring_opcode_supported(p, op);
    io_uring_free_probe(p);
    return r;
}

int volley__sys_uring_register_files(struct io_uring *ring, unsigned n)
{
    FAULT_ERR(VOLLEY__SYS_URING_FILES);
    return io_uring_register_files_sparse(ring, n);
}

int volley__sys_uring_update_file(struct io_uring *ring, unsigned i, int fd)
{
    FAULT_ERR(VOLLEY__SYS_URING_FILES);
    int r = io_uring_register_files_update(ring, i, &fd, 1);
    return r < 0 ? r : 0;
}

int volley__sys_uring_unregister_buf_ring(struct io_uring *ring, int bgid)
{
    return io_uring_unregister_buf_ring(ring, bgid);
}

void volley__sys_uring_exit(struct io_uring *ring, int bgid)
{
    if (bgid >= 0)
        (void)io_uring_unregister_buf_ring(ring, bgid);
    io_uring_queue_exit(ring);
}

int volley__sys_uring_submit(struct io_uring *ring)
{
    FAULT_ERR(VOLLEY__SYS_URING_SUBMIT);
    return io_uring_sq_ready(ring) ? io_uring_submit(ring) : io_uring_get_events(ring);
}
#endif
