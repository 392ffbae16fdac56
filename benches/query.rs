//! Query-engine benchmarks (issue 3), all in one run.
//!
//! **Memo hits** (`hit/<impl>/<threads>`): the reported time is the cost of ONE lookup
//! of an already computed key, per thread: wall time x threads / lookups. Every
//! implementation looks up the same `HIT_KEYS` keys in the same shuffled order.
//! - `weft`: `cx.get::<Leaf>(&k)` in `Engine::run`, all keys computed beforehand. At 2
//!   threads the two halves of the key slice run under one `cx.join`, each half looping
//!   over its keys for all of criterion's iterations (one join per sample, so the
//!   steal is amortised): both threads hit concurrently.
//! - `weft_par_for_each`: the same lookups through `cx.par_for_each` over the whole
//!   slice once per iteration (split/steal overhead included).
//! - `weft_dense`, `weft_dense_par_for_each`: the same with a dense memo (`DenseLeaf`,
//!   whose `Query::KEY_INDEX` makes the key its slot's index: no hashing, no probe).
//! - `hashmap_std` / `hashmap_fx`: `HashMap<u32, u64>` (SipHash / FxHash) lookups; at 2
//!   threads two plain threads read one shared map (the hardware's own scaling).
//! - `salsa`: salsa 0.28, a `#[salsa::tracked]` function on a `#[salsa::input]`, called
//!   outside any tracked function after it was computed. At 2 threads each thread has
//!   its own clone of the database handle.
//!
//! **Random DAG** (`dag100k/<engine>/<threads>`): 100,000 queries in 20 layers of 5,000;
//! each key depends on 1 to 4 keys of the next one or two layers, chosen by a fixed
//! hash, and mixes their values arithmetically. Each iteration uses a fresh engine
//! (made and dropped outside the timing) and requests every key through `cx.par_map`.
//! `serial` is `Engine::serial()`; `weft/1` and `weft/2` are `Engine::new()` on 1- and
//! 2-thread pools.
//!
//! Run: `cargo bench --bench query`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use rustc_hash::FxHashMap;
use weft::query::{Cx, Engine, Query};

#[path = "common/workloads.rs"]
mod workloads;
use workloads::*;

// ---------------------------------------------------------------------------------
// Shared helpers

fn weft_pool(threads: usize) -> weft::ThreadPool {
    weft::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Runs `f` with the engine on `pool`. `Engine` is `Send` but not `Sync`, so it moves
/// into the pool and back out.
fn on_pool<R: Send>(
    pool: &weft::ThreadPool,
    engine: Engine,
    f: impl FnOnce(&Cx<'_>) -> R + Send,
) -> (Engine, R) {
    pool.install(move || {
        let result = engine.run(f).expect("query error");
        (engine, result)
    })
}

// ---------------------------------------------------------------------------------
// Memo hits

/// The time criterion records for `iters` passes over `HIT_KEYS` keys, made to read as
/// per-thread time per lookup.
fn per_lookup(wall: Duration, threads: u32) -> Duration {
    wall * threads / HIT_KEYS
}

fn sum_weft<Q: Query<Key = u32, Value = u64>>(cx: &Cx<'_>, keys: &[u32]) -> u64 {
    keys.iter()
        .fold(0u64, |acc, k| acc.wrapping_add(cx.get::<Q>(black_box(k))))
}

/// The same lookups by `threads` plain threads at once (each on its share of `keys`);
/// returns the slowest thread's time for `iters` passes.
fn on_threads<S: Sync>(
    threads: usize,
    keys: &[u32],
    iters: u64,
    state: &S,
    lookup: impl Fn(&S, &[u32]) -> u64 + Sync,
) -> Duration {
    let barrier = Barrier::new(threads);
    let chunk = keys.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = keys
            .chunks(chunk)
            .map(|part| {
                let (barrier, lookup) = (&barrier, &lookup);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(lookup(state, part));
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
    })
}

/// The `weft` hit rows for query `Q` (`Leaf`, or `DenseLeaf` for `weft_dense`) at
/// `threads` threads, on a warmed engine.
fn bench_weft_hits<Q: Query<Key = u32, Value = u64>>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    pool: &weft::ThreadPool,
    threads: usize,
    keys: &[u32],
    expected: u64,
) {
    let (engine, sum) = on_pool(pool, Engine::new(), |cx| sum_weft::<Q>(cx, keys));
    assert_eq!(sum, expected);
    let mut engine = Some(engine);
    group.bench_function(BenchmarkId::new(name, threads), |b| {
        b.iter_custom(|iters| {
            let (back, wall) = on_pool(pool, engine.take().unwrap(), |cx| {
                let (left, right) = keys.split_at(keys.len() / 2);
                let pass = |cx: &Cx<'_>, part: &[u32]| {
                    for _ in 0..iters {
                        black_box(sum_weft::<Q>(cx, part));
                    }
                };
                let start = Instant::now();
                if threads == 1 {
                    pass(cx, keys);
                } else {
                    let (a, b) = cx.join(
                        |cx| {
                            pass(cx, left);
                            weft::current_thread_index()
                        },
                        |cx| {
                            pass(cx, right);
                            weft::current_thread_index()
                        },
                    );
                    if a == b && iters > 1000 {
                        eprintln!("note: both halves ran on one thread ({iters} iters)");
                    }
                }
                start.elapsed()
            });
            engine = Some(back);
            per_lookup(wall, threads as u32)
        })
    });
    group.bench_function(
        BenchmarkId::new(format!("{name}_par_for_each"), threads),
        |b| {
            b.iter_custom(|iters| {
                let (back, wall) = on_pool(pool, engine.take().unwrap(), |cx| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        cx.par_for_each(keys, |cx, k| {
                            black_box(cx.get::<Q>(black_box(k)));
                        });
                    }
                    start.elapsed()
                });
                engine = Some(back);
                per_lookup(wall, threads as u32)
            })
        },
    );
}

