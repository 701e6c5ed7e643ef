/* Deterministic multi-threaded stress test of the malloc family, after
 * mimalloc's test-stress.c: deterministic randomness, threads re-created
 * every round, objects migrating between threads.
 *
 * THREADS threads run for ROUNDS rounds; each round starts fresh threads (so
 * the mcaches of the last round's threads have been flushed on their exit and
 * are reused). Each thread has its own xorshift generator seeded from (round,
 * thread), and does random operations on its own table of live blocks:
 * allocate (malloc or calloc) a random size, mostly small, sometimes 32 KiB to
 * 1 MiB; free; realloc; or trade a block with the shared exchange array, so
 * that the block is later freed (or realloc'd) by a thread other than the one
 * that allocated it. Blocks left in the exchange at the end of a round are
 * freed by the next round's threads, after their allocating thread exited.
 *
 * Every block carries a pattern derived from its id and size, recorded in a
 * shadow record; every byte is verified before the block is freed or
 * realloc'd, and realloc must keep the common prefix. At the end everything
 * is freed and MemStats' heap_objects and heap_alloc are back where they were.
 * GORT_TEST_SCALE multiplies the rounds. */
#include "test.h"

#include "gort/malloc.h"
#include "gort/memstats.h"

#include <pthread.h>

enum {
    THREADS = 6,
    LIVE = 1000,     /* live blocks per thread */
    EXCHANGE = 1024, /* shared slots */
    OPS = 40000,     /* operations per thread per round */
};

/* The shadow record of a block; it travels with the block. */
struct rec {
    uint8_t *p;
    size_t size;
    uint64_t id;
};

static struct rec *exchange[EXCHANGE]; /* swapped atomically */
static uint64_t next_id;               /* atomic */
static uint64_t nops[THREADS];

static inline uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static inline uint64_t word(uint64_t id, size_t size, size_t w) {
    return (id * 0x9e3779b97f4a7c15ull) ^ (size << 40) ^ ((w + 1) * 0xbf58476d1ce4e5b9ull);
}

static void fill(struct rec *r, size_t from) {
    size_t nw = r->size / 8;
    for (size_t w = from / 8; w < nw; w++) {
        uint64_t v = word(r->id, r->size, w);
        memcpy(r->p + w * 8, &v, 8);
    }
    uint64_t v = word(r->id, r->size, nw);
    memcpy(r->p + nw * 8, &v, r->size % 8);
}

/* Checks the first n bytes against the pattern of (id, size). */
static void verify_prefix(const uint8_t *p, uint64_t id, size_t size, size_t n) {
    size_t nw = n / 8;
    for (size_t w = 0; w <= nw; w++) {
        size_t k = w < nw ? 8 : n % 8;
        uint64_t v = word(id, size, w), got = 0;
        memcpy(&got, p + w * 8, k);
        if (k < 8) v &= ((uint64_t)1 << (k * 8)) - 1;
        if (got != v) {
            fprintf(stderr, "block %p (id %llu, %zu bytes) corrupt at byte %zu\n", (void *)p,
                    (unsigned long long)id, size, w * 8);
            CHECK(0);
        }
    }
}

static void verify(const struct rec *r) {
    verify_prefix(r->p, r->id, r->size, r->size);
    CHECK(gort_usable_size(r->p) >= r->size);
}

static size_t random_size(uint64_t x) {
    unsigned r = (unsigned)(x % 1000);
    x >>= 10;
    if (r < 700) return x % 129;              /* tiny and small: 0..128 */
    if (r < 900) return 129 + x % 1920;       /* up to 2 KiB */
    if (r < 980) return 2049 + x % 30720;     /* up to 32 KiB */
    if (r < 997) return 32769 + x % 229376;   /* large, within the large cache */
    return 262145 + x % ((1 << 20) - 262144); /* large, up to 1 MiB */
}

static struct rec *new_block(uint64_t x) {
    struct rec *r = gort_malloc(sizeof *r); /* the records churn the heap too */
    CHECK(r != NULL);
    r->size = random_size(x);
    r->id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
    if ((x >> 50) % 4 == 0) {
        r->p = gort_calloc(1, r->size);
        CHECK(r->p != NULL);
        for (size_t i = 0; i < r->size; i++) CHECK(r->p[i] == 0);
    } else {
        r->p = gort_malloc(r->size);
        CHECK(r->p != NULL);
    }
    fill(r, 0);
    return r;
}

