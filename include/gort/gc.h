/* The garbage-collected heap (Go's new, runtime.GC, SetFinalizer, KeepAlive,
 * AddCleanup, weak.Pointer, debug.SetGCPercent, debug.SetMemoryLimit and
 * debug.FreeOSMemory), for C. docs/gc.md is the guide.
 *
 *     struct node { struct node *left, *right; long key; };
 *     GORT_TYPE(node, left, right);              // at file scope
 *     struct node *n = gort_new(&node_type);     // zeroed, scanned precisely
 *     GORT_STORE(n->left, gort_new(&node_type)); // every heap pointer store
 *
 * The collector is Go's: concurrent tri-colour mark-sweep with the hybrid
 * write barrier, non-moving, paced by GORT_GOGC. What keeps an object alive:
 * a pointer to it (or into it) in another live GC object, in a global of the
 * program or of a loaded library, in a registered root (gort_add_roots), or
 * on the stack or in the registers of a goroutine or of a thread that has
 * used the GC heap. What does not: gort_malloc memory that is not
 * registered, thread-local storage, memory the program mapped itself.
 *
 * The rule: every store of a GC pointer into a GC object, a global or a
 * registered root goes through GORT_STORE (or gort_copy_typed). Stores into
 * the current goroutine's or thread's own stack need nothing.
 * GORT_GODEBUG=gccheckmark=1 catches a forgotten GORT_STORE. */
#ifndef GORT_GC_H
#define GORT_GC_H

#include "gort/config.h"
#include "gort/type.h"

#include <stddef.h>
#include <stdint.h>

GORT_EXTERN_C_BEGIN

/* A zeroed object of type t (Go's new(T)): scanned precisely by t's
 * pointer fields. NULL only when out of memory. t must stay valid while the
 * object lives (a file-scope GORT_TYPE does). */
GORT_API void *gort_new(const gort_type *t);
/* A zeroed array of n objects of type t (Go's make([]T, n)). NULL when out
 * of memory or when n * t->size overflows. */
GORT_API void *gort_new_array(const gort_type *t, size_t n);
/* size zeroed bytes that the collector never scans for pointers (Go's
 * []byte): for strings, numbers, pixels. NULL only when out of memory. */
GORT_API void *gort_alloc_noscan(size_t size);
/* size zeroed bytes of which every aligned word may be a pointer (Boehm's
 * GC_MALLOC): for memory whose layout C cannot describe. */
GORT_API void *gort_alloc_conservative(size_t size);

/* The write barrier's flag and slow path, for GORT_STORE (not to be called
 * directly). The flag is nonzero while the collector marks. */
GORT_API extern volatile uint32_t gort__writebarrier;
GORT_API void gort__wb_slow(void *old_value, void *new_value);

/* lvalue = ptr, with Go's hybrid write barrier: while the collector marks,
 * the old and the new value are shaded. A statement; ptr is evaluated once;
 * lvalue must be a pointer-typed lvalue without side effects (it is read
 * and written once each). Stores into the current stack need no barrier. */
#define GORT_STORE(lvalue, ptr)                                                                    \
    do {                                                                                           \
        __typeof__(lvalue) *gort__slot_ = &(lvalue);                                               \
        __typeof__(lvalue) gort__new_ = (ptr);                                                     \
        void *gort__old_ = (void *)*gort__slot_;                                                   \
        *gort__slot_ = gort__new_;                                                                 \
        __asm__ __volatile__("" ::: "memory"); /* the flag is read after the store */              \
        if (__builtin_expect(gort__writebarrier != 0, 0))                                          \
            gort__wb_slow(gort__old_, (void *)gort__new_);                                         \
    } while (0)

/* memmove of n objects of type t from src to dst, with the write barrier on
 * every pointer word it overwrites (Go's typedmemmove): for copying structs
 * that hold GC pointers into GC objects, globals or registered roots. */
GORT_API void gort_copy_typed(void *dst, const void *src, const gort_type *t, size_t n);

/* Runs a full collection and waits for it, sweep included (runtime.GC). */
GORT_API void gort_gc(void);
/* Sets GOGC (debug.SetGCPercent): the heap may grow by percent % of the
 * live heap before the next cycle; < 0 turns the collector off (only
 * gort_gc and the memory limit start cycles then). Returns the previous
 * value. */
GORT_API int gort_set_gc_percent(int percent);

/* Runs fn(obj, arg) on the finalizer goroutine (or thread) once obj is
 * found unreachable (runtime.SetFinalizer); obj is kept for one more cycle
 * so that fn can use it. Objects reachable from obj stay alive until its
 * finalizer has run (Go's ordering: A -> B, A's finalizer first). fn NULL
 * clears obj's finalizer. obj must be the start of a GC object (a fatal
 * error otherwise); a second finalizer on one object is a fatal error, as
 * in Go. arg is kept alive as long as the finalizer is set. */
