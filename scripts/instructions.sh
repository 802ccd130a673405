#!/usr/bin/env bash
# Instructions per uncontended call over a plain `async fn`, counted by callgrind (see
# benches/instructions.rs). Usage: scripts/instructions.sh [calls] [modes...]
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-100000}
shift || true
modes=${*:-static borrowed arc semaphore}
binary=$(cargo bench --bench instructions --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "instructions":
        print(m["executable"])')
count() {
  local out log
  out=$(mktemp)
  log=$(mktemp)
  # valgrind exits with the program's status: a mode that panics fails the script.
  if ! valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" "$1" "$calls" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$out" "$log"
    echo "instructions.sh: mode $1 failed" >&2
    exit 1
  fi
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log"
  rm -f "$out" "$log"
}
plain=$(count plain)
printf 'plain async fn: %s instructions for %s calls\n' "$plain" "$calls"
for mode in $modes; do
  total=$(count "$mode")
  python3 -c "print(f'$mode: {($total - $plain) / $calls:.1f} instructions per call over plain')"
done
