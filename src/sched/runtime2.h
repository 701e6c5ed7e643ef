/* The scheduler's data structures: G, M, P and the global sched (Go's
 * runtime2.go), and the internal interface other layers use to block and
 * wake goroutines (park/ready) and to arm timers.
 *
 * G: a goroutine. Its context is saved on its own stack (src/arch); the G
 *    record itself comes from a fixalloc and is never freed: dead Gs are
 *    recycled, with their stacks, through per-P and global free lists.
 * M: an OS thread. Its g0 is the thread's own stack and runs the scheduler
 *    loop when the M has nothing better to do; an M parks on its note.
 * P: a logical processor: what an M must hold to run Go code. It owns a
 *    local run queue (a 256-entry lock-free ring plus runnext, Go's runq),
 *    the allocator's mcache, a timer heap, and G and stack caches.
 *
 * Locks, in acquisition order:
 *   1. sched.lock: idle M and P lists, global run queue, M counts, gomaxprocs;
 *   2. a P's timers_lock (two only in id order, when a P's timers move);
 *   3. sched.gflock: the global free-G list.
 * allgs (the list of all Gs, proc.h) takes no lock: it is push-only by CAS
 * and read with acquire loads.
 * The run queues are lock-free (runqput/runqget/runqsteal). A G's status is
 * changed with atomics; the transitions follow Go's casgstatus.
 *
 * TLS: tls_m is the thread's M (NULL on threads the scheduler did not make,
 * and on the thread that calls gort_main until it does). Runtime code reads
 * it once at the top of an entry point and afterwards uses the M returned by
 * every switch (a goroutine may resume on another thread): see proc.c. */
#ifndef GORT_SCHED_RUNTIME2_H
#define GORT_SCHED_RUNTIME2_H

#include "arch/arch.h"
#include "base/lock.h"
#include "sched/stack.h"
#include "sched/stw.h"

#include <pthread.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define fastrand                   gort__fastrand
#define sched_fork_register        gort__sched_fork_register
#define sched_gc_fork_hook         gort__sched_gc_fork_hook
#define sched_gc_newproc_hook      gort__sched_gc_newproc_hook
#define sched_gc_sysmon_hook       gort__sched_gc_sysmon_hook
#define sched_main_stack_hi        gort__sched_main_stack_hi
#define sched_main_stack_lo        gort__sched_main_stack_lo
#define syscall_enter_regs         gort__syscall_enter_regs
#define allp                       gort__allp
#define check_timers               gort__check_timers
#define sched                      gort__sched
#define sched_allm                 gort__sched_allm
#define sched_external_waiters_add gort__sched_external_waiters_add
#define sched_getg                 gort__sched_getg
#define sched_netpoll              gort__sched_netpoll
#define sched_netpoll_break        gort__sched_netpoll_break
#define sched_park                 gort__sched_park
#define sched_ready                gort__sched_ready
#define sched_shrink_period_ns     gort__sched_shrink_period_ns
#define sched_test_sysmon_hook     gort__sched_test_sysmon_hook
#define sched_test_handoff_hook    gort__sched_test_handoff_hook
#define sched_timer_armed          gort__sched_timer_armed
#define sched_timer_kick           gort__sched_timer_kick
#define timer_add                  gort__timer_add
#define timer_del                  gort__timer_del
#define timer_mod                  gort__timer_mod
#define timers_move                gort__timers_move
#define timers_next_when           gort__timers_next_when
#define tls_m                      gort__tls_m
#define wait_reason_strings        gort__wait_reason_strings

struct mcache;
struct g;
struct m;
struct p;

/* ---- G ------------------------------------------------------------------ */

enum gstatus {
    G_IDLE = 0,           /* just allocated, not yet initialized */
    G_RUNNABLE = 1,       /* on a run queue, not running */
    G_RUNNING = 2,        /* running user code on an M that holds a P */
    G_SYSCALL = 3,        /* between gort_syscall_enter and _exit: has an M, maybe no P */
    G_WAITING = 4,        /* parked (sched_park); readied by sched_ready */
    G_DEAD = 6,           /* exited, on a free list (or being recycled) */
    G_WAITING_SHRINK = 7, /* parked, and sysmon is giving back its unused stack pages:
                             sched_ready waits for it to become G_WAITING again */
};

