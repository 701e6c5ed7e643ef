/* Runtime semaphores that park goroutines (Go's runtime/sema.go), and the
 * notify lists under gort_cond.
 *
 * Design. SEMTAB_SIZE roots, chosen by hashing the semaphore's address, each
 * padded to a cache line: a runtime lock, nwait (waiters in the root, read
 * without the lock by release's fast path) and a list of per-address queues.
 * Go keeps the distinct addresses of a root in a treap; collisions are rare
 * with 251 roots, so here they are a singly linked list of queue heads
 * (sudog.next), each head carrying its queue (waitlink, FIFO) and the
 * queue's tail. A waiter's sudog is on its own stack: it is valid while the
 * waiter is parked, and the waker reads everything it needs from it *before*
 * sched_ready (after which the waiter may return and reuse the stack).
 *
 * Invariants. A sudog is in a queue only while its goroutine is parked, or
 * about to park with the root lock held (the lock is released by the park's
 * unlockf, after the goroutine's context is saved, so a waker that finds it
 * cannot ready it before it is G_WAITING). nwait counts the sudogs queued
 * plus the acquirers between their increment and their re-check; release
 * increments *addr before it reads nwait, acquire increments nwait before it
 * re-checks *addr (both sequentially consistent), so one of them sees the
 * other: no lost wake-up.
 *
 * Handoff (starving mutexes): the releaser takes the count itself on the
 * woken waiter's behalf (ticket = 1) and yields, so the waiter runs next
 * (it is in runnext) and no newcomer can steal the count. */
#define _GNU_SOURCE
#include "sync/sync.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "gort/sched.h"

#include "base/nanotime.h"
#include "base/os.h"

#include <sched.h>

#define SEMTAB_SIZE 251

typedef struct semroot {
    lock_t lock;
    uint32_t nwait;
    sudog *heads;
} semroot;

static struct {
    semroot root;
    char pad[64 - sizeof(semroot)];
} semtable[SEMTAB_SIZE] __attribute__((aligned(64)));

void (*sync_mutex_prof_hook)(int64_t ns);

static bool mutex_reason(int reason) {
    return reason == WAIT_REASON_SYNC_MUTEX_LOCK || reason == WAIT_REASON_SYNC_RWMUTEX_LOCK ||
           reason == WAIT_REASON_SYNC_RWMUTEX_RLOCK;
}

static inline semroot *semroot_of(uint32_t *addr) {
    return &semtable[((uintptr_t)addr >> 3) % SEMTAB_SIZE].root;
}

