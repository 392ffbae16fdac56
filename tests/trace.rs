//! Timings: what a traced pool records, the Chrome trace it writes (format and nesting),
//! the HTML page (well formed, one lane per thread, the summary), and that an untraced
//! pool records nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use weft::query::{Cx, Engine, Query};
use weft::trace::{BlockedOn, MarkKind, SpanKind, State, Trace};
use weft::ThreadPoolBuilder;

/// Sleeps, so that a second request for the same key finds it in progress.
struct Slow;
impl Query for Slow {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "slow";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        std::thread::sleep(Duration::from_millis(150));
        k + 1
    }
}

struct Fib;
impl Query for Fib {
    type Key = u64;
    type Value = u64;
    const NAME: &'static str = "fib";
    fn compute(cx: &Cx<'_>, n: &u64) -> u64 {
        if *n < 2 {
            return *n;
        }
        let (a, b) = cx.join(|cx| cx.get::<Fib>(&(n - 1)), |cx| cx.get::<Fib>(&(n - 2)));
        a + b
    }
}

/// Requests itself: a one-query cycle.
struct Loop;
impl Query for Loop {
    type Key = &'static str;
    type Value = u32;
    const NAME: &'static str = "loop";
    fn compute(cx: &Cx<'_>, k: &&'static str) -> u32 {
        cx.get::<Loop>(k)
    }
    fn recover(_: &Cx<'_>, _: &&'static str, _: &weft::query::Cycle) -> Option<u32> {
        Some(0)
    }
}

fn join_fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = weft::join(|| join_fib(n - 1), || join_fib(n - 2));
    a + b
}

/// A 2-thread traced pool after: fib by queries (with memo hits), a blocked wait on
/// `slow(0)` (two scope spawns request it), a cycle, and `weft::blocking`.
fn traced_workload() -> Trace {
    let pool = ThreadPoolBuilder::new()
        .num_threads(2)
        .trace(true)
        .build()
        .unwrap();
    let engine = Engine::new();
    let value = pool.install(|| {
        engine
            .run(|cx| {
                let fib = cx.get::<Fib>(&20);
                let again = cx.get::<Fib>(&20);
                // Scope spawns are always exposed to thieves (a join's second half may run
                // inline), so the two requests do overlap.
                let (a, b) = {
                    let (mut a, mut b) = (0, 0);
                    cx.scope(|s| {
                        s.spawn(|cx| a = cx.get::<Slow>(&0));
                        s.spawn(|cx| b = cx.get::<Slow>(&0));
                    });
                    (a, b)
                };
                let looped = cx.get::<Loop>(&"self");
                weft::blocking(|| std::thread::sleep(Duration::from_millis(2)));
                (fib, again, a, b, looped)
            })
            .unwrap()
    });
    assert_eq!(value, (6765, 6765, 1, 1, 0));
    assert_eq!(pool.install(|| join_fib(15)), 610);
    pool.take_trace()
}

fn micros_to_ns(v: &Value) -> i64 {
    (v.as_f64().expect("a number") * 1000.0).round() as i64
}

