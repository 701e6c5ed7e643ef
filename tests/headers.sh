#!/usr/bin/env bash
# The public headers are clean under -std=c99/c11/c17 -pedantic and
# -std=c++11/14/17/20 -pedantic, -Wall -Wextra -Werror, with gcc and clang
# (whichever are installed): a program includes <gort.h>, defines types with
# GORT_TYPE (C), and links; the library's gort_version() matches the headers'
# GORT_VERSION_*. Usage: headers.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/t.c" <<'C'
#include <gort.h>
#include <stdio.h>
#include <string.h>
struct node { int key; struct node *left, *right; void *kids[4]; };
GORT_TYPE(node, left, right, kids);
struct leaf { int a; double b; };
GORT_TYPE(leaf);
int main(void) {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", GORT_VERSION_MAJOR, GORT_VERSION_MINOR, GORT_VERSION_PATCH);
    int ok = strcmp(gort_version(), want) == 0 && strcmp(GORT_VERSION_STRING, want) == 0 &&
             node_type.nfields == 3 && node_type.ptrdata == sizeof(struct node) && leaf_type.nfields == 0 &&
             leaf_type.ptrdata == 0;
    printf("%s %s\n", gort_version(), ok ? "OK" : "BAD");
    return !ok;
}
C
cat >"$tmp/t.cpp" <<'C'
#include <gort.h>
#include <cstring>
int main() {
    gort_mutex m = GORT_MUTEX_INIT;
    (void)m;
    return std::strcmp(gort_version(), GORT_VERSION_STRING) != 0;
}
C
flags="-pedantic -Wall -Wextra -Werror -I$src/include"
ran=0
for cc in gcc clang; do
    command -v $cc >/dev/null || continue
    for std in c99 c11 c17; do
        $cc -std=$std $flags "$tmp/t.c" "$build/libgort.a" -lpthread -ldl -o "$tmp/t"
        "$tmp/t" | grep -q OK || { echo "$cc -std=$std: wrong result"; exit 1; }
        ran=$((ran + 1))
    done
done
for cxx in g++ clang++; do
    command -v $cxx >/dev/null || continue
    for std in c++11 c++14 c++17 c++20; do
        $cxx -std=$std $flags "$tmp/t.cpp" "$build/libgort.a" -lpthread -ldl -o "$tmp/t"
        "$tmp/t" || { echo "$cxx -std=$std: wrong result"; exit 1; }
        ran=$((ran + 1))
    done
done
[ "$ran" -gt 0 ] || exit 77
echo "headers: $ran compilers x standards clean with -pedantic -Werror; version $("$tmp/t" >/dev/null; echo ok)"
