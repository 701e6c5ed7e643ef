/* The scheduler's profiling and tracing hooks (schedhooks.h): the work
 * behind the one-load checks in proc.c. Times are nanotime; each function
 * runs only while its bit is on. */
#include "sched/schedhooks.h"

#include "base/nanotime.h"

uint32_t sched_hooks_on;
sched_hook_table sched_hooks;
uint64_t sched_trace_clock;
__thread trace_buf *tls_trace_buf __attribute__((tls_model("initial-exec")));
__thread uint64_t tls_trace_seen __attribute__((tls_model("initial-exec")));

bool sched_block_reason(int reason) {
    switch (reason) {
    case WAIT_REASON_CHAN_RECEIVE:
    case WAIT_REASON_CHAN_SEND:
    case WAIT_REASON_SELECT:
    case WAIT_REASON_SEMACQUIRE:
    case WAIT_REASON_SYNC_COND_WAIT:
    case WAIT_REASON_SYNC_MUTEX_LOCK:
    case WAIT_REASON_SYNC_RWMUTEX_RLOCK:
    case WAIT_REASON_SYNC_RWMUTEX_LOCK:
    case WAIT_REASON_SYNC_WAITGROUP_WAIT:
    case WAIT_REASON_IO_WAIT:
        return true;
    default:
        return false;
    }
}

void sched_hook_create(g *gp, m *mp) {
    uint32_t on = atomic_load_relaxed(&sched_hooks_on);
    if (on & SCHED_HOOK_LATENCY) {
        gp->trackseq = 0;
        gp->runnable_since = nanotime(); /* a new goroutine's first wait is tracked */
    }
    if (on & SCHED_HOOK_TRACE) {
        g *cur = mp ? mp->curg : NULL;
        sched_trace_ext(TK_GO_CREATE, gp->goid, 0, trace_pid(mp), (uint64_t)(uintptr_t)gp->fn,
                        cur ? (uint64_t)cur->goid : 0);
    }
}

/* A tracked latency ends (the trace's start is sched_hook_on_start's). */
void sched_hook_start(m *mp, g *gp) {
    (void)mp;
    int64_t since = gp->runnable_since;
    if (since) {
        gp->runnable_since = 0;
        void (*f)(int64_t) = atomic_load_acq(&sched_hooks.latency);
        int64_t d = nanotime() - since;
        if (f && d >= 0) f(d);
    }
}

/* The block profile's part of a park (the trace's event is switch_out's). */
void sched_hook_park(g *gp, m *mp, int reason) {
    (void)mp;
    uint32_t on = atomic_load_relaxed(&sched_hooks_on);
    gp->releasetime = 0;
    gp->blockstart = (on & SCHED_HOOK_BLOCK) && sched_block_reason(reason) ? nanotime() : 0;
}

void sched_hook_unpark(g *gp) {
    int64_t t0 = gp->blockstart;
    if (!t0) return;
    gp->blockstart = 0;
    int64_t t1 = gp->releasetime ? gp->releasetime : nanotime();
    void (*f)(g *, int, int64_t) = atomic_load_acq(&sched_hooks.block);
    if (f && t1 >= t0) f(gp, gp->waitreason, t1 - t0);
}

/* The block profile's and the latency's part of a ready (the trace's
 * event is sched_hook_on_ready's). */
void sched_hook_ready(g *gp, uint32_t on, bool track) {
    (void)on;
    if (gp->blockstart) gp->releasetime = nanotime();
    if (track) gp->runnable_since = nanotime();
}
