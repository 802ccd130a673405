#!/usr/bin/env bash
# Runs the limit-runtime benchmarks (release) and the compile-cost measurement, and prints
# one table of ratios. Each bench binary measures its baseline and contender in the same
# run, interleaved, and prints `RESULT|metric|baseline|contender|ratio|target` lines;
# scripts/compile_cost.sh prints the same kind of line for the attribute's compile time.
# This collects them.
# Usage: scripts/bench.sh            (from anywhere; takes about two minutes once built)
set -euo pipefail
cd "$(dirname "$0")/.."

benches=(uncontended contended drain_wakeup waiters_scaling two_threads keyed)
args=()
for b in "${benches[@]}"; do args+=(--bench "$b"); done

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# Raw output (details, percentiles) goes to stderr; the table to stdout.
start=$SECONDS
cargo bench -q "${args[@]}" 2>&1 | tee "$out" >&2
echo "bench.sh: benches took $((SECONDS - start)) s (with their build)" >&2
start=$SECONDS
status=0
if ! scripts/compile_cost.sh 2>&1 | tee -a "$out" >&2; then
    # Keep the benches' table; say in it that this row is missing.
    echo "RESULT|compile cost (scripts/compile_cost.sh failed, see its output)|-|-|-|-" >>"$out"
    status=1
fi
echo "bench.sh: compile cost took $((SECONDS - start)) s" >&2

echo
echo "| metric | baseline | contender | ratio | target |"
echo "|---|---|---|---|---|"
grep '^RESULT|' "$out" | awk -F'|' '{ printf "| %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6 }'
exit "$status"
