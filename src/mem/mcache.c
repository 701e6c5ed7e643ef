/* mcache lifecycle. See mcache.h. */
#include "mem/mcache.h"
#include "base/atomic.h"
#include "base/fatal.h"
#include "base/lock.h"
#include "mem/fixalloc.h"
#include "mem/mcentral.h"
#include "mem/mheap.h"
#include "mem/scavenge.h"

#include <pthread.h>

/* empty_mspan has no free objects: freelist NULL, freeindex == nelems (0). */
mspan empty_mspan;
mcache empty_mcache = {
    .alloc = {[0 ... NUM_SIZE_CLASSES - 1] = &empty_mspan},
    .alloc_gc = {[0 ... NUM_SIZE_CLASSES * 2 - 1] = &empty_mspan},
    .last = &empty_mcache, /* MCACHE_NO_LAST */
};

void (*mcache_gc_flush_hook)(mcache *c);

__thread mcache *tls_mcache __attribute__((tls_model("initial-exec"))) = &empty_mcache;

static lock_t mcache_lock = LOCK_INIT; /* guards the free list and the pool */
static fixalloc mcache_pool;
static mcache *all_caches;  /* push-only list */
static mcache *free_caches; /* flushed caches of exited threads */
static pthread_key_t exit_key;
static bool key_ready;

static void on_thread_exit(void *arg) {
    mcache *c = arg;
    tls_mcache = &empty_mcache;
    mcache_flush(c);
    lock(&mcache_lock);
    c->in_use = false;
    c->next_free = free_caches;
    free_caches = c;
    unlock(&mcache_lock);
}

static void init_once(void) {
    fixalloc_init(&mcache_pool, sizeof(mcache), &mheap_stats.mcache_sys);
    key_ready = pthread_key_create(&exit_key, on_thread_exit) == 0;
}

/* A cache taken from the pool (or made), marked in use, bound to no thread:
 * the common part of mcache_get and mcache_new. */
static mcache *mcache_take(void) {
    if (mheap_init() < 0) return NULL;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
    lock(&mcache_lock);
    mcache *c = free_caches;
    if (c) {
        free_caches = c->next_free;
    } else {
        c = fixalloc_alloc(&mcache_pool);
        if (c) {
            for (int i = 0; i < NUM_SIZE_CLASSES; i++) c->alloc[i] = &empty_mspan;
            for (int i = 0; i < NUM_SIZE_CLASSES * 2; i++) c->alloc_gc[i] = &empty_mspan;
            c->last = MCACHE_NO_LAST;
            c->next_all = all_caches;
            atomic_store_rel(&all_caches, c);
        }
    }
    if (c) c->in_use = true;
    unlock(&mcache_lock);
    return c;
}

/* The scheduler's seam (mcache per P): a cache that belongs to a P, not to a
 * thread. The M that holds the P points tls_mcache at it and restores the
 * thread's own cache when it lets the P go; no thread-exit flush is bound to
 * it, since Ps outlive the threads that run them. */
mcache *mcache_new(void) {
    mcache *c = mcache_take();
    if (c) scavenger_start();
    return c;
}

mcache *mcache_get(void) {
    mcache *c = tls_mcache;
    if (c != &empty_mcache) return c;
    c = mcache_take();
    if (!c) return NULL;
    tls_mcache = c;
    /* Thread exit flushes the cache. (pthread_setspecific of an early key does
     * not allocate, so this is safe inside malloc.) */
    if (key_ready) pthread_setspecific(exit_key, c);
    scavenger_start();
    return c;
}

void mcache_flush_large(mcache *c) {
    for (int i = 0; i < LARGE_CACHE_SLOTS; i++) {
        mspan *s = c->large_cache[i];
        if (s) {
            c->large_cache[i] = NULL;
            mheap_free_span(s);
        }
    }
}

/* ---- Owned explicit spans: the local partial and full lists. ---- */

static void llist_push(mspan **head, mspan *s, uint8_t where) {
    s->prev = NULL;
    s->next = *head;
    if (*head) (*head)->prev = s;
    *head = s;
    s->on_list = where;
}

static void llist_remove(mspan **head, mspan *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->on_list = ON_NONE;
}

/* The local partial list is a FIFO queue: a span joins at the tail and the
 * head becomes current. The head has been gathering frees the longest, so it
 * serves the most allocations before the next switch (LIFO picked the span
 * that had just got its first free object back, and ran dry at once). */