#[test]
fn tracing_off_records_nothing() {
    let pool = ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let engine = Engine::new();
    assert_eq!(
        pool.install(|| engine.run(|cx| cx.get::<Fib>(&15))),
        Ok(610)
    );
    assert_eq!(pool.install(|| join_fib(15)), 610);
    let trace = pool.take_trace();
    assert!(trace.is_empty());
    assert!(trace.threads().is_empty());
    let json: Value = serde_json::from_str(&trace.to_chrome_json()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    assert!(
        events.iter().all(|e| e["ph"] == "M"),
        "only metadata: {events:?}"
    );
}

#[test]
fn a_traced_pool_records_jobs_queries_blocked_waits_hits_and_cycles() {
    let trace = traced_workload();
    assert!(!trace.is_empty());
    assert!(trace.wall_time() > Duration::ZERO);
    assert!(trace.threads().len() >= 2, "{trace}");
    let spans = || trace.threads().iter().flat_map(|t| t.spans());
    assert!(spans().any(|s| s.kind == SpanKind::Job));
    assert!(spans().any(|s| s.kind
        == SpanKind::Query {
            name: "fib",
            key: "20".into()
        }));
    let blocked_on_slow = spans()
        .filter(|s| matches!(&s.kind, SpanKind::Blocked(BlockedOn::Query { query: "slow", key, .. }) if key == "0"))
        .count();
    // One request waits for the other; a wait that suspends its fiber shows as pieces
    // (the lane runs other work meanwhile), so there may be more than one span.
    assert!(
        blocked_on_slow >= 1,
        "one half of the join waits for the other\n{trace}"
    );
    assert!(spans().any(|s| s.kind == SpanKind::Blocked(BlockedOn::Blocking)));
    assert!(trace.memo_hits() >= 1);
    assert_eq!(trace.cycles().len(), 1);
    assert_eq!(
        trace.cycles()[0].participants(),
        &[("loop", "\"self\"".to_string())]
    );
    assert!(trace
        .threads()
        .iter()
        .flat_map(|t| t.marks())
        .any(|m| m.kind == MarkKind::TokenRelease));

    let by_query = trace.blocked_by_query();
    assert_eq!(by_query[0].kind, "slow");
    assert!(
        by_query[0].total >= Duration::from_millis(50),
        "{by_query:?}"
    );
    assert!(!trace.longest_blocked_waits(3).is_empty());

    let utilization = trace.utilization();
    assert!(utilization > 0.0 && utilization <= 1.0, "{utilization}");
    for thread in trace.threads() {
        let total = thread.time_in(State::Running)
            + thread.time_in(State::Blocked)
            + thread.time_in(State::Idle);
        assert!(
            total >= trace.wall_time() - Duration::from_micros(1),
            "{trace}"
        );
        assert!((0.0..=1.0).contains(&thread.utilization()));
        for span in thread.spans() {
            assert!(span.start >= trace.start() && span.end <= trace.end());
        }
    }
}

#[test]
fn take_trace_drains_and_closes_what_is_in_flight() {
    let pool = ThreadPoolBuilder::new()
        .num_threads(2)
        .trace(true)
        .build()
        .unwrap();
    assert_eq!(pool.install(|| join_fib(12)), 144);
    // Let the workers fall asleep: their idle spans are in flight at collection.
    std::thread::sleep(Duration::from_millis(50));
    let first = pool.take_trace();
    assert!(first
        .threads()
        .iter()
        .flat_map(|t| t.spans())
        .any(|s| s.kind == SpanKind::Idle && s.end == first.end()));
    let second = pool.take_trace();
    assert_eq!(second.start(), first.end());
    assert!(!second
        .threads()
        .iter()
        .flat_map(|t| t.spans())
        .any(|s| s.kind == SpanKind::Job));
}

#[test]
fn chrome_json_follows_the_trace_event_format_with_nested_spans() {
    let trace = traced_workload();
    let json: Value = serde_json::from_str(&trace.to_chrome_json()).expect("valid JSON");
    let events = json["traceEvents"].as_array().expect("a traceEvents array");
    let mut named_threads = Vec::new();
    // Per tid: (start ns, end ns, category).
    let mut spans: BTreeMap<i64, Vec<(i64, i64, String)>> = BTreeMap::new();
    for event in events {
        for field in ["ph", "ts", "pid", "tid", "name"] {
            assert!(event.get(field).is_some(), "`{field}` missing in {event}");
        }
        assert!(event["pid"].is_u64() && event["tid"].is_u64(), "{event}");
        let tid = event["tid"].as_i64().unwrap();
        match event["ph"].as_str().unwrap() {
            "M" => {
                if event["name"] == "thread_name" {
                    named_threads.push(tid);
                    assert!(event["args"]["name"].is_string());
                }
            }
            "X" => {
                let dur = event.get("dur").expect("X events have dur");
                assert!(dur.as_f64().unwrap() >= 0.0);
                assert!(event["cat"].is_string() && event["args"].is_object());
                let start = micros_to_ns(&event["ts"]);
                let end = start + micros_to_ns(dur);
                let category = event["cat"].as_str().unwrap().to_string();
                spans.entry(tid).or_default().push((start, end, category));
            }
            "i" | "C" => assert!(event["ts"].is_number()),
            other => panic!("unexpected phase {other}"),
        }
    }
    assert_eq!(named_threads.len(), trace.threads().len());
    assert!(spans.values().flatten().any(|s| s.2 == "blocked"));
    for (tid, mut spans) in spans {
        assert!(named_threads.contains(&tid), "tid {tid} has no thread_name");
        // Well nested: sorted by start (longest first on ties), each span lies inside
        // the innermost span still open when it starts.
        spans.sort_by_key(|&(start, end, _)| (start, -end));
        let mut open: Vec<&(i64, i64, String)> = Vec::new();
        for span in &spans {
            while open
                .last()
                .is_some_and(|top| top.1 <= span.0 && top.1 < span.1)
            {
                open.pop();
            }
            if let Some(top) = open.last() {
                assert!(
                    span.0 >= top.0 && span.1 <= top.1,
                    "tid {tid}: {span:?} overlaps {top:?}"
                );
            }
            if span.2 == "query" {
                assert!(
                    open.iter().any(|s| s.2 == "job"),
                    "tid {tid}: query {span:?} outside any job"
                );
            }
            open.push(span);
        }
    }
}

/// Checks that every tag opened is closed in order (void and self-closing tags aside),
/// and returns the opening tags with their attributes.
fn check_balanced(html: &str) -> Vec<String> {
    const VOID: [&str; 2] = ["meta", "!DOCTYPE"];
    let mut stack: Vec<String> = Vec::new();
    let mut opened = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        let gt = rest[lt..].find('>').expect("a tag is closed by >") + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(top, name, "</{name}> closes <{top}>");
            continue;
        }
        let name = tag.split_whitespace().next().unwrap().trim_end_matches('/');
        if tag.ends_with('/') || VOID.contains(&name) {
            continue;
        }
        assert!(!tag.contains('<'), "stray < in {tag}");
        stack.push(name.to_string());
        opened.push(tag.to_string());
        // Text of <style> and <title> is not markup.
        if name == "style" {
            let end = rest.find("</style>").unwrap();
            rest = &rest[end..];
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    opened
}

#[test]
fn html_page_is_well_formed_with_one_lane_per_thread_and_the_summary() {
    let trace = traced_workload();
    let html = trace.to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    let opened = check_balanced(&html);
    let lanes: Vec<&String> = opened
        .iter()
        .filter(|t| t.starts_with("g class=\"lane\""))
        .collect();
    assert_eq!(lanes.len(), trace.threads().len());
    for thread in trace.threads() {
        assert!(lanes
            .iter()
            .any(|t| t.contains(&format!("data-thread=\"{}\"", thread.index()))));
        assert!(html.contains(thread.name()));
    }
    for needle in [
        "<table class=\"summary\">",
        "Wall time",
        "Overall utilization",
        "<table class=\"threads\">",
        "Time blocked per query",
        "<td>slow</td>",
        "Longest blocked waits",
        "Cycles found",
        "cycle detected when computing `loop(&quot;self&quot;)`",
        "class=\"query\"",
        "class=\"blocked\"",
        "<title>fib\nquery: fib\nkey: 20\n",
    ] {
        assert!(html.contains(needle), "missing {needle:?}");
    }
    // Self-contained: nothing to fetch.
    assert!(!html.contains("src=") && !html.contains("<link") && !html.contains("url("));
}

#[test]
fn writers_create_the_files() {
    let trace = traced_workload();
    let dir = std::env::temp_dir().join(format!("weft-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("trace.json");
    let html = dir.join("timings.html");
    trace.write_chrome_json(&json).unwrap();
    trace.write_html(&html).unwrap();
    let parsed: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(parsed["traceEvents"].is_array());
    assert!(std::fs::read_to_string(&html).unwrap().contains("</html>"));
    std::fs::remove_dir_all(&dir).unwrap();
}

struct Knob;
impl weft::query::Input for Knob {
    type Key = ();
    type Value = u64;
    const NAME: &'static str = "knob";
}

/// Reads the knob only through `fib`, so a knob change re-checks `scaled` first.
struct Scaled;
impl Query for Scaled {
    type Key = u64;
    type Value = u64;
    const NAME: &'static str = "scaled";
    fn compute(cx: &Cx<'_>, n: &u64) -> u64 {
        cx.get::<Fib>(n) * cx.get::<Knob>(&())
    }
}

#[test]
fn an_incremental_refresh_shows_its_dependency_checks_apart_from_execution() {
    let pool = ThreadPoolBuilder::new()
        .num_threads(2)
        .trace(true)
        .build()
        .unwrap();
    let mut engine = Engine::new().incremental();
    engine.set_input::<Knob>((), 1);
    assert_eq!(
        pool.install(|| engine.run(|cx| cx.get::<Scaled>(&10))),
        Ok(55)
    );
    drop(pool.take_trace());
    engine.set_input::<Knob>((), 2);
    assert_eq!(
        pool.install(|| engine.run(|cx| cx.get::<Scaled>(&10))),
        Ok(110)
    );
    let trace = pool.take_trace();
    let spans: Vec<&SpanKind> = trace
        .threads()
        .iter()
        .flat_map(|t| t.spans())
        .map(|s| &s.kind)
        .collect();
    let verify = SpanKind::Verify {
        name: "scaled",
        key: "10".into(),
    };
    assert!(spans.contains(&&verify), "{trace}");
    assert_eq!(verify.category(), "verify");
    assert_eq!(verify.state(), State::Running);
    // Red: the check found the knob changed, and `scaled` ran again.
    assert!(spans.contains(&&SpanKind::Query {
        name: "scaled",
        key: "10".into()
    }));
    // `fib(10)` depends on nothing that changed: checked, not executed.
    assert!(!spans
        .iter()
        .any(|k| matches!(k, SpanKind::Query { name: "fib", .. })));
    assert!(trace.to_html().contains("class=\"verify\""));
}
