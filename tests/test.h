/* A small test harness: CHECK macros and death tests.
 *
 * Each tests/test_<area>.c is one program run by ctest with a timeout. A test
 * program calls its cases from main; a failed CHECK prints the expression,
 * file and line and exits 1. expect_death() runs a function in a forked child
 * and checks its exit code and that its stderr contains a message. */
#ifndef GORT_TEST_H
#define GORT_TEST_H

#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);                  \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", __FILE__,         \
                    __LINE__, #a, #b, a_, b_);                                                     \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* CHECK for code that runs in a goroutine or a forked child: _exit, so no
 * atexit handler or stdio buffer of the parent runs twice. */
#define TCHECK(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);                  \
            fflush(stderr);                                                                        \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

/* TEST_ASAN: 1 in the ASan+UBSan build (gcc defines __SANITIZE_ADDRESS__,
 * clang has __has_feature; CMake also defines GORT_ASAN). */
#if defined(__SANITIZE_ADDRESS__) || defined(GORT_ASAN)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifndef TEST_ASAN
#define TEST_ASAN 0
#endif

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "=== %s\n", #fn);                                                          \
        fn();                                                                                      \
    } while (0)

static inline int64_t test_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Scale factor for stress tests: GORT_TEST_SCALE (default 1; CI uses 1,
 * a long local run 100). */
static inline long test_scale(void) {
    const char *s = getenv("GORT_TEST_SCALE");
    long v = s ? atol(s) : 1;
    return v > 0 ? v : 1;
}

/* Runs fn in a child; checks that it exits with code want_code and that its
 * stderr contains want_msg. Returns the captured stderr (static buffer). */
static inline const char *expect_death(void (*fn)(void), int want_code, const char *want_msg) {
    static char buf[65536];
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 2);
        close(pfd[0]);
        alarm(30); /* bound the child */
        fn();
        _exit(0);
    }
    close(pfd[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(pfd[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(pfd[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != want_code || !strstr(buf, want_msg)) {
        fprintf(stderr, "expect_death: want exit %d and \"%s\"; got %s %d, stderr:\n%s\n",
                want_code, want_msg, WIFEXITED(st) ? "exit" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), buf);
        exit(1);
    }
    return buf;
}

#endif
