/* The DWARF line-table reader (dwarf.h).
 *
 * Two passes over .debug_line: the first counts the rows of every unit's
 * line program, the second stores them into one anonymous mapping; then a
 * heap sort (no allocation) orders them by address. Every read is bounds
 * checked against its section: a malformed or truncated table ends its
 * unit, never the program. */
#define _GNU_SOURCE
#include "base/dwarf.h"

#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

const uint8_t *dwarf_elf_section(const uint8_t *img, size_t len, const char *name, size_t *size) {
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
        eh->e_shoff > len || (len - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum ||
        eh->e_shstrndx >= eh->e_shnum)
        return NULL;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    const Elf64_Shdr *strs = &sh[eh->e_shstrndx];
    if (strs->sh_offset > len || strs->sh_size > len - strs->sh_offset) return NULL;
    const char *names = (const char *)img + strs->sh_offset;
    size_t nlen = strlen(name);
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_name + nlen + 1 > strs->sh_size) continue;
        if (memcmp(names + sh[i].sh_name, name, nlen + 1) != 0) continue;
        if (sh[i].sh_type == SHT_NOBITS || (sh[i].sh_flags & SHF_COMPRESSED)) return NULL;
        if (sh[i].sh_offset > len || sh[i].sh_size > len - sh[i].sh_offset) return NULL;
        *size = sh[i].sh_size;
        return img + sh[i].sh_offset;
    }
    return NULL;
}

/* ---- a bounds-checked reader ---- */

typedef struct rd {
    const uint8_t *p, *end;
    bool bad;
} rd;

