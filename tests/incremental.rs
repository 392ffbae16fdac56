//! Incremental engines as users meet them: what an edit re-executes (through the
//! counts), early cutoff, a cycle an edit removes, unset inputs, user code that panics
//! in `same` or in a replaced value's `Drop`, and chains 100,000 queries deep, on the
//! serial engine and at 1, 2 and 8 threads.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use common::{run_on, watchdog};
use weft::query::{Cx, Engine, Input, Query, QueryError, Stats};

fn engines() -> Vec<(String, Option<weft::ThreadPool>, Engine)> {
    common::engines(&[1, 2, 8])
        .into_iter()
        .map(|(name, pool, engine)| (name, pool, engine.incremental()))
        .collect()
}

/// `after - before` of the counts (same revision).
fn delta(before: Stats, after: Stats) -> (u64, u64, u64) {
    (
        after.executed - before.executed,
        after.verified - before.verified,
        after.backdated - before.backdated,
    )
}

struct Text;
impl Input for Text {
    type Key = u32;
    type Value = String;
    const NAME: &'static str = "text";
}

/// Which texts have been "compiled": each query below logs its runs here.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Tests in this file share `LOG`; they take this lock to run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn log(entry: String) {
    LOG.lock().unwrap().push(entry);
}

fn take_log() -> Vec<String> {
    let mut log = std::mem::take(&mut *LOG.lock().unwrap());
    log.sort();
    log
}

/// The length of a text: equal for many edits (early cutoff).
struct Len;
impl Query for Len {
    type Key = u32;
    type Value = usize;
    const NAME: &'static str = "len";
    fn compute(cx: &Cx<'_>, k: &u32) -> usize {
        log(format!("len {k}"));
        cx.get_ref::<Text>(k).len()
    }
    fn same(old: &usize, new: &usize) -> bool {
        old == new
    }
}

/// Depends on a text's length only.
struct Width;
impl Query for Width {
    type Key = u32;
    type Value = usize;
    const NAME: &'static str = "width";
    fn compute(cx: &Cx<'_>, k: &u32) -> usize {
        log(format!("width {k}"));
        cx.get::<Len>(k) * 10
    }
}

/// Reads every text's width.
struct Total;
impl Query for Total {
    type Key = ();
    type Value = usize;
    const NAME: &'static str = "total";
    fn compute(cx: &Cx<'_>, _: &()) -> usize {
        log("total".to_string());
        let keys: Vec<u32> = (0..4).collect();
        cx.par_map(&keys, |cx, k| cx.get::<Width>(k)).iter().sum()
    }
}

#[test]
fn an_edit_reexecutes_only_what_depends_on_it_and_early_cutoff_stops_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (name, pool, mut engine) in engines() {
        for k in 0..4 {
            engine.set_input::<Text>(k, format!("text {k}"));
        }
        take_log();
        assert_eq!(run_on(&pool, &engine, |cx| cx.get::<Total>(&())), Ok(240));
        assert_eq!(take_log().len(), 9, "{name}: first run computes everything");

        // Nothing changed: a second run is all hits.
        let before = engine.stats();
        assert_eq!(run_on(&pool, &engine, |cx| cx.get::<Total>(&())), Ok(240));
        assert_eq!(delta(before, engine.stats()), (0, 0, 0), "{name}");

        // Same length: `len 2` re-executes, is cut off; nothing else runs.
        engine.set_input::<Text>(2, "TEXT 2".to_string());
        assert_eq!(engine.stats().revision, 1, "{name}");
        assert_eq!(run_on(&pool, &engine, |cx| cx.get::<Total>(&())), Ok(240));
        assert_eq!(take_log(), ["len 2"], "{name}");
        let stats = engine.stats();
        assert_eq!(
            (stats.executed, stats.backdated),
            (1, 1),
            "{name}: {stats:?}"
        );
        // total, width 2 reused (green); the other widths and lens were never stale
        // enough to need a check beyond total's.
        assert!(stats.verified >= 2, "{name}: {stats:?}");

        // A longer text: len and width of 3 run, and total.
        engine.set_input::<Text>(3, "text three".to_string());
        assert_eq!(run_on(&pool, &engine, |cx| cx.get::<Total>(&())), Ok(280));
        assert_eq!(take_log(), ["len 3", "total", "width 3"], "{name}");
        assert_eq!(engine.stats().backdated, 0, "{name}");
    }
}

struct Flag;
impl Input for Flag {
    type Key = ();
    type Value = bool;
    const NAME: &'static str = "flag";
}

/// `a` asks for `b` while the flag is set; `b` always asks for `a`.
struct A;
impl Query for A {
    type Key = ();
    type Value = u32;
    const NAME: &'static str = "a";
    fn compute(cx: &Cx<'_>, _: &()) -> u32 {
        if cx.get::<Flag>(&()) {
            cx.get::<B>(&()) + 1
        } else {
            1
        }
    }
}

