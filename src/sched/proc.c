/* The scheduler: Go's GMP (proc.go), in C.
 *
 * Gs (goroutines) run on Ms (OS threads) that hold Ps (logical processors,
 * GORT_GOMAXPROCS of them). A P's local run queue is a 256-entry lock-free
 * ring plus runnext (runqput/runqget/runqsteal, Go's algorithm: the owner
 * alone advances the tail; consumers take from the head by CAS), plus a
 * private FIFO for goroutines that yield while nobody could steal (the
 * private yield queue, below: a yield without a locked instruction). Overflow
 * and goroutines without a P go to the global run queue (sched.lock), which
 * the scheduler checks every 61 ticks so that it cannot starve. An M out of
 * work spins (at most half the busy Ps do), stealing half of a random
 * victim's queue in Go's random order; then it releases its P, rechecks
 * everything, and parks on its note (stopm); wakep/startm hand an idle P to
 * a parked (or new) M when work appears; handoffp gives away the P of an M
 * that blocks (a syscall, a locked goroutine's wait).
 *
 * Fairness. A G taken from runnext inherits the time slice (Go's rule: a
 * pair of goroutines handing off to each other counts as one running G), so
 * such a pair would hold its P until sysmon ends the slice after 10 ms.
 * Two limits bound what the other Gs of the P wait: the slice ends after
 * HANDOFF_MAX inherited switches in a row when other Gs wait
 * (handoffs_over: one decrement on the handoff path), and sysmon ends it
 * after 10 ms of running (slice_over), which also covers a pair whose
 * goroutines work between handoffs. Either way runnext goes behind the
 * waiting Gs. docs/scheduler.md, "Fairness", states the bound.
 *
 * Switching. Go switches to g0 (mcall) to run schedule() and then to the
 * next goroutine: two switches. Here a goroutine that yields or parks takes
 * the next G from its P's local queue itself and switches to it directly
 * (switch_out), when nothing needs the full scheduler (no due timer, no
 * global-queue tick, no request in p->must_sched, no locked thread); else it
 * switches to g0, whose loop (schedule) does the rest. Either way the G that
 * switched away is published (put on a queue, marked waiting, recycled) only
 * by the context that resumes after the switch, from the action left in
 * m->pend (after_switch): a G is never visible to another M before its
 * context has been saved. That is the second half of Go's mcall(fn), and it
 * is where sched_park's unlockf runs (see runtime2.h). Outside ASan builds
 * the switch is arch_ctx_switch_hook, which runs after_switch as its resume
 * hook and then returns to the caller by an indirect jump: a goroutine
 * suspended in gort_yield (tail calls all the way to the switch) resumes
 * straight in its caller, without the return misprediction that a switch
 * between two call sites otherwise costs on every yield (~6 ns).
 *
 * Which stack: schedule, find_runnable, stopm and exitsyscall's slow path
 * run on g0 (the thread's stack). switch_out and after_switch run on
 * whatever stack is current, goroutine stacks included: they take no lock
 * except briefly sched.lock (global queue) and never block.
 *
 * TLS: a goroutine can resume on another thread after any switch. Every
 * switch returns the M that resumed it (arch_ctx_switch_arg passes it), and
 * runtime code uses that, or reads tls_m afresh, never a value from before
 * the switch. tls_m is read by value only (initial-exec TLS, never through
 * its address), so no thread pointer is kept in a register across a switch.
 *
 * The allocator's mcache belongs to the P: acquirep points tls_mcache at the
 * P's cache and keeps the thread's own; releasep and gort_syscall_enter put
 * the thread's own back (a P retaken during a syscall is used by another
 * thread at once).
 *
 * Locks: sched.lock guards the idle lists (midle, pidle), the global run
 * queue, the M counts and gomaxprocs changes; it is a leaf except for a P's
 * timers_lock and sched.gflock, which may be taken inside it. The run
 * queues, P status (syscall -> idle by CAS), nmspinning and npidle are
 * atomics. A G's status is changed only by the M that owns it at that
 * moment, except WAITING -> RUNNABLE (sched_ready, by CAS).
 *
 * Deadlock (checkdead): when the last M goes idle with nothing runnable, no
 * goroutine in a syscall (its M is not idle), no timer armed (the M that
 * would sleep until it is not idle either), no external waiter (a
 * goroutine parked on I/O, which the poller will wake) and no thread that
 * gort did not start (a plain thread may still complete what the goroutines
 * wait for; sysmon looks again every 100 ms until none is left), the
 * program dies with Go's message and the goroutine dump.
 *
 * The network poller (src/net, through sched_netpoll; runtime2.h) enters
 * the scheduler at three places, as in Go's findRunnable and sysmon:
 * find_runnable polls without blocking before it steals, while goroutines
 * wait on I/O and no M is blocked in the poller; the timer sleeper (below)
 * sleeps in the poller instead of on its futex once the poller is in use,
 * and a kick (sched_timer_kick) then reaches it through the poller's
 * eventfd; and sysmon polls when nobody has for 10 ms. What a poll unblocks
 * is made runnable by injectglist.
 *
 * Elsewhere: sysmon and its policies (retake, preemption, stack trimming,
 * schedtrace) in sysmon.c, the goroutine dump in traceback.c, both behind
 * proc.h; stop-the-world by signals in stw.c; timers in time.c. Not here:
 * the poller itself (src/net) and asynchronous preemption of C code
 * (unsafe: a goroutine stopped anywhere may hold a libc lock;
 * docs/design.md). */
#define _GNU_SOURCE
#include "sched/proc.h"

#include "base/atomic.h"
#include "base/env.h"
#include "base/fatal.h"
#include "base/sanitizer.h"
#include "base/nanotime.h"
#include "base/os.h"
#include "base/print.h"
#include "base/thread.h"
#include "gort/sched.h"
#include "mem/fixalloc.h"
#include "mem/mcache.h"
#include "sched/schedhooks.h"
#include "sched/traceback.h"

#include <errno.h>
#include <sys/mman.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- globals ---------------------------------------------------------------- */

schedt sched = {.lock = LOCK_INIT, .gflock = LOCK_INIT};
p *allp[MAX_GOMAXPROCS];
__thread m *tls_m __attribute__((tls_model("initial-exec")));
g *(*sched_netpoll)(int64_t delay_ns, int32_t *n);
void (*sched_netpoll_break)(void);

const char *const wait_reason_strings[WAIT_REASON_COUNT] = {
    [WAIT_REASON_ZERO] = "",
    [WAIT_REASON_GC_ASSIST_MARKING] = "GC assist marking",
    [WAIT_REASON_IO_WAIT] = "IO wait",
    [WAIT_REASON_CHAN_RECEIVE_NIL_CHAN] = "chan receive (nil chan)",
    [WAIT_REASON_CHAN_SEND_NIL_CHAN] = "chan send (nil chan)",
    [WAIT_REASON_DUMPING_HEAP] = "dumping heap",
    [WAIT_REASON_GARBAGE_COLLECTION] = "garbage collection",
    [WAIT_REASON_GARBAGE_COLLECTION_SCAN] = "garbage collection scan",
    [WAIT_REASON_PANIC_WAIT] = "panicwait",
    [WAIT_REASON_SELECT] = "select",
    [WAIT_REASON_SELECT_NO_CASES] = "select (no cases)",
    [WAIT_REASON_GC_ASSIST_WAIT] = "GC assist wait",
    [WAIT_REASON_GC_SWEEP_WAIT] = "GC sweep wait",
    [WAIT_REASON_GC_SCAVENGE_WAIT] = "GC scavenge wait",
    [WAIT_REASON_CHAN_RECEIVE] = "chan receive",
    [WAIT_REASON_CHAN_SEND] = "chan send",
    [WAIT_REASON_FINALIZER_WAIT] = "finalizer wait",
    [WAIT_REASON_FORCE_GC_IDLE] = "force gc (idle)",
    [WAIT_REASON_SEMACQUIRE] = "semacquire",
    [WAIT_REASON_SLEEP] = "sleep",
    [WAIT_REASON_SYNC_COND_WAIT] = "sync.Cond.Wait",
    [WAIT_REASON_TIMER_GOROUTINE_IDLE] = "timer goroutine (idle)",
    [WAIT_REASON_TRACE_READER_BLOCKED] = "trace reader (blocked)",
    [WAIT_REASON_WAIT_FOR_GC_CYCLE] = "wait for GC cycle",
    [WAIT_REASON_GC_WORKER_IDLE] = "GC worker (idle)",
    [WAIT_REASON_PREEMPTED] = "preempted",
    [WAIT_REASON_DEBUG_CALL] = "debug call",
    [WAIT_REASON_SYNC_MUTEX_LOCK] = "sync.Mutex.Lock",
    [WAIT_REASON_SYNC_RWMUTEX_RLOCK] = "sync.RWMutex.RLock",
    [WAIT_REASON_SYNC_RWMUTEX_LOCK] = "sync.RWMutex.Lock",
    [WAIT_REASON_SYNC_WAITGROUP_WAIT] = "sync.WaitGroup.Wait",
};

static m *m0;   /* the thread that called gort_main */
static m *allm; /* all Ms, push-only (acquire loads) */
g *allgs;       /* all user Gs ever made, push-only (acquire loads) */
void (*sched_gc_newproc_hook)(void *arg);
void (*sched_gc_sysmon_hook)(void);
uintptr_t sched_main_stack_lo, sched_main_stack_hi;
static lock_t alloc_lock = LOCK_INIT; /* the G, M and P pools; leaf */
static fixalloc g_pool, m_pool;
static uint64_t sched_sys; /* bytes mapped for G/M/P records */
static bool started;
static int pending_gomaxprocs; /* gort_gomaxprocs before gort_main */
static sigset_t user_sigmask;  /* restored on every M: goroutines see the program's mask */
static uint32_t exit_park_word;

/* The thread stack of an M (its g0: the scheduler, timers' callbacks, the
 * fatal-error dump) and of sysmon: a runtime thread's (Go's g0 has 16 KiB). */
#define M_STACK_SIZE OS_THREAD_STACK

enum {
    GOIDCACHE = 16,
    SPIN_STEAL_TRIES = 4,
    HANDOFF_MAX = 61, /* inherited switches in a row before a waiting G gets its turn */
    GFREE_LOCAL_MAX = 64,
};

/* ---- small helpers -------------------------------------------------------------- */

uint32_t fastrand(void) {
    static __thread uint64_t seed; /* threads without an M */
    m *mp = tls_m;
    uint64_t *s = mp ? &mp->fastrand : &seed;
    if (!*s) *s = (uint64_t)(uintptr_t)s ^ 0x9e3779b97f4a7c15ULL;
    return fastrand_next(s);
}

m *sched_allm(void) {
    return atomic_load_acq(&allm);
}

g *sched_getg(void) {
    m *mp = tls_m;
    return mp ? mp->curg : NULL;
}

/* WAITING -> RUNNABLE, the one contended transition. While sysmon shrinks a
 * parked goroutine's stack (G_WAITING_SHRINK, a few microseconds) it waits. */
static void ready_status(g *gp) {
    uint32_t old = G_WAITING;
    while (!atomic_cas(&gp->status, &old, G_RUNNABLE)) {
        if (old != G_WAITING_SHRINK)
            throwf("sched_ready: goroutine %lld is not waiting (status %u)", (long long)gp->goid,
                   old);
        cpu_relax();
        old = G_WAITING;
    }
    sched_hook_on_ready(gp); /* profiling and tracing (schedhooks.h) */
}

/* A transition made by the G's current owner, which nobody races (only
 * WAITING -> RUNNABLE is contended: sched_ready uses casgstatus). A plain
 * release store: a locked CAS here cost ~10 ns per switch. */
static inline void setgstatus(g *gp, uint32_t from, uint32_t to) {
    assert_internal(atomic_load_relaxed(&gp->status) == from);
    (void)from;
    atomic_store_rel(&gp->status, to);
}

static inline void asan_unpoison_stack(g *gp) {
#if GORT_HAVE_ASAN
    if (gp->stack.lo)
        __asan_unpoison_memory_region((void *)gp->stack.lo, gp->stack.hi - gp->stack.lo);
#else
    (void)gp;
#endif
}

/* ---- local and global run queues (Go's runqput etc.) ------------------------------- */

