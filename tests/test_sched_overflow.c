/* A goroutine that overflows its stack dies with Go's message, its id and a
 * trace, exit code 2, whatever the guard kind (MADV_GUARD_INSTALL or the
 * mprotect fallback); recursion that stays inside the limit works. Any other
 * fault (a nil dereference) is Go's "unexpected signal" report, with the
 * faulting function first in the dump, exit 2; unless the program had its own
 * SIGSEGV handler before gort_main, which then gets the fault. */
#include "test.h"

#include "gort.h"

#include <signal.h>

static volatile int sink;

static int __attribute__((noinline)) recurse(int depth) {
    volatile char pad[512];
    pad[0] = (char)depth;
    if (depth == 0) return pad[0];
    return recurse(depth - 1) + pad[0];
}

static volatile int forever = 1; /* the compiler cannot prove the recursion endless */

static void __attribute__((noinline)) runaway(int depth) {
    volatile char pad[1024];
    pad[0] = (char)depth;
    if (forever) runaway(depth + 1);
    sink += pad[0];
}

static volatile int64_t overflow_goid;

static void overflower(void *arg) {
    (void)arg;
    overflow_goid = gort_goid();
    runaway(0);
}

static int main_overflow(int argc, char **argv) {
    (void)argc;
    (void)argv;
    gort_go(overflower, NULL);
    gort_sleep(10LL * 1000 * 1000 * 1000); /* the overflow kills the process first */
    return 0;
}

static void die_by_overflow(void) {
    char *argv[] = {"x", NULL};
    gort_main(main_overflow, 1, argv);
}

static void die_by_overflow_mprotect(void) {
    setenv("GORT_STACKGUARD", "mprotect", 1);
    die_by_overflow();
}

static volatile int deep_ok;

static void deep(void *arg) {
    (void)arg;
    deep_ok = recurse(150) >= 0; /* ~150 x 600 bytes: well inside 256 KiB */
}

static int main_deep(int argc, char **argv) {
    (void)argc;
    (void)argv;
    gort_go(deep, NULL);
    for (int i = 0; i < 2000 && !deep_ok; i++) gort_sleep(1000000);
    return deep_ok ? 0 : 1;
}

