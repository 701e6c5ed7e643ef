#!/usr/bin/env bash
# Runs gort's benchmarks against their peers and prints ratios.
#
# Usage: bench/run.sh BUILD_DIR [NAME...]
#
# BUILD_DIR is an already built tree (this script builds nothing): it runs
# BUILD_DIR/bench/<program> and preloads BUILD_DIR/libgort-malloc.so.
# NAME selects what to run: a family (malloc, pagealloc, ctxswitch, sched, chan, stw,
# sync, http, gc, starve, prof), a single malloc
# pattern (hot-16, hot-64, hot-256, hot-4096, hot-65536, fifo, random,
# xthread, xbatch) or a single gc workload (binarytrees, gcpause, allocfree, memlimit).
# No NAME: everything.
#
# Environment:
#   BENCH_REPS     processes per (pattern, allocator); medians are reported (3)
#   BENCH_LOGS     where each run's output goes (/tmp/gort-bench-logs)
#   BENCH_TIMEOUT  seconds before one run is killed and reported FAIL (300)
#   MALLOCBENCH    the mallocbench binary (BUILD_DIR/bench/mallocbench)
#   MALLOC_ITERS   iteration count passed to every malloc pattern (default:
#                  the program's own per-pattern default)
#   MIMALLOC_SO, JEMALLOC_SO   the peer libraries (Debian paths by default)
#   GO            the Go toolchain for the Go peers of sched, chan, sync, http and gc
#                 (/usr/lib/go-1.19/bin/go)
#   GC_MAXRSS_KIB  gc family: a run whose RSS passes this is killed and FAILs (6291456)
#   BENCH_GC_QUICK gc family: set to smoke-test the script on small sizes (figures meaningless)
#   PROF_REPS     prof family: off/on pairs per workload inside its one process (9)
#   PROF_ONLY     prof family: one of heap, cpu, trace, or a workload name (all)
#   PEERS_DIR     the peers' sources (bench/peers of this repository; the
#                 workloads are defined in bench/peers/README.md)
#   HTTP_DURATION wrk's -d for the http family (10s), HTTP_PROCS the GOMAXPROCS of
#                 both servers there (2)
#   FCONTEXT_SRC  the ctxswitch peer's source, built with g++ -O2 -lboost_context
#                 when Boost.Context is installed (default:
#                 PEERS_DIR/ctxswitch/boost_fcontext.cpp)
#
# A run that exits non-zero, prints a line starting with BAD, prints no
# RESULT line, or whose LD_PRELOAD library the loader refused, is FAIL. Exit
# status: 0 if nothing FAILed (missed performance targets do not count), 1 if
# something did, 2 on bad usage.
#
# Sections: one function per benchmark family (bench_malloc, bench_pagealloc,
# bench_ctxswitch, bench_sched, bench_chan, bench_stw, bench_sync, bench_http, bench_gc,
# bench_starve, bench_prof);
# add a family by writing bench_<family>, listing it in FAMILIES and, if it
# takes sub-names, teaching select_names about them.
set -u -o pipefail

usage() {
    sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 1 ] || usage
case "$1" in -h | --help) usage ;; esac
BUILD_DIR=$(cd "$1" 2>/dev/null && pwd) || {
    echo "run.sh: build directory '$1' not found" >&2
    exit 2
}
shift

REPS=${BENCH_REPS:-3}
LOGS=${BENCH_LOGS:-/tmp/gort-bench-logs}
TIMEOUT=${BENCH_TIMEOUT:-300}
case "$REPS" in '' | *[!0-9]* | 0)
    echo "run.sh: BENCH_REPS must be a positive integer" >&2
    exit 2
    ;;
esac
mkdir -p "$LOGS" || exit 2

FAILED=0 # set to 1 by any FAIL

# Where the peers are: in this repository, beside this script.
REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)
PEERS_DIR=${PEERS_DIR:-$REPO_DIR/bench/peers}
GO=${GO:-/usr/lib/go-1.19/bin/go}

# ---- helpers ----------------------------------------------------------------

# median [FORMAT]: median of the numbers on stdin (one per line), printed
# with FORMAT (%.2f); empty input -> empty output
median() {
    sort -g | awk -v f="${1:-%.2f}" '{ v[NR] = $1 }
        END { if (NR == 0) exit
              m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              printf f "\n", m }'
}

# ratio A B -> A/B with 2 decimals, or "-" if either is not a positive number
ratio() {
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
        if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) { print "-"; exit }
        printf "%.2f\n", a / b }'
}

# smaller of two numbers, ignoring ones that are not numbers ("FAIL", "SKIP", "")
num_min() {
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
        an = (a ~ /^[0-9.]+$/); bn = (b ~ /^[0-9.]+$/)
        if (an && bn) print (a + 0 <= b + 0 ? a : b)
        else if (an) print a
        else if (bn) print b
        else print "-" }'
}

# cmp A OP B: true if the numeric comparison holds (false if not numbers)
cmp() {
    awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
        if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/) exit 1
        a += 0; b += 0
        if (op == "<=") exit !(a <= b)
        if (op == "<") exit !(a < b)
        exit 1 }'
}

# run_logged LOG PRELOAD CMD...: runs CMD with LD_PRELOAD=PRELOAD (none if
# empty) under the timeout, stdout and stderr into LOG. Returns 0 if the run
# counts as good: exit 0, no BAD line, no loader refusal of the preload.
run_logged() {
    local log=$1 preload=$2
    shift 2
    local rc
    if [ -n "$preload" ]; then
        LD_PRELOAD=$preload timeout "$TIMEOUT" "$@" >"$log" 2>&1
    else
        env -u LD_PRELOAD timeout "$TIMEOUT" "$@" >"$log" 2>&1
    fi
    rc=$?
    echo "EXIT $rc" >>"$log"
    [ "$rc" -eq 0 ] || return 1
    grep -q '^BAD' "$log" && return 1
    grep -q 'ld.so: object .* cannot be preloaded' "$log" && return 1
    return 0
}

# fail_reason LOG: one line saying why the run logged in LOG failed
fail_reason() {
    local why
    why=$(grep -m1 -E '^BAD|cannot be preloaded' "$1") && { echo "$why"; return; }
    case "$(tail -n 1 "$1")" in
    "EXIT 124" | "EXIT 137") echo "timed out after ${TIMEOUT}s (BENCH_TIMEOUT)" ;;
    "EXIT 0") echo "no RESULT line" ;;
    *) tail -n 1 "$1" ;;
    esac
}

# ---- family: malloc (bench/mallocbench.c) ------------------------------------

MALLOC_PATTERNS=(hot-16 hot-64 hot-256 hot-4096 hot-65536 fifo random xthread xbatch)
# gort's time may take at most this many times the better of mimalloc and
# jemalloc (1.20 unless listed); peak RSS at most 1.20x theirs
declare -A MALLOC_TIME_TARGET=([xbatch]=1.10)
ALLOCS=(gort glibc mimalloc jemalloc)
declare -A ALLOC_SO=(
    [gort]="$BUILD_DIR/libgort-malloc.so"
    [glibc]=""
    [mimalloc]="${MIMALLOC_SO:-/usr/lib/x86_64-linux-gnu/libmimalloc.so.2}"
    [jemalloc]="${JEMALLOC_SO:-/usr/lib/x86_64-linux-gnu/libjemalloc.so.2}"
)

