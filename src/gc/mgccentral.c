/* Central lists of GC spans (Go's mcentral.go, for SPAN_GC spans; explicit
 * spans have theirs in src/mem/mcentral.c).
 *
 * Per span class (size class << 1 | noscan; class 0 holds large objects),
 * two pairs of lists, as Go's spanSets: partial (spans with a free slot) and
 * full, each in a swept and an unswept version. Which of the two is "swept"
 * flips at every mark termination, when gc_state.sweepgen grows by 2: what
 * was swept in the last cycle becomes unswept at once, without touching a
 * span. A span's sweepgen says where it stands (sg = gc_state.sweepgen):
 *   sg - 2  needs sweeping;            sg - 1  being swept;
 *   sg      swept, on a swept list;    sg + 1  cached before this sweep
 *   began (needs sweeping when uncached); sg + 3  swept, then cached.
 * Lists are under their central's lock; a span popped from an unswept list
 * belongs to whoever popped it, so sweeping it needs no other claim.
 *
 * The allocation side (cache/uncache) also keeps the pacer's heap_live:
 * when a span is cached its free slots count as allocated (Go's heapLive
 * moves at span granularity), and when it is given back with some unused,
 * those are taken off again, unless the cycle's end reset heap_live in
 * between (the span is then sg + 1). heap_alloc (the memory limit's count
 * of heap objects) moves with it, but is never reset: the sweep takes the
 * dead objects off it (mgcsweep.c). */
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "mem/mheap.h"

#include <string.h>

enum { L_PARTIAL = 0, L_FULL = 2 }; /* + (swept set index) */

typedef struct gccentral {
    lock_t lock;
    mspan *list[4]; /* [L_PARTIAL + 0/1], [L_FULL + 0/1]: doubly linked */
} __attribute__((aligned(64))) gccentral;

static gccentral centrals[NUM_SIZE_CLASSES * 2];

/* Which of the two sets is swept in the cycle of sweepgen sg. */
static inline int swept_set(uint32_t sg) {
    return (int)((sg >> 1) & 1);
}

static void list_push(gccentral *c, int which, mspan *s) {
    s->prev = NULL;
    s->next = c->list[which];
    if (s->next) s->next->prev = s;
    c->list[which] = s;
    s->sweep_on = (uint8_t)(which + 1);
}

static mspan *list_pop(gccentral *c, int which) {
    mspan *s = c->list[which];
    if (!s) return NULL;
    c->list[which] = s->next;
    if (s->next) s->next->prev = NULL;
    s->next = s->prev = NULL;
    s->sweep_on = 0;
    return s;
}

static inline unsigned span_class(const mspan *s) {
    return (unsigned)s->sizeclass << 1 | (s->noscan ? 1 : 0);
}

/* Puts a swept span on its central's swept list (partial or full). */
void gc_central_put_swept(mspan *s) {
    gccentral *c = &centrals[span_class(s)];
    bool full = s->sizeclass == 0 || s->alloccount >= s->nelems;
    lock(&c->lock);
    list_push(c, (full ? L_FULL : L_PARTIAL) + swept_set(atomic_load_relaxed(&gc_state.sweepgen)),
              s);
    unlock(&c->lock);
}

/* Go's refillAllocCache: the complement of allocbits from freeindex. */
static void refill_alloccache(mspan *s) {
    unsigned fi = s->freeindex;
    if (fi >= s->nelems) {
        s->alloccache = 0;
        return;
    }
    uint64_t w = *span_allocbits(s, fi >> 6) >> (fi & 63);
    s->alloccache = ~w & (fi & 63 ? (((uint64_t)1 << (64 - (fi & 63))) - 1) : ~(uint64_t)0);
}

