//! Scheduler behaviour: results, panics, nesting, context, waits, spares,
//! idle CPU.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use weft::{ThreadPool, ThreadPoolBuilder};

mod common;
use common::watchdog;

fn pool(n: usize) -> ThreadPool {
    ThreadPoolBuilder::new().num_threads(n).build().unwrap()
}

fn fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = weft::join(|| fib(n - 1), || fib(n - 2));
    a + b
}

#[test]
fn join_computes_fib_at_several_thread_counts() {
    for threads in [1, 2, 4] {
        assert_eq!(
            pool(threads).install(|| fib(22)),
            17711,
            "{threads} threads"
        );
    }
}

#[test]
fn join_from_outside_any_pool_uses_the_global_pool() {
    assert_eq!(fib(15), 610);
    assert!(weft::current_thread_index().is_none());
}

#[test]
fn par_map_keeps_input_order_and_par_for_each_visits_all() {
    let pool = pool(3);
    let input: Vec<u64> = (0..10_000).collect();
    let squares = pool.install(|| weft::par_map(&input, |x| x * x));
    assert_eq!(squares, input.iter().map(|x| x * x).collect::<Vec<_>>());
    let seen = AtomicUsize::new(0);
    pool.install(|| {
        weft::par_for_each(&input, |x| {
            seen.fetch_add(*x as usize, Ordering::Relaxed);
        })
    });
    assert_eq!(seen.into_inner(), (0..10_000).sum::<usize>());
    assert!(pool
        .install(|| weft::par_map(&[] as &[u8], |x| *x))
        .is_empty());
}

#[test]
fn scope_runs_every_spawn_before_returning_and_spawns_may_nest() {
    let pool = pool(2);
    let count = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..100 {
            s.spawn(|s| {
                count.fetch_add(1, Ordering::Relaxed);
                s.spawn(|_| {
                    count.fetch_add(1, Ordering::Relaxed);
                });
            });
        }
    });
    assert_eq!(count.into_inner(), 200);
}

#[test]
fn spawn_runs_detached_jobs() {
    let pool = pool(2);
    let (tx, rx) = mpsc::channel();
    for i in 0..50 {
        let tx = tx.clone();
        pool.spawn(move || tx.send(i).unwrap());
    }
    let mut got: Vec<i32> = (0..50)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[test]
fn join_reraises_a_panic_in_either_half_after_both_finish_and_pool_survives() {
    let pool = pool(2);
    let other_ran = AtomicBool::new(false);
    let err = catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| {
            weft::join(
                || panic!("left broke"),
                || {
                    std::thread::sleep(Duration::from_millis(20));
                    other_ran.store(true, Ordering::SeqCst);
                },
            )
        })
    }))
    .unwrap_err();
    assert_eq!(panic_message(err), "left broke");
    assert!(
        other_ran.load(Ordering::SeqCst),
        "the other half finished first"
    );

    let err = catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| weft::join(|| 1, || -> i32 { panic!("right broke") }))
    }))
    .unwrap_err();
    assert_eq!(panic_message(err), "right broke");

    // Both panic: the first closure's panic wins.
    let err = catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| weft::join(|| -> i32 { panic!("a") }, || -> i32 { panic!("b") }))
    }))
    .unwrap_err();
    assert_eq!(panic_message(err), "a");

    assert_eq!(pool.install(|| fib(18)), 2584, "pool still works");
    assert_eq!(pool.stats().live_threads, 2, "no worker died");
}

#[test]
fn one_thread_join_still_runs_both_halves_when_the_first_panics() {
    let pool = pool(1);
    let ran = AtomicBool::new(false);
    let err = catch_unwind(AssertUnwindSafe(|| {
        pool.install(|| {
            weft::join(
                || -> () { panic!("first") },
                || ran.store(true, Ordering::SeqCst),
            )
        })
    }))
    .unwrap_err();
    assert_eq!(panic_message(err), "first");
    assert!(ran.load(Ordering::SeqCst));
}

