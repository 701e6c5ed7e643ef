#!/usr/bin/env bash
# LD_PRELOAD=libgort-malloc.so runs real programs correctly.
#
# Usage: bash tests/preload.sh BUILD_DIR [SOURCE_DIR]
#
# Each program does real allocation-heavy work, first without the preload
# (the reference) and then with it; the outputs must be identical, and each
# workload also checks its own results against numbers known in advance.
# Programs that are missing are skipped with a "SKIP:" line. Every run is
# bounded by timeout(1). Exits non-zero on any mismatch or failure.
set -u

BUILD=${1:?usage: preload.sh BUILD_DIR [SOURCE_DIR]}
LIB=$(cd "$BUILD" && pwd)/libgort-malloc.so
T=120
if [ ! -f "$LIB" ]; then
    echo "FAIL: $LIB not built"
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

have() {
    if command -v "$1" >/dev/null 2>&1; then
        return 0
    fi
    echo "SKIP: $1 not installed"
    return 1
}

# Runs "$@" with and without the preload (in that order: reference first)
# and compares stdout. $name labels the output files.
compare() {
    local name=$1
    shift
    local t0 t1
    t0=$(date +%s.%N)
    if ! timeout "$T" "$@" >"$tmp/$name.ref" 2>"$tmp/$name.ref.err"; then
        fail "$name: reference run (no preload) failed; stderr:"
        cat "$tmp/$name.ref.err"
        return 1
    fi
    t1=$(date +%s.%N)
    if ! timeout "$T" env LD_PRELOAD="$LIB" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"; then
        fail "$name: failed under LD_PRELOAD (status $?); stderr:"
        tail -n 30 "$tmp/$name.err"
        return 1
    fi
    local t2
    t2=$(date +%s.%N)
    if ! cmp -s "$tmp/$name.ref" "$tmp/$name.out"; then
        fail "$name: output differs under LD_PRELOAD"
        diff "$tmp/$name.ref" "$tmp/$name.out" | head -n 20
        return 1
    fi
    printf '%-8s ok (reference %.1f s, preloaded %.1f s)\n' "$name" \
        "$(awk "BEGIN{print $t1 - $t0}")" "$(awk "BEGIN{print $t2 - $t1}")"
    return 0
}

# ---- the preload is in effect ----
if out=$(timeout "$T" env LD_PRELOAD="$LIB" grep -c libgort-malloc /proc/self/maps) &&
    [ "$out" -ge 1 ]; then
    echo "maps     ok (libgort-malloc.so mapped in a preloaded grep)"
else
    fail "libgort-malloc.so is not mapped in a preloaded process"
fi

# ---- python3 ----
if have python3; then
    cat >"$tmp/check_preload.py" <<'EOF'
import ctypes
maps = open("/proc/self/maps").read()
assert "libgort-malloc" in maps, "libgort-malloc.so not mapped"
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.malloc_usable_size.restype = ctypes.c_size_t
libc.malloc_usable_size.argtypes = [ctypes.c_void_p]
libc.free.argtypes = [ctypes.c_void_p]
p = libc.malloc(100)
# gort's heap starts at 0x00c000000000 (Go's arena hints); 100 bytes are
# served by Go's 112-byte size class (glibc would give 104 or 120).
assert 0xC000000000 <= p < 0xC000000000 + (1 << 40), hex(p)
assert libc.malloc_usable_size(p) == 112, libc.malloc_usable_size(p)
libc.free(p)
print("OK")
EOF
    if out=$(timeout "$T" env LD_PRELOAD="$LIB" python3 "$tmp/check_preload.py" 2>&1) &&
        [ "$out" = OK ]; then
        echo "python3  preload in effect (malloc from gort's heap, Go's size classes)"
    else
        fail "python3: the preload is not in effect: $out"
    fi

    cat >"$tmp/work.py" <<'EOF'
import hashlib, json, os, random, sys, threading

N = 200000
random.seed(12345)
data = [{"id": i, "name": "item%07d" % i, "v": random.random(),
         "tags": ["t%d" % (i % 7), "x" * (i % 50)]} for i in range(N)]
data.sort(key=lambda d: (d["v"], d["id"]))
s = json.dumps(data)
back = json.loads(s)
assert back == data
assert sorted(d["id"] for d in back) == list(range(N))
assert sum(len(d["tags"][1]) for d in back) == sum(i % 50 for i in range(N))
del data

