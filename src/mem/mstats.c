/* MemStats (Go's mstats.go).
 *
 * Counters live where they are cheap to bump: per mcache (mallocs and frees
 * by size class, large objects), in the page allocator (pages mapped, free,
 * released) and in mheap (metadata). gort_read_memstats sums them without
 * stopping anybody, and keeps Go's invariants by reading in a careful order:
 * frees before mallocs (every counted free has its malloc counted), and the
 * whole read repeated while the heap's span epoch changes (so that no span
 * holding counted objects was freed or created mid-read). */
#include "base/atomic.h"
#include "gort/memstats.h"
#include "mem/arena.h"
#include "mem/mcache.h"
#include "mem/mheap.h"
#include "mem/mpagealloc.h"

#include <string.h>

GORT_API void gort_read_memstats(gort_memstats *ms) {
    memset(ms, 0, sizeof *ms);
    mheap_init();
    uint64_t nfree[NUM_SIZE_CLASSES], nmalloc[NUM_SIZE_CLASSES];
    uint64_t lfree, lmalloc, lfree_bytes, lmalloc_bytes, tiny;
    struct pagealloc_stats st;
    for (int attempt = 0;; attempt++) {
        uint64_t e1 = atomic_load_acq(&mheap_stats.epoch);
        memset(nfree, 0, sizeof nfree);
        memset(nmalloc, 0, sizeof nmalloc);
        lfree = lmalloc = lfree_bytes = lmalloc_bytes = tiny = 0;
        for (mcache *c = mcache_all(); c; c = c->next_all) {
            for (int i = 0; i < NUM_SIZE_CLASSES; i++) nfree[i] += atomic_load_acq(&c->nfree[i]);
            lfree += atomic_load_acq(&c->large_nfree);
            lfree_bytes += atomic_load_acq(&c->large_free_bytes);
        }
        atomic_fence();
        for (mcache *c = mcache_all(); c; c = c->next_all) {
            for (int i = 0; i < NUM_SIZE_CLASSES; i++)
                nmalloc[i] += atomic_load_acq(&c->nmalloc[i]);
            lmalloc += atomic_load_acq(&c->large_nmalloc);
            lmalloc_bytes += atomic_load_acq(&c->large_alloc_bytes);
            tiny += atomic_load_acq(&c->tiny_allocs);
        }
        pagealloc_read_stats(&st);
        atomic_fence();
        if (atomic_load_acq(&mheap_stats.epoch) == e1 || attempt >= 100) break;
    }

    uint64_t heap_alloc = 0, mallocs = tiny + lmalloc, frees = lfree;
    uint64_t total_alloc = lmalloc_bytes;
    for (int i = 1; i < NUM_SIZE_CLASSES; i++) {
        uint64_t m = nmalloc[i], f = nfree[i] > nmalloc[i] ? nmalloc[i] : nfree[i];
        heap_alloc += (m - f) * class_to_size[i];
        total_alloc += m * class_to_size[i];
        mallocs += m;
        frees += f;
        if (i < 61) {
            ms->by_size[i].mallocs = m;
            ms->by_size[i].frees = f;
        }
    }
    for (int i = 0; i < 61; i++) ms->by_size[i].size = class_to_size[i];
    /* Tiny objects are counted as mallocs and freed with their block (as Go). */
    frees += tiny;
    heap_alloc += lmalloc_bytes - (lfree_bytes > lmalloc_bytes ? lmalloc_bytes : lfree_bytes);

    ms->heap_sys = st.mapped_pages * PAGE_SIZE;
    ms->heap_idle = st.free_pages * PAGE_SIZE;
    ms->heap_inuse = ms->heap_sys - ms->heap_idle;
    ms->heap_released = st.released_pages * PAGE_SIZE;
    if (heap_alloc > ms->heap_inuse) heap_alloc = ms->heap_inuse; /* cannot happen; never lie */
    ms->heap_alloc = ms->alloc = heap_alloc;
    ms->total_alloc = total_alloc;
    ms->mallocs = mallocs;
    ms->frees = frees;
    ms->heap_objects = mallocs - frees;

    ms->mspan_sys = atomic_load_relaxed(&mheap_stats.mspan_sys);
    ms->mspan_inuse = atomic_load_relaxed(&mheap_stats.spans_inuse) * sizeof(mspan);
    if (ms->mspan_inuse > ms->mspan_sys) ms->mspan_sys = ms->mspan_inuse;
    ms->mcache_sys = atomic_load_relaxed(&mheap_stats.mcache_sys);
    ms->mcache_inuse = ms->mcache_sys;
    ms->gc_sys = atomic_load_relaxed(&mheap_stats.gc_sys) + st.meta_bytes +
                 atomic_load_relaxed(&arena_meta_bytes);
    ms->other_sys = atomic_load_relaxed(&mheap_stats.other_sys);
    ms->sys = ms->heap_sys + ms->stack_sys + ms->mspan_sys + ms->mcache_sys + ms->buck_hash_sys +
              ms->gc_sys + ms->other_sys;
    ms->enable_gc = true;
}
