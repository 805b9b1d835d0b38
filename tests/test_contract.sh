#!/bin/sh
# SPDX-License-Identifier: MIT
# The header is the contract: every VOLLEY_API function of include/volley.h
# has a man page and a version-script entry, the man pages document only
# what exists, their SYNOPSIS prototypes and ERRORS lists match the header's
# declarations and Errors: lists, and the built library exports exactly
# those functions. tests/contract.py says precisely what is compared.
# $1: the volley binary (not used); $2 (optional): the built libvolley.so.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
command -v python3 >/dev/null 2>&1 || { echo "SKIP: python3 missing"; exit 77; }

if [ $# -ge 2 ]; then
    python3 "$top/tests/contract.py" "$top" "$2"
else
    python3 "$top/tests/contract.py" "$top"
fi
rc=$?
[ $rc -eq 0 ] || exit 1
