/* Tests for the arenas (src/mem/arena.c) and the page allocator
 * (src/mem/mpagealloc.c).
 *
 * The tests share one allocator, as a program would: each frees what it
 * allocated, so that the free set is back to maximal runs for the next one,
 * and pagealloc_verify() checks every structural invariant between steps. A
 * shadow map of owned pages (one bitmap per arena, kept here with malloc: the
 * test is not inside the allocator) catches any overlap. Pages are touched
 * sparingly, so that RSS stays small; where contents matter (released pages
 * must read as zero) the test writes a marker in the pages it hands back.
 * GORT_TEST_SCALE lengthens the random and concurrent tests. */
#include "test.h"

#include "base/os.h"
#include "mem/arena.h"
#include "mem/mpagealloc.h"

#include <pthread.h>
#include <sys/mman.h>

#if TEST_ASAN
#define UNDER_ASAN 1
#endif

/* ---- helpers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    uint64_t x = rng_state; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void check_stats(void) {
    struct pagealloc_stats st;
    pagealloc_read_stats(&st);
    CHECK(st.free_pages <= st.mapped_pages);
    CHECK(st.released_pages <= st.free_pages);
    CHECK_EQ(st.mapped_pages * PAGE_SIZE, arena_reserved_bytes);
    CHECK_EQ(st.mapped_pages % PAGES_PER_ARENA, 0);
    CHECK(st.mapped_pages == 0 || st.meta_bytes > 0);
    pagealloc_verify();
}

static struct pagealloc_stats stats(void) {
    struct pagealloc_stats st;
    pagealloc_read_stats(&st);
    return st;
}

static uintptr_t alloc_chk(size_t n, size_t *rel, bool *nz) {
    size_t r;
    bool z;
    uintptr_t p = pagealloc_alloc(n, &r, &z);
    CHECK(p != 0);
    CHECK_EQ(p & (PAGE_SIZE - 1), 0);
    CHECK(arena_of(p) != NULL);
    CHECK(arena_of(p + n * PAGE_SIZE - 1) != NULL);
    CHECK(r <= n);
    CHECK_EQ(z, r < n);
    if (rel) *rel = r;
    if (nz) *nz = z;
    return p;
}

static uintptr_t alloc1(size_t n) {
    return alloc_chk(n, NULL, NULL);
}

/* The shadow: which pages the test owns. */
#define SHADOW_MAX 1024
static struct shadow {
    uintptr_t base;
    uint64_t bits[PAGES_PER_ARENA / 64];
} * shadow[SHADOW_MAX];
static int nshadow;

static struct shadow *shadow_of(uintptr_t addr) {
    uintptr_t base = addr & ~(ARENA_BYTES - 1);
    for (int i = nshadow - 1; i >= 0; i--)
        if (shadow[i]->base == base) return shadow[i];
    CHECK(nshadow < SHADOW_MAX);
    struct shadow *s = calloc(1, sizeof *s);
    CHECK(s != NULL);
    s->base = base;
    shadow[nshadow++] = s;
    return s;
}

/* Marks [p, p+n pages) owned (own) or not, checking it was not (was). */
static void shadow_mark(uintptr_t p, size_t n, bool own) {
    for (size_t i = 0; i < n; i++) {
        uintptr_t a = p + i * PAGE_SIZE;
        struct shadow *s = shadow_of(a);
        size_t pg = (a - s->base) >> PAGE_SHIFT;
        uint64_t bit = (uint64_t)1 << (pg % 64);
        bool was = s->bits[pg / 64] & bit;
        if (was == own) {
            fprintf(stderr, "page %#lx: %s\n", (unsigned long)a,
                    own ? "handed out twice (overlap)" : "freed but not owned");
            exit(1);
        }
        s->bits[pg / 64] ^= bit;
    }
}

/* Pages in use when the tests began: the library's constructors may one day
 * allocate. The first test's exact counts need a heap nobody has used yet. */
static uint64_t inuse0;

/* ---- tests ---- */

