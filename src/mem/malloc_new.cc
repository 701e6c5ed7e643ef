/* C++'s operator new and delete for libgort-malloc.so, in all twenty forms
 * (plain, array, nothrow, aligned, sized, and their combinations), under
 * their Itanium C++ ABI names: a C++ program's allocations under LD_PRELOAD
 * come straight to gort, instead of through libstdc++'s operator new and a
 * second call into malloc (3-4% of mimalloc-bench's alloc-test and larson).
 * Compiled only into the preload library (GORT_PRELOAD_CXX); libgort stays
 * C. The hottest ones are in malloc.c: operator new and new[] run malloc's
 * fast path inline, and the twelve deletes are aliases of gort_free (a size
 * or an alignment after the pointer is ignored: gort finds an object's
 * span from its address, and trusting the size would only trade the
 * double-free and foreign-pointer checks for nothing). Here: the nothrow
 * and aligned forms of new (gort_malloc; gort_posix_memalign with the
 * alignment as given, at least a pointer's), and every failure path.
 *
 * Failure is the standard's (C++17 [new.delete]): new calls the new_handler
 * and retries until the handler is null, then throws std::bad_alloc; the
 * nothrow forms return NULL instead, also when the handler throws. That
 * loop is already written, exactly so, in the C++ runtime the program uses:
 * libstdc++'s (or libc++'s) operator new calls malloc (ours, so gort's
 * heap) in that loop, and its nothrow new catches around operator new. So
 * a failed allocation here hands the request to the next definition of the
 * same operator in the symbol search order (dlsym RTLD_NEXT), once gort
 * has said no. This file then needs none of the C++ runtime itself: no
 * throw, no catch (so no personality routine, no typeinfo), nothing that
 * would make libgort-malloc.so depend on libstdc++. A C program preloading
 * it does not load libstdc++ (about 1.5 MiB of RSS per process); a C++
 * program has it already. Should no runtime be found (a C program calling
 * these through dlopen'ed local code), a failed new is a fatal error.
 *
 * Exceptions thrown by the runtime's operator new, or by a new_handler,
 * unwind through the frames here: they hold no cleanups, and x86_64's
 * asynchronous unwind tables describe them. The gort functions are
 * declared noexcept (they never throw; misuse is a fatal error), so the
 * noexcept operators need no terminate handlers either. */
#include <cstddef>
#include <new>

#include <dlfcn.h>

extern "C" {
void *gort_malloc(std::size_t n) noexcept;
void gort_free(void *p) noexcept;
int gort_posix_memalign(void **out, std::size_t align, std::size_t n) noexcept;
/* base/fatal.h's throw, by its symbol: that header's macro for the name
 * would take C++'s keyword. */
[[noreturn]] void gort__throw(const char *msg) noexcept;
}

#define EXPORT __attribute__((visibility("default")))

namespace {

using std::align_val_t;
using std::nothrow_t;
using std::size_t;

/* The next definition of an operator (the C++ runtime's), found once. */
template <typename F> F next_operator(F &cache, const char *name) noexcept {
    F f = __atomic_load_n(&cache, __ATOMIC_ACQUIRE);
    if (!f) {
        f = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
        if (!f) gort__throw("out of memory in operator new, and no C++ runtime to throw bad_alloc");
        __atomic_store_n(&cache, f, __ATOMIC_RELEASE);
    }
    return f;
}

using new_fn = void *(*)(size_t);
using new_nothrow_fn = void *(*)(size_t, const nothrow_t &) noexcept;
using new_aligned_fn = void *(*)(size_t, align_val_t);
using new_aligned_nothrow_fn = void *(*)(size_t, align_val_t, const nothrow_t &) noexcept;

new_fn next_new;
new_nothrow_fn next_new_nothrow, next_new_array_nothrow;
new_aligned_fn next_new_aligned, next_new_array_aligned;
new_aligned_nothrow_fn next_new_aligned_nothrow, next_new_array_aligned_nothrow;

/* gort said no: the runtime's operator runs the new_handler loop (calling
 * our malloc or aligned_alloc again) and throws, or returns NULL. */
[[gnu::noinline, gnu::cold]] void *retry_new_nothrow(size_t n, const nothrow_t &t) noexcept {
    return next_operator(next_new_nothrow, "_ZnwmRKSt9nothrow_t")(n, t);
}
[[gnu::noinline, gnu::cold]] void *retry_new_array_nothrow(size_t n, const nothrow_t &t) noexcept {
    return next_operator(next_new_array_nothrow, "_ZnamRKSt9nothrow_t")(n, t);
}
[[gnu::noinline, gnu::cold]] void *retry_new_aligned(size_t n, align_val_t a) {
    return next_operator(next_new_aligned, "_ZnwmSt11align_val_t")(n, a);
}
[[gnu::noinline, gnu::cold]] void *retry_new_array_aligned(size_t n, align_val_t a) {
    return next_operator(next_new_array_aligned, "_ZnamSt11align_val_t")(n, a);
}
[[gnu::noinline, gnu::cold]] void *retry_new_aligned_nothrow(size_t n, align_val_t a,
                                                             const nothrow_t &t) noexcept {
    return next_operator(next_new_aligned_nothrow, "_ZnwmSt11align_val_tRKSt9nothrow_t")(n, a, t);
}
[[gnu::noinline, gnu::cold]] void *retry_new_array_aligned_nothrow(size_t n, align_val_t a,
                                                                   const nothrow_t &t) noexcept {
    return next_operator(next_new_array_aligned_nothrow, "_ZnamSt11align_val_tRKSt9nothrow_t")(n, a,
                                                                                               t);
}

/* An aligned object from gort, or NULL (an alignment that is not a power
 * of two, which the standard leaves undefined, fails here and is the
 * runtime's to judge). */
inline void *aligned(size_t n, align_val_t a) noexcept {
    size_t al = static_cast<size_t>(a);
    void *p;
    if (al < sizeof(void *)) al = sizeof(void *);
    return gort_posix_memalign(&p, al, n) == 0 ? p : nullptr;
}

} // namespace

/* operator new and new[] are malloc.c's (malloc's fast path inline); this
 * is their failure path. */
extern "C" void *gort__cxx_new_retry(size_t n) {
    return next_operator(next_new, "_Znwm")(n);
}

EXPORT void *operator new(size_t n, const nothrow_t &t) noexcept {
    void *p = gort_malloc(n);
    return __builtin_expect(p != nullptr, 1) ? p : retry_new_nothrow(n, t);
}
EXPORT void *operator new[](size_t n, const nothrow_t &t) noexcept {
    void *p = gort_malloc(n);
    return __builtin_expect(p != nullptr, 1) ? p : retry_new_array_nothrow(n, t);
}
EXPORT void *operator new(size_t n, align_val_t a) {
    void *p = aligned(n, a);
    return __builtin_expect(p != nullptr, 1) ? p : retry_new_aligned(n, a);
}
EXPORT void *operator new[](size_t n, align_val_t a) {
    void *p = aligned(n, a);
    return __builtin_expect(p != nullptr, 1) ? p : retry_new_array_aligned(n, a);
}
EXPORT void *operator new(size_t n, align_val_t a, const nothrow_t &t) noexcept {
    void *p = aligned(n, a);
    return __builtin_expect(p != nullptr, 1) ? p : retry_new_aligned_nothrow(n, a, t);
}
EXPORT void *operator new[](size_t n, align_val_t a, const nothrow_t &t) noexcept {
    void *p = aligned(n, a);
    return __builtin_expect(p != nullptr, 1) ? p : retry_new_array_aligned_nothrow(n, a, t);
}
