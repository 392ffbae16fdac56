//! Recording events into per-worker buffers, and draining them into a [`Trace`].
//!
//! See the module docs of `trace` for the protocol. Under `--cfg loom` tracing is
//! compiled down to a flag that is always off: recording is not a protocol the models
//! explore, and an extra atomic per event site would only grow their state space.

use std::time::{Duration, Instant};

use super::{Mark, MarkKind, Span, SpanKind, ThreadTrace, Trace};
use crate::pool::WorkerThread;
use crate::query::Cycle;
#[cfg(not(loom))]
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::Mutex;

/// Whether tracing is on: one relaxed load to read.
pub(crate) struct TraceFlag {
    #[cfg(not(loom))]
    on: AtomicBool,
}

impl TraceFlag {
    pub(crate) fn new(on: bool) -> Self {
        #[cfg(loom)]
        let _ = on;
        TraceFlag {
            #[cfg(not(loom))]
            on: AtomicBool::new(on),
        }
    }

    /// Relaxed: the flag only decides whether to record, and what is recorded is
    /// published by the buffers' locks.
    #[inline(always)]
    pub(crate) fn is_on(&self) -> bool {
        #[cfg(not(loom))]
        return self.on.load(Ordering::Relaxed);
        #[cfg(loom)]
        return false;
    }

    pub(crate) fn set(&self, on: bool) {
        #[cfg(not(loom))]
        self.on.store(on, Ordering::Relaxed);
        #[cfg(loom)]
        let _ = on;
    }
}

enum Event {
    Begin(u64, SpanKind),
    End(u64),
    Mark(u64, MarkKind),
}

#[derive(Default)]
struct Buffer {
    /// The recording thread's name, taken at its first event.
    name: Option<String>,
    events: Vec<Event>,
    /// Indices in `events` of the `Begin`s not yet ended, outermost first.
    open: Vec<usize>,
    memo_hits: u64,
}

/// One worker slot's buffer, alone on its cache line so that recording never writes a
/// line another worker records into.
#[repr(align(128))]
struct ThreadLog {
    buffer: Mutex<Buffer>,
}

/// A pool's recorder: one buffer per worker slot.
pub(crate) struct Tracer {
    flag: TraceFlag,
    /// Time zero of every timestamp: when the pool was built.
    start: Instant,
    logs: Box<[ThreadLog]>,
    /// Where the next collection's window begins (ns since `start`).
    collected_until: Mutex<u64>,
}

impl Tracer {
    /// A recorder for `slots` worker slots, on or off.
    pub(crate) fn new(slots: usize, on: bool) -> Self {
        // Loom builds never record: no buffers, so no modelled locks either.
        let slots = if cfg!(loom) { 0 } else { slots };
        Tracer {
            flag: TraceFlag::new(on),
            start: Instant::now(),
            logs: (0..slots)
                .map(|_| ThreadLog {
                    buffer: Mutex::new(Buffer::default()),
                })
                .collect(),
            collected_until: Mutex::new(0),
        }
    }

    #[inline(always)]
    pub(crate) fn is_on(&self) -> bool {
        self.flag.is_on()
    }

