/* gort_mutex: Go's sync.Mutex.
 *
 * state: bit 0 locked (alone in the low byte, see below), bit 8 woken (a
 * waiter was woken or is spinning: unlock need not wake another), bit 9
 * starving, and the number of goroutines blocked on sema in the bits from
 * 10 up. sema is a runtime semaphore (sema.c) on which blocked goroutines
 * park.
 *
 * Two modes. Normal: waiters queue FIFO, but a woken waiter competes with
 * newly arriving goroutines (which are already running on a CPU and usually
 * win); a woken waiter that loses goes back to the *front* of the queue
 * (LIFO). A waiter that has waited over 1 ms switches the mutex to
 * starvation mode: unlock hands ownership straight to the waiter at the
 * front (semrelease with handoff), newcomers neither spin nor take the lock
 * but queue at the tail. The waiter that gets the lock leaves starvation mode
 * if it is the last waiter or waited under 1 ms. Normal mode is much faster
 * (a goroutine can take the mutex many times in a row); starvation mode
 * bounds tail latency.
 *
 * Spinning: while the mutex is held (not starving), a locker spins if other
 * Ps are running and its own P has nothing else to run (sync_can_spin); a
 * spinner sets woken so unlock does not wake a sleeper needlessly. Here we
 * depart from Go, which spins 4 times for 30 PAUSEs (a microsecond or so)
 * and then parks. Our spinner polls the mutex at growing intervals (2 us,
 * doubling up to 32 us) for up to 500 us before it parks. Why: under
 * contention a holder re-locks at once, so a poll almost never finds the
 * mutex free; each poll only pulls the holder's cache line away (the holder
 * then pays a miss on its next lock), and each park costs a wake-up later.
 * Polling rarely lets a holder that takes the mutex over and over run at
 * the uncontended speed while the waiter stays ready to take over without a
 * wake-up. Measured (bench/sync_bench, 2 CPUs): 2 goroutines 15 -> 11.5 ns
 * per lock/unlock pair (the uncontended cost is 11), 8 goroutines 38 -> 20
 * ns. The cost: a goroutine that finds the mutex held waits up to one
 * interval after its release, and a spinning P burns its CPU for up to the
 * budget instead of idling (only when it has nothing else to run). Fairness
 * is unchanged: a waiter that parks and waits over 1 ms still switches the
 * mutex to starvation mode.
 *
 * Unlock without a locked instruction (where rseq is available): a second
 * departure. Go's lock (CAS) plus unlock (XADD) cannot go below two locked
 * instructions, 11 ns a pair here. When the state is exactly MUTEX_LOCKED
 * (no waiter, nobody woken, not starving), unlock clears the locked byte
 * with rseq_release (base/rseq.h: a load, a compare and a byte store in a
 * restartable sequence). A waiter whose registering CAS found the state
 * exactly MUTEX_LOCKED may have raced such a release, so before parking it
 * calls rseq_fence_holder() and re-reads the state: if the mutex is free,
 * it does the wake-up the holder skipped (mutex_wake, the slow unlock's own
 * loop) and parks as usual, consuming it. Otherwise unlock is Go's XADD. */
#include "sync/sync.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/nanotime.h"

#include "base/rseq.h"

#define STARVATION_THRESHOLD 1000000 /* ns */
#define SPIN_FIRST_NS        2000    /* first poll interval */
#define SPIN_MAX_NS          32000   /* the interval doubles up to this */
#define SPIN_BUDGET_NS       500000  /* spinning before parking, per wake-up */

static inline uint32_t load_state(gort_mutex *m) {
    return __atomic_load_n(&m->state, __ATOMIC_RELAXED);
}
static inline bool cas_state(gort_mutex *m, uint32_t *old, uint32_t new) {
    return __atomic_compare_exchange_n(&m->state, old, new, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED);
}

/* Wakes a parked waiter if the mutex is free, not starving, and nobody is
 * woken or spinning already (the slow unlock's loop; also the wake-up a
 * first waiter does on behalf of a holder whose rseq unlock missed it). */
static void mutex_wake(gort_mutex *m, uint32_t old) {
    for (;;) {
        /* Nobody to wake, or someone already woken/spinning, or it was
         * taken again: done. */
        if ((old >> MUTEX_WAITER_SHIFT) == 0 ||
            (old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING)))
            return;
        uint32_t new = (old - (1u << MUTEX_WAITER_SHIFT)) | MUTEX_WOKEN;
        if (cas_state(m, &old, new)) {
            sync_semrelease(&m->sema, false);
            return;
        }
    }
}

uint64_t sync_mutex_confirms;
void (*sync_mutex_test_hook)(gort_mutex *m);

bool sync_mutex_rseq(void) {
    return rseq_ok;
}

/* After registering as the first waiter of a mutex whose state was exactly
 * MUTEX_LOCKED: make sure the holder's unlock cannot miss us (see the
 * header). */
static void first_waiter_confirm(gort_mutex *m) {
    if (!rseq_ok) return;
    __atomic_fetch_add(&sync_mutex_confirms, 1, __ATOMIC_RELAXED);
    if (unlikely(sync_mutex_test_hook != NULL)) sync_mutex_test_hook(m);
    rseq_fence_holder();
    mutex_wake(m, __atomic_load_n(&m->state, __ATOMIC_SEQ_CST));
}

/* Busy-waits about ns nanoseconds (PAUSE takes 10 to 150 cycles depending
 * on the CPU: the clock, read every 8, makes the wait portable). */
