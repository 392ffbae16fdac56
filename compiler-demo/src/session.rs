//! A check session: one incremental engine kept across edits of a program, which is
//! what `check --watch` runs on.
//!
//! [`Session::new`] loads a program into an incremental engine (`weft`'s
//! `Engine::incremental`). [`Session::update`] takes the program as it is now and sets
//! only the inputs that differ: the file list when a path was added, removed or
//! renamed, and the text of each file whose contents changed. [`Session::check`] then
//! runs the same queries as `check` does: the engine re-executes only the queries that
//! read something an edit changed, and a re-executed query whose value is equal to its
//! old one stops the change from spreading further (early cutoff, see `queries.rs`).
//! The output is the same, byte for byte, as a fresh `check` of the current files at
//! any thread count (`tests/incremental.rs` holds it to that); [`CheckReport`] adds what
//! the check cost.
//!
//! File ids are indices in the sorted file list, so adding or removing a file gives
//! every later file a new id: their queries run again, correctly, as for new files.

use crate::driver::{self, Command, Mode, Outcome};
use crate::engine::Engine;
use crate::queries as q;
use crate::source::{FileId, SourceMap};
use std::time::{Duration, Instant};
use weft::query::Stats;

/// A program being edited, and the incremental engine that checks it.
pub struct Session {
    engine: Engine,
    /// The pool a parallel engine runs on (`None` for the serial engine).
    pool: Option<weft::ThreadPool>,
    /// The program as of the last [`Session::update`], which diagnostics are rendered
    /// against.
    sources: SourceMap,
    /// Checks run so far.
    checks: u64,
}

/// What one [`Session::check`] printed and what it cost.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Exactly what `check` prints for the current files, and its exit code.
    pub outcome: Outcome,
    /// What the engine did in this check: queries executed, memos reused as they were
    /// (verified), re-executions whose value did not change (cut off early).
    pub stats: Stats,
    /// Wall time of the check (rendering included).
    pub elapsed: Duration,
    /// The session's first check (everything executes).
    pub first: bool,
}

impl CheckReport {
    /// One line saying what the check cost, e.g. `re-checked in 12.3 ms: 57 queries
    /// executed, 1,204 reused (verified), 3 cut off early`.
    pub fn summary(&self) -> String {
        let s = &self.stats;
        let executed = format!(
            "{} {} executed",
            thousands(s.executed),
            if s.executed == 1 { "query" } else { "queries" }
        );
        if self.first {
            format!("checked in {}: {executed}", duration_text(self.elapsed))
        } else {
            format!(
                "re-checked in {}: {executed}, {} reused (verified), {} cut off early",
                duration_text(self.elapsed),
                thousands(s.verified),
                thousands(s.backdated)
            )
        }
    }
}

impl Session {
    /// A session on `sources`, checked with `mode`'s engine made incremental. Fails
    /// only when the pool cannot be started.
    pub fn new(sources: SourceMap, mode: Mode) -> Result<Session, String> {
        let (mut engine, pool) = match mode {
            Mode::Serial => (Engine::serial().incremental(), None),
            Mode::Parallel(threads) => (
                Engine::new().incremental(),
                Some(crate::pool::build(threads, false)?),
            ),
        };
        driver::set_inputs(&mut engine, &sources, false);
        Ok(Session {
            engine,
            pool,
            sources,
            checks: 0,
        })
    }

    /// Ends the session just before the process exits: waits until the pool's workers
    /// have exited and every jobserver token they held is back, and leaves the engine's
    /// memory to the operating system (freeing a large program's memo tables is a
    /// serial tail; see `driver::leak_engine_at_exit`).
    pub fn end_before_exit(mut self) {
        if let Some(pool) = self.pool.take() {
            pool.shutdown();
        }
        std::mem::forget(self);
    }

    /// The program as of the last update.
    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    /// Makes `sources` the current program, setting the inputs that differ from the
    /// last one's. Returns whether any did (if not, a check would print the same as the
    /// last one and execute nothing).
    pub fn update(&mut self, sources: SourceMap) -> bool {
        let old = &self.sources.files;
        let new = &sources.files;
        let mut changed = false;
        let paths_changed =
            old.len() != new.len() || old.iter().zip(new).any(|(a, b)| a.path != b.path);
        if paths_changed {
            self.engine
                .set_input::<q::FileList>((), driver::file_list(&sources));
            self.engine
                .set_input::<q::FileSizes>((), driver::file_sizes(&sources));
            changed = true;
        }
        for (i, file) in new.iter().enumerate() {
            // Compared by contents: a file saved unchanged sets nothing.
            if old.get(i).map(|f| &f.text) != Some(&file.text) {
                self.engine
                    .set_input::<q::SourceText>(FileId(i as u32), file.text.clone());
                changed = true;
            }
        }
        self.sources = sources;
        changed
    }

    /// Checks the current program.
    pub fn check(&mut self) -> CheckReport {
        let before = self.engine.stats();
        let started = Instant::now();
        let engine = &self.engine;
        let compiled = match &self.pool {
            Some(pool) => pool.install(|| driver::compile_on(engine, false)),
            None => driver::compile_on(engine, false),
        };
        let outcome = match compiled {
            Ok((diags, program)) => driver::finish(&self.sources, &Command::Check, &diags, program),
            Err(e) => Outcome::usage(e),
        };
        let elapsed = started.elapsed();
        self.checks += 1;
        CheckReport {
            outcome,
            stats: stats_since(before, self.engine.stats()),
            elapsed,
            first: self.checks == 1,
        }
    }
}

/// What the engine did between two readings of its counters. The counters restart with
/// each revision, so a reading from an older revision counts from zero.
fn stats_since(before: Stats, after: Stats) -> Stats {
    if before.revision != after.revision {
        return after;
    }
    Stats {
        revision: after.revision,
        executed: after.executed.saturating_sub(before.executed),
        verified: after.verified.saturating_sub(before.verified),
        backdated: after.backdated.saturating_sub(before.backdated),
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `12.3 ms` below a second, `1.23 s` from there.
fn duration_text(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn durations_read_in_milliseconds_then_seconds() {
        assert_eq!(duration_text(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(duration_text(Duration::from_millis(1_234)), "1.23 s");
    }

    #[test]
    fn stats_of_a_new_revision_count_from_zero() {
        let at = |revision, executed| Stats {
            revision,
            executed,
            verified: 0,
            backdated: 0,
        };
        assert_eq!(stats_since(at(1, 5), at(1, 7)).executed, 2);
        assert_eq!(stats_since(at(1, 5), at(2, 3)).executed, 3);
    }
}