    /// Opens a span on worker `index`'s lane if tracing is on; it closes when the guard
    /// drops. `kind` is only called when tracing is on.
    #[inline(always)]
    pub(crate) fn span(
        &self,
        index: usize,
        kind: impl FnOnce() -> SpanKind,
    ) -> Option<SpanGuard<'_>> {
        if !self.is_on() {
            return None;
        }
        Some(self.begin(index, kind()))
    }

    /// Records a mark on worker `index`'s lane if tracing is on.
    #[inline(always)]
    pub(crate) fn mark(&self, index: usize, kind: impl FnOnce() -> MarkKind) {
        if self.is_on() {
            self.push_mark(index, kind());
        }
    }

    #[inline(never)]
    fn begin(&self, index: usize, kind: SpanKind) -> SpanGuard<'_> {
        self.record(index, |buffer, now| {
            buffer.open.push(buffer.events.len());
            buffer.events.push(Event::Begin(now, kind));
        });
        SpanGuard {
            tracer: self,
            index,
        }
    }

    #[inline(never)]
    fn end(&self, index: usize) {
        self.record(index, |buffer, now| {
            if buffer.open.pop().is_some() {
                buffer.events.push(Event::End(now));
            }
        });
    }

    /// How many spans are open on worker `index`'s lane (0 when tracing is off).
    pub(crate) fn open_depth(&self, index: usize) -> usize {
        if !self.is_on() {
            return 0;
        }
        self.logs
            .get(index)
            .map_or(0, |log| log.buffer.lock().open.len())
    }

    /// A fiber suspends: closes the spans it opened above `depth` (the resumer's own),
    /// and returns their kinds, outermost first, for [`Tracer::reopen`]. So a lane
    /// shows a suspended fiber's query as not running, and the resumer's spans nest
    /// correctly meanwhile.
    pub(crate) fn suspend_above(&self, index: usize, depth: usize) -> Vec<SpanKind> {
        let mut kinds = Vec::new();
        self.record(index, |buffer, now| {
            while buffer.open.len() > depth {
                let begin = buffer.open.pop().expect("checked above");
                if let Event::Begin(_, kind) = &buffer.events[begin] {
                    kinds.push(kind.clone());
                }
                buffer.events.push(Event::End(now));
            }
        });
        kinds.reverse();
        kinds
    }

    /// A fiber resumes: reopens the spans [`Tracer::suspend_above`] closed.
    pub(crate) fn reopen(&self, index: usize, kinds: Vec<SpanKind>) {
        if kinds.is_empty() {
            return;
        }
        self.record(index, |buffer, now| {
            for kind in kinds {
                buffer.open.push(buffer.events.len());
                buffer.events.push(Event::Begin(now, kind));
            }
        });
    }

    #[inline(never)]
    fn push_mark(&self, index: usize, kind: MarkKind) {
        self.record(index, |buffer, now| {
            buffer.events.push(Event::Mark(now, kind))
        });
    }

    #[inline(never)]
    fn count_hit(&self, index: usize) {
        if let Some(log) = self.logs.get(index) {
            log.buffer.lock().memo_hits += 1;
        }
    }

    /// Runs `f` on slot `index`'s buffer with the current time, read under the lock so
    /// that a collection never drains a later event before an earlier one.
    fn record(&self, index: usize, f: impl FnOnce(&mut Buffer, u64)) {
        let Some(log) = self.logs.get(index) else {
            return;
        };
        let mut buffer = log.buffer.lock();
        if buffer.name.is_none() {
            let name = std::thread::current()
                .name()
                .map_or_else(|| format!("weft-worker-{index}"), str::to_string);
            buffer.name = Some(name);
        }
        let now = self.now();
        f(&mut buffer, now);
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Drains every buffer into a [`Trace`] of the window since the previous call. Spans
    /// still open are closed now in the trace and reopened now in their buffer.
    pub(crate) fn take(&self, num_threads: usize) -> Trace {
        let mut collected_until = self.collected_until.lock();
        let start = *collected_until;
        let mut end = self.now();
        let mut drained = Vec::new();
        for (index, log) in self.logs.iter().enumerate() {
            let mut buffer = log.buffer.lock();
            // Every regular worker gets a lane, even one that has not recorded yet (it
            // may still be starting); a spare only once it has started.
            let name = match &buffer.name {
                Some(name) => name.clone(),
                None if index < num_threads && self.is_on() => format!("weft-worker-{index}"),
                None => continue,
            };
            let now = self.now();
            end = end.max(now);
            let mut events = std::mem::take(&mut buffer.events);
            let mut reopened = Vec::with_capacity(buffer.open.len());
            for &i in &buffer.open {
                if let Event::Begin(_, kind) = &events[i] {
                    reopened.push(Event::Begin(now, kind.clone()));
                }
            }
            events.extend(buffer.open.iter().map(|_| Event::End(now)));
            buffer.open = (0..reopened.len()).collect();
            buffer.events = reopened;
            let memo_hits = std::mem::take(&mut buffer.memo_hits);
            drop(buffer);
            drained.push((index, name, events, memo_hits));
        }
        *collected_until = end;
        let window = Duration::from_nanos(end - start);
        let threads = drained
            .into_iter()
            .map(|(index, name, events, hits)| {
                let (spans, marks) = spans_and_marks(events);
                ThreadTrace::new(index, name, spans, marks, hits, window)
            })
            .collect();
        Trace {
            start: Duration::from_nanos(start),
            end: Duration::from_nanos(end),
            num_threads,
            threads,
        }
    }
}

