#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The --json document of volley(1), JSON OUTPUT, as a checked schema.

Usage: volley_json.py VERSION COMMAND STATUS FILE

FILE holds what `volley COMMAND ... --json` wrote on stdout, STATUS its exit
status and VERSION what `volley --version` prints after "volley ". Prints
what does not match the schema, one line each, and exits 1 when anything
does not (0 when all does). Standard library only.

The schema, as the man page gives it:
  version    string, the library's version (volley --version)
  command    string, the command as typed
  error      present exactly when STATUS is not 0:
             {"message": non-empty string, "errno": "E..." or null}
  args       object: the options with their effective values
  host       {"hostname", "system", "kernel", "machine": strings, "cpus": int}
  start      {"time": "YYYY-MM-DDTHH:MM:SSZ", "unix": int}, the same instant
  intervals  array of objects, each with "from" <= "to" (seconds)
  end        object, the summary; null only in an error document
A document for a failure before the run began has only version, command and
error. Every command's interval and end objects carry the members below.
"""
import calendar
import json
import re
import sys

# The members each command's lines and summary carry at least.
INTERVAL = {
    "recv": {"datagrams", "bytes", "mbit_per_s", "lost_so_far", "reordered_so_far",
             "duplicated_so_far", "jitter_ms"},
    "send": {"datagrams", "bytes", "mbit_per_s", "ip_mbit_per_s"},
    "ping": {"sent", "received", "mean_us", "max_us"},
    "tcp-echo": {"conns", "accepted", "bytes_in", "bytes_out"},
    "tcp-load": {"conns", "requests", "requests_per_s", "bytes_out"},
}
END = {
    "probe": {"scalar", "mmsg", "gso", "gro", "uring", "gso_max_segments"},
    "recv": {"datagrams", "bytes", "seconds", "lost", "duplicated", "reordered",
             "truncated", "kernel_drops", "backend", "stream", "jitter_ms"},
    "send": {"datagrams", "bytes", "seconds", "errors", "backend", "icmp_errors",
             "icmp_error"},
    "echo": {"received", "echoed", "errors", "dropped", "kernel_drops", "bytes",
             "stopped", "backend"},
    "ping": {"sent", "received", "lost", "late", "duplicated", "errors", "min_us",
             "mean_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us",
             "latency_error", "stopped", "backend", "icmp_errors", "icmp_error"},
    "bench": {"matrix", "machine", "header", "cells"},
    "tcp-echo": {"mode", "accepted", "closed", "errors", "bytes_in", "bytes_out",
                 "stopped", "backend", "peak_conns", "heap_per_conn"},
    "tcp-load": {"mode", "conns", "connected", "requests", "bytes_out", "bytes_in",
                 "errors", "p50_us", "p99_us", "max_us", "latency_error", "stopped",
                 "backend"},
}
ARGS = {
    "recv": {"addr", "count", "duration_s", "idle_s", "backend", "threads"},
    "send": {"addr", "count", "duration_s", "size", "batch", "rate_bps"},
    "echo": {"addr", "count", "duration_s", "idle_s", "batch", "backend"},
    "ping": {"addr", "count", "duration_s", "size", "mode", "interval_ms",
             "timeout_ms"},
    "bench": {"matrix", "seconds", "repeat", "sizes", "paths"},
    "tcp-echo": {"addr", "count", "duration_s", "backend", "discard"},
    "tcp-load": {"addr", "count", "duration_s", "conns", "size", "mode", "backend"},
}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ERRNO = re.compile(r"^E[A-Z0-9]+$")


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check(version, command, status, doc):
    bad = []

    def want(cond, what):
        if not cond:
            bad.append(what)

    if not isinstance(doc, dict):
        return ["the document is not an object"]
    want(doc.get("version") == version, "version %r, want %r" % (doc.get("version"), version))
    want(doc.get("command") == command, "command %r, want %r" % (doc.get("command"), command))
    err = doc.get("error")
    if status == 0:
        want("error" not in doc, "an error member with exit status 0")
    else:
        want(isinstance(err, dict), "exit status %d without an error object" % status)
        if isinstance(err, dict):
            want(isinstance(err.get("message"), str) and err["message"] != "",
                 "error.message is not a non-empty string")
            e = err.get("errno", "missing")
            want(e is None or (isinstance(e, str) and ERRNO.match(e)),
                 "error.errno %r is neither an E... name nor null" % (e,))
        if set(doc) == {"version", "command", "error"}:
            return bad  # failed before the run began
    for key in ("args", "host", "start", "intervals", "end"):
        want(key in doc, "no %s" % key)
    if bad:
        return bad
    args, host, start = doc["args"], doc["host"], doc["start"]
    want(isinstance(args, dict), "args is not an object")
    if isinstance(args, dict):
        missing = ARGS.get(command, set()) - set(args)
        want(not missing, "args lacks %s" % sorted(missing))
    want(isinstance(host, dict) and all(isinstance(host.get(k), str) for k in
                                        ("hostname", "system", "kernel", "machine")),
         "host lacks hostname, system, kernel or machine strings")
    want(isinstance(host, dict) and isinstance(host.get("cpus"), int) and host["cpus"] > 0,
         "host.cpus is not a positive integer")
    if isinstance(start, dict) and isinstance(start.get("time"), str) and \
            ISO.match(start["time"]) and isinstance(start.get("unix"), int):
        t = calendar.timegm(tuple(int(x) for x in re.findall(r"\d+", start["time"])) +
                            (0, 0, 0))
        want(t == start["unix"], "start.time and start.unix differ")
    else:
        bad.append("start is not {time: ISO 8601 UTC, unix: integer}")
    ivals = doc["intervals"]
    want(isinstance(ivals, list), "intervals is not an array")
    for i, iv in enumerate(ivals if isinstance(ivals, list) else []):
        if not isinstance(iv, dict):
            bad.append("intervals[%d] is not an object" % i)
            continue
        want(number(iv.get("from")) and number(iv.get("to")) and iv["from"] <= iv["to"],
             "intervals[%d]: from and to are not seconds in order" % i)
        missing = INTERVAL.get(command, set()) - set(iv)
        want(not missing, "intervals[%d] lacks %s" % (i, sorted(missing)))
    end = doc["end"]
    if end is None:
        want(status != 0, "end is null with exit status 0")
    elif isinstance(end, dict):
        missing = END.get(command, set()) - set(end)
        want(not missing, "end lacks %s" % sorted(missing))
    else:
        bad.append("end is neither an object nor null")
    return bad


def main():
    if len(sys.argv) != 5:
        print(__doc__.split("\n\n")[1])
        return 2
    version, command, status, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print("%s: not one JSON document: %s" % (path, e))
        return 1
    bad = check(version, command, status, doc)
    for b in bad:
        print("%s (volley %s): %s" % (path, command, b))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
