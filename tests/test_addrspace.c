/* Address space and commit: gort costs what it uses.
 *
 * - RLIMIT_AS: with 256 MiB of address space, gort_malloc and gort_main
 *   work, goroutines, channels and timers included (it used to need ~1.7 GB:
 *   the first gort_malloc failed under 1 GiB). Reservations are lazy: the
 *   flat page map and the arena index grow with the heap, a class's stack
 *   regions start at 16 MiB, Ms' thread stacks are 1 MiB.
 * - Huge alignments: gort_posix_memalign(1 TiB, 16) maps one page and gives
 *   it back on free (it used to grow the heap by 1 TiB and commit 2.1 GB of
 *   metadata, for good).
 * - A channel's buffer from fresh pages is not touched (gort_chan_make of
 *   2 GiB used to write all of it: 2.1 GB RSS, 1.4 s).
 * - makechan: "size out of range" only for sizes no allocation can have; a
 *   size in range that cannot be allocated is out of memory.
 * Each case runs in a forked child, so that its address space is its own. */
#include "test_gort.h"

#include "gort/chan.h"
#include "gort/malloc.h"
#include "gort/sched.h"
#include "gort/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>

#define MiB ((size_t)1 << 20)

/* A /proc/self/status figure, in bytes. With read(2), not stdio: fopen's
 * malloc on a thread other than the main one makes glibc reserve a 64 MiB
 * arena, which this file would then measure as gort's. */
static size_t status_kb(const char *key) {
    static char buf[8192];
    int fd = open("/proc/self/status", O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(n > 0);
    buf[n] = 0;
    const char *p = strstr(buf, key);
    CHECK(p != NULL);
    return strtoull(p + strlen(key) + 1, NULL, 10) * 1024;
}
#define vm_size() status_kb("VmSize")
#define vm_rss()  status_kb("VmRSS")

/* Runs fn in a child; it must exit 0. */
static void child(const char *name, void (*fn)(void)) {
    if (!test_selected(name)) return;
    fprintf(stderr, "=== %s\n", name);
    test_current_ = name;
    test_ran_++;
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(120);
        fn();
        fflush(NULL);
        _exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s: child %s %d\n", name, WIFEXITED(st) ? "exited" : "killed by signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        test_fail();
    }
}

/* ---- RLIMIT_AS ------------------------------------------------------------------------ */

static gort_waitgroup rl_wg = GORT_WAITGROUP_INIT;

static void rl_worker(void *arg) {
    gort_chan *c = arg;
    int64_t v = 0;
    gort_chan_recv(c, &v);
    void *p = gort_malloc(1000 + (size_t)v);
    CHECK(p != NULL);
    gort_sleep(1000000);
    gort_free(p);
    gort_waitgroup_done(&rl_wg);
}

static int rl_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_chan *c = gort_chan_make(sizeof(int64_t), 16);
    gort_waitgroup_add(&rl_wg, 200);
    for (int64_t i = 0; i < 200; i++) {
        CHECK_GT(gort_go(rl_worker, c), 0);
        gort_chan_send(c, &i);
    }
    gort_waitgroup_wait(&rl_wg);
    void *big = gort_malloc(32 * MiB);
    CHECK(big != NULL);
    memset(big, 1, 32 * MiB);
    gort_free(big);
    CHECK(gort_chan_recv(gort_after(1000000), NULL));
    fprintf(stderr, "    VmSize in gort_main: %zu MiB\n", vm_size() / MiB);
    return 0;
}

static void rlimit_child(void) {
    struct rlimit r = {256 * MiB, 256 * MiB};
    CHECK(setrlimit(RLIMIT_AS, &r) == 0);
    void *p = gort_malloc(16);
    CHECK(p != NULL);
    gort_free(p);
    gort_gomaxprocs(2);
    CHECK_EQ(gort_main(rl_main, 0, NULL), 0);
}

/* ---- huge alignments ------------------------------------------------------------------------ */

