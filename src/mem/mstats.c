/* MemStats (Go's mstats.go).
 *
 * Counters live where they are cheap to bump: per mcache (mallocs by size
 * class, remote frees, large objects), in the page allocator (pages mapped,
 * free, released) and in mheap (metadata, remote frees taken over). Local
 * frees of small objects are not counted at all (a counter indexed by the
 * span's class costs free 0.3 ns, see malloc.c): they are derived. Every
 * small object ever allocated is still live in its span (explicit spans'
 * allocated, GC spans' alloccount), or was freed by its owner, or was freed
 * remotely; live counts remote frees until the owner takes them over. So
 * frees = mallocs - live + (remote frees - remote frees taken over), with
 * live summed over every span of every arena. gort_read_memstats reads
 * without stopping anybody: mallocs before the spans (so frees never count
 * an object allocated mid-read), and the whole read repeated while the
 * heap's span epoch changes (so that no span was freed or created
 * mid-read). */
#include "base/atomic.h"
#include "gort/memstats.h"
#include "mem/arena.h"
#include "mem/mcache.h"
#include "mem/mheap.h"
#include "mem/mpagealloc.h"

#include <string.h>

void (*memstats_gc_hook)(gort_memstats *ms);

static uint64_t frees_seen[NUM_SIZE_CLASSES]; /* the highest derived so far, by class */

/* Adds the live small objects of every in-use span, by class. Racy reads
 * (the owners update these fields without atomics); the caller's epoch
 * check discards a walk during which spans came or went. */
static void count_live(uint64_t live[NUM_SIZE_CLASSES]) {
    for (struct heap_arena *ha = atomic_load_acq(&arena_list); ha; ha = ha->next) {
        for (size_t i = 0; i < PAGES_PER_ARENA; i++) {
            mspan *s = atomic_load_acq(&ha->spans[i]);
            if (!s || s->base != ha->base + i * PAGE_SIZE)
                continue; /* free, or not its first page */
            unsigned sc = atomic_load_relaxed(&s->sizeclass);
            if (atomic_load_relaxed(&s->state) != SPAN_IN_USE || sc == 0 || sc >= NUM_SIZE_CLASSES)
                continue;
            live[sc] += atomic_load_relaxed(&s->kind) == SPAN_MALLOC
                            ? atomic_load_relaxed(&s->allocated)
                            : atomic_load_relaxed(&s->alloccount);
            /* No skipping by s->npages: s may be freed and reused under us. */
        }
    }
}

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
        /* Order: mallocs, remote frees, the spans, remote frees taken over.
         * Each step can only see more than the steps before it, and every
         * such skew makes frees come out low, never high, so that frees
         * never go back from one read to the next. That holds only if the
         * writers store in the same order as this reads: an allocation
         * counts in its span before its mcache's mallocs
         * (mcache_count_malloc), and remote frees taken over count in
         * tfree_collected before they leave the span's allocated
         * (span_collect_tfree). */
        atomic_fence();
        uint64_t collected[NUM_SIZE_CLASSES], remote[NUM_SIZE_CLASSES] = {0};
        for (mcache *c = mcache_all(); c; c = c->next_all)
            for (int i = 0; i < NUM_SIZE_CLASSES; i++) remote[i] += atomic_load_acq(&c->nfree[i]);
        atomic_fence();
        uint64_t live[NUM_SIZE_CLASSES] = {0};
        count_live(live);
        atomic_fence();
        for (int i = 0; i < NUM_SIZE_CLASSES; i++)
            collected[i] = atomic_load_acq(&mheap_stats.tfree_collected[i]);
        for (int i = 0; i < NUM_SIZE_CLASSES; i++) {
            uint64_t pending = remote[i] > collected[i] ? remote[i] - collected[i] : 0;
            uint64_t l = live[i] > pending ? live[i] - pending : 0;
            nfree[i] = nmalloc[i] > l ? nmalloc[i] - l : 0;
        }
        pagealloc_read_stats(&st);
        atomic_fence();
        bool stable = atomic_load_acq(&mheap_stats.epoch) == e1;
        /* Every skew above errs low, so the true count is at least the
         * highest ever derived: never report less (exact when quiet). Only
         * a walk during which no span came or went may raise that floor: in
         * another, a span record freed and reused under the walk may have
         * been read half old, half new (its objects counted in the wrong
         * class), and a floor set too high is never taken back. A reading
         * that gives up reports the floor. */
        for (int i = 0; i < NUM_SIZE_CLASSES; i++) { /* an atomic max: no lock (fork) */
            uint64_t seen = atomic_load_acq(&frees_seen[i]);
            while (stable && nfree[i] > seen && !atomic_cas(&frees_seen[i], &seen, nfree[i])) {
            }
            /* seen <= an earlier mallocs <= nmalloc[i] */
            if (nfree[i] < seen || !stable) nfree[i] = seen;
        }
        if (stable || attempt >= 100) break;
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
    ms->heap_alloc = ms->alloc = heap_alloc; /* bounded by heap_inuse at the end */
    ms->total_alloc = total_alloc;
    ms->mallocs = mallocs;
    ms->frees = frees;
    ms->heap_objects = mallocs - frees;

    ms->mspan_sys = atomic_load_relaxed(&mheap_stats.mspan_sys);
    ms->mspan_inuse = atomic_load_relaxed(&mheap_stats.spans_inuse);
    if (ms->mspan_inuse > ms->mspan_sys) ms->mspan_sys = ms->mspan_inuse;
    ms->mcache_sys = atomic_load_relaxed(&mheap_stats.mcache_sys);
    ms->mcache_inuse = ms->mcache_sys;
    ms->gc_sys = atomic_load_relaxed(&mheap_stats.gc_sys) + st.meta_bytes +
                 atomic_load_relaxed(&arena_meta_bytes);
    ms->other_sys = atomic_load_relaxed(&mheap_stats.other_sys);
    ms->sys = ms->heap_sys + ms->stack_sys + ms->mspan_sys + ms->mcache_sys + ms->buck_hash_sys +
              ms->gc_sys + ms->other_sys;
    ms->enable_gc = true;
    void (*gc)(gort_memstats *) = memstats_gc_hook;
    if (gc) gc(ms);
    /* Only now, after the collector's hook has taken off the large objects
     * its sweeper freed (they are in no mcache's large_free_bytes): bounded
     * before, a heap whose GC had freed more large bytes than are in use
     * read 0 (memstats_large in tests/test_gc.c: a live 1 MiB array after
     * 12 MiB of large garbage). Past heap_inuse cannot happen; never lie. */
    if (ms->heap_alloc > ms->heap_inuse) ms->heap_alloc = ms->alloc = ms->heap_inuse;
}