static void test_first_alloc(void) {
    struct pagealloc_stats st0 = stats();
    inuse0 = st0.mapped_pages - st0.free_pages;
    bool fresh = st0.mapped_pages == 0;
    if (!fresh) fprintf(stderr, "heap already in use: skipping the fresh-heap checks\n");
    size_t rel;
    bool nz;
    uintptr_t p = alloc_chk(1, &rel, &nz);
    if (fresh) {
        CHECK_EQ(rel, 1); /* fresh from mmap: released, reads as zero */
        CHECK(!nz);
    }
    CHECK_EQ(*(volatile uint64_t *)p, 0);
    struct heap_arena *ha = arena_of(p);
    CHECK(ha->base == (p & ~(ARENA_BYTES - 1)));
    CHECK(ha->pa != NULL);
    struct pagealloc_stats st = stats();
    fprintf(stderr, "first arena at %#lx\n", (unsigned long)ha->base);
    if (fresh) {
        CHECK_EQ(st.mapped_pages, PAGES_PER_ARENA);
        CHECK_EQ(st.free_pages, PAGES_PER_ARENA - 1);
        CHECK_EQ(st.released_pages, PAGES_PER_ARENA - 1);
        /* Not under ASan (whose shadow gap covers it), the first arena is at
         * Go's first hint. */
#ifndef UNDER_ASAN
        CHECK_EQ(ha->base, 0x00c000000000ull);
#endif
    }
    CHECK(arena_of(0x1000) == NULL);
    CHECK(span_of(p) == NULL);
    arena_set_spans(p, 1, (struct mspan *)0x1234);
    CHECK(span_of(p + 100) == (struct mspan *)0x1234);
    arena_set_spans(p, 1, NULL);
    CHECK(span_of(p) == NULL);
    pagealloc_free(p, 1);
    check_stats();
    st = stats();
    if (fresh) {
        CHECK_EQ(st.free_pages, PAGES_PER_ARENA);
        CHECK_EQ(st.released_pages, PAGES_PER_ARENA - 1); /* the freed page is dirty */
    }
}

static void test_lowest_address(void) {
    uintptr_t p[12];
    for (int i = 0; i < 12; i++) p[i] = alloc1(1);
    for (int i = 1; i < 12; i++) CHECK_EQ(p[i], p[i - 1] + PAGE_SIZE);
    /* Two equally good fits (single pages): the lower one comes first. */
    pagealloc_free(p[8], 1);
    pagealloc_free(p[2], 1);
    CHECK_EQ(alloc1(1), p[2]);
    CHECK_EQ(alloc1(1), p[8]);
    /* A better fit wins over a lower address: a 1-page hole beats a 2-page one. */
    pagealloc_free(p[3], 1);
    pagealloc_free(p[4], 1);
    pagealloc_free(p[9], 1);
    CHECK_EQ(alloc1(1), p[9]);
    CHECK_EQ(alloc1(2), p[3]);
    check_stats();
    for (int i = 0; i < 12; i++) pagealloc_free(p[i], 1);
    check_stats();
}

static void test_coalesce(void) {
    uintptr_t g0 = alloc1(1);
    uintptr_t a = alloc1(100), b = alloc1(100), c = alloc1(100);
    uintptr_t g1 = alloc1(1);
    CHECK_EQ(b, a + 100 * PAGE_SIZE);
    CHECK_EQ(c, b + 100 * PAGE_SIZE);
    uint64_t mapped = stats().mapped_pages;
    pagealloc_free(a, 100);
    pagealloc_free(c, 100);
    check_stats();
    pagealloc_free(b, 100); /* merges with both neighbours */
    check_stats();
    size_t rel;
    bool nz;
    CHECK_EQ(alloc_chk(300, &rel, &nz), a);
    CHECK_EQ(stats().mapped_pages, mapped);
    CHECK(nz);
    /* Sub-ranges of an allocation can be freed separately, in any order. */
    pagealloc_free(a + 100 * PAGE_SIZE, 50);
    pagealloc_free(a + 250 * PAGE_SIZE, 50);
    pagealloc_free(a, 100);
    check_stats();
    pagealloc_free(a + 150 * PAGE_SIZE, 100);
    check_stats();
    CHECK_EQ(alloc1(300), a);
    pagealloc_free(a, 300);
    pagealloc_free(g0, 1);
    pagealloc_free(g1, 1);
    check_stats();
}