#[test]
fn scope_reraises_the_first_panic_after_all_spawns_finish() {
    let pool = pool(2);
    let finished = AtomicUsize::new(0);
    let err = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.spawn(|_| panic!("spawned job broke"));
            for _ in 0..10 {
                s.spawn(|_| {
                    std::thread::sleep(Duration::from_millis(2));
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    }))
    .unwrap_err();
    assert_eq!(panic_message(err), "spawned job broke");
    assert_eq!(finished.load(Ordering::SeqCst), 10);
    assert_eq!(pool.install(|| fib(10)), 55);
}

#[test]
fn spawned_panics_go_to_the_panic_handler_and_workers_survive() {
    let (tx, rx) = mpsc::channel::<String>();
    let tx = Mutex::new(tx);
    let pool = ThreadPoolBuilder::new()
        .num_threads(2)
        .panic_handler(move |p| tx.lock().unwrap().send(panic_message(p)).unwrap())
        .build()
        .unwrap();
    pool.spawn(|| panic!("detached failure"));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        "detached failure"
    );
    assert_eq!(pool.install(|| fib(12)), 144);
    assert_eq!(pool.stats().live_threads, 2);
}

#[test]
fn install_inside_another_pool_keeps_the_callers_pool_working_without_a_spare() {
    let outer = pool(1);
    let inner = pool(2);
    let (inner_ref, outer_ref) = (&inner, &outer);
    outer.install(|| {
        let outer_index = outer_ref.current_thread_index();
        assert!(outer_index.is_some());
        // Queue a job on the outer pool; while this worker waits for the inner pool,
        // it runs that job (on a fiber of its own, not on top of the waiting frame).
        let (tx, rx) = std::sync::mpsc::channel();
        weft::spawn(move || tx.send(()).unwrap());
        let r = inner_ref.install(|| {
            std::thread::sleep(Duration::from_millis(50));
            assert!(outer_ref.current_thread_index().is_none());
            fib(15)
        });
        assert_eq!(r, 610);
        assert!(rx.try_recv().is_ok(), "the outer job ran during the wait");
    });
    // No thread was spent on the wait.
    assert_eq!(outer.stats().peak_live_threads, 1);
}

#[test]
fn nested_install_on_the_same_pool_runs_inline() {
    let pool = pool(2);
    let idx = pool.install(|| {
        let here = weft::current_thread_index();
        (here, pool.install(weft::current_thread_index))
    });
    assert_eq!(idx.0, idx.1);
}

fn deep(n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    let (a, _) = weft::join(|| deep(n - 1), || ());
    a + 1
}

#[test]
fn join_nested_100_000_deep_does_not_overflow_the_default_stack() {
    for threads in [1, 2] {
        assert_eq!(pool(threads).install(|| deep(100_000)), 100_000);
    }
}

#[test]
fn stolen_jobs_run_with_their_creators_context() {
    let pool = pool(2);
    pool.install(|| {
        weft::context::with_new_context(|ctx| {
            let seen = weft::par_map(&(0..256).collect::<Vec<_>>(), |_| {
                std::thread::sleep(Duration::from_micros(50));
                (weft::context::current_id(), weft::current_thread_index())
            });
            assert!(seen.iter().all(|(c, _)| *c == Some(ctx)));
            let threads: std::collections::HashSet<_> = seen.iter().map(|(_, t)| *t).collect();
            assert!(threads.len() >= 2, "some items were stolen: {threads:?}");
        });
        assert_eq!(
            weft::context::current_id(),
            None,
            "the thief's context was restored"
        );
    });
}

