/* A program whose own globals carry the Go names gort uses internally: it
 * must link statically against libgort.a (no duplicate symbol) and keep its
 * own definitions (tests/namespace.sh). */
#include <gort.h>

#include <stdio.h>
#include <string.h>

int sched = 7;
void *allp[4];
int timer_add(int a, int b) {
    return a + b;
}
char *stack_alloc(void) {
    return "mine";
}
int mallocgc = 3;
long lock_depth = 11;

static int64_t ran;
static void child(void *arg) {
    ran = (int64_t)(intptr_t)arg;
}

static int real_main(int argc, char **argv) {
    (void)argc, (void)argv;
    gort_go(child, (void *)(intptr_t)42);
    for (int i = 0; i < 1000 && ran == 0; i++) gort_sleep(1000000);
    void *p = gort_malloc(100);
    gort_free(p);
    if (ran != 42 || sched != 7 || allp[0] || timer_add(2, 3) != 5 ||
        strcmp(stack_alloc(), "mine") != 0 || mallocgc != 3 || lock_depth != 11) {
        printf("BAD: ran=%lld sched=%d\n", (long long)ran, sched);
        return 1;
    }
    printf("collide: the program's own sched, allp, timer_add, stack_alloc coexist with gort\n");
    return 0;
}

int main(int argc, char **argv) {
    return gort_main(real_main, argc, argv);
}
