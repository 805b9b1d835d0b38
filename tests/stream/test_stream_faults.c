/* SPDX-License-Identifier: MIT */
/* Stream loops under injected system-call failures (the seam in
 * src/base/sys.c), on both loop backends ("uring/NAME", "epoll/NAME"):
 *
 *   - volley_loop_open, volley_listen and volley_dial with a call they
 *     need failing return that call's error and leak no descriptor;
 *   - a refused or unreachable connect arrives as CLOSED with the reason;
 *   - the sweep: every call the loop makes, failed once at each point of
 *     a small echo exchange, with the errors it can return. Whatever
 *     happens, the calls return success or a negative errno, every
 *     connection gets exactly one CLOSED, the bytes that arrive are the
 *     ones sent, in order, the exchange ends within its time, and closing
 *     the loop gives back every descriptor.
 *
 * The seam is process-global: every case runs in a process of its own. */
#include "base/base.h"
#include "stream/loop.h"
#include "t.h"

#include <signal.h>
#include <unistd.h>

#define KiB 1024u

static bool is_uring(void)
{
    return t_loop_backend()->id == VOLLEY_BACKEND_URING;
}

static struct volley_loop_opts lopts(void)
{
    struct volley_loop_opts o = VOLLEY_LOOP_OPTS_INIT;
    o.backend = t_loop_backend()->id;
    return o;
}

/* Skip the case where uring loops do not open at all. */
static void need_backend(void)
{
    struct volley_loop_opts o = lopts();
    volley_loop *l = NULL;
    int r = volley_loop_open(&l, &o);
    T_SKIP_IF(r == -ENOTSUP && is_uring(), "uring loops do not open here");
    if (r < 0)
        T_FAIL("volley_loop_open(%s): %s", t_loop_backend()->name, volley_strerror(r));
    volley_loop_close(l, 0);
}

static volley_loop *loop_new(void)
{
    struct volley_loop_opts o = lopts();
    volley_loop *l = NULL;
    int r = volley_loop_open(&l, &o);
    if (r < 0)
        T_FAIL("volley_loop_open(%s): %s", t_loop_backend()->name, volley_strerror(r));
    return l;
}

static const char *op_name(enum volley__sysop op)
{
    static const char *const names[] = {
        [VOLLEY__SYS_SOCKET] = "socket",
        [VOLLEY__SYS_BIND] = "bind",
        [VOLLEY__SYS_CONNECT] = "connect",
        [VOLLEY__SYS_SETSOCKOPT] = "setsockopt",
        [VOLLEY__SYS_GETSOCKOPT] = "getsockopt",
        [VOLLEY__SYS_GETSOCKNAME] = "getsockname",
        [VOLLEY__SYS_GETPEERNAME] = "getpeername",
        [VOLLEY__SYS_SENDMSG] = "sendmsg",
        [VOLLEY__SYS_SENDMMSG] = "sendmmsg",
        [VOLLEY__SYS_RECVMSG] = "recvmsg",
        [VOLLEY__SYS_RECVMMSG] = "recvmmsg",
        [VOLLEY__SYS_POLL] = "poll",
        [VOLLEY__SYS_FCNTL] = "fcntl",
        [VOLLEY__SYS_EVENTFD] = "eventfd",
        [VOLLEY__SYS_EVENTFD_READ] = "eventfd_read",
        [VOLLEY__SYS_EVENTFD_WRITE] = "eventfd_write",
        [VOLLEY__SYS_MMAP] = "mmap",
        [VOLLEY__SYS_URING_INIT] = "uring_init",
        [VOLLEY__SYS_URING_REGISTER] = "uring_register",
        [VOLLEY__SYS_URING_SUBMIT] = "uring_submit",
        [VOLLEY__SYS_URING_WAIT] = "uring_wait",
        [VOLLEY__SYS_URING_FILES] = "uring_files",
        [VOLLEY__SYS_LISTEN] = "listen",
        [VOLLEY__SYS_ACCEPT] = "accept",
        [VOLLEY__SYS_SHUTDOWN] = "shutdown",
        [VOLLEY__SYS_RECV] = "recv",
        [VOLLEY__SYS_EPOLL_CREATE] = "epoll_create",
        [VOLLEY__SYS_EPOLL_CTL] = "epoll_ctl",
        [VOLLEY__SYS_EPOLL_WAIT] = "epoll_wait",
    };
    return (unsigned)op < T_COUNT(names) && names[op] ? names[op] : "?";
}

