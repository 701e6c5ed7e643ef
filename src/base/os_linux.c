/* Linux implementation of os.h: mmap, madvise, /proc. */
#define _GNU_SOURCE
#include "base/os.h"
#include "base/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t fail_countdown; /* > 0: fail when it reaches zero */

static bool inject_failure(void) {
    if (likely(atomic_load_relaxed(&fail_countdown) == 0)) return false;
    return atomic_xadd(&fail_countdown, -1) == 1;
}

void os_fail_after(int64_t n) {
    atomic_store_rel(&fail_countdown, n);
}

int64_t os_fail_pending(void) {
    return atomic_load_acq(&fail_countdown);
}

/* mmap's error comes back in errno: read it at once, before any other call.
 * (Runtime code never keeps errno across a call that can switch goroutines.) */
static int do_map(void **out, void *hint, size_t len, int prot, bool exact) {
    if (inject_failure()) return -ENOMEM;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    if (exact && hint) flags |= MAP_FIXED_NOREPLACE;
    void *p = mmap(hint, len, prot, flags, -1, 0);
    if (p == MAP_FAILED) return -errno;
    if (exact && hint && p != hint) { /* kernels before 4.17 treat NOREPLACE as a hint */
        munmap(p, len);
        return -EEXIST;
    }
    *out = p;
    return 0;
}

int os_map(void **out, void *hint, size_t len, bool exact) {
    return do_map(out, hint, len, PROT_READ | PROT_WRITE, exact);
}

int os_reserve(void **out, void *hint, size_t len) {
    return do_map(out, hint, len, PROT_NONE, false);
}

int os_commit(void *addr, size_t len) {
    if (inject_failure()) return -ENOMEM;
    return mprotect(addr, len, PROT_READ | PROT_WRITE) == 0 ? 0 : -errno;
}

int os_decommit(void *addr, size_t len) {
    return madvise(addr, len, MADV_DONTNEED) == 0 ? 0 : -errno;
}

int os_unmap(void *addr, size_t len) {
    return munmap(addr, len) == 0 ? 0 : -errno;
}

size_t os_page_size(void) {
    static size_t ps;
    if (!ps) ps = (size_t)sysconf(_SC_PAGESIZE);
    return ps;
}

/* Parses "VmRSS:   1234 kB" out of /proc/self/status without stdio (no malloc). */
size_t os_rss(void) {
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    for (char *p = buf; *p; p++) {
        if ((p == buf || p[-1] == '\n') && p[0] == 'V' && p[1] == 'm' && p[2] == 'R' &&
            p[3] == 'S' && p[4] == 'S' && p[5] == ':') {
            p += 6;
            while (*p == ' ' || *p == '\t') p++;
            size_t kb = 0;
            while (*p >= '0' && *p <= '9') kb = kb * 10 + (size_t)(*p++ - '0');
            return kb * 1024;
        }
    }
    return 0;
}

int os_nthreads(void) {
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    /* Field 2 (the command) may hold spaces and parentheses: count from the
     * last ')'; num_threads is field 20, the 18th after it. */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    for (int field = 2; field < 20; field++) { /* p: the space before field + 1 */
        p = strchr(p + 1, ' ');
        if (!p) return -1;
    }
    int v = 0;
    for (p++; *p >= '0' && *p <= '9'; p++) v = v * 10 + (*p - '0');
    return v > 0 ? v : -1;
}

int64_t os_thread_cpu_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int os_ncpu(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
