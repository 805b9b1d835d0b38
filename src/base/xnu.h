/* SPDX-License-Identifier: MIT */
/* XNU's private batch calls, as the xnu backend and the system-call seam
 * see them. Apple ships no header for them: the struct below is XNU's own
 * layout (bsd/sys/socket_private.h), declared here under a name of ours so
 * that it can never clash with a system header. */
#ifndef VOLLEY_XNU_H
#define VOLLEY_XNU_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* One message of a sendmsg_x/recvmsg_x batch: a struct msghdr whose
 * msg_iovlen is an int (as on every BSD), plus msg_datalen, the bytes
 * recvmsg_x put in this message's buffers (ignored by sendmsg_x, which
 * sends what msg_iov holds). */
struct volley__msghdr_x {
    void *msg_name;
    socklen_t msg_namelen;
    struct iovec *msg_iov;
    int msg_iovlen;
    void *msg_control;
    socklen_t msg_controllen;
    int msg_flags;
    size_t msg_datalen;
};

/* Messages XNU takes per call (its somaxsendmsgx and somaxrecvmsgx): a
 * larger count is cut to this, and the rest is left to the next call. */
#define VOLLEY__XNU_BATCH 256u

#if !defined(__APPLE__) && VOLLEY_TESTING
/* Off Apple the calls exist only as the tests' emulation (tests/dgram/xnu_emul.c),
 * linked into the tests' copy of the library and never into the one that
 * ships. Same contract as XNU's: a count, or -1 with errno. */
ssize_t volley__xnu_emul_recvmsg_x(int s, struct volley__msghdr_x *m, unsigned cnt,
                                   int flags);
ssize_t volley__xnu_emul_sendmsg_x(int s, const struct volley__msghdr_x *m, unsigned cnt,
                                   int flags);
/* Called by the seam once it has read errno after a call: where the
 * emulation plays a signal handler that clobbers errno. */
void volley__xnu_emul_after_errno(void);
#endif

#endif /* VOLLEY_XNU_H */