static void test_dirty_needzero(void) {
    uintptr_t g0 = alloc1(1);
    size_t rel;
    bool nz;
    uintptr_t p = alloc_chk(16, &rel, &nz);
    uintptr_t g1 = alloc1(1);
    memset((void *)p, 0xab, 16 * PAGE_SIZE);
    pagealloc_free(p, 16);
    CHECK_EQ(alloc_chk(16, &rel, &nz), p);
    CHECK_EQ(rel, 0);
    CHECK(nz);
    CHECK_EQ(*(volatile unsigned char *)(p + 5 * PAGE_SIZE), 0xab); /* old data: needzero */
    pagealloc_free(p, 16);
    pagealloc_free(g0, 1);
    pagealloc_free(g1, 1);
    check_stats();
}

static size_t resident_pages(uintptr_t p, size_t npages) {
    size_t n = npages * PAGE_SIZE / os_page_size();
    unsigned char *vec = malloc(n);
    CHECK(vec != NULL);
    CHECK(mincore((void *)p, npages * PAGE_SIZE, vec) == 0);
    size_t r = 0;
    for (size_t i = 0; i < n; i++) r += vec[i] & 1;
    free(vec);
    return r;
}

static void test_scavenge(void) {
    /* Start clean: everything free is released. */
    pagealloc_scavenge(SIZE_MAX);
    struct pagealloc_stats st = stats();
    CHECK_EQ(st.released_pages, st.free_pages);

    uintptr_t g0 = alloc1(1);
    uintptr_t lo = alloc1(32);
    uintptr_t g1 = alloc1(1);
    uintptr_t hi = alloc1(32);
    uintptr_t g2 = alloc1(1);
    memset((void *)lo, 0x5a, 32 * PAGE_SIZE);
    memset((void *)hi, 0xa5, 32 * PAGE_SIZE);
    size_t rss0 = os_rss();
    pagealloc_free(lo, 32);
    pagealloc_free(hi, 32);
    st = stats();
    CHECK_EQ(st.free_pages - st.released_pages, 64);
    /* Highest addresses first: 32 pages released are hi's, and the kernel agrees. */
    CHECK_EQ(pagealloc_scavenge(32), 32);
    check_stats();
    CHECK_EQ(resident_pages(hi, 32), 0);
    CHECK_EQ(resident_pages(lo, 32), 32 * PAGE_SIZE / os_page_size());
    st = stats();
    CHECK_EQ(st.free_pages - st.released_pages, 32);
    CHECK_EQ(pagealloc_scavenge(SIZE_MAX), 32);
    CHECK_EQ(pagealloc_scavenge(SIZE_MAX), 0);
    CHECK_EQ(resident_pages(lo, 32), 0);
    size_t rss1 = os_rss();
    if (rss0 && rss1) CHECK(rss1 + 256 * 1024 <= rss0);
    st = stats();
    CHECK_EQ(st.released_pages, st.free_pages);
    check_stats();

    size_t rel;
    bool nz;
    CHECK_EQ(alloc_chk(32, &rel, &nz), lo);
    CHECK_EQ(rel, 32);
    CHECK(!nz);
    for (size_t i = 0; i < 32 * PAGE_SIZE; i += 64) CHECK_EQ(*(volatile uint64_t *)(lo + i), 0);
    CHECK_EQ(alloc_chk(32, &rel, &nz), hi);
    CHECK_EQ(rel, 32);
    CHECK(!nz);
    CHECK_EQ(*(volatile uint64_t *)(hi + 7 * PAGE_SIZE), 0);

    /* A run mixing dirty and released pages reports its released count exactly. */
    memset((void *)(lo + 4 * PAGE_SIZE), 1, 4 * PAGE_SIZE);
    pagealloc_free(lo + 4 * PAGE_SIZE, 4); /* dirty */
    pagealloc_free(lo + 8 * PAGE_SIZE, 4); /* dirty */
    pagealloc_scavenge(4);                 /* releases 8..11 */
    pagealloc_free(lo, 4);                 /* dirty */
    check_stats();
    CHECK_EQ(alloc_chk(12, &rel, &nz), lo);
    CHECK_EQ(rel, 4);
    CHECK(nz);
    pagealloc_free(lo, 32);
    pagealloc_free(hi, 32);
    pagealloc_free(g0, 1);
    pagealloc_free(g1, 1);
    pagealloc_free(g2, 1);
    check_stats();

    /* A run several arenas long whose only dirty pages are at its bottom: the
     * scavenger finds them across the clean arenas above. */
    pagealloc_scavenge(SIZE_MAX);
    uintptr_t g = alloc1(1);
    uintptr_t d = alloc1(5);
    uintptr_t big = alloc1(3 * PAGES_PER_ARENA);
    memset((void *)d, 0x77, 5 * PAGE_SIZE);
    pagealloc_free(big, 3 * PAGES_PER_ARENA);
    CHECK_EQ(pagealloc_scavenge(SIZE_MAX), 3 * PAGES_PER_ARENA); /* never touched, but freed */
    pagealloc_free(d, 5);
    check_stats();
    CHECK_EQ(pagealloc_scavenge(SIZE_MAX), 5);
    CHECK_EQ(resident_pages(d, 5), 0);
    st = stats();
    CHECK_EQ(st.released_pages, st.free_pages);
    pagealloc_free(g, 1);
    pagealloc_scavenge(SIZE_MAX);
    check_stats();
}

