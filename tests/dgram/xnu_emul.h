/* SPDX-License-Identifier: MIT */
/*
 * XNU's sendmsg_x/recvmsg_x emulated on Linux with sendmmsg/recvmmsg, so
 * that the xnu backend runs, and is tested, where its calls do not exist.
 * Linked into the tests' copy of the library only (volley_test, built
 * with VOLLEY_XNU_EMUL); the library that ships never contains it.
 *
 * Same contract as XNU's: the struct layout of src/base/xnu.h, at most 256
 * messages a call, a count of messages done or -1 with errno; sendmsg_x
 * may take a prefix without error, and with nothing taken fails with
 * EAGAIN; recvmsg_x sets each message's msg_datalen. The knobs below
 * inject XNU's known hazards; t_xnu_reset turns them all off.
 */
#ifndef VOLLEY_XNU_EMUL_H
#define VOLLEY_XNU_EMUL_H

#include <stdatomic.h>
#include <stdbool.h>

struct t_xnu_emul {
    /* sendmsg_x takes at most this many messages a call, returning the
     * prefix without error (0: no limit but XNU's 256) */
    atomic_uint send_prefix;
    /* the next this many calls (either kind) fail with EINTR, doing nothing */
    atomic_uint eintr;
    /* >= 0: the next sendmsg_x finds the send buffer full after this many
     * messages: returns them, and the call after fails with EAGAIN (with
     * 0: that call itself); then the buffer has room again */
    atomic_int full_after;
    /* non-zero: every call fails with this errno (ENOSYS: calls missing) */
    atomic_int fail_errno;
    /* non-zero: errno is overwritten with this right after the seam has
     * read it, as a signal handler that runs there would: any second read
     * of errno sees it instead of the call's error */
    atomic_int clobber_errno;
    /* recvmsg_x brings no control data (msg_controllen 0), as on releases
     * that do not support it */
    atomic_bool no_control;
    /* recvmsg_x reports one byte more in msg_datalen than arrived: a broken
     * call, which the backend's self-test must reject */
    atomic_bool bad_datalen;
    /* what happened */
    atomic_ulong send_calls, recv_calls, clobbered;
};
extern struct t_xnu_emul t_xnu;

/* Every knob off and the counters at 0 (full_after -1). */
void t_xnu_reset(void);

#endif
