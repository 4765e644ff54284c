#!/usr/bin/env bash
# HTTP throughput of /healthz with wrk (Debian): the release server pinned to core 0 with one event loop,
# wrk pinned to core 1. Several runs; prints each run and the median requests/s.
# Usage: Benchmarks/http-wrk.sh [runs=5] [seconds=10] [connections=50]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}; secs=${2:-10}; conns=${3:-50}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
swift build -c release --product patchbay >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d)
PATCHBAY_PORT=$port PATCHBAY_LOOPS=1 PATCHBAY_HOST=127.0.0.1 PATCHBAY_DATA_DIR=$data PATCHBAY_LOG_LEVEL=error \
  taskset -c 0 .build/release/patchbay serve & pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
results=()
for i in $(seq "$runs"); do
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/healthz")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "run $i: $rps requests/s, p99 $p99"
  results+=("$rps")
done
printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print "median requests/s: " a[int((NR+1)/2)]}'
