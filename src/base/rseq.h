/* Releasing a lock word without a locked instruction: rseq plus membarrier.
 *
 * A locked instruction (CAS, XCHG, XADD) costs about 5.5 ns on the machines
 * we measure, so a lock that takes one to acquire and one to release costs
 * 11 ns a pair even uncontended. rseq_release(word, held) releases with a
 * plain load, compare and byte store instead, when *word is exactly `held`
 * (locked, nobody waiting): inside a restartable sequence, which the kernel
 * restarts from the top if the thread is preempted, migrated or signalled
 * between the load and the store. The byte store clears the low byte only:
 * the lock's locked state must live there alone, and waiters' bits above it
 * survive a store that races their CAS.
 *
 * The race that remains is the classic one: a waiter W registers (an atomic
 * on *word) after the holder H's load saw nobody waiting, H releases without
 * waking anyone, and W sleeps for ever. So a waiter that is about to sleep
 * after registering on a word that was exactly `held` calls
 * rseq_fence_holder() first: membarrier(PRIVATE_EXPEDITED_RSEQ), which
 * returns once every other thread of the process has passed a full barrier
 * and any of them inside a restartable sequence has been restarted. After
 * it, H is past its store (now visible to W, who re-checks the word and
 * does not sleep, or does the wake-up H skipped), or was restarted (it
 * reloads and sees W), or has not begun releasing. It costs microseconds
 * (an interrupt to each CPU running one of our threads), paid only by a
 * waiter about to sleep anyway, and only by the first.
 *
 * Available on x86_64 Linux when glibc (>= 2.35) registered rseq for the
 * thread and the process could register for membarrier's rseq command:
 * rseq_ok, decided once before main and never changed. Elsewhere (another
 * architecture, an old glibc or kernel, valgrind,
 * GLIBC_TUNABLES=glibc.pthread.rseq=0) rseq_release returns false and the
 * caller uses its atomic. */
#ifndef GORT_BASE_RSEQ_H
#define GORT_BASE_RSEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define rseq_fence_holder gort__rseq_fence_holder
#define rseq_fences       gort__rseq_fences
#define rseq_offset       gort__rseq_offset
#define rseq_ok           gort__rseq_ok

#if defined(__x86_64__) && defined(__linux__) && __has_include(<sys/rseq.h>)
#define GORT_HAVE_RSEQ 1
#else
#define GORT_HAVE_RSEQ 0
#endif

extern bool rseq_ok;          /* both rseq and membarrier are usable */
extern ptrdiff_t rseq_offset; /* glibc's __rseq_offset, copied */
extern uint64_t rseq_fences;  /* rseq_fence_holder calls so far (tests) */

/* The membarrier described above; a fatal error if it fails. Only when rseq_ok. */
void rseq_fence_holder(void);

#if GORT_HAVE_RSEQ
/* Releases *word (clears its low byte) if it equals held, and returns true;
 * false if it does not, or if this thread has no rseq area. The critical
 * section runs from 1 to 2; the kernel restarts it at 4, which starts over
 * from 0 (a goroutine may resume on another thread: the rseq area is found
 * again from the thread pointer). The abort handler is preceded by glibc's
 * x86_64 signature, which the kernel checks. About 1.5 ns. Each inlined copy
 * has its own descriptor in section __gort_rseq_cs. */
static inline __attribute__((always_inline)) bool rseq_release(uint32_t *word, uint32_t held) {
    if (!__builtin_expect(rseq_ok, 1)) return false;
    __asm__ goto(".pushsection __gort_rseq_cs, \"aw\"\n\t"
                 ".balign 32\n"
                 "3:\n\t"
                 ".long 0, 0\n\t"            /* version, flags */
                 ".quad 1f, 2f - 1f, 4f\n\t" /* start, post-commit offset, abort */
                 ".popsection\n"
                 "0:\n\t"
                 "movq %%fs:0, %%rax\n\t" /* the thread pointer */
                 "addq %[off], %%rax\n\t" /* this thread's struct rseq */
                 "cmpl $0, 4(%%rax)\n\t"  /* cpu_id < 0: not registered */
                 "jl %l[no]\n\t"
                 "leaq 3b(%%rip), %%rcx\n\t"
                 "movq %%rcx, 8(%%rax)\n" /* rseq_cs */
                 "1:\n\t"
                 "cmpl %[held], %[word]\n\t"
                 "jne %l[no]\n\t"
                 "movb $0, %[word]\n" /* commit: the low byte only */
                 "2:\n\t"
                 ".pushsection __gort_rseq_abort, \"ax\"\n\t"
                 ".byte 0x0f, 0xb9, 0x3d\n\t"
                 ".long 0x53053053\n" /* RSEQ_SIG */
                 "4:\n\t"
                 "jmp 0b\n\t"
                 ".popsection"
                 :
                 : [word] "m"(*word), [held] "ir"(held), [off] "r"(rseq_offset)
                 : "rax", "rcx", "memory", "cc"
                 : no);
    return true;
no:
    return false;
}
#else
static inline bool rseq_release(uint32_t *word, uint32_t held) {
    (void)word, (void)held;
    return false;
}
#endif

#endif
