//! Timings: what every worker did, when, and why it was not running.
//!
//! A pool built with [`ThreadPoolBuilder::trace(true)`](crate::ThreadPoolBuilder::trace)
//! records, per worker thread:
//!
//! - **intervals** ([`Span`]): jobs run, queries executed (name and key), blocked waits
//!   (the query waited for and the query that waited, a wait on the thread, or
//!   [`blocking`](crate::blocking)), idle sleeps, and jobserver token acquisitions;
//! - **marks** ([`Mark`]): token releases, spare threads woken or started for a blocked
//!   worker, cycles detected;
//! - a count of memo hits.
//!
//! [`ThreadPool::take_trace`](crate::ThreadPool::take_trace) collects them as a [`Trace`],
//! which summarises utilization and blocking and writes a Chrome trace
//! ([`Trace::write_chrome_json`], for Perfetto or `chrome://tracing`) or a
//! self-contained HTML timings page ([`Trace::write_html`]).
//!
//! ```
//! let pool = weft::ThreadPoolBuilder::new().num_threads(2).trace(true).build().unwrap();
//! assert_eq!(pool.install(|| weft::join(|| 20, || 22)), (20, 22));
//! let trace = pool.take_trace();
//! assert_eq!(trace.threads().len(), 2); // one lane per worker
//! assert!(trace.utilization() <= 1.0);
//! let json = trace.to_chrome_json(); // or trace.write_chrome_json("trace.json")
//! assert!(json.starts_with("{\"traceEvents\":["));
//! let page = trace.to_html(); // or trace.write_html("timings.html")
//! assert!(page.contains("<table class=\"summary\">"));
//! ```
//!
//! # Recording protocol
//!
//! Each worker slot of the pool owns one buffer, on its own cache line. Only the worker
//! of that slot records into it (taking the buffer's lock, which is uncontended), so
//! recording writes no memory another worker touches; only collection takes the lock from
//! another thread. An interval is recorded as a begin event and an end event, both
//! timestamped under that lock (so a collection never sees an event older than one it
//! already drained). Intervals nest the way calls do: a query runs inside the job that
//! requested it, a blocked wait inside the query that waited.
//!
//! With tracing off, every event site costs one relaxed load of a flag (the pool's, or
//! for query sites the engine's copy of it taken when [`Engine::run`] starts) and a
//! branch; no event is formatted.
//!
//! [`Engine::run`]: crate::query::Engine::run

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::query::Cycle;

mod chrome;
mod html;
mod record;

pub(crate) use record::{cycle_found, memo_hit, query_span, TraceFlag, Tracer};

/// What a thread was doing during a [`Span`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpanKind {
    /// Running a job taken from a deque or the injector.
    Job,
    /// Executing a query (its `compute`).
    Query {
        /// `Query::NAME`.
        name: &'static str,
        /// The key, as `Debug` text.
        key: String,
    },
    /// Checking a memo's dependencies in a new revision (an incremental engine) to
    /// reuse it without running `compute`, when some dependency must first be brought
    /// up to date (a memo whose dependencies are all current is reused without a span);
    /// a red check ends in a `Query` span.
    Verify {
        /// `Query::NAME`.
        name: &'static str,
        /// The key, as `Debug` text.
        key: String,
    },
    /// Blocked: the worker could not run anything until something else finished.
    Blocked(BlockedOn),
    /// Waiting for a stolen `join` half or a scope's jobs, running other jobs meanwhile
    /// (they nest inside); its own time is spent looking for them.
    Wait,
    /// Asleep for lack of work.
    Idle,
    /// Acquiring a jobserver token (or the implicit one) before running again.
    TokenAcquire,
}

/// Why a worker was blocked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlockedOn {
    /// A query requested an entry that another thread was computing.
    Query {
        /// `Query::NAME` of the query waited for.
        query: &'static str,
        /// Its key, as `Debug` text.
        key: String,
        /// The query that waited (`None` for the root of `Engine::run`).
        waiter: Option<(&'static str, String)>,
    },
    /// A wait that may not switch fibers (during unwinding, or inside
    /// [`blocking`](crate::blocking)) blocked the thread.
    RestrictedWait,
    /// [`blocking`](crate::blocking) was running its closure.
    Blocking,
}

/// The three states a thread lane shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Running a job or a query.
    Running,
    /// In a blocked wait.
    Blocked,
    /// Asleep, looking for work (also while waiting for a stolen job), or waiting for a
    /// token.
    Idle,
}

