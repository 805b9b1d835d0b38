/* SPDX-License-Identifier: MIT */
/*
 * volley probe: what this kernel lets volley use, tried on loopback, and
 * why the rest is off.
 */
#include "cli.h"

#include <stdio.h>

static const struct {
    const char *name;
    size_t off;
} features[] = {
    {"scalar", offsetof(struct volley_caps, scalar)},
    {"mmsg", offsetof(struct volley_caps, mmsg)},
    {"gso", offsetof(struct volley_caps, gso)},
    {"gro", offsetof(struct volley_caps, gro)},
    {"pktinfo", offsetof(struct volley_caps, pktinfo)},
    {"ecn", offsetof(struct volley_caps, ecn)},
    {"timestamp", offsetof(struct volley_caps, timestamp)},
    {"rxq_ovfl", offsetof(struct volley_caps, rxq_ovfl)},
    {"recverr", offsetof(struct volley_caps, recverr)},
    {"ipv6", offsetof(struct volley_caps, ipv6)},
    {"uring", offsetof(struct volley_caps, uring)},
    {"uring_zc", offsetof(struct volley_caps, uring_zc)},
    {"kernel_pacing", offsetof(struct volley_caps, kernel_pacing)},
    {"reuseport_steer", offsetof(struct volley_caps, reuseport_steer)},
    {"xnu", offsetof(struct volley_caps, xnu)},
};
#define NFEATURES (sizeof(features) / sizeof(features[0]))

static const struct volley_feature *feature(const struct volley_caps *c, size_t i)
{
    return (const struct volley_feature *)((const char *)c + features[i].off);
}

static void probe_usage(void)
{
    puts("Usage: volley probe [--json]\n"
         "Try each kernel feature volley can use, on loopback, and print what works\n"
         "and why the rest is off.\n"
         "\n"
         "  -j, --json   print one JSON document (volley(1), JSON OUTPUT) whose\n"
         "               \"end\" is {\"NAME\":{\"ok\":BOOL,\"why\":TEXT},...,\n"
         "               \"gso_max_segments\":N}\n"
         "  -h, --help   show this help");
}

static void probe_print_text(const struct volley_caps *c)
{
    for (size_t i = 0; i < NFEATURES; i++) {
        const struct volley_feature *f = feature(c, i);

        if (!f->ok)
            printf("%s: no (%s)\n", features[i].name, cli_feature_why(f));
        else if (f == &c->gso)
            printf("%s: yes (up to %u segments per send)\n", features[i].name,
                   c->gso_max_segments);
        else
            printf("%s: yes\n", features[i].name);
    }
}

static void probe_print_json(const struct volley_caps *c)
{
    cli_doc_begin(NULL, NULL);
    cli_doc_end();
    for (size_t i = 0; i < NFEATURES; i++) {
        const struct volley_feature *f = feature(c, i);

        printf("\"%s\":{\"ok\":%s,\"why\":", features[i].name, f->ok ? "true" : "false");
        cli_json_string(cli_feature_why(f));
        fputs("},", stdout);
    }
    printf("\"gso_max_segments\":%u", c->gso_max_segments);
}

static int probe_option(int opt, void *json)
{
    if (opt != 'j')
        return cli_bad_option();
    *(bool *)json = true;
    return PARSE_RUN;
}

int cmd_probe(int argc, char **argv)
{
    static const struct cli_cmd cmd = {.usage = probe_usage, .option = probe_option};
    struct volley_caps caps;
    bool json = false;
    int err = cli_parse(argc, argv, &cmd, &json);

    if (err != PARSE_RUN)
        return err;
    err = volley_probe(&caps, sizeof(caps));
    if (err < 0)
        return cli_runtime_error("probe", err);
    if (json)
        probe_print_json(&caps);
    else
        probe_print_text(&caps);
    return 0;
}
