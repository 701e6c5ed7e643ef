#include "base/fatal.h"
#include "base/print.h"

#include <stdarg.h>
#include <unistd.h>

void (*dump_hook)(void);

static int dying; /* a second fatal error while dying exits at once */

__attribute__((noreturn)) static void die(const char *kind, const char *msg) {
    if (__atomic_fetch_add(&dying, 1, __ATOMIC_ACQ_REL) > 0) _exit(2);
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
