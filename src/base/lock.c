/* Futex-based runtime lock and note. See lock.h.
 *
 * The lock word has three states, as in Go's lock_futex.go and Drepper's
 * "Futexes are tricky": 0 unlocked, 1 locked, 2 locked and somebody may be
 * sleeping. A locker that fails to take the lock spins briefly, then sets the
 * word to 2 and sleeps; an unlocker that finds 2 wakes one sleeper. */
#include "base/lock.h"
#include "base/atomic.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void futex_sleep(uint32_t *addr, uint32_t val, int64_t ns) {
    struct timespec ts, *tsp = NULL;
    if (ns >= 0) {
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        tsp = &ts;
    }
    /* EINTR, EAGAIN and ETIMEDOUT are all fine: callers re-check their condition. */
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
}

void futex_wake(uint32_t *addr, int n) {
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

__thread int lock_depth __attribute__((tls_model("initial-exec")));
__thread int lock_suspend_pending __attribute__((tls_model("initial-exec")));
void (*lock_suspend_hook)(void);

void lock_suspend_now(void) {
    lock_suspend_pending = 0;
    if (lock_suspend_hook) lock_suspend_hook();
}

enum { ACTIVE_SPIN = 4, ACTIVE_SPIN_CNT = 30, PASSIVE_SPIN = 1 };

void (*lock_contended_hook)(int64_t ns);

static void lock_wait(lock_t *l);

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void lock_slow(lock_t *l) {
    void (*hook)(int64_t) = __atomic_load_n(&lock_contended_hook, __ATOMIC_RELAXED);
    if (__builtin_expect(hook == NULL, 1)) {
        lock_wait(l);
        return;
    }
    int64_t t0 = mono_ns(); /* the mutex profile: how long this contention lasted */
    lock_wait(l);
    hook(mono_ns() - t0);
}

static void lock_wait(lock_t *l) {
    /* We are going to sleep unless we win: remember that with state 2. */
    uint32_t v = atomic_xchg(&l->key, 1);
    if (v == 0) return;
    uint32_t wait = v; /* 1 or 2: the state we must restore if we take the lock */
    for (;;) {
        for (int i = 0; i < ACTIVE_SPIN; i++) {
            while (atomic_load_relaxed(&l->key) == 0) {
                uint32_t z = 0;
                if (atomic_cas(&l->key, &z, wait)) return;
            }
            for (int j = 0; j < ACTIVE_SPIN_CNT; j++) cpu_relax();
        }
        for (int i = 0; i < PASSIVE_SPIN; i++) {
            while (atomic_load_relaxed(&l->key) == 0) {
                uint32_t z = 0;
                if (atomic_cas(&l->key, &z, wait)) return;
            }
            sched_yield();
        }
        v = atomic_xchg(&l->key, 2);
        if (v == 0) return;
        wait = 2;
        /* We turned "held" into "held, sleepers": the holder may be inside
         * an rseq release that loaded 1 before our XCHG and will store 0
         * without waking us. After the fence its store is visible (the
         * futex then sees 0 and returns at once) or it restarted and saw 2. */
        if (v == 1 && rseq_ok) rseq_fence_holder();
        futex_sleep(&l->key, 2, -1);
    }
}

void unlock_slow(lock_t *l) {
    futex_wake(&l->key, 1);
}

void note_wakeup(note_t *n) {
    uint32_t old = atomic_xchg(&n->key, 1);
    if (old != 0) return; /* already woken: Go throws; waking twice is harmless here */
    futex_wake(&n->key, 1);
}

void note_sleep(note_t *n) {
    while (atomic_load_acq(&n->key) == 0) futex_sleep(&n->key, 0, -1);
}

bool note_tsleep(note_t *n, int64_t ns) {
    if (ns < 0) {
        note_sleep(n);
        return true;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t deadline = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + ns;
    while (atomic_load_acq(&n->key) == 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        if (now >= deadline) return false;
        futex_sleep(&n->key, 0, deadline - now);
    }
    return true;
}
