/* The /debug endpoint (Go's net/http/pprof and expvar), served by gort's
 * own goroutines on its netpoller: a goroutine accepts, one goroutine per
 * connection reads one request, answers it, and closes (Connection: close;
 * the body of a profile is as long as the connection).
 *
 *   /debug/vars                  expvar's JSON: cmdline, memstats (Go's
 *                                field names), and what the program
 *                                published (gort_expvar_int, _func)
 *   /debug/pprof/                an HTML index
 *   /debug/pprof/heap, allocs, mutex, block, goroutine?debug=0|1|2,
 *   /debug/pprof/profile?seconds=N (CPU), trace?seconds=N,
 *   /debug/pprof/cmdline, symbol (pprof's symbol lookup, GET and POST)
 *
 * It listens on loopback unless the caller names another address. The
 * request parser (debug_http_parse) is strict and bounded: a request line
 * and headers of at most 8 KiB, then CRLF CRLF; anything else is a 400
 * (431 when too long) and the connection closes; every read has a 10 s
 * deadline, so a slow or silent client cannot hold a goroutine for long.
 * tests/test_prof.c fuzzes the parser. */
#define _GNU_SOURCE
#include "prof/prof.h"

#include "base/atomic.h"
#include "base/fatal.h"
#include "base/print.h"
#include "base/symtab.h"
#include "gort/gc.h"
#include "gort/malloc.h"
#include "gort/memstats.h"
#include "gort/net.h"
#include "gort/prof.h"
#include "gort/sched.h"
#include "sched/runtime2.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the parser ---- */

int debug_http_parse(const char *buf, size_t n, debug_http_req *r) {
    memset(r, 0, sizeof *r);
    /* The end of the headers, within the limit. */
    size_t end = 0;
    for (size_t i = 0; i + 3 < n && i + 4 <= DEBUG_HTTP_MAX_HEADER; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
            end = i + 4;
            break;
        }
    }
    if (!end) {
        /* Incomplete: still reject at once what cannot become a request (a
         * TLS handshake, binary noise), rather than wait for its end. */
        size_t i = 0;
        while (i < n && i < 16 && buf[i] >= 'A' && buf[i] <= 'Z') i++;
        if (i < n && (i == 0 || i == 16 || buf[i] != ' ')) return DEBUG_HTTP_BAD;
        for (i++; i < n && buf[i] != ' '; i++)
            if ((unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] >= 0x7f)
                return DEBUG_HTTP_BAD;
        return n >= DEBUG_HTTP_MAX_HEADER ? DEBUG_HTTP_TOO_LONG : 0;
    }
    r->header_len = end;
    /* Request line: METHOD SP TARGET SP HTTP/1.x CRLF */
    size_t i = 0, line_end = 0;
    while (line_end + 1 < end && !(buf[line_end] == '\r' && buf[line_end + 1] == '\n')) line_end++;
    size_t m = 0;
    while (i < line_end && buf[i] >= 'A' && buf[i] <= 'Z' && m < sizeof r->method - 1)
        r->method[m++] = buf[i++];
    if (m == 0 || i >= line_end || buf[i] != ' ') return DEBUG_HTTP_BAD;
    i++;
    size_t t0 = i;
    while (i < line_end && buf[i] != ' ') {
        unsigned char c = (unsigned char)buf[i];
        if (c <= 0x20 || c >= 0x7f) return DEBUG_HTTP_BAD;
        i++;
    }
    size_t tlen = i - t0;
    if (tlen == 0 || tlen >= sizeof r->target || buf[t0] != '/') return DEBUG_HTTP_BAD;
    memcpy(r->target, buf + t0, tlen);
    r->target[tlen] = 0;
    if (i >= line_end || buf[i] != ' ') return DEBUG_HTTP_BAD;
    i++;
    if (line_end - i != 8 || memcmp(buf + i, "HTTP/1.", 7) != 0 ||
        (buf[i + 7] != '0' && buf[i + 7] != '1'))
        return DEBUG_HTTP_BAD;
    /* Headers: Name: value CRLF, Name a token. */
    i = line_end + 2;
    while (i + 2 <= end - 2) {
        size_t le = i;
        while (le + 1 < end && !(buf[le] == '\r' && buf[le + 1] == '\n')) le++;
        if (le == i) break; /* the blank line */
        size_t colon = i;
        while (colon < le && buf[colon] != ':') {
            unsigned char c = (unsigned char)buf[colon];
            if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;\\\"/[]?={}", c)) return DEBUG_HTTP_BAD;
            colon++;
        }
        if (colon == i || colon == le) return DEBUG_HTTP_BAD;
        for (size_t k = colon + 1; k < le; k++) {
            unsigned char c = (unsigned char)buf[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f) return DEBUG_HTTP_BAD;
        }
        size_t v = colon + 1;
        while (v < le && (buf[v] == ' ' || buf[v] == '\t')) v++;
        if (colon - i == 14 && strncasecmp(buf + i, "Content-Length", 14) == 0) {
            long long cl = 0;
            if (v == le) return DEBUG_HTTP_BAD;
            for (size_t k = v; k < le; k++) {
                if (buf[k] == ' ' || buf[k] == '\t') {
                    for (; k < le; k++)
                        if (buf[k] != ' ' && buf[k] != '\t') return DEBUG_HTTP_BAD;
                    break;
                }
                if (buf[k] < '0' || buf[k] > '9' || cl > DEBUG_HTTP_MAX_BODY) return DEBUG_HTTP_BAD;
                cl = cl * 10 + (buf[k] - '0');
            }
            if (cl > DEBUG_HTTP_MAX_BODY ||
                (r->content_length >= 0 && r->has_length && r->content_length != cl))
                return DEBUG_HTTP_BAD;
            r->content_length = cl;
            r->has_length = true;
        } else if (colon - i == 17 && strncasecmp(buf + i, "Transfer-Encoding", 17) == 0) {
            return DEBUG_HTTP_BAD; /* no chunked bodies here */
        }
        i = le + 2;
    }
    /* Path and query. */
    char *q = strchr(r->target, '?');
    size_t plen = q ? (size_t)(q - r->target) : strlen(r->target);
    if (plen >= sizeof r->path) return DEBUG_HTTP_BAD;
    memcpy(r->path, r->target, plen);
    r->path[plen] = 0;
    r->query = q ? q + 1 : "";
    return DEBUG_HTTP_OK;
}

