/* Sweeping (Go's mgcsweep.go): turning a span's mark bits into its
 * allocation bits once a cycle's mark has ended.
 *
 * Who sweeps a span: the allocator, when it needs the span (gc_cache_span
 * sweeps an unswept span before using it) or gives back one cached before
 * the cycle ended (gc_uncache_span); the allocator again, in proportion to
 * allocation (sweep credit: pages per byte allocated, set at mark
 * termination so that sweeping is done before the next cycle's trigger);
 * the background sweeper, a thread at SCHED_IDLE priority (it runs when a
 * CPU has nothing else to do, as Go's bgsweep yields to every goroutine);
 * and, if anything is left when the next cycle starts, its starter
 * (gc_finish_sweep). Ownership comes from popping the span off an unswept
 * central list, or from owning the mcache that holds it.
 *
 * What is live in a small span: the marked slots, and the slots allocated
 * black, i.e. handed out by the mark phase that just ended. Those are not
 * marked one by one (no atomic per allocation): the first allocation of
 * that phase in a span recorded the span's freeindex in fi_markstart
 * (markgen tells which phase), and every slot in [fi_markstart, freeindex)
 * that was free in allocbits was handed out since. So
 *     live = markbits | (~allocbits & [fi_markstart, freeindex)).
 * Then allocbits = live, markbits = 0, freeindex = 0, and allocation finds
 * the free slots again from the start (Go's sweep does the same with
 * gcmarkBits becoming allocBits).
 *
 * Specials (finalizers) are handled here too: an object with a finalizer
 * that was not marked is kept for one more cycle (its live bit set) and its
 * finalizer queued (mfinal.c). GORT_GODEBUG=clobberfree=1 fills every freed
 * object with 0xdeadbeef words. */
#define _GNU_SOURCE
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/env.h"
#include "base/fatal.h"
#include "base/lock.h"
#include "base/nanotime.h"
#include "base/os.h"
#include "base/thread.h"
#include "mem/mheap.h"
#include "mem/mpagealloc.h"
#include "mem/msample.h"

#include <pthread.h>
#include <sched.h>

static inline unsigned popcount64(uint64_t x) {
    return (unsigned)__builtin_popcountll(x);
}

/* Mask of bits [lo, hi) within word i (bits i*64 .. i*64+63). */
static inline uint64_t range_mask(unsigned i, unsigned lo, unsigned hi) {
    unsigned a = i * 64, b = a + 64;
    if (hi <= a || lo >= b) return 0;
    unsigned l = lo > a ? lo - a : 0, h = hi < b ? hi - a : 64;
    uint64_t m = h == 64 ? ~(uint64_t)0 : (((uint64_t)1 << h) - 1);
    return m & ~(((uint64_t)1 << l) - 1);
}

static void clobber(uintptr_t p, size_t n) {
    for (size_t i = 0; i + 8 <= n; i += 8) *(uint64_t *)(p + i) = 0xdeadbeefdeadbeefULL;
}

