#!/usr/bin/env bash
# Instructions per call, counted by callgrind, for `#[concurrency_limit(N)]` and the
# alternatives, side by side in one run (benches/instructions.rs lists the modes and what
# each contender does). Each mode runs under `valgrind --tool=callgrind` at two call counts,
# N1 and N2, and (count at N2 - count at N1) / (N2 - N1) is its cost per call, with the
# start-up cancelled out. Counts repeat exactly from run to run, on a loaded machine too.
#
# Usage: scripts/instructions.sh [mode...]      (from anywhere; about 1 minute once built)
#   With no mode, every mode. The baselines (`plain` and `hand` for the uncontended
#   scenario, `contended-hand` for the contended one) always run.
# Environment:
#   UNCONTENDED_CALLS  N1 and N2 for the uncontended modes (default "20000 120000")
#   CONTENDED_CALLS    N1 and N2 for the contended modes (default "10000 60000")
#   JOBS               valgrind runs at once (default: the number of CPUs; the counts do not
#                      depend on it)
#   FEATURES           the crate's features to build with, e.g. "redis" (default: none), to
#                      see what a feature costs a limiter that does not use it
#   CARGO_TARGET_DIR   honoured: the executable's path comes from cargo's JSON output
# Prints a table (scenario, contender, mode, instructions per call, ratio to the hand-written
# semaphore + in-flight counter + Notify) and `RESULT|metric|baseline|contender|ratio|target`
# lines in the format of scripts/bench.sh; the raw counts go to stderr.
# - Uncontended (limit 64, each call awaited before the next): instructions per call over a
#   plain `async fn` (its own cost per call is printed on the `plain` row).
# - Contended (limit 4, every call spawned, then all waited for): instructions per call,
#   spawn and wait included.
# Fails (non-zero, with the mode's output) if the build fails or any mode fails: valgrind
# exits with the program's status, and each mode panics if its calls are not all finished or
# its contended check run does not reach exactly the limit (see benches/instructions.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

uncontended_modes=(plain static borrowed arc adaptive semaphore hand async-lock tower tracker)
contended_modes=(contended-static contended-semaphore contended-hand contended-async-lock
  contended-tower contended-tracker)
read -r u1 u2 <<<"${UNCONTENDED_CALLS:-20000 120000}"
read -r c1 c2 <<<"${CONTENDED_CALLS:-10000 60000}"
jobs=${JOBS:-$(nproc)}
if ((u2 <= u1 || c2 <= c1)); then
  echo "instructions.sh: N2 must be larger than N1" >&2
  exit 2
fi

# The modes to run, baselines first.
if (($# == 0)); then
  modes=("${uncontended_modes[@]}" "${contended_modes[@]}")
else
  modes=()
  for mode in "$@"; do
    case " ${uncontended_modes[*]} ${contended_modes[*]} " in
    *" $mode "*) ;;
    *)
      echo "instructions.sh: unknown mode $mode; the modes are ${uncontended_modes[*]} ${contended_modes[*]}" >&2
      exit 2
      ;;
    esac
    case $mode in
    contended-*) modes+=(contended-hand) ;;
    *) modes+=(plain hand) ;;
    esac
    modes+=("$mode")
  done
  # Each mode once, in the order first asked for.
  mapfile -t modes < <(printf '%s\n' "${modes[@]}" | awk '!seen[$0]++')
fi

which valgrind >/dev/null || {
  echo "instructions.sh: valgrind not found (apt-get install -y valgrind)" >&2
  exit 1
}

# Build once; cargo's diagnostics go to stderr, its JSON messages to the filter.
binary=$(cargo bench --bench instructions --no-run --message-format=json-render-diagnostics \
  ${FEATURES:+--features "$FEATURES"} |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "instructions":
        print(m["executable"])')
if [[ -z $binary ]]; then
  echo "instructions.sh: cargo reported no instructions executable" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# `measure MODE CALLS` writes the instructions callgrind collected to $tmp/MODE.CALLS, and
# nothing if the program failed (its output stays in $tmp/MODE.CALLS.log).
measure() {
  if valgrind --tool=callgrind --callgrind-out-file=/dev/null "$binary" "$1" "$2" \
    >"$tmp/$1.$2.log" 2>&1; then
    sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$tmp/$1.$2.log" >"$tmp/$1.$2"
  fi
}

calls_of() {
  case $1 in
  contended-*) echo "$c1 $c2" ;;
  *) echo "$u1 $u2" ;;
  esac
}

