#!/usr/bin/env bash
# In the ASan build: no function of libgort.a writes ASan's shadow memory
# unless it has an ASan stack frame of its own, whose epilogue clears what
# the function poisoned. gcc keeps the use-after-scope poisoning of an
# instrumented always_inline callee's addressable locals when it inlines it
# into a NO_ASAN function, which has no such frame: the poison stays below
# the stack pointer after it returns, and a later frame there is reported
# as a stack-use-after-scope now and then (gc_scanblock's inlined scan_word
# did that to gc_drain's prefetch ring on the mark workers; mgcmark.c).
# A frame is recognized by its left redzone (0xf1f1f1f1) or its fake-stack
# allocation; a shadow store is a mov whose destination is gcc's shadow
# offset (0x7fff8000) plus a displacement.
# Usage: asan_shadow.sh BUILD_DIR SOURCE_DIR (skips outside the ASan build).
set -eu
build=$1
lib=$build/libgort.a
[ -f "$lib" ] || { echo "no $lib"; exit 1; }
if ! nm "$lib" 2>/dev/null | grep -q ' U __asan_report_'; then
    echo "not an ASan build: nothing to check"
    exit 77
fi
command -v objdump >/dev/null || { echo "no objdump"; exit 77; }
bad=$(objdump -dr --no-show-raw-insn "$lib" | awk '
    /^[0-9a-f]+ <.*>:$/ { if (fn != "" && stores && !frame) print fn; fn = $2; stores = 0; frame = 0; next }
    /\tmov[bwlq]?[ \t]+[^,]+,-?0x7fff8[0-9a-f][0-9a-f][0-9a-f]\(/ { stores++ }
    /f1f1f1f1|__asan_stack_malloc/ { frame = 1 }
    END { if (fn != "" && stores && !frame) print fn }')
if [ -n "$bad" ]; then
    echo "functions that write ASan's shadow without an ASan frame (an instrumented"
    echo "always_inline callee inlined into a NO_ASAN function? see mgcmark.c):"
    echo "$bad"
    exit 1
fi
echo "asan_shadow: every shadow store of libgort.a is in a function with an ASan frame"