/* Under sched.lock: a linked batch head..tail of n Gs. */
void globrunqputbatch(g *head, g *tail, int32_t n) {
    tail->schedlink = NULL;
    if (sched.runqtail)
        sched.runqtail->schedlink = head;
    else
        sched.runqhead = head;
    sched.runqtail = tail;
    atomic_store_relaxed(&sched.runqsize, sched.runqsize + n);
}

/* Under sched.lock. */
static void globrunqput(g *gp) {
    globrunqputbatch(gp, gp, 1);
}

static void runqput(p *pp, g *gp, bool next);

/* Under sched.lock: takes a batch for pp (max 0: no limit beyond half the
 * local ring), returns one, puts the rest on pp's local queue. */
static g *globrunqget(p *pp, int32_t max) {
    int32_t size = sched.runqsize;
    if (size == 0) return NULL;
    int32_t n = size / gomaxprocs() + 1;
    if (n > size) n = size;
    if (max > 0 && n > max) n = max;
    if (n > RUNQ_SIZE / 2) n = RUNQ_SIZE / 2;
    atomic_store_relaxed(&sched.runqsize, size - n);
    g *gp = sched.runqhead;
    sched.runqhead = gp->schedlink;
    if (!sched.runqhead) sched.runqtail = NULL;
    n--;
    for (; n > 0; n--) {
        g *g1 = sched.runqhead;
        sched.runqhead = g1->schedlink;
        if (!sched.runqhead) sched.runqtail = NULL;
        runqput(pp, g1, false);
    }
    return gp;
}

/* Moves half of the local queue plus gp to the global queue (the ring is
 * full). False if the ring changed under us (a thief took some): retry. */
static bool runqputslow(p *pp, g *gp, uint32_t h, uint32_t t) {
    g *batch[RUNQ_SIZE / 2 + 1];
    uint32_t n = (t - h) / 2;
    if (n != RUNQ_SIZE / 2) throw("runqputslow: queue is not full");
    for (uint32_t i = 0; i < n; i++) batch[i] = atomic_load_relaxed(&pp->runq[(h + i) % RUNQ_SIZE]);
    if (!atomic_cas(&pp->runqhead, &h, h + n)) return false;
    batch[n] = gp;
    for (uint32_t i = 0; i < n; i++) batch[i]->schedlink = batch[i + 1];
    lock(&sched.lock);
    globrunqputbatch(batch[0], batch[n], (int32_t)n + 1);
    unlock(&sched.lock);
    return true;
}

/* Owner only: onto the ring's tail (full: half of it to the global queue). */
static void runqput_ring(p *pp, g *gp) {
    for (;;) {
        uint32_t h = atomic_load_acq(&pp->runqhead);
        uint32_t t = pp->runqtail;
        if (t - h < RUNQ_SIZE) {
            atomic_store_relaxed(&pp->runq[t % RUNQ_SIZE], gp);
            atomic_store_rel(&pp->runqtail, t + 1);
            return;
        }
        if (runqputslow(pp, gp, h, t)) return;
    }
}

static void yq_spill(p *pp);

/* Owner only. next: into runnext, kicking the old runnext to the tail. */
static void runqput(p *pp, g *gp, bool next) {
    if (next) {
        g *old = atomic_load_relaxed(&pp->runnext);
        /* Thieves only ever clear runnext, so an empty one is ours to fill
         * with a plain store; a full one needs the atomic exchange. */
        if (!old) {
            atomic_store_rel(&pp->runnext, gp);
            return;
        }
        while (!atomic_cas(&pp->runnext, &old, gp)) {
        }
        if (!old) return;
        gp = old;
    }
    /* The private yield queue holds older Gs than gp: they go first. */
    if (unlikely(pp->yqhead != NULL)) yq_spill(pp);
    runqput_ring(pp, gp);
}

static inline g *yq_get(p *pp);

/* Owner only. *inherit: it came from runnext and inherits the time slice.
 * Inline: a call here measured 1 ns of a yield. */
static inline __attribute__((always_inline)) g *runqget(p *pp, bool *inherit) {
    g *next = atomic_load_relaxed(&pp->runnext);
    if (next && atomic_cas(&pp->runnext, &next, NULL)) {
        *inherit = true;
        return next;
    }
    *inherit = false;
    for (;;) {
        uint32_t h = atomic_load_acq(&pp->runqhead);
        uint32_t t = pp->runqtail;
        if (t == h) break;
        g *gp = atomic_load_relaxed(&pp->runq[h % RUNQ_SIZE]);
        if (atomic_cas(&pp->runqhead, &h, h + 1)) return gp;
    }
    return pp->yqhead ? yq_get(pp) : NULL; /* the ring is empty: the private queue's oldest */
}

static __attribute__((noinline)) g *handoffs_over(p *pp, g *gp);

/* Owner only: runqget, and the handoff budget. A G taken from runnext
 * inherits the time slice (Go's runnext: goroutines that hand off to each
 * other count as one for sysmon's 10 ms slice), but only HANDOFF_MAX times
 * in a row while other Gs wait: then the slice ends (handoffs_over). NULL
 * when there is nothing, or when thieves took what handoffs_over queued. */
static inline __attribute__((always_inline)) g *runq_next(p *pp, bool *inherit) {
    g *gp = runqget(pp, inherit);
    if (*inherit && unlikely(--pp->handoffs_left <= 0)) {
        /* (inherit's address does not escape: it stays in a register) */
        g *other = handoffs_over(pp, gp);
        if (other != gp) {
            gp = other;
            *inherit = false;
        }
    }
    return gp;
}

/* Takes half of pp's queue into batch (a ring of RUNQ_SIZE) from batch_head.
 * Any thread. */
uint32_t runqgrab(p *pp, g **batch, uint32_t batch_head, bool steal_runnext) {
    for (;;) {
        uint32_t h = atomic_load_acq(&pp->runqhead);
        uint32_t t = atomic_load_acq(&pp->runqtail);
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (steal_runnext) {
                g *next = atomic_load_acq(&pp->runnext);
                if (next) {
                    /* Its P is likely about to run it: give it a moment
                     * (Go sleeps 3 us), rather than bounce it between Ps. */
                    if (atomic_load_relaxed(&pp->status) == P_RUNNING) {
                        struct timespec ts = {0, 3000};
                        nanosleep(&ts, NULL);
                    }
                    if (!atomic_cas(&pp->runnext, &next, NULL)) continue;
                    atomic_store_relaxed(&batch[batch_head % RUNQ_SIZE], next);
                    return 1;
                }
            }
            return 0;
        }
        if (n > RUNQ_SIZE / 2) continue; /* read an inconsistent h and t */
        for (uint32_t i = 0; i < n; i++) {
            g *gp = atomic_load_relaxed(&pp->runq[(h + i) % RUNQ_SIZE]);
            atomic_store_relaxed(&batch[(batch_head + i) % RUNQ_SIZE], gp);
        }
        if (atomic_cas(&pp->runqhead, &h, h + n)) return n;
    }
}

/* Steals half of p2's queue into pp's; returns one of them. pp's owner. */
static g *runqsteal(p *pp, p *p2, bool steal_runnext) {
    uint32_t t = pp->runqtail;
    uint32_t n = runqgrab(p2, pp->runq, t, steal_runnext);
    if (n == 0) return NULL;
    n--;
    g *gp = atomic_load_relaxed(&pp->runq[(t + n) % RUNQ_SIZE]);
    if (n == 0) return gp;
    uint32_t h = atomic_load_acq(&pp->runqhead);
    if (t - h + n >= RUNQ_SIZE) throw("runqsteal: runq overflow");
    atomic_store_rel(&pp->runqtail, t + n);
    return gp;
}

/* ---- the private yield queue ---------------------------------------------------------
 *
 * Why: a yield through the ring pays a locked CAS on runqhead in runqget
 * (~7 ns, a third of a yield), because thieves take from the head too. But
 * nobody steals from a P while no P is idle and no M spins: an M steals only
 * while spinning (counted in nmspinning, which it raises before it looks),
 * and it spins only holding a P, which it took from the idle list. So while
 * sched.npidle and sched.nmspinning are both zero (with GOMAXPROCS=1,
 * always), a yielding G goes onto a private FIFO of its P instead, and the
 * next G comes off it, with plain loads and stores.
 *
 * Order: the local queue is runnext, then the ring, then the private queue
 * (runqget's order). A yielder, the youngest, joins the private queue's
 * tail, and any G put on the ring makes the private queue spill into the
 * ring first (runqput), so every private G is younger than every G on the
 * ring: a yielder goes behind every other runnable G of its P, round robin,
 * as Go's Gosched; the global queue is still served every 61 ticks. (Once
 * the ring has drained, a set of yielders cycles through the private queue
 * alone.)
 *
 * Visibility: thieves cannot take from it, so it is emptied into the ring
 * (yq_spill) as soon as stealing may start: when the P's holder sees npidle
 * or nmspinning nonzero at a yield or in schedule(), and before it wakes an
 * M (wakep), which then finds them. Meanwhile they are the P's queue for
 * everyone else: runqempty_all (pidleput, handoffp, retake, checkdead),
 * runqlen (schedtrace), runqget (switch_out, find_runnable, schedule,
 * retire_p) count or take them, and they travel with the P through
 * syscalls and handoffs, like the ring. A goroutine that hogs its P without
 * reaching a scheduling point would keep them from an idle P: sysmon's
 * preemptone takes them, as it takes the ring, with the P's thread stopped
 * by the suspend signal (yq_handoff), and only if the thread was not
 * stopped halfway through a change of the queue. The changes happen (1) on
 * g0, where m->curg is NULL and sched_suspend_g declines; (2) in a
 * goroutine's switch: the pop in switch_out and the push in after_switch,
 * both while m->pend is set (after_switch clears it only after the push);
 * (3) in yq_spill, which marks p->yqbusy. sysmon takes the queue only with
 * pend clear and yqbusy clear: the stopped thread's own stores are visible
 * once its handler has published the stop, and compiler barriers keep them
 * in program order. So the fast path pays for the marking with no
 * instruction at all (a lock_depth section, as for a runtime lock, would
 * cost two dependent read-modify-writes of TLS a change).
 *
 * A list through g.schedlink rather than a second ring: it is never full,
 * and the switch touches the G's line anyway. */

/* Keeps a change of the queue inside the marked region (see above). */
#define yq_barrier() __asm__ __volatile__("" ::: "memory")

/* Whether a yielder may go onto the private queue: nobody can steal. */
static inline bool yq_usable(void) {
    return atomic_load_relaxed(&sched.npidle) == 0 && atomic_load_relaxed(&sched.nmspinning) == 0;
}

/* Owner only: the oldest private G. */
static inline __attribute__((always_inline)) g *yq_get(p *pp) {
    yq_barrier(); /* on g0, or in switch_out with m->pend set */
    g *gp = pp->yqhead;
    if (gp) {
        pp->yqhead = gp->schedlink;
        if (!gp->schedlink) pp->yqtail = NULL;
        atomic_store_relaxed(&pp->yqsize, pp->yqsize - 1);
    }
    yq_barrier();
    return gp;
}

/* Owner only: moves the private queue, in order, onto the ring. */
static __attribute__((noinline)) void yq_spill(p *pp) {
    pp->yqbusy = 1; /* from any context: marked */
    yq_barrier();
    g *gp = pp->yqhead;
    pp->yqhead = pp->yqtail = NULL;
    while (gp) {
        g *next = gp->schedlink; /* runqputslow relinks schedlink */
        runqput_ring(pp, gp);
        gp = next;
    }
    atomic_store_relaxed(&pp->yqsize, 0);
    yq_barrier();
    pp->yqbusy = 0;
}

/* Owner only: spills the private queue if stealing may have started, and
 * wakes an M to steal (one that went idle meanwhile did not see them). */
static inline void yq_check(p *pp) {
    if (unlikely(pp->yqhead != NULL) && !yq_usable()) {
        yq_spill(pp);
        wakep();
    }
}

static __attribute__((noinline)) void yq_put_slow(p *pp, g *gp) {
    bool spill = pp->yqhead != NULL; /* then stealing may have started */
    runqput(pp, gp, false);          /* spills the private queue first */
    if (spill) wakep();
}

/* Owner only: gp yielded. Onto the private queue when nobody can steal,
 * else onto the ring. Only in after_switch, with m->pend still set. */
