/* Which sanitizer and debugger hooks this build compiles in, decided once
 * for every file: GORT_HAVE_ASAN (ASan: gcc defines __SANITIZE_ADDRESS__,
 * clang has __has_feature; CMake's GORT_SANITIZE also defines GORT_ASAN) and
 * GORT_HAVE_VALGRIND (valgrind's client requests, when its header is
 * installed: they cost a few no-op instructions outside valgrind). */
#ifndef GORT_BASE_SANITIZER_H
#define GORT_BASE_SANITIZER_H

#if defined(GORT_ASAN) || defined(__SANITIZE_ADDRESS__)
#define GORT_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORT_HAVE_ASAN 1
#endif
#endif
#ifndef GORT_HAVE_ASAN
#define GORT_HAVE_ASAN 0
#endif
#if GORT_HAVE_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

/* Code that reads memory ASan considers off limits on purpose (below a
 * stack's lowest live frame, guard neighbourhoods, conservative scans).
 * Such a function must not inline (always_inline) instrumented code with
 * addressable locals: gcc keeps their use-after-scope poisoning but gives
 * the NO_ASAN function no frame to clear it, so the poison outlives the
 * call below the stack pointer and a later frame there is reported (call
 * it out of line under ASan, as gc_scanblock does; tests/asan_shadow.sh). */
#define NO_ASAN __attribute__((no_sanitize_address))

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GORT_HAVE_VALGRIND 1
#endif
#endif
#ifndef GORT_HAVE_VALGRIND
#define GORT_HAVE_VALGRIND 0
#endif

#endif
