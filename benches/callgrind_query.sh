#!/usr/bin/env bash
# Instruction counts of the query engine under callgrind (noise-free, unlike timings on
# a shared machine): instructions per memo hit (weft, the serial engine, weft with a
# dense memo, HashMap with SipHash and FxHash, salsa 0.28), per 100,000-query random DAG
# (serial, weft at 1 and 2 threads), and per query of the shared workload's DAG
# (`benches/dag.rs`, N = 20,000, W = 64), engine only: (variant - plain loop) / N, next
# to the naive FxHashMap memo's (`dense-*`: the same query with a memo indexed by node
# id, `Query::KEY_INDEX`).
# Each figure is a difference between two sizes, so start-up cancels out.
#
# Usage: bash benches/callgrind_query.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/callgrind-query
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 2; }

BIN=$(cargo bench --bench query_cost --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
exe = ""
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "query_cost" and msg.get("executable"):
        exe = msg["executable"]
print(exe)
')
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "could not find the query_cost binary" >&2; exit 1; }

ir() { # mode impl n
  local file="$OUT/callgrind.$1.$2.$3.out"
  valgrind --tool=callgrind --callgrind-out-file="$file" "$BIN" "$1" "$2" "$3" >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$file"
}

echo "instructions per memo hit (10,000 keys; passes 10 vs 30):"
for imp in weft serial dense hashmap_std hashmap_fx salsa; do
  a=$(ir hit "$imp" 10); b=$(ir hit "$imp" 30)
  python3 -c "print(f'  {\"$imp\":<12} {($b - $a) / (20 * 10000):8.1f}')"
done

echo "instructions per 100,000-query DAG (fresh engine; repeats 1 vs 3), and per query:"
for eng in serial weft1 weft2; do
  a=$(ir dag "$eng" 1); b=$(ir dag "$eng" 3)
  python3 -c "d = ($b - $a) / 2; print(f'  {\"$eng\":<12} {d:14,.0f}  ({d / 100000:.0f}/query)')"
done
echo "(weft2: total over both threads under valgrind's serialised scheduler, idle spinning included)"

DAG=$(cargo bench --bench dag --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "dag" and msg.get("executable"):
        print(msg["executable"])
')
[ -n "$DAG" ] && [ -x "$DAG" ] || { echo "could not find the dag binary" >&2; exit 1; }
dag_ir() { # variant rounds
  local file="$OUT/callgrind.dag.$1.$2.out"
  valgrind --tool=callgrind --callgrind-out-file="$file" "$DAG" --only "$1" --n 20000 --w 64 --rounds "$2" >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$file"
}
echo "shared-workload DAG (N = 20,000, W = 64): instructions per query, and engine only"
base=""
for v in serial memo weft-serial weft-1 dense-serial dense-1; do
  a=$(dag_ir "$v" 1); b=$(dag_ir "$v" 2)
  per=$(( (b - a) / 20000 ))
  [ -z "$base" ] && base=$per
  echo "  $(printf '%-12s' "$v") $(printf '%6d' "$per") per query, $(printf '%6d' $((per - base))) engine"
done
echo "callgrind files: $OUT"
