/* pprof's profile.proto, written by hand (Go's runtime/pprof/proto.go and
 * protobuf.go): samples, then at the end the locations, functions and
 * mappings they name, the string table having grown along the way.
 *
 * Symbolization happens here, once per distinct pc: function names from the
 * ELF symbol tables and file:line from the DWARF line tables
 * (base/symtab.h). Each Location gets one Line; inlined frames are not
 * expanded (that would need .debug_info). The mappings are every loaded
 * object's executable segments, with the object's GNU build ID, marked as
 * having functions, file names and line numbers, so that pprof shows what
 * is in the profile and does not try to symbolize it again.
 *
 * Location addresses are return addresses (pprof's convention, and Go's):
 * a frame is symbolized at address - 1, inside its call instruction; an
 * interrupted pc (the leaf of a CPU sample) is stored as pc + 1.
 *
 * The message is gzip'd with zlib when gort was built with it (CMake finds
 * it); pprof reads an uncompressed profile too. */
#define _GNU_SOURCE
#include "prof/prof.h"

#include "base/symtab.h"
#include "sched/traceback.h"
#include "gort/malloc.h"
#include "gort/net.h"

#include <elf.h>
#include <errno.h>
#include <link.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#if GORT_HAVE_ZLIB
#include <zlib.h>
#endif

#include "base/print.h"

/* ---- pbuf ---- */

