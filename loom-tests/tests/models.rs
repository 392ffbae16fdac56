//! Loom models of weft's protocols. Each states the property it checks; each builds
//! only the threads it needs (loom allows five, the main thread included).
#![cfg(loom)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use weft::query::{Cx, Cycle, Engine, Query, QueryError};
use weft::{ThreadPool, ThreadPoolBuilder};

fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(0, usize::MAX, f)
}

/// Like [`model`], with the preemption bound from the environment clamped to
/// `min..=max`: some bugs need a deeper bound, some state spaces explode.
fn model_bounded(min: usize, max: usize, f: impl Fn() + Sync + Send + 'static) {
    // `Builder::new` reads LOOM_MAX_PREEMPTIONS and friends from the environment.
    let mut builder = loom::model::Builder::new();
    // A pool's start, a few jobs and its shutdown take thousands of steps.
    builder.max_branches = 50_000;
    builder.preemption_bound = Some(builder.preemption_bound.unwrap_or(max).clamp(min, max));
    builder.check(f);
}

/// A pool with exactly `n` threads and no spares (spares would exceed loom's limit).
fn pool(n: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(n)
        .max_threads(n)
        .no_jobserver()
        .build()
        .unwrap()
}

// 1. Latch set/wait: the owner of a join may sleep on the latch of the half another
//    worker stole; setting the latch must wake it (no lost wake-up), and the stack
//    frame holding the latch is popped the moment the owner sees it set.
#[test]
fn join_latch_wakes_a_sleeping_owner() {
    // The lost wake-up needs the thief preempted after its steal and the owner after its
    // push, plus the steal itself: three preemptions.
    model_bounded(3, usize::MAX, || {
        let pool = pool(2);
        let (a, b) = pool.install(|| weft::join(|| 1, || 2));
        assert_eq!((a, b), (1, 2));
        pool.shutdown();
    });
}

// 2. Sleep/wake: a job injected while the only worker is falling asleep is always run.
#[test]
fn work_injected_while_a_worker_falls_asleep_is_run() {
    model(|| {
        let pool = pool(1);
        assert_eq!(pool.install(|| 7), 7);
        pool.shutdown();
    });
}

// 3. Join with a steal of the second half, including a panic in either half: both
//    halves finish, the first panic is re-raised, the pool survives. Steals also take
//    the `Retry` path.
/// Set (outside loom's model) once some execution ran a join's second half on another
/// worker than its first: the model must reach the stolen-half path, not only inline.
static STOLEN_HALF_RAN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[test]
fn join_with_steal_and_panic_in_either_half() {
    model(|| {
        weft::__loom::force_steal_retry(true);
        let pool = pool(2);
        let ran_b = Arc::new(AtomicBool::new(false));
        let ran = ran_b.clone();
        let err = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| {
                let first = weft::current_thread_index();
                weft::join(
                    || -> u8 { panic!("a") },
                    move || {
                        if weft::current_thread_index() != first {
                            STOLEN_HALF_RAN.store(true, std::sync::atomic::Ordering::SeqCst);
                        }
                        ran.store(true, Ordering::SeqCst)
                    },
                )
            })
        }));
        assert!(err.is_err());
        assert!(ran_b.load(Ordering::SeqCst), "the second half ran");
        let err = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| weft::join(|| 1, || -> u8 { panic!("b") }))
        }));
        assert!(err.is_err());
        pool.shutdown();
        weft::__loom::force_steal_retry(false);
    });
    assert!(
        STOLEN_HALF_RAN.load(std::sync::atomic::Ordering::SeqCst),
        "no execution ran the second half on the thief"
    );
}

// 4. A blocking wait wakes a spare, which runs the job the blocked worker waits for,
//    then parks (retires) once the worker resumes.
#[test]
fn blocking_wait_wakes_a_spare_that_then_retires() {
    model(|| {
        let pool = ThreadPoolBuilder::new()
            .num_threads(1)
            .max_threads(2)
            .no_jobserver()
            .build()
            .unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        pool.install(move || {
            let set = flag.clone();
            weft::spawn(move || set.store(true, Ordering::SeqCst));
            weft::blocking(|| {
                while !flag.load(Ordering::SeqCst) {
                    loom::thread::yield_now();
                }
            });
        });
        assert!(done.load(Ordering::SeqCst));
        assert_eq!(pool.stats().peak_live_threads, 2, "a spare was started");
        pool.shutdown();
    });
}

// 4b. A dropped pool keeps its workers while a spawned job runs: the job queues another
//     job and waits for it behind weft's back (a spin), so only the other worker can run
//     it; that worker must not exit although the pool is terminating, and the last
//     spawned job to finish must wake workers asleep in the terminating pool, so that
//     `shutdown` returns.
#[test]
fn a_dropped_pool_keeps_its_workers_while_a_spawned_job_runs() {
    model_bounded(0, 2, || {
        let pool = pool(2);
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        pool.spawn(move || {
            let set = flag.clone();
            weft::spawn(move || set.store(true, Ordering::SeqCst));
            while !flag.load(Ordering::SeqCst) {
                loom::thread::yield_now();
            }
        });
        pool.shutdown();
        assert!(done.load(Ordering::SeqCst));
    });
}

