/* Timer channels (Go's time/sleep.go and time/tick.go over runtime timers):
 * gort_after, gort_timer_*, gort_ticker_new, with Go 1.23's semantics.
 *
 * A gort_timer is a runtime timer (sched/runtime2.h) plus a channel that
 * carries int64 values. The timer's callback runs on an M with a P and no
 * lock held; it sends gort_nanotime() without blocking (Go's sendTime): if
 * the previous value was not received, the new one is dropped, so a slow
 * reader of a ticker sees ticks skipped, never piled up.
 *
 * Go 1.23: the channel is synchronous in effect. It has one slot (so that
 * the send never blocks the timer code), but len and cap report 0, and once
 * gort_timer_stop or gort_timer_reset returns, no value from before the
 * call can be received: the call drops a value still in the slot, and every
 * stop and reset bumps the timer's generation (seq), so that a firing
 * already taken from the heap when the call came (its callback about to
 * run) sends nothing. Stop and reset return true when they kept a value
 * from being received (the timer was armed, or its value was still in the
 * slot; for a ticker, whether it was ticking).
 *
 * Concurrency: tm->lock serializes stop, reset and the callback's send, so
 * any number of goroutines and plain threads may call them on one timer at
 * once (Go's are safe the same way). Lock order: tm->lock, then a P's
 * timers_lock (timer_del/timer_add) or the channel's lock, then sched.lock.
 * check_timers calls the callback with no lock held.
 *
 * Durations saturate: the deadline now + ns is capped at INT64_MAX, which
 * never comes (gort_after(INT64_MAX) never fires); ns <= 0 fires at once.
 *
 * A gort_timer is a GC object, scanned conservatively: while armed, the
 * timer heaps (a GC root) keep it, and it keeps its channel; otherwise the
 * program's reference does. gort_after's, which nobody else refers to, is
 * collected after it fired (its channel stays with the caller). */
#include "chan/chan.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "gort/gc.h"
#include "gort/sched.h"

#include <string.h>

struct gort_timer {
    lock_t lock; /* stop, reset and the callback's send */
    timer t;     /* the runtime timer; t.arg is this gort_timer, t.seq the arming's seq */
    gort_chan *c;
    uintptr_t seq; /* bumped by every stop and reset (under lock) */
    bool ticker;
};

/* now + ns, capped at INT64_MAX (never); ns <= 0 is now. */
static int64_t deadline(int64_t ns) {
    int64_t now = gort_nanotime();
    if (ns <= 0) return now;
    return ns > INT64_MAX - now ? INT64_MAX : now + ns;
}

/* Timers need the scheduler's heaps and Ms. */
static void need_scheduler(const char *what) {
    if (atomic_load_acq(&sched.nallp) == 0)
        throwf("%s: timers need the scheduler: call gort_main first", what);
}

/* Go's sendTime, for a firing of arming seq. */
static void sendtime(void *arg, uintptr_t seq) {
    struct gort_timer *tm = arg;
    lock(&tm->lock);
    if (seq == tm->seq) {
        int64_t now = gort_nanotime();
        gort_chan_trysend(tm->c, &now);
    }
    unlock(&tm->lock);
}

/* gort_after's one-shot: nothing can stop or reset it (no lock needed). */
static void sendtime_once(void *arg, uintptr_t seq) {
    (void)seq;
    struct gort_timer *tm = arg;
    int64_t now = gort_nanotime();
    gort_chan_trysend(tm->c, &now);
}

static struct gort_timer *newtimer(int64_t ns, int64_t period, void (*f)(void *, uintptr_t)) {
    struct gort_timer *tm = gort_alloc_conservative(sizeof *tm); /* zeroed */
    if (!tm) throw_oom(sizeof *tm);
    tm->lock = (lock_t)LOCK_INIT;
    tm->c = gort_chan_make_noscan(sizeof(int64_t), 1); /* both new: no barrier */
    tm->c->timer = 1;
    tm->ticker = period > 0;
    tm->t.when = deadline(ns);
    tm->t.period = period;
    tm->t.f = f;
    tm->t.arg = tm;
    timer_add(&tm->t);
    return tm;
}

gort_chan *gort_after(int64_t ns) {
    need_scheduler("gort_after");
    return newtimer(ns, 0, sendtime_once)->c;
}

gort_timer *gort_timer_new(int64_t ns) {
    need_scheduler("gort_timer_new");
    return newtimer(ns, 0, sendtime);
}

gort_timer *gort_ticker_new(int64_t period_ns) {
    if (period_ns <= 0) gopanic("non-positive interval for NewTicker");
    need_scheduler("gort_ticker_new");
    return newtimer(period_ns, period_ns, sendtime);
}

gort_chan *gort_timer_chan(gort_timer *t) {
    PANIC_IF_NIL(t);
    return t->c;
}

/* Under tm->lock: disarms tm and drops a value still in its channel; true
 * if that kept a value from being received (see the file comment). */
static bool disarm(struct gort_timer *tm) {
    tm->seq++; /* a firing taken from the heap before this sends nothing */
    bool pending = timer_del(&tm->t);
    bool drained = gort_chan_tryrecv(tm->c, NULL, NULL);
    return pending || (drained && !tm->ticker);
}

bool gort_timer_stop(gort_timer *t) {
    PANIC_IF_NIL(t);
    lock(&t->lock);
    bool pending = disarm(t);
    unlock(&t->lock);
    return pending;
}

bool gort_timer_reset(gort_timer *t, int64_t ns) {
    PANIC_IF_NIL(t);
    if (t->ticker && ns <= 0) gopanic("non-positive interval for Ticker.Reset");
    lock(&t->lock);
    bool pending = disarm(t);
    t->t.when = deadline(ns);
    t->t.period = t->ticker ? ns : 0;
    t->t.f = sendtime;
    t->t.arg = t;
    t->t.seq = t->seq;
    timer_add(&t->t);
    unlock(&t->lock);
    return pending;
}
