#!/usr/bin/env bash
# test_chan runs clean under valgrind (memcheck, forked children included):
# goroutine stacks are registered with valgrind, and no test reads
# uninitialized bytes (it used to memcmp a struct's padding). Skipped when
# valgrind is not installed. Usage: valgrind.sh BUILD_DIR SOURCE_DIR
set -u
build=$1
command -v valgrind >/dev/null || { echo "valgrind not installed: skipped"; exit 77; }
# The functional cases (the typed channel's among them), not the timing,
# statistical or stress ones: under valgrind the program runs 20-50 times
# slower.
GORT_TEST_RUN=basic,nonblock,typed,select_close,closed,close_,makechan,deadlock \
    valgrind -q --error-exitcode=9 --trace-children=yes "$build/tests/test_chan"
