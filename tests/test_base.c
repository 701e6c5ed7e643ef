/* Tests for src/base: the options parsers and table (env.c), the printer
 * that never allocates (print.c), fatal errors (fatal.c), runtime locks and
 * notes (lock.c), time (nanotime.h), the OS contract (os_linux.c) and
 * threads (thread.c).
 *
 * Parsers are checked against Go's syntax (GOGC: an integer or "off";
 * GOMEMLIMIT: digits with an optional B/KiB/MiB/GiB/TiB suffix, or "off"),
 * the printer against the C library's snprintf for every format it
 * supports. The options table's warning is checked by running this program
 * again with a bad GORT_GOGC and reading its stderr. Waits are bounded. */
#include "test.h"

#include "base/env.h"
#include "base/fatal.h"
#include "base/lock.h"
#include "base/nanotime.h"
#include "base/os.h"
#include "base/print.h"
#include "base/thread.h"
#include "gort/config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>

/* ---- env ---- */

static void test_parse_int(void) {
    static const struct {
        const char *s;
        int64_t v;
    } good[] = {{"0", 0},
                {"7", 7},
                {"123", 123},
                {"-5", -5},
                {"000042", 42},
                {"9223372036854775807", INT64_MAX},
                {"-9223372036854775807", -INT64_MAX}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t v = -1234;
        CHECK_EQ(env_parse_int(good[i].s, &v), 0);
        CHECK(v == good[i].v);
    }
    static const char *bad[] = {"",
                                "-",
                                "+",
                                "x",
                                "12x",
                                "1 ",
                                " 1",
                                "1.5",
                                "0x10",
                                "1e3",
                                "--1",
                                "9223372036854775808",
                                "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = -1234;
        if (env_parse_int(bad[i], &v) != -EINVAL) {
            fprintf(stderr, "env_parse_int(\"%s\") accepted\n", bad[i]);
            CHECK(0);
        }
        CHECK_EQ(v, -1234); /* untouched */
    }
    CHECK_EQ(env_parse_int(NULL, &(int64_t){0}), -EINVAL);
}

static void test_parse_bytes(void) {
    static const struct {
        const char *s;
        int64_t v;
    } good[] = {{"100", 100},
                {"0", 0},
                {"512", 512},
                {"7B", 7},
                {"64MiB", 64ll << 20},
                {"1GiB", 1ll << 30},
                {"1TiB", 1ll << 40},
                {"10KiB", 10 << 10},
                {"3GiB", 3ll << 30},
                {"0MiB", 0},
                {"off", INT64_MAX},
                {"8388607TiB", 8388607ll << 40},
                {"9223372036854775807", INT64_MAX},
                {"9223372036854775807B", INT64_MAX}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t v = -1234;
        if (env_parse_bytes(good[i].s, &v) != 0 || v != good[i].v) {
            fprintf(stderr, "env_parse_bytes(\"%s\") = %lld, want %lld\n", good[i].s, (long long)v,
                    (long long)good[i].v);
            CHECK(0);
        }
    }
    /* Go's syntax is ^[0-9]+(([KMGT]i)?B)?$ (runtime.parseByteCount). */
    static const char *bad[] = {"",
                                "12x",
                                "-5MiB",
                                "-1",
                                "MiB",
                                "B",
                                "1KB",
                                "1MB",
                                "1kib",
                                "1 MiB",
                                "1.5GiB",
                                "off ",
                                "OFF",
                                "1MiBB",
                                "1PiB",
                                "8388608TiB",
                                "9007199254740992GiB",
                                "9223372036854775808",
                                "1iB",
                                "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = -1234;
        if (env_parse_bytes(bad[i], &v) != -EINVAL) {
            fprintf(stderr, "env_parse_bytes(\"%s\") accepted: %lld\n", bad[i], (long long)v);
            CHECK(0);
        }
        CHECK_EQ(v, -1234);
    }
}

