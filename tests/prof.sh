#!/usr/bin/env bash
# The profiles gort writes, read by the real tools: `go tool pprof -top`
# (Debian's golang-go) on every profile of examples/profiling (heap, CPU at
# 3:1, goroutine, block, mutex) with the expected top functions and their
# file:line; the execution trace through a schema check of Chrome's
# trace-event JSON (what Perfetto and chrome://tracing load); the /debug
# endpoint over curl (expvar's JSON, the index, 400 for garbage) and
# `go tool pprof http://127.0.0.1:PORT/debug/pprof/heap`; SIGQUIT sent to a
# background job (which starts with SIGQUIT ignored) prints the dump and
# exits 2; the dump of a binary stripped of its debug info still names
# every function. Parts whose tool is missing are skipped; with none left,
# exit 77 (a skip).
# Usage: prof.sh BUILD_DIR SOURCE_DIR
set -u
build=$1
prog=$build/examples/profiling
if [ ! -x "$prog" ]; then
    echo "SKIP: examples/profiling not built"
    exit 77
fi
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
fail=0 ran=0
bad() { echo "FAIL: $*"; fail=1; }
has() { command -v "$1" >/dev/null 2>&1; }

if has go; then
    export GOCACHE=$tmp/gocache GOFLAGS=-mod=mod HOME=${HOME:-$tmp}
    top() { # top PROFILE [pprof flags...]: go tool pprof -top, nodes and lines
        local p=$1
        shift
        go tool pprof -top -nodecount=40 "$@" "$prog" "$p" 2>&1
    }
    # pct OUT FUNC: FUNC's cum% in OUT
    pct() { awk -v f="$2" '$6 == f || $6 ~ "^"f" " {gsub("%","",$5); print $5; exit}' <<<"$1"; }

    # heap: the leak's allocating site on top, with its file and line
    "$prog" leak "$tmp/heap.pb.gz" >"$tmp/leak.txt" || bad "leak run"
    out=$(top "$tmp/heap.pb.gz" -lines -sample_index=inuse_space)
    grep -Eq '^ *[0-9.]+[kMG]?B +[0-9.]+% .* render .*examples/profiling.c:[0-9]+' <<<"$out" ||
        bad "heap: render with file:line not on top"$'\n'"$out"
    out=$(top "$tmp/heap.pb.gz" -sample_index=alloc_space)
    grep -q 'handle_request' <<<"$out" || bad "heap: handle_request missing"$'\n'"$out"
    ran=1

    # cpu: burn3 and burn1 at 3:1 within 10%, at 250 Hz (GORT_CPUPROFILERATE;
    # test_prof checks the default 100 Hz): a period of 4 ms
    GORT_CPUPROFILERATE=250 "$prog" cpu "$tmp/cpu.pb.gz" || bad "cpu run"
    out=$(go tool pprof -raw "$prog" "$tmp/cpu.pb.gz" 2>&1)
    grep -q '^Period: 4000000$' <<<"$out" || bad "cpu: GORT_CPUPROFILERATE=250 not a 4 ms period"$'\n'"$(head -5 <<<"$out")"
    out=$(top "$tmp/cpu.pb.gz" -cum)
    b3=$(pct "$out" burn3) b1=$(pct "$out" burn1)
    if [ -z "$b3" ] || [ -z "$b1" ]; then
        bad "cpu: burn3/burn1 missing"$'\n'"$out"
    else
        ok=$(awk -v a="$b3" -v b="$b1" 'BEGIN { r = a / b; print (r >= 2.7 && r <= 3.3) ? "yes" : "no" }')
        echo "cpu: burn3 ${b3}% burn1 ${b1}%"
        [ "$ok" = yes ] || bad "cpu: burn3:burn1 = $b3:$b1, not 3:1 within 10%"$'\n'"$out"
    fi
    out=$(top "$tmp/cpu.pb.gz" -lines)
    grep -Eq 'spin .*examples/profiling.c:[0-9]+' <<<"$out" || bad "cpu: spin without file:line"$'\n'"$out"

    # goroutine (debug=0), block, mutex
    "$prog" goroutine 0 >"$tmp/goroutine.pb.gz" || bad "goroutine run"
    out=$(top "$tmp/goroutine.pb.gz" -cum)
    for f in stuck_recv stuck_lock stuck_select gort_chan_recv; do
        grep -q " $f\$" <<<"$out" || bad "goroutine: $f missing"$'\n'"$out"
    done
    "$prog" block "$tmp/block.pb.gz" || bad "block run"
    out=$(top "$tmp/block.pb.gz" -cum)
    grep -q ' consumer$' <<<"$out" || bad "block: consumer missing"$'\n'"$out"
    "$prog" mutex "$tmp/mutex.pb.gz" || bad "mutex run"
    out=$(top "$tmp/mutex.pb.gz" -cum)
    grep -q ' hold_lock$' <<<"$out" || bad "mutex: hold_lock missing"$'\n'"$out"
