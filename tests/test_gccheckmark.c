/* GORT_GODEBUG=gccheckmark=1 catches a missing GORT_STORE (the test
 * re-executes itself with it in GORT_GODEBUG).
 *
 * The mistake: while the collector marks, the program moves a pointer out
 * of an object the marker has not reached yet into a global it has already
 * scanned, with plain stores. The marker then never sees the moved object:
 * not in the cleared field, not in the global. Without checkmark it is
 * freed while reachable; with it, the stop-the-world re-mark after the
 * cycle finds it reachable and unmarked and dies naming it.
 *
 * Deterministic: a list of 512 K nodes (each holding one small object) is
 * marked from its head, and the program moves objects from the nodes
 * nearest the tail (reached last) into a global array (a root), as soon as
 * the mark has scanned the executable's data and bss. Moving as soon as the
 * write barrier's flag was up was not enough: the data job usually ran
 * after the 4,096 moves, saw moved[] full, and so nothing was missed (1 to
 * 11 rounds to be caught quiet; under CI's load once all 64 rounds). Each
 * round moves 4,096 objects; the case has 64 rounds to be caught in, and
 * is caught in the first. The same program with GORT_STORE for both
 * stores must run every round and exit 0. */
#include "test_gort.h"

#include "gc/gc.h" /* gc_state.globals_bytes: the data job has scanned moved[] */
#include "gort/gc.h"
#include "gort/malloc.h"
#include "gort/sched.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node {
    struct node *next;
    void *obj;
};
GORT_TYPE(node, next, obj);

#define NNODE  (512 * 1024)
#define MOVE   4096
#define ROUNDS 64

static struct node *head;
static void *moved[MOVE];   /* a global: a root */
static struct node **order; /* gort_malloc memory, not scanned: the nodes tail first */
static volatile int gc_running;

static void collector(void *arg) {
    (void)arg;
    gort_gc();
    __atomic_store_n(&gc_running, 0, __ATOMIC_RELEASE);
}

static int run(bool barrier) {
    order = gort_malloc(NNODE * sizeof *order);
    CHECK(order != NULL);
    for (long i = NNODE - 1; i >= 0; i--) { /* head is node 0: the tail is marked last */
        struct node *n = gort_new(&node_type);
        GORT_STORE(n->obj, gort_alloc_noscan(16));
        GORT_STORE(n->next, head);
        GORT_STORE(head, n);
        order[i] = n;
    }
    long next = NNODE - 1;
    int rounds = 0;
    for (; rounds < ROUNDS; rounds++) {
        __atomic_store_n(&gc_running, 1, __ATOMIC_RELEASE);
        CHECK_GT(gort_go(collector, NULL), 0);
        int64_t t0 = test_now_ns();
        while (!gort__writebarrier && __atomic_load_n(&gc_running, __ATOMIC_ACQUIRE))
            if (test_now_ns() - t0 > 10 * 1000 * 1000 * 1000LL) break; /* bounded */
        /* ... and once the mark has scanned the executable's data and bss
         * (the first module the data job scans), which holds moved[]. */
        while (gort__writebarrier &&
               __atomic_load_n(&gc_state.globals_bytes, __ATOMIC_ACQUIRE) == 0)
            if (test_now_ns() - t0 > 10 * 1000 * 1000 * 1000LL) break; /* bounded */
        for (int k = 0; k < MOVE && next >= 0; k++, next--) {
            struct node *n = order[next];
            void *o = n->obj;
            if (barrier) {
                GORT_STORE(n->obj, NULL);
                GORT_STORE(moved[k], o);
            } else { /* the mistake */
                n->obj = NULL;
                moved[k] = o;
            }
        }
        int64_t t1 = test_now_ns();
        while (__atomic_load_n(&gc_running, __ATOMIC_ACQUIRE)) {
            CHECK_LT(test_now_ns() - t1, 30 * 1000 * 1000 * 1000LL);
            gort_sleep(100 * 1000);
        }
        for (int k = 0; k < MOVE; k++) CHECK(moved[k] == NULL || *(uint64_t *)moved[k] == 0);
    }
    printf("gccheckmark: %d rounds, no report\n", rounds);
    return 0;
}

static int with_barrier_main(int argc, char **argv) {
    (void)argc, (void)argv;
    return run(true);
}
static int without_barrier_main(int argc, char **argv) {
    (void)argc, (void)argv;
    return run(false);
}

static void missing_child(void) {
    gort_gomaxprocs(2);
    exit(gort_main(without_barrier_main, 0, NULL));
}

static void test_missing_store_caught(void) {
    const char *out = expect_death(missing_child, 2, "fatal error: gccheckmark: object 0x");
    CHECK_CONTAINS(out, "was not marked: a pointer stored into a global or registered root "
                        "without GORT_STORE?");
}

int main(int argc, char **argv) {
    rerun_with_godebug(argv, "gccheckmark=1", "gccheckmark=1");
    if (argc > 1) test_filter(argv[1]);
    in_child("test_checkmark_quiet_with_store", with_barrier_main, 2);
    RUN(test_missing_store_caught);
    return test_result();
}