/* Why a goroutine waits: printed in the goroutine dump. Go's list and strings. */
enum wait_reason {
    WAIT_REASON_ZERO,
    WAIT_REASON_GC_ASSIST_MARKING,
    WAIT_REASON_IO_WAIT,
    WAIT_REASON_CHAN_RECEIVE_NIL_CHAN,
    WAIT_REASON_CHAN_SEND_NIL_CHAN,
    WAIT_REASON_DUMPING_HEAP,
    WAIT_REASON_GARBAGE_COLLECTION,
    WAIT_REASON_GARBAGE_COLLECTION_SCAN,
    WAIT_REASON_PANIC_WAIT,
    WAIT_REASON_SELECT,
    WAIT_REASON_SELECT_NO_CASES,
    WAIT_REASON_GC_ASSIST_WAIT,
    WAIT_REASON_GC_SWEEP_WAIT,
    WAIT_REASON_GC_SCAVENGE_WAIT,
    WAIT_REASON_CHAN_RECEIVE,
    WAIT_REASON_CHAN_SEND,
    WAIT_REASON_FINALIZER_WAIT,
    WAIT_REASON_FORCE_GC_IDLE,
    WAIT_REASON_SEMACQUIRE,
    WAIT_REASON_SLEEP,
    WAIT_REASON_SYNC_COND_WAIT,
    WAIT_REASON_TIMER_GOROUTINE_IDLE,
    WAIT_REASON_TRACE_READER_BLOCKED,
    WAIT_REASON_WAIT_FOR_GC_CYCLE,
    WAIT_REASON_GC_WORKER_IDLE,
    WAIT_REASON_PREEMPTED,
    WAIT_REASON_DEBUG_CALL,
    /* Go 1.20's, for the sync package (the dump shows which, and the mutex
     * profile knows a mutex from a WaitGroup). */
    WAIT_REASON_SYNC_MUTEX_LOCK,
    WAIT_REASON_SYNC_RWMUTEX_RLOCK,
    WAIT_REASON_SYNC_RWMUTEX_LOCK,
    WAIT_REASON_SYNC_WAITGROUP_WAIT,
    WAIT_REASON_COUNT
};
extern const char *const wait_reason_strings[WAIT_REASON_COUNT];

/* A runtime timer (Go's runtimeTimer). Lives in at most one P's heap; pp and
 * idx change only under that P's timers_lock. f runs on an M that holds a P,
 * on g0 or in the scheduler's fast path, with no lock held; it must not block
 * (it may sched_ready goroutines and re-arm timers). */
typedef struct timer {
    struct p *pp;   /* the heap it is in, or NULL (atomic reads; writes under pp's lock) */
    int32_t idx;    /* its index in pp's heap */
    int64_t when;   /* nanotime at which it fires */
    int64_t period; /* > 0: re-arms itself every period ns */
    void (*f)(void *arg, uintptr_t seq);
    void *arg;
    uintptr_t seq;
} timer;

typedef struct g {
    gort_context ctx;   /* saved context while not running (src/arch) */
    gstack stack;       /* lo == 0 for g0 (the thread's own stack) */
    uint32_t status;    /* enum gstatus; atomic */
    uint8_t waitreason; /* enum wait_reason while G_WAITING */
    bool preempt;       /* sysmon asks it to yield at its next preemption point */
    bool is_g0;
    bool is_main;
    int64_t goid;
    struct m *m;         /* the M running it (while running or in a syscall) */
    struct m *lockedm;   /* gort_lock_os_thread: the only M that may run it */
    struct g *schedlink; /* run queue, free list and ready list link */
    struct g *alllink;   /* all Gs, for the dump and checkdead */
    void (*fn)(void *);
    void *arg;
    void *param;            /* passed by the waker to the parked goroutine (Go's g.param) */
    struct m *suspended_on; /* sched_suspend_g: the M stopped for this goroutine */
    uint32_t parkseq;       /* parks so far (owner only): sysmon's "parked a long time" test */
    uint32_t shrinkseen;    /* sysmon: parkseq + 1 when it last saw this G waiting */
    uint32_t shrunkseq;     /* sysmon: parkseq + 1 when it last shrank this G's stack */
    bool stack_dirty;       /* dead, and its stack not trimmed since it last ran */
    uint32_t forkmark;      /* a forked child's rebuild: seen on a queue (proc.c) */
    /* For the GC's stack scan (src/gc/mgcmark.c), which reads a goroutine
     * that is not running without stopping it: runseq changes whenever it
     * starts running (a scan that saw it change retries); syscallsp and
     * syscall_regs are its stack pointer and callee-saved registers as
     * gort_syscall_enter left them. */
    uint32_t runseq;
    uintptr_t syscallsp;
    uintptr_t syscall_regs[6];
    timer sleep_timer; /* gort_sleep */
    /* For the dump and the profiles (src/sched/traceback.c, src/prof): the
     * return address in the code that created it (gort_go's caller) and its
     * creator's id; when sysmon first saw it parked in its current park
     * (nanotime; valid while shrinkseen == parkseq + 1). */
    uintptr_t gopc;
    int64_t parentgoid;
    int64_t waitsince;
    /* Profiling (sched/schedhooks.h): when its current park began and when
     * a ready ended it (block profile); when it last became runnable, if
     * tracked (scheduling latency); a counter choosing one in 8. */
    int64_t blockstart, releasetime, runnable_since;
    uint32_t trackseq;
    /* ASan: the fake stack saved while suspended, and the stack's bounds (for
     * g0, learned from ASan at its first switch out). */
    void *asan_fake;
    const void *asan_lo;
    size_t asan_size;
} g;