bench_malloc() {
    local patterns=("$@")
    local mb=${MALLOCBENCH:-$BUILD_DIR/bench/mallocbench}
    echo "== malloc: $mb, $REPS rep(s) per allocator, interleaved; logs in $LOGS"
    if [ ! -x "$mb" ]; then
        echo "FAIL malloc: $mb not found (build it, or set MALLOCBENCH=path)"
        FAILED=1
        return
    fi

    # which allocators can run at all
    local a active=()
    for a in "${ALLOCS[@]}"; do
        local so=${ALLOC_SO[$a]}
        if [ -n "$so" ] && [ ! -f "$so" ]; then
            echo "SKIP $a: $so not found"
        else
            active+=("$a")
        fi
    done

    local iters=()
    [ -n "${MALLOC_ITERS:-}" ] && iters=("$MALLOC_ITERS")

    # raw figures, keyed "pattern allocator": newline-separated values
    declare -A ns_vals=() rss_vals=() failed=()
    local p rep log line
    for p in "${patterns[@]}"; do
        for ((rep = 1; rep <= REPS; rep++)); do
            for a in "${active[@]}"; do
                log="$LOGS/malloc-$p.$a.$rep.log"
                if ! run_logged "$log" "${ALLOC_SO[$a]}" "$mb" "$p" "${iters[@]}"; then
                    failed["$p $a"]=1
                    echo "FAIL malloc-$p $a rep $rep: $(fail_reason "$log") (log: $log)"
                    continue
                fi
                line=$(grep '^RESULT ' "$log" | tail -n 1)
                local ns rss
                ns=$(sed -n 's/^RESULT malloc-[^ ]* [^ ]* pair=\([0-9.]*\) ns$/\1/p' <<<"$line")
                rss=$(sed -n 's/^RESULT malloc-[^ ]* [^ ]* peak_rss=\([0-9]*\) KiB$/\1/p' "$log" | tail -n 1)
                if [ -z "$ns" ] || [ -z "$rss" ]; then
                    failed["$p $a"]=1
                    echo "FAIL malloc-$p $a rep $rep: no RESULT pair=/peak_rss= lines (log: $log)"
                    continue
                fi
                ns_vals["$p $a"]+="$ns"$'\n'
                rss_vals["$p $a"]+="$rss"$'\n'
            done
        done
    done

    # medians; a cell is FAIL if any rep failed, SKIP if the allocator was absent
    declare -A ns_med=() rss_med=()
    for p in "${patterns[@]}"; do
        for a in "${ALLOCS[@]}"; do
            if [[ " ${active[*]} " != *" $a "* ]]; then
                ns_med["$p $a"]=SKIP
                rss_med["$p $a"]=SKIP
            elif [ -n "${failed["$p $a"]:-}" ]; then
                ns_med["$p $a"]=FAIL
                rss_med["$p $a"]=FAIL
                FAILED=1
            else
                ns_med["$p $a"]=$(printf '%s' "${ns_vals["$p $a"]}" | median)
                rss_med["$p $a"]=$(printf '%s' "${rss_vals["$p $a"]}" | median %.0f)
            fi
        done
    done

    # table
    echo
    malloc_row() {
        printf '%-16s | %8s | %8s | %11s | %11s | %16s | %10s | %17s | %24s | %9s\n' "$@"
    }
    malloc_row pattern "gort ns" "glibc ns" "mimalloc ns" "jemalloc ns" \
        "gort/best(mi,je)" gort/glibc "gort peak RSS KiB" "best(mi,je) peak RSS KiB" "rss ratio"
    local verdicts=()
    for p in "${patterns[@]}"; do
        local g=${ns_med["$p gort"]} gl=${ns_med["$p glibc"]}
        local mi=${ns_med["$p mimalloc"]} je=${ns_med["$p jemalloc"]}
        local best best_rss g_rss=${rss_med["$p gort"]}
        best=$(num_min "$mi" "$je")
        best_rss=$(num_min "${rss_med["$p mimalloc"]}" "${rss_med["$p jemalloc"]}")
        local r_best r_glibc r_rss
        r_best=$(ratio "$g" "$best")
        r_glibc=$(ratio "$g" "$gl")
        r_rss=$(ratio "$g_rss" "$best_rss")
        malloc_row "malloc-$p" "$g" "$gl" "$mi" "$je" "$r_best" "$r_glibc" \
            "$g_rss" "$best_rss" "$r_rss"

        # verdict against the target: time <= 1.2x best(mi,je) (or the
        # pattern's MALLOC_TIME_TARGET) and < glibc;
        # peak RSS <= 1.2x best(mi,je)
        local v="VERDICT malloc-$p gort:"
        case "$g" in
        SKIP) v+=" SKIP (${ALLOC_SO[gort]} not built)" ;;
        FAIL) v+=" FAIL (see the FAIL lines above)" ;;
        *)
            local t_ok=PASS r_ok=PASS target=${MALLOC_TIME_TARGET[$p]:-1.20}
            if [ "$r_best" = - ]; then
                t_ok="n/a"
            elif ! cmp "$r_best" "<=" "$target"; then
                t_ok=MISS
            fi
            if [ "$t_ok" != "n/a" ] && [ "$r_glibc" != - ] && ! cmp "$g" "<" "$gl"; then
                t_ok=MISS
            fi
            if [ "$r_rss" = - ]; then
                r_ok="n/a"
            elif ! cmp "$r_rss" "<=" 1.2; then
                r_ok=MISS
            fi
            v+=" time $t_ok (${r_best}x best(mi,je), need <= ${target}x; ${r_glibc}x glibc, need < 1.00x)"
            v+=" rss $r_ok (${r_rss}x best(mi,je), need <= 1.20x)"
            ;;
        esac
        verdicts+=("$v")
    done
    # what the good reps of a failed side measured (the table says FAIL)
    local key n
    echo
    for key in "${!GC_FAIL[@]}"; do
        w=${key%%|*} p=${key#*|}
        for m in wall peak_rss max_stall alloc num_gc; do
            n=$(printf '%s' "${GC_VALS["$w|$p|$m"]:-}" | grep -c .)
            [ "$n" -gt 0 ] || continue
            echo "INFO $w $p failed some reps; its $n good rep(s): $m median" \
                "$(printf '%s' "${GC_VALS["$w|$p|$m"]}" | median)"
        done
    done | sort
    printf '%s\n' "${verdicts[@]}"
    echo
}

# ---- family: pagealloc (bench/pagealloc_bench.c, prints its own ratio) -------

bench_pagealloc() {
    local exe="$BUILD_DIR/bench/pagealloc_bench"
    echo "== pagealloc: $exe"
    if [ ! -x "$exe" ]; then
        echo "SKIP pagealloc: $exe not built"
        echo
        return
    fi
    local log="$LOGS/pagealloc.log"
    if run_logged "$log" "" "$exe" compare && grep -q '^RESULT ' "$log"; then
        grep -v '^EXIT ' "$log" | sed 's/^/  /'
    else
        sed 's/^/  /' "$log"
        echo "FAIL pagealloc (log: $log)"
        FAILED=1
    fi
    echo
}

# ---- family: ctxswitch (bench/ctxswitch_bench.c against Boost's fcontext) ----

CTX_TARGET=1.10 # gort's switch may take at most this many times fcontext's

# ctx_figure LOG PEER: the switch= figure of the RESULT line of PEER in LOG
ctx_figure() {
    sed -n "s/^RESULT ctxswitch $2 switch=\([0-9.]*\) ns\$/\1/p" "$1" | tail -n 1
}

bench_ctxswitch() {
    local exe="$BUILD_DIR/bench/ctxswitch_bench"
    echo "== ctxswitch: $exe against Boost.Context fcontext, $REPS rep(s) each, interleaved;" \
        "logs in $LOGS"
    if [ ! -x "$exe" ]; then
        echo "SKIP ctxswitch: $exe not built"
        echo
        return
    fi

    # the peer, built afresh into a temp dir when Boost.Context is installed
    local src=${FCONTEXT_SRC:-$PEERS_DIR/ctxswitch/boost_fcontext.cpp}
    local tmp peer="" why=""
    tmp=$(mktemp -d) || {
        echo "FAIL ctxswitch: mktemp -d failed"
        FAILED=1
        return
    }
    if [ ! -f "$src" ]; then
        why="$src not found (set FCONTEXT_SRC)"
    elif [ ! -f /usr/include/boost/context/detail/fcontext.hpp ]; then
        why="Boost.Context not installed (apt-get install libboost-context-dev)"
    elif ! g++ -O2 -o "$tmp/boost_fcontext" "$src" -lboost_context >"$LOGS/ctxswitch.build.log" 2>&1; then
        why="build failed (log: $LOGS/ctxswitch.build.log)"
    else
        peer="$tmp/boost_fcontext"
    fi
    if [ -n "$why" ]; then echo "SKIP fcontext: $why"; fi

    # raw figures; a side that fails any rep is FAIL
    local g_vals="" f_vals="" g_fail="" f_fail="" rep log v
    for ((rep = 1; rep <= REPS; rep++)); do
        log="$LOGS/ctxswitch.gort.$rep.log"
        if run_logged "$log" "" "$exe" && v=$(ctx_figure "$log" gort) && [ -n "$v" ]; then
            g_vals+="$v"$'\n'
        else
            g_fail=1
            echo "FAIL ctxswitch gort rep $rep: $(fail_reason "$log") (log: $log)"
        fi
        [ -n "$peer" ] || continue
        log="$LOGS/ctxswitch.fcontext.$rep.log"
        if run_logged "$log" "" "$peer" && v=$(ctx_figure "$log" boost-fcontext) && [ -n "$v" ]; then
            f_vals+="$v"$'\n'
        else
            f_fail=1
            echo "FAIL ctxswitch fcontext rep $rep: $(fail_reason "$log") (log: $log)"
        fi
    done
    rm -rf "$tmp"

    local g f r
    if [ -n "$g_fail" ]; then g=FAIL; FAILED=1; else g=$(printf '%s' "$g_vals" | median); fi
    if [ -z "$peer" ]; then
        f=SKIP
    elif [ -n "$f_fail" ]; then
        f=FAIL
        FAILED=1
    else
        f=$(printf '%s' "$f_vals" | median)
    fi
    r=$(ratio "$g" "$f")

    echo
    printf '%-10s | %12s | %15s | %13s\n' workload "gort ns" "fcontext ns" gort/fcontext
    printf '%-10s | %12s | %15s | %13s\n' ctxswitch "$g" "$f" "$r"
    echo
    local verdict="VERDICT ctxswitch gort:"
    if [ "$g" = FAIL ]; then
        verdict+=" FAIL (see the FAIL lines above)"
    elif [ "$r" = - ]; then
        verdict+=" n/a (no fcontext figure; ${g} ns per switch)"
    elif cmp "$r" "<=" "$CTX_TARGET"; then
        verdict+=" PASS (${r}x fcontext, need <= ${CTX_TARGET}x)"
    else
        verdict+=" MISS (${r}x fcontext, need <= ${CTX_TARGET}x)"
    fi
    echo "$verdict"
    echo
}

# ---- family: sched (bench/yield_bench.c, sleepmem_bench.c, spawn1m_bench.c
#      against the Go peers yield/, sleepmem/ and spawn/) --------------------------

SCHED_YIELD_TARGET=0.30    # gort's yield may take at most this many times Go's (go-p1)
SCHED_SLEEPMEM_TARGET=4608 # bytes of RSS per sleeping goroutine (4.5 KiB)

# sched_figure LOG WORKLOAD PEER METRIC: the figure of that RESULT line in LOG
sched_figure() {
    sed -n "s/^RESULT $2 $3 $4=\([0-9.]*\) .*\$/\1/p" "$1" | tail -n 1
}

