/* persistent_alloc and fixalloc. See fixalloc.h. */
#include "mem/fixalloc.h"
#include "base/atomic.h"
#include "base/lock.h"
#include "base/os.h"

#include <string.h>

#define PERSISTENT_CHUNK ((size_t)256 << 10)

static lock_t persistent_lock = LOCK_INIT;
static char *pchunk;
static size_t pleft;
uint64_t persistent_bytes;

void *persistent_alloc(size_t size, size_t align, uint64_t *stat) {
    if (size >= PERSISTENT_CHUNK / 4) { /* big: a mapping of its own */
        void *p;
        size_t len = (size + 4095) & ~(size_t)4095;
        if (os_map(&p, NULL, len, false) < 0) return NULL;
        if (stat) atomic_xadd(stat, len);
        atomic_xadd(&persistent_bytes, len);
        return p;
    }
    lock(&persistent_lock);
    uintptr_t cur = (uintptr_t)pchunk;
    uintptr_t aligned = (cur + align - 1) & ~(uintptr_t)(align - 1);
    if (!pchunk || aligned + size > cur + pleft) {
        void *p;
        if (os_map(&p, NULL, PERSISTENT_CHUNK, false) < 0) {
            unlock(&persistent_lock);
            return NULL;
        }
        pchunk = p;
        pleft = PERSISTENT_CHUNK;
        cur = aligned = (uintptr_t)p;
    }
    pleft -= (aligned - cur) + size;
    pchunk = (char *)(aligned + size);
    unlock(&persistent_lock);
    /* Charge the bytes handed out, not whole chunks: the sum over all
     * callers then equals what the metadata really uses. */
    if (stat) atomic_xadd(stat, size);
    atomic_xadd(&persistent_bytes, size);
    return (void *)aligned;
}

void fixalloc_init(fixalloc *f, size_t size, uint64_t *stat) {
    memset(f, 0, sizeof *f);
    f->size = size < sizeof(void *) ? sizeof(void *) : (size + 7) & ~(size_t)7;
    f->stat = stat;
}

void *fixalloc_alloc(fixalloc *f) {
    void *p = f->list;
    if (p) {
        f->list = *(void **)p;
        memset(p, 0, f->size);
    } else {
        if (f->nchunk < f->size) {
            size_t n = f->size * 64 < (size_t)16384 ? (size_t)16384 : f->size * 64;
            f->chunk = persistent_alloc(n, 64, f->stat);
            if (!f->chunk) return NULL;
            f->nchunk = n;
        }
        p = f->chunk; /* persistent memory is fresh from the OS: already zero */
        f->chunk += f->size;
        f->nchunk -= f->size;
    }
    f->inuse += f->size;
    return p;
}

void fixalloc_free(fixalloc *f, void *p) {
    f->inuse -= f->size;
    *(void **)p = f->list;
    f->list = p;
}

void persistent_atfork_prepare(void) {
    lock(&persistent_lock);
}

void persistent_atfork_parent(void) {
    unlock(&persistent_lock);
}

void persistent_atfork_child(void) {
    persistent_lock = (lock_t)LOCK_INIT;
}