start=$SECONDS
running=0
for mode in "${modes[@]}"; do
  for calls in $(calls_of "$mode"); do
    if ((running >= jobs)); then
      wait -n || true
      running=$((running - 1))
    fi
    measure "$mode" "$calls" &
    running=$((running + 1))
  done
done
wait
echo "instructions.sh: ${#modes[@]} modes counted in $((SECONDS - start)) s (binary $binary)" >&2

failed=0
counts=()
for mode in "${modes[@]}"; do
  line=$mode
  for calls in $(calls_of "$mode"); do
    count=$(cat "$tmp/$mode.$calls" 2>/dev/null || true)
    if [[ ! $count =~ ^[0-9]+$ ]]; then
      echo "instructions.sh: mode $mode failed with $calls calls; its output:" >&2
      cat "$tmp/$mode.$calls.log" >&2
      failed=1
    fi
    line+=" $calls $count"
  done
  counts+=("$line")
done
if ((failed)); then
  exit 1
fi

printf '%s\n' "${counts[@]}" | python3 -c '
import sys

labels = {
    "plain": "plain async fn (reference; absolute cost)",
    "static": "ours: #[concurrency_limit(64)]",
    "borrowed": "ours: limiter = &self.limiter",
    "arc": "ours: limiter = self.shared.clone()",
    "adaptive": "ours: #[concurrency_limit(adaptive(initial = 64))]",
    "semaphore": "tokio Semaphore, acquire + drop",
    "hand": "hand-written Semaphore + counter + Notify (baseline)",
    "async-lock": "async-lock Semaphore, acquire + drop",
    "tower": "tower ConcurrencyLimit(service_fn), ready + call",
    "tracker": "tokio-util TaskTracker + tokio Semaphore",
    "contended-static": "ours: #[concurrency_limit(4)], drain()",
    "contended-semaphore": "tokio Semaphore, join handles",
    "contended-hand": "hand-written Semaphore + counter + Notify, its drain (baseline)",
    "contended-async-lock": "async-lock Semaphore, join handles",
    "contended-tower": "tower ConcurrencyLimit(service_fn), ready + call, join handles",
    "contended-tracker": "tokio-util TaskTracker + tokio Semaphore, close() + wait()",
}
per_call, raw = {}, {}
for line in sys.stdin:
    mode, n1, i1, n2, i2 = line.split()
    n1, i1, n2, i2 = int(n1), int(i1), int(n2), int(i2)
    per_call[mode] = (i2 - i1) / (n2 - n1)
    raw[mode] = (n1, i1, n2, i2)
    print(f"{mode}: {i1} instructions for {n1} calls, {i2} for {n2}", file=sys.stderr)

rows, results = [], []
for mode in per_call:
    n1, _, n2, _ = raw[mode]
    if mode.startswith("contended-"):
        scenario = f"contended, limit 4 ({n1} and {n2} calls)"
        value, base = per_call[mode], per_call["contended-hand"]
        metric = "instructions per contended call (limit 4, spawned, all waited for)"
    elif mode == "plain":
        scenario = f"uncontended, limit 64 ({n1} and {n2} calls)"
        rows.append((scenario, labels[mode], mode, f"{per_call[mode]:.1f}", "-"))
        continue
    else:
        scenario = f"uncontended, limit 64, over plain ({n1} and {n2} calls)"
        value = per_call[mode] - per_call["plain"]
        base = per_call["hand"] - per_call["plain"]
        metric = "instructions per uncontended call over a plain async fn (limit 64)"
    ratio = value / base
    rows.append((scenario, labels[mode], mode, f"{value:.1f}", f"{ratio:.2f}"))
    results.append(f"RESULT|{metric}: {labels[mode]} vs hand-written|{base:.1f}|{value:.1f}|{ratio:.2f}|-")

header = ("scenario", "contender", "mode", "instructions/call", "ratio to hand-written")
widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
def show(row):
    cells = [c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
    print("| " + " | ".join(cells) + " |")
show(header)
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for row in rows:
    show(row)
print()
print("\n".join(results))
'