bool gc_sweep_span(mspan *s, bool preserve) {
    (void)preserve;
    uint32_t mg = atomic_load_relaxed(&gc_state.markgen);
    bool black_alloc = atomic_load_acq(&s->markgen) == mg;
    if (s->sizeclass == 0) {
        uint64_t live = (*span_markbits(s, 0) & 1) | (black_alloc ? 1 : 0);
        if (!live && s->specials && gc_sweep_specials(s, &live)) live = 1;
        if (s->profrecs) mprof_sweep(s, &live); /* heap profile: a sampled object freed */
        if (live) {
            *span_markbits(s, 0) = 0;
            s->markgen = 0;
            return true;
        }
        size_t bytes = s->npages * PAGE_SIZE;
        atomic_xadd(&gc_pacer.heap_alloc, -(uint64_t)bytes);
        if (opts.debug.clobberfree) clobber(s->base, bytes);
        atomic_xadd(&gc_state.large_frees, 1);
        atomic_xadd(&gc_state.large_free_bytes, bytes);
        mheap_free_span(s);
        return false;
    }
    unsigned n = s->nelems, words = (n + 63) / 64;
    uint64_t live[SPAN_BITMAP_WORDS_MAX];
    unsigned fi = s->freeindex, fs = s->fi_markstart;
    for (unsigned i = 0; i < words; i++) {
        uint64_t m = *span_markbits(s, i);
        if (black_alloc) m |= ~*span_allocbits(s, i) & range_mask(i, fs, fi);
        live[i] = m;
    }
    if (n & 63) live[words - 1] &= ((uint64_t)1 << (n & 63)) - 1;
    if (s->specials) gc_sweep_specials(s, live);
    if (s->profrecs) mprof_sweep(s, live); /* heap profile: sampled objects freed */
    unsigned nlive = 0, ndead = 0;
    bool freed_any = false;
    for (unsigned i = 0; i < words; i++) {
        nlive += popcount64(live[i]);
        /* Allocated before (below freeindex, or in allocbits) and not live. */
        uint64_t was = *span_allocbits(s, i) | range_mask(i, 0, fi);
        if (n & 63 && i == words - 1) was &= ((uint64_t)1 << (n & 63)) - 1;
        uint64_t dead = was & ~live[i];
        if (dead) {
            freed_any = true;
            ndead += popcount64(dead);
            if (opts.debug.clobberfree) {
                for (uint64_t d = dead; d; d &= d - 1) {
                    unsigned k = i * 64 + (unsigned)__builtin_ctzll(d);
                    clobber(s->base + (uintptr_t)k * s->elemsize, s->elemsize);
                }
            }
        }
    }
    if (ndead) atomic_xadd(&gc_pacer.heap_alloc, -(uint64_t)ndead * s->elemsize);
    if (nlive == 0) {
        mheap_free_span(s);
        return false;
    }
    for (unsigned i = 0; i < words; i++) {
        *span_allocbits(s, i) = live[i];
        *span_markbits(s, i) = 0;
    }
    s->freeindex = 0;
    s->alloccount = (uint16_t)nlive;
    s->markgen = 0;
    if (freed_any) s->needzero = 1;
    return true;
}

static uint32_t sweepers_waiting; /* someone sleeps until sweepers is 0 */
void (*gc_sweepone_test_hook)(void);

/* A sweeper claims the span it pops (Go's sweepLocker.tryAcquire): the
 * lists it looked at are the unswept ones of the sweepgen it read first,
 * and that sweepgen can move under it. The background sweeper is not
 * stopped by stop-the-world, holds no runtime lock while it looks, and runs
 * at SCHED_IDLE; mark start waits for the sweeps in progress
 * (gc_finish_sweep), but nothing keeps a sweeper from entering here during
 * the mark phase, reading the sweepgen, losing its CPU, and looking at the
 * lists after the mark termination that followed: by then they are the
 * swept set of the new sweepgen. It used to sweep what it popped there a
 * second time, with the mark bits the first sweep had cleared: every object
 * of the span was freed, live or not (a program's global array, the
 * objects of a whole span; found by test_weak's race under load, as
 * "gccheckmark: ... not marked", clobbered objects and wild handles).
 * Now it sweeps a span only if its sweepgen CAS from sg - 2 succeeds; a
 * span it popped from a set that turned swept goes back, and it looks
 * again with the new sweepgen. (Only one mark termination can fall inside:
 * the next mark start waits for this sweep, through gc_state.sweepers.) */
size_t gc_sweepone(void) {
    static unsigned cursor;
    unsigned cur = atomic_load_relaxed(&cursor);
    atomic_xadd(&gc_state.sweepers, 1);
    size_t pages = ~(size_t)0;
    for (;;) {
        uint32_t sg = atomic_load_acq(&gc_state.sweepgen);
        void (*hook)(void) = atomic_load_relaxed(&gc_sweepone_test_hook);
        if (unlikely(hook != NULL)) hook();
        mspan *s = gc_central_pop_unswept(&cur, sg);
        if (!s) break;
        atomic_store_relaxed(&cursor, cur);
        uint32_t want = sg - 2;
        if (!atomic_cas(&s->sweepgen, &want, sg - 1)) {
            gc_central_put_swept(s); /* swept in the new cycle: its list is the swept one */
            continue;
        }
        pages = s->npages;
        if (gc_sweep_span(s, false)) {
            atomic_store_rel(&s->sweepgen, sg);
            gc_central_put_swept(s);
        }
        break;
    }
    if (atomic_xadd(&gc_state.sweepers, (uint32_t)-1) == 1 &&
        atomic_load_relaxed(&sweepers_waiting))
        futex_wake(&gc_state.sweepers, INT32_MAX);
    return pages;
}

