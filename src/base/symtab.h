/* Symbolization of code addresses: the function that contains a pc and the
 * object (executable or shared library) it belongs to, for goroutine dumps
 * and, later, profiles.
 *
 * dladdr knows only exported (dynamic) symbols; static functions are looked
 * up in the object file's ELF .symtab, which is read from the file itself.
 * The main program's file is /proc/self/exe, never argv[0] (which dladdr
 * reports for it, and which fails after a chdir or a PATH lookup).
 *
 * Not thread-safe and not reentrant: one caller at a time (the fatal path).
 * It never allocates: object files are mapped read-only and the last one
 * stays mapped. */
#ifndef GORT_BASE_SYMTAB_H
#define GORT_BASE_SYMTAB_H

#include <stdbool.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define symtab_lookup gort__symtab_lookup

typedef struct symtab_sym {
    const char *func;   /* the function's name, or NULL if unknown */
    uintptr_t start;    /* its first instruction (valid when func != NULL) */
    const char *object; /* the object's path, or NULL if pc is in no object */
    uintptr_t base;     /* the object's load base */
} symtab_sym;

/* Looks up pc (an address inside an instruction: for a return address, pass
 * pc - 1). True if pc is inside a loaded object; out->func may still be
 * NULL when the object has no symbol for it. */
bool symtab_lookup(uintptr_t pc, symtab_sym *out);

#endif
