//! Per-join cost probe for callgrind (driven by `benches/callgrind_join.sh`).
//!
//! Usage: `join_cost weft|weft-busy|rayon N [THREADS]` (THREADS defaults to 1). Builds a
//! pool of that library and size, computes fib(N) with a `join` at every call (no
//! cutoff), and prints `lib=.. threads=.. n=.. fib=.. joins=..`. The number of joins is
//! fib(N + 1) - 1, counted separately so the timed path has no counter in it.
//! `weft-busy` runs fib on a pool of at least 2 workers whose other workers are held in
//! user code meanwhile: the cost of a multi-thread pool's `join` whose second half
//! nobody takes (a one-thread pool's `join` just runs both halves in order).
//!
//! Instructions per join = (Ir(N2) - Ir(N1)) / (joins(N2) - joins(N1)): pool start-up
//! and shutdown cancel out in the difference.
//!
//! Run by hand (any `cargo bench` argument after the name is ignored by this binary):
//! `cargo bench --bench join_cost -- weft 20`.

use std::hint::black_box;
use std::process::ExitCode;

#[path = "common/workloads.rs"]
mod workloads;
use workloads::*;

/// Joins made by `fib_*(n)`: one per call with n >= 2.
fn joins(n: u64) -> u64 {
    let (mut calls_below, mut calls) = (0u64, 0u64); // joins(n - 1), joins(n)
    for k in 0..=n {
        let next = if k < 2 { 0 } else { calls + calls_below + 1 };
        (calls_below, calls) = (calls, next);
    }
    calls
}

/// Runs `work` while `others` other workers of the current pool wait in user code: each
/// is given a job that blocks on a channel until `work` is done (it starts only once all
/// of them hold theirs).
fn hold_other_workers(others: usize, work: impl FnOnce() -> u64 + Send) -> u64 {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let holding = std::sync::atomic::AtomicUsize::new(0);
    weft::scope(|s| {
        for _ in 0..others {
            s.spawn(|_| {
                holding.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // Hold this worker until `work` is done (the sender drops then).
                let _ = released.lock().unwrap().recv();
            });
        }
        while holding.load(std::sync::atomic::Ordering::SeqCst) < others {
            std::thread::yield_now();
        }
        let result = work();
        drop(release);
        result
    })
}

fn usage() -> ExitCode {
    eprintln!("usage: join_cost weft|weft-busy|rayon N [THREADS]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let Some(args) = driver_args() else {
        // Run by a plain `cargo bench`: nothing to measure, stay quiet.
        return ExitCode::SUCCESS;
    };
    let (lib, n, threads) = match args.as_slice() {
        [lib, n] => (lib.as_str(), n.parse::<u64>(), Ok(1)),
        [lib, n, t] => (lib.as_str(), n.parse::<u64>(), t.parse::<usize>()),
        _ => return usage(),
    };
    let (Ok(n), Ok(threads)) = (n, threads) else {
        return usage();
    };
    let fib = match lib {
        "weft" => {
            let pool = weft::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| fib_weft(black_box(n)))
        }
        "weft-busy" => {
            // THREADS workers, all but this one held in user code for the whole run (a
            // raw channel, no weft call): every join of fib keeps its second half
            // private, as on a busy pool, and valgrind's serialised scheduler counts no
            // idle spinning.
            let pool = weft::ThreadPoolBuilder::new()
                .num_threads(threads.max(2))
                .build()
                .unwrap();
            pool.install(|| hold_other_workers(threads.max(2) - 1, || fib_weft(black_box(n))))
        }
        "rayon" => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| fib_rayon(black_box(n)))
        }
        _ => return usage(),
    };
    println!(
        "lib={lib} threads={threads} n={n} fib={fib} joins={}",
        joins(n)
    );
    ExitCode::SUCCESS
}
