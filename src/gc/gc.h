/* The garbage collector's internal interface (Go's mgc.go, mgcmark.go,
 * mgcsweep.go, mgcpacer.go, mgcwork.go, mbitmap.go, mwbbuf.go, mfinal.go).
 *
 * A cycle, as Go's:
 *   1. Sweep termination: every span of the last cycle is swept (the
 *      background sweeper and allocation normally finished it). Stop the
 *      world; stale mcaches are flushed, the tiny blocks and the spans
 *      cached for allocation are prepared for allocate-black; phase = MARK,
 *      the write barrier on; start the world.
 *   2. Concurrent mark: background workers (gort's own threads, pacing
 *      themselves to Go's 25% CPU goal, using idle Ps beyond it) and mark
 *      assists (allocating threads in debt) scan the roots (data and bss of
 *      every loaded object, registered roots, each goroutine's stack one at a
 *      time, each thread's stack, runtime roots) and drain grey objects from
 *      work buffers. Objects allocated meanwhile are black (implicitly: the
 *      slots a span hands out after its fi_markstart, see mgcsweep.c).
 *   3. Mark termination: when no work is left anywhere, stop the world; flush
 *      every thread's write-barrier buffer and assist work; rescan the
 *      registers and stacks of the threads that were running (a thread
 *      stopped between a GORT_STORE's store and its barrier still holds the
 *      values it had to shade); drain; phase = OFF, the barrier off,
 *      sweepgen += 2; start the world.
 *   4. Sweep: spans are swept lazily when allocation needs them, in
 *      proportion to allocation, and by the background sweeper.
 *
 * Invariants (Go's hybrid barrier, "Proposal: Eliminate STW stack
 * re-scanning"): while marking, no black object points to a white one that
 * is not also reachable from a grey object or an unscanned stack; stacks are
 * scanned once per cycle and are then black; every object reachable when the
 * cycle started, and every object allocated since, is marked by its end.
 *
 * Colours: white = mark bit clear; grey = mark bit set and the object in a
 * work buffer (or a write-barrier buffer) not yet scanned; black = mark bit
 * set and scanned, or allocated during the mark phase. */
#ifndef GORT_GC_GC_H
#define GORT_GC_GC_H

