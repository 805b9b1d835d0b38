/* SPDX-License-Identifier: MIT */
/* What every fuzz target shares: the entry point libFuzzer calls, UBSan's
 * options, and the checks that fail a run. Each target is one translation
 * unit that defines FUZZ_NAME (its messages start with it) before it
 * includes this. */
#ifndef VOLLEY_FUZZ_H
#define VOLLEY_FUZZ_H

#ifndef FUZZ_NAME
#error "define FUZZ_NAME before including fuzz.h"
#endif

#include "volley.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Undefined behaviour fails the run, even where the build left UBSan's
 * checks recoverable (report and continue). */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
    return "halt_on_error=1:print_stacktrace=1";
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Says what went wrong, after the target's name, and ends the run: the
 * fuzzer keeps the input that got here. */
__attribute__((format(printf, 1, 2), noreturn)) static inline void
fuzz_fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", FUZZ_NAME);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

#define REQUIRE(c)                                                                       \
    do {                                                                                 \
        if (!(c))                                                                        \
            fuzz_fail("%s:%d: %s", __FILE__, __LINE__, #c);                              \
    } while (0)

/* A negative return r of fn must be one of the n errors in set, those
 * volley.h lists for fn. */
static inline void check_err(const char *fn, int r, const int *set, size_t n)
{
    if (r >= 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (-r == set[i])
            return;
    fuzz_fail("%s returned %d (%s), not an error volley.h lists", fn, r,
              volley_strerror(r));
}
#define CHECK_ERR(fn, r, set) check_err(fn, r, set, COUNT(set))

/* Every counter only grows, from a to b. */
static inline void check_monotonic(const struct volley_stats *a,
                                   const struct volley_stats *b)
{
    const uint64_t *x = (const uint64_t *)a, *y = (const uint64_t *)b;

    for (size_t i = 0; i < sizeof *a / sizeof *x; i++)
        if (y[i] < x[i])
            fuzz_fail("stats counter %zu went from %llu to %llu", i,
                      (unsigned long long)x[i], (unsigned long long)y[i]);
}

#endif /* VOLLEY_FUZZ_H */