static void partial_append(mcache *c, mspan *s) {
    unsigned sc = s->sizeclass;
    s->next = NULL;
    s->prev = c->partial_tail[sc];
    if (s->prev)
        s->prev->next = s;
    else
        c->partial[sc] = s;
    c->partial_tail[sc] = s;
    s->on_list = ON_LOCAL_PARTIAL;
}

static void partial_remove(mcache *c, mspan *s) {
    unsigned sc = s->sizeclass;
    if (c->partial_tail[sc] == s) c->partial_tail[sc] = s->prev;
    llist_remove(&c->partial[sc], s);
}

/* Un-parks a full span: clears TFREE_NOTIFY unless a remote free did. */
static void unpark(mcache *c, mspan *s) {
    uintptr_t old = atomic_load_relaxed(&s->tfree);
    while ((old & TFREE_NOTIFY) && !atomic_cas(&s->tfree, &old, old & ~TFREE_NOTIFY)) {
    }
    llist_remove(&c->full[s->sizeclass], s);
    partial_append(c, s);
}

/* An owned span with no live object (not the current one) is put aside,
 * reset (span_reset): the owner keeps up to MCACHE_EMPTY_BYTES of them per
 * class, at least one, for its next refills; the rest wait on the central's
 * empty list, for any thread, until mcentral_trim gives them to the heap.
 * (Until 2026-11 an empty span went straight back to the heap unless it was
 * the class's only partial one: a producer whose blocks other threads free
 * then carved a fresh span for nearly every refill.) */
static void maybe_release(mcache *c, mspan *s) {
    if (span_live(s)) return;
    unsigned sc = s->sizeclass;
    /* last was freed remotely (else s would not be empty): its span is
     * about to start over, or to leave us. */
    if (c->last_span == s) c->last = MCACHE_NO_LAST;
    partial_remove(c, s);
    if (c->nempty[sc] == 0 || (c->nempty[sc] + 1) * s->npages * PAGE_SIZE <= MCACHE_EMPTY_BYTES) {
        span_reset(s);
        s->next = c->empty[sc];
        s->on_list = ON_LOCAL_EMPTY;
        c->empty[sc] = s;
        c->nempty[sc]++;
    } else {
        mcentral_retire(s);
    }
}

/* Takes a span from c's empty spans of class sc, or NULL. */
static mspan *empty_take(mcache *c, unsigned sc) {
    mspan *s = c->empty[sc];
    if (s) {
        c->empty[sc] = s->next;
        c->nempty[sc]--;
        s->next = NULL;
        s->on_list = ON_NONE;
    }
    return s;
}

void mcache_owned_span_freed(mcache *c, mspan *s) {
    if (s == c->alloc[s->sizeclass]) return; /* the current span stays, empty or not */
    if (s->on_list == ON_LOCAL_FULL) unpark(c, s);
    maybe_release(c, s);
}

void span_notify(mspan *s) {
    mcache *o = atomic_load_acq(&s->owner);
    if (!o) {
        mcentral_readd(s);
        return;
    }
    /* Pushed at most once, however many frees race: xnext must not be
     * overwritten while s is on the stack. The owner clears xqueued. */
    if (atomic_xchg(&s->xqueued, 1)) return;
    mspan *head = atomic_load_relaxed(&o->xready);
    do {
        s->xnext = head;
    } while (!atomic_cas(&o->xready, &head, s));
}

/* Takes the spans that remote frees un-parked. */
static void drain_ready(mcache *c) {
    mspan *s = atomic_xchg(&c->xready, NULL);
    while (s) {
        mspan *next = s->xnext;
        atomic_store_rel(&s->xqueued, 0);
        if (atomic_load_acq(&s->owner) != c) {
            mcentral_readd(s); /* pushed before its previous owner gave it up */
        } else if (s->on_list == ON_LOCAL_FULL || s->on_list == ON_LOCAL_PARTIAL) {
            if (s->on_list == ON_LOCAL_FULL) unpark(c, s);
            maybe_release(c, s);
        }
        /* Spans keep their remote frees in tfree (counted there) until
         * their local list runs dry: taking them is then one exchange. */
        s = next;
    }
}

/* ---- Remote frees, batched per span (mcache.h, struct rfree_batch). ---- */

void mcache_rfree_flush(mcache *c, unsigned sc) {
    struct rfree_batch *b = &c->rfree[sc];
    mspan *s = b->span;
    c->rfree_mask[sc / 64] &= ~((uint64_t)1 << (sc % 64));
    if (!s) return;
    uintptr_t head = (uintptr_t)b->head, w = atomic_load_relaxed(&s->tfree), nw;
    do {
        /* The count cannot pass nelems unless objects were freed twice. */
        if (tfree_count(w) + b->n > s->nelems)
            throwf("gort_free: corrupted free list in span %p (double free?)", (void *)s->base);
        *(uintptr_t *)b->tail = link_encode(s, (void *)tfree_head(w));
        nw = (uintptr_t)(tfree_count(w) + b->n) << TFREE_COUNT_SHIFT | head;
    } while (!atomic_cas(&s->tfree, &w, nw));
    atomic_store_rel(&b->span, NULL);
    b->n = 0;
    if (w & TFREE_NOTIFY) span_notify(s);
}