#include "base/atomic.h"
#include "base/lock.h"
#include "gort/gc.h"
#include "gort/type.h"
#include "mem/mcache.h"
#include "mem/mspan.h"
#include "sched/stw.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define gc_add_root_range         gort__gc_add_root_range
#define gc_alloc                  gort__gc_alloc
#define gc_assist                 gort__gc_assist
#define gc_cache_span             gort__gc_cache_span
#define gc_central_all_swept      gort__gc_central_all_swept
#define gc_central_lists_each     gort__gc_central_lists_each
#define gc_central_lock_all       gort__gc_central_lock_all
#define gc_central_pop_unswept    gort__gc_central_pop_unswept
#define gc_central_put_swept      gort__gc_central_put_swept
#define gc_central_reinit_locks   gort__gc_central_reinit_locks
#define gc_central_unlock_all     gort__gc_central_unlock_all
#define gc_checkmark              gort__gc_checkmark
#define gc_checkmark_mode         gort__gc_checkmark_mode
#define gc_checkmark_stacks       gort__gc_checkmark_stacks
#define gc_checkmark_visit        gort__gc_checkmark_visit
#define gc_conservative_type      gort__gc_conservative_type
#define gc_drain                  gort__gc_drain
#define gc_finalizer_runner_start gort__gc_finalizer_runner_start
#define gc_finalizers_run         gort__gc_finalizers_run
#define gc_findobject             gort__gc_findobject
#define gc_finish_sweep           gort__gc_finish_sweep
#define gc_flush_wbbuf            gort__gc_flush_wbbuf
#define gc_free_os_memory_hook    gort__gc_free_os_memory_hook
#define gc_greyobject             gort__gc_greyobject
#define gc_heapbits_set           gort__gc_heapbits_set
#define gc_heap_range             gort__gc_heap_range
#define gc_init                   gort__gc_init
#define gc_internal_thread        gort__gc_internal_thread
#define gc_is_marked              gort__gc_is_marked
#define gc_limiter_add            gort__gc_limiter_add
#define gc_limiter_enabled        gort__gc_limiter_enabled
#define gc_limiter_memstats       gort__gc_limiter_memstats
#define gc_limiter_poll           gort__gc_limiter_poll
#define gc_limiter_trace          gort__gc_limiter_trace
#define gc_limiter_worker         gort__gc_limiter_worker
#define gc_mark_specials          gort__gc_mark_specials
#define gc_mark_termination_scan  gort__gc_mark_termination_scan
#define gc_mark_tiny_allocs       gort__gc_mark_tiny_allocs
#define gc_mcache_flush           gort__gc_mcache_flush
#define gc_mcache_prepare         gort__gc_mcache_prepare
#define gc_pacer                  gort__gc_pacer
#define gc_pacer_end_cycle        gort__gc_pacer_end_cycle
#define gc_pacer_limit_update     gort__gc_pacer_limit_update
#define gc_pacer_revise           gort__gc_pacer_revise
#define gc_pacer_start_cycle      gort__gc_pacer_start_cycle
#define gc_pacer_update_cons_mark gort__gc_pacer_update_cons_mark
#define gc_pool_cleanup_hook      gort__gc_pool_cleanup_hook
#define gc_final_fork             gort__gc_final_fork
#define gc_limiter_fork           gort__gc_limiter_fork
#define gc_mark_fork              gort__gc_mark_fork
#define gc_work_fork              gort__gc_work_fork
#define gc_thread_fork            gort__gc_thread_fork
#define gc_sweep_fork_child       gort__gc_sweep_fork_child
#define gc_prepare_roots          gort__gc_prepare_roots
#define gc_queue_call             gort__gc_queue_call
#define gc_roots_pending          gort__gc_roots_pending
#define gc_scan_data_again        gort__gc_scan_data_again
#define gc_scan_roots_stw         gort__gc_scan_roots_stw
#define gc_scanblock              gort__gc_scanblock
#define gc_scanobject             gort__gc_scanobject
#define gc_shade_elem             gort__gc_shade_elem
#define gc_scan_deferred          gort__gc_scan_deferred
#define gc_record_extra_pause     gort__gc_record_extra_pause
#define gc_shade                  gort__gc_shade
#define gc_shade_buf              gort__gc_shade_buf
#define gc_special_cleanup        gort__gc_special_cleanup
#define gc_special_weak           gort__gc_special_weak
#define gc_start                  gort__gc_start
#define gc_state                  gort__gc_state
#define gc_sweep_credit           gort__gc_sweep_credit
#define gc_sweep_credit_reset     gort__gc_sweep_credit_reset
#define gc_sweep_span             gort__gc_sweep_span
#define gc_sweep_specials         gort__gc_sweep_specials
#define gc_sweeper_start          gort__gc_sweeper_start
#define gc_sweeper_wake           gort__gc_sweeper_wake
#define gc_sweepone               gort__gc_sweepone
#define gc_sweepone_test_hook     gort__gc_sweepone_test_hook
#define gc_sysmon_tick            gort__gc_sysmon_tick
#define gc_thread_self            gort__gc_thread_self
#define gc_threads                gort__gc_threads
#define gc_threads_lock           gort__gc_threads_lock
#define gc_trace_hook             gort__gc_trace_hook
#define gc_uncache_span           gort__gc_uncache_span
#define gcw_balance               gort__gcw_balance
#define gcw_dispose               gort__gcw_dispose
#define gcw_empty                 gort__gcw_empty
#define gcw_get_slow              gort__gcw_get_slow
#define gcw_global_empty          gort__gcw_global_empty
#define gcw_put_slow              gort__gcw_put_slow
#define gcw_reset_global          gort__gcw_reset_global
#define sched_started_now         gort__sched_started_now

enum gc_phase { GC_OFF = 0, GC_MARK = 1, GC_MARKTERM = 2 };

/* Why a cycle starts (Go's gcTriggerKind). */
enum gc_trigger { GC_TRIGGER_HEAP, GC_TRIGGER_TIME, GC_TRIGGER_CYCLE };