/* ---- M ------------------------------------------------------------------ */

/* What the context that resumes after a switch must do with the G that
 * switched away: the second half of Go's mcall(fn). Run by after_switch. */
enum pend {
    PEND_NONE,
    PEND_YIELD,       /* put it on the local run queue's tail (gort_yield) */
    PEND_PREEMPT,     /* put it on the global run queue (sysmon asked) */
    PEND_PARK,        /* it is waiting: call unlockf; if false, ready it again */
    PEND_EXIT,        /* it is dead: recycle it */
    PEND_EXITSYSCALL, /* gort_syscall_exit found no P: on g0, queue it, stop */
    PEND_MAIN_DONE,   /* the main goroutine returned: leave it as it is */
};

typedef struct m {
    g *g0;           /* the scheduler's context on this thread's stack */
    g *curg;         /* the user goroutine running, or NULL (g0) */
    struct p *p;     /* the attached P, or NULL */
    struct p *nextp; /* the P to attach when woken (startm) */
    struct p *oldp;  /* the P it had before a syscall */
    int64_t id;
    int tid;             /* the OS thread id */
    bool spinning;       /* out of work, looking for it (counted in sched.nmspinning) */
    stw_thread st;       /* stop-the-world's view of this thread (stw.h) */
    bool on_midle;       /* on sched.midle (under sched.lock) */
    bool exiting_park;   /* parked for good: the runtime is exiting */
    bool fork_parked;    /* parked at the top of schedule() for a fork (proc.c) */
    bool dead;           /* its thread does not exist (a forked child's other Ms) */
    note_t park;         /* where it sleeps when idle */
    struct m *schedlink; /* sched.midle */
    struct m *alllink;   /* all Ms */
    g *lockedg;          /* gort_lock_os_thread */
    uint32_t lockedcount;
    uint64_t fastrand;
    struct mcache *saved_mcache; /* the thread's own tls_mcache while it holds a P */
    int pend;                    /* enum pend */
    g *pend_g;
    bool (*pend_unlockf)(g *, void *);
    void *pend_lock;
    g *nextg;           /* run this next (schedule, on g0): handed over by switch_out */
    bool nextg_inherit; /* ... and it inherits the time slice */
    g *switch_from;     /* ASan: the context that made the latest switch */
    int64_t syscall_when;
    uintptr_t stack_hi; /* the top of the thread's own stack (g0), for the GC */
} m;

/* ---- P ------------------------------------------------------------------ */

enum pstatus {
    P_IDLE = 0,    /* on the idle list (or being handed over) */
    P_RUNNING = 1, /* owned by an M */
    P_SYSCALL = 2, /* its M is in a syscall; sysmon may retake it */
    P_GCSTOP = 3,  /* taken from a syscall by stop-the-world until it starts again */
    P_DEAD = 4,    /* beyond gomaxprocs */
};

#define RUNQ_SIZE      256
#define TIMER_HEAP_ARY 4

