/* Stop-the-world by signals. See stw.h for the contract.
 *
 * The stopper (one at a time, stw_mutex) publishes stw_active, takes the Ps
 * left in system calls (P_SYSCALL -> P_GCSTOP, so their goroutines cannot
 * come back), then signals every M that holds a P and waits until each has
 * set its m->suspended flag. The handler publishes the interrupted context
 * and sleeps on the stw_active futex word. start_the_world gives the taken
 * Ps back, clears stw_active and wakes everybody.
 *
 * Races, and why they are safe:
 * - An M taking a P stores m->p, fences, then reads stw_active (stw_check);
 *   the stopper stores stw_active, fences, then reads every m->p. So either
 *   the stopper signals that M, or the M sees the flag and waits by itself
 *   before running any goroutine (Dekker's argument).
 * - A thread inside a runtime critical section (lock_depth > 0) only marks
 *   lock_suspend_pending in the handler; its outermost unlock() calls
 *   deferred_suspend. The stopper therefore never waits on a lock held by a
 *   stopped thread. stw_mutex itself is not a lock_t, so a second stopper
 *   waiting for it can still be stopped by the first.
 * - An M signalled while it was giving up its P (stopm) still stops in the
 *   handler: its futex wait is interrupted and resumed afterwards. */
#define _GNU_SOURCE
#include "sched/stw.h"
#include "base/atomic.h"
#include "base/fatal.h"
#include "base/lock.h"
#include "base/nanotime.h"
#include "sched/runtime2.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

static int stw_signal;      /* SIGRTMIN + 6 */
static uint32_t stw_active; /* futex word: 1 while the world is stopped or stopping */
static uint32_t stw_acks;   /* futex word: bumped by every M that stops */
static uint32_t wake_seq;   /* futex word: bumped whenever stopped Ms may go on */
static uint32_t stw_mutex;  /* 0 free, 1 held, 2 held with waiters (not a lock_t) */
static uint64_t nstops;
static int64_t last_ns, max_ns;

#define STW_TIMEOUT_NS ((int64_t)10 * 1000 * 1000 * 1000)

static void mutex_lock(void) {
    uint32_t z = 0;
    if (atomic_cas(&stw_mutex, &z, 1)) return;
    while (atomic_xchg(&stw_mutex, 2) != 0) futex_sleep(&stw_mutex, 2, -1);
}

static void mutex_unlock(void) {
    if (atomic_xchg(&stw_mutex, 0) == 2) futex_wake(&stw_mutex, 1);
}

bool stw_active_now(void) {
    return atomic_load_acq(&stw_active) != 0;
}

/* Whether mp must stop: the world is stopping, or mp alone is asked to. */
static inline bool must_stop(m *mp) {
    return atomic_load_acq(&stw_active) || atomic_load_acq(&mp->suspend_req);
}

/* Sleeps until neither the world nor mp is to be stopped. Async-signal-safe. */
static void suspend_wait(m *mp) {
    atomic_store_rel(&mp->suspended, 1);
    atomic_xadd(&stw_acks, 1);
    futex_wake(&stw_acks, INT32_MAX);
    for (;;) {
        uint32_t seq = atomic_load_acq(&wake_seq);
        if (!must_stop(mp)) break;
        futex_sleep(&wake_seq, seq, -1);
    }
    mp->suspend_valid = false;
    atomic_store_rel(&mp->suspended, 0);
}

static void suspend_handler(int sig, siginfo_t *si, void *uctx) {
    (void)sig;
    (void)si;
    int saved_errno = errno;
    m *mp = tls_m;
    if (mp && must_stop(mp) && !atomic_load_relaxed(&mp->suspended)) {
        if (lock_depth > 0) {
            lock_suspend_pending = 1; /* stop at the outermost unlock() */
        } else {
            const ucontext_t *uc = uctx;
            const greg_t *gr = uc->uc_mcontext.gregs;
            static const int order[16] = {REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI, REG_RDI,
                                          REG_RBP, REG_RSP, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                          REG_R12, REG_R13, REG_R14, REG_R15};
            for (int i = 0; i < 16; i++) mp->suspend.regs[i] = (uintptr_t)gr[order[i]];
            mp->suspend.sp = (uintptr_t)gr[REG_RSP];
            mp->suspend.pc = (uintptr_t)gr[REG_RIP];
            mp->suspend_valid = true;
            suspend_wait(mp);
        }
    }
    errno = saved_errno;
}

/* Stops the calling M where it stands (deferred from the handler, or an M
 * that took a P while the world was stopped). Its callee-saved registers are
 * spilled to its stack first, so the published stack pointer covers them. */
static __attribute__((noinline)) void suspend_here(m *mp) {
    __builtin_unwind_init();
    memset(&mp->suspend, 0, sizeof mp->suspend);
    mp->suspend.sp = (uintptr_t)__builtin_frame_address(0);
    mp->suspend.pc = (uintptr_t)__builtin_return_address(0);
    mp->suspend_valid = true;
    suspend_wait(mp);
}

static void deferred_suspend(void) {
    m *mp = tls_m;
    if (mp && must_stop(mp) && !atomic_load_relaxed(&mp->suspended)) suspend_here(mp);
}

void stw_check(m *mp) {
    atomic_fence(); /* m->p is published before stw_active is read (see above) */
    if (unlikely(atomic_load_acq(&stw_active))) {
        if (lock_depth > 0)
            lock_suspend_pending = 1; /* at the outermost unlock() */
        else
            suspend_here(mp);
    }
}

