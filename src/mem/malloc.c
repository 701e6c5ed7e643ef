/* The malloc family and Go's mallocgc (Go's malloc.go).
 *
 * Allocating a small object proceeds up a hierarchy of caches, as in Go:
 *   1. Round the size up to a size class and look at the thread's mcache's
 *      span for that class. Pop its local free list: no locks, no atomics.
 *      (Fast path: about 15 instructions; the cost is one TLS load, two table
 *      loads, the pop, which unmasks the link (mspan.h), and zeroing the
 *      object's first word.)
 *   2. Otherwise take over the objects other threads freed to the span (one
 *      atomic exchange), or bump-allocate from its never-used tail (a leaf
 *      function of its own, malloc_bump: fresh and reset spans serve most
 *      of their objects this way).
 *   3. Otherwise park the span and take another with free objects: one of
 *      the mcache's partial spans, one of its empty ones, its mcentral's
 *      (partial, then empty), or fresh pages from mheap.
 * Large objects (> 32 KiB) get a span of their own from the page heap; freed
 * ones up to 256 KiB are kept in a small per-thread cache for reuse.
 *
 * Freeing finds the span in O(1) through the arena index, turns the pointer
 * into an object index by multiplication (divmagic), and checks it: not in
 * gort's heap, interior, never handed out, already free, or a GC object are
 * all fatal errors naming the pointer. "Already free" is seen in the
 * object's first word: a free object's holds a masked link (mspan.h), an
 * allocated one's does not. When the word looks like a link, the owner
 * makes sure by walking its span's free lists (so a program's data that
 * happens to look like one costs a walk, never a false error); another
 * thread cannot walk the owner's list and takes the look as proof (false
 * with probability about 2^-46). The owning thread pushes onto its local
 * free list; any other thread onto a batch of its own for the span, which
 * goes onto the span's lock-free tfree stack with one CAS (mcache.h).
 *
 * Under LD_PRELOAD with a C++ compiler (GORT_PRELOAD_CXX), C++'s operator
 * new and delete are here too, at the end (malloc_new.cc has the rest).
 *
 * Zeroing: memory fresh from the OS is zero; spans record needzero, so calloc
 * and mallocgc clear only what may hold old data. */
#include "mem/malloc.h"
#include "base/atomic.h"
#include "base/fatal.h"
#include "gort/malloc.h"
#include "mem/mcache.h"
#include "mem/mcentral.h"
#include "mem/mheap.h"
#include "mem/msample.h"
#include "mem/scavenge.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

/* Under LD_PRELOAD, C's malloc must set errno to ENOMEM on failure; the gort_
 * API never touches errno. Only slow paths can fail, so only they pay. */
#ifdef GORT_PRELOAD
#define OOM(p) ((p) ? (p) : (errno = ENOMEM, (void *)NULL))
#else
#define OOM(p) (p)
#endif

/* The class for the C malloc family: Go's, except that requests over 8 bytes
 * get 16-aligned objects (max_align_t), so 17..24 bytes use the 32-byte class. */