impl SpanKind {
    /// The state a thread is in while this is its innermost span.
    pub fn state(&self) -> State {
        match self {
            SpanKind::Job | SpanKind::Query { .. } | SpanKind::Verify { .. } => State::Running,
            SpanKind::Blocked(_) => State::Blocked,
            SpanKind::Wait | SpanKind::Idle | SpanKind::TokenAcquire => State::Idle,
        }
    }

    /// A short name: `job`, the query's name, `blocked on NAME`, `idle`, ...
    pub fn label(&self) -> String {
        match self {
            SpanKind::Job => "job".to_string(),
            SpanKind::Query { name, .. } => name.to_string(),
            SpanKind::Verify { name, .. } => format!("verify {name}"),
            SpanKind::Blocked(on) => match on {
                BlockedOn::Query { query, .. } => format!("blocked on {query}"),
                BlockedOn::RestrictedWait => "blocked (wait on the thread)".to_string(),
                BlockedOn::Blocking => "blocked (weft::blocking)".to_string(),
            },
            SpanKind::Wait => "wait".to_string(),
            SpanKind::Idle => "idle".to_string(),
            SpanKind::TokenAcquire => "token acquire".to_string(),
        }
    }

    /// The category: `job`, `query`, `verify`, `blocked`, `wait`, `idle` or `token`.
    pub fn category(&self) -> &'static str {
        match self {
            SpanKind::Job => "job",
            SpanKind::Query { .. } => "query",
            SpanKind::Verify { .. } => "verify",
            SpanKind::Blocked(_) => "blocked",
            SpanKind::Wait => "wait",
            SpanKind::Idle => "idle",
            SpanKind::TokenAcquire => "token",
        }
    }

    /// Details for a hover or a trace viewer: `(field, value)` pairs.
    pub fn details(&self) -> Vec<(&'static str, String)> {
        match self {
            SpanKind::Query { name, key } | SpanKind::Verify { name, key } => {
                vec![("query", name.to_string()), ("key", key.clone())]
            }
            SpanKind::Blocked(BlockedOn::Query { query, key, waiter }) => {
                let mut details = vec![("query", query.to_string()), ("key", key.clone())];
                details.push((
                    "waiter",
                    match waiter {
                        Some((name, key)) => format!("{name}({key})"),
                        None => "the root of Engine::run".to_string(),
                    },
                ));
                details
            }
            _ => Vec::new(),
        }
    }
}

/// One interval of one thread. Times are since the pool was built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// When it began.
    pub start: Duration,
    /// When it ended (for intervals still open at collection: the collection time).
    pub end: Duration,
    /// How many spans of the same thread enclose it.
    pub depth: usize,
    /// What the thread was doing.
    pub kind: SpanKind,
}

impl Span {
    /// `end - start`.
    pub fn duration(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }
}

/// Something that happened at one instant on one thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// When, since the pool was built.
    pub at: Duration,
    /// What.
    pub kind: MarkKind,
}

/// What a [`Mark`] records.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MarkKind {
    /// The worker gave its token back (it is about to sleep or block).
    TokenRelease,
    /// A blocking worker woke this parked spare thread.
    SpareWoken(usize),
    /// A blocking worker started this spare thread.
    SpareStarted(usize),
    /// A wait requested here closed this cycle.
    Cycle(Cycle),
}

impl MarkKind {
    /// A short name for viewers.
    pub fn label(&self) -> String {
        match self {
            MarkKind::TokenRelease => "token release".to_string(),
            MarkKind::SpareWoken(i) => format!("woke spare {i}"),
            MarkKind::SpareStarted(i) => format!("started spare {i}"),
            MarkKind::Cycle(_) => "cycle".to_string(),
        }
    }
}

/// What one thread recorded.
#[derive(Clone, Debug)]
pub struct ThreadTrace {
    index: usize,
    name: String,
    spans: Vec<Span>,
    marks: Vec<Mark>,
    memo_hits: u64,
    window: Duration,
    times: StateTimes,
}

/// Time per [`State`] over a trace's window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct StateTimes {
    running: Duration,
    blocked: Duration,
}

impl ThreadTrace {
    fn new(
        index: usize,
        name: String,
        spans: Vec<Span>,
        marks: Vec<Mark>,
        memo_hits: u64,
        window: Duration,
    ) -> Self {
        let times = state_times(&spans);
        ThreadTrace {
            index,
            name,
            spans,
            marks,
            memo_hits,
            window,
            times,
        }
    }

    /// The worker's index in its pool (spares have indices `>= num_threads`).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its intervals, ordered by start (an enclosing span before the spans it encloses).
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// Its marks, in time order.
    pub fn marks(&self) -> &[Mark] {
        &self.marks
    }

