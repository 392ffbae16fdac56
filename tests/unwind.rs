//! Unwinds in user code anywhere around a query or a job: `recover`, `Clone`, `Debug`,
//! `Drop` of a panic payload, a thread namer. None may leave an entry in progress, a
//! waiter registered on a dead frame, or a job that another thread can still run on a
//! popped frame. Every test runs under a watchdog, so a hang fails instead of stalling.

mod common;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{pool, run_on, watchdog};
use weft::query::{Cx, Cycle, Engine, Query, QueryError};
use weft::{ThreadPool, ThreadPoolBuilder};

/// Each engine to test: the serial one and the parallel one at 1 and 2 threads.
fn engines() -> Vec<(String, Option<ThreadPool>, Engine)> {
    common::engines(&[1, 2])
}

// ------------------------------------------------------------- recover

/// `A(k) -> B(k) -> A(k)`, whose recovery does what `Mode` says.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Mode {
    /// `recover` requests a query nobody computed (`Leaf`).
    RequestsNew,
    /// `recover` requests the other participant of its cycle.
    RequestsParticipant,
    /// `recover` panics.
    Panics,
    /// `recover` reads an input: allowed.
    ReadsInput,
    /// `recover` requests with `try_get` and recovers with a value anyway.
    TriesAndRecovers,
}

struct CycA;
impl Query for CycA {
    type Key = Mode;
    type Value = i64;
    const NAME: &'static str = "cyc_a";
    fn compute(cx: &Cx<'_>, k: &Mode) -> i64 {
        cx.get::<CycB>(k) + 1
    }
    fn recover(cx: &Cx<'_>, k: &Mode, _: &Cycle) -> Option<i64> {
        Some(match k {
            Mode::RequestsNew => cx.get::<Leaf>(&1),
            Mode::RequestsParticipant => cx.get::<CycB>(k),
            Mode::Panics => panic!("recover of {k:?} failed"),
            Mode::ReadsInput => cx.get::<Setting>(&"fallback"),
            Mode::TriesAndRecovers => match cx.try_get::<Leaf>(&2) {
                Err(QueryError::RequestInRecover { .. }) => -7,
                other => panic!("expected RequestInRecover, got {other:?}"),
            },
        })
    }
}

struct CycB;
impl Query for CycB {
    type Key = Mode;
    type Value = i64;
    const NAME: &'static str = "cyc_b";
    fn compute(cx: &Cx<'_>, k: &Mode) -> i64 {
        cx.get::<CycA>(k) + 1
    }
}

struct Leaf;
impl Query for Leaf {
    type Key = u32;
    type Value = i64;
    const NAME: &'static str = "leaf";
    fn compute(_: &Cx<'_>, k: &u32) -> i64 {
        *k as i64 * 10
    }
}

struct Setting;
impl weft::query::Input for Setting {
    type Key = &'static str;
    type Value = i64;
    const NAME: &'static str = "setting";
}

/// The engine a `NestedRing` recovery runs a nested `Engine::run` of (set by the test
/// around each run; the engines are used one at a time).
static NESTED_ENGINE: std::sync::atomic::AtomicPtr<Engine> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// `NestedRing(k) -> NestedRing(1 - k)`, whose recovery starts a nested run of its own
/// engine and requests the other participant there, then reads an input there.
struct NestedRing;
impl Query for NestedRing {
    type Key = u32;
    type Value = i64;
    const NAME: &'static str = "nested_ring";
    fn compute(cx: &Cx<'_>, k: &u32) -> i64 {
        cx.get::<NestedRing>(&(1 - k))
    }
    fn recover(_: &Cx<'_>, k: &u32, _: &Cycle) -> Option<i64> {
        // SAFETY (test): set to a live engine for the duration of the outer run.
        let engine = unsafe { &*NESTED_ENGINE.load(Ordering::SeqCst) };
        let nested = engine.run(|cx| {
            let participant = cx
                .try_get::<NestedRing>(&(1 - k))
                .map_err(|e| e.to_string());
            // Parallel work inside the nested run is still inside the recover.
            let (fresh, input) = cx.join(
                |cx| cx.try_get::<Leaf>(&5).map_err(|e| e.to_string()),
                |cx| cx.get::<Setting>(&"fallback"),
            );
            (participant, fresh, input)
        });
        let (participant, fresh, input) = nested.expect("the nested run itself succeeds");
        let participant = participant.expect_err("a nested run in `recover` is refused");
        assert!(
            participant.contains("nested_ring") && participant.contains("may only read inputs"),
            "{participant}"
        );
        assert!(fresh.is_err(), "{fresh:?}");
        Some(input + i64::from(*k))
    }
}

