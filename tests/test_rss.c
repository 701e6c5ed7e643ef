/* Tests that freed memory goes back to the OS, checked against the kernel's
 * own figures, and that the allocator fails cleanly when the OS refuses
 * memory.
 *
 * - gort_free_os_memory: ~256 MiB of mixed sizes, every page touched; VmRSS
 *   (read from /proc/self/status with stdio, independently of os_rss) must
 *   grow by about that much, and after freeing everything and calling
 *   gort_free_os_memory fall by at least 80% of it, with MemStats'
 *   heap_released growing alike. Throughout, the resident bytes of the arenas
 *   (from /proc/self/smaps) never exceed what MemStats says is retained
 *   (heap_sys - heap_released): a page counted as released must really be
 *   gone.
 * - The background scavenger: the same without gort_free_os_memory; within a
 *   bounded wait, the retained heap must come down to the scavenger's goal
 *   (src/mem/scavenge.h: 10% over the peak of heap_inuse in the last
 *   second, at least 4 MiB over it) and VmRSS with it.
 * - Fault injection (Lua's way, for mmap): os_fail_after(n) fails the n-th
 *   OS mapping from now; sweeping n over allocation patterns that need new
 *   arenas, span records and mcaches, every allocation must return a usable
 *   block or NULL (never crash or corrupt the heap, which pagealloc_verify
 *   checks), some must return NULL, and all must work again afterwards. */
#include "test.h"

#include "base/os.h"
#include "gort/malloc.h"
#include "gort/memstats.h"
#include "mem/arena.h"
#include "mem/mpagealloc.h"
#include "mem/scavenge.h"

#include <errno.h>
#include <pthread.h>

#define MiB ((size_t)1 << 20)

/* VmRSS from /proc/self/status, in bytes. */
static size_t vm_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    char line[256];
    size_t kb = 0;
    bool found = false;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1) {
            found = true;
            break;
        }
    fclose(f);
    CHECK(found);
    return kb * 1024;
}

/* Resident bytes of the mappings inside gort's arenas, from /proc/self/smaps. */
static size_t arena_rss(void) {
    FILE *f = fopen("/proc/self/smaps", "r");
    CHECK(f != NULL);
    char line[512];
    size_t total = 0;
    bool in_arena = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        size_t kb;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in_arena = arena_of(lo) && arena_of(hi - 1);
        else if (in_arena && sscanf(line, "Rss: %zu kB", &kb) == 1)
            total += kb * 1024;
    }
    fclose(f);
    return total;
}

static gort_memstats read_ms(void) {
    gort_memstats ms;
    gort_read_memstats(&ms);
    CHECK(ms.heap_released <= ms.heap_idle);
    CHECK_EQ(ms.heap_idle + ms.heap_inuse, ms.heap_sys);
    return ms;
}

/* The kernel agrees with MemStats: no page counted as released is resident. */
static void check_retained_bound(void) {
    gort_memstats ms = read_ms();
    size_t res = arena_rss();
    uint64_t retained = ms.heap_sys - ms.heap_released;
    if (res > retained) {
        fprintf(stderr, "arenas hold %zu resident bytes, MemStats says %llu retained\n", res,
                (unsigned long long)retained);
        CHECK(0);
    }
}

/* ---- a mixed workload of ~256 MiB ---- */

enum { MAXBLK = 1 << 18 };
static void **blocks;
static size_t nblocks;
static uint64_t seed = 88172645463325252ull;

static uint64_t rnd(void) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

/* Allocates about total bytes: a third in small objects, a quarter in
 * medium ones, the rest large; writes every byte. Returns the bytes asked for. */
static size_t alloc_mixed(size_t total) {
    size_t small = total / 3, medium = total / 4, large = total - small - medium, got = 0;
    nblocks = 0;
    for (size_t b = 0; b < small; nblocks++) {
        size_t n = 16 + rnd() % 2033;
        CHECK(nblocks < MAXBLK);
        blocks[nblocks] = gort_malloc(n);
        CHECK(blocks[nblocks] != NULL);
        memset(blocks[nblocks], 0x5a, n);
        b += n;
        got += n;
    }
    for (size_t b = 0; b < medium; nblocks++) {
        size_t n = 2049 + rnd() % 30720;
        blocks[nblocks] = gort_malloc(n);
        CHECK(blocks[nblocks] != NULL);
        memset(blocks[nblocks], 0x5a, n);
        b += n;
        got += n;
    }
    for (size_t b = 0; b < large; nblocks++) {
        size_t n = 32769 + rnd() % (4 * MiB);
        blocks[nblocks] = gort_malloc(n);
        CHECK(blocks[nblocks] != NULL);
        memset(blocks[nblocks], 0x5a, n);
        b += n;
        got += n;
    }
    return got;
}

static void free_mixed(void) {
    /* In a shuffled order, as a program would. */
    for (size_t i = nblocks; i > 1; i--) {
        size_t j = rnd() % i;
        void *t = blocks[i - 1];
        blocks[i - 1] = blocks[j];
        blocks[j] = t;
    }
    for (size_t i = 0; i < nblocks; i++) gort_free(blocks[i]);
    nblocks = 0;
}

