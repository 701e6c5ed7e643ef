/* sysmon: the monitor thread (Go's sysmon in proc.go) and the policies it
 * runs, all on its own thread without a P.
 *
 * It sleeps 20 us, doubling after 50 idle rounds up to 10 ms, and on each
 * round:
 * - starts an M when timers are overdue and nobody sleeps until them, and
 *   wakes a spinning M when the global queue has work and a P is idle;
 * - polls the network when nobody has for 10 ms and no M is blocked in the
 *   poller (Go's sysmon does: under load every P may be busy for long);
 * - retakes (retake): a P whose M has been in a syscall since its previous
 *   look (>= 20 us) is handed off, unless it has nothing to run and other
 *   Ms are looking for work anyway; a P whose G has run SYSMON_RETAKE_NS
 *   (10 ms) without the scheduler picking another G (a G that hands off
 *   to a partner through runnext keeps the slice) is preempted
 *   (preemptone): the G is asked to yield at its next preemption point, the
 *   slice ends (p->slice_over: runnext does not inherit it, proc.c), and
 *   the P's local queue, private yield queue included (and runnext once
 *   the ring is empty), moves to the global queue so that other Ms run it
 *   meanwhile, and its due timers move to the next P;
 * - every 200 ms trims the stacks of dead goroutines (trim_free_stacks), and
 *   every sched_shrink_period_ns (5 s) shrinks the stacks of goroutines
 *   parked that long (shrink_parked_stacks): our stack shrinking, as stacks
 *   cannot move (docs/design.md, "Stacks");
 * - prints a schedtrace line every GORT_GODEBUG=schedtrace=N ms;
 * - every 100 ms, while a deadlock went unreported only because threads
 *   outside gort existed, runs the deadlock check again.
 *
 * Batches sysmon takes from a P are counted in sched.sysmon_holding while
 * they are only on its stack, so that checkdead never takes them for
 * lost. */
#define _GNU_SOURCE
#include "sched/proc.h"

#include "base/env.h"
#include "base/fatal.h"
#include "base/nanotime.h"
#include "base/print.h"
#include "sched/stack.h"

#include <time.h>

/* Gives back the stack pages of dead goroutines on the global free list
 * (docs/design.md, "Stacks": pages given back for dead goroutines), keeping the
 * top STACK_KEEP bytes so that reuse does not fault. Run by sysmon, a bounded
 * batch at a time and never under the lock during the madvise calls, so that
 * goroutine exits pay nothing (a madvise per exit measured 2-3x slower spawn). */
#define TRIM_BATCH 1024

void trim_free_stacks(void) {
    g *head = NULL, *tail = NULL;
    int n = 0;
    static uint64_t taken_before;
    lock(&sched.gflock);
    /* Goroutines are being created from the list at a rate of a batch per
     * period or more: its Gs are about to be reused, and giving their pages
     * back now only costs the creator faults (and this thread's madvise
     * competes with the scheduler's threads for the CPUs: measured, a spawn
     * loop 4-5x slower while trimming, as its creator outran the goroutines
     * it made and allocated tens of thousands of new Gs). Wait for a quieter
     * period. */
    bool busy = sched.gfree_taken - taken_before >= TRIM_BATCH;
    taken_before = sched.gfree_taken;
    if (busy) {
        unlock(&sched.gflock);
        return;
    }
    while (n < TRIM_BATCH && sched.gfree) {
        g *gp = gfree_pop();
        gp->schedlink = NULL;
        if (tail)
            tail->schedlink = gp;
        else
            head = gp;
        tail = gp;
        n++;
    }
    unlock(&sched.gflock);
    if (!head) return;
    for (g *gp = head; gp; gp = gp->schedlink) {
        if (gp->stack_dirty && gp->stack.lo) stack_shrink(&gp->stack, gp->stack.hi - STACK_KEEP);
        gp->stack_dirty = false;
    }
    lock(&sched.gflock); /* back at the tail: the next pass takes others */
    if (sched.gfree_tail)
        sched.gfree_tail->schedlink = head;
    else
        sched.gfree = head;
    sched.gfree_tail = tail;
    sched.ngfree += n;
    unlock(&sched.gflock);
}

