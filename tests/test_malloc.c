/* Functional tests for the malloc family (include/gort/malloc.h) and for the
 * GC allocation (gort_alloc_noscan / gort_alloc_conservative, src/gc).
 *
 * Every block handed out is checked for what a caller relies on: at least
 * the size asked for (for small sizes Go's size class, 16-aligned over 8 bytes: the smallest
 * class that fits, found here from the table, not the allocator's lookup),
 * aligned as its size class guarantees, writable in full, and disjoint from
 * every other live block (each block is filled with a pattern of its own and
 * every pattern is verified after all of them were written). Zeroing
 * (calloc, GC allocation) is checked on memory known to have been
 * dirtied and freed first, so that a skipped memset is caught. Also:
 * overflowing sizes, realloc across the small/large boundary, aligned
 * allocation for every alignment, frees across threads (and the reuse of
 * what they free), frees from TLS destructors after the allocator's own
 * thread-exit handler, remote frees in batches and the reuse of the spans
 * they empty, Go's tiny allocator and its MemStats accounting. */
#include "test.h"
#include "gort/gc.h"

#include "gort/malloc.h"
#include "gort/memstats.h"
#include "mem/arena.h"
#include "mem/malloc.h"
#include "mem/mspan.h"
#include "mem/sizeclasses.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>

/* ---- helpers ---- */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The pattern of block id: word w of the block holds word(id, w), and a
 * trailing partial word holds that word's low bytes. Word-sized, so that
 * filling and checking cost little next to the allocator. */
static inline uint64_t word(uint64_t id, size_t w) {
    return ((id + 1) * 0x9e3779b97f4a7c15ull) ^ ((w + 1) * 0xbf58476d1ce4e5b9ull);
}

static void fill(void *p, size_t n, uint64_t id) {
    uint8_t *b = p;
    size_t nw = n / 8;
    for (size_t w = 0; w < nw; w++) {
        uint64_t v = word(id, w);
        memcpy(b + w * 8, &v, 8);
    }
    uint64_t v = word(id, nw);
    memcpy(b + nw * 8, &v, n % 8);
}

static bool verify(const void *p, size_t n, uint64_t id) {
    const uint8_t *b = p;
    size_t nw = n / 8;
    for (size_t w = 0; w <= nw; w++) {
        uint64_t v = word(id, w), got = 0;
        size_t k = w < nw ? 8 : n % 8;
        memcpy(&got, b + w * 8, k);
        if (k < 8) v &= ((uint64_t)1 << (k * 8)) - 1;
        if (got != v) {
            fprintf(stderr, "pattern mismatch in block %p (id %llu, %zu bytes) at word %zu\n", p,
                    (unsigned long long)id, n, w);
            return false;
        }
    }
    return true;
}

static bool all_zero(const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) {
            fprintf(stderr, "non-zero byte 0x%02x at offset %zu of %zu in %p\n", b[i], i, n, p);
            return false;
        }
    return true;
}

/* What a request of n bytes must get: the smallest size class that fits
 * (found here by scanning the table, independently of the allocator's lookup
 * tables), or whole pages above MAX_SMALL_SIZE. */
/* Go's class, except that a request over 8 bytes gets a 16-aligned object
 * (C's max_align_t), so 17..24 bytes skip Go's 24-byte class. */
