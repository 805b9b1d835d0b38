/*
 * volley echo: a UDP echo server on any backend. Every datagram goes back
 * to its sender unchanged, from the local address it arrived on and with the
 * ECN codepoint it carried, in batches both ways (with GSO, a batch of
 * same-size replies to one peer leaves as one UDP_SEGMENT send).
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* A server left running must still stop by itself. */
#define ECHO_DEFAULT_SECONDS 60
/* Longest wait for send room before checking the clock again. */
#define ECHO_SEND_WAIT_MS 100

struct echo_state {
    uint64_t received, echoed, bytes, errors, dropped;
    int64_t start_ns, first_ns, last_ns, end_ns;
    const char *stopped;
};

static void echo_usage(void)
{
    printf("Usage: volley echo ADDR [options]\n"
           "Bind ADDR (\"ip:port\" or \"[ip6]:port\") and send every UDP datagram back\n"
           "to its sender, unchanged, from the address it arrived on and with the same\n"
           "ECN codepoint. Receives and sends in batches. Works with `volley ping`\n"
           "and any UDP client.\n"
           "\n"
           "  -c, --count N        stop after N datagrams, 1 to 18446744073709551615\n"
           "  -d, --duration S     stop after S seconds, 0.001 to %d (3 decimals;\n"
           "                       default %d)\n"
           "  -i, --idle S         stop after S seconds without traffic once traffic\n"
           "                       has begun, 0 to %d (3 decimals; default 0: never)\n"
           "  -B, --batch N        datagrams per receive call, 1 to %d (default %d)\n"
           "  -b, --backend NAME   auto, scalar, mmsg, uring or xnu (default auto)\n"
           "      --no-gso         turn UDP GSO off\n"
           "      --no-gro         turn UDP GRO off\n"
           "  -j, --json           print the summary as one JSON object\n"
           "  -h, --help           show this help\n"
           "\n"
           "SIGINT or SIGTERM stops it early; the summary is printed either way.\n"
           "\n" CLI_NUMBER_HELP,
           MAX_SECONDS, ECHO_DEFAULT_SECONDS, MAX_SECONDS, VOLLEY_BATCH_MAX,
           CLI_RX_BATCH);
}

/* Sends d[0..n) back where each came from. Descriptors from volley_recv
 * already hold the peer, the local address and the ECN codepoint. */
static int echo_batch(volley_sock *s, struct volley_dgram *d, unsigned n,
                      struct echo_state *st)
{
    unsigned done = 0;

    for (unsigned i = 0; i < n; i++)
        d[i].segment = 0;
    while (done < n) {
        int w = volley_send(s, d + done, n - done);
        int64_t now, until;

        if (w > 0) {
            for (int i = 0; i < w; i++)
                st->bytes += d[done + (unsigned)i].len;
            st->echoed += (unsigned)w;
            done += (unsigned)w;
            continue;
        }
        if (w < 0 && w != -ENOBUFS) {
            st->errors++; /* this one cannot go: skip it */
            done++;
            continue;
        }
        now = cli_mono_ns();
        if (cli_stop || now >= st->end_ns)
            break;
        until = now + ECHO_SEND_WAIT_MS * 1000000LL;
        if (until > st->end_ns)
            until = st->end_ns;
        w = volley_wait(s, VOLLEY_WAIT_SEND, cli_ms_until(now, until));
        if (w < 0 && w != -EINTR) {
            st->dropped += n - done;
            return w;
        }
    }
    st->dropped += n - done;
    return 0;
}