/* Takes pp's private yield queue from gp, its running hog, into the global
 * queue: only with gp's thread stopped (by the suspend signal), still
 * holding pp, and not halfway through a change of the queue (see "the
 * private yield queue"). Returns how many. */
static int32_t yq_handoff(p *pp, g *gp) {
    suspend_ctx ctx;
    atomic_xadd(&sched.sysmon_holding, 1); /* see preemptone */
    if (!sched_suspend_g(gp, &ctx)) {
        atomic_xadd(&sched.sysmon_holding, -1);
        return 0; /* it left the CPU: its switch spills */
    }
    m *mp = gp->suspended_on;
    g *head = NULL, *tail = NULL;
    int32_t n = 0;
    if (mp && mp->p == pp && mp->pend == PEND_NONE && !pp->yqbusy && pp->yqhead) {
        head = pp->yqhead;
        tail = pp->yqtail;
        n = (int32_t)pp->yqsize;
        pp->yqhead = pp->yqtail = NULL;
        atomic_store_relaxed(&pp->yqsize, 0);
    }
    sched_resume_g(gp);
    lock(&sched.lock);
    if (n) globrunqputbatch(head, tail, n);
    atomic_xadd(&sched.sysmon_holding, -1);
    unlock(&sched.lock);
    return n;
}

void (*sched_test_sysmon_hook)(void);

/* The P's running G has had it for more than 10 ms: ask it to yield, and
 * hand the P's queue to other Ms meanwhile. */
static void preemptone(p *pp) {
    m *mp = atomic_load_acq(&pp->m);
    g *gp = mp ? atomic_load_relaxed(&mp->curg) : NULL;
    if (!gp) return;
    /* Asked 10 ms ago already and still running: it reaches no preemption
     * point (a C loop), or its thread has not run (the machine is loaded). */
    bool ignored = atomic_load_relaxed(&gp->preempt);
    atomic_store_relaxed(&gp->preempt, true);
    atomic_store_relaxed(&pp->slice_over, 1);
    atomic_store_rel(&pp->must_sched, 1);
    g *batch[RUNQ_SIZE];
    /* While the batch is only on this stack, no queue holds it: an M going
     * idle meanwhile must not take the program for deadlocked (checkdead). */
    atomic_xadd(&sched.sysmon_holding, 1);
    /* Half the ring each time, and, from a G that ignored the previous
     * request, runnext once the ring is empty: a G that never reaches a
     * preemption point must not keep the G it readied from running
     * elsewhere. */
    uint32_t n = runqgrab(pp, batch, 0, ignored);
    if (n > 0 && unlikely(sched_test_sysmon_hook != NULL)) sched_test_sysmon_hook();
    lock(&sched.lock);
    if (n > 0) {
        for (uint32_t i = 0; i + 1 < n; i++) batch[i]->schedlink = batch[i + 1];
        globrunqputbatch(batch[0], batch[n - 1], (int32_t)n);
    }
    atomic_xadd(&sched.sysmon_holding, -1);
    unlock(&sched.lock);
    if (atomic_load_relaxed(&pp->yqsize) != 0) n += (uint32_t)yq_handoff(pp, gp);
    /* Its due timers would wait for it too (only a P's holder, a spinning
     * M or the timer sleeper runs a P's timers): they go to the next P,
     * whose holder, or the sleeper if it is idle, runs them. */
    int32_t np = gomaxprocs();
    int64_t when = atomic_load_relaxed(&pp->timer0when);
    if (ignored && np > 1 && when != 0 && when <= nanotime() && pp->id < np)
        timers_move(pp, allp[(pp->id + 1) % np]);
    uint32_t idle = atomic_load_relaxed(&sched.npidle);
    for (uint32_t i = 0; i < n && i < idle; i++) startm(NULL, false);
}

