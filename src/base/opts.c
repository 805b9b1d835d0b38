/* SPDX-License-Identifier: MIT */
/* Options and the environment: every field of struct volley_opts checked
 * against its documented range, defaults filled in, and VOLLEY_BACKEND /
 * VOLLEY_DISABLE read in one place. Backend names live here too. */
#include "base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned bit;
} feature_names[] = {
    {"gso", VOLLEY_F_GSO},
    {"gro", VOLLEY_F_GRO},
    {"pktinfo", VOLLEY_F_PKTINFO},
    {"ecn", VOLLEY_F_ECN},
    {"timestamp", VOLLEY_F_TIMESTAMP},
    {"rxq_ovfl", VOLLEY_F_RXQ_OVFL},
    {"recverr", VOLLEY_F_RECVERR},
    {"gro_segments", VOLLEY_F_GRO_SEGMENTS},
    {"dontfrag", VOLLEY_F_DONTFRAG},
    {"mmsg", VOLLEY__F_NO_MMSG},
    {"uring", VOLLEY__F_NO_URING},
    {"xnu", VOLLEY__F_NO_XNU},
};

/* Every backend's name: the one table behind VOLLEY_BACKEND,
 * volley_backend_parse and so the tool's --backend and the tests. */
static const struct {
    const char *name;
    unsigned id;
} backend_names[] = {
    {"auto", VOLLEY_BACKEND_AUTO}, {"scalar", VOLLEY_BACKEND_SCALAR},
    {"mmsg", VOLLEY_BACKEND_MMSG}, {"uring", VOLLEY_BACKEND_URING},
    {"pair", VOLLEY_BACKEND_PAIR}, {"epoll", VOLLEY_BACKEND_EPOLL},
    {"xnu", VOLLEY_BACKEND_XNU},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* What the environment asks of every socket. */
struct env {
    unsigned backend; /* VOLLEY_BACKEND_*; AUTO when unset */
    unsigned disable; /* VOLLEY_F_* and F_NO_* */
};

int volley_backend_parse(const char *name)
{
    for (size_t i = 0; name && i < COUNT(backend_names); i++)
        if (!strcmp(name, backend_names[i].name))
            return (int)backend_names[i].id;
    return -EINVAL;
}

/* VOLLEY_BACKEND: 0, or -EINVAL with the reason in msg. It picks among the
 * kernel backends: a pair is never made by volley_open. */
static int env_backend(struct env *e, char *msg, size_t size)
{
    const char *v = getenv("VOLLEY_BACKEND");
    if (!v || !*v)
        return 0;
    int id = volley_backend_parse(v);
    if (id >= 0 && id != VOLLEY_BACKEND_PAIR) {
        e->backend = (unsigned)id;
        return 0;
    }
    if (size)
        snprintf(msg, size,
                 "VOLLEY_BACKEND=\"%s\": unknown backend (use auto, scalar, mmsg, "
                 "uring, xnu or epoll)",
                 v);
    return -EINVAL;
}

/* VOLLEY_DISABLE=gso,gro,...: 0, or -EINVAL naming the unknown item. */
static int env_disable(struct env *e, char *msg, size_t size)
{
    const char *all = getenv("VOLLEY_DISABLE");
    for (const char *v = all; v && *v;) {
        size_t len = strcspn(v, ",");
        bool found = len == 0; /* empty items are harmless */
        for (size_t i = 0; i < COUNT(feature_names) && !found; i++) {
            if (strlen(feature_names[i].name) == len &&
                !strncmp(v, feature_names[i].name, len)) {
                e->disable |= feature_names[i].bit;
                found = true;
            }
        }
        if (!found) {
            if (size)
                snprintf(msg, size,
                         "VOLLEY_DISABLE=\"%s\": unknown name \"%.*s\" (use gso, gro, "
                         "pktinfo, ecn, timestamp, rxq_ovfl, recverr, gro_segments, "
                         "dontfrag, mmsg, uring or xnu)",
                         all, (int)len, v);
            return -EINVAL;
        }
        v += len;
        if (*v == ',')
            v++;
    }
    return 0;
}

static int env_read(struct env *e, char *msg, size_t size)
{
    memset(e, 0, sizeof *e);
    if (size)
        msg[0] = '\0';
    int r = env_backend(e, msg, size);
    return r < 0 ? r : env_disable(e, msg, size);
}

int volley_env_check(char *msg, size_t size)
{
    struct env e;
    if (!msg && size)
        return -EINVAL;
    return env_read(&e, msg, size);
}

/* Every field's range as the header documents it. */
static bool opts_valid(const struct volley_opts *o)
{
    return (o->backend <= VOLLEY_BACKEND_URING || o->backend == VOLLEY_BACKEND_XNU) &&
           !((o->enable | o->disable) & ~VOLLEY__F_ALL) &&
           !(o->pace_flags & ~VOLLEY_PACE_KERNEL) &&
           o->pace_rate_bps <= VOLLEY__PACE_MAX_BPS && o->rx_batch <= VOLLEY_BATCH_MAX &&
           o->rx_slot_size <= 65536 && o->rcvbuf >= 0 && o->sndbuf >= 0 &&
           o->pair_capacity <= VOLLEY__PAIR_CAPACITY_MAX && o->pair_drop_ppm <= 1000000 &&
           o->pair_dup_ppm <= 1000000 && o->pair_reorder_ppm <= 1000000 &&
           o->rx_ring_bufs <= VOLLEY__RING_BUFS_MAX &&
           (o->tx_arena == 0 ||
            (o->tx_arena >= VOLLEY__ARENA_MIN && o->tx_arena <= VOLLEY__ARENA_MAX)) &&
           o->pair_reserved == 0 && o->uring_reserved == 0;
}

int volley__opts_in(void *dst, size_t dsize, const void *src, size_t min)
{
    memset(dst, 0, dsize);
    if (!src)
        return 0;
    uint32_t ssize;
    memcpy(&ssize, src, sizeof ssize);
    if (ssize < min)
        return -EINVAL;
    /* A newer caller's fields we do not know must be zero. */
    const uint8_t *tail = (const uint8_t *)src;
    for (size_t i = dsize; i < ssize; i++)
        if (tail[i])
            return -E2BIG;
    memcpy(dst, src, ssize < dsize ? ssize : dsize);
    return 0;
}

int volley__env_loop_backend(unsigned *backend, bool *no_uring)
{
    struct env e;
    int r = env_read(&e, NULL, 0);
    if (r < 0)
        return r;
    *backend = e.backend == VOLLEY_BACKEND_URING || e.backend == VOLLEY_BACKEND_EPOLL
                   ? e.backend
                   : VOLLEY_BACKEND_AUTO;
    *no_uring = e.disable & VOLLEY__F_NO_URING;
    return 0;
}

int volley__opts_load(struct volley_opts *dst, const struct volley_opts *src,
                      bool env_backend_applies)
{
    int r = volley__opts_in(dst, sizeof *dst, src,
                            offsetof(struct volley_opts, backend) + sizeof src->backend);
    if (r < 0)
        return r;
    /* A size no compiled struct has, ending inside the loop pointer, would
     * leave half a pointer: refused, not read. */
    size_t lo = offsetof(struct volley_opts, loop);
    if (src && src->size > lo && src->size < lo + sizeof src->loop)
        return -EINVAL;
    dst->size = sizeof *dst;
    if (!opts_valid(dst))
        return -EINVAL;
    if (!dst->rx_batch)
        dst->rx_batch = 32;
    if (!dst->rx_slot_size)
        dst->rx_slot_size = 65535;
    if (!dst->pair_capacity)
        dst->pair_capacity = 256;
    struct env env;
    memset(&env, 0, sizeof env);
    /* VOLLEY_BACKEND is an error only where it applies: when the choice of
     * a kernel backend is left to volley. */
    r = env_backend_applies && dst->backend == VOLLEY_BACKEND_AUTO
            ? env_backend(&env, NULL, 0)
            : 0;
    if (r == 0)
        r = env_disable(&env, NULL, 0);
    if (r < 0)
        return r;
    /* The internal copy also carries the VOLLEY__F_NO_<backend> bits for the
     * choice. */
    dst->disable |= env.disable;
    /* "epoll" names a loop backend: datagram sockets leave the choice to volley. */
    if (dst->backend == VOLLEY_BACKEND_AUTO && env.backend != VOLLEY_BACKEND_EPOLL)
        dst->backend = env.backend;
    return 0;
}
