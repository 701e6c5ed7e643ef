/* Channels: the internal structures shared by chan.c, select.c and
 * time_chan.c (Go's hchan, sudog and waitq from chan.go / runtime2.go).
 *
 * A channel is one block: the hchan header followed by its ring buffer
 * (dataqsiz elements of elemsize bytes). Everything in it is protected by
 * its lock, except that qcount, closed and the queue heads are also read
 * without the lock (atomically) by the non-blocking fast paths and by len.
 *
 * A sudog is one goroutine waiting on one channel. It lives on the waiting
 * goroutine's own stack (gort's stacks never move), so enqueueing costs no
 * allocation; it is valid while the goroutine is parked, and whoever touches
 * it holds the lock of the channel whose queue it is on. A select puts one
 * sudog per case on each queue; they share the select's `done` word (Go's
 * g.selectDone): a waker that dequeues a select sudog must win the CAS of
 * *done from 0 to 1, else it drops the sudog (another case already won).
 *
 * Lock order: channel locks in address order (select.c locks several that
 * way); a channel lock is never held across sched_park except through the
 * park's unlockf, which releases it after the switch. Timer and scheduler
 * locks are never taken with a channel lock held, except sched_ready's run
 * queue paths, which only ever take sched.lock (a later lock). */
#ifndef GORT_CHAN_CHAN_H
#define GORT_CHAN_CHAN_H

#include "base/lock.h"
#include "sched/runtime2.h"

#include "gort/chan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define chan_block_forever    gort__chan_block_forever
#define chan_buf_put          gort__chan_buf_put
#define chan_buf_take         gort__chan_buf_take
#define chan_recv_from_waiter gort__chan_recv_from_waiter
#define chan_send_to_waiter   gort__chan_send_to_waiter
#define waitq_dequeue         gort__waitq_dequeue
#define waitq_enqueue         gort__waitq_enqueue
#define waitq_remove          gort__waitq_remove

typedef struct waitq {
    sudog *first;
    sudog *last;
} waitq;

/* How a channel's buffer is to be scanned, after the make variant. */
enum {
    CHAN_SCAN_CONSERVATIVE, /* gort_chan_make: every word may be a pointer */
    CHAN_SCAN_TYPED,        /* gort_chan_make_typed: elemtype's pointer words */
    CHAN_SCAN_NONE,         /* gort_chan_make_noscan, and pointer-free types */
};

/* Go's hchan: a GC object (chan.c's makechan): the header and the buffer in
 * one noscan or conservative object, or a typed header pointing to a typed
 * buffer array. Element copies go through the write barrier while the
 * collector marks (chan.c's elem_copy). */
struct gort_chan {
    lock_t lock;
    uint32_t closed;           /* nonzero once closed; written under lock, read atomically */
    size_t qcount;             /* elements in the buffer; written under lock, read atomically */
    size_t dataqsiz;           /* capacity of the ring */
    size_t elemsize;           /* bytes per element (0 allowed) */
    const gort_type *elemtype; /* gort_chan_make_typed's, else NULL */
    uint8_t scan;              /* CHAN_SCAN_*: how the GC is to scan the buffer */
    uint8_t timer;             /* a timer's channel (time_chan.c): len and cap report 0 */
    size_t sendx;              /* next slot to send into */
    size_t recvx;              /* next slot to receive from */
    char *buf;                 /* the ring (right after the header), NULL when no bytes */
    waitq recvq;               /* blocked receivers */
    waitq sendq;               /* blocked senders */
};

static inline char *chan_slot(struct gort_chan *c, size_t i) {
    return c->buf + i * c->elemsize;
}

void waitq_enqueue(waitq *q, sudog *sg);
/* The first waiter that may be woken (select sudogs whose select was already
 * won are dropped), unlinked; NULL if none. Under the channel's lock. */
sudog *waitq_dequeue(waitq *q);
/* Unlinks sg if it is still on q (select.c, after the wake). */
void waitq_remove(waitq *q, sudog *sg);

/* Hand-offs, under c->lock, as Go's send/recv: copy between ep and the waiting
 * goroutine (and the ring), mark sg successful and publish it in g->param.
 * They return the goroutine to sched_ready once the caller has unlocked. */
g *chan_send_to_waiter(struct gort_chan *c, sudog *sg, const void *ep);
g *chan_recv_from_waiter(struct gort_chan *c, sudog *sg, void *ep);
/* Buffer operations under c->lock (the caller checked room / a value). */
void chan_buf_put(struct gort_chan *c, const void *ep);
void chan_buf_take(struct gort_chan *c, void *ep);

/* Parks the calling goroutine forever (nil channel, select {}): the deadlock
 * detector reports it when nothing else can run. */
__attribute__((noreturn)) void chan_block_forever(int reason);

#endif
