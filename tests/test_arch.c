/* Tests for src/arch: the context switch.
 *
 * The switch is checked from outside, as the scheduler will use it: counters
 * that must come out exact after a million switches, register values that an
 * assembly helper plants before a switch and checks after (the compiler could
 * hide a lost register by spilling, so C alone cannot prove this), FP control
 * state that must stay per context, the ABI's stack alignment at entry, the
 * terminating frame that ends frame-pointer walks and unwinding, many contexts,
 * a deep stack, the trap that catches a returning entry function, and the
 * hook switch (its hook, its two ways back to the caller, mixing with the
 * plain switch, registers, and the frame walk through its frame).
 *
 * Every switch goes through tswitch(), which tells ASan about it
 * (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber), so the
 * program runs clean under -fsanitize=address: this is the pattern the
 * scheduler must follow. Each stack is registered with Valgrind where its
 * header is installed, so memcheck runs clean too. Stacks are mmap'd with a
 * PROT_NONE guard page below, so an overflow faults instead of corrupting a
 * neighbour. */
#include "test.h"

#include "arch/arch.h"

#include <execinfo.h>
#include <fenv.h>
#include <sys/mman.h>

#if TEST_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

/* Frames that switched away and never returned leave their redzones poisoned
 * in ASan's shadow. A stack must be unpoisoned before it is reused and before
 * it is unmapped (the next mapping at that address inherits the shadow). */
static void unpoison(void *p, size_t n) {
#if TEST_ASAN
    __asan_unpoison_memory_region(p, n);
#else
    (void)p, (void)n;
#endif
}

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TEST_VALGRIND 1
#endif
#endif
#ifndef TEST_VALGRIND
#define TEST_VALGRIND       0
#define RUNNING_ON_VALGRIND 0
#endif

#define PAGE 4096

/* A context plus what ASan needs to know about its stack. The thread's own
 * context (stack_lo NULL) learns its bounds from ASan on the first switch. */
typedef struct tctx {
    gort_context ctx;
    void *stack_lo;
    size_t stack_size;
    void *fake;     /* ASan's fake-stack handle while suspended */
    char *map;      /* the mapping, guard page included; NULL for the thread's stack */
    unsigned vg_id; /* Valgrind's stack id */
} tctx;

static tctx *switching_from; /* the context that made the latest switch */

static void after_switch(void *fake) {
#if TEST_ASAN
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(fake, &lo, &size);
    switching_from->stack_lo = (void *)lo;
    switching_from->stack_size = size;
#else
    (void)fake;
#endif
}

static void before_switch(tctx *from, tctx *to) {
    switching_from = from;
#if TEST_ASAN
    __sanitizer_start_switch_fiber(&from->fake, to->stack_lo, to->stack_size);
#else
    (void)to;
#endif
}

/* The first thing every entry function does (a fresh context has no fake
 * stack for ASan to restore). */
static void tstart(void) {
    after_switch(NULL);
}

__attribute__((noinline)) static void tswitch(tctx *from, tctx *to) {
    before_switch(from, to);
    arch_ctx_switch(&from->ctx, &to->ctx);
    after_switch(from->fake);
}

__attribute__((noinline)) static void *tswitch_arg(tctx *from, tctx *to, void *arg) {
    before_switch(from, to);
    void *r = arch_ctx_switch_arg(&from->ctx, &to->ctx, arg);
    after_switch(from->fake);
    return r;
}

