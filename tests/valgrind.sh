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
# slower. valgrind runs one thread at a time, and its default lock lets a
# thread that spins take it again and again: nonblock's sender, yielding
# until the receiver that another M stole runs, once spun its 10 million
# tries (CI, once), most likely while that M never got the lock.
# --fair-sched=yes queues the threads for it.
GORT_TEST_RUN=basic,nonblock,typed,select_close,closed,close_,makechan,deadlock \
    valgrind -q --fair-sched=yes --error-exitcode=9 --trace-children=yes "$build/tests/test_chan"
