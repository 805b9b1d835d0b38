/* SPDX-License-Identifier: MIT */
/* The fault sweep: every system call libvolley makes through src/base/sys.c is
 * failed in turn, once, with each errno it can plausibly return, on every
 * backend, in two scenarios:
 *
 *   open    open (or wrap, or pair) two sockets and close them; for the
 *           stream loops: open a loop, listen, close the loop; for the
 *           sockets on a loop (dgram-on-uring, dgram-on-epoll): open a
 *           loop and two sockets on it, close them, close the loop
 *   full    open, send a batch of 64 descriptors (GSO-coalescible runs,
 *           explicit GSO buffers, odd sizes), receive, wait, close; for
 *           the stream loops: listen, dial, stream 300 KB each way (copied
 *           and lent writes), close both ends, close the loop. Each end
 *           must either get everything intact and close cleanly, or end
 *           with an error having received an intact prefix
 *
 * For each backend and scenario the calls of every kind are first counted
 * with nothing failing; then each (call kind, errno, nth call) runs in a
 * child process of its own (fault state and probe results are
 * process-global) with exactly that call failed. The child checks that
 * every result is either success or the injected error (with the
 * exceptions the API documents), that the datagrams the kernel took all
 * arrived (received + rx_kernel_drops == tx_dgrams), that each arrived
 * intact and once, and that no file descriptor leaked. The parent kills a
 * child that does not finish in time; a crash or a sanitizer report fails
 * the case.
 *
 * Arguments (optional, to reproduce one case): backend, scenario, call
 * kind, errno name, nth; each may be "-" for all. VOLLEY_SWEEP_JOBS sets
 * how many cases run at once (2). */
#include "dgram/dgram.h"
#include "t.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CASE_TIMEOUT_MS 30000
#define MAX_ERRS        12
#define MAX_SAMPLES     8

/* ---- the table: call kinds and the errnos each can return ---- */

struct optab {
    const char *name;
    int errs[MAX_ERRS]; /* 0-terminated */
    bool uring;         /* an io_uring call */
};

/* The uring calls' errnos; EOPNOTSUPP only for setup and registration. */
#define URING_ERRS ENOMEM, EMFILE, EPERM, ENOSYS, EINVAL, EBUSY, EAGAIN, EINTR
#define SEND_ERRS                                                                        \
    EAGAIN, ENOBUFS, EMSGSIZE, EIO, EINVAL, ECONNREFUSED, EPERM, EINTR, EHOSTUNREACH
#define RECV_ERRS EAGAIN, ENOMEM, EINTR, ECONNREFUSED
#define OPT_ERRS  ENOPROTOOPT, EINVAL, ENOMEM, EPERM

static const struct optab optab[VOLLEY__SYS_COUNT] = {
    [VOLLEY__SYS_SOCKET] = {"socket", {EMFILE, ENFILE, ENOMEM, ENOBUFS, EACCES}, false},
    [VOLLEY__SYS_BIND] = {"bind", {EADDRINUSE, EACCES, EADDRNOTAVAIL}, false},
    [VOLLEY__SYS_CONNECT] = {"connect",
                             {ECONNREFUSED, EADDRNOTAVAIL, ENETUNREACH, EACCES, EINTR},
                             false},
    [VOLLEY__SYS_SETSOCKOPT] = {"setsockopt", {OPT_ERRS}, false},
    [VOLLEY__SYS_GETSOCKOPT] = {"getsockopt", {OPT_ERRS}, false},
    [VOLLEY__SYS_GETSOCKNAME] = {"getsockname", {ENOBUFS, EINVAL, ENOMEM}, false},
    [VOLLEY__SYS_GETPEERNAME] = {"getpeername", {ENOTCONN, ENOBUFS, EINVAL}, false},
    [VOLLEY__SYS_SENDMSG] = {"sendmsg", {SEND_ERRS}, false},
    [VOLLEY__SYS_SENDMMSG] = {"sendmmsg", {SEND_ERRS, ENOSYS}, false},
    [VOLLEY__SYS_RECVMSG] = {"recvmsg", {RECV_ERRS}, false},
    [VOLLEY__SYS_RECVMMSG] = {"recvmmsg", {RECV_ERRS}, false},
    [VOLLEY__SYS_POLL] = {"poll", {EINTR, ENOMEM}, false},
    [VOLLEY__SYS_FCNTL] = {"fcntl", {EBADF, EINVAL}, false},
    [VOLLEY__SYS_EVENTFD] = {"eventfd", {EMFILE, ENFILE, ENOMEM, ENODEV}, false},
    [VOLLEY__SYS_EVENTFD_READ] = {"eventfd_read", {EAGAIN, EINTR, EINVAL}, false},
    [VOLLEY__SYS_EVENTFD_WRITE] = {"eventfd_write", {EAGAIN, EINTR, EINVAL}, false},
    [VOLLEY__SYS_MMAP] = {"mmap", {ENOMEM, EAGAIN, EPERM}, false},
    [VOLLEY__SYS_URING_INIT] = {"uring_init", {URING_ERRS, EOPNOTSUPP}, true},
    [VOLLEY__SYS_URING_REGISTER] = {"uring_register", {URING_ERRS, EOPNOTSUPP}, true},
    [VOLLEY__SYS_URING_SUBMIT] = {"uring_submit", {URING_ERRS}, true},
    [VOLLEY__SYS_URING_WAIT] = {"uring_wait", {URING_ERRS, ETIME}, true},
    [VOLLEY__SYS_URING_FILES] = {"uring_files", {ENOMEM, EMFILE, EINVAL, EBUSY}, true},
    [VOLLEY__SYS_LISTEN] = {"listen", {EADDRINUSE, EOPNOTSUPP}, false},
    [VOLLEY__SYS_ACCEPT] = {"accept",
                            {EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED, EPERM},
                            false},
    [VOLLEY__SYS_SHUTDOWN] = {"shutdown", {ENOTCONN, EINVAL}, false},
    [VOLLEY__SYS_RECV] = {"recv", {ECONNRESET, ENOMEM, EINTR, EAGAIN, ETIMEDOUT}, false},
    [VOLLEY__SYS_EPOLL_CREATE] = {"epoll_create", {EMFILE, ENFILE, ENOMEM}, false},
    [VOLLEY__SYS_EPOLL_CTL] = {"epoll_ctl", {ENOMEM, ENOSPC, EPERM}, false},
    [VOLLEY__SYS_EPOLL_WAIT] = {"epoll_wait", {EINTR, EINVAL}, false},
    [VOLLEY__SYS_MEMBARRIER] = {"membarrier", {EINVAL, ENOSYS, EPERM}, false},
    [VOLLEY__SYS_STAT] = {"stat", {ENOENT, EACCES, ENOMEM}, false},
    [VOLLEY__SYS_UNLINK] = {"unlink", {ENOENT, EACCES, EBUSY}, false},
};

