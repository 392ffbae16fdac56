//! How soon an idle worker starts a `join` half (issue 14): on a 2-thread pool, worker
//! A calls `join(first, second)` where `first` spins until `second` has started; `second`
//! can then only run on worker B. The latency is the time from just before the `join`
//! to the moment `second` starts on B, over many trials, for B in three states:
//!
//! - `searching`: B has just finished a job and is looking for work (its spin phase);
//! - `asleep`: B has been idle for 20 ms (while A computed) and sleeps in the idle
//!   list: the latency is mostly the operating system's wake-up of an idle core;
//! - `busy 200us`: B is running a job for another 200 us, then looks for work (the
//!   latency then counts from the moment B is free, not from the `join`);
//! - `deep, busy`: as `busy 200us`, with the `join` nested two joins deep, so its second
//!   half is neither pushed nor published but kept private: B must snatch it (see
//!   `src/pool/snatch.rs`) after taking the two outer halves.
//!
//! Prints percentiles (microseconds) per state. A trial whose second half is not taken
//! within 1 s is counted as missed (the first half gives up; `join` then runs the
//! second half itself).
//!
//! Run: `cargo bench --bench join_latency` (`-- --trials N`, default 2,000 per state).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Spins until `flag` is set or `limit` has passed; true if it was set.
fn spin_until(flag: &AtomicBool, limit: Duration) -> bool {
    let start = Instant::now();
    while !flag.load(Ordering::Acquire) {
        if start.elapsed() > limit {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// Busy-waits for `d` (no weft call, no system call).
fn busy_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Searching,
    Asleep,
    Busy,
    DeepBusy,
}

impl State {
    fn label(self) -> &'static str {
        match self {
            State::Searching => "searching",
            State::Asleep => "asleep",
            State::Busy => "busy 200us",
            State::DeepBusy => "deep, busy",
        }
    }
}

/// One trial: the latency in nanoseconds, or `None` if the half was not taken.
fn trial(pool: &weft::ThreadPool, state: State, epoch: Instant) -> Option<u64> {
    let started = AtomicBool::new(false);
    let started_at = AtomicU64::new(0);
    let free_at = AtomicU64::new(0);
    let b_running = AtomicBool::new(false);
    let since = |t: Instant| t.duration_since(epoch).as_nanos() as u64;
    pool.install(|| {
        match state {
            State::Searching => {
                // Give B a job and wait for it to end: B then searches for a moment.
                weft::join(
                    || spin_until(&b_running, Duration::from_secs(1)),
                    || {
                        b_running.store(true, Ordering::Release);
                    },
                );
            }
            // Computing, not sleeping: a worker that sleeps in the OS and then wakes B
            // may find B placed on its own core, waiting for the next scheduler tick.
            State::Asleep => busy_for(Duration::from_millis(20)),
            State::Busy | State::DeepBusy => {
                // B runs a 200 us job (spawned: this worker does not wait for it).
                let (free_at, b_running) = (&free_at, &b_running);
                weft::scope(|s| {
                    s.spawn(move |_| {
                        b_running.store(true, Ordering::Release);
                        busy_for(Duration::from_micros(200));
                        free_at.store(since(Instant::now()), Ordering::Release);
                    });
                    spin_until(b_running, Duration::from_secs(1));
                    if state == State::DeepBusy {
                        weft::join(
                            || weft::join(|| measure(&started, &started_at, &since), || ()),
                            || (),
                        );
                    } else {
                        measure(&started, &started_at, &since);
                    }
                });
                let (t, free) = (
                    started_at.load(Ordering::Acquire),
                    free_at.load(Ordering::Acquire),
                );
                return started
                    .load(Ordering::Acquire)
                    .then(|| t.saturating_sub(free));
            }
        }
        let t0 = since(Instant::now());
        measure(&started, &started_at, &since);
        started
            .load(Ordering::Acquire)
            .then(|| started_at.load(Ordering::Acquire).saturating_sub(t0))
    })
}

/// The join under test: the second half records when it starts; the first waits for it.
fn measure(started: &AtomicBool, started_at: &AtomicU64, since: &(impl Fn(Instant) -> u64 + Sync)) {
    let here = weft::current_thread_index();
    weft::join(
        || {
            spin_until(started, Duration::from_secs(1));
        },
        || {
            if weft::current_thread_index() != here && !started.load(Ordering::Acquire) {
                started_at.store(since(Instant::now()), Ordering::Release);
                started.store(true, Ordering::Release);
            }
        },
    );
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let trials = args
        .iter()
        .position(|a| a == "--trials")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000usize);
    let pool = weft::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a 2-thread pool");
    let epoch = Instant::now();
    println!("latency from a join to an idle worker starting its second half (us), {trials} trials per state:");
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "worker B", "p50", "p90", "p99", "p99.9", "max", "missed"
    );
    for state in [
        State::Searching,
        State::Asleep,
        State::Busy,
        State::DeepBusy,
    ] {
        let n = if state == State::Asleep {
            trials / 20
        } else {
            trials
        }
        .max(10);
        let mut got = Vec::with_capacity(n);
        let mut missed = 0;
        for _ in 0..n {
            match trial(&pool, state, epoch) {
                Some(ns) => got.push(ns),
                None => missed += 1,
            }
        }
        got.sort_unstable();
        if got.is_empty() {
            println!("{:<12} all {missed} missed", state.label());
            continue;
        }
        println!(
            "{:<12} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7}",
            state.label(),
            percentile(&got, 0.5),
            percentile(&got, 0.9),
            percentile(&got, 0.99),
            percentile(&got, 0.999),
            percentile(&got, 1.0),
            missed
        );
    }
}