static bool pbuf_reserve(pbuf *b, size_t more) {
    if (b->oom) return false;
    if (b->cap - b->n >= more) return true;
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap - b->n < more) cap *= 2;
    uint8_t *p = gort_realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void pbuf_bytes(pbuf *b, const void *p, size_t n) {
    if (n == 0 || !pbuf_reserve(b, n)) return;
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void pbuf_printf(pbuf *b, const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    size_t n = vsnprint(line, sizeof line, fmt, ap);
    va_end(ap);
    pbuf_bytes(b, line, n);
}

void pbuf_free(pbuf *b) {
    gort_free(b->p);
    memset(b, 0, sizeof *b);
}

void pbuf_varint(pbuf *b, uint64_t v) {
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    pbuf_bytes(b, tmp, (size_t)n);
}

void pbuf_tag(pbuf *b, unsigned field, unsigned wire) {
    pbuf_varint(b, (uint64_t)field << 3 | wire);
}

static void pb_uint(pbuf *b, unsigned field, uint64_t v) {
    pbuf_tag(b, field, 0);
    pbuf_varint(b, v);
}

static void pb_uint_opt(pbuf *b, unsigned field, uint64_t v) {
    if (v) pb_uint(b, field, v);
}

static void pb_bool(pbuf *b, unsigned field, bool v) {
    if (v) pb_uint(b, field, 1);
}

static void pb_bytes(pbuf *b, unsigned field, const void *p, size_t n) {
    pbuf_tag(b, field, 2);
    pbuf_varint(b, n);
    pbuf_bytes(b, p, n);
}

/* An embedded message: built in sub, then copied with its length. */
static void pb_msg(pbuf *b, unsigned field, pbuf *sub) {
    pb_bytes(b, field, sub->p, sub->n);
    if (sub->oom) b->oom = true;
    sub->n = 0;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = gort_write(fd, p, n);
        if (w < 0) return (int)w;
        if (w == 0) return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int pbuf_write_fd(const pbuf *b, int fd, bool gz) {
    if (b->oom) return -ENOMEM;
#if GORT_HAVE_ZLIB
    if (gz) {
        z_stream z;
        memset(&z, 0, sizeof z);
        if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK)
            return -ENOMEM;
        uint8_t out[16384];
        z.next_in = b->p;
        z.avail_in = (uInt)b->n;
        int rc = 0, zr;
        do {
            z.next_out = out;
            z.avail_out = sizeof out;
            zr = deflate(&z, Z_FINISH);
            if (zr == Z_STREAM_ERROR) {
                rc = -EIO;
                break;
            }
            rc = write_all(fd, out, sizeof out - z.avail_out);
        } while (rc == 0 && zr != Z_STREAM_END);
        deflateEnd(&z);
        return rc;
    }
#else
    (void)gz;
#endif
    return write_all(fd, b->p, b->n);
}

/* ---- hash tables ---- */

static uint64_t hash_bytes(const void *p, size_t n, uint64_t h) {
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

/* Open addressing from 64-bit keys to 64-bit values; key 0 is empty. */
typedef struct u64map {
    uint64_t *keys, *vals;
    size_t cap, n;
} u64map;

static bool u64map_grow(u64map *m) {
    size_t cap = m->cap ? m->cap * 2 : 256;
    uint64_t *k = gort_calloc(cap, sizeof *k), *v = gort_calloc(cap, sizeof *v);
    if (!k || !v) {
        gort_free(k);
        gort_free(v);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = hash_u64(m->keys[i]) & (cap - 1);
        while (k[j]) j = (j + 1) & (cap - 1);
        k[j] = m->keys[i];
        v[j] = m->vals[i];
    }
    gort_free(m->keys);
    gort_free(m->vals);
    m->keys = k;
    m->vals = v;
    m->cap = cap;
    return true;
}

/* The slot of key (found or empty); NULL when out of memory. */
static uint64_t *u64map_slot(u64map *m, uint64_t key, bool *found) {
    if ((m->n + 1) * 2 > m->cap && !u64map_grow(m)) return NULL;
    size_t j = hash_u64(key) & (m->cap - 1);
    while (m->keys[j] && m->keys[j] != key) j = (j + 1) & (m->cap - 1);
    *found = m->keys[j] == key;
    if (!*found) {
        m->keys[j] = key;
        m->n++;
    }
    return &m->vals[j];
}

static void u64map_free(u64map *m) {
    gort_free(m->keys);
    gort_free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- the tables ---- */

typedef struct str_ent {
    uint64_t hash;
    char *s;
    int64_t idx;
} str_ent;

struct pprof_tables {
    str_ent *strs; /* open addressing by hash */
    size_t strs_cap, nstrs;
    u64map locs;     /* address -> location id */
    uint64_t *addrs; /* location id - 1 -> address */
    size_t naddrs, addrs_cap;
    pbuf sample, sub; /* scratch */
};

int64_t pprof_string(pprof *p, const char *s) {
    struct pprof_tables *t = p->t;
    if (!s) s = "";
    size_t len = strlen(s);
    uint64_t h = hash_bytes(s, len, 0xcbf29ce484222325ULL) | 1;
    if ((t->nstrs + 1) * 2 > t->strs_cap) {
        size_t cap = t->strs_cap ? t->strs_cap * 2 : 256;
        str_ent *v = gort_calloc(cap, sizeof *v);
        if (!v) {
            p->out.oom = true;
            return 0;
        }
        for (size_t i = 0; i < t->strs_cap; i++) {
            if (!t->strs[i].hash) continue;
            size_t j = t->strs[i].hash & (cap - 1);
            while (v[j].hash) j = (j + 1) & (cap - 1);
            v[j] = t->strs[i];
        }
        gort_free(t->strs);
        t->strs = v;
        t->strs_cap = cap;
    }
    size_t j = h & (t->strs_cap - 1);
    while (t->strs[j].hash) {
        if (t->strs[j].hash == h && strcmp(t->strs[j].s, s) == 0) return t->strs[j].idx;
        j = (j + 1) & (t->strs_cap - 1);
    }
    char *copy = gort_malloc(len + 1);
    if (!copy) {
        p->out.oom = true;
        return 0;
    }
    memcpy(copy, s, len + 1);
    t->strs[j] = (str_ent){h, copy, (int64_t)t->nstrs};
    t->nstrs++;
    pb_bytes(&p->out, 6, s, len); /* string_table: its order is the index */
    return t->strs[j].idx;
}

static void value_type(pprof *p, pbuf *sub, unsigned field, pprof_value_type vt) {
    int64_t ti = pprof_string(p, vt.type), ui = pprof_string(p, vt.unit);
    pb_uint_opt(sub, 1, (uint64_t)ti);
    pb_uint_opt(sub, 2, (uint64_t)ui);
    pb_msg(&p->out, field, sub);
}

int pprof_begin(pprof *p, const pprof_value_type *types, int ntypes, pprof_value_type period_type,
                int64_t period) {
    memset(p, 0, sizeof *p);
    p->t = gort_calloc(1, sizeof *p->t);
    if (!p->t) return -ENOMEM;
    p->nvalues = ntypes;
    pprof_string(p, ""); /* index 0 */
    for (int i = 0; i < ntypes; i++) value_type(p, &p->t->sub, 1, types[i]);
    value_type(p, &p->t->sub, 11, period_type);
    pb_uint(&p->out, 12, (uint64_t)period);
    return p->out.oom ? -ENOMEM : 0;
}

static uint64_t location_id(pprof *p, uint64_t addr) {
    struct pprof_tables *t = p->t;
    bool found;
    uint64_t *v = u64map_slot(&t->locs, addr, &found);
    if (!v) {
        p->out.oom = true;
        return 0;
    }
    if (found) return *v;
    if (t->naddrs == t->addrs_cap) {
        size_t cap = t->addrs_cap ? t->addrs_cap * 2 : 256;
        uint64_t *a = gort_realloc(t->addrs, cap * sizeof *a);
        if (!a) {
            p->out.oom = true;
            return 0;
        }
        t->addrs = a;
        t->addrs_cap = cap;
    }
    t->addrs[t->naddrs++] = addr;
    *v = t->naddrs;
    return *v;
}

void pprof_add_sample(pprof *p, const uintptr_t *pcs, int npcs, bool leaf_is_pc,
                      const int64_t *values, const pprof_label *labels, int nlabels) {
    struct pprof_tables *t = p->t;
    pbuf *s = &t->sample, *sub = &t->sub;
    s->n = 0;
    if (npcs > 1) npcs = tb_trim_bottom(pcs, npcs); /* gentry and below, as Go's goexit */
    /* location_id, packed */
    for (int i = 0; i < npcs; i++) {
        uint64_t addr = pcs[i] + (i == 0 && leaf_is_pc ? 1 : 0);
        pbuf_varint(sub, location_id(p, addr));
    }
    pb_msg(s, 1, sub);
    for (int i = 0; i < p->nvalues; i++) pbuf_varint(sub, (uint64_t)values[i]);
    pb_msg(s, 2, sub);
    for (int i = 0; i < nlabels; i++) {
        pb_uint(sub, 1, (uint64_t)pprof_string(p, labels[i].key));
        if (labels[i].str) {
            pb_uint(sub, 2, (uint64_t)pprof_string(p, labels[i].str));
        } else {
            pb_uint(sub, 3, (uint64_t)labels[i].num);
            if (labels[i].unit) pb_uint(sub, 4, (uint64_t)pprof_string(p, labels[i].unit));
        }
        /* sub now holds the label: wrap it (pb_msg resets sub) */
        pb_msg(s, 3, sub);
    }
    pb_msg(&p->out, 2, s);
}

/* ---- mappings ---- */

typedef struct mapping {
    uint64_t start, limit, offset;
    char file[256];
    char build_id[80];
} mapping;

typedef struct mappings {
    mapping *v;
    size_t n, cap;
} mappings;

static void build_id_of(struct dl_phdr_info *info, char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            const uint8_t *name = p + sizeof *nh;
            const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
            const uint8_t *next = desc + ((nh->n_descsz + 3) & ~3u);
            if (next > end) break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                size_t k = 0;
                for (unsigned j = 0; j < nh->n_descsz && k + 3 < cap; j++) {
                    static const char hex[] = "0123456789abcdef";
                    out[k++] = hex[desc[j] >> 4];
                    out[k++] = hex[desc[j] & 15];
                }
                out[k] = 0;
                return;
            }
            p = next;
        }
    }
}

