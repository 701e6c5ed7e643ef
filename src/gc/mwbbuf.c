/* The write barrier (Go's mwbbuf.go and mbarrier.go).
 *
 * GORT_STORE (include/gort/gc.h) stores, then reads gort__writebarrier; if
 * the collector is marking it calls gort__wb_slow(old, new), which appends
 * both values to the calling thread's buffer (Go's wbBuf: no locking, no
 * lookup); a full buffer is flushed: each entry that points into an
 * allocated GC object greys it. Mark termination flushes every thread's
 * buffer with the world stopped.
 *
 * Why the store comes before the flag is read: stop-the-world suspends a
 * thread at any instruction. If the flag were read first, a thread stopped
 * between reading "off" and storing could store unshaded after the cycle
 * began. Read after, a "0" means the store happened before the stop that
 * turned the barrier on (needing no barrier), and a thread stopped between
 * its store and its barrier at mark termination still holds both values in
 * registers or on its stack, which termination rescans (mgcmark.c).
 *
 * The slow path is a runtime critical section (lock_depth): a stop never
 * finds a buffer half written. */
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/fatal.h"

#include <string.h>

GORT_API volatile uint32_t gort__writebarrier;

static inline bool heap_candidate(uintptr_t p) {
    return gc_heap_candidate(p);
}

void gc_flush_wbbuf(gcthread *t, gcwork *w) {
    uint32_t n = t->wbn;
    t->wbn = 0;
    for (uint32_t i = 0; i < n; i++) gc_shade(t->wb[i], w);
}

static __attribute__((noinline)) void wb_flush_own(gcthread *t) {
    gc_flush_wbbuf(t, &t->w);
    gcw_dispose(&t->w);
}

GORT_API void gort__wb_slow(void *old_value, void *new_value) {
    lock_depth++;
    __asm__ __volatile__("" ::: "memory");
    if (gc_phase() != GC_OFF) {
        uintptr_t o = (uintptr_t)old_value, n = (uintptr_t)new_value;
        bool ho = heap_candidate(o), hn = heap_candidate(n);
        if (ho || hn) {
            gcthread *t = gc_thread_self();
            if (t->wbn + 2 > WBBUF_ENTRIES) wb_flush_own(t);
            if (ho) t->wb[t->wbn++] = o;
            if (hn) t->wb[t->wbn++] = n;
        }
    }
    __asm__ __volatile__("" ::: "memory");
    if (--lock_depth == 0 && lock_suspend_pending) lock_suspend_now();
}

/* Shades the pointer words of n objects of type t at p (old values, or the
 * new ones about to be copied). */
static void shade_typed(gcthread *th, const void *p, const gort_type *t, size_t n) {
    uintptr_t b = (uintptr_t)p;
    for (size_t e = 0; e < n; e++, b += t->size) {
        for (size_t k = 0; k < t->nfields; k++) {
            for (size_t o = 0; o < t->fields[k].len; o += sizeof(void *)) {
                uintptr_t v = *(const uintptr_t *)(b + t->fields[k].offset + o);
                if (!heap_candidate(v)) continue;
                if (th->wbn == WBBUF_ENTRIES) wb_flush_own(th);
                th->wb[th->wbn++] = v;
            }
        }
    }
}

GORT_API void gort_copy_typed(void *dst, const void *src, const gort_type *t, size_t n) {
    if (!t) throw("gort_copy_typed: nil type");
    size_t bytes;
    if (__builtin_mul_overflow(t->size, n, &bytes)) throw("gort_copy_typed: size overflows");
    if (!bytes || dst == src) return;
    lock_depth++; /* the barrier and the copy are one step for stop-the-world */
    __asm__ __volatile__("" ::: "memory");
    if (gc_phase() != GC_OFF && t->ptrdata) {
        gcthread *th = gc_thread_self();
        shade_typed(th, dst, t, n);
        shade_typed(th, src, t, n);
    }
    memmove(dst, src, bytes);
    __asm__ __volatile__("" ::: "memory");
    if (--lock_depth == 0 && lock_suspend_pending) lock_suspend_now();
}

void gc_shade_elem(const void *dst, const void *src, size_t n, const gort_type *t) {
    lock_depth++;
    __asm__ __volatile__("" ::: "memory");
    if (gc_phase() != GC_OFF) {
        gcthread *th = gc_thread_self();
        if (t) {
            shade_typed(th, dst, t, n / t->size);
            if (src) shade_typed(th, src, t, n / t->size);
        } else {
            shade_typed(th, dst, &gc_conservative_type, n / sizeof(void *));
            if (src) shade_typed(th, src, &gc_conservative_type, n / sizeof(void *));
        }
    }
    __asm__ __volatile__("" ::: "memory");
    if (--lock_depth == 0 && lock_suspend_pending) lock_suspend_now();
}
