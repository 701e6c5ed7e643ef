/* Tests for gort_read_memstats (include/gort/memstats.h, src/mem/mstats.c).
 *
 * Two kinds of checks. Invariants that must hold in every reading, whatever
 * runs meanwhile (Go's: alloc == heap_alloc, heap_objects == mallocs - frees,
 * heap_idle + heap_inuse == heap_sys, ...), checked after each workload and,
 * while four threads allocate and free, in a loop by a reader thread. And
 * exact accounting: a known workload must move each counter by exactly what
 * it did (1000 objects of 48 bytes: mallocs +1000, the 48-byte class's
 * by_size mallocs +1000, heap_alloc +48000), which a lost or double count in
 * any path (fast, slow, remote free, large cache, realloc, aligned) breaks.
 * The heap's size is also checked against the kernel's view of the arenas'
 * mappings in /proc/self/maps. */
#include "test.h"
#include "gort/gc.h"

#include "gort/malloc.h"
#include "gort/memstats.h"
#include "mem/arena.h"
#include "mem/malloc.h"
#include "mem/sizeclasses.h"

#include <pthread.h>

static void check_invariants(const gort_memstats *ms) {
    CHECK_EQ(ms->alloc, ms->heap_alloc);
    CHECK(ms->frees <= ms->mallocs);
    CHECK_EQ(ms->heap_objects, ms->mallocs - ms->frees);
    CHECK_EQ(ms->heap_idle + ms->heap_inuse, ms->heap_sys);
    CHECK(ms->heap_released <= ms->heap_idle);
    CHECK(ms->heap_alloc <= ms->heap_inuse);
    CHECK(ms->total_alloc >= ms->heap_alloc);
    CHECK_EQ(ms->sys, ms->heap_sys + ms->stack_sys + ms->mspan_sys + ms->mcache_sys +
                          ms->buck_hash_sys + ms->gc_sys + ms->other_sys);
    CHECK(ms->mspan_inuse <= ms->mspan_sys);
    CHECK(ms->mcache_inuse <= ms->mcache_sys);
    CHECK(ms->stack_inuse <= ms->stack_sys);
    /* The heap is made of whole arenas and counted in whole pages. */
    CHECK_EQ(ms->heap_sys % ARENA_BYTES, 0);
    CHECK_EQ(ms->heap_inuse % PAGE_SIZE, 0);
    CHECK_EQ(ms->heap_released % PAGE_SIZE, 0);
    CHECK(ms->enable_gc);
    CHECK_EQ(ms->lookups, 0);
    uint64_t m = 0, f = 0;
    for (int i = 0; i < 61; i++) {
        CHECK_EQ(ms->by_size[i].size, class_to_size[i]);
        CHECK(ms->by_size[i].frees <= ms->by_size[i].mallocs);
        m += ms->by_size[i].mallocs;
        f += ms->by_size[i].frees;
    }
    CHECK(m <= ms->mallocs);
    CHECK(f <= ms->frees);
}

static gort_memstats read_ms(void) {
    gort_memstats ms;
    gort_read_memstats(&ms);
    check_invariants(&ms);
    return ms;
}

/* Go's BySize index of the class serving n bytes (class numbers are indices). */
static int class_index(size_t n) {
    for (int c = 1; c < NUM_SIZE_CLASSES; c++)
        if (class_to_size[c] >= n) return c;
    return 0;
}

/* Checks that b - a is exactly the given change in the general counters
 * and that BySize moved only in class cls (by dm mallocs and df frees). */
static void check_delta(const gort_memstats *a, const gort_memstats *b, int64_t dmallocs,
                        int64_t dfrees, int64_t dheap_alloc, int64_t dtotal, int cls, int64_t dm,
                        int64_t df) {
    CHECK_EQ((int64_t)(b->mallocs - a->mallocs), dmallocs);
    CHECK_EQ((int64_t)(b->frees - a->frees), dfrees);
    CHECK_EQ((int64_t)(b->heap_objects - a->heap_objects), dmallocs - dfrees);
    CHECK_EQ((int64_t)(b->heap_alloc - a->heap_alloc), dheap_alloc);
    CHECK_EQ((int64_t)(b->total_alloc - a->total_alloc), dtotal);
    for (int i = 0; i < 61; i++) {
        int64_t em = i == cls ? dm : 0, ef = i == cls ? df : 0;
        if ((int64_t)(b->by_size[i].mallocs - a->by_size[i].mallocs) != em ||
            (int64_t)(b->by_size[i].frees - a->by_size[i].frees) != ef) {
            fprintf(stderr, "by_size[%d] (%u bytes): mallocs +%lld frees +%lld, want +%lld +%lld\n",
                    i, b->by_size[i].size,
                    (long long)(b->by_size[i].mallocs - a->by_size[i].mallocs),
                    (long long)(b->by_size[i].frees - a->by_size[i].frees), (long long)em,
                    (long long)ef);
            CHECK(0);
        }
    }
}