static inline __attribute__((always_inline)) void yq_put(p *pp, g *gp) {
    if (likely(yq_usable())) {
        yq_barrier();
        gp->schedlink = NULL;
        if (pp->yqtail)
            pp->yqtail->schedlink = gp;
        else
            pp->yqhead = gp;
        pp->yqtail = gp;
        atomic_store_relaxed(&pp->yqsize, pp->yqsize + 1);
        yq_barrier();
        return;
    }
    yq_put_slow(pp, gp);
}

/* ---- idle lists (under sched.lock) ------------------------------------------------- */

static void checkdead(void);
static void retire_p(p *pp);

static void pidleput(p *pp) {
    if (!runqempty_all(pp)) throw("pidleput: P has non-empty run queue");
    if (pp->id >= sched.gomaxprocs) {
        retire_p(pp);
        return;
    }
    atomic_store_relaxed(&pp->status, P_IDLE);
    pp->link = sched.pidle;
    sched.pidle = pp;
    atomic_xadd(&sched.npidle, 1);
}

static p *pidleget(void) {
    p *pp = sched.pidle;
    if (pp) {
        sched.pidle = pp->link;
        atomic_xadd(&sched.npidle, (uint32_t)-1);
    }
    return pp;
}

static void mput(m *mp) {
    mp->schedlink = sched.midle;
    sched.midle = mp;
    mp->on_midle = true;
    sched.nmidle++;
    checkdead();
}

static m *mget(void) {
    m *mp = sched.midle;
    if (mp) {
        sched.midle = mp->schedlink;
        mp->on_midle = false;
        sched.nmidle--;
    }
    return mp;
}

/* Removes mp from midle if it is there (under sched.lock). */
static bool mremove(m *mp) {
    if (!mp->on_midle) return false;
    for (m **pm = &sched.midle; *pm; pm = &(*pm)->schedlink) {
        if (*pm == mp) {
            *pm = mp->schedlink;
            mp->on_midle = false;
            sched.nmidle--;
            return true;
        }
    }
    return false;
}

/* ---- P ownership --------------------------------------------------------------------- */

/* On mp's own thread: tls_mcache follows the P. */
static void acquirep(m *mp, p *pp) {
    if (mp->p || pp->m || atomic_load_relaxed(&pp->status) != P_IDLE)
        throw("acquirep: invalid p state");
    mp->p = pp;
    atomic_store_rel(&pp->m, mp);
    atomic_store_rel(&pp->status, P_RUNNING);
    mp->saved_mcache = tls_mcache;
    tls_mcache = pp->mcache;
    stw_check(mp); /* it must not run goroutines while the world is stopped */
    if (sched_tracing()) sched_trace_clocked(TK_PROC_START, 0, 0, pp->id, 0);
}

static p *releasep(m *mp) {
    p *pp = mp->p;
    if (!pp || pp->m != mp || atomic_load_relaxed(&pp->status) != P_RUNNING)
        throw("releasep: invalid p state");
    if (sched_tracing()) sched_trace_clocked(TK_PROC_STOP, 0, 0, pp->id, 0);
    tls_mcache = mp->saved_mcache;
    atomic_store_rel(&pp->m, NULL);
    mp->p = NULL;
    atomic_store_rel(&pp->status, P_IDLE);
    return pp;
}

/* ---- Ms -------------------------------------------------------------------------------- */

static void schedule(m *mp);
static void mstart(void *arg);

static m *allocm(void) {
    lock(&alloc_lock);
    m *mp = fixalloc_alloc(&m_pool);
    g *g0 = mp ? fixalloc_alloc(&g_pool) : NULL;
    unlock(&alloc_lock);
    if (!mp || !g0) throw_oom(sizeof(m) + sizeof(g));
    g0->is_g0 = true;
    g0->status = G_RUNNING;
    mp->g0 = g0;
    mp->fastrand = (uint64_t)nanotime() ^ (uint64_t)(uintptr_t)mp;
    lock(&sched.lock);
    mp->id = sched.mnext++;
    unlock(&sched.lock);
    m *head = atomic_load_acq(&allm);
    do {
        mp->alllink = head;
    } while (!atomic_cas(&allm, &head, mp));
    return mp;
}

/* Starts a new M (thread) that will run with pp, spinning or not. No locks held. */
static void newm(p *pp, bool spinning) {
    m *mp = allocm();
    mp->nextp = pp;
    mp->spinning = spinning;
    int rc = os_thread_start(mstart, mp, M_STACK_SIZE, "gort-m");
    if (rc < 0) throwf("newosproc: cannot create thread (errno %d)", -rc);
}

static void park_forever(m *mp) {
    mp->exiting_park = true;
    for (;;) futex_sleep(&exit_park_word, 0, -1);
}

/* Stops the M until new work is given to it (Go's stopm). On g0, no P. */
static void stopm(m *mp) {
    if (mp->p) throw("stopm holding p");
    if (mp->spinning) throw("stopm spinning");
    lock(&sched.lock);
    if (mp == m0 && atomic_load_acq(&sched.exiting)) {
        /* main_entry sets exiting, then looks for m0 on midle under the lock */
        unlock(&sched.lock);
        return;
    }
    mput(mp);
    unlock(&sched.lock);
    note_sleep(&mp->park);
    note_clear(&mp->park);
    if (!mp->nextp) {
        if (atomic_load_acq(&sched.exiting)) return; /* m0: gort_main returns */
        throw("stopm: woken without a p");
    }
    acquirep(mp, mp->nextp);
    mp->nextp = NULL;
}

/* Schedules some M to run pp (an idle P if NULL), spinning if asked (the
 * caller then already counted it in nmspinning). */
void startm(p *pp, bool spinning) {
    lock(&sched.lock);
    if (!pp) {
        pp = pidleget();
        if (!pp) {
            unlock(&sched.lock);
            if (spinning && (int32_t)atomic_xadd(&sched.nmspinning, (uint32_t)-1) <= 0)
                throw("startm: negative nmspinning");
            return;
        }
    }
    m *nmp = mget();
    unlock(&sched.lock);
    if (!nmp) {
        newm(pp, spinning);
        return;
    }
    if (nmp->spinning) throw("startm: m is spinning");
    if (nmp->nextp) throw("startm: m has p");
    nmp->spinning = spinning;
    nmp->nextp = pp;
    note_wakeup(&nmp->park);
}

void wakep(void) {
    if (atomic_load_relaxed(&sched.npidle) == 0) return;
    /* The M we wake must be able to steal what our P holds privately. */
    m *mp = tls_m;
    if (mp && mp->p && mp->p->yqhead) yq_spill(mp->p);
    /* Be conservative about spinning threads: one at a time. */
    uint32_t z = 0;
    if (atomic_load_relaxed(&sched.nmspinning) != 0 || !atomic_cas(&sched.nmspinning, &z, 1))
        return;
    startm(NULL, true);
}

/* Hands off pp from a blocked M (syscall, locked wait) or from sysmon. */
void handoffp(p *pp) {
    if (!runqempty_all(pp) || atomic_load_relaxed(&sched.runqsize) != 0) {
        startm(pp, false);
        return;
    }
    /* No local work: start a spinning M if there is no spinning or idle M. */
    uint32_t z = 0;
    if (atomic_load_relaxed(&sched.nmspinning) + atomic_load_relaxed(&sched.npidle) == 0 &&
        atomic_cas(&sched.nmspinning, &z, 1)) {
        startm(pp, true);
        return;
    }
    lock(&sched.lock);
    if (sched.runqsize != 0) {
        unlock(&sched.lock);
        startm(pp, false);
        return;
    }
    int64_t when = atomic_load_relaxed(&pp->timer0when);
    pidleput(pp);
    unlock(&sched.lock);
    if (when != 0) sched_timer_armed(when);
}

static void resetspinning(m *mp) {
    mp->spinning = false;
    if ((int32_t)atomic_xadd(&sched.nmspinning, (uint32_t)-1) <= 0)
        throw("resetspinning: negative nmspinning");
    /* We found work and stop spinning: someone else may need to spin. */
    wakep();
}

static void incidlelocked(int32_t v) {
    lock(&sched.lock);
    sched.nmidlelocked += v;
    if (v > 0) checkdead();
    unlock(&sched.lock);
}

/* The M is locked to a G that is not running: give the P away and sleep
 * until someone hands us a P with our G runnable (startlockedm). */
static void stoplockedm(m *mp) {
    if (mp->p) handoffp(releasep(mp));
    if (mp == m0 && atomic_load_acq(&sched.exiting)) return;
    incidlelocked(1);
    note_sleep(&mp->park);
    note_clear(&mp->park);
    if (!mp->nextp) {
        if (atomic_load_acq(&sched.exiting)) return;
        throw("stoplockedm: woken without a p");
    }
    acquirep(mp, mp->nextp);
    mp->nextp = NULL;
}

/* gp is locked to another M: hand it our P and stop. */
static void startlockedm(m *mp, g *gp) {
    m *lm = gp->lockedm;
    if (lm == mp) throw("startlockedm: locked to me");
    if (lm->nextp) throw("startlockedm: m has p");
    incidlelocked(-1);
    lm->nextp = releasep(mp);
    note_wakeup(&lm->park);
    stopm(mp);
}

/* ---- switching -------------------------------------------------------------------------- */

static void gfput(p *pp, g *gp);
static void exitsyscall0(m *mp, g *gp);

#if GORT_HAVE_ASAN
static inline void asan_before(m *mp, g *from, g *to, bool dying) {
    mp->switch_from = from;
    __sanitizer_start_switch_fiber(dying ? NULL : &from->asan_fake, to->asan_lo, to->asan_size);
}
static inline void asan_after(m *mp, void *fake) {
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(fake, &lo, &size);
    g *from = mp->switch_from;
    if (from && from->is_g0 && !from->asan_lo) {
        from->asan_lo = lo;
        from->asan_size = size;
    }
}
#else /* (no asan_before: only the ASan build's gswitch calls it) */
static inline void asan_after(m *mp, void *fake) {
    (void)mp, (void)fake;
}
#endif

/* Does what the context that switched away left in mp->pend (see the file
 * comment). Runs right after every switch, on the resuming context. */
static void after_switch_slow(m *mp, int pend);

static inline __attribute__((always_inline)) void after_switch(m *mp) {
    int pend = mp->pend;
    if (pend == PEND_NONE) return;
    if (likely(pend == PEND_YIELD)) { /* the hot case, inline */
        g *gp = mp->pend_g;
        setgstatus(gp, G_RUNNING, G_RUNNABLE);
        yq_put(mp->p, gp);
        yq_barrier();
        mp->pend = PEND_NONE; /* only now: pend marks yq_put's change for sysmon */
        return;
    }
    mp->pend = PEND_NONE;
    after_switch_slow(mp, pend);
}

static __attribute__((noinline)) void after_switch_slow(m *mp, int pend) {
    g *gp = mp->pend_g;
    mp->pend_g = NULL;
    switch (pend) {
    case PEND_YIELD: /* after_switch's own case; here pend is clear: the ring */
        setgstatus(gp, G_RUNNING, G_RUNNABLE);
        runqput(mp->p, gp, false);
        break;
    case PEND_PREEMPT:
        setgstatus(gp, G_RUNNING, G_RUNNABLE);
        lock(&sched.lock);
        globrunqput(gp);
        unlock(&sched.lock);
        break;
    case PEND_PARK: {
        gp->parkseq++;
        setgstatus(gp, G_RUNNING, G_WAITING);
        bool (*unlockf)(g *, void *) = mp->pend_unlockf;
        mp->pend_unlockf = NULL;
        if (unlockf && !unlockf(gp, mp->pend_lock)) {
            ready_status(gp);
            runqput(mp->p, gp, true);
        }
        break;
    }
    case PEND_EXIT:
        setgstatus(gp, G_RUNNING, G_DEAD);
        gfput(mp->p, gp);
        break;
    case PEND_EXITSYSCALL:
        exitsyscall0(mp, gp);
        break;
    case PEND_MAIN_DONE:
        break;
    }
}

/* Saves from, resumes to; returns, in from's context, the M that resumed it. */
static m *gswitch(m *mp, g *from, g *to, bool dying) {
#if GORT_HAVE_ASAN
    asan_before(mp, from, to, dying);
    mp = arch_ctx_switch_arg(&from->ctx, &to->ctx, mp);
    asan_after(mp, from->asan_fake);
    after_switch(mp);
    return mp;
#else
    /* after_switch runs as the resume hook (resume_hook); a tail call, so
     * that gort_yield -> switch_out -> here -> the switch are all jumps. */
    (void)dying;
    return arch_ctx_switch_hook(&from->ctx, &to->ctx, mp);
#endif
}

