/* Allocation in the GC heap (Go's mallocgc, malloc.go): gort_new,
 * gort_new_array, gort_alloc_noscan, gort_alloc_conservative.
 *
 * Small objects come from the calling thread's mcache (its P's while it
 * runs goroutines), one span per span class (size class << 1 | noscan),
 * through Go's allocCache: a 64-bit window of the span's free slots, so the
 * fast path is a count-trailing-zeros and a shift. Then the slot is zeroed
 * if the span's memory may hold old data, and the object's pointer bits
 * recorded (typed objects up to GC_HEAPBITS_MAX bytes: nothing when the
 * span is of the object's layout, which gort_new checks with one compare
 * of the type's compile-time mask with span.umask; else a read-modify-write
 * of a bitmap word, mbitmap.c) or its type stored in the span's slot table
 * (larger ones).
 * Noscan objects under 16 bytes share 16-byte blocks (Go's tiny
 * allocator). Large objects get their own span.
 *
 * No atomic instruction on the fast path, and no check of the GC's phase:
 * objects allocated while the collector marks are black because the span
 * records where black allocation began (mgcsweep.c), not by a mark bit
 * per object. What the fast path does check is its mcache's flush
 * generation: after each mark termination every mcache gives its spans
 * back before it allocates again, so that they get swept (Go flushes every
 * P's mcache at that point; ours flush themselves on their next
 * allocation, and the next cycle's start flushes the ones that never
 * allocated again).
 *
 * Allocation is a runtime critical section (lock_depth, see base/lock.h): a
 * stop-the-world never stops a thread halfway through it, so the stopper
 * may flush any mcache and read any span. Nothing inside may wait for a
 * stop-the-world: the pacer's trigger and a mark assist's blocking parts run
 * after the section ends.
 *
 * Every refill (a new span) is where the collector's accounting happens, at
 * span granularity as in Go: the span's free slots count in heap_live, a
 * cycle starts once heap_live reaches the trigger, a thread in debt assists
 * the marker, and sweeping proceeds in proportion to allocation. */
#include "gc/gc.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/atomic.h"
#include "base/fatal.h"
#include "gort/gc.h"
#include "mem/mcache.h"
#include "mem/mheap.h"
#include "mem/msample.h"
#include "mem/sizeclasses.h"

#include <string.h>

/* ---- the critical section ---- */

static inline __attribute__((always_inline)) void cs_enter(void) {
    lock_depth++;
    __asm__ __volatile__("" ::: "memory");
}

static inline __attribute__((always_inline)) void cs_exit(void) {
    __asm__ __volatile__("" ::: "memory");
    if (--lock_depth == 0 && __builtin_expect(lock_suspend_pending, 0)) lock_suspend_now();
}

/* ---- slot allocation (Go's nextFreeFast / nextFreeIndex) ---- */

static inline __attribute__((always_inline)) uintptr_t next_free_fast(mspan *s) {
    uint64_t cache = s->alloccache;
    if (!cache) return 0;
    unsigned bit = (unsigned)__builtin_ctzll(cache);
    unsigned result = s->freeindex + bit;
    if (result >= s->nelems) return 0;
    unsigned fi = result + 1;
    if (fi % 64 == 0 && fi != s->nelems) return 0;
    s->alloccache = bit == 63 ? 0 : cache >> (bit + 1);
    s->freeindex = (uint16_t)fi;
    s->alloccount++;
    return s->base + (uintptr_t)result * s->elemsize;
}

static unsigned next_free_index(mspan *s) {
    unsigned sfi = s->freeindex, n = s->nelems;
    if (sfi >= n) return n;
    uint64_t cache = s->alloccache;
    while (!cache) {
        sfi = (sfi + 64) & ~63u;
        if (sfi >= n) {
            s->freeindex = (uint16_t)n;
            return n;
        }
        cache = ~*span_allocbits(s, sfi / 64);
    }
    unsigned bit = (unsigned)__builtin_ctzll(cache);
    unsigned result = sfi + bit;
    if (result >= n) {
        s->freeindex = (uint16_t)n;
        return n;
    }
    sfi = result + 1;
    s->alloccache = bit == 63 ? 0 : cache >> (bit + 1);
    if (sfi % 64 == 0 && sfi != n) s->alloccache = ~*span_allocbits(s, sfi / 64);
    s->freeindex = (uint16_t)sfi;
    return result;
}

