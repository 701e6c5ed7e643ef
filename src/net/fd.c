/* Goroutine-blocking operations on fds: gort_read, gort_write,
 * gort_accept, gort_connect, gort_set_deadline, gort_close, gort_fd_wait
 * (Go's internal/poll: fd_unix.go, fd_mutex.go, fd_poll_runtime.go).
 *
 * Each operation runs the fd's system call and, when it says EAGAIN, waits
 * for readiness and tries again. How it waits:
 * - a goroutine that may park (it has a P) waits in the poller (pd_wait);
 * - anything else (a plain thread, code before gort_main, a goroutine
 *   between gort_syscall_enter and _exit) polls the fd with poll(2), in
 *   slices of THREAD_WAIT_SLICE so that a close or a moved deadline is seen.
 * What an fd is, is learned on its first operation (examine): regular files,
 * block devices and directories, which epoll cannot poll, and blocking
 * terminals and other character devices (which we do not switch to
 * non-blocking: their mode is shared with other processes) use the syscall
 * path: the system call between gort_syscall_enter and _exit, so its P goes
 * to another thread while it blocks. Sockets and pipes are made
 * non-blocking and use the poller. gort's own sockets are born known.
 *
 * The fd mutex (Go's fdMutex), in poll_desc.mu: a closed bit, a read lock,
 * a write lock, two "queued" bits and a reference count. A goroutine holds
 * a direction's lock (and a reference) for the whole operation, so that at
 * most one goroutine per direction waits in the poller; others queue on the
 * descriptor (lq_head/lq_tail, under its lock) and the unlocker hands the
 * lock to the oldest directly. Plain threads take a reference only (they
 * never wait in the poller). gort_close sets the closed bit with a
 * reference of its own, dequeues every queued goroutine (they return
 * -EBADF without touching the descriptor again), evicts the parked reader
 * and writer (pd_evict), and drops its reference; whoever drops the last
 * reference of a closed fd closes it (destroy): first the descriptor is
 * reset for the fd number's next life, then close(2) frees the number. So an
 * fd number is never reused while an operation of its old life is still
 * inside a system call on it. */
#define _GNU_SOURCE
#include "gort/net.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/nanotime.h"
#include "gort/sched.h"
#include "net/netpoll.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define MU_CLOSED    1u
#define MU_LOCK(m)   ((m) == MODE_R ? 2u : 4u)  /* the read or write lock */
#define MU_QUEUED(m) ((m) == MODE_R ? 8u : 16u) /* goroutines queued for it */
#define MU_REF       32u
#define MU_REFS(v)   ((v) / MU_REF)

#define MAX_RW            (1 << 30)            /* bytes per system call, as Go's maxRW */
#define THREAD_WAIT_SLICE (20 * 1000 * 1000LL) /* a plain thread rechecks close and deadlines */

/* A goroutine queued for a direction's lock, on its own stack. */
typedef struct fd_waiter {
    g *gp;
    struct fd_waiter *next;
    bool granted; /* set by the waker: the lock (and a reference) is ours; else closed */
} fd_waiter;

/* ---- the fd mutex ------------------------------------------------------------------- */

static bool fd_incref(poll_desc *pd) {
    uint64_t old = atomic_load_relaxed(&pd->mu);
    for (;;) {
        if (old & MU_CLOSED) return false;
        if (atomic_cas(&pd->mu, &old, old + MU_REF)) return true;
    }
}

/* Drops a reference; true if it was the last of a closed fd (destroy it). */
static bool fd_decref(poll_desc *pd) {
    uint64_t old = atomic_load_relaxed(&pd->mu);
    for (;;) {
        if (MU_REFS(old) == 0) throw("netpoll: inconsistent fd mutex");
        uint64_t nv = old - MU_REF;
        if (atomic_cas(&pd->mu, &old, nv)) return (nv & MU_CLOSED) && MU_REFS(nv) == 0;
    }
}

static bool unlock_desc(g *gp, void *lk) {
    (void)gp;
    unlock(lk);
    return true;
}

/* Takes mode's lock and a reference; false if the fd is closed (or closes
 * while we wait). Only on a goroutine that may park. */
