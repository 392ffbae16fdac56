#!/usr/bin/env bash
# Fuzzes compiler-demo for a bounded time per target with cargo-fuzz (libFuzzer, ASan,
# debug assertions and overflow checks on), seeded from the bundled example and the UI
# tests. A target fails on the first input that panics, hangs (10 s), runs out of memory
# or trips ASan; the script then fails, after printing the panic or sanitizer report,
# where that input was written, its bytes (base64, when small) and the command that
# replays it.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     # default 60 s, every target
#
# Targets (compiler-demo/fuzz/fuzz_targets/):
#   parse               lexer and parser on arbitrary bytes
#   check               the whole front-end, serial engine, one file
#   serial_vs_parallel  several files from one input; serial and 2-thread output identical
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly toolchain; where
# there is none, stable runs with RUSTC_BOOTSTRAP=1 (cargo-fuzz accepts that).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(parse check serial_vs_parallel)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "error: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)" >&2
  exit 1
fi
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  echo "note: no nightly toolchain; fuzzing on stable with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
fi

cd compiler-demo
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Seeds: every .wd file of the example and the UI tests for the one-file targets; for
# serial_vs_parallel, each multi-file program as one input (main.wd, then 0xFF, a byte
# picking the module's path in MODULE_PATHS, and its text, for each module listed there).
python3 - "$work/seeds" <<'EOF'
import os, re, sys
out = sys.argv[1]
src = open("fuzz/fuzz_targets/serial_vs_parallel.rs").read()
table = re.search(r"const MODULE_PATHS: &\[&str\] = &\[(.*?)\];", src, re.S).group(1)
paths = re.findall(r'"([^"]+)"', table)
one, multi = os.path.join(out, "one"), os.path.join(out, "multi")
os.makedirs(one)
os.makedirs(multi)
programs = []
for root in ["examples", "tests/ui"]:
    for entry in sorted(os.listdir(root)):
        full = os.path.join(root, entry)
        if entry.endswith(".wd") and os.path.isfile(full):
            programs.append({"main.wd": open(full, "rb").read()})
        elif os.path.isfile(os.path.join(full, "main.wd")):
            files = {}
            for d, _, names in os.walk(full):
                for n in names:
                    if n.endswith(".wd"):
                        p = os.path.join(d, n)
                        files[os.path.relpath(p, full)] = open(p, "rb").read()
            programs.append(files)
for i, files in enumerate(programs):
    for j, text in enumerate(files.values()):
        open(os.path.join(one, f"{i}-{j}.wd"), "wb").write(text)
    data = files["main.wd"]
    for path, text in sorted(files.items()):
        if path != "main.wd" and path in paths:
            data += b"\xff" + bytes([paths.index(path)]) + text
    open(os.path.join(multi, f"{i}"), "wb").write(data)
print(f"seeds: {len(os.listdir(one))} files, {len(os.listdir(multi))} programs")
EOF

start=$SECONDS
cargo "${toolchain[@]}" fuzz build >"$work/build.log" 2>&1 || {
  tail -40 "$work/build.log" >&2
  echo "error: the fuzz targets did not build" >&2
  exit 1
}
echo "built the fuzz targets in $((SECONDS - start)) s"

# weft's fibers tell ASan about every stack switch (weft's `sanitizer` feature, which
# the fuzz crate turns on), but corosensei keeps a finished fiber's "fake stack" (ASan's
# use-after-return shadow frames, several MB each) alive: with them every input leaks
# memory until libFuzzer's RSS limit. Use-after-scope and the rest are still checked.
export ASAN_OPTIONS="detect_stack_use_after_return=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

failed=()
for target in "${targets[@]}"; do
  seeds="$work/seeds/one"
  extra=()
  if [ "$target" = serial_vs_parallel ]; then
    seeds="$work/seeds/multi"
    # Each input starts and stops a pool, which leaves libFuzzer's malloc and free
    # counts apart and so makes it scan for leaks after every input: half the time
    # (`check` runs the same front-end with leak detection on).
    extra=(-detect_leaks=0)
  fi
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  log="$work/$target.log"
  start=$SECONDS
  # -timeout: an input taking longer than 10 s counts as a hang (libFuzzer's default
  # is 20 minutes). -max_total_time bounds the whole run.
  if cargo "${toolchain[@]}" fuzz run "$target" "$corpus" "$seeds" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${extra[@]}" >"$log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
    echo "ok: fuzz $target: ${runs:-?} inputs in $((SECONDS - start)) s, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) files"
  else
    failed+=("$target")
    mkdir -p "fuzz/artifacts/$target"
    cp "$log" "fuzz/artifacts/$target/fuzz.log"
    echo "FAILED: fuzz $target after $((SECONDS - start)) s; full log: $PWD/fuzz/artifacts/$target/fuzz.log" >&2
    # The panic message or sanitizer report, then libFuzzer's verdict.
    {
      grep -m1 -A3 'panicked at' "$log" ||
        grep -m1 -A12 -E 'ERROR: (AddressSanitizer|LeakSanitizer)' "$log" ||
        grep -m1 -A2 'ERROR: libFuzzer' "$log" ||
        tail -40 "$log"
      grep -m1 '^SUMMARY:' "$log" || true
    } >&2
    for unit in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
      case "$unit" in /*) ;; *) unit="$PWD/${unit#./}" ;; esac
      echo "reproducer: $unit" >&2
      if [ -f "$unit" ] && [ "$(wc -c <"$unit")" -le 4096 ]; then
        echo "reproducer bytes (base64): $(base64 -w0 "$unit")" >&2
      fi
      echo "replay: cd compiler-demo && cargo ${toolchain[*]} fuzz run $target $unit" >&2
    done
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "error: fuzzing found failures in: ${failed[*]}" >&2
  exit 1
fi
