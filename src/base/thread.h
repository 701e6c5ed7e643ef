/* OS threads for the runtime's own use (sysmon, the scavenger, Ms). */
#ifndef GORT_BASE_THREAD_H
#define GORT_BASE_THREAD_H

#include <stddef.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define os_gettid       gort__os_gettid
#define os_thread_start gort__os_thread_start

/* Starts a detached thread running fn(arg) with a stack of stack_size bytes
 * (0: the default). Returns 0 or a negative errno. */
int os_thread_start(void (*fn)(void *), void *arg, size_t stack_size, const char *name);
int os_gettid(void);

#endif
