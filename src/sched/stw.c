/* Stop-the-world by signals. See stw.h for the contract.
 *
 * The stopper (one at a time, stw_mutex) publishes stw_active, takes the Ps
 * left in system calls (P_SYSCALL -> P_GCSTOP, so their goroutines cannot
 * come back), then signals every M that holds a P and every registered
 * foreign thread, and waits until each has set its suspended flag. The
 * handler publishes the interrupted context and sleeps on the wake_seq
 * futex word. start_the_world gives the taken Ps back, clears stw_active and
 * wakes everybody. Ms and foreign threads share the mechanism through their
 * stw_thread records (m.st, and the foreign registry).
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
 *   handler: its futex wait is interrupted and resumed afterwards.
 * - A foreign thread registers under the registry lock after waiting out
 *   a stop in progress, and unregisters under the same lock, which the
 *   stopper holds for the whole stop: so it is never signalled after it is
 *   gone, and never runs heap code while the world is stopped. */
#define _GNU_SOURCE
#include "sched/stw.h"
#include "base/atomic.h"
#include "base/fatal.h"
#include "base/lock.h"
#include "base/nanotime.h"
#include "mem/arena.h"
#include "sched/runtime2.h"
#include "sched/schedhooks.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

/* In the runtime's own section (GORT_RTDATA, mem/arena.h), which the
 * collector's data scan leaves out: two of these words side by side read
 * as one heap address (stw_mutex 0 and wake_seq 192 are 0xc000000000, the
 * heap's first object), which kept that object alive while wake_seq held
 * there, and gccheckmark took it for a missed mark (test_gc's
 * torture_checkmark, 2 to 6 runs in 60 under load). None of them is a
 * reference. */
static GORT_RTDATA int stw_signal;      /* SIGRTMIN + 6 */
static GORT_RTDATA uint32_t stw_active; /* futex word: 1 while the world is stopped or stopping */
static GORT_RTDATA uint32_t stw_acks;   /* futex word: bumped by every thread that stops */
static GORT_RTDATA uint32_t wake_seq;   /* futex word: bumped whenever stopped threads may go on */
static GORT_RTDATA uint32_t stw_mutex;  /* 0 free, 1 held, 2 held with waiters (not a lock_t) */
static GORT_RTDATA uint64_t nstops;
static GORT_RTDATA int64_t last_ns, max_ns;

/* Registered foreign threads, under reg_mutex (a plain futex mutex, like
 * stw_mutex; taken after stw_mutex when both are held). */
static stw_thread *foreign_list;
static uint32_t reg_mutex;
__thread stw_thread *tls_stw_foreign __attribute__((tls_model("initial-exec")));

#define STW_TIMEOUT_NS ((int64_t)10 * 1000 * 1000 * 1000)

static void fmutex_lock(uint32_t *mu) {
    uint32_t z = 0;
    if (atomic_cas(mu, &z, 1)) return;
    while (atomic_xchg(mu, 2) != 0) futex_sleep(mu, 2, -1);
}

static void fmutex_unlock(uint32_t *mu) {
    if (atomic_xchg(mu, 0) == 2) futex_wake(mu, 1);
}

static void mutex_lock(void) {
    fmutex_lock(&stw_mutex);
}

static void mutex_unlock(void) {
    fmutex_unlock(&stw_mutex);
}

bool stw_active_now(void) {
    return atomic_load_acq(&stw_active) != 0;
}

/* Whether t must stop: the world is stopping, or t alone is asked to. */
static inline bool must_stop(stw_thread *t) {
    return atomic_load_acq(&stw_active) || atomic_load_acq(&t->suspend_req);
}

/* The calling thread's record: its M's, or its foreign registration. */
static inline stw_thread *self_thread(void) {
    m *mp = tls_m;
    return mp ? &mp->st : tls_stw_foreign;
}

