/* Goroutines and time: gort's scheduler (Go's GMP), docs/api.md "Start",
 * "Goroutines" and "Time".
 *
 * A goroutine may resume on a different OS thread after any call here that
 * can block or switch (gort_yield, gort_sleep, gort_syscall_exit, and every
 * blocking call of the later layers): __thread data is per thread, not per
 * goroutine, and errno must not be kept across such a call. */
#ifndef GORT_SCHED_H
#define GORT_SCHED_H

#include "gort/config.h"

#include <stddef.h>
#include <stdint.h>

GORT_EXTERN_C_BEGIN

/* Starts the runtime, runs main_fn as the main goroutine (id 1) and returns
 * its result when it returns; the other goroutines are then abandoned, as in
 * Go. Call it once per process. */
GORT_API int gort_main(int (*main_fn)(int argc, char **argv), int argc, char **argv);

typedef void (*gort_fn)(void *arg);
/* Spawns fn(arg) as a new goroutine; returns its id (> 0), or -EPERM on a
 * thread that runs no goroutine (or between gort_syscall_enter and _exit).
 * A NULL fn is Go's "fatal error: go of nil func value"; running out of
 * memory is fatal, as for every runtime object (docs/misuse.md). */
GORT_API int64_t gort_go(gort_fn fn, void *arg);
/* The same with a stack of at least stack_size bytes (0: the default,
 * GORT_STACKSIZE); -EINVAL above 16 GiB. */
GORT_API int64_t gort_go_stack(gort_fn fn, void *arg, size_t stack_size);
/* Lets other goroutines run (runtime.Gosched). */
GORT_API void gort_yield(void);
/* Ends the calling goroutine (runtime.Goexit). On the main goroutine, the
 * others run on; when none is left the program dies as Go's does. */
GORT_API __attribute__((noreturn)) void gort_exit(void);
/* The calling goroutine's id; 0 outside a goroutine. */
GORT_API int64_t gort_goid(void);
/* Live goroutines, the main one included (runtime.NumGoroutine). */
GORT_API int gort_num_goroutine(void);
/* Sets the number of Ps to n (n <= 0 only queries); returns the previous value. */
GORT_API int gort_gomaxprocs(int n);
/* Wires the calling goroutine to its OS thread (runtime.LockOSThread); calls nest. */
GORT_API void gort_lock_os_thread(void);
GORT_API void gort_unlock_os_thread(void);
/* A preemption point: cheap; yields if the scheduler asked (a goroutine ran
 * more than 10 ms). Long loops that make no gort call should call it. */
GORT_API void gort_preempt_check(void);
/* Around a foreign call that may block (Go's entersyscall/exitsyscall): the P
 * is handed to another thread if the call takes long. In between: no GC
 * allocation and no GC pointer stores. */
GORT_API void gort_syscall_enter(void);
GORT_API void gort_syscall_exit(void);

/* Monotonic time in nanoseconds. */
GORT_API int64_t gort_nanotime(void);
/* Parks the calling goroutine for at least ns nanoseconds (time.Sleep). */
GORT_API void gort_sleep(int64_t ns);

GORT_EXTERN_C_END

#endif
