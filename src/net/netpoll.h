/* The network poller's internal interface: poll descriptors (Go's pollDesc,
 * runtime/netpoll.go), the fd mutex (internal/poll/fd_mutex.go) and the
 * epoll side (runtime/netpoll_epoll.go), shared by the files of src/net.
 *
 * One poll descriptor per fd number, in a table indexed by the fd (fds are
 * small integers), made on first use and never freed: a descriptor outlives
 * the fd it describes, and is reset (gen++) whenever that fd's life ends
 * (gort_close) or a new fd gort made takes its number (accept, socket). A
 * stale epoll event carries the old gen and is dropped.
 *
 * Blocking (netpoll.c). rg and wg are Go's binary semaphores, one for the
 * reading and one for the writing goroutine: 0, PD_READY (an edge arrived
 * and nobody consumed it), PD_WAIT (a goroutine is about to park), or the
 * parked goroutine's g. The fd mutex lets at most one goroutine per
 * direction wait there (others queue on the mutex), as Go's does.
 *
 * Lock order: a descriptor's lock, then the scheduler's (timers_lock,
 * sched.lock, through timer_mod and sched_ready); the poller itself takes no
 * lock: it reads a descriptor's gen and CASes rg/wg. */
#ifndef GORT_NET_NETPOLL_H
#define GORT_NET_NETPOLL_H

#include "base/lock.h"
#include "sched/runtime2.h"

#include <stdbool.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define fd_born          gort__fd_born
#define netpoll_break    gort__netpoll_break
#define netpoll_ctl_del  gort__netpoll_ctl_del
#define netpoll_epoch    gort__netpoll_epoch
#define netpoll_init     gort__netpoll_init
#define netpoll_register gort__netpoll_register
#define netpoll_unblock  gort__netpoll_unblock
#define pd_check         gort__pd_check
#define pd_deadline      gort__pd_deadline
#define pd_evict         gort__pd_evict
#define pd_lookup        gort__pd_lookup
#define pd_peek          gort__pd_peek
#define pd_prepare       gort__pd_prepare
#define pd_reset         gort__pd_reset
#define pd_set_call      gort__pd_set_call
#define pd_set_deadline  gort__pd_set_deadline
#define pd_wait          gort__pd_wait

enum { PD_READY = 1, PD_WAIT = 2 };           /* rg and wg, besides 0 and a g */
enum { MODE_R = 1, MODE_W = 2 };              /* = GORT_WAIT_READ, GORT_WAIT_WRITE */
enum { PD_UNKNOWN = 0, PD_POLL, PD_SYSCALL }; /* poll_desc.kind */

/* poll_desc.info: what the fast paths read without the lock (Go's
 * atomicInfo). Written under the lock. */
enum {
    PDI_CLOSING = 1u << 0,    /* gort_close has started: every operation fails with -EBADF */
    PDI_RD_EXPIRED = 1u << 1, /* the read deadline has passed */
    PDI_WD_EXPIRED = 1u << 2, /* the write deadline has passed */
    PDI_RC_EXPIRED = 1u << 3, /* the deadline of the gort_fd_wait reading now has passed */
    PDI_WC_EXPIRED = 1u << 4, /* ... of the gort_fd_wait writing now */
};

typedef struct poll_desc {
    uint64_t mu;                  /* the fd mutex (fd.c): closed, read/write locks, references */
    struct fd_waiter *lq_head[2]; /* goroutines queued for the read [0] and write [1] locks, */
    struct fd_waiter *lq_tail[2]; /* oldest first, under lock (fd.c) */
    uintptr_t rg, wg;             /* 0, PD_READY, PD_WAIT or the parked g (atomic) */
    uint32_t info;                /* PDI_* (atomic) */
    uint32_t gen;                 /* this fd life's tag in epoll events (atomic) */
    uint32_t reg_epoch;           /* == netpoll_epoch: registered in this poller (atomic) */
    uint8_t kind;                 /* PD_UNKNOWN until the first operation looks at the fd */
    bool sock;                    /* a socket: writes use send(MSG_NOSIGNAL) */
    bool foreign;                 /* gort_fd_wait used it: check the registration on each wait */
    bool timers_pending;  /* deadlines set before the runtime started: arm at the next wait */
    lock_t lock;          /* deadlines, timers, info */
    int64_t rd, wd;       /* gort_set_deadline's deadlines (nanotime), 0 = none */
    int64_t rc, wc;       /* deadline of the gort_fd_wait in progress, 0 = none */
    uintptr_t rseq, wseq; /* bumped whenever a deadline changes: stale timers are ignored */
    timer rt, wt;         /* fire at the earliest of rd/rc, wd/wc */
} __attribute__((aligned(64))) poll_desc;

