/* gort_waitgroup: Go's sync.WaitGroup.
 *
 * state packs the counter (high 32 bits, signed) and the number of waiters
 * (low 32) so that add and wait see both in one atomic operation. Waiters
 * park on sema. When add brings the counter to 0 with waiters, nobody can
 * change the state concurrently (a correct program does not add while the
 * counter is 0 and waiters exist), so it resets the state to 0 and releases
 * sema once per waiter. */
#include "sync/sync.h"

#include "base/fatal.h"

void gort_waitgroup_add(gort_waitgroup *wg, int delta) {
    PANIC_IF_NIL(wg);
    uint64_t state =
        __atomic_add_fetch(&wg->state, (uint64_t)(int64_t)delta << 32, __ATOMIC_ACQ_REL);
    int32_t v = (int32_t)(state >> 32);
    uint32_t w = (uint32_t)state;
    if (v < 0) gopanic("sync: negative WaitGroup counter");
    if (w != 0 && delta > 0 && v == delta)
        gopanic("sync: WaitGroup misuse: Add called concurrently with Wait");
    if (v > 0 || w == 0) return;
    /* Counter 0 with waiters: wake them all. */
    if (__atomic_load_n(&wg->state, __ATOMIC_ACQUIRE) != state)
        gopanic("sync: WaitGroup misuse: Add called concurrently with Wait");
    __atomic_store_n(&wg->state, 0, __ATOMIC_RELEASE);
    for (; w != 0; w--) sync_semrelease(&wg->sema, false);
}

void gort_waitgroup_done(gort_waitgroup *wg) {
    PANIC_IF_NIL(wg);
    gort_waitgroup_add(wg, -1);
}

void gort_waitgroup_wait(gort_waitgroup *wg) {
    PANIC_IF_NIL(wg);
    uint64_t state = __atomic_load_n(&wg->state, __ATOMIC_ACQUIRE);
    for (;;) {
        if ((int32_t)(state >> 32) == 0) return;
        if (__atomic_compare_exchange_n(&wg->state, &state, state + 1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            sync_semacquire(&wg->sema, false, WAIT_REASON_SYNC_WAITGROUP_WAIT);
            if (__atomic_load_n(&wg->state, __ATOMIC_ACQUIRE) != 0)
                gopanic("sync: WaitGroup is reused before previous Wait has returned");
            return;
        }
    }
}