fi

# The goroutine dump (debug=2) lists every goroutine with its wait reason.
out=$("$prog" goroutine 2)
for w in 'chan receive' 'sync.Mutex.Lock' 'select'; do
    grep -q "^goroutine [0-9]* \[$w\]:" <<<"$out" || bad "dump: no goroutine waiting on $w"$'\n'"$out"
done
grep -q '^goroutine 1 \[running\]:' <<<"$out" || bad "dump: goroutine 1 not running"$'\n'"$out"
ran=1

# The trace: Chrome trace-event JSON, checked field by field.
if has python3; then
    "$prog" trace "$tmp/trace.json" >/dev/null || bad "trace run"
    python3 - "$tmp/trace.json" <<'PY' || bad "trace: schema check"
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d, dict) and isinstance(d["traceEvents"], list), "traceEvents array"
assert d.get("displayTimeUnit") in ("ms", "ns")
phases = {}
for e in d["traceEvents"]:
    ph = e["ph"]
    phases[ph] = phases.get(ph, 0) + 1
    assert ph in ("X", "i", "C", "M"), ph
    assert isinstance(e["pid"], int) and isinstance(e.get("tid", 0), int), e
    assert isinstance(e["name"], str) and e["name"], e
    if ph == "M":
        assert e["name"] in ("process_name", "thread_name", "thread_sort_index"), e
        assert isinstance(e["args"], dict), e
        continue
    assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0, e
    if ph == "X":
        assert isinstance(e["dur"], (int, float)) and e["dur"] >= 0, e
    if ph == "i":
        assert e.get("s") in ("t", "p", "g"), e
    if ph == "C":
        assert all(isinstance(v, (int, float)) for v in e["args"].values()), e
names = {e["name"] for e in d["traceEvents"]}
for want in ("GoCreate", "GoUnblock", "G1 main", "G3 worker", "STW: GC sweep termination", "Heap", "Goroutines"):
    assert any(n == want or n.startswith(want) for n in names), want
stall = max(e["dur"] for e in d["traceEvents"] if e["ph"] == "X" and e["name"] == "G3 worker")
assert stall >= 25000, stall  # the worker's 30 ms step shows as one slice (us)
print("trace: %d events %s, the stall %.1f ms" % (len(d["traceEvents"]), phases, stall / 1000))
PY
    ran=1
fi

