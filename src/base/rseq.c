/* rseq_ok and the membarrier registration (rseq.h explains the scheme). */
#include "base/rseq.h"

#include "base/fatal.h"

bool rseq_ok;
ptrdiff_t rseq_offset;
uint64_t rseq_fences;

#if GORT_HAVE_RSEQ
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

/* glibc >= 2.35: where its rseq area lies from the thread pointer, and its
 * size (0 when registration failed or is disabled). Weak: older glibcs
 * lack them. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

/* Before main, while the process has one thread: nobody can be releasing
 * or waiting yet when rseq_ok turns true. */
__attribute__((constructor)) static void rseq_init(void) {
    if (&__rseq_offset == NULL || &__rseq_size == NULL || __rseq_size == 0) return;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) != 0) return;
    rseq_offset = __rseq_offset;
    rseq_ok = true;
}

void rseq_fence_holder(void) {
    __atomic_fetch_add(&rseq_fences, 1, __ATOMIC_RELAXED);
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0) != 0)
        throw("membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ) failed");
}
#else
void rseq_fence_holder(void) {}
#endif
