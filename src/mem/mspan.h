/* mspan: a run of pages carved into objects of one size class (Go's mspan).
 *
 * A span is of one kind for its whole life:
 * - SPAN_MALLOC: explicit memory (gort_malloc). Free objects are found, in
 *   order, on the local free list (objects freed by the owning thread), on
 *   tfree (a lock-free stack of objects freed by other threads, taken over in
 *   one atomic exchange), and in the never-used tail [freeindex, nelems)
 *   (bump allocation). The links of both lists are masked with the span's
 *   key (link ^ key, see "Free-list links" below), and malloc zeroes an
 *   object's first word as it hands it out, which is how double frees are
 *   caught without a per-object bit. The bitmaps are unused (a large span
 *   uses its first allocation bit).
 * - SPAN_GC: garbage-collected objects (Go's allocation path: allocCache over
 *   allocbits from freeindex, nextFreeFast). The GC's sweep will rebuild
 *   allocbits from markbits; objects in these spans are never freed by hand.
 * One kind per span keeps both fast paths free of the other's checks; the span
 * structure, size classes, central lists and page heap are shared
 * (docs/allocator.md explains the choice).
 *
 * Ownership of SPAN_MALLOC spans (mimalloc's thread-local heaps, on Go's
 * structures): a span belongs to at most one mcache (owner) from the moment it
 * is first cached until that mcache is flushed. The owner alone touches
 * freelist, freeindex, allocbits and the span's list links without atomics;
 * its frees into any span it owns are plain stores. An owned span is the
 * mcache's current span for its class, on the mcache's local partial list, or
 * parked on its local full list. Any thread may push onto tfree: a thread
 * gathers its frees into one span in a batch of its own (mcache.rfree, a
 * list linked as the local one) and pushes the whole batch with one CAS;
 * tfree counts the objects it holds, so the owner takes the stack and its
 * count in one exchange, without walking it (see "tfree" below). A parked
 * full span carries TFREE_NOTIFY in tfree: the remote free that clears it
 * hands the span home, onto its owner's ready stack (mcache.xready) or, if it
 * has no owner, onto the central partial list. Spans with no owner are on the
 * central partial list or parked (NOTIFY) in no list at all.
 *
 * Empty spans (no live object) do not go back to the page heap at once: the
 * owner keeps a few (ON_LOCAL_EMPTY) and hands the rest to the central's
 * empty list (ON_CENTRAL_EMPTY), where they wait a whole scavenger period
 * for reuse before mcentral_trim gives them to the heap (mcentral.c). An
 * empty span is reset as it is put aside (span_reset): its lists are
 * forgotten and allocation bumps from its first object again.
 *
 * Invariants: owner == NULL and on_list == ON_NONE implies TFREE_NOTIFY set;
 * TFREE_NOTIFY set implies the span was full when parked; allocated counts
 * the objects allocated and not yet freed locally or taken over from tfree,
 * so the span's live objects are allocated minus tfree's count (span_live),
 * and objects in another thread's pending batch still count as live: a
 * span is never given back while a batch holds some of its objects.
 *
 * tfree, one word: bit 0 TFREE_NOTIFY; bits 3-47 the address of the top
 * object (heap addresses fit in HEAP_ADDR_BITS = 48 bits and objects are
 * 8-aligned); bits 48-63 the number of objects on the stack (a span holds at
 * most MAX_OBJS_PER_SPAN). A push of a batch adds its length to the count
 * in the same CAS. The owner takes the stack only when its local list is
 * empty, so taking is one exchange: the stack becomes the local list and
 * the count comes off allocated. (The owner used to walk the stack to count
 * it and find its end, one cache miss per object: 11-15% of a cross-thread
 * workload's time.)
 *
 * Free-list links (explicit spans). A free object's first word holds the
 * next free object's address xor key, a per-span mask whose low 56 bits are
 * random and whose top byte is LINK_TOP (so is every link's, pointers'
 * being 0x00); an allocated object's
 * first word is the program's, but malloc clears its top byte. So a free
 * whose object's top byte is not LINK_TOP is of an allocated object; one
 * whose word decodes to NULL or into the span (link_plausible) is of a free
 * object or, with probability about 2^-46 for data a program could write
 * without reading freed memory, a coincidence: the owner then walks its
 * lists to know (see malloc.c). Measured against the allocation bitmap this
 * replaces (one bit set by malloc, tested and cleared by free): hot 16 B
 * pairs 4.9 -> 4.1 ns, FIFO 8.4 -> 6.6 ns; the bitmap's read-modify-writes
 * of one word formed a chain through memory from each call to the next. */