loom::lazy_static! {
    static ref SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);
    static ref RECOVERIES: AtomicUsize = AtomicUsize::new(0);
    static ref DENSE_CALLS: AtomicUsize = AtomicUsize::new(0);
}

struct Slow;
impl Query for Slow {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "slow";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        SLOW_CALLS.fetch_add(1, Ordering::SeqCst);
        k + 1
    }
}

// 5. Query claim / complete / wait: requests for one key from two and from three
//    threads compute it once; the others wait and get the value.
#[test]
fn query_claim_complete_wait_two_threads() {
    model(|| {
        let pool = pool(2);
        let engine = Engine::new();
        let got = pool
            .install(|| engine.run(|cx| cx.join(|cx| cx.get::<Slow>(&1), |cx| cx.get::<Slow>(&1))))
            .unwrap();
        assert_eq!(got, (2, 2));
        assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 1);
        pool.shutdown();
    });
}

#[test]
fn a_claim_after_a_miss_finds_the_key_claimed_meanwhile() {
    // Key 3 is computed first, so key 1's shard (the same one) has a bucket array:
    // both racing lookups of key 1 miss in it at the same empty bucket, and the claim
    // that comes second must see that bucket filled since (not reuse the miss).
    model(|| {
        let pool = pool(2);
        let engine = Engine::new();
        let got = pool
            .install(|| {
                engine.run(|cx| {
                    let warm = cx.get::<Slow>(&3);
                    (
                        warm,
                        cx.join(|cx| cx.get::<Slow>(&1), |cx| cx.get::<Slow>(&1)),
                    )
                })
            })
            .unwrap();
        assert_eq!(got, (4, (2, 2)));
        assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 2, "key 1 computed twice");
        pool.shutdown();
    });
}

/// `Slow` with a dense memo (`KEY_INDEX`): a claim is a CAS on the slot's state.
struct DenseSlow;
impl Query for DenseSlow {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "dense_slow";
    const KEY_INDEX: Option<fn(&u32) -> u32> = Some(|k| *k);
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        DENSE_CALLS.fetch_add(1, Ordering::SeqCst);
        k + 1
    }
}

// 5b. A dense memo's claim: one CAS to `CLAIMING`, the key's write, the owner's release
//     store. Racing requests compute the key once; the loser reads the key (its check
//     against the request's) only after the owner's store published it.
#[test]
fn a_dense_key_is_claimed_once_by_racing_requests() {
    model(|| {
        let pool = pool(2);
        let engine = Engine::new();
        let got = pool
            .install(|| {
                engine.run(|cx| cx.join(|cx| cx.get::<DenseSlow>(&1), |cx| cx.get::<DenseSlow>(&1)))
            })
            .unwrap();
        assert_eq!(got, (2, 2));
        assert_eq!(
            DENSE_CALLS.load(Ordering::SeqCst),
            1,
            "key 1 computed twice"
        );
        pool.shutdown();
    });
}

#[test]
fn query_claim_complete_wait_three_threads() {
    // Three workers: one preemption already covers each claim/wait order.
    model_bounded(0, 1, || {
        let pool = pool(3);
        let engine = Engine::new();
        let got = pool
            .install(|| {
                engine.run(|cx| {
                    cx.join(
                        |cx| cx.get::<Slow>(&5),
                        |cx| cx.join(|cx| cx.get::<Slow>(&5), |cx| cx.get::<Slow>(&5)),
                    )
                })
            })
            .unwrap();
        assert_eq!(got, (6, (6, 6)));
        assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 1);
        pool.shutdown();
    });
}

struct Loop;
impl Query for Loop {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "loop";
    fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
        cx.get::<Loop>(&(3 - k))
    }
    fn recover(_: &Cx<'_>, k: &u32, _: &Cycle) -> Option<u32> {
        RECOVERIES.fetch_add(1, Ordering::SeqCst);
        (*k == 1).then_some(100)
    }
}

// 6. Two threads closing the same cycle (1 -> 2 -> 1) at once: exactly one resolution
//    (each participant recovers once), every participant unwound, both sides see the
//    same outcome: 1 recovers with 100, 2 stores the cycle error.
#[test]
fn two_threads_closing_one_cycle_resolve_it_once() {
    model(|| {
        let pool = pool(2);
        let engine = Engine::new();
        let (a, b) = pool
            .install(|| {
                engine.run(|cx| cx.join(|cx| cx.try_get::<Loop>(&1), |cx| cx.try_get::<Loop>(&2)))
            })
            .unwrap();
        assert_eq!(a, Ok(100));
        match b {
            Err(QueryError::Cycle(c)) => assert_eq!(
                c.participants(),
                &[("loop", "1".to_string()), ("loop", "2".to_string())]
            ),
            other => panic!("expected the cycle error, got {other:?}"),
        }
        assert_eq!(
            RECOVERIES.load(Ordering::SeqCst),
            2,
            "one resolution, two participants"
        );
        pool.shutdown();
    });
}