GORT_API void gort_set_finalizer(void *obj, void (*fn)(void *obj, void *arg), void *arg);
/* Keeps obj reachable up to this call (runtime.KeepAlive). */
GORT_API void gort_keep_alive(void *obj);

/* Attaches a cleanup to obj (Go 1.24's runtime.AddCleanup): some time after
 * obj is found unreachable, fn(arg) runs on the finalizer goroutine (or
 * thread), once. Unlike a finalizer it does not get obj, which is freed:
 * nothing is resurrected. arg is kept alive until fn has run, so arg must
 * not reach obj (or obj is never collected); arg inside obj's own block is
 * a fatal error, as are obj NULL or not in a GC object. Any number per
 * object, interior pointers allowed (cleanups on the same address run in no
 * particular order). An object with a finalizer too runs its finalizer
 * first; its cleanups run only once it is found unreachable again, without
 * a finalizer (Go's rule). Returns 0, -EINVAL (fn NULL) or -ENOMEM. */
GORT_API int gort_add_cleanup(void *obj, void (*fn)(void *arg), void *arg);

/* Weak pointers (Go 1.24's weak.Pointer). gort_weak_make(obj) returns obj's
 * handle: a small GC object of its own (keep it like any GC pointer, with
 * GORT_STORE), which does not keep obj alive. The same address gives the
 * same handle as long as the object lives, so handles compare equal as the
 * pointers do (different fields of one object give different handles).
 * gort_weak_get returns the address again, or NULL once the object was
 * found unreachable: from the cycle that finds it so, even if a finalizer
 * then resurrects it (a handle made after that is a new one). A pointer
 * gort_weak_get returns is an ordinary strong pointer: what it points to
 * stays alive as long as the program keeps it, as any other. obj NULL gives
 * a NULL handle, whose gort_weak_get is NULL; obj not in a GC object is a
 * fatal error. NULL when out of memory. */
typedef struct gort_weak gort_weak;
GORT_API gort_weak *gort_weak_make(void *obj);
GORT_API void *gort_weak_get(gort_weak *w);

/* Sets the memory limit (debug.SetMemoryLimit; GORT_GOMEMLIMIT at start,
 * with Go's syntax: 512MiB, 2GiB, off): a soft limit on everything gort maps
 * for the program (the heap, goroutine stacks, the runtime's metadata) less
 * what it returned to the OS. The collector's heap goal becomes the lower
 * of GOGC's and the limit's, and the scavenger returns free memory eagerly
 * when the process is above it. With GOGC off (gort_set_gc_percent(-1)) the
 * heap grows until the limit, and only then is collected. INT64_MAX: no
 * limit. bytes < 0 only queries. Returns the previous limit. A live set
 * near or over the limit would have the collector run all the time: the GC
 * CPU limiter then caps the collector at about half the CPU (Go's 50% over
 * a window of GOMAXPROCS seconds) and lets the heap pass the limit rather
 * than stall the program; MemStats (limiter_*) and gctrace ("GC CPU limiter
 * on") show it. */
GORT_API int64_t gort_set_memory_limit(int64_t bytes);
/* Beyond Go: fn(arg) is called on a runtime goroutine (the finalizer
 * goroutine, or thread) when the GC CPU limiter has been engaged for a
 * sustained period (1 s): the live heap does not fit in the memory limit,
 * and a server can shed load before it runs out. Called again only after
 * the limiter has let go (its bucket half drained) and engaged again for
 * as long. fn should return soon (start a goroutine for long work). fn NULL
 * removes the callback. */
GORT_API void gort_set_memory_limit_callback(void (*fn)(void *arg), void *arg);
/* Runs a full collection (gort_gc), then returns every free page of the
 * heap and every cached goroutine stack to the OS (debug.FreeOSMemory):
 * what stays resident is the live heap, its fragmentation and the runtime's
 * metadata. Also declared in gort/malloc.h (without a collection when the
 * program never used the GC heap). */
GORT_API void gort_free_os_memory(void);

/* Registers [start, start + len) as a root: every aligned word in it that
 * points into a GC object keeps that object alive. Stores of GC pointers
 * into it must go through GORT_STORE. 0, -EINVAL (bad range) or -ENOMEM. */
GORT_API int gort_add_roots(void *start, size_t len);
/* Removes a range given to gort_add_roots (same start and len): 0 or
 * -ENOENT. */
GORT_API int gort_remove_roots(void *start, size_t len);

GORT_EXTERN_C_END

#endif
