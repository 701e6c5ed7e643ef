/* Marking (Go's mgcmark.go): roots, scanning, greying, draining, assists.
 *
 * Roots, each a job that one marker claims (gc_prepare_roots lists them at
 * the start of a cycle, with the world stopped):
 *   - the writable segments (data, bss) of the executable and of every
 *     loaded library, found with dl_iterate_phdr while the loader's lock is
 *     held (so a library cannot be unloaded under the scan); RELRO ranges
 *     are skipped (read-only once relocated, they cannot hold heap
 *     pointers);
 *   - the ranges registered with gort_add_roots;
 *   - runtime roots: every P's timer heap (armed timers live inside GC
 *     objects), the objects that have finalizers (what they reach must stay,
 *     not themselves: mfinal.c), the finalizer queue;
 *   - the main thread's frames above gort_main (the program's main());
 *   - every registered foreign thread: suspended (one signal), registers
 *     and stack scanned, resumed;
 *   - every goroutine, one at a time, while the program runs: a running one
 *     by suspending its thread; a parked, runnable or syscall one without
 *     stopping it, from its saved stack pointer, as an optimistic read
 *     checked against its status and run count (g.runseq), retried if it
 *     ran meanwhile. Nothing else writes a parked goroutine's stack except
 *     channel operations copying into a receiver's sudog, and those shade
 *     what they copy (chan.c), as Go's sendDirect does.
 * Only the collector's worker threads run root jobs: some of them suspend
 * threads or take the loader's lock, which an allocating thread (inside a
 * critical section a stop-the-world waits for) must never do.
 *
 * Stacks, registers, globals and registered roots are scanned
 * conservatively: a word is a pointer if gc_findobject finds an allocated
 * GC object around it (interior pointers count). Objects are scanned by
 * their type: per-span heap bits, the span's slot types (span_slottype),
 * or every word for conservative objects. Large objects are scanned in 128 KiB oblets, each a
 * work item of its own (Go's maxObletBytes), so a huge array neither stalls
 * one marker nor makes termination wait.
 *
 * Mark assists: a thread that allocates while the collector marks owes
 * scan work in proportion (gc_pacer.assist_work_per_byte); it pays from
 * background workers' surplus credit first, then by draining grey objects
 * itself, inside its allocation's critical section (never a root job), and
 * when no grey object is left to take it waits, outside that section, for
 * the workers to earn the rest (Go's parked assist): the pacer's assist
 * ratio then bounds what a thread allocates per byte the workers scan. */
#define _GNU_SOURCE
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/nanotime.h"
#include "base/sanitizer.h"
#include "mem/arena.h"
#include "mem/fixalloc.h"
#include "sched/proc.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <string.h>

/* proc.c: the main thread's stack above gort_main's frame. */
extern uintptr_t sched_main_stack_lo, sched_main_stack_hi;

#define OBLET_BYTES ((uintptr_t)128 << 10)

/* ---- greying ---- */

/* Whether slot idx of s was allocated black in the current mark phase
 * (mgcsweep.c: handed out since fi_markstart). A stale read of freeindex
 * only errs toward "not black", which greys a black object: harmless. */
static inline bool allocated_black(const mspan *s, uint32_t idx) {
    if (atomic_load_acq(&s->markgen) != atomic_load_relaxed(&gc_state.markgen)) return false;
    if (s->sizeclass == 0) return true;
    return idx >= s->fi_markstart && idx < atomic_load_relaxed(&s->freeindex) &&
           !((atomic_load_relaxed(span_allocbits(s, idx >> 6)) >> (idx & 63)) & 1);
}

void gc_greyobject(uintptr_t obj, mspan *s, uint32_t idx, gcwork *w) {
    uint64_t *mw = span_markbits(s, idx >> 6);
    uint64_t bit = (uint64_t)1 << (idx & 63);
    if (atomic_load_relaxed(mw) & bit) return;
    if (allocated_black(s, idx)) return;
    if (atomic_or(mw, bit) & bit) return;
    w->bytes_marked += s->sizeclass ? s->elemsize : s->npages * PAGE_SIZE;
    if (s->noscan) return;
    gcw_put(w, obj);
}

/* GORT_GODEBUG=gccheckmark=1: while set (world stopped, mcheckmark.c),
 * scanning visits objects for the check instead of greying them. */
bool gc_checkmark_mode;

/* Greys the object of small span s (at base) that p points into, unless it
 * is marked, free or allocated black: scan_word's tail. */