static size_t expected_size(size_t n) {
    if (n == 0) n = 1;
    if (n <= MAX_SMALL_SIZE) {
        for (int c = 1; c < NUM_SIZE_CLASSES; c++)
            if (class_to_size[c] >= n && (n <= 8 || class_to_size[c] % 16 == 0))
                return class_to_size[c];
    }
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

/* The alignment every object of that size gets: spans are page-aligned and
 * objects sit at multiples of their size, so the largest power of two
 * dividing the size (at most a page). */
static size_t expected_align(size_t objsize) {
    size_t a = objsize & -objsize;
    return a > PAGE_SIZE ? PAGE_SIZE : a;
}

struct blk {
    uintptr_t p;
    size_t n, usable;
    uint64_t id;
};

static int cmp_blk(const void *a, const void *b) {
    uintptr_t x = ((const struct blk *)a)->p, y = ((const struct blk *)b)->p;
    return x < y ? -1 : x > y;
}

/* Checks that the blocks are pairwise disjoint over their usable sizes. */
static void check_disjoint(struct blk *b, size_t n) {
    qsort(b, n, sizeof *b, cmp_blk);
    for (size_t i = 1; i < n; i++) {
        if (b[i - 1].p + b[i - 1].usable > b[i].p) {
            fprintf(stderr, "blocks overlap: %p+%zu and %p\n", (void *)b[i - 1].p, b[i - 1].usable,
                    (void *)b[i].p);
            CHECK(0);
        }
    }
}

static gort_memstats ms_buf;
static gort_memstats *stats(void) {
    gort_read_memstats(&ms_buf);
    return &ms_buf;
}

/* ---- sizes ---- */

#define WINDOW 128

static void check_window(struct blk *w, size_t n) {
    for (size_t i = 0; i < n; i++) CHECK(verify((void *)w[i].p, w[i].usable, w[i].id));
    check_disjoint(w, n);
    for (size_t i = 0; i < n; i++) gort_free((void *)w[i].p);
}

static void alloc_one(struct blk *w, size_t *nw, size_t n, uint64_t id) {
    void *p = gort_malloc(n);
    CHECK(p != NULL);
    size_t u = gort_usable_size(p);
    size_t want = expected_size(n);
    CHECK_EQ(malloc_roundup(n), want); /* Go's roundupsize agrees */
    if (u != want) {
        fprintf(stderr, "malloc(%zu): usable %zu, want %zu\n", n, u, want);
        CHECK(0);
    }
    CHECK(u >= n);
    CHECK_EQ((uintptr_t)p % 8, 0);
    if (n > 8) CHECK_EQ((uintptr_t)p % 16, 0); /* max_align_t, as glibc's malloc */
    if (n <= MAX_SMALL_SIZE) {
        if ((uintptr_t)p % expected_align(u)) {
            fprintf(stderr, "malloc(%zu) = %p: not aligned to %zu\n", n, p, expected_align(u));
            CHECK(0);
        }
    } else {
        CHECK_EQ((uintptr_t)p % PAGE_SIZE, 0);
    }
    fill(p, u, id);
    w[*nw] = (struct blk){(uintptr_t)p, n, u, id};
    if (++*nw == WINDOW) {
        check_window(w, *nw);
        *nw = 0;
    }
}

static void test_every_size(void) {
    static struct blk w[WINDOW];
    size_t nw = 0;
    uint64_t id = 0;
    /* Every size up to 4 KiB, then steps, then large sizes. */
    for (size_t n = 0; n <= 4096; n++) alloc_one(w, &nw, n, id++);
    for (size_t n = 4097; n <= MAX_SMALL_SIZE + 64; n += 13) alloc_one(w, &nw, n, id++);
    for (size_t n = MAX_SMALL_SIZE; n <= 70000; n += 97) alloc_one(w, &nw, n, id++);
    /* Each class's boundary: its size, one less, one more. */
    for (int c = 1; c < NUM_SIZE_CLASSES; c++) {
        size_t s = class_to_size[c];
        alloc_one(w, &nw, s - 1, id++);
        alloc_one(w, &nw, s, id++);
        alloc_one(w, &nw, s + 1, id++);
    }
    /* Page boundaries of large objects. */
    for (size_t k = 4; k <= 9; k++) {
        alloc_one(w, &nw, k * PAGE_SIZE - 1, id++);
        alloc_one(w, &nw, k * PAGE_SIZE, id++);
        alloc_one(w, &nw, k * PAGE_SIZE + 1, id++);
    }
    check_window(w, nw);
}

/* Many blocks of one size live at once, spanning several spans. */
static void test_many_live(void) {
    static const size_t sizes[] = {1, 8, 24, 48, 100, 256, 1000, 3000, 9000, 32768, 40000};
    enum { N = 600 };
    static struct blk b[N];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        for (int i = 0; i < N; i++) {
            void *p = gort_malloc(n);
            CHECK(p != NULL);
            b[i] = (struct blk){(uintptr_t)p, n, gort_usable_size(p), (uint64_t)(k * N + i)};
            CHECK(b[i].usable >= n);
            fill(p, b[i].usable, b[i].id);
        }
        for (int i = 0; i < N; i++) CHECK(verify((void *)b[i].p, b[i].usable, b[i].id));
        check_disjoint(b, N);
        for (int i = 0; i < N; i++) gort_free((void *)b[i].p);
    }
}

static void test_malloc_zero(void) {
    enum { N = 200 };
    static struct blk b[N];
    for (int i = 0; i < N; i++) {
        void *p = gort_malloc(0);
        CHECK(p != NULL);
        b[i] = (struct blk){(uintptr_t)p, 0, 1, (uint64_t)i};
        *(uint8_t *)p = (uint8_t)i; /* at least one byte is ours */
    }
    for (int i = 0; i < N; i++) CHECK_EQ(*(uint8_t *)b[i].p, (uint8_t)i);
    check_disjoint(b, N); /* unique */
    for (int i = 0; i < N; i++) gort_free((void *)b[i].p);
    void *z1 = gort_calloc(0, 16), *z2 = gort_calloc(16, 0);
    CHECK(z1 && z2 && z1 != z2);
    gort_free(z1);
    gort_free(z2);
    gort_free(NULL); /* a no-op */
    CHECK_EQ(gort_usable_size(NULL), 0);
}

/* ---- calloc ---- */

/* Fills and frees count blocks of n bytes, then callocs count blocks of n
 * bytes and checks they are zero. Returns how many calloc'd blocks reused an
 * address of the freed ones. */
static int calloc_after_dirty(size_t n, int count) {
    void **old = malloc(sizeof(void *) * (size_t)count);
    void **nw = malloc(sizeof(void *) * (size_t)count);
    for (int i = 0; i < count; i++) {
        old[i] = gort_malloc(n);
        CHECK(old[i] != NULL);
        memset(old[i], 0xa5, gort_usable_size(old[i]));
    }
    for (int i = 0; i < count; i++) gort_free(old[i]);
    int reused = 0;
    for (int i = 0; i < count; i++) {
        nw[i] = gort_calloc(1, n);
        CHECK(nw[i] != NULL);
        CHECK(all_zero(nw[i], n));
        for (int j = 0; j < count; j++)
            if (nw[i] == old[j]) {
                reused++;
                break;
            }
        memset(nw[i], 0x5a, n);
    }
    for (int i = 0; i < count; i++) gort_free(nw[i]);
    free(old);
    free(nw);
    return reused;
}