/* Any call kind not in the table above (added since) gets these. */
static const int generic_errs[] = {ENOMEM, EINVAL, 0};

static const char *op_name(int op)
{
    static char buf[VOLLEY__SYS_COUNT][16];
    if (optab[op].name)
        return optab[op].name;
    snprintf(buf[op], sizeof buf[op], "op%d", op);
    return buf[op];
}

static const int *op_errs(int op)
{
    return optab[op].name ? optab[op].errs : generic_errs;
}

static const char *err_name(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* ---- backends and scenarios ---- */

/* K_LOOPDG: two UDP sockets on a stream loop (volley_opts.loop), the
 * loop backend in id: on uring they share its ring, on epoll it watches them. */
enum kind { K_IP, K_PAIR, K_UNIX, K_LOOP, K_LOOPDG };

struct backend {
    const char *name;
    enum kind kind;
    unsigned id; /* volley_backend_id for volley_open/volley_wrap */
};

/* The test kit's backends, then AF_UNIX socketpairs wrapped by the
 * automatic choice and by scalar. */
#define NBACKENDS_MAX (T_BACKENDS_MAX + 2 + 4) /* + two unix kinds, two loops twice */
static struct backend backends[NBACKENDS_MAX];
static unsigned nbackends;

static void list_backends(void)
{
    for (size_t i = 0; i < t_nbackends; i++) {
        const struct t_backend *b = &t_backends[i];
        backends[nbackends++] =
            (struct backend){b->name, b->kernel ? K_IP : K_PAIR, b->id};
    }
    backends[nbackends++] = (struct backend){"unix", K_UNIX, VOLLEY_BACKEND_AUTO};
    backends[nbackends++] =
        (struct backend){"unix-scalar", K_UNIX, VOLLEY_BACKEND_SCALAR};
    static char loop_names[2][T_BACKENDS_MAX][24];
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < t_nloop_backends; i++) {
            if (nbackends == NBACKENDS_MAX || i == T_COUNT(loop_names[k]))
                T_FAIL("test_sweep: more loop backends than NBACKENDS_MAX has room for");
            snprintf(loop_names[k][i], sizeof loop_names[k][i],
                     k ? "dgram-on-%s" : "loop-%s", t_loop_backends[i].name);
            backends[nbackends++] = (struct backend){
                loop_names[k][i], k ? K_LOOPDG : K_LOOP, t_loop_backends[i].id};
        }
}

enum scenario { S_OPEN, S_FULL, S_COUNT };
static const char *const scen_names[S_COUNT] = {"open", "full"};

/* ---- the child: one scenario, maybe one fault ---- */

/* What the child is running; fault.op < 0: no fault, just count calls. */
static struct {
    const struct backend *be;
    enum scenario scen;
    int op, err;
    unsigned nth;
    int out; /* pipe to the parent */
} g;

static void child_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fail the case: tell the parent what happened and stop. */
static void child_report(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof msg)
        n = sizeof msg - 1;
    char line[600];
    int m = snprintf(line, sizeof line, "F%.*s\n", n, msg);
    (void)!write(g.out, line, (size_t)m);
    exit(1);
}

static bool injected(int r)
{
    return g.op >= 0 && r == -g.err;
}

/* io_uring cannot be used here: what a forced uring open must turn into
 * -ENOTSUP when setup or registration fails with it. */
static bool uring_unusable(void)
{
    return g.op >= 0 && optab[g.op].uring &&
           (g.err == ENOSYS || g.err == EPERM || g.err == EOPNOTSUPP || g.err == EINVAL);
}

/* The kernel has no usable sendmmsg: a forced mmsg open is -ENOTSUP. */
static bool mmsg_unusable(void)
{
    return g.op == VOLLEY__SYS_SENDMMSG &&
           (g.err == ENOSYS || g.err == EPERM || g.err == EOPNOTSUPP);
}

/* open, wrap, pair: 0 (a failed feature is off), or the injected error. */
static void check_open(const char *what, int r)
{
    if (r == 0)
        return;
    if ((g.be->id == VOLLEY_BACKEND_URING && uring_unusable()) ||
        (g.be->id == VOLLEY_BACKEND_MMSG && mmsg_unusable())) {
        if (r == -ENOTSUP)
            return;
        child_report("%s = %s, want 0 or -ENOTSUP (%s unusable)", what, err_name(-r),
                     g.be->name);
    }
    if (injected(r))
        return;
    child_report("%s = %s, want 0 or -%s", what, err_name(-r),
                 g.op >= 0 ? err_name(g.err) : "(nothing injected)");
}