static inline __attribute__((always_inline)) void mark_slot(uintptr_t p, mspan *s, uintptr_t base,
                                                            gcwork *w) {
    uint32_t i = span_obj_index(s, p);
    uint64_t bit = (uint64_t)1 << (i & 63);
    uint64_t *mw = span_markbits(s, i >> 6);
    if (atomic_load_relaxed(mw) & bit) return; /* marked already: the common case */
    /* Allocated: below freeindex, or in allocbits (a free slot is ignored). */
    if (i >= atomic_load_relaxed(&s->freeindex) &&
        !(atomic_load_relaxed(span_allocbits(s, i >> 6)) & bit))
        return;
    if (allocated_black(s, i)) return;
    if (atomic_or(mw, bit) & bit) return;
    w->bytes_marked += s->elemsize;
    if (!s->noscan) gcw_put(w, base + (uintptr_t)i * s->elemsize);
}

/* The marker's inner step for one word that may be a pointer: gc_findobject
 * and gc_greyobject, inlined, with the common case first (a small object
 * already marked, or marked now and pushed). */
static inline __attribute__((always_inline)) void scan_word(uintptr_t p, gcwork *w) {
    if (!gc_heap_candidate(p)) return;
    mspan *s = span_of(p);
    if (!s || s->kind != SPAN_GC || s->state != SPAN_IN_USE) return;
    uintptr_t base = s->base;
    if (__builtin_expect(s->sizeclass == 0 || p - base >= (uintptr_t)s->nelems * s->elemsize ||
                             gc_checkmark_mode,
                         0)) {
        mspan *s2;
        uint32_t idx;
        uintptr_t obj = gc_findobject(p, &s2, &idx);
        if (!obj) return;
        if (gc_checkmark_mode)
            gc_checkmark_visit(obj, s2, idx, w);
        else
            gc_greyobject(obj, s2, idx, w);
        return;
    }
    mark_slot(p, s, base, w);
}

/* Whether the object at idx of s is marked in this cycle (mark bit, or
 * allocated black). */
bool gc_is_marked(const mspan *s, uint32_t idx) {
    return ((atomic_load_relaxed(span_markbits(s, idx >> 6)) >> (idx & 63)) & 1) ||
           allocated_black(s, idx);
}

void gc_shade(uintptr_t p, gcwork *w) {
    scan_word(p, w);
}

void gc_shade_buf(const uintptr_t *v, uint32_t n, gcwork *w) {
    for (uint32_t i = 0; i < n; i++) scan_word(v[i], w);
}

/* What gc_scanblock does with each word: under ASan, scan_word out of
 * line. gcc (12) keeps the use-after-scope poisoning of an instrumented
 * always_inline callee's addressable locals (scan_word's s2 and idx) when
 * it inlines it into a NO_ASAN function, which has no ASan frame to clear
 * that poison on return. Inlined here, every slow-path word (a large
 * object, checkmark's every word) left 16 bytes of stale poison below the
 * stack pointer, and a later frame there whose prologue does not rewrite
 * them (gcc's writes only the redzones) was reported: gc_drain's prefetch
 * ring on a mark worker, after checkmark's and mark termination's stack
 * scans, as a stack-use-after-scope (1 test_gccheckmark run in 6). Out of
 * line, scan_word has an instrumented frame of its own, which its epilogue
 * cleans. tests/asan_shadow.sh checks that no NO_ASAN function writes the
 * shadow. */
#if GORT_HAVE_ASAN
static __attribute__((noinline)) void scanblock_word(uintptr_t p, gcwork *w) {
    scan_word(p, w);
}
#else
#define scanblock_word scan_word
#endif

/* Conservative: every aligned word of [b, b + n). Reads stack memory that
 * ASan may consider poisoned (redzones of live frames); NO_ASAN, so it
 * inlines nothing instrumented (above). */
NO_ASAN void gc_scanblock(uintptr_t b, uintptr_t n, gcwork *w) {
    b = (b + 7) & ~(uintptr_t)7;
    uintptr_t end = (b + n) & ~(uintptr_t)7;
    if (end < b) return;
    for (uintptr_t a = b; a < end; a += 8) scanblock_word(*(const uintptr_t *)a, w);
    w->scan_work += (int64_t)(end - b);
}

/* The words of [b, e) of an object whose data starts at d, typed by t
 * (repeated every t->size bytes). */
static void scan_typed(uintptr_t d, uintptr_t b, uintptr_t e, const gort_type *t, gcwork *w) {
    if (t == &gc_conservative_type || t->size < sizeof(void *)) {
        gc_scanblock(b, e - b, w);
        return;
    }
    size_t tsz = t->size;
    uintptr_t off = (b - d) % tsz, el = b - off; /* the element containing b */
    for (; el < e; el += tsz) {
        if (tsz <= 64 * sizeof(void *) && t->has_ptrmask) {
            for (uint64_t m = t->ptrmask; m; m &= m - 1) {
                uintptr_t a = el + (uintptr_t)__builtin_ctzll(m) * sizeof(void *);
                if (a >= b && a < e) scan_word(*(const uintptr_t *)a, w);
            }
        } else {
            for (size_t k = 0; k < t->nfields; k++) {
                uintptr_t fa = el + t->fields[k].offset, fe = fa + t->fields[k].len;
                if (fa < b) fa = b;
                if (fe > e) fe = e;
                for (uintptr_t a = fa; a < fe; a += sizeof(void *))
                    scan_word(*(const uintptr_t *)a, w);
            }
        }
    }
    w->scan_work += (int64_t)(e - b);
}

