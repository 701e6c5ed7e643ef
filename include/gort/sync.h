/* Goroutine synchronization: Go's package sync (docs/api.md "sync").
 *
 * Every type here blocks the calling *goroutine* (it parks on a runtime
 * semaphore, never on an OS primitive), so thousands of goroutines may wait on
 * one mutex while the thread runs others. All types are plain structs that
 * must not be copied after first use; the _INIT macros give the zero state,
 * which is also what zeroed memory holds (except gort_cond and gort_pool,
 * which have an init function). Called outside a goroutine (a thread that
 * the scheduler did not make), blocking operations spin with sched_yield.
 *
 * Fields: every field of these structs is gort's own (private: set only
 * through the _INIT macros and the functions; their layout may change),
 * except those whose comment starts with "Public".
 *
 * Misuse is fatal, with Go's messages: "fatal error: sync: unlock of unlocked
 * mutex", "panic: sync: negative WaitGroup counter", a NULL object as Go's
 * nil dereference, and so on (docs/misuse.md). */
#ifndef GORT_SYNC_H
#define GORT_SYNC_H

#include "gort/config.h"

#include <stdbool.h>
#include <stdint.h>

GORT_EXTERN_C_BEGIN

/* sync.Mutex. Fair in the long run: a waiter that waits over 1 ms switches
 * the mutex to starvation mode, where unlock hands it to the oldest waiter. */
typedef struct gort_mutex {
    uint32_t state; /* locked (bit 0), woken (8), starving (9), waiter count << 10 */
    uint32_t sema;
} gort_mutex;
#define GORT_MUTEX_INIT                                                                            \
    { 0, 0 }
GORT_API void gort_mutex_lock(gort_mutex *m);
GORT_API void gort_mutex_unlock(gort_mutex *m);
/* Takes m if it is free; true if it did (Go's TryLock). Never blocks. */
GORT_API bool gort_mutex_trylock(gort_mutex *m);

/* sync.RWMutex: many readers or one writer; a waiting writer keeps new
 * readers out. */
typedef struct gort_rwmutex {
    gort_mutex w;
    uint32_t writer_sem;
    uint32_t reader_sem;
    int32_t reader_count; /* readers; minus 2^30 while a writer waits or holds it */
    int32_t reader_wait;  /* readers the waiting writer still waits for */
} gort_rwmutex;
#define GORT_RWMUTEX_INIT                                                                          \
    { GORT_MUTEX_INIT, 0, 0, 0, 0 }
GORT_API void gort_rwmutex_lock(gort_rwmutex *rw);
GORT_API void gort_rwmutex_unlock(gort_rwmutex *rw);
GORT_API void gort_rwmutex_rlock(gort_rwmutex *rw);
GORT_API void gort_rwmutex_runlock(gort_rwmutex *rw);

/* sync.WaitGroup. */
typedef struct gort_waitgroup {
    uint64_t state; /* counter (high 32 bits, signed) | waiters (low 32) */
    uint32_t sema;
} gort_waitgroup;
#define GORT_WAITGROUP_INIT                                                                        \
    { 0, 0 }
GORT_API void gort_waitgroup_add(gort_waitgroup *wg, int delta);
GORT_API void gort_waitgroup_done(gort_waitgroup *wg);
GORT_API void gort_waitgroup_wait(gort_waitgroup *wg);

/* sync.Once. */
typedef struct gort_once {
    uint32_t done;
    gort_mutex m;
} gort_once;
#define GORT_ONCE_INIT                                                                             \
    { 0, GORT_MUTEX_INIT }
/* Calls fn(arg) if no call on once has; returns once that call has returned. */
GORT_API void gort_once_do(gort_once *once, void (*fn)(void *arg), void *arg);

/* sync.Cond, on Go's ticket-based notify list. */
typedef struct gort_cond {
    gort_mutex *L;   /* Public: the mutex (sync.Cond's L), set by gort_cond_init */
    uint32_t wait;   /* next ticket */
    uint32_t notify; /* next ticket to notify */
    uint32_t lock;   /* runtime lock of the waiter list */
    void *head, *tail;
} gort_cond;
GORT_API void gort_cond_init(gort_cond *c, gort_mutex *m);
/* Unlocks c's mutex, waits for a signal, locks it again. */
GORT_API void gort_cond_wait(gort_cond *c);
GORT_API void gort_cond_signal(gort_cond *c);
GORT_API void gort_cond_broadcast(gort_cond *c);

/* sync.Pool: a cache of interchangeable objects, per P. Objects may be
 * dropped at any garbage collection (they then belong to the collector). */
typedef struct gort_pool {
    void *(*new_fn)(void);  /* Public: makes an object when the pool is empty (may be NULL) */
    void *arrays;           /* per-P locals and victims */
    struct gort_pool *next; /* all pools */
} gort_pool;
GORT_API void gort_pool_init(gort_pool *pool, void *(*new_fn)(void));
/* An object from the pool, else new_fn()'s, else NULL. */
GORT_API void *gort_pool_get(gort_pool *pool);
/* Adds x (NULL is ignored). */
GORT_API void gort_pool_put(gort_pool *pool, void *x);

GORT_EXTERN_C_END

#endif
