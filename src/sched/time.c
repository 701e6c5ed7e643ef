/* Timers: per-P 4-ary heaps (Go 1.14+'s time.go), and gort_sleep.
 *
 * Each P has a min-heap of timers ordered by when, 4-ary as Go's (shallower
 * than binary: fewer cache misses on sift-down), under the P's timers_lock.
 * p->timer0when mirrors the first when (0: empty) so that the scheduler can
 * test "is a timer due" without the lock. A timer records the heap it is in
 * (t->pp, t->idx), so timer_del finds it in O(1) from any thread; pp only
 * changes under that P's lock, and a deleter that raced with a move (a P
 * retired by gort_gomaxprocs) sees pp change and retries.
 *
 * Who runs timers: the M holding the P, in schedule and find_runnable
 * (check_timers); spinning Ms for other Ps' due timers (steal_work); and
 * when every M is idle, the one "timer sleeper" M, which sleeps on a futex
 * until the earliest timer and is kicked (sched_timer_armed) when an earlier
 * one is armed. sysmon starts an M if a timer is long overdue. Callbacks run
 * with no lock held, on an M with a P (g0 or the scheduler's fast path).
 *
 * Go 1.19 uses a lock-free status machine per timer (timerWaiting,
 * timerModifiedEarlier, ...); we use the P's lock, as Go 1.23 went back to:
 * simpler, and the critical sections are a few sift steps. The heap array
 * comes from gort_malloc (never from libc malloc: gort may be malloc). */
#include "sched/runtime2.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/nanotime.h"
#include "gort/malloc.h"
#include "gort/sched.h"

#include <string.h>

/* ---- the heap (caller holds pp->timers_lock) ---------------------------------- */

static inline void set(p *pp, int32_t i, timer *t) {
    pp->timers[i] = t;
    t->idx = i;
}

static void siftup(p *pp, int32_t i) {
    timer *t = pp->timers[i];
    int64_t when = t->when;
    while (i > 0) {
        int32_t parent = (i - 1) / TIMER_HEAP_ARY;
        if (when >= pp->timers[parent]->when) break;
        set(pp, i, pp->timers[parent]);
        i = parent;
    }
    set(pp, i, t);
}

static void siftdown(p *pp, int32_t i) {
    int32_t n = pp->ntimers;
    timer *t = pp->timers[i];
    int64_t when = t->when;
    for (;;) {
        int32_t c = i * TIMER_HEAP_ARY + 1;
        if (c >= n) break;
        int32_t best = c;
        int32_t end = c + TIMER_HEAP_ARY < n ? c + TIMER_HEAP_ARY : n;
        for (int32_t k = c + 1; k < end; k++)
            if (pp->timers[k]->when < pp->timers[best]->when) best = k;
        if (pp->timers[best]->when >= when) break;
        set(pp, i, pp->timers[best]);
        i = best;
    }
    set(pp, i, t);
}

static void update_timer0(p *pp) {
    atomic_store_rel(&pp->timer0when, pp->ntimers ? pp->timers[0]->when : 0);
}

static void heap_push(p *pp, timer *t) {
    if (pp->ntimers == pp->captimers) {
        int32_t cap = pp->captimers ? pp->captimers * 2 : 64;
        timer **a = gort_malloc((size_t)cap * sizeof *a);
        if (!a) throw_oom((size_t)cap * sizeof *a);
        if (pp->ntimers) memcpy(a, pp->timers, (size_t)pp->ntimers * sizeof *a);
        gort_free(pp->timers);
        pp->timers = a;
        pp->captimers = cap;
    }
    t->pp = pp;
    set(pp, pp->ntimers++, t);
    siftup(pp, t->idx);
    update_timer0(pp);
}

static void heap_remove(p *pp, timer *t) {
    int32_t i = t->idx;
    int32_t last = --pp->ntimers;
    if (i != last) {
        set(pp, i, pp->timers[last]);
        if (i > 0 && pp->timers[i]->when < pp->timers[(i - 1) / TIMER_HEAP_ARY]->when)
            siftup(pp, i);
        else
            siftdown(pp, i);
    }
    pp->timers[last] = NULL;
    atomic_store_rel(&t->pp, NULL);
    update_timer0(pp);
}

/* ---- the internal timer API ---------------------------------------------------- */

static p *current_p(void) {
    m *mp = tls_m;
    if (mp && mp->p) return mp->p;
    return allp[0]; /* outside the scheduler (or in a syscall): P 0's heap */
}