static bool fd_rwlock(poll_desc *pd, int mode) {
    uint64_t bit = MU_LOCK(mode);
    uint64_t old = atomic_load_relaxed(&pd->mu);
    while (likely(!(old & (MU_CLOSED | bit))))
        if (atomic_cas(&pd->mu, &old, (old | bit) + MU_REF)) return true;
    if (old & MU_CLOSED) return false;
    /* Held: queue (under the descriptor's lock, which the holder's unlock
     * takes when it sees the queued bit). */
    lock(&pd->lock);
    old = atomic_load_relaxed(&pd->mu);
    for (;;) {
        if (old & MU_CLOSED) {
            unlock(&pd->lock);
            return false;
        }
        if (!(old & bit)) {
            if (atomic_cas(&pd->mu, &old, (old | bit) + MU_REF)) {
                unlock(&pd->lock);
                return true;
            }
        } else if (atomic_cas(&pd->mu, &old, old | MU_QUEUED(mode))) {
            break;
        }
    }
    int i = mode == MODE_R ? 0 : 1;
    fd_waiter w = {.gp = sched_getg(), .next = NULL, .granted = false};
    if (pd->lq_tail[i])
        pd->lq_tail[i]->next = &w;
    else
        pd->lq_head[i] = &w;
    pd->lq_tail[i] = &w;
    sched_park(unlock_desc, &pd->lock, WAIT_REASON_SEMACQUIRE);
    return __atomic_load_n(&w.granted, __ATOMIC_ACQUIRE);
}

/* Releases mode's lock and its reference, or hands both to the oldest
 * queued goroutine. True if that was the last reference of a closed fd. */
static bool fd_rwunlock(poll_desc *pd, int mode) {
    uint64_t bit = MU_LOCK(mode), queued = MU_QUEUED(mode);
    uint64_t old = atomic_load_relaxed(&pd->mu);
    for (;;) {
        if (!(old & bit) || MU_REFS(old) == 0) throw("netpoll: inconsistent fd mutex");
        if (old & queued) break;
        uint64_t nv = (old & ~bit) - MU_REF;
        if (atomic_cas(&pd->mu, &old, nv)) return (nv & MU_CLOSED) && MU_REFS(nv) == 0;
    }
    int i = mode == MODE_R ? 0 : 1;
    lock(&pd->lock);
    fd_waiter *w = pd->lq_head[i];
    if (w) {
        pd->lq_head[i] = w->next;
        if (!w->next) {
            pd->lq_tail[i] = NULL;
            atomic_and(&pd->mu, ~queued); /* the lock and our reference stay: they are w's now */
        }
    }
    unlock(&pd->lock);
    if (w) {
        g *gp = w->gp; /* w is on its stack: not touched after it is ready */
        __atomic_store_n(&w->granted, true, __ATOMIC_RELEASE);
        sched_ready(gp);
        return false;
    }
    /* The queue was emptied by a close meanwhile (it cleared the bit). */
    old = atomic_load_relaxed(&pd->mu);
    for (;;) {
        uint64_t nv = (old & ~bit) - MU_REF;
        if (atomic_cas(&pd->mu, &old, nv)) return (nv & MU_CLOSED) && MU_REFS(nv) == 0;
    }
}

/* gort_close's start: marks the fd closed, takes a reference, and wakes
 * every goroutine queued for a lock (they return -EBADF). False if it was
 * already closed. */
static bool fd_close_begin(poll_desc *pd) {
    lock(&pd->lock);
    uint64_t old = atomic_load_relaxed(&pd->mu);
    for (;;) {
        if (old & MU_CLOSED) {
            unlock(&pd->lock);
            return false;
        }
        uint64_t nv = ((old | MU_CLOSED) & ~(MU_QUEUED(MODE_R) | MU_QUEUED(MODE_W))) + MU_REF;
        if (atomic_cas(&pd->mu, &old, nv)) break;
    }
    fd_waiter *lists[2] = {pd->lq_head[0], pd->lq_head[1]};
    pd->lq_head[0] = pd->lq_head[1] = pd->lq_tail[0] = pd->lq_tail[1] = NULL;
    unlock(&pd->lock);
    for (int i = 0; i < 2; i++) {
        for (fd_waiter *w = lists[i]; w;) {
            fd_waiter *next = w->next;
            g *gp = w->gp;
            sched_ready(gp); /* granted stays false */
            w = next;
        }
    }
    return true;
}

/* The last reference of a closed fd is gone: reset the descriptor for the
 * number's next life, then close it. */
static int destroy(poll_desc *pd, int fd) {
    uint32_t e = atomic_load_acq(&pd->reg_epoch);
    if (e != 0 && e == atomic_load_acq(&netpoll_epoch)) netpoll_ctl_del(fd);
    pd_reset(pd, PD_UNKNOWN, false);
    atomic_store_rel(&pd->mu, 0);
    /* close(2) can block (SO_LINGER with a timeout): as a system call, so
     * that the P goes on without us meanwhile (Go's Close does the same). */
    bool park = net_can_park();
    if (park) gort_syscall_enter();
    int r = close(fd) < 0 && errno != EINTR ? -errno : 0; /* Linux frees the fd even on EINTR */
    if (park) gort_syscall_exit();
    return r;
}