/* What the slow path asks the caller to do once out of the critical
 * section. */
struct after_alloc {
    bool trigger;    /* heap_live reached the trigger: start a cycle */
    int64_t assist;  /* bytes to pay for with mark work */
    uint64_t sample; /* the heap profile samples this allocation (msample.h) */
};

/* The refill: a new span for class spc, with the collector's accounting. */
static mspan *refill(mcache *c, unsigned spc, struct after_alloc *aa) {
    mspan *s = c->alloc_gc[spc];
    if (s != &empty_mspan) {
        c->alloc_gc[spc] = &empty_mspan;
        gc_uncache_span(s);
    }
    s = gc_cache_span(c, spc);
    if (!s) return NULL;
    c->alloc_gc[spc] = s;
    uint64_t bytes = (uint64_t)(s->nelems - s->alloccount) * s->elemsize;
    if (gc_phase() == GC_MARK)
        aa->assist += (int64_t)bytes;
    else if (atomic_load_relaxed(&gc_pacer.heap_live) >= atomic_load_relaxed(&gc_pacer.trigger))
        aa->trigger = true;
    gc_sweep_credit(bytes);
    return s;
}

static uintptr_t next_free(mcache *c, unsigned spc, mspan **sp, struct after_alloc *aa) {
    mspan *s = c->alloc_gc[spc];
    uintptr_t v = next_free_fast(s);
    if (!v) {
        aa->sample = mprof_charge(c, spc >> 1, class_to_size[spc >> 1]); /* heap profile */
        unsigned i = next_free_index(s);
        if (i >= s->nelems) {
            s = refill(c, spc, aa);
            if (!s) return 0;
            i = next_free_index(s);
            if (i >= s->nelems) throw("mallocgc: a cached span has no free slot");
        }
        s->alloccount++;
        v = s->base + (uintptr_t)i * s->elemsize;
    }
    *sp = s;
    return v;
}

/* Zeroes n bytes at p (8-aligned, n a multiple of 8): inline for small
 * objects, where a call to memset costs more than the stores. */
static inline __attribute__((always_inline)) void zero_words(uintptr_t p, size_t n) {
    if (n <= 64) {
        for (size_t i = 0; i < n; i += 8) *(volatile uint64_t *)(p + i) = 0;
    } else {
        memset((void *)p, 0, n);
    }
}

/* The pointer bits of an array of n objects of type t (n * t->size <= 512). */
static uint64_t array_bits(const gort_type *t, size_t n, uint64_t mask) {
    size_t w = t->size / sizeof(void *);
    uint64_t bits = 0;
    for (size_t i = 0; i < n && i * w < 64; i++) bits |= mask << (i * w);
    return bits;
}

/* t's mask of pointer words among its first 64 (derived for a descriptor
 * built by hand without one). */
static uint64_t type_mask(const gort_type *t) {
    if (t->has_ptrmask) return t->ptrmask;
    uint64_t m = 0;
    for (size_t i = 0; i < 64 && i * sizeof(void *) < t->size; i++)
        if (gort_type_is_pointer(t, i)) m |= (uint64_t)1 << i;
    return m;
}

/* ---- the general path ---- */

static void after(struct after_alloc *aa) {
    if (aa->trigger) gc_start(GC_TRIGGER_HEAP, false);
    if (aa->assist > 0) gc_assist(gc_thread_self(), aa->assist);
}