static void test_parse_gogc(void) {
    static const struct {
        const char *s;
        int v;
    } good[] = {{"100", 100}, {"off", -1}, {"0", 0}, {"50", 50}, {"1000", 1000}, {"-1", -1}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int v = -1234;
        CHECK_EQ(env_parse_gogc(good[i].s, &v), 0);
        CHECK_EQ(v, good[i].v);
    }
    static const char *bad[] = {"", "abc", "100%", "1e2", "Off", "10 ", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int v = -1234;
        if (env_parse_gogc(bad[i], &v) != -EINVAL) {
            fprintf(stderr, "env_parse_gogc(\"%s\") accepted: %d\n", bad[i], v);
            CHECK(0);
        }
        CHECK_EQ(v, -1234);
    }
    CHECK_EQ(env_parse_gogc(NULL, &(int){0}), -EINVAL);
}

/* Go's parsers take a leading '-' but no '+' (runtime.atoi64): GOGC=+50
 * and GOMEMLIMIT=+5MiB are invalid in Go, so they must be here too. */
static void test_parse_plus_sign(void) {
    int64_t v = -1234;
    if (env_parse_bytes("+5MiB", &v) != -EINVAL) {
        fprintf(stderr, "env_parse_bytes(\"+5MiB\") accepted: %lld\n", (long long)v);
        CHECK(0);
    }
    CHECK_EQ(env_parse_bytes("+512", &v), -EINVAL);
    int g = -1234;
    if (env_parse_gogc("+50", &g) != -EINVAL) {
        fprintf(stderr, "env_parse_gogc(\"+50\") accepted: %d\n", g);
        CHECK(0);
    }
}

/* Runs this program as "argv0 env-child" with one variable set; returns its
 * stdout and stderr (static buffers). */
static char self_path[4096];

