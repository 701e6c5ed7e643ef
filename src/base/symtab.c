/* Symbolization (symtab.h): dladdr finds the object, the object file's ELF
 * .symtab and DWARF line table the rest.
 *
 * Per object, the first lookup maps the file, sorts its function symbols
 * into an index (an anonymous mapping: no malloc) and builds the line index
 * (base/dwarf.c); later lookups are two binary searches. */
#define _GNU_SOURCE
#include "base/symtab.h"

#include "base/dwarf.h"
#include "base/os.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct func_ent {
    uint64_t addr; /* link-time address */
    uint64_t size;
    const char *name;
} func_ent;

typedef struct object {
    char path[256];
    bool dyn;    /* ET_DYN: addresses are relative to the load base */
    bool mapped; /* the file is mapped (img valid) */
    const uint8_t *img;
    size_t len;
    func_ent *funcs;
    size_t nfuncs, funcs_map;
    dwarf_lines lines;
    bool have_lines;
} object;

static object objects[SYMTAB_MAX_OBJECTS];
static int nobjects;

/* The lock: a word and its holder's thread id. */
static uint32_t lock_word;
static int lock_tid;

static bool symtab_lock(void) {
    int self = (int)gettid();
    if (__atomic_load_n(&lock_tid, __ATOMIC_RELAXED) == self) return false; /* re-entered (fatal) */
    for (int i = 0;; i++) {
        uint32_t z = 0;
        if (__atomic_compare_exchange_n(&lock_word, &z, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            __atomic_store_n(&lock_tid, self, __ATOMIC_RELAXED);
            return true;
        }
        if (i > 2000) return false; /* held for over a second: go ahead (a fatal path) */
        struct timespec ts = {0, 500 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void symtab_unlock(bool held) {
    if (!held) return;
    __atomic_store_n(&lock_tid, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE);
}

/* ---- the function index ---- */

static void func_sift(func_ent *v, size_t i, size_t n) {
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) return;
        if (c + 1 < n && v[c].addr < v[c + 1].addr) c++;
        if (v[i].addr >= v[c].addr) return;
        func_ent t = v[i];
        v[i] = v[c];
        v[c] = t;
        i = c;
    }
}

static void func_sort(func_ent *v, size_t n) {
    for (size_t i = n / 2; i-- > 0;) func_sift(v, i, n);
    for (size_t k = n; k > 1; k--) {
        func_ent t = v[0];
        v[0] = v[k - 1];
        v[k - 1] = t;
        func_sift(v, 0, k - 1);
    }
}

/* Indexes the functions of the symbol table of type type (SHT_SYMTAB or
 * SHT_DYNSYM). */
static void index_funcs(object *o, unsigned type) {
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)o->img;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(o->img + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != type || sh[i].sh_link >= eh->e_shnum) continue;
        const Elf64_Shdr *strs = &sh[sh[i].sh_link];
        if (sh[i].sh_offset > o->len || sh[i].sh_size > o->len - sh[i].sh_offset ||
            strs->sh_offset > o->len || strs->sh_size > o->len - strs->sh_offset)
            return;
        const Elf64_Sym *sym = (const Elf64_Sym *)(o->img + sh[i].sh_offset);
        size_t nsym = sh[i].sh_size / sizeof(Elf64_Sym), n = 0;
        const char *names = (const char *)o->img + strs->sh_offset;
        for (size_t k = 0; k < nsym; k++) {
            unsigned t = ELF64_ST_TYPE(sym[k].st_info);
            if ((t == STT_FUNC || t == STT_GNU_IFUNC) && sym[k].st_size && sym[k].st_value &&
                sym[k].st_name < strs->sh_size)
                n++;
        }
        if (n == 0) return;
        size_t bytes = (n * sizeof(func_ent) + 4095) & ~(size_t)4095;
        void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) return;
        func_ent *f = m;
        size_t j = 0;
        for (size_t k = 0; k < nsym && j < n; k++) {
            unsigned t = ELF64_ST_TYPE(sym[k].st_info);
            if (!((t == STT_FUNC || t == STT_GNU_IFUNC) && sym[k].st_size && sym[k].st_value &&
                  sym[k].st_name < strs->sh_size))
                continue;
            const char *name = names + sym[k].st_name;
            if (!memchr(name, 0, strs->sh_size - sym[k].st_name)) continue;
            f[j++] = (func_ent){sym[k].st_value, sym[k].st_size, name};
        }
        func_sort(f, j);
        o->funcs = f;
        o->nfuncs = j;
        o->funcs_map = bytes;
        return;
    }
}

static const func_ent *find_func(const object *o, uint64_t off) {
    size_t lo = 0, hi = o->nfuncs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->funcs[mid].addr <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Nested or aliased symbols: the nearest one that covers off. */
    for (size_t k = lo; k-- > 0 && lo - k <= 8;) {
        const func_ent *f = &o->funcs[k];
        if (off - f->addr < f->size) return f;
    }
    return NULL;
}

