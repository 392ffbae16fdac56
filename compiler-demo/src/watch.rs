//! `check DIR --watch`: check, then check again whenever a file under DIR changes, on
//! one incremental engine (`compiler_demo::session`), until Ctrl-C.
//!
//! The loop is thin on purpose; what it decides is tested through the binary
//! (`tests/watch.rs`), and what the session does is tested directly
//! (`tests/incremental.rs`):
//!
//! 1. Watch DIR (recursively) first, so an edit made during the first check is seen.
//! 2. Load and check; print the diagnostics as `check` does, or `no errors`, then a
//!    line saying what the check cost.
//! 3. Wait for an event that may change a file (our own reads of the files are
//!    events too, and are ignored), then collect further events until [`DEBOUNCE`]
//!    passes, since one save is several events.
//! 4. Load DIR again. A load error (a file that vanished mid-read, no `main.wd`) is
//!    printed and the session keeps the program it had; otherwise the session takes the
//!    new program and, if a file's contents or the file list changed, checks it as in
//!    step 2. Back to step 3.
//!
//! Everything is printed on stderr, in order, as the diagnostics are; stdout stays
//! empty, as for `check`.

use crate::interrupt;
use compiler_demo::driver::{load, Mode, EXIT_USAGE};
use compiler_demo::session::{CheckReport, Session};
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long after the first event of a change further events are collected.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// How often the loop looks at the Ctrl-C flag while no event comes.
pub const POLL: Duration = Duration::from_millis(100);

/// What ended a wait for a change.
enum Wake {
    Changed,
    Interrupted,
    /// The watcher stopped sending (it cannot go on watching).
    WatcherGone,
}

/// Runs `check DIR --watch` and returns the exit code: 0 after Ctrl-C, 2 when DIR
/// cannot be watched or loaded at the start.
pub fn run(dir: &Path, mode: Mode) -> i32 {
    let (events, receiver) = mpsc::channel();
    let watcher = notify::recommended_watcher(move |event| {
        // The loop has ended when the receiver is gone; nothing to tell then.
        let _ = events.send(event);
    });
    let mut watcher = match watcher {
        Ok(watcher) => watcher,
        Err(e) => return usage(&format!("cannot watch `{}`: {e}", dir.display())),
    };
    if let Err(e) = watcher.watch(dir, RecursiveMode::Recursive) {
        return usage(&format!("cannot watch `{}`: {e}", dir.display()));
    }
    let sources = match load(dir) {
        Ok(sources) => sources,
        Err(e) => return usage(&e),
    };
    let mut session = match Session::new(sources, mode) {
        Ok(session) => session,
        Err(e) => return usage(&e),
    };
    // Before the first check, so that a Ctrl-C during it exits as cleanly.
    if let Err(e) = interrupt::install() {
        return usage(&e);
    }
    print_report(&session.check());
    say(&format!(
        "watching `{}` for changes; press Ctrl-C to stop",
        dir.display()
    ));
    let code = loop {
        match wait_for_change(&receiver) {
            Wake::Changed => {}
            Wake::Interrupted => break 0,
            Wake::WatcherGone => {
                say(&format!("error: stopped watching `{}`", dir.display()));
                break EXIT_USAGE;
            }
        }
        match load(dir) {
            Ok(sources) => {
                if session.update(sources) {
                    print_report(&session.check());
                }
            }
            Err(e) => say(&format!("error: {e}")),
        }
    };
    // The process exits next: every jobserver token back, the engine's memory left to
    // the operating system, as a one-shot check does.
    session.end_before_exit();
    code
}

/// Waits for an event that may have changed a file, then for the rest of its burst.
fn wait_for_change(receiver: &Receiver<notify::Result<Event>>) -> Wake {
    loop {
        if interrupt::requested() {
            return Wake::Interrupted;
        }
        match receiver.recv_timeout(POLL) {
            Ok(event) if may_change_files(&event) => break,
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Wake::WatcherGone,
        }
    }
    let deadline = Instant::now() + DEBOUNCE;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match receiver.recv_timeout(left) {
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => return Wake::WatcherGone,
        }
    }
    if interrupt::requested() {
        Wake::Interrupted
    } else {
        Wake::Changed
    }
}

/// Everything but reading: opening and closing a file unwritten (which every load of
/// the program does) changes nothing. An error from the watcher (events lost, say)
/// may hide a change, so it counts as one.
fn may_change_files(event: &notify::Result<Event>) -> bool {
    match event {
        Ok(event) => match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        },
        Err(_) => true,
    }
}

/// Prints what a check printed, `no errors` when that is nothing, and its cost.
fn print_report(report: &CheckReport) {
    let outcome = &report.outcome;
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    let mut text = outcome.stderr.clone();
    if outcome.code == 0 && text.is_empty() {
        text.push_str("no errors\n");
    }
    text.push_str(&report.summary());
    text.push('\n');
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// One line on stderr; a closed stderr is no reason to stop.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Prints a usage or I/O error and returns its exit code.
fn usage(message: &str) -> i32 {
    say(&format!("error: {message}"));
    EXIT_USAGE
}