#[test]
fn a_nested_run_inside_recover_may_read_inputs_only() {
    watchdog(60, "nested run in recover", || {
        for (name, pool, mut engine) in engines() {
            engine.set_input::<Setting>("fallback", 42);
            NESTED_ENGINE.store(&mut engine as *mut Engine, Ordering::SeqCst);
            for start in [0, 1] {
                let got = run_on(&pool, &engine, |cx| {
                    (
                        cx.try_get::<NestedRing>(&start),
                        cx.try_get::<NestedRing>(&(1 - start)),
                    )
                });
                match got {
                    Ok((Ok(a), Ok(b))) => assert_eq!((a.min(b), a.max(b)), (42, 43), "{name}"),
                    other => panic!("{name}: {other:?}"),
                }
            }
            NESTED_ENGINE.store(std::ptr::null_mut(), Ordering::SeqCst);
        }
    });
}

/// Asks for the cycle (from `A`), then again from `B` and from inside another query:
/// every request must finish, with the same results on every engine.
fn cycle_outcomes(mode: Mode) -> Vec<String> {
    let mut seen: Vec<(String, Vec<String>)> = Vec::new();
    for (name, pool, mut engine) in engines() {
        engine.set_input::<Setting>("fallback", 42);
        let mut outcomes = Vec::new();
        let first = run_on(&pool, &engine, |cx| cx.try_get::<CycA>(&mode)).unwrap();
        outcomes.push(format!("{first:?}"));
        // Again, from the root and from inside a query (`Outer`).
        let again = run_on(&pool, &engine, |cx| {
            (cx.try_get::<CycA>(&mode), cx.try_get::<CycB>(&mode))
        })
        .unwrap();
        outcomes.push(format!("{again:?}"));
        let inner = run_on(&pool, &engine, |cx| cx.try_get::<Outer>(&mode)).unwrap();
        outcomes.push(format!("{inner:?}"));
        seen.push((name, outcomes));
    }
    for (name, outcomes) in &seen[1..] {
        assert_eq!(
            outcomes, &seen[0].1,
            "{name} disagrees with the serial engine"
        );
    }
    seen.remove(0).1
}

struct Outer;
impl Query for Outer {
    type Key = Mode;
    type Value = i64;
    const NAME: &'static str = "outer";
    fn compute(cx: &Cx<'_>, k: &Mode) -> i64 {
        cx.get::<CycA>(k) + cx.get::<CycB>(k)
    }
}

#[test]
fn a_recover_that_requests_a_new_query_gets_a_clear_error_and_releases_its_entry() {
    let outcomes = watchdog(20, "recover requesting a new query", || {
        cycle_outcomes(Mode::RequestsNew)
    });
    assert!(
        outcomes[0].contains("RequestInRecover") && outcomes[0].contains("leaf(1)"),
        "{outcomes:?}"
    );
}

#[test]
fn a_recover_that_requests_its_own_cycle_gets_a_clear_error() {
    let outcomes = watchdog(20, "recover requesting a participant", || {
        cycle_outcomes(Mode::RequestsParticipant)
    });
    assert!(
        outcomes[0].contains("RequestInRecover")
            && outcomes[0].contains("cyc_b(RequestsParticipant)"),
        "{outcomes:?}"
    );
}

#[test]
fn a_panicking_recover_poisons_its_participant_with_the_original_message() {
    let outcomes = watchdog(20, "panicking recover", || cycle_outcomes(Mode::Panics));
    assert!(
        outcomes[0].contains("recover of Panics failed"),
        "{outcomes:?}"
    );
    // The request from inside `Outer` got the poison too, and did not crash.
    assert!(
        outcomes[2].contains("recover of Panics failed"),
        "{outcomes:?}"
    );
}

#[test]
fn a_recover_may_read_inputs_and_try_other_queries() {
    let outcomes = watchdog(20, "recover reading an input", || {
        cycle_outcomes(Mode::ReadsInput)
    });
    assert_eq!(outcomes[0], "Ok(42)");
    let outcomes = watchdog(20, "recover trying a query", || {
        cycle_outcomes(Mode::TriesAndRecovers)
    });
    assert_eq!(outcomes[0], "Ok(-7)");
}

// ------------------------------------------------------------- Clone and Debug

/// A value whose `Clone` panics while `CLONE_PANICS` is set.
static CLONE_PANICS: AtomicBool = AtomicBool::new(false);
#[derive(Debug, PartialEq)]
struct Fragile(u32);
impl Clone for Fragile {
    fn clone(&self) -> Self {
        if CLONE_PANICS.load(Ordering::SeqCst) {
            panic!("clone of Fragile({}) failed", self.0);
        }
        Fragile(self.0)
    }
}

