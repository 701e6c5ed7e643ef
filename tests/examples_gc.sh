#!/usr/bin/env bash
# The collector's examples do what their docs say: examples/weak_cache (a
# cache of weak pointers whose entries go when their images are collected,
# docs/gc.md "Weak pointers") checks itself and prints "ok".
# Usage: examples_gc.sh BUILD_DIR SOURCE_DIR
set -u
build=$1
cache=$build/examples/weak_cache
if [ ! -x "$cache" ]; then
    echo "SKIP: examples not built"
    exit 77
fi
out=$(timeout 60 "$cache" 2>&1)
rc=$?
echo "$out"
if [ "$rc" -ne 0 ] || [ "$(echo "$out" | tail -n 1)" != ok ]; then
    echo "FAIL: weak_cache exited $rc"
    exit 1
fi
echo "PASS: weak_cache"
