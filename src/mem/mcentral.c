/* mcentral: partial spans per size class. See mcentral.h.
 *
 * A central's lock guards its partial list and the on_list flags of its
 * spans. Spans on a partial list have no owner, so the lock holder may also
 * take over their remote frees (span_collect_tfree) and walk their free lists. */
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
    char pad[64 - sizeof(lock_t) - sizeof(mspan *)];
} __attribute__((aligned(64))) mcentral;

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

size_t span_collect_tfree(mspan *s) {
    /* Callers never collect a parked span (its NOTIFY is cleared by whoever
     * un-parks it), so the flag bit is never set here; mask it regardless. */
    if (!atomic_load_relaxed(&s->tfree)) return 0; /* the common case: no exchange */
    uintptr_t head = atomic_xchg(&s->tfree, 0) & ~TFREE_NOTIFY;
    if (!head) return 0;
    /* The stack's links are masked as the local list's (free_remote checked
     * each push for a double free): count it, then put the local list
     * after its last object. */
    size_t n = 1;
    uintptr_t last = head;
    for (uintptr_t next; (next = (uintptr_t)link_decode(s, *(uintptr_t *)last)) != 0; last = next) {
        if (next - s->base >= (uintptr_t)s->nelems * s->elemsize || n > s->nelems)
            throwf("gort_free: corrupted free list in span %p (a write to freed memory?)",
                   (void *)s->base);
        n++;
    }
    *(uintptr_t *)last = link_encode(s, s->freelist);
    s->freelist = (void *)head;
    if (s->kind == SPAN_MALLOC) s->allocated -= (uint16_t)n;
    atomic_xadd(&mheap_stats.tfree_collected[s->sizeclass], n);
    return n;
}

static bool span_has_free(mspan *s) {
    return s->freelist || s->freeindex < s->nelems ||
           (atomic_load_relaxed(&s->tfree) & ~TFREE_NOTIFY);
}

mspan *mcentral_cache_span(struct mcache *c, uint8_t sizeclass, uint8_t kind, bool noscan) {
    mcentral *m = central_of(sizeclass, kind, noscan);
    mspan *s = NULL;
    if (atomic_load_relaxed(&m->partial)) {
        lock(&m->lock);
        s = m->partial;
        if (s) {
            list_remove(m, s);
            atomic_store_rel(&s->owner, c);
        }
        unlock(&m->lock);
    }
    if (!s) {
        size_t npages =
            kind == SPAN_MALLOC ? malloc_span_pages(sizeclass) : class_to_allocnpages[sizeclass];
        s = mheap_alloc_span(npages, sizeclass, kind, noscan);
        if (!s) return NULL;
        atomic_store_rel(&s->owner, c);
    }
    if (kind == SPAN_MALLOC) span_collect_tfree(s);
    return s;
}

void mcentral_uncache_span(mspan *s) {
    mcentral *m = central_of(s->sizeclass, s->kind, s->noscan);
    atomic_store_rel(&s->owner, NULL);
    if (s->kind == SPAN_MALLOC && s->allocated == 0) {
        s->freelist = NULL;
        mheap_free_span(s);
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
    if (s->on_list == ON_NONE && !atomic_load_acq(&s->owner)) list_push(m, s);
    unlock(&m->lock);
}

size_t mcentral_reclaim(void) {
    size_t pages = 0;
    for (int sc = 1; sc < NUM_SIZE_CLASSES; sc++) {
        mcentral *m = &central_malloc[sc];
        if (!atomic_load_relaxed(&m->partial)) continue;
        lock(&m->lock);
        for (mspan *s = m->partial, *next; s; s = next) {
            next = s->next;
            span_collect_tfree(s);
            if (s->allocated == 0) {
                list_remove(m, s);
                s->freelist = NULL;
                pages += s->npages;
                mheap_free_span(s);
            }
        }
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
