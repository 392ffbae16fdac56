//! The memo table as users see it: values borrowed for the engine's lifetime, hits that
//! write nothing shared, growth under concurrent claims, every key and value dropped
//! exactly once, inputs replaced, and keys whose `Clone` panics.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::counted::{live, Counted, TrackedKey};
use common::{pool, run_on, watchdog};
use weft::query::{Cx, Engine, Input, Query, QueryError};

/// Both engines, each with the pool to run it on (none for the serial one).
fn engines() -> Vec<(String, Option<weft::ThreadPool>, Engine)> {
    common::engines(&[1, 2, 8])
}

struct Shared;
impl Query for Shared {
    type Key = u32;
    type Value = Arc<Vec<u64>>;
    const NAME: &'static str = "shared";
    fn compute(_: &Cx<'_>, k: &u32) -> Arc<Vec<u64>> {
        Arc::new((0..u64::from(*k)).collect())
    }
}

#[test]
fn get_ref_borrows_the_stored_value_and_a_hit_takes_no_reference_count() {
    for (name, pool, engine) in engines() {
        let (first, counts) = run_on(&pool, &engine, |cx| {
            let first: *const Vec<u64> = &**cx.get_ref::<Shared>(&100);
            let keys: Vec<u32> = (0..64).map(|_| 100).collect();
            // Hits from every worker, in parallel: none of them clones the `Arc`.
            let counts = cx.par_map(&keys, |cx, k| {
                let value = cx.get_ref::<Shared>(k);
                assert_eq!(value.len(), 100);
                Arc::strong_count(value)
            });
            (first as usize, counts)
        })
        .unwrap();
        assert!(counts.iter().all(|&c| c == 1), "{name}: {counts:?}");
        // Later runs see the very same value (it never moved).
        let again = run_on(&pool, &engine, |cx| {
            &**cx.get_ref::<Shared>(&100) as *const Vec<u64> as usize
        })
        .unwrap();
        assert_eq!(first, again, "{name}");
        // `get` still clones, and both agree.
        let cloned = run_on(&pool, &engine, |cx| cx.get::<Shared>(&100)).unwrap();
        assert_eq!(Arc::strong_count(&cloned), 2, "{name}");
    }
}

static SQUARES_COMPUTED: AtomicUsize = AtomicUsize::new(0);

struct Square;
impl Query for Square {
    type Key = u64;
    type Value = u64;
    const NAME: &'static str = "square";
    fn compute(_: &Cx<'_>, k: &u64) -> u64 {
        SQUARES_COMPUTED.fetch_add(1, Ordering::Relaxed);
        k.wrapping_mul(*k)
    }
}

static DENSE_SQUARES_COMPUTED: AtomicUsize = AtomicUsize::new(0);

/// `Square` with a dense memo (`KEY_INDEX`): claims are CASes on slots, racing each
/// other and the allocation of pages.
struct DenseSquare;
impl Query for DenseSquare {
    type Key = u64;
    type Value = u64;
    const NAME: &'static str = "square";
    const KEY_INDEX: Option<fn(&u64) -> u32> = Some(|k| *k as u32);
    fn compute(_: &Cx<'_>, k: &u64) -> u64 {
        DENSE_SQUARES_COMPUTED.fetch_add(1, Ordering::Relaxed);
        k.wrapping_mul(*k)
    }
}

#[test]
fn a_table_growing_under_concurrent_claims_and_hits_loses_nothing() {
    fn check<Q: Query<Key = u64, Value = u64>>(computed: &'static AtomicUsize) {
        watchdog(120, "concurrent growth", move || {
            let pool = pool(8);
            let engine = Engine::new();
            const KEYS: u64 = 200_000;
            // Every key requested by several lanes at once, in different orders, so
            // claims, hits and waits race with the index growing.
            let lanes: Vec<u64> = (0..16).collect();
            let sums = pool
                .install(|| {
                    engine.run(|cx| {
                        cx.par_map(&lanes, |cx, &lane| {
                            let mut sum = 0u64;
                            for i in 0..KEYS {
                                let k = if lane % 2 == 0 { i } else { KEYS - 1 - i };
                                // A multiplier coprime to KEYS: a permutation of the keys.
                                let k = k * [1, 3, 7, 9, 11, 13, 17, 19][lane as usize / 2] % KEYS;
                                sum = sum.wrapping_add(cx.get::<Q>(&k));
                            }
                            sum
                        })
                    })
                })
                .unwrap();
            let expected = (0..KEYS).fold(0u64, |a, k| a.wrapping_add(k.wrapping_mul(k)));
            assert!(sums.iter().all(|&s| s == expected), "{sums:?}");
            assert_eq!(computed.load(Ordering::Relaxed), KEYS as usize);
        });
    }
    check::<Square>(&SQUARES_COMPUTED);
    check::<DenseSquare>(&DENSE_SQUARES_COMPUTED);
}

/// Which generation of values `Tracked` makes: 'v' (unset) or the input's tag.
struct Generation;
impl Input for Generation {
    type Key = ();
    type Value = char;
    const NAME: &'static str = "generation";
}

struct Tracked;
impl Query for Tracked {
    type Key = TrackedKey;
    type Value = Arc<Counted>;
    const NAME: &'static str = "tracked";
    fn compute(cx: &Cx<'_>, k: &TrackedKey) -> Arc<Counted> {
        let tag = cx.try_get::<Generation>(&()).unwrap_or('v');
        Arc::new(Counted::new(tag, k.0, live()))
    }
}