int stw_init(void) {
    stw_signal = SIGRTMIN + 6;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = suspend_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask); /* nothing interrupts a stopped thread's handler */
    if (sigaction(stw_signal, &sa, NULL) < 0) return -errno;
    lock_suspend_hook = deferred_suspend;
    return 0;
}

void stw_thread_init(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, stw_signal);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

static void wait_stopped(m *mp, int64_t t0) {
    while (!atomic_load_acq(&mp->suspended)) {
        uint32_t seen = atomic_load_acq(&stw_acks);
        if (atomic_load_acq(&mp->suspended)) break;
        if (nanotime() - t0 > STW_TIMEOUT_NS)
            throwf("stop the world: M %lld did not stop within 10 s", (long long)mp->id);
        futex_sleep(&stw_acks, seen, 1000 * 1000);
    }
}

void stop_the_world(const char *reason) {
    (void)reason; /* for the execution trace, when it exists */
    int64_t t0 = nanotime();
    mutex_lock();
    m *self = tls_m;
    atomic_store_rel(&stw_active, 1);
    int32_t np = atomic_load_acq(&sched.nallp);
    for (int32_t i = 0; i < np; i++) {
        p *pp = allp[i];
        uint32_t st = P_SYSCALL;
        if (pp && atomic_cas(&pp->status, &st, P_GCSTOP)) pp->stw_taken = true;
        /* gort_preempt_check stops there, at a known point, when it comes
         * before the signal. */
        if (pp) atomic_store_rel(&pp->must_sched, 1);
    }
    atomic_fence(); /* stw_active is published before any m->p is read */
    for (m *mp = sched_allm(); mp; mp = mp->alllink) {
        mp->stw_signalled = false;
        if (mp == self || !mp->thread_valid || atomic_load_relaxed(&mp->suspended)) continue;
        if (!atomic_load_acq(&mp->p)) continue; /* idle or in a syscall: cannot run goroutines */
        mp->stw_signalled = true;
        int rc = pthread_kill(mp->thread, stw_signal);
        if (rc != 0)
            throwf("stop the world: cannot signal M %lld (error %d)", (long long)mp->id, rc);
    }
    for (m *mp = sched_allm(); mp; mp = mp->alllink)
        if (mp->stw_signalled) wait_stopped(mp, t0);
    int64_t d = nanotime() - t0;
    nstops++;
    last_ns = d;
    if (d > max_ns) max_ns = d;
}

void start_the_world(void) {
    int32_t np = atomic_load_acq(&sched.nallp);
    for (int32_t i = 0; i < np; i++) {
        p *pp = allp[i];
        if (!pp || !pp->stw_taken) continue;
        pp->stw_taken = false;
        uint32_t st = P_GCSTOP;
        /* Back to "in a syscall": its M takes it back on return, or sysmon
         * hands it off as for any P stuck in a syscall. */
        atomic_cas(&pp->status, &st, P_SYSCALL);
    }
    atomic_store_rel(&stw_active, 0);
    atomic_xadd(&wake_seq, 1);
    futex_wake(&wake_seq, INT32_MAX);
    mutex_unlock();
}

void stw_atfork_child(void) {
    int32_t np = atomic_load_acq(&sched.nallp);
    for (int32_t i = 0; i < np; i++) {
        p *pp = allp[i];
        if (!pp || !pp->stw_taken) continue;
        pp->stw_taken = false;
        if (atomic_load_relaxed(&pp->status) == P_GCSTOP) atomic_store_rel(&pp->status, P_SYSCALL);
    }
    stw_active = 0;
    stw_acks = 0;
    stw_mutex = 0;
}

const suspend_ctx *stw_suspended(m *mp) {
    return atomic_load_acq(&mp->suspended) && mp->suspend_valid ? &mp->suspend : NULL;
}

void stw_stats(uint64_t *n, int64_t *last, int64_t *max) {
    *n = nstops;
    *last = last_ns;
    *max = max_ns;
}

/* ---- one goroutine ---- */

bool sched_suspend_g(g *gp, suspend_ctx *out) {
    m *self = tls_m;
    for (int tries = 0; tries < 1000; tries++) {
        m *mp = atomic_load_acq(&gp->m);
        if (atomic_load_acq(&gp->status) != G_RUNNING || !mp || mp == self ||
            atomic_load_acq(&mp->curg) != gp || !mp->thread_valid)
            return false; /* not running on another thread */
        mutex_lock();     /* no stop-the-world meanwhile */
        int64_t t0 = nanotime();
        atomic_store_rel(&mp->suspend_req, 1);
        atomic_fence();
        int rc = pthread_kill(mp->thread, stw_signal);
        if (rc != 0) throwf("suspend: cannot signal M %lld (error %d)", (long long)mp->id, rc);
        wait_stopped(mp, t0);
        if (atomic_load_acq(&mp->curg) == gp && mp->suspend_valid) {
            *out = mp->suspend;
            gp->suspended_on = mp;
            return true; /* stw_mutex stays held until sched_resume_g */
        }
        /* It switched away before it stopped: let it go and look again. */
        atomic_store_rel(&mp->suspend_req, 0);
        atomic_xadd(&wake_seq, 1);
        futex_wake(&wake_seq, INT32_MAX);
        mutex_unlock();
    }
    return false;
}

void sched_resume_g(g *gp) {
    m *mp = gp->suspended_on;
    if (!mp) throw("sched_resume_g: goroutine not suspended");
    gp->suspended_on = NULL;
    atomic_store_rel(&mp->suspend_req, 0);
    atomic_xadd(&wake_seq, 1);
    futex_wake(&wake_seq, INT32_MAX);
    mutex_unlock();
}
