/* SPDX-License-Identifier: MIT */
/* Listen, dial and accept: the sockets a loop makes or is given, their
 * options, and what the backends report of accepts and connects. */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define UNIX_PREFIX "unix:"

/* "unix:/path" or "unix:@name" (Linux's abstract names) into c->un: 0,
 * -EINVAL (no path), -ENAMETOOLONG, -ENOMEM. */
static int unix_addr(volley_conn *c, const char *path)
{
    bool abstract = path[0] == '@';
    size_t n = strlen(path);
    if (n == 0 || (abstract && n == 1))
        return -EINVAL;
    /* a path needs its NUL; an abstract name is its bytes after a NUL */
    if (n + !abstract > sizeof((struct sockaddr_un *)0)->sun_path)
        return -ENAMETOOLONG;
    struct volley__unix *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->sa.sun_family = AF_UNIX;
    memcpy(u->sa.sun_path, path, n);
    if (abstract)
        u->sa.sun_path[0] = '\0';
    u->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + !abstract);
    c->un = u;
    return 0;
}

static int sock_setup(volley_conn *c, const char *addr, struct volley_addr *a)
{
    if (!addr)
        return -EINVAL;
    int r;
    if (strncmp(addr, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0) {
        r = unix_addr(c, addr + strlen(UNIX_PREFIX));
        memset(a, 0, sizeof *a);
        a->sa.sa_family = AF_UNIX;
    } else {
        r = volley_addr_parse(a, addr);
    }
    if (r < 0)
        return r;
    volley__conn_loop(c)->st.syscalls++;
    r = volley__sys_socket(a->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                           0);
    if (r < 0)
        return r;
    c->fd = r;
    return 0;
}

const struct sockaddr *volley__conn_peer_sa(const volley_conn *c, socklen_t *len)
{
    if (c->un) {
        *len = c->un->len;
        return (const struct sockaddr *)&c->un->sa;
    }
    *len = volley_addr_len(&c->peer);
    return &c->peer.sa;
}

/* Whether the socket file at c's path is a crashed server's: a socket
 * nobody listens on any more. Anything else (a live server, a file that
 * is no socket) is left alone. */
static bool unix_stale(volley_conn *c)
{
    struct stat st;
    volley_loop *l = volley__conn_loop(c);
    l->st.syscalls++;
    if (volley__sys_stat(c->un->sa.sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return false;
    l->st.syscalls += 3;
    int fd = volley__sys_socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int r = volley__sys_connect(fd, (const struct sockaddr *)&c->un->sa, c->un->len);
    volley__sys_close(fd);
    return r == -ECONNREFUSED;
}

/* Bind c's socket to its local path or name. A path whose socket file a
 * crashed server left behind is taken over; the file made is noted, so
 * that the listener's close removes it (and only it). */
static int unix_bind(volley_conn *c)
{
    struct volley__unix *u = c->un;
    volley_loop *l = volley__conn_loop(c);
    bool path = u->sa.sun_path[0] != '\0';
    l->st.syscalls++;
    int r = volley__sys_bind(c->fd, (const struct sockaddr *)&u->sa, u->len);
    if (r == -EADDRINUSE && path && unix_stale(c)) {
        l->st.syscalls += 2;
        (void)volley__sys_unlink(u->sa.sun_path);
        r = volley__sys_bind(c->fd, (const struct sockaddr *)&u->sa, u->len);
    }
    if (r < 0 || !path)
        return r;
    struct stat st;
    l->st.syscalls++;
    if (volley__sys_stat(u->sa.sun_path, &st) == 0) {
        u->made = true;
        u->dev = st.st_dev;
        u->ino = st.st_ino;
    }
    return 0;
}

void volley__conn_unlink(volley_conn *c)
{
    struct volley__unix *u = c->un;
    if (!u || !u->made) /* (only a listener makes a file) */
        return;
    u->made = false;
    struct stat st;
    volley__conn_loop(c)->st.syscalls++;
    if (volley__sys_stat(u->sa.sun_path, &st) == 0 && st.st_dev == u->dev &&
        st.st_ino == u->ino) {
        volley__conn_loop(c)->st.syscalls++;
        (void)volley__sys_unlink(u->sa.sun_path);
    }
}

/* c's local (or peer) address into *out, v4-mapped ones as plain IPv4 as
 * everywhere in volley: 0 or a negative errno (*out unchanged). */
static int sock_name(volley_conn *c, bool peer, struct volley_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    volley__conn_loop(c)->st.syscalls++;
    int r = peer ? volley__sys_getpeername(c->fd, (struct sockaddr *)&ss, &len)
                 : volley__sys_getsockname(c->fd, (struct sockaddr *)&ss, &len);
    if (r == 0)
        volley__addr_from_sockaddr(out, (struct sockaddr *)&ss, len);
    if (r == 0 && ss.ss_family == AF_UNIX)
        out->sa.sa_family = AF_UNIX; /* no room for its path: the family says */
    return r;
}

static int setopt(volley_conn *c, int level, int opt, int v)
{
    volley__conn_loop(c)->st.syscalls++;
    return volley__sys_setsockopt(c->fd, level, opt, &v, sizeof v);
}

static void conn_abandon(volley_conn *c)
{
    volley__conn_unlink(c);
    if (c->fd >= 0)
        volley__sys_close(c->fd);
    volley__conn_release(c);
}

/* What listen and dial share: the checks, a connection with its options
 * and a socket for addr (the local address of a listener, the peer of a
 * dial), in *cp. */
static int conn_make(volley_loop *l, volley_conn **out, const char *addr,
                     const struct volley_conn_opts *o, int *backlog, volley_conn **cp)
{
    if (!l || !out)
        return -EINVAL;
    *out = NULL;
    if (l->closing)
        return -EINVAL;
    volley_conn *c = volley__conn_new(l);
    if (!c)
        return -ENOMEM;
    int r = volley__conn_opts(c, o, backlog);
    if (r == 0)
        r = sock_setup(c, addr, backlog ? &c->local : &c->peer);
    if (r < 0) {
        conn_abandon(c);
        return r;
    }
    *cp = c;
    return 0;
}

int volley_listen(volley_loop *l, volley_conn **out, const char *addr,
                  const struct volley_conn_opts *o, void *user)
{
    volley_conn *c;
    int backlog;
    int r = conn_make(l, out, addr, o, &backlog, &c);
    if (r < 0)
        return r;
    c->flags |= VOLLEY__C_LISTENER;
    c->user = user;
    /* so that a restarted server binds its port while connections of its
     * last run wait in TIME_WAIT, as every TCP server does */
    if (!(c->o->flags & VOLLEY_CONN_NO_REUSEADDR))
        r = setopt(c, SOL_SOCKET, SO_REUSEADDR, 1);
    if (r == 0 && (c->o->flags & VOLLEY_CONN_REUSEPORT))
        r = setopt(c, SOL_SOCKET, SO_REUSEPORT, 1);
    if (r == 0 && c->local.sa.sa_family == AF_INET6)
        r = setopt(c, IPPROTO_IPV6, IPV6_V6ONLY, !!(c->o->flags & VOLLEY_CONN_V6ONLY));
    if (r == 0 && c->un) {
        r = unix_bind(c);
    } else if (r == 0) {
        l->st.syscalls++;
        r = volley__sys_bind(c->fd, &c->local.sa, volley_addr_len(&c->local));
    }
    if (r == 0) {
        l->st.syscalls++;
        r = volley__sys_listen(c->fd, backlog);
    }
    if (r == 0)
        r = sock_name(c, false, &c->local);
    if (r == 0)
        r = l->ops->accept(c, true);
    if (r < 0) {
        conn_abandon(c);
        return r;
    }
    *out = c;
    return 0;
}

int volley_listen_fd(volley_loop *l, volley_conn **out, int fd,
                     const struct volley_conn_opts *o, void *user)
{
    if (!l || !out)
        return -EINVAL;
    *out = NULL;
    if (l->closing)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    int type = 0, listening = 0;
    socklen_t len = sizeof type;
    l->st.syscalls += 2;
    int r = volley__sys_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
    if (r == -EBADF || r == -ENOTSOCK)
        return r;
    if (r == 0 && type != SOCK_STREAM)
        return -EPROTOTYPE;
    len = sizeof listening;
    if (r == 0)
        r = volley__sys_getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
    if (r < 0)
        return r;
    if (!listening)
        return -EINVAL;
    volley_conn *c = volley__conn_new(l);
    if (!c)
        return -ENOMEM;
    c->fd = fd;
    r = volley__conn_opts(c, o, NULL);
    if (r == 0)
        r = sock_name(c, false, &c->local);
    if (r == 0 && c->local.sa.sa_family != AF_INET && c->local.sa.sa_family != AF_INET6 &&
        c->local.sa.sa_family != AF_UNIX)
        r = -EAFNOSUPPORT;
    if (r == 0) {
        l->st.syscalls++;
        int fl = volley__sys_fcntl(fd, F_GETFL, 0);
        r = fl < 0 ? fl : 0;
        if (r == 0 && !(fl & O_NONBLOCK)) {
            l->st.syscalls++;
            r = volley__sys_fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        }
    }
    c->flags |= VOLLEY__C_LISTENER;
    c->user = user;
    if (r == 0)
        r = l->ops->accept(c, true);
    if (r < 0) {
        c->fd = -1; /* the caller's still */
        volley__conn_release(c);
        return r;
    }
    *out = c;
    return 0;
}

/* TCP_NODELAY unless the options leave Nagle on (or it is no TCP socket). */
static int nodelay(volley_conn *c, int family)
{
    if ((c->o->flags & VOLLEY_CONN_NO_NODELAY) || family == AF_UNIX)
        return 0;
    return setopt(c, IPPROTO_TCP, TCP_NODELAY, 1);
}

int volley_dial(volley_loop *l, volley_conn **out, const char *addr,
                const struct volley_conn_opts *o, int timeout_ms, void *user)
{
    volley_conn *c;
    int r = conn_make(l, out, addr, o, NULL, &c);
    if (r < 0)
        return r;
    if (!c->un && volley_addr_port(&c->peer) == 0)
        r = -EINVAL;
    if (r == 0)
        r = nodelay(c, c->peer.sa.sa_family);
    if (r < 0) {
        conn_abandon(c);
        return r;
    }
    c->user = user;
    c->state = VOLLEY__CS_CONNECTING;
    c->dl_connect = timeout_ms > 0 ? volley__deadline_in(timeout_ms) : 0;
    volley__conn_timer_sync(c);
    r = l->ops->connect(c);
    if (r < 0) {
        conn_abandon(c);
        return r;
    }
    *out = c;
    return 0;
}

void volley__loop_accepted(volley_conn *lis, int fd)
{
    volley_loop *l = volley__conn_loop(lis);
    if (lis->state != VOLLEY__CS_OPEN || l->closing) {
        volley__sys_close(fd);
        return;
    }
    volley_conn *c = volley__conn_new(l);
    if (!c) {
        l->st.accept_errors++;
        volley__sys_close(fd); /* the peer sees the socket close */
        return;
    }
    c->fd = fd;
    c->user = lis->user;
    c->listener = lis->slot;
    if (volley__conn_opts_from(c, lis) < 0 || nodelay(c, lis->local.sa.sa_family) < 0) {
        /* counted as a failed accept: the peer sees the socket close */
        l->st.accept_errors++;
        conn_abandon(c);
        return;
    }
    (void)sock_name(c, true, &c->peer);
    (void)sock_name(c, false, &c->local);
    l->st.accepted++;
    volley__conn_ready(c, VOLLEY_EV_ACCEPTED);
    volley__conn_recv_sync(c);
}

void volley__loop_accept_failed(volley_conn *lis, int err)
{
    volley__conn_loop(lis)->st.accept_errors++;
    if (err != -EMFILE && err != -ENFILE && err != -ENOBUFS && err != -ENOMEM)
        return;
    if (lis->dl_want || volley__conn_loop(lis)->ops->accept(lis, false) < 0)
        return; /* resting already, or it cannot: it goes on as it is */
    lis->dl_want = volley__deadline_in(VOLLEY__ACCEPT_PAUSE_MS);
    volley__conn_timer_sync(lis);
}

void volley__conn_connected(volley_conn *c, int err)
{
    volley_loop *l = volley__conn_loop(c);
    if (c->state != VOLLEY__CS_CONNECTING)
        return;
    if (err < 0) {
        volley__conn_end(c, err == -ECANCELED ? -ETIMEDOUT : err, false);
        return;
    }
    c->dl_connect = 0;
    volley__conn_timer_sync(c);
    (void)sock_name(c, false, &c->local);
    l->st.dialed++;
    if (c->flags & VOLLEY__C_CLOSED_BY_US) {
        c->state = VOLLEY__CS_FLUSHING; /* closed while connecting: flush, then FIN */
    } else {
        c->state = VOLLEY__CS_OPEN;
        volley__conn_ready(c, VOLLEY_EV_CONNECTED);
        if (c->flags & VOLLEY__C_RX_LENT)
            l->ops->recv_into(c); /* asked for while connecting */
    }
    volley__conn_recv_sync(c);
    volley__conn_flush_later(c);
}
