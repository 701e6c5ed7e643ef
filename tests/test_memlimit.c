/* The memory limit, the GC CPU limiter and gort_free_os_memory (src/gc/
 * mgcpacer.c, mgclimit.c, src/mem/scavenge.c).
 *
 * - the API: gort_set_memory_limit sets and queries (Go's SetMemoryLimit),
 *   MemStats shows the limit and what it counts; GORT_GOMEMLIMIT in Go's
 *   syntax (a re-executed child reads it);
 * - a live set that fits: GORT_GOGC=off and a 256 MiB limit, 128 MiB live,
 *   10x the limit allocated as garbage: peak RSS (VmHWM) within 5% of the
 *   limit, and what the limit counts never above it by more;
 * - a live set that does not fit (96 MiB under a 64 MiB limit, GOGC off):
 *   the program goes on allocating, the collector runs back to back, the GC
 *   CPU limiter engages and holds the collector near half the CPU, the heap
 *   passes the limit rather than stall, and the callback runs;
 * - a limit set below what the heap holds: a collection starts and the
 *   scavenger returns the difference at once;
 * - gort_free_os_memory after dropping a large heap: what stays is the live
 *   heap (it collects first, as debug.FreeOSMemory does).
 * The programs that depend on the environment are re-executed
 * (/proc/self/exe --NAME). Figures are printed for the record; ASan's
 * shadow memory makes RSS meaningless there, so RSS is checked only
 * without it (what the limit counts is checked in both). */
#include "test_gort.h"

#include "gort/gc.h"
#include "gort/memstats.h"
#include "gort/sched.h"
#include "gort/sync.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/resource.h>

#define MiB ((int64_t)1 << 20)

struct big { /* 4 KiB, a pointer first: the bench's live objects */
    struct big *next;
    char pad[4096 - 8];
};
GORT_TYPE(big, next);

struct small { /* 1 KiB garbage */
    struct small *next;
    char pad[1024 - 8];
};
GORT_TYPE(small, next);

struct node { /* 64 bytes, two pointers: a live set that costs marking */
    struct node *left, *right;
    long pad[6];
};
GORT_TYPE(node, left, right);

static struct big *live;
static struct small *sink;
static struct node *tree;

static long status_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0) v = atol(line + n);
    fclose(f);
    return v;
}

static gort_memstats ms_now(void) {
    gort_memstats ms;
    gort_read_memstats(&ms);
    return ms;
}

static void build_live(int64_t bytes) {
    for (int64_t i = 0; i < bytes / 4096; i++) {
        struct big *b = gort_new(&big_type);
        CHECK(b != NULL);
        GORT_STORE(b->next, live);
        GORT_STORE(live, b);
    }
}

/* A balanced tree of n nodes. */
static struct node *build_tree(long n) {
    if (n <= 0) return NULL;
    struct node *t = gort_new(&node_type);
    CHECK(t != NULL);
    GORT_STORE(t->left, build_tree((n - 1) / 2));
    GORT_STORE(t->right, build_tree(n - 1 - (n - 1) / 2));
    return t;
}

static long count_tree(const struct node *t) {
    return t ? 1 + count_tree(t->left) + count_tree(t->right) : 0;
}

static int64_t count_live(void) {
    int64_t n = 0;
    for (struct big *p = live; p; p = p->next) n++;
    return n;
}

/* n bytes of 1 KiB garbage, chains of 64 (the bench's loop); returns the
 * largest memory_limit_counted seen (sampled every 16 MiB). */
static uint64_t make_garbage(int64_t bytes) {
    uint64_t peak = 0;
    for (int64_t i = 0; i < bytes / 1024; i++) {
        struct small *s = gort_new(&small_type);
        CHECK(s != NULL);
        GORT_STORE(s->next, sink);
        if (i % 64 == 0)
            GORT_STORE(sink, NULL);
        else
            GORT_STORE(sink, s);
        if (i % (16 * 1024) == 0) {
            uint64_t c = ms_now().memory_limit_counted;
            if (c > peak) peak = c;
        }
    }
    GORT_STORE(sink, NULL);
    return peak;
}