static void free_block(struct rec *r) {
    verify(r);
    gort_free(r->p);
    gort_free(r);
}

static void realloc_block(struct rec *r, uint64_t x) {
    verify(r);
    size_t old = r->size, n = random_size(x);
    if (n == 0) n = 1; /* realloc(p, 0) frees: not this operation */
    uint8_t *q = gort_realloc(r->p, n);
    CHECK(q != NULL);
    size_t keep = old < n ? old : n;
    verify_prefix(q, r->id, old, keep);
    r->p = q;
    r->size = n;
    fill(r, 0);
}

struct targ {
    int round, index;
};

static void *stress_thread(void *arg) {
    struct targ *t = arg;
    uint64_t s = 0x853c49e6748fea9bull ^ ((uint64_t)t->round << 32 | (uint64_t)(t->index + 1));
    for (int i = 0; i < 16; i++) xorshift(&s);
    struct rec *live[LIVE] = {0};
    for (int op = 0; op < OPS; op++) {
        uint64_t x = xorshift(&s);
        int i = (int)(x % LIVE);
        unsigned what = (unsigned)((x >> 16) % 100);
        x = xorshift(&s);
        if (what < 45) { /* allocate, replacing whatever the slot holds */
            if (live[i]) free_block(live[i]);
            live[i] = new_block(x);
        } else if (what < 65) { /* free */
            if (live[i]) free_block(live[i]);
            live[i] = NULL;
        } else if (what < 85) { /* trade with another thread */
            int j = (int)(x % EXCHANGE);
            struct rec *got = __atomic_exchange_n(&exchange[j], live[i], __ATOMIC_ACQ_REL);
            if (got) verify(got);
            live[i] = got;
        } else if (live[i]) { /* realloc, perhaps a block from another thread */
            realloc_block(live[i], x);
        }
    }
    for (int i = 0; i < LIVE; i++)
        if (live[i]) free_block(live[i]);
    nops[t->index] += OPS;
    return NULL;
}

static uint64_t heap_objects(gort_memstats *ms) {
    gort_read_memstats(ms);
    return ms->heap_objects;
}

int main(void) {
    gort_memstats ms0, ms;
    uint64_t objs0 = heap_objects(&ms0);
    int rounds = 8 * (int)test_scale();
    int64_t t0 = test_now_ns();
    for (int round = 0; round < rounds; round++) {
        pthread_t th[THREADS];
        struct targ args[THREADS];
        for (int i = 0; i < THREADS; i++) {
            args[i] = (struct targ){round, i};
            CHECK(pthread_create(&th[i], NULL, stress_thread, &args[i]) == 0);
        }
        for (int i = 0; i < THREADS; i++) CHECK(pthread_join(th[i], NULL) == 0);
        /* What is live now: the exchange's blocks and their records. */
        uint64_t in_exchange = 0;
        for (int j = 0; j < EXCHANGE; j++) in_exchange += exchange[j] != NULL;
        CHECK_EQ(heap_objects(&ms), objs0 + 2 * in_exchange);
        CHECK_EQ(ms.heap_objects, ms.mallocs - ms.frees);
    }
    /* Free what is left in the exchange from main, a thread that allocated
     * none of it. */
    for (int j = 0; j < EXCHANGE; j++)
        if (exchange[j]) free_block(exchange[j]);
    CHECK_EQ(heap_objects(&ms), objs0);
    CHECK_EQ(ms.heap_alloc, ms0.heap_alloc);
    CHECK(ms.mallocs - ms0.mallocs > (uint64_t)rounds * THREADS * OPS / 2);
    /* No span was lost: once everything is free and the caches are given
     * back, the heap holds (almost) no pages in use. */
    gort_free_os_memory();
    gort_read_memstats(&ms);
    if (ms.heap_inuse > ms0.heap_inuse + (4 << 20)) {
        fprintf(stderr, "heap_inuse %llu after freeing everything (%llu at the start)\n",
                (unsigned long long)ms.heap_inuse, (unsigned long long)ms0.heap_inuse);
        CHECK(0);
    }
    uint64_t total = 0;
    for (int i = 0; i < THREADS; i++) total += nops[i];
    fprintf(stderr, "%d rounds x %d threads: %llu operations, %llu mallocs in %.2f s\n", rounds,
            THREADS, (unsigned long long)total, (unsigned long long)(ms.mallocs - ms0.mallocs),
            (double)(test_now_ns() - t0) / 1e9);
    fprintf(stderr, "ok\n");
    return test_result();
}
