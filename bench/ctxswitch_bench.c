/* ctxswitch: the raw context switch, the floor under a goroutine switch.
 *
 * Exactly the workload of the peers' ctxswitch (bench/peers/README.md,
 * workload 11; the peer to beat is boost_fcontext.cpp): two contexts on one
 * thread ping-pong `switches` switches (default 10,000,000 = 5,000,000 round
 * trips); the second context increments a counter each time it runs, which
 * must come out at exactly the number of round trips; one warm-up entry is
 * made before timing; the second context runs on a 64 KiB malloc'd stack.
 * The measured figure is ns per switch, the median of REPS in-process reps.
 *
 *   ctxswitch_bench [switches]
 *
 * The last line is `RESULT ctxswitch gort switch=<ns> ns`; a wrong counter
 * prints a BAD line and exits 1. */
#define _GNU_SOURCE
#include "arch/arch.h"

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define STACK_SIZE (64 << 10)
#define REPS       3

static gort_context main_ctx, co_ctx;
static volatile long counter; /* volatile, as in the peers: one load and store per run */

static void entry(void *arg) {
    (void)arg;
    for (;;) {
        counter = counter + 1;
        arch_ctx_switch(&co_ctx, &main_ctx);
    }
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000000L;
    long rounds = n / 2;
    if (rounds <= 0) {
        fprintf(stderr, "usage: ctxswitch_bench [switches]\n");
        return 2;
    }
    char *stack = malloc(STACK_SIZE);
    if (stack == NULL) {
        printf("BAD malloc\n");
        return 1;
    }
    arch_ctx_make(&co_ctx, stack, STACK_SIZE, entry, NULL);
    arch_ctx_switch(&main_ctx, &co_ctx); /* warm-up: enter once */

    double ns[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        counter = 0;
        long long t0 = now_ns();
        for (long i = 0; i < rounds; i++) arch_ctx_switch(&main_ctx, &co_ctx);
        long long t1 = now_ns();
        if (counter != rounds) {
            printf("BAD counter: ctx_runs=%ld, want %ld\n", (long)counter, rounds);
            return 1;
        }
        ns[rep] = (double)(t1 - t0) / (double)(rounds * 2);
        printf("INFO rep=%d switches=%ld ctx_runs=%ld switch=%.2f ns\n", rep, rounds * 2,
               (long)counter, ns[rep]);
    }
    qsort(ns, REPS, sizeof ns[0], cmp_double);
    /* co_ctx stays suspended; its stack goes with the process. */
    printf("RESULT ctxswitch gort switch=%.2f ns\n", ns[REPS / 2]);
    return 0;
}