/* The integer value of query parameter key, or def; -1 if malformed. */
long long debug_http_query_int(const char *query, const char *key, long long def) {
    size_t kl = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > kl && p[kl] == '=' && strncmp(p, key, kl) == 0) {
            long long v = 0;
            size_t k = kl + 1;
            if (k == len) return -1;
            for (; k < len; k++) {
                if (p[k] < '0' || p[k] > '9' || v > 1000000000) return -1;
                v = v * 10 + (p[k] - '0');
            }
            return v;
        }
        p = amp ? amp + 1 : NULL;
    }
    return def;
}

/* ---- expvar ---- */

typedef struct expvar {
    char *name;
    const int64_t *value;
    int (*fn)(char *, size_t, void *);
    void *arg;
} expvar;

static lock_t vars_lock = LOCK_INIT;
static expvar *vars;
static size_t nvars, capvars;

static void publish(const char *name, const int64_t *value, int (*fn)(char *, size_t, void *),
                    void *arg) {
    prof_init();
    if (!name || !*name || (!value && !fn)) return;
    size_t len = strlen(name);
    char *copy = gort_malloc(len + 1);
    if (!copy) return;
    memcpy(copy, name, len + 1);
    lock(&vars_lock);
    for (size_t i = 0; i < nvars; i++) {
        if (strcmp(vars[i].name, name) == 0) {
            unlock(&vars_lock);
            gopanic("expvar: Reuse of exported var name"); /* as Go's expvar.Publish */
        }
    }
    if (nvars == capvars) {
        size_t cap = capvars ? capvars * 2 : 16;
        /* gort_realloc under a runtime lock: the allocator takes none of it */
        expvar *v = gort_realloc(vars, cap * sizeof *v);
        if (!v) {
            unlock(&vars_lock);
            gort_free(copy);
            return;
        }
        vars = v;
        capvars = cap;
    }
    /* Sorted by name, as expvar.Do visits them. */
    size_t at = nvars;
    while (at > 0 && strcmp(vars[at - 1].name, copy) > 0) at--;
    memmove(&vars[at + 1], &vars[at], (nvars - at) * sizeof *vars);
    vars[at] = (expvar){copy, value, fn, arg};
    nvars++;
    unlock(&vars_lock);
}