/* The arenas as the kernel sees them: bytes of the mappings that lie in
 * gort's arenas. */
static uint64_t kernel_arena_bytes(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    char line[512];
    uint64_t total = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) != 2) continue;
        if (arena_of(lo) && arena_of(hi - 1)) total += hi - lo;
    }
    fclose(f);
    return total;
}

/* ---- exact accounting ---- */

enum { N = 1000 };
static void *ptrs[N];

static void alloc_n(size_t n, int count) {
    for (int i = 0; i < count; i++) {
        ptrs[i] = gort_malloc(n);
        CHECK(ptrs[i] != NULL);
        memset(ptrs[i], 1, n < 64 ? n : 64);
    }
}

static void free_n(int count) {
    for (int i = 0; i < count; i++) gort_free(ptrs[i]);
}

static void *free_n_thread(void *arg) {
    free_n((int)(intptr_t)arg);
    return NULL;
}

static void *alloc_n_thread(void *arg) {
    alloc_n((size_t)(uintptr_t)arg, N);
    return NULL;
}

static void run_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, arg) == 0);
    CHECK(pthread_join(t, NULL) == 0);
}

static void test_exact_small(void) {
    static const size_t sizes[] = {1, 8, 9, 48, 100, 1024, 1025, 8192, 18432};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        int c = class_index(n);
        int64_t sz = class_to_size[c];
        CHECK(c > 0 && c < 61);
        gort_memstats a = read_ms();
        alloc_n(n, N);
        gort_memstats b = read_ms();
        check_delta(&a, &b, N, 0, N * sz, N * sz, c, N, 0);
        free_n(N);
        gort_memstats d = read_ms();
        check_delta(&b, &d, 0, N, -N * sz, 0, c, 0, N);
        CHECK_EQ(d.heap_alloc, a.heap_alloc);
        CHECK_EQ(d.heap_objects, a.heap_objects);
    }
    /* The 48-byte class by name, as Go's BySize reports it. */
    gort_memstats a = read_ms();
    int i48 = -1;
    for (int i = 0; i < 61; i++)
        if (a.by_size[i].size == 48) i48 = i;
    CHECK(i48 > 0);
    alloc_n(48, N);
    gort_memstats b = read_ms();
    CHECK_EQ(b.by_size[i48].mallocs - a.by_size[i48].mallocs, 1000);
    CHECK_EQ(b.heap_alloc - a.heap_alloc, 48000);
    CHECK_EQ(b.heap_objects - a.heap_objects, 1000);
    free_n(N);
    gort_memstats d = read_ms();
    CHECK_EQ(d.by_size[i48].frees - b.by_size[i48].frees, 1000);
    CHECK_EQ(d.heap_alloc, a.heap_alloc);

    /* Classes above BySize's 61 entries count in the totals only. */
    a = read_ms();
    alloc_n(30000, 50);
    b = read_ms();
    check_delta(&a, &b, 50, 0, 50 * 32768, 50 * 32768, -1, 0, 0);
    free_n(50);
    d = read_ms();
    check_delta(&b, &d, 0, 50, -50 * 32768, 0, -1, 0, 0);
}

