/* Specials: finalizers, weak handles and cleanups (Go's mfinal.go, the
 * specials of mheap.go, mcleanup.go).
 *
 * Each is a record (kind, the address the program gave, the object's slot,
 * fn, arg) on its object's span, sorted by address, and on a global list.
 * During mark a root job walks the global list: for a finalizer it scans
 * the object (not marking the object itself) and shades arg: whatever the
 * object reaches stays alive, so that its finalizer can use it; for a
 * cleanup it shades arg (which must not reach the object, or the object
 * never dies); for a weak handle it shades the handle, a GC object of its
 * own that the record keeps alive as long as its target lives (so equal
 * objects give equal handles; mweak.c).
 *
 * At sweep, the records of an object found unmarked are handled together
 * (Go 1.24's mspan.sweep):
 *   - if it has a finalizer, it is kept (its live bit set: "resurrected"
 *     for one more cycle), its finalizers queued, and its weak handles
 *     cleared first, in the same step: a weak pointer reads NULL from the
 *     moment the object was found unreachable, even though the finalizer
 *     brings it back (Go's weak package promises this); its cleanups stay,
 *     to run when it is found unreachable again without a finalizer;
 *   - otherwise it is freed: its weak handles are cleared and its cleanups
 *     queued, fn(arg) without the object (a cleanup never resurrects).
 * So, as in Go: if A points to B and both become unreachable, A's finalizer
 * runs first (B was marked through A) and B's a cycle later; a finalizer
 * runs at most once; an object on a cycle of finalizable objects is never
 * finalized; a cleanup runs once, after its object is gone for good.
 *
 * The queue holds finalizers (fn(obj, arg)), cleanups and the memory-limit
 * callback (fn(arg), mgclimit.c); it is a root until each has run. They run
 * one at a time on the finalizer goroutine when the scheduler runs
 * (gort_main), else on a thread of gort's ("gort-finalizer"), which is
 * registered like any thread that uses the GC heap. */
#define _GNU_SOURCE
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/thread.h"
#include "gort/sched.h"
#include "mem/fixalloc.h"
#include "sched/runtime2.h"

#include <errno.h>

typedef struct special {
    struct special *next;               /* on its span, by obj */
    struct special *allnext, **allprev; /* every special */
    mspan *span;
    uintptr_t obj;  /* the address the program registered (inside the slot) */
    uintptr_t slot; /* the object's slot (what mark and sweep look at) */
    uint8_t kind;   /* enum gc_special_kind */
    void *fn;       /* finalizer: void (*)(void *obj, void *arg); cleanup: void (*)(void *arg) */
    void *arg;      /* the finalizer's or cleanup's arg; a weak special's handle */
} special;

enum { Q_FINALIZER, Q_CALL }; /* fn(obj, arg); fn(arg) */

typedef struct finalizer {
    struct finalizer *next;
    void *obj;
    void *fn;
    void *arg;
    int kind;
} finalizer;

static lock_t specials_lock = LOCK_INIT; /* spans' special lists and the global list */
static special *all_specials;
static fixalloc special_pool, finalizer_pool;
static uint64_t final_sys;
static bool pools_ready;

static lock_t finq_lock = LOCK_INIT;
static finalizer *finq_head, *finq_tail;
static g *fing_parked;       /* the finalizer goroutine, parked on an empty queue */
static uint32_t finq_seq;    /* futex word for the finalizer thread */
static uint32_t runner_kind; /* 0 none, 1 goroutine, 2 thread */
uint64_t gc_finalizers_run;

static void pools_init(void) {
    if (pools_ready) return;
    fixalloc_init(&special_pool, sizeof(special), &final_sys);
    fixalloc_init(&finalizer_pool, sizeof(finalizer), &final_sys);
    pools_ready = true;
}

/* ---- records ---- */

/* Under specials_lock: the link where a record for obj goes (after every
 * record at a lower address), and the first record of obj of kind, if any. */
static special **find(mspan *s, uintptr_t obj, int kind, special **found) {
    special **pp = &s->specials;
    for (; *pp && (*pp)->obj < obj; pp = &(*pp)->next) {
    }
    *found = NULL;
    for (special *sp = *pp; sp && sp->obj == obj; sp = sp->next) {
        if (sp->kind == kind) {
            *found = sp;
            break;
        }
    }
    return pp;
}

/* Under specials_lock: unlinks sp from its span's list (pp points to it)
 * and from the global list. */
static void unlink_special(special **pp, special *sp) {
    *pp = sp->next;
    *sp->allprev = sp->allnext;
    if (sp->allnext) sp->allnext->allprev = sp->allprev;
}

/* A new record inserted at pp, or NULL when out of memory; under
 * specials_lock. */
static special *insert(special **pp, mspan *s, uintptr_t obj, uintptr_t slot, int kind, void *fn,
                       void *arg) {
    pools_init();
    special *sp = fixalloc_alloc(&special_pool);
    if (!sp) return NULL;
    sp->span = s;
    sp->obj = obj;
    sp->slot = slot;
    sp->kind = (uint8_t)kind;
    sp->fn = fn;
    sp->arg = arg;
    sp->next = *pp;
    *pp = sp;
    sp->allnext = all_specials;
    sp->allprev = &all_specials;
    if (all_specials) all_specials->allprev = &sp->allnext;
    all_specials = sp;
    return sp;
}

