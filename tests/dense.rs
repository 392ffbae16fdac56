//! Memo tables indexed by the key (`Query::KEY_INDEX`): the same answers, errors and
//! cycle reports as hashed tables on every engine, every key and value dropped once, and
//! two keys that claim one index (racing claims and a key whose `Clone` panics:
//! `memo.rs`).

mod common;

use std::sync::Arc;

use common::counted::{live, Counted, TrackedKey};
use common::{engines, run_on, watchdog};
use weft::query::{Cx, Cycle, Input, Query, QueryError};

/// The dense and the hashed variant of a query: same name, same body.
macro_rules! dense_and_hashed {
    ($dense:ident, $hashed:ident, $key:ty, $value:ty, $name:literal, $index:expr,
     |$cx:ident, $k:ident, $get:ident| $body:expr,
     recover: |$rk:ident, $rc:ident| $recover:expr) => {
        struct $dense;
        impl Query for $dense {
            type Key = $key;
            type Value = $value;
            const NAME: &'static str = $name;
            const KEY_INDEX: Option<fn(&$key) -> u32> = Some($index);
            fn compute($cx: &Cx<'_>, $k: &$key) -> $value {
                macro_rules! $get {
                    ($key_expr:expr) => {
                        $cx.get::<$dense>(&$key_expr)
                    };
                }
                $body
            }
            fn recover(_: &Cx<'_>, $rk: &$key, $rc: &Cycle) -> Option<$value> {
                $recover
            }
        }
        struct $hashed;
        impl Query for $hashed {
            type Key = $key;
            type Value = $value;
            const NAME: &'static str = $name;
            fn compute($cx: &Cx<'_>, $k: &$key) -> $value {
                macro_rules! $get {
                    ($key_expr:expr) => {
                        $cx.get::<$hashed>(&$key_expr)
                    };
                }
                $body
            }
            fn recover(_: &Cx<'_>, $rk: &$key, $rc: &Cycle) -> Option<$value> {
                $recover
            }
        }
    };
}

// Node k reads k / 2 and k - 3; nodes 40..44 form a cycle (40 -> 41 -> ... -> 44 ->
// 40) that node 42 recovers from; node 77 panics. Everything above them fails or
// carries their results.
dense_and_hashed!(
    DenseNode,
    HashedNode,
    u32,
    u64,
    "node",
    |k| *k,
    |cx, k, get| {
        let k = *k;
        if k == 77 {
            panic!("node 77 fails");
        }
        if (40..45).contains(&k) {
            return get!(if k == 44 { 40 } else { k + 1 }) + 1;
        }
        if k < 3 {
            return u64::from(k);
        }
        get!(k / 2)
            .wrapping_mul(31)
            .wrapping_add(get!(k - 3))
            .wrapping_add(u64::from(k))
    },
    recover: |k, _cycle| (*k == 42).then_some(4200)
);

#[test]
fn dense_and_hashed_tables_agree_on_values_cycles_and_panics_everywhere() {
    watchdog(120, "dense vs hashed", || {
        let keys: Vec<u32> = (0..2_000).rev().collect();
        let mut reference = None;
        for (name, pool, engine) in engines(&[1, 2, 8]) {
            let run = |dense: bool| {
                run_on(&pool, &engine, |cx| {
                    cx.par_map(&keys, |cx, k| {
                        let got = if dense {
                            cx.try_get::<DenseNode>(k)
                        } else {
                            cx.try_get::<HashedNode>(k)
                        };
                        got.map_err(|e| e.to_string())
                    })
                })
                .unwrap()
            };
            let (dense, hashed) = (run(true), run(false));
            assert_eq!(dense, hashed, "{name}: dense and hashed tables disagree");
            assert_eq!(dense[keys.len() - 1 - 5], Ok(2 * 31 + 2 + 5), "{name}");
            assert!(
                dense
                    .iter()
                    .any(|r| matches!(r, Err(e) if e.contains("node 77 fails"))),
                "{name}: the panic reached its dependents"
            );
            assert_eq!(dense[keys.len() - 1 - 42], Ok(4200), "{name}: 42 recovers");
            match &reference {
                None => reference = Some(dense),
                Some(reference) => assert_eq!(&dense, reference, "{name}: differs from serial"),
            }
        }
    });
}