static uint64_t rd_fixed(rd *r, unsigned n) {
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static uint64_t rd_uleb(rd *r) {
    uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
        if (r->bad || r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        uint8_t b = *r->p++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
}

static int64_t rd_sleb(rd *r) {
    int64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        if (r->bad || r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        b = *r->p++;
        if (shift < 64) v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40)) v |= (int64_t)(~(uint64_t)0 << shift);
    return v;
}

static const char *rd_str(rd *r) {
    const uint8_t *s = r->p;
    while (r->p < r->end && *r->p) r->p++;
    if (r->p >= r->end) {
        r->bad = true;
        return NULL;
    }
    r->p++;
    return (const char *)s;
}

static void rd_skip(rd *r, uint64_t n) {
    if (r->bad || (uint64_t)(r->end - r->p) < n) {
        r->bad = true;
        return;
    }
    r->p += n;
}

/* ---- a unit's header ---- */

enum {
    DW_FORM_block2 = 0x03,
    DW_FORM_block4 = 0x04,
    DW_FORM_data2 = 0x05,
    DW_FORM_data4 = 0x06,
    DW_FORM_data8 = 0x07,
    DW_FORM_string = 0x08,
    DW_FORM_block = 0x09,
    DW_FORM_block1 = 0x0a,
    DW_FORM_data1 = 0x0b,
    DW_FORM_sdata = 0x0d,
    DW_FORM_strp = 0x0e,
    DW_FORM_udata = 0x0f,
    DW_FORM_data16 = 0x1e,
    DW_FORM_line_strp = 0x1f,
    DW_LNCT_path = 1,
    DW_LNCT_directory_index = 2,
};

typedef struct unit {
    rd prog; /* the line program */
    unsigned version;
    bool dwarf64;
    uint8_t min_inst, line_base_neg, line_range, opcode_base;
    int8_t line_base;
    bool default_stmt;
    const uint8_t *std_lengths;
    /* v2-4: the include_directories and file_names tables; v5: the entry
     * formats and tables. */
    const uint8_t *dirs, *files, *hdr_end;
    uint8_t dir_fmt_n, file_fmt_n;
    const uint8_t *dir_fmt, *file_fmt;
    uint64_t ndirs, nfiles;
} unit;

/* Parses the header at off; *next is the following unit's offset. */
static bool unit_parse(const dwarf_lines *dl, uint64_t off, unit *u, uint64_t *next) {
    rd r = {dl->line + off, dl->line + dl->line_len, false};
    if (off >= dl->line_len) return false;
    uint64_t len = rd_fixed(&r, 4);
    u->dwarf64 = len == 0xffffffffu;
    if (u->dwarf64) len = rd_fixed(&r, 8);
    if (r.bad || len > (uint64_t)(r.end - r.p)) return false;
    *next = (uint64_t)(r.p - dl->line) + len;
    r.end = r.p + len;
    u->version = (unsigned)rd_fixed(&r, 2);
    if (u->version < 2 || u->version > 5) return false;
    if (u->version >= 5) {
        if (rd_fixed(&r, 1) != 8) return false; /* address size */
        rd_fixed(&r, 1);                        /* segment selector size */
    }
    uint64_t hlen = rd_fixed(&r, u->dwarf64 ? 8 : 4);
    if (r.bad || hlen > (uint64_t)(r.end - r.p)) return false;
    u->hdr_end = r.p + hlen;
    u->prog = (rd){r.p + hlen, r.end, false};
    u->min_inst = (uint8_t)rd_fixed(&r, 1);
    if (u->version >= 4) rd_fixed(&r, 1); /* maximum operations per instruction */
    u->default_stmt = rd_fixed(&r, 1) != 0;
    u->line_base = (int8_t)rd_fixed(&r, 1);
    u->line_range = (uint8_t)rd_fixed(&r, 1);
    u->opcode_base = (uint8_t)rd_fixed(&r, 1);
    if (r.bad || u->line_range == 0 || u->opcode_base == 0) return false;
    u->std_lengths = r.p;
    rd_skip(&r, u->opcode_base - 1u);
    if (r.bad) return false;
    if (u->version < 5) {
        u->dirs = r.p;
        while (!r.bad && r.p < u->hdr_end && *r.p) rd_str(&r);
        rd_skip(&r, 1);
        u->files = r.p;
        return !r.bad;
    }
    u->dir_fmt_n = (uint8_t)rd_fixed(&r, 1);
    u->dir_fmt = r.p;
    for (unsigned i = 0; i < u->dir_fmt_n; i++) rd_uleb(&r), rd_uleb(&r);
    u->ndirs = rd_uleb(&r);
    u->dirs = r.p;
    return !r.bad;
}

/* Skips (or reads, for the path and directory index) one v5 entry field. */
static bool read_form(const dwarf_lines *dl, const unit *u, rd *r, uint64_t form, const char **s,
                      uint64_t *num) {
    *s = NULL;
    *num = 0;
    switch (form) {
    case DW_FORM_string:
        *s = rd_str(r);
        break;
    case DW_FORM_line_strp:
    case DW_FORM_strp: {
        uint64_t o = rd_fixed(r, u->dwarf64 ? 8 : 4);
        const uint8_t *base = form == DW_FORM_line_strp ? dl->line_str : dl->str;
        size_t blen = form == DW_FORM_line_strp ? dl->line_str_len : dl->str_len;
        if (base && o < blen && memchr(base + o, 0, blen - o)) *s = (const char *)base + o;
        break;
    }
    case DW_FORM_data1:
        *num = rd_fixed(r, 1);
        break;
    case DW_FORM_data2:
        *num = rd_fixed(r, 2);
        break;
    case DW_FORM_data4:
        *num = rd_fixed(r, 4);
        break;
    case DW_FORM_data8:
        *num = rd_fixed(r, 8);
        break;
    case DW_FORM_data16:
        rd_skip(r, 16);
        break;
    case DW_FORM_udata:
        *num = rd_uleb(r);
        break;
    case DW_FORM_sdata:
        *num = (uint64_t)rd_sleb(r);
        break;
    case DW_FORM_block:
        rd_skip(r, rd_uleb(r));
        break;
    case DW_FORM_block1:
        rd_skip(r, rd_fixed(r, 1));
        break;
    case DW_FORM_block2:
        rd_skip(r, rd_fixed(r, 2));
        break;
    case DW_FORM_block4:
        rd_skip(r, rd_fixed(r, 4));
        break;
    default:
        r->bad = true; /* a form we cannot size: stop here */
    }
    return !r->bad;
}

/* Reads one v5 entry (directory or file) at r: its path and directory index. */
static bool read_entry5(const dwarf_lines *dl, const unit *u, rd *r, const uint8_t *fmt,
                        unsigned nfmt, const char **path, uint64_t *dir) {
    rd f = {fmt, u->hdr_end, false};
    *path = NULL;
    *dir = 0;
    for (unsigned i = 0; i < nfmt; i++) {
        uint64_t type = rd_uleb(&f), form = rd_uleb(&f);
        const char *s;
        uint64_t num;
        if (f.bad || !read_form(dl, u, r, form, &s, &num)) return false;
        if (type == DW_LNCT_path) *path = s;
        if (type == DW_LNCT_directory_index) *dir = num;
    }
    return true;
}

/* File number idx of unit u: its directory and name. */
static bool unit_file(const dwarf_lines *dl, const unit *u, uint64_t idx, const char **dir,
                      const char **name) {
    *dir = NULL;
    *name = NULL;
    if (u->version < 5) {
        if (idx == 0) return false; /* 1-based before DWARF 5 */
        rd r = {u->files, u->hdr_end, false};
        uint64_t d = 0;
        for (uint64_t i = 1;; i++) {
            if (r.p >= r.end || *r.p == 0) return false;
            const char *n = rd_str(&r);
            d = rd_uleb(&r);
            rd_uleb(&r), rd_uleb(&r); /* mtime, length */
            if (r.bad) return false;
            if (i == idx) {
                *name = n;
                break;
            }
        }
        if (d == 0) return true; /* the compilation directory: not in this table */
        rd dr = {u->dirs, u->hdr_end, false};
        for (uint64_t i = 1; i <= d; i++) {
            if (dr.p >= dr.end || *dr.p == 0) return true;
            const char *s = rd_str(&dr);
            if (dr.bad) return true;
            if (i == d) *dir = s;
        }
        return true;
    }
    /* DWARF 5: walk the directories to reach the file formats. */
    rd r = {u->dirs, u->hdr_end, false};
    const char *dirs_found = NULL;
    uint64_t want_dir = UINT64_MAX;
    const uint8_t *dirs_start = r.p;
    for (uint64_t i = 0; i < u->ndirs; i++) {
        const char *p;
        uint64_t x;
        if (!read_entry5(dl, u, &r, u->dir_fmt, u->dir_fmt_n, &p, &x)) return false;
    }
    unsigned file_fmt_n = (unsigned)rd_fixed(&r, 1);
    const uint8_t *file_fmt = r.p;
    for (unsigned i = 0; i < file_fmt_n; i++) rd_uleb(&r), rd_uleb(&r);
    uint64_t nfiles = rd_uleb(&r);
    if (r.bad || idx >= nfiles) return false;
    for (uint64_t i = 0; i <= idx; i++) {
        const char *p;
        uint64_t d;
        if (!read_entry5(dl, u, &r, file_fmt, file_fmt_n, &p, &d)) return false;
        if (i == idx) {
            *name = p;
            want_dir = d;
        }
    }
    if (!*name) return false;
    rd d = {dirs_start, u->hdr_end, false};
    for (uint64_t i = 0; i < u->ndirs && i <= want_dir; i++) {
        const char *p;
        uint64_t x;
        if (!read_entry5(dl, u, &d, u->dir_fmt, u->dir_fmt_n, &p, &x)) break;
        if (i == want_dir) dirs_found = p;
    }
    *dir = dirs_found;
    return true;
}

/* ---- running a line program ---- */

enum {
    DW_LNS_copy = 1,
    DW_LNS_advance_pc,
    DW_LNS_advance_line,
    DW_LNS_set_file,
    DW_LNS_set_column,
    DW_LNS_negate_stmt,
    DW_LNS_set_basic_block,
    DW_LNS_const_add_pc,
    DW_LNS_fixed_advance_pc,
    DW_LNE_end_sequence = 1,
    DW_LNE_set_address = 2,
};

/* Runs u's program; for each row calls emit (or only counts when rows is
 * NULL). Returns the rows produced. */
static size_t unit_run(unit *u, uint32_t cu, dwarf_row *rows, size_t cap) {
    rd r = u->prog;
    size_t n = 0;
    uint64_t addr = 0, file = 1, line = 1;
#define EMIT(end)                                                                                  \
    do {                                                                                           \
        if (rows && n < cap)                                                                       \
            rows[n] =                                                                              \
                (dwarf_row){addr, (end) ? 0 : (uint32_t)(line ? line : 1), (uint32_t)file, cu, 0}; \
        n++;                                                                                       \
    } while (0)
    while (!r.bad && r.p < r.end) {
        uint8_t op = *r.p++;
        if (op >= u->opcode_base) {
            unsigned adj = op - u->opcode_base;
            addr += (uint64_t)(adj / u->line_range) * u->min_inst;
            line += (int64_t)u->line_base + adj % u->line_range;
            EMIT(false);
            continue;
        }
        switch (op) {
        case 0: {
            uint64_t len = rd_uleb(&r);
            if (r.bad || len == 0 || len > (uint64_t)(r.end - r.p)) return n;
            const uint8_t *next = r.p + len;
            uint8_t sub = *r.p++;
            if (sub == DW_LNE_end_sequence) {
                EMIT(true);
                addr = 0, file = 1, line = 1;
            } else if (sub == DW_LNE_set_address && len == 9) {
                addr = rd_fixed(&r, 8);
            }
            r.p = next;
            break;
        }
        case DW_LNS_copy:
            EMIT(false);
            break;
        case DW_LNS_advance_pc:
            addr += rd_uleb(&r) * u->min_inst;
            break;
        case DW_LNS_advance_line:
            line += (uint64_t)rd_sleb(&r);
            break;
        case DW_LNS_set_file:
            file = rd_uleb(&r);
            break;
        case DW_LNS_const_add_pc:
            addr += (uint64_t)((255 - u->opcode_base) / u->line_range) * u->min_inst;
            break;
        case DW_LNS_fixed_advance_pc:
            addr += rd_fixed(&r, 2);
            break;
        default: /* any other standard opcode: skip its operands */
            for (unsigned i = 0; i < u->std_lengths[op - 1]; i++) rd_uleb(&r);
        }
    }
#undef EMIT
    return n;
}

/* ---- sorting (heap sort: no allocation, no recursion) ---- */

static inline bool row_less(const dwarf_row *a, const dwarf_row *b) {
    if (a->addr != b->addr) return a->addr < b->addr;
    return a->line == 0 && b->line != 0; /* an end before a start at the same address */
}

static void sift(dwarf_row *v, size_t i, size_t n) {
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && row_less(&v[c], &v[c + 1])) c++;
        if (!row_less(&v[i], &v[c])) return;
        dwarf_row t = v[i];
        v[i] = v[c];
        v[c] = t;
        i = c;
    }
}