/* A record added while the collector marks may come after the root job
 * that walks them (Go's addfinalizer and addCleanup scan theirs): what it
 * keeps alive is shaded now, through the write barrier's buffer. */
static void shade_new(void *p) {
    gort__wb_slow(NULL, p);
}

/* ---- mark and sweep ---- */

void gc_mark_specials(gcwork *w) {
    lock(&specials_lock);
    for (special *sp = all_specials; sp; sp = sp->allnext) {
        if (sp->kind == GC_SPECIAL_FINALIZER && !sp->span->noscan) gc_scanobject(sp->slot, w);
        gc_shade((uintptr_t)sp->arg, w);
        if (sp->kind != GC_SPECIAL_WEAK) gc_shade((uintptr_t)sp->fn, w);
    }
    unlock(&specials_lock);
    lock(&finq_lock);
    for (finalizer *f = finq_head; f; f = f->next) {
        gc_shade((uintptr_t)f->obj, w);
        gc_shade((uintptr_t)f->arg, w);
    }
    unlock(&finq_lock);
}

static void wake_runner(void) {
    g *gp = fing_parked;
    fing_parked = NULL;
    if (gp) sched_ready(gp);
    atomic_xadd(&finq_seq, 1);
    futex_wake(&finq_seq, 1);
}

static void enqueue(int kind, void *obj, void *fn, void *arg) {
    lock(&finq_lock);
    pools_init();
    finalizer *f = fixalloc_alloc(&finalizer_pool);
    if (!f) throw("out of memory queueing a finalizer");
    f->obj = obj;
    f->fn = fn;
    f->arg = arg;
    f->kind = kind;
    f->next = NULL;
    if (finq_tail)
        finq_tail->next = f;
    else
        finq_head = f;
    finq_tail = f;
    wake_runner();
    unlock(&finq_lock);
}

void gc_queue_call(void (*fn)(void *arg), void *arg) {
    enqueue(Q_CALL, NULL, (void *)fn, arg);
}

/* Clears a weak handle: its target reads NULL from now on (mweak.c). */
static void clear_weak(special *sp) {
    atomic_store_rel(&((gort_weak *)sp->arg)->target, 0);
}

bool gc_sweep_specials(mspan *s, uint64_t *live) {
    bool kept = false;
    lock(&specials_lock);
    special **pp = &s->specials;
    while (*pp) {
        /* The records of one object are consecutive (sorted by address). */
        uintptr_t slot = (*pp)->slot;
        uint32_t idx = s->sizeclass ? span_obj_index(s, slot) : 0;
        bool alive = s->sizeclass ? (live[idx >> 6] >> (idx & 63)) & 1 : *live & 1;
        if (alive) {
            while (*pp && (*pp)->slot == slot) pp = &(*pp)->next;
            continue;
        }
        bool has_fin = false;
        for (special *sp = *pp; sp && sp->slot == slot; sp = sp->next)
            if (sp->kind == GC_SPECIAL_FINALIZER) has_fin = true;
        if (has_fin) { /* kept one more cycle for its finalizer */
            if (s->sizeclass)
                live[idx >> 6] |= (uint64_t)1 << (idx & 63);
            else
                *live |= 1;
            kept = true;
        }
        for (special *sp; (sp = *pp) && sp->slot == slot;) {
            if (sp->kind == GC_SPECIAL_CLEANUP && has_fin) { /* for when it is gone for good */
                pp = &sp->next;
                continue;
            }
            unlink_special(pp, sp);
            if (sp->kind == GC_SPECIAL_WEAK)
                clear_weak(sp); /* before anything runs: NULL even if resurrected */
            else if (sp->kind == GC_SPECIAL_FINALIZER)
                enqueue(Q_FINALIZER, (void *)sp->obj, sp->fn, sp->arg);
            else
                enqueue(Q_CALL, NULL, sp->fn, sp->arg);
            fixalloc_free(&special_pool, sp);
        }
    }
    unlock(&specials_lock);
    return kept;
}

/* ---- weak handles and cleanups (mweak.c) ---- */

gort_weak *gc_special_weak(uintptr_t obj, uintptr_t slot, mspan *s, gort_weak *fresh) {
    lock(&specials_lock);
    special *cur;
    special **pp = find(s, obj, GC_SPECIAL_WEAK, &cur);
    gort_weak *h = cur ? cur->arg : NULL;
    if (!h && fresh && insert(pp, s, obj, slot, GC_SPECIAL_WEAK, NULL, fresh)) h = fresh;
    unlock(&specials_lock);
    if (h == fresh && h) shade_new(h);
    return h;
}

int gc_special_cleanup(uintptr_t obj, uintptr_t slot, mspan *s, void (*fn)(void *), void *arg) {
    lock(&specials_lock);
    special *cur;
    special **pp = find(s, obj, GC_SPECIAL_CLEANUP, &cur);
    special *sp = insert(pp, s, obj, slot, GC_SPECIAL_CLEANUP, (void *)fn, arg);
    unlock(&specials_lock);
    if (!sp) return -ENOMEM;
    shade_new(arg);
    return 0;
}