struct remote_free_arg {
    void **ptrs;
    int n;
};

static void *remote_free_thread(void *arg) {
    struct remote_free_arg *a = arg;
    for (int i = 0; i < a->n; i++) gort_free(a->ptrs[i]);
    return NULL;
}

static void test_calloc_dirty(void) {
    static const size_t small[] = {1, 8, 16, 24, 48, 64, 200, 1000, 1024, 4000, 8192, 32768};
    for (size_t k = 0; k < sizeof small / sizeof small[0]; k++) {
        int r = calloc_after_dirty(small[k], 64);
        /* Freed small blocks go to this thread's free list and are reused
         * first: the test really did calloc over dirty memory. */
        CHECK(r > 0);
    }
    /* Large blocks: up to 256 KiB they come back from the thread's large
     * cache (dirty); bigger ones from the page heap's dirty pages. */
    CHECK(calloc_after_dirty(40000, 4) > 0);
    CHECK(calloc_after_dirty(200000, 4) > 0);
    calloc_after_dirty(1 << 20, 4);
    calloc_after_dirty(3 << 20, 2);

    /* Blocks freed by another thread come back through the span's remote
     * free stack, not the local free list: calloc must zero those too. */
    enum { N = 3000 };
    static void *ptrs[N];
    for (int i = 0; i < N; i++) {
        ptrs[i] = gort_malloc(96);
        memset(ptrs[i], 0xee, 96);
    }
    struct remote_free_arg a = {ptrs, N};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, remote_free_thread, &a) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    int reused = 0;
    for (int i = 0; i < N; i++) {
        void *p = gort_calloc(96, 1);
        CHECK(p != NULL);
        CHECK(all_zero(p, 96));
        for (int j = 0; j < N && !reused; j++) reused += p == ptrs[j];
        ptrs[i] = p;
    }
    CHECK(reused);
    for (int i = 0; i < N; i++) gort_free(ptrs[i]);

    /* calloc(count, size) with count > 1 zeroes count * size bytes. */
    void *d = gort_malloc(4000);
    memset(d, 0x77, 4000);
    gort_free(d);
    uint32_t *z = gort_calloc(1000, sizeof(uint32_t));
    CHECK(z != NULL);
    CHECK(all_zero(z, 4000));
    gort_free(z);
}

static void test_overflow(void) {
    CHECK(gort_calloc(SIZE_MAX / 2, 4) == NULL);
    CHECK(gort_calloc(4, SIZE_MAX / 2) == NULL);
    CHECK(gort_calloc(SIZE_MAX / 2 + 1, 2) == NULL);
    CHECK(gort_calloc(SIZE_MAX, SIZE_MAX) == NULL);
    CHECK(gort_calloc((size_t)1 << 32, (size_t)1 << 32) == NULL);
    CHECK(gort_calloc(((size_t)1 << 33) + 1, (size_t)1 << 31) == NULL);
    CHECK(gort_malloc(SIZE_MAX) == NULL);
    CHECK(gort_malloc(SIZE_MAX - PAGE_SIZE) == NULL);
    CHECK(gort_malloc(SIZE_MAX / 2) == NULL);
    void *p = gort_malloc(100);
    fill(p, 100, 7);
    CHECK(gort_realloc(p, SIZE_MAX) == NULL);
    CHECK(gort_realloc(p, SIZE_MAX - 10) == NULL);
    CHECK(verify(p, 100, 7)); /* a failed realloc leaves the block alone */
    CHECK(gort_usable_size(p) >= 100);
    gort_free(p);
    void *q = (void *)1;
    CHECK_EQ(gort_posix_memalign(&q, 64, SIZE_MAX), ENOMEM);
    CHECK_EQ(gort_posix_memalign(&q, (size_t)1 << 20, SIZE_MAX - 100), ENOMEM);
    CHECK(q == (void *)1);
    CHECK(gort_aligned_alloc(4096, SIZE_MAX) == NULL);
}

/* ---- realloc ---- */