static int mapping_cb(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    mappings *ms = arg;
    const char *name = info->dlpi_name;
    if (!name || !name[0]) name = ms->n == 0 ? symtab_self_exe() : "";
    if (!name[0]) return 0;
    if (strstr(name, "linux-vdso")) name = "[vdso]";
    char bid[80];
    build_id_of(info, bid, sizeof bid);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        if (ms->n == ms->cap) {
            size_t cap = ms->cap ? ms->cap * 2 : 16;
            mapping *v = gort_realloc(ms->v, cap * sizeof *v);
            if (!v) return 1;
            ms->v = v;
            ms->cap = cap;
        }
        mapping *m = &ms->v[ms->n++];
        memset(m, 0, sizeof *m);
        m->start = info->dlpi_addr + ph->p_vaddr;
        m->limit = m->start + ph->p_memsz;
        m->offset = ph->p_offset;
        size_t l = strlen(name);
        if (l >= sizeof m->file) l = sizeof m->file - 1;
        memcpy(m->file, name, l);
        memcpy(m->build_id, bid, sizeof bid);
    }
    return 0;
}

/* ---- finishing ---- */

typedef struct func_key {
    int64_t name, file;
} func_key;

int pprof_finish(pprof *p, int fd, int64_t time_ns, int64_t duration_ns, const char *default_type) {
    struct pprof_tables *t = p->t;
    pbuf *sub = &t->sub, line = {0};
    mappings ms = {0};
    dl_iterate_phdr(mapping_cb, &ms);
    bool *has_lines = ms.n ? gort_calloc(ms.n, sizeof(bool)) : NULL;
    u64map funcs = {0}; /* hash of (name, file) -> function id */
    func_key *fkeys = NULL;
    size_t nfuncs = 0, fcap = 0;
    for (size_t i = 0; i < t->naddrs && !p->out.oom; i++) {
        uint64_t addr = t->addrs[i];
        symtab_sym s;
        bool ok = symtab_lookup((uintptr_t)addr - 1, &s);
        uint64_t mid = 0;
        for (size_t k = 0; k < ms.n; k++) {
            if (addr - 1 >= ms.v[k].start && addr - 1 < ms.v[k].limit) {
                mid = k + 1;
                break;
            }
        }
        pb_uint(sub, 1, i + 1);
        pb_uint_opt(sub, 2, mid);
        pb_uint(sub, 3, addr);
        if (ok && s.func) {
            char path[512];
            size_t pl = symtab_path(&s, path, sizeof path);
            if (pl && mid && has_lines) has_lines[mid - 1] = true;
            char nb[256];
            func_key key = {pprof_string(p, symtab_name(s.func, nb, sizeof nb)),
                            pl ? pprof_string(p, path) : 0};
            uint64_t h = hash_bytes(&key, sizeof key, 0xcbf29ce484222325ULL) | 1;
            /* Collisions of the 64-bit hash are resolved by probing the keys. */
            uint64_t fid = 0;
            for (uint64_t hh = h;; hh = hash_u64(hh) | 1) {
                bool found;
                uint64_t *v = u64map_slot(&funcs, hh, &found);
                if (!v) {
                    p->out.oom = true;
                    break;
                }
                if (found) {
                    if (fkeys[*v - 1].name == key.name && fkeys[*v - 1].file == key.file) {
                        fid = *v;
                        break;
                    }
                    continue;
                }
                if (nfuncs == fcap) {
                    size_t cap = fcap ? fcap * 2 : 256;
                    func_key *f = gort_realloc(fkeys, cap * sizeof *f);
                    if (!f) {
                        p->out.oom = true;
                        break;
                    }
                    fkeys = f;
                    fcap = cap;
                }
                fkeys[nfuncs++] = key;
                *v = fid = nfuncs;
                break;
            }
            pb_uint(&line, 1, fid);
            if (pl) pb_uint(&line, 2, (uint64_t)s.line);
            pb_msg(sub, 4, &line);
        }
        pb_msg(&p->out, 4, sub);
    }
    for (size_t i = 0; i < nfuncs; i++) {
        pb_uint(sub, 1, i + 1);
        pb_uint(sub, 2, (uint64_t)fkeys[i].name);
        pb_uint(sub, 3, (uint64_t)fkeys[i].name);
        pb_uint_opt(sub, 4, (uint64_t)fkeys[i].file);
        pb_msg(&p->out, 5, sub);
    }
    for (size_t k = 0; k < ms.n; k++) {
        pb_uint(sub, 1, k + 1);
        pb_uint(sub, 2, ms.v[k].start);
        pb_uint(sub, 3, ms.v[k].limit);
        pb_uint(sub, 4, ms.v[k].offset);
        pb_uint(sub, 5, (uint64_t)pprof_string(p, ms.v[k].file));
        if (ms.v[k].build_id[0]) pb_uint(sub, 6, (uint64_t)pprof_string(p, ms.v[k].build_id));
        pb_bool(sub, 7, true);
        pb_bool(sub, 8, has_lines && has_lines[k]);
        pb_bool(sub, 9, has_lines && has_lines[k]);
        pb_msg(&p->out, 3, sub);
    }
    pb_uint_opt(&p->out, 9, (uint64_t)time_ns);
    pb_uint_opt(&p->out, 10, (uint64_t)duration_ns);
    if (default_type) pb_uint(&p->out, 14, (uint64_t)pprof_string(p, default_type));
    gort_free(has_lines);
    gort_free(ms.v);
    gort_free(fkeys);
    u64map_free(&funcs);
    pbuf_free(&line);
    return pbuf_write_fd(&p->out, fd, true);
}

