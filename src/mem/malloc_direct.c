/* Explicit objects with huge alignments, outside the heap.
 *
 * gort_posix_memalign serves an alignment up to ARENA_BYTES (64 MiB) from the
 * heap: it takes size + alignment pages and gives back both ends. Beyond
 * that the heap would grow by the alignment, address space and per-arena
 * metadata for all of it, for good (a 1 TiB alignment for 16 bytes
 * committed 2.1 GB that was never given back). Such an object gets a
 * mapping of its own instead: size + alignment of address space, mapped
 * MAP_NORESERVE (nothing committed until touched), trimmed at once to the
 * aligned pages, and unmapped by gort_free. So it costs the pages it uses.
 *
 * The heap's span lookup knows nothing of these mappings; free, realloc and
 * usable_size ask this file about a pointer outside the heap before they
 * call it a bad pointer. The records sit in a small hash table under
 * direct_lock (a leaf: only the persistent allocator is taken inside it).
 * Their bytes count in MemStats.other_sys while they live. */
#include "mem/malloc.h"

#include "base/atomic.h"
#include "base/lock.h"
#include "base/os.h"
#include "mem/arena.h"
#include "mem/fixalloc.h"
#include "mem/mheap.h"

struct direct {
    uintptr_t base;
    size_t len;
    struct direct *next;
};

#define DIRECT_BUCKETS 256

static lock_t direct_lock = LOCK_INIT;
static struct direct *buckets[DIRECT_BUCKETS];
static fixalloc pool;
static bool pool_ready;

static inline struct direct **bucket(uintptr_t p) {
    return &buckets[(p >> 26) % DIRECT_BUCKETS]; /* aligned to > 64 MiB: the bits above */
}

void *malloc_direct(size_t n, size_t align) {
    size_t page = os_page_size();
    size_t len = n ? (n + page - 1) & ~(page - 1) : page;
    if (len < n || len + align < len || len > ((size_t)1 << HEAP_ADDR_BITS)) return NULL;
    void *p;
    if (os_map(&p, NULL, len + align, false) < 0) return NULL;
    uintptr_t raw = (uintptr_t)p, a = (raw + align - 1) & ~(uintptr_t)(align - 1);
    if (a > raw) os_unmap(p, a - raw);
    if (raw + align > a) os_unmap((void *)(a + len), raw + align - a);
    lock(&direct_lock);
    if (!pool_ready) {
        fixalloc_init(&pool, sizeof(struct direct), &mheap_stats.other_sys);
        pool_ready = true;
    }
    struct direct *d = fixalloc_alloc(&pool);
    if (d) {
        d->base = a;
        d->len = len;
        d->next = *bucket(a);
        *bucket(a) = d;
    }
    unlock(&direct_lock);
    if (!d) {
        os_unmap((void *)a, len);
        return NULL;
    }
    atomic_xadd(&mheap_stats.other_sys, (uint64_t)len);
    return (void *)a;
}

size_t malloc_direct_size(uintptr_t p) {
    size_t len = 0;
    lock(&direct_lock);
    for (struct direct *d = *bucket(p); d; d = d->next)
        if (d->base == p) {
            len = d->len;
            break;
        }
    unlock(&direct_lock);
    return len;
}

bool malloc_direct_free(uintptr_t p) {
    struct direct *found = NULL;
    lock(&direct_lock);
    for (struct direct **dp = bucket(p); *dp; dp = &(*dp)->next)
        if ((*dp)->base == p) {
            found = *dp;
            *dp = found->next;
            break;
        }
    size_t len = found ? found->len : 0;
    if (found) fixalloc_free(&pool, found);
    unlock(&direct_lock);
    if (!found) return false;
    os_unmap((void *)p, len);
    atomic_xadd(&mheap_stats.other_sys, (uint64_t)0 - len);
    return true;
}

void malloc_direct_atfork_prepare(void) {
    lock(&direct_lock);
}

void malloc_direct_atfork_parent(void) {
    unlock(&direct_lock);
}

void malloc_direct_atfork_child(void) {
    direct_lock = (lock_t)LOCK_INIT;
}