static void run_env_child(const char *var, const char *val, char *out, size_t outcap, char *err,
                          size_t errcap) {
    int po[2], pe[2];
    CHECK(pipe(po) == 0 && pipe(pe) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        unsetenv("GORT_GOGC");
        unsetenv("GORT_GOMEMLIMIT");
        unsetenv("GORT_GOMAXPROCS");
        if (var) setenv(var, val, 1);
        alarm(20);
        execl(self_path, self_path, "env-child", (char *)NULL);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t no = 0, ne = 0;
    ssize_t r;
    while (no < outcap - 1 && (r = read(po[0], out + no, outcap - 1 - no)) > 0) no += (size_t)r;
    while (ne < errcap - 1 && (r = read(pe[0], err + ne, errcap - 1 - ne)) > 0) ne += (size_t)r;
    out[no] = err[ne] = 0;
    close(po[0]);
    close(pe[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int env_child(void) {
    env_init(); /* already run by the allocator's constructor: must be idempotent */
    env_init();
    printf("gogc=%d memlimit=%lld gomaxprocs=%d\n", opts.gogc, (long long)opts.memlimit,
           opts.gomaxprocs);
    return 0;
}

static void test_env_init(void) {
    static char out[4096], err[4096];
    char want[128];

    run_env_child(NULL, NULL, out, sizeof out, err, sizeof err);
    snprintf(want, sizeof want, "gogc=100 memlimit=%lld gomaxprocs=0\n", (long long)INT64_MAX);
    CHECK(strcmp(out, want) == 0);
    CHECK(err[0] == 0); /* no warnings by default */

    run_env_child("GORT_GOGC", "12x", out, sizeof out, err, sizeof err);
    CHECK(strstr(err, "invalid GORT_GOGC") != NULL);
    CHECK(strstr(err, "12x") != NULL);
    CHECK(strstr(out, "gogc=100 ") == out); /* the default stays */

    run_env_child("GORT_GOGC", "50", out, sizeof out, err, sizeof err);
    CHECK(strstr(out, "gogc=50 ") == out);
    CHECK(err[0] == 0);

    run_env_child("GORT_GOGC", "off", out, sizeof out, err, sizeof err);
    CHECK(strstr(out, "gogc=-1 ") == out);
    CHECK(err[0] == 0);

    run_env_child("GORT_GOMEMLIMIT", "1GiB", out, sizeof out, err, sizeof err);
    CHECK(strstr(out, "memlimit=1073741824 ") != NULL);
    CHECK(err[0] == 0);

    run_env_child("GORT_GOMEMLIMIT", "-5MiB", out, sizeof out, err, sizeof err);
    CHECK(strstr(err, "invalid GORT_GOMEMLIMIT") != NULL);
    snprintf(want, sizeof want, "memlimit=%lld ", (long long)INT64_MAX);
    CHECK(strstr(out, want) != NULL);

    run_env_child("GORT_GOMAXPROCS", "0", out, sizeof out, err, sizeof err);
    CHECK(strstr(err, "invalid GORT_GOMAXPROCS") != NULL);
    run_env_child("GORT_GOMAXPROCS", "3", out, sizeof out, err, sizeof err);
    CHECK(strstr(out, "gomaxprocs=3\n") != NULL);
    CHECK(err[0] == 0);
}

/* ---- print ---- */

/* Formats with snprint and with the C library; they must agree. */
#define SAME(...)                                                                                  \
    do {                                                                                           \
        char g_[256], c_[256];                                                                     \
        size_t n_ = snprint(g_, sizeof g_, __VA_ARGS__);                                           \
        int m_ = snprintf(c_, sizeof c_, __VA_ARGS__);                                             \
        if (strcmp(g_, c_) != 0 || (int)n_ != m_) {                                                \
            fprintf(stderr, "%s:%d: snprint(%s) = \"%s\" (%zu), snprintf: \"%s\" (%d)\n",          \
                    __FILE__, __LINE__, #__VA_ARGS__, g_, n_, c_, m_);                             \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void test_print(void) {
    SAME("plain");
    SAME("%d %d %d", 0, 42, -42);
    SAME("%d %d", INT_MAX, INT_MIN);
    SAME("%i", -7);
    SAME("%u %u", 0u, UINT_MAX);
    SAME("%x %x %X", 255u, 0xdeadbeefu, 0xabcu);
    SAME("%lx %llx", 0xfffffffffUL, 0x123456789abcdefULL);
    SAME("%ld %lld %lld %lld", -1L, 0LL, LLONG_MAX, LLONG_MIN);
    SAME("%lu %llu", ULONG_MAX, ULLONG_MAX);
    SAME("%zu %zu", (size_t)0, SIZE_MAX);
    SAME("%zd", (ssize_t)-3);
    SAME("%p", (void *)0x1234);
    SAME("%p", (void *)0xc000002000);
    SAME("%p", (void *)UINTPTR_MAX);
    SAME("%s|%s", "abc", "");
    SAME("%c%c", 'x', 'y');
    SAME("100%%");
    SAME("[%5d] [%-5s] [%5s]", 42, "ab", "ab");
    SAME("[%05d] [%05d] [%5d]", 42, -42, -42);
    SAME("[%08x] [%8x] [%016llx]", 0xbeefu, 0xbeefu, 0x1ULL);
    SAME("[%3d] [%1s]", 12345, "long");
    SAME("[%020lld]", LLONG_MIN);
    SAME("%s=%d, %s=%u", "a", 1, "b", 2u);

    char buf[64];
    /* A NULL string prints as (null), as glibc's. */
    const char *volatile null_str = NULL; /* hidden from -Wformat-overflow */
    snprint(buf, sizeof buf, "%s", null_str);
    CHECK(strcmp(buf, "(null)") == 0);

    /* Truncation: at most cap - 1 characters and a NUL; the length written
     * is returned (print.h). */
    memset(buf, 'Z', sizeof buf);
    CHECK_EQ(snprint(buf, 5, "hello world"), 4);
    CHECK(strcmp(buf, "hell") == 0);
    CHECK_EQ(buf[5], 'Z'); /* nothing past cap */
    memset(buf, 'Z', sizeof buf);
    CHECK_EQ(snprint(buf, 4, "%d", -123456), 3);
    CHECK(strcmp(buf, "-12") == 0);
    CHECK_EQ(buf[4], 'Z');
    memset(buf, 'Z', sizeof buf);
    CHECK_EQ(snprint(buf, 1, "abc"), 0);
    CHECK_EQ(buf[0], 0);
    CHECK_EQ(buf[1], 'Z');
    memset(buf, 'Z', sizeof buf);
    CHECK_EQ(snprint(buf, 0, "abc"), 0);
    CHECK_EQ(buf[0], 'Z'); /* cap 0: nothing written */
    memset(buf, 'Z', sizeof buf);
    CHECK_EQ(snprint(buf, 8, "%p", (void *)0xc000002000), 7);
    CHECK(strcmp(buf, "0xc0000") == 0);
    CHECK_EQ(snprint(buf, 6, "%s%s", "abc", "def"), 5);
    CHECK(strcmp(buf, "abcde") == 0);
}

/* print writes whole lines to fd 2. */
static void print_child(void) {
    print("line %d of %s\n", 1, "two");
    print("line %d of %s\n", 2, "two");
    _exit(3);
}

static void throw_child(void) {
    throw("something broke");
}

static void throwf_child(void) {
    throwf("bad value %d at %p", -5, (void *)0xc000001230);
}

static void panic_child(void) {
    gopanic("oops");
}

static void test_fatal(void) {
    const char *e = expect_death(print_child, 3, "line 1 of two\nline 2 of two\n");
    CHECK(strcmp(e, "line 1 of two\nline 2 of two\n") == 0);
    e = expect_death(throw_child, 2, "fatal error: something broke\n");
    e = expect_death(throwf_child, 2, "fatal error: bad value -5 at 0xc000001230\n");
    e = expect_death(panic_child, 2, "panic: oops\n");
    (void)e;
}

/* ---- locks and notes ---- */

enum { LOCKERS = 4 };
static lock_t the_lock = LOCK_INIT;
static uint64_t counter; /* guarded by the_lock, updated non-atomically */
static int inside;       /* threads inside the critical section */
static int64_t lock_iters;

static void *locker(void *arg) {
    (void)arg;
    for (int64_t i = 0; i < lock_iters; i++) {
        lock(&the_lock);
        int was = __atomic_fetch_add(&inside, 1, __ATOMIC_RELAXED);
        if (was != 0) {
            fprintf(stderr, "two threads inside the lock\n");
            exit(1);
        }
        uint64_t c = counter; /* a torn update would lose increments */
        if ((i & 255) == 0) sched_yield();
        counter = c + 1;
        __atomic_fetch_sub(&inside, 1, __ATOMIC_RELAXED);
        unlock(&the_lock);
    }
    return NULL;
}

static void test_lock(void) {
    lock_iters = 200000 * test_scale();
    pthread_t t[LOCKERS];
    for (int i = 0; i < LOCKERS; i++) CHECK(pthread_create(&t[i], NULL, locker, NULL) == 0);
    for (int i = 0; i < LOCKERS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    CHECK_EQ(counter, LOCKERS * lock_iters);
    CHECK_EQ(the_lock.key, 0); /* unlocked, no sleepers recorded */

    lock_t l = LOCK_INIT;
    CHECK(trylock(&l));
    CHECK(!trylock(&l));
    unlock(&l);
    CHECK(trylock(&l));
    unlock(&l);
    CHECK_EQ(l.key, 0);
}

/* A lock held for a while makes waiters sleep (state 2), and unlock wakes them. */
static lock_t held = LOCK_INIT;
static int got_it;

static void *waiter(void *arg) {
    (void)arg;
    lock(&held);
    __atomic_store_n(&got_it, 1, __ATOMIC_RELEASE);
    unlock(&held);
    return NULL;
}

static void test_lock_sleep(void) {
    lock(&held);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, waiter, NULL) == 0);
    int64_t deadline = nanotime() + 2000000000;
    while (__atomic_load_n(&held.key, __ATOMIC_ACQUIRE) != 2 && nanotime() < deadline) usleep(1000);
    CHECK_EQ(held.key, 2); /* the waiter went to sleep */
    usleep(20000);
    CHECK(!__atomic_load_n(&got_it, __ATOMIC_ACQUIRE));
    unlock(&held);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(got_it);
}

/* Sleepers and rseq releases racing: each holder sometimes sleeps with the
 * lock held, so waiters turn "held" (1) into "held, sleepers" (2), often
 * while the next holder is releasing with rseq_release. A wake-up lost in
 * that race leaves a thread asleep for ever: the deadline catches it. Run
 * also without rseq (ctest test_base_norseq). */
static lock_t race_lock = LOCK_INIT;
static uint64_t race_count;
static int race_done;
static int64_t race_iters;

static void *race_locker(void *arg) {
    (void)arg;
    for (int64_t i = 0; i < race_iters; i++) {
        lock(&race_lock);
        race_count++;
        if ((i & 15) == 0) usleep(20);
        unlock(&race_lock);
    }
    __atomic_add_fetch(&race_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_lock_sleepers_race(void) {
    const char *want = getenv("GORT_TEST_EXPECT_RSEQ");
    if (want) CHECK_EQ(rseq_ok, *want == '1');
    race_iters = 20000 * test_scale();
    uint64_t fences0 = rseq_fences;
    pthread_t t[LOCKERS];
    for (int i = 0; i < LOCKERS; i++) CHECK(pthread_create(&t[i], NULL, race_locker, NULL) == 0);
    int64_t deadline = nanotime() + 60000000000LL;
    while (__atomic_load_n(&race_done, __ATOMIC_ACQUIRE) < LOCKERS && nanotime() < deadline)
        usleep(1000);
    CHECK_EQ(__atomic_load_n(&race_done, __ATOMIC_ACQUIRE), LOCKERS);
    for (int i = 0; i < LOCKERS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    CHECK_EQ(race_count, LOCKERS * race_iters);
    CHECK_EQ(race_lock.key, 0);
    fprintf(stderr, "  rseq release %s, %llu fences\n", rseq_ok ? "on" : "off",
            (unsigned long long)(rseq_fences - fences0));
    if (rseq_ok) CHECK(rseq_fences > fences0); /* the fence path ran */
}

static note_t note;
static int64_t woke_at;

static void *note_sleeper(void *arg) {
    (void)arg;
    note_sleep(&note);
    woke_at = nanotime();
    return NULL;
}

static note_t tnote;
static int tnote_result = -1;

static void *note_tsleeper(void *arg) {
    (void)arg;
    tnote_result = note_tsleep(&tnote, 5000000000ll); /* woken long before */
    return NULL;
}

static void test_note(void) {
    /* sleep / wakeup */
    note_clear(&note);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, note_sleeper, NULL) == 0);
    usleep(50000);
    CHECK_EQ(woke_at, 0);
    int64_t t0 = nanotime();
    note_wakeup(&note);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(woke_at >= t0);
    CHECK(woke_at - t0 < 2000000000);
    /* A note woken before the sleep: no wait. */
    note_sleep(&note);
    note_wakeup(&note); /* twice: harmless */
    CHECK(note_tsleep(&note, 0));

    /* tsleep times out, having waited about as long as asked. */
    note_t n;
    note_clear(&n);
    t0 = nanotime();
    CHECK(!note_tsleep(&n, 50000000));
    int64_t waited = nanotime() - t0;
    CHECK(waited >= 50000000);
    CHECK(waited < 2000000000);
    t0 = nanotime();
    CHECK(!note_tsleep(&n, 0));
    CHECK(nanotime() - t0 < 1000000000);

    /* tsleep woken early returns true, well before its timeout. */
    note_clear(&tnote);
    t0 = nanotime();
    CHECK(pthread_create(&t, NULL, note_tsleeper, NULL) == 0);
    usleep(30000);
    note_wakeup(&tnote);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_EQ(tnote_result, 1);
    CHECK(nanotime() - t0 < 4000000000ll);

    /* note_clear makes it reusable. */
    note_clear(&tnote);
    CHECK(!note_tsleep(&tnote, 1000000));
}

/* ---- time ---- */

static void test_nanotime(void) {
    int64_t prev = nanotime();
    CHECK(prev > 0);
    for (int i = 0; i < 1000000; i++) {
        int64_t now = nanotime();
        CHECK(now >= prev);
        prev = now;
    }
    int64_t t0 = nanotime();
    usleep(20000);
    int64_t d = nanotime() - t0;
    CHECK(d >= 20000000);
    CHECK(d < 5000000000ll);
    /* The same clock as CLOCK_MONOTONIC. */
    int64_t a = nanotime(), b = test_now_ns(), c = nanotime();
    CHECK(a <= b && b <= c);
}

/* ---- os ---- */

static size_t status_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

static void test_os(void) {
    CHECK_EQ(os_page_size(), (size_t)sysconf(_SC_PAGESIZE));
    CHECK(os_ncpu() >= 1);
    CHECK(os_ncpu() <= 4096);

    size_t r0 = os_rss();
    CHECK(r0 > 0);
    size_t s0 = status_rss();
    CHECK(r0 / 2 < s0 && s0 < r0 * 2);

    /* os_map gives zeroed memory that costs RSS once touched. */
    const size_t len = 32 << 20;
    uint8_t *p = NULL;
    CHECK_EQ(os_map((void **)&p, NULL, len, false), 0);
    CHECK(p != NULL);
    CHECK_EQ((uintptr_t)p % os_page_size(), 0);
    for (size_t i = 0; i < len; i += 4096) CHECK(p[i] == 0);
    size_t r1 = os_rss();
    memset(p, 0xab, len);
    size_t r2 = os_rss();
    CHECK(r2 >= r1 + len / 10 * 9);
    /* os_decommit returns the pages: they read zero and RSS falls. */
    CHECK_EQ(os_decommit(p + len / 2, len / 2), 0);
    size_t r3 = os_rss();
    CHECK(r2 - r3 >= len / 2 / 10 * 9);
    for (size_t i = 0; i < len / 2; i++) CHECK(p[i] == 0xab);
    for (size_t i = len / 2; i < len; i++) CHECK(p[i] == 0);
    p[len - 1] = 1; /* still usable */
    CHECK(p[len - 1] == 1);
    CHECK_EQ(os_unmap(p, len), 0);

    /* Exact placement: a taken address is refused with -EEXIST. */
    uint8_t *q;
    CHECK_EQ(os_map((void **)&q, NULL, 1 << 20, false), 0);
    void *r = NULL;
    CHECK_EQ(os_map(&r, q, 1 << 20, true), -EEXIST);
    CHECK_EQ(os_unmap(q, 1 << 20), 0);
    CHECK_EQ(os_map(&r, q, 1 << 20, true), 0); /* free again: exactly there */
    CHECK(r == q);
    CHECK_EQ(os_unmap(r, 1 << 20), 0);

    /* Reserve, then commit: usable and zero. */
    uint8_t *res;
    CHECK_EQ(os_reserve((void **)&res, NULL, 4 << 20), 0);
    CHECK_EQ(os_commit(res + (1 << 20), 1 << 20), 0);
    for (size_t i = 0; i < (1 << 20); i += 4096) CHECK(res[(1 << 20) + i] == 0);
    memset(res + (1 << 20), 1, 1 << 20);
    CHECK_EQ(os_unmap(res, 4 << 20), 0);

    /* Fault injection: the n-th call fails with -ENOMEM, once. */
    void *m[4];
    os_fail_after(2);
    CHECK_EQ(os_map(&m[0], NULL, 4096, false), 0);
    CHECK_EQ(os_map(&m[1], NULL, 4096, false), -ENOMEM);
    CHECK_EQ(os_map(&m[2], NULL, 4096, false), 0);
    os_fail_after(1);
    CHECK_EQ(os_reserve(&m[3], NULL, 4096), -ENOMEM);
    CHECK_EQ(os_reserve(&m[3], NULL, 4096), 0);
    os_fail_after(0);
    os_unmap(m[0], 4096);
    os_unmap(m[2], 4096);
    os_unmap(m[3], 4096);
}

/* ---- threads ---- */

static note_t thread_note;
static int thread_tid;

static void thread_fn(void *arg) {
    thread_tid = os_gettid();
    *(int *)arg = 42;
    note_wakeup(&thread_note);
}

static void test_thread(void) {
    static int value;
    note_clear(&thread_note);
    CHECK_EQ(os_thread_start(thread_fn, &value, 0, "gort-test"), 0);
    CHECK(note_tsleep(&thread_note, 5000000000ll));
    CHECK_EQ(value, 42);
    CHECK(thread_tid > 0);
    CHECK(thread_tid != os_gettid());
    CHECK_EQ(os_gettid(), getpid());
    note_clear(&thread_note);
    CHECK_EQ(os_thread_start(thread_fn, &value, 64 << 10, "gort-small"), 0);
    CHECK(note_tsleep(&thread_note, 5000000000ll));
}

static void thread_waits(void *arg) {
    while (!__atomic_load_n((long *)arg, __ATOMIC_ACQUIRE)) usleep(1000);
}

/* gort_version, the headers' macros and CMake's project VERSION agree. */
static void test_version(void) {
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", GORT_VERSION_MAJOR, GORT_VERSION_MINOR,
             GORT_VERSION_PATCH);
    CHECK(strcmp(gort_version(), want) == 0);
    CHECK(strcmp(GORT_VERSION_STRING, want) == 0);
    CHECK(strcmp(gort_version(), GORT_PROJECT_VERSION) == 0);
}

/* The kernel's thread count, and os_thread_start's (the deadlock check
 * tells the program's threads from gort's with them). */
static void *idle_thread(void *arg) {
    (void)arg;
    pause();
    return NULL;
}
static void test_thread_counts(void) {
    int n0 = os_nthreads();
    CHECK_GE(n0, 1);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, idle_thread, NULL) == 0);
    CHECK_EQ(os_nthreads(), n0 + 1);
    int c0 = os_thread_count();
    static long go;
    CHECK_EQ(os_thread_start(thread_waits, &go, 0, "test"), 0);
    CHECK_EQ(os_thread_count(), c0 + 1);
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 1000 && os_thread_count() != c0; i++) usleep(1000);
    CHECK_EQ(os_thread_count(), c0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "env-child") == 0) return env_child();
    RUN(test_version);
    RUN(test_thread_counts);
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    CHECK(n > 0);
    self_path[n] = 0;
    RUN(test_parse_int);
    RUN(test_parse_gogc);
    RUN(test_env_init);
    RUN(test_print);
    RUN(test_fatal);
    RUN(test_lock);
    RUN(test_lock_sleep);
    RUN(test_lock_sleepers_race);
    RUN(test_note);
    RUN(test_nanotime);
    RUN(test_os);
    RUN(test_thread);
    RUN(test_parse_bytes);
    RUN(test_parse_plus_sign); /* last: it fails on a known deviation from Go's syntax */
    fprintf(stderr, "ok\n");
    return test_result();
}