static void test_realloc(void) {
    /* A chain through small, large and back, growing and shrinking; the
     * common prefix survives every move. */
    static const size_t chain[] = {1,       10,    100,    17,     1000, 24, 33000,
                                   32768,   40000, 500000, 70000,  100,  3,  65536,
                                   2 << 20, 40000, 8,      300000, 5000, 1,  0};
    uint8_t *p = NULL;
    size_t have = 0;
    for (int k = 0; chain[k]; k++) {
        size_t n = chain[k];
        uint8_t *q = gort_realloc(p, n);
        CHECK(q != NULL);
        CHECK(gort_usable_size(q) >= n);
        size_t keep = have < n ? have : n;
        CHECK(verify(q, keep, 42));
        fill(q, n, 42);
        p = q;
        have = n;
    }
    gort_free(p);

    /* Each transition on its own, with a fresh block each time. */
    static const size_t pairs[][2] = {
        {10, 200},      {200, 10},        {1000, 1024},     {1024, 1000},   {100, 100000},
        {100000, 100},  {40000, 2 << 20}, {2 << 20, 40000}, {40000, 45000}, {300000, 200000},
        {32768, 32769}, {32769, 32768},   {0, 5},           {5, 0},
    };
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        size_t a = pairs[k][0], b = pairs[k][1];
        if (!b) continue;
        uint8_t *x = gort_malloc(a);
        CHECK(x != NULL);
        fill(x, a, k);
        uint8_t *y = gort_realloc(x, b);
        CHECK(y != NULL);
        CHECK(gort_usable_size(y) >= b);
        CHECK(verify(y, a < b ? a : b, k));
        fill(y, b, k + 1000);
        CHECK(verify(y, b, k + 1000));
        gort_free(y);
    }

    /* realloc(NULL, n) is malloc(n). */
    void *m = gort_realloc(NULL, 300);
    CHECK(m != NULL);
    CHECK(gort_usable_size(m) >= 300);
    fill(m, 300, 1);
    gort_free(m);
    m = gort_realloc(NULL, 100000);
    CHECK(m != NULL);
    CHECK(gort_usable_size(m) >= 100000);
    gort_free(m);

    /* realloc(p, 0) frees p and returns NULL: the object count drops. */
    static const size_t zsizes[] = {16, 3000, 100000, 4 << 20};
    for (size_t k = 0; k < sizeof zsizes / sizeof zsizes[0]; k++) {
        void *z = gort_malloc(zsizes[k]);
        CHECK(z != NULL);
        uint64_t before = stats()->heap_objects, frees = ms_buf.frees;
        CHECK(gort_realloc(z, 0) == NULL);
        CHECK_EQ(stats()->heap_objects, before - 1);
        CHECK_EQ(ms_buf.frees, frees + 1);
    }
}

/* ---- aligned allocation ---- */

static void test_posix_memalign(void) {
    enum { MAXB = 64 };
    static struct blk b[MAXB];
    uint64_t id = 0;
    for (size_t align = 8; align <= ((size_t)2 << 20); align <<= 1) {
        size_t sizes[] = {0,         1,    7,     8,         9,      16,
                          17,        24,   100,   align - 1, align,  align + 1,
                          3 * align, 1000, 32768, 33000,     100000, align / 2 + 8};
        size_t nb = 0;
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            size_t n = sizes[k];
            if (n > (8 << 20)) continue;
            for (int rep = 0; rep < 3; rep++) { /* several: objects at different slots */
                void *p = (void *)1;
                int rc = gort_posix_memalign(&p, align, n);
                CHECK_EQ(rc, 0);
                CHECK(p != NULL && p != (void *)1);
                if ((uintptr_t)p % align) {
                    fprintf(stderr, "posix_memalign(align %zu, size %zu) = %p: misaligned\n", align,
                            n, p);
                    CHECK(0);
                }
                size_t u = gort_usable_size(p);
                CHECK(u >= n);
                fill(p, u, id);
                b[nb++] = (struct blk){(uintptr_t)p, n, u, id++};
            }
        }
        for (size_t i = 0; i < nb; i++) CHECK(verify((void *)b[i].p, b[i].usable, b[i].id));
        check_disjoint(b, nb);
        for (size_t i = 0; i < nb; i++) gort_free((void *)b[i].p);
    }

    /* Every small size under 16-byte alignment, many at once: 16-byte
     * alignment must hold in every slot of whatever class serves it. */
    for (size_t n = 1; n <= 256; n++) {
        void *ps[24];
        for (int i = 0; i < 24; i++) {
            CHECK_EQ(gort_posix_memalign(&ps[i], 16, n), 0);
            if ((uintptr_t)ps[i] % 16) {
                fprintf(stderr, "posix_memalign(16, %zu) = %p: not 16-aligned\n", n, ps[i]);
                CHECK(0);
            }
        }
        for (int i = 0; i < 24; i++) gort_free(ps[i]);
    }

    static const size_t bad[] = {
        0, 1, 2, 3, 4, 5, 12, 24, 48, 96, 1000, 4097, ((size_t)1 << 20) + 8, SIZE_MAX};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        void *p = (void *)1;
        CHECK_EQ(gort_posix_memalign(&p, bad[k], 64), EINVAL);
        CHECK(p == (void *)1); /* untouched on failure */
    }
}

static void test_aligned_alloc(void) {
    /* aligned_alloc. */
    for (size_t align = 1; align <= ((size_t)1 << 20); align <<= 1) {
        size_t n = align * 2 + 8;
        void *p = gort_aligned_alloc(align, n);
        CHECK(p != NULL);
        CHECK_EQ((uintptr_t)p % align, 0);
        CHECK(gort_usable_size(p) >= n);
        fill(p, n, align);
        CHECK(verify(p, n, align));
        gort_free(p);
    }
    static const size_t bad_aa[] = {3, 24, 48, 1000, 4097};
    for (size_t k = 0; k < sizeof bad_aa / sizeof bad_aa[0]; k++) {
        void *p = gort_aligned_alloc(bad_aa[k], 64);
        if (p) {
            fprintf(stderr, "aligned_alloc(%zu, 64) = %p, want NULL (not a power of two)\n",
                    bad_aa[k], p);
            CHECK(0);
        }
    }
}

/* ---- threads ---- */