/* Poll until c's CLOSED (up to 5 s): its err. Other events are dropped. */
static int closed_err(volley_loop *l, volley_conn *c)
{
    struct volley_event ev[16];
    long long end = t_now_ms() + 5000;
    while (t_now_ms() < end) {
        int n = volley_loop_poll(l, ev, 16, 50);
        T_ASSERT(n >= 0);
        for (int i = 0; i < n; i++)
            if (ev[i].conn == c && ev[i].type == VOLLEY_EV_CLOSED)
                return ev[i].err;
    }
    T_FAIL("no CLOSED within 5 s");
}

/* ---- open, listen and dial fail with the call's error ---- */

struct fault {
    enum volley__sysop op;
    int err, want; /* injected, and what the call must return */
};

static int case_loop_open(void)
{
    need_backend();
    static const struct fault uring[] = {
        {VOLLEY__SYS_URING_INIT, EMFILE, -EMFILE},
        {VOLLEY__SYS_URING_INIT, ENOMEM, -ENOMEM},
        {VOLLEY__SYS_URING_INIT, ENOSYS, -ENOTSUP},
        {VOLLEY__SYS_URING_INIT, EPERM, -ENOTSUP},
        {VOLLEY__SYS_URING_REGISTER, ENOMEM, -ENOMEM},
        {VOLLEY__SYS_EVENTFD, EMFILE, -EMFILE},
        {VOLLEY__SYS_MMAP, ENOMEM, -ENOMEM},
    };
    static const struct fault epoll[] = {
        {VOLLEY__SYS_EPOLL_CREATE, EMFILE, -EMFILE},
        {VOLLEY__SYS_EPOLL_CREATE, ENOMEM, -ENOMEM},
        {VOLLEY__SYS_MMAP, ENOMEM, -ENOMEM},
    };
    const struct fault *f = is_uring() ? uring : epoll;
    size_t n = is_uring() ? T_COUNT(uring) : T_COUNT(epoll);
    struct volley_loop_opts o = lopts();
    int fds = t_count_fds();
    for (size_t i = 0; i < n; i++) {
        volley_loop *l = NULL;
        volley__sys_fault_set(f[i].op, 1, 0, f[i].err, 0);
        int r = volley_loop_open(&l, &o);
        unsigned long calls = volley__sys_count(f[i].op);
        volley__sys_fault_clear();
        if (r == 0)
            volley_loop_close(l, 0);
        if (calls == 0) {
            printf("  %s is not called by a %s loop's open\n", op_name(f[i].op),
                   t_loop_backend()->name);
            continue;
        }
        T_CHECK(r == f[i].want, "%s failing with %s: volley_loop_open = %d (%s), want %s",
                op_name(f[i].op), strerror(f[i].err), r, volley_strerror(r),
                volley_strerror(f[i].want));
        T_EXPECT(t_count_fds(), fds);
    }
    return 0;
}

/* listen (dial: dial to a live listener) with every call of op failing:
 * the call's error, no descriptor left, nothing on the loop; then the
 * same call works. */
static void open_fails(bool dial, enum volley__sysop op, int err)
{
    volley_loop *l = loop_new();
    volley_conn *ln, *c = NULL;
    T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
    struct volley_addr a;
    T_OK(volley_conn_addr(ln, &a, NULL));
    char to[64];
    snprintf(to, sizeof to, "127.0.0.1:%u", volley_addr_port(&a));
    int fds = t_count_fds();
    struct volley_loop_stats s0, s1;
    T_OK(volley_loop_get_stats(l, &s0, sizeof s0));
    volley__sys_fault_set(op, 1, 0, err, 0);
    int r = dial ? volley_dial(l, &c, to, NULL, 2000, NULL)
                 : volley_listen(l, &c, "127.0.0.1:0", NULL, NULL);
    unsigned long calls = volley__sys_count(op);
    volley__sys_fault_clear();
    const char *fn = dial ? "volley_dial" : "volley_listen";
    if (calls == 0) {
        printf("  %s makes no %s call on %s\n", fn, op_name(op), t_loop_backend()->name);
    } else {
        T_CHECK(r == -err, "%s with %s failing (%s): %d (%s)", fn, op_name(op),
                strerror(err), r, volley_strerror(r));
        T_EXPECT(t_count_fds(), fds);
        T_OK(volley_loop_get_stats(l, &s1, sizeof s1));
        T_EXPECT(s1.conns, s0.conns);
    }
    if (r == 0)
        T_EXPECT(volley_conn_abort(c), 0), closed_err(l, c);
    /* and without the fault it works */
    r = dial ? volley_dial(l, &c, to, NULL, 2000, NULL)
             : volley_listen(l, &c, "127.0.0.1:0", NULL, NULL);
    T_EXPECT(r, 0);
    if (r == 0) {
        T_EXPECT(volley_conn_abort(c), 0);
        closed_err(l, c);
    }
    volley_loop_close(l, 0);
}

