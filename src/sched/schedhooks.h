/* The scheduler's profiling and tracing hooks (src/prof installs them):
 * the execution trace's events, the block profile's timings and the
 * scheduling-latency histogram (runtime/metrics' /sched/latencies).
 *
 * The scheduler calls sched_hook_* at its transitions (create, start,
 * park, ready, yield, preempt, exit, syscall, P acquire/release), each
 * behind one relaxed load of sched_hooks_on: a program that does not link
 * the profiler pays that load and a branch. What the hooks measure:
 * - TRACE: every event, to the tracer (sched_hooks.event);
 * - BLOCK: the time from a park to the ready that ends it, for parks on
 *   channels, select, sync and I/O (Go's blockevent), reported on the
 *   blocked goroutine's own stack once it runs again (sched_hooks.block);
 * - LATENCY: for one in 8 readies and creations of each goroutine, the time
 *   from runnable to running (Go's tracking of every 8th transition),
 *   reported to sched_hooks.latency.
 * Hooks run where the transition happens: on g0, on a goroutine's stack
 * inside the switch (after_switch), in a signal-free context; they must not
 * block, park or allocate from the GC heap. */
#ifndef GORT_SCHED_SCHEDHOOKS_H
#define GORT_SCHED_SCHEDHOOKS_H

#include "base/atomic.h"
#include "sched/runtime2.h"

#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define sched_hook_create  gort__sched_hook_create
#define sched_hook_event   gort__sched_hook_event
#define sched_hook_park    gort__sched_hook_park
#define sched_hook_ready   gort__sched_hook_ready
#define sched_hook_start   gort__sched_hook_start
#define sched_hook_unpark  gort__sched_hook_unpark
#define sched_hooks        gort__sched_hooks
#define sched_hooks_on     gort__sched_hooks_on
#define sched_block_reason gort__sched_block_reason

enum {
    SCHED_HOOK_TRACE = 1,
    SCHED_HOOK_BLOCK = 2,
    SCHED_HOOK_LATENCY = 4,
};

/* Trace events (the tracer's arg in parentheses). */
enum sched_ev {
    SEV_GO_CREATE,  /* gp created by the running goroutine (its start pc) */
    SEV_GO_START,   /* gp starts running on mp's P */
    SEV_GO_BLOCK,   /* the running gp parks (wait reason) */
    SEV_GO_UNBLOCK, /* gp made runnable (by the running goroutine, if any) */
    SEV_GO_YIELD,   /* gp yields (gort_yield) */
    SEV_GO_PREEMPT, /* gp yields because sysmon asked */
    SEV_GO_END,     /* gp exits */
    SEV_GO_SYSCALL, /* gp enters a syscall (gort_syscall_enter) */
    SEV_GO_SYSEXIT, /* gp is back from it */
    SEV_PROC_START, /* mp takes P arg */
    SEV_PROC_STOP,  /* mp gives up P arg */
    SEV_STW_START,  /* the world is being stopped (arg: the reason, a constant string) */
    SEV_STW_DONE,   /* and started again */
    SEV_COUNT
};

typedef struct sched_hook_table {
    void (*event)(int ev, g *gp, m *mp, uintptr_t arg);
    void (*block)(g *gp, int reason, int64_t ns);
    void (*latency)(int64_t ns);
} sched_hook_table;

extern uint32_t sched_hooks_on; /* SCHED_HOOK_* bits */
extern sched_hook_table sched_hooks;

/* Whether a park for this reason counts as blocking (Go's block profile:
 * channels, select, sync, and here I/O too; not sleep or the runtime's own). */
bool sched_block_reason(int reason);

void sched_hook_create(g *gp, m *mp);
void sched_hook_start(m *mp, g *gp);
void sched_hook_park(g *gp, m *mp, int reason);
void sched_hook_unpark(g *gp);
void sched_hook_ready(g *gp, uint32_t on, bool track);
void sched_hook_event(int ev, g *gp, m *mp, uintptr_t arg);

static inline uint32_t sched_hooks_active(void) {
    return atomic_load_relaxed(&sched_hooks_on);
}

/* At every ready (ready_status): the latency bit alone costs a counter. */
static inline void sched_hook_on_ready(g *gp) {
    uint32_t on = atomic_load_relaxed(&sched_hooks_on);
    if (__builtin_expect(on == 0, 1)) return;
    bool track = (on & SCHED_HOOK_LATENCY) && (++gp->trackseq & 7) == 0;
    if (track || (on & ~(uint32_t)SCHED_HOOK_LATENCY)) sched_hook_ready(gp, on, track);
}

/* When gp starts running: a tracked latency, or the tracer. */
static inline void sched_hook_on_start(m *mp, g *gp) {
    if (__builtin_expect(
            (gp->runnable_since | (atomic_load_relaxed(&sched_hooks_on) & SCHED_HOOK_TRACE)) != 0,
            0))
        sched_hook_start(mp, gp);
}

/* A trace-only event. */
static inline void sched_hook_trace(int ev, g *gp, m *mp, uintptr_t arg) {
    if (__builtin_expect(atomic_load_relaxed(&sched_hooks_on) & SCHED_HOOK_TRACE, 0)) {
        void (*f)(int, g *, m *, uintptr_t) = atomic_load_relaxed(&sched_hooks.event);
        if (f) f(ev, gp, mp, arg);
    }
}

#endif
