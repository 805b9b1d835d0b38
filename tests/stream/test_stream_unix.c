/* SPDX-License-Identifier: MIT */
/* Local stream sockets on both loop backends: volley_listen and
 * volley_dial take "unix:/path" and Linux's abstract "unix:@name" with the
 * events and guarantees of TCP; a socket file a crashed server left is
 * taken over, a live server's or a file that is no socket is not; the
 * listener's close removes the file it made, and only that file. */
#include "tstream.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char dir[64];

/* A fresh directory for the case's socket files (removed by the case). */
static void dir_make(void)
{
    snprintf(dir, sizeof dir, "/tmp/volley-unix-XXXXXX"); /* mkdtemp's template */
    T_ASSERT(mkdtemp(dir) != NULL);
}

static const char *in_dir(const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "unix:%s/%s", dir, name);
    return buf;
}

static bool exists(const char *addr)
{
    struct stat st;
    return stat(addr + strlen("unix:"), &st) == 0;
}

/* addr ("unix:/path") as a sockaddr_un. */
static struct sockaddr_un un_of(const char *addr)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    const char *path = addr + strlen("unix:");
    T_ASSERT(strlen(path) < sizeof un.sun_path);
    memcpy(un.sun_path, path, strlen(path) + 1);
    return un;
}

/* A plain AF_UNIX stream socket bound to un (its file made). */
static int plain_bound(const struct sockaddr_un *un)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    T_ASSERT(fd >= 0 && bind(fd, (const struct sockaddr *)un, sizeof *un) == 0);
    return fd;
}

/* A connection over addr, then 256 KiB each way, every byte checked. */
static void exchange(const char *addr)
{
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_conn *ln, *cli, *srv;
    T_OK(volley_listen(l, &ln, addr, NULL, &ln_user));
    T_OK(volley_dial(l, &cli, addr, NULL, 5000, &cli_user));
    srv = TAKE(l, VOLLEY_EV_ACCEPTED, NULL).conn;
    TAKE(l, VOLLEY_EV_CONNECTED, cli);
    struct volley_addr a;
    T_OK(volley_conn_addr(srv, &a, NULL));
    T_EXPECT(a.sa.sa_family, AF_UNIX);
    T_OK(volley_conn_addr(ln, &a, NULL));
    T_EXPECT(a.sa.sa_family, AF_UNIX);
    static uint8_t buf[256 * KiB];
    gen(1, 0, buf, sizeof buf);
    T_EXPECT(volley_conn_write(cli, buf, sizeof buf), (ssize_t)sizeof buf);
    read_exact(l, srv, buf, sizeof buf);
    T_STREAM(buf, sizeof buf, 1, 0, "client to server");
    gen(2, 0, buf, sizeof buf);
    T_EXPECT(volley_conn_write(srv, buf, sizeof buf), (ssize_t)sizeof buf);
    read_exact(l, cli, buf, sizeof buf);
    T_STREAM(buf, sizeof buf, 2, 0, "server to client");
    close_both(l, cli, srv);
    T_EXPECT(close_wait(l, ln), 0);
    volley_loop_close(l, 0);
}

static int case_path(void)
{
    dir_make();
    char addr[128];
    in_dir("s", addr, sizeof addr);
    exchange(addr);
    T_CHECK(!exists(addr), "the listener's close left %s", addr);
    T_ASSERT(rmdir(dir) == 0);
    return 0;
}

static int case_abstract(void)
{
    char addr[64];
    snprintf(addr, sizeof addr, "unix:@volley-test-%d", (int)getpid());
    exchange(addr);
    return 0;
}

/* A socket file nobody listens on (a crashed server's) is taken over; a
 * live server's is not (-EADDRINUSE, and it keeps serving); a file that
 * is no socket is not touched. */
static int case_stale(void)
{
    dir_make();
    char addr[128];
    in_dir("s", addr, sizeof addr);
    struct sockaddr_un un = un_of(addr);
    close(plain_bound(&un)); /* the file stays: a crashed server's */
    T_ASSERT(exists(addr));
    exchange(addr);

    volley_loop *l = loop_new();
    volley_conn *ln, *again;
    T_OK(volley_listen(l, &ln, addr, NULL, NULL));
    T_EXPECT(volley_listen(l, &again, addr, NULL, NULL), -EADDRINUSE);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    T_ASSERT(c >= 0 && connect(c, (struct sockaddr *)&un, sizeof un) == 0);
    TAKE(l, VOLLEY_EV_ACCEPTED, NULL);
    close(c);
    T_EXPECT(close_wait(l, ln), 0);

    char file[128];
    in_dir("f", file, sizeof file);
    FILE *f = fopen(file + strlen("unix:"), "w");
    T_ASSERT(f && fclose(f) == 0);
    T_EXPECT(volley_listen(l, &again, file, NULL, NULL), -EADDRINUSE);
    T_CHECK(exists(file), "a file that is no socket was removed");
    T_ASSERT(unlink(file + strlen("unix:")) == 0);
    volley_loop_close(l, 0);
    T_ASSERT(rmdir(dir) == 0);
    return 0;
}

