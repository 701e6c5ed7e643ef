/* Finalizers (Go's mfinal.go and the finalizer specials of mheap.go).
 *
 * gort_set_finalizer records a special (object offset, fn, arg) on the
 * object's span and in a global list. During mark, a root job scans every
 * object that has a finalizer (not marking the object itself) and shades
 * arg: whatever the object reaches stays alive, so that its finalizer can
 * use it. At sweep, an object with a finalizer that was not marked is kept
 * (its live bit set: "resurrected" for one more cycle), its special removed
 * and its finalizer queued; the queue is a root until the finalizer has run.
 * So, as in Go: if A points to B and both become unreachable, A's finalizer
 * runs first (B was marked through A) and B's a cycle later; a finalizer
 * runs at most once; an object on a cycle of finalizable objects is never
 * finalized.
 *
 * Finalizers run one at a time on the finalizer goroutine when the
 * scheduler runs (gort_main), else on a thread of gort's ("gort-finalizer"),
 * which is registered like any thread that uses the GC heap. */
#define _GNU_SOURCE
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/thread.h"
#include "gort/sched.h"
#include "mem/fixalloc.h"
#include "sched/runtime2.h"

#include <errno.h>

enum { SPECIAL_FINALIZER = 1 };

typedef struct special {
    struct special *next;               /* on its span, by offset */
    struct special *allnext, **allprev; /* every finalizer special */
    mspan *span;
    uintptr_t obj;  /* the address the program registered (inside the slot) */
    uintptr_t slot; /* the object's slot (what mark and sweep look at) */
    uint8_t kind;
    void (*fn)(void *obj, void *arg);
    void *arg;
} special;

typedef struct finalizer {
    struct finalizer *next;
    void *obj;
    void (*fn)(void *obj, void *arg);
    void *arg;
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

/* ---- mark and sweep ---- */

void gc_mark_specials(gcwork *w) {
    lock(&specials_lock);
    for (special *sp = all_specials; sp; sp = sp->allnext) {
        mspan *s = sp->span;
        if (!s->noscan) gc_scanobject(sp->slot, w);
        gc_shade((uintptr_t)sp->arg, w);
        gc_shade((uintptr_t)sp->fn, w);
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

bool gc_sweep_specials(mspan *s, uint64_t *live) {
    bool kept = false;
    lock(&specials_lock);
    for (special **pp = &s->specials, *sp; (sp = *pp);) {
        uint32_t idx = s->sizeclass ? span_obj_index(s, sp->slot) : 0;
        bool alive = s->sizeclass ? (live[idx >> 6] >> (idx & 63)) & 1 : *live & 1;
        if (alive || sp->kind != SPECIAL_FINALIZER) {
            pp = &sp->next;
            continue;
        }
        /* Unreachable with a finalizer: keep it one more cycle and queue. */
        if (s->sizeclass)
            live[idx >> 6] |= (uint64_t)1 << (idx & 63);
        else
            *live |= 1;
        kept = true;
        *pp = sp->next;
        *sp->allprev = sp->allnext;
        if (sp->allnext) sp->allnext->allprev = sp->allprev;
        finalizer *f = fixalloc_alloc(&finalizer_pool);
        if (!f) throw("out of memory queueing a finalizer");
        f->obj = (void *)sp->obj;
        f->fn = sp->fn;
        f->arg = sp->arg;
        f->next = NULL;
        fixalloc_free(&special_pool, sp);
        lock(&finq_lock);
        if (finq_tail)
            finq_tail->next = f;
        else
            finq_head = f;
        finq_tail = f;
        wake_runner();
        unlock(&finq_lock);
    }
    unlock(&specials_lock);
    return kept;
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

static void run_one(finalizer *f) {
    void *obj = f->obj, *arg = f->arg;
    void (*fn)(void *, void *) = f->fn;
    lock(&finq_lock);
    fixalloc_free(&finalizer_pool, f);
    unlock(&finq_lock);
    fn(obj, arg);
    atomic_xadd(&gc_finalizers_run, 1);
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

static void start_runner(void) {
    if (atomic_load_acq(&runner_kind)) return;
    uint32_t z = 0;
    bool gor = sched_started_now();
    if (!atomic_cas(&runner_kind, &z, gor ? 1 : 2)) return;
    if (gor) {
        if (gort_go(fin_goroutine, NULL) < 0) throw("cannot start the finalizer goroutine");
    } else if (os_thread_start(fin_thread, NULL, 0, "gort-finalizer") < 0) {
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
    /* The object's start as the program sees it: after a header, if any. */
    uintptr_t start = slot;
    if (s->sizeclass && !s->noscan && !s->heapbits) start += (*(uintptr_t *)slot & 1) ? 16 : 8;
    bool tiny = s->sizeclass == 2 && s->noscan;
    if ((uintptr_t)obj != start && !tiny)
        throwf("runtime.SetFinalizer: pointer %p not at beginning of allocated block", obj);
    lock(&specials_lock);
    pools_init();
    special **pp = &s->specials;
    for (; *pp && (*pp)->obj < (uintptr_t)obj; pp = &(*pp)->next) {
    }
    special *cur = *pp && (*pp)->obj == (uintptr_t)obj ? *pp : NULL;
    if (!fn) {
        if (cur) {
            *pp = cur->next;
            *cur->allprev = cur->allnext;
            if (cur->allnext) cur->allnext->allprev = cur->allprev;
            fixalloc_free(&special_pool, cur);
        }
        unlock(&specials_lock);
        return;
    }
    if (cur) {
        unlock(&specials_lock);
        throw("runtime.SetFinalizer: finalizer already set");
    }
    special *sp = fixalloc_alloc(&special_pool);
    if (!sp) throw("out of memory setting a finalizer");
    sp->span = s;
    sp->obj = (uintptr_t)obj;
    sp->slot = slot;
    sp->kind = SPECIAL_FINALIZER;
    sp->fn = fn;
    sp->arg = arg;
    sp->next = *pp;
    *pp = sp;
    sp->allnext = all_specials;
    sp->allprev = &all_specials;
    if (all_specials) all_specials->allprev = &sp->allnext;
    all_specials = sp;
    unlock(&specials_lock);
    start_runner();
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
