#!/usr/bin/env bash
# C++ programs under LD_PRELOAD=libgort-malloc.so: operator new and delete in
# all twenty forms are gort's (src/mem/malloc_new.cc, malloc.c).
#
# Usage: bash tests/preload_cxx.sh BUILD_DIR SOURCE_DIR
#
# - The library exports the twenty operators and depends on no C++ runtime
#   (a C program preloading it must not load libstdc++).
# - A C++ program, built here with g++, calls every form (plain, array,
#   nothrow, aligned, sized, and their combinations, explicitly and through
#   new-expressions) and checks that each operator resolves to
#   libgort-malloc.so (dladdr), that each object lies in gort's heap with the
#   alignment asked for, and that gort's MemStats (gort_read_memstats, found
#   with dlsym) count its allocations and frees, libstdc++'s containers
#   included.
# - The standard's failure semantics: new throws std::bad_alloc, the nothrow
#   forms return NULL (also when a new_handler throws), the new_handler is
#   called until it is removed; aligned forms alike.
# - gort's misuse checks hold through delete: a double delete is a fatal
#   error naming the pointer, exit status 2.
# Exits 77 (ctest: skipped) without g++.
set -u

BUILD=${1:?usage: preload_cxx.sh BUILD_DIR SOURCE_DIR}
SRC=${2:?usage: preload_cxx.sh BUILD_DIR SOURCE_DIR}
LIB=$(cd "$BUILD" && pwd)/libgort-malloc.so
T=60
if [ ! -f "$LIB" ]; then
    echo "FAIL: $LIB not built"
    exit 1
fi
if ! command -v g++ >/dev/null 2>&1; then
    echo "SKIP: g++ not installed"
    exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# ---- the library: twenty operators, no C++ runtime ----
want="_ZdaPv _ZdaPvRKSt9nothrow_t _ZdaPvSt11align_val_t _ZdaPvSt11align_val_tRKSt9nothrow_t
_ZdaPvm _ZdaPvmSt11align_val_t _ZdlPv _ZdlPvRKSt9nothrow_t _ZdlPvSt11align_val_t
_ZdlPvSt11align_val_tRKSt9nothrow_t _ZdlPvm _ZdlPvmSt11align_val_t _Znam _ZnamRKSt9nothrow_t
_ZnamSt11align_val_t _ZnamSt11align_val_tRKSt9nothrow_t _Znwm _ZnwmRKSt9nothrow_t
_ZnwmSt11align_val_t _ZnwmSt11align_val_tRKSt9nothrow_t"
exported=$(nm -D --defined-only "$LIB" | awk '$2 == "T" || $2 == "W" || $2 == "i" { print $3 }')
missing=0
for s in $want; do
    grep -qx "$s" <<<"$exported" || {
        fail "libgort-malloc.so does not export $s"
        missing=1
    }
done
[ "$missing" = 0 ] && echo "exports  ok (20 operators new/delete)"
if readelf -d "$LIB" | grep NEEDED | grep -q -E 'libstdc\+\+|libc\+\+|libgcc_s'; then
    fail "libgort-malloc.so depends on a C++ runtime: $(readelf -d "$LIB" | grep NEEDED | tr -s ' ')"
elif nm -D --undefined-only "$LIB" | grep -v '@GLIBC' | grep -q -E '_Z|__cxa_|__gxx_|_Unwind_'; then
    fail "libgort-malloc.so needs C++ runtime symbols: $(nm -D --undefined-only "$LIB" | grep -v '@GLIBC' | grep -E '_Z|__cxa_|__gxx_|_Unwind_' | tr -s ' \n' ' ')"
else
    echo "deps     ok (no C++ runtime needed)"
fi
if out=$(timeout "$T" env LD_PRELOAD="$LIB" grep -c 'libstdc++' /proc/self/maps); [ "$out" != 0 ]; then
    fail "a C program preloading libgort-malloc.so maps libstdc++ ($out lines)"