static void tmake(tctx *t, size_t stack_size, void (*entry)(void *), void *arg) {
    memset(t, 0, sizeof *t);
    t->map =
        mmap(NULL, stack_size + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(t->map != MAP_FAILED);
    CHECK(mprotect(t->map, PAGE, PROT_NONE) == 0);
    t->stack_lo = t->map + PAGE;
    t->stack_size = stack_size;
    unpoison(t->stack_lo, stack_size);
#if TEST_VALGRIND
    t->vg_id = VALGRIND_STACK_REGISTER(t->stack_lo, (char *)t->stack_lo + stack_size);
#endif
    arch_ctx_make(&t->ctx, t->stack_lo, stack_size, entry, arg);
}

/* Only for contexts that will never run again. */
static void tfree(tctx *t) {
    unpoison(t->stack_lo, t->stack_size);
#if TEST_VALGRIND
    VALGRIND_STACK_DEREGISTER(t->vg_id);
#endif
    CHECK(munmap(t->map, t->stack_size + PAGE) == 0);
}

static tctx main_t; /* this thread's own context */

/* ---- ping-pong ------------------------------------------------------------ */

static tctx pp_t;
static long pp_counter;

static void pp_entry(void *arg) {
    tstart();
    CHECK(arg == &pp_counter);
    for (;;) {
        pp_counter++;
        tswitch(&pp_t, &main_t);
    }
}

static void test_pingpong(void) {
    long n = 1000000 * test_scale();
    tmake(&pp_t, 64 << 10, pp_entry, &pp_counter);
    for (long i = 0; i < n; i++) {
        tswitch(&main_t, &pp_t);
        CHECK_EQ(pp_counter, i + 1);
    }
    tfree(&pp_t);
}

/* ---- switch_arg ------------------------------------------------------------ */

static tctx arg_t;

static void arg_entry(void *arg) {
    tstart();
    CHECK(arg == (void *)0x1234);
    /* Each value main sends comes back doubled; then a plain switch, which
     * must make main's switch_arg return NULL. */
    uintptr_t v = (uintptr_t)tswitch_arg(&arg_t, &main_t, (void *)1);
    for (int i = 0; i < 100; i++) v = (uintptr_t)tswitch_arg(&arg_t, &main_t, (void *)(2 * v));
    CHECK_EQ(v, 777);
    for (;;) tswitch(&arg_t, &main_t);
}

static void test_switch_arg(void) {
    tmake(&arg_t, 64 << 10, arg_entry, (void *)0x1234);
    /* The first switch into a fresh context: its value goes nowhere. */
    CHECK_EQ((uintptr_t)tswitch_arg(&main_t, &arg_t, (void *)99), 1);
    for (uintptr_t i = 1; i <= 100; i++)
        CHECK_EQ((uintptr_t)tswitch_arg(&main_t, &arg_t, (void *)(i + 1000)), 2 * (i + 1000));
    CHECK(tswitch_arg(&main_t, &arg_t, (void *)777) == NULL);
    tfree(&arg_t);
}

/* ---- callee-saved registers ------------------------------------------------ */

/* Defines `name`: saves the callee-saved registers, loads rbx, r12-r15 and
 * rbp with base+1 .. base+6 (base in rdx), runs `call` (the switch), and
 * returns how many of the six no longer hold their value. Only base
 * survives the switch in memory (on this stack). */
#define REGCHECK_FUNCTION(name, call)                                                              \
    __asm__(".pushsection .text\n"                                                                 \
            ".p2align 4\n"                                                                         \
            ".type " name ", @function\n" name ":\n"                                               \
            "    pushq %rbp\n"                                                                     \
            "    pushq %rbx\n"                                                                     \
            "    pushq %r12\n"                                                                     \
            "    pushq %r13\n"                                                                     \
            "    pushq %r14\n"                                                                     \
            "    pushq %r15\n"                                                                     \
            "    subq $8, %rsp\n" /* rsp is now 16-byte aligned for the call */                    \
            "    movq %rdx, (%rsp)\n"                                                              \
            "    leaq 1(%rdx), %rbx\n"                                                             \
            "    leaq 2(%rdx), %r12\n"                                                             \
            "    leaq 3(%rdx), %r13\n"                                                             \
            "    leaq 4(%rdx), %r14\n"                                                             \
            "    leaq 5(%rdx), %r15\n"                                                             \
            "    leaq 6(%rdx), %rbp\n" call "    movq (%rsp), %rdx\n"                              \
            "    xorl %eax, %eax\n" REGCHECK_COMPARE(1, "rbx") REGCHECK_COMPARE(2, "r12")          \
                REGCHECK_COMPARE(3, "r13") REGCHECK_COMPARE(4, "r14") REGCHECK_COMPARE(5, "r15")   \
                    REGCHECK_COMPARE(6, "rbp") "    addq $8, %rsp\n"                               \
                                               "    popq %r15\n"                                   \
                                               "    popq %r14\n"                                   \
                                               "    popq %r13\n"                                   \
                                               "    popq %r12\n"                                   \
                                               "    popq %rbx\n"                                   \
                                               "    popq %rbp\n"                                   \
                                               "    ret\n"                                         \
                                               ".size " name ", . - " name "\n"                    \
                                               ".popsection\n")
/* eax += (base + i != reg), base in rdx. */
#define REGCHECK_COMPARE(i, reg)                                                                   \
    "    leaq " #i "(%rdx), %rcx\n"                                                                \
    "    cmpq %rcx, %" reg "\n"                                                                    \
    "    setne %cl\n"                                                                              \
    "    movzbl %cl, %ecx\n"                                                                       \
    "    addl %ecx, %eax\n"

/* uint64_t regcheck_switch(gort_context *from, gort_context *to, uint64_t base). */
REGCHECK_FUNCTION("regcheck_switch", "    call gort__arch_ctx_switch\n");
uint64_t regcheck_switch(gort_context *from, gort_context *to, uint64_t base);

static tctx reg_t;
static long reg_bad; /* mismatches the partner saw */

static void reg_entry(void *arg) {
    tstart();
    (void)arg;
    for (uint64_t i = 0;; i++) {
        before_switch(&reg_t, &main_t);
        reg_bad += (long)regcheck_switch(&reg_t.ctx, &main_t.ctx, 0xb0b0b0b000000000ull + i * 16);
        after_switch(reg_t.fake);
    }
}

/* The same in C: values the compiler keeps in callee-saved registers across
 * the call (it has nowhere else to keep them without spilling). */
static volatile uint64_t seedv = 7;

__attribute__((noinline)) static uint64_t live_across_switch(tctx *from, tctx *to) {
    /* Six separate volatile reads: the compiler cannot recompute one from another. */
    uint64_t a = seedv, b = seedv * 3, c = seedv * 5, d = seedv * 7, e = seedv * 11, f = seedv * 13;
    tswitch(from, to);
    return a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f;
}

static tctx live_t;

static void live_entry(void *arg) {
    tstart();
    (void)arg;
    for (;;) {
        /* Different values live here while main's are suspended. */
        uint64_t x = seedv * 1000003, y = x ^ 0x5555, z = x + y, w = z * 9;
        tswitch(&live_t, &main_t);
        CHECK_EQ(x + y + z + w, seedv * 1000003 + (seedv * 1000003 ^ 0x5555) +
                                    (seedv * 1000003 + (seedv * 1000003 ^ 0x5555)) * 10);
    }
}

static void test_callee_saved(void) {
    tmake(&reg_t, 64 << 10, reg_entry, NULL);
    for (uint64_t i = 0; i < 1000; i++) {
        before_switch(&main_t, &reg_t);
        uint64_t bad = regcheck_switch(&main_t.ctx, &reg_t.ctx, 0xa0a0a0a000000000ull + i * 16);
        after_switch(main_t.fake);
        CHECK_EQ(bad, 0);
    }
    CHECK_EQ(reg_bad, 0);
    tfree(&reg_t);

    tmake(&live_t, 64 << 10, live_entry, NULL);
    tswitch(&main_t, &live_t);
    for (int i = 0; i < 1000; i++) {
        uint64_t s = seedv;
        CHECK_EQ(live_across_switch(&main_t, &live_t), s * (1 + 6 + 15 + 28 + 55 + 78));
    }
    tfree(&live_t);
}

/* ---- FP control state ------------------------------------------------------ */

#define MXCSR_RC    0x6000u /* rounding control */
#define MXCSR_FTZ   0x8000u
#define MXCSR_FLAGS 0x3fu /* sticky exception flags */
#define X87_RC      0x0c00u

static unsigned get_mxcsr(void) {
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}
static void set_mxcsr(unsigned v) {
    __asm__ volatile("ldmxcsr %0" ::"m"(v));
}
static unsigned get_x87cw(void) {
    unsigned short v;
    __asm__ volatile("fnstcw %0" : "=m"(v));
    return v;
}

static volatile double one = 1.0, three = 3.0;
static tctx fp_t;
static double fp_up_quotient;
static unsigned fp_ftz; /* MXCSR_FTZ, or 0 under Valgrind, which does not emulate it */

static void fp_entry(void *arg) {
    tstart();
    (void)arg;
    /* A fresh context has the ABI's initial state, whatever its creator had. */
    CHECK_EQ(get_mxcsr(), ARCH_CTX_MXCSR_INIT);
    CHECK_EQ(get_x87cw(), ARCH_CTX_X87CW_INIT);
    CHECK(fesetround(FE_UPWARD) == 0);
    set_mxcsr(get_mxcsr() | fp_ftz);
    for (;;) {
        fp_up_quotient = one / three;
        tswitch(&fp_t, &main_t);
        CHECK_EQ(fegetround(), FE_UPWARD);
        CHECK_EQ(get_mxcsr() & (MXCSR_RC | MXCSR_FTZ), 0x4000u | fp_ftz);
        CHECK_EQ(get_x87cw() & X87_RC, 0x0800);
    }
}

static void test_fp_control(void) {
    fp_ftz = RUNNING_ON_VALGRIND ? 0 : MXCSR_FTZ;
    CHECK(fesetround(FE_TOWARDZERO) == 0);
    tmake(&fp_t, 64 << 10, fp_entry, NULL);
    for (int i = 0; i < 100; i++) {
        tswitch(&main_t, &fp_t);
        CHECK_EQ(fegetround(), FE_TOWARDZERO);
        CHECK_EQ(get_mxcsr() & (MXCSR_RC | MXCSR_FTZ), 0x6000u);
        CHECK_EQ(get_x87cw() & X87_RC, 0x0c00);
        double q = one / three;
        /* Computed there rounding up, here toward zero (Valgrind's SSE
         * emulation rounds to nearest whatever MXCSR says). */
        if (!RUNNING_ON_VALGRIND) CHECK(fp_up_quotient > q);
    }
    tfree(&fp_t);
    CHECK(fesetround(FE_TONEAREST) == 0);
    set_mxcsr(get_mxcsr() & ~MXCSR_FLAGS);
}

/* ---- stack alignment and the terminating frame ----------------------------- */

static tctx al_t;
static uintptr_t al_frame, al_local, al_fp0, al_retpc;
static int al_nbt;

static void al_entry(void *arg) {
    tstart();
    (void)arg;
    __attribute__((aligned(16))) char buf[16];
    uintptr_t p = (uintptr_t)buf;
    uintptr_t *fp = __builtin_frame_address(0);
    __asm__ volatile("" : "+r"(p), "+r"(fp)); /* hide what the compiler assumes */
    al_local = p;
    al_frame = (uintptr_t)fp;
    /* With rbp pushed, rbp == rsp at entry - 8: 16-aligned iff entry's was right. */
    al_fp0 = fp[0];   /* arch_ctx_start's rbp: the zero sentinel */
    al_retpc = fp[1]; /* the return address into arch_ctx_start */
    /* movaps faults on a misaligned operand. */
    __asm__ volatile("xorps %%xmm0, %%xmm0\n\tmovaps %%xmm0, %0" : "=m"(buf) : : "xmm0");
    /* libgcc's unwinder must stop at arch_ctx_start (its return address is
     * undefined), not run off the top of the stack. */
    void *pcs[64];
    al_nbt = backtrace(pcs, 64);
    for (;;) tswitch(&al_t, &main_t);
}

/* Walks a suspended context's frame-pointer chain; returns the frame count. */
static int walk_frames(const gort_context *ctx, uintptr_t *last_pc) {
    uintptr_t *fr = arch_ctx_frame(ctx);
    int n = 0;
    while (fr != NULL && n < 64) {
        *last_pc = fr[1];
        n++;
        fr = (uintptr_t *)fr[0];
    }
    return n;
}

static void test_entry_frame(void) {
    /* Odd bounds: make must align the top down itself. */
    static const size_t skew[][2] = {{0, 0}, {3, 0}, {0, 7}, {5, 9}, {8, 8}};
    for (size_t k = 0; k < sizeof skew / sizeof skew[0]; k++) {
        tmake(&al_t, 64 << 10, al_entry, NULL);
        arch_ctx_make(&al_t.ctx, (char *)al_t.stack_lo + skew[k][0],
                      al_t.stack_size - skew[k][0] - skew[k][1], al_entry, NULL);
        CHECK_EQ((uintptr_t)al_t.ctx.sp % 16, 0);

        /* A fresh context's frame record: {0, arch_ctx_start}, then the end. */
        uintptr_t *fr = arch_ctx_frame(&al_t.ctx);
        uintptr_t start_pc = fr[1];
        CHECK_EQ(fr[0], 0);
        CHECK(start_pc != 0);
        CHECK_EQ(((uintptr_t *)al_t.ctx.sp)[8], 0); /* the zero record above it */
        CHECK_EQ(((uintptr_t *)al_t.ctx.sp)[9], 0);

        al_nbt = -1;
        tswitch(&main_t, &al_t);
        CHECK_EQ(al_frame % 16, 0);
        CHECK_EQ(al_local % 16, 0);
        CHECK_EQ(al_fp0, 0);
        CHECK(al_retpc > start_pc && al_retpc < start_pc + 16);
        CHECK(al_nbt >= 1 && al_nbt <= 3);

        /* Suspended inside tswitch: tswitch, al_entry, arch_ctx_start, end. */
        uintptr_t last = 0;
        int n = walk_frames(&al_t.ctx, &last);
        CHECK(n >= 2 && n <= 4);
        CHECK_EQ(last, al_retpc);
        tfree(&al_t);
    }
}

/* ---- many contexts in a ring ----------------------------------------------- */

#define RING 1000

static tctx ring_t[RING];
static long ring_runs[RING];

static void ring_entry(void *arg) {
    tstart();
    long id = (long)(intptr_t)arg;
    long mine = id * 31 + 7; /* lives on this context's stack or in a register */
    for (;;) {
        ring_runs[id]++;
        CHECK_EQ(mine, id * 31 + 7);
        tswitch(&ring_t[id], id + 1 < RING ? &ring_t[id + 1] : &main_t);
    }
}

static void test_round_robin(void) {
    for (long i = 0; i < RING; i++) tmake(&ring_t[i], 64 << 10, ring_entry, (void *)(intptr_t)i);
    long rounds = 100 * test_scale();
    for (long r = 1; r <= rounds; r++) {
        tswitch(&main_t, &ring_t[0]);
        for (long i = 0; i < RING; i++) CHECK_EQ(ring_runs[i], r);
    }
    for (long i = 0; i < RING; i++) tfree(&ring_t[i]);
}

/* ---- deep recursion -------------------------------------------------------- */

#define DEEP_STACK (256 << 10)
#define DEEP_USE   (192 << 10) /* how far down to go; the rest is slack */

static tctx deep_t;
static uintptr_t deep_top, deep_low;
static long deep_depth;

__attribute__((noinline)) static long recurse(long depth) {
    volatile char buf[512];
    for (size_t i = 0; i < sizeof buf; i += 64) buf[i] = (char)depth;
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    if (fp < deep_low) deep_low = fp;
    long r = 0;
    if (deep_top - fp < DEEP_USE)
        r = recurse(depth + 1);
    else
        deep_depth = depth;
    return r + buf[0];
}

static void deep_entry(void *arg) {
    tstart();
    (void)arg;
    deep_top = (uintptr_t)__builtin_frame_address(0);
    deep_low = deep_top;
    long r = recurse(0);
    CHECK(r != -1);
    for (;;) tswitch(&deep_t, &main_t);
}

static void test_deep_recursion(void) {
    tmake(&deep_t, DEEP_STACK, deep_entry, NULL);
    tswitch(&main_t, &deep_t);
    CHECK(deep_top - deep_low >= DEEP_USE);
    CHECK(deep_low >= (uintptr_t)deep_t.stack_lo);
    CHECK(deep_depth > 100);
    tfree(&deep_t);
}

/* ---- arch_ctx_switch_hook ---------------------------------------------------- */

/* Every switch in these cases passes the context it resumes as arg, so that
 * the hook knows whom it runs for: under ASan it must first finish the
 * fiber switch on that context's behalf (the scheduler does the same work in
 * its hook, after_switch). It returns arg ^ 1, so that the switch's result
 * shows whether the hook ran. */
static long hook_calls;

__attribute__((no_sanitize("address"))) static void *test_hook(void *arg) {
    tctx *t = arg;
    after_switch(t->fake);
    hook_calls++;
    return (void *)((uintptr_t)arg ^ 1);
}

__attribute__((noinline)) static void *tswitch_hook(tctx *from, tctx *to) {
    before_switch(from, to);
    return arch_ctx_switch_hook(&from->ctx, &to->ctx, to);
}

/* The same from another call site (the resume stub's jump path). */
__attribute__((noinline)) static void *tswitch_hook2(tctx *from, tctx *to) {
    before_switch(from, to);
    void *r = arch_ctx_switch_hook(&from->ctx, &to->ctx, to);
    __asm__ volatile(""); /* not a tail call: a different return pc */
    return r;
}

static tctx hk_t;
static long hk_count;
static uintptr_t hk_startpc; /* hk_entry's return pc into arch_ctx_start */

static void hk_entry(void *arg) {
    tstart();
    (void)arg;
    hk_startpc = ((uintptr_t *)__builtin_frame_address(0))[1];
    for (long i = 0;; i++) {
        hk_count++;
        void *r;
        switch (i % 3) {
        case 0:
            r = tswitch_hook(&hk_t, &main_t);
            CHECK(r == (void *)((uintptr_t)&hk_t ^ 1));
            break;
        case 1:
            r = tswitch_hook2(&hk_t, &main_t);
            CHECK(r == (void *)((uintptr_t)&hk_t ^ 1));
            break;
        default: /* a plain switch: resumed without the hook, returns arg */
            r = tswitch_arg(&hk_t, &main_t, &main_t);
            CHECK(r == &hk_t);
            break;
        }
    }
}

/* A ring of contexts that all switch from the same call site (the resume
 * stub's ret path), passing a value around in callee-saved registers. */
#define HRING 3
static tctx hring_t[HRING];
static long hring_runs[HRING];

static void hring_entry(void *arg) {
    tstart();
    long id = (long)(intptr_t)arg;
    long mine = id * 77 + 5;
    for (;;) {
        hring_runs[id]++;
        CHECK_EQ(mine, id * 77 + 5);
        tctx *to = id + 1 < HRING ? &hring_t[id + 1] : &main_t;
        void *r = tswitch_hook(&hring_t[id], to);
        CHECK(r == (void *)((uintptr_t)&hring_t[id] ^ 1));
    }
}

/* regcheck_switch with arch_ctx_switch_hook, arg in rcx:
 * uint64_t regcheck_switch_hook(from, to, base, arg). */
REGCHECK_FUNCTION("regcheck_switch_hook", "    movq %rcx, %rdx\n"
                                          "    call gort__arch_ctx_switch_hook\n");
uint64_t regcheck_switch_hook(gort_context *from, gort_context *to, uint64_t base, void *arg);

static tctx hreg_t;
static long hreg_bad;

static void hreg_entry(void *arg) {
    tstart();
    (void)arg;
    for (uint64_t i = 0;; i++) {
        before_switch(&hreg_t, &main_t);
        hreg_bad += (long)regcheck_switch_hook(&hreg_t.ctx, &main_t.ctx,
                                               0xd0d0d0d000000000ull + i * 16, &main_t);
        /* the hook finished the fiber switch */
    }
}

static void test_switch_hook(void) {
    void *(*old)(void *) = arch_ctx_resume_hook;
    arch_ctx_resume_hook = test_hook;

    /* Two sites and a plain switch on one side; the hook switch and the
     * plain one on the other: whichever switch resumes it, a context saved
     * by the hook switch runs the hook first, exactly once. */
    tmake(&hk_t, 64 << 10, hk_entry, NULL);
    tswitch_arg(&main_t, &hk_t, &hk_t); /* enter: fresh contexts run no hook */
    long rounds = 30000 * test_scale();
    for (long i = 0; i < rounds; i++) {
        long before = hook_calls;
        bool hk_hooked = (hk_count - 1) % 3 != 2; /* how hk saved itself */
        if (i % 2 == 0) {
            void *r = tswitch_hook(&main_t, &hk_t);
            CHECK(r == (void *)((uintptr_t)&main_t ^ 1));
            CHECK_EQ(hook_calls - before, 1 + hk_hooked); /* hk's and main's */
        } else {
            void *r = tswitch_arg(&main_t, &hk_t, &hk_t);
            CHECK(r == &main_t);
            CHECK_EQ(hook_calls - before, hk_hooked);
        }
        CHECK_EQ(hk_count, i + 2);
    }

    /* A suspended hook context's frame-pointer walk: the resume stub, then
     * its caller's frames, down to arch_ctx_start. */
    while ((hk_count - 1) % 3 != 0) tswitch_arg(&main_t, &hk_t, &hk_t);
    uintptr_t *fr = arch_ctx_frame(&hk_t.ctx);
    uintptr_t stub = fr[1], last = 0;
    int n = walk_frames(&hk_t.ctx, &last);
    CHECK(n >= 3 && n <= 4); /* stub, [tswitch_hook,] hk_entry, arch_ctx_start */
    CHECK_EQ(last, hk_startpc);
    CHECK(stub != hk_startpc);
    tfree(&hk_t);

    /* Same call site on every side: the stub's ret path. */
    for (long i = 0; i < HRING; i++) tmake(&hring_t[i], 64 << 10, hring_entry, (void *)(intptr_t)i);
    tswitch_arg(&main_t, &hring_t[0], &hring_t[0]);
    CHECK_EQ(hring_runs[HRING - 1], 1);
    for (long r = 2; r <= 10000; r++) {
        void *res = tswitch_hook(&main_t, &hring_t[0]);
        CHECK(res == (void *)((uintptr_t)&main_t ^ 1));
        for (long i = 0; i < HRING; i++) CHECK_EQ(hring_runs[i], r);
    }
    for (long i = 0; i < HRING; i++) tfree(&hring_t[i]);

    /* Callee-saved registers across the hook switch, hook included. */
    tmake(&hreg_t, 64 << 10, hreg_entry, NULL);
    for (uint64_t i = 0; i < 1000; i++) {
        before_switch(&main_t, &hreg_t);
        uint64_t bad =
            regcheck_switch_hook(&main_t.ctx, &hreg_t.ctx, 0xc0c0c0c000000000ull + i * 16, &hreg_t);
        /* main was saved by the hook switch: the hook finished the switch */
        CHECK_EQ(bad, 0);
    }
    CHECK_EQ(hreg_bad, 0);
    tfree(&hreg_t);
    arch_ctx_resume_hook = old;
}

/* ---- an entry function that returns ---------------------------------------- */

static void trap(void) {
    static const char msg[] = "fatal error: context entry function returned\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(2);
}

static tctx ret_t;

static void returning_entry(void *arg) {
    tstart();
    (void)arg;
}

static void die_by_return(void) {
    arch_ctx_return_trap = trap;
    tmake(&ret_t, 64 << 10, returning_entry, NULL);
    tswitch(&main_t, &ret_t);
}

static void test_return_trap(void) {
    CHECK(arch_ctx_return_trap == abort);
    expect_death(die_by_return, 2, "context entry function returned");
}

int main(void) {
    RUN(test_pingpong);
    RUN(test_switch_arg);
    RUN(test_callee_saved);
    RUN(test_fp_control);
    RUN(test_entry_frame);
    RUN(test_round_robin);
    RUN(test_deep_recursion);
    RUN(test_switch_hook);
    RUN(test_return_trap);
    fprintf(stderr, "test_arch: ok\n");
    return test_result();
}
