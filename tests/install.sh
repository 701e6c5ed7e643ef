#!/usr/bin/env bash
# The install rules work: `cmake --install` into a temporary prefix, then a
# program is built against the installed gort twice, with pkg-config and with
# CMake's find_package(gort), and both run. Usage: install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
lib=$(ls -d "$tmp"/prefix/lib* | head -n1)
test -f "$tmp/prefix/include/gort.h"
test -f "$lib/libgort.a" && test -e "$lib/libgort.so" && test -e "$lib/libgort-malloc.so"
cat >"$tmp/hello.c" <<'C'
#include <gort.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    char *p = gort_malloc(100);
    strcpy(p, "gort");
    gort_memstats ms;
    gort_read_memstats(&ms);
    int ok = ms.mallocs >= 1 && gort_usable_size(p) >= 100;
    gort_free(p);
    printf("%s\n", ok ? "OK" : "BAD");
    return !ok;
}
C
# pkg-config
export PKG_CONFIG_PATH="$lib/pkgconfig"
cc -o "$tmp/hello-pc" "$tmp/hello.c" $(pkg-config --cflags --libs gort) -Wl,-rpath,"$lib"
[ "$("$tmp/hello-pc")" = OK ]
# CMake package config
mkdir "$tmp/proj"
cat >"$tmp/proj/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(hello C)
find_package(gort 0.2 REQUIRED)
add_executable(hello ../hello.c)
target_link_libraries(hello PRIVATE gort::gort_static)
CM
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/proj/build" >/dev/null
[ "$("$tmp/proj/build/hello")" = OK ]
echo "install: pkg-config and find_package(gort) both build and run"