typedef struct p {
    int32_t id;
    uint32_t status;       /* enum pstatus; atomic (syscall <-> idle by CAS) */
    uint32_t schedtick;    /* incremented on every scheduler call */
    uint32_t syscalltick;  /* incremented on every syscall */
    uint32_t must_sched;   /* nonzero: leave the fast path (preempt, retire, exit, stw) */
    uint32_t slice_over;   /* sysmon: the time slice ran 10 ms; runnext does not inherit it */
    int32_t handoffs_left; /* more Gs that may inherit the current slice (owner only; proc.c) */
    struct {               /* sysmon's last observation */
        uint32_t schedtick, syscalltick;
        int64_t schedwhen, syscallwhen;
    } sysmontick;
    m *m;           /* the M that holds it, or NULL */
    bool stw_taken; /* stop-the-world moved it from P_SYSCALL to P_GCSTOP */
    struct p *link; /* sched.pidle */
    struct mcache *mcache;
    /* Run queue: head is advanced by CAS (consumers on any M), tail only by
     * the owner. runnext, if set, runs next, inheriting the time slice. */
    uint32_t runqhead;
    uint32_t runqtail;
    g *runq[RUNQ_SIZE];
    g *runnext;
    /* The private yield queue (proc.c): Gs that yielded while nobody could
     * steal, oldest first, linked by schedlink, all younger than those on
     * the ring. Only the P's holder changes it (and sysmon, with the
     * holder's thread stopped); others may read yqsize (relaxed). */
    g *yqhead, *yqtail;
    uint32_t yqsize;
    uint32_t yqbusy; /* the holder is changing it (for sysmon; proc.c) */
    /* Free Gs (with their stacks) and stacks. Owner only. */
    g *gfree;
    int32_t gfreecnt;
    stack_cache stackcache;
    /* Timers: a 4-ary min-heap on when, under timers_lock. timer0when is the
     * heap's first when (0: empty), read without the lock. */
    lock_t timers_lock;
    timer **timers;
    int32_t ntimers, captimers;
    int64_t timer0when;
    int64_t goidcache, goidcacheend; /* a batch of goroutine ids */
} p;

#define MAX_GOMAXPROCS 1024

/* ---- the global scheduler state ------------------------------------------- */

typedef struct schedt {
    lock_t lock;
    m *midle;               /* idle Ms */
    int32_t nmidle;         /* idle Ms waiting for work */
    int32_t nmidlelocked;   /* locked Ms waiting for their G */
    int64_t mnext;          /* Ms created (next M id) */
    int32_t nmsys;          /* system Ms not counted for deadlock (sysmon) */
    p *pidle;               /* idle Ps */
    uint32_t npidle;        /* atomic */
    uint32_t nmspinning;    /* atomic */
    g *runqhead, *runqtail; /* the global run queue */
    int32_t runqsize;
    int32_t gomaxprocs; /* atomic reads */
    int32_t nallp;      /* Ps ever made (allp[0..nallp)) */
    uint64_t goidgen;
    int32_t ngoroutines; /* live user goroutines; atomic */
    bool main_goexited;  /* the main goroutine called gort_exit */
    uint32_t exiting;    /* gort_main is returning: Ms park for good */
    bool main_done;
    int main_result;
    /* The M sleeping until the next timer, if any (not on midle). */
    uint32_t tsleep_seq;  /* futex word: bumped to kick it */
    uint32_t tsleeping;   /* 1 while an M sleeps on tsleep_seq */
    int64_t tsleep_until; /* when it will wake on its own */
    uint32_t tsleep_poll; /* ... and it sleeps in the poller (sched_netpoll), not on the futex */
    int32_t external_waiters; /* goroutines that a non-scheduler source will wake (netpoll) */
    int64_t lastpoll;         /* nanotime of the latest poll of the network (sysmon's 10 ms rule) */
    int32_t sysmon_holding;   /* runnable Gs sysmon has taken from a P and not yet queued */
    uint32_t deadlock_suspect; /* checkdead found a deadlock but for foreign threads */
    int32_t nmfreed;           /* Ms that no longer exist (a forked child's; Go's) */
    uint32_t forkwait;         /* futex word: 1 while a fork waits for Ms to park (proc.c) */
    uint32_t forkparked;       /* futex word: Ms parked for a fork */
    uint32_t sysmon_needed;    /* a forked child starts sysmon at its next schedule() */
    bool main_lost;            /* a forked child lost its main goroutine (it ran elsewhere) */
    bool m0_gone;              /* a forked child has no m0 (gort_main's thread) */
    lock_t gflock;
    g *gfree;      /* global free Gs */
    g *gfree_tail; /* its last G (the trimmer appends there) */
    int32_t ngfree;
    uint64_t gfree_taken; /* Gs taken from gfree for reuse, ever (under gflock) */
    int64_t starttime;
} schedt;

