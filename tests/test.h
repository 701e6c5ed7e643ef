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

/* Every failed check prints what failed, where, and for comparisons both
 * sides; then the process exits 1 with _exit, so that it is safe in a
 * goroutine or a forked child (no atexit handler or stdio buffer of a parent
 * runs twice). */
__attribute__((noreturn)) static inline void test_fail(void) {
    fflush(NULL);
    _exit(1);
}

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);                  \
            test_fail();                                                                           \
        }                                                                                          \
    } while (0)

/* CHECK_EQ(a, b), CHECK_NE, CHECK_LT, CHECK_LE, CHECK_GT, CHECK_GE: integers
 * (compared as long long; unsigned values above LLONG_MAX are not for these). */
#define CHECK_OP_(a, op, b, name)                                                                  \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (!(a_ op b_)) {                                                                         \
            fprintf(stderr, "%s:%d: " name " failed: %s " #op " %s (%lld vs %lld)\n", __FILE__,    \
                    __LINE__, #a, #b, a_, b_);                                                     \
            test_fail();                                                                           \
        }                                                                                          \
    } while (0)
#define CHECK_EQ(a, b) CHECK_OP_(a, ==, b, "CHECK_EQ")
#define CHECK_NE(a, b) CHECK_OP_(a, !=, b, "CHECK_NE")
#define CHECK_LT(a, b) CHECK_OP_(a, <, b, "CHECK_LT")
#define CHECK_LE(a, b) CHECK_OP_(a, <=, b, "CHECK_LE")
#define CHECK_GT(a, b) CHECK_OP_(a, >, b, "CHECK_GT")
#define CHECK_GE(a, b) CHECK_OP_(a, >=, b, "CHECK_GE")
/* The same for doubles (ratios, times). */
#define CHECK_FOP_(a, op, b, name)                                                                 \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(a_ op b_)) {                                                                         \
            fprintf(stderr, "%s:%d: " name " failed: %s " #op " %s (%g vs %g)\n", __FILE__,        \
                    __LINE__, #a, #b, a_, b_);                                                     \
            test_fail();                                                                           \
        }                                                                                          \
    } while (0)
#define CHECK_FLT(a, b) CHECK_FOP_(a, <, b, "CHECK_FLT")
#define CHECK_FLE(a, b) CHECK_FOP_(a, <=, b, "CHECK_FLE")
#define CHECK_FGE(a, b) CHECK_FOP_(a, >=, b, "CHECK_FGE")
/* Strings: s contains sub. */
#define CHECK_CONTAINS(s, sub)                                                                     \
    do {                                                                                           \
        const char *s_ = (s), *sub_ = (sub);                                                       \
        if (!s_ || !strstr(s_, sub_)) {                                                            \
            fprintf(stderr, "%s:%d: CHECK_CONTAINS failed: \"%s\" not in:\n%s\n", __FILE__,        \
                    __LINE__, sub_, s_ ? s_ : "(null)");                                           \
            test_fail();                                                                           \
        }                                                                                          \
    } while (0)

/* CHECK for code that runs in a goroutine or a forked child: CHECK is safe
 * there too now; the name stays for the tests that use it. */
#define TCHECK(c) CHECK(c)

/* ---- selecting and skipping cases ----------------------------------------
 *
 * One name filter for every test program: GORT_TEST_RUN=a,b runs only the
 * cases whose name contains a or b (as `go test -run`); a program may also
 * pass its argv[1] with test_filter(). Every driver (RUN, in_child, death
 * tests) asks test_selected(name).
 *
 * A case that cannot run here calls TEST_SKIP("why") (it returns from the
 * case). A program ends with `return test_result();`: 77 when every case it
 * ran was skipped (ctest's SKIP_RETURN_CODE, so ctest shows "Skipped"), else
 * 0 with the skipped cases listed. */
static const char *test_filter_ __attribute__((unused)) = NULL;
static int test_ran_ __attribute__((unused)) = 0, test_skipped_ __attribute__((unused)) = 0;
static const char *test_current_ __attribute__((unused)) = "";

static inline void test_filter(const char *f) {
    test_filter_ = f;
}

static inline bool test_selected(const char *name) {
    const char *f = test_filter_ ? test_filter_ : getenv("GORT_TEST_RUN");
    if (!f || !*f) return true;
    char buf[256];
    while (*f) {
        size_t n = strcspn(f, ",");
        if (n > 0 && n < sizeof buf) {
            memcpy(buf, f, n);
            buf[n] = 0;
            if (strstr(name, buf)) return true;
        }
        f += n;
        if (*f == ',') f++;
    }
    return false;
}

/* Marks the current case skipped, says why, and returns from it. */
#define TEST_SKIP(why)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "--- SKIP: %s: %s\n", test_current_, (why));                               \
        test_skipped_++;                                                                           \
        return;                                                                                    \
    } while (0)

static inline int test_result(void) {
    if (test_ran_ > 0 && test_skipped_ == test_ran_) {
        fprintf(stderr, "every case skipped (%d)\n", test_skipped_);
        return 77;
    }
    if (test_skipped_) fprintf(stderr, "%d of %d cases skipped\n", test_skipped_, test_ran_);
    return 0;
}

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

/* Runs the case fn() if the filter selects it. */
#define RUN(fn)                                                                                    \
    do {                                                                                           \
        if (test_selected(#fn)) {                                                                  \
            fprintf(stderr, "=== %s\n", #fn);                                                      \
            test_current_ = #fn;                                                                   \
            test_ran_++;                                                                           \
            fn();                                                                                  \
        }                                                                                          \
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
        test_fail();
    }
    return buf;
}

#endif
