/* OS threads for the runtime's own use (sysmon, the scavenger, Ms). */
#ifndef GORT_BASE_THREAD_H
#define GORT_BASE_THREAD_H

#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define os_gettid             gort__os_gettid
#define os_thread_count       gort__os_thread_count
#define os_thread_count_reset gort__os_thread_count_reset
#define os_thread_stack_hi    gort__os_thread_stack_hi
#define os_thread_start       gort__os_thread_start

/* The stack of a runtime thread that runs runtime code only (0 below):
 * RLIMIT_STACK's 8 MiB default would be address space for nothing (gort
 * starts within 256 MiB of it; docs/allocator.md). ASan's frames are bigger. */
#if defined(__SANITIZE_ADDRESS__) || defined(GORT_ASAN)
#define OS_THREAD_STACK ((size_t)4 << 20)
#else
#define OS_THREAD_STACK ((size_t)1 << 20)
#endif

/* Starts a detached thread running fn(arg) with a stack of stack_size bytes
 * (0: OS_THREAD_STACK). Returns 0 or a negative errno. */
int os_thread_start(void (*fn)(void *), void *arg, size_t stack_size, const char *name);
int os_gettid(void);
/* The top of the calling thread's stack if os_thread_start made it, else 0. */
uintptr_t os_thread_stack_hi(void);
/* Threads started by os_thread_start whose function has not returned
 * (counted from before the thread exists to after it stops running gort's
 * code): the deadlock check tells gort's threads from the program's. */
int os_thread_count(void);
/* Sets the count (a forked child, where only the forking thread exists). */
void os_thread_count_reset(int n);

#endif