static int echo_loop(volley_sock *s, const struct flow_cfg *c, struct echo_state *st)
{
    struct volley_dgram d[VOLLEY_BATCH_MAX];
    int64_t idle = c->idle_ns;

    st->end_ns = st->start_ns + c->duration_ns;
    while (!cli_stop) {
        int64_t t = cli_mono_ns(), wake = st->end_ns;
        if (idle > 0 && st->received && st->last_ns + idle < wake)
            wake = st->last_ns + idle;
        int n = volley_recv_wait(s, d, (unsigned)c->batch, cli_wait_ms(t, wake));
        int64_t now = cli_mono_ns();
        int err;

        if (n < 0)
            return n;
        if (n > 0) {
            if (c->count && (uint64_t)n > c->count - st->received)
                n = (int)(c->count - st->received);
            if (st->received == 0)
                st->first_ns = now;
            st->received += (unsigned)n;
            st->last_ns = now;
            err = echo_batch(s, d, (unsigned)n, st);
            if (err < 0)
                return err;
        }
        if (c->count && st->received >= c->count) {
            st->stopped = "count";
            return 0;
        }
        if (now >= st->end_ns) {
            st->stopped = "duration";
            return 0;
        }
        if (idle > 0 && st->received && now - st->last_ns >= idle) {
            st->stopped = "idle";
            return 0;
        }
    }
    st->stopped = "signal";
    return 0;
}

static void echo_summary(volley_sock *s, const struct flow_cfg *c,
                         const struct echo_state *st)
{
    struct volley_stats vs = {0};
    int64_t span = st->last_ns - st->first_ns;

    volley_get_stats(s, &vs, sizeof(vs));
    if (c->json) {
        printf("{\"received\":%" PRIu64 ",\"echoed\":%" PRIu64 ",\"bytes\":%" PRIu64
               ",\"errors\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"seconds\":%.6f"
               ",\"rx_syscalls\":%" PRIu64 ",\"tx_syscalls\":%" PRIu64
               ",\"gso_sends\":%" PRIu64 ",\"dgrams_per_s\":%.1f,\"stopped\":\"%s\""
               ",\"backend\":",
               st->received, st->echoed, st->bytes, st->errors, st->dropped,
               cli_ns_seconds(span), vs.rx_syscalls, vs.tx_syscalls, vs.tx_gso_sends,
               cli_rate((double)st->echoed, span), st->stopped);
        cli_json_string(volley_backend_name(s));
        puts("}");
        return;
    }
    printf("echoed %" PRIu64 " of %" PRIu64 " datagrams (%" PRIu64
           " bytes) in %.3f s: %.0f dgrams/s\n",
           st->echoed, st->received, st->bytes, cli_ns_seconds(span),
           cli_rate((double)st->echoed, span));
    printf("backend %s, %" PRIu64 " receive calls, %" PRIu64 " send calls, %" PRIu64
           " GSO sends, %" PRIu64 " errors, %" PRIu64 " dropped; stopped by %s\n",
           volley_backend_name(s), vs.rx_syscalls, vs.tx_syscalls, vs.tx_gso_sends,
           st->errors, st->dropped, st->stopped);
}

static int echo_run(const struct flow_cfg *c)
{
    struct volley_opts o = VOLLEY_OPTS_INIT;
    struct echo_state st = {.stopped = "signal"};
    volley_sock *s;
    int err;

    o.rx_batch = (uint32_t)c->batch;
    if (cli_listen(&s, c, &o) != 0)
        return 1;
    cli_catch_signals();
    st.start_ns = cli_mono_ns();
    err = echo_loop(s, c, &st);
    echo_summary(s, c, &st);
    volley_close(s);
    return err < 0 ? cli_runtime_error("echo", err) : 0;
}

int cmd_echo(int argc, char **argv)
{
    static const struct cli_cmd cmd = {
        .shared = CLI_F_COUNT | CLI_F_DURATION | CLI_F_IDLE | CLI_F_BATCH |
                  CLI_F_BACKEND | CLI_F_NO_GSO | CLI_F_NO_GRO,
        .usage = echo_usage,
        .option = cli_flow_option,
        .operands = cli_bind_addr,
    };
    struct flow_cfg c = {.duration_ns = ECHO_DEFAULT_SECONDS * NS_PER_S,
                         .batch = CLI_RX_BATCH};
    int rc = cli_parse(argc, argv, &cmd, &c);

    return rc == PARSE_RUN ? echo_run(&c) : rc;
}