    /// How many requests on this thread found their value already memoized.
    pub fn memo_hits(&self) -> u64 {
        self.memo_hits
    }

    /// Time spent in `state` during the trace's window. A moment counts for the state of
    /// the innermost span open then; moments in no span (searching for work) are idle.
    pub fn time_in(&self, state: State) -> Duration {
        match state {
            State::Running => self.times.running,
            State::Blocked => self.times.blocked,
            State::Idle => self
                .window
                .saturating_sub(self.times.running + self.times.blocked),
        }
    }

    /// Running time over the trace's wall time, from 0 to 1.
    pub fn utilization(&self) -> f64 {
        ratio(self.times.running, self.window)
    }
}

/// Running and blocked time, each moment counted for its innermost span.
fn state_times(spans: &[Span]) -> StateTimes {
    // Self time of a span: its duration minus that of its direct children.
    let mut child_time = vec![Duration::ZERO; spans.len()];
    let mut stack: Vec<usize> = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        while stack.last().is_some_and(|&p| spans[p].depth >= span.depth) {
            stack.pop();
        }
        if let Some(&parent) = stack.last() {
            child_time[parent] += span.duration();
        }
        stack.push(i);
    }
    let mut times = StateTimes::default();
    for (span, children) in spans.iter().zip(child_time) {
        let own = span.duration().saturating_sub(children);
        match span.kind.state() {
            State::Running => times.running += own,
            State::Blocked => times.blocked += own,
            State::Idle => {}
        }
    }
    times
}

fn ratio(part: Duration, whole: Duration) -> f64 {
    if whole.is_zero() {
        0.0
    } else {
        (part.as_secs_f64() / whole.as_secs_f64()).min(1.0)
    }
}

/// Blocked time of one kind of wait, summed over a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedTime {
    /// The query waited for, or `(wait on the thread)` / `(weft::blocking)`.
    pub kind: String,
    /// Total time blocked, over all threads.
    pub total: Duration,
    /// How many waits.
    pub waits: usize,
}

/// Everything a pool recorded between two collections.
///
/// In-flight intervals are closed at the moment of collection (a sleeping worker's
/// idle span ends there) and continue, from that moment, in the next trace.
#[derive(Clone, Debug)]
pub struct Trace {
    start: Duration,
    end: Duration,
    num_threads: usize,
    threads: Vec<ThreadTrace>,
}

impl Trace {
    /// When the window began: the pool's start, or the previous collection.
    pub fn start(&self) -> Duration {
        self.start
    }

    /// When it was collected.
    pub fn end(&self) -> Duration {
        self.end
    }

    /// `end - start`.
    pub fn wall_time(&self) -> Duration {
        self.end.saturating_sub(self.start)
    }

    /// The pool's `num_threads` (the parallelism utilization is measured against).
    pub fn num_threads(&self) -> usize {
        self.num_threads
    }

    /// Every regular worker, by index, then every spare thread that started (none when
    /// tracing is off).
    pub fn threads(&self) -> &[ThreadTrace] {
        &self.threads
    }

    /// True if no thread recorded anything (tracing off, or nothing ran).
    pub fn is_empty(&self) -> bool {
        self.threads
            .iter()
            .all(|t| t.spans.is_empty() && t.marks.is_empty() && t.memo_hits == 0)
    }

    /// Running time of all threads over `num_threads` times the wall time, from 0 to 1.
    pub fn utilization(&self) -> f64 {
        let running: Duration = self.threads.iter().map(|t| t.time_in(State::Running)).sum();
        ratio(running, self.wall_time() * self.num_threads.max(1) as u32)
    }

    /// Memo hits of all threads.
    pub fn memo_hits(&self) -> u64 {
        self.threads.iter().map(|t| t.memo_hits).sum()
    }

