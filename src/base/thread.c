#define _GNU_SOURCE
#include "base/thread.h"

#include "base/os.h"

#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct start {
    void (*fn)(void *);
    void *arg;
    uintptr_t stack_hi;
};

static __thread uintptr_t tls_stack_hi;

/* The start record lives in the new thread's first stack frame, not on the
 * C heap, so that starting a thread never recurses into malloc. */
static int32_t nthreads; /* started by os_thread_start and not yet returned */

static void *trampoline(void *p) {
    struct start s = *(struct start *)p;
    tls_stack_hi = s.stack_hi;
    __atomic_store_n(&((struct start *)p)->fn, NULL, __ATOMIC_RELEASE);
    s.fn(s.arg);
    __atomic_fetch_sub(&nthreads, 1, __ATOMIC_RELEASE);
    return NULL;
}

uintptr_t os_thread_stack_hi(void) {
    return tls_stack_hi;
}

int os_thread_count(void) {
    return __atomic_load_n(&nthreads, __ATOMIC_ACQUIRE);
}

void os_thread_count_reset(int n) {
    __atomic_store_n(&nthreads, n, __ATOMIC_RELEASE);
}

/* The stack is ours (a mapping with a guard page below it), so that its
 * bounds are known without pthread_getattr_np, which allocates with libc's
 * malloc: on a new thread that makes glibc reserve a 64 MiB arena (128 MiB
 * while it aligns it), address space an RLIMIT_AS cannot spare. glibc puts
 * the thread's descriptor and static TLS at its top, as in a stack of its
 * own. A runtime thread that returns leaves its stack mapped (they run
 * until the process ends, but for sysmon at exit). */
int os_thread_start(void (*fn)(void *), void *arg, size_t stack_size, const char *name) {
    size_t page = os_page_size();
    size_t size = ((stack_size ? stack_size : OS_THREAD_STACK) + page - 1) & ~(page - 1);
    void *map;
    int err = os_map(&map, NULL, size + page, false);
    if (err < 0) return err;
    mprotect(map, page, PROT_NONE); /* the guard: advisory, a failure leaves none */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstack(&attr, (char *)map + page, size);
    /* Runtime threads take no signals meant for the program. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    struct start s = {fn, arg, (uintptr_t)map + page + size};
    pthread_t t;
    __atomic_fetch_add(&nthreads, 1, __ATOMIC_ACQ_REL); /* counted before it exists */
    int rc = pthread_create(&t, &attr, trampoline, &s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        __atomic_fetch_sub(&nthreads, 1, __ATOMIC_RELEASE);
        os_unmap(map, size + page);
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