static void retake(int64_t now) {
    int32_t n = atomic_load_acq(&sched.nallp);
    for (int32_t i = 0; i < n; i++) {
        p *pp = allp[i];
        uint32_t s = atomic_load_acq(&pp->status);
        if (s == P_RUNNING || s == P_SYSCALL) {
            uint32_t t = atomic_load_relaxed(&pp->schedtick);
            if (pp->sysmontick.schedtick != t) {
                pp->sysmontick.schedtick = t;
                pp->sysmontick.schedwhen = now;
            } else if (s == P_RUNNING && pp->sysmontick.schedwhen + SYSMON_RETAKE_NS <= now) {
                preemptone(pp);
                pp->sysmontick.schedwhen = now; /* once per 10 ms */
            }
        }
        if (s == P_SYSCALL) {
            /* Retake a P from a syscall that has lasted a sysmon tick (>= 20 us). */
            uint32_t t = atomic_load_relaxed(&pp->syscalltick);
            if (pp->sysmontick.syscalltick != t) {
                pp->sysmontick.syscalltick = t;
                pp->sysmontick.syscallwhen = now;
                continue;
            }
            if (runqempty_all(pp) &&
                atomic_load_relaxed(&sched.nmspinning) + atomic_load_relaxed(&sched.npidle) > 0 &&
                pp->sysmontick.syscallwhen + SYSMON_RETAKE_NS > now && !pp->timer0when)
                continue;
            uint32_t st = P_SYSCALL;
            if (atomic_cas(&pp->status, &st, P_IDLE)) {
                pp->syscalltick++;
                handoffp(pp);
            }
        }
    }
}

static void schedtrace(int64_t now) {
    char buf[4096];
    size_t len = snprint(buf, sizeof buf,
                         "SCHED %lldms: gomaxprocs=%d idleprocs=%u threads=%lld "
                         "spinningthreads=%u idlethreads=%d runqueue=%d [",
                         (long long)((now - sched.starttime) / 1000000), gomaxprocs(),
                         atomic_load_relaxed(&sched.npidle), (long long)sched.mnext,
                         atomic_load_relaxed(&sched.nmspinning), sched.nmidle,
                         atomic_load_relaxed(&sched.runqsize));
    int32_t n = gomaxprocs();
    for (int32_t i = 0; i < n && len + 16 < sizeof buf; i++)
        len += snprint(buf + len, sizeof buf - len, i ? " %u" : "%u", runqlen(allp[i]));
    print("%s]\n", buf);
}

/* Stack shrinking for goroutines parked a long time (docs/design.md, "Stacks": our
 * stack shrinking, as stacks cannot move). Every SHRINK_PERIOD_NS sysmon looks
 * at up to SHRINK_BATCH goroutines (a rotating cursor over allgs, so a million
 * parked goroutines cost it a bounded slice of time); one found waiting with
 * the same park count as at its previous look has been parked at least a
 * period, and gives back the pages below its saved stack pointer. The
 * goroutine is held in G_WAITING_SHRINK meanwhile, so it cannot run (and
 * touch the pages being given back) until the madvise is done. */
#define SHRINK_BATCH 10000
int64_t sched_shrink_period_ns = (int64_t)5 * 1000 * 1000 * 1000; /* tests shorten it */

static g *shrink_cursor;

static void shrink_parked_stacks(void) {
    g *gp = shrink_cursor ? shrink_cursor : atomic_load_acq(&allgs);
    for (int n = 0; n < SHRINK_BATCH && gp; n++, gp = gp->alllink) {
        if (atomic_load_acq(&gp->status) != G_WAITING || !gp->stack.lo) continue;
        uint32_t seq = atomic_load_relaxed(&gp->parkseq) + 1;
        if (gp->shrinkseen != seq) {
            atomic_store_relaxed(&gp->waitsince, nanotime()); /* the dump's "N minutes" */
            gp->shrinkseen = seq;                             /* first look at this park */
            continue;
        }
        if (gp->shrunkseq == seq) continue; /* already done for this park */
        uint32_t old = G_WAITING;
        if (!atomic_cas(&gp->status, &old, G_WAITING_SHRINK)) continue;
        if (atomic_load_relaxed(&gp->parkseq) + 1 == seq) { /* still the same park */
            stack_shrink(&gp->stack, (uintptr_t)gp->ctx.sp);
            gp->shrunkseq = seq;
        }
        atomic_store_rel(&gp->status, G_WAITING);
    }
    shrink_cursor = gp; /* NULL: start over from the newest goroutines next time */
}

