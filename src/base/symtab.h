/* Symbolization of code addresses: the function that contains a pc, its
 * source file and line, and the object (executable or shared library) it
 * belongs to, for goroutine dumps and profiles.
 *
 * Functions come from the object file's ELF .symtab (static functions
 * included), else from dladdr; file and line from its DWARF line table
 * (base/dwarf.h) when the object was built with -g. The main program's
 * file is /proc/self/exe, never argv[0] (which dladdr reports for it, and
 * which fails after a chdir or a PATH lookup).
 *
 * Each object file is mapped read-only once and indexed (sorted function
 * symbols, sorted line rows) in memory mapped for the purpose: nothing here
 * calls malloc, so it serves the fatal path. Lookups are serialized by an
 * internal lock; a fatal error that finds it held (by its own thread, or for
 * long) goes ahead without it. The strings returned point into the mapped
 * files, which stay mapped for the life of the process (up to
 * SYMTAB_MAX_OBJECTS files; beyond that, objects get dladdr's names only). */
#ifndef GORT_BASE_SYMTAB_H
#define GORT_BASE_SYMTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define symtab_lookup   gort__symtab_lookup
#define symtab_name     gort__symtab_name
#define symtab_path     gort__symtab_path
#define symtab_self_exe gort__symtab_self_exe

#define SYMTAB_MAX_OBJECTS 64

typedef struct symtab_sym {
    const char *func;   /* the function's name, or NULL if unknown */
    uintptr_t start;    /* its first instruction (valid when func != NULL) */
    bool sized;         /* func is an ELF function symbol whose size covers pc: the bytes
                           from start to pc are its code (else dladdr's nearest symbol) */
    const char *object; /* the object's path, or NULL if pc is in no object */
    uintptr_t base;     /* the object's load base */
    const char *dir;    /* the source file's directory (NULL or "" if unknown) */
    const char *file;   /* the source file, or NULL if the object has no line table for pc */
    int line;           /* its line (valid when file != NULL) */
} symtab_sym;

/* Looks up pc (an address inside an instruction: for a return address, pass
 * pc - 1). True if pc is inside a loaded object; out->func and out->file may
 * still be NULL when the object has no symbol or no line for it. */
bool symtab_lookup(uintptr_t pc, symtab_sym *out);
/* The source path of s (dir/file, or file alone when it is absolute or has
 * no directory) into buf; its length (truncated to cap - 1), 0 if unknown. */
size_t symtab_path(const symtab_sym *s, char *buf, size_t cap);
/* name without a compiler's clone suffix (gcc's .constprop.0, .isra.0,
 * .part.0, .cold), copied into buf: the function as its source names it. */
const char *symtab_name(const char *name, char *buf, size_t cap);
/* The main program's path (/proc/self/exe's target, read once). */
const char *symtab_self_exe(void);

#endif