struct DenseChain;
impl Query for DenseChain {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "dense_chain";
    const KEY_INDEX: Option<fn(&u32) -> u32> = Some(|k| *k);
    fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
        if *k == 0 {
            0
        } else {
            cx.get::<DenseChain>(&(k - 1)) + 1
        }
    }
}

struct Far;
impl Query for Far {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "far";
    const KEY_INDEX: Option<fn(&u32) -> u32> = Some(|k| *k);
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        k + 1
    }
}

#[test]
fn a_100k_deep_dense_chain_and_a_far_index_run_everywhere() {
    watchdog(120, "deep dense chain", || {
        for (name, pool, engine) in engines(&[1, 2]) {
            let got = run_on(&pool, &engine, |cx| {
                (
                    cx.get::<DenseChain>(&100_000),
                    // Far beyond the rest: its page is allocated (zeroed, untouched
                    // memory) on first use.
                    cx.get::<Far>(&(1 << 22)),
                )
            });
            assert_eq!(got, Ok((100_000, (1 << 22) + 1)), "{name}");
        }
    });
}

// ---------------------------------------------------------------- drops

/// Which generation of values `Tracked` makes.
struct Generation;
impl Input for Generation {
    type Key = u32;
    type Value = char;
    const NAME: &'static str = "generation";
    const KEY_INDEX: Option<fn(&u32) -> u32> = Some(|k| *k);
}

struct Tracked;
impl Query for Tracked {
    type Key = TrackedKey;
    type Value = Arc<Counted>;
    const NAME: &'static str = "tracked";
    const KEY_INDEX: Option<fn(&TrackedKey) -> u32> = Some(|k| k.0);
    fn compute(cx: &Cx<'_>, k: &TrackedKey) -> Arc<Counted> {
        let tag = cx.try_get::<Generation>(&(k.0 % 2)).unwrap_or('v');
        Arc::new(Counted::new(tag, k.0, live()))
    }
}

#[test]
fn dense_keys_and_values_are_dropped_once_and_inputs_re_execute_their_readers() {
    for (name, pool, engine) in engines(&[1, 2, 8]) {
        let mut engine = engine.incremental();
        engine.set_input::<Generation>(0, 'v');
        let probe: Vec<TrackedKey> = (0..3_000)
            .map(|k| {
                TrackedKey(
                    k,
                    Counted::new('p', k + 1_000_000 * name.len() as u32, live()),
                )
            })
            .collect();
        // Every key requested twice at once (racing claims drop their losing clones).
        run_on(&pool, &engine, |cx| {
            cx.par_for_each(&probe, |cx, k| {
                let (a, b) = cx.join(
                    |cx| cx.get_ref::<Tracked>(k).id,
                    |cx| cx.get_ref::<Tracked>(k).id,
                );
                assert_eq!((a, b), (k.0, k.0));
            })
        })
        .unwrap();
        // Only the even keys read input 0: they run again, the odd ones do not.
        engine.set_input::<Generation>(0, 'w');
        let tags = run_on(&pool, &engine, |cx| {
            (
                cx.get_ref::<Tracked>(&probe[6]).kind,
                cx.get_ref::<Tracked>(&probe[7]).kind,
            )
        })
        .unwrap();
        assert_eq!(tags, ('w', 'v'), "{name}");
        assert_eq!(engine.stats().executed, 1, "{name}: only key 6 ran again");
        assert!(
            !live().lock().unwrap().contains(&('v', 6)),
            "{name}: old value dropped"
        );
        drop(probe);
        drop(engine);
        let left: Vec<(char, u32)> = live().lock().unwrap().iter().copied().collect();
        assert!(left.is_empty(), "{name}: still alive after drop: {left:?}");
    }
}

// ---------------------------------------------------------------- misuse and panics

struct Clashing;
impl Query for Clashing {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "clashing";
    // Wrong on purpose: 3 and 13 get one index.
    const KEY_INDEX: Option<fn(&u32) -> u32> = Some(|k| k % 10);
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        k + 1
    }
}

