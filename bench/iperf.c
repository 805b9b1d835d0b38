/*
 * The iperf3 row of `volley bench`: the iperf3 program, when it is
 * installed, over the same loopback, so that volley's numbers can be read
 * against the tool people already know. A one-off server and a UDP client
 * at unlimited rate, both child processes killed if they overstay; the
 * client's JSON report gives the receiver's counts.
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

#define IPERF3        "iperf3"
#define REPORT_MAX    (4u << 20)
#define CONNECT_TRIES 10
/* The socket buffers iperf3 is asked for (-w), as the volley receivers get. */
#define IPERF_WINDOW "8M"

bool bench_iperf3_found(void)
{
    const char *path = getenv("PATH");
    char dir[4096];

    while (path && *path) {
        size_t len = strcspn(path, ":");

        if (len > 0 && len < sizeof(dir) - sizeof(IPERF3) - 1) {
            memcpy(dir, path, len);
            snprintf(dir + len, sizeof(dir) - len, "/%s", IPERF3);
            if (access(dir, X_OK) == 0)
                return true;
        }
        path += len + (path[len] == ':');
    }
    return false;
}

/* A TCP port free on 127.0.0.1 now; iperf3 uses it for TCP and UDP. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

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
static int spawn(pid_t *pid, char *const argv[], int out_fd)
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
static int reap(pid_t pid, int64_t deadline)
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
static size_t slurp(int fd, char *buf, size_t cap, int64_t deadline)
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
static const char *member(const char *obj, const char *key)
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

static bool number(const char *v, double *out)
{
    char *end;

    if (!v)
        return false;
    *out = strtod(v, &end);
    return end != v;
}

/* The text of the string value at v, into buf. */
static void string_value(const char *v, char *buf, size_t size)
{
    const char *end = v && *v == '"' ? skip_string(v) : NULL;
    size_t len = end ? (size_t)(end - v - 2) : 0;

    if (len >= size)
        len = size - 1;
    if (end)
        memcpy(buf, v + 1, len);
    buf[len] = '\0';
}

static int parse_report(const char *json, struct bench_result *out, char *why,
                        size_t why_size)
{
    const char *end = member(json, "end"), *rx, *tx;
    double packets, lost, seconds, bytes, sent;

    if (member(json, "error")) {
        string_value(member(json, "error"), why, why_size);
        return -EIO;
    }
    /* iperf3 3.8 and later split the sums; older ones report the
     * receiver's counts in "sum". */
    rx = member(end, "sum_received");
    if (!rx)
        rx = member(end, "sum");
    tx = member(end, "sum_sent");
    if (!number(member(rx, "packets"), &packets) ||
        !number(member(rx, "lost_packets"), &lost) ||
        !number(member(rx, "seconds"), &seconds) ||
        !number(member(rx, "bytes"), &bytes)) {
        snprintf(why, why_size, "no receiver counts in iperf3's JSON report");
        return -EIO;
    }
    if (!number(member(tx, "packets"), &sent))
        sent = packets;
    memset(out, 0, sizeof(*out));
    out->path = BENCH_IPERF3;
    out->seconds = seconds;
    out->sent = (uint64_t)sent;
    out->received = packets > lost ? (uint64_t)(packets - lost) : 0;
    out->lost = out->sent > out->received ? out->sent - out->received : 0;
    if (seconds > 0) {
        out->dgrams_per_s = (double)out->received / seconds;
        out->gbit_per_s = bytes * 8 / seconds / 1e9;
    }
    out->tx_syscalls_per_dgram = out->rx_syscalls_per_dgram = -1;
    out->tx_cpu_ns_per_dgram = out->rx_cpu_ns_per_dgram = -1;
    return 0;
}

/* One client run: its report in buf. -ECONNREFUSED when the server was not
 * listening yet. */
static int run_client(char *const argv[], char *buf, int64_t deadline)
{
    int fds[2], status, err;
    pid_t pid;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    err = spawn(&pid, argv, fds[1]);
    close(fds[1]);
    if (err < 0) {
        close(fds[0]);
        return err;
    }
    slurp(fds[0], buf, REPORT_MAX, deadline);
    close(fds[0]);
    status = reap(pid, deadline);
    if (status < 0)
        return status;
    if (strstr(buf, "unable to connect") || strstr(buf, "Connection refused"))
        return -ECONNREFUSED;
    return 0;
}

int bench_iperf3_cell(size_t size, uint64_t dgrams, double seconds,
                      const struct bench_pin *pin, struct bench_result *out, char *why,
                      size_t why_size)
{
    char port_s[16], len_s[24], count_s[24], cpu_tx[16], cpu_rx[16];
    char *server[] = {IPERF3, "-s",   "-1", "-B",   "127.0.0.1",
                      "-p",   port_s, "-A", cpu_rx, NULL};
    char *client[] = {IPERF3, "-u",         "-c",     "127.0.0.1", "-p",   port_s,
                      "-b",   "0",          "-l",     len_s,       "-k",   count_s,
                      "-w",   IPERF_WINDOW, "--json", "-A",        cpu_tx, NULL};
    int64_t deadline = cli_mono_ns() + (int64_t)((4 * seconds + 3) * 1e9);
    int port = free_port(), err = 0;
    char *buf;
    pid_t srv;

    if (port < 0) {
        snprintf(why, why_size, "no free port: %s", strerror(-port));
        return port;
    }
    snprintf(port_s, sizeof(port_s), "%d", port);
    snprintf(len_s, sizeof(len_s), "%zu", size);
    snprintf(count_s, sizeof(count_s), "%llu", (unsigned long long)dgrams);
    snprintf(cpu_tx, sizeof(cpu_tx), "%d", pin ? pin->tx : -1);
    snprintf(cpu_rx, sizeof(cpu_rx), "%d", pin ? pin->rx : -1);
    if (!pin || pin->rx < 0)
        server[7] = NULL;
    if (!pin || pin->tx < 0)
        client[15] = NULL;
    buf = malloc(REPORT_MAX);
    if (!buf)
        return -ENOMEM;
    err = spawn(&srv, server, -1);
    if (err < 0) {
        snprintf(why, why_size, "cannot start iperf3: %s", strerror(-err));
        free(buf);
        return err;
    }
    /* The server needs a moment to listen; a refused client is retried
     * while the server runs (kill(pid, 0) is safe: it is not reaped yet). */
    for (int i = 0; i < CONNECT_TRIES; i++) {
        usleep(20000u << (i < 3 ? i : 3));
        err = run_client(client, buf, deadline);
        if (err != -ECONNREFUSED || kill(srv, 0) != 0)
            break;
    }
    if (err == 0)
        err = parse_report(buf, out, why, why_size);
    else if (err == -ETIMEDOUT)
        snprintf(why, why_size, "iperf3 did not finish in %.0f s", 4 * seconds + 3);
    else
        snprintf(why, why_size, "iperf3 client: %s", strerror(-err));
    /* A one-off server leaves after its test; one without a test is told to. */
    if (err != 0)
        kill(srv, SIGTERM);
    reap(srv, cli_mono_ns() + 1000000000LL);
    if (err == 0)
        out->size = size;
    free(buf);
    return err;
}