/* A fresh span of class spc from the page heap (Go's mcentral.grow). */
static mspan *grow(unsigned spc) {
    unsigned sc = spc >> 1;
    bool noscan = spc & 1;
    size_t npages = class_to_allocnpages[sc];
    /* Over the heap-bits limit, the record keeps each slot's type. */
    size_t slots = !noscan && class_to_size[sc] > GC_HEAPBITS_MAX ? class_to_nelems[sc] : 0;
    mspan *s = mheap_alloc_span(npages, (uint8_t)sc, SPAN_GC, noscan, slots);
    if (!s) return NULL;
    s->umask = 0; /* the heap bits decide until the first object (mbitmap.c) */
    s->hbfresh = 0;
    if (!noscan && s->elemsize <= GC_HEAPBITS_MAX) {
        s->hbfresh = 1;
        /* The span's last npages * PAGE_SIZE / 64 bytes hold its heap bits. */
        s->heapbits = 1;
        size_t usable = s->npages * PAGE_SIZE - s->npages * (PAGE_SIZE / 64);
        s->nelems = (uint16_t)(usable / s->elemsize);
        /* Clear them, fresh pages too: one write now saves the read fault
         * and then the write fault of the first object's bits. */
        memset(span_heapbits(s), 0, s->npages * (PAGE_SIZE / 64));
    }
    if (!noscan && !s->needzero) {
        /* Fresh or released pages: written now, one word per OS page, so
         * that each faults in once. The program's first access to a scan
         * object is most often GORT_STORE, which reads the old value before
         * it stores: on an untouched page that read maps the zero page and
         * the store then faults again to copy it (memlimit: 198,000 page
         * faults to Go's 102,000, and 12% of its wall time). */
        for (uintptr_t o = 0; o < s->npages * PAGE_SIZE; o += 4096)
            *(volatile uintptr_t *)(s->base + o) = 0;
    }
    s->freeindex = 0;
    s->alloccount = 0;
    s->sweepgen = atomic_load_relaxed(&gc_state.sweepgen);
    return s; /* its bitmaps are clear: the record comes zeroed */
}

/* Allocate-black: the first time the current mark phase allocates from s,
 * its freeindex is where black allocation begins (mgcsweep.c). */
static inline void note_markstart(mspan *s) {
    uint32_t mg = atomic_load_relaxed(&gc_state.markgen);
    if (gc_phase() != GC_OFF && s->markgen != mg) {
        s->fi_markstart = s->freeindex;
        atomic_store_rel(&s->markgen, mg);
    }
}

mspan *gc_cache_span(mcache *mc, unsigned spc) {
    gccentral *c = &centrals[spc];
    (void)mc;
    int budget = 100; /* full unswept spans to look at before growing (Go's spanBudget) */
    for (;;) {
        uint32_t sg = atomic_load_acq(&gc_state.sweepgen);
        int sw = swept_set(sg), un = 1 - sw;
        mspan *s = NULL;
        bool need_sweep = false;
        lock(&c->lock);
        if ((s = list_pop(c, L_PARTIAL + sw))) {
        } else if ((s = list_pop(c, L_PARTIAL + un))) {
            need_sweep = true;
        } else if (budget-- > 0 && (s = list_pop(c, L_FULL + un))) {
            need_sweep = true;
        }
        unlock(&c->lock);
        if (!s) {
            s = grow(spc);
            if (!s) return NULL;
        } else if (need_sweep) {
            atomic_store_rel(&s->sweepgen, sg - 1);
            if (!gc_sweep_span(s, true)) continue; /* it had nothing live: freed */
            if (s->alloccount >= s->nelems) {      /* still full */
                atomic_store_rel(&s->sweepgen, sg);
                gc_central_put_swept(s);
                continue;
            }
        }
        if (sg != atomic_load_acq(&gc_state.sweepgen)) {
            /* A cycle ended while we looked: s is swept for the old cycle
             * only. Give it back as unswept and look again. */
            atomic_store_rel(&s->sweepgen, sg);
            gc_central_put_swept(s);
            continue;
        }
        atomic_store_rel(&s->sweepgen, sg + 3);
        refill_alloccache(s);
        note_markstart(s);
        uint64_t free_bytes = (uint64_t)(s->nelems - s->alloccount) * s->elemsize;
        atomic_xadd(&gc_pacer.heap_live, free_bytes);
        atomic_xadd(&gc_pacer.heap_alloc, free_bytes);
        if (!s->noscan) atomic_xadd(&gc_pacer.heap_scan, free_bytes);
        gc_pacer_limit_poll();
        return s;
    }
}

