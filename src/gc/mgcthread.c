/* Threads and the collector: the per-thread record (write-barrier buffer,
 * assist work and credit) and the registration of threads gort did not
 * create (Go has no counterpart: every Go thread is an M; Boehm's
 * pthread_support.c is the C one, without its GC_register_my_thread).
 *
 * A thread gets its record the first time it needs one: its first GC
 * allocation, its first write-barrier slow path, its first assist. A thread
 * that is neither an M nor one of the collector's own threads is "foreign":
 * it is registered with stop-the-world (so every stop stops it, and a single
 * suspension can scan it), its stack bounds are read once
 * (pthread_getattr_np), and its stack and registers become a root. A
 * pthread key's destructor unregisters it when it exits, after flushing its
 * barrier buffer; the record is then reused by the next new thread.
 *
 * The rule this implies for programs (docs/gc.md): a thread that holds GC
 * pointers on its stack must have touched the GC heap first (allocated a GC
 * object, stored through GORT_STORE while the collector marks, or called
 * gort_gc / gort_add_roots / gort_set_finalizer / gort_keep_alive); a thread
 * that received a GC pointer from another (pthread_create's argument) and
 * has done none of these should call gort_keep_alive(ptr) before relying
 * on it, which registers it. */
#define _GNU_SOURCE
#include "gc/gc.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "mem/fixalloc.h"
#include "sched/runtime2.h"

#include <pthread.h>

gcthread *gc_threads;
lock_t gc_threads_lock = LOCK_INIT;
static gcthread *free_records;
static uint64_t gcthread_sys;
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_ok;

/* The calling thread's record (initial-exec: a load from the thread
 * pointer). */
static __thread gcthread *tls_gct __attribute__((tls_model("initial-exec")));
/* Set on the collector's own threads (workers, sweeper): never foreign. */
__thread bool gc_internal_thread;

static void on_thread_exit(void *arg) {
    gcthread *t = arg;
    lock_depth++; /* no stop while the record is half torn down */
    if (t->wbn) gc_flush_wbbuf(t, &t->w);
    gcw_dispose(&t->w);
    /* Its mcache's GC spans, now, while a stop-the-world still stops it
     * (mem's own exit handler may run after we unregister, concurrently with
     * a cycle's start, which flushes stale mcaches). */
    mcache *c = tls_mcache;
    if (c != &empty_mcache && !tls_m) gc_mcache_flush(c);
    if (t->foreign) stw_unregister_foreign(&t->stw);
    tls_gct = NULL;
    lock(&gc_threads_lock);
    t->in_use = false;
    t->foreign = false;
    t->stack_lo = t->stack_hi = 0;
    t->assist_credit = 0;
    t->stw.next = (stw_thread *)free_records; /* the free list reuses the stw link */
    free_records = t;
    unlock(&gc_threads_lock);
    if (--lock_depth == 0 && lock_suspend_pending) lock_suspend_now();
}

static void make_key(void) {
    key_ok = pthread_key_create(&exit_key, on_thread_exit) == 0;
}

static __attribute__((noinline)) gcthread *gc_thread_new(void) {
    pthread_once(&key_once, make_key);
    lock(&gc_threads_lock);
    gcthread *t = free_records;
    if (t) {
        free_records = (gcthread *)t->stw.next;
        t->stw.next = NULL;
    } else {
        t = persistent_alloc(sizeof *t, 64, &gcthread_sys);
        if (!t) {
            unlock(&gc_threads_lock);
            throw("out of memory allocating a GC thread record");
        }
        t->next_all = gc_threads;
        atomic_store_rel(&gc_threads, t);
    }
    t->in_use = true;
    t->wbn = 0;
    t->assist_credit = 0;
    unlock(&gc_threads_lock);
    bool foreign = tls_m == NULL && !gc_internal_thread;
    if (foreign) {
        pthread_attr_t a;
        void *addr = NULL;
        size_t size = 0;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            pthread_attr_getstack(&a, &addr, &size);
            pthread_attr_destroy(&a);
        }
        if (!addr || !size) throw("cannot find the stack of a thread that uses the GC heap");
        t->stack_lo = (uintptr_t)addr;
        t->stack_hi = (uintptr_t)addr + size;
        stw_register_foreign(&t->stw);
        t->foreign = true;
    }
    tls_gct = t;
    if (key_ok) pthread_setspecific(exit_key, t);
    return t;
}

gcthread *gc_thread_self(void) {
    gcthread *t = tls_gct;
    if (__builtin_expect(t != NULL, 1)) return t;
    return gc_thread_new();
}

void gc_thread_fork(int which) {
    if (which == 0) {
        lock(&gc_threads_lock);
    } else if (which == 1) {
        unlock(&gc_threads_lock);
    } else {
        gc_threads_lock = (lock_t)LOCK_INIT;
        /* Every other thread is gone: their records are free again. */
        for (gcthread *t = gc_threads; t; t = t->next_all) {
            if (t == tls_gct || !t->in_use) continue;
            t->in_use = false;
            t->foreign = false;
            t->wbn = 0;
            t->stw.next = (stw_thread *)free_records;
            free_records = t;
        }
    }
}