struct B;
impl Query for B {
    type Key = ();
    type Value = u32;
    const NAME: &'static str = "b";
    fn compute(cx: &Cx<'_>, _: &()) -> u32 {
        cx.get::<A>(&()) + 10
    }
}

#[test]
fn a_cycle_an_edit_removes_is_gone_and_one_it_adds_is_reported() {
    for (name, pool, mut engine) in engines() {
        engine.set_input::<Flag>((), true);
        let both = |cx: &Cx<'_>| (cx.try_get::<A>(&()), cx.try_get::<B>(&()));
        let (a, b) = run_on(&pool, &engine, both).unwrap();
        assert!(matches!(a, Err(QueryError::Cycle(_))), "{name}: {a:?}");
        assert_eq!(a, b, "{name}");
        engine.set_input::<Flag>((), false);
        assert_eq!(run_on(&pool, &engine, both), Ok((Ok(1), Ok(11))), "{name}");
        engine.set_input::<Flag>((), true);
        let (a, _) = run_on(&pool, &engine, both).unwrap();
        let Err(QueryError::Cycle(cycle)) = a else {
            panic!("{name}: {a:?}")
        };
        assert_eq!(cycle.to_string().lines().count(), 3, "{name}: {cycle}");
    }
}

struct Elsewhere;
impl Input for Elsewhere {
    type Key = ();
    type Value = u32;
    const NAME: &'static str = "elsewhere";
}

#[test]
fn a_cycle_nothing_touched_is_reported_the_same_in_every_later_revision() {
    // The memos of a cycle depend on each other: checking them without claims would go
    // round forever; it stops, and the claims that follow find the same cycle.
    for (name, pool, mut engine) in engines() {
        engine.set_input::<Flag>((), true);
        let both = |cx: &Cx<'_>| (cx.try_get::<A>(&()), cx.try_get::<B>(&()));
        let first = run_on(&pool, &engine, both).unwrap();
        assert!(
            matches!(first.0, Err(QueryError::Cycle(_))),
            "{name}: {first:?}"
        );
        for revision in 1..4 {
            engine.set_input::<Elsewhere>((), revision);
            assert_eq!(run_on(&pool, &engine, both), Ok(first.clone()), "{name}");
            assert_eq!(engine.stats().revision, u64::from(revision), "{name}");
        }
    }
}

#[test]
fn an_unset_input_is_an_error_until_it_is_set() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (name, pool, mut engine) in engines() {
        let got = run_on(&pool, &engine, |cx| cx.try_get::<Width>(&7)).unwrap();
        assert_eq!(
            got,
            Err(QueryError::InputNotSet {
                input: "text",
                key: "7".to_string()
            }),
            "{name}"
        );
        engine.set_input::<Text>(7, "seven".to_string());
        assert_eq!(
            run_on(&pool, &engine, |cx| cx.get::<Width>(&7)),
            Ok(50),
            "{name}"
        );
    }
    take_log();
}

/// A value whose `same` panics for one input, and whose `Drop` panics for another.
#[derive(Clone, Debug, PartialEq)]
struct Touchy(u32);
static DROP_PANICS: AtomicUsize = AtomicUsize::new(0);
impl Drop for Touchy {
    fn drop(&mut self) {
        if self.0 == 666 && !std::thread::panicking() {
            DROP_PANICS.fetch_add(1, Ordering::SeqCst);
            panic!("drop of 666");
        }
    }
}

struct Number;
impl Input for Number {
    type Key = ();
    type Value = u32;
    const NAME: &'static str = "number";
}

struct Wrap;
impl Query for Wrap {
    type Key = ();
    type Value = Touchy;
    const NAME: &'static str = "wrap";
    fn compute(cx: &Cx<'_>, _: &()) -> Touchy {
        Touchy(cx.get::<Number>(&()))
    }
    fn same(old: &Touchy, new: &Touchy) -> bool {
        if new.0 == 13 {
            panic!("same of 13");
        }
        old == new
    }
}

#[test]
fn a_panicking_same_poisons_the_query_and_a_panicking_drop_loses_nothing() {
    for (name, pool, mut engine) in engines() {
        let read = |cx: &Cx<'_>| cx.try_get_ref::<Wrap>(&()).map(|t| t.0);
        engine.set_input::<Number>((), 1);
        assert_eq!(run_on(&pool, &engine, read), Ok(Ok(1)), "{name}");
        engine.set_input::<Number>((), 13);
        let got = run_on(&pool, &engine, read).unwrap();
        assert!(
            matches!(&got, Err(QueryError::Panicked { message, .. }) if message == "same of 13"),
            "{name}: {got:?}"
        );
        // The poison is not forever: the next input change re-executes.
        engine.set_input::<Number>((), 666);
        assert_eq!(run_on(&pool, &engine, read), Ok(Ok(666)), "{name}");
        // Replacing 666 drops it, and its `Drop` panics: swallowed, the new value is
        // stored.
        let drops = DROP_PANICS.load(Ordering::SeqCst);
        engine.set_input::<Number>((), 2);
        assert_eq!(run_on(&pool, &engine, read), Ok(Ok(2)), "{name}");
        assert_eq!(DROP_PANICS.load(Ordering::SeqCst), drops + 1, "{name}");
    }
}

