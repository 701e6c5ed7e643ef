/* mheap: spans on top of the page allocator, and the heap's counters (Go's
 * mheap.go). The page allocator (mpagealloc.c) owns free pages; mheap turns
 * runs of pages into spans, records them in the arena index, and counts. */
#ifndef GORT_MEM_MHEAP_H
#define GORT_MEM_MHEAP_H

#include "base/lock.h"
#include "mem/mspan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define memstats_gc_hook      gort__memstats_gc_hook
#define mheap_alloc_span      gort__mheap_alloc_span
#define mheap_atfork_child    gort__mheap_atfork_child
#define mheap_atfork_parent   gort__mheap_atfork_parent
#define mheap_atfork_prepare  gort__mheap_atfork_prepare
#define mheap_free_span       gort__mheap_free_span
#define mheap_init            gort__mheap_init
#define mheap_lock            gort__mheap_lock
#define mheap_stats           gort__mheap_stats
#define mheap_trim_span_back  gort__mheap_trim_span_back
#define mheap_trim_span_front gort__mheap_trim_span_front

struct mheap_stats {
    uint64_t mspan_sys;   /* bytes mapped for span records */
    uint64_t mcache_sys;  /* bytes mapped for mcaches */
    uint64_t other_sys;   /* other runtime metadata */
    uint64_t gc_sys;      /* arena records and index (Go counts these as GC metadata) */
    uint64_t spans_inuse; /* bytes of span records in use */
    uint64_t epoch;       /* changes whenever a span is created or freed (memstats seqlock) */
    /* Remote frees of explicit objects taken over by their spans' owners
     * (span_collect_tfree, span_drop_free), by class: the frees still
     * pending in tfree stacks and batches are the remote frees counted
     * minus these. */
    uint64_t tfree_collected[NUM_SIZE_CLASSES];
};
extern struct mheap_stats mheap_stats;
extern lock_t mheap_lock; /* guards the span fixalloc */

/* Installed by the GC layer: adds the collector's figures to MemStats
 * (gort_read_memstats calls it last). */
struct gort_memstats;
extern void (*memstats_gc_hook)(struct gort_memstats *ms);

/* Makes the heap usable; idempotent and thread-safe. Returns 0 or -ENOMEM. */
int mheap_init(void);

/* A new span of npages pages for objects of sizeclass (0: one large object),
 * of the given kind, recorded in the arena index; NULL when out of memory.
 * Its record, zeroed, has bitmaps for its objects and slot_words more
 * words (span_slottype). */
mspan *mheap_alloc_span(size_t npages, uint8_t sizeclass, uint8_t kind, bool noscan,
                        size_t slot_words);
/* Returns s's pages to the page allocator and s's record to the pool. */
void mheap_free_span(mspan *s);
/* Gives back the first npages pages of large span s (posix_memalign trimming). */
void mheap_trim_span_front(mspan *s, size_t npages);
void mheap_trim_span_back(mspan *s, size_t npages);

/* fork handlers: every allocator lock, in a fixed order. */
void mheap_atfork_prepare(void);
void mheap_atfork_parent(void);
void mheap_atfork_child(void);

#endif
