/* mcentral: the spans of one size class that no mcache owns (Go's
 * mcentral.go). Explicit-memory spans and GC spans have separate centrals.
 * Full spans are on no list: an unowned full explicit span is parked with
 * TFREE_NOTIFY (see mspan.h); full GC spans wait for the sweeper, which finds
 * them through the arena index. Empty explicit spans wait on an empty list
 * for a scavenger period before they go to the page heap (mcentral.c). */
#ifndef GORT_MEM_MCENTRAL_H
#define GORT_MEM_MCENTRAL_H

#include "mem/mspan.h"

#include <stdbool.h>
#include <stddef.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define mcentral_cache_span   gort__mcentral_cache_span
#define mcentral_lock_all     gort__mcentral_lock_all
#define mcentral_readd        gort__mcentral_readd
#define mcentral_reclaim      gort__mcentral_reclaim
#define mcentral_reinit_locks gort__mcentral_reinit_locks
#define mcentral_retire       gort__mcentral_retire
#define mcentral_trim         gort__mcentral_trim
#define mcentral_uncache_span gort__mcentral_uncache_span
#define mcentral_unlock_all   gort__mcentral_unlock_all
#define span_collect_tfree    gort__span_collect_tfree
#define span_drop_free        gort__span_drop_free
#define span_reset            gort__span_reset

struct mcache;

/* A span of sizeclass with at least one free object, now owned by c (taken
 * from the central partial list, or fresh from mheap); NULL when out of
 * memory. Remote frees of SPAN_MALLOC spans are left in tfree: the new
 * owner takes them when its local list runs dry. */
mspan *mcentral_cache_span(struct mcache *c, uint8_t sizeclass, uint8_t kind, bool noscan);
/* The owner gives s up. GC spans: back to the central list if not full.
 * Explicit spans: retired when empty (span_live), else central partial,
 * else parked with TFREE_NOTIFY. */
void mcentral_uncache_span(mspan *s);
/* s, an explicit span with no live object that no mcache owns any more:
 * reset (span_reset) and put on its central's empty list, for reuse. */
void mcentral_retire(mspan *s);
/* One scavenger period's work on the centrals: explicit spans retired
 * before the previous trim (unused for a whole period) go to the page heap,
 * and central partial spans found empty are retired. Returns the pages
 * given back. Takes the central locks: call with no allocator lock held. */
size_t mcentral_trim(void);
/* A remote free cleared TFREE_NOTIFY on an unowned span: put it on the list. */
void mcentral_readd(mspan *s);
/* Returns every SPAN_MALLOC span on a central list whose objects are all free
 * (retired or not) to the page heap; returns the number of pages given back. */
size_t mcentral_reclaim(void);

/* Takes over s's remote frees into its free list (owner or list-lock holder
 * only); returns how many. One exchange when the local list is empty (the
 * stack becomes the list: how the allocation path takes them); otherwise
 * the stack is walked to its end and the local list put after it. */
size_t span_collect_tfree(mspan *s);
/* s, an explicit span with no live object (span_live), is about to be
 * freed: forgets its free lists, counting its remote frees as taken over. */
void span_drop_free(mspan *s);
/* s, an explicit span with no live object, starts over as if fresh from the
 * heap (span_drop_free, then bump allocation from its first object, which
 * may hold old data: needzero). Its key stays: a stale link in an object's
 * first word lies past the bump pointer, where free never looks at it, and
 * the bump path clears the top byte of each object it hands out again. */
void span_reset(mspan *s);

void mcentral_lock_all(void);
void mcentral_unlock_all(void);
void mcentral_reinit_locks(void);

#endif
