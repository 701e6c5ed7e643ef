/* The page allocator: runs of free 8 KiB pages in the arenas (Go's
 * mpagealloc.go role). It knows nothing about spans: mheap.c turns the pages
 * it hands out into spans.
 *
 * Contract:
 * - Thread-safe: every function takes pagealloc_lock itself (callers must not
 *   hold it). The lock is exposed for fork handlers only.
 * - Cost does not grow with the size of the heap: allocating and freeing take
 *   time bounded independently of how much address space is under management
 *   (bench/pagealloc_bench.c shows 1 GiB against 32 GiB).
 * - Lowest addresses are preferred among equally good fits, so the heap stays
 *   compact and the scavenger's high-address releases stick.
 * - Free runs are coalesced with their free neighbours.
 * - Each free page is either dirty (may hold old data, costs RSS) or released
 *   (returned to the OS with os_decommit; reads as zero). Released pages are
 *   counted exactly.
 * - When no free run fits, the allocator grows the heap by whole arenas with
 *   arena_grow() (which reserves address space; the kernel commits on touch).
 */
#ifndef GORT_MEM_MPAGEALLOC_H
#define GORT_MEM_MPAGEALLOC_H

#include "base/lock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define pagealloc_alloc          gort__pagealloc_alloc
#define pagealloc_atfork_child   gort__pagealloc_atfork_child
#define pagealloc_atfork_parent  gort__pagealloc_atfork_parent
#define pagealloc_atfork_prepare gort__pagealloc_atfork_prepare
#define pagealloc_free           gort__pagealloc_free
#define pagealloc_lock           gort__pagealloc_lock
#define pagealloc_read_stats     gort__pagealloc_read_stats
#define pagealloc_reset_peak     gort__pagealloc_reset_peak
#define pagealloc_scavenge       gort__pagealloc_scavenge
#define pagealloc_verify         gort__pagealloc_verify

extern lock_t pagealloc_lock;

struct pagealloc_stats {
    uint64_t mapped_pages;   /* pages in all arenas (HeapSys / PAGE_SIZE) */
    uint64_t free_pages;     /* free pages, dirty or released (HeapIdle) */
    uint64_t released_pages; /* free pages returned to the OS (HeapReleased) */
    uint64_t meta_bytes;     /* bytes of metadata the allocator uses (counted in GCSys/OtherSys) */
    /* The most pages in use (mapped - free) since pagealloc_reset_peak. */
    uint64_t peak_inuse_pages;
};

/* The largest request, in pages: 1 TiB. Reserving address space is nearly
 * free under MAP_NORESERVE, so the kernel would let an absurd request through;
 * its metadata would not be (a few KiB of RSS per 64 MiB arena). Larger
 * requests fail at once, as malloc(huge) should. */
#define PAGEALLOC_MAX_PAGES (((uintptr_t)1 << 40) >> 13)

/* Allocates npages (>= 1) contiguous pages and returns the base address, or 0
 * when out of memory (address space, or the OS refused metadata memory).
 * *released is set to how many of the pages had been released to the OS (they
 * are now in use again); *needzero to whether any of them may hold old data
 * (false when all were released or never used: the OS gives zeroed pages). */
uintptr_t pagealloc_alloc(size_t npages, size_t *released, bool *needzero);

/* Returns npages pages at base (exactly as allocated, or any sub-range of an
 * allocation) to the free set as dirty pages. */
void pagealloc_free(uintptr_t base, size_t npages);

/* Releases up to max_pages free dirty pages to the OS with os_decommit,
 * highest addresses first, and returns how many were released. The lock is not
 * held across the madvise calls: the pages being released are taken out of
 * the free set meanwhile, then put back as released. */
size_t pagealloc_scavenge(size_t max_pages);

void pagealloc_read_stats(struct pagealloc_stats *st);
/* Starts a new peak of pages in use from the current count (the scavenger's
 * period); returns the stats as they were, the old peak included. */
void pagealloc_reset_peak(struct pagealloc_stats *st);

/* Fork handlers (pthread_atfork order): prepare takes pagealloc_lock so that
 * no thread is inside the allocator at fork; the parent releases it; the child,
 * where the holder may not exist, re-initialises it unlocked. */
void pagealloc_atfork_prepare(void);
void pagealloc_atfork_parent(void);
void pagealloc_atfork_child(void);

/* Checks every invariant of the free set (runs, coalescing, endpoint maps,
 * released bitmaps, per-arena and global counts) and throws on the first that
 * is broken. Walks all metadata: for tests and GORT_DEBUG >= 2 only. */
void pagealloc_verify(void);

#endif
