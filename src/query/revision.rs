//! Incremental recomputation: revisions, what each query read, and red-green checks.
//!
//! An engine made with [`Engine::incremental`](super::Engine::incremental) starts at
//! revision 0 and moves to the next revision at the first
//! [`Engine::set_input`](super::Engine::set_input) after a run. Every memo then carries:
//!
//! - the revision it was last **verified** in and the one its value last **changed**
//!   in (both in its state word, see `table::state`: a hit is still one load and a
//!   compare, and checking a dependency one load), and
//! - its **dependencies**: the `(query type, slot id)` of every request its compute
//!   made, in the order made (a [`Dep`] is 8 bytes; see `deps.rs` for how lists are
//!   recorded and stored).
//!
//! A request in a later revision finds the memo stale. If every dependency is already
//! current and unchanged since the memo's verification (the common case: earlier
//! requests brought them up to date), the memo is made current with one CAS from the
//! stale state it loaded, without a claim, a job or any user code (`MemoTable::
//! try_green`). Otherwise the request claims it like a new key (one CAS on the state
//! word: exactly one requester refreshes it, the others wait through the wait graph as
//! for any query in progress). The claimer brings each dependency up
//! to date in order (recursively, through the same request path) and stops at the first
//! that changed after the memo's verification: then the memo is **red** and `compute`
//! runs again; if none did, it is **green** and only its verified revision moves.
//! Checking in order matters: a dependency is checked only if every one before it is
//! unchanged, so it is one the query would request again, and checking it runs nothing
//! a fresh engine would not. A re-executed value equal to the old one (by
//! [`Query::same`](super::Query::same); errors by their report) keeps the old "changed"
//! revision (**early cutoff**), so its dependents stay green.
//!
//! A batch engine (`Engine::new()`, `Engine::serial()`) records nothing: every memo is
//! verified at revision 0 for good, and the request path never touches this module's
//! per-slot data.

pub(crate) use super::deps::Dep;
use super::deps::Deps;
use super::error::QueryError;
use crate::sync::atomic::{AtomicU64, Ordering};

/// A revision number. Inputs set before the first run are at revision 0.
pub(crate) type Revision = u64;

/// The most revisions an engine can have: the state word keeps revisions in 30 bits
/// (see `table::state`), about a billion input changes.
pub(crate) const MAX_REVISION: Revision = (1 << super::table::state::REVISION_BITS) - 1;

/// "Changed after any verification": what a dependency that could not be brought up to
/// date (a deadlock) reports, so that its dependent re-executes.
pub(crate) const CHANGED_NOW: Revision = Revision::MAX;

/// Counts of what incremental engines did since the current revision began (see
/// [`Engine::stats`](super::Engine::stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// The current revision: 0 until an input changes after a run, then one more per
    /// batch of `set_input` calls between runs.
    pub revision: u64,
    /// Queries whose `compute` ran (first executions and re-executions).
    pub executed: u64,
    /// Memos from an older revision reused without running `compute`: every
    /// dependency was unchanged ("green").
    pub verified: u64,
    /// Re-executions whose result equalled the old one, so the memo kept its old
    /// "changed" revision and its dependents could stay green ("early cutoff").
    pub backdated: u64,
}

/// The counters behind [`Stats`] (incremental engines only), in shards on their own
/// cache lines, one per worker index (modulo), so that workers do not write one line.
pub(crate) struct Counters {
    shards: [CounterShard; COUNTER_SHARDS],
}

const COUNTER_SHARDS: usize = if cfg!(loom) { 1 } else { 16 };

#[derive(Default)]
#[repr(align(64))]
struct CounterShard {
    executed: AtomicU64,
    verified: AtomicU64,
    backdated: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            shards: std::array::from_fn(|_| CounterShard::default()),
        }
    }
}

/// One of the events [`Counters`] counts.
#[derive(Clone, Copy)]
pub(crate) enum Event {
    Executed,
    Verified,
    Backdated,
}

