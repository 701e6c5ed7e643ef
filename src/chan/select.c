/* select (Go's select.go): gort_select over send and receive cases.
 *
 * Algorithm, as Go's selectgo:
 *  1. pollorder: a random permutation (fastrand) of the cases whose channel
 *     is not NULL — NULL channels are never chosen; lockorder: the same cases
 *     sorted by channel address (heap sort), so that every select locks its
 *     channels in one global order (duplicates are locked once).
 *  2. Lock all; walk pollorder and take the first case that can proceed now
 *     (a parked peer, buffer room / a buffered value, or a closed channel).
 *  3. None, and !block: unlock, return -1.
 *  4. Otherwise enqueue one sudog per case (they live in this frame and share
 *     this select's `done` word), park once; the park's unlockf releases the
 *     locks in lockorder after the switch.
 *  5. The waker dequeued one sudog, won the CAS on `done`, did the transfer
 *     and set g->param to that sudog. Relock all, unlink every other sudog
 *     from its queue (wakers that lost the CAS already dropped theirs), unlock.
 *
 * The unlockf may overlap with the woken goroutine running on another M (a
 * waker can find our sudog as soon as the first channel is unlocked). That is
 * safe because the goroutine must relock every channel before it can leave
 * this frame, and selparkunlock reads nothing of the frame after its last
 * unlock (Go's selparkcommit makes the same argument). */
#include "chan/chan.h"

#include "base/fatal.h"
#include "gort/malloc.h"

#include <string.h>

#define SELECT_STACK_CASES 8 /* up to this many cases: no allocation */

typedef struct selstate {
    gort_case *cases;
    uint16_t *lockorder;
    int nlock; /* entries of lockorder (non-NULL cases) */
} selstate;

static void sellock(selstate *s) {
    struct gort_chan *last = NULL;
    for (int i = 0; i < s->nlock; i++) {
        struct gort_chan *c = s->cases[s->lockorder[i]].c;
        if (c != last) lock(&c->lock);
        last = c;
    }
}

static void selunlock(selstate *s) {
    /* Go unlocks in reverse; any order is deadlock-free. */
    for (int i = s->nlock - 1; i >= 0; i--) {
        struct gort_chan *c = s->cases[s->lockorder[i]].c;
        if (i > 0 && s->cases[s->lockorder[i - 1]].c == c) continue;
        unlock(&c->lock);
    }
}

/* The park's unlockf: after the first unlock the goroutine may already be
 * running elsewhere, but it cannot leave its frame before taking the lock we
 * unlock last; so read the next channel before each unlock and touch nothing
 * after the final one. */
static bool selparkunlock(g *gp, void *arg) {
    (void)gp;
    selstate *s = arg;
    gort_case *cases = s->cases;
    uint16_t *order = s->lockorder;
    int n = s->nlock;
    struct gort_chan *c = cases[order[0]].c;
    for (int i = 1; i < n; i++) {
        struct gort_chan *next = cases[order[i]].c;
        if (next != c) {
            unlock(&c->lock);
            c = next;
        }
    }
    unlock(&c->lock);
    return true;
}

/* Heap sort of lockorder by channel address (Go's; O(n log n), no recursion). */
static void sortlocks(gort_case *cases, uint16_t *lo, int n) {
    for (int i = 0; i < n; i++) {
        int j = i;
        uint16_t k = lo[i];
        uintptr_t ck = (uintptr_t)cases[k].c;
        while (j > 0 && (uintptr_t)cases[lo[(j - 1) / 2]].c < ck) {
            lo[j] = lo[(j - 1) / 2];
            j = (j - 1) / 2;
        }
        lo[j] = k;
    }
    for (int i = n - 1; i >= 0; i--) {
        uint16_t k = lo[i];
        uintptr_t ck = (uintptr_t)cases[k].c;
        lo[i] = lo[0];
        int j = 0;
        for (;;) {
            int a = j * 2 + 1;
            if (a >= i) break;
            if (a + 1 < i && (uintptr_t)cases[lo[a]].c < (uintptr_t)cases[lo[a + 1]].c) a++;
            if (ck < (uintptr_t)cases[lo[a]].c) {
                lo[j] = lo[a];
                j = a;
                continue;
            }
            break;
        }
        lo[j] = k;
    }
}