static void test_large_and_growth(void) {
    uint64_t mapped0 = stats().mapped_pages;
    /* Larger than an arena: ceil(n / 8192) new arenas, in one contiguous run. */
    size_t n = 2 * PAGES_PER_ARENA + 5;
    uintptr_t big = alloc1(n);
    uint64_t grown = stats().mapped_pages - mapped0;
    CHECK(grown == 3 * PAGES_PER_ARENA || grown == 0);
    for (size_t i = 0; i < n; i += PAGES_PER_ARENA / 2)
        CHECK(arena_of(big + i * PAGE_SIZE) != NULL);
    CHECK(*(volatile uint64_t *)(big + (n - 1) * PAGE_SIZE) == 0);
    check_stats();

    /* Small allocations around it, then allocations that cross arena ends. */
    uintptr_t small[64];
    for (int i = 0; i < 64; i++) small[i] = alloc1(1 + (size_t)i % 7);
    uintptr_t chunks[40];
    int crossed = 0;
    for (int i = 0; i < 40; i++) {
        chunks[i] = alloc1(1500);
        if (arena_of(chunks[i]) != arena_of(chunks[i] + 1500 * PAGE_SIZE - 1)) crossed++;
    }
    fprintf(stderr, "%d of 40 runs cross an arena boundary\n", crossed);
    CHECK(crossed > 0); /* contiguous arenas: free runs span them */
    check_stats();
    pagealloc_free(big, n);
    uintptr_t huge = alloc1(9 * PAGES_PER_ARENA + 1); /* > 64 MiB, grows again */
    check_stats();
    for (int i = 0; i < 40; i++) pagealloc_free(chunks[i], 1500);
    for (int i = 0; i < 64; i++) pagealloc_free(small[i], 1 + (size_t)i % 7);
    pagealloc_free(huge, 9 * PAGES_PER_ARENA + 1);
    check_stats();
    /* Everything free and coalesced: the same request fits without growth. */
    uint64_t mapped = stats().mapped_pages;
    huge = alloc1(9 * PAGES_PER_ARENA + 1);
    CHECK_EQ(stats().mapped_pages, mapped);
    pagealloc_free(huge, 9 * PAGES_PER_ARENA + 1);
    check_stats();
}

struct live {
    uintptr_t p;
    size_t n;
};

static size_t rand_size(void) {
    uint64_t r = rnd() % 100;
    if (r < 60) return 1 + rnd() % 8;
    if (r < 90) return 1 + rnd() % 64;
    return 1 + rnd() % 300;
}

