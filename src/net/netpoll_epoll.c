/* The poller on Linux: epoll, edge-triggered (Go's netpoll_epoll.go).
 *
 * One epoll instance for the process, made by the first operation that
 * would block (a program that does no I/O never makes it). Every fd is
 * registered once, for input, output and peer hang-up, edge-triggered, with
 * a 64-bit tag: its descriptor's gen in the high half and the fd in the low
 * half. An event whose gen no longer matches its descriptor's belongs to a
 * life of that fd number that has ended, and is dropped.
 *
 * netpoll(delay) is the scheduler's sched_netpoll: one epoll_wait (with
 * nanosecond timeouts through epoll_pwait2 where the kernel has it, else
 * milliseconds rounded up, so a timer is never served early), then for each
 * event the reader and/or writer it unblocks, returned as a list. Any number
 * of threads may poll at once; the scheduler lets one block (its timer
 * sleeper) and the others poll without waiting.
 *
 * Waking the blocked one (netpoll_break): an eventfd registered level-
 * triggered, so a write wakes a poller that blocks later too; only a
 * blocking poll drains it (a non-blocking one leaves it for the sleeper).
 * wake_pending collapses concurrent breaks into one write.
 *
 * fork: the child gets a new epoll instance and eventfd (a shared one would
 * let it steal the parent's events); netpoll_epoch++ makes every descriptor
 * register again. */
#define _GNU_SOURCE
#include "net/netpoll.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/nanotime.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define EVENTS_MAX 128
#define BREAK_TAG  UINT64_MAX /* the eventfd's events */

uint32_t netpoll_epoch;
static int epfd = -1;
static int evfd = -1;
static uint32_t inited;       /* atomic: epfd and evfd are ready */
static uint32_t wake_pending; /* atomic: a break was written and not yet drained */
static bool no_pwait2;        /* the kernel lacks epoll_pwait2 (before 5.11) */
static lock_t init_lock = LOCK_INIT;

static g *netpoll(int64_t delay, int32_t *n);

static int create_instance(void) {
    int e = epoll_create1(EPOLL_CLOEXEC);
    if (e < 0) return -errno;
    int v = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (v < 0) {
        int err = -errno;
        close(e);
        return err;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = BREAK_TAG};
    if (epoll_ctl(e, EPOLL_CTL_ADD, v, &ev) < 0) {
        int err = -errno;
        close(e);
        close(v);
        return err;
    }
    epfd = e;
    evfd = v;
    atomic_store_relaxed(&wake_pending, 0);
    atomic_xadd(&netpoll_epoch, 1);
    return 0;
}

/* The child of a fork: its own instance (the parent's is shared with it). */
static void atfork_child(void) {
    if (!atomic_load_relaxed(&inited)) return;
    close(epfd);
    close(evfd);
    if (create_instance() < 0) throw("netpoll: cannot recreate the epoll instance after fork");
    init_lock = (lock_t)LOCK_INIT;
}

int netpoll_init(void) {
    if (likely(atomic_load_acq(&inited))) return 0;
    /* Not under init_lock: pthread_atfork may allocate (docs/HACKING.md). */
    static uint32_t atfork_done;
    uint32_t z = 0;
    if (atomic_cas(&atfork_done, &z, 1)) pthread_atfork(NULL, NULL, atfork_child);
    lock(&init_lock);
    int rc = 0;
    if (!inited) {
        rc = create_instance();
        if (rc == 0) {
            atomic_store_relaxed(&sched.lastpoll, nanotime());
            atomic_store_rel(&inited, 1);
            /* The scheduler's hooks: from now on its idle M sleeps in
             * netpoll, and find_runnable and sysmon poll. */
            atomic_store_rel(&sched_netpoll_break, netpoll_break);
            atomic_store_rel(&sched_netpoll, netpoll);
        }
    }
    unlock(&init_lock);
    /* A timer sleeper on the futex must move into the poller (when 0 is
     * earlier than anything it sleeps until). */
    if (rc == 0) sched_timer_kick(0);
    return rc;
}

