#!/usr/bin/env bash
# Installs the Debian packages a target needs, only those that are missing.
# Usage: scripts/deps.sh build|test|bench
set -eu
need=(cmake make gcc pkg-config zlib1g-dev)
case "${1:-build}" in
  build) ;;
  test) need+=(python3 sqlite3 git clang libclang-rt-14-dev
  # tests/prof.sh: go tool pprof reads every profile, curl the /debug endpoint
  golang-go curl binutils) ;;
  # bench: make bench (the malloc peers, the Go peers of bench/peers, Boost's
  # fcontext) and bench/peers/run.sh (Boehm GC, tcmalloc, wrk)
  bench) need+=(python3 g++ golang-1.19-go libmimalloc-dev libjemalloc-dev
    libboost-context-dev libgc-dev libgoogle-perftools-dev wrk) ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