#ifndef GORT_MEM_MSPAN_H
#define GORT_MEM_MSPAN_H

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/sanitizer.h"
#include "mem/arena.h"
#include "mem/sizeclasses.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum span_state { SPAN_DEAD = 0, SPAN_IN_USE = 1 };
enum span_kind { SPAN_MALLOC = 0, SPAN_GC = 1 };

#define TFREE_NOTIFY      ((uintptr_t)1)
#define TFREE_COUNT_SHIFT 48
#define TFREE_PTR_MASK    ((((uintptr_t)1 << TFREE_COUNT_SHIFT) - 1) & ~(uintptr_t)7)
_Static_assert(HEAP_ADDR_BITS <= TFREE_COUNT_SHIFT, "tfree's count sits above heap addresses");
_Static_assert(MAX_OBJS_PER_SPAN < 1 << (64 - TFREE_COUNT_SHIFT), "tfree's count holds a span");

/* The parts of a tfree word (see the header). */
static inline uintptr_t tfree_head(uintptr_t w) {
    return w & TFREE_PTR_MASK;
}
static inline uint32_t tfree_count(uintptr_t w) {
    return (uint32_t)(w >> TFREE_COUNT_SHIFT);
}

enum span_list {
    ON_NONE = 0,
    ON_CENTRAL = 1,
    ON_LOCAL_PARTIAL = 2,
    ON_LOCAL_FULL = 3,
    ON_LOCAL_EMPTY = 4,   /* explicit, no live object, kept by its owner (mcache.empty) */
    ON_CENTRAL_EMPTY = 5, /* explicit, no live object, no owner, waiting for reuse or the heap */
};

struct mcache;
struct special;

typedef struct mspan {
    /* Line 0: everything malloc's and free's fast paths touch, so that a
     * free into a cold span misses once. */
    union {
        void *freelist;      /* explicit: owner-local free objects, linked through their
                                first word */
        uint64_t alloccache; /* GC: Go's allocCache, the complement of allocbits from
                                freeindex (in line 0: gort_new's fast path reads it) */
    };
    uintptr_t base;       /* address of the first object (page-aligned) */
    struct mcache *owner; /* the mcache owning this span (SPAN_MALLOC) or caching it (GC) */
    uintptr_t tfree;      /* atomic: count << 48 | remotely freed objects | TFREE_NOTIFY */
    uint32_t divmagic;    /* (off * divmagic) >> 32 == off / elemsize for off in the span */
    uint32_t elemsize;    /* object size; for large spans npages * PAGE_SIZE (0 if >= 4 GiB) */
    uint16_t freeindex;   /* first never-allocated slot (malloc) / Go's freeindex (gc) */
    uint16_t nelems;      /* objects in the span */
    union {
        uint16_t allocated;  /* SPAN_MALLOC: live objects (remote frees count once taken over) */
        uint16_t alloccount; /* SPAN_GC: objects allocated (Go's allocCount) */
    };
    uint8_t sizeclass;    /* 0 for large spans */
    uint8_t small_malloc; /* 1: in use, SPAN_MALLOC, sizeclass != 0: the free fast path */
    uint8_t kind;         /* enum span_kind */
    uint8_t state;        /* enum span_state */
    uint8_t on_list;      /* enum span_list */
    uint8_t needzero;     /* never-used slots may hold old data */
    uint32_t limit_off;   /* explicit small spans: freeindex * elemsize (free's check) */
    union {
        uintptr_t key;  /* explicit small spans: the mask of free-list links */
        uint64_t umask; /* GC heap-bit spans: nonzero, every object's pointer bits (the
                           span is of one layout and keeps no per-object bits); 0, the
                           bits at the span's end (mbitmap.c; in line 0: gort_new reads it) */
    };

    /* Cold: 62 bytes, so that the bitmaps start at byte 128 (a 16-byte
     * class span's record is then 256 bytes, Go's mspan and gcBits about
     * 290). What only some spans need lives elsewhere: a large object's
     * type in the bitmap words (span_largetype), gccheckmark's bits in a
     * side table (mcheckmark.c). */
    struct mspan *next, *prev;  /* the list named by on_list */
    struct mspan *xnext;        /* link on an mcache's ready stack */
    struct special *specials;   /* finalizers, weak handles, cleanups by offset (mfinal.c) */
    struct mprof_rec *profrecs; /* the heap profile's samples among its objects (msample.h) */
    uint32_t npages;            /* at most PAGEALLOC_MAX_PAGES */
    union {
        uint32_t retired;  /* explicit, ON_CENTRAL_EMPTY: the trim generation it was retired in */
        uint32_t sweepgen; /* GC: Go's protocol against gc_sweepgen (mgcsweep.c) */
    };
    uint32_t markgen;      /* GC: the mark phase fi_markstart belongs to (gc_markgen) */
    uint16_t fi_markstart; /* GC: freeindex when that mark phase first allocated here: the
                              slots handed out from there on are allocated black */
    uint8_t heapbits;      /* small scan objects: pointer bits at the span's end (mbitmap.h) */
    uint8_t hbfresh;       /* heap-bit span, no object allocated since it was made */
    uint8_t sweep_on;      /* on a GC central list: which (enum gc_span_list) */
    uint8_t xqueued;       /* atomic: on a ready stack (pushed at most once) */
    uint8_t noscan;        /* SPAN_GC: objects hold no pointers */
    uint8_t large_free;    /* large span parked free in an mcache's large cache */
    uint8_t reused;        /* explicit: reset at least once (span_reset), for messages */
    uint8_t recsize;       /* the record's size in 64-byte lines (mheap.c's record pools) */

    /* The span's bitmaps, as long as its object count needs (the record is
     * sized for them: mheap_alloc_span). Word pair w holds objects 64w to
     * 64w + 63: bits[2w] their allocation bits (Go's allocBits; large spans:
     * bit 0 set while the object is allocated), bits[2w + 1] their mark bits
     * (Go's gcmarkBits). Pairs, so that the pair the sweep and the mark read
     * together shares a line, and so that one index works whatever the
     * length. A GC scan span of a class over the heap-bits limit (at most 14
     * objects: one pair) keeps each slot's type in the words after its pair
     * (span_slottype; gc.h, "object layout"). Explicit small spans use none
     * of it (their record has one pair all the same). */
    uint64_t bits[];
} __attribute__((aligned(64))) mspan;