static inline bool cansemacquire(uint32_t *addr) {
    uint32_t v = __atomic_load_n(addr, __ATOMIC_SEQ_CST);
    while (v != 0)
        if (__atomic_compare_exchange_n(addr, &v, v - 1, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return true;
    return false;
}

static bool park_unlock(g *gp, void *lk) {
    (void)gp;
    unlock((lock_t *)lk);
    return true;
}

/* Under root->lock. */
static void semqueue(semroot *root, uint32_t *addr, sudog *s, bool lifo) {
    s->elem = addr;
    s->waitlink = NULL;
    s->waittail = NULL;
    s->next = NULL;
    sudog **pp = &root->heads;
    for (sudog *t = *pp; t; pp = &t->next, t = *pp) {
        if (t->elem != addr) continue;
        if (lifo) { /* s becomes the head, in t's place */
            s->next = t->next;
            s->waitlink = t;
            s->waittail = t->waittail ? t->waittail : t;
            t->next = NULL;
            t->waittail = NULL;
            *pp = s;
        } else {
            if (t->waittail)
                t->waittail->waitlink = s;
            else
                t->waitlink = s;
            t->waittail = s;
        }
        return;
    }
    s->next = root->heads;
    root->heads = s;
}

/* Under root->lock: the first waiter on addr, removed, or NULL. */
static sudog *semdequeue(semroot *root, uint32_t *addr) {
    sudog **pp = &root->heads;
    for (sudog *s = *pp; s; pp = &s->next, s = *pp) {
        if (s->elem != addr) continue;
        sudog *t = s->waitlink;
        if (t) {
            t->next = s->next;
            t->waittail = s->waittail == t ? NULL : s->waittail;
            *pp = t;
        } else {
            *pp = s->next;
        }
        s->waitlink = s->waittail = s->next = NULL;
        return s;
    }
    return NULL;
}

void sync_semacquire(uint32_t *addr, bool lifo, int reason) {
    if (cansemacquire(addr)) return;
    g *gp = sched_getg();
    if (!gp) { /* a thread outside the scheduler: nothing to park */
        while (!cansemacquire(addr)) sched_yield();
        return;
    }
    sudog s = {0};
    s.g = gp;
    semroot *root = semroot_of(addr);
    for (;;) {
        lock(&root->lock);
        __atomic_fetch_add(&root->nwait, 1, __ATOMIC_SEQ_CST);
        if (cansemacquire(addr)) {
            __atomic_fetch_sub(&root->nwait, 1, __ATOMIC_SEQ_CST);
            unlock(&root->lock);
            return;
        }
        s.ticket = 0;
        /* The mutex profile times the wait from here (semrelease reports it). */
        s.acquiretime =
            unlikely(atomic_load_relaxed(&sync_mutex_prof_hook) != NULL) && mutex_reason(reason)
                ? nanotime()
                : 0;
        semqueue(root, addr, &s, lifo);
        sched_park(park_unlock, &root->lock, reason);
        if (__atomic_load_n(&s.ticket, __ATOMIC_ACQUIRE) != 0 || cansemacquire(addr)) return;
    }
}

void sync_semrelease(uint32_t *addr, bool handoff) {
    semroot *root = semroot_of(addr);
    __atomic_fetch_add(addr, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&root->nwait, __ATOMIC_SEQ_CST) == 0) return;
    lock(&root->lock);
    if (__atomic_load_n(&root->nwait, __ATOMIC_SEQ_CST) == 0) {
        unlock(&root->lock);
        return;
    }
    sudog *s = semdequeue(root, addr);
    if (s) __atomic_fetch_sub(&root->nwait, 1, __ATOMIC_SEQ_CST);
    int64_t delay = 0;
    if (s && unlikely(s->acquiretime != 0)) {
        /* This release ends s's wait; the others still waiting on addr are
         * charged to later releases from now on (Go's semrelease1). */
        int64_t now = nanotime();
        delay = now - s->acquiretime;
        for (sudog *h = root->heads; h; h = h->next)
            if (h->elem == addr)
                for (sudog *w = h; w; w = w->waitlink)
                    if (w->acquiretime) w->acquiretime = now;
    }
    unlock(&root->lock);
    if (!s) return;
    if (unlikely(delay > 0)) {
        void (*hook)(int64_t) = atomic_load_acq(&sync_mutex_prof_hook);
        if (hook) hook(delay);
    }
    bool handed = handoff && cansemacquire(addr);
    if (handed) __atomic_store_n(&s->ticket, 1, __ATOMIC_RELEASE);
    g *wg = s->g; /* s is the waiter's: not touched after sched_ready */
    sched_ready(wg);
    if (handed && sched_getg()) gort_yield();
}

/* ---- notify lists (gort_cond) ---------------------------------------------------------- */

/* c->lock is a lock_t in a uint32_t (the public header cannot name lock_t). */
_Static_assert(sizeof(lock_t) == sizeof(uint32_t), "lock_t is one word");
#define NL_LOCK(c) ((lock_t *)&(c)->lock)

/* Ticket order, with wrap-around (Go's less). */
static inline bool ticket_less(uint32_t a, uint32_t b) {
    return (int32_t)(a - b) < 0;
}

uint32_t sync_notify_list_add(gort_cond *c) {
    return __atomic_fetch_add(&c->wait, 1, __ATOMIC_SEQ_CST);
}

void sync_notify_list_wait(gort_cond *c, uint32_t ticket) {
    g *gp = sched_getg();
    if (!gp) { /* outside the scheduler: poll */
        while (!ticket_less(ticket, __atomic_load_n(&c->notify, __ATOMIC_SEQ_CST))) sched_yield();
        return;
    }
    lock(NL_LOCK(c));
    if (ticket_less(ticket, c->notify)) { /* already notified */
        unlock(NL_LOCK(c));
        return;
    }
    sudog s = {0};
    s.g = gp;
    s.ticket = ticket;
    if (c->tail)
        ((sudog *)c->tail)->waitlink = &s;
    else
        c->head = &s;
    c->tail = &s;
    sched_park(park_unlock, NL_LOCK(c), WAIT_REASON_SYNC_COND_WAIT);
}

void sync_notify_list_notify_all(gort_cond *c) {
    if (__atomic_load_n(&c->wait, __ATOMIC_SEQ_CST) ==
        __atomic_load_n(&c->notify, __ATOMIC_SEQ_CST))
        return;
    lock(NL_LOCK(c));
    sudog *s = c->head;
    c->head = c->tail = NULL;
    __atomic_store_n(&c->notify, __atomic_load_n(&c->wait, __ATOMIC_SEQ_CST), __ATOMIC_SEQ_CST);
    unlock(NL_LOCK(c));
    while (s) {
        sudog *next = s->waitlink; /* before the waiter can run */
        g *wg = s->g;
        sched_ready(wg);
        s = next;
    }
}

void sync_notify_list_notify_one(gort_cond *c) {
    if (__atomic_load_n(&c->wait, __ATOMIC_SEQ_CST) ==
        __atomic_load_n(&c->notify, __ATOMIC_SEQ_CST))
        return;
    lock(NL_LOCK(c));
    uint32_t t = c->notify;
    if (t == __atomic_load_n(&c->wait, __ATOMIC_SEQ_CST)) {
        unlock(NL_LOCK(c));
        return;
    }
    __atomic_store_n(&c->notify, t + 1, __ATOMIC_SEQ_CST);
    /* The waiter with ticket t may not have queued yet: then its wait will
     * see notify > t and not park. */
    sudog *prev = NULL;
    for (sudog *s = c->head; s; prev = s, s = s->waitlink) {
        if (s->ticket != t) continue;
        sudog *n = s->waitlink;
        if (prev)
            prev->waitlink = n;
        else
            c->head = n;
        if (c->tail == s) c->tail = prev;
        g *wg = s->g;
        unlock(NL_LOCK(c));
        sched_ready(wg);
        return;
    }
    unlock(NL_LOCK(c));
}

/* ---- spinning (mutex) ------------------------------------------------------------------ */

static int ncpu_cached;

bool sync_can_spin(void) {
    /* Go's sync_runtime_canSpin, less its limit of 4 iterations: on a
     * multicore machine, while another P is running (so the holder may be)
     * and ours has nothing else to run. */
    int n = __atomic_load_n(&ncpu_cached, __ATOMIC_RELAXED);
    if (n == 0) {
        n = os_ncpu();
        __atomic_store_n(&ncpu_cached, n, __ATOMIC_RELAXED);
    }
    if (n <= 1) return false;
    if (atomic_load_relaxed(&sched.gomaxprocs) <=
        (int32_t)(atomic_load_relaxed(&sched.npidle) + atomic_load_relaxed(&sched.nmspinning)) + 1)
        return false;
    m *mp = tls_m;
    p *pp = mp ? mp->p : NULL;
    if (!pp) return false;
    return atomic_load_relaxed(&pp->runqhead) == atomic_load_relaxed(&pp->runqtail) &&
           atomic_load_relaxed(&pp->runnext) == NULL && atomic_load_relaxed(&pp->yqsize) == 0;
}
