#!/usr/bin/env bash
# Event plane fan-out: `patchbay serve` (release, one loop) pinned to core 0 with a Pusher app; events-bench pinned
# to core 1. Usage: Benchmarks/run-events.sh [subscribers=500] [events_per_second=100] [seconds=10] [runs=1]
set -euo pipefail
cd "$(dirname "$0")"
subs=${1:-500}; rate=${2:-100}; seconds=${3:-10}; runs=${4:-1}
ulimit -n "$(ulimit -Hn)"
(cd .. && swift build -c release --product patchbay >/dev/null)
swift build -c release --product events-bench >/dev/null
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for run in $(seq "$runs"); do
  port=$(freeport); data=$(mktemp -d)
  PATCHBAY_PORT=$port PATCHBAY_LOOPS=1 PATCHBAY_HOST=127.0.0.1 PATCHBAY_DATA_DIR=$data PATCHBAY_LOG_LEVEL=error \
  PATCHBAY_PUSHER_APP_ID=4242 PATCHBAY_PUSHER_APP_KEY=pbkey123 PATCHBAY_PUSHER_APP_SECRET=pbsecret456 \
  PATCHBAY_WS_MAX_MESSAGE_BYTES=65536 taskset -c 0 ../.build/release/patchbay serve & pid=$!
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  echo "run $run:"
  taskset -c 1 .build/release/events-bench --patchbay "127.0.0.1:$port" --pid "$pid" --subscribers "$subs" --rate "$rate" --seconds "$seconds" ${EVENTS_BENCH_ARGS:-}
  kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
done
