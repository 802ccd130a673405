#!/usr/bin/env bash
# The fleet benchmark (feature `redis`): a limiter shared by several processes through Redis,
# against a hand-written Lua counter (uncontended), a polling ZSET semaphore in the style of
# npm redis-semaphore (contended), and one local limiter (throughput). It starts its own
# redis-server (`limit_suite::redis_server`; set REDIS_SERVER=/path/to/redis-server if it is
# not on PATH) and prints per-round figures, then a markdown table of ratios measured in the
# same run (benches/fleet.rs says what each measures). Reports figures only: nothing fails
# because the machine is slow.
# Cargo uses CARGO_TARGET_DIR when it is set.
# Usage: scripts/fleet_bench.sh   (from anywhere; about 40 s once built)
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --features redis --bench fleet "$@"
