/* mcache: a per-thread cache of spans, one per size class (Go's mcache.go).
 *
 * tls_mcache is the cache the calling thread allocates from: while the
 * thread holds a P it is the P's cache (mcache_new; acquirep sets it and
 * releasep and gort_syscall_enter put the thread's own back), otherwise the
 * thread's own, created on its first allocation (mcache_get).
 *
 * A new thread's TLS points at empty_mcache, whose spans are all
 * empty_mspan (Go's emptymspan): the malloc fast path then needs no "is there
 * an mcache" test; its first allocation falls to the slow path, which creates
 * the thread's mcache. An mcache is flushed (spans given back) when its
 * thread exits and is then reused by the next new thread; its counters are
 * cumulative and stay. */
#ifndef GORT_MEM_MCACHE_H
#define GORT_MEM_MCACHE_H

#include "mem/mspan.h"
#include "mem/scavenge.h"

#include <stdbool.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define empty_mcache            gort__empty_mcache
#define empty_mspan             gort__empty_mspan
#define mcache_all              gort__mcache_all
#define mcache_atfork_child     gort__mcache_atfork_child
#define mcache_atfork_parent    gort__mcache_atfork_parent
#define mcache_atfork_prepare   gort__mcache_atfork_prepare
#define mcache_flush            gort__mcache_flush
#define mcache_flush_large      gort__mcache_flush_large
#define mcache_gc_flush_hook    gort__mcache_gc_flush_hook
#define mcache_get              gort__mcache_get
#define mcache_new              gort__mcache_new
#define mcache_owned_span_freed gort__mcache_owned_span_freed
#define mcache_refill_malloc    gort__mcache_refill_malloc
#define mcache_rfree_flush      gort__mcache_rfree_flush
#define mcache_rfree_flush_all  gort__mcache_rfree_flush_all
#define mcache_rfree_holds      gort__mcache_rfree_holds
#define span_notify             gort__span_notify
#define tls_mcache              gort__tls_mcache

#define LARGE_CACHE_SLOTS     8
#define LARGE_CACHE_MAX_PAGES 32 /* cache freed large spans up to 256 KiB */
/* Empty spans an mcache keeps per class (at least one; see mcache.c's
 * maybe_release), and how often its refills look at the scavenger's clock. */
#define MCACHE_EMPTY_BYTES  ((size_t)128 << 10)
#define MCACHE_TICK_REFILLS 8

/* A batch of this thread's frees into one span it does not own, waiting to
 * be pushed onto the span's tfree with one CAS: linked through the objects'
 * first words with the span's key, as tfree is, so a second free of one of
 * them is seen as a double free. Pushed when a free of the class goes to
 * another span, when the batch holds the span's every object, on the
 * thread's allocation slow path, every RFREE_FLUSH_BATCHES new batches, and
 * when the thread exits. Read racily by the span's owner when it checks a
 * suspected double free (mcache_rfree_holds). */
struct rfree_batch {
    mspan *span; /* atomic (read by other threads): the span, or NULL */
    void *head;  /* atomic (likewise): the last object freed */
    void *tail;  /* the first object freed: its link is set at the push */
    uint32_t n;  /* objects in the batch */
};
#define RFREE_FLUSH_BATCHES 64
#define RFREE_MASK_WORDS    ((NUM_SIZE_CLASSES + 63) / 64)

