/* Explicit memory: Go's size-class allocator as a malloc.
 *
 * These work from any thread, with or without gort_main. Memory from them is
 * never scanned and never collected by the garbage collector (a later
 * layer): a GC pointer kept only here will not keep its object alive.
 * Freeing from a thread other than the allocating one is fine.
 *
 * Misuse is a fatal error that names the pointer and exits with status 2:
 * a double free, a free of a pointer gort never returned, a free of an
 * interior pointer. Size overflow in calloc/realloc returns NULL. */
#ifndef GORT_MALLOC_H
#define GORT_MALLOC_H

#include <stddef.h>

#include "gort/config.h"

GORT_EXTERN_C_BEGIN

GORT_API void *gort_malloc(size_t n);
GORT_API void *gort_calloc(size_t count, size_t size);
GORT_API void *gort_realloc(void *p, size_t n);
GORT_API void gort_free(void *p);
/* POSIX's posix_memalign: 0, EINVAL (align not a power of two multiple of
 * sizeof(void *)) or ENOMEM; positive codes, as the standard says (the one
 * exception to gort's negative errno convention). An alignment above 64 MiB
 * gets a mapping of its own, given back to the OS when freed. */
GORT_API int gort_posix_memalign(void **out, size_t align, size_t n);
GORT_API void *gort_aligned_alloc(size_t align, size_t n);
/* Bytes usable at p (>= the size asked for); 0 for NULL. */
GORT_API size_t gort_usable_size(const void *p);
/* Returns as much memory to the OS as possible now (Go's debug.FreeOSMemory;
 * a program that uses the GC heap gets a full collection first, gort/gc.h). */
GORT_API void gort_free_os_memory(void);

GORT_EXTERN_C_END

#endif
