/* Fatal errors, Go's throw and panic.
 *
 * gort_throw prints "fatal error: <msg>", then the goroutine dump when the
 * scheduler has installed one, and exits with status 2, as Go's throw does.
 * gort_panic prints "panic: <msg>" (Go's unrecovered panic) the same way.
 * Neither allocates nor returns; both may be called with runtime locks held. */
#ifndef GORT_BASE_FATAL_H
#define GORT_BASE_FATAL_H

__attribute__((noreturn, cold)) void gort_throw(const char *msg);
__attribute__((noreturn, cold, format(printf, 1, 2))) void gort_throwf(const char *fmt, ...);
__attribute__((noreturn, cold)) void gort_panic(const char *msg);

/* Installed by the scheduler: prints every goroutine's state and stack. */
extern void (*gort_dump_hook)(void);

/* Assertions in levels, as mimalloc's: GORT_DEBUG 1 enables the cheap ones,
 * 2 also enables checks that walk data structures. */
#ifndef GORT_DEBUG
#define GORT_DEBUG 0
#endif
#define gort_assert(c)                                                                             \
    do {                                                                                           \
        if (GORT_DEBUG >= 1 && !(c))                                                               \
            gort_throwf("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__);                   \
    } while (0)
#define gort_assert_expensive(c)                                                                   \
    do {                                                                                           \
        if (GORT_DEBUG >= 2 && !(c))                                                               \
            gort_throwf("assertion failed: %s (%s:%d)", #c, __FILE__, __LINE__);                   \
    } while (0)

#endif