#[test]
fn dropping_an_engine_drops_every_key_and_value_once() {
    for (name, pool, engine) in engines() {
        let mut engine = engine.incremental();
        let keys: Vec<u32> = (0..5_000).collect();
        let probe: Vec<TrackedKey> = keys
            .iter()
            .map(|&k| {
                TrackedKey(
                    k,
                    Counted::new('p', k + 1_000_000 * name.len() as u32, live()),
                )
            })
            .collect();
        run_on(&pool, &engine, |cx| {
            cx.par_for_each(&probe, |cx, k| {
                assert_eq!(cx.get_ref::<Tracked>(k).id, k.0);
            })
        })
        .unwrap();
        // A re-execution after an input change drops the value it replaces.
        engine.set_input::<Generation>((), 'w');
        let key = TrackedKey(7, Counted::new('q', 7, live()));
        let tag = run_on(&pool, &engine, |cx| cx.get_ref::<Tracked>(&key).kind).unwrap();
        assert_eq!(tag, 'w', "{name}");
        assert!(!live().lock().unwrap().contains(&('v', 7)), "{name}");
        assert!(live().lock().unwrap().contains(&('v', 8)), "{name}");
        drop(key);
        drop(probe);
        drop(engine);
        let left: Vec<(char, u32)> = live().lock().unwrap().iter().copied().collect();
        assert!(left.is_empty(), "{name}: still alive after drop: {left:?}");
    }
}

/// A key whose `Clone` panics for one value: the claim fails before anything is
/// published, and the engine stays usable.
#[derive(PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
struct Brittle(u32);
impl Clone for Brittle {
    fn clone(&self) -> Self {
        if self.0 == 13 {
            panic!("clone of 13");
        }
        Brittle(self.0)
    }
}

struct OnBrittle;
impl Query for OnBrittle {
    type Key = Brittle;
    type Value = u32;
    const NAME: &'static str = "on_brittle";
    fn compute(_: &Cx<'_>, k: &Brittle) -> u32 {
        k.0 * 2
    }
}

/// `OnBrittle` with a dense memo (`KEY_INDEX`): the key's clone is made before the
/// slot's CAS, so its panic leaves the slot vacant.
struct DenseOnBrittle;
impl Query for DenseOnBrittle {
    type Key = Brittle;
    type Value = u32;
    const NAME: &'static str = "on_brittle";
    const KEY_INDEX: Option<fn(&Brittle) -> u32> = Some(|k| k.0);
    fn compute(_: &Cx<'_>, k: &Brittle) -> u32 {
        k.0 * 2
    }
}

#[test]
fn a_key_whose_clone_panics_leaves_the_table_usable() {
    fn check<Q: Query<Key = Brittle, Value = u32>>() {
        for (name, pool, engine) in engines() {
            watchdog(30, &name.clone(), move || {
                for _ in 0..2 {
                    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_on(&pool, &engine, |cx| cx.get::<Q>(&Brittle(13)))
                    }));
                    // The panic surfaces (as a panic of the run, or as an error of the
                    // request): either way, not a hang and not a wrong value.
                    match got {
                        Err(_) | Ok(Err(QueryError::Panicked { .. })) => {}
                        other => panic!("{name}: {other:?}"),
                    }
                    let ok = run_on(&pool, &engine, |cx| {
                        (0..100)
                            .filter(|&k| k != 13)
                            .map(|k| cx.get::<Q>(&Brittle(k)))
                            .sum::<u32>()
                    });
                    assert_eq!(ok, Ok((0..100).filter(|&k| k != 13).map(|k| k * 2).sum()));
                }
            });
        }
    }
    check::<OnBrittle>();
    check::<DenseOnBrittle>();
}

struct Knob;
impl Input for Knob {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "knob";
}

struct Fails;
impl Query for Fails {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "fails";
    fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
        let v = cx.get::<Knob>(k);
        if v % 2 == 1 {
            panic!("odd value {v}");
        }
        v
    }
}

#[test]
fn a_poisoned_entry_runs_again_when_its_input_changes() {
    for (name, pool, engine) in engines() {
        let mut engine = engine.incremental();
        engine.set_input::<Knob>(3, 3);
        let first = run_on(&pool, &engine, |cx| cx.try_get::<Fails>(&3)).unwrap();
        assert!(
            matches!(&first, Err(QueryError::Panicked { message, .. }) if message == "odd value 3"),
            "{name}: {first:?}"
        );
        engine.set_input::<Knob>(3, 34);
        let after = run_on(&pool, &engine, |cx| {
            (cx.get::<Fails>(&3), *cx.get_ref::<Fails>(&3))
        });
        assert_eq!(after, Ok((34, 34)), "{name}");
    }
}

#[test]
fn a_batch_engine_refuses_to_change_an_input_a_run_may_have_read() {
    for (name, pool, mut engine) in engines() {
        engine.set_input::<Knob>(1, 2);
        engine.set_input::<Knob>(1, 4); // before any run: fine
        assert_eq!(
            run_on(&pool, &engine, |cx| cx.get::<Fails>(&1)),
            Ok(4),
            "{name}"
        );
        engine.set_input::<Knob>(9, 10); // never read: fine
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            engine.set_input::<Knob>(1, 6)
        }));
        let message = refused.expect_err("a read input cannot change in a batch engine");
        let text = message
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(
            text.contains("`knob(1)`") && text.contains("incremental()"),
            "{text}"
        );
        // The refusal changed nothing.
        assert_eq!(
            run_on(&pool, &engine, |cx| cx.get::<Fails>(&1)),
            Ok(4),
            "{name}"
        );
        assert_eq!(
            run_on(&pool, &engine, |cx| cx.get::<Fails>(&9)),
            Ok(10),
            "{name}"
        );
    }
}