/* The cached object for path, mapping and indexing it on first use; NULL
 * when it cannot be read (or the cache is full). Under the lock. */
static object *object_get(const char *path) {
    for (int i = 0; i < nobjects; i++)
        if (strcmp(objects[i].path, path) == 0) return objects[i].mapped ? &objects[i] : NULL;
    if (nobjects >= SYMTAB_MAX_OBJECTS || strlen(path) >= sizeof objects[0].path) return NULL;
    object *o = &objects[nobjects];
    memset(o, 0, sizeof *o);
    strcpy(o->path, path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        void *m = MAP_FAILED;
        if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(Elf64_Ehdr))
            m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (m != MAP_FAILED) {
            const Elf64_Ehdr *eh = m;
            size_t len = (size_t)st.st_size;
            if (memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_ident[EI_CLASS] == ELFCLASS64 &&
                eh->e_shentsize == sizeof(Elf64_Shdr) && eh->e_shoff <= len &&
                (len - eh->e_shoff) / sizeof(Elf64_Shdr) >= eh->e_shnum) {
                o->img = m;
                o->len = len;
                o->mapped = true;
                o->dyn = eh->e_type == ET_DYN;
                index_funcs(o, SHT_SYMTAB);
                if (!o->funcs) index_funcs(o, SHT_DYNSYM);
                o->have_lines = dwarf_lines_build(&o->lines, o->img, o->len) == 0;
            } else {
                munmap(m, len);
            }
        }
    }
    __atomic_store_n(&nobjects, nobjects + 1, __ATOMIC_RELEASE);
    return o->mapped ? o : NULL;
}

const char *symtab_self_exe(void) {
    static char path[4096];
    if (!path[0]) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        if (n <= 0) return "/proc/self/exe";
        path[n] = 0;
    }
    return path;
}

bool symtab_lookup(uintptr_t pc, symtab_sym *out) {
    Dl_info info;
    struct link_map *lm = NULL;
    memset(&info, 0, sizeof info);
    memset(out, 0, sizeof *out);
    if (!dladdr1((void *)pc, &info, (void **)&lm, RTLD_DL_LINKMAP) || !info.dli_fname) return false;
    /* The main program's link map has an empty name; dladdr reports argv[0]. */
    bool is_main = lm && lm->l_name && lm->l_name[0] == 0;
    const char *file = is_main ? symtab_self_exe() : info.dli_fname;
    out->object = file;
    out->base = (uintptr_t)info.dli_fbase;
    bool held = symtab_lock();
    object *o = object_get(file);
    if (o) {
        /* An ET_DYN object's addresses are relative to its load bias. */
        uintptr_t bias = lm ? lm->l_addr : out->base;
        uint64_t off = o->dyn ? pc - bias : pc;
        const func_ent *f = o->funcs ? find_func(o, off) : NULL;
        if (f) {
            out->func = f->name;
            out->sized = true;
            out->start = o->dyn ? bias + f->addr : f->addr;
        }
        if (o->have_lines) {
            const char *dir, *name;
            int line;
            if (dwarf_lines_lookup(&o->lines, off, &dir, &name, &line)) {
                out->dir = dir;
                out->file = name;
                out->line = line;
            }
        }
    }
    symtab_unlock(held);
    if (!out->func && info.dli_sname && info.dli_saddr) {
        out->func = info.dli_sname;
        out->start = (uintptr_t)info.dli_saddr;
    }
    return true;
}

const char *symtab_name(const char *name, char *buf, size_t cap) {
    if (!name || !cap) return name;
    static const char *const suffixes[] = {".constprop.", ".isra.",     ".part.",
                                           ".cold",       ".lto_priv.", ".clone."};
    size_t n = strlen(name);
    for (const char *d = strchr(name, '.'); d; d = strchr(d + 1, '.')) {
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
            if (strncmp(d, suffixes[i], strlen(suffixes[i])) == 0) {
                n = (size_t)(d - name);
                goto cut;
            }
        }
    }
    return name;
cut:
    if (n >= cap) n = cap - 1;
    memcpy(buf, name, n);
    buf[n] = 0;
    return buf;
}

size_t symtab_path(const symtab_sym *s, char *buf, size_t cap) {
    if (!cap) return 0;
    buf[0] = 0;
    if (!s->file) return 0;
    size_t n = 0;
    if (s->file[0] != '/' && s->dir && s->dir[0]) {
        size_t d = strlen(s->dir);
        if (d >= cap) d = cap - 1;
        memcpy(buf, s->dir, d);
        n = d;
        if (n + 1 < cap && (n == 0 || buf[n - 1] != '/')) buf[n++] = '/';
    }
    size_t f = strlen(s->file);
    if (f > cap - 1 - n) f = cap - 1 - n;
    memcpy(buf + n, s->file, f);
    n += f;
    buf[n] = 0;
    return n;
}