/* A heap-bit object b of span s (not in checkmark mode). A pointer into
 * b's own span (most are: an object's children are usually allocated right
 * after it) needs no span lookup and no check of the span's kind and
 * state. */
static inline __attribute__((always_inline)) void scan_small(uintptr_t b, mspan *s, gcwork *w) {
    uintptr_t base = s->base, size = s->elemsize, len = (uintptr_t)s->nelems * size;
    for (uint64_t m = heapbits_object(s, b); m; m &= m - 1) {
        uintptr_t p = *(const uintptr_t *)(b + (size_t)__builtin_ctzll(m) * 8);
        if (p - base < len)
            mark_slot(p, s, base, w);
        else
            scan_word(p, w);
    }
    w->scan_work += (int64_t)size;
}

void gc_scanobject(uintptr_t b, gcwork *w) {
    mspan *s = span_of(b);
    if (!s) throw("scanobject: not a heap address");
    if (s->sizeclass == 0) {
        uintptr_t base = s->base, end = base + s->npages * PAGE_SIZE;
        const gort_type *t = *span_largetype(s);
        if (!t) return;
        if (b == base && end - base > OBLET_BYTES)
            for (uintptr_t o = base + OBLET_BYTES; o < end; o += OBLET_BYTES) gcw_put(w, o);
        uintptr_t e = b + OBLET_BYTES < end ? b + OBLET_BYTES : end;
        scan_typed(base, b, e, t, w);
        return;
    }
    size_t size = s->elemsize;
    if (s->heapbits) { /* at most 64 words (GC_HEAPBITS_MAX) */
        if (!gc_checkmark_mode) {
            scan_small(b, s, w);
            return;
        }
        for (uint64_t m = heapbits_object(s, b); m; m &= m - 1)
            scan_word(*(const uintptr_t *)(b + (size_t)__builtin_ctzll(m) * 8), w);
        w->scan_work += (int64_t)size;
        return;
    }
    /* Over the heap-bits limit: the type the slot was last allocated with
     * (an object the marker scans was allocated before the mark phase, so
     * its type was stored before it). */
    const gort_type *t = *span_slottype(s, span_obj_index(s, b));
    if (!t) return;
    scan_typed(b, b, b + size, t, w);
}

/* ---- registered roots ---- */

typedef struct root_range {
    uintptr_t lo, hi;
} root_range;
static lock_t roots_lock = LOCK_INIT;
static root_range *roots;
static size_t nroots, caproots;
static uint64_t roots_sys;

int gc_add_root_range(uintptr_t lo, uintptr_t hi, bool add) {
    if (hi <= lo) return -EINVAL;
    lock(&roots_lock);
    int rc = 0;
    if (add) {
        if (nroots == caproots) {
            size_t ncap = caproots ? caproots * 2 : 64;
            root_range *nr = persistent_alloc(ncap * sizeof *nr, 64, &roots_sys);
            if (!nr) {
                unlock(&roots_lock);
                return -ENOMEM;
            }
            if (nroots) memcpy(nr, roots, nroots * sizeof *nr);
            atomic_store_rel(&roots, nr); /* the old array is left for readers (rare) */
            caproots = ncap;
        }
        roots[nroots].lo = lo;
        roots[nroots].hi = hi;
        atomic_store_rel(&nroots, nroots + 1);
    } else {
        rc = -ENOENT;
        for (size_t i = 0; i < nroots; i++) {
            if (roots[i].lo == lo && roots[i].hi == hi) {
                roots[i] = roots[nroots - 1];
                atomic_store_rel(&nroots, nroots - 1);
                rc = 0;
                break;
            }
        }
    }
    unlock(&roots_lock);
    return rc;
}

static void scan_registered_roots(gcwork *w) {
    /* Under the lock: a range removed meanwhile must not be scanned after
     * the program freed it. Scanning does not block. */
    lock(&roots_lock);
    for (size_t i = 0; i < nroots; i++) gc_scanblock(roots[i].lo, roots[i].hi - roots[i].lo, w);
    unlock(&roots_lock);
}

/* ---- data and bss ---- */

