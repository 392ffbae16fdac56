//! Waiting holds no thread, never hangs and never reports a deadlock that is not real:
//! blocked requests suspend fibers instead of parking threads, `weft::blocking` is the
//! only wait that holds a thread (and nests), and a pool reports `Deadlock` only when
//! none of its workers can run anything and nothing outside can help. Every test runs
//! under a watchdog, so a hang fails instead of stalling.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{pool, watchdog};
use weft::query::{Cx, Engine, Query, QueryError};
use weft::{ThreadPool, ThreadPoolBuilder};

/// A pool with no spare thread at all.
fn tight_pool(n: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(n)
        .max_threads(n)
        .build()
        .unwrap()
}

// ------------------------------------------------------------- acyclic graphs

/// `Dag(k)`: a node of a random acyclic graph, requesting its dependencies through a
/// mix of `cx.join`, `cx.scope` and `cx.par_map`.
struct Dag;
impl Query for Dag {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "dag";
    fn compute(cx: &Cx<'_>, k: &u32) -> u64 {
        let deps: Vec<u32> = (1..=3)
            .filter_map(|d| k.checked_sub(d * 7 + k % 5))
            .collect();
        let own = u64::from(*k) + 1;
        match k % 3 {
            0 => {
                own + cx
                    .par_map(&deps, |cx, d| cx.get::<Dag>(d))
                    .iter()
                    .sum::<u64>()
            }
            1 => {
                let (a, b) = cx.join(
                    |cx| deps.first().map_or(0, |d| cx.get::<Dag>(d)),
                    |cx| deps.iter().skip(1).map(|d| cx.get::<Dag>(d)).sum::<u64>(),
                );
                own + a + b
            }
            _ => {
                let total = AtomicUsize::new(0);
                cx.scope(|s| {
                    for d in &deps {
                        let total = &total;
                        s.spawn(move |cx| {
                            total.fetch_add(cx.get::<Dag>(d) as usize, Ordering::SeqCst);
                        });
                    }
                });
                own + total.into_inner() as u64
            }
        }
    }
}

#[test]
fn acyclic_graphs_never_deadlock_even_without_spare_threads() {
    watchdog(60, "acyclic graphs", || {
        let roots: Vec<u32> = (0..80).rev().collect();
        let expected = Engine::serial()
            .run(|cx| cx.par_map(&roots, |cx, k| cx.get::<Dag>(k)))
            .unwrap();
        for threads in [2, 3] {
            for _ in 0..10 {
                let pool = tight_pool(threads);
                let got = pool
                    .install(|| {
                        Engine::new().run(|cx| cx.par_map(&roots, |cx, k| cx.get::<Dag>(k)))
                    })
                    .unwrap();
                assert_eq!(got, expected, "{threads} threads");
                assert_eq!(
                    pool.stats().peak_live_threads,
                    threads,
                    "no spare was needed"
                );
            }
        }
    });
}

// ------------------------------------------------------------- many waiters

static SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);
struct Slow;
impl Query for Slow {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "slow";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        SLOW_CALLS.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        k + 1
    }
}

#[test]
fn ten_thousand_waiters_on_one_key_take_no_extra_threads() {
    watchdog(60, "10,000 waiters", || {
        let pool = pool(2);
        let engine = Engine::new();
        let items = vec![7u32; 10_000];
        let got = pool
            .install(|| engine.run(|cx| cx.par_map(&items, |cx, k| cx.get::<Slow>(k))))
            .unwrap();
        assert!(got.iter().all(|&v| v == 8));
        assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 1);
        let stats = pool.stats();
        assert!(
            stats.peak_live_threads <= 2,
            "waits took threads: {stats:?}"
        );
    });
}

// ------------------------------------------------------------- weft::blocking

struct WaitsForSpawn;
impl Query for WaitsForSpawn {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "waits_for_spawn";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        let (tx, rx) = mpsc::channel();
        let k = *k;
        weft::spawn(move || tx.send(k * 2).unwrap());
        weft::blocking(|| rx.recv().unwrap())
    }
}

#[test]
fn many_queries_blocking_on_spawned_jobs_finish() {
    watchdog(60, "blocking on spawned jobs", || {
        let pool = pool(2);
        let keys: Vec<u32> = (0..64).collect();
        let got = pool
            .install(|| {
                Engine::new().run(|cx| cx.par_map(&keys, |cx, k| cx.get::<WaitsForSpawn>(k)))
            })
            .unwrap();
        assert_eq!(got, keys.iter().map(|k| k * 2).collect::<Vec<_>>());
    });
}

/// Owns a key other requests wait for, while its thread sleeps in `weft::blocking`
/// (a linker, a file read) far longer than any timer-based stall check would allow.
struct SlowIo;
impl Query for SlowIo {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "slow_io";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        weft::blocking(|| std::thread::sleep(Duration::from_millis(300)));
        *k
    }
}

