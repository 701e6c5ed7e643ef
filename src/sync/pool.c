/* gort_pool: Go's sync.Pool, per P, with a victim cache.
 *
 * Design. A pool has, per P, a pool_local: a private slot (one object, the
 * fast path) and a shared stack. Go's shared part is a lock-free poolDequeue
 * per P (owner pushes and pops at the head, others steal at the tail). Here
 * it is simpler, as the brief allows: a ring buffer under a per-P runtime
 * lock (owner at the head, LIFO, for cache warmth; thieves at the tail).
 * Uncontended, that lock is one CAS, and it is contended only by stealers.
 *
 * get: own private, own shared head, then steal from other Ps' shared tails,
 * then the victim cache (own private, then every P's shared), then new_fn.
 * put: own private if empty, else own shared head.
 *
 * Victim cache (Go 1.13+): at the start of each GC cycle (with the world
 * stopped, through gc_pool_cleanup_hook), sync_pool_gc_rotate drops the
 * victim cache and makes the primary cache the victim, so an object
 * survives one full GC cycle unused before it is dropped to the collector.
 *
 * The collector sees pooled objects: every pool's arrays and rings are
 * registered roots (gc_add_root_range), cleared when their objects are
 * dropped, and every store or removal of an object goes through the write
 * barrier while the collector marks (a put shades the object, a get shades
 * what it takes out, as GORT_STORE would).
 *
 * Memory. A pool's per-P arrays (pool_arrays: n, then the primary and the
 * victim array of n locals each) are allocated with gort_calloc at the
 * first use on a P whose id is >= n, sized to the Ps that exist; they are
 * published with a release store and never freed (a getter may still read
 * an old one), so a resize (GOMAXPROCS grew) leaks the old arrays, and
 * drops their objects, as Go's pinSlow does. Rotation swaps the two arrays'
 * roles in place after emptying the victim, so it allocates nothing. The
 * private slot is accessed by exchange/CAS, so a concurrent rotation (or an
 * M that somehow shares a P index) can never lose or duplicate an object.
 *
 * P index. Read once through tls_m->p->id at the top of get/put and not
 * kept: after new_fn or gort_calloc (which may block) nothing of the P is
 * used. A goroutine is not moved off its P between the read and the use
 * (no blocking call there); if it were, the code is still safe, only less
 * local. */
#include "sync/sync.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "gc/gc.h"
#include "gort/gc.h"
#include "gort/malloc.h"

#include <errno.h>
#include <string.h>

typedef struct pool_local {
    void *private;            /* atomic (exchange/CAS) */
    lock_t lock;              /* shared ring */
    uint32_t head, tail, cap; /* ring: [tail, head) hold objects; cap a power of 2 */
    void **ring;
    char pad[64 - sizeof(void *) - sizeof(lock_t) - 3 * sizeof(uint32_t) - sizeof(void **)];
} pool_local;

typedef struct pool_arrays {
    uint32_t n;
    pool_local *local;  /* atomic: swapped with victim by rotation */
    pool_local *victim; /* atomic */
    pool_local slots[]; /* 2n */
} pool_arrays;

static lock_t allpools_lock = LOCK_INIT;

/* The write barrier for a slot: old leaves it, new enters it. */
static inline void pool_barrier(void *old, void *new_) {
    if (__builtin_expect(gort__writebarrier != 0, 0)) gort__wb_slow(old, new_);
}

static void roots(void *p, size_t len, bool add) {
    if (gc_add_root_range((uintptr_t)p, (uintptr_t)p + len, add) == -ENOMEM)
        throw_oom(len);
}

static void cleanup_hook(void);
static gort_pool *allpools; /* pools with arrays, under allpools_lock */

void gort_pool_init(gort_pool *pool, void *(*new_fn)(void)) {
    PANIC_IF_NIL(pool);
    pool->new_fn = new_fn;
    pool->arrays = NULL;
    pool->next = NULL;
}

/* The P index of the caller, or 0 outside the scheduler. */
static inline int32_t cur_pid(void) {
    m *mp = tls_m;
    p *pp = mp ? mp->p : NULL;
    return pp ? pp->id : 0;
}

static pool_arrays *arrays_for(gort_pool *pool, int32_t pid) {
    pool_arrays *a = atomic_load_acq((pool_arrays **)&pool->arrays);
    if (likely(a && (uint32_t)pid < a->n)) return a;
    /* Slow path (Go's pinSlow): make arrays for every P that exists. */
    int32_t n = atomic_load_acq(&sched.nallp);
    if (n <= pid) n = pid + 1;
    if (n < 1) n = 1;
    size_t bytes = sizeof(pool_arrays) + 2 * (size_t)n * sizeof(pool_local);
    pool_arrays *na = gort_calloc(1, bytes);
    if (!na) throw_oom(bytes);
    gc_init();
    gc_pool_cleanup_hook = cleanup_hook;
    roots(na, bytes, true);
    na->n = (uint32_t)n;
    na->local = &na->slots[0];
    na->victim = &na->slots[n];
    lock(&allpools_lock);
    a = pool->arrays;
    if (a && (uint32_t)pid < a->n) { /* raced with another resize */
        unlock(&allpools_lock);
        roots(na, bytes, false);
        gort_free(na);
        return a;
    }
    if (!a) {
        pool->next = allpools;
        allpools = pool;
    }
    atomic_store_rel((pool_arrays **)&pool->arrays, na);
    unlock(&allpools_lock);
    return na;
}