/* send, recv, wait: a count or mask >= 0, or the injected error; EINTR and
 * EAGAIN never come back, nor ECONNREFUSED (an earlier datagram's ICMP:
 * reported through volley_errors, never as the call's failure). */
static void check_io(const char *what, int r)
{
    if (r >= 0)
        return;
    bool never = g.err == EINTR || g.err == EAGAIN || g.err == ECONNREFUSED;
    if (injected(r) && !never)
        return;
    child_report("%s = %s, want >= 0%s%s", what, err_name(-r),
                 g.op < 0 ? ""
                 : never  ? ": this error never comes back"
                          : " or -",
                 g.op < 0 || never ? "" : err_name(g.err));
}

/* The batch: 64 descriptors, ~80 datagrams, each carrying its number. */
enum { NDESC = 64, MAX_DGRAMS = 256, HDR = 8, BATCH_BYTES = 1 << 17 };

struct shape {
    uint32_t len;
    uint16_t segment;
};

static unsigned batch_shape(struct shape *sh)
{
    static const uint32_t odd[] = {8, 9, 13, 100, 777, 1473, 3000};
    unsigned n = 0;
    for (unsigned i = 0; i < 16; i++)
        sh[n++] = (struct shape){1200, 0}; /* a GSO-coalescible run */
    sh[n++] = (struct shape){1700, 500};   /* explicit GSO, short tail */
    sh[n++] = (struct shape){8000, 1000};  /* explicit GSO, even */
    for (unsigned i = 0; i < sizeof odd / sizeof odd[0]; i++)
        sh[n++] = (struct shape){odd[i], 0};
    for (unsigned i = 0; i < 10; i++)
        sh[n++] = (struct shape){300, 0};
    sh[n++] = (struct shape){250, 0}; /* the run's shorter last datagram */
    sh[n++] = (struct shape){2000, 400};
    for (unsigned i = 0; n < NDESC; i++)
        sh[n++] = (struct shape){i < 9 ? 64 : i < 18 ? 20 + i * 97 : 1472, 0};
    return n;
}

static unsigned pieces_of(const struct shape *sh)
{
    return sh->segment ? (sh->len + sh->segment - 1) / sh->segment : 1;
}

static void write_dgram(uint8_t *p, uint32_t len, uint32_t seq)
{
    memcpy(p, &seq, 4);
    memcpy(p + 4, &len, 4);
    for (uint32_t k = HDR; k < len; k++)
        p[k] = t_byte(seq, k);
}

/* Build the batch into d (payloads in buf); returns datagrams on the wire
 * and fills pieces[i] with descriptor i's count. */
static unsigned build_batch(struct volley_dgram *d, uint8_t *buf, unsigned *pieces,
                            const struct volley_addr *to)
{
    struct shape sh[NDESC];
    unsigned n = batch_shape(sh), seq = 0;
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        memset(&d[i], 0, sizeof d[i]);
        d[i].data = buf + off;
        d[i].len = sh[i].len;
        d[i].segment = sh[i].segment;
        if (to)
            d[i].peer = *to;
        pieces[i] = pieces_of(&sh[i]);
        for (unsigned p = 0; p < pieces[i]; p++) {
            uint32_t start = p * (sh[i].segment ? sh[i].segment : 0);
            uint32_t len = sh[i].segment && sh[i].len - start > sh[i].segment
                               ? sh[i].segment
                               : sh[i].len - start;
            write_dgram(buf + off + start, len, seq++);
        }
        off += sh[i].len;
    }
    return seq;
}

struct rxstate {
    uint8_t seen[MAX_DGRAMS];
    unsigned got, total;
};

static void check_dgram(struct rxstate *rx, const struct volley_dgram *x)
{
    uint32_t seq, len;
    if (x->len < HDR)
        child_report("received a %zu-byte datagram", x->len);
    memcpy(&seq, x->data, 4);
    memcpy(&len, (const uint8_t *)x->data + 4, 4);
    if (seq >= rx->total || len != x->len)
        child_report("received datagram #%u of %zu bytes (header says %u)", seq, x->len,
                     len);
    const uint8_t *p = x->data;
    for (uint32_t k = HDR; k < len; k++)
        if (p[k] != t_byte(seq, k))
            child_report("datagram #%u corrupt at byte %u", seq, k);
    if (rx->seen[seq]++)
        child_report("datagram #%u arrived twice", seq);
    rx->got++;
}

/* One volley_recv; returns the count (errors checked). */
static int recv_some(volley_sock *b, struct rxstate *rx)
{
    static struct volley_dgram rd[VOLLEY_BATCH_MAX];
    int r = volley_recv(b, rd, VOLLEY_BATCH_MAX);
    check_io("volley_recv", r);
    for (int i = 0; i < r; i++)
        check_dgram(rx, &rd[i]);
    return r;
}

/* The loop of the K_LOOPDG kind's sockets (NULL for the others). */
static volley_loop *g_loop;

/* Open the two sockets a (sender) and b (receiver); false if the fault
 * made it fail (which check_open found acceptable). *fds: the socketpair
 * for the unix kind, to be closed by the caller if not adopted. */