void pprof_free(pprof *p) {
    struct pprof_tables *t = p->t;
    if (t) {
        for (size_t i = 0; i < t->strs_cap; i++) gort_free(t->strs[i].s);
        gort_free(t->strs);
        u64map_free(&t->locs);
        gort_free(t->addrs);
        pbuf_free(&t->sample);
        pbuf_free(&t->sub);
        gort_free(t);
    }
    pbuf_free(&p->out);
    memset(p, 0, sizeof *p);
}

/* ---- stacks ---- */

/* gort's source tree, from this file's own path (CMake compiles with
 * absolute paths): "/.../src/". Empty when unknown. */
static const char *gort_src_root(size_t *len) {
    static char root[512];
    static size_t n;
    static int done;
    if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        const char *f = __FILE__;
        const char *tail = strstr(f, "src/prof/pprof.c");
        if (f[0] == '/' && tail && (size_t)(tail - f) + 4 < sizeof root) {
            n = (size_t)(tail - f) + 4;
            memcpy(root, f, n);
            root[n] = 0;
        }
        __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    }
    *len = n;
    return root;
}

#define GORT_PC_CACHE 4096
static struct {
    uintptr_t pc;
    uint8_t is_gort;
} pc_cache[GORT_PC_CACHE];
static lock_t pc_cache_lock = LOCK_INIT;

