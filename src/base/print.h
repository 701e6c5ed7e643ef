/* Formatted output that never allocates (safe inside malloc, signal handlers
 * and fatal paths), as Go's runtime print.
 *
 * Formats: %s %c %d %i %u %x %X %p %%, with the l, ll and z length modifiers,
 * a field width and the 0 flag. No floating point: callers print fixed-point. */
#ifndef GORT_BASE_PRINT_H
#define GORT_BASE_PRINT_H

#include <stdarg.h>
#include <stddef.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define print    gort__print
#define snprint  gort__snprint
#define vsnprint gort__vsnprint

/* Like snprintf; returns the length written (truncated to cap-1). */
size_t vsnprint(char *buf, size_t cap, const char *fmt, va_list ap);
size_t snprint(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Writes to fd 2 in one write(2) per call (lines from threads do not interleave). */
void print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