/* arch_ctx_resume_hook: the first thing a context saved by
 * arch_ctx_switch_hook does when resumed; mp is the M that resumed it.
 * The yield path's functions are aligned to 64 bytes: it measured 21 or
 * 25 ns a round trip depending on where unrelated edits had moved them. */
static __attribute__((aligned(64))) void *resume_hook(void *arg) {
    m *mp = arg;
    after_switch(mp);
    return mp;
}

/* On g0: runs gp on mp (Go's execute). Returns when g0 is resumed. */
static void execute(m *mp, g *gp, bool inherit) {
    mp->curg = gp;
    gp->m = mp;
    gp->runseq++; /* before the status: a concurrent stack scan checks both */
    setgstatus(gp, G_RUNNABLE, G_RUNNING);
    gp->preempt = false;
    if (!inherit) {
        mp->p->schedtick++;
        mp->p->handoffs_left = HANDOFF_MAX;
    }
    sched_hook_on_start(mp, gp);
    gswitch(mp, mp->g0, gp, false);
}

/* Out of line, so that switch_out's fast path saves fewer registers. */
static __attribute__((noinline)) bool timer_due(int64_t when) {
    return when <= nanotime();
}

/* The running goroutine gp leaves the CPU; mp->pend says what becomes of it.
 * Takes the next G from the local queue and switches to it directly when
 * the full scheduler is not needed; else switches to g0. Returns (in gp's
 * context) the M that resumes gp. */
static __attribute__((aligned(64))) m *switch_out(m *mp, g *gp, bool dying) {
    p *pp = mp->p;
    g *next = NULL;
    bool inherit = false;
    if (likely(!mp->lockedg && !atomic_load_relaxed(&pp->must_sched)) &&
        (pp->schedtick % 61 != 0 || atomic_load_relaxed(&sched.runqsize) == 0)) {
        int64_t tw = atomic_load_relaxed(&pp->timer0when);
        if (tw == 0 || !timer_due(tw)) {
            next = runq_next(pp, &inherit);
            if (next && next->lockedm) {
                mp->nextg = next; /* schedule (on g0) hands it to its M */
                mp->nextg_inherit = inherit;
                next = NULL;
            }
        }
    }
    mp->curg = NULL;
    if (!next) {
        if (sched_tracing()) sched_trace_stop(mp, gp, NULL);
        return gswitch(mp, gp, mp->g0, dying);
    }
    mp->curg = next;
    next->m = mp;
    next->runseq++;
    setgstatus(next, G_RUNNABLE, G_RUNNING);
    next->preempt = false;
    if (!inherit) {
        pp->schedtick++;
        pp->handoffs_left = HANDOFF_MAX;
    }
    sched_hook_on_switch(mp, gp, next);
    return gswitch(mp, gp, next, dying);
}

/* ---- finding work ------------------------------------------------------------------------ */

static uint32_t gcd(uint32_t a, uint32_t b) {
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Runs the due timers of every P (a timer sleeper woke up, or sysmon asked). */
static void run_all_timers(void) {
    int32_t n = gomaxprocs();
    int64_t now = nanotime();
    for (int32_t i = 0; i < n; i++) {
        p *p2 = allp[i];
        int64_t w = atomic_load_relaxed(&p2->timer0when);
        if (w != 0 && w <= now) {
            bool ran;
            check_timers(p2, now, &ran);
        }
    }
}

/* Tries to steal a G from some other P (Go's stealWork); runs other Ps' due
 * timers on the last pass. *new_work: timers ran, look again. */
static g *steal_work(m *mp, bool *new_work) {
    p *pp = mp->p;
    *new_work = false;
    for (int i = 0; i < SPIN_STEAL_TRIES; i++) {
        bool last = i == SPIN_STEAL_TRIES - 1;
        uint32_t count = (uint32_t)gomaxprocs();
        uint32_t pos = fastrand_next(&mp->fastrand) % count;
        uint32_t inc;
        do {
            inc = fastrand_next(&mp->fastrand) % count + 1;
        } while (gcd(inc, count) != 1);
        for (uint32_t k = 0; k < count; k++, pos = (pos + inc) % count) {
            if (atomic_load_relaxed(&sched.runqsize) > 0) {
                *new_work = true;
                return NULL;
            }
            p *p2 = allp[pos];
            if (p2 == pp) continue;
            if (last) {
                int64_t w = atomic_load_relaxed(&p2->timer0when);
                if (w != 0 && w <= nanotime()) {
                    bool ran = false;
                    check_timers(p2, nanotime(), &ran);
                    if (ran) {
                        bool inh;
                        g *gp = runqget(pp, &inh);
                        if (gp) return gp;
                        *new_work = true;
                    }
                }
            }
            if (atomic_load_relaxed(&p2->status) == P_IDLE) continue;
            g *gp = runqsteal(pp, p2, last);
            if (gp) return gp;
        }
    }
    return NULL;
}

/* Sleeps until the earliest timer (until; 0: none) or a kick, as the one
 * sleeper: on the futex tsleep_seq, or, once the network poller is in use,
 * in the poller (epoll_wait until the timer; a kick is an eventfd write), and
 * then returns in *list the n goroutines it unblocked (G_WAITING). False if
 * another M already is the sleeper. On g0, no P.
 *
 * A kicker (sched_timer_kick) reads tsleep_until and then tsleep_poll: the
 * sleeper publishes tsleep_poll before tsleep_until (a release store), so a
 * kicker that sees until sees the mode; one that sees 0 kicks both ways. */
static bool timer_sleep(m *mp, int64_t until, g **list, int32_t *n) {
    (void)mp;
    *list = NULL;
    *n = 0;
    uint32_t z = 0;
    if (!atomic_cas(&sched.tsleeping, &z, 1)) return false;
    uint32_t seq = atomic_load_acq(&sched.tsleep_seq);
    g *(*poll)(int64_t, int32_t *) = atomic_load_acq(&sched_netpoll);
    atomic_store_relaxed(&sched.tsleep_poll, poll != NULL);
    atomic_store_rel(&sched.tsleep_until, until ? until : INT64_MAX);
    atomic_fence(); /* pairs with sched_timer_armed: one of us sees the other */
    int64_t u2 = timers_next_when();
    if (u2 != 0 && (until == 0 || u2 < until)) until = u2;
    int64_t now = nanotime();
    if (!atomic_load_acq(&sched.exiting)) {
        if (poll) {
            *list = poll(until == 0 ? -1 : until > now ? until - now : 0, n);
            atomic_store_relaxed(&sched.lastpoll, nanotime());
        } else if (until > now) {
            futex_sleep(&sched.tsleep_seq, seq, until - now);
        }
    }
    atomic_store_relaxed(&sched.tsleep_until, 0);
    atomic_store_rel(&sched.tsleeping, 0);
    return true;
}

/* Wakes the sleeper whichever way it sleeps (both when unknown). */
static void sleeper_wake(bool futex, bool poll) {
    if (futex) {
        atomic_xadd(&sched.tsleep_seq, 1);
        futex_wake(&sched.tsleep_seq, 1);
    }
    void (*brk)(void) = atomic_load_acq(&sched_netpoll_break);
    if (poll && brk) brk();
}

bool sched_timer_kick(int64_t when) {
    atomic_fence();
    if (!atomic_load_acq(&sched.tsleeping)) return false;
    int64_t u = atomic_load_acq(&sched.tsleep_until);
    if (u == 0) {
        sleeper_wake(true, true); /* it has not said how it sleeps yet */
    } else if (when < u) {
        bool poll = atomic_load_relaxed(&sched.tsleep_poll);
        sleeper_wake(!poll, poll);
    }
    return true;
}

void sched_timer_armed(int64_t when) {
    if (sched_timer_kick(when)) return;
    m *mp = tls_m;
    if (!mp || !mp->p) wakep(); /* an M with a P runs its own timers */
}

/* Whether an M looking for work should poll the network without blocking:
 * goroutines wait on it and no M is blocked in the poller (which would see
 * the same events; Go's "lastpoll != 0"). */
static inline bool netpoll_worth_polling(void) {
    return atomic_load_relaxed(&sched_netpoll) != NULL &&
           atomic_load_relaxed(&sched.external_waiters) > 0 &&
           !(atomic_load_relaxed(&sched.tsleeping) && atomic_load_relaxed(&sched.tsleep_poll));
}

/* Starts Ms for up to n idle Ps (Go's startIdle). No lock held. */
static void start_idle(int32_t n) {
    for (; n > 0 && atomic_load_relaxed(&sched.npidle) > 0; n--) startm(NULL, false);
}

void injectglist(m *mp, g *list, int32_t n) {
    if (!list) return;
    g *tail = list;
    for (g *gp = list; gp; gp = gp->schedlink) {
        ready_status(gp);
        tail = gp;
    }
    p *pp = mp ? mp->p : NULL;
    if (!pp) {
        lock(&sched.lock);
        globrunqputbatch(list, tail, n);
        unlock(&sched.lock);
        start_idle(n);
        return;
    }
    /* As many as there are idle Ps go to the global queue, each with an M
     * to run it; the rest onto our own queue (Go's injectglist). */
    int32_t nglob = (int32_t)atomic_load_relaxed(&sched.npidle);
    if (nglob > n) nglob = n;
    if (nglob > 0) {
        g *last = list;
        for (int32_t i = 1; i < nglob; i++) last = last->schedlink;
        g *rest = last->schedlink;
        lock(&sched.lock);
        globrunqputbatch(list, last, nglob);
        unlock(&sched.lock);
        start_idle(nglob);
        list = rest;
    }
    while (list) {
        g *next = list->schedlink; /* runqput may relink it */
        runqput(pp, list, false);
        list = next;
    }
}

/* Finds a runnable G (Go's findRunnable): local queue, global queue,
 * stealing; else gives up the P and sleeps. On g0. NULL only when exiting. */
static g *find_runnable(m *mp, bool *inherit) {
top:;
    p *pp = mp->p;
    if (atomic_load_acq(&sched.exiting)) return NULL;
    bool ran;
    check_timers(pp, 0, &ran);
    g *gp = runq_next(pp, inherit);
    if (gp) return gp;
    if (atomic_load_relaxed(&sched.runqsize) != 0) {
        lock(&sched.lock);
        gp = globrunqget(pp, 0);
        unlock(&sched.lock);
        if (gp) {
            *inherit = false;
            return gp;
        }
    }
    /* The network, without blocking, before stealing (Go's findRunnable). */
    if (netpoll_worth_polling()) {
        int32_t n;
        g *list = sched_netpoll(0, &n);
        atomic_store_relaxed(&sched.lastpoll, nanotime());
        if (list) {
            gp = list;
            ready_status(gp);
            injectglist(mp, gp->schedlink, n - 1);
            *inherit = false;
            return gp;
        }
    }
    /* Spin (steal) if fewer than half the busy Ps have spinning Ms. */
    int32_t busy = gomaxprocs() - (int32_t)atomic_load_relaxed(&sched.npidle);
    if (mp->spinning || 2 * (int32_t)atomic_load_relaxed(&sched.nmspinning) < busy) {
        if (!mp->spinning) {
            mp->spinning = true;
            atomic_xadd(&sched.nmspinning, 1);
        }
        bool new_work;
        gp = steal_work(mp, &new_work);
        if (gp) {
            *inherit = false;
            return gp;
        }
        if (new_work) goto top;
    }
    /* Nothing: release the P, then recheck everything (Go's spinning-M rule:
     * a producer wakes an M only when none spins, so a spinning M that stops
     * must look once more after it stopped counting). */
    lock(&sched.lock);
    if (sched.runqsize != 0 || atomic_load_acq(&sched.exiting)) {
        gp = globrunqget(pp, 0);
        unlock(&sched.lock);
        if (gp) {
            *inherit = false;
            return gp;
        }
        return NULL;
    }
    if (pp->id < sched.gomaxprocs && !runqempty_all(pp)) {
        unlock(&sched.lock);
        goto top;
    }
    releasep(mp);
    pidleput(pp);
    unlock(&sched.lock);
    bool was_spinning = mp->spinning;
    if (mp->spinning) {
        mp->spinning = false;
        if ((int32_t)atomic_xadd(&sched.nmspinning, (uint32_t)-1) <= 0)
            throw("find_runnable: negative nmspinning");
        int32_t n = gomaxprocs();
        for (int32_t i = 0; i < n; i++) {
            if (!runqempty(allp[i]) || atomic_load_relaxed(&sched.runqsize) != 0) {
                lock(&sched.lock);
                p *p2 = pidleget();
                unlock(&sched.lock);
                if (p2) {
                    acquirep(mp, p2);
                    if (was_spinning) {
                        mp->spinning = true;
                        atomic_xadd(&sched.nmspinning, 1);
                    }
                    goto top;
                }
                break;
            }
        }
    }
    /* Timers and the network: one M sleeps until the earliest timer, in the
     * poller once it is in use (and then, while goroutines wait on I/O, even
     * with no timer armed), and runs what it finds. */
    int64_t until = timers_next_when();
    bool poll =
        atomic_load_acq(&sched_netpoll) != NULL && atomic_load_relaxed(&sched.external_waiters) > 0;
    if (until != 0 || poll) {
        g *list;
        int32_t n;
        if (timer_sleep(mp, until, &list, &n)) {
            lock(&sched.lock);
            p *p2 = pidleget();
            unlock(&sched.lock);
            if (p2) {
                acquirep(mp, p2);
                run_all_timers();
                if (list) {
                    gp = list;
                    ready_status(gp);
                    injectglist(mp, gp->schedlink, n - 1);
                    *inherit = false;
                    return gp;
                }
                goto top;
            }
            injectglist(mp, list, n); /* no P: the global queue */
        } else if (poll && !atomic_load_acq(&sched.tsleep_poll)) {
            sleeper_wake(true, false); /* it sleeps on the futex: have it poll */
        } else if (until != 0) {
            sched_timer_kick(until); /* the sleeper may sleep too long */
        }
    }
    stopm(mp);
    if (!mp->p) return NULL; /* exiting */
    goto top;
}

/* Retires a P beyond gomaxprocs (under sched.lock; nobody owns pp). */
static void retire_p(p *pp) {
    bool inh;
    g *gp;
    while ((gp = runqget(pp, &inh)) != NULL) globrunqput(gp);
    if (pp != allp[0]) timers_move(pp, allp[0]);
    lock(&sched.gflock);
    while ((gp = pp->gfree) != NULL) {
        pp->gfree = gp->schedlink;
        pp->gfreecnt--;
        gfree_push(gp);
    }
    unlock(&sched.gflock);
    stack_cache_flush(&pp->stackcache);
    atomic_store_rel(&pp->status, P_DEAD);
}

void (*sched_test_handoff_hook)(p *pp);

/* gp, from runnext, would inherit the time slice for the HANDOFF_MAX-th
 * time in a row (a pair of goroutines handing off to each other, say).
 * If other Gs wait, on the P's queue or the global one, the slice ends here:
 * gp goes to the ring's tail and the oldest waiting G runs, with a fresh
 * slice. Without this only sysmon would end such a slice, after 10-20 ms;
 * counting costs the handoff path one decrement. Otherwise gp runs.
 * Returns the G to run: gp (it keeps the slice), another G (it does not),
 * or NULL. NULL when thieves emptied the ring between the put and the get:
 * they took gp with the rest, so gp is theirs to run now, not ours (falling
 * back to gp here ran it twice: on this M and on the thief's, the fork
 * crash of #8, under sysmon's preemptone on a loaded machine). */
static __attribute__((noinline)) g *handoffs_over(p *pp, g *gp) {
    pp->handoffs_left = HANDOFF_MAX;
    g *other = NULL;
    if (!runqempty_all(pp)) {
        runqput(pp, gp, false);
        if (unlikely(sched_test_handoff_hook != NULL)) sched_test_handoff_hook(pp);
        bool inh;
        return runqget(pp, &inh); /* the ring's head (runnext is empty), or NULL */
    }
    if (atomic_load_relaxed(&sched.runqsize) > 0) {
        lock(&sched.lock);
        other = globrunqget(pp, 1);
        unlock(&sched.lock);
        if (other) runqput(pp, gp, false);
    }
    return other ? other : gp; /* nobody waits: gp keeps the slice */
}

/* sysmon found pp's time slice over: one G, and those that it handed to in
 * runnext, ran 10 ms (Go's forcePreemptNS) without the scheduler picking
 * anything else. Go's sysmon preempts such a G, which goes to the global
 * queue; here the slice's holder is typically parked by now (a ping-pong
 * pair hands its slice back and forth through runnext), so the slice itself
 * ends: runnext loses its inheritance and waits at the ring's tail, behind
 * every G queued meanwhile, and the global queue (where sysmon put the P's
 * ring, preemptone) is served first. So a G queued on a P whose goroutines
 * hand off to each other runs within one slice plus sysmon's period
 * (docs/scheduler.md, "Fairness"). Returns a G to run next, or NULL. */
static g *slice_over(p *pp) {
    atomic_store_relaxed(&pp->slice_over, 0);
    g *gp = NULL;
    if (atomic_load_relaxed(&sched.runqsize) > 0) {
        /* At most half the ring's room: globrunqget must not overflow it
         * (runqputslow takes sched.lock), nor spill the private queue. */
        if (pp->yqhead) yq_spill(pp);
        uint32_t used = pp->runqtail - atomic_load_acq(&pp->runqhead);
        int32_t max = (int32_t)(RUNQ_SIZE - used) / 2;
        lock(&sched.lock);
        gp = globrunqget(pp, max > 1 ? max : 1);
        unlock(&sched.lock);
    }
    g *next = atomic_load_relaxed(&pp->runnext);
    if (next && atomic_cas(&pp->runnext, &next, NULL)) runqput(pp, next, false);
    return gp;
}

static void fork_park(m *mp);

/* A forked child starts sysmon again, once (fork_child). On g0. */
static __attribute__((noinline)) void sysmon_restart(void) {
    uint32_t one = 1;
    if (!atomic_cas(&sched.sysmon_needed, &one, 0)) return;
    lock(&sched.lock);
    sched.nmsys++;
    sched.mnext++;
    unlock(&sched.lock);
    if (os_thread_start(sysmon, NULL, M_STACK_SIZE, "gort-sysmon") < 0)
        throw("cannot start sysmon");
}

/* One round of the scheduler, on g0: find a G and run it (Go's schedule).
 * Loops until the runtime exits; returns only then. */
static void schedule(m *mp) {
    for (;;) {
        if (unlikely(atomic_load_relaxed(&sched.forkwait))) fork_park(mp);
        if (unlikely(atomic_load_relaxed(&sched.sysmon_needed))) sysmon_restart();
        if (atomic_load_acq(&sched.exiting)) {
            if (mp == m0) return;
            park_forever(mp);
        }
        if (mp->lockedg) {
            stoplockedm(mp);
            if (!mp->p) continue; /* exiting */
            execute(mp, mp->lockedg, false);
            continue;
        }
        if (!mp->p) { /* exitsyscall0 or a retirement left us without a P */
            stopm(mp);
            continue;
        }
        p *pp = mp->p;
        if (pp->id >= gomaxprocs()) {
            lock(&sched.lock);
            releasep(mp);
            retire_p(pp);
            p *p2 = pidleget();
            unlock(&sched.lock);
            if (mp->spinning) {
                mp->spinning = false;
                atomic_xadd(&sched.nmspinning, (uint32_t)-1);
            }
            if (p2) acquirep(mp, p2);
            continue;
        }
        atomic_store_relaxed(&pp->must_sched, 0);
        yq_check(pp);
        g *gp = mp->nextg;
        bool inherit = mp->nextg_inherit;
        mp->nextg = NULL;
        bool ran;
        check_timers(pp, 0, &ran);
        if (unlikely(atomic_load_acq(&pp->slice_over))) {
            g *gg = slice_over(pp);
            inherit = false;
            if (!gp)
                gp = gg;
            else if (gg)
                runqput(pp, gg, false);
        }
        if (!gp) {
            if (pp->schedtick % 61 == 0 && atomic_load_relaxed(&sched.runqsize) > 0) {
                lock(&sched.lock);
                gp = globrunqget(pp, 1);
                unlock(&sched.lock);
                inherit = false;
            }
        }
        if (!gp) gp = runq_next(pp, &inherit);
        if (!gp) gp = find_runnable(mp, &inherit);
        if (!gp) continue; /* exiting */
        if (mp->spinning) resetspinning(mp);
        if (gp->lockedm && gp->lockedm != mp) {
            startlockedm(mp, gp);
            continue;
        }
        execute(mp, gp, inherit);
    }
}

/* A new M's thread. */
/* The top of the calling thread's stack (0 if unknown): os_thread_start's
 * record, or (m0) pthread_getattr_np's, which would allocate with libc's
 * malloc on a new thread (base/thread.c says why not). */
static uintptr_t thread_stack_hi(void) {
    uintptr_t hi = os_thread_stack_hi();
    if (hi) return hi;
    pthread_attr_t a;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &a) != 0) return 0;
    pthread_attr_getstack(&a, &addr, &size);
    pthread_attr_destroy(&a);
    return addr ? (uintptr_t)addr + size : 0;
}

