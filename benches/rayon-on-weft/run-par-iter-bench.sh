#!/usr/bin/env bash
# rayon's parallel iterators on rayon-core and on weft, in one run: builds
# `par-iter/` twice (the second time with rayon-core patched to `rayon-core/` beside
# this script, i.e. `pub use weft::*;`), runs both, alternating, and prints each
# workload's median time and the ratios (weft ÷ rayon; 2 threads ÷ 1 thread).
#
#   bash benches/rayon-on-weft/run-par-iter-bench.sh [THREADS...]   # default 1 2
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
target="${CARGO_TARGET_DIR:-$here/target}"

for variant in rayon weft; do
  cp -r "$here/par-iter" "$work/$variant"
  printf '\n[workspace]\n' >>"$work/$variant/Cargo.toml"
  if [ "$variant" = weft ]; then
    printf '\n[patch.crates-io]\nrayon-core = { path = "%s/rayon-core" }\n' "$here" \
      >>"$work/$variant/Cargo.toml"
  fi
  cargo build --quiet --release --manifest-path "$work/$variant/Cargo.toml" \
    --target-dir "$target/par-iter-$variant"
done

for variant in rayon weft; do
  "$target/par-iter-$variant/release/par-iter-bench" "$@" >"$work/$variant.txt"
done

python3 - "$work/rayon.txt" "$work/weft.txt" <<'PY'
import sys
def load(path):
    return {(w, int(t)): float(ms) for w, t, ms in (l.split() for l in open(path))}
rayon, weft = load(sys.argv[1]), load(sys.argv[2])
threads = sorted({t for _, t in rayon})
print(f"{'workload':<10} {'threads':>7} {'rayon ms':>10} {'weft ms':>10} {'weft/rayon':>11}")
for (w, t) in rayon:
    print(f"{w:<10} {t:>7} {rayon[w, t]:>10.3f} {weft[w, t]:>10.3f} {weft[w, t] / rayon[w, t]:>10.2f}x")
if len(threads) > 1:
    lo, hi = threads[0], threads[-1]
    print(f"\nspeed-up {lo} -> {hi} threads (time at {lo} / time at {hi}):")
    for w in dict.fromkeys(w for w, _ in rayon):
        print(f"{w:<10} rayon {rayon[w, lo] / rayon[w, hi]:.2f}x   weft {weft[w, lo] / weft[w, hi]:.2f}x")
PY
