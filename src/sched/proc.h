/* The scheduler's internal interface between its own files: what proc.c
 * (the scheduler proper) shares with sysmon.c (the monitor thread and its
 * policies) and traceback.c (the goroutine dump). Other layers use
 * runtime2.h; nothing outside src/sched includes this header. */
#ifndef GORT_SCHED_PROC_H
#define GORT_SCHED_PROC_H

#include "base/atomic.h"
#include "sched/runtime2.h"

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define allgs                 gort__allgs
#define dump_goroutines       gort__dump_goroutines
#define globrunqputbatch      gort__globrunqputbatch
#define handoffp              gort__handoffp
#define injectglist           gort__injectglist
#define on_stack_overflow     gort__on_stack_overflow
#define on_unexpected_signal  gort__on_unexpected_signal
#define runqgrab              gort__runqgrab
#define sched_checkdead_again gort__sched_checkdead_again
#define startm                gort__startm
#define sysmon                gort__sysmon
#define trim_free_stacks      gort__trim_free_stacks
#define wakep                 gort__wakep

/* Go's forcePreemptNS: a G that has run this long is asked to yield, and a
 * P in a syscall this long is retaken. */
#define SYSMON_RETAKE_NS (10 * 1000 * 1000)

/* All user Gs ever made, push-only through alllink (acquire loads). */
extern g *allgs;

/* ---- proc.c: run queues and Ms ---- */

static inline int32_t gomaxprocs(void) {
    return atomic_load_acq(&sched.gomaxprocs);
}

static inline bool runqempty(p *pp) {
    /* Go's careful read: head, tail, runnext, then tail again. */
    for (;;) {
        uint32_t head = atomic_load_acq(&pp->runqhead);
        uint32_t tail = atomic_load_acq(&pp->runqtail);
        g *next = atomic_load_acq(&pp->runnext);
        if (tail == atomic_load_acq(&pp->runqtail)) return head == tail && next == NULL;
    }
}

/* Whether pp has no runnable G at all, its private yield queue included
 * (runqempty sees only what thieves can take). Exact for whoever holds pp
 * or owns it for the moment (sched.lock for an idle P, sysmon or handoffp
 * for a P taken from a syscall, checkdead with every M idle); a hint for
 * others. */
static inline bool runqempty_all(p *pp) {
    return atomic_load_relaxed(&pp->yqsize) == 0 && runqempty(pp);
}

static inline uint32_t runqlen(p *pp) {
    return atomic_load_acq(&pp->runqtail) - atomic_load_acq(&pp->runqhead) +
           atomic_load_relaxed(&pp->yqsize);
}

/* Under sched.lock: a linked batch head..tail of n Gs onto the global queue. */
void globrunqputbatch(g *head, g *tail, int32_t n);
/* Takes half of pp's queue into batch (a ring of RUNQ_SIZE) from batch_head.
 * Any thread. */
uint32_t runqgrab(p *pp, g **batch, uint32_t batch_head, bool steal_runnext);
/* Schedules some M to run pp (an idle P if NULL), spinning if asked (the
 * caller then already counted it in nmspinning). No lock held. */
void startm(p *pp, bool spinning);
/* Starts a spinning M if a P is idle and nobody spins. */
void wakep(void);
/* Hands off pp from a blocked M (syscall, locked wait) or from sysmon. */
void handoffp(p *pp);
/* Makes the n goroutines of list (linked by schedlink, G_WAITING, unblocked
 * by the network poller) runnable (Go's injectglist): onto mp's P's queue,
 * except as many as there are idle Ps, which go to the global queue with an
 * M started for each; all to the global queue when mp (NULL for sysmon) has
 * no P. No lock held. */
void injectglist(m *mp, g *list, int32_t n);
/* The deadlock check again (sysmon, while sched.deadlock_suspect): it was
 * quiet only because threads outside gort existed. */
void sched_checkdead_again(void);

/* The global free-G list, under sched.gflock: a queue (push at the head, the
 * stack trimmer below appends at the tail, so over its passes it reaches
 * every dead goroutine). */
static inline void gfree_push(g *gp) {
    gp->schedlink = sched.gfree;
    sched.gfree = gp;
    if (!sched.gfree_tail) sched.gfree_tail = gp;
    sched.ngfree++;
}

static inline g *gfree_pop(void) {
    g *gp = sched.gfree;
    if (gp) {
        sched.gfree = gp->schedlink;
        if (!sched.gfree) sched.gfree_tail = NULL;
        sched.ngfree--;
    }
    return gp;
}

/* ---- sysmon.c ---- */

/* The monitor thread's body (started by gort_main). */
void sysmon(void *arg);
/* Gives back the stack pages of dead goroutines on the global free list, a
 * bounded batch per call (sysmon's). */
void trim_free_stacks(void);

/* ---- traceback.c ---- */

/* Prints every goroutine's state and stack (dump_hook, on fatal errors). */
void dump_goroutines(void);
/* stack.c's overflow hook: prints the report and throws. */
__attribute__((noreturn)) void on_stack_overflow(uintptr_t addr);
/* The crash hook (stack_set_crash_hook): a fault outside any guard. */
__attribute__((noreturn)) void on_unexpected_signal(int sig, int code, uintptr_t addr);

#endif
