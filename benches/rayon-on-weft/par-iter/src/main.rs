//! Times rayon parallel-iterator workloads at 1 and 2 threads (or those given as
//! arguments) and prints one line per workload and thread count: name, threads, median
//! milliseconds over the rounds, and the runtime under test (whatever rayon-core this
//! binary was built with).
use std::time::Instant;

use rayon::prelude::*;

const ROUNDS: usize = 15;

fn median_ms(mut run: impl FnMut() -> f64) -> f64 {
    run(); // warm-up: threads started, pages touched
    let mut times: Vec<f64> = (0..ROUNDS).map(|_| run()).collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    times[ROUNDS / 2]
}

fn timed<R>(f: impl FnOnce() -> R) -> (f64, R) {
    let start = Instant::now();
    let result = f();
    (start.elapsed().as_secs_f64() * 1e3, std::hint::black_box(result))
}

fn random_values(n: usize) -> Vec<u64> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect()
}

fn main() {
    let threads: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("thread counts"))
        .collect();
    let threads = if threads.is_empty() { vec![1, 2] } else { threads };
    let unsorted = random_values(2_000_000);
    for &t in &threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap();
        let report = |name: &str, ms: f64| println!("{name} {t} {ms:.3}");
        report(
            "sum",
            median_ms(|| {
                pool.install(|| timed(|| (0..20_000_000u64).into_par_iter().map(|x| x * x % 7).sum::<u64>()))
                    .0
            }),
        );
        report(
            "sort",
            median_ms(|| {
                let mut values = unsorted.clone();
                pool.install(|| timed(|| values.par_sort_unstable())).0
            }),
        );
        report(
            "collect",
            median_ms(|| {
                pool.install(|| {
                    timed(|| {
                        (0..4_000_000u32)
                            .into_par_iter()
                            .map(|x| x ^ 0x5555)
                            .collect::<Vec<u32>>()
                    })
                })
                .0
            }),
        );
        report(
            "find_any",
            median_ms(|| {
                pool.install(|| {
                    timed(|| {
                        (0..20_000_000u64)
                            .into_par_iter()
                            .find_any(|&x| x * 3 == 3 * 19_999_000)
                    })
                })
                .0
            }),
        );
        report(
            "join_tree",
            median_ms(|| {
                fn fib(n: u32) -> u64 {
                    if n < 2 {
                        return n as u64;
                    }
                    let (a, b) = rayon::join(|| fib(n - 1), || fib(n - 2));
                    a + b
                }
                pool.install(|| timed(|| fib(25))).0
            }),
        );
    }
}