/* ---- object layout (mbitmap.c) ----------------------------------------------
 *
 * Small objects up to GC_HEAPBITS_MAX bytes in scan spans keep one bit per
 * word, set for a pointer word, in a bitmap at the end of their span
 * (span.heapbits: the span's last npages * PAGE_SIZE / 64 bytes, not used
 * for objects). Larger small objects (classes of 576 bytes to 32 KiB, at
 * most 14 to a span) have their gort_type stored per slot in the span
 * (span_slottype: words after the span's bitmaps in its record), not in
 * the object. Large objects keep their type word in their span (span_largetype).
 * gc_conservative_type (every word a pointer) stands for
 * gort_alloc_conservative. As Go 1.22, except that a heap-bit span whose
 * objects all have one layout keeps it once (span.umask) and writes no
 * per-object bits (mbitmap.c), and that the larger small objects have no
 * header: Go 1.22's 8-byte header moves a 4 KiB object to the 4,864-byte
 * class and a 1 KiB one to 1,152 (16-19% more heap; gort's was 16 bytes
 * for 16-byte alignment), where Go 1.19, which these figures are measured
 * against, kept all pointer bits outside the objects. */
#define GC_HEAPBITS_MAX 512
_Static_assert(GC_HEAPBITS_MAX <= 64 * 8, "a heap-bit object's bits fit one word");
extern const gort_type gc_conservative_type;

static inline uint64_t *span_heapbits(const mspan *s) {
    return (uint64_t *)(s->base + s->npages * PAGE_SIZE - s->npages * (PAGE_SIZE / 64));
}

/* The pointer bits of the nw words (<= 64) at v, bit i for word i. */
static inline uint64_t heapbits_read(const mspan *s, uintptr_t v, size_t nw) {
    const uint64_t *hb = span_heapbits(s);
    size_t w = (v - s->base) >> 3, i = w >> 6, b = w & 63;
    uint64_t bits = hb[i] >> b;
    if (b + nw > 64) bits |= hb[i + 1] << (64 - b);
    return nw >= 64 ? bits : bits & (((uint64_t)1 << nw) - 1);
}

/* Writes them (the owner of a span being allocated from, only). */
static inline void heapbits_write(const mspan *s, uintptr_t v, size_t nw, uint64_t bits) {
    uint64_t *hb = span_heapbits(s);
    size_t w = (v - s->base) >> 3, i = w >> 6, b = w & 63;
    uint64_t full = nw >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << nw) - 1);
    bits &= full;
    hb[i] = (hb[i] & ~(full << b)) | (bits << b);
    if (b + nw > 64) {
        size_t sh = 64 - b;
        hb[i + 1] = (hb[i + 1] & ~(full >> sh)) | (bits >> sh);
    }
}

/* Records that the object at v of heap-bit span s (its owner allocating it)
 * has pointer bits bits (its elemsize / 8 words): nothing while s is of one
 * layout (span.umask), else the bits at the span's end (mbitmap.c). */
void gc_heapbits_set(mspan *s, uintptr_t v, uint64_t bits);

/* The pointer bits of the object at v of heap-bit span s, for the marker. */
static inline uint64_t heapbits_object(const mspan *s, uintptr_t v) {
    uint64_t m = __atomic_load_n(&s->umask, __ATOMIC_ACQUIRE);
    return m ? m : heapbits_read(s, v, s->elemsize / 8);
}

/* The object containing p, or 0: its span and index through *sp and *idx.
 * Only allocated objects of GC spans count (a free slot, a malloc object or
 * an address outside the heap gives 0). */
uintptr_t gc_findobject(uintptr_t p, mspan **sp, uint32_t *idx);

/* The addresses the arenas cover (a fast reject for conservative scanning;
 * set at each mark start). Stored as a base 8 bytes below the heap and a
 * length, never as the heap's first address or its end: this variable is in
 * the data segment, which is scanned conservatively, and the heap's first
 * address is also its first object's (measured: it kept the first tree a
 * program built alive forever). */
extern struct gc_heap_range {
    uintptr_t below; /* the lowest arena's base - 8 (not a heap address) */
    uintptr_t len;   /* bytes from below to the end of the highest arena */
} gc_heap_range;

