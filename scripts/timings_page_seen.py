#!/usr/bin/env python3
"""Checks what a person sees on a weft timings page rendered by headless Chromium.

    scripts/timings_page_seen.py DOM.html SCREENSHOT.png

DOM.html is Chromium's `--dump-dom` of the page, SCREENSHOT.png its screenshot at a
device scale factor of 1. The page comes from `src/trace/html.rs`; what is checked:

* the DOM: the title and heading, one `<g class="lane">` per thread that recorded (as
  the summary table says), each with its name and its background bar, bars for the
  spans, the eight legend swatches, the summary and threads tables (one row per lane),
  and every section heading;
* the pixels: the lanes are there as drawn bands at least `MIN_BAND_WIDTH` pixels wide,
  one band per lane, each about a lane high, and inside them the page's colours for
  running (a job, a query) and for looking for work (the lane background) cover a real
  area, not just a legend swatch.

Colours match within a small tolerance per channel; nothing is compared pixel for
pixel, so fonts, antialiasing and timings do not matter. Prints one evidence line per
part, or what is wrong, and exits 1 when anything is.

Only the standard library: the PNG is decoded here (8-bit RGB or RGBA, not interlaced,
as Chromium writes it).
"""

import struct
import sys
import zlib
from html.parser import HTMLParser

# The SVG's fills, from the page's stylesheet (src/trace/html.rs, STYLE).
PALETTE = {
    "bg": (0xF3, 0xF3, 0xF3),
    "job": (0x9C, 0xCC, 0x65),
    "query": (0x2E, 0x7D, 0x32),
    "verify": (0x00, 0x89, 0x7B),
    "blocked": (0xE5, 0x39, 0x35),
    "wait": (0xE2, 0xE2, 0xE2),
    "idle": (0xC7, 0xC7, 0xC7),
    "token": (0xFF, 0xB3, 0x00),
    "cycle": (0x8E, 0x24, 0xAA),
    "spare": (0x1E, 0x88, 0xE5),
}
SPAN_CLASSES = ["job", "query", "verify", "blocked", "wait", "idle", "token"]
HEADINGS = ["Summary", "Threads", "Time blocked per query", "Longest blocked waits", "Cycles found"]
TOLERANCE = 6
# The plot is 1,100 px wide: a row of a lane is drawn (not white) all the way across,
# whatever the bars' edges blend to. A band of such rows is a lane if it is about a
# lane high; thinner ones are lines (a wide table's borders).
MIN_BAND_WIDTH = 1000
LANE_HEIGHT = 26
MIN_BAND_HEIGHT = 10
# A lane's running area must be more than a 12 x 12 legend swatch.
MIN_RUNNING_PIXELS = 400
MIN_BG_PIXELS = 400


class Page(HTMLParser):
    """The parts of the DOM the checks look at."""

    def __init__(self):
        super().__init__()
        self.stack = []  # (tag, class) of the open elements
        self.title = ""
        self.h1 = []
        self.h2 = []
        self.lanes = []  # per lane: {"name": str, "bg": int, "spans": {class: count}}
        self.swatches = 0
        self.tables = {}  # class -> rows [[cell text]]
        self.text_target = None
        self.cell = None

    def classes(self):
        return [c for _, c in self.stack]

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        if tag in ("br", "meta", "input", "img", "hr", "link"):
            return
        self.stack.append((tag, cls))
        if tag == "title" and "svg" not in [t for t, _ in self.stack]:
            self.text_target = "title"
        elif tag in ("h1", "h2"):
            getattr(self, tag).append("")
            self.text_target = tag
        elif tag == "g" and cls == "lane":
            self.lanes.append({"name": "", "bg": 0, "spans": {}})
        elif tag == "text" and self.lanes and "lane" in self.classes()[:-1]:
            self.text_target = "lane"
        elif tag == "rect":
            if "swatch" in self.classes()[:-1]:
                self.swatches += 1
            elif self.lanes and "lane" in self.classes()[:-1]:
                lane = self.lanes[-1]
                if cls == "bg":
                    lane["bg"] += 1
                elif cls in SPAN_CLASSES:
                    lane["spans"][cls] = lane["spans"].get(cls, 0) + 1
        elif tag == "table":
            self.tables[cls] = []
            self.table = cls
        elif tag == "tr" and "table" in [t for t, _ in self.stack]:
            self.tables[self.table].append([])
        elif tag in ("td", "th") and "table" in [t for t, _ in self.stack]:
            self.tables[self.table][-1].append("")
            self.text_target = "cell"

    def handle_endtag(self, tag):
        # Pop to the matching element (the DOM dump is well formed).
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break
        self.text_target = None

    def handle_data(self, data):
        t = self.text_target
        if t == "title":
            self.title += data
        elif t in ("h1", "h2"):
            getattr(self, t)[-1] += data
        elif t == "lane":
            self.lanes[-1]["name"] += data
        elif t == "cell":
            self.tables[self.table][-1][-1] += data


