#define _GNU_SOURCE
#include "base/thread.h"

#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

struct start {
    void (*fn)(void *);
    void *arg;
};

/* The start record lives in the new thread's first stack frame, not on the
 * C heap, so that starting a thread never recurses into malloc. */
static int32_t nthreads; /* started by os_thread_start and not yet returned */

static void *trampoline(void *p) {
    struct start s = *(struct start *)p;
    __atomic_store_n(&((struct start *)p)->fn, NULL, __ATOMIC_RELEASE);
    s.fn(s.arg);
    __atomic_fetch_sub(&nthreads, 1, __ATOMIC_RELEASE);
    return NULL;
}

int os_thread_count(void) {
    return __atomic_load_n(&nthreads, __ATOMIC_ACQUIRE);
}

void os_thread_count_reset(int n) {
    __atomic_store_n(&nthreads, n, __ATOMIC_RELEASE);
}

int os_thread_start(void (*fn)(void *), void *arg, size_t stack_size, const char *name) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (stack_size) pthread_attr_setstacksize(&attr, stack_size);
    /* Runtime threads take no signals meant for the program. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    struct start s = {fn, arg};
    pthread_t t;
    __atomic_fetch_add(&nthreads, 1, __ATOMIC_ACQ_REL); /* counted before it exists */
    int rc = pthread_create(&t, &attr, trampoline, &s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        __atomic_fetch_sub(&nthreads, 1, __ATOMIC_RELEASE);
        return -rc;
    }
    if (name) pthread_setname_np(t, name);
    /* Wait until the new thread has copied its start record. */
    while (__atomic_load_n(&s.fn, __ATOMIC_ACQUIRE) != NULL) sched_yield();
    return 0;
}

int os_gettid(void) {
    return (int)syscall(SYS_gettid);
}
