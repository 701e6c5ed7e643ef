/* Goroutine stacks (docs/design.md, "Stacks").
 *
 * C code holds raw pointers into its stack, so stacks never move. A stack is
 * reserved address space committed lazily by the kernel as it is touched
 * (default 256 KiB virtual, GORT_STACKSIZE, per goroutine with gort_go_stack),
 * so an idle goroutine costs about one touched page. Stacks are carved from
 * large pooled mappings (many stacks per mmap), so their number is not bounded
 * by vm.max_map_count.
 *
 * A stack's slot, lowest address first (P = the page size):
 *
 *     [guard: P][canary page: P][stack: size bytes, lo .. hi)
 *
 * size is the stack's class: the requested size rounded up to a power of two
 * (16 KiB at least), all of it usable (hi - lo == size). lo and hi are
 * page-aligned.
 *
 * Guard below each stack: MADV_GUARD_INSTALL (Linux 6.13+: guard markers, no
 * extra VMA, they survive MADV_DONTNEED); otherwise an mprotect'ed page while
 * under a budget derived from /proc/sys/vm/max_map_count ((max_map_count -
 * 8192) / 2: each such guard costs two mappings), then unguarded stacks with
 * a one-time warning that says to raise it. GORT_STACKGUARD=auto (default),
 * madvise, mprotect or none forces a kind (mprotect and none exist for old
 * kernels and for the tests); it is read by the first stack call.
 *
 * Canary: the page between the guard and the stack. No legitimate code ever
 * touches it (lo is page-aligned), so it stays uncommitted and must read as
 * zero; an overflow writes return addresses and frame pointers into it. Its
 * value is zero rather than a per-process random word because writing a word
 * there would commit the page: two pages per idle goroutine instead of one
 * (measured by tests/test_stack.c). stack_check_canary reads its top 64 bytes
 * (the words just below lo; cheap enough for every switch: reading an
 * untouched page maps the kernel's shared zero page, which costs no RSS);
 * stack_check_deep reads the whole page, and for an unguarded stack the
 * would-be guard page too (for the GC).
 *
 * Overflow: stack_init installs a SIGSEGV/SIGBUS handler on the alternate
 * signal stack; a fault inside a guard calls the overflow hook (the scheduler
 * prints "fatal error: stack overflow" with the goroutine id and a trace and
 * exits 2). Other faults go to the previous handler; where that was the
 * default action, to the crash hook first (the scheduler's prints Go's
 * "unexpected signal" report and exits 2).
 * Every thread that runs goroutines must call stack_thread_init first: without
 * an alternate stack the kernel cannot deliver the fault of an overflowed
 * stack and the process dies of a plain SIGSEGV.
 *
 * Reuse: a stack_cache (one per P, plus a global one under a lock) keeps freed
 * stacks with their first pages still committed, so a new goroutine does not
 * fault. A per-P cache takes stacks as they were freed, without a system call;
 * pages below the top STACK_KEEP bytes are given back (MADV_DONTNEED) when a
 * stack moves on to the global cache, and by stack_cache_trim (for the GC to
 * call at the end of a cycle; nothing calls it yet). Stacks beyond the global
 * cache's bound are given back whole.
 * stack_shrink gives back the pages of a parked goroutine's stack below its
 * saved stack pointer (our stack shrinking).
 *
 * Sanitizers: stack_free clears what ASan's shadow still says about a stack
 * (frames that switched away never unpoisoned their redzones), and
 * stack_alloc/stack_free register and deregister it with Valgrind
 * (VALGRIND_STACK_REGISTER) when valgrind/valgrind.h was found at build time.
 * The switches themselves are the scheduler's to announce:
 * __sanitizer_start_switch_fiber(&fake, (void *)st.lo, st.hi - st.lo) before
 * each arch_ctx_switch and __sanitizer_finish_switch_fiber after it and at the
 * top of a goroutine's entry; a dying goroutine passes NULL as fake.
 *
 * Thread-safety: stack_alloc/stack_free with a per-P cache are called only by
 * the P's owner; with cache NULL they use the global cache under its lock.
 * stack_is_guard and stack_guard_owner take no lock and are
 * async-signal-safe. stack_free must not run on the stack it frees (the
 * scheduler frees a dead goroutine's stack from g0). */
