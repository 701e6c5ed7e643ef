/* A small DWARF line-table reader: source file and line of a code address,
 * from the .debug_line section of a mapped ELF file (DWARF versions 2 to 5,
 * as gcc and clang emit them), for goroutine dumps and profiles.
 *
 * dwarf_lines_build runs every line program of the file once and keeps its
 * rows, sorted by address, in memory it maps itself (never malloc: this
 * runs on the fatal path, and gort is malloc under LD_PRELOAD). A lookup is
 * then a binary search, and the file name is read from the row's unit
 * header, in place: the strings returned point into the mapped file.
 *
 * Not supported (a lookup then finds nothing, and callers print what they
 * had before): compressed debug sections, split DWARF (.dwo), separate debug
 * files, and DWARF 5 string forms that need .debug_str_offsets. */
#ifndef GORT_BASE_DWARF_H
#define GORT_BASE_DWARF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define dwarf_elf_section  gort__dwarf_elf_section
#define dwarf_lines_build  gort__dwarf_lines_build
#define dwarf_lines_lookup gort__dwarf_lines_lookup
#define dwarf_lines_free   gort__dwarf_lines_free

typedef struct dwarf_row {
    uint64_t addr; /* the link-time address the row starts at */
    uint32_t line; /* 0: the end of a sequence (no line from here) */
    uint32_t file; /* the file's index in its unit's file table */
    uint32_t cu;   /* the unit: an index into dwarf_lines.units */
    uint32_t pad;
} dwarf_row;

typedef struct dwarf_lines {
    const uint8_t *line, *line_str, *str; /* .debug_line, .debug_line_str, .debug_str */
    size_t line_len, line_str_len, str_len;
    dwarf_row *rows; /* sorted by addr; an end row sorts before a start at the same addr */
    size_t nrows;
    uint64_t *units; /* offset of each unit's header in .debug_line */
    size_t nunits;
    void *map; /* the one mapping that holds rows and units */
    size_t map_len;
} dwarf_lines;

/* The contents of section name of the ELF image [img, img + len), or NULL. */
const uint8_t *dwarf_elf_section(const uint8_t *img, size_t len, const char *name, size_t *size);
/* Indexes the line tables of the ELF image. 0, or a negative errno
 * (-ENOENT: no .debug_line; -ENOMEM). */
int dwarf_lines_build(dwarf_lines *dl, const uint8_t *img, size_t len);
/* The row covering addr (a link-time address): its directory (may be NULL
 * or empty), file name and line. False if no row covers it. */
bool dwarf_lines_lookup(const dwarf_lines *dl, uint64_t addr, const char **dir, const char **file,
                        int *line);
void dwarf_lines_free(dwarf_lines *dl);

#endif