/// `chain(n)` = `chain(n - 1)` + 1 down to `chain(0)`, which reads the `Base` input
/// (modulo 2, so many edits are cut off right at the bottom).
struct Base;
impl Input for Base {
    type Key = ();
    type Value = u64;
    const NAME: &'static str = "base";
}

struct Chain;
impl Query for Chain {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "chain";
    fn compute(cx: &Cx<'_>, n: &u32) -> u64 {
        match n {
            0 => cx.get::<Base>(&()) % 2,
            n => cx.get::<Chain>(&(n - 1)) + 1,
        }
    }
    fn same(old: &u64, new: &u64) -> bool {
        old == new
    }
}

#[test]
fn chains_100k_deep_are_verified_and_reexecuted_without_overflowing() {
    const DEPTH: u32 = 100_000;
    for (name, pool, mut engine) in engines() {
        watchdog(120, &name.clone(), move || {
            let top = |cx: &Cx<'_>| cx.get::<Chain>(&DEPTH);
            engine.set_input::<Base>((), 0);
            assert_eq!(run_on(&pool, &engine, top), Ok(DEPTH as u64));
            // Cut off at the bottom: the whole chain is checked, nothing else runs.
            engine.set_input::<Base>((), 2);
            assert_eq!(run_on(&pool, &engine, top), Ok(DEPTH as u64));
            let stats = engine.stats();
            assert_eq!(
                (stats.executed, stats.backdated),
                (1, 1),
                "{name}: {stats:?}"
            );
            assert_eq!(stats.verified, DEPTH as u64, "{name}: {stats:?}");
            // A real change: every link re-executes.
            engine.set_input::<Base>((), 1);
            assert_eq!(run_on(&pool, &engine, top), Ok(DEPTH as u64 + 1));
            assert_eq!(engine.stats().executed, DEPTH as u64 + 1, "{name}");
        });
    }
}

#[test]
fn incremental_is_chosen_before_the_first_run() {
    let engine = Engine::new();
    engine.run(|_| ()).unwrap();
    let late = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.incremental()));
    assert!(late.is_err());
    assert!(Engine::serial().incremental().is_incremental());
    assert!(!Engine::new().is_incremental());
    assert_eq!(
        format!("{:?}", Engine::serial().incremental()),
        "Engine::serial().incremental()"
    );
}

/// How many `Cell`s each `Row` reads: the lists it records grow with every revision.
struct RowWidth;
impl Input for RowWidth {
    type Key = ();
    type Value = u32;
    const NAME: &'static str = "row width";
}

struct Cell;
impl Input for Cell {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "cell";
}

/// The sum of cells `row .. row + width`.
struct Row;
impl Query for Row {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "row";
    fn compute(cx: &Cx<'_>, row: &u32) -> u64 {
        let width = cx.get::<RowWidth>(&());
        (*row..row + width).map(|c| cx.get::<Cell>(&c)).sum()
    }
}

#[test]
fn dependency_lists_that_grow_every_revision_stay_exact_over_a_long_session() {
    // 300 rows whose lists grow by one cell per revision up to 60: every growth moves a
    // list, so the space its old one held is reclaimed along the way (over 250,000 dead
    // edges in all), and the later revisions check the moved and compacted lists.
    const ROWS: u32 = 300;
    const WIDEST: u32 = 60;
    let expected = |width: u32, bumped: Option<u32>| -> u64 {
        (0..ROWS)
            .map(|row| {
                (row..row + width)
                    .map(|c| u64::from(c) + u64::from(bumped == Some(c)) * 1000)
                    .sum::<u64>()
            })
            .sum()
    };
    for (name, pool, mut engine) in engines() {
        watchdog(120, &name.clone(), move || {
            let all = |cx: &Cx<'_>| (0..ROWS).map(|row| cx.get::<Row>(&row)).sum::<u64>();
            for c in 0..ROWS + WIDEST {
                engine.set_input::<Cell>(c, u64::from(c));
            }
            for width in 1..=WIDEST {
                engine.set_input::<RowWidth>((), width);
                assert_eq!(
                    run_on(&pool, &engine, all),
                    Ok(expected(width, None)),
                    "{name}"
                );
            }
            // One cell changes: exactly the rows that read it re-execute; the rest are
            // verified against their (moved, compacted) lists.
            engine.set_input::<Cell>(150, 1150);
            assert_eq!(
                run_on(&pool, &engine, all),
                Ok(expected(WIDEST, Some(150))),
                "{name}"
            );
            let stats = engine.stats();
            assert_eq!(
                (stats.executed, stats.verified),
                (WIDEST as u64, u64::from(ROWS - WIDEST)),
                "{name}: {stats:?}"
            );
        });
    }
}