#ifndef GORT_SCHED_STACK_H
#define GORT_SCHED_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define stack_alloc          gort__stack_alloc
#define stack_atfork_child   gort__stack_atfork_child
#define stack_atfork_parent  gort__stack_atfork_parent
#define stack_atfork_prepare gort__stack_atfork_prepare
#define stack_cache_flush    gort__stack_cache_flush
#define stack_cache_trim     gort__stack_cache_trim
#define stack_check_canary   gort__stack_check_canary
#define stack_check_deep     gort__stack_check_deep
#define stack_fault_info     gort__stack_fault_info
#define stack_free           gort__stack_free
#define stack_guard_owner    gort__stack_guard_owner
#define stack_init           gort__stack_init
#define stack_set_crash_hook gort__stack_set_crash_hook
#define stack_is_guard       gort__stack_is_guard
#define stack_read_stats     gort__stack_read_stats
#define stack_scavenge       gort__stack_scavenge
#define stack_set_owner      gort__stack_set_owner
#define stack_shrink         gort__stack_shrink
#define stack_thread_exit    gort__stack_thread_exit
#define stack_thread_init    gort__stack_thread_init

typedef struct gstack {
    uintptr_t lo;   /* lowest usable byte (above the guard and canary); page-aligned */
    uintptr_t hi;   /* one past the highest usable byte; the stack grows down from here */
    uintptr_t size; /* hi - lo: the class of the stack, a power of two (up to 16 GiB) */
    uint32_t flags; /* & STACK_GUARD_MASK: STACK_GUARD_* or 0 (unguarded); other bits: stack.c's */
    uint32_t vg_id; /* Valgrind's id for the stack while allocated (0 without Valgrind) */
} gstack;

enum { STACK_GUARD_MADVISE = 1, STACK_GUARD_MPROTECT = 2, STACK_GUARD_MASK = 3 };

#define STACK_CACHE_SLOTS 32
typedef struct stack_cache {
    gstack slot[STACK_CACHE_SLOTS];
    int n;
} stack_cache;

#define STACK_KEEP         ((size_t)16 << 10) /* bytes at the top that cached stacks keep committed */
#define STACK_SIGSTACK_MIN ((size_t)32 << 10) /* an existing alternate stack this big is kept */

/* Once, before goroutines run: reads GORT_STACKSIZE, GORT_STACKGUARD and
 * max_map_count, installs the fault handler. on_overflow(fault_addr) runs in
 * the signal handler on the faulting thread's alternate stack, with the
 * signal blocked; it must not return and may only do what a signal handler
 * may (print, throw). NULL installs a default that prints Go's
 * "runtime: goroutine stack exceeds N-byte limit" lines and throws "stack
 * overflow" (exit 2). A later call only replaces the hook. 0 or -errno. */
int stack_init(void (*on_overflow)(uintptr_t fault_addr));
/* Faults outside any guard, when the handler before ours was the default
 * action: hook reports them (stack_fault_info has the registers; owner and
 * stack are empty) and should not return; if it does, the default action. */
void stack_set_crash_hook(void (*hook)(int sig, int code, uintptr_t addr));
/* Gives the calling thread an alternate signal stack (64 KiB from the stack
 * pool, guarded), unless it has one of STACK_SIGSTACK_MIN bytes or more
 * already (ASan installs its own). The scheduler calls it on every M, m0
 * included, before the M runs a goroutine; calls after the first do nothing.
 * 0 or -errno. */
int stack_thread_init(void);
/* Undoes stack_thread_init before the thread exits (restores the previous
 * alternate stack and frees ours). Not on the alternate stack itself. */
void stack_thread_exit(void);