/* ---- the first cycle's assists ----
 * On one P the background worker has a quarter of the CPU (a fractional
 * worker): the program's assists must pay for the rest of the first
 * cycle's mark, although no cycle has measured the scan work yet. Before
 * Go's worst-case estimate (mgcpacer.c gc_pacer_revise) the assist ratio of
 * a first cycle was next to zero, and the program allocated past the limit
 * for as long as the worker took to mark the live heap alone. */
#define FIRST_LIMIT (128 * MiB)

static int first_main(int argc, char **argv) {
    (void)argc, (void)argv;
    CHECK_EQ(gort_set_memory_limit(-1), FIRST_LIMIT);
    CHECK_EQ(gort_gomaxprocs(0), 1);
    build_live(FIRST_LIMIT / 4 * 3);
    uint64_t peak = make_garbage(4 * FIRST_LIMIT);
    gort_memstats ms = ms_now();
    long hwm = status_kib("VmHWM:");
    printf("first: peak RSS %ld MiB, peak counted %llu MiB, limit %lld MiB, %u cycles\n",
           hwm / 1024, (unsigned long long)(peak / MiB), (long long)(FIRST_LIMIT / MiB), ms.num_gc);
    CHECK_EQ(count_live(), FIRST_LIMIT / 4 * 3 / 4096);
    /* Without the estimate: peak RSS 164-180 MiB, counted 174-193 MiB;
     * with it 123-125 and 141-142 (counted includes never touched pages
     * of spans and arenas' metadata, see fits_main). Since objects over
     * 512 bytes lost their header (the live set is 96 MiB of heap, not
     * 114) and the page allocator prefers dirty runs among those that fit
     * (mpagealloc.c find_fit), 133-136 and 131-133 (RSS 129 without that
     * preference, which saves the memlimit bench 44,000 madvise calls).
     * Bounded at 8% over the limit, far below the figures without the
     * estimate. */
    CHECK_LE(peak, FIRST_LIMIT / 100 * 115);
    if (!TEST_ASAN) CHECK_LE(hwm * 1024, FIRST_LIMIT / 100 * 108);
    return 0;
}

/* ---- the API ---- */

static int api_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int64_t start = gort_set_memory_limit(-1);
    CHECK_EQ(start, INT64_MAX); /* no GORT_GOMEMLIMIT: none */
    CHECK_EQ(gort_set_memory_limit(-5), INT64_MAX);
    CHECK_EQ(gort_set_memory_limit(512 * MiB), INT64_MAX);
    CHECK_EQ(gort_set_memory_limit(-1), 512 * MiB);
    gort_memstats ms = ms_now();
    CHECK_EQ(ms.memory_limit, 512 * MiB);
    CHECK_GT(ms.memory_limit_counted, 0);
    CHECK_LE(ms.memory_limit_counted, ms.sys + 64 * MiB); /* stacks may add a little */
    CHECK_GE(ms.memory_limit_counted, ms.heap_sys - ms.heap_released);
    CHECK_EQ(ms.limiter_enabled, 0);
    CHECK_EQ(gort_set_memory_limit(INT64_MAX), 512 * MiB);
    CHECK_EQ(gort_set_memory_limit(-1), INT64_MAX);
    CHECK_EQ(ms_now().memory_limit, INT64_MAX);
    gort_set_memory_limit_callback(NULL, NULL);
    return 0;
}

/* GORT_GOMEMLIMIT, read at start. */
static int env_main(int argc, char **argv) {
    (void)argc, (void)argv;
    printf("limit=%lld\n", (long long)gort_set_memory_limit(-1));
    return 0;
}

static const char *env_value;
static void env_child(void) {
    setenv("GORT_GOMEMLIMIT", env_value, 1);
    execl("/proc/self/exe", "test_memlimit", "--env", (char *)NULL);
    _exit(3);
}