#[test]
fn waiting_on_a_query_inside_blocking_is_no_deadlock() {
    watchdog(60, "waiters on a blocking owner", || {
        let pool = pool(2);
        let engine = Engine::new();
        let items = vec![1u32; 64];
        let got = pool
            .install(|| engine.run(|cx| cx.par_map(&items, |cx, k| cx.try_get::<SlowIo>(k))))
            .unwrap();
        assert!(
            got.iter().all(|r| r == &Ok(1)),
            "{:?}",
            got.iter().find(|r| r.is_err())
        );
    });
}

/// Like `Slow`, without the call count (for the tests that share it).
struct Delayed;
impl Query for Delayed {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "delayed";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        std::thread::sleep(Duration::from_millis(200));
        k + 1
    }
}

struct OnOtherPool;
impl Query for OnOtherPool {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "on_other_pool";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        // The owner spends a while inside another pool's `install`.
        OTHER_POOL.get_or_init(|| pool(1)).install(|| {
            std::thread::sleep(Duration::from_millis(300));
        });
        *k + 1
    }
}
static OTHER_POOL: std::sync::OnceLock<ThreadPool> = std::sync::OnceLock::new();

#[test]
fn waiting_on_an_owner_inside_another_pool_is_no_deadlock() {
    watchdog(60, "waiters on a cross-pool owner", || {
        let pool = tight_pool(2);
        let engine = Engine::new();
        let items = vec![5u32; 32];
        let got = pool
            .install(|| engine.run(|cx| cx.par_map(&items, |cx, k| cx.try_get::<OnOtherPool>(k))))
            .unwrap();
        assert!(
            got.iter().all(|r| r == &Ok(6)),
            "{:?}",
            got.iter().find(|r| r.is_err())
        );
    });
}

#[test]
fn two_pools_sharing_one_engine_wait_for_each_other() {
    watchdog(60, "two pools, one engine", || {
        let engine = Arc::new(Engine::new());
        let (a, b) = (tight_pool(1), tight_pool(1));
        let from_a = {
            let engine = engine.clone();
            std::thread::spawn(move || a.install(|| engine.run(|cx| cx.get::<Delayed>(&40))))
        };
        std::thread::sleep(Duration::from_millis(20));
        // B's request waits for A's computation: a wait on another pool, not a stall.
        let from_b = b.install(|| engine.run(|cx| cx.get::<Delayed>(&40)));
        assert_eq!(from_b, Ok(41));
        assert_eq!(from_a.join().unwrap(), Ok(41));
    });
}

#[test]
fn nested_blocking_counts_once() {
    watchdog(60, "nested blocking", || {
        let pool = pool(2);
        pool.install(|| {
            weft::par_for_each(&[0u8; 16], |_| {
                weft::blocking(|| weft::blocking(|| std::thread::sleep(Duration::from_millis(2))));
            })
        });
        let stats = pool.stats();
        // Each thread is blocked at most once at a time, however deep its nesting.
        assert!(stats.peak_blocked <= stats.peak_live_threads, "{stats:?}");
        assert_eq!(stats.blocked, 0, "{stats:?}");
        // Once the pool is quiet every permit is back: no count drifted.
        let quiet = std::time::Instant::now() + Duration::from_secs(5);
        while pool.stats().running > 0 && std::time::Instant::now() < quiet {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(pool.stats().running, 0, "{:?}", pool.stats());
    });
}

#[test]
fn nested_blocking_under_a_one_token_jobserver_keeps_the_implicit_token() {
    watchdog(60, "nested blocking with -j1", || {
        let client = jobserver::Client::new(0).unwrap();
        let pool = ThreadPoolBuilder::new()
            .num_threads(2)
            .jobserver(client)
            .build()
            .unwrap();
        for _ in 0..3 {
            let got = pool.install(|| {
                weft::par_map(&[1u32, 2, 3, 4], |x| {
                    weft::blocking(|| weft::blocking(|| x * 10))
                })
            });
            assert_eq!(got, vec![10, 20, 30, 40]);
        }
        let stats = pool.stats();
        assert!(stats.peak_running <= 1, "{stats:?}");
        assert_eq!(stats.tokens_held, 0, "{stats:?}");
    });
}

// ------------------------------------------------------------- waits while unwinding

/// A guard whose `Drop` requests a query: it runs while the query that holds it
/// unwinds from a panic.
struct AsksOnDrop<'a, 'cx>(&'a Cx<'cx>, Arc<Mutex<Option<u32>>>);
impl Drop for AsksOnDrop<'_, '_> {
    fn drop(&mut self) {
        let got = self.0.get::<Delayed>(&90);
        *self.1.lock().unwrap() = Some(got);
    }
}

static DROP_SEEN: std::sync::OnceLock<Arc<Mutex<Option<u32>>>> = std::sync::OnceLock::new();

struct PanicsWithGuard;
impl Query for PanicsWithGuard {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "panics_with_guard";
    fn compute(cx: &Cx<'_>, _: &u32) -> u32 {
        let _guard = AsksOnDrop(cx, DROP_SEEN.get().unwrap().clone());
        panic!("unwinding with a guard that waits")
    }
}

#[test]
fn a_wait_inside_a_drop_during_unwinding_completes() {
    watchdog(60, "wait during unwinding", || {
        let seen = DROP_SEEN.get_or_init(|| Arc::new(Mutex::new(None))).clone();
        let pool = pool(2);
        let engine = Engine::new();
        // Another worker computes `Delayed(90)` so the guard's request must wait for it.
        let (panicked, slow) = pool
            .install(|| {
                engine.run(|cx| {
                    cx.join(
                        |cx| {
                            std::thread::sleep(Duration::from_millis(20));
                            cx.try_get::<PanicsWithGuard>(&0)
                        },
                        |cx| cx.get::<Delayed>(&90),
                    )
                })
            })
            .unwrap();
        assert!(
            matches!(&panicked, Err(QueryError::Panicked { message, .. }) if message == "unwinding with a guard that waits"),
            "{panicked:?}"
        );
        assert_eq!(slow, 91);
        assert_eq!(*seen.lock().unwrap(), Some(91));
    });
}

// ------------------------------------------------------------- cycles across fibers

/// `stuck(0) -> stuck(1) -> stuck(0)`, entered from both ends at once on two workers:
/// each side suspends its fiber on the other's entry until the closing wait finds the
/// cycle.
struct Stuck;
impl Query for Stuck {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "stuck";
    fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
        if *k == 0 {
            // Waits (through the engine) for `stuck(1)`, whose owner waits for us via
            // a join half: a real cycle, found when it closes.
            cx.get::<Stuck>(&1)
        } else {
            cx.get::<Stuck>(&0)
        }
    }
}

