/* SPDX-License-Identifier: MIT */
#include "t.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- checks ---- */

static unsigned soft_failures;
static char context[160];

static void report(const char *file, int line, const char *fmt, va_list ap)
    T_PRINTF(3, 0);
static void report(const char *file, int line, const char *fmt, va_list ap)
{
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    if (context[0])
        fprintf(stderr, "[%s] ", context);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void t_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(file, line, fmt, ap);
    va_end(ap);
    exit(1);
}

bool t_miss_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(file, line, fmt, ap);
    va_end(ap);
    soft_failures++;
    return false;
}

unsigned t_failures(void)
{
    return soft_failures;
}

void t_context(const char *fmt, ...)
{
    context[0] = 0;
    if (!fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
}

/* " (text)" for a negative errno, nothing for a count. */
static const char *err_text(long long v, char *buf, size_t size)
{
    buf[0] = 0;
    if (v < 0 && v >= -4095)
        snprintf(buf, size, " (%s)", volley_strerror((int)v));
    return buf;
}

bool t_expect_at(const char *file, int line, const char *what, long long got,
                 long long want)
{
    char g[128], w[128];
    if (got == want)
        return true;
    return t_miss_at(file, line, "%s = %lld%s, want %lld%s", what, got,
                     err_text(got, g, sizeof g), want, err_text(want, w, sizeof w));
}

/* ---- the case runner ---- */

static struct t_case running; /* the case this process runs */
static bool skip_said;
static struct t_run run_how;
static long long run_start;
static char watch_label[160];

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL: watchdog expired in ";
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, watch_label, strlen(watch_label));
    (void)!write(2, "\n", 1);
    _exit(1);
}

/* The smaller of the case's own limit and what is left of the total. */
static unsigned watch_seconds(void)
{
    if (!run_how.total_s)
        return run_how.case_s;
    long long left = (long long)run_how.total_s - (t_now_ms() - run_start) / 1000;
    if (left < 1)
        left = 1;
    if (run_how.case_s && run_how.case_s < left)
        return run_how.case_s;
    return (unsigned)left;
}

static void arm_watchdog(const struct t_case *c)
{
    snprintf(watch_label, sizeof watch_label, "%s: case %s",
             program_invocation_short_name, c->name);
    signal(SIGALRM, on_alarm);
    alarm(watch_seconds());
}

/* Run c in this process: 0 passed, 1 failed (*soft checks), T_SKIP. */
static int run_here(const struct t_case *c, unsigned *soft)
{
    unsigned before = soft_failures;
    running = *c;
    if (!running.backend)
        running.backend = run_how.backend;
    skip_said = false;
    t_context(NULL);
    arm_watchdog(c);
    int r = c->fn();
    alarm(0);
    *soft = soft_failures - before;
    if (*soft)
        return 1;
    if (r == T_SKIP && !skip_said)
        printf("skip: %s\n", c->name);
    return r == T_SKIP ? T_SKIP : 0;
}

/* Run c in a child process; a fatal check or a crash fails c alone. */
static int run_forked(const struct t_case *c)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        T_FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        unsigned soft;
        exit(run_here(c, &soft));
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            T_FAIL("waitpid: %s", strerror(errno));
    if (WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == T_SKIP))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        printf("FAIL: %s (signal %d)\n", c->name, WTERMSIG(st));
    else
        printf("FAIL: %s (exit %d)\n", c->name, WEXITSTATUS(st));
    return 1;
}

/* 0 when backend be (if any) works here, else the case's result. */
static int backend_ready(const struct t_case *c, unsigned be)
{
    int err = be == VOLLEY_BACKEND_AUTO ? 0 : t_backend_err(be);
    if (err == -ENOTSUP)
        printf("skip: %s (%s not available here)\n", c->name, t_backend_of(be)->name);
    else if (err < 0)
        printf("FAIL: %s (a %s socket does not open: %s)\n", c->name,
               t_backend_of(be)->name, volley_strerror(err));
    return err == -ENOTSUP ? T_SKIP : err < 0;
}

static int run_case(const struct t_case *c)
{
    long long t0 = t_now_ms();
    int r = backend_ready(c, c->backend ? c->backend : run_how.backend);
    unsigned soft = 0;
    if (r)
        return r;
    r = run_how.flags & T_FORK ? run_forked(c) : run_here(c, &soft);
    if (r == 0)
        printf("ok: %s (%lld ms)\n", c->name, t_now_ms() - t0);
    else if (soft)
        printf("FAIL: %s (%u checks failed)\n", c->name, soft);
    return r;
}

static bool picked(const char *name, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strstr(name, argv[i]))
            return true;
    return argc < 2;
}

