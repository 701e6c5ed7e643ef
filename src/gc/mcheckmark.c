/* GORT_GODEBUG=gccheckmark=1 (Go's checkmark mode, mcheckmark.go): after a
 * cycle's mark has terminated, with the world still stopped, everything is
 * marked again from the roots, this time with the world stopped, into a
 * second set of bits; every object reached must already be marked by the
 * concurrent mark (its mark bit, or allocated black). An object that is not
 * was missed by the concurrent mark and would be freed while reachable: in
 * a C program almost always a GC pointer stored into the heap or a global
 * without GORT_STORE, or kept only where the collector does not look. The
 * process dies naming the object and what points to it.
 *
 * Stacks and registers are scanned conservatively, and a C frame's slots
 * that the function has not written yet, and vector registers, hold
 * whatever an earlier call left there: a word that looks like a pointer
 * to an object that died before the cycle began can appear in a stack
 * after the concurrent mark scanned it (a deeper call's fresh frame, a
 * spilled register). The program never uses such a word, so it is no
 * missed mark; the check skips an unmarked object it finds directly from
 * a stack or a register (gc_checkmark_stacks), and stays strict for
 * everything reachable from globals, registered roots and marked objects,
 * where GORT_STORE is the rule. (Without this, test_gc's
 * torture_checkmark and test_weak's race reported such words about once
 * in a few hundred runs under load.)
 *
 * Slow (a full stop-the-world mark per cycle): for debugging only. */
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/print.h"
#include "mem/fixalloc.h"

#include <string.h>

static uint32_t checkgen;
static uint64_t check_sys;
static uintptr_t parent; /* the object being scanned, 0 while scanning roots */
static uint64_t nchecked;
bool gc_checkmark_stacks;

/* Check bits live beside the heap, not in span records (only this debug
 * mode needs them): per arena, a block per span's first page, made on
 * first use and kept for the next pass (the world is stopped, so no lock). */
struct checkblock {
    uint32_t gen; /* the pass bits belongs to */
    uint64_t bits[SPAN_BITMAP_WORDS_MAX];
};

static uint64_t *check_bits(const mspan *s) {
    struct heap_arena *ha = arena_of(s->base);
    if (!ha) throw("gccheckmark: a span outside the heap");
    struct checkblock **blocks = ha->checkmarks;
    if (!blocks) {
        blocks = persistent_alloc(PAGES_PER_ARENA * sizeof *blocks, 64, &check_sys);
        if (!blocks) throw("gccheckmark: out of memory");
        ha->checkmarks = blocks;
    }
    struct checkblock **slot = &blocks[(s->base - ha->base) >> PAGE_SHIFT];
    if (!*slot) {
        *slot = persistent_alloc(sizeof **slot, 64, &check_sys);
        if (!*slot) throw("gccheckmark: out of memory");
    }
    struct checkblock *b = *slot;
    if (b->gen != checkgen) {
        memset(b->bits, 0, sizeof b->bits);
        b->gen = checkgen;
    }
    return b->bits;
}

void gc_checkmark_visit(uintptr_t obj, mspan *s, uint32_t idx, gcwork *w) {
    uint64_t *checkbits = check_bits(s);
    uint64_t bit = (uint64_t)1 << (idx & 63);
    if (checkbits[idx >> 6] & bit) return;
    if (!parent && gc_checkmark_stacks && !gc_is_marked(s, idx)) return; /* a stale word */
    checkbits[idx >> 6] |= bit;
    nchecked++;
    if (!gc_is_marked(s, idx)) {
        size_t size = s->sizeclass ? s->elemsize : s->npages * PAGE_SIZE;
        if (parent)
            throwf("gccheckmark: object %p (%zu bytes) is reachable from object %p but was not "
                   "marked: a pointer stored without GORT_STORE?",
                   (void *)obj, size, (void *)parent);
        throwf("gccheckmark: object %p (%zu bytes) is reachable from a root but was not marked: "
               "a pointer stored into a global or registered root without GORT_STORE?",
               (void *)obj, size);
    }
    if (!s->noscan) gcw_put(w, obj);
}

void gc_checkmark(void) {
    checkgen++;
    nchecked = 0;
    gcwork w = {0};
    gc_checkmark_mode = true;
    parent = 0;
    gc_scan_roots_stw(&w);
    uintptr_t b;
    while ((b = gcw_get(&w)) != 0) {
        parent = b;
        gc_scanobject(b, &w);
    }
    parent = 0;
    gc_checkmark_mode = false;
    w.bytes_marked = 0;
    w.scan_work = 0;
    gcw_dispose(&w);
}
