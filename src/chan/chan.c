/* Channels (Go's chan.go): make, send, receive, close, len, cap.
 *
 * Algorithm. A send first looks for a parked receiver: if there is one, the
 * value is copied straight into the receiver's destination (on its stack)
 * and the receiver is readied — no trip through the buffer. Otherwise it goes
 * into the ring if there is room, otherwise the sender parks with a sudog on
 * sendq holding a pointer to its value. A receive is the mirror image: a
 * parked sender (only possible when the ring is full or there is none) hands
 * over either its value (unbuffered) or the ring's head, its value then
 * taking the freed tail slot, which keeps FIFO order. close marks the channel
 * and wakes every waiter with success = false: receivers get the zero value,
 * senders panic "send on closed channel" once they run. Buffered values are
 * still received after close; only an empty closed channel reports closed.
 *
 * Invariants (under c->lock): sendq non-empty => the ring is full (qcount ==
 * dataqsiz); recvq non-empty => the ring is empty; closed => sendq empty.
 * The non-blocking fast paths read qcount / closed / queue heads without the
 * lock, in Go's order (empty-before-closed), so a "not ready" answer is
 * linearizable at the instant of the read.
 *
 * Locks: one channel lock at a time here (select.c takes several, in address
 * order). A blocking send/recv parks with unlockf = chanparkunlock, which
 * drops c->lock after the goroutine is switched out, so a waker (which must
 * take c->lock to find the sudog) never sees a goroutine still running.
 * Wakers unlock before sched_ready. Panics release the lock first. */
#include "chan/chan.h"

#include "base/fatal.h"
#include "gc/gc.h"
#include "gort/gc.h"
#include "gort/malloc.h"

#include <string.h>

/* ---- wait queues ------------------------------------------------------------ */

void waitq_enqueue(waitq *q, sudog *sg) {
    sg->next = NULL;
    sg->prev = q->last;
    if (q->last)
        q->last->next = sg;
    else
        __atomic_store_n(&q->first, sg, __ATOMIC_RELAXED);
    q->last = sg;
}