struct Boom;
impl Query for Boom {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "boom";
    fn compute(_: &Cx<'_>, _: &u32) -> u32 {
        std::panic::resume_unwind(Box::new("boom"))
    }
}

// 7. A panicking query with waiters: every waiter gets `Panicked` with the original
//    message; nothing hangs.
#[test]
fn panicking_query_poisons_every_waiter() {
    model(|| {
        let pool = pool(2);
        let engine = Engine::new();
        let (a, b) = pool
            .install(|| {
                engine.run(|cx| cx.join(|cx| cx.try_get::<Boom>(&0), |cx| cx.try_get::<Boom>(&0)))
            })
            .unwrap();
        for result in [a, b] {
            assert!(
                matches!(&result, Err(QueryError::Panicked { query: "boom", key, message, .. })
                    if key == "0" && message == "boom"),
                "{result:?}"
            );
        }
        pool.shutdown();
    });
}

// 8. Jobserver token accounting: with no token besides the implicit one, only one of
//    the two workers ever runs, at every instant (checked from inside both halves of a
//    join and by the peak counter).
#[test]
fn token_accounting_never_oversubscribes() {
    model(|| {
        let (builder, _jobserver) = ThreadPoolBuilder::new()
            .num_threads(2)
            .max_threads(2)
            .model_jobserver(0);
        let pool = Arc::new(builder.build().unwrap());
        let check = pool.clone();
        pool.install(move || {
            weft::join(
                || assert!(check.stats().running <= 1, "oversubscribed"),
                || assert!(check.stats().running <= 1, "oversubscribed"),
            )
        });
        assert!(pool.stats().peak_running <= 1, "oversubscribed at peak");
        Arc::try_unwrap(pool).ok().unwrap().shutdown();
    });
}

// 8b. With one token besides the implicit one, after shutdown the token is back.
#[test]
fn token_accounting_returns_every_token() {
    model(|| {
        let (builder, jobserver) = ThreadPoolBuilder::new()
            .num_threads(2)
            .max_threads(2)
            .model_jobserver(1);
        let pool = builder.build().unwrap();
        assert_eq!(pool.install(|| weft::join(|| 1, || 2)), (1, 2));
        pool.shutdown();
        assert_eq!(jobserver.free_tokens(), 1, "the token is back");
    });
}

struct Faulty;
impl Query for Faulty {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "faulty";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        k + 1
    }
}

// 9. The claim guard: the owner of an entry unwinds between its claim and its
//    completion (an injected fault) while another request may wait on the entry. The
//    guard poisons and completes the entry: a waiter, and every later request, gets
//    the poison; nothing hangs.
#[test]
fn an_owner_unwinding_after_its_claim_releases_every_waiter() {
    weft::__loom::inject_fault(Some("owner_unwinds_after_claim"));
    model(|| {
        let pool = pool(2);
        let engine = Engine::new();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| {
                engine
                    .run(|cx| cx.join(|cx| cx.try_get::<Faulty>(&0), |cx| cx.try_get::<Faulty>(&0)))
            })
        }));
        assert!(outcome.is_err(), "the owner's own request unwinds");
        let later = pool
            .install(|| engine.run(|cx| cx.try_get::<Faulty>(&0)))
            .unwrap();
        assert!(
            matches!(&later, Err(QueryError::Panicked { query: "faulty", message, .. })
                if message == "the query unwound before its result was stored"),
            "{later:?}"
        );
        pool.shutdown();
    });
    weft::__loom::inject_fault(None);
}

loom::lazy_static! {
    static ref GO: AtomicBool = AtomicBool::new(false);
}

/// Computes only once `GO` is set, or after a few yields (so no schedule spins forever).
struct Gate;
impl Query for Gate {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "gate";
    fn compute(_: &Cx<'_>, k: &u32) -> u32 {
        for _ in 0..3 {
            if GO.load(Ordering::SeqCst) {
                break;
            }
            loom::thread::yield_now();
        }
        k + 1
    }
}

