/* SPDX-License-Identifier: MIT */
/* The library's own version, compiled in from the header it was built
 * with, so a program can tell which library it runs with. */
#include "base.h"

const char *volley_version(void)
{
    return VOLLEY_VERSION_STRING;
}

unsigned volley_version_number(void)
{
    return VOLLEY_VERSION_NUMBER;
}
