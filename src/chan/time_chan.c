/* Timer channels (Go's time/sleep.go and time/tick.go over runtime timers):
 * gort_after, gort_timer_*, gort_ticker_new.
 *
 * A gort_timer is a runtime timer (sched/runtime2.h) plus a channel of
 * capacity 1 carrying int64 values. The timer's callback runs on an M with
 * a P and no lock held; it sends gort_nanotime() without blocking (Go's
 * sendTime): if the previous value was not received, the new one is dropped,
 * so a slow reader of a ticker sees ticks skipped, never piled up. Tickers
 * are timers with period > 0, re-armed by the timer heap itself.
 *
 * Stop and reset are Go's: stop returns whether the timer was still armed
 * (for a ticker: whether it was ticking); a value already sent stays in the
 * channel. gort_after's timer frees itself after it fires (its channel stays
 * with the caller). TODO(gc): timers and their channels become GC objects;
 * until then, a gort_timer_new/gort_ticker_new timer is never freed. */
#include "chan/chan.h"

#include "base/fatal.h"
#include "gort/malloc.h"
#include "gort/sched.h"

#include <string.h>

struct gort_timer {
    timer t; /* the runtime timer; t.arg is this gort_timer */
    gort_chan *c;
    bool ticker;
};

/* Go's sendTime. */
static void sendtime(void *arg, uintptr_t seq) {
    (void)seq;
    struct gort_timer *tm = arg;
    int64_t now = gort_nanotime();
    gort_chan_trysend(tm->c, &now);
}

/* gort_after's one-shot: after the send nothing refers to the timer. The
 * timer code reads nothing of a one-shot timer after calling its f. */
static void sendtime_once(void *arg, uintptr_t seq) {
    (void)seq;
    struct gort_timer *tm = arg;
    int64_t now = gort_nanotime();
    gort_chan_trysend(tm->c, &now);
    gort_free(tm);
}

static struct gort_timer *newtimer(int64_t ns, int64_t period, void (*f)(void *, uintptr_t)) {
    struct gort_timer *tm = gort_malloc(sizeof *tm);
    if (!tm) throw("timer: out of memory");
    memset(tm, 0, sizeof *tm);
    tm->c = gort_chan_make_noscan(sizeof(int64_t), 1);
    tm->ticker = period > 0;
    if (ns < 0) ns = 0;
    tm->t.when = gort_nanotime() + ns;
    tm->t.period = period;
    tm->t.f = f;
    tm->t.arg = tm;
    timer_add(&tm->t);
    return tm;
}

gort_chan *gort_after(int64_t ns) {
    return newtimer(ns, 0, sendtime_once)->c;
}

gort_timer *gort_timer_new(int64_t ns) {
    return newtimer(ns, 0, sendtime);
}

gort_timer *gort_ticker_new(int64_t period_ns) {
    if (period_ns <= 0) gopanic("non-positive interval for NewTicker");
    return newtimer(period_ns, period_ns, sendtime);
}

gort_chan *gort_timer_chan(gort_timer *t) {
    return t->c;
}

bool gort_timer_stop(gort_timer *t) {
    return timer_del(&t->t);
}

bool gort_timer_reset(gort_timer *t, int64_t ns) {
    if (t->ticker && ns <= 0) gopanic("non-positive interval for Ticker.Reset");
    if (ns < 0) ns = 0;
    return timer_mod(&t->t, gort_nanotime() + ns, t->ticker ? ns : 0, sendtime, t, 0);
}