typedef struct mcache {
    mspan *alloc[NUM_SIZE_CLASSES]; /* explicit memory: current span, by size class */
    /* The object gort_malloc's fast path returned last, while not freed,
     * else MCACHE_NO_LAST, and its span, which this cache owns: a free of
     * it (a malloc-then-free loop) skips the span lookup and its checks. */
    void *last;
    mspan *last_span;
    uint64_t nmalloc[NUM_SIZE_CLASSES];    /* objects allocated here, by class */
    uint64_t nfree[NUM_SIZE_CLASSES];      /* objects of other threads' spans freed here (remote
                                              frees), by class; local frees are not counted:
                                              memstats derives them from the spans */
    mspan *alloc_gc[NUM_SIZE_CLASSES * 2]; /* GC memory, by span class */
    uint32_t gc_flushgen;                  /* the GC's flush generation it last matched */
    uintptr_t tiny;                        /* current 16-byte tiny block, or 0 */
    uintptr_t tinyoffset;                  /* next free byte in it */
    uint64_t tiny_allocs;                  /* tiny objects combined into blocks */
    uint64_t large_nmalloc, large_nfree;   /* large objects */
    uint64_t large_alloc_bytes, large_free_bytes;
    mspan *large_cache[LARGE_CACHE_SLOTS]; /* freed large spans kept for reuse */
    mspan *partial[NUM_SIZE_CLASSES];      /* owned spans with free objects (not current), */
    mspan *partial_tail[NUM_SIZE_CLASSES]; /* a FIFO: the oldest has gathered the most frees */
    mspan *full[NUM_SIZE_CLASSES];         /* owned spans parked full (TFREE_NOTIFY) */
    mspan *xready;                         /* atomic: parked spans that got remote frees */
    struct mcache *next_all;               /* all mcaches, for MemStats */
    struct mcache *next_free;              /* free mcaches, for reuse */
    bool in_use;

    /* Owned spans with no live object, reset (maybe_release), by class. */
    mspan *empty[NUM_SIZE_CLASSES];
    uint8_t nempty[NUM_SIZE_CLASSES];
    uint8_t tick; /* refills until the next scavenge_tick */

    /* Pending remote frees, by class; the classes that have one; batches
     * begun since the last push of them all. */
    struct rfree_batch rfree[NUM_SIZE_CLASSES];
    uint64_t rfree_mask[RFREE_MASK_WORDS];
    uint32_t rfree_ops;

    /* Heap-profile sampling (msample.h): bytes to the next sample, and
     * each class's nmalloc at its last slow path. */
    int64_t next_sample;
    uint64_t prof_seen[NUM_SIZE_CLASSES];
} mcache;

extern mcache empty_mcache;
/* mcache.last when there is none: an address no caller can free. */
#define MCACHE_NO_LAST ((void *)&empty_mcache)
extern mspan empty_mspan;
extern __thread mcache *tls_mcache __attribute__((tls_model("initial-exec")));

/* The calling thread's mcache, created on first use; NULL only when the OS
 * refuses memory. */
mcache *mcache_get(void);
/* A new cache owned by no thread, for a P (the scheduler sets tls_mcache to
 * its P's cache while it holds the P); NULL only when the OS refuses memory. */
mcache *mcache_new(void);
/* Gives back every span c owns (thread exit, gort_free_os_memory). */
void mcache_flush(mcache *c);
/* The current explicit span of class sc is dry: makes another current (an
 * owned partial span, a central one, or a fresh one) and returns it; NULL
 * when out of memory. */
mspan *mcache_refill_malloc(mcache *c, unsigned sc);
/* c freed an object into s, an owned span that is not current, and s is now
 * empty or was parked full: moves or frees s. */
void mcache_owned_span_freed(mcache *c, mspan *s);
/* A remote free cleared TFREE_NOTIFY on s: hand s to its owner or its central. */
void span_notify(mspan *s);
/* Installed by the GC layer: gives back c's GC spans (mcache_flush calls it). */
extern void (*mcache_gc_flush_hook)(mcache *c);
/* Pushes c's pending batch of class sc onto its span's tfree (one CAS). */
void mcache_rfree_flush(mcache *c, unsigned sc);
/* Pushes every pending batch of c. */
void mcache_rfree_flush_all(mcache *c);
/* Whether object p of explicit span s waits in some thread's pending batch
 * (racy, for the owner of s checking a suspected double free: the objects
 * of a batch stay free until their owner takes them, so the walk is safe). */
bool mcache_rfree_holds(mspan *s, uintptr_t p);
/* Flushes the calling thread's large-span cache. */
void mcache_flush_large(mcache *c);
/* fork handlers for the mcache pool's lock. */
void mcache_atfork_prepare(void);
void mcache_atfork_parent(void);
void mcache_atfork_child(void);

/* Every MCACHE_TICK_REFILLS calls (slow paths only): scavenge_tick. */
static inline void mcache_tick(mcache *c) {
    if (__builtin_expect(--c->tick == 0, 0)) {
        c->tick = MCACHE_TICK_REFILLS;
        scavenge_tick();
    }
}

/* Counts an allocation of class sc in c once its span has counted the
 * object (allocated, alloccount): memstats reads every mcache's mallocs
 * before the spans and derives the frees as mallocs less live objects, so
 * an allocation must never be seen in the first without the second. (The
 * other order let a reading that fell between the two stores, the
 * allocating thread preempted there, derive a free too many, which the
 * reading then latched as a floor for good: tests/test_memstats.c,
 * test_concurrent_exits.) x86 makes a thread's stores visible in the order
 * it issues them; the barrier keeps the compiler's order, and costs no
 * instruction. */
static inline __attribute__((always_inline)) void mcache_count_malloc(mcache *c, unsigned sc) {
    compiler_barrier();
    c->nmalloc[sc]++;
}

/* The head of the list of all mcaches (read with acquire loads). */
mcache *mcache_all(void);

#endif