static void spin_for(int64_t ns) {
    int64_t end = nanotime() + ns;
    do {
        for (int i = 0; i < 8; i++) cpu_relax();
    } while (nanotime() < end);
}

/* Whether to spin once more, and for how long (0: park instead). *spin_start
 * is 0 before the first spin after arriving or waking. */
static int64_t spin_interval(int64_t *spin_start, int64_t *interval) {
    if (!sync_can_spin()) return 0;
    int64_t now = nanotime();
    if (*spin_start == 0) {
        *spin_start = now;
        *interval = SPIN_FIRST_NS;
    } else if (now - *spin_start >= SPIN_BUDGET_NS) {
        return 0;
    } else if (*interval < SPIN_MAX_NS) {
        *interval *= 2;
    }
    return *interval;
}

static __attribute__((noinline)) void mutex_lock_slow(gort_mutex *m) {
    int64_t wait_start = 0, spin_start = 0, interval = 0, ns;
    bool starving = false, awoke = false;
    uint32_t old = load_state(m);
    for (;;) {
        /* Spin only in normal mode while it is locked. */
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == MUTEX_LOCKED &&
            (ns = spin_interval(&spin_start, &interval)) != 0) {
            if (!awoke && !(old & MUTEX_WOKEN) && (old >> MUTEX_WAITER_SHIFT) != 0 &&
                cas_state(m, &old, old | MUTEX_WOKEN))
                awoke = true;
            spin_for(ns);
            old = load_state(m);
            continue;
        }
        uint32_t new = old;
        /* A starving mutex is not taken by a newcomer: it queues. */
        if (!(old & MUTEX_STARVING)) new |= MUTEX_LOCKED;
        if (old & (MUTEX_LOCKED | MUTEX_STARVING)) {
            if ((old >> MUTEX_WAITER_SHIFT) == MUTEX_WAITERS_MAX)
                throw("sync: too many goroutines waiting on one mutex");
            new += 1u << MUTEX_WAITER_SHIFT;
        }
        /* Switch to starvation mode, only if it is still locked (else unlock
         * would expect waiters that may not exist). */
        if (starving && (old & MUTEX_LOCKED)) new |= MUTEX_STARVING;
        if (awoke) {
            if (!(new &MUTEX_WOKEN)) throw("sync: inconsistent mutex state");
            new &= ~MUTEX_WOKEN;
        }
        if (cas_state(m, &old, new)) {
            if (!(old & (MUTEX_LOCKED | MUTEX_STARVING))) break; /* locked it */
            if (old == MUTEX_LOCKED) first_waiter_confirm(m);
            bool lifo = wait_start != 0; /* waited before: back to the front */
            if (wait_start == 0) wait_start = nanotime();
            sync_semacquire(&m->sema, lifo, WAIT_REASON_SYNC_MUTEX_LOCK);
            starving = starving || nanotime() - wait_start > STARVATION_THRESHOLD;
            old = load_state(m);
            if (old & MUTEX_STARVING) {
                /* Handed to us: the state says unlocked, with us counted as a
                 * waiter. Fix both. */
                if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) || (old >> MUTEX_WAITER_SHIFT) == 0)
                    throw("sync: inconsistent mutex state");
                uint32_t delta = MUTEX_LOCKED - (1u << MUTEX_WAITER_SHIFT);
                if (!starving || (old >> MUTEX_WAITER_SHIFT) == 1) delta -= MUTEX_STARVING;
                __atomic_fetch_add(&m->state, delta, __ATOMIC_ACQ_REL);
                break;
            }
            awoke = true;
            spin_start = 0;
        }
        /* else: old was updated by the failed CAS */
    }
}

void gort_mutex_lock(gort_mutex *m) {
    PANIC_IF_NIL(m);
    uint32_t old = 0;
    if (likely(__atomic_compare_exchange_n(&m->state, &old, MUTEX_LOCKED, false, __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED)))
        return;
    /* Unlocked with waiters parked (as under heavy contention, when the
     * holder keeps re-locking): take it with the value the CAS returned
     * rather than through the slow path's reload. */
    if (!(old & (MUTEX_LOCKED | MUTEX_STARVING)) &&
        __atomic_compare_exchange_n(&m->state, &old, old | MUTEX_LOCKED, false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
        return;
    mutex_lock_slow(m);
}

bool gort_mutex_trylock(gort_mutex *m) {
    PANIC_IF_NIL(m);
    uint32_t old = load_state(m);
    if (old & (MUTEX_LOCKED | MUTEX_STARVING)) return false;
    /* A woken waiter may be about to take it; we race it, as Go does. */
    return __atomic_compare_exchange_n(&m->state, &old, old | MUTEX_LOCKED, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static __attribute__((noinline)) void mutex_unlock_slow(gort_mutex *m, uint32_t new) {
    if (!((new + MUTEX_LOCKED) & MUTEX_LOCKED)) throw("sync: unlock of unlocked mutex");
    if (new &MUTEX_STARVING) {
        /* Hand it to the front waiter, which runs at once: it sets locked.
         * Newcomers see starving and queue. */
        sync_semrelease(&m->sema, true);
        return;
    }
    mutex_wake(m, new);
}

void gort_mutex_unlock(gort_mutex *m) {
    PANIC_IF_NIL(m);
    if (rseq_release(&m->state, MUTEX_LOCKED)) return;
    uint32_t new = __atomic_sub_fetch(&m->state, MUTEX_LOCKED, __ATOMIC_RELEASE);
    if (unlikely(new != 0)) mutex_unlock_slow(m, new);
}