static bool classify(uintptr_t pc) {
    symtab_sym s;
    if (!symtab_lookup(pc - 1, &s)) return false;
    static symtab_sym self;
    static int self_done;
    if (!self_done) {
        symtab_lookup((uintptr_t)&classify, &self);
        self_done = 1;
    }
    /* libgort.so: the object is ours. */
    if (self.object && s.object && strcmp(self.object, s.object) == 0 &&
        strcmp(self.object, symtab_self_exe()) != 0)
        return true;
    size_t rl;
    const char *root = gort_src_root(&rl);
    if (s.file && rl) {
        char path[512];
        size_t pl = symtab_path(&s, path, sizeof path);
        return pl >= rl && memcmp(path, root, rl) == 0;
    }
    return s.func && strncmp(s.func, "gort_", 5) == 0;
}

bool prof_frame_is_gort(uintptr_t pc) {
    size_t h = hash_u64(pc) & (GORT_PC_CACHE - 1);
    lock(&pc_cache_lock);
    if (pc_cache[h].pc == pc) {
        bool r = pc_cache[h].is_gort;
        unlock(&pc_cache_lock);
        return r;
    }
    unlock(&pc_cache_lock);
    bool r = classify(pc);
    lock(&pc_cache_lock);
    pc_cache[h].pc = pc;
    pc_cache[h].is_gort = r;
    unlock(&pc_cache_lock);
    return r;
}

int prof_trim_stack(const uintptr_t *pcs, int n, bool keep_api) {
    int i = 0;
    while (i < n && prof_frame_is_gort(pcs[i])) i++;
    if (i == n) return 0; /* all gort's (a runtime goroutine): keep them */
    if (keep_api && i > 0) {
        symtab_sym s;
        if (symtab_lookup(pcs[i - 1] - 1, &s) && s.func && strncmp(s.func, "gort_", 5) == 0 &&
            strncmp(s.func, "gort__", 6) != 0)
            return i - 1;
    }
    return i;
}

/* ---- clocks ---- */

int64_t prof_nanotime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t prof_unix_nanos(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