static inline bool gc_heap_candidate(uintptr_t p) {
    return p - gc_heap_range.below < gc_heap_range.len;
}

/* ---- work buffers (mgcwork.c): Go's gcWork ----------------------------------- */

#define WORKBUF_OBJS 510
typedef struct workbuf {
    struct workbuf *next;
    uintptr_t nobj;
    uintptr_t obj[WORKBUF_OBJS];
} workbuf;

/* One per mark worker and per assisting thread: two buffers as Go's (put
 * fills wbuf1, get drains it, a full or empty one is swapped with wbuf2 and
 * then traded with the global lists). */
typedef struct gcwork {
    workbuf *wbuf1, *wbuf2;
    uint64_t bytes_marked; /* bytes of objects this gcw marked (flushed to gc_state) */
    int64_t scan_work;     /* bytes scanned (the pacer's unit of work) */
} gcwork;

void gcw_put_slow(gcwork *w, uintptr_t obj);
static inline void gcw_put(gcwork *w, uintptr_t obj) {
    workbuf *b = w->wbuf1;
    if (__builtin_expect(b && b->nobj < WORKBUF_OBJS, 1)) {
        b->obj[b->nobj++] = obj;
        return;
    }
    gcw_put_slow(w, obj);
}
uintptr_t gcw_get_slow(gcwork *w);
/* A grey object, or 0 when this gcw and the global lists are empty
 * (inline: a call per object was 28 of the marker's ~230 instructions per
 * object, callgrind on binarytrees). */
static inline uintptr_t gcw_get(gcwork *w) {
    workbuf *b = w->wbuf1;
    if (__builtin_expect(b && b->nobj, 1)) return b->obj[--b->nobj];
    return gcw_get_slow(w);
}
/* Whether w holds no work. */
bool gcw_empty(const gcwork *w);
/* Gives w's work to the global lists (counters flushed too). */
void gcw_dispose(gcwork *w);
/* Moves some of w's work to the global list when others are idle. */
void gcw_balance(gcwork *w);
/* Whether the global full list is empty. */
bool gcw_global_empty(void);
void gcw_reset_global(void);

/* ---- per-thread state (mgcthread.c) ------------------------------------------- */

#define WBBUF_ENTRIES 512

/* Every thread that touches the GC heap (allocates GC objects, runs the
 * write barrier's slow path, assists) has one, found through TLS. Threads
 * outside the scheduler ("foreign") are also registered for stop-the-world
 * and stack scanning; Ms are stopped and scanned as Ms. Records of exited
 * threads are reused. */
typedef struct gcthread {
    struct gcthread *next_all;    /* gc_threads: every record, push-only */
    stw_thread stw;               /* foreign threads: stop-the-world's view */
    bool in_use;                  /* a live thread owns it */
    bool foreign;                 /* not an M: registered with stw, stack scanned as a root */
    bool scanned;                 /* its stack was scanned in this cycle's mark */
    uintptr_t stack_lo, stack_hi; /* foreign threads: their stack */
    /* Go's wbBuf: shaded pointers not yet greyed (while marking). */
    uint32_t wbn;
    uintptr_t wb[WBBUF_ENTRIES];
    gcwork w;              /* for assists and flushes */
    int64_t assist_credit; /* bytes: > 0 allocation paid for by earlier assist work */
} gcthread;

extern gcthread *gc_threads; /* all records, push-only */
extern lock_t gc_threads_lock;
/* The calling thread's record, created (and a foreign thread registered)
 * on first use; never NULL (out of memory is fatal). */
gcthread *gc_thread_self(void);

/* ---- state (mgc.c) -------------------------------------------------------- */

/* The collector's global state (Go's work, mheap_.sweepgen, gcController's
 * counters; the pacer's own fields are in gc_pacer). */
