//! The serial engine is the reference: same values, same errors and same reports as the
//! parallel engine at every thread count, on programs that are easy to get wrong (two
//! queries with the same key and value types, deep chains, parallel parts that fail,
//! query types sharing a name, nested runs). Each test runs under a watchdog.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::{pool, watchdog};
use weft::query::{Cx, Engine, Query};

/// `f` on the serial engine and on the parallel one at 1, 2 and 4 threads: all equal.
fn same_everywhere<R: Send + PartialEq + std::fmt::Debug>(f: impl Fn(&Engine) -> R + Sync) -> R {
    let serial = f(&Engine::serial());
    for threads in [1, 2, 4] {
        let parallel = pool(threads).install(|| f(&Engine::new()));
        assert_eq!(
            parallel, serial,
            "{threads} threads disagree with the serial engine"
        );
    }
    serial
}

// ------------------------------------------------------------- tables per query

struct PlusOne;
impl Query for PlusOne {
    type Key = u64;
    type Value = u64;
    const NAME: &'static str = "plus_one";
    fn compute(_: &Cx<'_>, k: &u64) -> u64 {
        k + 1
    }
}

struct TimesTwo;
impl Query for TimesTwo {
    type Key = u64;
    type Value = u64;
    const NAME: &'static str = "times_two";
    fn compute(cx: &Cx<'_>, k: &u64) -> u64 {
        // Requests a different query with the same key: not a self-cycle.
        cx.get::<PlusOne>(k) * 2 - 2
    }
}

#[test]
fn queries_with_the_same_key_and_value_types_have_their_own_memos() {
    let got =
        same_everywhere(|engine| engine.run(|cx| (cx.get::<PlusOne>(&5), cx.get::<TimesTwo>(&5))));
    assert_eq!(got, Ok((6, 10)));
}

// ------------------------------------------------------------- deep chains

struct Chain;
impl Query for Chain {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "chain";
    fn compute(cx: &Cx<'_>, k: &u32) -> u64 {
        if *k == 0 {
            0
        } else {
            cx.get::<Chain>(&(k - 1)) + 1
        }
    }
}

#[test]
fn a_100k_deep_chain_runs_on_both_engines() {
    watchdog(60, "deep chain", || {
        let got = same_everywhere(|engine| engine.run(|cx| cx.get::<Chain>(&100_000)));
        assert_eq!(got, Ok(100_000));
    });
}

// ------------------------------------------------------------- failing parallel parts

static ITEMS_RUN: AtomicUsize = AtomicUsize::new(0);
static RUN_LOCK: Mutex<()> = Mutex::new(());

struct Item;
impl Query for Item {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "item";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        ITEMS_RUN.fetch_add(1, Ordering::SeqCst);
        if *k == 30 || *k == 70 {
            // The later failure is the quicker one on a pool.
            std::thread::sleep(Duration::from_millis(if *k == 30 { 30 } else { 0 }));
            panic!("item {k} failed");
        }
        *k
    }
}

struct SumItems;
impl Query for SumItems {
    type Key = &'static str;
    type Value = u32;
    const NAME: &'static str = "sum_items";
    fn compute(cx: &Cx<'_>, how: &&'static str) -> u32 {
        let items: Vec<u32> = (0..100).collect();
        match *how {
            "par_map" => cx.par_map(&items, |cx, k| cx.get::<Item>(k)).iter().sum(),
            "par_for_each" => {
                let sum = AtomicUsize::new(0);
                cx.par_for_each(&items, |cx, k| {
                    sum.fetch_add(cx.get::<Item>(k) as usize, Ordering::SeqCst);
                });
                sum.into_inner() as u32
            }
            _ => unreachable!(),
        }
    }
}

#[test]
fn par_map_and_par_for_each_run_every_item_and_store_the_leftmost_failure() {
    let _one_at_a_time = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for how in ["par_map", "par_for_each"] {
        let got = same_everywhere(|engine| {
            ITEMS_RUN.store(0, Ordering::SeqCst);
            let result = engine.run(|cx| cx.try_get::<SumItems>(&how)).unwrap();
            (result, ITEMS_RUN.load(Ordering::SeqCst))
        });
        let (result, ran) = got;
        assert_eq!(ran, 100, "{how}: every item ran");
        let err = result.unwrap_err();
        assert!(
            err.to_string().ends_with("panicked: item 30 failed"),
            "{how}: {err}"
        );
    }
}