static void align_child(void) {
    void *warm = gort_malloc(16); /* the heap exists before we measure */
    size_t vm0 = vm_size(), rss0 = vm_rss();
    void *p = NULL;
    CHECK_EQ(gort_posix_memalign(&p, (size_t)1 << 40, 16), 0);
    CHECK_EQ((uintptr_t)p % ((size_t)1 << 40), 0);
    memset(p, 7, 16);
    CHECK_GE(gort_usable_size(p), 16);
    size_t vm1 = vm_size(), rss1 = vm_rss();
    fprintf(stderr, "    1 TiB alignment: VmSize +%zu KiB, RSS +%zu KiB\n", (vm1 - vm0) >> 10,
            rss1 > rss0 ? (rss1 - rss0) >> 10 : 0);
    CHECK_LT(vm1 - vm0, 16 * MiB);
    CHECK_LT(rss1 > rss0 ? rss1 - rss0 : 0, 8 * MiB);
    gort_free(p);
    CHECK_LT(vm_size() - vm0 + 0, 16 * MiB);
    /* A big object with a big alignment, touched in one page only. */
    CHECK_EQ(gort_posix_memalign(&p, 128 * MiB, 200 * MiB), 0);
    CHECK_EQ((uintptr_t)p % (128 * MiB), 0);
    ((char *)p)[100 * MiB] = 1;
    CHECK_GE(gort_usable_size(p), 200 * MiB);
    CHECK_LT(vm_rss() - rss0, 16 * MiB);
    gort_free(p);
    CHECK_LT(vm_size() - vm0, 16 * MiB); /* the mapping is given back */
    /* realloc keeps the bytes, either way (into the heap, which keeps its
     * address space). */
    CHECK_EQ(gort_posix_memalign(&p, 128 * MiB, 200 * MiB), 0);
    ((char *)p)[100 * MiB] = 1;
    void *q = gort_realloc(p, 300 * MiB);
    CHECK(q != NULL);
    CHECK_EQ(((char *)q)[100 * MiB], 1);
    CHECK_EQ(gort_posix_memalign(&p, 128 * MiB, 200 * MiB), 0);
    ((char *)p)[10] = 2;
    void *r = gort_realloc(p, 1000);
    CHECK(r != NULL);
    CHECK_EQ(((char *)r)[10], 2);
    gort_free(r);
    gort_free(q);
    /* aligned_alloc goes the same way. */
    q = gort_aligned_alloc((size_t)1 << 30, 100);
    CHECK(q != NULL);
    CHECK_EQ((uintptr_t)q % ((size_t)1 << 30), 0);
    gort_free(q);
    gort_free(warm);
    /* POSIX codes, positive. */
    CHECK_EQ(gort_posix_memalign(&p, 24, 16), EINVAL);
    CHECK_EQ(gort_posix_memalign(&p, (size_t)1 << 46, (size_t)1 << 47), ENOMEM);
}

static void direct_double_free(void) {
    void *p = NULL;
    CHECK_EQ(gort_posix_memalign(&p, (size_t)1 << 30, 100), 0);
    gort_free(p);
    gort_free(p);
}

/* ---- channel buffers ----------------------------------------------------------------------- */

static int lazy_main(int argc, char **argv) {
    (void)argc, (void)argv;
    size_t rss0 = vm_rss();
    int64_t t0 = test_now_ns();
    gort_chan *c = gort_chan_make_noscan(1, 2048 * MiB);
    int64_t dt = test_now_ns() - t0;
    size_t rss1 = vm_rss();
    fprintf(stderr, "    2 GiB buffer: RSS +%zu KiB, %.1f ms\n",
            rss1 > rss0 ? (rss1 - rss0) >> 10 : 0, dt / 1e6);
    CHECK_LT(rss1 > rss0 ? rss1 - rss0 : 0, 64 * MiB);
    CHECK_EQ(gort_chan_cap(c), 2048 * MiB);
    for (char v = 0; v < 100; v++) gort_chan_send(c, &v);
    for (char v = 0; v < 100; v++) {
        char w = -1;
        CHECK(gort_chan_recv(c, &w));
        CHECK_EQ(w, v);
    }
    /* A small buffered channel still starts zeroed (its slots are read back
     * as zero values after close). */
    gort_chan *s = gort_chan_make(sizeof(int64_t), 4);
    gort_chan_close(s);
    int64_t z = 5;
    CHECK(!gort_chan_recv(s, &z));
    CHECK_EQ(z, 0);
    return 0;
}

static void lazy_child(void) {
    CHECK_EQ(gort_main(lazy_main, 0, NULL), 0);
}

/* ---- makechan: out of range, or out of memory ----------------------------------------------- */

static int range_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_chan_make(8, (size_t)1 << 46); /* 2^49 bytes: more than any allocation */
    return 0;
}
static void range_child(void) {
    exit(gort_main(range_main, 0, NULL));
}

static int oom_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_chan_make(1, (size_t)1 << 47); /* in range, but 128 TiB cannot be had */
    return 0;
}
static void oom_child(void) {
    exit(gort_main(oom_main, 0, NULL));
}

static void test_makechan_range(void) {
    expect_death(range_child, 2, "panic: makechan: size out of range");
    const char *out = expect_death(oom_child, 2, "fatal error: out of memory");
    CHECK_CONTAINS(out, "runtime: out of memory: cannot allocate");
}

static void test_direct_double_free(void) {
    expect_death(direct_double_free, 2, "fatal error: gort_free: ");
}

int main(int argc, char **argv) {
    if (argc > 1) test_filter(argv[1]);
    if (TEST_ASAN) {
        fprintf(stderr, "=== test_rlimit_as_256m: skipped under ASan (its shadow takes TiBs)\n");
    } else {
        child("test_rlimit_as_256m", rlimit_child);
    }
    child("test_memalign_huge", align_child);
    RUN(test_direct_double_free);
    child("test_chan_buffer_lazy", lazy_child);
    RUN(test_makechan_range);
    fprintf(stderr, "all address space tests passed\n");
    return test_result();
}
