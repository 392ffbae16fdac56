#!/usr/bin/env bash
# Opens a weft timings page in headless Chromium and checks that it renders: a
# non-empty screenshot must come out. Without an HTML file argument it makes one first,
# from the bundled compiler-demo example.
#
#   scripts/browser-check.sh [PAGE.html]
#
# Exits 0 with "skipped: chromium not installed" where Chromium is missing (Debian's
# package is `chromium`), so CI can run it unconditionally.
set -euo pipefail
cd "$(dirname "$0")/.."

browser=""
for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then
    browser="$candidate"
    break
  fi
done
if [ -z "$browser" ]; then
  echo "skipped: chromium not installed"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

page="${1:-}"
if [ -z "$page" ]; then
  page="$work/timings.html"
  cargo run --quiet -p compiler-demo -- check compiler-demo/examples/hello \
    --threads 2 --timings "$page"
fi
page="$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
[ -s "$page" ] || { echo "error: no page at $page" >&2; exit 1; }

shot="$work/timings.png"
# --virtual-time-budget lets the page settle; the page needs no network, and the flags
# keep Chromium from reaching for any.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu \
  --disable-background-networking --disable-component-update --disable-sync \
  --no-first-run --disable-dev-shm-usage --user-data-dir="$work/profile" \
  --window-size=1400,900 --virtual-time-budget=2000 \
  --screenshot="$shot" "file://$page" >"$work/chromium.log" 2>&1 || {
  echo "error: $browser failed on $page" >&2
  tail -20 "$work/chromium.log" >&2
  exit 1
}
if [ ! -s "$shot" ]; then
  echo "error: $browser wrote no screenshot of $page" >&2
  tail -20 "$work/chromium.log" >&2
  exit 1
fi
# A PNG starts with \x89PNG.
if [ "$(head -c 4 "$shot" | tail -c 3)" != "PNG" ]; then
  echo "error: the screenshot of $page is not a PNG" >&2
  exit 1
fi
if [ -n "${WEFT_SCREENSHOT:-}" ]; then
  cp "$shot" "$WEFT_SCREENSHOT"
fi
echo "ok: $browser rendered $page ($(wc -c <"$shot") bytes of screenshot)"
