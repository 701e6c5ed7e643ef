/* The operating system, behind one contract.
 *
 * Each port (Linux now; others later) implements these primitives in one file
 * (os_linux.c). Functions return 0 or a negative errno; addresses come back
 * through out-parameters. None of them allocates from the C heap, so they are
 * safe inside malloc itself.
 *
 * Memory states, as Go's mem.go names them: Reserved (address space, no
 * access), Ready (read/write, committed lazily by the kernel on first touch),
 * and back to Reserved-but-readable-as-zero after os_decommit (MADV_DONTNEED:
 * the pages are returned and read back as zeros). */
#ifndef GORT_BASE_OS_H
#define GORT_BASE_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define os_commit       gort__os_commit
#define os_decommit     gort__os_decommit
#define os_fail_after   gort__os_fail_after
#define os_fail_pending gort__os_fail_pending
#define os_map          gort__os_map
#define os_ncpu         gort__os_ncpu
#define os_nthreads     gort__os_nthreads
#define os_thread_cpu_ns gort__os_thread_cpu_ns
#define os_page_size    gort__os_page_size
#define os_reserve      gort__os_reserve
#define os_rss          gort__os_rss
#define os_unmap        gort__os_unmap

/* Maps len bytes of fresh zero memory read/write, preferably at hint (0: anywhere).
 * With exact, fails with -EEXIST rather than map elsewhere than hint. */
int os_map(void **out, void *hint, size_t len, bool exact);
/* Reserves len bytes of address space, no access (PROT_NONE), not counted as commit. */
int os_reserve(void **out, void *hint, size_t len);
/* Makes reserved memory read/write. */
int os_commit(void *addr, size_t len);
/* Returns the pages to the OS; they read back as zero. The range stays usable. */
int os_decommit(void *addr, size_t len);
int os_unmap(void *addr, size_t len);
/* The system page size (4 KiB on x86_64 Linux). */
size_t os_page_size(void);
/* Resident set size of this process in bytes (VmRSS), or 0 if unknown. */
size_t os_rss(void);
int os_ncpu(void);
/* Threads in this process (the kernel's count), or -1 if unknown. */
int os_nthreads(void);
/* CPU time the calling thread has used, in ns (0 if unknown). */
int64_t os_thread_cpu_ns(void);

/* Fault injection for tests: the n-th os_map/os_reserve/os_commit from now fails
 * with -ENOMEM (n = 0 disables). Lua's tests do this for its allocator. */
void os_fail_after(int64_t n);
/* The countdown os_fail_after armed: 0 once the failure was injected (or
 * when none is armed). Some failures are invisible (an optimisation that
 * gives up quietly): tests ask this rather than look for a NULL. */
int64_t os_fail_pending(void);

#endif
