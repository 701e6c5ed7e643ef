/* libgort-malloc.so: the C malloc family over gort's allocator, for
 * LD_PRELOAD=libgort-malloc.so (or linking it before libc).
 *
 * malloc, free and calloc are aliases of gort_malloc/free/calloc (malloc.c);
 * the rest are here. glibc calls malloc through interposable symbols, so once these are exported
 * everything in the process (libc's strdup, fopen, the dynamic loader after
 * start-up) allocates from gort. Built with initial-exec TLS (-ftls-model),
 * the one TLS access on the fast path is a single %fs-relative load.
 * Our own initialisation never calls malloc, so there is no bootstrap
 * problem. fork() safety comes from mheap.c's atfork handlers. */
#define _GNU_SOURCE
#include "base/atomic.h"
#include "gort/malloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* malloc and friends report ENOMEM through errno, as C requires. Setting
 * errno is fine here: it is read by the caller right after the call. */
__attribute__((unused)) static void *nomem(void *p) {
    if (!p) errno = ENOMEM;
    return p;
}

EXPORT void cfree(void *p) {
    gort_free(p);
}

EXPORT void *realloc(void *p, size_t n) {
    if (p && n == 0) {
        gort_free(p);
        return NULL;
    }
    return nomem(gort_realloc(p, n));
}

EXPORT void *reallocarray(void *p, size_t count, size_t size) {
    size_t n;
    if (__builtin_mul_overflow(count, size, &n)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
    return gort_posix_memalign(out, align, n);
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
    void *p = NULL;
    if (align == 0 || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    int rc = gort_posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, n);
    if (rc) errno = rc;
    return rc ? NULL : p;
}

EXPORT void *memalign(size_t align, size_t n) {
    return aligned_alloc(align, n);
}

EXPORT void *valloc(size_t n) {
    return aligned_alloc((size_t)sysconf(_SC_PAGESIZE), n);
}

EXPORT void *pvalloc(size_t n) {
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    if (n > SIZE_MAX - ps) {
        errno = ENOMEM;
        return NULL;
    }
    return aligned_alloc(ps, n ? (n + ps - 1) & ~(ps - 1) : ps);
}

EXPORT size_t malloc_usable_size(void *p) {
    return gort_usable_size(p);
}