# sched_side NAME PEERLABEL METRIC LOGTAG CMD...: one rep of one side; appends
# the figure to the variable named NAME_vals, or sets NAME_fail
sched_side() {
    local name=$1 label=$2 metric=$3 tag=$4 log v
    shift 4
    log="$LOGS/sched-$tag.log"
    if run_logged "$log" "" "$@" && v=$(sched_figure "$log" "${tag%%.*}" "$label" "$metric") &&
        [ -n "$v" ]; then
        eval "${name}_vals+=\"\$v\"\$'\\n'"
    else
        eval "${name}_fail=1"
        echo "FAIL sched $tag: $(fail_reason "$log") (log: $log)"
    fi
}

bench_sched() {
    echo "== sched: yield (go-p1), sleepmem (go-p2), spawn1m (go-p2); $REPS rep(s) each," \
        "interleaved; logs in $LOGS"
    local y="$BUILD_DIR/bench/yield_bench" s="$BUILD_DIR/bench/sleepmem_bench"
    local sp="$BUILD_DIR/bench/spawn1m_bench"
    local exe
    for exe in "$y" "$s" "$sp"; do
        if [ ! -x "$exe" ]; then
            echo "FAIL sched: $exe not built"
            FAILED=1
            return
        fi
    done

    # the Go peers, built afresh (GOPATH mode, a private build cache)
    local tmp gy="" gs="" gsp="" why=""
    tmp=$(mktemp -d) || {
        echo "FAIL sched: mktemp -d failed"
        FAILED=1
        return
    }
    if [ ! -x "$GO" ]; then
        why="$GO not found (apt-get install golang-1.19-go, or set GO=)"
    elif ! (export GO111MODULE=off GOCACHE="$tmp/cache" GOPATH="$tmp/gopath"
        "$GO" build -o "$tmp/yield" "$PEERS_DIR/yield/main.go" &&
            "$GO" build -o "$tmp/sleepmem" "$PEERS_DIR/sleepmem/main.go" &&
            "$GO" build -o "$tmp/spawn" "$PEERS_DIR/spawn/main.go") >"$LOGS/sched.build.log" 2>&1; then
        why="go build failed (log: $LOGS/sched.build.log)"
    else
        gy="$tmp/yield" gs="$tmp/sleepmem" gsp="$tmp/spawn"
    fi
    if [ -n "$why" ]; then echo "SKIP go peers: $why"; fi

    local gy_vals="" goy_vals="" gs_vals="" gos_vals="" gsp_vals="" gosp_vals=""
    local gy_fail="" goy_fail="" gs_fail="" gos_fail="" gsp_fail="" gosp_fail="" rep
    for ((rep = 1; rep <= REPS; rep++)); do
        sched_side gy gort-p1 switch "yield.gort.$rep" env GORT_GOMAXPROCS=1 "$y"
        [ -n "$gy" ] && sched_side goy go-p1 switch "yield.go.$rep" env GOMAXPROCS=1 "$gy"
        sched_side gs gort per_goroutine "sleepmem.gort.$rep" env GORT_GOMAXPROCS=2 "$s"
        [ -n "$gs" ] && sched_side gos go-p2 per_goroutine "sleepmem.go.$rep" env GOMAXPROCS=2 "$gs"
        sched_side gsp gort-p2 goroutine "spawn1m.gort.$rep" env GORT_GOMAXPROCS=2 "$sp"
        [ -n "$gsp" ] && sched_side gosp go-p2 goroutine "spawn.go.$rep" env GOMAXPROCS=2 "$gsp"
    done
    rm -rf "$tmp"

    # medians; FAIL if any rep failed, SKIP without a peer
    sched_med() { # NAME HAVE_PEER
        local f v
        f="${1}_fail"
        v="${1}_vals"
        if [ -z "$2" ]; then echo SKIP
        elif [ -n "${!f}" ]; then echo FAIL
        else printf '%s' "${!v}" | median; fi
    }
    local y_g y_go s_g s_go sp_g sp_go
    y_g=$(sched_med gy 1) y_go=$(sched_med goy "$gy")
    s_g=$(sched_med gs 1) s_go=$(sched_med gos "$gs")
    sp_g=$(sched_med gsp 1) sp_go=$(sched_med gosp "$gsp")
    for v in "$y_g" "$y_go" "$s_g" "$s_go" "$sp_g" "$sp_go"; do [ "$v" = FAIL ] && FAILED=1; done

    echo
    printf '%-10s | %-16s | %12s | %12s | %8s\n' workload metric gort go gort/go
    printf '%-10s | %-16s | %12s | %12s | %8s\n' yield "ns/yield (p1)" "$y_g" "$y_go" "$(ratio "$y_g" "$y_go")"
    printf '%-10s | %-16s | %12s | %12s | %8s\n' sleepmem "bytes/goroutine" "$s_g" "$s_go" "$(ratio "$s_g" "$s_go")"
    printf '%-10s | %-16s | %12s | %12s | %8s\n' spawn1m "ns/goroutine" "$sp_g" "$sp_go" "$(ratio "$sp_g" "$sp_go")"
    echo
    local r v
    r=$(ratio "$y_g" "$y_go")
    v="VERDICT yield gort:"
    if [ "$y_g" = FAIL ]; then v+=" FAIL (see the FAIL lines above)"
    elif [ "$r" = - ]; then v+=" n/a (no Go figure; ${y_g} ns per yield)"
    elif cmp "$r" "<=" "$SCHED_YIELD_TARGET"; then v+=" PASS (${r}x go-p1, need <= ${SCHED_YIELD_TARGET}x)"
    else v+=" MISS (${r}x go-p1, need <= ${SCHED_YIELD_TARGET}x)"; fi
    echo "$v"
    v="VERDICT sleepmem gort:"
    if [ "$s_g" = FAIL ]; then v+=" FAIL (see the FAIL lines above)"
    elif cmp "$s_g" "<=" "$SCHED_SLEEPMEM_TARGET"; then
        v+=" PASS (${s_g} bytes per goroutine, need <= ${SCHED_SLEEPMEM_TARGET}; go-p2 ${s_go})"
    else v+=" MISS (${s_g} bytes per goroutine, need <= ${SCHED_SLEEPMEM_TARGET}; go-p2 ${s_go})"; fi
    echo "$v"
    echo "INFO spawn1m: no target yet (gort ${sp_g} ns, go-p2 ${sp_go} ns per goroutine;" \
        "gort polls a counter, Go waits on a WaitGroup)"
    echo
}

# ---- selection and main ------------------------------------------------------

# ---- family: chan (bench/chan_bench.c against the Go peers) ---------------------------