static int case_listen_fails(void)
{
    need_backend();
    open_fails(false, VOLLEY__SYS_SOCKET, EMFILE);
    open_fails(false, VOLLEY__SYS_SOCKET, ENFILE);
    open_fails(false, VOLLEY__SYS_BIND, EADDRINUSE);
    open_fails(false, VOLLEY__SYS_BIND, EACCES);
    open_fails(false, VOLLEY__SYS_LISTEN, EADDRINUSE);
    open_fails(false, VOLLEY__SYS_SETSOCKOPT, ENOMEM);
    if (!is_uring())
        open_fails(false, VOLLEY__SYS_EPOLL_CTL, ENOMEM);
    return 0;
}

static int case_dial_fails(void)
{
    need_backend();
    open_fails(true, VOLLEY__SYS_SOCKET, EMFILE);
    open_fails(true, VOLLEY__SYS_SOCKET, ENOBUFS);
    open_fails(true, VOLLEY__SYS_SETSOCKOPT, ENOMEM);
    if (!is_uring())
        open_fails(true, VOLLEY__SYS_EPOLL_CTL, ENOMEM);
    return 0;
}

/* A connect the kernel answers with an error: CLOSED with it (where the
 * loop connects through the seam: epoll). */
static int case_connect_errors(void)
{
    need_backend();
    static const int errs[] = {ECONNREFUSED, ENETUNREACH, EHOSTUNREACH};
    for (size_t i = 0; i < T_COUNT(errs); i++) {
        volley_loop *l = loop_new();
        volley_conn *ln, *c;
        T_OK(volley_listen(l, &ln, "127.0.0.1:0", NULL, NULL));
        struct volley_addr a;
        T_OK(volley_conn_addr(ln, &a, NULL));
        char to[64];
        snprintf(to, sizeof to, "127.0.0.1:%u", volley_addr_port(&a));
        volley__sys_fault_set(VOLLEY__SYS_CONNECT, 1, 0, errs[i], 0);
        int r = volley_dial(l, &c, to, NULL, 2000, NULL);
        unsigned long calls = volley__sys_count(VOLLEY__SYS_CONNECT);
        if (calls == 0) {
            volley__sys_fault_clear();
            printf("  the %s loop connects without connect(2)\n", t_loop_backend()->name);
            if (r == 0)
                volley_conn_abort(c), closed_err(l, c);
            volley_loop_close(l, 0);
            return 0;
        }
        T_CHECK(r == 0,
                "volley_dial with connect failing (%s) = %d: refusals come as "
                "CLOSED",
                strerror(errs[i]), r);
        if (r == 0)
            T_EXPECT(closed_err(l, c), -errs[i]);
        volley__sys_fault_clear();
        volley_loop_close(l, 0);
    }
    return 0;
}

/* An interrupted wait ends volley_loop_poll with -EINTR (so a caller can
 * look at what its signal handler set), and the loop goes on; a refused
 * submission is not volley_loop_poll's error. */
