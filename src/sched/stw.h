/* Stop-the-world and suspending one goroutine's thread (docs/design.md,
 * "Stop-the-world").
 *
 * stop_the_world stops every M that holds a P, at whatever instruction it is
 * (tight C loops included), by a signal whose handler publishes the
 * interrupted registers and stack pointer (m->suspend) and sleeps on a futex
 * until start_the_world. No M can start running a goroutine meanwhile: an M
 * taking a P waits (stw_check), and Ps left in a syscall are taken
 * (P_GCSTOP) so that their goroutines wait in gort_syscall_exit. Goroutines
 * in a syscall keep running their C code: by the gort_syscall_enter contract
 * they neither allocate from the GC heap nor store GC pointers.
 *
 * Safety: a thread holding a runtime lock (lock_t) is not stopped inside the
 * critical section: its handler defers, and the thread stops at its outermost
 * unlock(). So the stopper may take any runtime lock while the world is
 * stopped, but must not call into libc functions that take libc's own locks
 * (stdio, malloc under LD_PRELOAD of another allocator): a stopped thread may
 * hold them.
 *
 * The signal is SIGRTMIN+6, installed with SA_RESTART (system calls of user
 * code are restarted, not failed with EINTR) and SA_ONSTACK. */
#ifndef GORT_SCHED_STW_H
#define GORT_SCHED_STW_H

#include <stdbool.h>
#include <stdint.h>

#include <pthread.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define sched_resume_g         gort__sched_resume_g
#define sched_suspend_g        gort__sched_suspend_g
#define start_the_world        gort__start_the_world
#define stop_the_world         gort__stop_the_world
#define stw_active_now         gort__stw_active_now
#define stw_atfork_child       gort__stw_atfork_child
#define stw_atfork_parent      gort__stw_atfork_parent
#define stw_atfork_prepare     gort__stw_atfork_prepare
#define stw_check              gort__stw_check
#define stw_foreign_each       gort__stw_foreign_each
#define stw_init               gort__stw_init
#define stw_register_foreign   gort__stw_register_foreign
#define stw_resume_foreign     gort__stw_resume_foreign
#define stw_stats              gort__stw_stats
#define stw_suspend_foreign    gort__stw_suspend_foreign
#define stw_suspended          gort__stw_suspended
#define stw_thread_init        gort__stw_thread_init
#define stw_unregister_foreign gort__stw_unregister_foreign
#define tls_stw_foreign        gort__tls_stw_foreign

struct m;

/* The x86_64 SysV red zone: a leaf function may keep live data up to this
 * many bytes below its stack pointer, and a signal does not disturb it (the
 * kernel puts the signal frame below it). A scan of an interrupted stack
 * must start at sp - STW_RED_ZONE. */
#define STW_RED_ZONE 128

/* What a stopped M's handler published. */
typedef struct suspend_ctx {
    uintptr_t sp; /* the interrupted stack pointer (scan from sp - STW_RED_ZONE) */
    uintptr_t pc;
    uintptr_t regs[16]; /* rax..r15 as the kernel saved them (ucontext gregs order) */
    /* xmm0-15, two words each: C compilers move pointer pairs through
     * vector registers (a 16-byte struct copy), and a thread stopped by the
     * signal may hold the only copy of a pointer there. Not filled by a
     * deferred stop, which stops at a call, where no xmm register is live. */
    uintptr_t xmm[32];
} suspend_ctx;

/* Stop-the-world's view of one thread: an M (m.st) or a registered thread
 * outside the scheduler (a foreign thread, stw_register_foreign). */
typedef struct stw_thread {
    pthread_t thread;
    bool thread_valid;       /* thread is set */
    bool signalled;          /* the current stop-the-world signalled it */
    bool suspend_valid;      /* suspend holds what the handler published */
    uint32_t suspended;      /* atomic: stopped */
    uint32_t suspend_req;    /* atomic: asked alone to stop (one goroutine or thread) */
    suspend_ctx suspend;     /* the interrupted context while stopped */
    struct stw_thread *next; /* the registry of foreign threads */
    bool registered;         /* on that registry */
} stw_thread;

/* The calling thread's record if it is a registered foreign thread. */
extern __thread stw_thread *tls_stw_foreign __attribute__((tls_model("initial-exec")));

int stw_init(void);
/* Makes the calling thread (an M) able to be stopped: unblocks the signal. */
void stw_thread_init(void);
/* Stops the world; returns once every other M holding a P is stopped.
 * Callable from a goroutine or from a thread outside the scheduler; one
 * stopper at a time (others wait). Not from a signal handler. */
void stop_the_world(const char *reason);
void start_the_world(void);
/* Whether the world is stopped (or being stopped). */
bool stw_active_now(void);
/* Called by an M that just took a P (acquirep, syscall exit): waits while
 * the world is stopped. No locks held. */
void stw_check(struct m *mp);
/* The context a stopped thread published, or NULL if it was not stopped by
 * a signal (an idle M, one waiting for a P or in a syscall). World stopped
 * only. */
const suspend_ctx *stw_suspended(const stw_thread *t);
/* Suspends the thread running goroutine gp (the same signal, for one M; the
 * rest of the world runs on) and fills *out with gp's interrupted context.
 * False when gp is not running on another thread: its saved context is then
 * in gp->ctx, but nothing stops it from being scheduled again; holding a
 * non-running goroutine still (Go's Gscan status bit) comes with the GC's
 * stack scanning. While gp is suspended no stop-the-world can start.
 * Not on gp's own thread. */
struct g;
bool sched_suspend_g(struct g *gp, suspend_ctx *out);
void sched_resume_g(struct g *gp);

/* Registers the calling thread, which is not an M, so that every
 * stop-the-world stops it too (and unblocks the signal on it); t must stay
 * valid until stw_unregister_foreign, which the thread calls itself before
 * it exits. Any thread; waits while the world is stopped. */
void stw_register_foreign(stw_thread *t);
void stw_unregister_foreign(stw_thread *t);
/* Suspends registered foreign thread t (not the caller) and fills *out with
 * its context; false if it is no longer registered. While it is suspended
 * no stop-the-world can start and it cannot unregister. */
bool stw_suspend_foreign(stw_thread *t, suspend_ctx *out);
void stw_resume_foreign(stw_thread *t);
/* Calls fn(t, arg) for each registered foreign thread, under the registry's
 * lock (so none unregisters meanwhile). World stopped, or fn brief. */
void stw_foreign_each(void (*fn)(stw_thread *t, void *arg), void *arg);

/* fork: the stopper's mutex and the foreign registry held across fork (by
 * stop_the_world when the scheduler runs, else by stw_atfork_prepare); in
 * the child, only the calling thread stays registered and the world runs.
 * Called by the scheduler's fork handlers (proc.c). */
void stw_atfork_prepare(void);
void stw_atfork_parent(void);
void stw_atfork_child(void);

/* Statistics: stops so far, and the last and longest stop latency in ns. */
void stw_stats(uint64_t *nstops, int64_t *last_ns, int64_t *max_ns);

#endif