extern schedt sched;
extern p *allp[MAX_GOMAXPROCS];
extern __thread m *tls_m __attribute__((tls_model("initial-exec")));

/* ---- sudog ------------------------------------------------------------------ */

/* A goroutine waiting in a queue (Go's sudog), on the waiter's own stack:
 * valid while the goroutine is parked, so blocking allocates nothing.
 * Channels link it in a channel's wait queue (next, prev); semaphores in a
 * semaphore root, where next links the queue heads of different addresses
 * and waitlink/waittail the waiters on one address (sync/sema.c). */
typedef struct sudog {
    struct g *g;            /* the waiting goroutine */
    struct sudog *next;     /* chan: wait queue; sema: next queue head (heads only) */
    struct sudog *prev;     /* chan: wait queue */
    void *elem;             /* chan: where to copy to (recv) or from (send), may be NULL;
                               sema: the semaphore's address */
    struct gort_chan *c;    /* chan: the channel it waits on */
    uint32_t *done;         /* select: the select's shared done word; else NULL */
    struct sudog *waitlink; /* sema: next waiter on the same address; notify list: next */
    struct sudog *waittail; /* sema: the queue's last waiter (heads only) */
    uint32_t ticket;        /* sema: 1 = handed off; notify list: the ticket */
    bool success;           /* chan: set by the waker: true = a value was passed */
    int64_t acquiretime;    /* sema: when a mutex waiter queued (mutex profile), or 0 */
} sudog;

/* ---- random numbers ---------------------------------------------------------- */

/* wyrand, as Go 1.19's fastrand, on the 64-bit state *s. */
static inline uint32_t fastrand_next(uint64_t *s) {
    *s += 0xa0761d6478bd642fULL;
    __uint128_t r = (__uint128_t)*s * (*s ^ 0xe7037ed1a0b428dbULL);
    return (uint32_t)((uint64_t)(r >> 64) ^ (uint64_t)r);
}
/* A random number from the calling thread's M (a thread-local state on
 * threads without one). Not for cryptography. */
uint32_t fastrand(void);
/* Uniform in [0, n), by Lemire's multiply-shift. */
static inline uint32_t fastrandn(uint32_t n) {
    return (uint32_t)(((uint64_t)fastrand() * n) >> 32);
}

/* ---- park / ready: the one way to block and wake goroutines --------------- */

/* Parks the calling goroutine (Go's gopark). The goroutine's status becomes
 * G_WAITING with the given wait reason, and its context is saved; then, on
 * the same M and before any other code of this goroutine can run again,
 * unlockf(gp, lock) is called (Go's parkunlock_c): typically it releases the
 * lock that protects the wait queue gp was put on. If unlockf returns false
 * the park is cancelled and gp is made runnable again. unlockf may be NULL.
 *
 * unlockf runs after the switch, on the M's g0 or on the stack of the
 * goroutine that runs next (before that goroutine's own code resumes), with
 * the M holding a P: it must not block, park, yield or allocate from the GC
 * heap; it may call sched_ready and timer_add/del/mod. A waker that finds gp
 * on a wait queue (after taking the lock) may call sched_ready(gp) and may
 * pass a word through gp->param first. Returns after some sched_ready(gp). */
void sched_park(bool (*unlockf)(g *gp, void *lock), void *lock, int reason);
/* Makes a parked goroutine runnable (Go's goready): onto the caller's P's
 * runnext when called on an M with a P, else onto the global run queue; then
 * wakes an idle P's M if there is one. gp must be G_WAITING. Any thread. */
void sched_ready(g *gp);
/* The running goroutine (NULL on g0 and on threads outside the scheduler). */
g *sched_getg(void);
/* How often sysmon gives back the unused stack pages of goroutines parked
 * that long (5 s; tests shorten it). */