static bool open_two(volley_sock **a, volley_sock **b, struct volley_addr *to, int *fds)
{
    const struct backend *be = g.be;
    struct volley_opts o = t_opts(be->kind == K_LOOPDG ? VOLLEY_BACKEND_AUTO : be->id);
    *a = *b = NULL;
    memset(to, 0, sizeof *to);
    if (be->kind == K_LOOPDG) {
        struct volley_loop_opts lo = VOLLEY_LOOP_OPTS_INIT;
        lo.backend = be->id;
        int r = volley_loop_open(&g_loop, &lo);
        check_open("volley_loop_open", r);
        if (r < 0)
            return false;
        o.loop = g_loop;
    }
    if (be->kind == K_PAIR) {
        o.pair_capacity = 1024;
        int r = volley_pair(a, b, &o);
        check_open("volley_pair", r);
        return r == 0;
    }
    if (be->kind == K_UNIX) {
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds) < 0)
            child_report("socketpair: %s", strerror(errno));
        int r = volley_wrap(b, fds[1], &o);
        check_open("volley_wrap(b)", r);
        if (r < 0)
            return false;
        fds[1] = -1;
        r = volley_wrap(a, fds[0], &o);
        check_open("volley_wrap(a)", r);
        if (r < 0)
            return false;
        fds[0] = -1;
        return true;
    }
    o.rcvbuf = 4 << 20;
    int r = volley_open(b, "127.0.0.1:0", &o);
    check_open("volley_open(b)", r);
    if (r < 0)
        return false;
    r = volley_open(a, "127.0.0.1:0", &o);
    check_open("volley_open(a)", r);
    if (r < 0)
        return false;
    r = volley_local_addr(*b, to);
    if (r < 0) {
        if (!injected(r))
            child_report("volley_local_addr = %s", err_name(-r));
        r = volley_local_addr(*b, to); /* the fault was for one call */
        if (r < 0)
            child_report("volley_local_addr again = %s", err_name(-r));
    }
    return true;
}

/* Send the batch, receive it, wait, check the accounting. */
static void full(volley_sock *a, volley_sock *b, const struct volley_addr *to)
{
    static struct volley_dgram d[NDESC];
    static uint8_t buf[BATCH_BYTES];
    static struct rxstate rx;
    unsigned pieces[NDESC];
    rx.total = build_batch(d, buf, pieces,
                           g.be->kind == K_IP || g.be->kind == K_LOOPDG ? to : NULL);
    unsigned sent = 0, failed = 0, taken_dgrams = 0;
    long long deadline = t_now_ms() + 5000;
    for (unsigned tries = 0; sent < NDESC; tries++) {
        if (tries > 2000 || t_now_ms() > deadline)
            child_report("sending stalled at descriptor %u of %u", sent, NDESC);
        int r = volley_send(a, d + sent, NDESC - sent);
        check_io("volley_send", r);
        if (r < 0) {
            failed++; /* d[sent] was not sent: try it again */
            continue;
        }
        for (int i = 0; i < r; i++)
            taken_dgrams += pieces[sent + (unsigned)i];
        sent += (unsigned)r;
        if (r == 0) {
            /* full (an AF_UNIX peer's queue is short): make room */
            (void)recv_some(b, &rx);
            check_io("volley_wait(a, SEND)", volley_wait(a, VOLLEY_WAIT_SEND, 10));
        }
    }
    check_io("volley_wait(b, RECV)", volley_wait(b, VOLLEY_WAIT_RECV, 1000));

    /* Receive until every datagram taken was sent or counted as failed and
     * every one sent arrived, or nothing moves for a second. Waiting on
     * the sender lets a backend that queued sends submit them. */
    struct volley_stats sa = t_stats(a), sb = t_stats(b);
    long long idle = t_now_ms() + 1000;
    while ((rx.got + sb.rx_kernel_drops < sa.tx_dgrams ||
            sa.tx_dgrams + sa.tx_errors < taken_dgrams + failed) &&
           t_now_ms() < idle) {
        uint64_t before = sa.tx_dgrams + sa.tx_errors;
        int r = recv_some(b, &rx);
        if (r == 0)
            check_io("volley_wait(b, RECV)", volley_wait(b, VOLLEY_WAIT_RECV, 20));
        check_io("volley_wait(a, SEND)", volley_wait(a, VOLLEY_WAIT_SEND, 0));
        sa = t_stats(a);
        sb = t_stats(b);
        if (r > 0 || sa.tx_dgrams + sa.tx_errors != before)
            idle = t_now_ms() + 1000;
    }
    /* Nothing extra may follow. */
    check_io("volley_wait(b, RECV)", volley_wait(b, VOLLEY_WAIT_RECV, 0));
    (void)recv_some(b, &rx);
    sa = t_stats(a);
    sb = t_stats(b);
    if (rx.got + sb.rx_kernel_drops != sa.tx_dgrams)
        child_report("received %u + kernel drops %llu != sent %llu (taken %u, "
                     "tx_errors %llu)",
                     rx.got, (unsigned long long)sb.rx_kernel_drops,
                     (unsigned long long)sa.tx_dgrams, taken_dgrams,
                     (unsigned long long)sa.tx_errors);
    if (sb.rx_dgrams != rx.got)
        child_report("receiver's rx_dgrams %llu != %u received",
                     (unsigned long long)sb.rx_dgrams, rx.got);
    if (sa.tx_errors < failed)
        child_report("%u sends failed but tx_errors is %llu", failed,
                     (unsigned long long)sa.tx_errors);
    /* A datagram volley took and did not send must be counted as failed. */
    if (sa.tx_dgrams > taken_dgrams ||
        taken_dgrams - sa.tx_dgrams > sa.tx_errors - failed)
        child_report("took %u datagrams, sent %llu, tx_errors %llu for %u failed calls",
                     taken_dgrams, (unsigned long long)sa.tx_dgrams,
                     (unsigned long long)sa.tx_errors, failed);
}

/* ---- the stream loop's scenarios ---- */