enum { XN = 4000 };
static struct blk xb[XN];

static size_t mixed_size(uint64_t r) {
    switch (r % 16) {
    case 0:
        return 33000 + r % 100000; /* large */
    case 1:
        return 1 + (r >> 8) % 32768; /* any small */
    case 2:
    case 3:
        return 1 + (r >> 8) % 2048; /* medium */
    default:
        return 1 + (r >> 8) % 256; /* small */
    }
}

static void alloc_set(uint64_t seed) {
    for (int i = 0; i < XN; i++) {
        size_t n = mixed_size(rnd());
        void *p = gort_malloc(n);
        CHECK(p != NULL);
        xb[i] = (struct blk){(uintptr_t)p, n, n, seed + (uint64_t)i};
        fill(p, n, xb[i].id);
    }
}

static void free_set(void) {
    for (int i = 0; i < XN; i++) {
        CHECK(verify((void *)xb[i].p, xb[i].n, xb[i].id));
        gort_free((void *)xb[i].p);
    }
}

static void *thread_alloc(void *arg) {
    alloc_set((uint64_t)(uintptr_t)arg);
    return NULL;
}

static void *thread_free(void *arg) {
    (void)arg;
    free_set();
    return NULL;
}

static void run_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, arg) == 0);
    CHECK(pthread_join(t, NULL) == 0);
}

static void test_cross_thread(void) {
    uint64_t objs0 = stats()->heap_objects, alloc0 = ms_buf.heap_alloc;
    /* Allocated here, freed there. */
    alloc_set(1000000);
    CHECK_EQ(stats()->heap_objects, objs0 + XN);
    run_thread(thread_free, NULL);
    CHECK_EQ(stats()->heap_objects, objs0);
    CHECK_EQ(ms_buf.heap_alloc, alloc0);
    /* Allocated there (the thread then exits), freed here. */
    run_thread(thread_alloc, (void *)(uintptr_t)2000000);
    CHECK_EQ(stats()->heap_objects, objs0 + XN);
    free_set();
    CHECK_EQ(stats()->heap_objects, objs0);
    CHECK_EQ(ms_buf.heap_alloc, alloc0);

    /* Remote frees are reused, not leaked: a ping-pong of many rounds stays
     * within the heap that one round needs. */
    uint64_t inuse_after_first = 0;
    for (int round = 0; round < 6 * test_scale(); round++) {
        alloc_set(3000000 + (uint64_t)round * XN);
        run_thread(thread_free, NULL);
        run_thread(thread_alloc, (void *)(uintptr_t)(4000000 + (uint64_t)round * XN));
        free_set();
        gort_memstats *ms = stats();
        CHECK_EQ(ms->heap_objects, objs0);
        if (round == 1) inuse_after_first = ms->heap_inuse;
        if (round > 1 && ms->heap_inuse > inuse_after_first + (8 << 20)) {
            fprintf(stderr, "heap_inuse grows with each round: %llu after round 1, %llu now\n",
                    (unsigned long long)inuse_after_first, (unsigned long long)ms->heap_inuse);
            CHECK(0);
        }
    }
}

/* A thread's other TLS destructors may run after the allocator's own exit
 * handler and still free and allocate: that must neither crash nor leak
 * (the mcache re-created for them must be given back again). */
static pthread_key_t late_key;

static void late_dtor(void *p) {
    CHECK(*(uint8_t *)p == 0x42);
    gort_free(p);
    void *q = gort_malloc(5000);
    CHECK(q != NULL);
    memset(q, 1, 5000);
    gort_free(q);
    q = gort_malloc(100000); /* a large one: the large cache, too */
    CHECK(q != NULL);
    gort_free(q);
}

static void *late_thread(void *arg) {
    (void)arg;
    void *p = gort_malloc(64);
    CHECK(p != NULL);
    *(uint8_t *)p = 0x42;
    CHECK(pthread_setspecific(late_key, p) == 0);
    return NULL;
}

static void test_free_in_tls_destructor(void) {
    gort_free(gort_malloc(1)); /* the allocator's key exists before ours */
    CHECK(pthread_key_create(&late_key, late_dtor) == 0);
    gort_memstats a = *stats();
    for (int i = 0; i < 500 * test_scale(); i++) run_thread(late_thread, NULL);
    gort_memstats b = *stats();
    CHECK_EQ(b.heap_objects, a.heap_objects);
    CHECK_EQ(b.heap_alloc, a.heap_alloc);
    /* No mcache per exited thread: at most one more pool chunk. */
    CHECK(b.mcache_sys <= a.mcache_sys + (512 << 10));
    CHECK(b.heap_inuse <= a.heap_inuse + (2 << 20));
    CHECK(pthread_key_delete(late_key) == 0);
}

/* ---- mallocgc ---- */

struct tiny_result {
    uintptr_t addr[64];
    size_t size[64];
    int n;
    gort_memstats before, after;
};

static const size_t tiny_sizes[] = {1, 1,  1, 1, 1, 1, 1,  1, 1, 1, 1,  1,  1, 1, 1,
                                    1,           /* one block */
                                    8, 8,        /* one block */
                                    1, 8,  2, 4, /* one block */
                                    3, 12, 1, 6, 2, 4, 15, 7, 5, 9, 11, 13, 1, 2, 3};

