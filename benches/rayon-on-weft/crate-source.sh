#!/usr/bin/env bash
# Prints the directory of CRATE VERSION's sources in the Cargo registry, downloading and
# unpacking them first if they are not there (a throwaway crate depending on it).
#
#   bash benches/rayon-on-weft/crate-source.sh rayon 1.12.0
set -euo pipefail
name="$1"
version="$2"
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
find_source() { ls -d "$registry"/*/"$name-$version" 2>/dev/null | head -1 || true; }
src="$(find_source)"
if [ -z "$src" ]; then
  scratch="$(mktemp -d)"
  trap 'rm -rf "$scratch"' EXIT
  mkdir -p "$scratch/src"
  printf '[package]\nname = "fetch-source"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n[workspace]\n' \
    "$name" "$version" >"$scratch/Cargo.toml"
  : >"$scratch/src/lib.rs"
  # Building unpacks the sources into the registry.
  cargo build --quiet --manifest-path "$scratch/Cargo.toml" --target-dir "$scratch/target" >&2
  src="$(find_source)"
fi
[ -n "$src" ] || { echo "error: no sources of $name $version" >&2; exit 1; }
echo "$src"
