/* SPDX-License-Identifier: MIT */
/* The version: the library says what its header says, in both forms, and
 * the macros agree with each other. */
#include "t.h"

#include <stdio.h>

static int string_and_number(void)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", VOLLEY_VERSION_MAJOR, VOLLEY_VERSION_MINOR,
             VOLLEY_VERSION_PATCH);
    T_CHECK(strcmp(VOLLEY_VERSION_STRING, want) == 0, "VOLLEY_VERSION_STRING %s, want %s",
            VOLLEY_VERSION_STRING, want);
    T_ASSERT(volley_version() != NULL);
    T_CHECK(strcmp(volley_version(), want) == 0, "volley_version() %s, want %s",
            volley_version(), want);
    unsigned major, minor, patch;
    T_ASSERT(sscanf(volley_version(), "%u.%u.%u", &major, &minor, &patch) == 3);
    T_EQ(volley_version_number(), major * 10000 + minor * 100 + patch);
    T_EQ(volley_version_number(), (unsigned)VOLLEY_VERSION_NUMBER);
    /* the number orders versions: each part below 100 */
    T_ASSERT(minor < 100 && patch < 100);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {T_CASE(string_and_number)};
    struct t_run how = {.total_s = 10};
    return t_main(cases, T_COUNT(cases), &how, argc, argv);
}