static int case_wait_interrupted(void)
{
    need_backend();
    volley_loop *l = loop_new();
    enum volley__sysop op = is_uring() ? VOLLEY__SYS_URING_WAIT : VOLLEY__SYS_EPOLL_WAIT;
    struct volley_event ev[4];
    volley__sys_fault_set(op, 1, 3, EINTR, 0);
    for (int i = 0; i < 4; i++) {
        int r = volley_loop_poll(l, ev, 4, 20);
        T_CHECK(r == (i < 3 ? -EINTR : 0),
                "volley_loop_poll with %s interrupted: %d (%s)", op_name(op), r,
                volley_strerror(r));
    }
    volley__sys_fault_clear();
    if (is_uring()) {
        static const int errs[] = {EBUSY, EAGAIN};
        for (size_t i = 0; i < T_COUNT(errs); i++) {
            volley__sys_fault_set(VOLLEY__SYS_URING_SUBMIT, 1, 2, errs[i], 0);
            int r = volley_loop_poll(l, ev, 4, 20);
            volley__sys_fault_clear();
            T_CHECK(r >= 0, "volley_loop_poll with submit failing (%s): %d (%s)",
                    strerror(errs[i]), r, volley_strerror(r));
        }
    }
    volley_loop_close(l, 0);
    return 0;
}

/* An epoll loop whose kernel refuses epoll_pwait2 (too old, or a filter
 * that says EPERM) waits with epoll_wait from then on, rounded up to the
 * millisecond: a sub-millisecond timer still comes, never early, and the
 * refusal is not volley_loop_poll's error. */
static int case_pwait2_refused(void)
{
    need_backend();
    T_SKIP_IF(is_uring(), "the uring loop waits with an io_uring timeout");
    static const int errs[] = {ENOSYS, EPERM};
    for (size_t i = 0; i < T_COUNT(errs); i++) {
        volley_loop *l = loop_new();
        volley_timer *t;
        T_OK(volley_timer_open(l, &t, 5));
        for (int round = 0; round < 3; round++) {
            if (round == 0) /* refused once: never asked again */
                volley__sys_fault_set(VOLLEY__SYS_EPOLL_WAIT, 1, 1, errs[i], 0);
            int64_t a = t_now_ns();
            T_OK(volley_timer_start_ns(t, 400000, 0));
            struct volley_event ev[4];
            int n;
            while ((n = volley_loop_poll(l, ev, 4, 1000)) == 0)
                ;
            long long took = t_now_ns() - a;
            unsigned long calls = volley__sys_count(VOLLEY__SYS_EPOLL_WAIT);
            volley__sys_fault_clear();
            T_CHECK(n == 1 && ev[0].type == VOLLEY_EV_TIMER,
                    "with epoll_pwait2 refused (%s): poll gave %d", strerror(errs[i]), n);
            T_CHECK(took >= 400000, "a 400 us timer came after %lld ns", took);
            if (round == 0)
                T_CHECK(calls >= 2, "epoll_pwait2 refused and no epoll_wait after it");
        }
        volley_timer_close(t);
        volley_loop_close(l, 0);
    }
    return 0;
}

/* ---- the sweep ---- */

#define SWEEP_BYTES (64 * KiB)

static uint8_t stream_byte(uint64_t i)
{
    return (uint8_t)(i * 7 + (i >> 8) * 13 + 1);
}

static enum volley__sysop fault_op; /* what the sweep fails now */
static int fault_err;               /* and with which errno */

/* One echo exchange on a fresh loop: listen, dial, 64 KiB there and back,
 * close. What went wrong is reported by the checks. */
struct ex {
    volley_loop *l;
    volley_conn *ln, *cli, *srv;
    bool ln_closed, cli_closed, srv_closed, cli_closing, srv_closing, ln_closing;
    uint64_t sent, echoed, back;
    int cli_err;
};

static void ex_event(struct ex *x, const struct volley_event *e)
{
    static uint8_t buf[SWEEP_BYTES];
    if (e->type == VOLLEY_EV_ACCEPTED) {
        if (x->srv)
            T_FAIL("a second ACCEPTED");
        x->srv = e->conn;
        return;
    }
    bool *closed = e->conn == x->cli   ? &x->cli_closed
                   : e->conn == x->srv ? &x->srv_closed
                   : e->conn == x->ln  ? &x->ln_closed
                                       : NULL;
    if (!closed)
        T_FAIL("%u event for an unknown conn", e->type);
    if (*closed)
        T_FAIL("event %u after CLOSED", e->type);
    if (e->type == VOLLEY_EV_CLOSED) {
        *closed = true;
        if (e->conn == x->cli)
            x->cli_err = e->err;
        return;
    }
    if (e->conn == x->srv && !x->srv_closing) {
        ssize_t n;
        while ((n = volley_conn_read(x->srv, buf, sizeof buf)) > 0) {
            ssize_t w = volley_conn_write(x->srv, buf, (size_t)n);
            T_CHECK(w == n || w < 0, "server write = %zd of %zd", w, n);
            x->echoed += (uint64_t)n;
        }
        if (e->type == VOLLEY_EV_EOF || (n < 0 && n != -ESHUTDOWN)) {
            T_ASSERT(volley_conn_close(x->srv) == 0);
            x->srv_closing = true;
        }
    }
    if (e->conn == x->cli && !x->cli_closing) {
        ssize_t n;
        while ((n = volley_conn_read(x->cli, buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] != stream_byte(x->back + (uint64_t)i))
                    T_FAIL("echoed byte %llu differs", (unsigned long long)(x->back + i));
            x->back += (uint64_t)n;
        }
        if (x->back == SWEEP_BYTES || e->type == VOLLEY_EV_EOF || n < 0) {
            T_ASSERT(volley_conn_close(x->cli) == 0);
            x->cli_closing = true;
        }
    }
}