#[test]
fn jobs_run_during_a_wait_keep_their_own_context_and_the_waiter_keeps_its() {
    // Worker A enters a context and joins; the second half is stolen by worker B and
    // takes a while. Meanwhile unrelated jobs are queued, which A may run on fibers
    // while it waits: each must see its own context (none), and A must find its own
    // context again after the wait.
    let pool = pool(2);
    let violations = Arc::new(AtomicUsize::new(0));
    let unrelated_ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..20 {
        let barrier = Arc::new(Barrier::new(2));
        pool.install(|| {
            weft::context::with_new_context(|ctx| {
                weft::join(
                    || {
                        // Let B steal the second half first, then queue unrelated work.
                        weft::blocking(|| barrier.wait());
                        for _ in 0..8 {
                            let violations = violations.clone();
                            let unrelated_ran = unrelated_ran.clone();
                            weft::spawn(move || {
                                unrelated_ran.fetch_add(1, Ordering::SeqCst);
                                if weft::context::current_id().is_some() {
                                    violations.fetch_add(1, Ordering::SeqCst);
                                }
                            });
                        }
                    },
                    || {
                        weft::blocking(|| barrier.wait());
                        assert_eq!(weft::context::current_id(), Some(ctx));
                        std::thread::sleep(Duration::from_millis(20));
                    },
                );
                assert_eq!(
                    weft::context::current_id(),
                    Some(ctx),
                    "the waiter's context"
                );
            })
        });
    }
    assert_eq!(violations.load(Ordering::SeqCst), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while unrelated_ran.load(Ordering::SeqCst) < 160 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        unrelated_ran.load(Ordering::SeqCst),
        160,
        "unrelated jobs still ran"
    );
}

#[test]
fn unrestricted_wait_may_run_other_jobs() {
    // The converse: with no context, a waiting worker helps with any queued job.
    let pool = pool(2);
    let helped = AtomicBool::new(false);
    for _ in 0..50 {
        let waiter = std::thread::current().id();
        let _ = waiter;
        pool.install(|| {
            let me = std::thread::current().id();
            weft::join(
                || {
                    weft::scope(|s| {
                        for _ in 0..64 {
                            s.spawn(|_| {
                                std::thread::sleep(Duration::from_micros(100));
                                if std::thread::current().id() != me {
                                    helped.store(true, Ordering::SeqCst);
                                }
                            });
                        }
                    })
                },
                || std::thread::sleep(Duration::from_millis(1)),
            );
        });
        if helped.load(Ordering::SeqCst) {
            break;
        }
    }
    assert!(helped.load(Ordering::SeqCst));
}

