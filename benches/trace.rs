//! The cost of tracing: the same work on a 2-thread pool built with `trace(false)` and
//! with `trace(true)`.
//!
//! - `trace_join_fib22/{off,on}`: fib(22) with a `join` at every call (28,656 joins, so
//!   about as many job spans when stolen): the pool's event sites (job run, idle, token).
//! - `trace_query_hits/{off,on}`: 4,096 requests of already memoized queries through
//!   `par_map` on a warm engine: the query hit site.
//!
//! With tracing off each site is one relaxed load, so `off` should match a build
//! without the sites; `on` adds recording. What is recorded is drained outside the
//! timed region (`take_trace` between iterations), so `on` measures recording only.
//!
//! Run: `cargo bench --bench trace`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use weft::query::{Cx, Engine, Query};
use weft::{ThreadPool, ThreadPoolBuilder};

const FIB_N: u64 = 22;
const HIT_KEYS: u64 = 4096;

fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = weft::join(|| fib(n - 1), || fib(n - 2));
    a + b
}

struct Square;
impl Query for Square {
    type Key = u64;
    type Value = u64;
    const NAME: &'static str = "square";
    fn compute(_: &Cx<'_>, k: &u64) -> u64 {
        k * k
    }
}

fn pool(trace: bool) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(2)
        .no_jobserver()
        .trace(trace)
        .build()
        .unwrap()
}

/// Times `iters` runs of `work`, draining the trace after each one, untimed.
fn timed(pool: &ThreadPool, iters: u64, mut work: impl FnMut() -> u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        black_box(work());
        total += start.elapsed();
        drop(black_box(pool.take_trace()));
    }
    total
}

fn bench_trace(c: &mut Criterion) {
    let mut group = c.benchmark_group("trace_join_fib22");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    for (name, on) in [("off", false), ("on", true)] {
        let pool = pool(on);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| timed(&pool, iters, || pool.install(|| fib(FIB_N))))
        });
    }
    group.finish();

    let keys: Vec<u64> = (0..HIT_KEYS).collect();
    let mut group = c.benchmark_group("trace_query_hits");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));
    for (name, on) in [("off", false), ("on", true)] {
        let pool = pool(on);
        let engine = Engine::new();
        let run = || {
            pool.install(|| {
                engine
                    .run(|cx| cx.par_map(&keys, |cx, k| cx.get::<Square>(k)).len() as u64)
                    .unwrap()
            })
        };
        run(); // Warm the memo: every later request is a hit.
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| timed(&pool, iters, run))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_trace);
criterion_main!(benches);
