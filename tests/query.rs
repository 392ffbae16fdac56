//! Query engine rules, each with a forced interleaving where threads matter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::Duration;

use weft::query::{Cx, Cycle, Engine, Query, QueryError};
use weft::{ThreadPool, ThreadPoolBuilder};

fn pool(n: usize) -> ThreadPool {
    ThreadPoolBuilder::new().num_threads(n).build().unwrap()
}

/// Both engines, the parallel one on a pool of `threads`.
fn on_both<R: Send + PartialEq + std::fmt::Debug>(
    threads: usize,
    f: impl Fn(&Engine) -> R + Sync,
) -> R {
    let serial = f(&Engine::serial());
    let parallel = pool(threads).install(|| f(&Engine::new()));
    assert_eq!(parallel, serial, "parallel and serial engines disagree");
    parallel
}

// ---------------------------------------------------------------- memoization

static SQUARE_CALLS: AtomicUsize = AtomicUsize::new(0);
struct Square;
impl Query for Square {
    type Key = u64;
    type Value = u64;
    const NAME: &'static str = "square";
    fn compute(_: &Cx<'_>, k: &u64) -> u64 {
        SQUARE_CALLS.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_micros(200));
        k * k
    }
}

#[test]
fn each_key_is_computed_once_even_when_requested_concurrently() {
    let pool = pool(4);
    let engine = Engine::new();
    let keys: Vec<u64> = (0..64).flat_map(|k| [k, k, k, k]).collect();
    let got = pool
        .install(|| engine.run(|cx| cx.par_map(&keys, |cx, k| cx.get::<Square>(k))))
        .unwrap();
    assert_eq!(got, keys.iter().map(|k| k * k).collect::<Vec<_>>());
    assert_eq!(SQUARE_CALLS.load(Ordering::SeqCst), 64);
    // Memo tables persist across runs.
    pool.install(|| engine.run(|cx| cx.get::<Square>(&7)))
        .unwrap();
    assert_eq!(SQUARE_CALLS.load(Ordering::SeqCst), 64);
}

struct Setting;
impl weft::query::Input for Setting {
    type Key = &'static str;
    type Value = i64;
    const NAME: &'static str = "setting";
}

#[test]
fn inputs_are_served_without_computing_and_unset_ones_are_named() {
    for mut engine in [Engine::new(), Engine::serial()] {
        engine.set_input::<Setting>("a", 5);
        assert_eq!(engine.run(|cx| cx.get::<Setting>(&"a")), Ok(5));
        let err = engine
            .run(|cx| cx.try_get::<Setting>(&"b"))
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err,
            QueryError::InputNotSet {
                input: "setting",
                key: "\"b\"".to_string()
            }
        );
        assert_eq!(
            err.to_string(),
            "the input `setting(\"b\")` was read but never set"
        );
    }
}

// ---------------------------------------------------------------- cycles

/// A query graph given as data: each key's value is 1 + the sum of its dependencies'
/// values; `recovering` keys recover with -1.
#[derive(Default)]
struct Graph {
    deps: HashMap<u32, Vec<u32>>,
    recovering: Vec<u32>,
    parallel_deps: bool,
    /// Keys whose compute waits at the barrier before requesting its dependencies.
    rendezvous: Vec<u32>,
    barrier: Option<Arc<Barrier>>,
}

fn graph() -> &'static Mutex<Option<Arc<Graph>>> {
    static G: OnceLock<Mutex<Option<Arc<Graph>>>> = OnceLock::new();
    G.get_or_init(|| Mutex::new(None))
}
static GRAPH_LOCK: Mutex<()> = Mutex::new(());

struct Node;
impl Query for Node {
    type Key = u32;
    type Value = i64;
    const NAME: &'static str = "node";
    fn compute(cx: &Cx<'_>, k: &u32) -> i64 {
        let g = graph().lock().unwrap().clone().unwrap();
        if g.rendezvous.contains(k) {
            weft::blocking(|| g.barrier.as_ref().unwrap().wait());
        }
        let deps = g.deps.get(k).cloned().unwrap_or_default();
        let vals = if g.parallel_deps {
            cx.par_map(&deps, |cx, d| cx.get::<Node>(d))
        } else {
            deps.iter().map(|d| cx.get::<Node>(d)).collect()
        };
        1 + vals.iter().sum::<i64>()
    }
    fn recover(_: &Cx<'_>, k: &u32, _: &Cycle) -> Option<i64> {
        let g = graph().lock().unwrap().clone().unwrap();
        g.recovering.contains(k).then_some(-1)
    }
}