fi

# ---- a C++ program ----
cat >"$tmp/t.cc" <<'EOF'
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <malloc.h>
#include <map>
#include <new>
#include <string>
#include <vector>

#include "gort/memstats.h"

static int fails;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            std::printf("CHECK failed line %d: %s\n", __LINE__, #c);                               \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)

static bool in_gort(const void *p) {
    uintptr_t a = (uintptr_t)p;
    return a >= 0xc000000000ull && a < 0xc000000000ull + (1ull << 40);
}
static bool aligned_to(const void *p, size_t al) {
    return (uintptr_t)p % al == 0;
}
static bool from_gort(void *fn, const char *what) {
    Dl_info di;
    bool ok = dladdr(fn, &di) && di.dli_fname && std::strstr(di.dli_fname, "libgort-malloc");
    if (!ok) std::printf("%s resolves to %s\n", what, di.dli_fname ? di.dli_fname : "?");
    return ok;
}
#define FROM_GORT(type, op) CHECK(from_gort((void *)static_cast<type>(op), #type))

static void (*read_memstats)(gort_memstats *);
static gort_memstats ms() {
    gort_memstats m;
    read_memstats(&m);
    return m;
}

struct alignas(64) A64 {
    char c[64];
};
struct alignas(4096) A4K {
    char c[100];
};
struct Obj {
    int v;
    ~Obj() { v = -1; } /* non-trivial: delete[] needs the element count */
};

static int handler_calls;
static void counting_handler() {
    if (++handler_calls == 3) std::set_new_handler(nullptr);
}
static void throwing_handler() {
    handler_calls++;
    throw std::bad_alloc();
}

static const size_t HUGE_SIZE = (size_t)1 << 50; /* more than gort's heap */
static void *volatile sink;

int main(int argc, char **argv) {
    read_memstats = (void (*)(gort_memstats *))dlsym(RTLD_DEFAULT, "gort_read_memstats");
    if (!read_memstats) {
        std::printf("gort_read_memstats not found: not preloaded?\n");
        return 1;
    }
    if (argc > 1 && std::strcmp(argv[1], "double-delete") == 0) {
        int *p = new int(1);
        std::printf("PTR %p\n", (void *)p);
        std::fflush(stdout);
        delete p;
        delete p;
        return 0;
    }

    /* Every operator is gort's. */
    FROM_GORT(void *(*)(size_t), ::operator new);
    FROM_GORT(void *(*)(size_t), ::operator new[]);
    FROM_GORT(void *(*)(size_t, const std::nothrow_t &) noexcept, ::operator new);
    FROM_GORT(void *(*)(size_t, const std::nothrow_t &) noexcept, ::operator new[]);
    FROM_GORT(void *(*)(size_t, std::align_val_t), ::operator new);
    FROM_GORT(void *(*)(size_t, std::align_val_t), ::operator new[]);
    FROM_GORT(void *(*)(size_t, std::align_val_t, const std::nothrow_t &) noexcept, ::operator new);
    FROM_GORT(void *(*)(size_t, std::align_val_t, const std::nothrow_t &) noexcept,
              ::operator new[]);
    FROM_GORT(void (*)(void *) noexcept, ::operator delete);
    FROM_GORT(void (*)(void *) noexcept, ::operator delete[]);
    FROM_GORT(void (*)(void *, const std::nothrow_t &) noexcept, ::operator delete);
    FROM_GORT(void (*)(void *, const std::nothrow_t &) noexcept, ::operator delete[]);
    FROM_GORT(void (*)(void *, size_t) noexcept, ::operator delete);
    FROM_GORT(void (*)(void *, size_t) noexcept, ::operator delete[]);
    FROM_GORT(void (*)(void *, std::align_val_t) noexcept, ::operator delete);
    FROM_GORT(void (*)(void *, std::align_val_t) noexcept, ::operator delete[]);
    FROM_GORT(void (*)(void *, std::align_val_t, const std::nothrow_t &) noexcept,
              ::operator delete);
    FROM_GORT(void (*)(void *, std::align_val_t, const std::nothrow_t &) noexcept,
              ::operator delete[]);
    FROM_GORT(void (*)(void *, size_t, std::align_val_t) noexcept, ::operator delete);
    FROM_GORT(void (*)(void *, size_t, std::align_val_t) noexcept, ::operator delete[]);

    gort_memstats m0 = ms();

    /* Each form, explicitly: in gort's heap, aligned as asked, usable. */
    for (size_t n : {(size_t)0, (size_t)1, (size_t)24, (size_t)100, (size_t)5000,
                     (size_t)40000, (size_t)300000}) {
        void *p;
        p = ::operator new(n);
        CHECK(in_gort(p) && aligned_to(p, n > 8 ? 16 : 8) && malloc_usable_size(p) >= n);
        std::memset(p, 1, n);
        ::operator delete(p);
        p = ::operator new[](n);
        CHECK(in_gort(p) && malloc_usable_size(p) >= n);
        ::operator delete[](p);
        p = ::operator new(n, std::nothrow);
        CHECK(in_gort(p));
        ::operator delete(p, std::nothrow);
        p = ::operator new[](n, std::nothrow);
        CHECK(in_gort(p));
        ::operator delete[](p, std::nothrow);
        p = ::operator new(n);
        CHECK(in_gort(p));
        ::operator delete(p, n);
        p = ::operator new[](n);
        CHECK(in_gort(p));
        ::operator delete[](p, n);
        for (size_t al : {(size_t)1, (size_t)8, (size_t)32, (size_t)256, (size_t)4096,
                          (size_t)65536}) {
            std::align_val_t a{al};
            p = ::operator new(n, a);
            CHECK(in_gort(p) && aligned_to(p, al) && malloc_usable_size(p) >= n);
            std::memset(p, 2, n);
            ::operator delete(p, a);
            p = ::operator new[](n, a);
            CHECK(in_gort(p) && aligned_to(p, al));
            ::operator delete[](p, a);
            p = ::operator new(n, a, std::nothrow);
            CHECK(in_gort(p) && aligned_to(p, al));
            ::operator delete(p, a, std::nothrow);
            p = ::operator new[](n, a, std::nothrow);
            CHECK(in_gort(p) && aligned_to(p, al));
            ::operator delete[](p, a, std::nothrow);
            p = ::operator new(n, a);
            CHECK(in_gort(p) && aligned_to(p, al));
            ::operator delete(p, n, a);
            p = ::operator new[](n, a);
            CHECK(in_gort(p) && aligned_to(p, al));
            ::operator delete[](p, n, a);
        }
    }

    /* New-expressions: the compiler picks the sized and aligned forms. */
    int *i = new int(7);
    CHECK(in_gort(i) && *i == 7);
    delete i;
    Obj *objs = new Obj[1000];
    CHECK(in_gort(objs));
    delete[] objs;
    A64 *a64 = new A64;
    CHECK(in_gort(a64) && aligned_to(a64, 64));
    delete a64;
    A4K *a4k = new A4K[3];
    CHECK(in_gort(a4k) && aligned_to(a4k, 4096) && aligned_to(&a4k[1], 4096));
    delete[] a4k;
    A64 *an = new (std::nothrow) A64[10];
    CHECK(in_gort(an) && aligned_to(an, 64));
    delete[] an;

    /* MemStats count a C++ program's objects: 20,000 new char[100] are
     * 20,000 mallocs of the 112-byte class, and their deletes frees. */
    gort_memstats m1 = ms();
    int k112 = -1;
    for (int k = 0; k < 61; k++)
        if (m1.by_size[k].size == 112) k112 = k;
    CHECK(k112 > 0);
    std::vector<char *> v;
    v.reserve(20000);
    for (int k = 0; k < 20000; k++) v.push_back(new char[100]);
    gort_memstats m2 = ms();
    for (char *p : v) delete[] p;
    gort_memstats m3 = ms();
    CHECK(m2.by_size[k112].mallocs - m1.by_size[k112].mallocs >= 20000);
    CHECK(m3.by_size[k112].frees - m2.by_size[k112].frees >= 20000);
    CHECK(m2.heap_objects >= m1.heap_objects + 20000);
    CHECK(m1.mallocs - m0.mallocs >= 7 * 6 * 6 + 7 * 6);

    /* libstdc++'s containers allocate through the same operators. */
    gort_memstats m4 = ms();
    {
        std::map<int, std::string> m;
        for (int k = 0; k < 10000; k++) m[k] = std::string(40 + k % 50, 'x');
        size_t total = 0;
        for (auto &e : m) total += e.second.size();
        CHECK(total == 10000 * 40 + 200 * (49 * 50 / 2));
    }
    gort_memstats m5 = ms();
    CHECK(m5.mallocs - m4.mallocs >= 20000); /* a node and a string each */
    CHECK(m5.frees - m4.frees >= 20000);

    /* Failure: std::bad_alloc, NULL for nothrow, the new_handler loop. */
    bool threw = false;
    try {
        sink = new char[HUGE_SIZE];
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);
    threw = false;
    try {
        sink = ::operator new(HUGE_SIZE, std::align_val_t{64});
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);
    CHECK(::operator new(HUGE_SIZE, std::nothrow) == nullptr);
    CHECK(::operator new[](HUGE_SIZE, std::nothrow) == nullptr);
    CHECK(::operator new(HUGE_SIZE, std::align_val_t{128}, std::nothrow) == nullptr);
    CHECK(::operator new[](HUGE_SIZE, std::align_val_t{128}, std::nothrow) == nullptr);
    std::set_new_handler(counting_handler);
    threw = false;
    try {
        sink = ::operator new(HUGE_SIZE);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw && handler_calls == 3); /* called until it removed itself */
    handler_calls = 0;
    std::set_new_handler(throwing_handler);
    CHECK(::operator new(HUGE_SIZE, std::nothrow) == nullptr && handler_calls == 1);
    CHECK(::operator new[](HUGE_SIZE, std::align_val_t{64}, std::nothrow) == nullptr &&
          handler_calls == 2);
    std::set_new_handler(nullptr);

    std::printf("%s %llu mallocs %llu frees\n", fails ? "FAILED" : "OK",
                (unsigned long long)(m5.mallocs - m0.mallocs),
                (unsigned long long)(m5.frees - m0.frees));
    return fails != 0;
}
EOF
if ! g++ -std=c++17 -O0 -Wall -I"$SRC/include" -o "$tmp/t" "$tmp/t.cc" -ldl >"$tmp/cc.err" 2>&1; then
    fail "g++ cannot build the test program:"
    cat "$tmp/cc.err"
    exit 1
fi

out=$(timeout "$T" env LD_PRELOAD="$LIB" "$tmp/t" 2>&1)
st=$?
if [ "$st" = 0 ] && grep -q '^OK ' <<<"$out"; then
    echo "cxx      ok ($(grep '^OK ' <<<"$out" | cut -c4-), every form, bad_alloc, new_handler)"
else
    fail "the C++ program under the preload (status $st):"
    echo "$out" | tail -n 30
fi

# ---- misuse through delete ----
out=$(timeout "$T" env LD_PRELOAD="$LIB" "$tmp/t" double-delete 2>&1)
st=$?
ptr=$(sed -n 's/^PTR //p' <<<"$out")
if [ "$st" = 2 ] && [ -n "$ptr" ] && grep -q "fatal error: .*double free of $ptr" <<<"$out"; then
    echo "misuse   ok (a double delete is gort's fatal error)"
else
    fail "double delete under the preload: status $st, output: $out"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all ok"
