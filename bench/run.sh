#!/usr/bin/env bash
# Runs gort's benchmarks against their peers and prints ratios.
#
# Usage: bench/run.sh BUILD_DIR [NAME...]
#
# BUILD_DIR is an already built tree (this script builds nothing): it runs
# BUILD_DIR/bench/<program> and preloads BUILD_DIR/libgort-malloc.so.
# NAME selects what to run: a family (malloc, pagealloc, ctxswitch, sched, chan, stw, sync,
# starve) or a single malloc
# pattern (hot-16, hot-64, hot-256, hot-4096, hot-65536, fifo, random,
# xthread). No NAME: everything.
#
# Environment:
#   BENCH_REPS     processes per (pattern, allocator); medians are reported (3)
#   BENCH_LOGS     where each run's output goes (/tmp/gort-bench-logs)
#   BENCH_TIMEOUT  seconds before one run is killed and reported FAIL (300)
#   MALLOCBENCH    the mallocbench binary (BUILD_DIR/bench/mallocbench)
#   MALLOC_ITERS   iteration count passed to every malloc pattern (default:
#                  the program's own per-pattern default)
#   MIMALLOC_SO, JEMALLOC_SO   the peer libraries (Debian paths by default)
#   GO            the Go toolchain for the sched family's peers (/usr/lib/go-1.19/bin/go)
#   PEERS_DIR     the Go peers' sources (../shared/bench/peers beside the repository)
#   FCONTEXT_SRC  the ctxswitch peer's source, built with g++ -O2 -lboost_context
#                 when Boost.Context is installed (default:
#                 ../shared/bench/peers/ctxswitch/boost_fcontext.cpp beside the repository)
#
# A run that exits non-zero, prints a line starting with BAD, prints no
# RESULT line, or whose LD_PRELOAD library the loader refused, is FAIL. Exit
# status: 0 if nothing FAILed (missed performance targets do not count), 1 if
# something did, 2 on bad usage.
#
# Sections: one function per benchmark family (bench_malloc, bench_pagealloc,
# bench_ctxswitch, bench_sched, bench_chan, bench_stw, bench_sync, bench_starve);
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

MALLOC_PATTERNS=(hot-16 hot-64 hot-256 hot-4096 hot-65536 fifo random xthread)
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

        # verdict against the target: time <= 1.2x best(mi,je) and < glibc;
        # peak RSS <= 1.2x best(mi,je)
        local v="VERDICT malloc-$p gort:"
        case "$g" in
        SKIP) v+=" SKIP (${ALLOC_SO[gort]} not built)" ;;
        FAIL) v+=" FAIL (see the FAIL lines above)" ;;
        *)
            local t_ok=PASS r_ok=PASS
            if [ "$r_best" = - ]; then
                t_ok="n/a"
            elif ! cmp "$r_best" "<=" 1.2; then
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
            v+=" time $t_ok (${r_best}x best(mi,je), need <= 1.20x; ${r_glibc}x glibc, need < 1.00x)"
            v+=" rss $r_ok (${r_rss}x best(mi,je), need <= 1.20x)"
            ;;
        esac
        verdicts+=("$v")
    done
    echo
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
REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)

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
    local src=${FCONTEXT_SRC:-$REPO_DIR/../shared/bench/peers/ctxswitch/boost_fcontext.cpp}
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
GO=${GO:-/usr/lib/go-1.19/bin/go}
PEERS_DIR=${PEERS_DIR:-$REPO_DIR/../shared/bench/peers}

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
                "$GO" build -o "$CHAN_TMP/mutex" "$REPO_DIR/bench/peers_extra/mutex/main.go") \
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

# ---- family: starve (bench/starve_bench.c against the Go peers starve/ and
#      peers_extra/starvelat: fairness and scheduling latency under handoffs) ----

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
            "$GO" build -o "$tmp/starvelat" "$REPO_DIR/bench/peers_extra/starvelat/main.go") \
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

FAMILIES=(malloc pagealloc ctxswitch sched chan stw sync starve)

declare -A WANT=()   # family -> 1
SEL_MALLOC=()        # malloc patterns, in the order given

select_names() {
    local n p
    if [ $# -eq 0 ]; then
        for n in "${FAMILIES[@]}"; do WANT[$n]=1; done
        SEL_MALLOC=("${MALLOC_PATTERNS[@]}")
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
        starve) WANT[starve]=1 ;;
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
                    "malloc patterns: ${MALLOC_PATTERNS[*]})" >&2
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
[ -n "${WANT[starve]:-}" ] && bench_starve

if [ "$FAILED" -ne 0 ]; then
    echo "some runs FAILED (logs in $LOGS)"
    exit 1
fi
exit 0