enum { STREAM_BYTES = 300000, STREAM_CHUNK = 7000, STREAM_DEADLINE_MS = 8000 };

/* One end of the stream: what it sent and what it got. */
struct end {
    volley_conn *c;
    size_t sent, got;
    bool closed, shut, eof, close_asked;
    int err;
};

static uint8_t stream_byte(size_t i, unsigned dir)
{
    return t_byte(dir, i % 65521);
}

/* A stream loop call: 0 (or >= 0), or the injected error. */
static void check_loop(const char *what, long r)
{
    if (r >= 0 || injected((int)r))
        return;
    child_report("%s = %s, want >= 0 or -%s", what, err_name((int)-r),
                 g.op >= 0 ? err_name(g.err) : "(nothing injected)");
}

static void end_read(struct end *e, unsigned dir)
{
    uint8_t buf[16384];
    ssize_t k;
    while ((k = volley_conn_read(e->c, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < k; i++)
            if (buf[i] != stream_byte(e->got + (size_t)i, dir))
                child_report("stream byte %zu corrupt", e->got + (size_t)i);
        e->got += (size_t)k;
    }
    if (k < 0 && k != -ESHUTDOWN && k != -EPIPE)
        child_report("volley_conn_read = %s", err_name((int)-k));
}

/* Queue the rest of what end e sends (dir: which stream), then shut its
 * side; close once the peer's side is shut too. */
static void end_write(struct end *e, unsigned dir)
{
    static uint8_t src[2][STREAM_BYTES];
    if (!src[dir][1])
        for (size_t i = 0; i < STREAM_BYTES; i++)
            src[dir][i] = stream_byte(i, dir);
    while (!e->shut && !e->closed && e->sent < STREAM_BYTES) {
        size_t n =
            STREAM_BYTES - e->sent < STREAM_CHUNK ? STREAM_BYTES - e->sent : STREAM_CHUNK;
        /* every third write lent, the rest copied */
        long r = (e->sent / STREAM_CHUNK) % 3 == 2
                     ? volley_conn_write_ref(e->c, src[dir] + e->sent, n, e->sent)
                     : volley_conn_write(e->c, src[dir] + e->sent, n);
        if (r == -EAGAIN)
            return;
        if (r == -EPIPE)
            return; /* the connection ended: its CLOSED says why */
        check_loop("volley_conn_write", r);
        if (r < 0)
            return;
        e->sent += n;
    }
    if (e->sent == STREAM_BYTES && !e->shut && !e->closed) {
        e->shut = true;
        long r = volley_conn_shutdown(e->c);
        if (r != -EPIPE)
            check_loop("volley_conn_shutdown", r);
    }
    if (e->shut && e->eof && !e->close_asked && !e->closed) {
        e->close_asked = true;
        check_loop("volley_conn_close", volley_conn_close(e->c));
    }
}

static void stream_scenario(void)
{
    struct volley_loop_opts lo = VOLLEY_LOOP_OPTS_INIT;
    lo.backend = g.be->id;
    lo.buf_count = 16; /* small: running out of buffers is part of the sweep */
    lo.linger_ms = 1000;
    volley_loop *l;
    int r = volley_loop_open(&l, &lo);
    if (r < 0) {
        if (!(g.be->id == VOLLEY_BACKEND_URING && uring_unusable() && r == -ENOTSUP))
            check_loop("volley_loop_open", r);
        return;
    }
    volley_conn *lis;
    r = volley_listen(l, &lis, "127.0.0.1:0", NULL, NULL);
    check_loop("volley_listen", r);
    if (r < 0 || g.scen == S_OPEN) {
        volley_loop_close(l, 0);
        return;
    }
    struct volley_addr a;
    char where[64];
    check_loop("volley_conn_addr", volley_conn_addr(lis, &a, NULL));
    (void)volley_addr_format(&a, where, sizeof where);
    struct end ends[2] = {{0}}; /* [0] dialed, [1] accepted */
    r = volley_dial(l, &ends[0].c, where, NULL, 2000, &ends[0]);
    check_loop("volley_dial", r);
    if (r < 0) {
        volley_loop_close(l, 0);
        return;
    }
    long long deadline = t_now_ms() + STREAM_DEADLINE_MS;
    bool lis_closed = false;
    while (!(ends[0].closed && (ends[1].closed || !ends[1].c))) {
        if (t_now_ms() > deadline)
            child_report("the stream did not finish: sent %zu/%zu got %zu/%zu",
                         ends[0].sent, ends[1].sent, ends[0].got, ends[1].got);
        for (unsigned d = 0; d < 2; d++)
            if (ends[d].c)
                end_write(&ends[d], d);
        struct volley_event ev[32];
        int n = volley_loop_poll(l, ev, 32, 100);
        check_loop("volley_loop_poll", n);
        for (int i = 0; i < n; i++) {
            struct volley_event *e = &ev[i];
            if (e->type == VOLLEY_EV_ACCEPTED) {
                if (ends[1].c) /* one dial, one connection */
                    child_report("a second connection was accepted");
                ends[1].c = e->conn;
                volley_conn_set_user(e->conn, &ends[1]);
                continue;
            }
            struct end *x = volley_conn_user(e->conn);
            if (!x)
                child_report("event %u (err %d) for a connection nobody owns", e->type,
                             e->err);
            if (e->conn == lis) {
                if (e->type != VOLLEY_EV_CLOSED)
                    child_report("listener event %u", e->type);
                lis_closed = true;
                continue;
            }
            unsigned dir = x == &ends[0] ? 0 : 1;
            switch (e->type) {
            case VOLLEY_EV_READABLE:
                end_read(x, !dir);
                break;
            case VOLLEY_EV_EOF:
                end_read(x, !dir);
                x->eof = true;
                break;
            case VOLLEY_EV_CLOSED:
                end_read(x, !dir);
                x->closed = true;
                x->err = e->err;
                break;
            case VOLLEY_EV_SENT:
                if (e->err == 0 && e->tag >= x->sent)
                    child_report("SENT for bytes never written");
                break;
            default:
                break;
            }
        }
        /* an accepted end that never came: the dial failed, or the
         * accepted socket could not be set up (and that was counted) */
        struct volley_loop_stats ls;
        check_loop("volley_loop_get_stats", volley_loop_get_stats(l, &ls, sizeof ls));
        if (ends[0].closed && !ends[1].c && ends[0].err == 0 && !ls.accept_errors)
            child_report("the dial closed cleanly without a connection");
        if (ends[0].closed && !ends[1].c)
            break;
    }
    for (unsigned d = 0; d < 2; d++) {
        struct end *x = &ends[d];
        if (!x->c)
            continue;
        if (x->err && g.op < 0)
            child_report("end %u closed with %s and nothing injected", d,
                         err_name(-x->err));
        /* A clean close on both sides: every byte arrived. */
        if (ends[1].c && !ends[0].err && !ends[1].err && x->got != STREAM_BYTES)
            child_report("end %u got %zu of %d bytes, both closed cleanly", d, x->got,
                         STREAM_BYTES);
    }
    (void)lis_closed;
    volley_loop_close(l, 1000);
}

/* Turn counting on without failing anything. */
static void count_calls(void)
{
    volley__sys_fault_set(VOLLEY__SYS_SOCKET, ~0u, 1, 0, 0);
}

/* Run the scenario; with g.op >= 0 the fault is armed first. Writes to the
 * parent: "H<0|1>\n" (whether the fault's call was reached) or, without a
 * fault, "C<count>\n" per call kind; a failure writes "F<what>\n" and
 * exits 1. */
static int child_main(void)
{
    volley__sys_fault_clear();
    int fds0 = t_count_fds();
    unsigned gso0 = 0;
    if (g.op >= 0) {
        volley__sys_fault_set((enum volley__sysop)g.op, g.nth, 1, g.err, 0);
    } else {
        count_calls();
    }
    volley_sock *a = NULL, *b = NULL;
    struct volley_addr to;
    int fds[2] = {-1, -1};
    if (g.be->kind == K_LOOP)
        stream_scenario();
    else if (open_two(&a, &b, &to, fds) && g.scen == S_FULL)
        full(a, b, &to);
    volley_close(a);
    volley_close(b);
    volley_loop_close(g_loop, 0);
    /* A failed wrap leaves the fd to the caller, open. */
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0 && close(fds[i]) < 0)
            child_report("volley_wrap failed but closed the caller's fd");
    char line[64];
    if (g.op >= 0) {
        bool hit = volley__sys_count((enum volley__sysop)g.op) >= g.nth;
        volley__sys_fault_clear();
        /* A failure while probing must not turn GSO off for sockets
         * opened after it went away. */
        if (g.be->kind == K_IP && g.be->id != VOLLEY_BACKEND_SCALAR) {
            gso0 = volley__probe_gso_limit();
            if (gso0 == 0)
                child_report("GSO is off for good after one failed call "
                             "(volley__probe_gso_limit() = 0 once the fault is gone)");
        }
        int m = snprintf(line, sizeof line, "H%d\n", hit);
        (void)!write(g.out, line, (size_t)m);
    } else {
        unsigned long counts[VOLLEY__SYS_COUNT];
        for (int op = 0; op < VOLLEY__SYS_COUNT; op++)
            counts[op] = volley__sys_count((enum volley__sysop)op);
        volley__sys_fault_clear();
        for (int op = 0; op < VOLLEY__SYS_COUNT; op++) {
            int m = snprintf(line, sizeof line, "C%lu\n", counts[op]);
            (void)!write(g.out, line, (size_t)m);
        }
    }
    int fds1 = t_count_fds();
    if (fds1 != fds0)
        child_report("%d file descriptors before, %d after close", fds0, fds1);
    return 0;
}

