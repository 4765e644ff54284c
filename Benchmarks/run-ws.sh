#!/usr/bin/env bash
# WebSocket round trip through the real server: `patchbay serve` (release, one loop) pinned to core 0 with its
# diagnostic echo socket, ws-bench pinned to core 1. Usage: Benchmarks/run-ws.sh [runs=5] [messages=100000]
set -euo pipefail
cd "$(dirname "$0")"
runs=${1:-5}; messages=${2:-100000}
(cd .. && swift build -c release --product patchbay >/dev/null)
swift build -c release --product ws-bench >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d)
PATCHBAY_PORT=$port PATCHBAY_LOOPS=1 PATCHBAY_HOST=127.0.0.1 PATCHBAY_DATA_DIR=$data PATCHBAY_LOG_LEVEL=error PATCHBAY_DIAGNOSTIC_ECHO=true \
  taskset -c 0 ../.build/release/patchbay serve & pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
# connections:inflight — 1:1 one connection; 100:1 a hundred open, one message in flight (latency);
# 100:100 a hundred each with one in flight (loaded: RTT includes queueing behind the other 99).
for mode in 1:1 100:1 100:100; do
  conns=${mode%%:*}; inflight=${mode##*:}
  for i in $(seq "$runs"); do
    echo "run $i: $(taskset -c 1 .build/release/ws-bench --url "ws://127.0.0.1:$port/diagnostics/echo" --connections "$conns" --inflight "$inflight" --messages "$messages" | tr '\n' ' ')"
  done
done