_Static_assert(__builtin_offsetof(mspan, bits) == 128, "the bitmaps start at line 2");

/* The most words of allocation (or mark) bits a span has. */
#define SPAN_BITMAP_WORDS_MAX (MAX_OBJS_PER_SPAN / 64)

/* Words of s's record past its fixed fields. */
static inline size_t span_bits_cap(const mspan *s) {
    return (s->recsize * (size_t)64 - offsetof(mspan, bits)) / 8;
}
/* Sanitizer builds check every bitmap index against the record: past its
 * end lies the next record. */
static inline size_t span_bits_check(const mspan *s, size_t i) {
#if GORT_HAVE_ASAN
    if (i >= span_bits_cap(s)) throw("mspan: a bitmap index past the span's record");
#else
    (void)s;
#endif
    return i;
}
/* The allocation and mark bits of objects 64w to 64w + 63. */
static inline uint64_t *span_allocbits(const mspan *s, size_t w) {
    return (uint64_t *)&s->bits[span_bits_check(s, 2 * w)];
}
static inline uint64_t *span_markbits(const mspan *s, size_t w) {
    return (uint64_t *)&s->bits[span_bits_check(s, 2 * w + 1)];
}
/* A large GC object's type word (mbitmap.h), in the word after the span's
 * one pair. */
static inline const void **span_largetype(const mspan *s) {
    return (const void **)&s->bits[span_bits_check(s, 2)];
}
/* The type of slot i of a scan span over the heap-bits limit. */
static inline const void **span_slottype(const mspan *s, size_t i) {
    return (const void **)&s->bits[span_bits_check(s, 2 + i)];
}
/* Bitmap words (pairs, plus slot types) a span of nelems >= 1 objects needs. */
static inline size_t span_bits_words(size_t nelems, size_t slot_words) {
    return 2 * ((nelems + 63) / 64) + slot_words;
}
/* Cache lines of a record with that many bitmap words (a constant
 * expression for a constant argument: mheap.c sizes its pools with it). */
#define SPAN_REC_LINES_FOR(words) ((offsetof(mspan, bits) + (words)*8 + 63) / 64)