/* ---- the parent: cases, a small pool of children, results ---- */

struct tcase {
    unsigned be;
    enum scenario scen;
    int op, err;
    unsigned nth;
};

struct result {
    int status; /* 0 pass, 1 fail */
    bool hit;
    char what[520];
    unsigned long counts[VOLLEY__SYS_COUNT];
};

static void case_label(const struct tcase *c, char *buf, size_t size)
{
    if (c->op < 0)
        snprintf(buf, size, "%s/%s/-/-", backends[c->be].name, scen_names[c->scen]);
    else
        snprintf(buf, size, "%s/%s/%s/%u [%s]", backends[c->be].name, op_name(c->op),
                 err_name(c->err), c->nth, scen_names[c->scen]);
}

/* Parse what a child wrote. */
static void parse_output(const char *out, struct result *res)
{
    unsigned nc = 0;
    for (const char *p = out; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (*p == 'H')
            res->hit = p[1] == '1';
        else if (*p == 'C' && nc < VOLLEY__SYS_COUNT)
            res->counts[nc++] = strtoul(p + 1, NULL, 10);
        else if (*p == 'F')
            snprintf(res->what, sizeof res->what, "%.*s", (int)len - 1, p + 1);
        p += len + (e ? 1 : 0);
    }
}

struct running {
    pid_t pid;
    int fd;
    long long deadline;
    bool killed;
    size_t idx;
    char out[4096];
    size_t outlen;
};