static void *tiny_thread(void *arg) {
    struct tiny_result *r = arg;
    r->n = (int)(sizeof tiny_sizes / sizeof tiny_sizes[0]);
    gort_read_memstats(&r->before);
    for (int i = 0; i < r->n; i++) {
        r->size[i] = tiny_sizes[i];
        r->addr[i] = (uintptr_t)gort_alloc_noscan(tiny_sizes[i]);
    }
    gort_read_memstats(&r->after);
    return NULL;
}

static void test_mallocgc_tiny(void) {
    /* No collection in between: a cycle's end makes every mcache start a
     * new tiny block. */
    gort_set_gc_percent(-1);
    gort_gc();
    /* In a new thread, so that its mcache starts without a tiny block. */
    static struct tiny_result r;
    run_thread(tiny_thread, &r);
    int blocks = 0;
    uintptr_t seen[64];
    for (int i = 0; i < r.n; i++) {
        uintptr_t a = r.addr[i];
        size_t n = r.size[i];
        CHECK(a != 0);
        size_t align = (n & 7) == 0 ? 8 : (n & 3) == 0 ? 4 : (n & 1) == 0 ? 2 : 1;
        CHECK_EQ(a % align, 0);
        uintptr_t blk = a & ~(uintptr_t)15;
        CHECK(a + n <= blk + 16); /* inside one 16-byte block */
        mspan *s = span_of(a);
        CHECK(s != NULL);
        CHECK_EQ(s->kind, SPAN_GC);
        CHECK_EQ(s->elemsize, 16);
        CHECK(s->noscan);
        bool dup = false;
        for (int j = 0; j < blocks; j++) dup |= seen[j] == blk;
        if (!dup) seen[blocks++] = blk;
        /* Disjoint from every earlier tiny object. */
        for (int j = 0; j < i; j++) CHECK(r.addr[j] + r.size[j] <= a || a + n <= r.addr[j]);
    }
    /* The first sixteen 1-byte objects share one block, byte after byte. */
    for (int i = 1; i < 16; i++) CHECK_EQ(r.addr[i], r.addr[0] + (uintptr_t)i);
    /* Two 8-byte objects share the next block. */
    CHECK_EQ(r.addr[17], r.addr[16] + 8);
    CHECK_EQ(r.addr[16] % 16, 0);
    CHECK(r.addr[16] != r.addr[0]);
    /* 1, 8, 2, 4, 3: the 8 is aligned to offset 8, which fills the block;
     * the 2 opens the next, the 4 goes to offset 4 and the 3 to offset 8. */
    CHECK_EQ(r.addr[18] % 16, 0);
    CHECK_EQ(r.addr[19], r.addr[18] + 8);
    CHECK_EQ(r.addr[20] % 16, 0);
    CHECK_EQ(r.addr[21], r.addr[20] + 4);
    CHECK_EQ(r.addr[22], r.addr[20] + 8);
    /* Go's tiny allocator packs the 35 objects into 11 blocks; 141 bytes
     * need 9 blocks at the very least. */
    CHECK_EQ(blocks, 11);

    /* Go counts every tiny object in Mallocs (and in Frees, since only its
     * block is tracked): HeapObjects counts the blocks. */
    CHECK_EQ(r.after.mallocs - r.before.mallocs, (uint64_t)r.n);
    CHECK_EQ(r.after.heap_objects - r.before.heap_objects, (uint64_t)blocks);
    CHECK_EQ(r.after.frees - r.before.frees, (uint64_t)(r.n - blocks));
    CHECK_EQ(r.after.by_size[2].mallocs - r.before.by_size[2].mallocs, (uint64_t)blocks);
    CHECK_EQ(r.after.heap_alloc - r.before.heap_alloc, (uint64_t)blocks * 16);

    /* Tiny memory is zero, and pointer-holding or >= 16-byte objects are not
     * tiny: each gets an object of its own class. */
    for (int i = 0; i < r.n; i++) CHECK(all_zero((void *)r.addr[i], r.size[i]));
    void *a = gort_alloc_conservative(8), *b = gort_alloc_conservative(8);
    CHECK(a && b && a != b);
    CHECK_EQ(span_of((uintptr_t)a)->elemsize, 8);
    CHECK(!span_of((uintptr_t)a)->noscan);
    void *c = gort_alloc_noscan(16), *d = gort_alloc_noscan(16);
    CHECK((uintptr_t)c / 16 != (uintptr_t)d / 16);
}

