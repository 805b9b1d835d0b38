/* SPDX-License-Identifier: MIT */
/* volley_strerror: the text of a negative errno, the one way volley's
 * functions report errors. */
#include "base.h"

#include <string.h>

const char *volley_strerror(int err)
{
    if (err == 0)
        return "Success";
    if (err == INT32_MIN)
        return "Unknown error";
#if defined(__GLIBC__)
    /* glibc's strerror translates, allocates and is not thread-safe for
     * unknown values; the plain description is none of those. */
    const char *t = strerrordesc_np(err < 0 ? -err : err);
#else
    const char *t = strerror(err < 0 ? -err : err);
#endif
    return t ? t : "Unknown error";
}