int netpoll_register(poll_desc *pd, int fd, bool recheck) {
    int rc = netpoll_init();
    if (rc < 0) return rc;
    uint32_t epoch = atomic_load_acq(&netpoll_epoch);
    if (!recheck && atomic_load_acq(&pd->reg_epoch) == epoch) return 0;
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = (uint64_t)atomic_load_relaxed(&pd->gen) << 32 | (uint32_t)fd,
    };
    /* Checking an existing registration: MOD fails with ENOENT unless this
     * very file is registered (epoll keys on the fd and its file). */
    int op =
        recheck && atomic_load_relaxed(&pd->reg_epoch) == epoch ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    for (int tries = 0; tries < 3; tries++) {
        if (epoll_ctl(epfd, op, fd, &ev) == 0) {
            atomic_store_rel(&pd->reg_epoch, epoch);
            return 0;
        }
        int e = errno;
        if (op == EPOLL_CTL_ADD && e == EEXIST)
            op = EPOLL_CTL_MOD; /* registered before, maybe with an older tag */
        else if (op == EPOLL_CTL_MOD && e == ENOENT)
            op = EPOLL_CTL_ADD;
        else
            return -e;
    }
    return -EIO;
}

void netpoll_ctl_del(int fd) {
    struct epoll_event ev = {0};
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);
}

void netpoll_break(void) {
    uint32_t z = 0;
    if (!atomic_cas(&wake_pending, &z, 1)) return; /* one is on its way */
    uint64_t one = 1;
    for (;;) {
        ssize_t r = write(evfd, &one, sizeof one);
        if (r == sizeof one || (r < 0 && errno == EAGAIN)) return; /* EAGAIN: counter full */
        if (r < 0 && errno != EINTR) throw("netpoll: eventfd write failed");
    }
}

static int wait_events(struct epoll_event *ev, int64_t delay) {
    if (delay < 0) return epoll_wait(epfd, ev, EVENTS_MAX, -1);
    if (delay == 0) return epoll_wait(epfd, ev, EVENTS_MAX, 0);
    if (!no_pwait2) {
        struct timespec ts = {delay / 1000000000, delay % 1000000000};
        int k = (int)syscall(SYS_epoll_pwait2, epfd, ev, EVENTS_MAX, &ts, NULL, (size_t)8);
        if (k >= 0 || errno != ENOSYS) return k;
        no_pwait2 = true;
    }
    int64_t ms = (delay + 999999) / 1000000; /* round up: a timer is never early */
    if (ms > 1000000000) ms = 1000000000;
    return epoll_wait(epfd, ev, EVENTS_MAX, (int)ms);
}

/* Go's netpoll. See the file comment and runtime2.h's sched_netpoll. */
static g *netpoll(int64_t delay, int32_t *n) {
    struct epoll_event ev[EVENTS_MAX];
    *n = 0;
    int k = wait_events(ev, delay);
    if (k < 0) {
        if (errno != EINTR) throw("netpoll: epoll_wait failed");
        return NULL; /* a signal (stop-the-world, profiling): the caller looks again */
    }
    g *head = NULL, **tail = &head; /* in the order epoll reported them */
    int32_t count = 0;
    for (int i = 0; i < k; i++) {
        uint64_t tag = ev[i].data.u64;
        if (tag == BREAK_TAG) {
            if (delay != 0) { /* only a blocking poll drains it */
                uint64_t v;
                ssize_t r = read(evfd, &v, sizeof v);
                (void)r;
                atomic_store_rel(&wake_pending, 0);
            }
            continue;
        }
        poll_desc *pd = pd_peek((int)(uint32_t)tag);
        if (!pd || atomic_load_acq(&pd->gen) != (uint32_t)(tag >> 32)) continue; /* stale */
        uint32_t e = ev[i].events;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            g *gp = netpoll_unblock(pd, MODE_R, true);
            if (gp) {
                *tail = gp;
                tail = &gp->schedlink;
                count++;
            }
        }
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
            g *gp = netpoll_unblock(pd, MODE_W, true);
            if (gp) {
                *tail = gp;
                tail = &gp->schedlink;
                count++;
            }
        }
    }
    *tail = NULL;
    if (count) sched_external_waiters_add(-count);
    *n = count;
    return head;
}