sudog *waitq_dequeue(waitq *q) {
    for (;;) {
        sudog *sg = q->first;
        if (!sg) return NULL;
        sudog *y = sg->next;
        if (y) {
            y->prev = NULL;
            sg->next = NULL;
        } else {
            q->last = NULL;
        }
        __atomic_store_n(&q->first, y, __ATOMIC_RELAXED);
        /* A select sudog whose select another case already won: drop it; its
         * goroutine removes the rest of its sudogs itself. */
        if (sg->done && !__atomic_compare_exchange_n(sg->done, &(uint32_t){0}, 1, false,
                                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            continue;
        return sg;
    }
}

void waitq_remove(waitq *q, sudog *sg) {
    sudog *x = sg->prev, *y = sg->next;
    if (x) {
        if (y) {
            x->next = y;
            y->prev = x;
            sg->next = sg->prev = NULL;
            return;
        }
        x->next = NULL;
        q->last = x;
        sg->prev = NULL;
        return;
    }
    if (y) {
        y->prev = NULL;
        __atomic_store_n(&q->first, y, __ATOMIC_RELAXED);
        sg->next = NULL;
        return;
    }
    /* Alone on q, or already dequeued by a waker. */
    if (q->first == sg) {
        __atomic_store_n(&q->first, NULL, __ATOMIC_RELAXED);
        q->last = NULL;
    }
}

/* ---- helpers ---------------------------------------------------------------- */

void chan_block_forever(int reason) {
    if (!sched_getg()) throw("channel operation blocks forever outside a goroutine");
    for (;;) sched_park(NULL, NULL, reason); /* nobody readies it */
}

/* The write barrier of element copies (Go's typedmemmove and typedmemclr
 * in chan.go): while the collector marks, what dst held and what src holds
 * are shaded, whichever memory dst is in (a buffer slot in the heap, or
 * another goroutine's stack, which may already have been scanned: Go's
 * sendDirect). Under the channel's lock, so a stop-the-world cannot fall
 * between the barrier and the copy. src NULL: dst is being cleared. */
static inline void elem_barrier(struct gort_chan *c, const void *dst, const void *src) {
    if (__builtin_expect(gort__writebarrier != 0, 0) && c->scan != CHAN_SCAN_NONE)
        gc_shade_elem(dst, src, c->elemsize, c->scan == CHAN_SCAN_TYPED ? c->elemtype : NULL);
}

static inline void elem_copy(struct gort_chan *c, void *dst, const void *src) {
    elem_barrier(c, dst, src);
    memcpy(dst, src, c->elemsize);
}

/* A receive's zero value: clears *ep (NULL: discarded). */
static inline void chan_zero(gort_chan *c, void *ep) {
    if (ep && c->elemsize) {
        elem_barrier(c, ep, NULL);
        memset(ep, 0, c->elemsize);
    }
}

static bool chanparkunlock(g *gp, void *l) {
    (void)gp;
    unlock((lock_t *)l);
    return true;
}

/* Under c->lock, which it releases: parks the calling goroutine on q, its
 * element at elem, until a waker dequeues it. Returns the waker's verdict
 * (sudog.success: a value was passed, false: closed). Inlined into send
 * and receive: as a call, its frame and the sudog's copy through it cost
 * pingpong 5% more instructions (callgrind) and 3-5% of its time. */
static inline __attribute__((always_inline)) bool chan_wait(gort_chan *c, waitq *q, void *elem,
                                                            int reason, const char *what) {
    g *gp = sched_getg();
    if (!gp) throwf("%s would block outside a goroutine", what);
    sudog me = {.g = gp, .elem = elem, .c = c};
    gp->param = NULL;
    waitq_enqueue(q, &me);
    sched_park(chanparkunlock, &c->lock, reason);
    return me.success;
}

void chan_buf_put(struct gort_chan *c, const void *ep) {
    if (c->elemsize) elem_copy(c, chan_slot(c, c->sendx), ep);
    if (++c->sendx == c->dataqsiz) c->sendx = 0;
    __atomic_store_n(&c->qcount, c->qcount + 1, __ATOMIC_RELAXED);
}

void chan_buf_take(struct gort_chan *c, void *ep) {
    char *slot = chan_slot(c, c->recvx);
    if (c->elemsize) {
        if (ep) elem_copy(c, ep, slot);
        elem_barrier(c, slot, NULL);
        memset(slot, 0, c->elemsize); /* drop references for the GC */
    }
    if (++c->recvx == c->dataqsiz) c->recvx = 0;
    __atomic_store_n(&c->qcount, c->qcount - 1, __ATOMIC_RELAXED);
}

g *chan_send_to_waiter(struct gort_chan *c, sudog *sg, const void *ep) {
    if (sg->elem && c->elemsize) elem_copy(c, sg->elem, ep);
    sg->success = true;
    g *gp = sg->g;
    gp->param = sg;
    return gp;
}

g *chan_recv_from_waiter(struct gort_chan *c, sudog *sg, void *ep) {
    if (c->dataqsiz == 0) {
        if (ep && c->elemsize) elem_copy(c, ep, sg->elem);
    } else {
        /* The ring is full: take its head, put the sender's value in the slot
         * just freed (the tail), so FIFO order holds. */
        char *slot = chan_slot(c, c->recvx);
        if (c->elemsize) {
            if (ep) elem_copy(c, ep, slot);
            elem_copy(c, slot, sg->elem);
        }
        if (++c->recvx == c->dataqsiz) c->recvx = 0;
        c->sendx = c->recvx;
    }
    sg->success = true;
    g *gp = sg->g;
    gp->param = sg;
    return gp;
}

/* ---- make ------------------------------------------------------------------- */

/* Go's maxAlloc on 64-bit Linux: no allocation can be larger. */
#define MAX_ALLOC ((size_t)1 << 48)

/* The channel header's layout for the collector, when its buffer is a
 * separate typed object: buf is its one pointer. */
static const gort_field hchan_buf_field = {offsetof(struct gort_chan, buf), sizeof(void *)};
static const gort_type hchan_type = {sizeof(struct gort_chan),
                                     offsetof(struct gort_chan, buf) + sizeof(void *),
                                     1,
                                     &hchan_buf_field,
                                     "hchan",
                                     (uint64_t)1
                                         << (offsetof(struct gort_chan, buf) / sizeof(void *)),
                                     1};

static gort_chan *makechan(size_t elem_size, size_t cap, const gort_type *t, uint8_t scan) {
    size_t bytes;
    size_t hdr = (sizeof(struct gort_chan) + 15) & ~(size_t)15;
    /* Out of range as Go's: the buffer's size overflows or exceeds what any
     * allocation can be. A size in range that cannot be had is out of
     * memory, fatal as any runtime allocation's. */
    if (__builtin_mul_overflow(elem_size, cap, &bytes) || bytes > MAX_ALLOC - hdr)
        gopanic("makechan: size out of range");
    /* A GC object, as Go's: with the buffer after the header when nothing
     * in it needs a type (noscan, or scanned word by word), else the header
     * typed (its buf pointer) and the buffer an array of the element type. */
    struct gort_chan *c;
    if (scan != CHAN_SCAN_TYPED) {
        c = scan == CHAN_SCAN_NONE ? gort_alloc_noscan(hdr + bytes)
                                   : gort_alloc_conservative(hdr + bytes);
        if (!c) throw_oom(hdr + bytes);
        c->buf = bytes ? (char *)c + hdr : NULL;
    } else {
        c = gort_new(&hchan_type);
        void *buf = bytes ? gort_new_array(t, cap) : NULL;
        if (!c || (bytes && !buf)) throw_oom(hdr + bytes);
        c->buf = buf; /* both new: no barrier needed */
    }
    c->lock = (lock_t)LOCK_INIT;
    c->elemsize = elem_size;
    c->elemtype = t;
    c->scan = scan;
    c->dataqsiz = cap;
    return c;
}

gort_chan *gort_chan_make(size_t elem_size, size_t cap) {
    return makechan(elem_size, cap, NULL, elem_size ? CHAN_SCAN_CONSERVATIVE : CHAN_SCAN_NONE);
}

gort_chan *gort_chan_make_typed(const gort_type *elem, size_t cap) {
    if (!elem) throw("makechan: NULL element type");
    if (elem->ptrdata > elem->size) throw("makechan: bad element type");
    return makechan(elem->size, cap, elem, elem->ptrdata ? CHAN_SCAN_TYPED : CHAN_SCAN_NONE);
}

gort_chan *gort_chan_make_noscan(size_t elem_size, size_t cap) {
    return makechan(elem_size, cap, NULL, CHAN_SCAN_NONE);
}

/* A timer's channel looks unbuffered, as Go 1.23's (time_chan.c). */
size_t gort_chan_len(gort_chan *c) {
    return c && !c->timer ? __atomic_load_n(&c->qcount, __ATOMIC_RELAXED) : 0;
}

size_t gort_chan_cap(gort_chan *c) {
    return c && !c->timer ? c->dataqsiz : 0;
}

/* ---- send ------------------------------------------------------------------- */

/* Go's full(): a send cannot proceed now (closed aside). No lock. */
static inline bool chan_full(struct gort_chan *c) {
    if (c->dataqsiz == 0) return __atomic_load_n(&c->recvq.first, __ATOMIC_RELAXED) == NULL;
    return __atomic_load_n(&c->qcount, __ATOMIC_RELAXED) == c->dataqsiz;
}

/* Go's empty(): a receive cannot proceed now (closed aside). No lock. */
static inline bool chan_empty(struct gort_chan *c) {
    if (c->dataqsiz == 0) return __atomic_load_n(&c->sendq.first, __ATOMIC_RELAXED) == NULL;
    return __atomic_load_n(&c->qcount, __ATOMIC_RELAXED) == 0;
}

static bool chansend(gort_chan *c, const void *ep, bool block) {
    if (!c) {
        if (!block) return false;
        chan_block_forever(WAIT_REASON_CHAN_SEND_NIL_CHAN);
    }
    if (!ep && c->elemsize) throw("chan send: NULL elem with a non-zero element size");
    /* Fast path: not closed and full means no send possible right now. */
    if (!block && !__atomic_load_n(&c->closed, __ATOMIC_RELAXED) && chan_full(c)) return false;

    lock(&c->lock);
    if (c->closed) {
        unlock(&c->lock);
        gopanic("send on closed channel");
    }
    sudog *sg = waitq_dequeue(&c->recvq);
    if (sg) {
        g *gp = chan_send_to_waiter(c, sg, ep);
        unlock(&c->lock);
        sched_ready(gp);
        return true;
    }
    if (c->qcount < c->dataqsiz) {
        chan_buf_put(c, ep);
        unlock(&c->lock);
        return true;
    }
    if (!block) {
        unlock(&c->lock);
        return false;
    }
    /* Woken by a receiver (success) or by close. */
    if (!chan_wait(c, &c->sendq, (void *)ep, WAIT_REASON_CHAN_SEND, "chan send"))
        gopanic("send on closed channel");
    return true;
}

void gort_chan_send(gort_chan *c, const void *elem) {
    chansend(c, elem, true);
}

bool gort_chan_trysend(gort_chan *c, const void *elem) {
    return chansend(c, elem, false);
}

/* ---- receive ---------------------------------------------------------------- */

/* Returns selected (a receive happened); *received false = closed. */
static bool chanrecv(gort_chan *c, void *ep, bool block, bool *received) {
    *received = false;
    if (!c) {
        if (!block) return false;
        chan_block_forever(WAIT_REASON_CHAN_RECEIVE_NIL_CHAN);
    }
    if (!block && chan_empty(c)) {
        /* Go's order: observe empty, then closed, then empty again: a channel
         * closed after our first look may have been filled before closing. */
        if (!__atomic_load_n(&c->closed, __ATOMIC_ACQUIRE)) return false;
        if (chan_empty(c)) {
            chan_zero(c, ep);
            return true;
        }
    }

    lock(&c->lock);
    if (c->closed && c->qcount == 0) {
        unlock(&c->lock);
        chan_zero(c, ep);
        return true;
    }
    sudog *sg = waitq_dequeue(&c->sendq);
    if (sg) {
        g *gp = chan_recv_from_waiter(c, sg, ep);
        unlock(&c->lock);
        sched_ready(gp);
        *received = true;
        return true;
    }
    if (c->qcount > 0) {
        chan_buf_take(c, ep);
        unlock(&c->lock);
        *received = true;
        return true;
    }
    if (!block) {
        unlock(&c->lock);
        return false;
    }
    /* The waker copied the value (or close zeroed it). */
    *received = chan_wait(c, &c->recvq, ep, WAIT_REASON_CHAN_RECEIVE, "chan receive");
    return true;
}

bool gort_chan_recv(gort_chan *c, void *elem) {
    bool received;
    chanrecv(c, elem, true, &received);
    return received;
}

bool gort_chan_tryrecv(gort_chan *c, void *elem, bool *ok) {
    bool received;
    bool selected = chanrecv(c, elem, false, &received);
    if (ok) *ok = received;
    return selected;
}

/* ---- close ------------------------------------------------------------------ */

void gort_chan_close(gort_chan *c) {
    if (!c) gopanic("close of nil channel");
    lock(&c->lock);
    if (c->closed) {
        unlock(&c->lock);
        gopanic("close of closed channel");
    }
    __atomic_store_n(&c->closed, 1, __ATOMIC_RELEASE);
    /* Collect every waiter (linked through their now free next fields), then
     * ready them after unlocking. A sudog lives on its goroutine's stack, so
     * read the link before readying the goroutine. */
    sudog *list = NULL, *sg;
    while ((sg = waitq_dequeue(&c->recvq))) {
        chan_zero(c, sg->elem);
        sg->success = false;
        sg->g->param = sg;
        sg->next = list;
        list = sg;
    }
    while ((sg = waitq_dequeue(&c->sendq))) {
        sg->success = false;
        sg->g->param = sg;
        sg->next = list;
        list = sg;
    }
    unlock(&c->lock);
    while (list) {
        sudog *next = list->next;
        sched_ready(list->g);
        list = next;
    }
}