GORT_API void gort_expvar_int(const char *name, const int64_t *value) {
    publish(name, value, NULL, NULL);
}

GORT_API void gort_expvar_func(const char *name, int (*fn)(char *json, size_t cap, void *arg),
                               void *arg) {
    publish(name, NULL, fn, arg);
}

static void json_string(pbuf *b, const char *s) {
    pbuf_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            pbuf_printf(b, "\\%c", c);
        else if (c < 0x20)
            pbuf_printf(b, "\\u%04x", c);
        else
            pbuf_bytes(b, s, 1);
    }
    pbuf_printf(b, "\"");
}

static void cmdline(pbuf *b, bool json) {
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    char buf[8192];
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    if (n < 0) n = 0;
    buf[n] = 0;
    if (!json) {
        pbuf_bytes(b, buf, (size_t)n); /* NUL-separated, as Go's */
        return;
    }
    pbuf_printf(b, "[");
    for (ssize_t i = 0; i < n;) {
        if (i) pbuf_printf(b, ",");
        json_string(b, buf + i);
        i += (ssize_t)strlen(buf + i) + 1;
    }
    pbuf_printf(b, "]");
}

static void memstats_json(pbuf *b) {
    gort_memstats ms;
    gort_read_memstats(&ms);
#define F(name, v) pbuf_printf(b, "\"" name "\":%llu,", (unsigned long long)(v))
    pbuf_printf(b, "{");
    F("Alloc", ms.alloc);
    F("TotalAlloc", ms.total_alloc);
    F("Sys", ms.sys);
    F("Lookups", ms.lookups);
    F("Mallocs", ms.mallocs);
    F("Frees", ms.frees);
    F("HeapAlloc", ms.heap_alloc);
    F("HeapSys", ms.heap_sys);
    F("HeapIdle", ms.heap_idle);
    F("HeapInuse", ms.heap_inuse);
    F("HeapReleased", ms.heap_released);
    F("HeapObjects", ms.heap_objects);
    F("StackInuse", ms.stack_inuse);
    F("StackSys", ms.stack_sys);
    F("MSpanInuse", ms.mspan_inuse);
    F("MSpanSys", ms.mspan_sys);
    F("MCacheInuse", ms.mcache_inuse);
    F("MCacheSys", ms.mcache_sys);
    F("BuckHashSys", ms.buck_hash_sys);
    F("GCSys", ms.gc_sys);
    F("OtherSys", ms.other_sys);
    F("NextGC", ms.next_gc);
    F("LastGC", ms.last_gc);
    F("PauseTotalNs", ms.pause_total_ns);
    pbuf_printf(b, "\"PauseNs\":[");
    for (int i = 0; i < 256; i++)
        pbuf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)ms.pause_ns[i]);
    pbuf_printf(b, "],\"PauseEnd\":[");
    for (int i = 0; i < 256; i++)
        pbuf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)ms.pause_end[i]);
    pbuf_printf(b, "],");
    F("NumGC", ms.num_gc);
    F("NumForcedGC", ms.num_forced_gc);
    char frac[64];
    snprintf(frac, sizeof frac, "%.17g", ms.gc_cpu_fraction);
    pbuf_printf(b, "\"GCCPUFraction\":%s,\"EnableGC\":%s,\"DebugGC\":%s,\"BySize\":[", frac,
                ms.enable_gc ? "true" : "false", ms.debug_gc ? "true" : "false");
    for (int i = 0; i < 61; i++)
        pbuf_printf(b, "%s{\"Size\":%u,\"Mallocs\":%llu,\"Frees\":%llu}", i ? "," : "",
                    ms.by_size[i].size, (unsigned long long)ms.by_size[i].mallocs,
                    (unsigned long long)ms.by_size[i].frees);
    pbuf_printf(b, "]}");
#undef F
}