fn with_graph<R>(g: Graph, f: impl FnOnce() -> R) -> R {
    let _serialise = GRAPH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    *graph().lock().unwrap() = Some(Arc::new(g));
    f()
}

fn deps(edges: &[(u32, &[u32])]) -> HashMap<u32, Vec<u32>> {
    edges.iter().map(|(k, d)| (*k, d.to_vec())).collect()
}

fn cycle_text(err: &QueryError) -> String {
    match err {
        QueryError::Cycle(c) => c.to_string(),
        other => panic!("expected a cycle, got {other:?}"),
    }
}

#[test]
fn self_cycle_is_reported_as_immediate() {
    with_graph(
        Graph {
            deps: deps(&[(1, &[1])]),
            ..Graph::default()
        },
        || {
            let err = on_both(2, |e| e.run(|cx| cx.try_get::<Node>(&1)).unwrap()).unwrap_err();
            assert_eq!(
            cycle_text(&err),
            "cycle detected when computing `node(1)`\n  ...which immediately requires computing `node(1)` again"
        );
        },
    );
}

#[test]
fn cycle_report_is_canonical_whichever_entry_point() {
    with_graph(
        Graph {
            deps: deps(&[(3, &[2]), (2, &[1]), (1, &[3])]),
            ..Graph::default()
        },
        || {
            let expected = "cycle detected when computing `node(1)`\n  \
             ...which requires computing `node(3)`...\n  \
             ...which requires computing `node(2)`...\n  \
             ...which again requires computing `node(1)`, completing the cycle";
            for entry in [1, 2, 3] {
                let err =
                    on_both(2, |e| e.run(|cx| cx.try_get::<Node>(&entry)).unwrap()).unwrap_err();
                assert_eq!(cycle_text(&err), expected, "entered at {entry}");
                if let QueryError::Cycle(c) = &err {
                    assert_eq!(c.participants()[0], ("node", "1".to_string()));
                }
            }
        },
    );
}

#[test]
fn participant_in_the_middle_of_a_stack_and_callers_outside_continue() {
    // 10 -> 11 -> (1 -> 2 -> 1); 1 recovers, 2 does not. Outside callers 10 and 11
    // continue with 1's recovered value; 2 stores the cycle error.
    with_graph(
        Graph {
            deps: deps(&[(10, &[11]), (11, &[1]), (1, &[2]), (2, &[1])]),
            recovering: vec![1],
            ..Graph::default()
        },
        || {
            let got = on_both(2, |e| {
                e.run(|cx| {
                    (
                        cx.try_get::<Node>(&10),
                        cx.try_get::<Node>(&1),
                        cx.try_get::<Node>(&2).map_err(|e| cycle_text(&e)),
                    )
                })
                .unwrap()
            });
            assert_eq!(
                got.0,
                Ok(1 + 1 + -1),
                "10 = 1 + (11 = 1 + (1 recovered = -1))"
            );
            assert_eq!(got.1, Ok(-1));
            assert!(got
                .2
                .unwrap_err()
                .starts_with("cycle detected when computing `node(1)`"));
        },
    );
}

#[test]
fn cycle_without_recovery_propagates_through_get_to_run() {
    with_graph(
        Graph {
            deps: deps(&[(5, &[6]), (6, &[7]), (7, &[6])]),
            ..Graph::default()
        },
        || {
            let err = on_both(2, |e| e.run(|cx| cx.get::<Node>(&5))).unwrap_err();
            assert!(cycle_text(&err).contains("`node(6)`"));
            // 5 is not a participant but got the error through `get`: it stores it too.
            let again = on_both(2, |e| e.run(|cx| cx.try_get::<Node>(&5)).unwrap());
            assert!(again.is_err());
        },
    );
}

#[test]
fn two_threads_closing_one_cycle_at_once_resolve_it_once_with_one_report() {
    // 1 -> 2 and 2 -> 1 start on two threads at once (barrier), so both requests for
    // the other's key race; exactly one closes the cycle; both sides see the same text.
    for round in 0..20 {
        with_graph(
            Graph {
                deps: deps(&[(1, &[2]), (2, &[1])]),
                rendezvous: vec![1, 2],
                barrier: Some(Arc::new(Barrier::new(2))),
                ..Graph::default()
            },
            || {
                let pool = pool(2);
                let engine = Engine::new();
                let (a, b) = pool
                    .install(|| {
                        engine.run(|cx| {
                            cx.join(|cx| cx.try_get::<Node>(&1), |cx| cx.try_get::<Node>(&2))
                        })
                    })
                    .unwrap();
                let (a, b) = (cycle_text(&a.unwrap_err()), cycle_text(&b.unwrap_err()));
                assert_eq!(a, b, "round {round}");
                assert!(a.starts_with("cycle detected when computing `node(1)`"));
            },
        );
    }
}

