/* Test helpers that need the runtime (test.h stays free of it). */
#ifndef GORT_TEST_GORT_H
#define GORT_TEST_GORT_H

#include "test.h"

#include "gort/sched.h"

/* Runs fn as the main goroutine of a forked child with GOMAXPROCS procs (0:
 * the default), bounded by an alarm of alarm_s seconds; fails the test if
 * the child does not exit 0. */
static inline void in_child_for(const char *name, int (*fn)(int, char **), int procs,
                                unsigned alarm_s) {
    if (!test_selected(name)) return;
    fprintf(stderr, "=== %s (GOMAXPROCS %d)\n", name, procs);
    test_current_ = name;
    test_ran_++;
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(alarm_s);
        if (procs > 0) gort_gomaxprocs(procs);
        int r = gort_main(fn, 0, NULL);
        fflush(NULL);
        _exit(r);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s: child %s %d\n", name, WIFEXITED(st) ? "exited" : "killed by signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        test_fail();
    }
}

/* in_child_for with a 120 s alarm. */
static inline void in_child(const char *name, int (*fn)(int, char **), int procs) {
    in_child_for(name, fn, procs, 120);
}

/* GORT_GODEBUG is read when the runtime loads: a test that needs keys in
 * it runs itself again with godebug there, unless key (one of them, say
 * "gccheckmark=1") is there already. Returns only when it is. */
static inline void rerun_with_godebug(char **argv, const char *key, const char *godebug) {
    const char *d = getenv("GORT_GODEBUG");
    if (d && strstr(d, key)) return;
    setenv("GORT_GODEBUG", godebug, 1);
    execv("/proc/self/exe", argv);
    perror("execv");
    exit(1);
}

/* Sleeps 1 ms at a time until *v >= want, at most limit_ms; true if reached. */
static inline bool wait_for(long *v, long want, int limit_ms) {
    int64_t end = test_now_ns() + (int64_t)limit_ms * 1000000;
    while (__atomic_load_n(v, __ATOMIC_ACQUIRE) < want) {
        if (test_now_ns() > end) return false;
        gort_sleep(1000000);
    }
    return true;
}

#endif
