/* gort_once: Go's sync.Once.
 *
 * done is set (release) only after fn has returned, so the fast path, an
 * acquire load of done, sees fn's effects. Concurrent first callers
 * serialize on the mutex; the one that finds done still 0 runs fn, and the
 * others wait for it to return (Go's guarantee: when Do returns, fn has run).
 * A CAS on done instead would let a loser return before fn finished. */
#include "base/atomic.h"
#include "base/fatal.h"
#include "gort/sync.h"

static __attribute__((noinline)) void once_do_slow(gort_once *o, void (*fn)(void *), void *arg,
                                                   uintptr_t pc) {
    gort_mutex_lock(&o->m);
    if (o->done == 0) {
        if (!fn) panic_nil(pc); /* Go calls the nil func and faults */
        fn(arg);
        __atomic_store_n(&o->done, 1, __ATOMIC_RELEASE);
    }
    gort_mutex_unlock(&o->m);
}

void gort_once_do(gort_once *o, void (*fn)(void *), void *arg) {
    PANIC_IF_NIL(o);
    if (likely(__atomic_load_n(&o->done, __ATOMIC_ACQUIRE) != 0)) return;
    once_do_slow(o, fn, arg, (uintptr_t)__builtin_return_address(0));
}