static void test_random(void) {
    long ops = 20000 * test_scale();
    enum { CAP = 600 };
    static struct live live[CAP];
    int nlive = 0;
    for (long op = 0; op < ops; op++) {
        bool do_alloc = nlive == 0 || (nlive < CAP && rnd() % 100 < 52);
        if (do_alloc) {
            size_t n = rand_size(), rel;
            bool nz;
            uintptr_t p = alloc_chk(n, &rel, &nz);
            shadow_mark(p, n, true);
            if (!nz) { /* every page must read as zero */
                for (size_t i = 0; i < n; i++)
                    CHECK_EQ(*(volatile uint64_t *)(p + i * PAGE_SIZE), 0);
            }
            *(uint64_t *)p = 0xdeadbeef; /* dirty the first page */
            live[nlive++] = (struct live){p, n};
        } else {
            int i = (int)(rnd() % (uint64_t)nlive);
            struct live *l = &live[i];
            if (l->n > 1 && rnd() % 4 == 0) { /* free the top part only */
                size_t k = 1 + rnd() % (l->n - 1);
                shadow_mark(l->p + (l->n - k) * PAGE_SIZE, k, false);
                pagealloc_free(l->p + (l->n - k) * PAGE_SIZE, k);
                l->n -= k;
            } else {
                shadow_mark(l->p, l->n, false);
                pagealloc_free(l->p, l->n);
                *l = live[--nlive];
            }
        }
        if (op % 997 == 0) pagealloc_scavenge(1 + rnd() % 500);
        if (op % 1000 == 0) check_stats();
    }
    check_stats();
    for (int i = 0; i < nlive; i++) {
        shadow_mark(live[i].p, live[i].n, false);
        pagealloc_free(live[i].p, live[i].n);
    }
    check_stats();
    pagealloc_scavenge(SIZE_MAX);
    struct pagealloc_stats st = stats();
    CHECK_EQ(st.released_pages, st.free_pages);
    CHECK_EQ(st.mapped_pages - st.free_pages, inuse0);
}

/* An OS refusal (mmap fails) anywhere on the growth path makes pagealloc_alloc
 * return 0 cleanly; the allocator keeps working afterwards. Growth makes a few
 * OS calls (the arena mapping, arena records, page allocator metadata, now and
 * then a chunk of run records); arenas whose page allocator metadata was
 * refused wait for the next growth, so the sweep goes up and then down to make
 * each call the one that fails. */
static void test_fault_injection(void) {
    int failures = 0;
    struct live held[24];
    int nheld = 0;
    for (int it = 0; it < 24; it++) {
        int k = it < 12 ? it + 1 : 24 - it;
        uintptr_t hold = alloc1(1); /* keeps some metadata churn going */
        uint64_t mapped = stats().mapped_pages, released0 = stats().released_pages;
        size_t need = (size_t)stats().free_pages + 1; /* cannot fit: must grow */
        os_fail_after(k);
        size_t rel = 99;
        bool nz = true;
        uintptr_t p = pagealloc_alloc(need, &rel, &nz);
        os_fail_after(0);
        if (!p) {
            failures++;
            CHECK_EQ(rel, 0);
            CHECK(!nz);
            /* Nothing half-grown: either no arena, or arenas waiting for their
             * metadata, counted as mapped, free and released. */
            struct pagealloc_stats st = stats();
            CHECK_EQ(st.mapped_pages - mapped, st.released_pages - released0);
        } else {
            CHECK(arena_of(p) != NULL);
            CHECK(stats().mapped_pages > mapped);
            held[nheld++] = (struct live){p, need}; /* keep it: free_pages stays small */
        }
        check_stats();
        uintptr_t q = alloc1(3); /* still works */
        pagealloc_free(q, 3);
        pagealloc_free(hold, 1);
        check_stats();
        if (it == 0) CHECK(!p); /* the very first OS call of growth fails */
    }
    for (int i = 0; i < nheld; i++) pagealloc_free(held[i].p, held[i].n);
    fprintf(stderr, "%d of 24 injected failures surfaced as a clean 0\n", failures);
    CHECK(failures >= 3);
    /* Small requests that need no OS call are unaffected by pending failures. */
    os_fail_after(1);
    uintptr_t p = alloc1(2);
    os_fail_after(0);
    pagealloc_free(p, 2);
    uint64_t meta = stats().meta_bytes;
    CHECK(pagealloc_alloc(PAGEALLOC_MAX_PAGES + 1, &(size_t){0}, &(bool){0}) == 0); /* too big */
    CHECK(pagealloc_alloc((size_t)1 << 40, &(size_t){0}, &(bool){0}) == 0);
    CHECK_EQ(stats().meta_bytes, meta);
    check_stats();
}

/* Threads allocate and free concurrently while another scavenges: each page
 * carries its owner's tag, which must survive until its owner frees it. */
static volatile int stop_scav;

static void *scav_thread(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&stop_scav, __ATOMIC_ACQUIRE)) pagealloc_scavenge(64);
    return NULL;
}

