/* Fatal errors, Go's throw and panic.
 *
 * throw prints "fatal error: <msg>", then the goroutine dump when the
 * scheduler has installed one, and exits with status 2, as Go's throw does.
 * gopanic prints "panic: <msg>" (Go's unrecovered panic) the same way.
 * Neither allocates nor returns; both may be called with runtime locks held.
 * Both flush stdout first when that is safe (fatal.c). */
#ifndef GORT_BASE_FATAL_H
#define GORT_BASE_FATAL_H

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define dump_hook       gort__dump_hook
#define fatal_in_signal gort__fatal_in_signal
#define gopanic         gort__gopanic
#define panic_nil       gort__panic_nil
#define throw_oom       gort__throw_oom
#define throw gort__throw
#define throwf gort__throwf

#include <stddef.h>
#include <stdint.h>

__attribute__((noreturn, cold)) void throw(const char *msg);
__attribute__((noreturn, cold, format(printf, 1, 2))) void throwf(const char *fmt, ...);
__attribute__((noreturn, cold)) void gopanic(const char *msg);
/* Go's panic for a nil pointer dereference ("panic: runtime error: invalid
 * memory address or nil pointer dereference" and its [signal SIGSEGV ...]
 * line), for a public function given NULL where Go would dereference nil;
 * pc names the caller (PANIC_IF_NIL passes the return address). */
__attribute__((noreturn, cold)) void panic_nil(uintptr_t pc);
/* Go's fatal out-of-memory ("runtime: out of memory: cannot allocate N-byte
 * block", then "fatal error: out of memory"): how every runtime object that
 * cannot be allocated ends (the malloc family alone returns NULL, as C's). */
__attribute__((noreturn, cold)) void throw_oom(size_t n);
#define PANIC_IF_NIL(p)                                                                            \
    do {                                                                                           \
        if (__builtin_expect((p) == NULL, 0)) panic_nil((uintptr_t)__builtin_return_address(0));   \
    } while (0)
/* Nonzero on a thread whose fatal error comes from a signal handler (a
 * stack overflow): the fatal path then leaves stdio alone. */
extern __thread int fatal_in_signal __attribute__((tls_model("initial-exec")));

/* Installed by the scheduler: prints every goroutine's state and stack. */
extern void (*dump_hook)(void);

/* Assertions in levels, as mimalloc's: GORT_DEBUG 1 enables the cheap ones,
 * 2 also enables checks that walk data structures. */
#ifndef GORT_DEBUG
#define GORT_DEBUG 0
#endif
#define assert_internal(c)                                                                         \
    do {                                                                                           \
        if (GORT_DEBUG >= 1 && !(c))                                                               \
            throwf("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__);                        \
    } while (0)
#define assert_expensive(c)                                                                        \
    do {                                                                                           \
        if (GORT_DEBUG >= 2 && !(c))                                                               \
            throwf("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__);                        \
    } while (0)

#endif