#define MAX_DATA_RANGES 1024
static root_range data_ranges[MAX_DATA_RANGES];
static size_t ndata_ranges;

/* The runtime's own address-holding globals (GORT_RTDATA, mem/arena.h):
 * never roots. The linker brackets the section in this object, the program
 * for libgort.a, libgort.so for itself. */
extern char __start_gort_rtdata[] __attribute__((weak, visibility("hidden")));
extern char __stop_gort_rtdata[] __attribute__((weak, visibility("hidden")));

/* Scans [lo, hi) but the runtime's own section, and records what it scanned
 * for checkmark's second pass. */
static void scan_data(uintptr_t lo, uintptr_t hi, gcwork *w) {
    uintptr_t xlo = (uintptr_t)__start_gort_rtdata, xhi = (uintptr_t)__stop_gort_rtdata;
    if (xlo && xhi > lo && xlo < hi) {
        if (xlo > lo) scan_data(lo, xlo, w);
        if (xhi < hi) scan_data(xhi, hi, w);
        return;
    }
    gc_scanblock(lo, hi - lo, w);
    if (ndata_ranges < MAX_DATA_RANGES) data_ranges[ndata_ranges++] = (root_range){lo, hi};
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    gcwork *w = arg;
    uintptr_t relro_lo = 0, relro_hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_RELRO) {
            relro_lo = info->dlpi_addr + ph->p_vaddr;
            relro_hi = relro_lo + ph->p_memsz;
        }
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (relro_hi > lo && relro_lo < hi) { /* scan around the RELRO part */
            if (relro_lo > lo) scan_data(lo, relro_lo, w);
            if (relro_hi < hi) scan_data(relro_hi, hi, w);
        } else {
            scan_data(lo, hi, w);
        }
        atomic_xadd(&gc_state.globals_bytes, (int64_t)(hi - lo));
    }
    return 0;
}

/* The writable segments the last data-and-bss job scanned (checkmark scans
 * them again with the world stopped, without the loader's lock). */
void gc_scan_data_again(gcwork *w) {
    for (size_t i = 0; i < ndata_ranges; i++)
        gc_scanblock(data_ranges[i].lo, data_ranges[i].hi - data_ranges[i].lo, w);
}

/* ---- stacks ---- */

static void scan_regs(const suspend_ctx *ctx, gcwork *w) {
    for (int i = 0; i < 16; i++) scan_word(ctx->regs[i], w);
    for (int i = 0; i < 32; i++) scan_word(ctx->xmm[i], w);
}

/* [lo, hi) of a stack, if it looks sane. */
static void scan_stack(uintptr_t lo, uintptr_t hi, gcwork *w) {
    if (lo >= hi || hi - lo > ((uintptr_t)1 << 36)) return;
    gc_scanblock(lo, hi - lo, w);
    atomic_xadd(&gc_state.stack_scan_bytes, (int64_t)(hi - lo));
}

/* A suspended context on a stack [slo, shi): registers, then from the
 * stack pointer, red zone included. */
static bool scan_suspended(const suspend_ctx *ctx, uintptr_t slo, uintptr_t shi, gcwork *w) {
    uintptr_t sp = ctx->sp;
    if (sp < slo || sp > shi) return false;
    scan_regs(ctx, w);
    uintptr_t lo = sp - STW_RED_ZONE >= slo ? sp - STW_RED_ZONE : slo;
    scan_stack(lo, shi, w);
    return true;
}

#define MAX_DEFERRED 256
static lock_t deferred_lock = LOCK_INIT;
static g *deferred[MAX_DEFERRED];
static size_t ndeferred;
static bool deferred_overflow;

/* One goroutine's stack and its start argument (see the header). */
static void scan_g(g *gp, gcwork *w) {
    scan_word((uintptr_t)atomic_load_relaxed(&gp->arg), w);
    scan_word((uintptr_t)atomic_load_relaxed(&gp->param), w);
    for (int tries = 0; tries < 1000; tries++) {
        /* runseq before the status: a goroutine seen not running after
         * seq was read has not run since, as long as seq stays the same
         * (runseq moves before it can run again). Read the other way round,
         * it could start running and stop again between the two reads. */
        uint32_t seq = atomic_load_acq(&gp->runseq);
        uint32_t st = atomic_load_acq(&gp->status);
        if (st == G_DEAD || st == G_IDLE) return;
        uintptr_t lo = gp->stack.lo, hi = gp->stack.hi;
        if (st == G_RUNNING) {
            suspend_ctx ctx;
            if (sched_suspend_g(gp, &ctx)) {
                if (!scan_suspended(&ctx, lo, hi, w)) /* not yet on its stack */
                    scan_stack((uintptr_t)gp->ctx.sp, hi, w);
                sched_resume_g(gp);
                return;
            }
            continue; /* it stopped running: read it as parked */
        }
        uintptr_t sp;
        if (st == G_SYSCALL) {
            sp = atomic_load_relaxed(&gp->syscallsp);
            for (int i = 0; i < 6; i++) scan_word(gp->syscall_regs[i], w);
        } else {
            sp = (uintptr_t)gp->ctx.sp;
        }
        if (sp >= lo && sp <= hi) scan_stack(sp, hi, w);
        atomic_fence();
        if (atomic_load_acq(&gp->runseq) == seq && atomic_load_acq(&gp->status) == st) return;
        if (tries > 8) cpu_relax();
    }
    /* It keeps switching between running and not (two goroutines handing a
     * value back and forth on two Ps, say): scan it with the world stopped,
     * in a short stop of its own (gc_scan_deferred). */
    lock(&deferred_lock);
    if (ndeferred < MAX_DEFERRED)
        deferred[ndeferred++] = gp;
    else
        deferred_overflow = true;
    unlock(&deferred_lock);
}