static void expect_env(const char *value, long long want) {
    env_value = value;
    char buf[64];
    snprintf(buf, sizeof buf, "limit=%lld\n", want);
    int pfd[2];
    CHECK(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        env_child();
    }
    close(pfd[1]);
    char got[256] = {0};
    size_t n = 0;
    ssize_t r;
    while (n < sizeof got - 1 && (r = read(pfd[0], got + n, sizeof got - 1 - n)) > 0)
        n += (size_t)r;
    close(pfd[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_CONTAINS(got, buf);
}

static void test_limit_env(void) {
    expect_env("123MiB", 123LL << 20);
    expect_env("2GiB", 2LL << 30);
    expect_env("1000000", 1000000);
    expect_env("off", INT64_MAX);
}

/* ---- a live set that fits ---- */

#define FIT_LIMIT (256 * MiB)

static int fits_main(int argc, char **argv) {
    (void)argc, (void)argv;
    CHECK_EQ(gort_set_memory_limit(-1), FIT_LIMIT);
    CHECK_EQ(gort_set_gc_percent(-1), -1); /* GORT_GOGC=off */
    int64_t garbage = (TEST_ASAN ? 2 : 10) * FIT_LIMIT;
    int64_t t0 = test_now_ns();
    uint64_t alloc0 = ms_now().heap_alloc;
    build_live(FIT_LIMIT / 2);
    /* A 4 KiB typed object takes 4 KiB: its type is kept in its span, not
     * in a header that would move it to the 4,864-byte class (19% more
     * heap, and the cycles that costs: 78 instead of Go's 41-45 in the
     * memlimit bench). */
    uint64_t live_heap = ms_now().heap_alloc - alloc0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long flt0 = ru.ru_minflt;
    uint32_t gc0 = ms_now().num_gc;
    uint64_t peak = make_garbage(garbage);
    double secs = (double)(test_now_ns() - t0) / 1e9;
    getrusage(RUSAGE_SELF, &ru);
    long faults = ru.ru_minflt - flt0;
    CHECK_EQ(count_live(), FIT_LIMIT / 2 / 4096);
    gort_memstats ms = ms_now();
    long hwm = status_kib("VmHWM:");
    uint32_t cycles = ms.num_gc - gc0;
    printf("fits: %lld MiB garbage in %.2f s, %u cycles, peak RSS %ld MiB, peak counted %llu MiB, "
           "limit %lld MiB, limiter engaged %.3f s; live set %llu MiB of heap; %ld page faults "
           "while making garbage\n",
           (long long)(garbage / MiB), secs, cycles, hwm / 1024, (unsigned long long)(peak / MiB),
           (long long)(FIT_LIMIT / MiB), (double)ms.limiter_engaged_ns / 1e9,
           (unsigned long long)(live_heap / MiB), faults);
    /* With GOGC off only the limit starts cycles, and one frees at most
     * the half of the limit the live set leaves (under ASan, 2 x L of
     * garbage: 5 cycles). */
    CHECK_GE(cycles, (uint32_t)(garbage / (FIT_LIMIT / 2)) - 1);
    CHECK_LE(live_heap, (uint64_t)(FIT_LIMIT / 2) / 100 * 102);
    /* Each cycle frees most of what the limit leaves over the live half:
     * at least a third of the limit (10 * L of garbage took 26 cycles; the
     * memlimit bench needed 1.8 times as many with its live set in
     * 4,864-byte slots). */
    CHECK_LE(cycles, (uint32_t)(garbage / (FIT_LIMIT / 3)) + 1);
    /* Free pages the heap fills again before its next cycle stay: the
     * scavenger aims at the limit, not at 95% of it (src/mem/scavenge.c),
     * and the page allocator takes dirty pages before released ones
     * (src/mem/mpagealloc.c), so making the garbage faults in the limit's
     * 4 KiB pages about once (65,000 faults here; a 95% goal gave back 5%
     * of the limit after every cycle, and released pages were taken first
     * and given back again: in the bench, 3.4-4.8 times the limit's
     * pages). ASan's shadow memory faults too. */
    if (!TEST_ASAN) CHECK_LE(faults, (long)(FIT_LIMIT / 4096) * 2);
    if (!TEST_ASAN) CHECK_LE(hwm * 1024, FIT_LIMIT / 100 * 105);
    /* What the limit counts passes it by what a cycle allocates past its
     * goal while it marks (Go's pacer allows 10%: its hard goal) and by
     * free pages not yet returned; it counts pages of the heap that were
     * never touched, so it runs above RSS. */
    CHECK_LE(peak, FIT_LIMIT / 100 * 110);
    return 0;
}

/* ---- a live set that does not fit: the limiter ---- */

#define SPIRAL_LIMIT (64 * MiB)
#define SPIRAL_NODES (SPIRAL_LIMIT / 2 * 3 / 64)
static long callbacks;
static int64_t callback_ns;

static void on_limit(void *arg) {
    CHECK(arg == &callbacks);
    if (__atomic_fetch_add(&callbacks, 1, __ATOMIC_ACQ_REL) == 0)
        __atomic_store_n(&callback_ns, test_now_ns(), __ATOMIC_RELEASE);
}

/* GC CPU over the program's between two reads, as the limiter counts it
 * (with the stops of the world or without). */
static double gc_fraction(const gort_memstats *a, const gort_memstats *b, int64_t wall_ns,
                          int procs, bool pauses) {
    double gc = (double)(b->gc_assist_ns - a->gc_assist_ns) +
                (double)(b->gc_worker_ns - a->gc_worker_ns) +
                (pauses ? (double)(b->gc_pause_cpu_ns - a->gc_pause_cpu_ns) : 0);
    double total = (double)wall_ns * procs - (double)(b->gc_idle_ns - a->gc_idle_ns);
    return total > 0 ? gc / total : 0;
}

static atomic_long spiral_stop, spiral_bytes;
static gort_waitgroup spiral_wg = GORT_WAITGROUP_INIT;

/* One of the allocating goroutines (one per P: the collector gets no idle
 * P, so it must take the program's CPU). */
static void spiral_alloc(void *arg) {
    (void)arg;
    struct small *mine = NULL; /* chains of 64, as make_garbage's */
    for (long i = 0; !atomic_load(&spiral_stop); i++) {
        struct small *s = gort_new(&small_type);
        CHECK(s != NULL);
        GORT_STORE(s->next, mine);
        mine = i % 64 == 0 ? NULL : s;
        if (i % 1024 == 1023) {
            atomic_fetch_add(&spiral_bytes, 1024 * 1024);
            gort_yield();
        }
    }
    gort_waitgroup_done(&spiral_wg);
}

static int spiral_main(int argc, char **argv) {
    (void)argc, (void)argv;
    int procs = gort_gomaxprocs(0);
    gort_set_memory_limit_callback(on_limit, &callbacks);
    /* 96 MiB live under a 64 MiB limit, in 64-byte nodes: each cycle scans
     * 1.5 million objects, and the allocating goroutines pay for it in
     * assists unless the limiter stops them. */
    GORT_STORE(tree, build_tree(SPIRAL_NODES));
    gort_waitgroup_add(&spiral_wg, procs);
    for (int i = 0; i < procs; i++) gort_go(spiral_alloc, NULL);
    gort_memstats m0 = ms_now(), m1 = m0;
    int64_t t0 = test_now_ns(), t1 = t0, end = t0 + 25 * 1000000000ll;
    long allocated_at_engage = 0;
    uint64_t peak = 0;
    /* Until the callback ran and 3 s more passed after the limiter first
     * engaged (25 s at most): the bucket averages over GOMAXPROCS s. */
    while (test_now_ns() < end) {
        gort_sleep(10 * 1000 * 1000);
        gort_memstats ms = ms_now();
        if (ms.memory_limit_counted > peak) peak = ms.memory_limit_counted;
        if (ms.limiter_last_enabled && t1 == t0) { /* engaged: measure from here */
            t1 = test_now_ns();
            m1 = ms;
            allocated_at_engage = atomic_load(&spiral_bytes);
        }
        if (t1 != t0 && __atomic_load_n(&callbacks, __ATOMIC_ACQUIRE) &&
            test_now_ns() - t1 > 3000000000ll)
            break;
    }
    int64_t t2 = test_now_ns();
    gort_memstats m2 = ms_now();
    atomic_store(&spiral_stop, 1);
    gort_waitgroup_wait(&spiral_wg);
    double before = gc_fraction(&m0, &m1, t1 - t0, procs, true);
    double after = gc_fraction(&m1, &m2, t2 - t1, procs, true);
    double after_np = gc_fraction(&m1, &m2, t2 - t1, procs, false);
    double rate = (double)(atomic_load(&spiral_bytes) - allocated_at_engage) / MiB /
                  ((double)(t2 - t1) / 1e9);
    printf("spiral: engaged after %.2f s (GC CPU %.0f%% before), then %.2f s at GC CPU %.0f%% "
           "(%.0f%% without the stops of the world), "
           "%.0f MiB/s allocated, %u cycles, limiter engaged %.2f s, overflow %.2f s, "
           "callbacks %ld (%.2f s after it engaged), peak counted %llu MiB (limit %lld MiB)\n",
           (double)(t1 - t0) / 1e9, 100 * before, (double)(t2 - t1) / 1e9, 100 * after,
           100 * after_np, rate, m2.num_gc - m0.num_gc, (double)m2.limiter_engaged_ns / 1e9,
           (double)m2.limiter_overflow_ns / 1e9, callbacks,
           callback_ns ? (double)(callback_ns - t1) / 1e9 : -1.0, (unsigned long long)(peak / MiB),
           (long long)(SPIRAL_LIMIT / MiB));
    CHECK(t1 != t0);        /* the limiter engaged */
    CHECK_GE(callbacks, 1); /* and the callback ran */
    CHECK_GT(m2.limiter_engaged_ns, 0);
    CHECK_GT(m2.num_gc - m1.num_gc, 3); /* cycles back to back */
    /* Held near half the CPU, not a spiral (95-170% before it engaged).
     * What the limiter controls is assists: the stops of the world count as
     * GC CPU too, and mark termination's can take 50-140 ms here (with a
     * live heap of 1.5 million objects under two allocating goroutines), so
     * the bound with them is looser. */
    CHECK_FLE(after_np, 0.65);
    if (!TEST_ASAN) CHECK_FLE(after, 0.90); /* ASan's pauses are longer still */
    CHECK_GT(rate, 1.0);                    /* the program went on */
    CHECK_GT(peak, SPIRAL_LIMIT);           /* rather than stall, the heap passed the limit */
    CHECK_EQ(count_tree(tree), SPIRAL_NODES);
    return 0;
}

/* ---- a limit below what the heap holds ---- */

static int lowered_main(int argc, char **argv) {
    (void)argc, (void)argv;
    build_live(16 * MiB);
    gort_set_gc_percent(-1);
    make_garbage(256 * MiB); /* GOGC off, no limit: the heap grows to hold it all */
    gort_memstats a = ms_now();
    CHECK_GT(a.memory_limit_counted, 200 * MiB);
    int64_t t0 = test_now_ns();
    gort_set_memory_limit(64 * MiB); /* a cycle starts: the heap is over the limit's goal */
    gort_memstats b;
    for (;;) {
        gort_sleep(10 * 1000 * 1000);
        b = ms_now();
        if (b.memory_limit_counted <= 64 * MiB || test_now_ns() - t0 > 5000000000ll) break;
    }
    printf("lowered: counted %llu -> %llu MiB in %.2f s (limit 64 MiB), heap_inuse %llu MiB, "
           "cycles %u\n",
           (unsigned long long)(a.memory_limit_counted / MiB),
           (unsigned long long)(b.memory_limit_counted / MiB), (double)(test_now_ns() - t0) / 1e9,
           (unsigned long long)(b.heap_inuse / MiB), b.num_gc - a.num_gc);
    CHECK_GT(b.num_gc, a.num_gc);
    CHECK_LE(b.memory_limit_counted, 64 * MiB);
    CHECK_EQ(count_live(), 16 * MiB / 4096);
    return 0;
}

/* ---- gort_free_os_memory ---- */

static int free_main(int argc, char **argv) {
    (void)argc, (void)argv;
    build_live(32 * MiB);
    gort_set_gc_percent(-1);
    make_garbage(256 * MiB);
    long rss0 = status_kib("VmRSS:");
    gort_free_os_memory(); /* collects first: the garbage goes, and its pages */
    gort_memstats ms = ms_now();
    long rss1 = status_kib("VmRSS:");
    uint64_t retained = ms.heap_sys - ms.heap_released;
    printf("free_os_memory: VmRSS %ld -> %ld MiB, retained %llu MiB, heap_inuse %llu MiB, "
           "heap_alloc %llu MiB\n",
           rss0 / 1024, rss1 / 1024, (unsigned long long)(retained / MiB),
           (unsigned long long)(ms.heap_inuse / MiB), (unsigned long long)(ms.heap_alloc / MiB));
    CHECK_EQ(retained, ms.heap_inuse); /* every free page back */
    /* The live heap: 32 MiB of 4 KiB objects in 4864-byte slots, plus a
     * chain of garbage kept by a stale word at most. */
    CHECK_LE(ms.heap_inuse, 32 * MiB / 4096 * 4864 + 4 * MiB);
    if (!TEST_ASAN) CHECK_LE(rss1 * 1024, (int64_t)ms.heap_inuse + 48 * MiB);
    CHECK_EQ(count_live(), 32 * MiB / 4096);
    return 0;
}

/* ---- drivers ---- */

static const char *reexec_name;
static const char *reexec_env[5]; /* pairs, then NULL */

static void reexec_child(void) {
    for (int i = 0; reexec_env[i]; i += 2) setenv(reexec_env[i], reexec_env[i + 1], 1);
    execl("/proc/self/exe", "test_memlimit", reexec_name, (char *)NULL);
    _exit(3);
}

/* Runs this program as NAME with the environment given, in a process of
 * its own (a fresh VmHWM, GORT_* read at start). */
static void reexec(const char *test, const char *name, const char *k1, const char *v1,
                   const char *k2, const char *v2) {
    if (!test_selected(test)) return;
    fprintf(stderr, "=== %s\n", test);
    test_current_ = test;
    test_ran_++;
    reexec_name = name;
    reexec_env[0] = k1, reexec_env[1] = v1, reexec_env[2] = k2, reexec_env[3] = v2;
    expect_death(reexec_child, 0, "");
}

int main(int argc, char **argv) {
    if (argc > 1 && argv[1][0] == '-' && argv[1][1] == '-') {
        gort_gomaxprocs(strcmp(argv[1], "--first") == 0 ? 1 : 2);
        static const struct {
            const char *name;
            int (*fn)(int, char **);
        } progs[] = {{"--env", env_main},
                     {"--fits", fits_main},
                     {"--spiral", spiral_main},
                     {"--first", first_main}};
        for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++)
            if (strcmp(argv[1], progs[i].name) == 0) return gort_main(progs[i].fn, 0, NULL);
        return 3;
    }
    if (argc > 1) test_filter(argv[1]);
    in_child("test_limit_api", api_main, 2);
    RUN(test_limit_env);
    reexec("test_limit_fits", "--fits", "GORT_GOGC", "off", "GORT_GOMEMLIMIT", "256MiB");
    reexec("test_limit_first_cycle", "--first", "GORT_GOGC", "off", "GORT_GOMEMLIMIT", "128MiB");
    reexec("test_limit_spiral", "--spiral", "GORT_GOGC", "off", "GORT_GOMEMLIMIT", "64MiB");
    in_child("test_limit_lowered", lowered_main, 2);
    in_child("test_free_os_memory", free_main, 2);
    fprintf(stderr, "all memlimit tests passed\n");
    return test_result();
}