extern struct gc_state {
    uint32_t phase;      /* enum gc_phase (atomic) */
    uint32_t markgen;    /* +1 at each mark start: spans' allocate-black epoch */
    uint32_t sweepgen;   /* +2 at each mark termination (Go's mheap_.sweepgen) */
    uint32_t flushgen;   /* +1 at each mark termination: mcaches flush before allocating */
    uint32_t cycles;     /* completed cycles (NumGC) */
    uint32_t forced;     /* cycles started by gort_gc */
    uint32_t started;    /* cycles started */
    bool enabled;        /* gc_init has run */
    uint32_t sweep_done; /* atomic: every span of the last cycle swept */
    uint32_t sweepers;   /* atomic: sweeps in progress (gc_sweepone) */
    /* Mark: root jobs and termination detection (Go's markrootNext, nwait). */
    uint32_t root_next, root_jobs;           /* atomic cursor over root jobs */
    uint32_t nproc, nwait;                   /* mark helpers active; idle among them */
    uint32_t assists_draining;               /* atomic: assists inside a drain chunk */
    uint64_t bytes_marked;                   /* atomic: bytes marked this cycle */
    int64_t scan_work;                       /* atomic: bytes scanned this cycle */
    int64_t stack_scan_bytes, globals_bytes; /* scanned this cycle */
    uint32_t mark_done_seq;                  /* futex word: bumped when marking may be done */
    uint32_t stop_drain;                     /* 1 from MARKTERM on: workers stop draining */
    int64_t mark_cpu_bg;                     /* ns of background workers this cycle */
    int64_t cpu_at_mark_start;               /* gc_cpu_ns when the mark began */
    int64_t assist_ns;                       /* ns of mark assists this cycle */
    int64_t idle_ns;                         /* ns of workers on idle Ps this cycle */
    uint64_t last_mark_end_ns;               /* nanotime of the last mark termination */
    /* Statistics (MemStats). */
    int64_t pause_total_ns;
    uint64_t pause_ns[256], pause_end[256];
    uint64_t last_gc_unix;                  /* ns since the epoch */
    int64_t gc_cpu_ns;                      /* CPU time spent marking (workers and assists) */
    int64_t start_ns;                       /* process start (for gc_cpu_fraction and gctrace) */
    uint64_t large_frees, large_free_bytes; /* large GC objects freed by sweep */
    uint64_t tiny_blocks_freed;
    lock_t lock; /* a cycle's transitions; never held across a stop */
} gc_state;

static inline uint32_t gc_phase(void) {
    return __atomic_load_n(&gc_state.phase, __ATOMIC_ACQUIRE);
}

/* Makes the collector usable (idempotent). */
void gc_init(void);
/* Starts a cycle if the trigger still holds (Go's gcStart). Any thread
 * with no runtime lock held; returns at once when a cycle is in progress
 * unless wait. */
void gc_start(enum gc_trigger why, bool wait);

/* ---- allocation (mallocgc.c, mgccentral.c) ------------------------------- */

/* Go's mallocgc: size bytes described by t (NULL: noscan;
 * &gc_conservative_type: every word a pointer), zeroed. n > 1: an array of n
 * objects of type t (size == n * t->size). align16: the program may need
 * malloc's alignment (16 bytes for requests over 8). */
void *gc_alloc(size_t size, const gort_type *t, bool align16);
/* A span of span class spc with a free object, swept, for c (Go's
 * mcentral.cacheSpan); NULL when out of memory. */
mspan *gc_cache_span(mcache *c, unsigned spc);
/* c gives s back (Go's uncacheSpan). */
void gc_uncache_span(mspan *s);
/* Flushes every GC span c holds, and its tiny block (thread exit, stale
 * mcaches). Not while c's owner allocates. */
void gc_mcache_flush(mcache *c);
/* c's owner is about to allocate after a mark termination: flush. */
void gc_mcache_prepare(mcache *c);
/* For each central list of GC spans: fn(head pointer, lock). */
void gc_central_lists_each(void (*fn)(mspan **list, lock_t *lk, int which, void *arg), void *arg);

/* ---- mark (mgcmark.c) ------------------------------------------------------- */

/* Greys the object at obj (base of an allocated object of span s, index
 * idx) unless it is marked. */
void gc_greyobject(uintptr_t obj, mspan *s, uint32_t idx, gcwork *w);
/* Greys the object containing p, if any (the write barrier's shade, and
 * conservative words). */
