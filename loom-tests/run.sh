#!/usr/bin/env bash
# Runs the loom models with a bounded preemption count (default 2; deeper:
# LOOM_MAX_PREEMPTIONS=3 bash loom-tests/run.sh). Each mutant check re-runs one model
# with a deliberately broken protocol (WEFT_LOOM_MUTANT) and expects it to fail.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export RUSTFLAGS="--cfg loom -C debug-assertions"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/loom}"
cargo test --release -p loom-tests --test models -- --test-threads=1 "$@"