#[test]
fn blocked_workers_wake_spares_without_exceeding_max_threads() {
    let pool = ThreadPoolBuilder::new()
        .num_threads(2)
        .max_threads(5)
        .build()
        .unwrap();
    let blocked_now = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    // Six jobs each block until all are released. With 2 threads and max 5, at most 5
    // can be blocked at once; as each worker blocks a spare starts, up to the bound.
    let (done_tx, done_rx) = mpsc::channel();
    for _ in 0..6 {
        let blocked_now = blocked_now.clone();
        let release = release.clone();
        let done_tx = done_tx.clone();
        pool.spawn(move || {
            weft::blocking(|| {
                blocked_now.fetch_add(1, Ordering::SeqCst);
                while !release.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            done_tx.send(()).unwrap();
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while blocked_now.load(Ordering::SeqCst) < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        blocked_now.load(Ordering::SeqCst),
        5,
        "spares kept the pool going"
    );
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        blocked_now.load(Ordering::SeqCst),
        5,
        "never more than max_threads"
    );
    let stats = pool.stats();
    assert_eq!(stats.live_threads, 5);
    assert!(stats.peak_live_threads <= 5);
    release.store(true, Ordering::SeqCst);
    for _ in 0..6 {
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    // Once nobody is blocked, surplus spares park.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.stats().parked_spares < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = pool.stats();
    assert_eq!(stats.parked_spares, 3, "{stats:?}");
    assert_eq!(stats.blocked, 0);
}

#[test]
fn restricted_waiter_with_nothing_to_run_blocks_and_a_spare_takes_over() {
    // One thread: the waiter inside a context cannot run the unrelated job, so it
    // blocks and a spare must run that job, which releases the half we wait for.
    let pool = ThreadPoolBuilder::new()
        .num_threads(2)
        .max_threads(4)
        .build()
        .unwrap();
    let released = Arc::new(AtomicBool::new(false));
    pool.install(|| {
        weft::context::with_new_context(|_| {
            weft::join(
                || {
                    let released = released.clone();
                    weft::spawn(move || released.store(true, Ordering::SeqCst));
                },
                || {
                    while !released.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                },
            );
        });
    });
    assert!(released.load(Ordering::SeqCst));
}

/// utime + stime, in clock ticks, of this process's threads whose name starts with
/// `prefix` (other tests of this binary run concurrently: only the pool's own threads
/// count).
fn thread_cpu_ticks(prefix: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        total += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    }
    total
}

#[test]
#[cfg(target_os = "linux")]
fn an_idle_pool_burns_no_cpu() {
    let pool = ThreadPoolBuilder::new()
        .num_threads(4)
        .thread_name(|i| format!("idleprobe-{i}"))
        .build()
        .unwrap();
    pool.install(|| fib(20));
    std::thread::sleep(Duration::from_millis(200)); // let workers fall asleep
    let before = thread_cpu_ticks("idleprobe-");
    std::thread::sleep(Duration::from_secs(1));
    let used = thread_cpu_ticks("idleprobe-") - before;
    // Clock ticks are 10 ms; four spinning workers would use ~400 ticks in a second.
    assert!(used <= 5, "idle pool used {used} ticks in one second");
    // The probe is not vacuous: the same threads do show up when busy.
    let busy_before = thread_cpu_ticks("idleprobe-");
    pool.install(|| {
        weft::par_for_each(&[0u8; 8], |_| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(50) {
                std::hint::spin_loop();
            }
        })
    });
    assert!(
        thread_cpu_ticks("idleprobe-") > busy_before,
        "busy threads are measured"
    );
    drop(pool);
}

/// Counts live values: each `join` second half below owns one and returns another, so
/// a half whose closure or result is dropped twice, or never, shows up in the count.
struct Counted<'a>(&'a std::sync::atomic::AtomicIsize);

impl<'a> Counted<'a> {
    fn new(live: &'a std::sync::atomic::AtomicIsize) -> Self {
        live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Counted(live)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A join tree whose second halves own a value and return one (and every 7th first half
/// panics), so halves run inline, stolen, exposed and claimed by idle workers alike.
fn counted_tree<'a>(depth: u32, live: &'a std::sync::atomic::AtomicIsize) -> Counted<'a> {
    if depth == 0 {
        return Counted::new(live);
    }
    let owned = Counted::new(live);
    let (a, b) = weft::join(
        || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if depth % 7 == 0 {
                    panic!("first half at depth {depth}");
                }
                counted_tree(depth - 1, live)
            }));
            result.unwrap_or_else(|_| Counted::new(live))
        },
        move || {
            let _owned = owned;
            counted_tree(depth - 1, live)
        },
    );
    drop(a);
    b
}

#[test]
fn join_second_halves_drop_their_closures_and_results_exactly_once() {
    for threads in [1, 2, 4] {
        let live = std::sync::atomic::AtomicIsize::new(0);
        let pool = pool(threads);
        for _ in 0..20 {
            let root = pool.install(|| counted_tree(14, &live));
            assert_eq!(
                live.load(std::sync::atomic::Ordering::Relaxed),
                1,
                "{threads} threads"
            );
            drop(root);
        }
        assert_eq!(
            live.load(std::sync::atomic::Ordering::Relaxed),
            0,
            "{threads} threads"
        );
    }
}