static void mstart(void *arg) {
    m *mp = arg;
    tls_m = mp;
    mp->tid = os_gettid();
    mp->st.thread = pthread_self();
    atomic_store_rel(&mp->st.thread_valid, true);
    pthread_sigmask(SIG_SETMASK, &user_sigmask, NULL);
    stw_thread_init();
    if (stack_thread_init() < 0) throw("cannot set up the signal stack of a new M");
    mp->stack_hi = thread_stack_hi();
    acquirep(mp, mp->nextp);
    mp->nextp = NULL;
    schedule(mp);
    park_forever(mp);
}

/* ---- goroutines ------------------------------------------------------------------------ */

static uintptr_t default_stack_size; /* size of a stack_alloc(0) stack */

static void gfput(p *pp, g *gp) {
    if (gp->stack.lo && gp->stack.size != default_stack_size) {
        /* only default stacks stay with a free G */
        asan_unpoison_stack(gp);
        stack_free(&pp->stackcache, &gp->stack);
        gp->stack.lo = gp->stack.hi = 0;
    }
    gp->m = NULL;
    gp->lockedm = NULL;
    gp->schedlink = pp->gfree;
    pp->gfree = gp;
    gp->stack_dirty = true; /* sysmon trims it once it reaches the global list */
    if (++pp->gfreecnt >= GFREE_LOCAL_MAX) {
        lock(&sched.gflock);
        while (pp->gfreecnt >= GFREE_LOCAL_MAX / 2) {
            g *g1 = pp->gfree;
            pp->gfree = g1->schedlink;
            pp->gfreecnt--;
            gfree_push(g1);
        }
        unlock(&sched.gflock);
    }
}

static g *gfget(p *pp) {
    if (!pp->gfree && atomic_load_relaxed(&sched.ngfree) > 0) {
        lock(&sched.gflock);
        while (pp->gfreecnt < GFREE_LOCAL_MAX / 2 && sched.gfree) {
            sched.gfree_taken++;
            g *g1 = gfree_pop();
            g1->schedlink = pp->gfree;
            pp->gfree = g1;
            pp->gfreecnt++;
        }
        unlock(&sched.gflock);
    }
    g *gp = pp->gfree;
    if (gp) {
        pp->gfree = gp->schedlink;
        pp->gfreecnt--;
    }
    return gp;
}

static void goexit1(m *mp, g *gp) __attribute__((noreturn));

/* Where every goroutine starts (arch_ctx_make's entry). */
static void gentry(void *arg) {
    g *gp = arg;
    m *mp = tls_m;
    asan_after(mp, NULL);
    after_switch(mp);
    gp->fn(gp->arg);
    goexit1(tls_m, gp);
}

static void goexit1(m *mp, g *gp) {
    if (gp->is_main) sched.main_goexited = true;
    /* A forked child whose main goroutine is gone ends with its last one. */
    if (atomic_xadd(&sched.ngoroutines, -1) == 1 && unlikely(sched.main_lost)) exit(0);
    if (mp->lockedg == gp) { /* Go would end the thread; we release it */
        mp->lockedg = NULL;
        mp->lockedcount = 0;
    }
    gp->lockedm = NULL;
    mp->pend = PEND_EXIT;
    mp->pend_g = gp;
    switch_out(mp, gp, true);
    throw("goexit: dead goroutine resumed");
}