// 10. Fibers: worker A computes `gate(0)`; worker B steals the other half, whose first
//     part waits for `gate(0)` on B's own stack, so B runs the rest (which opens the
//     gate and asks for `gate(0)` too) on a fiber, which suspends. A's completion makes
//     that fiber ready on B, which resumes it. Every request gets the value; no
//     wake-up is lost.
#[test]
fn a_suspended_fiber_is_made_ready_and_resumed_by_its_worker() {
    model_bounded(0, 2, || {
        let pool = pool(2);
        let engine = Engine::new();
        let got = pool
            .install(|| {
                engine.run(|cx| {
                    cx.join(
                        |cx| cx.get::<Gate>(&0),
                        |cx| {
                            cx.join(
                                |cx| cx.get::<Gate>(&0),
                                |cx| {
                                    GO.store(true, Ordering::SeqCst);
                                    cx.get::<Gate>(&0)
                                },
                            )
                        },
                    )
                })
            })
            .unwrap();
        assert_eq!(got, (1, (1, 1)));
        pool.shutdown();
    });
    assert!(
        weft::__loom::fiber_suspensions() > 0,
        "no execution suspended a fiber"
    );
}

/// Opens the gate, then waits for `gate(0)`: on a fiber when a wait loop runs it.
struct Outer;
impl Query for Outer {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "outer";
    fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
        GO.store(true, Ordering::SeqCst);
        cx.get::<Gate>(k) + 10
    }
}

// 11. Exact stall detection: while a fiber that will complete `outer(0)` is ready on
//     one worker, the other worker waits for `outer(0)` and goes idle. The pool is not
//     stalled (a ready fiber will run), so no request gets `Deadlock`.
#[test]
fn a_pool_with_a_ready_fiber_is_not_stalled() {
    model_bounded(0, 2, || {
        let pool = pool(2);
        let engine = Engine::new();
        let got = pool
            .install(|| {
                engine.run(|cx| {
                    cx.join(
                        |cx| cx.get::<Gate>(&0) + cx.get::<Outer>(&0),
                        |cx| cx.join(|cx| cx.get::<Gate>(&0), |cx| cx.get::<Outer>(&0)),
                    )
                })
            })
            .unwrap();
        assert_eq!(got, (12, (1, 11)));
        pool.shutdown();
    });
}

/// Joins two trivial halves: its worker waits for the stolen one, asleep on its own
/// stack, and is woken when it is done.
struct Forks;
impl Query for Forks {
    type Key = u32;
    type Value = u32;
    const NAME: &'static str = "forks";
    fn compute(cx: &Cx<'_>, k: &u32) -> u32 {
        let (a, b) = cx.join(|_| 1, |_| 2);
        k + a + b
    }
}

// 12. Exact stall detection: a worker whose wait just ended (woken, not up yet) is about
//     to run. When the other worker, which made it so, waits for `forks(0)` and goes
//     idle meanwhile, the pool is not stalled: no request gets `Deadlock`.
#[test]
fn a_woken_waiter_is_not_taken_for_a_stall() {
    model_bounded(0, 2, || {
        let pool = pool(2);
        let engine = Engine::new();
        let got = pool
            .install(|| {
                engine.run(|cx| cx.join(|cx| cx.try_get::<Forks>(&0), |cx| cx.try_get::<Forks>(&0)))
            })
            .unwrap();
        assert_eq!(got, (Ok(3), Ok(3)));
        pool.shutdown();
    });
}

// 11. Published halves: a join's second half that its owner keeps private (no worker
//     was looking for work when it was hidden) is claimed by the other worker while the
//     first half waits for it without calling into weft, and never runs twice.
#[test]
fn an_idle_worker_claims_a_half_its_owner_never_exposes() {
    let _publishing = Publishing::on();
    model_bounded(0, 2, first_half_waits_behind_weft_for_the_second);
}