static pid_t spawn(const struct tcase *c, int *rfd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        T_FAIL("pipe2: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        T_FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        g.be = &backends[c->be];
        g.scen = c->scen;
        g.op = c->op;
        g.err = c->err;
        g.nth = c->nth;
        g.out = p[1];
        exit(child_main());
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

static void finish(struct running *r, int st, struct result *res)
{
    memset(res, 0, sizeof *res);
    r->out[r->outlen] = 0;
    parse_output(r->out, res);
    if (r->killed) {
        res->status = 1;
        snprintf(res->what, sizeof res->what, "hung: killed after %d ms",
                 CASE_TIMEOUT_MS);
    } else if (WIFSIGNALED(st)) {
        res->status = 1;
        snprintf(res->what, sizeof res->what, "killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        res->status = 1;
        if (!res->what[0])
            snprintf(res->what, sizeof res->what,
                     "exit status %d (a sanitizer report is above)", WEXITSTATUS(st));
    }
}

/* Run every case, at most jobs at a time; results[i] for cases[i]. */
static void run_cases(const struct tcase *cases, size_t n, struct result *results,
                      unsigned jobs)
{
    struct running run[16];
    unsigned nrun = 0;
    size_t next = 0;
    if (jobs > 16)
        jobs = 16;
    while (next < n || nrun) {
        while (nrun < jobs && next < n) {
            struct running *r = &run[nrun++];
            memset(r, 0, sizeof *r);
            r->idx = next;
            r->pid = spawn(&cases[next], &r->fd);
            r->deadline = t_now_ms() + CASE_TIMEOUT_MS;
            next++;
        }
        struct pollfd pf[16];
        long long t = t_now_ms(), wake = t + 1000;
        for (unsigned i = 0; i < nrun; i++) {
            pf[i] = (struct pollfd){.fd = run[i].fd, .events = POLLIN};
            if (run[i].deadline < wake)
                wake = run[i].deadline;
        }
        int pr = poll(pf, nrun, wake > t ? (int)(wake - t) : 0);
        if (pr < 0 && errno != EINTR)
            T_FAIL("poll: %s", strerror(errno));
        t = t_now_ms();
        for (unsigned i = 0; i < nrun;) {
            struct running *r = &run[i];
            bool done = false;
            if (pr > 0 && pf[i].revents) {
                ssize_t k =
                    read(r->fd, r->out + r->outlen, sizeof r->out - 1 - r->outlen);
                if (k > 0)
                    r->outlen += (size_t)k;
                else
                    done = true; /* EOF: the child is gone */
                if (r->outlen == sizeof r->out - 1)
                    done = true;
            }
            if (!done && t >= r->deadline && !r->killed) {
                kill(r->pid, SIGKILL);
                r->killed = true;
            }
            if (!done && !r->killed) {
                i++;
                continue;
            }
            int st;
            if (waitpid(r->pid, &st, 0) != r->pid)
                T_FAIL("waitpid: %s", strerror(errno));
            close(r->fd);
            finish(r, st, &results[r->idx]);
            run[i] = run[--nrun];
            pf[i] = pf[nrun];
        }
    }
}

/* Which nth calls to fail among count: all of a few, else the first three,
 * the last two and some in between. */
static unsigned samples(unsigned long count, unsigned *out)
{
    if (count <= MAX_SAMPLES) {
        for (unsigned i = 0; i < count; i++)
            out[i] = i + 1;
        return (unsigned)count;
    }
    unsigned k = 0;
    unsigned c = (unsigned)count;
    unsigned want[MAX_SAMPLES] = {1, 2, 3, c / 4, c / 2, (3 * c) / 4, c - 1, c};
    for (unsigned i = 0; i < MAX_SAMPLES; i++) {
        bool dup = false;
        for (unsigned j = 0; j < k; j++)
            dup |= out[j] == want[i];
        if (!dup && want[i] >= 1)
            out[k++] = want[i];
    }
    return k;
}

static bool match(const char *filter, const char *name)
{
    return !filter || !strcmp(filter, "-") || !strcmp(filter, name);
}

/* What the command line picked (NULL or "-": any). */
static struct {
    const char *be, *scen, *op, *err;
    unsigned nth; /* 0: any */
} pick;

static unsigned long counts[NBACKENDS_MAX][S_COUNT][VOLLEY__SYS_COUNT];
static bool usable[NBACKENDS_MAX][S_COUNT];

/* Whether be can be swept here: a plain socket of it opens. */
static bool backend_works(const struct backend *be)
{
    int r;
    if (be->kind == K_LOOP || be->kind == K_LOOPDG) {
        struct volley_loop_opts lo = VOLLEY_LOOP_OPTS_INIT;
        volley_loop *l;
        lo.backend = be->id;
        if ((r = volley_loop_open(&l, &lo)) == 0)
            volley_loop_close(l, 0);
    } else {
        r = t_backend_err(be->id);
    }
    if (r < 0)
        printf("sweep: %s skipped: a plain open gives %s\n", be->name,
               volley_strerror(r));
    return r == 0;
}

/* Count the calls of each scenario with nothing failing (the most of two
 * runs: waits and drains vary a little). Returns the failures; *passed
 * gets the runs that passed. */
static unsigned count_calls_all(unsigned jobs, unsigned *passed)
{
    static struct tcase base[NBACKENDS_MAX * S_COUNT * 2];
    static struct result bres[NBACKENDS_MAX * S_COUNT * 2];
    size_t nbase = 0;
    unsigned failed = 0;
    for (unsigned b = 0; b < nbackends; b++) {
        if (!match(pick.be, backends[b].name) || !backend_works(&backends[b]))
            continue;
        for (int s = 0; s < S_COUNT; s++)
            for (int k = 0; k < 2 && match(pick.scen, scen_names[s]); k++)
                base[nbase++] = (struct tcase){b, (enum scenario)s, -1, 0, 0};
    }
    run_cases(base, nbase, bres, jobs);
    for (size_t i = 0; i < nbase; i++) {
        const struct tcase *c = &base[i];
        char label[128];
        case_label(c, label, sizeof label);
        if (bres[i].status) {
            printf("FAIL %s: with no fault: %s\n", label, bres[i].what);
            failed++;
            continue;
        }
        ++*passed;
        usable[c->be][c->scen] = true;
        for (int op = 0; op < VOLLEY__SYS_COUNT; op++)
            if (bres[i].counts[op] > counts[c->be][c->scen][op])
                counts[c->be][c->scen][op] = bres[i].counts[op];
    }
    return failed;
}

struct caselist {
    struct tcase *v;
    size_t n, cap;
};

static void push(struct caselist *l, struct tcase c)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        T_ASSERT(l->v);
    }
    l->v[l->n++] = c;
}

/* The picked cases of call kind op in backend b's scenario s. */
static void add_op(struct caselist *l, unsigned b, int s, int op)
{
    if (!match(pick.op, op_name(op)))
        return;
    unsigned nths[MAX_SAMPLES];
    unsigned ns = samples(counts[b][s][op], nths);
    for (const int *e = op_errs(op); *e; e++)
        for (unsigned k = 0; k < ns && match(pick.err, err_name(*e)); k++)
            if (!pick.nth || nths[k] == pick.nth)
                push(l, (struct tcase){b, (enum scenario)s, op, *e, nths[k]});
}

/* Print the calls backend b's scenario s makes. */
static void say_calls(unsigned b, int s)
{
    char line[1024];
    int len = snprintf(line, sizeof line, "sweep: %s/%s calls:", backends[b].name,
                       scen_names[s]);
    for (int op = 0; op < VOLLEY__SYS_COUNT; op++) {
        unsigned long cnt = counts[b][s][op];
        if (cnt && len < (int)sizeof line - 40)
            len += snprintf(line + len, sizeof line - (size_t)len, " %s %lu", op_name(op),
                            cnt);
    }
    printf("%s\n", line);
}

/* Every picked (backend, scenario, call kind, errno, nth). */
static struct caselist fault_cases(void)
{
    struct caselist l = {NULL, 0, 0};
    for (unsigned b = 0; b < nbackends; b++) {
        for (int s = 0; s < S_COUNT; s++) {
            if (!usable[b][s])
                continue;
            say_calls(b, s);
            for (int op = 0; op < VOLLEY__SYS_COUNT; op++)
                add_op(&l, b, s, op);
        }
    }
    return l;
}

/* Report the failed cases, and every (backend, call kind, errno) whose
 * call was reached but never with the fault armed. Returns the failures;
 * *passed and *nhit get the cases that passed and that reached the call. */
static unsigned report(const struct caselist *l, const struct result *res,
                       unsigned *passed, unsigned *nhit)
{
    static bool reached[NBACKENDS_MAX][VOLLEY__SYS_COUNT];
    static bool hit[NBACKENDS_MAX][VOLLEY__SYS_COUNT][MAX_ERRS];
    unsigned failed = 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct tcase *c = &l->v[i];
        reached[c->be][c->op] = true;
        if (res[i].hit || res[i].status) {
            ++*nhit;
            for (int k = 0; op_errs(c->op)[k]; k++)
                if (op_errs(c->op)[k] == c->err)
                    hit[c->be][c->op][k] = true;
        }
        if (res[i].status) {
            char label[128];
            case_label(c, label, sizeof label);
            printf("FAIL %s: %s\n", label, res[i].what);
        }
        failed += res[i].status != 0;
        *passed += res[i].status == 0;
    }
    for (unsigned b = 0; b < nbackends; b++)
        for (int op = 0; op < VOLLEY__SYS_COUNT; op++)
            for (int k = 0; reached[b][op] && op_errs(op)[k]; k++)
                if (!hit[b][op][k] && !pick.nth) {
                    printf("FAIL %s/%s/%s/-: the call was never reached with the fault "
                           "armed\n",
                           backends[b].name, op_name(op), err_name(op_errs(op)[k]));
                    failed++;
                }
    return failed;
}