/* With the world stopped: one goroutine's stack as it stands. */
static void scan_g_stopped(g *gp, gcwork *w) {
    uint32_t st = atomic_load_acq(&gp->status);
    if (st == G_DEAD || st == G_IDLE) return;
    scan_word((uintptr_t)gp->arg, w);
    scan_word((uintptr_t)gp->param, w);
    uintptr_t lo = gp->stack.lo, hi = gp->stack.hi;
    if (st == G_RUNNING) {
        m *mp = gp->m;
        const suspend_ctx *ctx = mp ? stw_suspended(&mp->st) : NULL;
        if (ctx && scan_suspended(ctx, lo, hi, w)) return;
        scan_stack((uintptr_t)gp->ctx.sp, hi, w); /* the stopper's own, or not yet on it */
        return;
    }
    uintptr_t sp = (uintptr_t)gp->ctx.sp;
    if (st == G_SYSCALL) {
        sp = gp->syscallsp;
        for (int i = 0; i < 6; i++) scan_word(gp->syscall_regs[i], w);
    }
    if (sp >= lo && sp <= hi) scan_stack(sp, hi, w);
}

/* Goroutines whose concurrent scan kept failing: a brief stop of the world
 * scans their stacks (no draining meanwhile: that goes on concurrently). */
void gc_scan_deferred(gcwork *w) {
    if (!atomic_load_acq(&ndeferred) && !atomic_load_acq(&deferred_overflow)) return;
    stop_the_world("GC stack scan");
    int64_t t0 = nanotime();
    lock(&deferred_lock);
    if (deferred_overflow) {
        for (g *gp = atomic_load_acq(&allgs); gp; gp = gp->alllink) scan_g_stopped(gp, w);
    } else {
        for (size_t i = 0; i < ndeferred; i++) scan_g_stopped(deferred[i], w);
    }
    ndeferred = 0;
    deferred_overflow = false;
    unlock(&deferred_lock);
    gc_record_extra_pause(nanotime() - t0);
    start_the_world();
}

static lock_t gcursor_lock = LOCK_INIT;
static g *gcursor; /* the next goroutine to scan this cycle */

/* Takes up to n goroutines to scan; 0 when the cycle's list is done. */
static int take_gs(g **out, int n) {
    int k = 0;
    lock(&gcursor_lock);
    while (k < n && gcursor) {
        out[k++] = gcursor;
        gcursor = gcursor->alllink;
    }
    unlock(&gcursor_lock);
    return k;
}

static void scan_foreign_threads(gcwork *w) {
    for (gcthread *t = atomic_load_acq(&gc_threads); t; t = t->next_all) {
        if (!atomic_load_acq(&t->foreign)) continue;
        suspend_ctx ctx;
        if (!stw_suspend_foreign(&t->stw, &ctx)) continue; /* gone, or ourselves */
        if (!scan_suspended(&ctx, t->stack_lo, t->stack_hi, w))
            throw("GC: a foreign thread's stack pointer is outside its stack");
        stw_resume_foreign(&t->stw);
    }
}

/* ---- runtime roots ---- */

static void scan_timers(gcwork *w) {
    int32_t np = atomic_load_acq(&sched.nallp);
    for (int32_t i = 0; i < np; i++) {
        p *pp = allp[i];
        if (!pp) continue;
        lock(&pp->timers_lock);
        for (int32_t k = 0; k < pp->ntimers; k++) scan_word((uintptr_t)pp->timers[k], w);
        unlock(&pp->timers_lock);
    }
}

/* ---- jobs ---- */

enum { JOB_DATA, JOB_ROOTS, JOB_RUNTIME, JOB_MAINSTACK, JOB_FOREIGN, NFIXED_JOBS };

