/* SPDX-License-Identifier: MIT */
/*
 * Child processes for the rows that run programs (iperf3, volley's own
 * send and recv): spawning, reaping against a deadline, reading their
 * output, and just enough JSON to read their reports.
 */
#include "bench.h"

#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* A TCP port free on 127.0.0.1 now (iperf3 uses it for TCP and UDP). */
int bench_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
#if VOLLEY_HAVE_LINUX
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;
#else /* as on macOS, where socket takes no flags: closed at once */
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
#endif

    if (fd < 0)
        return -errno;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    else
        port = -errno;
    close(fd);
    return port;
}

/* Runs argv with stdin and stderr on /dev/null and stdout on out_fd (-1:
 * /dev/null too). */
int bench_spawn(pid_t *pid, char *const argv[], int out_fd)
{
    posix_spawn_file_actions_t fa;
    int err = posix_spawn_file_actions_init(&fa);

    if (err)
        return -err;
    err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!err && out_fd >= 0)
        err = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    else if (!err)
        err = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (!err)
        err = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (!err)
        err = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return -err;
}

/* Waits for pid until deadline (CLOCK_MONOTONIC ns), then kills it. Returns
 * its wait status, or -ETIMEDOUT when it had to be killed. */
int bench_reap(pid_t pid, int64_t deadline)
{
    int status;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        int e = errno;

        if (r == pid)
            return status;
        if (r < 0 && e != EINTR)
            return -e;
        if (cli_mono_ns() >= deadline)
            break;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return -ETIMEDOUT;
}

/* Reads the child's stdout into buf until EOF or the deadline. */
size_t bench_slurp(int fd, char *buf, size_t cap, int64_t deadline)
{
    size_t len = 0;

    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - cli_mono_ns();
        ssize_t n;

        if (left <= 0 || poll(&p, 1, (int)(left / 1000000 + 1)) <= 0)
            break;
        n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    buf[len] = '\0';
    return len;
}

int bench_start(pid_t *pid, char *const argv[], int *out)
{
    int fds[2], err;

#if VOLLEY_HAVE_LINUX
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
#else /* as on macOS, which has no pipe2 */
    if (pipe(fds) < 0)
        return -errno;
    if ((err = cli_fd_flags(fds[0], false)) < 0 ||
        (err = cli_fd_flags(fds[1], false)) < 0) {
        close(fds[0]);
        close(fds[1]);
        return err;
    }
#endif
    err = bench_spawn(pid, argv, fds[1]);
    close(fds[1]);
    if (err < 0)
        close(fds[0]);
    else
        *out = fds[0];
    return err;
}

int bench_collect(pid_t pid, int fd, char *buf, size_t cap, int64_t deadline)
{
    bench_slurp(fd, buf, cap, deadline);
    close(fd);
    return bench_reap(pid, deadline);
}

/* ---- just enough JSON to read iperf3's report ---- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    return p;
}

static const char *skip_string(const char *p)
{
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1])
            p++;
    return *p == '"' ? p + 1 : NULL;
}

/* Past one value of any kind; NULL when malformed. Nesting is bounded by
 * the document, which is bounded by REPORT_MAX. */
static const char *skip_value(const char *p, unsigned depth)
{
    p = skip_ws(p);
    if (*p == '"')
        return skip_string(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';

        if (depth > 64)
            return NULL;
        p = skip_ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                p = *p == '"' ? skip_string(p) : NULL;
                if (!p || *(p = skip_ws(p)) != ':')
                    return NULL;
                p++;
            }
            p = skip_value(p, depth + 1);
            if (!p)
                return NULL;
            p = skip_ws(p);
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p = skip_ws(p + 1);
        }
    }
    while (*p && !strchr(",}] \n\r\t", *p))
        p++;
    return p;
}

/* The value of key in the object at obj, or NULL. */
const char *bench_json_member(const char *obj, const char *key)
{
    size_t klen = strlen(key);
    const char *p;

    if (!obj || *(obj = skip_ws(obj)) != '{')
        return NULL;
    p = skip_ws(obj + 1);
    while (*p == '"') {
        const char *name = p + 1, *end = skip_string(p);
        bool match;

        if (!end)
            return NULL;
        match = (size_t)(end - 1 - name) == klen && memcmp(name, key, klen) == 0;
        p = skip_ws(end);
        if (*p != ':')
            return NULL;
        p = skip_ws(p + 1);
        if (match)
            return p;
        p = skip_value(p, 0);
        if (!p)
            return NULL;
        p = skip_ws(p);
        if (*p != ',')
            return NULL;
        p = skip_ws(p + 1);
    }
    return NULL;
}

bool bench_json_number(const char *v, double *out)
{
    char *end;

    if (!v)
        return false;
    *out = strtod(v, &end);
    return end != v;
}

/* The text of the string value at v, into buf. */
void bench_json_string(const char *v, char *buf, size_t size)
{
    const char *end = v && *v == '"' ? skip_string(v) : NULL;
    size_t len = end ? (size_t)(end - v - 2) : 0;

    if (len >= size)
        len = size - 1;
    if (end)
        memcpy(buf, v + 1, len);
    buf[len] = '\0';
}