static inline unsigned malloc_class_of(size_t n) {
    if (likely(n <= SMALL_SIZE_MAX))
        return malloc_size_to_class8[(n + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
    return size_to_class128[(n - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) / LARGE_SIZE_DIV];
}

/* Takes p, the first object of explicit span s's local free list, clearing
 * its first word's top byte: a free can then tell it from a free object. */
static inline __attribute__((always_inline)) void *take_local(mspan *s, void *p) {
    s->freelist = link_decode(s, *(uintptr_t *)p);
    link_clear_top(p);
    return p;
}
/* The same, counting it allocated. */
static inline __attribute__((always_inline)) void *pop_local(mspan *s, void *p) {
    s->allocated++;
    return take_local(s, p);
}

/* Whether object p of explicit span s is on its free lists: the local list,
 * tfree and the remote threads' pending batches (the owner only: nobody
 * else may walk them). Bounded: a list of a span has at most nelems
 * objects; a link that leaves the span ends the walk. */
static bool on_free_lists(mspan *s, uintptr_t p) {
    uintptr_t lists[2] = {(uintptr_t)s->freelist, tfree_head(atomic_load_acq(&s->tfree))};
    for (int k = 0; k < 2; k++) {
        uintptr_t q = lists[k];
        for (uint32_t n = 0; q && n <= s->nelems; n++) {
            if (q == p) return true;
            if (q - s->base >= (uintptr_t)s->nelems * s->elemsize) break;
            q = (uintptr_t)link_decode(s, *(uintptr_t *)q);
        }
    }
    return mcache_rfree_holds(s, p);
}

size_t malloc_roundup(size_t n) {
    if (n <= MAX_SMALL_SIZE) return class_to_size[malloc_class_of(n ? n : 1)];
    if (n > SIZE_MAX - PAGE_SIZE) return n;
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

/* ---- Misuse. Each message names the pointer; all exit with status 2. ---- */

__attribute__((noreturn, cold, noinline)) static void bad_pointer(const char *fn, uintptr_t p,
                                                                  mspan *s) {
    if (!arena_of(p)) throwf("%s: %p was not allocated by gort", fn, (void *)p);
    if (!s || s->state != SPAN_IN_USE)
        throwf("%s: %p is not an allocated object (double free, or never allocated)", fn,
               (void *)p);
    if (s->kind == SPAN_GC)
        throwf("%s: %p is a garbage-collected object (GC objects are never freed by hand)", fn,
               (void *)p);
    uintptr_t obj = span_obj_base(s, p);
    if (obj != p || (s->sizeclass && span_obj_index(s, p) >= s->nelems)) {
        if (obj && obj != p)
            throwf("%s: %p is an interior pointer (object %p of %u bytes)", fn, (void *)p,
                   (void *)obj, s->elemsize);
        throwf("%s: %p is not an allocated object (never allocated)", fn, (void *)p);
    }
    /* Slots at or past freeindex were never handed out (racy read: only a
     * message depends on it). */
    if (s->sizeclass && span_obj_index(s, p) >= atomic_load_relaxed(&s->freeindex)) {
        if (s->reused) /* reset since (span_reset): freed then, or never allocated */
            throwf("%s: %p is not an allocated object (double free, or never allocated)", fn,
                   (void *)p);
        throwf("%s: %p is not an allocated object (never allocated)", fn, (void *)p);
    }
    if (fn[5] != 'f') /* gort_realloc, gort_usable_size */
        throwf("%s: %p is not an allocated object (already freed)", fn, (void *)p);
    throwf("%s: double free of %p", fn, (void *)p);
}

/* Validates p as a live explicit object; returns its span. */
static mspan *check_live(const char *fn, uintptr_t p) {
    mspan *s = span_of(p);
    if (unlikely(!s || s->state != SPAN_IN_USE || s->kind != SPAN_MALLOC)) bad_pointer(fn, p, s);
    if (s->sizeclass) {
        uint32_t i = span_obj_index(s, p);
        if (unlikely(s->base + (uintptr_t)i * s->elemsize != p || i >= s->nelems ||
                     i >= atomic_load_relaxed(&s->freeindex)))
            bad_pointer(fn, p, s);
        if (unlikely(link_plausible(s, *(uintptr_t *)p))) {
            bool owner = atomic_load_relaxed(&s->owner) == mcache_get();
            if (!owner || on_free_lists(s, p)) bad_pointer(fn, p, s);
        }
    } else if (unlikely(p != s->base || !(atomic_load_relaxed(span_allocbits(s, 0)) & 1))) {
        bad_pointer(fn, p, s);
    }
    return s;
}

/* ---- Small objects. ---- */

/* Next free object of explicit span s after its local free list ran dry:
 * remote frees first (their memory is warm), then the never-used tail.
 * *zeroed tells whether the object is known to be zero. */
static void *span_refill_object(mspan *s, bool *zeroed) {
    if (atomic_load_relaxed(&s->tfree)) {
        span_collect_tfree(s); /* one exchange: the local list is empty */
        void *p = s->freelist;
        if (p) {
            *zeroed = false;
            return take_local(s, p);
        }
    }
    if (s->freeindex < s->nelems) {
        void *p = (void *)(s->base + s->limit_off);
        s->freeindex++;
        s->limit_off += s->elemsize;
        *zeroed = !s->needzero;
        if (s->needzero) link_clear_top(p); /* old data must not look like a link */
        return p;
    }
    return NULL;
}

__attribute__((noinline)) static void *malloc_small_slow(unsigned sc, bool *zeroed) {
    if (sc == 0) sc = 1; /* malloc(0): a unique, freeable pointer, as glibc's */
    mcache *c = mcache_get();
    if (unlikely(!c)) return OOM(NULL);
    uint64_t sample = mprof_charge(c, sc, class_to_size[sc]); /* heap profile (msample.h) */
    for (;;) {
        mspan *s = c->alloc[sc];
        void *p = s->freelist;
        if (p) {
            pop_local(s, p);
            *zeroed = false;
        } else {
            p = span_refill_object(s, zeroed);
            if (p) s->allocated++;
        }
        if (p) {
            mcache_count_malloc(c, sc);
            if (unlikely(sample)) {
                /* Its frees must take the slow path (mprof_free), not the
                 * last-object shortcut, should p still be c->last. */
                if (c->last == p) c->last = MCACHE_NO_LAST;
                mprof_record(s, p, class_to_size[sc], sample);
            }
            return p;
        }
        if (!mcache_refill_malloc(c, sc)) return OOM(NULL);
    }
}

/* ---- Large objects. ---- */

static void *malloc_large(size_t n, size_t align, bool *zeroed) {
    if (n > ((size_t)1 << HEAP_ADDR_BITS)) return OOM(NULL);
    size_t npages = (n + PAGE_SIZE - 1) >> PAGE_SHIFT;
    mcache *c = mcache_get();
    if (unlikely(!c)) return OOM(NULL);
    uint64_t sample = mprof_charge(c, 0, npages * PAGE_SIZE); /* heap profile (msample.h) */
    if (align <= PAGE_SIZE && npages <= LARGE_CACHE_MAX_PAGES) {
        for (int i = 0; i < LARGE_CACHE_SLOTS; i++) {
            mspan *s = c->large_cache[i];
            if (s && s->npages == npages) {
                c->large_cache[i] = NULL;
                s->large_free = 0;
                atomic_store_rel(span_allocbits(s, 0), 1);
                *zeroed = false;
                c->large_nmalloc++;
                c->large_alloc_bytes += npages * PAGE_SIZE;
                if (unlikely(sample)) mprof_record(s, (void *)s->base, npages * PAGE_SIZE, sample);
                return (void *)s->base;
            }
        }
    }
    mcache_tick(c);
    size_t extra = align > PAGE_SIZE ? (align >> PAGE_SHIFT) - 1 : 0;
    mspan *s = mheap_alloc_span(npages + extra, 0, SPAN_MALLOC, true, 0);
    if (!s) return OOM(NULL);
    if (extra) {
        uintptr_t aligned = (s->base + align - 1) & ~(uintptr_t)(align - 1);
        mheap_trim_span_front(s, (aligned - s->base) >> PAGE_SHIFT);
        mheap_trim_span_back(s, s->npages - npages);
    }
    *zeroed = !s->needzero;
    atomic_store_rel(span_allocbits(s, 0), 1);
    c->large_nmalloc++;
    c->large_alloc_bytes += npages * PAGE_SIZE;
    if (unlikely(sample)) mprof_record(s, (void *)s->base, npages * PAGE_SIZE, sample);
    return (void *)s->base;
}

/* malloc's next object when the current span's local list is empty: the
 * never-used tail of a span (fresh, or reset: mcentral.h's span_reset)
 * serves this path's common case without the slow path's frame; remote
 * frees waiting in tfree, and a dry span, go to the slow path. */
__attribute__((noinline)) static void *malloc_small_slow_nz(unsigned sc);
__attribute__((noinline)) static void *malloc_bump(mcache *c, mspan *s, unsigned sc) {
    if (unlikely(s->freeindex >= s->nelems || atomic_load_relaxed(&s->tfree)))
        return malloc_small_slow_nz(sc);
    /* The heap profile charges a bump allocation at once, as Go's fast path
     * charges every allocation: charged in bulk at the next slow path, a
     * leak's fresh spans made each sample count the points its charge
     * crossed, which Go's unbiasing (1 / (1 - e^(-size/rate))) then
     * overcounted by up to 13% for objects near the rate (msample.h). The
     * allocation that reaches the point goes to the slow path, which
     * charges it and samples it. */
    int64_t left = c->next_sample - (int64_t)s->elemsize;
    if (unlikely(left <= 0)) return malloc_small_slow_nz(sc);
    c->next_sample = left;
    c->prof_seen[sc]++; /* charged: the slow path's count since its last visit skips it */
    void *p = (void *)(s->base + s->limit_off);
    s->freeindex++;
    s->limit_off += s->elemsize;
    s->allocated++;
    mcache_count_malloc(c, sc);
    if (s->needzero) link_clear_top(p); /* old data must not look like a link */
    return p;
}

/* malloc's slow path, as a tail call with no out-parameter (so that the fast
 * path needs no stack frame of its own). */
__attribute__((noinline)) static void *malloc_small_slow_nz(unsigned sc) {
    bool z;
    return malloc_small_slow(sc, &z);
}

__attribute__((noinline)) static void *malloc_large_nz(size_t n) {
    bool z;
    return malloc_large(n, 0, &z);
}

static void free_large(mspan *s, uintptr_t p) {
    if (unlikely(p != s->base)) bad_pointer("gort_free", p, s);
    /* An atomic clear makes even racing double frees of one object fatal. */
    if (unlikely(!(atomic_and(span_allocbits(s, 0), ~(uint64_t)1) & 1)))
        bad_pointer("gort_free", p, s);
    size_t bytes = s->npages * PAGE_SIZE;
    mcache *c = mcache_get();
    if (c) {
        c->large_nfree++;
        c->large_free_bytes += bytes;
        if (s->npages <= LARGE_CACHE_MAX_PAGES) {
            s->large_free = 1;
            for (int i = 0; i < LARGE_CACHE_SLOTS; i++) {
                if (!c->large_cache[i]) {
                    c->large_cache[i] = s;
                    return;
                }
            }
            /* Full: make room by evicting the first slot (oldest on average). */
            mspan *old = c->large_cache[0];
            memmove(&c->large_cache[0], &c->large_cache[1],
                    (LARGE_CACHE_SLOTS - 1) * sizeof(mspan *));
            c->large_cache[LARGE_CACHE_SLOTS - 1] = s;
            mheap_free_span(old);
            return;
        }
    }
    mheap_free_span(s);
}

/* ---- Frees from a thread that does not own the span. ---- */

/* A thread without an mcache (the OS refused one): push p alone. */
static void free_remote_one(mspan *s, uintptr_t p) {
    uintptr_t w = atomic_load_relaxed(&s->tfree), nw;
    do {
        *(uintptr_t *)p = link_encode(s, (void *)tfree_head(w));
        nw = (uintptr_t)(tfree_count(w) + 1) << TFREE_COUNT_SHIFT | p;
    } while (!atomic_cas(&s->tfree, &w, nw));
    if (w & TFREE_NOTIFY) span_notify(s);
}

/* free_remote's rare cases, out of line so that its common case saves no
 * registers: p starts a new batch (after pushing the class's previous one),
 * or the thread has no mcache yet. */
__attribute__((noinline)) static void free_remote_start(mcache *c, mspan *s, uintptr_t p) {
    if (c == &empty_mcache && !(c = mcache_get())) return free_remote_one(s, p);
    unsigned sc = s->sizeclass;
    struct rfree_batch *b = &c->rfree[sc];
    c->nfree[sc]++;
    if (b->span) mcache_rfree_flush(c, sc);
    /* Batches of classes this thread no longer frees into must not wait
     * for ever: every RFREE_FLUSH_BATCHES new batches, push them all. */
    if (++c->rfree_ops >= RFREE_FLUSH_BATCHES) mcache_rfree_flush_all(c);
    *(uintptr_t *)p = link_encode(s, NULL);
    b->tail = (void *)p;
    atomic_store_rel(&b->head, (void *)p);
    b->n = 1;
    atomic_store_rel(&b->span, s);
    c->rfree_mask[sc / 64] |= (uint64_t)1 << (sc % 64);
}

/* A free from a thread that does not own the span: into this thread's
 * batch for the span (mcache.h), a plain push as the owner's own; one CAS
 * per batch, when it is pushed onto tfree. The link is masked as tfree's,
 * so freeing p again is caught by the check below. */
__attribute__((noinline)) static void free_remote(mcache *c, mspan *s, uintptr_t p, uint32_t i) {
    /* The allocating thread handed the object out (freeindex past it, the
     * top byte of its first word cleared) before the pointer could reach
     * us; a first word that looks like a link means it is free again (we
     * cannot walk the owner's list: see the header). */
    if (unlikely(i >= atomic_load_relaxed(&s->freeindex) || link_plausible(s, *(uintptr_t *)p)))
        bad_pointer("gort_free", p, s);
    unsigned sc = s->sizeclass;
    struct rfree_batch *b = &c->rfree[sc]; /* empty_mcache's are all NULL */
    if (unlikely(b->span != s)) return free_remote_start(c, s, p);
    c->nfree[sc]++;
    *(uintptr_t *)p = link_encode(s, b->head);
    atomic_store_rel(&b->head, (void *)p);
    if (unlikely(++b->n == s->nelems)) return mcache_rfree_flush(c, sc);
}

/* The owner's free of a checked object of one of its spans. */
static inline __attribute__((always_inline)) void free_owner(mcache *c, mspan *s, void *ptr) {
    *(uintptr_t *)ptr = link_encode(s, s->freelist);
    s->freelist = ptr;
    /* Not counted (memstats derives local frees from the spans): a counter
     * indexed by the span's class is a store whose address waits on two
     * loads, and later loads then wait on it (measured: 0.3 ns of a 4.6 ns
     * hot pair, 0.3 of a 7.2 ns FIFO pair). */
    /* No branch on "is this the current span": in a FIFO pattern it is a
     * coin toss (measured: 45% mispredicted). Only the rare events branch. */
    if (unlikely(--s->allocated == 0 || s->on_list == ON_LOCAL_FULL)) mcache_owned_span_freed(c, s);
}

/* The owner's free of ptr looked wrong: never handed out, or its first word
 * may be a link. Fatal if ptr is indeed free; else a program's data that
 * looked like a link: free it. (A tail call from gort_free, so that the fast
 * path saves no registers for it.) */
__attribute__((noinline, cold)) static void free_owner_checked(mcache *c, mspan *s, void *ptr) {
    uintptr_t p = (uintptr_t)ptr;
    if (span_obj_index(s, p) >= s->freeindex ||
        (link_plausible(s, *(uintptr_t *)p) && on_free_lists(s, p)))
        bad_pointer("gort_free", p, s);
    free_owner(c, s, ptr);
}

/* The free of a small object of explicit span s (gort_free, and its slow
 * path for a span with heap-profile samples). */
static inline __attribute__((always_inline)) void free_small(mcache *c, mspan *s, void *ptr) {
    uintptr_t p = (uintptr_t)ptr;
    uintptr_t off = p - s->base;
    if (unlikely((uint32_t)(off * s->divmagic) >= s->divmagic)) /* interior: Lemire's test */
        bad_pointer("gort_free", p, s);
    if (likely(s->owner == c)) {
        /* Never handed out: at or past the bump pointer. Then the top byte
         * only: a one-byte load always forwards from the last store to that
         * byte, where a word load after a program's narrower store to the
         * object stalls (measured: 1.2 ns of a 5 ns hot pair). */
        if (unlikely(off >= s->limit_off || link_top(ptr) == LINK_TOP))
            return free_owner_checked(c, s, ptr);
        free_owner(c, s, ptr);
        return;
    }
    free_remote(c, s, p, span_obj_index(s, p));
}

__attribute__((noinline)) static void free_slow(uintptr_t p, mspan *s) {
    if (!p) return;
    if (!s && malloc_direct_free(p)) return;
    if (!s || s->state != SPAN_IN_USE || s->kind != SPAN_MALLOC) bad_pointer("gort_free", p, s);
    /* A span with heap-profile samples (msample.h): every free comes here. */
    if (unlikely(s->profrecs != NULL)) mprof_free(s, (void *)p);
    if (s->sizeclass) return free_small(tls_mcache, s, (void *)p);
    free_large(s, p);
}

/* ---- Public API. ---- */

/* malloc's fast path, shared with C++'s operator new (cxx: a constant):
 * the two differ only in their tails, which new may not let return NULL. */
static void *cxx_new_large(size_t n);
static void *cxx_new_bump(mcache *c, mspan *s, unsigned sc, size_t n);
static inline __attribute__((always_inline)) void *malloc_fast(size_t n, bool cxx) {
    unsigned sc;
    /* Up to 1 KiB, one compare and one table load (malloc_class_of tests
     * both limits in turn). */
    if (likely(n <= SMALL_SIZE_MAX))
        sc = malloc_size_to_class8[(n + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
    else if (n <= MAX_SMALL_SIZE)
        sc = size_to_class128[(n - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) / LARGE_SIZE_DIV];
    else
        return cxx ? cxx_new_large(n) : malloc_large_nz(n);
    mcache *c = tls_mcache;
    mspan *s = c->alloc[sc];
    void *p = s->freelist;
    if (likely(p != NULL)) {
        c->last = p;
        c->last_span = s;
        pop_local(s, p);
        mcache_count_malloc(c, sc); /* after the span's count */
        return p;
    }
    return cxx ? cxx_new_bump(c, s, sc, n) : malloc_bump(c, s, sc);
}

GORT_API void *gort_malloc(size_t n) {
    return malloc_fast(n, false);
}

GORT_API void gort_free(void *ptr) {
    uintptr_t p = (uintptr_t)ptr;
    mcache *c = tls_mcache;
    /* The object the last fast malloc returned (a malloc-then-free loop):
     * live and of a span we own, unless another thread freed it meanwhile,
     * which leaves a link's top byte. Its span comes from the cache, whose
     * address the next malloc's load of the span's list can be matched to
     * at once; the span lookup's, known only after a load that depends on
     * p, measured 4.4 against 4.1 ns per hot pair. */
    if (ptr == c->last && link_top(ptr) != LINK_TOP) {
        c->last = MCACHE_NO_LAST;
        free_owner(c, c->last_span, ptr);
        return;
    }
    /* One load from p to the span (the flat page map): the store to
     * s->freelist below waits on it, so it is the critical path of a hot
     * malloc/free pair (two dependent loads measured twice the time). */
    mspan *s = span_of(p);
    if (unlikely(!s || !s->small_malloc)) return free_slow(p, s);
    free_small(c, s, ptr);
}

GORT_API void *gort_calloc(size_t count, size_t size) {
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) return OOM(NULL);
    bool zeroed = false;
    void *p;
    if (n <= MAX_SMALL_SIZE) {
        unsigned sc = malloc_class_of(n);
        mcache *c = tls_mcache;
        mspan *s = c->alloc[sc];
        p = s->freelist;
        if (p) {
            pop_local(s, p);
            mcache_count_malloc(c, sc);
        } else {
            p = malloc_small_slow(sc, &zeroed);
        }
    } else {
        p = malloc_large(n, 0, &zeroed);
    }
    if (p && !zeroed) memset(p, 0, n);
    return p;
}

GORT_API size_t gort_usable_size(const void *ptr) {
    if (!ptr) return 0;
    size_t direct = span_of((uintptr_t)ptr) ? 0 : malloc_direct_size((uintptr_t)ptr);
    if (direct) return direct;
    mspan *s = check_live("gort_usable_size", (uintptr_t)ptr);
    return s->sizeclass ? s->elemsize : s->npages * PAGE_SIZE;
}

GORT_API void *gort_realloc(void *ptr, size_t n) {
    if (!ptr) return gort_malloc(n);
    if (n == 0) { /* glibc's behaviour: free and return NULL */
        gort_free(ptr);
        return NULL;
    }
    size_t have = span_of((uintptr_t)ptr) ? 0 : malloc_direct_size((uintptr_t)ptr);
    if (!have) {
        mspan *s = check_live("gort_realloc", (uintptr_t)ptr);
        have = s->sizeclass ? s->elemsize : s->npages * PAGE_SIZE;
    }
    /* Stay in place when the block fits and would not waste over half of it. */
    if (n <= have && (n > have / 2 || have <= 16)) return ptr;
    void *q = gort_malloc(n);
    if (!q) return NULL;
    memcpy(q, ptr, n < have ? n : have);
    gort_free(ptr);
    return q;
}

static void *malloc_class(unsigned sc) {
    mcache *c = tls_mcache;
    mspan *s = c->alloc[sc];
    void *p = s->freelist;
    if (p) {
        pop_local(s, p);
        mcache_count_malloc(c, sc);
        return p;
    }
    bool z;
    return malloc_small_slow(sc, &z);
}

GORT_API int gort_posix_memalign(void **out, size_t align, size_t n) {
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p;
    if (align > MALLOC_DIRECT_ALIGN) {
        p = malloc_direct(n, align); /* not the heap: see malloc_direct.c */
    } else if (align <= 8) {
        p = gort_malloc(n); /* every object is 8-aligned */
    } else if (align <= PAGE_SIZE && n <= MAX_SMALL_SIZE) {
        /* Spans are page-aligned, so a class whose size is a multiple of align
         * gives aligned objects; power-of-two classes exist up to 8 KiB. */
        unsigned sc = malloc_class_of(n < align ? align : n);
        while (sc < NUM_SIZE_CLASSES && class_to_size[sc] % align) sc++;
        if (sc < NUM_SIZE_CLASSES) {
            p = malloc_class(sc);
        } else {
            bool z;
            p = malloc_large(n, align, &z);
        }
    } else {
        bool z;
        p = malloc_large(n ? n : 1, align, &z);
    }
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

GORT_API void *gort_aligned_alloc(size_t align, size_t n) {
    void *p;
    if (align == 0 || (align & (align - 1))) return NULL;
    if (align < sizeof(void *)) align = sizeof(void *);
    return gort_posix_memalign(&p, align, n) == 0 ? p : NULL;
}

#ifdef GORT_PRELOAD
/* The two hottest entry points are aliases, not wrappers: no extra call. */
#define EXPORT __attribute__((visibility("default")))
EXPORT void *malloc(size_t n) __attribute__((alias("gort_malloc")));
EXPORT void free(void *p) __attribute__((alias("gort_free")));
EXPORT void *calloc(size_t count, size_t size) __attribute__((alias("gort_calloc")));
#endif

#ifdef GORT_PRELOAD_CXX
/* C++'s hottest operators, under their Itanium C++ ABI names (the others
 * are in malloc_new.cc, which says why and how they fail): new and new[]
 * run malloc's fast path inline, and a NULL from gort goes to
 * cxx_new_retry, which throws std::bad_alloc the standard's way. Every
 * delete is free: same arguments first, a size or an alignment after
 * (ignored: the span knows). */
__attribute__((noinline)) static void *cxx_new_large(size_t n) {
    void *p = malloc_large_nz(n);
    return likely(p != NULL) ? p : cxx_new_retry(n);
}
__attribute__((noinline)) static void *cxx_new_bump(mcache *c, mspan *s, unsigned sc, size_t n) {
    void *p = malloc_bump(c, s, sc);
    return likely(p != NULL) ? p : cxx_new_retry(n);
}
EXPORT void *_Znwm(size_t n) { /* operator new(size_t) */
    return malloc_fast(n, true);
}
EXPORT void *_Znam(size_t n) __attribute__((alias("_Znwm"))); /* operator new[](size_t) */
#define CXX_DELETE(name) EXPORT void name(void *p) __attribute__((alias("gort_free")))
CXX_DELETE(_ZdlPv);                /* delete(void *) */
CXX_DELETE(_ZdaPv);                /* delete[](void *) */
CXX_DELETE(_ZdlPvRKSt9nothrow_t);  /* delete(void *, const nothrow_t &) */
CXX_DELETE(_ZdaPvRKSt9nothrow_t);  /* delete[](void *, const nothrow_t &) */
CXX_DELETE(_ZdlPvm);               /* delete(void *, size_t) */
CXX_DELETE(_ZdaPvm);               /* delete[](void *, size_t) */
CXX_DELETE(_ZdlPvSt11align_val_t); /* delete(void *, align_val_t) */
CXX_DELETE(_ZdaPvSt11align_val_t); /* delete[](void *, align_val_t) */
CXX_DELETE(
    _ZdlPvSt11align_val_tRKSt9nothrow_t); /* delete(void *, align_val_t, const nothrow_t &) */
CXX_DELETE(
    _ZdaPvSt11align_val_tRKSt9nothrow_t); /* delete[](void *, align_val_t, const nothrow_t &) */
CXX_DELETE(_ZdlPvmSt11align_val_t);       /* delete(void *, size_t, align_val_t) */
CXX_DELETE(_ZdaPvmSt11align_val_t);       /* delete[](void *, size_t, align_val_t) */
#else
/* Never called (no C++ operators without a C++ compiler); they keep
 * malloc_fast's tails defined. */
static void *cxx_new_large(size_t n) {
    return malloc_large_nz(n);
}
static void *cxx_new_bump(mcache *c, mspan *s, unsigned sc, size_t n) {
    (void)n;
    return malloc_bump(c, s, sc);
}
#endif
