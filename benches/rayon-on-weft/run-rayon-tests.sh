#!/usr/bin/env bash
# Runs rayon 1.12's own test suite (its unit, integration and doc tests) with rayon-core
# patched onto weft (the `rayon-core` crate beside this script: `pub use weft::*;`).
#
#   bash benches/rayon-on-weft/run-rayon-tests.sh [-- cargo test arguments]
#
# rayon's sources come from the Cargo registry (fetched if absent); they are copied to a
# scratch directory, given the patch, and tested there. Fails if any test fails, if the
# build did not really use weft, or if the suite runs past RAYON_TESTS_TIMEOUT seconds
# (default 1200: a hang is a failure).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=1.12.0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

src="$(bash "$here/crate-source.sh" rayon "$version")"

cp -r "$src" "$work/rayon"
chmod -R u+w "$work/rayon"
cat >>"$work/rayon/Cargo.toml" <<TOML

[workspace]

[patch.crates-io]
rayon-core = { path = "$here/rayon-core" }
TOML

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
# The patch must be in use: rayon-core resolved to our path crate, which depends on weft.
if ! cargo tree --quiet --manifest-path "$work/rayon/Cargo.toml" -e normal -i weft 2>/dev/null |
  grep -q "rayon-core v1.13.0 ($here/rayon-core)"; then
  echo "error: rayon did not resolve rayon-core to $here/rayon-core" >&2
  cargo tree --manifest-path "$work/rayon/Cargo.toml" -e normal | head -20 >&2
  exit 1
fi
shift_args=()
[ "${1:-}" = "--" ] && shift && shift_args=("$@")
set +e
timeout "${RAYON_TESTS_TIMEOUT:-1200}" \
  cargo test --manifest-path "$work/rayon/Cargo.toml" --release "${shift_args[@]}" \
  >"$work/test.log" 2>&1
status=$?
set -e
grep -E '^(test result|error)|FAILED|panicked at|^    [a-z_:0-9]+$' "$work/test.log" || true
passed=$(grep -Eo '[0-9]+ passed' "$work/test.log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$work/test.log" | awk '{s += $1} END {print s + 0}')
echo "rayon $version on weft: $passed passed, $failed failed (cargo test exit $status)"
if [ "$status" -eq 124 ]; then
  echo "error: rayon's tests ran past ${RAYON_TESTS_TIMEOUT:-1200} s (a hang)" >&2
fi
exit "$status"