# chan_row WORKLOAD GO_PEER GO_ARGS PROCS METRIC TARGET: gort's benchmark (ROW_CMD, by
# default chan_bench WORKLOAD) and the Go peer ($CHAN_TMP/GO_PEER), interleaved REPS
# times, at GOMAXPROCS=PROCS; prints one table row and a verdict (gort's time at most
# TARGET x Go's; for per_goroutine TARGET is bytes). Figures come from the last
# "RESULT WORKLOAD ..." line of each.
chan_row() {
    local wl=$1 peer=$2 gargs=$3 procs=$4 metric=$5 target=$6 rep v gv=() ov=()
    local exe="$BUILD_DIR/bench/chan_bench" gexe="$CHAN_TMP/$peer"
    local -a cmd=("$exe" "$wl")
    [ -n "${ROW_CMD:-}" ] && read -r -a cmd <<<"$ROW_CMD"
    for ((rep = 1; rep <= REPS; rep++)); do
        v=$(env GORT_GOMAXPROCS="$procs" timeout "$TIMEOUT" "${cmd[@]}" 2>"$LOGS/chan.$wl.p$procs.gort.$rep.err" |
            tee "$LOGS/chan.$wl.p$procs.gort.$rep.log" | grep "^RESULT $wl " | tail -n 1 |
            sed -n "s/.* $metric=\([0-9.]*\).*/\1/p")
        if [ -n "$v" ] && ! grep -q '^BAD' "$LOGS/chan.$wl.p$procs.gort.$rep.log"; then gv+=("$v"); else gv+=(FAIL); fi
        if [ -x "$gexe" ]; then
            # shellcheck disable=SC2086
            v=$(env GOMAXPROCS="$procs" timeout "$TIMEOUT" "$gexe" $gargs 2>/dev/null |
                grep "^RESULT $wl " | tail -n 1 | sed -n "s/.* $metric=\([0-9.]*\).*/\1/p")
            ov+=("${v:-FAIL}")
        fi
    done
    local g o
    if printf '%s\n' "${gv[@]}" | grep -q FAIL; then g=FAIL; FAILED=1; else g=$(printf '%s\n' "${gv[@]}" | median); fi
    if [ ${#ov[@]} -eq 0 ]; then o=SKIP
    elif printf '%s\n' "${ov[@]}" | grep -q FAIL; then o=FAIL
    else o=$(printf '%s\n' "${ov[@]}" | median); fi
    local r
    r=$(ratio "$g" "$o")
    printf '%-14s | p%-2s | %-9s | %12s | %12s | %6s' "$wl" "$procs" "$metric" "$g" "$o" "$r"
    if [ "$g" = FAIL ]; then echo "  FAIL"
    elif [ "$metric" = per_goroutine ]; then
        if cmp "$g" "<=" "$target"; then echo "  PASS (<= $target bytes)"; else echo "  MISS (need <= $target bytes)"; fi
    elif [ "$r" = - ]; then echo "  n/a (no Go figure)"
    elif cmp "$r" "<=" "$target"; then echo "  PASS (<= ${target}x)"
    else echo "  MISS (need <= ${target}x)"; fi
}

bench_chan() {
    echo "== chan: bench/chan_bench against Go 1.19 (peers in $PEERS_DIR), $REPS rep(s) each, interleaved"
    if [ ! -x "$BUILD_DIR/bench/chan_bench" ]; then
        echo "FAIL chan: $BUILD_DIR/bench/chan_bench not built"
        FAILED=1
        return
    fi
    CHAN_TMP=$(mktemp -d) || return
    local w
    if [ -x "$GO" ]; then
        for w in pingpong chanthru sieve skynet idlemem; do
            (export GO111MODULE=off GOCACHE="$CHAN_TMP/cache" GOPATH="$CHAN_TMP/gopath"
                "$GO" build -o "$CHAN_TMP/$w" "$PEERS_DIR/$w/main.go") >>"$LOGS/chan.build.log" 2>&1 ||
                echo "SKIP go peer $w: go build failed (log: $LOGS/chan.build.log)"
        done
    else
        echo "SKIP go peers: $GO not found (apt-get install golang-1.19-go, or set GO=)"
    fi
    printf '%-14s | %-3s | %-9s | %12s | %12s | %6s\n' workload gmp metric gort go gort/go
    chan_row pingpong pingpong "" 1 roundtrip 0.6
    chan_row pingpong pingpong "" 2 roundtrip 0.6
    chan_row chanthru-spsc chanthru "spsc" 2 msg 0.8
    chan_row chanthru-mpmc chanthru "mpmc" 2 msg 0.8
    chan_row sieve sieve "" 1 total 0.8
    chan_row sieve sieve "" 2 total 0.8
    chan_row skynet skynet "" 1 total 0.8
    chan_row skynet skynet "" 2 total 0.8
    chan_row idlemem idlemem "" 2 per_goroutine 4608
    rm -rf "$CHAN_TMP"
    echo
}

# ---- family: stw (bench/stw_bench.c: stop-the-world latency) ------------------------

bench_stw() {
    local exe="$BUILD_DIR/bench/stw_bench" log="$LOGS/stw.log" rep vals=()
    echo "== stw: $exe (2 goroutines spinning in C loops, GOMAXPROCS=3), $REPS rep(s)"
    for ((rep = 1; rep <= REPS; rep++)); do
        env GORT_GOMAXPROCS=3 timeout "$TIMEOUT" "$exe" >"$log.$rep" 2>&1
        grep '^INFO stw' "$log.$rep" | sed 's/^/  /'
        vals+=("$(sed -n 's/^RESULT stw gort median=\([0-9.]*\) us$/\1/p' "$log.$rep")")
    done
    local med
    med=$(printf '%s\n' "${vals[@]}" | grep . | median)
    if [ -z "$med" ]; then
        echo "FAIL stw (logs: $log.*)"
        FAILED=1
    elif cmp "$med" "<" 1000; then
        echo "VERDICT stw gort: PASS (median stop ${med} us, need well under 1000 us)"
    else
        echo "VERDICT stw gort: MISS (median stop ${med} us, need well under 1000 us)"
    fi
    echo
}

# ---- family: sync (bench/sync_bench.c against Go 1.19) --------------------------------

bench_sync() {
    echo "== sync: bench/sync_bench against Go 1.19, $REPS rep(s) each, interleaved"
    if [ ! -x "$BUILD_DIR/bench/sync_bench" ]; then
        echo "FAIL sync: $BUILD_DIR/bench/sync_bench not built"
        FAILED=1
        return
    fi
    CHAN_TMP=$(mktemp -d) || return
    if [ -x "$GO" ]; then
        (export GO111MODULE=off GOCACHE="$CHAN_TMP/cache" GOPATH="$CHAN_TMP/gopath"
            "$GO" build -o "$CHAN_TMP/spawn" "$PEERS_DIR/spawn/main.go" &&
                "$GO" build -o "$CHAN_TMP/mutex" "$PEERS_DIR/mutex/main.go") \
            >"$LOGS/sync.build.log" 2>&1 || echo "SKIP go peers: go build failed (log: $LOGS/sync.build.log)"
    else
        echo "SKIP go peers: $GO not found"
    fi
    printf '%-14s | %-3s | %-9s | %12s | %12s | %6s\n' workload gmp metric gort go gort/go
    ROW_CMD="$BUILD_DIR/bench/sync_bench 5 spawn" chan_row spawn spawn "" 2 goroutine 0.8
    ROW_CMD="$BUILD_DIR/bench/sync_bench 5 mutex" chan_row sync_mutex2 mutex "" 2 pair 0.8
    ROW_CMD="$BUILD_DIR/bench/sync_bench 5 mutex" chan_row sync_mutex8 mutex "" 2 pair 0.8
    rm -rf "$CHAN_TMP"
    echo
}

# ---- family: http (examples/http_hello.c against Go's net/http, the peer httphello) ----
#
# Both servers answer "Hello, World!\n" on 127.0.0.1, one goroutine per
# connection; each rep starts one, checks one HTTP/1.0 answer (the server must
# close after it), runs wrk -t2 -c100 --latency against it, and stops it by
# its pid; gort and Go alternate. wrk shares the cores with the server, as in
# the peer's drive.sh (bench/peers' httphello, workload 9).

HTTP_RPS_TARGET=1.20 # gort's requests/s at least this many times Go's, p99 no worse
HTTP_DURATION=${HTTP_DURATION:-10s}
HTTP_PROCS=${HTTP_PROCS:-2}

# http_figures LOG: "REQUESTS_PER_S P99_MS" from wrk --latency's output
http_figures() {
    awk '/^Requests\/sec:/ { r = $2 }
         $1 == "99%" { v = $2; u = v; sub(/^[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                       p = u == "us" ? v / 1000 : u == "s" ? v * 1000 : v }
         END { if (r != "" && p != "") printf "%s %.3f\n", r, p }' "$1"
}

# http_side NAME LOGTAG CMD...: one rep of one server; appends to NAME_rps and
# NAME_p99, or sets NAME_fail
http_side() {
    local name=$1 tag=$2
    shift 2
    local log="$LOGS/http-$tag.log" slog="$LOGS/http-$tag.server.log" addr="" ok=1 resp f i
    "$@" >"$slog" 2>&1 &
    local spid=$!
    for i in $(seq 1 100); do
        addr=$(sed -n 's/^LISTENING //p' "$slog" | head -n 1)
        [ -n "$addr" ] && break
        sleep 0.05
    done
    if [ -z "$addr" ]; then
        echo "BAD server did not start" >"$log"
        ok=0
    else
        resp=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}" &&
            printf "GET / HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&3 && cat <&3' _ "$addr" 2>/dev/null |
            tr -d '\r' | tail -n 1)
        if [ "$resp" != "Hello, World!" ]; then
            echo "BAD response to HTTP/1.0: '$resp'" >"$log"
            ok=0
        elif ! timeout "$TIMEOUT" wrk -t2 -c100 -d"$HTTP_DURATION" --latency "http://$addr/" >"$log" 2>&1; then
            ok=0
        fi
    fi
    kill "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    HTTP_LAST=""
    if [ "$ok" = 1 ] && f=$(http_figures "$log") && [ -n "$f" ]; then
        HTTP_LAST=${f% *}
        eval "${name}_rps+=\"\${f% *}\"\$'\\n'"
        eval "${name}_p99+=\"\${f#* }\"\$'\\n'"
    else
        eval "${name}_fail=1"
        echo "FAIL http $tag: $(head -n 1 "$log") (log: $log)"
    fi
}

bench_http() {
    local exe="$BUILD_DIR/examples/http_hello"
    echo "== http: $exe against Go 1.19 net/http (httphello), wrk -t2 -c100 -d$HTTP_DURATION" \
        "on loopback, GOMAXPROCS=$HTTP_PROCS, $REPS rep(s) each, interleaved; logs in $LOGS"
    if [ ! -x "$exe" ]; then
        echo "FAIL http: $exe not built"
        FAILED=1
        return
    fi
    if ! command -v wrk >/dev/null; then
        echo "SKIP http: wrk not installed (apt-get install wrk)"
        echo
        return
    fi
    local tmp peer="" why=""
    tmp=$(mktemp -d) || return
    if [ ! -x "$GO" ]; then
        why="$GO not found (apt-get install golang-1.19-go, or set GO=)"
    elif ! (export GO111MODULE=off GOCACHE="$tmp/cache" GOPATH="$tmp/gopath"
        "$GO" build -o "$tmp/httphello" "$PEERS_DIR/httphello/main.go") >"$LOGS/http.build.log" 2>&1; then
        why="go build failed (log: $LOGS/http.build.log)"
    else
        peer="$tmp/httphello"
    fi
    if [ -n "$why" ]; then echo "SKIP go peer: $why"; fi

    local g_rps="" g_p99="" g_fail="" o_rps="" o_p99="" o_fail="" pair="" rep gort_rps
    for ((rep = 1; rep <= REPS; rep++)); do
        http_side g "gort.$rep" env GORT_GOMAXPROCS="$HTTP_PROCS" "$exe" 127.0.0.1:0 600
        gort_rps=$HTTP_LAST
        [ -n "$peer" ] || continue
        http_side o "go.$rep" env GOMAXPROCS="$HTTP_PROCS" "$peer" 600
        # the ratio of this rep's pair, run back to back (the machine's load
        # changes less within a pair than across the whole run)
        pair+="$(ratio "$gort_rps" "$HTTP_LAST")"$'\n'
    done
    rm -rf "$tmp"

    local gr gp or op
    if [ -n "$g_fail" ]; then
        gr=FAIL gp=FAIL
        FAILED=1
    else
        gr=$(printf '%s' "$g_rps" | median %.0f) gp=$(printf '%s' "$g_p99" | median)
    fi
    if [ -z "$peer" ]; then
        or=SKIP op=SKIP
    elif [ -n "$o_fail" ]; then
        or=FAIL op=FAIL
        FAILED=1
    else
        or=$(printf '%s' "$o_rps" | median %.0f) op=$(printf '%s' "$o_p99" | median)
    fi
    local rr rp
    rr=$(ratio "$gr" "$or")
    rp=$(ratio "$gp" "$op")
    echo
    printf '%-10s | %-14s | %10s | %10s | %8s\n' workload metric gort go gort/go
    printf '%-10s | %-14s | %10s | %10s | %8s\n' httphello "requests/s" "$gr" "$or" "$rr"
    printf '%-10s | %-14s | %10s | %10s | %8s\n' httphello "p99 latency ms" "$gp" "$op" "$rp"
    echo "(median of the back-to-back pairs' requests/s ratios: $(grep -E '^[0-9.]+$' <<<"$pair" |
        median))"
    echo
    local v="VERDICT http gort:"
    if [ "$gr" = FAIL ]; then
        v+=" FAIL (see the FAIL lines above)"
    elif [ "$rr" = - ] || [ "$rp" = - ]; then
        v+=" n/a (no Go figure; gort $gr requests/s, p99 $gp ms)"
    elif cmp "$HTTP_RPS_TARGET" "<=" "$rr" && cmp "$gp" "<=" "$op"; then
        v+=" PASS (${rr}x Go's requests/s, need >= ${HTTP_RPS_TARGET}x; p99 ${gp} ms vs ${op} ms, need <=)"
    else
        v+=" MISS (${rr}x Go's requests/s, need >= ${HTTP_RPS_TARGET}x; p99 ${gp} ms vs ${op} ms, need <=)"
    fi
    echo "$v"
    echo
}

