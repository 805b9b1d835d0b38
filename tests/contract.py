#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The public header as a checked contract.

Usage: contract.py SOURCE_DIR [LIBVOLLEY_SO]

Reads include/volley.h, src/libvolley.map and man/*.3 under SOURCE_DIR and
prints one line per problem, "FILE[:LINE]: NAME: what is wrong", exiting 1
when there is any (0 when there is none, 2 on bad usage).

What is checked:

 1. Every function declared with VOLLEY_API in include/volley.h
    - has a doc comment just above its declaration: only preprocessor lines
      and the other declarations of its group may come between. A comment
      followed by several declarations documents the whole group.
    - has a page man/<name>.3, either a full page whose NAME section lists
      it or a one-line ".so man3/<page>.3" alias to a full page whose NAME
      section lists it;
    - is listed in the global: part of src/libvolley.map.
    Every name in the map is a VOLLEY_API function (no stale entries, no
    duplicates).

 2. Every man/*.3 page documents something that exists:
    - an alias page holds one ".so man3/<target>.3" line; the target is a
      full page in man/ whose NAME section lists the alias's own name;
    - a full page's .TH title is its file name in upper case, its NAME
      section lists its own name first, and every name listed there is a
      VOLLEY_API function or a type the header defines (struct volley_x {,
      enum volley_x { or a typedef named volley_x);
    - every function a page lists in NAME has its prototype in the page's
      SYNOPSIS, the same as the header's (return type, name, parameter
      types and names; white space does not count).

 3. Errors: the header and the man page give the same set of errno names
    for every function. Only explicit "-EXXX" tokens are compared; errors
    given in words ("poll(2)'s errors", "Errors from connect(2)") are not,
    on either side. Precisely:
    - header: the errnos of a function are the -EXXX tokens that follow
      "Errors:" in its comment (to the end of the comment) and stand outside
      parentheses. A token inside parentheses is an example or an
      explanation ("any errno from bind() (-EADDRINUSE, ...)") and is not
      an entry. In a group comment, "volley_x:" starts the part that is
      volley_x's alone; tokens before any such label belong to every
      function of the group. A comment without "Errors:" lists none.
    - man page: the errnos of a function are the tags of the .TP items of
      the ERRORS section (".TP" then ".B \\-EXXX"). Any other mention in
      that section (running text such as "Errors from poll(2), such as
      \\-ENOMEM") is an example and is not an entry. A paragraph label
      ".BR volley_x ():" as the section's first line or right after .PP
      starts the part that is volley_x's alone; items before any label
      belong to every function of the page. No ERRORS section, or one
      that says "None.", lists none.
    Every -EXXX token on either side, entries and examples alike, must be
    an errno name this system knows.

 4. With LIBVOLLEY_SO: its defined dynamic symbols (nm -D --defined-only),
    version nodes aside, are exactly the VOLLEY_API functions.
"""

import errno
import os
import re
import shutil
import subprocess
import sys

HEADER = "include/volley.h"
MAPFILE = "src/libvolley.map"
MANDIR = "man"

KNOWN_ERRNOS = {name for name in dir(errno) if re.fullmatch(r"E[A-Z0-9]+", name)}
ERRNO_TOKEN = re.compile(r"(?<![\w-])-(E[A-Z0-9]+)\b")

problems = []


def problem(where, name, what):
    line = "%s: %s: %s" % (where, name, what)
    if line not in problems:  # a group comment's shared part is seen once per function
        problems.append(line)


def lineno(text, pos):
    return text.count("\n", 0, pos) + 1


def squash(s):
    """A prototype with the white space that does not matter removed."""
    s = re.sub(r"\s+", " ", s).strip()
    return re.sub(r"\s*([(),*;])\s*", r"\1", s)


# ---- the header ----


class Function:
    def __init__(self, name, proto, line):
        self.name = name
        self.proto = proto  # squashed
        self.line = line
        self.comment = None
        self.comment_line = None
        self.group = [name]
        self.errors = set()
        self.examples = []  # every -EXXX token after "Errors:"


def blank_preprocessor(text):
    """Replace preprocessor lines (with continuations) by blank lines."""
    out = []
    cont = False
    for line in text.split("\n"):
        if cont or re.match(r"\s*#", line):
            cont = line.rstrip().endswith("\\")
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def comment_text(raw):
    """The words of a /* ... */ comment, without the stars."""
    body = raw[2:-2]
    lines = [re.sub(r"^\s*\*?\s?", "", l) for l in body.split("\n")]
    return " ".join(l.strip() for l in lines).strip()


def split_labels(text, names):
    """{None: common part, name: that name's part} of an Errors: text."""
    parts = {None: ""}
    label = re.compile(r"\b(%s):" % "|".join(map(re.escape, names)))
    pos = 0
    key = None
    for m in label.finditer(text):
        parts[key] = parts.get(key, "") + text[pos : m.start()]
        key = m.group(1)
        pos = m.end()
    parts[key] = parts.get(key, "") + text[pos:]
    return parts


def top_level_errnos(text):
    """-EXXX tokens outside parentheses."""
    depth = 0
    flat = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        flat.append(ch if depth == 0 else " ")
    return set(ERRNO_TOKEN.findall("".join(flat)))


def parse_header(root):
    path = os.path.join(root, HEADER)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    code = blank_preprocessor(text)
    comments = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"/\*.*?\*/", code, re.S)]
    decl_re = re.compile(
        r"\bVOLLEY_API\s+([^;{}]*?\b(volley_\w+)\s*\([^;{}]*?\))\s*;", re.S
    )
    decls = list(decl_re.finditer(code))
    funcs = {}
    order = []
    for m in decls:
        name = m.group(2)
        line = lineno(code, m.start())
        if name in funcs:
            problem("%s:%d" % (HEADER, line), name, "declared VOLLEY_API twice")
            continue
        fn = Function(name, squash(m.group(1) + ";"), line)
        before = [c for c in comments if c[1] <= m.start()]
        if before:
            cstart, cend, raw = before[-1]
            gap = code[cend : m.start()]
            gap = decl_re.sub("", gap)
            if not gap.strip():
                fn.comment = comment_text(raw)
                fn.comment_line = lineno(code, cstart)
        if fn.comment is None:
            problem("%s:%d" % (HEADER, line), name, "no doc comment just above the declaration")
        funcs[name] = fn
        order.append(name)
    # Groups: the functions that share one comment.
    by_comment = {}
    for name in order:
        fn = funcs[name]
        if fn.comment_line is not None:
            by_comment.setdefault(fn.comment_line, []).append(name)
    for group in by_comment.values():
        for name in group:
            funcs[name].group = group
    for name in order:
        fn = funcs[name]
        if not fn.comment or "Errors:" not in fn.comment:
            continue
        errtext = fn.comment.split("Errors:", 1)[1]
        parts = split_labels(errtext, fn.group) if len(fn.group) > 1 else {None: errtext}
        mine = parts.get(None, "") + parts.get(name, "")
        fn.errors = top_level_errnos(mine)
        fn.examples = ERRNO_TOKEN.findall(mine)
    types = set(re.findall(r"\b(?:struct|enum|union)\s+(volley_\w+)\s*\{", code))
    types |= set(re.findall(r"\btypedef\b[^;]*?\b(volley_\w+)\s*;", code))
    return funcs, order, types