static void *alloc_large(mcache *c, size_t size, const gort_type *t, struct after_alloc *aa) {
    (void)c;
    size_t npages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT;
    if (size > ((size_t)1 << HEAP_ADDR_BITS)) return NULL;
    mspan *s = mheap_alloc_span(npages, 0, SPAN_GC, t == NULL, 1);
    if (!s) return NULL;
    *span_largetype(s) = t;
    s->nelems = 1;
    s->sweepgen = atomic_load_relaxed(&gc_state.sweepgen);
    *span_markbits(s, 0) = 0;
    if (gc_phase() != GC_OFF) { /* allocate black */
        s->markgen = atomic_load_relaxed(&gc_state.markgen);
    }
    if (s->needzero) memset((void *)s->base, 0, npages * PAGE_SIZE);
    uint64_t bytes = (uint64_t)npages * PAGE_SIZE;
    aa->sample = mprof_charge(c, 0, bytes); /* heap profile */
    c->large_nmalloc++;
    c->large_alloc_bytes += bytes;
    atomic_xadd(&gc_pacer.heap_live, bytes);
    atomic_xadd(&gc_pacer.heap_alloc, bytes);
    if (t) atomic_xadd(&gc_pacer.heap_scan, bytes);
    gc_pacer_limit_poll();
    gc_central_put_swept(s);
    if (gc_phase() == GC_MARK)
        aa->assist += (int64_t)bytes;
    else if (atomic_load_relaxed(&gc_pacer.heap_live) >= atomic_load_relaxed(&gc_pacer.trigger))
        aa->trigger = true;
    gc_sweep_credit(bytes);
    return (void *)s->base;
}

/* The tiny allocator (Go's): noscan objects under 16 bytes share a 16-byte
 * block, each at its size's natural alignment; the block dies when nothing
 * points into it. */
static void *alloc_tiny(mcache *c, size_t size, struct after_alloc *aa) {
    uintptr_t off = c->tinyoffset;
    if (!(size & 7))
        off = (off + 7) & ~(uintptr_t)7;
    else if (!(size & 3))
        off = (off + 3) & ~(uintptr_t)3;
    else if (!(size & 1))
        off = (off + 1) & ~(uintptr_t)1;
    if (off + size <= 16 && c->tiny) {
        c->tinyoffset = off + size;
        c->tiny_allocs++;
        return (void *)(c->tiny + off);
    }
    mspan *s;
    uintptr_t v = next_free(c, 2 << 1 | 1, &s, aa); /* class 2: 16 bytes, noscan */
    if (!v) return NULL;
    ((uint64_t *)v)[0] = ((uint64_t *)v)[1] = 0; /* a tiny block is always zeroed */
    mcache_count_malloc(c, 2);
    if (size < c->tinyoffset || !c->tiny) { /* keep whichever block has more room */
        c->tiny = v;
        c->tinyoffset = size;
    }
    return (void *)v;
}

/* size bytes of class sc (noscan or not), described by t (NULL noscan) as
 * nelem objects; the general small path. */
static void *alloc_small(mcache *c, size_t size, const gort_type *t, size_t nelem, unsigned sc,
                         struct after_alloc *aa) {
    bool noscan = t == NULL;
    mspan *s;
    uintptr_t v = next_free(c, sc << 1 | (noscan ? 1 : 0), &s, aa);
    if (!v) return NULL;
    mcache_count_malloc(c, sc);
    if (s->needzero) zero_words(v, s->elemsize);
    if (noscan) return (void *)v;
    if (s->heapbits) {
        uint64_t bits;
        if (t == &gc_conservative_type)
            bits = ~(uint64_t)0 >> (64 - (size + 7) / 8);
        else
            bits = array_bits(t, nelem, type_mask(t));
        gc_heapbits_set(s, v, bits);
        return (void *)v;
    }
    /* Over the heap-bits limit: the slot's type, kept in the span. */
    *span_slottype(s, span_obj_index(s, v)) = t;
    return (void *)v;
}