#[test]
fn a_real_cycle_across_threads_is_reported_not_hung() {
    watchdog(60, "cycle across threads", || {
        let pool = tight_pool(2);
        let engine = Engine::new();
        let (a, b) = pool
            .install(|| {
                engine.run(|cx| cx.join(|cx| cx.try_get::<Stuck>(&0), |cx| cx.try_get::<Stuck>(&1)))
            })
            .unwrap();
        assert!(matches!(a, Err(QueryError::Cycle(_))), "{a:?}");
        assert!(matches!(b, Err(QueryError::Cycle(_))), "{b:?}");
    });
}

// ------------------------------------------------------------- no false stalls

/// The shared query-DAG workload (`../shared/workloads/query-dag.md`): node `i`
/// depends on up to four nodes within the 1,000 before it; every node is a root, roots
/// requested in order by chunks of 256.
fn dag_graph(n: u32) -> Vec<Vec<u32>> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut draw = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut deps = vec![Vec::new()];
    for i in 1..n {
        let d = 1 + draw() % 4;
        let window = u64::from(i.min(1000));
        deps.push((0..d).map(|_| i - 1 - (draw() % window) as u32).collect());
    }
    deps
}

static DAG: std::sync::OnceLock<Vec<Vec<u32>>> = std::sync::OnceLock::new();

struct DagValue;
impl Query for DagValue {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "dag_value";
    fn compute(cx: &Cx<'_>, i: &u32) -> u64 {
        let mut h = u64::from(*i) ^ 0xcbf2_9ce4_8422_2325;
        for j in &DAG.get().unwrap()[*i as usize] {
            h = (h ^ cx.get::<DagValue>(j)).wrapping_mul(0x0100_0000_01b3);
        }
        for _ in 0..64 {
            h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        }
        h
    }
}

#[test]
fn a_worker_woken_from_its_wait_is_never_taken_for_a_stall() {
    // A worker asleep on its own stack whose wait just ended is about to run: the last
    // worker going idle must not declare the pool stalled meanwhile (it once did, and
    // blocked requests of this acyclic DAG got `Deadlock`).
    watchdog(60, "query DAG at 2 threads", || {
        let n = 20_000;
        DAG.get_or_init(|| dag_graph(n));
        let ids: Vec<u32> = (0..n).collect();
        let chunks: Vec<&[u32]> = ids.chunks(256).collect();
        let sum = |cx: &Cx<'_>| {
            cx.par_map(&chunks, |cx, c| {
                c.iter()
                    .map(|i| cx.get::<DagValue>(i))
                    .fold(0u64, u64::wrapping_add)
            })
            .into_iter()
            .fold(0u64, u64::wrapping_add)
        };
        let pool = tight_pool(2);
        for round in 0..20 {
            let got = pool.install(|| Engine::new().run(sum));
            assert_eq!(got, Ok(12_218_157_777_983_763_378), "round {round}");
        }
    });
}
