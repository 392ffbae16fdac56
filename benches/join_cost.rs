//! Per-join cost probe for callgrind (driven by `benches/callgrind_join.sh`).
//!
//! Usage: `join_cost weft|rayon N [THREADS]` (THREADS defaults to 1). Builds a pool of
//! that library and size, computes fib(N) with a `join` at every call (no cutoff), and
//! prints `lib=.. threads=.. n=.. fib=.. joins=..`. The number of joins is
//! fib(N + 1) - 1, counted separately so the timed path has no counter in it.
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

fn usage() -> ExitCode {
    eprintln!("usage: join_cost weft|rayon N [THREADS]");
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