int t_main(const struct t_case *cases, size_t n, const struct t_run *how, int argc,
           char **argv)
{
    unsigned count[3] = {0, 0, 0}; /* passed, failed, skipped */
    setvbuf(stdout, NULL, _IOLBF, 0);
    run_how = *how;
    run_start = t_now_ms();
    for (size_t i = 0; i < n; i++) {
        if (!picked(cases[i].name, argc, argv))
            continue;
        int r = run_case(&cases[i]);
        count[r == T_SKIP ? 2 : r ? 1 : 0]++;
    }
    if (!count[0] && !count[1] && !count[2])
        T_FAIL("no case name contains \"%s\"%s", argc > 1 ? argv[1] : "",
               argc > 2 ? " or the rest" : "");
    return t_summary(count[0], count[1], count[2]);
}

const struct t_case *t_current(void)
{
    return &running;
}

int t_skip(const char *fmt, ...)
{
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    printf("skip: %s (%s)\n", running.name, why);
    skip_said = true;
    return T_SKIP;
}

void t_skip_exit(const char *file, int line, const char *why)
{
    if (running.name)
        printf("skip: %s (%s)\n", running.name, why);
    else
        fprintf(stderr, "SKIP %s:%d: %s\n", file, line, why);
    exit(T_SKIP);
}

void t_skip_part(const char *what, const char *why)
{
    printf("  skip: %s (%s)\n", what, why);
}

int t_summary(unsigned passed, unsigned failed, unsigned skipped)
{
    printf("%s: %u passed, %u failed, %u skipped\n", program_invocation_short_name,
           passed, failed, skipped);
    if (failed)
        return 1;
    return !passed && skipped ? T_SKIP : 0;
}

/* ---- backends ---- */

const struct t_backend t_backends[] = {
    {"scalar", VOLLEY_BACKEND_SCALAR, true, false},
    {"mmsg", VOLLEY_BACKEND_MMSG, true, true},
    {"uring", VOLLEY_BACKEND_URING, true, true},
    {"pair", VOLLEY_BACKEND_PAIR, false, false},
    {"xnu", VOLLEY_BACKEND_XNU, true, false},
};
const size_t t_nbackends = T_COUNT(t_backends);
_Static_assert(T_COUNT(t_backends) <= T_BACKENDS_MAX, "T_BACKENDS_MAX is too small");

const struct t_loop_backend t_loop_backends[] = {
    {"uring", VOLLEY_BACKEND_URING},
    {"epoll", VOLLEY_BACKEND_EPOLL},
};
const size_t t_nloop_backends = T_COUNT(t_loop_backends);

int t_main_loops(const struct t_loop_case *defs, size_t n, const struct t_run *how,
                 int argc, char **argv)
{
    return t_main_mixed(NULL, 0, defs, n, how, argc, argv);
}

int t_main_mixed(const struct t_case *plain, size_t np, const struct t_loop_case *defs,
                 size_t n, const struct t_run *how, int argc, char **argv)
{
    static struct t_case cases[64 + 64 * T_COUNT(t_loop_backends)];
    static char names[T_COUNT(cases)][48];
    size_t k = 0;
    if (n > 64 || np > 64)
        T_FAIL("t_main_mixed: %zu plain and %zu loop cases, at most 64 each", np, n);
    for (size_t i = 0; i < np; i++)
        cases[k++] = plain[i];
    for (size_t b = 0; b < t_nloop_backends; b++)
        for (size_t i = 0; i < n; i++, k++) {
            snprintf(names[k], sizeof names[k], "%s/%s", t_loop_backends[b].name,
                     defs[i].name);
            cases[k] = (struct t_case){
                .name = names[k], .fn = defs[i].fn, .arg = &t_loop_backends[b]};
        }
    return t_main(cases, k, how, argc, argv);
}

const struct t_loop_backend *t_loop_backend(void)
{
    return t_current()->arg;
}

const struct t_backend *t_backend_of(unsigned id)
{
    for (size_t i = 0; i < t_nbackends; i++)
        if (t_backends[i].id == id)
            return &t_backends[i];
    T_FAIL("backend %u is not in the test kit's table", id);
}

const struct t_backend *t_backend_arg(int *argc, char ***argv)
{
    int id = volley_backend_parse(*argc > 1 ? (*argv)[1] : NULL);
    if (id <= 0) {
        fprintf(stderr,
                "usage: %s BACKEND [CASE...]; backends:", program_invocation_short_name);
        for (size_t i = 0; i < t_nbackends; i++)
            fprintf(stderr, " %s", t_backends[i].name);
        fputc('\n', stderr);
        exit(1);
    }
    ++*argv;
    --*argc;
    return t_backend_of((unsigned)id);
}