static void test_exact_large(void) {
    /* Large objects count whole pages; up to 256 KiB their spans stay in the
     * thread's cache when freed, and still count as freed. */
    static const size_t sizes[] = {32769, 40000, 100000, 262144, 300000, 5 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        int64_t pg = (int64_t)((n + PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE);
        int cnt = n > (1 << 20) ? 8 : 50;
        for (int rep = 0; rep < 2; rep++) { /* the second time, from the large cache */
            gort_memstats a = read_ms();
            alloc_n(n, cnt);
            gort_memstats b = read_ms();
            check_delta(&a, &b, cnt, 0, cnt * pg, cnt * pg, -1, 0, 0);
            CHECK(b.heap_inuse - a.heap_inuse <= (uint64_t)(cnt * pg));
            free_n(cnt);
            gort_memstats d = read_ms();
            check_delta(&b, &d, 0, cnt, -cnt * pg, 0, -1, 0, 0);
        }
    }
    /* Aligned large objects are trimmed; freeing gives back what was counted. */
    for (size_t align = 16384; align <= (4 << 20); align <<= 2) {
        gort_memstats a = read_ms();
        void *p[10];
        for (int i = 0; i < 10; i++) CHECK_EQ(gort_posix_memalign(&p[i], align, 100000), 0);
        gort_memstats b = read_ms();
        check_delta(&a, &b, 10, 0, 10 * 13 * 8192, 10 * 13 * 8192, -1, 0, 0);
        for (int i = 0; i < 10; i++) gort_free(p[i]);
        gort_memstats d = read_ms();
        CHECK_EQ(d.heap_alloc, a.heap_alloc);
        CHECK_EQ(d.heap_objects, a.heap_objects);
    }
}

static void test_exact_paths(void) {
    /* Freed by another thread: the frees count there, and still sum up. */
    int c = class_index(48);
    gort_memstats a = read_ms();
    alloc_n(48, N);
    run_thread(free_n_thread, (void *)(intptr_t)N);
    gort_memstats b = read_ms();
    check_delta(&a, &b, N, N, 0, N * 48, c, N, N);

    /* Allocated by a thread that then exits: the counts outlive it. */
    c = class_index(200);
    a = read_ms();
    run_thread(alloc_n_thread, (void *)(uintptr_t)200);
    b = read_ms();
    check_delta(&a, &b, N, 0, N * 208, N * 208, c, N, 0);
    free_n(N);
    gort_memstats d = read_ms();
    check_delta(&b, &d, 0, N, -N * 208, 0, c, 0, N);

    /* calloc counts as malloc; realloc that moves is one malloc and one free. */
    a = read_ms();
    void *p = gort_calloc(10, 10); /* 100 -> 112 */
    b = read_ms();
    check_delta(&a, &b, 1, 0, 112, 112, class_index(112), 1, 0);
    void *q = gort_realloc(p, 1000); /* moves to 1024 */
    CHECK(q != p);
    d = read_ms();
    CHECK_EQ(d.mallocs - b.mallocs, 1);
    CHECK_EQ(d.frees - b.frees, 1);
    CHECK_EQ(d.heap_alloc - b.heap_alloc, 1024 - 112);
    CHECK_EQ(d.by_size[class_index(1024)].mallocs - b.by_size[class_index(1024)].mallocs, 1);
    CHECK_EQ(d.by_size[class_index(112)].frees - b.by_size[class_index(112)].frees, 1);
    void *r = gort_realloc(q, 1020); /* stays */
    CHECK(r == q);
    gort_memstats e = read_ms();
    check_delta(&d, &e, 0, 0, 0, 0, -1, 0, 0);
    gort_free(r);
    e = read_ms();
    CHECK_EQ(e.heap_alloc, a.heap_alloc);
    CHECK_EQ(e.heap_objects, a.heap_objects);

    /* GC objects (mallocgc) count as heap objects in their class. */
    a = read_ms();
    for (int i = 0; i < 100; i++) CHECK(gort_alloc_conservative(48) != NULL);
    b = read_ms();
    check_delta(&a, &b, 100, 0, 4800, 4800, class_index(48), 100, 0);
}

static void test_kernel_view(void) {
    gort_memstats ms = read_ms();
    CHECK(ms.heap_sys > 0);
    CHECK_EQ(kernel_arena_bytes(), ms.heap_sys);
    /* Grow the heap past its arenas: both views grow alike. */
    size_t big = (size_t)ms.heap_sys + ARENA_BYTES;
    void *p = gort_malloc(big);
    CHECK(p != NULL);
    gort_memstats ms2 = read_ms();
    CHECK(ms2.heap_sys >= ms.heap_sys + big);
    CHECK(ms2.heap_inuse >= ms.heap_inuse + big);
    CHECK_EQ(kernel_arena_bytes(), ms2.heap_sys);
    gort_free(p);
    gort_free_os_memory();
    gort_memstats ms3 = read_ms();
    CHECK_EQ(ms3.heap_sys, ms2.heap_sys); /* arenas are never unmapped */
    CHECK(ms3.heap_released >= big);
    CHECK_EQ(ms3.heap_idle, ms3.heap_released); /* every free page went back */
}

/* ---- under concurrency ---- */

enum { WORKERS = 4, LIVE = 512 };
static int stop;
static uint64_t baseline_objects, baseline_alloc;

/* Blocks handed between workers, so that frees cross threads. */
static void *pool[64];
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    uint64_t x = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
    void *live[LIVE] = {0};
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        for (int k = 0; k < 256; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int i = (int)(x % LIVE);
            if (live[i]) {
                if ((x >> 20) % 4 == 0) { /* trade it for a block from another thread */
                    pthread_mutex_lock(&pool_mu);
                    int j = (int)((x >> 30) % 64);
                    void *t = pool[j];
                    pool[j] = live[i];
                    pthread_mutex_unlock(&pool_mu);
                    live[i] = t;
                }
                gort_free(live[i]);
                live[i] = NULL;
            } else {
                size_t n = (x >> 24) % 16 == 0 ? 32769 + (x >> 32) % 300000 : (x >> 32) % 2048;
                live[i] = (x >> 40) % 8 == 0 ? gort_calloc(1, n) : gort_malloc(n);
                CHECK(live[i] != NULL);
                memset(live[i], 0xab, n < 32 ? n : 32);
            }
        }
    }
    for (int i = 0; i < LIVE; i++) gort_free(live[i]);
    return NULL;
}