/* Pushes x at l's shared head. Grows the ring outside the lock. */
static void shared_push(pool_local *l, void *x) {
    void **fresh = NULL;
    uint32_t fresh_cap = 0;
    for (;;) {
        lock(&l->lock);
        if (l->head - l->tail < l->cap) {
            pool_barrier(NULL, x);
            l->ring[l->head++ & (l->cap - 1)] = x;
            unlock(&l->lock);
            if (fresh) {
                roots(fresh, fresh_cap * sizeof(void *), false);
                gort_free(fresh);
            }
            return;
        }
        if (fresh && fresh_cap > l->cap) { /* install the bigger ring */
            uint32_t cnt = l->head - l->tail;
            for (uint32_t i = 0; i < cnt; i++) fresh[i] = l->ring[(l->tail + i) & (l->cap - 1)];
            void **old = l->ring;
            uint32_t old_cap = l->cap;
            l->ring = fresh;
            l->cap = fresh_cap;
            l->tail = 0;
            l->head = cnt;
            pool_barrier(NULL, x);
            l->ring[l->head++] = x;
            unlock(&l->lock);
            if (old) { /* its objects were copied to fresh, a root already */
                roots(old, old_cap * sizeof(void *), false);
                gort_free(old);
            }
            return;
        }
        uint32_t want = l->cap ? l->cap * 2 : 8;
        unlock(&l->lock);
        if (fresh) {
            roots(fresh, fresh_cap * sizeof(void *), false);
            gort_free(fresh);
        }
        fresh = gort_calloc(want, sizeof(void *));
        if (!fresh) throw_oom(want * sizeof(void *));
        fresh_cap = want;
        roots(fresh, fresh_cap * sizeof(void *), true);
    }
}

static void *shared_pop_head(pool_local *l) {
    if (atomic_load_relaxed(&l->head) == atomic_load_relaxed(&l->tail)) return NULL;
    void *x = NULL;
    lock(&l->lock);
    if (l->head != l->tail) {
        void **slot = &l->ring[--l->head & (l->cap - 1)];
        x = *slot;
        *slot = NULL;
        pool_barrier(x, NULL);
    }
    unlock(&l->lock);
    return x;
}

static void *shared_pop_tail(pool_local *l) {
    if (atomic_load_relaxed(&l->head) == atomic_load_relaxed(&l->tail)) return NULL;
    void *x = NULL;
    lock(&l->lock);
    if (l->head != l->tail) {
        void **slot = &l->ring[l->tail++ & (l->cap - 1)];
        x = *slot;
        *slot = NULL;
        pool_barrier(x, NULL);
    }
    unlock(&l->lock);
    return x;
}

void gort_pool_put(gort_pool *pool, void *x) {
    PANIC_IF_NIL(pool);
    if (!x) return;
    int32_t pid = cur_pid();
    pool_arrays *a = arrays_for(pool, pid);
    pool_local *l = &atomic_load_acq(&a->local)[pid];
    void *expect = NULL;
    pool_barrier(NULL, x);
    if (atomic_load_relaxed(&l->private) == NULL &&
        __atomic_compare_exchange_n(&l->private, &expect, x, false, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED))
        return;
    shared_push(l, x);
}

static void *get_slow(pool_arrays *a, int32_t pid) {
    uint32_t n = a->n;
    pool_local *loc = atomic_load_acq(&a->local);
    for (uint32_t i = 1; i < n; i++) { /* steal from the other Ps */
        void *x = shared_pop_tail(&loc[((uint32_t)pid + i) % n]);
        if (x) return x;
    }
    pool_local *vic = atomic_load_acq(&a->victim);
    if (atomic_load_relaxed(&vic[pid].private)) {
        void *x = atomic_xchg(&vic[pid].private, NULL);
        pool_barrier(x, NULL);
        if (x) return x;
    }
    for (uint32_t i = 0; i < n; i++) {
        void *x = shared_pop_tail(&vic[((uint32_t)pid + i) % n]);
        if (x) return x;
    }
    return NULL;
}

void *gort_pool_get(gort_pool *pool) {
    PANIC_IF_NIL(pool);
    int32_t pid = cur_pid();
    pool_arrays *a = arrays_for(pool, pid);
    pool_local *l = &atomic_load_acq(&a->local)[pid];
    void *x = NULL;
    if (atomic_load_relaxed(&l->private)) {
        x = atomic_xchg(&l->private, NULL);
        pool_barrier(x, NULL);
    }
    if (!x) x = shared_pop_head(l);
    if (!x) x = get_slow(a, pid);
    if (!x && pool->new_fn) x = pool->new_fn();
    return x;
}

/* Empties every local of arr (objects dropped: the collector's). */
static void drop_all(pool_local *arr, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        pool_local *l = &arr[i];
        (void)atomic_xchg(&l->private, NULL);
        lock(&l->lock);
        if (l->ring) memset(l->ring, 0, l->cap * sizeof(void *)); /* no stale roots */
        l->head = l->tail = 0;
        unlock(&l->lock);
    }
}

/* Installed in the GC: runs with the world stopped as a cycle starts. */
static void cleanup_hook(void) {
    sync_pool_gc_rotate();
}

void sync_pool_gc_rotate(void) {
    lock(&allpools_lock);
    for (gort_pool *pool = allpools; pool; pool = pool->next) {
        pool_arrays *a = pool->arrays;
        pool_local *vic = a->victim;
        drop_all(vic, a->n);
        atomic_store_rel(&a->victim, a->local);
        atomic_store_rel(&a->local, vic);
    }
    unlock(&allpools_lock);
}
