/* SPDX-License-Identifier: MIT */
/* XNU's batch calls emulated with sendmmsg/recvmmsg (see xnu_emul.h). */
#include "xnu_emul.h"

#include "dgram/dgram.h"
#include "base/xnu.h"

#include <errno.h>
#include <string.h>

struct t_xnu_emul t_xnu = {.full_after = -1};

void t_xnu_reset(void)
{
    atomic_store(&t_xnu.send_prefix, 0);
    atomic_store(&t_xnu.eintr, 0);
    atomic_store(&t_xnu.full_after, -1);
    atomic_store(&t_xnu.fail_errno, 0);
    atomic_store(&t_xnu.clobber_errno, 0);
    atomic_store(&t_xnu.no_control, false);
    atomic_store(&t_xnu.bad_datalen, false);
    atomic_store(&t_xnu.send_calls, 0);
    atomic_store(&t_xnu.recv_calls, 0);
    atomic_store(&t_xnu.clobbered, 0);
}

static ssize_t fail(int err)
{
    errno = err;
    return -1;
}

/* The injected failures both calls share, before anything is done:
 * 0, or the errno to fail with. */
static int injected(void)
{
    int err = atomic_load(&t_xnu.fail_errno);
    if (err)
        return err;
    unsigned n = atomic_load(&t_xnu.eintr);
    while (n && !atomic_compare_exchange_weak(&t_xnu.eintr, &n, n - 1))
        ;
    return n ? EINTR : 0;
}

static void to_mmsg(struct mmsghdr *mm, const struct volley__msghdr_x *m)
{
    memset(mm, 0, sizeof *mm);
    mm->msg_hdr.msg_name = m->msg_name;
    mm->msg_hdr.msg_namelen = m->msg_namelen;
    mm->msg_hdr.msg_iov = m->msg_iov;
    mm->msg_hdr.msg_iovlen = (size_t)m->msg_iovlen;
    mm->msg_hdr.msg_control = m->msg_control;
    mm->msg_hdr.msg_controllen = m->msg_controllen;
}

/* What both calls check first, after counting the call: the injected
 * failure, then their arguments; *cnt capped as XNU caps it. 0 or the
 * errno to fail with. */
static int begin(const struct volley__msghdr_x *m, unsigned *cnt)
{
    int err = injected();
    if (err)
        return err;
    if (!m || *cnt == 0)
        return EINVAL;
    if (*cnt > VOLLEY__XNU_BATCH)
        *cnt = VOLLEY__XNU_BATCH;
    return 0;
}

ssize_t volley__xnu_emul_sendmsg_x(int s, const struct volley__msghdr_x *m, unsigned cnt,
                                   int flags)
{
    struct mmsghdr mm[VOLLEY__XNU_BATCH];
    atomic_fetch_add(&t_xnu.send_calls, 1);
    int err = begin(m, &cnt);
    if (err)
        return fail(err);
    unsigned prefix = atomic_load(&t_xnu.send_prefix);
    if (prefix && cnt > prefix)
        cnt = prefix;
    /* The buffer fills after `full` messages: they go, and the next call
     * finds it full (EAGAIN), as XNU's would. */
    int full = atomic_exchange(&t_xnu.full_after, -1);
    if (full == 0)
        return fail(EAGAIN);
    if (full > 0 && cnt > (unsigned)full) {
        cnt = (unsigned)full;
        atomic_store(&t_xnu.full_after, 0);
    }
    for (unsigned i = 0; i < cnt; i++)
        to_mmsg(&mm[i], &m[i]);
    /* sendmmsg shares the contract: a prefix is a count, -1 only when
     * nothing went, errno as the kernel set it */
    return sendmmsg(s, mm, cnt, flags);
}

ssize_t volley__xnu_emul_recvmsg_x(int s, struct volley__msghdr_x *m, unsigned cnt,
                                   int flags)
{
    struct mmsghdr mm[VOLLEY__XNU_BATCH];
    atomic_fetch_add(&t_xnu.recv_calls, 1);
    int err = begin(m, &cnt);
    if (err)
        return fail(err);
    for (unsigned i = 0; i < cnt; i++)
        to_mmsg(&mm[i], &m[i]);
    /* XNU returns once one message is in, as MSG_WAITFORONE does */
    if (!(flags & MSG_DONTWAIT))
        flags |= MSG_WAITFORONE;
    int r = recvmmsg(s, mm, cnt, flags, NULL);
    if (r < 0)
        return r;
    bool no_ctrl = atomic_load(&t_xnu.no_control);
    bool bad = atomic_load(&t_xnu.bad_datalen);
    for (int i = 0; i < r; i++) {
        m[i].msg_namelen = mm[i].msg_hdr.msg_namelen;
        m[i].msg_controllen = no_ctrl ? 0 : (socklen_t)mm[i].msg_hdr.msg_controllen;
        m[i].msg_flags = mm[i].msg_hdr.msg_flags & ~(no_ctrl ? MSG_CTRUNC : 0);
        m[i].msg_datalen = mm[i].msg_len + bad;
    }
    return r;
}

void volley__xnu_emul_after_errno(void)
{
    int e = atomic_load(&t_xnu.clobber_errno);
    if (e) {
        errno = e;
        atomic_fetch_add(&t_xnu.clobbered, 1);
    }
}