/// Pairs begins with ends; spans come out ordered by start, enclosing ones first.
fn spans_and_marks(events: Vec<Event>) -> (Vec<Span>, Vec<Mark>) {
    let mut spans = Vec::new();
    let mut marks = Vec::new();
    let mut open: Vec<(u64, SpanKind)> = Vec::new();
    for event in events {
        match event {
            Event::Begin(at, kind) => open.push((at, kind)),
            Event::End(at) => {
                if let Some((start, kind)) = open.pop() {
                    spans.push(Span {
                        start: Duration::from_nanos(start),
                        end: Duration::from_nanos(at.max(start)),
                        depth: open.len(),
                        kind,
                    });
                }
            }
            Event::Mark(at, kind) => marks.push(Mark {
                at: Duration::from_nanos(at),
                kind,
            }),
        }
    }
    spans.sort_by_key(|s| (s.start, s.depth));
    (spans, marks)
}

/// Closes its span when dropped (also when unwinding).
pub(crate) struct SpanGuard<'a> {
    tracer: &'a Tracer,
    index: usize,
}

impl Drop for SpanGuard<'_> {
    fn drop(&mut self) {
        self.tracer.end(self.index);
    }
}

/// The current worker, if this thread is one and its pool traces.
#[inline(never)]
fn tracing_worker<'a>() -> Option<&'a WorkerThread> {
    // SAFETY: null or this thread's live WorkerThread, which outlives every frame that
    // runs on the thread while it is a worker (the caller's included).
    let worker = unsafe { WorkerThread::current().as_ref() }?;
    worker.registry.trace.is_on().then_some(worker)
}

/// A query site's span: `engine_flag` is the engine's copy of the pool's flag (one
/// relaxed load when off); the span goes on the current worker's lane.
#[inline(always)]
pub(crate) fn query_span<'a>(
    engine_flag: &TraceFlag,
    kind: impl FnOnce() -> SpanKind,
) -> Option<SpanGuard<'a>> {
    if !engine_flag.is_on() {
        return None;
    }
    let worker = tracing_worker()?;
    Some(worker.registry.trace.begin(worker.index, kind()))
}

/// Counts a memo hit on the current worker's lane.
#[inline(always)]
pub(crate) fn memo_hit(engine_flag: &TraceFlag) {
    if engine_flag.is_on() {
        count_memo_hit();
    }
}

/// Kept out of line so that the hit path, with tracing off, is a load and a branch.
#[cold]
#[inline(never)]
fn count_memo_hit() {
    if let Some(worker) = tracing_worker() {
        worker.registry.trace.count_hit(worker.index);
    }
}

/// Marks a cycle detected by a wait requested on the current worker.
#[inline(always)]
pub(crate) fn cycle_found(engine_flag: &TraceFlag, cycle: impl FnOnce() -> Option<Cycle>) {
    if engine_flag.is_on() {
        if let Some(worker) = tracing_worker() {
            if let Some(cycle) = cycle() {
                worker
                    .registry
                    .trace
                    .push_mark(worker.index, MarkKind::Cycle(cycle));
            }
        }
    }
}