static void test_mallocgc_zero(void) {
    /* Large: a block freed to this thread's large cache, then a GC object of
     * the same size (which takes pages from the page heap, not that cache):
     * zeroed either way. */
    void *x = gort_malloc(100000);
    memset(x, 0xcd, gort_usable_size(x));
    gort_free(x);
    uint8_t *g = gort_alloc_noscan(100000);
    CHECK(g != NULL);
    CHECK(all_zero(g, 100000));
    CHECK_EQ(span_of((uintptr_t)g)->kind, SPAN_GC);

    /* Large, from dirty pages in the page heap: three 1 MiB holes between
     * live blocks, refilled by GC objects. */
    void *blk[7];
    for (int i = 0; i < 7; i++) {
        blk[i] = gort_malloc(1 << 20);
        memset(blk[i], 0xcd, 1 << 20);
    }
    for (int i = 1; i < 7; i += 2) gort_free(blk[i]);
    int reused = 0;
    for (int i = 0; i < 3; i++) {
        uint8_t *p = gort_alloc_noscan(1 << 20);
        CHECK(p != NULL);
        CHECK(all_zero(p, 1 << 20));
        for (int j = 1; j < 7; j += 2) reused += (void *)p == blk[j];
    }
    CHECK(reused > 0);
    for (int i = 0; i < 7; i += 2) gort_free(blk[i]);

    /* Small: a dirty 2 MiB hole between two live blocks, then small GC
     * objects with needzero until one lands in the hole (the page allocator
     * takes the best fit, so other free runs may come first: bounded by the
     * idle pages there are; main runs this test first, when there are none). */
    uint8_t *lo = gort_malloc(2 << 20), *big = gort_malloc(2 << 20), *hi = gort_malloc(2 << 20);
    memset(big, 0xcd, 2 << 20);
    /* No cycle meanwhile: its sweep would free other runs for the objects
     * to land in first (the bound below counts the idle pages of now). */
    int gogc = gort_set_gc_percent(-1);
    gort_free(big);
    uint64_t limit = stats()->heap_idle / 1024 + 4096;
    int inside = 0;
    for (uint64_t i = 0; i < limit && !inside; i++) {
        uint8_t *p = (i & 1 ? gort_alloc_noscan(1024) : gort_alloc_conservative(1024));
        CHECK(p != NULL);
        CHECK(all_zero(p, 1024));
        inside += p >= big && p < big + (2 << 20);
        if (i % 512 == 511) { /* the scavenger may have given empty spans back meanwhile */
            uint64_t l = i + stats()->heap_idle / 1024 + 4096;
            if (l > limit) limit = l;
        }
    }
    CHECK(inside > 0);
    for (int i = 0; i < 64; i++) { /* the rest of the hole's first spans */
        uint8_t *p = gort_alloc_noscan(1024);
        CHECK(all_zero(p, 1024));
    }
    gort_set_gc_percent(gogc); /* starts a cycle: the heap is over the goal */
    gort_free(lo);
    gort_free(hi);
    /* That cycle finds about 3 MB of these objects dead, and the sweeper
     * frees them when it gets a CPU: it runs at SCHED_IDLE, so on a loaded
     * machine possibly only in the middle of a later case, whose exact
     * counts of live objects then drop by thousands (seen in CI, under
     * ASan beside test_fork: test_cross_thread read 2922 objects fewer
     * than it had counted). gort_gc waits for the cycle, runs another and
     * finishes the sweep itself: the later cases start on a quiet heap. */
    gort_gc();
}

/* Explicit spans are a multiple of Go's span (malloc_span_pages); Go's
 * division magic must stay exact on them: the object index (high half of
 * off * divmagic) and the object-start test (low half below divmagic) that
 * gort_free relies on, for every offset of every class. */
/* A live object whose first word looks like a free-list link (as if the
 * program had stored exactly a masked link there): the owner's free walks
 * the span's lists, finds it is not free, and frees it; so do realloc and
 * usable_size. Without the walk this would be a false "double free". */
static void test_link_lookalike(void) {
    enum { N = 64 };
    void *p[N];
    for (int i = 0; i < N; i++) p[i] = gort_malloc(48);
    mspan *s = span_of((uintptr_t)p[0]);
    CHECK(s && s->small_malloc);
    for (int i = 1; i < N; i += 2) gort_free(p[i]); /* free neighbours on the list */
    for (int i = 0; i < N; i += 2) {
        if (span_of((uintptr_t)p[i]) != s) continue;
        /* NULL's link, a free neighbour's, a live neighbour's. */
        void *as = i % 6 == 0 ? NULL : i % 6 == 2 ? p[i + 1] : p[(i + 2) % N];
        *(uintptr_t *)p[i] = link_encode(s, as);
        CHECK(link_plausible(s, *(uintptr_t *)p[i]));
        CHECK(gort_usable_size(p[i]) >= 48);
        if (i % 4 == 0) {
            gort_free(p[i]);
        } else {
            void *q = gort_realloc(p[i], 48); /* same class: stays */
            CHECK(q == p[i]);
            gort_free(q);
        }
    }
    /* Everything was freed once: a second round of mallocs gets them back,
     * their first word no longer a link (its top byte cleared). */
    for (int i = 0; i < N; i++) {
        p[i] = gort_malloc(48);
        mspan *si = span_of((uintptr_t)p[i]);
        CHECK_EQ(link_top(p[i]), 0);
        CHECK(!link_plausible(si, *(uintptr_t *)p[i]));
    }
    for (int i = 0; i < N; i++) gort_free(p[i]);
}

/* Remote frees in batches (mcache.h): a live thread frees every object of
 * three of our spans, in shuffled order, and waits. Its frees count in
 * MemStats at once; the batch it still holds keeps one span from emptying
 * until that thread allocates (its slow path pushes its batches); then the
 * three spans are empty (tfree's count, mspan.h) and our next allocations
 * reuse them (kept, reset, then bump-allocated: mcentral.h), with no new
 * pages from the heap. */