/* ---- the runner ---- */

static finalizer *finq_take(void) {
    finalizer *f = finq_head;
    if (f) {
        finq_head = f->next;
        if (!finq_head) finq_tail = NULL;
    }
    return f;
}

/* Not inlined: once it returns, no copy of obj or arg is left in the
 * runner's frame, which is scanned conservatively while it waits (a parked
 * finalizer goroutine would keep the last finalized object alive). */
static __attribute__((noinline)) void run_one(finalizer *f) {
    void *obj = f->obj, *arg = f->arg, *fn = f->fn;
    int kind = f->kind;
    lock(&finq_lock);
    fixalloc_free(&finalizer_pool, f);
    unlock(&finq_lock);
    if (kind == Q_FINALIZER) {
        ((void (*)(void *, void *))fn)(obj, arg);
        atomic_xadd(&gc_finalizers_run, 1);
    } else {
        ((void (*)(void *))fn)(arg);
    }
}

static bool unlock_finq(g *gp, void *lk) {
    (void)gp;
    unlock((lock_t *)lk);
    return true;
}

static void fin_goroutine(void *arg) {
    (void)arg;
    for (;;) {
        lock(&finq_lock);
        finalizer *f = finq_take();
        if (!f) {
            fing_parked = sched_getg();
            sched_park(unlock_finq, &finq_lock, WAIT_REASON_FINALIZER_WAIT);
            continue;
        }
        unlock(&finq_lock);
        run_one(f);
    }
}

static void fin_thread(void *arg) {
    (void)arg;
    gc_thread_self(); /* runs program code: registered, scanned, stopped */
    for (;;) {
        uint32_t seq = atomic_load_acq(&finq_seq);
        lock(&finq_lock);
        finalizer *f = finq_take();
        unlock(&finq_lock);
        if (!f) {
            futex_sleep(&finq_seq, seq, -1);
            continue;
        }
        run_one(f);
    }
}

void gc_finalizer_runner_start(void) {
    if (atomic_load_acq(&runner_kind)) return;
    uint32_t z = 0;
    bool gor = sched_started_now();
    if (!atomic_cas(&runner_kind, &z, gor ? 1 : 2)) return;
    if (gor) {
        if (gort_go(fin_goroutine, NULL) < 0) throw("cannot start the finalizer goroutine");
    } else if (os_thread_start(fin_thread, NULL, (size_t)8 << 20, "gort-finalizer") < 0) {
        /* (a thread's usual 8 MiB: it runs the program's finalizers) */
        throw("cannot start the finalizer thread");
    }
}

/* ---- the API ---- */

GORT_API void gort_set_finalizer(void *obj, void (*fn)(void *obj, void *arg), void *arg) {
    if (!obj) throw("runtime.SetFinalizer: first argument is nil");
    gc_thread_self();
    mspan *s;
    uint32_t idx;
    uintptr_t slot = gc_findobject((uintptr_t)obj, &s, &idx);
    if (!slot) throwf("runtime.SetFinalizer: pointer %p not in allocated block", obj);
    bool tiny = s->sizeclass == 2 && s->noscan;
    if ((uintptr_t)obj != slot && !tiny)
        throwf("runtime.SetFinalizer: pointer %p not at beginning of allocated block", obj);
    lock(&specials_lock);
    special *cur;
    special **pp = find(s, (uintptr_t)obj, GC_SPECIAL_FINALIZER, &cur);
    if (!fn) {
        if (cur) {
            while (*pp != cur) pp = &(*pp)->next;
            unlink_special(pp, cur);
            fixalloc_free(&special_pool, cur);
        }
        unlock(&specials_lock);
        return;
    }
    if (cur) {
        unlock(&specials_lock);
        throw("runtime.SetFinalizer: finalizer already set");
    }
    special *sp = insert(pp, s, (uintptr_t)obj, slot, GC_SPECIAL_FINALIZER, (void *)fn, arg);
    unlock(&specials_lock);
    if (!sp) throw("out of memory setting a finalizer");
    shade_new(arg);
    gc_finalizer_runner_start();
}

GORT_API void gort_keep_alive(void *obj) {
    gc_thread_self(); /* a thread that keeps a GC pointer is registered from now on */
    __asm__ __volatile__("" : : "r"(obj) : "memory");
}

/* fork (mgc.c's handlers): 0 prepare, 1 parent, 2 child. The finalizer
 * thread does not exist in a child: the next finalizer starts another. */
void gc_final_fork(int which) {
    if (which == 0) {
        lock(&specials_lock);
        lock(&finq_lock);
    } else if (which == 1) {
        unlock(&finq_lock);
        unlock(&specials_lock);
    } else {
        specials_lock = (lock_t)LOCK_INIT;
        finq_lock = (lock_t)LOCK_INIT;
        if (runner_kind == 2) runner_kind = 0;
        fing_parked = NULL;
    }
}