static void sort_rows(dwarf_row *v, size_t n) {
    for (size_t i = n / 2; i-- > 0;) sift(v, i, n);
    for (size_t k = n; k > 1; k--) {
        dwarf_row t = v[0];
        v[0] = v[k - 1];
        v[k - 1] = t;
        sift(v, 0, k - 1);
    }
}

int dwarf_lines_build(dwarf_lines *dl, const uint8_t *img, size_t len) {
    memset(dl, 0, sizeof *dl);
    dl->line = dwarf_elf_section(img, len, ".debug_line", &dl->line_len);
    if (!dl->line || dl->line_len == 0) return -ENOENT;
    dl->line_str = dwarf_elf_section(img, len, ".debug_line_str", &dl->line_str_len);
    dl->str = dwarf_elf_section(img, len, ".debug_str", &dl->str_len);
    size_t nrows = 0, nunits = 0;
    for (uint64_t off = 0, next; off < dl->line_len; off = next) {
        unit u;
        if (!unit_parse(dl, off, &u, &next)) {
            if (next <= off) break;
            if (off + 4 > dl->line_len) break;
            /* An unparsable unit whose length we know: skip it. */
            rd r = {dl->line + off, dl->line + dl->line_len, false};
            uint64_t l = rd_fixed(&r, 4);
            if (r.bad || l == 0xffffffffu || l > dl->line_len - off - 4) break;
            next = off + 4 + l;
            continue;
        }
        nrows += unit_run(&u, 0, NULL, 0);
        nunits++;
    }
    if (nrows == 0) return -ENOENT;
    size_t bytes = nrows * sizeof(dwarf_row) + nunits * sizeof(uint64_t);
    bytes = (bytes + 4095) & ~(size_t)4095;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return -ENOMEM;
    dl->map = m;
    dl->map_len = bytes;
    dl->rows = m;
    dl->units = (uint64_t *)(dl->rows + nrows);
    size_t n = 0, k = 0;
    for (uint64_t off = 0, next; off < dl->line_len && k < nunits; off = next) {
        unit u;
        if (!unit_parse(dl, off, &u, &next)) {
            if (next <= off || off + 4 > dl->line_len) break;
            rd r = {dl->line + off, dl->line + dl->line_len, false};
            uint64_t l = rd_fixed(&r, 4);
            if (r.bad || l == 0xffffffffu || l > dl->line_len - off - 4) break;
            next = off + 4 + l;
            continue;
        }
        dl->units[k] = off;
        size_t got = unit_run(&u, (uint32_t)k, dl->rows + n, nrows - n);
        n += got < nrows - n ? got : nrows - n;
        k++;
    }
    dl->nrows = n;
    dl->nunits = k;
    sort_rows(dl->rows, n);
    return 0;
}

bool dwarf_lines_lookup(const dwarf_lines *dl, uint64_t addr, const char **dir, const char **file,
                        int *line) {
    if (!dl->rows || dl->nrows == 0) return false;
    /* The last row whose address is <= addr. */
    size_t lo = 0, hi = dl->nrows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (dl->rows[mid].addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return false;
    const dwarf_row *r = &dl->rows[lo - 1];
    if (r->line == 0) return false; /* past the end of a sequence */
    if (r->cu >= dl->nunits) return false;
    unit u;
    uint64_t next;
    if (!unit_parse(dl, dl->units[r->cu], &u, &next)) return false;
    if (!unit_file(dl, &u, r->file, dir, file) || !*file) return false;
    *line = (int)r->line;
    return true;
}

void dwarf_lines_free(dwarf_lines *dl) {
    if (dl->map) munmap(dl->map, dl->map_len);
    memset(dl, 0, sizeof *dl);
}