/* Sleeps until neither the world nor t is to be stopped. Async-signal-safe. */
static void suspend_wait(stw_thread *t) {
    atomic_store_rel(&t->suspended, 1);
    atomic_xadd(&stw_acks, 1);
    futex_wake(&stw_acks, INT32_MAX);
    for (;;) {
        uint32_t seq = atomic_load_acq(&wake_seq);
        if (!must_stop(t)) break;
        futex_sleep(&wake_seq, seq, -1);
    }
    t->suspend_valid = false;
    atomic_store_rel(&t->suspended, 0);
}

static void suspend_handler(int sig, siginfo_t *si, void *uctx) {
    (void)sig;
    (void)si;
    int saved_errno = errno;
    stw_thread *t = self_thread();
    if (t && must_stop(t) && !atomic_load_relaxed(&t->suspended)) {
        if (lock_depth > 0) {
            lock_suspend_pending = 1; /* stop at the outermost unlock() */
        } else {
            const ucontext_t *uc = uctx;
            const greg_t *gr = uc->uc_mcontext.gregs;
            static const int order[16] = {REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI, REG_RDI,
                                          REG_RBP, REG_RSP, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                          REG_R12, REG_R13, REG_R14, REG_R15};
            for (int i = 0; i < 16; i++) t->suspend.regs[i] = (uintptr_t)gr[order[i]];
            const struct _libc_fpstate *fp = uc->uc_mcontext.fpregs;
            for (int i = 0; i < 16; i++) {
                const uint32_t *e = fp ? fp->_xmm[i].element : NULL;
                t->suspend.xmm[2 * i] = e ? (uintptr_t)e[0] | (uintptr_t)e[1] << 32 : 0;
                t->suspend.xmm[2 * i + 1] = e ? (uintptr_t)e[2] | (uintptr_t)e[3] << 32 : 0;
            }
            t->suspend.sp = (uintptr_t)gr[REG_RSP];
            t->suspend.pc = (uintptr_t)gr[REG_RIP];
            t->suspend_valid = true;
            suspend_wait(t);
        }
    }
    errno = saved_errno;
}

/* Stops the calling thread where it stands (deferred from the handler, or an
 * M that took a P while the world was stopped). Its callee-saved registers
 * are spilled to its stack first, so the published stack pointer covers
 * them. */
static __attribute__((noinline)) void suspend_here(stw_thread *t) {
    /* Every callee-saved register is spilled into this frame and stays
     * there while we wait (no tail call: the compiler would reload them
     * first, and suspend_wait's frame, below the published pointer, would
     * get them instead). The published pointer is where the stack stands
     * now, so the spills are above it. */
    __builtin_unwind_init();
    uintptr_t sp;
    __asm__ __volatile__("mov %%rsp, %0" : "=r"(sp));
    memset(&t->suspend, 0, sizeof t->suspend);
    t->suspend.sp = sp;
    t->suspend.pc = (uintptr_t)__builtin_return_address(0);
    t->suspend.regs[6] = (uintptr_t)__builtin_frame_address(0); /* rbp: for tracebacks */
    t->suspend_valid = true;
    suspend_wait(t);
    __asm__ __volatile__("" ::: "memory"); /* not a tail call */
}

static void deferred_suspend(void) {
    stw_thread *t = self_thread();
    if (t && must_stop(t) && !atomic_load_relaxed(&t->suspended)) suspend_here(t);
}

void stw_check(m *mp) {
    atomic_fence(); /* m->p is published before stw_active is read (see above) */
    if (unlikely(atomic_load_acq(&stw_active))) {
        if (lock_depth > 0)
            lock_suspend_pending = 1; /* at the outermost unlock() */
        else
            suspend_here(&mp->st);
    }
}

int stw_init(void) {
    static int done;
    if (done) return 0;
    stw_signal = SIGRTMIN + 6;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = suspend_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask); /* nothing interrupts a stopped thread's handler */
    if (sigaction(stw_signal, &sa, NULL) < 0) return -errno;
    lock_suspend_hook = deferred_suspend;
    done = 1;
    return 0;
}

void stw_thread_init(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, stw_signal);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

/* A thread stops within a few tens of microseconds of its signal, unless
 * the OS has it off the CPU: the stopper spins that long before it sleeps,
 * so that the usual stop costs no sleep and wakeup of its own. */