/// Asks for `Clashing` from inside a query, whose entry the misuse then poisons.
struct AskClashing;
impl Query for AskClashing {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "ask_clashing";
    fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
        cx.get::<Clashing>(k)
    }
}

#[test]
fn two_keys_given_one_index_fail_naming_both_instead_of_sharing_a_memo() {
    for (name, pool, engine) in engines(&[1, 2]) {
        let got = run_on(&pool, &engine, |cx| {
            (cx.get::<AskClashing>(&3), cx.try_get::<AskClashing>(&13))
        });
        let Ok((4, Err(QueryError::Panicked { message, .. }))) = got else {
            panic!("{name}: {got:?}");
        };
        assert_eq!(
            message, "weft: `clashing::KEY_INDEX` gave index 3 to two different keys, 3 and 13",
            "{name}"
        );
        // Key 3 keeps its own memo.
        assert_eq!(
            run_on(&pool, &engine, |cx| cx.get::<Clashing>(&3)),
            Ok(4),
            "{name}"
        );
    }
}

struct Huge;
impl Query for Huge {
    type Key = u32;
    type Value = [u64; 4];
    const NAME: &'static str = "huge";
    // Wrong on purpose: a hash, not a dense id.
    const KEY_INDEX: Option<fn(&u32) -> u32> = Some(|k| k.wrapping_mul(0x9e37_79b9) | 1 << 31);
    fn compute(_: &Cx<'_>, k: &u32) -> [u64; 4] {
        [u64::from(*k); 4]
    }
}

/// Asks for `Huge` from inside a query, which a failed allocation then poisons.
struct AskHuge;
impl Query for AskHuge {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "ask_huge";
    fn compute(cx: &Cx<'_>, k: &u32) -> u64 {
        cx.get::<Huge>(k)[0]
    }
}

#[test]
fn an_index_too_large_to_allocate_fails_its_request_instead_of_aborting() {
    // Index above 2^31: a page of 2^31 slots of 48 bytes. Where the system refuses
    // (no overcommit of 96 GiB), the request fails with a clear error; where it grants
    // the untouched address space, the value comes back. Never an abort.
    for (name, pool, engine) in engines(&[2]) {
        let got = run_on(&pool, &engine, |cx| cx.try_get::<AskHuge>(&12345));
        match got {
            Ok(Ok(12345)) => {}
            Ok(Err(QueryError::Panicked { message, .. })) => {
                assert!(message.contains("could not allocate"), "{name}: {message}")
            }
            other => panic!("{name}: {other:?}"),
        }
        // The engine still works.
        assert_eq!(
            run_on(&pool, &engine, |cx| cx.get::<DenseChain>(&10)),
            Ok(10),
            "{name}"
        );
    }
}

struct PickyIndex;
impl Query for PickyIndex {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "picky_index";
    const KEY_INDEX: Option<fn(&u32) -> u32> = Some(|k| {
        assert!(*k != 5, "no index for 5");
        *k
    });
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        k * 10
    }
}

/// Asks for `PickyIndex` from inside a query.
struct AskPicky;
impl Query for AskPicky {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "ask_picky";
    fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
        cx.get::<PickyIndex>(k)
    }
}

#[test]
fn a_key_index_that_panics_fails_its_request_and_nothing_else() {
    for (name, pool, engine) in engines(&[1, 2]) {
        let got = run_on(&pool, &engine, |cx| {
            let keys: Vec<u32> = (0..10).collect();
            cx.par_map(&keys, |cx, k| {
                cx.try_get::<AskPicky>(k).map_err(|e| e.to_string())
            })
        })
        .unwrap();
        for (k, got) in got.iter().enumerate() {
            match got {
                Err(e) if k == 5 => assert!(e.contains("no index for 5"), "{name}: {e}"),
                Ok(v) if k != 5 => assert_eq!(*v, k as u32 * 10, "{name}"),
                other => panic!("{name}: key {k}: {other:?}"),
            }
        }
    }
}
