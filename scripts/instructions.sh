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
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" "$1" "$calls" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
  rm -f "$out"
}
plain=$(count plain)
printf 'plain async fn: %s instructions for %s calls\n' "$plain" "$calls"
for mode in $modes; do
  total=$(count "$mode")
  python3 -c "print(f'$mode: {($total - $plain) / $calls:.1f} instructions per call over plain')"
done
