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

// ---------------------------------------------------------------------------------
// Shared helpers

/// splitmix64: the deterministic generator behind the key order and the DAG.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

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

fn group<'c>(
    c: &'c mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    group
}

// ---------------------------------------------------------------------------------
// Memo hits

/// Keys looked up per pass: the memo (about 10,000 entries) stays in L2/L3.
const HIT_KEYS: u32 = 10_000;

fn leaf_value(key: u32) -> u64 {
    u64::from(key).wrapping_mul(0x9E37_79B9) ^ 0x5555
}

struct Leaf;
impl Query for Leaf {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "leaf";
    fn compute(_cx: &Cx<'_>, key: &u32) -> u64 {
        leaf_value(*key)
    }
}

#[salsa::input]
struct LeafInput {
    #[returns(copy)]
    key: u32,
}

#[salsa::tracked(returns(copy))]
fn salsa_leaf(db: &dyn salsa::Database, input: LeafInput) -> u64 {
    leaf_value(input.key(db))
}

/// `0..HIT_KEYS` in a fixed shuffled order.
fn hit_keys() -> Vec<u32> {
    let mut keys: Vec<u32> = (0..HIT_KEYS).collect();
    for i in (1..keys.len()).rev() {
        let j = (mix(i as u64) % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    keys
}

/// The time criterion records for `iters` passes over `HIT_KEYS` keys, made to read as
/// per-thread time per lookup.
fn per_lookup(wall: Duration, threads: u32) -> Duration {
    wall * threads / HIT_KEYS
}

fn sum_weft(cx: &Cx<'_>, keys: &[u32]) -> u64 {
    keys.iter().fold(0u64, |acc, k| {
        acc.wrapping_add(cx.get::<Leaf>(black_box(k)))
    })
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

fn bench_hits(c: &mut Criterion) {
    let keys = hit_keys();
    let keys = &keys[..];
    let expected = keys
        .iter()
        .fold(0u64, |acc, &k| acc.wrapping_add(leaf_value(k)));
    let mut group = group(c, "hit");

    // weft: one pool and one warmed engine per thread count.
    for threads in [1usize, 2] {
        let pool = weft_pool(threads);
        let (engine, sum) = on_pool(&pool, Engine::new(), |cx| sum_weft(cx, keys));
        assert_eq!(sum, expected);
        let mut engine = Some(engine);
        group.bench_function(BenchmarkId::new("weft", threads), |b| {
            b.iter_custom(|iters| {
                let (back, wall) = on_pool(&pool, engine.take().unwrap(), |cx| {
                    let (left, right) = keys.split_at(keys.len() / 2);
                    let pass = |cx: &Cx<'_>, part: &[u32]| {
                        for _ in 0..iters {
                            black_box(sum_weft(cx, part));
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
        group.bench_function(BenchmarkId::new("weft_par_for_each", threads), |b| {
            b.iter_custom(|iters| {
                let (back, wall) = on_pool(&pool, engine.take().unwrap(), |cx| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        cx.par_for_each(keys, |cx, k| {
                            black_box(cx.get::<Leaf>(black_box(k)));
                        });
                    }
                    start.elapsed()
                });
                engine = Some(back);
                per_lookup(wall, threads as u32)
            })
        });
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

const DAG_LAYERS: u32 = 20;
const DAG_LAYER_SIZE: u32 = 5_000;
const DAG_N: u32 = DAG_LAYERS * DAG_LAYER_SIZE;

/// The keys `key` depends on: 1 to 4 keys of the next one or two layers (none in the
/// last layer), all larger than `key`.
fn dag_deps(key: u32) -> impl Iterator<Item = u32> {
    let layer = key / DAG_LAYER_SIZE;
    let h = mix(u64::from(key));
    let count = if layer + 1 < DAG_LAYERS {
        1 + (h % 4) as u32
    } else {
        0
    };
    (0..count).map(move |j| {
        let r = mix(h ^ u64::from(j + 1));
        let down = if layer + 2 < DAG_LAYERS {
            1 + (r >> 40) % 2
        } else {
            1
        } as u32;
        (layer + down) * DAG_LAYER_SIZE + (r % u64::from(DAG_LAYER_SIZE)) as u32
    })
}

fn dag_combine(key: u32, deps: impl Iterator<Item = u64>) -> u64 {
    deps.fold(mix(u64::from(key)), |acc, v| {
        acc.rotate_left(7) ^ v.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

struct DagNode;
impl Query for DagNode {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "dag";
    fn compute(cx: &Cx<'_>, key: &u32) -> u64 {
        dag_combine(*key, dag_deps(*key).map(|d| cx.get::<DagNode>(&d)))
    }
}

/// What one iteration computes: every key requested, values summed.
fn dag_all(cx: &Cx<'_>, keys: &[u32]) -> u64 {
    cx.par_map(keys, |cx, k| cx.get::<DagNode>(k))
        .into_iter()
        .fold(0, u64::wrapping_add)
}

/// The same sum without any engine (bottom-up over the layers).
fn dag_expected() -> u64 {
    let mut values = vec![0u64; DAG_N as usize];
    for key in (0..DAG_N).rev() {
        values[key as usize] = dag_combine(key, dag_deps(key).map(|d| values[d as usize]));
    }
    values.into_iter().fold(0, u64::wrapping_add)
}

fn bench_dag(c: &mut Criterion) {
    let keys: Vec<u32> = (0..DAG_N).collect();
    let keys = &keys[..];
    let expected = dag_expected();
    let mut group = group(c, "dag100k");

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