static void test_deep_recursion_fits(void) {
    char *argv[] = {"x", NULL};
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        alarm(20);
        _exit(gort_main(main_deep, 1, argv));
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_overflow_dies(void) {
    const char *out = expect_death(die_by_overflow, 2, "fatal error: stack overflow");
    CHECK(strstr(out, "goroutine 2") != NULL); /* names the goroutine */
    CHECK(strstr(out, "runaway(") != NULL);    /* a static function, named from .symtab */
}

static void test_overflow_dies_mprotect_guard(void) {
    expect_death(die_by_overflow_mprotect, 2, "fatal error: stack overflow");
}

static void __attribute__((noinline)) nil_deref(volatile int *p) {
    *p = 1;
}

static void faulter(void *arg) {
    nil_deref(arg);
    __asm__ volatile("" ::: "memory"); /* not a tail call: faulter stays on the stack */
}

static int main_fault(int argc, char **argv) {
    (void)argc;
    (void)argv;
    gort_go(faulter, (void *)8);
    gort_sleep(10LL * 1000 * 1000 * 1000);
    return 0;
}

static void die_by_fault(void) {
    char *argv[] = {"x", NULL};
    gort_main(main_fault, 1, argv);
}

static void test_fault_reported(void) {
    if (TEST_ASAN) TEST_SKIP("ASan's SIGSEGV handler, installed first, reports the fault");
    const char *out =
        expect_death(die_by_fault, 2,
                     "panic: runtime error: invalid memory address or nil pointer dereference\n"
                     "[signal SIGSEGV: segmentation violation code=0x1 addr=0x8 pc=");
    const char *g2 = strstr(out, "goroutine 2 [running]:\n");
    CHECK(g2 != NULL);
    if (g2) CHECK(strncmp(g2 + strlen("goroutine 2 [running]:\n"), "nil_deref(", 10) == 0);
    /* With file:line (DWARF), and the frameless leaf's caller recovered
     * from the word at sp (a frame-pointer walk would skip faulter). */
    const char *line = g2 ? strchr(g2 + strlen("goroutine 2 [running]:\n"), '\n') : NULL;
    const char *next = line ? strchr(line + 1, '\n') : NULL;
    const char *at = line ? strstr(line, "test_sched_overflow.c:") : NULL;
    CHECK(line != NULL && line[1] == '\t' && next != NULL && at != NULL && at < next);
    CHECK(next != NULL && strncmp(next + 1, "faulter(", 8) == 0);
}

static void wild_faulter(void *arg) {
    nil_deref((volatile int *)((uintptr_t)arg << 12));
}

static int main_wild(int argc, char **argv) {
    (void)argc;
    (void)argv;
    gort_go(wild_faulter, (void *)(uintptr_t)0xdead);
    gort_sleep(10LL * 1000 * 1000 * 1000);
    return 0;
}

static void die_by_wild(void) {
    char *argv[] = {"x", NULL};
    gort_main(main_wild, 1, argv);
}

/* A fault at an address past the first page is Go's "unexpected fault address". */
static void test_fault_wild(void) {
    if (TEST_ASAN) TEST_SKIP("ASan's SIGSEGV handler, installed first, reports the fault");
    const char *out = expect_death(die_by_wild, 2,
                                   "unexpected fault address 0xdead000\n"
                                   "fatal error: fault\n"
                                   "[signal SIGSEGV: segmentation violation code=");
    CHECK(strstr(out, "nil_deref(") != NULL);
}

/* Inside the runtime (a bogus channel, not NULL: the send faults in
 * gort's own code): "unexpected signal during runtime execution". */
static int main_runtime_fault(int argc, char **argv) {
    (void)argc;
    (void)argv;
    int64_t v = 1;
    gort_chan_send((gort_chan *)(uintptr_t)0x10, &v);
    return 0;
}

static void die_by_runtime_fault(void) {
    char *argv[] = {"x", NULL};
    gort_main(main_runtime_fault, 1, argv);
}

static void test_fault_in_runtime(void) {
    if (TEST_ASAN) TEST_SKIP("ASan's SIGSEGV handler, installed first, reports the fault");
    const char *out = expect_death(die_by_runtime_fault, 2,
                                   "fatal error: unexpected signal during runtime execution\n"
                                   "[signal SIGSEGV: segmentation violation code=0x1 addr=0x");
    CHECK(strstr(out, "goroutine 1 [running]:") != NULL);
}

static void on_user_segv(int sig) {
    (void)sig;
    static const char msg[] = "user handler ran\n";
    if (write(2, msg, sizeof msg - 1) < 0) _exit(4);
    _exit(7);
}

static void die_by_fault_user_handler(void) {
    signal(SIGSEGV, on_user_segv);
    die_by_fault();
}

static void test_fault_user_handler_kept(void) {
    const char *out = expect_death(die_by_fault_user_handler, 7, "user handler ran");
    CHECK(strstr(out, "unexpected signal") == NULL);
}

/* The dump names the main program's static functions from /proc/self/exe,
 * not argv[0]: here argv[0] is a bare name (as after a PATH lookup) and the
 * working directory is "/", so argv[0] names no file. */
static void die_after_chdir(void) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) _exit(3);
    self[n] = 0;
    char *argv[] = {"test_sched_overflow", "overflow-after-chdir", NULL};
    execv(self, argv);
    _exit(3);
}

static void test_overflow_names_after_chdir(void) {
    const char *out = expect_death(die_after_chdir, 2, "fatal error: stack overflow");
    CHECK(strstr(out, "runaway(") != NULL);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "overflow-after-chdir") == 0) {
        if (chdir("/") != 0) return 3;
        die_by_overflow();
        return 3;
    }
    RUN(test_deep_recursion_fits);
    RUN(test_overflow_names_after_chdir);
    RUN(test_overflow_dies);
    RUN(test_overflow_dies_mprotect_guard);
    RUN(test_fault_reported);
    RUN(test_fault_wild);
    RUN(test_fault_in_runtime);
    RUN(test_fault_user_handler_kept);
    return test_result();
}