# Strings built in threads and freed in the main thread (cross-thread frees).
results = [None] * 4
def work(k):
    out = []
    for i in range(k, 200000, 4):
        out.append(("%x-" % (i * 2654435761 % 2**32)) * (1 + i % 5))
    out.sort()
    results[k] = out
threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
words = sorted(w for r in results for w in r)
assert len(words) == 200000
del results

# A fork in a process with threads and a busy heap.
pid = os.fork()
if pid == 0:
    junk = [bytearray(i % 3000) for i in range(20000)]
    os._exit(0 if len(junk) == 20000 else 1)
_, st = os.waitpid(pid, 0)
assert st == 0, st

h = hashlib.sha256(s.encode())
h.update("\n".join(words).encode())
print("OK", len(s), len(back), h.hexdigest())
EOF
    if compare python3 python3 "$tmp/work.py"; then
        grep -q '^OK ' "$tmp/python3.out" || fail "python3: no OK line"
    fi
fi

# ---- sqlite3 ----
if have sqlite3; then
    cat >"$tmp/work.sql" <<'EOF'
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, s TEXT, r REAL);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t(k, s, r) SELECT x % 1000, printf('row-%08d-%s', x, hex(x * 7919)), x * 0.5 FROM c;
COMMIT;
CREATE INDEX tk ON t(k);
CREATE INDEX ts ON t(s);
SELECT count(*), sum(k), count(DISTINCT k), max(r), min(id), max(id) FROM t;
SELECT k, count(*), sum(id) FROM t WHERE k IN (0, 1, 999) GROUP BY k ORDER BY k;
SELECT count(*) FROM t a JOIN t b ON a.k = b.k WHERE a.id <= 1000 AND b.id <= 1000;
SELECT s FROM t WHERE s LIKE 'row-00054321-%';
UPDATE t SET s = upper(s) WHERE k < 100;
DELETE FROM t WHERE k >= 900;
SELECT count(*), sum(length(s)) > 0 FROM t;
VACUUM;
PRAGMA integrity_check;
EOF
    rm -f "$tmp/db.ref" "$tmp/db.out"
    # The same script; a fresh database file for each run.
    cat >"$tmp/sqlite_run.sh" <<EOF
db="$tmp/db.\$\$"
rm -f "\$db"
sqlite3 "\$db" <"$tmp/work.sql"
st=\$?
rm -f "\$db"
exit \$st
EOF
    if compare sqlite3 bash "$tmp/sqlite_run.sh"; then
        # Numbers known in advance: 100000 rows, k = x % 1000, id = x.
        expect="100000|49950000|1000|50000.0|1|100000
0|100|5050000
1|100|4950100
999|100|5049900
1000
row-00054321-343330313637393939
90000|1
ok"
        if [ "$(cat "$tmp/sqlite3.out")" != "$expect" ]; then
            fail "sqlite3: results differ from the expected ones:"
            diff <(echo "$expect") "$tmp/sqlite3.out"
        fi
    fi
fi

# ---- git ----
if have git; then
    cat >"$tmp/git_run.sh" <<'EOF'
set -e
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export HOME=$dir GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=gort GIT_AUTHOR_EMAIL=gort@example.com
export GIT_COMMITTER_NAME=gort GIT_COMMITTER_EMAIL=gort@example.com
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
cd "$dir"
git init -q -b main repo
cd repo
for i in $(seq 1 300); do
    mkdir -p "d$((i % 10))"
    { echo "file $i"; seq 1 $((i * 3)); } >"d$((i % 10))/f$i.txt"
done
git add -A
git commit -q -m "three hundred files"
for i in $(seq 1 50); do echo "change $i" >>"d$((i % 10))/f$i.txt"; done
git rm -qf d3/f3.txt
git commit -q -am "fifty changes, one removal"
git log --format='%H %s'
git ls-files | wc -l
git diff --shortstat HEAD~1 HEAD
git grep -c 'change' | wc -l
git gc -q --aggressive
git count-objects -v | grep -E '^(count|in-pack|packs):'
git fsck --strict --no-progress 2>&1
git rev-parse HEAD^{tree}
EOF
    if compare git bash "$tmp/git_run.sh"; then
        lines=$(sed -n 3p "$tmp/git.out")
        stat=$(sed -n 4p "$tmp/git.out")
        if [ "$lines" != 299 ] || ! echo "$stat" | grep -q '^ 50 files changed, 49 insertions(+), 10 deletions(-)$'; then
            fail "git: unexpected results: $lines files, '$stat'"
        fi
        # 349 blobs, 22 trees, 2 commits, all in one pack after gc.
        if ! grep -q '^count: 0$' "$tmp/git.out" || ! grep -q '^in-pack: 373$' "$tmp/git.out" ||
            [ "$(sed -n 5p "$tmp/git.out")" != 49 ]; then
            fail "git: unexpected results:"
            cat "$tmp/git.out"
        fi
    fi