static uint64_t nreads;

static void *reader(void *arg) {
    (void)arg;
    gort_memstats prev;
    gort_read_memstats(&prev);
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        static gort_memstats ms;
        gort_read_memstats(&ms);
        check_invariants(&ms);
        /* Cumulative counters never go back; arenas are never unmapped. */
        CHECK(ms.mallocs >= prev.mallocs);
        CHECK(ms.frees >= prev.frees);
        CHECK(ms.total_alloc >= prev.total_alloc);
        CHECK(ms.heap_sys >= prev.heap_sys);
        for (int i = 0; i < 61; i++) {
            CHECK(ms.by_size[i].mallocs >= prev.by_size[i].mallocs);
            CHECK(ms.by_size[i].frees >= prev.by_size[i].frees);
        }
        prev = ms;
        nreads++;
    }
    return NULL;
}

static void test_concurrent(void) {
    gort_memstats a = read_ms();
    baseline_objects = a.heap_objects;
    baseline_alloc = a.heap_alloc;
    pthread_t w[WORKERS], r;
    for (int i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)i) == 0);
    CHECK(pthread_create(&r, NULL, reader, NULL) == 0);
    int64_t deadline = test_now_ns() + 1000000000ll * test_scale();
    while (test_now_ns() < deadline) usleep(10000);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < WORKERS; i++) CHECK(pthread_join(w[i], NULL) == 0);
    CHECK(pthread_join(r, NULL) == 0);
    for (int j = 0; j < 64; j++) gort_free(pool[j]);
    CHECK(nreads > 10);
    gort_memstats b = read_ms();
    CHECK_EQ(b.heap_objects, baseline_objects);
    CHECK_EQ(b.heap_alloc, baseline_alloc);
    CHECK(b.mallocs - a.mallocs > 10000);
    CHECK_EQ(b.mallocs - a.mallocs, b.frees - a.frees);
    CHECK_EQ(kernel_arena_bytes(), b.heap_sys);
    fprintf(stderr, "%llu reads, %llu mallocs\n", (unsigned long long)nreads,
            (unsigned long long)(b.mallocs - a.mallocs));
}

/* ---- reads racing short-lived threads ----
 *
 * A reading may err only low on frees, and a low reading is latched as a
 * floor for the next ones (mstats.c): one that derived more frees than
 * there were would be latched for ever, and every later reading of the
 * process would miss objects (once in CI: test_malloc's cross-thread case
 * read 2922 objects fewer than live, though that was the GC's sweeper).
 * Threads that each allocate, free some of their objects and some of the
 * others' (remote frees, batched, taken over by owners that are busy or
 * gone) and exit (their mcache flushed: spans uncached with remote frees
 * pending, parked full, retired empty), while a reader reads in a loop and
 * checks each reading against what the test knows: the objects allocated
 * before the reading began, less the frees begun before it ended, are live
 * at every instant of it; and exact once everything is freed. */