static void return_trap(void) {
    throw("goroutine entry returned");
}

/* Creates a goroutine running fn(arg) and queues it on pp (Go's newproc1). */
static g *newproc1(p *pp, void (*fn)(void *), void *arg, size_t stack_size, uintptr_t gopc,
                   int *err) {
    g *gp = gfget(pp);
    if (!gp) {
        lock(&alloc_lock);
        gp = fixalloc_alloc(&g_pool);
        unlock(&alloc_lock);
        if (!gp) throw_oom(sizeof(g));
        gp->status = G_DEAD;
        g *head = atomic_load_acq(&allgs);
        do {
            gp->alllink = head;
        } while (!atomic_cas(&allgs, &head, gp));
    }
    if (gp->stack.lo && (stack_size ? gp->stack.hi - gp->stack.lo < stack_size
                                    : gp->stack.size != default_stack_size)) {
        stack_free(&pp->stackcache, &gp->stack);
        gp->stack.lo = gp->stack.hi = 0;
    }
    if (!gp->stack.lo) {
        int rc = stack_alloc(&pp->stackcache, &gp->stack, stack_size);
        if (rc == -ENOMEM) throw_oom(stack_size ? stack_size : default_stack_size);
        if (rc < 0) {
            gp->stack.lo = gp->stack.hi = 0;
            gfput(pp, gp);
            *err = rc;
            return NULL;
        }
        if (!stack_size && !default_stack_size) default_stack_size = gp->stack.size;
        stack_set_owner(&gp->stack, gp); /* names it if it overflows */
    }
    asan_unpoison_stack(gp);
    gp->asan_lo = (const void *)gp->stack.lo;
    gp->asan_size = gp->stack.hi - gp->stack.lo;
    gp->asan_fake = NULL;
    arch_ctx_make(&gp->ctx, (void *)gp->stack.lo, gp->stack.hi - gp->stack.lo, gentry, gp);
    gp->fn = fn;
    gp->arg = arg;
    gp->param = NULL;
    if (unlikely(sched_gc_newproc_hook != NULL)) sched_gc_newproc_hook(arg);
    gp->preempt = false;
    gp->waitreason = 0;
    gp->lockedm = NULL;
    gp->is_main = false;
    if (pp->goidcache == pp->goidcacheend) {
        pp->goidcache = (int64_t)atomic_xadd(&sched.goidgen, GOIDCACHE) + 1;
        pp->goidcacheend = pp->goidcache + GOIDCACHE;
    }
    gp->goid = pp->goidcache++;
    gp->gopc = gopc; /* for the dump's "created by" */
    m *cm = tls_m;
    gp->parentgoid = cm && cm->curg ? cm->curg->goid : 0;
    atomic_xadd(&sched.ngoroutines, 1);
    setgstatus(gp, G_DEAD, G_RUNNABLE);
    if (unlikely(sched_hooks_active())) sched_hook_create(gp, cm);
    return gp;
}

/* gopc: the return address in the caller of gort_go (the dump's "created by"). */
static __attribute__((noinline)) int64_t go_at(gort_fn fn, void *arg, size_t stack_size,
                                               uintptr_t gopc) {
    if (!fn) throw("go of nil func value");
    if (stack_size > STACK_SIZE_MAX) return -EINVAL;
    m *mp = tls_m;
    if (!mp || !mp->p) return -EPERM; /* outside the scheduler (a foreign thread, a syscall) */
    int err = 0;
    g *gp = newproc1(mp->p, fn, arg, stack_size, gopc, &err);
    if (!gp) return err;
    int64_t id = gp->goid;
    runqput(mp->p, gp, true);
    wakep();
    /* A preemption point, as a call in Go is (its prologue checks): a loop
     * that only spawns would otherwise keep its P from the goroutines piling
     * up on it, and with one other P running them the backlog could only
     * grow (measured: some reps of a 1M spawn ran 3-5x slower, allocating
     * 50-80k new Gs, until the spawner yields when sysmon asks). */
    gort_preempt_check();
    return id;
}

int64_t gort_go_stack(gort_fn fn, void *arg, size_t stack_size) {
    return go_at(fn, arg, stack_size, (uintptr_t)__builtin_return_address(0));
}

int64_t gort_go(gort_fn fn, void *arg) {
    return go_at(fn, arg, 0, (uintptr_t)__builtin_return_address(0));
}

__attribute__((aligned(64))) void gort_yield(void) {
    m *mp = tls_m;
    if (!mp || !mp->curg) {
        sched_yield();
        return;
    }
    g *gp = mp->curg;
    p *pp = mp->p;
    if (unlikely(!pp)) throw("gort_yield between gort_syscall_enter and gort_syscall_exit");
    /* Nothing else to run here and nothing waiting globally: keep going.
     * (Only this M adds to pp's queue, so a single read cannot miss a G.) */
    if (atomic_load_relaxed(&pp->runqhead) == pp->runqtail && !pp->yqhead &&
        !atomic_load_relaxed(&pp->runnext) && atomic_load_relaxed(&sched.runqsize) == 0 &&
        !atomic_load_relaxed(&pp->must_sched) && !atomic_load_relaxed(&pp->timer0when))
        return;
    mp->pend = PEND_YIELD;
    mp->pend_g = gp;
    switch_out(mp, gp, false);
}

void gort_exit(void) {
    m *mp = tls_m;
    if (!mp || !mp->curg) throw("gort_exit called outside a goroutine");
    goexit1(mp, mp->curg);
}

int64_t gort_goid(void) {
    m *mp = tls_m;
    return mp && mp->curg ? mp->curg->goid : 0;
}

int gort_num_goroutine(void) {
    return atomic_load_relaxed(&sched.ngoroutines);
}

/* Whether the scheduler wants gp's P back: sysmon preempts gp or ended the
 * slice, the runtime exits, or the P is beyond gomaxprocs. */
static inline bool preempt_pending(p *pp, g *gp) {
    return atomic_load_relaxed(&gp->preempt) || atomic_load_relaxed(&pp->slice_over) ||
           atomic_load_acq(&sched.exiting) || pp->id >= gomaxprocs();
}

/* gort_preempt_check found pp->must_sched set. Stops here while the world
 * is stopped; then, if the scheduler wants the P, yields it (Go's
 * gopreempt_m: onto the global queue), leaving must_sched set so that the
 * switch goes through schedule(), which handles the request. A request that
 * turns out to be stale is cleared; one made meanwhile sets it again. */
static __attribute__((noinline)) void preempt_slow(m *mp, p *pp) {
    g *gp = mp->curg;
    if (!gp) return;
    if (stw_active_now()) stw_check(mp);
    if (!preempt_pending(pp, gp)) {
        atomic_xchg(&pp->must_sched, 0); /* a full fence before the second look */
        if (!preempt_pending(pp, gp)) return;
        atomic_store_relaxed(&pp->must_sched, 1);
    }
    gp->preempt = false;
    mp->pend = PEND_PREEMPT;
    mp->pend_g = gp;
    switch_out(mp, gp, false);
}

/* Every request of the scheduler sets its P's must_sched: sysmon's
 * preemption, the end of a time slice, exit, a shrinking gomaxprocs and
 * stop-the-world. One load when none is pending. */
void gort_preempt_check(void) {
    m *mp = tls_m;
    p *pp;
    if (likely(!mp || !(pp = mp->p) || !atomic_load_relaxed(&pp->must_sched))) return;
    preempt_slow(mp, pp);
}

/* ---- park / ready ---------------------------------------------------------------------- */

/* sched_park while profiling blocking (schedhooks.h): not a tail call,
 * so that the blocked goroutine reports its own wait once it runs again. */
static __attribute__((noinline)) void park_hooked(m *mp, g *gp) {
    sched_hook_park(gp, mp, gp->waitreason);
    switch_out(mp, gp, false);
    sched_hook_unpark(gp);
}

/* sched_park's misuse: one cold call, so that the park itself needs no frame. */
static __attribute__((noreturn, cold, noinline)) void park_misuse(g *gp) {
    if (!gp) throw("sched_park: not on a goroutine");
    throw("goroutine blocks between gort_syscall_enter and gort_syscall_exit");
}

void sched_park(bool (*unlockf)(g *, void *), void *lk, int reason) {
    m *mp = tls_m;
    g *gp = mp ? mp->curg : NULL;
    if (unlikely(!gp || !mp->p)) park_misuse(gp);
    gp->waitreason = (uint8_t)reason;
    mp->pend = PEND_PARK;
    mp->pend_g = gp;
    mp->pend_unlockf = unlockf;
    mp->pend_lock = lk;
    if (unlikely(sched_hooks_active() & SCHED_HOOK_BLOCK)) { /* the trace's event is switch_out's */
        park_hooked(mp, gp);
        return;
    }
    switch_out(mp, gp, false);
}

void sched_ready(g *gp) {
    ready_status(gp);
    m *mp = tls_m;
    if (mp && mp->p) {
        runqput(mp->p, gp, true);
    } else {
        lock(&sched.lock);
        globrunqput(gp);
        unlock(&sched.lock);
    }
    wakep();
}

void sched_external_waiters_add(int delta) {
    atomic_xadd(&sched.external_waiters, delta);
}

/* ---- syscalls ---------------------------------------------------------------------------- */

/* gort_syscall_enter is an assembler stub (src/arch) that passes the
 * caller's callee-saved registers and stack pointer, which the GC scans
 * instead of stopping the thread. */
void syscall_enter_regs(const uintptr_t *regs, uintptr_t sp) {
    m *mp = tls_m;
    if (!mp || !mp->curg) return;
    g *gp = mp->curg;
    if (unlikely(!mp->p)) throw("gort_syscall_enter: already in a syscall (calls do not nest)");
    p *pp = mp->p;
    for (int i = 0; i < 6; i++) gp->syscall_regs[i] = regs[i];
    gp->syscallsp = sp;
    if (sched_tracing()) sched_trace_clocked(TK_GO_SYSCALL, gp->goid, 0, pp->id, 0);
    setgstatus(gp, G_RUNNING, G_SYSCALL);
    pp->syscalltick++;
    mp->oldp = pp;
    mp->p = NULL;
    tls_mcache = mp->saved_mcache; /* the P may be retaken and its cache used elsewhere */
    atomic_store_rel(&pp->m, NULL);
    atomic_store_rel(&pp->status, P_SYSCALL);
}

/* On g0: gort_syscall_exit found no P (Go's exitsyscall0). */
static void exitsyscall0(m *mp, g *gp) {
    if (sched_tracing()) sched_trace_clocked(TK_GO_SYSEXIT, gp->goid, 0, trace_pid(mp), 0);
    setgstatus(gp, G_SYSCALL, G_RUNNABLE);
    gp->m = NULL;
    lock(&sched.lock);
    p *pp = pidleget();
    if (!pp) globrunqput(gp);
    unlock(&sched.lock);
    if (pp) {
        acquirep(mp, pp);
        mp->nextg = gp;
        mp->nextg_inherit = false;
        return;
    }
    /* Locked: schedule's stoplockedm waits for gp to come back with a P. */
    if (!mp->lockedg) stopm(mp);
}

void gort_syscall_exit(void) {
    m *mp = tls_m;
    if (!mp || !mp->curg) return;
    g *gp = mp->curg;
    if (unlikely(atomic_load_relaxed(&gp->status) != G_SYSCALL))
        throw("gort_syscall_exit without gort_syscall_enter");
    p *oldp = mp->oldp;
    mp->oldp = NULL;
    uint32_t st = P_SYSCALL;
    if (oldp && oldp->id < gomaxprocs() && atomic_cas(&oldp->status, &st, P_RUNNING)) {
        /* Fast path: nobody took our P. */
        mp->p = oldp;
        atomic_store_rel(&oldp->m, mp);
        mp->saved_mcache = tls_mcache;
        tls_mcache = oldp->mcache;
        gp->runseq++;
        setgstatus(gp, G_SYSCALL, G_RUNNING);
        stw_check(mp);
        if (sched_tracing()) sched_trace_clocked(TK_GO_SYSEXIT, gp->goid, 0, trace_pid(mp), 0);
        return;
    }
    if (atomic_load_relaxed(&sched.npidle) > 0) {
        lock(&sched.lock);
        p *pp = pidleget();
        unlock(&sched.lock);
        if (pp) {
            acquirep(mp, pp);
            gp->runseq++;
            setgstatus(gp, G_SYSCALL, G_RUNNING);
            if (sched_tracing()) sched_trace_clocked(TK_GO_SYSEXIT, gp->goid, 0, trace_pid(mp), 0);
            return;
        }
    }
    /* Slow path, on g0: queue gp and stop this M. */
    mp->pend = PEND_EXITSYSCALL;
    mp->pend_g = gp;
    mp->curg = NULL;
    gswitch(mp, gp, mp->g0, false);
}