fn bench_hits(c: &mut Criterion) {
    let keys = hit_keys();
    let keys = &keys[..];
    let expected = keys
        .iter()
        .fold(0u64, |acc, &k| acc.wrapping_add(leaf_value(k)));
    let mut group = short_group(c, "hit");

    // weft: one pool and one warmed engine per thread count.
    for threads in [1usize, 2] {
        let pool = weft_pool(threads);
        bench_weft_hits::<Leaf>(&mut group, "weft", &pool, threads, keys, expected);
        bench_weft_hits::<DenseLeaf>(&mut group, "weft_dense", &pool, threads, keys, expected);
    }

    // Plain hash maps: the floor for a memo lookup.
    let std_map: HashMap<u32, u64> = keys.iter().map(|&k| (k, leaf_value(k))).collect();
    let fx_map: FxHashMap<u32, u64> = keys.iter().map(|&k| (k, leaf_value(k))).collect();
    fn sum_map<M: MapGet>(map: &M, keys: &[u32]) -> u64 {
        keys.iter()
            .fold(0u64, |acc, k| acc.wrapping_add(map.lookup(black_box(k))))
    }
    assert_eq!(sum_map(&std_map, keys), expected);
    assert_eq!(sum_map(&fx_map, keys), expected);
    for threads in [1usize, 2] {
        group.bench_function(BenchmarkId::new("hashmap_std", threads), |b| {
            b.iter_custom(|iters| {
                let wall = on_threads(threads, keys, iters, &std_map, sum_map);
                per_lookup(wall, threads as u32)
            })
        });
        group.bench_function(BenchmarkId::new("hashmap_fx", threads), |b| {
            b.iter_custom(|iters| {
                let wall = on_threads(threads, keys, iters, &fx_map, sum_map);
                per_lookup(wall, threads as u32)
            })
        });
    }

    // salsa: inputs made and the tracked function computed once, then only hits.
    let db = salsa::DatabaseImpl::default();
    let inputs: Vec<LeafInput> = keys.iter().map(|&k| LeafInput::new(&db, k)).collect();
    let sum_salsa = |db: &salsa::DatabaseImpl, part: &[LeafInput]| {
        part.iter().fold(0u64, |acc, &i| {
            acc.wrapping_add(salsa_leaf(db, black_box(i)))
        })
    };
    assert_eq!(sum_salsa(&db, &inputs), expected);
    for threads in [1usize, 2] {
        group.bench_function(BenchmarkId::new("salsa", threads), |b| {
            b.iter_custom(|iters| {
                let barrier = Barrier::new(threads);
                let chunk = inputs.len().div_ceil(threads);
                let wall = std::thread::scope(|s| {
                    let handles: Vec<_> = inputs
                        .chunks(chunk)
                        .map(|part| {
                            let db = db.clone();
                            let (barrier, sum_salsa) = (&barrier, &sum_salsa);
                            s.spawn(move || {
                                barrier.wait();
                                let start = Instant::now();
                                for _ in 0..iters {
                                    black_box(sum_salsa(&db, part));
                                }
                                start.elapsed()
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap())
                        .max()
                        .unwrap()
                });
                per_lookup(wall, threads as u32)
            })
        });
    }
    group.finish();
}

trait MapGet: Sync {
    fn lookup(&self, key: &u32) -> u64;
}
impl<S: std::hash::BuildHasher + Sync> MapGet for HashMap<u32, u64, S> {
    #[inline]
    fn lookup(&self, key: &u32) -> u64 {
        self[key]
    }
}

// ---------------------------------------------------------------------------------
// Random DAG

fn bench_dag(c: &mut Criterion) {
    let keys: Vec<u32> = (0..DAG_N).collect();
    let keys = &keys[..];
    let expected = dag_expected();
    let mut group = short_group(c, "dag100k");

    assert_eq!(
        Engine::serial().run(|cx| dag_all(cx, keys)).unwrap(),
        expected
    );
    group.bench_function(BenchmarkId::new("serial", 1), |b| {
        b.iter_batched(
            Engine::serial,
            // The engine is returned so that criterion drops it outside the timing.
            |engine| {
                let sum = engine.run(|cx| dag_all(cx, keys)).unwrap();
                (engine, black_box(sum))
            },
            BatchSize::PerIteration,
        )
    });

    for threads in [1usize, 2] {
        let pool = weft_pool(threads);
        assert_eq!(
            on_pool(&pool, Engine::new(), |cx| dag_all(cx, keys)).1,
            expected
        );
        group.bench_function(BenchmarkId::new("weft", threads), |b| {
            b.iter_batched(
                Engine::new,
                |engine| on_pool(&pool, engine, |cx| black_box(dag_all(cx, keys))),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_hits, bench_dag);
criterion_main!(benches);