# ---- the version script ----


def parse_map(root):
    path = os.path.join(root, MAPFILE)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"#.*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    names = []
    nodes = re.findall(r"([A-Za-z_][\w.]*)\s*\{", text)
    scope = None
    for m in re.finditer(r"(\w+)\s*:|([^\s;{}:]+)\s*;|\}[^;]*;", text):
        if m.group(1):
            scope = m.group(1)
        elif m.group(2) and scope == "global":
            names.append((m.group(2), lineno(text, m.start())))
    return names, nodes


# ---- man pages ----


def roff_unescape(s):
    s = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", s)
    s = s.replace("\\-", "-").replace("\\(dq", '"').replace("\\(ha", "^")
    s = s.replace("\\(aq", "'").replace("\\&", "").replace("\\ ", " ").replace("\\e", "\\")
    return s


def roff_args(s):
    """The arguments of a macro line, as groff splits them."""
    args = []
    i = 0
    while i < len(s):
        if s[i] in " \t":
            i += 1
            continue
        if s[i] == '"':
            i += 1
            arg = []
            while i < len(s):
                if s[i] == '"':
                    if i + 1 < len(s) and s[i + 1] == '"':
                        arg.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                arg.append(s[i])
                i += 1
            args.append("".join(arg))
        else:
            j = i
            while j < len(s) and s[j] not in " \t":
                j += 1
            args.append(s[i:j])
            i = j
    return args