static void test_free_os_memory(void) {
    gort_free_os_memory();
    check_retained_bound();
    size_t rss0 = vm_rss();
    gort_memstats ms0 = read_ms();

    size_t total = alloc_mixed(256 * MiB);
    size_t rss1 = vm_rss();
    gort_memstats ms1 = read_ms();
    fprintf(stderr, "allocated %zu MiB: VmRSS %zu -> %zu MiB\n", total / MiB, rss0 / MiB,
            rss1 / MiB);
    CHECK(rss1 >= rss0 + total / 10 * 9); /* every page was touched */
    CHECK(ms1.heap_inuse >= ms0.heap_inuse + total);
    CHECK(arena_rss() >= total / 10 * 9);
    check_retained_bound();

    free_mixed();
    check_retained_bound();
    gort_free_os_memory();
    size_t rss2 = vm_rss();
    gort_memstats ms2 = read_ms();
    fprintf(stderr, "freed, gort_free_os_memory: VmRSS %zu MiB, heap_released +%llu MiB\n",
            rss2 / MiB, (unsigned long long)((ms2.heap_released - ms1.heap_released) / MiB));
    CHECK(rss2 < rss1);
    CHECK(rss1 - rss2 >= total / 10 * 8);
    CHECK(ms2.heap_released - ms1.heap_released >= total / 10 * 8);
    CHECK_EQ(ms2.heap_idle, ms2.heap_released); /* every free page went back */
    CHECK(ms2.heap_inuse <= ms0.heap_inuse + 4 * MiB);
    CHECK(arena_rss() <= ms2.heap_inuse + 4 * MiB);
    check_retained_bound();
}

static void test_background_scavenger(void) {
    gort_free_os_memory();
    size_t rss0 = vm_rss();
    size_t total = alloc_mixed(256 * MiB);
    size_t rss1 = vm_rss();
    gort_memstats ms1 = read_ms();
    CHECK(rss1 >= rss0 + total / 10 * 9);
    free_mixed();
    /* No gort_free_os_memory: the scavenger must find the pages itself. It
     * wakes every 100 ms and releases at most 64 MiB a time, once the
     * peak has been out of its one-second window (about 1.5 s here; the
     * bound leaves room for a loaded host). */
    int64_t t0 = test_now_ns(), deadline = t0 + 10000000000ll;
    size_t rss = 0;
    uint64_t retained = 0, goal = 0;
    gort_memstats ms;
    for (;;) {
        usleep(50000);
        ms = read_ms();
        goal = scavenge_goal();
        retained = ms.heap_sys - ms.heap_released;
        rss = vm_rss();
        /* rss can exceed rss1 right after the free (size_t: no wrap-around). */
        if ((retained <= goal + MiB && rss1 > rss && rss1 - rss >= total / 10 * 8) ||
            test_now_ns() > deadline)
            break;
    }
    fprintf(stderr,
            "after %.2f s: VmRSS %zu -> %zu MiB, retained %llu MiB, goal %llu MiB, "
            "heap_inuse %llu MiB\n",
            (double)(test_now_ns() - t0) / 1e9, rss1 / MiB, rss / MiB,
            (unsigned long long)(retained / MiB), (unsigned long long)(goal / MiB),
            (unsigned long long)(ms.heap_inuse / MiB));
    CHECK(ms.heap_released - ms1.heap_released >= total / 10 * 8);
    CHECK(retained <= goal + MiB);
    CHECK(rss1 > rss && rss1 - rss >= total / 10 * 8);
    /* The goal follows the heap down: what is left is near what is in use. */
    CHECK(goal <= ms.heap_inuse + ms.heap_inuse / 10 + 8 * MiB);
    check_retained_bound();
}

/* ---- fault injection ---- */

/* The pattern run under injection, in a forked child so that every n starts
 * from the same heap (Lua's way: the n-th failure, for n = 1, 2, ... until a
 * run sees none). Any allocation may fail; the first failure turns injection
 * off, and the failed call must then work when repeated. */
static int pattern_failed; /* 0 none, or which step saw the first failure */
static size_t pattern_step;

static void *pattern_ok(void *p) {
    pattern_step++;
    if (p) return p;
    if (!pattern_failed) pattern_failed = (int)pattern_step;
    os_fail_after(0);
    return NULL;
}

static void touch(void *p, size_t n) {
    uint8_t *b = p;
    b[0] = 1;
    b[n / 2] = 2;
    b[n - 1] = 3;
    CHECK(b[0] == 1 && b[n / 2] == 2 && b[n - 1] == 3);
}

enum { PSMALL = 3000, MAXLARGE = 64 };
static void *psmall[2 * PSMALL], *plarge[MAXLARGE + 2];
static int nlarge; /* enough to use up the free pages and grow by two arenas */