# ---- family: gc (bench/binarytrees_gort.c, gcpause_gort.c, allocfree_gort.c,
#      memlimit_gort.c against the Go and Boehm peers binarytrees/, gcpause/,
#      allocfree/, memlimit/) ----------
#
# Every side of a workload runs once per rep, the sides interleaved, each in
# its own process under gc_run (BENCH_TIMEOUT, and an RSS cap: a collector
# that stops collecting would otherwise take the machine down). Targets:
#   binarytrees 21: gort-seq-p2's wall <= 0.60x go-seq-p2's, its peak RSS <= go-seq-p2's,
#            its longest stop of the world (MemStats pause_ns, max over the reps) < 500 us;
#   gcpause: gort-p2's max stall <= 0.50x go-p2's, every stop-the-world pause
#            (MemStats.pause_ns of a cycle that ended in the loop, max over the
#            reps) < 500 us;
#   allocfree-16/64/256: gort (typed) <= 0.60x go, gort-noscan <= 0.60x go-noscan;
#   memlimit (GOGC off, a 400 MiB limit): gort-p2's peak RSS <= 420 MiB and its
#            wall <= go-p2's; memlimit-defaults (the same program, no limit):
#            gort-p2's peak RSS <= go-p2's.

GC_BT_WALL_TARGET=0.60  # binarytrees: gort's wall at most this many times go-seq-p2's
GC_BT_RSS_TARGET=1.00   # binarytrees: gort's peak RSS at most this many times go-seq-p2's
GC_STALL_TARGET=0.50    # gcpause: gort's max stall at most this many times go-p2's
GC_STW_TARGET_US=500    # gcpause and binarytrees: every STW pause under this many us
GC_ALLOC_TARGET=0.60    # allocfree: gort at most this many times go (and noscan go-noscan)
GC_ML_RSS_MIB=420       # memlimit: gort's peak RSS at most this many MiB (the limit is 400 MiB)
GC_ML_WALL_TARGET=1.00  # memlimit: gort's wall at most this many times go-p2's
GC_ML_DEF_RSS_TARGET=1.00 # memlimit-defaults: gort's peak RSS at most this many times go-p2's
GC_MAXRSS_KIB=${GC_MAXRSS_KIB:-6291456} # a run whose RSS passes this is killed (FAIL)
GC_SIZES=(16 64 256)

# gc_run LOG CMD...: runs CMD without LD_PRELOAD, stdout into LOG, stderr into
# LOG.err; kills it past BENCH_TIMEOUT or past GC_MAXRSS_KIB of RSS (polled
# every 0.2 s); appends "EXIT rc" and "WATCH hwm=KiB" (the last peak RSS
# seen) to LOG, and "KILLED why" when it killed it. Returns 0 if the run
# counts as good: exit 0, not killed, no BAD line.
gc_run() {
    local log=$1
    shift
    env -u LD_PRELOAD "$@" >"$log" 2>"$log.err" &
    local pid=$! start=$SECONDS why="" hwm=0 rss state k v rest rc tick
    # The watch waits with read -t on a pipe nobody writes, not with
    # sleep(1): a process forked and run five times a second took a CPU
    # from the program measured (binarytrees' stops of the world waited up
    # to a millisecond for a thread it had put off the CPU).
    exec {tick}<> <(:)
    while kill -0 "$pid" 2>/dev/null; do
        rss=0 state=""
        while read -r k v rest; do
            case $k in
            State:) state=$v ;;
            VmRSS:) rss=$v ;;
            VmHWM:) hwm=$v ;;
            esac
        done <"/proc/$pid/status" 2>/dev/null
        [ "$state" = Z ] && break
        if [ "$rss" -gt "$GC_MAXRSS_KIB" ]; then
            why="RSS $rss KiB over GC_MAXRSS_KIB=$GC_MAXRSS_KIB"
        elif [ $((SECONDS - start)) -ge "$TIMEOUT" ]; then
            why="timed out after ${TIMEOUT}s (BENCH_TIMEOUT)"
        fi
        if [ -n "$why" ]; then
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        read -r -t 0.2 -u "$tick" _ || true
    done
    exec {tick}<&-
    wait "$pid" 2>/dev/null
    rc=$?
    echo "EXIT $rc" >>"$log"
    echo "WATCH hwm=$hwm KiB" >>"$log"
    if [ -n "$why" ]; then
        echo "KILLED $why" >>"$log"
        return 1
    fi
    [ "$rc" -eq 0 ] || return 1
    grep -q '^BAD' "$log" && return 1
    return 0
}

# gc_why LOG: one line saying why the run logged in LOG failed
gc_why() {
    local why
    why=$(grep -m1 -E '^BAD|^KILLED' "$1") && { echo "$why"; return; }
    why=$(grep -m1 -E 'fatal error|panic|throw|Segmentation' "$1.err") && { echo "$why"; return; }
    grep -m1 '^EXIT' "$1"
}

# Raw figures: GC_VALS["workload|peer|metric"] newline-separated values;
# GC_FAIL["workload|peer"] set when a rep failed; GC_SIDES[workload] the peers in order.
declare -A GC_VALS=() GC_FAIL=() GC_SIDES=()

# gc_side WL PEER TAG EXPECT CMD...: one rep of one side. Runs CMD, checks it
# (and, with EXPECT a file, that its stdout less RESULT/INFO lines is EXPECT
# byte for byte), and records every figure of its "RESULT WL PEER m=v ..."
# lines (every m=v on the line; GC_RESULT_WL, if set, is the WL those lines
# name: the memlimit programs print "memlimit" for memlimit-defaults too),
# its INFO p99.9/p99.99/over1ms/numgc figures, the longest single pause of
# its gctrace lines (stw_trace, us: Go's and gort's both print them), and
# the watcher's peak RSS (hwm, KiB).
gc_side() {
    local wl=$1 peer=$2 tag=$3 expect=$4 log
    shift 4
    [[ " ${GC_SIDES[$wl]:-} " == *" $peer "* ]] || GC_SIDES[$wl]+=" $peer"
    log="$LOGS/gc-$tag.log"
    if ! gc_run "$log" "$@"; then
        GC_FAIL["$wl|$peer"]=1
        FAILED=1
        echo "FAIL $wl $peer ($tag): $(gc_why "$log") (log: $log)"
        return
    fi
    if [ -n "$expect" ] && ! diff -q <(grep -v -E '^(RESULT|INFO|EXIT|WATCH)' "$log") "$expect" >/dev/null; then
        GC_FAIL["$wl|$peer"]=1
        FAILED=1
        echo "FAIL $wl $peer ($tag): output differs from $expect (log: $log)"
        return
    fi
    local figs rwl=${GC_RESULT_WL:-$wl}
    figs=$(awk -v w="$rwl" -v p="$peer" '$1 == "RESULT" && $2 == w && $3 == p {
            for (i = 4; i <= NF; i++) if ($i ~ /^[a-z0-9_.]+=[0-9.]+$/) { split($i, kv, "="); print kv[1], kv[2] } }' "$log")
    if [ -z "$figs" ]; then
        GC_FAIL["$wl|$peer"]=1
        FAILED=1
        echo "FAIL $wl $peer ($tag): no RESULT $rwl $peer line (log: $log)"
        return
    fi
    figs+=$'\n'$(grep '^INFO' "$log" | tr ' ' '\n' |
        sed -n 's/^\(p99\.9\|p99\.99\|over1ms\|numgc\)=\([0-9.]*\)$/\1 \2/p')
    figs+=$'\n'$(awk '/^gc [0-9]+ @/ { for (i = 1; i < NF; i++) if ($(i + 1) == "ms" && $(i + 2) == "clock,") {
                n = split($i, p, "+"); if (p[1] + 0 > m) m = p[1] + 0; if (p[n] + 0 > m) m = p[n] + 0 } }
            END { if (m != "") printf "stw_trace %.1f\n", m * 1000 }' "$log.err")
    figs+=$'\n'"hwm $(sed -n 's/^WATCH hwm=\([0-9]*\) KiB$/\1/p' "$log")"
    local m v
    while read -r m v; do
        [ -n "$m" ] && [ -n "$v" ] && GC_VALS["$wl|$peer|$m"]+="$v"$'\n'
    done <<<"$figs"
}