# The /debug endpoint.
if has curl; then
    "$prog" serve >"$tmp/serve.log" 2>&1 &
    pids+=($!)
    addr=
    for _ in $(seq 1 100); do
        addr=$(sed -n 's/^LISTENING //p' "$tmp/serve.log" | head -n 1)
        [ -n "$addr" ] && break
        sleep 0.05
    done
    if [ -z "$addr" ]; then
        bad "serve did not start"
    else
        case $addr in 127.0.0.1:*) ;; *) bad "serve listens on $addr, not loopback" ;; esac
        vars=$(curl -sS --max-time 10 "http://$addr/debug/vars")
        if has python3; then
            python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert "cmdline" in d and "HeapAlloc" in d["memstats"] and d["requests"] > 0 and d["uptime"]["seconds"] >= 0' "$vars" ||
                bad "vars: $vars"
        fi
        idx=$(curl -sS --max-time 10 "http://$addr/debug/pprof/")
        grep -q 'goroutine?debug=2' <<<"$idx" || bad "index: $idx"
        code=$(printf 'BLAH\x01\x02 / HTTP/1.1\r\n\r\n' | curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://$addr/debug/%ZZ" 2>/dev/null)
        [ "$code" = 400 ] || [ "$code" = 404 ] || bad "bad path: HTTP $code"
        if exec 3<>"/dev/tcp/${addr%:*}/${addr#*:}" 2>/dev/null; then
            printf '\x16\x03\x01\x00\xa5\x01\x00' >&3
            reply=$(timeout 5 head -c 12 <&3)
            exec 3>&-
            [ "$reply" = "HTTP/1.1 400" ] || bad "garbage: '$reply'"
        fi
        dump=$(curl -sS --max-time 10 "http://$addr/debug/pprof/goroutine?debug=2")
        grep -q '\[sync.Mutex.Lock\]' <<<"$dump" || bad "goroutine?debug=2: $dump"
        curl -sS --max-time 20 -o "$tmp/t.json" "http://$addr/debug/pprof/trace?seconds=1" ||
            bad "trace over http"
        if has python3; then
            python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["traceEvents"]' "$tmp/t.json" ||
                bad "trace over http: not JSON"
        fi
        curl -sS --max-time 20 -o "$tmp/p.pb.gz" "http://$addr/debug/pprof/profile?seconds=1" ||
            bad "profile over http"
        if has go; then
            out=$(go tool pprof -top "http://$addr/debug/pprof/heap" 2>&1)
            grep -Eq 'render|handle_request' <<<"$out" || bad "pprof over http: $out"
            out=$(go tool pprof -top "$tmp/p.pb.gz" 2>&1)
            grep -q 'Type: cpu' <<<"$out" || bad "profile?seconds=1: $out"
        fi
        # Still serving after all that.
        curl -sS --max-time 10 -o /dev/null "http://$addr/debug/vars" || bad "server died"
        ran=1
    fi
fi

# SIGQUIT to a background job of a non-interactive shell (SIGQUIT ignored).
bash -c '"$1" hang >"$2/hang.out" 2>"$2/hang.err" & echo $! >"$2/hang.pid"; wait' _ "$prog" "$tmp" &
shell=$!
for _ in $(seq 1 100); do
    grep -q READY "$tmp/hang.out" 2>/dev/null && break
    sleep 0.05
done
if [ -s "$tmp/hang.pid" ] && grep -q READY "$tmp/hang.out"; then
    kill -QUIT "$(cat "$tmp/hang.pid")"
    wait "$shell"
    grep -q '^SIGQUIT: quit' "$tmp/hang.err" || bad "SIGQUIT: no dump"$'\n'"$(cat "$tmp/hang.err")"
    for w in 'chan receive' 'sync.Mutex.Lock' 'select'; do
        grep -q "\[$w\]:" "$tmp/hang.err" || bad "SIGQUIT: no goroutine in $w"
    done
    grep -Eq 'examples/profiling.c:[0-9]+' "$tmp/hang.err" || bad "SIGQUIT: no file:line"
    ran=1
else
    bad "hang did not start"
fi
# Exit status 2, as Go's.
"$prog" hang >"$tmp/h2.out" 2>"$tmp/h2.err" &
p=$!
for _ in $(seq 1 100); do
    grep -q READY "$tmp/h2.out" 2>/dev/null && break
    sleep 0.05
done
kill -QUIT "$p"
wait "$p"
st=$?
[ "$st" = 2 ] || bad "SIGQUIT: exit status $st, not 2"

# Without debug info the dump still names every function (no file:line).
tp=$build/tests/test_prof
if [ -x "$tp" ] && has objcopy; then
    objcopy --strip-debug "$tp" "$tmp/stripped"
    "$tmp/stripped" deadlock 2>"$tmp/stripped.err"
    st=$?
    [ "$st" = 2 ] || bad "stripped: exit $st"
    grep -q 'deadlock_main(...)' "$tmp/stripped.err" || bad "stripped: names missing"$'\n'"$(cat "$tmp/stripped.err")"
    grep -q 'test_prof.c:' "$tmp/stripped.err" && bad "stripped: file:line without debug info?"
    grep -q '?()' "$tmp/stripped.err" && bad "stripped: unnamed frames"$'\n'"$(cat "$tmp/stripped.err")"
    ran=1
fi

[ "$ran" = 1 ] || {
    echo "SKIP: no tool to run"
    exit 77
}
[ "$fail" = 0 ] && echo "prof: every profile read by go tool pprof, the trace and /debug checked"
exit $fail