void *gc_alloc(size_t size, const gort_type *t, bool align16) {
    gc_init();
    gcthread *gt = gc_thread_self(); /* registers a foreign thread before it allocates */
    (void)gt;
    struct after_alloc aa = {false, 0, 0};
    void *p = NULL;
    if (size == 0) size = 1;
    cs_enter();
    mcache *c = mcache_get();
    if (!c) goto out;
    if (c->gc_flushgen != atomic_load_relaxed(&gc_state.flushgen)) gc_mcache_prepare(c);
    /* An object under 16 bytes cannot need 16-byte alignment (an object's
     * alignment divides its size), malloc's rule or not. */
    if (t == NULL && size < 16) {
        p = alloc_tiny(c, size, &aa);
        goto out;
    }
    size_t need = size; /* no header: the type goes in the span (alloc_small) */
    size_t nelem = t && t != &gc_conservative_type ? size / t->size : 1;
    if (need > MAX_SMALL_SIZE) {
        p = alloc_large(c, size, t, &aa);
        goto out;
    }
    unsigned sc;
    if (align16 && need > 8 && need <= SMALL_SIZE_MAX)
        sc = malloc_size_to_class8[(need + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
    else
        sc = size_to_class(need);
    p = alloc_small(c, size, t, nelem, sc, &aa);
out:
    if (__builtin_expect(aa.sample != 0, 0) && p) { /* heap profile: its span is still ours */
        mspan *s = span_of((uintptr_t)p);
        mprof_record(s, p, s->sizeclass ? s->elemsize : s->npages * PAGE_SIZE, aa.sample);
    }
    cs_exit();
    if (aa.trigger || aa.assist > 0) after(&aa);
    return p;
}

/* ---- the public entry points ---- */

/* The fast paths: the current span of the class has a slot in its
 * allocCache (not at a 64-slot boundary) and the mcache is not stale. Kept
 * small and leaf-like (measured with callgrind: the general path costs
 * about 200 instructions, these about 40); anything else falls to
 * gc_alloc, a tail call. */

__attribute__((noinline)) static void *new_slow(const gort_type *t) {
    if (!t) throw("gort_new: nil type");
    if (!t->ptrdata) return gc_alloc(t->size, NULL, false);
    return gc_alloc(t->size, t, false);
}

/* The end of a fast path when a stop-the-world was deferred meanwhile. */
__attribute__((noinline)) static void *suspend_then(void *v) {
    lock_suspend_now();
    return v;
}

/* Zeroes a slot of at most 512 bytes with plain stores, never a call to
 * memset (which would make the fast path save registers): from 64 bytes up
 * 16-byte SSE2 stores, below that word stores (volatile, so that the
 * compiler does not turn them into a memset call). */
static inline __attribute__((always_inline)) void zero_small(uintptr_t p, size_t n) {
#if defined(__SSE2__)
    /* Half the stores: a 256-byte slot's 32 word stores filled the store
     * buffer while its lines missed (allocfree 256 B noscan 34.0 -> 27.7 ns,
     * 64 B 13.2 -> 11.5 ns). The slot is 8-aligned: unaligned stores. */
    if (n >= 64) {
        size_t i = 0;
        __m128i z = _mm_setzero_si128();
        for (; i + 16 <= n; i += 16) _mm_storeu_si128((__m128i *)(p + i), z);
        if (i < n) *(volatile uint64_t *)(p + i) = 0;
        __asm__ __volatile__("" ::: "memory");
        return;
    }
#endif
    for (size_t i = 0; i < n; i += 8) *(volatile uint64_t *)(p + i) = 0;
}

/* The fast paths' fallbacks, entered inside the critical section: they end
 * it and take the general path. Every call the fast paths make is a tail
 * call, so that they save no register (measured: 9 + 9 instructions of
 * prologue and epilogue otherwise, a fifth of a fast allocation). */
__attribute__((noinline)) static void *new_slow_cs(const gort_type *t) {
    cs_exit();
    return new_slow(t);
}

__attribute__((noinline)) static void *noscan_slow_cs(size_t size) {
    cs_exit();
    return gc_alloc(size, NULL, true);
}

/* gort_new's object in a span not (yet) of its type's layout: its heap
 * bits, then the end of the critical section. */
__attribute__((noinline)) static void *new_bits_cs(mspan *s, uintptr_t v, const gort_type *t) {
    gc_heapbits_set(s, v, t->ptrmask);
    cs_exit();
    return (void *)v;
}

/* The fast path (both entry points): the current span of the class has a
 * slot in its allocCache, not at a 64-slot boundary, and the mcache is not
 * stale. */
#define FAST_SLOT(c, spc, sc, s, v, fail)                                                          \
    do {                                                                                           \
        s = (c)->alloc_gc[spc];                                                                    \
        uint64_t cache_ = s->alloccache;                                                           \
        unsigned fi_ = s->freeindex;                                                               \
        if (__builtin_expect(cache_ == 0 || (c)->gc_flushgen != gc_state.flushgen, 0)) fail;       \
        unsigned bit_ = (unsigned)__builtin_ctzll(cache_);                                         \
        unsigned idx_ = fi_ + bit_, next_ = idx_ + 1;                                              \
        if (__builtin_expect(next_ >= s->nelems || (next_ & 63) == 0, 0)) fail;                    \
        s->alloccache = cache_ >> (bit_ + 1); /* bit_ < 63, as next_ & 63 != 0 */                  \
        s->freeindex = (uint16_t)next_;                                                            \
        s->alloccount++;                                                                           \
        mcache_count_malloc((c), sc);                                                              \
        v = s->base + (uintptr_t)idx_ * s->elemsize;                                               \
    } while (0)

GORT_API void *gort_new(const gort_type *t) {
    if (__builtin_expect(t == NULL || t->has_ptrmask != 2, 0)) return new_slow(t);
    lock_depth++;
    __asm__ __volatile__("" ::: "memory");
    mcache *c = tls_mcache;
    unsigned sc = size_to_class8[(t->size + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
    mspan *s;
    uintptr_t v;
    FAST_SLOT(c, sc << 1, sc, s, v, return new_slow_cs(t));
    if (s->needzero) zero_small(v, s->elemsize);
    /* A span of this layout (mbitmap.c): no heap bits to write. */
    if (__builtin_expect(s->umask != t->ptrmask, 0)) return new_bits_cs(s, v, t);
    __asm__ __volatile__("" ::: "memory");
    if (__builtin_expect(--lock_depth == 0 && lock_suspend_pending, 0))
        return suspend_then((void *)v);
    return (void *)v;
}

/* Noscan objects of 16 to 512 bytes (smaller ones go to the tiny
 * allocator), with malloc's alignment (align16). */
GORT_API void *gort_alloc_noscan(size_t size) {
    if (__builtin_expect(size - 16 > GC_HEAPBITS_MAX - 16, 0)) return gc_alloc(size, NULL, true);
    lock_depth++;
    __asm__ __volatile__("" ::: "memory");
    mcache *c = tls_mcache;
    unsigned sc = malloc_size_to_class8[(size + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
    mspan *s;
    uintptr_t v;
    FAST_SLOT(c, sc << 1 | 1, sc, s, v, return noscan_slow_cs(size));
    if (s->needzero) zero_small(v, s->elemsize);
    __asm__ __volatile__("" ::: "memory");
    if (__builtin_expect(--lock_depth == 0 && lock_suspend_pending, 0))
        return suspend_then((void *)v);
    return (void *)v;
}

GORT_API void *gort_new_array(const gort_type *t, size_t n) {
    if (!t) throw("gort_new_array: nil type");
    size_t size;
    if (__builtin_mul_overflow(t->size, n, &size)) return NULL;
    if (n == 1) return gort_new(t);
    return gc_alloc(size, t->ptrdata ? t : NULL, false);
}

GORT_API void *gort_alloc_conservative(size_t size) {
    return gc_alloc(size, &gc_conservative_type, true);
}

/* ---- mcaches and the cycle ---- */

void gc_mcache_flush(mcache *c) {
    cs_enter();
    for (unsigned i = 2; i < NUM_SIZE_CLASSES * 2; i++) {
        mspan *s = c->alloc_gc[i];
        if (s != &empty_mspan) {
            c->alloc_gc[i] = &empty_mspan;
            gc_uncache_span(s);
        }
    }
    c->tiny = c->tinyoffset = 0;
    c->gc_flushgen = atomic_load_relaxed(&gc_state.flushgen);
    cs_exit();
}

void gc_mcache_prepare(mcache *c) {
    gc_mcache_flush(c);
}
