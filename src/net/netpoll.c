/* Poll descriptors: parking goroutines on fd readiness, and deadlines
 * (Go's runtime/netpoll.go). See netpoll.h for the descriptor.
 *
 * Parking (netpoll_block, Go's netpollblock). A goroutine whose system call
 * said EAGAIN moves its direction's semaphore (rg or wg) from 0 to PD_WAIT,
 * checks that the fd is not closing and no deadline has passed, and parks;
 * the park's unlockf (block_commit, after the switch) moves PD_WAIT to its
 * g, or finds that an edge, a deadline or a close came in between (they set
 * PD_READY or 0) and cancels the park. Whoever unblocks (netpoll_unblock:
 * the poller on an edge, a deadline timer, gort_close) swaps the g out by
 * CAS, so exactly one of them readies it. The waiter swaps the semaphore
 * back to 0 when it resumes and learns from the old value whether it was an
 * edge. The semaphore and the closing/expired bits (info) are written and
 * read sequentially consistent: a blocker stores PD_WAIT then reads info, an
 * unblocker stores info then reads the semaphore, so one sees the other.
 *
 * Deadlines. rd/wd are gort_set_deadline's, rc/wc the deadline of a
 * gort_fd_wait in progress; one timer per direction (on the timer heap of
 * the P that armed it) fires at the earlier of the two. Every change bumps
 * the direction's seq under the descriptor's lock, and a timer that fires
 * with an older seq does nothing (it raced a change, as in Go). A deadline
 * that passes sets its PDI_*_EXPIRED bit, which fails every operation in
 * that direction with -ETIMEDOUT until the deadline is moved.
 *
 * Waiters are counted for the scheduler (sched_external_waiters_add) from
 * the commit of a park until the unblocker takes the g: the deadlock check
 * stays quiet meanwhile, and an idle M sleeps in the poller. */
#define _GNU_SOURCE
#include "net/netpoll.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/nanotime.h"
#include "mem/fixalloc.h"

#include <errno.h>

/* The table: fd -> descriptor, in chunks made on first use. */
#define PD_CHUNK  256
#define PD_CHUNKS (PD_MAX_FDS / PD_CHUNK)

static poll_desc *pd_chunks[PD_CHUNKS];
static lock_t table_lock = LOCK_INIT;
static uint64_t net_sys; /* bytes of descriptors */

poll_desc *pd_peek(int fd) {
    if (fd < 0 || fd >= PD_CHUNK * PD_CHUNKS) return NULL;
    poll_desc *c = atomic_load_acq(&pd_chunks[fd / PD_CHUNK]);
    return c ? &c[fd % PD_CHUNK] : NULL;
}

poll_desc *pd_lookup(int fd) {
    poll_desc *pd = pd_peek(fd);
    if (likely(pd != NULL) || fd < 0 || fd >= PD_CHUNK * PD_CHUNKS) return pd;
    lock(&table_lock);
    poll_desc *c = pd_chunks[fd / PD_CHUNK];
    if (!c) {
        /* Zeroed memory is a fresh descriptor (LOCK_INIT is zero). */
        c = persistent_alloc(sizeof(poll_desc) * PD_CHUNK, 64, &net_sys);
        if (c) atomic_store_rel(&pd_chunks[fd / PD_CHUNK], c);
    }
    unlock(&table_lock);
    return c ? &c[fd % PD_CHUNK] : NULL;
}

/* ---- the semaphores ---------------------------------------------------------------- */

static inline uintptr_t *sema_of(poll_desc *pd, int mode) {
    return mode == MODE_R ? &pd->rg : &pd->wg;
}

