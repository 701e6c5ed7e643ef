/* mcentral: partial spans per size class. See mcentral.h.
 *
 * A central's lock guards its partial and empty lists and the on_list flags
 * of their spans. Spans on these lists have no owner, so the lock holder may
 * also take over their remote frees (span_collect_tfree, span_drop_free) and
 * walk their free lists.
 *
 * Empty explicit spans (the release policy). A span whose objects are all
 * free does not go back to the page heap when its owner gives it up: it is
 * reset (span_reset: its next tenant bump-allocates from it as from a fresh
 * span) and waits on its central's empty list, newest first, where the next
 * mcache short of a span of the class finds it (after the partial spans:
 * filling those first keeps the heap dense). The scavenger's period
 * (scavenge.c: 100 ms, on its thread in the library, inline on allocation
 * slow paths under LD_PRELOAD) calls mcentral_trim, which stamps nothing and
 * walks little: each retired span carries the trim generation it was
 * retired in, and spans retired before the previous trim, so unused for a
 * whole period at least, go to the heap (oldest at the tail). This is
 * mimalloc's delay before a page goes back to its segment, on a clock
 * instead of a count: a program that frees and reallocates a class in
 * waves (a producer whose batches other threads free) reuses its spans
 * instead of carving fresh ones from the heap (measured on mimalloc-bench's
 * xmalloc-test: about 985,000 fresh spans in 5 s before). */
#include "mem/mcentral.h"
#include "base/atomic.h"
#include "base/fatal.h"
#include "base/lock.h"
#include "mem/mcache.h"
#include "mem/mheap.h"

#include <string.h>

typedef struct mcentral {
    lock_t lock;
    mspan *partial; /* spans with free objects, owned by nobody */
    mspan *empty;   /* explicit: retired empty spans, newest first */
    mspan *empty_tail;
} __attribute__((aligned(64))) mcentral;

static uint32_t trim_gen; /* mcentral_trims so far (atomic) */

/* Explicit memory, by size class (GC spans have the GC layer's centrals,
 * src/gc/mgccentral.c). */
static mcentral central_malloc[NUM_SIZE_CLASSES];

static mcentral *central_of(uint8_t sizeclass, uint8_t kind, bool noscan) {
    (void)kind, (void)noscan;
    return &central_malloc[sizeclass];
}

static void list_push(mcentral *m, mspan *s) {
    s->prev = NULL;
    s->next = m->partial;
    if (m->partial) m->partial->prev = s;
    m->partial = s;
    s->on_list = ON_CENTRAL;
}

static void list_remove(mcentral *m, mspan *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        m->partial = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->on_list = ON_NONE;
}

/* The empty list (lock held). */
static void empty_push(mcentral *m, mspan *s) {
    s->prev = NULL;
    s->next = m->empty;
    if (m->empty)
        m->empty->prev = s;
    else
        m->empty_tail = s;
    m->empty = s;
    s->retired = atomic_load_relaxed(&trim_gen);
    s->on_list = ON_CENTRAL_EMPTY;
}

static void empty_remove(mcentral *m, mspan *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        m->empty = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        m->empty_tail = s->prev;
    s->next = s->prev = NULL;
    s->on_list = ON_NONE;
}

size_t span_collect_tfree(mspan *s) {
    /* Callers never collect a parked span (its NOTIFY is cleared by whoever
     * un-parks it), so the flag bit is never set here; mask it regardless. */
    if (!atomic_load_relaxed(&s->tfree)) return 0; /* the common case: no exchange */
    uintptr_t w = atomic_xchg(&s->tfree, 0);
    uintptr_t head = tfree_head(w);
    uint32_t n = tfree_count(w);
    if (!head) return 0;
    uintptr_t bytes = (uintptr_t)s->nelems * s->elemsize;
    if (head - s->base >= bytes || n == 0 || n > s->allocated)
        throwf("gort_free: corrupted free list in span %p (a write to freed memory?)",
               (void *)s->base);
    if (s->freelist) {
        /* Not the allocation path's case: find the stack's last object (its
         * links were checked for double frees as they were pushed). */
        uintptr_t last = head;
        for (uint32_t k = 1; k < n; k++) {
            last = (uintptr_t)link_decode(s, *(uintptr_t *)last);
            if (last - s->base >= bytes)
                throwf("gort_free: corrupted free list in span %p (a write to freed memory?)",
                       (void *)s->base);
        }
        *(uintptr_t *)last = link_encode(s, s->freelist);
    }
    s->freelist = (void *)head;
    /* Counted as taken over before they leave allocated: memstats reads
     * allocated, then tfree_collected; the other order let a reading find
     * both low, derive n frees too many and latch them (mstats.c). */
    atomic_xadd(&mheap_stats.tfree_collected[s->sizeclass], n);
    s->allocated -= (uint16_t)n;
    return n;
}

void span_drop_free(mspan *s) {
    uint32_t n = tfree_count(atomic_xchg(&s->tfree, 0));
    if (n) { /* in this order: see span_collect_tfree */
        atomic_xadd(&mheap_stats.tfree_collected[s->sizeclass], n);
        s->allocated -= (uint16_t)n;
    }
    s->freelist = NULL;
}

void span_reset(mspan *s) {
    span_drop_free(s);
    s->allocated = 0; /* it was; the store keeps memstats' racy reads exact */
    s->needzero = 1;
    s->reused = 1;
    s->limit_off = 0;
    atomic_store_relaxed(&s->freeindex, 0);
}