void fd_born(int fd, bool sock) {
    poll_desc *pd = pd_lookup(fd);
    if (!pd) return;
    pd_reset(pd, PD_POLL, sock);
    atomic_store_rel(&pd->mu, 0);
}

/* ---- operations ------------------------------------------------------------------------ */

typedef struct fdop {
    poll_desc *pd;
    int fd;
    int mode;  /* the direction locked (MODE_R/MODE_W), or 0 for a reference only */
    bool park; /* a goroutine that may park */
} fdop;

/* Starts an operation on fd in mode (0: a reference only). */
static int op_begin(fdop *o, int fd, int mode) {
    o->fd = fd;
    o->pd = pd_lookup(fd);
    if (!o->pd) return fd >= PD_MAX_FDS ? -EBADF : -ENOMEM;
    o->park = net_can_park();
    o->mode = o->park ? mode : 0;
    if (o->mode ? fd_rwlock(o->pd, mode) : fd_incref(o->pd)) return 0;
    return -EBADF;
}

/* Ends it; closes the fd if it was closed meanwhile and this was its last
 * operation. */
static void op_end(fdop *o) {
    if (o->mode ? fd_rwunlock(o->pd, o->mode) : fd_decref(o->pd)) destroy(o->pd, o->fd);
}

/* Learns what fd is, once per life (see the file comment). */
static int examine(poll_desc *pd, int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    bool sock = S_ISSOCK(st.st_mode);
    uint8_t kind;
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode)) {
        kind = PD_SYSCALL;
    } else {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0) return -errno;
        if (fl & O_NONBLOCK) {
            kind = PD_POLL;
        } else if (sock || S_ISFIFO(st.st_mode)) {
            if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
            kind = PD_POLL;
        } else {
            kind = PD_SYSCALL; /* a blocking terminal or device: leave its mode alone */
        }
    }
    atomic_store_relaxed(&pd->sock, sock);
    atomic_store_rel(&pd->kind, kind);
    return 0;
}

static inline int kind_of(fdop *o, uint8_t *kind) {
    *kind = atomic_load_acq(&o->pd->kind);
    if (likely(*kind != PD_UNKNOWN)) return 0;
    int err = examine(o->pd, o->fd);
    *kind = atomic_load_acq(&o->pd->kind);
    return err;
}

/* Waits in a thread (see the file comment), until fd is ready in mode, a
 * deadline passes (the fd's, or call) or the fd closes. */
static int thread_wait(fdop *o, int mode, int64_t call) {
    for (;;) {
        int err = pd_check(o->pd, mode);
        if (err) return err;
        int64_t d = pd_deadline(o->pd, mode, call), now = nanotime();
        if (d && d <= now) return -ETIMEDOUT;
        int64_t slice = d && d - now < THREAD_WAIT_SLICE ? d - now : THREAD_WAIT_SLICE;
        struct pollfd pfd = {.fd = o->fd, .events = mode == MODE_R ? POLLIN : POLLOUT};
        if (o->park) gort_syscall_enter();
        int k = poll(&pfd, 1, (int)((slice + 999999) / 1000000));
        int e = k < 0 ? errno : 0;
        if (o->park) gort_syscall_exit();
        if (k > 0) return pfd.revents & POLLNVAL ? -EBADF : 0;
        if (k < 0 && e != EINTR && e != EAGAIN) return -e;
    }
}

/* Waits for fd to be ready in mode: in the poller when the caller may park
 * and fd can be polled, else in its thread. */
static int wait_io(fdop *o, int mode, int64_t call) {
    if (o->park) {
        int err = pd_wait(o->pd, o->fd, mode);
        if (err == 0 || err == -EBADF || err == -ETIMEDOUT) return err;
        /* Not pollable (-EPERM) or no poller (out of fds or watches): wait
         * in a thread, the goroutine's P handed off meanwhile. */
    }
    return thread_wait(o, mode, call);
}

/* Before an operation's first system call: fails it if the fd is closing
 * or a deadline has passed. A goroutine, which holds the direction's lock,
 * also forgets a stale edge (pd_prepare); a plain thread must not touch the
 * semaphore (a goroutine may be parked on it), and checks the deadline
 * itself (the runtime's timers may not have marked it, or may not exist). */