static inline bool cas_sc(uintptr_t *p, uintptr_t *old, uintptr_t nv) {
    return __atomic_compare_exchange_n(p, old, nv, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

int pd_check(poll_desc *pd, int mode) {
    uint32_t i = __atomic_load_n(&pd->info, __ATOMIC_SEQ_CST);
    if (unlikely(i & PDI_CLOSING)) return -EBADF;
    uint32_t exp =
        mode == MODE_R ? PDI_RD_EXPIRED | PDI_RC_EXPIRED : PDI_WD_EXPIRED | PDI_WC_EXPIRED;
    if (unlikely(i & exp)) return -ETIMEDOUT;
    return 0;
}

int pd_prepare(poll_desc *pd, int mode) {
    int err = pd_check(pd, mode);
    if (err) return err;
    /* An edge that came before this store is forgotten, which is the point:
     * the system call that follows sees its data itself (the store is
     * sequentially consistent, as Go's, so that the call's reads come after
     * it). One that comes after finds 0 and sets PD_READY. */
    __atomic_store_n(sema_of(pd, mode), 0, __ATOMIC_SEQ_CST);
    return 0;
}

g *netpoll_unblock(poll_desc *pd, int mode, bool ioready) {
    uintptr_t *p = sema_of(pd, mode);
    uintptr_t old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    for (;;) {
        if (old == PD_READY) return NULL;      /* an edge is already pending */
        if (old == 0 && !ioready) return NULL; /* nobody to wake, no edge to record */
        if (cas_sc(p, &old, ioready ? PD_READY : 0))
            return old == PD_WAIT ? NULL : (g *)old; /* PD_WAIT: it sees this before parking */
    }
}

/* The park's unlockf: commit PD_WAIT -> g, or cancel the park. */
static bool block_commit(g *gp, void *arg) {
    uintptr_t old = PD_WAIT;
    if (!cas_sc(arg, &old, (uintptr_t)gp)) return false;
    sched_external_waiters_add(1);
    return true;
}

/* Go's netpollblock: true if an edge came, false if woken by a deadline or a
 * close (or with nothing: the caller rechecks). */
static bool netpoll_block(poll_desc *pd, int mode) {
    uintptr_t *p = sema_of(pd, mode);
    for (;;) {
        uintptr_t old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
        if (old == PD_READY) {
            if (cas_sc(p, &old, 0)) return true; /* consume the edge */
        } else if (old == 0) {
            if (cas_sc(p, &old, PD_WAIT)) break;
        } else {
            throw("netpoll: two goroutines wait on one fd in one direction");
        }
    }
    if (pd_check(pd, mode) == 0) sched_park(block_commit, p, WAIT_REASON_IO_WAIT);
    uintptr_t old = __atomic_exchange_n(p, 0, __ATOMIC_SEQ_CST);
    if (old > PD_WAIT) throw("netpoll: corrupted poll descriptor");
    return old == PD_READY;
}

/* ---- deadlines ---------------------------------------------------------------------- */

static void deadline_fire(poll_desc *pd, int mode, uintptr_t seq);
static void rdeadline(void *arg, uintptr_t seq) {
    deadline_fire(arg, MODE_R, seq);
}
static void wdeadline(void *arg, uintptr_t seq) {
    deadline_fire(arg, MODE_W, seq);
}

static inline bool runtime_started(void) {
    return atomic_load_acq(&allp[0]) != NULL;
}

/* Under pd->lock: re-arms mode's timer for the earlier of its deadlines that
 * have not passed, or disarms it; any timer already in flight goes stale. */
static void arm(poll_desc *pd, int mode) {
    bool r = mode == MODE_R;
    int64_t d = r ? pd->rd : pd->wd, c = r ? pd->rc : pd->wc;
    uint32_t info = pd->info;
    int64_t when = 0;
    if (d > 0 && !(info & (r ? PDI_RD_EXPIRED : PDI_WD_EXPIRED))) when = d;
    if (c > 0 && !(info & (r ? PDI_RC_EXPIRED : PDI_WC_EXPIRED)) && (when == 0 || c < when))
        when = c;
    uintptr_t seq = r ? ++pd->rseq : ++pd->wseq;
    timer *t = r ? &pd->rt : &pd->wt;
    if (!runtime_started()) { /* no timer heaps yet: pd_wait arms it later */
        if (when) atomic_store_relaxed(&pd->timers_pending, true);
        return;
    }
    if (when)
        timer_mod(t, when, 0, r ? rdeadline : wdeadline, pd, seq);
    else
        timer_del(t);
}

/* A deadline timer fired (on an M with a P, no lock held). */
static void deadline_fire(poll_desc *pd, int mode, uintptr_t seq) {
    bool r = mode == MODE_R;
    lock(&pd->lock);
    if (seq != (r ? pd->rseq : pd->wseq)) { /* stale: the deadline moved */
        unlock(&pd->lock);
        return;
    }
    int64_t now = nanotime();
    int64_t d = r ? pd->rd : pd->wd, c = r ? pd->rc : pd->wc;
    uint32_t set = 0;
    if (d > 0 && d <= now) set |= r ? PDI_RD_EXPIRED : PDI_WD_EXPIRED;
    if (c > 0 && c <= now) set |= r ? PDI_RC_EXPIRED : PDI_WC_EXPIRED;
    g *gp = NULL;
    if (set) {
        __atomic_fetch_or(&pd->info, set, __ATOMIC_SEQ_CST);
        gp = netpoll_unblock(pd, mode, false);
    } else {
        arm(pd, mode); /* early (cannot happen: the heap runs due timers only) */
    }
    unlock(&pd->lock);
    if (gp) {
        sched_external_waiters_add(-1);
        sched_ready(gp);
    }
}

int pd_set_deadline(poll_desc *pd, int mode, int64_t deadline) {
    bool r = mode == MODE_R;
    uint32_t bit = r ? PDI_RD_EXPIRED : PDI_WD_EXPIRED;
    lock(&pd->lock);
    if (pd->info & PDI_CLOSING) {
        unlock(&pd->lock);
        return -EBADF;
    }
    if (r)
        pd->rd = deadline;
    else
        pd->wd = deadline;
    g *gp = NULL;
    if (deadline > 0 && deadline <= nanotime()) {
        __atomic_fetch_or(&pd->info, bit, __ATOMIC_SEQ_CST);
        gp = netpoll_unblock(pd, mode, false);
    } else {
        __atomic_fetch_and(&pd->info, ~bit, __ATOMIC_SEQ_CST);
    }
    arm(pd, mode);
    unlock(&pd->lock);
    if (gp) {
        sched_external_waiters_add(-1);
        sched_ready(gp);
    }
    return 0;
}

void pd_set_call(poll_desc *pd, int mode, int64_t deadline) {
    bool r = mode == MODE_R;
    lock(&pd->lock);
    if (r)
        pd->rc = deadline;
    else
        pd->wc = deadline;
    __atomic_fetch_and(&pd->info, ~(r ? PDI_RC_EXPIRED : PDI_WC_EXPIRED), __ATOMIC_SEQ_CST);
    arm(pd, mode);
    unlock(&pd->lock);
}

int64_t pd_deadline(poll_desc *pd, int mode, int64_t call) {
    int64_t d = __atomic_load_n(mode == MODE_R ? &pd->rd : &pd->wd, __ATOMIC_RELAXED);
    if (d <= 0 || (call > 0 && call < d)) d = call;
    return d > 0 ? d : 0;
}

/* Deadlines set before the runtime started get their timers at the first
 * wait after it did. */
static void arm_pending(poll_desc *pd) {
    lock(&pd->lock);
    if (pd->timers_pending && runtime_started()) {
        atomic_store_relaxed(&pd->timers_pending, false);
        arm(pd, MODE_R);
        arm(pd, MODE_W);
    }
    unlock(&pd->lock);
}

/* ---- waiting, closing, new lives -------------------------------------------------- */

int pd_wait(poll_desc *pd, int fd, int mode) {
    int err = pd_check(pd, mode);
    if (err) return err;
    err = netpoll_register(pd, fd, atomic_load_relaxed(&pd->foreign));
    if (err) return err;
    if (unlikely(atomic_load_relaxed(&pd->timers_pending))) arm_pending(pd);
    while (!netpoll_block(pd, mode)) {
        err = pd_check(pd, mode);
        if (err) return err;
        /* Woken with neither an edge nor an error: a deadline that moved
         * while its timer fired. Wait again. */
    }
    return 0;
}

void pd_evict(poll_desc *pd) {
    lock(&pd->lock);
    __atomic_fetch_or(&pd->info, PDI_CLOSING, __ATOMIC_SEQ_CST);
    pd->rseq++;
    pd->wseq++;
    timer_del(&pd->rt);
    timer_del(&pd->wt);
    g *rg = netpoll_unblock(pd, MODE_R, false);
    g *wg = netpoll_unblock(pd, MODE_W, false);
    unlock(&pd->lock);
    if (rg) {
        sched_external_waiters_add(-1);
        sched_ready(rg);
    }
    if (wg) {
        sched_external_waiters_add(-1);
        sched_ready(wg);
    }
}

void pd_reset(poll_desc *pd, uint8_t kind, bool sock) {
    lock(&pd->lock);
    pd->rseq++;
    pd->wseq++;
    timer_del(&pd->rt);
    timer_del(&pd->wt);
    pd->rd = pd->wd = pd->rc = pd->wc = 0;
    atomic_store_relaxed(&pd->timers_pending, false);
    atomic_store_relaxed(&pd->foreign, false);
    atomic_store_relaxed(&pd->sock, sock);
    atomic_store_relaxed(&pd->kind, kind);
    atomic_store_relaxed(&pd->reg_epoch, 0);
    __atomic_store_n(&pd->rg, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&pd->wg, 0, __ATOMIC_SEQ_CST);
    atomic_xadd(&pd->gen, 1); /* events of the old life are dropped from now on */
    __atomic_store_n(&pd->info, 0, __ATOMIC_SEQ_CST);
    unlock(&pd->lock);
}