/* The table's size: gort's calls answer -EBADF for fds beyond it. */
#define PD_MAX_FDS (1 << 22)

/* The descriptor of fd, made if need be; NULL if fd < 0, fd >= PD_MAX_FDS
 * or out of memory. */
poll_desc *pd_lookup(int fd);
/* The descriptor of fd if one was ever made, else NULL (the poller's view). */
poll_desc *pd_peek(int fd);

/* Go's netpollunblock: takes the goroutine parked on pd's mode (MODE_R or
 * MODE_W) if any; ioready: mark an edge (PD_READY) for the next wait too.
 * The caller makes the returned g runnable (and counts one waiter less). */
g *netpoll_unblock(poll_desc *pd, int mode, bool ioready);

/* 0, or why an operation in mode must fail now: -EBADF (closing) or
 * -ETIMEDOUT (a deadline passed). Lock-free. */
int pd_check(poll_desc *pd, int mode);
/* pd_check, then forgets an edge that an earlier operation left (Go's
 * pollReset), before the operation's system call. */
int pd_prepare(poll_desc *pd, int mode);
/* Parks the calling goroutine until fd is ready in mode (Go's pollWait),
 * registering fd with the poller first if need be. 0 (ready, or maybe a
 * spurious wake-up: the caller retries its system call), -EBADF, -ETIMEDOUT,
 * or the registration's error (-EPERM: fd cannot be polled). Only on a
 * goroutine that may park, holding mode's fd lock. */
int pd_wait(poll_desc *pd, int fd, int mode);
/* Sets mode's deadline (gort_set_deadline; 0 none; in the past: waiters
 * wake and operations fail with -ETIMEDOUT until it moves). -EBADF if
 * closing. */
int pd_set_deadline(poll_desc *pd, int mode, int64_t deadline);
/* Sets or clears (0) the deadline of the gort_fd_wait in progress in mode. */
void pd_set_call(poll_desc *pd, int mode, int64_t deadline);
/* The earliest deadline in mode, gort_set_deadline's or call's (0: none):
 * for waits that cannot park (plain threads), which time themselves. */
int64_t pd_deadline(poll_desc *pd, int mode, int64_t call);
/* gort_close's first step (Go's pollUnblock): marks pd closing and wakes
 * its parked reader and writer (they return -EBADF). */
void pd_evict(poll_desc *pd);
/* Starts a new life of pd's fd number: drops its timers, deadlines,
 * registration and edges, and tags its events anew (gen++). kind and sock
 * describe the new fd (PD_UNKNOWN: look at it on first use). The fd mutex is
 * the caller's (fd.c). */
void pd_reset(poll_desc *pd, uint8_t kind, bool sock);

/* Whether the caller is a goroutine that holds a P: it may park. (Not a
 * plain thread, not g0, not between gort_syscall_enter and _exit.) */
static inline bool net_can_park(void) {
    m *mp = tls_m;
    return mp && mp->curg && mp->p;
}

/* ---- fd.c ---- */

/* fd was just made by gort (socket, accept4), non-blocking: its descriptor
 * starts a new life, known to be pollable (sock: a socket). */
void fd_born(int fd, bool sock);

/* ---- netpoll_epoll.c ---- */

/* Bumped by every (re)creation of the epoll instance (first use, a fork's
 * child): registrations of an older epoch are gone. */
extern uint32_t netpoll_epoch;
/* Creates the epoll instance and installs the scheduler's hooks, once. 0 or a
 * negative errno. */
int netpoll_init(void);
/* Registers fd (edge-triggered, both directions) with pd's current gen as
 * the events' tag; recheck: verify an existing registration too (fds that
 * other code may have closed behind our back). 0, or -EPERM for an fd epoll
 * cannot poll (a regular file), or another negative errno. */
int netpoll_register(poll_desc *pd, int fd, bool recheck);
/* Removes fd's registration (before gort_close closes it). */
void netpoll_ctl_del(int fd);
/* Wakes a poller blocked in epoll_wait (the scheduler's sched_netpoll_break). */
void netpoll_break(void);

#endif
