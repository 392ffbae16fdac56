//! The Chrome trace event format (the JSON Perfetto and `chrome://tracing` open).
//!
//! One process (`pid` 1, the pool), one track per worker thread (`tid` = its index,
//! named by a `thread_name` metadata event). Spans are complete events (`ph: "X"`, `ts`
//! and `dur` in microseconds), listed per thread by start with enclosing spans first,
//! so a query sits nested inside the job that ran it; blocked waits have category
//! `blocked`. Marks are thread-scoped instant events (`ph: "i"`), and each thread's
//! memo hits a counter event at the end of the window.

use std::fmt::Write;
use std::time::Duration;

use super::{json_string, MarkKind, Trace};

const PID: u32 = 1;

/// Microseconds with nanosecond precision, as an exact decimal.
fn micros(d: Duration) -> String {
    let ns = d.as_nanos();
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

fn args(pairs: &[(&str, String)]) -> String {
    let fields: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

pub(super) fn render(trace: &Trace) -> String {
    let mut events: Vec<String> = Vec::new();
    let start = micros(trace.start());
    events.push(format!(
        r#"{{"name":"process_name","ph":"M","ts":{start},"pid":{PID},"tid":0,"args":{{"name":"weft pool"}}}}"#
    ));
    for thread in trace.threads() {
        let tid = thread.index();
        events.push(format!(
            r#"{{"name":"thread_name","ph":"M","ts":{start},"pid":{PID},"tid":{tid},"args":{{"name":{}}}}}"#,
            json_string(thread.name())
        ));
        events.push(format!(
            r#"{{"name":"thread_sort_index","ph":"M","ts":{start},"pid":{PID},"tid":{tid},"args":{{"sort_index":{tid}}}}}"#
        ));
        for span in thread.spans() {
            events.push(format!(
                r#"{{"name":{},"cat":"{}","ph":"X","ts":{},"dur":{},"pid":{PID},"tid":{tid},"args":{}}}"#,
                json_string(&span.kind.label()),
                span.kind.category(),
                micros(span.start),
                micros(span.duration()),
                args(&span.kind.details()),
            ));
        }
        for mark in thread.marks() {
            let details = match &mark.kind {
                MarkKind::Cycle(cycle) => vec![("cycle", cycle.to_string())],
                MarkKind::SpareWoken(i) | MarkKind::SpareStarted(i) => {
                    vec![("spare", i.to_string())]
                }
                _ => Vec::new(),
            };
            events.push(format!(
                r#"{{"name":{},"cat":"mark","ph":"i","s":"t","ts":{},"pid":{PID},"tid":{tid},"args":{}}}"#,
                json_string(&mark.kind.label()),
                micros(mark.at),
                args(&details),
            ));
        }
        events.push(format!(
            r#"{{"name":{},"ph":"C","ts":{},"pid":{PID},"tid":{tid},"args":{{"hits":{}}}}}"#,
            json_string(&format!("memo hits ({})", thread.name())),
            micros(trace.end()),
            thread.memo_hits(),
        ));
    }
    let mut out = String::from("{\"traceEvents\":[\n");
    out.push_str(&events.join(",\n"));
    let _ = write!(
        out,
        "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{{\"wall_time_us\":{},\"utilization\":{:.4},\"num_threads\":{}}}}}\n",
        micros(trace.wall_time()),
        trace.utilization(),
        trace.num_threads(),
    );
    out
}