# gc_med WL PEER METRIC [FORMAT]: the median, FAIL if a rep failed, "-" if none
gc_med() {
    if [ -n "${GC_FAIL["$1|$2"]:-}" ]; then echo FAIL; return; fi
    local v
    v=$(printf '%s' "${GC_VALS["$1|$2|$3"]:-}" | median "${4:-%.2f}")
    echo "${v:--}"
}

# gc_max WL PEER METRIC: the largest value over the reps ("-" if none)
gc_max() {
    local v
    v=$(printf '%s' "${GC_VALS["$1|$2|$3"]:-}" | sort -g | tail -n 1)
    echo "${v:--}"
}

# gc_verdict LABEL VALUE TARGET UNIT-TEXT: "PASS (...)" or "MISS (...)" or n/a
gc_verdict() {
    local what=$1 r=$2 target=$3 text=$4
    if [ "$r" = FAIL ]; then echo "$what FAIL (see the FAIL lines above)"
    elif [ "$r" = - ]; then echo "$what n/a ($text)"
    elif cmp "$r" "<=" "$target"; then echo "$what PASS ($text)"
    else echo "$what MISS ($text)"; fi
}

# gc_stw_verdict WL PEER: PEER's longest stop of the world (max_stw, the
# largest over the reps) against GC_STW_TARGET_US
gc_stw_verdict() {
    local stw
    stw=$(gc_max "$1" "$2" max_stw)
    if [ -n "${GC_FAIL["$1|$2"]:-}" ]; then echo "stw FAIL (see the FAIL lines above)"
    elif [ "$stw" = - ]; then echo "stw n/a (no max_stw figure)"
    elif [ "$(gc_max "$1" "$2" gcs)" = 0 ]; then echo "stw n/a (no cycle ended in the loop)"
    elif cmp "$stw" "<" "$GC_STW_TARGET_US"; then
        echo "stw PASS (longest ${stw} us over the reps, need < ${GC_STW_TARGET_US} us)"
    else echo "stw MISS (longest ${stw} us over the reps, need < ${GC_STW_TARGET_US} us)"; fi
}

