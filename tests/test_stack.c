/* Tests for src/sched/stack.c: goroutine stacks.
 *
 * Checked from outside, with the kernel as witness: the layout (stacks do not
 * overlap, each has its guard below, the whole usable range is writable),
 * guards that the kernel really refuses (a write(2) from them fails with
 * EFAULT), residency after trim and shrink (mincore), RSS per idle stack and
 * for a million live stacks (VmRSS), the mappings that mprotect guards cost
 * (/proc/self/maps), the cache's reuse order, the stats against what was
 * done, threads with their own caches, the alternate signal stack, and
 * out-of-memory paths (os_fail_after).
 *
 * Overflow is tested as it happens: a deep recursion on a pool stack, entered
 * with the arch context switch, runs into the guard, and the handler must
 * report "fatal error: stack overflow" and exit 2. stack_init runs once per
 * process and reads GORT_STACKGUARD then, so each guard kind (madvise,
 * mprotect, none) runs in a fresh process: this program re-executes itself
 * with a case name as argv[1] (see child_main). Switches tell ASan about the
 * new stack, as the scheduler must. */
#include "test.h"

#include "arch/arch.h"
#include "base/env.h"
#include "base/os.h"
#include "base/print.h"
#include "sched/stack.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#if TEST_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

static uintptr_t P; /* the page size */
static char *self_exe;

/* ---- helpers ------------------------------------------------------------- */

static size_t proc_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    char line[256];
    size_t v = 0, n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0) v = (size_t)atol(line + n);
    fclose(f);
    return v;
}

static long count_maps(void) {
    int fd = open("/proc/self/maps", O_RDONLY);
    CHECK(fd >= 0);
    char buf[65536];
    long lines = 0;
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t j = 0; j < r; j++) lines += buf[j] == '\n';
    close(fd);
    return lines;
}

/* Whether the kernel lets it read p: a write(2) from an inaccessible page
 * fails with EFAULT instead of faulting the process. */
static bool readable(uintptr_t p) {
    static int pfd[2] = {-1, -1};
    if (pfd[0] < 0) CHECK(pipe(pfd) == 0);
    ssize_t r = write(pfd[1], (void *)p, 1);
    if (r == 1) {
        char c;
        CHECK(read(pfd[0], &c, 1) == 1);
        return true;
    }
    CHECK(r == -1 && errno == EFAULT);
    return false;
}

static bool resident(uintptr_t p) {
    unsigned char v = 0;
    CHECK(mincore((void *)(p & ~(P - 1)), P, &v) == 0);
    return v & 1;
}

static size_t resident_pages(uintptr_t lo, uintptr_t hi) {
    size_t n = 0;
    for (uintptr_t p = lo; p < hi; p += P) n += resident(p);
    return n;
}

static void stats(struct stack_stats *s) {
    stack_read_stats(s);
}

static int guard_kind_expected(void) {
    const char *m = getenv("GORT_STACKGUARD");
    if (m && strcmp(m, "mprotect") == 0) return STACK_GUARD_MPROTECT;
    if (m && strcmp(m, "none") == 0) return 0;
    return -1; /* madvise where the kernel has it */
}

/* ---- switching onto a pool stack (the scheduler's pattern) --------------- */

static gort_context main_ctx, g_ctx;
#if TEST_ASAN
static void *main_fake, *g_fake; /* ASan's fake-stack handles while suspended */
static const void *main_bottom;  /* the main stack, as ASan reports it */
static size_t main_size;
#endif

static void enter(const gstack *st, void (*fn)(void *), void *arg) {
    arch_ctx_make(&g_ctx, (void *)st->lo, st->size, fn, arg);
#if TEST_ASAN
    __sanitizer_start_switch_fiber(&main_fake, (void *)st->lo, st->size);
#endif
    arch_ctx_switch(&main_ctx, &g_ctx);
#if TEST_ASAN
    __sanitizer_finish_switch_fiber(main_fake, NULL, NULL);
#endif
}

static void started(void) {
#if TEST_ASAN
    __sanitizer_finish_switch_fiber(NULL, &main_bottom, &main_size);
#endif
}

static void back(void) {
#if TEST_ASAN
    __sanitizer_start_switch_fiber(&g_fake, main_bottom, main_size);
#endif
    arch_ctx_switch(&g_ctx, &main_ctx);
}

/* Recursion down to a target address (0: forever), each frame full of
 * nonzero bytes, as an overflowing C program would leave them. */
static volatile uintptr_t rec_target;
static volatile long rec_sink;