void gc_shade(uintptr_t p, gcwork *w);
/* gc_shade of each of v[0..n) (a write-barrier buffer). */
void gc_shade_buf(const uintptr_t *v, uint32_t n, gcwork *w);
/* Scans [b, b + n) conservatively (n a multiple of the word size). */
void gc_scanblock(uintptr_t b, uintptr_t n, gcwork *w);
/* Scans a grey object (or one oblet of a large one) by its type. */
void gc_scanobject(uintptr_t b, gcwork *w);
/* Counts and lists the root jobs of a cycle (at mark start, world stopped). */
void gc_prepare_roots(void);
/* Drains grey objects (and, with roots, runs root jobs first: the
 * workers only, see mgcmark.c) until there is no more work, or until budget
 * bytes of scan work were done (budget < 0: no limit), or *stop becomes
 * nonzero. Returns the scan work done. */
int64_t gc_drain(gcwork *w, int64_t budget, const volatile uint32_t *stop, bool roots);
/* World stopped, at mark termination: scans the registers and stacks of the
 * threads that were running, and flushes every thread's barrier buffer. */
void gc_mark_termination_scan(gcwork *w);
/* World stopped, at mark start: greys every mcache's tiny block. */
void gc_mark_tiny_allocs(gcwork *w);
/* Flushes t's write-barrier buffer into w (greying its entries). */
void gc_flush_wbbuf(gcthread *t, gcwork *w);
/* The allocating thread does mark work for the bytes it allocated (Go's
 * gcAssistAlloc). */
void gc_assist(gcthread *t, int64_t bytes);
/* Shades the pointer words of n bytes at dst (its old values) and at src
 * (the values about to be copied there; NULL: none), by type t (NULL: every
 * word), while the collector marks: the barrier of a typed copy. */
void gc_shade_elem(const void *dst, const void *src, size_t n, const gort_type *t);
/* Registered root ranges (gort_add_roots), also used by the runtime. */
int gc_add_root_range(uintptr_t lo, uintptr_t hi, bool add);

/* ---- sweep (mgcsweep.c) ----------------------------------------------------- */

/* Sweeps s, which the caller owns (sweepgen CAS'd to sweepgen - 1 by the
 * caller, or s cached and being uncached). Returns false if s was freed to
 * the heap (it had no live object). */
bool gc_sweep_span(mspan *s, bool preserve);
/* Proportional sweep: sweeps what allocating bytes more owes. */
void gc_sweep_credit(size_t bytes);
/* Sweeps one unswept span; returns pages swept, or ~0 when none is left. */
size_t gc_sweepone(void);
/* Tests only: called by gc_sweepone between its read of the sweepgen and
 * its look at the unswept lists, to play a mark termination there (what a
 * background sweeper descheduled at that point sees). */
extern void (*gc_sweepone_test_hook)(void);

/* ---- pacer (mgcpacer.c): Go 1.18's gcControllerState ------------------------- */

extern struct gc_pacer {
    int gcpercent;      /* GOGC; < 0 off (the memory limit is mem_limit, mem/scavenge.h) */
    uint64_t heap_live; /* atomic: bytes allocated since the last mark plus marked */
    /* atomic: bytes of GC slots allocated and not yet freed by a sweep (Go's
     * heapAlloc, totalAlloc - totalFree; like heap_live, a cached span's
     * free slots count until it is given back): what the memory limit's
     * goal takes for heap objects, dead but unswept ones included. */
    uint64_t heap_alloc;
    uint64_t limit_check;    /* atomic: heap_live at which the limit's goal is next recomputed */
    uint64_t heap_marked;    /* bytes marked by the last cycle */
    uint64_t heap_goal;      /* the heap size the current cycle aims to finish by */
    uint64_t trigger;        /* heap_live at which the next cycle starts */
    uint64_t heap_scan;      /* atomic: the most a cycle may scan: last_heap_scan plus the scan
                                slots allocated since (Go's heapScan) */
    uint64_t last_heap_scan; /* heap scan work of the last cycle (Go's lastHeapScan) */
    uint64_t stack_scan, globals_scan; /* bytes, last cycle */
    double cons_mark;                  /* measured allocation rate / mark rate */
    double assist_work_per_byte;       /* scan work an assist owes per byte allocated */
    uint64_t heap_live_at_start;
    int64_t mark_start_ns;
    int64_t bg_scan_credit; /* atomic: scan work done by workers beyond what assists owed */
    int dedicated_workers;
    double fractional_goal; /* per P */
    int nprocs;
} gc_pacer;

