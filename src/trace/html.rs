//! The timings page: one self-contained HTML file (inline CSS and SVG, no script, no
//! network).
//!
//! An SVG with one lane per thread over a time axis: every span is a rectangle coloured
//! by what the thread was doing (running a job or a query, blocked, asleep, acquiring a
//! token), inset a little per nesting level so a query shows inside its job; hovering
//! one shows its `<title>` (query, key, waiter, times). Then the summary tables: wall
//! time and utilization, each thread's states, time blocked per query, the longest
//! blocked waits, and the cycles found.

use std::fmt::Write;
use std::time::Duration;

use super::{MarkKind, Span, SpanKind, State, Trace};

const LABEL_WIDTH: f64 = 170.0;
const PLOT_WIDTH: f64 = 1100.0;
const LANE_HEIGHT: f64 = 26.0;
const LANE_GAP: f64 = 6.0;
const AXIS_HEIGHT: f64 = 28.0;
/// Spans narrower than this many pixels are not drawn (they would not show).
const MIN_PIXELS: f64 = 0.05;
/// How many blocked waits the "longest" table lists.
const LONGEST_WAITS: usize = 15;

const STYLE: &str = "
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 15px; margin-top: 24px; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.legend span { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
.bg { fill: #f3f3f3; }
.job { fill: #9ccc65; } .query { fill: #2e7d32; } .verify { fill: #00897b; } .blocked { fill: #e53935; }
.wait { fill: #e2e2e2; } .idle { fill: #c7c7c7; } .token { fill: #ffb300; }
.tick { stroke: #ddd; } .cycle { stroke: #8e24aa; stroke-width: 2; } .spare { stroke: #1e88e5; stroke-width: 1.5; }
rect:hover { stroke: #000; stroke-width: 1; }
";

/// `s` with `& < > " '` escaped, for text and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `12.345 ms`, `1.234 s` or `56.7 µs`.
fn time(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.3} s")
    } else if secs >= 1e-3 {
        format!("{:.3} ms", secs * 1e3)
    } else {
        format!("{:.1} µs", secs * 1e6)
    }
}

/// A tick label in the step's unit, without trailing zeros: `0`, `2.5 ms`, `10 ms`.
fn axis_label(tick: Duration, step: Duration) -> String {
    let (unit, scale) = if step >= Duration::from_secs(1) {
        ("s", 1.0)
    } else if step >= Duration::from_millis(1) {
        ("ms", 1e3)
    } else {
        ("µs", 1e6)
    };
    let value = (tick.as_secs_f64() * scale * 1000.0).round() / 1000.0;
    format!("{value} {unit}")
}

fn percent(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn class_of(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Job => "job",
        SpanKind::Query { .. } => "query",
        SpanKind::Verify { .. } => "verify",
        SpanKind::Blocked(_) => "blocked",
        SpanKind::Wait => "wait",
        SpanKind::Idle => "idle",
        SpanKind::TokenAcquire => "token",
    }
}

/// A tick step of 1, 2 or 5 times a power of ten giving about ten ticks.
fn tick_step(wall: Duration) -> Duration {
    let target = wall.as_secs_f64() / 10.0;
    if target <= 0.0 {
        return Duration::from_micros(1);
    }
    let power = 10f64.powf(target.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| s >= target)
        .unwrap_or(10.0 * power);
    Duration::from_nanos((step * 1e9).round().max(1.0) as u64)
}

fn hover_text(span: &Span, origin: Duration) -> String {
    let mut text = span.kind.label();
    for (field, value) in span.kind.details() {
        let _ = write!(text, "\n{field}: {value}");
    }
    let _ = write!(
        text,
        "\nstart {} · {}",
        time(span.start.saturating_sub(origin)),
        time(span.duration())
    );
    text
}

fn render_lanes(trace: &Trace, out: &mut String) {
    let origin = trace.start();
    let wall = trace.wall_time().max(Duration::from_nanos(1));
    let scale = PLOT_WIDTH / wall.as_secs_f64();
    let x_of = |t: Duration| LABEL_WIDTH + t.saturating_sub(origin).as_secs_f64() * scale;
    let lanes = trace.threads().len() as f64;
    let height = AXIS_HEIGHT + lanes * (LANE_HEIGHT + LANE_GAP) + 4.0;
    let width = LABEL_WIDTH + PLOT_WIDTH + 20.0;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">"#
    );
    out.push_str("<g class=\"axis\">\n");
    let step = tick_step(wall);
    let mut tick = Duration::ZERO;
    while tick <= wall {
        let x = LABEL_WIDTH + tick.as_secs_f64() * scale;
        let _ = writeln!(
            out,
            r#"<line class="tick" x1="{x:.2}" y1="{}" x2="{x:.2}" y2="{height}"/><text x="{x:.2}" y="14" text-anchor="middle">{}</text>"#,
            AXIS_HEIGHT - 8.0,
            escape(&axis_label(tick, step)),
        );
        tick += step;
    }
    out.push_str("</g>\n");
    let mut hidden = 0usize;
    for (lane, thread) in trace.threads().iter().enumerate() {
        let y = AXIS_HEIGHT + lane as f64 * (LANE_HEIGHT + LANE_GAP);
        let _ = writeln!(
            out,
            r#"<g class="lane" data-thread="{}"><text x="4" y="{:.1}">{}</text><rect class="bg" x="{LABEL_WIDTH}" y="{y}" width="{PLOT_WIDTH}" height="{LANE_HEIGHT}"><title>{} · {} running · {} blocked · {} idle</title></rect>"#,
            thread.index(),
            y + LANE_HEIGHT / 2.0 + 4.0,
            escape(thread.name()),
            escape(thread.name()),
            percent(thread.utilization()),
            time(thread.time_in(State::Blocked)),
            time(thread.time_in(State::Idle)),
        );
        for span in thread.spans() {
            let x = x_of(span.start);
            let w = span.duration().as_secs_f64() * scale;
            if w < MIN_PIXELS {
                hidden += 1;
                continue;
            }
            let inset = span.depth.min(5) as f64 * 2.0;
            let _ = writeln!(
                out,
                r#"<rect class="{}" x="{x:.2}" y="{:.1}" width="{w:.2}" height="{:.1}"><title>{}</title></rect>"#,
                class_of(&span.kind),
                y + 1.0 + inset,
                (LANE_HEIGHT - 2.0 - 2.0 * inset).max(4.0),
                escape(&hover_text(span, origin)),
            );
        }
        for mark in thread.marks() {
            let (class, text) = match &mark.kind {
                MarkKind::Cycle(cycle) => ("cycle", cycle.to_string()),
                MarkKind::SpareWoken(_) | MarkKind::SpareStarted(_) => ("spare", mark.kind.label()),
                _ => continue,
            };
            let x = x_of(mark.at);
            let _ = writeln!(
                out,
                r#"<line class="{class}" x1="{x:.2}" y1="{y}" x2="{x:.2}" y2="{}"><title>{}</title></line>"#,
                y + LANE_HEIGHT,
                escape(&text),
            );
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    if hidden > 0 {
        let _ = writeln!(
            out,
            "<p>{hidden} spans shorter than {MIN_PIXELS} px are not drawn (they count in the tables).</p>"
        );
    }
}

fn render_tables(trace: &Trace, out: &mut String) {
    out.push_str("<h2>Summary</h2>\n<table class=\"summary\">\n");
    let rows = [
        ("Wall time", time(trace.wall_time())),
        ("Threads (num_threads)", trace.num_threads().to_string()),
        ("Threads that recorded", trace.threads().len().to_string()),
        ("Overall utilization", percent(trace.utilization())),
        ("Memo hits", trace.memo_hits().to_string()),
        ("Cycles found", trace.cycles().len().to_string()),
    ];
    for (name, value) in rows {
        let _ = writeln!(
            out,
            "<tr><th>{name}</th><td class=\"num\">{value}</td></tr>"
        );
    }
    out.push_str("</table>\n");

    out.push_str("<h2>Threads</h2>\n<table class=\"threads\">\n<tr><th>Thread</th><th>Running</th><th>Blocked</th><th>Idle</th><th>Utilization</th><th>Jobs</th><th>Queries</th><th>Memo hits</th></tr>\n");
    for thread in trace.threads() {
        let count = |f: fn(&SpanKind) -> bool| thread.spans().iter().filter(|s| f(&s.kind)).count();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(thread.name()),
            time(thread.time_in(State::Running)),
            time(thread.time_in(State::Blocked)),
            time(thread.time_in(State::Idle)),
            percent(thread.utilization()),
            count(|k| matches!(k, SpanKind::Job)),
            count(|k| matches!(k, SpanKind::Query { .. })),
            thread.memo_hits(),
        );
    }
    out.push_str("</table>\n");

    out.push_str("<h2>Time blocked per query</h2>\n");
    let blocked = trace.blocked_by_query();
    if blocked.is_empty() {
        out.push_str("<p>No thread was blocked.</p>\n");
    } else {
        out.push_str(
            "<table class=\"blocked\">\n<tr><th>Waited for</th><th>Total</th><th>Waits</th></tr>\n",
        );
        for row in blocked {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                escape(&row.kind),
                time(row.total),
                row.waits
            );
        }
        out.push_str("</table>\n");
    }

    out.push_str("<h2>Longest blocked waits</h2>\n");
    let longest = trace.longest_blocked_waits(LONGEST_WAITS);
    if longest.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        out.push_str("<table class=\"longest\">\n<tr><th>Duration</th><th>Thread</th><th>Wait</th><th>Details</th></tr>\n");
        for (thread, span) in longest {
            let details: Vec<String> = span
                .kind
                .details()
                .into_iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = writeln!(
                out,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                time(span.duration()),
                escape(thread.name()),
                escape(&span.kind.label()),
                escape(&details.join("; ")),
            );
        }
        out.push_str("</table>\n");
    }

    out.push_str("<h2>Cycles found</h2>\n");
    let cycles = trace.cycles();
    if cycles.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        out.push_str("<ol class=\"cycles\">\n");
        for cycle in cycles {
            let _ = writeln!(out, "<li><pre>{}</pre></li>", escape(&cycle.to_string()));
        }
        out.push_str("</ol>\n");
    }
}

pub(super) fn render(trace: &Trace) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>weft timings</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<h1>weft timings</h1>\n");
    let _ = writeln!(
        out,
        "<p>{} over {} · {} utilization of {} threads</p>",
        time(trace.wall_time()),
        if trace.threads().len() == 1 {
            "1 thread".to_string()
        } else {
            format!("{} threads", trace.threads().len())
        },
        percent(trace.utilization()),
        trace.num_threads(),
    );
    out.push_str("<p class=\"legend\">");
    for (class, name) in [
        ("job", "running a job"),
        ("query", "executing a query"),
        ("verify", "checking a memo's dependencies"),
        ("blocked", "blocked"),
        ("wait", "waiting for a stolen job"),
        ("idle", "asleep"),
        ("token", "acquiring a token"),
        ("bg", "looking for work"),
    ] {
        let _ = write!(
            out,
            "<span><svg class=\"swatch\" width=\"12\" height=\"12\"><rect class=\"{class}\" width=\"12\" height=\"12\"/></svg>{name}</span>"
        );
    }
    out.push_str("<span>Vertical lines: <b style=\"color:#8e24aa\">cycle found</b>, <b style=\"color:#1e88e5\">spare woken</b>. Hover a bar for its query and key.</span></p>\n");
    render_lanes(trace, &mut out);
    render_tables(trace, &mut out);
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn axis_labels_are_short() {
        let step = Duration::from_millis(5);
        assert_eq!(axis_label(Duration::from_millis(10), step), "10 ms");
        assert_eq!(axis_label(Duration::from_micros(2500), step), "2.5 ms");
        assert_eq!(axis_label(Duration::ZERO, step), "0 ms");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            tick_step(Duration::from_millis(100)),
            Duration::from_millis(10)
        );
        assert_eq!(
            tick_step(Duration::from_millis(130)),
            Duration::from_millis(20)
        );
    }
}