__attribute__((noinline)) static long rec(long d) {
    volatile char buf[200];
    for (size_t j = 0; j < sizeof buf; j++) buf[j] = (char)(0x5a + d);
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    long r = 0;
    if (rec_target == 0 || fp > rec_target) r = rec(d + 1);
    return r + buf[d % 200];
}

static void rec_entry(void *arg) {
    (void)arg;
    started();
    rec_sink = rec(0);
    back();
    abort();
}

/* ---- child processes ----------------------------------------------------- */

static const char *child_case, *child_guard;

static void exec_child(void) {
    if (child_guard)
        setenv("GORT_STACKGUARD", child_guard, 1);
    else
        unsetenv("GORT_STACKGUARD");
    execl(self_exe, self_exe, child_case, (char *)NULL);
    _exit(99);
}

static const char *run_child(const char *name, const char *guard, int code, const char *msg) {
    child_case = name;
    child_guard = guard;
    fprintf(stderr, "    child %s (GORT_STACKGUARD=%s)\n", name, guard ? guard : "");
    const char *out = expect_death(exec_child, code, msg);
    return out;
}

static void hook(uintptr_t addr) {
    struct stack_fault f;
    bool info = stack_fault_info(&f);
    bool ok = info && f.addr == addr && f.signo == SIGSEGV && addr >= f.stack.lo - 2 * P &&
              addr < f.stack.lo - P && f.sp >= f.stack.lo - 2 * P && f.sp < f.stack.hi &&
              stack_is_guard(addr) && f.owner == (void *)0x600d;
    print("fatal error: stack overflow (test hook: guard of [%p, %p), info %s)\n",
          (void *)f.stack.lo, (void *)f.stack.hi, ok ? "ok" : "BAD");
    _exit(2);
}

static void child_overflow(bool default_hook) {
    CHECK(stack_init(default_hook ? NULL : hook) == 0);
    CHECK(stack_thread_init() == 0);
    gstack st;
    CHECK(stack_alloc(NULL, &st, 64 << 10) == 0);
    int want = guard_kind_expected();
    if (want >= 0) CHECK_EQ(st.flags & STACK_GUARD_MASK, want);
    stack_set_owner(&st, (void *)0x600d);
    rec_target = 0;
    enter(&st, rec_entry, NULL);
    fprintf(stderr, "recursion returned\n");
    exit(1);
}

/* A non-guard fault goes to the handler that was there before. */
static void user_segv(int sig) {
    (void)sig;
    static const char m[] = "user handler ran\n";
    ssize_t r = write(2, m, sizeof m - 1);
    (void)r;
    _exit(7);
}

static void child_chain(bool user) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = user ? user_segv : SIG_DFL;
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);
    CHECK(stack_init(NULL) == 0);
    CHECK(stack_thread_init() == 0);
    volatile uintptr_t bad = 16; /* not a guard, not mapped */
    *(volatile int *)bad = 1;
    exit(1);
}