extern int64_t sched_shrink_period_ns;
/* All Ms (a push-only list linked by alllink). */
m *sched_allm(void);
/* Counts goroutines that something outside the scheduler will wake (netpoll
 * waiters): while nonzero, the deadlock check stays quiet, and an idle M
 * waits for them in the poller. */
void sched_external_waiters_add(int delta);
/* gort_syscall_enter's body (its assembler stub passes the caller's
 * callee-saved registers rbx, rbp, r12-r15 and its stack pointer). */
void syscall_enter_regs(const uintptr_t *regs, uintptr_t sp);

/* Installed by the GC layer: called by gort_go with the new goroutine's
 * argument while the collector marks (the new stack starts black, so what
 * it is handed must be shaded), and by sysmon on each round (the forced
 * cycle every 2 minutes). */
extern void (*sched_gc_newproc_hook)(void *arg);
extern void (*sched_gc_sysmon_hook)(void);
/* fork (proc.c, "fork"): the GC layer's part, set by gc_init. phase 0: before
 * the world stops for the fork (wait for a cycle, hold its start); 1: the
 * world stopped and the scheduler's locks held (take the collector's
 * locks); 2: in the parent, before the world starts (release them); 3: in
 * the parent, after (release the start); 4: in the child. */
extern void (*sched_gc_fork_hook)(int phase);
/* Registers the fork handlers of the scheduler, stop-the-world, the stack
 * pool and the hook above, once (gort_main and gc_init call it): one
 * pthread_atfork triple, so that their order is the scheduler's. */
void sched_fork_register(void);
/* The main thread's frames above gort_main (the program's main()), a GC
 * root while gort_main runs; 0 before. */
extern uintptr_t sched_main_stack_lo, sched_main_stack_hi;

/* ---- the network poller's hooks (src/net installs them; NULL until then) -----
 *
 * The scheduler is below the poller (docs/HACKING.md, "Layers and hooks"), so
 * it reaches it through these two pointers, set once by the poller's first
 * use (release stores; read with acquire loads). While they are NULL the
 * scheduler never polls: a program that does no I/O pays one load.
 *
 * sched_netpoll(delay_ns, &n): waits for I/O readiness, at most delay_ns
 * (< 0: until something is ready or sched_netpoll_break; 0: does not wait),
 * and returns the goroutines it unblocked, linked by schedlink, n of them,
 * still G_WAITING: the caller makes them runnable (injectglist). Called on
 * any thread, with no lock held; several may poll at once.
 * sched_netpoll_break(): makes a sched_netpoll blocked now (or the next one
 * to block) return at once. Lock-free (one write to an eventfd). */
extern g *(*sched_netpoll)(int64_t delay_ns, int32_t *n);
extern void (*sched_netpoll_break)(void);

/* Tests only: sysmon calls it in preemptone while it holds a batch of runnable
 * Gs taken from a P and not yet queued (to widen that window). */
extern void (*sched_test_sysmon_hook)(void);
/* Tests only: handoffs_over calls it with the handing-off G just put on pp's
 * ring, before it takes the ring's head (a thief's window). */
extern void (*sched_test_handoff_hook)(struct p *pp);

/* ---- timers (time.c) ----------------------------------------------------- */

/* Arms t (not armed) to run f(arg, seq) at when, then every period ns if
 * period > 0. On the caller's P, or P 0 outside the scheduler. */
void timer_add(timer *t);
/* Disarms t. True if it was armed (it will not run unless it was already
 * running); false if it had already fired or was never armed. */
bool timer_del(timer *t);
/* Re-arms t with new fields (Go's modtimer). True if it was armed before. */
bool timer_mod(timer *t, int64_t when, int64_t period, void (*f)(void *, uintptr_t), void *arg,
               uintptr_t seq);

/* Used by proc.c. */
/* Runs pp's due timers; returns the next when (0: none) and sets *ran. */
int64_t check_timers(p *pp, int64_t now, bool *ran);
/* Moves all of src's timers to dst (src is being retired). */
void timers_move(p *src, p *dst);
/* The earliest timer over all Ps (0: none). */
int64_t timers_next_when(void);
/* A timer at when was armed: wake whoever should run it. No lock held. */
void sched_timer_armed(int64_t when);
/* Only wakes the timer sleeper if it would sleep past when; false if there
 * is none. Lock-free: callable under any lock. */
bool sched_timer_kick(int64_t when);

#endif