/* ---- locked threads ------------------------------------------------------------------------ */

void gort_lock_os_thread(void) {
    m *mp = tls_m;
    if (!mp || !mp->curg) return;
    mp->lockedcount++;
    mp->lockedg = mp->curg;
    mp->curg->lockedm = mp;
}

void gort_unlock_os_thread(void) {
    m *mp = tls_m;
    if (!mp || !mp->curg || mp->lockedcount == 0) return;
    if (--mp->lockedcount == 0) {
        mp->lockedg = NULL;
        mp->curg->lockedm = NULL;
    }
}

/* ---- fork ---------------------------------------------------------------------------------
 *
 * After fork(2) the child has one thread, the forking one. gort keeps
 * working there (goroutines, channels, timers, new threads), on this rule:
 * the forking thread is the child's only M; every other M is gone, and so
 * are the goroutines that were executing on them (in C code, in a
 * syscall), as a thread that is not the forking one is gone in any child.
 * Every other goroutine is kept: parked ones stay parked, runnable ones run.
 *
 * Before (fork_prepare, in the forking thread): the collector waits out a
 * cycle in progress (sched_gc_fork_hook). Every M that holds a P is asked
 * to park at the top of schedule(), on g0, where none of its goroutines is
 * in flight and its queues are whole (forkwait and must_sched); the fork
 * waits for that up to FORK_WAIT_NS. Then the world stops (stw.c): Ms that
 * did not park (a goroutine in a C loop without a preemption point) and
 * registered foreign threads stop by signal, outside runtime locks. Then
 * the scheduler's locks are taken (sched.lock, every P's timers_lock,
 * gflock, alloc_lock), the stack pool's, the collector's, and last (its own
 * handlers) the allocator's: so no thread holds one of them at the fork.
 * One pthread_atfork triple (sched_fork_register) keeps that order.
 *
 * In the child (fork_child): the locks are fresh; every other M is marked
 * dead; a P held by a parked M or idle keeps its goroutines (they move to
 * the global queue); a P held by an M stopped by signal may have been
 * mid-change, so its queues are dropped and instead every goroutine is
 * looked at (allgs): one runnable but on no queue goes on the global queue;
 * one running on a dead M whose stack that M was not executing on (it was
 * being switched to or from) is runnable, its pending switch action done;
 * the others that ran there are gone (their count too). Goroutines locked to
 * a dead M are unlocked. sysmon starts again at the child's first
 * schedule(); new Ms are made as work appears. If the child's main
 * goroutine is gone, the child exits (status 0) when its last goroutine
 * does; if main returns in a child whose m0 is gone, the process exits at
 * once with main's result.
 *
 * Limits (docs/scheduler.md, "fork"): a plain thread (not an M) inside a
 * gort call at the fork may leave that channel's or mutex's lock held in
 * the child, as any other thread may leave a libc lock held. */

#define FORK_WAIT_NS ((int64_t)5 * 1000 * 1000)

static uint32_t fork_mu;  /* one fork at a time: 0 free, 1 held, 2 with waiters */
static bool fork_active;  /* the scheduler's part ran (gort_main had started) */
static uint32_t fork_gen; /* forkmark of the current rebuild */

static void fork_child(void);
static void fork_rebuild(void);

/* At the top of schedule(): a fork waits for this M to stop with nothing in
 * flight. Keeps its P; returns when the fork is done (in the parent). */
static __attribute__((noinline)) void fork_park(m *mp) {
    atomic_store_rel(&mp->fork_parked, true);
    atomic_xadd(&sched.forkparked, 1);
    futex_wake(&sched.forkparked, 1);
    while (atomic_load_acq(&sched.forkwait)) futex_sleep(&sched.forkwait, 1, -1);
    atomic_store_rel(&mp->fork_parked, false);
}

void (*sched_gc_fork_hook)(int phase);
static int fork_depth0;           /* the forking thread's lock_depth before any */
static void (*fork_gc_hook)(int); /* the hook of this fork */

/* The fork handlers' order (pthread_atfork calls these before the
 * allocator's, whose locks come after every one of ours): the collector
 * waits out a cycle; Ms park, then the world stops; the scheduler's locks;
 * the stack pool's; the collector's. Without gort_main, only the
 * stop-the-world mutexes and the collector's part. */
static void fork_prepare(void) {
    fork_depth0 = lock_depth;
    uint32_t z = 0;
    if (!atomic_cas(&fork_mu, &z, 1))
        while (atomic_xchg(&fork_mu, 2) != 0) futex_sleep(&fork_mu, 2, -1);
    fork_gc_hook = atomic_load_acq(&sched_gc_fork_hook);
    if (fork_gc_hook) fork_gc_hook(0);
    fork_active = atomic_load_acq(&started);
    if (!fork_active) {
        stw_atfork_prepare();
    } else {
        m *self = tls_m;
        atomic_store_rel(&sched.forkparked, 0);
        atomic_store_rel(&sched.forkwait, 1);
        int32_t np = atomic_load_acq(&sched.nallp);
        for (int32_t i = 0; i < np; i++) atomic_store_rel(&allp[i]->must_sched, 1);
        int64_t deadline = nanotime() + FORK_WAIT_NS;
        for (;;) {
            bool all = true;
            for (int32_t i = 0; i < np && all; i++) {
                p *pp = allp[i];
                m *pm = atomic_load_acq(&pp->m);
                if (atomic_load_acq(&pp->status) == P_RUNNING && pm && pm != self &&
                    !atomic_load_acq(&pm->fork_parked))
                    all = false;
            }
            if (all || nanotime() > deadline) break;
            uint32_t seen = atomic_load_acq(&sched.forkparked);
            futex_sleep(&sched.forkparked, seen, 100 * 1000);
        }
        stop_the_world("fork"); /* holds stop-the-world's mutexes until the end */
        lock(&sched.lock);
        for (int32_t i = 0; i < np; i++) lock(&allp[i]->timers_lock);
        lock(&sched.gflock);
        lock(&alloc_lock);
    }
    stack_atfork_prepare();
    if (fork_gc_hook) fork_gc_hook(1);
}

static void fork_parent(void) {
    if (fork_gc_hook) fork_gc_hook(2);
    stack_atfork_parent();
    if (!fork_active) {
        stw_atfork_parent();
    } else {
        int32_t np = atomic_load_acq(&sched.nallp);
        unlock(&alloc_lock);
        unlock(&sched.gflock);
        for (int32_t i = np - 1; i >= 0; i--) unlock(&allp[i]->timers_lock);
        unlock(&sched.lock);
        atomic_store_rel(&sched.forkwait, 0);
        futex_wake(&sched.forkwait, INT32_MAX);
        start_the_world();
    }
    if (fork_gc_hook) fork_gc_hook(3);
    fork_active = false;
    if (atomic_xchg(&fork_mu, 0) == 2) futex_wake(&fork_mu, 1);
}