void gc_uncache_span(mspan *s) {
    uint32_t sg = atomic_load_acq(&gc_state.sweepgen);
    uint32_t ssg = atomic_load_relaxed(&s->sweepgen);
    if (ssg == sg + 3) {
        /* Cached in this sweep epoch: its unused slots leave heap_live. */
        uint64_t unused = (uint64_t)(s->nelems - s->alloccount) * s->elemsize;
        atomic_xadd(&gc_pacer.heap_live, -unused);
        atomic_xadd(&gc_pacer.heap_alloc, -unused);
        if (!s->noscan) atomic_xadd(&gc_pacer.heap_scan, -unused);
        atomic_store_rel(&s->sweepgen, sg);
        gc_central_put_swept(s);
        return;
    }
    if (ssg != sg + 1) throw("gc_uncache_span: bad sweepgen");
    /* Cached before the last mark termination: sweep it now (heap_live
     * restarted from the marked bytes then; heap_alloc did not). */
    atomic_xadd(&gc_pacer.heap_alloc, -(uint64_t)(s->nelems - s->alloccount) * s->elemsize);
    atomic_store_rel(&s->sweepgen, sg - 1);
    if (gc_sweep_span(s, true)) {
        atomic_store_rel(&s->sweepgen, sg);
        gc_central_put_swept(s);
    }
}

/* Pops a span off the unswept lists of sweepgen sg, of any class, for
 * gc_sweepone; NULL when none is left. *cursor walks the classes round
 * robin. If a mark termination has moved the sweepgen past sg since the
 * caller read it, those lists are now the swept ones: the caller claims
 * what it pops with a CAS of its sweepgen from sg - 2 (gc_sweepone). */
mspan *gc_central_pop_unswept(unsigned *cursor, uint32_t sg) {
    int un = 1 - swept_set(sg);
    for (unsigned k = 0; k < NUM_SIZE_CLASSES * 2; k++) {
        unsigned i = (*cursor + k) % (NUM_SIZE_CLASSES * 2);
        gccentral *c = &centrals[i];
        if (!atomic_load_relaxed(&c->list[L_PARTIAL + un]) &&
            !atomic_load_relaxed(&c->list[L_FULL + un]))
            continue;
        lock(&c->lock);
        mspan *s = list_pop(c, L_PARTIAL + un);
        if (!s) s = list_pop(c, L_FULL + un);
        unlock(&c->lock);
        if (s) {
            *cursor = i;
            return s;
        }
    }
    return NULL;
}

/* Whether every central's unswept lists are empty. */
bool gc_central_all_swept(void) {
    int un = 1 - swept_set(atomic_load_acq(&gc_state.sweepgen));
    for (unsigned i = 0; i < NUM_SIZE_CLASSES * 2; i++)
        if (atomic_load_relaxed(&centrals[i].list[L_PARTIAL + un]) ||
            atomic_load_relaxed(&centrals[i].list[L_FULL + un]))
            return false;
    return true;
}

void gc_central_lock_all(void) {
    for (unsigned i = 0; i < NUM_SIZE_CLASSES * 2; i++) lock(&centrals[i].lock);
}

void gc_central_unlock_all(void) {
    for (unsigned i = NUM_SIZE_CLASSES * 2; i-- > 0;) unlock(&centrals[i].lock);
}

void gc_central_reinit_locks(void) {
    for (unsigned i = 0; i < NUM_SIZE_CLASSES * 2; i++) centrals[i].lock = (lock_t)LOCK_INIT;
}
