#include "base/fatal.h"
#include "base/print.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

void (*dump_hook)(void);
__thread int fatal_in_signal __attribute__((tls_model("initial-exec")));

static int dying; /* a second fatal error while dying exits at once */

/* What the program wrote to stdout and has not flushed yet would be lost by
 * _exit: C programs expect exit-time flushing (Go has no buffered stdout to
 * lose). Flush it first, when that is safe: not from a signal handler (the
 * interrupted code may be inside stdio), and only if no other thread holds
 * the stream (ftrylockfile), so that a fatal error never waits on a lock.
 * stderr is unbuffered; other streams are the program's (exit's job). */
static void flush_stdout(void) {
    if (fatal_in_signal) return;
    if (ftrylockfile(stdout) != 0) return;
    fflush_unlocked(stdout);
    funlockfile(stdout);
}

__attribute__((noreturn)) static void die(const char *kind, const char *msg) {
    if (__atomic_fetch_add(&dying, 1, __ATOMIC_ACQ_REL) > 0) _exit(2);
    flush_stdout();
    print("%s%s\n", kind, msg);
    if (dump_hook) dump_hook();
    _exit(2);
}

void throw(const char *msg) {
    die("fatal error: ", msg);
}

void gopanic(const char *msg) {
    die("panic: ", msg);
}

void throwf(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprint(buf, sizeof buf, fmt, ap);
    va_end(ap);
    die("fatal error: ", buf);
}

void throw_oom(size_t n) {
    print("runtime: out of memory: cannot allocate %zu-byte block\n", n);
    throw("out of memory");
}

void panic_nil(uintptr_t pc) {
    char buf[256];
    snprint(buf, sizeof buf,
            "runtime error: invalid memory address or nil pointer dereference\n"
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=%p]",
            (void *)pc);
    die("panic: ", buf);
}