/* Run the exchange; returns false if listen or dial failed (with a
 * negative errno, checked). */
static bool ex_run(struct ex *x)
{
    static uint8_t out[SWEEP_BYTES];
    for (uint64_t i = 0; i < SWEEP_BYTES; i++)
        out[i] = stream_byte(i);
    int r = volley_listen(x->l, &x->ln, "127.0.0.1:0", NULL, NULL);
    if (r < 0)
        return T_CHECK(r > -4096, "volley_listen = %d", r) && false;
    struct volley_addr a;
    T_ASSERT(volley_conn_addr(x->ln, &a, NULL) == 0);
    char to[64];
    snprintf(to, sizeof to, "127.0.0.1:%u", volley_addr_port(&a));
    r = volley_dial(x->l, &x->cli, to, NULL, 2000, NULL);
    if (r < 0) {
        T_CHECK(r > -4096, "volley_dial = %d", r);
        x->cli_closed = true;
    } else {
        ssize_t w = volley_conn_write(x->cli, out, sizeof out);
        T_CHECK(w == (ssize_t)sizeof out || w < 0, "client write = %zd", w);
    }
    struct volley_event ev[16];
    long long end = t_now_ms() + 8000;
    while (!(x->cli_closed && (!x->srv || x->srv_closed) && x->ln_closed)) {
        if (t_now_ms() > end)
            T_FAIL("the exchange did not end in 8 s: client %s, server %s, back %llu, "
                   "echoed %llu",
                   x->cli_closed ? "closed" : "open",
                   !x->srv         ? "none"
                   : x->srv_closed ? "closed"
                                   : "open",
                   (unsigned long long)x->back, (unsigned long long)x->echoed);
        int n = volley_loop_poll(x->l, ev, 16, 20);
        if (n == -EINTR && fault_err == EINTR)
            continue; /* the wait the sweep interrupts: the caller polls again */
        T_CHECK(n >= 0, "volley_loop_poll = %d (%s)", n, volley_strerror(n));
        for (int i = 0; i < n; i++)
            ex_event(x, &ev[i]);
        if (x->ln_closed && !x->ln_closing && !x->cli_closed && !x->cli_closing) {
            /* the listener ended on its own: nobody will answer the client */
            printf("  [%s] the listener closed by itself\n", op_name(fault_op));
            T_ASSERT(volley_conn_abort(x->cli) == 0);
            x->cli_closing = x->ln_closing = true;
        }
        if (x->cli_closed && !x->ln_closing) {
            T_ASSERT(volley_conn_close(x->ln) == 0);
            x->ln_closing = true;
        }
    }
    return true;
}

struct sweep_op {
    enum volley__sysop op;
    int errs[3];
};

static void sweep_one(const struct sweep_op *s, int err, unsigned *runs)
{
    fault_op = s->op;
    fault_err = err;
    for (unsigned nth = 1; nth <= 40; nth++) {
        int fds = t_count_fds();
        struct ex x = {.l = loop_new()};
        t_context("%s failing with %s at call %u", op_name(s->op), strerror(err), nth);
        volley__sys_fault_set(s->op, nth, 1, err, 0);
        ex_run(&x);
        unsigned long calls = volley__sys_count(s->op);
        volley__sys_fault_clear();
        volley_loop_close(x.l, 0);
        T_EXPECT(t_count_fds(), fds);
        ++*runs;
        if (calls < nth)
            break; /* the exchange made fewer calls: swept them all */
    }
    t_context(NULL);
}

