/* SPDX-License-Identifier: MIT */
/* quinn-udp's throughput workload, volley's side (src/main.rs is
 * quinn-udp's): one thread, a sending and a receiving socket on
 * 127.0.0.1, both opened with volley's defaults; each step sends as many
 * SIZE-byte datagrams as fit in 64 KiB (at most 64) and receives until
 * every byte of them came back. MODE says how the step is handed to
 * volley_send: "gso", one descriptor cut at SIZE (as quinn-udp's
 * Transmit), or "each", one descriptor per datagram (volley plans the
 * GSO). The receive gives one descriptor per datagram, as by default.
 * VOLLEY_BACKEND picks the backend, as for any program.
 *
 *   quinn_workload SIZE TOTAL_BYTES REPEATS MODE
 *
 * Prints one line per repeat: "volley-MODE SIZE DATAGRAMS_PER_SECOND".
 * Exits 1 when a call fails or nothing arrives for a second (a loss). */
#include <volley.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STEP_MAX 65535u

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static unsigned long long number(const char *s, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v == 0 || s[0] == '-') {
        fprintf(stderr, "quinn_workload: %s \"%s\" is not a positive number\n", what, s);
        exit(2);
    }
    return v;
}

static int fail(const char *what, int r)
{
    fprintf(stderr, "quinn_workload: %s: %s\n", what, volley_strerror(r));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[4], "gso") && strcmp(argv[4], "each"))) {
        fprintf(stderr, "usage: quinn_workload SIZE TOTAL_BYTES REPEATS gso|each\n");
        return 2;
    }
    size_t size = number(argv[1], "SIZE");
    unsigned long long total = number(argv[2], "TOTAL_BYTES");
    unsigned long long repeats = number(argv[3], "REPEATS");
    bool gso = !strcmp(argv[4], "gso");
    if (size > 65507) {
        fprintf(stderr, "quinn_workload: SIZE %zu is more than a UDP datagram holds\n",
                size);
        return 2;
    }
    volley_sock *tx, *rx;
    int r;
    if ((r = volley_open(&rx, "127.0.0.1:0", NULL)) < 0)
        return fail("volley_open", r);
    if ((r = volley_open(&tx, "127.0.0.1:0", NULL)) < 0)
        return fail("volley_open", r);
    struct volley_addr to;
    if ((r = volley_local_addr(rx, &to)) < 0)
        return fail("volley_local_addr", r);
    size_t per_step = STEP_MAX / size < 64 ? STEP_MAX / size : 64;
    static unsigned char payload[STEP_MAX];
    memset(payload, 1, sizeof payload);
    static struct volley_dgram out[64], in[VOLLEY_BATCH_MAX];
    /* The descriptors are made again only when a step's length changes (the
     * last may be shorter), as an application sending the same layout again
     * would keep them. */
    size_t filled = 0;
    unsigned nd = 0;
    int status = 0;
    for (unsigned long long rep = 0; rep < repeats && !status; rep++) {
        double start = now_s();
        unsigned long long sent = 0, dgrams = 0;
        while (sent < total && !status) {
            size_t n =
                total - sent < per_step * size ? (size_t)(total - sent) : per_step * size;
            if (n != filled) {
                nd = gso ? 1 : (unsigned)((n + size - 1) / size);
                for (unsigned i = 0; i < nd; i++) {
                    size_t off = (size_t)i * size, left = n - off;
                    size_t len = gso ? n : left < size ? left : size;
                    out[i] = (struct volley_dgram){
                        .data = payload + off, .len = len, .peer = to};
                    out[i].segment = gso && n > size ? (uint16_t)size : 0;
                }
                filled = n;
            }
            for (unsigned done = 0; done < nd;) {
                if ((r = volley_send(tx, out + done, nd - done)) < 0) {
                    status = fail("volley_send", r);
                    break;
                }
                done += (unsigned)r;
            }
            sent += n;
            for (size_t got = 0; got < n && !status;) {
                r = volley_recv_wait(rx, in, VOLLEY_BATCH_MAX, 1000);
                if (r < 0)
                    status = fail("volley_recv_wait", r);
                else if (r == 0)
                    status = fail("nothing received for 1 s", -ETIMEDOUT);
                for (int i = 0; i < r; i++)
                    got += in[i].len;
                dgrams += (unsigned long long)(r > 0 ? r : 0);
            }
        }
        if (!status)
            printf("volley-%s %zu %.0f\n", argv[4], size,
                   (double)dgrams / (now_s() - start));
        fflush(stdout);
    }
    volley_close(tx);
    volley_close(rx);
    return status;
}
