#!/usr/bin/env bash
# Runs the limit-runtime benchmarks (release) and the compile-cost measurement, and prints
# one table of ratios. Each bench binary measures its baseline and contender in the same
# run, interleaved, and prints `RESULT|metric|baseline|contender|ratio|target` lines;
# scripts/compile_cost.sh prints the same kind of line for the attribute's compile time.
# This collects them. A bench that fails (or a failed compile-cost run) gets a row saying
# so, the others still run, and the script exits non-zero. The benches report figures only:
# none fails because the machine is slow.
# Cargo uses CARGO_TARGET_DIR when it is set; compile_cost.sh always builds in its own
# directory, target/compile-cost.
# Usage: scripts/bench.sh   (from anywhere; about 2 minutes on the development machine once
#                            built: 45 s of benches, 70 s of compile cost)
set -euo pipefail
cd "$(dirname "$0")/.."

benches=(uncontended contended drain_wakeup waiters_scaling two_threads keyed producer_memory)
args=()
for b in "${benches[@]}"; do args+=(--bench "$b"); done

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
status=0
# Raw output (details, percentiles) goes to stderr; the table to stdout.
start=$SECONDS
cargo bench -q --no-run "${args[@]}" >&2
echo "bench.sh: benches built in $((SECONDS - start)) s" >&2
for b in "${benches[@]}"; do
    start=$SECONDS
    if ! cargo bench -q --bench "$b" 2>&1 | tee -a "$out" >&2; then
        echo "RESULT|$b (failed, see its output)|-|-|-|-" >>"$out"
        status=1
    fi
    echo "bench.sh: $b took $((SECONDS - start)) s" >&2
done
start=$SECONDS
if ! scripts/compile_cost.sh 2>&1 | tee -a "$out" >&2; then
    echo "RESULT|compile cost (scripts/compile_cost.sh failed, see its output)|-|-|-|-" >>"$out"
    status=1
fi
echo "bench.sh: compile cost took $((SECONDS - start)) s" >&2

echo
echo "| metric | baseline | contender | ratio | target |"
echo "|---|---|---|---|---|"
grep '^RESULT|' "$out" | awk -F'|' '{ printf "| %s | %s | %s | %s | %s |\n", $2, $3, $4, $5, $6 }'
exit "$status"
