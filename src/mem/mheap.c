/* mheap: spans on top of the page allocator. See mheap.h.
 *
 * Locking: the page allocator has its own lock; mheap_lock guards only the
 * pool of span records. Neither is held while the other is taken, except in
 * the fork handlers, which take all allocator locks in one fixed order:
 * mcentral locks, mheap_lock, pagealloc_lock. */
#include "mem/mheap.h"
#include "base/atomic.h"
#include "base/env.h"
#include "base/fatal.h"
#include "mem/fixalloc.h"
#include "mem/mcache.h"
#include "mem/malloc.h"
#include "mem/mcentral.h"
#include "mem/mpagealloc.h"
#include "mem/scavenge.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct mheap_stats mheap_stats;
lock_t mheap_lock = LOCK_INIT;
/* Span records come in sizes of 3 to SPAN_REC_LINES (6) cache lines, one
 * pool each: a record carries its span's bitmaps (mspan.bits), as long as
 * its object count needs. A 16-byte class span (512 objects) has a 256-byte
 * record, one of 64 objects or fewer (classes from 128 bytes, large spans,
 * explicit spans) 192 bytes, the 8-byte class (1,024) 384; with bitmaps for
 * 1,024 objects in every record, each was 448 (binarytrees: 13 of its 250
 * MiB). */
#define SPAN_REC_LINES SPAN_REC_LINES_FOR(2 * SPAN_BITMAP_WORDS_MAX)
static fixalloc span_pools[SPAN_REC_LINES + 1];
_Static_assert(PAGEALLOC_MAX_PAGES <= UINT32_MAX, "mspan.npages holds any span");
static int init_state;       /* 0 no, 1 in progress, 2 done */
static uint64_t link_secret; /* per process: mixed into every span's key */

static uint64_t mix64(uint64_t z) { /* splitmix64's finalizer */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* An explicit span's free-list mask (mspan.h): 56 bits unpredictable
 * without reading freed memory, different for each span and each tenure of
 * its pages, under LINK_TOP (bit 63 set: no canonical address, a pointer a
 * program stores, decodes as a link). */
static uintptr_t span_key(uintptr_t base, uint64_t tenure) {
    uint64_t k = mix64(link_secret ^ base ^ (tenure << 40));
    return (uintptr_t)((k & 0x00ffffffffffffffULL) | (uint64_t)LINK_TOP << 56);
}

int mheap_init(void) {
    if (likely(atomic_load_acq(&init_state) == 2)) return 0;
    int z = 0;
    if (!atomic_cas(&init_state, &z, 1)) {
        while (atomic_load_acq(&init_state) != 2) cpu_relax();
        return 0;
    }
    env_init();
    atomic_store_relaxed(&mem_limit, opts.memlimit);
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec * 1000000007u ^ (uint64_t)ts.tv_sec ^ (uintptr_t)&seed;
    }
    link_secret = mix64(seed);
    for (size_t i = 1; i <= SPAN_REC_LINES; i++)
        fixalloc_init(&span_pools[i], i * 64, &mheap_stats.mspan_sys);
    int rc = arena_init();
    atomic_store_rel(&init_state, 2);
    return rc;
}

