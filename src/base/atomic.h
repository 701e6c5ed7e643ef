/* Atomics: thin names over the GCC/Clang __atomic builtins.
 *
 * Runtime code uses these rather than <stdatomic.h> so that a field can be
 * accessed atomically in one place and plainly (under a lock, or while it is
 * still private) in another, as Go's runtime/internal/atomic allows. Every
 * shared field documents which one applies. */
#ifndef GORT_BASE_ATOMIC_H
#define GORT_BASE_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

#define atomic_load_relaxed(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define atomic_load_acq(p)         __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define atomic_store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define atomic_store_rel(p, v)     __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define atomic_xchg(p, v)          __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
#define atomic_xadd(p, v)          __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
#define atomic_xadd_relaxed(p, v)  __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define atomic_or(p, v)            __atomic_fetch_or((p), (v), __ATOMIC_ACQ_REL)
#define atomic_and(p, v)           __atomic_fetch_and((p), (v), __ATOMIC_ACQ_REL)
/* Strong compare-and-swap; on failure *expected is updated with the value seen. */
#define atomic_cas(p, expected, desired)                                                           \
    __atomic_compare_exchange_n((p), (expected), (desired), false, __ATOMIC_ACQ_REL,               \
                                __ATOMIC_ACQUIRE)
#define atomic_fence()     __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define compiler_barrier() __asm__ __volatile__("" ::: "memory")

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#endif
