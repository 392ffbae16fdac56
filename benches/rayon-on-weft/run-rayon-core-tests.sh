#!/usr/bin/env bash
# Runs rayon-core 1.13's own tests (its unit tests in src/**/test.rs and its integration
# tests in tests/) against weft: they are copied into a scratch crate whose library is
# `pub use weft::*;` (named `rayon_core`, so `crate::...` and `rayon_core::...` paths
# resolve to weft) plus two test shims for rayon-core internals the tests call
# (`unwind::halt_unwinding`, which is `catch_unwind`, and `registry::in_worker`, which
# runs a closure on a worker of the current pool).
#
# Left out, and the script says so: two unit tests that inspect rayon-core's private
# registry (`workers_stop`, `sleeper_stop`: `thread_pool.registry.wait_until_stopped()`),
# and `panic_thread_name`, which checks an order of operations weft changes on purpose:
# rayon names each thread as it starts it, so a namer that panics at thread 5 leaves
# threads 0-4 started (then stopped); weft names every thread before starting any, so
# `build` fails with no thread started (weft's own tests cover that).
#
#   bash benches/rayon-on-weft/run-rayon-core-tests.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
weft="$(cd "$here/../.." && pwd)"
version=1.13.0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

src="$(bash "$here/crate-source.sh" rayon-core "$version")"

crate="$work/rayon-core-tests"
mkdir -p "$crate/src"
cp -r "$src/tests" "$crate/tests"
for module in broadcast join scope spawn thread_pool; do
  mkdir -p "$crate/src/$module"
  cp "$src/src/$module/test.rs" "$crate/src/$module/test.rs"
done
cp "$src/src/test.rs" "$crate/src/test.rs"
chmod -R u+w "$crate"

# Leave out the unit tests that reach into rayon-core's private registry.
python3 - "$crate/src/thread_pool/test.rs" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
left_out = []
def drop(match):
    left_out.append(match.group(2))
    return ""
text = re.sub(r"(#\[test\]\n(?:#\[[^\n]*\]\n)*fn (\w+)\(\) \{\n(?:.*?)\n\}\n)",
              lambda m: drop(m) if ".registry" in m.group(1) or m.group(2) == "panic_thread_name"
              else m.group(1), text, flags=re.S)
open(path, "w").write(text)
print("left out (see the script's header):", ", ".join(left_out))
PY

cat >"$crate/Cargo.toml" <<TOML
[package]
name = "rayon-core-tests"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
name = "rayon_core"
path = "src/lib.rs"

[dependencies]
weft = { path = "$weft" }

[dev-dependencies]
rand = "0.9"
rand_xorshift = "0.4"
scoped-tls = "1.0"
libc = "0.2"
crossbeam-utils = "0.8"

[workspace]
TOML

cat >"$crate/src/lib.rs" <<'RS'
//! rayon-core's tests, on weft.
pub use weft::*;

/// Test shim: rayon-core's `unwind::halt_unwinding` is `catch_unwind`.
#[cfg(test)]
mod unwind {
    pub(crate) fn halt_unwinding<F: FnOnce() -> R, R>(f: F) -> std::thread::Result<R> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
    }
}

/// Test shim: rayon-core's `registry::in_worker` runs `op` on a worker of the current
/// pool (the global one outside any pool); the flag says whether it was injected.
#[cfg(test)]
mod registry {
    pub(crate) fn in_worker<OP, R>(op: OP) -> R
    where
        OP: FnOnce(&(), bool) -> R + Send,
        R: Send,
    {
        match crate::current_thread_index() {
            Some(_) => op(&(), false),
            None => crate::scope(|_| op(&(), true)),
        }
    }
}

#[cfg(test)]
mod test;

#[cfg(test)]
mod broadcast {
    mod test;
}

#[cfg(test)]
mod join {
    pub(crate) use crate::*;
    mod test;
}

#[cfg(test)]
mod scope {
    mod test;
}

#[cfg(test)]
mod spawn {
    pub(crate) use crate::{spawn, spawn_fifo};
    mod test;
}

#[cfg(test)]
mod thread_pool {
    mod test;
}
RS

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
set +e
timeout "${RAYON_TESTS_TIMEOUT:-900}" \
  cargo test --manifest-path "$crate/Cargo.toml" --release >"$work/test.log" 2>&1
status=$?
set -e
grep -E '^(test result|error)|FAILED|panicked at|^    [a-z_:0-9]+$' "$work/test.log" || true
[ "$status" -eq 101 ] && grep -E '^error' -A12 "$work/test.log" | head -60 || true
passed=$(grep -Eo '[0-9]+ passed' "$work/test.log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed' "$work/test.log" | awk '{s += $1} END {print s + 0}')
echo "rayon-core $version's tests on weft: $passed passed, $failed failed (cargo test exit $status)"
exit "$status"
