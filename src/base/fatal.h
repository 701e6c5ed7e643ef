/* Fatal errors, Go's throw and panic.
 *
 * throw prints "fatal error: <msg>", then the goroutine dump when the
 * scheduler has installed one, and exits with status 2, as Go's throw does.
 * gopanic prints "panic: <msg>" (Go's unrecovered panic) the same way.
 * Neither allocates nor returns; both may be called with runtime locks held. */
#ifndef GORT_BASE_FATAL_H
#define GORT_BASE_FATAL_H

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define dump_hook gort__dump_hook
#define gopanic   gort__gopanic
#define throw gort__throw
#define throwf gort__throwf

__attribute__((noreturn, cold)) void throw(const char *msg);
__attribute__((noreturn, cold, format(printf, 1, 2))) void throwf(const char *fmt, ...);
__attribute__((noreturn, cold)) void gopanic(const char *msg);

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
