/* Object layout and pointer lookup (Go's mbitmap.go): which words of a GC
 * object hold pointers, and which object a pointer points into.
 *
 * Layout (gc.h, "object layout", as Go 1.22's):
 * - noscan span classes: no pointer information at all;
 * - scan objects up to GC_HEAPBITS_MAX bytes: one bit per word in a bitmap
 *   at the end of their span, written by the allocating thread (the span's
 *   owner, so plain stores), read by the marker only for objects allocated
 *   before the mark phase began (objects allocated during it are black and
 *   never scanned);
 *   unless the span is of one layout (below);
 * - larger scan objects: their type in the span, per slot (span_slottype);
 * - large objects: the type word in the span.
 *
 * Spans of one layout. Most spans hold objects of a single type (a size
 * class's objects come from the few types of that size, and a program's
 * allocation of one type comes in runs), so a heap-bit span starts out
 * keeping its objects' pointer bits once, in span.umask (the first
 * object's), and writes no per-object bits; the first object of another
 * layout expands umask into the bitmap for every slot, then clears umask
 * (a release store), and from then on each allocation writes its bits.
 * Both states are exact for every allocated object, so the marker reads
 * umask (acquire) and, when it is 0, the bitmap, with no lock: objects of
 * a span that changes state under it were allocated before and have the
 * same bits either way. (Go 1.22 writes every small object's bits; 1.23's
 * allocation headers do likewise: this is gort's own.) Measured with
 * callgrind on binarytrees depth 16: gort_new's fast path loses the
 * bitmap read-modify-write, 34 of its ~100 instructions per node, and
 * gc_scanobject the bitmap read, ~30 of its ~190 per object.
 *
 * gc_findobject is what makes conservative scanning (stacks, registers,
 * globals, gort_alloc_conservative objects) exact about the heap: a word is
 * taken for a pointer only if it points into an allocated object of a GC
 * span, interior pointers included. A free slot, the heap-bits area, an
 * explicit (gort_malloc) object or an address outside the heap is ignored. */
#include "gc/gc.h"

#include "base/atomic.h"
#include "mem/arena.h"

/* Every word a pointer: the type of gort_alloc_conservative's objects. */
static const gort_field conservative_field = {0, sizeof(void *)};
const gort_type gc_conservative_type = {sizeof(void *), sizeof(void *), 1, &conservative_field,
                                        "conservative", ~(uint64_t)0,   1};

struct gc_heap_range gc_heap_range;

uintptr_t gc_findobject(uintptr_t p, mspan **sp, uint32_t *idx) {
    mspan *s = span_of(p);
    if (!s || atomic_load_relaxed(&s->kind) != SPAN_GC ||
        atomic_load_relaxed(&s->state) != SPAN_IN_USE)
        return 0;
    uintptr_t base = s->base;
    /* s may be a record being reused for another span under us (the page
     * was freed and its map entry not yet cleared when we read it): p must
     * lie inside the span the record now describes. */
    if (p - base >= s->npages * PAGE_SIZE) return 0;
    if (s->sizeclass == 0) {
        *sp = s;
        *idx = 0;
        return base;
    }
    uint32_t i = span_obj_index(s, p);
    if (i >= s->nelems) return 0; /* the tail or the heap bits */
    /* Allocated: below freeindex, or marked in allocbits at the last sweep. */
    if (i >= atomic_load_relaxed(&s->freeindex) &&
        !((atomic_load_relaxed(span_allocbits(s, i >> 6)) >> (i & 63)) & 1))
        return 0;
    *sp = s;
    *idx = i;
    return base + (uintptr_t)i * s->elemsize;
}

void gc_heapbits_set(mspan *s, uintptr_t v, uint64_t bits) {
    size_t nw = s->elemsize / 8;
    if (nw < 64) bits &= ((uint64_t)1 << nw) - 1;
    uint64_t um = s->umask;
    if (um == bits) return;
    if (s->hbfresh && bits) { /* the span's first object: its layout is the span's */
        s->hbfresh = 0;
        atomic_store_rel(&s->umask, bits);
        return;
    }
    s->hbfresh = 0;
    if (um) { /* a second layout: every slot gets the span's bits, then its own */
        for (uint32_t i = 0; i < s->nelems; i++)
            heapbits_write(s, s->base + (uintptr_t)i * s->elemsize, nw, um);
        atomic_store_rel(&s->umask, 0);
    }
    heapbits_write(s, v, nw, bits);
}