/* ---- the background sweeper ---- */

static uint32_t sweep_wake; /* futex word: bumped at each mark termination */

static void bgsweep(void *arg) {
    (void)arg;
    gc_internal_thread = true;
    struct sched_param sp = {0};
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp); /* only idle CPU time */
    for (;;) {
        uint32_t seen = atomic_load_acq(&sweep_wake);
        while (gc_sweepone() != ~(size_t)0) {
        }
        futex_sleep(&sweep_wake, seen, -1);
    }
}

static uint32_t sweeper_started;

void gc_sweeper_start(void) {
    uint32_t z = 0;
    if (!atomic_cas(&sweeper_started, &z, 1)) return;
    if (os_thread_start(bgsweep, NULL, 0, "gort-gcsweep") < 0)
        throw("cannot start the GC's background sweeper");
}

void gc_sweeper_wake(void) {
    atomic_xadd(&sweep_wake, 1);
    futex_wake(&sweep_wake, 1);
}

/* Sweeps everything still unswept and waits for concurrent sweeps (before a
 * cycle starts, and for gort_gc). */
void gc_finish_sweep(void) {
    while (gc_sweepone() != ~(size_t)0) {
    }
    /* A sweeper may still be finishing a span it took: wait for it, asleep
     * (the background sweeper runs at SCHED_IDLE: spinning here would keep
     * it off the CPU). */
    for (;;) {
        uint32_t n = atomic_load_acq(&gc_state.sweepers);
        if (n == 0) break;
        atomic_store_rel(&sweepers_waiting, 1);
        futex_sleep(&gc_state.sweepers, n, 1000 * 1000);
    }
    atomic_store_relaxed(&sweepers_waiting, 0);
}

/* ---- proportional sweep (Go's deductSweepCredit) ----
 *
 * At mark termination the pages in use must be swept before heap_live grows
 * from its new base to the next trigger: pages_per_byte is their ratio. An
 * allocation of n bytes sweeps until the pages swept since then cover
 * n bytes' share. */
static double sweep_pages_per_byte;
static uint64_t sweep_basis; /* heap_live when the sweep phase began */
static uint64_t pages_swept; /* atomic: pages swept by credit since then */

void gc_sweep_credit_reset(void) {
    uint64_t live = atomic_load_relaxed(&gc_pacer.heap_live);
    uint64_t trig = atomic_load_relaxed(&gc_pacer.trigger);
    struct pagealloc_stats st;
    pagealloc_read_stats(&st);
    uint64_t inuse = st.mapped_pages - st.free_pages;
    uint64_t runway = trig > live + (1 << 20) ? trig - live - (1 << 20) : (1 << 20);
    sweep_pages_per_byte = (double)inuse / (double)runway;
    sweep_basis = live;
    atomic_store_relaxed(&pages_swept, 0);
}

void gc_sweep_credit(size_t bytes) {
    (void)bytes;
    if (atomic_load_relaxed(&gc_state.sweep_done) || gc_phase() != GC_OFF) return;
    uint64_t live = atomic_load_relaxed(&gc_pacer.heap_live);
    double target = live > sweep_basis ? (double)(live - sweep_basis) * sweep_pages_per_byte : 0;
    if ((double)atomic_load_relaxed(&pages_swept) >= target) return;
    GC_HOOK(GC_EV_SWEEP_START, 0);
    uint64_t swept = 0;
    while ((double)atomic_load_relaxed(&pages_swept) < target) {
        size_t n = gc_sweepone();
        if (n == ~(size_t)0) {
            atomic_store_rel(&gc_state.sweep_done, 1);
            break;
        }
        atomic_xadd(&pages_swept, n);
        swept += n;
    }
    GC_HOOK(GC_EV_SWEEP_DONE, swept);
}

/* In a forked child the sweeper thread is gone: start another. */
void gc_sweep_fork_child(void) {
    sweeper_started = 0;
    gc_state.sweepers = 0;
    gc_sweeper_start();
}