_Static_assert(__builtin_offsetof(mspan, key) == 56, "the fast paths' fields share line 0");

/* Pages of an explicit-memory span: a whole multiple of Go's span for the
 * class (so the same tail-waste ratio) holding at least MALLOC_SPAN_MIN_OBJS
 * objects, at most MALLOC_SPAN_MAX_PAGES pages. Go's spans hold as few as one
 * to sixteen objects in the larger classes; with explicit frees scattered over
 * many spans, malloc would then switch spans every few calls (measured on the
 * FIFO and random-slots patterns: 16 objects 12.2 and 123 ns, 128 objects 8.5
 * and 86 ns, with the same peak RSS). The multiple also keeps Go's division
 * magic exact: with M = divmagic and e = M * size - 2^32 (0 < e < size),
 * (off * M) >> 32 == off / size, and the low half's divisibility test, hold
 * for every off with off * e < 2^32 (tests/test_malloc.c checks every
 * offset of every class). */
#define MALLOC_SPAN_MIN_OBJS  128
#define MALLOC_SPAN_MAX_PAGES 32
static inline size_t malloc_span_pages(unsigned sc) {
    size_t np = class_to_allocnpages[sc], n = class_to_nelems[sc];
    uint64_t e = (uint64_t)class_to_divmagic[sc] * class_to_size[sc] - ((uint64_t)1 << 32);
    size_t k = (MALLOC_SPAN_MIN_OBJS + n - 1) / n;
    while (k > 1 && (np * k > MALLOC_SPAN_MAX_PAGES ||
                     (uint64_t)(np * k * PAGE_SIZE) * e >= ((uint64_t)1 << 32)))
        k--;
    return np * k;
}

/* Free-list links (see the header). */
static inline uintptr_t link_encode(const mspan *s, const void *next) {
    return (uintptr_t)next ^ s->key;
}
static inline void *link_decode(const mspan *s, uintptr_t w) {
    return (void *)(w ^ s->key);
}
/* The top byte of an object's first word (x86_64 is little-endian): every
 * link has LINK_TOP there, and malloc clears it, so a one-byte compare
 * screens a free before the whole word is looked at. */
static inline uint8_t link_top(const void *obj) {
    return ((const uint8_t *)obj)[sizeof(uintptr_t) - 1];
}
/* Every key's top byte (mheap.c's span_key): a constant, so the screen is
 * one compare with an immediate. Bit 7 set, and neither 0x00 nor 0xff (the
 * top bytes of pointers and of small negative numbers). */
#define LINK_TOP 0xa5
static inline void link_clear_top(void *obj) {
    ((uint8_t *)obj)[sizeof(uintptr_t) - 1] = 0;
}
/* Whether w, an object's first word, may be a free-list link of s. */
static inline bool link_plausible(const mspan *s, uintptr_t w) {
    uintptr_t d = w ^ s->key;
    return d == 0 || d - s->base < (uintptr_t)MALLOC_SPAN_MAX_PAGES * PAGE_SIZE;
}

/* Live objects of explicit span s: allocated less the remote frees waiting
 * in tfree (owner or list-lock holder; a racy read errs high, never low,
 * since tfree's count only grows until the owner takes it). */
static inline uint32_t span_live(mspan *s) {
    return s->allocated - tfree_count(atomic_load_acq(&s->tfree));
}

static inline uint32_t span_obj_index(const mspan *s, uintptr_t p) {
    return (uint32_t)(((uint64_t)(p - s->base) * s->divmagic) >> 32);
}

/* One multiplication gives both the object index (high half) and whether p is
 * an object's start (low half below divmagic: Lemire's divisibility test,
 * exact for every offset of every span, checked exhaustively by
 * tests/test_malloc.c's divmagic case). */
static inline uint64_t span_obj_prod(const mspan *s, uintptr_t p) {
    return (uint64_t)(p - s->base) * s->divmagic;
}

static inline uintptr_t span_limit(const mspan *s) {
    return s->base + s->npages * PAGE_SIZE;
}

/* The object containing p, or 0 if p is not inside an object of s. */
static inline uintptr_t span_obj_base(const mspan *s, uintptr_t p) {
    if (s->sizeclass == 0) return s->base;
    uint32_t i = span_obj_index(s, p);
    if (i >= s->nelems) return 0;
    return s->base + (uintptr_t)i * s->elemsize;
}

#endif