struct MakesFragile;
impl Query for MakesFragile {
    type Key = u32;
    type Value = Fragile;
    const NAME: &'static str = "makes_fragile";
    fn compute(_: &Cx<'_>, k: &u32) -> Fragile {
        Fragile(*k)
    }
}

struct UsesFragile;
impl Query for UsesFragile {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "uses_fragile";
    fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
        cx.get::<MakesFragile>(k).0
    }
}

#[test]
fn a_value_whose_clone_panics_never_leaves_its_entry_in_progress() {
    watchdog(20, "panicking Clone", || {
        for (name, pool, engine) in engines() {
            CLONE_PANICS.store(true, Ordering::SeqCst);
            let first = run_on(&pool, &engine, |cx| cx.try_get::<UsesFragile>(&3)).unwrap();
            CLONE_PANICS.store(false, Ordering::SeqCst);
            assert!(
                matches!(&first, Err(QueryError::Panicked { query: "uses_fragile", message, .. })
                    if message == "clone of Fragile(3) failed"),
                "{name}: {first:?}"
            );
            // The entry itself completed with its value: a later request gets it.
            let later = run_on(&pool, &engine, |cx| cx.try_get::<MakesFragile>(&3)).unwrap();
            assert_eq!(later, Ok(Fragile(3)), "{name}");
        }
    });
}

/// A key whose `Debug` always panics.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Shy(u32);
impl fmt::Debug for Shy {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Shy refuses to be printed")
    }
}

static SHY_CALLS: AtomicUsize = AtomicUsize::new(0);
struct ShyQuery;
impl Query for ShyQuery {
    type Key = Shy;
    type Value = u32;
    const NAME: &'static str = "shy";
    fn compute(_: &Cx<'_>, k: &Shy) -> u32 {
        SHY_CALLS.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        k.0 * 2
    }
}

struct ShyPanics;
impl Query for ShyPanics {
    type Key = Shy;
    type Value = u32;
    const NAME: &'static str = "shy_panics";
    fn compute(_: &Cx<'_>, _: &Shy) -> u32 {
        panic!("shy_panics always panics")
    }
}

#[test]
fn a_key_whose_debug_panics_is_traced_waited_for_and_reported() {
    watchdog(20, "panicking Debug", || {
        // Tracing formats keys for the claim's span and every waiter's span.
        let pool = ThreadPoolBuilder::new()
            .num_threads(2)
            .trace(true)
            .build()
            .unwrap();
        let engine = Engine::new();
        let keys = vec![Shy(4); 8];
        let got = pool
            .install(|| engine.run(|cx| cx.par_map(&keys, |cx, k| cx.get::<ShyQuery>(k))))
            .unwrap();
        assert_eq!(got, vec![8; 8]);
        assert_eq!(SHY_CALLS.load(Ordering::SeqCst), 1);
        // A poison's report names the key with a placeholder instead of unwinding.
        let err = pool
            .install(|| engine.run(|cx| cx.try_get::<ShyPanics>(&Shy(1))))
            .unwrap()
            .unwrap_err();
        assert!(
            err.to_string().contains("shy_panics(<Debug panicked>)"),
            "{err}"
        );
        let serial = Engine::serial()
            .run(|cx| cx.try_get::<ShyPanics>(&Shy(1)))
            .unwrap()
            .unwrap_err();
        assert_eq!(err, serial);
    });
}

// ------------------------------------------------------------- the pool

#[test]
fn a_panicking_thread_namer_fails_build() {
    let built = ThreadPoolBuilder::new()
        .num_threads(2)
        .max_threads(4)
        .thread_name(|i| {
            if i == 3 {
                panic!("no name for thread {i}");
            }
            format!("named-{i}")
        })
        .build();
    let err = built.expect_err("a namer that panics for a spare fails build");
    assert!(err.to_string().contains("no name for thread 3"), "{err}");
}

#[test]
fn thread_names_are_decided_at_build_time() {
    let called = std::sync::Arc::new(AtomicUsize::new(0));
    let count = called.clone();
    let pool = ThreadPoolBuilder::new()
        .num_threads(1)
        .max_threads(3)
        .thread_name(move |i| {
            count.fetch_add(1, Ordering::SeqCst);
            format!("early-{i}")
        })
        .build()
        .unwrap();
    assert_eq!(
        called.load(Ordering::SeqCst),
        3,
        "every slot named by build"
    );
    let name = pool.install(|| std::thread::current().name().map(str::to_string));
    assert_eq!(name.as_deref(), Some("early-0"));
}

#[test]
fn default_thread_names_carry_the_worker_index() {
    let pool = ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let names = pool.broadcast(|ctx| {
        (
            ctx.index(),
            std::thread::current().name().map(str::to_string),
        )
    });
    for (index, name) in names {
        assert_eq!(name, Some(format!("weft-worker-{index}")));
    }
}