static void *pattern_thread(void *arg) {
    (void)arg;
    /* Small objects from a new thread: an mcache, spans and their records. */
    for (int i = 0; i < PSMALL; i++) {
        size_t n = 16 + (size_t)(i % 9) * 1000;
        void *p = pattern_ok(gort_malloc(n));
        if (!p) CHECK((p = gort_malloc(n)) != NULL);
        touch(p, n);
        psmall[i] = p;
    }
    /* Large ones past the free space: new arenas. */
    for (int i = 0; i < nlarge; i++) {
        size_t n = 24 * MiB + (size_t)i * PAGE_SIZE;
        void *p = pattern_ok(i % 3 == 1 ? gort_calloc(1, n) : gort_malloc(n));
        if (!p) CHECK((p = gort_malloc(n)) != NULL);
        touch(p, n);
        plarge[i] = p;
    }
    void *a = NULL;
    int rc = gort_posix_memalign(&a, 4 * MiB, 40 * MiB);
    CHECK(rc == 0 || rc == ENOMEM);
    if (rc) {
        pattern_ok(NULL);
        CHECK_EQ(gort_posix_memalign(&a, 4 * MiB, 40 * MiB), 0);
    } else {
        pattern_ok(a);
    }
    CHECK_EQ((uintptr_t)a % (4 * MiB), 0);
    touch(a, 40 * MiB);
    plarge[nlarge] = a;
    uint8_t *r = gort_malloc(100);
    CHECK(r != NULL);
    memset(r, 7, 100);
    uint8_t *r2 = pattern_ok(gort_realloc(r, 80 * MiB));
    if (!r2) {
        for (int i = 0; i < 100; i++) CHECK(r[i] == 7); /* a failed realloc keeps the block */
        CHECK((r2 = gort_realloc(r, 80 * MiB)) != NULL);
    }
    for (int i = 0; i < 100; i++) CHECK(r2[i] == 7);
    touch(r2, 80 * MiB);
    plarge[nlarge + 1] = r2;
    /* More small objects, in the classes the first ones did not use. */
    for (int i = 0; i < PSMALL; i++) {
        size_t n = 500 + (size_t)(i % 9) * 1000;
        void *p = pattern_ok(gort_malloc(n));
        if (!p) CHECK((p = gort_malloc(n)) != NULL);
        touch(p, n);
        psmall[PSMALL + i] = p;
    }
    return NULL;
}

/* The child: exits 10 if the n-th OS call did not come (past the pattern),
 * 11 if it failed and everything recovered; CHECK failures exit 1, crashes
 * die by a signal. */
static void pattern_child(int64_t n) {
    gort_memstats ms0 = read_ms();
    nlarge = (int)((ms0.heap_idle + 2 * ARENA_BYTES) / (24 * MiB)) + 1;
    CHECK(nlarge <= MAXLARGE);
    os_fail_after(n);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, pattern_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    bool fired = os_fail_pending() == 0; /* some failures are quiet (the flat page map's) */
    os_fail_after(0);
    CHECK(fired || !pattern_failed);
    pagealloc_verify();
    gort_memstats ms1 = read_ms();
    CHECK_EQ(ms1.heap_objects, ms0.heap_objects + 2 * PSMALL + (uint64_t)nlarge + 2);
    for (int i = 0; i < 2 * PSMALL; i++) gort_free(psmall[i]);
    for (int i = 0; i < nlarge + 2; i++) gort_free(plarge[i]);
    pagealloc_verify();
    gort_memstats ms2 = read_ms();
    CHECK_EQ(ms2.heap_objects, ms0.heap_objects);
    CHECK_EQ(ms2.heap_alloc, ms0.heap_alloc);
    fflush(NULL);
    _exit(fired ? 11 : 10);
}

static void test_fault_injection(void) {
    int64_t n;
    for (n = 1; n <= 500; n++) {
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            alarm(30);
            pattern_child(n);
        }
        int st;
        CHECK(waitpid(pid, &st, 0) == pid);
        if (!WIFEXITED(st) || (WEXITSTATUS(st) != 10 && WEXITSTATUS(st) != 11)) {
            fprintf(stderr, "os_fail_after(%lld): child %s %d\n", (long long)n,
                    WIFEXITED(st) ? "exited" : "killed by signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            CHECK(0);
        }
        if (WEXITSTATUS(st) == 10) break; /* the n-th OS call is past the pattern */
    }
    fprintf(stderr, "the pattern makes %lld OS calls; each one's failure was handled\n",
            (long long)(n - 1));
    CHECK(n <= 500);
    /* New arenas alone take two OS calls each (record, reservation), and the
     * pattern grows the heap several times. */
    CHECK(n - 1 >= 6);
    /* And the parent, which never had injection armed, is fine. */
    void *p = gort_malloc(100);
    CHECK(p != NULL);
    gort_free(p);
}

int main(void) {
    blocks = malloc(sizeof(void *) * MAXBLK);
    CHECK(blocks != NULL);
    memset(blocks, 0, sizeof(void *) * MAXBLK); /* before the first VmRSS */
    RUN(test_free_os_memory);
    RUN(test_background_scavenger);
    RUN(test_fault_injection);
    fprintf(stderr, "ok\n");
    return test_result();
}