int main(int argc, char **argv)
{
    unsetenv("VOLLEY_BACKEND");
    unsetenv("VOLLEY_DISABLE");
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    pick.be = argc > 1 ? argv[1] : NULL;
    pick.scen = argc > 2 ? argv[2] : NULL;
    pick.op = argc > 3 ? argv[3] : NULL;
    pick.err = argc > 4 ? argv[4] : NULL;
    pick.nth = argc > 5 && strcmp(argv[5], "-") ? (unsigned)atoi(argv[5]) : 0;
    const char *j = getenv("VOLLEY_SWEEP_JOBS");
    unsigned jobs = j && atoi(j) > 0 ? (unsigned)atoi(j) : 2;
    long long t0 = t_now_ms();
    list_backends();
    unsigned passed = 0, nhit = 0, failed = count_calls_all(jobs, &passed);
    struct caselist l = fault_cases();
    struct result *res = calloc(l.n ? l.n : 1, sizeof *res);
    T_ASSERT(res);
    run_cases(l.v, l.n, res, jobs);
    failed += report(&l, res, &passed, &nhit);
    printf("sweep: %zu cases (%u reached the failed call), %u failed, %.1f s\n", l.n,
           nhit, failed, (double)(t_now_ms() - t0) / 1000);
    free(l.v);
    free(res);
    return t_summary(passed, failed, 0);
}