void gc_prepare_roots(void) {
    atomic_store_relaxed(&gc_state.root_next, 0);
    atomic_store_relaxed(&gc_state.root_jobs, NFIXED_JOBS);
    gcursor = atomic_load_acq(&allgs);
    /* The heap's extent now: arenas added later hold only objects allocated
     * black, which need no greying. */
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (struct heap_arena *ha = atomic_load_acq(&arena_list); ha; ha = ha->next) {
        if (ha->base < lo) lo = ha->base;
        if (ha->base + ARENA_BYTES > hi) hi = ha->base + ARENA_BYTES;
    }
    if (hi == 0) lo = hi = 0;
    gc_heap_range.below = hi ? lo - 8 : 0;
    gc_heap_range.len = hi ? hi - lo + 8 : 0;
}

/* Whether root work remains unclaimed. */
bool gc_roots_pending(void) {
    return atomic_load_relaxed(&gc_state.root_next) < atomic_load_relaxed(&gc_state.root_jobs) ||
           atomic_load_relaxed(&gcursor) != NULL || atomic_load_relaxed(&ndeferred) != 0 ||
           atomic_load_relaxed(&deferred_overflow);
}

/* Claims and runs one root job; false when none is left. */
static bool run_root_job(gcwork *w) {
    uint32_t j = atomic_xadd(&gc_state.root_next, 1);
    if (j < NFIXED_JOBS) {
        switch (j) {
        case JOB_DATA:
            ndata_ranges = 0;
            dl_iterate_phdr(phdr_cb, w);
            break;
        case JOB_ROOTS:
            scan_registered_roots(w);
            break;
        case JOB_RUNTIME:
            scan_timers(w);
            gc_mark_specials(w);
            break;
        case JOB_MAINSTACK:
            if (sched_main_stack_hi) scan_stack(sched_main_stack_lo, sched_main_stack_hi, w);
            break;
        case JOB_FOREIGN:
            scan_foreign_threads(w);
            break;
        }
        return true;
    }
    g *batch[16];
    int n = take_gs(batch, 16);
    for (int i = 0; i < n; i++) scan_g(batch[i], w);
    if (n > 0) return true;
    if (atomic_load_acq(&ndeferred) || atomic_load_acq(&deferred_overflow)) {
        gc_scan_deferred(w);
        return true;
    }
    return false;
}

/* Scanning is bound by memory latency (each grey object is usually not in
 * the cache: measured 200+ ns per 16-byte tree node on the project's
 * machine, nearly all of it the load of the object's first word). So
 * objects taken from the work buffer are prefetched and scanned only
 * PREFETCH_RING objects later (the prefetch FIFO of Garner, Blackburn and
 * Frampton's "Effective prefetch for mark-sweep garbage collection"). */
#define PREFETCH_RING 16

/* Zeroes xmm0-15 on the way out of a drain. A drain on a mutator thread (an
 * assist, mark termination run by the thread that finished the mark) moves
 * grey object pointers through vector registers: gcw_balance's memcpy of
 * half a work buffer is libc's, which copies through up to nine of them.
 * Nothing later on that thread need overwrite them (most C code uses no
 * vector register beyond xmm0-5), and the collector scans a running
 * goroutine's xmm registers conservatively when it stops it (they can hold
 * the only copy of a pointer there), so those stale copies kept what they
 * named alive, cycle after cycle: in test_gc collect_trees, subtrees of
 * 2,000 to 6,000 nodes of a dead tree, kept by xmm6-8 of goroutine 1 (about
 * one run in three under load). The registers are caller-saved: no caller
 * expects them kept across the call. */