/* The listener's close removes the file it made, not one put there since. */
static int case_unlink_own(void)
{
    dir_make();
    char addr[128];
    in_dir("s", addr, sizeof addr);
    volley_loop *l = loop_new();
    volley_conn *ln;
    T_OK(volley_listen(l, &ln, addr, NULL, NULL));
    T_ASSERT(unlink(addr + strlen("unix:")) == 0);
    FILE *f = fopen(addr + strlen("unix:"), "w"); /* another's file now */
    T_ASSERT(f && fclose(f) == 0);
    T_EXPECT(close_wait(l, ln), 0);
    T_CHECK(exists(addr), "the listener removed a file it did not make");
    T_ASSERT(unlink(addr + strlen("unix:")) == 0);
    volley_loop_close(l, 0);
    T_ASSERT(rmdir(dir) == 0);
    return 0;
}

/* Bad local addresses, and a dial nobody answers. */
static int case_bad_input(void)
{
    volley_loop *l = loop_new();
    volley_conn *c;
    T_EXPECT(volley_listen(l, &c, "unix:", NULL, NULL), -EINVAL);
    T_EXPECT(volley_listen(l, &c, "unix:@", NULL, NULL), -EINVAL);
    T_EXPECT(volley_dial(l, &c, "unix:", NULL, 1000, NULL), -EINVAL);
    char longp[200];
    memset(longp, 'a', sizeof longp);
    memcpy(longp, "unix:/", 6);
    longp[sizeof longp - 1] = '\0';
    T_EXPECT(volley_listen(l, &c, longp, NULL, NULL), -ENAMETOOLONG);
    T_EXPECT(volley_dial(l, &c, longp, NULL, 1000, NULL), -ENAMETOOLONG);
    T_EXPECT(volley_listen(l, &c, "unix:/nonexistent-dir-volley/s", NULL, NULL), -ENOENT);
    /* nobody listens there: the dial ends with CLOSED, as a refused one */
    evq_n = 0;
    int r = volley_dial(l, &c, "unix:/nonexistent-dir-volley/s", NULL, 1000, NULL);
    if (r == 0) {
        struct volley_event e = TAKE(l, VOLLEY_EV_CLOSED, c);
        T_CHECK(e.err == -ENOENT, "CLOSED err %d (%s), want -ENOENT", e.err,
                volley_strerror(e.err));
    } else {
        T_EXPECT(r, -ENOENT);
    }
    volley_loop_close(l, 0);
    return 0;
}

/* A socket made elsewhere and served with volley_listen_fd. */
static int case_listen_fd(void)
{
    dir_make();
    char addr[128];
    in_dir("s", addr, sizeof addr);
    struct sockaddr_un un = un_of(addr);
    int fd = plain_bound(&un);
    T_ASSERT(listen(fd, 16) == 0);
    evq_n = 0;
    volley_loop *l = loop_new();
    volley_conn *ln, *cli;
    T_OK(volley_listen_fd(l, &ln, fd, NULL, NULL));
    T_OK(volley_dial(l, &cli, addr, NULL, 5000, NULL));
    TAKE(l, VOLLEY_EV_ACCEPTED, NULL);
    TAKE(l, VOLLEY_EV_CONNECTED, cli);
    T_EXPECT(volley_conn_abort(cli), 0);
    T_EXPECT(close_wait(l, ln), 0);
    T_CHECK(exists(addr), "volley_listen_fd's close removed a file volley did not make");
    volley_loop_close(l, 0);
    T_ASSERT(unlink(addr + strlen("unix:")) == 0);
    T_ASSERT(rmdir(dir) == 0);
    return 0;
}

static const struct t_loop_case defs[] = {
    {"path", case_path},           {"abstract", case_abstract},
    {"stale", case_stale},         {"unlink_own", case_unlink_own},
    {"bad_input", case_bad_input}, {"listen_fd", case_listen_fd},
};

int main(int argc, char **argv)
{
    struct t_run how = {.flags = T_FORK, .case_s = 60, .total_s = 200};
    return t_main_loops(defs, T_COUNT(defs), &how, argc, argv);
}
