#!/usr/bin/env bash
# The static library's namespace (docs/HACKING.md, "Names"): every external
# symbol libgort.a defines is either public (gort_*, declared in include/) or
# internal with the gort__ prefix; and a program that defines the Go names we
# use internally (sched, allp, timer_add, stack_alloc) links statically
# against libgort.a and runs.
# Usage: namespace.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1 src=$2
lib=$build/libgort.a
[ -f "$lib" ] || { echo "no $lib"; exit 1; }
bad=0
syms=$(nm -g --defined-only "$lib" | awk 'NF == 3 && $2 ~ /[TDBRCGSVWui]/ {print $3}' | sort -u)
for s in $syms; do
    case "$s" in
    gort__*) ;;
    gort_*)
        if ! grep -rqw -- "$s" "$src/include"; then
            echo "public-looking symbol not declared in include/: $s"
            bad=1
        fi
        ;;
    *)
        echo "unprefixed external symbol: $s"
        bad=1
        ;;
    esac
done
[ "$bad" = 0 ] || exit 1
echo "namespace: $(echo "$syms" | wc -l) symbols, all prefixed"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
"$cc" -std=c11 -O1 -Wall -Wextra -Werror -I"$src/include" -o "$tmp/collide" \
    "$src/tests/namespace/collide.c" "$lib" -lpthread -ldl
"$tmp/collide"