def roff_text(line):
    """The text a line of man source produces (fonts dropped)."""
    m = re.match(r"\.(B|I|BI|BR|IB|IR|RB|RI)\b\s*(.*)", line)
    if m:
        args = roff_args(m.group(2))
        joiner = " " if m.group(1) in ("B", "I") else ""
        return roff_unescape(joiner.join(args))
    if line.startswith(".") or line.startswith("'"):
        return ""
    return roff_unescape(line)


class Page:
    def __init__(self, name, path):
        self.name = name
        self.path = path  # relative to the source tree
        self.lines = []
        self.alias = None
        self.title = None
        self.names = []
        self.sections = {}  # name -> [(line number, text)]


def parse_page(root, fname):
    name = fname[:-2]
    rel = "%s/%s" % (MANDIR, fname)
    page = Page(name, rel)
    with open(os.path.join(root, rel), encoding="utf-8") as f:
        page.lines = f.read().split("\n")
    content = [l for l in page.lines if l.strip() and not l.startswith('.\\"')]
    if content and content[0].startswith(".so"):
        page.alias = content[0][3:].strip()
        if len(content) > 1:
            problem(rel, name, "an alias page holds its .so line only")
        return page
    section = None
    for i, line in enumerate(page.lines, 1):
        if line.startswith(".TH"):
            args = roff_args(line[3:])
            page.title = args[0] if args else ""
        elif line.startswith(".SH"):
            section = " ".join(roff_args(line[3:]))
            page.sections.setdefault(section, [])
        elif section is not None:
            page.sections[section].append((i, line))
    name_text = " ".join(roff_text(l) for _, l in page.sections.get("NAME", []))
    listed = name_text.split(" - ", 1)[0]
    page.names = [n.strip() for n in listed.split(",") if n.strip()]
    return page


def page_errors(page, funcs_on_page):
    """({function: its errno entries}, [(line, token) of every -EXXX])."""
    body = page.sections.get("ERRORS")
    common = set()
    own = {f: set() for f in funcs_on_page}
    tokens = []
    if body is None:
        return {f: set() for f in funcs_on_page}, tokens
    key = None
    prev = ".PP"  # the section's first line counts as after a paragraph break
    expect_tag = False
    for i, line in body:
        tokens += [(i, t) for t in ERRNO_TOKEN.findall(roff_unescape(line))]
        label = re.fullmatch(r"\.BR?\s+(volley_\w+)\s+\"?\(\):?\"?\s*", line)
        if label and prev in (".PP", ".P", ".LP"):
            key = label.group(1)
            if key not in own:
                problem("%s:%d" % (page.path, i), key, "ERRORS has a part for a function the page does not document")
                own[key] = set()
        elif expect_tag:
            found = set(ERRNO_TOKEN.findall(roff_unescape(line)))
            if not found:
                problem("%s:%d" % (page.path, i), page.name, "an ERRORS item whose tag is not an errno")
            (own[key] if key else common).update(found)
        expect_tag = line.startswith(".TP")
        if line.startswith("."):
            prev = line.split()[0]
        else:
            prev = "text"
    return {f: common | own[f] for f in funcs_on_page}, tokens


def synopsis_protos(page):
    """The squashed prototypes in the page's SYNOPSIS, by function name."""
    text = "\n".join(roff_text(l) for _, l in page.sections.get("SYNOPSIS", []))
    protos = {}
    for m in re.finditer(r"([^\n;{}]*?\b(volley_\w+)\s*\([^;{}]*?\))\s*;", text, re.S):
        protos[m.group(2)] = squash(m.group(1) + ";")
    return protos


# ---- the checks ----