static int op_prepare(fdop *o, int mode) {
    if (o->park) return pd_prepare(o->pd, mode);
    int err = pd_check(o->pd, mode);
    if (err) return err;
    int64_t d = pd_deadline(o->pd, mode, 0);
    return d && d <= nanotime() ? -ETIMEDOUT : 0;
}

static inline ssize_t sys_read(int fd, void *buf, size_t n) {
    ssize_t r = read(fd, buf, n);
    return r < 0 ? -errno : r;
}

/* read(2) between gort_syscall_enter and _exit (errno is read before the
 * exit, which may resume the goroutine on another thread). */
static ssize_t sys_read_blocking(fdop *o, void *buf, size_t n) {
    if (o->park) gort_syscall_enter();
    ssize_t r = sys_read(o->fd, buf, n);
    if (o->park) gort_syscall_exit();
    return r;
}

/* A write that cannot raise SIGPIPE: send(MSG_NOSIGNAL) on sockets; on
 * pipes, with SIGPIPE blocked for the thread around the write and a SIGPIPE
 * it raised taken back (sigtimedwait) before the mask is restored. */
static ssize_t sys_write(int fd, const void *buf, size_t n, bool sock) {
    if (sock) {
        ssize_t r = send(fd, buf, n, MSG_NOSIGNAL);
        if (r >= 0 || errno != ENOTSOCK) return r < 0 ? -errno : r;
    }
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t r = write(fd, buf, n);
    int e = r < 0 ? errno : 0;
    if (e == EPIPE && !sigismember(&old, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r < 0 ? -e : r;
}

static ssize_t sys_write_blocking(fdop *o, const void *buf, size_t n) {
    if (o->park) gort_syscall_enter();
    ssize_t r = write(o->fd, buf, n);
    r = r < 0 ? -errno : r;
    if (o->park) gort_syscall_exit();
    return r;
}

static ssize_t do_read(fdop *o, void *buf, size_t n) {
    int err = op_prepare(o, MODE_R);
    if (err) return err;
    uint8_t kind;
    err = kind_of(o, &kind); /* also: is fd open at all */
    if (err) return err;
    if (n == 0) return 0;
    if (n > MAX_RW) n = MAX_RW;
    for (;;) {
        ssize_t r = kind == PD_SYSCALL ? sys_read_blocking(o, buf, n) : sys_read(o->fd, buf, n);
        if (r >= 0) return r;
        if (r == -EINTR) continue;
        if (r != -EAGAIN) return r;
        err = wait_io(o, MODE_R, 0);
        if (err) return err;
    }
}

ssize_t gort_read(int fd, void *buf, size_t n) {
    if (fd < 0) return -EBADF;
    if (!buf && n > 0) return -EFAULT;
    fdop o;
    int err = op_begin(&o, fd, MODE_R);
    if (err) return err;
    ssize_t r = do_read(&o, buf, n);
    op_end(&o);
    return r;
}

static ssize_t do_write(fdop *o, const char *buf, size_t n) {
    int err = op_prepare(o, MODE_W);
    if (err) return err;
    uint8_t kind;
    err = kind_of(o, &kind);
    if (err) return err;
    if (n == 0) return 0;
    bool sock = atomic_load_relaxed(&o->pd->sock);
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done > MAX_RW ? MAX_RW : n - done;
        ssize_t r = kind == PD_SYSCALL ? sys_write_blocking(o, buf + done, chunk)
                                       : sys_write(o->fd, buf + done, chunk, sock);
        if (r > 0) {
            done += (size_t)r;
            continue;
        }
        if (r == 0) return -EIO; /* no progress and no error: Go's io.ErrUnexpectedEOF */
        if (r == -EINTR) continue;
        if (r != -EAGAIN) return r;
        err = wait_io(o, MODE_W, 0);
        if (err) return err;
    }
    return (ssize_t)done;
}

ssize_t gort_write(int fd, const void *buf, size_t n) {
    if (fd < 0) return -EBADF;
    if (!buf && n > 0) return -EFAULT;
    if (n > (size_t)SSIZE_MAX) return -EINVAL;
    fdop o;
    int err = op_begin(&o, fd, MODE_W);
    if (err) return err;
    ssize_t r = do_write(&o, buf, n);
    op_end(&o);
    return r;
}

int gort_accept(int listen_fd, struct sockaddr *sa, socklen_t *len) {
    if (listen_fd < 0) return -EBADF;
    if (sa && !len) return -EINVAL;
    fdop o;
    int err = op_begin(&o, listen_fd, MODE_R);
    if (err) return err;
    uint8_t kind;
    int r = op_prepare(&o, MODE_R);
    if (!r) r = kind_of(&o, &kind);
    while (!r) {
        int nfd = accept4(listen_fd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (nfd >= 0) {
            fd_born(nfd, true);
            r = nfd;
            break;
        }
        int e = errno;
        if (e == EINTR || e == ECONNABORTED) continue; /* as Go: the next one */
        if (e != EAGAIN) {
            r = -e;
            break;
        }
        r = wait_io(&o, MODE_R, 0);
    }
    op_end(&o);
    return r;
}

/* Whether a non-blocking connect has finished: 0 yes, 1 not yet, or its error. */
static int connect_done(int fd) {
    int soerr = 0;
    socklen_t l = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0) return -errno;
    switch (soerr) {
    case EINPROGRESS:
    case EALREADY:
    case EINTR:
        return 1;
    case EISCONN:
        return 0;
    case 0: {
        /* Connected, or a spurious wake-up: Go asks getpeername. */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        return getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 ? 0 : 1;
    }
    default:
        return -soerr;
    }
}

int gort_connect(int fd, const struct sockaddr *sa, socklen_t len) {
    if (fd < 0) return -EBADF;
    if (!sa) return -EINVAL;
    fdop o;
    int err = op_begin(&o, fd, MODE_W);
    if (err) return err;
    uint8_t kind;
    int r = op_prepare(&o, MODE_W);
    if (!r) r = kind_of(&o, &kind);
    if (!r && connect(fd, sa, len) < 0) {
        int e = errno;
        if (e == EINPROGRESS || e == EALREADY || e == EINTR) {
            for (;;) {
                r = wait_io(&o, MODE_W, 0);
                if (r) break;
                r = connect_done(fd);
                if (r <= 0) break;
            }
        } else {
            r = e == EISCONN ? 0 : -e;
        }
    }
    op_end(&o);
    return r;
}

int gort_set_deadline(int fd, int64_t read_deadline_ns, int64_t write_deadline_ns) {
    if (fd < 0) return -EBADF;
    fdop o;
    o.fd = fd;
    o.pd = pd_lookup(fd);
    o.mode = 0;
    o.park = false;
    if (!o.pd) return -ENOMEM;
    if (!fd_incref(o.pd)) return -EBADF;
    int r = 0;
    /* An fd no operation has seen in this life may not be open at all. */
    if (atomic_load_acq(&o.pd->kind) == PD_UNKNOWN && fcntl(fd, F_GETFD) < 0) r = -errno;
    if (!r && read_deadline_ns >= 0) r = pd_set_deadline(o.pd, MODE_R, read_deadline_ns);
    if (!r && write_deadline_ns >= 0) r = pd_set_deadline(o.pd, MODE_W, write_deadline_ns);
    op_end(&o);
    return r;
}

int gort_close(int fd) {
    if (fd < 0) return -EBADF;
    poll_desc *pd = pd_lookup(fd);
    if (!pd) return close(fd) < 0 && errno != EINTR ? -errno : 0;
    if (!fd_close_begin(pd)) return -EBADF;
    pd_evict(pd);
    if (fd_decref(pd)) return destroy(pd, fd);
    return 0; /* an operation still inside a system call on fd closes it */
}

int gort_fd_wait(int fd, int mode, int64_t deadline_ns) {
    if (fd < 0) return -EBADF;
    if ((mode != GORT_WAIT_READ && mode != GORT_WAIT_WRITE) || deadline_ns < 0) return -EINVAL;
    fdop o;
    int err = op_begin(&o, fd, mode);
    if (err) return err;
    atomic_store_relaxed(&o.pd->foreign, true); /* its owner may close(2) it */
    int r = pd_check(o.pd, mode);
    if (!r && deadline_ns && deadline_ns <= nanotime()) r = -ETIMEDOUT;
    if (!r && o.park) {
        if (deadline_ns) pd_set_call(o.pd, mode, deadline_ns);
        r = pd_wait(o.pd, fd, mode);
        if (deadline_ns) pd_set_call(o.pd, mode, 0);
        if (r == -EPERM)
            r = 0; /* epoll cannot poll it (a regular file): always ready */
        else if (r != 0 && r != -EBADF && r != -ETIMEDOUT)
            r = thread_wait(&o, mode, deadline_ns);
    } else if (!r) {
        r = thread_wait(&o, mode, deadline_ns);
    }
    op_end(&o);
    return r;
}
