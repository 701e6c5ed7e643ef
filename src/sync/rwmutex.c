/* gort_rwmutex: Go's sync.RWMutex, with writer preference.
 *
 * reader_count counts readers holding or wanting the lock. A writer first
 * takes w (excluding other writers), then subtracts RWMUTEX_MAX_READERS from
 * reader_count: from then on every new reader sees a negative count and
 * parks on reader_sem. The readers already in (the count before the
 * subtraction) are added to reader_wait; each of them, leaving, decrements
 * it, and the last one releases writer_sem, on which the writer parks.
 * Unlock adds RWMUTEX_MAX_READERS back and releases reader_sem once per
 * reader that arrived meanwhile, then releases w. */
#include "sync/sync.h"

#include "base/fatal.h"

#define RWMUTEX_MAX_READERS (1 << 30)

void gort_rwmutex_rlock(gort_rwmutex *rw) {
    PANIC_IF_NIL(rw);
    if (__atomic_add_fetch(&rw->reader_count, 1, __ATOMIC_ACQ_REL) < 0)
        sync_semacquire(&rw->reader_sem, false,
                        WAIT_REASON_SYNC_RWMUTEX_RLOCK); /* a writer is pending */
}

void gort_rwmutex_runlock(gort_rwmutex *rw) {
    PANIC_IF_NIL(rw);
    int32_t r = __atomic_sub_fetch(&rw->reader_count, 1, __ATOMIC_ACQ_REL);
    if (r >= 0) return;
    if (r + 1 == 0 || r + 1 == -RWMUTEX_MAX_READERS) throw("sync: RUnlock of unlocked RWMutex");
    /* A writer is pending: the last reader it waits for wakes it. */
    if (__atomic_sub_fetch(&rw->reader_wait, 1, __ATOMIC_ACQ_REL) == 0)
        sync_semrelease(&rw->writer_sem, false);
}

void gort_rwmutex_lock(gort_rwmutex *rw) {
    PANIC_IF_NIL(rw);
    gort_mutex_lock(&rw->w);
    int32_t r = __atomic_fetch_add(&rw->reader_count, -RWMUTEX_MAX_READERS, __ATOMIC_ACQ_REL);
    if (r != 0 && __atomic_add_fetch(&rw->reader_wait, r, __ATOMIC_ACQ_REL) != 0)
        sync_semacquire(&rw->writer_sem, false, WAIT_REASON_SYNC_RWMUTEX_LOCK);
}

void gort_rwmutex_unlock(gort_rwmutex *rw) {
    PANIC_IF_NIL(rw);
    int32_t r = __atomic_add_fetch(&rw->reader_count, RWMUTEX_MAX_READERS, __ATOMIC_ACQ_REL);
    if (r >= RWMUTEX_MAX_READERS) throw("sync: Unlock of unlocked RWMutex");
    for (int32_t i = 0; i < r; i++) sync_semrelease(&rw->reader_sem, false);
    gort_mutex_unlock(&rw->w);
}