struct ScopeOfFailures;
impl Query for ScopeOfFailures {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "scope_of_failures";
    fn compute(cx: &Cx<'_>, _: &u32) -> u32 {
        let done = AtomicUsize::new(0);
        cx.scope(|s| {
            s.spawn(|_| {
                // First in spawn order, last in time.
                std::thread::sleep(Duration::from_millis(50));
                done.fetch_add(1, Ordering::SeqCst);
                panic!("first spawn failed");
            });
            s.spawn(|_| {
                done.fetch_add(1, Ordering::SeqCst);
                panic!("second spawn failed");
            });
            s.spawn(|_| {
                done.fetch_add(1, Ordering::SeqCst);
            });
        });
        done.into_inner() as u32
    }
}

#[test]
fn a_scope_with_several_failures_stores_the_first_in_spawn_order() {
    let got = same_everywhere(|engine| {
        engine
            .run(|cx| cx.try_get::<ScopeOfFailures>(&0))
            .unwrap()
            .map_err(|e| e.to_string())
    });
    assert_eq!(
        got,
        Err("query `scope_of_failures(0)` panicked: first spawn failed".to_string())
    );
}

#[test]
fn a_pool_scope_re_raises_the_first_panic_in_spawn_order_also_for_nested_spawns() {
    let pool = pool(2);
    for _ in 0..5 {
        let raised = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                s.spawn(|s| {
                    s.spawn(|_| {
                        std::thread::sleep(Duration::from_millis(20));
                        panic!("nested in the first spawn");
                    });
                    panic!("first spawn itself");
                });
                s.spawn(|_| panic!("second spawn"));
            })
        }));
        let payload = raised.expect_err("the scope re-raises");
        // The first spawn made its child before panicking: in a serial run the child
        // runs (and fails) first.
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"nested in the first spawn")
        );
    }
}

// ------------------------------------------------------------- names that tie

mod first {
    use super::*;
    pub struct Shared;
    impl Query for Shared {
        type Key = u32;
        type Value = u32;
        const NAME: &'static str = "shared";
        fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
            cx.get::<super::second::Shared>(k)
        }
    }
}

mod second {
    use super::*;
    pub struct Shared;
    impl Query for Shared {
        type Key = u32;
        type Value = u32;
        const NAME: &'static str = "shared";
        fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
            cx.get::<super::first::Shared>(k)
        }
    }
}

#[test]
fn a_cycle_between_query_types_sharing_a_name_reports_the_same_from_either_side() {
    let from_first = same_everywhere(|engine| {
        engine
            .run(|cx| cx.try_get::<first::Shared>(&1))
            .unwrap()
            .map_err(|e| e.to_string())
    });
    let from_second = same_everywhere(|engine| {
        engine
            .run(|cx| cx.try_get::<second::Shared>(&1))
            .unwrap()
            .map_err(|e| e.to_string())
    });
    assert!(from_first.is_err());
    assert_eq!(from_first, from_second);
}

// ------------------------------------------------------------- nested runs

struct Nested;
impl Query for Nested {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "nested";
    fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
        // A nested run of the engine the query runs on (found through a thread-local
        // stand-in: the test owns the engine).
        let engine = ENGINE.with(|e| e.get());
        // SAFETY: set by the test around the outer run, which outlives this compute.
        let engine = unsafe { &*engine };
        match k {
            // Asks for a plain query: works.
            0 => engine.run(|cx| cx.get::<PlusOne>(&41)).unwrap() as u32,
            // Asks for itself: a cycle, not a hang.
            _ => {
                let _ = cx;
                match engine.run(|cx| cx.get::<Nested>(k)) {
                    Ok(v) => v + 1,
                    Err(e) => panic!("nested run failed: {e}"),
                }
            }
        }
    }
}

std::thread_local! {
    static ENGINE: std::cell::Cell<*const Engine> = const { std::cell::Cell::new(std::ptr::null()) };
}

#[test]
fn a_nested_run_inside_a_query_works_and_sees_its_cycles() {
    watchdog(60, "nested run", || {
        let got = same_everywhere(|engine| {
            // The pool's workers (and the serial engine's thread) read the engine from
            // this thread-local: set it on whatever thread will run the queries.
            let engine_ptr = engine as *const Engine as usize;
            engine.run(|cx| {
                let set = move || ENGINE.with(|e| e.set(engine_ptr as *const Engine));
                set();
                (
                    cx.try_get::<Nested>(&0),
                    cx.try_get::<Nested>(&1).map_err(|e| e.to_string()),
                )
            })
        });
        let (plain, cyclic) = got.unwrap();
        assert_eq!(plain, Ok(42));
        assert_eq!(
            cyclic,
            Err("cycle detected when computing `nested(1)`\n  ...which immediately requires computing `nested(1)` again".to_string())
        );
    });
}
