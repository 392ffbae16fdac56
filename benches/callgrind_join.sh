#!/usr/bin/env bash
# Instructions per join, weft vs rayon, measured with callgrind (issue 2's goal: weft at
# 1 thread <= 0.6x rayon's).
#
# Usage: bash benches/callgrind_join.sh [N1 N2]      (default 20 24)
#
# For each library and thread count it runs `join_cost LIB N THREADS` under
# `valgrind --tool=callgrind` for two sizes and prints
#   instructions per join = (Ir(N2) - Ir(N1)) / (joins(N2) - joins(N1)),
# so pool start-up and shutdown cancel out. Ir is the total over all threads.
#
# 1 thread: the figure the goal is about. Note that weft's 1-thread pool has no thief,
# so its `join` runs both halves inline in order; rayon's pushes and pops its deque.
# 2 threads: valgrind runs one thread at a time, so which joins get stolen and how
# long the idle worker spins depend on valgrind's scheduler, not on real timing. The
# totals (idle spinning and steals included) are printed for information only.
# 2 threads (busy): weft's pool of 2 with the other worker held in user code for the
# whole run (`join_cost weft-busy`): the cost of a multi-thread pool's `join` itself.
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${1:-20}
N2=${2:-24}
OUT=target/callgrind-join
mkdir -p "$OUT"

command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 2; }

# Build the bench binary in release (the bench profile) and find it from cargo's own
# report rather than guessing the hashed name in target/release/deps.
BIN=$(cargo bench --bench join_cost --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
exe = None
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "join_cost" and msg.get("executable"):
        exe = msg["executable"]
print(exe or "")
')
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "could not find the join_cost binary" >&2; exit 1; }
echo "binary: $BIN"

# Ir total of one run, and the joins it made.
measure() { # lib n threads
  local file="$OUT/callgrind.$1.t$3.n$2.out"
  local line
  line=$(valgrind --tool=callgrind --callgrind-out-file="$file" "$BIN" "$1" "$2" "$3" 2>/dev/null)
  local joins=${line##*joins=}
  local ir
  ir=$(awk '/^summary:/ {print $2}' "$file")
  echo "$ir $joins"
}

printf '\n%-6s %-7s %14s %14s %10s %10s %12s\n' lib threads "Ir(N=$N1)" "Ir(N=$N2)" "joins($N1)" "joins($N2)" "Ir/join"
declare -A PER
for threads in 1 2; do
  for lib in weft rayon; do
    read -r ir1 j1 < <(measure "$lib" "$N1" "$threads")
    read -r ir2 j2 < <(measure "$lib" "$N2" "$threads")
    per=$(python3 -c "print(f'{($ir2 - $ir1) / ($j2 - $j1):.1f}')")
    PER[$lib.$threads]=$per
    printf '%-6s %-7s %14s %14s %10s %10s %12s\n' "$lib" "$threads" "$ir1" "$ir2" "$j1" "$j2" "$per"
  done
done

# A 2-thread pool whose other worker is held in user code: every join's own cost on a
# multi-thread pool (second half kept private, no idle spinning counted).
read -r ir1 j1 < <(measure weft-busy "$N1" 2)
read -r ir2 j2 < <(measure weft-busy "$N2" 2)
PER[busy.2]=$(python3 -c "print(f'{($ir2 - $ir1) / ($j2 - $j1):.1f}')")
printf '%-6s %-7s %14s %14s %10s %10s %12s\n' "weft" "2 (busy)" "$ir1" "$ir2" "$j1" "$j2" "${PER[busy.2]}"

echo
python3 - "${PER[busy.2]}" "${PER[weft.1]}" <<'EOF2'
import sys
busy, one = map(float, sys.argv[1:])
print(f"2 threads, other worker busy: weft {busy:.1f} instructions/join = {busy / one:.2f}x its 1-thread"
      " figure (goal <= 2x; a 1-thread pool runs both halves in order)")
EOF2
python3 - "${PER[weft.1]}" "${PER[rayon.1]}" "${PER[weft.2]}" "${PER[rayon.2]}" <<'EOF'
import sys
w1, r1, w2, r2 = map(float, sys.argv[1:])
print(f"1 thread : weft {w1:.1f} vs rayon {r1:.1f} instructions/join -> ratio {w1 / r1:.3f} (goal <= 0.6)")
print(f"2 threads: weft {w2:.1f} vs rayon {r2:.1f} instructions/join -> ratio {w2 / r2:.3f}"
      " (under valgrind's serialised scheduler; totals incl. idle spinning, information only)")
EOF
echo "callgrind files: $OUT (inspect with callgrind_annotate)"
