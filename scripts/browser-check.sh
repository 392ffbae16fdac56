#!/usr/bin/env bash
# Opens a weft timings page in headless Chromium and checks what a person sees there
# (scripts/timings_page_seen.py): in the rendered DOM, one lane per thread with its bars,
# the legend, the summary and threads tables and every section heading; in the
# screenshot, each lane as a band of the page's lane colours, with running (job, query)
# and background colours covering a real area. Then it breaks copies of the page (no
# stylesheet, no lanes, no tables) and requires the same checks to fail on each, so a
# check that passes on anything is caught too. Without an HTML file argument it makes
# the page first, from the bundled compiler-demo example.
#
#   scripts/browser-check.sh [PAGE.html]
#
# Chromium is Debian's package `chromium` (.ci/run installs it). Where it is missing
# this fails under CI (CI=true), and elsewhere exits 0 saying it skipped.
# WEFT_SCREENSHOT=FILE.png keeps the screenshot.
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
  if [ "${CI:-}" = true ]; then
    echo "error: chromium not installed, and under CI the timings page must be checked" \
      "(apt-get install chromium)" >&2
    exit 1
  fi
  echo "skipped: chromium not installed (apt-get install chromium); CI fails here instead"
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

# render PAGE NAME: writes $work/NAME.dom (the DOM after rendering) and $work/NAME.png.
# --virtual-time-budget lets the page settle; the page needs no network, and the flags
# keep Chromium from reaching for any. A fixed window and scale factor keep the
# screenshot's geometry what timings_page_seen.py expects (one CSS pixel, one pixel).
render() {
  local out="$work/$2"
  rm -rf "$work/profile"
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu \
    --disable-background-networking --disable-component-update --disable-sync \
    --no-first-run --disable-dev-shm-usage --user-data-dir="$work/profile" \
    --window-size=1400,1200 --force-device-scale-factor=1 --hide-scrollbars \
    --virtual-time-budget=2000 --dump-dom --screenshot="$out.png" "file://$1" \
    >"$out.dom" 2>"$out.log" || {
    echo "error: $browser failed on $1" >&2
    tail -20 "$out.log" >&2
    return 1
  }
  if [ ! -s "$out.png" ] || [ ! -s "$out.dom" ]; then
    echo "error: $browser wrote no screenshot or no DOM of $1" >&2
    tail -20 "$out.log" >&2
    return 1
  fi
}

render "$page" page
python3 scripts/timings_page_seen.py "$work/page.dom" "$work/page.png" || {
  echo "error: the timings page $page does not show what it should" >&2
  [ -z "${WEFT_SCREENSHOT:-}" ] || cp "$work/page.png" "$WEFT_SCREENSHOT"
  exit 1
}
[ -z "${WEFT_SCREENSHOT:-}" ] || cp "$work/page.png" "$WEFT_SCREENSHOT"

# The same checks on broken copies of the page must fail.
python3 - "$page" "$work" <<'EOF'
import re, sys
page, work = sys.argv[1], sys.argv[2]
html = open(page, encoding="utf-8").read()
mutants = {
    "unstyled": re.sub(r"<style>.*?</style>", "", html, flags=re.S),
    "no-lanes": re.sub(r'<g class="lane".*?</g>\n', "", html, flags=re.S),
    "no-tables": re.sub(r"<table.*?</table>\n", "", html, flags=re.S),
}
for name, text in mutants.items():
    assert text != html, f"mutant {name} changed nothing: the page's markup moved"
    open(f"{work}/{name}.html", "w", encoding="utf-8").write(text)
EOF
caught=()
for mutant in unstyled no-lanes no-tables; do
  render "$work/$mutant.html" "$mutant"
  if python3 scripts/timings_page_seen.py "$work/$mutant.dom" "$work/$mutant.png" \
    >"$work/$mutant.out" 2>&1; then
    echo "error: the checks pass on the page with $mutant; they prove nothing" >&2
    cat "$work/$mutant.out" >&2
    exit 1
  fi
  failed="$(sed -n 's/^error: \([A-Za-z]*\):.*/\1/p' "$work/$mutant.out" | paste -sd+)"
  caught+=("$mutant: ${failed:-?}")
done
printf -v caught_list '%s; ' "${caught[@]}"
echo "ok: $browser rendered $page; its broken copies fail (${caught_list%; })"
