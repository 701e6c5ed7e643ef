#include "base/fatal.h"
#include "base/print.h"

#include <stdarg.h>
#include <unistd.h>

void (*gort_dump_hook)(void);

static int dying; /* a second fatal error while dying exits at once */

__attribute__((noreturn)) static void die(const char *kind, const char *msg) {
    if (__atomic_fetch_add(&dying, 1, __ATOMIC_ACQ_REL) > 0) _exit(2);
    gort_print("%s%s\n", kind, msg);
    if (gort_dump_hook) gort_dump_hook();
    _exit(2);
}

void gort_throw(const char *msg) {
    die("fatal error: ", msg);
}

void gort_panic(const char *msg) {
    die("panic: ", msg);
}

void gort_throwf(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    gort_vsnprint(buf, sizeof buf, fmt, ap);
    va_end(ap);
    die("fatal error: ", buf);
}
