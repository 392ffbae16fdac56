//! Choosing how many threads the query engine runs on.

use std::sync::atomic::{AtomicBool, Ordering};

/// See [`adopt_calling_thread_when_alone`].
static ADOPT_WHEN_ALONE: AtomicBool = AtomicBool::new(false);

/// Set by the command-line tool, whose commands run once on its main thread: a pool of
/// one worker then adopts the calling thread (weft's `use_current_thread`) instead of
/// starting one. The process has no second thread, so the C allocator stays on its
/// single-threaded path (its locking was most of what one worker cost over the serial
/// engine), and nothing is handed between threads. Not for library callers: an adopted
/// thread stays that pool's worker for good, so its later weft calls (and later pools'
/// `install`s) go through that finished pool.
pub fn adopt_calling_thread_when_alone() {
    ADOPT_WHEN_ALONE.store(true, Ordering::Relaxed);
}

/// Runs `f` on a fresh weft pool of `threads` workers (0: the pool's default size).
/// The engine is created inside `f`, so it runs on that pool.
pub fn install<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R, String> {
    install_traced(threads, false, f).map(|(result, _)| result)
}

/// [`install`] on a pool that records timings when `trace` is set, and returns what it
/// recorded (see `weft::trace`) alongside `f`'s result.
pub fn install_traced<R: Send>(
    threads: usize,
    trace: bool,
    f: impl FnOnce() -> R + Send,
) -> Result<(R, Option<weft::trace::Trace>), String> {
    let pool = build(threads, trace)?;
    let result = pool.install(f);
    let recorded = trace.then(|| pool.take_trace());
    // Wait until the workers have exited and every jobserver token is back: dropping the
    // pool does not wait, and the command-line tool exits right after its compilation,
    // which took the tokens its workers still held from the `make` that ran it.
    pool.shutdown();
    Ok((result, recorded))
}

/// A weft pool of `threads` workers (0: the pool's default size), recording timings
/// when `trace` is set.
pub fn build(threads: usize, trace: bool) -> Result<weft::ThreadPool, String> {
    let mut builder = weft::ThreadPoolBuilder::new().trace(trace);
    if threads > 0 {
        builder = builder.num_threads(threads);
    }
    let alone = threads == 1 && ADOPT_WHEN_ALONE.load(Ordering::Relaxed);
    if alone && weft::current_thread_index().is_none() {
        builder = builder.use_current_thread();
    }
    builder
        .build()
        .map_err(|e| format!("cannot start a pool of {threads} threads: {e}"))
}