static void vars_json(pbuf *b) {
    pbuf_printf(b, "{\n\"cmdline\": ");
    cmdline(b, true);
    pbuf_printf(b, ",\n\"memstats\": ");
    memstats_json(b);
    lock(&vars_lock);
    size_t n = nvars;
    expvar *copy = n ? gort_malloc(n * sizeof *copy) : NULL;
    if (copy) memcpy(copy, vars, n * sizeof *copy);
    unlock(&vars_lock);
    char *val = gort_malloc(65536);
    for (size_t i = 0; copy && val && i < n; i++) {
        pbuf_printf(b, ",\n");
        json_string(b, copy[i].name);
        pbuf_printf(b, ": ");
        if (copy[i].value) {
            pbuf_printf(b, "%lld", (long long)atomic_load_relaxed(copy[i].value));
        } else {
            int k = copy[i].fn(val, 65536, copy[i].arg);
            if (k < 0 || k > 65536)
                pbuf_printf(b, "null");
            else
                pbuf_bytes(b, val, (size_t)k);
        }
    }
    gort_free(val);
    gort_free(copy);
    pbuf_printf(b, "\n}\n");
}

/* ---- responses ---- */

static int send_all(int fd, const void *p, size_t n) {
    ssize_t w = gort_write(fd, p, n);
    return w < 0 ? (int)w : 0;
}

static void respond(int fd, int status, const char *reason, const char *ctype, const pbuf *body,
                    const char *extra) {
    char h[512];
    size_t n = snprint(h, sizeof h,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%sX-Content-Type-Options: nosniff\r\n"
                       "Connection: close\r\n",
                       status, reason, ctype, extra ? extra : "");
    if (body) n += snprint(h + n, sizeof h - n, "Content-Length: %zu\r\n", body->n);
    n += snprint(h + n, sizeof h - n, "\r\n");
    if (send_all(fd, h, n) == 0 && body && body->n) send_all(fd, body->p, body->n);
}

static void respond_text(int fd, int status, const char *reason, const char *text) {
    pbuf b = {0};
    pbuf_printf(&b, "%s\n", text);
    respond(fd, status, reason, "text/plain; charset=utf-8", &b, NULL);
    pbuf_free(&b);
}

/* Headers for a streamed body (a profile written straight to the socket). */
static int stream_header(int fd, const char *ctype, const char *file) {
    char h[512];
    size_t n = snprint(h, sizeof h,
                       "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nX-Content-Type-Options: nosniff\r\n",
                       ctype);
    if (file)
        n += snprint(h + n, sizeof h - n, "Content-Disposition: attachment; filename=\"%s\"\r\n",
                     file);
    n += snprint(h + n, sizeof h - n, "Connection: close\r\n\r\n");
    return send_all(fd, h, n);
}

static const struct {
    const char *name, *desc;
} profiles[] = {
    {"allocs", "A sampling of all past memory allocations"},
    {"block", "Stack traces that led to blocking on synchronization primitives"},
    {"cmdline", "The command line invocation of the current program"},
    {"goroutine", "Stack traces of all current goroutines. Use debug=2 as a query parameter to "
                  "export in the same format as an unrecovered panic."},
    {"heap", "A sampling of memory allocations of live objects. You can specify the gc GET "
             "parameter to run GC before taking the heap sample."},
    {"mutex", "Stack traces of holders of contended mutexes"},
    {"profile", "CPU profile. You can specify the duration in the seconds GET parameter. After you "
                "get the profile file, use the go tool pprof command to investigate the profile."},
    {"trace", "A trace of execution of the current program (Chrome trace-event JSON: open it in "
              "ui.perfetto.dev or chrome://tracing). You can specify the duration in the seconds "
              "GET parameter."},
};

static void index_page(int fd) {
    pbuf b = {0};
    pbuf_printf(&b, "<html>\n<head>\n<title>/debug/pprof/</title>\n<style>\n"
                    ".profile-name{display:inline-block; width:6rem;}\n</style>\n</head>\n<body>\n"
                    "/debug/pprof/\n<br>\n<p>Set debug=1 as a query parameter to export in legacy "
                    "text format (goroutine)</p>\n<br>\nTypes of profiles available:\n<table>\n"
                    "<thead><td>Count</td><td>Profile</td></thead>\n");
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++) {
        const char *n = profiles[i].name;
        int count = 0;
        if (strcmp(n, "goroutine") == 0) count = gort_num_goroutine();
        const char *q = strcmp(n, "goroutine") == 0 ? "?debug=1" : "";
        pbuf_printf(&b, "<tr><td>%d</td><td><a href='%s%s'>%s</a></td></tr>\n", count, n, q, n);
    }
    pbuf_printf(&b, "</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n"
                    "<p>\nProfile Descriptions:\n<ul>\n");
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
        pbuf_printf(&b, "<li><div class=profile-name>%s: </div> %s</li>\n", profiles[i].name,
                    profiles[i].desc);
    pbuf_printf(&b, "</ul>\n</p>\n</body>\n</html>\n");
    respond(fd, 200, "OK", "text/html; charset=utf-8", &b, NULL);
    pbuf_free(&b);
}

