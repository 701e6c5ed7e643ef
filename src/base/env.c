/* The options table. See env.h.
 *
 * Read lazily from the first allocation or from gort_main, so it must not
 * allocate: getenv and our own parsers only. */
#include "base/env.h"
#include "base/print.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct gort_options opts = {
    .gogc = 100,
    .memlimit = INT64_MAX,
    .gomaxprocs = 0,
    .stacksize = 256 * 1024,
    .memprofilerate = 512 * 1024,
    .cpuprofilerate = 100,
};

int env_parse_int(const char *s, int64_t *out) {
    if (!s || !*s) return -EINVAL;
    bool neg = false; /* Go's atoi64: an optional '-', no '+' */
    if (*s == '-') neg = true, s++;
    if (!*s) return -EINVAL;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -EINVAL;
        if (v > (INT64_MAX - (*s - '0')) / 10) return -EINVAL;
        v = v * 10 + (*s - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* Go's GOMEMLIMIT syntax: an integer with an optional unit B, KiB, MiB, GiB, TiB. */
int env_parse_bytes(const char *s, int64_t *out) {
    if (!s || !*s || *s == '+' || *s == '-') return -EINVAL; /* Go takes digits only */
    if (strcmp(s, "off") == 0) {
        *out = INT64_MAX;
        return 0;
    }
    static const struct {
        const char *suffix;
        int shift;
    } units[] = {{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}};
    size_t n = strlen(s);
    char num[32];
    int shift = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t k = strlen(units[i].suffix);
        if (n > k && strcmp(s + n - k, units[i].suffix) == 0) {
            n -= k;
            shift = units[i].shift;
            break;
        }
    }
    if (n == 0 || n >= sizeof num) return -EINVAL;
    memcpy(num, s, n);
    num[n] = 0;
    int64_t v;
    if (env_parse_int(num, &v) < 0 || v < 0) return -EINVAL;
    if (shift && v > (INT64_MAX >> shift)) return -EINVAL;
    *out = v << shift;
    return 0;
}

int env_parse_gogc(const char *s, int *out) {
    if (s && strcmp(s, "off") == 0) {
        *out = -1;
        return 0;
    }
    int64_t v;
    if (env_parse_int(s, &v) < 0 || v > 1000000000) return -EINVAL;
    *out = v < 0 ? -1 : (int)v;
    return 0;
}

static void warn(const char *name, const char *val, const char *want) {
    print("gort: invalid %s=\"%s\" (want %s); using the default\n", name, val, want);
}

static void parse_godebug(const char *s) {
    static const struct {
        const char *name;
        int *field;
    } keys[] = {
        {"gctrace", &opts.debug.gctrace},           {"schedtrace", &opts.debug.schedtrace},
        {"scheddetail", &opts.debug.scheddetail},   {"gccheckmark", &opts.debug.gccheckmark},
        {"scavtrace", &opts.debug.scavtrace},       {"madvdontneed", &opts.debug.madvdontneed},
        {"clobberfree", &opts.debug.clobberfree},   {"gcstoptheworld", &opts.debug.gcstoptheworld},
        {"gcpacertrace", &opts.debug.gcpacertrace},
    };
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (eq) {
            size_t nlen = (size_t)(eq - s);
            char val[32];
            size_t vlen = len - nlen - 1;
            for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
                if (strlen(keys[i].name) != nlen || memcmp(keys[i].name, s, nlen) != 0) continue;
                int64_t v;
                if (vlen < sizeof val) {
                    memcpy(val, eq + 1, vlen);
                    val[vlen] = 0;
                }
                if (vlen >= sizeof val || env_parse_int(val, &v) < 0 || v < 0 || v > INT32_MAX)
                    warn("GORT_GODEBUG entry", keys[i].name, "name=non-negative integer");
                else
                    *keys[i].field = (int)v;
            }
        }
        if (!end) break;
        s = end + 1;
    }
}

void env_init(void) {
    static int state; /* 0 not read, 1 reading, 2 done */
    int z = 0;
    if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == 2) return;
    if (!__atomic_compare_exchange_n(&state, &z, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 2) __builtin_ia32_pause();
        return;
    }
    const char *v;
    if ((v = getenv("GORT_GOGC")) && *v && env_parse_gogc(v, &opts.gogc) < 0)
        warn("GORT_GOGC", v, "a percentage or off");
    if ((v = getenv("GORT_GOMEMLIMIT")) && *v && env_parse_bytes(v, &opts.memlimit) < 0)
        warn("GORT_GOMEMLIMIT", v, "bytes with an optional B/KiB/MiB/GiB/TiB suffix, or off");
    int64_t n;
    if ((v = getenv("GORT_GOMAXPROCS")) && *v) {
        if (env_parse_int(v, &n) < 0 || n < 1 || n > 1024)
            warn("GORT_GOMAXPROCS", v, "an integer from 1 to 1024");
        else
            opts.gomaxprocs = (int)n;
    }
    if ((v = getenv("GORT_STACKSIZE")) && *v) {
        if (env_parse_bytes(v, &n) < 0 || n < 16384 || n > ((int64_t)1 << 34))
            warn("GORT_STACKSIZE", v, "bytes from 16KiB to 16GiB");
        else
            opts.stacksize = n;
    }
    if ((v = getenv("GORT_MEMPROFILERATE")) && *v) {
        if (env_parse_int(v, &n) < 0 || n < 0 || n > INT32_MAX)
            warn("GORT_MEMPROFILERATE", v, "a non-negative integer");
        else
            opts.memprofilerate = (int)n;
    }
    if ((v = getenv("GORT_CPUPROFILERATE")) && *v) {
        if (env_parse_int(v, &n) < 0 || n < 1 || n > 1000)
            warn("GORT_CPUPROFILERATE", v, "samples per second from 1 to 1000");
        else
            opts.cpuprofilerate = (int)n;
    }
    if ((v = getenv("GORT_GODEBUG")) && *v) parse_godebug(v);
    __atomic_store_n(&state, 2, __ATOMIC_RELEASE);
}