def check(root, lib):
    funcs, order, types = parse_header(root)
    if not funcs:
        problem(HEADER, "-", "no VOLLEY_API function found")
        return

    # The version script.
    mapped, nodes = parse_map(root)
    seen = set()
    for name, line in mapped:
        if name in seen:
            problem("%s:%d" % (MAPFILE, line), name, "listed twice")
        seen.add(name)
        if name not in funcs:
            problem("%s:%d" % (MAPFILE, line), name, "not declared VOLLEY_API in %s" % HEADER)
    for name in order:
        if name not in seen:
            problem("%s:%d" % (HEADER, funcs[name].line), name, "missing from %s" % MAPFILE)

    # The man pages.
    mandir = os.path.join(root, MANDIR)
    pages = {}
    for fname in sorted(os.listdir(mandir)):
        if fname.endswith(".3"):
            pages[fname[:-2]] = parse_page(root, fname)
    documented = {}  # function -> the full page that documents it
    for page in pages.values():
        if page.alias is not None:
            m = re.fullmatch(r"man3/(\w+)\.3", page.alias)
            target = pages.get(m.group(1)) if m else None
            if target is None or target.alias is not None:
                problem(page.path, page.name, "alias to %r, which is not a full page in %s/" % (page.alias, MANDIR))
            elif page.name not in target.names:
                problem(page.path, page.name, "alias to %s, whose NAME section does not list %s" % (target.path, page.name))
            continue
        if page.title != page.name.upper():
            problem(page.path, page.name, ".TH title %r is not %r" % (page.title, page.name.upper()))
        if not page.names or page.names[0] != page.name:
            problem(page.path, page.name, "the NAME section does not list %s first" % page.name)
        for n in page.names:
            if n in funcs:
                if n in documented:
                    problem(page.path, n, "also documented by %s" % documented[n].path)
                else:
                    documented[n] = page
            elif n not in types:
                problem(page.path, n, "listed in NAME but neither a VOLLEY_API function nor a type of %s" % HEADER)
    for name in order:
        fn = funcs[name]
        page = pages.get(name)
        where = "%s:%d" % (HEADER, fn.line)
        if page is None:
            problem(where, name, "no man page %s/%s.3" % (MANDIR, name))
        if name not in documented and page is not None:
            problem(where, name, "no full man page lists it in its NAME section")

    # Prototypes and errors, page by page.
    for page in pages.values():
        if page.alias is not None:
            continue
        on_page = [n for n in page.names if n in funcs]
        protos = synopsis_protos(page)
        for n in on_page:
            if n not in protos:
                problem(page.path, n, "no prototype in SYNOPSIS")
            elif protos[n] != funcs[n].proto:
                problem(page.path, n, "SYNOPSIS prototype %r differs from the header's %r" % (protos[n], funcs[n].proto))
        if not on_page:
            if "ERRORS" in page.sections:
                problem(page.path, page.name, "an ERRORS section on a page that documents no function")
            continue
        man_errors, tokens = page_errors(page, on_page)
        for line, tok in tokens:
            if tok not in KNOWN_ERRNOS:
                problem("%s:%d" % (page.path, line), page.name, "-%s is not an errno name" % tok)
        for n in on_page:
            fn = funcs[n]
            for tok in sorted(set(fn.examples) - KNOWN_ERRNOS):
                problem("%s:%d" % (HEADER, fn.comment_line or fn.line), n, "-%s is not an errno name" % tok)
            hdr, man = fn.errors, man_errors[n]
            for e in sorted(man - hdr):
                problem(page.path, n, "-%s is in the ERRORS section but not in the Errors: list of %s" % (e, HEADER))
            for e in sorted(hdr - man):
                problem("%s:%d" % (HEADER, fn.comment_line or fn.line), n, "-%s is in the Errors: list but not in the ERRORS section of %s" % (e, page.path))

    # The built library.
    if lib is None:
        return
    if not os.path.isfile(lib):
        problem(lib, "-", "no such library to check the exports of")
        return
    nm = shutil.which("nm")
    if nm is None:
        print("note: nm not found; the exports of %s are not checked" % lib)
        return
    out = subprocess.run([nm, "-D", "--defined-only", lib], capture_output=True, text=True)
    if out.returncode != 0:
        problem(lib, "-", "nm -D failed: %s" % out.stderr.strip())
        return
    exported = set()
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        kind, sym = fields[-2], fields[-1]
        sym = sym.split("@", 1)[0]
        if kind == "A" and sym in nodes:
            continue  # a version node of the map
        exported.add(sym)
    for sym in sorted(exported - set(order)):
        problem(lib, sym, "exported, but not a VOLLEY_API function of %s" % HEADER)
    for name in order:
        if name not in exported:
            problem(lib, name, "declared VOLLEY_API in %s but not exported" % HEADER)


def main(argv):
    if len(argv) not in (2, 3):
        print("usage: contract.py SOURCE_DIR [LIBVOLLEY_SO]", file=sys.stderr)
        return 2
    root = argv[1]
    lib = argv[2] if len(argv) == 3 and argv[2] else None
    check(root, lib)
    for p in problems:
        print(p)
    if problems:
        print("FAIL: %d contract problem(s)" % len(problems))
        return 1
    print("ok: header, version script, man pages%s agree" % (" and library exports" if lib else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