/* Go's sysmon poll: if the poller is in use, nobody has polled for 10 ms and
 * no M is blocked in it, poll without blocking and queue what it unblocked.
 * True if it found something. */
#define NETPOLL_SYSMON_NS (10 * 1000 * 1000)

static bool netpoll_overdue(int64_t now) {
    g *(*poll)(int64_t, int32_t *) = atomic_load_acq(&sched_netpoll);
    if (!poll || atomic_load_relaxed(&sched.lastpoll) + NETPOLL_SYSMON_NS > now) return false;
    if (atomic_load_relaxed(&sched.tsleeping) && atomic_load_relaxed(&sched.tsleep_poll))
        return false;
    atomic_store_relaxed(&sched.lastpoll, now);
    /* The list is only on this stack until it is queued: checkdead must not
     * take its goroutines for lost meanwhile (they no longer count as
     * waiters). */
    atomic_xadd(&sched.sysmon_holding, 1);
    int32_t n = 0;
    g *list = poll(0, &n);
    injectglist(NULL, list, n);
    atomic_xadd(&sched.sysmon_holding, -1);
    return list != NULL;
}

void sysmon(void *arg) {
    (void)arg;
    int64_t delay = 0, idle = 0, lasttrace = 0, lastshrink = nanotime(), lasttrim = lastshrink;
    int64_t lastdead = 0;
    for (;;) {
        if (idle == 0)
            delay = 20;
        else if (idle > 50)
            delay *= 2;
        if (delay > 10 * 1000) delay = 10 * 1000;
        struct timespec ts = {0, delay * 1000};
        nanosleep(&ts, NULL);
        if (atomic_load_acq(&sched.exiting)) return;
        int64_t now = nanotime();
        bool busy = false;
        /* Timers overdue and nobody to run them: start an M. */
        int64_t next = timers_next_when();
        if (next != 0 && next < now - 1000 * 1000 && !atomic_load_relaxed(&sched.tsleeping) &&
            atomic_load_relaxed(&sched.npidle) > 0) {
            startm(NULL, false);
            busy = true;
        }
        /* Queued work and idle Ps but no spinning M: wake one. */
        if (atomic_load_relaxed(&sched.runqsize) > 0 && atomic_load_relaxed(&sched.npidle) > 0 &&
            atomic_load_relaxed(&sched.nmspinning) == 0) {
            wakep();
            busy = true;
        }
        if (netpoll_overdue(now)) busy = true;
        uint32_t before = 0;
        for (int32_t i = 0; i < atomic_load_acq(&sched.nallp); i++) before += allp[i]->syscalltick;
        retake(now);
        uint32_t after = 0;
        for (int32_t i = 0; i < atomic_load_acq(&sched.nallp); i++) after += allp[i]->syscalltick;
        if (before != after) busy = true;
        idle = busy ? 0 : idle + 1;
        if (lasttrim + 200 * 1000 * 1000 <= now) {
            lasttrim = now;
            if (atomic_load_relaxed(&sched.ngfree) > 0) trim_free_stacks();
        }
        if (lastshrink + atomic_load_relaxed(&sched_shrink_period_ns) <= now) {
            lastshrink = now;
            shrink_parked_stacks();
        }
        /* Every goroutine blocked, but threads outside gort could end it:
         * once they are gone, the deadlock is reported (proc.c). */
        if (atomic_load_relaxed(&sched.deadlock_suspect) && lastdead + 100 * 1000 * 1000 <= now) {
            lastdead = now;
            sched_checkdead_again();
        }
        void (*gc_tick)(void) = sched_gc_sysmon_hook;
        if (gc_tick) gc_tick(); /* the forced GC every 2 minutes */
        int ms = opts.debug.schedtrace;
        if (ms > 0 && lasttrace + (int64_t)ms * 1000000 <= now) {
            lasttrace = now;
            schedtrace(now);
        }
    }
}
