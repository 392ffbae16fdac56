//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use weft::query::{Cx, Engine, QueryError};
use weft::{ThreadPool, ThreadPoolBuilder};

/// Runs `f` on its own thread; fails the test if it does not finish in `secs` seconds,
/// so a hang becomes a failure instead of a stalled run.
pub fn watchdog<R: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(f));
        let _ = tx.send(outcome);
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("{what}: hung for {secs} s"),
    }
}

/// A pool of `n` threads.
pub fn pool(n: usize) -> ThreadPool {
    ThreadPoolBuilder::new().num_threads(n).build().unwrap()
}

/// An engine to test and the pool it runs on: the serial engine (no pool), then the
/// parallel one on a pool of each of `threads`.
pub fn engines(threads: &[usize]) -> Vec<(String, Option<ThreadPool>, Engine)> {
    let mut all = vec![("serial".to_string(), None, Engine::serial())];
    for &n in threads {
        all.push((format!("{n} thread(s)"), Some(pool(n)), Engine::new()));
    }
    all
}

/// `engine.run(f)`, inside `pool` if there is one.
pub fn run_on<R: Send>(
    pool: &Option<ThreadPool>,
    engine: &Engine,
    f: impl FnOnce(&Cx<'_>) -> R + Send,
) -> Result<R, QueryError> {
    match pool {
        Some(pool) => pool.install(|| engine.run(f)),
        None => engine.run(f),
    }
}
