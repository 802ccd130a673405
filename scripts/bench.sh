#!/usr/bin/env bash
# Runs the limit-runtime benchmarks (release) and prints one table of ratios.
# Each bench binary measures its baseline and contender in the same run, interleaved,
# and prints `RESULT|metric|baseline|contender|ratio|target` lines; this collects them.
# Usage: scripts/bench.sh            (from anywhere; takes about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."

benches=(uncontended contended drain_wakeup waiters_scaling two_threads)
args=()
for b in "${benches[@]}"; do args+=(--bench "$b"); done

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# Raw output (details, percentiles) goes to stderr; the table to stdout.
cargo bench -q "${args[@]}" 2>&1 | tee "$out" >&2

echo
echo "| metric | baseline | contender | ratio | target |"
echo "|---|---|---|---|---|"
grep '^RESULT|' "$out" | awk -F'|' '{ printf "| %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6 }'