/* Open (and close) one socket of backend id: 0 or the error. */
static int try_backend(unsigned id)
{
    struct volley_opts o = t_opts(id);
    volley_sock *a, *b = NULL;
    bool kernel = id == VOLLEY_BACKEND_AUTO || t_backend_of(id)->kernel;
    int r = kernel ? volley_open(&a, "127.0.0.1:0", &o) : volley_pair(&a, &b, &o);
    if (r == 0) {
        volley_close(a);
        volley_close(b);
    }
    return r;
}

int t_backend_err(unsigned id)
{
    static int known[16];
    static bool tried[16];
    T_ASSERT(id < T_COUNT(known));
    if (tried[id])
        return known[id];
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        T_FAIL("fork: %s", strerror(errno));
    if (pid == 0)
        _exit(-try_backend(id) & 0xff);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            T_FAIL("waitpid: %s", strerror(errno));
    tried[id] = true;
    known[id] = WIFEXITED(st) ? -WEXITSTATUS(st) : -EIO;
    return known[id];
}

bool t_unavailable(unsigned id, int r)
{
    return r == -ENOTSUP && t_backend_err(id) == -ENOTSUP;
}

/* ---- sockets ---- */

struct volley_opts t_opts(unsigned backend)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    o.backend = backend;
    return o;
}

bool t_open(volley_sock **s, const char *bind, const struct volley_opts *o)
{
    int r = volley_open(s, bind, o);
    if (r == -EAFNOSUPPORT || r == -EADDRNOTAVAIL)
        return false;
    if (r < 0)
        T_FAIL("volley_open(%s): %s", bind, volley_strerror(r));
    return true;
}

void t_socks(const struct volley_opts *o, const char *bind, volley_sock **a,
             volley_sock **b, struct volley_addr *to_b, struct volley_addr *to_a)
{
    if (o->backend == VOLLEY_BACKEND_PAIR) {
        T_OK(volley_pair(a, b, o));
        memset(to_b, 0, sizeof *to_b);
        memset(to_a, 0, sizeof *to_a);
        return;
    }
    T_SKIP_IF(!t_open(a, bind, o), "address family unavailable");
    T_OK(volley_open(b, bind, o));
    *to_b = t_local(*b);
    *to_a = t_local(*a);
}

struct volley_stats t_stats(const volley_sock *s)
{
    struct volley_stats st;
    T_OK(volley_get_stats(s, &st, sizeof st));
    return st;
}

void t_keep(struct volley_dgram *d, unsigned n, uint8_t *store, size_t stride)
{
    for (unsigned i = 0; i < n; i++) {
        uint8_t *slot = store + (size_t)i * stride;
        memcpy(slot, d[i].data, d[i].len < stride ? d[i].len : stride);
        d[i].data = slot;
    }
}

unsigned t_recv_n(volley_sock *s, struct volley_dgram *d, unsigned want, uint8_t *store,
                  size_t stride, int timeout_ms)
{
    unsigned got = 0;
    long long deadline = t_now_ms() + timeout_ms;
    while (got < want && t_now_ms() < deadline) {
        unsigned ask = want - got > VOLLEY_BATCH_MAX ? VOLLEY_BATCH_MAX : want - got;
        int r = T_OK(volley_recv(s, d + got, ask));
        if (r == 0) {
            volley_wait(s, VOLLEY_WAIT_RECV, 50);
            continue;
        }
        if (store)
            t_keep(d + got, (unsigned)r, store + (size_t)got * stride, stride);
        got += (unsigned)r;
        deadline = t_now_ms() + timeout_ms;
    }
    return got;
}

unsigned t_send_all(volley_sock *s, const struct volley_dgram *d, unsigned n,
                    int timeout_ms)
{
    unsigned done = 0;
    long long deadline = t_now_ms() + timeout_ms;
    while (done < n && t_now_ms() < deadline) {
        unsigned ask = n - done > VOLLEY_BATCH_MAX ? VOLLEY_BATCH_MAX : n - done;
        int r = T_OK(volley_send(s, d + done, ask));
        if (r == 0)
            volley_wait(s, VOLLEY_WAIT_SEND, 10);
        done += (unsigned)r;
    }
    return done;
}

struct t_batch t_batch_new(unsigned n, size_t stride)
{
    struct t_batch b = {calloc(n, sizeof *b.d), malloc((size_t)n * stride + 1), stride,
                        n};
    T_ASSERT(b.d && b.buf);
    for (unsigned i = 0; i < n; i++) {
        b.d[i].data = b.buf + (size_t)i * stride;
        b.d[i].len = stride;
    }
    return b;
}