/// A panic payload whose `Drop` panics.
struct DropBomb;
impl Drop for DropBomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("DropBomb went off");
        }
    }
}

#[test]
fn a_spawned_panic_whose_payload_panics_on_drop_does_not_kill_the_worker() {
    watchdog(20, "payload Drop panicking in spawn", || {
        for handler in [false, true] {
            let mut builder = ThreadPoolBuilder::new().num_threads(1);
            if handler {
                builder = builder.panic_handler(drop);
            }
            let pool = builder.build().unwrap();
            pool.spawn(|| std::panic::panic_any(DropBomb));
            // The only worker survived and still runs jobs.
            for _ in 0..3 {
                assert_eq!(pool.install(|| 5), 5);
            }
        }
    });
}

#[test]
fn join_and_scope_survive_losing_payloads_that_panic_on_drop() {
    watchdog(20, "payload Drop panicking in join/scope", || {
        let pool = pool(2);
        let joined = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| {
                weft::join(
                    || -> () { panic!("first half") },
                    || -> () { std::panic::panic_any(DropBomb) },
                )
            })
        }));
        let payload = joined.expect_err("join re-raises");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"first half"));

        let scoped = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                s.spawn(|_| panic!("spawned first"));
                s.spawn(|_| std::panic::panic_any(DropBomb));
            })
        }));
        let payload = scoped.expect_err("scope re-raises");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"spawned first"));
        assert_eq!(pool.install(|| 6), 6, "the pool survived");
    });
}

// ------------------------------------------------------------- honest errors

struct FatalError;

struct RaisesFatal;
impl Query for RaisesFatal {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "raises_fatal";
    fn compute(_: &Cx<'_>, _: &u32) -> u32 {
        std::panic::resume_unwind(Box::new(FatalError))
    }
}

struct CallsFatal;
impl Query for CallsFatal {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "calls_fatal";
    fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
        cx.get::<RaisesFatal>(k)
    }
}

#[test]
fn a_poison_keeps_the_original_payload_and_can_be_re_raised() {
    watchdog(20, "payload kept", || {
        for (name, pool, engine) in engines() {
            let err = run_on(&pool, &engine, |cx| cx.try_get::<CallsFatal>(&1))
                .unwrap()
                .unwrap_err();
            let payload = err.panic_payload().expect("a panic error");
            assert!(payload.is::<FatalError>(), "{name}: {err:?}");
            assert_eq!(
                err.to_string(),
                "query `raises_fatal(1)` panicked: <non-string panic payload>"
            );
            let raised = catch_unwind(AssertUnwindSafe(|| err.resume_unwind()));
            let raised = raised.expect_err("re-raised");
            let payload = raised
                .downcast_ref::<weft::query::PanicPayload>()
                .expect("re-raised as the shared payload");
            assert!(payload.downcast_ref::<FatalError>().is_some(), "{name}");
        }
    });
}

/// The engine `CrossThread` runs again from a `weft::join` half (set around each run).
static CROSS_ENGINE: std::sync::atomic::AtomicPtr<Engine> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// Runs its own engine again from the halves of a plain `weft::join`: other threads.
struct CrossThread;
impl Query for CrossThread {
    type Key = u32;
    type Value = u64;
    const NAME: &'static str = "cross_thread";
    fn compute(_: &Cx<'_>, k: &u32) -> u64 {
        // SAFETY (test): set to a live engine for the duration of the outer run.
        let engine = unsafe { &*CROSS_ENGINE.load(Ordering::SeqCst) };
        let (a, b) = weft::join(
            || engine.run(|cx| cx.get::<Leaf>(k)).unwrap(),
            || engine.run(|cx| cx.get::<Leaf>(&(k + 1))).unwrap(),
        );
        (a + b) as u64
    }
}

#[test]
fn a_serial_engine_run_again_from_another_thread_fails_instead_of_hanging() {
    watchdog(60, "serial engine nested on another thread", || {
        for (name, pool, mut engine) in engines() {
            CROSS_ENGINE.store(&mut engine as *mut Engine, Ordering::SeqCst);
            let got = run_on(&pool, &engine, |cx| cx.try_get::<CrossThread>(&2));
            CROSS_ENGINE.store(std::ptr::null_mut(), Ordering::SeqCst);
            match (engine.is_serial(), got) {
                // The parallel engine runs both nested runs: 20 + 30.
                (false, Ok(Ok(value))) => assert_eq!(value, 50, "{name}"),
                (true, Ok(Err(QueryError::Panicked { message, .. }))) => {
                    assert!(
                        message.contains("run again from another thread"),
                        "{message}"
                    )
                }
                (_, other) => panic!("{name}: {other:?}"),
            }
        }
    });
}