#[test]
fn cycle_through_a_join_stolen_job() {
    // 1 requests its deps in parallel (par_map): one of them leads back to 1 from a
    // job another worker may have stolen.
    with_graph(
        Graph {
            deps: deps(&[
                (1, &[2, 3, 4, 5]),
                (2, &[]),
                (3, &[]),
                (4, &[6]),
                (5, &[]),
                (6, &[1]),
            ]),
            parallel_deps: true,
            recovering: vec![6],
            ..Graph::default()
        },
        || {
            for _ in 0..10 {
                let got = on_both(4, |e| {
                    e.run(|cx| {
                        (
                            cx.try_get::<Node>(&1).map_err(|e| cycle_text(&e)),
                            cx.try_get::<Node>(&6),
                        )
                    })
                    .unwrap()
                });
                assert_eq!(got.1, Ok(-1));
                assert!(got.0.unwrap_err().contains("`node(4)`"));
            }
        },
    );
}

// ---------------------------------------------------------------- panics

static SLOW_PANIC_STARTED: AtomicUsize = AtomicUsize::new(0);
struct SlowPanic;
impl Query for SlowPanic {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "slow_panic";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        SLOW_PANIC_STARTED.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        panic!("boom at {k}")
    }
}

#[test]
fn a_panic_poisons_the_entry_for_every_waiter_and_later_request() {
    let pool = pool(4);
    let engine = Engine::new();
    let results = pool
        .install(|| engine.run(|cx| cx.par_map(&[9u32; 16], |cx, k| cx.try_get::<SlowPanic>(k))))
        .unwrap();
    let is_expected = |r: &Result<u32, QueryError>| {
        matches!(r, Err(QueryError::Panicked { query: "slow_panic", key, message, payload })
            if key == "9" && message == "boom at 9" && payload.message() == Some("boom at 9"))
    };
    assert!(results.iter().all(is_expected), "{results:?}");
    assert_eq!(
        SLOW_PANIC_STARTED.load(Ordering::SeqCst),
        1,
        "computed once; the others waited"
    );
    assert!(is_expected(
        &pool
            .install(|| engine.run(|cx| cx.try_get::<SlowPanic>(&9)))
            .unwrap()
    ));
    // `get` propagates the original query and message; the pool and engine still work.
    assert!(is_expected(
        &pool.install(|| engine.run(|cx| cx.get::<SlowPanic>(&9)))
    ));
    assert!(pool
        .install(|| engine.run(|cx| cx.get::<Setting>(&"unset")))
        .is_err());
    assert_eq!(pool.install(|| engine.run(|cx| cx.get::<Node2>(&3))), Ok(6));
}

struct Node2;
impl Query for Node2 {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "node2";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        k * 2
    }
}

// ------------------------------------------------- the rustc false-deadlock scenario

/// The engine the `X` scenario's detached job uses.
static X_ENGINE: OnceLock<Engine> = OnceLock::new();
static X_BARRIER: OnceLock<Barrier> = OnceLock::new();

struct X;
impl Query for X {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "x";
    fn compute(cx: &Cx<'_>, round: &u32) -> u32 {
        let round = *round;
        let (a, b) = cx.join(
            |_| {
                // The second half is now running on another worker.
                weft::blocking(|| X_BARRIER.get().unwrap().wait());
                // Queue, on this very worker, a job that needs X. X's thread is about to
                // wait for the second half: if it ran this job on top of X's frame, the
                // job would block on X forever, below which X can never finish.
                weft::spawn(move || {
                    let got = X_ENGINE.get().unwrap().run(|cx| cx.get::<X>(&round));
                    assert_eq!(got, Ok(3));
                });
                1
            },
            |_| {
                weft::blocking(|| X_BARRIER.get().unwrap().wait());
                std::thread::sleep(Duration::from_millis(30));
                2
            },
        );
        a + b
    }
}

#[test]
fn a_job_that_needs_x_never_runs_on_xs_stack() {
    X_BARRIER.get_or_init(|| Barrier::new(2));
    X_ENGINE.get_or_init(Engine::new);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let pool = pool(2);
        for round in 0..5 {
            let got = pool.install(|| X_ENGINE.get().unwrap().run(|cx| cx.get::<X>(&round)));
            tx.send(got).unwrap();
        }
    });
    for round in 0..5 {
        let got = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("round {round} hung: a job needing X ran on X's stack"));
        assert_eq!(got, Ok(3));
    }
}