void sched_fork_register(void) {
    static uint32_t done;
    uint32_t z = 0;
    if (atomic_cas(&done, &z, 1)) pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Child: gp goes on the global queue, once. */
static void fork_requeue(g *gp) {
    if (gp->forkmark == fork_gen) return;
    gp->forkmark = fork_gen;
    globrunqput(gp);
}

/* Child: the Gs on pp's queues (whole: its owner parked, or it was idle)
 * onto the global queue, in order. */
static void fork_take_queue(p *pp) {
    g *next = pp->runnext;
    if (next) fork_requeue(next);
    for (uint32_t h = pp->runqhead; h != pp->runqtail; h++) fork_requeue(pp->runq[h % RUNQ_SIZE]);
    for (g *gp = pp->yqhead; gp;) {
        g *link = gp->schedlink; /* globrunqput relinks it */
        fork_requeue(gp);
        gp = link;
    }
}

/* Child: a G that ran on a dead M whose context is saved (its M was not on
 * its stack) gets its pending switch action, or runs again. */
static void fork_resume(m *gm, g *gp) {
    int pend = gm->pend_g == gp ? gm->pend : PEND_NONE;
    if (pend == PEND_EXIT) {
        gp->status = G_DEAD; /* its exit was counted; the G is not reused */
        return;
    }
    if (pend == PEND_PARK) {
        gp->parkseq++;
        gp->status = G_WAITING;
        bool (*unlockf)(g *, void *) = gm->pend_unlockf;
        if (!unlockf || unlockf(gp, gm->pend_lock)) return;
    }
    gp->status = G_RUNNABLE;
    fork_requeue(gp);
}

static void fork_child(void) {
    stack_atfork_child();
    stw_atfork_child();
    if (fork_active) fork_rebuild();
    if (fork_gc_hook) fork_gc_hook(4); /* it may start threads: after the rebuild */
    lock_depth = fork_depth0;          /* the locks were reset, not unlocked */
    fork_active = false;
    fork_mu = 0;
}

/* The child's scheduler: see the section's comment. */
static void fork_rebuild(void) {
    m *self = tls_m;
    /* Fresh locks: the ones prepare took, and nothing else of the parent's. */
    sched.lock = (lock_t)LOCK_INIT;
    sched.gflock = (lock_t)LOCK_INIT;
    alloc_lock = (lock_t)LOCK_INIT;
    int32_t np = sched.nallp;
    for (int32_t i = 0; i < np; i++) allp[i]->timers_lock = (lock_t)LOCK_INIT;
    sched.forkwait = sched.forkparked = 0;
    fork_gen++;

    /* Ms: self alone exists. sysmon starts again at the next schedule(). */
    for (m *mp = allm; mp; mp = mp->alllink) {
        if (mp == self) continue;
        mp->dead = true;
        mp->st.thread_valid = false;
        mp->on_midle = false;
        mp->spinning = false;
        mp->st.suspend_req = 0;
    }
    sched.midle = NULL;
    sched.nmidle = sched.nmidlelocked = sched.nmsys = 0;
    sched.nmspinning = 0;
    sched.nmfreed = (int32_t)sched.mnext - (self ? 1 : 0);
    sched.tsleeping = 0;
    sched.tsleep_until = 0;
    sched.sysmon_holding = 0;
    sched.deadlock_suspect = 0;
    sched.sysmon_needed = 1;
    sched.m0_gone = self != m0;
    /* gort's threads: none but self (a plain thread counts as the program's). */
    os_thread_count_reset(self ? 0 : -1);

    /* The global queue is whole (we held its lock). */
    for (g *gp = sched.runqhead; gp; gp = gp->schedlink) gp->forkmark = fork_gen;
    /* Self's P: the one it holds, or the one it left for a syscall, if that
     * is still in a syscall (not retaken: another M may run it). */
    p *selfp = self ? self->p : NULL;
    if (self && !selfp && self->oldp &&
        (self->oldp->status == P_SYSCALL || self->oldp->status == P_GCSTOP))
        selfp = self->oldp;
    if (selfp) {
        for (uint32_t h = selfp->runqhead; h != selfp->runqtail; h++)
            selfp->runq[h % RUNQ_SIZE]->forkmark = fork_gen;
        if (selfp->runnext) selfp->runnext->forkmark = fork_gen;
        for (g *gp = selfp->yqhead; gp; gp = gp->schedlink) gp->forkmark = fork_gen;
    }
    sched.pidle = NULL;
    sched.npidle = 0;
    for (int32_t i = 0; i < np; i++) {
        p *pp = allp[i];
        if (pp == selfp) continue;
        m *owner = pp->m;
        uint32_t st = pp->status;
        bool whole = st == P_IDLE || st == P_DEAD || (owner && owner->fork_parked);
        if (whole) {
            fork_take_queue(pp);
            while (pp->gfree) {
                g *gp = pp->gfree;
                pp->gfree = gp->schedlink;
                gfree_push(gp);
            }
        }
        pp->gfree = NULL; /* else: dropped, maybe mid-change (the Gs leak) */
        pp->gfreecnt = 0;
        pp->runnext = NULL;
        pp->runqhead = pp->runqtail = 0;
        pp->yqhead = pp->yqtail = NULL;
        pp->yqsize = pp->yqbusy = 0;
        pp->m = NULL;
        pp->must_sched = pp->slice_over = 0;
        pp->stw_taken = false;
        if (st == P_DEAD) continue;
        pp->status = P_IDLE;
        pidleput(pp); /* retires it if beyond gomaxprocs */
    }

    /* Every goroutine: see the comment above. */
    for (g *gp = allgs; gp; gp = gp->alllink) {
        if (gp->lockedm && gp->lockedm->dead) gp->lockedm = NULL;
        if (self && gp == self->curg) continue;
        switch (gp->status) {
        case G_WAITING_SHRINK: /* sysmon was shrinking its stack */
            gp->status = G_WAITING;
            break;
        case G_RUNNABLE:
            fork_requeue(gp);
            break;
        case G_RUNNING:
        case G_SYSCALL: {
            m *gm = gp->m;
            const suspend_ctx *sc = gm && gm->dead ? stw_suspended(&gm->st) : NULL;
            bool executing = !sc || (sc->sp >= gp->stack.lo && sc->sp <= gp->stack.hi);
            if (gm && gm->fork_parked) executing = false; /* its M was on g0 */
            if (gp->status == G_RUNNING && !executing) {
                fork_resume(gm, gp);
                break;
            }
            gp->status = G_DEAD; /* gone with its thread */
            atomic_xadd(&sched.ngoroutines, -1);
            if (gp->is_main) sched.main_lost = true;
            break;
        }
        default:
            break;
        }
    }
    if (self && self->p) atomic_store_rel(&self->p->must_sched, 1);
}

/* ---- deadlock ---------------------------------------------------------------------------------
 */

static bool foreign_threads(void);

/* Under sched.lock, when an M goes idle (Go's checkdead). */
static void checkdead(void) {
    if (!started || atomic_load_acq(&sched.exiting)) return;
    int32_t run =
        (int32_t)(sched.mnext - sched.nmfreed - sched.nmidle - sched.nmidlelocked - sched.nmsys);
    if (run > 0) return;
    if (run < 0) {
        print("runtime: checkdead: nmidle=%d nmidlelocked=%d mcount=%lld nmsys=%d\n", sched.nmidle,
              sched.nmidlelocked, (long long)sched.mnext, sched.nmsys);
        throw("checkdead: inconsistent counts");
    }
    if (atomic_load_relaxed(&sched.external_waiters) > 0) return;
    /* sysmon is moving runnable Gs to the global queue; it starts Ms for
     * them once they are there (preemptone), and the last to idle again
     * checks again. */
    if (atomic_load_acq(&sched.sysmon_holding) > 0) return;
    if (atomic_load_relaxed(&sched.ngoroutines) == 0) {
        if (sched.main_goexited) throw("no goroutines (main called runtime.Goexit) - deadlock!");
        return;
    }
    /* Something runnable with every M idle cannot happen: stay quiet rather
     * than kill a program over a scheduler bug. */
    if (sched.runqsize > 0) return;
    for (int32_t i = 0; i < sched.nallp; i++)
        if (allp[i] && !runqempty_all(allp[i])) return;
    if (timers_next_when() != 0) return;
    /* A thread that is not gort's may still send, close, unlock, signal,
     * call Done or arm a timer (the C callback pattern): not fatal while one
     * exists; sysmon looks again until none is left (sched_checkdead_again). */
    if (foreign_threads()) {
        atomic_store_relaxed(&sched.deadlock_suspect, 1);
        return;
    }
    throw("all goroutines are asleep - deadlock!");
}

/* Whether the process has threads that gort did not start: all but m0 (the
 * thread in gort_main) and those of os_thread_start (Ms, sysmon, the
 * scavenger). Unknown (no /proc): none. */
static bool foreign_threads(void) {
    int n = os_nthreads();
    return n > 0 && n > os_thread_count() + 1;
}

void sched_checkdead_again(void) {
    lock(&sched.lock);
    atomic_store_relaxed(&sched.deadlock_suspect, 0);
    checkdead();
    unlock(&sched.lock);
}

/* ---- gomaxprocs -------------------------------------------------------------------------------
 */

static p *newp(int32_t id) {
    p *pp = persistent_alloc(sizeof(p), 64, &sched_sys);
    if (!pp) throw_oom(sizeof(p));
    pp->id = id;
    pp->status = P_DEAD;
    pp->timers_lock = (lock_t)LOCK_INIT;
    pp->mcache = mcache_new();
    if (!pp->mcache) throw_oom(sizeof(struct mcache));
    return pp;
}

/* Under sched.lock (Go's procresize, without stopping the world: Ps beyond
 * n are retired by their owners at their next schedule, or here when idle). */
static void procresize(int32_t n) {
    int32_t old = sched.gomaxprocs;
    for (int32_t i = sched.nallp; i < n; i++) {
        allp[i] = newp(i);
        atomic_store_rel(&sched.nallp, i + 1);
    }
    if (n > old) {
        atomic_store_rel(&sched.gomaxprocs, n);
        for (int32_t i = n - 1; i >= old; i--)
            if (atomic_load_relaxed(&allp[i]->status) == P_DEAD) pidleput(allp[i]);
        return;
    }
    atomic_store_rel(&sched.gomaxprocs, n);
    for (p **pl = &sched.pidle; *pl;) {
        p *pp = *pl;
        if (pp->id >= n) {
            *pl = pp->link;
            atomic_xadd(&sched.npidle, (uint32_t)-1);
            retire_p(pp);
        } else {
            pl = &pp->link;
        }
    }
    for (int32_t i = n; i < sched.nallp; i++) atomic_store_relaxed(&allp[i]->must_sched, 1);
}

static int default_procs(void) {
    env_init();
    int n = opts.gomaxprocs > 0 ? opts.gomaxprocs : os_ncpu();
    if (n < 1) n = 1;
    if (n > MAX_GOMAXPROCS) n = MAX_GOMAXPROCS;
    return n;
}

int gort_gomaxprocs(int n) {
    if (!atomic_load_acq(&started)) {
        int prev = pending_gomaxprocs > 0 ? pending_gomaxprocs : default_procs();
        if (n > 0) pending_gomaxprocs = n > MAX_GOMAXPROCS ? MAX_GOMAXPROCS : n;
        return prev;
    }
    int prev = gomaxprocs();
    if (n <= 0 || n == prev) return prev;
    if (n > MAX_GOMAXPROCS) n = MAX_GOMAXPROCS;
    lock(&sched.lock);
    procresize(n);
    unlock(&sched.lock);
    if (n > prev) wakep();
    /* The caller's own P may be beyond n: leave it at the next yield. */
    m *mp = tls_m;
    if (mp && mp->curg && mp->p && mp->p->id >= n) gort_yield();
    return prev;
}

/* ---- start --------------------------------------------------------------------------------------
 */

static struct {
    int (*fn)(int, char **);
    int argc;
    char **argv;
} main_args;

/* Who ends the process once main_fn has returned: 1, m0 returning from
 * gort_main; 2, the main goroutine's M calling exit (exit_wait_m0). */
static uint32_t exit_claim;
#define EXIT_GRACE_NS ((int64_t)100 * 1000 * 1000)

/* The main goroutine returned on mp, not on m0, which runs some other
 * goroutine: that one leaves m0 at its next preemption point (must_sched)
 * and gort_main returns. One that never reaches one (a C loop, a blocking
 * call outside gort_syscall_enter) would keep the process alive forever:
 * after EXIT_GRACE_NS the process ends from here, with main_fn's result and
 * exit()'s usual flushing, as a Go program's does when main returns. */
static void exit_wait_m0(m *mp, int r) {
    if (sched.m0_gone) exit(r); /* a forked child: no m0 will return */
    int64_t deadline = nanotime() + EXIT_GRACE_NS;
    for (;;) {
        if (atomic_load_acq(&exit_claim) != 0) park_forever(mp); /* m0 returns */
        int64_t left = deadline - nanotime();
        if (left <= 0) break;
        futex_sleep(&exit_claim, 0, left);
    }
    uint32_t z = 0;
    if (!atomic_cas(&exit_claim, &z, 2)) park_forever(mp);
    exit(r);
}

static void main_entry(void *arg) {
    (void)arg;
    int r = main_args.fn(main_args.argc, main_args.argv);
    m *mp = tls_m;
    g *gp = mp->curg;
    sched.main_result = r;
    sched.main_done = true;
    atomic_store_rel(&sched.exiting, 1);
    int32_t n = atomic_load_acq(&sched.nallp);
    for (int32_t i = 0; i < n; i++) atomic_store_relaxed(&allp[i]->must_sched, 1);
    if (mp != m0) {
        /* Get m0 back to its scheduler loop, which returns from gort_main. */
        lock(&sched.lock);
        bool was_idle = mremove(m0);
        unlock(&sched.lock);
        if (was_idle || m0->lockedg) note_wakeup(&m0->park);
        atomic_xadd(&sched.tsleep_seq, 1);
        futex_wake(&sched.tsleep_seq, 1 << 30);
        sleeper_wake(false, true); /* m0 may be the sleeper, in the poller */
        exit_wait_m0(mp, r);
    }
    mp->pend = PEND_MAIN_DONE;
    mp->pend_g = gp;
    mp->curg = NULL;
    gswitch(mp, gp, mp->g0, false);
    throw("main goroutine resumed after exit");
}

int gort_main(int (*main_fn)(int argc, char **argv), int argc, char **argv) {
    if (started) throw("gort_main called twice");
    /* The program's frames above us hold its locals (GC pointers among
     * them) while gort_main runs: spill the callee-saved registers into
     * this frame and make [here, the stack's top) a root. */
    __builtin_unwind_init();
    uintptr_t sp;
    __asm__ __volatile__("mov %%rsp, %0" : "=r"(sp));
    env_init();
    int rc = stack_init(on_stack_overflow);
    if (rc < 0) throw("cannot initialize goroutine stacks");
    stack_set_crash_hook(on_unexpected_signal);
    fixalloc_init(&g_pool, sizeof(g), &sched_sys);
    fixalloc_init(&m_pool, sizeof(m), &sched_sys);
    arch_ctx_return_trap = return_trap;
    arch_ctx_resume_hook = resume_hook;
    pthread_sigmask(SIG_SETMASK, NULL, &user_sigmask);
    sched.starttime = nanotime();

    int n = pending_gomaxprocs > 0 ? pending_gomaxprocs : default_procs();
    if (stw_init() < 0) throw("cannot install the stop-the-world signal");
    sched_fork_register(); /* the stack pool's handlers too (proc.c, "fork") */
    m0 = allocm();
    m0->tid = os_gettid();
    m0->st.thread = pthread_self();
    atomic_store_rel(&m0->st.thread_valid, true);
    tls_m = m0;
    m0->stack_hi = thread_stack_hi();
    sched_main_stack_hi = m0->stack_hi;
    sched_main_stack_lo = m0->stack_hi ? sp : 0;
    stw_thread_init();
    if (stack_thread_init() < 0) throw("cannot set up the signal stack of the main thread");
    lock(&sched.lock);
    procresize(n);
    p *pp = pidleget(); /* P 0: procresize pushes the highest id first */
    unlock(&sched.lock);
    acquirep(m0, pp);

    main_args.fn = main_fn;
    main_args.argc = argc;
    main_args.argv = argv;
    int err = 0;
    g *mg = newproc1(pp, main_entry, NULL, 0, 0, &err);
    if (!mg) throw("cannot create the main goroutine");
    mg->is_main = true;
    runqput(pp, mg, true);
    dump_hook = dump_goroutines;
    tb_sigquit_install(); /* the dump on SIGQUIT, then exit 2 (as Go) */

    lock(&sched.lock);
    sched.nmsys++;
    sched.mnext++; /* sysmon counts as a thread, not as a running M */
    unlock(&sched.lock);
    atomic_store_rel(&started, true);
    if (os_thread_start(sysmon, NULL, M_STACK_SIZE, "gort-sysmon") < 0)
        throw("cannot start sysmon");

    schedule(m0);
    uint32_t z = 0;
    if (!atomic_cas(&exit_claim, &z, 1)) park_forever(m0); /* exit_wait_m0 is exiting */
    futex_wake(&exit_claim, 1);
    return sched.main_result;
}

int64_t gort_nanotime(void) {
    return nanotime();
}
