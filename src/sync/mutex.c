/* gort_mutex: Go's sync.Mutex.
 *
 * state: bit 0 locked, bit 1 woken (a waiter was woken or is spinning: unlock
 * need not wake another), bit 2 starving, and the number of goroutines
 * blocked on sema in the bits from 3 up. sema is a runtime semaphore
 * (sema.c) on which blocked goroutines park.
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
 * Spinning: while the mutex is held (not starving), a locker spins up to 4
 * times (30 pauses each) if other Ps are running and its own P has nothing
 * else to run (sync_can_spin); a spinner sets woken so unlock does not wake
 * a sleeper needlessly. */
#include "sync/sync.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/nanotime.h"

#define MUTEX_LOCKED         1u
#define MUTEX_WOKEN          2u
#define MUTEX_STARVING       4u
#define MUTEX_WAITER_SHIFT   3
#define STARVATION_THRESHOLD 1000000 /* ns */

static inline uint32_t load_state(gort_mutex *m) {
    return __atomic_load_n(&m->state, __ATOMIC_RELAXED);
}
static inline bool cas_state(gort_mutex *m, uint32_t *old, uint32_t new) {
    return __atomic_compare_exchange_n(&m->state, old, new, false, __ATOMIC_ACQ_REL,
                                       __ATOMIC_RELAXED);
}

static __attribute__((noinline)) void mutex_lock_slow(gort_mutex *m) {
    int64_t wait_start = 0;
    bool starving = false, awoke = false;
    int iter = 0;
    uint32_t old = load_state(m);
    for (;;) {
        /* Spin only in normal mode while it is locked. */
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == MUTEX_LOCKED && sync_can_spin(iter)) {
            if (!awoke && !(old & MUTEX_WOKEN) && (old >> MUTEX_WAITER_SHIFT) != 0 &&
                cas_state(m, &old, old | MUTEX_WOKEN))
                awoke = true;
            sync_do_spin();
            iter++;
            old = load_state(m);
            continue;
        }
        uint32_t new = old;
        /* A starving mutex is not taken by a newcomer: it queues. */
        if (!(old & MUTEX_STARVING)) new |= MUTEX_LOCKED;
        if (old & (MUTEX_LOCKED | MUTEX_STARVING)) new += 1u << MUTEX_WAITER_SHIFT;
        /* Switch to starvation mode, only if it is still locked (else unlock
         * would expect waiters that may not exist). */
        if (starving && (old & MUTEX_LOCKED)) new |= MUTEX_STARVING;
        if (awoke) {
            if (!(new &MUTEX_WOKEN)) gort_throw("sync: inconsistent mutex state");
            new &= ~MUTEX_WOKEN;
        }
        if (cas_state(m, &old, new)) {
            if (!(old & (MUTEX_LOCKED | MUTEX_STARVING))) break; /* locked it */
            bool lifo = wait_start != 0; /* waited before: back to the front */
            if (wait_start == 0) wait_start = nanotime();
            sync_semacquire(&m->sema, lifo, WAIT_REASON_SEMACQUIRE);
            starving = starving || nanotime() - wait_start > STARVATION_THRESHOLD;
            old = load_state(m);
            if (old & MUTEX_STARVING) {
                /* Handed to us: the state says unlocked, with us counted as a
                 * waiter. Fix both. */
                if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) || (old >> MUTEX_WAITER_SHIFT) == 0)
                    gort_throw("sync: inconsistent mutex state");
                uint32_t delta = MUTEX_LOCKED - (1u << MUTEX_WAITER_SHIFT);
                if (!starving || (old >> MUTEX_WAITER_SHIFT) == 1) delta -= MUTEX_STARVING;
                __atomic_fetch_add(&m->state, delta, __ATOMIC_ACQ_REL);
                break;
            }
            awoke = true;
            iter = 0;
        }
        /* else: old was updated by the failed CAS */
    }
}

void gort_mutex_lock(gort_mutex *m) {
    uint32_t z = 0;
    if (likely(__atomic_compare_exchange_n(&m->state, &z, MUTEX_LOCKED, false, __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED)))
        return;
    mutex_lock_slow(m);
}

bool gort_mutex_trylock(gort_mutex *m) {
    uint32_t old = load_state(m);
    if (old & (MUTEX_LOCKED | MUTEX_STARVING)) return false;
    /* A woken waiter may be about to take it; we race it, as Go does. */
    return __atomic_compare_exchange_n(&m->state, &old, old | MUTEX_LOCKED, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static __attribute__((noinline)) void mutex_unlock_slow(gort_mutex *m, uint32_t new) {
    if (!((new + MUTEX_LOCKED) & MUTEX_LOCKED)) gort_throw("sync: unlock of unlocked mutex");
    if (new &MUTEX_STARVING) {
        /* Hand it to the front waiter, which runs at once: it sets locked.
         * Newcomers see starving and queue. */
        sync_semrelease(&m->sema, true);
        return;
    }
    uint32_t old = new;
    for (;;) {
        /* Nobody to wake, or someone already woken/spinning, or it was
         * taken again: done. */
        if ((old >> MUTEX_WAITER_SHIFT) == 0 ||
            (old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING)))
            return;
        new = (old - (1u << MUTEX_WAITER_SHIFT)) | MUTEX_WOKEN;
        if (cas_state(m, &old, new)) {
            sync_semrelease(&m->sema, false);
            return;
        }
    }
}

void gort_mutex_unlock(gort_mutex *m) {
    uint32_t new = __atomic_sub_fetch(&m->state, MUTEX_LOCKED, __ATOMIC_RELEASE);
    if (unlikely(new != 0)) mutex_unlock_slow(m, new);
}