enum { XT_THREADS = 8, XT_OBJS = 3000, XT_POOL = 4096 };
static void *xt_pool[XT_POOL];
static pthread_mutex_t xt_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t xt_allocs, xt_frees_begun; /* atomic: by the workers */
static int xt_stop;

static void xt_free(void *p) {
    __atomic_fetch_add(&xt_frees_begun, 1, __ATOMIC_SEQ_CST);
    gort_free(p);
}

static void *xt_worker(void *arg) {
    uint64_t x = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 7);
    static __thread void *mine[XT_OBJS];
    for (int i = 0; i < XT_OBJS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = (x >> 8) % 8 == 0 ? 1 + (x >> 16) % 4096 : 1 + (x >> 16) % 256;
        mine[i] = gort_malloc(n);
        CHECK(mine[i] != NULL);
        __atomic_fetch_add(&xt_allocs, 1, __ATOMIC_SEQ_CST);
    }
    for (int i = 0; i < XT_OBJS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (x % 3 == 0) {
            xt_free(mine[i]); /* a local free */
            continue;
        }
        /* Swap it for another thread's, which this one frees (remote). */
        pthread_mutex_lock(&xt_mu);
        int j = (int)((x >> 20) % XT_POOL);
        void *t = xt_pool[j];
        xt_pool[j] = mine[i];
        pthread_mutex_unlock(&xt_mu);
        if (t) xt_free(t);
    }
    return NULL; /* exits with objects of its spans still in the pool */
}

static uint64_t xt_reads;

static void *xt_reader(void *arg) {
    uint64_t base = *(uint64_t *)arg;
    while (!__atomic_load_n(&xt_stop, __ATOMIC_ACQUIRE)) {
        static gort_memstats ms;
        uint64_t a = __atomic_load_n(&xt_allocs, __ATOMIC_SEQ_CST);
        gort_read_memstats(&ms);
        uint64_t f = __atomic_load_n(&xt_frees_begun, __ATOMIC_SEQ_CST);
        if (ms.heap_objects + f < base + a) {
            fprintf(stderr, "read %llu objects, at least %llu live\n",
                    (unsigned long long)ms.heap_objects, (unsigned long long)(base + a - f));
            CHECK(0);
        }
        xt_reads++;
    }
    return NULL;
}

static void test_concurrent_exits(void) {
    gort_memstats a = read_ms();
    uint64_t base = a.heap_objects;
    pthread_t r;
    CHECK(pthread_create(&r, NULL, xt_reader, &base) == 0);
    int64_t deadline = test_now_ns() + 1000000000ll * test_scale();
    int rounds = 0;
    while (test_now_ns() < deadline) {
        pthread_t w[XT_THREADS];
        for (int i = 0; i < XT_THREADS; i++)
            CHECK(pthread_create(&w[i], NULL, xt_worker, (void *)(uintptr_t)(rounds * 8 + i)) == 0);
        for (int i = 0; i < XT_THREADS; i++) CHECK(pthread_join(w[i], NULL) == 0);
        rounds++;
    }
    __atomic_store_n(&xt_stop, 1, __ATOMIC_RELEASE);
    CHECK(pthread_join(r, NULL) == 0);
    for (int j = 0; j < XT_POOL; j++)
        if (xt_pool[j]) xt_free(xt_pool[j]);
    CHECK_EQ(xt_allocs, xt_frees_begun);
    gort_memstats b = read_ms();
    CHECK_EQ(b.heap_objects, base);
    CHECK_EQ(b.mallocs - a.mallocs, b.frees - a.frees);
    fprintf(stderr, "%d rounds, %llu reads\n", rounds, (unsigned long long)xt_reads);
}

int main(void) {
    gort_memstats ms;
    gort_read_memstats(&ms); /* before any allocation: consistent too */
    check_invariants(&ms);
    RUN(test_exact_small);
    RUN(test_exact_large);
    RUN(test_exact_paths);
    RUN(test_kernel_view);
    RUN(test_concurrent);
    RUN(test_concurrent_exits);
    fprintf(stderr, "ok\n");
    return test_result();
}