/* A uring loop whose kernel refuses it a socket table (too old, out of
 * memory, a descriptor limit below the table) opens all the same and
 * serves its connections by descriptor: the exchange completes, every
 * descriptor comes back. */
static int case_no_socket_table(void)
{
    need_backend();
    T_SKIP_IF(!is_uring(), "only a uring loop has a socket table");
    static const int errs[] = {EINVAL, ENOMEM, EMFILE};
    for (size_t i = 0; i < T_COUNT(errs); i++) {
        int fds = t_count_fds();
        fault_op = VOLLEY__SYS_URING_FILES;
        fault_err = errs[i];
        volley__sys_fault_set(VOLLEY__SYS_URING_FILES, 1, 0, errs[i], 0);
        struct ex x = {.l = loop_new()};
        unsigned long calls = volley__sys_count(VOLLEY__SYS_URING_FILES);
        volley__sys_fault_clear();
        T_CHECK(calls == 1, "the table was asked for %lu times", calls);
#if VOLLEY_HAVE_URING
        uint32_t size;
        T_EXPECT(volley__loop_fixed(x.l, &size), 0);
        T_EXPECT(size, 0);
#endif
        T_ASSERT(ex_run(&x));
        T_CHECK(x.back == SWEEP_BYTES && x.cli_err == 0,
                "without a table (%s): %llu bytes back, client CLOSED %d",
                strerror(errs[i]), (unsigned long long)x.back, x.cli_err);
        volley_loop_close(x.l, 0);
        T_EXPECT(t_count_fds(), fds);
    }
    return 0;
}

static int case_sweep(void)
{
    need_backend();
    static const struct sweep_op common[] = {
        {VOLLEY__SYS_SOCKET, {EMFILE}},
        {VOLLEY__SYS_SETSOCKOPT, {ENOMEM}},
        {VOLLEY__SYS_BIND, {EADDRINUSE}},
        {VOLLEY__SYS_LISTEN, {EADDRINUSE}},
        {VOLLEY__SYS_GETSOCKNAME, {ENOBUFS}},
        {VOLLEY__SYS_GETPEERNAME, {ENOTCONN}},
        {VOLLEY__SYS_CONNECT, {ECONNREFUSED, EINTR}},
        {VOLLEY__SYS_ACCEPT, {EMFILE, ECONNABORTED, EINTR}},
        {VOLLEY__SYS_SHUTDOWN, {ENOTCONN}},
        {VOLLEY__SYS_RECV, {EINTR, EAGAIN, ECONNRESET}},
        {VOLLEY__SYS_SENDMSG, {EINTR, EAGAIN, EPIPE}},
        {VOLLEY__SYS_FCNTL, {EBADF}},
        {VOLLEY__SYS_EVENTFD_READ, {EAGAIN}},
        {VOLLEY__SYS_EVENTFD_WRITE, {EAGAIN}},
        {VOLLEY__SYS_EPOLL_CTL, {ENOMEM, EEXIST}},
        {VOLLEY__SYS_EPOLL_WAIT, {EINTR}},
        {VOLLEY__SYS_URING_SUBMIT, {EBUSY, EAGAIN, EINTR}},
        {VOLLEY__SYS_URING_WAIT, {EINTR, ETIME}},
    };
    unsigned runs = 0;
    for (size_t i = 0; i < T_COUNT(common); i++)
        for (size_t k = 0; k < 3 && common[i].errs[k]; k++)
            sweep_one(&common[i], common[i].errs[k], &runs);
    printf("  %u faulted exchanges\n", runs);
    return 0;
}

static const struct t_loop_case defs[] = {
    {"loop_open", case_loop_open},
    {"listen_fails", case_listen_fails},
    {"dial_fails", case_dial_fails},
    {"connect_errors", case_connect_errors},
    {"wait_interrupted", case_wait_interrupted},
    {"pwait2_refused", case_pwait2_refused},
    {"no_socket_table", case_no_socket_table},
    {"sweep", case_sweep},
};

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct t_run how = {.flags = T_FORK, .case_s = 120, .total_s = 290};
    return t_main_loops(defs, T_COUNT(defs), &how, argc, argv);
}