/* The heap goal and trigger for the next cycle (after mark termination or
 * a GOGC change). */
void gc_pacer_end_cycle(void);
/* Under a memory limit: the goal and trigger again from what the limit
 * counts now (Go recomputes its heapGoal at every trigger check; we do at
 * every few MiB of allocation, gc_pacer_limit_poll). */
void gc_pacer_limit_update(void);
static inline void gc_pacer_limit_poll(void) {
    if (__builtin_expect(atomic_load_relaxed(&gc_pacer.heap_live) >=
                             atomic_load_relaxed(&gc_pacer.limit_check),
                         0))
        gc_pacer_limit_update();
}

/* At mark start: the assist ratio and the workers for this cycle. */
void gc_pacer_start_cycle(void);

/* ---- the GC CPU limiter (mgclimit.c): Go's gcCPULimiter ---------------------- */

enum gc_limiter_kind {
    GC_LIM_ASSIST, /* mark assists (ns) */
    GC_LIM_WORKER, /* background workers on the program's CPU share (ns) */
    GC_LIM_IDLE,   /* workers on idle Ps' time (ns): idle CPU, not the program's */
    GC_LIM_PAUSE,  /* a stop of the world (ns of wall time; counted on every P) */
};
/* Atomic: nonzero while the limiter is on (the bucket is full): assists
 * stop, allocation does not scavenge inline. */
extern uint32_t gc_limiter_enabled;
static inline bool gc_limiter_on(void) {
    return atomic_load_relaxed(&gc_limiter_enabled) != 0;
}
/* Adds GC CPU time to the next update. */
void gc_limiter_add(enum gc_limiter_kind kind, int64_t ns);
/* A worker's slice of dt ns of wall time ended at now (its CPU time counts,
 * or on an idle P its wall time as idle), and a poll. */
void gc_limiter_worker(bool on_idle, int64_t dt, int64_t now);
/* Updates the bucket if the last update is 10 ms old (any thread, no lock
 * held; calls the memory-limit callback when the limiter has been on for a
 * sustained period). */
void gc_limiter_poll(int64_t now);
/* MemStats' limiter and memory-limit fields. */
struct gort_memstats;
void gc_limiter_memstats(struct gort_memstats *ms);
/* gctrace: whether the limiter was on at some point since the last call. */
bool gc_limiter_trace(void);

/* ---- declarations shared between the layer's files ----------------------- */

/* mgccentral.c: the swept/unswept lists (and their fork handlers). */
void gc_central_put_swept(mspan *s);
mspan *gc_central_pop_unswept(unsigned *cursor, uint32_t sg);
bool gc_central_all_swept(void);
void gc_central_lock_all(void);
void gc_central_unlock_all(void);
void gc_central_reinit_locks(void);
/* mgcsweep.c */
void gc_sweeper_start(void);
void gc_sweeper_wake(void);
void gc_finish_sweep(void);
void gc_sweep_credit_reset(void);
/* mfinal.c: marks what finalizable objects reach; sweeps specials (true if
 * it kept objects: their bits set in live). */
void gc_mark_specials(gcwork *w);
bool gc_sweep_specials(mspan *s, uint64_t *live);
extern uint64_t gc_finalizers_run;
enum gc_special_kind { GC_SPECIAL_FINALIZER = 1, GC_SPECIAL_WEAK = 2, GC_SPECIAL_CLEANUP = 3 };
/* A weak handle (mweak.c): a noscan GC object, so the marker never sees
 * target as a pointer; the sweeper clears target when the object dies. */
struct gort_weak {
    uintptr_t target; /* atomic: the object's address as given to gort_weak_make; 0 once dead */
    uintptr_t unused; /* a 16-byte slot of its own, not a tiny block shared with others */
};
/* The weak handle of obj (an address in slot of s), or, if it has none,
 * fresh installed as its handle (fresh NULL: only look). */