bench_gc() {
    local wls=("$@")
    local bt="$BUILD_DIR/bench/binarytrees_gort" gp="$BUILD_DIR/bench/gcpause_gort"
    local af="$BUILD_DIR/bench/allocfree_gort" ml="$BUILD_DIR/bench/memlimit_gort" exe
    echo "== gc: ${wls[*]} against Go 1.19 and Boehm (peers in $PEERS_DIR), $REPS rep(s)" \
        "per side, interleaved; RSS cap ${GC_MAXRSS_KIB} KiB; logs in $LOGS"
    for exe in "$bt" "$gp" "$af" "$ml"; do
        if [ ! -x "$exe" ]; then
            echo "FAIL gc: $exe not built"
            FAILED=1
            return
        fi
    done

    # the peers, built afresh: Go (GOPATH mode, a private cache) and Boehm (gcc -O2 -lgc)
    local tmp w
    tmp=$(mktemp -d) || {
        echo "FAIL gc: mktemp -d failed"
        FAILED=1
        return
    }
    local go_ok="" boehm_ok=""
    if [ ! -x "$GO" ]; then
        echo "SKIP go peers: $GO not found (apt-get install golang-1.19-go, or set GO=)"
    elif (export GO111MODULE=off GOCACHE="$tmp/cache" GOPATH="$tmp/gopath"
        for w in binarytrees gcpause allocfree memlimit; do
            "$GO" build -o "$tmp/$w-go" "$PEERS_DIR/$w/main.go" || exit 1
        done) >"$LOGS/gc.build.log" 2>&1; then
        go_ok=1
    else
        echo "SKIP go peers: go build failed (log: $LOGS/gc.build.log)"
    fi
    if [ ! -f /usr/include/gc.h ]; then
        echo "SKIP boehm peers: Boehm GC not installed (apt-get install libgc-dev)"
    elif (cd "$PEERS_DIR" &&
        gcc -O2 -DUSE_BOEHM -o "$tmp/binarytrees-boehm" binarytrees/binarytrees.c -lgc &&
        gcc -O2 -o "$tmp/gcpause-boehm" gcpause/gcpause_boehm.c -lgc &&
        gcc -O2 -DUSE_BOEHM -o "$tmp/allocfree-boehm" allocfree/allocfree.c -lgc) \
        >>"$LOGS/gc.build.log" 2>&1; then
        boehm_ok=1
    else
        echo "SKIP boehm peers: build failed (log: $LOGS/gc.build.log)"
    fi

    # BENCH_GC_QUICK=1: a smoke run of the script (depth 16, 2 s, 5,000,000
    # iterations): not the workloads, so the figures mean nothing
    local expect="$PEERS_DIR/binarytrees/expected-21.txt" depth=21 secs=10 af_n=() rep s
    local ml_args=(256 4096) ml_limit=400MiB
    if [ -n "${BENCH_GC_QUICK:-}" ]; then
        expect="" depth=16 secs=2 af_n=(5000000) ml_args=(64 512) ml_limit=100MiB
        echo "INFO BENCH_GC_QUICK: depth $depth, $secs s, ${af_n[0]} iterations," \
            "memlimit ${ml_args[*]} MiB under $ml_limit (smoke run only)"
    fi
    for ((rep = 1; rep <= REPS; rep++)); do
        for w in "${wls[@]}"; do
            case $w in
            binarytrees)
                gc_side binarytrees gort-seq-p2 "binarytrees.gort-seq-p2.$rep" "$expect" \
                    GORT_GOMAXPROCS=2 "$bt" "$depth" main
                gc_side binarytrees gort-plain "binarytrees.gort-plain.$rep" "$expect" "$bt" "$depth" plain
                if [ -n "$go_ok" ]; then
                    gc_side binarytrees go-seq-p2 "binarytrees.go-seq-p2.$rep" "$expect" \
                        GOMAXPROCS=2 "$tmp/binarytrees-go" "$depth" seq
                    gc_side binarytrees go-par-p2 "binarytrees.go-par-p2.$rep" "$expect" \
                        GOMAXPROCS=2 "$tmp/binarytrees-go" "$depth" par
                fi
                [ -n "$boehm_ok" ] && gc_side binarytrees c-boehm "binarytrees.c-boehm.$rep" \
                    "$expect" "$tmp/binarytrees-boehm" "$depth"
                ;;
            gcpause)
                gc_side gcpause gort-p2 "gcpause.gort-p2.$rep" "" \
                    GORT_GOMAXPROCS=2 GORT_GODEBUG=gctrace=1 "$gp" "$secs" 256
                [ -n "$go_ok" ] && gc_side gcpause go-p2 "gcpause.go-p2.$rep" "" \
                    GOMAXPROCS=2 GODEBUG=gctrace=1 "$tmp/gcpause-go" "$secs" 256
                if [ -n "$boehm_ok" ]; then
                    gc_side gcpause c-boehm "gcpause.c-boehm.$rep" "" "$tmp/gcpause-boehm" "$secs" 256 0
                    gc_side gcpause c-boehm-incr "gcpause.c-boehm-incr.$rep" "" \
                        "$tmp/gcpause-boehm" "$secs" 256 1
                    gc_side gcpause c-boehm-par "gcpause.c-boehm-par.$rep" "" \
                        "$tmp/gcpause-boehm" "$secs" 256 2
                fi
                ;;
            allocfree)
                for s in "${GC_SIZES[@]}"; do
                    gc_side "allocfree-$s" gort "allocfree-$s.gort.$rep" "" \
                        GORT_GOMAXPROCS=2 "$af" "$s" scan "${af_n[@]}"
                    gc_side "allocfree-$s" gort-noscan "allocfree-$s.gort-noscan.$rep" "" \
                        GORT_GOMAXPROCS=2 "$af" "$s" noscan "${af_n[@]}"
                    if [ -n "$go_ok" ]; then
                        gc_side "allocfree-$s" go "allocfree-$s.go.$rep" "" \
                            GOMAXPROCS=2 "$tmp/allocfree-go" "$s" scan "${af_n[@]}"
                        gc_side "allocfree-$s" go-noscan "allocfree-$s.go-noscan.$rep" "" \
                            GOMAXPROCS=2 "$tmp/allocfree-go" "$s" noscan "${af_n[@]}"
                    fi
                    [ -n "$boehm_ok" ] && gc_side "allocfree-$s" c-boehm \
                        "allocfree-$s.c-boehm.$rep" "" "$tmp/allocfree-boehm" "$s" scan "${af_n[@]}"
                done
                ;;
            memlimit)
                gc_side memlimit gort-p2 "memlimit.gort-p2.$rep" "" GORT_GOMAXPROCS=2 \
                    GORT_GOGC=off GORT_GOMEMLIMIT=$ml_limit "$ml" "${ml_args[@]}"
                [ -n "$go_ok" ] && gc_side memlimit go-p2 "memlimit.go-p2.$rep" "" GOMAXPROCS=2 \
                    GOGC=off GOMEMLIMIT=$ml_limit "$tmp/memlimit-go" "${ml_args[@]}"
                GC_RESULT_WL=memlimit gc_side memlimit-defaults gort-p2 \
                    "memlimit-defaults.gort-p2.$rep" "" GORT_GOMAXPROCS=2 "$ml" "${ml_args[@]}"
                [ -n "$go_ok" ] && GC_RESULT_WL=memlimit gc_side memlimit-defaults go-p2 \
                    "memlimit-defaults.go-p2.$rep" "" GOMAXPROCS=2 "$tmp/memlimit-go" "${ml_args[@]}"
                ;;
            esac
        done
    done
    rm -rf "$tmp"

    local p verdicts=() r r2 g o
    for w in "${wls[@]}"; do
        echo
        case $w in
        binarytrees)
            printf '%-16s | %10s | %17s | %12s | %12s | %12s\n' "binarytrees $depth" "wall ms" \
                "peak RSS KiB" "wall/go-seq" "rss/go-seq" "max STW us"
            local go_w go_r
            go_w=$(gc_med binarytrees go-seq-p2 wall %.0f) go_r=$(gc_med binarytrees go-seq-p2 peak_rss %.0f)
            for p in ${GC_SIDES[binarytrees]}; do
                g=$(gc_med binarytrees "$p" wall %.0f) o=$(gc_med binarytrees "$p" peak_rss %.0f)
                printf '%-16s | %10s | %17s | %12s | %12s | %12s\n' "$p" "$g" "$o" \
                    "$(ratio "$g" "$go_w")" "$(ratio "$o" "$go_r")" "$(gc_max binarytrees "$p" max_stw)"
            done
            g=$(gc_med binarytrees gort-seq-p2 wall %.0f) o=$(gc_med binarytrees gort-seq-p2 peak_rss %.0f)
            r=$(ratio "$g" "$go_w") r2=$(ratio "$o" "$go_r")
            [ "$g" = FAIL ] && r=FAIL r2=FAIL
            verdicts+=("VERDICT binarytrees gort-seq-p2: $(gc_verdict wall "$r" "$GC_BT_WALL_TARGET" \
                "${r}x go-seq-p2, need <= ${GC_BT_WALL_TARGET}x") $(gc_verdict rss "$r2" \
                "$GC_BT_RSS_TARGET" "${r2}x go-seq-p2, need <= ${GC_BT_RSS_TARGET}x")\
 $(gc_stw_verdict binarytrees gort-seq-p2)")
            ;;
        gcpause)
            printf '%-13s | %10s | %8s | %8s | %9s | %8s | %4s | %12s | %14s\n' gcpause \
                "max stall" "p99" "p99.9" "p99.99" "over1ms" gcs "max STW/cyc" "max STW trace"
            printf '%-13s | %10s | %8s | %8s | %9s | %8s | %4s | %12s | %14s\n' "" us us us us \
                count "" "us (max)" "us (max)"
            for p in ${GC_SIDES[gcpause]}; do
                printf '%-13s | %10s | %8s | %8s | %9s | %8s | %4s | %12s | %14s\n' "$p" \
                    "$(gc_med gcpause "$p" max_stall %.0f)" "$(gc_med gcpause "$p" p99_stall %.3f)" \
                    "$(gc_med gcpause "$p" p99.9 %.1f)" "$(gc_med gcpause "$p" p99.99 %.1f)" \
                    "$(gc_med gcpause "$p" over1ms %.0f)" "$(gc_med gcpause "$p" gcs %.0f)" \
                    "$(gc_max gcpause "$p" max_stw)" "$(gc_max gcpause "$p" stw_trace)"
            done
            g=$(gc_med gcpause gort-p2 max_stall %.0f)
            r=$(ratio "$g" "$(gc_med gcpause go-p2 max_stall %.0f)")
            [ "$g" = FAIL ] && r=FAIL
            verdicts+=("VERDICT gcpause gort-p2: $(gc_verdict stall "$r" "$GC_STALL_TARGET" \
                "${r}x go-p2's max stall, need <= ${GC_STALL_TARGET}x") $(gc_stw_verdict gcpause gort-p2)")
            ;;
        allocfree)
            printf '%-13s | %8s | %11s | %8s | %11s | %8s | %8s | %14s | %17s\n' allocfree \
                "gort ns" "gort-noscan" "go ns" "go-noscan" "c-boehm" "gort/go" \
                "noscan/go-nosc" "hwm KiB gort/nosc"
            for s in "${GC_SIZES[@]}"; do
                local wl="allocfree-$s" gt gn ot on
                gt=$(gc_med "$wl" gort alloc) gn=$(gc_med "$wl" gort-noscan alloc)
                ot=$(gc_med "$wl" go alloc) on=$(gc_med "$wl" go-noscan alloc)
                r=$(ratio "$gt" "$ot") r2=$(ratio "$gn" "$on")
                printf '%-13s | %8s | %11s | %8s | %11s | %8s | %8s | %14s | %17s\n' "$wl" \
                    "$gt" "$gn" "$ot" "$on" "$(gc_med "$wl" c-boehm alloc)" "$r" "$r2" \
                    "$(gc_max "$wl" gort hwm)/$(gc_max "$wl" gort-noscan hwm)"
                [ "$gt" = FAIL ] && r=FAIL
                [ "$gn" = FAIL ] && r2=FAIL
                verdicts+=("VERDICT $wl gort: $(gc_verdict typed "$r" "$GC_ALLOC_TARGET" \
                    "${r}x go, need <= ${GC_ALLOC_TARGET}x") $(gc_verdict noscan "$r2" \
                    "$GC_ALLOC_TARGET" "${r2}x go-noscan, need <= ${GC_ALLOC_TARGET}x")")
            done
            ;;
        memlimit)
            printf '%-18s | %-7s | %9s | %13s | %6s | %8s | %8s\n' memlimit side "wall ms" \
                "peak RSS MiB" num_gc "wall/go" "rss/go"
            local mw go_w go_r g o n
            for mw in memlimit memlimit-defaults; do
                go_w=$(gc_med "$mw" go-p2 wall %.0f) go_r=$(gc_med "$mw" go-p2 peak_rss %.0f)
                for p in ${GC_SIDES[$mw]:-}; do
                    g=$(gc_med "$mw" "$p" wall %.0f) o=$(gc_med "$mw" "$p" peak_rss %.0f)
                    n=$(gc_med "$mw" "$p" num_gc %.0f)
                    printf '%-18s | %-7s | %9s | %13s | %6s | %8s | %8s\n' "$mw" "$p" "$g" "$o" \
                        "$n" "$(ratio "$g" "$go_w")" "$(ratio "$o" "$go_r")"
                done
            done
            g=$(gc_med memlimit gort-p2 wall %.0f) o=$(gc_med memlimit gort-p2 peak_rss %.0f)
            r=$(ratio "$g" "$(gc_med memlimit go-p2 wall %.0f)")
            [ "$g" = FAIL ] && r=FAIL
            verdicts+=("VERDICT memlimit gort-p2: $(gc_verdict rss "$o" "$GC_ML_RSS_MIB" \
                "peak RSS ${o} MiB, need <= ${GC_ML_RSS_MIB} MiB under the 400 MiB limit") $(gc_verdict \
                wall "$r" "$GC_ML_WALL_TARGET" "${r}x go-p2, need <= ${GC_ML_WALL_TARGET}x")")
            o=$(gc_med memlimit-defaults gort-p2 peak_rss %.0f)
            r2=$(ratio "$o" "$(gc_med memlimit-defaults go-p2 peak_rss %.0f)")
            [ "$o" = FAIL ] && r2=FAIL
            verdicts+=("VERDICT memlimit-defaults gort-p2: $(gc_verdict rss "$r2" \
                "$GC_ML_DEF_RSS_TARGET" "${r2}x go-p2's peak RSS, need <= ${GC_ML_DEF_RSS_TARGET}x")")
            ;;
        esac
    done
    # what the good reps of a failed side measured (the table says FAIL)
    local key n
    echo
    for key in "${!GC_FAIL[@]}"; do
        w=${key%%|*} p=${key#*|}
        for m in wall peak_rss max_stall alloc; do
            n=$(printf '%s' "${GC_VALS["$w|$p|$m"]:-}" | grep -c .)
            [ "$n" -gt 0 ] || continue
            echo "INFO $w $p failed some reps; its $n good rep(s): $m median" \
                "$(printf '%s' "${GC_VALS["$w|$p|$m"]}" | median)"
        done
    done | sort
    printf '%s\n' "${verdicts[@]}"
    echo
}

# ---- family: starve (bench/starve_bench.c against the Go peers starve/ and
#      starvelat/: fairness and scheduling latency under handoffs) ----

# starve_figure LOG WORKLOAD PEER KEY: KEY's figure of the last RESULT line of PEER
starve_figure() {
    grep "^RESULT $2 $3 " "$1" | tail -n 1 | sed -n "s/.* $4=\([0-9.]*\).*/\1/p"
}

bench_starve() {
    local exe="$BUILD_DIR/bench/starve_bench"
    echo "== starve: 4 yielding workers and 3 ping-pong pairs on GOMAXPROCS=2 (peers README" \
        "section 15), gort against Go 1.19, $REPS rep(s) each, interleaved; logs in $LOGS"
    if [ ! -x "$exe" ]; then
        echo "FAIL starve: $exe not built"
        FAILED=1
        return
    fi
    local tmp gs="" gl="" why=""
    tmp=$(mktemp -d) || {
        echo "FAIL starve: mktemp -d failed"
        FAILED=1
        return
    }
    if [ ! -x "$GO" ]; then
        why="$GO not found (apt-get install golang-1.19-go, or set GO=)"
    elif ! (export GO111MODULE=off GOCACHE="$tmp/cache" GOPATH="$tmp/gopath"
        "$GO" build -o "$tmp/starve" "$PEERS_DIR/starve/main.go" &&
            "$GO" build -o "$tmp/starvelat" "$PEERS_DIR/starvelat/main.go") \
        >"$LOGS/starve.build.log" 2>&1; then
        why="go build failed (log: $LOGS/starve.build.log)"
    else
        gs="$tmp/starve" gl="$tmp/starvelat"
    fi
    if [ -n "$why" ]; then echo "SKIP go peers: $why"; fi

    # raw figures, per (side, key); a side whose run fails is FAIL
    declare -A vals=() failed=()
    local rep log side key v
    starve_run() { # SIDE WORKLOAD LABEL KEYS... -- CMD...
        local side=$1 wl=$2 label=$3 keys=() k
        shift 3
        while [ "$1" != -- ]; do keys+=("$1"); shift; done
        shift
        log="$LOGS/starve.$side.$rep.log"
        if ! run_logged "$log" "" "$@"; then
            failed[$side]=1
            echo "FAIL starve $side rep $rep: $(fail_reason "$log") (log: $log)"
            return
        fi
        for k in "${keys[@]}"; do
            v=$(starve_figure "$log" "$wl" "$label" "$k")
            if [ -z "$v" ]; then
                failed[$side]=1
                echo "FAIL starve $side rep $rep: no $k figure (log: $log)"
                return
            fi
            vals["$side $k"]+="$v"$'\n'
        done
    }
    for ((rep = 1; rep <= REPS; rep++)); do
        starve_run gort starve gort-p2 workers least -- env GORT_GOMAXPROCS=2 "$exe"
        [ -n "$gs" ] && starve_run go starve go-p2 workers least -- env GOMAXPROCS=2 "$gs"
        starve_run gortlat starve-latency gort-p2 p50 p99 p999 max -- \
            env GORT_GOMAXPROCS=2 "$exe" latency
        [ -n "$gl" ] && starve_run golat starve-latency go-p2 p50 p99 p999 max -- \
            env GOMAXPROCS=2 "$gl"
    done
    rm -rf "$tmp"

    # medians; FAIL if any rep failed, SKIP without a peer
    starve_med() { # SIDE KEY HAVE [FORMAT]
        if [ -z "$3" ]; then echo SKIP
        elif [ -n "${failed[$1]:-}" ]; then echo FAIL
        else printf '%s' "${vals["$1 $2"]:-}" | median "${4:-%.1f}"; fi
    }
    local w_g w_go l_g l_go gleast_min
    w_g=$(starve_med gort workers 1 %.0f) w_go=$(starve_med go workers "$gs" %.0f)
    l_g=$(starve_med gort least 1 %.0f) l_go=$(starve_med go least "$gs" %.0f)
    gleast_min=$(printf '%s' "${vals["gort least"]:-}" | sort -g | head -n 1)
    [ "$w_g" = FAIL ] && FAILED=1

    echo
    printf '%-15s | %-28s | %14s | %14s | %9s\n' workload metric gort go gort/go
    printf '%-15s | %-28s | %14s | %14s | %9s\n' starve "workers' iterations (4 s)" "$w_g" "$w_go" "$(ratio "$w_g" "$w_go")"
    printf '%-15s | %-28s | %14s | %14s | %9s\n' starve "least-served worker" "$l_g" "$l_go" "$(ratio "$l_g" "$l_go")"
    for key in p50 p99 p999 max; do
        local a b
        a=$(starve_med gortlat "$key" 1) b=$(starve_med golat "$key" "$gl")
        [ "$a" = FAIL ] && FAILED=1
        printf '%-15s | %-28s | %14s | %14s | %9s\n' starve-latency "gap between turns, $key (us)" "$a" "$b" "$(ratio "$a" "$b")"
    done
    echo
    v="VERDICT starve gort:"
    if [ "$w_g" = FAIL ]; then v+=" FAIL (see the FAIL lines above)"
    elif ! cmp 0 "<" "${gleast_min:-0}"; then v+=" MISS (a worker made no progress in some rep)"
    elif [ "$w_go" = SKIP ]; then v+=" n/a (no Go figure; every worker progressed, ${w_g} iterations)"
    elif cmp "$w_go" "<=" "$w_g"; then
        v+=" PASS (every worker progressed in every rep; workers ${w_g} against Go's ${w_go}, need >= Go's)"
    else v+=" MISS (workers ${w_g} against Go's ${w_go}, need >= Go's)"; fi
    echo "$v"
    echo
}

# ---- family: prof (bench/profbench.c: the profiler's overheads) ---------------

# Each workload with the profiler off and on, alternating inside one process
# (profbench.c says how); the verdict is the median of the pair ratios
# against issue 12's bounds: heap profiling at the default rate and the CPU
# profile at 100 Hz under 2% on binarytrees, the execution trace under 15%
# on the channel workloads.
bench_prof() {
    local exe="$BUILD_DIR/bench/profbench" log="$LOGS/prof.log" reps=${PROF_REPS:-9}
    echo "== prof: $exe, $reps off/on pair(s) per workload, one process; log in $log"
    if [ ! -x "$exe" ]; then
        echo "FAIL prof: $exe not built"
        FAILED=1
        return
    fi
    if ! run_logged "$log" "" "$exe" "$reps" ${PROF_ONLY:+"$PROF_ONLY"} ||
        ! grep -q '^RESULT prof' "$log"; then
        echo "FAIL prof: $(fail_reason "$log") (log: $log)"
        FAILED=1
        return
    fi
    printf '%-7s | %-15s | %12s | %12s | %8s | %7s\n' profile workload "off (ms)" "on (ms)" on/off bound
    local fam wl off on r bound pct worst="" line
    while read -r line; do
        set -- $line
        fam=$3 wl=$4 off=${6#off=} on=${8#on=} r=${10#ratio=}
        case "$fam" in trace) bound=1.15 ;; *) bound=1.02 ;; esac
        printf '%-7s | %-15s | %12s | %12s | %8s | %7s\n' "$fam" "$wl" "$off" "$on" "$r" "$bound"
        if ! cmp "$r" "<" "$bound"; then
            pct=$(awk -v r="$r" 'BEGIN { printf "%+.1f%%", (r - 1) * 100 }')
            worst+=" $fam/$wl $pct;"
        fi
    done < <(grep '^RESULT prof' "$log")
    if [ -z "$worst" ]; then
        echo "VERDICT prof gort: PASS (every overhead within its bound)"
    else
        echo "VERDICT prof gort: MISS (over the bound:$worst)"
    fi
    echo
}

