/* OS threads for the runtime's own use (sysmon, the scavenger, Ms). */
#ifndef GORT_BASE_THREAD_H
#define GORT_BASE_THREAD_H

#include <stddef.h>

/* Starts a detached thread running fn(arg) with a stack of stack_size bytes
 * (0: the default). Returns 0 or a negative errno. */
int os_thread_start(void (*fn)(void *), void *arg, size_t stack_size, const char *name);
int os_gettid(void);

#endif