impl Counters {
    /// Counts `event` in shard `shard` (modulo the shard count).
    pub(crate) fn count(&self, event: Event, shard: usize) {
        let shard = &self.shards[shard % COUNTER_SHARDS];
        let counter = match event {
            Event::Executed => &shard.executed,
            Event::Verified => &shard.verified,
            Event::Backdated => &shard.backdated,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, revision: Revision) -> Stats {
        let sum = |f: fn(&CounterShard) -> &AtomicU64| {
            self.shards
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .sum()
        };
        Stats {
            revision,
            executed: sum(|s| &s.executed),
            verified: sum(|s| &s.verified),
            backdated: sum(|s| &s.backdated),
        }
    }

    pub(crate) fn reset(&mut self) {
        *self = Counters::default();
    }
}

/// Whether a re-executed result may keep the old memo's "changed" revision: both values
/// and `same` says so, or both errors reporting the same thing.
pub(crate) fn unchanged<V>(
    old: Result<&V, &QueryError>,
    new: Result<&V, &QueryError>,
    same: impl FnOnce(&V, &V) -> bool,
) -> bool {
    match (old, new) {
        (Ok(old), Ok(new)) => same(old, new),
        (Err(old), Err(new)) => old == new,
        _ => false,
    }
}

/// The outcome of checking a stale memo's dependencies.
pub(crate) enum Verdict {
    /// No dependency changed: reuse the memo.
    Green,
    /// A dependency changed: run `compute` again.
    Red,
}

/// Checks `deps` in order: `changed_at(dep)` brings one up to date and returns the
/// revision it last changed in (the engines also record the dependency there, and
/// unwind if the check found the memo in a cycle). Stops at the first that changed
/// after `verified_at`.
pub(crate) fn check_deps(
    deps: Deps<'_>,
    verified_at: Revision,
    mut changed_at: impl FnMut(Dep) -> Revision,
) -> Verdict {
    for dep in deps.iter() {
        if changed_at(dep) > verified_at {
            return Verdict::Red;
        }
    }
    Verdict::Green
}

/// An engine's revision state: whether it records dependencies at all, the current
/// revision, and what happened in it.
pub(crate) struct Revisions {
    /// Made with `Engine::incremental`: queries record what they read.
    pub(crate) incremental: bool,
    /// The current revision (changes only under `&mut`, between runs).
    pub(crate) now: Revision,
    /// A run started in the current revision: the next input change starts a new one.
    ran: crate::sync::atomic::AtomicBool,
    pub(crate) counters: Counters,
}

impl Revisions {
    pub(crate) fn new() -> Self {
        Revisions {
            incremental: false,
            now: 0,
            ran: crate::sync::atomic::AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    /// Makes the engine incremental (before its first run).
    pub(crate) fn make_incremental(&mut self) {
        assert!(
            !self.ran.load(Ordering::Relaxed),
            "weft: `incremental()` is a choice made when the engine is created, before its first run"
        );
        self.incremental = true;
    }

    /// A run starts.
    pub(crate) fn run_started(&self) {
        if !self.ran.load(Ordering::Relaxed) {
            self.ran.store(true, Ordering::Relaxed);
        }
    }

    /// An input is about to change; `read_before` says whether its key had a slot (a
    /// run may have read it). Returns the revision the change belongs to in an
    /// incremental engine, `None` in a batch one.
    pub(crate) fn input_changes(
        &mut self,
        read_before: bool,
        what: impl FnOnce() -> String,
    ) -> Option<Revision> {
        let ran = self.ran.load(Ordering::Relaxed);
        if !self.incremental {
            assert!(
                !(ran && read_before),
                "weft: `set_input` changed `{}` after a run that may have read it, but this \
                 engine records nothing to recompute from; make it with \
                 `Engine::new().incremental()` (or `Engine::serial().incremental()`)",
                what()
            );
            return None;
        }
        if ran {
            assert!(
                self.now < MAX_REVISION,
                "weft: the engine ran out of revisions"
            );
            self.now += 1;
            self.ran.store(false, Ordering::Relaxed);
            self.counters.reset();
        }
        Some(self.now)
    }

    /// Counts `event` (incremental engines only) in the counter shard `shard()` picks:
    /// the counting worker's own, so that workers do not write one line.
    #[inline]
    pub(crate) fn count(&self, event: Event, shard: impl FnOnce() -> usize) {
        if self.incremental {
            self.counters.count(event, shard());
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot(self.now)
    }
}