static inline void clear_vector_regs(void) {
#if defined(__x86_64__)
#ifdef __AVX__
#define VZERO(n) "vpxor %%xmm" #n ", %%xmm" #n ", %%xmm" #n "\n\t"
#else
#define VZERO(n) "pxor %%xmm" #n ", %%xmm" #n "\n\t"
#endif
    __asm__ __volatile__(
        VZERO(0) VZERO(1) VZERO(2) VZERO(3) VZERO(4) VZERO(5) VZERO(6) VZERO(7) VZERO(8) VZERO(9)
            VZERO(10) VZERO(11) VZERO(12) VZERO(13) VZERO(14) VZERO(15)::
                : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                  "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
#undef VZERO
#endif
}

int64_t gc_drain(gcwork *w, int64_t budget, const volatile uint32_t *stop, bool roots) {
    int64_t start = w->scan_work, limit = budget >= 0 ? start + budget : INT64_MAX;
    uintptr_t ring[PREFETCH_RING];
    unsigned rh = 0, rn = 0;
    uint32_t n = 0;
    while (!(stop && *stop)) {
        /* Root jobs first, then every 64 objects (measured: a check per
         * object was 15 instructions of the ~230 per object). */
        if (roots && (n & 63) == 0 && gc_roots_pending()) {
            if (run_root_job(w)) continue;
        }
        uintptr_t b = gcw_get(w);
        if (b) {
            __builtin_prefetch((const void *)b);
            if (rn < PREFETCH_RING) {
                ring[(rh + rn++) % PREFETCH_RING] = b;
                continue;
            }
            uintptr_t c = ring[rh];
            ring[rh] = b;
            rh = (rh + 1) % PREFETCH_RING;
            b = c;
        } else if (rn) {
            b = ring[rh];
            rh = (rh + 1) % PREFETCH_RING;
            rn--;
        } else {
            break;
        }
        /* The small objects' scan inline, gc_scanobject for the rest
         * (measured, callgrind on binarytrees: the call's register saves
         * were 18 of the ~170 instructions per object). */
        mspan *s = span_of(b);
        if (__builtin_expect(s && s->heapbits && !gc_checkmark_mode, 1))
            scan_small(b, s, w);
        else
            gc_scanobject(b, w);
        if (w->scan_work >= limit) break;
        if ((++n & 63) == 0) gcw_balance(w);
    }
    /* Objects still in the ring are grey: back to the work buffer. */
    for (; rn; rn--, rh = (rh + 1) % PREFETCH_RING) gcw_put(w, ring[rh]);
    clear_vector_regs();
    return w->scan_work - start;
}

/* ---- mark termination ---- */

#define G0_STACK_MAX ((uintptr_t)1 << 30) /* an M's own stack is below this */

static void rescan_thread(stw_thread *st, uintptr_t slo, uintptr_t shi, gcwork *w) {
    const suspend_ctx *ctx = stw_suspended(st);
    if (ctx) scan_suspended(ctx, slo, shi, w);
}

void gc_mark_termination_scan(gcwork *w) {
    /* Every thread's write-barrier buffer. */
    for (gcthread *t = atomic_load_acq(&gc_threads); t; t = t->next_all) {
        if (t->wbn) gc_flush_wbbuf(t, w);
        if (!gcw_empty(&t->w)) throw("GC: an assist's work left over at mark termination");
    }
    /* The threads that were running user code: a GORT_STORE stopped between
     * its store and its barrier still holds the old and new values. */
    for (m *mp = sched_allm(); mp; mp = mp->alllink) {
        const suspend_ctx *ctx = stw_suspended(&mp->st);
        if (!ctx) continue;
        /* The stack sp is on: curg's, or the goroutine a switch is leaving
         * or entering (pend_g: a stop can fall between the switch of curg
         * and that of sp), or the thread's own (g0), which is below
         * stack_hi (bounded: an sp elsewhere would scan the address space). */
        g *gp = mp->curg, *pg = mp->pend_g;
        if (gp && ctx->sp >= gp->stack.lo && ctx->sp <= gp->stack.hi)
            scan_suspended(ctx, gp->stack.lo, gp->stack.hi, w);
        else if (pg && ctx->sp >= pg->stack.lo && ctx->sp <= pg->stack.hi)
            scan_suspended(ctx, pg->stack.lo, pg->stack.hi, w);
        else if (mp->stack_hi && ctx->sp < mp->stack_hi && mp->stack_hi - ctx->sp < G0_STACK_MAX)
            scan_suspended(ctx, ctx->sp - STW_RED_ZONE, mp->stack_hi, w);
        else
            scan_regs(ctx, w);
    }
    for (gcthread *t = atomic_load_acq(&gc_threads); t; t = t->next_all)
        if (atomic_load_acq(&t->foreign)) rescan_thread(&t->stw, t->stack_lo, t->stack_hi, w);
}

/* Every root, with the world stopped (checkmark's pass): nothing is
 * suspended one by one, every thread is already stopped. */
void gc_scan_roots_stw(gcwork *w) {
    gc_scan_data_again(w);
    scan_registered_roots(w);
    scan_timers(w);
    gc_mark_specials(w);
    gc_checkmark_stacks = true; /* conservative: stale words are no error (mcheckmark.c) */
    if (sched_main_stack_hi) scan_stack(sched_main_stack_lo, sched_main_stack_hi, w);
    for (g *gp = atomic_load_acq(&allgs); gp; gp = gp->alllink) scan_g_stopped(gp, w);
    gc_mark_termination_scan(w); /* running Ms' own stacks, foreign threads, buffers */
    gc_checkmark_stacks = false;
}

void gc_mark_tiny_allocs(gcwork *w) {
    for (mcache *c = mcache_all(); c; c = c->next_all)
        if (c->tiny) scan_word(c->tiny, w);
}

/* ---- assists ---- */

/* Steals up to owed units of the workers' surplus scan credit. */
static int64_t steal_credit(int64_t owed) {
    int64_t credit = atomic_load_relaxed(&gc_pacer.bg_scan_credit);
    while (credit > 0) {
        int64_t take = credit < owed ? credit : owed;
        if (atomic_cas(&gc_pacer.bg_scan_credit, &credit, credit - take)) return take;
    }
    return 0;
}

#define ASSIST_CHUNK ((int64_t)64 << 10) /* scan work between chances to stop the world */

void gc_assist(gcthread *t, int64_t bytes) {
    if (gc_phase() != GC_MARK) return;
    t->assist_credit -= bytes;
    if (t->assist_credit >= 0) return;
    gc_limiter_poll(nanotime());
    if (gc_limiter_on()) return; /* the GC CPU limiter: no assist (the debt stays) */
    gc_pacer_revise();
    double ratio = gc_pacer.assist_work_per_byte;
    int64_t owed = (int64_t)((double)-t->assist_credit * ratio);
    int64_t t0 = nanotime(), tl = t0;
    GC_HOOK(GC_EV_ASSIST_START, 0); /* the execution trace */
    for (int waits = 0; owed > 0 && gc_phase() == GC_MARK;) {
        owed -= steal_credit(owed);
        if (owed <= 0) break;
        /* Scan in chunks, each a critical section of its own (a stop of the
         * world must not find this gcw half used, nor wait long for it). */
        lock_depth++;
        /* A stop of the world that signals us mid-chunk ends the chunk at
         * once (lock_suspend_pending): a chunk is up to 64 KiB of scan work,
         * about 4,000 small objects, most of a millisecond to wait for. Not
         * when called inside another critical section: the stop waits for
         * its end anyway, and the flag, left set, would cut every chunk. */
        const volatile uint32_t *cut_by =
            lock_depth == 1 ? (const volatile uint32_t *)&lock_suspend_pending : NULL;
        atomic_xadd(&gc_state.assists_draining, 1); /* before it takes any work (try_terminate) */
        int64_t done = gc_drain(&t->w, owed < ASSIST_CHUNK ? owed : ASSIST_CHUNK, cut_by, false);
        gcw_dispose(&t->w);
        atomic_xadd(&gc_state.assists_draining, (uint32_t)-1);
        bool cut = cut_by && *cut_by; /* cut short by a stop (taken below): not out of work */
        if (--lock_depth == 0 && lock_suspend_pending) lock_suspend_now();
        owed -= done;
        int64_t now = nanotime(); /* the limiter may engage mid-assist (Go's gcDrainN) */
        gc_limiter_add(GC_LIM_ASSIST, now - tl);
        tl = now;
        gc_limiter_poll(now);
        if (gc_limiter_on()) break;
        if (done > 0 || cut) continue;
        /* No work to take: wait for the workers' credit, as Go parks the
         * goroutine (gcParkAssist), whether or not the heap has reached
         * its goal. Forgiving the debt below the goal let the program
         * allocate at full speed while one worker drained a deep
         * structure alone: every binarytrees cycle ran to its goal, so
         * what was allocated black during the mark (0.3 x the last live
         * heap with the trigger at 70%) was marked live each time, and
         * the next goal grew with it (live 67 MB marked as 96 against
         * Go's 86; peak RSS 1.25 x Go's). The wait is bounded (1000 x 50
         * us) and ends with the mark phase or when the limiter engages. */
        if (++waits > 1000 || gc_limiter_on()) break;
        uint32_t q = atomic_load_acq(&gc_state.mark_done_seq);
        futex_sleep(&gc_state.mark_done_seq, q, 50 * 1000);
        /* Waiting is not GC CPU: Go's parked assist leaves its P idle. */
        now = nanotime();
        gc_limiter_add(GC_LIM_IDLE, now - tl);
        tl = now;
    }
    GC_HOOK(GC_EV_ASSIST_DONE, 0);
    int64_t t1 = nanotime();
    atomic_xadd(&gc_state.gc_cpu_ns, t1 - t0);
    atomic_xadd(&gc_state.assist_ns, t1 - t0);
    gc_limiter_add(GC_LIM_ASSIST, t1 - tl);
    t->assist_credit = owed > 0 ? 0 : (int64_t)((double)-owed / (ratio > 0 ? ratio : 1));
}

void gc_mark_fork(int which) {
    if (which == 0) {
        lock(&roots_lock);
        lock(&deferred_lock);
        lock(&gcursor_lock);
    } else if (which == 1) {
        unlock(&gcursor_lock);
        unlock(&deferred_lock);
        unlock(&roots_lock);
    } else {
        roots_lock = deferred_lock = gcursor_lock = (lock_t)LOCK_INIT;
    }
}
