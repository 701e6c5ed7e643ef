/* Configuration from the environment: every Go knob X is GORT_X, with Go's
 * syntax, read once through one options table that warns on a bad value and
 * keeps the default. Each knob is also to have an API call (docs/design.md,
 * "Configuration"). */
#ifndef GORT_BASE_ENV_H
#define GORT_BASE_ENV_H

#include <stdbool.h>
#include <stdint.h>

/* Internal names: the symbol carries the gort__ prefix (docs/HACKING.md, "Names"). */
#define env_init        gort__env_init
#define env_parse_bytes gort__env_parse_bytes
#define env_parse_gogc  gort__env_parse_gogc
#define env_parse_int   gort__env_parse_int
#define opts            gort__opts

struct gort_options {
    int gogc;           /* GORT_GOGC: percent; -1 is "off" (default 100) */
    int64_t memlimit;   /* GORT_GOMEMLIMIT: bytes, Go's suffixes; "off" is INT64_MAX */
    int gomaxprocs;     /* GORT_GOMAXPROCS: 0 means "CPUs in the affinity mask" */
    int64_t stacksize;  /* GORT_STACKSIZE: bytes of virtual stack per goroutine */
    int memprofilerate; /* GORT_MEMPROFILERATE: bytes between heap samples */
    int cpuprofilerate; /* GORT_CPUPROFILERATE: the CPU profile's samples per second */
    struct {            /* GORT_GODEBUG=name=val,... (unknown names ignored, as Go) */
        int gctrace;
        int gcpacertrace; /* the pacer's figures at each mark termination */
        int schedtrace;   /* ms between schedtrace lines; 0 off */
        int scheddetail;
        int gccheckmark;
        int scavtrace;
        int madvdontneed;   /* accepted for Go compatibility: we always use MADV_DONTNEED */
        int clobberfree;    /* the sweeper fills freed GC objects with 0xdeadbeef */
        int gcstoptheworld; /* 1: mark with the world stopped (Go's debugging mode) */
    } debug;
};

extern struct gort_options opts;

/* Reads the environment the first time it is called; later calls return at once.
 * Never allocates. */
void env_init(void);

/* Parsers, exported for the tests. Each returns 0 or -EINVAL. */
int env_parse_int(const char *s, int64_t *out);
int env_parse_bytes(const char *s, int64_t *out); /* "64MiB", "1GiB", "512", "off" */
int env_parse_gogc(const char *s, int *out);      /* "100", "off" */

#endif