static void child_million(void) {
    CHECK(stack_init(NULL) == 0);
    /* Under ASan a quarter: its shadow reads at stack_free made the million take 10 s
     * alone and more than the child's 30 s bound on CI's two loaded cores. */
    long n = (TEST_ASAN ? 250000 : 1000000) * test_scale();
    gstack *v = mmap(NULL, (size_t)n * sizeof *v, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(v != MAP_FAILED);
    memset(v, 0, (size_t)n * sizeof *v);
    struct stack_stats s0, s1, s2;
    stats(&s0);
    size_t rss0 = os_rss(), pte0 = proc_status_kb("VmPTE:");
    int64_t t0 = test_now_ns();
    for (long i = 0; i < n; i++) CHECK(stack_alloc(NULL, &v[i], 0) == 0);
    int64_t t1 = test_now_ns();
    size_t rss1 = os_rss(), pte1 = proc_status_kb("VmPTE:");
    long maps = count_maps();
    stats(&s1);
    fprintf(stderr,
            "    %ld stacks of %zu KiB: alloc %.2f s, RSS +%zu MiB (%.0f B/stack), VmPTE +%zu MiB, "
            "%ld maps; guards madvise %llu mprotect %llu (budget %llu), unguarded %llu\n",
            n, (size_t)v[0].size >> 10, (t1 - t0) / 1e9, (rss1 - rss0) >> 20,
            (double)(rss1 - rss0) / (double)n, (pte1 - pte0) >> 10, maps,
            (unsigned long long)s1.guards_madvise, (unsigned long long)s1.guards_mprotect,
            (unsigned long long)s1.mprotect_budget, (unsigned long long)s1.unguarded);
    CHECK(rss1 - rss0 < (256u << 20)); /* metadata only: stacks are untouched */
    CHECK_EQ(s1.inuse_stacks - s0.inuse_stacks, n);
    CHECK_EQ(s1.inuse_bytes - s0.inuse_bytes, (uint64_t)n * v[0].size);
    CHECK(s1.sys_bytes >= s1.inuse_bytes);
    int want = guard_kind_expected();
    uint64_t carved = s1.guards_madvise + s1.guards_mprotect + s1.unguarded;
    CHECK(carved >= (uint64_t)n);
    if (want == STACK_GUARD_MPROTECT) {
        CHECK(s1.mprotect_budget > 1000);
        CHECK_EQ(s1.guards_mprotect, s1.mprotect_budget);
        CHECK_EQ(s1.guards_madvise, 0);
        CHECK(maps < 65530);
    } else if (want < 0) {
        CHECK(s1.guards_madvise >= (uint64_t)n);
    }
    /* A sample: guards where the stats say, writable tops, clean canaries. */
    for (long i = 0; i < n; i += n / 1000) {
        CHECK_EQ(stack_is_guard(v[i].lo - 2 * P), (v[i].flags & STACK_GUARD_MASK) != 0);
        CHECK(!stack_is_guard(v[i].lo - P));
        *(volatile uint64_t *)(v[i].hi - 8) = (uint64_t)i;
        CHECK(stack_check_canary(&v[i]));
    }
    for (long i = 0; i < n; i += n / 1000) CHECK_EQ(*(uint64_t *)(v[i].hi - 8), i);
    for (long i = 0; i < n; i++) stack_free(NULL, &v[i]);
    int64_t t2 = test_now_ns();
    stats(&s2);
    size_t rss2 = os_rss(), pte2 = proc_status_kb("VmPTE:");
    fprintf(stderr,
            "    free %.2f s, RSS +%zu MiB, VmPTE +%zu MiB, %ld maps, %llu stacks cached, "
            "guards madvise %llu mprotect %llu unguarded %llu\n",
            (t2 - t1) / 1e9, (rss2 - rss0) >> 20, (pte2 - pte0) >> 10, count_maps(),
            (unsigned long long)s2.cached_stacks, (unsigned long long)s2.guards_madvise,
            (unsigned long long)s2.guards_mprotect, (unsigned long long)s2.unguarded);
    CHECK_EQ(s2.inuse_stacks, s0.inuse_stacks + s2.cached_stacks - s0.cached_stacks);
    CHECK(s2.cached_stacks <= 512);
    /* Emptied regions were reset: their page tables and guards are gone. */
    CHECK(s2.guards_madvise + s2.guards_mprotect + s2.unguarded < carved / 2);
    if (!TEST_ASAN) /* ASan maps shadow page tables of its own as stack_free reads them */
        CHECK(pte2 - pte0 < (pte1 - pte0) / 2 + 8192); /* kB */
    CHECK(rss2 - rss0 < (64u << 20));
    fprintf(stderr, "million ok\n");
    exit(0);
}

/* Unguarded stacks: the canary pages catch what the guard would have. */
static void child_unguarded(void) {
    CHECK(stack_init(NULL) == 0);
    CHECK(stack_thread_init() == 0);
    gstack st;
    CHECK(stack_alloc(NULL, &st, 64 << 10) == 0);
    CHECK_EQ(st.flags & STACK_GUARD_MASK, 0);
    CHECK(!stack_is_guard(st.lo - 2 * P));
    CHECK(readable(st.lo - 2 * P));
    struct stack_stats s;
    stats(&s);
    CHECK(s.unguarded >= 1);
    CHECK_EQ(s.guards_madvise + s.guards_mprotect, 0);
    /* Deep but inside: both checks pass. */
    rec_target = st.lo + 2048;
    enter(&st, rec_entry, NULL);
    CHECK(stack_check_canary(&st));
    CHECK(stack_check_deep(&st));
    /* 2 KiB past lo: the canary page is written. */
    rec_target = st.lo - 2048;
    enter(&st, rec_entry, NULL);
    CHECK(!stack_check_deep(&st));
    CHECK(!stack_check_canary(&st));
    fprintf(stderr, "unguarded ok\n");
    stack_free(NULL, &st); /* must not hand the slot on */
    exit(0);
}

static int child_main(const char *name) {
    if (strcmp(name, "overflow") == 0) child_overflow(false);
    if (strcmp(name, "overflow_default") == 0) child_overflow(true);
    if (strcmp(name, "chain_user") == 0) child_chain(true);
    if (strcmp(name, "chain_default") == 0) child_chain(false);
    if (strcmp(name, "million") == 0) child_million();
    if (strcmp(name, "unguarded") == 0) child_unguarded();
    if (strcmp(name, "badenv") == 0) {
        CHECK(stack_init(NULL) == 0);
        exit(0);
    }
    fprintf(stderr, "unknown case %s\n", name);
    return 1;
}

/* ---- cases in this process ----------------------------------------------- */

static int guard_kind; /* what this process's stacks get */

static void test_classes(void) {
    static const struct {
        size_t ask, want;
    } cases[] = {{1, 16 << 10},          {16 << 10, 16 << 10},   {(16 << 10) + 1, 32 << 10},
                 {100 << 10, 128 << 10}, {256 << 10, 256 << 10}, {(1 << 20) - 1, 1 << 20},
                 {3 << 20, 4 << 20}};
    for (size_t j = 0; j < sizeof cases / sizeof cases[0]; j++) {
        gstack st;
        CHECK(stack_alloc(NULL, &st, cases[j].ask) == 0);
        CHECK_EQ(st.size, cases[j].want);
        CHECK_EQ(st.hi - st.lo, st.size);
        CHECK_EQ(st.lo % P, 0);
        CHECK_EQ(st.hi % P, 0);
        CHECK_EQ(st.flags & STACK_GUARD_MASK, guard_kind);
        stack_free(NULL, &st);
    }
    gstack st;
    CHECK(stack_alloc(NULL, &st, 0) == 0);
    size_t want = 16 << 10;
    while (want < (size_t)opts.stacksize) want *= 2;
    CHECK_EQ(st.size, want);
    stack_free(NULL, &st);
    CHECK_EQ(stack_alloc(NULL, &st, ((size_t)16 << 30) + 1), -ENOMEM);
}

static int cmp_lo(const void *a, const void *b) {
    const gstack *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

#define NLAYOUT 3000

static void test_layout(void) {
    static gstack v[NLAYOUT];
    static const size_t sizes[] = {16 << 10, 64 << 10, 256 << 10, 1 << 20};
    for (int i = 0; i < NLAYOUT; i++) CHECK(stack_alloc(NULL, &v[i], sizes[i % 4]) == 0);
    qsort(v, NLAYOUT, sizeof v[0], cmp_lo);
    int x = 0;
    for (int i = 0; i < NLAYOUT; i++) {
        uintptr_t g = v[i].lo - 2 * P; /* the slot: guard, canary page, stack */
        if (i > 0) CHECK(g >= v[i - 1].hi);
        CHECK(stack_is_guard(g));
        CHECK(stack_is_guard(g + P - 1));
        CHECK(!stack_is_guard(g + P)); /* the canary page */
        CHECK(!stack_is_guard(v[i].lo));
        CHECK(!stack_is_guard(v[i].hi - 1));
        gstack o;
        CHECK(stack_guard_owner(g + 100, &o));
        CHECK(o.lo == v[i].lo && o.hi == v[i].hi && o.size == v[i].size);
        CHECK(!stack_guard_owner(v[i].lo, &o));
        CHECK(stack_check_canary(&v[i]));
        CHECK(stack_check_deep(&v[i]));
        /* The kernel agrees: the guard is not readable, the rest is. */
        if (i % 10 == 0) {
            CHECK(!readable(g));
            CHECK(!readable(g + P - 1));
            CHECK(readable(g + P));
            CHECK(readable(v[i].lo));
            CHECK(readable(v[i].hi - 1));
        }
    }
    CHECK(!stack_is_guard(0));
    CHECK(!stack_is_guard((uintptr_t)&x));
    CHECK(!stack_is_guard((uintptr_t)v));
    CHECK(!stack_is_guard(~(uintptr_t)0));
    CHECK(!stack_is_guard((uintptr_t)1 << 47));
    for (int i = 0; i < NLAYOUT; i++) stack_free(NULL, &v[i]);
}

static void test_write_all(void) {
    gstack v[40];
    for (int i = 0; i < 40; i++) {
        CHECK(stack_alloc(NULL, &v[i], (size_t)(16 << 10) << (i % 5)) == 0);
        memset((void *)v[i].lo, 0xc0 + i, v[i].size);
    }
    for (int i = 0; i < 40; i++) {
        const unsigned char *p = (const unsigned char *)v[i].lo;
        for (size_t j = 0; j < v[i].size; j += 509) CHECK_EQ(p[j], 0xc0 + i);
        CHECK_EQ(p[v[i].size - 1], 0xc0 + i);
        CHECK(stack_check_canary(&v[i]));
        CHECK(stack_check_deep(&v[i]));
    }
    for (int i = 0; i < 40; i++) stack_free(NULL, &v[i]);
}

static void test_reuse(void) {
    stack_scavenge(); /* an empty global cache: the counts below are exact */
    stack_cache c = {.n = 0};
    gstack a, b;
    CHECK(stack_alloc(&c, &a, 0) == 0);
    uintptr_t lo = a.lo;
    stack_free(&c, &a);
    CHECK_EQ(c.n, 1);
    CHECK(stack_alloc(&c, &b, 0) == 0); /* the same stack back, from the cache */
    CHECK_EQ(b.lo, lo);
    CHECK_EQ(c.n, 0);
    /* A class the cache does not hold comes from the pool. */
    gstack d;
    stack_free(&c, &b);
    CHECK(stack_alloc(&c, &d, 1 << 20) == 0);
    CHECK_EQ(c.n, 1);
    CHECK(d.lo != lo);
    stack_free(&c, &d);

    /* Overfilling spills the oldest half to the global cache. */
    struct stack_stats s0, s1;
    stack_cache_flush(&c);
    stats(&s0);
    gstack v[STACK_CACHE_SLOTS + 1];
    for (int i = 0; i <= STACK_CACHE_SLOTS; i++) CHECK(stack_alloc(&c, &v[i], 64 << 10) == 0);
    for (int i = 0; i <= STACK_CACHE_SLOTS; i++) stack_free(&c, &v[i]);
    CHECK_EQ(c.n, STACK_CACHE_SLOTS / 2 + 1);
    stats(&s1);
    CHECK_EQ(s1.cached_stacks - s0.cached_stacks, STACK_CACHE_SLOTS / 2);
    CHECK_EQ(s1.inuse_stacks - s0.inuse_stacks, STACK_CACHE_SLOTS + 1);
    /* Flushed: all in the global cache; a miss in an empty cache refills it. */
    stack_cache_flush(&c);
    CHECK_EQ(c.n, 0);
    stats(&s1);
    CHECK_EQ(s1.cached_stacks - s0.cached_stacks, STACK_CACHE_SLOTS + 1);
    CHECK(stack_alloc(&c, &a, 64 << 10) == 0);
    CHECK(c.n > 0 && c.n <= STACK_CACHE_SLOTS / 2);
    stack_free(&c, &a);
    stack_cache_flush(&c);
    /* Double free is fatal. */
}

static gstack df_st;
static void double_free(void) {
    CHECK(stack_alloc(NULL, &df_st, 0) == 0);
    gstack copy = df_st;
    stack_free(NULL, &df_st);
    stack_free(NULL, &copy);
}

static void test_double_free(void) {
    expect_death(double_free, 2, "fatal error: stack_free: not an allocated stack");
}

static void dirty_free(void) {
    gstack st;
    CHECK(stack_alloc(NULL, &st, 0) == 0);
    *(volatile uint64_t *)(st.lo - 16) = 0xbad;
    stack_free(NULL, &st);
}

static void test_dirty_free(void) {
    expect_death(dirty_free, 2, "fatal error: stack overflow");
}

static void test_keep_and_trim(void) {
    stack_scavenge();
    stack_cache c = {.n = 0};
    gstack st;
    CHECK(stack_alloc(&c, &st, 256 << 10) == 0);
    memset((void *)st.lo, 1, st.size);
    size_t all = st.size / P, keep = STACK_KEEP / P;
    CHECK_EQ(resident_pages(st.lo, st.hi), all);
    gstack copy = st;
    stack_free(&c, &st); /* the P's cache: untouched, no system call */
    CHECK_EQ(resident_pages(copy.lo, copy.hi), all);
    stack_cache_trim(&c);
    CHECK_EQ(resident_pages(copy.lo, copy.hi), keep);
    CHECK_EQ(resident_pages(copy.hi - STACK_KEEP, copy.hi), keep);
    /* Through the global cache: still the kept top, nothing else. */
    CHECK(stack_alloc(&c, &st, 256 << 10) == 0);
    memset((void *)st.lo, 1, st.size);
    stack_free(NULL, &st);
    CHECK_EQ(resident_pages(copy.lo, copy.hi), keep);
    CHECK(stack_alloc(NULL, &st, 256 << 10) == 0);
    CHECK_EQ(st.lo, copy.lo);
    CHECK_EQ(resident_pages(st.lo, st.hi), keep);
    CHECK(stack_check_canary(&st));
    stack_free(NULL, &st);
    stack_cache_flush(&c);
}

static void test_shrink(void) {
    gstack st;
    CHECK(stack_alloc(NULL, &st, 256 << 10) == 0);
    memset((void *)st.lo, 2, st.size);
    size_t rss0 = os_rss();
    uintptr_t sp = st.hi - (40 << 10) - 200;
    stack_shrink(&st, sp);
    uintptr_t kept = (sp & ~(P - 1)) - P;
    CHECK_EQ(resident_pages(st.lo, kept), 0);
    CHECK_EQ(resident_pages(kept, st.hi), (st.hi - kept) / P);
    CHECK_EQ(*(unsigned char *)(kept + 7), 2);
    CHECK(os_rss() + (150 << 10) < rss0); /* ~210 KiB went back */
    CHECK_EQ(*(unsigned char *)st.lo, 0); /* given back: reads as zero */
    stack_shrink(&st, st.lo + 100);       /* too shallow to give anything back */
    stack_shrink(&st, st.hi + 100);       /* not this stack's sp: ignored */
    CHECK(stack_check_canary(&st));
    stack_free(NULL, &st);
}

static void test_canary(void) {
    gstack st;
    CHECK(stack_alloc(NULL, &st, 0) == 0);
    CHECK(stack_check_canary(&st));
    CHECK(stack_check_deep(&st));
    volatile uint64_t *w = (volatile uint64_t *)st.lo;
    w[-1] = 0x1234;
    CHECK(!stack_check_canary(&st));
    CHECK(!stack_check_deep(&st));
    w[-1] = 0;
    CHECK(stack_check_canary(&st));
    w[-8] = 1; /* the lowest word the fast check reads */
    CHECK(!stack_check_canary(&st));
    w[-8] = 0;
    volatile uint64_t *bottom = (volatile uint64_t *)(st.lo - P);
    bottom[3] = 0xdead; /* deep in the canary page: only the deep check sees it */
    CHECK(stack_check_canary(&st));
    CHECK(!stack_check_deep(&st));
    bottom[3] = 0;
    CHECK(stack_check_deep(&st));
    w[0] = 0xffff; /* the stack's own lowest word is not the canary */
    CHECK(stack_check_canary(&st));
    stack_free(NULL, &st);
    /* Freed whole past the global cache: the canary page comes back zero. */
}

/* RSS of an idle goroutine's stack: what stack_alloc, arch_ctx_make (the
 * initial frame at the top) and a canary check on every switch commit. */
#define NIDLE 20000

static void idle_entry(void *arg) {
    (void)arg;
    abort();
}

static void test_rss_idle(void) {
    static gstack v[NIDLE];
    static gort_context ctx[NIDLE];
    size_t rss0 = os_rss();
    for (int i = 0; i < NIDLE; i++) {
        CHECK(stack_alloc(NULL, &v[i], 0) == 0);
        arch_ctx_make(&ctx[i], (void *)v[i].lo, v[i].size, idle_entry, NULL);
        CHECK(stack_check_canary(&v[i]));
    }
    size_t rss1 = os_rss();
    double idle = (double)(rss1 - rss0) / NIDLE;
    /* The alternative: a random canary value written below lo. */
    for (int i = 0; i < NIDLE; i++) *(volatile uint64_t *)(v[i].lo - 8) = 0;
    double armed = (double)(os_rss() - rss0) / NIDLE;
    fprintf(stderr, "    RSS per idle stack: %.0f B (%.0f B with a written canary)\n", idle, armed);
    if (!TEST_ASAN) CHECK(idle <= 4.5 * 1024);
    CHECK(armed > idle + 3 * 1024);
    for (int i = 0; i < NIDLE; i++) stack_free(NULL, &v[i]);
}

static void test_stats(void) {
    struct stack_stats s0, s1, s2;
    stats(&s0);
    CHECK(s0.sys_bytes % P == 0); /* regions: 16 MiB, doubling to 256 MiB, page multiples */
    enum { N = 700 };
    static gstack v[N];
    for (int i = 0; i < N; i++) CHECK(stack_alloc(NULL, &v[i], 128 << 10) == 0);
    stats(&s1);
    CHECK_EQ(s1.inuse_stacks - s0.inuse_stacks, N);
    CHECK_EQ(s1.inuse_bytes - s0.inuse_bytes, (uint64_t)N * (128 << 10));
    CHECK(s1.sys_bytes >= s1.inuse_bytes);
    CHECK(s1.meta_bytes > 0);
    uint64_t carved = s1.guards_madvise + s1.guards_mprotect + s1.unguarded;
    CHECK(carved >= s1.inuse_stacks);
    if (guard_kind == STACK_GUARD_MADVISE) CHECK(s1.guards_madvise >= N);
    for (int i = 0; i < N; i++) stack_free(NULL, &v[i]);
    stats(&s2);
    CHECK_EQ(s2.inuse_stacks - s0.inuse_stacks, s2.cached_stacks - s0.cached_stacks);
    CHECK_EQ(s2.inuse_bytes - s0.inuse_bytes,
             (s2.cached_stacks - s0.cached_stacks) * (uint64_t)(128 << 10));
}

/* Regions whose stacks all went cold are reset: guards gone, then back. */
static void test_region_reset(void) {
    enum { N = 1200, PER = 253 }; /* 1 MiB stacks (+ 8 KiB): regions of 15, 31, 63, 126, then 253 */
    static gstack v[N];
    struct stack_stats s0, s1, s2;
    stack_scavenge();
    stats(&s0);
    for (int i = 0; i < N; i++) CHECK(stack_alloc(NULL, &v[i], 1 << 20) == 0);
    stats(&s1);
    uint64_t g1 = s1.guards_madvise + s1.guards_mprotect + s1.unguarded;
    for (int i = 0; i < N; i++) stack_free(NULL, &v[i]);
    stack_scavenge(); /* the global cache's stacks too: every region is empty */
    stats(&s2);
    CHECK_EQ(s2.cached_stacks, 0);
    uint64_t g2 = s2.guards_madvise + s2.guards_mprotect + s2.unguarded;
    fprintf(stderr, "    slots with guards: %llu, after freeing: %llu\n", (unsigned long long)g1,
            (unsigned long long)g2);
    CHECK(g2 + 3 * PER <= g1);
    int gone = 0;
    for (int i = 0; i < N; i++) gone += !stack_is_guard(v[i].lo - 2 * P);
    if (guard_kind) CHECK(gone >= 3 * PER);
    CHECK_EQ(s2.sys_bytes, s1.sys_bytes); /* address space is kept */
    for (int i = 0; i < N; i++) {
        CHECK(stack_alloc(NULL, &v[i], 1 << 20) == 0);
        CHECK_EQ(v[i].flags & STACK_GUARD_MASK, guard_kind);
        CHECK_EQ(stack_is_guard(v[i].lo - 2 * P), guard_kind != 0);
        *(volatile char *)(v[i].hi - 1) = 1;
    }
    for (int i = 0; i < N; i++) stack_free(NULL, &v[i]);
}

/* Threads, each with its own cache and alternate signal stack, allocating
 * and freeing; every live stack carries its owner's tag at both ends. */
#define NTHREADS 4
#define TLIVE    64

static void *thread_main(void *arg) {
    long id = (long)(intptr_t)arg;
    CHECK(stack_thread_init() == 0);
    stack_t ss;
    CHECK(sigaltstack(NULL, &ss) == 0);
    CHECK(!(ss.ss_flags & SS_DISABLE));
    CHECK(ss.ss_size >= 16 << 10);
    stack_cache c = {.n = 0};
    gstack live[TLIVE];
    memset(live, 0, sizeof live);
    uint64_t rnd = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    long iters = 20000 * test_scale();
    for (long it = 0; it < iters; it++) {
        rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
        int j = (int)(rnd % TLIVE);
        stack_cache *cp = (rnd >> 20) % 8 ? &c : NULL;
        if (live[j].lo) {
            uint64_t tag = ((uint64_t)id << 32) | (uint64_t)j;
            CHECK_EQ(*(uint64_t *)(live[j].hi - 8), tag);
            CHECK_EQ(*(uint64_t *)live[j].lo, tag);
            CHECK(stack_check_canary(&live[j]));
            stack_free(cp, &live[j]);
            live[j].lo = 0;
        } else {
            size_t size = (size_t)(16 << 10) << ((rnd >> 30) % 4);
            CHECK(stack_alloc(cp, &live[j], size) == 0);
            uint64_t tag = ((uint64_t)id << 32) | (uint64_t)j;
            *(uint64_t *)(live[j].hi - 8) = tag;
            *(uint64_t *)live[j].lo = tag;
        }
    }
    for (int j = 0; j < TLIVE; j++)
        if (live[j].lo) stack_free(&c, &live[j]);
    stack_cache_flush(&c);
    stack_thread_exit();
    CHECK(sigaltstack(NULL, &ss) == 0);
    if (!TEST_ASAN) CHECK(ss.ss_flags & SS_DISABLE);
    return NULL;
}

static void test_threads(void) {
    struct stack_stats s0, s1;
    stats(&s0);
    pthread_t t[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        CHECK(pthread_create(&t[i], NULL, thread_main, (void *)(intptr_t)i) == 0);
    for (int i = 0; i < NTHREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    stats(&s1);
    CHECK_EQ(s1.inuse_stacks - s0.inuse_stacks, s1.cached_stacks - s0.cached_stacks);
}

static void test_sigaltstack(void) {
    CHECK(stack_thread_init() == 0);
    CHECK(stack_thread_init() == 0);
    stack_t ss;
    CHECK(sigaltstack(NULL, &ss) == 0);
    CHECK(!(ss.ss_flags & SS_DISABLE));
    CHECK(ss.ss_size >= STACK_SIGSTACK_MIN);
    gstack o;
    if (stack_guard_owner((uintptr_t)ss.ss_sp - 2 * P, &o)) { /* ours, not ASan's */
        CHECK_EQ(o.lo, (uintptr_t)ss.ss_sp);
        CHECK_EQ(o.hi - o.lo, ss.ss_size);
    } else {
        CHECK(TEST_ASAN || guard_kind == 0);
    }
}

/* Out of memory while growing: -ENOMEM, nothing half-made, then success. */
static void test_enomem(void) {
    int failed = 0;
    for (int n = 1; n <= 4; n++) {
        size_t size = (size_t)(4 << 20) << n; /* a class not used before: a new region */
        struct stack_stats s0, s1;
        stats(&s0);
        gstack st;
        os_fail_after(n);
        int r = stack_alloc(NULL, &st, size);
        os_fail_after(0);
        stats(&s1);
        if (r == 0) {
            stack_free(NULL, &st);
        } else {
            CHECK_EQ(r, -ENOMEM);
            CHECK_EQ(s1.inuse_stacks, s0.inuse_stacks);
            CHECK_EQ(s1.sys_bytes, s0.sys_bytes);
            failed++;
        }
        CHECK(stack_alloc(NULL, &st, size) == 0);
        memset((void *)(st.hi - 4096), 3, 4096);
        stack_free(NULL, &st);
    }
    CHECK(failed >= 1); /* the first os_map of a new class is its region's */
}

static void test_children(void) {
    const char *out;
    out = run_child("overflow", NULL, 2, "fatal error: stack overflow");
    CHECK(strstr(out, "info ok"));
    run_child("overflow_default", NULL, 2, "fatal error: stack overflow");
    out = run_child("overflow_default", "madvise", 2, "goroutine stack exceeds 65536-byte limit");
    CHECK(strstr(out, "fatal error: stack overflow"));
    out = run_child("overflow", "mprotect", 2, "fatal error: stack overflow");
    CHECK(strstr(out, "info ok"));
    run_child("overflow_default", "mprotect", 2, "fatal error: stack overflow");
    run_child("chain_user", NULL, 7, "user handler ran");
    out = run_child("unguarded", "none", 2, "unguarded ok");
    CHECK(strstr(out, "fatal error: stack overflow"));
    run_child("badenv", "sideways", 0, "invalid GORT_STACKGUARD=\"sideways\"");

    /* A fault outside any guard, with no handler before: the default action. */
    child_case = "chain_default";
    child_guard = NULL;
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        exec_child();
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);

    out = run_child("million", NULL, 0, "million ok");
    fputs(out, stderr);
    out = run_child("million", "mprotect", 0, "million ok");
    fputs(out, stderr);
    const char *w = strstr(out, "Raise vm.max_map_count"); /* the warning, once */
    CHECK(w != NULL);
    CHECK(strstr(w + 1, "Raise vm.max_map_count") == NULL);
}

int main(int argc, char **argv) {
    P = os_page_size();
    self_exe = realpath("/proc/self/exe", NULL);
    CHECK(self_exe != NULL);
    if (argc > 1) return child_main(argv[1]);
    unsetenv("GORT_STACKGUARD");
    CHECK(stack_init(NULL) == 0);
    CHECK(stack_init(NULL) == 0); /* again: only the hook changes */
    env_init();
    gstack probe;
    CHECK(stack_alloc(NULL, &probe, 0) == 0);
    guard_kind = (int)(probe.flags & STACK_GUARD_MASK);
    stack_free(NULL, &probe);
    fprintf(stderr, "guard kind here: %s\n",
            guard_kind == STACK_GUARD_MADVISE    ? "MADV_GUARD_INSTALL"
            : guard_kind == STACK_GUARD_MPROTECT ? "mprotect"
                                                 : "none");
    RUN(test_sigaltstack);
    RUN(test_classes);
    RUN(test_layout);
    RUN(test_write_all);
    RUN(test_reuse);
    RUN(test_double_free);
    RUN(test_dirty_free);
    RUN(test_keep_and_trim);
    RUN(test_shrink);
    RUN(test_canary);
    RUN(test_rss_idle);
    RUN(test_stats);
    RUN(test_region_reset);
    RUN(test_threads);
    RUN(test_enomem);
    RUN(test_children);
    fprintf(stderr, "test_stack: ok\n");
    return test_result();
}