void timer_add(timer *t) {
    if (t->when <= 0) t->when = 1; /* 0 means "no timer" in timer0when */
    p *pp = current_p();
    lock(&pp->timers_lock);
    if (t->pp) throw("timer_add: timer already armed");
    heap_push(pp, t);
    bool first = pp->timers[0] == t;
    unlock(&pp->timers_lock);
    if (first) sched_timer_armed(t->when);
}

/* Locks the heap t is in; NULL (nothing locked) if it is in none. */
static p *lock_timer_heap(timer *t) {
    for (;;) {
        p *pp = atomic_load_acq(&t->pp);
        if (!pp) return NULL;
        lock(&pp->timers_lock);
        if (t->pp == pp) return pp;
        unlock(&pp->timers_lock);
    }
}

bool timer_del(timer *t) {
    p *pp = lock_timer_heap(t);
    if (!pp) return false;
    heap_remove(pp, t);
    unlock(&pp->timers_lock);
    return true;
}

bool timer_mod(timer *t, int64_t when, int64_t period, void (*f)(void *, uintptr_t), void *arg,
               uintptr_t seq) {
    bool pending = timer_del(t);
    t->when = when;
    t->period = period;
    t->f = f;
    t->arg = arg;
    t->seq = seq;
    timer_add(t);
    return pending;
}

int64_t check_timers(p *pp, int64_t now, bool *ran) {
    *ran = false;
    int64_t next = atomic_load_acq(&pp->timer0when);
    if (next == 0) return 0;
    if (!now) now = nanotime();
    if (next > now) return next;
    lock(&pp->timers_lock);
    while (pp->ntimers > 0) {
        timer *t = pp->timers[0];
        if (t->when > now) break;
        void (*f)(void *, uintptr_t) = t->f;
        void *arg = t->arg;
        uintptr_t seq = t->seq;
        if (t->period > 0) {
            /* The next tick after now, capped at INT64_MAX (never). */
            int64_t k = 1 + (now - t->when) / t->period, step;
            if (__builtin_mul_overflow(t->period, k, &step) ||
                __builtin_add_overflow(t->when, step, &t->when))
                t->when = INT64_MAX;
            siftdown(pp, 0);
            update_timer0(pp);
        } else {
            heap_remove(pp, t);
        }
        unlock(&pp->timers_lock);
        f(arg, seq);
        *ran = true;
        lock(&pp->timers_lock);
    }
    next = pp->ntimers ? pp->timers[0]->when : 0;
    unlock(&pp->timers_lock);
    return next;
}

void timers_move(p *src, p *dst) {
    p *a = src->id < dst->id ? src : dst, *b = a == src ? dst : src;
    lock(&a->timers_lock);
    lock(&b->timers_lock);
    while (src->ntimers > 0) {
        timer *t = src->timers[src->ntimers - 1];
        heap_remove(src, t);
        heap_push(dst, t);
    }
    int64_t w = dst->ntimers ? dst->timers[0]->when : 0;
    unlock(&b->timers_lock);
    unlock(&a->timers_lock);
    if (w) sched_timer_kick(w); /* callers may hold sched.lock */
}

int64_t timers_next_when(void) {
    int64_t next = 0;
    int32_t n = atomic_load_acq(&sched.nallp);
    for (int32_t i = 0; i < n; i++) {
        int64_t w = atomic_load_acq(&allp[i]->timer0when);
        if (w != 0 && (next == 0 || w < next)) next = w;
    }
    return next;
}

/* ---- gort_sleep ------------------------------------------------------------------ */

static void sleep_wake(void *arg, uintptr_t seq) {
    (void)seq;
    sched_ready(arg);
}

/* After the park (Go's resetForSleep): arming before it could fire the timer
 * at a goroutine that is still running. */
static bool sleep_arm(g *gp, void *unused) {
    (void)unused;
    timer_add(&gp->sleep_timer);
    return true;
}

void gort_sleep(int64_t ns) {
    g *gp = sched_getg();
    if (!gp) { /* outside a goroutine: the thread sleeps */
        if (ns > 0) {
            struct timespec ts = {ns / 1000000000, ns % 1000000000};
            nanosleep(&ts, NULL);
        }
        return;
    }
    if (unlikely(!tls_m->p)) throw("gort_sleep between gort_syscall_enter and gort_syscall_exit");
    if (ns <= 0) {
        gort_yield();
        return;
    }
    timer *t = &gp->sleep_timer;
    t->when = nanotime() + ns;
    if (t->when < 0) t->when = INT64_MAX; /* overflow: forever */
    t->period = 0;
    t->f = sleep_wake;
    t->arg = gp;
    t->seq = 0;
    sched_park(sleep_arm, NULL, WAIT_REASON_SLEEP);
}