#define STW_SPIN_NS ((int64_t)50 * 1000)

static void wait_stopped(stw_thread *t, int64_t t0, long long id) {
    while (!atomic_load_acq(&t->suspended) && nanotime() - t0 < STW_SPIN_NS)
        for (int i = 0; i < 64; i++) cpu_relax();
    while (!atomic_load_acq(&t->suspended)) {
        uint32_t seen = atomic_load_acq(&stw_acks);
        if (atomic_load_acq(&t->suspended)) break;
        if (nanotime() - t0 > STW_TIMEOUT_NS)
            throwf("stop the world: %s %lld did not stop within 10 s", id >= 0 ? "M" : "thread",
                   id >= 0 ? id : -id);
        futex_sleep(&stw_acks, seen, 1000 * 1000);
    }
}

static void signal_thread(stw_thread *t, const char *what) {
    int rc = pthread_kill(t->thread, stw_signal);
    if (rc != 0) throwf("%s: cannot signal a thread (error %d)", what, rc);
}

void stop_the_world(const char *reason) {
    if (sched_tracing()) /* the execution trace */
        sched_trace_clocked(TK_STW_START | TK_EXT, 0, 0, trace_pid(tls_m),
                            (uint64_t)(uintptr_t)reason);
    int64_t t0 = nanotime();
    mutex_lock();
    fmutex_lock(&reg_mutex); /* no foreign thread comes or goes meanwhile */
    stw_thread *self = self_thread();
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
        stw_thread *t = &mp->st;
        t->signalled = false;
        if (t == self || !t->thread_valid || atomic_load_relaxed(&t->suspended)) continue;
        if (!atomic_load_acq(&mp->p)) continue; /* idle or in a syscall: cannot run goroutines */
        t->signalled = true;
        signal_thread(t, "stop the world");
    }
    for (stw_thread *t = foreign_list; t; t = t->next) {
        t->signalled = false;
        if (t == self || atomic_load_relaxed(&t->suspended)) continue;
        t->signalled = true;
        signal_thread(t, "stop the world");
    }
    for (m *mp = sched_allm(); mp; mp = mp->alllink)
        if (mp->st.signalled) wait_stopped(&mp->st, t0, (long long)mp->id);
    long long k = 0;
    for (stw_thread *t = foreign_list; t; t = t->next, k++)
        if (t->signalled) wait_stopped(t, t0, -k - 1);
    int64_t d = nanotime() - t0;
    nstops++;
    last_ns = d;
    if (d > max_ns) max_ns = d;
}

void start_the_world(void) {
    if (sched_tracing()) sched_trace_clocked(TK_STW_DONE, 0, 0, trace_pid(tls_m), 0);
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
    fmutex_unlock(&reg_mutex);
    mutex_unlock();
}

const suspend_ctx *stw_suspended(const stw_thread *t) {
    return atomic_load_acq(&t->suspended) && t->suspend_valid ? &t->suspend : NULL;
}

void stw_stats(uint64_t *n, int64_t *last, int64_t *max) {
    *n = nstops;
    *last = last_ns;
    *max = max_ns;
}

/* ---- foreign threads ---- */

void stw_register_foreign(stw_thread *t) {
    if (stw_init() < 0) throw("cannot install the stop-the-world signal");
    t->thread = pthread_self();
    t->thread_valid = true;
    t->suspended = t->suspend_req = 0;
    t->suspend_valid = false;
    stw_thread_init();
    /* A stop in progress holds the registry: we wait it out, and then no
     * stop can begin before we are on the list. */
    fmutex_lock(&reg_mutex);
    t->next = foreign_list;
    foreign_list = t;
    t->registered = true;
    tls_stw_foreign = t;
    fmutex_unlock(&reg_mutex);
}

void stw_unregister_foreign(stw_thread *t) {
    fmutex_lock(&reg_mutex);
    for (stw_thread **pt = &foreign_list; *pt; pt = &(*pt)->next) {
        if (*pt == t) {
            *pt = t->next;
            break;
        }
    }
    t->registered = false;
    if (tls_stw_foreign == t) tls_stw_foreign = NULL;
    fmutex_unlock(&reg_mutex);
}