FAMILIES=(malloc pagealloc ctxswitch sched chan stw sync http gc starve prof)

declare -A WANT=()   # family -> 1
SEL_MALLOC=()        # malloc patterns, in the order given
SEL_GC=()            # gc workloads (binarytrees, gcpause, allocfree, memlimit), in the order given

select_names() {
    local n p
    if [ $# -eq 0 ]; then
        for n in "${FAMILIES[@]}"; do WANT[$n]=1; done
        SEL_MALLOC=("${MALLOC_PATTERNS[@]}")
        SEL_GC=(binarytrees gcpause allocfree memlimit)
        return
    fi
    for n in "$@"; do
        case "$n" in
        malloc)
            WANT[malloc]=1
            SEL_MALLOC+=("${MALLOC_PATTERNS[@]}")
            ;;
        pagealloc) WANT[pagealloc]=1 ;;
        ctxswitch) WANT[ctxswitch]=1 ;;
        sched) WANT[sched]=1 ;;
        chan) WANT[chan]=1 ;;
        stw) WANT[stw]=1 ;;
        sync) WANT[sync]=1 ;;
        http) WANT[http]=1 ;;
        starve) WANT[starve]=1 ;;
        prof) WANT[prof]=1 ;;
        gc)
            WANT[gc]=1
            SEL_GC+=(binarytrees gcpause allocfree memlimit)
            ;;
        binarytrees | gcpause | allocfree | memlimit)
            WANT[gc]=1
            SEL_GC+=("$n")
            ;;
        *)
            local found=0
            for p in "${MALLOC_PATTERNS[@]}"; do
                if [ "$n" = "$p" ] || [ "$n" = "malloc-$p" ]; then
                    WANT[malloc]=1
                    SEL_MALLOC+=("$p")
                    found=1
                fi
            done
            if [ "$found" = 0 ]; then
                echo "run.sh: unknown benchmark '$n' (families: ${FAMILIES[*]};" \
                    "malloc patterns: ${MALLOC_PATTERNS[*]}; gc workloads: binarytrees gcpause allocfree memlimit)" >&2
                exit 2
            fi
            ;;
        esac
    done
}

select_names "$@"

echo "gort benchmarks: build $BUILD_DIR, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
[ -n "${WANT[malloc]:-}" ] && bench_malloc "${SEL_MALLOC[@]}"
[ -n "${WANT[pagealloc]:-}" ] && bench_pagealloc
[ -n "${WANT[ctxswitch]:-}" ] && bench_ctxswitch
[ -n "${WANT[sched]:-}" ] && bench_sched
[ -n "${WANT[chan]:-}" ] && bench_chan
[ -n "${WANT[stw]:-}" ] && bench_stw
[ -n "${WANT[sync]:-}" ] && bench_sync
[ -n "${WANT[http]:-}" ] && bench_http
[ -n "${WANT[gc]:-}" ] && bench_gc "${SEL_GC[@]}"
[ -n "${WANT[starve]:-}" ] && bench_starve
[ -n "${WANT[prof]:-}" ] && bench_prof

if [ "$FAILED" -ne 0 ]; then
    echo "some runs FAILED (logs in $LOGS)"
    exit 1
fi
exit 0
