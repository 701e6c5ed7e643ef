/* Heap-profile sampling in the allocator (Go's nextSample and the profile
 * records of mprof.go), on the slow paths only.
 *
 * Go decrements mcache.nextSample by the size of every allocation. Here the
 * fast paths stay as they are: each mcache keeps a countdown, next_sample
 * (bytes to the next sample, an exponential draw of mean MemProfileRate),
 * and it is charged when an allocation of class sc takes a slow path, with
 * every byte of that class allocated since the class's last slow path (the
 * mcache's nmalloc counters, which the fast paths keep anyway, tell how
 * many). The allocation that brings the countdown to zero or below is
 * sampled; if its charge crossed several sampling points, the sample counts
 * for one object per point (at most the objects charged: an object is
 * sampled once, as Go's, whose unbiasing the profile writer applies). So the number of samples is
 * Go's, and a sample lands on an allocation of the right class made within one slow-path interval
 * of the exact point: the GC heap's fast path (Go's allocCache) falls to its slow path every 64
 * slots at most, and gort_malloc's whenever its span's free list runs dry; gort_malloc's bump
 * path (a span's never-used tail) charges each object at once, as Go's fast path does, so a leak
 * is sampled exactly like Go's; a site that only recycles freed objects of a class is charged at
 * the class's next slow path, to whoever takes it. A charge of many objects counts the points it
 * crossed, which Go's unbiasing overstates by (size/rate) / (1 - e^(-size/rate)): under 3% for
 * objects up to 32 KiB at the default rate of 512 KiB.
 *
 * A sampled object gets a record on its span (mspan.profrecs), holding the
 * bucket the profiler returned (its stack) and its size. Explicit spans
 * with records have small_malloc cleared, so that every free into them
 * takes gort_free's slow path, which looks the object up (mprof_free); the
 * fast path pays nothing. GC objects are looked up by the sweeper
 * (mprof_sweep) when it frees. The profiler (src/prof/mprof.c) installs
 * the two hooks; without it (libgort-malloc.so), nothing is sampled. */
#ifndef GORT_MEM_MSAMPLE_H
#define GORT_MEM_MSAMPLE_H

#include "mem/mcache.h"
#include "mem/mspan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define mprof_alloc_hook gort__mprof_alloc_hook
#define mprof_due        gort__mprof_due
#define mprof_free       gort__mprof_free
#define mprof_free_hook  gort__mprof_free_hook
#define mprof_rate       gort__mprof_rate
#define mprof_record     gort__mprof_record
#define mprof_reset_all  gort__mprof_reset_all
#define mprof_sweep      gort__mprof_sweep

/* MemProfileRate in bytes (0: off). */
extern int mprof_rate;

/* Installed by the profiler: records the calling goroutine's stack for a
 * sample of count sampling points on size-byte objects; returns the bucket
 * (kept in the record). Called inside the allocator: it must not allocate
 * except from persistent_alloc. */
extern void *(*mprof_alloc_hook)(size_t size, uint64_t count);
/* A sampled object was freed. */
extern void (*mprof_free_hook)(void *bucket, size_t size, uint64_t count);

/* The countdown crossed zero: the number of sampling points crossed (0 when
 * profiling is off), with next_sample drawn anew. */
uint64_t mprof_due(mcache *c, uint64_t objects, size_t size);

/* A slow-path visit of class sc (or a large allocation, sc 0, of size
 * bytes): charges the countdown; nonzero when this allocation is sampled. */
static inline uint64_t mprof_charge(mcache *c, unsigned sc, size_t size) {
    uint64_t objects = 1;
    if (sc) {
        uint64_t n = c->nmalloc[sc];
        objects = n - c->prof_seen[sc] + 1; /* since the last visit, and this one */
        c->prof_seen[sc] = n + 1;           /* the caller counts this one in nmalloc */
    }
    c->next_sample -= (int64_t)(objects * size);
    if (__builtin_expect(c->next_sample > 0, 1)) return 0;
    return mprof_due(c, objects, size);
}

/* Records the sampled object p (size bytes, in span s). */
void mprof_record(mspan *s, void *p, size_t size, uint64_t count);
/* gort_free's slow path, for an explicit span with records: forgets p if it
 * was sampled (and the span's small_malloc comes back with its last record). */
void mprof_free(mspan *s, void *p);
/* The sweeper: the records of s whose objects are not live (live: one bit
 * per object, or bit 0 for a large span). */
void mprof_sweep(mspan *s, uint64_t *live);
/* The rate changed: every mcache draws its countdown again. */
void mprof_reset_all(void);

#endif
