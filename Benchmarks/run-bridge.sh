#!/usr/bin/env bash
# Media bridge under load: `patchbay serve` (release, one event loop) pinned to core 0; bridge-bench (simulated
# callers + simulated agent in echo mode + the loopback floor probes) pinned to core 1.
# Usage: Benchmarks/run-bridge.sh [calls=50] [seconds=20] [format=ulaw_8000|pcm_16000] [runs=1]
set -euo pipefail
cd "$(dirname "$0")"
calls=${1:-50}; seconds=${2:-20}; format=${3:-ulaw_8000}; runs=${4:-1}
ulimit -n 65536 2>/dev/null || ulimit -n 4096
(cd .. && swift build -c release --product patchbay >/dev/null)
swift build -c release --product bridge-bench >/dev/null
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for run in $(seq "$runs"); do
  port=$(freeport); agentport=$(freeport)
  data=$(mktemp -d)
  PATCHBAY_PORT=$port PATCHBAY_LOOPS=1 PATCHBAY_HOST=127.0.0.1 PATCHBAY_DATA_DIR=$data PATCHBAY_LOG_LEVEL=error \
  PATCHBAY_PUBLIC_URL=http://127.0.0.1:$port TWILIO_ACCOUNT_SID=AC00000000000000000000000000000001 \
  TWILIO_AUTH_TOKEN=bench-token-0123456789 ELEVENLABS_AGENT_ID=bench ELEVENLABS_API_URL=http://127.0.0.1:$agentport \
  TWILIO_API_URL=http://127.0.0.1:9 \
    taskset -c 0 ../.build/release/patchbay serve & pid=$!
  echo "run $run: $calls calls, $format, ${seconds}s"
  taskset -c 1 .build/release/bridge-bench --patchbay "127.0.0.1:$port" --pid "$pid" --agent-port "$agentport" \
    --calls "$calls" --seconds "$seconds" --format "$format" --ramp "$(python3 -c "print(min(10, max(2, $calls / 50)))")" ${BRIDGE_BENCH_ARGS:-}
  kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
done