fi

# ---- the release policy under the preload (src/mem/scavenge.h) ----
# Frees never give pages back on the spot; the scavenger's period, run by
# the allocation slow path every 100 ms, does: 200 MiB freed stay resident
# until the program allocates again, then go once the peak is a second old.
if command -v cc >/dev/null 2>&1; then
    cat >"$tmp/release.c" <<'EOF2'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}
enum { N = 200 * 1024 / 2, RING = 4096 };
static char *blk[N], *ring[RING];
int main(void) {
    long base = rss_kib();
    for (int i = 0; i < N; i++) {
        blk[i] = malloc(1024 + (i % 7) * 512); /* 200 MiB of 1-4 KiB objects */
        memset(blk[i], 1, 1024);
    }
    long peak = rss_kib();
    for (int i = 0; i < N; i++) free(blk[i]);
    long after_free = rss_kib();
    /* Keep allocating (small, varied: span refills) until the RSS drops. */
    double t0 = now();
    unsigned r = 1;
    long rss = after_free;
    for (long k = 0; now() - t0 < 10; k++) {
        r = r * 1103515245 + 12345;
        free(ring[k % RING]);
        ring[k % RING] = malloc(16 + (r >> 16) % 2000);
        if (k % 100000 == 0 && (rss = rss_kib()) < base + (peak - base) / 4) break;
    }
    int ok = peak - base > 150 * 1024 && after_free > peak - (peak - base) / 10 &&
             rss < base + (peak - base) / 4;
    printf("%s base %ld peak %ld after-free %ld after %.2f s %ld KiB\n", ok ? "OK" : "BAD", base,
           peak, after_free, now() - t0, rss);
    return !ok;
}
EOF2
    if cc -O1 -o "$tmp/release" "$tmp/release.c" 2>"$tmp/release.cc.err"; then
        out=$(timeout "$T" env LD_PRELOAD="$LIB" "$tmp/release" 2>&1)
        if [ "${out%% *}" = OK ]; then
            echo "release  ok (${out#OK })"
        else
            fail "release policy under the preload: $out"
        fi
    else
        echo "SKIP: cc cannot build the release check"
    fi
fi

# ---- malloc failure under the preload: NULL and ENOMEM, then recovery ----
if command -v cc >/dev/null 2>&1; then
    cat >"$tmp/oom.c" <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void *keep[1 << 20];
int main(void) {
    size_t n = 0;
    for (;;) {
        errno = 0;
        void *p = malloc(4000);
        if (!p) break;
        if (n == sizeof keep / sizeof keep[0]) { puts("never ran out"); return 1; }
        keep[n++] = p;
    }
    if (errno != ENOMEM) { printf("small malloc: NULL with errno %d\n", errno); return 1; }
    errno = 0;
    void *big = malloc((size_t)1 << 30);
    if (big || errno != ENOMEM) { printf("large malloc: %p errno %d\n", big, errno); return 1; }
    errno = 0;
    void *c = calloc((size_t)1 << 20, 1 << 12);
    if (c || errno != ENOMEM) { printf("calloc: %p errno %d\n", c, errno); return 1; }
    for (size_t i = 0; i < n; i++) free(keep[i]);
    void *p = malloc(4000);
    if (!p) { puts("malloc fails after everything was freed"); return 1; }
    memset(p, 1, 4000);
    free(p);
    printf("OK %s\n", n > 1000 ? "many" : "few");
    return 0;
}
EOF
    if cc -O1 -o "$tmp/oom" "$tmp/oom.c" 2>"$tmp/oom.cc.err"; then
        # 1 GiB of address space: gort's heap runs out well before the loop ends.
        out=$( (ulimit -v 1048576 && timeout "$T" env LD_PRELOAD="$LIB" "$tmp/oom") 2>&1)
        if [ "$out" = "OK many" ]; then
            echo "oom      ok (NULL with ENOMEM under RLIMIT_AS, then recovery)"
        else
            fail "out of memory under the preload: $out"
        fi
    else
        echo "SKIP: cc cannot build the out-of-memory check"
    fi
else
    echo "SKIP: cc not installed"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all ok"
