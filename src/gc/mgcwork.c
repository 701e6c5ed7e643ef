/* Work buffers (Go's mgcwork.go): grey objects waiting to be scanned.
 *
 * Each marker (a background worker, an assisting thread, the terminator)
 * has a gcwork: two workbufs of 510 objects, so that it can produce and
 * consume without touching shared state most of the time (Go's wbuf1/wbuf2
 * hysteresis: put fills wbuf1, get drains it, and only when wbuf1 is full
 * (empty) and wbuf2 full (empty) too does a buffer go to (come from) the
 * global list). The global lists are a stack of full buffers and a stack
 * of empty ones under one lock: buffers are big, so the lock is taken once
 * per few hundred objects. Buffers are never freed (they come from
 * persistent memory, 4 KiB each, and the set a program needs is reached in
 * its first cycles).
 *
 * Idle markers wait on work_seq; publishing a full buffer while some wait
 * bumps it and wakes one. */
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "mem/fixalloc.h"

#include <string.h>

_Static_assert(sizeof(workbuf) == 4096, "a workbuf is one 4 KiB block");

static lock_t lists_lock = LOCK_INIT;
static workbuf *full_list, *empty_list;
static uint32_t nfull; /* atomic: buffers on full_list */
static uint64_t workbuf_sys;

static workbuf *getempty(void) {
    workbuf *b = NULL;
    if (atomic_load_relaxed(&empty_list)) {
        lock(&lists_lock);
        b = empty_list;
        if (b) empty_list = b->next;
        unlock(&lists_lock);
    }
    if (!b) {
        b = persistent_alloc(sizeof(workbuf), 64, &workbuf_sys);
        if (!b) throw("out of memory allocating GC work buffers");
    }
    b->next = NULL;
    b->nobj = 0;
    return b;
}

static void putempty(workbuf *b) {
    b->nobj = 0;
    lock(&lists_lock);
    b->next = empty_list;
    empty_list = b;
    unlock(&lists_lock);
}

static void putfull(workbuf *b) {
    lock(&lists_lock);
    b->next = full_list;
    full_list = b;
    atomic_xadd(&nfull, 1);
    unlock(&lists_lock);
    /* Idle markers may wait for exactly this. */
    if (atomic_load_relaxed(&gc_state.nwait) != 0) {
        atomic_xadd(&gc_state.mark_done_seq, 1);
        futex_wake(&gc_state.mark_done_seq, 1);
    }
}

static workbuf *getfull(void) {
    if (!atomic_load_relaxed(&nfull)) return NULL;
    lock(&lists_lock);
    workbuf *b = full_list;
    if (b) {
        full_list = b->next;
        atomic_xadd(&nfull, (uint32_t)-1);
    }
    unlock(&lists_lock);
    if (b) b->next = NULL;
    return b;
}

bool gcw_global_empty(void) {
    return atomic_load_acq(&nfull) == 0;
}

void gcw_put_slow(gcwork *w, uintptr_t obj) {
    workbuf *b = w->wbuf1;
    if (!b) {
        w->wbuf1 = getempty();
        w->wbuf2 = getempty();
        b = w->wbuf1;
    } else if (b->nobj == WORKBUF_OBJS) {
        workbuf *t = w->wbuf2;
        w->wbuf2 = b;
        if (t->nobj == WORKBUF_OBJS) {
            putfull(t);
            t = getempty();
        }
        w->wbuf1 = b = t;
    }
    b->obj[b->nobj++] = obj;
}

uintptr_t gcw_get_slow(gcwork *w) {
    workbuf *b = w->wbuf1;
    if (b && b->nobj) return b->obj[--b->nobj];
    if (!b) {
        w->wbuf1 = getempty();
        w->wbuf2 = getempty();
        b = w->wbuf1;
    }
    workbuf *t = w->wbuf2;
    if (t->nobj) { /* swap: the other one has work */
        w->wbuf2 = b;
        w->wbuf1 = t;
        return t->obj[--t->nobj];
    }
    workbuf *f = getfull();
    if (!f) return 0;
    putempty(b);
    w->wbuf1 = f;
    return f->obj[--f->nobj];
}

bool gcw_empty(const gcwork *w) {
    return (!w->wbuf1 || !w->wbuf1->nobj) && (!w->wbuf2 || !w->wbuf2->nobj);
}

/* Gives a buffer with work to the global list, or keeps an empty one. */
static void dispose_buf(workbuf **bp) {
    workbuf *b = *bp;
    if (!b) return;
    *bp = NULL;
    if (b->nobj)
        putfull(b);
    else
        putempty(b);
}

void gcw_dispose(gcwork *w) {
    dispose_buf(&w->wbuf1);
    dispose_buf(&w->wbuf2);
    if (w->bytes_marked) {
        atomic_xadd(&gc_state.bytes_marked, w->bytes_marked);
        w->bytes_marked = 0;
    }
    if (w->scan_work) {
        atomic_xadd(&gc_state.scan_work, w->scan_work);
        w->scan_work = 0;
    }
}

void gcw_balance(gcwork *w) {
    /* The global list is empty: share work, so that idle workers and
     * assists find some (Go's balance). A spare buffer with work goes
     * whole; else, if the current one holds more than a few objects, its
     * older half goes (Go's handoff). A deep structure marked depth first
     * (a tree, a long list of trees) keeps a short stack of grey objects
     * in one buffer, never a spare: without the handoff an assisting
     * thread found nothing to scan and could only wait for the one worker
     * that held it all. The older half is the nodes nearest the root, the
     * largest pieces of work. */
    if (!w->wbuf1 || atomic_load_relaxed(&nfull) != 0) return;
    if (w->wbuf2 && w->wbuf2->nobj) {
        putfull(w->wbuf2);
        w->wbuf2 = getempty();
    } else if (w->wbuf1->nobj > 4) {
        workbuf *b = w->wbuf1, *nb = getempty();
        uintptr_t keep = b->nobj / 2, give = b->nobj - keep;
        memcpy(nb->obj, &b->obj[give], keep * sizeof b->obj[0]);
        nb->nobj = keep;
        b->nobj = give;
        w->wbuf1 = nb;
        putfull(b);
    }
}

void gcw_reset_global(void) {
    /* At mark termination the full list must be empty: the terminator drained
     * it with the world stopped. */
    if (atomic_load_acq(&nfull) != 0) throw("GC: work left after mark termination");
}

void gc_work_fork(int which) {
    if (which == 0)
        lock(&lists_lock);
    else if (which == 1)
        unlock(&lists_lock);
    else
        lists_lock = (lock_t)LOCK_INIT;
}
