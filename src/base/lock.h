/* Runtime locks and notes, on futexes (Go's lock_futex.go).
 *
 * lock_t is a mutex for runtime data: a few spins, then the thread sleeps on
 * the futex. It parks the *thread*, so it is only for short critical sections
 * inside the runtime; goroutine-level mutexes live in src/sync.
 * note_t is a one-shot event: one sleeper, one waker (Go's note). */
#ifndef GORT_BASE_LOCK_H
#define GORT_BASE_LOCK_H

#include "base/rseq.h"

#include <stdbool.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define futex_sleep          gort__futex_sleep
#define futex_wake           gort__futex_wake
#define lock_contended_hook  gort__lock_contended_hook
#define lock_depth           gort__lock_depth
#define lock_slow            gort__lock_slow
#define lock_suspend_hook    gort__lock_suspend_hook
#define lock_suspend_now     gort__lock_suspend_now
#define lock_suspend_pending gort__lock_suspend_pending
#define note_sleep           gort__note_sleep
#define note_tsleep          gort__note_tsleep
#define note_wakeup          gort__note_wakeup
#define unlock_slow          gort__unlock_slow

typedef struct {
    uint32_t key; /* 0 unlocked, 1 locked, 2 locked with (possible) sleepers */
} lock_t;

/* Runtime locks held by this thread. Stop-the-world suspends threads by a
 * signal at any instruction; one that holds a runtime lock must not stop
 * there (the stopper could then wait forever on that lock), so the suspend
 * handler only marks lock_suspend_pending and the outermost unlock() suspends
 * the thread instead (lock_suspend_hook, installed by src/sched/stw.c). */
extern __thread int lock_depth __attribute__((tls_model("initial-exec")));
extern __thread int lock_suspend_pending __attribute__((tls_model("initial-exec")));
extern void (*lock_suspend_hook)(void);
#define LOCK_INIT                                                                                  \
    { 0 }

void lock_slow(lock_t *l);
void unlock_slow(lock_t *l);
/* The mutex profile's view of runtime locks (src/prof sets it while the
 * profile is on): called by lock_slow with the lock just taken after a wait
 * of ns, on the waiter's stack. It must not take a lock or allocate. */
extern void (*lock_contended_hook)(int64_t ns);

static inline void lock(lock_t *l) {
    lock_depth++;
    __asm__ __volatile__("" ::: "memory"); /* counted before the lock is taken */
    uint32_t z = 0;
    if (__builtin_expect(
            !__atomic_compare_exchange_n(&l->key, &z, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED),
            0))
        lock_slow(l);
}
void lock_suspend_now(void);

static inline bool trylock(lock_t *l) {
    uint32_t z = 0;
    lock_depth++;
    __asm__ __volatile__("" ::: "memory");
    if (__atomic_compare_exchange_n(&l->key, &z, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return true;
    __asm__ __volatile__("" ::: "memory");
    if (--lock_depth == 0 && __builtin_expect(lock_suspend_pending, 0)) lock_suspend_now();
    return false;
}
/* Held and nobody sleeping (key 1): released by rseq_release, no locked
 * instruction (a sleeper that raced it fences in lock_slow). Otherwise
 * Go's XCHG, and a futex wake if someone may sleep. */
static inline void unlock(lock_t *l) {
    if (!rseq_release(&l->key, 1) &&
        __builtin_expect(__atomic_exchange_n(&l->key, 0, __ATOMIC_RELEASE) == 2, 0))
        unlock_slow(l);
    __asm__ __volatile__("" ::: "memory"); /* uncounted only once released */
    if (--lock_depth == 0 && __builtin_expect(lock_suspend_pending, 0)) lock_suspend_now();
}

typedef struct {
    uint32_t key; /* 0 clear, 1 woken */
} note_t;

static inline void note_clear(note_t *n) {
    __atomic_store_n(&n->key, 0, __ATOMIC_RELAXED);
}
void note_wakeup(note_t *n);
void note_sleep(note_t *n);
/* Sleeps at most ns nanoseconds (ns < 0: forever). Returns true if woken. */
bool note_tsleep(note_t *n, int64_t ns);

/* Raw futex calls: wait while *addr == val (at most ns, < 0 forever); wake up to n. */
void futex_sleep(uint32_t *addr, uint32_t val, int64_t ns);
void futex_wake(uint32_t *addr, int n);

#endif