void stw_foreign_each(void (*fn)(stw_thread *t, void *arg), void *arg) {
    fmutex_lock(&reg_mutex);
    for (stw_thread *t = foreign_list; t; t = t->next) fn(t, arg);
    fmutex_unlock(&reg_mutex);
}

/* Suspends t alone (the caller holds stw_mutex): true once it stopped. */
static bool suspend_one(stw_thread *t, int64_t t0, long long id) {
    atomic_store_rel(&t->suspend_req, 1);
    atomic_fence();
    signal_thread(t, "suspend");
    wait_stopped(t, t0, id);
    return t->suspend_valid;
}

static void resume_one(stw_thread *t) {
    atomic_store_rel(&t->suspend_req, 0);
    atomic_xadd(&wake_seq, 1);
    futex_wake(&wake_seq, INT32_MAX);
}

bool stw_suspend_foreign(stw_thread *t, suspend_ctx *out) {
    mutex_lock();            /* no stop-the-world meanwhile */
    fmutex_lock(&reg_mutex); /* t cannot unregister (exit) meanwhile */
    if (!t->registered || t == tls_stw_foreign) {
        fmutex_unlock(&reg_mutex);
        mutex_unlock();
        return false;
    }
    suspend_one(t, nanotime(), -1);
    *out = t->suspend;
    return true; /* both mutexes stay held until stw_resume_foreign */
}

void stw_resume_foreign(stw_thread *t) {
    resume_one(t);
    fmutex_unlock(&reg_mutex);
    mutex_unlock();
}

/* ---- one goroutine ---- */

bool sched_suspend_g(g *gp, suspend_ctx *out) {
    m *self = tls_m;
    for (int tries = 0; tries < 1000; tries++) {
        m *mp = atomic_load_acq(&gp->m);
        if (atomic_load_acq(&gp->status) != G_RUNNING || !mp || mp == self ||
            atomic_load_acq(&mp->curg) != gp || !mp->st.thread_valid)
            return false; /* not running on another thread */
        mutex_lock();     /* no stop-the-world meanwhile */
        if (suspend_one(&mp->st, nanotime(), (long long)mp->id) &&
            atomic_load_acq(&mp->curg) == gp) {
            *out = mp->st.suspend;
            gp->suspended_on = mp;
            return true; /* stw_mutex stays held until sched_resume_g */
        }
        /* It switched away before it stopped: let it go and look again. */
        resume_one(&mp->st);
        mutex_unlock();
    }
    return false;
}

void sched_resume_g(g *gp) {
    m *mp = gp->suspended_on;
    if (!mp) throw("sched_resume_g: goroutine not suspended");
    gp->suspended_on = NULL;
    resume_one(&mp->st);
    mutex_unlock();
}

/* ---- fork (called by the scheduler's fork handlers, proc.c) ---- */

void stw_atfork_prepare(void) {
    mutex_lock();
    fmutex_lock(&reg_mutex);
}

void stw_atfork_parent(void) {
    fmutex_unlock(&reg_mutex);
    mutex_unlock();
}

/* The child has one thread: no other foreign thread exists any more, and
 * the world the parent stopped for the fork (if it did) is started again,
 * waking nobody: the Ps it took from syscalls are back in a syscall. */
void stw_atfork_child(void) {
    int32_t np = sched.nallp;
    for (int32_t i = 0; i < np; i++) {
        p *pp = allp[i];
        if (!pp || !pp->stw_taken) continue;
        pp->stw_taken = false;
        if (pp->status == P_GCSTOP) pp->status = P_SYSCALL;
    }
    stw_active = 0;
    stw_acks = 0;
    stw_mutex = 0;
    reg_mutex = 0;
    stw_thread *self = tls_stw_foreign;
    for (stw_thread *t = foreign_list; t; t = t->next) t->registered = t == self;
    foreign_list = self && self->registered ? self : NULL;
    if (foreign_list) foreign_list->next = NULL;
    if (self) {
        self->thread = pthread_self();
        self->suspended = self->suspend_req = 0;
    }
}