static bool span_has_free(mspan *s) {
    return s->freelist || s->freeindex < s->nelems ||
           (atomic_load_relaxed(&s->tfree) & ~TFREE_NOTIFY);
}

mspan *mcentral_cache_span(struct mcache *c, uint8_t sizeclass, uint8_t kind, bool noscan) {
    mcentral *m = central_of(sizeclass, kind, noscan);
    mspan *s = NULL;
    if (atomic_load_relaxed(&m->partial) || atomic_load_relaxed(&m->empty)) {
        lock(&m->lock);
        if ((s = m->partial)) {
            list_remove(m, s);
            atomic_store_rel(&s->owner, c);
        } else if ((s = m->empty)) {
            empty_remove(m, s);
            atomic_store_rel(&s->owner, c);
        }
        unlock(&m->lock);
    }
    if (!s) {
        size_t npages =
            kind == SPAN_MALLOC ? malloc_span_pages(sizeclass) : class_to_allocnpages[sizeclass];
        s = mheap_alloc_span(npages, sizeclass, kind, noscan, 0);
        if (!s) return NULL;
        atomic_store_rel(&s->owner, c);
    }
    return s;
}

void mcentral_uncache_span(mspan *s) {
    mcentral *m = central_of(s->sizeclass, s->kind, s->noscan);
    atomic_store_rel(&s->owner, NULL);
    if (s->kind == SPAN_MALLOC && span_live(s) == 0) {
        mcentral_retire(s);
        return;
    }
    lock(&m->lock);
    if (span_has_free(s)) {
        list_push(m, s);
    } else if (s->kind == SPAN_MALLOC) {
        uintptr_t z = 0;
        if (!atomic_cas(&s->tfree, &z, TFREE_NOTIFY)) list_push(m, s); /* a free raced in */
    }
    unlock(&m->lock);
}

void mcentral_readd(mspan *s) {
    mcentral *m = central_of(s->sizeclass, s->kind, s->noscan);
    lock(&m->lock);
    /* Only an explicit span in use: a drain that lost a race with a trim
     * (mcache.c drain_ready) must not put any other span on these lists. */
    if (s->kind == SPAN_MALLOC && s->state == SPAN_IN_USE && s->on_list == ON_NONE &&
        !atomic_load_acq(&s->owner)) {
        if (s->kind == SPAN_MALLOC && span_live(s) == 0) {
            span_reset(s);
            empty_push(m, s);
        } else {
            list_push(m, s);
        }
    }
    unlock(&m->lock);
}

void mcentral_retire(mspan *s) {
    mcentral *m = &central_malloc[s->sizeclass];
    atomic_store_rel(&s->owner, NULL);
    span_reset(s);
    lock(&m->lock);
    empty_push(m, s);
    unlock(&m->lock);
}

/* Frees the spans of m's empty list retired before generation gen (lock
 * held); returns their pages. */
static size_t free_empty_before(mcentral *m, uint32_t gen, bool all) {
    size_t pages = 0;
    mspan *s;
    while ((s = m->empty_tail) && (all || (int32_t)(s->retired - gen) < 0)) {
        /* Still on its last owner's ready stack (pushed by a remote free
         * before a local one emptied and retired it): the owner's next
         * drain reads the record, which must not have become another
         * span's by then. The next trim takes it. */
        if (atomic_load_acq(&s->xqueued)) break;
        empty_remove(m, s);
        pages += s->npages;
        mheap_free_span(s);
    }
    return pages;
}

size_t mcentral_trim(void) {
    uint32_t gen = atomic_xadd(&trim_gen, 1); /* this trim's generation, before the bump */
    size_t pages = 0;
    for (int sc = 1; sc < NUM_SIZE_CLASSES; sc++) {
        mcentral *m = &central_malloc[sc];
        if (!atomic_load_relaxed(&m->partial) && !atomic_load_relaxed(&m->empty)) continue;
        lock(&m->lock);
        pages += free_empty_before(m, gen, false);
        for (mspan *s = m->partial, *next; s; s = next) {
            next = s->next;
            if (span_live(s) == 0) { /* emptied by remote frees since it came here */
                list_remove(m, s);
                span_reset(s);
                empty_push(m, s);
            }
        }
        unlock(&m->lock);
    }
    return pages;
}

size_t mcentral_reclaim(void) {
    size_t pages = 0;
    for (int sc = 1; sc < NUM_SIZE_CLASSES; sc++) {
        mcentral *m = &central_malloc[sc];
        if (!atomic_load_relaxed(&m->partial) && !atomic_load_relaxed(&m->empty)) continue;
        lock(&m->lock);
        for (mspan *s = m->partial, *next; s; s = next) {
            next = s->next;
            if (span_live(s) == 0) {
                list_remove(m, s);
                span_drop_free(s);
                pages += s->npages;
                mheap_free_span(s);
            }
        }
        pages += free_empty_before(m, 0, true);
        unlock(&m->lock);
    }
    return pages;
}

void mcentral_lock_all(void) {
    for (int i = 0; i < NUM_SIZE_CLASSES; i++) lock(&central_malloc[i].lock);
}

void mcentral_unlock_all(void) {
    for (int i = NUM_SIZE_CLASSES - 1; i >= 0; i--) unlock(&central_malloc[i].lock);
}

void mcentral_reinit_locks(void) {
    for (int i = 0; i < NUM_SIZE_CLASSES; i++) central_malloc[i].lock = (lock_t)LOCK_INIT;
}