gort_weak *gc_special_weak(uintptr_t obj, uintptr_t slot, mspan *s, gort_weak *fresh);
/* Adds a cleanup fn(arg) to obj: 0 or -ENOMEM. */
int gc_special_cleanup(uintptr_t obj, uintptr_t slot, mspan *s, void (*fn)(void *), void *arg);
/* Queues fn(arg) to run on the finalizer goroutine (or thread). */
void gc_queue_call(void (*fn)(void *arg), void *arg);
/* Starts the finalizer goroutine (or thread) if it is not running: from a
 * program's thread (a goroutine is started on the caller's P). */
void gc_finalizer_runner_start(void);
/* mgcmark.c */
bool gc_roots_pending(void);
void gc_scan_deferred(gcwork *w);
/* mgc.c: a stop of the world other than the cycle's two (counted in the
 * cycle's pause). */
void gc_record_extra_pause(int64_t ns);
/* mgcpacer.c */
void gc_pacer_revise(void);
void gc_pacer_update_cons_mark(int64_t mark_ns, int64_t cpu_ns, int nprocs);
/* fork handlers of each file (0 prepare, 1 parent, 2 child), called by
 * mgc.c's fork_hook, which the scheduler's fork handlers call. */
void gc_final_fork(int which);
void gc_limiter_fork(int which);
void gc_mark_fork(int which);
void gc_work_fork(int which);
void gc_thread_fork(int which);
void gc_sweep_fork_child(void);
/* mcheckmark.c: GORT_GODEBUG=gccheckmark=1, at mark termination. */
void gc_checkmark(void);
extern bool gc_checkmark_mode; /* scanning visits for the check (mgcmark.c's scan_word) */
/* The check is scanning stacks and registers (mcheckmark.c: stale words there
 * are not errors). */
extern bool gc_checkmark_stacks;
void gc_checkmark_visit(uintptr_t obj, mspan *s, uint32_t idx, gcwork *w);
/* mgcmark.c: marked this cycle (bit, or allocated black); every root with
 * the world stopped; the data segments the last data job scanned. */
bool gc_is_marked(const mspan *s, uint32_t idx);
void gc_scan_roots_stw(gcwork *w);
void gc_scan_data_again(gcwork *w);
/* mgc.c: installed by sync (pool.c): rotates every sync.Pool's victim
 * cache; called with the world stopped as a cycle starts (Go's
 * clearpools). */
extern void (*gc_pool_cleanup_hook)(void);
/* mgc.c: installed as mem's free_os_memory_gc_hook: a full collection
 * and every cached stack back (gort_free_os_memory). */
void gc_free_os_memory_hook(void);
/* mgc.c: sysmon's tick (forced cycles); whether gort_main runs the
 * scheduler. */
void gc_sysmon_tick(void);
bool sched_started_now(void);
/* Installed by the profiler (src/prof): the execution trace's GC events and
 * the pause histogram of runtime/metrics. Called without locks held, except
 * that the allocating thread is inside its critical section for
 * GC_EV_SWEEP_* and GC_EV_ASSIST_* (the hook must not block). */
enum gc_ev {
    GC_EV_START,        /* a cycle's mark phase began (arg: the cycle number) */
    GC_EV_DONE,         /* it ended, at mark termination */
    GC_EV_ASSIST_START, /* the calling thread assists the marker */
    GC_EV_ASSIST_DONE,
    GC_EV_SWEEP_START, /* the allocating thread sweeps in proportion to allocation */
    GC_EV_SWEEP_DONE,  /* arg: pages swept */
    GC_EV_PAUSE,       /* a stop-the-world pause of the cycle ended (arg: ns) */
};
extern void (*gc_trace_hook)(int ev, uint64_t arg);
#define GC_HOOK(ev, arg)                                                                           \
    do {                                                                                           \
        void (*h_)(int, uint64_t) = __atomic_load_n(&gc_trace_hook, __ATOMIC_ACQUIRE);             \
        if (__builtin_expect(h_ != NULL, 0)) h_((ev), (arg));                                      \
    } while (0)

/* mgcthread.c: set on the collector's own threads. */
extern __thread bool gc_internal_thread __attribute__((tls_model("initial-exec")));

#endif
