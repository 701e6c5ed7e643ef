/* Monotonic time in nanoseconds (vDSO clock_gettime: ~20 ns, no syscall). */
#ifndef GORT_BASE_NANOTIME_H
#define GORT_BASE_NANOTIME_H

#include <stdint.h>
#include <time.h>

static inline int64_t nanotime(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