/* pprof's symbol service: GET says it exists; POST looks up "0x..+0x.." */
static void symbol_page(int fd, const debug_http_req *r, const char *body, size_t blen) {
    pbuf b = {0};
    if (strcmp(r->method, "POST") != 0) {
        pbuf_printf(&b, "num_symbols: 1\n");
    } else {
        const char *p = body, *end = body + blen;
        while (p < end) {
            while (p < end && (*p == '+' || *p == ' ' || *p == '\n')) p++;
            if (p >= end) break;
            char *e;
            char tmp[32];
            size_t k = 0;
            while (p + k < end && k < sizeof tmp - 1 && p[k] != '+') k++;
            memcpy(tmp, p, k);
            tmp[k] = 0;
            unsigned long long a = strtoull(tmp, &e, 0);
            p += k;
            if (e == tmp) continue;
            symtab_sym s;
            if (symtab_lookup((uintptr_t)a, &s) && s.func)
                pbuf_printf(&b, "0x%llx %s\n", a, s.func);
        }
    }
    respond(fd, 200, "OK", "text/plain; charset=utf-8", &b, NULL);
    pbuf_free(&b);
}

static void handle(int fd, const debug_http_req *r, const char *body, size_t blen) {
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    const char *path = r->path;
    if (strcmp(path, "/debug/vars") == 0) {
        if (!get) return respond_text(fd, 405, "Method Not Allowed", "method not allowed");
        pbuf b = {0};
        vars_json(&b);
        respond(fd, 200, "OK", "application/json; charset=utf-8", &b, NULL);
        pbuf_free(&b);
        return;
    }
    if (strncmp(path, "/debug/pprof", 12) != 0)
        return respond_text(fd, 404, "Not Found", "404 page not found");
    const char *name = path + 12;
    if (*name == 0 || strcmp(name, "/") == 0) {
        if (!get) return respond_text(fd, 405, "Method Not Allowed", "method not allowed");
        return index_page(fd);
    }
    name++;
    if (strcmp(name, "symbol") == 0) return symbol_page(fd, r, body, blen);
    if (!get) return respond_text(fd, 405, "Method Not Allowed", "method not allowed");
    if (strcmp(name, "cmdline") == 0) {
        pbuf b = {0};
        cmdline(&b, false);
        respond(fd, 200, "OK", "text/plain; charset=utf-8", &b, NULL);
        pbuf_free(&b);
        return;
    }
    long long debug = debug_http_query_int(r->query, "debug", 0);
    long long seconds = debug_http_query_int(r->query, "seconds", 30);
    long long gc = debug_http_query_int(r->query, "gc", 0);
    if (debug < 0 || seconds < 0 || gc < 0)
        return respond_text(fd, 400, "Bad Request", "malformed query parameter");
    if (strcmp(name, "goroutine") == 0) {
        stream_header(fd, debug ? "text/plain; charset=utf-8" : "application/octet-stream",
                      debug ? NULL : "goroutine");
        gort_write_goroutine_profile(fd, (int)debug);
        return;
    }
    if (strcmp(name, "heap") == 0 || strcmp(name, "allocs") == 0) {
        if (gc > 0) gort_gc();
        stream_header(fd, "application/octet-stream", name);
        if (name[0] == 'h')
            gort_write_heap_profile(fd);
        else
            gort_write_allocs_profile(fd);
        return;
    }
    if (strcmp(name, "mutex") == 0 || strcmp(name, "block") == 0) {
        stream_header(fd, "application/octet-stream", name);
        if (name[0] == 'm')
            gort_write_mutex_profile(fd);
        else
            gort_write_block_profile(fd);
        return;
    }
    if (strcmp(name, "profile") == 0 || strcmp(name, "trace") == 0) {
        if (seconds == 0) seconds = 30;
        if (seconds > 3600) return respond_text(fd, 400, "Bad Request", "seconds too large");
        bool cpu = name[0] == 'p';
        /* A profile or trace already running is a 500, as Go's. The CPU
         * profile writes only at stop, so it starts before the header; the
         * trace writes as it goes, so the header goes first. */
        int rc;
        if (cpu) {
            rc = gort_cpu_profile_start(fd);
            if (rc == 0) stream_header(fd, "application/octet-stream", "profile");
        } else {
            rc = prof_trace_running() ? -EBUSY : 0;
            if (rc == 0) {
                stream_header(fd, "application/json", "trace.json");
                if (gort_trace_start(fd) < 0) return; /* lost a race: the body stays empty */
            }
        }
        if (rc == -EBUSY)
            return respond_text(fd, 500, "Internal Server Error",
                                cpu ? "Could not enable CPU profiling: cpu profiling already in use"
                                    : "Could not enable tracing: tracing already enabled");
        if (rc < 0) return respond_text(fd, 500, "Internal Server Error", "cannot start");
        gort_sleep(seconds * 1000000000LL);
        if (cpu)
            gort_cpu_profile_stop();
        else
            gort_trace_stop();
        return;
    }
    respond_text(fd, 404, "Not Found", "Unknown profile");
}