void t_batch_free(struct t_batch *b)
{
    free(b->d);
    free(b->buf);
}

int t_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        T_FAIL("opendir(/proc/self/fd): %s", strerror(errno));
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

bool t_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout_ms);
    T_ASSERT(r >= 0);
    return r == 1 && (p.revents & POLLIN);
}

void t_assert_eventfd(int fd)
{
    char path[64], link[128];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    T_ASSERT(n > 0);
    link[n] = 0;
    if (!strstr(link, "eventfd"))
        T_FAIL("fd %d is %s, want an eventfd", fd, link);
}

/* ---- addresses ---- */

struct volley_addr t_addr(const char *s)
{
    struct volley_addr a;
    memset(&a, 0, sizeof a);
    int r = s && *s ? volley_addr_parse(&a, s) : 0;
    if (r < 0)
        T_FAIL("volley_addr_parse(\"%s\"): %s", s, volley_strerror(r));
    return a;
}

struct volley_addr t_local(const volley_sock *s)
{
    struct volley_addr a;
    T_OK(volley_local_addr(s, &a));
    return a;
}

struct volley_addr t_dest(const volley_sock *s, const char *ip)
{
    struct volley_addr l = t_local(s), a = t_addr(ip);
    uint16_t port = l.sa.sa_family == AF_INET ? l.sin.sin_port : l.sin6.sin6_port;
    if (a.sa.sa_family == AF_INET)
        a.sin.sin_port = port;
    else
        a.sin6.sin6_port = port;
    return a;
}

bool t_addr_is(const struct volley_addr *a, const char *s)
{
    struct volley_addr want = t_addr(s);
    return volley_addr_equal(a, &want);
}

const char *t_fmt(const struct volley_addr *a)
{
    static char bufs[4][64];
    static unsigned k;
    char *b = bufs[k++ % 4];
    if (volley_addr_format(a, b, 64) < 0)
        snprintf(b, 64, "(family %d)", a->sa.sa_family);
    return b;
}

bool t_same_ip(const struct volley_addr *a, const struct volley_addr *b)
{
    if (a->sa.sa_family != b->sa.sa_family)
        return false;
    if (a->sa.sa_family == AF_INET)
        return a->sin.sin_addr.s_addr == b->sin.sin_addr.s_addr;
    if (a->sa.sa_family == AF_INET6)
        return !memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr, 16);
    return true;
}

/* ---- payloads ---- */

void t_fill(void *p, size_t len, uint64_t seq)
{
    uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        b[i] = t_byte(seq, i);
}

/* The first byte from `from` that is not seq's (payload offset off), or len. */
static size_t mismatch(const uint8_t *p, size_t from, size_t len, uint64_t seq,
                       size_t off)
{
    while (from < len && p[from] == t_byte(seq, off + from))
        from++;
    return from;
}

void t_payload_at(const char *file, int line, const struct volley_dgram *d, size_t len,
                  uint64_t seq, size_t off)
{
    if (d->len != len)
        t_fail_at(file, line, "datagram %llu: len %zu, want %zu", (unsigned long long)seq,
                  d->len, len);
    const uint8_t *p = d->data;
    size_t i = mismatch(p, 0, len, seq, off);
    if (i < len)
        t_fail_at(file, line, "datagram %llu: byte %zu is %u, want %u",
                  (unsigned long long)seq, i, p[i], t_byte(seq, off + i));
}

void t_fill_seq(void *p, size_t len, uint64_t seq)
{
    T_ASSERT(len >= sizeof seq);
    t_fill(p, len, seq);
    memcpy(p, &seq, sizeof seq);
}

uint64_t t_seq(const struct volley_dgram *d)
{
    uint64_t seq;
    memcpy(&seq, d->data, sizeof seq);
    return seq;
}

uint64_t t_seq_at(const char *file, int line, const struct volley_dgram *d, size_t len)
{
    if (d->len != len)
        t_fail_at(file, line, "numbered datagram of %zu bytes, want %zu", d->len, len);
    uint64_t seq = t_seq(d);
    const uint8_t *p = d->data;
    size_t i = mismatch(p, sizeof seq, len, seq, 0);
    if (i < len)
        t_fail_at(file, line, "datagram %llu: byte %zu is %u, want %u",
                  (unsigned long long)seq, i, p[i], t_byte(seq, i));
    return seq;
}

/* ---- time and numbers ---- */

long long t_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t t_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t t_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint32_t t_rand(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (uint32_t)(*state >> 11);
}