enum { RB_SPANS = 3 };
static void **rb_objs;
static size_t rb_n;
static sem_t rb_go, rb_done;

static void *rb_thread(void *arg) {
    (void)arg;
    for (size_t i = 0; i < rb_n; i++) gort_free(rb_objs[i]);
    sem_post(&rb_done);
    sem_wait(&rb_go);
    gort_free(gort_malloc(5000)); /* a fresh class: a refill, which pushes the batches */
    sem_post(&rb_done);
    sem_wait(&rb_go);
    return NULL;
}

static void test_remote_batches(void) {
    const size_t size = 96;
    void *first = gort_malloc(size);
    size_t nelems = span_of((uintptr_t)first)->nelems, m = (RB_SPANS + 3) * nelems, n = 0;
    void **all = malloc(sizeof(void *) * m);
    rb_objs = malloc(sizeof(void *) * nelems * RB_SPANS);
    CHECK(all && rb_objs);
    /* Three spans whose every object is ours, none of them current. */
    for (; n < m; n++) all[n] = gort_malloc(size);
    mspan *spans[RB_SPANS], *cur = span_of((uintptr_t)all[m - 1]);
    int ns = 0;
    for (size_t i = 0; i < m && ns < RB_SPANS; i++) {
        mspan *s = span_of((uintptr_t)all[i]);
        if (s == cur || (ns && spans[ns - 1] == s)) continue;
        size_t mine = 0;
        for (size_t j = 0; j < m; j++) mine += span_of((uintptr_t)all[j]) == s;
        if (mine == s->nelems) spans[ns++] = s;
    }
    CHECK_EQ(ns, RB_SPANS);
    rb_n = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < RB_SPANS; k++)
            if (span_of((uintptr_t)all[i]) == spans[k]) {
                rb_objs[rb_n++] = all[i];
                all[i] = NULL; /* the other thread frees it */
            }
    CHECK_EQ(rb_n, RB_SPANS * nelems);
    for (size_t i = rb_n - 1; i > 0; i--) { /* shuffle */
        size_t j = rnd() % (i + 1);
        void *t = rb_objs[i];
        rb_objs[i] = rb_objs[j];
        rb_objs[j] = t;
    }

    uint64_t frees0 = stats()->frees;
    sem_init(&rb_go, 0, 0);
    sem_init(&rb_done, 0, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, rb_thread, NULL) == 0);
    sem_wait(&rb_done);
    /* Counted as they happen, pending or pushed. */
    CHECK(stats()->frees >= frees0 + rb_n);
    uint32_t live = 0;
    for (int k = 0; k < RB_SPANS; k++) live += span_live(spans[k]);
    CHECK(live <= nelems); /* at most the batch still held */
    sem_post(&rb_go);
    sem_wait(&rb_done);
    for (int k = 0; k < RB_SPANS; k++) CHECK_EQ(span_live(spans[k]), 0);

    /* Our next allocations of the class take the emptied spans back (or
     * other free slots we already have): no pages from the heap. */
    uint64_t inuse = stats()->heap_inuse;
    for (size_t i = 0; i < rb_n; i++) {
        rb_objs[i] = gort_malloc(size);
        fill(rb_objs[i], size, i);
    }
    for (size_t i = 0; i < rb_n; i++) CHECK(verify(rb_objs[i], size, i));
    CHECK(stats()->heap_inuse <= inuse);
    sem_post(&rb_go);
    CHECK(pthread_join(t, NULL) == 0);
    for (size_t i = 0; i < rb_n; i++) gort_free(rb_objs[i]);
    for (size_t i = 0; i < n; i++) gort_free(all[i]);
    gort_free(first);
    free(all);
    free(rb_objs);
}

static void test_divmagic_malloc_spans(void) {
    for (unsigned sc = 1; sc < NUM_SIZE_CLASSES; sc++) {
        size_t bytes = malloc_span_pages(sc) * PAGE_SIZE, size = class_to_size[sc];
        CHECK(bytes / size <= MAX_OBJS_PER_SPAN);
        CHECK(bytes / size >= class_to_nelems[sc]);
        mspan s = {.base = 0, .divmagic = class_to_divmagic[sc]};
        for (uint64_t off = 0; off < bytes; off++) {
            uint64_t prod = span_obj_prod(&s, off);
            if ((prod >> 32) != off / size ||
                (((uint32_t)prod < s.divmagic) != (off % size == 0))) {
                fprintf(stderr, "class %u (%zu bytes, %zu-byte span): offset %llu\n", sc, size,
                        bytes, (unsigned long long)off);
                CHECK(0);
            }
        }
    }
}

int main(void) {
    RUN(test_divmagic_malloc_spans);
    RUN(test_mallocgc_zero); /* first: it wants a heap with few free runs */
    RUN(test_every_size);
    RUN(test_link_lookalike);
    RUN(test_many_live);
    RUN(test_malloc_zero);
    RUN(test_calloc_dirty);
    RUN(test_overflow);
    RUN(test_realloc);
    RUN(test_cross_thread);
    RUN(test_remote_batches);
    RUN(test_free_in_tls_destructor);
    RUN(test_mallocgc_tiny);
    RUN(test_aligned_alloc);
    RUN(test_posix_memalign);
    fprintf(stderr, "ok\n");
    return test_result();
}