static void serve_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char *buf = gort_malloc(DEBUG_HTTP_MAX_HEADER + DEBUG_HTTP_MAX_BODY + 1);
    if (!buf) {
        gort_close(fd);
        return;
    }
    size_t n = 0;
    debug_http_req r;
    int st = 0;
    gort_set_deadline(fd, gort_nanotime() + 10 * 1000000000LL, gort_nanotime() + 60 * 1000000000LL);
    for (;;) {
        st = debug_http_parse(buf, n, &r);
        if (st != 0) break;
        if (n >= DEBUG_HTTP_MAX_HEADER) {
            st = DEBUG_HTTP_TOO_LONG;
            break;
        }
        ssize_t k = gort_read(fd, buf + n, DEBUG_HTTP_MAX_HEADER - n);
        if (k <= 0) break;
        n += (size_t)k;
    }
    if (st == DEBUG_HTTP_OK) {
        size_t need = r.header_len + (size_t)(r.has_length ? r.content_length : 0);
        while (n < need) {
            ssize_t k = gort_read(fd, buf + n, need - n);
            if (k <= 0) break;
            n += (size_t)k;
        }
        if (n < need) {
            st = DEBUG_HTTP_BAD;
        } else {
            gort_set_deadline(fd, 0, 0); /* profiles may take their time */
            handle(fd, &r, buf + r.header_len, (size_t)(r.has_length ? r.content_length : 0));
        }
    }
    if (st == DEBUG_HTTP_BAD)
        respond_text(fd, 400, "Bad Request", "400 Bad Request");
    else if (st == DEBUG_HTTP_TOO_LONG)
        respond_text(fd, 431, "Request Header Fields Too Large",
                     "431 Request Header Fields Too Large");
    gort_free(buf);
    gort_close(fd);
}

static void accept_loop(void *arg) {
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = gort_accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (fd == -EBADF || fd == -EINVAL) return;
            gort_sleep(10 * 1000 * 1000); /* EMFILE and friends: back off */
            continue;
        }
        if (gort_go(serve_conn, (void *)(intptr_t)fd) < 0) gort_close(fd);
    }
}

GORT_API int gort_debug_serve(const char *host_port) {
    prof_init();
    if (!sched_getg()) return -EPERM;
    char addr[256];
    if (!host_port || !*host_port) host_port = ":6060";
    if (strlen(host_port) >= sizeof addr - 16) return -EINVAL;
    if (host_port[0] == ':')
        snprint(addr, sizeof addr, "127.0.0.1%s", host_port); /* loopback unless asked */
    else
        snprint(addr, sizeof addr, "%s", host_port);
    int lfd = gort_listen_tcp(addr, 128);
    if (lfd < 0) return lfd;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int port = 0;
    if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0)
        port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (gort_go(accept_loop, (void *)(intptr_t)lfd) < 0) {
        gort_close(lfd);
        return -ENOMEM;
    }
    return port;
}
