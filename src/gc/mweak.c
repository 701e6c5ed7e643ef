/* Weak pointers and cleanups (Go 1.24's weak.Pointer and runtime.AddCleanup;
 * the records and their sweep are in mfinal.c).
 *
 * A weak handle is a 16-byte noscan GC object holding its target's address:
 * the marker never looks into it, so it keeps nothing alive. It is found
 * through a special record on the target's span keyed by the address, so
 * one address has one handle while its object lives, and the record keeps
 * the handle alive for as long (the mark's root job shades it). When the
 * sweeper finds the target unmarked it stores 0 into the handle, in the step
 * that queues the object's finalizer if it has one (before anything can
 * resurrect it), and drops the record.
 *
 * Reading a handle (gort_weak_get) must never hand out an object that is
 * about to be freed, nor one that a cycle in progress will free:
 *   - while the collector marks, every span was swept at mark start, so a
 *     non-zero handle names a live object; the reader shades it (it puts it
 *     in its write-barrier buffer, as Go's weak.Pointer.Value shades): the
 *     pointer it returns may be the only strong one, on a stack this cycle
 *     already scanned;
 *   - otherwise the target's span may not be swept yet, and a dead target's
 *     handle not yet cleared. Go sweeps the span first (ensureSwept); here a
 *     span is swept only by whoever popped it off a central list or owns
 *     the mcache holding it, so instead the reader decides as the sweeper
 *     will: the span's mark bits (and allocate-black range) are those of the
 *     last mark until it is swept, so a target is live if it was marked. The
 *     read is validated as a seqlock's: the span's sweepgen is read before
 *     and after the bits, and a span being swept (sweepgen sg - 1) is waited
 *     for;
 *   - after the span was swept the handle is exact: it is read again after
 *     the span's sweepgen (acquire), and if it changed (cleared by that
 *     sweep, or the span freed and its pages reused, which a sweep that
 *     cleared the handle came before) the read starts over.
 * All of it runs as a runtime critical section (lock_depth), so that no
 * stop of the world, hence no change of phase or sweepgen, falls inside.
 *
 * Cleanups are records too: at sweep, an object found unmarked without a
 * finalizer has its cleanups queued, fn(arg) (mfinal.c), and is freed; with a
 * finalizer, they wait for the next time it is found unmarked. arg is a root
 * while the record exists: it must not reach the object. */
#define _GNU_SOURCE
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "mem/arena.h"

#include <errno.h>
#include <sched.h>
#include <time.h>

static inline void cs_enter(void) {
    lock_depth++;
    __asm__ __volatile__("" ::: "memory");
}

static inline void cs_exit(void) {
    __asm__ __volatile__("" ::: "memory");
    if (--lock_depth == 0 && lock_suspend_pending) lock_suspend_now();
}

/* The bytes of the block obj's slot is (a small object's size class, a
 * large object's pages). */
static uintptr_t slot_bytes(const mspan *s) {
    return s->sizeclass ? s->elemsize : s->npages * PAGE_SIZE;
}

GORT_API gort_weak *gort_weak_make(void *obj) {
    if (!obj) return NULL;
    gc_init();
    gc_thread_self();
    mspan *s;
    uint32_t idx;
    uintptr_t slot = gc_findobject((uintptr_t)obj, &s, &idx);
    if (!slot) throwf("gort_weak_make: pointer %p not in allocated block", obj);
    gort_weak *h = gc_special_weak((uintptr_t)obj, slot, s, NULL);
    if (!h) {
        /* Allocated outside the specials' lock (allocation may assist or
         * start a cycle); a handle that loses a race is garbage. */
        gort_weak *fresh = gc_alloc(sizeof(gort_weak), NULL, false);
        if (!fresh) return NULL;
        atomic_store_rel(&fresh->target, (uintptr_t)obj);
        h = gc_special_weak((uintptr_t)obj, slot, s, fresh);
    }
    gort_keep_alive(obj); /* the record is in before obj may die */
    return h;
}

/* One attempt at reading w (see the header): 1 with *out set, or 0 to try
 * again (the target's span was being swept, or the handle changed). */
static int weak_read(gort_weak *w, void **out) {
    *out = NULL;
    uintptr_t p = atomic_load_acq(&w->target);
    if (!p) return 1;
    bool live = false;
    mspan *s = span_of(p);
    if (s && atomic_load_acq(&s->kind) == SPAN_GC && atomic_load_acq(&s->state) == SPAN_IN_USE &&
        p - s->base < s->npages * PAGE_SIZE) {
        uint32_t sg = atomic_load_acq(&gc_state.sweepgen);
        uint32_t ssg = atomic_load_acq(&s->sweepgen);
        if (ssg == sg || ssg == sg + 3) { /* swept: the handle is exact */
            live = true;
        } else if (ssg == sg - 2 || ssg == sg + 1) { /* not yet: its last mark decides */
            uint32_t idx = s->sizeclass ? span_obj_index(s, p) : 0;
            live = gc_is_marked(s, idx);
            atomic_fence();
            if (atomic_load_acq(&s->sweepgen) != ssg) return 0;
        } else {
            return 0; /* being swept: wait for it */
        }
    }
    atomic_fence();
    if (atomic_load_acq(&w->target) != p) return 0; /* cleared (or reused) meanwhile */
    if (!live) return 1;
    if (gc_phase() != GC_OFF) gort__wb_slow(NULL, (void *)p); /* shade (Go's Value does) */
    *out = (void *)p;
    return 1;
}

GORT_API void *gort_weak_get(gort_weak *w) {
    if (!w) return NULL;
    for (int tries = 0;; tries++) {
        void *p;
        cs_enter();
        int done = weak_read(w, &p);
        cs_exit();
        if (done) return p;
        /* A sweeper holds the span (microseconds); the background one runs
         * at SCHED_IDLE priority, so let it have the CPU. */
        if (tries < 16) {
            sched_yield();
        } else {
            struct timespec ts = {0, 50 * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

GORT_API int gort_add_cleanup(void *obj, void (*fn)(void *arg), void *arg) {
    if (!obj) throw("runtime.AddCleanup: ptr is nil");
    if (!fn) return -EINVAL;
    gc_init();
    gc_thread_self();
    mspan *s;
    uint32_t idx;
    uintptr_t slot = gc_findobject((uintptr_t)obj, &s, &idx);
    if (!slot) throwf("runtime.AddCleanup: ptr %p not in allocated block", obj);
    if (arg == obj) throw("runtime.AddCleanup: ptr is equal to arg, cleanup will never run");
    if ((uintptr_t)arg - slot < slot_bytes(s))
        throw("runtime.AddCleanup: arg points into ptr's object, cleanup will never run");
    gc_finalizer_runner_start(); /* from the program's thread: it may start a goroutine */
    int rc = gc_special_cleanup((uintptr_t)obj, slot, s, fn, arg);
    gort_keep_alive(obj);
    return rc;
}