int gort_select(gort_case *cases, int n, bool block) {
    if (n < 0) throw("select: negative number of cases");
    if (n > 65535) throw("select: too many cases");
    if (n > 0) PANIC_IF_NIL(cases);
    uint16_t pollbuf[SELECT_STACK_CASES], lockbuf[SELECT_STACK_CASES];
    sudog sgbuf[SELECT_STACK_CASES];
    uint16_t *pollorder = pollbuf, *lockorder = lockbuf;
    sudog *sgs = sgbuf;
    void *heap = NULL;
    if (n > SELECT_STACK_CASES) {
        size_t bytes = (size_t)n * (2 * sizeof(uint16_t) + sizeof(sudog)) + 16;
        heap = gort_malloc(bytes);
        if (!heap) throw_oom(bytes);
        sgs = heap;
        pollorder = (uint16_t *)(sgs + n);
        lockorder = pollorder + n;
    }

    /* 1. Orders. */
    int norder = 0;
    for (int i = 0; i < n; i++) {
        if (!cases[i].c) continue;
        if (cases[i].dir != GORT_SEND && cases[i].dir != GORT_RECV)
            throw("select: bad case direction");
        if (cases[i].dir == GORT_SEND && !cases[i].elem && cases[i].c->elemsize)
            throw("chan send: NULL elem with a non-zero element size");
        uint32_t j = fastrandn((uint32_t)norder + 1);
        pollorder[norder] = pollorder[j];
        pollorder[j] = (uint16_t)i;
        norder++;
    }
    if (norder == 0) {
        if (heap) gort_free(heap);
        if (!block) return -1;
        chan_block_forever(n == 0 ? WAIT_REASON_SELECT_NO_CASES : WAIT_REASON_SELECT);
    }
    memcpy(lockorder, pollorder, (size_t)norder * sizeof(uint16_t));
    sortlocks(cases, lockorder, norder);
    selstate s = {cases, lockorder, norder};

    /* 2. First pass: a case that can proceed now. */
    sellock(&s);
    int casi = -1;
    bool recvok = false;
    g *wake = NULL;
    for (int k = 0; k < norder; k++) {
        int i = pollorder[k];
        gort_case *cs = &cases[i];
        struct gort_chan *c = cs->c;
        sudog *sg;
        if (cs->dir == GORT_RECV) {
            if ((sg = waitq_dequeue(&c->sendq))) {
                wake = chan_recv_from_waiter(c, sg, cs->elem);
                recvok = true;
            } else if (c->qcount > 0) {
                chan_buf_take(c, cs->elem);
                recvok = true;
            } else if (c->closed) {
                if (cs->elem && c->elemsize) memset(cs->elem, 0, c->elemsize);
                recvok = false;
            } else {
                continue;
            }
        } else {
            if (c->closed) {
                selunlock(&s);
                gopanic("send on closed channel");
            }
            if ((sg = waitq_dequeue(&c->recvq))) {
                wake = chan_send_to_waiter(c, sg, cs->elem);
            } else if (c->qcount < c->dataqsiz) {
                chan_buf_put(c, cs->elem);
            } else {
                continue;
            }
        }
        casi = i;
        break;
    }
    if (casi >= 0 || !block) {
        selunlock(&s);
        if (wake) sched_ready(wake);
        if (casi >= 0 && cases[casi].dir == GORT_RECV) cases[casi].ok = recvok;
        if (heap) gort_free(heap);
        return casi;
    }

    /* 4. Enqueue on every channel and park. */
    g *gp = sched_getg();
    if (!gp) throw("select would block outside a goroutine");
    uint32_t done = 0;
    for (int k = 0; k < norder; k++) {
        int i = lockorder[k];
        sudog *sg = &sgs[k];
        *sg = (sudog){.g = gp, .elem = cases[i].elem, .c = cases[i].c, .done = &done};
        waitq_enqueue(cases[i].dir == GORT_SEND ? &cases[i].c->sendq : &cases[i].c->recvq, sg);
    }
    gp->param = NULL;
    sched_park(selparkunlock, &s, WAIT_REASON_SELECT);

    /* 5. Woken: find the winner, unlink the others. */
    sellock(&s);
    sudog *won = gp->param;
    gp->param = NULL;
    bool success = false;
    for (int k = 0; k < norder; k++) {
        int i = lockorder[k];
        sudog *sg = &sgs[k];
        if (sg == won) {
            casi = i;
            success = sg->success;
        } else {
            waitq_remove(cases[i].dir == GORT_SEND ? &cases[i].c->sendq : &cases[i].c->recvq, sg);
        }
    }
    selunlock(&s);
    if (casi < 0) throw("select: woken without a winning case");
    if (heap) gort_free(heap);
    if (cases[casi].dir == GORT_SEND) {
        if (!success) gopanic("send on closed channel");
    } else {
        cases[casi].ok = success;
    }
    return casi;
}
