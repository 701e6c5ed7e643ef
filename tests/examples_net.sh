#!/usr/bin/env bash
# The network examples answer as they should: examples/http_hello (HTTP/1.0
# closes, HTTP/1.1 keeps the connection and answers a pipeline of requests
# in order, a body is skipped, garbage gets 400) and examples/echo_server.
# Each server is started on a free port and stopped by its pid.
# Usage: examples_net.sh BUILD_DIR SOURCE_DIR
set -u
build=$1
http=$build/examples/http_hello
echo=$build/examples/echo_server
if [ ! -x "$http" ] || [ ! -x "$echo" ]; then
    echo "SKIP: examples not built"
    exit 77
fi
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
fail=0

# start NAME CMD...: runs a server, waits for its LISTENING line, sets $addr
start() {
    local name=$1 i
    shift
    "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
    addr=
    for i in $(seq 1 100); do
        addr=$(sed -n 's/^LISTENING //p' "$tmp/$name.log" | head -n 1)
        [ -n "$addr" ] && return 0
        sleep 0.05
    done
    echo "FAIL: $name did not start: $(cat "$tmp/$name.log")"
    exit 1
}

# exchange REQUEST: sends it, prints everything until the server closes (5 s at most)
exchange() {
    timeout 5 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}" && printf "%b" "$2" >&3 && cat <&3' _ "$addr" "$1" |
        tr -d '\r'
}

check() { # DESCRIPTION GOT WANT
    if [ "$2" = "$3" ]; then
        echo "ok: $1"
    else
        echo "FAIL: $1: got '$2', want '$3'"
        fail=1
    fi
}

start http "$http" 127.0.0.1:0 60
out=$(exchange 'GET / HTTP/1.0\r\nHost: x\r\n\r\n')
check "HTTP/1.0: one answer, then close" "$(grep -c '^Hello, World!$' <<<"$out")" 1
check "HTTP/1.0: status line" "$(head -n 1 <<<"$out")" "HTTP/1.0 200 OK"
req=""
for i in $(seq 1 200); do req+='GET / HTTP/1.1\r\nHost: x\r\n\r\n'; done
req+='GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
out=$(exchange "$req")
check "HTTP/1.1: a pipeline of 201 requests, 201 answers" "$(grep -c '^Hello, World!$' <<<"$out")" 201
check "HTTP/1.1: only the last says close" "$(grep -c '^Connection: close$' <<<"$out")" 1
out=$(exchange 'POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello worldGET / HTTP/1.1\r\nConnection: close\r\n\r\n')
check "a body is skipped" "$(grep -c '^Hello, World!$' <<<"$out")" 2
out=$(exchange 'garbage\r\n\r\n')
check "garbage: 400" "$(head -n 1 <<<"$out")" "HTTP/1.1 400 Bad Request"

start echo "$echo"
out=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}" && printf "hello, echo\n" >&3 &&
    head -n 1 <&3' _ "$addr")
check "echo_server echoes" "$out" "hello, echo"

exit $fail