    /// Blocked time per kind of wait (per query waited for), most first.
    ///
    /// A wait on a query whose fiber suspends shows on its lane as several pieces (the
    /// thread runs other work in between); it counts here from its start to its end,
    /// as the waiting query saw it. (All the pieces of one thread waiting on one key
    /// belong to waits that overlap in time: once the key is done, later requests hit.)
    pub fn blocked_by_query(&self) -> Vec<BlockedTime> {
        let mut by_kind: HashMap<String, (Duration, usize)> = HashMap::new();
        for thread in &self.threads {
            // Per awaited key on this thread: (first start, last end).
            let mut query_waits: HashMap<&SpanKind, (Duration, Duration)> = HashMap::new();
            for span in &thread.spans {
                let SpanKind::Blocked(on) = &span.kind else {
                    continue;
                };
                let kind = match on {
                    BlockedOn::Query { .. } => {
                        let wait = query_waits
                            .entry(&span.kind)
                            .or_insert((span.start, span.end));
                        wait.0 = wait.0.min(span.start);
                        wait.1 = wait.1.max(span.end);
                        continue;
                    }
                    BlockedOn::RestrictedWait => "(wait on the thread)".to_string(),
                    BlockedOn::Blocking => "(weft::blocking)".to_string(),
                };
                let entry = by_kind.entry(kind).or_default();
                entry.0 += span.duration();
                entry.1 += 1;
            }
            for (kind, (start, end)) in query_waits {
                let SpanKind::Blocked(BlockedOn::Query { query, .. }) = kind else {
                    unreachable!("only query waits are collected")
                };
                let entry = by_kind.entry(query.to_string()).or_default();
                entry.0 += end.saturating_sub(start);
                entry.1 += 1;
            }
        }
        let mut rows: Vec<BlockedTime> = by_kind
            .into_iter()
            .map(|(kind, (total, waits))| BlockedTime { kind, total, waits })
            .collect();
        rows.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.kind.cmp(&b.kind)));
        rows
    }

    /// The `n` longest blocked waits, longest first, with the thread that waited.
    pub fn longest_blocked_waits(&self, n: usize) -> Vec<(&ThreadTrace, &Span)> {
        let mut waits: Vec<(&ThreadTrace, &Span)> = self
            .threads
            .iter()
            .flat_map(|t| t.spans.iter().map(move |s| (t, s)))
            .filter(|(_, s)| s.kind.state() == State::Blocked)
            .collect();
        waits.sort_by_key(|w| std::cmp::Reverse(w.1.duration()));
        waits.truncate(n);
        waits
    }

    /// The cycles detected, in time order.
    pub fn cycles(&self) -> Vec<&Cycle> {
        let mut cycles: Vec<(Duration, &Cycle)> = self
            .threads
            .iter()
            .flat_map(|t| &t.marks)
            .filter_map(|m| match &m.kind {
                MarkKind::Cycle(cycle) => Some((m.at, cycle)),
                _ => None,
            })
            .collect();
        cycles.sort_by_key(|(at, _)| *at);
        cycles.into_iter().map(|(_, c)| c).collect()
    }

    /// The trace in the Chrome trace event format (JSON).
    pub fn to_chrome_json(&self) -> String {
        chrome::render(self)
    }

    /// Writes [`Trace::to_chrome_json`] to `path`: open it in Perfetto
    /// (<https://ui.perfetto.dev>) or `chrome://tracing`.
    pub fn write_chrome_json(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.to_chrome_json())
    }

    /// The timings page: a self-contained HTML document (no network, no script needed).
    pub fn to_html(&self) -> String {
        html::render(self)
    }

    /// Writes [`Trace::to_html`] to `path`.
    pub fn write_html(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.to_html())
    }
}

impl fmt::Display for Trace {
    /// A plain-text summary: wall time, utilization, per-thread states.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wall time {:.3} ms, utilization {:.1}% of {} threads, {} memo hits",
            ms(self.wall_time()),
            100.0 * self.utilization(),
            self.num_threads,
            self.memo_hits()
        )?;
        for t in &self.threads {
            writeln!(
                f,
                "  {:<20} running {:>9.3} ms  blocked {:>9.3} ms  idle {:>9.3} ms  ({:.1}%)",
                t.name,
                ms(t.time_in(State::Running)),
                ms(t.time_in(State::Blocked)),
                ms(t.time_in(State::Idle)),
                100.0 * t.utilization()
            )?;
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u64, end: u64, depth: usize, kind: SpanKind) -> Span {
        Span {
            start: Duration::from_micros(start),
            end: Duration::from_micros(end),
            depth,
            kind,
        }
    }

    #[test]
    fn state_times_count_each_moment_for_the_innermost_span() {
        let spans = vec![
            span(0, 100, 0, SpanKind::Job),
            span(10, 50, 1, SpanKind::Blocked(BlockedOn::RestrictedWait)),
            span(20, 30, 2, SpanKind::Job),
            span(60, 70, 1, SpanKind::Idle),
        ];
        let times = state_times(&spans);
        assert_eq!(times.running, Duration::from_micros(100 - 40 - 10 + 10));
        assert_eq!(times.blocked, Duration::from_micros(30));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
    }
}