/// A join on a two-thread pool whose first half waits for the second with a raw spin,
/// never calling into weft: only an idle worker can run the second half.
fn first_half_waits_behind_weft_for_the_second() {
    let pool = pool(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let (first, second) = (ran.clone(), ran.clone());
    pool.install(move || {
        weft::join(
            move || {
                while first.load(Ordering::Acquire) == 0 {
                    loom::thread::yield_now();
                }
            },
            move || {
                second.fetch_add(1, Ordering::Release);
            },
        )
    });
    assert_eq!(ran.load(Ordering::Acquire), 1);
    pool.shutdown();
}

// 11b. Eager halves: in a nested join whose inner first half waits (behind weft's back)
//      for the inner second half, the outer second half must not take the only way out:
//      the first half hidden while the slot is free is pushed, the next one published,
//      and the idle worker reaches both, whenever it wakes.
#[test]
fn an_idle_worker_reaches_a_nested_half_behind_a_published_one() {
    let _publishing = Publishing::on();
    let _eager = EagerHalves::on();
    model_bounded(
        0,
        2,
        inner_first_half_waits_behind_weft_for_the_inner_second,
    );
}

/// A nested join on a 2-thread pool whose inner first half spins until the inner
/// second half has run (on the other worker: its owner never calls into weft again).
fn inner_first_half_waits_behind_weft_for_the_inner_second() {
    let pool = pool(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let (first, second, outer) = (ran.clone(), ran.clone(), ran.clone());
    pool.install(move || {
        weft::join(
            move || {
                weft::join(
                    move || {
                        while first.load(Ordering::Acquire) & 1 == 0 {
                            loom::thread::yield_now();
                        }
                    },
                    move || {
                        second.fetch_add(1, Ordering::Release);
                    },
                )
            },
            move || {
                outer.fetch_add(2, Ordering::Relaxed);
            },
        )
    });
    assert_eq!(ran.load(Ordering::Acquire), 3);
    pool.shutdown();
}

// 11c. The same wait behind weft's back on a single join, with eager halves on: the half
//      is pushed, not published, and a sleeping worker must still be woken for it.
#[test]
fn an_idle_worker_takes_an_eagerly_pushed_half_its_owner_waits_for() {
    let _publishing = Publishing::on();
    let _eager = EagerHalves::on();
    model_bounded(0, 2, first_half_waits_behind_weft_for_the_second);
}

// 11d. Snatching: a nested join whose inner second half stays private (the outer one
//      holds the slot) and whose inner first half waits for it behind weft's back. The
//      idle worker claims the outer half, then must snatch the inner one from its
//      owner's list; the owner, coming back, finds it snatched and waits for it.
#[test]
fn an_idle_worker_snatches_a_private_half_its_owner_waits_for() {
    let _publishing = Publishing::on();
    let _snatching = Snatching::on();
    model_bounded(
        0,
        2,
        inner_first_half_waits_behind_weft_for_the_inner_second,
    );
}

// 11e. Snatching races the owner's unlink: the same nesting, but the owner does not
//      wait, so it may unlink its private half while the idle worker walks the list.
//      The half runs exactly once, and its node outlives the thief's read.
#[test]
fn a_private_half_is_run_once_when_its_owner_and_a_thief_race() {
    let _publishing = Publishing::on();
    let _snatching = Snatching::on();
    model_bounded(0, 2, || {
        let pool = pool(2);
        let ran = Arc::new(AtomicUsize::new(0));
        let (second, outer) = (ran.clone(), ran.clone());
        pool.install(move || {
            weft::join(
                move || {
                    weft::join(
                        || {},
                        move || {
                            second.fetch_add(1, Ordering::Relaxed);
                        },
                    )
                },
                move || {
                    outer.fetch_add(2, Ordering::Relaxed);
                },
            )
        });
        assert_eq!(ran.load(Ordering::Relaxed), 3);
        pool.shutdown();
    });
}

/// Snatching of private halves is off in most models (see
/// `weft::__loom::SNATCH_PRIVATE_HALVES`); this switches it on until dropped.
struct Snatching;

impl Snatching {
    fn on() -> Self {
        weft::__loom::SNATCH_PRIVATE_HALVES.set(true);
        Snatching
    }
}

impl Drop for Snatching {
    fn drop(&mut self) {
        weft::__loom::SNATCH_PRIVATE_HALVES.set(false);
    }
}

/// Publishing of private `join` halves is off in most models (see
/// `weft::__loom::PUBLISH_HIDDEN_HALVES`); this switches it on until dropped, even by a
/// panic.
struct Publishing;

impl Publishing {
    fn on() -> Self {
        weft::__loom::PUBLISH_HIDDEN_HALVES.set(true);
        Publishing
    }
}

impl Drop for Publishing {
    fn drop(&mut self) {
        weft::__loom::PUBLISH_HIDDEN_HALVES.set(false);
    }
}

/// Eager halves are off in most models (see `weft::__loom::PUSH_EAGER_HALVES`); this
/// switches them on until dropped, even by a panic.
struct EagerHalves;

impl EagerHalves {
    fn on() -> Self {
        weft::__loom::PUSH_EAGER_HALVES.set(true);
        EagerHalves
    }
}

impl Drop for EagerHalves {
    fn drop(&mut self) {
        weft::__loom::PUSH_EAGER_HALVES.set(false);
    }
}

// A half claimed by an idle worker is read out of its owner's frame *after* the claim:
// the owner, returning from a first half that never synchronizes with the claimer, finds
// the half gone and must keep the node alive until the claimed job has run.
#[test]
fn a_claimed_half_outlives_its_claimers_read() {
    let _publishing = Publishing::on();
    model_bounded(0, 2, || {
        let pool = pool(2);
        let ran = Arc::new(AtomicUsize::new(0));
        let second = ran.clone();
        pool.install(move || {
            weft::join(
                || {},
                move || {
                    second.fetch_add(1, Ordering::Relaxed);
                },
            )
        });
        assert_eq!(ran.load(Ordering::Relaxed), 1);
        pool.shutdown();
    });
}

// A broadcast queues a job that only its worker may run: a worker asleep (or on its
// way to sleep) when it is queued must wake and run it; the caller's own share runs in
// its wait.
#[test]
fn a_broadcast_reaches_every_worker_even_asleep() {
    model_bounded(0, 2, || {
        let pool = pool(2);
        assert_eq!(pool.broadcast(|ctx| ctx.index()), [0, 1]);
        pool.shutdown();
    });
}

loom::lazy_static! {
    static ref REFRESH_CALLS: AtomicUsize = AtomicUsize::new(0);
}

struct Level;
impl weft::query::Input for Level {
    type Key = ();
    type Value = u32;
    const NAME: &'static str = "level";
}

struct Doubled;
impl Query for Doubled {
    type Key = ();
    type Value = u32;
    const NAME: &'static str = "doubled";
    fn compute(cx: &Cx<'_>, _: &()) -> u32 {
        REFRESH_CALLS.fetch_add(1, Ordering::SeqCst);
        cx.get::<Level>(&()) * 2
    }
}

// Incremental refresh: after an input change, two workers request the same stale memo
// at once. Exactly one claims it (one CAS on its state word) and re-executes it; the
// other waits and reuses the new value. Neither sees the old one.
#[test]
fn a_stale_memo_is_refreshed_once_by_racing_requests() {
    model(|| {
        let pool = pool(2);
        let mut engine = Engine::new().incremental();
        engine.set_input::<Level>((), 1);
        let first = pool.install(|| engine.run(|cx| cx.get::<Doubled>(&())));
        assert_eq!(first, Ok(2));
        engine.set_input::<Level>((), 5);
        let got = pool
            .install(|| {
                engine.run(|cx| cx.join(|cx| cx.get::<Doubled>(&()), |cx| cx.get::<Doubled>(&())))
            })
            .unwrap();
        assert_eq!(got, (10, 10));
        assert_eq!(
            REFRESH_CALLS.load(Ordering::SeqCst),
            2,
            "the stale memo was executed twice"
        );
        assert_eq!(engine.stats().executed, 1);
        pool.shutdown();
    });
}

struct Unread;
impl weft::query::Input for Unread {
    type Key = ();
    type Value = u32;
    const NAME: &'static str = "unread";
}

struct Tripled;
impl Query for Tripled {
    type Key = ();
    type Value = u32;
    const NAME: &'static str = "tripled";
    fn compute(cx: &Cx<'_>, _: &()) -> u32 {
        cx.get::<Doubled>(&()) / 2 * 3
    }
}

// Green without a claim: after an input nothing read changes, two workers request a
// stale memo whose dependency is stale too. Each may make the dependency, then the memo,
// green with a CAS from the stale state it loaded; a CAS that fails (the other worker
// got there first, or claimed the memo after its own check failed) sends the request
// down the claim path. A green store instead of a CAS would verify a memo twice, or
// overwrite a claim (caught by the owner's completion, which checks that its state
// still names it). Each memo is verified once, nothing runs.
#[test]
fn a_memo_made_green_without_a_claim_never_overwrites_a_claim() {
    model(|| {
        let pool = pool(2);
        let mut engine = Engine::new().incremental();
        engine.set_input::<Level>((), 2);
        let first = pool.install(|| engine.run(|cx| cx.get::<Tripled>(&())));
        assert_eq!(first, Ok(6));
        engine.set_input::<Unread>((), 1);
        let got = pool
            .install(|| {
                engine.run(|cx| cx.join(|cx| cx.get::<Tripled>(&()), |cx| cx.get::<Tripled>(&())))
            })
            .unwrap();
        assert_eq!(got, (6, 6));
        let stats = engine.stats();
        assert_eq!((stats.executed, stats.verified), (0, 2), "{stats:?}");
        pool.shutdown();
    });
}

// Lock-free allocators of the memo tables: slot ids (two claims in one lane, as workers
// of two pools sharing an engine make) and dependency-list ranges (two lists stored at
// once) never hand out the same id or overlapping edges.
#[test]
fn slot_ids_and_dependency_ranges_are_never_handed_out_twice() {
    model(|| {
        let ids = Arc::new(weft::__loom::SlotIds::new());
        let ranges = Arc::new(weft::__loom::DepRanges::new());
        let other = {
            let (ids, ranges) = (ids.clone(), ranges.clone());
            loom::thread::spawn(move || {
                let taken = [ids.next(0), ids.next(0)];
                (taken, ranges.allocate(2))
            })
        };
        let mine = [ids.next(0), ids.next(0)];
        let my_range = ranges.allocate(1);
        let (theirs, their_range) = other.join().unwrap();
        let mut all: Vec<u32> = mine.iter().chain(&theirs).copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            4,
            "an id was handed out twice: {mine:?} {theirs:?}"
        );
        let overlap = my_range >= their_range && my_range < their_range + 2;
        assert!(
            !overlap,
            "edge ranges overlap: {my_range} in {their_range}..+2"
        );
    });
}

/// Re-runs `model_test` in a child process with `mutant` switched on and expects the
/// model to fail (a loom deadlock aborts its process, hence the separate process) with
/// `expected_failure` in its output (alternatives separated by ` | `).
fn expect_caught(mutant: &str, model_test: &str, expected_failure: &str) {
    if std::env::var_os("WEFT_LOOM_MUTANT").is_some() {
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", model_test, "--test-threads=1", "--nocapture"])
        .env("WEFT_LOOM_MUTANT", mutant)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "model `{model_test}` did not catch mutant `{mutant}`:\n{log}"
    );
    assert!(log.contains("running 1 test"), "the model ran:\n{log}");
    assert!(
        expected_failure.split(" | ").any(|e| log.contains(e)),
        "model `{model_test}` failed under mutant `{mutant}`, but not with \
         `{expected_failure}`:\n{log}"
    );
}

#[test]
fn mutant_latch_lost_wakeup_is_caught() {
    expect_caught(
        "latch_lost_wakeup",
        "join_latch_wakes_a_sleeping_owner",
        DEADLOCK,
    );
}

#[test]
fn mutant_sleep_no_recheck_is_caught() {
    expect_caught(
        "sleep_no_recheck",
        "work_injected_while_a_worker_falls_asleep_is_run",
        DEADLOCK,
    );
}

#[test]
fn mutant_no_cycle_check_is_caught() {
    // Without the check nothing finds the cycle; both requests wait until the pool's
    // exact stall detection releases them with a deadlock report.
    expect_caught(
        "no_cycle_check",
        "two_threads_closing_one_cycle_resolve_it_once",
        "Err(Deadlock(",
    );
}

#[test]
fn mutant_token_leak_is_caught() {
    expect_caught(
        "token_leak",
        "token_accounting_returns_every_token",
        "the token is back",
    );
}

#[test]
fn mutant_implicit_twice_is_caught() {
    expect_caught(
        "implicit_twice",
        "token_accounting_never_oversubscribes",
        "oversubscribed",
    );
}

#[test]
fn mutant_stale_claim_not_atomic_is_caught() {
    // A stale memo claimed with a plain store: both requesters take it and execute.
    expect_caught(
        "stale_claim_not_atomic",
        "a_stale_memo_is_refreshed_once_by_racing_requests",
        "executed twice | Causality violation",
    );
}

#[test]
fn mutant_green_by_store_is_caught() {
    // A memo made green with a store instead of a CAS: it can overwrite the state of a
    // requester that claimed the memo meanwhile.
    expect_caught(
        "green_by_store",
        "a_memo_made_green_without_a_claim_never_overwrites_a_claim",
        "names its owner | verified: 3 | verified: 4",
    );
}

#[test]
fn mutant_id_lane_not_atomic_is_caught() {
    expect_caught(
        "id_lane_not_atomic",
        "slot_ids_and_dependency_ranges_are_never_handed_out_twice",
        "handed out twice",
    );
}

#[test]
fn mutant_dep_bump_not_atomic_is_caught() {
    expect_caught(
        "dep_bump_not_atomic",
        "slot_ids_and_dependency_ranges_are_never_handed_out_twice",
        "ranges overlap",
    );
}

#[test]
fn mutant_publish_before_key_is_caught() {
    // A memo slot reachable before its key is written: the waiter's key comparison
    // races with the claimer's write.
    expect_caught(
        "publish_before_key",
        "query_claim_complete_wait_two_threads",
        "Causality violation",
    );
}

#[test]
fn mutant_dense_owner_before_key_is_caught() {
    // A dense slot's owner published before its key is written: the other requester's
    // key check races with the write.
    expect_caught(
        "dense_owner_before_key",
        "a_dense_key_is_claimed_once_by_racing_requests",
        "Causality violation",
    );
}

#[test]
fn mutant_claim_trusts_stale_miss_is_caught() {
    // A claim that reuses where its lookup missed without checking that the bucket is
    // still empty: it overwrites the slot another requester claimed meanwhile.
    expect_caught(
        "claim_trusts_stale_miss",
        "a_claim_after_a_miss_finds_the_key_claimed_meanwhile",
        "key 1 computed twice",
    );
}

#[test]
fn mutant_hidden_unpublished_is_caught() {
    // Nothing publishes the private half: the first half spins forever.
    expect_caught(
        "hidden_unpublished",
        "an_idle_worker_claims_a_half_its_owner_never_exposes",
        "Model exceeded maximum number of branches",
    );
}

#[test]
fn mutant_eager_unexposed_is_caught() {
    // Every half hidden while the slot is free is published instead: the outer one takes
    // the slot, the inner one stays private, and its first half spins forever.
    expect_caught(
        "eager_unexposed",
        "an_idle_worker_reaches_a_nested_half_behind_a_published_one",
        "Model exceeded maximum number of branches",
    );
}

#[test]
fn mutant_eager_unannounced_is_caught() {
    // The pushed half wakes no sleeper: the other worker sleeps on while the first half
    // spins.
    expect_caught(
        "eager_unannounced",
        "an_idle_worker_takes_an_eagerly_pushed_half_its_owner_waits_for",
        "Model exceeded maximum number of branches | deadlock",
    );
}

#[test]
fn mutant_hidden_ends_at_claim_is_caught() {
    // The owner ends the node when it finds it claimed: the claimer's read of the job
    // races with that end (loom's cell check), or reads a job that is gone.
    expect_caught(
        "hidden_ends_at_claim",
        "a_claimed_half_outlives_its_claimers_read",
        "Causality violation",
    );
}

#[test]
fn mutant_latch_after_publish_is_caught() {
    // The owner publishes its private half before writing the latch the claimer sets:
    // the claimer's use of the latch races with that write (loom's cell check).
    expect_caught(
        "latch_after_publish",
        "an_idle_worker_claims_a_half_its_owner_never_exposes",
        "Causality violation",
    );
}

#[test]
fn mutant_broadcast_unwoken_is_caught() {
    // The queued job's worker is never woken: a worker asleep when the broadcast comes
    // sleeps on, and the broadcast waits forever.
    expect_caught(
        "broadcast_unwoken",
        "a_broadcast_reaches_every_worker_even_asleep",
        DEADLOCK,
    );
}

#[test]
fn mutant_publish_unannounced_is_caught() {
    // Published without the sleep handshake: the other worker can fall asleep without
    // seeing it, and the first half spins forever.
    expect_caught(
        "publish_unannounced",
        "an_idle_worker_claims_a_half_its_owner_never_exposes",
        "Model exceeded maximum number of branches",
    );
}

#[test]
fn mutant_claim_unguarded_is_caught() {
    // The unreleased entry still names the owner's job, which its unwinding frame has
    // freed: a waiter either sleeps forever or touches the freed job's loom objects,
    // which loom's object store rejects (the exact message depends on what the freed
    // memory holds by then).
    expect_caught(
        "claim_unguarded",
        "an_owner_unwinding_after_its_claim_releases_every_waiter",
        "deadlock | src/rt/object.rs",
    );
}

#[test]
fn mutant_fiber_lost_wakeup_is_caught() {
    expect_caught(
        "fiber_lost_wakeup",
        "a_suspended_fiber_is_made_ready_and_resumed_by_its_worker",
        DEADLOCK,
    );
}

#[test]
fn mutant_stall_ignores_ready_is_caught() {
    expect_caught(
        "stall_ignores_ready",
        "a_pool_with_a_ready_fiber_is_not_stalled",
        "Deadlock",
    );
}

#[test]
fn mutant_stall_ignores_woken_is_caught() {
    expect_caught(
        "stall_ignores_woken",
        "a_woken_waiter_is_not_taken_for_a_stall",
        "Deadlock",
    );
}

#[test]
fn mutant_snatch_never_is_caught() {
    // Idle workers never look at private halves: the inner first half spins forever.
    expect_caught(
        "snatch_never",
        "an_idle_worker_snatches_a_private_half_its_owner_waits_for",
        "Model exceeded maximum number of branches",
    );
}

#[test]
fn mutant_unlink_ignores_thieves_is_caught() {
    // The owner runs its half inline whatever thieves did: the snatched half runs
    // twice, or its node ends while the thief reads it.
    expect_caught(
        "unlink_ignores_thieves",
        "an_idle_worker_snatches_a_private_half_its_owner_waits_for",
        "Causality violation | assertion",
    );
}

#[test]
fn mutant_snatch_unfenced_is_caught() {
    // Without the owner's fence, its unlink and the thief's walk can miss each other:
    // the owner ends the node the thief is still reading (the thief then reads a dead
    // frame: loom finds a stale object id in it), or both run the half.
    expect_caught(
        "snatch_unfenced",
        "a_private_half_is_run_once_when_its_owner_and_a_thief_race",
        "index out of bounds | failed to get object | Causality violation | assertion",
    );
}

#[test]
fn mutant_exit_ignores_spawned_is_caught() {
    // Workers of a terminating pool exit when idle, spawned jobs or not: the queued job
    // never runs and its spawner spins forever.
    expect_caught(
        "exit_ignores_spawned",
        "a_dropped_pool_keeps_its_workers_while_a_spawned_job_runs",
        "Model exceeded maximum number of branches | deadlock",
    );
}

#[test]
fn mutant_last_spawn_wakes_nobody_is_caught() {
    // The last spawned job of a terminating pool wakes no sleeper: a worker asleep
    // while it ran never exits, and `shutdown` waits forever.
    expect_caught(
        "last_spawn_wakes_nobody",
        "a_dropped_pool_keeps_its_workers_while_a_spawned_job_runs",
        DEADLOCK,
    );
}

/// What loom prints when every thread of an execution is blocked.
const DEADLOCK: &str = "deadlock";