def check_dom(path):
    """The lane count, and the evidence line; raises ValueError on what is wrong."""
    page = Page()
    page.feed(open(path, encoding="utf-8").read())
    page.close()
    wrong = []
    if page.title.strip() != "weft timings" or [h.strip() for h in page.h1] != ["weft timings"]:
        wrong.append(f"title {page.title!r} and heading {page.h1!r}, not 'weft timings'")
    missing = [h for h in HEADINGS if h not in [x.strip() for x in page.h2]]
    if missing:
        wrong.append(f"section headings missing: {missing}")
    if page.swatches != 8:
        wrong.append(f"{page.swatches} legend swatches, not 8")
    lanes = page.lanes
    if not lanes:
        wrong.append("no lanes (<g class=lane>) in the SVG")
    for i, lane in enumerate(lanes):
        if not lane["name"].strip():
            wrong.append(f"lane {i} has no thread name")
        if lane["bg"] != 1:
            wrong.append(f"lane {i} has {lane['bg']} background bars, not 1")
    spans = {}
    for lane in lanes:
        for cls, n in lane["spans"].items():
            spans[cls] = spans.get(cls, 0) + n
    if spans.get("job", 0) + spans.get("query", 0) + spans.get("verify", 0) == 0:
        wrong.append("no job, query or verify bar in any lane")
    for cls in ["summary", "threads"]:
        if cls not in page.tables:
            wrong.append(f"no {cls} table")
    summary = {row[0].strip(): row[1].strip() for row in page.tables.get("summary", []) if len(row) == 2}
    recorded = summary.get("Threads that recorded")
    if recorded != str(len(lanes)):
        wrong.append(f"{len(lanes)} lanes, but the summary says {recorded!r} threads recorded")
    thread_rows = page.tables.get("threads", [])[1:]
    if len(thread_rows) != len(lanes):
        wrong.append(f"{len(lanes)} lanes, but the threads table has {len(thread_rows)} rows")
    elif [r[0].strip() for r in thread_rows] != [lane["name"].strip() for lane in lanes]:
        wrong.append("the threads table names other threads than the lanes")
    if wrong:
        raise ValueError("; ".join(wrong))
    bars = sum(spans.values())
    detail = ", ".join(f"{cls} {spans[cls]}" for cls in SPAN_CLASSES if cls in spans)
    names = ", ".join(lane["name"].strip() for lane in lanes)
    tables = ", ".join(page.tables)
    return len(lanes), (
        f"DOM: {len(lanes)} lanes ({names}), {bars} span bars ({detail}), "
        f"{len(page.tables)} tables ({tables}), {len(page.h2)} section headings, "
        f"{page.swatches} legend swatches"
    )


def read_png(path):
    """(width, height, rows of RGB tuples)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}, interlace {interlace}")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if ftype == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif ftype == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        elif ftype != 0:
            raise ValueError(f"bad PNG filter {ftype} in row {y}")
        rows.append(line)
        prev = line
    return width, height, [[tuple(r[x : x + 3]) for x in range(0, stride, bpp)] for r in rows]


def palette_name(pixel, cache={}):
    if pixel not in cache:
        cache[pixel] = next(
            (name for name, c in PALETTE.items() if max(abs(p - q) for p, q in zip(pixel, c)) <= TOLERANCE),
            None,
        )
    return cache[pixel]


def longest_drawn_run(row):
    """The longest run of pixels that are not the page's white, in one row."""
    longest = run = 0
    for p in row:
        if min(p) < 255 - TOLERANCE:
            run += 1
            longest = max(longest, run)
        else:
            run = 0
    return longest


def check_pixels(path, lanes):
    """The evidence line; raises ValueError on what is wrong."""
    width, height, rows = read_png(path)
    lane_rows = [y for y, row in enumerate(rows) if longest_drawn_run(row) >= MIN_BAND_WIDTH]
    bands = []
    for y in lane_rows:
        if bands and bands[-1][1] == y - 1:
            bands[-1][1] = y
        else:
            bands.append([y, y])
    # A table's border is a long line too, but a line is not a lane.
    bands = [b for b in bands if b[1] - b[0] + 1 >= MIN_BAND_HEIGHT]
    wrong = []
    if (len(bands) != lanes) if lanes is not None else not bands:
        wrong.append(
            f"{len(bands)} drawn bands at least {MIN_BAND_WIDTH} px wide and {MIN_BAND_HEIGHT} px high,"
            f" not {lanes or 'one per lane'}"
        )
    for top, bottom in bands:
        if abs(bottom - top + 1 - LANE_HEIGHT) > 3:
            wrong.append(f"a lane band {bottom - top + 1} px high at y={top}, not about {LANE_HEIGHT}")
    counts = {}
    for top, bottom in bands:
        for y in range(top, bottom + 1):
            for p in rows[y]:
                name = palette_name(p)
                if name:
                    counts[name] = counts.get(name, 0) + 1
    running = counts.get("job", 0) + counts.get("query", 0) + counts.get("verify", 0)
    if running < MIN_RUNNING_PIXELS:
        wrong.append(f"only {running} running pixels (job, query, verify colours) in the lanes")
    if counts.get("bg", 0) < MIN_BG_PIXELS:
        wrong.append(f"only {counts.get('bg', 0)} lane-background pixels")
    if wrong:
        raise ValueError("; ".join(wrong))
    where = ", ".join(f"y={t}..{b}" for t, b in bands)
    detail = ", ".join(f"{n} {counts[n]}" for n in PALETTE if n in counts)
    return (
        f"pixels: {len(bands)} lane bands ({where}) in a {width}x{height} screenshot; "
        f"{running} running pixels; by colour: {detail}"
    )


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.splitlines()[2].strip())
    dom, shot = sys.argv[1:]
    ok = True
    lanes = None
    try:
        lanes, line = check_dom(dom)
        print(f"ok: {line}", flush=True)
    except ValueError as e:
        print(f"error: DOM: {e}", file=sys.stderr, flush=True)
        ok = False
    try:
        print(f"ok: {check_pixels(shot, lanes)}", flush=True)
    except ValueError as e:
        print(f"error: pixels: {e}", file=sys.stderr, flush=True)
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