void mcache_rfree_flush_all(mcache *c) {
    c->rfree_ops = 0;
    for (int k = 0; k < RFREE_MASK_WORDS; k++)
        for (uint64_t m = c->rfree_mask[k]; m; m &= m - 1)
            mcache_rfree_flush(c, (unsigned)(k * 64 + __builtin_ctzll(m)));
}

bool mcache_rfree_holds(mspan *s, uintptr_t p) {
    uintptr_t bytes = (uintptr_t)s->nelems * s->elemsize;
    for (mcache *c = mcache_all(); c; c = c->next_all) {
        struct rfree_batch *b = &c->rfree[s->sizeclass];
        if (atomic_load_acq(&b->span) != s) continue;
        uintptr_t q = (uintptr_t)atomic_load_acq(&b->head);
        for (uint32_t n = 0; q && n <= s->nelems; n++) {
            if (q == p) return true;
            if (q - s->base >= bytes) break;
            q = (uintptr_t)link_decode(s, atomic_load_relaxed((uintptr_t *)q));
        }
    }
    return false;
}

mspan *mcache_refill_malloc(mcache *c, unsigned sc) {
    /* No allocator lock is held here: the place to (re)start the scavenger,
     * e.g. in a forked child, which has no threads but its forker. */
    if (unlikely(!atomic_load_relaxed(&scavenger_started))) scavenger_start();
    /* Our own remote frees first: they may be what the owners wait for. */
    mcache_rfree_flush_all(c);
    if (atomic_load_relaxed(&c->xready)) drain_ready(c);
    mspan *s = c->alloc[sc];
    c->alloc[sc] = &empty_mspan;
    if (s != &empty_mspan) {
        /* Dry: no local frees, no never-used slots, no remote frees. Park it. */
        uintptr_t z = 0;
        if (atomic_cas(&s->tfree, &z, TFREE_NOTIFY)) {
            llist_push(&c->full[sc], s, ON_LOCAL_FULL);
        } else { /* a remote free raced in */
            span_collect_tfree(s);
            partial_append(c, s);
        }
    }
    /* Partial spans first (filling them keeps the heap dense), then our
     * empty ones, then the central's, then fresh pages. */
    s = c->partial[sc];
    if (s) {
        partial_remove(c, s);
    } else if (!(s = empty_take(c, sc))) {
        s = mcentral_cache_span(c, (uint8_t)sc, SPAN_MALLOC, true);
        if (!s) return NULL;
    }
    c->alloc[sc] = s;
    mcache_tick(c);
    return s;
}

void mcache_flush(mcache *c) {
    c->last = MCACHE_NO_LAST; /* its span is about to leave us */
    mcache_rfree_flush_all(c);
    drain_ready(c);
    for (int i = 1; i < NUM_SIZE_CLASSES; i++) {
        mspan *s = c->alloc[i];
        if (s != &empty_mspan) {
            c->alloc[i] = &empty_mspan;
            mcentral_uncache_span(s);
        }
        while ((s = c->partial[i])) {
            partial_remove(c, s);
            mcentral_uncache_span(s);
        }
        while ((s = empty_take(c, (unsigned)i))) mcentral_retire(s);
        /* Parked full spans stay parked, now ownerless: a remote free that
         * clears their NOTIFY finds no owner and hands them to the central. */
        while ((s = c->full[i])) {
            llist_remove(&c->full[i], s);
            atomic_store_rel(&s->owner, NULL);
        }
    }
    /* Frees that raced with the loop above pushed onto our ready stack. */
    drain_ready(c);
    /* GC spans belong to the collector's centrals (src/gc). */
    void (*gc_flush)(mcache *) = mcache_gc_flush_hook;
    if (gc_flush) gc_flush(c);
    mcache_flush_large(c);
}

mcache *mcache_all(void) {
    return atomic_load_acq(&all_caches);
}

void mcache_atfork_prepare(void) {
    lock(&mcache_lock);
}

void mcache_atfork_parent(void) {
    unlock(&mcache_lock);
}

void mcache_atfork_child(void) {
    mcache_lock = (lock_t)LOCK_INIT;
}