#[test]
fn shutdown_returns_after_the_workers_thread_locals_are_dropped() {
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    struct Flush;
    impl Drop for Flush {
        fn drop(&mut self) {
            // A destructor that takes a moment, as a buffered writer's flush would.
            std::thread::sleep(Duration::from_millis(5));
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
    thread_local! {
        static BUFFER: Flush = const { Flush };
    }
    for round in 1..=5 {
        let pool = ThreadPoolBuilder::new().num_threads(4).build().unwrap();
        pool.broadcast(|_| BUFFER.with(|_| ()));
        pool.shutdown();
        assert_eq!(DROPPED.load(Ordering::SeqCst), 4 * round);
    }
}

#[test]
fn work_spawned_in_a_dropped_pool_keeps_the_workers_it_needs() {
    watchdog(60, "spawned work in a dropped pool", || {
        for round in 0..100 {
            let (done_tx, done_rx) = mpsc::channel();
            let (go_tx, go_rx) = mpsc::channel::<()>();
            {
                let pool = pool(2);
                pool.spawn(move || {
                    // By now the pool is dropped and the other worker idle.
                    go_rx.recv().unwrap();
                    let (tx, rx) = mpsc::channel();
                    if round % 2 == 0 {
                        weft::spawn(move || tx.send(7).unwrap());
                        // A raw wait: only the other worker can run the job just
                        // spawned (it sits in this worker's deque).
                        done_tx.send(rx.recv().unwrap()).unwrap();
                    } else {
                        let (got, ()) =
                            weft::join(move || rx.recv().unwrap(), move || tx.send(7).unwrap());
                        done_tx.send(got).unwrap();
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(1));
            go_tx.send(()).unwrap();
            assert_eq!(done_rx.recv().unwrap(), 7, "round {round}");
        }
    });
}

#[test]
fn shutdown_waits_for_spawned_jobs_that_panic_or_spawn_more() {
    watchdog(60, "shutdown after panicking spawned jobs", || {
        let ran = Arc::new(AtomicUsize::new(0));
        let pool = ThreadPoolBuilder::new()
            .num_threads(2)
            .panic_handler(drop)
            .build()
            .unwrap();
        for i in 0..20 {
            let ran = ran.clone();
            pool.spawn(move || {
                let inner = ran.clone();
                weft::spawn(move || {
                    inner.fetch_add(1, Ordering::SeqCst);
                    if i % 2 == 0 {
                        panic!("spawned job {i} panics");
                    }
                });
                ran.fetch_add(1, Ordering::SeqCst);
                if i % 3 == 0 {
                    panic!("outer job {i} panics");
                }
            });
        }
        // Every spawned job, panicking or not, is counted out: shutdown returns, and
        // only after all of them ran.
        pool.shutdown();
        assert_eq!(ran.load(Ordering::SeqCst), 40);
    });
}

#[test]
fn a_spawned_job_of_a_dropped_pool_can_still_block_on_a_spare() {
    watchdog(60, "blocking in a spawned job of a dropped pool", || {
        for _ in 0..20 {
            let pool = ThreadPoolBuilder::new()
                .num_threads(1)
                .max_threads(2)
                .build()
                .unwrap();
            // Start the spare once, so that it is parked when the pool is dropped.
            pool.install(|| weft::blocking(|| std::thread::sleep(Duration::from_millis(2))));
            let (done_tx, done_rx) = mpsc::channel();
            pool.spawn(move || {
                std::thread::sleep(Duration::from_millis(10)); // the pool is dropped by now
                let (tx, rx) = mpsc::channel();
                weft::spawn(move || tx.send(7).unwrap());
                done_tx.send(weft::blocking(|| rx.recv().unwrap())).unwrap();
            });
            drop(pool);
            assert_eq!(done_rx.recv().unwrap(), 7);
        }
    });
}

#[test]
#[cfg(target_os = "linux")]
fn the_adopted_thread_of_a_dropped_pool_waits_without_spinning() {
    let used = std::thread::Builder::new()
        .name("adoptprobe".into())
        .spawn(|| {
            let adopted = ThreadPoolBuilder::new()
                .num_threads(2)
                .use_current_thread()
                .build()
                .unwrap();
            drop(adopted);
            let other = pool(1);
            let before = thread_cpu_ticks("adoptprobe");
            // The building thread is still a worker of the dropped pool; its wait for
            // the other pool must sleep, not poll.
            other.install(|| std::thread::sleep(Duration::from_millis(500)));
            thread_cpu_ticks("adoptprobe") - before
        })
        .unwrap()
        .join()
        .unwrap();
    // Clock ticks are 10 ms: a spinning wait would use ~50.
    assert!(
        used <= 5,
        "the waiting thread used {used} ticks in half a second"
    );
}