static void *worker(void *arg) {
    uint64_t tag = (uint64_t)(uintptr_t)arg, s = tag * 0x9e3779b97f4a7c15ull | 1;
    enum { N = 64 };
    struct live l[N] = {{0, 0}};
    long ops = 20000 * test_scale();
    for (long op = 0; op < ops; op++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int i = (int)(s % N);
        if (l[i].p) {
            for (size_t j = 0; j < l[i].n; j++)
                CHECK(*(uint64_t *)(l[i].p + j * PAGE_SIZE) == tag + j);
            pagealloc_free(l[i].p, l[i].n);
            l[i].p = 0;
        } else {
            size_t n = 1 + (s >> 20) % 24, rel;
            bool nz;
            uintptr_t p = pagealloc_alloc(n, &rel, &nz);
            CHECK(p != 0);
            for (size_t j = 0; j < n; j++) {
                if (!nz) CHECK(*(uint64_t *)(p + j * PAGE_SIZE) == 0);
                *(uint64_t *)(p + j * PAGE_SIZE) = tag + j;
            }
            l[i] = (struct live){p, n};
        }
    }
    for (int i = 0; i < N; i++)
        if (l[i].p) pagealloc_free(l[i].p, l[i].n);
    return NULL;
}

static void test_concurrent(void) {
    pthread_t w[3], sc;
    stop_scav = 0;
    CHECK(pthread_create(&sc, NULL, scav_thread, NULL) == 0);
    for (uintptr_t i = 0; i < 3; i++)
        CHECK(pthread_create(&w[i], NULL, worker, (void *)((i + 1) << 32)) == 0);
    for (int i = 0; i < 3; i++) CHECK(pthread_join(w[i], NULL) == 0);
    __atomic_store_n(&stop_scav, 1, __ATOMIC_RELEASE);
    CHECK(pthread_join(sc, NULL) == 0);
    check_stats();
    struct pagealloc_stats st = stats();
    CHECK_EQ(st.mapped_pages - st.free_pages, inuse0);
}

static void test_atfork(void) {
    pagealloc_atfork_prepare();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        pagealloc_atfork_child();
        size_t rel;
        bool nz;
        uintptr_t p = pagealloc_alloc(5, &rel, &nz);
        if (!p) _exit(3);
        pagealloc_free(p, 5);
        pagealloc_verify();
        _exit(0);
    }
    pagealloc_atfork_parent();
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    uintptr_t p = alloc1(1); /* the parent's lock was released */
    pagealloc_free(p, 1);
}

static void double_free(void) {
    uintptr_t g = alloc1(1), p = alloc1(1), g2 = alloc1(1);
    (void)g, (void)g2;
    pagealloc_free(p, 1);
    pagealloc_free(p, 1);
}

static void overlapping_free(void) {
    uintptr_t p = alloc1(10), g = alloc1(1);
    (void)g;
    pagealloc_free(p + 5 * PAGE_SIZE, 5);
    pagealloc_free(p, 6); /* page 5 is already free */
}

static void foreign_free(void) {
    static char buf[3 * 8192];
    pagealloc_free(((uintptr_t)buf + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1), 1);
}

static void test_misuse(void) {
    expect_death(double_free, 2, "fatal error: pagealloc_free: pages already free");
    expect_death(overlapping_free, 2, "fatal error: pagealloc_free: pages already free");
    expect_death(foreign_free, 2, "fatal error: pagealloc_free: address not in the heap");
}

int main(void) {
    int64_t t0 = test_now_ns();
    RUN(test_first_alloc);
    RUN(test_fault_injection); /* early: growth then costs little address space */
    RUN(test_lowest_address);
    RUN(test_coalesce);
    RUN(test_dirty_needzero);
    RUN(test_scavenge);
    RUN(test_large_and_growth);
    RUN(test_random);
    RUN(test_concurrent);
    RUN(test_atfork);
    RUN(test_misuse);
    struct pagealloc_stats st = stats();
    fprintf(stderr, "mapped %llu MiB, meta %llu KiB, rss %zu KiB, %.2f s\n",
            (unsigned long long)(st.mapped_pages * PAGE_SIZE >> 20),
            (unsigned long long)(st.meta_bytes >> 10), os_rss() >> 10,
            (double)(test_now_ns() - t0) / 1e9);
    fprintf(stderr, "PASS\n");
    return test_result();
}
