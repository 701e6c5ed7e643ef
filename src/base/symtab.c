/* Symbolization (symtab.h): dladdr for the object and exported symbols, the
 * object file's ELF .symtab for the rest. */
#define _GNU_SOURCE
#include "base/symtab.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The name of the function containing pc from the ELF .symtab of the file
 * at path (base: the object's load base, used for ET_DYN objects). The file
 * is mapped and kept mapped, the last one cached. */
static const char *elf_symtab_name(const char *path, uintptr_t base, uintptr_t pc,
                                   uintptr_t *start) {
    static char cached_path[256];
    static const unsigned char *img;
    static size_t img_len;
    if (strncmp(path, cached_path, sizeof cached_path) != 0) {
        if (img) munmap((void *)img, img_len);
        img = NULL;
        cached_path[0] = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return NULL;
        struct stat st;
        void *m = MAP_FAILED;
        if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(Elf64_Ehdr))
            m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (m == MAP_FAILED) return NULL;
        img = m;
        img_len = (size_t)st.st_size;
        size_t n = strlen(path);
        if (n >= sizeof cached_path) n = sizeof cached_path - 1;
        memcpy(cached_path, path, n);
        cached_path[n] = 0;
    }
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    if (!img || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > img_len)
        return NULL;
    uintptr_t off = eh->e_type == ET_DYN ? pc - base : pc;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
        const Elf64_Shdr *strs = &sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > img_len || strs->sh_offset + strs->sh_size > img_len)
            return NULL;
        const Elf64_Sym *sym = (const Elf64_Sym *)(img + sh[i].sh_offset);
        size_t nsym = sh[i].sh_size / sizeof(Elf64_Sym);
        for (size_t k = 0; k < nsym; k++) {
            if (ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC || !sym[k].st_size) continue;
            if (off < sym[k].st_value || off - sym[k].st_value >= sym[k].st_size) continue;
            if (sym[k].st_name >= strs->sh_size) return NULL;
            *start = eh->e_type == ET_DYN ? base + sym[k].st_value : sym[k].st_value;
            return (const char *)(img + strs->sh_offset + sym[k].st_name);
        }
    }
    return NULL;
}

/* The main program's path, from /proc/self/exe (read once). */
static const char *self_exe(void) {
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
    const char *file = is_main ? "/proc/self/exe" : info.dli_fname;
    out->object = is_main ? self_exe() : info.dli_fname;
    out->base = (uintptr_t)info.dli_fbase;
    if (info.dli_sname && info.dli_saddr) {
        out->func = info.dli_sname;
        out->start = (uintptr_t)info.dli_saddr;
        return true;
    }
    out->func = elf_symtab_name(file, out->base, pc, &out->start);
    return true;
}