mspan *mheap_alloc_span(size_t npages, uint8_t sizeclass, uint8_t kind, bool noscan,
                        size_t slot_words) {
    /* Explicit small spans use no bitmap (mspan.h); they get the one pair
     * every record has. */
    size_t nelems =
        sizeclass && kind == SPAN_GC ? npages * PAGE_SIZE / class_to_size[sizeclass] : 1;
    size_t lines = SPAN_REC_LINES_FOR(span_bits_words(nelems, slot_words));
    if (lines > SPAN_REC_LINES) throw("mheap: a span record over the largest pool");
    size_t released;
    bool needzero;
    uintptr_t base = pagealloc_alloc(npages, &released, &needzero);
    if (!base) return NULL;
    lock(&mheap_lock);
    mspan *s = fixalloc_alloc(&span_pools[lines]);
    if (s) mheap_stats.spans_inuse += lines * 64;
    unlock(&mheap_lock);
    if (!s) {
        pagealloc_free(base, npages);
        return NULL;
    }
    s->base = base;
    s->npages = (uint32_t)npages;
    s->sizeclass = sizeclass;
    s->kind = kind;
    s->noscan = noscan;
    s->needzero = needzero;
    s->limit_off = 0;
    s->profrecs = NULL;
    s->reused = 0;
    s->state = SPAN_IN_USE;
    s->recsize = (uint8_t)lines;
    if (sizeclass) {
        s->elemsize = class_to_size[sizeclass];
        s->nelems = (uint16_t)(npages * PAGE_SIZE / s->elemsize);
        s->divmagic = class_to_divmagic[sizeclass];
        s->small_malloc = kind == SPAN_MALLOC;
        s->key = span_key(base, atomic_load_relaxed(&mheap_stats.epoch));
    } else {
        s->elemsize = npages * PAGE_SIZE > UINT32_MAX ? 0 : (uint32_t)(npages * PAGE_SIZE);
        s->nelems = 1;
        s->divmagic = 0; /* every offset maps to object 0 */
    }
    atomic_xadd(&mheap_stats.epoch, 1);
    arena_set_spans(base, npages, s);
    if (released) scavenge_alloc_assist(released); /* the process grew: the memory limit */
    return s;
}

void mheap_free_span(mspan *s) {
    uintptr_t base = s->base;
    size_t npages = s->npages;
    arena_set_spans(base, npages, NULL);
    atomic_xadd(&mheap_stats.epoch, 1);
    s->state = SPAN_DEAD;
    s->small_malloc = 0;
    pagealloc_free(base, npages);
    lock(&mheap_lock);
    size_t lines = s->recsize;
    fixalloc_free(&span_pools[lines], s);
    mheap_stats.spans_inuse -= lines * 64;
    unlock(&mheap_lock);
    scavenge_note_free(npages);
}

void mheap_trim_span_front(mspan *s, size_t npages) {
    if (!npages) return;
    uintptr_t base = s->base;
    arena_set_spans(base, npages, NULL);
    s->base += npages * PAGE_SIZE;
    s->npages -= npages;
    s->elemsize = s->npages * PAGE_SIZE > UINT32_MAX ? 0 : (uint32_t)(s->npages * PAGE_SIZE);
    pagealloc_free(base, npages);
}

void mheap_trim_span_back(mspan *s, size_t npages) {
    if (!npages) return;
    s->npages -= npages;
    uintptr_t tail = s->base + s->npages * PAGE_SIZE;
    arena_set_spans(tail, npages, NULL);
    s->elemsize = s->npages * PAGE_SIZE > UINT32_MAX ? 0 : (uint32_t)(s->npages * PAGE_SIZE);
    pagealloc_free(tail, npages);
}

/* Every allocator lock, in the order normal code nests them (docs/HACKING.md):
 * the scavenging step, the centrals, mheap, the page allocator, the arenas,
 * then the leaves (the mcache pool, persistent memory). */
static int fork_lock_depth; /* the forking thread's lock_depth before prepare */

void mheap_atfork_prepare(void) {
    fork_lock_depth = lock_depth;
    scavenge_atfork_prepare();
    mcentral_lock_all();
    lock(&mheap_lock);
    pagealloc_atfork_prepare();
    arena_atfork_prepare();
    mcache_atfork_prepare();
    malloc_direct_atfork_prepare();
    persistent_atfork_prepare();
}

void mheap_atfork_parent(void) {
    persistent_atfork_parent();
    malloc_direct_atfork_parent();
    mcache_atfork_parent();
    arena_atfork_parent();
    pagealloc_atfork_parent();
    unlock(&mheap_lock);
    mcentral_unlock_all();
    scavenge_atfork_parent();
}

void mheap_atfork_child(void) {
    persistent_atfork_child();
    malloc_direct_atfork_child();
    mcache_atfork_child();
    arena_atfork_child();
    pagealloc_atfork_child();
    mheap_lock = (lock_t)LOCK_INIT;
    mcentral_reinit_locks();
    scavenge_atfork_child();
    lock_depth = fork_lock_depth; /* the locks were reset, not unlocked */
}

/* At load time, outside any allocation: pthread_atfork may itself allocate. */
__attribute__((constructor)) static void mheap_constructor(void) {
    mheap_init();
    pthread_atfork(mheap_atfork_prepare, mheap_atfork_parent, mheap_atfork_child);
}