/* A stack whose class is at least size bytes (0: GORT_STACKSIZE): size
 * rounded up to a power of two, at least 16 KiB, at most 16 GiB
 * (STACK_SIZE_MAX). 0, or -ENOMEM (also for a size over 16 GiB). */
#define STACK_SIZE_MAX ((size_t)16 << 30)
int stack_alloc(stack_cache *c, gstack *st, size_t size);
/* Frees a stack from stack_alloc; a stack that is not allocated (a double
 * free) is a fatal error, and so is a written canary (stack_check_canary:
 * the scheduler checks it first, to name the goroutine). */
void stack_free(stack_cache *c, gstack *st);
/* Gives back committed pages below sp (a parked goroutine's unused depth),
 * keeping the page that holds sp and the one below it. */
void stack_shrink(const gstack *st, uintptr_t sp);
/* False when the canary (the zero page below lo) was written: an overflow.
 * Reads 64 bytes; no system call, no lock. */
bool stack_check_canary(const gstack *st);
/* The same over the whole canary page, and for an unguarded stack over the
 * page below it as well (4-8 KiB of reads: for the GC, not for every switch). */
bool stack_check_deep(const gstack *st);
/* True when addr lies in the guard of some stack (for fault handlers). */
bool stack_is_guard(uintptr_t addr);
/* When addr lies in a stack's guard: true, and *out is that stack (the one
 * that overflowed). Async-signal-safe. */
bool stack_guard_owner(uintptr_t addr, gstack *out);
/* Gives a cache's stacks back to the global cache (a P going away). */
void stack_cache_flush(stack_cache *c);
/* Gives back the pages below the top STACK_KEEP bytes of every stack in the
 * cache (for the GC, for each P, as it shrinks parked goroutines; not called
 * yet: sysmon's trimmer and shrinker do this work today). */
void stack_cache_trim(stack_cache *c);
/* Gives back every stack of the global cache whole, and resets the regions
 * that empties (for gort_free_os_memory and the scavenger, through a hook
 * the scheduler installs once the GC layer wires it; not called yet). */
void stack_scavenge(void);

/* Records who runs on an allocated stack (the scheduler's G), for the
 * overflow hook: during a switch the thread's current G is not yet (or no
 * longer) the one whose stack rsp is on, so the hook should name the G from
 * the stack that overflowed. Cleared by stack_free. */
void stack_set_owner(const gstack *st, void *owner);

/* The fault being reported, for an overflow hook that wants more than the
 * address (the registers to start a traceback from). */
struct stack_fault {
    uintptr_t addr;       /* si_addr */
    uintptr_t pc, sp, fp; /* the interrupted context's registers */
    int signo;            /* SIGSEGV or SIGBUS */
    gstack stack;         /* the stack whose guard was hit */
    void *owner;          /* its stack_set_owner, or NULL */
};
/* Inside the overflow hook: fills *out with the fault this thread is
 * reporting and returns true; false elsewhere. */
bool stack_fault_info(struct stack_fault *out);

struct stack_stats {
    uint64_t inuse_bytes; /* virtual bytes of stacks in use (MemStats.StackInuse counts these) */
    uint64_t sys_bytes;   /* virtual bytes mapped for stacks (StackSys) */
    uint64_t guards_madvise, guards_mprotect, unguarded; /* carved slots, by guard kind */
    uint64_t inuse_stacks;                               /* stacks held by callers or by caches */
    uint64_t cached_stacks;                              /* of which in the global cache */
    uint64_t meta_bytes;      /* persistent metadata (region records, per-slot arrays) */
    uint64_t mprotect_budget; /* mprotect guards allowed by vm.max_map_count */
};
void stack_read_stats(struct stack_stats *st);

/* fork handlers for the global cache's lock (a leaf lock): the runtime's
 * pthread_atfork calls them with the allocator's. */
void stack_atfork_prepare(void);
void stack_atfork_parent(void);
void stack_atfork_child(void);

#endif
